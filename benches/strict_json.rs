//! Cost of the request path's strict JSON parse (`src/json.rs`: duplicate member names refused,
//! the parsed form bounded) against a plain `serde_json::from_slice::<Value>` of the same bodies:
//! a 2026-07-28 tools/call, a 2025-11-25 initialize and a 64-call 2025-03-26 batch.
//!
//! ```sh
//! cargo bench --bench strict_json
//! ```
//!
//! Rounds alternate the two parsers on each body so both see the same machine state; each
//! round times a block of parses, and the figure is the median round. `std::time` only.

use std::hint::black_box;
use std::time::Instant;

use serde_json::{json, Value};

// The parser itself, compiled into the bench from the same file (it is crate-private and pure).
// Its unit tests come along under cfg(test) but do not run here (harness = false).
#[path = "../src/json.rs"]
#[allow(dead_code, unused_imports)]
mod json;

/// The limits the request path uses with the default settings: a 4 MiB body reserves 8 times
/// its length, and a batch holds at most 64 messages.
const LIMITS: json::Limits = json::Limits {
    max_bytes: 8 * 4 * 1024 * 1024,
    max_batch: 64,
};
const ROUNDS: usize = 31;

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": meta}});
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {"roots": {"listChanged": true}, "sampling": {}, "elicitation": {}},
        "clientInfo": {"name": "example-client", "title": "Example Client", "version": "1.4.2"}}});
    let batch: Vec<Value> = (0..64)
        .map(|i| {
            json!({"jsonrpc": "2.0", "id": i, "method": "tools/call",
            "params": {"name": "sensitive-action", "arguments": {"item": format!("order-{i}")}}})
        })
        .collect();
    vec![
        (
            "tools/call (2026-07-28)",
            serde_json::to_vec(&call).unwrap(),
        ),
        (
            "initialize (2025-11-25)",
            serde_json::to_vec(&initialize).unwrap(),
        ),
        (
            "batch of 64 calls (2025-03-26)",
            serde_json::to_vec(&batch).unwrap(),
        ),
    ]
}

/// Nanoseconds per parse over a block of `n` parses.
fn time_block(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    println!(
        "{:<32} {:>7} {:>12} {:>12} {:>8}",
        "body", "bytes", "strict ns", "serde ns", "ratio"
    );
    for (label, body) in bodies() {
        // Same value either way; a parse that disagreed would make the comparison meaningless.
        let strict = json::parse(&body, LIMITS).expect("strict parse");
        let plain: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(strict, plain, "{label}");
        let n = (2_000_000 / body.len()).clamp(200, 20_000) as u32;
        // Warm-up.
        for _ in 0..n {
            black_box(json::parse(black_box(&body), LIMITS).unwrap());
            black_box(serde_json::from_slice::<Value>(black_box(&body)).unwrap());
        }
        let (mut s, mut p) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            let strict = || {
                black_box(json::parse(black_box(&body), LIMITS).unwrap());
            };
            let plain = || {
                black_box(serde_json::from_slice::<Value>(black_box(&body)).unwrap());
            };
            // Alternate which goes first, so neither always runs on a warmer cache.
            if round % 2 == 0 {
                s.push(time_block(n, strict));
                p.push(time_block(n, plain));
            } else {
                p.push(time_block(n, plain));
                s.push(time_block(n, strict));
            }
        }
        let (s, p) = (median(s), median(p));
        println!(
            "{label:<32} {:>7} {s:>12.0} {p:>12.0} {:>7.2}x",
            body.len(),
            s / p
        );
    }
}
