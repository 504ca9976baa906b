//! The backend conformance suite on the memory backend.

kv_runtime::conformance_suite!(async { kv_runtime::Store::memory() });
