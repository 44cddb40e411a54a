//! SIGTERM while a thousand connections publish: after a restart every message that got a
//! RECEIPT is in the history, and readers that resume see each message once.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::stomp::StompClient;
use e2e::{Confab, http_json, register};
use shared::chat::RoomEvent;

const PUBLISHERS: usize = 1000;
const USERS: usize = 10;
const READERS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_keeps_every_receipted_message_and_doubles_none() -> Result<()> {
    let flags = [e2e::FAST_SEEDING, &["--max-connections-per-address", "0"]].concat();
    let mut confab = Confab::start(&flags).await?;
    let mut tokens = Vec::new();
    for user in 0..USERS {
        tokens.push(register(confab.addr, &format!("pub{user}")).await?);
    }
    let reader_token = register(confab.addr, "reader").await?;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut reader = StompClient::connect(&confab.ws_url(), "reader", &reader_token).await?;
        reader.subscribe("/topic/room.lobby", "lobby", &[]).await?;
        readers.push(reader);
    }
    // What the readers see until the server goes away.
    let mut watching = Vec::new();
    for mut reader in readers {
        watching.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Ok(body) = reader.next_body().await {
                if let Ok(RoomEvent::Message(message)) = serde_json::from_slice(&body) {
                    seen.push((message.seq, message.text));
                }
            }
            seen
        }));
    }
    let receipted = Arc::new(Mutex::new(Vec::new()));
    let mut publishers = Vec::new();
    for index in 0..PUBLISHERS {
        let user = format!("pub{}", index % USERS);
        let token = tokens[index % USERS].clone();
        let url = confab.ws_url();
        let receipted = receipted.clone();
        publishers.push(tokio::spawn(async move {
            let Ok(mut client) = StompClient::connect(&url, &user, &token).await else { return };
            for n in 0.. {
                let text = format!("{index}-{n}");
                if client.say("/app/room.lobby", &text, Some(&text)).await.is_err() {
                    return;
                }
                receipted.lock().unwrap_or_else(PoisonError::into_inner).push(text);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    e2e::eventually("a thousand receipts", || async {
        let n = receipted.lock().unwrap_or_else(PoisonError::into_inner).len();
        Ok((n >= PUBLISHERS).then_some(()))
    })
    .await?;
    let status = confab.terminate().await?;
    ensure!(status.success(), "confab exits cleanly on SIGTERM: {status}");
    for publisher in publishers {
        publisher.await?;
    }
    let mut seen_before = Vec::new();
    for watcher in watching {
        seen_before.push(watcher.await?);
    }
    let receipted = receipted.lock().unwrap_or_else(PoisonError::into_inner).clone();

    confab.start_again().await?;
    // Every message that got a RECEIPT is in the history.
    let mut stored = BTreeMap::new();
    loop {
        let path = format!("/api/rooms/lobby/messages?after={}&limit=200", stored.len());
        let (status, page) =
            http_json(confab.addr, "GET", &path, Some(&reader_token), None).await?;
        ensure!(status == 200, "{page}");
        for message in page["messages"].as_array().into_iter().flatten() {
            let seq = message["seq"].as_u64().unwrap_or(0);
            stored.insert(seq, message["text"].as_str().unwrap_or_default().to_owned());
        }
        if page["more"] != true {
            break;
        }
    }
    ensure!(stored.keys().copied().eq(1..=stored.len() as u64), "ids without gaps");
    let stored_texts: HashSet<&String> = stored.values().collect();
    let missing = receipted.iter().filter(|text| !stored_texts.contains(text)).count();
    ensure!(missing == 0, "{missing} of {} receipted messages are not stored", receipted.len());

    // Each reader resumes from the last message it had and sees every message once.
    for seen in seen_before {
        let last = seen.last().map_or(0, |(seq, _)| *seq);
        let mut reader = StompClient::connect(&confab.ws_url(), "reader", &reader_token).await?;
        let since = last.to_string();
        let replayed = reader.subscribe("/topic/room.lobby", "lobby", &[("since", &since)]).await?;
        let mut all = seen.clone();
        for body in replayed {
            if let Ok(RoomEvent::Message(message)) = serde_json::from_slice(&body) {
                all.push((message.seq, message.text));
            }
        }
        let seqs: Vec<u64> = all.iter().map(|(seq, _)| *seq).collect();
        let first = seqs.first().copied().unwrap_or(1);
        ensure!(
            seqs.iter().copied().eq(first..first + seqs.len() as u64),
            "each message once, in order, across the restart"
        );
        ensure!(seqs.last().copied() == stored.keys().last().copied(), "and up to the last");
    }
    Ok(())
}
