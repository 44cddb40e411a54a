//! The JSON bodies of the HTTP API (`/api/...`), shared by the server and the page.
//!
//! Every error response is an [`ApiError`] with a 4xx or 5xx status.

use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, DirectMessage, Millis, Role};

/// `POST /api/register` and `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// 3 to 32 characters from `a-z`, `0-9`, `_`, `-`.
    pub username: String,
    /// At least [`MIN_PASSWORD_CHARS`] characters.
    pub password: String,
    /// Registering: the code of an invitation link (`/join/<code>`), which a server that
    /// signs people up by invitation asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite: Option<String>,
}

/// Who may create an account (`--registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Only with an invitation link from an admin.
    Invite,
    /// Anyone who can reach the server.
    Open,
    /// Nobody, invitations included: the accounts there are (or `confab import`ed) are all
    /// there will be. The first account of a new server is still made.
    Closed,
}

/// `GET /api/server`, for anyone: how this server lets people in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// Who may sign up.
    pub registration: Registration,
    /// No account exists yet: the first one to sign up becomes the admin, whatever
    /// `registration` says.
    pub first_account: bool,
    /// The largest file `POST /api/files` takes, in bytes (`--max-upload-mb`).
    #[serde(default)]
    pub max_upload_bytes: u64,
}

/// `GET /api/me`: the signed-in account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The unique user name (the STOMP `login`).
    pub name: String,
    /// What others see, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A server admin.
    pub admin: bool,
    /// Their picture: a file id, at `/api/files/{id}`; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// `PUT /api/me`: the signed-in person's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// 1 to [`MAX_DISPLAY_NAME_CHARS`] visible characters; `null` or empty removes it.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The longest display name.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;

/// Checks a display name: visible characters, one line, within its length. Surrounding
/// white space is trimmed by the caller.
pub fn validate_display_name(name: &str) -> Result<(), String> {
    if name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        Err(format!("a display name has at most {MAX_DISPLAY_NAME_CHARS} characters"))
    } else if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        Err("a display name has no control or direction-override characters".into())
    } else {
        Ok(())
    }
}

/// One person in `GET /api/people`: every active account, for showing names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The user name.
    pub name: String,
    /// The display name, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A bot.
    #[serde(default)]
    pub bot: bool,
    /// Their picture: a file id, at `/api/files/{id}`; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// One account in `GET /api/admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The user name.
    pub name: String,
    /// The display name, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A server admin.
    pub admin: bool,
    /// A bot.
    pub bot: bool,
    /// Deactivated: cannot sign in; messages stay.
    pub deactivated: bool,
    /// When it was made.
    pub created_at: Millis,
    /// The latest use of any of its sessions (to the hour), if any.
    #[serde(default)]
    pub last_active: Option<Millis>,
    /// Their picture: a file id; absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

/// `POST /api/password`: a new password for the signed-in person; their other sessions end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChange {
    /// The password now.
    pub current: String,
    /// The new one.
    pub new: String,
}

/// `POST /api/password/reset`: a new password through a reset link; every session of the
/// account ends, and a new one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    /// The code of the link (`/reset/<code>`).
    pub code: String,
    /// The new password.
    pub password: String,
}

/// A one-time password-reset link, made by an admin for one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetLink {
    /// Whose password it resets.
    pub user: String,
    /// The link's path (`/reset/<code>`): shown once.
    pub path: String,
    /// When it stops working.
    pub expires_at: Millis,
}

/// One of the signed-in person's sessions in `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Its id, for `DELETE /api/sessions/{id}`.
    pub id: String,
    /// The browser or client it was made by (its `User-Agent`, shortened).
    pub device: String,
    /// When it was made.
    pub created_at: Millis,
    /// Its latest use (to the hour).
    pub last_used_at: Millis,
    /// The session making this request.
    pub current: bool,
}

/// `POST /api/admin/invitations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInvitation {
    /// How many accounts it may make, 1 to 1,000.
    pub max_uses: u32,
    /// How long it works, in hours, 1 to 720.
    pub expires_in_hours: u32,
}

/// An invitation link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    /// Its public id, for revoking it.
    pub id: String,
    /// The admin who made it.
    pub created_by: String,
    /// When.
    pub created_at: Millis,
    /// When it stops working.
    pub expires_at: Millis,
    /// How many accounts it may make.
    pub max_uses: u32,
    /// How many it has made.
    pub uses: u32,
    /// Revoked by an admin.
    pub revoked: bool,
    /// The link's path (`/join/<code>`): only in the answer that creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `GET /api/admin/stats`: live figures for the admin page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminStats {
    /// WebSocket sessions open on the node that answered.
    pub connections: u64,
    /// People with a session open on any node.
    pub online: u64,
    /// Room and direct messages stored in the last hour.
    pub messages_last_hour: u64,
    /// Accounts, bots included.
    pub accounts: u64,
    /// Rooms, private ones included.
    pub rooms: u64,
}

/// One member in `GET /api/rooms/{room}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The user name.
    pub name: String,
    /// Their role in the room.
    pub role: Role,
    /// They may not post.
    #[serde(default)]
    pub muted: bool,
}

/// `GET /api/rooms/{room}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomMembers {
    /// The members, by name.
    pub members: Vec<Member>,
    /// Who is banned, by name (shown to moderators and owners only; empty for others).
    #[serde(default)]
    pub banned: Vec<String>,
}

/// The shortest password accepted at registration.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted (argon2 hashes any length, but work should be bounded).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// A signed-in session: the STOMP `passcode` and the HTTP bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionToken {
    /// The account's name: the STOMP `login`.
    pub username: String,
    /// The secret: the STOMP `passcode`, and `Authorization: Bearer <token>` over HTTP.
    pub token: String,
}

/// Every HTTP error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What went wrong, for people.
    pub error: String,
}

/// `POST /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRoom {
    /// 1 to 32 characters from `a-z`, `0-9`, `_`, `-`.
    pub name: String,
    /// Private: invisible to non-members, who join only by being added.
    #[serde(default)]
    pub private: bool,
}

/// One room in `GET /api/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    /// The room's name.
    pub name: String,
    /// How many users have joined it.
    pub members: u64,
    /// Whether the asking user has joined it.
    pub joined: bool,
    /// The id of its latest message; 0 when it has none.
    pub last_seq: u64,
    /// Messages after the asking user's read marker (0 unless joined).
    pub unread: u64,
    /// Of those, the ones that mention the asking user.
    #[serde(default)]
    pub mentions: u64,
    /// Invisible to non-members.
    #[serde(default)]
    pub private: bool,
    /// Read-only.
    #[serde(default)]
    pub archived: bool,
    /// What to show instead of the name, if set.
    #[serde(default)]
    pub title: String,
    /// What the room is about.
    #[serde(default)]
    pub topic: String,
    /// The asking user's role, if a member.
    #[serde(default)]
    pub role: Option<Role>,
    /// The asking user is muted here.
    #[serde(default)]
    pub muted: bool,
}

/// `POST /api/rooms/{room}/read` and `POST /api/dms/{peer}/read`: everything up to `seq`
/// has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMarker {
    /// The last seen message id.
    pub seq: u64,
}

/// `GET /api/rooms/{room}/messages?before=&limit=`: one page of history, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPage {
    /// The messages.
    pub messages: Vec<ChatMessage>,
    /// Whether older messages exist before this page.
    pub more: bool,
}

/// One conversation in `GET /api/dms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmSummary {
    /// The other user.
    pub peer: String,
    /// The asking user's inbox id of the latest message with `peer`.
    pub last_seq: u64,
    /// Messages from `peer` after the read marker.
    pub unread: u64,
}

/// `GET /api/dms/{peer}/messages?before=&limit=`: one page of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmPage {
    /// The messages, with the asking user's inbox ids.
    pub messages: Vec<DirectMessage>,
    /// Whether older messages exist before this page.
    pub more: bool,
}

/// `GET /api/search?q=&room=&from=&before=&limit=`: messages the caller may read that
/// match, best first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPage {
    /// The matches, best first: relevance, then recency.
    pub hits: Vec<SearchHit>,
    /// Older matches exist: ask again with `before` set to [`SearchPage::before`].
    pub more: bool,
    /// Where older matches start (server time), when `more`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Millis>,
}

/// A message a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The room it was said in, or none for a direct message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// The other person of a direct message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Its id in the room, or in the caller's inbox.
    pub seq: u64,
    /// Who said it.
    pub sender: String,
    /// When.
    pub sent_at: Millis,
    /// Its text (plain, Markdown's marks taken off) around the first match, the matching
    /// words marked.
    pub parts: Vec<crate::search::Part>,
}

/// The most search results one call returns.
pub const MAX_SEARCH_RESULTS: usize = 100;

/// The most messages one history page returns.
pub const MAX_PAGE: usize = 200;
/// Messages a room subscription replays when it gives no `since`.
pub const DEFAULT_REPLAY: usize = 50;

/// `POST /api/rooms/{room}/messages` and `POST /api/dms/{peer}/messages`: a message from a
/// script or bot. An `Idempotency-Key` header makes a retry safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// What to say.
    pub text: String,
    /// The id of the message this answers (rooms only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// Files the caller uploaded (`POST /api/files`) and has not sent yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
}

/// `POST /api/rooms/{room}/webhooks`: a new incoming webhook, posting as the bot `name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewWebhook {
    /// The bot it posts as; a new account name.
    pub name: String,
}

/// An incoming webhook of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    /// Its public id (for deleting it).
    pub id: String,
    /// The room it posts into.
    pub room: String,
    /// The bot it posts as.
    pub name: String,
    /// Who made it.
    pub created_by: String,
    /// When.
    pub created_at: Millis,
    /// The secret URL path (`/hooks/...`): only in the answer that creates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `POST /api/files?name=`: the file, stored and not yet sent. Sending it with a message
/// (its id in the message's `files`) makes it readable by whoever reads that message; a
/// file sent with no message within an hour is deleted.
pub type Upload = crate::chat::Attachment;

/// The longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 200;

/// The side of an avatar, in pixels: the server crops and resizes pictures to this square.
pub const AVATAR_PIXELS: u32 = 128;

/// Whether `id` is a file id: 32 lowercase hexadecimal digits.
pub fn is_file_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a file's name: 1 to [`MAX_FILE_NAME_CHARS`] characters, a name and not a path
/// (no `/` or `\\`, not `.` or `..`), no control or direction-override characters.
pub fn validate_file_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("a file needs a name".into());
    }
    if name.chars().count() > MAX_FILE_NAME_CHARS {
        return Err(format!("a file name has at most {MAX_FILE_NAME_CHARS} characters"));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err("a file name cannot be a path: no / or \\".into());
    }
    if let Some(bad) = name
        .chars()
        .find(|&c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(format!(
            "a file name cannot hold control or direction-override characters (U+{:04X})",
            u32::from(bad)
        ));
    }
    Ok(())
}

/// A size in bytes as people read it: `812 B`, `4.2 KB`, `25 MB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn file_ids_are_32_lowercase_hex_digits() {
        assert!(is_file_id("0123456789abcdef0123456789abcdef"));
        assert!(!is_file_id("0123456789ABCDEF0123456789abcdef"));
        assert!(!is_file_id("../../etc/passwd"));
        assert!(!is_file_id(""));
    }

    #[test]
    fn file_names_are_names_not_paths() {
        assert!(validate_file_name("report 2026.pdf").is_ok());
        assert!(validate_file_name("résumé.txt").is_ok());
        for bad in [
            "",
            "  ",
            "../etc/passwd",
            "a/b",
            "a\\b",
            ".",
            "..",
            "a\nb",
            "a\u{0}b",
            "evil\u{202E}fdp.exe",
        ] {
            assert!(validate_file_name(bad).is_err(), "{bad:?} was taken");
        }
        assert!(validate_file_name(&"x".repeat(MAX_FILE_NAME_CHARS + 1)).is_err());
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(812), "812 B");
        assert_eq!(human_size(4_200), "4.2 KB");
        assert_eq!(human_size(25_000_000), "25 MB");
    }
}
