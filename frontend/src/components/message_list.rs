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

use shared::chat::{Quote, Reaction};
use shared::markdown::{blocks, plain_text};

use super::attachments::{Avatar, MessageFiles};
use super::rich_text::rich_text;
use super::{clock, day_label};
use crate::model::{Conv, ConvState, Line, Page, Pending, PendingState, roles};
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
    // A message asked for (a reply's original, a notification's message): once it is
    // loaded, its page is filled, and it is brought to the middle of the view and marked.
    Effect::new(move |_| {
        let Some(seq) = conv_state.focus.get() else { return };
        conv_state.focus.set(None);
        set_follow.set(false);
        reveal(conv_state, seq, 20);
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
                            {render_line(chat, conv_state, line)}
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

/// Brings a loaded message into view: its page is scrolled to first (a page far away is
/// collapsed, its lines out of the document) and filled, then, a frame later, the message
/// itself is shown. Tries for a few frames.
fn reveal(conv_state: ConvState, seq: u64, tries: u32) {
    request_animation_frame(move || {
        if document().get_element_by_id(&format!("m{seq}")).is_some() {
            show_message(seq);
            return;
        }
        let page = conv_state.pages.with_untracked(|pages| {
            pages.iter().copied().find(|page| {
                page.lines.with_untracked(|lines| lines.iter().any(|line| line.seq() == Some(seq)))
            })
        });
        if let Some(page) = page {
            let block = document().query_selector(&format!(".page[data-page=\"{}\"]", page.id));
            if let Ok(Some(block)) = block {
                block.scroll_into_view();
            }
            page.collapsed.set(None);
        }
        if tries > 0 {
            reveal(conv_state, seq, tries - 1);
        }
    });
}

/// Scrolls the message with this id to the middle of the view, focuses it and marks it
/// for a moment.
fn show_message(seq: u64) {
    let Some(element) = document().get_element_by_id(&format!("m{seq}")) else { return };
    let options = web_sys::ScrollIntoViewOptions::new();
    options.set_block(web_sys::ScrollLogicalPosition::Center);
    element.scroll_into_view_with_scroll_into_view_options(&options);
    if let Ok(element) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element.clone()) {
        let _ = element.focus();
    }
    let _ = element.class_list().add_1("focused");
    set_timeout(
        move || {
            let _ = element.class_list().remove_1("focused");
        },
        std::time::Duration::from_millis(2_500),
    );
}

/// The emoji the reaction palette offers; any other can be typed in it.
const PALETTE: [&str; 8] = ["👍", "❤️", "😂", "🎉", "😮", "😢", "👀", "✅"];

fn render_line(chat: Chat, conv_state: ConvState, line: Line) -> AnyView {
    let state = chat.state;
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
            seq,
            sender,
            text,
            sent_at,
            mine,
            first_of_day,
            grouped,
            bot,
            deleted,
            reply,
            mentions_me,
            edited,
            reactions,
            rich,
            files,
            ..
        } => {
            let shown = state.display(&sender);
            let handle = (shown != sender).then(|| format!("@{sender}"));
            let me = state.me();
            let label = format!("{shown} at {}", clock(sent_at));
            let (touched, set_touched) = signal(false);
            // Once: setting it again would make a new toolbar, closing an open palette.
            let touch = move || {
                if !touched.get_untracked() {
                    set_touched.set(true);
                }
            };
            // Each line asks only whether it is the one being edited: starting an edit
            // redraws one line, not all of them.
            let editing = Memo::new(move |_| conv_state.editing.get() == Some(seq));
            let body = {
                let text = text.clone();
                let rich = rich.clone();
                let me = me.clone();
                move || {
                    if editing.get() {
                        edit_box(chat, conv_state, seq, text.clone()).into_any()
                    } else if deleted {
                        view! { <p class="text deleted-note">"message deleted"</p> }.into_any()
                    } else {
                        view! {
                            <div class="text rich">
                                {rich_text(blocks(&text, rich.as_deref()), &me, move |name| state.display(name))}
                                {edited.then(|| view! { <span class="edited" title="edited">" (edited)"</span> })}
                            </div>
                        }
                        .into_any()
                    }
                }
            };
            view! {
                {first_of_day.then(|| view! { <div class="day"><span>{day_label(sent_at)}</span></div> })}
                <article
                    class="message"
                    class:mine=mine
                    class:grouped=grouped
                    class:deleted=deleted
                    class:mentions-me=mentions_me
                    data-seq=seq
                    id=format!("m{seq}")
                    tabindex="0"
                    aria-label=label
                    on:mouseenter=move |_| touch()
                    on:focusin=move |_| touch()
                    title=clock(sent_at)
                >
                    <Avatar name=sender.clone() />
                    <div class="bubble">
                        <header>
                            <span class="sender" title=handle>{shown.clone()}</span>
                            {bot.then(|| view! { <span class="bot-badge" title="an integration, not a person">"bot"</span> })}
                            <time>{clock(sent_at)}</time>
                        </header>
                        {reply.map(|quote| quote_view(chat, quote))}
                        {body}
                        {(!files.is_empty() && !deleted).then(|| view! { <div class="files"><MessageFiles files /></div> })}
                        {(!reactions.is_empty()).then(|| reactions_view(chat, seq, reactions, &me))}
                    </div>
                    // Made when first pointed at or focused: a long history would otherwise
                    // hold thousands of idle toolbars.
                    {move || (touched.get() && !deleted).then(|| toolbar(chat, conv_state, seq, mine, plain_text(&blocks(&text, rich.as_deref())), sender.clone()))}
                </article>
            }
            .into_any()
        }
    }
}

/// The snippet of the message a reply answers; a click brings it into view.
fn quote_view(chat: Chat, quote: Quote) -> impl IntoView {
    let Quote { seq, sender, text, deleted } = quote;
    let shown = chat.state.display(&sender);
    // The server sends the snippet as plain text.
    let snippet = if deleted { "message deleted".to_owned() } else { text };
    view! {
        <button class="quote" class:deleted=deleted title="Show the message this answers" on:click=move |_| chat.jump_to(seq)>
            <span class="quote-sender">{shown}</span>
            <span class="quote-text">{snippet}</span>
        </button>
    }
}

/// The reactions under a message: each emoji with its count; who gave it on hover; a
/// click gives or takes back one's own.
fn reactions_view(chat: Chat, seq: u64, reactions: Vec<Reaction>, me: &str) -> impl IntoView {
    let me = me.to_owned();
    view! {
        <div class="reactions" role="group" aria-label="Reactions">
            {reactions.into_iter().map(|Reaction { emoji, users }| {
                let mine = users.contains(&me);
                let who: Vec<String> = users.iter().map(|user| chat.state.display(user)).collect();
                let title = format!("{} reacted {emoji}", who.join(", "));
                let count = users.len();
                let shown = emoji.clone();
                view! {
                    <button class="reaction" class:mine=mine aria-pressed=mine.to_string() title=title.clone() aria-label=title
                        on:click=move |_| chat.react(seq, emoji.clone(), !mine)>
                        <span class="emoji">{shown}</span>" "<span class="count">{count}</span>
                    </button>
                }
            }).collect_view()}
        </div>
    }
}

/// The actions on a message, shown on hover and on keyboard focus: react, reply, edit,
/// delete, as the room's rules allow them.
fn toolbar(
    chat: Chat,
    conv_state: ConvState,
    seq: u64,
    mine: bool,
    snippet: String,
    sender: String,
) -> impl IntoView {
    let state = chat.state;
    let actions = move || match state.active.get() {
        Conv::Room(room) => state
            .room(&room)
            .map(|room| roles::message_actions(&roles::viewer(&room, state.admin.get()), mine))
            .unwrap_or_default(),
        Conv::Dm(_) => roles::dm_message_actions(mine),
    };
    let (picking, set_picking) = signal(false);
    let (other, set_other) = signal(String::new());
    let react = move |emoji: String| {
        set_picking.set(false);
        let already = conv_state.line(seq).is_some_and(|line| match line {
            Line::Message { reactions, .. } => reactions
                .iter()
                .any(|r| r.emoji == emoji && r.users.iter().any(|user| *user == state.me())),
            Line::Notice { .. } => false,
        });
        chat.react(seq, emoji, !already);
    };
    let quote = StoredValue::new(Quote { seq, sender, text: snippet, deleted: false });
    view! {
        <Show when=move || actions().react || actions().delete>
        <div class="toolbar" role="toolbar" aria-label="Message actions">
            <Show when=move || actions().react>
                <button class="tool react" aria-label="Add a reaction" title="React" aria-expanded=move || picking.get().to_string()
                    on:click=move |_| set_picking.update(|open| *open = !*open)>"☺"</button>
            </Show>
            <Show when=move || actions().reply>
                <button class="tool reply" aria-label="Reply" title="Reply" on:click=move |_| {
                    conv_state.reply_to.set(Some(quote.get_value()));
                    focus_composer();
                }>"↩"</button>
            </Show>
            <Show when=move || actions().edit>
                <button class="tool edit" aria-label="Edit" title="Edit" on:click=move |_| conv_state.editing.set(Some(seq))>"✎"</button>
            </Show>
            <Show when=move || actions().delete>
                <button class="tool delete" aria-label="Delete" title="Delete" on:click=move |_| {
                    if window().confirm_with_message("Delete this message for everyone?").unwrap_or(false) {
                        chat.delete(seq);
                    }
                }>"🗑"</button>
            </Show>
            <Show when=move || picking.get()>
                <div class="palette" role="dialog" aria-label="Pick a reaction">
                    {PALETTE.iter().map(|emoji| {
                        let emoji = (*emoji).to_owned();
                        view! { <button class="pick" aria-label=format!("React {emoji}") on:click={
                            let emoji = emoji.clone();
                            move |_| react(emoji.clone())
                        }>{emoji.clone()}</button> }
                    }).collect_view()}
                    <input class="other-emoji" aria-label="Any emoji" placeholder="any emoji" maxlength="16"
                        prop:value=other
                        on:input=move |event| set_other.set(event_target_value(&event))
                        on:keydown=move |event: leptos::ev::KeyboardEvent| {
                            if event.key() == "Enter" {
                                event.prevent_default();
                                let emoji = other.get_untracked().trim().to_owned();
                                if !emoji.is_empty() {
                                    set_other.set(String::new());
                                    react(emoji);
                                }
                            } else if event.key() == "Escape" {
                                set_picking.set(false);
                            }
                        } />
                </div>
            </Show>
        </div>
        </Show>
    }
}

/// Puts the keyboard in the composer.
pub fn focus_composer() {
    if let Some(element) = document().get_element_by_id("draft")
        && let Ok(element) = wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(element)
    {
        let _ = element.focus();
    }
}

/// Editing a message in place: Enter saves, Shift+Enter starts a line, Esc cancels.
fn edit_box(chat: Chat, conv_state: ConvState, seq: u64, text: String) -> impl IntoView {
    let (draft, set_draft) = signal(text);
    let (problem, set_problem) = signal(None::<String>);
    let input = NodeRef::<leptos::html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(element) = input.get() {
            let _ = element.focus();
        }
    });
    let save = move || match chat.edit(seq, draft.get_untracked()) {
        Ok(()) => {
            conv_state.editing.set(None);
            focus_composer();
        }
        Err(reason) => set_problem.set(Some(reason)),
    };
    view! {
        <div class="edit-box">
            <textarea node_ref=input aria-label="Edit message" prop:value=draft
                on:input=move |event| set_draft.set(event_target_value(&event))
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
                        event.prevent_default();
                        save();
                    } else if event.key() == "Escape" {
                        event.prevent_default();
                        conv_state.editing.set(None);
                        focus_composer();
                    }
                }></textarea>
            <div class="edit-actions">
                <span class="hint">"Enter to save · Esc to cancel"</span>
                {move || problem.get().map(|problem| view! { <span class="problem" role="alert">{problem}</span> })}
                <button type="button" on:click=move |_| conv_state.editing.set(None)>"Cancel"</button>
                <button type="button" class="save" on:click=move |_| save()>"Save"</button>
            </div>
        </div>
    }
}

fn render_pending(chat: Chat, pending: Pending) -> AnyView {
    let me = chat.state.me();
    let Pending { key, text, state, files, .. } = pending;
    let names: Vec<String> = files.into_iter().map(|file| file.name).collect();
    let failed = state == PendingState::Failed;
    view! {
        <article class="message mine pending" class:failed=failed>
            <Avatar name=me.clone() />
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
                {(!names.is_empty()).then(|| view! { <p class="file-meta">{format!("with {}", names.join(", "))}</p> })}
            </div>
        </article>
    }
    .into_any()
}
