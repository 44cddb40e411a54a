//! Typed client frames: one variant per client command, required headers as fields.

use bytes::Bytes;

use super::error::FrameError;
use super::frame::{Command, Frame, HeartBeat};
use super::headers::Headers;

/// The `ack` mode of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckMode {
    /// "the server will assume the client has received the message as soon as it sends it"
    #[default]
    Auto,
    /// Cumulative: an ACK covers the message and every earlier one of the subscription.
    Client,
    /// Each message is acknowledged on its own.
    ClientIndividual,
}

impl AckMode {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Auto => "auto",
            AckMode::Client => "client",
            AckMode::ClientIndividual => "client-individual",
        }
    }

    /// "The valid values for the ack header are auto, client, or client-individual. If the
    /// header is not set, it defaults to auto."
    pub fn parse(value: Option<&str>) -> Result<AckMode, FrameError> {
        match value {
            None | Some("auto") => Ok(AckMode::Auto),
            Some("client") => Ok(AckMode::Client),
            Some("client-individual") => Ok(AckMode::ClientIndividual),
            Some(other) => Err(FrameError::InvalidHeader {
                header: "ack",
                value: other.to_owned(),
                reason: "expected auto, client or client-individual",
            }),
        }
    }
}

/// A frame a client sends. `headers` holds every header that is not a typed field
/// (user headers of a SEND, extensions such as Confab's `since`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFrame {
    /// CONNECT, or STOMP when `stomp_command` is set.
    Connect {
        /// Sent as STOMP rather than CONNECT.
        stomp_command: bool,
        /// The raw `accept-version` list; `None` means a STOMP 1.0 client.
        accept_version: Option<String>,
        /// The virtual host.
        host: Option<String>,
        /// The user identifier.
        login: Option<String>,
        /// The user's secret.
        passcode: Option<String>,
        /// Heart-beat wishes; absent means `0,0`.
        heart_beat: HeartBeat,
        /// Other headers.
        headers: Headers,
    },
    /// SEND: publish `body` to `destination`.
    Send {
        /// Where to.
        destination: String,
        /// The transaction it belongs to.
        transaction: Option<String>,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// User headers, `content-type` among them.
        headers: Headers,
        /// The message.
        body: Bytes,
    },
    /// SUBSCRIBE.
    Subscribe {
        /// What to receive.
        destination: String,
        /// The subscription's id, unique within the connection.
        id: String,
        /// The acknowledgement mode.
        ack: AckMode,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// The subscription to end.
        id: String,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// ACK, or NACK when `nack` is set.
    Ack {
        /// This is a NACK.
        nack: bool,
        /// The `ack` header of the MESSAGE concerned.
        id: String,
        /// The transaction it belongs to.
        transaction: Option<String>,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// BEGIN.
    Begin {
        /// The new transaction's id.
        transaction: String,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// COMMIT.
    Commit {
        /// The transaction to commit.
        transaction: String,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// ABORT.
    Abort {
        /// The transaction to abort.
        transaction: String,
        /// Asks for a RECEIPT.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
    /// DISCONNECT.
    Disconnect {
        /// Asks for a RECEIPT, the clean way to end a session.
        receipt: Option<String>,
        /// Other headers.
        headers: Headers,
    },
}

impl ClientFrame {
    /// The frame's command.
    pub fn command(&self) -> Command {
        match self {
            ClientFrame::Connect { stomp_command: true, .. } => Command::Stomp,
            ClientFrame::Connect { .. } => Command::Connect,
            ClientFrame::Send { .. } => Command::Send,
            ClientFrame::Subscribe { .. } => Command::Subscribe,
            ClientFrame::Unsubscribe { .. } => Command::Unsubscribe,
            ClientFrame::Ack { nack: false, .. } => Command::Ack,
            ClientFrame::Ack { nack: true, .. } => Command::Nack,
            ClientFrame::Begin { .. } => Command::Begin,
            ClientFrame::Commit { .. } => Command::Commit,
            ClientFrame::Abort { .. } => Command::Abort,
            ClientFrame::Disconnect { .. } => Command::Disconnect,
        }
    }

    /// The `receipt` header, if the frame asks for one.
    pub fn receipt(&self) -> Option<&str> {
        match self {
            ClientFrame::Connect { .. } => None,
            ClientFrame::Send { receipt, .. }
            | ClientFrame::Subscribe { receipt, .. }
            | ClientFrame::Unsubscribe { receipt, .. }
            | ClientFrame::Ack { receipt, .. }
            | ClientFrame::Begin { receipt, .. }
            | ClientFrame::Commit { receipt, .. }
            | ClientFrame::Abort { receipt, .. }
            | ClientFrame::Disconnect { receipt, .. } => receipt.as_deref(),
        }
    }

    /// The untyped frame, typed fields first in a fixed order, then the other headers.
    pub fn into_frame(self) -> Frame {
        let command = self.command();
        let mut out = Headers::new();
        let (rest, body) = match self {
            ClientFrame::Connect {
                accept_version,
                host,
                login,
                passcode,
                heart_beat,
                headers,
                ..
            } => {
                out.push_opt("accept-version", accept_version);
                out.push_opt("host", host);
                out.push_opt("login", login);
                out.push_opt("passcode", passcode);
                if heart_beat != HeartBeat::default() {
                    out.push("heart-beat", heart_beat.to_string());
                }
                (headers, Bytes::new())
            }
            ClientFrame::Send { destination, transaction, receipt, headers, body } => {
                out.push("destination", destination);
                out.push_opt("transaction", transaction);
                out.push_opt("receipt", receipt);
                (headers, body)
            }
            ClientFrame::Subscribe { destination, id, ack, receipt, headers } => {
                out.push("destination", destination);
                out.push("id", id);
                if ack != AckMode::Auto {
                    out.push("ack", ack.as_str());
                }
                out.push_opt("receipt", receipt);
                (headers, Bytes::new())
            }
            ClientFrame::Unsubscribe { id, receipt, headers } => {
                out.push("id", id);
                out.push_opt("receipt", receipt);
                (headers, Bytes::new())
            }
            ClientFrame::Ack { id, transaction, receipt, headers, .. } => {
                out.push("id", id);
                out.push_opt("transaction", transaction);
                out.push_opt("receipt", receipt);
                (headers, Bytes::new())
            }
            ClientFrame::Begin { transaction, receipt, headers }
            | ClientFrame::Commit { transaction, receipt, headers }
            | ClientFrame::Abort { transaction, receipt, headers } => {
                out.push("transaction", transaction);
                out.push_opt("receipt", receipt);
                (headers, Bytes::new())
            }
            ClientFrame::Disconnect { receipt, headers } => {
                out.push_opt("receipt", receipt);
                (headers, Bytes::new())
            }
        };
        out.extend(rest);
        Frame { command, headers: out, body }
    }
}

impl TryFrom<Frame> for ClientFrame {
    type Error = FrameError;

    /// Checks the headers the spec requires ("Frames and Headers") and types them.
    fn try_from(frame: Frame) -> Result<ClientFrame, FrameError> {
        let Frame { command, mut headers, body } = frame;
        let mut required = |name: &'static str| {
            headers.take(name).ok_or(FrameError::MissingHeader { command, header: name })
        };
        let typed = match command {
            Command::Connect | Command::Stomp => {
                let heart_beat = match headers.take("heart-beat") {
                    Some(value) => HeartBeat::parse(&value)?,
                    None => HeartBeat::default(),
                };
                ClientFrame::Connect {
                    stomp_command: command == Command::Stomp,
                    accept_version: headers.take("accept-version"),
                    host: headers.take("host"),
                    login: headers.take("login"),
                    passcode: headers.take("passcode"),
                    heart_beat,
                    headers,
                }
            }
            Command::Send => {
                let destination = required("destination")?;
                ClientFrame::Send {
                    destination,
                    transaction: headers.take("transaction"),
                    receipt: headers.take("receipt"),
                    headers,
                    body,
                }
            }
            Command::Subscribe => {
                let destination = required("destination")?;
                let id = required("id")?;
                let ack = AckMode::parse(headers.take("ack").as_deref())?;
                ClientFrame::Subscribe {
                    destination,
                    id,
                    ack,
                    receipt: headers.take("receipt"),
                    headers,
                }
            }
            Command::Unsubscribe => {
                let id = required("id")?;
                ClientFrame::Unsubscribe { id, receipt: headers.take("receipt"), headers }
            }
            Command::Ack | Command::Nack => {
                let id = required("id")?;
                ClientFrame::Ack {
                    nack: command == Command::Nack,
                    id,
                    transaction: headers.take("transaction"),
                    receipt: headers.take("receipt"),
                    headers,
                }
            }
            Command::Begin | Command::Commit | Command::Abort => {
                let transaction = required("transaction")?;
                let receipt = headers.take("receipt");
                match command {
                    Command::Begin => ClientFrame::Begin { transaction, receipt, headers },
                    Command::Commit => ClientFrame::Commit { transaction, receipt, headers },
                    _ => ClientFrame::Abort { transaction, receipt, headers },
                }
            }
            Command::Disconnect => {
                ClientFrame::Disconnect { receipt: headers.take("receipt"), headers }
            }
            Command::Connected | Command::Message | Command::Receipt | Command::Error => {
                return Err(FrameError::WrongDirection(command, "client"));
            }
        };
        Ok(typed)
    }
}
