//! Who sent a request and under which ids: the client address behind trusted proxies, the request id, the W3C trace context; pure.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderMap, HeaderValue};
use serde_json::{Map, Value};

/// `X-Forwarded-For`: the client chain a proxy appends to.
pub(crate) const FORWARDED_FOR: &str = "x-forwarded-for";
/// `X-Request-Id`: taken from a trusted proxy, echoed on every response.
pub(crate) const REQUEST_ID: &str = "x-request-id";
/// The W3C trace context header (and `_meta` key, SEP-414).
pub(crate) const TRACEPARENT: &str = "traceparent";
/// The W3C vendor trace state header (and `_meta` key).
pub(crate) const TRACESTATE: &str = "tracestate";

/// Longest accepted `X-Request-Id`; a longer one is replaced by a generated id.
const MAX_REQUEST_ID: usize = 128;
/// Longest `tracestate` kept (W3C: 512 is what a vendor must propagate).
const MAX_TRACESTATE: usize = 512;
/// Most `X-Forwarded-For` hops walked; a longer chain is judged by its last ones.
const MAX_HOPS: usize = 32;

/// A trusted-proxy entry that is neither an address nor a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadProxyEntry(pub(crate) String);

/// Proxies whose `X-Forwarded-For` and `X-Request-Id` are believed: addresses and CIDR blocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    nets: Vec<(IpAddr, u8)>,
}

impl TrustedProxies {
    /// Parses `addr` or `addr/len` entries; `Err` holds the first entry that is neither.
    pub(crate) fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, BadProxyEntry> {
        let mut nets = Vec::with_capacity(entries.len());
        for e in entries {
            let e = e.as_ref().trim();
            let (addr, len) = match e.split_once('/') {
                Some((a, l)) => (a, Some(l)),
                None => (e, None),
            };
            let Ok(ip) = addr.parse::<IpAddr>() else {
                return Err(BadProxyEntry(e.to_owned()));
            };
            let ip = ip.to_canonical();
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len = match len {
                None => max,
                Some(l) => match l.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(BadProxyEntry(e.to_owned())),
                },
            };
            nets.push((ip, len));
        }
        Ok(Self { nets })
    }

    /// True when no proxy is trusted.
    pub(crate) fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// True when `ip` is one of the proxies or inside one of the blocks.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|&(net, len)| in_block(ip, net, len))
    }
}

fn in_block(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// One `X-Forwarded-For` element: `ip`, `ip:port` or `[ipv6]:port`.
fn hop(entry: &str) -> Option<IpAddr> {
    let e = entry.trim();
    if let Ok(ip) = e.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = e.strip_prefix('[') {
        return rest.split_once(']')?.0.parse::<IpAddr>().ok();
    }
    let (host, port) = e.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the first address in
/// `X-Forwarded-For` (walked from the right) that is not itself a trusted proxy. A malformed
/// element ends the walk at the last good hop, so a client cannot push a forged address past it.
pub(crate) fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if trusted.is_empty() || !trusted.contains(peer) {
        return Some(peer);
    }
    let mut hops: Vec<&str> = Vec::new();
    for v in headers.get_all(FORWARDED_FOR) {
        let Ok(v) = v.to_str() else {
            return Some(peer);
        };
        hops.extend(v.split(','));
    }
    let mut client = peer;
    for entry in hops.iter().rev().take(MAX_HOPS) {
        let Some(ip) = hop(entry) else { break };
        client = ip;
        if !trusted.contains(ip) {
            break;
        }
    }
    Some(client)
}

/// A request id a proxy sent, when it is short plain text.
pub(crate) fn forwarded_request_id(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(REQUEST_ID).iter();
    let (v, None) = (values.next()?, values.next()) else {
        return None;
    };
    let ok = (1..=MAX_REQUEST_ID).contains(&v.len())
        && v.as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@~".contains(b));
    ok.then(|| v.clone())
}

/// Generated request ids: a random per-process prefix and a counter, so ids are unique across
/// replicas without a random draw per request.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: [u8; 16],
    next: AtomicU64,
}

impl RequestIds {
    /// Ids starting with the hex of `seed`.
    pub(crate) fn new(seed: [u8; 8]) -> Self {
        let mut prefix = [0u8; 16];
        for (i, b) in seed.iter().enumerate() {
            prefix[2 * i] = HEX[usize::from(b >> 4)];
            prefix[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        Self {
            prefix,
            next: AtomicU64::new(1),
        }
    }

    /// The next id: `<16 hex>-<counter in hex>`.
    pub(crate) fn next(&self) -> HeaderValue {
        let mut n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 16 + 1 + 16];
        buf[..16].copy_from_slice(&self.prefix);
        buf[16] = b'-';
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = HEX[(n & 15) as usize];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        let len = digits.len() - i;
        buf[17..17 + len].copy_from_slice(&digits[i..]);
        HeaderValue::from_bytes(&buf[..17 + len]).expect("hex digits and a dash")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A W3C trace context (`traceparent`, and `tracestate` when sent), from the HTTP headers or
/// from the request's `params._meta` (SEP-414). Handlers read it with
/// [`RequestContext::trace`](crate::RequestContext::trace) to parent their own spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

impl TraceContext {
    /// Parses a `traceparent` value (version 00, or a later version read as 00 prescribes)
    /// and an optional `tracestate`; `None` when the traceparent is not valid.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let t = traceparent.trim();
        let b = t.as_bytes();
        if b.len() < 55 || (b.len() > 55 && (b[..2] == *b"00" || b[55] != b'-')) {
            return None;
        }
        let lower_hex = |s: &[u8]| {
            s.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        };
        let nonzero = |s: &[u8]| s.iter().any(|&c| c != b'0');
        let (version, trace, parent, flags) = (&b[0..2], &b[3..35], &b[36..52], &b[53..55]);
        let ok = b[2] == b'-'
            && b[35] == b'-'
            && b[52] == b'-'
            && lower_hex(version)
            && version != b"ff"
            && lower_hex(trace)
            && nonzero(trace)
            && lower_hex(parent)
            && nonzero(parent)
            && lower_hex(flags);
        if !ok {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .filter(|s| s.bytes().all(|c| (0x20..0x7f).contains(&c)))
            .map(str::to_owned);
        Some(Self {
            // A later version's extra fields are not ours to pass on.
            traceparent: t[..55].to_owned(),
            tracestate,
        })
    }

    /// From the `traceparent` and `tracestate` headers (one of each).
    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let one = |name| {
            let mut all = headers.get_all(name).iter();
            match (all.next(), all.next()) {
                (Some(v), None) => v.to_str().ok(),
                _ => None,
            }
        };
        Self::parse(one(TRACEPARENT)?, one(TRACESTATE))
    }

    /// From `params._meta.traceparent` and `tracestate` (SEP-414: unprefixed keys).
    pub(crate) fn from_meta(params: &Map<String, Value>) -> Option<Self> {
        let meta = params.get("_meta")?.as_object()?;
        let parent = meta.get(TRACEPARENT)?.as_str()?;
        Self::parse(parent, meta.get(TRACESTATE).and_then(Value::as_str))
    }

    /// The whole `traceparent`, version 00 form.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The caller's span id: 16 lowercase hex digits.
    pub fn parent_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// True when the caller sampled this trace (flag 01).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).is_ok_and(|f| f & 1 == 1)
    }

    /// The `tracestate` sent with it, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_blocks() {
        let t = TrustedProxies::parse(&["10.0.0.0/8", "192.168.1.7", "fd00::/8"]).unwrap();
        assert!(t.contains("10.1.2.3".parse().unwrap()));
        assert!(t.contains("192.168.1.7".parse().unwrap()));
        assert!(!t.contains("192.168.1.8".parse().unwrap()));
        assert!(t.contains("fd12::1".parse().unwrap()));
        assert!(t.contains("::ffff:10.9.9.9".parse().unwrap()), "v4-mapped");
        assert!(TrustedProxies::parse(&["0.0.0.0/0"])
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "1.2.3.4/x", "::/129"] {
            assert_eq!(TrustedProxies::parse(&[bad]).unwrap_err().0, bad);
        }
    }

    #[test]
    fn forwarded_for_is_read_only_from_a_trusted_peer() {
        let t = TrustedProxies::parse(&["10.0.0.1"]).unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &t), ip("203.0.113.9"));
        assert_eq!(
            client_address(ip("198.51.100.2"), &h, &t),
            ip("198.51.100.2")
        );
        let none = TrustedProxies::default();
        assert_eq!(client_address(ip("10.0.0.1"), &h, &none), ip("10.0.0.1"));
        assert_eq!(client_address(None, &h, &t), None);
    }

    #[test]
    fn forwarded_for_walks_from_the_right_past_trusted_hops_only() {
        let t = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
        // The client can prepend anything; only what the trusted hops appended counts.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.5:8080"),
        ]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &t), ip("203.0.113.9"));
        let all_trusted = headers(&[("x-forwarded-for", "10.0.0.9, 10.0.0.5")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &all_trusted, &t),
            ip("10.0.0.9")
        );
        let garbage = headers(&[("x-forwarded-for", "203.0.113.9, not-an-ip")]);
        assert_eq!(client_address(ip("10.0.0.1"), &garbage, &t), ip("10.0.0.1"));
        let v6 = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(client_address(ip("10.0.0.1"), &v6, &t), ip("2001:db8::1"));
    }

    #[test]
    fn request_ids_are_unique_and_forwarded_ones_are_checked() {
        let ids = RequestIds::new([0xab, 1, 2, 3, 4, 5, 6, 0xff]);
        assert_eq!(ids.next(), "ab010203040506ff-1");
        assert_eq!(ids.next(), "ab010203040506ff-2");
        assert_eq!(
            forwarded_request_id(&headers(&[("x-request-id", "req-42")])).unwrap(),
            "req-42"
        );
        for bad in ["", "has space", "quote\"", &"x".repeat(129)] {
            let h = headers(&[("x-request-id", bad)]);
            assert!(forwarded_request_id(&h).is_none(), "{bad:?}");
        }
        let two = headers(&[("x-request-id", "a"), ("x-request-id", "b")]);
        assert!(forwarded_request_id(&two).is_none());
    }

    #[test]
    fn traceparent_follows_w3c() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(good, Some("rojo=00f067aa0ba902b7")).unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id(), "00f067aa0ba902b7");
        assert!(t.sampled());
        assert_eq!(t.tracestate(), Some("rojo=00f067aa0ba902b7"));
        // A later version may append fields; version 00 may not.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        assert_eq!(
            TraceContext::parse(later, None).unwrap().traceparent(),
            &later[..55]
        );
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "",
        ] {
            assert!(TraceContext::parse(bad, None).is_none(), "{bad}");
        }
    }

    #[test]
    fn trace_context_from_meta() {
        let params = serde_json::json!({"_meta": {
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}});
        let t = TraceContext::from_meta(params.as_object().unwrap()).unwrap();
        assert!(!t.sampled());
        assert!(TraceContext::from_meta(&Map::new()).is_none());
    }
}
