//! The dev issuer's routes: JWKS, OpenID/OAuth metadata, and a token-minting endpoint (only with `--dev`).

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};

use super::{json_value, unix_now, Body, HttpConfig};
use crate::dev::DevIssuer;

/// Longest lifetime a minted token may ask for: one day.
const MAX_TTL_SECS: u64 = 86_400;

/// Serves `req` if it is a dev route; `None` otherwise.
pub(super) async fn route(
    dev: &Arc<DevIssuer>,
    config: &HttpConfig,
    req: Request<Incoming>,
) -> Option<Response<Body>> {
    let path = req.uri().path();
    let issuer_path = crate::auth::metadata::split_url(dev.issuer()).map_or("", |(_, p)| p);
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
        return Some(json_value(
            StatusCode::OK,
            &dev.authorization_server_metadata(),
        ));
    }
    match (req.method().clone(), local) {
        (Method::GET, Some("/oauth/jwks")) => Some(json_value(StatusCode::OK, &dev.jwks())),
        (Method::POST, Some("/token")) => Some(mint(dev, config, req).await),
        _ => None,
    }
}

/// `POST {issuer}/token` with an optional JSON body `{sub, email, hardware_verified, ttl_secs, scope, aud}`.
/// A negative `ttl_secs` mints an already expired token (for trying the 401 path).
async fn mint(dev: &DevIssuer, config: &HttpConfig, req: Request<Incoming>) -> Response<Body> {
    let body = match Limited::new(req.into_body(), 16 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return bad("body too large or unreadable"),
    };
    let opts: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
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
    let now = unix_now();
    let aud = text("aud", &config.resource_url);
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
    json_value(
        StatusCode::OK,
        &json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    )
}

fn bad(why: &str) -> Response<Body> {
    json_value(
        StatusCode::BAD_REQUEST,
        &json!({"error": "invalid_request", "error_description": why}),
    )
}
