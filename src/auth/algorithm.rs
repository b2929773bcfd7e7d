//! The JWS signature algorithms the verifier can be configured to accept (RFC 7518 section 3, RFC 8037); pure.

use std::fmt;

/// One signature algorithm. Which ones a server accepts comes from its configuration
/// ([`super::Policy::algorithms`]); a token's `alg` is only ever looked up in that list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// ECDSA on P-256 with SHA-256, signature R||S (64 bytes). The guide's issuer signs this.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, modulus of 2048 to 8192 bits.
    Rs256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt, modulus of 2048 to 8192 bits.
    Ps256,
    /// EdDSA with Ed25519 (`crv: Ed25519` only; Ed448 is refused).
    EdDsa,
}

/// The name in a comma-separated algorithm list is not one this verifier implements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedAlgorithm(pub String);

impl fmt::Display for UnsupportedAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported algorithm {:?} (supported: ES256, RS256, PS256, EdDSA)",
            self.0
        )
    }
}

impl std::error::Error for UnsupportedAlgorithm {}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 4] = [Self::Es256, Self::Rs256, Self::Ps256, Self::EdDsa];

    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The algorithm with exactly this JWS name (case-sensitive, as `alg` is).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Parses a comma-separated list such as `ES256,RS256` (spaces around names ignored,
    /// duplicates dropped). An empty list is refused: a verifier with no algorithm accepts nothing.
    pub fn parse_list(list: &str) -> Result<Vec<Self>, UnsupportedAlgorithm> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim) {
            let alg = Self::from_name(name).ok_or_else(|| UnsupportedAlgorithm(name.to_owned()))?;
            if !out.contains(&alg) {
                out.push(alg);
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parses_known_names_only() {
        assert_eq!(
            Algorithm::parse_list("ES256, RS256,EdDSA,RS256").unwrap(),
            [Algorithm::Es256, Algorithm::Rs256, Algorithm::EdDsa]
        );
        for bad in ["HS256", "none", "es256", "", "ES256,", "ES384"] {
            assert!(Algorithm::parse_list(bad).is_err(), "{bad:?}");
        }
    }
}
