//! The chat screen and the actions the page can take: open a conversation, page back,
//! send, retry, join, create and leave rooms, sign out.

use leptos::prelude::*;
use shared::api::SessionToken;
use shared::chat::{
    Attachment, ClientEvent, LOBBY, RoomChange, validate_emoji, validate_message, validate_name,
    validate_text, validate_username,
};

use crate::api;
use crate::components::admin::AdminPanel;
use crate::components::attachments::{Lightbox, LightboxView};
use crate::components::conversation::ConversationView;
use crate::components::lock_icon;
use crate::components::profile::ProfilePanel;
use crate::components::room_settings::RoomSettings;
use crate::components::search::SearchBox;
use crate::components::sidebar::Sidebar;
use crate::components::status::StatusBadge;
use crate::model::{ChatState, Conv, Gap, Panel, PendingState, Said, roles};
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
        self.open_then(conv, None);
    }

    /// Shows a conversation at one of its messages (a search result's, a notification's),
    /// paging its history back to it once its latest history is loaded.
    pub fn open_at(&self, conv: Conv, seq: u64) {
        self.open_then(conv, Some(seq));
    }

    fn open_then(&self, conv: Conv, seq: Option<u64>) {
        let state = self.state;
        set_location_hash(&conv);
        state.active.set(conv.clone());
        let conv_state = state.conv(&conv);
        conv_state.unread.set(0);
        conv_state.mentions.set(0);
        if conv_state.loaded.get_untracked() {
            self.mark_read();
            if let Some(seq) = seq {
                self.jump_to(seq);
            }
        } else {
            let chat = *self;
            leptos::task::spawn_local(async move {
                chat.load_older(conv).await;
                chat.mark_read();
                if let Some(seq) = seq {
                    chat.jump_to(seq);
                }
            });
        }
    }

    /// Loads the page of history before the oldest loaded message.
    pub async fn load_older(&self, conv: Conv) {
        self.load_older_by(conv, None).await;
    }

    /// Loads older history: a page of the server's default size, or `limit` messages.
    async fn load_older_by(&self, conv: Conv, limit: Option<usize>) {
        let state = self.state;
        let token = state.token();
        let conv_state = state.conv(&conv);
        let before = if conv_state.loaded.get_untracked() { conv_state.oldest_seq() } else { None };
        let page = match &conv {
            Conv::Room(room) => api::room_page(&token, room, before, limit).await.map(|page| {
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
    pub fn say(&self, text: String, files: Vec<Attachment>) -> Result<(), String> {
        let ids: Vec<String> = files.iter().map(|file| file.id.clone()).collect();
        validate_message(&text, &ids)?;
        let conv = self.state.active.get_untracked();
        let conv_state = self.state.conv(&conv);
        let reply_to = conv_state.reply_to.get_untracked().map(|quote| quote.seq);
        conv_state.reply_to.set(None);
        let message = self.state.queue(&conv, text, reply_to, files);
        self.request(Request::Send { conv, message });
        Ok(())
    }

    /// Edits one's own message in the active conversation. Returns why not, if it is refused here.
    pub fn edit(&self, seq: u64, text: String) -> Result<(), String> {
        validate_text(&text).map_err(|reason| reason.to_string())?;
        self.change(ClientEvent::Edit { seq, text });
        Ok(())
    }

    /// Deletes a message of the active conversation.
    pub fn delete(&self, seq: u64) {
        self.change(ClientEvent::Delete { seq });
    }

    /// Gives or takes back a reaction to a message of the active conversation.
    pub fn react(&self, seq: u64, emoji: String, on: bool) {
        match validate_emoji(&emoji) {
            Ok(()) => self.change(ClientEvent::React { seq, emoji, on }),
            Err(reason) => self.state.error.set(Some(format!("Not a reaction: {reason}"))),
        }
    }

    fn change(&self, event: ClientEvent) {
        let conv = self.state.active.get_untracked();
        self.request(Request::Change { conv, event });
    }

    /// Brings a message of the active conversation into view, paging history back until it
    /// is loaded (a reply's original, far back).
    pub fn jump_to(&self, seq: u64) {
        let conv = self.state.active.get_untracked();
        let conv_state = self.state.conv(&conv);
        let chat = *self;
        leptos::task::spawn_local(async move {
            while conv_state.oldest_seq().is_none_or(|oldest| oldest > seq)
                && conv_state.more.get_untracked()
            {
                let before = conv_state.oldest_seq();
                // Far back: the largest pages the server gives, to get there in few steps.
                chat.load_older_by(conv.clone(), Some(shared::api::MAX_PAGE)).await;
                if conv_state.oldest_seq() == before {
                    break;
                }
            }
            conv_state.focus.set(Some(seq));
        });
    }

    /// Sends a failed message again, with the same idempotency key.
    pub fn retry(&self, key: String) {
        let conv = self.state.active.get_untracked();
        let found = self
            .state
            .conv(&conv)
            .pending
            .with_untracked(|all| all.iter().find(|pending| pending.key == key).cloned());
        if let Some(message) = found {
            self.state.conv(&conv).pending.update(|all| {
                if let Some(pending) = all.iter_mut().find(|pending| pending.key == key) {
                    pending.state = PendingState::Queued;
                }
            });
            self.request(Request::Send { conv, message });
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

    /// Creates a room, public or private, and shows it; returns the server's refusal.
    pub async fn create_room(&self, name: String, private: bool) -> Result<(), String> {
        api::create_room(&self.state.token(), &name, private).await?;
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

    /// Asks the server for a change to a room; the room's stream brings it back to every
    /// page, this one included.
    pub async fn change_room(&self, room: &str, change: RoomChange) -> Result<(), String> {
        api::change_room(&self.state.token(), room, &change).await.map(drop)
    }

    /// Loads everyone's display names again.
    pub async fn refresh_people(&self) {
        if let Ok(people) = api::people(&self.state.token()).await {
            self.state.set_people(people);
        }
    }

    /// The stream said the user was removed from these rooms: if the room list agrees,
    /// the room goes, and the page says so.
    async fn removed(&self, rooms: Vec<String>) {
        self.refresh_rooms().await;
        let joined = self.state.joined_rooms();
        for room in rooms.into_iter().filter(|room| !joined.contains(room)) {
            self.request(Request::Unsubscribe(room.clone()));
            if self.state.active.get_untracked() == Conv::Room(room.clone()) {
                self.open(Conv::Room(LOBBY.to_owned()));
            }
            self.state.error.set(Some(format!("You are no longer a member of #{room}.")));
        }
    }

    /// Opens what the address names (`#/room/<name>`, `#/dm/<name>`): a room the user is
    /// not in is joined if the server lets them, or the page says why not.
    async fn open_from_location(&self) {
        let Some(conv) = location_conv() else { return };
        match &conv {
            Conv::Room(room) if !self.state.joined_rooms().contains(room) => {
                if let Err(error) = api::join_room(&self.state.token(), room).await {
                    self.state.error.set(Some(format!("Cannot open #{room}: {error}")));
                    set_location_hash(&self.state.active.get_untracked());
                    return;
                }
                self.refresh_rooms().await;
                self.request(Request::Subscribe(room.clone()));
                self.open(conv);
            }
            _ => self.open(conv),
        }
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

/// The conversation the address names: `#/room/<name>` or `#/dm/<name>`.
fn location_conv() -> Option<Conv> {
    let hash = window().location().hash().ok()?;
    let path = hash.strip_prefix("#/")?;
    let (kind, name) = path.split_once('/')?;
    match kind {
        "room" if validate_name(name).is_ok() => Some(Conv::Room(name.to_owned())),
        "dm" if validate_username(name).is_ok() => Some(Conv::Dm(name.to_owned())),
        _ => None,
    }
}

/// Puts the conversation in the address, so that it can be linked to and survives a reload.
fn set_location_hash(conv: &Conv) {
    let hash = match conv {
        Conv::Room(room) => format!("#/room/{room}"),
        Conv::Dm(peer) => format!("#/dm/{peer}"),
    };
    if window().location().hash().ok().as_deref() != Some(hash.as_str())
        && let Ok(history) = window().history()
    {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&hash));
    }
}

/// Loads the user's rooms and conversations, then connects.
async fn load(chat: Chat) -> Result<(), String> {
    let token = chat.state.token();
    let (rooms, dms, me, people, server) = futures::join!(
        api::rooms(&token),
        api::dms(&token),
        api::me(&token),
        api::people(&token),
        api::server_info()
    );
    chat.state.set_rooms(rooms?);
    chat.state.set_dms(dms?);
    chat.state.admin.set(me?.admin);
    chat.state.set_people(people?);
    chat.state.max_upload.set(server?.max_upload_bytes);
    let active = chat.state.active.get_untracked();
    chat.load_older(active).await;
    chat.mark_read();
    chat.open_from_location().await;
    Ok(())
}

/// The header's title: a room's title (or name), with a lock when it is private; a
/// person's display name.
fn conversation_title(state: ChatState) -> AnyView {
    match state.active.get() {
        Conv::Room(name) => match state.room(&name) {
            Some(room) if room.private => {
                view! { {lock_icon()} " " {roles::room_label(&room)} }.into_any()
            }
            Some(room) => format!("# {}", roles::room_label(&room)).into_any(),
            None => format!("# {name}").into_any(),
        },
        Conv::Dm(peer) => format!("@ {}", state.display(&peer)).into_any(),
    }
}

/// The active room's topic, if it has one.
fn conversation_topic(state: ChatState) -> Option<String> {
    match state.active.get() {
        Conv::Room(name) => state.room(&name).map(|room| room.topic).filter(|t| !t.is_empty()),
        Conv::Dm(_) => None,
    }
}

/// The chat screen for a signed-in user.
#[component]
pub fn ChatPage(
    /// The session.
    session: SessionToken,
    /// Called when the person signs out here.
    on_signed_out: impl Fn() + Send + Sync + Copy + 'static,
    /// Called when the server ends the session: the token was revoked, or the account
    /// deactivated.
    on_session_ended: impl Fn() + Send + Sync + Copy + 'static,
) -> impl IntoView {
    let state = ChatState::new(session, Conv::Room(LOBBY.to_owned()));
    let (loaded_tx, loaded_rx) = futures::channel::oneshot::channel::<()>();
    let connection = Connection::start(state, on_session_ended, async move {
        let _ = loaded_rx.await;
    });
    let chat = Chat {
        state,
        connection: StoredValue::new(connection),
        sign_out: StoredValue::new(Box::new(on_signed_out)),
        read_scheduled: StoredValue::new(false),
    };
    provide_context(chat);
    provide_context(state);
    provide_context(Lightbox(RwSignal::new(None)));
    provide_context(crate::components::notifications::watch(chat));
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
    // The stream said the user was removed from a room.
    Effect::new(move |_| {
        let removals = state.removals.get();
        if !removals.is_empty() {
            state.removals.set(Vec::new());
            leptos::task::spawn_local(async move { chat.removed(removals).await });
        }
    });
    // A link to a room or a person, followed within the page.
    let hash_listener = window_event_listener(leptos::ev::hashchange, move |_| {
        leptos::task::spawn_local(async move { chat.open_from_location().await });
    });
    on_cleanup(move || hash_listener.remove());
    // Someone added the user to a room: it appears, live.
    Effect::new(move |_| {
        let added = state.added.get();
        if !added.is_empty() {
            state.added.set(Vec::new());
            leptos::task::spawn_local(async move {
                chat.refresh_rooms().await;
                for room in added {
                    chat.request(Request::Subscribe(room));
                }
            });
        }
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
                <div class="heading">
                    <h1 class="room" id="conversation-title">{move || conversation_title(state)}</h1>
                    {move || conversation_topic(state).map(|topic| view! { <p class="topic" id="room-topic">{topic}</p> })}
                </div>
                <SearchBox />
                <StatusBadge status=state.status />
            </header>
            <Sidebar />
            <ConversationView />
            <LightboxView />
            {move || match (state.panel.get(), state.active.get()) {
                (Some(Panel::Room), Conv::Room(room)) => Some(view! { <RoomSettings room=room /> }.into_any()),
                (Some(Panel::Profile), _) => Some(view! { <ProfilePanel /> }.into_any()),
                (Some(Panel::Admin), _) => Some(view! { <AdminPanel /> }.into_any()),
                _ => None,
            }}
        </div>
    }
}
