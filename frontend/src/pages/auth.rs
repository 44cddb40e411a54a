//! Sign in, or create an account.

use leptos::prelude::*;
use shared::api::{Credentials, MIN_PASSWORD_CHARS, SessionToken};
use shared::chat::validate_username;

use crate::api;

/// The sign-in and sign-up form.
#[component]
pub fn AuthPage(
    /// Called with the new session.
    on_signed_in: impl Fn(SessionToken) + Copy + 'static,
) -> impl IntoView {
    let (registering, set_registering) = signal(false);
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (problem, set_problem) = signal(None::<String>);
    let (busy, set_busy) = signal(false);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let credentials = Credentials {
            username: username.get_untracked().trim().to_lowercase(),
            password: password.get_untracked(),
            invite: None,
        };
        let registering = registering.get_untracked();
        if registering {
            if let Err(reason) = validate_username(&credentials.username) {
                set_problem.set(Some(format!("That name won't work: {reason}.")));
                return;
            }
            if credentials.password.chars().count() < MIN_PASSWORD_CHARS {
                set_problem
                    .set(Some(format!("Passwords have at least {MIN_PASSWORD_CHARS} characters.")));
                return;
            }
        }
        set_busy.set(true);
        leptos::task::spawn_local(async move {
            let result = if registering {
                api::register(&credentials).await
            } else {
                api::login(&credentials).await
            };
            set_busy.set(false);
            match result {
                Ok(session) => on_signed_in(session),
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    view! {
        <main class="welcome">
            <form class="card" on:submit=submit>
                <div class="brand"><span class="logo">"◆"</span>" Confab"</div>
                <h1>{move || if registering.get() { "Create your account" } else { "Welcome back" }}</h1>
                <p class="hint">
                    {move || if registering.get() {
                        "Pick a name: 3 to 32 lowercase letters, digits, - or _."
                    } else {
                        "Sign in to pick up where you left off."
                    }}
                </p>
                <label for="username">"User name"</label>
                <input id="username" type="text" autocomplete="username" maxlength="32" autofocus
                    prop:value=username
                    on:input=move |event| { set_username.set(event_target_value(&event)); set_problem.set(None); } />
                <label for="password">"Password"</label>
                <input id="password" type="password" maxlength="256"
                    autocomplete=move || if registering.get() { "new-password" } else { "current-password" }
                    prop:value=password
                    on:input=move |event| { set_password.set(event_target_value(&event)); set_problem.set(None); } />
                <Show when=move || problem.get().is_some()>
                    <p class="problem" role="alert">{move || problem.get()}</p>
                </Show>
                <button id="submit" type="submit" disabled=busy>
                    {move || if registering.get() { "Create account" } else { "Sign in" }}
                </button>
                <p class="switch">
                    {move || if registering.get() { "Have an account? " } else { "New here? " }}
                    <a href="#" id="switch-mode" on:click=move |event| {
                        event.prevent_default();
                        set_registering.update(|value| *value = !*value);
                        set_problem.set(None);
                    }>
                        {move || if registering.get() { "Sign in" } else { "Create an account" }}
                    </a>
                </p>
            </form>
        </main>
    }
}
