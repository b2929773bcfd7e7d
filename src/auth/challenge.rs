//! The auth layer's error enum and its single mapping to the wire: status, `WWW-Authenticate`, body (RFC 6750 section 3).

use std::fmt;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::bearer::BearerError;
use super::jwt::JwtError;

/// Why a request was not authorized. Precise for the log; coarse on the wire.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer credentials at all: 401 with no `error` parameter (RFC 6750 section 3.1).
    NoCredentials,
    /// The Authorization header itself is malformed: 400 `invalid_request`.
    InvalidRequest(BearerError),
    /// The `Bearer` value is not even a b64token: 401 `invalid_token`.
    MalformedBearer,
    /// The token failed verification: 401 `invalid_token`.
    InvalidToken(JwtError),
    /// The token is valid but lacks scopes: 403 `insufficient_scope`.
    InsufficientScope {
        /// Every scope the operation needs (space-joined on the wire).
        required: Vec<String>,
    },
    /// The token is valid but its login is too weak or too old for the operation (a tool's
    /// step-up policy): 401 `insufficient_user_authentication` (RFC 9470).
    InsufficientUserAuthentication {
        /// The `error_description`.
        description: String,
        /// The acceptable `acr` values, space-separated, in order of preference.
        acr_values: Option<String>,
        /// The largest acceptable age of the login, in seconds.
        max_age: Option<u64>,
    },
    /// No key set has ever been fetched, so no token can be judged yet: 503 with `Retry-After`.
    KeysUnavailable {
        /// Seconds until the next fetch attempt.
        retry_after_secs: u64,
    },
    /// The client's address presented too many tokens with bad signatures lately; a token that
    /// would need a full verification is refused unchecked: 429 with `Retry-After`.
    TooManySignatureFailures {
        /// Seconds until the address may try again.
        retry_after_secs: u64,
    },
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCredentials => f.write_str("no bearer credentials"),
            Self::InvalidRequest(e) => write!(f, "invalid request: {}", e.description()),
            Self::MalformedBearer => f.write_str("bearer value is not a b64token"),
            Self::InvalidToken(e) => write!(f, "invalid token: {e}"),
            Self::InsufficientScope { required } => {
                write!(f, "insufficient scope, needs {}", required.join(" "))
            }
            Self::InsufficientUserAuthentication { description, .. } => {
                write!(f, "insufficient user authentication: {description}")
            }
            Self::KeysUnavailable { .. } => {
                f.write_str("no signing key set fetched from the issuer yet")
            }
            Self::TooManySignatureFailures { retry_after_secs } => write!(
                f,
                "signature-failure rate limit hit for this client; retry after {retry_after_secs} s"
            ),
        }
    }
}

impl std::error::Error for AuthError {}

impl From<JwtError> for AuthError {
    fn from(e: JwtError) -> Self {
        Self::InvalidToken(e)
    }
}

/// The response parts for a rejected request.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// HTTP status.
    pub status: StatusCode,
    /// `WWW-Authenticate`, absent only on 503 and 429.
    pub www_authenticate: Option<HeaderValue>,
    /// `Retry-After` seconds, on 503 and 429 only.
    pub retry_after_secs: Option<u64>,
    /// JSON body `{"error":..., "error_description":...}`.
    pub body: Bytes,
}

/// The server-wide parts of every challenge: the metadata URL and the scopes the server requires.
#[derive(Debug, Clone)]
pub struct Challenger {
    /// `resource_metadata="..."`, already quoted and escaped.
    resource_metadata: String,
    /// Server-wide required scopes, space-joined (empty when none).
    required_scopes: String,
}

impl Challenger {
    /// `resource_metadata_url` is the path-inserted RFC 9728 document URL.
    /// `required_scopes` must already be valid scope tokens (checked at configuration time).
    pub fn new(resource_metadata_url: &str, required_scopes: &[String]) -> Self {
        Self {
            resource_metadata: quoted(resource_metadata_url),
            required_scopes: required_scopes.join(" "),
        }
    }

    /// The one place an [`AuthError`] becomes bytes on the wire.
    pub fn reject(&self, err: &AuthError) -> Rejection {
        let (status, error, description, scope): (_, Option<&str>, Option<&str>, Option<String>) =
            match err {
                AuthError::NoCredentials => (
                    StatusCode::UNAUTHORIZED,
                    None,
                    None,
                    (!self.required_scopes.is_empty()).then(|| self.required_scopes.clone()),
                ),
                AuthError::InvalidRequest(e) => (
                    StatusCode::BAD_REQUEST,
                    Some("invalid_request"),
                    Some(e.description()),
                    None,
                ),
                AuthError::MalformedBearer => (
                    StatusCode::UNAUTHORIZED,
                    Some("invalid_token"),
                    Some("token malformed"),
                    None,
                ),
                AuthError::InvalidToken(e) => (
                    StatusCode::UNAUTHORIZED,
                    Some("invalid_token"),
                    Some(e.description()),
                    None,
                ),
                AuthError::InsufficientScope { required } => (
                    StatusCode::FORBIDDEN,
                    Some("insufficient_scope"),
                    Some("token lacks a required scope"),
                    Some(required.join(" ")),
                ),
                AuthError::InsufficientUserAuthentication { description, .. } => (
                    StatusCode::UNAUTHORIZED,
                    Some("insufficient_user_authentication"),
                    Some(description.as_str()),
                    None,
                ),
                AuthError::KeysUnavailable { retry_after_secs } => return Rejection {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    www_authenticate: None,
                    retry_after_secs: Some((*retry_after_secs).max(1)),
                    body: json_body(
                        "temporarily_unavailable",
                        Some("the issuer's signing keys have not been fetched yet; retry shortly"),
                    ),
                },
                AuthError::TooManySignatureFailures { retry_after_secs } => return Rejection {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    www_authenticate: None,
                    retry_after_secs: Some((*retry_after_secs).max(1)),
                    body: json_body(
                        "too_many_requests",
                        Some("too many tokens with invalid signatures from this client; new tokens are not checked until Retry-After has passed"),
                    ),
                },
            };
        let mut header = String::from("Bearer ");
        let mut first = true;
        let mut param = |name: &str, value: &str| {
            if !first {
                header.push_str(", ");
            }
            first = false;
            header.push_str(name);
            header.push('=');
            header.push_str(value);
        };
        if let Some(error) = error {
            param("error", &quoted(error));
        }
        if let Some(d) = description {
            param("error_description", &quoted(d));
        }
        if let Some(scope) = &scope {
            param("scope", &quoted(scope));
        }
        if let AuthError::InsufficientUserAuthentication {
            acr_values,
            max_age,
            ..
        } = err
        {
            // RFC 9470 section 3: both are quoted auth-params.
            if let Some(acr) = acr_values {
                param("acr_values", &quoted(acr));
            }
            if let Some(age) = max_age {
                param("max_age", &quoted(&age.to_string()));
            }
        }
        param("resource_metadata", &self.resource_metadata);
        Rejection {
            status,
            www_authenticate: Some(
                HeaderValue::from_str(&header).expect("challenge is built from visible ASCII"),
            ),
            retry_after_secs: None,
            body: json_body(
                error.unwrap_or("unauthorized"),
                description.or(match err {
                    AuthError::NoCredentials => Some("a bearer token is required"),
                    _ => None,
                }),
            ),
        }
    }
}

fn json_body(error: &str, description: Option<&str>) -> Bytes {
    let mut body = serde_json::Map::new();
    body.insert("error".into(), error.into());
    if let Some(d) = description {
        body.insert("error_description".into(), d.into());
    }
    Bytes::from(serde_json::to_vec(&body).expect("a map of strings serializes"))
}

/// An RFC 9110 quoted-string: `"` and `\` are escaped; anything outside visible ASCII and space is dropped.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {}
        }
    }
    out.push('"');
    out
}

/// RFC 6749 section 3.3 `scope-token = 1*NQCHAR`: the characters allowed in a configured scope.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRM: &str = "http://localhost:3000/.well-known/oauth-protected-resource/mcp";

    fn header(r: &Rejection) -> &str {
        r.www_authenticate.as_ref().unwrap().to_str().unwrap()
    }

    #[test]
    fn no_credentials_has_no_error_parameter() {
        let r = Challenger::new(PRM, &[]).reject(&AuthError::NoCredentials);
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(header(&r), format!(r#"Bearer resource_metadata="{PRM}""#));
    }

    #[test]
    fn no_credentials_names_required_scopes() {
        let scopes = ["mcp:read".to_owned(), "mcp:write".to_owned()];
        let r = Challenger::new(PRM, &scopes).reject(&AuthError::NoCredentials);
        assert_eq!(
            header(&r),
            format!(r#"Bearer scope="mcp:read mcp:write", resource_metadata="{PRM}""#)
        );
    }

    #[test]
    fn expired_token_challenge_is_generic() {
        let r = Challenger::new(PRM, &[]).reject(&AuthError::InvalidToken(JwtError::Expired));
        assert_eq!(
            header(&r),
            format!(
                r#"Bearer error="invalid_token", error_description="token expired", resource_metadata="{PRM}""#
            )
        );
        assert_eq!(
            &r.body[..],
            br#"{"error":"invalid_token","error_description":"token expired"}"#
        );
    }

    #[test]
    fn keys_unavailable_is_503_with_retry_after_and_no_challenge() {
        let r = Challenger::new(PRM, &[]).reject(&AuthError::KeysUnavailable {
            retry_after_secs: 0,
        });
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.retry_after_secs, Some(1));
        assert!(r.www_authenticate.is_none());
    }

    #[test]
    fn signature_failure_limit_is_429_with_retry_after_and_a_clear_message() {
        let r = Challenger::new(PRM, &[]).reject(&AuthError::TooManySignatureFailures {
            retry_after_secs: 7,
        });
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.retry_after_secs, Some(7));
        assert!(r.www_authenticate.is_none());
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["error"], "too_many_requests");
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .contains("invalid signatures"));
    }

    #[test]
    fn step_up_challenge_follows_rfc_9470() {
        let r = Challenger::new(PRM, &[]).reject(&AuthError::InsufficientUserAuthentication {
            description: "more recent authentication is required".into(),
            acr_values: Some("gold silver".into()),
            max_age: Some(300),
        });
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            header(&r),
            format!(
                r#"Bearer error="insufficient_user_authentication", error_description="more recent authentication is required", acr_values="gold silver", max_age="300", resource_metadata="{PRM}""#
            )
        );
        assert_eq!(
            &r.body[..],
            br#"{"error":"insufficient_user_authentication","error_description":"more recent authentication is required"}"#
        );
    }

    #[test]
    fn quoted_escapes_quote_and_backslash() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
    }

    #[test]
    fn scope_token_rejects_quote_space_backslash() {
        assert!(is_scope_token("mcp:tools.read"));
        assert!(!is_scope_token("a b"));
        assert!(!is_scope_token("a\"b"));
        assert!(!is_scope_token("a\\b"));
        assert!(!is_scope_token(""));
    }
}
