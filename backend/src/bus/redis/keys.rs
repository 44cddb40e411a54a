//! Every Redis key and channel name Confab uses, in one place, behind its `--redis-prefix`.

use crate::bus::Channel;

/// Names under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

/// The pseudo-room whose presence counts sessions: who is online.
pub const ONLINE: &str = "@online";

impl Keys {
    /// Names under `prefix` (`confab:`).
    pub fn new(prefix: &str) -> Keys {
        Keys { prefix: prefix.to_owned() }
    }

    /// The pub/sub channel of `channel`.
    pub fn channel(&self, channel: &Channel) -> String {
        match channel {
            Channel::Room(room) => format!("{}room:{room}", self.prefix),
            Channel::User(user) => format!("{}user:{user}", self.prefix),
            Channel::Topic(topic) => format!("{}topic:{topic}", self.prefix),
            Channel::Control => format!("{}control", self.prefix),
        }
    }

    /// The channel a pub/sub channel name stands for.
    pub fn parse_channel(&self, name: &str) -> Option<Channel> {
        let name = name.strip_prefix(self.prefix.as_str())?;
        if name == "control" {
            return Some(Channel::Control);
        }
        match name.split_once(':')? {
            ("room", room) => Some(Channel::Room(room.to_owned())),
            ("user", user) => Some(Channel::User(user.to_owned())),
            ("topic", topic) => Some(Channel::Topic(topic.to_owned())),
            _ => None,
        }
    }

    /// Hash of user → subscriptions in `room`, over all nodes.
    pub fn presence_users(&self, room: &str) -> String {
        format!("{}p:{room}:users", self.prefix)
    }

    /// Hash of `user@node` → subscriptions in `room` from that node, for reaping.
    pub fn presence_nodes(&self, room: &str) -> String {
        format!("{}p:{room}:nodes", self.prefix)
    }

    /// Set of rooms that have presence entries.
    pub fn presence_rooms(&self) -> String {
        format!("{}p:rooms", self.prefix)
    }

    /// A node's liveness key, which expires unless renewed.
    pub fn node(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }

    /// Set of nodes that have registered.
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// The prefix, for scripts that build names of many rooms.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        let keys = Keys::new("confab:");
        for channel in [
            Channel::Room("lobby".into()),
            Channel::User("ann".into()),
            Channel::Topic("prices.eu".into()),
            Channel::Control,
        ] {
            assert_eq!(keys.parse_channel(&keys.channel(&channel)), Some(channel));
        }
        assert_eq!(keys.parse_channel("other:room:lobby"), None);
    }
}
