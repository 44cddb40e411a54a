//! Search in PostgreSQL: the `words` tsvector of each message (schema migration 5) under
//! a GIN index, queried with a tsquery written from the parsed terms. Who may find what is
//! in the WHERE clause: the asker's rooms (their memberships) and their own inbox.

use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::store::{Found, Search, StoreError};

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

/// [`crate::store::Store::search`].
pub(super) async fn search(
    store: &PostgresStore,
    search: Search,
) -> Result<Vec<Found>, StoreError> {
    let query = ts_query(&search.terms);
    let limit = i64::try_from(search.limit).unwrap_or(i64::MAX);
    let before = search.before.unwrap_or(i64::MAX);
    let params: [&(dyn ToSql + Sync); 6] =
        [&query, &search.user, &search.room, &search.from, &before, &limit];
    // $3: only this room, and then no direct messages; $4: only this sender.
    let rows = store
        .query(
            "WITH q AS (SELECT to_tsquery('simple', $1) AS q)
             (SELECT m.room, NULL::text AS peer, m.seq, m.sender, m.text, m.sent_at,
                     ts_rank(m.words, q.q) AS rank
              FROM messages m, q
              WHERE m.words @@ q.q
                AND CASE WHEN $3::text IS NULL
                    THEN m.room IN (SELECT room FROM memberships WHERE user_name = $2)
                    ELSE m.room = $3 END
                AND ($4::text IS NULL OR m.sender = $4) AND m.sent_at < $5
              ORDER BY m.sent_at DESC LIMIT $6)
             UNION ALL
             (SELECT NULL, d.peer, d.seq, d.sender, d.text, d.sent_at, ts_rank(d.words, q.q)
              FROM direct_messages d, q
              WHERE $3::text IS NULL AND d.owner = $2 AND d.words @@ q.q
                AND ($4::text IS NULL OR d.sender = $4) AND d.sent_at < $5
              ORDER BY d.sent_at DESC LIMIT $6)
             ORDER BY sent_at DESC LIMIT $6",
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
