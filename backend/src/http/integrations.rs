//! Bots and integrations: messages posted over HTTP (by bots, scripts, anyone with a
//! token), and incoming webhooks that post as a named bot.
//!
//! Posting over HTTP is the same as a STOMP SEND: the same text rules, the same per-user
//! rate as the sender's STOMP sessions on this node, stored and delivered by the engine,
//! and an `Idempotency-Key` header that makes a retry return the first message.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use shared::api::{NewMessage, NewWebhook, Webhook};
use shared::chat::{
    ChatMessage, DirectMessage, validate_message, validate_name, validate_text, validate_username,
};

use super::api::{AuthUser, peer_name, room_name, valid_seq};
use super::error::{HttpError, JsonBody};
use crate::AppState;
use crate::auth::token_hash;
use crate::engine::Identity;
use crate::metrics::{Limit, metrics};
use crate::stomp::{Charge, check_idempotency_key};

/// The `Idempotency-Key` header, checked.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, HttpError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| HttpError::bad_request("Idempotency-Key must be plain text"))?;
            check_idempotency_key(key).map_err(HttpError::bad_request)?;
            Ok(Some(key.to_owned()))
        }
    }
}

fn checked_text(text: &str) -> Result<(), HttpError> {
    validate_text(text).map_err(|reason| HttpError::bad_request(format!("invalid text: {reason}")))
}

fn checked_message(body: &NewMessage) -> Result<(), HttpError> {
    validate_message(&body.text, &body.files)
        .map_err(|reason| HttpError::bad_request(format!("invalid message: {reason}")))
}

/// One message's worth of the sender's rate, or 429 with when to retry.
fn charge(state: &AppState, user: &str) -> Result<(), HttpError> {
    state.broker.charge(user, Charge::Message).map_err(|wait| {
        metrics().limited(Limit::Send);
        HttpError::new(StatusCode::TOO_MANY_REQUESTS, "too many messages: slow down")
            .retry_after(wait)
    })
}

/// 201 for a new message, 200 for a retry that found the first one.
fn created(duplicate: bool) -> StatusCode {
    if duplicate { StatusCode::OK } else { StatusCode::CREATED }
}

/// `POST /api/rooms/{room}/messages` with `{"text": ...}`: the caller must be a member.
pub async fn post_room_message(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<ChatMessage>), HttpError> {
    let room = room_name(path)?;
    checked_message(&body)?;
    let key = idempotency_key(&headers)?;
    let store = state.engine.store();
    if !store.is_member(&room, &user.identity.name).await? {
        if !store.room_exists(&room).await? {
            return Err(HttpError::new(StatusCode::NOT_FOUND, format!("no room named {room:?}")));
        }
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            format!("join {room:?} first: POST /api/rooms/{room}/join"),
        ));
    }
    charge(&state, &user.identity.name)?;
    if let Some(seq) = body.reply_to {
        valid_seq("reply_to", seq)?;
    }
    let posted = state
        .engine
        .post_room(&room, &user.identity, &body.text, key.as_deref(), body.reply_to, body.files)
        .await?;
    let mut message = posted.message;
    shared::markdown::format_message(&mut message);
    Ok((created(posted.duplicate), Json(message)))
}

/// `POST /api/dms/{peer}/messages` with `{"text": ...}`: the sender's copy.
pub async fn post_dm_message(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<NewMessage>,
) -> Result<(StatusCode, Json<DirectMessage>), HttpError> {
    let peer = peer_name(path)?;
    checked_message(&body)?;
    let key = idempotency_key(&headers)?;
    charge(&state, &user.identity.name)?;
    let posted =
        state.engine.post_dm(&user.identity, &peer, &body.text, key.as_deref(), body.files).await?;
    let mut message = posted.message.sender;
    shared::markdown::format_dm(&mut message);
    Ok((created(posted.duplicate), Json(message)))
}

/// Only a room's owner (its creator) manages its webhooks; 403 otherwise, 404 for no room.
async fn require_owner(state: &AppState, room: &str, user: &AuthUser) -> Result<(), HttpError> {
    let owner = state.engine.store().room_owner(room).await?;
    if owner.as_deref() == Some(user.identity.name.as_str()) {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::FORBIDDEN,
            format!("only the owner of {room:?} manages its webhooks"),
        ))
    }
}

/// `POST /api/rooms/{room}/webhooks` with `{"name": ...}`: a new webhook posting as the
/// new bot `name`. The answer holds its secret path, once.
pub async fn create_webhook(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    JsonBody(body): JsonBody<NewWebhook>,
) -> Result<(StatusCode, Json<Webhook>), HttpError> {
    let room = room_name(path)?;
    validate_username(&body.name)
        .map_err(|reason| HttpError::bad_request(format!("invalid bot name: {reason}")))?;
    require_owner(&state, &room, &user).await?;
    let hook =
        crate::bots::create_webhook(state.engine.store(), &room, &body.name, &user.identity.name)
            .await?;
    Ok((StatusCode::CREATED, Json(hook)))
}

/// `GET /api/rooms/{room}/webhooks`: the owner's view, without secrets.
pub async fn webhooks(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<Webhook>>, HttpError> {
    let room = room_name(path)?;
    require_owner(&state, &room, &user).await?;
    Ok(Json(state.engine.store().webhooks(&room).await?))
}

/// `DELETE /api/rooms/{room}/webhooks/{id}`: its URL stops working at once; its bot and
/// messages stay.
pub async fn delete_webhook(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let Path((room, id)) = path?;
    validate_name(&room)
        .map_err(|reason| HttpError::bad_request(format!("invalid name {room:?}: {reason}")))?;
    require_owner(&state, &room, &user).await?;
    if state.engine.store().delete_webhook(&room, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(HttpError::new(StatusCode::NOT_FOUND, format!("no webhook {id:?} in {room:?}")))
    }
}

/// What an incoming webhook accepts: `{"text": ...}`, or Slack's incoming-webhook JSON,
/// whose `text` may be missing when `attachments` carry it.
#[derive(Debug, Deserialize)]
pub struct HookBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    attachments: Vec<SlackAttachment>,
}

#[derive(Debug, Deserialize)]
struct SlackAttachment {
    #[serde(default)]
    pretext: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    fallback: Option<String>,
}

impl HookBody {
    /// The message: `text`, then each attachment's pretext, title and text (or its
    /// fallback), one per line.
    fn message(&self) -> String {
        let mut lines: Vec<&str> = self.text.iter().map(String::as_str).collect();
        for attachment in &self.attachments {
            let parts = [&attachment.pretext, &attachment.title, &attachment.text];
            let present: Vec<&str> = parts.iter().filter_map(|part| part.as_deref()).collect();
            if present.is_empty() {
                lines.extend(attachment.fallback.as_deref());
            } else {
                lines.extend(present);
            }
        }
        lines.retain(|line| !line.trim().is_empty());
        lines.join("\n")
    }
}

/// `POST /hooks/{secret}`: posts the body's text into the webhook's room as its bot, and
/// answers `ok` as Slack does. No other authentication: the secret is the credential.
pub async fn incoming(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<HookBody>,
) -> Result<(StatusCode, &'static str), HttpError> {
    let Path(secret) = path?;
    let not_found = || HttpError::new(StatusCode::NOT_FOUND, "no such webhook");
    if secret.len() > 128 {
        return Err(not_found());
    }
    let hook = state.engine.store().webhook(&token_hash(&secret)).await?.ok_or_else(not_found)?;
    // A deactivated bot posts nothing, by token or by webhook.
    if state.engine.store().account(&hook.name).await?.is_none_or(|bot| bot.deactivated) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "this webhook's bot is deactivated: an admin can reactivate it",
        ));
    }
    let text = body.message();
    if text.is_empty() {
        return Err(HttpError::bad_request("the body has no text"));
    }
    checked_text(&text)?;
    let key = idempotency_key(&headers)?;
    charge(&state, &hook.name)?;
    let bot = Identity { name: hook.name, bot: true };
    let posted =
        state.engine.post_room(&hook.room, &bot, &text, key.as_deref(), None, Vec::new()).await?;
    Ok((created(posted.duplicate), "ok"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> HookBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn slack_payloads_become_one_message() {
        assert_eq!(body(r#"{"text": "deploy done"}"#).message(), "deploy done");
        let slack = r#"{"username": "ci", "icon_emoji": ":ghost:", "text": "build 12",
            "attachments": [{"fallback": "red", "color": "danger"},
                            {"title": "tests", "text": "3 failed", "fallback": "unused"}]}"#;
        assert_eq!(body(slack).message(), "build 12\nred\ntests\n3 failed");
        assert_eq!(body(r#"{"blocks": []}"#).message(), "");
        assert_eq!(body(r#"{"text": "  "}"#).message(), "");
    }
}
