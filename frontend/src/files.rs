//! Files from the page: uploads with progress (`XMLHttpRequest`, which reports it; `fetch`
//! does not), and files fetched with the session token into `blob:` addresses, since an
//! `<img src>` cannot carry the token. Addresses made once are kept for the page's life
//! (a file never changes under its id), and a file is fetched once however many views
//! ask for it at the same time (a person's picture beside each of their messages).

use std::cell::RefCell;
use std::collections::HashMap;

use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};

use shared::api::{ApiError, Me};
use shared::chat::Attachment;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use wasm_bindgen_futures::JsFuture;

use crate::api::ApiResult;

/// A file's `blob:` address, being fetched or fetched.
type Address = Shared<LocalBoxFuture<'static, ApiResult<String>>>;

thread_local! {
    static ADDRESSES: RefCell<HashMap<String, Address>> = RefCell::new(HashMap::new());
}

/// The text of an error answer.
fn error_of(status: u16, body: &str) -> String {
    serde_json::from_str::<ApiError>(body)
        .map(|error| error.error)
        .unwrap_or_else(|_| format!("the server answered {status}"))
}

/// Sends `file` to `path` (`POST /api/files?name=`, or `PUT /api/me/avatar`), calling
/// `progress` with the bytes sent so far; the answer's JSON.
async fn send<T: serde::de::DeserializeOwned>(
    method: &str,
    path: &str,
    token: &str,
    file: &web_sys::Blob,
    progress: impl Fn(u64) + 'static,
) -> ApiResult<T> {
    let request = web_sys::XmlHttpRequest::new().map_err(|_| "cannot upload".to_owned())?;
    request.open(method, path).map_err(|_| "cannot upload".to_owned())?;
    request
        .set_request_header("Authorization", &format!("Bearer {token}"))
        .map_err(|_| "cannot upload".to_owned())?;
    let on_progress =
        Closure::<dyn Fn(web_sys::ProgressEvent)>::new(move |event: web_sys::ProgressEvent| {
            progress(event.loaded() as u64)
        });
    if let Ok(upload) = request.upload() {
        upload.set_onprogress(Some(on_progress.as_ref().unchecked_ref()));
    }
    // The request's end, whichever way, as a promise.
    let done = js_sys::Promise::new(&mut |resolve, _| {
        let finish = Closure::once_into_js(move || {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        });
        request.set_onloadend(Some(finish.unchecked_ref()));
    });
    request.send_with_opt_blob(Some(file)).map_err(|_| "cannot upload".to_owned())?;
    let _ = JsFuture::from(done).await;
    drop(on_progress);
    let status = request.status().unwrap_or(0);
    let body = request.response_text().ok().flatten().unwrap_or_default();
    match status {
        0 => Err("cannot reach the server".into()),
        200..=299 => serde_json::from_str(&body)
            .map_err(|error| format!("unexpected answer from the server: {error}")),
        _ => Err(error_of(status, &body)),
    }
}

/// Uploads `file` as `name`, reporting progress.
pub async fn upload(
    token: &str,
    file: &web_sys::Blob,
    name: &str,
    progress: impl Fn(u64) + 'static,
) -> ApiResult<Attachment> {
    let name = String::from(js_sys::encode_uri_component(name));
    send("POST", &format!("/api/files?name={name}"), token, file, progress).await
}

/// Makes `file` the user's picture.
pub async fn set_avatar(token: &str, file: &web_sys::Blob) -> ApiResult<Me> {
    send("PUT", "/api/me/avatar", token, file, |_| {}).await
}

/// A `blob:` address for the file at `path` (`/api/files/{id}`, or its thumbnail),
/// fetched with the token once and kept.
pub async fn address(token: &str, path: &str) -> ApiResult<String> {
    let address = ADDRESSES.with(|addresses| {
        addresses
            .borrow_mut()
            .entry(path.to_owned())
            .or_insert_with(|| fetch(token.to_owned(), path.to_owned()).boxed_local().shared())
            .clone()
    });
    let outcome = address.await;
    if outcome.is_err() {
        // Asked again, it is fetched again: the failure may have been the network's.
        ADDRESSES.with(|addresses| addresses.borrow_mut().remove(path));
    }
    outcome
}

/// Fetches the file at `path` into a `blob:` address.
async fn fetch(token: String, path: String) -> ApiResult<String> {
    let response = gloo_net::http::Request::get(&path)
        .header("Authorization", &format!("Bearer {token}"))
        .send()
        .await
        .map_err(|error| format!("cannot reach the server: {error}"))?;
    if !response.ok() {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(error_of(status, &body));
    }
    let mime = response.headers().get("content-type").unwrap_or_default();
    let bytes = response.binary().await.map_err(|_| "cannot read the file".to_owned())?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes.as_slice()));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(&mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|_| "cannot read the file".to_owned())?;
    Ok(web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| "cannot show the file")?)
}

/// Saves a file to the person's computer under its name.
pub async fn download(token: &str, file: &Attachment) -> ApiResult<()> {
    let address = address(token, &format!("/api/files/{}", file.id)).await?;
    let document = leptos::prelude::document();
    let link: web_sys::HtmlAnchorElement =
        document.create_element("a").map_err(|_| "cannot save the file")?.unchecked_into();
    link.set_href(&address);
    link.set_download(&file.name);
    link.click();
    Ok(())
}
