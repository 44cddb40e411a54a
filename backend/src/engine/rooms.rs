//! Room access and changes, as the engine runs them: every read of a room asks the store
//! for the reader's standing and the rules of [`crate::access`]; every change is stored
//! with the rules checked in its transaction, then delivered like a message.

use shared::api::RoomMembers;
use shared::chat::{ChatMessage, Notice, Role, RoomChange};

use super::{Engine, EngineError, Missing};
use crate::access::Standing;
use crate::bus::{BusEvent, Channel};
use crate::clock::now_millis;
use crate::store::{DmCopies, Posted, Stored};

impl Engine {
    /// `user`'s standing in `room` if they may read it: `NotFound` if there is no such
    /// room, `Forbidden` if they may not (a private room answers as if it did not exist).
    pub async fn readable(&self, room: &str, user: &str) -> Result<Standing, EngineError> {
        let standing = self
            .inner
            .store
            .standing(room, user)
            .await?
            .ok_or_else(|| EngineError::NotFound(Missing::Room(room.to_owned())))?;
        standing.may_read().map_err(|denied| EngineError::Forbidden(denied.0))?;
        Ok(standing)
    }

    /// A room's members and (for its moderators and owner) who is banned.
    pub async fn members(&self, room: &str, user: &str) -> Result<RoomMembers, EngineError> {
        let standing = self.readable(room, user).await?;
        let mut members = self.inner.store.members(room).await?;
        let moderates = standing.role.is_some_and(|role| role >= Role::Moderator)
            || (standing.admin && !standing.private);
        if !moderates {
            members.banned.clear();
        }
        Ok(members)
    }

    /// Makes a change to a room if `actor` may, then delivers it in the room's stream on
    /// every node. Someone kicked or banned stops hearing the room at that entry.
    pub async fn change_room(
        &self,
        room: &str,
        actor: &str,
        change: RoomChange,
    ) -> Result<ChatMessage, EngineError> {
        change.validate().map_err(EngineError::Invalid)?;
        let added = match &change {
            RoomChange::Added { user } => Some(user.clone()),
            _ => None,
        };
        let entry = self.inner.store.change_room(room, actor, change, now_millis()).await?;
        let stored = [Stored::Room(Posted { message: entry.clone(), duplicate: false })];
        let publications = self.offer_stored(&stored);
        self.publish_all(publications).await;
        // The newcomer is not subscribed to the room yet: they hear it on their own queue.
        if let Some(user) = added {
            let notice = Notice::Added { room: room.to_owned(), by: actor.to_owned() };
            self.notify(&user, &notice).await;
        }
        Ok(entry)
    }

    /// Makes an edit, a deletion or a reaction to a message of `actor`'s conversation with
    /// `peer`, then delivers the change to both inboxes on every node.
    pub async fn change_dm(
        &self,
        actor: &str,
        peer: &str,
        change: RoomChange,
    ) -> Result<DmCopies, EngineError> {
        change.validate().map_err(EngineError::Invalid)?;
        let copies = self.inner.store.change_dm(actor, peer, change, now_millis()).await?;
        let stored = [Stored::Dm(Posted { message: copies.clone(), duplicate: false })];
        let publications = self.offer_stored(&stored);
        self.publish_all(publications).await;
        Ok(copies)
    }

    /// Ends the sessions of these tokens, on every node, within a second.
    pub async fn end_sessions(&self, token_hashes: &[String]) {
        for token_hash in token_hashes {
            self.inner.tokens.revoked(token_hash);
            let event = BusEvent::Revoked { token_hash: token_hash.clone() };
            self.publish(&Channel::Control, &event).await;
        }
    }
}
