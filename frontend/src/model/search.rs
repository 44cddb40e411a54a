//! What the search panel needs beyond the view: where a hit was said, and when the
//! search shortcut should take the keyboard.

use shared::api::SearchHit;

use super::Conv;

/// The conversation a hit was said in.
pub fn conv_of(hit: &SearchHit) -> Option<Conv> {
    match (&hit.room, &hit.peer) {
        (Some(room), _) => Some(Conv::Room(room.clone())),
        (None, Some(peer)) => Some(Conv::Dm(peer.clone())),
        (None, None) => None,
    }
}

/// Whether a key press opens the search: Ctrl+K (⌘K) anywhere, `/` when the person is not
/// typing somewhere else.
pub fn opens_search(key: &str, ctrl_or_meta: bool, typing: bool) -> bool {
    (ctrl_or_meta && key.eq_ignore_ascii_case("k")) || (key == "/" && !typing && !ctrl_or_meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(room: Option<&str>, peer: Option<&str>) -> SearchHit {
        SearchHit {
            room: room.map(str::to_owned),
            peer: peer.map(str::to_owned),
            seq: 1,
            sender: "ann".into(),
            sent_at: 0,
            parts: Vec::new(),
        }
    }

    #[test]
    fn hits_open_their_conversation() {
        assert_eq!(conv_of(&hit(Some("dev"), None)), Some(Conv::Room("dev".into())));
        assert_eq!(conv_of(&hit(None, Some("bob"))), Some(Conv::Dm("bob".into())));
        assert_eq!(conv_of(&hit(None, None)), None);
    }

    #[test]
    fn the_shortcut_leaves_typing_alone() {
        assert!(opens_search("k", true, true));
        assert!(opens_search("K", true, false));
        assert!(opens_search("/", false, false));
        assert!(!opens_search("/", false, true), "a slash typed in the composer is a slash");
        assert!(!opens_search("k", false, false));
    }
}
