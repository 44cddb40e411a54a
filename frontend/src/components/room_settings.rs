//! The room settings panel: title and topic, privacy, archive, adding people, and the
//! members with their roles and what the viewer may do to each, as the room's rules say.

use leptos::prelude::*;
use shared::api::RoomMembers;
use shared::chat::{LOBBY, Role, RoomChange, validate_username};

use super::attachments::Avatar;
use crate::api;
use crate::model::{Conv, roles};
use crate::pages::chat::Chat;

/// The settings of the active room.
#[component]
pub fn RoomSettings(
    /// The room.
    room: String,
) -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let conv_state = state.conv(&Conv::Room(room.clone()));
    let (members, set_members) = signal(None::<RoomMembers>);
    let (problem, set_problem) = signal(None::<String>);
    // The members, loaded again after every change to the room.
    {
        let room = room.clone();
        Effect::new(move |_| {
            conv_state.changed.track();
            let room = room.clone();
            leptos::task::spawn_local(async move {
                match api::members(&state.token(), &room).await {
                    Ok(list) => set_members.set(Some(list)),
                    Err(error) => set_problem.set(Some(error)),
                }
            });
        });
    }
    let summary = {
        let room = room.clone();
        move || state.room(&room)
    };
    let viewer = {
        let summary = summary.clone();
        move || summary().map(|summary| roles::viewer(&summary, state.admin.get()))
    };
    let act = {
        let room = room.clone();
        move |change: RoomChange| {
            let room = room.clone();
            set_problem.set(None);
            leptos::task::spawn_local(async move {
                if let Err(error) = chat.change_room(&room, change).await {
                    set_problem.set(Some(error));
                }
            });
        }
    };
    let may = {
        let viewer = viewer.clone();
        move |change: RoomChange| viewer().is_some_and(|viewer| roles::may(&viewer, &change))
    };
    let (title, set_title) = signal(String::new());
    let (topic, set_topic) = signal(String::new());
    // The form starts from what the room has.
    {
        let summary = summary.clone();
        Effect::new(move |_| {
            if let Some(summary) = summary() {
                set_title.set(summary.title);
                set_topic.set(summary.topic);
            }
        });
    }
    let save_details = {
        let summary = summary.clone();
        let act = act.clone();
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let Some(now) = summary() else { return };
            let (title, topic) =
                (title.get_untracked().trim().to_owned(), topic.get_untracked().trim().to_owned());
            if title != now.title {
                act(RoomChange::Title { title });
            }
            if topic != now.topic {
                act(RoomChange::Topic { topic });
            }
        }
    };
    let (newcomer, set_newcomer) = signal(String::new());
    let add = {
        let act = act.clone();
        move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            let user = newcomer.get_untracked().trim().to_lowercase();
            if let Err(reason) = validate_username(&user) {
                set_problem.set(Some(format!("That is not a user name: {reason}.")));
                return;
            }
            set_newcomer.set(String::new());
            act(RoomChange::Added { user });
        }
    };
    let edits = may.clone();
    let label = summary.clone();
    let privacy = summary.clone();
    let archive = summary.clone();
    let adding = viewer.clone();
    let unbanning = viewer.clone();
    let act_privacy = act.clone();
    let act_archive = act.clone();
    let act_members = act.clone();
    let act_unban = act.clone();
    let may_privacy = may.clone();
    let may_archive = may.clone();
    let lobby = room == LOBBY;
    view! {
        <div class="panel-backdrop" on:click=move |_| state.panel.set(None)></div>
        <section class="panel" id="room-settings" role="dialog" aria-label="Room settings">
            <header class="panel-head">
                <h2>{move || label().map(|room| roles::room_label(&room)).unwrap_or_default()} " settings"</h2>
                <button class="close" aria-label="Close" on:click=move |_| state.panel.set(None)>"×"</button>
            </header>
            <Show when=move || problem.get().is_some()>
                <p class="problem" role="alert" id="settings-problem">{move || problem.get()}</p>
            </Show>
            <Show when=move || edits(RoomChange::Topic { topic: String::new() })>
                <form class="panel-form" on:submit=save_details.clone()>
                    <label for="room-title">"Title"</label>
                    <input id="room-title" type="text" maxlength="64" placeholder="Shown instead of the name"
                        prop:value=title on:input=move |event| set_title.set(event_target_value(&event)) />
                    <label for="room-topic-input">"Topic"</label>
                    <input id="room-topic-input" type="text" maxlength="250" placeholder="What this room is about"
                        prop:value=topic on:input=move |event| set_topic.set(event_target_value(&event)) />
                    <button type="submit" id="save-room">"Save"</button>
                </form>
            </Show>
            <div class="panel-actions">
                {move || {
                    let private = privacy().is_some_and(|room| room.private);
                    let change = RoomChange::Privacy { private: !private };
                    let act = act_privacy.clone();
                    (!lobby && may_privacy(change.clone())).then(|| view! {
                        <button id="toggle-privacy" class="secondary" on:click=move |_| act(change.clone())>
                            {if private { "Make public" } else { "Make private" }}
                        </button>
                    })
                }}
                {move || {
                    let archived = archive().is_some_and(|room| room.archived);
                    let change = if archived { RoomChange::Unarchived } else { RoomChange::Archived };
                    let act = act_archive.clone();
                    may_archive(change.clone()).then(|| view! {
                        <button id="toggle-archive" class="secondary" on:click=move |_| act(change.clone())>
                            {if archived { "Reopen room" } else { "Archive room" }}
                        </button>
                    })
                }}
            </div>
            <Show when=move || !lobby && adding().is_some_and(|viewer| roles::may_add(&viewer))>
                <form class="panel-form inline" on:submit=add.clone()>
                    <input id="add-member" type="text" maxlength="32" placeholder="user name"
                        prop:value=newcomer on:input=move |event| set_newcomer.set(event_target_value(&event)) />
                    <button type="submit" id="add-member-submit">"Add to room"</button>
                </form>
            </Show>
            <h3>"Members"</h3>
            <ul class="member-list" id="member-list">
                {move || {
                    let (Some(list), Some(room), Some(viewer)) = (members.get(), summary(), viewer()) else {
                        return view! { <li class="empty-note">"Loading…"</li> }.into_any();
                    };
                    let me = state.me();
                    list.members.into_iter().map(|member| {
                        let actions = roles::member_actions(&me, &viewer, &member, &room);
                        let name = member.name.clone();
                        let act = act_members.clone();
                        view! {
                            <li data-member=name.clone()>
                                <Avatar name=name.clone() size="small" />
                                <span class="member-name">{state.display(&name)}</span>
                                {(member.role != Role::Member).then(|| view! { <span class="role">{member.role.as_str()}</span> })}
                                {member.muted.then(|| view! { <span class="role muted-tag">"muted"</span> })}
                                <span class="member-actions">
                                    {actions.into_iter().map(|action| {
                                        let change = action.change(&name);
                                        let act = act.clone();
                                        view! {
                                            <button class="chip" class:harsh=action.harsh() data-action=action.label()
                                                on:click=move |_| act(change.clone())>{action.label()}</button>
                                        }
                                    }).collect_view()}
                                </span>
                            </li>
                        }
                    }).collect_view().into_any()
                }}
            </ul>
            {move || {
                let banned = members.get().map(|list| list.banned).unwrap_or_default();
                let may_unban = unbanning().is_some_and(|viewer| roles::may_unban(&viewer));
                let act = act_unban.clone();
                (!banned.is_empty()).then(|| view! {
                    <h3>"Banned"</h3>
                    <ul class="member-list" id="banned-list">
                        {banned.into_iter().map(|name| {
                            let act = act.clone();
                            let change = RoomChange::Unbanned { user: name.clone() };
                            view! {
                                <li data-banned=name.clone()>
                                    <span class="member-name">{state.display(&name)}</span>
                                    {may_unban.then(|| view! {
                                        <button class="chip" on:click=move |_| act(change.clone())>"Lift ban"</button>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                })
            }}
        </section>
    }
}
