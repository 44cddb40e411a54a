//! The first screen: pick the name others will see.

use leptos::prelude::*;
use shared::chat::validate_name;

/// Asks for a name and calls `on_choose` with a valid one.
#[component]
pub fn NamePrompt(
    /// The name to start from (the last one used on this browser).
    initial: String,
    /// Called with the chosen name.
    on_choose: impl Fn(String) + 'static,
) -> impl IntoView {
    let (name, set_name) = signal(initial);
    let (problem, set_problem) = signal(None::<String>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let chosen = name.get_untracked().trim().to_lowercase();
        match validate_name(&chosen) {
            Ok(()) => on_choose(chosen),
            Err(reason) => set_problem.set(Some(format!("That name won't work: {reason}."))),
        }
    };
    view! {
        <main class="welcome">
            <form class="card" on:submit=submit>
                <div class="brand"><span class="logo">"◆"</span>" Confab"</div>
                <h1>"Welcome"</h1>
                <p class="hint">"Pick a name to join the lobby. Lowercase letters, digits, - and _."</p>
                <input
                    id="name"
                    type="text"
                    autocomplete="username"
                    maxlength="32"
                    placeholder="your name"
                    autofocus
                    prop:value=name
                    on:input=move |event| {
                        set_name.set(event_target_value(&event));
                        set_problem.set(None);
                    }
                />
                <Show when=move || problem.get().is_some()>
                    <p class="problem" role="alert">{move || problem.get()}</p>
                </Show>
                <button id="join" type="submit">"Join the lobby"</button>
            </form>
        </main>
    }
}
