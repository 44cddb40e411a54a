//! Why a frame was refused, and how the client hears it: an ERROR before the connection
//! closes, or, for what may succeed later, a notice on the session's own queue.

use std::time::Duration;

use shared::stomp::{FrameError, Headers};

use crate::engine::EngineError;

/// A refused frame: a protocol error to report in an ERROR frame before closing, unless
/// its [`Retry`] lets a client that listens to its notices hear about it instead.
#[derive(Debug)]
pub(super) struct Refusal {
    /// The ERROR's `message` header.
    pub message: String,
    /// More ERROR headers.
    pub headers: Headers,
    /// The ERROR's body.
    pub body: String,
    /// Whether and when the same request may succeed.
    pub retry: Retry,
}

/// Whether a refused request may succeed if sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// No: the request is wrong.
    Never,
    /// Later: the store was unreachable.
    Later,
    /// Not by this user: the rules refuse it (a private room, a ban, a mute). A client
    /// that listens to its notices hears `denied` and keeps its session.
    Denied,
    /// After this long: the sender is over a rate limit.
    After(Duration),
}

impl Refusal {
    /// A refusal with this `message` that no retry can fix.
    pub fn new(message: impl Into<String>) -> Refusal {
        Refusal {
            message: message.into(),
            headers: Headers::new(),
            body: String::new(),
            retry: Retry::Never,
        }
    }

    /// The sender is over a rate limit for `wait` more.
    pub fn rate_limited(wait: Duration) -> Refusal {
        Refusal { retry: Retry::After(wait), ..Refusal::new("rate limited: sending too fast") }
    }
}

impl From<FrameError> for Refusal {
    fn from(error: FrameError) -> Refusal {
        Refusal::new(error.to_string())
    }
}

impl From<EngineError> for Refusal {
    fn from(error: EngineError) -> Refusal {
        match error {
            EngineError::Unavailable => Refusal {
                retry: Retry::Later,
                ..Refusal::new("not accepted: the message store is unavailable, try again")
            },
            EngineError::Conflict(message) | EngineError::Invalid(message) => Refusal::new(message),
            EngineError::Forbidden(message) => {
                Refusal { retry: Retry::Denied, ..Refusal::new(message) }
            }
            EngineError::NotFound(missing) => Refusal::new(missing.to_string()),
            EngineError::Internal(detail) => {
                tracing::error!(error = %detail, "engine failure");
                Refusal::new("internal error: the request was not completed")
            }
        }
    }
}
