//! When the page tells its user that someone needs them: the rules, pure. The chat page
//! asks them for every new message from someone else, and shows a browser notification
//! when they say so and the tab is hidden.

use super::Conv;

/// A new message from someone else, which may deserve a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Where.
    pub conv: Conv,
    /// Its id there.
    pub seq: u64,
    /// Who sent it.
    pub sender: String,
    /// What it says, its marks taken off.
    pub text: String,
    /// It mentions the user.
    pub mentions_me: bool,
}

/// What a conversation notifies of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Level {
    /// Every message.
    All,
    /// Messages that mention the user (rooms' default); every direct message.
    #[default]
    Mentions,
    /// Nothing.
    Nothing,
}

impl Level {
    /// Every level, in the order a menu shows them.
    pub const ALL: [Level; 3] = [Level::All, Level::Mentions, Level::Nothing];

    /// Its name, as stored and in menus' values.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::All => "all",
            Level::Mentions => "mentions",
            Level::Nothing => "nothing",
        }
    }

    /// What a menu shows for it.
    pub fn label(self) -> &'static str {
        match self {
            Level::All => "Notify: every message",
            Level::Mentions => "Notify: mentions",
            Level::Nothing => "Notify: nothing",
        }
    }

    /// The level a stored name stands for (the default for anything else).
    pub fn parse(name: &str) -> Level {
        match name {
            "all" => Level::All,
            "nothing" => Level::Nothing,
            _ => Level::Mentions,
        }
    }
}

/// Whether `alert` deserves a notification under `level`: a direct message or a mention
/// does unless the conversation is set to nothing; any message does under "all".
pub fn deserves(alert: &Alert, level: Level) -> bool {
    match level {
        Level::Nothing => false,
        Level::All => true,
        Level::Mentions => alert.mentions_me || matches!(alert.conv, Conv::Dm(_)),
    }
}

/// The notification's title.
pub fn title(alert: &Alert, sender_shown: &str) -> String {
    match &alert.conv {
        Conv::Room(room) if alert.mentions_me => format!("{sender_shown} mentioned you in #{room}"),
        Conv::Room(room) => format!("{sender_shown} in #{room}"),
        Conv::Dm(_) => format!("{sender_shown} sent you a message"),
    }
}

/// The tab's title with `unread` messages waiting.
pub fn tab_title(unread: u64) -> String {
    if unread == 0 { "Confab".to_owned() } else { format!("({unread}) Confab") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(conv: Conv, mentions_me: bool) -> Alert {
        Alert { conv, seq: 1, sender: "ann".into(), text: "hi".into(), mentions_me }
    }

    #[test]
    fn mentions_and_direct_messages_notify_by_default() {
        let room = Conv::Room("dev".into());
        assert!(!deserves(&alert(room.clone(), false), Level::default()));
        assert!(deserves(&alert(room.clone(), true), Level::default()));
        assert!(deserves(&alert(Conv::Dm("ann".into()), false), Level::default()));
        assert!(deserves(&alert(room.clone(), false), Level::All));
        assert!(!deserves(&alert(room, true), Level::Nothing));
    }

    #[test]
    fn levels_and_titles_read_well() {
        for level in Level::ALL {
            assert_eq!(Level::parse(level.as_str()), level);
        }
        assert_eq!(Level::parse("junk"), Level::Mentions);
        let mention = alert(Conv::Room("dev".into()), true);
        assert_eq!(title(&mention, "Ann"), "Ann mentioned you in #dev");
        assert_eq!(title(&alert(Conv::Dm("ann".into()), false), "Ann"), "Ann sent you a message");
        assert_eq!((tab_title(0), tab_title(3)), ("Confab".into(), "(3) Confab".into()));
    }
}
