//! The three scenarios, and the JSON they report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use shared::stomp::{AckMode, ClientFrame, Command, Headers};
use tokio::sync::watch;
use tokio::time::Instant as TokioInstant;

use crate::conn::{self, Incoming, Reader, Writer};
use crate::payload::{self, now_us};
use crate::server;
use crate::stats::Tally;
use crate::{Ack, Mode, Options, Scenario};

/// Runs the scenario the options name.
pub async fn run(options: Options) -> Result<Value> {
    now_us();
    let passcode = match (&options.passcode, &options.password) {
        (Some(passcode), _) => Some(passcode.clone()),
        (None, Some(password)) => {
            Some(conn::token(&options.url[0], &options.login, password).await?)
        }
        (None, None) => None,
    };
    if options.mode == Mode::Chat
        && let Some(token) = &passcode
    {
        for room in 0..options.rooms {
            conn::create_room(&options.url[0], token, &format!("bench-{room}")).await?;
        }
    }
    let mut result = match options.scenario {
        Scenario::Fanout | Scenario::Soak => fanout(&options, passcode.as_deref()).await?,
        Scenario::ConnectStorm => connect_storm(&options, passcode.as_deref()).await?,
        Scenario::Idle => idle(&options, passcode.as_deref()).await?,
    };
    result["label"] = json!(options.label);
    Ok(result)
}

fn subscribe_destination(options: &Options, room: usize) -> String {
    match options.mode {
        Mode::Topic => format!("/topic/bench.{room}"),
        Mode::Chat => format!("/topic/room.bench-{room}"),
    }
}

fn publish_destination(options: &Options, room: usize) -> String {
    match options.mode {
        Mode::Topic => format!("/topic/bench.{room}"),
        Mode::Chat => format!("/app/room.bench-{room}"),
    }
}

fn ack_mode(ack: Ack) -> AckMode {
    match ack {
        Ack::Auto => AckMode::Auto,
        Ack::Client => AckMode::Client,
        Ack::ClientIndividual => AckMode::ClientIndividual,
    }
}

/// Opens `count` connections subscribed to room `index % rooms`, `concurrency` at a time.
/// Returns them and the connections per second achieved.
async fn open_subscribers(
    options: &Options,
    passcode: Option<&str>,
    count: usize,
) -> Result<(Vec<(usize, Writer, Reader)>, f64)> {
    let started = Instant::now();
    let opened: Vec<Result<(usize, Writer, Reader)>> = stream::iter(0..count)
        .map(|index| async move {
            let url = &options.url[index % options.url.len()];
            let (mut writer, mut reader) = conn::connect(url, &options.login, passcode).await?;
            let room = index % options.rooms;
            writer
                .subscribe(
                    &subscribe_destination(options, room),
                    ack_mode(options.ack),
                    "subscribed",
                )
                .await?;
            reader.receipt("subscribed").await?;
            Ok((room, writer, reader))
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    Ok((opened.into_iter().collect::<Result<Vec<_>>>()?, rate))
}

/// Subscribers read until told to stop, tallying what they get.
async fn subscriber(
    mut writer: Writer,
    mut reader: Reader,
    ack: Ack,
    window: (u64, u64),
    mut stop: watch::Receiver<bool>,
    delivered: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::default();
    let mut unacked = 0u32;
    let want_ack = ack != Ack::Auto;
    // One stop future for the whole loop: building a fresh one per message showed up in
    // the load generator's own profile.
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        let incoming = tokio::select! {
            biased;
            incoming = reader.next_fast(want_ack) => incoming,
            _ = &mut stopped => break,
        };
        let Ok(incoming) = incoming else { break };
        let (body, ack_id) = match incoming {
            Incoming::Message { body, ack } => (body, ack),
            Incoming::Other(frame) if frame.command == Command::Message => {
                let ack = frame.headers.get("ack").map(str::to_owned);
                (frame.body, ack)
            }
            Incoming::Other(frame) if frame.command == Command::Error => {
                tally.errors += 1;
                eprintln!("subscriber got ERROR: {:?}", frame.headers.get("message"));
                break;
            }
            Incoming::Other(_) => continue,
        };
        if let Some(stamp) = payload::decode(&body) {
            tally.record(stamp, now_us(), window.0, window.1);
            delivered.fetch_add(1, Ordering::Relaxed);
        }
        unacked += 1;
        let due = match ack {
            Ack::Auto => false,
            Ack::ClientIndividual => true,
            Ack::Client => unacked >= 16,
        };
        if due && let Some(id) = ack_id {
            unacked = 0;
            let ack = ClientFrame::Ack {
                nack: false,
                id,
                transaction: None,
                receipt: None,
                headers: Headers::new(),
            };
            if writer.send(ack).await.is_err() {
                break;
            }
        }
    }
    writer.close().await;
    tally
}

/// A publisher sends to its room until `end`, at its share of the rate (or closed loop).
/// Returns how many it sent in the measured window, the last sequence number, and ERRORs.
async fn publisher(
    options: Options,
    index: usize,
    mut writer: Writer,
    mut reader: Reader,
    start: TokioInstant,
    window: (u64, u64),
    end: TokioInstant,
) -> (u64, u64, u64) {
    let destination = publish_destination(&options, index % options.rooms);
    let per_publisher = options.rate / options.publishers.max(1) as f64;
    let interval = (per_publisher > 0.0).then(|| Duration::from_secs_f64(1.0 / per_publisher));
    let (mut seq, mut in_window, mut errors) = (0u64, 0u64, 0u64);
    // Spread the publishers' first sends over one interval.
    let offset = interval.map_or(Duration::ZERO, |every| {
        every.mul_f64(index as f64 / options.publishers.max(1) as f64)
    });
    let mut next = start + offset;
    loop {
        if let Some(every) = interval {
            tokio::time::sleep_until(next).await;
            next += every;
        }
        if TokioInstant::now() >= end {
            break;
        }
        seq += 1;
        let sent = now_us();
        let body = payload::encode(index, seq, sent, options.body_bytes);
        let receipt = interval.is_none().then(|| format!("r{seq}"));
        if writer.publish(&destination, body, receipt.clone()).await.is_err() {
            errors += 1;
            break;
        }
        if (window.0..window.1).contains(&sent) {
            in_window += 1;
        }
        if let Some(receipt) = receipt
            && reader.receipt(&receipt).await.is_err()
        {
            errors += 1;
            break;
        }
    }
    writer.close().await;
    (in_window, seq, errors)
}

fn percentiles(tally: &Tally) -> Value {
    let latency = &tally.latency;
    let ms = |value: u64| value as f64 / 1000.0;
    json!({
        "p50": ms(latency.value_at_quantile(0.50)),
        "p90": ms(latency.value_at_quantile(0.90)),
        "p99": ms(latency.value_at_quantile(0.99)),
        "p999": ms(latency.value_at_quantile(0.999)),
        "max": ms(latency.max()),
    })
}

async fn fanout(options: &Options, passcode: Option<&str>) -> Result<Value> {
    let (subscribers, connect_rate) =
        open_subscribers(options, passcode, options.connections).await?;
    let mut members = vec![0u64; options.rooms];
    for (room, _, _) in &subscribers {
        members[*room] += 1;
    }
    // Consumers that subscribe and then never read: the server must cut them off.
    let mut stalled = Vec::new();
    for index in 0..options.stalled {
        let url = &options.url[index % options.url.len()];
        let (mut writer, mut reader) =
            conn::connect_with(url, &options.login, passcode, Some(4096)).await?;
        writer
            .subscribe(
                &subscribe_destination(options, index % options.rooms),
                AckMode::Auto,
                "subscribed",
            )
            .await?;
        reader.receipt("subscribed").await?;
        stalled.push((writer, reader));
    }
    let mut publishers = Vec::new();
    for index in 0..options.publishers {
        let url = &options.url[index % options.url.len()];
        publishers.push(conn::connect(url, &options.login, passcode).await?);
    }
    let background = if options.scenario == Scenario::Soak {
        let every = Duration::from_secs_f64(options.sample_secs.max(1.0));
        let pids = options.server_pid.clone();
        Some(
            crate::soak::start(
                &options.url,
                options.rooms,
                options.churn,
                options.hostile,
                pids,
                every,
            )
            .await?,
        )
    } else {
        None
    };

    let warmup = Duration::from_secs_f64(options.warmup);
    let measured = Duration::from_secs_f64(options.duration);
    let start = TokioInstant::now();
    let from_us = now_us() + warmup.as_micros() as u64;
    let window = (from_us, from_us + measured.as_micros() as u64);
    let end = start + warmup + measured;

    let (stop_tx, stop_rx) = watch::channel(false);
    let delivered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    let mut subscriber_rooms = Vec::new();
    for (room, writer, reader) in subscribers {
        subscriber_rooms.push(room);
        readers.push(tokio::spawn(subscriber(
            writer,
            reader,
            options.ack,
            window,
            stop_rx.clone(),
            delivered.clone(),
        )));
    }
    let mut senders = Vec::new();
    for (index, (writer, reader)) in publishers.into_iter().enumerate() {
        senders.push(tokio::spawn(publisher(
            options.clone(),
            index,
            writer,
            reader,
            start,
            window,
            end,
        )));
    }
    let pids = options.server_pid.clone();
    let watched: Vec<(String, u32)> = options
        .watch
        .iter()
        .filter_map(|spec| {
            let (name, pid) = spec.split_once(':')?;
            Some((name.to_owned(), pid.parse().ok()?))
        })
        .collect();
    let watched_for_sampler = watched.clone();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep_until(start + warmup).await;
        let trees = |list: &[(String, u32)]| {
            list.iter().map(|(_, pid)| server::sample_tree(*pid)).collect::<Vec<_>>()
        };
        let before = (
            server::sample(&pids),
            server::sample(&[std::process::id()]),
            trees(&watched_for_sampler),
        );
        tokio::time::sleep_until(start + warmup + measured).await;
        let after = (
            server::sample(&pids),
            server::sample(&[std::process::id()]),
            trees(&watched_for_sampler),
        );
        (before, after)
    });

    let mut sent = Vec::new();
    for sender in senders {
        sent.push(sender.await?);
    }
    // Expected deliveries: every message to every subscriber of its room. Wait for them,
    // up to a few seconds, before counting what is missing.
    let expected: u64 = sent
        .iter()
        .enumerate()
        .map(|(index, (_, last, _))| last * members[index % options.rooms])
        .sum();
    let drain_until = TokioInstant::now() + Duration::from_secs(5);
    while delivered.load(Ordering::Relaxed) < expected && TokioInstant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(true);
    let ((before, own_before, watched_before), (after, own_after, watched_after)) = sampler.await?;
    let watched_cpu: serde_json::Map<String, Value> = watched
        .iter()
        .zip(watched_before.iter().zip(&watched_after))
        .map(|((name, _), (before, after))| {
            (name.clone(), json!({ "cpu_percent": server::cpu_percent(before, after) }))
        })
        .collect();
    let background = match background {
        Some(background) => Some(background.finish().await),
        None => None,
    };

    let mut total = Tally::default();
    let mut lost = 0;
    for (reader, room) in readers.into_iter().zip(subscriber_rooms) {
        let tally = reader.await?;
        for (index, (_, last, _)) in sent.iter().enumerate() {
            if index % options.rooms == room {
                lost += tally.lost_from(index, *last);
            }
        }
        total.absorb(&tally);
    }
    // Did the server close the stalled consumers? Read what reached them until the end.
    let mut stalled_closed = 0;
    for (writer, mut reader) in stalled {
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match reader.next_fast(false).await {
                    Ok(Incoming::Other(frame)) if frame.command == Command::Error => {}
                    Ok(_) => {}
                    Err(_) => return true,
                }
            }
        })
        .await
        .unwrap_or(false);
        stalled_closed += u64::from(closed);
        writer.close().await;
    }
    let sent_in_window: u64 = sent.iter().map(|(in_window, _, _)| in_window).sum();
    let publisher_errors: u64 = sent.iter().map(|(_, _, errors)| errors).sum();
    let mut result = json!({
        "scenario": if background.is_some() { "soak" } else { "fanout" },
        "mode": format!("{:?}", options.mode).to_lowercase(),
        "connections": options.connections,
        "rooms": options.rooms,
        "publishers": options.publishers,
        "target_rate": options.rate,
        "body_bytes": options.body_bytes,
        "ack": format!("{:?}", options.ack),
        "sent_per_sec": sent_in_window as f64 / options.duration,
        "deliveries_per_sec": total.measured as f64 / options.duration,
        "latency_ms": percentiles(&total),
        "lost": lost,
        "doubled": total.doubled,
        "reordered": total.reordered,
        "errors": total.errors + publisher_errors,
        "stalled": options.stalled,
        "stalled_closed_by_server": stalled_closed,
        "connect_per_sec": connect_rate,
        "server": {
            "rss_mib": after.rss_kib as f64 / 1024.0,
            "cpu_percent": server::cpu_percent(&before, &after),
        },
        "loadgen_cpu_percent": server::cpu_percent(&own_before, &own_after),
        "watched": watched_cpu,
    });
    if let Some(background) = background {
        result["churn"] = json!(options.churn);
        result["background"] = background["background"].clone();
        result["samples"] = background["samples"].clone();
    }
    Ok(result)
}

async fn connect_storm(options: &Options, passcode: Option<&str>) -> Result<Value> {
    let before = server::sample(&options.server_pid);
    let (connections, rate) = open_subscribers(options, passcode, options.connections).await?;
    let after = server::sample(&options.server_pid);
    let count = connections.len();
    for (_, writer, _) in connections {
        writer.close().await;
    }
    Ok(json!({
        "scenario": "connect-storm",
        "connections": count,
        "concurrency": options.concurrency,
        "connect_per_sec": rate,
        "server": { "rss_mib": after.rss_kib as f64 / 1024.0, "cpu_percent": server::cpu_percent(&before, &after) },
    }))
}

async fn idle(options: &Options, passcode: Option<&str>) -> Result<Value> {
    let before = server::sample(&options.server_pid);
    let (connections, rate) = open_subscribers(options, passcode, options.connections).await?;
    // Let the server settle (allocator, lazily grown buffers) before reading its memory.
    tokio::time::sleep(Duration::from_secs_f64(options.warmup.max(1.0))).await;
    let after = server::sample(&options.server_pid);
    let count = connections.len();
    let per_connection_kib =
        after.rss_kib.saturating_sub(before.rss_kib) as f64 / count.max(1) as f64;
    for (_, writer, _) in connections {
        writer.close().await;
    }
    Ok(json!({
        "scenario": "idle",
        "connections": count,
        "connect_per_sec": rate,
        "server": {
            "rss_before_mib": before.rss_kib as f64 / 1024.0,
            "rss_after_mib": after.rss_kib as f64 / 1024.0,
            "kib_per_connection": per_connection_kib,
        },
    }))
}
