//! Port-forward stream pairing (`portforward.k8s.io`): kubectl opens an `error` and a
//! `data` stream per local TCP connection, both with `port` and `requestid` headers;
//! the server matches them by `requestid` (exec-protocols.md §6.1). Pure: works on
//! stream ids and headers, so it is unit-tested without sockets.

use std::collections::HashMap;

use super::remotecommand::StreamType;
use super::spdy::Headers;

/// What a port-forward stream's headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStream {
    /// The SPDY stream id.
    pub stream_id: u32,
    /// `error` or `data`.
    pub kind: StreamType,
    /// The pod port.
    pub port: u16,
    /// The pairing key.
    pub request_id: String,
}

/// Reads and validates a port-forward stream's headers as upstream does: `port` must
/// be a uint16 > 0 and `streamtype` error or data.
pub fn parse_headers(stream_id: u32, h: &Headers) -> Result<PortStream, String> {
    let kind = match h.get("streamtype").and_then(StreamType::parse) {
        Some(k @ (StreamType::Error | StreamType::Data)) => k,
        other => return Err(format!("invalid stream type {other:?}")),
    };
    let port_s = h.get("port").ok_or("port header missing")?;
    let port: u16 = port_s
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port header {port_s:?}"))?;
    // Without a request id, upstream pairs the data stream with id-2 (error opened first).
    let request_id = match h.get("requestid") {
        Some(r) => r.to_string(),
        None if kind == StreamType::Error => stream_id.to_string(),
        None => stream_id.saturating_sub(2).to_string(),
    };
    Ok(PortStream {
        stream_id,
        kind,
        port,
        request_id,
    })
}

/// Collects half-pairs until both streams of a request are present.
#[derive(Debug, Default)]
pub struct Pairer<T> {
    waiting: HashMap<String, (PortStream, T)>,
}

impl<T> Pairer<T> {
    /// A new, empty pairer.
    pub fn new() -> Self {
        Pairer {
            waiting: HashMap::new(),
        }
    }

    /// Adds a stream; returns `(error, data)` once its partner is there. A second
    /// stream of the same kind for a request replaces nothing and is handed back as Err.
    #[allow(clippy::type_complexity)]
    pub fn add(
        &mut self,
        meta: PortStream,
        item: T,
    ) -> Result<Option<((PortStream, T), (PortStream, T))>, (PortStream, T)> {
        match self.waiting.remove(&meta.request_id) {
            None => {
                self.waiting.insert(meta.request_id.clone(), (meta, item));
                Ok(None)
            }
            Some(first) if first.0.kind == meta.kind => {
                self.waiting.insert(meta.request_id.clone(), first);
                Err((meta, item))
            }
            Some(first) => Ok(Some(if first.0.kind == StreamType::Error {
                (first, (meta, item))
            } else {
                ((meta, item), first)
            })),
        }
    }

    /// How many requests wait for their partner.
    pub fn pending(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| (*k, *v)).collect()
    }

    #[test]
    fn pairs_by_request_id_in_any_order() {
        let mut p = Pairer::new();
        let e0 = parse_headers(
            1,
            &h(&[
                ("streamtype", "error"),
                ("port", "8080"),
                ("requestid", "0"),
            ]),
        )
        .expect("e0");
        let e1 = parse_headers(
            3,
            &h(&[
                ("streamtype", "error"),
                ("port", "8080"),
                ("requestid", "1"),
            ]),
        )
        .expect("e1");
        let d1 = parse_headers(
            5,
            &h(&[("port", "8080"), ("requestid", "1"), ("streamtype", "data")]),
        )
        .expect("d1");
        assert!(p.add(e0, "e0").expect("ok").is_none());
        assert!(p.add(e1, "e1").expect("ok").is_none());
        let ((e, ei), (d, di)) = p.add(d1, "d1").expect("ok").expect("pair");
        assert_eq!((e.stream_id, ei, d.stream_id, di), (3, "e1", 5, "d1"));
        assert_eq!(p.pending(), 1);
        let dup = parse_headers(
            7,
            &h(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
        )
        .expect("dup");
        assert!(p.add(dup, "dup").is_err());
    }

    #[test]
    fn bad_headers_are_rejected_and_missing_request_id_falls_back() {
        assert!(parse_headers(1, &h(&[("streamtype", "error"), ("port", "0")])).is_err());
        assert!(parse_headers(1, &h(&[("streamtype", "error"), ("port", "99999")])).is_err());
        assert!(parse_headers(1, &h(&[("streamtype", "stdin"), ("port", "80")])).is_err());
        assert!(parse_headers(1, &h(&[("streamtype", "data")])).is_err());
        let e = parse_headers(1, &h(&[("streamtype", "error"), ("port", "80")])).expect("e");
        let d = parse_headers(3, &h(&[("streamtype", "data"), ("port", "80")])).expect("d");
        assert_eq!(e.request_id, d.request_id);
    }
}
