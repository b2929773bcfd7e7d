//! JWKS parsing into a set of usable verification keys (EC P-256, RSA, OKP Ed25519); pure, no I/O.
//!
//! Each key is checked against the rules of its own type, and a P-256 key gets its precomputed
//! verification table here, when the set is parsed, so no request ever pays for it.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::VerifyingKey;
use p256::EncodedPoint;
use ring::digest;
use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::es256::KeyTable;
use super::strict_json::{self, StrictJsonError};

/// Smallest accepted RSA modulus (RFC 7518 section 3.3 requires 2048 bits).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest accepted RSA modulus (ring's limit; real issuers use 2048-4096).
pub const RSA_MAX_BITS: usize = 8192;

/// The public key material of one JWK.
#[derive(Clone)]
pub enum PublicKey {
    /// EC P-256, for ES256, with its fixed-base table.
    P256 {
        /// The point, as p256 checked it.
        key: VerifyingKey,
        /// Multiples of the point for the fast verify.
        table: Arc<KeyTable>,
    },
    /// RSA, for RS256 and PS256: big-endian modulus and exponent without leading zeros.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
    /// OKP Ed25519, for EdDSA: the 32-byte public key.
    Ed25519([u8; 32]),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

impl PublicKey {
    /// Builds a P-256 key and its table.
    pub fn p256(key: VerifyingKey) -> Self {
        let table = KeyTable::new(key.as_affine()).expect("a VerifyingKey is never the identity");
        Self::P256 {
            key,
            table: Arc::new(table),
        }
    }

    /// Whether this key type can verify `alg` at all.
    pub fn fits(&self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (Self::P256 { .. }, Algorithm::Es256)
                | (Self::Rsa { .. }, Algorithm::Rs256 | Algorithm::Ps256)
                | (Self::Ed25519(_), Algorithm::EdDsa)
        )
    }

    /// The raw public material, for comparing two keys (tests).
    pub fn clone_material(&self) -> Vec<u8> {
        match self {
            Self::P256 { key, .. } => key.to_encoded_point(false).as_bytes().to_vec(),
            Self::Rsa { n, e } => [n.as_slice(), b"|", e.as_slice()].concat(),
            Self::Ed25519(x) => x.to_vec(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::P256 { .. } => "EC P-256",
            Self::Rsa { .. } => "RSA",
            Self::Ed25519(_) => "OKP Ed25519",
        }
    }
}

/// One usable verification key, its `kid` if it had one, and the algorithm its JWK pins.
#[derive(Clone)]
pub struct Jwk {
    /// The key id, compared as an opaque, case-sensitive string.
    pub kid: Option<String>,
    key: PublicKey,
    /// The JWK's `alg`, when it has one: the key then verifies only that algorithm.
    alg: Option<Algorithm>,
    /// SHA-256 of the key type, material and pinned algorithm: equal exactly when a cached
    /// verification made with the one still holds for the other.
    fingerprint: [u8; 32],
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("type", &self.key.kind())
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// A key from already checked material; `alg` pins it to one algorithm.
    pub fn new(kid: Option<String>, key: PublicKey, alg: Option<Algorithm>) -> Self {
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut field = |bytes: &[u8]| {
            ctx.update(&(bytes.len() as u64).to_be_bytes());
            ctx.update(bytes);
        };
        match &key {
            PublicKey::P256 { key, .. } => {
                field(b"EC P-256");
                field(key.to_encoded_point(false).as_bytes());
            }
            PublicKey::Rsa { n, e } => {
                field(b"RSA");
                field(n);
                field(e);
            }
            PublicKey::Ed25519(x) => {
                field(b"OKP Ed25519");
                field(x);
            }
        }
        field(alg.map_or("", Algorithm::name).as_bytes());
        let fingerprint = ctx
            .finish()
            .as_ref()
            .try_into()
            .expect("sha256 is 32 bytes");
        Self {
            kid,
            key,
            alg,
            fingerprint,
        }
    }

    /// An EC P-256 key for ES256 (embedding with pinned keys, the dev issuer).
    pub fn es256(kid: Option<String>, key: VerifyingKey) -> Self {
        Self::new(kid, PublicKey::p256(key), Some(Algorithm::Es256))
    }

    /// The key material.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// Whether this key may verify a token signed with `alg`: its type fits, and the JWK's own
    /// `alg`, when present, is that algorithm.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.key.fits(alg) && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// Identifies the key material (see the field's doc).
    pub fn fingerprint(&self) -> &[u8; 32] {
        &self.fingerprint
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

/// Why a JWK is not usable for verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRejection {
    /// The entry is not a JSON object.
    NotAnObject,
    /// `kty` is not `EC`, `RSA` or `OKP` (for instance `oct`: symmetric keys are never used).
    WrongKeyType,
    /// `crv` is not `P-256` (EC) or `Ed25519` (OKP).
    WrongCurve,
    /// `use` is present and not `sig`.
    NotForSignatures,
    /// `alg` is present and not an algorithm of this key type.
    WrongAlgorithm,
    /// `key_ops` is present and does not contain `verify`.
    NotForVerification,
    /// `x` or `y` is missing, not canonical base64url, or not exactly 32 bytes.
    BadCoordinates,
    /// The coordinates do not name a point on P-256.
    NotOnCurve,
    /// The entry carries private key material (`d`, or RSA's `p`, `q`, ...); a JWKS must never publish it.
    PrivateKeyPublished,
    /// `kid` is present but not a string.
    BadKid,
    /// An earlier usable key already has this `kid`; the first one wins.
    DuplicateKid,
    /// The entry mixes members of several key types (say `n` and `e` next to `crv`, `x`, `y`).
    MixedKeyMembers,
    /// `n` or `e` is missing, not canonical base64url, or has leading zero bytes.
    BadRsaComponents,
    /// The RSA modulus is shorter than 2048 bits.
    RsaKeyTooSmall,
    /// The RSA modulus is longer than 8192 bits, or even.
    BadRsaModulus,
    /// The RSA exponent is even, below 3 or above 2^33 - 1.
    BadRsaExponent,
    /// The RSA modulus has the ROCA fingerprint (CVE-2017-15361): its factors can be computed.
    RsaKeyVulnerable,
}

impl fmt::Display for KeyRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnObject => "not a JSON object",
            Self::WrongKeyType => "kty is not EC, RSA or OKP",
            Self::WrongCurve => "crv is not P-256 (EC) or Ed25519 (OKP)",
            Self::NotForSignatures => "use is not sig",
            Self::WrongAlgorithm => "alg does not fit the key type",
            Self::NotForVerification => "key_ops lacks verify",
            Self::BadCoordinates => "x/y are not 32-byte base64url values",
            Self::NotOnCurve => "point is not on P-256",
            Self::PrivateKeyPublished => "private key material published",
            Self::BadKid => "kid is not a string",
            Self::DuplicateKid => "duplicate kid",
            Self::MixedKeyMembers => "members of several key types",
            Self::BadRsaComponents => "n/e are not minimal base64url integers",
            Self::RsaKeyTooSmall => "RSA modulus under 2048 bits",
            Self::BadRsaModulus => "RSA modulus over 8192 bits or even",
            Self::BadRsaExponent => "RSA exponent even, below 3 or over 2^33-1",
            Self::RsaKeyVulnerable => "RSA modulus has the ROCA fingerprint (CVE-2017-15361)",
        })
    }
}

/// Why a whole JWKS document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
            Self::NoUsableKeys => "jwks has no usable signature verification key",
        })
    }
}

impl std::error::Error for JwksParseError {}

/// Where a lookup by `kid` landed.
#[derive(Debug)]
pub enum KeyLookup<'a> {
    /// The key to verify with.
    Found(&'a Jwk),
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
            let duplicate = kid.is_some() && keys.iter().any(|k| k.kid == kid);
            let parsed = match entry {
                Value::Object(map) if !duplicate => parse_jwk(map),
                Value::Object(_) => Err(KeyRejection::DuplicateKid),
                _ => Err(KeyRejection::NotAnObject),
            };
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
                .map_or(KeyLookup::UnknownKid, KeyLookup::Found),
            None if self.keys.len() == 1 => KeyLookup::Found(&self.keys[0]),
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

    /// The `kid` of each usable key, in document order (`None` for a key without one).
    pub fn kids(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        self.keys.iter().map(|k| k.kid.as_deref())
    }

    /// Verifies a detached JWS signature (the decoded third segment) over `signing_input`
    /// (`header.payload`) with the key this set holds under `kid`, for `alg`: the key selection
    /// and signature step of token verification alone, with nothing read from the payload.
    pub fn verify_detached(
        &self,
        kid: Option<&str>,
        alg: super::algorithm::Algorithm,
        signing_input: &[u8],
        signature: &[u8],
    ) -> Result<(), super::jwt::JwtError> {
        use super::jwt::JwtError;
        let jwk = match self.find(kid) {
            KeyLookup::Found(jwk) if jwk.allows(alg) => jwk,
            KeyLookup::Found(_) => return Err(JwtError::KeyAlgorithmMismatch),
            KeyLookup::UnknownKid => return Err(JwtError::UnknownKid),
            KeyLookup::AmbiguousWithoutKid => return Err(JwtError::KidMissingWithSeveralKeys),
        };
        super::jwt::verify_signature(alg, &jwk.key, signing_input, signature)
    }
}

/// Members that belong to one key type only; finding another type's is [`KeyRejection::MixedKeyMembers`].
const EC_MEMBERS: &[&str] = &["crv", "x", "y"];
const RSA_MEMBERS: &[&str] = &["n", "e"];
const OKP_MEMBERS: &[&str] = &["crv", "x"];
/// Private members of any key type (RFC 7518 sections 6.2.2, 6.3.2; RFC 8037 section 2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Checks one JWK object against the rules of its key type (RFC 7517, RFC 7518 section 6,
/// RFC 8037, RFC 8725 section 3.1).
pub fn parse_jwk(map: &Map<String, Value>) -> Result<Jwk, KeyRejection> {
    let kty = map.get("kty").and_then(Value::as_str);
    let (own, foreign): (&[&str], &[&[&str]]) = match kty {
        Some("EC") => (EC_MEMBERS, &[RSA_MEMBERS]),
        Some("RSA") => (RSA_MEMBERS, &[EC_MEMBERS]),
        Some("OKP") => (OKP_MEMBERS, &[RSA_MEMBERS, &["y"]]),
        _ => return Err(KeyRejection::WrongKeyType),
    };
    if foreign
        .iter()
        .flat_map(|m| m.iter())
        .any(|m| !own.contains(m) && map.contains_key(*m))
    {
        return Err(KeyRejection::MixedKeyMembers);
    }
    let curve = map.get("crv").and_then(Value::as_str);
    match (kty, curve) {
        (Some("EC"), Some("P-256")) | (Some("OKP"), Some("Ed25519")) | (Some("RSA"), _) => {}
        _ => return Err(KeyRejection::WrongCurve),
    }
    if let Some(u) = map.get("use") {
        if u.as_str() != Some("sig") {
            return Err(KeyRejection::NotForSignatures);
        }
    }
    let alg = match map.get("alg") {
        None => None,
        Some(v) => match (kty, v.as_str().and_then(Algorithm::from_name)) {
            (Some("EC"), Some(a @ Algorithm::Es256))
            | (Some("RSA"), Some(a @ (Algorithm::Rs256 | Algorithm::Ps256)))
            | (Some("OKP"), Some(a @ Algorithm::EdDsa)) => Some(a),
            _ => return Err(KeyRejection::WrongAlgorithm),
        },
    };
    if let Some(ops) = map.get("key_ops") {
        let has_verify = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !has_verify {
            return Err(KeyRejection::NotForVerification);
        }
    }
    if PRIVATE_MEMBERS.iter().any(|m| map.contains_key(*m)) {
        return Err(KeyRejection::PrivateKeyPublished);
    }
    let kid = match map.get("kid") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(KeyRejection::BadKid),
    };
    let key = match kty {
        Some("EC") => {
            let x = coordinate(map.get("x"))?;
            let y = coordinate(map.get("y"))?;
            let point = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
            let key =
                VerifyingKey::from_encoded_point(&point).map_err(|_| KeyRejection::NotOnCurve)?;
            PublicKey::p256(key)
        }
        Some("RSA") => rsa_key(map)?,
        _ => PublicKey::Ed25519(coordinate(map.get("x"))?),
    };
    Ok(Jwk::new(kid, key, alg))
}

fn rsa_key(map: &Map<String, Value>) -> Result<PublicKey, KeyRejection> {
    let n = unsigned(map.get("n"))?;
    let e = unsigned(map.get("e"))?;
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if bits < RSA_MIN_BITS {
        return Err(KeyRejection::RsaKeyTooSmall);
    }
    if bits > RSA_MAX_BITS || n[n.len() - 1] & 1 == 0 {
        return Err(KeyRejection::BadRsaModulus);
    }
    // ring's bounds: 3 <= e <= 2^33 - 1, odd.
    let e_value = (e.len() <= 5).then(|| e.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64));
    if !e_value.is_some_and(|v| (3..(1 << 33)).contains(&v) && v & 1 == 1) {
        return Err(KeyRejection::BadRsaExponent);
    }
    if has_roca_fingerprint(&n) {
        return Err(KeyRejection::RsaKeyVulnerable);
    }
    Ok(PublicKey::Rsa { n, e })
}

/// The ROCA test (Nemec et al., CCS 2017): moduli made by the flawed Infineon generator are, modulo
/// each of these small primes, a power of 65537. A random modulus passes all 38 by chance with
/// probability far below 2^-100.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = n.iter().fold(0u32, |acc, &b| (acc * 256 + b as u32) % p);
        let generator = 65537 % p;
        let mut power = 1;
        (0..p).any(|_| {
            let hit = power == residue;
            power = power * generator % p;
            hit
        })
    })
}

/// A base64url big-endian unsigned integer in its minimal form (RFC 7518 section 2, "Base64urlUInt").
fn unsigned(value: Option<&Value>) -> Result<Vec<u8>, KeyRejection> {
    let bytes = value
        .and_then(Value::as_str)
        .filter(|t| super::jwt::is_canonical_b64url(t))
        .and_then(|t| URL_SAFE_NO_PAD.decode(t).ok())
        .ok_or(KeyRejection::BadRsaComponents)?;
    match bytes.first() {
        None | Some(0) => Err(KeyRejection::BadRsaComponents),
        Some(_) => Ok(bytes),
    }
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
            r#"{{"kty":"oct","kid":"r","k":"x"}},
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
