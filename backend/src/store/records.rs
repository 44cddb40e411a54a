//! The export format: one JSON object per line, tagged by `kind`. It is also the backup
//! format, and the way a team moves from the embedded store to PostgreSQL: every id,
//! password hash and read marker comes across unchanged.
//!
//! Records come in dependency order: users, then rooms, memberships, messages, inboxes,
//! direct messages and read markers.

use serde::{Deserialize, Serialize};
use shared::chat::Millis;

/// One exported row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// An account.
    User {
        /// The unique name.
        name: String,
        /// The argon2 hash, as stored (empty for a bot).
        password_hash: String,
        /// When it was created.
        created_at: Millis,
        /// A bot account.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bot: bool,
    },
    /// A room.
    Room {
        /// The unique name.
        name: String,
        /// Who created it (`None` for the lobby).
        created_by: Option<String>,
        /// When.
        created_at: Millis,
        /// The id of its latest message.
        last_seq: u64,
    },
    /// A user's membership of a room.
    Member {
        /// The room.
        room: String,
        /// The member.
        user: String,
        /// The read marker.
        last_read: u64,
    },
    /// A room message.
    Message {
        /// The room.
        room: String,
        /// Its id in the room.
        seq: u64,
        /// Who sent it.
        sender: String,
        /// What was said.
        text: String,
        /// When.
        sent_at: Millis,
        /// Its idempotency key, if it had one.
        key: Option<String>,
    },
    /// A user's DM inbox counter.
    Inbox {
        /// The owner.
        owner: String,
        /// The id of the latest message in it.
        last_seq: u64,
    },
    /// One inbox's copy of a direct message.
    Dm {
        /// Whose inbox.
        owner: String,
        /// Its id in that inbox.
        seq: u64,
        /// The other participant.
        peer: String,
        /// Who sent it.
        sender: String,
        /// Who it is for.
        recipient: String,
        /// What was said.
        text: String,
        /// When.
        sent_at: Millis,
        /// Its idempotency key, if it had one.
        key: Option<String>,
    },
    /// A read marker of a conversation.
    DmRead {
        /// Whose marker.
        owner: String,
        /// The conversation's other participant.
        peer: String,
        /// The last inbox id read.
        last_read: u64,
    },
    /// An incoming webhook (its bot is a `User` record before it).
    Webhook {
        /// Its public id.
        id: String,
        /// The room it posts into.
        room: String,
        /// The bot it posts as.
        name: String,
        /// The SHA-256 of its secret, so that its URL keeps working after a move.
        secret_hash: String,
        /// Who made it.
        created_by: String,
        /// When.
        created_at: Millis,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_json_lines() {
        let record = Record::Member { room: "lobby".into(), user: "ann".into(), last_read: 4 };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(line, r#"{"kind":"member","room":"lobby","user":"ann","last_read":4}"#);
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
    }
}
