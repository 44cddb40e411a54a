//! The admin panel: live figures, invitations, people and rooms.

use leptos::prelude::*;
use shared::api::{Account, AdminStats, Invitation, RoomSummary};

use super::{clock, day_label, lock_icon};
use crate::api;
use crate::model::roles;
use crate::pages::chat::Chat;

/// A link's full address, from its path.
fn full_link(path: &str) -> String {
    format!("{}{path}", window().location().origin().unwrap_or_default())
}

/// "3 Dec, 14:05"-ish: the day and the time.
fn when(millis: shared::chat::Millis) -> String {
    format!("{} {}", day_label(millis), clock(millis))
}

/// The admin panel.
#[component]
pub fn AdminPanel() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let (stats, set_stats) = signal(None::<AdminStats>);
    let (people, set_people) = signal(Vec::<Account>::new());
    let (invitations, set_invitations) = signal(Vec::<Invitation>::new());
    let (rooms, set_rooms) = signal(Vec::<RoomSummary>::new());
    let (problem, set_problem) = signal(None::<String>);
    let (link, set_link) = signal(None::<(String, String)>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            let token = state.token();
            let (stats, people, invitations, rooms) = futures::join!(
                api::admin_stats(&token),
                api::admin_users(&token),
                api::invitations(&token),
                api::admin_rooms(&token)
            );
            match (stats, people, invitations, rooms) {
                (Ok(stats), Ok(people), Ok(invitations), Ok(rooms)) => {
                    set_stats.set(Some(stats));
                    set_people.set(people);
                    set_invitations.set(invitations);
                    set_rooms.set(rooms);
                }
                (Err(error), ..)
                | (_, Err(error), ..)
                | (_, _, Err(error), _)
                | (.., Err(error)) => {
                    set_problem.set(Some(error));
                }
            }
        });
    };
    reload();
    // The figures are live: reloaded every five seconds while the panel is open.
    let ticker = set_interval_with_handle(reload, std::time::Duration::from_secs(5)).ok();
    on_cleanup(move || {
        if let Some(ticker) = ticker {
            ticker.clear();
        }
    });
    let (uses, set_uses) = signal(String::from("1"));
    let (hours, set_hours) = signal(String::from("72"));
    let invite = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let (Ok(uses), Ok(hours)) = (uses.get_untracked().parse(), hours.get_untracked().parse())
        else {
            set_problem.set(Some("Uses and hours are whole numbers.".into()));
            return;
        };
        leptos::task::spawn_local(async move {
            match api::create_invitation(&state.token(), uses, hours).await {
                Ok(invitation) => {
                    let path = invitation.path.unwrap_or_default();
                    set_link.set(Some(("Invitation link".into(), full_link(&path))));
                    set_problem.set(None);
                    reload();
                }
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    let act = move |name: String, action: &'static str| {
        leptos::task::spawn_local(async move {
            match api::admin_user_action(&state.token(), &name, action).await {
                Ok(()) => {
                    set_problem.set(None);
                    reload();
                }
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    let reset = move |name: String| {
        leptos::task::spawn_local(async move {
            match api::admin_reset_link(&state.token(), &name).await {
                Ok(link) => set_link
                    .set(Some((format!("Password reset link for {name}"), full_link(&link.path)))),
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    let revoke = move |id: String| {
        leptos::task::spawn_local(async move {
            match api::revoke_invitation(&state.token(), &id).await {
                Ok(()) => reload(),
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    view! {
        <div class="panel-backdrop" on:click=move |_| state.panel.set(None)></div>
        <section class="panel wide" id="admin" role="dialog" aria-label="Administration">
            <header class="panel-head">
                <h2>"Administration"</h2>
                <button class="close" aria-label="Close" on:click=move |_| state.panel.set(None)>"×"</button>
            </header>
            <Show when=move || problem.get().is_some()>
                <p class="problem" role="alert" id="admin-problem">{move || problem.get()}</p>
            </Show>
            <div class="figures" id="figures">
                {move || stats.get().map(|stats| view! {
                    <div><strong>{stats.connections}</strong><span>"connections now"</span></div>
                    <div><strong>{stats.online}</strong><span>"people online"</span></div>
                    <div><strong>{stats.messages_last_hour}</strong><span>"messages in the last hour"</span></div>
                    <div><strong>{stats.accounts}</strong><span>"accounts"</span></div>
                    <div><strong>{stats.rooms}</strong><span>"rooms"</span></div>
                })}
            </div>
            <h3>"Invite people"</h3>
            <form class="panel-form inline" on:submit=invite>
                <label for="invite-uses">"Uses"</label>
                <input id="invite-uses" type="number" min="1" max="1000" prop:value=uses
                    on:input=move |event| set_uses.set(event_target_value(&event)) />
                <label for="invite-hours">"Hours"</label>
                <input id="invite-hours" type="number" min="1" max="720" prop:value=hours
                    on:input=move |event| set_hours.set(event_target_value(&event)) />
                <button type="submit" id="create-invitation">"Create link"</button>
            </form>
            {move || link.get().map(|(what, url)| view! {
                <div class="link-box">
                    <span>{what} " (shown once: copy it now)"</span>
                    <input id="new-link" type="text" readonly prop:value=url
                        on:focus=move |event| {
                            use wasm_bindgen::JsCast;
                            if let Some(input) = event.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                                input.select();
                            }
                        } />
                </div>
            })}
            <ul class="member-list" id="invitations">
                <For each=move || invitations.get() key=|i| format!("{}{}{}", i.id, i.uses, i.revoked) let:invitation>
                    {
                        let id = invitation.id.clone();
                        let live = !invitation.revoked && invitation.uses < invitation.max_uses;
                        view! {
                            <li data-invitation=invitation.id.clone()>
                                <span class="member-name">{format!("{} of {} used", invitation.uses, invitation.max_uses)}</span>
                                <span class="when">"by " {invitation.created_by.clone()} ", until " {when(invitation.expires_at)}</span>
                                {if invitation.revoked {
                                    view! { <span class="role">"revoked"</span> }.into_any()
                                } else if live {
                                    view! { <button class="chip harsh" on:click=move |_| revoke(id.clone())>"Revoke"</button> }.into_any()
                                } else {
                                    view! { <span class="role">"used up"</span> }.into_any()
                                }}
                            </li>
                        }
                    }
                </For>
            </ul>
            <h3>"People"</h3>
            <ul class="member-list" id="people">
                <For each=move || people.get() key=|a| format!("{}{}{}", a.name, a.admin, a.deactivated) let:account>
                    {
                        let name = account.name.clone();
                        let me = name == state.me();
                        let (promote, deactivate, reset_name) = (name.clone(), name.clone(), name.clone());
                        view! {
                            <li data-person=name.clone() class:inactive=account.deactivated>
                                <span class="member-name">{account.display_name.clone().map_or(name.clone(), |display| format!("{display} (@{name})"))}</span>
                                {account.admin.then(|| view! { <span class="role">"admin"</span> })}
                                {account.bot.then(|| view! { <span class="role">"bot"</span> })}
                                {account.deactivated.then(|| view! { <span class="role muted-tag">"deactivated"</span> })}
                                <span class="when">{account.last_active.map_or("never signed in".to_owned(), |at| format!("active {}", when(at)))}</span>
                                <span class="member-actions">
                                    {(!account.bot && !me && !account.deactivated).then(|| {
                                        let action = if account.admin { "demote" } else { "promote" };
                                        view! { <button class="chip" data-action=action on:click=move |_| act(promote.clone(), action)>{if account.admin { "Remove admin" } else { "Make admin" }}</button> }
                                    })}
                                    {(!account.bot && !account.deactivated).then(|| view! {
                                        <button class="chip" data-action="reset" on:click=move |_| reset(reset_name.clone())>"Reset link"</button>
                                    })}
                                    {(!me).then(|| {
                                        let action = if account.deactivated { "reactivate" } else { "deactivate" };
                                        view! { <button class="chip" class:harsh=!account.deactivated data-action=action on:click=move |_| act(deactivate.clone(), action)>{if account.deactivated { "Reactivate" } else { "Deactivate" }}</button> }
                                    })}
                                </span>
                            </li>
                        }
                    }
                </For>
            </ul>
            <h3>"Rooms"</h3>
            <ul class="member-list" id="admin-rooms">
                <For each=move || rooms.get() key=|room| format!("{}{}{}{}", room.name, room.members, room.private, room.archived) let:room>
                    <li data-room=room.name.clone()>
                        <span class="member-name">{if room.private { lock_icon().into_any() } else { "# ".into_any() }} {roles::room_label(&room)}</span>
                        {room.archived.then(|| view! { <span class="role">"archived"</span> })}
                        <span class="when">{format!("{} members, {} entries", room.members, room.last_seq)}</span>
                    </li>
                </For>
            </ul>
        </section>
    }
}
