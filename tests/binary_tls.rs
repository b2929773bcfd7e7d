//! The real `vouch-mcp` binary speaking https: the resource URL defaults to https, SIGHUP reloads under load with no failed request (keep-alive and fresh connections), and a refused pair on SIGHUP is logged and kept out.
//!
//! The binary runs against a loopback JWKS server of a test issuer, on a free loopback port,
//! and is always killed (a guard with `Drop`). Every wait and every load is bounded.

mod tls_support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::Version;
use tls_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[path = "../src/bin/vouch-mcp/dev.rs"]
#[allow(dead_code)]
mod dev;
use dev::DevIssuer;

const BIN: &str = env!("CARGO_BIN_EXE_vouch-mcp");

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Serves `jwks` at any path over plain HTTP on loopback.
async fn jwks_server(jwks: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let jwks = jwks.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{jwks}",
                    jwks.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

/// The binary; killed on drop. Its stderr is collected.
struct Proc {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn hup(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP");
    }

    async fn wait_stderr(&self, what: &str, pred: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pred(&self.stderr()) {
            assert!(
                Instant::now() < deadline,
                "no {what} in stderr within 10 s:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the binary with TLS from `cert`/`key`, SIGHUP reloads only (no file watching).
async fn start(iss_port: u16, cert: &std::path::Path, key: &std::path::Path, ca: &Ca) -> Proc {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let issuer = format!("http://127.0.0.1:{iss_port}");
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("VOUCH_ISSUER", &issuer)
        .env("VOUCH_JWKS_URL", format!("{issuer}/jwks"))
        .env("MCP_TLS_CERT_FILE", cert)
        .env("MCP_TLS_KEY_FILE", key)
        .env("MCP_TLS_WATCH_SECS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                return;
            }
            sink.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    });
    let p = Proc {
        child,
        port,
        stderr,
    };
    let addr = ([127, 0, 0, 1], port).into();
    let deadline = Instant::now() + Duration::from_secs(15);
    while tls_connect(addr, &ca.der(), &[]).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the binary did not come up:\n{}",
            p.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_under_load_with_no_failed_request_and_a_bad_pair_is_kept_out() {
    let iss = DevIssuer::from_secret("http://127.0.0.1:1", "k1", [5u8; 32]).unwrap();
    let iss_port = jwks_server(iss.jwks().to_string()).await;
    let iss =
        DevIssuer::from_secret(format!("http://127.0.0.1:{iss_port}"), "k1", [5u8; 32]).unwrap();
    let ca = Ca::new("test CA");
    let dir = temp_dir("binary");
    let pairs = [ca.leaf(), ca.leaf()];
    let (cert, key) = pairs[0].write(&dir);
    let mut p = start(iss_port, &cert, &key, &ca).await;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], p.port).into();
    let url = format!("https://localhost:{}/mcp", p.port);

    // MCP_RESOURCE_URL defaulted to https: the challenge's metadata URL says so.
    let (stream, _) = tls_connect(addr, &ca.der(), &[]).await.unwrap();
    let mut c = Client::http1(stream).await;
    let a = c
        .send(request(Version::HTTP_11, "POST", &url, &[], b""))
        .await
        .unwrap();
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        format!(
            "Bearer resource_metadata=\"https://localhost:{}/.well-known/oauth-protected-resource/mcp\"",
            p.port
        )
    );
    let token = iss.mint(&iss.claims(&url, "carol", "carol@example.com", true, now(), 600));
    // The key set is fetched at start; wait until a call succeeds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = c
            .send(whoami_modern(Version::HTTP_11, &url, &token))
            .await
            .unwrap();
        if a.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "whoami never succeeded: {}",
            a.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Load: 4 workers on keep-alive connections, 4 opening a connection per request, while
    // the pair on disk alternates and SIGHUP is sent 10 times. Bounded: 8 s or 4000 requests.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let leaves = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (stop, ok, failed, leaves, failures) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            leaves.clone(),
            failures.clone(),
        );
        let (ca, url, token) = (ca.der(), url.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let keep_alive = w < 4;
            let mut client: Option<Client> = None;
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed)
                && started.elapsed() < Duration::from_secs(8)
                && ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < 4000
            {
                if client.is_none() || !keep_alive {
                    match tls_connect(addr, &ca, &[b"http/1.1"]).await {
                        Ok((stream, seen)) => {
                            {
                                let mut l = leaves.lock().unwrap();
                                if !l.contains(&seen.leaf) {
                                    l.push(seen.leaf);
                                }
                            }
                            client = Some(Client::http1(stream).await);
                        }
                        Err(e) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            failures.lock().unwrap().push(format!("connect: {e}"));
                            continue;
                        }
                    }
                }
                let c = client.as_mut().unwrap();
                match c.send(whoami_modern(Version::HTTP_11, &url, &token)).await {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("status {}", a.status));
                    }
                    Err(e) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        failures.lock().unwrap().push(format!("request: {e}"));
                        client = None;
                    }
                }
            }
        }));
    }
    for i in 1..=10 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        pairs[i % 2].write(&dir);
        p.hup();
        let want = i;
        p.wait_stderr("the SIGHUP reload line", move |s| {
            s.matches("SIGHUP: reloaded").count() >= want
        })
        .await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("under 10 reloads: {ok} requests answered 200, {failed} failed");
    assert_eq!(failed, 0, "{:?}", failures.lock().unwrap());
    assert!(ok >= 100, "the load was too light to mean anything: {ok}");
    assert_eq!(
        leaves.lock().unwrap().len(),
        2,
        "connections saw both pairs"
    );

    // A refused pair: a certificate whose key is not on disk. Logged; the last pair stays.
    let last = &pairs[0];
    let stranger = ca.leaf();
    std::fs::write(&cert, &stranger.cert_pem).unwrap();
    p.hup();
    p.wait_stderr("the refusal", |s| {
        s.contains("reload refused") && s.contains("does not match")
    })
    .await;
    let (stream, seen) = tls_connect(addr, &ca.der(), &[]).await.unwrap();
    assert_eq!(seen.leaf, last.leaf);
    let mut c = Client::http1(stream).await;
    let a = c
        .send(whoami_modern(Version::HTTP_11, &url, &token))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert!(p.child.try_wait().unwrap().is_none(), "still running");
    assert!(!p.stderr().contains(&token), "a token was logged");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unusable_tls_files_stop_startup_with_exit_2_naming_the_setting() {
    let ca = Ca::new("test CA");
    let dir = temp_dir("binary-bad");
    let (a, b) = (ca.leaf(), ca.leaf());
    let (cert, _) = a.write(&dir);
    let other_key = dir.join("other.pem");
    std::fs::write(&other_key, &b.key_pem).unwrap();
    for (cert, key, says) in [
        (cert.clone(), other_key.clone(), "does not match"),
        (cert.clone(), dir.join("missing.pem"), "missing.pem"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env("PORT", "0")
            .env("HOST", "127.0.0.1")
            .env("MCP_TLS_CERT_FILE", &cert)
            .env("MCP_TLS_KEY_FILE", &key)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("MCP_TLS_CERT_FILE") && err.contains(says),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
