//! A subscription's replay: the stored messages after its starting point, read from the
//! store in chunks and queued as the client takes them, then the hand-over to live
//! delivery.
//!
//! The replay runs in its own task, off the store's writer and off the relay: one user's
//! long replay stalls nobody else (security review M8). It queues a chunk only while the
//! connection's outbox is at most half full, one replay per connection at a time, and for
//! acknowledged subscriptions only while the unacknowledged window has room: a client that
//! does not read costs its outbox budget, however many replays it asks for (H2), and a
//! client in `ack:client` mode can finish any replay by acknowledging as it goes (M11).
//!
//! When a chunk comes back short, the replay checks under the relay's lock whether it has
//! caught up with what the stream delivered; if so the subscription goes live, and the
//! SUBSCRIBE's RECEIPT follows the replay.

use std::sync::Arc;
use std::time::Duration;

use shared::stomp::{Headers, ServerFrame, encode_to_bytes};

use super::relay::Relay;
use crate::bus::Channel;
use crate::delivery::{
    AckKind, EncodedMessage, FrameCache, Outgoing, Subscriber, chat_message, dm_message,
};
use crate::store::Store;

/// Messages read and queued at a time.
const CHUNK: usize = 32;
/// Tries of a failing store read before the connection is closed.
const MAX_FAILURES: u32 = 20;

/// Replays `channel` to `subscriber` from its position, then hands it to live delivery and
/// queues the RECEIPT, if one was asked for.
pub async fn replay(
    store: Arc<dyn Store>,
    relay: Arc<Relay>,
    channel: Channel,
    subscriber: Subscriber,
    receipt: Option<String>,
) {
    let position = subscriber.position.clone();
    // A chunk must fit half the outbox, and half the ACK window where ACKs are due, or
    // its turn would never come (`--outbox-frames 8`).
    let mut chunk = CHUNK.min(subscriber.outbox.max_frames() / 2);
    if subscriber.ack_kind() != AckKind::None {
        chunk = chunk.min(subscriber.acks.limit() / 2);
    }
    let chunk = chunk.max(1);
    let mut failures = 0;
    loop {
        if position.has_ended() || subscriber.outbox.is_closed() {
            return;
        }
        let turn = subscriber.outbox.replay_turn(chunk).await;
        if subscriber.ack_kind() != AckKind::None {
            subscriber.acks.room_for(chunk).await;
        }
        if position.has_ended() {
            return;
        }
        let after = position.cursor();
        let read: Result<Vec<(u64, EncodedMessage)>, _> = match &channel {
            Channel::Room(room) => store.room_after(room, after, chunk).await.map(|messages| {
                messages.iter().map(|message| (message.seq, chat_message(message))).collect()
            }),
            Channel::User(user) => store.inbox_after(user, after, chunk).await.map(|messages| {
                messages.iter().map(|message| (message.seq, dm_message(user, message))).collect()
            }),
            Channel::Topic(_) | Channel::Control => Ok(Vec::new()),
        };
        let messages = match read {
            Ok(messages) => messages,
            Err(error) => {
                drop(turn);
                failures += 1;
                tracing::warn!(%error, ?channel, "cannot read history to replay; retrying");
                if failures >= MAX_FAILURES {
                    let error = ServerFrame::error("history is unavailable: try again later", None);
                    subscriber.outbox.push(Outgoing::frame(encode_to_bytes(&error.into_frame())));
                    subscriber.outbox.push(Outgoing::Close);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
        };
        let mut short = messages.len() < chunk;
        for (seq, message) in &messages {
            // Large messages may fill the outbox before the chunk is through: the rest is
            // read again next turn.
            if !subscriber.outbox.has_room_for(message.tail().len()) {
                short = false;
                break;
            }
            let outgoing =
                FrameCache::new(message).outgoing(&subscriber.subscription, subscriber.ack_kind());
            subscriber.outbox.push(outgoing);
            position.advance(*seq);
        }
        drop(turn);
        if short && relay.go_live(&channel, &position) {
            if let Some(receipt_id) = receipt {
                let frame = ServerFrame::Receipt { receipt_id, headers: Headers::new() };
                subscriber.outbox.push(Outgoing::frame(encode_to_bytes(&frame.into_frame())));
            }
            return;
        }
    }
}
