//! The checked-in TypeScript bindings match the Rust schema: the demo's
//! table (`examples/site_banner/SiteBanner.ts`), the tables of the
//! TypeScript tests (`clients/ts/test/bindings/tables.ts`: the demo's and
//! `Note`) and the client's error codes (`clients/ts/src/codes.ts`). When
//! one differs the test fails, naming the first differing line;
//! `KV_UPDATE_TS=1 cargo test --test ts_bindings` rewrites them instead.

#[path = "../examples/site_banner/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../examples/ts_test_server/tables.rs"]
mod tables;

use std::path::Path;

use kv_runtime::ts::Bindings;

#[test]
fn checked_in_typescript_matches_the_rust_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        (
            "examples/site_banner/SiteBanner.ts",
            Bindings::new().table::<app::SiteBanner>(),
        ),
        (
            "clients/ts/test/bindings/tables.ts",
            Bindings::new()
                .table::<app::SiteBanner>()
                .table::<tables::Note>(),
        ),
        ("clients/ts/src/codes.ts", Bindings::new()),
    ];
    let stale: Vec<String> = files
        .iter()
        .filter_map(|(path, bindings)| bindings.verify(root.join(path)).err())
        .map(|e| e.to_string())
        .collect();
    assert!(stale.is_empty(), "{}", stale.join("\n"));
}

#[test]
fn export_writes_one_file_named_after_the_value_type() {
    let dir = std::env::temp_dir().join(format!("kv-ts-export-{}", std::process::id()));
    let path = kv_runtime::ts::export::<app::SiteBanner>(&dir).expect("export");
    assert_eq!(path, dir.join("SiteBanner.ts"));
    let text = std::fs::read_to_string(&path).expect("read");
    assert_eq!(text, Bindings::new().table::<app::SiteBanner>().render());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_bindings_say_what_the_derive_knows() {
    let banner = Bindings::new().table::<app::SiteBanner>().render();
    for line in [
        "export type SiteBannerKey = \"banner\";",
        "  name: \"siteBanner\";",
        "  softDelete: true;",
        "  history: true;",
        "  writeRole: { role: \"admin\" };",
        "    restore: \"POST /{key}/restore\";",
        "    history: \"GET /{key}/history\";",
        "    revert: \"POST /{key}/revert\";",
    ] {
        assert!(banner.contains(line), "{line} missing in:\n{banner}");
    }
    let note = Bindings::new().table::<tables::Note>().render();
    for line in [
        "export type NoteKey = string;",
        "  softDelete: false;",
        "  history: false;",
        "  writeRole: { role: \"editor\" };",
    ] {
        assert!(note.contains(line), "{line} missing in:\n{note}");
    }
    assert!(!note.contains("restore:"), "{note}");
    assert!(!note.contains("revert:"), "{note}");
    // Each type once, even when used twice or by two tables.
    let both = Bindings::new()
        .table::<tables::Note>()
        .table::<app::SiteBanner>()
        .render();
    assert_eq!(both.matches("export type Priority =").count(), 1);
    assert_eq!(both.matches("export type ErrorCode =").count(), 1);
}
