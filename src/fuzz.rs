//! Fuzzing entry points (cargo feature `fuzzing`, off by default): one function per target in `tests/fuzz/`, each checking its invariants.
//!
//! Each function takes the fuzzer's bytes, drives one parser or the whole service, and panics
//! when an invariant breaks; the fuzzer reports any panic as a crash. Inputs are split into a
//! selector byte and the rest where a target has variants. Everything uses fixed keys, a fixed
//! clock and a deterministic random source, so a crash replays exactly.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{json, Map, Value};

use crate::auth::jwks::{KeySet, PublicKey};
use crate::auth::jwt::{self, AudiencePolicy, Policy, TypPolicy};
use crate::auth::{Authenticator, Principal, StaticKeys};
use crate::core::headers;
use crate::core::template::UriTemplate;
use crate::core::version::Version;
use crate::core::{
    BatchItem, Core, Decision, EventId, Facts, HandlerOutput, Post, Reply, SessionFact,
    SessionView, Step, Target,
};
use crate::json::{self, JsonError, Limits};
use crate::log::{LogRecord, LogSink};
use crate::sources::{Clock, RandomError, RandomSource};
use crate::{
    Body, CallToolResult, InputRequired, LogLevel, Prompt, RequestContext, Resource,
    ResourceTemplate, Schema, Server, ServerBuilder, Tool, ToolError,
};

/// Issuer of every fuzz token.
pub const ISSUER: &str = "https://issuer.test";
/// The resource (and audience) of the fuzz servers.
pub const RESOURCE: &str = "http://localhost:3000/mcp";
/// The fixed "now" of every target, Unix seconds.
pub const NOW: u64 = 1_800_000_000;
/// The kid of the fixed signing key.
pub const KID: &str = "test-key-1";
/// In an HTTP input, replaced by a genuine token for [`RESOURCE`] (sub `fuzz`).
pub const TOKEN_MARK: &[u8] = b"$TOKEN";
/// In an HTTP input, replaced by the id of a live session of the `$TOKEN` principal.
pub const SESSION_MARK: &[u8] = b"$SESSION";

fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[7u8; 32].into()).expect("a valid scalar"))
}

fn jwk(key: &SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
        "y": URL_SAFE_NO_PAD.encode(point.y().expect("y"))})
}

/// The JWKS of the fixed key, plus a second public key (`test-key-2`) whose secret nobody uses.
pub fn jwks_document() -> Vec<u8> {
    let other = SigningKey::from_bytes(&[9u8; 32].into()).expect("a valid scalar");
    serde_json::to_vec(&json!({"keys": [jwk(signing_key(), KID), jwk(&other, "test-key-2")]}))
        .expect("serializes")
}

/// The JWKS of the fixed key alone.
pub fn single_key_jwks() -> Vec<u8> {
    serde_json::to_vec(&json!({"keys": [jwk(signing_key(), KID)]})).expect("serializes")
}

fn key_sets() -> &'static [KeySet; 2] {
    static SETS: OnceLock<[KeySet; 2]> = OnceLock::new();
    SETS.get_or_init(|| {
        [
            KeySet::parse(&single_key_jwks()).expect("valid").0,
            KeySet::parse(&jwks_document()).expect("valid").0,
        ]
    })
}

/// Signs `header` and `payload` bytes with the fixed key into a compact token.
pub fn sign(header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(payload));
    let sig: Signature = signing_key().sign(token.as_bytes());
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    token
}

/// A genuine token for [`RESOURCE`], valid at [`NOW`], for subject `sub`.
pub fn genuine_token(sub: &str) -> String {
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": KID});
    let claims = json!({"iss": ISSUER, "aud": RESOURCE, "sub": sub, "email": "fuzz@example.com",
        "iat": NOW, "exp": NOW + 3600, "scope": "openid email", "hardware_verified": true});
    sign(
        &serde_json::to_vec(&header).expect("serializes"),
        &serde_json::to_vec(&claims).expect("serializes"),
    )
}

// ---------------------------------------------------------------------------------------------
// (a) JWT parse and verify

/// JWT parse-and-verify against a fixed key set.
///
/// Selector bits: 0 = mode (0: the rest is a compact token; 1: the rest is `header \xff
/// payload`, signed here with the fixed key, so the fuzzer reaches the claim checks); 1 = key set
/// (one key, or two); 2 = `typ` policy; 3 = audience policy; 4 = in mode 1, flip one byte of
/// the signed token (position and mask from the next two bytes) before verifying.
///
/// Invariants: a token verifies only if its `header.payload` was signed by the fixed key (the
/// signature equals the deterministic one up to the sign of `s`); a verified principal agrees with
/// an independent reading of the claims; any change to a signed token makes it fail.
pub fn jwt(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let keys = &key_sets()[usize::from(sel >> 1 & 1)];
    let mut policy = Policy::new(
        ISSUER,
        if sel & 8 == 0 {
            AudiencePolicy::OneOf(vec![RESOURCE.into()])
        } else {
            AudiencePolicy::DangerouslySkip
        },
    );
    if sel & 4 != 0 {
        policy.typ = TypPolicy::RequireAtJwt;
    }
    if sel & 1 == 0 {
        let Ok(token) = std::str::from_utf8(rest) else {
            return;
        };
        if let Ok(p) = jwt::verify(token, keys, &policy, NOW) {
            assert_genuinely_signed(token);
            check_principal(token, &p, &policy);
        }
        return;
    }
    let (mutation, rest) = if sel & 16 != 0 && rest.len() >= 2 {
        (Some((rest[0], rest[1])), &rest[2..])
    } else {
        (None, rest)
    };
    let (header, payload) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let token = sign(header, payload);
    let result = jwt::verify(&token, keys, &policy, NOW);
    if let Ok(p) = &result {
        check_principal(&token, p, &policy);
    }
    if let Some((pos, mask)) = mutation {
        let mut bytes = token.clone().into_bytes();
        let i = usize::from(pos) * bytes.len() / 256;
        bytes[i] ^= mask;
        if let Ok(changed) = String::from_utf8(bytes) {
            if changed != token {
                assert!(
                    jwt::verify(&changed, keys, &policy, NOW).is_err(),
                    "a changed token still verifies: {changed:?}"
                );
            }
        }
    }
}

fn assert_genuinely_signed(token: &str) {
    let (signing_input, sig_b64) = token.rsplit_once('.').expect("a verified token has dots");
    let sig = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .expect("verified: canonical");
    let sig = Signature::from_slice(&sig).expect("verified: a signature");
    let ours: Signature = signing_key().sign(signing_input.as_bytes());
    let low = |s: Signature| s.normalize_s().unwrap_or(s);
    assert_eq!(
        low(sig),
        low(ours),
        "verified a token the fixed key did not sign: {token:?}"
    );
}

/// An independent reading of the claims of a token that verified.
fn check_principal(token: &str, p: &Principal, policy: &Policy) {
    let mut parts = token.split('.');
    let header = parts.next().expect("three segments");
    let payload = parts.next().expect("three segments");
    let read = |seg: &str| -> Map<String, Value> {
        let bytes = URL_SAFE_NO_PAD.decode(seg).expect("verified: base64url");
        serde_json::from_slice(&bytes).expect("verified: a JSON object")
    };
    let header = read(header);
    assert_eq!(header.get("alg"), Some(&json!("ES256")), "{token:?}");
    assert!(!header.contains_key("crit"), "{token:?}");
    let claims = read(payload);
    assert_eq!(
        claims, p.claims,
        "claims differ from serde_json's: {token:?}"
    );
    assert_eq!(claims.get("iss"), Some(&json!(policy.issuer)));
    assert_eq!(p.issuer, policy.issuer);
    let exp = claims.get("exp").and_then(Value::as_f64).expect("exp");
    assert!((NOW as f64) < exp + policy.leeway_secs as f64, "{token:?}");
    assert_eq!(p.expires_at, exp);
    if let AudiencePolicy::OneOf(accepted) = &policy.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => accepted.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .any(|a| a.as_str().is_some_and(|a| accepted.iter().any(|x| x == a))),
            _ => false,
        };
        assert!(ok, "audience not accepted: {token:?}");
    }
    assert_eq!(
        p.subject.as_deref(),
        claims.get("sub").and_then(Value::as_str)
    );
    if policy.typ == TypPolicy::RequireAtJwt {
        let typ = header.get("typ").and_then(Value::as_str).unwrap_or("");
        assert!(
            typ.eq_ignore_ascii_case("at+jwt") || typ.eq_ignore_ascii_case("application/at+jwt"),
            "{token:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (b) JWKS parsing

/// `KeySet::parse` on arbitrary bytes.
///
/// Invariants: every entry of `keys` is either kept or reported skipped, once; the kept keys are
/// the other entries, in order, each with its entry's `kid`; kept kids are unique; lookups find
/// the first key with a kid; the kept keys (EC, RSA or OKP), written back as a JWKS with their
/// `alg`, parse to the same keys (same material, same fingerprint); a document serde_json refuses
/// is refused.
pub fn jwks(data: &[u8]) {
    let parsed = KeySet::parse(data);
    let plain = serde_json::from_slice::<Value>(data);
    let Ok((set, skipped)) = parsed else {
        return;
    };
    let doc = plain.expect("a JWKS the parser kept is JSON");
    let entries = doc["keys"].as_array().expect("kept: a keys array");
    assert!(!set.is_empty());
    assert_eq!(
        set.len() + skipped.len(),
        entries.len(),
        "every entry kept or skipped"
    );
    let mut seen = vec![false; entries.len()];
    for s in &skipped {
        assert!(s.index < entries.len() && !seen[s.index]);
        seen[s.index] = true;
    }
    let kept: Vec<&Value> = entries
        .iter()
        .zip(&seen)
        .filter(|(_, skipped)| !**skipped)
        .map(|(entry, _)| entry)
        .collect();
    assert_eq!(kept.len(), set.len());
    for (i, (k, entry)) in set.keys().iter().zip(&kept).enumerate() {
        assert_eq!(
            k.kid.as_deref(),
            entry.get("kid").and_then(Value::as_str),
            "a kept key has its entry's kid"
        );
        if let Some(kid) = &k.kid {
            assert!(
                set.keys()[..i].iter().all(|o| o.kid.as_ref() != Some(kid)),
                "duplicate kid kept"
            );
            match set.find(Some(kid)) {
                crate::auth::jwks::KeyLookup::Found(found) => assert!(std::ptr::eq(found, k)),
                other => panic!("kept kid {kid:?} not found: {other:?}"),
            }
        }
    }
    let written: Vec<Value> = set
        .keys()
        .iter()
        .zip(&kept)
        .map(|(k, entry)| {
            let mut m = match k.key() {
                PublicKey::P256 { key, .. } => {
                    let point = key.to_encoded_point(false);
                    json!({"kty": "EC", "crv": "P-256",
                        "x": URL_SAFE_NO_PAD.encode(point.x().expect("x")),
                        "y": URL_SAFE_NO_PAD.encode(point.y().expect("y"))})
                }
                PublicKey::Rsa { n, e } => json!({"kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e)}),
                PublicKey::Ed25519(x) => json!({"kty": "OKP", "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(x)}),
            };
            if let Some(kid) = &k.kid {
                m["kid"] = json!(kid);
            }
            if let Some(alg) = entry.get("alg") {
                m["alg"] = alg.clone();
            }
            m
        })
        .collect();
    let again = serde_json::to_vec(&json!({ "keys": written })).expect("serializes");
    let (set2, skipped2) = KeySet::parse(&again).expect("kept keys parse again");
    assert!(skipped2.is_empty(), "{skipped2:?}");
    assert_eq!(set2.len(), set.len());
    for (a, b) in set.keys().iter().zip(set2.keys()) {
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.key().clone_material(), b.key().clone_material());
        assert_eq!(a.fingerprint(), b.fingerprint(), "same material and alg");
    }
}

// ---------------------------------------------------------------------------------------------
// (c) JSON-RPC parse and the core's decision

fn core() -> &'static Core {
    static CORE: OnceLock<Server> = OnceLock::new();
    &CORE
        .get_or_init(|| {
            catalog(ServerBuilder::new("fuzz", "1.0.0", RESOURCE))
                .dangerously_disable_auth()
                .state_key([5u8; 32])
                .random_source(Arc::new(Counter::default()))
                .log_sink(Arc::new(Discard))
                .build()
                .expect("the fuzz catalog builds")
        })
        .shared
        .core
}

fn principal(scopes: bool) -> Principal {
    Principal {
        issuer: ISSUER.into(),
        subject: Some("fuzz".into()),
        scopes: if scopes {
            vec!["openid".into(), "admin".into()]
        } else {
            Vec::new()
        },
        expires_at: (NOW + 3600) as f64,
        claims: Map::new(),
    }
}

/// Splits `name: value` lines (up to a blank line) into headers; the rest is the body.
fn split_headers(data: &[u8]) -> (HeaderMap, &[u8]) {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (&b""[..], data),
    };
    let mut map = HeaderMap::new();
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = &line[colon + 1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            map.append(n, v);
        }
    }
    (map, body)
}

/// The strict JSON parse against serde_json, then the core's decision on the message.
///
/// Input: a selector byte, then `name: value` header lines, a blank line, and the body.
/// Selector bits: 0-1 = what the session lookup finds (absent, unknown, live, unavailable);
/// 2-3 = the live session's revision; 4 = a log level is set; 5 = the principal has scopes;
/// 6-7 = what a handler returns (tool text, input_required, a failure, a panic).
///
/// Invariants: the strict parse accepts exactly what serde_json accepts without a duplicate
/// member, building the same value; within limits it accepts a subset; every reply is a
/// JSON-RPC 2.0 response (or batch of them), 202 only without a body.
pub fn core_decision(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (headers, body) = split_headers(rest);
    json_against_serde(body, sel);

    let core = core();
    let principal = principal(sel & 32 != 0);
    let facts = Facts {
        principal: &principal,
        now: NOW,
    };
    let post = Post {
        headers: &headers,
        body,
        limits: Limits {
            max_bytes: 1 << 20,
            max_batch: 16,
        },
    };
    let (step, _rpc) = core.post(post, facts);
    let decision = match step {
        Step::Decided(d) => d,
        Step::NeedSession(_, pending) => {
            let version = [
                Version::V2025_03_26,
                Version::V2025_06_18,
                Version::V2025_11_25,
                Version::V2025_03_26,
            ][usize::from(sel >> 2 & 3)];
            let fact = match sel & 3 {
                0 => SessionFact::Absent,
                1 => SessionFact::Unknown,
                2 => SessionFact::Live(SessionView {
                    version,
                    client_capabilities: Arc::new(
                        json!({"sampling": {}, "elicitation": {}, "roots": {}}),
                    ),
                    log_level: (sel & 16 != 0).then_some(LogLevel::Debug),
                }),
                _ => SessionFact::Unavailable,
            };
            core.with_session(pending, fact, facts)
        }
    };
    check_decision(core, decision, sel, facts);
}

fn json_against_serde(body: &[u8], sel: u8) {
    let unlimited = Limits {
        max_bytes: usize::MAX,
        max_batch: usize::MAX,
    };
    let strict = json::parse(body, unlimited);
    let plain = serde_json::from_slice::<Value>(body);
    match (&strict, &plain) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "strict and serde_json values differ"),
        (Ok(_), Err(e)) => panic!("strict accepted what serde_json refuses: {e}"),
        (Err(JsonError::Syntax(_)), Ok(_)) => panic!("strict syntax error on valid JSON"),
        (Err(JsonError::DuplicateMember(_)), _) | (Err(_), Err(_)) => {}
        (Err(e), Ok(_)) => panic!("unlimited parse refused: {e}"),
    }
    let tight = Limits {
        max_bytes: usize::from(sel) * 64,
        max_batch: usize::from(sel & 7),
    };
    let tight_value = json::parse(body, tight);
    match &tight_value {
        Ok(v) => assert_eq!(Some(v), strict.as_ref().ok(), "a limit changed the value"),
        Err(JsonError::BatchTooLong(n)) => assert_eq!(*n, tight.max_batch),
        Err(JsonError::TooLarge(n)) => assert_eq!(*n, tight.max_bytes),
        Err(_) => assert!(strict.is_err(), "limits changed the verdict"),
    }
    // The request path's parse reads the same value (or refuses it the same way), envelope apart.
    for (limits, value) in [(unlimited, strict), (tight, tight_value)] {
        assert_eq!(
            json::parse_body(body, limits),
            value.map(json::Body::of),
            "parse_body and parse disagree"
        );
    }
}

fn check_reply(r: &Reply) {
    if r.status == StatusCode::ACCEPTED {
        assert!(r.body.is_empty(), "202 with a body");
        return;
    }
    if r.body.is_empty() {
        return;
    }
    let v: Value = serde_json::from_slice(&r.body).expect("a reply body is JSON");
    match &v {
        Value::Array(items) => items.iter().for_each(check_response),
        one => check_response(one),
    }
}

fn check_response(v: &Value) {
    let m = v.as_object().expect("a response is an object");
    assert_eq!(m.get("jsonrpc"), Some(&json!("2.0")), "{v}");
    assert!(
        m.contains_key("result") != m.contains_key("error"),
        "exactly one of result and error: {v}"
    );
    assert!(m.contains_key("id"), "{v}");
}

fn handler_output(run: &crate::core::Run, sel: u8) -> HandlerOutput {
    if sel >> 6 == 3 {
        return HandlerOutput::Panicked;
    }
    match run.target {
        Target::Tool(_) => HandlerOutput::Tool(match sel >> 6 {
            0 => Ok(CallToolResult::text("fuzz")),
            1 => Err(ToolError::InputRequired(
                InputRequired::new()
                    .elicit("name", "Your name?", json!({"type": "object"}))
                    .state("round-1"),
            )),
            _ => Err(ToolError::MissingCapability(json!({"sampling": {}}))),
        }),
        Target::Prompt(_) => {
            HandlerOutput::Prompt(Ok(vec![crate::prompt::user(crate::content::text("hello"))]))
        }
        Target::Resource(_) | Target::Template(..) => {
            HandlerOutput::Read(Ok(vec![crate::resource::text_contents(
                "test://fuzz",
                "text/plain",
                "x",
            )]))
        }
    }
}

fn check_decision(core: &Core, decision: Decision, sel: u8, facts: Facts<'_>) {
    match decision {
        Decision::Reply(r) | Decision::Update(_, r) => check_reply(&r),
        Decision::Initialize { reply, .. } => check_reply(&reply),
        Decision::Run(run) => check_reply(&core.finish(&run, handler_output(&run, sel), facts)),
        Decision::Listen(l) => {
            serde_json::from_slice::<Value>(&l.ack).expect("the listen ack is JSON");
        }
        Decision::Batch(items) => {
            for item in items {
                match item {
                    BatchItem::Reply(b) | BatchItem::Update(_, b) => {
                        check_response(&serde_json::from_slice(&b).expect("batch element JSON"))
                    }
                    BatchItem::Run(run) => {
                        check_reply(&core.finish(&run, handler_output(&run, sel), facts))
                    }
                    BatchItem::Cancel(_) | BatchItem::Answer(..) => {}
                }
            }
        }
        // Refusals carry no bytes of their own here; a tasks/* call needs the store (the http
        // target reaches it through the whole service).
        Decision::Cancel(_)
        | Decision::Answer(..)
        | Decision::InsufficientScope { .. }
        | Decision::StepUp { .. }
        | Decision::Task(_) => {}
    }
}

// ---------------------------------------------------------------------------------------------
// (d) Mcp-* header rules and =?base64?...?=

/// The `Mcp-*` header rules and the `=?base64?...?=` decoding.
///
/// Input: a method line, `name: value` header lines, a blank line, then JSON: `params` (an
/// object) and, if it has one, `params._schema` as a tool's input schema.
///
/// Invariants: base64 values round-trip; an accepted header is present once and equals the
/// body value after trimming and decoding; accepted `x-mcp-header` annotations are unique tokens.
pub fn headers(data: &[u8]) {
    let (method, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let method = String::from_utf8_lossy(method);
    let (map, body) = split_headers(rest);

    // Raw decoding, and the sentinel round trip for any text.
    let text = String::from_utf8_lossy(body);
    let wrapped = format!("=?base64?{}?=", STANDARD.encode(text.as_bytes()));
    assert_eq!(
        headers::decode_value("x", &wrapped).expect("own encoding decodes"),
        text
    );
    match headers::decode_value("x", &text) {
        Ok(v) => {
            if let Some(inner) = text
                .strip_prefix("=?base64?")
                .and_then(|r| r.strip_suffix("?="))
            {
                assert_eq!(STANDARD.decode(inner).ok().as_deref(), Some(v.as_bytes()));
            } else {
                assert_eq!(v, text);
            }
        }
        Err(_) => assert!(text.starts_with("=?base64?") && text.ends_with("?=")),
    }

    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let params = value.as_object().cloned().unwrap_or_default();

    let read = |name: &HeaderName| -> Option<String> {
        let mut all = map.get_all(name).iter();
        let v = all.next()?;
        assert!(all.next().is_none(), "an accepted header appears once");
        let t = v.to_str().expect("accepted: visible ASCII");
        let t = t.trim_matches([' ', '\t']);
        Some(
            headers::decode_value(name.as_str(), t)
                .expect("accepted: decodes")
                .into_owned(),
        )
    };
    let claimed = params
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or("2026-07-28");
    if headers::check_version_header(&map, claimed).is_ok() {
        let mut all = map.get_all(headers::PROTOCOL_VERSION).iter();
        let v = all.next().expect("accepted: present");
        assert!(all.next().is_none());
        assert_eq!(
            v.to_str().ok().map(|t| t.trim_matches([' ', '\t'])),
            Some(claimed)
        );
    }
    if headers::check_method_headers(&map, &method, &params).is_ok() {
        assert_eq!(read(&headers::METHOD).as_deref(), Some(&*method));
        if let Some(field) = headers::name_field(&method) {
            if let Some(expected) = params.get(field).and_then(Value::as_str) {
                assert_eq!(read(&headers::NAME).as_deref(), Some(expected));
            }
        }
    }
    if let Some(schema) = params.get("_schema") {
        if let Ok(ph) = headers::param_headers(schema) {
            for (i, p) in ph.iter().enumerate() {
                assert!(ph[..i]
                    .iter()
                    .all(|o| !o.name.eq_ignore_ascii_case(&p.name)));
                assert_eq!(
                    p.header.as_str(),
                    format!("mcp-param-{}", p.name.to_ascii_lowercase())
                );
            }
            let args = params
                .get("arguments")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if headers::check_param_headers(&map, &ph, &args).is_ok() {
                for p in &ph {
                    match args.get(&p.argument) {
                        None | Some(Value::Null) => assert!(map.get(&p.header).is_none()),
                        Some(_) => assert!(read(&p.header).is_some()),
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (e) URI templates

/// URI template parse and match. Input: `template \n uri`.
///
/// Invariants: an accepted template has no brace in its literals; a match binds exactly the
/// template's variables; a URI built from the template with percent-encoded values matches
/// back to those values.
pub fn template(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (source, uri) = text.split_once('\n').unwrap_or((&text, ""));
    let Ok(t) = UriTemplate::parse(source) else {
        return;
    };
    assert_eq!(t.source(), source);
    // Literals and variable names, re-read independently.
    let mut literals = Vec::new();
    let mut names = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find('{') {
        literals.push(&rest[..open]);
        let close = rest[open..].find('}').expect("accepted: closed") + open;
        names.push(&rest[open + 1..close]);
        rest = &rest[close + 1..];
    }
    literals.push(rest);
    for l in &literals {
        assert!(
            !l.contains('{') && !l.contains('}'),
            "accepted a brace in a literal: {source:?}"
        );
    }
    if let Some(vars) = t.matches(uri) {
        let mut bound: Vec<&str> = vars.keys().map(String::as_str).collect();
        let mut wanted = names.clone();
        bound.sort_unstable();
        wanted.sort_unstable();
        wanted.dedup();
        assert_eq!(bound, wanted, "{source:?} {uri:?}");
    }
    // Build a URI: every value byte as %XX (uppercase), values taken from the uri line.
    let safe = literals.iter().all(|l| {
        !l.bytes()
            .any(|b| b == b'%' || b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    });
    if !safe || names.is_empty() {
        return;
    }
    let mut pieces = uri.split(',');
    let mut values = Map::new();
    let mut built = String::new();
    for (i, name) in names.iter().enumerate() {
        built.push_str(literals[i]);
        let value = match values.get(*name) {
            Some(Value::String(v)) => v.clone(),
            _ => {
                let v = pieces
                    .next()
                    .filter(|p| !p.is_empty())
                    .unwrap_or("v")
                    .to_owned();
                values.insert((*name).to_owned(), json!(v));
                v
            }
        };
        for b in value.bytes() {
            built.push_str(&format!("%{b:02X}"));
        }
    }
    built.push_str(literals[names.len()]);
    // A variable repeated with one value encodes the same way each time, so it matches back.
    assert_eq!(
        t.matches(&built).as_ref(),
        Some(&values),
        "{source:?} built {built:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (f) Last-Event-ID

/// `Last-Event-ID` parsing. Invariants: a parsed id prints back to a string that parses to the
/// same id; ids built from any two integers round-trip; the header path agrees with the parser.
pub fn event_id(data: &[u8]) {
    if data.len() >= 16 {
        let stream = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let seq = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
        let id = EventId { stream, seq };
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
    }
    let text = String::from_utf8_lossy(data);
    let parsed = EventId::parse(&text);
    if let Some(id) = parsed {
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
        let (a, b) = text.trim().split_once('-').expect("parsed: a dash");
        assert_eq!(a.parse::<u64>().ok(), Some(id.stream));
        assert_eq!(b.parse::<u64>().ok(), Some(id.seq));
    }
    if let Ok(v) = HeaderValue::from_bytes(data) {
        let mut map = HeaderMap::new();
        map.insert(headers::LAST_EVENT_ID, v.clone());
        let from_header = core().last_event_id(&map);
        match v.to_str() {
            Ok(s) => assert_eq!(from_header.ok().flatten(), EventId::parse(s)),
            Err(_) => assert!(from_header.is_err()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (h) whole HTTP requests

/// A clock stopped at [`NOW`].
#[derive(Debug)]
struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(NOW)
    }
}

/// A deterministic byte stream (SplitMix64): reproducible session and stream ids.
#[derive(Debug, Default)]
struct Counter(AtomicU64);

impl RandomSource for Counter {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        for chunk in dest.chunks_mut(8) {
            let mut z = self
                .0
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
                .wrapping_add(0x9e37_79b9_7f4a_7c15);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}

/// Drops every log line (formatting still runs).
#[derive(Debug)]
struct Discard;

impl LogSink for Discard {
    fn write(&self, _record: LogRecord) {}
}

/// The small fixed catalog every fuzz server offers: tools (plain, typed with an `x-mcp-header`
/// argument, scoped, streaming, multi-round), a prompt with a completer, a resource, a template.
fn catalog(b: ServerBuilder) -> ServerBuilder {
    #[derive(serde::Deserialize)]
    struct Args {
        region: String,
        count: Option<i64>,
    }
    let template = ResourceTemplate::new(
        "test://template/{id}/data",
        "template",
        |_ctx, uri, vars| async move {
            Ok(vec![crate::resource::text_contents(
                &uri,
                "application/json",
                Value::Object(vars).to_string(),
            )])
        },
    )
    .expect("a valid template")
    .completer(|_, partial| vec![format!("{partial}1"), format!("{partial}2")]);
    b.tool(Tool::new(
        "whoami",
        "Who is calling",
        |ctx: RequestContext| async move {
            Ok(CallToolResult::structured(
                json!({"sub": ctx.principal().subject}),
            ))
        },
    ))
    .tool(
        Tool::new(
            "regional",
            "Typed arguments",
            |_ctx: RequestContext, a: Args| async move {
                Ok(CallToolResult::text(format!("{} {:?}", a.region, a.count)))
            },
        )
        .input(
            Schema::object()
                .required("region", Schema::string().header("Region").max_length(16))
                .property("count", Schema::integer().minimum(0.0).maximum(10.0)),
        )
        .output(Schema::object()),
    )
    .tool(
        Tool::new("admin", "Needs a scope", |_ctx: RequestContext| async {
            Ok(CallToolResult::error("denied anyway"))
        })
        .required_scopes(["admin"]),
    )
    .tool(Tool::new(
        "chatty",
        "Streams progress and logs",
        |ctx: RequestContext| async move {
            ctx.progress(1.0, Some(2.0), Some("half")).await;
            ctx.log(LogLevel::Info, Some("fuzz"), json!("working"))
                .await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(CallToolResult::text("done"))
        },
    ))
    .tool(Tool::new(
        "ask",
        "Multi-round",
        |ctx: RequestContext| async move {
            match ctx.input_responses() {
                Some(answers) => Ok(CallToolResult::text(
                    Value::Object(answers.clone()).to_string(),
                )),
                None => Err(InputRequired::new()
                    .elicit("name", "Your name?", json!({"type": "object"}))
                    .state("round-1")
                    .into()),
            }
        },
    ))
    .tool(Tool::new(
        "closer",
        "Ends its SSE stream early",
        |ctx: RequestContext| async move {
            ctx.progress(1.0, None, None).await;
            ctx.close_sse_stream();
            Ok(CallToolResult::text("closed"))
        },
    ))
    .prompt(
        Prompt::new("greet", |_ctx, args: Map<String, Value>| async move {
            Ok(vec![crate::prompt::user(crate::content::text(
                Value::Object(args).to_string(),
            ))])
        })
        .argument("name", Some("who"), true)
        .argument("tone", None, false)
        .completer(|_, partial| vec![format!("{partial}x")]),
    )
    .resource(
        Resource::new("test://static", "static", |_ctx, uri| async move {
            Ok(vec![crate::resource::text_contents(
                &uri,
                "text/plain",
                "hello",
            )])
        })
        .subscribable(),
    )
    .resource_template(template)
    .logging()
}

/// The fuzz server, with or without auth (a fresh one per input, so inputs never share state).
fn http_server(auth: bool) -> Server {
    let b = catalog(ServerBuilder::new("fuzz", "1.0.0", RESOURCE))
        .state_key([5u8; 32])
        .clock(Arc::new(Fixed))
        .random_source(Arc::new(Counter::default()))
        .log_sink(Arc::new(Discard))
        .max_batch(16)
        .max_inflight_bytes(4 << 20)
        .max_body_bytes(64 << 10);
    let b = if auth {
        let keys = Arc::new(StaticKeys(Arc::new(key_sets()[1].clone())));
        let policy = Policy::new(ISSUER, AudiencePolicy::OneOf(vec![RESOURCE.into()]));
        b.authenticator(Authenticator::new(policy, keys, vec![]))
    } else {
        b.dangerously_disable_auth()
    };
    b.build().expect("the fuzz server builds")
}

fn token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| genuine_token("fuzz"))
}

fn replace(data: &[u8], mark: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(mark) {
            out.extend_from_slice(with);
            i += mark.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Virtual time one input may take (tokio's clock is paused, so this costs no real time).
const INPUT_TIME: Duration = Duration::from_secs(60);

/// Whole HTTP/1.1 requests (pipelined, raw bytes) through an in-memory connection to a fresh
/// server; `$TOKEN` becomes a genuine token and `$SESSION` the id of a live session.
///
/// Invariants: every exchange ends within [`INPUT_TIME`] of virtual time; no 5xx but 503; every
/// JSON response body parses; with `auth`, no 2xx from the MCP endpoint (OPTIONS aside) without
/// the genuine token.
pub fn http(data: &[u8], auth: bool) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    rt.block_on(http_exchange(data, auth));
}

async fn http_exchange(data: &[u8], auth: bool) {
    use hyper::service::Service as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let server = http_server(auth);
    let service = server.service();
    let token = token();
    let session = if data.windows(SESSION_MARK.len()).any(|w| w == SESSION_MARK) {
        let init = Request::post("/mcp")
            .header("host", "localhost:3000")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(http_body_util::Full::new(Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"sampling":{},"elicitation":{},"roots":{}},"clientInfo":{"name":"fuzz","version":"0"}}}"#,
            )))
            .expect("a request");
        let resp = service.call(init).await.expect("infallible");
        resp.headers()
            .get("mcp-session-id")
            .map(|v| v.as_bytes().to_vec())
            .expect("the setup initialize opens a session")
    } else {
        Vec::new()
    };
    let input = replace(data, TOKEN_MARK, token.as_bytes());
    let input = replace(&input, SESSION_MARK, &session);

    let (mut client, conn) = tokio::io::duplex(64 << 10);
    let checked = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let service = service.clone();
        async move {
            let endpoint = matches!(req.uri().path(), "/mcp" | "/mcp/")
                && req.method() != http::Method::OPTIONS;
            let genuine = req
                .headers()
                .get_all(http::header::AUTHORIZATION)
                .iter()
                .any(|v| {
                    v.as_bytes()
                        .windows(token.len())
                        .any(|w| w == token.as_bytes())
                });
            let resp = service.call(req).await.expect("infallible");
            check_http(resp, auth && endpoint && !genuine).await
        }
    });
    let serve = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(hyper_util::rt::TokioIo::new(conn), checked);
    let exchange = async {
        let write = async {
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        };
        tokio::join!(serve, write).0
    };
    // An open SSE stream runs until the server shuts it; the timeout is virtual time.
    let _ = tokio::time::timeout(INPUT_TIME, exchange).await;
    server.shutdown();
}

async fn check_http(
    resp: Response<Body>,
    unauthenticated_endpoint: bool,
) -> Result<Response<Body>, std::convert::Infallible> {
    let status = resp.status();
    assert!(
        !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
        "server error {status}"
    );
    if unauthenticated_endpoint {
        assert!(!status.is_success(), "{status} without the genuine token");
    }
    let is_json = resp
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("a full body").to_bytes();
    if !bytes.is_empty() {
        serde_json::from_slice::<Value>(&bytes).expect("a JSON response body parses");
    }
    Ok(Response::from_parts(parts, Body::full(bytes)))
}
