//! Pure request checks made before any work: Host/Origin (DNS rebinding), Content-Type, Accept, body size.

use std::borrow::Cow;
use std::fmt;

use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN};
use http::{HeaderMap, Uri, Version};

use crate::auth::fetch::is_loopback_host;

/// Which hosts and origins may reach the endpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostPolicy {
    /// Lowercase host names (no port) besides the loopback names.
    pub(crate) allowed_hosts: Vec<String>,
    /// `*` was configured: any Host is accepted (for deployments behind a proxy that checks it).
    pub(crate) any_host: bool,
    /// Exact origins (`scheme://host[:port]`) accepted besides those of allowed hosts.
    pub(crate) allowed_origins: Vec<String>,
}

/// Why Host/Origin was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostError {
    /// No Host header (HTTP/1.1 requires one), or neither `:authority` nor Host (HTTP/2): 400.
    MissingHost,
    /// More than one Host header (RFC 9112 section 3.2): 400.
    RepeatedHost,
    /// A Host that is not `host[:port]`, or (HTTP/2) a Host that differs from `:authority`: 400.
    MalformedHost(String),
    /// An absolute-form request target naming a host this server does not serve: 400.
    ForeignAuthority(String),
    /// The Host is not an allowed name: 403.
    HostNotAllowed(String),
    /// The Origin is present and not allowed: 403.
    OriginNotAllowed(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHost => f.write_str("no Host header"),
            Self::RepeatedHost => f.write_str("more than one Host header"),
            Self::MalformedHost(h) => write!(f, "malformed Host {h:?}"),
            Self::ForeignAuthority(a) => write!(f, "request target names host {a:?}"),
            Self::HostNotAllowed(h) => write!(f, "Host {h:?} not allowed"),
            Self::OriginNotAllowed(o) => write!(f, "Origin {o:?} not allowed"),
        }
    }
}

/// The host name of a `Host` header or URL authority: port removed, IPv6 brackets kept, lowercased.
pub(crate) fn host_name(authority: &str) -> String {
    let name = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    name.to_ascii_lowercase()
}

/// Splits `host[:port]` (RFC 9110 section 7.2), refusing anything else: a port that is not
/// digits, an unclosed or invalid IPv6 literal, characters outside a reg-name.
fn parse_authority(authority: &str) -> Option<Cow<'_, str>> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        ip.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (&authority[..ip.len() + 2], port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let reg_name = |b: u8| {
        matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
            | b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')'
            | b'*' | b'+' | b',' | b';' | b'=' | b'%')
    };
    if host.is_empty() || (!host.starts_with('[') && !host.bytes().all(reg_name)) {
        return None;
    }
    if let Some(p) = port {
        if !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 5 {
            return None;
        }
    }
    // Hosts arrive lower-case almost always; only a mixed-case one is copied.
    Some(if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

impl HostPolicy {
    fn host_allowed(&self, name: &str) -> bool {
        self.any_host || is_loopback_host(name) || self.allowed_hosts.iter().any(|h| h == name)
    }

    /// [`HostPolicy::check`] for HTTP/1.x, [`HostPolicy::check_h2`] for HTTP/2: the same names
    /// are allowed and refused with the same statuses over both.
    pub(crate) fn check_for(
        &self,
        version: Version,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), HostError> {
        if version == Version::HTTP_2 {
            self.check_h2(uri, headers)
        } else {
            self.check(uri, headers)
        }
    }

    /// HTTP/2 (RFC 9113 section 8.3.1): `:authority` (the request URI's authority) plays the
    /// part of Host; a request may carry Host instead, and one carrying both must name the same
    /// authority in each. Then the Origin, as for HTTP/1.1.
    pub(crate) fn check_h2(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), HostError> {
        let mut hosts = headers.get_all(HOST).iter();
        let host = hosts.next();
        if hosts.next().is_some() {
            return Err(HostError::RepeatedHost);
        }
        let host = host
            .map(|h| {
                h.to_str().map_err(|_| {
                    HostError::MalformedHost(String::from_utf8_lossy(h.as_bytes()).into())
                })
            })
            .transpose()?;
        let given = match (uri.authority().map(|a| a.as_str()), host) {
            (Some(authority), Some(host)) if !authority.eq_ignore_ascii_case(host) => {
                return Err(HostError::MalformedHost(host.to_owned()))
            }
            (Some(authority), _) => authority,
            (None, Some(host)) => host,
            (None, None) => return Err(HostError::MissingHost),
        };
        let name =
            parse_authority(given).ok_or_else(|| HostError::MalformedHost(given.to_owned()))?;
        if !self.host_allowed(&name) {
            return Err(HostError::HostNotAllowed(given.to_owned()));
        }
        self.check_origin(headers)
    }

    /// Checks the Host (or an absolute-form target's authority, which replaces it), then the
    /// Origin when present (non-browser clients send none).
    pub(crate) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), HostError> {
        let mut hosts = headers.get_all(HOST).iter();
        let host = hosts.next().ok_or(HostError::MissingHost)?;
        if hosts.next().is_some() {
            return Err(HostError::RepeatedHost);
        }
        let host = host.to_str().map_err(|_| {
            HostError::MalformedHost(String::from_utf8_lossy(host.as_bytes()).into())
        })?;
        let name =
            parse_authority(host).ok_or_else(|| HostError::MalformedHost(host.to_owned()))?;
        if let Some(authority) = uri.authority() {
            // RFC 9112 section 3.2.2: an absolute-form target's authority is the one that counts.
            let target = parse_authority(authority.as_str())
                .ok_or_else(|| HostError::ForeignAuthority(authority.to_string()))?;
            if !self.host_allowed(&target) {
                return Err(HostError::ForeignAuthority(authority.to_string()));
            }
        } else if !self.host_allowed(&name) {
            return Err(HostError::HostNotAllowed(host.to_owned()));
        }
        self.check_origin(headers)
    }

    /// A present Origin must be allowed.
    fn check_origin(&self, headers: &HeaderMap) -> Result<(), HostError> {
        if let Some(origin) = headers.get(ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !self.origin_allowed(origin) {
                return Err(HostError::OriginNotAllowed(origin.to_owned()));
            }
        }
        Ok(())
    }

    /// True when `origin` is listed, or is an http(s) origin of an allowed host.
    pub(crate) fn origin_allowed(&self, origin: &str) -> bool {
        if self.allowed_origins.iter().any(|o| o == origin) {
            return true;
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        let Some(name) = parse_authority(authority) else {
            return false;
        };
        // `any_host` loosens Host only; an Origin must still be named or be one of ours.
        is_loopback_host(&name) || self.allowed_hosts.iter().any(|h| *h == *name)
    }
}

/// True for `application/json`, with or without parameters such as charset.
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    if value.as_bytes() == b"application/json" {
        return true;
    }
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Which response types the client accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accept {
    /// `application/json` is acceptable.
    pub(crate) json: bool,
    /// `text/event-stream` is acceptable.
    pub(crate) sse: bool,
}

/// Accept values that name both types plainly, as MCP clients send them.
const FAST_BOTH: [&[u8]; 2] = [
    b"application/json, text/event-stream",
    b"text/event-stream, application/json",
];

impl Accept {
    /// Adds what one Accept value's comma-separated media ranges allow.
    fn read_ranges(&mut self, value: &str) {
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            let is = |m: &str| media.eq_ignore_ascii_case(m);
            if is("*/*") {
                self.json = true;
                self.sse = true;
            } else if is("application/json") || is("application/*") {
                self.json = true;
            } else if is("text/event-stream") || is("text/*") {
                self.sse = true;
            }
        }
    }

    /// Reads every Accept header; none at all means anything is acceptable (RFC 9110 section 12.5.1).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
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
            // What MCP clients send, decided without splitting (`read_ranges` agrees).
            if FAST_BOTH.contains(&value.as_bytes()) {
                accept.json = true;
                accept.sse = true;
                continue;
            }
            if let Ok(value) = value.to_str() {
                accept.read_ranges(value);
            }
        }
        accept
    }
}

/// The declared `Content-Length`, if present and numeric.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
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

    fn origin_form() -> Uri {
        Uri::from_static("/mcp")
    }

    #[test]
    fn allows_loopback_and_configured_hosts_on_any_port() {
        for host in [
            "localhost:3000",
            "127.0.0.1:1",
            "[::1]:8080",
            "[::1]",
            "MCP.example.com",
            "mcp.example.com:443",
        ] {
            assert_eq!(
                policy().check(&origin_form(), &h(&[(HOST, host)])),
                Ok(()),
                "{host}"
            );
        }
    }

    #[test]
    fn rejects_foreign_host_and_origin() {
        assert!(matches!(
            policy().check(&origin_form(), &h(&[(HOST, "evil.example")])),
            Err(HostError::HostNotAllowed(_))
        ));
        let r = policy().check(
            &origin_form(),
            &h(&[(HOST, "localhost:3000"), (ORIGIN, "http://evil.example")]),
        );
        assert!(matches!(r, Err(HostError::OriginNotAllowed(_))));
        let r = policy().check(
            &origin_form(),
            &h(&[(HOST, "localhost:3000"), (ORIGIN, "null")]),
        );
        assert!(matches!(r, Err(HostError::OriginNotAllowed(_))));
        assert_eq!(
            policy().check(&origin_form(), &HeaderMap::new()),
            Err(HostError::MissingHost)
        );
    }

    #[test]
    fn http2_authority_is_the_host_with_the_same_answers() {
        let at = |a: &str| Uri::try_from(format!("https://{a}/mcp")).unwrap();
        let p = policy();
        let v2 = Version::HTTP_2;
        assert_eq!(
            p.check_for(v2, &at("localhost:3000"), &HeaderMap::new()),
            Ok(())
        );
        assert_eq!(
            p.check_for(v2, &at("mcp.example.com"), &HeaderMap::new()),
            Ok(())
        );
        // A foreign :authority is a foreign Host (403), not an absolute-form target (400).
        assert!(matches!(
            p.check_for(v2, &at("evil.example"), &HeaderMap::new()),
            Err(HostError::HostNotAllowed(_))
        ));
        // Host alone stands in for :authority; neither is a 400.
        assert_eq!(
            p.check_for(v2, &origin_form(), &h(&[(HOST, "localhost")])),
            Ok(())
        );
        assert!(matches!(
            p.check_for(v2, &origin_form(), &h(&[(HOST, "evil.example")])),
            Err(HostError::HostNotAllowed(_))
        ));
        assert_eq!(
            p.check_for(v2, &origin_form(), &HeaderMap::new()),
            Err(HostError::MissingHost)
        );
        // Both, naming different authorities: malformed.
        assert!(matches!(
            p.check_for(v2, &at("localhost:3000"), &h(&[(HOST, "evil.example")])),
            Err(HostError::MalformedHost(_))
        ));
        assert_eq!(
            p.check_for(v2, &at("localhost:3000"), &h(&[(HOST, "LOCALHOST:3000")])),
            Ok(())
        );
        let r = p.check_for(
            v2,
            &at("localhost:3000"),
            &h(&[(ORIGIN, "http://evil.example")]),
        );
        assert!(matches!(r, Err(HostError::OriginNotAllowed(_))));
        // HTTP/1.1 keeps its own rules through the same entry point.
        assert_eq!(
            p.check_for(Version::HTTP_11, &origin_form(), &HeaderMap::new()),
            Err(HostError::MissingHost)
        );
    }

    #[test]
    fn refuses_ambiguous_or_malformed_hosts() {
        assert_eq!(
            policy().check(
                &origin_form(),
                &h(&[(HOST, "localhost"), (HOST, "evil.example")])
            ),
            Err(HostError::RepeatedHost)
        );
        for bad in ["[::1", "localhost:abc", "[zz]:1", "local host", "a:1:2", ""] {
            assert!(
                matches!(
                    policy().check(&origin_form(), &h(&[(HOST, bad)])),
                    Err(HostError::MalformedHost(_))
                ),
                "{bad:?}"
            );
        }
        let absolute = Uri::from_static("http://evil.example/mcp");
        assert!(matches!(
            policy().check(&absolute, &h(&[(HOST, "localhost")])),
            Err(HostError::ForeignAuthority(_))
        ));
        let ours = Uri::from_static("http://localhost:3000/mcp");
        assert_eq!(
            policy().check(&ours, &h(&[(HOST, "localhost:3000")])),
            Ok(())
        );
    }

    #[test]
    fn accepts_own_origin() {
        let r = policy().check(
            &origin_form(),
            &h(&[
                (HOST, "mcp.example.com"),
                (ORIGIN, "https://mcp.example.com"),
            ]),
        );
        assert_eq!(r, Ok(()));
        let r = policy().check(
            &origin_form(),
            &h(&[(HOST, "localhost:3000"), (ORIGIN, "http://localhost:5173")]),
        );
        assert_eq!(r, Ok(()));
    }

    #[test]
    fn the_accept_fast_path_agrees_with_the_general_parse() {
        for v in FAST_BOTH {
            let mut a = Accept {
                json: false,
                sse: false,
            };
            a.read_ranges(std::str::from_utf8(v).unwrap());
            assert_eq!(
                a,
                Accept {
                    json: true,
                    sse: true
                }
            );
        }
    }

    #[test]
    fn parses_accept() {
        let a = |v: &str| Accept::from_headers(&h(&[(ACCEPT, v)]));
        assert_eq!(
            Accept::from_headers(&HeaderMap::new()),
            Accept {
                json: true,
                sse: true
            }
        );
        assert_eq!(
            a("text/html"),
            Accept {
                json: false,
                sse: false
            }
        );
        assert_eq!(
            a("application/json"),
            Accept {
                json: true,
                sse: false
            }
        );
        assert_eq!(
            a("application/json, text/event-stream;q=0"),
            Accept {
                json: true,
                sse: false
            }
        );
        assert_eq!(
            a("*/*"),
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
