//! JWT verification: split, decode, check the header, verify the signature, then the claims; pure, no I/O.
//!
//! The order is the one RFC 8725 asks for: nothing in the payload is read before the
//! signature over the exact received bytes has verified. The token's `alg` is only looked up in
//! the policy's allow-list, and the key the `kid` names must be of that algorithm's type.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::ecdsa::Signature;
use ring::signature as ring_sig;
use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::es256;
use super::jwks::{Jwk, KeyLookup, KeySet, PublicKey};
use super::strict_json::{self, StrictJsonError};

/// Default allowed clock skew, in seconds (RFC 7519 section 4.1.4: "usually no more than a few minutes").
pub const DEFAULT_LEEWAY_SECS: u64 = 60;
/// Default cap on the compact token, in bytes. Real access tokens are well under 2 KiB.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Which audiences a token may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudiencePolicy {
    /// `aud` must contain at least one of these strings, compared byte for byte.
    OneOf(Vec<String>),
    /// Skip the audience check. Very insecure: any token from the issuer, for any service, is accepted.
    DangerouslySkip,
}

/// Which `typ` header values are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypPolicy {
    /// Absent, `JWT`, `at+jwt` or `application/at+jwt` (the default; many issuers send `JWT` or nothing).
    Lenient,
    /// Only `at+jwt` / `application/at+jwt` (RFC 9068 section 4), case-insensitive.
    RequireAtJwt,
}

/// What a token must satisfy besides a good signature.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `iss` must equal this byte for byte.
    pub issuer: String,
    /// Accepted audiences.
    pub audience: AudiencePolicy,
    /// Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. Defaults to 60.
    pub leeway_secs: u64,
    /// Longest accepted compact token, in bytes. Defaults to 8 KiB.
    pub max_token_bytes: usize,
    /// Accepted `typ` values. Defaults to [`TypPolicy::Lenient`].
    pub typ: TypPolicy,
    /// Accepted signature algorithms; a token's `alg` must be one of them. Defaults to ES256.
    pub algorithms: Vec<Algorithm>,
}

impl Policy {
    /// A policy for `issuer` accepting `audiences`, with the documented defaults for the rest.
    pub fn new(issuer: impl Into<String>, audience: AudiencePolicy) -> Self {
        Self {
            issuer: issuer.into(),
            audience,
            leeway_secs: DEFAULT_LEEWAY_SECS,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            typ: TypPolicy::Lenient,
            algorithms: vec![Algorithm::Es256],
        }
    }
}

/// The verified caller: who the token says, for whom, and every claim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Principal {
    /// `iss`, equal to the configured issuer.
    pub issuer: String,
    /// `sub`, when the token has one.
    pub subject: Option<String>,
    /// Scopes from `scope` (space-delimited) and `scp` (array), in order, without duplicates.
    pub scopes: Vec<String>,
    /// `exp`, in seconds since the Unix epoch.
    pub expires_at: f64,
    /// The whole verified claim set.
    pub claims: Map<String, Value>,
}

impl Principal {
    /// True when the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// A claim by name.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.claims.get(name)
    }
}

/// Which part of the compact serialization a structural error is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The JOSE header.
    Header,
    /// The claim set.
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// Why a token was refused. Precise for the log; every variant is `401 invalid_token` on the wire.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than the policy's `max_token_bytes`.
    TooLarge {
        /// Actual length in bytes.
        len: usize,
    },
    /// Not exactly three `.`-separated segments (a JWE has five).
    NotThreeSegments,
    /// A segment is not canonical unpadded base64url.
    BadBase64(Segment),
    /// A segment is not a UTF-8 JSON object.
    NotJsonObject(Segment),
    /// A segment names one member twice.
    DuplicateMember(Segment),
    /// No `alg`, or a non-string one.
    AlgMissing,
    /// `alg` is not one of the policy's algorithms (`none`, `HS256` and unknown names never are).
    AlgNotAllowed,
    /// The key the `kid` names is of another type than `alg` (an RS256 header on an EC key),
    /// or its JWK pins another algorithm.
    KeyAlgorithmMismatch,
    /// A `crit` header: we understand no extensions, so any is fatal (RFC 7515 section 4.1.11).
    CritHeader,
    /// `cty: JWT`, a nested token.
    NestedJwt,
    /// `typ` is not accepted by the policy.
    TypNotAccepted,
    /// `kid` is present but not a string.
    KidNotString,
    /// The signature has the wrong length: not 64 bytes of R||S for ES256 (DER is 70-72) or
    /// EdDSA, not the modulus length for RS256/PS256.
    SignatureLength {
        /// Decoded length in bytes.
        len: usize,
    },
    /// R or S is 0 or at least the group order.
    SignatureScalarRange,
    /// The key set has no key with this `kid`.
    UnknownKid,
    /// No `kid`, and the key set has more than one key.
    KidMissingWithSeveralKeys,
    /// The signature does not verify.
    SignatureInvalid,
    /// A registered claim has the wrong JSON type.
    ClaimType(&'static str),
    /// No `iss`, or not the configured issuer.
    WrongIssuer,
    /// No `exp`.
    ExpMissing,
    /// `exp` is out of range (NaN, infinite, or beyond any plausible date).
    ExpOutOfRange,
    /// now >= exp + leeway.
    Expired,
    /// now < nbf - leeway.
    NotYetValid,
    /// iat > now + leeway.
    IssuedInFuture,
    /// No `aud` while audiences are checked.
    AudienceMissing,
    /// `aud` holds none of the accepted audiences.
    AudienceMismatch,
}

impl JwtError {
    /// The generic `error_description` sent to the client: no token, key or claim data in it.
    pub fn description(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token too large",
            Self::NotThreeSegments
            | Self::BadBase64(_)
            | Self::NotJsonObject(_)
            | Self::DuplicateMember(_)
            | Self::KidNotString
            | Self::ClaimType(_)
            | Self::ExpMissing
            | Self::ExpOutOfRange => "token malformed",
            Self::AlgMissing | Self::AlgNotAllowed => "unsupported algorithm",
            Self::CritHeader | Self::NestedJwt | Self::TypNotAccepted => "unsupported token type",
            Self::SignatureLength { .. } | Self::SignatureScalarRange | Self::SignatureInvalid => {
                "signature invalid"
            }
            Self::UnknownKid | Self::KidMissingWithSeveralKeys | Self::KeyAlgorithmMismatch => {
                "unknown signing key"
            }
            Self::WrongIssuer => "wrong issuer",
            Self::Expired => "token expired",
            Self::NotYetValid | Self::IssuedInFuture => "token not yet valid",
            Self::AudienceMissing | Self::AudienceMismatch => "token not issued for this resource",
        }
    }
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { len } => write!(f, "token is {len} bytes, over the limit"),
            Self::NotThreeSegments => f.write_str("token is not three dot-separated segments"),
            Self::BadBase64(s) => write!(f, "{s} is not canonical unpadded base64url"),
            Self::NotJsonObject(s) => write!(f, "{s} is not a UTF-8 JSON object"),
            Self::DuplicateMember(s) => write!(f, "{s} has a duplicate member name"),
            Self::AlgMissing => f.write_str("alg missing or not a string"),
            Self::AlgNotAllowed => f.write_str("alg is not one of the configured algorithms"),
            Self::KeyAlgorithmMismatch => {
                f.write_str("the kid names a key of another type than alg")
            }
            Self::CritHeader => f.write_str("crit header present"),
            Self::NestedJwt => f.write_str("cty JWT (nested token)"),
            Self::TypNotAccepted => f.write_str("typ not accepted by policy"),
            Self::KidNotString => f.write_str("kid is not a string"),
            Self::SignatureLength { len } => {
                write!(f, "signature is {len} bytes, the wrong length for alg")
            }
            Self::SignatureScalarRange => f.write_str("signature r or s outside [1, n-1]"),
            Self::UnknownKid => f.write_str("kid not in the key set"),
            Self::KidMissingWithSeveralKeys => {
                f.write_str("no kid and the key set has several keys")
            }
            Self::SignatureInvalid => f.write_str("signature does not verify"),
            Self::ClaimType(c) => write!(f, "claim {c} has the wrong type"),
            Self::WrongIssuer => f.write_str("iss missing or not the configured issuer"),
            Self::ExpMissing => f.write_str("exp missing"),
            Self::ExpOutOfRange => f.write_str("exp out of range"),
            Self::Expired => f.write_str("token expired"),
            Self::NotYetValid => f.write_str("nbf in the future"),
            Self::IssuedInFuture => f.write_str("iat in the future"),
            Self::AudienceMissing => f.write_str("aud missing"),
            Self::AudienceMismatch => f.write_str("aud holds no accepted audience"),
        }
    }
}

impl std::error::Error for JwtError {}

/// A token whose structure and header passed; its signature and claims are not checked yet.
#[derive(Debug)]
pub struct UnverifiedToken<'t> {
    signing_input: &'t [u8],
    payload_b64: &'t str,
    kid: Option<String>,
    alg: Algorithm,
    signature: Vec<u8>,
}

impl<'t> UnverifiedToken<'t> {
    /// The header's `kid`, an opaque key name.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The header's `alg`, already known to be one of the policy's.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The key of `keys` this token must verify under: the one its `kid` names, of its `alg`'s type.
    pub fn select_key<'k>(&self, keys: &'k KeySet) -> Result<&'k Jwk, JwtError> {
        match keys.find(self.kid()) {
            KeyLookup::Found(key) if key.allows(self.alg) => Ok(key),
            KeyLookup::Found(_) => Err(JwtError::KeyAlgorithmMismatch),
            KeyLookup::UnknownKid => Err(JwtError::UnknownKid),
            KeyLookup::AmbiguousWithoutKid => Err(JwtError::KidMissingWithSeveralKeys),
        }
    }

    /// Picks the key from `keys`, verifies the signature, then checks the claims at `now` (Unix seconds).
    pub fn verify(&self, keys: &KeySet, policy: &Policy, now: u64) -> Result<Principal, JwtError> {
        self.verify_with_key(self.select_key(keys)?, policy, now)
    }

    /// Verifies the signature against one given key (which must allow the token's `alg`).
    pub fn verify_signature_with(&self, key: &Jwk) -> Result<(), JwtError> {
        if !key.allows(self.alg) {
            return Err(JwtError::KeyAlgorithmMismatch);
        }
        verify_signature(self.alg, key.key(), self.signing_input, &self.signature)
    }

    /// The claims, once the signature has verified: checked at `now` against `policy`.
    pub fn claims_after_verify(&self, policy: &Policy, now: u64) -> Result<Principal, JwtError> {
        let payload = decode_segment(self.payload_b64, Segment::Payload)?;
        let claims = json_object(&payload, Segment::Payload)?;
        check_claims(claims, policy, now)
    }

    /// Verifies against one given key, then checks the claims.
    pub fn verify_with_key(
        &self,
        key: &Jwk,
        policy: &Policy,
        now: u64,
    ) -> Result<Principal, JwtError> {
        self.verify_signature_with(key)?;
        self.claims_after_verify(policy, now)
    }
}

/// Parses and checks everything that does not need a key: size, segments, base64url, header, signature shape.
pub fn parse<'t>(token: &'t str, policy: &Policy) -> Result<UnverifiedToken<'t>, JwtError> {
    if token.len() > policy.max_token_bytes {
        return Err(JwtError::TooLarge { len: token.len() });
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(sig_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotThreeSegments);
    };
    let header_bytes = decode_segment(header_b64, Segment::Header)?;
    // Check the payload's encoding now so a malformed token fails the same way whatever the key.
    if !is_canonical_b64url(payload_b64) {
        return Err(JwtError::BadBase64(Segment::Payload));
    }
    let sig = decode_segment(sig_b64, Segment::Signature)?;
    let header = json_object(&header_bytes, Segment::Header)?;
    let (alg, kid) = check_header(&header, policy)?;
    // The shape checks that need no key happen now, so a malformed signature is refused the
    // same way whatever the key set holds. An RSA signature's length needs the key.
    match alg {
        Algorithm::Es256 => {
            decode_signature(&sig)?;
        }
        Algorithm::EdDsa if sig.len() != 64 => {
            return Err(JwtError::SignatureLength { len: sig.len() })
        }
        _ => {}
    }
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    Ok(UnverifiedToken {
        signing_input: &token.as_bytes()[..signing_input_len],
        payload_b64,
        kid,
        alg,
        signature: sig,
    })
}

/// Reads a JWS ES256 signature: exactly 64 bytes of R||S (RFC 7518 section 3.4), each in [1, n-1].
pub fn decode_signature(sig: &[u8]) -> Result<Signature, JwtError> {
    if sig.len() != 64 {
        return Err(JwtError::SignatureLength { len: sig.len() });
    }
    Signature::from_slice(sig).map_err(|_| JwtError::SignatureScalarRange)
}

/// The signature step alone: `sig` (the decoded JWS signature) over `signing_input` with `key`
/// under `alg`. This is the exact path tokens take, exposed for test vectors.
pub fn verify_signature(
    alg: Algorithm,
    key: &PublicKey,
    signing_input: &[u8],
    sig: &[u8],
) -> Result<(), JwtError> {
    let ok = match (alg, key) {
        (Algorithm::Es256, PublicKey::P256 { table, .. }) => {
            let signature = decode_signature(sig)?;
            let (r, s) = signature.split_scalars();
            let digest = ring::digest::digest(&ring::digest::SHA256, signing_input);
            let z: [u8; 32] = digest.as_ref().try_into().expect("sha256 is 32 bytes");
            es256::verify_prehash(table, &z.into(), &r, &s)
        }
        (Algorithm::Rs256 | Algorithm::Ps256, PublicKey::Rsa { n, e }) => {
            if sig.len() != n.len() {
                return Err(JwtError::SignatureLength { len: sig.len() });
            }
            let params = if alg == Algorithm::Rs256 {
                &ring_sig::RSA_PKCS1_2048_8192_SHA256
            } else {
                &ring_sig::RSA_PSS_2048_8192_SHA256
            };
            ring_sig::RsaPublicKeyComponents { n, e }
                .verify(params, signing_input, sig)
                .is_ok()
        }
        (Algorithm::EdDsa, PublicKey::Ed25519(x)) => {
            if sig.len() != 64 {
                return Err(JwtError::SignatureLength { len: sig.len() });
            }
            ring_sig::UnparsedPublicKey::new(&ring_sig::ED25519, x)
                .verify(signing_input, sig)
                .is_ok()
        }
        _ => return Err(JwtError::KeyAlgorithmMismatch),
    };
    if ok {
        Ok(())
    } else {
        Err(JwtError::SignatureInvalid)
    }
}

/// Verifies `token` against `keys` under `policy` at `now` (Unix seconds): the whole check in one call.
pub fn verify(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<Principal, JwtError> {
    parse(token, policy)?.verify(keys, policy, now)
}

fn check_header(
    header: &Map<String, Value>,
    policy: &Policy,
) -> Result<(Algorithm, Option<String>), JwtError> {
    let alg = match header.get("alg") {
        Some(Value::String(name)) => policy
            .algorithms
            .iter()
            .copied()
            .find(|a| a.name() == name)
            .ok_or(JwtError::AlgNotAllowed)?,
        _ => return Err(JwtError::AlgMissing),
    };
    if header.contains_key("crit") {
        return Err(JwtError::CritHeader);
    }
    if let Some(cty) = header.get("cty") {
        if cty.as_str().is_some_and(|c| media_type_is(c, "jwt")) {
            return Err(JwtError::NestedJwt);
        }
    }
    let typ_ok = match (header.get("typ"), policy.typ) {
        (None, TypPolicy::Lenient) => true,
        (None, TypPolicy::RequireAtJwt) => false,
        (Some(Value::String(t)), TypPolicy::Lenient) => {
            media_type_is(t, "at+jwt") || media_type_is(t, "jwt")
        }
        (Some(Value::String(t)), TypPolicy::RequireAtJwt) => media_type_is(t, "at+jwt"),
        (Some(_), _) => false,
    };
    if !typ_ok {
        return Err(JwtError::TypNotAccepted);
    }
    // jwk, jku, x5u and x5c are deliberately never read: keys come only from the configured JWKS.
    match header.get("kid") {
        None => Ok((alg, None)),
        Some(Value::String(kid)) => Ok((alg, Some(kid.clone()))),
        Some(_) => Err(JwtError::KidNotString),
    }
}

/// RFC 7515 section 4.1.9: compare case-insensitively, reading a value without `/` as `application/<value>`.
fn media_type_is(value: &str, subtype: &str) -> bool {
    let value = value
        .strip_prefix_ignore_case("application/")
        .unwrap_or(value);
    value.eq_ignore_ascii_case(subtype)
}

trait StripPrefixIgnoreCase {
    fn strip_prefix_ignore_case(&self, prefix: &str) -> Option<&str>;
}

impl StripPrefixIgnoreCase for str {
    fn strip_prefix_ignore_case(&self, prefix: &str) -> Option<&str> {
        let head = self.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix)
            .then(|| &self[prefix.len()..])
    }
}

fn check_claims(
    claims: Map<String, Value>,
    policy: &Policy,
    now: u64,
) -> Result<Principal, JwtError> {
    let leeway = policy.leeway_secs as f64;
    let now = now as f64;

    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) if *iss == policy.issuer => iss.clone(),
        Some(Value::String(_)) | None => return Err(JwtError::WrongIssuer),
        Some(_) => return Err(JwtError::ClaimType("iss")),
    };
    let exp = numeric_date(&claims, "exp")?.ok_or(JwtError::ExpMissing)?;
    if now >= exp + leeway {
        return Err(JwtError::Expired);
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")? {
        if now < nbf - leeway {
            return Err(JwtError::NotYetValid);
        }
    }
    if let Some(iat) = numeric_date(&claims, "iat")? {
        if iat > now + leeway {
            return Err(JwtError::IssuedInFuture);
        }
    }
    check_audience(claims.get("aud"), &policy.audience)?;
    let subject = match claims.get("sub") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(JwtError::ClaimType("sub")),
    };
    let scopes = scopes(&claims)?;
    Ok(Principal {
        issuer,
        subject,
        scopes,
        expires_at: exp,
        claims,
    })
}

/// Beyond this a NumericDate is not a plausible time (year ~5138); it also keeps f64 arithmetic exact.
const MAX_NUMERIC_DATE: f64 = 1e11;

fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().ok_or(JwtError::ClaimType(name))?;
            if !v.is_finite() || v.abs() > MAX_NUMERIC_DATE {
                return Err(if name == "exp" {
                    JwtError::ExpOutOfRange
                } else {
                    JwtError::ClaimType(name)
                });
            }
            Ok(Some(v))
        }
        Some(_) => Err(JwtError::ClaimType(name)),
    }
}

fn check_audience(aud: Option<&Value>, policy: &AudiencePolicy) -> Result<(), JwtError> {
    // The claim's type is checked even when its value is not (J10: a mistyped claim is malformed).
    match aud {
        None | Some(Value::String(_)) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
        Some(_) => return Err(JwtError::ClaimType("aud")),
    }
    let accepted = match policy {
        AudiencePolicy::DangerouslySkip => return Ok(()),
        AudiencePolicy::OneOf(accepted) => accepted,
    };
    let matches = |s: &str| accepted.iter().any(|a| a == s);
    match aud {
        None => Err(JwtError::AudienceMissing),
        Some(Value::String(s)) if matches(s) => Ok(()),
        Some(Value::String(_)) => Err(JwtError::AudienceMismatch),
        Some(Value::Array(items)) => {
            let mut found = false;
            for item in items {
                let s = item.as_str().ok_or(JwtError::ClaimType("aud"))?;
                found |= matches(s);
            }
            if found {
                Ok(())
            } else {
                Err(JwtError::AudienceMismatch)
            }
        }
        Some(_) => Err(JwtError::ClaimType("aud")),
    }
}

fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, JwtError> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && !out.iter().any(|have| have == s) {
            out.push(s.to_owned());
        }
    };
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => s.split(' ').for_each(&mut push),
        Some(_) => return Err(JwtError::ClaimType("scope")),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::Array(items)) => {
            for item in items {
                push(item.as_str().ok_or(JwtError::ClaimType("scp"))?);
            }
        }
        Some(_) => return Err(JwtError::ClaimType("scp")),
    }
    Ok(out)
}

fn json_object(bytes: &[u8], segment: Segment) -> Result<Map<String, Value>, JwtError> {
    strict_json::parse_object(bytes).map_err(|e| match e {
        StrictJsonError::DuplicateMember => JwtError::DuplicateMember(segment),
        StrictJsonError::NotJson | StrictJsonError::NotObject => JwtError::NotJsonObject(segment),
    })
}

fn decode_segment(text: &str, segment: Segment) -> Result<Vec<u8>, JwtError> {
    if !is_canonical_b64url(text) {
        return Err(JwtError::BadBase64(segment));
    }
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JwtError::BadBase64(segment))
}

/// True for unpadded base64url whose unused trailing bits are zero (RFC 7515 section 2, RFC 4648 section 3.5).
///
/// The base64 engine already refuses `=`, `+`, `/` and whitespace and (by default) non-zero trailing
/// bits; checking here as well keeps the rule visible and independent of that crate's configuration.
pub fn is_canonical_b64url(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return false;
    }
    let value = |b: u8| -> Option<u8> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        })
    };
    let mut last = 0;
    for &b in bytes {
        match value(b) {
            Some(v) => last = v,
            None => return false,
        }
    }
    match bytes.len() % 4 {
        2 => last & 0x0f == 0,
        3 => last & 0x03 == 0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_base64url_rules() {
        assert!(is_canonical_b64url(""));
        assert!(is_canonical_b64url("eyJ0"));
        assert!(is_canonical_b64url("QQ")); // "A"
        assert!(!is_canonical_b64url("QR")); // non-zero trailing bits
        assert!(!is_canonical_b64url("QQ=="));
        assert!(!is_canonical_b64url("a+b/"));
        assert!(!is_canonical_b64url("ab cd"));
        assert!(!is_canonical_b64url("abcde"));
    }

    #[test]
    fn media_type_comparison_follows_rfc7515() {
        assert!(media_type_is("at+jwt", "at+jwt"));
        assert!(media_type_is("Application/AT+JWT", "at+jwt"));
        assert!(media_type_is("JWT", "jwt"));
        assert!(!media_type_is("text/jwt", "jwt"));
        assert!(!media_type_is("jwt+at", "at+jwt"));
    }
}
