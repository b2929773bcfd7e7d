//! Resources and resource templates: the definitions a server registers and the readers that serve them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::core::catalog::{Completer, ResourceSpec, TemplateSpec};
use crate::core::template::{TemplateError, UriTemplate};
use crate::runtime::context::RequestContext;
use crate::tool::HandlerError;

/// What a reader returns: the `contents` array.
pub type ReadResult = Result<Vec<Value>, HandlerError>;

pub(crate) type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type Reader = dyn Fn(RequestContext, String) -> BoxFut<ReadResult> + Send + Sync;
pub(crate) type TemplateReader =
    dyn Fn(RequestContext, String, Map<String, Value>) -> BoxFut<ReadResult> + Send + Sync;

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

    /// The spec the core serves and the reader the runtime calls.
    pub(crate) fn into_parts(self) -> (ResourceSpec, Arc<Reader>) {
        let mut m = Map::new();
        m.insert("uri".into(), json!(self.uri));
        m.insert("name".into(), json!(self.name));
        self.meta.write(&mut m);
        let spec = ResourceSpec {
            uri: self.uri,
            definition: Value::Object(m),
            subscribable: self.subscribable,
        };
        (spec, self.reader)
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
            .field("template", &self.template.source())
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
        self.template.source()
    }

    /// The spec the core serves and the reader the runtime calls.
    pub(crate) fn into_parts(self) -> (TemplateSpec, Arc<TemplateReader>) {
        let mut m = Map::new();
        m.insert("uriTemplate".into(), json!(self.template.source()));
        m.insert("name".into(), json!(self.name));
        self.meta.write(&mut m);
        let spec = TemplateSpec {
            template: self.template,
            definition: Value::Object(m),
            completer: self.completer,
        };
        (spec, self.reader)
    }
}
