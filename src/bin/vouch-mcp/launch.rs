//! Assembles the guide's server from a [`Config`]: key source, authenticator, the two tools, and the dev issuer.

use std::sync::Arc;

use ring::rand::SystemRandom;
use vouch_mcp::audit::AuditLog;
use vouch_mcp::auth::fetch::HttpFetcher;
use vouch_mcp::auth::refresh::RefreshPolicy;
use vouch_mcp::auth::{AudiencePolicy, Authenticator, JwksCache, Policy, TypPolicy};
use vouch_mcp::log::{self, Level};
use vouch_mcp::{BuildError, Server, ServerBuilder, TlsConfig};

use crate::dev::DevIssuer;
use crate::dev_routes;
use crate::guide;
use crate::settings::{read_state_key, Audit, Config, ConfigError, StepUpMode};

use vouch_mcp::defaults::JWKS_MAX_BYTES;

/// A server ready to serve, plus what the binary prints about it.
#[derive(Debug)]
pub(crate) struct Launched {
    /// The server.
    pub server: Server,
    /// The issuer tokens must come from.
    pub issuer: String,
    /// The JWKS URL being fetched.
    pub jwks_url: String,
    /// The dev issuer, under `--dev`.
    pub dev: Option<Arc<DevIssuer>>,
    /// The certificate and key, when the server speaks https.
    pub tls: Option<TlsConfig>,
    /// The verification policy in force.
    #[cfg_attr(not(test), allow(dead_code))]
    pub policy: Policy,
    /// The audit writer, reopened on SIGHUP when it writes a file.
    pub audit: Option<AuditLog>,
}

/// Whether the key cache starts fetching in the background (a `--check` fetches once itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    Background,
    None,
}

/// The shared backend, when `MCP_REDIS_URL` names one; connecting fails the start when Redis
/// does not answer (an orchestrator restarts the replica). The password is never shown.
#[cfg(feature = "redis")]
pub(crate) type Shared = vouch_mcp::redis::RedisBackend;
/// Without the `redis` feature there is no shared backend.
#[cfg(not(feature = "redis"))]
pub(crate) type Shared = std::convert::Infallible;

/// Connects to the shared backend named by the configuration, if any.
pub(crate) async fn connect_shared(config: &Config) -> Result<Option<Shared>, ConfigError> {
    let Some(url) = &config.redis_url else {
        return Ok(None);
    };
    #[cfg(feature = "redis")]
    {
        use vouch_mcp::redis::{RedisBackend, RedisConfig};
        let cfg = RedisConfig::new(url.clone()).prefix(config.redis_prefix.clone());
        RedisBackend::connect(cfg)
            .await
            .map(Some)
            .map_err(|e| ConfigError(format!("MCP_REDIS_URL: {e}")))
    }
    #[cfg(not(feature = "redis"))]
    {
        let _ = url;
        Err(ConfigError(
            "MCP_REDIS_URL is set, but this build has no Redis support (build with --features redis)"
                .into(),
        ))
    }
}

/// Builds the guide's server for a listener bound on `port`. Must run inside a tokio runtime
/// (it starts the JWKS refresher). The server starts even when the issuer is down.
pub(crate) fn launch(
    config: &Config,
    port: u16,
    shared: Option<Shared>,
) -> Result<Launched, ConfigError> {
    launch_with(config, port, shared, Refresh::Background)
}

/// [`launch`], choosing whether the key cache starts its background refresh.
pub(crate) fn launch_with(
    config: &Config,
    port: u16,
    shared: Option<Shared>,
    refresh: Refresh,
) -> Result<Launched, ConfigError> {
    let tls = match &config.tls {
        None => None,
        Some(files) => {
            let tls = TlsConfig::from_pem_files(&files.cert, &files.key)
                .map_err(|e| ConfigError(format!("MCP_TLS_CERT_FILE/MCP_TLS_KEY_FILE: {e}")))?;
            if !config.tls_watch.is_zero() {
                tls.watch(config.tls_watch)
                    .map_err(|e| ConfigError(format!("MCP_TLS_WATCH_SECS: {e}")))?;
            }
            Some(tls)
        }
    };
    let resource_url = config.resource_url_for(port);
    let dev = config.dev.then(|| {
        Arc::new(DevIssuer::generate(
            format!("http://127.0.0.1:{port}/dev"),
            "dev-key-1",
            &SystemRandom::new(),
        ))
    });
    let issuer = dev
        .as_ref()
        .map_or_else(|| config.issuer.clone(), |d| d.issuer().to_owned());
    let jwks_url = match (&dev, &config.jwks_url) {
        (Some(d), _) => format!("{}/oauth/jwks", d.issuer()),
        (None, Some(u)) => u.clone(),
        (None, None) => format!("{}/oauth/jwks", issuer.trim_end_matches('/')),
    };
    let fetcher = HttpFetcher::new(&jwks_url, config.jwks_timeout, JWKS_MAX_BYTES)
        .map_err(|e| ConfigError(format!("VOUCH_JWKS_URL={jwks_url:?}: {e}")))?;
    let refresh_policy = RefreshPolicy {
        unknown_kid_cooldown: config.jwks_refetch,
        ..RefreshPolicy::default()
    };
    // With no configured URL, OIDC discovery is the fallback when the guide's location is not
    // the issuer's JWKS (most issuers publish elsewhere).
    let keys = if dev.is_none() && config.jwks_url.is_none() {
        JwksCache::with_discovery(fetcher, &issuer, refresh_policy)
            .map_err(|e| ConfigError(format!("VOUCH_ISSUER={issuer:?}: {e}")))?
    } else {
        JwksCache::new(fetcher, refresh_policy)
    };
    if refresh == Refresh::Background {
        keys.spawn_refresher();
    }
    let audience = if config.skip_audience {
        log::write(
            Level::Warn,
            format_args!("audience check DISABLED (VOUCH_SKIP_AUDIENCE): tokens issued for any service are accepted"),
        );
        AudiencePolicy::DangerouslySkip
    } else {
        AudiencePolicy::OneOf(
            config
                .audiences
                .clone()
                .unwrap_or_else(|| vec![resource_url.clone()]),
        )
    };
    let mut policy = Policy::new(issuer.clone(), audience);
    policy.leeway_secs = config.leeway_secs;
    if config.require_at_jwt {
        policy.typ = TypPolicy::RequireAtJwt;
    }
    // The dev issuer signs ES256, whatever the list says.
    policy.algorithms = if dev.is_some() {
        vec![vouch_mcp::auth::Algorithm::Es256]
    } else {
        config.algorithms.clone()
    };
    let authenticator = Authenticator::new(
        policy.clone(),
        Arc::new(keys.clone()),
        config.required_scopes.clone(),
    )
    .with_verify_cache_entries(config.verify_cache_entries)
    .with_signature_failure_limit(config.signature_failures_per_minute)
    .with_signature_failure_delay(config.signature_failure_delay);
    let mut builder =
        ServerBuilder::new("vouch-mcp", env!("CARGO_PKG_VERSION"), resource_url.clone())
            .title("Vouch MCP example")
            .instructions("Tools that report and check the caller's Vouch identity.")
            .authenticator(authenticator)
            .tool(guide::whoami())
            .tool(match config.step_up {
                StepUpMode::Result => guide::sensitive_action(),
                StepUpMode::Challenge => guide::sensitive_action_challenge(),
            })
            .scopes_supported(config.required_scopes.clone())
            .allowed_hosts(config.allowed_hosts.clone())
            .allowed_origins(config.allowed_origins.clone())
            .max_body_bytes(config.max_body_bytes)
            .session_idle_timeout(config.session_idle)
            .max_sessions(config.max_sessions)
            .max_sessions_per_principal(config.max_sessions_per_principal)
            .max_inflight_bytes(config.max_inflight_bytes)
            .max_batch(config.max_batch)
            .max_calls_per_principal(config.max_calls_per_principal)
            .max_streams_per_principal(config.max_streams_per_principal)
            .max_streams(config.max_streams)
            .stream_lifetime(config.stream_max)
            .write_timeout(config.write_timeout)
            .idle_timeout(config.idle_timeout)
            .task_ttl(config.task_ttl)
            .task_lease(config.task_lease)
            .max_tasks(config.max_tasks)
            .max_tasks_per_principal(config.max_tasks_per_principal)
            .page_size(config.page_size)
            .sse_keepalive(config.sse_keepalive)
            .shutdown_grace(config.shutdown_grace)
            .trusted_proxies(config.trusted_proxies.clone());
    if let Some(n) = config.max_connections {
        builder = builder.max_connections(n);
    }
    if let Some(p) = &config.listen_path {
        builder = builder.endpoint_path(p.clone());
    }
    if config.metrics_addr.is_some() {
        builder = builder.metrics();
    }
    let audit =
        match &config.audit {
            Audit::Off => None,
            Audit::Stderr => Some(AuditLog::stderr()),
            Audit::File(path) => Some(AuditLog::file(path).map_err(|e| {
                ConfigError(format!("VOUCH_MCP_AUDIT={path:?} cannot be opened: {e}"))
            })?),
        };
    if let Some(a) = &audit {
        builder = builder.audit(Arc::new(a.clone()));
    }
    if let Some(path) = &config.state_key_file {
        builder = builder.state_key(read_state_key(path)?);
    }
    #[cfg(feature = "redis")]
    if let Some(backend) = shared {
        builder = builder.redis(backend);
    }
    #[cfg(not(feature = "redis"))]
    if let Some(never) = shared {
        match never {}
    }
    if let Some(d) = &dev {
        // The dev issuer's routes sit next to the MCP endpoint, on the server's fallback.
        let (d, resource) = (d.clone(), resource_url.clone());
        builder = builder.fallback(move |req| {
            let resp = dev_routes::route(&d, &resource, req);
            async move { resp }
        });
    }
    let server = builder.build().map_err(|e| {
        let setting = match e {
            BuildError::BadTrustedProxy(_) => "MCP_TRUSTED_PROXIES",
            BuildError::BadEndpointPath(_) => "MCP_LISTEN_PATH",
            _ => "MCP_RESOURCE_URL",
        };
        ConfigError(format!("{setting}: {e}"))
    })?;
    Ok(Launched {
        server,
        issuer,
        jwks_url,
        dev,
        tls,
        policy,
        audit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{self, Command};

    fn config(env: &[(&str, &str)]) -> Config {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match settings::parse(&[], &move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
        .unwrap()
        {
            Command::Run(c) | Command::Check(c) => *c,
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn default_jwks_url_is_the_guides() {
        let l = launch(
            &config(&[("VOUCH_ISSUER", "https://issuer.example")]),
            3000,
            None,
        )
        .unwrap();
        assert_eq!(l.jwks_url, "https://issuer.example/oauth/jwks");
        assert_eq!(l.issuer, "https://issuer.example");
        assert_eq!(l.server.resource_url(), "http://localhost:3000/mcp");
        assert_eq!(
            l.policy.audience,
            AudiencePolicy::OneOf(vec!["http://localhost:3000/mcp".into()])
        );
        assert_eq!(
            (l.policy.leeway_secs, l.policy.typ),
            (60, TypPolicy::Lenient)
        );
    }

    #[tokio::test]
    async fn settings_reach_the_policy() {
        let l = launch(
            &config(&[
                ("VOUCH_ISSUER", "https://issuer.example"),
                ("VOUCH_JWKS_URL", "https://keys.example/jwks.json"),
                (
                    "VOUCH_AUDIENCE",
                    "https://a.example/mcp, https://b.example/mcp",
                ),
                ("VOUCH_LEEWAY_SECS", "5"),
                ("VOUCH_REQUIRE_AT_JWT", "true"),
            ]),
            3000,
            None,
        )
        .unwrap();
        assert_eq!(l.jwks_url, "https://keys.example/jwks.json");
        assert_eq!(
            l.policy.audience,
            AudiencePolicy::OneOf(vec![
                "https://a.example/mcp".into(),
                "https://b.example/mcp".into()
            ])
        );
        assert_eq!(
            (l.policy.leeway_secs, l.policy.typ),
            (5, TypPolicy::RequireAtJwt)
        );
        let l = launch(&config(&[("VOUCH_SKIP_AUDIENCE", "1")]), 3000, None).unwrap();
        assert_eq!(l.policy.audience, AudiencePolicy::DangerouslySkip);
    }

    #[tokio::test]
    async fn the_endpoint_follows_the_resource_url_unless_a_listen_path_is_set() {
        let l = launch(
            &config(&[("MCP_RESOURCE_URL", "https://h.example/tools/mcp")]),
            3000,
            None,
        )
        .unwrap();
        assert_eq!(l.server.endpoint_paths(), ["/tools/mcp", "/tools/mcp/"]);
        let l = launch(
            &config(&[
                ("MCP_RESOURCE_URL", "https://h.example/tools/mcp"),
                ("MCP_LISTEN_PATH", "/mcp/"),
            ]),
            3000,
            None,
        )
        .unwrap();
        assert_eq!(l.server.endpoint_paths(), ["/mcp", "/mcp/"]);
        assert_eq!(
            l.server.resource_metadata_url(),
            "https://h.example/.well-known/oauth-protected-resource/tools/mcp"
        );
    }

    #[tokio::test]
    async fn plain_http_jwks_to_a_remote_host_is_a_configuration_error() {
        let err = launch(
            &config(&[("VOUCH_ISSUER", "http://issuer.example")]),
            3000,
            None,
        )
        .unwrap_err();
        assert!(err.0.contains("VOUCH_JWKS_URL"), "{err}");
    }
}
