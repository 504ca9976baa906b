//! Fuzz target `derive`: see `checks/derive.rs` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| kv_fuzz::checks::derive::check(data));
