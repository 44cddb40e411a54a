//! Search: the query language of `GET /api/search?q=` and the highlighting of what it
//! found. Pure: both stores build their own index queries from a parsed [`Query`], and
//! the server marks the matching words with [`parts`].
//!
//! The language, as people type it:
//! - `deploy failed`: messages with both words (any order);
//! - `"deploy failed"`: the phrase;
//! - `depl*`: words starting so;
//! - `from:ann`, `in:lobby` (or `in:#lobby`): who said it, where.
//!
//! Words are what both stores' indexes see: runs of letters and digits, lowercased; any
//! other character separates words. Nothing a person types reaches an index's own query
//! syntax: each store writes its query from these words.

use serde::{Deserialize, Serialize};

/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// At most this many words and phrases in a query.
pub const MAX_TERMS: usize = 16;
/// Characters of context shown on each side of the first match of a long message.
pub const CONTEXT_CHARS: usize = 80;

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Every term must match.
    pub terms: Vec<Term>,
    /// `from:name`.
    pub from: Option<String>,
    /// `in:room`.
    pub room: Option<String>,
}

/// A word, a prefix or a phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// Its words, lowercased; more than one is a phrase.
    pub words: Vec<String>,
    /// The last word is a prefix (`depl*`).
    pub prefix: bool,
}

/// Why a query cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// No word to look for.
    #[error("search for at least one word")]
    Empty,
    /// Longer than [`MAX_QUERY_CHARS`].
    #[error("a search is at most {MAX_QUERY_CHARS} characters")]
    TooLong,
    /// More than [`MAX_TERMS`] terms.
    #[error("a search has at most {MAX_TERMS} words and phrases")]
    TooManyTerms,
    /// `from:` or `in:` with nothing after it, or twice.
    #[error("{0}")]
    Filter(String),
}

/// Splits text into the words an index sees, with their byte ranges.
pub fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

/// Parses what a person typed.
pub fn parse(input: &str) -> Result<Query, QueryError> {
    if input.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    let mut query = Query::default();
    let mut rest = input.trim();
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            // A phrase, to the closing quote (or the end).
            let (phrase, after) = quoted.split_once('"').unwrap_or((quoted, ""));
            let prefix = after.starts_with('*');
            push(&mut query, phrase, prefix);
            rest = after.trim_start_matches('*').trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, after) = rest.split_at(end);
        rest = after.trim_start();
        let lower = token.to_lowercase();
        if let Some(name) = lower.strip_prefix("from:") {
            let name = name.trim_start_matches('@');
            filter(&mut query.from, name, "from")?;
        } else if let Some(room) = lower.strip_prefix("in:") {
            let room = room.trim_start_matches('#');
            filter(&mut query.room, room, "in")?;
        } else {
            push(&mut query, token, token.ends_with('*'));
        }
    }
    if query.terms.is_empty() {
        return Err(QueryError::Empty);
    }
    if query.terms.len() > MAX_TERMS {
        return Err(QueryError::TooManyTerms);
    }
    Ok(query)
}

fn filter(slot: &mut Option<String>, value: &str, name: &str) -> Result<(), QueryError> {
    if value.is_empty() {
        return Err(QueryError::Filter(format!("{name}: needs a name after it")));
    }
    if slot.is_some() {
        return Err(QueryError::Filter(format!("{name}: may be given once")));
    }
    *slot = Some(value.to_owned());
    Ok(())
}

/// Adds the words of `text` as one term (a phrase if several); `prefix` marks its last
/// word a prefix. Text with no word adds nothing.
fn push(query: &mut Query, text: &str, prefix: bool) {
    let words: Vec<String> = words(text).map(|(_, word)| word.to_lowercase()).collect();
    if !words.is_empty() {
        query.terms.push(Term { words, prefix });
    }
}

/// A piece of a found message: text, or a word the search matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The text.
    pub text: String,
    /// It matched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hit: bool,
}

/// Whether the word `word` (as written in a message) matches one of `terms`' words.
fn matches(word: &str, terms: &[Term]) -> bool {
    let lower = word.to_lowercase();
    terms.iter().any(|term| {
        term.words.iter().enumerate().any(|(index, wanted)| {
            let prefix = term.prefix && index + 1 == term.words.len();
            if prefix { lower.starts_with(wanted.as_str()) } else { lower == *wanted }
        })
    })
}

/// A found message's text in pieces, its matching words marked; a long text is cut to
/// [`CONTEXT_CHARS`] around its first match, with "…" where it was cut.
pub fn parts(text: &str, terms: &[Term]) -> Vec<Part> {
    let hits: Vec<(usize, usize)> = words(text)
        .filter(|(_, word)| matches(word, terms))
        .map(|(start, word)| (start, start + word.len()))
        .collect();
    // The window shown: CONTEXT_CHARS on each side of the first hit.
    let (first_start, first_end) = hits.first().copied().unwrap_or((0, 0));
    let from = text[..first_start]
        .char_indices()
        .rev()
        .nth(CONTEXT_CHARS - 1)
        .map_or(0, |(index, _)| index);
    let to = text[first_end..]
        .char_indices()
        .nth(CONTEXT_CHARS)
        .map_or(text.len(), |(index, _)| first_end + index);
    let mut out = Vec::new();
    let mut at = from;
    let mut plain = String::new();
    if from > 0 {
        plain.push('…');
    }
    for (start, end) in hits.into_iter().filter(|(start, end)| *start >= from && *end <= to) {
        plain.push_str(&text[at..start]);
        if !plain.is_empty() {
            out.push(Part { text: std::mem::take(&mut plain), hit: false });
        }
        out.push(Part { text: text[start..end].to_owned(), hit: true });
        at = end;
    }
    plain.push_str(&text[at..to]);
    if to < text.len() {
        plain.push('…');
    }
    if !plain.is_empty() {
        out.push(Part { text: plain, hit: false });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(words: &[&str], prefix: bool) -> Term {
        Term { words: words.iter().map(|w| (*w).to_owned()).collect(), prefix }
    }

    #[test]
    fn queries_parse_into_words_phrases_prefixes_and_filters() {
        let query = parse(r#"Deploy "build FAILED" depl* from:@Ann in:#lobby"#).unwrap();
        assert_eq!(
            query.terms,
            vec![
                word(&["deploy"], false),
                word(&["build", "failed"], false),
                word(&["depl"], true)
            ]
        );
        assert_eq!((query.from.as_deref(), query.room.as_deref()), (Some("ann"), Some("lobby")));
        // Punctuation separates words, as in the indexes; quotes may stay open.
        assert_eq!(parse("e-mail").unwrap().terms, vec![word(&["e", "mail"], false)]);
        assert_eq!(parse(r#""open phrase"#).unwrap().terms, vec![word(&["open", "phrase"], false)]);
        assert_eq!(
            parse("çà 日本").unwrap().terms,
            vec![word(&["çà"], false), word(&["日本"], false)]
        );
        // Index syntax is just punctuation here.
        assert_eq!(
            parse("body:x OR NEAR(a b) ^c").unwrap().terms,
            vec![
                word(&["body", "x"], false),
                word(&["or"], false),
                word(&["near", "a"], false),
                word(&["b"], false),
                word(&["c"], false)
            ]
        );
    }

    #[test]
    fn bad_queries_say_why() {
        assert_eq!(parse(""), Err(QueryError::Empty));
        assert_eq!(parse("  !!! "), Err(QueryError::Empty));
        assert_eq!(parse("from:ann"), Err(QueryError::Empty));
        assert_eq!(parse(&"x".repeat(501)), Err(QueryError::TooLong));
        assert_eq!(parse(&"a ".repeat(17)), Err(QueryError::TooManyTerms));
        assert!(matches!(parse("x from:"), Err(QueryError::Filter(_))));
        assert!(matches!(parse("x in:a in:b"), Err(QueryError::Filter(_))));
    }

    #[test]
    fn matching_words_are_marked() {
        let terms = parse("deploy fail*").unwrap().terms;
        let shown = parts("The Deploy failed, deployment: fail.", &terms);
        let marked: Vec<(&str, bool)> = shown.iter().map(|p| (p.text.as_str(), p.hit)).collect();
        assert_eq!(
            marked,
            [
                ("The ", false),
                ("Deploy", true),
                (" ", false),
                ("failed", true),
                (", deployment: ", false),
                ("fail", true),
                (".", false)
            ]
        );
        // A long text shows the context of its first match.
        let long = format!("{} needle {}", "a ".repeat(200), "b ".repeat(200));
        let shown = parts(&long, &parse("needle").unwrap().terms);
        let text: String = shown.iter().map(|p| p.text.as_str()).collect();
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
        assert!(text.chars().count() <= CONTEXT_CHARS * 2 + 8, "{}", text.chars().count());
        assert!(shown.iter().any(|p| p.hit && p.text == "needle"));
        // No match (the index matched a form this does not see): the start of the text.
        assert_eq!(
            parts("hello", &parse("x").unwrap().terms),
            [Part { text: "hello".into(), hit: false }]
        );
    }
}
