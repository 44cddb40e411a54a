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

/// A small button: one type for every such button of the panels, so that each adds no
/// rendering code of its own to the page's wasm.
pub fn chip(label: &str, action: &str, harsh: bool, on_click: Callback<()>) -> AnyView {
    view! {
        <button class="chip" class:harsh=harsh data-action=action.to_owned()
            on:click=move |_| on_click.run(())>{label.to_owned()}</button>
    }
    .into_any()
}

/// A small label (a role, a state).
pub fn tag(text: &str, extra: &str) -> AnyView {
    view! { <span class=format!("role {extra}")>{text.to_owned()}</span> }.into_any()
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
                {move || stats.get().map(|stats| {
                    [
                        (stats.connections, "connections now"),
                        (stats.online, "people online"),
                        (stats.messages_last_hour, "messages in the last hour"),
                        (stats.accounts, "accounts"),
                        (stats.rooms, "rooms"),
                    ]
                    .into_iter()
                    .map(|(figure, what)| view! { <div><strong>{figure}</strong><span>{what}</span></div> })
                    .collect_view()
                    .into_any()
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
            }.into_any())}
            <ul class="member-list" id="invitations">
                <For each=move || invitations.get() key=|i| format!("{}{}{}", i.id, i.uses, i.revoked) let:invitation>
                    {
                        let id = invitation.id.clone();
                        let live = !invitation.revoked && invitation.uses < invitation.max_uses;
                        let state = if invitation.revoked {
                            tag("revoked", "")
                        } else if live {
                            chip("Revoke", "revoke", true, Callback::new(move |()| revoke(id.clone())))
                        } else {
                            tag("used up", "")
                        };
                        view! {
                            <li data-invitation=invitation.id.clone()>
                                <span class="member-name">{format!("{} of {} used", invitation.uses, invitation.max_uses)}</span>
                                <span class="when">{format!("by {}, until {}", invitation.created_by, when(invitation.expires_at))}</span>
                                {state}
                            </li>
                        }.into_any()
                    }
                </For>
            </ul>
            <h3>"People"</h3>
            <ul class="member-list" id="people">
                <For each=move || people.get() key=|a| format!("{}{}{}", a.name, a.admin, a.deactivated) let:account>
                    {
                        let name = account.name.clone();
                        let me = name == state.me();
                        let mut tags = Vec::new();
                        if account.admin { tags.push(tag("admin", "")); }
                        if account.bot { tags.push(tag("bot", "")); }
                        if account.deactivated { tags.push(tag("deactivated", "muted-tag")); }
                        let mut actions = Vec::new();
                        if !account.bot && !me && !account.deactivated {
                            let (action, label) = if account.admin { ("demote", "Remove admin") } else { ("promote", "Make admin") };
                            let name = name.clone();
                            actions.push(chip(label, action, false, Callback::new(move |()| act(name.clone(), action))));
                        }
                        if !account.bot && !account.deactivated {
                            let name = name.clone();
                            actions.push(chip("Reset link", "reset", false, Callback::new(move |()| reset(name.clone()))));
                        }
                        if !me {
                            let (action, label) = if account.deactivated { ("reactivate", "Reactivate") } else { ("deactivate", "Deactivate") };
                            let name = name.clone();
                            actions.push(chip(label, action, !account.deactivated, Callback::new(move |()| act(name.clone(), action))));
                        }
                        let shown = account.display_name.clone().map_or(name.clone(), |display| format!("{display} (@{name})"));
                        let active = account.last_active.map_or("never signed in".to_owned(), |at| format!("active {}", when(at)));
                        view! {
                            <li data-person=name.clone() class:inactive=account.deactivated>
                                <span class="member-name">{shown}</span>
                                {tags}
                                <span class="when">{active}</span>
                                <span class="member-actions">{actions}</span>
                            </li>
                        }.into_any()
                    }
                </For>
            </ul>
            <h3>"Rooms"</h3>
            <ul class="member-list" id="admin-rooms">
                <For each=move || rooms.get() key=|room| format!("{}{}{}{}", room.name, room.members, room.private, room.archived) let:room>
                    {view! {
                        <li data-room=room.name.clone()>
                            <span class="member-name">{if room.private { lock_icon().into_any() } else { "# ".into_any() }} {roles::room_label(&room)}</span>
                            {room.archived.then(|| tag("archived", ""))}
                            <span class="when">{format!("{} members, {} entries", room.members, room.last_seq)}</span>
                        </li>
                    }.into_any()}
                </For>
            </ul>
        </section>
    }
}
