//! Bot accounts and incoming webhooks, made the same way by the command line (`confab bot
//! create`, `confab webhook create`) and by the API.

use shared::api::Webhook;

use crate::auth::{new_token, token_hash};
use crate::clock::now_millis;
use crate::store::{NEVER, NewHook, Store, StoreError};

/// Creates a bot account and an API token for it, which never expires (revoking it ends
/// it). Returns the token, which is stored only as its hash.
pub async fn create_bot(store: &dyn Store, name: &str) -> Result<String, StoreError> {
    let now = now_millis();
    store.create_bot(name, now).await?;
    let token = new_token();
    store.store_token(&token_hash(&token), name, now, NEVER, "bot").await?;
    Ok(token)
}

/// A new API token for an existing bot (after a move between stores, which carries no
/// tokens, or when one leaked: revoke the old one with `POST /api/logout`). Refuses a
/// person's account: people sign in with their password.
pub async fn new_bot_token(store: &dyn Store, name: &str) -> Result<String, StoreError> {
    match store.is_bot(name).await? {
        Some(true) => {}
        Some(false) => {
            return Err(StoreError::Conflict(format!("{name:?} is a person, not a bot")));
        }
        None => return Err(StoreError::NotFound(crate::store::Missing::User(name.to_owned()))),
    }
    let token = new_token();
    store.store_token(&token_hash(&token), name, now_millis(), NEVER, "bot").await?;
    Ok(token)
}

/// Creates a webhook of `room` posting as the new bot `name`; the returned webhook carries
/// its secret URL path, which is stored only as a hash.
pub async fn create_webhook(
    store: &dyn Store,
    room: &str,
    name: &str,
    created_by: &str,
) -> Result<Webhook, StoreError> {
    let secret = new_token();
    let id = new_token()[..16].to_owned();
    let hook = NewHook {
        id: id.clone(),
        room: room.to_owned(),
        name: name.to_owned(),
        secret_hash: token_hash(&secret),
        created_by: created_by.to_owned(),
    };
    let now = now_millis();
    store.create_webhook(hook, now).await?;
    Ok(Webhook {
        id,
        room: room.to_owned(),
        name: name.to_owned(),
        created_by: created_by.to_owned(),
        created_at: now,
        path: Some(format!("/hooks/{secret}")),
    })
}
