//! Decoding of `application/vnd.kubernetes.protobuf` request bodies.
//!
//! kubectl's typed commands (`create namespace`, `create configmap`, `create secret`,
//! `create service`, `create deployment`, `create token`, ...) send their objects as
//! Kubernetes protobuf rather than JSON, and client-go does not fall back to JSON when the
//! server refuses them. Everything else in the API server works on JSON, so this module turns
//! such a body into exactly the JSON object kubectl would have sent had it used JSON.
//!
//! The body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope
//! (`1 typeMeta {1 apiVersion, 2 kind}`, `2 raw`, `3 contentEncoding`, `4 contentType`);
//! `raw` is the typed message. A small wire-format reader walks it, driven by static schema
//! tables (field number, JSON name, type) for each supported message.
//!
//! JSON shape rules, chosen to match what Go's `encoding/json` emits for the same object:
//! - fields are emitted in Go struct order, with their JSON names;
//! - scalars equal to their zero value are omitted, except pointer fields (`*int64`,
//!   `*bool`, ...) and fields without `omitempty`, whose presence on the wire is kept;
//! - nested messages present on the wire are always emitted (`"spec": {}` included), and
//!   `json:",inline"` members are merged into their parent object;
//! - `metav1.Time` is an RFC 3339 string in UTC without fractional seconds, and a zero time
//!   (empty message) is omitted;
//! - `bytes` fields (Secret `data`, ConfigMap `binaryData`) are standard base64;
//! - `IntOrString` is a JSON number or string, `resource.Quantity` a string;
//! - maps are JSON objects with sorted keys, `fieldsV1` is the JSON object it carries.
//!
//! Fields that the tables do not list are skipped, as protobuf readers do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Number, Value};

/// Magic prefix of Kubernetes protobuf bodies; a body without it is not protobuf.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Deepest message nesting accepted, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// `metav1.Time`'s zero value (0001-01-01T00:00:00Z) in Unix seconds; Go renders it as null.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Why a protobuf body could not be turned into JSON; the caller answers 400, or 415 for
/// [`ProtobufError::UnsupportedKind`].
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
    /// The envelope names a kind this module has no schema for.
    #[error("no protobuf decoder for \"{api_version}, Kind={kind}\"")]
    UnsupportedKind {
        /// `apiVersion` from the envelope.
        api_version: String,
        /// `kind` from the envelope.
        kind: String,
    },
    /// The envelope declares a content encoding (such as gzip) that is not supported.
    #[error("unsupported protobuf content encoding {0:?}")]
    UnsupportedEncoding(String),
    /// Messages nest deeper than the decoder allows.
    #[error("protobuf messages nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
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

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decodes a `application/vnd.kubernetes.protobuf` request body into the equivalent JSON
/// object, with `kind` and `apiVersion` set from the envelope's typeMeta, so the rest of the
/// server can treat it like a JSON body.
pub fn decode_body(body: &[u8]) -> std::result::Result<Value, ProtobufError> {
    let envelope = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::MissingMagic)?;
    let unknown = decode_unknown(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(unknown.content_encoding));
    }
    let root = root_message(&unknown.api_version, &unknown.kind).ok_or_else(|| {
        ProtobufError::UnsupportedKind {
            api_version: unknown.api_version.clone(),
            kind: unknown.kind.clone(),
        }
    })?;
    let mut object = Map::new();
    object.insert("kind".into(), Value::String(unknown.kind));
    object.insert("apiVersion".into(), Value::String(unknown.api_version));
    object.extend(decode_message(root, unknown.raw, 0)?);
    Ok(Value::Object(object))
}

/// Whether [`decode_body`] has a schema for this `apiVersion` and `kind`, so callers can tell
/// ahead of time which protobuf bodies they can accept.
pub fn is_supported_kind(api_version: &str, kind: &str) -> bool {
    root_message(api_version, kind).is_some()
}

fn root_message(api_version: &str, kind: &str) -> Option<&'static Msg> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, msg)| *msg)
}

/// The `runtime.Unknown` envelope.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn decode_unknown(buf: &[u8]) -> Result<Unknown<'_>> {
    const NAME: &str = "runtime.Unknown";
    let mut out = Unknown {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
    };
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, value)) = reader.next_field()? {
        match (num, value) {
            (1, Wire::Len(type_meta)) => {
                let mut tm = Reader::new(type_meta, "runtime.TypeMeta");
                while let Some((num, value)) = tm.next_field()? {
                    match (num, value) {
                        (1, Wire::Len(b)) => out.api_version = utf8(b, "runtime.TypeMeta", 1)?,
                        (2, Wire::Len(b)) => out.kind = utf8(b, "runtime.TypeMeta", 2)?,
                        (1 | 2, other) => return Err(wrong_wire("runtime.TypeMeta", num, other)),
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(b)) => out.raw = b,
            (3, Wire::Len(b)) => out.content_encoding = utf8(b, NAME, 3)?,
            (4, Wire::Len(_)) => {}
            (1..=4, other) => return Err(wrong_wire(NAME, num, other)),
            _ => {}
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------------------

/// One field value as it appears on the wire.
#[derive(Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64,
    Len(&'a [u8]),
    Fixed32,
}

impl Wire<'_> {
    fn name(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64 => "64-bit",
            Wire::Len(_) => "length-delimited",
            Wire::Fixed32 => "32-bit",
        }
    }
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            message,
        }
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(ProtobufError::Truncated(self.message))?;
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                break;
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::Malformed {
            message: self.message,
            detail: "varint longer than 64 bits".into(),
        })
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len())
            .ok_or(ProtobufError::Truncated(self.message))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// The next field number and value, or `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let num = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| ProtobufError::Malformed {
                message: self.message,
                detail: format!("invalid field number {}", key >> 3),
            })?;
        let value = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Wire::Fixed64
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Truncated(self.message))?;
                Wire::Len(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            other => {
                return Err(ProtobufError::Malformed {
                    message: self.message,
                    detail: format!("unsupported wire type {other} for field {num}"),
                });
            }
        };
        Ok(Some((num, value)))
    }
}

fn wrong_wire(message: &'static str, num: u32, value: Wire<'_>) -> ProtobufError {
    ProtobufError::Malformed {
        message,
        detail: format!("field {num} has unexpected wire type {}", value.name()),
    }
}

fn utf8(bytes: &[u8], message: &'static str, field: u32) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::InvalidUtf8 { message, field })
}

// ---------------------------------------------------------------------------------------
// Schema-driven decoding
// ---------------------------------------------------------------------------------------

/// A field's value type.
#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bytes,
    I32,
    I64,
    Bool,
    /// `metav1.Time` {1 seconds, 2 nanos}.
    Time,
    /// `intstr.IntOrString` {1 type, 2 intVal, 3 strVal}.
    IntOrStr,
    /// `resource.Quantity` {1 string}.
    Quantity,
    /// `metav1.FieldsV1` {1 Raw}: raw JSON.
    FieldsV1,
    Msg(&'static Msg),
}

/// A field's cardinality.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Card {
    One,
    Repeated,
    /// `map<string, T>`: repeated entries {1 key, 2 value}.
    Map,
}

/// One field of a message schema.
#[derive(Clone, Copy)]
struct Field {
    num: u32,
    json: &'static str,
    ty: Ty,
    card: Card,
    /// Emit the value even when it is the zero value (pointer or non-omitempty field).
    keep: bool,
    /// `json:",inline"`: merge the nested object's members into the parent.
    inline: bool,
}

/// A message schema: its name (for errors) and fields in Go struct order.
struct Msg {
    name: &'static str,
    fields: &'static [Field],
}

const fn field(num: u32, json: &'static str, ty: Ty, card: Card) -> Field {
    Field {
        num,
        json,
        ty,
        card,
        keep: false,
        inline: false,
    }
}

const fn one(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::One)
}

const fn rep(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::Repeated)
}

const fn map(num: u32, json: &'static str, ty: Ty) -> Field {
    field(num, json, ty, Card::Map)
}

impl Field {
    const fn keep(mut self) -> Self {
        self.keep = true;
        self
    }

    const fn inline(mut self) -> Self {
        self.inline = true;
        self
    }
}

/// What has been read so far for one field of a message.
enum Slot {
    Empty,
    /// A singular value, with whether it is the type's zero value.
    One(Value, bool),
    Many(Vec<Value>),
    Entries(Vec<(String, Value)>),
}

fn decode_message(msg: &'static Msg, buf: &[u8], depth: usize) -> Result<Map<String, Value>> {
    if depth >= MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Empty).collect();
    let mut reader = Reader::new(buf, msg.name);
    while let Some((num, wire)) = reader.next_field()? {
        let Some(index) = msg.fields.iter().position(|f| f.num == num) else {
            continue;
        };
        let f = msg.fields[index];
        let slot = &mut slots[index];
        match f.card {
            Card::One => {
                let (value, zero) = decode_value(msg, f, wire, depth)?;
                match (slot, value) {
                    // A repeated occurrence of a message field merges into the first.
                    (Slot::One(Value::Object(old), old_zero), Value::Object(new))
                        if matches!(f.ty, Ty::Msg(_)) =>
                    {
                        old.extend(new);
                        *old_zero = false;
                    }
                    (slot, value) => *slot = Slot::One(value, zero),
                }
            }
            Card::Repeated => {
                if !matches!(slot, Slot::Many(_)) {
                    *slot = Slot::Many(Vec::new());
                }
                if let Slot::Many(items) = slot {
                    decode_repeated(msg, f, wire, depth, items)?;
                }
            }
            Card::Map => {
                if !matches!(slot, Slot::Entries(_)) {
                    *slot = Slot::Entries(Vec::new());
                }
                if let Slot::Entries(entries) = slot {
                    entries.push(decode_entry(msg, f, wire, depth)?);
                }
            }
        }
    }

    let mut out = Map::new();
    for (f, slot) in msg.fields.iter().zip(slots) {
        match slot {
            Slot::Empty => {}
            Slot::One(Value::Object(members), _) if f.inline => out.extend(members),
            Slot::One(value, zero) => {
                let emit = match f.ty {
                    Ty::Msg(_) => true,
                    Ty::Time | Ty::FieldsV1 => !value.is_null(),
                    _ => !zero || f.keep,
                };
                if emit {
                    out.insert(f.json.into(), value);
                }
            }
            Slot::Many(items) => {
                if !items.is_empty() {
                    out.insert(f.json.into(), Value::Array(items));
                }
            }
            Slot::Entries(mut entries) => {
                // Go sorts map keys; a key given twice keeps its last value.
                entries.reverse();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries.dedup_by(|a, b| a.0 == b.0);
                if !entries.is_empty() {
                    out.insert(f.json.into(), Value::Object(entries.into_iter().collect()));
                }
            }
        }
    }
    Ok(out)
}

fn decode_repeated(
    msg: &'static Msg,
    f: Field,
    wire: Wire<'_>,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<()> {
    // Numeric lists may come packed in one length-delimited field.
    if let (Ty::I32 | Ty::I64 | Ty::Bool, Wire::Len(bytes)) = (f.ty, wire) {
        let mut packed = Reader::new(bytes, msg.name);
        while packed.pos < bytes.len() {
            let v = packed.varint()?;
            items.push(decode_value(msg, f, Wire::Varint(v), depth)?.0);
        }
        return Ok(());
    }
    items.push(decode_value(msg, f, wire, depth)?.0);
    Ok(())
}

fn decode_entry(
    msg: &'static Msg,
    f: Field,
    wire: Wire<'_>,
    depth: usize,
) -> Result<(String, Value)> {
    let Wire::Len(bytes) = wire else {
        return Err(wrong_wire(msg.name, f.num, wire));
    };
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(bytes, msg.name);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Len(b)) => key = utf8(b, msg.name, f.num)?,
            (1, other) => return Err(wrong_wire(msg.name, f.num, other)),
            (2, wire) => value = Some(decode_value(msg, f, wire, depth)?.0),
            _ => {}
        }
    }
    let value = match value {
        Some(v) => v,
        // An absent value is the type's zero value.
        None => decode_value(msg, f, Wire::Len(&[]), depth)?.0,
    };
    Ok((key, value))
}

/// Decodes one value of `f`'s type; the flag says whether it is the type's zero value.
fn decode_value(
    msg: &'static Msg,
    f: Field,
    wire: Wire<'_>,
    depth: usize,
) -> Result<(Value, bool)> {
    let mismatch = || wrong_wire(msg.name, f.num, wire);
    match f.ty {
        Ty::I32 | Ty::I64 | Ty::Bool => {
            let Wire::Varint(v) = wire else {
                return Err(mismatch());
            };
            Ok(match f.ty {
                Ty::Bool => (Value::Bool(v != 0), v == 0),
                // int32 is sign-extended to 64 bits on the wire; keep the low 32 bits.
                Ty::I32 => (Value::from(v as i64 as i32), v as i32 == 0),
                _ => (Value::from(v as i64), v == 0),
            })
        }
        Ty::Str => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            Ok((Value::String(utf8(b, msg.name, f.num)?), b.is_empty()))
        }
        Ty::Bytes => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            Ok((Value::String(STANDARD.encode(b)), b.is_empty()))
        }
        Ty::Time => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            let v = decode_time(b)?;
            let zero = v.is_null();
            Ok((v, zero))
        }
        Ty::IntOrStr => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            decode_int_or_string(b)
        }
        Ty::Quantity => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            let mut quantity = String::new();
            let mut reader = Reader::new(b, "resource.Quantity");
            while let Some((num, wire)) = reader.next_field()? {
                match (num, wire) {
                    (1, Wire::Len(s)) => quantity = utf8(s, "resource.Quantity", 1)?,
                    (1, other) => return Err(wrong_wire("resource.Quantity", 1, other)),
                    _ => {}
                }
            }
            // Go renders the zero Quantity as "0".
            if quantity.is_empty() {
                quantity.push('0');
            }
            Ok((Value::String(quantity), false))
        }
        Ty::FieldsV1 => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            let v = decode_fields_v1(b)?;
            let zero = v.is_null();
            Ok((v, zero))
        }
        Ty::Msg(inner) => {
            let Wire::Len(b) = wire else {
                return Err(mismatch());
            };
            Ok((Value::Object(decode_message(inner, b, depth + 1)?), false))
        }
    }
}

/// `metav1.Time` as RFC 3339 in UTC with whole seconds, or null for the zero time.
fn decode_time(buf: &[u8]) -> Result<Value> {
    const NAME: &str = "metav1.Time";
    let mut seconds: i64 = 0;
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => seconds = v as i64,
            // Nanoseconds are dropped: metav1.Time's JSON form has whole seconds.
            (2, Wire::Varint(_)) => {}
            (1 | 2, other) => return Err(wrong_wire(NAME, num, other)),
            _ => {}
        }
    }
    if buf.is_empty() || seconds == GO_ZERO_TIME_SECONDS {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::from_second(seconds).map_err(|e| ProtobufError::Malformed {
        message: NAME,
        detail: format!("seconds {seconds} out of range: {e}"),
    })?;
    Ok(Value::String(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
}

/// `intstr.IntOrString` as a JSON number or string; the flag says whether it is zero.
fn decode_int_or_string(buf: &[u8]) -> Result<(Value, bool)> {
    const NAME: &str = "intstr.IntOrString";
    let (mut kind, mut int_val, mut str_val) = (0u64, 0i32, String::new());
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => kind = v,
            (2, Wire::Varint(v)) => int_val = v as i64 as i32,
            (3, Wire::Len(b)) => str_val = utf8(b, NAME, 3)?,
            (1..=3, other) => return Err(wrong_wire(NAME, num, other)),
            _ => {}
        }
    }
    Ok(match kind {
        0 => (Value::Number(Number::from(int_val)), int_val == 0),
        1 => {
            let zero = str_val.is_empty();
            (Value::String(str_val), zero)
        }
        other => {
            return Err(ProtobufError::Malformed {
                message: NAME,
                detail: format!("unknown type {other}"),
            });
        }
    })
}

/// `metav1.FieldsV1`: the raw JSON it carries, parsed.
fn decode_fields_v1(buf: &[u8]) -> Result<Value> {
    const NAME: &str = "metav1.FieldsV1";
    let mut raw: &[u8] = &[];
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Len(b)) => raw = b,
            (1, other) => return Err(wrong_wire(NAME, 1, other)),
            _ => {}
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| ProtobufError::Malformed {
        message: NAME,
        detail: format!("Raw is not JSON: {e}"),
    })
}

// ---------------------------------------------------------------------------------------
// Schema tables
// ---------------------------------------------------------------------------------------

/// Top-level kinds, by envelope `apiVersion` and `kind`.
static KINDS: &[(&str, &str, &Msg)] = &[
    ("v1", "ConfigMap", &CORE_CONFIG_MAP),
    ("v1", "Namespace", &CORE_NAMESPACE),
    ("v1", "Pod", &CORE_POD),
    ("v1", "ResourceQuota", &CORE_RESOURCE_QUOTA),
    ("v1", "Secret", &CORE_SECRET),
    ("v1", "Service", &CORE_SERVICE),
    ("v1", "ServiceAccount", &CORE_SERVICE_ACCOUNT),
    ("apps/v1", "Deployment", &APPS_DEPLOYMENT),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        &AUTHN_TOKEN_REQUEST,
    ),
    ("batch/v1", "CronJob", &BATCH_CRON_JOB),
    ("batch/v1", "Job", &BATCH_JOB),
    ("networking.k8s.io/v1", "Ingress", &NET_INGRESS),
    (
        "policy/v1",
        "PodDisruptionBudget",
        &POLICY_POD_DISRUPTION_BUDGET,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRole",
        &RBAC_CLUSTER_ROLE,
    ),
    (
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &RBAC_CLUSTER_ROLE_BINDING,
    ),
    ("rbac.authorization.k8s.io/v1", "Role", &RBAC_ROLE),
    (
        "rbac.authorization.k8s.io/v1",
        "RoleBinding",
        &RBAC_ROLE_BINDING,
    ),
    (
        "scheduling.k8s.io/v1",
        "PriorityClass",
        &SCHED_PRIORITY_CLASS,
    ),
];

// Field numbers and JSON names below follow the Kubernetes API types as of v1.35 (a
// superset of what kubectl 1.27-1.33 sends). Each message lists its fields in Go struct
// order; `keep` marks pointer or non-omitempty scalars, `inline` marks embedded structs.

static META_CONDITION: Msg = Msg {
    name: "Condition",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "status", Ty::Str).keep(),
        one(3, "observedGeneration", Ty::I64),
        one(4, "lastTransitionTime", Ty::Time),
        one(5, "reason", Ty::Str).keep(),
        one(6, "message", Ty::Str).keep(),
    ],
};

static META_LABEL_SELECTOR: Msg = Msg {
    name: "LabelSelector",
    fields: &[
        map(1, "matchLabels", Ty::Str),
        rep(
            2,
            "matchExpressions",
            Ty::Msg(&META_LABEL_SELECTOR_REQUIREMENT),
        ),
    ],
};

static META_LABEL_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "LabelSelectorRequirement",
    fields: &[
        one(1, "key", Ty::Str).keep(),
        one(2, "operator", Ty::Str).keep(),
        rep(3, "values", Ty::Str),
    ],
};

static META_MANAGED_FIELDS_ENTRY: Msg = Msg {
    name: "ManagedFieldsEntry",
    fields: &[
        one(1, "manager", Ty::Str),
        one(2, "operation", Ty::Str),
        one(3, "apiVersion", Ty::Str),
        one(4, "time", Ty::Time),
        one(6, "fieldsType", Ty::Str),
        one(7, "fieldsV1", Ty::FieldsV1),
        one(8, "subresource", Ty::Str),
    ],
};

static META_OBJECT_META: Msg = Msg {
    name: "ObjectMeta",
    fields: &[
        one(1, "name", Ty::Str),
        one(2, "generateName", Ty::Str),
        one(3, "namespace", Ty::Str),
        one(4, "selfLink", Ty::Str),
        one(5, "uid", Ty::Str),
        one(6, "resourceVersion", Ty::Str),
        one(7, "generation", Ty::I64),
        one(8, "creationTimestamp", Ty::Time),
        one(9, "deletionTimestamp", Ty::Time),
        one(10, "deletionGracePeriodSeconds", Ty::I64).keep(),
        map(11, "labels", Ty::Str),
        map(12, "annotations", Ty::Str),
        rep(13, "ownerReferences", Ty::Msg(&META_OWNER_REFERENCE)),
        rep(14, "finalizers", Ty::Str),
        rep(17, "managedFields", Ty::Msg(&META_MANAGED_FIELDS_ENTRY)),
    ],
};

static META_OWNER_REFERENCE: Msg = Msg {
    name: "OwnerReference",
    fields: &[
        one(5, "apiVersion", Ty::Str).keep(),
        one(1, "kind", Ty::Str).keep(),
        one(3, "name", Ty::Str).keep(),
        one(4, "uid", Ty::Str).keep(),
        one(6, "controller", Ty::Bool).keep(),
        one(7, "blockOwnerDeletion", Ty::Bool).keep(),
    ],
};

static CORE_AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Msg = Msg {
    name: "AWSElasticBlockStoreVolumeSource",
    fields: &[
        one(1, "volumeID", Ty::Str).keep(),
        one(2, "fsType", Ty::Str),
        one(3, "partition", Ty::I32),
        one(4, "readOnly", Ty::Bool),
    ],
};

static CORE_AFFINITY: Msg = Msg {
    name: "Affinity",
    fields: &[
        one(1, "nodeAffinity", Ty::Msg(&CORE_NODE_AFFINITY)),
        one(2, "podAffinity", Ty::Msg(&CORE_POD_AFFINITY)),
        one(3, "podAntiAffinity", Ty::Msg(&CORE_POD_ANTI_AFFINITY)),
    ],
};

static CORE_APP_ARMOR_PROFILE: Msg = Msg {
    name: "AppArmorProfile",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "localhostProfile", Ty::Str).keep(),
    ],
};

static CORE_AZURE_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "AzureDiskVolumeSource",
    fields: &[
        one(1, "diskName", Ty::Str).keep(),
        one(2, "diskURI", Ty::Str).keep(),
        one(3, "cachingMode", Ty::Str).keep(),
        one(4, "fsType", Ty::Str).keep(),
        one(5, "readOnly", Ty::Bool).keep(),
        one(6, "kind", Ty::Str).keep(),
    ],
};

static CORE_AZURE_FILE_VOLUME_SOURCE: Msg = Msg {
    name: "AzureFileVolumeSource",
    fields: &[
        one(1, "secretName", Ty::Str).keep(),
        one(2, "shareName", Ty::Str).keep(),
        one(3, "readOnly", Ty::Bool),
    ],
};

static CORE_CSI_VOLUME_SOURCE: Msg = Msg {
    name: "CSIVolumeSource",
    fields: &[
        one(1, "driver", Ty::Str).keep(),
        one(2, "readOnly", Ty::Bool).keep(),
        one(3, "fsType", Ty::Str).keep(),
        map(4, "volumeAttributes", Ty::Str),
        one(
            5,
            "nodePublishSecretRef",
            Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE),
        ),
    ],
};

static CORE_CAPABILITIES: Msg = Msg {
    name: "Capabilities",
    fields: &[rep(1, "add", Ty::Str), rep(2, "drop", Ty::Str)],
};

static CORE_CEPH_FS_VOLUME_SOURCE: Msg = Msg {
    name: "CephFSVolumeSource",
    fields: &[
        rep(1, "monitors", Ty::Str),
        one(2, "path", Ty::Str),
        one(3, "user", Ty::Str),
        one(4, "secretFile", Ty::Str),
        one(5, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        one(6, "readOnly", Ty::Bool),
    ],
};

static CORE_CINDER_VOLUME_SOURCE: Msg = Msg {
    name: "CinderVolumeSource",
    fields: &[
        one(1, "volumeID", Ty::Str).keep(),
        one(2, "fsType", Ty::Str),
        one(3, "readOnly", Ty::Bool),
        one(4, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
    ],
};

static CORE_CLIENT_IP_CONFIG: Msg = Msg {
    name: "ClientIPConfig",
    fields: &[one(1, "timeoutSeconds", Ty::I32).keep()],
};

static CORE_CLUSTER_TRUST_BUNDLE_PROJECTION: Msg = Msg {
    name: "ClusterTrustBundleProjection",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "signerName", Ty::Str).keep(),
        one(3, "labelSelector", Ty::Msg(&META_LABEL_SELECTOR)),
        one(5, "optional", Ty::Bool).keep(),
        one(4, "path", Ty::Str).keep(),
    ],
};

static CORE_CONFIG_MAP: Msg = Msg {
    name: "ConfigMap",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(4, "immutable", Ty::Bool).keep(),
        map(2, "data", Ty::Str),
        map(3, "binaryData", Ty::Bytes),
    ],
};

static CORE_CONFIG_MAP_ENV_SOURCE: Msg = Msg {
    name: "ConfigMapEnvSource",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        one(2, "optional", Ty::Bool).keep(),
    ],
};

static CORE_CONFIG_MAP_KEY_SELECTOR: Msg = Msg {
    name: "ConfigMapKeySelector",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        one(2, "key", Ty::Str).keep(),
        one(3, "optional", Ty::Bool).keep(),
    ],
};

static CORE_CONFIG_MAP_PROJECTION: Msg = Msg {
    name: "ConfigMapProjection",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        rep(2, "items", Ty::Msg(&CORE_KEY_TO_PATH)),
        one(4, "optional", Ty::Bool).keep(),
    ],
};

static CORE_CONFIG_MAP_VOLUME_SOURCE: Msg = Msg {
    name: "ConfigMapVolumeSource",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        rep(2, "items", Ty::Msg(&CORE_KEY_TO_PATH)),
        one(3, "defaultMode", Ty::I32).keep(),
        one(4, "optional", Ty::Bool).keep(),
    ],
};

static CORE_CONTAINER: Msg = Msg {
    name: "Container",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "image", Ty::Str),
        rep(3, "command", Ty::Str),
        rep(4, "args", Ty::Str),
        one(5, "workingDir", Ty::Str),
        rep(6, "ports", Ty::Msg(&CORE_CONTAINER_PORT)),
        rep(19, "envFrom", Ty::Msg(&CORE_ENV_FROM_SOURCE)),
        rep(7, "env", Ty::Msg(&CORE_ENV_VAR)),
        one(8, "resources", Ty::Msg(&CORE_RESOURCE_REQUIREMENTS)),
        rep(23, "resizePolicy", Ty::Msg(&CORE_CONTAINER_RESIZE_POLICY)),
        one(24, "restartPolicy", Ty::Str).keep(),
        rep(
            25,
            "restartPolicyRules",
            Ty::Msg(&CORE_CONTAINER_RESTART_RULE),
        ),
        rep(9, "volumeMounts", Ty::Msg(&CORE_VOLUME_MOUNT)),
        rep(21, "volumeDevices", Ty::Msg(&CORE_VOLUME_DEVICE)),
        one(10, "livenessProbe", Ty::Msg(&CORE_PROBE)),
        one(11, "readinessProbe", Ty::Msg(&CORE_PROBE)),
        one(22, "startupProbe", Ty::Msg(&CORE_PROBE)),
        one(12, "lifecycle", Ty::Msg(&CORE_LIFECYCLE)),
        one(13, "terminationMessagePath", Ty::Str),
        one(20, "terminationMessagePolicy", Ty::Str),
        one(14, "imagePullPolicy", Ty::Str),
        one(15, "securityContext", Ty::Msg(&CORE_SECURITY_CONTEXT)),
        one(16, "stdin", Ty::Bool),
        one(17, "stdinOnce", Ty::Bool),
        one(18, "tty", Ty::Bool),
    ],
};

static CORE_CONTAINER_EXTENDED_RESOURCE_REQUEST: Msg = Msg {
    name: "ContainerExtendedResourceRequest",
    fields: &[
        one(1, "containerName", Ty::Str).keep(),
        one(2, "resourceName", Ty::Str).keep(),
        one(3, "requestName", Ty::Str).keep(),
    ],
};

static CORE_CONTAINER_PORT: Msg = Msg {
    name: "ContainerPort",
    fields: &[
        one(1, "name", Ty::Str),
        one(2, "hostPort", Ty::I32),
        one(3, "containerPort", Ty::I32).keep(),
        one(4, "protocol", Ty::Str),
        one(5, "hostIP", Ty::Str),
    ],
};

static CORE_CONTAINER_RESIZE_POLICY: Msg = Msg {
    name: "ContainerResizePolicy",
    fields: &[
        one(1, "resourceName", Ty::Str).keep(),
        one(2, "restartPolicy", Ty::Str).keep(),
    ],
};

static CORE_CONTAINER_RESTART_RULE: Msg = Msg {
    name: "ContainerRestartRule",
    fields: &[
        one(1, "action", Ty::Str),
        one(
            2,
            "exitCodes",
            Ty::Msg(&CORE_CONTAINER_RESTART_RULE_ON_EXIT_CODES),
        ),
    ],
};

static CORE_CONTAINER_RESTART_RULE_ON_EXIT_CODES: Msg = Msg {
    name: "ContainerRestartRuleOnExitCodes",
    fields: &[one(1, "operator", Ty::Str), rep(2, "values", Ty::I32)],
};

static CORE_CONTAINER_STATE: Msg = Msg {
    name: "ContainerState",
    fields: &[
        one(1, "waiting", Ty::Msg(&CORE_CONTAINER_STATE_WAITING)),
        one(2, "running", Ty::Msg(&CORE_CONTAINER_STATE_RUNNING)),
        one(3, "terminated", Ty::Msg(&CORE_CONTAINER_STATE_TERMINATED)),
    ],
};

static CORE_CONTAINER_STATE_RUNNING: Msg = Msg {
    name: "ContainerStateRunning",
    fields: &[one(1, "startedAt", Ty::Time)],
};

static CORE_CONTAINER_STATE_TERMINATED: Msg = Msg {
    name: "ContainerStateTerminated",
    fields: &[
        one(1, "exitCode", Ty::I32).keep(),
        one(2, "signal", Ty::I32),
        one(3, "reason", Ty::Str),
        one(4, "message", Ty::Str),
        one(5, "startedAt", Ty::Time),
        one(6, "finishedAt", Ty::Time),
        one(7, "containerID", Ty::Str),
    ],
};

static CORE_CONTAINER_STATE_WAITING: Msg = Msg {
    name: "ContainerStateWaiting",
    fields: &[one(1, "reason", Ty::Str), one(2, "message", Ty::Str)],
};

static CORE_CONTAINER_STATUS: Msg = Msg {
    name: "ContainerStatus",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "state", Ty::Msg(&CORE_CONTAINER_STATE)),
        one(3, "lastState", Ty::Msg(&CORE_CONTAINER_STATE)),
        one(4, "ready", Ty::Bool).keep(),
        one(5, "restartCount", Ty::I32).keep(),
        one(6, "image", Ty::Str).keep(),
        one(7, "imageID", Ty::Str).keep(),
        one(8, "containerID", Ty::Str),
        one(9, "started", Ty::Bool).keep(),
        map(10, "allocatedResources", Ty::Quantity),
        one(11, "resources", Ty::Msg(&CORE_RESOURCE_REQUIREMENTS)),
        rep(12, "volumeMounts", Ty::Msg(&CORE_VOLUME_MOUNT_STATUS)),
        one(13, "user", Ty::Msg(&CORE_CONTAINER_USER)),
        rep(
            14,
            "allocatedResourcesStatus",
            Ty::Msg(&CORE_RESOURCE_STATUS),
        ),
        one(15, "stopSignal", Ty::Str).keep(),
    ],
};

static CORE_CONTAINER_USER: Msg = Msg {
    name: "ContainerUser",
    fields: &[one(1, "linux", Ty::Msg(&CORE_LINUX_CONTAINER_USER))],
};

static CORE_DOWNWARD_API_PROJECTION: Msg = Msg {
    name: "DownwardAPIProjection",
    fields: &[rep(1, "items", Ty::Msg(&CORE_DOWNWARD_API_VOLUME_FILE))],
};

static CORE_DOWNWARD_API_VOLUME_FILE: Msg = Msg {
    name: "DownwardAPIVolumeFile",
    fields: &[
        one(1, "path", Ty::Str).keep(),
        one(2, "fieldRef", Ty::Msg(&CORE_OBJECT_FIELD_SELECTOR)),
        one(
            3,
            "resourceFieldRef",
            Ty::Msg(&CORE_RESOURCE_FIELD_SELECTOR),
        ),
        one(4, "mode", Ty::I32).keep(),
    ],
};

static CORE_DOWNWARD_API_VOLUME_SOURCE: Msg = Msg {
    name: "DownwardAPIVolumeSource",
    fields: &[
        rep(1, "items", Ty::Msg(&CORE_DOWNWARD_API_VOLUME_FILE)),
        one(2, "defaultMode", Ty::I32).keep(),
    ],
};

static CORE_EMPTY_DIR_VOLUME_SOURCE: Msg = Msg {
    name: "EmptyDirVolumeSource",
    fields: &[
        one(1, "medium", Ty::Str),
        one(2, "sizeLimit", Ty::Quantity).keep(),
    ],
};

static CORE_ENV_FROM_SOURCE: Msg = Msg {
    name: "EnvFromSource",
    fields: &[
        one(1, "prefix", Ty::Str),
        one(2, "configMapRef", Ty::Msg(&CORE_CONFIG_MAP_ENV_SOURCE)),
        one(3, "secretRef", Ty::Msg(&CORE_SECRET_ENV_SOURCE)),
    ],
};

static CORE_ENV_VAR: Msg = Msg {
    name: "EnvVar",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "value", Ty::Str),
        one(3, "valueFrom", Ty::Msg(&CORE_ENV_VAR_SOURCE)),
    ],
};

static CORE_ENV_VAR_SOURCE: Msg = Msg {
    name: "EnvVarSource",
    fields: &[
        one(1, "fieldRef", Ty::Msg(&CORE_OBJECT_FIELD_SELECTOR)),
        one(
            2,
            "resourceFieldRef",
            Ty::Msg(&CORE_RESOURCE_FIELD_SELECTOR),
        ),
        one(3, "configMapKeyRef", Ty::Msg(&CORE_CONFIG_MAP_KEY_SELECTOR)),
        one(4, "secretKeyRef", Ty::Msg(&CORE_SECRET_KEY_SELECTOR)),
        one(5, "fileKeyRef", Ty::Msg(&CORE_FILE_KEY_SELECTOR)),
    ],
};

static CORE_EPHEMERAL_CONTAINER: Msg = Msg {
    name: "EphemeralContainer",
    fields: &[
        one(1, "", Ty::Msg(&CORE_EPHEMERAL_CONTAINER_COMMON)).inline(),
        one(2, "targetContainerName", Ty::Str),
    ],
};

static CORE_EPHEMERAL_CONTAINER_COMMON: Msg = Msg {
    name: "EphemeralContainerCommon",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "image", Ty::Str),
        rep(3, "command", Ty::Str),
        rep(4, "args", Ty::Str),
        one(5, "workingDir", Ty::Str),
        rep(6, "ports", Ty::Msg(&CORE_CONTAINER_PORT)),
        rep(19, "envFrom", Ty::Msg(&CORE_ENV_FROM_SOURCE)),
        rep(7, "env", Ty::Msg(&CORE_ENV_VAR)),
        one(8, "resources", Ty::Msg(&CORE_RESOURCE_REQUIREMENTS)),
        rep(23, "resizePolicy", Ty::Msg(&CORE_CONTAINER_RESIZE_POLICY)),
        one(24, "restartPolicy", Ty::Str).keep(),
        rep(
            25,
            "restartPolicyRules",
            Ty::Msg(&CORE_CONTAINER_RESTART_RULE),
        ),
        rep(9, "volumeMounts", Ty::Msg(&CORE_VOLUME_MOUNT)),
        rep(21, "volumeDevices", Ty::Msg(&CORE_VOLUME_DEVICE)),
        one(10, "livenessProbe", Ty::Msg(&CORE_PROBE)),
        one(11, "readinessProbe", Ty::Msg(&CORE_PROBE)),
        one(22, "startupProbe", Ty::Msg(&CORE_PROBE)),
        one(12, "lifecycle", Ty::Msg(&CORE_LIFECYCLE)),
        one(13, "terminationMessagePath", Ty::Str),
        one(20, "terminationMessagePolicy", Ty::Str),
        one(14, "imagePullPolicy", Ty::Str),
        one(15, "securityContext", Ty::Msg(&CORE_SECURITY_CONTEXT)),
        one(16, "stdin", Ty::Bool),
        one(17, "stdinOnce", Ty::Bool),
        one(18, "tty", Ty::Bool),
    ],
};

static CORE_EPHEMERAL_VOLUME_SOURCE: Msg = Msg {
    name: "EphemeralVolumeSource",
    fields: &[one(
        1,
        "volumeClaimTemplate",
        Ty::Msg(&CORE_PERSISTENT_VOLUME_CLAIM_TEMPLATE),
    )],
};

static CORE_EXEC_ACTION: Msg = Msg {
    name: "ExecAction",
    fields: &[rep(1, "command", Ty::Str)],
};

static CORE_FC_VOLUME_SOURCE: Msg = Msg {
    name: "FCVolumeSource",
    fields: &[
        rep(1, "targetWWNs", Ty::Str),
        one(2, "lun", Ty::I32).keep(),
        one(3, "fsType", Ty::Str),
        one(4, "readOnly", Ty::Bool),
        rep(5, "wwids", Ty::Str),
    ],
};

static CORE_FILE_KEY_SELECTOR: Msg = Msg {
    name: "FileKeySelector",
    fields: &[
        one(1, "volumeName", Ty::Str).keep(),
        one(2, "path", Ty::Str).keep(),
        one(3, "key", Ty::Str).keep(),
        one(4, "optional", Ty::Bool).keep(),
    ],
};

static CORE_FLEX_VOLUME_SOURCE: Msg = Msg {
    name: "FlexVolumeSource",
    fields: &[
        one(1, "driver", Ty::Str).keep(),
        one(2, "fsType", Ty::Str),
        one(3, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        one(4, "readOnly", Ty::Bool),
        map(5, "options", Ty::Str),
    ],
};

static CORE_FLOCKER_VOLUME_SOURCE: Msg = Msg {
    name: "FlockerVolumeSource",
    fields: &[
        one(1, "datasetName", Ty::Str),
        one(2, "datasetUUID", Ty::Str),
    ],
};

static CORE_GCE_PERSISTENT_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "GCEPersistentDiskVolumeSource",
    fields: &[
        one(1, "pdName", Ty::Str).keep(),
        one(2, "fsType", Ty::Str),
        one(3, "partition", Ty::I32),
        one(4, "readOnly", Ty::Bool),
    ],
};

static CORE_GRPC_ACTION: Msg = Msg {
    name: "GRPCAction",
    fields: &[
        one(1, "port", Ty::I32).keep(),
        one(2, "service", Ty::Str).keep(),
    ],
};

static CORE_GIT_REPO_VOLUME_SOURCE: Msg = Msg {
    name: "GitRepoVolumeSource",
    fields: &[
        one(1, "repository", Ty::Str).keep(),
        one(2, "revision", Ty::Str),
        one(3, "directory", Ty::Str),
    ],
};

static CORE_GLUSTERFS_VOLUME_SOURCE: Msg = Msg {
    name: "GlusterfsVolumeSource",
    fields: &[
        one(1, "endpoints", Ty::Str).keep(),
        one(2, "path", Ty::Str).keep(),
        one(3, "readOnly", Ty::Bool),
    ],
};

static CORE_HTTP_GET_ACTION: Msg = Msg {
    name: "HTTPGetAction",
    fields: &[
        one(1, "path", Ty::Str),
        one(2, "port", Ty::IntOrStr).keep(),
        one(3, "host", Ty::Str),
        one(4, "scheme", Ty::Str),
        rep(5, "httpHeaders", Ty::Msg(&CORE_HTTP_HEADER)),
    ],
};

static CORE_HTTP_HEADER: Msg = Msg {
    name: "HTTPHeader",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "value", Ty::Str).keep(),
    ],
};

static CORE_HOST_ALIAS: Msg = Msg {
    name: "HostAlias",
    fields: &[one(1, "ip", Ty::Str).keep(), rep(2, "hostnames", Ty::Str)],
};

static CORE_HOST_IP: Msg = Msg {
    name: "HostIP",
    fields: &[one(1, "ip", Ty::Str).keep()],
};

static CORE_HOST_PATH_VOLUME_SOURCE: Msg = Msg {
    name: "HostPathVolumeSource",
    fields: &[
        one(1, "path", Ty::Str).keep(),
        one(2, "type", Ty::Str).keep(),
    ],
};

static CORE_ISCSI_VOLUME_SOURCE: Msg = Msg {
    name: "ISCSIVolumeSource",
    fields: &[
        one(1, "targetPortal", Ty::Str).keep(),
        one(2, "iqn", Ty::Str).keep(),
        one(3, "lun", Ty::I32).keep(),
        one(4, "iscsiInterface", Ty::Str),
        one(5, "fsType", Ty::Str),
        one(6, "readOnly", Ty::Bool),
        rep(7, "portals", Ty::Str),
        one(8, "chapAuthDiscovery", Ty::Bool),
        one(11, "chapAuthSession", Ty::Bool),
        one(10, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        one(12, "initiatorName", Ty::Str).keep(),
    ],
};

static CORE_IMAGE_VOLUME_SOURCE: Msg = Msg {
    name: "ImageVolumeSource",
    fields: &[one(1, "reference", Ty::Str), one(2, "pullPolicy", Ty::Str)],
};

static CORE_KEY_TO_PATH: Msg = Msg {
    name: "KeyToPath",
    fields: &[
        one(1, "key", Ty::Str).keep(),
        one(2, "path", Ty::Str).keep(),
        one(3, "mode", Ty::I32).keep(),
    ],
};

static CORE_LIFECYCLE: Msg = Msg {
    name: "Lifecycle",
    fields: &[
        one(1, "postStart", Ty::Msg(&CORE_LIFECYCLE_HANDLER)),
        one(2, "preStop", Ty::Msg(&CORE_LIFECYCLE_HANDLER)),
        one(3, "stopSignal", Ty::Str).keep(),
    ],
};

static CORE_LIFECYCLE_HANDLER: Msg = Msg {
    name: "LifecycleHandler",
    fields: &[
        one(1, "exec", Ty::Msg(&CORE_EXEC_ACTION)),
        one(2, "httpGet", Ty::Msg(&CORE_HTTP_GET_ACTION)),
        one(3, "tcpSocket", Ty::Msg(&CORE_TCP_SOCKET_ACTION)),
        one(4, "sleep", Ty::Msg(&CORE_SLEEP_ACTION)),
    ],
};

static CORE_LINUX_CONTAINER_USER: Msg = Msg {
    name: "LinuxContainerUser",
    fields: &[
        one(1, "uid", Ty::I64).keep(),
        one(2, "gid", Ty::I64).keep(),
        rep(3, "supplementalGroups", Ty::I64),
    ],
};

static CORE_LOAD_BALANCER_INGRESS: Msg = Msg {
    name: "LoadBalancerIngress",
    fields: &[
        one(1, "ip", Ty::Str),
        one(2, "hostname", Ty::Str),
        one(3, "ipMode", Ty::Str).keep(),
        rep(4, "ports", Ty::Msg(&CORE_PORT_STATUS)),
    ],
};

static CORE_LOAD_BALANCER_STATUS: Msg = Msg {
    name: "LoadBalancerStatus",
    fields: &[rep(1, "ingress", Ty::Msg(&CORE_LOAD_BALANCER_INGRESS))],
};

static CORE_LOCAL_OBJECT_REFERENCE: Msg = Msg {
    name: "LocalObjectReference",
    fields: &[one(1, "name", Ty::Str)],
};

static CORE_NFS_VOLUME_SOURCE: Msg = Msg {
    name: "NFSVolumeSource",
    fields: &[
        one(1, "server", Ty::Str).keep(),
        one(2, "path", Ty::Str).keep(),
        one(3, "readOnly", Ty::Bool),
    ],
};

static CORE_NAMESPACE: Msg = Msg {
    name: "Namespace",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&CORE_NAMESPACE_SPEC)),
        one(3, "status", Ty::Msg(&CORE_NAMESPACE_STATUS)),
    ],
};

static CORE_NAMESPACE_CONDITION: Msg = Msg {
    name: "NamespaceCondition",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "status", Ty::Str).keep(),
        one(4, "lastTransitionTime", Ty::Time),
        one(5, "reason", Ty::Str),
        one(6, "message", Ty::Str),
    ],
};

static CORE_NAMESPACE_SPEC: Msg = Msg {
    name: "NamespaceSpec",
    fields: &[rep(1, "finalizers", Ty::Str)],
};

static CORE_NAMESPACE_STATUS: Msg = Msg {
    name: "NamespaceStatus",
    fields: &[
        one(1, "phase", Ty::Str),
        rep(2, "conditions", Ty::Msg(&CORE_NAMESPACE_CONDITION)),
    ],
};

static CORE_NODE_AFFINITY: Msg = Msg {
    name: "NodeAffinity",
    fields: &[
        one(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&CORE_NODE_SELECTOR),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&CORE_PREFERRED_SCHEDULING_TERM),
        ),
    ],
};

static CORE_NODE_SELECTOR: Msg = Msg {
    name: "NodeSelector",
    fields: &[rep(
        1,
        "nodeSelectorTerms",
        Ty::Msg(&CORE_NODE_SELECTOR_TERM),
    )],
};

static CORE_NODE_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "NodeSelectorRequirement",
    fields: &[
        one(1, "key", Ty::Str).keep(),
        one(2, "operator", Ty::Str).keep(),
        rep(3, "values", Ty::Str),
    ],
};

static CORE_NODE_SELECTOR_TERM: Msg = Msg {
    name: "NodeSelectorTerm",
    fields: &[
        rep(
            1,
            "matchExpressions",
            Ty::Msg(&CORE_NODE_SELECTOR_REQUIREMENT),
        ),
        rep(2, "matchFields", Ty::Msg(&CORE_NODE_SELECTOR_REQUIREMENT)),
    ],
};

static CORE_OBJECT_FIELD_SELECTOR: Msg = Msg {
    name: "ObjectFieldSelector",
    fields: &[
        one(1, "apiVersion", Ty::Str),
        one(2, "fieldPath", Ty::Str).keep(),
    ],
};

static CORE_OBJECT_REFERENCE: Msg = Msg {
    name: "ObjectReference",
    fields: &[
        one(1, "kind", Ty::Str),
        one(2, "namespace", Ty::Str),
        one(3, "name", Ty::Str),
        one(4, "uid", Ty::Str),
        one(5, "apiVersion", Ty::Str),
        one(6, "resourceVersion", Ty::Str),
        one(7, "fieldPath", Ty::Str),
    ],
};

static CORE_PERSISTENT_VOLUME_CLAIM_SPEC: Msg = Msg {
    name: "PersistentVolumeClaimSpec",
    fields: &[
        rep(1, "accessModes", Ty::Str),
        one(4, "selector", Ty::Msg(&META_LABEL_SELECTOR)),
        one(2, "resources", Ty::Msg(&CORE_VOLUME_RESOURCE_REQUIREMENTS)),
        one(3, "volumeName", Ty::Str),
        one(5, "storageClassName", Ty::Str).keep(),
        one(6, "volumeMode", Ty::Str).keep(),
        one(7, "dataSource", Ty::Msg(&CORE_TYPED_LOCAL_OBJECT_REFERENCE)),
        one(8, "dataSourceRef", Ty::Msg(&CORE_TYPED_OBJECT_REFERENCE)),
        one(9, "volumeAttributesClassName", Ty::Str).keep(),
    ],
};

static CORE_PERSISTENT_VOLUME_CLAIM_TEMPLATE: Msg = Msg {
    name: "PersistentVolumeClaimTemplate",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&CORE_PERSISTENT_VOLUME_CLAIM_SPEC)),
    ],
};

static CORE_PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Msg = Msg {
    name: "PersistentVolumeClaimVolumeSource",
    fields: &[
        one(1, "claimName", Ty::Str).keep(),
        one(2, "readOnly", Ty::Bool),
    ],
};

static CORE_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "PhotonPersistentDiskVolumeSource",
    fields: &[one(1, "pdID", Ty::Str).keep(), one(2, "fsType", Ty::Str)],
};

static CORE_POD: Msg = Msg {
    name: "Pod",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&CORE_POD_SPEC)),
        one(3, "status", Ty::Msg(&CORE_POD_STATUS)),
    ],
};

static CORE_POD_AFFINITY: Msg = Msg {
    name: "PodAffinity",
    fields: &[
        rep(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&CORE_POD_AFFINITY_TERM),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&CORE_WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
};

static CORE_POD_AFFINITY_TERM: Msg = Msg {
    name: "PodAffinityTerm",
    fields: &[
        one(1, "labelSelector", Ty::Msg(&META_LABEL_SELECTOR)),
        rep(2, "namespaces", Ty::Str),
        one(3, "topologyKey", Ty::Str).keep(),
        one(4, "namespaceSelector", Ty::Msg(&META_LABEL_SELECTOR)),
        rep(5, "matchLabelKeys", Ty::Str),
        rep(6, "mismatchLabelKeys", Ty::Str),
    ],
};

static CORE_POD_ANTI_AFFINITY: Msg = Msg {
    name: "PodAntiAffinity",
    fields: &[
        rep(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&CORE_POD_AFFINITY_TERM),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&CORE_WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
};

static CORE_POD_CERTIFICATE_PROJECTION: Msg = Msg {
    name: "PodCertificateProjection",
    fields: &[
        one(1, "signerName", Ty::Str),
        one(2, "keyType", Ty::Str),
        one(3, "maxExpirationSeconds", Ty::I32).keep(),
        one(4, "credentialBundlePath", Ty::Str),
        one(5, "keyPath", Ty::Str),
        one(6, "certificateChainPath", Ty::Str),
        map(7, "userAnnotations", Ty::Str),
    ],
};

static CORE_POD_CONDITION: Msg = Msg {
    name: "PodCondition",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(7, "observedGeneration", Ty::I64),
        one(2, "status", Ty::Str).keep(),
        one(3, "lastProbeTime", Ty::Time),
        one(4, "lastTransitionTime", Ty::Time),
        one(5, "reason", Ty::Str),
        one(6, "message", Ty::Str),
    ],
};

static CORE_POD_DNS_CONFIG: Msg = Msg {
    name: "PodDNSConfig",
    fields: &[
        rep(1, "nameservers", Ty::Str),
        rep(2, "searches", Ty::Str),
        rep(3, "options", Ty::Msg(&CORE_POD_DNS_CONFIG_OPTION)),
    ],
};

static CORE_POD_DNS_CONFIG_OPTION: Msg = Msg {
    name: "PodDNSConfigOption",
    fields: &[one(1, "name", Ty::Str), one(2, "value", Ty::Str).keep()],
};

static CORE_POD_EXTENDED_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "PodExtendedResourceClaimStatus",
    fields: &[
        rep(
            1,
            "requestMappings",
            Ty::Msg(&CORE_CONTAINER_EXTENDED_RESOURCE_REQUEST),
        ),
        one(2, "resourceClaimName", Ty::Str).keep(),
    ],
};

static CORE_POD_IP: Msg = Msg {
    name: "PodIP",
    fields: &[one(1, "ip", Ty::Str).keep()],
};

static CORE_POD_OS: Msg = Msg {
    name: "PodOS",
    fields: &[one(1, "name", Ty::Str).keep()],
};

static CORE_POD_READINESS_GATE: Msg = Msg {
    name: "PodReadinessGate",
    fields: &[one(1, "conditionType", Ty::Str).keep()],
};

static CORE_POD_RESOURCE_CLAIM: Msg = Msg {
    name: "PodResourceClaim",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(3, "resourceClaimName", Ty::Str).keep(),
        one(4, "resourceClaimTemplateName", Ty::Str).keep(),
    ],
};

static CORE_POD_RESOURCE_CLAIM_STATUS: Msg = Msg {
    name: "PodResourceClaimStatus",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "resourceClaimName", Ty::Str).keep(),
    ],
};

static CORE_POD_SCHEDULING_GATE: Msg = Msg {
    name: "PodSchedulingGate",
    fields: &[one(1, "name", Ty::Str).keep()],
};

static CORE_POD_SECURITY_CONTEXT: Msg = Msg {
    name: "PodSecurityContext",
    fields: &[
        one(1, "seLinuxOptions", Ty::Msg(&CORE_SE_LINUX_OPTIONS)),
        one(
            8,
            "windowsOptions",
            Ty::Msg(&CORE_WINDOWS_SECURITY_CONTEXT_OPTIONS),
        ),
        one(2, "runAsUser", Ty::I64).keep(),
        one(6, "runAsGroup", Ty::I64).keep(),
        one(3, "runAsNonRoot", Ty::Bool).keep(),
        rep(4, "supplementalGroups", Ty::I64),
        one(12, "supplementalGroupsPolicy", Ty::Str).keep(),
        one(5, "fsGroup", Ty::I64).keep(),
        rep(7, "sysctls", Ty::Msg(&CORE_SYSCTL)),
        one(9, "fsGroupChangePolicy", Ty::Str).keep(),
        one(10, "seccompProfile", Ty::Msg(&CORE_SECCOMP_PROFILE)),
        one(11, "appArmorProfile", Ty::Msg(&CORE_APP_ARMOR_PROFILE)),
        one(13, "seLinuxChangePolicy", Ty::Str).keep(),
    ],
};

static CORE_POD_SPEC: Msg = Msg {
    name: "PodSpec",
    fields: &[
        rep(1, "volumes", Ty::Msg(&CORE_VOLUME)),
        rep(20, "initContainers", Ty::Msg(&CORE_CONTAINER)),
        rep(2, "containers", Ty::Msg(&CORE_CONTAINER)),
        rep(
            34,
            "ephemeralContainers",
            Ty::Msg(&CORE_EPHEMERAL_CONTAINER),
        ),
        one(3, "restartPolicy", Ty::Str),
        one(4, "terminationGracePeriodSeconds", Ty::I64).keep(),
        one(5, "activeDeadlineSeconds", Ty::I64).keep(),
        one(6, "dnsPolicy", Ty::Str),
        map(7, "nodeSelector", Ty::Str),
        one(8, "serviceAccountName", Ty::Str),
        one(9, "serviceAccount", Ty::Str),
        one(21, "automountServiceAccountToken", Ty::Bool).keep(),
        one(10, "nodeName", Ty::Str),
        one(11, "hostNetwork", Ty::Bool),
        one(12, "hostPID", Ty::Bool),
        one(13, "hostIPC", Ty::Bool),
        one(27, "shareProcessNamespace", Ty::Bool).keep(),
        one(14, "securityContext", Ty::Msg(&CORE_POD_SECURITY_CONTEXT)),
        rep(
            15,
            "imagePullSecrets",
            Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE),
        ),
        one(16, "hostname", Ty::Str),
        one(17, "subdomain", Ty::Str),
        one(18, "affinity", Ty::Msg(&CORE_AFFINITY)),
        one(19, "schedulerName", Ty::Str),
        rep(22, "tolerations", Ty::Msg(&CORE_TOLERATION)),
        rep(23, "hostAliases", Ty::Msg(&CORE_HOST_ALIAS)),
        one(24, "priorityClassName", Ty::Str),
        one(25, "priority", Ty::I32).keep(),
        one(26, "dnsConfig", Ty::Msg(&CORE_POD_DNS_CONFIG)),
        rep(28, "readinessGates", Ty::Msg(&CORE_POD_READINESS_GATE)),
        one(29, "runtimeClassName", Ty::Str).keep(),
        one(30, "enableServiceLinks", Ty::Bool).keep(),
        one(31, "preemptionPolicy", Ty::Str).keep(),
        map(32, "overhead", Ty::Quantity),
        rep(
            33,
            "topologySpreadConstraints",
            Ty::Msg(&CORE_TOPOLOGY_SPREAD_CONSTRAINT),
        ),
        one(35, "setHostnameAsFQDN", Ty::Bool).keep(),
        one(36, "os", Ty::Msg(&CORE_POD_OS)),
        one(37, "hostUsers", Ty::Bool).keep(),
        rep(38, "schedulingGates", Ty::Msg(&CORE_POD_SCHEDULING_GATE)),
        rep(39, "resourceClaims", Ty::Msg(&CORE_POD_RESOURCE_CLAIM)),
        one(40, "resources", Ty::Msg(&CORE_RESOURCE_REQUIREMENTS)),
        one(41, "hostnameOverride", Ty::Str).keep(),
        one(42, "workloadRef", Ty::Msg(&CORE_WORKLOAD_REFERENCE)),
    ],
};

static CORE_POD_STATUS: Msg = Msg {
    name: "PodStatus",
    fields: &[
        one(17, "observedGeneration", Ty::I64),
        one(1, "phase", Ty::Str),
        rep(2, "conditions", Ty::Msg(&CORE_POD_CONDITION)),
        one(3, "message", Ty::Str),
        one(4, "reason", Ty::Str),
        one(11, "nominatedNodeName", Ty::Str),
        one(5, "hostIP", Ty::Str),
        rep(16, "hostIPs", Ty::Msg(&CORE_HOST_IP)),
        one(6, "podIP", Ty::Str),
        rep(12, "podIPs", Ty::Msg(&CORE_POD_IP)),
        one(7, "startTime", Ty::Time),
        rep(10, "initContainerStatuses", Ty::Msg(&CORE_CONTAINER_STATUS)),
        rep(8, "containerStatuses", Ty::Msg(&CORE_CONTAINER_STATUS)),
        one(9, "qosClass", Ty::Str),
        rep(
            13,
            "ephemeralContainerStatuses",
            Ty::Msg(&CORE_CONTAINER_STATUS),
        ),
        one(14, "resize", Ty::Str),
        rep(
            15,
            "resourceClaimStatuses",
            Ty::Msg(&CORE_POD_RESOURCE_CLAIM_STATUS),
        ),
        one(
            18,
            "extendedResourceClaimStatus",
            Ty::Msg(&CORE_POD_EXTENDED_RESOURCE_CLAIM_STATUS),
        ),
        map(19, "allocatedResources", Ty::Quantity),
        one(20, "resources", Ty::Msg(&CORE_RESOURCE_REQUIREMENTS)),
    ],
};

static CORE_POD_TEMPLATE_SPEC: Msg = Msg {
    name: "PodTemplateSpec",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&CORE_POD_SPEC)),
    ],
};

static CORE_PORT_STATUS: Msg = Msg {
    name: "PortStatus",
    fields: &[
        one(1, "port", Ty::I32).keep(),
        one(2, "protocol", Ty::Str).keep(),
        one(3, "error", Ty::Str).keep(),
    ],
};

static CORE_PORTWORX_VOLUME_SOURCE: Msg = Msg {
    name: "PortworxVolumeSource",
    fields: &[
        one(1, "volumeID", Ty::Str).keep(),
        one(2, "fsType", Ty::Str),
        one(3, "readOnly", Ty::Bool),
    ],
};

static CORE_PREFERRED_SCHEDULING_TERM: Msg = Msg {
    name: "PreferredSchedulingTerm",
    fields: &[
        one(1, "weight", Ty::I32).keep(),
        one(2, "preference", Ty::Msg(&CORE_NODE_SELECTOR_TERM)),
    ],
};

static CORE_PROBE: Msg = Msg {
    name: "Probe",
    fields: &[
        one(1, "", Ty::Msg(&CORE_PROBE_HANDLER)).inline(),
        one(2, "initialDelaySeconds", Ty::I32),
        one(3, "timeoutSeconds", Ty::I32),
        one(4, "periodSeconds", Ty::I32),
        one(5, "successThreshold", Ty::I32),
        one(6, "failureThreshold", Ty::I32),
        one(7, "terminationGracePeriodSeconds", Ty::I64).keep(),
    ],
};

static CORE_PROBE_HANDLER: Msg = Msg {
    name: "ProbeHandler",
    fields: &[
        one(1, "exec", Ty::Msg(&CORE_EXEC_ACTION)),
        one(2, "httpGet", Ty::Msg(&CORE_HTTP_GET_ACTION)),
        one(3, "tcpSocket", Ty::Msg(&CORE_TCP_SOCKET_ACTION)),
        one(4, "grpc", Ty::Msg(&CORE_GRPC_ACTION)),
    ],
};

static CORE_PROJECTED_VOLUME_SOURCE: Msg = Msg {
    name: "ProjectedVolumeSource",
    fields: &[
        rep(1, "sources", Ty::Msg(&CORE_VOLUME_PROJECTION)),
        one(2, "defaultMode", Ty::I32).keep(),
    ],
};

static CORE_QUOBYTE_VOLUME_SOURCE: Msg = Msg {
    name: "QuobyteVolumeSource",
    fields: &[
        one(1, "registry", Ty::Str).keep(),
        one(2, "volume", Ty::Str).keep(),
        one(3, "readOnly", Ty::Bool),
        one(4, "user", Ty::Str),
        one(5, "group", Ty::Str),
        one(6, "tenant", Ty::Str),
    ],
};

static CORE_RBD_VOLUME_SOURCE: Msg = Msg {
    name: "RBDVolumeSource",
    fields: &[
        rep(1, "monitors", Ty::Str),
        one(2, "image", Ty::Str).keep(),
        one(3, "fsType", Ty::Str),
        one(4, "pool", Ty::Str),
        one(5, "user", Ty::Str),
        one(6, "keyring", Ty::Str),
        one(7, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        one(8, "readOnly", Ty::Bool),
    ],
};

static CORE_RESOURCE_CLAIM: Msg = Msg {
    name: "ResourceClaim",
    fields: &[one(1, "name", Ty::Str).keep(), one(2, "request", Ty::Str)],
};

static CORE_RESOURCE_FIELD_SELECTOR: Msg = Msg {
    name: "ResourceFieldSelector",
    fields: &[
        one(1, "containerName", Ty::Str),
        one(2, "resource", Ty::Str).keep(),
        one(3, "divisor", Ty::Quantity),
    ],
};

static CORE_RESOURCE_HEALTH: Msg = Msg {
    name: "ResourceHealth",
    fields: &[
        one(1, "resourceID", Ty::Str).keep(),
        one(2, "health", Ty::Str),
    ],
};

static CORE_RESOURCE_QUOTA: Msg = Msg {
    name: "ResourceQuota",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&CORE_RESOURCE_QUOTA_SPEC)),
        one(3, "status", Ty::Msg(&CORE_RESOURCE_QUOTA_STATUS)),
    ],
};

static CORE_RESOURCE_QUOTA_SPEC: Msg = Msg {
    name: "ResourceQuotaSpec",
    fields: &[
        map(1, "hard", Ty::Quantity),
        rep(2, "scopes", Ty::Str),
        one(3, "scopeSelector", Ty::Msg(&CORE_SCOPE_SELECTOR)),
    ],
};

static CORE_RESOURCE_QUOTA_STATUS: Msg = Msg {
    name: "ResourceQuotaStatus",
    fields: &[map(1, "hard", Ty::Quantity), map(2, "used", Ty::Quantity)],
};

static CORE_RESOURCE_REQUIREMENTS: Msg = Msg {
    name: "ResourceRequirements",
    fields: &[
        map(1, "limits", Ty::Quantity),
        map(2, "requests", Ty::Quantity),
        rep(3, "claims", Ty::Msg(&CORE_RESOURCE_CLAIM)),
    ],
};

static CORE_RESOURCE_STATUS: Msg = Msg {
    name: "ResourceStatus",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        rep(2, "resources", Ty::Msg(&CORE_RESOURCE_HEALTH)),
    ],
};

static CORE_SE_LINUX_OPTIONS: Msg = Msg {
    name: "SELinuxOptions",
    fields: &[
        one(1, "user", Ty::Str),
        one(2, "role", Ty::Str),
        one(3, "type", Ty::Str),
        one(4, "level", Ty::Str),
    ],
};

static CORE_SCALE_IO_VOLUME_SOURCE: Msg = Msg {
    name: "ScaleIOVolumeSource",
    fields: &[
        one(1, "gateway", Ty::Str).keep(),
        one(2, "system", Ty::Str).keep(),
        one(3, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        one(4, "sslEnabled", Ty::Bool),
        one(5, "protectionDomain", Ty::Str),
        one(6, "storagePool", Ty::Str),
        one(7, "storageMode", Ty::Str),
        one(8, "volumeName", Ty::Str),
        one(9, "fsType", Ty::Str),
        one(10, "readOnly", Ty::Bool),
    ],
};

static CORE_SCOPE_SELECTOR: Msg = Msg {
    name: "ScopeSelector",
    fields: &[rep(
        1,
        "matchExpressions",
        Ty::Msg(&CORE_SCOPED_RESOURCE_SELECTOR_REQUIREMENT),
    )],
};

static CORE_SCOPED_RESOURCE_SELECTOR_REQUIREMENT: Msg = Msg {
    name: "ScopedResourceSelectorRequirement",
    fields: &[
        one(1, "scopeName", Ty::Str).keep(),
        one(2, "operator", Ty::Str).keep(),
        rep(3, "values", Ty::Str),
    ],
};

static CORE_SECCOMP_PROFILE: Msg = Msg {
    name: "SeccompProfile",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "localhostProfile", Ty::Str).keep(),
    ],
};

static CORE_SECRET: Msg = Msg {
    name: "Secret",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(5, "immutable", Ty::Bool).keep(),
        map(2, "data", Ty::Bytes),
        map(4, "stringData", Ty::Str),
        one(3, "type", Ty::Str),
    ],
};

static CORE_SECRET_ENV_SOURCE: Msg = Msg {
    name: "SecretEnvSource",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        one(2, "optional", Ty::Bool).keep(),
    ],
};

static CORE_SECRET_KEY_SELECTOR: Msg = Msg {
    name: "SecretKeySelector",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        one(2, "key", Ty::Str).keep(),
        one(3, "optional", Ty::Bool).keep(),
    ],
};

static CORE_SECRET_PROJECTION: Msg = Msg {
    name: "SecretProjection",
    fields: &[
        one(1, "", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)).inline(),
        rep(2, "items", Ty::Msg(&CORE_KEY_TO_PATH)),
        one(4, "optional", Ty::Bool).keep(),
    ],
};

static CORE_SECRET_VOLUME_SOURCE: Msg = Msg {
    name: "SecretVolumeSource",
    fields: &[
        one(1, "secretName", Ty::Str),
        rep(2, "items", Ty::Msg(&CORE_KEY_TO_PATH)),
        one(3, "defaultMode", Ty::I32).keep(),
        one(4, "optional", Ty::Bool).keep(),
    ],
};

static CORE_SECURITY_CONTEXT: Msg = Msg {
    name: "SecurityContext",
    fields: &[
        one(1, "capabilities", Ty::Msg(&CORE_CAPABILITIES)),
        one(2, "privileged", Ty::Bool).keep(),
        one(3, "seLinuxOptions", Ty::Msg(&CORE_SE_LINUX_OPTIONS)),
        one(
            10,
            "windowsOptions",
            Ty::Msg(&CORE_WINDOWS_SECURITY_CONTEXT_OPTIONS),
        ),
        one(4, "runAsUser", Ty::I64).keep(),
        one(8, "runAsGroup", Ty::I64).keep(),
        one(5, "runAsNonRoot", Ty::Bool).keep(),
        one(6, "readOnlyRootFilesystem", Ty::Bool).keep(),
        one(7, "allowPrivilegeEscalation", Ty::Bool).keep(),
        one(9, "procMount", Ty::Str).keep(),
        one(11, "seccompProfile", Ty::Msg(&CORE_SECCOMP_PROFILE)),
        one(12, "appArmorProfile", Ty::Msg(&CORE_APP_ARMOR_PROFILE)),
    ],
};

static CORE_SERVICE: Msg = Msg {
    name: "Service",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&CORE_SERVICE_SPEC)),
        one(3, "status", Ty::Msg(&CORE_SERVICE_STATUS)),
    ],
};

static CORE_SERVICE_ACCOUNT: Msg = Msg {
    name: "ServiceAccount",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        rep(2, "secrets", Ty::Msg(&CORE_OBJECT_REFERENCE)),
        rep(3, "imagePullSecrets", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
        one(4, "automountServiceAccountToken", Ty::Bool).keep(),
    ],
};

static CORE_SERVICE_ACCOUNT_TOKEN_PROJECTION: Msg = Msg {
    name: "ServiceAccountTokenProjection",
    fields: &[
        one(1, "audience", Ty::Str),
        one(2, "expirationSeconds", Ty::I64).keep(),
        one(3, "path", Ty::Str).keep(),
    ],
};

static CORE_SERVICE_PORT: Msg = Msg {
    name: "ServicePort",
    fields: &[
        one(1, "name", Ty::Str),
        one(2, "protocol", Ty::Str),
        one(6, "appProtocol", Ty::Str).keep(),
        one(3, "port", Ty::I32).keep(),
        one(4, "targetPort", Ty::IntOrStr),
        one(5, "nodePort", Ty::I32),
    ],
};

static CORE_SERVICE_SPEC: Msg = Msg {
    name: "ServiceSpec",
    fields: &[
        rep(1, "ports", Ty::Msg(&CORE_SERVICE_PORT)),
        map(2, "selector", Ty::Str),
        one(3, "clusterIP", Ty::Str),
        rep(18, "clusterIPs", Ty::Str),
        one(4, "type", Ty::Str),
        rep(5, "externalIPs", Ty::Str),
        one(7, "sessionAffinity", Ty::Str),
        one(8, "loadBalancerIP", Ty::Str),
        rep(9, "loadBalancerSourceRanges", Ty::Str),
        one(10, "externalName", Ty::Str),
        one(11, "externalTrafficPolicy", Ty::Str),
        one(12, "healthCheckNodePort", Ty::I32),
        one(13, "publishNotReadyAddresses", Ty::Bool),
        one(
            14,
            "sessionAffinityConfig",
            Ty::Msg(&CORE_SESSION_AFFINITY_CONFIG),
        ),
        rep(19, "ipFamilies", Ty::Str),
        one(17, "ipFamilyPolicy", Ty::Str).keep(),
        one(20, "allocateLoadBalancerNodePorts", Ty::Bool).keep(),
        one(21, "loadBalancerClass", Ty::Str).keep(),
        one(22, "internalTrafficPolicy", Ty::Str).keep(),
        one(23, "trafficDistribution", Ty::Str).keep(),
    ],
};

static CORE_SERVICE_STATUS: Msg = Msg {
    name: "ServiceStatus",
    fields: &[
        one(1, "loadBalancer", Ty::Msg(&CORE_LOAD_BALANCER_STATUS)),
        rep(2, "conditions", Ty::Msg(&META_CONDITION)),
    ],
};

static CORE_SESSION_AFFINITY_CONFIG: Msg = Msg {
    name: "SessionAffinityConfig",
    fields: &[one(1, "clientIP", Ty::Msg(&CORE_CLIENT_IP_CONFIG))],
};

static CORE_SLEEP_ACTION: Msg = Msg {
    name: "SleepAction",
    fields: &[one(1, "seconds", Ty::I64).keep()],
};

static CORE_STORAGE_OS_VOLUME_SOURCE: Msg = Msg {
    name: "StorageOSVolumeSource",
    fields: &[
        one(1, "volumeName", Ty::Str),
        one(2, "volumeNamespace", Ty::Str),
        one(3, "fsType", Ty::Str),
        one(4, "readOnly", Ty::Bool),
        one(5, "secretRef", Ty::Msg(&CORE_LOCAL_OBJECT_REFERENCE)),
    ],
};

static CORE_SYSCTL: Msg = Msg {
    name: "Sysctl",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "value", Ty::Str).keep(),
    ],
};

static CORE_TCP_SOCKET_ACTION: Msg = Msg {
    name: "TCPSocketAction",
    fields: &[one(1, "port", Ty::IntOrStr).keep(), one(2, "host", Ty::Str)],
};

static CORE_TOLERATION: Msg = Msg {
    name: "Toleration",
    fields: &[
        one(1, "key", Ty::Str),
        one(2, "operator", Ty::Str),
        one(3, "value", Ty::Str),
        one(4, "effect", Ty::Str),
        one(5, "tolerationSeconds", Ty::I64).keep(),
    ],
};

static CORE_TOPOLOGY_SPREAD_CONSTRAINT: Msg = Msg {
    name: "TopologySpreadConstraint",
    fields: &[
        one(1, "maxSkew", Ty::I32).keep(),
        one(2, "topologyKey", Ty::Str).keep(),
        one(3, "whenUnsatisfiable", Ty::Str).keep(),
        one(4, "labelSelector", Ty::Msg(&META_LABEL_SELECTOR)),
        one(5, "minDomains", Ty::I32).keep(),
        one(6, "nodeAffinityPolicy", Ty::Str).keep(),
        one(7, "nodeTaintsPolicy", Ty::Str).keep(),
        rep(8, "matchLabelKeys", Ty::Str),
    ],
};

static CORE_TYPED_LOCAL_OBJECT_REFERENCE: Msg = Msg {
    name: "TypedLocalObjectReference",
    fields: &[
        one(1, "apiGroup", Ty::Str).keep(),
        one(2, "kind", Ty::Str).keep(),
        one(3, "name", Ty::Str).keep(),
    ],
};

static CORE_TYPED_OBJECT_REFERENCE: Msg = Msg {
    name: "TypedObjectReference",
    fields: &[
        one(1, "apiGroup", Ty::Str).keep(),
        one(2, "kind", Ty::Str).keep(),
        one(3, "name", Ty::Str).keep(),
        one(4, "namespace", Ty::Str).keep(),
    ],
};

static CORE_VOLUME: Msg = Msg {
    name: "Volume",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "", Ty::Msg(&CORE_VOLUME_SOURCE)).inline(),
    ],
};

static CORE_VOLUME_DEVICE: Msg = Msg {
    name: "VolumeDevice",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "devicePath", Ty::Str).keep(),
    ],
};

static CORE_VOLUME_MOUNT: Msg = Msg {
    name: "VolumeMount",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "readOnly", Ty::Bool),
        one(7, "recursiveReadOnly", Ty::Str).keep(),
        one(3, "mountPath", Ty::Str).keep(),
        one(4, "subPath", Ty::Str),
        one(5, "mountPropagation", Ty::Str).keep(),
        one(6, "subPathExpr", Ty::Str),
    ],
};

static CORE_VOLUME_MOUNT_STATUS: Msg = Msg {
    name: "VolumeMountStatus",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "mountPath", Ty::Str).keep(),
        one(3, "readOnly", Ty::Bool),
        one(4, "recursiveReadOnly", Ty::Str).keep(),
    ],
};

static CORE_VOLUME_PROJECTION: Msg = Msg {
    name: "VolumeProjection",
    fields: &[
        one(1, "secret", Ty::Msg(&CORE_SECRET_PROJECTION)),
        one(2, "downwardAPI", Ty::Msg(&CORE_DOWNWARD_API_PROJECTION)),
        one(3, "configMap", Ty::Msg(&CORE_CONFIG_MAP_PROJECTION)),
        one(
            4,
            "serviceAccountToken",
            Ty::Msg(&CORE_SERVICE_ACCOUNT_TOKEN_PROJECTION),
        ),
        one(
            5,
            "clusterTrustBundle",
            Ty::Msg(&CORE_CLUSTER_TRUST_BUNDLE_PROJECTION),
        ),
        one(
            6,
            "podCertificate",
            Ty::Msg(&CORE_POD_CERTIFICATE_PROJECTION),
        ),
    ],
};

static CORE_VOLUME_RESOURCE_REQUIREMENTS: Msg = Msg {
    name: "VolumeResourceRequirements",
    fields: &[
        map(1, "limits", Ty::Quantity),
        map(2, "requests", Ty::Quantity),
    ],
};

static CORE_VOLUME_SOURCE: Msg = Msg {
    name: "VolumeSource",
    fields: &[
        one(1, "hostPath", Ty::Msg(&CORE_HOST_PATH_VOLUME_SOURCE)),
        one(2, "emptyDir", Ty::Msg(&CORE_EMPTY_DIR_VOLUME_SOURCE)),
        one(
            3,
            "gcePersistentDisk",
            Ty::Msg(&CORE_GCE_PERSISTENT_DISK_VOLUME_SOURCE),
        ),
        one(
            4,
            "awsElasticBlockStore",
            Ty::Msg(&CORE_AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE),
        ),
        one(5, "gitRepo", Ty::Msg(&CORE_GIT_REPO_VOLUME_SOURCE)),
        one(6, "secret", Ty::Msg(&CORE_SECRET_VOLUME_SOURCE)),
        one(7, "nfs", Ty::Msg(&CORE_NFS_VOLUME_SOURCE)),
        one(8, "iscsi", Ty::Msg(&CORE_ISCSI_VOLUME_SOURCE)),
        one(9, "glusterfs", Ty::Msg(&CORE_GLUSTERFS_VOLUME_SOURCE)),
        one(
            10,
            "persistentVolumeClaim",
            Ty::Msg(&CORE_PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE),
        ),
        one(11, "rbd", Ty::Msg(&CORE_RBD_VOLUME_SOURCE)),
        one(12, "flexVolume", Ty::Msg(&CORE_FLEX_VOLUME_SOURCE)),
        one(13, "cinder", Ty::Msg(&CORE_CINDER_VOLUME_SOURCE)),
        one(14, "cephfs", Ty::Msg(&CORE_CEPH_FS_VOLUME_SOURCE)),
        one(15, "flocker", Ty::Msg(&CORE_FLOCKER_VOLUME_SOURCE)),
        one(16, "downwardAPI", Ty::Msg(&CORE_DOWNWARD_API_VOLUME_SOURCE)),
        one(17, "fc", Ty::Msg(&CORE_FC_VOLUME_SOURCE)),
        one(18, "azureFile", Ty::Msg(&CORE_AZURE_FILE_VOLUME_SOURCE)),
        one(19, "configMap", Ty::Msg(&CORE_CONFIG_MAP_VOLUME_SOURCE)),
        one(
            20,
            "vsphereVolume",
            Ty::Msg(&CORE_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE),
        ),
        one(21, "quobyte", Ty::Msg(&CORE_QUOBYTE_VOLUME_SOURCE)),
        one(22, "azureDisk", Ty::Msg(&CORE_AZURE_DISK_VOLUME_SOURCE)),
        one(
            23,
            "photonPersistentDisk",
            Ty::Msg(&CORE_PHOTON_PERSISTENT_DISK_VOLUME_SOURCE),
        ),
        one(26, "projected", Ty::Msg(&CORE_PROJECTED_VOLUME_SOURCE)),
        one(24, "portworxVolume", Ty::Msg(&CORE_PORTWORX_VOLUME_SOURCE)),
        one(25, "scaleIO", Ty::Msg(&CORE_SCALE_IO_VOLUME_SOURCE)),
        one(27, "storageos", Ty::Msg(&CORE_STORAGE_OS_VOLUME_SOURCE)),
        one(28, "csi", Ty::Msg(&CORE_CSI_VOLUME_SOURCE)),
        one(29, "ephemeral", Ty::Msg(&CORE_EPHEMERAL_VOLUME_SOURCE)),
        one(30, "image", Ty::Msg(&CORE_IMAGE_VOLUME_SOURCE)),
    ],
};

static CORE_VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Msg = Msg {
    name: "VsphereVirtualDiskVolumeSource",
    fields: &[
        one(1, "volumePath", Ty::Str).keep(),
        one(2, "fsType", Ty::Str),
        one(3, "storagePolicyName", Ty::Str),
        one(4, "storagePolicyID", Ty::Str),
    ],
};

static CORE_WEIGHTED_POD_AFFINITY_TERM: Msg = Msg {
    name: "WeightedPodAffinityTerm",
    fields: &[
        one(1, "weight", Ty::I32).keep(),
        one(2, "podAffinityTerm", Ty::Msg(&CORE_POD_AFFINITY_TERM)),
    ],
};

static CORE_WINDOWS_SECURITY_CONTEXT_OPTIONS: Msg = Msg {
    name: "WindowsSecurityContextOptions",
    fields: &[
        one(1, "gmsaCredentialSpecName", Ty::Str).keep(),
        one(2, "gmsaCredentialSpec", Ty::Str).keep(),
        one(3, "runAsUserName", Ty::Str).keep(),
        one(4, "hostProcess", Ty::Bool).keep(),
    ],
};

static CORE_WORKLOAD_REFERENCE: Msg = Msg {
    name: "WorkloadReference",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "podGroup", Ty::Str).keep(),
        one(3, "podGroupReplicaKey", Ty::Str),
    ],
};

static APPS_DEPLOYMENT: Msg = Msg {
    name: "Deployment",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&APPS_DEPLOYMENT_SPEC)),
        one(3, "status", Ty::Msg(&APPS_DEPLOYMENT_STATUS)),
    ],
};

static APPS_DEPLOYMENT_CONDITION: Msg = Msg {
    name: "DeploymentCondition",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "status", Ty::Str).keep(),
        one(6, "lastUpdateTime", Ty::Time),
        one(7, "lastTransitionTime", Ty::Time),
        one(4, "reason", Ty::Str),
        one(5, "message", Ty::Str),
    ],
};

static APPS_DEPLOYMENT_SPEC: Msg = Msg {
    name: "DeploymentSpec",
    fields: &[
        one(1, "replicas", Ty::I32).keep(),
        one(2, "selector", Ty::Msg(&META_LABEL_SELECTOR)),
        one(3, "template", Ty::Msg(&CORE_POD_TEMPLATE_SPEC)),
        one(4, "strategy", Ty::Msg(&APPS_DEPLOYMENT_STRATEGY)),
        one(5, "minReadySeconds", Ty::I32),
        one(6, "revisionHistoryLimit", Ty::I32).keep(),
        one(7, "paused", Ty::Bool),
        one(9, "progressDeadlineSeconds", Ty::I32).keep(),
    ],
};

static APPS_DEPLOYMENT_STATUS: Msg = Msg {
    name: "DeploymentStatus",
    fields: &[
        one(1, "observedGeneration", Ty::I64),
        one(2, "replicas", Ty::I32),
        one(3, "updatedReplicas", Ty::I32),
        one(7, "readyReplicas", Ty::I32),
        one(4, "availableReplicas", Ty::I32),
        one(5, "unavailableReplicas", Ty::I32),
        one(9, "terminatingReplicas", Ty::I32).keep(),
        rep(6, "conditions", Ty::Msg(&APPS_DEPLOYMENT_CONDITION)),
        one(8, "collisionCount", Ty::I32).keep(),
    ],
};

static APPS_DEPLOYMENT_STRATEGY: Msg = Msg {
    name: "DeploymentStrategy",
    fields: &[
        one(1, "type", Ty::Str),
        one(2, "rollingUpdate", Ty::Msg(&APPS_ROLLING_UPDATE_DEPLOYMENT)),
    ],
};

static APPS_ROLLING_UPDATE_DEPLOYMENT: Msg = Msg {
    name: "RollingUpdateDeployment",
    fields: &[
        one(1, "maxUnavailable", Ty::IntOrStr).keep(),
        one(2, "maxSurge", Ty::IntOrStr).keep(),
    ],
};

static BATCH_CRON_JOB: Msg = Msg {
    name: "CronJob",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&BATCH_CRON_JOB_SPEC)),
        one(3, "status", Ty::Msg(&BATCH_CRON_JOB_STATUS)),
    ],
};

static BATCH_CRON_JOB_SPEC: Msg = Msg {
    name: "CronJobSpec",
    fields: &[
        one(1, "schedule", Ty::Str).keep(),
        one(8, "timeZone", Ty::Str).keep(),
        one(2, "startingDeadlineSeconds", Ty::I64).keep(),
        one(3, "concurrencyPolicy", Ty::Str),
        one(4, "suspend", Ty::Bool).keep(),
        one(5, "jobTemplate", Ty::Msg(&BATCH_JOB_TEMPLATE_SPEC)),
        one(6, "successfulJobsHistoryLimit", Ty::I32).keep(),
        one(7, "failedJobsHistoryLimit", Ty::I32).keep(),
    ],
};

static BATCH_CRON_JOB_STATUS: Msg = Msg {
    name: "CronJobStatus",
    fields: &[
        rep(1, "active", Ty::Msg(&CORE_OBJECT_REFERENCE)),
        one(4, "lastScheduleTime", Ty::Time),
        one(5, "lastSuccessfulTime", Ty::Time),
    ],
};

static BATCH_JOB: Msg = Msg {
    name: "Job",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&BATCH_JOB_SPEC)),
        one(3, "status", Ty::Msg(&BATCH_JOB_STATUS)),
    ],
};

static BATCH_JOB_CONDITION: Msg = Msg {
    name: "JobCondition",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "status", Ty::Str).keep(),
        one(3, "lastProbeTime", Ty::Time),
        one(4, "lastTransitionTime", Ty::Time),
        one(5, "reason", Ty::Str),
        one(6, "message", Ty::Str),
    ],
};

static BATCH_JOB_SPEC: Msg = Msg {
    name: "JobSpec",
    fields: &[
        one(1, "parallelism", Ty::I32).keep(),
        one(2, "completions", Ty::I32).keep(),
        one(3, "activeDeadlineSeconds", Ty::I64).keep(),
        one(11, "podFailurePolicy", Ty::Msg(&BATCH_POD_FAILURE_POLICY)),
        one(16, "successPolicy", Ty::Msg(&BATCH_SUCCESS_POLICY)),
        one(7, "backoffLimit", Ty::I32).keep(),
        one(12, "backoffLimitPerIndex", Ty::I32).keep(),
        one(13, "maxFailedIndexes", Ty::I32).keep(),
        one(4, "selector", Ty::Msg(&META_LABEL_SELECTOR)),
        one(5, "manualSelector", Ty::Bool).keep(),
        one(6, "template", Ty::Msg(&CORE_POD_TEMPLATE_SPEC)),
        one(8, "ttlSecondsAfterFinished", Ty::I32).keep(),
        one(9, "completionMode", Ty::Str).keep(),
        one(10, "suspend", Ty::Bool).keep(),
        one(14, "podReplacementPolicy", Ty::Str).keep(),
        one(15, "managedBy", Ty::Str).keep(),
    ],
};

static BATCH_JOB_STATUS: Msg = Msg {
    name: "JobStatus",
    fields: &[
        rep(1, "conditions", Ty::Msg(&BATCH_JOB_CONDITION)),
        one(2, "startTime", Ty::Time),
        one(3, "completionTime", Ty::Time),
        one(4, "active", Ty::I32),
        one(5, "succeeded", Ty::I32),
        one(6, "failed", Ty::I32),
        one(11, "terminating", Ty::I32).keep(),
        one(7, "completedIndexes", Ty::Str),
        one(10, "failedIndexes", Ty::Str).keep(),
        one(
            8,
            "uncountedTerminatedPods",
            Ty::Msg(&BATCH_UNCOUNTED_TERMINATED_PODS),
        ),
        one(9, "ready", Ty::I32).keep(),
    ],
};

static BATCH_JOB_TEMPLATE_SPEC: Msg = Msg {
    name: "JobTemplateSpec",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&BATCH_JOB_SPEC)),
    ],
};

static BATCH_POD_FAILURE_POLICY: Msg = Msg {
    name: "PodFailurePolicy",
    fields: &[rep(1, "rules", Ty::Msg(&BATCH_POD_FAILURE_POLICY_RULE))],
};

static BATCH_POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT: Msg = Msg {
    name: "PodFailurePolicyOnExitCodesRequirement",
    fields: &[
        one(1, "containerName", Ty::Str).keep(),
        one(2, "operator", Ty::Str).keep(),
        rep(3, "values", Ty::I32),
    ],
};

static BATCH_POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN: Msg = Msg {
    name: "PodFailurePolicyOnPodConditionsPattern",
    fields: &[
        one(1, "type", Ty::Str).keep(),
        one(2, "status", Ty::Str).keep(),
    ],
};

static BATCH_POD_FAILURE_POLICY_RULE: Msg = Msg {
    name: "PodFailurePolicyRule",
    fields: &[
        one(1, "action", Ty::Str).keep(),
        one(
            2,
            "onExitCodes",
            Ty::Msg(&BATCH_POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT),
        ),
        rep(
            3,
            "onPodConditions",
            Ty::Msg(&BATCH_POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN),
        ),
    ],
};

static BATCH_SUCCESS_POLICY: Msg = Msg {
    name: "SuccessPolicy",
    fields: &[rep(1, "rules", Ty::Msg(&BATCH_SUCCESS_POLICY_RULE))],
};

static BATCH_SUCCESS_POLICY_RULE: Msg = Msg {
    name: "SuccessPolicyRule",
    fields: &[
        one(1, "succeededIndexes", Ty::Str).keep(),
        one(2, "succeededCount", Ty::I32).keep(),
    ],
};

static BATCH_UNCOUNTED_TERMINATED_PODS: Msg = Msg {
    name: "UncountedTerminatedPods",
    fields: &[rep(1, "succeeded", Ty::Str), rep(2, "failed", Ty::Str)],
};

static RBAC_AGGREGATION_RULE: Msg = Msg {
    name: "AggregationRule",
    fields: &[rep(
        1,
        "clusterRoleSelectors",
        Ty::Msg(&META_LABEL_SELECTOR),
    )],
};

static RBAC_CLUSTER_ROLE: Msg = Msg {
    name: "ClusterRole",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        rep(2, "rules", Ty::Msg(&RBAC_POLICY_RULE)),
        one(3, "aggregationRule", Ty::Msg(&RBAC_AGGREGATION_RULE)),
    ],
};

static RBAC_CLUSTER_ROLE_BINDING: Msg = Msg {
    name: "ClusterRoleBinding",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        rep(2, "subjects", Ty::Msg(&RBAC_SUBJECT)),
        one(3, "roleRef", Ty::Msg(&RBAC_ROLE_REF)),
    ],
};

static RBAC_POLICY_RULE: Msg = Msg {
    name: "PolicyRule",
    fields: &[
        rep(1, "verbs", Ty::Str),
        rep(2, "apiGroups", Ty::Str),
        rep(3, "resources", Ty::Str),
        rep(4, "resourceNames", Ty::Str),
        rep(5, "nonResourceURLs", Ty::Str),
    ],
};

static RBAC_ROLE: Msg = Msg {
    name: "Role",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        rep(2, "rules", Ty::Msg(&RBAC_POLICY_RULE)),
    ],
};

static RBAC_ROLE_BINDING: Msg = Msg {
    name: "RoleBinding",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        rep(2, "subjects", Ty::Msg(&RBAC_SUBJECT)),
        one(3, "roleRef", Ty::Msg(&RBAC_ROLE_REF)),
    ],
};

static RBAC_ROLE_REF: Msg = Msg {
    name: "RoleRef",
    fields: &[
        one(1, "apiGroup", Ty::Str).keep(),
        one(2, "kind", Ty::Str).keep(),
        one(3, "name", Ty::Str).keep(),
    ],
};

static RBAC_SUBJECT: Msg = Msg {
    name: "Subject",
    fields: &[
        one(1, "kind", Ty::Str).keep(),
        one(2, "apiGroup", Ty::Str),
        one(3, "name", Ty::Str).keep(),
        one(4, "namespace", Ty::Str),
    ],
};

static SCHED_PRIORITY_CLASS: Msg = Msg {
    name: "PriorityClass",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "value", Ty::I32).keep(),
        one(3, "globalDefault", Ty::Bool),
        one(4, "description", Ty::Str),
        one(5, "preemptionPolicy", Ty::Str).keep(),
    ],
};

static POLICY_POD_DISRUPTION_BUDGET: Msg = Msg {
    name: "PodDisruptionBudget",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&POLICY_POD_DISRUPTION_BUDGET_SPEC)),
        one(3, "status", Ty::Msg(&POLICY_POD_DISRUPTION_BUDGET_STATUS)),
    ],
};

static POLICY_POD_DISRUPTION_BUDGET_SPEC: Msg = Msg {
    name: "PodDisruptionBudgetSpec",
    fields: &[
        one(1, "minAvailable", Ty::IntOrStr).keep(),
        one(2, "selector", Ty::Msg(&META_LABEL_SELECTOR)),
        one(3, "maxUnavailable", Ty::IntOrStr).keep(),
        one(4, "unhealthyPodEvictionPolicy", Ty::Str).keep(),
    ],
};

static POLICY_POD_DISRUPTION_BUDGET_STATUS: Msg = Msg {
    name: "PodDisruptionBudgetStatus",
    fields: &[
        one(1, "observedGeneration", Ty::I64),
        map(2, "disruptedPods", Ty::Time),
        one(3, "disruptionsAllowed", Ty::I32).keep(),
        one(4, "currentHealthy", Ty::I32).keep(),
        one(5, "desiredHealthy", Ty::I32).keep(),
        one(6, "expectedPods", Ty::I32).keep(),
        rep(7, "conditions", Ty::Msg(&META_CONDITION)),
    ],
};

static NET_HTTP_INGRESS_PATH: Msg = Msg {
    name: "HTTPIngressPath",
    fields: &[
        one(1, "path", Ty::Str),
        one(3, "pathType", Ty::Str).keep(),
        one(2, "backend", Ty::Msg(&NET_INGRESS_BACKEND)),
    ],
};

static NET_HTTP_INGRESS_RULE_VALUE: Msg = Msg {
    name: "HTTPIngressRuleValue",
    fields: &[rep(1, "paths", Ty::Msg(&NET_HTTP_INGRESS_PATH))],
};

static NET_INGRESS: Msg = Msg {
    name: "Ingress",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&NET_INGRESS_SPEC)),
        one(3, "status", Ty::Msg(&NET_INGRESS_STATUS)),
    ],
};

static NET_INGRESS_BACKEND: Msg = Msg {
    name: "IngressBackend",
    fields: &[
        one(4, "service", Ty::Msg(&NET_INGRESS_SERVICE_BACKEND)),
        one(3, "resource", Ty::Msg(&CORE_TYPED_LOCAL_OBJECT_REFERENCE)),
    ],
};

static NET_INGRESS_LOAD_BALANCER_INGRESS: Msg = Msg {
    name: "IngressLoadBalancerIngress",
    fields: &[
        one(1, "ip", Ty::Str),
        one(2, "hostname", Ty::Str),
        rep(4, "ports", Ty::Msg(&NET_INGRESS_PORT_STATUS)),
    ],
};

static NET_INGRESS_LOAD_BALANCER_STATUS: Msg = Msg {
    name: "IngressLoadBalancerStatus",
    fields: &[rep(
        1,
        "ingress",
        Ty::Msg(&NET_INGRESS_LOAD_BALANCER_INGRESS),
    )],
};

static NET_INGRESS_PORT_STATUS: Msg = Msg {
    name: "IngressPortStatus",
    fields: &[
        one(1, "port", Ty::I32).keep(),
        one(2, "protocol", Ty::Str).keep(),
        one(3, "error", Ty::Str).keep(),
    ],
};

static NET_INGRESS_RULE: Msg = Msg {
    name: "IngressRule",
    fields: &[
        one(1, "host", Ty::Str),
        one(2, "", Ty::Msg(&NET_INGRESS_RULE_VALUE)).inline(),
    ],
};

static NET_INGRESS_RULE_VALUE: Msg = Msg {
    name: "IngressRuleValue",
    fields: &[one(1, "http", Ty::Msg(&NET_HTTP_INGRESS_RULE_VALUE))],
};

static NET_INGRESS_SERVICE_BACKEND: Msg = Msg {
    name: "IngressServiceBackend",
    fields: &[
        one(1, "name", Ty::Str).keep(),
        one(2, "port", Ty::Msg(&NET_SERVICE_BACKEND_PORT)),
    ],
};

static NET_INGRESS_SPEC: Msg = Msg {
    name: "IngressSpec",
    fields: &[
        one(4, "ingressClassName", Ty::Str).keep(),
        one(1, "defaultBackend", Ty::Msg(&NET_INGRESS_BACKEND)),
        rep(2, "tls", Ty::Msg(&NET_INGRESS_TLS)),
        rep(3, "rules", Ty::Msg(&NET_INGRESS_RULE)),
    ],
};

static NET_INGRESS_STATUS: Msg = Msg {
    name: "IngressStatus",
    fields: &[one(
        1,
        "loadBalancer",
        Ty::Msg(&NET_INGRESS_LOAD_BALANCER_STATUS),
    )],
};

static NET_INGRESS_TLS: Msg = Msg {
    name: "IngressTLS",
    fields: &[rep(1, "hosts", Ty::Str), one(2, "secretName", Ty::Str)],
};

static NET_SERVICE_BACKEND_PORT: Msg = Msg {
    name: "ServiceBackendPort",
    fields: &[one(1, "name", Ty::Str), one(2, "number", Ty::I32)],
};

static AUTHN_BOUND_OBJECT_REFERENCE: Msg = Msg {
    name: "BoundObjectReference",
    fields: &[
        one(1, "kind", Ty::Str),
        one(2, "apiVersion", Ty::Str),
        one(3, "name", Ty::Str),
        one(4, "uid", Ty::Str),
    ],
};

static AUTHN_TOKEN_REQUEST: Msg = Msg {
    name: "TokenRequest",
    fields: &[
        one(1, "metadata", Ty::Msg(&META_OBJECT_META)),
        one(2, "spec", Ty::Msg(&AUTHN_TOKEN_REQUEST_SPEC)),
        one(3, "status", Ty::Msg(&AUTHN_TOKEN_REQUEST_STATUS)),
    ],
};

static AUTHN_TOKEN_REQUEST_SPEC: Msg = Msg {
    name: "TokenRequestSpec",
    fields: &[
        rep(1, "audiences", Ty::Str),
        one(4, "expirationSeconds", Ty::I64).keep(),
        one(3, "boundObjectRef", Ty::Msg(&AUTHN_BOUND_OBJECT_REFERENCE)),
    ],
};

static AUTHN_TOKEN_REQUEST_STATUS: Msg = Msg {
    name: "TokenRequestStatus",
    fields: &[
        one(1, "token", Ty::Str).keep(),
        one(2, "expirationTimestamp", Ty::Time),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal protobuf writer, used only to build test inputs.
    #[derive(Default, Clone)]
    struct Pb(Vec<u8>);

    impl Pb {
        fn new() -> Self {
            Pb::default()
        }

        fn raw_varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
        }

        fn key(&mut self, num: u32, wire: u8) {
            self.raw_varint((u64::from(num) << 3) | u64::from(wire));
        }

        fn uint(mut self, num: u32, v: u64) -> Self {
            self.key(num, 0);
            self.raw_varint(v);
            self
        }

        fn int(self, num: u32, v: i64) -> Self {
            self.uint(num, v as u64)
        }

        fn boolean(self, num: u32, v: bool) -> Self {
            self.uint(num, u64::from(v))
        }

        fn bytes(mut self, num: u32, b: &[u8]) -> Self {
            self.key(num, 2);
            self.raw_varint(b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }

        fn str(self, num: u32, s: &str) -> Self {
            self.bytes(num, s.as_bytes())
        }

        fn msg(self, num: u32, m: Pb) -> Self {
            self.bytes(num, &m.0)
        }

        fn entry(self, num: u32, key: &str, value: &str) -> Self {
            self.msg(num, Pb::new().str(1, key).str(2, value))
        }

        fn fixed64(mut self, num: u32, v: u64) -> Self {
            self.key(num, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }

        fn fixed32(mut self, num: u32, v: u32) -> Self {
            self.key(num, 5);
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
    }

    /// Wraps a typed message in the magic prefix and `runtime.Unknown`, as client-go does.
    fn envelope(api_version: &str, kind: &str, raw: Pb) -> Vec<u8> {
        let unknown = Pb::new()
            .msg(1, Pb::new().str(1, api_version).str(2, kind))
            .msg(2, raw)
            .str(3, "")
            .str(4, "");
        let mut body = MAGIC.to_vec();
        body.extend_from_slice(&unknown.0);
        body
    }

    fn time(seconds: i64, nanos: i64) -> Pb {
        Pb::new().int(1, seconds).int(2, nanos)
    }

    fn meta(name: &str) -> Pb {
        // What gogo-protobuf writes for an ObjectMeta with only a name.
        Pb::new()
            .str(1, name)
            .str(2, "")
            .str(3, "")
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, Pb::new())
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|pair| {
                let text = std::str::from_utf8(pair).expect("ascii");
                u8::from_str_radix(text, 16).expect("hex digit")
            })
            .collect()
    }

    /// Compares values and key order, which `Value`'s own equality ignores.
    fn assert_json(actual: &Value, expected: &str) {
        let expected: Value = serde_json::from_str(expected).expect("expected JSON parses");
        assert_eq!(
            serde_json::to_string_pretty(actual).expect("serialize"),
            serde_json::to_string_pretty(&expected).expect("serialize")
        );
    }

    /// Bodies recorded from kubectl v1.32.4 against a loopback fake server, with the JSON the
    /// same commands print under `--dry-run=client -o json` (less its `null` members).
    const KUBECTL_BODIES: &[(&str, &str, &str)] = &[
        (
            "create namespace foo",
            "6b3873000a0f0a02763112094e616d657370616365121b0a130a03666f6f12001a0022002a003200\
             3800420012001a020a001a002200",
            r#"{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"foo"},"spec":{},"status":{}}"#,
        ),
        (
            "create configmap c --from-literal=a=b --from-file=f.txt --from-file=bin.dat",
            "6b3873000a0f0a0276311209436f6e6669674d6170123c0a110a016312001a0022002a0032003800\
             420012060a0161120162120f0a05662e747874120668656c6c6f0a1a0e0a0762696e2e6461741203\
             0001ff1a002200",
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"c"},"data":{"a":"b","f.txt":"hello\n"},"binaryData":{"bin.dat":"AAH/"}}"#,
        ),
        (
            "create secret generic s --from-literal=k=v",
            "6b3873000a0c0a0276311206536563726574121d0a110a017312001a0022002a0032003800420012\
             060a016b1201761a001a002200",
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},"data":{"k":"dg=="}}"#,
        ),
        (
            "create secret docker-registry d",
            "6b3873000a0c0a0276311206536563726574128f010a110a016412001a0022002a00320038004200\
             125a0a112e646f636b6572636f6e6669676a736f6e12457b226175746873223a7b22722e6578616d\
             706c65223a7b22757365726e616d65223a2275222c2270617373776f7264223a2270222c22617574\
             68223a2264547077227d7d7d1a1e6b756265726e657465732e696f2f646f636b6572636f6e666967\
             6a736f6e1a002200",
            r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"d"},"data":{".dockerconfigjson":"eyJhdXRocyI6eyJyLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19"},"type":"kubernetes.io/dockerconfigjson"}"#,
        ),
        (
            "create serviceaccount sa",
            "6b3873000a140a027631120e536572766963654163636f756e7412140a120a02736112001a002200\
             2a003200380042001a002200",
            r#"{"kind":"ServiceAccount","apiVersion":"v1","metadata":{"name":"sa"}}"#,
        ),
        (
            "create service clusterip svc --tcp=80:8080",
            "6b3873000a0d0a02763112075365727669636512690a1f0a0373766312001a0022002a0032003800\
             42005a0a0a03617070120373766312420a1b0a0738302d3830383012035443501850220708001090\
             3f1a002800120a0a0361707012037376631a002209436c757374657249503a00420052005a006000\
             68001a020a001a002200",
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"svc","labels":{"app":"svc"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"svc"},"type":"ClusterIP"},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "create service nodeport np --tcp=80:http --node-port=30080",
            "6b3873000a0d0a027631120753657276696365126a0a1d0a026e7012001a0022002a003200380042\
             005a090a0361707012026e7012450a200a0738302d6874747012035443501850220a080110001a04\
             687474702880eb0112090a0361707012026e701a0022084e6f6465506f72743a00420052005a0060\
             0068001a020a001a002200",
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"np","labels":{"app":"np"}},"spec":{"ports":[{"name":"80-http","protocol":"TCP","port":80,"targetPort":"http","nodePort":30080}],"selector":{"app":"np"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "create service loadbalancer lb --tcp=443:8443",
            "6b3873000a0d0a027631120753657276696365126b0a1d0a026c6212001a0022002a003200380042\
             005a090a0361707012026c6212460a1d0a083434332d38343433120354435018bb032207080010fb\
             411a00280012090a0361707012026c621a00220c4c6f616442616c616e6365723a00420052005a00\
             600068001a020a001a002200",
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"lb","labels":{"app":"lb"}},"spec":{"ports":[{"name":"443-8443","protocol":"TCP","port":443,"targetPort":8443}],"selector":{"app":"lb"},"type":"LoadBalancer"},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "create service externalname en --external-name=db.example",
            "6b3873000a0d0a02763112075365727669636512560a1d0a02656e12001a0022002a003200380042\
             005a090a036170701202656e123112090a036170701202656e1a00220c45787465726e616c4e616d\
             653a004200520a64622e6578616d706c655a00600068001a020a001a002200",
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"en","labels":{"app":"en"}},"spec":{"selector":{"app":"en"},"type":"ExternalName","externalName":"db.example"},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "create service clusterip hl --clusterip=None",
            "6b3873000a0d0a027631120753657276696365124d0a1d0a02686c12001a0022002a003200380042\
             005a090a036170701202686c122812090a036170701202686c1a044e6f6e652209436c7573746572\
             49503a00420052005a00600068001a020a001a002200",
            r#"{"kind":"Service","apiVersion":"v1","metadata":{"name":"hl","labels":{"app":"hl"}},"spec":{"selector":{"app":"hl"},"clusterIP":"None","type":"ClusterIP"},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "create token sa --duration=1h --audience=a1",
            "6b3873000a280a1861757468656e7469636174696f6e2e6b38732e696f2f7631120c546f6b656e52\
             65717565737412210a100a0012001a0022002a0032003800420012070a02613120901c1a040a0012\
             001a002200",
            r#"{"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1","metadata":{},"spec":{"audiences":["a1"],"expirationSeconds":3600},"status":{"token":""}}"#,
        ),
        (
            "create deployment dep --image=nginx --replicas=2 --port=80",
            "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b8010a1f0a0364657012001a\
             0022002a003200380042005a0a0a0361707012036465701286010802120c0a0a0a03617070120364\
             65701a6c0a1c0a0012001a0022002a003200380042005a0a0a036170701203646570124c122e0a05\
             6e67696e7812056e67696e782a00320a0a001000185022002a0042006a0072008001008801009001\
             00a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a0028003800\
             1a0c0800100018002000280038001a002200",
            r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"dep","labels":{"app":"dep"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"dep"}},"template":{"metadata":{"labels":{"app":"dep"}},"spec":{"containers":[{"name":"nginx","image":"nginx","ports":[{"containerPort":80}],"resources":{}}]}},"strategy":{}},"status":{}}"#,
        ),
        (
            "create job j --image=busybox -- echo hi",
            "6b3873000a0f0a0862617463682f763112034a6f621282010a110a016a12001a0022002a00320038\
             004200126332610a100a0012001a0022002a00320038004200124d122a0a016a120762757379626f\
             781a046563686f1a0268692a0042006a007200800100880100900100a201001a054e657665723200\
             42004a0052005800600068008201008a01009a0100c201001a082000280030003a001a002200",
            r#"{"kind":"Job","apiVersion":"batch/v1","metadata":{"name":"j"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"j","image":"busybox","command":["echo","hi"],"resources":{}}],"restartPolicy":"Never"}}},"status":{}}"#,
        ),
        (
            "create cronjob cj --image=busybox --schedule='*/1 * * * *'",
            "6b3873000a130a0862617463682f7631120743726f6e4a6f62129e010a120a02636a12001a002200\
             2a003200380042001285010a0b2a2f31202a202a202a202a1a002a740a120a02636a12001a002200\
             2a00320038004200125e325c0a100a0012001a0022002a00320038004200124812210a02636a1207\
             62757379626f782a0042006a007200800100880100900100a201001a094f6e4661696c7572653200\
             42004a0052005800600068008201008a01009a0100c201001a001a002200",
            r#"{"kind":"CronJob","apiVersion":"batch/v1","metadata":{"name":"cj"},"spec":{"schedule":"*/1 * * * *","jobTemplate":{"metadata":{"name":"cj"},"spec":{"template":{"metadata":{},"spec":{"containers":[{"name":"cj","image":"busybox","resources":{}}],"restartPolicy":"OnFailure"}}}}},"status":{}}"#,
        ),
        (
            "create rolebinding rb --role=r --user=u",
            "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f\
             6c6542696e64696e6712620a120a02726212001a0022002a0032003800420012260a045573657212\
             19726261632e617574686f72697a6174696f6e2e6b38732e696f1a017522001a240a19726261632e\
             617574686f72697a6174696f6e2e6b38732e696f1204526f6c651a01721a002200",
            r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"rb"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"u"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"}}"#,
        ),
        (
            "create clusterrolebinding crb --clusterrole=cr --user=u",
            "6b3873000a320a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311212436c\
             7573746572526f6c6542696e64696e67126b0a130a0363726212001a0022002a0032003800420012\
             260a04557365721219726261632e617574686f72697a6174696f6e2e6b38732e696f1a017522001a\
             2c0a19726261632e617574686f72697a6174696f6e2e6b38732e696f120b436c7573746572526f6c\
             651a0263721a002200",
            r#"{"kind":"ClusterRoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"crb"},"subjects":[{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"u"}],"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cr"}}"#,
        ),
        (
            "create quota q --hard=pods=10,cpu=1",
            "6b3873000a130a027631120d5265736f7572636551756f746112310a110a017112001a0022002a00\
             320038004200121a0a0a0a0363707512030a01310a0c0a04706f647312040a0231301a001a002200",
            r#"{"kind":"ResourceQuota","apiVersion":"v1","metadata":{"name":"q"},"spec":{"hard":{"cpu":"1","pods":"10"}},"status":{}}"#,
        ),
        (
            "create priorityclass pc --value=1000",
            "6b3873000a250a147363686564756c696e672e6b38732e696f2f7631120d5072696f72697479436c\
             61737312310a120a02706312001a0022002a0032003800420010e807180022002a14507265656d70\
             744c6f7765725072696f726974791a002200",
            r#"{"kind":"PriorityClass","apiVersion":"scheduling.k8s.io/v1","metadata":{"name":"pc"},"value":1000,"preemptionPolicy":"PreemptLowerPriority"}"#,
        ),
        (
            "create poddisruptionbudget pdb --selector=app=x --min-available=1",
            "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e4275646765741237\
             0a130a0370646212001a0022002a0032003800420012140a06080010011a00120a0a080a03617070\
             1201781a0a080018002000280030001a002200",
            r#"{"kind":"PodDisruptionBudget","apiVersion":"policy/v1","metadata":{"name":"pdb"},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"x"}}},"status":{"disruptionsAllowed":0,"currentHealthy":0,"desiredHealthy":0,"expectedPods":0}}"#,
        ),
        (
            "create ingress ing --rule=a.example/=svc:80",
            "6b3873000a1f0a146e6574776f726b696e672e6b38732e696f2f76311207496e677265737312470a\
             130a03696e6712001a0022002a00320038004200122c1a2a0a09612e6578616d706c65121d0a1b0a\
             190a012f120d220b0a0373766312040a0010501a0545786163741a020a001a002200",
            r#"{"kind":"Ingress","apiVersion":"networking.k8s.io/v1","metadata":{"name":"ing"},"spec":{"rules":[{"host":"a.example","http":{"paths":[{"path":"/","pathType":"Exact","backend":{"service":{"name":"svc","port":{"number":80}}}}]}}]},"status":{"loadBalancer":{}}}"#,
        ),
        (
            "create role r --verb=get,list --resource=pods --resource-name=p1",
            "6b3873000a240a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f76311204526f\
             6c65122c0a110a017212001a0022002a0032003800420012170a036765740a046c69737412001a04\
             706f6473220270311a002200",
            r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"r"},"rules":[{"verbs":["get","list"],"apiGroups":[""],"resources":["pods"],"resourceNames":["p1"]}]}"#,
        ),
        (
            "create clusterrole cr --verb=get --resource=pods --non-resource-url=/healthz",
            "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c\
             7573746572526f6c6512340a120a02637212001a0022002a00320038004200120d0a036765741200\
             1a04706f6473120f0a036765742a082f6865616c74687a1a002200",
            r#"{"kind":"ClusterRole","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"cr"},"rules":[{"verbs":["get"],"apiGroups":[""],"resources":["pods"]},{"verbs":["get"],"nonResourceURLs":["/healthz"]}]}"#,
        ),
    ];

    #[test]
    fn decodes_recorded_kubectl_bodies() {
        for (command, body, expected) in KUBECTL_BODIES {
            let body = hex(body);
            let decoded = decode_body(&body).unwrap_or_else(|e| panic!("kubectl {command}: {e}"));
            assert_json(&decoded, expected);
        }
    }

    #[test]
    fn truncated_recorded_bodies_fail_without_panicking() {
        for (command, body, _) in KUBECTL_BODIES {
            let body = hex(body);
            for len in 0..body.len() {
                let _ = decode_body(&body[..len]);
            }
            // Cut inside `raw`, just before the 4-byte contentEncoding/contentType trailer.
            let cut = &body[..body.len() - 5];
            assert!(
                matches!(decode_body(cut), Err(ProtobufError::Truncated(_))),
                "kubectl {command}"
            );
        }
    }

    #[test]
    fn namespace_with_full_object_meta() {
        let fields_v1 = br#"{"f:metadata":{"f:labels":{}}}"#;
        let metadata = Pb::new()
            .str(1, "web")
            .str(2, "")
            .str(3, "default")
            .str(5, "u-1")
            .str(6, "7")
            .int(7, 3)
            .msg(8, time(1_700_000_000, 5))
            .msg(9, time(1_700_000_100, 0))
            .int(10, 0)
            .entry(11, "b", "2")
            .entry(11, "a", "1")
            .entry(12, "note", "x")
            .msg(
                13,
                Pb::new()
                    .str(1, "ReplicaSet")
                    .str(3, "rs")
                    .str(4, "r-1")
                    .str(5, "apps/v1")
                    .boolean(6, true)
                    .boolean(7, false),
            )
            .str(14, "f1")
            .str(14, "f2")
            .msg(
                17,
                Pb::new()
                    .str(1, "kubectl")
                    .str(2, "Update")
                    .str(3, "v1")
                    .msg(4, time(1_700_000_000, 0))
                    .str(6, "FieldsV1")
                    .msg(7, Pb::new().bytes(1, fields_v1)),
            );
        let raw = Pb::new()
            .msg(1, metadata)
            .msg(2, Pb::new().str(1, "kubernetes"))
            .msg(3, Pb::new().str(1, "Active"));
        let decoded = decode_body(&envelope("v1", "Namespace", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "Namespace",
              "apiVersion": "v1",
              "metadata": {
                "name": "web",
                "namespace": "default",
                "uid": "u-1",
                "resourceVersion": "7",
                "generation": 3,
                "creationTimestamp": "2023-11-14T22:13:20Z",
                "deletionTimestamp": "2023-11-14T22:15:00Z",
                "deletionGracePeriodSeconds": 0,
                "labels": {"a": "1", "b": "2"},
                "annotations": {"note": "x"},
                "ownerReferences": [{
                  "apiVersion": "apps/v1",
                  "kind": "ReplicaSet",
                  "name": "rs",
                  "uid": "r-1",
                  "controller": true,
                  "blockOwnerDeletion": false
                }],
                "finalizers": ["f1", "f2"],
                "managedFields": [{
                  "manager": "kubectl",
                  "operation": "Update",
                  "apiVersion": "v1",
                  "time": "2023-11-14T22:13:20Z",
                  "fieldsType": "FieldsV1",
                  "fieldsV1": {"f:metadata": {"f:labels": {}}}
                }]
              },
              "spec": {"finalizers": ["kubernetes"]},
              "status": {"phase": "Active"}
            }"#,
        );
    }

    #[test]
    fn pod_with_inline_volumes_probes_and_pointer_zeros() {
        let container = Pb::new()
            .str(1, "app")
            .str(2, "nginx:1.27")
            .str(3, "nginx")
            .str(4, "-g")
            .str(4, "daemon off;")
            .msg(6, Pb::new().str(1, "http").int(3, 80).str(4, "TCP"))
            .msg(7, Pb::new().str(1, "MODE").str(2, "prod"))
            .msg(7, Pb::new().str(1, "EMPTY").str(2, ""))
            .msg(
                8,
                Pb::new()
                    .msg(
                        1,
                        Pb::new().str(1, "memory").msg(2, Pb::new().str(1, "128Mi")),
                    )
                    .msg(1, Pb::new().str(1, "cpu").msg(2, Pb::new().str(1, "500m"))),
            )
            .msg(
                9,
                Pb::new().str(1, "cfg").boolean(2, true).str(3, "/etc/app"),
            )
            .msg(
                10,
                Pb::new()
                    .msg(
                        1,
                        Pb::new().msg(
                            2,
                            Pb::new()
                                .str(1, "/healthz")
                                .msg(2, Pb::new().int(1, 1).str(3, "http")),
                        ),
                    )
                    .int(4, 10),
            )
            .str(14, "IfNotPresent")
            .msg(15, Pb::new().boolean(2, false).int(4, 0))
            .boolean(16, false);
        let packed_groups = {
            let mut p = Pb::new();
            p.raw_varint(1000);
            p.raw_varint(2000);
            p
        };
        let spec = Pb::new()
            .msg(
                1,
                Pb::new().str(1, "cfg").msg(
                    2,
                    Pb::new().msg(
                        19,
                        Pb::new().msg(1, Pb::new().str(1, "app-config")).int(3, 420),
                    ),
                ),
            )
            .msg(
                1,
                Pb::new()
                    .str(1, "scratch")
                    .msg(2, Pb::new().msg(2, Pb::new())),
            )
            .msg(2, container)
            .str(3, "Always")
            .int(4, 0)
            .entry(7, "disk", "ssd")
            .boolean(11, false)
            .msg(14, Pb::new().boolean(3, true).msg(4, packed_groups))
            .msg(22, Pb::new().str(1, "k").str(2, "Exists").int(5, 30))
            .int(25, -5);
        let status = Pb::new().str(1, "Pending").msg(7, Pb::new()).msg(
            8,
            Pb::new()
                .str(1, "app")
                .boolean(4, false)
                .int(5, 0)
                .str(6, "nginx:1.27")
                .str(7, ""),
        );
        let raw = Pb::new().msg(1, meta("web")).msg(2, spec).msg(3, status);
        let decoded = decode_body(&envelope("v1", "Pod", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "Pod",
              "apiVersion": "v1",
              "metadata": {"name": "web"},
              "spec": {
                "volumes": [
                  {"name": "cfg", "configMap": {"name": "app-config", "defaultMode": 420}},
                  {"name": "scratch", "emptyDir": {}}
                ],
                "containers": [{
                  "name": "app",
                  "image": "nginx:1.27",
                  "command": ["nginx"],
                  "args": ["-g", "daemon off;"],
                  "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                  "env": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY"}],
                  "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                  "volumeMounts": [{"name": "cfg", "readOnly": true, "mountPath": "/etc/app"}],
                  "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http"},
                    "periodSeconds": 10
                  },
                  "imagePullPolicy": "IfNotPresent",
                  "securityContext": {"privileged": false, "runAsUser": 0}
                }],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 0,
                "nodeSelector": {"disk": "ssd"},
                "securityContext": {"runAsNonRoot": true, "supplementalGroups": [1000, 2000]},
                "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 30}],
                "priority": -5
              },
              "status": {
                "phase": "Pending",
                "containerStatuses": [{
                  "name": "app",
                  "ready": false,
                  "restartCount": 0,
                  "image": "nginx:1.27",
                  "imageID": ""
                }]
              }
            }"#,
        );
    }

    #[test]
    fn service_with_full_spec() {
        let spec = Pb::new()
            .msg(
                1,
                Pb::new()
                    .str(1, "https")
                    .str(2, "TCP")
                    .int(3, 443)
                    .msg(4, Pb::new().int(1, 0).int(2, 0).str(3, ""))
                    .int(5, 0),
            )
            .entry(2, "app", "web")
            .str(3, "10.96.0.10")
            .str(4, "LoadBalancer")
            .str(7, "ClientIP")
            .str(8, "")
            .str(10, "")
            .str(11, "Local")
            .int(12, 32000)
            .boolean(13, true)
            .msg(14, Pb::new().msg(1, Pb::new().int(1, 0)))
            .str(17, "PreferDualStack")
            .str(18, "10.96.0.10")
            .str(18, "fd00::a")
            .str(19, "IPv4")
            .str(19, "IPv6")
            .boolean(20, false)
            .str(22, "Cluster");
        let status = Pb::new().msg(1, Pb::new().msg(1, Pb::new().str(1, "1.2.3.4")));
        let raw = Pb::new().msg(1, meta("web")).msg(2, spec).msg(3, status);
        let decoded = decode_body(&envelope("v1", "Service", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "Service",
              "apiVersion": "v1",
              "metadata": {"name": "web"},
              "spec": {
                "ports": [{"name": "https", "protocol": "TCP", "port": 443}],
                "selector": {"app": "web"},
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10", "fd00::a"],
                "type": "LoadBalancer",
                "sessionAffinity": "ClientIP",
                "externalTrafficPolicy": "Local",
                "healthCheckNodePort": 32000,
                "publishNotReadyAddresses": true,
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}},
                "ipFamilies": ["IPv4", "IPv6"],
                "ipFamilyPolicy": "PreferDualStack",
                "allocateLoadBalancerNodePorts": false,
                "internalTrafficPolicy": "Cluster"
              },
              "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}
            }"#,
        );
    }

    #[test]
    fn secret_bytes_are_base64_and_pointer_false_is_kept() {
        let raw = Pb::new()
            .msg(1, meta("s").str(2, "s-"))
            .msg(2, Pb::new().str(1, "bin").bytes(2, &[0, 255]))
            .msg(2, Pb::new().str(1, "a").bytes(2, b"hi"))
            .str(3, "Opaque")
            .entry(4, "plain", "text")
            .boolean(5, false);
        let decoded = decode_body(&envelope("v1", "Secret", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "Secret",
              "apiVersion": "v1",
              "metadata": {"name": "s", "generateName": "s-"},
              "immutable": false,
              "data": {"a": "aGk=", "bin": "AP8="},
              "stringData": {"plain": "text"},
              "type": "Opaque"
            }"#,
        );
    }

    #[test]
    fn config_map_entries_sorted_last_wins_and_missing_value_is_empty() {
        let raw = Pb::new()
            .msg(1, meta("c"))
            .entry(2, "k", "old")
            .entry(2, "k", "new")
            .msg(2, Pb::new().str(1, "z"))
            .entry(2, "a", "1")
            .msg(3, Pb::new().str(1, "b").bytes(2, b"\x01\x02"))
            .boolean(4, true);
        let decoded = decode_body(&envelope("v1", "ConfigMap", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "ConfigMap",
              "apiVersion": "v1",
              "metadata": {"name": "c"},
              "immutable": true,
              "data": {"a": "1", "k": "new", "z": ""},
              "binaryData": {"b": "AQI="}
            }"#,
        );
    }

    #[test]
    fn service_account_references() {
        let raw = Pb::new()
            .msg(1, meta("sa"))
            .msg(2, Pb::new().str(1, "Secret").str(3, "tok"))
            .msg(3, Pb::new().str(1, "reg"))
            .boolean(4, false);
        let decoded = decode_body(&envelope("v1", "ServiceAccount", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "ServiceAccount",
              "apiVersion": "v1",
              "metadata": {"name": "sa"},
              "secrets": [{"kind": "Secret", "name": "tok"}],
              "imagePullSecrets": [{"name": "reg"}],
              "automountServiceAccountToken": false
            }"#,
        );
    }

    #[test]
    fn int_or_string_zero_is_kept_only_for_pointers() {
        let spec = Pb::new()
            .msg(1, Pb::new().int(1, 1).str(3, "50%"))
            .msg(3, Pb::new().int(1, 0).int(2, 0));
        let raw = Pb::new().msg(1, meta("pdb")).msg(2, spec);
        let decoded =
            decode_body(&envelope("policy/v1", "PodDisruptionBudget", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{
              "kind": "PodDisruptionBudget",
              "apiVersion": "policy/v1",
              "metadata": {"name": "pdb"},
              "spec": {"minAvailable": "50%", "maxUnavailable": 0}
            }"#,
        );
    }

    #[test]
    fn negative_int32_and_repeated_message_fields_merge() {
        let raw = Pb::new()
            .msg(1, Pb::new().str(1, "pc"))
            .msg(1, Pb::new().entry(11, "tier", "low"))
            .int(2, -5)
            .boolean(3, false)
            .str(4, "");
        let decoded =
            decode_body(&envelope("scheduling.k8s.io/v1", "PriorityClass", raw)).expect("ok");
        assert_json(
            &decoded,
            r#"{
              "kind": "PriorityClass",
              "apiVersion": "scheduling.k8s.io/v1",
              "metadata": {"name": "pc", "labels": {"tier": "low"}},
              "value": -5
            }"#,
        );
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let metadata = meta("foo")
            .uint(99, 7)
            .fixed64(100, 1)
            .fixed32(101, 2)
            .str(102, "x")
            .msg(11, Pb::new().str(1, "l").str(2, "v").uint(3, 1));
        let raw = Pb::new().msg(1, metadata).fixed32(50, 9);
        let mut body = envelope("v1", "Namespace", raw);
        body.extend_from_slice(&Pb::new().uint(15, 1).fixed64(16, 2).0);
        let decoded = decode_body(&body).expect("decodes");
        assert_json(
            &decoded,
            r#"{"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "foo", "labels": {"l": "v"}}}"#,
        );
    }

    #[test]
    fn zero_and_fractional_times() {
        let metadata = meta("t")
            .msg(8, time(GO_ZERO_TIME_SECONDS, 0))
            .msg(9, time(0, 999_999_999));
        let raw = Pb::new().msg(1, metadata);
        let decoded = decode_body(&envelope("v1", "Namespace", raw)).expect("decodes");
        assert_json(
            &decoded,
            r#"{"kind": "Namespace", "apiVersion": "v1",
                "metadata": {"name": "t", "deletionTimestamp": "1970-01-01T00:00:00Z"}}"#,
        );

        let raw = Pb::new().msg(1, meta("t").msg(8, time(i64::MAX, 0)));
        let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("out of range");
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
    }

    #[test]
    fn rejects_missing_magic() {
        for body in [
            &b""[..],
            b"k8s",
            b"{\"kind\":\"Namespace\"}",
            b"k8s\x01\x0a\x00",
        ] {
            assert!(matches!(
                decode_body(body),
                Err(ProtobufError::MissingMagic)
            ));
        }
    }

    #[test]
    fn rejects_unsupported_kind_with_gvk_message() {
        let err = decode_body(&envelope("v1", "Frobnicator", Pb::new())).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "no protobuf decoder for \"v1, Kind=Frobnicator\""
        );
        assert!(err.is_unsupported_media_type());
        assert!(!is_supported_kind("v1", "Frobnicator"));
        assert!(is_supported_kind("v1", "Namespace"));
        assert!(is_supported_kind("apps/v1", "Deployment"));
        assert!(!is_supported_kind("apps/v1", "Namespace"));

        let bare = [&MAGIC[..], &Pb::new().msg(2, Pb::new()).0[..]].concat();
        assert!(matches!(
            decode_body(&bare),
            Err(ProtobufError::UnsupportedKind { .. })
        ));
    }

    #[test]
    fn rejects_content_encoding() {
        let unknown = Pb::new()
            .msg(1, Pb::new().str(1, "v1").str(2, "Namespace"))
            .msg(2, Pb::new())
            .str(3, "gzip");
        let body = [&MAGIC[..], &unknown.0[..]].concat();
        let err = decode_body(&body).expect_err("gzip");
        assert!(matches!(err, ProtobufError::UnsupportedEncoding(_)));
        assert!(err.is_unsupported_media_type());
    }

    #[test]
    fn rejects_invalid_utf8() {
        let raw = Pb::new().msg(1, Pb::new().bytes(1, b"\xff\xfe"));
        let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("utf8");
        assert!(
            matches!(
                err,
                ProtobufError::InvalidUtf8 {
                    message: "ObjectMeta",
                    field: 1
                }
            ),
            "{err}"
        );
        assert!(!err.is_unsupported_media_type());

        let raw = Pb::new().msg(1, Pb::new().msg(11, Pb::new().bytes(1, b"\xc3")));
        let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("utf8 key");
        assert!(matches!(err, ProtobufError::InvalidUtf8 { .. }), "{err}");
    }

    #[test]
    fn rejects_wrong_wire_types_and_bad_varints() {
        // metadata.name sent as a varint.
        let raw = Pb::new().msg(1, Pb::new().uint(1, 5));
        let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("wire type");
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");

        // A varint longer than ten bytes.
        let mut raw = Pb::new();
        raw.key(7, 0);
        raw.0.extend_from_slice(&[0xff; 11]);
        let raw = Pb::new().msg(1, raw);
        let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("varint");
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");

        // Field number zero and the deprecated group wire types.
        for bad in [vec![0x00, 0x00], vec![0x0b], vec![0x0c]] {
            let body = [&MAGIC[..], &bad[..]].concat();
            let err = decode_body(&body).expect_err("malformed");
            assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
        }

        // A length running past the end.
        let body = [&MAGIC[..], &[0x12, 0x05, 0x00][..]].concat();
        assert!(matches!(
            decode_body(&body),
            Err(ProtobufError::Truncated("runtime.Unknown"))
        ));

        // FieldsV1 that is not JSON.
        let raw = Pb::new().msg(
            1,
            Pb::new().msg(17, Pb::new().msg(7, Pb::new().bytes(1, b"{nope"))),
        );
        let err = decode_body(&envelope("v1", "Namespace", raw)).expect_err("fieldsV1");
        assert!(matches!(err, ProtobufError::Malformed { .. }), "{err}");
    }

    #[test]
    fn nesting_is_bounded() {
        let err = decode_message(&CORE_NAMESPACE, &[], MAX_DEPTH).expect_err("too deep");
        assert!(matches!(err, ProtobufError::TooDeep));
        assert!(decode_message(&CORE_NAMESPACE, &[], MAX_DEPTH - 1).is_ok());
    }

    #[test]
    fn schema_tables_are_consistent() {
        fn check(msg: &'static Msg, depth: usize, seen: &mut Vec<*const Msg>) {
            assert!(depth < MAX_DEPTH, "{} nests too deep", msg.name);
            for (i, f) in msg.fields.iter().enumerate() {
                for g in &msg.fields[i + 1..] {
                    assert_ne!(f.num, g.num, "{}: duplicate field number", msg.name);
                    if !f.inline && !g.inline {
                        assert_ne!(f.json, g.json, "{}: duplicate JSON name", msg.name);
                    }
                }
                assert!(
                    f.inline == f.json.is_empty(),
                    "{}.{}: only inline fields lack a JSON name",
                    msg.name,
                    f.num
                );
                if f.inline {
                    assert!(matches!((f.ty, f.card), (Ty::Msg(_), Card::One)));
                }
                if let Ty::Msg(inner) = f.ty {
                    let ptr: *const Msg = inner;
                    if !seen.contains(&ptr) {
                        seen.push(ptr);
                        check(inner, depth + 1, seen);
                    }
                }
            }
        }
        let mut seen = Vec::new();
        for (i, (version, kind, msg)) in KINDS.iter().enumerate() {
            assert!(
                !KINDS[i + 1..]
                    .iter()
                    .any(|(v, k, _)| v == version && k == kind),
                "{version} {kind} listed twice"
            );
            assert_eq!(msg.fields.first().map(|f| f.json), Some("metadata"));
            check(msg, 0, &mut seen);
        }
    }
}
