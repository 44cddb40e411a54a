//! The person's own panel: display name, password, and their sessions, any of which they
//! can end.

use leptos::prelude::*;
use shared::api::{MIN_PASSWORD_CHARS, SessionSummary};

use super::clock;
use crate::api;
use crate::model::device::device_label;
use crate::pages::chat::Chat;

/// The profile panel.
#[component]
pub fn ProfilePanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let me = state.me();
    let (display, set_display) =
        signal(state.people.with_untracked(|people| people.get(&me).cloned()).unwrap_or_default());
    let (note, set_note) = signal(None::<String>);
    let (problem, set_problem) = signal(None::<String>);
    let save_name = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let name = display.get_untracked().trim().to_owned();
        leptos::task::spawn_local(async move {
            let name = (!name.is_empty()).then_some(name);
            match api::set_profile(&state.token(), name).await {
                Ok(_) => {
                    chat.refresh_people().await;
                    set_problem.set(None);
                    set_note.set(Some("Saved.".into()));
                }
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    let (current, set_current) = signal(String::new());
    let (new, set_new) = signal(String::new());
    let change_password = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let (current, new) = (current.get_untracked(), new.get_untracked());
        if new.chars().count() < MIN_PASSWORD_CHARS {
            set_problem
                .set(Some(format!("Passwords have at least {MIN_PASSWORD_CHARS} characters.")));
            return;
        }
        leptos::task::spawn_local(async move {
            match api::change_password(&state.token(), current, new).await {
                Ok(()) => {
                    set_current.set(String::new());
                    set_new.set(String::new());
                    set_problem.set(None);
                    set_note.set(Some("Password changed: your other sessions have ended.".into()));
                }
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    let (sessions, set_sessions) = signal(Vec::<SessionSummary>::new());
    let load_sessions = move || {
        leptos::task::spawn_local(async move {
            match api::sessions(&state.token()).await {
                Ok(list) => set_sessions.set(list),
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    load_sessions();
    let end = move |id: String| {
        leptos::task::spawn_local(async move {
            match api::end_session(&state.token(), &id).await {
                Ok(()) => load_sessions(),
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    view! {
        <div class="panel-backdrop" on:click=move |_| state.panel.set(None)></div>
        <section class="panel" id="profile" role="dialog" aria-label="Your profile">
            <header class="panel-head">
                <h2>"You: " {me.clone()}</h2>
                <button class="close" aria-label="Close" on:click=move |_| state.panel.set(None)>"×"</button>
            </header>
            <Show when=move || problem.get().is_some()>
                <p class="problem" role="alert">{move || problem.get()}</p>
            </Show>
            <Show when=move || note.get().is_some()>
                <p class="note" role="status">{move || note.get()}</p>
            </Show>
            <form class="panel-form" on:submit=save_name>
                <label for="display-name">"Display name"</label>
                <input id="display-name" type="text" maxlength="64" placeholder="How others see you"
                    prop:value=display on:input=move |event| set_display.set(event_target_value(&event)) />
                <button type="submit" id="save-display-name">"Save"</button>
            </form>
            <form class="panel-form" on:submit=change_password>
                <label for="current-password">"Current password"</label>
                <input id="current-password" type="password" autocomplete="current-password"
                    prop:value=current on:input=move |event| set_current.set(event_target_value(&event)) />
                <label for="new-password">"New password"</label>
                <input id="new-password" type="password" autocomplete="new-password"
                    prop:value=new on:input=move |event| set_new.set(event_target_value(&event)) />
                <button type="submit" id="change-password">"Change password"</button>
            </form>
            <h3>"Sessions"</h3>
            <ul class="member-list" id="sessions">
                <For each=move || sessions.get() key=|session| session.id.clone() let:session>
                    {
                        let id = session.id.clone();
                        view! {
                            <li data-session=session.id.clone()>
                                <span class="member-name" title=session.device.clone()>{device_label(&session.device)}</span>
                                <span class="when">"used " {clock(session.last_used_at)}</span>
                                {if session.current {
                                    view! { <span class="role">"this one"</span> }.into_any()
                                } else {
                                    view! { <button class="chip harsh" on:click=move |_| end(id.clone())>"Sign out"</button> }.into_any()
                                }}
                            </li>
                        }
                    }
                </For>
            </ul>
        </section>
    }
}
