//! Fuzz target `router`: see `checks/router.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kv_fuzz::checks::router::check(data));
