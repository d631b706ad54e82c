//! The apimachinery types whose JSON form comes from a Go custom marshaler rather than
//! their fields: `metav1.Time`, `MicroTime`, `Duration`, `resource.Quantity`,
//! `intstr.IntOrString`, `runtime.RawExtension` (and apiextensions `JSON`), `FieldsV1`.

use serde_json::{Number, Value};

use super::ProtobufError;
use super::wire::{self, Reader, Wire, wrong_wire};

/// `metav1.Time`'s zero value (0001-01-01T00:00:00Z) in Unix seconds; Go prints it as null.
pub const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

type Result<T> = std::result::Result<T, ProtobufError>;

fn encode_error(message: &'static str, detail: String) -> ProtobufError {
    ProtobufError::Encode {
        message,
        field: "",
        detail,
    }
}

/// `{1 seconds, 2 nanos}` as RFC 3339 UTC (whole seconds, or microseconds for
/// MicroTime); null for the zero time.
pub fn decode_time(buf: &[u8], micro: bool) -> Result<Value> {
    let name = if micro {
        "metav1.MicroTime"
    } else {
        "metav1.Time"
    };
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut reader = Reader::new(buf, name);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => seconds = v as i64,
            (2, Wire::Varint(v)) => nanos = v as i64 as i32,
            (1 | 2, other) => return Err(wrong_wire(name, num, other)),
            _ => {}
        }
    }
    if buf.is_empty() || seconds == GO_ZERO_TIME_SECONDS {
        return Ok(Value::Null);
    }
    let nanos = if micro {
        nanos.clamp(0, 999_999_999)
    } else {
        0
    };
    let ts = jiff::Timestamp::new(seconds, nanos).map_err(|e| ProtobufError::Malformed {
        message: name,
        detail: format!("seconds {seconds} out of range: {e}"),
    })?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Ok(Value::String(ts.strftime(format).to_string()))
}

/// An RFC 3339 string as `{1 seconds, 2 nanos}` (both always written, as Go does);
/// Time keeps whole seconds, MicroTime microseconds.
pub fn encode_time(value: &Value, micro: bool, out: &mut Vec<u8>) -> Result<()> {
    let name = if micro {
        "metav1.MicroTime"
    } else {
        "metav1.Time"
    };
    let text = value
        .as_str()
        .ok_or_else(|| encode_error(name, format!("not a string: {value}")))?;
    let ts: jiff::Timestamp = text
        .parse()
        .map_err(|e| encode_error(name, format!("{text:?} is not RFC 3339: {e}")))?;
    let nanos = if micro {
        ts.subsec_nanosecond() / 1000 * 1000
    } else {
        0
    };
    wire::put_uint(out, 1, ts.as_second() as u64);
    wire::put_uint(out, 2, i64::from(nanos) as u64);
    Ok(())
}

/// `metav1.Duration {1 duration (nanoseconds)}` as Go's `time.Duration.String()`.
pub fn decode_duration(buf: &[u8]) -> Result<Value> {
    const NAME: &str = "metav1.Duration";
    let mut nanos = 0i64;
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => nanos = v as i64,
            (1, other) => return Err(wrong_wire(NAME, num, other)),
            _ => {}
        }
    }
    Ok(Value::String(go_duration(nanos)))
}

pub fn encode_duration(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    const NAME: &str = "metav1.Duration";
    let text = value
        .as_str()
        .ok_or_else(|| encode_error(NAME, format!("not a string: {value}")))?;
    let nanos = parse_go_duration(text)
        .ok_or_else(|| encode_error(NAME, format!("invalid duration {text:?}")))?;
    wire::put_uint(out, 1, nanos as u64);
    Ok(())
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (value, digits, unit) = match u {
            0..1_000 => return format!("{sign}{u}ns"),
            1_000..1_000_000 => (u, 3, "µs"),
            _ => (u, 6, "ms"),
        };
        return format!("{sign}{}{unit}", fraction(value, digits));
    }
    let (h, rest) = (u / 3_600_000_000_000, u % 3_600_000_000_000);
    let (m, s) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let seconds = fraction(s, 9);
    if h > 0 {
        format!("{sign}{h}h{m}m{seconds}s")
    } else if m > 0 {
        format!("{sign}{m}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// `value / 10^digits` with the fraction's trailing zeros dropped.
fn fraction(value: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Go's `time.ParseDuration`: `[-+]` then `<decimal><unit>` repeated, or `0`.
pub fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

/// `resource.Quantity {1 string}`; Go prints the zero Quantity as `"0"`.
pub fn decode_quantity(buf: &[u8]) -> Result<Value> {
    const NAME: &str = "resource.Quantity";
    let mut quantity = "";
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Len(s)) => quantity = wire::utf8(s, NAME, 1)?,
            (1, other) => return Err(wrong_wire(NAME, 1, other)),
            _ => {}
        }
    }
    Ok(Value::String(if quantity.is_empty() {
        "0".into()
    } else {
        quantity.into()
    }))
}

pub fn encode_quantity(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(encode_error(
                "resource.Quantity",
                format!("not a string: {other}"),
            ));
        }
    };
    wire::put_bytes(out, 1, text.as_bytes());
    Ok(())
}

/// `intstr.IntOrString {1 type, 2 intVal, 3 strVal}` as a JSON number or string.
pub fn decode_int_or_string(buf: &[u8]) -> Result<Value> {
    const NAME: &str = "intstr.IntOrString";
    let (mut kind, mut int_val, mut str_val) = (0u64, 0i32, "");
    let mut reader = Reader::new(buf, NAME);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Varint(v)) => kind = v,
            (2, Wire::Varint(v)) => int_val = v as i64 as i32,
            (3, Wire::Len(b)) => str_val = wire::utf8(b, NAME, 3)?,
            (1..=3, other) => return Err(wrong_wire(NAME, num, other)),
            _ => {}
        }
    }
    match kind {
        0 => Ok(Value::Number(Number::from(int_val))),
        1 => Ok(Value::String(str_val.into())),
        other => Err(ProtobufError::Malformed {
            message: NAME,
            detail: format!("unknown type {other}"),
        }),
    }
}

/// All three fields, as Go writes them.
pub fn encode_int_or_string(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Number(n) => {
            let v = n
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| {
                    encode_error("intstr.IntOrString", format!("{n} is not an int32"))
                })?;
            wire::put_uint(out, 1, 0);
            wire::put_uint(out, 2, i64::from(v) as u64);
            wire::put_bytes(out, 3, b"");
        }
        Value::String(s) => {
            wire::put_uint(out, 1, 1);
            wire::put_uint(out, 2, 0);
            wire::put_bytes(out, 3, s.as_bytes());
        }
        other => {
            return Err(encode_error(
                "intstr.IntOrString",
                format!("not a number or string: {other}"),
            ));
        }
    }
    Ok(())
}

/// The bytes of field 1 (`raw` / `Raw`) of a RawExtension-like message.
pub fn raw_field<'a>(buf: &'a [u8], name: &'static str) -> Result<&'a [u8]> {
    let mut raw: &[u8] = &[];
    let mut reader = Reader::new(buf, name);
    while let Some((num, wire)) = reader.next_field()? {
        match (num, wire) {
            (1, Wire::Len(b)) => raw = b,
            (1, other) => return Err(wrong_wire(name, 1, other)),
            _ => {}
        }
    }
    Ok(raw)
}

/// JSON bytes as a value (null when empty).
pub fn parse_json(raw: &[u8], name: &'static str) -> Result<Value> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| ProtobufError::Malformed {
        message: name,
        detail: format!("raw is not JSON: {e}"),
    })
}

/// A value as the JSON bytes of field 1.
pub fn encode_raw_json(value: &Value, out: &mut Vec<u8>) -> Result<()> {
    let raw = serde_json::to_vec(value)
        .map_err(|e| encode_error("runtime.RawExtension", e.to_string()))?;
    wire::put_bytes(out, 1, &raw);
    Ok(())
}
