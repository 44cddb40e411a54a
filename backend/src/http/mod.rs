//! The HTTP surface: routes, the health check, the JSON API, and the built client.

mod accounts;
mod admin;
mod api;
mod error;
mod files;
mod integrations;
mod page;
mod rooms;
mod search;

use std::path::Path;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use serde_json::json;
use tower_http::services::ServeDir;

use page::Page;

pub use error::HttpError;

use crate::AppState;
use crate::ws;

/// Every route of the server. Paths that match nothing else get the client's `index.html`,
/// so client-side routes survive a reload; unknown `/api/...` paths get a JSON 404.
pub fn router(state: AppState, static_dir: &Path, json_path: &str) -> Router {
    let index = static_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(
            path = %index.display(),
            "the browser client is not built: run `trunk build --release` (or `cargo xtask run`)"
        );
    }
    let page = Page::new(index);
    let serve_page = {
        let page = page.clone();
        move || {
            let page = page.clone();
            async move { page.response().await }
        }
    };
    // Files of the built client as they are; every other path is the page, with its
    // policy, so client-side routes survive a reload.
    let client = ServeDir::new(static_dir)
        .append_index_html_on_directories(false)
        .fallback(get(serve_page.clone()));
    let api = Router::new()
        .route("/server", get(accounts::server))
        .route("/register", post(api::register))
        .route("/login", post(api::login))
        .route("/logout", post(api::logout))
        .route("/me", get(accounts::me).put(accounts::set_profile))
        .route(
            "/me/avatar",
            put(files::set_avatar).delete(files::remove_avatar).layer(DefaultBodyLimit::disable()),
        )
        .route("/files", post(files::upload).layer(DefaultBodyLimit::disable()))
        .route("/files/{id}", get(files::file))
        .route("/files/{id}/thumb", get(files::thumb))
        .route("/people", get(accounts::people))
        .route("/password", post(accounts::change_password))
        .route("/password/reset", post(accounts::reset_password))
        .route("/sessions", get(accounts::sessions))
        .route("/sessions/{id}", delete(accounts::end_session))
        .route("/admin/users", get(admin::users))
        .route("/admin/users/{name}/reset-link", post(admin::reset_link))
        .route("/admin/users/{name}/{action}", post(admin::user_action))
        .route("/admin/invitations", get(admin::invitations).post(admin::create_invitation))
        .route("/admin/invitations/{id}", delete(admin::revoke_invitation))
        .route("/admin/rooms", get(admin::rooms))
        .route("/admin/stats", get(admin::stats))
        .route("/rooms", get(rooms::rooms).post(rooms::create_room))
        .route("/rooms/{room}/join", post(rooms::join_room))
        .route("/rooms/{room}/leave", post(rooms::leave_room))
        .route("/rooms/{room}/read", post(rooms::mark_room_read))
        .route("/rooms/{room}/members", get(rooms::members))
        .route("/rooms/{room}/changes", post(rooms::change))
        .route(
            "/rooms/{room}/messages",
            get(rooms::room_messages).post(integrations::post_room_message),
        )
        .route(
            "/rooms/{room}/webhooks",
            get(integrations::webhooks).post(integrations::create_webhook),
        )
        .route("/rooms/{room}/webhooks/{id}", delete(integrations::delete_webhook))
        .route("/dms", get(api::dms))
        .route("/dms/{peer}/messages", get(api::dm_messages).post(integrations::post_dm_message))
        .route("/dms/{peer}/read", post(api::mark_dm_read))
        .route("/inbox", get(api::inbox))
        .route("/search", get(search::search))
        .route("/openapi.json", get(openapi))
        .fallback(api::not_found);
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route(json_path, get(ws::upgrade_json))
        .route("/hooks/{secret}", post(integrations::incoming))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/", get(serve_page.clone()))
        .route("/index.html", get(serve_page))
        .nest("/api", api)
        .fallback_service(client)
        .layer(axum::middleware::map_response(every_response))
        .with_state(state)
}

/// The OpenAPI description of every HTTP route, kept by hand beside the routes; a test
/// checks each against the router, both ways, and real answers against its schemas.
const OPENAPI: &str = include_str!("openapi.json");

/// `GET /api/openapi.json`.
async fn openapi() -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// The metrics listener's routes: `GET /metrics` only; anything else is a JSON 404.
pub fn metrics_router() -> Router {
    Router::new().route("/metrics", get(metrics)).fallback(api::not_found)
}

/// `GET /metrics`: every metric of this node in the OpenMetrics text format, which
/// Prometheus reads.
async fn metrics() -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::metrics().render(),
    )
}

/// Adds the headers of [`page::EVERY_RESPONSE`].
async fn every_response(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in page::EVERY_RESPONSE {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /healthz`: the process is up and serving (liveness), with its node id and how
/// many WebSocket sessions it holds.
async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "node": crate::clock::node_id(),
        "sessions": state.broker.live_sessions(),
        "bus": if state.engine.bus_connected() { "connected" } else { "disconnected" },
    }))
}

/// `GET /readyz`: the node can store messages now (readiness): 503 while its store is
/// unreachable or full, so a load balancer sends new clients elsewhere.
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    if state.engine.ready().await {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "error": "the message store is unreachable" })),
        )
    }
}
