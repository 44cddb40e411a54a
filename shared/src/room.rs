//! Rooms' roles, and the changes people make to a room: each is stored as an event in the
//! room's stream (a [`crate::chat::ChatMessage`] with `change` set), so that open clients
//! apply it at once and a client that resumes with `since` catches up on it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The most characters of a room's title.
pub const MAX_TITLE_CHARS: usize = 64;
/// The most characters of a room's topic.
pub const MAX_TOPIC_CHARS: usize = 250;

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A member: reads and posts.
    Member,
    /// Also renames, sets the topic, archives, kicks, bans, mutes and deletes any message.
    Moderator,
    /// Also sets roles, makes the room private or public, and hands ownership on. One per
    /// room; the lobby has none.
    Owner,
}

impl Role {
    /// The role's name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Moderator => "moderator",
            Role::Owner => "owner",
        }
    }

    /// The role a stored name stands for.
    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "member" => Some(Role::Member),
            "moderator" => Some(Role::Moderator),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change to a room, asked for with `POST /api/rooms/{room}/changes` and delivered in the
/// room's stream. Who made it is the event's `sender`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RoomChange {
    /// A person was added to the room (how a private room gains members).
    Added {
        /// Who.
        user: String,
    },
    /// A member's role changed (to moderator or back to member).
    Role {
        /// Who.
        user: String,
        /// The new role: `moderator` or `member`.
        role: Role,
    },
    /// A member was removed; in a public room they may come back.
    Kicked {
        /// Who.
        user: String,
    },
    /// A person was removed and may not come back until unbanned.
    Banned {
        /// Who.
        user: String,
    },
    /// A ban was lifted.
    Unbanned {
        /// Who.
        user: String,
    },
    /// A member may no longer post.
    Muted {
        /// Who.
        user: String,
    },
    /// A member may post again.
    Unmuted {
        /// Who.
        user: String,
    },
    /// The room's title changed (its name, in URLs and destinations, stays).
    Title {
        /// The new title; empty shows the name.
        title: String,
    },
    /// The room's topic changed.
    Topic {
        /// The new topic; empty clears it.
        topic: String,
    },
    /// The room became read-only.
    Archived,
    /// The room can be posted in again.
    Unarchived,
    /// The room became private (invisible to non-members) or public.
    Privacy {
        /// Private or not.
        private: bool,
    },
    /// Ownership passed to another member; the old owner becomes a moderator.
    Owner {
        /// The new owner.
        user: String,
    },
    /// A message was deleted: its text is gone from the store.
    Deleted {
        /// Its id in the room.
        seq: u64,
    },
    /// Its author changed a message's text.
    Edited {
        /// The message's id in the room.
        seq: u64,
        /// The new text (empty once the message is deleted).
        text: String,
    },
    /// Someone added (`on`) or took back a reaction to a message. Applying it twice is
    /// harmless: it says what the reaction is now, not to toggle it.
    Reacted {
        /// The message's id in the room.
        seq: u64,
        /// The emoji.
        emoji: String,
        /// Whether the reaction is there now.
        on: bool,
    },
}

impl RoomChange {
    /// The person the change is about, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            RoomChange::Added { user }
            | RoomChange::Role { user, .. }
            | RoomChange::Kicked { user }
            | RoomChange::Banned { user }
            | RoomChange::Unbanned { user }
            | RoomChange::Muted { user }
            | RoomChange::Unmuted { user }
            | RoomChange::Owner { user } => Some(user),
            RoomChange::Title { .. }
            | RoomChange::Topic { .. }
            | RoomChange::Archived
            | RoomChange::Unarchived
            | RoomChange::Privacy { .. }
            | RoomChange::Deleted { .. }
            | RoomChange::Edited { .. }
            | RoomChange::Reacted { .. } => None,
        }
    }

    /// The message the change is about: a deletion, an edit or a reaction. Such entries
    /// change a message's look; the page shows no line of their own.
    pub fn message(&self) -> Option<u64> {
        match self {
            RoomChange::Deleted { seq }
            | RoomChange::Edited { seq, .. }
            | RoomChange::Reacted { seq, .. } => Some(*seq),
            _ => None,
        }
    }

    /// The person who loses the room by this change (kicked or banned).
    pub fn removes(&self) -> Option<&str> {
        match self {
            RoomChange::Kicked { user } | RoomChange::Banned { user } => Some(user),
            _ => None,
        }
    }

    /// Checks what the change carries: a title and a topic of visible characters within
    /// their lengths, a role that a change can give.
    pub fn validate(&self) -> Result<(), String> {
        let line = |what: &str, text: &str, max: usize| {
            if text.chars().count() > max {
                Err(format!("a {what} has at most {max} characters"))
            } else if text.chars().any(char::is_control) {
                Err(format!("a {what} has no control characters or line breaks"))
            } else {
                Ok(())
            }
        };
        match self {
            RoomChange::Title { title } => line("title", title, MAX_TITLE_CHARS),
            RoomChange::Topic { topic } => line("topic", topic, MAX_TOPIC_CHARS),
            RoomChange::Role { role: Role::Owner, .. } => {
                Err("ownership passes with {\"type\":\"owner\",\"user\":...}".into())
            }
            RoomChange::Edited { text, .. } => {
                crate::chat::validate_text(text).map_err(|reason| reason.to_string())
            }
            RoomChange::Reacted { emoji, .. } => crate::chat::validate_emoji(emoji),
            _ => Ok(()),
        }
    }

    /// The line a room shows for the change, `actor` being who made it: "ann made bob a
    /// moderator". `name` turns a user name into what to show for that person.
    pub fn describe(&self, actor: &str, name: impl Fn(&str) -> String) -> String {
        let (actor, target) = (name(actor), self.target().map(&name).unwrap_or_default());
        match self {
            RoomChange::Added { .. } => format!("{actor} added {target}"),
            RoomChange::Role { role: Role::Moderator, .. } => {
                format!("{actor} made {target} a moderator")
            }
            RoomChange::Role { .. } => format!("{actor} made {target} a member"),
            RoomChange::Kicked { .. } => format!("{actor} removed {target}"),
            RoomChange::Banned { .. } => format!("{actor} banned {target}"),
            RoomChange::Unbanned { .. } => format!("{actor} lifted the ban on {target}"),
            RoomChange::Muted { .. } => format!("{actor} muted {target}"),
            RoomChange::Unmuted { .. } => format!("{actor} unmuted {target}"),
            RoomChange::Title { title } if title.is_empty() => {
                format!("{actor} removed the room's title")
            }
            RoomChange::Title { title } => format!("{actor} renamed the room to {title}"),
            RoomChange::Topic { topic } if topic.is_empty() => format!("{actor} cleared the topic"),
            RoomChange::Topic { topic } => format!("{actor} set the topic: {topic}"),
            RoomChange::Archived => format!("{actor} archived the room"),
            RoomChange::Unarchived => format!("{actor} reopened the room"),
            RoomChange::Privacy { private: true } => format!("{actor} made the room private"),
            RoomChange::Privacy { private: false } => format!("{actor} made the room public"),
            RoomChange::Owner { .. } => format!("{actor} made {target} the owner"),
            RoomChange::Deleted { .. } => format!("{actor} deleted a message"),
            RoomChange::Edited { .. } => format!("{actor} edited a message"),
            RoomChange::Reacted { emoji, on: true, .. } => format!("{actor} reacted {emoji}"),
            RoomChange::Reacted { emoji, on: false, .. } => {
                format!("{actor} took back {emoji}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_tagged_json() {
        let change = RoomChange::Role { user: "bob".into(), role: Role::Moderator };
        let json = serde_json::to_string(&change).unwrap();
        assert_eq!(json, r#"{"type":"role","user":"bob","role":"moderator"}"#);
        assert_eq!(serde_json::from_str::<RoomChange>(&json).unwrap(), change);
        assert_eq!(serde_json::to_string(&RoomChange::Archived).unwrap(), r#"{"type":"archived"}"#);
    }

    #[test]
    fn lines_read_as_sentences() {
        let change = RoomChange::Role { user: "bob".into(), role: Role::Moderator };
        assert_eq!(change.describe("ann", str::to_owned), "ann made bob a moderator");
        let shout = |name: &str| name.to_uppercase();
        assert_eq!(
            RoomChange::Banned { user: "carol".into() }.describe("ann", shout),
            "ANN banned CAROL"
        );
        assert_eq!(RoomChange::Archived.describe("ann", str::to_owned), "ann archived the room");
    }

    #[test]
    fn bad_titles_topics_and_roles_are_refused() {
        assert!(RoomChange::Title { title: "x".repeat(65) }.validate().is_err());
        assert!(RoomChange::Topic { topic: "a\nb".into() }.validate().is_err());
        assert!(RoomChange::Role { user: "bob".into(), role: Role::Owner }.validate().is_err());
        assert!(RoomChange::Topic { topic: "Release planning".into() }.validate().is_ok());
    }

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Owner > Role::Moderator && Role::Moderator > Role::Member);
        for role in [Role::Member, Role::Moderator, Role::Owner] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
    }
}
