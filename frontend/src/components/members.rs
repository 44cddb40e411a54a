//! The list of who is in the room.

use leptos::prelude::*;

use super::avatar_hue;

/// The room's members, the current user marked.
#[component]
pub fn Members(
    /// Who is in the room, sorted.
    members: RwSignal<Vec<String>>,
    /// The current user.
    me: RwSignal<String>,
) -> impl IntoView {
    view! {
        <section class="members">
            <h2>"Here now " <span class="count">{move || members.get().len()}</span></h2>
            <ul id="members">
                <For each=move || members.get() key=|name| name.clone() let:name>
                    <li>
                        <span class="avatar small" style=format!("--hue: {}", avatar_hue(&name))>
                            {name.chars().next().map(|c| c.to_uppercase().to_string()).unwrap_or_default()}
                        </span>
                        <span class="member-name">{name.clone()}</span>
                        <Show when={
                            let name = name.clone();
                            move || me.get() == name
                        }>
                            <span class="you">"you"</span>
                        </Show>
                    </li>
                </For>
            </ul>
        </section>
    }
}
