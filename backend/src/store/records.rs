//! The export format: one JSON object per line, tagged by `kind`. It is also the backup
//! format, and the way a team moves from the embedded store to PostgreSQL: every id,
//! password hash and read marker comes across unchanged.
//!
//! Records come in dependency order: users, then rooms, memberships, bans, messages,
//! inboxes, direct messages, read markers, webhooks, links, and files with their bytes
//! (base64, in pieces). Fields added since the
//! first version have defaults, so older exports still import.

use serde::{Deserialize, Serialize};
use shared::chat::{Attachment, Millis, Reaction, Role, RoomChange};

fn no(value: &bool) -> bool {
    !value
}

fn member(role: &Role) -> bool {
    *role == Role::Member
}

fn default_role() -> Role {
    Role::Member
}

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
        #[serde(default, skip_serializing_if = "no")]
        bot: bool,
        /// A server admin.
        #[serde(default, skip_serializing_if = "no")]
        admin: bool,
        /// Deactivated.
        #[serde(default, skip_serializing_if = "no")]
        deactivated: bool,
        /// The display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
        /// Their picture's file id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        avatar: Option<String>,
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
        /// Private.
        #[serde(default, skip_serializing_if = "no")]
        private: bool,
        /// Archived.
        #[serde(default, skip_serializing_if = "no")]
        archived: bool,
        /// Its title.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        title: String,
        /// Its topic.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        topic: String,
    },
    /// A user's membership of a room.
    Member {
        /// The room.
        room: String,
        /// The member.
        user: String,
        /// The read marker.
        last_read: u64,
        /// Their role.
        #[serde(default = "default_role", skip_serializing_if = "member")]
        role: Role,
        /// Muted.
        #[serde(default, skip_serializing_if = "no")]
        muted: bool,
    },
    /// A ban from a room.
    Ban {
        /// The room.
        room: String,
        /// Who is banned.
        user: String,
        /// By whom.
        by: String,
        /// When.
        at: Millis,
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
        /// The change to the room it records, if it is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<RoomChange>,
        /// Deleted (its text is empty).
        #[serde(default, skip_serializing_if = "no")]
        deleted: bool,
        /// The message it answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
        /// The members it mentions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<String>,
        /// When its text was last edited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited_at: Option<Millis>,
        /// Its reactions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reactions: Vec<Reaction>,
        /// The files sent with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
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
        /// The edit, deletion or reaction it records, if it is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<RoomChange>,
        /// Deleted (its text is empty).
        #[serde(default, skip_serializing_if = "no")]
        deleted: bool,
        /// When its text was last edited.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited_at: Option<Millis>,
        /// Its reactions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        reactions: Vec<Reaction>,
        /// The files sent with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<Attachment>,
        /// The id of the other participant's copy in their inbox.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pair_seq: Option<u64>,
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
    /// An invitation or reset link (by the hash of its code).
    Link {
        /// The SHA-256 of its code.
        code_hash: String,
        /// Its public id.
        id: String,
        /// `invite` or `reset`.
        link: String,
        /// A reset link's account.
        user: Option<String>,
        /// Who made it.
        created_by: String,
        /// When.
        created_at: Millis,
        /// When it stops working.
        expires_at: Millis,
        /// How many times it works.
        max_uses: u32,
        /// How many times it worked.
        uses: u32,
        /// Revoked.
        revoked: bool,
    },
    /// A file's description and where it belongs; its bytes follow as `FilePart`s.
    File {
        /// Its id, name, type, size and an image's size.
        #[serde(flatten)]
        attachment: Attachment,
        /// Who uploaded it.
        owner: String,
        /// When.
        created_at: Millis,
        /// A thumbnail is stored with it.
        #[serde(default, skip_serializing_if = "no")]
        thumb: bool,
        /// Sent with a message (or a picture).
        #[serde(default, skip_serializing_if = "no")]
        sent: bool,
        /// The room it was sent to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        /// The person a direct message sent it to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<String>,
        /// Its owner's picture.
        #[serde(default, skip_serializing_if = "no")]
        avatar: bool,
    },
    /// A piece of a file's bytes (or of its thumbnail's), in order from 0.
    FilePart {
        /// The file.
        id: String,
        /// Of its thumbnail.
        #[serde(default, skip_serializing_if = "no")]
        thumb: bool,
        /// Which piece.
        part: u32,
        /// The bytes, base64.
        data: String,
    },
}

/// The largest piece of a file in one [`Record::FilePart`].
pub const FILE_PART_BYTES: usize = 256 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_json_lines() {
        let record = Record::Member {
            room: "lobby".into(),
            user: "ann".into(),
            last_read: 4,
            role: Role::Member,
            muted: false,
        };
        let line = serde_json::to_string(&record).unwrap();
        assert_eq!(line, r#"{"kind":"member","room":"lobby","user":"ann","last_read":4}"#);
        assert_eq!(serde_json::from_str::<Record>(&line).unwrap(), record);
    }
}
