//! The message input: Enter sends, Shift+Enter starts a new line, typing is announced.
//! Each conversation keeps its own draft and attached files. `@` suggests the room's
//! members; Up in an empty composer edits one's last message; Esc drops a reply or a
//! suggestion list. Files come by the attach button, by pasting, or by dropping them on
//! the composer; each uploads at once, with its progress, and goes with the next message.

use leptos::prelude::*;
use shared::chat::MAX_MESSAGE_CHARS;

use super::attachments::UploadChips;
use crate::api;
use crate::model::upload::{self, Upload, UploadState};
use crate::model::{ChatState, Conv, ConvState, compose, roles};
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
        if conv.uploads.with_untracked(|uploads| upload::busy(uploads)) {
            set_problem.set(Some("Not sent yet: a file is still uploading.".into()));
            return;
        }
        let files = conv.uploads.with_untracked(|uploads| upload::ready(uploads));
        match chat.say(conv.draft.get_untracked(), files) {
            Ok(()) => {
                conv.draft.set(String::new());
                conv.uploads.set(Vec::new());
                set_problem.set(None);
            }
            Err(reason) => set_problem.set(Some(format!("Not sent: {reason}"))),
        }
    };
    let attach = move |files: Vec<(web_sys::Blob, String)>| {
        let conv = state.conv(&state.active.get_untracked());
        for (file, name) in files {
            let attached = conv.uploads.with_untracked(Vec::len);
            let size = file.size() as u64;
            match upload::refuse(&name, size, state.max_upload.get_untracked(), attached) {
                Some(refusal) => set_problem.set(Some(refusal)),
                None => {
                    set_problem.set(None);
                    start_upload(state, conv, file, name);
                }
            }
        }
    };
    let (dropping, set_dropping) = signal(false);
    let limit = move || {
        let max = state.max_upload.get();
        if max == 0 {
            "Attach files".to_owned()
        } else {
            format!("Attach files (up to {} each)", shared::api::human_size(max))
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
        <form class="composer" class:dropping=dropping
            on:submit=move |event: leptos::ev::SubmitEvent| {
                event.prevent_default();
                send();
            }
            on:dragover=move |event: leptos::ev::DragEvent| {
                event.prevent_default();
                set_dropping.set(true);
            }
            on:dragleave=move |_| set_dropping.set(false)
            on:drop=move |event: leptos::ev::DragEvent| {
                event.prevent_default();
                set_dropping.set(false);
                let files = event.data_transfer().and_then(|data| data.files());
                attach(named(files, false));
            }>
            {move || view! { <UploadChips uploads=conv_state().uploads /> }}
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
                on:paste=move |event: leptos::ev::ClipboardEvent| {
                    let files = named(event.clipboard_data().and_then(|data| data.files()), true);
                    if !files.is_empty() {
                        event.prevent_default();
                        attach(files);
                    }
                }
            ></textarea>
            <label class="attach" title=limit aria-label=limit>
                <span aria-hidden="true">"📎"</span>
                <input id="attach" type="file" multiple
                    on:change=move |event: leptos::ev::Event| {
                        let input: web_sys::HtmlInputElement = event_target(&event);
                        attach(named(input.files(), false));
                        input.set_value("");
                    } />
            </label>
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

/// The files of a file list with their names. An image pasted from the clipboard has
/// none of its own (the browser calls every one `image.png`): it gets one that tells
/// pastes apart; a file chosen or dropped keeps its name, whatever it is.
fn named(files: Option<web_sys::FileList>, pasted: bool) -> Vec<(web_sys::Blob, String)> {
    thread_local! {
        static PASTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let Some(files) = files else { return Vec::new() };
    (0..files.length())
        .filter_map(|index| files.get(index))
        .map(|file| {
            let mut name = file.name();
            if name.is_empty() || (pasted && name == "image.png") {
                let count = PASTED.with(|count| {
                    count.set(count.get() + 1);
                    count.get()
                });
                name = upload::pasted_name(&file.type_(), count);
            }
            (web_sys::Blob::from(file), name)
        })
        .collect()
}

/// Uploads a file into the conversation's attached files, showing its progress.
fn start_upload(state: ChatState, conv: ConvState, file: web_sys::Blob, name: String) {
    thread_local! {
        static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let id = NEXT.with(|next| {
        next.set(next.get() + 1);
        next.get()
    });
    let size = file.size() as u64;
    conv.uploads.update(|uploads| uploads.push(Upload::new(id, name.clone(), size)));
    leptos::task::spawn_local(async move {
        let progress = move |sent: u64| {
            conv.uploads.update(|uploads| {
                if let Some(upload) = uploads.iter_mut().find(|upload| upload.id == id) {
                    upload.sent = sent;
                }
            });
        };
        let outcome = crate::files::upload(&state.token(), &file, &name, progress).await;
        conv.uploads.update(|uploads| {
            if let Some(upload) = uploads.iter_mut().find(|upload| upload.id == id) {
                upload.state = match outcome {
                    Ok(file) => UploadState::Done(file),
                    Err(reason) => UploadState::Failed(reason),
                };
            }
        });
    });
}
