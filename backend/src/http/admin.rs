//! What server admins do over HTTP: people (promote, demote, deactivate, reactivate, reset
//! links), invitations, every room, and live figures. Every handler takes an [`Admin`],
//! which only a signed-in admin's request yields.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use shared::api::{Account, AdminStats, Invitation, NewInvitation, ResetLink, RoomSummary};
use shared::chat::validate_username;

use super::api::{AuthUser, peer_name};
use super::error::{HttpError, JsonBody};
use crate::AppState;
use crate::auth::{new_token, token_hash};
use crate::clock::now_millis;
use crate::store::{AccountChange, LinkKind, NewLink};

/// How long a reset link works.
const RESET_HOURS: i64 = 24;
const HOUR_MILLIS: i64 = 3_600_000;

/// The signed-in admin of a request; 403 for anyone else.
#[derive(Debug)]
pub struct Admin(AuthUser);

impl FromRequestParts<AppState> for Admin {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, HttpError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let account = state.engine.store().account(user.name()).await?;
        if account.is_some_and(|account| account.admin && !account.deactivated) {
            Ok(Admin(user))
        } else {
            Err(HttpError::new(StatusCode::FORBIDDEN, "only server admins may do that"))
        }
    }
}

/// `GET /api/admin/users`: every account with its state and last activity.
pub async fn users(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<Account>>, HttpError> {
    Ok(Json(state.engine.store().accounts().await?))
}

/// `POST /api/admin/users/{name}/{action}`: `promote`, `demote`, `deactivate` (every
/// session of the person ends on every node within a second; their messages stay) or
/// `reactivate`.
pub async fn user_action(
    State(state): State<AppState>,
    admin: Admin,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let Path((name, action)) = path?;
    validate_username(&name).map_err(|reason| {
        HttpError::bad_request(format!("invalid user name {name:?}: {reason}"))
    })?;
    let change = match action.as_str() {
        "promote" => AccountChange::Admin(true),
        "demote" => AccountChange::Admin(false),
        "deactivate" => AccountChange::Active(false),
        "reactivate" => AccountChange::Active(true),
        _ => {
            return Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "no such action: use promote, demote, deactivate or reactivate",
            ));
        }
    };
    if name == admin.0.name() && matches!(change, AccountChange::Active(false)) {
        return Err(HttpError::new(StatusCode::FORBIDDEN, "you cannot deactivate yourself"));
    }
    state.engine.update_account(&name, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/admin/users/{name}/reset-link`: a one-time link that sets the person's
/// password (for a day).
pub async fn reset_link(
    State(state): State<AppState>,
    admin: Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<(StatusCode, Json<ResetLink>), HttpError> {
    let name = peer_name(path)?;
    let account =
        state.engine.store().account(&name).await?.ok_or_else(|| {
            HttpError::new(StatusCode::NOT_FOUND, format!("no user named {name:?}"))
        })?;
    if account.bot {
        return Err(HttpError::new(StatusCode::FORBIDDEN, "a bot has no password"));
    }
    if account.deactivated {
        return Err(HttpError::new(StatusCode::FORBIDDEN, "reactivate the account first"));
    }
    let code = new_token();
    let expires_at = now_millis() + RESET_HOURS * HOUR_MILLIS;
    let link = NewLink {
        kind: LinkKind::Reset,
        id: link_id(),
        code_hash: token_hash(&code),
        user: Some(account.name.clone()),
        created_by: admin.0.name().to_owned(),
        expires_at,
        max_uses: 1,
    };
    state.engine.store().create_link(link, now_millis()).await?;
    let path = format!("/reset/{code}");
    Ok((StatusCode::CREATED, Json(ResetLink { user: account.name, path, expires_at })))
}

fn link_id() -> String {
    new_token().chars().filter(char::is_ascii_alphanumeric).take(12).collect()
}

/// `GET /api/admin/invitations`.
pub async fn invitations(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<Invitation>>, HttpError> {
    Ok(Json(state.engine.store().invitations().await?))
}

/// `POST /api/admin/invitations`: a new invitation link; its path is in this answer only.
pub async fn create_invitation(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(new): JsonBody<NewInvitation>,
) -> Result<(StatusCode, Json<Invitation>), HttpError> {
    if !(1..=1_000).contains(&new.max_uses) {
        return Err(HttpError::bad_request("max_uses is 1 to 1000"));
    }
    if !(1..=720).contains(&new.expires_in_hours) {
        return Err(HttpError::bad_request("expires_in_hours is 1 to 720 (30 days)"));
    }
    let code = new_token();
    let now = now_millis();
    let link = NewLink {
        kind: LinkKind::Invite,
        id: link_id(),
        code_hash: token_hash(&code),
        user: None,
        created_by: admin.0.name().to_owned(),
        expires_at: now + i64::from(new.expires_in_hours) * HOUR_MILLIS,
        max_uses: new.max_uses,
    };
    let invitation = Invitation {
        id: link.id.clone(),
        created_by: link.created_by.clone(),
        created_at: now,
        expires_at: link.expires_at,
        max_uses: link.max_uses,
        uses: 0,
        revoked: false,
        path: Some(format!("/join/{code}")),
    };
    state.engine.store().create_link(link, now).await?;
    Ok((StatusCode::CREATED, Json(invitation)))
}

/// `DELETE /api/admin/invitations/{id}`: the link stops working.
pub async fn revoke_invitation(
    State(state): State<AppState>,
    _admin: Admin,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, HttpError> {
    let Path(id) = path?;
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(HttpError::bad_request("an invitation id is letters and digits"));
    }
    if state.engine.store().revoke_invitation(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(HttpError::new(StatusCode::NOT_FOUND, "no invitation with that id"))
    }
}

/// `GET /api/admin/rooms`: every room, private ones included (names and counts only: an
/// admin reads a private room only as its member).
pub async fn rooms(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<Vec<RoomSummary>>, HttpError> {
    Ok(Json(state.engine.store().all_rooms().await?))
}

/// `GET /api/admin/stats`: live figures.
pub async fn stats(
    State(state): State<AppState>,
    _admin: Admin,
) -> Result<Json<AdminStats>, HttpError> {
    let store = state.engine.store();
    let accounts = store.accounts().await?;
    let online = {
        let mut online = 0;
        for account in &accounts {
            if state.engine.is_online(&account.name).await? {
                online += 1;
            }
        }
        online
    };
    Ok(Json(AdminStats {
        connections: state.broker.live_sessions(),
        online,
        messages_last_hour: store.messages_since(now_millis() - HOUR_MILLIS).await?,
        accounts: accounts.len() as u64,
        rooms: store.all_rooms().await?.len() as u64,
    }))
}
