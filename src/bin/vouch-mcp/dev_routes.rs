//! The dev issuer's routes: JWKS, OpenID/OAuth metadata, and a token-minting endpoint (only with `--dev`), served through the server's fallback.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use vouch_mcp::Body;

use crate::dev::DevIssuer;

/// Longest lifetime a minted token may ask for: one day.
const MAX_TTL_SECS: u64 = 86_400;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Body::full(
        serde_json::to_vec(value).expect("a Value serializes"),
    ));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Serves `req` if it is a dev route; `None` lets the server answer 404.
pub(crate) fn route(
    dev: &Arc<DevIssuer>,
    resource_url: &str,
    req: Request<Bytes>,
) -> Option<Response<Body>> {
    let path = req.uri().path();
    // The issuer is http://127.0.0.1:PORT/dev: its routes live under /dev.
    let issuer_path = dev
        .issuer()
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let local = path
        .strip_prefix(issuer_path)
        .filter(|_| !issuer_path.is_empty());
    let metadata_paths = [
        format!("/.well-known/oauth-authorization-server{issuer_path}"),
        format!("/.well-known/openid-configuration{issuer_path}"),
    ];
    let get = *req.method() == Method::GET;
    if get
        && (metadata_paths.iter().any(|p| p == path)
            || matches!(
                local,
                Some(
                    "/.well-known/openid-configuration" | "/.well-known/oauth-authorization-server"
                )
            ))
    {
        return Some(json_response(
            StatusCode::OK,
            &dev.authorization_server_metadata(),
        ));
    }
    match (req.method().clone(), local) {
        (Method::GET, Some("/oauth/jwks")) => Some(json_response(StatusCode::OK, &dev.jwks())),
        (Method::POST, Some("/token")) => Some(mint(dev, resource_url, req.body())),
        _ => None,
    }
}

/// `POST {issuer}/token` with an optional JSON body `{sub, email, hardware_verified, ttl_secs, scope, aud}`.
/// A negative `ttl_secs` mints an already expired token (for trying the 401 path).
fn mint(dev: &DevIssuer, resource_url: &str, body: &[u8]) -> Response<Body> {
    let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return bad("body must be a JSON object"),
        }
    };
    let text = |k: &str, d: &str| opts.get(k).and_then(Value::as_str).unwrap_or(d).to_owned();
    let ttl = opts
        .get("ttl_secs")
        .and_then(Value::as_i64)
        .unwrap_or(3600)
        .clamp(-(MAX_TTL_SECS as i64), MAX_TTL_SECS as i64);
    let hw = opts
        .get("hardware_verified")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aud = text("aud", resource_url);
    // A negative ttl means "expired |ttl| seconds ago": iat goes back a minute further so the
    // token is otherwise well-formed (issued before it expired).
    let (issued, lifetime) = match u64::try_from(ttl) {
        Ok(ttl) => (now, ttl),
        Err(_) => (now.saturating_sub(ttl.unsigned_abs() + 60), 60),
    };
    let mut claims = dev.claims(
        &aud,
        &text("sub", "dev-user"),
        &text("email", "dev@example.com"),
        hw,
        issued,
        lifetime,
    );
    if let Some(scope) = opts.get("scope").and_then(Value::as_str) {
        claims.insert("scope".into(), json!(scope));
    }
    let token = dev.mint(&claims);
    json_response(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    )
}

fn bad(why: &str) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_request", "error_description": why}),
    )
}
