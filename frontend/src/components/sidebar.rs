//! The sidebar: rooms with unread badges, creating a room, direct messages, who is here,
//! and signing out.

use leptos::prelude::*;
use shared::chat::validate_name;

use super::attachments::Avatar;
use super::lock_icon;
use crate::model::{Conv, Panel, roles};
use crate::pages::chat::Chat;

/// An unread badge; nothing when zero.
#[component]
fn Badge(count: Signal<u64>) -> impl IntoView {
    view! {
        <Show when=move || { count.get() > 0 }>
            <span class="badge">{move || count.get()}</span>
        </Show>
    }
}

/// How many unread messages mention the user; nothing when zero.
#[component]
fn MentionBadge(count: Signal<u64>) -> impl IntoView {
    view! {
        <Show when=move || { count.get() > 0 }>
            <span class="badge mention" title=move || format!("{} unread mentions of you", count.get())>
                {move || format!("@{}", count.get())}
            </span>
        </Show>
    }
}

/// The sidebar.
#[component]
pub fn Sidebar() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let joined = move || {
        state
            .rooms
            .get()
            .into_iter()
            .filter(|room| room.joined)
            .map(|room| (room.name.clone(), roles::room_label(&room), room.private, room.archived))
            .collect::<Vec<_>>()
    };
    let others =
        move || state.rooms.get().into_iter().filter(|room| !room.joined).collect::<Vec<_>>();
    let members = move || match state.active.get() {
        Conv::Room(room) => Some(state.conv(&Conv::Room(room)).members.get()),
        Conv::Dm(_) => None,
    };
    let me = state.me();
    view! {
        <aside class="sidebar">
            <section>
                <h2>"Rooms"</h2>
                <ul id="rooms" class="nav">
                    <For each=joined key=|room| room.clone() let:room>
                        {
                            let (name, label, private, archived) = room;
                            let conv = Conv::Room(name.clone());
                            let unread = state.conv(&conv).unread;
                            let mentions = state.conv(&conv).mentions;
                            let active = {
                                let conv = conv.clone();
                                move || state.active.get() == conv
                            };
                            view! {
                                <li>
                                    <button class="nav-item" class:active=active class:archived=archived data-room=name.clone()
                                        title=if private { "A private room" } else { "" }
                                        on:click=move |_| chat.open(conv.clone())>
                                        <span class="hash">{if private { lock_icon().into_any() } else { "#".into_any() }}</span>
                                        <span class="name">{label}</span>
                                        <MentionBadge count=mentions.into() />
                                        <Badge count=unread.into() />
                                    </button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <NewRoom />
                <Show when=move || !others().is_empty()>
                    <h3>"More rooms"</h3>
                    <ul id="other-rooms" class="nav">
                        <For each=others key=|room| room.name.clone() let:room>
                            <li>
                                <button class="nav-item muted" data-room=room.name.clone() title="Join this room"
                                    on:click={
                                        let name = room.name.clone();
                                        move |_| chat.join_room(name.clone())
                                    }>
                                    <span class="hash">"#"</span>
                                    <span class="name">{roles::room_label(&room)}</span>
                                    <span class="count">{room.members}</span>
                                </button>
                            </li>
                        </For>
                    </ul>
                </Show>
            </section>
            <section>
                <h2>"Direct messages"</h2>
                <Show when=move || state.dm_peers.with(Vec::is_empty)>
                    <p class="empty-note">"Pick someone under “Here now” to start one."</p>
                </Show>
                <ul id="dms" class="nav">
                    <For each=move || state.dm_peers.get() key=|peer| peer.clone() let:peer>
                        {
                            let conv = Conv::Dm(peer.clone());
                            let unread = state.conv(&conv).unread;
                            let mentions = state.conv(&conv).mentions;
                            let active = {
                                let conv = conv.clone();
                                move || state.active.get() == conv
                            };
                            view! {
                                <li>
                                    <button class="nav-item" class:active=active data-peer=peer.clone()
                                        on:click=move |_| chat.open(conv.clone())>
                                        <Avatar name=peer.clone() size="tiny" />
                                        <span class="name">{let peer = peer.clone(); move || state.display(&peer)}</span>
                                        <MentionBadge count=mentions.into() />
                                        <Badge count=unread.into() />
                                    </button>
                                </li>
                            }
                        }
                    </For>
                </ul>
            </section>
            <Show when=move || members().is_some()>
                <section class="members">
                    <h2>"Here now " <span class="count">{move || members().map_or(0, |m| m.len())}</span></h2>
                    <ul id="members">
                        <For each=move || members().unwrap_or_default() key=|name| name.clone() let:name>
                            {
                                let is_me = name == state.me();
                                let peer = name.clone();
                                let shown = name.clone();
                                view! {
                                    <li>
                                        <button class="member" disabled=is_me title=if is_me { "You" } else { "Send a direct message" }
                                            on:click=move |_| chat.open(Conv::Dm(peer.clone()))>
                                            <Avatar name=name.clone() size="small" />
                                            <span class="member-name">{move || state.display(&shown)}</span>
                                            {is_me.then(|| view! { <span class="you">"you"</span> })}
                                        </button>
                                    </li>
                                }
                            }
                        </For>
                    </ul>
                </section>
            </Show>
            <footer class="me">
                <Avatar name=me.clone() size="small" />
                <button id="me" class="link me-name" title="Your profile, password and sessions"
                    on:click=move |_| chat.state.panel.set(Some(Panel::Profile))>
                    {let me = me.clone(); move || state.display(&me)}
                </button>
                <Show when=move || state.admin.get()>
                    <button id="open-admin" class="link" on:click=move |_| chat.state.panel.set(Some(Panel::Admin))>"Admin"</button>
                </Show>
                <button id="sign-out" class="link" on:click=move |_| chat.sign_out()>"Sign out"</button>
            </footer>
        </aside>
    }
}

/// The "new room" form.
#[component]
fn NewRoom() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let (open, set_open) = signal(false);
    let (name, set_name) = signal(String::new());
    let (private, set_private) = signal(false);
    let (problem, set_problem) = signal(None::<String>);
    let submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let room = name.get_untracked().trim().to_lowercase();
        if let Err(reason) = validate_name(&room) {
            set_problem.set(Some(format!("{reason}")));
            return;
        }
        leptos::task::spawn_local(async move {
            match chat.create_room(room, private.get_untracked()).await {
                Ok(()) => {
                    set_name.set(String::new());
                    set_private.set(false);
                    set_open.set(false);
                    set_problem.set(None);
                }
                Err(error) => set_problem.set(Some(error)),
            }
        });
    };
    view! {
        <Show when=move || open.get() fallback=move || view! {
            <button id="new-room" class="link add" on:click=move |_| set_open.set(true)>"+ New room"</button>
        }>
            <form class="new-room" on:submit=submit>
                <input id="new-room-name" type="text" maxlength="32" placeholder="room-name" autofocus
                    prop:value=name on:input=move |event| { set_name.set(event_target_value(&event)); set_problem.set(None); } />
                <button type="submit">"Create"</button>
                <label class="private-choice">
                    <input id="new-room-private" type="checkbox" prop:checked=private
                        on:change=move |event| set_private.set(event_target_checked(&event)) />
                    " Private: only people added can see it"
                </label>
                <Show when=move || problem.get().is_some()>
                    <p class="problem" role="alert">{move || problem.get()}</p>
                </Show>
            </form>
        </Show>
    }
}
