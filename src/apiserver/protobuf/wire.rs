//! The protobuf wire format: a bounds-checked reader and the writer primitives.

use super::ProtobufError;

/// One field value as it appears on the wire.
#[derive(Clone, Copy)]
pub enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Wire<'_> {
    fn name(&self) -> &'static str {
        match self {
            Wire::Varint(_) => "varint",
            Wire::Fixed64(_) => "64-bit",
            Wire::Len(_) => "length-delimited",
            Wire::Fixed32(_) => "32-bit",
        }
    }
}

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], message: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            message,
        }
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, ProtobufError> {
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

    fn take(&mut self, len: usize) -> Result<&'a [u8], ProtobufError> {
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
    pub fn next_field(&mut self) -> Result<Option<(u32, Wire<'a>)>, ProtobufError> {
        if self.at_end() {
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
                let b = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
            }
            2 => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| ProtobufError::Truncated(self.message))?;
                Wire::Len(self.take(len)?)
            }
            5 => {
                let b = self.take(4)?;
                Wire::Fixed32(u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
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

/// The error for a field whose wire type does not match its declared type.
pub fn wrong_wire(message: &'static str, num: u32, value: Wire<'_>) -> ProtobufError {
    ProtobufError::Malformed {
        message,
        detail: format!("field {num} has unexpected wire type {}", value.name()),
    }
}

/// A string field's bytes as UTF-8.
pub fn utf8<'a>(
    bytes: &'a [u8],
    message: &'static str,
    field: u32,
) -> Result<&'a str, ProtobufError> {
    std::str::from_utf8(bytes).map_err(|_| ProtobufError::InvalidUtf8 { message, field })
}

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_key(out: &mut Vec<u8>, num: u32, wire: u8) {
    put_varint(out, (u64::from(num) << 3) | u64::from(wire));
}

/// A length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, num: u32, bytes: &[u8]) {
    put_key(out, num, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A varint field.
pub fn put_uint(out: &mut Vec<u8>, num: u32, v: u64) {
    put_key(out, num, VARINT);
    put_varint(out, v);
}

/// A nested message written by `body`; the length is patched in afterwards (one byte is
/// reserved, the rare longer length shifts the body).
pub fn put_nested<E>(
    out: &mut Vec<u8>,
    num: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_key(out, num, LEN);
    out.push(0);
    let start = out.len();
    body(out)?;
    let len = out.len() - start;
    if len < 0x80 {
        out[start - 1] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(5);
        put_varint(&mut prefix, len as u64);
        out.splice(start - 1..start, prefix);
    }
    Ok(())
}
