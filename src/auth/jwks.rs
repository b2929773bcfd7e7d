//! JWKS parsing into a set of usable ES256 verification keys; pure, no I/O.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use p256::EncodedPoint;
use serde_json::{Map, Value};

use super::strict_json::{self, StrictJsonError};

/// One usable verification key: an EC P-256 public key for ES256, and its `kid` if it had one.
#[derive(Clone)]
pub struct Jwk {
    /// The key id, compared as an opaque, case-sensitive string.
    pub kid: Option<String>,
    /// The verified curve point.
    pub key: VerifyingKey,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The usable keys of one JWKS document.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

/// A key the parser dropped, and why; reported to the log, never to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position of the key in the document's `keys` array.
    pub index: usize,
    /// The key's `kid`, when it had a string one.
    pub kid: Option<String>,
    /// Why it cannot be used.
    pub reason: KeyRejection,
}

/// Why a JWK is not usable for ES256 verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRejection {
    /// The entry is not a JSON object.
    NotAnObject,
    /// `kty` is not `EC`.
    WrongKeyType,
    /// `crv` is not `P-256`.
    WrongCurve,
    /// `use` is present and not `sig`.
    NotForSignatures,
    /// `alg` is present and not `ES256`.
    WrongAlgorithm,
    /// `key_ops` is present and does not contain `verify`.
    NotForVerification,
    /// `x` or `y` is missing, not canonical base64url, or not exactly 32 bytes.
    BadCoordinates,
    /// The coordinates do not name a point on P-256.
    NotOnCurve,
    /// The entry carries private key material (`d`); a JWKS endpoint must never publish it.
    PrivateKeyPublished,
    /// `kid` is present but not a string.
    BadKid,
    /// An earlier usable key already has this `kid`; the first one wins.
    DuplicateKid,
}

impl fmt::Display for KeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnObject => "not a JSON object",
            Self::WrongKeyType => "kty is not EC",
            Self::WrongCurve => "crv is not P-256",
            Self::NotForSignatures => "use is not sig",
            Self::WrongAlgorithm => "alg is not ES256",
            Self::NotForVerification => "key_ops lacks verify",
            Self::BadCoordinates => "x/y are not 32-byte base64url values",
            Self::NotOnCurve => "point is not on P-256",
            Self::PrivateKeyPublished => "private key material (d) published",
            Self::BadKid => "kid is not a string",
            Self::DuplicateKid => "duplicate kid",
        })
    }
}

/// Why a whole JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksParseError {
    /// Not a JSON object (or duplicate member names).
    NotJson,
    /// No `keys` array.
    NoKeysArray,
    /// The document parsed but no key in it is usable.
    NoUsableKeys,
}

impl fmt::Display for JwksParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotJson => "jwks is not a JSON object",
            Self::NoKeysArray => "jwks has no keys array",
            Self::NoUsableKeys => "jwks has no usable ES256 key",
        })
    }
}

impl std::error::Error for JwksParseError {}

/// Where a lookup by `kid` landed.
#[derive(Debug)]
pub enum KeyLookup<'a> {
    /// The key to verify with.
    Found(&'a VerifyingKey),
    /// The token names a `kid` this set does not have.
    UnknownKid,
    /// The token has no `kid` and the set holds more than one key, so any choice would be a guess.
    AmbiguousWithoutKid,
}

impl KeySet {
    /// Builds a set from keys already checked by the caller (for embedding with static keys and tests).
    pub fn from_keys(keys: Vec<Jwk>) -> Self {
        Self { keys }
    }

    /// Parses a JWKS document, keeping the usable keys and reporting the rest.
    pub fn parse(bytes: &[u8]) -> Result<(Self, Vec<SkippedKey>), JwksParseError> {
        let doc = strict_json::parse_object(bytes).map_err(|e| match e {
            StrictJsonError::NotJson
            | StrictJsonError::NotObject
            | StrictJsonError::DuplicateMember => JwksParseError::NotJson,
        })?;
        let Some(Value::Array(entries)) = doc.get("keys") else {
            return Err(JwksParseError::NoKeysArray);
        };
        let mut keys: Vec<Jwk> = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
            let parsed = match entry {
                Value::Object(map) => parse_jwk(map),
                _ => Err(KeyRejection::NotAnObject),
            };
            let parsed = parsed.and_then(|jwk| {
                let duplicate = jwk.kid.is_some() && keys.iter().any(|k| k.kid == jwk.kid);
                if duplicate {
                    Err(KeyRejection::DuplicateKid)
                } else {
                    Ok(jwk)
                }
            });
            match parsed {
                Ok(jwk) => keys.push(jwk),
                Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
            }
        }
        if keys.is_empty() {
            return Err(JwksParseError::NoUsableKeys);
        }
        Ok((Self { keys }, skipped))
    }

    /// Finds the key for a token's `kid` (or lack of one).
    pub fn find(&self, kid: Option<&str>) -> KeyLookup<'_> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .map_or(KeyLookup::UnknownKid, |k| KeyLookup::Found(&k.key)),
            None if self.keys.len() == 1 => KeyLookup::Found(&self.keys[0].key),
            None => KeyLookup::AmbiguousWithoutKid,
        }
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set has no key (only possible through [`KeySet::from_keys`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }
}

/// Checks one JWK object against the ES256 rules (RFC 7517, RFC 7518 section 6.2, RFC 8725 section 3.1).
pub fn parse_jwk(map: &Map<String, Value>) -> Result<Jwk, KeyRejection> {
    if map.get("kty").and_then(Value::as_str) != Some("EC") {
        return Err(KeyRejection::WrongKeyType);
    }
    if map.get("crv").and_then(Value::as_str) != Some("P-256") {
        return Err(KeyRejection::WrongCurve);
    }
    if let Some(u) = map.get("use") {
        if u.as_str() != Some("sig") {
            return Err(KeyRejection::NotForSignatures);
        }
    }
    if let Some(alg) = map.get("alg") {
        if alg.as_str() != Some("ES256") {
            return Err(KeyRejection::WrongAlgorithm);
        }
    }
    if let Some(ops) = map.get("key_ops") {
        let has_verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !has_verify {
            return Err(KeyRejection::NotForVerification);
        }
    }
    if map.contains_key("d") {
        return Err(KeyRejection::PrivateKeyPublished);
    }
    let kid = match map.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(KeyRejection::BadKid),
    };
    let x = coordinate(map.get("x"))?;
    let y = coordinate(map.get("y"))?;
    let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    let key = VerifyingKey::from_encoded_point(&point).map_err(|_| KeyRejection::NotOnCurve)?;
    Ok(Jwk { kid, key })
}

fn coordinate(value: Option<&Value>) -> Result<[u8; 32], KeyRejection> {
    let text = value
        .and_then(Value::as_str)
        .ok_or(KeyRejection::BadCoordinates)?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| KeyRejection::BadCoordinates)?;
    bytes.try_into().map_err(|_| KeyRejection::BadCoordinates)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7515 appendix A.3 public key.
    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    fn jwks(keys: &str) -> Vec<u8> {
        format!(r#"{{"keys":[{keys}]}}"#).into_bytes()
    }

    #[test]
    fn keeps_usable_key_and_skips_others() {
        let doc = jwks(&format!(
            r#"{{"kty":"RSA","kid":"r","n":"x","e":"AQAB"}},
               {{"kty":"EC","crv":"P-256","kid":"a","x":"{X}","y":"{Y}","use":"sig","alg":"ES256"}},
               {{"kty":"EC","crv":"P-384","kid":"b","x":"{X}","y":"{Y}"}}"#
        ));
        let (set, skipped) = KeySet::parse(&doc).unwrap();
        assert_eq!(set.len(), 1);
        assert!(matches!(set.find(Some("a")), KeyLookup::Found(_)));
        assert!(matches!(set.find(Some("A")), KeyLookup::UnknownKid));
        assert!(matches!(set.find(None), KeyLookup::Found(_)));
        let reasons: Vec<_> = skipped.iter().map(|s| s.reason).collect();
        assert_eq!(
            reasons,
            [KeyRejection::WrongKeyType, KeyRejection::WrongCurve]
        );
    }

    #[test]
    fn rejects_key_with_wrong_use_alg_or_ops() {
        for (extra, reason) in [
            (r#""use":"enc""#, KeyRejection::NotForSignatures),
            (r#""alg":"ES384""#, KeyRejection::WrongAlgorithm),
            (r#""key_ops":["sign"]"#, KeyRejection::NotForVerification),
            (r#""d":"AAAA""#, KeyRejection::PrivateKeyPublished),
        ] {
            let doc = jwks(&format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{X}","y":"{Y}",{extra}}}"#
            ));
            let err = KeySet::parse(&doc).unwrap_err();
            assert_eq!(err, JwksParseError::NoUsableKeys, "{extra}");
            let map: Map<String, Value> = serde_json::from_str(&format!(
                r#"{{"kty":"EC","crv":"P-256","x":"{X}","y":"{Y}",{extra}}}"#
            ))
            .unwrap();
            assert_eq!(parse_jwk(&map).unwrap_err(), reason);
        }
    }

    #[test]
    fn accepts_key_ops_with_verify() {
        let doc = format!(
            r#"{{"kty":"EC","crv":"P-256","x":"{X}","y":"{Y}","key_ops":["sign","verify"]}}"#
        );
        let map: Map<String, Value> = serde_json::from_str(&doc).unwrap();
        assert!(parse_jwk(&map).is_ok());
    }

    #[test]
    fn rejects_long_coordinates() {
        // 33 bytes: a leading zero byte is still not the 32 bytes RFC 7518 section 6.2.1.2 requires.
        let long = URL_SAFE_NO_PAD.encode([0u8; 33]);
        let doc = format!(r#"{{"kty":"EC","crv":"P-256","x":"{long}","y":"{Y}"}}"#);
        let map: Map<String, Value> = serde_json::from_str(&doc).unwrap();
        assert_eq!(parse_jwk(&map).unwrap_err(), KeyRejection::BadCoordinates);
    }

    #[test]
    fn rejects_point_off_curve_and_short_coordinates() {
        let off = format!(r#"{{"kty":"EC","crv":"P-256","x":"{X}","y":"{X}"}}"#);
        let map: Map<String, Value> = serde_json::from_str(&off).unwrap();
        assert_eq!(parse_jwk(&map).unwrap_err(), KeyRejection::NotOnCurve);
        let short = format!(r#"{{"kty":"EC","crv":"P-256","x":"AAAA","y":"{Y}"}}"#);
        let map: Map<String, Value> = serde_json::from_str(&short).unwrap();
        assert_eq!(parse_jwk(&map).unwrap_err(), KeyRejection::BadCoordinates);
    }

    #[test]
    fn missing_kid_is_ambiguous_with_two_keys() {
        let k = format!(r#"{{"kty":"EC","crv":"P-256","x":"{X}","y":"{Y}"}}"#);
        let (set, _) = KeySet::parse(&jwks(&format!("{k},{k}"))).unwrap();
        assert!(matches!(set.find(None), KeyLookup::AmbiguousWithoutKid));
    }

    #[test]
    fn rejects_document_without_keys() {
        assert_eq!(
            KeySet::parse(b"{}").unwrap_err(),
            JwksParseError::NoKeysArray
        );
        assert_eq!(
            KeySet::parse(b"<html>").unwrap_err(),
            JwksParseError::NotJson
        );
        assert_eq!(
            KeySet::parse(&jwks("")).unwrap_err(),
            JwksParseError::NoUsableKeys
        );
    }
}
