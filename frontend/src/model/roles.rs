//! What the page offers a person in a room: the actions on each member, the room's
//! settings they may change, and why they may not post. Decided by the server's own rules
//! ([`shared::access`]), so the page shows exactly the buttons that will work; the
//! server's answer is still the one that counts.

use shared::access::{Standing, Subject, may_change};
use shared::api::{Member, RoomSummary};
use shared::chat::{LOBBY, Role, RoomChange};

/// The signed-in person's standing in a room, from the room list.
pub fn viewer(room: &RoomSummary, admin: bool) -> Standing {
    Standing {
        private: room.private,
        archived: room.archived,
        lobby: room.name == LOBBY,
        role: room.role,
        banned: false,
        muted: room.muted,
        admin,
    }
}

/// A member's standing in the same room, as far as the page knows it.
pub fn standing_of(member: &Member, room: &RoomSummary) -> Standing {
    Standing {
        role: Some(member.role),
        muted: member.muted,
        admin: false,
        banned: false,
        ..viewer(room, false)
    }
}

/// Something one may do to a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAction {
    /// Make them a moderator.
    MakeModerator,
    /// Make a moderator a member again.
    MakeMember,
    /// Hand them ownership.
    MakeOwner,
    /// Stop them posting.
    Mute,
    /// Let them post again.
    Unmute,
    /// Remove them.
    Kick,
    /// Remove them for good.
    Ban,
}

impl MemberAction {
    /// The button's text.
    pub fn label(self) -> &'static str {
        match self {
            MemberAction::MakeModerator => "Make moderator",
            MemberAction::MakeMember => "Make member",
            MemberAction::MakeOwner => "Make owner",
            MemberAction::Mute => "Mute",
            MemberAction::Unmute => "Unmute",
            MemberAction::Kick => "Remove",
            MemberAction::Ban => "Ban",
        }
    }

    /// Whether the action takes something away (shown in red).
    pub fn harsh(self) -> bool {
        matches!(self, MemberAction::Kick | MemberAction::Ban | MemberAction::Mute)
    }

    /// The change it asks the server for.
    pub fn change(self, user: &str) -> RoomChange {
        let user = user.to_owned();
        match self {
            MemberAction::MakeModerator => RoomChange::Role { user, role: Role::Moderator },
            MemberAction::MakeMember => RoomChange::Role { user, role: Role::Member },
            MemberAction::MakeOwner => RoomChange::Owner { user },
            MemberAction::Mute => RoomChange::Muted { user },
            MemberAction::Unmute => RoomChange::Unmuted { user },
            MemberAction::Kick => RoomChange::Kicked { user },
            MemberAction::Ban => RoomChange::Banned { user },
        }
    }
}

/// What `viewer` may do to `member`, in the order the menu shows it; nothing to oneself.
pub fn member_actions(
    me: &str,
    viewer: &Standing,
    member: &Member,
    room: &RoomSummary,
) -> Vec<MemberAction> {
    if member.name == me {
        return Vec::new();
    }
    let target = standing_of(member, room);
    let candidates = [
        (member.role == Role::Member).then_some(MemberAction::MakeModerator),
        (member.role == Role::Moderator).then_some(MemberAction::MakeMember),
        Some(MemberAction::MakeOwner),
        (!member.muted).then_some(MemberAction::Mute),
        member.muted.then_some(MemberAction::Unmute),
        Some(MemberAction::Kick),
        Some(MemberAction::Ban),
    ];
    candidates
        .into_iter()
        .flatten()
        .filter(|action| {
            may_change(viewer, &action.change(&member.name), Subject::Person(Some(target))).is_ok()
        })
        .collect()
}

/// Whether `viewer` may make a change to the room itself (title, topic, archive, privacy).
pub fn may(viewer: &Standing, change: &RoomChange) -> bool {
    may_change(viewer, change, Subject::Room).is_ok()
}

/// Whether `viewer` may add people to the room.
pub fn may_add(viewer: &Standing) -> bool {
    let newcomer = Standing { role: None, muted: false, admin: false, ..*viewer };
    let add = RoomChange::Added { user: String::new() };
    may_change(viewer, &add, Subject::Person(Some(newcomer))).is_ok()
}

/// Whether `viewer` may lift bans.
pub fn may_unban(viewer: &Standing) -> bool {
    let banned = Standing { role: None, banned: true, muted: false, admin: false, ..*viewer };
    let lift = RoomChange::Unbanned { user: String::new() };
    may_change(viewer, &lift, Subject::Person(Some(banned))).is_ok()
}

/// Why the composer is closed in this room, if it is.
pub fn composer_lock(room: Option<&RoomSummary>) -> Option<String> {
    let room = room?;
    if !room.joined {
        return None;
    }
    viewer(room, false).may_post().err().map(|denied| match denied.0.as_str() {
        "this room is archived: it is read-only" => {
            "This room is archived: it is read-only.".into()
        }
        "you are muted in this room" => "You are muted in this room.".into(),
        other => format!("You cannot post here: {other}."),
    })
}

/// What a person may do to one message, as its toolbar offers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageActions {
    /// React to it.
    pub react: bool,
    /// Answer it (rooms only).
    pub reply: bool,
    /// Change its text (its author).
    pub edit: bool,
    /// Delete it (its author, or a moderator).
    pub delete: bool,
}

/// What `viewer` may do to a message, theirs (`own`) or not.
pub fn message_actions(viewer: &Standing, own: bool) -> MessageActions {
    let subject = Subject::Message { exists: true, own };
    let allowed = |change: RoomChange| may_change(viewer, &change, subject).is_ok();
    let react = allowed(RoomChange::Reacted { seq: 1, emoji: "👍".into(), on: true });
    MessageActions {
        react,
        reply: react,
        edit: allowed(RoomChange::Edited { seq: 1, text: "x".into() }),
        delete: allowed(RoomChange::Deleted { seq: 1 }),
    }
}

/// What one may do to a message of a direct conversation: react to any, edit and delete
/// one's own.
pub fn dm_message_actions(own: bool) -> MessageActions {
    MessageActions { react: true, reply: false, edit: own, delete: own }
}

/// What to call a room: its title if it has one, else its name.
pub fn room_label(room: &RoomSummary) -> String {
    if room.title.is_empty() { room.name.clone() } else { room.title.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(role: Option<Role>) -> RoomSummary {
        RoomSummary {
            name: "dev".into(),
            members: 3,
            joined: role.is_some(),
            last_seq: 0,
            unread: 0,
            mentions: 0,
            private: false,
            archived: false,
            title: String::new(),
            topic: String::new(),
            role,
            muted: false,
        }
    }

    #[test]
    fn message_toolbars_offer_what_the_rules_allow() {
        let plain = viewer(&room(Some(Role::Member)), false);
        let all = MessageActions { react: true, reply: true, edit: true, delete: true };
        assert_eq!(message_actions(&plain, true), all);
        assert_eq!(
            message_actions(&plain, false),
            MessageActions { react: true, reply: true, edit: false, delete: false }
        );
        let moderator = viewer(&room(Some(Role::Moderator)), false);
        assert_eq!(
            message_actions(&moderator, false),
            MessageActions { react: true, reply: true, edit: false, delete: true }
        );
        let muted = viewer(&RoomSummary { muted: true, ..room(Some(Role::Member)) }, false);
        assert_eq!(
            message_actions(&muted, true),
            MessageActions { react: false, reply: false, edit: false, delete: true }
        );
        assert_eq!(
            dm_message_actions(false),
            MessageActions { react: true, ..MessageActions::default() }
        );
        assert_eq!(message_actions(&viewer(&room(None), false), false), MessageActions::default());
    }

    fn member(name: &str, role: Role) -> Member {
        Member { name: name.into(), role, muted: false }
    }

    #[test]
    fn owners_see_every_action_on_a_member() {
        let dev = room(Some(Role::Owner));
        let actions =
            member_actions("ann", &viewer(&dev, false), &member("bob", Role::Member), &dev);
        use MemberAction::*;
        assert_eq!(actions, [MakeModerator, MakeOwner, Mute, Kick, Ban]);
        assert!(
            member_actions("ann", &viewer(&dev, false), &member("ann", Role::Owner), &dev)
                .is_empty()
        );
    }

    #[test]
    fn moderators_act_on_members_only_and_members_on_nobody() {
        let dev = room(Some(Role::Moderator));
        let me = viewer(&dev, false);
        use MemberAction::*;
        assert_eq!(
            member_actions("mo", &me, &member("bob", Role::Member), &dev),
            [Mute, Kick, Ban]
        );
        assert!(member_actions("mo", &me, &member("ann", Role::Owner), &dev).is_empty());
        assert!(member_actions("mo", &me, &member("max", Role::Moderator), &dev).is_empty());
        let plain = room(Some(Role::Member));
        assert!(
            member_actions("x", &viewer(&plain, false), &member("bob", Role::Member), &plain)
                .is_empty()
        );
        assert!(may(&me, &RoomChange::Topic { topic: "t".into() }));
        assert!(!may(&me, &RoomChange::Privacy { private: true }));
        assert!(!may(&viewer(&plain, false), &RoomChange::Archived));
        assert!(may_add(&viewer(&plain, false)), "members add members");
        assert!(may_unban(&me) && !may_unban(&viewer(&plain, false)));
    }

    #[test]
    fn the_composer_says_why_it_is_closed() {
        let mut dev = room(Some(Role::Member));
        assert_eq!(composer_lock(Some(&dev)), None);
        dev.muted = true;
        assert_eq!(composer_lock(Some(&dev)).as_deref(), Some("You are muted in this room."));
        dev.muted = false;
        dev.archived = true;
        assert_eq!(
            composer_lock(Some(&dev)).as_deref(),
            Some("This room is archived: it is read-only.")
        );
        assert_eq!(composer_lock(None), None);
    }

    #[test]
    fn rooms_are_called_by_their_title() {
        let mut dev = room(None);
        assert_eq!(room_label(&dev), "dev");
        dev.title = "Developers".into();
        assert_eq!(room_label(&dev), "Developers");
    }
}
