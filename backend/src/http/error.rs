//! Errors of the HTTP API: a status and a JSON body `{"error": "..."}`, never plain text.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use shared::api::ApiError;

use crate::engine::EngineError;
use crate::store::StoreError;

/// An HTTP error response.
#[derive(Debug)]
pub struct HttpError {
    /// The status, 4xx or 5xx.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// For 429 and 503: when to try again, sent as `Retry-After` in whole seconds.
    pub retry_after: Option<Duration>,
}

impl HttpError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError { status, message: message.into(), retry_after: None }
    }

    /// The same error, telling the client when to try again.
    pub fn retry_after(self, wait: Duration) -> HttpError {
        HttpError { retry_after: Some(wait), ..self }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ApiError { error: self.message })).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: "Retry-After: 0" would invite an instant retry.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

impl From<EngineError> for HttpError {
    fn from(error: EngineError) -> HttpError {
        match error {
            EngineError::Conflict(message) => HttpError::new(StatusCode::CONFLICT, message),
            EngineError::Forbidden(message) => HttpError::new(StatusCode::FORBIDDEN, message),
            EngineError::Invalid(message) => HttpError::bad_request(message),
            EngineError::NotFound(missing) => {
                HttpError::new(StatusCode::NOT_FOUND, missing.to_string())
            }
            EngineError::Unavailable => {
                HttpError::new(StatusCode::SERVICE_UNAVAILABLE, error.to_string())
                    .retry_after(Duration::from_secs(1))
            }
            EngineError::Internal(detail) => {
                tracing::error!(error = %detail, "engine failure");
                HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(error: StoreError) -> HttpError {
        EngineError::from(error).into()
    }
}

impl From<JsonRejection> for HttpError {
    fn from(rejection: JsonRejection) -> HttpError {
        HttpError::new(rejection.status(), rejection.body_text())
    }
}

impl From<QueryRejection> for HttpError {
    fn from(rejection: QueryRejection) -> HttpError {
        HttpError::new(rejection.status(), rejection.body_text())
    }
}

impl From<PathRejection> for HttpError {
    fn from(rejection: PathRejection) -> HttpError {
        HttpError::new(rejection.status(), rejection.body_text())
    }
}

/// A JSON request body whose rejections are JSON errors too.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, HttpError> {
        let Json(value) = Json::<T>::from_request(request, state).await?;
        Ok(JsonBody(value))
    }
}
