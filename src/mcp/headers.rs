//! The 2026-07-28 standard request headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) checked against the body; pure.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;
use serde_json::{Map, Value};

/// `MCP-Protocol-Version`.
pub const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// `Mcp-Method`.
pub const METHOD: &str = "mcp-method";
/// `Mcp-Name`.
pub const NAME: &str = "mcp-name";
/// `Mcp-Session-Id` (initialize era).
pub const SESSION_ID: &str = "mcp-session-id";
/// `Mcp-Param-` prefix for `x-mcp-header` arguments.
pub const PARAM_PREFIX: &str = "mcp-param-";

/// Reads a single header as trimmed text: `Ok(None)` when absent, `Err` when repeated or not visible ASCII.
pub fn single<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, String> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(format!("{name} header appears more than once"));
    }
    let text = v
        .to_str()
        .map_err(|_| format!("{name} header holds characters outside visible ASCII"))?;
    Ok(Some(text.trim_matches([' ', '\t'])))
}

/// Decodes a header value, unwrapping the `=?base64?...?=` sentinel used for non-ASCII values.
pub fn decode_value(raw: &str) -> Result<String, String> {
    match raw
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        Some(b64) => {
            let bytes = STANDARD
                .decode(b64)
                .map_err(|_| "header value has an invalid =?base64?...?= encoding".to_owned())?;
            String::from_utf8(bytes).map_err(|_| "base64 header value is not UTF-8".to_owned())
        }
        None => Ok(raw.to_owned()),
    }
}

/// The body field `Mcp-Name` must mirror, for methods that have one.
pub fn name_field(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    }
}

/// Checks `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` for a 2026-07-28 request.
/// The error text says which header and what was expected; it becomes -32020.
pub fn check_standard(
    headers: &HeaderMap,
    claimed_version: &str,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(), String> {
    check_version_header(headers, claimed_version)?;
    check_method_headers(headers, method, params)
}

/// `MCP-Protocol-Version` must be present and equal the `_meta` claim. Checked before the
/// version itself is judged: a disagreement is a transport error whatever the version.
pub fn check_version_header(headers: &HeaderMap, claimed_version: &str) -> Result<(), String> {
    match single(headers, PROTOCOL_VERSION)? {
        None => return Err("MCP-Protocol-Version header is required".into()),
        Some(v) if v != claimed_version => {
            return Err(format!(
                "MCP-Protocol-Version header ({v}) does not match _meta protocolVersion ({claimed_version})"
            ))
        }
        Some(_) => {}
    }
    Ok(())
}

/// `Mcp-Method` must equal the body method, and `Mcp-Name` the name or URI it acts on.
pub fn check_method_headers(
    headers: &HeaderMap,
    method: &str,
    params: &Map<String, Value>,
) -> Result<(), String> {
    match single(headers, METHOD)? {
        None => return Err("Mcp-Method header is required".into()),
        Some(v) if decode_value(v)? != method => {
            return Err(format!(
                "Mcp-Method header does not match the body method ({method})"
            ))
        }
        Some(_) => {}
    }
    if let Some(field) = name_field(method) {
        let Some(expected) = params.get(field).and_then(Value::as_str) else {
            // The body is wrong too; dispatch reports the missing param as -32602.
            return Ok(());
        };
        match single(headers, NAME)? {
            None => return Err(format!("Mcp-Name header is required for {method}")),
            Some(v) if decode_value(v)? != expected => {
                return Err(format!("Mcp-Name header does not match params.{field}"))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks `Mcp-Param-{Name}` headers for tool arguments marked `"x-mcp-header": "Name"` (2026-07-28).
/// A marked argument present in the body needs its header, with an equal decoded value
/// (integers compared as numbers); a header without the argument is a mismatch too.
pub fn check_param_headers(
    headers: &HeaderMap,
    input_schema: &Value,
    arguments: &Map<String, Value>,
) -> Result<(), String> {
    let Some(props) = input_schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (prop, sub) in props {
        let Some(name) = sub.get("x-mcp-header").and_then(Value::as_str) else {
            continue;
        };
        let header_name = format!("{PARAM_PREFIX}{}", name.to_ascii_lowercase());
        let header = single(headers, &header_name)?;
        match (arguments.get(prop), header) {
            (None | Some(Value::Null), None) => {}
            (None | Some(Value::Null), Some(_)) => {
                return Err(format!(
                    "Mcp-Param-{name} header is present but argument {prop} is not"
                ))
            }
            (Some(_), None) => {
                return Err(format!(
                    "Mcp-Param-{name} header is required for argument {prop}"
                ))
            }
            (Some(value), Some(raw)) => {
                let decoded = decode_value(raw)?;
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
                    return Err(format!(
                        "Mcp-Param-{name} header does not match argument {prop}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks a tool's `x-mcp-header` annotations (clients drop tools that break these rules, so
/// serving one is a bug): a token name, unique ignoring case, on a string/integer/boolean property.
pub fn validate_param_annotations(input_schema: &Value) -> Result<(), String> {
    let Some(props) = input_schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    let mut seen: Vec<String> = Vec::new();
    for (prop, sub) in props {
        let Some(annotation) = sub.get("x-mcp-header") else {
            continue;
        };
        let name = annotation
            .as_str()
            .ok_or_else(|| format!("x-mcp-header on {prop} must be a string"))?;
        let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!(
                "x-mcp-header {name:?} on {prop} is not an HTTP token"
            ));
        }
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(format!("x-mcp-header {name:?} is used twice"));
        }
        seen.push(lower);
        match sub.get("type").and_then(Value::as_str) {
            Some("string" | "integer" | "boolean") => {}
            _ => {
                return Err(format!(
                    "x-mcp-header on {prop} needs type string, integer or boolean"
                ))
            }
        }
    }
    Ok(())
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
        assert!(check_standard(
            &h,
            "2026-07-28",
            "tools/call",
            &params(json!({"name":"echo"}))
        )
        .is_ok());
    }

    #[test]
    fn rejects_case_mismatch_in_method_value() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "TOOLS/LIST"),
        ]);
        assert!(check_standard(&h, "2026-07-28", "tools/list", &Map::new()).is_err());
    }

    #[test]
    fn decodes_base64_sentinel() {
        assert_eq!(decode_value("=?base64?w6lsw6g=?=").unwrap(), "élè");
        assert!(decode_value("=?base64?***?=").is_err());
        assert_eq!(decode_value("plain").unwrap(), "plain");
    }

    #[test]
    fn requires_name_for_tools_call() {
        let h = headers(&[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
        ]);
        let err = check_standard(&h, "2026-07-28", "tools/call", &params(json!({"name":"x"})))
            .unwrap_err();
        assert!(err.contains("Mcp-Name"));
    }
}
