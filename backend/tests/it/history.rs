//! Stored room messages: ids, receipts after the commit, idempotent resends, the replay
//! on subscribe, resume with `since`, and paging back over HTTP.

use shared::chat::{ChatMessage, RoomEvent};

use crate::support::{Client, TestServer};

/// Sends a chat message with a receipt and waits for it.
async fn say(client: &mut Client, room: &str, text: &str, extra_headers: &str) {
    let receipt = format!("say-{text}");
    client
        .send(&format!("SEND\ndestination:/app/room.{room}\n{extra_headers}receipt:{receipt}\ncontent-type:text/plain\n\n{text}\0"))
        .await;
    loop {
        let frame = client.recv().await;
        if frame.command.as_str() == "RECEIPT" {
            assert_eq!(frame.headers.get("receipt-id"), Some(receipt.as_str()));
            return;
        }
    }
}

fn seqs(messages: &[ChatMessage]) -> Vec<u64> {
    messages.iter().map(|message| message.seq).collect()
}

#[tokio::test]
async fn messages_get_increasing_ids_in_body_and_header() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("lobby", "l").await;
    for n in 1..=3 {
        ann.send(&format!("SEND\ndestination:/app/room.lobby\n\nm{n}\0")).await;
        let (frame, body) = ann.expect_message().await;
        let RoomEvent::Message(message) = serde_json::from_str(&body).unwrap() else {
            panic!("{body}")
        };
        assert_eq!(message.seq, n);
        assert_eq!(frame.headers.get("seq"), Some(n.to_string().as_str()));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_receipt_means_the_message_is_stored() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    say(&mut ann, "lobby", "kept", "").await;
    let token = server.token("ann").await;
    let (status, page) =
        server.request("GET", "/api/rooms/lobby/messages", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"][0]["text"], "kept");
    assert_eq!(page["messages"][0]["sender"], "ann");
    server.stop().await;
}

#[tokio::test]
async fn a_resend_with_the_same_key_is_stored_and_delivered_once() {
    let server = TestServer::start().await;
    let mut watcher = Client::connect(&server, "watcher").await;
    watcher.join("lobby", "l").await;
    let mut ann = Client::connect(&server, "ann").await;
    say(&mut ann, "lobby", "once", "idempotency-key:k-1\n").await;
    // As after a reconnect: a new connection, the same key.
    let mut ann_again = Client::connect(&server, "ann").await;
    say(&mut ann_again, "lobby", "once", "idempotency-key:k-1\n").await;
    say(&mut ann_again, "lobby", "next", "idempotency-key:k-2\n").await;
    let mut texts = Vec::new();
    for frame in watcher.drain_until_receipt("done").await {
        if let Ok(RoomEvent::Message(message)) = serde_json::from_slice(&frame.body) {
            texts.push(message.text);
        }
    }
    assert_eq!(texts, ["once", "next"]);
    let token = server.token("ann").await;
    let (_, page) = server.request("GET", "/api/rooms/lobby/messages", Some(&token), None).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn subscribing_replays_the_last_fifty_then_exactly_what_follows_since() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    for n in 1..=60 {
        ann.send(&format!("SEND\ndestination:/app/room.lobby\n\nm{n}\0")).await;
    }
    ann.drain_until_receipt("sent").await;
    let mut bob = Client::connect(&server, "bob").await;
    let (_, history) = bob.join_with_history("lobby", "a", "").await;
    assert_eq!(seqs(&history), (11..=60).collect::<Vec<_>>());
    let (_, history) = bob.join_with_history("lobby", "b", "since:57\n").await;
    assert_eq!(seqs(&history), [58, 59, 60]);
    let (_, history) = bob.join_with_history("lobby", "c", "since:60\n").await;
    assert!(history.is_empty());
    bob.send("SUBSCRIBE\nid:d\ndestination:/topic/room.lobby\nsince:yesterday\n\n\0").await;
    bob.expect_error_and_close(
        "invalid since header \"yesterday\": expected the last seq you have, a number below 2^63",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn resuming_while_others_publish_misses_and_doubles_nothing() {
    let server = TestServer::start().await;
    let mut publisher = Client::connect(&server, "publisher").await;
    for n in 1..=100 {
        publisher.send(&format!("SEND\ndestination:/app/room.lobby\n\nwarm {n}\0")).await;
    }
    publisher.drain_until_receipt("warm").await;
    let n_messages = 1000;
    let publishing = tokio::spawn(async move {
        for n in 1..=n_messages {
            publisher.send(&format!("SEND\ndestination:/app/room.lobby\n\nlive {n}\0")).await;
        }
        publisher.drain_until_receipt("published").await;
        publisher
    });
    // Resume from the middle of the warm-up while the 1,000 are going in.
    let mut reader = Client::connect(&server, "reader").await;
    let (_, replayed) = reader.join_with_history("lobby", "l", "since:40\n").await;
    let mut seen = seqs(&replayed);
    let last = 100 + n_messages;
    while seen.last().copied().unwrap_or(40) < last {
        let (frame, body) = reader.expect_message().await;
        if let Ok(RoomEvent::Message(message)) = serde_json::from_str(&body) {
            assert_eq!(frame.headers.get("seq"), Some(message.seq.to_string().as_str()));
            seen.push(message.seq);
        }
    }
    assert_eq!(seen, (41..=last).collect::<Vec<_>>(), "each message exactly once, in order");
    publishing.await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn history_pages_back_over_http() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    for n in 1..=25 {
        ann.send(&format!("SEND\ndestination:/app/room.lobby\n\nm{n}\0")).await;
    }
    ann.drain_until_receipt("sent").await;
    let token = server.token("ann").await;
    let page = |query: &'static str| {
        let (server, token) = (&server, &token);
        async move {
            let (status, body) = server
                .request("GET", &format!("/api/rooms/lobby/messages{query}"), Some(token), None)
                .await;
            assert_eq!(status, 200, "{body}");
            let messages: Vec<ChatMessage> =
                serde_json::from_value(body["messages"].clone()).unwrap();
            (seqs(&messages), body["more"].as_bool().unwrap())
        }
    };
    assert_eq!(page("?limit=10").await, ((16..=25).collect(), true));
    assert_eq!(page("?before=16&limit=10").await, ((6..=15).collect(), true));
    assert_eq!(page("?before=6&limit=10").await, ((1..=5).collect(), false));
    let (status, body) =
        server.request("GET", "/api/rooms/lobby/messages?limit=0", Some(&token), None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "limit must be 1 to 200"));
    let (status, _) =
        server.request("GET", "/api/rooms/lobby/messages?before=x", Some(&token), None).await;
    assert_eq!(status, 400);
    let (status, body) =
        server.request("GET", "/api/rooms/nowhere/messages", Some(&token), None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "no room named \"nowhere\""));
    server.stop().await;
}

#[tokio::test]
async fn history_survives_a_restart() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    say(&mut ann, "lobby", "before the restart", "").await;
    drop(ann);
    let server = server.restart().await;
    let mut ann = Client::connect(&server, "ann").await;
    let (_, history) = ann.join_with_history("lobby", "l", "").await;
    assert_eq!(history.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["before the restart"]);
    server.stop().await;
}

/// A replay goes in chunks that fit the outbox; with a small outbox (`--outbox-frames 8`)
/// the chunks shrink, and joining a room with history still finishes.
#[tokio::test]
async fn a_small_outbox_still_replays_history() {
    let server = TestServer::start_with(|config| config.outbox_frames = 8).await;
    let mut writer = Client::connect(&server, "writer").await;
    for n in 0..20 {
        writer.send(&format!("SEND\ndestination:/app/room.lobby\nreceipt:r{n}\n\nm{n}\0")).await;
        writer.expect_receipt(&format!("r{n}")).await;
    }
    let mut reader = Client::connect(&server, "reader").await;
    let (_, history) = reader.join_with_history("lobby", "r", "since:0\n").await;
    let texts: Vec<String> = history.into_iter().map(|message| message.text).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    assert_eq!(texts, expected);
    server.stop().await;
}
