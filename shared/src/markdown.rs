//! A message's formatting: a Markdown subset (bold, italic, strikethrough, inline code,
//! code blocks, block quotes, lists, line breaks), links made from bare addresses, and
//! `@name` mentions, as a small tree that a client turns into its own nodes.
//!
//! The server parses (feature `markdown`, pulldown-cmark) and sends the tree beside the
//! text as `rich`, only for texts with something to format; the browser client then needs
//! no Markdown parser of its own (it would cost 67 KB of its gzipped wasm). A plain text
//! has no tree: [`blocks`] splits it into text, bare links and mentions, the same tree the
//! parser would make of it.
//!
//! Safety lives here, in pure code with native tests: raw HTML is text, never markup; only
//! `http`, `https` and `mailto` targets become links (anything else, `javascript:`
//! included, shows as the text it was); nothing here produces HTML. A client still checks
//! every link it is sent with [`safe_href`]: a tree is input like any other.

#[cfg(feature = "markdown")]
use pulldown_cmark::{Event, LinkType, Options, Parser, Tag, TagEnd};
use serde::{Deserialize, Serialize};

/// A block of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Block {
    /// A paragraph (a heading shows as one: chat has no headings).
    Paragraph(Vec<Inline>),
    /// A fenced or indented code block, as written.
    Code(String),
    /// A block quote.
    Quote(Vec<Block>),
    /// A list; each item is its blocks.
    List {
        /// Numbered from this, or bulleted.
        start: Option<u64>,
        /// The items.
        items: Vec<Vec<Block>>,
    },
}

/// A run of text inside a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Inline {
    /// Plain text.
    Text(String),
    /// `**bold**`.
    Strong(Vec<Inline>),
    /// `*italic*`.
    Emphasis(Vec<Inline>),
    /// `~~struck~~`.
    Strike(Vec<Inline>),
    /// `` `code` ``.
    Code(String),
    /// A link to an `http`, `https` or `mailto` address.
    Link {
        /// Where it goes.
        href: String,
        /// What it shows.
        children: Vec<Inline>,
    },
    /// `@name`.
    Mention(String),
    /// A line break.
    Break,
}

/// Whether `href` may be a link: `http:`, `https:` or `mailto:`, nothing else.
pub fn safe_href(href: &str) -> bool {
    let lower = href.trim_start().to_ascii_lowercase();
    ["http://", "https://", "mailto:"].iter().any(|scheme| lower.starts_with(scheme))
        && !href.chars().any(|c| c.is_control() || c.is_whitespace())
}

/// Parses a message.
#[cfg(feature = "markdown")]
pub fn parse(text: &str) -> Vec<Block> {
    rich(text).unwrap_or_else(|| plain_blocks(text))
}

/// The tree to send beside `text`: `None` when the text has nothing Markdown would read
/// as markup (most messages), whose tree is [`plain_blocks`].
#[cfg(feature = "markdown")]
pub fn rich(text: &str) -> Option<Vec<Block>> {
    if plain_enough(text) {
        return None;
    }
    let options = Options::ENABLE_STRIKETHROUGH;
    let mut builder = Builder::default();
    for event in Parser::new_ext(text, options) {
        builder.event(event);
    }
    Some(builder.finish())
}

/// The tree of a text that has no `rich` tree: one paragraph of text, bare links and
/// mentions.
pub fn plain_blocks(text: &str) -> Vec<Block> {
    vec![Block::Paragraph(split_text(text))]
}

/// What a client shows: the tree it was sent, or the plain text's.
pub fn blocks(text: &str, rich: Option<&[Block]>) -> Vec<Block> {
    match rich {
        Some(rich) => rich.to_vec(),
        None => plain_blocks(text),
    }
}

/// Whether `text` has nothing Markdown would read as markup: no marks, entities, breaks,
/// or a line start that opens a list, a quote or a code block.
#[cfg(feature = "markdown")]
fn plain_enough(text: &str) -> bool {
    let starts_block = text.starts_with(|c: char| c.is_ascii_digit() || " \t-+=>".contains(c));
    !starts_block
        && !text.contains([
            '*', '_', '~', '`', '[', ']', '<', '>', '#', '&', '\\', '\n', '\r', '|', '!',
        ])
}

/// The plain text of a message, with its marks taken off: for notifications and
/// snippets.
#[cfg(feature = "markdown")]
pub fn plain(text: &str) -> String {
    plain_text(&parse(text))
}

/// The plain text of a tree.
pub fn plain_text(blocks: &[Block]) -> String {
    fn inline(out: &mut String, inlines: &[Inline]) {
        for item in inlines {
            match item {
                Inline::Text(text) | Inline::Code(text) => out.push_str(text),
                Inline::Mention(name) => {
                    out.push('@');
                    out.push_str(name);
                }
                Inline::Break => out.push(' '),
                Inline::Strong(children)
                | Inline::Emphasis(children)
                | Inline::Strike(children)
                | Inline::Link { children, .. } => inline(out, children),
            }
        }
    }
    fn walk(out: &mut String, blocks: &[Block]) {
        for block in blocks {
            if !out.is_empty() && matches!(block, Block::Paragraph(_) | Block::Code(_)) {
                out.push(' ');
            }
            match block {
                Block::Paragraph(inlines) => inline(out, inlines),
                Block::Code(code) => out.push_str(code.trim_end()),
                Block::Quote(inner) => walk(out, inner),
                Block::List { items, .. } => items.iter().for_each(|item| walk(out, item)),
            }
        }
    }
    let mut out = String::new();
    walk(&mut out, blocks);
    out
}

/// What is open while events arrive.
#[cfg(feature = "markdown")]
#[derive(Debug)]
enum Frame {
    Blocks(Vec<Block>),
    Paragraph(Vec<Inline>),
    Quote(Vec<Block>),
    List(Option<u64>, Vec<Vec<Block>>),
    Item(Vec<Block>, Vec<Inline>),
    Strong(Vec<Inline>),
    Emphasis(Vec<Inline>),
    Strike(Vec<Inline>),
    /// A link: its target if safe, else `None` (its text shows as written).
    Link(Option<String>, Vec<Inline>),
    Code(String),
}

#[cfg(feature = "markdown")]
#[derive(Debug)]
struct Builder {
    stack: Vec<Frame>,
}

#[cfg(feature = "markdown")]
impl Default for Builder {
    fn default() -> Builder {
        Builder { stack: vec![Frame::Blocks(Vec::new())] }
    }
}

#[cfg(feature = "markdown")]
impl Builder {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(end) => self.end(end),
            Event::Text(text) => {
                if let Some(Frame::Code(code)) = self.stack.last_mut() {
                    code.push_str(&text);
                } else {
                    self.text(&text);
                }
            }
            Event::Code(code) => self.inline(Inline::Code(code.into_string())),
            // Raw HTML is shown as the text it is: inline, or a block line of its own.
            Event::InlineHtml(html) => self.text(&html),
            Event::Html(html) => {
                let line = html.trim_end_matches('\n');
                if self.in_inline() {
                    self.text(line);
                } else {
                    self.block(Block::Paragraph(split_text(line)));
                }
            }
            Event::SoftBreak | Event::HardBreak => self.inline(Inline::Break),
            Event::Rule => self.text("———"),
            Event::TaskListMarker(done) => self.text(if done { "[x] " } else { "[ ] " }),
            Event::FootnoteReference(name) => self.text(&format!("[^{name}]")),
            Event::InlineMath(math) | Event::DisplayMath(math) => self.text(&math),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        let frame = match tag {
            Tag::Paragraph | Tag::Heading { .. } => Frame::Paragraph(Vec::new()),
            Tag::BlockQuote(_) => Frame::Quote(Vec::new()),
            Tag::CodeBlock(_) => Frame::Code(String::new()),
            Tag::List(start) => Frame::List(start, Vec::new()),
            Tag::Item => Frame::Item(Vec::new(), Vec::new()),
            Tag::Emphasis => Frame::Emphasis(Vec::new()),
            Tag::Strong => Frame::Strong(Vec::new()),
            Tag::Strikethrough => Frame::Strike(Vec::new()),
            Tag::Link { link_type, dest_url, .. } | Tag::Image { link_type, dest_url, .. } => {
                let href = dest_url.into_string();
                let href = match link_type {
                    LinkType::Email if !href.contains(':') => format!("mailto:{href}"),
                    _ => href,
                };
                Frame::Link(safe_href(&href).then_some(href), Vec::new())
            }
            // Tables, footnotes, metadata and the like are not enabled; their text shows.
            _ => return,
        };
        self.stack.push(frame);
    }

    fn end(&mut self, end: TagEnd) {
        let closes = matches!(
            end,
            TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::BlockQuote(_)
                | TagEnd::CodeBlock
                | TagEnd::List(_)
                | TagEnd::Item
                | TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Link
                | TagEnd::Image
        );
        if !closes || self.stack.len() < 2 {
            return;
        }
        let Some(frame) = self.stack.pop() else { return };
        match frame {
            Frame::Paragraph(inlines) => self.block(Block::Paragraph(inlines)),
            Frame::Quote(blocks) => self.block(Block::Quote(blocks)),
            Frame::Code(code) => self.block(Block::Code(code)),
            Frame::List(start, items) => self.block(Block::List { start, items }),
            Frame::Item(mut blocks, loose) => {
                if !loose.is_empty() {
                    blocks.push(Block::Paragraph(loose));
                }
                if let Some(Frame::List(_, items)) = self.stack.last_mut() {
                    items.push(blocks);
                }
            }
            Frame::Strong(children) => self.inline(Inline::Strong(children)),
            Frame::Emphasis(children) => self.inline(Inline::Emphasis(children)),
            Frame::Strike(children) => self.inline(Inline::Strike(children)),
            Frame::Link(Some(href), children) => self.inline(Inline::Link { href, children }),
            Frame::Link(None, children) => {
                // Not a link we make: its text shows, and nothing of its target.
                for child in children {
                    self.inline(child);
                }
            }
            Frame::Blocks(_) => {}
        }
    }

    fn block(&mut self, block: Block) {
        match self.stack.last_mut() {
            Some(Frame::Blocks(blocks) | Frame::Quote(blocks)) => blocks.push(block),
            Some(Frame::Item(blocks, loose)) => {
                if !loose.is_empty() {
                    blocks.push(Block::Paragraph(std::mem::take(loose)));
                }
                blocks.push(block);
            }
            _ => {}
        }
    }

    fn inline(&mut self, inline: Inline) {
        match self.stack.last_mut() {
            Some(
                Frame::Paragraph(inlines)
                | Frame::Strong(inlines)
                | Frame::Emphasis(inlines)
                | Frame::Strike(inlines)
                | Frame::Link(_, inlines)
                | Frame::Item(_, inlines),
            ) => inlines.push(inline),
            Some(Frame::Code(code)) => {
                if let Inline::Text(text) = inline {
                    code.push_str(&text);
                }
            }
            // Text outside any paragraph: give it one.
            _ => self.block(Block::Paragraph(vec![inline])),
        }
    }

    /// Whether text goes into an open run of inlines now.
    fn in_inline(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(
                Frame::Paragraph(_)
                    | Frame::Strong(_)
                    | Frame::Emphasis(_)
                    | Frame::Strike(_)
                    | Frame::Link(..)
                    | Frame::Item(..)
            )
        )
    }

    /// Plain text: bare addresses become links, `@name` a mention (not inside a link).
    fn text(&mut self, text: &str) {
        let in_link = self.stack.iter().any(|frame| matches!(frame, Frame::Link(..)));
        if in_link {
            self.inline(Inline::Text(text.to_owned()));
            return;
        }
        for piece in split_text(text) {
            self.inline(piece);
        }
    }

    fn finish(mut self) -> Vec<Block> {
        while self.stack.len() > 1 {
            // Unclosed frames (not produced by a well-formed parse): close them in turn.
            let end = match self.stack.last() {
                Some(Frame::Paragraph(_)) => TagEnd::Paragraph,
                Some(Frame::Code(_)) => TagEnd::CodeBlock,
                Some(Frame::Item(..)) => TagEnd::Item,
                Some(Frame::Strong(_)) => TagEnd::Strong,
                Some(Frame::Emphasis(_)) => TagEnd::Emphasis,
                Some(Frame::Strike(_)) => TagEnd::Strikethrough,
                Some(Frame::Link(..)) => TagEnd::Link,
                _ => TagEnd::Paragraph,
            };
            let before = self.stack.len();
            self.end(end);
            if self.stack.len() == before {
                self.stack.pop();
            }
        }
        match self.stack.pop() {
            Some(Frame::Blocks(blocks)) => blocks,
            _ => Vec::new(),
        }
    }
}

/// Splits plain text into text, bare links (`http://`, `https://`, `mailto:` to the next
/// space, without trailing punctuation) and `@name` mentions.
fn split_text(text: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut rest = text;
    let mut previous = ' ';
    while let Some(c) = rest.chars().next() {
        let at_boundary = !(previous.is_alphanumeric() || previous == '_');
        if at_boundary && (c == 'h' || c == 'H' || c == 'm' || c == 'M') {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let mut candidate = &rest[..end];
            candidate = candidate.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '"']);
            let long_enough =
                candidate.len() > "https://".len() || candidate.starts_with("mailto:");
            if safe_href(candidate) && long_enough && candidate.contains(['.', '@', ':']) {
                if !plain.is_empty() {
                    out.push(Inline::Text(std::mem::take(&mut plain)));
                }
                out.push(Inline::Link {
                    href: candidate.to_owned(),
                    children: vec![Inline::Text(candidate.to_owned())],
                });
                rest = &rest[candidate.len()..];
                previous = '/';
                continue;
            }
        }
        if c == '@' && at_boundary {
            let after = &rest[1..];
            let end = after
                .find(|c: char| !matches!(c, 'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-'))
                .unwrap_or(after.len());
            let name = after[..end].trim_end_matches('-');
            if crate::chat::validate_username(&name.to_ascii_lowercase()).is_ok() {
                if !plain.is_empty() {
                    out.push(Inline::Text(std::mem::take(&mut plain)));
                }
                out.push(Inline::Mention(name.to_ascii_lowercase()));
                rest = &after[name.len()..];
                previous = 'a';
                continue;
            }
        }
        plain.push(c);
        previous = c;
        rest = &rest[c.len_utf8()..];
    }
    if !plain.is_empty() {
        out.push(Inline::Text(plain));
    }
    out
}

/// Makes a room's entry ready for clients: the tree of what it shows (`rich`, for its
/// text or an edit's new text) and its reply's snippet as plain text. Applying it twice
/// changes nothing more.
#[cfg(feature = "markdown")]
pub fn format_message(message: &mut crate::chat::ChatMessage) {
    message.rich = shown_text(&message.text, message.change.as_ref()).and_then(rich);
    if let Some(quote) = &mut message.reply_to {
        quote.text = plain(&quote.text);
    }
}

/// [`format_message`] for a direct message.
#[cfg(feature = "markdown")]
pub fn format_dm(message: &mut crate::chat::DirectMessage) {
    message.rich = shown_text(&message.text, message.change.as_ref()).and_then(rich);
}

/// The text an entry shows as a message: its own, an edit's new one, or none (other
/// changes are lines the server wrote).
#[cfg(feature = "markdown")]
fn shown_text<'a>(text: &'a str, change: Option<&'a crate::room::RoomChange>) -> Option<&'a str> {
    match change {
        None => Some(text),
        Some(crate::room::RoomChange::Edited { text, .. }) => Some(text),
        Some(_) => None,
    }
}

#[cfg(all(test, feature = "markdown"))]
mod tests {
    use super::*;

    fn text(s: &str) -> Inline {
        Inline::Text(s.into())
    }

    fn paragraph(inlines: Vec<Inline>) -> Vec<Block> {
        vec![Block::Paragraph(inlines)]
    }

    #[test]
    fn the_subset_parses() {
        assert_eq!(
            parse("**b** *i* ~~s~~ `c`"),
            paragraph(vec![
                Inline::Strong(vec![text("b")]),
                text(" "),
                Inline::Emphasis(vec![text("i")]),
                text(" "),
                Inline::Strike(vec![text("s")]),
                text(" "),
                Inline::Code("c".into()),
            ])
        );
        assert_eq!(parse("```\nfn main() {}\n```"), vec![Block::Code("fn main() {}\n".into())]);
        assert_eq!(parse("> quoted"), vec![Block::Quote(paragraph(vec![text("quoted")]))]);
        assert_eq!(
            parse("- one\n- two"),
            vec![Block::List {
                start: None,
                items: vec![paragraph(vec![text("one")]), paragraph(vec![text("two")])]
            }]
        );
        assert_eq!(
            parse("3. three"),
            vec![Block::List { start: Some(3), items: vec![paragraph(vec![text("three")])] }]
        );
        assert_eq!(parse("a\nb"), paragraph(vec![text("a"), Inline::Break, text("b")]));
        assert_eq!(parse("# not a heading"), paragraph(vec![text("not a heading")]));
    }

    #[test]
    fn bare_addresses_and_mentions_are_found_in_text() {
        assert_eq!(
            parse("see https://example.com/a?b=1. @Ann"),
            paragraph(vec![
                text("see "),
                Inline::Link {
                    href: "https://example.com/a?b=1".into(),
                    children: vec![text("https://example.com/a?b=1")]
                },
                text(". "),
                Inline::Mention("ann".into()),
            ])
        );
        assert_eq!(parse("mail me@x.org"), paragraph(vec![text("mail me@x.org")]));
        assert_eq!(parse("`@ann`"), paragraph(vec![Inline::Code("@ann".into())]));
        assert_eq!(parse("http:// alone"), paragraph(vec![text("http:// alone")]));
    }

    #[test]
    fn only_web_and_mail_links_are_links() {
        let link = |href: &str, label: &str| Inline::Link {
            href: href.into(),
            children: vec![text(label)],
        };
        assert_eq!(parse("[a](https://x.org)"), paragraph(vec![link("https://x.org", "a")]));
        assert_eq!(parse("[a](mailto:a@x.org)"), paragraph(vec![link("mailto:a@x.org", "a")]));
        for bad in [
            "[a](javascript:alert(1))",
            "[a](JaVaScRiPt:alert(1))",
            "[a](data:text/html,x)",
            "[a](vbscript:x)",
            "[a](/relative)",
            "[a](file:///etc/passwd)",
        ] {
            assert_eq!(parse(bad), paragraph(vec![text("a")]), "{bad}");
        }
        assert!(!safe_href("https://x.org/\u{0}"));
        assert!(!safe_href(" javascript:x"));
    }

    #[test]
    fn raw_html_is_text() {
        for html in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "<b>bold</b>",
            "<!-- comment -->",
        ] {
            let blocks = parse(html);
            assert_eq!(plain(html), html, "{blocks:?}");
            let shown = format!("{blocks:?}");
            assert!(!shown.contains("Link"), "{shown}");
        }
    }

    #[test]
    fn plain_messages_take_the_short_way_to_the_same_tree() {
        for text in ["hello there", "see https://x.org/a, @ann", "a, b; c? d.", "é ü 👍"] {
            assert!(plain_enough(text), "{text}");
            let options = Options::ENABLE_STRIKETHROUGH;
            let mut builder = Builder::default();
            for event in Parser::new_ext(text, options) {
                builder.event(event);
            }
            assert_eq!(parse(text), builder.finish(), "{text}");
        }
        for text in ["**b**", "1. one", "- item", "> q", "a\nb", "&amp;", "<b>", "x_y_", "   code"]
        {
            assert!(!plain_enough(text), "{text}");
        }
    }

    #[test]
    fn messages_carry_the_tree_of_what_they_show() {
        use crate::chat::{ChatMessage, Quote};
        use crate::room::RoomChange;
        let mut message = ChatMessage {
            text: "**hi**".into(),
            reply_to: Some(Quote { seq: 1, text: "`x` *y*".into(), ..Quote::default() }),
            ..ChatMessage::default()
        };
        format_message(&mut message);
        format_message(&mut message);
        assert_eq!(message.rich, Some(parse("**hi**")));
        assert_eq!(message.reply_to.map(|quote| quote.text).as_deref(), Some("x y"));
        // An edit's tree is its new text's; other changes are the server's own lines.
        let edit = RoomChange::Edited { seq: 1, text: "> q".into() };
        let mut entry = ChatMessage { change: Some(edit), ..ChatMessage::default() };
        format_message(&mut entry);
        assert_eq!(entry.rich, Some(parse("> q")));
        let mut entry = ChatMessage {
            text: "ann *deleted* a message".into(),
            change: Some(RoomChange::Deleted { seq: 1 }),
            ..ChatMessage::default()
        };
        format_message(&mut entry);
        assert_eq!(entry.rich, None);
        // The wire form: tagged, short, and read back the same.
        let tree = parse("**b** [l](https://x.org)\n- i");
        let json = serde_json::to_string(&tree).unwrap();
        assert!(json.starts_with(r#"[{"paragraph":[{"strong":[{"text":"b"}]}"#), "{json}");
        assert_eq!(serde_json::from_str::<Vec<Block>>(&json).unwrap(), tree);
        assert_eq!(blocks("hi @ann", None), parse("hi @ann"));
        assert_eq!(blocks("**b**", Some(&tree)), tree);
    }

    #[test]
    fn plain_text_drops_the_marks() {
        assert_eq!(plain("**hi** @ann, see `x`\n> quoted"), "hi @ann, see x quoted");
    }
}
