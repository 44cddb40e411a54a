//! One conversation's messages: day separators, sender and time, your own set apart,
//! pending ones marked "sending" or "failed — retry", and older pages loaded on scroll up
//! without the view jumping.
//!
//! Only the pages near the reader's view are in the document. A page that scrolls more
//! than a few screens away is collapsed into an empty block of its own height, and filled
//! again as it comes back: with every line of a 10,000-message history in the document,
//! the browser's style and layout passes stalled the page for up to a quarter of a second.

use leptos::html::Div;
use leptos::prelude::*;

use super::{avatar_class, clock, day_label, initial};
use crate::model::{ChatState, Conv, Line, Page, Pending, PendingState};
use crate::pages::chat::Chat;

/// Distance from the bottom, in pixels, within which the list follows new messages.
const STICKY_PX: i32 = 120;
/// Distance from the top, in pixels, at which the next older page is loaded.
const LOAD_OLDER_PX: i32 = 200;
/// Pages within this many screen heights of the view keep their lines in the document.
const KEEP_SCREENS: f64 = 3.0;

/// The scrolling list of one conversation.
#[component]
pub fn MessageList(
    /// Which conversation.
    conv: Conv,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let conv_state = chat.state.conv(&conv);
    let scroller = NodeRef::<Div>::new();
    let (follow, set_follow) = signal(true);
    let (loading, set_loading) = signal(false);
    let window_scheduled = StoredValue::new(false);
    // Collapses far pages and fills near ones, once per animation frame at most.
    let schedule_window = move || {
        if window_scheduled.get_value() {
            return;
        }
        window_scheduled.set_value(true);
        request_animation_frame(move || {
            window_scheduled.set_value(false);
            if let Some(element) = scroller.get_untracked() {
                fit_window(&element, conv_state.pages.get_untracked());
            }
        });
    };
    // New messages at the bottom: stay at the bottom if the reader was there.
    Effect::new(move |_| {
        conv_state.revision.track();
        conv_state.pending.track();
        if follow.get_untracked()
            && let Some(element) = scroller.get_untracked()
        {
            request_animation_frame(move || element.set_scroll_top(element.scroll_height()));
        }
        schedule_window();
    });
    let on_scroll = move |_| {
        let Some(element) = scroller.get_untracked() else { return };
        let distance = element.scroll_height() - element.scroll_top() - element.client_height();
        set_follow.set(distance < STICKY_PX);
        load_older_near_top(chat, conv.clone(), element, loading, set_loading);
        schedule_window();
    };
    view! {
        <div class="messages" id="messages" node_ref=scroller on:scroll=on_scroll>
            <Show when=move || conv_state.more.get()>
                <p class="history-note">{move || if loading.get() { "Loading older messages…" } else { "Scroll up for older messages" }}</p>
            </Show>
            <Show when=move || conv_state.loaded.get() && !conv_state.more.get()>
                <p class="history-note">"This is the beginning of the conversation."</p>
            </Show>
            <For each=move || conv_state.pages.get() key=|page| page.id let:page>
                <div
                    class="page"
                    data-page=page.id
                    style:height=move || page.collapsed.get().map(|height| format!("{height}px"))
                >
                    <Show when=move || page.collapsed.get().is_none()>
                        <For each=move || page.lines.get() key=Line::key let:line>
                            {render_line(chat.state, line)}
                        </For>
                    </Show>
                </div>
            </For>
            <For each=move || conv_state.pending.get() key=|p| format!("{}{:?}", p.key, p.state) let:pending>
                {render_pending(chat, pending)}
            </For>
        </div>
    }
}

/// Loads the next older page when the reader is near the top, keeping the message under
/// their eyes where it was; then checks again, in case they are still near the top (a
/// scroll that arrived while the page was loading would otherwise be lost).
fn load_older_near_top(
    chat: Chat,
    conv: Conv,
    element: web_sys::HtmlDivElement,
    loading: ReadSignal<bool>,
    set_loading: WriteSignal<bool>,
) {
    let conv_state = chat.state.conv(&conv);
    if element.scroll_top() >= LOAD_OLDER_PX
        || !conv_state.more.get_untracked()
        || loading.get_untracked()
    {
        return;
    }
    set_loading.set(true);
    let before_height = element.scroll_height();
    leptos::task::spawn_local(async move {
        chat.load_older(conv.clone()).await;
        request_animation_frame(move || {
            element.set_scroll_top(element.scroll_top() + element.scroll_height() - before_height);
            set_loading.set(false);
            load_older_near_top(chat, conv, element, loading, set_loading);
        });
    });
}

/// Collapses the pages more than [`KEEP_SCREENS`] screens from the view into blocks of
/// their own height, and fills those that came near again. Heights are kept exactly, so
/// nothing on screen moves.
fn fit_window(element: &web_sys::HtmlDivElement, pages: Vec<Page>) {
    let view = element.get_bounding_client_rect();
    let margin = KEEP_SCREENS * view.height();
    let (near_top, near_bottom) = (view.top() - margin, view.bottom() + margin);
    let blocks = element.get_elements_by_class_name("page");
    for index in 0..blocks.length() {
        let Some(block) = blocks.item(index) else { continue };
        let Some(page) = block
            .get_attribute("data-page")
            .and_then(|id| id.parse::<u64>().ok())
            .and_then(|id| pages.iter().find(|page| page.id == id))
        else {
            continue;
        };
        let rect = block.get_bounding_client_rect();
        let near = rect.bottom() >= near_top && rect.top() <= near_bottom;
        match (near, page.collapsed.get_untracked()) {
            (true, Some(_)) => page.collapsed.set(None),
            (false, None) => page.collapsed.set(Some(rect.height())),
            _ => {}
        }
    }
}

fn render_line(state: ChatState, line: Line) -> AnyView {
    match line {
        Line::Notice { text, .. } => view! { <div class="notice"><span>{text}</span></div> }.into_any(),
        Line::Message { seq, text, sent_at, first_of_day, change: true, .. } => view! {
            {first_of_day.then(|| view! { <div class="day"><span>{day_label(sent_at)}</span></div> })}
            <div class="notice change" data-seq=seq>
                <span>{text}</span>
                <time>{clock(sent_at)}</time>
            </div>
        }
        .into_any(),
        Line::Message {
            seq, sender, text, sent_at, mine, first_of_day, grouped, bot, deleted, ..
        } => {
            let shown = state.display(&sender);
            let handle = (shown != sender).then(|| format!("@{sender}"));
            view! {
                {first_of_day.then(|| view! { <div class="day"><span>{day_label(sent_at)}</span></div> })}
                <article class="message" class:mine=mine class:grouped=grouped class:deleted=deleted data-seq=seq title=clock(sent_at)>
                    <span class=format!("avatar {}", avatar_class(&sender))>{initial(&shown)}</span>
                    <div class="bubble">
                        <header>
                            <span class="sender" title=handle>{shown.clone()}</span>
                            {bot.then(|| view! { <span class="bot-badge" title="an integration, not a person">"bot"</span> })}
                            <time>{clock(sent_at)}</time>
                        </header>
                        {if deleted {
                            view! { <p class="text deleted-note">"message deleted"</p> }.into_any()
                        } else {
                            view! { <p class="text">{text}</p> }.into_any()
                        }}
                    </div>
                </article>
            }
            .into_any()
        }
    }
}

fn render_pending(chat: Chat, pending: Pending) -> AnyView {
    let me = chat.state.me();
    let Pending { key, text, state } = pending;
    let failed = state == PendingState::Failed;
    view! {
        <article class="message mine pending" class:failed=failed>
            <span class=format!("avatar {}", avatar_class(&me))>{initial(&me)}</span>
            <div class="bubble">
                <header>
                    <span class="sender">{me.clone()}</span>
                    {if failed {
                        view! {
                            <button class="retry" on:click=move |_| chat.retry(key.clone())>"failed — retry"</button>
                        }.into_any()
                    } else {
                        view! { <span class="sending">"sending…"</span> }.into_any()
                    }}
                </header>
                <p class="text">{text}</p>
            </div>
        </article>
    }
    .into_any()
}
