//! Search in PostgreSQL: the `words` tsvector of each message (schema migration 5) under
//! a GIN index, queried with a tsquery written from the parsed terms. Who may find what is
//! in the WHERE clause: the asker's rooms (their memberships) and their own inbox.
//!
//! A word said in every tenth message matches a hundred thousand rows of a million; sorting
//! them all by time to keep the newest would read each. Instead the search looks in spans
//! of time, the most recent first (a week, a month, four months, three years, the rest),
//! each read through the time index, until it has enough.

use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::clock::now_millis;
use crate::store::{Found, Search, StoreError};

/// The spans searched in turn, in days back from the newest time asked for; the last one
/// reaches the beginning.
const SPANS_DAYS: [i64; 4] = [1, 7, 60, 365];

/// The tsquery for `terms`: every term (`&`), a phrase's words in order (`<->`), a prefix
/// marked `:*`.
fn ts_query(terms: &[shared::search::Term]) -> String {
    terms
        .iter()
        .map(|term| {
            // Words are letters and digits only (`shared::search::words`): quoting is safe.
            let words: Vec<String> = term.words.iter().map(|word| format!("'{word}'")).collect();
            let mut phrase = words.join(" <-> ");
            if term.prefix {
                phrase.push_str(":*");
            }
            format!("({phrase})")
        })
        .collect::<Vec<_>>()
        .join(" & ")
}

/// The filters as lexemes of the index (`@sender`, `#room`; see the schema), as a literal
/// tsquery, not normalized as words are. Names are letters, digits, `-` and `_`.
fn filters(search: &Search) -> Option<String> {
    let lexemes: Vec<String> = [
        search.from.as_ref().map(|from| format!("'@{from}'")),
        search.room.as_ref().map(|room| format!("'#{room}'")),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!lexemes.is_empty()).then(|| lexemes.join(" & "))
}

/// [`crate::store::Store::search`].
pub(super) async fn search(
    store: &PostgresStore,
    search: Search,
) -> Result<Vec<Found>, StoreError> {
    let query = ts_query(&search.terms);
    let anchor = search.before.unwrap_or_else(now_millis);
    let mut upper = search.before.unwrap_or(i64::MAX);
    let mut found = Vec::new();
    for span in SPANS_DAYS.iter().map(|days| Some(days * 86_400_000)).chain([None]) {
        let lower = span.map_or(i64::MIN, |span| anchor.saturating_sub(span)).min(upper);
        let wanted = search.limit - found.len();
        found.extend(window(store, &search, &query, lower, upper, wanted).await?);
        if found.len() >= search.limit {
            break;
        }
        upper = lower;
    }
    Ok(found)
}

/// The newest `limit` matches sent in `[lower, upper)`, newest first.
async fn window(
    store: &PostgresStore,
    search: &Search,
    query: &str,
    lower: i64,
    upper: i64,
    limit: usize,
) -> Result<Vec<Found>, StoreError> {
    if lower >= upper {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let filters = filters(search);
    let params: [&(dyn ToSql + Sync); 8] =
        [&query, &search.user, &search.room, &search.from, &lower, &upper, &limit, &filters];
    // $3: only this room, and then no direct messages; $4: only this sender ($8 says both
    // to the index). The rank is worked out for the rows kept only.
    let rows = store
        .query(
            "WITH q AS (SELECT CASE WHEN $8::text IS NULL THEN to_tsquery('simple', $1)
                             ELSE to_tsquery('simple', $1) && $8::tsquery END AS q),
             hits AS (
               (SELECT m.room, NULL::text AS peer, m.seq, m.sender, m.text, m.sent_at, m.words
                FROM messages m, q
                WHERE m.words @@ q.q AND m.sent_at >= $5 AND m.sent_at < $6
                  AND CASE WHEN $3::text IS NULL
                      THEN m.room IN (SELECT room FROM memberships WHERE user_name = $2)
                      ELSE m.room = $3 END
                  AND ($4::text IS NULL OR m.sender = $4)
                ORDER BY m.sent_at DESC LIMIT $7)
               UNION ALL
               (SELECT NULL, d.peer, d.seq, d.sender, d.text, d.sent_at, d.words
                FROM direct_messages d, q
                WHERE $3::text IS NULL AND d.owner = $2 AND d.words @@ q.q
                  AND d.sent_at >= $5 AND d.sent_at < $6
                  AND ($4::text IS NULL OR d.sender = $4)
                ORDER BY d.sent_at DESC LIMIT $7))
             SELECT room, peer, seq, sender, text, sent_at, ts_rank(words, q.q)
             FROM hits, q ORDER BY sent_at DESC LIMIT $7",
            &params,
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Found {
            room: row.get(0),
            peer: row.get(1),
            seq: u64::try_from(row.get::<_, i64>(2)).unwrap_or_default(),
            sender: row.get(3),
            text: row.get(4),
            sent_at: row.get(5),
            relevance: f64::from(row.get::<_, f32>(6)),
        })
        .collect())
}
