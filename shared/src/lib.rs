//! Confab's shared protocol crate, used unchanged by the browser client and the server.
//!
//! - [`stomp`]: typed STOMP 1.2 frames, an incremental decoder and an encoder.
//! - [`chat`]: the JSON payloads that travel inside STOMP bodies, and the destination names.
//! - [`access`]: who may read, post in and change a room.
//! - [`room`]: rooms' roles and the changes made to rooms.
//! - [`api`]: the JSON bodies of the HTTP API.
//! - [`search`]: the search query language, and the marking of what a search found.
//! - [`markdown`]: a message's formatting as a tree; the parser itself with feature
//!   `markdown` (the server's).
//!
//! Nothing here performs I/O: bytes go in, frames come out, and the other way round. The
//! crate builds for native targets and for `wasm32-unknown-unknown`.

pub mod access;
pub mod api;
pub mod chat;
pub mod markdown;
pub mod room;
pub mod search;
pub mod stomp;
