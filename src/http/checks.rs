//! Pure request checks made before any work: Host/Origin (DNS rebinding), Content-Type, Accept, body size.

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use http::HeaderMap;

use crate::auth::fetch::is_loopback_host;

/// Which hosts and origins may reach `/mcp`.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    /// Lowercase host names (no port) besides the loopback names.
    pub allowed_hosts: Vec<String>,
    /// `*` was configured: any Host is accepted (for deployments behind a proxy that checks it).
    pub any_host: bool,
    /// Exact origins (`scheme://host[:port]`) accepted besides those of allowed hosts.
    pub allowed_origins: Vec<String>,
}

/// Why Host/Origin was refused: 403, with a body saying which setting to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// No Host header (HTTP/1.1 requires one).
    MissingHost,
    /// The Host is not an allowed name.
    HostNotAllowed(String),
    /// The Origin is present and not allowed.
    OriginNotAllowed(String),
}

impl HostError {
    /// A message for the client naming the setting to change.
    pub fn message(&self) -> String {
        match self {
            Self::MissingHost => "Forbidden: the request has no Host header".into(),
            Self::HostNotAllowed(h) => format!(
                "Forbidden: Host {h:?} is not allowed (DNS-rebinding protection); set MCP_RESOURCE_URL to the \
                 public URL or add the host to MCP_ALLOWED_HOSTS"
            ),
            Self::OriginNotAllowed(o) => format!(
                "Forbidden: Origin {o:?} is not allowed (DNS-rebinding protection); add it to MCP_ALLOWED_ORIGINS"
            ),
        }
    }
}

/// The host name of a `Host` header or URL authority: port removed, IPv6 brackets kept, lowercased.
pub fn host_name(authority: &str) -> String {
    let name = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    name.to_ascii_lowercase()
}

impl HostPolicy {
    fn host_allowed(&self, name: &str) -> bool {
        self.any_host || is_loopback_host(name) || self.allowed_hosts.iter().any(|h| h == name)
    }

    /// Checks Host, then Origin when present (non-browser clients send none).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), HostError> {
        let host = headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .ok_or(HostError::MissingHost)?;
        let name = host_name(host);
        if !self.host_allowed(&name) {
            return Err(HostError::HostNotAllowed(host.to_owned()));
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(HostError::OriginNotAllowed(origin.to_owned()));
            }
        }
        Ok(())
    }

    /// True when `origin` is listed, or is an http(s) origin of an allowed host.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        if authority.is_empty() || authority.contains('/') {
            return false;
        }
        let name = host_name(authority);
        // `any_host` loosens Host only; an Origin must still be named or be one of ours.
        is_loopback_host(&name) || self.allowed_hosts.contains(&name)
    }
}

/// True for `application/json`, with or without parameters such as charset.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Which response types the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept {
    /// `application/json` is acceptable.
    pub json: bool,
    /// `text/event-stream` is acceptable.
    pub sse: bool,
}

impl Accept {
    /// Reads every Accept header; none at all means anything is acceptable (RFC 9110 section 12.5.1).
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut values = headers.get_all(ACCEPT).iter().peekable();
        if values.peek().is_none() {
            return Self {
                json: true,
                sse: true,
            };
        }
        let mut accept = Self {
            json: false,
            sse: false,
        };
        for value in values {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut parts = range.split(';');
                let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                if refused {
                    continue;
                }
                match media.as_str() {
                    "*/*" => {
                        accept.json = true;
                        accept.sse = true;
                    }
                    "application/json" | "application/*" => accept.json = true,
                    "text/event-stream" | "text/*" => accept.sse = true,
                    _ => {}
                }
            }
        }
        accept
    }
}

/// The declared `Content-Length`, if present and numeric.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(pairs: &[(http::header::HeaderName, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    fn policy() -> HostPolicy {
        HostPolicy {
            allowed_hosts: vec!["mcp.example.com".into()],
            ..Default::default()
        }
    }

    #[test]
    fn allows_loopback_and_configured_hosts_on_any_port() {
        for host in [
            "localhost:3000",
            "127.0.0.1:1",
            "[::1]:8080",
            "MCP.example.com",
            "mcp.example.com:443",
        ] {
            assert_eq!(policy().check(&h(&[(HOST, host)])), Ok(()), "{host}");
        }
    }

    #[test]
    fn rejects_foreign_host_and_origin() {
        assert!(matches!(
            policy().check(&h(&[(HOST, "evil.example")])),
            Err(HostError::HostNotAllowed(_))
        ));
        let r = policy().check(&h(&[
            (HOST, "localhost:3000"),
            (ORIGIN, "http://evil.example"),
        ]));
        assert!(matches!(r, Err(HostError::OriginNotAllowed(_))));
        let r = policy().check(&h(&[(HOST, "localhost:3000"), (ORIGIN, "null")]));
        assert!(matches!(r, Err(HostError::OriginNotAllowed(_))));
        assert_eq!(
            policy().check(&HeaderMap::new()),
            Err(HostError::MissingHost)
        );
    }

    #[test]
    fn accepts_own_origin() {
        let r = policy().check(&h(&[
            (HOST, "mcp.example.com"),
            (ORIGIN, "https://mcp.example.com"),
        ]));
        assert_eq!(r, Ok(()));
        let r = policy().check(&h(&[
            (HOST, "localhost:3000"),
            (ORIGIN, "http://localhost:5173"),
        ]));
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn parses_accept() {
        assert_eq!(
            Accept::from_headers(&HeaderMap::new()),
            Accept {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            Accept::from_headers(&h(&[(ACCEPT, "text/html")])),
            Accept {
                json: false,
                sse: false
            }
        );
        assert_eq!(
            Accept::from_headers(&h(&[(ACCEPT, "application/json")])),
            Accept {
                json: true,
                sse: false
            }
        );
        assert_eq!(
            Accept::from_headers(&h(&[(ACCEPT, "application/json, text/event-stream;q=0")])),
            Accept {
                json: true,
                sse: false
            }
        );
        assert_eq!(
            Accept::from_headers(&h(&[(ACCEPT, "*/*")])),
            Accept {
                json: true,
                sse: true
            }
        );
    }

    #[test]
    fn content_type_allows_charset() {
        assert!(is_json_content_type(&h(&[(
            CONTENT_TYPE,
            "application/json; charset=utf-8"
        )])));
        assert!(!is_json_content_type(&h(&[(CONTENT_TYPE, "text/plain")])));
        assert!(!is_json_content_type(&HeaderMap::new()));
    }
}
