//! Cost of token verification in one run, on the same token and key for each comparison: the
//! table-based ES256 signature check against p256's `VerifyingKey::verify` and ring's
//! `ECDSA_P256_SHA256_FIXED`; RS256, PS256 and EdDSA (ring); whole first-seen tokens (parse,
//! header, signature, claims) for each algorithm; and a cache hit.
//!
//! ```sh
//! cargo bench --bench verify
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use ring::signature::{self as ring_sig, KeyPair as _};
use serde_json::{json, Value};
use vouch_mcp::auth::{Algorithm, AudiencePolicy, Authenticator, KeySet, Policy, StaticKeys};

#[path = "../src/bin/vouch-mcp/dev.rs"]
#[allow(dead_code)]
mod dev;
use dev::DevIssuer;

const ISSUER: &str = "https://issuer.bench";
const AUD: &str = "https://mcp.bench/mcp";
/// A fixed instant inside every token's window.
const NOW: u64 = 1_785_196_800; // 2026-07-28T00:00:00Z

struct Row {
    label: String,
    each: Duration,
}

fn per_op(rows: &mut Vec<Row>, label: &str, iterations: u32, mut f: impl FnMut()) {
    // Warm up, then take the best of three timed runs (the machine is shared).
    for _ in 0..iterations / 10 {
        f();
    }
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        best = best.min(start.elapsed() / iterations);
    }
    println!(
        "{label:<58} {:>9.2} µs/op  ({:>9.0} ops/s on one core)",
        best.as_secs_f64() * 1e6,
        1.0 / best.as_secs_f64()
    );
    rows.push(Row {
        label: label.to_owned(),
        each: best,
    });
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload` and the decoded signature of a compact token.
fn split(token: &str) -> (&str, Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    (
        &token[..dot],
        URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap(),
    )
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUD, "sub": "alice", "scope": "mcp:read",
           "iat": NOW - 10, "exp": NOW + 3600, "client_id": "bench"})
}

fn signed(header: Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&serde_json::to_vec(&claims()).unwrap())
    );
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// The first test RSA key (2048 bits) and its JWK `n` and `e`.
fn rsa_pair() -> (ring_sig::RsaKeyPair, String, String) {
    let doc: Value =
        serde_json::from_str(include_str!("../tests/vectors/test_rsa_keys.json")).unwrap();
    let key = &doc["keys"][0];
    let der = base64::engine::general_purpose::STANDARD
        .decode(key["der"].as_str().unwrap())
        .unwrap();
    (
        ring_sig::RsaKeyPair::from_der(&der).unwrap(),
        key["n"].as_str().unwrap().to_owned(),
        key["e"].as_str().unwrap().to_owned(),
    )
}

fn main() {
    // `cargo test --all-targets` runs this binary too (debug build, no `--bench`): skip the timing.
    if !std::env::args().any(|a| a == "--bench") {
        println!("verify: timing runs only under `cargo bench --bench verify`");
        return;
    }
    let mut rows = Vec::new();
    let rng = ring::rand::SystemRandom::new();

    // ES256: one key, one token, three verifiers of its signature.
    let issuer = DevIssuer::from_secret(ISSUER, "ec", [7; 32]).expect("valid scalar");
    let es_token = issuer.mint(&serde_json::from_value(claims()).unwrap());
    let (es_input, es_sig) = split(&es_token);
    let ec_jwks = issuer.jwks();
    let point = {
        let x = URL_SAFE_NO_PAD
            .decode(ec_jwks["keys"][0]["x"].as_str().unwrap())
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode(ec_jwks["keys"][0]["y"].as_str().unwrap())
            .unwrap();
        [&[4u8][..], &x, &y].concat()
    };
    let p256_key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
    let p256_sig = p256::ecdsa::Signature::from_slice(&es_sig).unwrap();
    let ring_es = ring_sig::UnparsedPublicKey::new(&ring_sig::ECDSA_P256_SHA256_FIXED, &point);

    // RS256/PS256 and EdDSA keys and tokens.
    let (rsa, rsa_n, rsa_e) = rsa_pair();
    let rsa_sign = |padding: &'static dyn ring_sig::RsaEncoding| {
        let rsa = &rsa;
        let rng = &rng;
        move |input: &[u8]| {
            let mut sig = vec![0; rsa.public().modulus_len()];
            rsa.sign(padding, rng, input, &mut sig).unwrap();
            sig
        }
    };
    let rs_token = signed(
        json!({"alg": "RS256", "kid": "rsa", "typ": "at+jwt"}),
        rsa_sign(&ring_sig::RSA_PKCS1_SHA256),
    );
    let ps_token = signed(
        json!({"alg": "PS256", "kid": "rsa-pss", "typ": "at+jwt"}),
        rsa_sign(&ring_sig::RSA_PSS_SHA256),
    );
    let ed = ring_sig::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let ed_token = signed(json!({"alg": "EdDSA", "kid": "ed", "typ": "at+jwt"}), |i| {
        ed.sign(i).as_ref().to_vec()
    });
    let jwks = json!({"keys": [
        ec_jwks["keys"][0],
        {"kty": "RSA", "kid": "rsa", "alg": "RS256", "n": rsa_n, "e": rsa_e},
        {"kty": "RSA", "kid": "rsa-pss", "alg": "PS256", "n": rsa_n, "e": rsa_e},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key().as_ref())},
    ]});
    let parse_started = Instant::now();
    let (keys, skipped) = KeySet::parse(jwks.to_string().as_bytes()).unwrap();
    println!(
        "KeySet::parse of 4 keys (builds the ES256 key table): {:.2} ms",
        parse_started.elapsed().as_secs_f64() * 1e3
    );
    assert!(skipped.is_empty());
    let keys = Arc::new(keys);

    println!("\n-- signature step only, same ES256 token and key --");
    per_op(
        &mut rows,
        "ES256 new verify (tables, KeySet::verify_detached)",
        20_000,
        || {
            keys.verify_detached(Some("ec"), Algorithm::Es256, es_input.as_bytes(), &es_sig)
                .expect("valid");
        },
    );
    per_op(&mut rows, "ES256 p256 VerifyingKey::verify", 3_000, || {
        p256_key
            .verify(es_input.as_bytes(), &p256_sig)
            .expect("valid");
    });
    per_op(
        &mut rows,
        "ES256 ring ECDSA_P256_SHA256_FIXED",
        20_000,
        || {
            ring_es.verify(es_input.as_bytes(), &es_sig).expect("valid");
        },
    );
    for (label, kid, alg, token) in [
        (
            "RS256 verify (ring RSA_PKCS1_2048_8192_SHA256)",
            "rsa",
            Algorithm::Rs256,
            &rs_token,
        ),
        (
            "PS256 verify (ring RSA_PSS_2048_8192_SHA256)",
            "rsa-pss",
            Algorithm::Ps256,
            &ps_token,
        ),
        (
            "EdDSA verify (ring ED25519)",
            "ed",
            Algorithm::EdDsa,
            &ed_token,
        ),
    ] {
        let (input, sig) = split(token);
        per_op(&mut rows, label, 20_000, || {
            keys.verify_detached(Some(kid), alg, input.as_bytes(), &sig)
                .expect("valid");
        });
    }

    println!("\n-- whole first-seen token (parse, header, signature, claims; cache off) --");
    let mut policy = Policy::new(ISSUER, AudiencePolicy::OneOf(vec![AUD.into()]));
    policy.algorithms = Algorithm::ALL.to_vec();
    let uncached = Authenticator::new(policy.clone(), Arc::new(StaticKeys(keys.clone())), vec![])
        .with_verify_cache_entries(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (label, token) in [
        ("ES256 token, first seen", &es_token),
        ("RS256 token, first seen", &rs_token),
        ("PS256 token, first seen", &ps_token),
        ("EdDSA token, first seen", &ed_token),
    ] {
        per_op(&mut rows, label, 10_000, || {
            rt.block_on(uncached.verify_token(token, NOW))
                .expect("valid");
        });
    }

    println!("\n-- cache --");
    let cached = Authenticator::new(policy, Arc::new(StaticKeys(keys.clone())), vec![]);
    rt.block_on(cached.verify_token(&es_token, NOW)).unwrap();
    per_op(
        &mut rows,
        "Authenticator::verify_token (cache hit)",
        200_000,
        || {
            rt.block_on(cached.verify_token(&es_token, NOW))
                .expect("valid");
        },
    );

    let find = |label: &str| {
        rows.iter()
            .find(|r| r.label.starts_with(label))
            .unwrap()
            .each
    };
    let new = find("ES256 new");
    let p256 = find("ES256 p256");
    let ring = find("ES256 ring");
    println!(
        "\nES256 new / ring = {:.2}x (target <= 1.3x); p256 / new = {:.2}x (target >= 4x)",
        new.as_secs_f64() / ring.as_secs_f64(),
        p256.as_secs_f64() / new.as_secs_f64()
    );
}
