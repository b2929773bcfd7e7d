//! Server-Sent Events framing (pure): message events with optional ids, the priming event, retry, keep-alive.

use bytes::Bytes;
use serde_json::Value;

/// An SSE comment that keeps proxies from closing an idle stream.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

/// One `message` event carrying a JSON value on a single `data:` line, with an `id:` when given.
pub fn event(id: Option<&str>, json: &Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"event: message\ndata: ");
    // Compact serde_json output never contains a raw newline, so one data line suffices.
    serde_json::to_writer(&mut out, json).expect("a Value serializes");
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The priming event (2025-11-25): an id and empty data, so a client can resume from the start.
pub fn priming(id: &str) -> Bytes {
    Bytes::from(format!("id: {id}\ndata: \n\n"))
}

/// `retry:` tells the client how long to wait before reconnecting after the server closes.
pub fn retry(millis: u64) -> Bytes {
    Bytes::from(format!("retry: {millis}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_is_one_data_line_with_optional_id() {
        let e = event(None, &serde_json::json!({"a":"x\ny"}));
        assert_eq!(&e[..], b"event: message\ndata: {\"a\":\"x\\ny\"}\n\n");
        let e = event(Some("3-7"), &serde_json::json!(1));
        assert_eq!(&e[..], b"id: 3-7\nevent: message\ndata: 1\n\n");
        assert_eq!(&priming("3-0")[..], b"id: 3-0\ndata: \n\n");
    }
}
