//! Protobuf → JSON, producing what Go's `encoding/json` prints for the same object:
//! - fields in Go struct order (the `.proto` declaration order), with their JSON names;
//! - scalars equal to their zero value omitted, unless the Go field is a pointer or has no
//!   `omitempty` (`keep` in the facts) and the value is on the wire;
//! - nested messages on the wire always printed (`"spec": {}` too: Go ignores
//!   `omitempty` on structs), `inline` members merged into their parent;
//! - empty lists and maps omitted (Go prints them as `null` or omits them);
//! - map keys sorted, a repeated key keeps its last value;
//! - the well-known types as their custom marshalers print them;
//! - unknown fields skipped, as protobuf readers do.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::schema::{Card, Field, Message, Schema, Special, Ty};
use super::wellknown;
use super::wire::{Reader, Wire, utf8, wrong_wire};
use super::{MAGIC, MAX_DEPTH, ProtobufError};

type Result<T> = std::result::Result<T, ProtobufError>;

/// The `runtime.Unknown` envelope.
pub struct Unknown<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub raw: &'a [u8],
    pub content_encoding: &'a str,
}

/// Reads the envelope after the magic prefix.
pub fn decode_unknown(buf: &[u8]) -> Result<Unknown<'_>> {
    const NAME: &str = "runtime.Unknown";
    const TYPE_META: &str = "runtime.TypeMeta";
    let mut out = Unknown {
        api_version: "",
        kind: "",
        raw: &[],
        content_encoding: "",
    };
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, value)) = reader.next_field()? {
        match (num, value) {
            (1, Wire::Len(type_meta)) => {
                let mut tm = Reader::new(type_meta, TYPE_META);
                while let Some((num, value)) = tm.next_field()? {
                    match (num, value) {
                        (1, Wire::Len(b)) => out.api_version = utf8(b, TYPE_META, 1)?,
                        (2, Wire::Len(b)) => out.kind = utf8(b, TYPE_META, 2)?,
                        (1 | 2, other) => return Err(wrong_wire(TYPE_META, num, other)),
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

/// A whole body (magic, envelope, typed message) as a JSON object with `kind` and
/// `apiVersion` first.
pub fn decode_envelope(schema: &'static Schema, body: &[u8], depth: usize) -> Result<Value> {
    if depth >= MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let envelope = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ProtobufError::MissingMagic)?;
    let unknown = decode_unknown(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(ProtobufError::UnsupportedEncoding(
            unknown.content_encoding.into(),
        ));
    }
    let root = schema
        .kind_message(unknown.api_version, unknown.kind)
        .ok_or_else(|| ProtobufError::UnsupportedKind {
            api_version: unknown.api_version.into(),
            kind: unknown.kind.into(),
        })?;
    let mut object = Map::new();
    object.insert("kind".into(), Value::String(unknown.kind.into()));
    object.insert(
        "apiVersion".into(),
        Value::String(unknown.api_version.into()),
    );
    object.extend(decode_message(schema, root, unknown.raw, depth + 1)?);
    Ok(Value::Object(object))
}

/// What has been read so far for one field of a message.
enum Slot {
    Empty,
    /// A singular value, with whether it is the type's zero value.
    One(Value, bool),
    Many(Vec<Value>),
    Entries(Vec<(String, Value)>),
}

/// One message's bytes as the JSON members of its Go struct.
pub fn decode_message(
    schema: &'static Schema,
    index: u32,
    buf: &[u8],
    depth: usize,
) -> Result<Map<String, Value>> {
    if depth >= MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let msg: &'static Message = &schema.messages[index as usize];
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Empty).collect();
    let mut reader = Reader::new(buf, &msg.name);
    while let Some((num, wire)) = reader.next_field()? {
        let Some((i, f)) = msg.field_by_number(num) else {
            continue;
        };
        if f.skip {
            continue;
        }
        let slot = &mut slots[i];
        match f.card {
            Card::One => {
                let (value, zero) = decode_value(schema, msg, f, f.ty, wire, depth)?;
                match (slot, value) {
                    // A repeated occurrence of a message field merges into the first.
                    (Slot::One(Value::Object(old), old_zero), Value::Object(new))
                        if is_plain_message(schema, f.ty) =>
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
                    decode_repeated(schema, msg, f, wire, depth, items)?;
                }
            }
            Card::Map(key_ty) => {
                if !matches!(slot, Slot::Entries(_)) {
                    *slot = Slot::Entries(Vec::new());
                }
                if let Slot::Entries(entries) = slot {
                    entries.push(decode_entry(schema, msg, f, key_ty, wire, depth)?);
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
                if !value.is_null() && (!zero || f.keep) {
                    out.insert(f.json.clone(), value);
                }
            }
            Slot::Many(items) => {
                if !items.is_empty() {
                    out.insert(f.json.clone(), Value::Array(items));
                }
            }
            Slot::Entries(mut entries) => {
                // Go sorts map keys; a key given twice keeps its last value.
                entries.reverse();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries.dedup_by(|a, b| a.0 == b.0);
                if !entries.is_empty() {
                    out.insert(f.json.clone(), Value::Object(entries.into_iter().collect()));
                }
            }
        }
    }
    Ok(out)
}

fn is_plain_message(schema: &Schema, ty: Ty) -> bool {
    matches!(ty, Ty::Msg(i) if schema.messages[i as usize].special == Special::None)
}

fn decode_repeated(
    schema: &'static Schema,
    msg: &'static Message,
    f: &Field,
    wire: Wire<'_>,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<()> {
    // Numeric lists may come packed in one length-delimited field.
    if let Wire::Len(bytes) = wire {
        let packed = match f.ty {
            Ty::Bool | Ty::I32 | Ty::I64 | Ty::U32 | Ty::U64 => Some(0),
            Ty::F32 => Some(4),
            Ty::F64 => Some(8),
            _ => None,
        };
        if let Some(width) = packed {
            if width != 0 {
                return decode_packed_fixed(schema, msg, f, bytes, width, depth, items);
            }
            let mut reader = Reader::new(bytes, &msg.name);
            while !reader.at_end() {
                let v = reader.varint()?;
                items.push(decode_value(schema, msg, f, f.ty, Wire::Varint(v), depth)?.0);
            }
            return Ok(());
        }
    }
    items.push(decode_value(schema, msg, f, f.ty, wire, depth)?.0);
    Ok(())
}

fn decode_packed_fixed(
    schema: &'static Schema,
    msg: &'static Message,
    f: &Field,
    bytes: &[u8],
    width: usize,
    depth: usize,
    items: &mut Vec<Value>,
) -> Result<()> {
    if !bytes.len().is_multiple_of(width) {
        return Err(ProtobufError::Truncated(&msg.name));
    }
    for chunk in bytes.chunks(width) {
        let w = if width == 4 {
            Wire::Fixed32(u32::from_le_bytes(chunk.try_into().unwrap_or([0; 4])))
        } else {
            Wire::Fixed64(u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8])))
        };
        items.push(decode_value(schema, msg, f, f.ty, w, depth)?.0);
    }
    Ok(())
}

fn decode_entry(
    schema: &'static Schema,
    msg: &'static Message,
    f: &Field,
    key_ty: Ty,
    wire: Wire<'_>,
    depth: usize,
) -> Result<(String, Value)> {
    let Wire::Len(bytes) = wire else {
        return Err(wrong_wire(&msg.name, f.number, wire));
    };
    let mut key = String::new();
    let mut value = None;
    let mut reader = Reader::new(bytes, &msg.name);
    while let Some((num, wire)) = reader.next_field()? {
        match num {
            1 => {
                key = match decode_value(schema, msg, f, key_ty, wire, depth)?.0 {
                    Value::String(s) => s,
                    other => other.to_string(),
                }
            }
            2 => value = Some(decode_value(schema, msg, f, f.ty, wire, depth)?.0),
            _ => {}
        }
    }
    let value = match value {
        Some(v) => v,
        // An absent value is the type's zero value.
        None => zero_value(schema, msg, f, depth)?,
    };
    Ok((key, value))
}

fn zero_value(
    schema: &'static Schema,
    msg: &'static Message,
    f: &Field,
    depth: usize,
) -> Result<Value> {
    let wire = match f.ty {
        Ty::Bool | Ty::I32 | Ty::I64 | Ty::U32 | Ty::U64 => Wire::Varint(0),
        Ty::F32 => Wire::Fixed32(0),
        Ty::F64 => Wire::Fixed64(0),
        _ => Wire::Len(&[]),
    };
    Ok(decode_value(schema, msg, f, f.ty, wire, depth)?.0)
}

/// Decodes one value of type `ty`; the flag says whether it is the type's zero value
/// (printed only for `keep` fields). Messages are never "zero": Go prints structs.
fn decode_value(
    schema: &'static Schema,
    msg: &'static Message,
    f: &Field,
    ty: Ty,
    wire: Wire<'_>,
    depth: usize,
) -> Result<(Value, bool)> {
    let mismatch = || wrong_wire(&msg.name, f.number, wire);
    Ok(match (ty, wire) {
        (Ty::Bool, Wire::Varint(v)) => (Value::Bool(v != 0), v == 0),
        // int32 is sign-extended to 64 bits on the wire; keep the low 32 bits.
        (Ty::I32, Wire::Varint(v)) => (Value::from(v as i64 as i32), v as i32 == 0),
        (Ty::I64, Wire::Varint(v)) => (Value::from(v as i64), v == 0),
        (Ty::U32, Wire::Varint(v)) => (Value::from(v as u32), v as u32 == 0),
        (Ty::U64, Wire::Varint(v)) => (Value::from(v), v == 0),
        (Ty::U32 | Ty::I32, Wire::Fixed32(v)) => (Value::from(v), v == 0),
        (Ty::U64 | Ty::I64, Wire::Fixed64(v)) => (Value::from(v), v == 0),
        (Ty::F32, Wire::Fixed32(v)) => {
            let x = f32::from_bits(v);
            (Value::from(f64::from(x)), x == 0.0)
        }
        (Ty::F64, Wire::Fixed64(v)) => {
            let x = f64::from_bits(v);
            (Value::from(x), x == 0.0)
        }
        (Ty::Str, Wire::Len(b)) => (
            Value::String(utf8(b, &msg.name, f.number)?.into()),
            b.is_empty(),
        ),
        (Ty::Bytes, Wire::Len(b)) => (Value::String(STANDARD.encode(b)), b.is_empty()),
        (Ty::Msg(i), Wire::Len(b)) => {
            let inner = &schema.messages[i as usize];
            match inner.special {
                Special::None => (
                    Value::Object(decode_message(schema, i, b, depth + 1)?),
                    false,
                ),
                Special::Time => (wellknown::decode_time(b, false)?, false),
                Special::MicroTime => (wellknown::decode_time(b, true)?, false),
                Special::Duration => (wellknown::decode_duration(b)?, false),
                Special::Quantity => (wellknown::decode_quantity(b)?, false),
                Special::IntOrString => (wellknown::decode_int_or_string(b)?, false),
                Special::FieldsV1 => {
                    let raw = wellknown::raw_field(b, &inner.name)?;
                    (wellknown::parse_json(raw, &inner.name)?, false)
                }
                Special::RawJson => {
                    let raw = wellknown::raw_field(b, &inner.name)?;
                    // An embedded object may itself be a protobuf envelope.
                    let v = if raw.starts_with(MAGIC) {
                        decode_envelope(schema, raw, depth + 1)?
                    } else {
                        wellknown::parse_json(raw, &inner.name)?
                    };
                    (v, false)
                }
                Special::Array => {
                    let mut members = decode_message(schema, i, b, depth + 1)?;
                    let items = members.remove("items").unwrap_or(Value::Array(Vec::new()));
                    let empty = items.as_array().is_none_or(Vec::is_empty);
                    (items, empty)
                }
            }
        }
        _ => return Err(mismatch()),
    })
}
