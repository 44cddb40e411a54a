//! The bus of a single node: there are no other nodes to tell, so publishing is a no-op;
//! presence and online counts are this process's own.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{Bus, BusError, BusEvent, Channel, Presence};

/// One node's presence; a cheap handle is not needed: the engine holds it in an `Arc`.
#[derive(Debug, Default)]
pub struct LocalBus {
    /// Room → user → subscriptions in the room.
    presence: Mutex<HashMap<String, HashMap<String, usize>>>,
    /// User → open sessions.
    online: Mutex<HashMap<String, usize>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl Bus for LocalBus {
    async fn publish(&self, _channel: &Channel, _event: &BusEvent) -> Result<(), BusError> {
        Ok(())
    }

    async fn listen(&self, _channel: &Channel) -> Result<(), BusError> {
        Ok(())
    }

    fn unlisten(&self, _channel: &Channel) {}

    async fn enter(&self, room: &str, user: &str) -> Result<Presence, BusError> {
        let mut presence = lock(&self.presence);
        let members = presence.entry(room.to_owned()).or_default();
        let count = members.entry(user.to_owned()).or_default();
        *count += 1;
        let first = *count == 1;
        let mut users: Vec<String> = members.keys().cloned().collect();
        users.sort();
        Ok(Presence { users, first })
    }

    async fn leave(&self, room: &str, user: &str) -> Result<bool, BusError> {
        let mut presence = lock(&self.presence);
        let Some(members) = presence.get_mut(room) else { return Ok(false) };
        let Some(count) = members.get_mut(user) else { return Ok(false) };
        *count -= 1;
        if *count > 0 {
            return Ok(false);
        }
        members.remove(user);
        if members.is_empty() {
            presence.remove(room);
        }
        Ok(true)
    }

    async fn session_opened(&self, user: &str) -> Result<(), BusError> {
        *lock(&self.online).entry(user.to_owned()).or_default() += 1;
        Ok(())
    }

    fn session_closed(&self, user: &str) {
        let mut online = lock(&self.online);
        if let Some(count) = online.get_mut(user) {
            *count -= 1;
            if *count == 0 {
                online.remove(user);
            }
        }
    }

    async fn is_online(&self, user: &str) -> Result<bool, BusError> {
        Ok(lock(&self.online).contains_key(user))
    }

    fn ready(&self) -> bool {
        true
    }
}
