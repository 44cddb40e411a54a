//! Every protocol error is an ERROR frame with a `message` header, then a close; one bad
//! connection leaves the others working.

use crate::support::{Client, TestServer};

/// Sends `raw` on a connected session and expects exactly this ERROR message.
async fn check(raw: &[u8], message: &str) {
    let server = TestServer::start_with(|config| config.max_frame_bytes = 1024).await;
    let mut bystander = Client::connect(&server, "bystander").await;
    bystander.subscribe("/topic/ok", "1").await;
    let mut client = Client::connect(&server, "offender").await;
    client.send_bytes(raw).await;
    client.expect_error_and_close(message).await;
    // The listener and other sessions are unaffected.
    bystander.send("SEND\ndestination:/topic/ok\n\nstill here\0").await;
    assert_eq!(bystander.expect_message().await.1, "still here");
    server.stop().await;
}

#[tokio::test]
async fn a_frame_before_connect_is_refused() {
    let server = TestServer::start().await;
    let mut client = Client::open(&server).await;
    client.send("SEND\ndestination:/topic/a\n\nx\0").await;
    client.expect_error_and_close("expected CONNECT or STOMP as the first frame, got SEND").await;
    server.stop().await;
}

#[tokio::test]
async fn missing_destination() {
    check(b"SEND\n\nx\0", "SEND frame is missing the required \"destination\" header").await;
    check(
        b"SUBSCRIBE\nid:1\n\n\0",
        "SUBSCRIBE frame is missing the required \"destination\" header",
    )
    .await;
}

#[tokio::test]
async fn oversized_frame() {
    let mut raw = b"SEND\ndestination:/topic/a\n\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 2000));
    raw.push(0);
    check(&raw, "frame exceeds the limit of 1024 bytes").await;
}

#[tokio::test]
async fn undefined_escape() {
    check(b"SEND\ndestination:/topic/a\\t\n\nx\0", "undefined escape sequence \"\\\\t\" in header")
        .await;
}

#[tokio::test]
async fn unknown_command() {
    check(b"PUBLISH\ndestination:/topic/a\n\nx\0", "unknown command \"PUBLISH\"").await;
}

#[tokio::test]
async fn ack_of_an_unknown_id() {
    check(b"ACK\nid:nope\n\n\0", "ACK names unknown ack id \"nope\"").await;
    check(b"NACK\nid:nope\n\n\0", "NACK names unknown ack id \"nope\"").await;
}

#[tokio::test]
async fn unknown_destinations_and_subscriptions() {
    check(
        b"SEND\ndestination:/queue/a\n\nx\0",
        "unknown destination \"/queue/a\": use /topic/<name>, /topic/room.<room>, /topic/rooms, /app/room.<room>, /app/dm.<user>, /user/queue/dm or /user/queue/notices",
    )
    .await;
    check(b"UNSUBSCRIBE\nid:9\n\n\0", "no subscription with id \"9\"").await;
    check(
        b"SUBSCRIBE\nid:1\ndestination:/topic/a\n\n\0SUBSCRIBE\nid:1\ndestination:/topic/b\n\n\0",
        "subscription id \"1\" is already in use",
    )
    .await;
}

#[tokio::test]
async fn transaction_misuse() {
    check(b"COMMIT\ntransaction:t\n\n\0", "no transaction \"t\" was started").await;
    check(b"ABORT\ntransaction:t\n\n\0", "no transaction \"t\" was started").await;
    check(b"SEND\ndestination:/topic/a\ntransaction:t\n\nx\0", "no transaction \"t\" was started")
        .await;
    check(
        b"BEGIN\ntransaction:t\n\n\0BEGIN\ntransaction:t\n\n\0",
        "transaction \"t\" already started",
    )
    .await;
}

#[tokio::test]
async fn connect_twice() {
    check(b"CONNECT\naccept-version:1.2\nlogin:again\n\n\0", "already connected").await;
}

#[tokio::test]
async fn a_body_where_none_is_allowed() {
    check(
        b"SUBSCRIBE\nid:1\ndestination:/topic/a\n\nbody\0",
        "SUBSCRIBE frames must not have a body",
    )
    .await;
}

#[tokio::test]
async fn errors_carry_the_receipt_id_of_the_bad_frame() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "receipts").await;
    client.send("SEND\ndestination:/queue/x\nreceipt:m-42\n\nx\0").await;
    let frame = client.recv().await;
    assert_eq!(frame.command.as_str(), "ERROR");
    assert_eq!(frame.headers.get("receipt-id"), Some("m-42"));
    client.expect_closed().await;
    server.stop().await;
}
