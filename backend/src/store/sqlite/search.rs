//! Search in the embedded store: FTS5 over `search` (schema migration 7), which triggers
//! keep in step with the messages. Who may find what is part of the match: each indexed
//! message carries its scope (its room, or its inbox's owner) and sender as words, so the
//! index itself intersects the words with the rooms of the asker.

use rusqlite::{Connection, params};

use crate::store::{Found, Search, StoreError, inbox_scope, room_scope, sender_scope};

/// The FTS5 query for `search`, in `rooms` (none: the asker's inbox only, or nothing).
fn fts_query(search: &Search, rooms: &[String]) -> String {
    let terms: Vec<String> = search
        .terms
        .iter()
        .map(|term| {
            // Words are letters and digits only (`shared::search::words`): quoting is safe.
            let phrase = format!("\"{}\"", term.words.join(" "));
            if term.prefix { format!("{phrase} *") } else { phrase }
        })
        .collect();
    let mut scopes: Vec<String> = rooms.iter().map(|room| room_scope(room)).collect();
    if search.room.is_none() {
        scopes.push(inbox_scope(&search.user));
    }
    let mut query =
        format!("body : ({}) AND scope : ({})", terms.join(" AND "), scopes.join(" OR "));
    if let Some(from) = &search.from {
        query.push_str(&format!(" AND scope : {}", sender_scope(from)));
    }
    query
}

/// The rooms `user` is a member of.
fn member_rooms(connection: &Connection, user: &str) -> Result<Vec<String>, StoreError> {
    let mut statement =
        connection.prepare_cached("SELECT room FROM memberships WHERE user_name = ?1")?;
    let rooms: Result<Vec<String>, _> =
        statement.query_map(params![user], |row| row.get(0))?.collect();
    Ok(rooms?)
}

/// [`crate::store::Store::search`].
pub(super) fn search(connection: &Connection, search: &Search) -> Result<Vec<Found>, StoreError> {
    let rooms: Vec<String> = match &search.room {
        Some(room) => vec![room.clone()],
        None => member_rooms(connection, &search.user)?,
    };
    let query = fts_query(search, &rooms);
    // Messages are numbered in the order they were said: a time bound is an id bound,
    // which the index applies while it walks its matches newest first.
    let bound: Option<i64> = match search.before {
        Some(before) => connection
            .query_row(
                "SELECT id FROM search_docs WHERE sent_at >= ?1 ORDER BY sent_at, id LIMIT 1",
                params![before],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|error| match error {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })?,
        None => None,
    };
    let mut statement = connection.prepare_cached(
        "SELECT d.room, m.sender, m.text, m.sent_at, dm.peer, dm.sender, dm.text, dm.sent_at,
                d.seq, bm25(search, 1.0, 0.0)
         FROM search
         JOIN search_docs d ON d.id = search.rowid
         LEFT JOIN messages m ON d.owner = '' AND m.room = d.room AND m.seq = d.seq
         LEFT JOIN direct_messages dm ON d.room = '' AND dm.owner = d.owner AND dm.seq = d.seq
         WHERE search MATCH ?1 AND search.rowid < ?2
         ORDER BY search.rowid DESC LIMIT ?3",
    )?;
    let limit = i64::try_from(search.limit).unwrap_or(i64::MAX);
    let found = statement
        .query_map(params![query, bound.unwrap_or(i64::MAX), limit], |row| {
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
        })?
        .collect::<Result<_, _>>()?;
    Ok(found)
}
