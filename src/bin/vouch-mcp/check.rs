//! `vouch-mcp --check`: a deploy preflight that validates every setting, fetches the JWKS once, prints what it found and says whether the server could serve.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use vouch_mcp::auth::fetch::HttpFetcher;
use vouch_mcp::auth::KeySet;
use vouch_mcp::defaults::JWKS_MAX_BYTES;

use crate::launch::{connect_shared, launch_with, Refresh};
use crate::settings::Config;

/// Runs the checks; returns the report and whether every check passed.
pub(crate) async fn check(config: &Config) -> (String, bool) {
    let mut out = String::new();
    let _ = writeln!(out, "settings: ok");
    // A replica that cannot reach its shared store does not start, so the preflight tries it.
    let shared = match connect_shared(config).await {
        Ok(shared) => {
            if shared.is_some() {
                let _ = writeln!(out, "redis: ok");
            }
            shared
        }
        Err(e) => {
            let _ = writeln!(out, "redis: FAILED: {e}");
            return (out, false);
        }
    };
    let launched = match launch_with(config, config.port, shared, Refresh::None) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(out, "configuration: FAILED: {e}");
            return (out, false);
        }
    };
    let server = &launched.server;
    let _ = writeln!(out, "resource: {}", server.resource_url());
    let _ = writeln!(out, "endpoint paths: {}", server.endpoint_paths().join(" "));
    let _ = writeln!(out, "metadata: {}", server.resource_metadata_url());
    let _ = writeln!(out, "issuer: {}", launched.issuer);
    if let Some(addr) = config.metrics_addr {
        let _ = writeln!(out, "metrics: http://{addr}/metrics");
    }
    if let Some(dev) = &launched.dev {
        let _ = writeln!(
            out,
            "jwks: built-in dev issuer, {} key(s)",
            dev.key_set().len()
        );
        let _ = writeln!(out, "check: ok");
        return (out, true);
    }
    let _ = writeln!(out, "jwks: {}", launched.jwks_url);
    let fetcher = match HttpFetcher::new(&launched.jwks_url, config.jwks_timeout, JWKS_MAX_BYTES) {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(out, "jwks: FAILED: {e}");
            return (out, false);
        }
    };
    let fetched = match fetcher.fetch().await {
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(out, "jwks fetch: FAILED: {e}");
            return (out, false);
        }
    };
    match KeySet::parse(&fetched.body) {
        Ok((set, skipped)) => {
            let kids: Vec<&str> = set
                .keys()
                .iter()
                .map(|k| k.kid.as_deref().unwrap_or("(no kid)"))
                .collect();
            let _ = writeln!(out, "jwks keys: {} usable ({})", set.len(), kids.join(", "));
            for s in &skipped {
                let _ = writeln!(
                    out,
                    "jwks key skipped: index={} kid={:?} reason={}",
                    s.index, s.kid, s.reason
                );
            }
            if let Some(age) = fetched.max_age {
                let _ = writeln!(out, "jwks cache-control max-age: {age} s");
            }
        }
        Err(e) => {
            let _ = writeln!(out, "jwks: FAILED: {e}");
            return (out, false);
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let _ = writeln!(out, "checked at: {now} (unix)");
    let _ = writeln!(out, "check: ok");
    (out, true)
}
