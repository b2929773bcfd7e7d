//! RFC 6570 level-1 URI templates (`{var}` only), matched in linear time; pure.

use std::fmt;

use serde_json::{Map, Value};

/// Why a URI template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    /// A `{` has no `}`.
    Unclosed,
    /// A `}` has no `{`.
    StrayBrace,
    /// An expression beyond level 1 (`{+x}`, `{x*}`, ...) or an invalid variable name.
    Unsupported(String),
    /// Two variables with no literal between them cannot be split unambiguously.
    AdjacentVariables,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unclosed => f.write_str("bad uri template: unclosed {"),
            Self::StrayBrace => f.write_str("bad uri template: stray }"),
            Self::Unsupported(e) => {
                write!(
                    f,
                    "bad uri template: unsupported expression {{{e}}} (level 1 only)"
                )
            }
            Self::AdjacentVariables => {
                f.write_str("bad uri template: two variables need a literal between them")
            }
        }
    }
}

impl std::error::Error for TemplateError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

/// An RFC 6570 level-1 template (`{var}` simple expansion only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UriTemplate {
    source: String,
    parts: Vec<Part>,
}

impl UriTemplate {
    /// Parses a template. Two variables must be separated by a literal (otherwise a split is ambiguous).
    pub(crate) fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest.find('}').ok_or(TemplateError::Unclosed)?;
                    let name = &rest[1..end];
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(TemplateError::Unsupported(name.to_owned()));
                    }
                    if matches!(parts.last(), Some(Part::Var(_))) {
                        return Err(TemplateError::AdjacentVariables);
                    }
                    parts.push(Part::Var(name.to_owned()));
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    if rest[..i].contains('}') {
                        return Err(TemplateError::StrayBrace);
                    }
                    parts.push(Part::Literal(rest[..i].to_owned()));
                    rest = &rest[i..];
                }
                None => {
                    if rest.contains('}') {
                        return Err(TemplateError::StrayBrace);
                    }
                    parts.push(Part::Literal(rest.to_owned()));
                    rest = "";
                }
            }
        }
        Ok(Self {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template text.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Matches left to right, each variable ending at the next occurrence of the following literal.
    /// Level-1 values are percent-encoded, so a value never contains `/`; one pass, linear time.
    pub(crate) fn matches(&self, uri: &str) -> Option<Map<String, Value>> {
        let mut vars = Map::new();
        let mut pos = 0;
        let mut i = 0;
        while i < self.parts.len() {
            match &self.parts[i] {
                Part::Literal(lit) => {
                    if !uri[pos..].starts_with(lit.as_str()) {
                        return None;
                    }
                    pos += lit.len();
                }
                Part::Var(name) => {
                    let end = match self.parts.get(i + 1) {
                        Some(Part::Literal(next)) => pos + uri[pos..].find(next.as_str())?,
                        _ => uri.len(),
                    };
                    let raw = &uri[pos..end];
                    if raw.is_empty() || raw.contains('/') {
                        return None;
                    }
                    vars.insert(name.clone(), Value::String(percent_decode(raw)?));
                    pos = end;
                }
            }
            i += 1;
        }
        (pos == uri.len()).then_some(vars)
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_level_one_templates() {
        let t = UriTemplate::parse("test://template/{id}/data").unwrap();
        assert_eq!(t.matches("test://template/42/data").unwrap()["id"], "42");
        assert_eq!(
            t.matches("test://template/a%20b/data").unwrap()["id"],
            "a b"
        );
        assert!(t.matches("test://template//data").is_none());
        assert!(t.matches("test://template/1/2/data").is_none());
        assert!(t.matches("test://template/1/datax").is_none());
        let t = UriTemplate::parse("file:///{path}").unwrap();
        assert_eq!(t.matches("file:///x").unwrap()["path"], "x");
    }

    #[test]
    fn refuses_ambiguous_and_higher_level_templates() {
        assert!(UriTemplate::parse("x://{a}{b}").is_err());
        assert!(UriTemplate::parse("x://{+a}").is_err());
        assert!(UriTemplate::parse("x://{a").is_err());
    }

    #[test]
    fn stray_brace_is_refused_before_a_variable_too() {
        // Found by the `template` fuzz target: a `}` in a literal was refused only when no `{`
        // followed it, so "x://a}b{c}" parsed and "x://a}b" did not.
        assert_eq!(
            UriTemplate::parse("x://a}b{c}"),
            Err(TemplateError::StrayBrace)
        );
        assert_eq!(
            UriTemplate::parse("x://a}b"),
            Err(TemplateError::StrayBrace)
        );
    }

    #[test]
    fn hostile_uri_is_matched_in_linear_time() {
        let t = UriTemplate::parse("a://{x}-{y}-{z}/end").unwrap();
        let uri = format!("a://{}", "-".repeat(200_000));
        let start = std::time::Instant::now();
        assert!(t.matches(&uri).is_none());
        // Not a timing assertion of speed, only a guard against quadratic blow-up.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
