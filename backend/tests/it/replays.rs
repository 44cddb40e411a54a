//! Replays under flow control: a client that never reads cannot make the server hold more
//! than its outbox (security review H2); a client in `ack:client` mode finishes any replay
//! by acknowledging as it goes (M11); one user's replays stall nobody else (M8).

use shared::chat::RoomEvent;

use crate::support::{Client, Event, Setup, TestServer};

/// Fills `room` with `n` messages of `size` characters, from one publisher.
async fn seed(server: &TestServer, room: &str, n: usize, size: usize) {
    let mut publisher = Client::connect(server, "seeder").await;
    let text = "x".repeat(size);
    for index in 0..n {
        publisher.send(&format!("SEND\ndestination:/app/room.{room}\n\n{index} {text}\0")).await;
        if index % 200 == 199 {
            publisher.drain_until_receipt(&format!("seeded-{index}")).await;
        }
    }
    publisher.drain_until_receipt("seeded").await;
}

/// The resident memory of this process, which runs the server, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn h2_replays_to_a_client_that_never_reads_hold_only_its_outbox() {
    let server = TestServer::start().await;
    server.create_room("seeder", "big").await;
    // 2,000 messages of 3,000 characters: a full replay is about 6 MB.
    seed(&server, "big", 2_000, 3_000).await;
    let mut bystander = Client::connect(&server, "bystander").await;
    bystander.join("lobby", "b").await;

    let before = rss_kib();
    let mut hoarder = Client::open_small_buffer(&server).await;
    hoarder
        .send(&format!(
            "CONNECT\naccept-version:1.2\nheart-beat:0,0\n{}\n\0",
            server.credentials("hoarder").await
        ))
        .await;
    assert_eq!(hoarder.recv().await.command.as_str(), "CONNECTED");
    // 256 subscriptions replaying everything: at 6 MB each, 1.5 GB if they were held.
    let subscribes: String = (0..256)
        .map(|n| format!("SUBSCRIBE\nid:s{n}\ndestination:/topic/room.big\nsince:0\n\n\0"))
        .collect();
    hoarder.send(&subscribes).await;
    // Give the replays every chance to pile up, while the bystander is served as usual.
    for round in 0..20 {
        let mut speaker = Client::connect(&server, "speaker").await;
        speaker
            .send(&format!("SEND\ndestination:/app/room.lobby\nreceipt:r\n\nround {round}\0"))
            .await;
        speaker.expect_receipt("r").await;
        loop {
            if let RoomEvent::Message(message) = bystander.expect_room_event().await
                && message.text == format!("round {round}")
            {
                break;
            }
        }
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 64, "the server grew by {grown_mib} MiB for a client that never reads");
    server.stop().await;
}

#[tokio::test]
async fn m11_a_client_ack_subscription_finishes_a_replay_longer_than_its_window() {
    let server = TestServer::start_with(|config| config.outbox_frames = 4096).await;
    // More messages than the 4,096 deliveries a session may leave unacknowledged.
    seed(&server, "lobby", 5_000, 10).await;
    let mut reader = Client::connect(&server, "reader").await;
    reader
        .send("SUBSCRIBE\nid:s\ndestination:/topic/room.lobby\nack:client\nsince:0\nreceipt:done\n\n\0")
        .await;
    let mut n_messages = 0;
    loop {
        let frame = reader.recv().await;
        match frame.command.as_str() {
            "MESSAGE" => {
                let event: RoomEvent = serde_json::from_slice(&frame.body).unwrap();
                if let RoomEvent::Message(_) = event {
                    n_messages += 1;
                    // Acknowledge cumulatively every hundred, as a careful client would.
                    if n_messages % 100 == 0 {
                        let ack = frame.headers.get("ack").unwrap();
                        reader.send(&format!("ACK\nid:{ack}\n\n\0")).await;
                    }
                }
            }
            "RECEIPT" => break,
            other => panic!("unexpected {other}: {frame:?}"),
        }
    }
    assert_eq!(n_messages, 5_000);
    server.stop().await;
}

async fn m8_replays_in_a_loop_stall_nobody(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("seeder", "big").await;
    seed(&server, "big", 1_000, 500).await;
    let mut churner = Client::connect(&server, "churner").await;
    let churn = tokio::spawn(async move {
        for round in 0..30 {
            let id = format!("c{round}");
            churner
                .send(&format!(
                    "SUBSCRIBE\nid:{id}\ndestination:/topic/room.big\nsince:0\n\n\0UNSUBSCRIBE\nid:{id}\n\n\0"
                ))
                .await;
        }
        churner
    });
    // Meanwhile others talk in the lobby, and every message is stored and acknowledged.
    let mut talker = Client::connect(&server, "talker").await;
    for n in 0..100 {
        talker.send(&format!("SEND\ndestination:/app/room.lobby\nreceipt:t{n}\n\nhi {n}\0")).await;
        talker.expect_receipt(&format!("t{n}")).await;
    }
    let mut churner = churn.await.unwrap();
    // The churner is still connected: its replays only waited for it.
    let rest = churner.drain_until_receipt("still-here").await;
    assert!(rest.iter().all(|frame| frame.command.as_str() == "MESSAGE"));
    assert!(!matches!(
        churner.next_event_within(std::time::Duration::ZERO).await,
        Some(Event::Closed)
    ));
    server.stop().await;
}

crate::on_every_setup!(m8_replays_in_a_loop_stall_nobody);
