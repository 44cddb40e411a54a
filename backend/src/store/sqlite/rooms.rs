//! The embedded store's side of room access: a person's standing, members and bans, and
//! changes to a room, made only if [`crate::access`] allows them, in the transaction that
//! appends them to the room's stream.

use rusqlite::{Connection, OptionalExtension, params};
use shared::api::{Member, RoomMembers};
use shared::chat::{ChatMessage, LOBBY, Millis, Role, RoomChange};

use super::queries::{Entry, add_member, append, clamp, mentions_in, require_room};
use crate::access::{Standing, Subject, may_change};
use crate::store::{Missing, StoreError, file_ids_of, mentions_column, reacted};

/// `user`'s standing in `room`; `None` if there is no such room.
pub(super) fn standing(
    connection: &Connection,
    room: &str,
    user: &str,
) -> Result<Option<Standing>, StoreError> {
    let mut statement = connection.prepare_cached(
        "SELECT r.private, r.archived, m.role, COALESCE(m.muted, 0),
                EXISTS (SELECT 1 FROM bans b WHERE b.room = r.name AND b.user_name = ?2),
                COALESCE((SELECT u.admin FROM users u WHERE u.name = ?2), 0)
         FROM rooms r LEFT JOIN memberships m ON m.room = r.name AND m.user_name = ?2
         WHERE r.name = ?1",
    )?;
    Ok(statement
        .query_row(params![room, user], |row| {
            let role: Option<String> = row.get(2)?;
            Ok(Standing {
                private: row.get(0)?,
                archived: row.get(1)?,
                lobby: room == LOBBY,
                role: role.as_deref().and_then(Role::parse),
                muted: row.get(3)?,
                banned: row.get(4)?,
                admin: row.get(5)?,
            })
        })
        .optional()?)
}

pub(super) fn members(connection: &Connection, room: &str) -> Result<RoomMembers, StoreError> {
    require_room(connection, room)?;
    let mut statement = connection.prepare_cached(
        "SELECT user_name, role, muted FROM memberships WHERE room = ?1 ORDER BY user_name",
    )?;
    let members = statement
        .query_map(params![room], |row| {
            let role: String = row.get(1)?;
            Ok(Member {
                name: row.get(0)?,
                role: Role::parse(&role).unwrap_or(Role::Member),
                muted: row.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut statement = connection
        .prepare_cached("SELECT user_name FROM bans WHERE room = ?1 ORDER BY user_name")?;
    let banned = statement.query_map(params![room], |row| row.get(0))?.collect::<Result<_, _>>()?;
    Ok(RoomMembers { members, banned })
}

/// What the change acts on, read in the change's transaction.
fn subject(
    connection: &Connection,
    room: &str,
    actor: &str,
    change: &RoomChange,
) -> Result<Subject, StoreError> {
    if let Some(seq) = change.message() {
        let sender: Option<(String, bool)> = connection
            .query_row(
                "SELECT sender, deleted OR change IS NOT NULL FROM messages WHERE room = ?1 AND seq = ?2",
                params![room, clamp(seq)],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        return Ok(match sender {
            Some((sender, false)) => Subject::Message { exists: true, own: sender == actor },
            _ => Subject::Message { exists: false, own: false },
        });
    }
    let Some(user) = change.target() else { return Ok(Subject::Room) };
    let active: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1 AND deactivated = 0)",
        params![user],
        |row| row.get(0),
    )?;
    Ok(Subject::Person(if active { standing(connection, room, user)? } else { None }))
}

/// Makes `change` if the rules allow it, and appends it to the stream.
pub(super) fn change_room(
    connection: &Connection,
    room: &str,
    actor: &str,
    change: &RoomChange,
    now: Millis,
) -> Result<ChatMessage, StoreError> {
    let standing = standing(connection, room, actor)?
        .ok_or_else(|| StoreError::NotFound(Missing::Room(room.to_owned())))?;
    let subject = subject(connection, room, actor, change)?;
    may_change(&standing, change, subject).map_err(|denied| StoreError::Forbidden(denied.0))?;
    let target = change.target().unwrap_or_default();
    let set_room = |column: &str, value: &dyn rusqlite::ToSql| {
        connection.execute(
            &format!("UPDATE rooms SET {column} = ?2 WHERE name = ?1"),
            params![room, value],
        )
    };
    match change {
        RoomChange::Added { .. } => add_member(connection, room, target, Role::Member)?,
        RoomChange::Role { role, .. } => {
            connection.execute(
                "UPDATE memberships SET role = ?3 WHERE room = ?1 AND user_name = ?2",
                params![room, target, role.as_str()],
            )?;
        }
        RoomChange::Kicked { .. } | RoomChange::Banned { .. } => {
            connection.execute(
                "DELETE FROM memberships WHERE room = ?1 AND user_name = ?2",
                params![room, target],
            )?;
            if matches!(change, RoomChange::Banned { .. }) {
                connection.execute(
                    "INSERT INTO bans (room, user_name, banned_by, banned_at) VALUES (?1, ?2, ?3, ?4)",
                    params![room, target, actor, now],
                )?;
            }
        }
        RoomChange::Unbanned { .. } => {
            connection.execute(
                "DELETE FROM bans WHERE room = ?1 AND user_name = ?2",
                params![room, target],
            )?;
        }
        RoomChange::Muted { .. } | RoomChange::Unmuted { .. } => {
            connection.execute(
                "UPDATE memberships SET muted = ?3 WHERE room = ?1 AND user_name = ?2",
                params![room, target, matches!(change, RoomChange::Muted { .. })],
            )?;
        }
        RoomChange::Title { title } => {
            set_room("title", title)?;
        }
        RoomChange::Topic { topic } => {
            set_room("topic", topic)?;
        }
        RoomChange::Archived | RoomChange::Unarchived => {
            set_room("archived", &matches!(change, RoomChange::Archived))?;
        }
        RoomChange::Privacy { private } => {
            set_room("private", private)?;
        }
        RoomChange::Owner { .. } => {
            connection.execute(
                "UPDATE memberships SET role = 'moderator' WHERE room = ?1 AND role = 'owner'",
                params![room],
            )?;
            connection.execute(
                "UPDATE memberships SET role = 'owner', muted = 0 WHERE room = ?1 AND user_name = ?2",
                params![room, target],
            )?;
        }
        RoomChange::Deleted { seq } => {
            // The text is gone from the store, not only hidden: the message's, and that of
            // every edit of it. Its files go too.
            let files: Option<String> = connection.query_row(
                "SELECT files FROM messages WHERE room = ?1 AND seq = ?2",
                params![room, clamp(*seq)],
                |row| row.get(0),
            )?;
            super::files::delete(connection, &file_ids_of(files))?;
            connection.execute(
                "UPDATE messages SET text = '', deleted = 1, mentions = NULL, reactions = NULL, files = NULL
                 WHERE room = ?1 AND seq = ?2",
                params![room, clamp(*seq)],
            )?;
            connection.execute(
                "UPDATE messages SET change = json_set(change, '$.text', '')
                 WHERE room = ?1 AND target = ?2 AND json_extract(change, '$.type') = 'edited'",
                params![room, clamp(*seq)],
            )?;
        }
        RoomChange::Edited { seq, text } => {
            let mentions = mentions_in(connection, room, text)?;
            connection.execute(
                "UPDATE messages SET text = ?3, edited_at = ?4, mentions = ?5 WHERE room = ?1 AND seq = ?2",
                params![room, clamp(*seq), text, now, mentions_column(&mentions)],
            )?;
        }
        RoomChange::Reacted { seq, emoji, on } => {
            let column: Option<String> = connection.query_row(
                "SELECT reactions FROM messages WHERE room = ?1 AND seq = ?2",
                params![room, clamp(*seq)],
                |row| row.get(0),
            )?;
            let reactions = reacted(column, actor, emoji, *on)?;
            connection.execute(
                "UPDATE messages SET reactions = ?3 WHERE room = ?1 AND seq = ?2",
                params![room, clamp(*seq), reactions],
            )?;
        }
    }
    let line = change.describe(actor, str::to_owned);
    let entry = Entry { text: &line, key: None, reply_to: None, change: Some(change) };
    append(connection, room, actor, entry, now)
}
