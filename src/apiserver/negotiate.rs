//! Content negotiation: which media type a response, a watch stream or a DeleteOptions
//! body is encoded in. Every handler answers objects through [`object_response`], every
//! watch frames its events through [`WatchFramer`], and every delete decodes its
//! options through [`decode_delete_options`], so a new encoding is added here only.
//!
//! The Accept header is read as upstream's `NegotiateMediaTypeOptions` reads it: media
//! ranges ordered by q-value then specificity, the first that names a served type wins
//! (`*/*` and `application/*` mean JSON, the first one upstream lists). Objects are
//! answered in protobuf (`application/vnd.kubernetes.protobuf`) when that wins and the
//! kind has a protobuf message, else in JSON; Table requests (`as=Table`) stay JSON, as
//! upstream has no protobuf Table. A request nothing acceptable can answer gets 406.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use serde_json::Value;

use super::protobuf;
use super::status::ApiError;
use super::{Body, Ctx};

/// The protobuf media type.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// The protobuf watch stream's Content-Type.
pub const PROTOBUF_WATCH: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The media types upstream lists in its 406 message (YAML requests are answered in
/// JSON here).
const ACCEPTED: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";

/// The encoding chosen for a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Json,
    Protobuf,
}

/// One media range of an Accept header.
struct Clause<'a> {
    kind: &'a str,
    sub: &'a str,
    q: f32,
    params: Vec<(&'a str, &'a str)>,
}

/// Parses an Accept header as goautoneg does: sorted by q-value, then by specificity
/// (no wildcards first, then more parameters), keeping the header's order otherwise.
fn parse_accept(header: &str) -> Vec<Clause<'_>> {
    let mut clauses: Vec<Clause<'_>> = header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim();
            let (kind, sub) = match range.split_once('/') {
                Some((k, s)) => (k.trim(), s.trim()),
                None if range == "*" => ("*", "*"),
                None => return None,
            };
            let mut q = 1.0f32;
            let mut params = Vec::new();
            for p in pieces {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim().trim_matches('"'));
                if k == "q" {
                    q = v.parse().unwrap_or(0.0);
                } else {
                    params.push((k, v));
                }
            }
            Some(Clause {
                kind,
                sub,
                q,
                params,
            })
        })
        .collect();
    clauses.sort_by(|a, b| {
        b.q.total_cmp(&a.q)
            .then((a.kind == "*").cmp(&(b.kind == "*")))
            .then((a.sub == "*").cmp(&(b.sub == "*")))
            .then(b.params.len().cmp(&a.params.len()))
    });
    clauses
}

/// The media types served, in upstream's order (JSON first: what wildcards pick).
const SERVED: &[(&str, &str, Media)] = &[
    ("application", "json", Media::Json),
    ("application", "yaml", Media::Json),
    ("application", "vnd.kubernetes.protobuf", Media::Protobuf),
];

/// Whether a clause's parameters can be honoured for this media type (upstream's
/// `acceptMediaTypeOptions`): a Table conversion only in JSON/YAML, a stream only `watch`.
fn params_allowed(clause: &Clause<'_>, media: Media) -> bool {
    clause.params.iter().all(|(k, v)| match *k {
        "as" => match *v {
            "Table" => media == Media::Json,
            "PartialObjectMetadata" | "PartialObjectMetadataList" => true,
            _ => false,
        },
        "stream" => v.is_empty() || *v == "watch",
        _ => true,
    })
}

/// The encoding `accept` prefers among those served, or None when none is acceptable.
pub fn negotiate(accept: &str) -> Option<Media> {
    negotiate_among(accept, |_| true)
}

fn negotiate_among(accept: &str, allowed: impl Fn(Media) -> bool) -> Option<Media> {
    if accept.trim().is_empty() {
        return allowed(Media::Json).then_some(Media::Json);
    }
    for clause in parse_accept(accept) {
        for (kind, sub, media) in SERVED {
            let matches = (clause.kind == *kind && (clause.sub == *sub || clause.sub == "*"))
                || (clause.kind == "*" && clause.sub == "*");
            if matches && allowed(*media) && params_allowed(&clause, *media) {
                return Some(*media);
            }
        }
    }
    None
}

/// 406 NotAcceptable, as upstream words it.
pub fn not_acceptable() -> ApiError {
    ApiError {
        code: 406,
        reason: "NotAcceptable",
        message: format!("only the following media types are accepted: {ACCEPTED}"),
        details: None,
    }
}

/// Fails with 406 when the request's Accept header names nothing served, so a request
/// is refused before it has any effect (upstream negotiates before acting too).
pub fn check_acceptable(ctx: &Ctx) -> Result<(), ApiError> {
    match negotiate(ctx.header("accept")) {
        Some(_) => Ok(()),
        None => Err(not_acceptable()),
    }
}

/// Whether the client asked for objects as `meta.k8s.io/v1 PartialObjectMetadata` (and
/// lists as `PartialObjectMetadataList`), as metadata-only informers do.
pub fn wants_metadata(ctx: &Ctx) -> bool {
    let accept = ctx.header("accept");
    accept.contains("as=PartialObjectMetadata")
        && accept.contains("g=meta.k8s.io")
        && !ctx.wants_table()
}

/// `obj` (an object or a list) as upstream's metadata-only conversion shows it; Status
/// objects are left alone.
pub fn partial_metadata(obj: &Value) -> Value {
    let one = |o: &Value| {
        serde_json::json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": o.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
        })
    };
    if obj["kind"] == "Status" {
        return obj.clone();
    }
    match obj.get("items").and_then(Value::as_array) {
        Some(items) => serde_json::json!({
            "kind": "PartialObjectMetadataList",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
            "items": items.iter().map(one).collect::<Vec<_>>(),
        }),
        None => one(obj),
    }
}

/// Answers `value` with `code` in the media type the client accepts, with `warnings` as
/// `Warning: 299` headers.
pub fn object_response(
    ctx: &Ctx,
    code: StatusCode,
    value: &Value,
    warnings: &[String],
) -> Response<Body> {
    let _span = tracing::debug_span!("negotiate").entered();
    let partial;
    let value = if wants_metadata(ctx) {
        partial = partial_metadata(value);
        &partial
    } else {
        value
    };
    let accept = ctx.header("accept");
    let mut resp = if ctx.wants_table() {
        super::json_response(code, value)
    } else {
        match negotiate(accept) {
            Some(Media::Protobuf) => match protobuf::encode_object(value) {
                Ok(bytes) => bytes_response(code, PROTOBUF, bytes),
                // No protobuf message for this kind: JSON if the client takes it.
                Err(e) => match negotiate_among(accept, |m| m == Media::Json) {
                    Some(_) => {
                        tracing::debug!(error = %e, "answering JSON: no protobuf encoding");
                        super::json_response(code, value)
                    }
                    None => super::json_response(
                        StatusCode::NOT_ACCEPTABLE,
                        &not_acceptable().to_status(),
                    ),
                },
            },
            Some(Media::Json) => super::json_response(code, value),
            None => super::json_response(StatusCode::NOT_ACCEPTABLE, &not_acceptable().to_status()),
        }
    };
    for w in warnings {
        let value = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(h) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().append(header::WARNING, h);
        }
    }
    resp
}

/// Answers a list in the media type the client accepts: `head` is the list less its
/// items (`kind`, `apiVersion`, `metadata`), `items` are borrowed, so a list is encoded
/// straight from the objects the store shares (never Tables: those go through
/// [`object_response`]).
pub fn list_response<T: std::borrow::Borrow<Value>>(
    ctx: &Ctx,
    head: &Value,
    items: &[T],
) -> Response<Body> {
    let _span = tracing::debug_span!("negotiate").entered();
    let accept = ctx.header("accept");
    let json = || bytes_response(StatusCode::OK, "application/json", list_json(head, items));
    match negotiate(accept) {
        Some(Media::Protobuf) => match protobuf::encode_list(head, items) {
            Ok(bytes) => bytes_response(StatusCode::OK, PROTOBUF, bytes),
            Err(e) => match negotiate_among(accept, |m| m == Media::Json) {
                Some(_) => {
                    tracing::debug!(error = %e, "answering JSON: no protobuf encoding");
                    json()
                }
                None => {
                    super::json_response(StatusCode::NOT_ACCEPTABLE, &not_acceptable().to_status())
                }
            },
        },
        Some(Media::Json) => json(),
        None => super::json_response(StatusCode::NOT_ACCEPTABLE, &not_acceptable().to_status()),
    }
}

/// The JSON of `head` with `"items"` appended: the bytes `serde_json` writes for the whole
/// list object.
fn list_json<T: std::borrow::Borrow<Value>>(head: &Value, items: &[T]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let written = (|| -> serde_json::Result<()> {
        out.push(b'{');
        if let Some(members) = head.as_object() {
            for (k, v) in members {
                serde_json::to_writer(&mut out, k)?;
                out.push(b':');
                serde_json::to_writer(&mut out, v)?;
                out.push(b',');
            }
        }
        out.extend_from_slice(b"\"items\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, item.borrow())?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    })();
    if written.is_err() {
        out.clear();
    }
    out
}

fn bytes_response(code: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(super::full(bytes))
        .unwrap_or_else(|_| Response::new(super::full(Vec::new())))
}

/// Encodes the events of one watch stream in the client's media type.
pub struct WatchFramer {
    media: Media,
}

impl WatchFramer {
    /// The framer for the client of `ctx`: protobuf when the client prefers it (and did
    /// not ask for Tables), else JSON.
    pub fn for_request(ctx: &Ctx) -> Self {
        let media = if ctx.wants_table() {
            Media::Json
        } else {
            negotiate(ctx.header("accept")).unwrap_or(Media::Json)
        };
        WatchFramer { media }
    }

    /// The Content-Type of the stream.
    pub fn content_type(&self) -> &'static str {
        match self.media {
            Media::Json => "application/json",
            Media::Protobuf => PROTOBUF_WATCH,
        }
    }

    /// One event (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`) as sent on the
    /// wire: a JSON line, or a length-prefixed protobuf `WatchEvent`.
    pub fn frame(&self, event_type: &str, object: &Value) -> Bytes {
        if self.media == Media::Protobuf {
            match protobuf::encode_watch_event(event_type, object) {
                Ok(frame) => return Bytes::from(frame),
                Err(e) => {
                    tracing::warn!(error = %e, "watch event has no protobuf encoding");
                    let status = ApiError::internal(format!("unable to encode watch event: {e}"))
                        .to_status();
                    return Bytes::from(
                        protobuf::encode_watch_event("ERROR", &status).unwrap_or_default(),
                    );
                }
            }
        }
        // `{"type":…,"object":…}` written around the borrowed object (no copy of it).
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"{\"type\":");
        let written = serde_json::to_writer(&mut out, event_type)
            .and_then(|()| {
                out.extend_from_slice(b",\"object\":");
                serde_json::to_writer(&mut out, object)
            })
            .is_ok();
        if !written {
            return Bytes::new();
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }
}

/// Decodes a DELETE request's body (`DeleteOptions`) by its Content-Type, JSON or
/// protobuf; an empty body is no options (`Value::Null`).
pub fn decode_delete_options(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    let content_type = ctx.header("content-type");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == PROTOBUF {
        let v = protobuf::decode_body(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        if v["kind"] != "DeleteOptions" {
            return Err(ApiError::bad_request(format!(
                "error decoding DeleteOptions: body is a {}, not DeleteOptions",
                v["kind"].as_str().unwrap_or("")
            )));
        }
        return Ok(v);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_pick_what_upstream_picks() {
        let cases = [
            ("", Some(Media::Json)),
            ("*/*", Some(Media::Json)),
            ("application/*", Some(Media::Json)),
            ("application/json", Some(Media::Json)),
            ("application/vnd.kubernetes.protobuf", Some(Media::Protobuf)),
            (
                "application/vnd.kubernetes.protobuf, */*",
                Some(Media::Protobuf),
            ),
            (
                "application/vnd.kubernetes.protobuf,application/json",
                Some(Media::Protobuf),
            ),
            (
                "application/json;q=0.5, application/vnd.kubernetes.protobuf",
                Some(Media::Protobuf),
            ),
            (
                "application/vnd.kubernetes.protobuf;q=0.1, application/json",
                Some(Media::Json),
            ),
            (
                "*/*, application/vnd.kubernetes.protobuf",
                Some(Media::Protobuf),
            ),
            (
                "application/vnd.kubernetes.protobuf;stream=watch",
                Some(Media::Protobuf),
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io, application/json",
                Some(Media::Json),
            ),
            (
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
                None,
            ),
            ("text/html", None),
            ("application/xml, image/png", None),
            ("application/json;stream=bogus", None),
            ("garbage", None),
        ];
        for (accept, want) in cases {
            assert_eq!(negotiate(accept), want, "Accept: {accept}");
        }
    }

    fn sample_list() -> (Value, Vec<Value>) {
        let head = serde_json::json!({"kind": "ConfigMapList", "apiVersion": "v1",
            "metadata": {"resourceVersion": "7", "continue": "abc", "remainingItemCount": 2}});
        let items = (0..3)
            .map(|i| {
                serde_json::json!({"metadata": {"name": format!("cm-{i}"), "namespace": "default",
                    "labels": {"b": "2", "a": "1"}, "resourceVersion": format!("{}", i + 4)},
                    "data": {"k": "v", "\u{e9}\"q": "line\nbreak"}, "immutable": i == 1})
            })
            .collect();
        (head, items)
    }

    /// The list written around its borrowed items is byte for byte the list object's
    /// encoding, in JSON and in protobuf.
    #[test]
    fn borrowed_lists_encode_as_the_whole_list_does() {
        let (head, items) = sample_list();
        let mut whole = head.clone();
        whole["items"] = Value::Array(items.clone());
        assert_eq!(
            list_json(&head, &items),
            serde_json::to_vec(&whole).unwrap()
        );
        let shared: Vec<std::sync::Arc<Value>> =
            items.iter().cloned().map(std::sync::Arc::new).collect();
        assert_eq!(
            protobuf::encode_list(&head, &shared).unwrap(),
            protobuf::encode_object(&whole).unwrap()
        );
        let empty: [Value; 0] = [];
        let mut none = head.clone();
        none["items"] = Value::Array(Vec::new());
        assert_eq!(list_json(&head, &empty), serde_json::to_vec(&none).unwrap());
        assert_eq!(
            protobuf::encode_list(&head, &empty).unwrap(),
            protobuf::encode_object(&none).unwrap()
        );
        // A kind without a protobuf message is refused, as for whole objects.
        let foreign = serde_json::json!({"kind": "WidgetList", "apiVersion": "example.com/v1", "metadata": {}});
        assert!(protobuf::encode_list(&foreign, &empty).is_err());
    }

    #[test]
    fn watch_frames_are_the_event_objects_json() {
        let (_, items) = sample_list();
        let framer = WatchFramer { media: Media::Json };
        let line = framer.frame("MODIFIED", &items[0]);
        let mut want =
            serde_json::to_vec(&serde_json::json!({"type": "MODIFIED", "object": items[0]}))
                .unwrap();
        want.push(b'\n');
        assert_eq!(&line[..], &want[..]);
    }

    #[test]
    fn not_acceptable_is_upstreams_status() {
        let status = not_acceptable().to_status();
        assert_eq!(status["code"], 406);
        assert_eq!(status["reason"], "NotAcceptable");
        assert_eq!(
            status["message"],
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf"
        );
    }
}
