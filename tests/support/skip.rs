//! Tests that need something the machine may lack (a PostgreSQL server, a
//! browser) skip with a line that is seen, and only outside CI: with `CI`
//! set (and not `false` or `0`), a skip would hide missing coverage, so it
//! fails instead.

/// Whether the tests run in CI (`CI` set, and not `false` or `0`).
pub fn in_ci() -> bool {
    let ci = std::env::var("CI").unwrap_or_default();
    !ci.is_empty() && ci != "false" && ci != "0"
}

/// Writes a line to stderr past the test harness's output capture, so that
/// it is seen even when the test passes.
pub fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n{line}\n");
}

/// Skips the calling test, saying `why` loudly; in CI, fails with `why`
/// and `fix` instead. The caller returns after this.
pub fn skip(why: &str, fix: &str) {
    if in_ci() {
        panic!("{why}, and CI is set: this test must run in CI. {fix}");
    }
    loud(&format!("*** SKIPPED: {why}. {fix} ***"));
}
