//! Telling people that someone needs them: browser notifications for direct messages and
//! mentions while the tab is hidden, each conversation's notification level, the tab
//! title's unread count, and the one-time question for permission, asked when the first
//! mention or direct message arrives, with the reason beside it.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{Notification, NotificationOptions, NotificationPermission};

use crate::model::Conv;
use crate::model::notify::{self, Alert, Level};
use crate::pages::chat::Chat;

/// Where the answer to "ask for permission?" is kept, once given.
const ASKED_KEY: &str = "confab.notify.asked";

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

fn level_key(me: &str, conv: &Conv) -> String {
    match conv {
        Conv::Room(room) => format!("confab.notify.{me}.room.{room}"),
        Conv::Dm(peer) => format!("confab.notify.{me}.dm.{peer}"),
    }
}

/// A conversation's notification level, as this browser keeps it.
pub fn level(me: &str, conv: &Conv) -> Level {
    storage()
        .and_then(|storage| storage.get_item(&level_key(me, conv)).ok().flatten())
        .map_or_else(Level::default, |name| Level::parse(&name))
}

fn set_level(me: &str, conv: &Conv, level: Level) {
    if let Some(storage) = storage() {
        let _ = storage.set_item(&level_key(me, conv), level.as_str());
    }
}

fn permission() -> NotificationPermission {
    // Browsers without notifications have no `Notification` at all.
    let present = js_sys::Reflect::has(&window(), &"Notification".into()).unwrap_or(false);
    if present { Notification::permission() } else { NotificationPermission::Denied }
}

/// Shows a browser notification for `alert`; a click opens its conversation at it.
fn show(chat: Chat, alert: Alert) {
    let shown = chat.state.display(&alert.sender);
    let options = NotificationOptions::new();
    let mut body = alert.text.clone();
    if body.chars().count() > 140 {
        body = body.chars().take(139).chain(['…']).collect();
    }
    options.set_body(&body);
    options.set_tag(&format!("{:?}-{}", alert.conv, alert.seq));
    let Ok(notification) = Notification::new_with_options(&notify::title(&alert, &shown), &options)
    else {
        return;
    };
    let Alert { conv, seq, .. } = alert;
    let opened = notification.clone();
    let on_click = Closure::once_into_js(move || {
        let _ = window().focus();
        chat.open_at(conv, seq);
        opened.close();
    });
    notification.set_onclick(Some(on_click.unchecked_ref()));
}

/// The question for permission, shared through context: the reason to show, if asking.
#[derive(Debug, Clone, Copy)]
pub struct Asking(pub RwSignal<Option<String>>);

/// Takes the page's alerts and notifies of those that deserve it; keeps the tab title's
/// count. Returns the signal that asks for permission (the reason to show, if asking).
pub fn watch(chat: Chat) -> Asking {
    let state = chat.state;
    let asking = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        let alerts = state.alerts.get();
        if alerts.is_empty() {
            return;
        }
        state.alerts.set(Vec::new());
        let me = state.me();
        let hidden = document().visibility_state() != web_sys::VisibilityState::Visible;
        for alert in alerts {
            let active = state.active.get_untracked() == alert.conv;
            if !notify::deserves(&alert, level(&me, &alert.conv)) || (active && !hidden) {
                continue;
            }
            match permission() {
                NotificationPermission::Granted if hidden => show(chat, alert),
                NotificationPermission::Default if !asked() => {
                    let shown = state.display(&alert.sender);
                    asking.set(Some(notify::title(&alert, &shown)));
                }
                _ => {}
            }
        }
    });
    Effect::new(move |_| {
        let unread: u64 =
            state.conversations().iter().map(|(_, conv_state)| conv_state.unread.get()).sum();
        document().set_title(&notify::tab_title(unread));
    });
    Asking(asking)
}

fn asked() -> bool {
    storage().and_then(|storage| storage.get_item(ASKED_KEY).ok().flatten()).is_some()
}

fn remember_asked() {
    if let Some(storage) = storage() {
        let _ = storage.set_item(ASKED_KEY, "yes");
    }
}

/// The question for permission, with why: shown once, when a mention or a direct message
/// first arrives while notifications are neither allowed nor refused.
#[component]
pub fn PermissionAsk() -> impl IntoView {
    let Asking(asking) = expect_context::<Asking>();
    let allow = move |_| {
        remember_asked();
        asking.set(None);
        // The browser asks; its answer is read at the next notification.
        let _ = Notification::request_permission();
    };
    view! {
        <Show when=move || asking.get().is_some()>
            <div class="banner ask" role="dialog" id="notify-ask" aria-label="Notifications">
                <span>
                    {move || asking.get()}
                    ". Confab can tell you when someone mentions you or writes to you while this tab is in the background."
                </span>
                <button class="primary" id="notify-allow" on:click=allow>"Turn on notifications"</button>
                <button on:click=move |_| { remember_asked(); asking.set(None); }>"Not now"</button>
            </div>
        </Show>
    }
}

/// The active conversation's notification level, as a menu.
#[component]
pub fn LevelMenu() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let (revision, set_revision) = signal(0u32);
    let current = move || {
        revision.track();
        level(&state.me(), &state.active.get())
    };
    view! {
        <select id="notify-level" class="notify-level" aria-label="Notifications for this conversation"
            on:change=move |event| {
                let chosen = Level::parse(&event_target_value(&event));
                set_level(&state.me(), &state.active.get_untracked(), chosen);
                set_revision.update(|revision| *revision += 1);
            }>
            {Level::ALL.into_iter().map(|option| view! {
                <option value=option.as_str() selected=move || current() == option>{option.label()}</option>
            }).collect_view()}
        </select>
    }
}
