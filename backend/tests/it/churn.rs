//! A subscriber's live stream is gap-free and exactly-once, in id order, whatever other
//! clients do: here another client on the same node re-subscribes to the room, with a full
//! replay, in a loop while messages are published (security review H1).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use shared::chat::RoomEvent;

use crate::support::{Client, Setup, TestServer};

const N_MESSAGES: u64 = 300;

async fn resubscribing_does_not_cost_others_a_message(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let mut watcher = Client::connect(&server, "watcher").await;
    watcher.join("lobby", "w").await;
    let mut churner = Client::connect(&server, "churner").await;
    let mut publisher = Client::connect(&server, "publisher").await;

    let publishing = Arc::new(AtomicBool::new(true));
    let n_resubscribes = Arc::new(AtomicUsize::new(0));
    let churn = {
        let publishing = publishing.clone();
        let n_resubscribes = n_resubscribes.clone();
        tokio::spawn(async move {
            let mut round = 0;
            while publishing.load(Ordering::Relaxed) || round < 3 {
                let id = format!("c{round}");
                // Frames of the previous round may still arrive: read up to the receipt.
                churner
                    .send(&format!(
                        "SUBSCRIBE\nid:{id}\ndestination:/topic/room.lobby\nsince:0\nreceipt:{id}\n\n\0"
                    ))
                    .await;
                while churner.recv().await.headers.get("receipt-id") != Some(id.as_str()) {}
                churner.send(&format!("UNSUBSCRIBE\nid:{id}\n\n\0")).await;
                round += 1;
                n_resubscribes.store(round, Ordering::Relaxed);
            }
        })
    };
    for n in 1..=N_MESSAGES {
        let receipt = if n == N_MESSAGES { "receipt:last\n" } else { "" };
        publisher
            .send(&format!("SEND\ndestination:/app/room.lobby\n{receipt}\nmessage {n}\0"))
            .await;
        if n % 20 == 0 {
            tokio::task::yield_now().await;
        }
    }
    publisher.expect_receipt("last").await;
    publishing.store(false, Ordering::Relaxed);
    churn.await.unwrap();

    let mut seqs = Vec::new();
    while seqs.last() != Some(&N_MESSAGES) {
        match watcher.expect_room_event().await {
            RoomEvent::Message(message) => seqs.push(message.seq),
            RoomEvent::Joined { .. } | RoomEvent::Left { .. } | RoomEvent::Typing { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let expected: Vec<u64> = (1..=N_MESSAGES).collect();
    assert_eq!(seqs, expected, "every message once, in order, on {setup:?}");
    assert!(n_resubscribes.load(Ordering::Relaxed) >= 3);
    // Nothing more is queued: no message came twice.
    let rest = watcher.drain_until_receipt("end").await;
    assert!(
        rest.iter().all(|frame| {
            !matches!(serde_json::from_slice(&frame.body), Ok(RoomEvent::Message(_)))
        }),
        "a message came twice: {rest:?}"
    );
    server.stop().await;
}

crate::on_every_setup!(resubscribing_does_not_cost_others_a_message);
