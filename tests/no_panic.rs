//! Hostile input never panics the auth parsers: thousands of deterministic mutations of a valid
//! token and a JWKS go through the same public entry points the server uses
//! (`Authenticator::verify_token`, `KeySet::parse`, the strict JSON parser). Tokens of every
//! algorithm are mutated in-crate (`src/auth/tests`); JSON-RPC bodies get the same treatment
//! through the protocol core, in its unit tests.

mod support;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use support::DevIssuer;
use vouch_mcp::auth::strict_json;
use vouch_mcp::auth::{AudiencePolicy, Authenticator, KeySet, Policy, StaticKeys};

/// xorshift64*: deterministic, so a failure is reproducible from the iteration number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[u8] = b".=+/ -_{}[]\":,\\\x00\xff0123456789eE";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(4) {
            0 if !out.is_empty() => {
                out.remove(at.min(out.len() - 1));
            }
            1 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < out.len() => out[at] ^= 1 << rng.below(8),
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mutated_tokens_never_panic_the_verifier() {
    let issuer = DevIssuer::from_secret("https://i.test", "k", [7; 32]).unwrap();
    let claims = issuer.claims(
        "https://r.test/mcp",
        "alice",
        "a@x.test",
        true,
        1_750_000_000,
        600,
    );
    let token = issuer.mint(&claims);
    let policy = Policy::new(
        "https://i.test",
        AudiencePolicy::OneOf(vec!["https://r.test/mcp".into()]),
    );
    // No refusal delay: the runtime below has no timers (and thousands of refusals would wait).
    let auth = Authenticator::new(
        policy,
        Arc::new(StaticKeys(Arc::new(issuer.key_set()))),
        vec![],
    )
    .with_signature_failure_delay(std::time::Duration::ZERO);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert!(rt
        .block_on(auth.verify_token(&token, 1_750_000_100))
        .is_ok());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..3_000 {
        let bytes = mutate(&mut rng, token.as_bytes());
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let result = catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(auth.verify_token(&text, 1_750_000_100))
                .map(|_| ())
        }));
        assert!(result.is_ok(), "iteration {i} panicked on {text:?}");
    }
}

#[test]
fn mutated_json_never_panics_the_strict_parser_or_the_jwks_parser() {
    let issuer = DevIssuer::from_secret("https://i.test", "k", [7; 32]).unwrap();
    let jwks = issuer.jwks().to_string();
    let rpc = r#"{"jsonrpc":"2.0","id":"7","method":"tools/call","params":{"name":"whoami","arguments":{"a":[1,2.5,{"b":null}]},"_meta":{"progressToken":3}}}"#;
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for i in 0..5_000 {
        let doc = mutate(&mut rng, jwks.as_bytes());
        assert!(
            catch_unwind(|| KeySet::parse(&doc)).is_ok(),
            "jwks iteration {i}"
        );
        let body = mutate(&mut rng, rpc.as_bytes());
        assert!(
            catch_unwind(|| strict_json::parse_object(&body)).is_ok(),
            "strict iteration {i}"
        );
    }
}
