//! The search box in the top bar (Ctrl+K, or `/`) and its results: each a message the
//! user may read, where and when it was said, its matching words marked. Choosing one
//! opens its conversation at it, paging history back as far as it takes.

use leptos::html::Input;
use leptos::prelude::*;
use shared::api::{SearchHit, SearchPage};

use super::{clock, day_label};
use crate::api;
use crate::model::search::{conv_of, opens_search};
use crate::pages::chat::Chat;

/// The search box and, once a search ran, its results.
#[component]
pub fn SearchBox() -> impl IntoView {
    let chat = expect_context::<Chat>();
    let state = chat.state;
    let input = NodeRef::<Input>::new();
    let (text, set_text) = signal(String::new());
    let (results, set_results) = signal(None::<Result<SearchPage, String>>);
    let (busy, set_busy) = signal(false);
    let shortcut = window_event_listener(leptos::ev::keydown, move |event| {
        let typing = document().active_element().is_some_and(|element| {
            matches!(element.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
        });
        if opens_search(&event.key(), event.ctrl_key() || event.meta_key(), typing)
            && let Some(input) = input.get_untracked()
        {
            event.prevent_default();
            let _ = input.focus();
            input.select();
        }
    });
    on_cleanup(move || shortcut.remove());
    let run = move || {
        let query = text.get_untracked();
        if query.trim().is_empty() {
            set_results.set(None);
            return;
        }
        set_busy.set(true);
        leptos::task::spawn_local(async move {
            let found = api::search(&state.token(), &query).await;
            // A newer search may have started: only the latest one's answer shows.
            if text.get_untracked() == query {
                set_results.set(Some(found));
            }
            set_busy.set(false);
        });
    };
    let close = move || set_results.set(None);
    let choose = move |hit: SearchHit| {
        close();
        if let Some(conv) = conv_of(&hit) {
            chat.open_at(conv, hit.seq);
        }
    };
    view! {
        <div class="search-area">
        <form class="search" role="search" on:submit=move |event: leptos::ev::SubmitEvent| {
            event.prevent_default();
            run();
        }>
            <input type="search" id="search" node_ref=input placeholder="Search (Ctrl+K)"
                aria-label="Search messages" autocomplete="off" prop:value=text
                on:input=move |event| set_text.set(event_target_value(&event))
                on:keydown=move |event: leptos::ev::KeyboardEvent| {
                    if event.key() == "Escape" {
                        close();
                    }
                } />
        </form>
        {move || results.get().map(|found| view! {
            <section class="search-results" id="search-results" aria-label="Search results" aria-busy=move || busy.get().to_string()>
                <header class="panel-head">
                    <h2>"Search"</h2>
                    <button type="button" class="close" aria-label="Close the search" on:click=move |_| close()>"×"</button>
                </header>
                {match found {
                    Err(error) => view! { <p class="error" role="alert">{error}</p> }.into_any(),
                    Ok(page) if page.hits.is_empty() => view! {
                        <p class="empty">"Nothing found. Try fewer words, a prefix like " <code>"depl*"</code> ", or " <code>"from:name"</code> " and " <code>"in:room"</code> "."</p>
                    }.into_any(),
                    Ok(page) => view! {
                        <ol class="hits">
                            {page.hits.into_iter().map(|hit| {
                                let place = match (&hit.room, &hit.peer) {
                                    (Some(room), _) => format!("#{room}"),
                                    (None, Some(peer)) => format!("@{}", state.display(peer)),
                                    _ => String::new(),
                                };
                                let when = format!("{} {}", day_label(hit.sent_at), clock(hit.sent_at));
                                let sender = state.display(&hit.sender);
                                let parts = hit.parts.clone();
                                view! {
                                    <li>
                                        <button type="button" class="hit" data-seq=hit.seq on:click=move |_| choose(hit.clone())>
                                            <span class="hit-head">
                                                <span class="hit-place">{place}</span>
                                                <span class="hit-sender">{sender}</span>
                                                <time>{when}</time>
                                            </span>
                                            <span class="hit-text">
                                                {parts.into_iter().map(|part| if part.hit {
                                                    view! { <mark>{part.text}</mark> }.into_any()
                                                } else {
                                                    part.text.into_any()
                                                }).collect_view()}
                                            </span>
                                        </button>
                                    </li>
                                }
                            }).collect_view()}
                        </ol>
                        {page.more.then(|| view! { <p class="more">"Showing the best of the newest matches; add words to narrow it."</p> })}
                    }.into_any(),
                }}
            </section>
        })}
        </div>
    }
}
