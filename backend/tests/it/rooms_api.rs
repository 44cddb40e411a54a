//! Rooms over HTTP: list with member and unread counts, create, join, leave, read markers.

use serde_json::{Value, json};

use crate::support::{Client, TestServer};

fn room<'a>(rooms: &'a Value, name: &str) -> &'a Value {
    rooms
        .as_array()
        .unwrap()
        .iter()
        .find(|room| room["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {rooms}"))
}

#[tokio::test]
async fn rooms_are_created_listed_joined_and_left() {
    let server = TestServer::start().await;
    let ann = server.token("ann").await;
    let bob = server.token("bob").await;
    let (status, created) =
        server.request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "dev"}))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (created["name"].as_str(), created["members"].as_u64(), created["joined"].as_bool()),
        (Some("dev"), Some(1), Some(true))
    );

    let (status, error) =
        server.request("POST", "/api/rooms", Some(&bob), Some(&json!({"name": "dev"}))).await;
    assert_eq!(
        (status, error["error"].as_str().unwrap()),
        (409, "a room named \"dev\" already exists")
    );
    let (status, error) =
        server.request("POST", "/api/rooms", Some(&bob), Some(&json!({"name": "Dev Ops"}))).await;
    assert_eq!(
        (status, error["error"].as_str().unwrap()),
        (400, "invalid room name: names use only a-z, 0-9, _ and -")
    );
    let (status, _) =
        server.request("POST", "/api/rooms", Some(&bob), Some(&json!({"title": "x"}))).await;
    assert_eq!(status, 422);

    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    assert_eq!(room(&rooms, "dev")["joined"], false);
    assert!(rooms.as_array().unwrap().iter().any(|room| room["name"] == "lobby"));
    assert_eq!(server.request("POST", "/api/rooms/dev/join", Some(&bob), None).await.0, 204);
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    assert_eq!(
        (room(&rooms, "dev")["joined"].as_bool(), room(&rooms, "dev")["members"].as_u64()),
        (Some(true), Some(2))
    );
    assert_eq!(server.request("POST", "/api/rooms/dev/leave", Some(&bob), None).await.0, 204);
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    assert_eq!(room(&rooms, "dev")["members"], 1);

    let (status, error) = server.request("POST", "/api/rooms/nowhere/join", Some(&bob), None).await;
    assert_eq!((status, error["error"].as_str().unwrap()), (404, "no room named \"nowhere\""));
    server.stop().await;
}

#[tokio::test]
async fn unread_counts_follow_messages_and_read_markers() {
    let server = TestServer::start().await;
    server.create_room("ann", "dev").await;
    let bob = server.token("bob").await;
    assert_eq!(server.request("POST", "/api/rooms/dev/join", Some(&bob), None).await.0, 204);
    let mut ann = Client::connect(&server, "ann").await;
    for n in 1..=4 {
        ann.send(&format!("SEND\ndestination:/app/room.dev\n\nm{n}\0")).await;
    }
    ann.drain_until_receipt("sent").await;
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    assert_eq!(
        (room(&rooms, "dev")["unread"].as_u64(), room(&rooms, "dev")["last_seq"].as_u64()),
        (Some(4), Some(4))
    );
    let read = json!({"seq": 3});
    assert_eq!(server.request("POST", "/api/rooms/dev/read", Some(&bob), Some(&read)).await.0, 204);
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    assert_eq!(room(&rooms, "dev")["unread"], 1);
    server.stop().await;
}

#[tokio::test]
async fn unknown_rooms_are_refused_over_stomp() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.send("SUBSCRIBE\nid:1\ndestination:/topic/room.nowhere\n\n\0").await;
    ann.expect_error_and_close("no room named \"nowhere\": create it with POST /api/rooms").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.send("SEND\ndestination:/app/room.nowhere\n\nhello?\0").await;
    ann.expect_error_and_close("no room named \"nowhere\"").await;
    server.stop().await;
}

#[tokio::test]
async fn typing_is_broadcast_but_not_stored() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("lobby", "l").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("lobby", "l").await;
    ann.expect_room_event().await; // bob joined
    bob.send("SEND\ndestination:/app/room.lobby\ncontent-type:application/json\n\n{\"type\":\"typing\"}\0").await;
    assert_eq!(
        ann.expect_room_event().await,
        shared::chat::RoomEvent::Typing { user: "bob".into() }
    );
    let token = server.token("ann").await;
    let (_, page) = server.request("GET", "/api/rooms/lobby/messages", Some(&token), None).await;
    assert!(page["messages"].as_array().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn new_rooms_are_announced_on_topic_rooms() {
    let server = TestServer::start().await;
    let ann = server.token("ann").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.subscribe("/topic/rooms", "directory").await;
    let (status, _) =
        server.request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "design"}))).await;
    assert_eq!(status, 201);
    let (frame, body) = bob.expect_message().await;
    assert_eq!(frame.headers.get("destination"), Some("/topic/rooms"));
    assert_eq!(frame.headers.get("content-type"), Some("application/json"));
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event, json!({"type": "created", "room": "design", "by": "ann"}));
    // A refused creation announces nothing.
    let (status, _) =
        server.request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "design"}))).await;
    assert_eq!(status, 409);
    let frames = bob.drain_until_receipt("after-conflict").await;
    assert!(frames.is_empty(), "{frames:?}");
    server.stop().await;
}
