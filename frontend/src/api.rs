//! The HTTP API, from the page: accounts, rooms, history pages, read markers.
//!
//! Every call returns the server's JSON error text on failure, ready to show.

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::api::{
    Account, AdminStats, ApiError, Credentials, DmPage, DmSummary, Invitation, MAX_PAGE, Me,
    NewInvitation, NewRoom, PasswordChange, PasswordReset, Person, Profile, ReadMarker, ResetLink,
    RoomMembers, RoomPage, RoomSummary, SearchPage, ServerInfo, SessionSummary, SessionToken,
};
use shared::chat::{ChatMessage, RoomChange};

/// A failed call, as a sentence for the page.
pub type ApiResult<T> = Result<T, String>;

async fn read<T: DeserializeOwned>(response: Result<Response, gloo_net::Error>) -> ApiResult<T> {
    let response = response.map_err(|error| format!("cannot reach the server: {error}"))?;
    if response.ok() {
        response.json().await.map_err(|error| format!("unexpected answer from the server: {error}"))
    } else {
        Err(error_text(response).await)
    }
}

async fn read_empty(response: Result<Response, gloo_net::Error>) -> ApiResult<()> {
    let response = response.map_err(|error| format!("cannot reach the server: {error}"))?;
    if response.ok() { Ok(()) } else { Err(error_text(response).await) }
}

async fn error_text(response: Response) -> String {
    match response.json::<ApiError>().await {
        Ok(error) => error.error,
        Err(_) => format!("the server answered {}", response.status()),
    }
}

fn authorized(builder: RequestBuilder, token: &str) -> RequestBuilder {
    builder.header("Authorization", &format!("Bearer {token}"))
}

async fn post_json<B: Serialize, T: DeserializeOwned>(
    path: &str,
    token: Option<&str>,
    body: &B,
) -> ApiResult<T> {
    let mut builder = Request::post(path);
    if let Some(token) = token {
        builder = authorized(builder, token);
    }
    let request = builder.json(body).map_err(|error| error.to_string())?;
    read(request.send().await).await
}

async fn post_empty<B: Serialize>(path: &str, token: &str, body: Option<&B>) -> ApiResult<()> {
    let builder = authorized(Request::post(path), token);
    let response = match body {
        Some(body) => builder.json(body).map_err(|error| error.to_string())?.send().await,
        None => builder.send().await,
    };
    read_empty(response).await
}

async fn get<T: DeserializeOwned>(path: &str, token: &str) -> ApiResult<T> {
    read(authorized(Request::get(path), token).send().await).await
}

async fn delete(path: &str, token: &str) -> ApiResult<()> {
    read_empty(authorized(Request::delete(path), token).send().await).await
}

/// How this server lets people in (no sign-in needed).
pub async fn server_info() -> ApiResult<ServerInfo> {
    read(Request::get("/api/server").send().await).await
}

/// Takes the signed-in person's picture away.
pub async fn remove_avatar(token: &str) -> ApiResult<()> {
    delete("/api/me/avatar", token).await
}

/// The signed-in account.
pub async fn me(token: &str) -> ApiResult<Me> {
    get("/api/me", token).await
}

/// Sets or removes the display name.
pub async fn set_profile(token: &str, display_name: Option<String>) -> ApiResult<Me> {
    let request = authorized(Request::put("/api/me"), token)
        .json(&Profile { display_name })
        .map_err(|error| error.to_string())?;
    read(request.send().await).await
}

/// Every active account's name and display name.
pub async fn people(token: &str) -> ApiResult<Vec<Person>> {
    get("/api/people", token).await
}

/// A new password; the person's other sessions end.
pub async fn change_password(token: &str, current: String, new: String) -> ApiResult<()> {
    post_empty("/api/password", token, Some(&PasswordChange { current, new })).await
}

/// A new password through a reset link; signs in.
pub async fn reset_password(code: String, password: String) -> ApiResult<SessionToken> {
    post_json("/api/password/reset", None, &PasswordReset { code, password }).await
}

/// The person's sessions.
pub async fn sessions(token: &str) -> ApiResult<Vec<SessionSummary>> {
    get("/api/sessions", token).await
}

/// Ends one of the person's sessions.
pub async fn end_session(token: &str, id: &str) -> ApiResult<()> {
    delete(&format!("/api/sessions/{id}"), token).await
}

/// A room's members and bans.
pub async fn members(token: &str, room: &str) -> ApiResult<RoomMembers> {
    get(&format!("/api/rooms/{room}/members"), token).await
}

/// Makes a change to a room; the answer is the entry in its stream.
pub async fn change_room(token: &str, room: &str, change: &RoomChange) -> ApiResult<ChatMessage> {
    post_json(&format!("/api/rooms/{room}/changes"), Some(token), change).await
}

/// Every account (admins).
pub async fn admin_users(token: &str) -> ApiResult<Vec<Account>> {
    get("/api/admin/users", token).await
}

/// `promote`, `demote`, `deactivate` or `reactivate` an account (admins).
pub async fn admin_user_action(token: &str, name: &str, action: &str) -> ApiResult<()> {
    post_empty::<()>(&format!("/api/admin/users/{name}/{action}"), token, None).await
}

/// A password-reset link for an account (admins).
pub async fn admin_reset_link(token: &str, name: &str) -> ApiResult<ResetLink> {
    post_json(&format!("/api/admin/users/{name}/reset-link"), Some(token), &()).await
}

/// Every invitation (admins).
pub async fn invitations(token: &str) -> ApiResult<Vec<Invitation>> {
    get("/api/admin/invitations", token).await
}

/// A new invitation link (admins).
pub async fn create_invitation(token: &str, max_uses: u32, hours: u32) -> ApiResult<Invitation> {
    let body = NewInvitation { max_uses, expires_in_hours: hours };
    post_json("/api/admin/invitations", Some(token), &body).await
}

/// Revokes an invitation (admins).
pub async fn revoke_invitation(token: &str, id: &str) -> ApiResult<()> {
    delete(&format!("/api/admin/invitations/{id}"), token).await
}

/// Every room, private ones included (admins).
pub async fn admin_rooms(token: &str) -> ApiResult<Vec<RoomSummary>> {
    get("/api/admin/rooms", token).await
}

/// Live figures (admins).
pub async fn admin_stats(token: &str) -> ApiResult<AdminStats> {
    get("/api/admin/stats", token).await
}

/// Creates an account and signs in.
pub async fn register(credentials: &Credentials) -> ApiResult<SessionToken> {
    post_json("/api/register", None, credentials).await
}

/// Signs in.
pub async fn login(credentials: &Credentials) -> ApiResult<SessionToken> {
    post_json("/api/login", None, credentials).await
}

/// Revokes the token.
pub async fn logout(token: &str) -> ApiResult<()> {
    post_empty::<()>("/api/logout", token, None).await
}

/// Every room, with member and unread counts.
pub async fn rooms(token: &str) -> ApiResult<Vec<RoomSummary>> {
    get("/api/rooms", token).await
}

/// Creates a room, public or private, owned by the signed-in person.
pub async fn create_room(token: &str, name: &str, private: bool) -> ApiResult<RoomSummary> {
    post_json("/api/rooms", Some(token), &NewRoom { name: name.to_owned(), private }).await
}

/// Joins a room.
pub async fn join_room(token: &str, room: &str) -> ApiResult<()> {
    post_empty::<()>(&format!("/api/rooms/{room}/join"), token, None).await
}

/// Leaves a room.
pub async fn leave_room(token: &str, room: &str) -> ApiResult<()> {
    post_empty::<()>(&format!("/api/rooms/{room}/leave"), token, None).await
}

/// Messages the user may read that match `query` (the search language of
/// [`shared::search`]), best first.
pub async fn search(token: &str, query: &str) -> ApiResult<SearchPage> {
    let q = String::from(js_sys::encode_uri_component(query));
    get(&format!("/api/search?q={q}&limit=50"), token).await
}

/// One page of a room's history before `before`: the server's default size, or `limit`.
pub async fn room_page(
    token: &str,
    room: &str,
    before: Option<u64>,
    limit: Option<usize>,
) -> ApiResult<RoomPage> {
    let mut query = Vec::new();
    query.extend(before.map(|seq| format!("before={seq}")));
    query.extend(limit.map(|limit| format!("limit={limit}")));
    let query = if query.is_empty() { String::new() } else { format!("?{}", query.join("&")) };
    get(&format!("/api/rooms/{room}/messages{query}"), token).await
}

/// Up to a page of a room's messages after `after`, oldest first; `more` if newer follow.
pub async fn room_after(token: &str, room: &str, after: u64) -> ApiResult<RoomPage> {
    get(&format!("/api/rooms/{room}/messages?after={after}&limit={MAX_PAGE}"), token).await
}

/// Up to a page of the user's inbox (every conversation) after inbox id `after`.
pub async fn inbox_after(token: &str, after: u64) -> ApiResult<DmPage> {
    get(&format!("/api/inbox?after={after}&limit={MAX_PAGE}"), token).await
}

/// Moves the read marker of a room.
pub async fn mark_room_read(token: &str, room: &str, seq: u64) -> ApiResult<()> {
    post_empty(&format!("/api/rooms/{room}/read"), token, Some(&ReadMarker { seq })).await
}

/// The user's conversations.
pub async fn dms(token: &str) -> ApiResult<Vec<DmSummary>> {
    get("/api/dms", token).await
}

/// One page of a conversation before `before`.
pub async fn dm_page(token: &str, peer: &str, before: Option<u64>) -> ApiResult<DmPage> {
    let query = before.map(|seq| format!("?before={seq}")).unwrap_or_default();
    get(&format!("/api/dms/{peer}/messages{query}"), token).await
}

/// Moves the read marker of a conversation.
pub async fn mark_dm_read(token: &str, peer: &str, seq: u64) -> ApiResult<()> {
    post_empty(&format!("/api/dms/{peer}/read"), token, Some(&ReadMarker { seq })).await
}
