//! The engine contract, checked on the engine API itself. Every engine runs the same
//! suite: [`suite`] takes a fresh engine and exercises what the broker relies on.

use backend::broker::{Hub, Outbox, OutboxReceiver, Outgoing, Subscriber};
use backend::engine::{Embedded, Engine, EngineError, RedisConfig, RedisEngine, Replay};
use shared::chat::{DirectMessage, RoomEvent};
use shared::stomp::{AckMode, Decoder, ServerFrame};

/// A fresh embedded engine in a temporary directory.
fn embedded() -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::Embedded(Embedded::open(dir.path(), Hub::default()).unwrap());
    (engine, dir)
}

fn subscriber(id: &str) -> (Subscriber, OutboxReceiver) {
    let (outbox, receiver) = Outbox::with_capacity(64, 1 << 20);
    let subscriber = Subscriber {
        session: 1,
        login: "watcher".into(),
        subscription: id.into(),
        ack: AckMode::Auto,
        outbox,
        replayed_up_to: 0,
    };
    (subscriber, receiver)
}

/// MESSAGE bodies from `receiver`, batches unpacked, until `done` holds for them (or
/// the patience runs out, and the test fails on what arrived). Deliveries through Redis
/// arrive a moment after the call that caused them.
async fn bodies_until(
    receiver: &mut OutboxReceiver,
    done: impl Fn(&[Vec<u8>]) -> bool,
) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let deadline = tokio::time::Instant::now() + crate::support::PATIENCE;
    while !done(&bodies) {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(item)) => bodies.extend(message_bodies(item)),
            _ => break,
        }
    }
    // Anything more that is already queued is reported too, so that doubles show.
    while let Some(item) = receiver.try_recv() {
        bodies.extend(message_bodies(item));
    }
    bodies
}

fn message_bodies(item: Outgoing) -> Vec<Vec<u8>> {
    let frames = match item {
        Outgoing::Batch(items) => items,
        other => vec![other],
    };
    frames
        .into_iter()
        .filter_map(|item| match item {
            Outgoing::Frame { bytes, .. } => {
                let mut buf = bytes::BytesMut::from(&bytes[..]);
                let frame = Decoder::default().decode(&mut buf).unwrap().unwrap();
                match ServerFrame::try_from(frame).unwrap() {
                    ServerFrame::Message { body, .. } => Some(body.to_vec()),
                    _ => None,
                }
            }
            _ => None,
        })
        .collect()
}

fn room_seqs(bodies: &[Vec<u8>]) -> Vec<u64> {
    bodies
        .iter()
        .filter_map(|body| match serde_json::from_slice(body).unwrap() {
            RoomEvent::Message(message) => Some(message.seq),
            _ => None,
        })
        .collect()
}

/// The contract every engine keeps.
async fn suite(engine: &Engine) {
    // Accounts and tokens.
    engine.create_user("ann", "hash-a").await.unwrap();
    assert!(matches!(engine.create_user("ann", "hash-b").await, Err(EngineError::Conflict(_))));
    assert_eq!(engine.password_hash("ann").await.unwrap().as_deref(), Some("hash-a"));
    assert_eq!(engine.password_hash("nobody").await.unwrap(), None);
    engine.create_user("bob", "hash-b").await.unwrap();
    engine.store_token("t1", "ann").await.unwrap();
    assert_eq!(engine.token_user("t1").await.unwrap().as_deref(), Some("ann"));
    engine.revoke_token("t1").await.unwrap();
    assert_eq!(engine.token_user("t1").await.unwrap(), None);

    // Rooms: new users are in the lobby; rooms are unique.
    engine.create_room("dev", "ann").await.unwrap();
    assert!(matches!(engine.create_room("dev", "bob").await, Err(EngineError::Conflict(_))));
    let rooms = engine.rooms_for("bob").await.unwrap();
    assert!(rooms.iter().any(|room| room.name == "lobby" && room.joined));
    assert!(rooms.iter().any(|room| room.name == "dev" && !room.joined && room.members == 1));
    assert!(matches!(
        engine.post_room("nowhere", "ann", "x", None).await,
        Err(EngineError::NotFound(_))
    ));

    // Posting: ids from 1, no gaps; a key makes a resend harmless.
    let (live, mut live_rx) = subscriber("live");
    engine.attach_room("dev", "bob", live, Replay::Latest(50)).await.unwrap();
    for n in 1..=5 {
        let key = format!("k{n}");
        let posted = engine.post_room("dev", "ann", &format!("m{n}"), Some(&key)).await.unwrap();
        assert_eq!((posted.message.seq, posted.duplicate), (n, false));
    }
    let again = engine.post_room("dev", "ann", "m3 again", Some("k3")).await.unwrap();
    assert_eq!((again.message.seq, again.duplicate, again.message.text.as_str()), (3, true, "m3"));
    let delivered = bodies_until(&mut live_rx, |bodies| room_seqs(bodies).len() >= 5).await;
    assert!(matches!(serde_json::from_slice(&delivered[0]).unwrap(), RoomEvent::Presence { .. }));
    assert_eq!(
        room_seqs(&delivered),
        [1, 2, 3, 4, 5],
        "live delivery in id order, the resend not delivered"
    );

    // Replays: the latest n, or exactly what follows `since`, then live without overlap.
    let (latest, mut latest_rx) = subscriber("latest");
    engine.attach_room("dev", "ann", latest, Replay::Latest(2)).await.unwrap();
    assert_eq!(
        room_seqs(&bodies_until(&mut latest_rx, |bodies| room_seqs(bodies).len() >= 2).await),
        [4, 5]
    );
    let (resumed, mut resumed_rx) = subscriber("resumed");
    engine.attach_room("dev", "ann", resumed, Replay::Since(2)).await.unwrap();
    engine.post_room("dev", "bob", "m6", None).await.unwrap();
    assert_eq!(
        room_seqs(&bodies_until(&mut resumed_rx, |bodies| room_seqs(bodies).len() >= 4).await),
        [3, 4, 5, 6]
    );
    let page = engine.room_page("dev", Some(4), 2).await.unwrap();
    assert_eq!(page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(page.more);

    // Unread counts and read markers.
    engine.join_room("dev", "bob").await.unwrap();
    engine.mark_room_read("dev", "bob", 4).await.unwrap();
    let dev =
        engine.rooms_for("bob").await.unwrap().into_iter().find(|room| room.name == "dev").unwrap();
    assert_eq!((dev.members, dev.unread, dev.last_seq), (2, 2, 6));

    // Direct messages: both inboxes, numbered per inbox; unknown recipients refused.
    let (inbox, mut inbox_rx) = subscriber("dm");
    engine.attach_inbox("bob", inbox, Replay::Since(0)).await.unwrap();
    let sent = engine.post_dm("ann", "bob", "psst", Some("d1")).await.unwrap();
    assert_eq!((sent.message.seq, sent.duplicate), (1, false));
    assert!(engine.post_dm("ann", "bob", "psst", Some("d1")).await.unwrap().duplicate);
    assert!(matches!(
        engine.post_dm("ann", "nobody", "hi", None).await,
        Err(EngineError::NotFound(_))
    ));
    let received: Vec<DirectMessage> = bodies_until(&mut inbox_rx, |bodies| !bodies.is_empty())
        .await
        .iter()
        .map(|body| serde_json::from_slice(body).unwrap())
        .collect();
    assert_eq!(received.len(), 1);
    assert_eq!((received[0].from.as_str(), received[0].text.as_str()), ("ann", "psst"));
    let summaries = engine.dm_summaries("bob").await.unwrap();
    assert_eq!((summaries[0].peer.as_str(), summaries[0].unread), ("ann", 1));
    let page = engine.dm_page("ann", "bob", None, 10).await.unwrap();
    assert_eq!(page.messages.len(), 1);
}

#[tokio::test]
async fn the_embedded_engine_keeps_the_contract() {
    let (engine, _dir) = embedded();
    suite(&engine).await;
}

#[tokio::test]
async fn the_redis_engine_keeps_the_contract() {
    let redis = crate::support::RedisServer::start().await;
    let config = RedisConfig { url: redis.url(), prefix: "test:".into(), history_cap: 1000 };
    let engine = Engine::Redis(RedisEngine::connect(config, Hub::default()).await.unwrap());
    suite(&engine).await;
}

#[tokio::test]
async fn the_embedded_store_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = Engine::Embedded(Embedded::open(dir.path(), Hub::default()).unwrap());
        engine.create_user("ann", "hash").await.unwrap();
        engine.post_room("lobby", "ann", "kept", None).await.unwrap();
    }
    let engine = Engine::Embedded(Embedded::open(dir.path(), Hub::default()).unwrap());
    let page = engine.room_page("lobby", None, 10).await.unwrap();
    assert_eq!(page.messages[0].text, "kept");
    assert_eq!(engine.post_room("lobby", "ann", "next", None).await.unwrap().message.seq, 2);
}
