//! A message's text as DOM nodes, from its [`shared::markdown`] tree (the server parses
//! it): every piece of text goes in as a text node, every link is made here with
//! `rel="noopener noreferrer"` and a new tab, and only if its target is a web or mail
//! address. Nothing is ever set as HTML.

use leptos::prelude::*;
use shared::markdown::{Block, Inline, safe_href};

/// The view of a message's tree; `me` marks mentions of the page's user, `shown` says
/// what to call a mentioned person.
pub fn rich_text(tree: Vec<Block>, me: &str, shown: impl Fn(&str) -> String + Copy) -> AnyView {
    blocks(tree, me, shown)
}

fn blocks(blocks: Vec<Block>, me: &str, shown: impl Fn(&str) -> String + Copy) -> AnyView {
    blocks
        .into_iter()
        .map(|block| match block {
            Block::Paragraph(inlines) => view! { <p>{inline(inlines, me, shown)}</p> }.into_any(),
            Block::Code(code) => view! { <pre><code>{code}</code></pre> }.into_any(),
            Block::Quote(inner) => {
                view! { <blockquote>{self::blocks(inner, me, shown)}</blockquote> }.into_any()
            }
            Block::List { start: Some(start), items } => view! {
                <ol start=start>{items.into_iter().map(|item| view! { <li>{self::blocks(item, me, shown)}</li> }).collect_view()}</ol>
            }
            .into_any(),
            Block::List { start: None, items } => view! {
                <ul>{items.into_iter().map(|item| view! { <li>{self::blocks(item, me, shown)}</li> }).collect_view()}</ul>
            }
            .into_any(),
        })
        .collect_view()
        .into_any()
}

fn inline(inlines: Vec<Inline>, me: &str, shown: impl Fn(&str) -> String + Copy) -> AnyView {
    inlines
        .into_iter()
        .map(|item| match item {
            Inline::Text(text) => text.into_any(),
            Inline::Strong(children) => {
                view! { <strong>{inline(children, me, shown)}</strong> }.into_any()
            }
            Inline::Emphasis(children) => view! { <em>{inline(children, me, shown)}</em> }.into_any(),
            Inline::Strike(children) => view! { <s>{inline(children, me, shown)}</s> }.into_any(),
            Inline::Code(code) => view! { <code>{code}</code> }.into_any(),
            // The tree is input: a target that is not a web or mail address is no link.
            Inline::Link { href, children } if !safe_href(&href) => inline(children, me, shown),
            Inline::Link { href, children } => view! {
                <a href=href target="_blank" rel="noopener noreferrer">{inline(children, me, shown)}</a>
            }
            .into_any(),
            Inline::Mention(name) => {
                let label = format!("@{}", shown(&name));
                view! { <span class="mention" class:me=name == me title=format!("@{name}")>{label}</span> }
                    .into_any()
            }
            Inline::Break => view! { <br /> }.into_any(),
        })
        .collect_view()
        .into_any()
}
