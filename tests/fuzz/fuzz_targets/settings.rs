//! Fuzz target: the binary's settings parser (`src/bin/vouch-mcp/settings.rs`, compiled in here as the tests do).
//!
//! Input: command-line arguments one per line, then a NUL byte, then `NAME=value` environment
//! lines. Invariants: parsing never panics and is deterministic; `--dev` never binds a
//! non-loopback host; values that must be positive are; every error message is non-empty.
#![no_main]

#[allow(dead_code)]
#[path = "../../../src/bin/vouch-mcp/settings.rs"]
mod settings;

use settings::{parse, Command};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (args, env) = text.split_once('\0').unwrap_or((&text, ""));
    let args: Vec<String> = args.lines().map(str::to_owned).collect();
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let lookup = |k: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let first = parse(&args, &lookup);
    assert_eq!(first, parse(&args, &lookup), "parsing is deterministic");
    match first {
        Ok(Command::Run(c) | Command::Check(c)) => {
            if c.dev {
                assert!(
                    matches!(c.host.as_str(), "localhost" | "::1" | "[::1]")
                        || c.host
                            .parse::<std::net::Ipv4Addr>()
                            .is_ok_and(|ip| ip.is_loopback()),
                    "--dev bound {:?}",
                    c.host
                );
            }
            assert!(c.max_body_bytes > 0 && c.page_size > 0 && c.max_sessions > 0);
            assert!(!c.sse_keepalive.is_zero() && !c.session_idle.is_zero());
            for u in [
                Some(&c.issuer),
                c.jwks_url.as_ref(),
                c.resource_url.as_ref(),
            ]
            .into_iter()
            .flatten()
            {
                assert!(
                    u.starts_with("https://") || u.starts_with("http://"),
                    "{u:?}"
                );
            }
            assert!(c
                .required_scopes
                .iter()
                .all(|s| !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))));
        }
        Ok(Command::Help | Command::Version) => {}
        Err(e) => assert!(!e.0.is_empty()),
    }
});
