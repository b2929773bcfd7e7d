//! Fuzz target: the strict JSON-RPC parse and the core's decision (`vouch_mcp::fuzz::core_decision`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouch_mcp::fuzz::core_decision(data));
