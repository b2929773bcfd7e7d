//! Fuzz target: raw HTTP/1.1 bytes to a server with auth disabled, so every input reaches the core and runtime (`vouch_mcp::fuzz::http`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_mcp::fuzz::http(data, false));
