//! Chat rooms on `/topic/room.<room>`: joining and leaving, and stamped chat messages.

use shared::chat::{ChatMessage, RoomEvent};

use crate::support::{Client, TestServer};

#[tokio::test]
async fn members_see_others_join_and_leave() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "alice").await;
    assert_eq!(alice.join("lobby", "lobby").await, ["alice"]);
    let mut bob = Client::connect(&server, "bob").await;
    assert_eq!(bob.join("lobby", "lobby").await, ["alice", "bob"]);
    assert!(
        matches!(alice.expect_room_event().await, RoomEvent::Joined { user, .. } if user == "bob")
    );

    // UNSUBSCRIBE leaves.
    bob.send("UNSUBSCRIBE\nid:lobby\n\n\0").await;
    assert!(
        matches!(alice.expect_room_event().await, RoomEvent::Left { user, .. } if user == "bob")
    );

    // So does a dropped connection.
    let mut carol = Client::connect(&server, "carol").await;
    assert_eq!(carol.join("lobby", "l").await, ["alice", "carol"]);
    assert!(
        matches!(alice.expect_room_event().await, RoomEvent::Joined { user, .. } if user == "carol")
    );
    drop(carol);
    assert!(
        matches!(alice.expect_room_event().await, RoomEvent::Left { user, .. } if user == "carol")
    );

    // And DISCONNECT.
    bob.join("lobby", "again").await;
    assert!(
        matches!(alice.expect_room_event().await, RoomEvent::Joined { user, .. } if user == "bob")
    );
    bob.send("DISCONNECT\n\n\0").await;
    assert!(
        matches!(alice.expect_room_event().await, RoomEvent::Left { user, .. } if user == "bob")
    );
    server.stop().await;
}

#[tokio::test]
async fn the_joiner_gets_a_snapshot_but_not_its_own_join() {
    let server = TestServer::start().await;
    server.create_room("alice", "quiet").await;
    let mut alice = Client::connect(&server, "alice").await;
    alice.join("quiet", "q").await;
    assert!(alice.drain_until_receipt("r").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn chat_messages_are_stamped_by_the_server() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "alice").await;
    alice.join("lobby", "lobby").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "lobby").await;
    alice.expect_room_event().await; // bob joined

    let sends = [
        // The app destination with the shared JSON event; a forged sender is ignored.
        "SEND\ndestination:/app/room.lobby\ncontent-type:application/json\n\n{\"type\":\"message\",\"text\":\"hi bob\",\"sender\":\"mallory\"}\0",
        // A generic client publishing text/plain to the room topic.
        "SEND\ndestination:/topic/room.lobby\ncontent-type:text/plain\n\n<img src=x onerror=alert(1)>\0",
        // No content-type at all reads as text.
        "SEND\ndestination:/app/room.lobby\n\nplain\0",
    ];
    let texts = ["hi bob", "<img src=x onerror=alert(1)>", "plain"];
    let before = backend::clock::now_millis();
    for (send, text) in sends.iter().zip(texts) {
        alice.send(send).await;
        for client in [&mut alice, &mut bob] {
            let RoomEvent::Message(ChatMessage { room, sender, text: got, sent_at, .. }) =
                client.expect_room_event().await
            else {
                panic!("expected a chat message");
            };
            assert_eq!((room.as_str(), sender.as_str(), got.as_str()), ("lobby", "alice", text));
            assert!(sent_at >= before);
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_chat_input_is_refused() {
    let cases: [(&str, &str); 6] = [
        ("SEND\ndestination:/app/room.lobby\n\n   \0", "message is empty"),
        (
            "SEND\ndestination:/app/room.lobby\ncontent-type:application/json\n\n{\"type\":\"nope\"}\0",
            "invalid chat event: unknown variant `nope`, expected one of `message`, `typing`, `edit`, `delete`, `react` at line 1 column 14",
        ),
        (
            "SEND\ndestination:/app/room.lobby\ncontent-type:image/png\n\nx\0",
            "unsupported content-type \"image/png\" for a chat message: use text/plain or application/json",
        ),
        (
            "SEND\ndestination:/app/room.Bad!\n\nx\0",
            "invalid name \"Bad!\": names use only a-z, 0-9, _ and -",
        ),
        (
            "SUBSCRIBE\nid:1\ndestination:/app/room.lobby\n\n\0",
            "cannot subscribe to /app/room.lobby: subscribe to /topic/room.lobby instead",
        ),
        (
            "SEND\ndestination:/topic/rooms\n\nx\0",
            "/topic/rooms is written by the server: create a room with POST /api/rooms",
        ),
    ];
    let server = TestServer::start().await;
    for (raw, message) in cases {
        let mut client = Client::connect(&server, "typo").await;
        client.send(raw).await;
        client.expect_error_and_close(message).await;
    }
    let mut client = Client::connect(&server, "long").await;
    let text = "é".repeat(4001);
    client.send(&format!("SEND\ndestination:/app/room.lobby\n\n{text}\0")).await;
    client.expect_error_and_close("message is longer than 4000 characters").await;
    server.stop().await;
}

#[tokio::test]
async fn several_tabs_of_one_user_are_present_once() {
    let server = TestServer::start().await;
    let mut watcher = Client::connect(&server, "watcher").await;
    watcher.join("lobby", "l").await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut tab = Client::connect(&server, "dana").await;
        assert_eq!(tab.join("lobby", "l").await, ["dana", "watcher"]);
        tabs.push(tab);
    }
    assert!(
        matches!(watcher.expect_room_event().await, RoomEvent::Joined { user, .. } if user == "dana")
    );
    // Two tabs say goodbye; once their receipts are in, any Left would already be queued.
    for mut tab in tabs.drain(1..) {
        tab.send("DISCONNECT\nreceipt:bye\n\n\0").await;
        tab.expect_receipt("bye").await;
    }
    assert!(watcher.drain_until_receipt("two-closed").await.is_empty(), "dana is still here");
    tabs.clear();
    assert!(
        matches!(watcher.expect_room_event().await, RoomEvent::Left { user, .. } if user == "dana")
    );
    server.stop().await;
}
