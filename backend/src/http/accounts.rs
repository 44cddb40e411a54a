//! The signed-in person's own account over HTTP: the server's sign-up rules, profile,
//! people's names, password change and reset, and sessions.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shared::api::{
    Me, PasswordChange, PasswordReset, Person, Profile, ServerInfo, SessionSummary, SessionToken,
    validate_display_name,
};

use super::api::{
    AuthUser, Device, MAX_CODE_CHARS, check_new_password, hash_work, issue_token, limit,
};
use super::error::{HttpError, JsonBody};
use crate::AppState;
use crate::auth::{hash_password, token_hash, verify_password};
use crate::clock::now_millis;
use crate::limits::{ClientAddress, REGISTRATIONS_PER_ADDRESS};
use crate::store::AccountChange;

/// The characters of a token hash that name its session in `/api/sessions`.
const SESSION_ID_CHARS: usize = 16;

/// `GET /api/server`: who may sign up here, and whether anyone has yet.
pub async fn server(State(state): State<AppState>) -> Result<Json<ServerInfo>, HttpError> {
    Ok(Json(ServerInfo {
        registration: state.registration,
        first_account: !state.engine.store().has_people().await?,
        max_upload_bytes: state.files.max_bytes(),
    }))
}

pub(super) async fn me_of(state: &AppState, name: &str) -> Result<Me, HttpError> {
    let account =
        state.engine.store().account(name).await?.ok_or_else(|| {
            HttpError::new(StatusCode::UNAUTHORIZED, "this account no longer exists")
        })?;
    Ok(Me {
        name: account.name,
        display_name: account.display_name,
        admin: account.admin,
        avatar: account.avatar,
    })
}

/// `GET /api/me`.
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Me>, HttpError> {
    Ok(Json(me_of(&state, user.name()).await?))
}

/// `PUT /api/me` with a [`Profile`]: sets or removes the display name.
pub async fn set_profile(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(profile): JsonBody<Profile>,
) -> Result<Json<Me>, HttpError> {
    let display_name = profile.display_name.map(|name| name.trim().to_owned());
    let display_name = display_name.filter(|name| !name.is_empty());
    if let Some(name) = &display_name {
        validate_display_name(name).map_err(HttpError::bad_request)?;
    }
    state.engine.update_account(user.name(), AccountChange::DisplayName(display_name)).await?;
    Ok(Json(me_of(&state, user.name()).await?))
}

/// `GET /api/people`: every active account's name and display name.
pub async fn people(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Vec<Person>>, HttpError> {
    Ok(Json(state.engine.store().people().await?))
}

/// `POST /api/password`: a new password, given the current one; the person's other
/// sessions end.
pub async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(change): JsonBody<PasswordChange>,
) -> Result<StatusCode, HttpError> {
    if user.identity.bot {
        return Err(HttpError::new(StatusCode::FORBIDDEN, "a bot has no password"));
    }
    check_new_password(&change.new)?;
    if change.current.chars().count() > shared::api::MAX_PASSWORD_CHARS {
        return Err(HttpError::bad_request("password too long"));
    }
    let stored = state.engine.store().password_hash(user.name()).await?;
    let current = change.current;
    if !hash_work(&state, move || verify_password(&current, stored.as_deref())).await? {
        return Err(HttpError::new(StatusCode::FORBIDDEN, "the current password is not right"));
    }
    let new = change.new;
    let hash = hash_work(&state, move || hash_password(&new)).await?;
    let change = AccountChange::Password { hash, keep: Some(user.token_hash()) };
    state.engine.update_account(user.name(), change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/password/reset`: a new password through a reset link an admin made. Every
/// session of the account ends; the answer is a new one.
pub async fn reset_password(
    State(state): State<AppState>,
    address: ClientAddress,
    device: Device,
    JsonBody(reset): JsonBody<PasswordReset>,
) -> Result<Json<SessionToken>, HttpError> {
    if reset.code.is_empty() || reset.code.len() > MAX_CODE_CHARS {
        return Err(HttpError::bad_request("code is not a reset code"));
    }
    check_new_password(&reset.password)?;
    limit(&state.protection.registrations, &address, REGISTRATIONS_PER_ADDRESS)?;
    let password = reset.password;
    let hash = hash_work(&state, move || hash_password(&password)).await?;
    let user = state.engine.redeem_reset(&token_hash(&reset.code), &hash).await?;
    Ok(Json(issue_token(&state, user, &device).await?))
}

/// `GET /api/sessions`: the person's sessions, the latest used first.
pub async fn sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<SessionSummary>>, HttpError> {
    let current = user.token_hash();
    let records = state.engine.store().sessions(user.name(), now_millis()).await?;
    Ok(Json(
        records
            .into_iter()
            .map(|record| SessionSummary {
                id: record.hash[..SESSION_ID_CHARS.min(record.hash.len())].to_owned(),
                current: record.hash == current,
                device: record.device,
                created_at: record.created_at,
                last_used_at: record.last_used_at,
            })
            .collect(),
    ))
}

/// `DELETE /api/sessions/{id}`: ends one of the person's sessions, on every node.
pub async fn end_session(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let Path(id) = path?;
    if id.len() != SESSION_ID_CHARS || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(HttpError::bad_request("a session id is 16 hexadecimal digits"));
    }
    let records = state.engine.store().sessions(user.name(), now_millis()).await?;
    let record = records
        .into_iter()
        .find(|record| record.hash.starts_with(&id))
        .ok_or_else(|| HttpError::new(StatusCode::NOT_FOUND, "you have no session with that id"))?;
    state.engine.revoke_token(&record.hash).await?;
    Ok(StatusCode::NO_CONTENT)
}
