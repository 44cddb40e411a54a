//! `GET /api/search`: the caller's messages that match a query.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use shared::api::{MAX_SEARCH_RESULTS, SearchPage};
use shared::chat::{Millis, validate_name, validate_username};

use super::api::AuthUser;
use super::error::HttpError;
use crate::AppState;
use crate::engine::SearchRequest;

/// Results one call returns when it does not say.
const DEFAULT_RESULTS: usize = 20;

/// `?q=&room=&from=&before=&limit=`: `room` and `from` do what `in:` and `from:` do in
/// `q`.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    room: Option<String>,
    from: Option<String>,
    before: Option<Millis>,
    limit: Option<usize>,
}

/// Sets a filter given as a parameter; the same filter in `q` must agree with it.
fn merge(slot: &mut Option<String>, given: Option<String>, what: &str) -> Result<(), HttpError> {
    match (slot.as_deref(), given) {
        (Some(in_query), Some(given)) if in_query != given.to_lowercase() => Err(
            HttpError::bad_request(format!("{what} is given twice: {in_query:?} and {given:?}")),
        ),
        (_, Some(given)) => {
            *slot = Some(given.to_lowercase());
            Ok(())
        }
        (_, None) => Ok(()),
    }
}

/// `GET /api/search?q=`: messages the caller may read that match, best first.
pub async fn search(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchPage>, HttpError> {
    let Query(params) = params?;
    let mut query = shared::search::parse(params.q.as_deref().unwrap_or_default())
        .map_err(|reason| HttpError::bad_request(reason.to_string()))?;
    merge(&mut query.room, params.room, "the room")?;
    merge(&mut query.from, params.from, "the sender")?;
    if let Some(room) = &query.room {
        validate_name(room)
            .map_err(|reason| HttpError::bad_request(format!("invalid room {room:?}: {reason}")))?;
    }
    if let Some(from) = &query.from {
        validate_username(from).map_err(|reason| {
            HttpError::bad_request(format!("invalid user name {from:?}: {reason}"))
        })?;
    }
    let limit = match params.limit {
        None => DEFAULT_RESULTS,
        Some(limit) if (1..=MAX_SEARCH_RESULTS).contains(&limit) => limit,
        Some(_) => {
            return Err(HttpError::bad_request(format!("limit must be 1 to {MAX_SEARCH_RESULTS}")));
        }
    };
    let request = SearchRequest { query, before: params.before, limit };
    Ok(Json(state.engine.search(user.name(), request).await?))
}
