//! Rooms over HTTP: the list, creating, joining and leaving, read markers, history,
//! members, and the changes owners and moderators make. Every call that shows something of
//! a room asks the engine whether the caller may read it; the store checks joins and
//! changes against the same rules.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use shared::api::{NewRoom, ReadMarker, RoomMembers, RoomPage, RoomSummary};
use shared::chat::{ChatMessage, RoomChange, validate_name};
use shared::markdown::format_message;

use super::api::{AuthUser, PageQuery, room_name, valid_seq};
use super::error::{HttpError, JsonBody};
use crate::AppState;

/// `GET /api/rooms`: public rooms and the caller's private ones.
pub async fn rooms(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<RoomSummary>>, HttpError> {
    Ok(Json(state.engine.rooms_for(user.name()).await?))
}

/// `POST /api/rooms`: creates a room, public or private; the creator owns it.
pub async fn create_room(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(room): JsonBody<NewRoom>,
) -> Result<(StatusCode, Json<RoomSummary>), HttpError> {
    validate_name(&room.name)
        .map_err(|reason| HttpError::bad_request(format!("invalid room name: {reason}")))?;
    let engine = state.engine;
    let limit = state.max_rooms_per_user;
    if engine.store().rooms_created_by(user.name()).await? >= limit {
        return Err(HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("you have created {limit} rooms, the most one person may"),
        ));
    }
    engine.create_room(&room.name, user.name(), room.private).await?;
    let summary = engine
        .rooms_for(user.name())
        .await?
        .into_iter()
        .find(|summary| summary.name == room.name)
        .ok_or_else(|| {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "the new room vanished")
        })?;
    Ok((StatusCode::CREATED, Json(summary)))
}

/// `POST /api/rooms/{room}/join`: public rooms only, and not for anyone banned.
pub async fn join_room(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    state.engine.store().join_room(&room_name(path)?, user.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/rooms/{room}/leave`.
pub async fn leave_room(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    state.engine.store().leave_room(&room_name(path)?, user.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/rooms/{room}/read` with `{"seq": n}`.
pub async fn mark_room_read(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    JsonBody(marker): JsonBody<ReadMarker>,
) -> Result<StatusCode, HttpError> {
    let seq = valid_seq("seq", marker.seq)?;
    let room = room_name(path)?;
    state.engine.readable(&room, user.name()).await?;
    state.engine.store().mark_room_read(&room, user.name(), seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/rooms/{room}/messages?before=&limit=` (or `after=`).
pub async fn room_messages(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<RoomPage>, HttpError> {
    let Query(query) = query?;
    let (room, limit, engine) = (room_name(path)?, query.limit()?, state.engine);
    let after = query.after()?;
    let before = query.before()?;
    let around = query.around()?;
    engine.readable(&room, user.name()).await?;
    let mut page = match (after, around) {
        (Some(after), _) => engine.room_page_after(&room, after, limit).await?,
        (None, Some(around)) => engine.room_page_around(&room, around, limit).await?,
        (None, None) => engine.room_page(&room, before, limit).await?,
    };
    page.messages.iter_mut().for_each(format_message);
    Ok(Json(page))
}

/// `GET /api/rooms/{room}/members`.
pub async fn members(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RoomMembers>, HttpError> {
    Ok(Json(state.engine.members(&room_name(path)?, user.name()).await?))
}

/// `POST /api/rooms/{room}/changes` with a [`RoomChange`]: a member added, a role, a kick,
/// a ban, a mute, a title, a topic, archiving, privacy, ownership, a deleted message.
/// Answers with the entry it added to the room's stream.
pub async fn change(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    JsonBody(change): JsonBody<RoomChange>,
) -> Result<(StatusCode, Json<ChatMessage>), HttpError> {
    let room = room_name(path)?;
    if let Some(target) = change.target() {
        shared::chat::validate_username(target).map_err(|reason| {
            HttpError::bad_request(format!("invalid user name {target:?}: {reason}"))
        })?;
    }
    if let Some(seq) = change.message() {
        valid_seq("seq", seq)?;
    }
    let mut entry = state.engine.change_room(&room, user.name(), change).await?;
    format_message(&mut entry);
    Ok((StatusCode::CREATED, Json(entry)))
}
