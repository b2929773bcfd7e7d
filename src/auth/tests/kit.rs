//! Test signers for every algorithm, and the per-thread "current algorithm" the rule suites run under.
//!
//! Each rule test runs its body once per algorithm ([`for_each_alg`]); the helpers that mint
//! tokens and build key sets read [`current`], so one body checks a rule for ES256, RS256,
//! PS256 and EdDSA alike. Secrets name keys: the same secret gives the same key of each type
//! (RSA keys come from `tests/vectors/test_rsa_keys.json`, test-only keys made with openssl).

use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use ring::signature::{self as ring_sig, KeyPair as _};
use serde_json::{json, Value};

use crate::auth::algorithm::Algorithm;
use crate::auth::jwks::{parse_jwk, Jwk, KeySet};

thread_local! {
    static CURRENT: Cell<Algorithm> = const { Cell::new(Algorithm::Es256) };
}

/// The algorithm the running test body is checking.
pub fn current() -> Algorithm {
    CURRENT.with(Cell::get)
}

/// Runs `body` once per algorithm, with [`current`] set to it.
pub fn for_each_alg(mut body: impl FnMut()) {
    for alg in Algorithm::ALL {
        CURRENT.with(|c| c.set(alg));
        // Printed output is shown for a failing test, naming the algorithm that failed.
        println!("--- algorithm {alg}");
        body();
    }
    CURRENT.with(|c| c.set(Algorithm::Es256));
}

/// [`for_each_alg`] for async bodies.
pub async fn for_each_alg_async<F, Fut>(mut body: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for alg in Algorithm::ALL {
        CURRENT.with(|c| c.set(alg));
        println!("--- algorithm {alg}");
        body().await;
    }
    CURRENT.with(|c| c.set(Algorithm::Es256));
}

/// One test RSA key: the private key (PKCS#1 DER) and the public JWK members.
pub struct RsaTestKey {
    /// The key pair (`None` for the 1024-bit key, which ring refuses to load).
    pub pair: Option<ring_sig::RsaKeyPair>,
    /// `n`, base64url.
    pub n: String,
    /// `e`, base64url.
    pub e: String,
}

/// The RSA test keys: three of 2048 bits, then one of 1024 bits (for the too-small rule).
pub fn rsa_keys() -> &'static [RsaTestKey] {
    static KEYS: OnceLock<Vec<RsaTestKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let doc: Value =
            serde_json::from_str(include_str!("../../../tests/vectors/test_rsa_keys.json"))
                .unwrap();
        doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let der = STANDARD.decode(k["der"].as_str().unwrap()).unwrap();
                let pair = ring_sig::RsaKeyPair::from_der(&der).ok();
                RsaTestKey {
                    pair,
                    n: k["n"].as_str().unwrap().to_owned(),
                    e: k["e"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    })
}

enum Key {
    Es256(SigningKey),
    Rsa(&'static RsaTestKey),
    Ed25519(ring_sig::Ed25519KeyPair),
}

/// A signing key of one algorithm under one `kid`.
pub struct Signer {
    alg: Algorithm,
    kid: String,
    key: Key,
}

impl Signer {
    /// The key of `alg` named by `secret` (for RSA: one of three fixed keys, chosen by `secret[0]`).
    pub fn new(alg: Algorithm, kid: &str, secret: [u8; 32]) -> Self {
        let key = match alg {
            Algorithm::Es256 => Key::Es256(SigningKey::from_slice(&secret).unwrap()),
            Algorithm::Rs256 | Algorithm::Ps256 => {
                // The suites' three secrets get three different keys.
                let index = match secret[0] {
                    7 => 0,
                    9 => 1,
                    13 => 2,
                    other => other as usize % 3,
                };
                Key::Rsa(&rsa_keys()[index])
            }
            Algorithm::EdDsa => {
                Key::Ed25519(ring_sig::Ed25519KeyPair::from_seed_unchecked(&secret).unwrap())
            }
        };
        Self {
            alg,
            kid: kid.to_owned(),
            key,
        }
    }

    /// The same key for the current algorithm.
    pub fn current(kid: &str, secret: [u8; 32]) -> Self {
        Self::new(current(), kid, secret)
    }

    /// The signature over `input`, as the JWS carries it (decoded).
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Es256(k) => {
                let sig: Signature = k.sign(input);
                sig.to_bytes().to_vec()
            }
            Key::Rsa(k) => {
                let padding: &dyn ring_sig::RsaEncoding = if self.alg == Algorithm::Rs256 {
                    &ring_sig::RSA_PKCS1_SHA256
                } else {
                    &ring_sig::RSA_PSS_SHA256
                };
                let pair = k.pair.as_ref().unwrap();
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(padding, &ring::rand::SystemRandom::new(), input, &mut sig)
                    .unwrap();
                sig
            }
            Key::Ed25519(k) => k.sign(input).as_ref().to_vec(),
        }
    }

    /// The public key as a JWK object, with `kid`, `use` and `alg`.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.key {
            Key::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
                    "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
                })
            }
            Key::Rsa(k) => json!({"kty": "RSA", "n": k.n, "e": k.e}),
            Key::Ed25519(k) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(k.public_key().as_ref()),
            }),
        };
        let map = jwk.as_object_mut().unwrap();
        map.insert("kid".into(), json!(self.kid));
        map.insert("use".into(), json!("sig"));
        map.insert("alg".into(), json!(self.alg.name()));
        jwk
    }

    /// The parsed public key.
    pub fn jwk(&self) -> Jwk {
        parse_jwk(self.public_jwk().as_object().unwrap()).unwrap()
    }

    /// A key set of this one key.
    pub fn key_set(&self) -> KeySet {
        KeySet::from_keys(vec![self.jwk()])
    }

    /// A compact token of these exact header and payload bytes.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig = self.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig));
        token
    }
}
