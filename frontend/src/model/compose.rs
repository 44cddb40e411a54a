//! The composer's pure parts: finding the `@name` being typed before the caret, the
//! members that fit it, and the text once one is picked.

/// The mention being typed at the end of `before` (the text before the caret): where its
/// `@` is (a byte index) and the letters typed after it.
pub fn mention_query(before: &str) -> Option<(usize, String)> {
    let at = before.rfind('@')?;
    let typed = &before[at + 1..];
    let boundary =
        before[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
    let name_like = typed.len() <= shared::chat::MAX_NAME_CHARS
        && typed.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (boundary && name_like).then(|| (at, typed.to_ascii_lowercase()))
}

/// The most suggestions shown.
pub const MAX_SUGGESTIONS: usize = 6;

/// The members whose name or display name starts with `typed`, names first, then display
/// names; not `me`.
pub fn suggestions(members: &[(String, String)], typed: &str, me: &str) -> Vec<String> {
    let fits = |text: &str| text.to_lowercase().starts_with(typed);
    let mut out: Vec<String> = members
        .iter()
        .filter(|(name, _)| name != me && fits(name))
        .map(|(name, _)| name.clone())
        .collect();
    for (name, shown) in members {
        if name != me && !out.contains(name) && fits(shown) {
            out.push(name.clone());
        }
    }
    out.truncate(MAX_SUGGESTIONS);
    out
}

/// `text` with the mention typed at `at` (up to the caret, `caret`) completed to `name`
/// and a space; returns the new text and where the caret goes.
pub fn complete(text: &str, at: usize, caret: usize, name: &str) -> (String, usize) {
    let caret = caret.min(text.len()).max(at);
    let inserted = format!("@{name} ");
    let out = format!("{}{inserted}{}", &text[..at], &text[caret..]);
    (out, at + inserted.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mention_being_typed_is_found() {
        assert_eq!(mention_query("hi @an"), Some((3, "an".into())));
        assert_eq!(mention_query("@"), Some((0, String::new())));
        assert_eq!(mention_query("(@Bo"), Some((1, "bo".into())));
        assert_eq!(mention_query("mail a@b"), None);
        assert_eq!(mention_query("@ann and more"), None);
        assert_eq!(mention_query("no at"), None);
    }

    #[test]
    fn members_are_suggested_by_name_then_display_name() {
        let members = vec![
            ("ann".to_owned(), "Ann Lee".to_owned()),
            ("bob".to_owned(), "Annie Bob".to_owned()),
            ("me".to_owned(), "Anna".to_owned()),
        ];
        assert_eq!(suggestions(&members, "an", "me"), ["ann", "bob"]);
        assert_eq!(suggestions(&members, "b", "me"), ["bob"]);
        assert!(suggestions(&members, "z", "me").is_empty());
    }

    #[test]
    fn completing_replaces_what_was_typed() {
        assert_eq!(complete("hi @an", 3, 6, "ann"), ("hi @ann ".into(), 8));
        assert_eq!(complete("@b, look", 0, 2, "bob"), ("@bob , look".into(), 5));
    }
}
