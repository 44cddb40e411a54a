//! A MESSAGE encoded once and shared by every subscriber.
//!
//! A MESSAGE differs between subscribers only in its `subscription` header (and `ack` for
//! client-acknowledged subscriptions). Everything after those headers is encoded once into
//! `tail`; each distinct subscription id then costs one small concatenation, shared by all
//! subscribers that use the same id (most STOMP clients number subscriptions from zero, and
//! Confab's own client names them after the room).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use shared::chat::{
    ChatMessage, Destination, DirectMessage, Notice, RoomEvent, SEQ_HEADER, USER_DM, USER_NOTICES,
};
use shared::markdown::{format_dm, format_message};
use shared::stomp::{Headers, escape_into};

use super::AckKind;
use super::outbox::{AckRef, Outgoing};

/// A message ready to deliver to any number of subscriptions.
#[derive(Debug, Clone)]
pub struct EncodedMessage {
    message_id: Arc<str>,
    /// Everything from `message-id:` to the terminating NUL.
    tail: Bytes,
}

static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(1);

/// A message id unique across nodes and restarts, for messages that are not stored.
pub fn next_message_id() -> String {
    format!("{}-{}", crate::clock::node_id(), NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed))
}

fn json_message(
    destination: &str,
    message_id: &str,
    seq: Option<u64>,
    body: &impl Serialize,
) -> EncodedMessage {
    let body = serde_json::to_vec(body).expect("chat payloads always serialize");
    let mut headers: Headers = [("content-type", "application/json")].into_iter().collect();
    if let Some(seq) = seq {
        headers.push(SEQ_HEADER, seq.to_string());
    }
    EncodedMessage::new(destination, message_id, &headers, &body)
}

/// An unstored event of a room (presence, joined, left, typing).
pub fn room_event_message(room: &str, event: &RoomEvent) -> EncodedMessage {
    json_message(&Destination::room(room), &next_message_id(), None, event)
}

/// A notice for one user.
pub fn notice_message(notice: &Notice) -> EncodedMessage {
    json_message(USER_NOTICES, &next_message_id(), None, notice)
}

/// A stored chat message: its `seq` in the body and in the `seq` header, its formatting
/// parsed (`rich`).
pub fn chat_message(message: &ChatMessage) -> EncodedMessage {
    let destination = Destination::room(&message.room);
    let message_id = format!("r-{}-{}", message.room, message.seq);
    let mut message = message.clone();
    format_message(&mut message);
    json_message(&destination, &message_id, Some(message.seq), &RoomEvent::Message(message))
}

/// A stored direct message, as the inbox of `owner` holds it, its formatting parsed.
pub fn dm_message(owner: &str, message: &DirectMessage) -> EncodedMessage {
    let mut message = message.clone();
    format_dm(&mut message);
    json_message(USER_DM, &format!("d-{owner}-{}", message.seq), Some(message.seq), &message)
}

/// Header names a publisher may not set: the server owns them.
pub const RESERVED_HEADERS: [&str; 6] =
    ["subscription", "message-id", "destination", "ack", "content-length", SEQ_HEADER];

impl EncodedMessage {
    /// Encodes the parts common to every subscriber.
    ///
    /// `headers` are written as given, after `message-id` and `destination`.
    pub fn new(
        destination: &str,
        message_id: &str,
        headers: &Headers,
        body: &[u8],
    ) -> EncodedMessage {
        let mut tail = BytesMut::with_capacity(96 + body.len());
        tail.put_slice(b"message-id:");
        escape_into(message_id, &mut tail);
        tail.put_slice(b"\ndestination:");
        escape_into(destination, &mut tail);
        tail.put_u8(b'\n');
        for (name, value) in headers.iter() {
            escape_into(name, &mut tail);
            tail.put_u8(b':');
            escape_into(value, &mut tail);
            tail.put_u8(b'\n');
        }
        tail.put_slice(b"content-length:");
        tail.put_slice(body.len().to_string().as_bytes());
        tail.put_slice(b"\n\n");
        tail.put_slice(body);
        tail.put_u8(0);
        EncodedMessage { message_id: message_id.into(), tail: tail.freeze() }
    }

    /// Rebuilds a message from its id and [`EncodedMessage::tail`], as another node
    /// encoded it.
    pub fn from_tail(message_id: &str, tail: Bytes) -> EncodedMessage {
        EncodedMessage { message_id: message_id.into(), tail }
    }

    /// The message's id.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// Everything from `message-id:` to the terminating NUL: what another node needs.
    pub fn tail(&self) -> &[u8] {
        &self.tail
    }

    /// The complete frame for one subscription.
    fn frame(&self, subscription: &str, with_ack: bool) -> Bytes {
        let mut frame = BytesMut::with_capacity(32 + subscription.len() + self.tail.len());
        frame.put_slice(b"MESSAGE\nsubscription:");
        escape_into(subscription, &mut frame);
        frame.put_u8(b'\n');
        if with_ack {
            frame.put_slice(b"ack:");
            escape_into(&self.message_id, &mut frame);
            frame.put_u8(b'\n');
        }
        frame.put_slice(&self.tail);
        frame.freeze()
    }
}

/// Builds per-subscription frames for one message, reusing each distinct frame.
#[derive(Debug)]
pub struct FrameCache<'a> {
    message: &'a EncodedMessage,
    frames: Vec<(Arc<str>, bool, Bytes)>,
    created: crate::metrics::Stamp,
}

/// Distinct subscription ids remembered per message; beyond this, frames are built anew.
const CACHE_SLOTS: usize = 8;

impl<'a> FrameCache<'a> {
    /// A cache for `message`.
    pub fn new(message: &'a EncodedMessage) -> FrameCache<'a> {
        FrameCache { message, frames: Vec::new(), created: crate::metrics::Stamp::now() }
    }

    /// What to queue for a subscription: the frame, and for acknowledged subscriptions
    /// the delivery the client must settle.
    pub fn outgoing(&mut self, subscription: &Arc<str>, ack: AckKind) -> Outgoing {
        let with_ack = ack != AckKind::None;
        let cached = self
            .frames
            .iter()
            .find(|(id, acked, _)| *acked == with_ack && id == subscription)
            .map(|(_, _, bytes)| bytes.clone());
        let bytes = cached.unwrap_or_else(|| {
            let bytes = self.message.frame(subscription, with_ack);
            if self.frames.len() < CACHE_SLOTS {
                self.frames.push((subscription.clone(), with_ack, bytes.clone()));
            }
            bytes
        });
        let ack = with_ack.then(|| AckRef {
            ack_id: self.message.message_id.clone(),
            subscription: subscription.clone(),
            cumulative: ack == AckKind::Cumulative,
        });
        Outgoing::Frame { bytes, ack, queued_at: Some(self.created) }
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use shared::stomp::{Decoder, ServerFrame};

    use super::*;

    fn decode(bytes: &Bytes) -> ServerFrame {
        let mut buf = BytesMut::from(&bytes[..]);
        let frame = Decoder::default().decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        ServerFrame::try_from(frame).unwrap()
    }

    #[test]
    fn frames_decode_and_are_shared_per_subscription_id() {
        let headers: Headers =
            [("content-type", "text/plain"), ("x-k", "a:b")].into_iter().collect();
        let message = EncodedMessage::new("/topic/a", "n1-7", &headers, b"hi\0there");
        let mut cache = FrameCache::new(&message);
        let sub_0: Arc<str> = "sub-0".into();
        let Outgoing::Frame { bytes: first, ack: None, .. } = cache.outgoing(&sub_0, AckKind::None)
        else {
            panic!("expected an unacknowledged frame");
        };
        let Outgoing::Frame { bytes: second, .. } = cache.outgoing(&"sub-0".into(), AckKind::None)
        else {
            panic!("expected a frame");
        };
        assert_eq!(first.as_ptr(), second.as_ptr(), "the same id shares one encoding");
        assert_eq!(
            decode(&first),
            ServerFrame::Message {
                destination: "/topic/a".into(),
                message_id: "n1-7".into(),
                subscription: "sub-0".into(),
                ack: None,
                headers,
                body: Bytes::from_static(b"hi\0there"),
            }
        );
        let Outgoing::Frame { bytes, ack: Some(delivery), .. } =
            cache.outgoing(&sub_0, AckKind::Cumulative)
        else {
            panic!("expected an acknowledged frame");
        };
        assert!(delivery.cumulative);
        let ServerFrame::Message { ack, .. } = decode(&bytes) else { panic!("expected MESSAGE") };
        assert_eq!(ack.as_deref(), Some("n1-7"));
    }
}
