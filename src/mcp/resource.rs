//! Resources and resource templates: definitions, readers, and RFC 6570 level-1 URI templates matched in linear time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::context::RequestContext;
use super::tool::HandlerError;

/// What a reader returns: the `contents` array.
pub type ReadResult = Result<Vec<Value>, HandlerError>;

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Reader = dyn Fn(RequestContext, String) -> BoxFut<ReadResult> + Send + Sync;
type TemplateReader =
    dyn Fn(RequestContext, String, Map<String, Value>) -> BoxFut<ReadResult> + Send + Sync;
/// Suggests values for an argument: `(argument name, partial value) -> candidates`.
pub type Completer = Arc<dyn Fn(&str, &str) -> Vec<String> + Send + Sync>;

/// `{"uri","mimeType","text"}`.
pub fn text_contents(uri: &str, mime_type: &str, text: impl Into<String>) -> Value {
    json!({"uri": uri, "mimeType": mime_type, "text": text.into()})
}

/// `{"uri","mimeType","blob"}` with base64 data.
pub fn blob_contents(uri: &str, mime_type: &str, base64_data: impl Into<String>) -> Value {
    json!({"uri": uri, "mimeType": mime_type, "blob": base64_data.into()})
}

/// Metadata shared by resources and templates.
#[derive(Debug, Clone, Default)]
struct Meta {
    title: Option<String>,
    description: Option<String>,
    mime_type: Option<String>,
    extra: Map<String, Value>,
}

impl Meta {
    fn write(&self, m: &mut Map<String, Value>) {
        if let Some(t) = &self.title {
            m.insert("title".into(), json!(t));
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(t) = &self.mime_type {
            m.insert("mimeType".into(), json!(t));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
    }
}

/// A fixed-URI resource.
#[derive(Clone)]
pub struct Resource {
    uri: String,
    name: String,
    meta: Meta,
    subscribable: bool,
    reader: Arc<Reader>,
}

impl fmt::Debug for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resource")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

macro_rules! meta_setters {
    () => {
        /// A human title.
        pub fn title(mut self, t: impl Into<String>) -> Self {
            self.meta.title = Some(t.into());
            self
        }
        /// A description.
        pub fn description(mut self, d: impl Into<String>) -> Self {
            self.meta.description = Some(d.into());
            self
        }
        /// The MIME type.
        pub fn mime_type(mut self, t: impl Into<String>) -> Self {
            self.meta.mime_type = Some(t.into());
            self
        }
        /// Any other listed field (`size`, `annotations`, `icons`, `_meta`).
        pub fn field(mut self, key: impl Into<String>, value: Value) -> Self {
            self.meta.extra.insert(key.into(), value);
            self
        }
    };
}

impl Resource {
    /// A resource at `uri` read by `reader`.
    pub fn new<F, Fut>(uri: impl Into<String>, name: impl Into<String>, reader: F) -> Self
    where
        F: Fn(RequestContext, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ReadResult> + Send + 'static,
    {
        Self {
            uri: uri.into(),
            name: name.into(),
            meta: Meta::default(),
            subscribable: false,
            reader: Arc::new(move |ctx, uri| Box::pin(reader(ctx, uri))),
        }
    }

    meta_setters!();

    /// Clients may subscribe to updates of this resource (initialize era).
    pub fn subscribable(mut self) -> Self {
        self.subscribable = true;
        self
    }

    /// The URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// True when subscribable.
    pub fn is_subscribable(&self) -> bool {
        self.subscribable
    }

    /// The listed definition.
    pub fn definition(&self) -> Value {
        let mut m = Map::new();
        m.insert("uri".into(), json!(self.uri));
        m.insert("name".into(), json!(self.name));
        self.meta.write(&mut m);
        Value::Object(m)
    }

    /// Reads the resource.
    pub fn read(&self, ctx: RequestContext) -> BoxFut<ReadResult> {
        (self.reader)(ctx, self.uri.clone())
    }
}

/// A family of resources named by a URI template.
#[derive(Clone)]
pub struct ResourceTemplate {
    template: UriTemplate,
    name: String,
    meta: Meta,
    reader: Arc<TemplateReader>,
    completer: Option<Completer>,
}

impl fmt::Debug for ResourceTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceTemplate")
            .field("template", &self.template.source)
            .finish_non_exhaustive()
    }
}

impl ResourceTemplate {
    /// A template such as `test://template/{id}/data`; `reader` gets the URI and its variables.
    pub fn new<F, Fut>(
        template: &str,
        name: impl Into<String>,
        reader: F,
    ) -> Result<Self, TemplateError>
    where
        F: Fn(RequestContext, String, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ReadResult> + Send + 'static,
    {
        Ok(Self {
            template: UriTemplate::parse(template)?,
            name: name.into(),
            meta: Meta::default(),
            reader: Arc::new(move |ctx, uri, vars| Box::pin(reader(ctx, uri, vars))),
            completer: None,
        })
    }

    meta_setters!();

    /// Suggests values for the template's variables in `completion/complete`.
    pub fn completer(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.completer = Some(Arc::new(f));
        self
    }

    /// The template string.
    pub fn uri_template(&self) -> &str {
        &self.template.source
    }

    /// The completer, if any.
    pub fn completions(&self) -> Option<&Completer> {
        self.completer.as_ref()
    }

    /// The listed definition.
    pub fn definition(&self) -> Value {
        let mut m = Map::new();
        m.insert("uriTemplate".into(), json!(self.template.source));
        m.insert("name".into(), json!(self.name));
        self.meta.write(&mut m);
        Value::Object(m)
    }

    /// Matches `uri`, giving the variables.
    pub fn matches(&self, uri: &str) -> Option<Map<String, Value>> {
        self.template.matches(uri)
    }

    /// Reads `uri` with its matched variables.
    pub fn read(
        &self,
        ctx: RequestContext,
        uri: String,
        vars: Map<String, Value>,
    ) -> BoxFut<ReadResult> {
        (self.reader)(ctx, uri, vars)
    }
}

/// Why a URI template was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError(pub String);

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad uri template: {}", self.0)
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
pub struct UriTemplate {
    source: String,
    parts: Vec<Part>,
}

impl UriTemplate {
    /// Parses a template. Two variables must be separated by a literal (otherwise a split is ambiguous).
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            match rest.find('{') {
                Some(0) => {
                    let end = rest
                        .find('}')
                        .ok_or_else(|| TemplateError("unclosed {".into()))?;
                    let name = &rest[1..end];
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(TemplateError(format!(
                            "unsupported expression {{{name}}} (level 1 only)"
                        )));
                    }
                    if matches!(parts.last(), Some(Part::Var(_))) {
                        return Err(TemplateError(
                            "two variables need a literal between them".into(),
                        ));
                    }
                    parts.push(Part::Var(name.to_owned()));
                    rest = &rest[end + 1..];
                }
                Some(i) => {
                    parts.push(Part::Literal(rest[..i].to_owned()));
                    rest = &rest[i..];
                }
                None => {
                    if rest.contains('}') {
                        return Err(TemplateError("stray }".into()));
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

    /// Matches left to right, each variable ending at the next occurrence of the following literal.
    /// Level-1 values are percent-encoded, so a value never contains `/`; one pass, linear time.
    pub fn matches(&self, uri: &str) -> Option<Map<String, Value>> {
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
    fn hostile_uri_is_matched_in_linear_time() {
        let t = UriTemplate::parse("a://{x}-{y}-{z}/end").unwrap();
        let uri = format!("a://{}", "-".repeat(200_000));
        let start = std::time::Instant::now();
        assert!(t.matches(&uri).is_none());
        // Not a timing assertion of speed, only a guard against quadratic blow-up.
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
