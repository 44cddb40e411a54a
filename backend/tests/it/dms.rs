//! Direct messages: every tab of both people, history and resume, the offline and unknown
//! user notices, and queues nobody else can read.

use shared::chat::{DirectMessage, Notice};

use crate::support::{Client, TestServer};

async fn dm_queue(client: &mut Client, extra_headers: &str) -> Vec<DirectMessage> {
    client
        .send(&format!(
            "SUBSCRIBE\nid:dm\ndestination:/user/queue/dm\n{extra_headers}receipt:dm\n\n\0"
        ))
        .await;
    let mut replayed = Vec::new();
    loop {
        let frame = client.recv().await;
        if frame.command.as_str() == "RECEIPT" {
            return replayed;
        }
        replayed.push(serde_json::from_slice(&frame.body).unwrap());
    }
}

async fn expect_dm(client: &mut Client) -> DirectMessage {
    let (frame, body) = client.expect_message().await;
    assert_eq!(frame.headers.get("destination"), Some("/user/queue/dm"));
    serde_json::from_str(&body).unwrap()
}

async fn expect_notice(client: &mut Client) -> Notice {
    let (frame, body) = client.expect_message().await;
    assert_eq!(frame.headers.get("destination"), Some("/user/queue/notices"));
    serde_json::from_str(&body).unwrap()
}

#[tokio::test]
async fn a_dm_reaches_every_tab_of_both_people() {
    let server = TestServer::start().await;
    let mut bob_tabs = Vec::new();
    for _ in 0..2 {
        let mut tab = Client::connect(&server, "bob").await;
        dm_queue(&mut tab, "").await;
        bob_tabs.push(tab);
    }
    let mut ann = Client::connect(&server, "ann").await;
    dm_queue(&mut ann, "").await;
    ann.send("SEND\ndestination:/app/dm.bob\nreceipt:r\n\nhi bob\0").await;
    let echo = expect_dm(&mut ann).await;
    ann.expect_receipt("r").await;
    assert_eq!(
        (echo.from.as_str(), echo.to.as_str(), echo.text.as_str()),
        ("ann", "bob", "hi bob")
    );
    for tab in &mut bob_tabs {
        let dm = expect_dm(tab).await;
        assert_eq!((dm.from.as_str(), dm.text.as_str(), dm.seq), ("ann", "hi bob", 1));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_dm_to_someone_offline_is_stored_and_the_sender_told() {
    let server = TestServer::start().await;
    server.token("bob").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.subscribe("/user/queue/notices", "n").await;
    ann.send("SEND\ndestination:/app/dm.bob\nreceipt:r\n\nread this later\0").await;
    assert_eq!(expect_notice(&mut ann).await, Notice::UserOffline { user: "bob".into() });
    ann.expect_receipt("r").await;

    ann.send("SEND\ndestination:/app/dm.nobody\nreceipt:r2\n\nhello?\0").await;
    assert_eq!(expect_notice(&mut ann).await, Notice::NoSuchUser { user: "nobody".into() });
    assert!(ann.drain_until_receipt("after").await.is_empty(), "no RECEIPT for a refused DM");

    let mut bob = Client::connect(&server, "bob").await;
    let replayed = dm_queue(&mut bob, "").await;
    assert_eq!(replayed.iter().map(|dm| dm.text.as_str()).collect::<Vec<_>>(), ["read this later"]);
    server.stop().await;
}

#[tokio::test]
async fn dm_history_resumes_with_since_and_pages_over_http() {
    let server = TestServer::start().await;
    let mut ann = Client::connect(&server, "ann").await;
    let mut bob = Client::connect(&server, "bob").await;
    dm_queue(&mut bob, "").await;
    for n in 1..=5 {
        ann.send(&format!("SEND\ndestination:/app/dm.bob\n\nm{n}\0")).await;
        expect_dm(&mut bob).await;
    }
    bob.send("SEND\ndestination:/app/dm.ann\n\nreply\0").await;
    expect_dm(&mut bob).await;
    let mut bob_again = Client::connect(&server, "bob").await;
    let replayed = dm_queue(&mut bob_again, "since:3\n").await;
    assert_eq!(replayed.iter().map(|dm| dm.seq).collect::<Vec<_>>(), [4, 5, 6]);

    let token = server.token("bob").await;
    let (status, page) =
        server.request("GET", "/api/dms/ann/messages?limit=4", Some(&token), None).await;
    assert_eq!(status, 200);
    let texts: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["m3", "m4", "m5", "reply"]);
    assert_eq!(page["more"], true);
    let (_, summaries) = server.request("GET", "/api/dms", Some(&token), None).await;
    assert_eq!(summaries[0]["peer"], "ann");
    assert_eq!(summaries[0]["unread"], 5);
    let read = serde_json::json!({"seq": 6});
    assert_eq!(server.request("POST", "/api/dms/ann/read", Some(&token), Some(&read)).await.0, 204);
    let (_, summaries) = server.request("GET", "/api/dms", Some(&token), None).await;
    assert_eq!(summaries[0]["unread"], 0);
    server.stop().await;
}

#[tokio::test]
async fn nobody_can_read_another_users_queue() {
    let server = TestServer::start().await;
    for destination in ["/user/bob/queue/dm", "/user/bob/queue/notices"] {
        let mut mallory = Client::connect(&server, "mallory").await;
        mallory.send(&format!("SUBSCRIBE\nid:1\ndestination:{destination}\n\n\0")).await;
        mallory
            .expect_error_and_close(&format!(
                "{destination:?} is another user's queue: subscribe to /user/queue/dm for your own"
            ))
            .await;
    }
    server.stop().await;
}
