//! The embedded store's changes to direct messages: an edit, a deletion or a reaction is
//! made to both copies of the message and appended to both inboxes, each numbered there,
//! in one transaction; only what [`crate::access::may_change_dm`] allows.

use rusqlite::{Connection, OptionalExtension, params};
use shared::chat::{DirectMessage, Millis, RoomChange};

use super::queries::{clamp, next_inbox_seq};
use crate::access::{Subject, may_change_dm};
use crate::store::{DmCopies, StoreError, file_ids_of, reacted, with_seq};

/// One copy of the message a change is about, as read in the change's transaction.
struct Copy {
    sender: String,
    recipient: String,
    pair_seq: Option<u64>,
    gone: bool,
    reactions: Option<String>,
}

/// Makes `change` to the message `seq` of `actor`'s inbox, in their conversation with
/// `peer`, if the rules allow it; returns the entries appended to both inboxes.
pub(super) fn change_dm(
    connection: &Connection,
    actor: &str,
    peer: &str,
    change: &RoomChange,
    now: Millis,
) -> Result<DmCopies, StoreError> {
    let seq = change.message().ok_or_else(|| {
        StoreError::Forbidden("direct messages take edits, deletions and reactions only".into())
    })?;
    let copy = connection
        .query_row(
            "SELECT sender, recipient, pair_seq, deleted OR change IS NOT NULL, reactions
             FROM direct_messages WHERE owner = ?1 AND seq = ?2 AND peer = ?3",
            params![actor, clamp(seq), peer],
            |row| {
                Ok(Copy {
                    sender: row.get(0)?,
                    recipient: row.get(1)?,
                    pair_seq: row.get(2)?,
                    gone: row.get(3)?,
                    reactions: row.get(4)?,
                })
            },
        )
        .optional()?;
    let subject = match &copy {
        Some(copy) if !copy.gone => Subject::Message { exists: true, own: copy.sender == actor },
        _ => Subject::Message { exists: false, own: false },
    };
    may_change_dm(change, subject).map_err(|denied| StoreError::Forbidden(denied.0))?;
    let Some(copy) = copy else { return Err(StoreError::Forbidden("no such message".into())) };
    // Both copies, each with its own numbering (a note to oneself has one).
    let mut copies = vec![(actor.to_owned(), seq)];
    if let Some(other) = copy.pair_seq.filter(|_| actor != peer) {
        copies.push((peer.to_owned(), other));
    }
    match change {
        RoomChange::Edited { text, .. } => {
            for (owner, seq) in &copies {
                connection.execute(
                    "UPDATE direct_messages SET text = ?3, edited_at = ?4 WHERE owner = ?1 AND seq = ?2",
                    params![owner, clamp(*seq), text, now],
                )?;
            }
        }
        RoomChange::Deleted { .. } => {
            for (owner, seq) in &copies {
                let files: Option<String> = connection.query_row(
                    "SELECT files FROM direct_messages WHERE owner = ?1 AND seq = ?2",
                    params![owner, clamp(*seq)],
                    |row| row.get(0),
                )?;
                super::files::delete(connection, &file_ids_of(files))?;
                connection.execute(
                    "UPDATE direct_messages SET text = '', deleted = 1, reactions = NULL, files = NULL
                     WHERE owner = ?1 AND seq = ?2",
                    params![owner, clamp(*seq)],
                )?;
                connection.execute(
                    "UPDATE direct_messages SET change = json_set(change, '$.text', '')
                     WHERE owner = ?1 AND target = ?2 AND json_extract(change, '$.type') = 'edited'",
                    params![owner, clamp(*seq)],
                )?;
            }
        }
        RoomChange::Reacted { emoji, on, .. } => {
            let reactions = reacted(copy.reactions, actor, emoji, *on)?;
            for (owner, seq) in &copies {
                connection.execute(
                    "UPDATE direct_messages SET reactions = ?3 WHERE owner = ?1 AND seq = ?2",
                    params![owner, clamp(*seq), reactions],
                )?;
            }
        }
        _ => return Err(StoreError::Forbidden("not a change to a message".into())),
    }
    let line = change.describe(actor, str::to_owned);
    let other = if copy.sender == actor { copy.recipient } else { copy.sender };
    let mut entries = Vec::new();
    for (owner, target) in &copies {
        let numbered = with_seq(change, *target);
        let json = serde_json::to_string(&numbered).expect("changes serialize");
        let entry_seq = next_inbox_seq(connection, owner)?;
        let peer_of_owner = if owner == actor { other.as_str() } else { actor };
        connection.execute(
            "INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, change, target)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![owner, entry_seq, peer_of_owner, actor, other, line, now, json, clamp(*target)],
        )?;
        entries.push(DirectMessage {
            seq: entry_seq,
            from: actor.to_owned(),
            to: other.clone(),
            text: line.clone(),
            sent_at: now,
            change: Some(numbered),
            ..DirectMessage::default()
        });
    }
    // Change entries are not paired: nothing changes a change.
    let mut entries = entries.into_iter();
    let sender = entries.next().expect("the actor's copy is always there");
    Ok(DmCopies { sender, recipient: entries.next() })
}
