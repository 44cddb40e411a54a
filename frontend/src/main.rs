//! The Confab browser client, a Leptos app rendered in the browser.
//!
//! - [`app`]: the root component: the name prompt, then the chat.
//! - [`model`]: the page's state as signals, and how server events change it.
//! - [`stomp_client`]: the STOMP connection that heals itself, speaking `shared` frames.
//! - [`components`]: the parts of the page.

mod app;
mod components;
mod model;
mod stomp_client;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
