//! The exact bytes of every auth rejection through the HTTP server (RFC 6750 section 3, RFC 9728
//! section 5.1), the protected-resource metadata documents, and Host/Origin refusals before auth.

mod support;

use serde_json::{json, Map, Value};
use support::DevIssuer;
use support::*;

/// The path-inserted metadata URL the challenges must name.
fn prm(s: &TestServer) -> String {
    format!(
        "http://localhost:{}/.well-known/oauth-protected-resource/mcp",
        s.addr.port()
    )
}

/// POSTs a well-formed 2026-07-28 `tools/call whoami` to `path`, with these Authorization
/// header values (zero, one or several) and extra headers: only auth differs between cases.
async fn post(s: &TestServer, path: &str, auth: &[&str], extra: &[(&str, &str)]) -> Reply {
    let mut params = json!({"name": "whoami", "arguments": {}});
    params["_meta"] = modern_meta();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params});
    let mut headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
    headers.extend([
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", "whoami"),
    ]);
    headers.extend_from_slice(extra);
    raw(s.addr, "POST", path, &headers, body.to_string().as_bytes()).await
}

/// Every header value and the body, for "does this response contain X anywhere".
fn everything(r: &Reply) -> String {
    let mut all = String::new();
    for (k, v) in &r.headers {
        all.push_str(k);
        all.push_str(": ");
        all.push_str(v);
        all.push('\n');
    }
    all.push_str(&String::from_utf8_lossy(&r.body));
    all
}

/// No segment of `token` appears anywhere in the response.
fn assert_no_token_bytes(r: &Reply, token: &str) {
    let all = everything(r);
    for seg in token.split('.').filter(|s| s.len() >= 4) {
        assert!(
            !all.contains(seg),
            "response echoes token bytes {seg:?}:\n{all}"
        );
    }
}

/// Status, exactly one `WWW-Authenticate` with exactly these bytes, a JSON body with exactly
/// these bytes, no Retry-After, and no byte of `token` anywhere.
fn assert_rejection(r: &Reply, status: u16, www: &str, body: &str, token: &str) {
    let all = everything(r);
    assert_eq!(r.status, status, "{all}");
    let challenges: Vec<&str> = r
        .headers
        .iter()
        .filter(|(k, _)| k == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(challenges, [www], "{all}");
    assert_eq!(r.header("content-type"), Some("application/json"), "{all}");
    assert_eq!(r.text(), body, "{all}");
    assert_eq!(r.header("retry-after"), None);
    assert_no_token_bytes(r, token);
}

fn invalid_token(s: &TestServer, description: &str) -> (String, String) {
    (
        format!(
            r#"Bearer error="invalid_token", error_description="{description}", resource_metadata="{}""#,
            prm(s)
        ),
        format!(r#"{{"error":"invalid_token","error_description":"{description}"}}"#),
    )
}

const NO_TOKEN_BODY: &str =
    r#"{"error":"unauthorized","error_description":"a bearer token is required"}"#;

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn with_claims(s: &TestServer, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut claims = s.claims("alice", false);
    edit(&mut claims);
    s.issuer.mint(&claims)
}

// ---------------------------------------------------------------------------------------------
// No credentials.
// ---------------------------------------------------------------------------------------------

/// No Authorization: 401 with only `resource_metadata` (RFC 6750 section 3.1: no `error`).
#[tokio::test]
async fn no_authorization_is_401_without_error_param() {
    let s = start(Options::default()).await;
    let r = post(&s, "/mcp", &[], &[]).await;
    let www = format!(r#"Bearer resource_metadata="{}""#, prm(&s));
    assert_rejection(&r, 401, &www, NO_TOKEN_BODY, "");
    // Every method on /mcp needs the token (G1), with the same challenge.
    for method in ["GET", "DELETE"] {
        let r = raw(s.addr, method, "/mcp", &[], b"").await;
        assert_rejection(&r, 401, &www, NO_TOKEN_BODY, "");
    }
}

/// With server-wide required scopes the 401 names them, in configuration order.
#[tokio::test]
async fn no_authorization_with_required_scopes_names_them() {
    let s = start(Options {
        required_scopes: scopes(&["mcp:read", "mcp:write"]),
        ..Default::default()
    })
    .await;
    let r = post(&s, "/mcp", &[], &[]).await;
    let www = format!(
        r#"Bearer scope="mcp:read mcp:write", resource_metadata="{}""#,
        prm(&s)
    );
    assert_rejection(&r, 401, &www, NO_TOKEN_BODY, "");
    // Basic is "no bearer credentials": the same challenge.
    let r = post(&s, "/mcp", &["Basic dXNlcjpwYXNz"], &[]).await;
    assert_rejection(&r, 401, &www, NO_TOKEN_BODY, "dXNlcjpwYXNz");
}

/// Another scheme counts as no bearer credentials.
#[tokio::test]
async fn basic_scheme_is_treated_as_no_credentials() {
    let s = start(Options::default()).await;
    let www = format!(r#"Bearer resource_metadata="{}""#, prm(&s));
    for value in [
        "Basic dXNlcjpwYXNz",
        "Bearerx abc.def.ghi",
        "Digest username=\"u\"",
    ] {
        let r = post(&s, "/mcp", &[value], &[]).await;
        assert_rejection(&r, 401, &www, NO_TOKEN_BODY, "dXNlcjpwYXNz");
    }
}

/// A valid token in the query string is ignored (G9): 401 with no `error`, token not echoed.
#[tokio::test]
async fn token_in_query_string_is_ignored() {
    let s = start(Options::default()).await;
    let tok = s.token("alice", false);
    let r = post(&s, &format!("/mcp?access_token={tok}"), &[], &[]).await;
    let www = format!(r#"Bearer resource_metadata="{}""#, prm(&s));
    assert_rejection(&r, 401, &www, NO_TOKEN_BODY, &tok);
}

/// A valid token in a form body is never read (RFC 6750 section 2.2 is not supported): 401.
#[tokio::test]
async fn token_in_form_body_is_ignored() {
    let s = start(Options::default()).await;
    let tok = s.token("alice", false);
    let body = format!("access_token={tok}");
    let r = raw(
        s.addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
    .await;
    let www = format!(r#"Bearer resource_metadata="{}""#, prm(&s));
    assert_rejection(&r, 401, &www, NO_TOKEN_BODY, &tok);
}

// ---------------------------------------------------------------------------------------------
// Bad tokens: 401 invalid_token.
// ---------------------------------------------------------------------------------------------

/// Not a JWT (a b64token that is not three segments, or not even a b64token): "token malformed".
#[tokio::test]
async fn garbage_bearer_is_401_token_malformed() {
    let s = start(Options::default()).await;
    let (www, body) = invalid_token(&s, "token malformed");
    for garbage in [
        "notajwtatall",
        "aaaa.bbbb",
        "aaaa.bbbb.cccc.dddd.eeee",
        "{\"json\":1}",
        "a,b",
        "eyJhbGciOiJFUzI1NiJ9.e30=.c2ln",
    ] {
        let r = post(&s, "/mcp", &[&format!("Bearer {garbage}")], &[]).await;
        assert_rejection(&r, 401, &www, &body, garbage);
    }
}

/// exp more than the leeway in the past: "token expired".
#[tokio::test]
async fn expired_token_is_401_token_expired() {
    let s = start(Options::default()).await;
    let n = now();
    let tok = with_claims(&s, |c| {
        c.insert("iat".into(), json!(n - 7200));
        c.insert("exp".into(), json!(n - 120));
    });
    let (www, body) = invalid_token(&s, "token expired");
    let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
    assert_rejection(&r, 401, &www, &body, &tok);
}

/// A good signature from the right key but another `iss` (here a trailing-slash variant).
#[tokio::test]
async fn wrong_issuer_is_401_wrong_issuer() {
    let s = start(Options::default()).await;
    let (www, body) = invalid_token(&s, "wrong issuer");
    for iss in ["https://issuer.test/", "https://evil.test"] {
        let tok = with_claims(&s, |c| {
            c.insert("iss".into(), json!(iss));
        });
        let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
        assert_rejection(&r, 401, &www, &body, &tok);
    }
}

/// A token for another resource, or for none (G5, J12).
#[tokio::test]
async fn wrong_audience_is_401_not_for_this_resource() {
    let s = start(Options::default()).await;
    let (www, body) = invalid_token(&s, "token not issued for this resource");
    let other = format!("http://localhost:{}/other", s.addr.port());
    let trailing = format!("{}/", s.resource);
    for aud in [
        json!(other),
        json!(trailing),
        json!(["https://a.example/mcp"]),
    ] {
        let tok = with_claims(&s, |c| {
            c.insert("aud".into(), aud.clone());
        });
        let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
        assert_rejection(&r, 401, &www, &body, &tok);
    }
    let tok = with_claims(&s, |c| {
        c.remove("aud");
    });
    let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
    assert_rejection(&r, 401, &www, &body, &tok);
}

/// A kid the key set does not have.
#[tokio::test]
async fn unknown_kid_is_401_unknown_signing_key() {
    let s = start(Options::default()).await;
    let other = other_key();
    let tok = other.mint(&s.claims("alice", false));
    let (www, body) = invalid_token(&s, "unknown signing key");
    let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
    assert_rejection(&r, 401, &www, &body, &tok);
}

/// The right kid, signed by another key.
#[tokio::test]
async fn bad_signature_is_401_signature_invalid() {
    let s = start(Options::default()).await;
    let forger = DevIssuer::from_secret(ISSUER, "test-key-1", [9u8; 32]).unwrap();
    let tok = forger.mint(&s.claims("alice", false));
    let (www, body) = invalid_token(&s, "signature invalid");
    let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
    assert_rejection(&r, 401, &www, &body, &tok);
}

/// `alg: none` (empty or any signature) and `HS256`: "unsupported algorithm".
#[tokio::test]
async fn alg_none_is_401_unsupported_algorithm() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let s = start(Options::default()).await;
    let claims = serde_json::to_vec(&s.claims("alice", false)).unwrap();
    let (www, body) = invalid_token(&s, "unsupported algorithm");
    for alg in ["none", "None", "HS256"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "test-key-1"}).to_string();
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(header.as_bytes()),
            URL_SAFE_NO_PAD.encode(&claims)
        );
        let signed = s.issuer.sign_raw(header.as_bytes(), &claims);
        for tok in [unsigned, signed] {
            let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
            assert_rejection(&r, 401, &www, &body, &tok);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Malformed requests: 400 invalid_request.
// ---------------------------------------------------------------------------------------------

/// Two Authorization headers (even if both are valid): 400 invalid_request.
#[tokio::test]
async fn two_authorization_headers_are_400_invalid_request() {
    let s = start(Options::default()).await;
    let tok = s.token("alice", false);
    let bearer = format!("Bearer {tok}");
    let www = format!(
        r#"Bearer error="invalid_request", error_description="more than one Authorization header", resource_metadata="{}""#,
        prm(&s)
    );
    let body =
        r#"{"error":"invalid_request","error_description":"more than one Authorization header"}"#;
    for pair in [
        [bearer.as_str(), bearer.as_str()],
        [bearer.as_str(), "Basic dXNlcjpwYXNz"],
    ] {
        let r = post(&s, "/mcp", &pair, &[]).await;
        assert_rejection(&r, 400, &www, body, &tok);
    }
}

/// `Bearer` with no token after it: 400 invalid_request.
#[tokio::test]
async fn empty_bearer_is_400_invalid_request() {
    let s = start(Options::default()).await;
    let www = format!(
        r#"Bearer error="invalid_request", error_description="empty bearer token", resource_metadata="{}""#,
        prm(&s)
    );
    let body = r#"{"error":"invalid_request","error_description":"empty bearer token"}"#;
    for value in ["Bearer", "bearer", "Bearer    "] {
        let r = post(&s, "/mcp", &[value], &[]).await;
        assert_rejection(&r, 400, &www, body, "");
    }
}

// ---------------------------------------------------------------------------------------------
// Accepted forms.
// ---------------------------------------------------------------------------------------------

/// The scheme is case-insensitive and may be followed by more than one space (RFC 6750 2.1).
#[tokio::test]
async fn lowercase_scheme_and_extra_spaces_are_accepted() {
    let s = start(Options::default()).await;
    let tok = s.token("alice", false);
    for value in [
        format!("bearer {tok}"),
        format!("Bearer  {tok}"),
        format!("BEARER {tok}"),
    ] {
        let r = post(&s, "/mcp", &[&value], &[]).await;
        assert_eq!(r.status, 200, "{value:?}: {}", r.text());
        assert_eq!(r.header("www-authenticate"), None);
        assert_eq!(
            r.json()["result"]["structuredContent"]["sub"],
            json!("alice")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scopes: 403 insufficient_scope.
// ---------------------------------------------------------------------------------------------

/// A valid token lacking one required scope: 403 naming every scope needed, in one challenge.
#[tokio::test]
async fn missing_scope_is_403_with_every_needed_scope() {
    let s = start(Options {
        required_scopes: scopes(&["mcp:read", "mcp:write"]),
        ..Default::default()
    })
    .await;
    let www = format!(
        r#"Bearer error="insufficient_scope", error_description="token lacks a required scope", scope="mcp:read mcp:write", resource_metadata="{}""#,
        prm(&s)
    );
    let body =
        r#"{"error":"insufficient_scope","error_description":"token lacks a required scope"}"#;
    for scope in [
        "openid email mcp:read",
        "mcp:write",
        "",
        "mcp:read:x mcp:writer",
    ] {
        let tok = with_claims(&s, |c| {
            c.insert("scope".into(), json!(scope));
        });
        let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
        assert_rejection(&r, 403, &www, body, &tok);
    }
    // With both, the same request succeeds (from `scope`, or from `scp`).
    let tok = with_claims(&s, |c| {
        c.insert("scope".into(), json!("openid mcp:write mcp:read"));
    });
    let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tok = with_claims(&s, |c| {
        c.remove("scope");
        c.insert("scp".into(), json!(["mcp:read", "mcp:write"]));
    });
    let r = post(&s, "/mcp", &[&format!("Bearer {tok}")], &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---------------------------------------------------------------------------------------------
// Protected-resource metadata (RFC 9728).
// ---------------------------------------------------------------------------------------------

fn assert_metadata(r: &Reply, body: &str) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(r.header("www-authenticate"), None);
    assert_eq!(r.text(), body);
}

/// Both well-known paths serve the document, unauthenticated; empty scopes_supported is omitted.
#[tokio::test]
async fn metadata_documents_are_served_unauthenticated() {
    let s = start(Options::default()).await;
    let body = format!(
        r#"{{"authorization_servers":["{ISSUER}"],"bearer_methods_supported":["header"],"resource":"{}","resource_name":"vouch-mcp"}}"#,
        s.resource
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = raw(s.addr, "GET", path, &[], b"").await;
        assert_metadata(&r, &body);
        assert!(!r.text().contains("scopes_supported"));
        let doc = r.json();
        assert_eq!(doc["resource"], json!(s.resource));
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        // Even a garbage token does not turn the public document into a 401.
        let r = raw(
            s.addr,
            "GET",
            path,
            &[("Authorization", "Bearer junk")],
            b"",
        )
        .await;
        assert_metadata(&r, &body);
    }
    // The URL in the challenges is one of them (path-inserted, RFC 9728 section 3.1).
    let url = prm(&s);
    let path = url.strip_prefix(&format!("http://localhost:{}", s.addr.port()));
    assert_eq!(path, Some("/.well-known/oauth-protected-resource/mcp"));
}

/// `scopes_supported` appears when the builder sets it.
#[tokio::test]
async fn metadata_lists_scopes_supported_when_configured() {
    let s = start(Options {
        configure: Some(Box::new(|b| {
            b.scopes_supported(scopes(&["mcp:read", "mcp:write"]))
        })),
        ..Default::default()
    })
    .await;
    let body = format!(
        r#"{{"authorization_servers":["{ISSUER}"],"bearer_methods_supported":["header"],"resource":"{}","resource_name":"vouch-mcp","scopes_supported":["mcp:read","mcp:write"]}}"#,
        s.resource
    );
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = raw(s.addr, "GET", path, &[], b"").await;
        assert_metadata(&r, &body);
    }
}

// ---------------------------------------------------------------------------------------------
// Host / Origin (DNS rebinding) before auth.
// ---------------------------------------------------------------------------------------------

fn forbidden_body(message: &str) -> String {
    json!({"error": {"code": -32600, "message": message}, "id": null, "jsonrpc": "2.0"}).to_string()
}

/// A present but foreign Origin is refused with 403 before auth: no challenge, with or without
/// a token, and the body names the setting to change.
#[tokio::test]
async fn foreign_origin_is_403_before_auth() {
    let s = start(Options::default()).await;
    let tok = s.token("alice", false);
    let bearer = format!("Bearer {tok}");
    for origin in [
        "http://evil.example",
        "null",
        "https://localhost.evil.example",
    ] {
        let body = forbidden_body(&format!(
            "Forbidden: Origin {origin:?} is not allowed (DNS-rebinding protection); add it to MCP_ALLOWED_ORIGINS"
        ));
        for auth in [vec![], vec![bearer.as_str()], vec!["Bearer junk"]] {
            let r = post(&s, "/mcp", &auth, &[("Origin", origin)]).await;
            assert_eq!(r.status, 403, "{origin} {auth:?}: {}", r.text());
            assert_eq!(r.header("www-authenticate"), None);
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.json(), serde_json::from_str::<Value>(&body).unwrap());
            assert!(r.text().contains("MCP_ALLOWED_ORIGINS"));
            assert_no_token_bytes(&r, &tok);
        }
    }
    // A loopback Origin passes the check and reaches auth.
    let r = post(&s, "/mcp", &[], &[("Origin", "http://localhost:5173")]).await;
    assert_eq!(r.status, 401);
    let r = post(
        &s,
        "/mcp",
        &[&bearer],
        &[("Origin", "http://127.0.0.1:5173")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A foreign Host is refused with 403 before auth; the body names the settings to change.
#[tokio::test]
async fn foreign_host_is_403_before_auth() {
    let s = start(Options::default()).await;
    let tok = s.token("alice", false);
    let bearer = format!("Bearer {tok}");
    for host in ["evil.example", "evil.example:443", "localhost.evil.example"] {
        let body = forbidden_body(&format!(
            "Forbidden: Host {host:?} is not allowed (DNS-rebinding protection); set MCP_RESOURCE_URL to the public URL or add the host to MCP_ALLOWED_HOSTS"
        ));
        for auth in [vec![], vec![bearer.as_str()]] {
            let r = post(&s, "/mcp", &auth, &[("Host", host)]).await;
            assert_eq!(r.status, 403, "{host} {auth:?}: {}", r.text());
            assert_eq!(r.header("www-authenticate"), None);
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert_eq!(r.json(), serde_json::from_str::<Value>(&body).unwrap());
            assert!(r.text().contains("MCP_ALLOWED_HOSTS"));
            assert_no_token_bytes(&r, &tok);
        }
    }
    // The resource URL's own host passes.
    let own = format!("localhost:{}", s.addr.port());
    let r = post(&s, "/mcp", &[&bearer], &[("Host", &own)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
