//! Typed server frames: one variant per server command, required headers as fields.

use bytes::Bytes;

use super::error::FrameError;
use super::frame::{Command, Frame, HeartBeat, Version};
use super::headers::Headers;

/// A frame a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerFrame {
    /// CONNECTED: the session is open.
    Connected {
        /// The negotiated version.
        version: Version,
        /// The server's heart-beat offer; absent means `0,0`.
        heart_beat: HeartBeat,
        /// A session identifier.
        session: Option<String>,
        /// `name/version` of the server.
        server: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// MESSAGE: a message delivered to a subscription.
    Message {
        /// Where it was sent.
        destination: String,
        /// A unique id for the message.
        message_id: String,
        /// The id of the receiving subscription.
        subscription: String,
        /// For client and client-individual subscriptions: what an ACK names.
        ack: Option<String>,
        /// User headers passed through from the SEND, and server headers.
        headers: Headers,
        /// The message.
        body: Bytes,
    },
    /// RECEIPT: a client frame was processed.
    Receipt {
        /// The `receipt` header of that frame.
        receipt_id: String,
        /// Other headers.
        headers: Headers,
    },
    /// ERROR: the connection closes after it.
    Error {
        /// A short description.
        message: Option<String>,
        /// The `receipt` of the frame that caused the error.
        receipt_id: Option<String>,
        /// Other headers (`version` when negotiation failed, `content-type`).
        headers: Headers,
        /// Details.
        body: Bytes,
    },
}

impl ServerFrame {
    /// The frame's command.
    pub fn command(&self) -> Command {
        match self {
            ServerFrame::Connected { .. } => Command::Connected,
            ServerFrame::Message { .. } => Command::Message,
            ServerFrame::Receipt { .. } => Command::Receipt,
            ServerFrame::Error { .. } => Command::Error,
        }
    }

    /// An ERROR with a `message` header and no body.
    pub fn error(message: impl Into<String>, receipt_id: Option<String>) -> ServerFrame {
        ServerFrame::Error {
            message: Some(message.into()),
            receipt_id,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// The untyped frame, typed fields first in a fixed order, then the other headers.
    pub fn into_frame(self) -> Frame {
        let command = self.command();
        let mut out = Headers::new();
        let (rest, body) = match self {
            ServerFrame::Connected { version, heart_beat, session, server, headers } => {
                out.push("version", version.as_str());
                if heart_beat != HeartBeat::default() {
                    out.push("heart-beat", heart_beat.to_string());
                }
                out.push_opt("session", session);
                out.push_opt("server", server);
                (headers, Bytes::new())
            }
            ServerFrame::Message { destination, message_id, subscription, ack, headers, body } => {
                out.push("subscription", subscription);
                out.push("message-id", message_id);
                out.push("destination", destination);
                out.push_opt("ack", ack);
                (headers, body)
            }
            ServerFrame::Receipt { receipt_id, headers } => {
                out.push("receipt-id", receipt_id);
                (headers, Bytes::new())
            }
            ServerFrame::Error { message, receipt_id, headers, body } => {
                out.push_opt("message", message);
                out.push_opt("receipt-id", receipt_id);
                (headers, body)
            }
        };
        out.extend(rest);
        Frame { command, headers: out, body }
    }
}

impl TryFrom<Frame> for ServerFrame {
    type Error = FrameError;

    /// Checks the headers the spec requires ("Frames and Headers") and types them.
    fn try_from(frame: Frame) -> Result<ServerFrame, FrameError> {
        let Frame { command, mut headers, body } = frame;
        let mut required = |name: &'static str| {
            headers.take(name).ok_or(FrameError::MissingHeader { command, header: name })
        };
        let typed = match command {
            Command::Connected => {
                let version_text = required("version")?;
                let version = Version::parse(&version_text).ok_or(FrameError::InvalidHeader {
                    header: "version",
                    value: version_text,
                    reason: "expected 1.0, 1.1 or 1.2",
                })?;
                let heart_beat = match headers.take("heart-beat") {
                    Some(value) => HeartBeat::parse(&value)?,
                    None => HeartBeat::default(),
                };
                ServerFrame::Connected {
                    version,
                    heart_beat,
                    session: headers.take("session"),
                    server: headers.take("server"),
                    headers,
                }
            }
            Command::Message => {
                let subscription = required("subscription")?;
                let message_id = required("message-id")?;
                let destination = required("destination")?;
                ServerFrame::Message {
                    destination,
                    message_id,
                    subscription,
                    ack: headers.take("ack"),
                    headers,
                    body,
                }
            }
            Command::Receipt => {
                let receipt_id = required("receipt-id")?;
                ServerFrame::Receipt { receipt_id, headers }
            }
            Command::Error => ServerFrame::Error {
                message: headers.take("message"),
                receipt_id: headers.take("receipt-id"),
                headers,
                body,
            },
            _ => return Err(FrameError::WrongDirection(command, "server")),
        };
        Ok(typed)
    }
}
