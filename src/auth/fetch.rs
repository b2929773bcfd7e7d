//! The JWKS HTTP client: one GET over rustls (webpki roots) or loopback-only plain http, with timeouts and a size cap.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a fetch failed. Logged; never shown to MCP clients.
#[derive(Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// The URL cannot be used (not absolute http(s), no host).
    BadUrl,
    /// Plain http to a host that is not loopback.
    InsecureScheme,
    /// TCP connect failed.
    Connect(std::io::Error),
    /// TLS handshake failed.
    Tls(std::io::Error),
    /// Connect or response took longer than the timeout.
    Timeout,
    /// HTTP protocol error.
    Http(hyper::Error),
    /// A redirect; not followed.
    Redirect(StatusCode),
    /// A status other than 200.
    Status(StatusCode),
    /// The body exceeded the size cap.
    TooLarge,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadUrl => f.write_str("jwks url is not an absolute http(s) url"),
            Self::InsecureScheme => f.write_str("plain http is allowed only for loopback hosts"),
            Self::Connect(e) => write!(f, "connect failed: {e}"),
            Self::Tls(e) => write!(f, "tls handshake failed: {e}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Http(e) => write!(f, "http error: {e}"),
            Self::Redirect(s) => write!(f, "redirect ({s}) not followed"),
            Self::Status(s) => write!(f, "unexpected status {s}"),
            Self::TooLarge => f.write_str("response body over the size cap"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A fetched body and its `Cache-Control: max-age`, if any.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The response body.
    pub body: Bytes,
    /// `max-age` in seconds (`no-store`/`no-cache` read as 0).
    pub max_age: Option<u64>,
}

/// A validated fetch target and its limits.
#[derive(Clone)]
pub struct HttpFetcher {
    uri: Uri,
    host: String,
    port: u16,
    /// The TLS client, kept even for a plain-http URL so [`HttpFetcher::with_url`] can reuse it.
    tls: TlsConnector,
    use_tls: bool,
    timeout: Duration,
    max_bytes: usize,
}

impl fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// True for `localhost`, 127.0.0.0/8 and ::1.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl HttpFetcher {
    /// Checks `url` (https anywhere, http only on loopback) and builds the TLS client once,
    /// trusting the Mozilla root set (webpki-roots).
    pub fn new(url: &str, timeout: Duration, max_bytes: usize) -> Result<Self, FetchError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        Self::with_roots(url, timeout, max_bytes, roots)
    }

    /// Like [`HttpFetcher::new`], trusting `roots` instead (an issuer behind a private CA).
    pub fn with_roots(
        url: &str,
        timeout: Duration,
        max_bytes: usize,
        roots: rustls::RootCertStore,
    ) -> Result<Self, FetchError> {
        Self::build(url, timeout, max_bytes, tls_connector(roots))
    }

    /// Another URL under the same rules, trust roots, timeout and size cap (a discovered `jwks_uri`).
    pub fn with_url(&self, url: &str) -> Result<Self, FetchError> {
        Self::build(url, self.timeout, self.max_bytes, self.tls.clone())
    }

    fn build(
        url: &str,
        timeout: Duration,
        max_bytes: usize,
        tls: TlsConnector,
    ) -> Result<Self, FetchError> {
        let uri: Uri = url.parse().map_err(|_| FetchError::BadUrl)?;
        let host = uri.host().ok_or(FetchError::BadUrl)?.to_owned();
        let (use_tls, default_port) = match uri.scheme_str() {
            Some("https") => (true, 443),
            Some("http") if is_loopback_host(&host) => (false, 80),
            Some("http") => return Err(FetchError::InsecureScheme),
            _ => return Err(FetchError::BadUrl),
        };
        let port = uri.port_u16().unwrap_or(default_port);
        Ok(Self {
            uri,
            host,
            port,
            tls,
            use_tls,
            timeout,
            max_bytes,
        })
    }

    /// The timeout for the connect and for the exchange.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The URL being fetched.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// One GET. Connect, then response head and body, each bounded by the timeout.
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let bare_host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((bare_host, self.port)))
            .await
            .map_err(|_| FetchError::Timeout)?
            .map_err(FetchError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let exchange = async {
            if self.use_tls {
                let name = rustls::pki_types::ServerName::try_from(bare_host.to_owned())
                    .map_err(|_| FetchError::BadUrl)?;
                let stream = self.tls.connect(name, tcp).await.map_err(FetchError::Tls)?;
                self.exchange(TokioIo::new(stream)).await
            } else {
                self.exchange(TokioIo::new(tcp)).await
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| FetchError::Timeout)?
    }

    async fn exchange<I>(&self, io: I) -> Result<Fetched, FetchError>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
            .await
            .map_err(FetchError::Http)?;
        let driver = tokio::spawn(conn);
        let path = self.uri.path_and_query().map_or("/", |p| p.as_str());
        let authority = self
            .uri
            .authority()
            .map_or(self.host.as_str(), |a| a.as_str());
        let req = Request::get(path)
            .header(header::HOST, authority)
            .header(header::ACCEPT, "application/json, application/jwk-set+json")
            .header(
                header::USER_AGENT,
                concat!("vouch-mcp/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::new())
            .map_err(|_| FetchError::BadUrl)?;
        let result = async {
            let resp = sender.send_request(req).await.map_err(FetchError::Http)?;
            let status = resp.status();
            if status.is_redirection() {
                return Err(FetchError::Redirect(status));
            }
            if status != StatusCode::OK {
                return Err(FetchError::Status(status));
            }
            let declared = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_bytes as u64) {
                return Err(FetchError::TooLarge);
            }
            let max_age = resp
                .headers()
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_max_age);
            let mut body = resp.into_body();
            let mut buf = BytesMut::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(FetchError::Http)?;
                if let Some(data) = frame.data_ref() {
                    if buf.len() + data.len() > self.max_bytes {
                        return Err(FetchError::TooLarge);
                    }
                    buf.extend_from_slice(data);
                }
            }
            Ok(Fetched {
                body: buf.freeze(),
                max_age,
            })
        }
        .await;
        driver.abort();
        result
    }
}

/// Reads `max-age=N` from a Cache-Control value; `no-store` and `no-cache` count as 0.
pub fn parse_max_age(value: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        if directive.eq_ignore_ascii_case("no-store") || directive.eq_ignore_ascii_case("no-cache")
        {
            return Some(0);
        }
        if let Some((name, v)) = directive.split_once('=') {
            if name.trim().eq_ignore_ascii_case("max-age") {
                max_age = v.trim().trim_matches('"').parse().ok();
            }
        }
    }
    max_age
}

fn tls_connector(roots: rustls::RootCertStore) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        let t = Duration::from_secs(1);
        assert!(HttpFetcher::new("http://127.0.0.1:9/jwks", t, 10).is_ok());
        assert!(HttpFetcher::new("http://localhost/jwks", t, 10).is_ok());
        assert!(HttpFetcher::new("http://[::1]:8/jwks", t, 10).is_ok());
        assert!(matches!(
            HttpFetcher::new("http://issuer.example/jwks", t, 10),
            Err(FetchError::InsecureScheme)
        ));
        assert!(matches!(
            HttpFetcher::new("http://127.0.0.1.evil.example/jwks", t, 10),
            Err(FetchError::InsecureScheme)
        ));
        assert!(HttpFetcher::new("https://issuer.example/jwks", t, 10).is_ok());
        assert!(matches!(
            HttpFetcher::new("file:///etc/passwd", t, 10),
            Err(FetchError::BadUrl)
        ));
    }

    #[test]
    fn reads_max_age() {
        assert_eq!(parse_max_age("public, max-age=300"), Some(300));
        assert_eq!(parse_max_age("no-store"), Some(0));
        assert_eq!(parse_max_age("public"), None);
    }
}
