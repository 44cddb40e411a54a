//! Files in the page: a message's images (thumbnails that open full size) and other files
//! (cards with name, type and size, and a download button); people's pictures; the
//! chips of files attached to the draft.

use leptos::prelude::*;
use shared::api::human_size;
use shared::chat::Attachment;

use super::{avatar_class, initial};
use crate::files;
use crate::model::ChatState;
use crate::model::upload::{Upload, UploadState};

/// The image open full size over the page, if any: provided by the chat page.
#[derive(Debug, Clone, Copy)]
pub struct Lightbox(pub RwSignal<Option<Attachment>>);

/// An image fetched with the session token (`path` under `/api/files/`).
#[component]
pub fn AuthImage(
    path: String,
    alt: String,
    #[prop(optional)] class: &'static str,
) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let (address, set_address) = signal(None::<String>);
    let (failed, set_failed) = signal(false);
    leptos::task::spawn_local(async move {
        match files::address(&state.token(), &path).await {
            Ok(found) => set_address.set(Some(found)),
            Err(_) => set_failed.set(true),
        }
    });
    view! {
        <Show when=move || !failed.get() fallback=|| view! { <span class="file-missing">"image unavailable"</span> }>
            <img class=class alt=alt.clone() src=move || address.get().unwrap_or_default() />
        </Show>
    }
}

/// A person's picture, or the initial of what they are called on a coloured disc.
#[component]
pub fn Avatar(name: String, #[prop(optional)] size: &'static str) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let hue = avatar_class(&name);
    let picture = {
        let name = name.clone();
        move || state.avatar(&name)
    };
    view! {
        <span class=format!("avatar {size} {hue}") aria-hidden="true">
            {move || match picture() {
                Some(id) => view! {
                    <AuthImage path=format!("/api/files/{id}") alt=String::new() class="avatar-picture" />
                }.into_any(),
                None => initial(&state.display(&name)).into_any(),
            }}
        </span>
    }
}

/// The files of a message.
#[component]
pub fn MessageFiles(files: Vec<Attachment>) -> impl IntoView {
    let state = expect_context::<ChatState>();
    let lightbox = expect_context::<Lightbox>();
    files
        .into_iter()
        .map(|file| {
            if let Some((width, height)) = file.image {
                let label = format!("Open {} ({width} × {height})", file.name);
                let path = format!("/api/files/{}/thumb", file.id);
                let alt = file.name.clone();
                view! {
                    <button type="button" class="file-image" aria-label=label
                        on:click=move |_| lightbox.0.set(Some(file.clone()))>
                        <AuthImage path alt />
                    </button>
                }
                .into_any()
            } else {
                let meta = format!("{} · {}", kind_label(&file.mime), human_size(file.size));
                let name = file.name.clone();
                let (problem, set_problem) = signal(None::<String>);
                view! {
                    <div class="file-card">
                        <span class="file-icon" aria-hidden="true">{file_icon(&file.mime)}</span>
                        <span class="file-text">
                            <span class="file-name">{name.clone()}</span>
                            <span class="file-meta">{meta}</span>
                            <Show when=move || problem.get().is_some()>
                                <span class="problem" role="alert">{move || problem.get()}</span>
                            </Show>
                        </span>
                        <button type="button" class="file-download" aria-label=format!("Download {name}")
                            on:click=move |_| {
                                let file = file.clone();
                                leptos::task::spawn_local(async move {
                                    let outcome = files::download(&state.token(), &file).await;
                                    set_problem.set(outcome.err());
                                });
                            }>"Download"</button>
                    </div>
                }
                .into_any()
            }
        })
        .collect_view()
}

/// A file's type in words.
fn kind_label(mime: &str) -> String {
    match mime {
        "application/pdf" => "PDF".into(),
        "application/zip" => "ZIP archive".into(),
        "text/plain" => "Text".into(),
        other => other.to_owned(),
    }
}

fn file_icon(mime: &str) -> &'static str {
    match mime.split('/').next() {
        Some("audio") => "♪",
        Some("video") => "▶",
        Some("text") => "≡",
        _ => "▤",
    }
}

/// The image open full size, over everything; Esc or a click outside closes it.
#[component]
pub fn LightboxView() -> impl IntoView {
    let state = expect_context::<ChatState>();
    let lightbox = expect_context::<Lightbox>();
    let close = move || lightbox.0.set(None);
    let handle = window_event_listener(leptos::ev::keydown, move |event| {
        if event.key() == "Escape" && lightbox.0.get_untracked().is_some() {
            lightbox.0.set(None);
        }
    });
    on_cleanup(move || handle.remove());
    move || {
        lightbox.0.get().map(|file| {
            let path = format!("/api/files/{}", file.id);
            let caption = format!("{} · {}", file.name, human_size(file.size));
            let saved = file.clone();
            view! {
                <div class="lightbox" role="dialog" aria-label=file.name.clone() on:click=move |_| close()>
                    <figure on:click=|event| event.stop_propagation()>
                        <AuthImage path alt=file.name.clone() class="full-image" />
                        <figcaption>
                            <span>{caption}</span>
                            <button type="button" class="file-download" on:click=move |_| {
                                let file = saved.clone();
                                leptos::task::spawn_local(async move {
                                    if let Err(error) = files::download(&state.token(), &file).await {
                                        state.error.set(Some(error));
                                    }
                                });
                            }>"Download"</button>
                            <button type="button" class="close" aria-label="Close" on:click=move |_| close()>"×"</button>
                        </figcaption>
                    </figure>
                </div>
            }
        })
    }
}

/// The files attached to the draft, with their progress.
#[component]
pub fn UploadChips(uploads: RwSignal<Vec<Upload>>) -> impl IntoView {
    view! {
        <ul class="uploads" aria-label="Attached files">
            <For each=move || uploads.get() key=|upload| (upload.id, upload.sent, upload.percent(), matches!(upload.state, UploadState::Sending)) let:upload>
                {
                    let id = upload.id;
                    let failed = matches!(upload.state, UploadState::Failed(_));
                    let sending = upload.state == UploadState::Sending;
                    let label = upload.label();
                    view! {
                        <li class="upload" class:failed=failed>
                            <span class="file-name">{upload.name.clone()}</span>
                            <Show when=move || sending>
                                <progress max="100" value=upload.percent().to_string()
                                    aria-label=format!("Uploading {}", upload.name)></progress>
                            </Show>
                            <span class="file-meta" role=if failed { "alert" } else { "status" }>{label}</span>
                            <button type="button" class="remove-upload" aria-label="Remove"
                                on:click=move |_| uploads.update(|all| all.retain(|upload| upload.id != id))>"×"</button>
                        </li>
                    }
                }
            </For>
        </ul>
    }
}
