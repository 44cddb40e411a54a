//! Per-user send rates on the STOMP path: token buckets for chat messages, typing, generic
//! topics and subscription churn, shared by all of a user's sessions on this node.
//!
//! A frame over its rate is refused with a `rate_limited` notice saying when to retry; a
//! client that keeps going after that runs out of "strikes" and gets an ERROR.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::limits::{Rate, TokenBucket};

/// The rates, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendRates {
    /// Chat messages to rooms and direct messages.
    pub messages: Rate,
    /// Typing events. The page sends at most one per room every few seconds.
    pub typing: Rate,
    /// SUBSCRIBE and UNSUBSCRIBE frames: each subscription to a room is a presence change
    /// everyone in the room hears, and a replay.
    pub subscriptions: Rate,
    /// SENDs to generic topics.
    pub topics: Rate,
    /// Refused frames tolerated before the connection is closed.
    pub strikes: Rate,
}

impl Default for SendRates {
    fn default() -> SendRates {
        use crate::config::defaults;
        SendRates {
            messages: Rate::new(defaults::SEND_RATE, defaults::SEND_BURST),
            typing: Rate::new(2.0, 5.0),
            subscriptions: Rate::new(defaults::SUBSCRIBE_RATE, defaults::SUBSCRIBE_BURST),
            topics: Rate::new(defaults::TOPIC_RATE, defaults::TOPIC_BURST),
            strikes: Rate::new(1.0, 20.0),
        }
    }
}

/// What a frame is charged as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// A chat message or a direct message.
    Message,
    /// A typing event.
    Typing,
    /// A SUBSCRIBE or UNSUBSCRIBE.
    Subscription,
    /// A SEND to a generic topic.
    Topic,
}

/// One user's buckets on this node.
#[derive(Debug)]
pub struct UserRates {
    messages: TokenBucket,
    typing: TokenBucket,
    subscriptions: TokenBucket,
    topics: TokenBucket,
    strikes: TokenBucket,
}

impl UserRates {
    fn new(rates: &SendRates) -> UserRates {
        UserRates {
            messages: TokenBucket::new(rates.messages),
            typing: TokenBucket::new(rates.typing),
            subscriptions: TokenBucket::new(rates.subscriptions),
            topics: TokenBucket::new(rates.topics),
            strikes: TokenBucket::new(rates.strikes),
        }
    }

    /// Takes a token for `charge`; `Err(wait)` if the user must wait that long.
    pub fn take(&mut self, charge: Charge) -> Result<(), Duration> {
        match charge {
            Charge::Message => self.messages.take(),
            Charge::Typing => self.typing.take(),
            Charge::Subscription => self.subscriptions.take(),
            Charge::Topic => self.topics.take(),
        }
    }

    /// Counts a refused frame; `false` once the user has had too many.
    pub fn strike(&mut self) -> bool {
        self.strikes.take().is_ok()
    }
}

/// A user's buckets, shared by that user's sessions.
pub type SharedRates = Arc<Mutex<UserRates>>;

/// Locks a user's buckets.
pub fn lock(rates: &SharedRates) -> MutexGuard<'_, UserRates> {
    rates.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every connected user's buckets on this node; entries go with the user's last session.
/// Users who post over HTTP have no session to keep their buckets: those are held for a
/// while after each request ([`RateBook::for_request`]), so that a script's burst of
/// requests meets the same limit as a burst of SENDs.
#[derive(Debug, Default)]
pub struct RateBook {
    users: Mutex<HashMap<String, Weak<Mutex<UserRates>>>>,
    held: Mutex<HashMap<String, (SharedRates, Instant)>>,
}

/// How long buckets are held after an HTTP request: long enough for any bucket to refill.
const HOLD: Duration = Duration::from_secs(120);
/// Users whose buckets are held at most.
const MAX_HELD: usize = 10_000;

impl RateBook {
    /// The buckets of `user` for one HTTP request, held for [`HOLD`] after it.
    pub fn for_request(&self, user: &str, rates: &SendRates) -> SharedRates {
        let shared = self.for_user(user, rates);
        let now = Instant::now();
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held.len() >= MAX_HELD && !held.contains_key(user) {
            held.retain(|_, (_, at)| now.duration_since(*at) < HOLD);
        }
        if held.len() < MAX_HELD || held.contains_key(user) {
            held.insert(user.to_owned(), (shared.clone(), now));
        }
        shared
    }

    /// The buckets of `user`, shared with the user's other sessions.
    pub fn for_user(&self, user: &str, rates: &SendRates) -> SharedRates {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = users.get(user).and_then(Weak::upgrade) {
            return shared;
        }
        // Forget users whose sessions have all gone, whenever the map may have grown.
        if users.len() >= 64 && users.len().is_power_of_two() {
            users.retain(|_, rates| rates.strong_count() > 0);
        }
        let shared = Arc::new(Mutex::new(UserRates::new(rates)));
        users.insert(user.to_owned(), Arc::downgrade(&shared));
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_of_http_requests_outlive_the_request() {
        let book = RateBook::default();
        let rates = SendRates { messages: Rate::new(1.0, 2.0), ..SendRates::default() };
        assert!(lock(&book.for_request("ann", &rates)).take(Charge::Message).is_ok());
        assert!(lock(&book.for_request("ann", &rates)).take(Charge::Message).is_ok());
        assert!(lock(&book.for_request("ann", &rates)).take(Charge::Message).is_err());
        // A session of the same user shares them.
        assert!(lock(&book.for_user("ann", &rates)).take(Charge::Message).is_err());
        assert!(lock(&book.for_request("bob", &rates)).take(Charge::Message).is_ok());
    }

    #[test]
    fn sessions_of_one_user_share_their_buckets() {
        let book = RateBook::default();
        let rates = SendRates { messages: Rate::new(1.0, 2.0), ..SendRates::default() };
        let first = book.for_user("ann", &rates);
        let second = book.for_user("ann", &rates);
        assert!(lock(&first).take(Charge::Message).is_ok());
        assert!(lock(&second).take(Charge::Message).is_ok());
        assert!(lock(&first).take(Charge::Message).is_err());
        assert!(lock(&book.for_user("bob", &rates)).take(Charge::Message).is_ok());
    }
}
