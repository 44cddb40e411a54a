//! Who may read and post in a room, checked on every path (issue 11, item 4): STOMP
//! SUBSCRIBE with and without `since`, SEND to `/app/room.*` and `/topic/room.*`, typing,
//! and the HTTP history, member and read-marker calls; for a non-member of a private room,
//! someone banned and someone muted; on every setup. In the style of the security review:
//! each attempt, and what it must come to.

use serde_json::{Value, json};
use shared::chat::RoomEvent;

use crate::on_every_setup;
use crate::support::{Client, Setup, TestServer};

/// Waits for the RECEIPT `id`, passing over whatever comes first.
async fn receipt(client: &mut Client, id: &str) {
    loop {
        let frame = client.recv().await;
        if frame.command.as_str() == "RECEIPT" && frame.headers.get("receipt-id") == Some(id) {
            return;
        }
        assert_eq!(frame.command.as_str(), "MESSAGE", "{frame:?}");
    }
}

async fn change(server: &TestServer, actor: &str, room: &str, change: Value) -> (u16, Value) {
    let token = server.token(actor).await;
    server.request("POST", &format!("/api/rooms/{room}/changes"), Some(&token), Some(&change)).await
}

/// A private room is there only for its members: outsiders get the same answer as for a
/// room that does not exist, on every path, and see nothing of it.
async fn a_private_room_is_closed_to_outsiders(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let ann = server.token("ann").await;
    let (status, room) = server
        .request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "board", "private": true})))
        .await;
    assert_eq!(
        (status, room["private"].as_bool(), room["role"].as_str()),
        (201, Some(true), Some("owner"))
    );
    let mut owner = Client::connect(&server, "ann").await;
    owner.join("board", "b").await;
    owner.send("SEND\ndestination:/app/room.board\nreceipt:s1\n\nsalaries\0").await;
    receipt(&mut owner, "s1").await;

    let carol = server.token("carol").await;
    // Lists: not there.
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&carol), None).await;
    assert!(rooms.as_array().unwrap().iter().all(|r| r["name"] != "board"), "{rooms}");
    // HTTP: history (before, after), members, read marker, join.
    for (method, path) in [
        ("GET", "/api/rooms/board/messages"),
        ("GET", "/api/rooms/board/messages?after=0"),
        ("GET", "/api/rooms/board/members"),
        ("POST", "/api/rooms/board/join"),
    ] {
        let (status, body) = server.request(method, path, Some(&carol), None).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"], "no such room, or it is private", "{method} {path}");
        assert!(!body.to_string().contains("salaries"));
    }
    let (status, _) = server
        .request("POST", "/api/rooms/board/read", Some(&carol), Some(&json!({"seq": 1})))
        .await;
    assert_eq!(status, 403);
    // STOMP: SUBSCRIBE with and without since, SEND to both forms, typing. A client that
    // does not listen for notices gets an ERROR, with nothing of the room in it.
    for frame in [
        "SUBSCRIBE\nid:x\ndestination:/topic/room.board\n\n\0",
        "SUBSCRIBE\nid:x\ndestination:/topic/room.board\nsince:0\n\n\0",
        "SEND\ndestination:/app/room.board\n\nlet me in\0",
        "SEND\ndestination:/topic/room.board\n\nlet me in\0",
        "SEND\ndestination:/app/room.board\ncontent-type:application/json\n\n{\"type\":\"typing\"}\0",
    ] {
        let mut client = Client::connect(&server, "carol").await;
        client.send(frame).await;
        let error = client.expect_error().await;
        assert_eq!(error, "no such room, or it is private", "{frame}");
    }
    // A client that listens for notices hears `denied` and keeps its session.
    let mut listening = Client::connect(&server, "carol").await;
    listening.subscribe("/user/queue/notices", "n").await;
    listening.send("SEND\ndestination:/app/room.board\nreceipt:r\n\nhello?\0").await;
    let (_, notice) = listening.expect_message().await;
    let notice: Value = serde_json::from_str(&notice).unwrap();
    assert_eq!((notice["type"].as_str(), notice["receipt"].as_str()), (Some("denied"), Some("r")));
    // Nothing was stored: the owner's history holds only what members said.
    let (_, page) = server.request("GET", "/api/rooms/board/messages", Some(&ann), None).await;
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["salaries"]);
    // Added by a member, carol is in.
    assert_eq!(
        change(&server, "ann", "board", json!({"type": "added", "user": "carol"})).await.0,
        201
    );
    let (status, page) =
        server.request("GET", "/api/rooms/board/messages", Some(&carol), None).await;
    assert_eq!(status, 200, "{page}");
}
on_every_setup!(a_private_room_is_closed_to_outsiders);

/// Someone banned hears the ban, is dropped from the room's stream at once, and is
/// refused on every path until unbanned; they cannot rejoin.
async fn a_banned_person_is_out_everywhere(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let mut carol = Client::connect(&server, "carol").await;
    carol.join("dev", "d").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("dev", "d").await;

    let (status, entry) =
        change(&server, "ann", "dev", json!({"type": "banned", "user": "carol"})).await;
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["text"], "ann banned carol");
    assert_eq!(entry["change"], json!({"type": "banned", "user": "carol"}));
    // Both hear the line in the stream; carol hears nothing after it.
    for client in [&mut ann, &mut carol] {
        loop {
            if let RoomEvent::Message(message) = client.expect_room_event().await {
                assert_eq!(message.text, "ann banned carol");
                break;
            }
        }
    }
    ann.send("SEND\ndestination:/app/room.dev\nreceipt:a1\n\nafter the ban\0").await;
    receipt(&mut ann, "a1").await;
    let frames = carol.drain_until_receipt("quiet").await;
    assert!(frames.is_empty(), "a banned person hears nothing more: {frames:?}");

    let token = server.token("carol").await;
    for (method, path) in [
        ("GET", "/api/rooms/dev/messages"),
        ("GET", "/api/rooms/dev/members"),
        ("POST", "/api/rooms/dev/join"),
    ] {
        let (status, body) = server.request(method, path, Some(&token), None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("you are banned from this room")),
            "{path}"
        );
    }
    for frame in [
        "SUBSCRIBE\nid:x\ndestination:/topic/room.dev\n\n\0",
        "SUBSCRIBE\nid:x\ndestination:/topic/room.dev\nsince:1\n\n\0",
        "SEND\ndestination:/app/room.dev\n\nI am back\0",
        "SEND\ndestination:/topic/room.dev\n\nI am back\0",
    ] {
        let mut client = Client::connect(&server, "carol").await;
        client.send(frame).await;
        assert_eq!(client.expect_error().await, "you are banned from this room", "{frame}");
    }
    // The member list shows the ban to the owner, not to others.
    let (_, members) = server
        .request("GET", "/api/rooms/dev/members", Some(&server.token("ann").await), None)
        .await;
    assert_eq!(members["banned"], json!(["carol"]));
    let (_, members) = server
        .request("GET", "/api/rooms/dev/members", Some(&server.token("dan").await), None)
        .await;
    assert_eq!(members["banned"], json!([]));
    // Unbanned, carol may join again.
    assert_eq!(
        change(&server, "ann", "dev", json!({"type": "unbanned", "user": "carol"})).await.0,
        201
    );
    assert_eq!(server.request("POST", "/api/rooms/dev/join", Some(&token), None).await.0, 204);
}
on_every_setup!(a_banned_person_is_out_everywhere);

/// Someone muted reads but cannot post or say they are typing; unmuted, they can.
async fn a_muted_person_reads_but_does_not_post(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("dev", "d").await;
    assert_eq!(change(&server, "ann", "dev", json!({"type": "muted", "user": "bob"})).await.0, 201);
    let token = server.token("bob").await;
    let (status, _) = server.request("GET", "/api/rooms/dev/messages", Some(&token), None).await;
    assert_eq!(status, 200, "muted people read");
    let (status, body) = server
        .request("POST", "/api/rooms/dev/messages", Some(&token), Some(&json!({"text": "hi"})))
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("you are muted in this room")));
    for frame in [
        "SEND\ndestination:/app/room.dev\n\nhello\0",
        "SEND\ndestination:/topic/room.dev\n\nhello\0",
        "SEND\ndestination:/app/room.dev\ncontent-type:application/json\n\n{\"type\":\"typing\"}\0",
    ] {
        let mut client = Client::connect(&server, "bob").await;
        client.send(frame).await;
        assert_eq!(client.expect_error().await, "you are muted in this room", "{frame}");
    }
    assert_eq!(
        change(&server, "ann", "dev", json!({"type": "unmuted", "user": "bob"})).await.0,
        201
    );
    bob.send("SEND\ndestination:/app/room.dev\nreceipt:b\n\nthanks\0").await;
    receipt(&mut bob, "b").await;
}
on_every_setup!(a_muted_person_reads_but_does_not_post);

/// The attempt list: what a member, a moderator and an outsider try, and what they get.
async fn attempts_above_ones_standing_are_refused(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    for user in ["mod", "mia", "max"] {
        assert_eq!(
            server
                .request("POST", "/api/rooms/dev/join", Some(&server.token(user).await), None)
                .await
                .0,
            204
        );
    }
    let promote = |user: &str| json!({"type": "role", "user": user, "role": "moderator"});
    // A member promoting themselves.
    let (status, body) = change(&server, "mia", "dev", promote("mia")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("only the owner may do that")));
    assert_eq!(change(&server, "ann", "dev", promote("mod")).await.0, 201);
    // A moderator banning the owner, or making someone a moderator.
    let (status, body) =
        change(&server, "mod", "dev", json!({"type": "banned", "user": "ann"})).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(change(&server, "mod", "dev", promote("mia")).await.0, 403);
    // A moderator banning a member: allowed; a member kicking: not.
    assert_eq!(
        change(&server, "max", "dev", json!({"type": "kicked", "user": "mia"})).await.0,
        403
    );
    assert_eq!(
        change(&server, "mod", "dev", json!({"type": "kicked", "user": "mia"})).await.0,
        201
    );
    // Asking for ownership as a role; handing ownership on; the old owner is a moderator.
    let (status, body) =
        change(&server, "ann", "dev", json!({"type": "role", "user": "mod", "role": "owner"}))
            .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(change(&server, "ann", "dev", json!({"type": "owner", "user": "mod"})).await.0, 201);
    let (_, members) = server
        .request("GET", "/api/rooms/dev/members", Some(&server.token("ann").await), None)
        .await;
    let roles: Vec<(String, String)> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
        .collect();
    assert!(
        roles.contains(&("ann".into(), "moderator".into()))
            && roles.contains(&("mod".into(), "owner".into())),
        "{roles:?}"
    );
    // Signed out, a forged token, bad input.
    let path = "/api/rooms/dev/changes";
    let archive = json!({"type": "archived"});
    assert_eq!(server.request("POST", path, None, Some(&archive)).await.0, 401);
    assert_eq!(server.request("POST", path, Some("forged"), Some(&archive)).await.0, 401);
    for bad in [
        json!({"type": "promoted"}),
        json!({"type": "banned"}),
        json!({"type": "banned", "user": "Not A Name"}),
        json!({"type": "topic", "topic": "x".repeat(251)}),
        json!({"type": "title", "title": "line\nbreak"}),
    ] {
        let (status, body) = change(&server, "mod", "dev", bad.clone()).await;
        assert!(matches!(status, 400 | 422), "{bad} → {status} {body}");
        assert!(body["error"].is_string());
    }
    assert_eq!(change(&server, "mod", "nowhere", archive.clone()).await.0, 404);
    assert_eq!(
        change(&server, "mod", "dev", json!({"type": "banned", "user": "nobody"})).await.0,
        403
    );
    // Archived: read-only for everyone, the owner included, until reopened.
    assert_eq!(change(&server, "mod", "dev", archive).await.0, 201);
    let (status, body) = server
        .request(
            "POST",
            "/api/rooms/dev/messages",
            Some(&server.token("mod").await),
            Some(&json!({"text": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("this room is archived: it is read-only"))
    );
    assert_eq!(change(&server, "mod", "dev", json!({"type": "unarchived"})).await.0, 201);
}
on_every_setup!(attempts_above_ones_standing_are_refused);

/// A moderator deletes any message, an author their own; the text is gone from history.
async fn deleted_messages_lose_their_text(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let bob = server.token("bob").await;
    let post = |text: &'static str| {
        let bob = bob.clone();
        let server = &server;
        async move {
            let (status, body) = server
                .request(
                    "POST",
                    "/api/rooms/dev/messages",
                    Some(&bob),
                    Some(&json!({"text": text})),
                )
                .await;
            assert_eq!(status, 201, "{body}");
            body["seq"].as_u64().unwrap()
        }
    };
    assert_eq!(server.request("POST", "/api/rooms/dev/join", Some(&bob), None).await.0, 204);
    let first = post("oops, a password").await;
    let second = post("fine").await;
    assert_eq!(
        change(&server, "bob", "dev", json!({"type": "deleted", "seq": first})).await.0,
        201
    );
    assert_eq!(
        change(&server, "carol", "dev", json!({"type": "deleted", "seq": second})).await.0,
        403
    );
    assert_eq!(
        change(&server, "ann", "dev", json!({"type": "deleted", "seq": second})).await.0,
        201
    );
    assert_eq!(
        change(&server, "ann", "dev", json!({"type": "deleted", "seq": second})).await.0,
        403,
        "once"
    );
    assert_eq!(change(&server, "ann", "dev", json!({"type": "deleted", "seq": 999})).await.0, 403);
    let (_, page) = server.request("GET", "/api/rooms/dev/messages", Some(&bob), None).await;
    let messages = page["messages"].as_array().unwrap();
    assert!(!page.to_string().contains("password"), "{page}");
    assert_eq!(
        (messages[0]["deleted"].as_bool(), messages[0]["text"].as_str()),
        (Some(true), Some(""))
    );
    // The deletions are entries of the stream (for those catching up), not lines to read.
    assert_eq!(messages.len(), 2, "{page}");
    let (_, every) =
        server.request("GET", "/api/rooms/dev/messages?after=0", Some(&bob), None).await;
    let texts: Vec<&str> =
        every["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert!(texts.contains(&"bob deleted a message"), "{every}");
}
on_every_setup!(deleted_messages_lose_their_text);

/// `--generic-topics off`: `/topic/<name>` is refused both ways; rooms still work.
#[tokio::test]
async fn generic_topics_can_be_switched_off() {
    let server = TestServer::start_with(|config| {
        config.generic_topics = backend::config::Switch::Off;
    })
    .await;
    for frame in [
        "SUBSCRIBE\nid:t\ndestination:/topic/prices\n\n\0",
        "SEND\ndestination:/topic/prices\n\n42\0",
    ] {
        let mut client = Client::connect(&server, "ann").await;
        client.send(frame).await;
        assert!(client.expect_error().await.contains("generic topics switched off"), "{frame}");
    }
    let mut client = Client::connect(&server, "ann").await;
    client.join("lobby", "l").await;
}
