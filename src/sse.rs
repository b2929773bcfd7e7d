//! Server-Sent Events framing (pure): message events with optional ids, the priming event, retry, keep-alive.

use bytes::Bytes;

use crate::core::EventId;

/// An SSE comment that keeps proxies from closing an idle stream.
pub(crate) const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// One `message` event carrying serialized JSON on a single `data:` line, with an `id:` when given.
/// Compact JSON never contains a raw newline, so one data line suffices.
pub(crate) fn event(id: Option<EventId>, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 48);
    if let Some(id) = id {
        use std::io::Write as _;
        let _ = writeln!(out, "id: {id}");
    }
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The priming event (2025-11-25): an id and empty data, so a client can resume from the start.
pub(crate) fn priming(id: EventId) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: \n\n"))
}

/// `retry:` tells the client how long to wait before reconnecting after the server closes.
pub(crate) fn retry(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_one_data_line_with_optional_id() {
        let e = event(None, br#"{"a":"x\ny"}"#);
        assert_eq!(&e[..], b"event: message\ndata: {\"a\":\"x\\ny\"}\n\n");
        let e = event(Some(EventId { stream: 3, seq: 7 }), b"1");
        assert_eq!(&e[..], b"id: 3-7\nevent: message\ndata: 1\n\n");
        assert_eq!(
            &priming(EventId { stream: 3, seq: 0 })[..],
            b"id: 3-0\ndata: \n\n"
        );
        assert_eq!(&retry(100)[..], b"retry: 100\n\n");
    }
}
