//! `scroll_bench`: how the page copes with a long history. Seeds a room with 10,000
//! messages (a third formatted, a seventh replies, a fifth with reactions), opens it in
//! headless Chromium, scrolls to the top page by page until the whole history is loaded,
//! and reports the browser's long tasks (over 50 ms: a visible stall) while scrolling,
//! those of the page's start apart, and how long each page took. One JSON line. A
//! benchmark, run by `cargo xtask bench`; not a test.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use e2e::stomp::StompClient;
use e2e::{ChromeDriver, Confab, PASSWORD, register};
use shared::stomp::{ClientFrame, Headers};

const MESSAGES: usize = 10_000;

#[tokio::main]
async fn main() -> Result<()> {
    let confab = Confab::start(e2e::FAST_SEEDING).await?;
    let writer_token = register(confab.addr, "writer").await?;
    register(confab.addr, "reader").await?;
    let mut writer = StompClient::connect(&confab.ws_url(), "writer", &writer_token).await?;
    let seeding = Instant::now();
    // A working room, not plain lines: every third message formatted (bold, code, a link,
    // a mention), every seventh a reply, every fifth with reactions.
    let json = |body: serde_json::Value| ClientFrame::Send {
        destination: "/app/room.lobby".into(),
        transaction: None,
        receipt: None,
        headers: [("content-type", "application/json")].into_iter().collect::<Headers>(),
        body: bytes::Bytes::from(body.to_string()),
    };
    for n in 1..MESSAGES {
        let mut text = format!("history message number {n}, with a little text to wrap");
        if n % 3 == 0 {
            text.push_str(" and **bold** words, `some code`, https://example.com/docs and @reader");
        }
        let reply_to = (n % 7 == 0).then(|| n as u64 - 3);
        writer
            .send_frame(json(
                serde_json::json!({"type": "message", "text": text, "reply_to": reply_to}),
            ))
            .await?;
    }
    for n in (5..MESSAGES).step_by(5) {
        for emoji in ["👍", "🎉"] {
            let reaction =
                serde_json::json!({"type": "react", "seq": n, "emoji": emoji, "on": true});
            writer.send_frame(json(reaction)).await?;
        }
    }
    writer.say("/app/room.lobby", "the newest message", Some("last")).await?;
    let seeded_in = seeding.elapsed();

    let driver = ChromeDriver::start().await?;
    let browser = driver.browser().await?;
    browser.client.goto(&confab.url()).await?;
    browser.type_into("#username", "reader").await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#messages .message .text", "the newest message").await?;
    browser
        .client
        .execute(
            "window.__long = []; window.__since = performance.now(); new PerformanceObserver(list => { for (const e of list.getEntries()) window.__long.push([e.startTime - window.__since, e.duration]); }).observe({type: 'longtask', buffered: true}); return true;",
            vec![],
        )
        .await?;

    // How many messages are loaded: the oldest one on the page (message n of the seeded
    // history) tells, since only the pages near the view keep their lines in the document.
    let count = || async {
        let value = browser
            .client
            .execute(
                "const first = document.querySelector('#messages .message .text'); return first ? first.textContent : ''",
                vec![],
            )
            .await?;
        let text = value.as_str().context("a text")?;
        let oldest = text
            .strip_prefix("history message number ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<u64>().ok());
        anyhow::Ok(oldest.map_or(1, |n| MESSAGES as u64 - n + 1))
    };
    let mut page_times = Vec::new();
    let scrolling = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let before = count().await?;
        if before >= MESSAGES as u64 || Instant::now() > deadline {
            break;
        }
        let started = Instant::now();
        // Like a reader flicking to the top, again while the page loads.
        let to_top = "document.getElementById('messages').scrollTop = 0; return true;";
        browser.client.execute(to_top, vec![]).await?;
        let mut polls = 0;
        while count().await? == before && Instant::now() < deadline {
            polls += 1;
            if polls % 40 == 0 {
                browser.client.execute(to_top, vec![]).await?;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        page_times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let loaded = count().await?;
    // Long tasks as [start, duration]: those that started before scrolling (the page's
    // start, signing in, the first page) are reported apart.
    type Task = (f64, f64);
    let tasks: Vec<Task> =
        serde_json::from_value(browser.client.execute("return window.__long", vec![]).await?)?;
    let (long, at_start): (Vec<Task>, Vec<Task>) =
        tasks.into_iter().partition(|(start, _)| *start >= 0.0);
    let long: Vec<f64> = long.into_iter().map(|(_, duration)| duration).collect();
    eprintln!("long tasks while scrolling: {long:?}; before: {at_start:?}");
    page_times.sort_by(f64::total_cmp);
    let percentile = |q: f64| {
        page_times.get(((page_times.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0)
    };
    let result = serde_json::json!({
        "scenario": "scroll-history",
        "messages": MESSAGES,
        "loaded": loaded,
        "pages": page_times.len(),
        "seeded_in_s": seeded_in.as_secs_f64(),
        "scrolled_in_s": scrolling.elapsed().as_secs_f64(),
        "page_ms": { "p50": percentile(0.5), "p90": percentile(0.9), "max": percentile(1.0) },
        "long_tasks": { "count": long.len(), "max_ms": long.iter().copied().fold(0.0, f64::max), "total_ms": long.iter().sum::<f64>() },
        "long_tasks_at_start": { "count": at_start.len(), "max_ms": at_start.iter().map(|(_, d)| *d).fold(0.0, f64::max) },
    });
    println!("{result}");
    browser.close().await
}
