//! The root component: asks for a name, then shows the chat.

use leptos::prelude::*;
use shared::chat::LOBBY;

use crate::components::chat::Chat;
use crate::components::name_prompt::NamePrompt;

/// Where the chosen name is remembered between visits.
const NAME_KEY: &str = "confab.name";

fn storage() -> Option<web_sys::Storage> {
    window().local_storage().ok().flatten()
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    let remembered = storage().and_then(|storage| storage.get_item(NAME_KEY).ok().flatten());
    let (name, set_name) = signal(None::<String>);
    let choose = move |chosen: String| {
        if let Some(storage) = storage() {
            let _ = storage.set_item(NAME_KEY, &chosen);
        }
        set_name.set(Some(chosen));
    };
    view! {
        {move || match name.get() {
            None => view! { <NamePrompt initial=remembered.clone().unwrap_or_default() on_choose=choose /> }.into_any(),
            Some(me) => view! { <Chat me=me room=LOBBY.to_owned() /> }.into_any(),
        }}
    }
}
