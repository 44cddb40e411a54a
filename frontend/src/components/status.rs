//! The connection indicator in the header.

use leptos::prelude::*;

use crate::model::Status;

/// A coloured dot and a word: online, connecting, or offline with the retry delay.
#[component]
pub fn StatusBadge(
    /// The connection status to show.
    status: RwSignal<Status>,
) -> impl IntoView {
    let class = move || match status.get() {
        Status::Online => "status online",
        Status::Connecting => "status connecting",
        Status::Offline { .. } => "status offline",
    };
    let label = move || match status.get() {
        Status::Online => "Online".to_owned(),
        Status::Connecting => "Connecting…".to_owned(),
        Status::Offline { retry_in_secs, .. } => format!("Offline · retrying in {retry_in_secs} s"),
    };
    let title = move || match status.get() {
        Status::Offline { reason, .. } => reason,
        _ => String::new(),
    };
    view! {
        <span id="status" class=class title=title aria-live="polite">
            <span class="dot"></span>
            {label}
        </span>
    }
}
