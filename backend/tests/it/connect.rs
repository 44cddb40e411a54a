//! Opening a session: subprotocols, CONNECT/STOMP, version negotiation, heart-beats.

use shared::stomp::ServerFrame;

use crate::support::{Client, Event, TestServer};

#[tokio::test]
async fn the_highest_offered_subprotocol_wins() {
    let server = TestServer::start().await;
    let cases = [
        ("v10.stomp, v11.stomp, v12.stomp", Some("v12.stomp")),
        ("v10.stomp, v11.stomp", Some("v11.stomp")),
        ("v10.stomp", Some("v10.stomp")),
    ];
    for (offered, chosen) in cases {
        let client = Client::open_offering(&server, Some(offered)).await.unwrap();
        assert_eq!(client.protocol.as_deref(), chosen, "offered {offered}");
    }
    let plain = Client::open_offering(&server, None).await.unwrap();
    assert_eq!(plain.protocol, None);
    let refused = Client::open_offering(&server, Some("mqtt")).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
        panic!("an unknown subprotocol is refused");
    };
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn connect_and_stomp_open_a_session() {
    let server = TestServer::start().await;
    for command in ["CONNECT", "STOMP"] {
        let mut client = Client::open(&server).await;
        let credentials = server.credentials("alice").await;
        client
            .send(&format!("{command}\naccept-version:1.0,1.1,1.2\nhost:localhost\n{credentials}heart-beat:0,0\n\n\0"))
            .await;
        let ServerFrame::Connected { version, session, server: name, headers, .. } =
            client.recv_server().await
        else {
            panic!("expected CONNECTED");
        };
        assert_eq!(version.as_str(), "1.2");
        assert!(session.is_some());
        assert!(name.unwrap().starts_with("confab/"));
        assert_eq!(headers.get("user-name"), Some("alice"));
    }
    server.stop().await;
}

#[tokio::test]
async fn versions_are_negotiated() {
    let server = TestServer::start().await;
    let cases = [
        ("accept-version:1.0,1.1,2.0\n", "1.1"),
        ("accept-version:1.0\n", "1.0"),
        ("", "1.0"), // "If the accept-version header is missing ... only supports version 1.0"
    ];
    for (header, expected) in cases {
        let mut client = Client::open(&server).await;
        let credentials = server.credentials("bob").await;
        client.send(&format!("CONNECT\n{header}{credentials}\n\0")).await;
        let frame = client.recv().await;
        assert_eq!(frame.headers.get("version"), Some(expected), "{header:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn no_common_version_is_an_error_listing_ours() {
    let server = TestServer::start().await;
    let mut client = Client::open(&server).await;
    client.send("CONNECT\naccept-version:2.0,2.1\nlogin:bob\n\n\0").await;
    let frame = client.recv().await;
    assert_eq!(frame.command.as_str(), "ERROR");
    assert_eq!(frame.headers.get("message"), Some("unsupported protocol version"));
    assert_eq!(frame.headers.get("version"), Some("1.0,1.1,1.2"));
    assert_eq!(&frame.body[..], b"Supported protocol versions are 1.0 1.1 1.2");
    client.expect_closed().await;
    server.stop().await;
}

#[tokio::test]
async fn the_server_sends_heart_beats_when_asked() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 50).await;
    let mut client = Client::open(&server).await;
    client
        .send(&format!(
            "CONNECT\naccept-version:1.2\n{}heart-beat:0,50\n\n\0",
            server.credentials("heartbeat").await
        ))
        .await;
    let frame = client.recv().await;
    assert_eq!(frame.headers.get("heart-beat"), Some("50,50"));
    for _ in 0..3 {
        assert!(matches!(client.next_event().await, Event::HeartBeat));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_stops_beating_is_dropped() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 50).await;
    let mut client = Client::open(&server).await;
    // The client promises a beat every 50 ms, then says nothing.
    client
        .send(&format!(
            "CONNECT\naccept-version:1.2\n{}heart-beat:50,0\n\n\0",
            server.credentials("quiet").await
        ))
        .await;
    assert_eq!(client.recv().await.command.as_str(), "CONNECTED");
    client.expect_error_and_close("heart-beat timeout: no data received from the client").await;
    server.stop().await;
}

#[tokio::test]
async fn a_beating_client_stays_connected() {
    let server = TestServer::start_with(|config| config.heartbeat_ms = 50).await;
    let mut client = Client::open(&server).await;
    client
        .send(&format!(
            "CONNECT\naccept-version:1.2\n{}heart-beat:50,0\n\n\0",
            server.credentials("lively").await
        ))
        .await;
    assert_eq!(client.recv().await.command.as_str(), "CONNECTED");
    // Beat for several times the silence limit, then check the session still works.
    for _ in 0..20 {
        client.send("\n").await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    client.send("DISCONNECT\nreceipt:bye\n\n\0").await;
    client.expect_receipt("bye").await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_every_session() {
    let server = TestServer::start().await;
    let mut client = Client::connect(&server, "alice").await;
    let stopping = tokio::spawn(server.stop());
    client.expect_error_and_close("server is shutting down").await;
    stopping.await.unwrap();
}
