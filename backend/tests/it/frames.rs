//! Each client frame on a generic `/topic`: SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK,
//! BEGIN, COMMIT, ABORT, DISCONNECT, and the RECEIPT any of them can ask for.

use crate::support::{Client, TestServer};

#[tokio::test]
async fn send_reaches_every_subscriber_with_the_required_headers() {
    let server = TestServer::start().await;
    let mut alice = Client::connect(&server, "alice").await;
    let mut bob = Client::connect(&server, "bob").await;
    alice.subscribe("/topic/news", "a-1").await;
    bob.subscribe("/topic/news", "b-1").await;
    alice
        .send("SEND\ndestination:/topic/news\ncontent-type:text/plain\nx-trace:t1\n\nhello\0")
        .await;
    for (client, subscription) in [(&mut alice, "a-1"), (&mut bob, "b-1")] {
        let (frame, body) = client.expect_message().await;
        assert_eq!(body, "hello");
        assert_eq!(frame.headers.get("subscription"), Some(subscription));
        assert_eq!(frame.headers.get("destination"), Some("/topic/news"));
        assert_eq!(frame.headers.get("content-type"), Some("text/plain"));
        assert_eq!(frame.headers.get("x-trace"), Some("t1"), "user headers pass through");
        assert!(frame.headers.get("message-id").is_some());
        assert_eq!(frame.headers.get("ack"), None);
    }
    server.stop().await;
}

#[tokio::test]
async fn bodies_keep_nul_octets_and_get_a_content_length() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "bin").await;
    client.subscribe("/topic/blobs", "0").await;
    client
        .send_bytes(b"SEND\ndestination:/topic/blobs\ncontent-type:application/octet-stream\ncontent-length:5\n\n\x00\x01\xff\x00z\0")
        .await;
    let frame = client.recv().await;
    assert_eq!(&frame.body[..], b"\x00\x01\xff\x00z");
    assert_eq!(frame.headers.get("content-type"), Some("application/octet-stream"));
    server.stop().await;
}

#[tokio::test]
async fn publishers_cannot_forge_server_headers() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "forger").await;
    client.subscribe("/topic/a", "real").await;
    client.send("SEND\ndestination:/topic/a\nsubscription:fake\nmessage-id:fake\n\nx\0").await;
    let (frame, _) = client.expect_message().await;
    assert_eq!(frame.headers.get("subscription"), Some("real"));
    assert_ne!(frame.headers.get("message-id"), Some("fake"));
    assert_eq!(frame.headers.get("content-type"), Some("text/plain;charset=utf-8"));
    server.stop().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "unsub").await;
    client.subscribe("/topic/a", "1").await;
    client.send("UNSUBSCRIBE\nid:1\nreceipt:r-unsub\n\n\0").await;
    client.expect_receipt("r-unsub").await;
    client.send("SEND\ndestination:/topic/a\n\nlost\0").await;
    assert!(client.drain_until_receipt("after").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn every_frame_that_asks_gets_a_receipt() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "receipts").await;
    let frames = [
        "SUBSCRIBE\nid:1\ndestination:/topic/r\nack:client-individual\nreceipt:1\n\n\0",
        "BEGIN\ntransaction:t\nreceipt:2\n\n\0",
        "SEND\ndestination:/topic/r\ntransaction:t\nreceipt:3\n\nx\0",
        "ABORT\ntransaction:t\nreceipt:4\n\n\0",
        "BEGIN\ntransaction:t2\nreceipt:5\n\n\0",
        "COMMIT\ntransaction:t2\nreceipt:6\n\n\0",
        "UNSUBSCRIBE\nid:1\nreceipt:7\n\n\0",
    ];
    for (index, frame) in frames.iter().enumerate() {
        client.send(frame).await;
        client.expect_receipt(&(index + 1).to_string()).await;
    }
    client.send("DISCONNECT\nreceipt:77\n\n\0").await;
    client.expect_receipt("77").await;
    client.expect_closed().await;
    server.stop().await;
}

#[tokio::test]
async fn client_ack_mode_is_cumulative() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "acker").await;
    client.send("SUBSCRIBE\nid:s\ndestination:/topic/work\nack:client\nreceipt:sub\n\n\0").await;
    client.expect_receipt("sub").await;
    for n in 1..=3 {
        client.send(&format!("SEND\ndestination:/topic/work\n\njob {n}\0")).await;
    }
    let mut acks = Vec::new();
    for _ in 0..3 {
        let (frame, _) = client.expect_message().await;
        acks.push(frame.headers.get("ack").expect("client mode MESSAGE has ack").to_owned());
    }
    // ACK of the second settles the first too; the first can no longer be acknowledged.
    client.send(&format!("ACK\nid:{}\nreceipt:a2\n\n\0", acks[1])).await;
    client.expect_receipt("a2").await;
    client.send(&format!("NACK\nid:{}\nreceipt:n3\n\n\0", acks[2])).await;
    client.expect_receipt("n3").await;
    client.send(&format!("ACK\nid:{}\n\n\0", acks[0])).await;
    client.expect_error_and_close(&format!("ACK names unknown ack id {:?}", acks[0])).await;
    server.stop().await;
}

#[tokio::test]
async fn client_individual_acks_one_at_a_time() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "ind").await;
    client
        .send("SUBSCRIBE\nid:s\ndestination:/topic/jobs\nack:client-individual\nreceipt:sub\n\n\0")
        .await;
    client.expect_receipt("sub").await;
    client.send("SEND\ndestination:/topic/jobs\n\n1\0").await;
    client.send("SEND\ndestination:/topic/jobs\n\n2\0").await;
    let (first, _) = client.expect_message().await;
    let (second, _) = client.expect_message().await;
    let (first, second) = (first.headers.get("ack").unwrap(), second.headers.get("ack").unwrap());
    client.send(&format!("ACK\nid:{second}\nreceipt:a\n\n\0")).await;
    client.expect_receipt("a").await;
    client.send(&format!("ACK\nid:{first}\nreceipt:b\n\n\0")).await;
    client.expect_receipt("b").await;
    server.stop().await;
}

#[tokio::test]
async fn acks_inside_a_transaction_wait_for_commit() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "txack").await;
    client
        .send("SUBSCRIBE\nid:s\ndestination:/topic/q\nack:client-individual\nreceipt:sub\n\n\0")
        .await;
    client.expect_receipt("sub").await;
    client.send("SEND\ndestination:/topic/q\n\nm\0").await;
    let (frame, _) = client.expect_message().await;
    let ack = frame.headers.get("ack").unwrap().to_owned();
    client.send("BEGIN\ntransaction:t\n\n\0").await;
    client.send(&format!("ACK\nid:{ack}\ntransaction:t\n\n\0")).await;
    client.send("ABORT\ntransaction:t\n\n\0").await;
    // Aborted: the delivery is still pending, so a committed ACK settles it.
    client.send("BEGIN\ntransaction:t2\n\n\0").await;
    client.send(&format!("ACK\nid:{ack}\ntransaction:t2\n\n\0")).await;
    client.send("COMMIT\ntransaction:t2\nreceipt:c\n\n\0").await;
    client.expect_receipt("c").await;
    client.send(&format!("ACK\nid:{ack}\n\n\0")).await;
    client.expect_error_and_close(&format!("ACK names unknown ack id {ack:?}")).await;
    server.stop().await;
}

#[tokio::test]
async fn transactions_hold_sends_until_commit_and_drop_them_on_abort() {
    let server = TestServer::start().await;
    let mut watcher = Client::connect(&server, "watcher").await;
    watcher.subscribe("/topic/tx", "w").await;
    let mut sender = Client::connect(&server, "sender").await;
    sender.send("BEGIN\ntransaction:t1\n\n\0").await;
    sender.send("SEND\ndestination:/topic/tx\ntransaction:t1\n\none\0").await;
    sender.send("SEND\ndestination:/topic/tx\ntransaction:t1\n\ntwo\0").await;
    sender.send("BEGIN\ntransaction:t2\n\n\0").await;
    sender.send("SEND\ndestination:/topic/tx\ntransaction:t2\n\naborted\0").await;
    sender.send("ABORT\ntransaction:t2\nreceipt:aborted\n\n\0").await;
    sender.expect_receipt("aborted").await;
    assert!(watcher.drain_until_receipt("before-commit").await.is_empty(), "nothing before COMMIT");
    sender.send("COMMIT\ntransaction:t1\nreceipt:committed\n\n\0").await;
    sender.expect_receipt("committed").await;
    assert_eq!(watcher.expect_message().await.1, "one");
    assert_eq!(watcher.expect_message().await.1, "two");
    assert!(
        watcher.drain_until_receipt("after-commit").await.is_empty(),
        "the aborted SEND never arrives"
    );
    server.stop().await;
}

#[tokio::test]
async fn disconnect_aborts_open_transactions() {
    let server = TestServer::start().await;
    let mut watcher = Client::connect(&server, "watcher").await;
    watcher.subscribe("/topic/tx", "w").await;
    let mut sender = Client::connect(&server, "sender").await;
    sender.send("BEGIN\ntransaction:t\n\n\0").await;
    sender.send("SEND\ndestination:/topic/tx\ntransaction:t\n\nnever\0").await;
    sender.send("DISCONNECT\nreceipt:bye\n\n\0").await;
    sender.expect_receipt("bye").await;
    sender.expect_closed().await;
    assert!(watcher.drain_until_receipt("after").await.is_empty());
    server.stop().await;
}
