//! The root component: the sign-in page until there is a session, then the chat.

use leptos::prelude::*;
use shared::api::SessionToken;

use crate::pages::auth::AuthPage;
use crate::pages::chat::ChatPage;

/// Where the session is remembered between visits.
const SESSION_KEY: &str = "confab.session";

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

fn remembered() -> Option<SessionToken> {
    let text = storage()?.get_item(SESSION_KEY).ok().flatten()?;
    serde_json::from_str(&text).ok()
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let (session, set_session) = signal(remembered());
    let (ended, set_ended) = signal(None::<String>);
    let signed_in = move |token: SessionToken| {
        set_ended.set(None);
        if let (Some(storage), Ok(text)) = (storage(), serde_json::to_string(&token)) {
            let _ = storage.set_item(SESSION_KEY, &text);
        }
        set_session.set(Some(token));
    };
    let signed_out = move || {
        if let Some(storage) = storage() {
            let _ = storage.remove_item(SESSION_KEY);
        }
        set_session.set(None);
    };
    // The server ended the session: its token was revoked elsewhere, or an admin
    // deactivated the account.
    let session_ended = move || {
        set_ended.set(Some("You were signed out: this session was ended.".to_owned()));
        signed_out();
    };
    view! {
        {move || match session.get() {
            None => view! { <AuthPage on_signed_in=signed_in ended=ended.get_untracked() /> }.into_any(),
            Some(token) => view! {
                <ChatPage session=token on_signed_out=signed_out on_session_ended=session_ended />
            }.into_any(),
        }}
    }
}
