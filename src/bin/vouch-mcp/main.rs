//! The `vouch-mcp` binary: read the configuration, bind, print the dev banner if asked, serve until a signal.

mod allocator;
mod check;
mod dev;
mod dev_routes;
mod guide;
mod launch;
mod nofile;
mod settings;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use vouch_mcp::log::{self, Level, StderrSink};
use vouch_mcp::CancelToken;

use launch::launch;
use settings::Command;

fn main() -> ExitCode {
    // First, while the process is one thread: glibc reads its malloc tunables only at start.
    allocator::reexec_with_tunables();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let checking = args.iter().any(|a| a == "--check");
    let (config, check) = match settings::parse(&args, &|k| std::env::var(k).ok()) {
        Ok(Command::Run(c)) => (c, false),
        Ok(Command::Check(c)) => (c, true),
        Ok(Command::Help) => {
            print!("{}", settings::usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("vouch-mcp {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("vouch-mcp: configuration error: {e}");
            // A preflight answers 0 or 1; a server refuses a bad configuration with 2.
            return ExitCode::from(if checking { 1 } else { 2 });
        }
    };
    // The binary always logs to stderr, whatever sink the library's features make the default.
    log::install_sink(Arc::new(StderrSink::start()));
    log::set_level(config.log);
    log::set_format(config.log_format);
    // Before the server is built: its default connection cap is a fraction of this limit.
    match nofile::raise() {
        nofile::Outcome::Unchanged(n) => {
            log::write(Level::Info, format_args!("open-file limit: {n}"));
        }
        nofile::Outcome::Raised { from, to } => log::write(
            Level::Info,
            format_args!("open-file limit: raised from {from} to {to} (the hard limit)"),
        ),
        nofile::Outcome::Kept { soft, hard, why } => log::write(
            Level::Warn,
            format_args!("open-file limit: kept at {soft} below the hard limit {hard}: {why}"),
        ),
        nofile::Outcome::Unknown => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch-mcp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if check {
        let (report, ok) = runtime.block_on(check::check(&config));
        print!("{report}");
        log::flush();
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    runtime.block_on(run(*config))
}

async fn run(config: settings::Config) -> ExitCode {
    let listener = match TcpListener::bind((config.host.as_str(), config.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "vouch-mcp: cannot bind {}:{}: {e}",
                config.host, config.port
            );
            return ExitCode::FAILURE;
        }
    };
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(config.port);
    let shared = match launch::connect_shared(&config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vouch-mcp: {e}");
            return ExitCode::FAILURE;
        }
    };
    let launched = match launch(&config, port, shared) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vouch-mcp: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = CancelToken::new();
    let metrics = match config.metrics_addr {
        None => None,
        Some(addr) => match TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            // The --dev default may be taken by another dev server: run without metrics then.
            Err(e) if config.metrics_default => {
                log::write(
                    Level::Warn,
                    format_args!(
                        "metrics not served: cannot bind {addr}: {e} (set MCP_METRICS_ADDR)"
                    ),
                );
                None
            }
            Err(e) => {
                eprintln!(
                    "vouch-mcp: cannot bind the metrics listener MCP_METRICS_ADDR={addr}: {e}"
                );
                return ExitCode::FAILURE;
            }
        },
    };
    let metrics_addr = metrics
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .map_or_else(|| "off".to_owned(), |a| a.to_string());
    if let Some(l) = metrics {
        let (server, stop) = (launched.server.clone(), stop.clone());
        tokio::spawn(async move {
            let _ = server
                .serve_metrics(l, async move { stop.cancelled().await })
                .await;
        });
    }
    let audit = match (launched.audit.clone(), &config.audit) {
        (Some(audit), settings::Audit::File(_)) => Some(audit),
        _ => None,
    };
    if launched.tls.is_some() || audit.is_some() {
        on_sighup(launched.tls.clone(), audit);
    }
    log::write(
        Level::Info,
        format_args!(
            "listening: addr={}:{port} resource={} paths={} issuer={} jwks={} metrics={metrics_addr}",
            config.host,
            launched.server.resource_url(),
            launched.server.endpoint_paths().join(","),
            launched.issuer,
            launched.jwks_url
        ),
    );
    if let Some(dev) = &launched.dev {
        print_dev_banner(dev, launched.server.resource_url(), port);
    }
    let signal = {
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    };
    let served = match launched.tls {
        Some(tls) => launched.server.serve_tls(listener, tls, signal).await,
        None => launched.server.serve(listener, signal).await,
    };
    let code = match served {
        Ok(()) => {
            log::write(Level::Info, format_args!("stopped"));
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::write(Level::Error, format_args!("server error: {e}"));
            ExitCode::FAILURE
        }
    };
    // The writer thread does not outlive `main`: the last lines must be out before it returns.
    log::flush();
    code
}

fn print_dev_banner(dev: &dev::DevIssuer, resource: &str, port: u16) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let plain = dev.mint(&dev.claims(resource, "dev-user", "dev@example.com", false, now, 3600));
    let hardware = dev.mint(&dev.claims(resource, "dev-user", "dev@example.com", true, now, 3600));
    let base = format!("http://127.0.0.1:{port}");
    println!(
        "\n\
################################################################################\n\
#  DEV MODE: built-in issuer with a throwaway key. Never use this in production.\n\
#  Bound to 127.0.0.1 only.\n\
################################################################################\n\n\
MCP endpoint:   {resource}\n\
Issuer:         {issuer}\n\
JWKS:           {issuer}/oauth/jwks\n\n\
Token (hardware_verified=false, valid 1 h):\n{plain}\n\n\
Token (hardware_verified=true, valid 1 h):\n{hardware}\n\n\
Try it (2026-07-28, stateless):\n\
  TOKEN={hardware}\n\
  curl -s {base}/mcp -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n\
    -H 'Accept: application/json, text/event-stream' -H 'MCP-Protocol-Version: 2026-07-28' \\\n\
    -H 'Mcp-Method: tools/call' -H 'Mcp-Name: whoami' \\\n\
    -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"whoami\",\"arguments\":{{}},\"_meta\":{{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{{}}}}}}}}'\n\n\
Mint more tokens:\n\
  curl -s -X POST {issuer}/token -d '{{\"sub\":\"bob\",\"email\":\"bob@example.com\",\"hardware_verified\":true,\"ttl_secs\":600}}'\n",
        issuer = dev.issuer(),
    );
}

/// On every SIGHUP: rereads the TLS certificate and key (a refused pair is logged and the pair
/// in use stays) and reopens the audit file (log rotation: move the file, then `kill -HUP`).
fn on_sighup(tls: Option<vouch_mcp::TlsConfig>, audit: Option<vouch_mcp::audit::AuditLog>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                log::write(
                    Level::Warn,
                    format_args!("no SIGHUP reloads (cannot listen for SIGHUP: {e})"),
                );
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                if let Some(tls) = &tls {
                    match tls.reload() {
                        Ok(()) => log::write(
                            Level::Info,
                            format_args!("tls: SIGHUP: reloaded the certificate and key"),
                        ),
                        Err(e) => log::write(
                            Level::Warn,
                            format_args!(
                                "tls: SIGHUP: reload refused, keeping the certificate in use: {e}"
                            ),
                        ),
                    }
                }
                if let Some(audit) = &audit {
                    audit.reopen();
                    log::write(
                        Level::Info,
                        format_args!("SIGHUP: reopening the audit file"),
                    );
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (tls, audit);
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
