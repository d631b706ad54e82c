//! JSON → protobuf, as upstream's protobuf serializer writes objects: the `k8s\0` magic,
//! a `runtime.Unknown` envelope whose typeMeta comes from the object's `apiVersion` and
//! `kind`, and the typed message in field-number order. Fields present in the JSON are
//! written (so pointer fields keep their zero values); fields the schema does not know are
//! dropped; absent fields are left out, which Go decodes as their zero values.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::schema::{Card, Field, Message, Schema, Special, Ty};
use super::wellknown;
use super::wire::{self, FIXED32, FIXED64, put_bytes, put_key, put_nested, put_uint};
use super::{MAGIC, MAX_DEPTH, ProtobufError};

type Result<T> = std::result::Result<T, ProtobufError>;

/// Writes `object` as a whole protobuf body.
pub fn encode_envelope(schema: &'static Schema, object: &Value, out: &mut Vec<u8>) -> Result<()> {
    let members = object.as_object();
    let text = |name: &str| {
        members
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let (Some(members), Some(index)) = (members, schema.kind_message(api_version, kind)) else {
        return Err(ProtobufError::UnsupportedKind {
            api_version: api_version.into(),
            kind: kind.into(),
        });
    };
    out.extend_from_slice(MAGIC);
    put_nested(out, 1, |o| {
        put_bytes(o, 1, api_version.as_bytes());
        put_bytes(o, 2, kind.as_bytes());
        Ok::<_, ProtobufError>(())
    })?;
    put_nested(out, 2, |o| encode_message(schema, index, members, o, 0))?;
    put_bytes(out, 3, b"");
    put_bytes(out, 4, b"");
    Ok(())
}

/// Writes a list (`head`: its `kind`, `apiVersion`, `metadata`; `items` apart, borrowed)
/// as a whole protobuf body, the same bytes as [`encode_envelope`] of the whole list.
pub fn encode_list_envelope<T: std::borrow::Borrow<Value>>(
    schema: &'static Schema,
    head: &Value,
    items: &[T],
    out: &mut Vec<u8>,
) -> Result<()> {
    let members = head.as_object();
    let text = |name: &str| {
        members
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let (api_version, kind) = (text("apiVersion"), text("kind"));
    let found = schema.kind_message(api_version, kind).and_then(|index| {
        let msg: &'static Message = &schema.messages[index as usize];
        let items = msg
            .field_by_json("items")
            .filter(|f| f.card == Card::Repeated && !msg.has_inline)?;
        Some((msg, items))
    });
    let (Some(members), Some((msg, items_field))) = (members, found) else {
        return Err(ProtobufError::UnsupportedKind {
            api_version: api_version.into(),
            kind: kind.into(),
        });
    };
    out.extend_from_slice(MAGIC);
    put_nested(out, 1, |o| {
        put_bytes(o, 1, api_version.as_bytes());
        put_bytes(o, 2, kind.as_bytes());
        Ok::<_, ProtobufError>(())
    })?;
    put_nested(out, 2, |o| {
        let mut present: Vec<(&Field, &Value)> = members
            .iter()
            .filter_map(|(k, v)| Some((msg.field_by_json(k)?, v)))
            .filter(|(f, v)| !v.is_null() && f.number != items_field.number)
            .collect();
        present.sort_by_key(|(f, _)| f.number);
        let split = present.partition_point(|(f, _)| f.number < items_field.number);
        for (f, v) in &present[..split] {
            encode_field(schema, msg, f, v, o, 0)?;
        }
        for item in items {
            let item: &Value = item.borrow();
            if item.is_null() {
                put_key(o, items_field.number, wire::LEN);
                o.push(0);
            } else {
                encode_value(
                    schema,
                    msg,
                    items_field,
                    items_field.ty,
                    items_field.number,
                    item,
                    o,
                    0,
                )?;
            }
        }
        for (f, v) in &present[split..] {
            encode_field(schema, msg, f, v, o, 0)?;
        }
        Ok(())
    })?;
    put_bytes(out, 3, b"");
    put_bytes(out, 4, b"");
    Ok(())
}

/// Writes one watch event: a 4-byte big-endian length, then `meta.v1.WatchEvent` (no
/// magic, no envelope: upstream's stream serializer is the raw one) whose
/// `object.raw` is the object's full envelope.
pub fn encode_watch_event(
    schema: &'static Schema,
    event_type: &str,
    object: &Value,
    out: &mut Vec<u8>,
) -> Result<()> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    put_bytes(out, 1, event_type.as_bytes());
    put_nested(out, 2, |o| {
        put_nested(o, 1, |o| encode_envelope(schema, object, o))
    })?;
    let len = u32::try_from(out.len() - start - 4).map_err(|_| ProtobufError::Encode {
        message: "meta.v1.WatchEvent",
        field: "object",
        detail: "event larger than 4 GiB".into(),
    })?;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Writes the members of `object` that message `index` knows, in field-number order.
pub fn encode_message(
    schema: &'static Schema,
    index: u32,
    object: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let msg: &'static Message = &schema.messages[index as usize];
    if msg.has_inline {
        // Inline members share the parent's JSON object: walk the fields.
        let mut order: Vec<&Field> = msg.fields.iter().filter(|f| !f.skip).collect();
        order.sort_by_key(|f| f.number);
        for f in order {
            match (f.inline, f.ty) {
                (true, Ty::Msg(i)) => {
                    put_nested(out, f.number, |o| {
                        encode_message(schema, i, object, o, depth + 1)
                    })?;
                }
                (true, _) => {}
                (false, _) => {
                    if let Some(v) = object.get(&f.json) {
                        encode_field(schema, msg, f, v, out, depth)?;
                    }
                }
            }
        }
        return Ok(());
    }
    let mut present: Vec<(&Field, &Value)> = object
        .iter()
        .filter_map(|(k, v)| Some((msg.field_by_json(k)?, v)))
        .filter(|(_, v)| !v.is_null())
        .collect();
    present.sort_by_key(|(f, _)| f.number);
    for (f, v) in present {
        encode_field(schema, msg, f, v, out, depth)?;
    }
    Ok(())
}

fn mismatch(msg: &'static Message, f: &'static Field, what: &str, value: &Value) -> ProtobufError {
    let shown = value.to_string();
    let shown = shown.get(..60).unwrap_or(&shown);
    ProtobufError::Encode {
        message: &msg.name,
        field: &f.json,
        detail: format!("expected {what}, got {shown}"),
    }
}

fn encode_field(
    schema: &'static Schema,
    msg: &'static Message,
    f: &'static Field,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    match f.card {
        Card::One => encode_value(schema, msg, f, f.ty, f.number, value, out, depth),
        Card::Repeated => {
            let items = value
                .as_array()
                .ok_or_else(|| mismatch(msg, f, "an array", value))?;
            for item in items {
                if item.is_null() {
                    // A null element is the zero value.
                    put_key(out, f.number, wire::LEN);
                    out.push(0);
                } else {
                    encode_value(schema, msg, f, f.ty, f.number, item, out, depth)?;
                }
            }
            Ok(())
        }
        Card::Map(key_ty) => {
            let entries = value
                .as_object()
                .ok_or_else(|| mismatch(msg, f, "an object", value))?;
            // Go writes map entries sorted by key.
            let mut keys: Vec<&String> = entries.keys().collect();
            keys.sort_unstable();
            for key in keys {
                let v = &entries[key];
                put_nested(out, f.number, |o| {
                    let key_value = match key_ty {
                        Ty::Str => Value::String(key.clone()),
                        _ => key
                            .parse::<serde_json::Number>()
                            .map(Value::Number)
                            .map_err(|_| {
                                mismatch(msg, f, "a numeric key", &Value::String(key.clone()))
                            })?,
                    };
                    encode_value(schema, msg, f, key_ty, 1, &key_value, o, depth)?;
                    encode_value(schema, msg, f, f.ty, 2, v, o, depth)
                })?;
            }
            Ok(())
        }
    }
}

fn int(msg: &'static Message, f: &'static Field, value: &Value) -> Result<i64> {
    value
        .as_i64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|x| x.fract() == 0.0)
                .map(|x| x as i64)
        })
        .ok_or_else(|| mismatch(msg, f, "an integer", value))
}

#[allow(clippy::too_many_arguments)]
fn encode_value(
    schema: &'static Schema,
    msg: &'static Message,
    f: &'static Field,
    ty: Ty,
    num: u32,
    value: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<()> {
    if value.is_null() {
        return Ok(());
    }
    match ty {
        Ty::Str => {
            let s = value
                .as_str()
                .ok_or_else(|| mismatch(msg, f, "a string", value))?;
            put_bytes(out, num, s.as_bytes());
        }
        Ty::Bytes => {
            let s = value
                .as_str()
                .ok_or_else(|| mismatch(msg, f, "a base64 string", value))?;
            let bytes = STANDARD
                .decode(s)
                .map_err(|_| mismatch(msg, f, "base64", value))?;
            put_bytes(out, num, &bytes);
        }
        Ty::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| mismatch(msg, f, "a boolean", value))?;
            put_uint(out, num, u64::from(b));
        }
        Ty::I32 => {
            let v = i32::try_from(int(msg, f, value)?)
                .map_err(|_| mismatch(msg, f, "an int32", value))?;
            put_uint(out, num, i64::from(v) as u64);
        }
        Ty::I64 => put_uint(out, num, int(msg, f, value)? as u64),
        Ty::U32 | Ty::U64 => {
            let v = value
                .as_u64()
                .ok_or_else(|| mismatch(msg, f, "an unsigned integer", value))?;
            put_uint(out, num, v);
        }
        Ty::F32 | Ty::F64 => {
            let x = value
                .as_f64()
                .ok_or_else(|| mismatch(msg, f, "a number", value))?;
            if ty == Ty::F32 {
                put_key(out, num, FIXED32);
                out.extend_from_slice(&(x as f32).to_le_bytes());
            } else {
                put_key(out, num, FIXED64);
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Ty::Msg(i) => {
            let inner: &'static Message = &schema.messages[i as usize];
            match inner.special {
                Special::None => {
                    let members = value
                        .as_object()
                        .ok_or_else(|| mismatch(msg, f, "an object", value))?;
                    put_nested(out, num, |o| {
                        encode_message(schema, i, members, o, depth + 1)
                    })?;
                }
                Special::Time => put_nested(out, num, |o| wellknown::encode_time(value, false, o))?,
                Special::MicroTime => {
                    put_nested(out, num, |o| wellknown::encode_time(value, true, o))?
                }
                Special::Duration => {
                    put_nested(out, num, |o| wellknown::encode_duration(value, o))?
                }
                Special::Quantity => {
                    put_nested(out, num, |o| wellknown::encode_quantity(value, o))?
                }
                Special::IntOrString => {
                    put_nested(out, num, |o| wellknown::encode_int_or_string(value, o))?;
                }
                Special::RawJson | Special::FieldsV1 => {
                    put_nested(out, num, |o| wellknown::encode_raw_json(value, o))?;
                }
                Special::Array => {
                    let items = value
                        .as_array()
                        .ok_or_else(|| mismatch(msg, f, "an array", value))?;
                    let item = &inner.fields[0];
                    put_nested(out, num, |o| {
                        for v in items {
                            encode_value(
                                schema,
                                inner,
                                item,
                                item.ty,
                                item.number,
                                v,
                                o,
                                depth + 1,
                            )?;
                        }
                        Ok(())
                    })?;
                }
            }
        }
    }
    Ok(())
}
