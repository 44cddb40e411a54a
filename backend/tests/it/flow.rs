//! Delivery under load: publish order, and a consumer that stops reading.

use shared::chat::{DirectMessage, Notice, RoomEvent};

use crate::on_every_setup;
use crate::support::{Client, Event, Setup, TestServer};

#[tokio::test]
async fn each_publisher_is_delivered_in_publish_order() {
    let server = TestServer::start().await;
    let mut reader = Client::connect(&server, "reader").await;
    reader.subscribe("/topic/seq", "r").await;
    let mut publishers = Vec::new();
    for name in ["pub1", "pub2", "pub3"] {
        publishers.push((name, Client::connect(&server, name).await));
    }
    let n_messages = 300;
    let mut tasks = Vec::new();
    for (name, mut client) in publishers {
        tasks.push(tokio::spawn(async move {
            for n in 0..n_messages {
                client.send(&format!("SEND\ndestination:/topic/seq\n\n{name} {n}\0")).await;
            }
            client
        }));
    }
    let mut next_expected = std::collections::HashMap::new();
    for _ in 0..3 * n_messages {
        let (_, body) = reader.expect_message().await;
        let (name, n) = body.split_once(' ').unwrap();
        let expected = next_expected.entry(name.to_owned()).or_insert(0);
        assert_eq!(n.parse::<i32>().unwrap(), *expected, "out of order for {name}");
        *expected += 1;
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert!(next_expected.values().all(|&n| n == n_messages));
    server.stop().await;
}

#[tokio::test]
async fn a_consumer_that_stops_reading_is_disconnected_and_the_rest_go_on() {
    let server = TestServer::start_with(|config| config.outbox_frames = 8).await;
    let mut slow = Client::open_small_buffer(&server).await;
    slow.send(&format!("CONNECT\naccept-version:1.2\n{}\n\0", server.credentials("slow").await))
        .await;
    slow.recv().await;
    slow.subscribe("/topic/firehose", "s").await;
    let mut fast = Client::connect(&server, "fast").await;
    fast.subscribe("/topic/firehose", "f").await;
    let mut publisher = Client::connect(&server, "publisher").await;

    // The slow client reads nothing while 8 MB go out; the fast one keeps up.
    let body = "x".repeat(16 * 1024);
    let n_messages = 512;
    for n in 0..n_messages {
        publisher.send(&format!("SEND\ndestination:/topic/firehose\n\n{n} {body}\0")).await;
        let (_, received) = fast.expect_message().await;
        assert!(received.starts_with(&format!("{n} ")));
    }

    // Now the slow client reads what reached it: fewer messages than were sent, then the end.
    let mut n_received = 0;
    loop {
        match slow.next_event().await {
            Event::Frame(frame) if frame.command.as_str() == "MESSAGE" => n_received += 1,
            Event::Frame(frame) => {
                assert_eq!(frame.command.as_str(), "ERROR");
                assert_eq!(
                    frame.headers.get("message"),
                    Some("slow consumer: too many frames queued for this connection")
                );
            }
            Event::HeartBeat => {}
            Event::Closed => break,
        }
    }
    assert!(n_received < n_messages, "the slow consumer was cut off ({n_received} received)");

    // The publisher and the fast subscriber are untouched.
    publisher.send("SEND\ndestination:/topic/firehose\n\nafter\0").await;
    assert_eq!(fast.expect_message().await.1, "after");
    server.stop().await;
}

/// Frames that arrive together are handled together: a run of SENDs goes to the store
/// without waiting for one commit each. Order, receipts and history must not show it.
async fn a_burst_of_sends_is_stored_and_receipted_in_order(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let mut reader = Client::connect(&server, "reader").await;
    reader.join("lobby", "r").await;
    reader.subscribe("/user/queue/dm", "dm").await;
    let mut writer = Client::connect(&server, "writer").await;
    let n_messages = 200;
    let mut burst = String::new();
    for n in 0..n_messages {
        if n % 10 == 5 {
            burst.push_str(&format!("SEND\ndestination:/app/dm.reader\nreceipt:r{n}\n\ndm {n}\0"));
        } else {
            burst.push_str(&format!("SEND\ndestination:/app/room.lobby\nreceipt:r{n}\n\nm{n}\0"));
        }
    }
    // One WebSocket message: every frame is there at once.
    writer.send(&burst).await;
    let mut receipted = Vec::new();
    while receipted.len() < n_messages {
        let frame = writer.recv().await;
        assert_eq!(frame.command.as_str(), "RECEIPT", "{frame:?}");
        receipted.push(frame.headers.get("receipt-id").unwrap().to_owned());
    }
    let expected: Vec<String> = (0..n_messages).map(|n| format!("r{n}")).collect();
    assert_eq!(receipted, expected, "receipts come in the order of the frames");

    let (mut room, mut dms) = (Vec::new(), Vec::new());
    while room.len() + dms.len() < n_messages {
        let (frame, body) = reader.expect_message().await;
        match frame.headers.get("subscription") {
            Some("r") => match serde_json::from_str(&body).unwrap() {
                RoomEvent::Message(message) => room.push((message.seq, message.text)),
                other => panic!("expected a message, got {other:?}"),
            },
            _ => {
                let dm: DirectMessage = serde_json::from_str(&body).unwrap();
                dms.push((dm.seq, dm.text));
            }
        }
    }
    let expected_room: Vec<(u64, String)> = (0..n_messages)
        .filter(|n| n % 10 != 5)
        .enumerate()
        .map(|(i, n)| (i as u64 + 1, format!("m{n}")))
        .collect();
    assert_eq!(room, expected_room, "stored and delivered in the order sent, ids in order");
    let expected_dms: Vec<(u64, String)> = (0..n_messages)
        .filter(|n| n % 10 == 5)
        .enumerate()
        .map(|(i, n)| (i as u64 + 1, format!("dm {n}")))
        .collect();
    assert_eq!(dms, expected_dms);
    server.stop().await;
}

on_every_setup!(a_burst_of_sends_is_stored_and_receipted_in_order);

#[tokio::test]
async fn in_a_burst_a_refused_frame_ends_the_session_after_the_frames_before_it() {
    let server = TestServer::start().await;
    server.token("reader").await;
    let mut writer = Client::connect(&server, "writer").await;
    writer.join("lobby", "l").await;
    writer.subscribe("/user/queue/notices", "n").await;
    writer
        .send(concat!(
            "SEND\ndestination:/app/room.lobby\nreceipt:r1\n\none\0",
            // Typing and a DM to nobody are answered in their place.
            "SEND\ndestination:/app/room.lobby\ncontent-type:application/json\nreceipt:r2\n\n{\"type\":\"typing\"}\0",
            "SEND\ndestination:/app/dm.nobody\nreceipt:r3\n\nhello?\0",
            "SEND\ndestination:/app/room.lobby\nreceipt:r4\n\ntwo\0",
            "SEND\ndestination:/app/room.lobby\nreceipt:r5\n\nbell\u{7}\0",
            "SEND\ndestination:/app/room.lobby\nreceipt:r6\n\nnever\0",
        ))
        .await;
    let mut seen = Vec::new();
    loop {
        match writer.next_event().await {
            Event::Frame(frame) => match frame.command.as_str() {
                "RECEIPT" => seen.push(frame.headers.get("receipt-id").unwrap().to_owned()),
                "MESSAGE" if frame.headers.get("subscription") == Some("n") => {
                    let notice: Notice = serde_json::from_slice(&frame.body).unwrap();
                    seen.push(format!("{notice:?}"));
                }
                // The writer's own messages in the lobby.
                "MESSAGE" => {}
                "ERROR" => seen.push(format!("ERROR {}", frame.headers.get("receipt-id").unwrap())),
                other => panic!("unexpected {other}"),
            },
            Event::HeartBeat => {}
            Event::Closed => break,
        }
    }
    let no_such_user = format!("{:?}", Notice::NoSuchUser { user: "nobody".into() });
    assert_eq!(seen, ["r1", "r2", no_such_user.as_str(), "r4", "ERROR r5"]);

    let token = server.token("reader").await;
    let (status, page) =
        server.request("GET", "/api/rooms/lobby/messages", Some(&token), None).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["one", "two"], "nothing after the refused frame is stored");
    server.stop().await;
}
