//! STOMP 1.2, typed and I/O-free.
//!
//! Two layers:
//! - [`Frame`]: a command, ordered headers and a body, exactly as on the wire (after
//!   unescaping). [`Decoder`] turns bytes into frames; [`encode`] does the reverse.
//! - [`ClientFrame`] and [`ServerFrame`]: one variant per command, with the headers the spec
//!   requires as typed fields. They convert to and from [`Frame`].
//!
//! Transport concerns (sockets, timers, heart-beat scheduling) live with the caller.

mod client;
mod decode;
mod encode;
mod error;
mod frame;
mod headers;
mod server;

pub use client::{AckMode, ClientFrame};
pub use decode::{Decoder, Limits};
pub use encode::{encode, encode_to_bytes};
pub use error::FrameError;
pub use frame::{Command, Frame, HeartBeat, Version};
pub use headers::{Headers, escape_into};
pub use server::ServerFrame;
