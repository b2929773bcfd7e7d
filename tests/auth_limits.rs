//! Flood defences of the authenticator through its public API: failed verifications are cached
//! for identical bytes, a client address over its signature-failure rate gets 429 with a retry
//! time while its already-verified tokens keep working, bad-signature refusals are held back by
//! the configured delay (zero in the other tests, to keep them fast), and the cache size holds.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};
use vouch_mcp::auth::{AudiencePolicy, AuthError, Authenticator, JwtError, Policy, StaticKeys};
#[path = "../src/bin/vouch-mcp/dev.rs"]
#[allow(dead_code)]
mod dev;
use dev::DevIssuer;

const ISSUER: &str = "https://issuer.test";
const AUD: &str = "https://mcp.test/mcp";
const NOW: u64 = 1_750_000_000;

fn issuer() -> DevIssuer {
    DevIssuer::from_secret(ISSUER, "k1", [7; 32]).unwrap()
}

fn authenticator_with_default_delay() -> Authenticator {
    Authenticator::new(
        Policy::new(ISSUER, AudiencePolicy::OneOf(vec![AUD.into()])),
        Arc::new(StaticKeys(Arc::new(issuer().key_set()))),
        vec![],
    )
}

fn authenticator() -> Authenticator {
    authenticator_with_default_delay().with_signature_failure_delay(Duration::ZERO)
}

fn token(sub: &str) -> String {
    let i = issuer();
    i.mint(&i.claims(AUD, sub, "x@example.com", false, NOW, 600))
}

/// `token` with one bit of its signature flipped (the right kid, a bad signature); distinct
/// for each `n` below 256.
fn forged(token: &str, n: usize) -> String {
    let dot = token.rfind('.').unwrap();
    let mut sig = URL_SAFE_NO_PAD.decode(&token[dot + 1..]).unwrap();
    sig[32 + n % 32] ^= 1 << ((n / 32) % 8);
    format!("{}.{}", &token[..dot], URL_SAFE_NO_PAD.encode(sig))
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

fn peer(last: u8) -> Option<IpAddr> {
    Some(IpAddr::from([192, 0, 2, last]))
}

#[tokio::test]
async fn a_replayed_forged_token_is_verified_once_then_refused_from_the_failure_cache() {
    let auth = authenticator();
    let bad = forged(&token("alice"), 0);
    for _ in 0..50 {
        assert_eq!(
            auth.verify_token(&bad, NOW).await.unwrap_err(),
            AuthError::InvalidToken(JwtError::SignatureInvalid)
        );
    }
    assert_eq!(auth.full_verifications(), 1);
}

#[tokio::test]
async fn a_failure_is_remembered_only_briefly() {
    let auth = authenticator();
    let bad = forged(&token("alice"), 0);
    assert!(auth.verify_token(&bad, NOW).await.is_err());
    assert!(auth.verify_token(&bad, NOW + 9).await.is_err());
    assert_eq!(auth.full_verifications(), 1);
    assert!(auth.verify_token(&bad, NOW + 10).await.is_err());
    assert_eq!(auth.full_verifications(), 2, "verified again after 10 s");
}

#[tokio::test]
async fn an_address_over_its_signature_failure_rate_gets_429_but_keeps_its_verified_tokens() {
    let auth = authenticator().with_signature_failure_limit(5);
    let good = token("alice");
    let flood = peer(1);
    // A token verified before the flood is a cache hit, and hits are never refused.
    assert!(auth.authenticate(&bearer(&good), flood, NOW).await.is_ok());
    for n in 0..5 {
        assert_eq!(
            auth.authenticate(&bearer(&forged(&good, n)), flood, NOW)
                .await
                .unwrap_err(),
            AuthError::InvalidToken(JwtError::SignatureInvalid)
        );
    }
    let verified = auth.full_verifications();
    // Over the rate: distinct forgeries are refused unchecked, with a retry time.
    for n in 5..50 {
        let err = auth
            .authenticate(&bearer(&forged(&good, n)), flood, NOW)
            .await
            .unwrap_err();
        let AuthError::TooManySignatureFailures { retry_after_secs } = err else {
            panic!("{err:?}");
        };
        assert!((1..=12).contains(&retry_after_secs), "{retry_after_secs}");
    }
    assert_eq!(
        auth.full_verifications(),
        verified,
        "no verify runs once limited"
    );
    // The same address, a token it already had: served.
    assert!(auth.authenticate(&bearer(&good), flood, NOW).await.is_ok());
    // A new valid token from that address needs a full verify: refused until the bucket refills.
    assert!(matches!(
        auth.authenticate(&bearer(&token("bob")), flood, NOW).await,
        Err(AuthError::TooManySignatureFailures { .. })
    ));
    // Another address is not affected.
    assert!(auth
        .authenticate(&bearer(&token("bob")), peer(2), NOW)
        .await
        .is_ok());
    // Malformed tokens are still a plain 401 (no verify, no limit needed).
    assert!(matches!(
        auth.authenticate(&bearer("a.b.c"), flood, NOW).await,
        Err(AuthError::InvalidToken(JwtError::BadBase64(_)))
    ));
}

#[tokio::test]
async fn replaying_one_forged_token_counts_against_the_address_too() {
    let auth = authenticator().with_signature_failure_limit(3);
    let bad = forged(&token("alice"), 3);
    for _ in 0..3 {
        assert!(matches!(
            auth.authenticate(&bearer(&bad), peer(9), NOW).await,
            Err(AuthError::InvalidToken(JwtError::SignatureInvalid))
        ));
    }
    assert!(matches!(
        auth.authenticate(&bearer(&token("carol")), peer(9), NOW)
            .await,
        Err(AuthError::TooManySignatureFailures { .. })
    ));
    assert_eq!(auth.full_verifications(), 1);
}

#[tokio::test]
async fn no_peer_or_a_zero_rate_means_no_per_client_limit() {
    for (auth, who) in [
        (authenticator().with_signature_failure_limit(1), None),
        (authenticator().with_signature_failure_limit(0), peer(1)),
    ] {
        let good = token("alice");
        for n in 0..20 {
            assert!(matches!(
                auth.authenticate(&bearer(&forged(&good, n)), who, NOW)
                    .await,
                Err(AuthError::InvalidToken(JwtError::SignatureInvalid))
            ));
        }
        assert!(auth.authenticate(&bearer(&good), who, NOW).await.is_ok());
    }
}

#[tokio::test]
async fn the_cache_size_setting_bounds_hits_and_zero_turns_the_cache_off() {
    let off = authenticator().with_verify_cache_entries(0);
    let t = token("alice");
    for _ in 0..3 {
        off.verify_token(&t, NOW).await.unwrap();
    }
    assert_eq!(off.full_verifications(), 3);
    let small = authenticator().with_verify_cache_entries(64);
    let tokens: Vec<String> = (0..1000).map(|i| token(&format!("user-{i}"))).collect();
    for t in &tokens {
        small.verify_token(t, NOW).await.unwrap();
    }
    let before = small.full_verifications();
    // The newest few are still cached; the first ones were evicted.
    small.verify_token(&tokens[999], NOW).await.unwrap();
    assert_eq!(small.full_verifications(), before);
    small.verify_token(&tokens[0], NOW).await.unwrap();
    assert_eq!(small.full_verifications(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifications_beyond_the_concurrency_limit_wait_their_turn_and_all_complete() {
    let auth = Arc::new(authenticator().with_verify_concurrency(1));
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let auth = auth.clone();
            tokio::spawn(async move { auth.verify_token(&token(&format!("u{i}")), NOW).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(auth.full_verifications(), 32);
}

#[tokio::test]
async fn bad_signature_refusals_are_held_back_by_the_delay_and_other_refusals_are_not() {
    let auth = authenticator_with_default_delay()
        .with_signature_failure_delay(Duration::from_millis(300))
        .with_signature_failure_limit(2);
    let good = token("alice");
    for n in 0..3 {
        let started = Instant::now();
        let r = auth
            .authenticate(&bearer(&forged(&good, n)), peer(5), NOW)
            .await;
        assert!(
            matches!(
                r,
                Err(AuthError::InvalidToken(JwtError::SignatureInvalid))
                    | Err(AuthError::TooManySignatureFailures { .. })
            ),
            "{r:?}"
        );
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "refusal {n} was not delayed"
        );
    }
    // Expired, malformed and good tokens are answered at once.
    for (t, now) in [
        (good.clone(), NOW + 10_000),
        ("a.b.c".into(), NOW),
        (good.clone(), NOW),
    ] {
        let started = Instant::now();
        let _ = auth.verify_token(&t, now).await;
        assert!(started.elapsed() < Duration::from_millis(200));
    }
}
