//! The WebSocket channel protocol (`v5.channel.k8s.io`, `v4.channel.k8s.io` and the
//! base64 variants): every message is one channel byte followed by that channel's
//! bytes; v5 adds the `0xFF <channel>` close signal (exec-protocols.md §3.2). Pure:
//! turns payloads into message bodies and back, no sockets.

use base64::Engine;

/// Channel numbers for exec/attach.
pub const STDIN: u8 = 0;
/// Server → client output.
pub const STDOUT: u8 = 1;
/// Server → client error output.
pub const STDERR: u8 = 2;
/// Server → client status.
pub const ERROR: u8 = 3;
/// Client → server terminal size.
pub const RESIZE: u8 = 4;
/// v5 close signal marker.
pub const CLOSE: u8 = 0xFF;

/// How a sub-protocol frames its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// Text messages with `'0'+channel` and base64 payloads.
    pub base64: bool,
    /// `0xFF <ch>` close signals are understood (v5).
    pub close_signals: bool,
}

impl Framing {
    /// The framing of a channel sub-protocol name.
    pub fn for_protocol(p: &str) -> Framing {
        Framing {
            base64: p.contains("base64"),
            close_signals: p == super::remotecommand::V5,
        }
    }
}

/// A decoded client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelMessage {
    /// Bytes for a channel.
    Data(u8, Vec<u8>),
    /// The client closed its side of a channel (v5 only).
    Close(u8),
}

/// Why a message could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChannelError {
    /// No channel byte.
    #[error("empty websocket channel message")]
    Empty,
    /// A base64 message that does not decode.
    #[error("bad base64 in websocket channel message")]
    BadBase64,
    /// A close signal that is not exactly two bytes.
    #[error("malformed websocket close signal")]
    BadClose,
}

/// The body of a binary (or, for base64, text) message carrying `data` on `channel`.
pub fn encode(framing: Framing, channel: u8, data: &[u8]) -> Vec<u8> {
    if framing.base64 {
        let mut out = Vec::with_capacity(1 + data.len().div_ceil(3) * 4);
        out.push(b'0' + channel);
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .as_bytes(),
        );
        out
    } else {
        let mut out = Vec::with_capacity(1 + data.len());
        out.push(channel);
        out.extend_from_slice(data);
        out
    }
}

/// Decodes one client message body.
pub fn decode(framing: Framing, msg: &[u8]) -> Result<ChannelMessage, ChannelError> {
    let (&first, rest) = msg.split_first().ok_or(ChannelError::Empty)?;
    if framing.base64 {
        let ch = first.wrapping_sub(b'0');
        let data = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| ChannelError::BadBase64)?;
        return Ok(ChannelMessage::Data(ch, data));
    }
    if first == CLOSE && framing.close_signals {
        return match rest {
            [ch] => Ok(ChannelMessage::Close(*ch)),
            _ => Err(ChannelError::BadClose),
        };
    }
    Ok(ChannelMessage::Data(first, rest.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V5: Framing = Framing {
        base64: false,
        close_signals: true,
    };

    #[test]
    fn captured_kubectl_messages_decode() {
        // stdin "line1\nline2\n" then the v5 stdin close, as kubectl sent them.
        assert_eq!(
            decode(V5, b"\x00line1\nline2\n"),
            Ok(ChannelMessage::Data(STDIN, b"line1\nline2\n".to_vec()))
        );
        assert_eq!(decode(V5, &[0xFF, 0x00]), Ok(ChannelMessage::Close(STDIN)));
        assert_eq!(decode(V5, &[0xFF]), Err(ChannelError::BadClose));
        assert_eq!(decode(V5, &[]), Err(ChannelError::Empty));
        assert_eq!(
            decode(V5, b"\x04{\"Width\":100,\"Height\":30}\n"),
            Ok(ChannelMessage::Data(
                RESIZE,
                b"{\"Width\":100,\"Height\":30}\n".to_vec()
            ))
        );
    }

    #[test]
    fn encode_matches_the_wire_and_base64_round_trips() {
        assert_eq!(encode(V5, STDOUT, b"ok\n"), b"\x01ok\n");
        let b64 = Framing::for_protocol("v4.base64.channel.k8s.io");
        assert!(b64.base64 && !b64.close_signals);
        let m = encode(b64, STDERR, b"hello");
        assert_eq!(m, b"2aGVsbG8=");
        assert_eq!(
            decode(b64, b"0aGk="),
            Ok(ChannelMessage::Data(STDIN, b"hi".to_vec()))
        );
        assert_eq!(decode(b64, b"0!!"), Err(ChannelError::BadBase64));
        // v4 has no close signals: 0xFF is just a channel number.
        let v4 = Framing::for_protocol("v4.channel.k8s.io");
        assert_eq!(
            decode(v4, &[0xFF, 0]),
            Ok(ChannelMessage::Data(0xFF, vec![0]))
        );
    }
}
