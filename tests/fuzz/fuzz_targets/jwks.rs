//! Fuzz target: `vouch_mcp::fuzz::jwks` (its doc comment lists the input format and invariants).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_mcp::fuzz::jwks(data));
