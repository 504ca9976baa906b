//! Fuzz target `keys`: see `checks/keys.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kv_fuzz::checks::keys::check(data));
