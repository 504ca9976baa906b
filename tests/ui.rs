//! Compile errors are part of the product: each case is a mistake a user can
//! make, with the exact message checked in beside it (`tests/ui/**/*.stderr`).
//! Regenerate with `TRYBUILD=overwrite cargo test --test ui` and review the diff.

#[test]
fn compile_errors() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*/*.rs");
}
