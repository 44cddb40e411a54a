//! The message input: Enter sends, Shift+Enter starts a new line.

use leptos::prelude::*;
use shared::chat::{MAX_MESSAGE_CHARS, validate_text};

use crate::model::{ChatState, Status};
use crate::stomp_client::{Connection, Request};

/// The input and the send button.
#[component]
pub fn Composer(
    /// The page state.
    state: ChatState,
    /// Where messages go.
    connection: Connection,
) -> impl IntoView {
    let (draft, set_draft) = signal(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let online = move || state.status.get() == Status::Online;
    let send = move || {
        let text = draft.get_untracked();
        if let Err(reason) = validate_text(&text) {
            set_problem.set(Some(format!("Not sent: {reason}")));
            return;
        }
        if connection.request(Request::Say { room: state.room.get_untracked(), text }) {
            set_draft.set(String::new());
            set_problem.set(None);
        }
    };
    let send_on_enter = {
        let send = send.clone();
        move |event: leptos::ev::KeyboardEvent| {
            if event.key() == "Enter" && !event.shift_key() && !event.is_composing() {
                event.prevent_default();
                send();
            }
        }
    };
    let remaining =
        move || MAX_MESSAGE_CHARS as i64 - draft.with(|text| text.chars().count()) as i64;
    view! {
        <form class="composer" on:submit=move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            send();
        }>
            <textarea
                id="draft"
                rows="1"
                placeholder=move || format!("Message #{}", state.room.get())
                prop:value=draft
                on:input=move |event| set_draft.set(event_target_value(&event))
                on:keydown=send_on_enter
            ></textarea>
            <button id="send" type="submit" disabled=move || !online()>"Send"</button>
            <div class="composer-meta">
                <Show when=move || problem.get().is_some()>
                    <span class="problem" role="alert">{move || problem.get()}</span>
                </Show>
                <Show when=move || { remaining() < 200 }>
                    <span class="remaining" class:over=move || { remaining() < 0 }>{remaining}</span>
                </Show>
            </div>
        </form>
    }
}
