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
    Credentials, DmPage, DmSummary, MAX_PAGE, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, ReadMarker,
    SessionToken,
};
use shared::chat::{validate_name, validate_username};

use super::error::{HttpError, JsonBody};
use crate::AppState;
use crate::auth::{hash_password, new_token, token_hash, verify_password};
use crate::engine::Identity;
use crate::limits::{
    ATTEMPT_WINDOW, ClientAddress, LOGINS_PER_ADDRESS, REGISTRATIONS_PER_ADDRESS, WindowLimiter,
};
use crate::metrics::{AuthFailure, Limit, metrics};
use crate::store::Admission;
use shared::api::Registration;

/// The signed-in user of a request.
#[derive(Debug)]
pub struct AuthUser {
    token: String,
    /// Who, bot or person.
    pub identity: Identity,
}

impl AuthUser {
    /// The user's name.
    pub(super) fn name(&self) -> &str {
        &self.identity.name
    }

    /// The hash of the token the request came with.
    pub(super) fn token_hash(&self) -> String {
        token_hash(&self.token)
    }
}

/// The client a session is made by, for the person's list of sessions: its `User-Agent`,
/// without control characters, at most 160 characters.
#[derive(Debug)]
pub struct Device(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Device {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Device, Self::Rejection> {
        let agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("unknown client");
        Ok(Device(agent.chars().filter(|c| !c.is_control()).take(160).collect()))
    }
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
        let identity =
            state.engine.token_identity(&token_hash(token)).await?.ok_or_else(unauthorized)?;
        Ok(AuthUser { token: token.to_owned(), identity })
    }
}

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = HttpError;

    /// The TCP peer, or the client a trusted proxy names in `X-Forwarded-For`.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<ClientAddress, HttpError> {
        let ConnectInfo(peer) =
            parts.extensions.get::<ConnectInfo<SocketAddr>>().copied().ok_or_else(|| {
                HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "no peer address")
            })?;
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(state.protection.proxies.client(peer.ip(), &forwarded))
    }
}

/// 429 unless `limiter` lets one more attempt from `address` through.
pub(super) fn limit(
    limiter: &WindowLimiter,
    address: &ClientAddress,
    limit: u32,
) -> Result<(), HttpError> {
    if limiter.allow(&address.key(), limit) {
        Ok(())
    } else {
        metrics().limited(Limit::SignIn);
        Err(HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many attempts from your address: wait a minute and try again",
        )
        .retry_after(ATTEMPT_WINDOW))
    }
}

/// Runs argon2 on a blocking thread, behind the node's hashing gate: 503 at once when too
/// many are already waiting.
pub(super) async fn hash_work<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, HttpError> {
    let permit = state.protection.hashing.enter().await.map_err(|busy| {
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, busy.to_string())
            .retry_after(Duration::from_secs(1))
    })?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|_| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

pub(super) async fn issue_token(
    state: &AppState,
    username: String,
    device: &Device,
) -> Result<SessionToken, HttpError> {
    let token = new_token();
    state.engine.store_token(&token_hash(&token), &username, &device.0).await?;
    Ok(SessionToken { username, token })
}

/// 400 unless `password` has an acceptable length.
pub(super) fn check_new_password(password: &str) -> Result<(), HttpError> {
    let length = password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&length) {
        return Err(HttpError::bad_request(format!(
            "passwords have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The longest invitation or reset code accepted (they are 64 characters).
pub(super) const MAX_CODE_CHARS: usize = 128;

/// `POST /api/register`: creates an account and signs it in. With `--registration invite`
/// (the default) it needs an invitation's code, unless the server has no account yet: the
/// first person becomes the admin.
pub async fn register(
    State(state): State<AppState>,
    address: ClientAddress,
    device: Device,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<SessionToken>), HttpError> {
    let Credentials { username, password, invite } = credentials;
    validate_username(&username)
        .map_err(|reason| HttpError::bad_request(format!("invalid user name: {reason}")))?;
    check_new_password(&password)?;
    if invite.as_ref().is_some_and(|code| code.is_empty() || code.len() > MAX_CODE_CHARS) {
        return Err(HttpError::bad_request("invite is not an invitation code"));
    }
    limit(&state.protection.registrations, &address, REGISTRATIONS_PER_ADDRESS)?;
    let admission = Admission {
        open: state.registration == Registration::Open,
        invite_hash: invite.as_deref().map(token_hash),
        invitations: state.registration != Registration::Closed,
    };
    // Refused before the costly hash when nobody could get in.
    if !admission.open
        && admission.invite_hash.is_none()
        && state.engine.store().has_people().await?
    {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            if admission.invitations {
                "this server signs people up by invitation: ask an admin for a link"
            } else {
                "this server takes no new accounts"
            },
        ));
    }
    let hash = hash_work(&state, move || hash_password(&password)).await?;
    state.engine.create_user(&username, &hash, &admission).await?;
    Ok((StatusCode::CREATED, Json(issue_token(&state, username, &device).await?)))
}

/// `POST /api/login`: a new session token for a name and password.
///
/// In order: the name's form (so that only a real user name ever becomes part of a key),
/// the limit per client address, the back-off of this name from this address after failed
/// attempts, then the password. Failures slow down only the address they come from, so
/// nobody can lock another person out from elsewhere.
pub async fn login(
    State(state): State<AppState>,
    address: ClientAddress,
    device: Device,
    JsonBody(credentials): JsonBody<Credentials>,
) -> Result<Json<SessionToken>, HttpError> {
    let Credentials { username, password, .. } = credentials;
    let username = username.to_lowercase();
    validate_username(&username)
        .map_err(|reason| HttpError::bad_request(format!("invalid user name: {reason}")))?;
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(HttpError::bad_request("password too long"));
    }
    let protection = &state.protection;
    limit(&protection.logins, &address, LOGINS_PER_ADDRESS)?;
    let failures_key = format!("{username}@{}", address.key());
    protection.login_failures.check(&failures_key).map_err(|wait| {
        metrics().limited(Limit::SignIn);
        HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed attempts for this name from your address: wait and try again",
        )
        .retry_after(wait)
    })?;
    let stored = state.engine.store().password_hash(&username).await?;
    let valid = hash_work(&state, move || verify_password(&password, stored.as_deref())).await?;
    if !valid {
        metrics().auth_failed(AuthFailure::Password);
        protection.login_failures.failed(&failures_key);
        return Err(HttpError::new(StatusCode::UNAUTHORIZED, "invalid user name or password"));
    }
    protection.login_failures.succeeded(&failures_key);
    let account = state.engine.store().account(&username).await?;
    if account.is_some_and(|account| account.deactivated) {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "this account is deactivated: ask an admin to reactivate it",
        ));
    }
    Ok(Json(issue_token(&state, username, &device).await?))
}

/// `POST /api/logout`: revokes the request's token.
pub async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, HttpError> {
    state.engine.revoke_token(&token_hash(&user.token)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn room_name(path: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    let Path(name) = path?;
    validate_name(&name)
        .map_err(|reason| HttpError::bad_request(format!("invalid name {name:?}: {reason}")))?;
    Ok(name)
}

pub(super) fn peer_name(path: Result<Path<String>, PathRejection>) -> Result<String, HttpError> {
    let Path(name) = path?;
    validate_username(&name).map_err(|reason| {
        HttpError::bad_request(format!("invalid user name {name:?}: {reason}"))
    })?;
    Ok(name)
}

/// `?before=<seq>&limit=<n>` (older history) or `?after=<seq>&limit=<n>` (what followed) of
/// the history endpoints.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    before: Option<u64>,
    after: Option<u64>,
    around: Option<u64>,
    limit: Option<usize>,
}

/// Ids are stored as signed 64-bit integers: anything above is no id at all.
pub(super) fn valid_seq(what: &str, seq: u64) -> Result<u64, HttpError> {
    if seq > i64::MAX as u64 {
        Err(HttpError::bad_request(format!("{what} must be below 2^63")))
    } else {
        Ok(seq)
    }
}

impl PageQuery {
    pub(super) fn before(&self) -> Result<Option<u64>, HttpError> {
        self.before.map(|before| valid_seq("before", before)).transpose()
    }

    /// `after`, which excludes `before`.
    pub(super) fn after(&self) -> Result<Option<u64>, HttpError> {
        if self.after.is_some() && self.before.is_some() {
            return Err(HttpError::bad_request("give before or after, not both"));
        }
        self.after.map(|after| valid_seq("after", after)).transpose()
    }

    /// `around`, which excludes `before` and `after`.
    pub(super) fn around(&self) -> Result<Option<u64>, HttpError> {
        if self.around.is_some() && (self.after.is_some() || self.before.is_some()) {
            return Err(HttpError::bad_request("give around alone, without before or after"));
        }
        self.around.map(|around| valid_seq("around", around)).transpose()
    }

    pub(super) fn limit(&self) -> Result<usize, HttpError> {
        match self.limit {
            None => Ok(shared::api::DEFAULT_REPLAY),
            Some(limit) if (1..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(_) => Err(HttpError::bad_request(format!("limit must be 1 to {MAX_PAGE}"))),
        }
    }
}

/// `GET /api/dms`.
pub async fn dms(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<Vec<DmSummary>>, HttpError> {
    Ok(Json(state.engine.dm_summaries(user.name()).await?))
}

/// `GET /api/dms/{peer}/messages?before=&limit=`.
pub async fn dm_messages(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<DmPage>, HttpError> {
    let Query(query) = query?;
    if query.after.is_some() {
        return Err(HttpError::bad_request(
            "a conversation pages back with before; ids after one are at /api/inbox?after=",
        ));
    }
    let peer = peer_name(path)?;
    let page = state.engine.dm_page(user.name(), &peer, query.before()?, query.limit()?).await?;
    Ok(Json(formatted(page)))
}

/// `GET /api/inbox?after=&limit=`: the user's DM inbox, every conversation, after an inbox
/// id (what a client that saw ids jump fetches).
pub async fn inbox(
    State(state): State<AppState>,
    user: AuthUser,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<DmPage>, HttpError> {
    let Query(query) = query?;
    let after = query.after()?.ok_or_else(|| HttpError::bad_request("give after=<inbox id>"))?;
    Ok(Json(formatted(state.engine.inbox_page_after(user.name(), after, query.limit()?).await?)))
}

/// A page of direct messages as clients get them: formatting parsed.
fn formatted(mut page: DmPage) -> DmPage {
    page.messages.iter_mut().for_each(shared::markdown::format_dm);
    page
}

/// `POST /api/dms/{peer}/read` with `{"seq": n}`.
pub async fn mark_dm_read(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
    JsonBody(marker): JsonBody<ReadMarker>,
) -> Result<StatusCode, HttpError> {
    let seq = valid_seq("seq", marker.seq)?;
    let peer = peer_name(path)?;
    let engine = state.engine;
    // A marker for someone who does not exist would only be clutter in the store.
    if !engine.store().user_exists(&peer).await? {
        return Err(HttpError::new(StatusCode::NOT_FOUND, format!("no user named {peer:?}")));
    }
    engine.store().mark_dm_read(user.name(), &peer, seq).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Any other `/api/...` path.
pub async fn not_found() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such API endpoint")
}
