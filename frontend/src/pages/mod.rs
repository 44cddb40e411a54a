//! The two screens: signing in, and the chat.

pub mod auth;
pub mod chat;
