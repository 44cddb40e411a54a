//! The conversation: messages with sender and time, and join/leave notices.

use leptos::html::Div;
use leptos::prelude::*;

use super::{avatar_hue, clock};
use crate::model::Entry;

/// Distance from the bottom, in pixels, within which the list follows new messages.
const STICKY_PX: i32 = 120;

/// The scrolling list of entries. It follows new messages unless the reader has scrolled up.
#[component]
pub fn MessageList(
    /// The conversation, oldest first.
    entries: RwSignal<Vec<Entry>>,
) -> impl IntoView {
    let scroller = NodeRef::<Div>::new();
    let (follow, set_follow) = signal(true);
    Effect::new(move |_| {
        entries.track();
        if follow.get_untracked()
            && let Some(element) = scroller.get_untracked()
        {
            request_animation_frame(move || element.set_scroll_top(element.scroll_height()));
        }
    });
    let on_scroll = move |_| {
        if let Some(element) = scroller.get_untracked() {
            let distance = element.scroll_height() - element.scroll_top() - element.client_height();
            set_follow.set(distance < STICKY_PX);
        }
    };
    view! {
        <div class="messages" id="messages" node_ref=scroller on:scroll=on_scroll>
            <Show when=move || entries.with(Vec::is_empty)>
                <p class="empty">"No messages yet. Say hello!"</p>
            </Show>
            <For each=move || entries.get() key=Entry::key let:entry>
                {render(entry)}
            </For>
        </div>
    }
}

fn render(entry: Entry) -> AnyView {
    match entry {
        Entry::Notice { text, at, .. } => view! {
            <div class="notice"><span>{text}</span><time>{clock(at)}</time></div>
        }
        .into_any(),
        Entry::Message { message, mine, .. } => {
            let initial = message
                .sender
                .chars()
                .next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default();
            view! {
                <article class="message" class:mine=mine>
                    <span class="avatar" style=format!("--hue: {}", avatar_hue(&message.sender))>{initial}</span>
                    <div class="bubble">
                        <header>
                            <span class="sender">{message.sender.clone()}</span>
                            <time>{clock(message.sent_at)}</time>
                        </header>
                        <p class="text">{message.text.clone()}</p>
                    </div>
                </article>
            }
            .into_any()
        }
    }
}
