//! Sign in, create an account (the first one on a new server, with an invitation link, or
//! freely where the server allows it), or set a new password through a reset link.

use leptos::prelude::*;
use shared::api::{Credentials, MIN_PASSWORD_CHARS, Registration, ServerInfo, SessionToken};
use shared::chat::validate_username;

use crate::api;

/// What the form does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SignIn,
    Register,
    Reset,
}

/// A link the page was opened with: `/join/<code>` (an invitation) or `/reset/<code>`.
fn link_code(prefix: &str) -> Option<String> {
    let path = window().location().pathname().ok()?;
    let code = path.strip_prefix(prefix)?;
    (!code.is_empty() && code.len() <= 128 && !code.contains('/')).then(|| code.to_owned())
}

/// Takes a used link out of the address bar, so that a reload does not offer it again.
fn forget_link() {
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some("/"));
    }
}

/// The sign-in and sign-up form.
#[component]
pub fn AuthPage(
    /// Called with the new session.
    on_signed_in: impl Fn(SessionToken) + Copy + Send + Sync + 'static,
    /// Why the last session ended, if the server ended it.
    ended: Option<String>,
) -> impl IntoView {
    let invite = link_code("/join/");
    let reset = link_code("/reset/");
    let initial = if reset.is_some() {
        Mode::Reset
    } else if invite.is_some() {
        Mode::Register
    } else {
        Mode::SignIn
    };
    let (mode, set_mode) = signal(initial);
    let (info, set_info) = signal(None::<ServerInfo>);
    let (username, set_username) = signal(String::new());
    let (password, set_password) = signal(String::new());
    let (problem, set_problem) = signal(ended);
    let (busy, set_busy) = signal(false);
    // The form waits for the server's sign-up rules, so that it opens in the right mode
    // and never changes under the person's hands.
    let (ready, set_ready) = signal(false);
    leptos::task::spawn_local(async move {
        if let Ok(server) = api::server_info().await {
            // A new server: the first person sets it up.
            if server.first_account && mode.get_untracked() == Mode::SignIn {
                set_mode.set(Mode::Register);
            }
            set_info.set(Some(server));
        }
        set_ready.set(true);
    });
    let first = move || info.get().is_some_and(|info| info.first_account);
    let open = move || info.get().is_some_and(|info| info.registration == Registration::Open);
    let invited = invite.is_some();
    let may_register = move || invited || first() || open();
    let submit = {
        let (invite, reset) = (invite.clone(), reset.clone());
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let mode = mode.get_untracked();
            let password = password.get_untracked();
            if mode != Mode::SignIn && password.chars().count() < MIN_PASSWORD_CHARS {
                set_problem
                    .set(Some(format!("Passwords have at least {MIN_PASSWORD_CHARS} characters.")));
                return;
            }
            let credentials = Credentials {
                username: username.get_untracked().trim().to_lowercase(),
                password,
                invite: invite.clone(),
            };
            if mode == Mode::Register
                && let Err(reason) = validate_username(&credentials.username)
            {
                set_problem.set(Some(format!("That name won't work: {reason}.")));
                return;
            }
            set_busy.set(true);
            let reset = reset.clone();
            leptos::task::spawn_local(async move {
                let result = match mode {
                    Mode::SignIn => api::login(&credentials).await,
                    Mode::Register => api::register(&credentials).await,
                    Mode::Reset => {
                        api::reset_password(reset.unwrap_or_default(), credentials.password).await
                    }
                };
                set_busy.set(false);
                match result {
                    Ok(session) => {
                        if mode != Mode::SignIn {
                            forget_link();
                        }
                        on_signed_in(session)
                    }
                    Err(error) => set_problem.set(Some(error)),
                }
            });
        }
    };
    let heading = move || match mode.get() {
        Mode::Reset => "Choose a new password",
        Mode::Register if first() => "Set up Confab",
        Mode::Register if invited => "You're invited",
        Mode::Register => "Create your account",
        Mode::SignIn => "Welcome back",
    };
    let hint = move || match mode.get() {
        Mode::Reset => {
            "An admin sent you this link. It works once; every other session of your account ends."
        }
        Mode::Register if first() => {
            "You are the first person here: this account will be the server's admin. Pick a name: 3 to 32 lowercase letters, digits, - or _."
        }
        Mode::Register => "Pick a name: 3 to 32 lowercase letters, digits, - or _.",
        Mode::SignIn => "Sign in to pick up where you left off.",
    };
    view! {
        <main class="welcome">
            <Show when=move || ready.get() fallback=|| view! { <div class="card"><div class="brand"><span class="logo">"◆"</span>" Confab"</div></div> }>
            <form class="card" on:submit=submit.clone()>
                <div class="brand"><span class="logo">"◆"</span>" Confab"</div>
                <h1 id="auth-heading">{heading}</h1>
                <p class="hint">{hint}</p>
                <Show when=move || mode.get() != Mode::Reset>
                    <label for="username">"User name"</label>
                    <input id="username" type="text" autocomplete="username" maxlength="32" autofocus
                        prop:value=username
                        on:input=move |event| { set_username.set(event_target_value(&event)); set_problem.set(None); } />
                </Show>
                <label for="password">{move || if mode.get() == Mode::Reset { "New password" } else { "Password" }}</label>
                <input id="password" type="password" maxlength="256"
                    autocomplete=move || if mode.get() == Mode::SignIn { "current-password" } else { "new-password" }
                    prop:value=password
                    on:input=move |event| { set_password.set(event_target_value(&event)); set_problem.set(None); } />
                <Show when=move || problem.get().is_some()>
                    <p class="problem" role="alert">{move || problem.get()}</p>
                </Show>
                <button id="submit" type="submit" disabled=busy>
                    {move || match mode.get() {
                        Mode::SignIn => "Sign in",
                        Mode::Register => "Create account",
                        Mode::Reset => "Set password and sign in",
                    }}
                </button>
                <Show when=move || mode.get() != Mode::Reset>
                    <p class="switch">
                        {move || match (mode.get(), may_register()) {
                            (Mode::Register, _) => view! {
                                "Have an account? "
                                <a href="#" id="switch-mode" on:click=move |event| {
                                    event.prevent_default();
                                    set_mode.set(Mode::SignIn);
                                    set_problem.set(None);
                                }>"Sign in"</a>
                            }.into_any(),
                            (_, true) => view! {
                                "New here? "
                                <a href="#" id="switch-mode" on:click=move |event| {
                                    event.prevent_default();
                                    set_mode.set(Mode::Register);
                                    set_problem.set(None);
                                }>"Create an account"</a>
                            }.into_any(),
                            (_, false) => view! {
                                <span id="invite-only">{move || match info.get().map(|info| info.registration) {
                                    Some(Registration::Closed) => "This server is not taking new accounts.",
                                    _ => "New here? Ask an admin of this server for an invitation link.",
                                }}</span>
                            }.into_any(),
                        }}
                    </p>
                </Show>
            </form>
            </Show>
        </main>
    }
}
