//! Reading the bearer token from the request headers (RFC 6750 section 2.1); pure.

use http::header::AUTHORIZATION;
use http::HeaderMap;

/// What the request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// No `Authorization` header, or one with another scheme (`Basic ...`).
    Absent,
    /// `Bearer <value>`; the value may still be syntactically bad.
    Bearer(&'a str),
    /// A `Bearer` header whose value is not a b64token (RFC 6750 section 2.1), or not visible ASCII.
    MalformedBearer,
}

/// The request itself is malformed: RFC 6750 `invalid_request`, HTTP 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// More than one `Authorization` header.
    DuplicateAuthorization,
    /// `Bearer` with nothing after it.
    EmptyBearer,
}

impl BearerError {
    /// The generic `error_description` for the challenge.
    pub fn description(&self) -> &'static str {
        match self {
            Self::DuplicateAuthorization => "more than one Authorization header",
            Self::EmptyBearer => "empty bearer token",
        }
    }
}

/// Reads `Authorization: Bearer <token>`. The scheme is case-insensitive and may be followed by
/// one or more spaces. Query strings and form bodies are never consulted (MCP forbids them).
pub fn extract(headers: &HeaderMap) -> Result<Credentials<'_>, BearerError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(Credentials::Absent);
    };
    if values.next().is_some() {
        return Err(BearerError::DuplicateAuthorization);
    }
    let bytes = value.as_bytes();
    const SCHEME: &[u8] = b"bearer";
    if bytes.len() < SCHEME.len() || !bytes[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return Ok(Credentials::Absent);
    }
    let rest = &bytes[SCHEME.len()..];
    match rest.first() {
        None => return Err(BearerError::EmptyBearer),
        Some(b' ') => {}
        // "Bearerx ..." is some other scheme.
        Some(_) => return Ok(Credentials::Absent),
    }
    let token = trim_spaces(rest);
    if token.is_empty() {
        return Err(BearerError::EmptyBearer);
    }
    match std::str::from_utf8(token) {
        Ok(token) if is_b64token(token) => Ok(Credentials::Bearer(token)),
        _ => Ok(Credentials::MalformedBearer),
    }
}

fn trim_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// The b64token characters, as a table: one load per byte of a token checked on every request.
const B64TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    t
};

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| B64TOKEN[b as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn accepts_lowercase_scheme_and_extra_spaces() {
        assert_eq!(
            extract(&with(&["bearer a.b.c"])),
            Ok(Credentials::Bearer("a.b.c"))
        );
        assert_eq!(
            extract(&with(&["BEARER  a.b.c"])),
            Ok(Credentials::Bearer("a.b.c"))
        );
    }

    #[test]
    fn other_scheme_counts_as_absent() {
        assert_eq!(
            extract(&with(&["Basic dXNlcjpwdw=="])),
            Ok(Credentials::Absent)
        );
        assert_eq!(extract(&with(&["Bearerx a.b.c"])), Ok(Credentials::Absent));
        assert_eq!(extract(&HeaderMap::new()), Ok(Credentials::Absent));
    }

    #[test]
    fn rejects_duplicate_header_and_empty_bearer() {
        assert_eq!(
            extract(&with(&["Bearer a", "Bearer b"])),
            Err(BearerError::DuplicateAuthorization)
        );
        assert_eq!(extract(&with(&["Bearer"])), Err(BearerError::EmptyBearer));
        assert_eq!(
            extract(&with(&["Bearer   "])),
            Err(BearerError::EmptyBearer)
        );
    }

    #[test]
    fn non_b64token_is_malformed() {
        assert_eq!(
            extract(&with(&["Bearer a b"])),
            Ok(Credentials::MalformedBearer)
        );
        assert_eq!(
            extract(&with(&["Bearer {json}"])),
            Ok(Credentials::MalformedBearer)
        );
        assert_eq!(
            extract(&with(&["Bearer ==="])),
            Ok(Credentials::MalformedBearer)
        );
    }
}
