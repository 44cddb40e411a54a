//! The chat screen and the actions the page can take: open a conversation, page back,
//! send, retry, join, create and leave rooms, sign out.

use leptos::prelude::*;
use shared::api::SessionToken;
use shared::chat::{LOBBY, validate_text};

use crate::api;
use crate::components::conversation::ConversationView;
use crate::components::sidebar::Sidebar;
use crate::components::status::StatusBadge;
use crate::model::{ChatState, Conv, Gap, PendingState, Said};
use crate::stomp_client::{Connection, Request};

/// The page's actions, shared with every component through context.
#[derive(Debug, Clone, Copy)]
pub struct Chat {
    /// The state the components show.
    pub state: ChatState,
    connection: StoredValue<Connection>,
    sign_out: StoredValue<Box<dyn Fn() + Send + Sync>>,
    read_scheduled: StoredValue<bool>,
}

impl Chat {
    fn request(&self, request: Request) {
        self.connection.with_value(|connection| connection.request(request));
    }

    /// Shows a conversation, loading its latest history the first time.
    pub fn open(&self, conv: Conv) {
        let state = self.state;
        state.active.set(conv.clone());
        let conv_state = state.conv(&conv);
        conv_state.unread.set(0);
        if conv_state.loaded.get_untracked() {
            self.mark_read();
        } else {
            let chat = *self;
            leptos::task::spawn_local(async move {
                chat.load_older(conv).await;
                chat.mark_read();
            });
        }
    }

    /// Loads the page of history before the oldest loaded message.
    pub async fn load_older(&self, conv: Conv) {
        let state = self.state;
        let token = state.token();
        let conv_state = state.conv(&conv);
        let before = if conv_state.loaded.get_untracked() { conv_state.oldest_seq() } else { None };
        let page = match &conv {
            Conv::Room(room) => api::room_page(&token, room, before).await.map(|page| {
                let messages = page.messages.into_iter().map(Said::from).collect();
                (messages, page.more)
            }),
            Conv::Dm(peer) => api::dm_page(&token, peer, before).await.map(|page| {
                let messages = page.messages.into_iter().map(Said::from).collect();
                (messages, page.more)
            }),
        };
        match page {
            Ok((messages, more)) => state.prepend(&conv, messages, more),
            Err(error) => state.error.set(Some(format!("Could not load history: {error}"))),
        }
    }

    /// Reports the active conversation read up to its latest message, at most once a second.
    pub fn mark_read(&self) {
        if self.read_scheduled.get_value() {
            return;
        }
        self.read_scheduled.set_value(true);
        let chat = *self;
        set_timeout(
            move || {
                chat.read_scheduled.set_value(false);
                let visible = document().visibility_state() == web_sys::VisibilityState::Visible;
                let conv = chat.state.active.get_untracked();
                let conv_state = chat.state.conv(&conv);
                let seq = conv_state.last_seq.get_untracked();
                if !visible || seq <= conv_state.read_seq.get_untracked() {
                    return;
                }
                conv_state.read_seq.set(seq);
                let token = chat.state.token();
                leptos::task::spawn_local(async move {
                    let _ = match &conv {
                        Conv::Room(room) => api::mark_room_read(&token, room, seq).await,
                        Conv::Dm(peer) => api::mark_dm_read(&token, peer, seq).await,
                    };
                });
            },
            std::time::Duration::from_millis(1000),
        );
    }

    /// Sends a message to the active conversation. Returns why not, if it was refused.
    pub fn say(&self, text: String) -> Result<(), String> {
        validate_text(&text).map_err(|reason| reason.to_string())?;
        let conv = self.state.active.get_untracked();
        let pending = self.state.queue(&conv, text);
        self.request(Request::Send { conv, key: pending.key, text: pending.text });
        Ok(())
    }

    /// Sends a failed message again, with the same idempotency key.
    pub fn retry(&self, key: String) {
        let conv = self.state.active.get_untracked();
        let text = self.state.conv(&conv).pending.with_untracked(|all| {
            all.iter().find(|pending| pending.key == key).map(|pending| pending.text.clone())
        });
        if let Some(text) = text {
            self.state.conv(&conv).pending.update(|all| {
                if let Some(pending) = all.iter_mut().find(|pending| pending.key == key) {
                    pending.state = PendingState::Queued;
                }
            });
            self.request(Request::Send { conv, key, text });
        }
    }

    /// Tells the active room that the user is typing.
    pub fn typing(&self) {
        if let Conv::Room(room) = self.state.active.get_untracked() {
            self.request(Request::Typing(room));
        }
    }

    /// Fetches ids missing from a stream, until the gap is closed.
    async fn fill_gap(&self, gap: Gap) {
        let token = self.state.token();
        let fetched = match &gap {
            Gap::Room { room, after } => api::room_after(&token, room, *after)
                .await
                .map(|page| self.state.room_fetched(room, page.messages, page.more)),
            Gap::Inbox { after } => api::inbox_after(&token, *after)
                .await
                .map(|page| self.state.inbox_fetched(page.messages, page.more)),
        };
        if let Err(error) = fetched {
            leptos::logging::warn!("missing messages not fetched, trying again: {error}");
            gloo_timers::future::TimeoutFuture::new(2_000).await;
            self.state.gap_fetch_failed(&gap);
        }
    }

    async fn refresh_rooms(&self) {
        match api::rooms(&self.state.token()).await {
            Ok(rooms) => self.state.set_rooms(rooms),
            Err(error) => self.state.error.set(Some(error)),
        }
    }

    /// Joins a room and shows it.
    pub fn join_room(&self, room: String) {
        let chat = *self;
        leptos::task::spawn_local(async move {
            if let Err(error) = api::join_room(&chat.state.token(), &room).await {
                chat.state.error.set(Some(error));
                return;
            }
            chat.refresh_rooms().await;
            chat.request(Request::Subscribe(room.clone()));
            chat.open(Conv::Room(room));
        });
    }

    /// Creates a room and shows it; returns the server's refusal.
    pub async fn create_room(&self, name: String) -> Result<(), String> {
        api::create_room(&self.state.token(), &name, false).await?;
        self.refresh_rooms().await;
        self.request(Request::Subscribe(name.clone()));
        self.open(Conv::Room(name));
        Ok(())
    }

    /// Leaves a room and goes back to the lobby.
    pub fn leave_room(&self, room: String) {
        let chat = *self;
        leptos::task::spawn_local(async move {
            if let Err(error) = api::leave_room(&chat.state.token(), &room).await {
                chat.state.error.set(Some(error));
                return;
            }
            chat.request(Request::Unsubscribe(room));
            chat.refresh_rooms().await;
            chat.open(Conv::Room(LOBBY.to_owned()));
        });
    }

    /// Revokes the token and returns to the sign-in page.
    pub fn sign_out(&self) {
        let chat = *self;
        let token = self.state.token();
        leptos::task::spawn_local(async move {
            let _ = api::logout(&token).await;
            chat.sign_out.with_value(|sign_out| sign_out());
        });
    }
}

/// Loads the user's rooms and conversations, then connects.
async fn load(chat: Chat) -> Result<(), String> {
    let token = chat.state.token();
    let (rooms, dms) = futures::join!(api::rooms(&token), api::dms(&token));
    chat.state.set_rooms(rooms?);
    chat.state.set_dms(dms?);
    let active = chat.state.active.get_untracked();
    chat.load_older(active).await;
    chat.mark_read();
    Ok(())
}

/// The chat screen for a signed-in user.
#[component]
pub fn ChatPage(
    /// The session.
    session: SessionToken,
    /// Called when the session ends: signed out here, or the token was revoked.
    on_signed_out: impl Fn() + Send + Sync + Copy + 'static,
) -> impl IntoView {
    let state = ChatState::new(session, Conv::Room(LOBBY.to_owned()));
    let (loaded_tx, loaded_rx) = futures::channel::oneshot::channel::<()>();
    let connection = Connection::start(state, on_signed_out, async move {
        let _ = loaded_rx.await;
    });
    let chat = Chat {
        state,
        connection: StoredValue::new(connection),
        sign_out: StoredValue::new(Box::new(on_signed_out)),
        read_scheduled: StoredValue::new(false),
    };
    provide_context(chat);
    leptos::task::spawn_local(async move {
        if let Err(error) = load(chat).await {
            state.error.set(Some(error));
        }
        let _ = loaded_tx.send(());
    });
    // Someone created a room, or announcements were missed while offline: reload the list,
    // once for a burst of announcements (a second after the first of them).
    let refresh_due = StoredValue::new(false);
    Effect::new(move |previous: Option<u64>| {
        let stale = state.rooms_stale.get();
        if previous.is_some_and(|previous| previous != stale) && !refresh_due.get_value() {
            refresh_due.set_value(true);
            leptos::task::spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(1_000).await;
                refresh_due.set_value(false);
                chat.refresh_rooms().await;
            });
        }
        stale
    });
    // A stream skipped ids: fetch them (see `model::sequence`).
    Effect::new(move |_| {
        let gaps = state.gaps.get();
        if !gaps.is_empty() {
            state.gaps.set(Vec::new());
            for gap in gaps {
                leptos::task::spawn_local(async move { chat.fill_gap(gap).await });
            }
        }
    });
    let (sidebar_open, set_sidebar_open) = signal(false);
    // Pick a conversation in the sidebar: on a phone, the sidebar folds away.
    Effect::new(move |_| {
        state.active.track();
        set_sidebar_open.set(false);
    });
    view! {
        <div class="app" class:sidebar-open=sidebar_open>
            <header class="topbar">
                <button class="menu" aria-label="Rooms and people" on:click=move |_| set_sidebar_open.update(|open| *open = !*open)>"☰"</button>
                <div class="brand"><span class="logo">"◆"</span>" Confab"</div>
                <h1 class="room" id="conversation-title">{move || state.active.get().title()}</h1>
                <StatusBadge status=state.status />
            </header>
            <Sidebar />
            <ConversationView />
        </div>
    }
}
