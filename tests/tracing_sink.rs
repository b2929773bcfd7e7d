//! With the `tracing` cargo feature, the server's log lines reach the embedder's `tracing` subscriber (run with `cargo test --features tracing --test tracing_sink`).
#![cfg(feature = "tracing")]

mod support;

use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::service::Service as _;
use support::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

type Seen = Arc<Mutex<Vec<(Level, String, String)>>>;

/// A minimal subscriber that keeps every event's level, target and message.
struct Capture(Seen);

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_owned();
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && self.0.is_empty() {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*meta.level(), meta.target().to_owned(), m.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[tokio::test]
async fn log_lines_reach_the_embedders_subscriber() {
    let seen: Seen = Arc::default();
    tracing::subscriber::set_global_default(Capture(seen.clone())).unwrap();
    let resource = "http://localhost:3000/mcp";
    let (server, _) = build(Options::default(), resource);
    let resp = server
        .service()
        .call(
            Request::post("/mcp")
                .header("host", "localhost:3000")
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let lines = seen.lock().unwrap().clone();
    let request = lines
        .iter()
        .find(|(_, _, m)| m.starts_with("request method=POST path=/mcp status=401"))
        .unwrap_or_else(|| panic!("no request event in {lines:?}"));
    assert_eq!((request.0, request.1.as_str()), (Level::INFO, "vouch_mcp"));
}
