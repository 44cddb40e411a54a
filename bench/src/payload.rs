//! The measured payload: `<publisher>:<seq>:<sent µs>|` then padding to the body size.
//! The same bytes arrive as a topic body, or as the `text` of a chat message's JSON.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the run began.
pub fn now_us() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// A body of `size` bytes (at least the header) carrying publisher, sequence and time.
pub fn encode(publisher: usize, seq: u64, sent_us: u64, size: usize) -> String {
    let mut body = format!("{publisher}:{seq}:{sent_us}|");
    if body.len() < size {
        body.extend(std::iter::repeat_n('x', size - body.len()));
    }
    body
}

/// What a delivery carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which publisher.
    pub publisher: usize,
    /// Its sequence number, from 1.
    pub seq: u64,
    /// When it was sent.
    pub sent_us: u64,
}

/// Finds the stamp in a body: at the start for topics, after `"text":"` for chat JSON.
pub fn decode(body: &[u8]) -> Option<Stamp> {
    let start = if body.first() == Some(&b'{') {
        const MARK: &[u8] = b"\"text\":\"";
        body.windows(MARK.len()).position(|window| window == MARK)? + MARK.len()
    } else {
        0
    };
    let rest = &body[start..];
    let end = rest.iter().position(|&byte| byte == b'|')?;
    let mut parts = std::str::from_utf8(&rest[..end]).ok()?.split(':');
    Some(Stamp {
        publisher: parts.next()?.parse().ok()?,
        seq: parts.next()?.parse().ok()?,
        sent_us: parts.next()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_topic_and_chat_bodies() {
        let body = encode(3, 42, 1234, 100);
        assert_eq!(body.len(), 100);
        let stamp = Stamp { publisher: 3, seq: 42, sent_us: 1234 };
        assert_eq!(decode(body.as_bytes()), Some(stamp));
        let json = format!(
            r#"{{"type":"message","seq":7,"room":"r","sender":"b","text":"{body}","sent_at":1}}"#
        );
        assert_eq!(decode(json.as_bytes()), Some(stamp));
        assert_eq!(decode(b"nothing here"), None);
    }
}
