//! The page itself: `index.html` with a Content-Security-Policy, and the headers every
//! response carries.
//!
//! The policy allows scripts only from this server, plus the inline loader trunk writes
//! into `index.html` (by its SHA-256, read from the file as served, so a rebuilt client
//! needs no restart), WebAssembly compilation (`'wasm-unsafe-eval'`), and connections only
//! back to this server. With the session token in `localStorage`, this is the backstop
//! should an injection ever get into the page.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Headers on every response.
pub const EVERY_RESPONSE: [(HeaderName, &str); 3] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_FRAME_OPTIONS, "DENY"),
];

/// `index.html`, read again whenever the file changes.
#[derive(Debug, Clone)]
pub struct Page {
    path: PathBuf,
    cached: Arc<Mutex<Option<Cached>>>,
}

#[derive(Debug, Clone)]
struct Cached {
    modified: SystemTime,
    html: Bytes,
    policy: HeaderValue,
}

impl Page {
    /// The page at `path`.
    pub fn new(path: PathBuf) -> Page {
        Page { path, cached: Arc::default() }
    }

    /// The page with its policy; 503 with a JSON error if the client is not built.
    pub async fn response(&self) -> Response {
        match self.load().await {
            Ok(cached) => (
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8")),
                    (header::CONTENT_SECURITY_POLICY, cached.policy),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                ],
                Body::from(cached.html),
            )
                .into_response(),
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "cannot serve the page");
                super::HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the browser client is not built: run `cargo xtask client`",
                )
                .into_response()
            }
        }
    }

    async fn load(&self) -> std::io::Result<Cached> {
        let modified = tokio::fs::metadata(&self.path).await?.modified()?;
        if let Some(cached) = self.cached.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && cached.modified == modified
        {
            return Ok(cached.clone());
        }
        let html = tokio::fs::read_to_string(&self.path).await?;
        let policy = HeaderValue::from_str(&content_security_policy(&html))
            .map_err(std::io::Error::other)?;
        let cached = Cached { modified, html: Bytes::from(html), policy };
        *self.cached.lock().unwrap_or_else(PoisonError::into_inner) = Some(cached.clone());
        Ok(cached)
    }
}

/// The policy for a page with this HTML.
pub fn content_security_policy(html: &str) -> String {
    let hashes: String = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
        })
        .collect();
    format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{hashes}; \
         style-src 'self'; img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; \
         manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The contents of every `<script>` element without a `src`.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find("<script")?;
            let after_tag = &rest[start..];
            let open_end = after_tag.find('>')?;
            let attributes = &after_tag[..open_end];
            let body_start = start + open_end + 1;
            let close = rest[body_start..].find("</script>")?;
            let body = &rest[body_start..body_start + close];
            rest = &rest[body_start + close + "</script>".len()..];
            if !attributes.contains(" src=") {
                return Some(body);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_their_hash_and_nothing_else() {
        let html = "<html><head><script src=\"/a.js\"></script>\
                    <script type=\"module\">import init from '/x.js';\ninit();</script></head></html>";
        let scripts: Vec<&str> = inline_scripts(html).collect();
        assert_eq!(scripts, ["import init from '/x.js';\ninit();"]);
        let policy = content_security_policy(html);
        let digest = Sha256::digest(scripts[0].as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        assert!(policy.contains(&format!("script-src 'self' 'wasm-unsafe-eval' 'sha256-{hash}';")));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe-inline"));
    }
}
