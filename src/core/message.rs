//! The JSON-RPC 2.0 envelope: ids, message shapes, error objects and codes, response bytes; pure, no MCP semantics.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::json::Envelope;

/// A JSON-RPC error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ErrorCode(pub(crate) i32);

impl ErrorCode {
    /// Invalid JSON.
    pub(crate) const PARSE_ERROR: Self = Self(-32700);
    /// Not a valid request object.
    pub(crate) const INVALID_REQUEST: Self = Self(-32600);
    /// Unknown or unavailable method.
    pub(crate) const METHOD_NOT_FOUND: Self = Self(-32601);
    /// Bad params (also: unknown tool, bad cursor, missing `_meta` at 2026-07-28).
    pub(crate) const INVALID_PARAMS: Self = Self(-32602);
    /// Server fault; details go to the log only.
    pub(crate) const INTERNAL_ERROR: Self = Self(-32603);
    /// Session not found (initialize era; the TypeScript SDK's code).
    pub(crate) const SESSION_NOT_FOUND: Self = Self(-32001);
    /// Resource not found (initialize era only).
    pub(crate) const RESOURCE_NOT_FOUND: Self = Self(-32002);
    /// 2026-07-28: a standard header disagrees with the body or is missing.
    pub(crate) const HEADER_MISMATCH: Self = Self(-32020);
    /// 2026-07-28: the request needs a client capability it did not declare.
    pub(crate) const MISSING_REQUIRED_CLIENT_CAPABILITY: Self = Self(-32021);
    /// 2026-07-28: the protocol version is not supported.
    pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: Self = Self(-32022);
}

/// A request id: a string or an integer, echoed with its JSON type. Never null.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Id {
    /// `"7"`.
    Str(String),
    /// `7`.
    Int(serde_json::Number),
}

impl Id {
    /// Reads an id; `None` for null, floats, objects and the rest.
    pub(crate) fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) => Some(Self::Str(s.clone())),
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Self::Int(n.clone())),
            _ => None,
        }
    }

    /// The id as JSON.
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Self::Str(s) => Value::String(s.clone()),
            Self::Int(n) => Value::Number(n.clone()),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Str(v) => s.serialize_str(v),
            Self::Int(n) => n.serialize(s),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => write!(f, "{s:?}"),
            Self::Int(n) => write!(f, "{n}"),
        }
    }
}

/// An error object as sent on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct ErrorObject {
    /// The code.
    #[serde(serialize_with = "code")]
    pub(crate) code: ErrorCode,
    /// A short sentence saying what was wrong.
    pub(crate) message: String,
    /// Optional structured detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

fn code<S: serde::Serializer>(c: &ErrorCode, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i32(c.0)
}

impl ErrorObject {
    /// An error with no data.
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds `data`.
    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// One incoming JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    /// Has an id and a method: must be answered.
    Request {
        /// The id to echo.
        id: Id,
        /// The method name.
        method: String,
        /// `params`, an object when present.
        params: Map<String, Value>,
    },
    /// Has a method and no id: never answered.
    Notification {
        /// The method name.
        method: String,
        /// `params`, an object when present.
        params: Map<String, Value>,
    },
    /// A client's answer to a server-to-client request.
    Response {
        /// The id of the server's request.
        id: Id,
        /// `result`, or `error` as raw JSON.
        outcome: Result<Value, Value>,
    },
}

/// Why a value is not a JSON-RPC 2.0 message; every case is -32600 with HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShapeError {
    /// Not an object.
    NotAnObject,
    /// `jsonrpc` is missing or not `"2.0"`.
    WrongVersion,
    /// `id` is null, fractional or not a string/integer.
    BadId,
    /// `method` is not a string.
    BadMethod,
    /// `params` is present and not an object.
    BadParams,
    /// Neither a request, a notification nor a response.
    Unrecognized,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAnObject => "a JSON-RPC message must be an object",
            Self::WrongVersion => "jsonrpc must be \"2.0\"",
            Self::BadId => "id must be a string or an integer, never null",
            Self::BadMethod => "method must be a string",
            Self::BadParams => "params must be an object",
            Self::Unrecognized => "not a JSON-RPC request, notification or response",
        })
    }
}

impl Message {
    /// Reads one message from a parsed JSON value, moving its parts out (nothing is copied).
    pub(crate) fn from_value(value: Value) -> Result<Self, ShapeError> {
        let Value::Object(obj) = value else {
            return Err(ShapeError::NotAnObject);
        };
        Self::from_envelope(Envelope::from_object(obj))
    }

    /// Reads one message from the JSON-RPC members of an object; the one place the shape rules live.
    pub(crate) fn from_envelope(env: Envelope) -> Result<Self, ShapeError> {
        if !env.jsonrpc_2_0 {
            return Err(ShapeError::WrongVersion);
        }
        let id = match &env.id {
            None => None,
            Some(v) => Some(Id::from_value(v).ok_or(ShapeError::BadId)?),
        };
        match env.method {
            Some(Value::String(method)) => {
                let params = match env.params {
                    None => Map::new(),
                    Some(Value::Object(p)) => p,
                    Some(_) => return Err(ShapeError::BadParams),
                };
                Ok(match id {
                    Some(id) => Self::Request { id, method, params },
                    None => Self::Notification { method, params },
                })
            }
            Some(_) => Err(ShapeError::BadMethod),
            None => {
                let id = id.ok_or(ShapeError::Unrecognized)?;
                match (env.result, env.error) {
                    (Some(r), None) => Ok(Self::Response { id, outcome: Ok(r) }),
                    (None, Some(e)) => Ok(Self::Response {
                        id,
                        outcome: Err(e),
                    }),
                    _ => Err(ShapeError::Unrecognized),
                }
            }
        }
    }
}

/// Best effort: the id of a value that failed shape checks, so the error can still echo it.
pub(crate) fn salvage_id(value: &Value) -> Option<Id> {
    value.get("id").and_then(Id::from_value)
}

fn push_json(out: &mut Vec<u8>, value: &impl Serialize) {
    serde_json::to_writer(out, value).expect("in-memory JSON serialization cannot fail");
}

/// `{"jsonrpc":"2.0","id":..,"result":<result>}`, the result written by `write` straight into the buffer.
pub(crate) fn result_with(id: &Id, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    // A small tool result (whoami's is 411 bytes) fits without growing: a reallocation and its
    // copy cost about 550 instructions, the larger first allocation nothing.
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    push_json(&mut out, id);
    out.extend_from_slice(b",\"result\":");
    write(&mut out);
    out.push(b'}');
    out
}

/// A result response for any serializable result.
pub(crate) fn result(id: &Id, result: &impl Serialize) -> Vec<u8> {
    result_with(id, |out| push_json(out, result))
}

/// `{"jsonrpc":"2.0","id":..|null,"error":{..}}`. A null id only when the id could not be read.
pub(crate) fn error(id: Option<&Id>, error: &ErrorObject) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    match id {
        Some(id) => push_json(&mut out, id),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    push_json(&mut out, error);
    out.push(b'}');
    out
}

/// `{"jsonrpc":"2.0","method":..,"params":..}`.
pub(crate) fn notification(method: &str, params: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":");
    push_json(&mut out, &method);
    out.extend_from_slice(b",\"params\":");
    push_json(&mut out, params);
    out.push(b'}');
    out
}

/// `{"jsonrpc":"2.0","id":..,"method":..,"params":..}`: a server-to-client request.
pub(crate) fn request(id: &Id, method: &str, params: &impl Serialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    push_json(&mut out, id);
    out.extend_from_slice(b",\"method\":");
    push_json(&mut out, &method);
    out.extend_from_slice(b",\"params\":");
    push_json(&mut out, params);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn keeps_id_type() {
        let m = Message::from_value(json!({"jsonrpc":"2.0","id":"7","method":"ping"})).unwrap();
        let Message::Request { id, .. } = m else {
            panic!()
        };
        assert_eq!(parsed(&result(&id, &json!({})))["id"], json!("7"));
        let m = Message::from_value(json!({"jsonrpc":"2.0","id":7,"method":"ping"})).unwrap();
        let Message::Request { id, .. } = m else {
            panic!()
        };
        assert_eq!(
            parsed(&result(&id, &json!({}))),
            json!({"jsonrpc":"2.0","id":7,"result":{}})
        );
    }

    #[test]
    fn writes_errors_and_notifications() {
        let e = ErrorObject::new(ErrorCode::INVALID_PARAMS, "x").with_data(json!({"a":1}));
        assert_eq!(
            parsed(&error(None, &e)),
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"x","data":{"a":1}}})
        );
        assert_eq!(
            parsed(&notification("n/x", &json!({"k":"v"}))),
            json!({"jsonrpc":"2.0","method":"n/x","params":{"k":"v"}})
        );
        assert_eq!(
            parsed(&request(&Id::Str("s-1".into()), "roots/list", &json!({}))),
            json!({"jsonrpc":"2.0","id":"s-1","method":"roots/list","params":{}})
        );
    }

    #[test]
    fn rejects_bad_shapes() {
        let cases = [
            (json!([1]), ShapeError::NotAnObject),
            (
                json!({"jsonrpc":"1.0","id":1,"method":"x"}),
                ShapeError::WrongVersion,
            ),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"x"}),
                ShapeError::BadId,
            ),
            (
                json!({"jsonrpc":"2.0","id":1.5,"method":"x"}),
                ShapeError::BadId,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":5}),
                ShapeError::BadMethod,
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":"x","params":[1]}),
                ShapeError::BadParams,
            ),
            (json!({"jsonrpc":"2.0","id":1}), ShapeError::Unrecognized),
        ];
        for (v, e) in cases {
            assert_eq!(Message::from_value(v.clone()), Err(e), "{v}");
        }
    }

    #[test]
    fn reads_notification_and_response() {
        let n = Message::from_value(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .unwrap();
        assert!(matches!(n, Message::Notification { .. }));
        let r = Message::from_value(json!({"jsonrpc":"2.0","id":1,"result":{}})).unwrap();
        assert!(matches!(r, Message::Response { outcome: Ok(_), .. }));
    }
}
