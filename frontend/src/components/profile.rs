//! The person's own panel: picture, display name, password, and their sessions, any of
//! which they can end.

use leptos::prelude::*;
use shared::api::{MIN_PASSWORD_CHARS, SessionSummary};

use super::attachments::Avatar;
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
    let choose_picture = move |event: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&event);
        let Some(file) = input.files().and_then(|files| files.get(0)) else { return };
        input.set_value("");
        let max = state.max_upload.get_untracked();
        if let Some(refusal) =
            crate::model::upload::refuse(&file.name(), file.size() as u64, max, 0)
        {
            set_problem.set(Some(refusal));
            return;
        }
        set_note.set(Some("Uploading your picture…".into()));
        leptos::task::spawn_local(async move {
            match crate::files::set_avatar(&state.token(), &file).await {
                Ok(me) => {
                    state.set_my_avatar(me.avatar);
                    set_problem.set(None);
                    set_note.set(Some("Picture saved.".into()));
                }
                Err(error) => {
                    set_note.set(None);
                    set_problem.set(Some(error));
                }
            }
        });
    };
    let remove_picture = move |_| {
        leptos::task::spawn_local(async move {
            match api::remove_avatar(&state.token()).await {
                Ok(()) => {
                    state.set_my_avatar(None);
                    set_note.set(Some("Picture removed.".into()));
                }
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    let has_picture = {
        let me = me.clone();
        move || state.avatar(&me).is_some()
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
            <div class="picture-row">
                <Avatar name=me.clone() size="large" />
                <label class="chip" for="avatar-file">"Choose a picture"</label>
                <input id="avatar-file" class="visually-hidden" type="file" accept="image/png,image/jpeg,image/gif,image/webp"
                    on:change=choose_picture />
                <Show when=has_picture.clone()>
                    <button type="button" class="chip harsh" id="remove-avatar" on:click=remove_picture>"Remove"</button>
                </Show>
            </div>
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
