//! The MCP request headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`, `Mcp-Session-Id`) checked against the body; pure.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::HeaderName;
use http::HeaderMap;
use serde_json::{Map, Value};

// Header names as values, so lookups hash them without parsing a string each time.
/// `MCP-Protocol-Version`.
pub(crate) const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// `Mcp-Method`.
pub(crate) const METHOD: HeaderName = HeaderName::from_static("mcp-method");
/// `Mcp-Name`.
pub(crate) const NAME: HeaderName = HeaderName::from_static("mcp-name");
/// `Mcp-Session-Id` (initialize era).
pub(crate) const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// `Last-Event-ID` (initialize era resumption).
pub(crate) const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");
/// `Mcp-Param-` prefix for `x-mcp-header` arguments.
pub(crate) const PARAM_PREFIX: &str = "mcp-param-";

/// Why the headers do not agree with the body (-32020 at 2026-07-28, -32600/400 elsewhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderError {
    /// The header appears more than once.
    Repeated(String),
    /// The header holds bytes outside visible ASCII.
    NotVisibleAscii(String),
    /// A `=?base64?...?=` value does not decode, or not to UTF-8.
    BadBase64(String),
    /// A required header is absent.
    Missing(String),
    /// `MCP-Protocol-Version` differs from the `_meta` claim.
    VersionMismatch {
        /// The header's value.
        header: String,
        /// The body's claim.
        claimed: String,
    },
    /// `Mcp-Method` differs from the body method.
    MethodMismatch(String),
    /// `Mcp-Name` differs from the named body field.
    NameMismatch(&'static str),
    /// `Mcp-Param-{name}` is present but the argument is not.
    ParamWithoutArgument {
        /// The header's name part.
        header: String,
        /// The argument.
        argument: String,
    },
    /// `Mcp-Param-{name}` differs from the argument.
    ParamMismatch {
        /// The header's name part.
        header: String,
        /// The argument.
        argument: String,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Repeated(h) => write!(f, "{h} header appears more than once"),
            Self::NotVisibleAscii(h) => {
                write!(f, "{h} header holds characters outside visible ASCII")
            }
            Self::BadBase64(h) => write!(f, "{h} header has an invalid =?base64?...?= encoding"),
            Self::Missing(h) => write!(f, "{h} header is required"),
            Self::VersionMismatch { header, claimed } => write!(
                f,
                "MCP-Protocol-Version header ({header}) does not match _meta protocolVersion ({claimed})"
            ),
            Self::MethodMismatch(m) => {
                write!(f, "Mcp-Method header does not match the body method ({m})")
            }
            Self::NameMismatch(field) => {
                write!(f, "Mcp-Name header does not match params.{field}")
            }
            Self::ParamWithoutArgument { header, argument } => write!(
                f,
                "Mcp-Param-{header} header is present but argument {argument} is not"
            ),
            Self::ParamMismatch { header, argument } => {
                write!(f, "Mcp-Param-{header} header does not match argument {argument}")
            }
        }
    }
}

/// Reads a single header as text trimmed of spaces and tabs: `Ok(None)` when absent.
pub(crate) fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h str>, HeaderError> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(HeaderError::Repeated(name.as_str().to_owned()));
    }
    let text = v
        .to_str()
        .map_err(|_| HeaderError::NotVisibleAscii(name.as_str().to_owned()))?;
    Ok(Some(text.trim_matches([' ', '\t'])))
}

/// Decodes a header value, unwrapping the `=?base64?...?=` sentinel used for non-ASCII values.
/// Returns the raw value borrowed when it carries no sentinel.
pub(crate) fn decode_value<'v>(
    name: &str,
    raw: &'v str,
) -> Result<std::borrow::Cow<'v, str>, HeaderError> {
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            let bad = || HeaderError::BadBase64(name.to_owned());
            let bytes = STANDARD.decode(b64).map_err(|_| bad())?;
            String::from_utf8(bytes).map(Into::into).map_err(|_| bad())
        }
        None => Ok(raw.into()),
    }
}

/// The body field `Mcp-Name` must mirror, for methods that have one.
pub(crate) fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        // SEP-2663: Mcp-Name carries the task id, so intermediaries can route by task.
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

/// `MCP-Protocol-Version` must be present and equal the `_meta` claim. Checked before the
/// version itself is judged: a disagreement is a transport error whatever the version.
pub(crate) fn check_version_header(
    headers: &HeaderMap,
    claimed_version: &str,
) -> Result<(), HeaderError> {
    match single(headers, &PROTOCOL_VERSION)? {
        None => Err(HeaderError::Missing("MCP-Protocol-Version".into())),
        Some(v) if v != claimed_version => Err(HeaderError::VersionMismatch {
            header: v.to_owned(),
            claimed: claimed_version.to_owned(),
        }),
        Some(_) => Ok(()),
    }
}

/// `Mcp-Method` must equal the body method, and `Mcp-Name` the name or URI it acts on.
pub(crate) fn check_method_headers(
    headers: &HeaderMap,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(), HeaderError> {
    match single(headers, &METHOD)? {
        None => return Err(HeaderError::Missing("Mcp-Method".into())),
        Some(v) if decode_value(METHOD.as_str(), v)? != method => {
            return Err(HeaderError::MethodMismatch(method.to_owned()))
        }
        Some(_) => {}
    }
    if let Some(field) = name_field(method) {
        let Some(expected) = params.get(field).and_then(Value::as_str) else {
            // The body is wrong too; dispatch reports the missing param as -32602.
            return Ok(());
        };
        match single(headers, &NAME)? {
            None => return Err(HeaderError::Missing(format!("Mcp-Name (for {method})"))),
            Some(v) if decode_value(NAME.as_str(), v)? != expected => {
                return Err(HeaderError::NameMismatch(field))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One argument a tool mirrors into an `Mcp-Param-{name}` header (`"x-mcp-header": "Name"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParamHeader {
    /// The argument (top-level property).
    pub(crate) argument: String,
    /// The header's name part as annotated.
    pub(crate) name: String,
    /// The full header name, for lookup.
    pub(crate) header: HeaderName,
}

/// Checks `Mcp-Param-{Name}` headers for a tool's marked arguments (2026-07-28). A marked argument
/// present in the body needs its header with an equal decoded value (integers compared as
/// numbers); a header without the argument is a mismatch too.
pub(crate) fn check_param_headers(
    headers: &HeaderMap,
    params: &[ParamHeader],
    arguments: &Map<String, Value>,
) -> Result<(), HeaderError> {
    for p in params {
        let header = single(headers, &p.header)?;
        match (arguments.get(&p.argument), header) {
            (None | Some(Value::Null), None) => {}
            (None | Some(Value::Null), Some(_)) => {
                return Err(HeaderError::ParamWithoutArgument {
                    header: p.name.clone(),
                    argument: p.argument.clone(),
                })
            }
            (Some(_), None) => return Err(HeaderError::Missing(format!("Mcp-Param-{}", p.name))),
            (Some(value), Some(raw)) => {
                let decoded = decode_value(p.header.as_str(), raw)?;
                let equal = match value {
                    Value::String(s) => *s == decoded,
                    Value::Bool(b) => decoded == if *b { "true" } else { "false" },
                    Value::Number(n) => match (n.as_i64(), decoded.parse::<i64>()) {
                        (Some(a), Ok(b)) => a == b,
                        _ => n.to_string() == decoded,
                    },
                    _ => false,
                };
                if !equal {
                    return Err(HeaderError::ParamMismatch {
                        header: p.name.clone(),
                        argument: p.argument.clone(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Why a tool's `x-mcp-header` annotation is refused at build time (clients drop such tools).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnnotationError {
    /// The annotation is not a string.
    NotAString(String),
    /// The name is not an HTTP token.
    NotAToken(String),
    /// Two arguments use the same name, ignoring case.
    Duplicate(String),
    /// The argument is not a string, integer or boolean.
    WrongType(String),
}

impl fmt::Display for AnnotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAString(p) => write!(f, "x-mcp-header on {p} must be a string"),
            Self::NotAToken(n) => write!(f, "x-mcp-header {n:?} is not an HTTP token"),
            Self::Duplicate(n) => write!(f, "x-mcp-header {n:?} is used twice"),
            Self::WrongType(p) => write!(
                f,
                "x-mcp-header on {p} needs type string, integer or boolean"
            ),
        }
    }
}

impl std::error::Error for AnnotationError {}

/// Reads a tool's `x-mcp-header` annotations once, checking the 2026-07-28 rules: a token name,
/// unique ignoring case, on a string/integer/boolean top-level property.
pub(crate) fn param_headers(input_schema: &Value) -> Result<Vec<ParamHeader>, AnnotationError> {
    let Some(props) = input_schema.get("properties").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<ParamHeader> = Vec::new();
    for (prop, sub) in props {
        let Some(annotation) = sub.get("x-mcp-header") else {
            continue;
        };
        let name = annotation
            .as_str()
            .ok_or_else(|| AnnotationError::NotAString(prop.clone()))?;
        let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(AnnotationError::NotAToken(name.to_owned()));
        }
        let header = HeaderName::from_bytes(
            format!("{PARAM_PREFIX}{}", name.to_ascii_lowercase()).as_bytes(),
        )
        .map_err(|_| AnnotationError::NotAToken(name.to_owned()))?;
        if out.iter().any(|p| p.header == header) {
            return Err(AnnotationError::Duplicate(name.to_owned()));
        }
        match sub.get("type").and_then(Value::as_str) {
            Some("string" | "integer" | "boolean") => {}
            _ => return Err(AnnotationError::WrongType(prop.clone())),
        }
        out.push(ParamHeader {
            argument: prop.clone(),
            name: name.to_owned(),
            header,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use serde_json::json;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn accepts_matching_headers_with_padding_and_lowercase_names() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "  echo "),
        ]);
        assert_eq!(check_version_header(&h, "2026-07-28"), Ok(()));
        assert_eq!(
            check_method_headers(&h, "tools/call", &params(json!({"name":"echo"}))),
            Ok(())
        );
    }

    #[test]
    fn rejects_case_mismatch_in_method_value() {
        let h = headers(&[("mcp-method", "TOOLS/LIST")]);
        assert_eq!(
            check_method_headers(&h, "tools/list", &Map::new()),
            Err(HeaderError::MethodMismatch("tools/list".into()))
        );
    }

    #[test]
    fn decodes_base64_sentinel() {
        assert_eq!(decode_value("x", "=?base64?w6lsw6g=?=").unwrap(), "élè");
        assert!(decode_value("x", "=?base64?***?=").is_err());
        assert_eq!(decode_value("x", "plain").unwrap(), "plain");
    }

    #[test]
    fn requires_name_for_tools_call() {
        let h = headers(&[("mcp-method", "tools/call")]);
        let err = check_method_headers(&h, "tools/call", &params(json!({"name":"x"}))).unwrap_err();
        assert!(err.to_string().contains("Mcp-Name"));
    }

    #[test]
    fn repeated_version_header_is_refused() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-protocol-version", "2026-07-28"),
        ]);
        assert_eq!(
            check_version_header(&h, "2026-07-28"),
            Err(HeaderError::Repeated(PROTOCOL_VERSION.as_str().into()))
        );
    }

    #[test]
    fn param_annotations_are_read_once_and_checked() {
        let schema = json!({"type":"object","properties":{
            "region":{"type":"string","x-mcp-header":"Region"},
            "n":{"type":"integer","x-mcp-header":"Count"}}});
        let p = param_headers(&schema).unwrap();
        assert_eq!(p.len(), 2);
        let h = headers(&[("mcp-param-region", "eu"), ("mcp-param-count", "7")]);
        assert_eq!(
            check_param_headers(&h, &p, &params(json!({"region":"eu","n":7}))),
            Ok(())
        );
        assert!(matches!(
            check_param_headers(&h, &p, &params(json!({"region":"us","n":7}))),
            Err(HeaderError::ParamMismatch { .. })
        ));
        assert!(matches!(
            check_param_headers(&h, &p, &params(json!({"n":7}))),
            Err(HeaderError::ParamWithoutArgument { .. })
        ));
        let bad = json!({"properties":{"a":{"type":"object","x-mcp-header":"A"}}});
        assert_eq!(
            param_headers(&bad),
            Err(AnnotationError::WrongType("a".into()))
        );
        let dup = json!({"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"type":"string","x-mcp-header":"a"}}});
        assert!(matches!(
            param_headers(&dup),
            Err(AnnotationError::Duplicate(_))
        ));
    }
}
