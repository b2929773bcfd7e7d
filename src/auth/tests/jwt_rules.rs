//! One test per verification rule (spec checklist section 4, J1-J17, and the RFC 6750 bearer rules
//! of section 3), each asserting the exact error. Hostile tokens are signed by real keys so that
//! every rejection is for the rule under test, never for a bad signature by accident.
//! The clock is fixed (`NOW`); nothing sleeps.
//!
//! Every rule runs once per algorithm (ES256, RS256, PS256, EdDSA: [`kit::for_each_alg`]),
//! except the ones about the shape of an ES256 signature, which run for ES256 only and have
//! their RSA and EdDSA counterparts in `confusion.rs`.

use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::kit::{self, Signer};
use crate::auth::jwks::{Jwk, KeySet, PublicKey};
use crate::auth::jwt::{self, AudiencePolicy, JwtError, Policy, Principal, Segment, TypPolicy};
use crate::auth::{AuthError, Authenticator, BearerError, StaticKeys};
use crate::dev::DevIssuer;

const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "https://mcp.example.test/mcp";
const KID: &str = "key-1";
const SECRET: [u8; 32] = [7; 32];
const OTHER_SECRET: [u8; 32] = [9; 32];
const ATTACKER_SECRET: [u8; 32] = [13; 32];
/// 2025-06-15T15:06:40Z; every test uses this instant.
const NOW: u64 = 1_750_000_000;
/// `Policy::new`'s default leeway.
const LEEWAY: u64 = 60;
/// The P-256 group order n, big-endian.
const N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

// ---------------------------------------------------------------------------------------------
// Helpers

/// The real key, of the current algorithm.
fn issuer() -> Signer {
    Signer::current(KID, SECRET)
}

/// The dev issuer (ES256), for the tests that need its ES256 specifics.
fn dev_issuer() -> DevIssuer {
    DevIssuer::from_secret(ISSUER, KID, SECRET).unwrap()
}

fn keys() -> KeySet {
    issuer().key_set()
}

fn policy() -> Policy {
    let mut p = Policy::new(ISSUER, AudiencePolicy::OneOf(vec![AUDIENCE.into()]));
    assert_eq!(p.leeway_secs, LEEWAY);
    p.algorithms = vec![kit::current()];
    p
}

fn header() -> Value {
    json!({"alg": kit::current().name(), "typ": "at+jwt", "kid": KID})
}

fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "client_id": "client-1",
        "jti": "jti-1",
        "iat": NOW - 10,
        "exp": NOW + 600,
        "scope": "mcp:read",
    })
}

/// `v` with member `name` set to `value`.
fn set(mut v: Value, name: &str, value: Value) -> Value {
    v.as_object_mut().unwrap().insert(name.into(), value);
    v
}

/// `v` without member `name`.
fn unset(mut v: Value, name: &str) -> Value {
    v.as_object_mut().unwrap().remove(name);
    v
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// The signature over `input` with the current algorithm's key named by `secret`.
fn raw_sig(secret: [u8; 32], input: &[u8]) -> Vec<u8> {
    Signer::current(KID, secret).sign(input)
}

/// A token whose first two segments are exactly `header_text` and `payload_text` (encoded however
/// the test likes), validly signed over that exact text.
fn signed_text(secret: [u8; 32], header_text: &str, payload_text: &str) -> String {
    let input = format!("{header_text}.{payload_text}");
    let sig = b64(&raw_sig(secret, input.as_bytes()));
    format!("{input}.{sig}")
}

/// A token of arbitrary header and payload bytes signed by the real key.
fn signed_bytes(header: &[u8], payload: &[u8]) -> String {
    issuer().sign_raw(header, payload)
}

/// A token of these JSON values signed by the real key.
fn token(header: &Value, claims: &Value) -> String {
    signed_bytes(&json_bytes(header), &json_bytes(claims))
}

/// A token of these JSON values signed by `secret`.
fn token_by(secret: [u8; 32], header: &Value, claims: &Value) -> String {
    signed_text(secret, &b64(&json_bytes(header)), &b64(&json_bytes(claims)))
}

/// The standard good token.
fn good() -> String {
    token(&header(), &claims())
}

/// `header.payload` of `token` with `sig` (raw bytes) as its signature.
fn with_sig(token: &str, sig: &[u8]) -> String {
    let input = &token[..token.rfind('.').unwrap()];
    format!("{input}.{}", b64(sig))
}

fn sig_of(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap()
}

fn segments(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

fn check(token: &str) -> Result<Principal, JwtError> {
    jwt::verify(token, &keys(), &policy(), NOW)
}

fn check_with(token: &str, policy: &Policy) -> Result<Principal, JwtError> {
    jwt::verify(token, &keys(), policy, NOW)
}

#[track_caller]
fn accepted(token: &str) -> Principal {
    match check(token) {
        Ok(p) => p,
        Err(e) => panic!("expected acceptance, got {e:?}"),
    }
}

#[track_caller]
fn rejected(token: &str, expected: JwtError) {
    assert_eq!(check(token).map(|_| ()), Err(expected));
}

/// `claims()` with a filler member sized so its JSON length is not a multiple of 3, so its
/// base64url form has unused trailing bits and a padded form ends in `=`.
fn claims_not_multiple_of_3() -> Value {
    (0..3)
        .map(|n| set(claims(), "pad", json!("x".repeat(n))))
        .find(|c| json_bytes(c).len() % 3 != 0)
        .unwrap()
}

/// `header()` with a filler member, sized like [`claims_not_multiple_of_3`].
fn header_not_multiple_of_3() -> Value {
    (0..3)
        .map(|n| set(header(), "pad", json!("x".repeat(n))))
        .find(|h| json_bytes(h).len() % 3 != 0)
        .unwrap()
}

/// Sets the lowest bit of the last character's 6-bit value: always an unused bit when the
/// length is 2 or 3 mod 4, so the decoded bytes are unchanged for a lenient decoder.
fn with_nonzero_trailing_bits(text: &str) -> String {
    assert!(matches!(text.len() % 4, 2 | 3));
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *text.as_bytes().last().unwrap();
    let value = ALPHABET.iter().position(|&c| c == last).unwrap();
    assert_eq!(
        value & 1,
        0,
        "trailing bits already zero in canonical output"
    );
    let mut out = text[..text.len() - 1].to_owned();
    out.push(ALPHABET[value | 1] as char);
    out
}

/// A minimal DER `SEQUENCE { INTEGER r, INTEGER s }` of a raw R||S signature.
fn der(sig: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let mut v: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        if v.first().is_none_or(|&b| b & 0x80 != 0) {
            v.insert(0, 0);
        }
        let mut out = vec![0x02, v.len() as u8];
        out.extend(v);
        out
    }
    let body: Vec<u8> = integer(&sig[..32])
        .into_iter()
        .chain(integer(&sig[32..]))
        .collect();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The issuer's public key as SPKI PEM, the usual `HS256` confusion key.
fn public_key_pem(trailing_newline: bool) -> String {
    let point = p256_point();
    let mut spki = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    spki.extend_from_slice(point.as_bytes());
    let body = STANDARD.encode(&spki);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut pem = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----",
        lines.join("\n")
    );
    if trailing_newline {
        pem.push('\n');
    }
    pem
}

/// The dev issuer's public point, uncompressed.
fn p256_point() -> p256::EncodedPoint {
    match dev_issuer().key_set().keys()[0].key() {
        PublicKey::P256 { key, .. } => key.to_encoded_point(false),
        other => panic!("not a P-256 key: {other:?}"),
    }
}

fn hs256(key: &[u8], input: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::sign(&key, input).as_ref().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Baseline

#[test]
fn accepts_well_formed_token_and_exposes_its_claims() {
    kit::for_each_alg(|| {
        let p = accepted(&good());
        assert_eq!(p.issuer, ISSUER);
        assert_eq!(p.subject.as_deref(), Some("alice"));
        assert_eq!(p.scopes, ["mcp:read"]);
        assert_eq!(p.expires_at, (NOW + 600) as f64);
        assert_eq!(p.claim("client_id"), Some(&json!("client-1")));
    });
}

#[test]
fn accepts_token_minted_by_the_dev_issuer() {
    // ES256 only: about the shape of an ES256 signature or key.
    let claims = dev_issuer().claims(AUDIENCE, "bob", "bob@example.com", true, NOW, 300);
    accepted(&dev_issuer().mint(&claims));
}

// ---------------------------------------------------------------------------------------------
// J1: size and segment count

#[test]
fn rejects_token_larger_than_max_token_bytes() {
    kit::for_each_alg(|| {
        let t = token(&header(), &set(claims(), "pad", json!("x".repeat(9000))));
        assert!(t.len() > jwt::DEFAULT_MAX_TOKEN_BYTES);
        rejected(&t, JwtError::TooLarge { len: t.len() });
    });
}

#[test]
fn token_of_exactly_max_token_bytes_is_accepted_one_more_byte_is_too_large() {
    kit::for_each_alg(|| {
        let t = good();
        let mut p = policy();
        p.max_token_bytes = t.len();
        assert!(check_with(&t, &p).is_ok());
        p.max_token_bytes = t.len() - 1;
        assert_eq!(
            check_with(&t, &p).map(|_| ()),
            Err(JwtError::TooLarge { len: t.len() })
        );
    });
}

#[test]
fn rejects_two_segments() {
    kit::for_each_alg(|| {
        let t = good();
        let s = segments(&t);
        rejected(&format!("{}.{}", s[0], s[1]), JwtError::NotThreeSegments);
        rejected(&format!("{}.{}", s[0], s[2]), JwtError::NotThreeSegments);
    });
}

#[test]
fn rejects_four_segments() {
    kit::for_each_alg(|| {
        let t = good();
        rejected(&format!("{t}."), JwtError::NotThreeSegments);
        rejected(
            &format!("{t}.{}", segments(&t)[2]),
            JwtError::NotThreeSegments,
        );
    });
}

#[test]
fn rejects_five_segments_jwe_compact_shape() {
    kit::for_each_alg(|| {
        let t = good();
        let s = segments(&t);
        // header.encrypted_key.iv.ciphertext.tag
        let jwe = format!("{}.{}.AAAAAAAAAAAAAAAA.{}.{}", s[0], s[2], s[1], s[2]);
        rejected(&jwe, JwtError::NotThreeSegments);
    });
}

#[test]
fn rejects_empty_token_and_lone_dots() {
    kit::for_each_alg(|| {
        rejected("", JwtError::NotThreeSegments);
        rejected(".", JwtError::NotThreeSegments);
        rejected("...", JwtError::NotThreeSegments);
    });
}

// ---------------------------------------------------------------------------------------------
// J2: unpadded, canonical base64url. Each hostile token is validly signed over its exact text,
// so a lenient decoder would accept it.

#[test]
fn rejects_padded_base64url_segments() {
    kit::for_each_alg(|| {
        let h = header_not_multiple_of_3();
        let c = claims_not_multiple_of_3();
        let padded_header = URL_SAFE.encode(json_bytes(&h));
        let padded_payload = URL_SAFE.encode(json_bytes(&c));
        assert!(padded_header.ends_with('=') && padded_payload.ends_with('='));
        let plain_header = b64(&json_bytes(&h));
        let plain_payload = b64(&json_bytes(&c));
        // The unpadded control is accepted.
        accepted(&signed_text(SECRET, &plain_header, &plain_payload));
        rejected(
            &signed_text(SECRET, &padded_header, &plain_payload),
            JwtError::BadBase64(Segment::Header),
        );
        rejected(
            &signed_text(SECRET, &plain_header, &padded_payload),
            JwtError::BadBase64(Segment::Payload),
        );
        // 64 signature bytes are 86 characters, padded with "==".
        let t = good();
        let sig = URL_SAFE.encode(sig_of(&t));
        assert!(sig.ends_with("=="));
        let input = &t[..t.rfind('.').unwrap()];
        rejected(
            &format!("{input}.{sig}"),
            JwtError::BadBase64(Segment::Signature),
        );
    });
}

#[test]
fn rejects_standard_alphabet_plus_and_slash() {
    kit::for_each_alg(|| {
        // A payload whose standard base64 has both `+` and `/`, signed over that standard text.
        let c = (0..3)
            .map(|n| {
                set(
                    claims(),
                    "note",
                    json!(format!("{}???>>>~~~", "x".repeat(n))),
                )
            })
            .find(|c| {
                let s = STANDARD_NO_PAD.encode(json_bytes(c));
                s.contains('+') && s.contains('/')
            })
            .expect("some alignment gives both + and /");
        let header_text = b64(&json_bytes(&header()));
        let std_payload = STANDARD_NO_PAD.encode(json_bytes(&c));
        rejected(
            &signed_text(SECRET, &header_text, &std_payload),
            JwtError::BadBase64(Segment::Payload),
        );
        let h = (0..3)
            .map(|n| {
                set(
                    header(),
                    "note",
                    json!(format!("{}???>>>~~~", "x".repeat(n))),
                )
            })
            .find(|h| {
                let s = STANDARD_NO_PAD.encode(json_bytes(h));
                s.contains('+') || s.contains('/')
            })
            .unwrap();
        rejected(
            &signed_text(
                SECRET,
                &STANDARD_NO_PAD.encode(json_bytes(&h)),
                &b64(&json_bytes(&claims())),
            ),
            JwtError::BadBase64(Segment::Header),
        );
        // The signature in the standard alphabet: same bytes, different characters.
        let t = (0..64)
            .map(|i| token(&header(), &set(claims(), "jti", json!(format!("j{i}")))))
            .find(|t| {
                let s = segments(t)[2];
                s.contains('-') || s.contains('_')
            })
            .unwrap();
        let input = &t[..t.rfind('.').unwrap()];
        rejected(
            &format!("{input}.{}", STANDARD_NO_PAD.encode(sig_of(&t))),
            JwtError::BadBase64(Segment::Signature),
        );
    });
}

#[test]
fn rejects_whitespace_inside_or_around_segments() {
    kit::for_each_alg(|| {
        let h = b64(&json_bytes(&header()));
        let p = b64(&json_bytes(&claims()));
        let (h1, h2) = h.split_at(8);
        let (p1, p2) = p.split_at(8);
        for (header_text, payload_text, segment) in [
            (format!("{h1} {h2}"), p.clone(), Segment::Header),
            (format!("{h1}\t{h2}"), p.clone(), Segment::Header),
            (format!(" {h}"), p.clone(), Segment::Header),
            (h.clone(), format!("{p1}\n{p2}"), Segment::Payload),
            (h.clone(), format!("{p1}\r\n{p2}"), Segment::Payload),
            (h.clone(), format!("{p} "), Segment::Payload),
        ] {
            rejected(
                &signed_text(SECRET, &header_text, &payload_text),
                JwtError::BadBase64(segment),
            );
        }
        let t = good();
        let (input, sig) = t.split_at(t.rfind('.').unwrap() + 1);
        let (s1, s2) = sig.split_at(10);
        rejected(
            &format!("{input}{s1} {s2}"),
            JwtError::BadBase64(Segment::Signature),
        );
        rejected(&format!("{t}\n"), JwtError::BadBase64(Segment::Signature));
    });
}

#[test]
fn rejects_non_zero_trailing_bits() {
    kit::for_each_alg(|| {
        let h = b64(&json_bytes(&header_not_multiple_of_3()));
        let p = b64(&json_bytes(&claims_not_multiple_of_3()));
        accepted(&signed_text(SECRET, &h, &p));
        rejected(
            &signed_text(SECRET, &with_nonzero_trailing_bits(&h), &p),
            JwtError::BadBase64(Segment::Header),
        );
        rejected(
            &signed_text(SECRET, &h, &with_nonzero_trailing_bits(&p)),
            JwtError::BadBase64(Segment::Payload),
        );
        // 86 signature characters: the last one carries 4 unused bits.
        let t = good();
        let (input, sig) = t.split_at(t.rfind('.').unwrap() + 1);
        rejected(
            &format!("{input}{}", with_nonzero_trailing_bits(sig)),
            JwtError::BadBase64(Segment::Signature),
        );
    });
}

#[test]
fn rejects_segment_length_one_mod_four() {
    kit::for_each_alg(|| {
        let h = b64(&json_bytes(&header()));
        let p = b64(&json_bytes(&claims()));
        let extend = |s: &str| {
            let mut s = s.to_owned();
            while s.len() % 4 != 1 {
                s.push('A');
            }
            s
        };
        rejected(
            &signed_text(SECRET, &extend(&h), &p),
            JwtError::BadBase64(Segment::Header),
        );
        rejected(
            &signed_text(SECRET, &h, &extend(&p)),
            JwtError::BadBase64(Segment::Payload),
        );
        // 85 signature characters (one dropped): refused as base64, before any length check.
        let t = good();
        rejected(&t[..t.len() - 1], JwtError::BadBase64(Segment::Signature));
    });
}

#[test]
fn rejects_characters_outside_the_base64url_alphabet() {
    kit::for_each_alg(|| {
        let h = b64(&json_bytes(&header()));
        let p = b64(&json_bytes(&claims()));
        for bad in ["?", "#", "~", "*", "é"] {
            rejected(
                &signed_text(SECRET, &h, &format!("{bad}{}", &p[1..])),
                JwtError::BadBase64(Segment::Payload),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// J3: header and payload are JSON objects without duplicate members

#[test]
fn rejects_header_that_is_not_json() {
    kit::for_each_alg(|| {
        for bytes in [
            &b"not json"[..],
            b"",
            b"\xff\xfe{}",
            br#"{"alg":"ES256","kid":"key-1"} trailing"#,
            br#"{"alg":"ES256","kid":"key-1""#,
        ] {
            rejected(
                &signed_bytes(bytes, &json_bytes(&claims())),
                JwtError::NotJsonObject(Segment::Header),
            );
        }
    });
}

#[test]
fn rejects_header_that_is_not_an_object() {
    kit::for_each_alg(|| {
        for bytes in [&br#"["ES256"]"#[..], br#""ES256""#, b"null", b"42", b"true"] {
            rejected(
                &signed_bytes(bytes, &json_bytes(&claims())),
                JwtError::NotJsonObject(Segment::Header),
            );
        }
    });
}

#[test]
fn rejects_payload_that_is_not_a_json_object() {
    kit::for_each_alg(|| {
        for bytes in [
            &b"foo"[..],
            b"",
            br#"["iss"]"#,
            br#""claims""#,
            b"null",
            b"\xff",
            br#"{"iss":"https://issuer.test"} {}"#,
        ] {
            rejected(
                &signed_bytes(&json_bytes(&header()), bytes),
                JwtError::NotJsonObject(Segment::Payload),
            );
        }
    });
}

#[test]
fn rejects_duplicate_member_in_header() {
    kit::for_each_alg(|| {
        for bytes in [
            &br#"{"alg":"none","kid":"key-1","alg":"ES256"}"#[..],
            br#"{"alg":"ES256","kid":"other","kid":"key-1"}"#,
            // "\u0061lg" is "alg" once unescaped.
            br#"{"alg":"ES256","kid":"key-1","\u0061lg":"ES256"}"#,
        ] {
            rejected(
                &signed_bytes(bytes, &json_bytes(&claims())),
                JwtError::DuplicateMember(Segment::Header),
            );
        }
    });
}

#[test]
fn rejects_duplicate_member_in_payload() {
    kit::for_each_alg(|| {
        let base = json_bytes(&claims());
        let body = std::str::from_utf8(&base[..base.len() - 1]).unwrap();
        for extra in [
            r#","sub":"admin""#,
            r#","aud":"https://elsewhere.example""#,
            r#","exp":99999999999"#,
            r#","nested":{"a":1,"a":2}"#,
        ] {
            let payload = format!("{body}{extra}}}");
            rejected(
                &signed_bytes(&json_bytes(&header()), payload.as_bytes()),
                JwtError::DuplicateMember(Segment::Payload),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// J4: alg allow-list is exactly the configured algorithms

#[test]
fn rejects_alg_none_in_any_casing() {
    kit::for_each_alg(|| {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let h = set(header(), "alg", json!(alg));
            let unsigned = format!("{}.{}.", b64(&json_bytes(&h)), b64(&json_bytes(&claims())));
            rejected(&unsigned, JwtError::AlgNotAllowed);
            // Even with a valid signature attached.
            rejected(&token(&h, &claims()), JwtError::AlgNotAllowed);
        }
    });
}

#[test]
fn rejects_hs256_hmac_keyed_with_the_public_key_alg_confusion() {
    // ES256 only: about the shape of an ES256 signature or key.
    let h = set(header(), "alg", json!("HS256"));
    let input = format!("{}.{}", b64(&json_bytes(&h)), b64(&json_bytes(&claims())));
    let jwk = issuer().public_jwk();
    let point = p256_point();
    let confusion_keys: Vec<Vec<u8>> = vec![
        public_key_pem(true).into_bytes(),
        public_key_pem(false).into_bytes(),
        json_bytes(&jwk),
        serde_json::to_vec_pretty(&jwk).unwrap(),
        point.as_bytes().to_vec(),
    ];
    for key in confusion_keys {
        let mac = hs256(&key, input.as_bytes());
        rejected(&format!("{input}.{}", b64(&mac)), JwtError::AlgNotAllowed);
    }
}

#[test]
fn rejects_rsa_pss_ecdsa_other_curves_and_eddsa_algs() {
    kit::for_each_alg(|| {
        for (alg, sig_len) in [
            ("HS384", 48),
            ("HS512", 64),
            ("RS256", 256),
            ("RS384", 256),
            ("RS512", 256),
            ("PS256", 256),
            ("PS512", 256),
            ("ES384", 96),
            ("ES512", 132),
            ("ES256K", 64),
            ("EdDSA", 64),
            ("Ed25519", 64),
        ] {
            if alg == kit::current().name() {
                continue;
            }
            let h = set(header(), "alg", json!(alg));
            let input = format!("{}.{}", b64(&json_bytes(&h)), b64(&json_bytes(&claims())));
            rejected(
                &format!("{input}.{}", b64(&vec![0x5a; sig_len])),
                JwtError::AlgNotAllowed,
            );
            // And with a genuine signature over that header: the header's alg still decides.
            rejected(&token(&h, &claims()), JwtError::AlgNotAllowed);
        }
    });
}

#[test]
fn rejects_the_alg_spelled_in_another_case_or_with_spaces() {
    kit::for_each_alg(|| {
        let name = kit::current().name();
        let variants = [
            name.to_lowercase(),
            name.to_uppercase(),
            format!("{name} "),
            format!(" {name}"),
            name.replacen(|c: char| c.is_ascii_digit(), "-", 1),
            format!("{name}\u{0}"),
        ];
        for alg in variants.iter().filter(|v| *v != name) {
            rejected(
                &token(&set(header(), "alg", json!(alg)), &claims()),
                JwtError::AlgNotAllowed,
            );
        }
    });
}

#[test]
fn rejects_missing_alg() {
    kit::for_each_alg(|| {
        rejected(
            &token(&unset(header(), "alg"), &claims()),
            JwtError::AlgMissing,
        );
    });
}

#[test]
fn rejects_non_string_alg() {
    kit::for_each_alg(|| {
        for alg in [
            json!(["ES256"]),
            json!(null),
            json!(256),
            json!(true),
            json!({"name": "ES256"}),
        ] {
            rejected(
                &token(&set(header(), "alg", alg), &claims()),
                JwtError::AlgMissing,
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// J5: crit, J6: cty and typ

#[test]
fn rejects_any_crit_header() {
    kit::for_each_alg(|| {
        for crit in [
            json!([]),
            json!(["exp"]),
            json!(["x-unknown"]),
            json!(["b64"]),
            json!("exp"),
            json!(null),
        ] {
            rejected(
                &token(&set(header(), "crit", crit), &claims()),
                JwtError::CritHeader,
            );
        }
        // RFC 7797 unencoded payload, the classic crit use.
        let h = set(set(header(), "b64", json!(false)), "crit", json!(["b64"]));
        rejected(&token(&h, &claims()), JwtError::CritHeader);
    });
}

#[test]
fn rejects_cty_jwt_nested_token() {
    kit::for_each_alg(|| {
        for cty in ["JWT", "jwt", "application/jwt", "Application/JWT"] {
            rejected(
                &token(&set(header(), "cty", json!(cty)), &claims()),
                JwtError::NestedJwt,
            );
        }
    });
}

#[test]
fn lenient_typ_accepts_absent_jwt_at_jwt_and_application_at_jwt() {
    kit::for_each_alg(|| {
        assert_eq!(policy().typ, TypPolicy::Lenient, "the default");
        accepted(&token(&unset(header(), "typ"), &claims()));
        for typ in [
            "JWT",
            "jwt",
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            accepted(&token(&set(header(), "typ", json!(typ)), &claims()));
        }
    });
}

#[test]
fn strict_typ_requires_at_jwt() {
    kit::for_each_alg(|| {
        let mut strict = policy();
        strict.typ = TypPolicy::RequireAtJwt;
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "APPLICATION/AT+JWT",
        ] {
            let t = token(&set(header(), "typ", json!(typ)), &claims());
            assert!(check_with(&t, &strict).is_ok(), "{typ}");
        }
        let absent = token(&unset(header(), "typ"), &claims());
        assert_eq!(
            check_with(&absent, &strict).map(|_| ()),
            Err(JwtError::TypNotAccepted)
        );
        for typ in ["JWT", "jwt", "application/jwt"] {
            let t = token(&set(header(), "typ", json!(typ)), &claims());
            assert_eq!(
                check_with(&t, &strict).map(|_| ()),
                Err(JwtError::TypNotAccepted),
                "{typ}"
            );
        }
    });
}

#[test]
fn rejects_other_typ_values_under_either_policy() {
    kit::for_each_alg(|| {
        let mut strict = policy();
        strict.typ = TypPolicy::RequireAtJwt;
        for typ in [
            json!("JOSE"),
            json!("JOSE+JSON"),
            json!("dpop+jwt"),
            json!("secevent+jwt"),
            json!("id_token+jwt"),
            json!("application/json"),
            json!("text/at+jwt"),
            json!("at+jwt "),
            json!(""),
            json!("applicationé/at+jwt"),
            json!(1),
            json!(null),
            json!(["at+jwt"]),
        ] {
            let t = token(&set(header(), "typ", typ.clone()), &claims());
            for p in [policy(), strict.clone()] {
                assert_eq!(
                    check_with(&t, &p).map(|_| ()),
                    Err(JwtError::TypNotAccepted),
                    "{typ} under {:?}",
                    p.typ
                );
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// J9: signature shape and validity

#[test]
fn rejects_der_encoded_signature_of_70_to_72_bytes() {
    // ES256 only: about the shape of an ES256 signature or key.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..256 {
        let t = token(&header(), &set(claims(), "jti", json!(format!("der-{i}"))));
        let encoded = der(&sig_of(&t));
        assert_eq!(encoded[0], 0x30);
        let len = encoded.len();
        if (70..=72).contains(&len) && seen.insert(len) {
            rejected(&with_sig(&t, &encoded), JwtError::SignatureLength { len });
        }
        if seen.len() == 3 {
            return;
        }
    }
    panic!("did not produce DER signatures of 70, 71 and 72 bytes: {seen:?}");
}

#[test]
fn rejects_signature_of_63_and_65_bytes() {
    // ES256 only: about the shape of an ES256 signature or key.
    let t = good();
    let sig = sig_of(&t);
    rejected(
        &with_sig(&t, &sig[..63]),
        JwtError::SignatureLength { len: 63 },
    );
    let mut long = sig.clone();
    long.push(0);
    rejected(&with_sig(&t, &long), JwtError::SignatureLength { len: 65 });
    let mut leading = vec![0];
    leading.extend(&sig);
    rejected(
        &with_sig(&t, &leading),
        JwtError::SignatureLength { len: 65 },
    );
}

#[test]
fn rejects_empty_half_and_double_length_signatures() {
    // ES256 only: about the shape of an ES256 signature or key.
    let t = good();
    let sig = sig_of(&t);
    rejected(&with_sig(&t, &[]), JwtError::SignatureLength { len: 0 });
    rejected(
        &with_sig(&t, &sig[..32]),
        JwtError::SignatureLength { len: 32 },
    );
    let double: Vec<u8> = sig.iter().chain(&sig).copied().collect();
    rejected(
        &with_sig(&t, &double),
        JwtError::SignatureLength { len: 128 },
    );
}

#[test]
fn rejects_signature_scalars_zero_or_at_least_n() {
    // ES256 only: about the shape of an ES256 signature or key.
    let t = good();
    let sig = sig_of(&t);
    let (r, s) = sig.split_at(32);
    let zero = [0u8; 32];
    let n = hex(N);
    let max = [0xffu8; 32];
    for (r, s) in [
        (&zero[..], s),
        (r, &zero[..]),
        (&zero[..], &zero[..]),
        (&n[..], s),
        (r, &n[..]),
        (&max[..], s),
        (r, &max[..]),
    ] {
        let bad: Vec<u8> = r.iter().chain(s).copied().collect();
        rejected(&with_sig(&t, &bad), JwtError::SignatureScalarRange);
    }
}

#[test]
fn rejects_tampered_payload() {
    kit::for_each_alg(|| {
        let t = good();
        let s = segments(&t);
        let forged = b64(&json_bytes(&set(claims(), "sub", json!("admin"))));
        rejected(
            &format!("{}.{forged}.{}", s[0], s[2]),
            JwtError::SignatureInvalid,
        );
        // The same claims re-encoded (different member order or spacing) are different signed bytes.
        let respaced = serde_json::to_vec_pretty(&claims()).unwrap();
        rejected(
            &format!("{}.{}.{}", s[0], b64(&respaced), s[2]),
            JwtError::SignatureInvalid,
        );
    });
}

#[test]
fn rejects_tampered_header() {
    kit::for_each_alg(|| {
        let t = good();
        let s = segments(&t);
        let h = set(header(), "typ", json!("JWT"));
        rejected(
            &format!("{}.{}.{}", b64(&json_bytes(&h)), s[1], s[2]),
            JwtError::SignatureInvalid,
        );
    });
}

#[test]
fn rejects_token_signed_by_another_key_under_the_real_kid() {
    kit::for_each_alg(|| {
        rejected(
            &token_by(ATTACKER_SECRET, &header(), &claims()),
            JwtError::SignatureInvalid,
        );
    });
}

#[test]
fn rejects_signature_with_flipped_bit() {
    kit::for_each_alg(|| {
        let t = good();
        let mut sig = sig_of(&t);
        sig[40] ^= 0x01;
        rejected(&with_sig(&t, &sig), JwtError::SignatureInvalid);
    });
}

// ---------------------------------------------------------------------------------------------
// J7: key selection; header keys (jwk, jku, x5u, x5c) are never used

fn attacker() -> Signer {
    Signer::current("attacker", ATTACKER_SECRET)
}

#[test]
fn ignores_embedded_jwk_header_signed_by_attacker_key() {
    kit::for_each_alg(|| {
        let attacker_jwk = attacker().public_jwk();
        // kid of the real key: verified against the real key, so the attacker's signature fails.
        let h = set(header(), "jwk", attacker_jwk.clone());
        rejected(
            &token_by(ATTACKER_SECRET, &h, &claims()),
            JwtError::SignatureInvalid,
        );
        // No kid, single-key set: still the configured key, never the embedded one.
        let h = set(unset(header(), "kid"), "jwk", attacker_jwk.clone());
        rejected(
            &token_by(ATTACKER_SECRET, &h, &claims()),
            JwtError::SignatureInvalid,
        );
        // The attacker's own kid: not in the configured set.
        let h = set(set(header(), "kid", json!("attacker")), "jwk", attacker_jwk);
        rejected(
            &token_by(ATTACKER_SECRET, &h, &claims()),
            JwtError::UnknownKid,
        );
    });
}

#[test]
fn ignores_jku_x5u_x5c_headers_on_attacker_signed_tokens() {
    kit::for_each_alg(|| {
        let h = set(
            set(
                set(header(), "jku", json!("https://attacker.example/jwks.json")),
                "x5u",
                json!("https://attacker.example/cert.pem"),
            ),
            "x5c",
            json!(["MIIBAAAA"]),
        );
        rejected(
            &token_by(ATTACKER_SECRET, &h, &claims()),
            JwtError::SignatureInvalid,
        );
    });
}

#[test]
fn accepts_real_key_token_carrying_jku_and_other_key_headers() {
    kit::for_each_alg(|| {
        // The headers are not errors, just never consulted (no fetch happens: this is a pure call).
        accepted(&token(
            &set(header(), "jku", json!("https://attacker.example/jwks.json")),
            &claims(),
        ));
        accepted(&token(
            &set(header(), "x5u", json!("https://attacker.example/cert.pem")),
            &claims(),
        ));
        accepted(&token(
            &set(header(), "jwk", issuer().public_jwk()),
            &claims(),
        ));
        accepted(&token(
            &set(header(), "jwk", attacker().public_jwk()),
            &claims(),
        ));
    });
}

#[test]
fn rejects_token_signed_by_unknown_kid() {
    kit::for_each_alg(|| {
        rejected(
            &token(&set(header(), "kid", json!("key-2")), &claims()),
            JwtError::UnknownKid,
        );
    });
}

#[test]
fn kid_is_case_sensitive() {
    kit::for_each_alg(|| {
        for kid in ["KEY-1", "Key-1", "key-1 ", " key-1"] {
            rejected(
                &token(&set(header(), "kid", json!(kid)), &claims()),
                JwtError::UnknownKid,
            );
        }
    });
}

#[test]
fn rejects_non_string_kid() {
    kit::for_each_alg(|| {
        for kid in [
            json!(1),
            json!(null),
            json!(["key-1"]),
            json!({"id": "key-1"}),
        ] {
            rejected(
                &token(&set(header(), "kid", kid), &claims()),
                JwtError::KidNotString,
            );
        }
    });
}

fn two_key_set() -> KeySet {
    let second = Signer::current("key-2", OTHER_SECRET);
    KeySet::from_keys(vec![
        issuer().key_set().keys()[0].clone(),
        second.key_set().keys()[0].clone(),
    ])
}

#[test]
fn missing_kid_is_accepted_with_exactly_one_key() {
    kit::for_each_alg(|| {
        accepted(&token(&unset(header(), "kid"), &claims()));
    });
}

#[test]
fn missing_kid_is_rejected_with_two_keys() {
    kit::for_each_alg(|| {
        let t = token(&unset(header(), "kid"), &claims());
        assert_eq!(
            jwt::verify(&t, &two_key_set(), &policy(), NOW).map(|_| ()),
            Err(JwtError::KidMissingWithSeveralKeys)
        );
    });
}

#[test]
fn accepts_token_signed_by_the_second_key_of_a_two_key_set() {
    kit::for_each_alg(|| {
        let second = Signer::current("key-2", OTHER_SECRET);
        let t = second.sign_raw(
            &json_bytes(&set(header(), "kid", json!("key-2"))),
            &json_bytes(&claims()),
        );
        let p = jwt::verify(&t, &two_key_set(), &policy(), NOW).unwrap();
        assert_eq!(p.subject.as_deref(), Some("alice"));
        // The first key's kid with the second key's signature does not verify.
        let crossed = token_by(OTHER_SECRET, &header(), &claims());
        assert_eq!(
            jwt::verify(&crossed, &two_key_set(), &policy(), NOW).map(|_| ()),
            Err(JwtError::SignatureInvalid)
        );
    });
}

#[test]
fn kid_lookup_is_by_kid_not_by_position() {
    kit::for_each_alg(|| {
        // A key without kid in the set does not match a token naming a kid.
        let real = issuer().jwk();
        let anonymous = KeySet::from_keys(vec![Jwk::new(None, real.key().clone(), None)]);
        assert_eq!(
            jwt::verify(&good(), &anonymous, &policy(), NOW).map(|_| ()),
            Err(JwtError::UnknownKid)
        );
    });
}

// ---------------------------------------------------------------------------------------------
// J10-J11: claim types, iss

#[test]
fn rejects_wrong_issuer() {
    kit::for_each_alg(|| {
        for iss in [
            "https://issuer.test/",
            "HTTPS://ISSUER.TEST",
            "https://Issuer.test",
            "https://issuer.test ",
            "https://issuer.test.evil.example",
            "http://issuer.test",
            "",
        ] {
            rejected(
                &token(&header(), &set(claims(), "iss", json!(iss))),
                JwtError::WrongIssuer,
            );
        }
    });
}

#[test]
fn rejects_missing_issuer() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &unset(claims(), "iss")),
            JwtError::WrongIssuer,
        );
    });
}

#[test]
fn rejects_non_string_issuer() {
    kit::for_each_alg(|| {
        for iss in [
            json!([ISSUER]),
            json!(1),
            json!(null),
            json!({"iss": ISSUER}),
        ] {
            rejected(
                &token(&header(), &set(claims(), "iss", iss)),
                JwtError::ClaimType("iss"),
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// J13: exp

fn with_exp(exp: Value) -> String {
    token(&header(), &set(claims(), "exp", exp))
}

#[test]
fn rejects_missing_exp() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &unset(claims(), "exp")),
            JwtError::ExpMissing,
        );
    });
}

#[test]
fn rejects_non_numeric_exp() {
    kit::for_each_alg(|| {
        for exp in [
            json!((NOW + 600).to_string()),
            json!(null),
            json!(true),
            json!([NOW + 600]),
            json!({"t": NOW + 600}),
        ] {
            rejected(&with_exp(exp), JwtError::ClaimType("exp"));
        }
    });
}

#[test]
fn rejects_exp_out_of_range() {
    kit::for_each_alg(|| {
        for exp in [json!(1e300), json!(-1e300), json!(1e12), json!(f64::MAX)] {
            rejected(&with_exp(exp), JwtError::ExpOutOfRange);
        }
        // One past u64::MAX: serde_json reads it as a float, far beyond any plausible date.
        let base = json_bytes(&unset(claims(), "exp"));
        let body = std::str::from_utf8(&base[..base.len() - 1]).unwrap();
        let big = format!(r#"{body},"exp":18446744073709551616}}"#);
        rejected(
            &signed_bytes(&json_bytes(&header()), big.as_bytes()),
            JwtError::ExpOutOfRange,
        );
        // Beyond f64 range: not representable JSON for the parser, so the payload is refused whole.
        let huge = format!(r#"{body},"exp":1e400}}"#);
        rejected(
            &signed_bytes(&json_bytes(&header()), huge.as_bytes()),
            JwtError::NotJsonObject(Segment::Payload),
        );
    });
}

#[test]
fn accepts_exp_just_inside_leeway() {
    kit::for_each_alg(|| {
        accepted(&with_exp(json!(NOW - LEEWAY + 1)));
        accepted(&with_exp(json!((NOW - LEEWAY) as f64 + 0.5)));
    });
}

#[test]
fn rejects_exp_at_now_minus_leeway_boundary() {
    kit::for_each_alg(|| {
        // now >= exp + leeway
        rejected(&with_exp(json!(NOW - LEEWAY)), JwtError::Expired);
        rejected(
            &with_exp(json!((NOW - LEEWAY) as f64 - 0.5)),
            JwtError::Expired,
        );
        rejected(&with_exp(json!(NOW - 2 * LEEWAY)), JwtError::Expired);
        rejected(&with_exp(json!(0)), JwtError::Expired);
        rejected(&with_exp(json!(-1)), JwtError::Expired);
    });
}

#[test]
fn zero_leeway_expires_exactly_at_exp() {
    kit::for_each_alg(|| {
        let mut p = policy();
        p.leeway_secs = 0;
        assert_eq!(
            check_with(&with_exp(json!(NOW)), &p).map(|_| ()),
            Err(JwtError::Expired)
        );
        assert!(check_with(&with_exp(json!(NOW + 1)), &p).is_ok());
    });
}

#[test]
fn accepts_fractional_exp() {
    kit::for_each_alg(|| {
        let exp = NOW as f64 + 600.25;
        let p = accepted(&with_exp(json!(exp)));
        assert_eq!(p.expires_at, exp);
    });
}

// ---------------------------------------------------------------------------------------------
// J14: nbf, J15: iat

#[test]
fn rejects_nbf_in_future_beyond_leeway() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &set(claims(), "nbf", json!(NOW + LEEWAY + 1))),
            JwtError::NotYetValid,
        );
        rejected(
            &token(&header(), &set(claims(), "nbf", json!(NOW + 2 * LEEWAY))),
            JwtError::NotYetValid,
        );
    });
}

#[test]
fn accepts_nbf_within_leeway() {
    kit::for_each_alg(|| {
        for nbf in [NOW + LEEWAY, NOW + 1, NOW, NOW - 3600] {
            accepted(&token(&header(), &set(claims(), "nbf", json!(nbf))));
        }
    });
}

#[test]
fn rejects_non_numeric_nbf() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &set(claims(), "nbf", json!(NOW.to_string()))),
            JwtError::ClaimType("nbf"),
        );
    });
}

#[test]
fn rejects_iat_far_in_future() {
    kit::for_each_alg(|| {
        for iat in [NOW + 3600, NOW + LEEWAY + 1] {
            rejected(
                &token(&header(), &set(claims(), "iat", json!(iat))),
                JwtError::IssuedInFuture,
            );
        }
        accepted(&token(
            &header(),
            &set(claims(), "iat", json!(NOW + LEEWAY)),
        ));
    });
}

#[test]
fn rejects_non_numeric_iat() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &set(claims(), "iat", json!("now"))),
            JwtError::ClaimType("iat"),
        );
    });
}

// ---------------------------------------------------------------------------------------------
// J12: aud

fn with_aud(aud: Value) -> String {
    token(&header(), &set(claims(), "aud", aud))
}

#[test]
fn accepts_audience_string_match() {
    kit::for_each_alg(|| {
        accepted(&with_aud(json!(AUDIENCE)));
    });
}

#[test]
fn accepts_audience_array_containing_this_resource() {
    kit::for_each_alg(|| {
        accepted(&with_aud(json!(["https://other.example", AUDIENCE])));
        accepted(&with_aud(json!([AUDIENCE])));
    });
}

#[test]
fn accepts_any_of_several_configured_audiences() {
    kit::for_each_alg(|| {
        let mut p = policy();
        p.audience = AudiencePolicy::OneOf(vec!["https://a.example".into(), AUDIENCE.into()]);
        assert!(check_with(&with_aud(json!(AUDIENCE)), &p).is_ok());
    });
}

#[test]
fn rejects_audience_mismatch() {
    kit::for_each_alg(|| {
        for aud in [
            json!("https://other.example/mcp"),
            json!(format!("{AUDIENCE}/")),
            json!(AUDIENCE.to_uppercase()),
            json!(["https://other.example/mcp"]),
            json!([]),
        ] {
            rejected(&with_aud(aud), JwtError::AudienceMismatch);
        }
    });
}

#[test]
fn rejects_missing_audience() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &unset(claims(), "aud")),
            JwtError::AudienceMissing,
        );
    });
}

#[test]
fn rejects_non_string_audience_member() {
    kit::for_each_alg(|| {
        rejected(&with_aud(json!([AUDIENCE, 1])), JwtError::ClaimType("aud"));
        rejected(&with_aud(json!([null])), JwtError::ClaimType("aud"));
        rejected(&with_aud(json!(1)), JwtError::ClaimType("aud"));
        rejected(
            &with_aud(json!({"aud": AUDIENCE})),
            JwtError::ClaimType("aud"),
        );
    });
}

#[test]
fn audience_check_disabled_accepts_any_or_no_audience() {
    kit::for_each_alg(|| {
        let mut p = policy();
        p.audience = AudiencePolicy::DangerouslySkip;
        for t in [
            with_aud(json!("https://other.example/mcp")),
            token(&header(), &unset(claims(), "aud")),
        ] {
            assert!(check_with(&t, &p).is_ok());
        }
    });
}

#[test]
fn rejects_mistyped_aud_even_when_audience_check_is_disabled() {
    kit::for_each_alg(|| {
        let mut p = policy();
        p.audience = AudiencePolicy::DangerouslySkip;
        for aud in [json!(1), json!([AUDIENCE, 2]), json!({"a": 1}), json!(null)] {
            assert_eq!(
                check_with(&with_aud(aud.clone()), &p).unwrap_err(),
                JwtError::ClaimType("aud"),
                "{aud}"
            );
        }
    });
}

// ---------------------------------------------------------------------------------------------
// J16: scopes and sub

#[test]
fn scope_string_and_scp_array_merge_into_principal_scopes() {
    kit::for_each_alg(|| {
        let c = set(
            set(claims(), "scope", json!("mcp:read  mcp:write")),
            "scp",
            json!(["mcp:write", "admin"]),
        );
        let p = accepted(&token(&header(), &c));
        assert_eq!(p.scopes, ["mcp:read", "mcp:write", "admin"]);
        assert!(p.has_scope("admin") && !p.has_scope("mcp"));
        let only_scp = set(unset(claims(), "scope"), "scp", json!(["a", "b"]));
        assert_eq!(accepted(&token(&header(), &only_scp)).scopes, ["a", "b"]);
        let none = unset(claims(), "scope");
        assert!(accepted(&token(&header(), &none)).scopes.is_empty());
    });
}

#[test]
fn rejects_non_string_scope_or_non_array_scp() {
    kit::for_each_alg(|| {
        rejected(
            &token(&header(), &set(claims(), "scope", json!(["mcp:read"]))),
            JwtError::ClaimType("scope"),
        );
        rejected(
            &token(&header(), &set(claims(), "scp", json!("mcp:read"))),
            JwtError::ClaimType("scp"),
        );
        rejected(
            &token(&header(), &set(claims(), "scp", json!(["mcp:read", 1]))),
            JwtError::ClaimType("scp"),
        );
    });
}

#[test]
fn rejects_non_string_sub() {
    kit::for_each_alg(|| {
        for sub in [
            json!(1),
            json!(null),
            json!(["alice"]),
            json!({"id": "alice"}),
        ] {
            rejected(
                &token(&header(), &set(claims(), "sub", sub)),
                JwtError::ClaimType("sub"),
            );
        }
    });
}

#[test]
fn accepts_token_without_sub() {
    kit::for_each_alg(|| {
        assert_eq!(
            accepted(&token(&header(), &unset(claims(), "sub"))).subject,
            None
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Through `Authenticator::authenticate` with request headers (RFC 6750 section 2.1, 3.1)

fn authenticator(required: &[&str]) -> Authenticator {
    Authenticator::new(
        policy(),
        Arc::new(StaticKeys(Arc::new(keys()))),
        required.iter().map(|s| s.to_string()).collect(),
    )
}

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
    }
    h
}

async fn authenticate(
    required: &[&str],
    values: &[&[u8]],
) -> Result<std::sync::Arc<Principal>, AuthError> {
    authenticator(required)
        .authenticate(&headers(values), None, NOW)
        .await
}

#[tokio::test]
async fn authenticate_accepts_canonical_bearer_scheme() {
    kit::for_each_alg_async(|| async {
        let v = format!("Bearer {}", good());
        assert!(authenticate(&[], &[v.as_bytes()]).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn authenticate_accepts_lowercase_bearer_scheme() {
    kit::for_each_alg_async(|| async {
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            let v = format!("{scheme} {}", good());
            assert!(authenticate(&[], &[v.as_bytes()]).await.is_ok(), "{scheme}");
        }
    })
    .await;
}

#[tokio::test]
async fn authenticate_accepts_two_spaces_after_scheme() {
    kit::for_each_alg_async(|| async {
        let v = format!("Bearer  {}", good());
        assert!(authenticate(&[], &[v.as_bytes()]).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn authenticate_without_authorization_is_no_credentials() {
    kit::for_each_alg_async(|| async {
        assert_eq!(authenticate(&[], &[]).await, Err(AuthError::NoCredentials));
    })
    .await;
}

#[tokio::test]
async fn authenticate_basic_scheme_is_no_credentials() {
    kit::for_each_alg_async(|| async {
        assert_eq!(
            authenticate(&[], &[b"Basic dXNlcjpwYXNzd29yZA=="]).await,
            Err(AuthError::NoCredentials)
        );
        // A scheme that merely starts with "Bearer" is another scheme.
        let v = format!("Bearerx {}", good());
        assert_eq!(
            authenticate(&[], &[v.as_bytes()]).await,
            Err(AuthError::NoCredentials)
        );
    })
    .await;
}

#[tokio::test]
async fn authenticate_empty_bearer_is_invalid_request() {
    kit::for_each_alg_async(|| async {
        for v in [&b"Bearer"[..], b"Bearer ", b"bearer    "] {
            assert_eq!(
                authenticate(&[], &[v]).await,
                Err(AuthError::InvalidRequest(BearerError::EmptyBearer)),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    })
    .await;
}

#[tokio::test]
async fn authenticate_duplicate_authorization_is_invalid_request() {
    kit::for_each_alg_async(|| async {
        let v = format!("Bearer {}", good());
        assert_eq!(
            authenticate(&[], &[v.as_bytes(), v.as_bytes()]).await,
            Err(AuthError::InvalidRequest(
                BearerError::DuplicateAuthorization
            ))
        );
        assert_eq!(
            authenticate(&[], &[v.as_bytes(), b"Basic dXNlcjpwYXNzd29yZA=="]).await,
            Err(AuthError::InvalidRequest(
                BearerError::DuplicateAuthorization
            ))
        );
    })
    .await;
}

#[tokio::test]
async fn authenticate_non_b64token_bearer_is_malformed() {
    kit::for_each_alg_async(|| async {
        let t = good();
        let cases: Vec<Vec<u8>> = vec![
            format!("Bearer {t} extra").into_bytes(),
            format!("Bearer {t}!").into_bytes(),
            b"Bearer {\"alg\":\"none\"}".to_vec(),
            b"Bearer ===".to_vec(),
            b"Bearer a=b.c.d".to_vec(),
            "Bearer tok\u{e9}n".as_bytes().to_vec(),
            b"Bearer tok\xffen".to_vec(),
        ];
        for v in &cases {
            assert_eq!(
                authenticate(&[], &[v]).await,
                Err(AuthError::MalformedBearer),
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    })
    .await;
}

#[tokio::test]
async fn authenticate_reports_the_verifier_error_as_invalid_token() {
    kit::for_each_alg_async(|| async {
        let expired = format!(
            "Bearer {}",
            token(&header(), &set(claims(), "exp", json!(NOW - 2 * LEEWAY)))
        );
        assert_eq!(
            authenticate(&[], &[expired.as_bytes()]).await,
            Err(AuthError::InvalidToken(JwtError::Expired))
        );
        // Static keys never refetch, so an unknown kid stays unknown.
        let unknown = format!(
            "Bearer {}",
            token(&set(header(), "kid", json!("key-9")), &claims())
        );
        assert_eq!(
            authenticate(&[], &[unknown.as_bytes()]).await,
            Err(AuthError::InvalidToken(JwtError::UnknownKid))
        );
    })
    .await;
}

#[tokio::test]
async fn authenticate_insufficient_scope_lists_every_required_scope() {
    kit::for_each_alg_async(|| async {
        let required = ["mcp:read", "mcp:write", "mcp:admin"];
        let all = vec![
            "mcp:read".to_owned(),
            "mcp:write".to_owned(),
            "mcp:admin".to_owned(),
        ];
        // Holding one of three: the 403 names all three, not just the missing ones.
        let v = format!("Bearer {}", good());
        assert_eq!(
            authenticate(&required, &[v.as_bytes()]).await,
            Err(AuthError::InsufficientScope {
                required: all.clone()
            })
        );
        let none = format!("Bearer {}", token(&header(), &unset(claims(), "scope")));
        assert_eq!(
            authenticate(&required, &[none.as_bytes()]).await,
            Err(AuthError::InsufficientScope { required: all })
        );
        let enough = format!(
            "Bearer {}",
            token(
                &header(),
                &set(
                    set(claims(), "scope", json!("mcp:read mcp:write")),
                    "scp",
                    json!(["mcp:admin"])
                )
            )
        );
        assert!(authenticate(&required, &[enough.as_bytes()]).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn check_scopes_names_server_and_operation_scopes_once_each() {
    kit::for_each_alg_async(|| async {
        let auth = authenticator(&["mcp:read"]);
        let v = format!("Bearer {}", good());
        let principal = auth
            .authenticate(&headers(&[v.as_bytes()]), None, NOW)
            .await
            .unwrap();
        assert_eq!(auth.check_scopes(&principal, &[]), Ok(()));
        assert_eq!(
            auth.check_scopes(&principal, &["files:write".into(), "mcp:read".into()]),
            Err(AuthError::InsufficientScope {
                required: vec!["mcp:read".into(), "files:write".into()]
            })
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// The verification cache must never outlive what it cached.

#[tokio::test]
async fn cached_verification_still_expires() {
    kit::for_each_alg_async(|| async {
        let auth = authenticator(&[]);
        let t = good();
        assert!(auth.verify_token(&t, NOW).await.is_ok());
        // Second call inside the window is served from the cache...
        assert!(auth.verify_token(&t, NOW + 600 + LEEWAY - 1).await.is_ok());
        // ...and past exp + leeway it is expired, cached or not.
        assert_eq!(
            auth.verify_token(&t, NOW + 600 + LEEWAY).await.unwrap_err(),
            AuthError::InvalidToken(JwtError::Expired)
        );
    })
    .await;
}

#[tokio::test]
async fn cached_verification_respects_nbf() {
    kit::for_each_alg_async(|| async {
        let auth = authenticator(&[]);
        let t = token(&header(), &set(claims(), "nbf", json!(NOW + 2 * LEEWAY)));
        // Valid once nbf - leeway is reached; before that, not even a cache hit is served.
        assert!(auth.verify_token(&t, NOW + LEEWAY).await.is_ok());
        assert_eq!(
            auth.verify_token(&t, NOW).await.unwrap_err(),
            AuthError::InvalidToken(JwtError::NotYetValid)
        );
    })
    .await;
}

#[tokio::test]
async fn a_tampered_twin_of_a_cached_token_is_not_a_hit_and_fails_the_same_way_twice() {
    kit::for_each_alg_async(|| async {
        let auth = authenticator(&[]);
        let t = good();
        assert!(auth.verify_token(&t, NOW).await.is_ok());
        let mut sig = sig_of(&t);
        sig[40] ^= 1;
        let forged = with_sig(&t, &sig);
        for _ in 0..2 {
            assert_eq!(
                auth.verify_token(&forged, NOW).await.unwrap_err(),
                AuthError::InvalidToken(JwtError::SignatureInvalid)
            );
        }
    })
    .await;
}

#[test]
fn claims_are_not_judged_before_the_signature() {
    kit::for_each_alg(|| {
        // Expired, wrong issuer and wrong audience, but signed by another key: the signature fails first.
        let bad_claims = json!({"iss": "https://evil.example", "aud": "x", "exp": NOW - 10_000});
        let t = token_by(OTHER_SECRET, &header(), &bad_claims);
        assert_eq!(check(&t).unwrap_err(), JwtError::SignatureInvalid);
    });
}
