//! Fuzz target `cursor`: see `checks/cursor.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kv_fuzz::checks::cursor::check(data));
