//! Hostile clients, one test per finding of the security review at f917e37
//! (`shared/reviews/security-review-f917e37.md`), each driven by raw frames and HTTP
//! requests as the review describes. Where a finding is about others, the test also checks
//! that a well-behaved client on the same server loses nothing and stays connected.

use serde_json::json;
use shared::chat::{Notice, RoomEvent};

use crate::support::{Client, Event, PASSWORD, TestServer};

/// A client on the lobby that must keep everything: it reads a message sent after the
/// attack, so it is still connected and its stream still flows.
async fn still_served(server: &TestServer, bystander: &mut Client, marker: &str) {
    let mut speaker = Client::connect(server, "speaker").await;
    speaker.send(&format!("SEND\ndestination:/app/room.lobby\nreceipt:m\n\n{marker}\0")).await;
    speaker.expect_receipt("m").await;
    loop {
        if let RoomEvent::Message(message) = bystander.expect_room_event().await
            && message.text == marker
        {
            return;
        }
    }
}

// L1: a content-length near usize::MAX, before CONNECT.
#[tokio::test]
async fn l1_an_overflowing_content_length_is_an_error_not_a_panic() {
    let server = TestServer::start().await;
    for raw in [
        &b"CONNECT\ncontent-length:18446744073709551615\n\n"[..],
        b"SEND\nx:\0\ncontent-length:18446744073709551577\n\n",
    ] {
        let mut client = Client::open(&server).await;
        client.send_bytes(raw).await;
        client.expect_error_and_close("frame exceeds the limit of 65536 bytes").await;
    }
    server.stop().await;
}

// H3: a 1.9 MB user name on /api/login must never become a rate-limit key.
#[tokio::test]
async fn h3_login_names_are_checked_before_they_become_keys() {
    let server = TestServer::start().await;
    let long = "x".repeat(1 << 20);
    for n in 0..50 {
        let body = json!({"username": format!("{long}{n}"), "password": "x"});
        let (status, reply) = server.request("POST", "/api/login", None, Some(&body)).await;
        assert_eq!(
            (status, reply["error"].as_str().unwrap()),
            (400, "invalid user name: names have 1 to 32 characters")
        );
    }
    // Refused names do not count against the address either: a real login still works.
    server.token("ann").await;
    let right = json!({"username": "ann", "password": PASSWORD});
    assert_eq!(server.request("POST", "/api/login", None, Some(&right)).await.0, 200);
    server.stop().await;
}

// M4: failed logins slow down the name *from that address* only.
#[tokio::test]
async fn m4_failed_logins_do_not_lock_the_real_user_out() {
    let server = TestServer::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    server.token("ann").await;
    let wrong = json!({"username": "ann", "password": "wrong password"});
    let attacker = "198.51.100.7";
    for _ in 0..5 {
        assert_eq!(server.request_from(attacker, "POST", "/api/login", &wrong).await.0, 401);
    }
    let (status, head, body) = server.request_from(attacker, "POST", "/api/login", &wrong).await;
    assert_eq!(status, 429, "{body}");
    assert!(head.to_ascii_lowercase().contains("retry-after: "), "{head}");
    // The right password from the attacker's address waits too: no guessing through.
    let right = json!({"username": "ann", "password": PASSWORD});
    assert_eq!(server.request_from(attacker, "POST", "/api/login", &right).await.0, 429);
    // Ann, from her own address, signs in as always.
    assert_eq!(server.request_from("203.0.113.5", "POST", "/api/login", &right).await.0, 200);
    server.stop().await;
}

// H4: behind a trusted proxy, each client has its own per-address limit; the header is
// ignored from anyone else; IPv6 clients are counted by /64.
#[tokio::test]
async fn h4_the_address_limit_is_per_client_behind_a_trusted_proxy() {
    let server = TestServer::start_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let login = |n: usize| json!({"username": format!("nobody{n}"), "password": "wrong password"});
    for n in 0..30 {
        assert_eq!(
            server.request_from("198.51.100.1", "POST", "/api/login", &login(n)).await.0,
            401
        );
    }
    assert_eq!(server.request_from("198.51.100.1", "POST", "/api/login", &login(30)).await.0, 429);
    assert_eq!(server.request_from("198.51.100.2", "POST", "/api/login", &login(31)).await.0, 401);
    // One /64 is one client.
    for n in 0..30 {
        let address = format!("2001:db8:1:2::{n:x}");
        assert_eq!(server.request_from(&address, "POST", "/api/login", &login(n)).await.0, 401);
    }
    assert_eq!(
        server.request_from("2001:db8:1:2::ff", "POST", "/api/login", &login(99)).await.0,
        429
    );
    assert_eq!(
        server.request_from("2001:db8:1:3::1", "POST", "/api/login", &login(98)).await.0,
        401
    );
    server.stop().await;

    // Without --trusted-proxy the header is nobody's word: all of these come from 127.0.0.1.
    let server = TestServer::start().await;
    for n in 0..30 {
        let client = format!("198.51.100.{n}");
        assert_eq!(server.request_from(&client, "POST", "/api/login", &login(n)).await.0, 401);
    }
    assert_eq!(server.request_from("203.0.113.9", "POST", "/api/login", &login(30)).await.0, 429);
    server.stop().await;
}

// H5: transactions hold at most a budget of bytes per connection; chat SENDs are checked
// when enlisted.
#[tokio::test]
async fn h5_transactions_are_capped_in_bytes_and_checked_when_enlisted() {
    let server = TestServer::start().await;
    let mut bystander = Client::connect(&server, "bystander").await;
    bystander.join("lobby", "b").await;
    let mut client = Client::connect(&server, "hoarder").await;
    let body = "x".repeat(60_000);
    let mut refused = None;
    for t in 0..4 {
        client.send(&format!("BEGIN\ntransaction:t{t}\n\n\0")).await;
        for _ in 0..8 {
            client.send(&format!("SEND\ndestination:/topic/x\ntransaction:t{t}\n\n{body}\0")).await;
        }
    }
    while refused.is_none() {
        let frame = client.recv().await;
        if frame.command.as_str() == "ERROR" {
            refused = frame.headers.get("message").map(str::to_owned);
        }
    }
    assert_eq!(
        refused.as_deref(),
        Some("open transactions hold more than 1048576 bytes: commit or abort first")
    );
    client.expect_closed().await;

    let mut client = Client::connect(&server, "sloppy").await;
    client.send("BEGIN\ntransaction:t\n\n\0").await;
    client.send("SEND\ndestination:/app/room.lobby\ntransaction:t\nreceipt:r\n\n \0").await;
    assert_eq!(client.expect_error().await, "message is empty");
    still_served(&server, &mut bystander, "after h5").await;
    server.stop().await;
}

// M1: a typing flood is refused (notice, then ERROR) and does not cut the reader off.
#[tokio::test]
async fn m1_a_typing_flood_is_refused_and_the_reader_keeps_its_connection() {
    // The rates a real server runs with.
    let server = TestServer::start_with(|config| {
        let defaults = backend::Config::defaults();
        config.send_rate = defaults.send_rate;
        config.subscribe_rate = defaults.subscribe_rate;
        config.topic_rate = defaults.topic_rate;
        config.outbox_frames = 64;
    })
    .await;
    let mut victim = Client::connect(&server, "victim").await;
    victim.join("lobby", "v").await;
    let mut attacker = Client::connect(&server, "attacker").await;
    attacker.subscribe("/user/queue/notices", "n").await;
    let typing = "SEND\ndestination:/app/room.lobby\ncontent-type:application/json\n\n{\"type\":\"typing\"}\0";
    attacker.send(&typing.repeat(1500)).await;
    let mut notices = 0;
    let reason = loop {
        let frame = attacker.recv().await;
        match frame.command.as_str() {
            "MESSAGE" => {
                let notice: Notice = serde_json::from_slice(&frame.body).unwrap();
                assert!(
                    matches!(notice, Notice::RateLimited { retry_after_ms, .. } if retry_after_ms > 0)
                );
                notices += 1;
            }
            "ERROR" => break frame.headers.get("message").unwrap().to_owned(),
            other => panic!("unexpected {other}"),
        }
    };
    assert_eq!(reason, "rate limit exceeded: too many frames refused, slow down");
    assert!(notices >= 1, "a notice comes before the ERROR");
    // The victim got a handful of typing events, not 1,500, and is still connected.
    let frames = victim.drain_until_receipt("v1").await;
    assert!(frames.len() <= 10, "{} typing events reached the victim", frames.len());
    still_served(&server, &mut victim, "after m1").await;

    // Typing needs membership.
    server.create_room("owner", "quiet").await;
    let mut outsider = Client::connect(&server, "outsider").await;
    outsider
        .send("SEND\ndestination:/app/room.quiet\ncontent-type:application/json\n\n{\"type\":\"typing\"}\0")
        .await;
    outsider.expect_error_and_close("join the room first").await;
    server.stop().await;
}

// M1: chat messages over the rate get `rate_limited` with the SEND's receipt, no RECEIPT.
#[tokio::test]
async fn m1_messages_over_the_rate_are_told_when_to_retry() {
    let server = TestServer::start_with(|config| {
        config.send_rate = 1.0;
        config.send_burst = 5.0;
    })
    .await;
    let mut client = Client::connect(&server, "chatty").await;
    client.subscribe("/user/queue/notices", "n").await;
    for n in 0..8 {
        client.send(&format!("SEND\ndestination:/app/room.lobby\nreceipt:r{n}\n\nm{n}\0")).await;
    }
    let (mut receipts, mut limited) = (Vec::new(), Vec::new());
    while receipts.len() + limited.len() < 8 {
        let frame = client.recv().await;
        match frame.command.as_str() {
            "RECEIPT" => receipts.push(frame.headers.get("receipt-id").unwrap().to_owned()),
            "MESSAGE" => match serde_json::from_slice(&frame.body).unwrap() {
                Notice::RateLimited { receipt: Some(receipt), retry_after_ms } => {
                    assert!(retry_after_ms > 0 && retry_after_ms <= 1000);
                    limited.push(receipt);
                }
                other => panic!("unexpected {other:?}"),
            },
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(receipts, ["r0", "r1", "r2", "r3", "r4"]);
    assert_eq!(limited, ["r5", "r6", "r7"]);
    let page = server
        .request("GET", "/api/rooms/lobby/messages", Some(&server.token("chatty").await), None)
        .await
        .1;
    assert_eq!(page["messages"].as_array().unwrap().len(), 5, "refused messages are not stored");
    server.stop().await;
}

// M3: rooms per user are limited.
#[tokio::test]
async fn m3_rooms_per_user_are_limited() {
    let server = TestServer::start_with(|config| config.max_rooms_per_user = 3).await;
    let token = server.token("builder").await;
    for n in 0..3 {
        let body = json!({"name": format!("r{n}")});
        assert_eq!(server.request("POST", "/api/rooms", Some(&token), Some(&body)).await.0, 201);
    }
    let (status, body) =
        server.request("POST", "/api/rooms", Some(&token), Some(&json!({"name": "r3"}))).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (429, "you have created 3 rooms, the most one person may")
    );
    server.stop().await;
}

// M5: a socket that has not sent CONNECT in time is closed, whatever else it sends.
#[tokio::test]
async fn m5_a_socket_without_connect_is_closed_whatever_it_sends() {
    let server = TestServer::start_with(|config| config.connect_timeout_ms = 400).await;
    let mut client = Client::open(&server).await;
    // Bare EOLs every 50 ms, for up to 3 s: they must not move the deadline.
    let mut error = None;
    for _ in 0..60 {
        client.send("\n").await;
        match client.next_event_within(std::time::Duration::from_millis(50)).await {
            Some(Event::Frame(frame)) => {
                error = frame.headers.get("message").map(str::to_owned);
                client.expect_closed().await;
                break;
            }
            Some(Event::Closed) => break,
            Some(Event::HeartBeat) | None => {}
        }
    }
    assert_eq!(error.as_deref(), Some("timed out waiting for CONNECT"));
    server.stop().await;
}

// M5: connections are capped in total (503) and per address (429), at the upgrade.
#[tokio::test]
async fn m5_connection_caps_refuse_at_the_upgrade() {
    let server = TestServer::start_with(|config| {
        config.max_connections = 3;
        config.max_connections_per_address = 2;
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |address: &'static str| [("X-Forwarded-For", address)];
    let _a1 = Client::open_with_headers(&server, &from("198.51.100.1")).await.unwrap();
    let a2 = Client::open_with_headers(&server, &from("198.51.100.1")).await.unwrap();
    let refused = Client::open_with_headers(&server, &from("198.51.100.1")).await.err().unwrap();
    assert_http_status(&refused, 429);
    let _b1 = Client::open_with_headers(&server, &from("198.51.100.2")).await.unwrap();
    let refused = Client::open_with_headers(&server, &from("198.51.100.3")).await.err().unwrap();
    assert_http_status(&refused, 503);
    // A closed connection gives its slot back.
    drop(a2);
    crate::support::eventually(|| async {
        Client::open_with_headers(&server, &from("198.51.100.3")).await.ok()
    })
    .await;
    server.stop().await;
}

fn assert_http_status(error: &tokio_tungstenite::tungstenite::Error, status: u16) {
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status().as_u16(), status);
            let body = response.body().as_deref().unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert!(body["error"].is_string(), "{body}");
        }
        other => panic!("expected an HTTP refusal, got {other:?}"),
    }
}

// M7: DM idempotency keys are scoped to the recipient; an empty key is an ERROR.
#[tokio::test]
async fn m7_dm_keys_are_per_recipient_and_never_empty() {
    let server = TestServer::start().await;
    server.token("bob").await;
    let mut carl = Client::connect(&server, "carl").await;
    carl.subscribe("/user/queue/dm", "dm").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.send("SEND\ndestination:/app/dm.bob\nidempotency-key:1\nreceipt:a\n\nhi\0").await;
    ann.expect_receipt("a").await;
    ann.send("SEND\ndestination:/app/dm.carl\nidempotency-key:1\nreceipt:b\n\nhi\0").await;
    ann.expect_receipt("b").await;
    let (_, body) = carl.expect_message().await;
    let message: shared::chat::DirectMessage = serde_json::from_str(&body).unwrap();
    assert_eq!((message.from.as_str(), message.text.as_str()), ("ann", "hi"));
    ann.send("SEND\ndestination:/app/room.lobby\nidempotency-key:\n\nhi\0").await;
    ann.expect_error_and_close("idempotency-key must not be empty").await;
    server.stop().await;
}

// L5: ids of 2^63 and more are refused, not turned into internal errors.
#[tokio::test]
async fn l5_ids_beyond_2_to_the_63_are_refused() {
    let server = TestServer::start().await;
    let token = server.token("ann").await;
    let huge = u64::MAX;
    for path in [
        format!("/api/rooms/lobby/messages?before={huge}"),
        format!("/api/rooms/lobby/messages?after={huge}"),
    ] {
        let (status, body) = server.request("GET", &path, Some(&token), None).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    let (status, body) = server
        .request("POST", "/api/rooms/lobby/read", Some(&token), Some(&json!({"seq": huge})))
        .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "seq must be below 2^63"));
    let mut client = Client::connect(&server, "ann").await;
    client
        .send(&format!("SUBSCRIBE\nid:1\ndestination:/topic/room.lobby\nsince:{huge}\n\n\0"))
        .await;
    client
        .expect_error_and_close(&format!(
            "invalid since header \"{huge}\": expected the last seq you have, a number below 2^63"
        ))
        .await;
    server.stop().await;
}

// L13: control and direction-override characters in chat text are refused.
#[tokio::test]
async fn l13_control_and_bidi_characters_are_refused() {
    let server = TestServer::start().await;
    for (text, code) in [("\u{1}", "0001"), ("evil\u{202E}txt.exe", "202E")] {
        let mut client = Client::connect(&server, "spoofer").await;
        client.send(&format!("SEND\ndestination:/app/room.lobby\n\n{text}\0")).await;
        client
            .expect_error_and_close(&format!(
                "message contains control or direction-override characters (U+{code})"
            ))
            .await;
    }
    server.stop().await;
}

// L6: pages from other sites cannot open WebSockets; the page has a policy.
#[tokio::test]
async fn l6_cross_site_pages_cannot_open_websockets() {
    let server = TestServer::start_with(|config| {
        config.allowed_origins = vec!["https://chat.example.com".into()];
    })
    .await;
    let own = format!("http://{}", server.addr);
    for origin in [own.as_str(), "https://chat.example.com"] {
        assert!(
            Client::open_with_headers(&server, &[("Origin", origin)]).await.is_ok(),
            "{origin}"
        );
    }
    assert!(Client::open_with_headers(&server, &[]).await.is_ok(), "clients that are not browsers");
    for origin in ["http://evil.example", "null", "https://chat.example.com.evil.example"] {
        let refused = Client::open_with_headers(&server, &[("Origin", origin)]).await.err();
        assert_http_status(&refused.unwrap(), 403);
    }
    server.stop().await;
}

#[tokio::test]
async fn l6_the_page_is_served_with_a_content_security_policy() {
    let dist = tempfile::tempdir().unwrap();
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><script type=\"module\">import init from '/x.js'; init();</script>",
    )
    .unwrap();
    let static_dir = dist.path().to_owned();
    let server = TestServer::start_with(move |config| config.static_dir = static_dir).await;
    for path in ["/", "/index.html", "/some/client/route"] {
        let (status, head, _) = server.request_page(path).await;
        let head = head.to_ascii_lowercase();
        assert_eq!(status, 200, "{path}");
        assert!(head.contains("content-security-policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'sha256-"), "{head}");
        assert!(head.contains("frame-ancestors 'none'"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    }
    let (_, head, _) = server.request_with_headers("GET", "/api/rooms", None, None, "", &[]).await;
    assert!(head.to_ascii_lowercase().contains("x-content-type-options: nosniff"), "{head}");
    server.stop().await;
}

// L9: read markers only for people who exist.
#[tokio::test]
async fn l9_read_markers_need_a_real_peer() {
    let server = TestServer::start().await;
    let token = server.token("ann").await;
    let (status, body) = server
        .request("POST", "/api/dms/nobody/read", Some(&token), Some(&json!({"seq": 1})))
        .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "no user named \"nobody\""));
    server.stop().await;
}

// L8: generic topics pass headers on as they are: not control characters; topic names are
// bounded.
#[tokio::test]
async fn l8_topic_headers_and_names_are_checked() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "relay").await;
    client.send("SEND\ndestination:/topic/news\nx-note:bell\u{7}\n\nhi\0").await;
    client
        .expect_error_and_close("header \"x-note\" has a control character: it cannot be passed on")
        .await;
    let mut client = Client::connect(&server, "relay").await;
    let long = "t".repeat(129);
    client.send(&format!("SUBSCRIBE\nid:1\ndestination:/topic/{long}\n\n\0")).await;
    client.expect_error_and_close("topic names have at most 128 characters").await;
    server.stop().await;
}
