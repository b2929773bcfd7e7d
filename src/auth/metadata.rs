//! RFC 9728 protected-resource metadata: the document and the well-known URLs derived from the resource URL; pure.

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The well-known prefix of RFC 9728 section 3.
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// Splits an absolute URL into `scheme://authority` and path (without a trailing `/`).
/// Returns `None` when it is not an absolute http(s) URL or carries a fragment.
pub fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    if url.contains('#') {
        return None;
    }
    let scheme_len = url.len() - rest.len();
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    if authority_len == 0 {
        return None;
    }
    let origin = &url[..scheme_len + authority_len];
    let path = &rest[authority_len..];
    let path = path.split('?').next().unwrap_or("");
    Some((origin, path.strip_suffix('/').unwrap_or(path)))
}

/// The path-inserted metadata URL for `resource` (RFC 9728 section 3.1):
/// `https://h/mcp` gives `https://h/.well-known/oauth-protected-resource/mcp`.
pub fn metadata_url(resource: &str) -> Option<String> {
    let (origin, path) = split_url(resource)?;
    Some(format!("{origin}{WELL_KNOWN_PREFIX}{path}"))
}

/// The metadata document, serialized once at startup.
pub fn document(
    resource: &str,
    issuer: &str,
    scopes_supported: &[String],
    resource_name: &str,
) -> Bytes {
    let mut doc = Map::new();
    doc.insert("resource".into(), json!(resource));
    doc.insert("authorization_servers".into(), json!([issuer]));
    doc.insert("bearer_methods_supported".into(), json!(["header"]));
    // RFC 9728 section 2: parameters with zero values are omitted, never sent as [].
    if !scopes_supported.is_empty() {
        doc.insert("scopes_supported".into(), json!(scopes_supported));
    }
    doc.insert("resource_name".into(), json!(resource_name));
    Bytes::from(serde_json::to_vec(&Value::Object(doc)).expect("metadata serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_well_known_between_host_and_path() {
        assert_eq!(
            metadata_url("http://localhost:3000/mcp").unwrap(),
            "http://localhost:3000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://a.example/").unwrap(),
            "https://a.example/.well-known/oauth-protected-resource"
        );
        assert!(metadata_url("ftp://x/mcp").is_none());
        assert!(metadata_url("https://x/mcp#f").is_none());
    }

    #[test]
    fn omits_empty_scopes() {
        let doc = document("https://h/mcp", "https://i", &[], "n");
        assert!(!String::from_utf8_lossy(&doc).contains("scopes_supported"));
        let doc = document("https://h/mcp", "https://i", &["a".into()], "n");
        assert!(String::from_utf8_lossy(&doc).contains(r#""scopes_supported":["a"]"#));
    }
}
