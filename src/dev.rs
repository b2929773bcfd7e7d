//! The dev issuer: a fresh ES256 key, its JWKS and metadata documents, and token minting (for `--dev` and tests).
//!
//! Never used unless asked for: the binary only builds one under `--dev`, which binds loopback only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use ring::rand::SecureRandom;
use serde_json::{json, Map, Value};

use crate::auth::jwks::{Jwk, KeySet};

/// An in-process ES256 issuer.
pub struct DevIssuer {
    issuer: String,
    kid: String,
    key: SigningKey,
}

impl std::fmt::Debug for DevIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevIssuer {
    /// A new issuer named `issuer` with a fresh key drawn from `rng`.
    pub fn generate(
        issuer: impl Into<String>,
        kid: impl Into<String>,
        rng: &dyn SecureRandom,
    ) -> Self {
        let key = loop {
            let mut bytes = [0u8; 32];
            rng.fill(&mut bytes)
                .expect("system randomness is available");
            // Fails only for 0 or >= n, about 2^-32 of draws: draw again.
            if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
                break key;
            }
        };
        Self {
            issuer: issuer.into(),
            kid: kid.into(),
            key,
        }
    }

    /// An issuer from a known 32-byte secret scalar (deterministic tests).
    pub fn from_secret(
        issuer: impl Into<String>,
        kid: impl Into<String>,
        secret: [u8; 32],
    ) -> Option<Self> {
        Some(Self {
            issuer: issuer.into(),
            kid: kid.into(),
            key: SigningKey::from_bytes(&secret.into()).ok()?,
        })
    }

    /// The issuer identifier (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key id in the JWKS and in minted headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK object.
    pub fn public_jwk(&self) -> Value {
        let point = self.key.verifying_key().to_encoded_point(false);
        json!({
            "kty": "EC",
            "crv": "P-256",
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point has x")),
            "y": URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point has y")),
        })
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.public_jwk()] })
    }

    /// The key set a verifier would parse from [`DevIssuer::jwks`].
    pub fn key_set(&self) -> KeySet {
        KeySet::from_keys(vec![Jwk::es256(
            Some(self.kid.clone()),
            *self.key.verifying_key(),
        )])
    }

    /// Signs `claims` with header `{"alg":"ES256","typ":"at+jwt","kid":...}`.
    pub fn mint(&self, claims: &Map<String, Value>) -> String {
        let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": self.kid});
        self.sign_raw(
            serde_json::to_vec(&header)
                .expect("header serializes")
                .as_slice(),
            serde_json::to_vec(claims)
                .expect("claims serialize")
                .as_slice(),
        )
    }

    /// Signs arbitrary header and payload bytes (tests build hostile tokens with this).
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let mut token = URL_SAFE_NO_PAD.encode(header);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig: Signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
        token
    }

    /// Standard claims for a dev token: `iss`, `aud`, `sub`, `email`, `iat`, `exp`, `hardware_verified`.
    pub fn claims(
        &self,
        audience: &str,
        sub: &str,
        email: &str,
        hardware_verified: bool,
        now: u64,
        ttl_secs: u64,
    ) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("aud".into(), json!(audience));
        claims.insert("sub".into(), json!(sub));
        claims.insert("email".into(), json!(email));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + ttl_secs));
        claims.insert("scope".into(), json!("openid email"));
        claims.insert("hardware_verified".into(), json!(hardware_verified));
        if hardware_verified {
            claims.insert(
                "hardware_aaguid".into(),
                json!("cb69481e-8ff7-4039-93ec-0a2729a154a8"),
            );
        }
        claims
    }

    /// OpenID Connect discovery and RFC 8414 metadata for this issuer (the same document serves both).
    pub fn authorization_server_metadata(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/oauth/jwks", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "authorization_endpoint": format!("{}/authorize", self.issuer),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["openid", "email"],
        })
    }
}
