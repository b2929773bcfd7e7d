//! Prompts: definitions with declared arguments, and handlers that build the messages.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::core::catalog::{Completer, PromptArgSpec, PromptSpec};
use crate::runtime::context::RequestContext;
use crate::tool::HandlerError;

/// What a prompt handler returns: the `messages` array.
pub type PromptResult = Result<Vec<Value>, HandlerError>;

pub(crate) type PromptHandler = dyn Fn(RequestContext, Map<String, Value>) -> Pin<Box<dyn Future<Output = PromptResult> + Send>>
    + Send
    + Sync;

/// A message with role `user`.
pub fn user(content: Value) -> Value {
    json!({"role": "user", "content": content})
}

/// A message with role `assistant`.
pub fn assistant(content: Value) -> Value {
    json!({"role": "assistant", "content": content})
}

/// One declared argument.
#[derive(Debug, Clone)]
pub struct PromptArgument {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Must be supplied.
    pub required: bool,
}

/// A prompt.
#[derive(Clone)]
pub struct Prompt {
    name: String,
    title: Option<String>,
    description: Option<String>,
    arguments: Vec<PromptArgument>,
    handler: Arc<PromptHandler>,
    completer: Option<Completer>,
    extra: Map<String, Value>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Prompt {
    /// A prompt named `name`; `handler` gets validated string arguments.
    pub fn new<F, Fut>(name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(RequestContext, Map<String, Value>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = PromptResult> + Send + 'static,
    {
        Self {
            name: name.into(),
            title: None,
            description: None,
            arguments: Vec::new(),
            handler: Arc::new(move |ctx, args| Box::pin(handler(ctx, args))),
            completer: None,
            extra: Map::new(),
        }
    }

    /// A human title.
    pub fn title(mut self, t: impl Into<String>) -> Self {
        self.title = Some(t.into());
        self
    }

    /// A description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }

    /// Declares an argument.
    pub fn argument(
        mut self,
        name: impl Into<String>,
        description: Option<&str>,
        required: bool,
    ) -> Self {
        self.arguments.push(PromptArgument {
            name: name.into(),
            description: description.map(str::to_owned),
            required,
        });
        self
    }

    /// Any other member of the listed definition (`icons`, `_meta`).
    pub fn field(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra.insert(key.into(), value);
        self
    }

    /// Suggests argument values in `completion/complete`.
    pub fn completer(
        mut self,
        f: impl Fn(&str, &str) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.completer = Some(Arc::new(f));
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The spec the core serves and the handler the runtime calls.
    pub(crate) fn into_parts(self) -> (PromptSpec, Arc<PromptHandler>) {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(t) = &self.title {
            m.insert("title".into(), json!(t));
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        for (k, v) in self.extra {
            m.insert(k, v);
        }
        if !self.arguments.is_empty() {
            let args: Vec<Value> = self
                .arguments
                .iter()
                .map(|a| {
                    let mut o = Map::new();
                    o.insert("name".into(), json!(a.name));
                    if let Some(d) = &a.description {
                        o.insert("description".into(), json!(d));
                    }
                    o.insert("required".into(), json!(a.required));
                    Value::Object(o)
                })
                .collect();
            m.insert("arguments".into(), Value::Array(args));
        }
        let spec = PromptSpec {
            name: self.name,
            definition: Value::Object(m),
            description: self.description,
            arguments: self
                .arguments
                .into_iter()
                .map(|a| PromptArgSpec {
                    name: a.name,
                    required: a.required,
                })
                .collect(),
            completer: self.completer,
        };
        (spec, self.handler)
    }
}
