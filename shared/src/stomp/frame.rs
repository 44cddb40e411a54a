//! The untyped frame: a command, ordered headers and a body, plus the small value types
//! ([`Version`], [`HeartBeat`]) that several frames share.

use std::fmt;

use bytes::Bytes;

use super::error::FrameError;
use super::headers::Headers;

/// Every command of STOMP 1.2, client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Client: open a session.
    Connect,
    /// Client: open a session; "STOMP servers MUST handle a STOMP frame in the same manner as a CONNECT frame".
    Stomp,
    /// Client: publish a message.
    Send,
    /// Client: start receiving from a destination.
    Subscribe,
    /// Client: stop receiving.
    Unsubscribe,
    /// Client: acknowledge a message.
    Ack,
    /// Client: refuse a message.
    Nack,
    /// Client: start a transaction.
    Begin,
    /// Client: commit a transaction.
    Commit,
    /// Client: abort a transaction.
    Abort,
    /// Client: end the session.
    Disconnect,
    /// Server: the session is open.
    Connected,
    /// Server: a message from a subscription.
    Message,
    /// Server: a client frame that asked for a receipt was processed.
    Receipt,
    /// Server: something went wrong; the connection closes next.
    Error,
}

impl Command {
    /// All commands, in spec order.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses a command line; commands are case sensitive.
    pub fn parse(line: &[u8]) -> Result<Command, FrameError> {
        Command::ALL
            .into_iter()
            .find(|command| command.as_str().as_bytes() == line)
            .ok_or_else(|| FrameError::UnknownCommand(String::from_utf8_lossy(line).into_owned()))
    }

    /// "Only the SEND, MESSAGE, and ERROR frames MAY have a body."
    pub fn allows_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }

    /// "All frames except the CONNECT and CONNECTED frames will also escape any carriage
    /// return, line feed or colon found in the resulting UTF-8 encoded headers."
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A STOMP frame as on the wire: headers unescaped, in order, repeats kept.
///
/// `content-length` is not kept among the headers: the decoder consumes it to find the
/// body, and the encoder writes it from the body's length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame's command.
    pub command: Command,
    /// The headers, in wire order.
    pub headers: Headers,
    /// The body; empty for frames that have none.
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and no body.
    pub fn new(command: Command) -> Frame {
        Frame { command, headers: Headers::new(), body: Bytes::new() }
    }
}

/// A STOMP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// STOMP 1.0: no header escaping, no heart-beats, no NACK.
    V1_0,
    /// STOMP 1.1.
    V1_1,
    /// STOMP 1.2.
    V1_2,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// The version as written in `accept-version` and `version` headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// The WebSocket subprotocol that names this version (`v12.stomp` and so on).
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V1_0 => "v10.stomp",
            Version::V1_1 => "v11.stomp",
            Version::V1_2 => "v12.stomp",
        }
    }

    /// Parses `1.0`, `1.1` or `1.2`; other versions are unknown to this implementation.
    pub fn parse(text: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|version| version.as_str() == text)
    }

    /// Parses a WebSocket subprotocol name.
    pub fn from_subprotocol(name: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|version| version.subprotocol() == name)
    }

    /// "The protocol that will be used for the rest of the session will be the highest
    /// protocol version that both the client and server have in common." An absent
    /// `accept-version` "means that the client only supports version 1.0".
    pub fn negotiate(accept_version: Option<&str>) -> Option<Version> {
        match accept_version {
            None => Some(Version::V1_0),
            Some(list) => list.split(',').filter_map(|item| Version::parse(item.trim())).max(),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two numbers of a `heart-beat` header, in milliseconds; zero means "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartBeat {
    /// The smallest interval at which the sender of the header can send heart-beats.
    pub can_send_ms: u32,
    /// The interval at which the sender of the header would like to receive them.
    pub want_receive_ms: u32,
}

impl HeartBeat {
    /// "When used, the heart-beat header MUST contain two positive integers separated by a comma."
    pub fn parse(value: &str) -> Result<HeartBeat, FrameError> {
        let invalid = || FrameError::InvalidHeader {
            header: "heart-beat",
            value: value.to_owned(),
            reason: "expected two integers separated by a comma",
        };
        let (send, receive) = value.split_once(',').ok_or_else(invalid)?;
        Ok(HeartBeat {
            can_send_ms: send.parse().map_err(|_| invalid())?,
            want_receive_ms: receive.parse().map_err(|_| invalid())?,
        })
    }

    /// "if <cx> is 0 (the client cannot send heart-beats) or <sy> is 0 (the server does not
    /// want to receive heart-beats) then there will be none; otherwise, there will be
    /// heart-beats every MAX(<cx>,<sy>) milliseconds". Returns that interval, `None` for none.
    pub fn interval(can_send_ms: u32, want_receive_ms: u32) -> Option<u32> {
        (can_send_ms != 0 && want_receive_ms != 0).then(|| can_send_ms.max(want_receive_ms))
    }
}

impl fmt::Display for HeartBeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.can_send_ms, self.want_receive_ms)
    }
}
