//! Fuzz target: raw HTTP/1.1 bytes through an in-memory connection to a server that verifies tokens (`vouch_mcp::fuzz::http`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_mcp::fuzz::http(data, true));
