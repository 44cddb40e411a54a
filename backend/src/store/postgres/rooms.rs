//! PostgreSQL's side of room access: standing, members, and changes made only if
//! [`crate::access`] allows them, in the transaction that appends them to the stream.
//!
//! Every change and every post locks the room's row before it reads anyone's standing, so
//! that a post racing a ban on another node is either stored before the ban or refused.

use shared::api::{Member, RoomMembers};
use shared::chat::{ChatMessage, LOBBY, Millis, QUOTE_CHARS, Quote, Role, RoomChange, mentioned};
use tokio_postgres::{GenericClient, Row, ToStatement};

use super::{Failure, Statements, clamp, refused, seq};
use crate::access::{Standing, Subject, may_change};
use crate::store::{Missing, StoreError, file_ids_of, mentions_column, reacted};

fn forbidden<T>(denied: crate::access::Denied) -> Result<T, Failure> {
    refused(StoreError::Forbidden(denied.0))
}

/// A person's standing in a room: `$1` the room, `$2` the person.
pub(super) const STANDING: &str = "SELECT r.private, r.archived, m.role, COALESCE(m.muted, false),
        EXISTS (SELECT 1 FROM bans b WHERE b.room = r.name AND b.user_name = $2),
        COALESCE((SELECT u.admin FROM users u WHERE u.name = $2), false)
     FROM rooms r LEFT JOIN memberships m ON m.room = r.name AND m.user_name = $2
     WHERE r.name = $1";

pub(super) fn standing_row(room: &str, row: &Row) -> Standing {
    let role: Option<String> = row.get(2);
    Standing {
        private: row.get(0),
        archived: row.get(1),
        lobby: room == LOBBY,
        role: role.as_deref().and_then(Role::parse),
        muted: row.get(3),
        banned: row.get(4),
        admin: row.get(5),
    }
}

/// `user`'s standing in `room` by [`STANDING`], prepared or not; `None` if there is no
/// such room.
pub(super) async fn standing<S: ToStatement + ?Sized + Sync + Send>(
    client: &impl GenericClient,
    statement: &S,
    room: &str,
    user: &str,
) -> Result<Option<Standing>, tokio_postgres::Error> {
    Ok(client.query_opt(statement, &[&room, &user]).await?.map(|row| standing_row(room, &row)))
}

/// Locks a room's row for the rest of the transaction; `NotFound` if there is none.
pub(super) async fn lock_room(
    client: &impl GenericClient,
    statements: &Statements,
    room: &str,
) -> Result<(), Failure> {
    match client.query_opt(&statements.lock_room, &[&room]).await? {
        Some(_) => Ok(()),
        None => refused(StoreError::NotFound(Missing::Room(room.to_owned()))),
    }
}

pub(super) async fn add_member(
    client: &impl GenericClient,
    room: &str,
    user: &str,
    role: Role,
) -> Result<(), Failure> {
    // A new member has read nothing that came before: start the marker at the present.
    client
        .execute(
            "INSERT INTO memberships (room, user_name, last_read, role)
             SELECT $1, $2, last_seq, $3 FROM rooms WHERE name = $1
             ON CONFLICT DO NOTHING",
            &[&room, &user, &role.as_str()],
        )
        .await?;
    Ok(())
}

/// Joins `user` to `room` if the rules let them in (the room is locked by the caller).
pub(super) async fn join(
    client: &impl GenericClient,
    statements: &Statements,
    room: &str,
    user: &str,
) -> Result<(), Failure> {
    let Some(standing) = standing(client, &statements.standing, room, user).await? else {
        return refused(StoreError::NotFound(Missing::Room(room.to_owned())));
    };
    if standing.is_member() {
        return Ok(());
    }
    if let Err(denied) = standing.may_join() {
        return forbidden(denied);
    }
    add_member(client, room, user, Role::Member).await
}

/// Whether `sender` may post in `room` now, joining a public room first; the room is
/// locked by the caller.
pub(super) async fn check_post(
    client: &impl GenericClient,
    statements: &Statements,
    room: &str,
    sender: &str,
) -> Result<(), Failure> {
    lock_room(client, statements, room).await?;
    let Some(mut standing) = standing(client, &statements.standing, room, sender).await? else {
        return refused(StoreError::NotFound(Missing::Room(room.to_owned())));
    };
    if !standing.is_member() {
        // Saying something in a public room joins it, as subscribing does.
        if let Err(denied) = standing.may_join() {
            return forbidden(denied);
        }
        add_member(client, room, sender, Role::Member).await?;
        standing.role = Some(Role::Member);
    }
    standing.may_post().or_else(forbidden)
}

pub(super) async fn members(
    client: &impl GenericClient,
    room: &str,
) -> Result<RoomMembers, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT user_name, role, muted FROM memberships WHERE room = $1 ORDER BY user_name",
            &[&room],
        )
        .await?;
    let members = rows
        .iter()
        .map(|row| {
            let role: String = row.get(1);
            Member {
                name: row.get(0),
                role: Role::parse(&role).unwrap_or(Role::Member),
                muted: row.get(2),
            }
        })
        .collect();
    let rows = client
        .query("SELECT user_name FROM bans WHERE room = $1 ORDER BY user_name", &[&room])
        .await?;
    Ok(RoomMembers { members, banned: rows.iter().map(|row| row.get(0)).collect() })
}

async fn subject(
    client: &impl GenericClient,
    statements: &Statements,
    room: &str,
    actor: &str,
    change: &RoomChange,
) -> Result<Subject, tokio_postgres::Error> {
    if let Some(seq) = change.message() {
        let row = client
            .query_opt(
                "SELECT sender, deleted OR change IS NOT NULL FROM messages WHERE room = $1 AND seq = $2",
                &[&room, &clamp(seq)],
            )
            .await?;
        return Ok(match row {
            Some(row) if !row.get::<_, bool>(1) => {
                Subject::Message { exists: true, own: row.get::<_, String>(0) == actor }
            }
            _ => Subject::Message { exists: false, own: false },
        });
    }
    let Some(user) = change.target() else { return Ok(Subject::Room) };
    let active = client
        .query_opt("SELECT 1 FROM users WHERE name = $1 AND NOT deactivated", &[&user])
        .await?
        .is_some();
    let standing =
        if active { standing(client, &statements.standing, room, user).await? } else { None };
    Ok(Subject::Person(standing))
}

/// The message `seq` of a room as a reply quotes it, if it is something said and not
/// deleted.
pub(super) async fn quote(
    client: &impl GenericClient,
    room: &str,
    seq: u64,
) -> Result<Option<Quote>, tokio_postgres::Error> {
    let limit = i32::try_from(QUOTE_CHARS).unwrap_or(i32::MAX);
    let row = client
        .query_opt(
            "SELECT sender, left(text, $3) FROM messages
             WHERE room = $1 AND seq = $2 AND change IS NULL AND NOT deleted",
            &[&room, &clamp(seq), &limit],
        )
        .await?;
    Ok(row.map(|row| Quote { seq, sender: row.get(0), text: row.get(1), deleted: false }))
}

/// The members of `room` among the names `text` mentions, in the order mentioned.
pub(super) async fn mentions_in(
    client: &impl GenericClient,
    room: &str,
    text: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut names = mentioned(text);
    if names.is_empty() {
        return Ok(names);
    }
    let rows = client
        .query(
            "SELECT user_name FROM memberships WHERE room = $1 AND user_name = ANY($2)",
            &[&room, &names],
        )
        .await?;
    let members: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    names.retain(|name| members.contains(name));
    Ok(names)
}

/// Appends a change to a room's stream with its next id.
pub(super) async fn append(
    client: &impl GenericClient,
    room: &str,
    sender: &str,
    text: &str,
    change: &RoomChange,
    now: Millis,
) -> Result<ChatMessage, Failure> {
    let json = serde_json::to_string(change).expect("changes serialize");
    let target = change.message().map(clamp);
    let row = client
        .query_opt(
            "WITH next AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE name = $1 RETURNING last_seq)
             INSERT INTO messages (room, seq, sender, text, sent_at, change, target)
             SELECT $1, last_seq, $2, $3, $4, $5, $6 FROM next RETURNING seq",
            &[&room, &sender, &text, &now, &json, &target],
        )
        .await?;
    let Some(row) = row else {
        return refused(StoreError::NotFound(Missing::Room(room.to_owned())));
    };
    Ok(ChatMessage {
        seq: seq(&row, 0),
        room: room.to_owned(),
        sender: sender.to_owned(),
        text: text.to_owned(),
        sent_at: now,
        change: Some(change.clone()),
        ..ChatMessage::default()
    })
}

pub(super) async fn change_room(
    client: &impl GenericClient,
    statements: &Statements,
    room: &str,
    actor: &str,
    change: &RoomChange,
    now: Millis,
) -> Result<ChatMessage, Failure> {
    lock_room(client, statements, room).await?;
    let Some(standing) = standing(client, &statements.standing, room, actor).await? else {
        return refused(StoreError::NotFound(Missing::Room(room.to_owned())));
    };
    let subject = subject(client, statements, room, actor, change).await?;
    if let Err(denied) = may_change(&standing, change, subject) {
        return forbidden(denied);
    }
    let target = change.target().unwrap_or_default();
    match change {
        RoomChange::Added { .. } => add_member(client, room, target, Role::Member).await?,
        RoomChange::Role { role, .. } => {
            client
                .execute(
                    "UPDATE memberships SET role = $3 WHERE room = $1 AND user_name = $2",
                    &[&room, &target, &role.as_str()],
                )
                .await?;
        }
        RoomChange::Kicked { .. } | RoomChange::Banned { .. } => {
            client
                .execute(
                    "DELETE FROM memberships WHERE room = $1 AND user_name = $2",
                    &[&room, &target],
                )
                .await?;
            if matches!(change, RoomChange::Banned { .. }) {
                client
                    .execute(
                        "INSERT INTO bans (room, user_name, banned_by, banned_at) VALUES ($1, $2, $3, $4)",
                        &[&room, &target, &actor, &now],
                    )
                    .await?;
            }
        }
        RoomChange::Unbanned { .. } => {
            client
                .execute("DELETE FROM bans WHERE room = $1 AND user_name = $2", &[&room, &target])
                .await?;
        }
        RoomChange::Muted { .. } | RoomChange::Unmuted { .. } => {
            let muted = matches!(change, RoomChange::Muted { .. });
            client
                .execute(
                    "UPDATE memberships SET muted = $3 WHERE room = $1 AND user_name = $2",
                    &[&room, &target, &muted],
                )
                .await?;
        }
        RoomChange::Title { title } => {
            client.execute("UPDATE rooms SET title = $2 WHERE name = $1", &[&room, title]).await?;
        }
        RoomChange::Topic { topic } => {
            client.execute("UPDATE rooms SET topic = $2 WHERE name = $1", &[&room, topic]).await?;
        }
        RoomChange::Archived | RoomChange::Unarchived => {
            let archived = matches!(change, RoomChange::Archived);
            client
                .execute("UPDATE rooms SET archived = $2 WHERE name = $1", &[&room, &archived])
                .await?;
        }
        RoomChange::Privacy { private } => {
            client
                .execute("UPDATE rooms SET private = $2 WHERE name = $1", &[&room, private])
                .await?;
        }
        RoomChange::Owner { .. } => {
            client
                .execute(
                    "UPDATE memberships SET role = 'moderator' WHERE room = $1 AND role = 'owner'",
                    &[&room],
                )
                .await?;
            client
                .execute(
                    "UPDATE memberships SET role = 'owner', muted = false WHERE room = $1 AND user_name = $2",
                    &[&room, &target],
                )
                .await?;
        }
        RoomChange::Deleted { seq } => {
            // The text is gone from the store, not only hidden: the message's, and that of
            // every edit of it. Its files go too.
            let files = client
                .query_opt(
                    "SELECT files FROM messages WHERE room = $1 AND seq = $2",
                    &[&room, &clamp(*seq)],
                )
                .await?
                .and_then(|row| row.get::<_, Option<String>>(0));
            super::files::delete(client, &file_ids_of(files)).await?;
            client
                .execute(
                    "UPDATE messages SET text = '', deleted = true, mentions = NULL, reactions = NULL,
                         files = NULL
                     WHERE room = $1 AND seq = $2",
                    &[&room, &clamp(*seq)],
                )
                .await?;
            client
                .execute(
                    "UPDATE messages SET change = jsonb_set(change::jsonb, '{text}', '\"\"')::text
                     WHERE room = $1 AND target = $2 AND change::jsonb ->> 'type' = 'edited'",
                    &[&room, &clamp(*seq)],
                )
                .await?;
        }
        RoomChange::Edited { seq, text } => {
            let mentions = mentions_in(client, room, text).await?;
            client
                .execute(
                    "UPDATE messages SET text = $3, edited_at = $4, mentions = $5
                     WHERE room = $1 AND seq = $2",
                    &[&room, &clamp(*seq), text, &now, &mentions_column(&mentions)],
                )
                .await?;
        }
        RoomChange::Reacted { seq, emoji, on } => {
            let row = client
                .query_one(
                    "SELECT reactions FROM messages WHERE room = $1 AND seq = $2",
                    &[&room, &clamp(*seq)],
                )
                .await?;
            let reactions = match reacted(row.get(0), actor, emoji, *on) {
                Ok(reactions) => reactions,
                Err(error) => return refused(error),
            };
            client
                .execute(
                    "UPDATE messages SET reactions = $3 WHERE room = $1 AND seq = $2",
                    &[&room, &clamp(*seq), &reactions],
                )
                .await?;
        }
    }
    let line = change.describe(actor, str::to_owned);
    append(client, room, actor, &line, change, now).await
}
