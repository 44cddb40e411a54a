//! The message input: Enter sends, Shift+Enter starts a new line, typing is announced.

use leptos::prelude::*;
use shared::chat::MAX_MESSAGE_CHARS;

use crate::model::{Conv, roles};
use crate::pages::chat::Chat;

/// How often, at most, a typing event goes out while the user types.
const TYPING_EVERY_MS: f64 = 3_000.0;

/// The input and the send button. Messages typed while offline wait and go out on
/// reconnect.
#[component]
pub fn Composer() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let (draft, set_draft) = signal(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let last_typing = StoredValue::new(0.0f64);
    let send = move || match chat.say(draft.get_untracked()) {
        Ok(()) => {
            set_draft.set(String::new());
            set_problem.set(None);
        }
        Err(reason) => set_problem.set(Some(format!("Not sent: {reason}"))),
    };
    let on_keydown = move |event: leptos::ev::KeyboardEvent| {
        if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
            event.prevent_default();
            send();
        }
    };
    let on_input = move |event: leptos::ev::Event| {
        set_draft.set(event_target_value(&event));
        let now = js_sys::Date::now();
        if now - last_typing.get_value() > TYPING_EVERY_MS {
            last_typing.set_value(now);
            chat.typing();
        }
    };
    let remaining =
        move || MAX_MESSAGE_CHARS as i64 - draft.with(|text| text.chars().count()) as i64;
    // Archived, or muted: the composer says so instead of taking messages the server
    // would refuse.
    let locked = move || match state.active.get() {
        Conv::Room(room) => roles::composer_lock(state.room(&room).as_ref()),
        Conv::Dm(_) => None,
    };
    view! {
        <Show when=move || locked().is_none() fallback=move || view! {
            <p class="composer locked" id="composer-locked" role="status">{locked}</p>
        }>
        <form class="composer" on:submit=move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            send();
        }>
            <textarea
                id="draft"
                rows="1"
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
