//! The chat screen: header, member list, conversation and composer.

use leptos::prelude::*;

use super::composer::Composer;
use super::members::Members;
use super::message_list::MessageList;
use super::status::StatusBadge;
use crate::model::ChatState;
use crate::stomp_client::Connection;

/// Connects as `me` and shows `room`.
#[component]
pub fn Chat(
    /// The user's name.
    me: String,
    /// The room to join.
    room: String,
) -> impl IntoView {
    let state = ChatState::new(me.clone(), room);
    let connection = Connection::start(me, state);
    let (sidebar_open, set_sidebar_open) = signal(false);
    view! {
        <div class="app" class:sidebar-open=sidebar_open>
            <header class="topbar">
                <button class="menu" aria-label="Show members" on:click=move |_| set_sidebar_open.update(|open| *open = !*open)>"☰"</button>
                <div class="brand"><span class="logo">"◆"</span>" Confab"</div>
                <h1 class="room"># {move || state.room.get()}</h1>
                <StatusBadge status=state.status />
                <span class="me">{move || state.me.get()}</span>
            </header>
            <aside class="sidebar">
                <Members members=state.members me=state.me />
            </aside>
            <main class="conversation">
                <Show when=move || state.error.get().is_some()>
                    <div class="banner" role="alert">
                        <span>{move || state.error.get()}</span>
                        <button aria-label="Dismiss" on:click=move |_| state.error.set(None)>"×"</button>
                    </div>
                </Show>
                <MessageList entries=state.entries />
                <Composer state=state connection=connection />
            </main>
        </div>
    }
}
