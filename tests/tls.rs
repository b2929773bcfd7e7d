//! Serving https through the public API: a chain from a private CA, ECDSA and RSA keys in every PEM form, refused pairs, reloads that keep open connections and streams, a refused reload that keeps the pair in use, the file watcher, and handshakes that stall or are not TLS at all.

mod support;
mod tls_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Version;
use http_body_util::BodyExt;
use serde_json::json;
use support::{build, Options};
use tls_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use vouch_mcp::{CancelToken, ListChanged, Notifier, TlsConfig, TlsError};

/// A running https server of the guide's tools.
struct Https {
    addr: std::net::SocketAddr,
    url: String,
    issuer: support::DevIssuer,
    resource: String,
    notifier: Notifier,
    stop: CancelToken,
}

impl Drop for Https {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Https {
    fn token(&self, sub: &str, hw: bool) -> String {
        self.issuer.mint(&self.issuer.claims(
            &self.resource,
            sub,
            "x@example.com",
            hw,
            support::now(),
            3600,
        ))
    }
}

async fn serve(tls: TlsConfig, header_timeout: Duration) -> Https {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let resource = format!("https://localhost:{}/mcp", addr.port());
    let notifier = Arc::new(Mutex::new(None));
    let n2 = notifier.clone();
    let (server, issuer) = build(
        Options {
            configure: Some(Box::new(move |b| {
                *n2.lock().unwrap() = Some(b.notifier());
                b.list_changed(ListChanged {
                    tools: true,
                    prompts: false,
                    resources: false,
                })
                .header_read_timeout(header_timeout)
            })),
            ..Options::default()
        },
        &resource,
    );
    let stop = CancelToken::new();
    let s2 = stop.clone();
    tokio::spawn(async move {
        server
            .serve_tls(listener, tls, async move { s2.cancelled().await })
            .await
    });
    let notifier = notifier.lock().unwrap().take().unwrap();
    Https {
        addr,
        url: resource.clone(),
        issuer,
        resource,
        notifier,
        stop,
    }
}

async fn h1(s: &Https, ca: &Ca) -> (Client, Seen) {
    let (stream, seen) = tls_connect(s.addr, &ca.der(), &[b"http/1.1"])
        .await
        .unwrap();
    (Client::http1(stream).await, seen)
}

/// The leaf a new connection is served.
async fn served_leaf(s: &Https, ca: &Ca) -> rustls::pki_types::CertificateDer<'static> {
    tls_connect(s.addr, &ca.der(), &[]).await.unwrap().1.leaf
}

#[tokio::test]
async fn https_serves_both_eras_with_a_chain_from_a_private_ca() {
    let ca = Ca::new("test CA");
    let pair = ca.leaf();
    let tls = TlsConfig::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap();
    let s = serve(tls, Duration::from_secs(30)).await;
    let (mut c, hs) = h1(&s, &ca).await;
    assert_eq!(hs.chain_len, 2, "leaf and CA are both sent");
    assert_eq!(hs.leaf, pair.leaf);
    assert_eq!(hs.alpn.as_deref(), Some(&b"http/1.1"[..]));

    let token = s.token("alice", true);
    let a = c
        .send(whoami_modern(Version::HTTP_11, &s.url, &token))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["result"]["structuredContent"]["sub"], "alice");
    assert_eq!(
        a.json()["result"]["structuredContent"]["hardware_verified"],
        true
    );

    // The initialize era on the same connection: initialize, initialized, call.
    let a = c
        .send(legacy_post(
            Version::HTTP_11,
            &s.url,
            &token,
            None,
            &initialize_body(),
        ))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let sid = a.header("mcp-session-id").unwrap().to_owned();
    let a = c
        .send(legacy_post(
            Version::HTTP_11,
            &s.url,
            &token,
            Some(&sid),
            &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        ))
        .await
        .unwrap();
    assert_eq!(a.status, 202);
    let a = c
        .send(legacy_post(
            Version::HTTP_11,
            &s.url,
            &token,
            Some(&sid),
            &json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}),
        ))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["result"]["structuredContent"]["sub"], "alice");

    // The challenge over https names the https metadata URL.
    let a = c
        .send(request(Version::HTTP_11, "POST", &s.url, &[], b""))
        .await
        .unwrap();
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("www-authenticate").unwrap(),
        format!(
            "Bearer resource_metadata=\"https://localhost:{}/.well-known/oauth-protected-resource/mcp\"",
            s.addr.port()
        )
    );
}

#[tokio::test]
async fn rsa_and_ecdsa_keys_in_every_pem_form_are_served() {
    let ca = Ca::new("test CA");
    let dir = temp_dir("forms");
    for (name, signing, served) in [
        ("RSA PKCS#8", RSA_PKCS8, RSA_PKCS8),
        ("RSA PKCS#1", RSA_PKCS8, RSA_PKCS1),
        ("EC PKCS#8", EC_PKCS8, EC_PKCS8),
        ("EC SEC1 (with EC PARAMETERS)", EC_PKCS8, EC_SEC1),
    ] {
        let pair = ca.leaf_with(signing, served);
        let (c, k) = pair.write(&dir.join(name.replace(|c: char| !c.is_alphanumeric(), "")));
        let tls = TlsConfig::from_pem_files(&c, &k).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(tls.certificate(), pair.leaf, "{name}");
        let s = serve(tls, Duration::from_secs(30)).await;
        let (mut client, hs) = h1(&s, &ca).await;
        assert_eq!(hs.leaf, pair.leaf, "{name}");
        let a = client
            .send(whoami_modern(
                Version::HTTP_11,
                &s.url,
                &s.token("bob", false),
            ))
            .await
            .unwrap();
        assert_eq!(a.status, 200, "{name}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_pairs_are_refused_with_a_reason() {
    let ca = Ca::new("test CA");
    let (a, b) = (ca.leaf(), ca.leaf());
    let refuse = |cert: &str, key: &str| TlsConfig::from_pem(cert.as_bytes(), key.as_bytes());
    assert_eq!(
        refuse(&a.cert_pem, &b.key_pem).unwrap_err(),
        TlsError::KeyMismatch
    );
    assert_eq!(refuse(&a.cert_pem, "").unwrap_err(), TlsError::NoPrivateKey);
    assert_eq!(
        refuse(&a.cert_pem, &a.cert_pem).unwrap_err(),
        TlsError::NoPrivateKey
    );
    assert_eq!(
        refuse(&a.key_pem, &a.key_pem).unwrap_err(),
        TlsError::NoCertificate
    );
    let truncated = &a.cert_pem[..a.cert_pem.len() / 3];
    assert!(matches!(
        refuse(truncated, &a.key_pem),
        Err(TlsError::BadPem(_)) | Err(TlsError::NoCertificate)
    ));
    let not_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        refuse(not_der, &a.key_pem).unwrap_err(),
        TlsError::BadCertificate(_)
    ));
    let not_a_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert!(matches!(
        refuse(&a.cert_pem, not_a_key).unwrap_err(),
        TlsError::UnsupportedKey(_)
    ));
    let missing = std::env::temp_dir().join("vouch-tls-no-such-file.pem");
    let e = TlsConfig::from_pem_files(&missing, &missing).unwrap_err();
    assert!(
        matches!(&e, TlsError::Unreadable(p, _) if p == &missing),
        "{e}"
    );
    assert!(e.to_string().contains("vouch-tls-no-such-file.pem"));
    // A configuration made from bytes has no files to reload or watch.
    let bytes = refuse(&a.cert_pem, &a.key_pem).unwrap();
    assert_eq!(bytes.reload().unwrap_err(), TlsError::NoFiles);
}

#[tokio::test]
async fn reload_serves_the_new_pair_to_new_connections_and_keeps_open_ones_and_streams() {
    let ca = Ca::new("test CA");
    let dir = temp_dir("reload");
    let (old, new) = (ca.leaf(), ca.leaf());
    let (c, k) = old.write(&dir);
    let tls = TlsConfig::from_pem_files(&c, &k).unwrap();
    let s = serve(tls.clone(), Duration::from_secs(30)).await;
    let token = s.token("alice", false);

    // An open keep-alive connection, and a session with its GET stream held open.
    let (mut kept, _) = h1(&s, &ca).await;
    let a = kept
        .send(whoami_modern(Version::HTTP_11, &s.url, &token))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    let (mut streamer, _) = h1(&s, &ca).await;
    let init = streamer
        .send(legacy_post(
            Version::HTTP_11,
            &s.url,
            &token,
            None,
            &initialize_body(),
        ))
        .await
        .unwrap();
    let sid = init.header("mcp-session-id").unwrap().to_owned();
    let get = request(
        Version::HTTP_11,
        "GET",
        &s.url,
        &[
            ("authorization", &format!("Bearer {token}")),
            ("accept", "text/event-stream"),
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        b"",
    );
    let resp = streamer.start(get).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.into_body();

    new.write(&dir);
    tls.reload().unwrap();
    assert_eq!(tls.certificate(), new.leaf);
    assert_eq!(
        served_leaf(&s, &ca).await,
        new.leaf,
        "new connections get the new pair"
    );

    // The open connection still answers, and the stream still delivers.
    let a = kept
        .send(whoami_modern(Version::HTTP_11, &s.url, &token))
        .await
        .unwrap();
    assert_eq!(a.status, 200);
    s.notifier.tools_changed();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("notifications/tools/list_changed") {
        let frame = tokio::time::timeout_at(deadline.into(), stream.frame())
            .await
            .expect("the list_changed event within 10 s")
            .expect("the stream stays open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_refused_reload_keeps_the_pair_in_use() {
    let ca = Ca::new("test CA");
    let dir = temp_dir("bad-reload");
    let (good, other) = (ca.leaf(), ca.leaf());
    let (c, k) = good.write(&dir);
    let tls = TlsConfig::from_pem_files(&c, &k).unwrap();
    let s = serve(tls.clone(), Duration::from_secs(30)).await;

    // The new certificate with the old key: refused, old pair stays.
    std::fs::write(&c, &other.cert_pem).unwrap();
    assert_eq!(tls.reload().unwrap_err(), TlsError::KeyMismatch);
    assert_eq!(served_leaf(&s, &ca).await, good.leaf);
    // A half-written key file.
    std::fs::write(&c, &good.cert_pem).unwrap();
    std::fs::write(&k, &good.key_pem[..40]).unwrap();
    assert!(tls.reload().is_err());
    assert_eq!(served_leaf(&s, &ca).await, good.leaf);
    // A removed file.
    std::fs::remove_file(&k).unwrap();
    assert!(matches!(tls.reload(), Err(TlsError::Unreadable(..))));
    let (mut client, _) = h1(&s, &ca).await;
    let a = client
        .send(whoami_modern(
            Version::HTTP_11,
            &s.url,
            &s.token("a", false),
        ))
        .await
        .unwrap();
    assert_eq!(a.status, 200, "still serving with the pair in use");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_watcher_reloads_a_changed_pair_and_skips_a_bad_one() {
    let ca = Ca::new("test CA");
    let dir = temp_dir("watch");
    let (first, second, third) = (ca.leaf(), ca.leaf(), ca.leaf());
    let (c, k) = first.write(&dir);
    let tls = TlsConfig::from_pem_files(&c, &k).unwrap();
    tls.watch(Duration::from_millis(20)).unwrap();
    let s = serve(tls.clone(), Duration::from_secs(30)).await;

    let wait_for = |want: rustls::pki_types::CertificateDer<'static>| {
        let tls = tls.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            while tls.certificate() != want {
                assert!(
                    Instant::now() < deadline,
                    "the watcher did not reload within 5 s"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    second.write(&dir);
    wait_for(second.leaf.clone()).await;
    assert_eq!(served_leaf(&s, &ca).await, second.leaf);

    // A mismatched pair on disk: seen, refused, the second pair stays.
    std::fs::write(&c, &third.cert_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(tls.certificate(), second.leaf);
    assert_eq!(served_leaf(&s, &ca).await, second.leaf);
    // Its key arrives: now the pair matches and is taken.
    std::fs::write(&k, &third.key_pem).unwrap();
    wait_for(third.leaf.clone()).await;
    assert_eq!(served_leaf(&s, &ca).await, third.leaf);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn stalled_and_plain_text_connections_do_not_hold_up_others() {
    let ca = Ca::new("test CA");
    let pair = ca.leaf();
    let tls = TlsConfig::from_pem(pair.cert_pem.as_bytes(), pair.key_pem.as_bytes()).unwrap();
    let s = serve(tls, Duration::from_millis(300)).await;

    // A connection that never starts its handshake, and one that speaks plain HTTP.
    let mut stalled = TcpStream::connect(s.addr).await.unwrap();
    let mut plain = TcpStream::connect(s.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let (mut client, _) = h1(&s, &ca).await;
    let a = client
        .send(request(
            Version::HTTP_11,
            "GET",
            &format!("https://localhost:{}/healthz", s.addr.port()),
            &[],
            b"",
        ))
        .await
        .unwrap();
    assert_eq!(a.status, 200);

    // The stalled one is closed once the header read timeout has passed.
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read(&mut buf))
        .await
        .expect("the stalled handshake is ended within 5 s");
    assert!(matches!(closed, Ok(0) | Err(_)));
    // The plain-text one gets no HTTP answer (a TLS alert at most) and is closed.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}
