//! The soak scenario's background: around a fan-out of well-behaved subscribers and
//! publishers (which `scenario::fanout` measures as usual), connections that churn
//! (connect, subscribe, publish, drop) and one hostile client per finding of the security
//! review, each repeating its attack until the run ends; and a sample of the server's
//! memory and open files every few seconds.
//!
//! The hostile clients sign in as their own user, `hostile`, so that per-user rates hit
//! them, not the well-behaved. Every loop sleeps between rounds: the attack is the frames,
//! not the load generator burning its core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use shared::stomp::AckMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::conn;
use crate::server;

/// What runs beside the measured fan-out.
pub struct Background {
    stop: watch::Sender<bool>,
    counters: Vec<(&'static str, Arc<AtomicU64>)>,
    tasks: Vec<JoinHandle<()>>,
    sampler: JoinHandle<Vec<Value>>,
}

/// The password of the users the soak signs up.
const PASSWORD: &str = "bench password";

/// Starts the churn, the hostile clients and the sampler.
pub async fn start(
    urls: &[String],
    rooms: usize,
    churn: usize,
    hostile: bool,
    pids: Vec<u32>,
    sample_every: Duration,
) -> Result<Background> {
    let (stop, stopped) = watch::channel(false);
    let mut counters = Vec::new();
    let mut tasks = Vec::new();
    let mut counter = |name: &'static str| {
        let count = Arc::new(AtomicU64::new(0));
        counters.push((name, count.clone()));
        count
    };
    let url = urls[0].clone();
    let churn_token = conn::token(&url, "churner", PASSWORD).await?;
    let cycles = counter("churn_cycles");
    for index in 0..churn {
        let url = urls[index % urls.len()].clone();
        let (token, cycles, stopped) = (churn_token.clone(), cycles.clone(), stopped.clone());
        tasks.push(tokio::spawn(churner(url, token, index % rooms, cycles, stopped)));
    }
    if hostile {
        let token = conn::token(&url, "hostile", PASSWORD).await?;
        let attacks: [(&'static str, Attack); 8] = [
            ("h1_resubscribe_loops", Attack::Resubscribe),
            ("h2_never_reading_replays", Attack::NeverReads),
            ("h3_long_login_names", Attack::LongNames),
            ("h5_transaction_hoards", Attack::Hoard),
            ("m1_typing_floods", Attack::TypingFlood),
            ("m4_failed_logins", Attack::FailedLogins),
            ("m5_silent_sockets", Attack::Silent),
            ("l1_overflowing_lengths", Attack::Overflow),
        ];
        for (name, attack) in attacks {
            let count = counter(name);
            let (url, token, stopped) = (url.clone(), token.clone(), stopped.clone());
            tasks.push(tokio::spawn(attack_loop(attack, url, token, count, stopped)));
        }
    }
    let sampler = tokio::spawn(sample(pids, sample_every, stopped));
    Ok(Background { stop, counters, tasks, sampler })
}

impl Background {
    /// Stops everything and reports what it did and the samples.
    pub async fn finish(self) -> Value {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        let samples = self.sampler.await.unwrap_or_default();
        let counts: serde_json::Map<String, Value> = self
            .counters
            .iter()
            .map(|(name, count)| ((*name).to_owned(), json!(count.load(Ordering::Relaxed))))
            .collect();
        json!({ "background": counts, "samples": samples })
    }
}

/// Connect, subscribe (resuming), publish one message, drop the socket; again, every one
/// to four seconds.
async fn churner(
    url: String,
    token: String,
    room: usize,
    cycles: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut round = 0u64;
    while !*stopped.borrow() {
        round += 1;
        let cycle = async {
            let (mut writer, mut reader) = conn::connect(&url, "churner", Some(&token)).await?;
            let destination = format!("/topic/room.bench-{room}");
            writer.subscribe(&destination, AckMode::Auto, "s").await?;
            reader.receipt("s").await?;
            let body = format!("churn {round}");
            writer.publish(&format!("/app/room.bench-{room}"), body, Some("p".into())).await?;
            reader.receipt("p").await?;
            // Dropped without DISCONNECT, as a closed laptop would.
            anyhow::Ok(())
        };
        if cycle.await.is_ok() {
            cycles.fetch_add(1, Ordering::Relaxed);
        }
        let pause = Duration::from_millis(1000 + (round * 7919 + room as u64 * 104_729) % 3000);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// The hostile clients, one per finding.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// SUBSCRIBE with a full replay and UNSUBSCRIBE, in a loop (H1, M8).
    Resubscribe,
    /// 256 full replays on a socket that never reads (H2).
    NeverReads,
    /// Logins with a megabyte of name (H3).
    LongNames,
    /// Transactions filled with large frames, never committed (H5).
    Hoard,
    /// Thousands of typing events in one WebSocket message (M1).
    TypingFlood,
    /// Wrong passwords for one name (M4).
    FailedLogins,
    /// Sockets that never send CONNECT, only heart-beats (M5).
    Silent,
    /// A content-length near 2^64 before CONNECT (L1).
    Overflow,
}

async fn attack_loop(
    attack: Attack,
    url: String,
    token: String,
    count: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) {
    let pause = match attack {
        Attack::Resubscribe | Attack::FailedLogins | Attack::Overflow => 100,
        Attack::LongNames | Attack::TypingFlood => 250,
        Attack::NeverReads | Attack::Hoard | Attack::Silent => 1000,
    };
    while !*stopped.borrow() {
        if let Err(error) = round(attack, &url, &token, &mut stopped).await {
            // The server refusing an attack is the point; it is noted, not fatal.
            let _ = error;
        }
        count.fetch_add(1, Ordering::Relaxed);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(pause)) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// One round of an attack; an error is the server refusing it.
async fn round(
    attack: Attack,
    url: &str,
    token: &str,
    stopped: &mut watch::Receiver<bool>,
) -> Result<()> {
    match attack {
        Attack::Resubscribe => {
            let (mut writer, mut reader) = conn::connect(url, "hostile", Some(token)).await?;
            for round in 0..20 {
                writer
                    .send_raw(&format!(
                        "SUBSCRIBE\nid:r{round}\ndestination:/topic/room.bench-0\nsince:0\nreceipt:r{round}\n\n\0UNSUBSCRIBE\nid:r{round}\n\n\0"
                    ))
                    .await?;
                reader.receipt(&format!("r{round}")).await?;
            }
        }
        Attack::NeverReads => {
            let (mut writer, _reader) =
                conn::connect_with(url, "hostile", Some(token), Some(4096)).await?;
            let subscribes: String = (0..256)
                .map(|n| {
                    format!("SUBSCRIBE\nid:s{n}\ndestination:/topic/room.bench-0\nsince:0\n\n\0")
                })
                .collect();
            writer.send_raw(&subscribes).await?;
            // Hold it, never reading, for a while.
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(20)) => {}
                _ = stopped.changed() => {}
            }
        }
        Attack::LongNames => {
            let name = "x".repeat(1 << 20);
            let body = json!({ "username": name, "password": "x" }).to_string();
            http_post(url, "/api/login", &body).await?;
        }
        Attack::Hoard => {
            let (mut writer, mut reader) = conn::connect(url, "hostile", Some(token)).await?;
            let body = "h".repeat(60_000);
            for t in 0..4 {
                writer.send_raw(&format!("BEGIN\ntransaction:t{t}\n\n\0")).await?;
                for _ in 0..8 {
                    writer
                        .send_raw(&format!(
                            "SEND\ndestination:/topic/x\ntransaction:t{t}\n\n{body}\0"
                        ))
                        .await?;
                }
            }
            reader.receipt("never").await?;
        }
        Attack::TypingFlood => {
            let (mut writer, mut reader) = conn::connect(url, "hostile", Some(token)).await?;
            let typing = "SEND\ndestination:/app/room.bench-0\ncontent-type:application/json\n\n{\"type\":\"typing\"}\0";
            writer.send_raw(&typing.repeat(1500)).await?;
            reader.receipt("never").await?;
        }
        Attack::FailedLogins => {
            let body = json!({ "username": "bench", "password": "not the password" }).to_string();
            http_post(url, "/api/login", &body).await?;
        }
        Attack::Silent => {
            let mut ws = conn::open(url).await?;
            for _ in 0..15 {
                if ws.send(Message::text("\n")).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            while let Some(Ok(_)) = ws.next().await {}
        }
        Attack::Overflow => {
            let mut ws = conn::open(url).await?;
            ws.send(Message::text("CONNECT\ncontent-length:18446744073709551615\n\n")).await?;
            while let Some(Ok(_)) = ws.next().await {}
        }
    }
    Ok(())
}

async fn http_post(url: &str, path: &str, body: &str) -> Result<u16> {
    let host = url.split("://").nth(1).unwrap_or_default().split('/').next().unwrap_or_default();
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let status = String::from_utf8_lossy(&response).split(' ').nth(1).unwrap_or("0").parse()?;
    Ok(status)
}

/// The server's memory and open files, every `every`, until stopped.
async fn sample(pids: Vec<u32>, every: Duration, mut stopped: watch::Receiver<bool>) -> Vec<Value> {
    let started = tokio::time::Instant::now();
    let mut samples = Vec::new();
    loop {
        let reading = server::sample(&pids);
        let open_files: usize = pids
            .iter()
            .map(|pid| std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count))
            .sum();
        samples.push(json!({
            "at_s": started.elapsed().as_secs(),
            "rss_mib": (reading.rss_kib as f64 / 1024.0 * 10.0).round() / 10.0,
            "open_files": open_files,
        }));
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => return samples,
        }
    }
}
