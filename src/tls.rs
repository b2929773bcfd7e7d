//! TLS for the accept loop: a certificate chain and key from PEM, checked before use, and swapped in place on reload.
//!
//! The rustls configuration is built once and asks a resolver for the certificate on every
//! handshake; a reload replaces what the resolver holds. Connections already open keep the
//! session they negotiated, so a reload never drops one, and a pair that fails any check is
//! refused before it could replace the one in use.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::log;

/// Why a certificate and key were refused. A refused reload leaves the pair in use in place.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read (the path, and the operating system's reason).
    Unreadable(PathBuf, String),
    /// The certificate PEM holds no `CERTIFICATE` block.
    NoCertificate,
    /// The key PEM holds no private key block (`PRIVATE KEY`, `EC PRIVATE KEY`, `RSA PRIVATE KEY`).
    NoPrivateKey,
    /// A PEM block is malformed (bad base64, a missing end line).
    BadPem(String),
    /// The key is not one rustls can sign with (ECDSA P-256/P-384, RSA 2048 bits or more, Ed25519).
    UnsupportedKey(String),
    /// The private key does not belong to the leaf certificate.
    KeyMismatch,
    /// The leaf certificate cannot be parsed.
    BadCertificate(String),
    /// Reloading from files was asked of a configuration made from bytes.
    NoFiles,
    /// Watching the files needs a tokio runtime, and there was none.
    NoRuntime,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(path, why) => write!(f, "cannot read {}: {why}", path.display()),
            Self::NoCertificate => f.write_str("no CERTIFICATE block in the certificate PEM"),
            Self::NoPrivateKey => f.write_str("no private key block in the key PEM"),
            Self::BadPem(why) => write!(f, "malformed PEM: {why}"),
            Self::UnsupportedKey(why) => write!(f, "unsupported private key: {why}"),
            Self::KeyMismatch => f.write_str("the private key does not match the certificate"),
            Self::BadCertificate(why) => write!(f, "unusable certificate: {why}"),
            Self::NoFiles => f.write_str("this TLS configuration was not loaded from files"),
            Self::NoRuntime => f.write_str("watching the TLS files needs a tokio runtime"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The pair in use, read on every handshake.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl Current {
    fn get(&self) -> Arc<CertifiedKey> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, key: CertifiedKey) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
    }
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

/// Where a configuration loaded from files reads them again.
#[derive(Debug)]
struct Files {
    cert: PathBuf,
    key: PathBuf,
    /// The bytes of the last pair tried, so the watcher acts only on a change.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

#[derive(Debug)]
struct Inner {
    current: Arc<Current>,
    provider: Arc<CryptoProvider>,
    config: Arc<rustls::ServerConfig>,
    files: Option<Files>,
}

/// A server certificate chain and private key for [`Server::serve_tls`](crate::Server::serve_tls),
/// replaceable while the server runs. Cheap to clone; clones share the pair in use.
///
/// Protocol versions (TLS 1.2 and 1.3) and cipher suites are rustls's safe defaults, with
/// ring as the crypto provider. ALPN offers `http/1.1`, and `h2` first when the crate is built
/// with the `http2` feature.
///
/// ```
/// use vouch_mcp::{TlsConfig, TlsError};
///
/// // An unreadable pair is refused with a reason, never half-loaded.
/// let err = TlsConfig::from_pem(b"not a certificate", b"not a key").unwrap_err();
/// assert_eq!(err, TlsError::NoCertificate);
/// ```
///
/// Serving https, reloading on a change of the files:
///
/// ```no_run
/// # async fn run(server: vouch_mcp::Server) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use vouch_mcp::TlsConfig;
///
/// let tls = TlsConfig::from_pem_files("/etc/mcp/cert.pem", "/etc/mcp/key.pem")?;
/// tls.watch(Duration::from_secs(10))?; // or call tls.reload() on SIGHUP
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
/// server.serve_tls(listener, tls, std::future::pending()).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TlsConfig {
    inner: Arc<Inner>,
}

impl TlsConfig {
    /// A configuration from PEM bytes: the chain (leaf first) and the private key (PKCS#8,
    /// SEC1 or PKCS#1). It cannot [`reload`](Self::reload); use [`replace_pem`](Self::replace_pem).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        Self::build(cert_pem, key_pem, None)
    }

    /// A configuration from two PEM files (they may be the same file holding both), which
    /// [`reload`](Self::reload) and [`watch`](Self::watch) read again.
    pub fn from_pem_files(
        cert_file: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Result<Self, TlsError> {
        let (cert, key) = (cert_file.into(), key_file.into());
        let (cert_pem, key_pem) = (read(&cert)?, read(&key)?);
        let files = Files {
            cert,
            key,
            seen: Mutex::new((cert_pem.clone(), key_pem.clone())),
        };
        Self::build(&cert_pem, &key_pem, Some(files))
    }

    fn build(cert_pem: &[u8], key_pem: &[u8], files: Option<Files>) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let first = certified_key(&provider, cert_pem, key_pem)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(first))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::UnsupportedKey(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = alpn();
        Ok(Self {
            inner: Arc::new(Inner {
                current,
                provider,
                config: Arc::new(config),
                files,
            }),
        })
    }

    /// Reads the files again and, when the new pair passes every check, uses it for new
    /// connections. On an error the pair in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let files = self.inner.files.as_ref().ok_or(TlsError::NoFiles)?;
        let (cert_pem, key_pem) = (read(&files.cert)?, read(&files.key)?);
        *files.seen.lock().unwrap_or_else(PoisonError::into_inner) =
            (cert_pem.clone(), key_pem.clone());
        self.replace_pem(&cert_pem, &key_pem)
    }

    /// Uses a new pair from PEM bytes for new connections, after the same checks as at start
    /// (for certificates that come from somewhere other than files). On an error the pair in
    /// use stays.
    pub fn replace_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        let key = certified_key(&self.inner.provider, cert_pem, key_pem)?;
        self.inner.current.set(key);
        Ok(())
    }

    /// Checks the files every `every` and reloads them when their bytes change, logging each
    /// reload and each refused pair. Runs on the current tokio runtime until every clone of
    /// this configuration is dropped.
    pub fn watch(&self, every: Duration) -> Result<(), TlsError> {
        let files = self.inner.files.as_ref().ok_or(TlsError::NoFiles)?;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| TlsError::NoRuntime)?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = every.max(Duration::from_millis(10));
        log::info(format_args!(
            "tls: watching {} and {} every {} ms",
            files.cert.display(),
            files.key.display(),
            every.as_millis()
        ));
        handle.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                TlsConfig { inner }.reload_if_changed();
            }
        });
        Ok(())
    }

    /// One poll of the watcher: reload when either file's bytes differ from the last pair tried.
    fn reload_if_changed(&self) {
        let Some(files) = self.inner.files.as_ref() else {
            return;
        };
        // A file that cannot be read right now (mid-rename) is looked at again next time.
        let (Ok(cert_pem), Ok(key_pem)) = (read(&files.cert), read(&files.key)) else {
            return;
        };
        {
            let mut seen = files.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.0 == cert_pem && seen.1 == key_pem {
                return;
            }
            *seen = (cert_pem.clone(), key_pem.clone());
        }
        log_reload(&files.cert, self.replace_pem(&cert_pem, &key_pem));
    }

    /// The rustls configuration, for an accept loop of your own (e.g. with
    /// `tokio_rustls::TlsAcceptor`). It follows reloads: every handshake uses the pair in use.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.inner.config.clone()
    }

    /// The leaf certificate in use (DER).
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.inner.current.get().cert[0].clone()
    }
}

fn log_reload(cert: &Path, result: Result<(), TlsError>) {
    match result {
        Ok(()) => log::info(format_args!(
            "tls: reloaded the certificate from {}",
            cert.display()
        )),
        Err(e) => log::warn(format_args!(
            "tls: reload refused, keeping the certificate in use: {e}"
        )),
    }
}

/// ALPN protocols, preferred first.
fn alpn() -> Vec<Vec<u8>> {
    let mut protocols = Vec::new();
    if cfg!(feature = "http2") {
        protocols.push(b"h2".to_vec());
    }
    protocols.push(b"http/1.1".to_vec());
    protocols
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Unreadable(path.to_owned(), e.to_string()))
}

/// Parses and checks a pair: a non-empty chain, one private key rustls can sign with, and
/// that key belonging to the leaf certificate.
fn certified_key(
    provider: &CryptoProvider,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem(e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        e => TlsError::BadPem(e.to_string()),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::UnsupportedKey(e.to_string()))?;
    let pair = CertifiedKey::new(chain, signing);
    match pair.keys_match() {
        Ok(()) => Ok(pair),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch)
        }
        // A key that cannot tell its public half cannot be checked, so it is not accepted.
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::UnsupportedKey(
            "its public key cannot be compared with the certificate's".into(),
        )),
        Err(e) => Err(TlsError::BadCertificate(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_offers_http1_and_h2_only_with_the_feature() {
        let p = alpn();
        assert_eq!(p.last().unwrap(), b"http/1.1");
        assert_eq!(p.first().unwrap() == b"h2", cfg!(feature = "http2"));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert_eq!(
            TlsConfig::from_pem(b"", b"").unwrap_err(),
            TlsError::NoCertificate
        );
        let bad = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TlsConfig::from_pem(bad, b"").unwrap_err(),
            TlsError::BadPem(_)
        ));
    }
}
