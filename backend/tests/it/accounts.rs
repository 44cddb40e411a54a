//! Accounts: registration, sign-in, tokens, and the errors each gets wrong input.

use serde_json::json;

use crate::support::{Client, PASSWORD, TestServer};

#[tokio::test]
async fn register_login_and_connect_with_the_token() {
    let server = TestServer::start().await;
    let (status, body) = server
        .request(
            "POST",
            "/api/register",
            None,
            Some(&json!({"username": "ann", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(body["username"], "ann");
    let (status, body) = server
        .request(
            "POST",
            "/api/login",
            None,
            Some(&json!({"username": "ann", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap();
    let mut client = Client::open(&server).await;
    client.send(&format!("CONNECT\naccept-version:1.2\nlogin:ann\npasscode:{token}\n\n\0")).await;
    let frame = client.recv().await;
    assert_eq!(frame.command.as_str(), "CONNECTED");
    assert_eq!(frame.headers.get("user-name"), Some("ann"));
    server.stop().await;
}

#[tokio::test]
async fn bad_registrations_get_json_errors() {
    let server = TestServer::start().await;
    server.token("taken").await;
    let cases = [
        (
            json!({"username": "ab", "password": PASSWORD}),
            400,
            "invalid user name: user names have 3 to 32 characters",
        ),
        (
            json!({"username": "Ann", "password": PASSWORD}),
            400,
            "invalid user name: names use only a-z, 0-9, _ and -",
        ),
        (
            json!({"username": "a".repeat(33), "password": PASSWORD}),
            400,
            "invalid user name: names have 1 to 32 characters",
        ),
        (
            json!({"username": "shorty", "password": "1234567"}),
            400,
            "passwords have 8 to 256 characters",
        ),
        (json!({"username": "taken", "password": PASSWORD}), 409, "the name \"taken\" is taken"),
    ];
    for (body, status, error) in cases {
        let (got_status, got) = server.request("POST", "/api/register", None, Some(&body)).await;
        assert_eq!((got_status, got["error"].as_str().unwrap()), (status, error), "{body}");
    }
    let (status, body) = server
        .raw_request("POST", "/api/register", None, Some("{not json"), "application/json")
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("Failed to parse"), "{body}");
    let (status, body) =
        server.raw_request("POST", "/api/register", None, Some("x"), "text/plain").await;
    assert_eq!(status, 415, "{body}");
    let (status, body) = server.request("GET", "/api/nothing-here", None, None).await;
    assert_eq!((status, body["error"].as_str().unwrap()), (404, "no such API endpoint"));
    server.stop().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_look_the_same() {
    let server = TestServer::start().await;
    server.token("ann").await;
    for username in ["ann", "nobody"] {
        let credentials = json!({"username": username, "password": "wrong password"});
        let (status, body) = server.request("POST", "/api/login", None, Some(&credentials)).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (401, "invalid user name or password")
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn wrong_or_revoked_tokens_cannot_connect() {
    let server = TestServer::start().await;
    let token = server.token("ann").await;
    let other = server.token("bob").await;
    let attempts = [
        format!("CONNECT\naccept-version:1.2\nlogin:ann\npasscode:{other}\n\n\0"),
        "CONNECT\naccept-version:1.2\nlogin:ann\npasscode:guess\n\n\0".to_owned(),
        "CONNECT\naccept-version:1.2\nlogin:ann\n\n\0".to_owned(),
        "CONNECT\naccept-version:1.2\n\n\0".to_owned(),
    ];
    for attempt in attempts {
        let mut client = Client::open(&server).await;
        client.send(&attempt).await;
        client.expect_error_and_close("authentication failed").await;
    }
    let (status, _) = server.request("POST", "/api/logout", Some(&token), None).await;
    assert_eq!(status, 204);
    let mut client = Client::open(&server).await;
    client.send(&format!("CONNECT\naccept-version:1.2\nlogin:ann\npasscode:{token}\n\n\0")).await;
    client.expect_error_and_close("authentication failed").await;
    let (status, body) = server.request("GET", "/api/rooms", Some(&token), None).await;
    assert_eq!(
        (status, body["error"].as_str().unwrap()),
        (401, "sign in first: send Authorization: Bearer <token>")
    );
    server.stop().await;
}
