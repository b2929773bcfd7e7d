//! The JWKS fetch over https: the server certificate is verified against the trusted roots and
//! the URL's host name, through rustls, on loopback with a throwaway certificate.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use vouch_mcp::auth::{FetchError, HttpFetcher};

const JWKS: &str = r#"{"keys":[]}"#;

/// Serves `JWKS` over TLS with a self-signed certificate for `localhost`; returns its port and the certificate.
async fn tls_server() -> (u16, CertificateDer<'static>) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A failed handshake (an untrusted client) simply ends this connection.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{JWKS}",
                    JWKS.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, cert)
}

fn roots(cert: &CertificateDer<'static>) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    roots
}

#[tokio::test]
async fn https_fetch_succeeds_with_a_trusted_certificate_for_the_host() {
    let (port, cert) = tls_server().await;
    let url = format!("https://localhost:{port}/jwks");
    let fetcher =
        HttpFetcher::with_roots(&url, Duration::from_secs(5), 1024, roots(&cert)).unwrap();
    let fetched = fetcher.fetch().await.unwrap();
    assert_eq!(&fetched.body[..], JWKS.as_bytes());
}

#[tokio::test]
async fn https_fetch_refuses_a_certificate_the_mozilla_roots_do_not_vouch_for() {
    let (port, _) = tls_server().await;
    let fetcher = HttpFetcher::new(
        &format!("https://localhost:{port}/jwks"),
        Duration::from_secs(5),
        1024,
    )
    .unwrap();
    assert!(matches!(fetcher.fetch().await, Err(FetchError::Tls(_))));
}

#[tokio::test]
async fn https_fetch_refuses_a_certificate_for_another_name() {
    let (port, cert) = tls_server().await;
    // The certificate names localhost, not 127.0.0.1.
    let url = format!("https://127.0.0.1:{port}/jwks");
    let fetcher =
        HttpFetcher::with_roots(&url, Duration::from_secs(5), 1024, roots(&cert)).unwrap();
    assert!(matches!(fetcher.fetch().await, Err(FetchError::Tls(_))));
}
