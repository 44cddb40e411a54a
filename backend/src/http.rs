//! The HTTP surface: routes, the health check, and the built client.

use std::path::Path;

use axum::Json;
use axum::Router;
use axum::routing::get;
use serde_json::json;
use tower_http::services::{ServeDir, ServeFile};

use crate::AppState;
use crate::ws;

/// Every route of the server. Paths that match nothing else get the client's `index.html`,
/// so client-side routes survive a reload.
pub fn router(state: AppState, static_dir: &Path) -> Router {
    let index = static_dir.join("index.html");
    if !index.is_file() {
        tracing::warn!(
            path = %index.display(),
            "the browser client is not built: run `trunk build --release` (or `cargo xtask run`)"
        );
    }
    let client = ServeDir::new(static_dir).fallback(ServeFile::new(index));
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .fallback_service(client)
        .with_state(state)
}

/// `GET /healthz`: the process is up and serving.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}
