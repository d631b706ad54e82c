//! SPDY/3.1 frame codec, as spoken by Kubernetes clients (kubectl, client-go) through
//! moby/spdystream for `exec`, `attach`, `cp` and `port-forward`.
//!
//! This module is pure: it turns bytes into [`Frame`]s and back and owns the two
//! per-connection zlib contexts SPDY needs for header blocks. It knows nothing about
//! sockets, streams or the remote-command protocol on top; that lives elsewhere.
//!
//! Wire facts the codec relies on (see `shared/docs/exec-protocols.md` §4):
//! * all integers are big-endian; control frames carry version 3 (3.1 only changed
//!   flow-control semantics, not the framing);
//! * every header block of a connection, per direction, goes through **one** long-lived
//!   zlib stream primed with [`SPDY3_DICTIONARY`] and ends with a sync flush, so
//!   a [`Codec`] must be used for exactly one connection and must see every frame in order;
//! * the decoder is as strict as spdystream's reader (zero stream ids, PING flags,
//!   fixed control-frame lengths, lowercase unique header names, exactly consumed header
//!   blocks), and the encoder refuses to produce any frame that reader would reject, so a
//!   frame that round-trips through this codec is one kubectl accepts.
//!
//! Errors: any `Err` from [`Codec::decode`] or [`Codec::encode`] is a connection error.
//! The bytes of the offending frame may or may not have been consumed and the zlib
//! context may be out of step with the peer's, so the caller should send GOAWAY (status
//! PROTOCOL_ERROR) if it can and drop the connection rather than keep decoding.

use std::collections::HashSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// SPDY protocol version carried in every control frame header.
pub const SPDY_VERSION: u16 = 3;

/// Largest payload a frame can declare: its length field has 24 bits.
pub const MAX_FRAME_LEN: usize = 0x00FF_FFFF;

/// Largest stream id: stream ids have 31 bits (the top bit is reserved).
pub const MAX_STREAM_ID: u32 = 0x7FFF_FFFF;

/// Default cap on a header block after decompression (guards against zlib bombs).
pub const DEFAULT_MAX_HEADER_BLOCK: usize = 1 << 20;

/// Adler-32 of [`SPDY3_DICTIONARY`]; a real client's first header block names this id
/// in its zlib header (`78 F9 E3 C6 A7 C2 ...`).
pub const SPDY3_DICTIONARY_ADLER32: u32 = 0xE3C6_A7C2;

/// Length-prefixed words that open the SPDY/3 header-compression dictionary, in order.
///
/// Source: SPDY Protocol Draft 3, section 2.6.10.1 "Compression" (the same bytes are in
/// moby/spdystream `spdy/dictionary.go`). Each word is stored as `u32be length || bytes`.
const DICTIONARY_WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// Raw tail of the SPDY/3 dictionary (no length prefixes, no separators), same source as
/// [`DICTIONARY_WORDS`]. Line continuations drop only the newline and the indentation;
/// every line starts with a non-blank byte, so no byte of the table is lost.
const DICTIONARY_TAIL: &[u8] = b"\
100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505\
203 Non-Authoritative Information\
204 No Content\
301 Moved Permanently\
400 Bad Request\
401 Unauthorized\
403 Forbidden\
404 Not Found\
500 Internal Server Error\
501 Not Implemented\
503 Service Unavailable\
Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 \
Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,\
text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch\
charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

/// Size of the SPDY/3 dictionary in bytes.
const DICTIONARY_LEN: usize = 1423;

/// The SPDY/3 header-compression dictionary (1423 bytes, Adler-32
/// [`SPDY3_DICTIONARY_ADLER32`]), assembled at compile time from the draft's word list
/// and tail. Both zlib contexts of a connection are primed with it; it must be byte-exact
/// or the peer's inflater rejects our first header block.
pub const SPDY3_DICTIONARY: [u8; DICTIONARY_LEN] = build_dictionary();

const fn build_dictionary() -> [u8; DICTIONARY_LEN] {
    let mut out = [0u8; DICTIONARY_LEN];
    let mut pos = 0;
    let mut w = 0;
    while w < DICTIONARY_WORDS.len() {
        let word = DICTIONARY_WORDS[w].as_bytes();
        let len = (word.len() as u32).to_be_bytes();
        let mut i = 0;
        while i < 4 {
            out[pos] = len[i];
            pos += 1;
            i += 1;
        }
        let mut i = 0;
        while i < word.len() {
            out[pos] = word[i];
            pos += 1;
            i += 1;
        }
        w += 1;
    }
    let mut i = 0;
    while i < DICTIONARY_TAIL.len() {
        out[pos] = DICTIONARY_TAIL[i];
        pos += 1;
        i += 1;
    }
    // A wrong table fails the build instead of failing a handshake at run time.
    assert!(
        pos == DICTIONARY_LEN,
        "SPDY/3 dictionary has the wrong length"
    );
    out
}

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const FLAG_SETTINGS_CLEAR: u8 = 0x01;

/// A decoded SPDY/3.1 frame; the unit the connection layer reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Stream payload. An empty DATA frame with `fin` is how spdystream half-closes.
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// Opens a stream (kubectl opens one per `streamtype`, odd ids, priority 0).
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) ..= 7.
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    /// Accepts a stream; kubectl waits for it before writing.
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Aborts a stream (kubectl sends CANCEL for every open stream at the end).
    RstStream { stream_id: u32, status: RstStatus },
    /// Connection settings; spdystream parses and ignores them.
    Settings { clear: bool, entries: Vec<Setting> },
    /// Liveness probe; the receiver echoes the same id.
    Ping { id: u32 },
    /// Connection shutdown.
    GoAway {
        last_good_stream_id: u32,
        status: GoAwayStatus,
    },
    /// Extra headers on a stream. Valid SPDY, but kubectl stalls on them (pitfall P16):
    /// never send one to kubectl.
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Flow-control credit (stream 0 = whole session); spdystream ignores it.
    WindowUpdate { stream_id: u32, delta: u32 },
    /// A version-3 control frame of a type this codec does not know (5 NOOP from
    /// SPDY/2, 10 CREDENTIAL, anything newer). The spec says to ignore these, so decoding
    /// hands them over instead of failing and the caller decides (normally: skip).
    /// spdystream treats them as fatal, so never send one to kubectl; encoding one is
    /// allowed only so tests can reproduce that.
    Unknown {
        frame_type: u16,
        flags: u8,
        payload: Bytes,
    },
}

impl Frame {
    /// The stream a frame belongs to, for dispatch; `None` for connection-level frames
    /// (SETTINGS, PING, GOAWAY, unknown, and WINDOW_UPDATE for stream 0).
    pub fn stream_id(&self) -> Option<u32> {
        match self {
            Frame::Data { stream_id, .. }
            | Frame::SynStream { stream_id, .. }
            | Frame::SynReply { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::Headers { stream_id, .. } => Some(*stream_id),
            Frame::WindowUpdate { stream_id, .. } if *stream_id != 0 => Some(*stream_id),
            _ => None,
        }
    }
}

/// RST_STREAM status code; named so callers do not juggle magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RstStatus {
    ProtocolError,
    InvalidStream,
    RefusedStream,
    UnsupportedVersion,
    /// What spdystream's `Reset()` sends.
    Cancel,
    InternalError,
    FlowControlError,
    StreamInUse,
    StreamAlreadyClosed,
    InvalidCredentials,
    FrameTooLarge,
    /// Any other non-zero code (0 is invalid on the wire).
    Other(u32),
}

impl From<u32> for RstStatus {
    fn from(code: u32) -> Self {
        match code {
            1 => RstStatus::ProtocolError,
            2 => RstStatus::InvalidStream,
            3 => RstStatus::RefusedStream,
            4 => RstStatus::UnsupportedVersion,
            5 => RstStatus::Cancel,
            6 => RstStatus::InternalError,
            7 => RstStatus::FlowControlError,
            8 => RstStatus::StreamInUse,
            9 => RstStatus::StreamAlreadyClosed,
            10 => RstStatus::InvalidCredentials,
            11 => RstStatus::FrameTooLarge,
            other => RstStatus::Other(other),
        }
    }
}

impl From<RstStatus> for u32 {
    fn from(status: RstStatus) -> Self {
        match status {
            RstStatus::ProtocolError => 1,
            RstStatus::InvalidStream => 2,
            RstStatus::RefusedStream => 3,
            RstStatus::UnsupportedVersion => 4,
            RstStatus::Cancel => 5,
            RstStatus::InternalError => 6,
            RstStatus::FlowControlError => 7,
            RstStatus::StreamInUse => 8,
            RstStatus::StreamAlreadyClosed => 9,
            RstStatus::InvalidCredentials => 10,
            RstStatus::FrameTooLarge => 11,
            RstStatus::Other(code) => code,
        }
    }
}

/// GOAWAY status code; named so callers do not juggle magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoAwayStatus {
    /// Normal shutdown (what kubectl sends).
    Ok,
    ProtocolError,
    InternalError,
    /// Any other code.
    Other(u32),
}

impl From<u32> for GoAwayStatus {
    fn from(code: u32) -> Self {
        match code {
            0 => GoAwayStatus::Ok,
            1 => GoAwayStatus::ProtocolError,
            2 => GoAwayStatus::InternalError,
            other => GoAwayStatus::Other(other),
        }
    }
}

impl From<GoAwayStatus> for u32 {
    fn from(status: GoAwayStatus) -> Self {
        match status {
            GoAwayStatus::Ok => 0,
            GoAwayStatus::ProtocolError => 1,
            GoAwayStatus::InternalError => 2,
            GoAwayStatus::Other(code) => code,
        }
    }
}

/// One SETTINGS entry, kept raw because nobody in Kubernetes acts on settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Setting {
    /// `FLAG_PERSIST_VALUE` / `FLAG_PERSISTED` bits.
    pub flags: u8,
    /// 24-bit setting id (e.g. [`Setting::INITIAL_WINDOW_SIZE`]).
    pub id: u32,
    /// The setting's value.
    pub value: u32,
}

impl Setting {
    /// Flag: the receiver should persist this value.
    pub const FLAG_PERSIST_VALUE: u8 = 0x01;
    /// Flag: this value was persisted earlier.
    pub const FLAG_PERSISTED: u8 = 0x02;
    /// Id of the maximum-concurrent-streams setting.
    pub const MAX_CONCURRENT_STREAMS: u32 = 4;
    /// Id of the initial-window-size setting.
    pub const INITIAL_WINDOW_SIZE: u32 = 7;
}

/// Header name/value pairs of a SYN_STREAM, SYN_REPLY or HEADERS frame, in wire order.
///
/// Names are lower-cased on insertion and unique (SPDY and spdystream require both), so
/// every `Headers` built through this API encodes to a block kubectl accepts. A value may
/// carry several values joined by a NUL byte; [`Headers::get_all`] splits them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// An empty header set (what a SYN_REPLY to kubectl carries).
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, name: &str) -> Option<usize> {
        let lower;
        let key = if name.chars().any(char::is_uppercase) {
            lower = name.to_lowercase();
            lower.as_str()
        } else {
            name
        };
        self.0.iter().position(|(n, _)| n == key)
    }

    /// The raw value of `name` (case-insensitive), NUL separators included.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name).map(|i| self.0[i].1.as_str())
    }

    /// Every value of `name` (case-insensitive), split at NUL bytes.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.get(name).into_iter().flat_map(|v| v.split('\0'))
    }

    /// Sets `name` (lower-cased) to `value`, replacing any previous value in place;
    /// returns the previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let name = name.into().to_lowercase();
        let value = value.into();
        match self.position(&name) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((name, value));
                None
            }
        }
    }

    /// Adds one more value to `name` (lower-cased), NUL-joined with any existing value.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into().to_lowercase();
        let value = value.into();
        match self.position(&name) {
            Some(i) => {
                let v = &mut self.0[i].1;
                v.push('\0');
                v.push_str(&value);
            }
            None => self.0.push((name, value)),
        }
    }

    /// Removes `name` (case-insensitive) and returns its raw value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.position(name).map(|i| self.0.remove(i).1)
    }

    /// The pairs in wire order, values raw.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(pair_as_strs)
    }

    /// Number of distinct names.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    /// Collects pairs with [`Headers::append`] semantics (repeated names become
    /// NUL-joined values).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut h = Headers::new();
        for (k, v) in iter {
            h.append(k, v);
        }
        h
    }
}

fn pair_as_strs(pair: &(String, String)) -> (&str, &str) {
    (pair.0.as_str(), pair.1.as_str())
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0
            .iter()
            .map(pair_as_strs as fn(&'a (String, String)) -> (&'a str, &'a str))
    }
}

/// Why a frame could not be decoded or encoded; every variant is a connection error.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    /// A control frame carried a version other than 3.
    #[error("unsupported SPDY version {0}")]
    UnsupportedVersion(u16),
    /// A frame's payload exceeds the configured (or the 24-bit) maximum.
    #[error("SPDY frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge { len: usize, max: usize },
    /// A header block would decompress (or, when encoding, serialize) past the limit.
    #[error("SPDY header block exceeds the limit of {max} bytes")]
    HeaderBlockTooLarge { max: usize },
    /// A frame violates the SPDY/3 rules spdystream enforces.
    #[error("invalid SPDY {frame} frame: {reason}")]
    InvalidFrame {
        frame: &'static str,
        reason: &'static str,
    },
    /// A decompressed header block is malformed.
    #[error("bad SPDY header block: {0}")]
    BadHeaderBlock(&'static str),
    /// The peer's zlib stream asks for a dictionary other than the SPDY/3 one.
    #[error("SPDY header block wants unknown zlib dictionary {0:#010x}")]
    UnknownDictionary(u32),
    /// The incoming zlib stream is corrupt.
    #[error("SPDY header decompression failed: {0}")]
    Decompress(#[from] flate2::DecompressError),
    /// The outgoing zlib stream failed.
    #[error("SPDY header compression failed: {0}")]
    Compress(#[from] flate2::CompressError),
    /// A previous error left this direction's zlib context unusable.
    #[error("SPDY header compression context lost after an earlier error")]
    ContextLost,
    /// Transport error (only produced through the `tokio_util` codec traits).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

fn invalid(frame: &'static str, reason: &'static str) -> SpdyError {
    SpdyError::InvalidFrame { frame, reason }
}

fn frame_name(frame_type: u16) -> &'static str {
    match frame_type {
        TYPE_SYN_STREAM => "SYN_STREAM",
        TYPE_SYN_REPLY => "SYN_REPLY",
        TYPE_RST_STREAM => "RST_STREAM",
        TYPE_SETTINGS => "SETTINGS",
        TYPE_PING => "PING",
        TYPE_GOAWAY => "GOAWAY",
        TYPE_HEADERS => "HEADERS",
        TYPE_WINDOW_UPDATE => "WINDOW_UPDATE",
        _ => "unknown control",
    }
}

/// Per-connection codec state: one zlib compressor for outgoing header blocks and one
/// decompressor for incoming ones, both using the SPDY/3 dictionary and both living as
/// long as the connection (the peer's zlib contexts do too).
pub struct Codec {
    /// Created on first use: a deflater holds ~256 KiB, and a session's reading codec
    /// never compresses (nor its writing codec inflates).
    deflate: Option<Compress>,
    inflate: Option<Decompress>,
    deflate_ok: bool,
    inflate_ok: bool,
    max_frame_len: usize,
    max_header_block: usize,
    /// Reused scratch space for serializing and compressing outgoing header blocks.
    plain: Vec<u8>,
    packed: Vec<u8>,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("deflate_ok", &self.deflate_ok)
            .field("inflate_ok", &self.inflate_ok)
            .field("max_frame_len", &self.max_frame_len)
            .field("max_header_block", &self.max_header_block)
            .finish_non_exhaustive()
    }
}

impl Default for Codec {
    fn default() -> Self {
        Self::new()
    }
}

impl Codec {
    /// A codec for one new connection, with the default limits (frames up to the 24-bit
    /// maximum, header blocks up to [`DEFAULT_MAX_HEADER_BLOCK`] decompressed).
    pub fn new() -> Self {
        Self::with_limits(MAX_FRAME_LEN, DEFAULT_MAX_HEADER_BLOCK)
    }

    /// A codec with tighter limits: `max_frame_len` caps any frame's payload (clamped to
    /// [`MAX_FRAME_LEN`]), `max_header_block` caps a header block after decompression on
    /// decode and before compression on encode (clamped to `u32::MAX`).
    pub fn with_limits(max_frame_len: usize, max_header_block: usize) -> Self {
        Codec {
            deflate: None,
            inflate: None,
            deflate_ok: true,
            inflate_ok: true,
            max_frame_len: max_frame_len.min(MAX_FRAME_LEN),
            max_header_block: max_header_block.min(u32::MAX as usize),
            plain: Vec::new(),
            packed: Vec::new(),
        }
    }

    /// Tries to decode one frame from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold a whole frame; `buf` is then left
    /// as it was (only its capacity may grow). On success the frame's bytes are consumed.
    /// Unknown control frame types come back as [`Frame::Unknown`] (consumed) rather
    /// than as errors. Oversized frames and fixed-size control frames with a wrong length
    /// are refused as soon as their 8-byte header is in.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word0 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let word1 = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let flags = (word1 >> 24) as u8;
        let len = (word1 & 0x00FF_FFFF) as usize;
        let control = word0 & 0x8000_0000 != 0;
        let frame_type = word0 as u16;
        if control {
            let version = ((word0 >> 16) & 0x7FFF) as u16;
            if version != SPDY_VERSION {
                return Err(SpdyError::UnsupportedVersion(version));
            }
            check_control_len(frame_type, flags, len)?;
        }
        if len > self.max_frame_len {
            return Err(SpdyError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        let total = 8 + len;
        if buf.len() < total {
            // Grow in bounded steps so a bare 8-byte header cannot make us allocate 16 MiB.
            buf.reserve((total - buf.len()).min(64 * 1024));
            return Ok(None);
        }
        let mut payload = buf.split_to(total).freeze();
        payload.advance(8);
        if control {
            self.decode_control(frame_type, flags, payload).map(Some)
        } else {
            let stream_id = word0 & MAX_STREAM_ID;
            if stream_id == 0 {
                return Err(invalid("DATA", "stream id 0"));
            }
            Ok(Some(Frame::Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                data: payload,
            }))
        }
    }

    fn decode_control(
        &mut self,
        frame_type: u16,
        flags: u8,
        mut p: Bytes,
    ) -> Result<Frame, SpdyError> {
        let name = frame_name(frame_type);
        // Lengths were checked by `check_control_len`, so the fixed fields are present.
        match frame_type {
            TYPE_SYN_STREAM => {
                let stream_id = p.get_u32() & MAX_STREAM_ID;
                let associated_to = p.get_u32() & MAX_STREAM_ID;
                let priority = p.get_u8() >> 5;
                let _slot = p.get_u8();
                let headers = self.decode_header_block(&p)?;
                if stream_id == 0 {
                    return Err(invalid(name, "stream id 0"));
                }
                Ok(Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    fin: flags & FLAG_FIN != 0,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers,
                })
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                let stream_id = p.get_u32() & MAX_STREAM_ID;
                let headers = self.decode_header_block(&p)?;
                if stream_id == 0 {
                    return Err(invalid(name, "stream id 0"));
                }
                let fin = flags & FLAG_FIN != 0;
                Ok(if frame_type == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                })
            }
            TYPE_RST_STREAM => {
                let stream_id = p.get_u32() & MAX_STREAM_ID;
                let status = p.get_u32();
                if stream_id == 0 {
                    return Err(invalid(name, "stream id 0"));
                }
                if status == 0 {
                    return Err(invalid(name, "status 0"));
                }
                Ok(Frame::RstStream {
                    stream_id,
                    status: status.into(),
                })
            }
            TYPE_SETTINGS => {
                let count = p.get_u32() as usize;
                if p.len() / 8 != count || !p.len().is_multiple_of(8) {
                    return Err(invalid(name, "entry count does not match length"));
                }
                let entries = (0..count)
                    .map(|_| {
                        let flag_id = p.get_u32();
                        Setting {
                            flags: (flag_id >> 24) as u8,
                            id: flag_id & 0x00FF_FFFF,
                            value: p.get_u32(),
                        }
                    })
                    .collect();
                Ok(Frame::Settings {
                    clear: flags & FLAG_SETTINGS_CLEAR != 0,
                    entries,
                })
            }
            TYPE_PING => {
                let id = p.get_u32();
                if id == 0 {
                    return Err(invalid(name, "id 0"));
                }
                Ok(Frame::Ping { id })
            }
            TYPE_GOAWAY => Ok(Frame::GoAway {
                last_good_stream_id: p.get_u32() & MAX_STREAM_ID,
                status: p.get_u32().into(),
            }),
            TYPE_WINDOW_UPDATE => Ok(Frame::WindowUpdate {
                stream_id: p.get_u32() & MAX_STREAM_ID,
                delta: p.get_u32() & 0x7FFF_FFFF,
            }),
            _ => Ok(Frame::Unknown {
                frame_type,
                flags,
                payload: p,
            }),
        }
    }

    /// Inflates one header block with the connection's shared context and parses it.
    fn decode_header_block(&mut self, input: &[u8]) -> Result<Headers, SpdyError> {
        if !self.inflate_ok {
            return Err(SpdyError::ContextLost);
        }
        // Any failure below leaves the shared inflater mid-block: poison it.
        self.inflate_ok = false;
        let inflate = self.inflate.get_or_insert_with(|| Decompress::new(true));
        let plain = inflate_block(inflate, input, self.max_header_block)?;
        self.inflate_ok = true;
        parse_header_block(&plain)
    }

    /// Appends the wire encoding of `frame` to `out`.
    ///
    /// Frames spdystream would reject (stream id 0 or above 2^31-1, priority above 7, RST
    /// status 0, PING id 0, oversized payloads, empty header names, unknown frames that
    /// reuse a known type number) are refused before anything is written or compressed,
    /// so a refused frame never disturbs the outgoing zlib context.
    pub fn encode(&mut self, frame: &Frame, out: &mut BytesMut) -> Result<(), SpdyError> {
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                check_stream_id("DATA", *stream_id)?;
                self.check_len(data.len())?;
                out.reserve(8 + data.len());
                out.put_u32(*stream_id);
                out.put_u32(flags_len(fin_flag(*fin), data.len()));
                out.put_slice(data);
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                check_stream_id("SYN_STREAM", *stream_id)?;
                if *associated_to > MAX_STREAM_ID {
                    return Err(invalid("SYN_STREAM", "associated stream id above 2^31-1"));
                }
                if *priority > 7 {
                    return Err(invalid("SYN_STREAM", "priority above 7"));
                }
                let mut flags = fin_flag(*fin);
                if *unidirectional {
                    flags |= FLAG_UNIDIRECTIONAL;
                }
                self.compress_headers(headers)?;
                let len = 10 + self.packed.len();
                self.check_len(len)?;
                put_control_header(out, TYPE_SYN_STREAM, flags, len);
                out.put_u32(*stream_id);
                out.put_u32(*associated_to);
                out.put_u8(*priority << 5);
                out.put_u8(0);
                out.put_slice(&self.packed);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            }
            | Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let frame_type = if matches!(frame, Frame::SynReply { .. }) {
                    TYPE_SYN_REPLY
                } else {
                    TYPE_HEADERS
                };
                check_stream_id(frame_name(frame_type), *stream_id)?;
                self.compress_headers(headers)?;
                let len = 4 + self.packed.len();
                self.check_len(len)?;
                put_control_header(out, frame_type, fin_flag(*fin), len);
                out.put_u32(*stream_id);
                out.put_slice(&self.packed);
            }
            Frame::RstStream { stream_id, status } => {
                check_stream_id("RST_STREAM", *stream_id)?;
                let status = u32::from(*status);
                if status == 0 {
                    return Err(invalid("RST_STREAM", "status 0"));
                }
                put_control_header(out, TYPE_RST_STREAM, 0, 8);
                out.put_u32(*stream_id);
                out.put_u32(status);
            }
            Frame::Settings { clear, entries } => {
                if entries.iter().any(|e| e.id > 0x00FF_FFFF) {
                    return Err(invalid("SETTINGS", "setting id above 2^24-1"));
                }
                let len = entries
                    .len()
                    .checked_mul(8)
                    .and_then(|n| n.checked_add(4))
                    .unwrap_or(usize::MAX);
                self.check_len(len)?;
                let flags = if *clear { FLAG_SETTINGS_CLEAR } else { 0 };
                put_control_header(out, TYPE_SETTINGS, flags, len);
                out.put_u32(entries.len() as u32);
                for e in entries {
                    out.put_u32((u32::from(e.flags) << 24) | e.id);
                    out.put_u32(e.value);
                }
            }
            Frame::Ping { id } => {
                if *id == 0 {
                    return Err(invalid("PING", "id 0"));
                }
                put_control_header(out, TYPE_PING, 0, 4);
                out.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                if *last_good_stream_id > MAX_STREAM_ID {
                    return Err(invalid("GOAWAY", "stream id above 2^31-1"));
                }
                put_control_header(out, TYPE_GOAWAY, 0, 8);
                out.put_u32(*last_good_stream_id);
                out.put_u32((*status).into());
            }
            Frame::WindowUpdate { stream_id, delta } => {
                if *stream_id > MAX_STREAM_ID {
                    return Err(invalid("WINDOW_UPDATE", "stream id above 2^31-1"));
                }
                if *delta > 0x7FFF_FFFF {
                    return Err(invalid("WINDOW_UPDATE", "delta above 2^31-1"));
                }
                put_control_header(out, TYPE_WINDOW_UPDATE, 0, 8);
                out.put_u32(*stream_id);
                out.put_u32(*delta);
            }
            Frame::Unknown {
                frame_type,
                flags,
                payload,
            } => {
                if frame_name(*frame_type) != "unknown control" {
                    return Err(invalid(
                        frame_name(*frame_type),
                        "known frame type given as Frame::Unknown",
                    ));
                }
                self.check_len(payload.len())?;
                put_control_header(out, *frame_type, *flags, payload.len());
                out.put_slice(payload);
            }
        }
        Ok(())
    }

    fn check_len(&self, len: usize) -> Result<(), SpdyError> {
        if len > self.max_frame_len {
            return Err(SpdyError::FrameTooLarge {
                len,
                max: self.max_frame_len,
            });
        }
        Ok(())
    }

    /// Serializes and compresses `headers` into `self.packed` with the shared deflater.
    fn compress_headers(&mut self, headers: &Headers) -> Result<(), SpdyError> {
        if !self.deflate_ok {
            return Err(SpdyError::ContextLost);
        }
        let plain_len = 4 + headers
            .0
            .iter()
            .map(|(n, v)| 8 + n.len() + v.len())
            .sum::<usize>();
        if plain_len > self.max_header_block {
            return Err(SpdyError::HeaderBlockTooLarge {
                max: self.max_header_block,
            });
        }
        if headers.0.iter().any(|(n, _)| n.is_empty()) {
            return Err(SpdyError::BadHeaderBlock("empty header name"));
        }
        self.plain.clear();
        self.plain.reserve(plain_len);
        // Lengths fit in u32: the whole block is at most `max_header_block`, which
        // `with_limits` clamps to u32::MAX.
        self.plain.put_u32(headers.0.len() as u32);
        for (n, v) in &headers.0 {
            self.plain.put_u32(n.len() as u32);
            self.plain.put_slice(n.as_bytes());
            self.plain.put_u32(v.len() as u32);
            self.plain.put_slice(v.as_bytes());
        }
        self.deflate_ok = false;
        let deflate = match &mut self.deflate {
            Some(d) => d,
            None => {
                // Priming a fresh deflater cannot fail; if it somehow did, every later
                // header block reports ContextLost instead of sending bytes the peer
                // cannot inflate.
                let mut d = Compress::new(Compression::default(), true);
                d.set_dictionary(&SPDY3_DICTIONARY)
                    .map_err(|_| SpdyError::ContextLost)?;
                self.deflate.insert(d)
            }
        };
        deflate_block(deflate, &self.plain, &mut self.packed)?;
        self.deflate_ok = true;
        Ok(())
    }
}

fn fin_flag(fin: bool) -> u8 {
    if fin { FLAG_FIN } else { 0 }
}

fn flags_len(flags: u8, len: usize) -> u32 {
    (u32::from(flags) << 24) | ((len as u32) & 0x00FF_FFFF)
}

fn put_control_header(out: &mut BytesMut, frame_type: u16, flags: u8, len: usize) {
    out.reserve(8 + len);
    out.put_u16(0x8000 | SPDY_VERSION);
    out.put_u16(frame_type);
    out.put_u32(flags_len(flags, len));
}

fn check_stream_id(frame: &'static str, id: u32) -> Result<(), SpdyError> {
    if id == 0 {
        return Err(invalid(frame, "stream id 0"));
    }
    if id > MAX_STREAM_ID {
        return Err(invalid(frame, "stream id above 2^31-1"));
    }
    Ok(())
}

/// Checks a control frame's declared length (and flags where spdystream is strict)
/// from its header alone, so malformed frames fail before their payload arrives.
fn check_control_len(frame_type: u16, flags: u8, len: usize) -> Result<(), SpdyError> {
    let name = frame_name(frame_type);
    match frame_type {
        TYPE_SYN_STREAM if len < 10 => Err(invalid(name, "shorter than 10 bytes")),
        TYPE_SYN_REPLY | TYPE_HEADERS if len < 4 => Err(invalid(name, "shorter than 4 bytes")),
        TYPE_RST_STREAM if len != 8 => Err(invalid(name, "length is not 8")),
        TYPE_SETTINGS if len < 4 || !(len - 4).is_multiple_of(8) => {
            Err(invalid(name, "length is not 4 + 8n"))
        }
        TYPE_PING if len != 4 => Err(invalid(name, "length is not 4")),
        TYPE_PING if flags != 0 => Err(invalid(name, "non-zero flags")),
        TYPE_GOAWAY | TYPE_WINDOW_UPDATE if len != 8 => Err(invalid(name, "length is not 8")),
        TYPE_GOAWAY | TYPE_WINDOW_UPDATE if flags != 0 => Err(invalid(name, "non-zero flags")),
        _ => Ok(()),
    }
}

/// Runs one sync-flushed header block through the connection's inflater, supplying the
/// SPDY dictionary when zlib asks, and refuses output beyond `limit` bytes. All of
/// `input` must be consumed (spdystream's "compressed payload size was incorrect").
fn inflate_block(d: &mut Decompress, input: &[u8], limit: usize) -> Result<Vec<u8>, SpdyError> {
    let cap_limit = limit.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(input.len().saturating_mul(4).clamp(64, cap_limit));
    let mut consumed = 0usize;
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(SpdyError::HeaderBlockTooLarge { max: limit });
            }
            let grow = out.capacity().max(64).min(cap_limit - out.len());
            out.reserve_exact(grow);
        }
        let (in0, out0) = (d.total_in(), d.total_out());
        let res = d.decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync);
        let din = (d.total_in() - in0) as usize;
        let dout = (d.total_out() - out0) as usize;
        consumed += din;
        if out.len() > limit {
            return Err(SpdyError::HeaderBlockTooLarge { max: limit });
        }
        match res {
            Ok(Status::StreamEnd) => {
                // The peer ended its zlib stream; nothing after this block can be read.
                if consumed != input.len() {
                    return Err(SpdyError::BadHeaderBlock("data after end of zlib stream"));
                }
                return Err(SpdyError::BadHeaderBlock("peer finished its zlib stream"));
            }
            Ok(_) => {}
            Err(e) => match e.needs_dictionary() {
                Some(SPDY3_DICTIONARY_ADLER32) => {
                    d.set_dictionary(&SPDY3_DICTIONARY)?;
                    continue;
                }
                Some(other) => return Err(SpdyError::UnknownDictionary(other)),
                None => return Err(e.into()),
            },
        }
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if din == 0 && dout == 0 && out.len() < out.capacity() {
            return Err(SpdyError::BadHeaderBlock("zlib made no progress"));
        }
    }
}

/// Compresses one header block with the connection's deflater and a sync flush, so the
/// peer can inflate it completely while the zlib stream stays open for the next block.
fn deflate_block(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) -> Result<(), SpdyError> {
    out.clear();
    out.reserve(input.len() + input.len() / 8 + 64);
    let mut consumed = 0usize;
    loop {
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(64));
        }
        let (in0, out0) = (c.total_in(), c.total_out());
        c.compress_vec(&input[consumed..], out, FlushCompress::Sync)?;
        let din = (c.total_in() - in0) as usize;
        let dout = (c.total_out() - out0) as usize;
        consumed += din;
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(());
        }
        if din == 0 && dout == 0 && out.len() < out.capacity() {
            return Err(SpdyError::BadHeaderBlock(
                "zlib compressor made no progress",
            ));
        }
    }
}

/// Parses a decompressed name/value block (32-bit counts and lengths), enforcing what
/// spdystream enforces: non-empty, lowercase, unique names; nothing left over.
fn parse_header_block(block: &[u8]) -> Result<Headers, SpdyError> {
    fn take_u32(p: &mut &[u8]) -> Result<usize, SpdyError> {
        if p.len() < 4 {
            return Err(SpdyError::BadHeaderBlock("truncated length field"));
        }
        let v = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
        *p = &p[4..];
        Ok(v as usize)
    }
    fn take_str<'a>(p: &mut &'a [u8]) -> Result<&'a str, SpdyError> {
        let len = take_u32(p)?;
        if p.len() < len {
            return Err(SpdyError::BadHeaderBlock("length runs past end of block"));
        }
        let (s, rest) = p.split_at(len);
        *p = rest;
        std::str::from_utf8(s).map_err(|_| SpdyError::BadHeaderBlock("header is not UTF-8"))
    }

    let mut p = block;
    let count = take_u32(&mut p)?;
    // Each pair needs at least 8 bytes, so a lying count cannot make us over-allocate.
    if count > p.len() / 8 {
        return Err(SpdyError::BadHeaderBlock("count larger than the block"));
    }
    let mut pairs = Vec::with_capacity(count);
    let mut seen = HashSet::with_capacity(count);
    for _ in 0..count {
        let name = take_str(&mut p)?;
        let value = take_str(&mut p)?;
        if name.is_empty() {
            return Err(SpdyError::BadHeaderBlock("empty header name"));
        }
        if name.chars().any(|c| c.is_uppercase()) {
            return Err(SpdyError::BadHeaderBlock("header name not lowercase"));
        }
        if !seen.insert(name) {
            return Err(SpdyError::BadHeaderBlock("duplicate header name"));
        }
        pairs.push((name.to_owned(), value.to_owned()));
    }
    if !p.is_empty() {
        return Err(SpdyError::BadHeaderBlock(
            "trailing bytes after last header",
        ));
    }
    Ok(Headers(pairs))
}

/// Lets a `Codec` drive `tokio_util::codec::Framed` directly.
impl tokio_util::codec::Decoder for Codec {
    type Item = Frame;
    type Error = SpdyError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        Codec::decode(self, src)
    }
}

/// Lets a `Codec` drive `tokio_util::codec::Framed` directly.
impl tokio_util::codec::Encoder<Frame> for Codec {
    type Error = SpdyError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), SpdyError> {
        Codec::encode(self, &frame, dst)
    }
}

/// Lets a `Codec` encode borrowed frames through `tokio_util`'s `Encoder` as well.
impl tokio_util::codec::Encoder<&Frame> for Codec {
    type Error = SpdyError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), SpdyError> {
        Codec::encode(self, frame, dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s
            .bytes()
            .filter(|b| b.is_ascii_hexdigit())
            .map(|b| (b as char).to_digit(16).unwrap() as u8)
            .collect();
        assert!(digits.len().is_multiple_of(2), "odd hex string");
        digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect()
    }

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().copied().collect()
    }

    fn encode_all(codec: &mut Codec, frames: &[Frame]) -> BytesMut {
        let mut out = BytesMut::new();
        for f in frames {
            codec.encode(f, &mut out).unwrap();
        }
        out
    }

    fn decode_all(codec: &mut Codec, buf: &mut BytesMut) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(f) = codec.decode(buf).unwrap() {
            frames.push(f);
        }
        frames
    }

    /// One frame of every kind, header-bearing ones several times to exercise the
    /// shared zlib context.
    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers(&[("streamtype", "error")]),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Headers::new(),
            },
            Frame::SynStream {
                stream_id: 3,
                associated_to: 1,
                priority: 7,
                fin: true,
                unidirectional: true,
                headers: headers(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]),
            },
            Frame::Data {
                stream_id: 3,
                fin: false,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 5,
                status: RstStatus::Cancel,
            },
            Frame::RstStream {
                stream_id: 7,
                status: RstStatus::Other(42),
            },
            Frame::Settings {
                clear: true,
                entries: vec![
                    Setting {
                        flags: Setting::FLAG_PERSIST_VALUE,
                        id: Setting::INITIAL_WINDOW_SIZE,
                        value: 65536,
                    },
                    Setting {
                        flags: 0,
                        id: 0x00FF_FFFF,
                        value: u32::MAX,
                    },
                ],
            },
            Frame::Settings {
                clear: false,
                entries: vec![],
            },
            Frame::Ping { id: 1 },
            Frame::Ping { id: u32::MAX },
            Frame::GoAway {
                last_good_stream_id: 0,
                status: GoAwayStatus::Ok,
            },
            Frame::GoAway {
                last_good_stream_id: MAX_STREAM_ID,
                status: GoAwayStatus::InternalError,
            },
            Frame::Headers {
                stream_id: 9,
                fin: true,
                headers: headers(&[("x-multi", "a"), ("x-multi", "b"), ("empty", "")]),
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 0x7FFF_FFFF,
            },
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 1,
            },
            Frame::Unknown {
                frame_type: 5,
                flags: 0xAB,
                payload: Bytes::from_static(b"noop"),
            },
            Frame::SynReply {
                stream_id: MAX_STREAM_ID,
                fin: true,
                headers: headers(&[("streamtype", "error")]),
            },
        ]
    }

    #[test]
    fn dictionary_is_byte_exact() {
        assert_eq!(SPDY3_DICTIONARY.len(), 1423);
        assert_eq!(adler32(&SPDY3_DICTIONARY), SPDY3_DICTIONARY_ADLER32);
        // zlib itself agrees on the id it will put into our first block.
        let mut c = Compress::new(Compression::default(), true);
        assert_eq!(
            c.set_dictionary(&SPDY3_DICTIONARY).unwrap(),
            SPDY3_DICTIONARY_ADLER32
        );
        assert!(SPDY3_DICTIONARY.starts_with(b"\x00\x00\x00\x07options\x00\x00\x00\x04head"));
        assert!(SPDY3_DICTIONARY.ends_with(b",*,enq=0."));
    }

    #[test]
    fn round_trip_every_frame_type() {
        let frames = sample_frames();
        let mut tx = Codec::new();
        let mut rx = Codec::new();
        let mut wire = encode_all(&mut tx, &frames);
        let total = wire.len();
        let got = decode_all(&mut rx, &mut wire);
        assert!(wire.is_empty(), "all {total} bytes consumed");
        assert_eq!(got, frames);
        // Multi-valued header survives as one NUL-joined value.
        let Frame::Headers { headers, .. } = &got[13] else {
            panic!("expected HEADERS, got {:?}", got[13]);
        };
        assert_eq!(headers.get("x-multi"), Some("a\0b"));
        assert_eq!(headers.get_all("X-Multi").collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn empty_syn_reply_is_small() {
        // §4.4 observed a 16-byte block for an empty first SYN_REPLY; ours is comparable.
        let mut out = BytesMut::new();
        let reply = Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: Headers::new(),
        };
        Codec::new().encode(&reply, &mut out).unwrap();
        assert_eq!(&out[..12], &hex("80 03 00 02 00 00 00 14 00 00 00 01")[..]);
        assert_eq!(out.len(), 12 + 16);
    }

    #[test]
    fn fixed_frames_match_observed_bytes() {
        // Byte-exact expectations from exec-protocols.md §4.4.
        let mut c = Codec::new();
        let cases: Vec<(Frame, &str)> = vec![
            (
                Frame::RstStream {
                    stream_id: 3,
                    status: RstStatus::Cancel,
                },
                "80 03 00 03 00 00 00 08 00 00 00 03 00 00 00 05",
            ),
            (
                Frame::GoAway {
                    last_good_stream_id: 0,
                    status: GoAwayStatus::Ok,
                },
                "80 03 00 07 00 00 00 08 00 00 00 00 00 00 00 00",
            ),
            (
                Frame::Data {
                    stream_id: 3,
                    fin: false,
                    data: Bytes::from_static(b"ok\n"),
                },
                "00 00 00 03 00 00 00 03 6F 6B 0A",
            ),
            (
                Frame::Data {
                    stream_id: 3,
                    fin: true,
                    data: Bytes::new(),
                },
                "00 00 00 03 01 00 00 00",
            ),
            (Frame::Ping { id: 3 }, "80 03 00 06 00 00 00 04 00 00 00 03"),
        ];
        for (frame, expected) in cases {
            let mut out = BytesMut::new();
            c.encode(&frame, &mut out).unwrap();
            assert_eq!(&out[..], &hex(expected)[..], "{frame:?}");
        }
    }

    /// The C→S half of the §4.4 dump: kubectl's own compressed SYN_STREAMs (one zlib
    /// stream across both), then its RST_STREAMs and GOAWAY.
    const KUBECTL_C2S: &str = "
        80 03 00 01 00 00 00 29 00 00 00 01 00 00 00 00 00 00
        78 F9 E3 C6 A7 C2 62 60 60 60 04 A7 B3 92 A2 D4 C4 5C 68 51 C2 9A 0A 0A 68
        00 00 00 00 FF FF
        80 03 00 01 00 00 00 19 00 00 00 03 00 00 00 00 00 00
        C2 2A C5 56 5C 92 92 5F 5A 02 00 00 00 FF FF
        80 03 00 03 00 00 00 08 00 00 00 03 00 00 00 05
        80 03 00 07 00 00 00 08 00 00 00 00 00 00 00 00";

    #[test]
    fn decodes_kubectl_byte_dump() {
        let mut rx = Codec::new();
        let mut buf = BytesMut::from(&hex(KUBECTL_C2S)[..]);
        let frames = decode_all(&mut rx, &mut buf);
        assert!(buf.is_empty());
        let expect_syn = |id, ty| Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[("streamtype", ty)]),
        };
        assert_eq!(
            frames,
            vec![
                expect_syn(1, "error"),
                expect_syn(3, "stdout"),
                Frame::RstStream {
                    stream_id: 3,
                    status: RstStatus::Cancel
                },
                Frame::GoAway {
                    last_good_stream_id: 0,
                    status: GoAwayStatus::Ok
                },
            ]
        );
        assert_eq!(frames[1].stream_id(), Some(3));
        assert_eq!(frames[3].stream_id(), None);
    }

    /// Everything kubectl v1.32.5 sent for `printf 'line1\nline2\n' | kubectl exec -i p1
    /// -- cat` over SPDY (captured on loopback against a harness built on this codec).
    const KUBECTL_EXEC_STDIN: &str = "
        80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800
        000000ffff800300010000001700000003000000000000c22e555c92929907000000ffff8003000100000019
        00000005000000000000c22ac5565c92925f5a02000000ffff800300010000001500000007000000000000c2
        29975a5404000000ffff000000030000000c6c696e65310a6c696e65320a0000000301000000800300030000
        0008000000010000000580030003000000080000000500000005800300030000000800000007000000058003
        0007000000080000000000000000";

    /// Everything kubectl v1.32.5 sent for a plain `kubectl exec` whose output arrived
    /// only after the client's first PING (+5 s), captured the same way.
    const KUBECTL_EXEC_PING: &str = "
        80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800
        000000ffff800300010000001900000003000000000000c22ac5565c92925f5a02000000ffff800300010000
        001500000005000000000000c229975a5404000000ffff800300060000000400000001800300030000000800
        0000010000000580030003000000080000000300000005800300030000000800000005000000058003000700
        0000080000000000000000";

    #[test]
    fn decodes_captured_kubectl_sessions() {
        let syn = |id, ty| Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[("streamtype", ty)]),
        };
        let rst = |id| Frame::RstStream {
            stream_id: id,
            status: RstStatus::Cancel,
        };
        let goaway = Frame::GoAway {
            last_good_stream_id: 0,
            status: GoAwayStatus::Ok,
        };

        let mut buf = BytesMut::from(&hex(KUBECTL_EXEC_STDIN)[..]);
        let frames = decode_all(&mut Codec::new(), &mut buf);
        assert!(buf.is_empty());
        assert_eq!(
            frames,
            vec![
                syn(1, "error"),
                syn(3, "stdin"),
                syn(5, "stdout"),
                syn(7, "stderr"),
                Frame::Data {
                    stream_id: 3,
                    fin: false,
                    data: Bytes::from_static(b"line1\nline2\n"),
                },
                Frame::Data {
                    stream_id: 3,
                    fin: true,
                    data: Bytes::new(),
                },
                rst(1),
                rst(5),
                rst(7),
                goaway.clone(),
            ]
        );

        let mut buf = BytesMut::from(&hex(KUBECTL_EXEC_PING)[..]);
        let frames = decode_all(&mut Codec::new(), &mut buf);
        assert!(buf.is_empty());
        assert_eq!(
            frames,
            vec![
                syn(1, "error"),
                syn(3, "stdout"),
                syn(5, "stderr"),
                Frame::Ping { id: 1 },
                rst(1),
                rst(3),
                rst(5),
                goaway,
            ]
        );
    }

    #[test]
    fn second_block_needs_the_shared_context() {
        // Pitfall P9: the second SYN_STREAM alone cannot be inflated by a fresh context.
        let all = hex(KUBECTL_C2S);
        let second = &all[8 + 0x29..8 + 0x29 + 8 + 0x19];
        let mut fresh = Codec::new();
        let mut buf = BytesMut::from(second);
        assert!(fresh.decode(&mut buf).is_err());
    }

    #[test]
    fn header_context_is_shared_across_frames() {
        let syn = |id| Frame::SynStream {
            stream_id: id,
            associated_to: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[("streamtype", "stdout"), ("x-some-longer-name", "value")]),
        };
        let mut tx = Codec::new();
        let mut first = BytesMut::new();
        tx.encode(&syn(1), &mut first).unwrap();
        let mut second = BytesMut::new();
        tx.encode(&syn(3), &mut second).unwrap();
        // Only the first block carries the zlib header naming the SPDY dictionary.
        // (18 = 8-byte frame header + 10 bytes of SYN_STREAM fields.)
        assert_eq!(first[18], 0x78);
        assert_eq!(first[19] & 0x20, 0x20, "FDICT bit set");
        assert_eq!(&first[20..24], &SPDY3_DICTIONARY_ADLER32.to_be_bytes()[..]);
        assert_ne!(second[18], 0x78);
        assert!(
            second.len() < first.len(),
            "{} !< {}",
            second.len(),
            first.len()
        );
        // Both blocks end with the sync-flush marker.
        assert!(first.ends_with(&[0, 0, 0xFF, 0xFF]));
        assert!(second.ends_with(&[0, 0, 0xFF, 0xFF]));

        let mut rx = Codec::new();
        let mut wire = first;
        wire.extend_from_slice(&second);
        assert_eq!(decode_all(&mut rx, &mut wire), vec![syn(1), syn(3)]);
    }

    #[test]
    fn accepts_blocks_compressed_without_dictionary() {
        let mut c = Compress::new(Compression::fast(), true);
        let mut packed = Vec::new();
        let plain = hex("00000001 00000004 706f7274 00000002 3830");
        deflate_block(&mut c, &plain, &mut packed).unwrap();
        assert_eq!(packed[0], 0x78);
        let mut wire = BytesMut::new();
        wire.put_slice(&hex("80 03 00 02"));
        wire.put_u32(4 + packed.len() as u32);
        wire.put_u32(1);
        wire.put_slice(&packed);
        let f = Codec::new().decode(&mut wire).unwrap().unwrap();
        assert_eq!(
            f,
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: headers(&[("port", "80")]),
            }
        );
    }

    #[test]
    fn every_cut_point_waits_for_more() {
        let frames = sample_frames();
        let wire = encode_all(&mut Codec::new(), &frames);
        for cut in 0..=wire.len() {
            let mut rx = Codec::new();
            let mut buf = BytesMut::from(&wire[..cut]);
            let mut got = Vec::new();
            loop {
                let before = buf.clone();
                match rx.decode(&mut buf).unwrap() {
                    Some(f) => got.push(f),
                    None => {
                        assert_eq!(buf, before, "Ok(None) must leave the buffer untouched");
                        break;
                    }
                }
            }
            buf.extend_from_slice(&wire[cut..]);
            got.extend(decode_all(&mut rx, &mut buf));
            assert!(buf.is_empty());
            assert_eq!(got, frames, "cut at {cut}");
        }
    }

    #[test]
    fn byte_at_a_time_decode() {
        let frames = sample_frames();
        let wire = encode_all(&mut Codec::new(), &frames);
        let mut rx = Codec::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in wire.iter() {
            buf.put_u8(b);
            while let Some(f) = rx.decode(&mut buf).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
    }

    /// Small deterministic PRNG so the garbage tests need no extra crate.
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn drain_without_panic(buf: &mut BytesMut) {
        let mut rx = Codec::with_limits(1 << 16, 1 << 16);
        for _ in 0..10_000 {
            match rx.decode(buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn garbage_errors_instead_of_panicking() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2000 {
            let len = (rng.next() % 300) as usize;
            let mut buf: BytesMut = (0..len).map(|_| rng.next() as u8).collect();
            // Make many of them look like version-3 control frames with small lengths.
            if len >= 8 && rng.next().is_multiple_of(2) {
                buf[0] = 0x80;
                buf[1] = 0x03;
                buf[2] = 0;
                buf[3] = (rng.next() % 11) as u8;
                buf[5] = 0;
                buf[6] = 0;
                buf[7] = (len - 8).min(255) as u8;
            }
            drain_without_panic(&mut buf);
        }
        // Bit flips in a valid stream, including inside compressed header blocks.
        let wire = encode_all(&mut Codec::new(), &sample_frames());
        for _ in 0..2000 {
            let mut buf = wire.clone();
            for _ in 0..1 + rng.next() % 3 {
                let i = (rng.next() as usize) % buf.len();
                buf[i] ^= 1 << (rng.next() % 8);
            }
            drain_without_panic(&mut buf);
        }
    }

    fn decode_err(bytes: &[u8]) -> SpdyError {
        let mut buf = BytesMut::from(bytes);
        match Codec::new().decode(&mut buf) {
            Err(e) => e,
            Ok(f) => panic!("expected an error, got {f:?}"),
        }
    }

    /// A control frame whose header block is `plain`, compressed with a fresh SPDY
    /// context (so it is the first block of its connection).
    fn syn_reply_with_block(plain: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::default(), true);
        c.set_dictionary(&SPDY3_DICTIONARY).unwrap();
        let mut packed = Vec::new();
        deflate_block(&mut c, plain, &mut packed).unwrap();
        let mut wire = BytesMut::new();
        wire.put_slice(&hex("80 03 00 02"));
        wire.put_u32(4 + packed.len() as u32);
        wire.put_u32(1);
        wire.put_slice(&packed);
        wire.to_vec()
    }

    #[test]
    fn rejects_invalid_frames() {
        assert!(matches!(
            decode_err(&hex("80 02 00 06 00 00 00 04 00 00 00 01")),
            SpdyError::UnsupportedVersion(2)
        ));
        let invalid_frames = [
            "00 00 00 00 00 00 00 01 61",                      // DATA on stream 0
            "80 03 00 06 01 00 00 04 00 00 00 01",             // PING with flags
            "80 03 00 06 00 00 00 04 00 00 00 00",             // PING id 0
            "80 03 00 06 00 00 00 08 00 00 00 01 00 00 00 00", // PING too long
            "80 03 00 03 00 00 00 08 00 00 00 01 00 00 00 00", // RST status 0
            "80 03 00 03 00 00 00 08 00 00 00 00 00 00 00 05", // RST stream 0
            "80 03 00 03 00 00 00 04 00 00 00 01",             // RST too short
            "80 03 00 07 00 00 00 04 00 00 00 00",             // SPDY/2-style GOAWAY
            "80 03 00 07 01 00 00 08 00 00 00 00 00 00 00 00", // GOAWAY with flags
            "80 03 00 09 00 00 00 04 00 00 00 01",             // WINDOW_UPDATE too short
            "80 03 00 04 00 00 00 0C 00 00 00 02 00 00 00 01 00 00 00 01", // SETTINGS count
            "80 03 00 04 00 00 00 06 00 00 00 00 00 00",       // SETTINGS length
            "80 03 00 01 00 00 00 04 00 00 00 01",             // SYN_STREAM too short
            "80 03 00 02 00 00 00 02 00 00",                   // SYN_REPLY too short
        ];
        for f in invalid_frames {
            assert!(
                matches!(decode_err(&hex(f)), SpdyError::InvalidFrame { .. }),
                "{f}"
            );
        }
        // Length errors show up from the 8-byte header alone.
        assert!(
            decode_err(&hex("80 03 00 06 00 00 00 05"))
                .to_string()
                .contains("PING")
        );
        // Empty compressed block, and a corrupt one.
        assert!(matches!(
            decode_err(&hex("80 03 00 02 00 00 00 04 00 00 00 01")),
            SpdyError::BadHeaderBlock(_)
        ));
        assert!(matches!(
            decode_err(&hex("80 03 00 02 00 00 00 08 00 00 00 01 12 34 56 78")),
            SpdyError::Decompress(_) | SpdyError::BadHeaderBlock(_)
        ));
        // zlib header naming some other dictionary.
        assert!(matches!(
            decode_err(&hex(
                "80 03 00 02 00 00 00 0A 00 00 00 01 78 BB 00 00 00 01"
            )),
            SpdyError::UnknownDictionary(1)
        ));
    }

    #[test]
    fn rejects_bad_header_blocks() {
        let cases: [(&str, &str); 7] = [
            ("00000001 00000001 41 00000001 62", "lowercase"),
            (
                "00000002 00000001 61 00000000 00000001 61 00000000",
                "duplicate",
            ),
            ("00000001 00000000 00000001 62", "empty"),
            ("00000001 00000001 61 00000000 00", "trailing"),
            ("00000001 00000001 61 000000FF 62", "past end"),
            ("FFFFFFFF 00000001 61 00000000", "count"),
            ("00000001 00000001 FF 00000000", "UTF-8"),
        ];
        for (plain, why) in cases {
            let err = decode_err(&syn_reply_with_block(&hex(plain)));
            assert!(
                matches!(&err, SpdyError::BadHeaderBlock(m) if m.contains(why)),
                "{why}: {err}"
            );
        }
        // A block with zero headers is fine (what servers send in SYN_REPLY).
        let mut buf = BytesMut::from(&syn_reply_with_block(&hex("00000000"))[..]);
        assert!(matches!(
            Codec::new().decode(&mut buf).unwrap(),
            Some(Frame::SynReply { headers, .. }) if headers.is_empty()
        ));
    }

    #[test]
    fn refuses_zlib_bomb() {
        // 4 MiB header value of 'a' compresses to a few KiB.
        let big = 4 << 20;
        let mut plain = hex("00000001 00000001 61");
        plain.put_u32(big as u32);
        plain.resize(plain.len() + big, b'a');
        let wire = syn_reply_with_block(&plain);
        assert!(wire.len() < 64 << 10, "bomb is {} bytes", wire.len());
        let mut rx = Codec::new();
        let mut buf = BytesMut::from(&wire[..]);
        assert!(matches!(
            rx.decode(&mut buf),
            Err(SpdyError::HeaderBlockTooLarge {
                max: DEFAULT_MAX_HEADER_BLOCK
            })
        ));
        // The inflater is now mid-block: later header frames are refused, not misparsed.
        let mut next = BytesMut::from(&syn_reply_with_block(&hex("00000000"))[..]);
        assert!(matches!(rx.decode(&mut next), Err(SpdyError::ContextLost)));
        // Frames without header blocks still decode.
        let mut ping = BytesMut::from(&hex("80 03 00 06 00 00 00 04 00 00 00 01")[..]);
        assert_eq!(rx.decode(&mut ping).unwrap(), Some(Frame::Ping { id: 1 }));
    }

    #[test]
    fn oversized_frames_fail_early() {
        let mut rx = Codec::with_limits(1024, 1024);
        // Header alone announces 2000 bytes: refused before the payload arrives.
        let mut buf = BytesMut::from(&hex("00 00 00 01 00 00 07 D0")[..]);
        assert!(matches!(
            rx.decode(&mut buf),
            Err(SpdyError::FrameTooLarge {
                len: 2000,
                max: 1024
            })
        ));
        // Encoding respects the same limit and the 24-bit maximum.
        let mut out = BytesMut::new();
        let data = Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::from(vec![0u8; 1025]),
        };
        assert!(rx.encode(&data, &mut out).is_err());
        let huge = Frame::Data {
            stream_id: 1,
            fin: false,
            data: Bytes::from(vec![0u8; MAX_FRAME_LEN + 1]),
        };
        assert!(Codec::new().encode(&huge, &mut out).is_err());
        assert!(out.is_empty());
    }

    #[test]
    fn encode_refusals_leave_context_intact() {
        let mut tx = Codec::with_limits(MAX_FRAME_LEN, 64);
        let mut out = BytesMut::new();
        let bad = [
            Frame::Data {
                stream_id: 0,
                fin: true,
                data: Bytes::new(),
            },
            Frame::Data {
                stream_id: MAX_STREAM_ID + 1,
                fin: true,
                data: Bytes::new(),
            },
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 8,
                fin: false,
                unidirectional: false,
                headers: Headers::new(),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: headers(&[("x", &"y".repeat(100))]),
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: headers(&[("", "y")]),
            },
            Frame::RstStream {
                stream_id: 1,
                status: RstStatus::Other(0),
            },
            Frame::Ping { id: 0 },
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 0x8000_0000,
            },
            Frame::Settings {
                clear: false,
                entries: vec![Setting {
                    flags: 0,
                    id: 0x0100_0000,
                    value: 0,
                }],
            },
            Frame::Unknown {
                frame_type: TYPE_SYN_REPLY,
                flags: 0,
                payload: Bytes::new(),
            },
        ];
        for f in &bad {
            assert!(tx.encode(f, &mut out).is_err(), "{f:?}");
        }
        assert!(out.is_empty());
        // The compressor was never touched, so the peer still inflates what follows.
        let good = Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: headers(&[("a", "b")]),
        };
        tx.encode(&good, &mut out).unwrap();
        assert_eq!(Codec::new().decode(&mut out).unwrap(), Some(good));
    }

    #[test]
    fn unknown_control_frames_are_skippable() {
        let mut wire = BytesMut::from(&hex("80 03 00 0A 00 00 00 03 01 02 03")[..]);
        wire.put_slice(&hex("80 03 00 06 00 00 00 04 00 00 00 07"));
        let mut rx = Codec::new();
        assert_eq!(
            rx.decode(&mut wire).unwrap(),
            Some(Frame::Unknown {
                frame_type: 10,
                flags: 0,
                payload: Bytes::from_static(&[1, 2, 3]),
            })
        );
        assert_eq!(rx.decode(&mut wire).unwrap(), Some(Frame::Ping { id: 7 }));
        assert!(wire.is_empty());
    }

    #[test]
    fn headers_api() {
        let mut h = Headers::new();
        assert_eq!(h.insert("StreamType", "error"), None);
        assert_eq!(h.get("streamtype"), Some("error"));
        assert_eq!(h.get("STREAMTYPE"), Some("error"));
        assert_eq!(h.insert("streamtype", "stdout"), Some("error".to_owned()));
        h.append("Port", "80");
        h.append("port", "81");
        assert_eq!(h.len(), 2);
        assert_eq!(h.get("port"), Some("80\u{0}81"));
        assert_eq!(h.get_all("port").collect::<Vec<_>>(), ["80", "81"]);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("streamtype", "stdout"), ("port", "80\u{0}81")]
        );
        assert_eq!((&h).into_iter().count(), 2);
        assert_eq!(h.remove("PORT"), Some("80\u{0}81".to_owned()));
        assert_eq!(h.get("port"), None);
        assert!(!h.is_empty());
    }

    #[test]
    fn tokio_util_codec_traits() {
        use tokio_util::codec::{Decoder, Encoder};
        let mut tx = Codec::new();
        let mut rx = Codec::new();
        let mut buf = BytesMut::new();
        let ping = Frame::Ping { id: 5 };
        Encoder::encode(&mut tx, ping.clone(), &mut buf).unwrap();
        Encoder::encode(&mut tx, &sample_frames()[0], &mut buf).unwrap();
        assert_eq!(Decoder::decode(&mut rx, &mut buf).unwrap(), Some(ping));
        assert_eq!(
            Decoder::decode(&mut rx, &mut buf).unwrap(),
            Some(sample_frames()[0].clone())
        );
        assert_eq!(Decoder::decode_eof(&mut rx, &mut buf).unwrap(), None);
    }
}
