//! The shapes in which one key type can pass for another are refused, one test each: an RS256
//! header on an EC key, an ES256 header on an RSA key, HS256 keyed with the RSA public key, an RSA
//! key under 2048 bits, a JWK with both RSA and EC members, an Ed448 key, an RSA signature of the
//! wrong length; plus the EdDSA and PS256 counterparts.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};

use super::kit::{rsa_keys, Signer};
use crate::auth::algorithm::Algorithm;
use crate::auth::jwks::{parse_jwk, JwksParseError, KeyRejection, KeySet};
use crate::auth::jwt::{self, AudiencePolicy, JwtError, Policy};

const ISSUER: &str = "https://issuer.test";
const AUD: &str = "https://mcp.test/mcp";
const NOW: u64 = 1_750_000_000;

fn policy(algorithms: &[Algorithm]) -> Policy {
    let mut p = Policy::new(ISSUER, AudiencePolicy::OneOf(vec![AUD.into()]));
    p.algorithms = algorithms.to_vec();
    p
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": AUD, "sub": "alice", "exp": NOW + 600})
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with header `{alg, kid}` signed by `signer` (whatever its own algorithm is).
fn token_with_header(signer: &Signer, alg: &str, kid: &str) -> String {
    let header = json!({"alg": alg, "kid": kid, "typ": "at+jwt"});
    signer.sign_raw(
        &serde_json::to_vec(&header).unwrap(),
        &serde_json::to_vec(&claims()).unwrap(),
    )
}

fn set_of(signers: &[&Signer]) -> KeySet {
    KeySet::from_keys(signers.iter().map(|s| s.jwk()).collect())
}

fn with_sig(token: &str, sig: &[u8]) -> String {
    format!("{}.{}", &token[..token.rfind('.').unwrap()], b64(sig))
}

fn sig_of(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.rsplit('.').next().unwrap())
        .unwrap()
}

#[test]
fn an_rs256_header_naming_an_ec_key_is_refused_even_with_both_algorithms_enabled() {
    let ec = Signer::new(Algorithm::Es256, "ec", [7; 32]);
    let rsa = Signer::new(Algorithm::Rs256, "rsa", [7; 32]);
    let keys = set_of(&[&ec, &rsa]);
    let both = policy(&[Algorithm::Es256, Algorithm::Rs256]);
    // Signed with the RSA key, but the kid names the EC key.
    let t = token_with_header(&rsa, "RS256", "ec");
    assert_eq!(
        jwt::verify(&t, &keys, &both, NOW).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
    // The same token naming the RSA key verifies: the mismatch is the only defect.
    let t = token_with_header(&rsa, "RS256", "rsa");
    assert!(jwt::verify(&t, &keys, &both, NOW).is_ok());
}

#[test]
fn an_es256_header_naming_an_rsa_key_is_refused_even_with_both_algorithms_enabled() {
    let ec = Signer::new(Algorithm::Es256, "ec", [7; 32]);
    let rsa = Signer::new(Algorithm::Rs256, "rsa", [7; 32]);
    let keys = set_of(&[&ec, &rsa]);
    let both = policy(&[Algorithm::Es256, Algorithm::Rs256]);
    let t = token_with_header(&ec, "ES256", "rsa");
    assert_eq!(
        jwt::verify(&t, &keys, &both, NOW).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
    let t = token_with_header(&ec, "ES256", "ec");
    assert!(jwt::verify(&t, &keys, &both, NOW).is_ok());
}

#[test]
fn hs256_keyed_with_the_rsa_public_key_bytes_is_refused_under_every_configuration() {
    let rsa = Signer::new(Algorithm::Rs256, "rsa", [7; 32]);
    let keys = set_of(&[&rsa]);
    let header = json!({"alg": "HS256", "kid": "rsa"});
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&serde_json::to_vec(&claims()).unwrap())
    );
    let jwk = rsa.public_jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let confusion_keys = [
        serde_json::to_vec(&jwk).unwrap(),
        n.clone(),
        STANDARD.encode(&n).into_bytes(),
        jwk["n"].as_str().unwrap().as_bytes().to_vec(),
    ];
    for key in confusion_keys {
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            input.as_bytes(),
        );
        let t = format!("{input}.{}", b64(mac.as_ref()));
        for algorithms in [
            &Algorithm::ALL[..],
            &[Algorithm::Rs256],
            &[Algorithm::Ps256],
        ] {
            assert_eq!(
                jwt::verify(&t, &keys, &policy(algorithms), NOW).unwrap_err(),
                JwtError::AlgNotAllowed
            );
        }
    }
    // And HS256 cannot even be configured.
    assert!(Algorithm::parse_list("RS256,HS256").is_err());
}

#[test]
fn an_rsa_key_under_2048_bits_is_refused_at_parse_time() {
    let small = &rsa_keys()[3];
    let jwk = json!({"kty": "RSA", "kid": "small", "n": small.n, "e": small.e, "alg": "RS256"});
    assert_eq!(
        parse_jwk(jwk.as_object().unwrap()).unwrap_err(),
        KeyRejection::RsaKeyTooSmall
    );
    let doc = serde_json::to_vec(&json!({"keys": [jwk]})).unwrap();
    assert_eq!(
        KeySet::parse(&doc).unwrap_err(),
        JwksParseError::NoUsableKeys
    );
    // 2048 bits exactly is accepted.
    let ok = &rsa_keys()[0];
    let jwk = json!({"kty": "RSA", "n": ok.n, "e": ok.e});
    assert!(parse_jwk(jwk.as_object().unwrap()).is_ok());
}

#[test]
fn rsa_exponents_and_moduli_outside_sane_bounds_are_refused() {
    let k = &rsa_keys()[0];
    for (e, why) in [
        ("AQ", "e = 1"),
        ("Ag", "e = 2, even"),
        ("AAEAAQ", "leading zero byte"),
        ("AQAAAAAB", "over 2^33 - 1"),
    ] {
        let jwk = json!({"kty": "RSA", "n": k.n, "e": e});
        assert!(
            matches!(
                parse_jwk(jwk.as_object().unwrap()).unwrap_err(),
                KeyRejection::BadRsaExponent | KeyRejection::BadRsaComponents
            ),
            "{why}"
        );
    }
    let mut n = URL_SAFE_NO_PAD.decode(&k.n).unwrap();
    n.insert(0, 0);
    let jwk = json!({"kty": "RSA", "n": b64(&n), "e": k.e});
    assert_eq!(
        parse_jwk(jwk.as_object().unwrap()).unwrap_err(),
        KeyRejection::BadRsaComponents,
        "a modulus with a leading zero is not minimal"
    );
}

#[test]
fn a_jwk_with_both_rsa_and_ec_members_is_refused_whatever_its_kty() {
    let ec = Signer::new(Algorithm::Es256, "ec", [7; 32]).public_jwk();
    let rsa = Signer::new(Algorithm::Rs256, "rsa", [7; 32]).public_jwk();
    let mut rsa_with_ec = rsa.as_object().unwrap().clone();
    for m in ["crv", "x", "y"] {
        rsa_with_ec.insert(m.into(), ec[m].clone());
    }
    rsa_with_ec.remove("alg");
    assert_eq!(
        parse_jwk(&rsa_with_ec).unwrap_err(),
        KeyRejection::MixedKeyMembers
    );
    let mut ec_with_rsa = ec.as_object().unwrap().clone();
    for m in ["n", "e"] {
        ec_with_rsa.insert(m.into(), rsa[m].clone());
    }
    assert_eq!(
        parse_jwk(&ec_with_rsa).unwrap_err(),
        KeyRejection::MixedKeyMembers
    );
    let ed = Signer::new(Algorithm::EdDsa, "ed", [7; 32]).public_jwk();
    let mut okp_with_y = ed.as_object().unwrap().clone();
    okp_with_y.insert("y".into(), ec["y"].clone());
    assert_eq!(
        parse_jwk(&okp_with_y).unwrap_err(),
        KeyRejection::MixedKeyMembers
    );
}

#[test]
fn an_ed448_key_is_refused_and_an_eddsa_token_naming_it_finds_no_key() {
    let ed448 = json!({"kty": "OKP", "crv": "Ed448", "kid": "ed448", "x": b64(&[9; 57])});
    assert_eq!(
        parse_jwk(ed448.as_object().unwrap()).unwrap_err(),
        KeyRejection::WrongCurve
    );
    let ed = Signer::new(Algorithm::EdDsa, "ed", [7; 32]);
    let doc = serde_json::to_vec(&json!({"keys": [ed448, ed.public_jwk()]})).unwrap();
    let (keys, skipped) = KeySet::parse(&doc).unwrap();
    assert_eq!(skipped[0].reason, KeyRejection::WrongCurve);
    let t = token_with_header(&ed, "EdDSA", "ed448");
    assert_eq!(
        jwt::verify(&t, &keys, &policy(&[Algorithm::EdDsa]), NOW).unwrap_err(),
        JwtError::UnknownKid
    );
    // X25519 (an encryption curve) is refused the same way.
    let x25519 = json!({"kty": "OKP", "crv": "X25519", "x": b64(&[9; 32])});
    assert_eq!(
        parse_jwk(x25519.as_object().unwrap()).unwrap_err(),
        KeyRejection::WrongCurve
    );
}

#[test]
fn an_rsa_signature_of_the_wrong_length_is_refused_before_verification() {
    for alg in [Algorithm::Rs256, Algorithm::Ps256] {
        let rsa = Signer::new(alg, "rsa", [7; 32]);
        let keys = set_of(&[&rsa]);
        let p = policy(&[alg]);
        let t = token_with_header(&rsa, alg.name(), "rsa");
        assert!(jwt::verify(&t, &keys, &p, NOW).is_ok());
        let sig = sig_of(&t);
        assert_eq!(sig.len(), 256);
        let mut prefixed = vec![0];
        prefixed.extend_from_slice(&sig);
        for (bad, len) in [
            (sig[..255].to_vec(), 255),
            (prefixed, 257),
            ([sig.as_slice(), &[0]].concat(), 257),
            (Vec::new(), 0),
            (sig[..64].to_vec(), 64),
        ] {
            assert_eq!(
                jwt::verify(&with_sig(&t, &bad), &keys, &p, NOW).unwrap_err(),
                JwtError::SignatureLength { len },
                "{alg}"
            );
        }
    }
}

#[test]
fn an_eddsa_signature_of_the_wrong_length_is_refused_before_any_key_lookup() {
    let ed = Signer::new(Algorithm::EdDsa, "ed", [7; 32]);
    let keys = set_of(&[&ed]);
    let p = policy(&[Algorithm::EdDsa]);
    let t = token_with_header(&ed, "EdDSA", "ed");
    assert!(jwt::verify(&t, &keys, &p, NOW).is_ok());
    let sig = sig_of(&t);
    for len in [0, 32, 63, 65, 128] {
        let bad: Vec<u8> = sig.iter().copied().cycle().take(len).collect();
        assert_eq!(
            jwt::verify(&with_sig(&t, &bad), &KeySet::default(), &p, NOW).unwrap_err(),
            JwtError::SignatureLength { len }
        );
    }
}

#[test]
fn a_key_pinned_to_one_rsa_algorithm_refuses_the_other() {
    // The JWK says alg RS256: a PS256 token under its kid is refused, though the key type fits.
    let rs = Signer::new(Algorithm::Rs256, "rsa", [7; 32]);
    let ps = Signer::new(Algorithm::Ps256, "rsa", [7; 32]);
    let keys = set_of(&[&rs]);
    let both = policy(&[Algorithm::Rs256, Algorithm::Ps256]);
    let t = token_with_header(&ps, "PS256", "rsa");
    assert_eq!(
        jwt::verify(&t, &keys, &both, NOW).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
    // Without an alg in the JWK, the key serves both.
    let mut jwk = rs.public_jwk();
    jwk.as_object_mut().unwrap().remove("alg");
    let open = KeySet::from_keys(vec![parse_jwk(jwk.as_object().unwrap()).unwrap()]);
    assert!(jwt::verify(&t, &open, &both, NOW).is_ok());
    assert!(jwt::verify(&token_with_header(&rs, "RS256", "rsa"), &open, &both, NOW).is_ok());
}

#[test]
fn eddsa_and_es256_headers_cannot_cross_to_each_other_s_keys() {
    let ec = Signer::new(Algorithm::Es256, "ec", [7; 32]);
    let ed = Signer::new(Algorithm::EdDsa, "ed", [7; 32]);
    let keys = set_of(&[&ec, &ed]);
    let all = policy(&Algorithm::ALL);
    assert_eq!(
        jwt::verify(&token_with_header(&ed, "EdDSA", "ec"), &keys, &all, NOW).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
    assert_eq!(
        jwt::verify(&token_with_header(&ec, "ES256", "ed"), &keys, &all, NOW).unwrap_err(),
        JwtError::KeyAlgorithmMismatch
    );
}
