//! Search: the messages a person may read that match a query, ranked by relevance and
//! recency, their matching words marked.

use shared::api::{SearchHit, SearchPage};
use shared::chat::Millis;
use shared::search::Query;

use super::{Engine, EngineError};
use crate::clock::now_millis;
use crate::store::{Found, Search};

/// How many of the newest matches are ranked for one answer. Walking matches newest
/// first and stopping here keeps a search's cost bounded whatever the history's size;
/// older matches are a `before` away.
pub const CANDIDATES: usize = 200;

/// A match's relevance halves with every this many days of age.
const HALF_LIFE_DAYS: f64 = 14.0;

/// What a search asks for, checked: a parsed query and its bounds.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The words and filters.
    pub query: Query,
    /// Only messages sent before this time.
    pub before: Option<Millis>,
    /// At most this many results.
    pub limit: usize,
}

impl Engine {
    /// The messages `user` may read that match, best first. A room named by the query must
    /// be one they may read (as its history); without one, their rooms and their direct
    /// messages are searched.
    pub async fn search(
        &self,
        user: &str,
        request: SearchRequest,
    ) -> Result<SearchPage, EngineError> {
        let SearchRequest { query, before, limit } = request;
        if let Some(room) = &query.room {
            self.readable(room, user).await?;
        }
        let found = self
            .inner
            .store
            .search(Search {
                user: user.to_owned(),
                room: query.room.clone(),
                from: query.from.clone(),
                before,
                terms: query.terms.clone(),
                limit: CANDIDATES,
            })
            .await?;
        let more = found.len() == CANDIDATES;
        let oldest = found.iter().map(|found| found.sent_at).min();
        let hits = rank(found, now_millis(), limit)
            .into_iter()
            .map(|found| SearchHit {
                // Shown as plain text: Markdown's marks taken off, as in reply snippets.
                parts: shared::search::parts(&shared::markdown::plain(&found.text), &query.terms),
                room: found.room,
                peer: found.peer,
                seq: found.seq,
                sender: found.sender,
                sent_at: found.sent_at,
            })
            .collect();
        Ok(SearchPage { hits, more, before: more.then_some(oldest).flatten() })
    }
}

/// The best `limit` of `found`: the index's relevance, halved every [`HALF_LIFE_DAYS`]
/// of age; the newer first among equals.
fn rank(mut found: Vec<Found>, now: Millis, limit: usize) -> Vec<Found> {
    let score = |found: &Found| {
        let age_days = (now - found.sent_at).max(0) as f64 / 86_400_000.0;
        found.relevance.max(0.0) * 0.5f64.powf(age_days / HALF_LIFE_DAYS)
    };
    found.sort_by(|a, b| score(b).total_cmp(&score(a)).then(b.sent_at.cmp(&a.sent_at)));
    found.truncate(limit);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(seq: u64, relevance: f64, days_ago: i64) -> Found {
        Found {
            room: Some("lobby".into()),
            peer: None,
            seq,
            sender: "ann".into(),
            text: String::new(),
            sent_at: 100 * 86_400_000 - days_ago * 86_400_000,
            relevance,
        }
    }

    #[test]
    fn relevance_counts_and_fades_with_age() {
        let now = 100 * 86_400_000;
        let ranked = rank(
            vec![found(1, 2.0, 0), found(2, 3.0, 0), found(3, 3.0, 28), found(4, 1.0, 0)],
            now,
            3,
        );
        let order: Vec<u64> = ranked.iter().map(|found| found.seq).collect();
        // 3.0 today beats 2.0 today; 3.0 four weeks ago is worth 0.75, below 1.0 today.
        assert_eq!(order, [2, 1, 4]);
        // No relevance at all (an index that does not rank): the newer first.
        let ranked = rank(vec![found(1, 0.0, 3), found(2, 0.0, 1)], now, 5);
        assert_eq!(ranked.iter().map(|found| found.seq).collect::<Vec<_>>(), [2, 1]);
    }
}
