//! Hostile input never panics the auth parsers: deterministic mutations of valid tokens of every
//! algorithm, of a JWKS holding every key type, and of JSON for the strict parser.

use std::panic::catch_unwind;

use serde_json::json;

use super::kit::Signer;
use crate::auth::algorithm::Algorithm;
use crate::auth::jwks::KeySet;
use crate::auth::jwt::{self, AudiencePolicy, Policy};
use crate::auth::strict_json;

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
fn mutated_tokens_of_every_algorithm_never_panic_the_verifier() {
    let mut policy = Policy::new(
        "https://i.test",
        AudiencePolicy::OneOf(vec!["https://r.test/mcp".into()]),
    );
    policy.algorithms = Algorithm::ALL.to_vec();
    let claims =
        json!({"iss": "https://i.test", "aud": "https://r.test/mcp", "exp": 1_750_000_600});
    for (n, alg) in Algorithm::ALL.into_iter().enumerate() {
        let signer = Signer::new(alg, "k", [7; 32]);
        let token = signer.sign_raw(
            &serde_json::to_vec(&json!({"alg": alg.name(), "kid": "k"})).unwrap(),
            &serde_json::to_vec(&claims).unwrap(),
        );
        let keys = signer.key_set();
        assert!(jwt::verify(&token, &keys, &policy, 1_750_000_100).is_ok());
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 + n as u64);
        for i in 0..2_000 {
            let bytes = mutate(&mut rng, token.as_bytes());
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let result = catch_unwind(|| jwt::verify(&text, &keys, &policy, 1_750_000_100));
            assert!(result.is_ok(), "{alg} iteration {i} panicked on {text:?}");
        }
    }
}

#[test]
fn mutated_jwks_of_every_key_type_and_mutated_json_never_panic_the_parsers() {
    let jwks = json!({"keys": Algorithm::ALL
        .iter()
        .enumerate()
        .map(|(i, alg)| Signer::new(*alg, &format!("k{i}"), [7; 32]).public_jwk())
        .collect::<Vec<_>>()})
    .to_string();
    assert_eq!(KeySet::parse(jwks.as_bytes()).unwrap().0.len(), 4);
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for i in 0..3_000 {
        let doc = mutate(&mut rng, jwks.as_bytes());
        assert!(
            catch_unwind(|| KeySet::parse(&doc)).is_ok(),
            "jwks iteration {i}"
        );
        assert!(
            catch_unwind(|| strict_json::parse_object(&doc)).is_ok(),
            "strict iteration {i}"
        );
    }
}
