//! Who may do what in a room: the one set of rules, pure, that every path asks (STOMP
//! SUBSCRIBE and SEND, the HTTP history, room and member calls, moderation).
//!
//! The server's store evaluates these rules inside the transaction that acts on them: a
//! person banned a moment ago cannot slip a message in, and a moderator demoted a moment
//! ago cannot ban anyone. The page asks the same rules which buttons to show; the server's
//! answer is the one that counts.
//!
//! Server admins are not room members by right: they see private rooms only by their own
//! membership. In public rooms (and the lobby, which nobody owns) they act above owners.

use crate::chat::{Role, RoomChange};

/// One person's standing in one room, as the store reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// The room is private: invisible to non-members.
    pub private: bool,
    /// The room is read-only.
    pub archived: bool,
    /// The room is the lobby, everybody's first room.
    pub lobby: bool,
    /// The person's role, if a member.
    pub role: Option<Role>,
    /// The person is banned from the room.
    pub banned: bool,
    /// The person may not post.
    pub muted: bool,
    /// The person is a server admin.
    pub admin: bool,
}

/// Why something is refused; the text is what the client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

fn deny<T>(text: impl Into<String>) -> Result<T, Denied> {
    Err(Denied(text.into()))
}

/// What a change acts on, as the store found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The room itself (its title, topic, privacy, archive).
    Room,
    /// A person: their standing in the room, or `None` if there is no such account.
    Person(Option<Standing>),
    /// A message of the room: whether it exists, and whether the actor wrote it.
    Message {
        /// It exists and is not deleted yet.
        exists: bool,
        /// The actor sent it.
        own: bool,
    },
}

/// Power, in order: what a person may do to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Outsider,
    Member,
    Moderator,
    Owner,
    Admin,
}

impl Standing {
    fn rank(&self) -> Rank {
        let by_role = match self.role {
            None => Rank::Outsider,
            Some(Role::Member) => Rank::Member,
            Some(Role::Moderator) => Rank::Moderator,
            Some(Role::Owner) => Rank::Owner,
        };
        if self.admin && !self.private { Rank::Admin } else { by_role }
    }

    /// Whether the person is a member.
    pub fn is_member(&self) -> bool {
        self.role.is_some()
    }

    /// Reading the room: its history, its live stream, its members. A private room is
    /// there only for its members; nobody banned reads.
    pub fn may_read(&self) -> Result<(), Denied> {
        if self.banned {
            deny("you are banned from this room")
        } else if self.private && !self.is_member() {
            // The same words as for a room that does not exist: nothing tells an outsider
            // that a private room of this name is there.
            deny("no such room, or it is private")
        } else {
            Ok(())
        }
    }

    /// Joining: public rooms are open to everyone not banned; private ones are joined only
    /// by being added.
    pub fn may_join(&self) -> Result<(), Denied> {
        self.may_read()?;
        if self.private && !self.is_member() {
            deny("no such room, or it is private")
        } else {
            Ok(())
        }
    }

    /// Posting (and saying one is typing), for a member: not muted, not archived.
    pub fn may_post(&self) -> Result<(), Denied> {
        self.may_read()?;
        if !self.is_member() {
            deny("join the room first")
        } else if self.muted {
            deny("you are muted in this room")
        } else if self.archived {
            deny("this room is archived: it is read-only")
        } else {
            Ok(())
        }
    }
}

/// Whether `actor` may make `change` to the room, acting on `subject`.
pub fn may_change(actor: &Standing, change: &RoomChange, subject: Subject) -> Result<(), Denied> {
    actor.may_read()?;
    if actor.archived && *change != RoomChange::Unarchived {
        return deny("this room is archived: reopen it first");
    }
    let rank = actor.rank();
    let need = |least: Rank, what: &str| {
        if rank >= least { Ok(()) } else { deny(format!("only {what} may do that")) }
    };
    let person = || match subject {
        Subject::Person(Some(standing)) => Ok(standing),
        _ => deny(format!("no user named {:?}", change.target().unwrap_or_default())),
    };
    // Acting on someone needs more power than theirs.
    let above = |target: &Standing, what: &str| {
        if target.rank() < rank {
            Ok(())
        } else {
            deny(format!("you cannot {what} someone of equal or higher standing"))
        }
    };
    match change {
        RoomChange::Added { .. } => {
            if !actor.is_member() && rank < Rank::Admin {
                return deny("only members may add people");
            }
            let target = person()?;
            if target.banned {
                deny("that person is banned from this room: lift the ban first")
            } else if target.is_member() {
                deny("that person is a member already")
            } else {
                Ok(())
            }
        }
        RoomChange::Role { .. } => {
            need(Rank::Owner, "the owner")?;
            let target = person()?;
            if !target.is_member() {
                return deny("that person is not a member");
            }
            above(&target, "change the role of")
        }
        RoomChange::Kicked { .. } | RoomChange::Muted { .. } | RoomChange::Unmuted { .. } => {
            need(Rank::Moderator, "moderators and owners")?;
            if actor.lobby && matches!(change, RoomChange::Kicked { .. }) {
                return deny("nobody leaves the lobby: ban them instead");
            }
            let target = person()?;
            if !target.is_member() {
                return deny("that person is not a member");
            }
            above(&target, "do that to")
        }
        RoomChange::Banned { .. } => {
            need(Rank::Moderator, "moderators and owners")?;
            let target = person()?;
            if target.banned {
                return deny("that person is banned already");
            }
            above(&target, "ban")
        }
        RoomChange::Unbanned { .. } => {
            need(Rank::Moderator, "moderators and owners")?;
            if person()?.banned { Ok(()) } else { deny("that person is not banned") }
        }
        RoomChange::Title { .. }
        | RoomChange::Topic { .. }
        | RoomChange::Archived
        | RoomChange::Unarchived => {
            need(Rank::Moderator, "moderators and owners")?;
            match change {
                RoomChange::Archived if actor.lobby => deny("the lobby cannot be archived"),
                RoomChange::Archived if actor.archived => deny("the room is archived already"),
                RoomChange::Unarchived if !actor.archived => deny("the room is not archived"),
                _ => Ok(()),
            }
        }
        RoomChange::Privacy { private } => {
            need(Rank::Owner, "the owner")?;
            if actor.lobby {
                deny("the lobby is open to everyone")
            } else if *private == actor.private {
                deny(if *private {
                    "the room is private already"
                } else {
                    "the room is public already"
                })
            } else {
                Ok(())
            }
        }
        RoomChange::Owner { .. } => {
            need(Rank::Owner, "the owner")?;
            if actor.lobby {
                return deny("the lobby has no owner");
            }
            let target = person()?;
            if !target.is_member() {
                deny("ownership passes only to a member")
            } else if target.role == Some(Role::Owner) {
                deny("that person owns the room already")
            } else {
                Ok(())
            }
        }
        RoomChange::Deleted { .. } => match subject {
            Subject::Message { exists: false, .. } => deny("no such message"),
            Subject::Message { own: true, .. } if actor.is_member() => Ok(()),
            Subject::Message { .. } => {
                need(Rank::Moderator, "moderators and owners (or its author)")
            }
            _ => deny("no such message"),
        },
        RoomChange::Edited { .. } => match subject {
            Subject::Message { exists: true, own: true } => actor.may_post(),
            Subject::Message { exists: true, own: false } => {
                deny("only its author may edit a message")
            }
            _ => deny("no such message"),
        },
        RoomChange::Reacted { .. } => match subject {
            Subject::Message { exists: true, .. } => actor.may_post(),
            _ => deny("no such message"),
        },
    }
}

/// Whether `actor` may make `change` to a message of a direct conversation they are in:
/// their own to edit or delete, any to react to. Nothing else changes in a conversation.
pub fn may_change_dm(change: &RoomChange, subject: Subject) -> Result<(), Denied> {
    let Subject::Message { exists: true, own } = subject else {
        return deny("no such message");
    };
    match change {
        RoomChange::Edited { .. } if own => Ok(()),
        RoomChange::Edited { .. } => deny("only its author may edit a message"),
        RoomChange::Deleted { .. } if own => Ok(()),
        RoomChange::Deleted { .. } => deny("only its author may delete a direct message"),
        RoomChange::Reacted { .. } => Ok(()),
        _ => deny("direct messages take edits, deletions and reactions only"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_direct_messages_authors_edit_and_delete_and_both_react() {
        let mine = Subject::Message { exists: true, own: true };
        let theirs = Subject::Message { exists: true, own: false };
        let gone = Subject::Message { exists: false, own: false };
        let edit = RoomChange::Edited { seq: 1, text: "x".into() };
        let react = RoomChange::Reacted { seq: 1, emoji: "👍".into(), on: true };
        assert!(may_change_dm(&edit, mine).is_ok() && may_change_dm(&edit, theirs).is_err());
        let delete = RoomChange::Deleted { seq: 1 };
        assert!(may_change_dm(&delete, mine).is_ok() && may_change_dm(&delete, theirs).is_err());
        assert!(may_change_dm(&react, theirs).is_ok() && may_change_dm(&react, gone).is_err());
        assert!(may_change_dm(&RoomChange::Archived, mine).is_err());
    }

    fn member(role: Role) -> Standing {
        Standing { role: Some(role), ..Standing::default() }
    }

    fn ban(user: &str) -> RoomChange {
        RoomChange::Banned { user: user.into() }
    }

    #[test]
    fn outsiders_see_nothing_of_private_rooms() {
        let outsider = Standing { private: true, ..Standing::default() };
        assert!(outsider.may_read().is_err());
        assert!(outsider.may_join().is_err());
        assert!(outsider.may_post().is_err());
        let admin = Standing { admin: true, ..outsider };
        assert!(admin.may_read().is_err(), "admins too: they are not members");
        assert!(Standing::default().may_read().is_ok(), "a public room is readable");
        assert!(Standing::default().may_join().is_ok());
    }

    #[test]
    fn banned_muted_and_archived_refuse_what_they_should() {
        let banned = Standing { banned: true, ..Standing::default() };
        assert!(banned.may_read().is_err() && banned.may_join().is_err());
        let muted = Standing { muted: true, ..member(Role::Member) };
        assert!(muted.may_read().is_ok());
        assert_eq!(muted.may_post(), deny("you are muted in this room"));
        let archived = Standing { archived: true, ..member(Role::Owner) };
        assert!(archived.may_post().is_err());
        assert!(
            may_change(&archived, &RoomChange::Topic { topic: "x".into() }, Subject::Room).is_err()
        );
        assert!(may_change(&archived, &RoomChange::Unarchived, Subject::Room).is_ok());
    }

    #[test]
    fn power_flows_down_only() {
        let owner = member(Role::Owner);
        let moderator = member(Role::Moderator);
        let plain = member(Role::Member);
        let person = |standing: Standing| Subject::Person(Some(standing));
        // A moderator bans a member, not the owner nor another moderator.
        assert!(may_change(&moderator, &ban("m"), person(plain)).is_ok());
        assert!(may_change(&moderator, &ban("o"), person(owner)).is_err());
        assert!(may_change(&moderator, &ban("m2"), person(moderator)).is_err());
        // A member bans nobody, and cannot promote themselves.
        assert!(may_change(&plain, &ban("x"), person(plain)).is_err());
        let promote = RoomChange::Role { user: "me".into(), role: Role::Moderator };
        assert!(may_change(&plain, &promote, person(plain)).is_err());
        assert!(may_change(&moderator, &promote, person(plain)).is_err(), "owners set roles");
        assert!(may_change(&owner, &promote, person(plain)).is_ok());
        // An admin acts above the owner of a public room, not in a private one.
        let admin = Standing { admin: true, ..Standing::default() };
        assert!(may_change(&admin, &ban("o"), person(owner)).is_ok());
        let private_admin = Standing { private: true, ..admin };
        assert!(may_change(&private_admin, &ban("o"), person(owner)).is_err());
        assert!(may_change(&owner, &ban("nobody"), Subject::Person(None)).is_err());
    }

    #[test]
    fn messages_are_deleted_by_their_author_or_a_moderator() {
        let delete = RoomChange::Deleted { seq: 3 };
        let mine = Subject::Message { exists: true, own: true };
        let theirs = Subject::Message { exists: true, own: false };
        assert!(may_change(&member(Role::Member), &delete, mine).is_ok());
        assert!(may_change(&member(Role::Member), &delete, theirs).is_err());
        assert!(may_change(&member(Role::Moderator), &delete, theirs).is_ok());
        let gone = Subject::Message { exists: false, own: false };
        assert!(may_change(&member(Role::Owner), &delete, gone).is_err());
    }

    #[test]
    fn authors_edit_and_members_who_may_post_react() {
        let edit = RoomChange::Edited { seq: 3, text: "fixed".into() };
        let react = RoomChange::Reacted { seq: 3, emoji: "👍".into(), on: true };
        let mine = Subject::Message { exists: true, own: true };
        let theirs = Subject::Message { exists: true, own: false };
        let gone = Subject::Message { exists: false, own: false };
        assert!(may_change(&member(Role::Member), &edit, mine).is_ok());
        assert!(
            may_change(&member(Role::Owner), &edit, theirs).is_err(),
            "owners delete, not edit"
        );
        assert!(may_change(&member(Role::Member), &edit, gone).is_err());
        assert!(may_change(&member(Role::Member), &react, theirs).is_ok());
        assert!(may_change(&member(Role::Member), &react, gone).is_err());
        let muted = Standing { muted: true, ..member(Role::Member) };
        assert!(may_change(&muted, &edit, mine).is_err());
        assert!(may_change(&muted, &react, theirs).is_err());
        assert!(may_change(&Standing::default(), &react, theirs).is_err(), "members only");
        let banned = Standing { banned: true, ..Standing::default() };
        assert!(may_change(&banned, &react, theirs).is_err());
    }

    #[test]
    fn the_lobby_stays_open_and_ownerless() {
        let admin = Standing { lobby: true, admin: true, ..Standing::default() };
        assert!(may_change(&admin, &RoomChange::Privacy { private: true }, Subject::Room).is_err());
        assert!(may_change(&admin, &RoomChange::Archived, Subject::Room).is_err());
        assert!(
            may_change(&admin, &RoomChange::Topic { topic: "hi".into() }, Subject::Room).is_ok()
        );
        let plain = Subject::Person(Some(member(Role::Member)));
        assert!(may_change(&admin, &RoomChange::Kicked { user: "x".into() }, plain).is_err());
        assert!(may_change(&admin, &ban("x"), plain).is_ok());
    }
}
