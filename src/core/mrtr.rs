//! Multi-round-trip results (2026-07-28): `input_required` answers and the HMAC that seals `requestState`; pure.
//!
//! `requestState` goes to the client and comes back on the retry, so it is attacker-controlled.
//! The server seals it: `base64url(json{p: payload, e: expiry}) "." base64url(HMAC-SHA256(key,
//! principal | method | params digest | body))`, binding the state to who asked, for which
//! method and params, and until when. Time and the key are passed in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::{digest, hmac};
use serde_json::{json, Map, Value};

/// How long sealed state stays valid. Defaults to 10 min.
pub(crate) const DEFAULT_STATE_TTL_SECS: u64 = 600;

/// A handler's request for more input from the client before it can complete.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputRequired {
    /// Named requests (`elicitation/create`, `sampling/createMessage`, `roots/list`).
    pub input_requests: Map<String, Value>,
    /// Opaque handler state, sealed by the server before it leaves.
    pub request_state: Option<String>,
}

impl InputRequired {
    /// No requests yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a named request for the client (`method` and its `params`).
    pub fn request(mut self, key: impl Into<String>, method: &str, params: Value) -> Self {
        self.input_requests
            .insert(key.into(), json!({"method": method, "params": params}));
        self
    }

    /// Asks the client to elicit `message` with `requested_schema`.
    pub fn elicit(self, key: impl Into<String>, message: &str, requested_schema: Value) -> Self {
        self.request(
            key,
            "elicitation/create",
            json!({"message": message, "requestedSchema": requested_schema}),
        )
    }

    /// Asks the client's model (`sampling/createMessage`).
    pub fn sample(self, key: impl Into<String>, params: Value) -> Self {
        self.request(key, "sampling/createMessage", params)
    }

    /// Asks for the client's roots.
    pub fn list_roots(self, key: impl Into<String>) -> Self {
        self.request(key, "roots/list", json!({}))
    }

    /// Carries handler state to the next round. The server seals it against tampering, but it is
    /// signed, not encrypted: the client can read it, so it must hold no secrets.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.request_state = Some(state.into());
        self
    }

    /// The capabilities these requests need that `client_capabilities` lacks, as a
    /// ClientCapabilities object (empty when the client can answer them all).
    pub(crate) fn missing_capabilities(&self, client_capabilities: &Value) -> Map<String, Value> {
        let mut missing = Map::new();
        for req in self.input_requests.values() {
            let method = req.get("method").and_then(Value::as_str).unwrap_or("");
            let params = req.get("params").unwrap_or(&Value::Null);
            if let Some((cap, needed)) = missing_capability(client_capabilities, method, params) {
                merge(&mut missing, cap, needed);
            }
        }
        missing
    }
}

fn merge(into: &mut Map<String, Value>, cap: &str, needed: Value) {
    match (into.get_mut(cap), needed) {
        (Some(Value::Object(have)), Value::Object(more)) => have.extend(more),
        (_, needed) => {
            into.insert(cap.into(), needed);
        }
    }
}

/// Whether a client with `client_capabilities` can answer `method` with `params`; if not, the
/// capability it would need (`("elicitation", {"form":{}})`, `("sampling", {})`, ...).
///
/// Elicitation has modes: an empty `elicitation` object means form mode only, and a client that
/// lists modes supports just those (spec 2025-11-25 client/elicitation). A request without
/// `mode` is a form request.
pub(crate) fn missing_capability(
    client_capabilities: &Value,
    method: &str,
    params: &Value,
) -> Option<(&'static str, Value)> {
    let has = |cap: &str| client_capabilities.get(cap);
    match method {
        "elicitation/create" => {
            let mode = params.get("mode").and_then(Value::as_str).unwrap_or("form");
            let supported = match has("elicitation") {
                None => false,
                Some(Value::Object(modes)) if modes.is_empty() => mode == "form",
                Some(Value::Object(modes)) => modes.contains_key(mode),
                Some(_) => false,
            };
            // `{}` already means form mode; name the mode only when that is not what is missing.
            let needed = if mode == "form" && has("elicitation").is_none() {
                json!({})
            } else {
                json!({ mode: {} })
            };
            (!supported).then_some(("elicitation", needed))
        }
        "sampling/createMessage" => has("sampling").is_none().then(|| ("sampling", json!({}))),
        "roots/list" => has("roots").is_none().then(|| ("roots", json!({}))),
        _ => None,
    }
}

/// Why returned state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateError {
    /// Not produced by this server (tampered, wrong principal, method or params).
    Invalid,
    /// Past its expiry.
    Expired,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Invalid => "is not valid for this request",
            Self::Expired => "has expired",
        })
    }
}

/// Seals and opens `requestState`.
pub(crate) struct StateSealer {
    key: hmac::Key,
    ttl_secs: u64,
}

impl std::fmt::Debug for StateSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSealer")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

/// The MAC'd bytes; NUL separators keep the fields from running into each other.
fn mac_input(principal: &str, method: &str, digest: &[u8; 32], body: &str) -> Vec<u8> {
    let mut msg = Vec::with_capacity(principal.len() + method.len() + body.len() + 35);
    for part in [
        principal.as_bytes(),
        b"\0",
        method.as_bytes(),
        b"\0",
        digest,
        b"\0",
        body.as_bytes(),
    ] {
        msg.extend_from_slice(part);
    }
    msg
}

/// Members of params that vary between rounds of one request, so the state is not bound to them.
const ROUND_FIELDS: [&str; 3] = ["inputResponses", "requestState", "_meta"];

/// Serializes params without the round fields, in key order (serde_json's map is sorted), so
/// the bytes are canonical without copying the params.
struct Bound<'a>(&'a Map<String, Value>);

impl serde::Serialize for Bound<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (k, v) in self.0 {
            if !ROUND_FIELDS.contains(&k.as_str()) {
                m.serialize_entry(k, v)?;
            }
        }
        m.end()
    }
}

/// The request parameters that the state is bound to: everything but the retry's own fields.
/// Computed only when a `requestState` is opened or issued.
pub(crate) fn params_digest(params: &Map<String, Value>) -> [u8; 32] {
    let bytes =
        serde_json::to_vec(&Bound(params)).expect("in-memory JSON serialization cannot fail");
    let d = digest::digest(&digest::SHA256, &bytes);
    d.as_ref().try_into().expect("sha256 is 32 bytes")
}

impl StateSealer {
    /// A sealer with a 32-byte secret.
    pub(crate) fn new(secret: &[u8; 32], ttl_secs: u64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ttl_secs,
        }
    }

    fn mac(&self, principal: &str, method: &str, digest: &[u8; 32], body: &str) -> hmac::Tag {
        hmac::sign(&self.key, &mac_input(principal, method, digest, body))
    }

    /// Seals `payload` for this principal, method and params, valid until `now + ttl`.
    pub(crate) fn seal(
        &self,
        principal: &str,
        method: &str,
        digest: &[u8; 32],
        payload: &str,
        now: u64,
    ) -> String {
        let body = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"p": payload, "e": now + self.ttl_secs}))
                .expect("serializes"),
        );
        let tag = self.mac(principal, method, digest, &body);
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Opens sealed state, returning the handler's payload.
    pub(crate) fn open(
        &self,
        principal: &str,
        method: &str,
        digest: &[u8; 32],
        sealed: &str,
        now: u64,
    ) -> Result<String, StateError> {
        let (body, tag) = sealed.split_once('.').ok_or(StateError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Invalid)?;
        // ring's verify compares in constant time.
        hmac::verify(&self.key, &mac_input(principal, method, digest, body), &tag)
            .map_err(|_| StateError::Invalid)?;
        let decoded = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StateError::Invalid)?;
        let v: Value = serde_json::from_slice(&decoded).map_err(|_| StateError::Invalid)?;
        let expiry = v
            .get("e")
            .and_then(Value::as_u64)
            .ok_or(StateError::Invalid)?;
        if now >= expiry {
            return Err(StateError::Expired);
        }
        v.get("p")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or(StateError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elicitation_modes_are_honoured() {
        let form = json!({"message": "m", "requestedSchema": {}});
        let url = json!({"mode": "url", "message": "m", "url": "https://x", "elicitationId": "1"});
        assert_eq!(
            missing_capability(&json!({"elicitation": {}}), "elicitation/create", &form),
            None
        );
        assert_eq!(
            missing_capability(
                &json!({"elicitation": {"form": {}}}),
                "elicitation/create",
                &form
            ),
            None
        );
        assert_eq!(
            missing_capability(
                &json!({"elicitation": {"url": {}}}),
                "elicitation/create",
                &form
            ),
            Some(("elicitation", json!({"form": {}})))
        );
        assert_eq!(
            missing_capability(&json!({"elicitation": {}}), "elicitation/create", &url),
            Some(("elicitation", json!({"url": {}})))
        );
        assert_eq!(
            missing_capability(&json!({}), "roots/list", &json!({})),
            Some(("roots", json!({})))
        );
        let ir = InputRequired::new()
            .elicit("a", "m", json!({}))
            .list_roots("r");
        assert_eq!(
            Value::Object(ir.missing_capabilities(&json!({"elicitation": {"url": {}}}))),
            json!({"elicitation": {"form": {}}, "roots": {}})
        );
    }

    #[test]
    fn sealed_state_round_trips_and_detects_tampering() {
        let s = StateSealer::new(&[1; 32], 60);
        let d = params_digest(&Map::new());
        let sealed = s.seal("iss|alice", "tools/call", &d, "step-2", 1000);
        assert_eq!(
            s.open("iss|alice", "tools/call", &d, &sealed, 1001)
                .unwrap(),
            "step-2"
        );
        assert_eq!(
            s.open("iss|bob", "tools/call", &d, &sealed, 1001),
            Err(StateError::Invalid)
        );
        assert_eq!(
            s.open("iss|alice", "prompts/get", &d, &sealed, 1001),
            Err(StateError::Invalid)
        );
        assert_eq!(
            s.open(
                "iss|alice",
                "tools/call",
                &d,
                &format!("{sealed}-TAMPERED"),
                1001
            ),
            Err(StateError::Invalid)
        );
        assert_eq!(
            s.open("iss|alice", "tools/call", &d, &sealed, 1060),
            Err(StateError::Expired)
        );
    }
}
