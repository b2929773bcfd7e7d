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

/// The process-wide sink every test here installs: whichever test logs first would otherwise
/// leave the default one in place for the rest.
fn sink() -> Arc<Collect> {
    static SINK: std::sync::OnceLock<Arc<Collect>> = std::sync::OnceLock::new();
    SINK.get_or_init(Arc::default).clone()
}

#[tokio::test]
async fn the_embedders_clock_random_source_and_log_sink_are_the_ones_used() {
    let resource = "http://localhost:3000/mcp";
    let random = Arc::new(CountingRandom::default());
    let sink = sink();
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
    // The sink is process-wide and the first one installed wins; every test of this binary
    // installs the same one, so every request line of this test is in it.
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

/// The system clock, counting its readings.
#[derive(Default)]
struct CountingClock(AtomicU64);

impl Clock for CountingClock {
    fn now(&self) -> SystemTime {
        self.0.fetch_add(1, Ordering::Relaxed);
        SystemTime::now()
    }
}

#[test]
fn a_tool_call_reads_the_clock_twice_at_its_start_and_at_its_end() {
    let resource = "http://localhost:3000/mcp";
    let clock = Arc::new(CountingClock::default());
    let c2 = clock.clone();
    let (server, issuer) = build(
        Options {
            // Metrics on: the run's end is recorded, and the log line shares that reading.
            configure: Some(Box::new(move |b| b.clock(c2).metrics().log_sink(sink()))),
            ..Options::default()
        },
        resource,
    );
    // Taken outside a runtime, the service starts no maintenance task (which reads the clock
    // on its own schedule), so every reading counted here is a request's.
    let svc = server.service();
    let token = token(&issuer, resource);
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{
        "name":"whoami","arguments":{},"_meta":modern_meta()}})
    .to_string();
    let call = || {
        let req = Request::post("/mcp")
            .header("host", "localhost:3000")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "whoami")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap();
        let svc = svc.clone();
        async move {
            let resp = svc.call(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            assert!(
                std::str::from_utf8(&bytes)
                    .unwrap()
                    .contains(r#""sub":"alice""#),
                "{bytes:?}"
            );
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        call().await; // the token's first use fills the verification cache
        let before = clock.0.load(Ordering::Relaxed);
        for _ in 0..10 {
            call().await;
        }
        assert_eq!(
            clock.0.load(Ordering::Relaxed) - before,
            20,
            "per call: one reading at the start, which every decision shares, and one at the end, \
             which the run's record (metrics) and the log line share"
        );
    });
}
