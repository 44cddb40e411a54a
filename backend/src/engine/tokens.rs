//! Session tokens on a node: a small cache in front of the store, and the live sessions
//! each token opened, so that a revoked token's sessions end at once.
//!
//! The cache keeps answers for a short while, unknown tokens included (a flood of CONNECTs
//! with bad tokens costs one store read per token, not per attempt: security review L10).
//! A revocation evicts the token on every node (it travels on the bus's control channel),
//! so the cache never lets a revoked token in.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::delivery::{Outbox, Outgoing, SessionId};

/// How long an answer is kept.
const KEEP: Duration = Duration::from_secs(30);
/// Answers kept at most.
const MAX_CACHED: usize = 50_000;

/// What the store said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    /// Its owner, or `None` for a token the store does not know (or that has expired).
    pub owner: Option<String>,
    /// When the token expires; 0 for unknown tokens.
    pub expires_at: shared::chat::Millis,
    /// The owner is a bot.
    pub bot: bool,
}

/// The node's token cache and session registry.
#[derive(Debug, Default)]
pub struct Tokens {
    cache: Mutex<HashMap<String, (Instant, Known)>>,
    sessions: Mutex<HashMap<String, Vec<(SessionId, Outbox)>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Tokens {
    /// A recent answer for `token_hash`.
    pub fn cached(&self, token_hash: &str) -> Option<Known> {
        let cache = lock(&self.cache);
        let (at, known) = cache.get(token_hash)?;
        (at.elapsed() < KEEP).then(|| known.clone())
    }

    /// Keeps an answer.
    pub fn remember(&self, token_hash: &str, known: Known) {
        let mut cache = lock(&self.cache);
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, (at, _)| at.elapsed() < KEEP);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(token_hash.to_owned(), (Instant::now(), known));
    }

    /// Registers a live session opened with `token_hash`.
    pub fn opened(&self, token_hash: &str, session: SessionId, outbox: Outbox) {
        lock(&self.sessions).entry(token_hash.to_owned()).or_default().push((session, outbox));
    }

    /// Forgets a session that ended.
    pub fn closed(&self, token_hash: &str, session: SessionId) {
        let mut sessions = lock(&self.sessions);
        if let Some(list) = sessions.get_mut(token_hash) {
            list.retain(|(id, _)| *id != session);
            if list.is_empty() {
                sessions.remove(token_hash);
            }
        }
    }

    /// A token was revoked: forgets it and ends its sessions here, each with an ERROR.
    pub fn revoked(&self, token_hash: &str) {
        lock(&self.cache).remove(token_hash);
        let sessions = lock(&self.sessions).remove(token_hash).unwrap_or_default();
        for (_, outbox) in sessions {
            let error =
                shared::stomp::ServerFrame::error("signed out: this session has ended", None);
            outbox.push(Outgoing::frame(shared::stomp::encode_to_bytes(&error.into_frame())));
            outbox.push(Outgoing::Close);
        }
    }
}
