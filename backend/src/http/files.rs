//! Files over HTTP: `POST /api/files?name=` (an upload, streamed), `GET /api/files/{id}`
//! and `GET /api/files/{id}/thumb` (for whoever may read the conversation the file was
//! sent to), `PUT` and `DELETE /api/me/avatar`.
//!
//! Serving is safe whatever a file holds: its type comes from its bytes, only raster
//! images are shown inline (everything else, SVG and HTML included, is a download), every
//! response says `nosniff` (as all do) and carries a policy that runs nothing. A file
//! someone may not read answers as one that does not exist.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use shared::api::{Me, is_file_id};
use shared::chat::Attachment;

use super::api::AuthUser;
use super::error::HttpError;
use crate::AppState;
use crate::files::UploadError;
use crate::files::image::ImageError;
use crate::metrics::{Limit, metrics};
use crate::stomp::Charge;
use crate::store::FilePlace;

/// `?name=`: the file's name.
#[derive(Debug, Deserialize)]
pub struct UploadParams {
    name: Option<String>,
}

impl From<UploadError> for HttpError {
    fn from(error: UploadError) -> HttpError {
        let status = match &error {
            UploadError::TooLarge(_) | UploadError::Image(ImageError::TooLarge) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            UploadError::TooManyUnsent(_) => StatusCode::TOO_MANY_REQUESTS,
            UploadError::Empty
            | UploadError::BadName(_)
            | UploadError::Mislabelled { .. }
            | UploadError::Image(_)
            | UploadError::Interrupted(_) => StatusCode::BAD_REQUEST,
            UploadError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        match error {
            UploadError::Store(error) => HttpError::from(error),
            other => HttpError::new(status, other.to_string()),
        }
    }
}

/// One upload's worth of the sender's message rate, or 429.
fn charge(state: &AppState, user: &str) -> Result<(), HttpError> {
    state.broker.charge(user, Charge::Message).map_err(|wait| {
        metrics().limited(Limit::Send);
        HttpError::new(StatusCode::TOO_MANY_REQUESTS, "too many uploads: slow down")
            .retry_after(wait)
    })
}

fn announced_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// `POST /api/files?name=`: the body is the file. 201 with its description; it is the
/// uploader's alone until a message sends it.
pub async fn upload(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<Query<UploadParams>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Attachment>), HttpError> {
    let Query(params) = params?;
    let name =
        params.name.ok_or_else(|| HttpError::bad_request("the file's name is missing: ?name="))?;
    state.files.check_length(announced_length(&headers))?;
    charge(&state, user.name())?;
    let attachment = state.files.upload(user.name(), &name, body.into_data_stream()).await?;
    Ok((StatusCode::CREATED, Json(attachment)))
}

/// `PUT /api/me/avatar`: the body is an image; the caller's picture becomes its largest
/// centred square, resized.
pub async fn set_avatar(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Me>, HttpError> {
    state.files.check_length(announced_length(&headers))?;
    charge(&state, user.name())?;
    state.files.set_avatar(user.name(), body.into_data_stream()).await?;
    Ok(Json(super::accounts::me_of(&state, user.name()).await?))
}

/// `DELETE /api/me/avatar`: back to initials.
pub async fn remove_avatar(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, HttpError> {
    state.engine.store().remove_avatar(user.name()).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn no_such_file() -> HttpError {
    HttpError::new(StatusCode::NOT_FOUND, "no such file")
}

/// `GET /api/files/{id}`.
pub async fn file(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    serve(&state, &user, path, false).await
}

/// `GET /api/files/{id}/thumb`: an image's thumbnail.
pub async fn thumb(
    State(state): State<AppState>,
    user: AuthUser,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, HttpError> {
    serve(&state, &user, path, true).await
}

async fn serve(
    state: &AppState,
    user: &AuthUser,
    path: Result<Path<String>, PathRejection>,
    thumb: bool,
) -> Result<Response, HttpError> {
    let Path(id) = path?;
    if !is_file_id(&id) {
        return Err(HttpError::bad_request("not a file id: 32 hexadecimal digits"));
    }
    let store = state.engine.store();
    let record = store.file(&id).await?.ok_or_else(no_such_file)?;
    let me = user.name();
    let readable = match &record.place {
        FilePlace::Unsent => record.owner == me,
        FilePlace::Avatar => true,
        FilePlace::Dm(peer) => record.owner == me || peer == me,
        FilePlace::Room(room) => state.engine.readable(room, me).await.is_ok(),
    };
    if !readable || (thumb && !record.thumb) {
        return Err(no_such_file());
    }
    let mut bytes = store.file_bytes(&id, thumb).await?.ok_or_else(no_such_file)?;
    let file = &record.attachment;
    let image = file.image.is_some();
    let mut mime = file.mime.clone();
    let body = if thumb {
        // A thumbnail is a PNG when the image has transparency, else a JPEG: its first
        // bytes say which.
        let first = bytes.next().await.transpose().map_err(|error| {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read: {error}"))
        })?;
        let first = first.unwrap_or_default();
        mime = ::image::guess_format(&first)
            .map(|format| format.to_mime_type().to_owned())
            .unwrap_or(mime);
        Body::from_stream(futures_util::stream::once(async { Ok(first) }).chain(bytes))
    } else {
        Body::from_stream(bytes)
    };
    let mime = mime.as_str();
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if !thumb {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    }
    let disposition = if image { "inline" } else { "attachment" };
    if let Ok(value) = HeaderValue::from_str(&content_disposition(disposition, &file.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    // A file never changes under its id; only its readers may keep it.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
    Ok(response)
}

/// `Content-Disposition` with the name both as plain ASCII (anything else replaced) and,
/// for clients that read it, exactly (RFC 6266, RFC 8187).
fn content_disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_safely() {
        assert_eq!(
            content_disposition("attachment", "résumé \"v2\".pdf"),
            "attachment; filename=\"r_sum_ _v2_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22v2%22.pdf"
        );
    }
}
