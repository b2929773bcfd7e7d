//! An embedder's own clock, random source and log sink are the ones the server uses. (Its own
//! test binary: the log sink is process-wide and the first one installed wins.)

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::service::Service as _;
use serde_json::json;
use support::*;
use vouch_mcp::log::{LogRecord, LogSink};
use vouch_mcp::{Clock, RandomError, RandomSource};

fn token(issuer: &DevIssuer, resource: &str) -> String {
    issuer.mint(&issuer.claims(resource, "alice", "alice@example.com", true, now(), 3600))
}

/// A clock stopped at a chosen moment.
struct FixedClock(SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// Counts the random bytes asked for, and hands out a recognisable pattern.
#[derive(Default)]
struct CountingRandom(AtomicU64);

impl RandomSource for CountingRandom {
    fn fill(&self, dest: &mut [u8]) -> Result<(), RandomError> {
        self.0.fetch_add(dest.len() as u64, Ordering::Relaxed);
        dest.fill(0xAB);
        Ok(())
    }
}

/// Keeps every line.
#[derive(Default)]
struct Collect(Mutex<Vec<String>>);

impl LogSink for Collect {
    fn write(&self, record: LogRecord) {
        self.0.lock().unwrap().push(record.message);
    }
}

#[tokio::test]
async fn the_embedders_clock_random_source_and_log_sink_are_the_ones_used() {
    let resource = "http://localhost:3000/mcp";
    let random = Arc::new(CountingRandom::default());
    let sink = Arc::new(Collect::default());
    // Two hours from now: a token valid for one hour has expired by this clock.
    let later = SystemTime::now() + Duration::from_secs(7200);
    let (r2, s2) = (random.clone(), sink.clone());
    let (server, issuer) = build(
        Options {
            configure: Some(Box::new(move |b| {
                b.clock(Arc::new(FixedClock(later)))
                    .random_source(r2)
                    .log_sink(s2)
            })),
            ..Options::default()
        },
        resource,
    );
    assert_eq!(
        random.0.load(Ordering::Relaxed),
        32 + 8,
        "the sealing key and the request-id prefix came from it"
    );
    let svc = server.service();
    let call = |token: String| {
        let svc = svc.clone();
        async move {
            let req = Request::post("/mcp")
                .header("host", "localhost:3000")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(
                    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                        "protocolVersion":"2025-11-25","capabilities":{},
                        "clientInfo":{"name":"t","version":"0"}}})
                    .to_string(),
                )))
                .unwrap();
            svc.call(req).await.unwrap()
        }
    };
    let fresh = token(&issuer, resource);
    let resp = call(fresh).await;
    assert_eq!(
        resp.status(),
        401,
        "the server's clock, not the system's, judged expiry"
    );
    let iat = later.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let valid_then = issuer.mint(&issuer.claims(resource, "alice", "a@x", false, iat, 60));
    let resp = call(valid_then).await;
    assert_eq!(resp.status(), 200);
    let session = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    // 24 bytes of 0xAB, base64url: the session id came from the embedder's source.
    assert_eq!(session, "q6urq6urq6urq6urq6urq6urq6urq6ur");
    assert_eq!(random.0.load(Ordering::Relaxed), 32 + 8 + 24);
    // The sink is process-wide and the first one installed wins; this test binary installs
    // no other, so every request line of this test is in it.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lines = sink.0.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("request method=POST path=/mcp status=401")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rpc=initialize") && l.contains("sub=alice")),
        "{lines:#?}"
    );
}
