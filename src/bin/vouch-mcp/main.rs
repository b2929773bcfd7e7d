//! The `vouch-mcp` binary: read the configuration, bind, print the dev banner if asked, serve until a signal.

mod allocator;
mod dev;
mod dev_routes;
mod guide;
mod launch;
mod nofile;
mod settings;

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use vouch_mcp::log::{self, Level};

use launch::launch;
use settings::Command;

fn main() -> ExitCode {
    // First, while the process is one thread: glibc reads its malloc tunables only at start.
    allocator::reexec_with_tunables();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match settings::parse(&args, &|k| std::env::var(k).ok()) {
        Ok(Command::Run(c)) => c,
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
            return ExitCode::from(2);
        }
    };
    log::set_level(config.log);
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
    let launched = match launch(&config, port) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vouch-mcp: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    log::write(
        Level::Info,
        format_args!(
            "listening: addr={}:{port} resource={} issuer={} jwks={}",
            config.host,
            launched.server.resource_url(),
            launched.issuer,
            launched.jwks_url
        ),
    );
    if let Some(dev) = &launched.dev {
        print_dev_banner(dev, launched.server.resource_url(), port);
    }
    let served = match launched.tls {
        Some(tls) => {
            reload_on_sighup(tls.clone());
            launched
                .server
                .serve_tls(listener, tls, shutdown_signal())
                .await
        }
        None => launched.server.serve(listener, shutdown_signal()).await,
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

/// Rereads the TLS certificate and key on every SIGHUP; a refused pair is logged and the pair
/// in use stays.
fn reload_on_sighup(tls: vouch_mcp::TlsConfig) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(h) => h,
            Err(e) => {
                log::write(
                    Level::Warn,
                    format_args!("tls: no SIGHUP reloads (cannot listen for SIGHUP: {e})"),
                );
                return;
            }
        };
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
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
        });
    }
    #[cfg(not(unix))]
    let _ = tls;
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
