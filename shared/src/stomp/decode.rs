//! The incremental decoder: bytes in, frames out.
//!
//! The decoder keeps how far it has scanned between calls, so a frame that arrives one
//! byte at a time costs linear, not quadratic, work. It never allocates more than the
//! configured [`Limits`] allow.

use bytes::{Buf, BytesMut};

use super::error::FrameError;
use super::frame::{Command, Frame, Version};
use super::headers::{Headers, unescape};

/// Size limits the decoder enforces.
///
/// "To prevent malicious clients from exploiting memory allocation in a server, servers MAY
/// place maximum limits on: the number of frame headers allowed in a single frame, the
/// maximum length of header lines, the maximum size of a frame body."
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest frame, command line to NUL, in bytes.
    pub max_frame_bytes: usize,
    /// The most header lines in one frame.
    pub max_headers: usize,
    /// The longest header line, in bytes, EOL excluded.
    pub max_header_line: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_frame_bytes: 64 * 1024, max_headers: 64, max_header_line: 4 * 1024 }
    }
}

/// Where the decoder is within the frame at the front of the buffer.
#[derive(Debug, Clone)]
enum State {
    /// Looking for the blank line that ends the headers.
    Head {
        /// Offset of the first line not yet checked.
        next_line: usize,
        /// Complete lines seen so far, the command line included.
        n_lines: usize,
    },
    /// Headers parsed; waiting for the body and its NUL.
    Body {
        command: Command,
        headers: Headers,
        body_start: usize,
        content_length: Option<usize>,
        /// Offset up to which the body has been searched for NUL.
        scanned: usize,
    },
}

impl State {
    const START: State = State::Head { next_line: 0, n_lines: 0 };
}

/// Turns a byte stream into [`Frame`]s. One decoder per connection and direction.
#[derive(Debug, Clone)]
pub struct Decoder {
    limits: Limits,
    escaping: bool,
    state: State,
}

impl Default for Decoder {
    fn default() -> Decoder {
        Decoder::new(Limits::default())
    }
}

impl Decoder {
    /// A decoder for a STOMP 1.2 stream with these limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder { limits, escaping: true, state: State::START }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Adopts the negotiated version's header rules: STOMP 1.0 has no escapes.
    pub fn set_version(&mut self, version: Version) {
        self.escaping = version >= Version::V1_1;
    }

    /// Takes the next complete frame off the front of `buf`.
    ///
    /// `Ok(None)` means the buffer holds no complete frame yet (heart-beat EOLs between
    /// frames are consumed silently). After an error the stream cannot be resynchronised:
    /// the caller reports it and closes the connection.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let State::Head { next_line: 0, .. } = self.state {
            skip_heart_beats(buf);
        }
        if let State::Head { next_line, n_lines } = &mut self.state {
            let Some(head_end) = find_head_end(self.limits, buf, next_line, n_lines)? else {
                return Ok(None);
            };
            let (command, mut headers) = parse_head(&buf[..head_end], self.escaping)?;
            let content_length = match headers.take("content-length") {
                None => None,
                Some(text) => Some(parse_content_length(&text)?),
            };
            self.state = State::Body {
                command,
                headers,
                body_start: head_end,
                content_length,
                scanned: head_end,
            };
        }
        let State::Body { body_start, content_length, scanned, .. } = &mut self.state else {
            unreachable!("the head was parsed above");
        };
        let max = self.limits.max_frame_bytes;
        let body_end = match *content_length {
            // "If a content-length header is included, this number of octets MUST be read,
            // regardless of whether or not there are NULL octets in the body."
            Some(length) => {
                // Checked: a length near `usize::MAX` must be refused, not wrapped around
                // to an offset inside the headers.
                let body_end = match body_start.checked_add(length) {
                    Some(body_end) if body_end < max => body_end,
                    _ => return Err(FrameError::FrameTooLarge { limit: max }),
                };
                if buf.len() <= body_end {
                    return Ok(None);
                }
                if buf[body_end] != 0 {
                    return Err(FrameError::MissingNull);
                }
                body_end
            }
            None => match buf[*scanned..].iter().position(|&byte| byte == 0) {
                Some(offset) if *scanned + offset >= max => {
                    return Err(FrameError::FrameTooLarge { limit: max });
                }
                Some(offset) => *scanned + offset,
                None => {
                    if buf.len() > max {
                        return Err(FrameError::FrameTooLarge { limit: max });
                    }
                    *scanned = buf.len();
                    return Ok(None);
                }
            },
        };
        let State::Body { command, headers, body_start, .. } =
            std::mem::replace(&mut self.state, State::START)
        else {
            unreachable!("matched above");
        };
        let frame_bytes = buf.split_to(body_end).freeze();
        buf.advance(1); // the NUL
        // "Only the SEND, MESSAGE, and ERROR frames MAY have a body. All other frames MUST
        // NOT have a body."
        if body_end > body_start && !command.allows_body() {
            return Err(FrameError::BodyNotAllowed(command));
        }
        Ok(Some(Frame { command, headers, body: frame_bytes.slice(body_start..) }))
    }
}

/// Scans complete lines from `next_line`; returns the offset just past the blank line that
/// ends the headers, or `None` if it has not arrived yet.
fn find_head_end(
    limits: Limits,
    buf: &BytesMut,
    next_line: &mut usize,
    n_lines: &mut usize,
) -> Result<Option<usize>, FrameError> {
    while let Some(offset) = buf[*next_line..].iter().position(|&byte| byte == b'\n') {
        let line = strip_cr(&buf[*next_line..*next_line + offset]);
        *next_line += offset + 1;
        if line.is_empty() {
            return Ok(Some(*next_line));
        }
        if line.len() > limits.max_header_line {
            return Err(FrameError::HeaderLineTooLong { limit: limits.max_header_line });
        }
        *n_lines += 1;
        if *n_lines > limits.max_headers + 1 {
            return Err(FrameError::TooManyHeaders { limit: limits.max_headers });
        }
    }
    if buf.len() - *next_line > limits.max_header_line {
        return Err(FrameError::HeaderLineTooLong { limit: limits.max_header_line });
    }
    if buf.len() > limits.max_frame_bytes {
        return Err(FrameError::FrameTooLarge { limit: limits.max_frame_bytes });
    }
    Ok(None)
}

/// "The NULL octet can be optionally followed by multiple EOLs", and a heart-beat is a
/// lone EOL: both are consumed here.
fn skip_heart_beats(buf: &mut BytesMut) {
    loop {
        if buf.starts_with(b"\n") {
            buf.advance(1);
        } else if buf.starts_with(b"\r\n") {
            buf.advance(2);
        } else {
            return;
        }
    }
}

/// "EOL = [CR] LF"
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses the command line and header lines of a head that ends with a blank line.
fn parse_head(head: &[u8], escaping: bool) -> Result<(Command, Headers), FrameError> {
    let mut lines = head.split(|&byte| byte == b'\n').map(strip_cr);
    let command = Command::parse(lines.next().unwrap_or_default())?;
    let unescaping = escaping && command.escapes_headers();
    let mut headers = Headers::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let colon = line.iter().position(|&byte| byte == b':');
        let (name, value) = match colon {
            Some(colon) if colon > 0 => (&line[..colon], &line[colon + 1..]),
            _ => {
                return Err(FrameError::MalformedHeader(
                    String::from_utf8_lossy(line).into_owned(),
                ));
            }
        };
        let (name, value) = if unescaping {
            (text(unescape(name)?)?, text(unescape(value)?)?)
        } else {
            (text(name.to_vec())?, text(value.to_vec())?)
        };
        headers.push(name, value);
    }
    Ok((command, headers))
}

fn text(bytes: Vec<u8>) -> Result<String, FrameError> {
    String::from_utf8(bytes).map_err(|_| FrameError::InvalidUtf8("headers"))
}

fn parse_content_length(text: &str) -> Result<usize, FrameError> {
    // Digits only: `usize::from_str` would also take a leading `+`.
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(FrameError::InvalidContentLength(text.to_owned()));
    }
    text.parse().map_err(|_| FrameError::InvalidContentLength(text.to_owned()))
}
