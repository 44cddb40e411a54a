//! Search in the embedded store: FTS5 over `search` (schema migration 7), which triggers
//! keep in step with the messages. The index walks a query's matches newest first; each is
//! kept if the asker may read it (a room they are in, or their own inbox) and the filters
//! hold, until there are enough.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::{Found, Search, StoreError};

/// The FTS5 query for the terms of `search`.
fn fts_query(search: &Search) -> String {
    search
        .terms
        .iter()
        .map(|term| {
            // Words are letters and digits only (`shared::search::words`): quoting is safe.
            let phrase = format!("\"{}\"", term.words.join(" "));
            if term.prefix { format!("{phrase} *") } else { phrase }
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// [`crate::store::Store::search`].
pub(super) fn search(connection: &Connection, search: &Search) -> Result<Vec<Found>, StoreError> {
    // Messages are numbered in the order they were said: a time bound is an id bound,
    // which the index applies while it walks its matches newest first.
    let bound: Option<i64> = match search.before {
        Some(before) => connection
            .query_row(
                "SELECT id FROM search_docs WHERE sent_at >= ?1 ORDER BY sent_at, id LIMIT 1",
                params![before],
                |row| row.get(0),
            )
            .optional()?,
        None => None,
    };
    // ?4: only this room (and no direct messages); ?5: only this sender.
    let mut statement = connection.prepare_cached(
        "SELECT d.room, m.sender, m.text, m.sent_at, dm.peer, dm.sender, dm.text, dm.sent_at,
                d.seq, bm25(search)
         FROM search
         JOIN search_docs d ON d.id = search.rowid
         LEFT JOIN messages m ON d.owner = '' AND m.room = d.room AND m.seq = d.seq
         LEFT JOIN direct_messages dm ON d.room = '' AND dm.owner = d.owner AND dm.seq = d.seq
         WHERE search MATCH ?1 AND search.rowid < ?2
           AND CASE WHEN ?4 IS NULL
               THEN (d.owner = ?3 OR d.room IN (SELECT room FROM memberships WHERE user_name = ?3))
               ELSE d.room = ?4 END
           AND (?5 IS NULL OR COALESCE(m.sender, dm.sender) = ?5)
           AND d.sent_at < ?7
         ORDER BY search.rowid DESC LIMIT ?6",
    )?;
    let limit = i64::try_from(search.limit).unwrap_or(i64::MAX);
    let found = statement
        .query_map(
            params![
                fts_query(search),
                bound.unwrap_or(i64::MAX),
                search.user,
                search.room,
                search.from,
                limit,
                search.before.unwrap_or(i64::MAX)
            ],
            |row| {
                let room: String = row.get(0)?;
                let in_room = !room.is_empty();
                let (sender, text, sent_at, peer) = if in_room {
                    (row.get(1)?, row.get(2)?, row.get(3)?, None)
                } else {
                    (row.get(5)?, row.get(6)?, row.get(7)?, Some(row.get(4)?))
                };
                let bm25: f64 = row.get(9)?;
                Ok(Found {
                    room: in_room.then_some(room),
                    peer,
                    seq: row.get(8)?,
                    sender,
                    text,
                    sent_at,
                    // bm25() is lower for a better match.
                    relevance: -bm25,
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(found)
}
