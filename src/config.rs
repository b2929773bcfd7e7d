//! The binary's configuration: every setting from an environment variable or a flag, with defaults; pure.

use std::time::Duration;

use crate::auth::challenge::is_scope_token;
use crate::log::Level;

/// One setting: env variable, flag, default shown in `--help`, and what it does.
struct Setting {
    env: &'static str,
    flag: &'static str,
    default: &'static str,
    help: &'static str,
}

const SETTINGS: &[Setting] = &[
    Setting {
        env: "VOUCH_ISSUER",
        flag: "--issuer",
        default: "https://us.vouch.sh",
        help: "token issuer; `iss` must equal it byte for byte",
    },
    Setting {
        env: "VOUCH_JWKS_URL",
        flag: "--jwks-url",
        default: "{issuer}/oauth/jwks",
        help: "JWKS location (https, or http on loopback only)",
    },
    Setting {
        env: "MCP_RESOURCE_URL",
        flag: "--resource-url",
        default: "http://localhost:{PORT}/mcp",
        help: "canonical public URL of the MCP endpoint",
    },
    Setting {
        env: "VOUCH_AUDIENCE",
        flag: "--audience",
        default: "{resource url}",
        help: "accepted `aud` values, comma-separated",
    },
    Setting {
        env: "VOUCH_SKIP_AUDIENCE",
        flag: "--insecure-skip-audience",
        default: "false",
        help: "accept tokens for any audience (insecure; the guide's verify_aud=False)",
    },
    Setting {
        env: "VOUCH_REQUIRED_SCOPES",
        flag: "--required-scopes",
        default: "",
        help: "scopes every request needs, space- or comma-separated",
    },
    Setting {
        env: "VOUCH_LEEWAY_SECS",
        flag: "--leeway-secs",
        default: "60",
        help: "clock skew allowed for exp/nbf/iat",
    },
    Setting {
        env: "VOUCH_REQUIRE_AT_JWT",
        flag: "--require-at-jwt",
        default: "false",
        help: "accept only typ at+jwt (RFC 9068)",
    },
    Setting {
        env: "VOUCH_ALGORITHMS",
        flag: "--algorithms",
        default: "ES256",
        help: "accepted token algorithms, comma-separated: ES256, RS256, PS256, EdDSA",
    },
    Setting {
        env: "VOUCH_VERIFY_CACHE_ENTRIES",
        flag: "--verify-cache-entries",
        default: "65536",
        help: "verified tokens remembered (0 turns the cache off)",
    },
    Setting {
        env: "VOUCH_SIGNATURE_FAILURES_PER_MINUTE",
        flag: "--signature-failures-per-minute",
        default: "60",
        help: "bad token signatures allowed per client address a minute before 429 (0: no limit)",
    },
    Setting {
        env: "VOUCH_SIGNATURE_FAILURE_DELAY_MS",
        flag: "--signature-failure-delay-ms",
        default: "500",
        help:
            "hold back each bad-signature refusal (401 or 429) this long; slows forged-token floods",
    },
    Setting {
        env: "VOUCH_JWKS_TIMEOUT_SECS",
        flag: "--jwks-timeout-secs",
        default: "5",
        help: "JWKS connect and read timeout",
    },
    Setting {
        env: "VOUCH_JWKS_REFETCH_SECS",
        flag: "--jwks-refetch-secs",
        default: "30",
        help: "least time between refetches for an unknown kid",
    },
    Setting {
        env: "HOST",
        flag: "--host",
        default: "0.0.0.0",
        help: "address to bind (--dev: 127.0.0.1 only)",
    },
    Setting {
        env: "PORT",
        flag: "--port",
        default: "3000",
        help: "port to bind (0 picks a free one)",
    },
    Setting {
        env: "MCP_ALLOWED_HOSTS",
        flag: "--allowed-hosts",
        default: "",
        help: "extra Host names allowed besides the resource URL's and loopback; * for any",
    },
    Setting {
        env: "MCP_ALLOWED_ORIGINS",
        flag: "--allowed-origins",
        default: "",
        help: "extra browser origins allowed, comma-separated",
    },
    Setting {
        env: "MCP_MAX_BODY_BYTES",
        flag: "--max-body-bytes",
        default: "4194304",
        help: "request body cap (413 beyond)",
    },
    Setting {
        env: "MCP_SESSION_IDLE_SECS",
        flag: "--session-idle-secs",
        default: "1800",
        help: "idle time before a session expires",
    },
    Setting {
        env: "MCP_MAX_SESSIONS",
        flag: "--max-sessions",
        default: "10000",
        help: "open sessions cap (503 beyond)",
    },
    Setting {
        env: "MCP_PAGE_SIZE",
        flag: "--page-size",
        default: "50",
        help: "tools per tools/list page",
    },
    Setting {
        env: "MCP_SSE_KEEPALIVE_SECS",
        flag: "--sse-keepalive-secs",
        default: "15",
        help: "SSE keep-alive comment interval",
    },
    Setting {
        env: "MCP_SHUTDOWN_GRACE_SECS",
        flag: "--shutdown-grace-secs",
        default: "10",
        help: "time in-flight requests get on SIGINT/SIGTERM",
    },
    Setting {
        env: "VOUCH_MCP_LOG",
        flag: "--log",
        default: "info",
        help: "log level: off, error, warn, info, debug",
    },
];

/// Flags that take no value.
const BOOLEAN_FLAGS: &[&str] = &["--insecure-skip-audience", "--require-at-jwt"];

/// The resolved configuration. URLs that depend on the bound port are finished by [`Config::resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `--dev`: loopback only, in-process issuer.
    pub dev: bool,
    /// Issuer (ignored under `--dev`).
    pub issuer: String,
    /// JWKS URL, if set.
    pub jwks_url: Option<String>,
    /// Resource URL, if set.
    pub resource_url: Option<String>,
    /// Audiences, if set.
    pub audiences: Option<Vec<String>>,
    /// Skip the audience check.
    pub skip_audience: bool,
    /// Server-wide scopes.
    pub required_scopes: Vec<String>,
    /// Leeway in seconds.
    pub leeway_secs: u64,
    /// Require typ at+jwt.
    pub require_at_jwt: bool,
    /// Accepted signature algorithms.
    pub algorithms: Vec<crate::auth::Algorithm>,
    /// Size of the verification cache.
    pub verify_cache_entries: usize,
    /// Signature failures allowed per client address a minute (0: no limit).
    pub signature_failures_per_minute: u32,
    /// Delay before a bad-signature refusal.
    pub signature_failure_delay: Duration,
    /// JWKS timeout.
    pub jwks_timeout: Duration,
    /// Unknown-kid refetch cooldown.
    pub jwks_refetch: Duration,
    /// Bind address.
    pub host: String,
    /// Bind port.
    pub port: u16,
    /// Extra hosts.
    pub allowed_hosts: Vec<String>,
    /// Extra origins.
    pub allowed_origins: Vec<String>,
    /// Body cap.
    pub max_body_bytes: u64,
    /// Session idle expiry.
    pub session_idle: Duration,
    /// Session cap.
    pub max_sessions: usize,
    /// tools/list page size.
    pub page_size: usize,
    /// SSE keep-alive.
    pub sse_keepalive: Duration,
    /// Shutdown grace.
    pub shutdown_grace: Duration,
    /// Log level.
    pub log: Level,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Run the server.
    Run(Box<Config>),
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// A configuration error; the message names the variable or flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Usage text listing every setting with its default.
pub fn usage() -> String {
    let mut s = String::from(
        "vouch-mcp: MCP remote server with Vouch OIDC (ES256) authorization\n\n\
         USAGE: vouch-mcp [--dev] [--FLAG VALUE]...\n\n\
         --dev    run with a built-in dev issuer on 127.0.0.1 and print ready tokens (flag only)\n\
         --help   this text;  --version  the version\n\n\
         Each setting is an environment variable or a flag (the flag wins):\n\n",
    );
    for st in SETTINGS {
        s.push_str(&format!(
            "  {:<24} {:<28} default: {}\n      {}\n",
            st.env,
            st.flag,
            if st.default.is_empty() {
                "(none)"
            } else {
                st.default
            },
            st.help
        ));
    }
    s
}

fn lookup<'a>(
    flags: &'a [(String, Option<String>)],
    env: &'a dyn Fn(&str) -> Option<String>,
    st: &Setting,
) -> Option<(String, String)> {
    for (flag, value) in flags.iter().rev() {
        if flag == st.flag {
            let v = value.clone().unwrap_or_else(|| "true".into());
            return Some((v, st.flag.to_owned()));
        }
    }
    env(st.env).map(|v| (v, st.env.to_owned()))
}

fn setting(name: &str) -> &'static Setting {
    SETTINGS
        .iter()
        .find(|s| s.env == name)
        .expect("known setting")
}

/// Parses `args` (without the program name) and the environment.
pub fn parse(
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Command, ConfigError> {
    let mut flags: Vec<(String, Option<String>)> = Vec::new();
    let mut dev = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--help" | "-h" => return Ok(Command::Help),
            "--version" | "-V" => return Ok(Command::Version),
            "--dev" => dev = true,
            a if a.starts_with("--") => {
                let (name, inline) = match a.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (a, None),
                };
                if !SETTINGS.iter().any(|s| s.flag == name) {
                    return Err(ConfigError(format!("unknown flag {name} (see --help)")));
                }
                let value = if inline.is_some() || BOOLEAN_FLAGS.contains(&name) {
                    inline
                } else {
                    Some(
                        it.next()
                            .cloned()
                            .ok_or_else(|| ConfigError(format!("{name} needs a value")))?,
                    )
                };
                flags.push((name.to_owned(), value));
            }
            a => {
                return Err(ConfigError(format!(
                    "unexpected argument {a:?} (see --help)"
                )))
            }
        }
    }
    let get = |name: &str| lookup(&flags, env, setting(name));
    let text = |name: &str| {
        get(name)
            .map(|(v, _)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let num = |name: &str| -> Result<Option<u64>, ConfigError> {
        match get(name) {
            None => Ok(None),
            Some((v, src)) => v
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ConfigError(format!("{src}={v:?} is not a whole number"))),
        }
    };
    let boolean = |name: &str| -> Result<bool, ConfigError> {
        match get(name) {
            None => Ok(false),
            Some((v, src)) => match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                _ => Err(ConfigError(format!("{src}={v:?} is not true or false"))),
            },
        }
    };
    let list = |name: &str| -> Vec<String> {
        text(name)
            .map(|v| {
                v.split([',', ' '])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let secs = |name: &str, default: u64| -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(num(name)?.unwrap_or(default)))
    };

    let issuer = text("VOUCH_ISSUER").unwrap_or_else(|| "https://us.vouch.sh".into());
    let port = match num("PORT")? {
        None => 3000,
        Some(p) => {
            u16::try_from(p).map_err(|_| ConfigError(format!("PORT={p} is out of range")))?
        }
    };
    let host = text("HOST").unwrap_or_else(|| if dev { "127.0.0.1" } else { "0.0.0.0" }.into());
    if dev && !crate::auth::fetch::is_loopback_host(&host) {
        return Err(ConfigError(format!(
            "--dev binds loopback only; refusing host {host} (from HOST or --host; use 127.0.0.1)"
        )));
    }
    let required_scopes = list("VOUCH_REQUIRED_SCOPES");
    if let Some(bad) = required_scopes.iter().find(|s| !is_scope_token(s)) {
        return Err(ConfigError(format!(
            "VOUCH_REQUIRED_SCOPES has an invalid scope {bad:?}"
        )));
    }
    for (name, url) in [
        ("MCP_RESOURCE_URL", text("MCP_RESOURCE_URL")),
        ("VOUCH_ISSUER", Some(issuer.clone())),
        ("VOUCH_JWKS_URL", text("VOUCH_JWKS_URL")),
    ] {
        if let Some(url) = url {
            if crate::auth::metadata::split_url(&url).is_none() {
                return Err(ConfigError(format!(
                    "{name}={url:?} is not an absolute http(s) URL"
                )));
            }
        }
    }
    let log = match text("VOUCH_MCP_LOG") {
        None => Level::Info,
        Some(v) => Level::parse(&v).ok_or_else(|| {
            ConfigError(format!(
                "VOUCH_MCP_LOG={v:?} is not off, error, warn, info or debug"
            ))
        })?,
    };
    let positive = |name: &str, default: u64| -> Result<u64, ConfigError> {
        let v = num(name)?.unwrap_or(default);
        if v == 0 {
            return Err(ConfigError(format!("{name} must be greater than 0")));
        }
        Ok(v)
    };
    let audiences = {
        let a = list("VOUCH_AUDIENCE");
        (!a.is_empty()).then_some(a)
    };
    let algorithms = match text("VOUCH_ALGORITHMS") {
        None => vec![crate::auth::Algorithm::Es256],
        Some(v) => crate::auth::Algorithm::parse_list(&v)
            .map_err(|e| ConfigError(format!("VOUCH_ALGORITHMS={v:?}: {e}")))?,
    };
    let signature_failures_per_minute = u32::try_from(
        num("VOUCH_SIGNATURE_FAILURES_PER_MINUTE")?
            .unwrap_or(crate::auth::limiter::DEFAULT_PER_MINUTE as u64),
    )
    .map_err(|_| ConfigError("VOUCH_SIGNATURE_FAILURES_PER_MINUTE is out of range".into()))?;
    Ok(Command::Run(Box::new(Config {
        dev,
        issuer,
        jwks_url: text("VOUCH_JWKS_URL"),
        resource_url: text("MCP_RESOURCE_URL"),
        audiences,
        skip_audience: boolean("VOUCH_SKIP_AUDIENCE")?,
        required_scopes,
        leeway_secs: num("VOUCH_LEEWAY_SECS")?.unwrap_or(60),
        require_at_jwt: boolean("VOUCH_REQUIRE_AT_JWT")?,
        algorithms,
        verify_cache_entries: num("VOUCH_VERIFY_CACHE_ENTRIES")?
            .unwrap_or(crate::auth::cache::DEFAULT_ENTRIES as u64)
            as usize,
        signature_failures_per_minute,
        signature_failure_delay: Duration::from_millis(
            num("VOUCH_SIGNATURE_FAILURE_DELAY_MS")?.unwrap_or(500),
        ),
        jwks_timeout: Duration::from_secs(positive("VOUCH_JWKS_TIMEOUT_SECS", 5)?),
        jwks_refetch: secs("VOUCH_JWKS_REFETCH_SECS", 30)?,
        host,
        port,
        allowed_hosts: list("MCP_ALLOWED_HOSTS"),
        allowed_origins: list("MCP_ALLOWED_ORIGINS"),
        max_body_bytes: positive("MCP_MAX_BODY_BYTES", 4 * 1024 * 1024)?,
        session_idle: Duration::from_secs(positive("MCP_SESSION_IDLE_SECS", 1800)?),
        max_sessions: positive("MCP_MAX_SESSIONS", 10_000)? as usize,
        page_size: positive("MCP_PAGE_SIZE", 50)? as usize,
        sse_keepalive: Duration::from_secs(positive("MCP_SSE_KEEPALIVE_SECS", 15)?),
        shutdown_grace: secs("MCP_SHUTDOWN_GRACE_SECS", 10)?,
        log,
    })))
}

impl Config {
    /// The resource URL once the real port is known.
    pub fn resource_url_for(&self, port: u16) -> String {
        self.resource_url
            .clone()
            .unwrap_or_else(|| format!("http://localhost:{port}/mcp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        match parse(&args, &lookup)? {
            Command::Run(c) => Ok(*c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_match_the_guide() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.issuer, "https://us.vouch.sh");
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 3000));
        assert_eq!(c.resource_url_for(3000), "http://localhost:3000/mcp");
        assert!(!c.skip_audience);
    }

    #[test]
    fn flag_overrides_env() {
        let c = run(&["--port", "8080"], &[("PORT", "9000")]).unwrap();
        assert_eq!(c.port, 8080);
        let c = run(&["--port=7"], &[]).unwrap();
        assert_eq!(c.port, 7);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        assert!(run(&[], &[("PORT", "abc")]).unwrap_err().0.contains("PORT"));
        assert!(run(&[], &[("VOUCH_SKIP_AUDIENCE", "maybe")])
            .unwrap_err()
            .0
            .contains("VOUCH_SKIP_AUDIENCE"));
        assert!(run(&[], &[("VOUCH_REQUIRED_SCOPES", "a\"b")])
            .unwrap_err()
            .0
            .contains("VOUCH_REQUIRED_SCOPES"));
        assert!(run(&[], &[("MCP_RESOURCE_URL", "localhost/mcp")])
            .unwrap_err()
            .0
            .contains("MCP_RESOURCE_URL"));
        assert!(run(&["--bogus"], &[]).unwrap_err().0.contains("--bogus"));
    }

    #[test]
    fn dev_refuses_public_bind() {
        assert!(run(&["--dev", "--host", "0.0.0.0"], &[]).is_err());
        assert_eq!(run(&["--dev"], &[]).unwrap().host, "127.0.0.1");
    }

    #[test]
    fn auth_hardening_settings_parse_with_defaults() {
        let c = run(&[], &[]).unwrap();
        assert_eq!(c.algorithms, [crate::auth::Algorithm::Es256]);
        assert_eq!(c.verify_cache_entries, 65_536);
        assert_eq!(c.signature_failures_per_minute, 60);
        assert_eq!(c.signature_failure_delay, Duration::from_millis(500));
        let c = run(
            &[
                "--algorithms",
                "RS256,EdDSA",
                "--verify-cache-entries",
                "10",
            ],
            &[("VOUCH_SIGNATURE_FAILURES_PER_MINUTE", "0")],
        )
        .unwrap();
        assert_eq!(
            c.algorithms,
            [crate::auth::Algorithm::Rs256, crate::auth::Algorithm::EdDsa]
        );
        assert_eq!(
            (c.verify_cache_entries, c.signature_failures_per_minute),
            (10, 0)
        );
        let err = run(&[], &[("VOUCH_ALGORITHMS", "ES256,HS256")]).unwrap_err();
        assert!(
            err.0.contains("VOUCH_ALGORITHMS") && err.0.contains("HS256"),
            "{err}"
        );
    }

    #[test]
    fn leeway_and_typ_settings_parse_and_name_their_variable() {
        let c = run(&["--leeway-secs", "5", "--require-at-jwt"], &[]).unwrap();
        assert_eq!((c.leeway_secs, c.require_at_jwt), (5, true));
        assert!(run(&[], &[("VOUCH_LEEWAY_SECS", "-1")])
            .unwrap_err()
            .0
            .contains("VOUCH_LEEWAY_SECS"));
        assert!(run(&[], &[("VOUCH_ISSUER", "us.vouch.sh")])
            .unwrap_err()
            .0
            .contains("VOUCH_ISSUER"));
        let c = run(&[], &[("VOUCH_AUDIENCE", "a,b c")]).unwrap();
        assert_eq!(c.audiences.unwrap(), ["a", "b", "c"]);
    }

    #[test]
    fn boolean_flags_take_no_value() {
        let c = run(&["--insecure-skip-audience", "--port", "1"], &[]).unwrap();
        assert!(c.skip_audience);
        assert_eq!(c.port, 1);
    }
}
