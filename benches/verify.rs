//! Cost of one full ES256 token verification (parse, header checks, p256 verify, claims), and of a
//! cached one, measured in-process without the network.
//!
//! ```sh
//! cargo bench --bench verify
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use vouch_mcp::auth::jwt::{self, AudiencePolicy, Policy};
use vouch_mcp::auth::{Authenticator, StaticKeys};

#[path = "../src/bin/vouch-mcp/dev.rs"]
#[allow(dead_code)]
mod dev;
use dev::DevIssuer;

fn per_op(label: &str, iterations: u32, mut f: impl FnMut()) {
    // Warm up, then time a fixed number of iterations.
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let each = start.elapsed() / iterations;
    println!(
        "{label:<48} {:>8.2} µs/op  ({:>8.0} ops/s on one core)",
        micros(each),
        1.0 / each.as_secs_f64()
    );
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    // `cargo test --all-targets` runs this binary too (debug build, no `--bench`): skip the timing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("verify: timing runs only under `cargo bench --bench verify`");
        return;
    }
    let issuer =
        DevIssuer::from_secret("https://issuer.bench", "k1", [7; 32]).expect("valid scalar");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let aud = "https://mcp.bench/mcp";
    let token = issuer.mint(&issuer.claims(aud, "alice", "alice@example.com", true, now, 3600));
    let keys = Arc::new(issuer.key_set());
    let policy = Policy::new(
        "https://issuer.bench",
        AudiencePolicy::OneOf(vec![aud.into()]),
    );

    per_op(
        "jwt::verify (no cache: parse + ECDSA + claims)",
        5_000,
        || {
            jwt::verify(&token, &keys, &policy, now).expect("valid token");
        },
    );

    let auth = Authenticator::new(policy.clone(), Arc::new(StaticKeys(keys.clone())), vec![]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    per_op("Authenticator::verify_token (cache hit)", 200_000, || {
        rt.block_on(auth.verify_token(&token, now))
            .expect("valid token");
    });
}
