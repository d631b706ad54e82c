//! Content negotiation: which media type a response, a watch stream or a DeleteOptions
//! body is encoded in. Every handler answers objects through [`object_response`], every
//! watch frames its events through [`WatchFramer`], and every delete decodes its
//! options through [`decode_delete_options`], so a new encoding is added here only.
//!
//! Today everything is JSON; protobuf (`application/vnd.kubernetes.protobuf`) is
//! planned behind the same functions.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::status::ApiError;
use super::{Body, Ctx};

/// Answers `value` with `code` in the media type the client accepts, with `warnings` as
/// `Warning: 299` headers.
pub fn object_response(
    ctx: &Ctx,
    code: StatusCode,
    value: &Value,
    warnings: &[String],
) -> Response<Body> {
    let _ = ctx;
    let mut resp = super::json_response(code, value);
    for w in warnings {
        let value = format!("299 - {}", serde_json::to_string(w).unwrap_or_default());
        if let Ok(h) = http::HeaderValue::from_str(&value) {
            resp.headers_mut().append(http::header::WARNING, h);
        }
    }
    resp
}

/// Encodes the events of one watch stream in the client's media type.
pub struct WatchFramer {
    _private: (),
}

impl WatchFramer {
    /// The framer for the client of `ctx`.
    pub fn for_request(ctx: &Ctx) -> Self {
        let _ = ctx;
        WatchFramer { _private: () }
    }

    /// The Content-Type of the stream.
    pub fn content_type(&self) -> &'static str {
        "application/json"
    }

    /// One event (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`, `ERROR`) as sent on the
    /// wire.
    pub fn frame(&self, event_type: &str, object: &Value) -> Bytes {
        let mut out =
            serde_json::to_vec(&json!({"type": event_type, "object": object})).unwrap_or_default();
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// Decodes a DELETE request's body (`DeleteOptions`) by its Content-Type; an empty body
/// is no options (`Value::Null`).
pub fn decode_delete_options(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let _ = ctx;
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))
}
