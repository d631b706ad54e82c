//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) both ways, driven by
//! upstream's own `generated.proto` files.
//!
//! `build.rs` compiles the vendored files under `proto/k8s/` into one descriptor set; at
//! first use [`schema`] turns it into message tables (field number, JSON name, type,
//! cardinality), adds the facts protobuf does not carry (Go pointer / `omitempty` /
//! `inline`, from `facts.txt`), and finds kinds by `(apiVersion, kind)`.
//!
//! - [`decode_body`] turns a request body (`k8s\0` + `runtime.Unknown` envelope) into the
//!   JSON object Go's `encoding/json` would print for the same Go object;
//! - [`encode_object`] writes a JSON object (a kind, a `<Kind>List`, a `Status`) as an
//!   envelope, as upstream's protobuf serializer does;
//! - [`encode_watch_event`] writes one watch event as upstream's protobuf stream does: a
//!   4-byte big-endian length, then a bare `meta.v1.WatchEvent` whose `object.raw` is the
//!   object's envelope.

mod decode;
mod encode;
mod facts;
mod schema;
mod wellknown;
mod wire;

use serde_json::Value;

pub use schema::Schema;

/// Magic prefix of Kubernetes protobuf bodies; a body without it is not protobuf.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Deepest message nesting accepted, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 32;

/// Why a protobuf body could not be turned into JSON (or JSON into protobuf); the caller
/// answers 400, or 415 for [`ProtobufError::is_unsupported_media_type`].
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not begin with [`MAGIC`].
    #[error("protobuf body does not start with the \"k8s\\x00\" prefix")]
    MissingMagic,
    /// The data ends in the middle of a field.
    #[error("truncated protobuf data in {0}")]
    Truncated(&'static str),
    /// The data is not valid protobuf for the expected message.
    #[error("malformed protobuf in {message}: {detail}")]
    Malformed {
        /// Message being decoded.
        message: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// A string field holds bytes that are not UTF-8.
    #[error("invalid UTF-8 in field {field} of {message}")]
    InvalidUtf8 {
        /// Message being decoded.
        message: &'static str,
        /// Field number.
        field: u32,
    },
    /// The envelope (or a JSON object) names a kind that has no protobuf message.
    #[error("no protobuf message for \"{api_version}, Kind={kind}\"")]
    UnsupportedKind {
        /// `apiVersion` of the object.
        api_version: String,
        /// `kind` of the object.
        kind: String,
    },
    /// The envelope declares a content encoding (such as gzip) that is not supported.
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// Messages nest deeper than [`MAX_DEPTH`].
    #[error("protobuf messages nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A JSON value does not fit the protobuf field it is encoded into.
    #[error("cannot encode {field} of {message}: {detail}")]
    Encode {
        /// Message being encoded.
        message: &'static str,
        /// JSON name of the field.
        field: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl ProtobufError {
    /// Whether the server should answer 415 UnsupportedMediaType rather than 400 BadRequest.
    pub fn is_unsupported_media_type(&self) -> bool {
        matches!(
            self,
            ProtobufError::UnsupportedKind { .. } | ProtobufError::UnsupportedEncoding(_)
        )
    }
}

/// The message tables, built from the embedded descriptor set at first use.
pub fn schema() -> &'static Schema {
    static SCHEMA: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(Schema::embedded)
}

/// Decodes an `application/vnd.kubernetes.protobuf` body into the equivalent JSON object,
/// with `kind` and `apiVersion` set from the envelope's typeMeta.
pub fn decode_body(body: &[u8]) -> Result<Value, ProtobufError> {
    decode::decode_envelope(schema(), body, 0)
}

/// Whether `(apiVersion, kind)` has a protobuf message.
pub fn is_supported_kind(api_version: &str, kind: &str) -> bool {
    schema().kind_message(api_version, kind).is_some()
}

/// Encodes a JSON object (with `apiVersion` and `kind`) as a protobuf body: [`MAGIC`] and
/// a `runtime.Unknown` envelope. Fields the schema does not know are dropped.
pub fn encode_object(object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let mut out = Vec::with_capacity(1024);
    encode::encode_envelope(schema(), object, &mut out)?;
    Ok(out)
}

/// Encodes a list whose `items` are apart from the rest of it (`head`: `kind`,
/// `apiVersion`, `metadata`), borrowed: the same body as [`encode_object`] of the whole
/// list, without first building that list.
pub fn encode_list<T: std::borrow::Borrow<Value>>(
    head: &Value,
    items: &[T],
) -> Result<Vec<u8>, ProtobufError> {
    let mut out = Vec::with_capacity(1024 + 512 * items.len());
    encode::encode_list_envelope(schema(), head, items, &mut out)?;
    Ok(out)
}

/// One watch event as sent on an `application/vnd.kubernetes.protobuf;stream=watch`
/// stream: length-prefixed `meta.v1.WatchEvent {type, object: {raw: envelope}}`.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, ProtobufError> {
    let mut out = Vec::with_capacity(1024);
    encode::encode_watch_event(schema(), event_type, object, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests;
