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

/// WebSocket sub-protocols of port-forward's channel protocol (upstream kubelet:
/// `v4.channel.k8s.io` binary, `v4.base64.channel.k8s.io` text; no sub-protocol at all
/// means binary too), in the server's preference order.
pub const WS_PROTOCOLS: [&str; 2] = [super::remotecommand::V4, super::remotecommand::V4_BASE64];

/// The sub-protocol to answer a port-forward WebSocket offering `offered` with: the
/// first of [`WS_PROTOCOLS`] offered, `""` (binary, none echoed) when none is offered,
/// `None` when only others are.
pub fn negotiate_ws(offered: &[String]) -> Option<&'static str> {
    if offered.is_empty() {
        return Some("");
    }
    WS_PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .copied()
}

/// The ports of a WebSocket port-forward request, as upstream's kubelet reads them:
/// query parameter `name` (the kubelet's `port`, the API's `ports`), repeatable, each a
/// comma-separated list of uint16 > 0; at least one.
pub fn ports_from_query(query: Option<&str>, name: &str) -> Result<Vec<u16>, String> {
    let values: Vec<String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .collect();
    if values.is_empty() {
        return Err(format!("query parameter {name:?} is required"));
    }
    let mut ports = Vec::new();
    for v in &values {
        if v.is_empty() {
            return Err(format!("query parameter {name:?} cannot be empty"));
        }
        for p in v.split(',') {
            let port: u16 = p
                .trim()
                .parse()
                .map_err(|e| format!("unable to parse {v:?} as a port: {e}"))?;
            if port < 1 {
                return Err(format!("port {v:?} must be > 0"));
            }
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The first message on a port's data and error channels: its number, little-endian.
pub fn port_prefix(port: u16) -> [u8; 2] {
    port.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_ports_and_protocols_as_upstream_reads_them() {
        assert_eq!(
            ports_from_query(Some("ports=8080,9090&ports=81"), "ports"),
            Ok(vec![8080, 9090, 81])
        );
        assert!(ports_from_query(Some("x=1"), "port").is_err());
        assert!(ports_from_query(Some("port=0"), "port").is_err());
        assert!(ports_from_query(Some("port=70000"), "port").is_err());
        assert!(ports_from_query(Some("port="), "port").is_err());
        assert_eq!(port_prefix(8080), [0x90, 0x1F]);
        assert_eq!(negotiate_ws(&[]), Some(""));
        assert_eq!(
            negotiate_ws(&["v4.channel.k8s.io".into()]),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(negotiate_ws(&["v5.channel.k8s.io".into()]), None);
    }

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
