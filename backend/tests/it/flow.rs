//! Delivery under load: publish order, and a consumer that stops reading.

use crate::support::{Client, Event, TestServer};

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
