//! OIDC discovery of the JWKS location: `{issuer}/.well-known/openid-configuration` read for `jwks_uri`; pure parsing.
//!
//! Used only when no JWKS URL is configured and `{issuer}/oauth/jwks` (the guide's location,
//! always tried first) does not serve the issuer's JWKS. The document must name exactly the
//! configured issuer (OpenID Connect Discovery 1.0 section 4.3, RFC 8414 section 3.3), or an
//! attacker-chosen document could redirect key fetching.

use std::fmt;

use serde_json::Value;

use super::fetch::FetchError;
use super::strict_json;

/// Why discovery gave no JWKS URL.
#[derive(Debug)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// Fetching the discovery document failed.
    Fetch(FetchError),
    /// The document is not a JSON object (or names a member twice).
    NotJson,
    /// `issuer` is missing or not byte for byte the configured issuer.
    IssuerMismatch,
    /// `jwks_uri` is missing or not a string.
    NoJwksUri,
    /// `jwks_uri` breaks the fetch rules (not https, or plain http off loopback).
    BadJwksUri(FetchError),
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "discovery document fetch failed: {e}"),
            Self::NotJson => f.write_str("discovery document is not a JSON object"),
            Self::IssuerMismatch => {
                f.write_str("discovery document names another issuer than VOUCH_ISSUER")
            }
            Self::NoJwksUri => f.write_str("discovery document has no jwks_uri"),
            Self::BadJwksUri(e) => write!(f, "discovered jwks_uri refused: {e}"),
        }
    }
}

impl std::error::Error for DiscoveryError {}

/// The discovery document URL for `issuer`: any trailing `/` removed, then the well-known path
/// appended (OpenID Connect Discovery 1.0 section 4).
pub fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Reads `jwks_uri` from a discovery document whose `issuer` must equal `issuer` exactly.
pub fn jwks_uri(document: &[u8], issuer: &str) -> Result<String, DiscoveryError> {
    let doc = strict_json::parse_object(document).map_err(|_| DiscoveryError::NotJson)?;
    match doc.get("issuer") {
        Some(Value::String(s)) if s == issuer => {}
        _ => return Err(DiscoveryError::IssuerMismatch),
    }
    match doc.get("jwks_uri") {
        Some(Value::String(uri)) => Ok(uri.clone()),
        _ => Err(DiscoveryError::NoJwksUri),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_drops_the_trailing_slash() {
        assert_eq!(
            discovery_url("https://tenant.auth0.com/"),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url("https://kc.example/realms/r"),
            "https://kc.example/realms/r/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuer_must_match_byte_for_byte() {
        let doc = br#"{"issuer":"https://a.example/","jwks_uri":"https://a.example/keys"}"#;
        assert_eq!(
            jwks_uri(doc, "https://a.example/").unwrap(),
            "https://a.example/keys"
        );
        assert!(matches!(
            jwks_uri(doc, "https://a.example"),
            Err(DiscoveryError::IssuerMismatch)
        ));
        assert!(matches!(
            jwks_uri(br#"{"issuer":"https://a.example/"}"#, "https://a.example/"),
            Err(DiscoveryError::NoJwksUri)
        ));
        assert!(matches!(
            jwks_uri(
                br#"{"issuer":"x","issuer":"https://a.example/","jwks_uri":"u"}"#,
                "https://a.example/"
            ),
            Err(DiscoveryError::NotJson)
        ));
    }
}
