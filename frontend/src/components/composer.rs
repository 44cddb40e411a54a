//! The message input: Enter sends, Shift+Enter starts a new line, typing is announced.
//! Each conversation keeps its own draft. `@` suggests the room's members; Up in an empty
//! composer edits one's last message; Esc drops a reply or a suggestion list.

use leptos::prelude::*;
use shared::chat::MAX_MESSAGE_CHARS;

use crate::api;
use crate::model::{ChatState, Conv, compose, roles};
use crate::pages::chat::Chat;

/// How often, at most, a typing event goes out while the user types.
const TYPING_EVERY_MS: f64 = 3_000.0;

/// The mention being completed: where its `@` is, and the members that fit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Suggesting {
    at: usize,
    names: Vec<String>,
    chosen: usize,
}

/// The input and the send button. Messages typed while offline wait and go out on
/// reconnect.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let conv_state = move || state.conv(&state.active.get());
    let draft = move || conv_state().draft.get();
    let (problem, set_problem) = signal(None::<String>);
    let (suggesting, set_suggesting) = signal(None::<Suggesting>);
    let last_typing = StoredValue::new(0.0f64);
    let input = NodeRef::<leptos::html::Textarea>::new();
    let send = move || {
        let conv = state.conv(&state.active.get_untracked());
        match chat.say(conv.draft.get_untracked()) {
            Ok(()) => {
                conv.draft.set(String::new());
                set_problem.set(None);
            }
            Err(reason) => set_problem.set(Some(format!("Not sent: {reason}"))),
        }
    };
    let pick = move |name: String| {
        let Some(Suggesting { at, .. }) = suggesting.get_untracked() else { return };
        let Some(element) = input.get_untracked() else { return };
        let conv = state.conv(&state.active.get_untracked());
        let text = conv.draft.get_untracked();
        let caret = caret_byte(&element, &text);
        let (text, caret) = compose::complete(&text, at, caret, &name);
        conv.draft.set(text.clone());
        element.set_value(&text);
        let position = text[..caret].encode_utf16().count() as u32;
        let _ = element.set_selection_range(position, position);
        let _ = element.focus();
        set_suggesting.set(None);
    };
    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        let key = event.key();
        if let Some(list) = suggesting.get_untracked() {
            let count = list.names.len();
            let moved = match key.as_str() {
                "ArrowDown" => Some((list.chosen + 1) % count),
                "ArrowUp" => Some((list.chosen + count - 1) % count),
                _ => None,
            };
            if let Some(chosen) = moved {
                event.prevent_default();
                set_suggesting.set(Some(Suggesting { chosen, ..list }));
                return;
            }
            if (key == "Enter" && !event.shift_key()) || key == "Tab" {
                event.prevent_default();
                pick(list.names[list.chosen].clone());
                return;
            }
            if key == "Escape" {
                event.prevent_default();
                set_suggesting.set(None);
                return;
            }
        }
        let conv = state.conv(&state.active.get_untracked());
        if key == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            send();
        } else if key == "Escape" && conv.reply_to.get_untracked().is_some() {
            event.prevent_default();
            conv.reply_to.set(None);
        } else if key == "ArrowUp"
            && conv.draft.with_untracked(String::is_empty)
            && let Some((seq, _)) = conv.last_own(&state.me())
        {
            event.prevent_default();
            conv.editing.set(Some(seq));
        }
    };
    let on_input = move |event: leptos::ev::Event| {
        let text = event_target_value(&event);
        state.conv(&state.active.get_untracked()).draft.set(text.clone());
        let now = js_sys::Date::now();
        if now - last_typing.get_value() > TYPING_EVERY_MS {
            last_typing.set_value(now);
            chat.typing();
        }
        let Some(element) = input.get_untracked() else { return };
        let caret = caret_byte(&element, &text);
        match compose::mention_query(&text[..caret]) {
            Some((at, typed)) => suggest(chat, at, typed, input, set_suggesting),
            None => set_suggesting.set(None),
        }
    };
    let remaining = move || MAX_MESSAGE_CHARS as i64 - draft().chars().count() as i64;
    // Archived, or muted: the composer says so instead of taking messages the server
    // would refuse.
    let locked = move || match state.active.get() {
        Conv::Room(room) => roles::composer_lock(state.room(&room).as_ref()),
        Conv::Dm(_) => None,
    };
    let replying = move || conv_state().reply_to.get();
    view! {
        <Show when=move || locked().is_none() fallback=move || view! {
            <p class="composer locked" id="composer-locked" role="status">{locked}</p>
        }>
        <form class="composer" on:submit=move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            send();
        }>
            {move || replying().map(|quote| {
                let shown = state.display(&quote.sender);
                view! {
                    <div class="replying" id="replying" role="status">
                        <span>"Replying to "<strong>{shown}</strong>": "</span>
                        <span class="quote-text">{quote.text}</span>
                        <button type="button" class="cancel-reply" aria-label="Cancel the reply" title="Cancel (Esc)"
                            on:click=move |_| conv_state().reply_to.set(None)>"×"</button>
                    </div>
                }
            })}
            <Show when=move || suggesting.get().is_some()>
                <ul class="suggestions" id="mention-list" role="listbox" aria-label="People to mention">
                    {move || suggesting.get().map(|list| list.names.iter().enumerate().map(|(index, name)| {
                        let name = name.clone();
                        let shown = state.display(&name);
                        let chosen = index == list.chosen;
                        view! {
                            <li role="option" aria-selected=chosen.to_string() class:chosen=chosen
                                on:mousedown=move |event: leptos::ev::MouseEvent| {
                                    event.prevent_default();
                                    pick(name.clone());
                                }>
                                <strong>{shown}</strong>" "<span class="handle">{format!("@{}", name)}</span>
                            </li>
                        }
                    }).collect_view())}
                </ul>
            </Show>
            <textarea
                id="draft"
                rows="1"
                node_ref=input
                aria-label=move || format!("Message {}", state.active.get().title())
                aria-autocomplete="list"
                aria-controls="mention-list"
                placeholder=move || format!("Message {}", state.active.get().title())
                prop:value=draft
                on:input=on_input
                on:keydown=on_keydown
            ></textarea>
            <button id="send" type="submit">"Send"</button>
            <div class="composer-meta">
                <Show when=move || problem.get().is_some()>
                    <span class="problem" role="alert">{move || problem.get()}</span>
                </Show>
                <Show when=move || { remaining() < 200 }>
                    <span class="remaining" class:over=move || { remaining() < 0 }>{remaining}</span>
                </Show>
            </div>
        </form>
        </Show>
    }
}

/// The caret's position in `text` as a byte index (the browser counts UTF-16 units).
fn caret_byte(element: &web_sys::HtmlTextAreaElement, text: &str) -> usize {
    let units = element.selection_start().ok().flatten().unwrap_or(0) as usize;
    let mut seen = 0;
    for (index, c) in text.char_indices() {
        if seen >= units {
            return index;
        }
        seen += c.len_utf16();
    }
    text.len()
}

/// Shows the members of the active room that fit what is typed after `@`, loading the
/// room's members the first time (and then looking again at what is typed by then).
fn suggest(
    chat: Chat,
    at: usize,
    typed: String,
    input: NodeRef<leptos::html::Textarea>,
    set: WriteSignal<Option<Suggesting>>,
) {
    let state: ChatState = chat.state;
    let Conv::Room(room) = state.active.get_untracked() else {
        set.set(None);
        return;
    };
    let conv = state.conv(&Conv::Room(room.clone()));
    let show = move |roster: &[(String, String)], at: usize, typed: &str| {
        let names = compose::suggestions(roster, typed, &state.me());
        set.set((!names.is_empty()).then_some(Suggesting { at, names, chosen: 0 }));
    };
    if let Some(roster) = conv.roster.get_untracked() {
        show(&roster, at, &typed);
        return;
    }
    leptos::task::spawn_local(async move {
        let Ok(members) = api::members(&state.token(), &room).await else { return };
        let roster: Vec<(String, String)> = members
            .members
            .into_iter()
            .map(|member| {
                let shown = state.display(&member.name);
                (member.name, shown)
            })
            .collect();
        conv.roster.set(Some(roster.clone()));
        // The person kept typing while the members loaded: suggest for what is there now.
        let Some(element) = input.get_untracked() else { return };
        let text = element.value();
        let caret = caret_byte(&element, &text);
        if state.active.get_untracked() == Conv::Room(room)
            && let Some((at, typed)) = compose::mention_query(&text[..caret])
        {
            show(&roster, at, &typed);
        }
    });
}
