//! The one error type of the codec and of the typed-frame conversions.

use super::frame::Command;

/// Why bytes could not become a frame, or a frame could not become a typed frame.
///
/// Every variant is a fatal protocol error: a server answers it with an ERROR frame whose
/// `message` header is this error's text, then closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The command line is not one of the commands STOMP 1.2 defines.
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    /// A command or header is not valid UTF-8.
    #[error("frame is not valid utf-8 in its {0}")]
    InvalidUtf8(&'static str),
    /// A header line has no colon, or an empty name.
    #[error("malformed header line {0:?}")]
    MalformedHeader(String),
    /// A backslash in a header is followed by something other than `r`, `n`, `c` or `\`.
    #[error("undefined escape sequence {0:?} in header")]
    InvalidEscape(String),
    /// The `content-length` header is not a non-negative integer.
    #[error("invalid content-length {0:?}")]
    InvalidContentLength(String),
    /// The octet after a `content-length` body is not NUL.
    #[error("frame body is not terminated by a null octet")]
    MissingNull,
    /// The frame is larger than the receiver accepts.
    #[error("frame exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The frame has more header lines than the receiver accepts.
    #[error("frame has more than {limit} headers")]
    TooManyHeaders {
        /// The limit in header lines.
        limit: usize,
    },
    /// A header line is longer than the receiver accepts.
    #[error("header line exceeds the limit of {limit} bytes")]
    HeaderLineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A frame other than SEND, MESSAGE or ERROR carries a body.
    #[error("{0} frames must not have a body")]
    BodyNotAllowed(Command),
    /// A header the spec requires for this command is absent.
    #[error("{command} frame is missing the required {header:?} header")]
    MissingHeader {
        /// The frame's command.
        command: Command,
        /// The missing header's name.
        header: &'static str,
    },
    /// A header has a value the spec does not allow.
    #[error("invalid {header:?} header {value:?}: {reason}")]
    InvalidHeader {
        /// The header's name.
        header: &'static str,
        /// The offending value.
        value: String,
        /// What a valid value looks like.
        reason: &'static str,
    },
    /// A server command arrived where a client command was expected, or the reverse.
    #[error("{0} is not a {1} frame")]
    WrongDirection(Command, &'static str),
}
