//! The fuzz targets' checks (`fuzz/checks/`) on stable, in the normal test
//! suite: each target's seeds (`fuzz/seeds/<target>/`) and every input a
//! fuzzer once failed on (`fuzz/regressions/<target>/`, one file each,
//! named after what it caught). Fuzzing itself needs nightly:
//! `cargo +nightly fuzz run <target>` (see the README's "Tests").

// The derive's modules at the crate root, where the `derive` check (and
// they themselves) find them; as in `fuzz/src/lib.rs`.
#[path = "../kv-macros/src/ast.rs"]
mod ast;
#[path = "../kv-macros/src/attr.rs"]
mod attr;
#[path = "../kv-macros/src/case.rs"]
mod case;
#[path = "../kv-macros/src/expand.rs"]
mod expand;
#[path = "../kv-macros/src/valid.rs"]
mod valid;

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

/// Runs `check` on every file of the target's seeds and regressions,
/// returning how many there were.
fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut ran = 0;
    for dir in ["seeds", "regressions"] {
        let dir = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for file in files.iter().filter(|f| f.is_file()) {
            let data = std::fs::read(file).expect("a readable input");
            let outcome = std::panic::catch_unwind(|| check(&data));
            if let Err(panic) = outcome {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                panic!("fuzz input {} fails: {why}", file.display());
            }
            ran += 1;
        }
    }
    ran
}

#[test]
fn keys() {
    assert!(replay("keys", checks::keys::check) >= 5);
}

#[test]
fn cursor() {
    assert!(replay("cursor", checks::cursor::check) >= 5);
}

#[test]
fn router() {
    assert!(replay("router", checks::router::check) >= 5);
}

#[test]
fn derive() {
    assert!(replay("derive", checks::derive::check) >= 5);
}
