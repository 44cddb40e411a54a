//! `/metrics` on `--metrics-listen`, scraped during a chat: the counters move with what
//! happens, and the metrics are not on the public port.

use std::collections::HashMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use e2e::stomp::StompClient;
use e2e::{Confab, free_port, http_get, http_json, register};
use serde_json::json;

/// Every sample of a scrape, by its name with labels.
async fn scrape(addr: SocketAddr) -> Result<HashMap<String, f64>> {
    let text = http_get(addr, "/metrics").await?;
    ensure!(text.trim_end().ends_with("# EOF"), "a whole OpenMetrics exposition:\n{text}");
    let mut samples = HashMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#') && !line.is_empty()) {
        let (name, value) = line.rsplit_once(' ').context("a sample has a value")?;
        samples.insert(name.to_owned(), value.parse::<f64>().context("a number")?);
    }
    Ok(samples)
}

fn value(samples: &HashMap<String, f64>, name: &str) -> f64 {
    samples.get(name).copied().unwrap_or(f64::NAN)
}

#[tokio::test]
async fn metrics_move_with_a_chat_and_stay_off_the_public_port() -> Result<()> {
    let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let listen = metrics.to_string();
    let flags = ["--metrics-listen", &listen, "--send-rate", "0.5", "--send-burst", "3"];
    let server = Confab::start(&flags).await?;
    let before = scrape(metrics).await?;
    for name in [
        "confab_connections{endpoint=\"stomp\"}",
        "confab_subscriptions",
        "confab_frames_received_total{command=\"SEND\"}",
        "confab_frames_sent_total{command=\"MESSAGE\"}",
        "confab_deliveries_total",
        "confab_messages_stored_total{kind=\"room\"}",
        "confab_messages_stored_total{kind=\"dm\"}",
        "confab_rate_limited_total{limit=\"send\"}",
        "confab_auth_failures_total{kind=\"password\"}",
        "confab_auth_failures_total{kind=\"token\"}",
        "confab_store_write_seconds_count",
        "confab_delivery_seconds_count",
        "confab_slow_consumer_disconnects_total",
        "confab_bus_errors_total",
    ] {
        ensure!(value(&before, name) == 0.0, "{name} starts at 0: {:?}", before.get(name));
    }

    let (ann, bob) = (register(server.addr, "ann").await?, register(server.addr, "bob").await?);
    let mut ann_stomp = StompClient::connect(&server.ws_url(), "ann", &ann).await?;
    let mut bob_stomp = StompClient::connect(&server.ws_url(), "bob", &bob).await?;
    bob_stomp.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    ann_stomp.say("/app/room.lobby", "one", Some("k1")).await?;
    ann_stomp.say("/app/room.lobby", "two", Some("k2")).await?;
    ann_stomp.say("/app/dm.bob", "psst", Some("k3")).await?;
    // Over the rate (three at once, then half a message a second): a notice, no RECEIPT.
    ann_stomp
        .send_json("/app/room.lobby", &json!({"type": "message", "text": "three"}).to_string())
        .await?;
    let wrong = json!({"username": "ann", "password": "not her password"});
    let (status, _) = http_json(server.addr, "POST", "/api/login", None, Some(&wrong)).await?;
    ensure!(status == 401);
    ensure!(StompClient::connect(&server.ws_url(), "ann", "forged").await.is_err());

    let during = e2e::eventually("the chat in the metrics", || async {
        let now = scrape(metrics).await?;
        let grew = |name: &str, by: f64| value(&now, name) - value(&before, name) >= by;
        Ok((grew("confab_frames_received_total{command=\"SEND\"}", 4.0)
            && grew("confab_frames_sent_total{command=\"MESSAGE\"}", 2.0)
            && grew("confab_frames_sent_total{command=\"RECEIPT\"}", 3.0)
            && grew("confab_frames_sent_total{command=\"CONNECTED\"}", 2.0)
            && grew("confab_deliveries_total", 2.0)
            && grew("confab_messages_stored_total{kind=\"room\"}", 2.0)
            && grew("confab_messages_stored_total{kind=\"dm\"}", 1.0)
            && grew("confab_rate_limited_total{limit=\"send\"}", 1.0)
            && grew("confab_auth_failures_total{kind=\"password\"}", 1.0)
            && grew("confab_auth_failures_total{kind=\"token\"}", 1.0)
            && grew("confab_store_write_seconds_count", 3.0)
            && grew("confab_delivery_seconds_count", 2.0))
        .then_some(now))
    })
    .await?;
    ensure!(value(&during, "confab_subscriptions") >= 1.0);
    // Ann's and Bob's sessions; the forged CONNECT's socket closes after its ERROR.
    e2e::eventually("two open connections", || async {
        let now = scrape(metrics).await?;
        Ok((value(&now, "confab_connections{endpoint=\"stomp\"}") == 2.0).then_some(()))
    })
    .await?;
    ensure!(value(&during, "confab_delivery_seconds_bucket{le=\"+Inf\"}") >= 2.0);

    // Gauges come down when people leave.
    drop((ann_stomp, bob_stomp));
    e2e::eventually("connections closed", || async {
        let now = scrape(metrics).await?;
        Ok((value(&now, "confab_connections{endpoint=\"stomp\"}") == 0.0
            && value(&now, "confab_subscriptions") == 0.0)
            .then_some(()))
    })
    .await?;

    // Not on the public port; and only /metrics on the metrics port.
    let public = http_get(server.addr, "/metrics").await?;
    ensure!(!public.contains("confab_frames"), "metrics leak on the public port");
    let (status, body) = http_json(metrics, "GET", "/api/rooms", None, None).await?;
    ensure!(status == 404 && body["error"].is_string(), "{status} {body}");
    Ok(())
}
