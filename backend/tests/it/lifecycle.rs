//! Sessions and the server over time: signing out ends live sessions (security review M10),
//! a full store refuses messages and reports not ready (L2), and shutdown is bounded even
//! with a request that never finishes (L12).

use serde_json::json;
use shared::chat::Notice;
use tokio::io::AsyncWriteExt;

use crate::support::{Client, Event, Setup, TestServer};

async fn m10_signing_out_ends_the_tokens_live_sessions(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let token = server.token("ann").await;
    let mut first = Client::connect(&server, "ann").await;
    first.join("lobby", "l").await;
    // A second sign-in of the same person, with its own token, is not affected.
    let credentials = json!({"username": "ann", "password": crate::support::PASSWORD});
    let (status, body) = server.request("POST", "/api/login", None, Some(&credentials)).await;
    assert_eq!(status, 200);
    let other_token = body["token"].as_str().unwrap().to_owned();
    let mut other = Client::open(&server).await;
    other
        .send(&format!("CONNECT\naccept-version:1.2\nlogin:ann\npasscode:{other_token}\n\n\0"))
        .await;
    assert_eq!(other.recv().await.command.as_str(), "CONNECTED");

    let (status, _) = server.request("POST", "/api/logout", Some(&token), None).await;
    assert_eq!(status, 204);
    assert_eq!(first.expect_error().await, "signed out: this session has ended");
    first.expect_closed().await;
    // The token is dead everywhere: a new CONNECT with it fails, and HTTP refuses it.
    let mut again = Client::open(&server).await;
    again.send(&format!("CONNECT\naccept-version:1.2\nlogin:ann\npasscode:{token}\n\n\0")).await;
    assert_eq!(again.expect_error().await, "authentication failed");
    let (status, _) = server.request("GET", "/api/rooms", Some(&token), None).await;
    assert_eq!(status, 401);
    // The other session goes on.
    other.send("SEND\ndestination:/app/room.lobby\nreceipt:r\n\nstill here\0").await;
    other.expect_receipt("r").await;
    server.stop().await;
}

crate::on_every_setup!(m10_signing_out_ends_the_tokens_live_sessions);

#[tokio::test]
async fn m10_tokens_expire() {
    let server = TestServer::start_with(|config| config.session_days = 0).await;
    let token = server.token("ann").await;
    let (status, body) = server.request("GET", "/api/rooms", Some(&token), None).await;
    assert_eq!(status, 401, "a token of zero days is expired at once: {body}");
    server.stop().await;
}

#[tokio::test]
async fn l2_a_full_store_refuses_messages_and_reports_not_ready() {
    let server = TestServer::start_with(|config| config.store_max_mb = Some(1)).await;
    let mut writer = Client::connect(&server, "writer").await;
    writer.subscribe("/user/queue/notices", "n").await;
    let text = "y".repeat(3_900);
    let mut refused = None;
    for n in 0..2_000 {
        writer
            .send(&format!("SEND\ndestination:/app/room.lobby\nreceipt:w{n}\n\n{n} {text}\0"))
            .await;
        let frame = writer.recv().await;
        match frame.command.as_str() {
            "RECEIPT" => {}
            "MESSAGE" => {
                refused = Some(serde_json::from_slice::<Notice>(&frame.body).unwrap());
                break;
            }
            other => panic!("unexpected {other}: {frame:?}"),
        }
    }
    let Some(Notice::NotAccepted { receipt, reason }) = refused else {
        panic!("the store never filled up: {refused:?}");
    };
    assert!(receipt.is_some_and(|receipt| receipt.starts_with('w')));
    assert_eq!(reason, "not accepted: the message store is unavailable, try again");
    let (status, body) = server.request("GET", "/readyz", None, None).await;
    assert_eq!(status, 503, "{body}");
    // Nothing was lost or corrupted: everything that got a RECEIPT reads back.
    let token = server.token("writer").await;
    let (status, page) =
        server.request("GET", "/api/rooms/lobby/messages?limit=1", Some(&token), None).await;
    assert_eq!(status, 200);
    assert!(page["messages"][0]["text"].as_str().unwrap().ends_with(&text));
    server.stop().await;
}

#[tokio::test]
async fn l12_shutdown_does_not_wait_for_a_request_that_never_ends() {
    let server = TestServer::start().await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut client = Client::connect(&server, "ann").await;
    // stop() itself fails the test if the server does not finish within its patience.
    let stopping = tokio::spawn(server.stop());
    assert_eq!(client.expect_error().await, "server is shutting down");
    loop {
        match client.next_event().await {
            Event::Closed => break,
            Event::HeartBeat | Event::Frame(_) => {}
        }
    }
    stopping.await.unwrap();
    drop(slow);
}
