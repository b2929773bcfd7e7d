//! The JWKS cache against a real loopback issuer whose behaviour each test switches at runtime:
//! caching, TTL from max-age (clamped), single-flight, the unknown-kid rate limit, stale keys
//! while the issuer is down, backoff, bad responses, bad keys, redirects, the 503 before the
//! first key set (end to end through the server), waiting for the first fetch, recovery when the
//! issuer comes up late or publishes a key right after a failed fetch, OIDC discovery, and the
//! verification cache across refreshes.
//!
//! Every duration is short and real; every wait is a bounded poll.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use support::DevIssuer;
use support::{now, other_key, test_issuer, ISSUER};
use vouch_mcp::auth::{
    AudiencePolicy, AuthError, Authenticator, FetchError, HttpFetcher, JwksCache, JwksParseError,
    JwtError, KeyProvider, KeySet, Policy, RefreshPolicy,
};

// ---------------------------------------------------------------------------------------------
// A switchable loopback JWKS server, HTTP/1.1 by hand so every byte and every delay is ours.
// ---------------------------------------------------------------------------------------------

const JWKS_PATH: &str = "/jwks";
/// Where redirects point. It serves a valid key set, so following a redirect would be visible.
const MOVED_PATH: &str = "/jwks-moved";

/// What `/jwks` answers.
#[derive(Debug, Clone)]
enum Mode {
    /// 200 `application/json` with this body and optional Cache-Control.
    Json {
        body: String,
        cache_control: Option<&'static str>,
    },
    /// This status with a small JSON body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with `Content-Length: n` and n bytes.
    HugeDeclared(usize),
    /// 200, chunked, n bytes in total (no length declared up front).
    HugeChunked(usize),
    /// 200 with `Content-Length: total`, one byte every `every`.
    Slow { total: usize, every: Duration },
    /// A redirect with this status to `Location: to`.
    Redirect { status: u16, to: String },
}

/// One request the server saw.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    path: String,
    served: Mode,
}

struct State {
    mode: Mutex<Mode>,
    /// Served at [`MOVED_PATH`].
    moved_body: Mutex<String>,
    /// Wait this long after reading the request, before answering (widens race windows).
    delay: Mutex<Duration>,
    /// Other paths and what they answer (the OIDC discovery document).
    routes: Mutex<Vec<(String, Mode)>>,
    hits: Mutex<Vec<Hit>>,
}

struct JwksServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl JwksServer {
    async fn start(mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            mode: Mutex::new(mode),
            moved_body: Mutex::new(jwks_doc(&[&other_key()])),
            delay: Mutex::new(Duration::ZERO),
            routes: Mutex::new(Vec::new()),
            hits: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Self {
            addr,
            state,
            accept: Mutex::new(Some(accept)),
        }
    }

    fn url(&self) -> String {
        format!("http://{}{JWKS_PATH}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn serve_keys(&self, keys: &[&DevIssuer]) {
        self.set(Mode::Json {
            body: jwks_doc(keys),
            cache_control: None,
        });
    }

    /// Serves `mode` at `path` (besides `/jwks`).
    fn route(&self, path: &str, mode: Mode) {
        let mut routes = self.state.routes.lock().unwrap();
        routes.retain(|(p, _)| p != path);
        routes.push((path.to_owned(), mode));
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_delay(&self, d: Duration) {
        *self.state.delay.lock().unwrap() = d;
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Requests to `/jwks`.
    fn count(&self) -> usize {
        self.hits().iter().filter(|h| h.path == JWKS_PATH).count()
    }

    /// Closes the listening socket: connects are refused until [`JwksServer::restart`].
    async fn stop(&self) {
        let task = self.accept.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        // Prove it: a connect is now refused.
        assert!(
            TcpStream::connect(self.addr).await.is_err(),
            "the JWKS port still accepts connections after stop()"
        );
    }

    /// Listens again on the same port.
    async fn restart(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("rebind the JWKS port");
        let task = tokio::spawn(accept_loop(listener, self.state.clone()));
        *self.accept.lock().unwrap() = Some(task);
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(serve_one(stream, state.clone()));
    }
}

async fn serve_one(mut stream: TcpStream, state: Arc<State>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 16 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let served = if path == MOVED_PATH {
        Mode::Json {
            body: state.moved_body.lock().unwrap().clone(),
            cache_control: None,
        }
    } else if path == JWKS_PATH {
        state.mode.lock().unwrap().clone()
    } else if let Some((_, mode)) = state
        .routes
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == path)
    {
        mode.clone()
    } else {
        Mode::Status(404)
    };
    state.hits.lock().unwrap().push(Hit {
        at: Instant::now(),
        path,
        served: served.clone(),
    });
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // Write errors are expected (the client hangs up on oversize or slow bodies).
    let _ = respond(&mut stream, served).await;
    let _ = stream.shutdown().await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Whatever",
    }
}

fn head(status: u16, extra: &[(&str, String)]) -> String {
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nConnection: close\r\n",
        reason(status)
    );
    for (k, v) in extra {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    h
}

async fn respond(stream: &mut TcpStream, mode: Mode) -> std::io::Result<()> {
    let json_type = ("Content-Type", "application/json".to_owned());
    match mode {
        Mode::Json {
            body,
            cache_control,
        } => {
            let mut extra = vec![json_type, ("Content-Length", body.len().to_string())];
            if let Some(cc) = cache_control {
                extra.push(("Cache-Control", cc.to_owned()));
            }
            stream.write_all(head(200, &extra).as_bytes()).await?;
            stream.write_all(body.as_bytes()).await
        }
        Mode::Status(status) => {
            let body = r#"{"error":"down"}"#;
            let extra = [json_type, ("Content-Length", body.len().to_string())];
            stream.write_all(head(status, &extra).as_bytes()).await?;
            stream.write_all(body.as_bytes()).await
        }
        Mode::Garbage => {
            let body = "<html><body>502 Bad Gateway (not JSON)</body></html>";
            let extra = [json_type, ("Content-Length", body.len().to_string())];
            stream.write_all(head(200, &extra).as_bytes()).await?;
            stream.write_all(body.as_bytes()).await
        }
        Mode::HugeDeclared(n) => {
            let extra = [json_type, ("Content-Length", n.to_string())];
            stream.write_all(head(200, &extra).as_bytes()).await?;
            write_filler(stream, n, false).await
        }
        Mode::HugeChunked(n) => {
            let extra = [json_type, ("Transfer-Encoding", "chunked".to_owned())];
            stream.write_all(head(200, &extra).as_bytes()).await?;
            write_filler(stream, n, true).await?;
            stream.write_all(b"0\r\n\r\n").await
        }
        Mode::Slow { total, every } => {
            let extra = [json_type, ("Content-Length", total.to_string())];
            stream.write_all(head(200, &extra).as_bytes()).await?;
            stream.flush().await?;
            for _ in 0..total {
                stream.write_all(b" ").await?;
                stream.flush().await?;
                tokio::time::sleep(every).await;
            }
            Ok(())
        }
        Mode::Redirect { status, to } => {
            let extra = [("Location", to), ("Content-Length", "0".to_owned())];
            stream.write_all(head(status, &extra).as_bytes()).await
        }
    }
}

/// `n` bytes of a JSON-looking prefix and spaces, optionally as 8 KiB chunks.
async fn write_filler(stream: &mut TcpStream, n: usize, chunked: bool) -> std::io::Result<()> {
    let mut left = n;
    let mut first = true;
    while left > 0 {
        let len = left.min(8 * 1024);
        let mut piece = vec![b' '; len];
        if first {
            let prefix = br#"{"keys":["#;
            let k = prefix.len().min(len);
            piece[..k].copy_from_slice(&prefix[..k]);
            first = false;
        }
        if chunked {
            stream.write_all(format!("{len:x}\r\n").as_bytes()).await?;
            stream.write_all(&piece).await?;
            stream.write_all(b"\r\n").await?;
        } else {
            stream.write_all(&piece).await?;
        }
        left -= len;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

/// The audience of every token here (the cache tests do not need the HTTP server).
const AUD: &str = "https://mcp.test/mcp";

fn jwks_doc(keys: &[&DevIssuer]) -> String {
    let keys: Vec<Value> = keys.iter().map(|k| k.public_jwk()).collect();
    json!({ "keys": keys }).to_string()
}

fn keys_mode(keys: &[&DevIssuer], cache_control: Option<&'static str>) -> Mode {
    Mode::Json {
        body: jwks_doc(keys),
        cache_control,
    }
}

fn token(key: &DevIssuer) -> String {
    key.mint(&key.claims(AUD, "alice", "alice@example.com", false, now(), 3600))
}

/// A key with kid `kid` that no JWKS served here contains (unless a test adds it).
fn ghost(kid: &str, seed: u8) -> DevIssuer {
    DevIssuer::from_secret(ISSUER, kid, [seed; 32]).expect("valid scalar")
}

/// Long TTLs (no background refetch during a test), no unknown-kid cooldown or minimum
/// interval between fetches, fast backoff.
fn quiet_policy() -> RefreshPolicy {
    RefreshPolicy {
        default_ttl: Duration::from_secs(60),
        min_ttl: Duration::from_millis(10),
        max_ttl: Duration::from_secs(120),
        unknown_kid_cooldown: Duration::ZERO,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        startup_backoff_max: Duration::from_millis(100),
        min_fetch_interval: Duration::ZERO,
    }
}

fn fetcher(url: &str) -> HttpFetcher {
    HttpFetcher::new(url, Duration::from_secs(2), 64 * 1024).expect("loopback http is allowed")
}

fn authenticator(cache: &JwksCache) -> Authenticator {
    Authenticator::new(
        Policy::new(ISSUER, AudiencePolicy::OneOf(vec![AUD.to_owned()])),
        Arc::new(cache.clone()),
        Vec::new(),
    )
}

fn kids(set: &KeySet) -> Vec<String> {
    set.kids()
        .map(|k| k.unwrap_or_default().to_owned())
        .collect()
}

/// Polls `cond` every 5 ms for at most `within`.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A cache for `server` with `policy`, refresher started, first set fetched.
async fn ready_cache(fetcher: HttpFetcher, policy: RefreshPolicy) -> JwksCache {
    let cache = JwksCache::new(fetcher, policy);
    cache.spawn_refresher();
    assert!(
        eventually(Duration::from_secs(2), || cache.current().is_ok()).await,
        "first JWKS fetch did not succeed"
    );
    cache
}

fn unknown_kid(r: Result<std::sync::Arc<vouch_mcp::Principal>, AuthError>) -> bool {
    matches!(r, Err(AuthError::InvalidToken(JwtError::UnknownKid)))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

// ---------------------------------------------------------------------------------------------
// Caching, TTL, single-flight, rate limit.
// ---------------------------------------------------------------------------------------------

/// Many verifications (sequential and concurrent) are served from one fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_verifications_share_one_fetch() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let cache = ready_cache(fetcher(&jwks.url()), quiet_policy()).await;
    let auth = Arc::new(authenticator(&cache));
    let t = token(&a);
    for _ in 0..50 {
        let p = auth
            .verify_token(&t, now())
            .await
            .expect("token A verifies");
        assert_eq!(p.subject.as_deref(), Some("alice"));
    }
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (auth, t) = (auth.clone(), t.clone());
        tasks.push(tokio::spawn(
            async move { auth.verify_token(&t, now()).await },
        ));
    }
    for task in tasks {
        task.await.unwrap().expect("token A verifies concurrently");
    }
    assert_eq!(jwks.count(), 1, "one fetch serves every verification");
    assert_eq!(cache.fetch_count(), 1);
}

/// The next scheduled fetch comes one TTL after the last: the response's max-age clamped to
/// [min_ttl, max_ttl], or default_ttl without one. max-age=0 and no-store do not cause a hot loop;
/// a huge max-age does not stop refreshing.
#[tokio::test]
async fn ttl_is_max_age_clamped_to_min_and_max() {
    let a = test_issuer();
    let policy = RefreshPolicy {
        default_ttl: Duration::from_millis(500),
        min_ttl: Duration::from_millis(250),
        max_ttl: Duration::from_millis(750),
        ..quiet_policy()
    };
    // Wide enough apart that a loaded machine's scheduling delay (+200 ms allowed) cannot
    // make one case look like another.
    let expected = |cc: Option<&str>| -> u128 {
        match cc {
            None => 500,
            Some("max-age=0") | Some("no-store") => 250,
            Some("public, max-age=86400") => 750,
            other => panic!("unexpected cache-control {other:?}"),
        }
    };
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let _cache = ready_cache(fetcher(&jwks.url()), policy).await;
    // Two fetches under each header; the gap after a fetch is decided by what that fetch got.
    for (cc, until) in [
        (Some("max-age=0"), 3),
        (Some("public, max-age=86400"), 5),
        (Some("no-store"), 7),
    ] {
        assert!(eventually(Duration::from_secs(5), || jwks.count() >= until - 1).await);
        jwks.set(keys_mode(&[&a], cc));
    }
    assert!(
        eventually(Duration::from_secs(5), || jwks.count() >= 9).await,
        "scheduled refreshes stopped: {} fetches",
        jwks.count()
    );
    let hits = jwks.hits();
    let mut checked = 0;
    for pair in hits.windows(2) {
        let Mode::Json { cache_control, .. } = &pair[0].served else {
            panic!("only key sets are served here")
        };
        let want = expected(*cache_control);
        let gap = ms(pair[1].at - pair[0].at);
        assert!(
            gap + 10 >= want && gap <= want + 200,
            "after a fetch with Cache-Control {cache_control:?} the next came after {gap} ms, want ~{want} ms; all gaps: {:?}",
            hits.windows(2)
                .map(|p| ms(p[1].at - p[0].at))
                .collect::<Vec<_>>()
        );
        checked += 1;
    }
    assert!(checked >= 8);
}

/// A max-age inside [min_ttl, max_ttl] is used as is (1 s here).
#[tokio::test]
async fn ttl_uses_max_age_inside_the_bounds() {
    let a = test_issuer();
    let policy = RefreshPolicy {
        default_ttl: Duration::from_millis(100),
        min_ttl: Duration::from_millis(100),
        max_ttl: Duration::from_secs(3),
        ..quiet_policy()
    };
    let jwks = JwksServer::start(keys_mode(&[&a], Some("public, max-age=1"))).await;
    let _cache = ready_cache(fetcher(&jwks.url()), policy).await;
    assert!(eventually(Duration::from_millis(1500), || jwks.count() >= 2).await);
    let hits = jwks.hits();
    let gap = ms(hits[1].at - hits[0].at);
    assert!((990..=1300).contains(&gap), "max-age=1 gave a {gap} ms TTL");
}

/// 50 concurrent requests with a kid only the rotated set has: exactly one extra fetch, all succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_kid_refetch_is_single_flight() {
    let (a, b) = (test_issuer(), other_key());
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let policy = RefreshPolicy {
        unknown_kid_cooldown: Duration::from_secs(30),
        ..quiet_policy()
    };
    let cache = ready_cache(fetcher(&jwks.url()), policy).await;
    assert_eq!(jwks.count(), 1);
    // Rotate to B only, and answer slowly so all 50 callers pile up behind one fetch.
    jwks.serve_keys(&[&b]);
    jwks.set_delay(Duration::from_millis(150));
    let auth = Arc::new(authenticator(&cache));
    let tb = token(&b);
    let barrier = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (auth, tb, barrier) = (auth.clone(), tb.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            auth.verify_token(&tb, now()).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(p) => {
                assert_eq!(p.subject.as_deref(), Some("alice"));
                ok += 1;
            }
            Err(e) => panic!("a concurrent caller failed after rotation: {e:?}"),
        }
    }
    assert_eq!(ok, 50);
    assert_eq!(jwks.count(), 2, "exactly one extra fetch for 50 callers");
    assert_eq!(cache.fetch_count(), 2);
    assert_eq!(kids(&cache.current().unwrap()), ["test-key-2"]);
}

/// A caller that verified against the old set, and reaches `refresh_for_unknown_kid` just after
/// another caller's refetch installed the new set, must get the new set to retry with (else a
/// token whose kid is in the current set would be refused as "unknown signing key").
#[tokio::test]
async fn caller_holding_the_old_set_gets_the_new_one_after_a_concurrent_refetch() {
    let (a, b) = (test_issuer(), other_key());
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let policy = RefreshPolicy {
        unknown_kid_cooldown: Duration::from_secs(30),
        ..quiet_policy()
    };
    let cache = ready_cache(fetcher(&jwks.url()), policy).await;
    jwks.serve_keys(&[&b]);
    // Caller 2 loads the current set (A) and finds no key for B's kid...
    let seen_by_caller_2 = cache.current().unwrap();
    assert_eq!(kids(&seen_by_caller_2), ["test-key-1"]);
    // ...meanwhile caller 1 refetches and installs B...
    let fresh = cache
        .refresh_for_unknown_kid(&seen_by_caller_2)
        .await
        .expect("caller 1 refetches");
    assert_eq!(kids(&fresh), ["test-key-2"]);
    // ...then caller 2 asks for a newer set. B is newer than what it verified against.
    let for_caller_2 = cache.refresh_for_unknown_kid(&seen_by_caller_2).await;
    assert_eq!(jwks.count(), 2, "no extra fetch is needed");
    let set = for_caller_2.expect("caller 2 must be handed the set caller 1 installed");
    assert_eq!(kids(&set), ["test-key-2"]);
}

/// Within the cooldown a second unknown kid causes no fetch and is refused as an unknown key,
/// even if the issuer now has it; after the cooldown it is fetched and accepted.
#[tokio::test]
async fn unknown_kid_refetch_is_rate_limited() {
    let a = test_issuer();
    let (g1, g2) = (ghost("ghost-1", 11), ghost("ghost-2", 13));
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let policy = RefreshPolicy {
        unknown_kid_cooldown: Duration::from_millis(600),
        ..quiet_policy()
    };
    let cache = ready_cache(fetcher(&jwks.url()), policy).await;
    let auth = authenticator(&cache);
    assert_eq!(jwks.count(), 1);

    // Tokens are minted up front: signing is slow in debug builds and the cooldown is short.
    let (t1, t2) = (token(&g1), token(&g2));
    let started = Instant::now();
    assert!(unknown_kid(auth.verify_token(&t1, now()).await));
    assert_eq!(jwks.count(), 2, "the first unknown kid refetches once");

    assert!(unknown_kid(auth.verify_token(&t2, now()).await));
    assert_eq!(
        jwks.count(),
        2,
        "a second unknown kid within the cooldown does not fetch"
    );

    // The issuer publishes ghost-2, but the cooldown still holds.
    jwks.serve_keys(&[&a, &g2]);
    for _ in 0..20 {
        assert!(unknown_kid(auth.verify_token(&t2, now()).await));
    }
    assert!(
        started.elapsed() < Duration::from_millis(600),
        "test too slow to be inside the cooldown"
    );
    assert_eq!(
        jwks.count(),
        2,
        "unknown kids cannot make us hammer the issuer"
    );

    tokio::time::sleep(Duration::from_millis(650).saturating_sub(started.elapsed())).await;
    let p = auth
        .verify_token(&t2, now())
        .await
        .expect("after the cooldown the new kid is fetched and accepted");
    assert_eq!(p.subject.as_deref(), Some("alice"));
    assert_eq!(jwks.count(), 3);
    // Known kids never fetch.
    auth.verify_token(&token(&a), now()).await.unwrap();
    assert_eq!(jwks.count(), 3);
}

// ---------------------------------------------------------------------------------------------
// The issuer failing.
// ---------------------------------------------------------------------------------------------

/// The issuer goes down (connections refused): tokens for the last good set keep verifying,
/// fetches keep being retried (but not hammered), and a rotated set is picked up once it is back.
#[tokio::test]
async fn stale_keys_are_served_while_the_issuer_is_down() {
    let (a, b) = (test_issuer(), other_key());
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let policy = RefreshPolicy {
        default_ttl: Duration::from_millis(100),
        min_ttl: Duration::from_millis(100),
        max_ttl: Duration::from_millis(100),
        unknown_kid_cooldown: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(200),
        ..RefreshPolicy::default()
    };
    let fetcher = HttpFetcher::new(&jwks.url(), Duration::from_millis(500), 64 * 1024).unwrap();
    let cache = ready_cache(fetcher, policy).await;
    let auth = authenticator(&cache);
    let ta = token(&a);

    jwks.stop().await;
    let before = cache.fetch_count();
    let down_since = Instant::now();
    while down_since.elapsed() < Duration::from_millis(700) {
        let p = auth.verify_token(&ta, now()).await;
        assert!(p.is_ok(), "stale key set must keep serving: {p:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let attempts = cache.fetch_count() - before;
    // TTL 100 ms, then retries after 50, 100, 200, 200 ms: about 4-5 attempts in 700 ms.
    // A TTL-paced retry would make ~7, a hot loop hundreds.
    assert!(
        (2..=6).contains(&attempts),
        "{attempts} fetch attempts in 700 ms while down"
    );

    // An unknown kid while down: one failed refetch, refused as unknown, old set kept.
    let tb = token(&b);
    assert!(unknown_kid(auth.verify_token(&tb, now()).await));
    assert_eq!(kids(&cache.current().unwrap()), ["test-key-1"]);

    // Back up, rotated to B: the background retry picks it up (backoff is capped at 200 ms).
    jwks.serve_keys(&[&b]);
    jwks.restart().await;
    assert!(
        eventually(Duration::from_secs(1), || cache
            .current()
            .is_ok_and(|s| kids(&s) == ["test-key-2"]))
        .await,
        "the rotated set was not picked up after the issuer came back"
    );
    auth.verify_token(&tb, now()).await.expect("B verifies now");
}

/// Failed fetches are retried with doubling delays up to the cap, and the backoff resets after
/// a success.
#[tokio::test]
async fn failed_fetches_retry_with_exponential_backoff() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let policy = RefreshPolicy {
        default_ttl: Duration::from_millis(50),
        min_ttl: Duration::from_millis(50),
        max_ttl: Duration::from_millis(50),
        unknown_kid_cooldown: Duration::from_secs(60),
        backoff_initial: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        ..RefreshPolicy::default()
    };
    let cache = ready_cache(fetcher(&jwks.url()), policy).await;
    let auth = authenticator(&cache);
    let ta = token(&a);

    jwks.set(Mode::Status(500));
    let failures = |jwks: &JwksServer| -> Vec<Instant> {
        jwks.hits()
            .iter()
            .filter(|h| matches!(h.served, Mode::Status(500)))
            .map(|h| h.at)
            .collect()
    };
    assert!(eventually(Duration::from_secs(5), || failures(&jwks).len() >= 5).await);
    let f = failures(&jwks);
    let gaps: Vec<u128> = f.windows(2).map(|w| ms(w[1] - w[0])).collect();
    // Each gap at least its step, and short of the next one even on a loaded machine.
    for (gap, want) in gaps.iter().zip([100u128, 200, 400, 400]) {
        assert!(
            *gap + 10 >= want && *gap <= want + want / 2 + 60,
            "retry gaps {gaps:?}, want ~[100, 200, 400, 400]"
        );
    }
    auth.verify_token(&ta, now())
        .await
        .expect("the last good set is still served");

    // Recovery resets the backoff: after a success, the first retry is again ~100 ms.
    jwks.serve_keys(&[&a]);
    let recovered = || {
        jwks.hits()
            .last()
            .is_some_and(|h| matches!(h.served, Mode::Json { .. }))
    };
    assert!(eventually(Duration::from_secs(1), recovered).await);
    jwks.set(Mode::Status(500));
    let m = failures(&jwks).len();
    assert!(eventually(Duration::from_secs(3), || failures(&jwks).len() >= m + 2).await);
    let f = failures(&jwks);
    let gap = ms(f[m + 1] - f[m]);
    // Without the reset it would be the capped 400 ms.
    assert!(
        (90..=300).contains(&gap),
        "backoff did not reset after a success: first retry after {gap} ms"
    );
}

/// Asks the cache for a refetch (cooldown 0) while `/jwks` misbehaves; checks the fetch happened,
/// failed, and left the previous set in place and working.
async fn refetch_fails_and_keeps_last_good(cache: &JwksCache, what: &str) {
    let a = test_issuer();
    let auth = authenticator(cache);
    let before = cache.current().expect("a good set is loaded");
    let n = cache.fetch_count();
    let fresh = cache.refresh_for_unknown_kid(&before).await;
    assert!(
        fresh.is_none(),
        "{what}: a failed fetch must not yield a set"
    );
    assert_eq!(
        cache.fetch_count(),
        n + 1,
        "{what}: the fetch was attempted"
    );
    let after = cache.current().expect("still have a set");
    assert!(
        Arc::ptr_eq(&before, &after),
        "{what}: the last good set was replaced"
    );
    auth.verify_token(&token(&a), now())
        .await
        .unwrap_or_else(|e| panic!("{what}: token for the last good key refused: {e:?}"));
}

/// Bodies that are not a usable JWKS: non-JSON, JSON that is not a key set, a key set with no
/// usable key. Each is an error and the last good set stays.
#[tokio::test]
async fn garbage_responses_are_errors_that_keep_the_last_good_set() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let cache = ready_cache(fetcher(&jwks.url()), quiet_policy()).await;
    let direct = fetcher(&jwks.url());

    jwks.set(Mode::Garbage);
    let body = direct.fetch().await.expect("HTTP itself is fine").body;
    assert_eq!(KeySet::parse(&body).unwrap_err(), JwksParseError::NotJson);
    refetch_fails_and_keeps_last_good(&cache, "non-JSON body").await;

    for (body, want) in [
        (r#"{"keys":{}}"#, JwksParseError::NoKeysArray),
        (r#"{"issuer":"x"}"#, JwksParseError::NoKeysArray),
        (r#"["not","an","object"]"#, JwksParseError::NotJson),
        (r#"{"keys":[],"keys":[]}"#, JwksParseError::NotJson),
        (r#"{"keys":[]}"#, JwksParseError::NoUsableKeys),
        (
            r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}"#,
            JwksParseError::NoUsableKeys,
        ),
    ] {
        jwks.set(Mode::Json {
            body: body.to_owned(),
            cache_control: None,
        });
        let fetched = direct.fetch().await.unwrap().body;
        assert_eq!(KeySet::parse(&fetched).unwrap_err(), want, "{body}");
        refetch_fails_and_keeps_last_good(&cache, body).await;
    }
}

/// Bodies over the size cap, declared or streamed, are refused; so is one just over the
/// production 1 MiB cap. The last good set stays.
#[tokio::test]
async fn huge_responses_are_errors_that_keep_the_last_good_set() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let cap = 4 * 1024;
    let small = HttpFetcher::new(&jwks.url(), Duration::from_secs(2), cap).unwrap();
    let cache = ready_cache(small.clone(), quiet_policy()).await;

    for mode in [Mode::HugeDeclared(cap + 1), Mode::HugeChunked(cap + 1)] {
        jwks.set(mode.clone());
        let r = small.fetch().await;
        assert!(matches!(r, Err(FetchError::TooLarge)), "{mode:?}: {r:?}");
        refetch_fails_and_keeps_last_good(&cache, &format!("{mode:?}")).await;
    }
    // Exactly at the cap is fine (the limit is inclusive), so the check is not off by one.
    let mut body = jwks_doc(&[&a]);
    body.push_str(&" ".repeat(cap - body.len()));
    jwks.set(Mode::Json {
        body,
        cache_control: None,
    });
    small
        .fetch()
        .await
        .expect("a body of exactly the cap is accepted");

    let production = HttpFetcher::new(
        &jwks.url(),
        Duration::from_secs(2),
        vouch_mcp::defaults::JWKS_MAX_BYTES,
    )
    .unwrap();
    let over = vouch_mcp::defaults::JWKS_MAX_BYTES + 1;
    for mode in [Mode::HugeDeclared(over), Mode::HugeChunked(over)] {
        jwks.set(mode.clone());
        let started = Instant::now();
        let r = production.fetch().await;
        assert!(
            matches!(r, Err(FetchError::TooLarge)),
            "1 MiB + 1 {mode:?}: {r:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

/// A body dripped slower than the timeout, and a response head that never comes in time, are
/// timeouts; the fetch gives up at about the timeout and the last good set stays.
#[tokio::test]
async fn slow_responses_time_out_and_keep_the_last_good_set() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let timeout = Duration::from_millis(300);
    let f = HttpFetcher::new(&jwks.url(), timeout, 64 * 1024).unwrap();
    let cache = ready_cache(f.clone(), quiet_policy()).await;

    // Body: head at once, then one byte every 50 ms of 1000.
    jwks.set(Mode::Slow {
        total: 1000,
        every: Duration::from_millis(50),
    });
    let started = Instant::now();
    let r = f.fetch().await;
    let took = started.elapsed();
    assert!(matches!(r, Err(FetchError::Timeout)), "{r:?}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(800),
        "slow body gave up after {took:?}"
    );
    refetch_fails_and_keeps_last_good(&cache, "slow body").await;

    // Head: nothing for longer than the timeout.
    jwks.serve_keys(&[&a]);
    jwks.set_delay(Duration::from_secs(2));
    let started = Instant::now();
    let r = f.fetch().await;
    let took = started.elapsed();
    assert!(matches!(r, Err(FetchError::Timeout)), "{r:?}");
    assert!(took < Duration::from_millis(800), "slow head took {took:?}");
    refetch_fails_and_keeps_last_good(&cache, "slow head").await;
}

/// Any status but 200 is an error, and the last good set stays.
#[tokio::test]
async fn non_200_responses_are_errors_that_keep_the_last_good_set() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let direct = fetcher(&jwks.url());
    let cache = ready_cache(direct.clone(), quiet_policy()).await;
    for status in [500u16, 503, 404] {
        jwks.set(Mode::Status(status));
        let r = direct.fetch().await;
        assert!(
            matches!(&r, Err(FetchError::Status(s)) if s.as_u16() == status),
            "{status}: {r:?}"
        );
        refetch_fails_and_keeps_last_good(&cache, &format!("status {status}")).await;
    }
}

/// Redirects are errors and are not followed, before the first set and after it.
#[tokio::test]
async fn redirects_are_not_followed() {
    let a = test_issuer();
    let jwks = JwksServer::start(Mode::Redirect {
        status: 302,
        to: MOVED_PATH.to_owned(),
    })
    .await;
    let direct = fetcher(&jwks.url());
    let r = direct.fetch().await;
    assert!(
        matches!(&r, Err(FetchError::Redirect(s)) if s.as_u16() == 302),
        "{r:?}"
    );

    // Before any good set, the cache stays empty (503 upstream) rather than following.
    let cache = JwksCache::new(fetcher(&jwks.url()), quiet_policy());
    cache.spawn_refresher();
    assert!(eventually(Duration::from_secs(1), || cache.fetch_count() >= 2).await);
    assert!(
        cache.current().is_err(),
        "a redirect must not produce a key set"
    );

    // After a good set, every redirect status (relative and absolute targets) is an error.
    jwks.serve_keys(&[&a]);
    assert!(eventually(Duration::from_secs(1), || cache.current().is_ok()).await);
    let absolute = format!("http://{}{MOVED_PATH}", jwks.addr);
    for (status, to) in [
        (301u16, MOVED_PATH.to_owned()),
        (302, absolute.clone()),
        (307, MOVED_PATH.to_owned()),
        (308, absolute),
    ] {
        jwks.set(Mode::Redirect { status, to });
        let r = direct.fetch().await;
        assert!(
            matches!(&r, Err(FetchError::Redirect(s)) if s.as_u16() == status),
            "{status}: {r:?}"
        );
        refetch_fails_and_keeps_last_good(&cache, &format!("redirect {status}")).await;
    }
    assert!(
        jwks.hits().iter().all(|h| h.path != MOVED_PATH),
        "a redirect target was requested"
    );
}

/// A JWKS mixing unusable entries with usable ones keeps the usable ones (and only those).
#[tokio::test]
async fn a_jwks_with_some_bad_keys_keeps_the_good_ones() {
    let (a, b) = (test_issuer(), other_key());
    let ja = a.public_jwk();
    let jb = b.public_jwk();
    let with = |base: &Value, kid: &str, edits: &[(&str, Value)]| -> Value {
        let mut k = base.clone();
        k["kid"] = json!(kid);
        for (name, v) in edits {
            k[*name] = v.clone();
        }
        k
    };
    let doc = json!({"keys": [
        "not an object",
        {"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"},
        with(&ja, "p384", &[("crv", json!("P-384"))]),
        with(&ja, "enc", &[("use", json!("enc"))]),
        with(&ja, "es384", &[("alg", json!("ES384"))]),
        with(&ja, "no-verify", &[("key_ops", json!(["sign"]))]),
        with(&ja, "private", &[("d", json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))]),
        with(&ja, "short-x", &[("x", json!("AAAA"))]),
        with(&ja, "off-curve", &[("y", jb["y"].clone())]),
        with(&ja, "number-kid", &[("kid", json!(7))]),
        ja.clone(),
        with(&jb, "test-key-1", &[]), // a duplicate kid: the first wins
        jb.clone(),
    ]});
    let jwks = JwksServer::start(Mode::Json {
        body: doc.to_string(),
        cache_control: None,
    })
    .await;
    let cache = ready_cache(fetcher(&jwks.url()), quiet_policy()).await;
    assert_eq!(
        kids(&cache.current().unwrap()),
        ["test-key-1", "test-key-2"]
    );
    let auth = authenticator(&cache);
    auth.verify_token(&token(&a), now())
        .await
        .expect("A verifies");
    auth.verify_token(&token(&b), now())
        .await
        .expect("B verifies");
    // A's key under a kid whose entry was dropped is not usable.
    let a_as_private = DevIssuer::from_secret(ISSUER, "private", [7u8; 32]).unwrap();
    assert!(unknown_kid(
        auth.verify_token(&token(&a_as_private), now()).await
    ));
    // B's key published under A's kid (the duplicate) was not installed over A.
    let b_as_a = DevIssuer::from_secret(ISSUER, "test-key-1", [9u8; 32]).unwrap();
    assert!(matches!(
        auth.verify_token(&token(&b_as_a), now()).await,
        Err(AuthError::InvalidToken(JwtError::SignatureInvalid))
    ));
}

// ---------------------------------------------------------------------------------------------
// End to end: 503 before the first key set.
// ---------------------------------------------------------------------------------------------

/// With the issuer dead at start, a valid token gets 503 + Retry-After + a JSON body and no
/// challenge (the token is not at fault); once the JWKS is up, the same token gets 200.
#[tokio::test]
async fn no_key_set_yet_is_503_then_200_once_the_jwks_is_up() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    jwks.stop().await; // dead: connections refused
    let policy = RefreshPolicy {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(100),
        ..quiet_policy()
    };
    let f = HttpFetcher::new(&jwks.url(), Duration::from_millis(500), 64 * 1024).unwrap();
    let cache = JwksCache::new(f, policy);
    cache.spawn_refresher();
    let s = support::start(support::Options {
        keys: Some(Arc::new(cache.clone())),
        ..Default::default()
    })
    .await;
    assert!(eventually(Duration::from_secs(1), || cache.fetch_count() >= 1).await);
    let tok = s.token("alice", false);
    let whoami = || {
        support::modern(
            &s,
            &tok,
            json!(1),
            "tools/call",
            json!({"name": "whoami", "arguments": {}}),
        )
    };

    let r = whoami().await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("www-authenticate"),
        None,
        "503 carries no challenge"
    );
    assert_eq!(
        r.text(),
        r#"{"error":"temporarily_unavailable","error_description":"the issuer's signing keys have not been fetched yet; retry shortly"}"#
    );
    // A request with no token at all is still a plain 401 challenge.
    let r = support::raw(
        s.addr,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());

    jwks.restart().await;
    let mut last = None;
    for _ in 0..40 {
        let r = tokio::time::timeout(Duration::from_secs(1), whoami())
            .await
            .expect("request timed out");
        if r.status == 200 {
            last = Some(r);
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = last.expect("still 503 one second after the JWKS came up");
    assert_eq!(
        r.json()["result"]["structuredContent"]["sub"],
        json!("alice")
    );
}

// ---------------------------------------------------------------------------------------------
// Startup and recovery (default timings unless said otherwise).

fn default_policy() -> RefreshPolicy {
    RefreshPolicy::default()
}

/// Requests that arrive while the very first fetch is in flight wait for it (bounded by the JWKS
/// timeout) and are served, instead of an immediate 503; they share that one fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_during_the_first_fetch_wait_for_it_instead_of_getting_503() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    jwks.set_delay(Duration::from_millis(400));
    let cache = JwksCache::new(fetcher(&jwks.url()), default_policy());
    cache.spawn_refresher();
    let auth = Arc::new(authenticator(&cache));
    let t = token(&a);
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (auth, t) = (auth.clone(), t.clone());
            tokio::spawn(async move { auth.verify_token(&t, now()).await })
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap()
            .expect("served once the first fetch landed");
    }
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    assert_eq!(cache.fetch_count(), 1, "one fetch for all of them");
}

/// The wait is bounded by the JWKS timeout: a first fetch slower than that gives the 503.
#[tokio::test]
async fn the_wait_for_the_first_fetch_is_bounded_by_the_jwks_timeout() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    jwks.set_delay(Duration::from_secs(3));
    let f = HttpFetcher::new(&jwks.url(), Duration::from_millis(300), 64 * 1024).unwrap();
    let cache = JwksCache::new(f, default_policy());
    cache.spawn_refresher();
    let auth = authenticator(&cache);
    let started = Instant::now();
    let r = auth.verify_token(&token(&a), now()).await;
    assert!(
        matches!(r, Err(AuthError::KeysUnavailable { retry_after_secs }) if retry_after_secs >= 1),
        "{r:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

/// A first fetch that failed: 503 with Retry-After, at once (no wait without a fetch to wait for).
#[tokio::test]
async fn a_failed_first_fetch_gives_503_with_retry_after() {
    let a = test_issuer();
    let jwks = JwksServer::start(Mode::Status(500)).await;
    let cache = JwksCache::new(fetcher(&jwks.url()), default_policy());
    cache.spawn_refresher();
    assert!(eventually(Duration::from_secs(1), || cache.fetch_count() >= 1).await);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let auth = authenticator(&cache);
    let r = auth.verify_token(&token(&a), now()).await;
    assert_eq!(
        r.unwrap_err(),
        AuthError::KeysUnavailable {
            retry_after_secs: 1
        }
    );
}

/// Polls like a client honouring `Retry-After` would (every 250 ms here); returns how long after
/// `since` the token was first accepted.
async fn accepted_after(
    auth: &Authenticator,
    token: &str,
    since: Instant,
    within: Duration,
) -> Duration {
    loop {
        if auth.verify_token(token, now()).await.is_ok() {
            return since.elapsed();
        }
        assert!(since.elapsed() < within, "still refused after {within:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The issuer comes up well after the server (long enough for the backoff to reach its cap):
/// the first token is accepted within 2 s, because requests may trigger a fetch (at most one a
/// second) while no key set has ever loaded, and the backoff is capped at 5 s until then.
/// Default timings; the issuer is down for 9 s rather than 60 s (the backoff is capped after 7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_comes_up_late_has_its_first_token_accepted_within_2_s() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    jwks.stop().await;
    let cache = JwksCache::new(fetcher(&jwks.url()), default_policy());
    cache.spawn_refresher();
    let auth = authenticator(&cache);
    let t = token(&a);
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(9) {
        assert!(matches!(
            auth.verify_token(&t, now()).await,
            Err(AuthError::KeysUnavailable { .. })
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let attempts = cache.fetch_count();
    // Backoff 1, 2, 4, 5 s plus at most one request-triggered fetch a second: never a hot loop.
    assert!(attempts <= 11, "{attempts} fetches in 9 s");
    jwks.restart().await;
    let up = Instant::now();
    let took = accepted_after(&auth, &t, up, Duration::from_secs(10)).await;
    println!(
        "issuer up after 9 s: first token accepted {} ms after it came up",
        took.as_millis()
    );
    assert!(took <= Duration::from_secs(2), "{took:?}");
}

/// After a failed unknown-kid fetch, a key the issuer has just published is accepted within 2 s:
/// the failed fetch did not start the 30 s cooldown. Default timings.
#[tokio::test]
async fn a_key_published_right_after_a_failed_fetch_is_accepted_within_2_s() {
    let (a, b) = (test_issuer(), other_key());
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let cache = ready_cache(fetcher(&jwks.url()), default_policy()).await;
    let auth = authenticator(&cache);
    let tb = token(&b);
    // Fetches are at least a second apart; the server has been up for a while.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    jwks.set(Mode::Status(503));
    let n = cache.fetch_count();
    assert!(unknown_kid(auth.verify_token(&tb, now()).await));
    assert_eq!(
        cache.fetch_count(),
        n + 1,
        "the unknown kid tried a fetch, which failed"
    );
    jwks.serve_keys(&[&a, &b]);
    let published = Instant::now();
    let took = accepted_after(&auth, &tb, published, Duration::from_secs(5)).await;
    println!(
        "key published after a failed fetch: accepted after {} ms",
        took.as_millis()
    );
    assert!(took <= Duration::from_secs(2), "{took:?}");
    // That fetch succeeded, so now the cooldown holds: another unknown kid fetches nothing.
    let n = cache.fetch_count();
    assert!(unknown_kid(
        auth.verify_token(&token(&ghost("ghost", 31)), now()).await
    ));
    assert_eq!(cache.fetch_count(), n);
}

// ---------------------------------------------------------------------------------------------
// OIDC discovery: `{issuer}/oauth/jwks` first, then `{issuer}/.well-known/openid-configuration`.

const TENANT: &str = "/tenant";

fn discovery_doc(issuer: &str, jwks_uri: &str) -> Mode {
    Mode::Json {
        body: json!({"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["code"]})
            .to_string(),
        cache_control: None,
    }
}

fn discovering_cache(issuer: &str) -> JwksCache {
    let guide = fetcher(&format!("{issuer}/oauth/jwks"));
    JwksCache::with_discovery(guide, issuer, quiet_policy()).unwrap()
}

fn discovery_hits(jwks: &JwksServer) -> usize {
    jwks.hits()
        .iter()
        .filter(|h| h.path.ends_with("/.well-known/openid-configuration"))
        .count()
}

#[tokio::test]
async fn when_the_guides_location_is_404_the_jwks_uri_of_the_discovery_document_is_used() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let issuer = format!("{}{TENANT}", jwks.origin());
    jwks.route(
        &format!("{TENANT}/.well-known/openid-configuration"),
        discovery_doc(&issuer, &jwks.url()),
    );
    let cache = discovering_cache(&issuer);
    cache.spawn_refresher();
    assert!(eventually(Duration::from_secs(2), || cache.current().is_ok()).await);
    assert_eq!(kids(&cache.current().unwrap()), ["test-key-1"]);
    assert_eq!(cache.jwks_url(), jwks.url());
    let paths: Vec<String> = jwks.hits().iter().map(|h| h.path.clone()).collect();
    assert_eq!(
        paths,
        [
            format!("{TENANT}/oauth/jwks"),
            format!("{TENANT}/.well-known/openid-configuration"),
            JWKS_PATH.to_owned()
        ],
        "the guide's location first, then discovery, then the discovered jwks_uri"
    );
    // Later fetches go straight to the discovered URL.
    let stale = cache.current().unwrap();
    assert!(cache.refresh_for_unknown_kid(&stale).await.is_some());
    assert_eq!(jwks.hits().last().unwrap().path, JWKS_PATH);
    assert_eq!(discovery_hits(&jwks), 1);
}

#[tokio::test]
async fn when_the_guides_location_serves_a_jwks_discovery_is_never_read() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let issuer = format!("{}{TENANT}", jwks.origin());
    jwks.route(&format!("{TENANT}/oauth/jwks"), keys_mode(&[&a], None));
    jwks.route(
        &format!("{TENANT}/.well-known/openid-configuration"),
        discovery_doc(&issuer, &jwks.url()),
    );
    let cache = discovering_cache(&issuer);
    cache.spawn_refresher();
    assert!(eventually(Duration::from_secs(2), || cache.current().is_ok()).await);
    assert_eq!(discovery_hits(&jwks), 0);
    assert_eq!(cache.jwks_url(), format!("{issuer}/oauth/jwks"));
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let issuer = format!("{}{TENANT}", jwks.origin());
    for named in [
        format!("{issuer}/"),
        issuer.to_uppercase(),
        "https://evil.example".into(),
    ] {
        jwks.route(
            &format!("{TENANT}/.well-known/openid-configuration"),
            discovery_doc(&named, &jwks.url()),
        );
        let cache = discovering_cache(&issuer);
        let stale = Arc::new(KeySet::default());
        assert!(cache.refresh_for_unknown_kid(&stale).await.is_none());
        assert!(
            cache.current().is_err(),
            "issuer {named:?} must not be trusted"
        );
    }
    assert!(
        !jwks.hits().iter().any(|h| h.path == JWKS_PATH),
        "the jwks_uri of a mismatched document is never fetched"
    );
}

#[tokio::test]
async fn a_discovered_jwks_uri_follows_the_fetch_rules_and_a_redirected_document_is_not_followed() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let issuer = format!("{}{TENANT}", jwks.origin());
    let doc_path = format!("{TENANT}/.well-known/openid-configuration");
    // Plain http to a host that is not loopback: refused like a configured URL would be.
    jwks.route(
        &doc_path,
        discovery_doc(&issuer, "http://keys.example/jwks"),
    );
    let cache = discovering_cache(&issuer);
    assert!(cache
        .refresh_for_unknown_kid(&Arc::new(KeySet::default()))
        .await
        .is_none());
    assert!(cache.current().is_err());
    // A redirect of the discovery document is not followed.
    jwks.route(
        &doc_path,
        Mode::Redirect {
            status: 302,
            to: format!("{}{MOVED_PATH}", jwks.origin()),
        },
    );
    let cache = discovering_cache(&issuer);
    assert!(cache
        .refresh_for_unknown_kid(&Arc::new(KeySet::default()))
        .await
        .is_none());
    assert!(!jwks.hits().iter().any(|h| h.path == MOVED_PATH));
}

#[tokio::test]
async fn a_down_issuer_is_not_sent_to_discovery() {
    let a = test_issuer();
    let jwks = JwksServer::start(keys_mode(&[&a], None)).await;
    let issuer = format!("{}{TENANT}", jwks.origin());
    jwks.stop().await;
    let cache = discovering_cache(&issuer);
    assert!(cache
        .refresh_for_unknown_kid(&Arc::new(KeySet::default()))
        .await
        .is_none());
    jwks.restart().await;
    assert_eq!(discovery_hits(&jwks), 0);
}

// ---------------------------------------------------------------------------------------------
// The verification cache across refreshes.

#[tokio::test]
async fn a_refresh_with_identical_keys_keeps_every_hit_and_one_that_drops_a_key_rejects_its_tokens_at_once(
) {
    let (a, b) = (test_issuer(), other_key());
    let jwks = JwksServer::start(keys_mode(&[&a, &b], None)).await;
    let cache = ready_cache(fetcher(&jwks.url()), quiet_policy()).await;
    let auth = authenticator(&cache);
    let (ta, tb) = (token(&a), token(&b));
    auth.verify_token(&ta, now()).await.unwrap();
    auth.verify_token(&tb, now()).await.unwrap();
    assert_eq!(auth.full_verifications(), 2);

    // A refresh (an unknown kid forces one) that returns the same keys: a new KeySet object,
    // identical material, so both tokens are still hits.
    let before = cache.current().unwrap();
    assert!(unknown_kid(
        auth.verify_token(&token(&ghost("ghost", 41)), now()).await
    ));
    let after = cache.current().unwrap();
    assert!(!Arc::ptr_eq(&before, &after), "the set was refetched");
    auth.verify_token(&ta, now()).await.unwrap();
    auth.verify_token(&tb, now()).await.unwrap();
    assert_eq!(
        auth.full_verifications(),
        2,
        "no re-verification after an identical refresh"
    );

    // A refresh that drops A: A's token is refused at once, B's is still a hit.
    jwks.serve_keys(&[&b]);
    assert!(unknown_kid(
        auth.verify_token(&token(&ghost("ghost", 42)), now()).await
    ));
    assert_eq!(kids(&cache.current().unwrap()), ["test-key-2"]);
    assert!(unknown_kid(auth.verify_token(&ta, now()).await));
    auth.verify_token(&tb, now()).await.unwrap();
    assert_eq!(auth.full_verifications(), 2);

    // A refresh that changes B's material under the same kid: B's token is verified again, and fails.
    let b2 = DevIssuer::from_secret(ISSUER, "test-key-2", [99; 32]).unwrap();
    jwks.serve_keys(&[&b2]);
    assert!(unknown_kid(
        auth.verify_token(&token(&ghost("ghost", 43)), now()).await
    ));
    assert_eq!(
        auth.verify_token(&tb, now()).await.unwrap_err(),
        AuthError::InvalidToken(JwtError::SignatureInvalid)
    );
    assert_eq!(auth.full_verifications(), 3);
    auth.verify_token(&token(&b2), now()).await.unwrap();
}
