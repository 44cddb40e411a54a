//! The Confab browser client, a Leptos app rendered in the browser.
//!
//! - [`app`]: the root: the sign-in page, or the chat once signed in.
//! - [`model`]: the page's state as signals, and how server events change it.
//! - [`stomp_client`]: the STOMP connection that heals itself, speaking `shared` frames.
//! - [`api`]: the HTTP API calls.
//! - [`pages`] and [`components`]: what is on screen.

mod api;
mod app;
mod components;
mod files;
mod model;
mod pages;
mod stomp_client;

fn main() {
    leptos::mount::mount_to_body(app::App);
}
