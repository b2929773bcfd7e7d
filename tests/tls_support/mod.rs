//! TLS and HTTP/2 test helpers: a throwaway CA that signs leaf certificates, and clients (HTTP/1.1, and HTTP/2 with the feature) over TLS that trust only that CA, or over plain TCP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Test keys, generated once with openssl and used nowhere else; the certificates for them are
/// made at test time by [`Ca::leaf`], so nothing here expires.
pub const RSA_PKCS8: &str = include_str!("keys/rsa-2048.pkcs8.pem");
pub const RSA_PKCS1: &str = include_str!("keys/rsa-2048.pkcs1.pem");
pub const EC_PKCS8: &str = include_str!("keys/ec-p256.pkcs8.pem");
pub const EC_SEC1: &str = include_str!("keys/ec-p256.sec1.pem");

/// A private certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain (leaf, then the CA) and its key, as PEM, plus the leaf's DER.
#[derive(Clone)]
pub struct Pair {
    pub cert_pem: String,
    pub key_pem: String,
    pub leaf: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf for `localhost` and 127.0.0.1 with a fresh ECDSA P-256 key (PKCS#8).
    pub fn leaf(&self) -> Pair {
        let key = KeyPair::generate().unwrap();
        let pem = key.serialize_pem();
        self.leaf_for(&key, pem)
    }

    /// A leaf for the key in `signing_pem` (PKCS#8), served with `served_key_pem` (the same key
    /// in any PEM form).
    pub fn leaf_with(&self, signing_pem: &str, served_key_pem: &str) -> Pair {
        let key = KeyPair::from_pem(signing_pem).unwrap();
        self.leaf_for(&key, served_key_pem.to_owned())
    }

    fn leaf_for(&self, key: &KeyPair, key_pem: String) -> Pair {
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(key, &self.issuer).unwrap();
        Pair {
            cert_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem,
            leaf: cert.der().clone(),
        }
    }
}

impl Pair {
    /// Writes the pair into `dir` as cert.pem and key.pem; returns their paths.
    pub fn write(&self, dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        std::fs::create_dir_all(dir).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        // Written beside and renamed into place, as a deploy tool would.
        for (path, text) in [(&c, &self.cert_pem), (&k, &self.key_pem)] {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        }
        (c, k)
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "vouch-tls-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What a TLS client saw of the server.
pub struct Seen {
    pub leaf: CertificateDer<'static>,
    pub chain_len: usize,
    pub alpn: Option<Vec<u8>>,
}

/// Connects to `addr` over TLS as `localhost`, trusting only `ca`, offering `alpn`.
pub async fn tls_connect(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> std::io::Result<(tokio_rustls::client::TlsStream<TcpStream>, Seen)> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(addr).await?;
    let stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let (_, session) = stream.get_ref();
    let certs = session.peer_certificates().unwrap_or_default();
    let seen = Seen {
        leaf: certs[0].clone().into_owned(),
        chain_len: certs.len(),
        alpn: session.alpn_protocol().map(<[u8]>::to_vec),
    };
    Ok((stream, seen))
}

/// One HTTP connection, either protocol.
pub enum Client {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    #[cfg(feature = "http2")]
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// An answer, read whole (or only its head, for streams).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub version: http::Version,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client {
    /// HTTP/1.1 over any connection.
    pub async fn http1<I>(io: I) -> Client
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client::H1(sender)
    }

    /// HTTP/2 over any connection (prior knowledge on plain TCP; after ALPN `h2` on TLS).
    #[cfg(feature = "http2")]
    pub async fn http2<I>(io: I) -> Client
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            TokioIo::new(io),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        Client::H2(sender)
    }

    /// Sends `req`; the response head, with its body still streaming.
    pub async fn start(
        &mut self,
        req: Request<Full<Bytes>>,
    ) -> hyper::Result<http::Response<Incoming>> {
        match self {
            Client::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            #[cfg(feature = "http2")]
            Client::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }

    /// Sends `req` and reads the whole answer, within 10 s.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Answer> {
        let exchange = async {
            let resp = self.start(req).await?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                version: parts.version,
                body,
            })
        };
        tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .expect("an answer within 10 s")
    }
}

/// A request: `uri` is absolute for HTTP/2 (its authority is `:authority`), and for HTTP/1.1
/// the authority goes into Host and the target is origin-form.
pub fn request(
    version: http::Version,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Request<Full<Bytes>> {
    let parsed: http::Uri = uri.parse().unwrap();
    let mut b = Request::builder().method(method);
    if version == http::Version::HTTP_2 {
        b = b.uri(parsed.clone()).version(version);
    } else {
        b = b
            .uri(parsed.path_and_query().map_or("/", |p| p.as_str()))
            .header("host", parsed.authority().unwrap().as_str());
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::copy_from_slice(body))).unwrap()
}

/// The 2026-07-28 `_meta` every stateless request carries.
pub fn modern_meta() -> serde_json::Value {
    serde_json::json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 whoami call.
pub fn whoami_modern(version: http::Version, url: &str, token: &str) -> Request<Full<Bytes>> {
    let body = serde_json::json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":"whoami","arguments":{},"_meta": modern_meta()}});
    request(
        version,
        "POST",
        url,
        &[
            ("authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "whoami"),
        ],
        body.to_string().as_bytes(),
    )
}

/// An initialize-era POST (no session header when `session` is None).
pub fn legacy_post(
    version: http::Version,
    url: &str,
    token: &str,
    session: Option<&str>,
    body: &serde_json::Value,
) -> Request<Full<Bytes>> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    if let Some(s) = session {
        headers.push(("mcp-session-id", s));
        headers.push(("mcp-protocol-version", "2025-11-25"));
    }
    request(version, "POST", url, &headers, body.to_string().as_bytes())
}

/// The initialize request of the 2025-11-25 revision.
pub fn initialize_body() -> serde_json::Value {
    serde_json::json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"tls-test","version":"1"}}})
}
