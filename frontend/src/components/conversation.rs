//! The main column: errors, the conversation, who is typing, and the composer.

use leptos::prelude::*;

use super::composer::Composer;
use super::message_list::MessageList;
use super::notifications::{LevelMenu, PermissionAsk};
use crate::model::{Conv, Panel};
use crate::pages::chat::Chat;

/// "bob is typing…", "bob and ann are typing…", "several people are typing…".
fn typing_text(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} is typing…"),
        [one, two] => format!("{one} and {two} are typing…"),
        _ => "Several people are typing…".to_owned(),
    }
}

/// The active conversation.
#[component]
pub fn ConversationView() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let typing = move || {
        let conv = state.active.get();
        let names: Vec<String> =
            state.conv(&conv).typing.get().into_iter().map(|(name, _)| name).collect();
        typing_text(&names)
    };
    let leave = move || match state.active.get() {
        Conv::Room(room) if room != shared::chat::LOBBY => Some(room),
        _ => None,
    };
    let in_room = move || matches!(state.active.get(), Conv::Room(_));
    view! {
        <main class="conversation">
            <Show when=move || state.error.get().is_some()>
                <div class="banner" role="alert" id="error">
                    <span>{move || state.error.get()}</span>
                    <button aria-label="Dismiss" on:click=move |_| state.error.set(None)>"×"</button>
                </div>
            </Show>
            <PermissionAsk />
            <div class="conversation-tools">
                <Show when=in_room>
                    <button class="link" id="room-settings-button" on:click=move |_| state.panel.set(Some(Panel::Room))>"Settings and members"</button>
                    {move || leave().map(|room| view! {
                        <button class="link" id="leave-room" on:click=move |_| chat.leave_room(room.clone())>"Leave room"</button>
                    })}
                </Show>
                <LevelMenu />
            </div>
            {move || {
                let conv = state.active.get();
                view! { <MessageList conv=conv /> }
            }}
            <div class="typing" id="typing" aria-live="polite">{typing}</div>
            <Composer />
        </main>
    }
}
