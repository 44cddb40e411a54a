//! The encoder: a [`Frame`] to bytes that [`Decoder`](super::Decoder) reads back unchanged.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::Frame;
use super::headers::escape_into;

/// Writes `frame` in STOMP 1.2 wire format.
///
/// Header names and values are escaped except in CONNECT, STOMP and CONNECTED frames. SEND,
/// MESSAGE and ERROR frames get a `content-length` header from the body's length, so bodies
/// may contain NUL octets: "If the frame body contains NULL octets, the frame MUST include a
/// content-length header."
pub fn encode(frame: &Frame, out: &mut impl BufMut) {
    let escaping = frame.command.escapes_headers();
    out.put_slice(frame.command.as_str().as_bytes());
    out.put_u8(b'\n');
    for (name, value) in frame.headers.iter() {
        if escaping {
            escape_into(name, out);
            out.put_u8(b':');
            escape_into(value, out);
        } else {
            out.put_slice(name.as_bytes());
            out.put_u8(b':');
            out.put_slice(value.as_bytes());
        }
        out.put_u8(b'\n');
    }
    if frame.command.allows_body() {
        out.put_slice(b"content-length:");
        out.put_slice(frame.body.len().to_string().as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.put_slice(&frame.body);
    out.put_u8(0);
}

/// [`encode`] into a fresh buffer.
pub fn encode_to_bytes(frame: &Frame) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + frame.body.len());
    encode(frame, &mut out);
    out.freeze()
}
