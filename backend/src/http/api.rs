//! The JSON API: accounts, rooms, history, direct messages. Everything but register and
//! login needs `Authorization: Bearer <token>`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::{Json, http::header};
use serde::Deserialize;
use shared::api::{
    Credentials, DmPage, DmSummary, MAX_PAGE, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, NewRoom,
    ReadMarker, RoomPage, RoomSummary, SessionToken,
};
use shared::chat::{DirectoryEvent, ROOMS, validate_name, validate_username};
use shared::stomp::Headers;

use super::error::{HttpError, JsonBody};
use crate::AppState;
use crate::auth::{hash_password, new_token, token_hash, verify_password};
use crate::engine::Engine;

/// Login attempts allowed per user name, and per client address, in [`LOGIN_WINDOW`].
const LOGINS_PER_USER: u32 = 10;
const LOGINS_PER_ADDRESS: u32 = 30;
/// Registrations allowed per client address in [`LOGIN_WINDOW`].
const REGISTRATIONS_PER_ADDRESS: u32 = 20;
const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// The signed-in user of a request.
#[derive(Debug)]
pub struct AuthUser {
    name: String,
    token: String,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = HttpError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<AuthUser, HttpError> {
        let unauthorized = || {
            HttpError::new(
                StatusCode::UNAUTHORIZED,
                "sign in first: send Authorization: Bearer <token>",
            )
        };
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(unauthorized)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        let name =
            state.broker.engine().token_user(&token_hash(token)).await?.ok_or_else(unauthorized)?;
        Ok(AuthUser { name, token: token.to_owned() })
    }
}

async fn limit(state: &AppState, key: String, limit: u32) -> Result<(), HttpError> {
    if state.broker.engine().allow(&key, limit, LOGIN_WINDOW).await? {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts: wait a minute and try again",
        ))
    }
}

async fn issue_token(state: &AppState, username: String) -> Result<SessionToken, HttpError> {
    let token = new_token();
    state.broker.engine().store_token(&token_hash(&token), &username).await?;
    Ok(SessionToken { username, token })
}

/// `POST /api/register`: creates an account and signs it in.
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<SessionToken>), HttpError> {
    let Credentials { username, password } = credentials;
    validate_username(&username)
        .map_err(|reason| HttpError::bad_request(format!("invalid user name: {reason}")))?;
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(HttpError::bad_request(format!(
            "passwords have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    limit(&state, format!("register:{}", peer.ip()), REGISTRATIONS_PER_ADDRESS).await?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    state.broker.engine().create_user(&username, &hash).await?;
    Ok((StatusCode::CREATED, Json(issue_token(&state, username).await?)))
}

/// `POST /api/login`: a new session token for a name and password.
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Json<SessionToken>, HttpError> {
    let Credentials { username, password } = credentials;
    let username = username.to_lowercase();
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(HttpError::bad_request("password too long"));
    }
    limit(&state, format!("login-user:{username}"), LOGINS_PER_USER).await?;
    limit(&state, format!("login-address:{}", peer.ip()), LOGINS_PER_ADDRESS).await?;
    let stored = state.broker.engine().password_hash(&username).await?;
    let valid = tokio::task::spawn_blocking(move || verify_password(&password, stored.as_deref()))
        .await
        .map_err(|_| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))?;
    if !valid {
        return Err(HttpError::new(StatusCode::UNAUTHORIZED, "invalid user name or password"));
    }
    Ok(Json(issue_token(&state, username).await?))
}

/// `POST /api/logout`: revokes the request's token.
pub async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, HttpError> {
    state.broker.engine().revoke_token(&token_hash(&user.token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/rooms`.
pub async fn rooms(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<RoomSummary>>, HttpError> {
    Ok(Json(state.broker.engine().rooms_for(&user.name).await?))
}

/// `POST /api/rooms`: creates a room; the creator joins it.
pub async fn create_room(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(room): JsonBody<NewRoom>,
) -> Result<(StatusCode, Json<RoomSummary>), HttpError> {
    validate_name(&room.name)
        .map_err(|reason| HttpError::bad_request(format!("invalid room name: {reason}")))?;
    let engine = state.broker.engine();
    engine.create_room(&room.name, &user.name).await?;
    announce_room(engine, &room.name, &user.name).await;
    let summary = engine
        .rooms_for(&user.name)
        .await?
        .into_iter()
        .find(|summary| summary.name == room.name)
        .ok_or_else(|| {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "the new room vanished")
        })?;
    Ok((StatusCode::CREATED, Json(summary)))
}

/// Tells everyone listening on `/topic/rooms`, on every node, that a room exists. The room
/// is stored either way: a lost announcement only delays the room in others' lists until
/// their next refresh, so it is logged, not reported to the creator as a failure.
async fn announce_room(engine: &Engine, room: &str, by: &str) {
    let event = DirectoryEvent::Created { room: room.to_owned(), by: by.to_owned() };
    let body = serde_json::to_vec(&event).expect("directory events serialize");
    let headers: Headers = [("content-type", "application/json")].into_iter().collect();
    if let Err(error) = engine.publish_topic(ROOMS, &headers, &body).await {
        tracing::warn!(%error, room, "could not announce a new room");
    }
}

fn room_name(path: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    let Path(name) = path?;
    validate_name(&name)
        .map_err(|reason| HttpError::bad_request(format!("invalid name {name:?}: {reason}")))?;
    Ok(name)
}

/// `POST /api/rooms/{room}/join`.
pub async fn join_room(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    state.broker.engine().join_room(&room_name(path)?, &user.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/rooms/{room}/leave`.
pub async fn leave_room(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    state.broker.engine().leave_room(&room_name(path)?, &user.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/rooms/{room}/read` with `{"seq": n}`.
pub async fn mark_room_read(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    JsonBody(marker): JsonBody<ReadMarker>,
) -> Result<StatusCode, HttpError> {
    state.broker.engine().mark_room_read(&room_name(path)?, &user.name, marker.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?before=<seq>&limit=<n>` of the history endpoints.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

impl PageQuery {
    fn limit(&self) -> Result<usize, HttpError> {
        match self.limit {
            None => Ok(shared::api::DEFAULT_REPLAY),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(_) => Err(HttpError::bad_request(format!("limit must be 1 to {MAX_PAGE}"))),
        }
    }
}

/// `GET /api/rooms/{room}/messages?before=&limit=`.
pub async fn room_messages(
    State(state): State<AppState>,
    _user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<RoomPage>, HttpError> {
    let Query(query) = query?;
    Ok(Json(
        state.broker.engine().room_page(&room_name(path)?, query.before, query.limit()?).await?,
    ))
}

/// `GET /api/dms`.
pub async fn dms(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<DmSummary>>, HttpError> {
    Ok(Json(state.broker.engine().dm_summaries(&user.name).await?))
}

/// `GET /api/dms/{peer}/messages?before=&limit=`.
pub async fn dm_messages(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<DmPage>, HttpError> {
    let Query(query) = query?;
    let peer = room_name(path)?;
    Ok(Json(state.broker.engine().dm_page(&user.name, &peer, query.before, query.limit()?).await?))
}

/// `POST /api/dms/{peer}/read` with `{"seq": n}`.
pub async fn mark_dm_read(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    JsonBody(marker): JsonBody<ReadMarker>,
) -> Result<StatusCode, HttpError> {
    state.broker.engine().mark_dm_read(&user.name, &room_name(path)?, marker.seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Any other `/api/...` path.
pub async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such API endpoint")
}
