//! Integration tests: a real server on port 0, driven by a raw WebSocket client that sends
//! STOMP bytes exactly as written here. One module per behaviour; one binary, so it links once.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod support;

mod abuse;
mod access;
mod accounts;
mod admin;
mod churn;
mod connect;
mod conversations;
mod dms;
mod errors;
mod files;
mod flow;
mod frames;
mod history;
mod integrations;
mod lifecycle;
mod openapi;
mod original;
mod replays;
mod rooms;
mod rooms_api;
mod search;
mod store;
