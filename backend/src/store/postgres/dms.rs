//! PostgreSQL's changes to direct messages: an edit, a deletion or a reaction made to both
//! copies and appended to both inboxes in one transaction (as the embedded store's
//! `dms.rs`). Both inboxes are locked in name order first, as posting a DM does.

use shared::chat::{DirectMessage, Millis, RoomChange};
use tokio_postgres::GenericClient;

use super::{Failure, clamp, refused, seq};
use crate::access::{Subject, may_change_dm};
use crate::store::{DmCopies, StoreError, file_ids_of, reacted, with_seq};

/// Records that two inboxes' entries are copies of one another.
pub(super) async fn pair(
    client: &impl GenericClient,
    (owner, seq): (&str, u64),
    (other, other_seq): (&str, u64),
) -> Result<(), Failure> {
    let statement = "UPDATE direct_messages SET pair_seq = $3 WHERE owner = $1 AND seq = $2";
    client.execute(statement, &[&owner, &clamp(seq), &clamp(other_seq)]).await?;
    client.execute(statement, &[&other, &clamp(other_seq), &clamp(seq)]).await?;
    Ok(())
}

pub(super) async fn change_dm(
    client: &impl GenericClient,
    actor: &str,
    peer: &str,
    change: &RoomChange,
    now: Millis,
) -> Result<DmCopies, Failure> {
    let Some(target) = change.message() else {
        return refused(StoreError::Forbidden(
            "direct messages take edits, deletions and reactions only".into(),
        ));
    };
    let mut owners = if actor == peer { vec![actor] } else { vec![actor, peer] };
    owners.sort_unstable();
    for owner in &owners {
        client
            .execute(
                "INSERT INTO inboxes (owner, last_seq) VALUES ($1, 0)
                 ON CONFLICT (owner) DO UPDATE SET last_seq = inboxes.last_seq",
                &[owner],
            )
            .await?;
    }
    let row = client
        .query_opt(
            "SELECT sender, recipient, pair_seq, deleted OR change IS NOT NULL, reactions
             FROM direct_messages WHERE owner = $1 AND seq = $2 AND peer = $3 FOR UPDATE",
            &[&actor, &clamp(target), &peer],
        )
        .await?;
    let subject = match &row {
        Some(row) if !row.get::<_, bool>(3) => {
            Subject::Message { exists: true, own: row.get::<_, String>(0) == actor }
        }
        _ => Subject::Message { exists: false, own: false },
    };
    if let Err(denied) = may_change_dm(change, subject) {
        return refused(StoreError::Forbidden(denied.0));
    }
    let Some(row) = row else { return refused(StoreError::Forbidden("no such message".into())) };
    let (sender, recipient): (String, String) = (row.get(0), row.get(1));
    let pair_seq: Option<i64> = row.get(2);
    let mut copies = vec![(actor.to_owned(), target)];
    if let Some(other) = pair_seq.filter(|_| actor != peer) {
        copies.push((peer.to_owned(), u64::try_from(other).unwrap_or(0)));
    }
    match change {
        RoomChange::Edited { text, .. } => {
            for (owner, seq) in &copies {
                client
                    .execute(
                        "UPDATE direct_messages SET text = $3, edited_at = $4 WHERE owner = $1 AND seq = $2",
                        &[owner, &clamp(*seq), text, &now],
                    )
                    .await?;
            }
        }
        RoomChange::Deleted { .. } => {
            for (owner, seq) in &copies {
                let files = client
                    .query_opt(
                        "SELECT files FROM direct_messages WHERE owner = $1 AND seq = $2",
                        &[owner, &clamp(*seq)],
                    )
                    .await?
                    .and_then(|row| row.get::<_, Option<String>>(0));
                super::files::delete(client, &file_ids_of(files)).await?;
                client
                    .execute(
                        "UPDATE direct_messages SET text = '', deleted = true, reactions = NULL,
                             files = NULL
                         WHERE owner = $1 AND seq = $2",
                        &[owner, &clamp(*seq)],
                    )
                    .await?;
                client
                    .execute(
                        "UPDATE direct_messages SET change = jsonb_set(change::jsonb, '{text}', '\"\"')::text
                         WHERE owner = $1 AND target = $2 AND change::jsonb ->> 'type' = 'edited'",
                        &[owner, &clamp(*seq)],
                    )
                    .await?;
            }
        }
        RoomChange::Reacted { emoji, on, .. } => {
            let reactions = match reacted(row.get(4), actor, emoji, *on) {
                Ok(reactions) => reactions,
                Err(error) => return refused(error),
            };
            for (owner, seq) in &copies {
                client
                    .execute(
                        "UPDATE direct_messages SET reactions = $3 WHERE owner = $1 AND seq = $2",
                        &[owner, &clamp(*seq), &reactions],
                    )
                    .await?;
            }
        }
        _ => return refused(StoreError::Forbidden("not a change to a message".into())),
    }
    let line = change.describe(actor, str::to_owned);
    let other = if sender == actor { recipient } else { sender };
    let mut entries = Vec::new();
    for (owner, target) in &copies {
        let numbered = with_seq(change, *target);
        let json = serde_json::to_string(&numbered).expect("changes serialize");
        let peer_of_owner = if owner == actor { other.as_str() } else { actor };
        let row = client
            .query_one(
                "WITH next AS (UPDATE inboxes SET last_seq = last_seq + 1 WHERE owner = $1 RETURNING last_seq)
                 INSERT INTO direct_messages (owner, seq, peer, sender, recipient, text, sent_at, change, target)
                 SELECT $1, last_seq, $2, $3, $4, $5, $6, $7, $8 FROM next RETURNING seq",
                &[owner, &peer_of_owner, &actor, &other, &line, &now, &json, &clamp(*target)],
            )
            .await?;
        entries.push(DirectMessage {
            seq: seq(&row, 0),
            from: actor.to_owned(),
            to: other.clone(),
            text: line.clone(),
            sent_at: now,
            change: Some(numbered),
            ..DirectMessage::default()
        });
    }
    let mut entries = entries.into_iter();
    let Some(sender) = entries.next() else {
        return refused(StoreError::Failed("the actor's entry was not stored".into()));
    };
    Ok(DmCopies { sender, recipient: entries.next() })
}
