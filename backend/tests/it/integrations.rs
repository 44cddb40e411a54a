//! Bots and integrations over HTTP: messages posted with a token (a bot's or a person's),
//! incoming webhooks (plain and Slack JSON), and who may use each, in the style of the
//! security review.

use serde_json::{Value, json};
use shared::chat::RoomEvent;

use crate::on_every_setup;
use crate::support::{Client, Setup, TestServer};

/// A bot posts into a room over HTTP; a person reading over STOMP gets it live, marked as a
/// bot's, and history says so too; a retry with the same key stores nothing new.
async fn a_bot_posts_over_http_and_readers_see_a_bot(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "ci").await;
    let bot = server.bot_token("deployer").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("ci", "ci").await;

    let say = json!({"text": "deploy 42 done"});
    let path = "/api/rooms/ci/messages";
    let (status, body) = server.request("POST", path, Some(&bot), Some(&say)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("join \"ci\" first: POST /api/rooms/ci/join"))
    );
    assert_eq!(server.request("POST", "/api/rooms/ci/join", Some(&bot), None).await.0, 204);
    let key = [("Idempotency-Key", "deploy-42")];
    let (status, _, first) = server
        .request_with_headers(
            "POST",
            path,
            Some(&bot),
            Some(&say.to_string()),
            "application/json",
            &key,
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!((first["sender"].as_str(), first["bot"].as_bool()), (Some("deployer"), Some(true)));
    let (status, _, again) = server
        .request_with_headers(
            "POST",
            path,
            Some(&bot),
            Some(&say.to_string()),
            "application/json",
            &key,
        )
        .await;
    assert_eq!((status, &again["seq"]), (200, &first["seq"]), "a retry finds the first");

    loop {
        if let RoomEvent::Message(message) = ann.expect_room_event().await {
            assert_eq!(
                (message.sender.as_str(), message.text.as_str(), message.bot),
                ("deployer", "deploy 42 done", true)
            );
            break;
        }
    }
    // A person's message over HTTP is a person's.
    let ann_token = server.token("ann").await;
    let (status, mine) =
        server.request("POST", path, Some(&ann_token), Some(&json!({"text": "thanks"}))).await;
    assert_eq!((status, mine.get("bot")), (201, None));
    let (_, page) = server.request("GET", "/api/rooms/ci/messages", Some(&ann_token), None).await;
    let flags: Vec<(Value, Value)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["text"].clone(), m.get("bot").cloned().unwrap_or(Value::Bool(false))))
        .collect();
    assert_eq!(flags, [(json!("deploy 42 done"), json!(true)), (json!("thanks"), json!(false))]);

    // A bot reads like anyone over STOMP, and its DMs are marked too.
    let mut bot_stomp = Client::open(&server).await;
    bot_stomp
        .send(&format!("CONNECT\naccept-version:1.2\nlogin:deployer\npasscode:{bot}\n\n\0"))
        .await;
    let connected = bot_stomp.recv().await;
    assert_eq!(connected.command.as_str(), "CONNECTED");
    // ... and a SEND over STOMP is marked as the bot's, as one over HTTP is.
    bot_stomp
        .send("SEND\ndestination:/app/room.ci\ncontent-type:text/plain\nreceipt:s1\n\nover stomp\0")
        .await;
    bot_stomp.expect_receipt("s1").await;
    loop {
        if let RoomEvent::Message(message) = ann.expect_room_event().await
            && message.text == "over stomp"
        {
            assert!(message.bot, "{message:?}");
            break;
        }
    }
    let (status, dm) = server
        .request("POST", "/api/dms/ann/messages", Some(&bot), Some(&json!({"text": "hi ann"})))
        .await;
    assert_eq!((status, dm["bot"].as_bool(), dm["to"].as_str()), (201, Some(true), Some("ann")));
    let (_, page) =
        server.request("GET", "/api/dms/deployer/messages", Some(&ann_token), None).await;
    assert_eq!(page["messages"][0]["bot"], true);
    server.stop().await;
}
on_every_setup!(a_bot_posts_over_http_and_readers_see_a_bot);

#[tokio::test]
async fn posting_over_http_refuses_the_signed_out_and_bad_input() {
    let server = TestServer::start_with(|config| {
        config.send_rate = 1.0;
        config.send_burst = 2.0;
    })
    .await;
    let ann = server.token("ann").await;
    let path = "/api/rooms/lobby/messages";
    let text = json!({"text": "hello"});
    for token in [None, Some("forged"), Some("")] {
        let (status, body) = server.request("POST", path, token, Some(&text)).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert!(body["error"].is_string());
    }
    for (body, status) in [
        (json!({"text": ""}), 400),
        (json!({"text": "bell \u{7}"}), 400),
        (json!({"text": "x".repeat(5_000)}), 400),
        (json!({"words": "hello"}), 422),
        (json!({"text": 5}), 422),
    ] {
        let (got, answer) = server.request("POST", path, Some(&ann), Some(&body)).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, _) =
        server.raw_request("POST", path, Some(&ann), Some("{not json"), "application/json").await;
    assert_eq!(status, 400);
    for (key, reason) in [("", "must not be empty"), (&"k".repeat(200)[..], "longer than")] {
        let headers = [("Idempotency-Key", key)];
        let (status, _, body) = server
            .request_with_headers(
                "POST",
                path,
                Some(&ann),
                Some(&text.to_string()),
                "application/json",
                &headers,
            )
            .await;
        assert_eq!(status, 400);
        assert!(body["error"].as_str().unwrap().contains(reason), "{body}");
    }
    let (status, body) =
        server.request("POST", "/api/rooms/nowhere/messages", Some(&ann), Some(&text)).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) =
        server.request("POST", "/api/rooms/Bad%20Name/messages", Some(&ann), Some(&text)).await;
    assert_eq!(status, 400);
    let (status, body) =
        server.request("POST", "/api/dms/nobody/messages", Some(&ann), Some(&text)).await;
    assert_eq!(status, 404, "{body}");
    // The same rate as STOMP: a burst of two, then 429 with when to retry.
    let cat = server.token("cat").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, head, _) = server
            .request_with_headers(
                "POST",
                path,
                Some(&cat),
                Some(&text.to_string()),
                "application/json",
                &[],
            )
            .await;
        statuses.push(status);
        if status == 429 {
            assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
        }
    }
    assert_eq!(statuses, [201, 201, 429]);
    server.stop().await;
}

/// A room's owner makes a webhook; it posts as its bot (plain and Slack JSON), into that
/// room only; deleting it ends its URL at once.
async fn webhooks_post_as_their_bot(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "alerts").await;
    let ann = server.token("ann").await;
    let mut reader = Client::connect(&server, "ann").await;
    reader.join("alerts", "alerts").await;

    let (status, hook) = server
        .request(
            "POST",
            "/api/rooms/alerts/webhooks",
            Some(&ann),
            Some(&json!({"name": "grafana"})),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let url = hook["path"].as_str().unwrap().to_owned();
    assert!(url.starts_with("/hooks/") && url.len() > 40, "{url}");

    let (status, _, body) = server.post_text(&url, r#"{"text": "disk 91% full"}"#, &[]).await;
    assert_eq!((status, body.as_str()), (201, "ok"));
    let slack =
        r#"{"username": "ignored", "attachments": [{"fallback": "CPU high", "color": "danger"}]}"#;
    assert_eq!(server.post_text(&url, slack, &[]).await.0, 201);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        if let RoomEvent::Message(message) = reader.expect_room_event().await {
            assert_eq!(
                (message.room.as_str(), message.sender.as_str(), message.bot),
                ("alerts", "grafana", true)
            );
            seen.push(message.text);
        }
    }
    assert_eq!(seen, ["disk 91% full", "CPU high"]);

    // An admin (ann, the first account) deactivates the bot: its webhook posts nothing
    // until the bot is reactivated.
    let deactivate = "/api/admin/users/grafana/deactivate";
    assert_eq!(server.request("POST", deactivate, Some(&ann), None).await.0, 204);
    let (status, _, body) = server.post_text(&url, r#"{"text": "muted?"}"#, &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("deactivated"), "{body}");
    let reactivate = "/api/admin/users/grafana/reactivate";
    assert_eq!(server.request("POST", reactivate, Some(&ann), None).await.0, 204);
    assert_eq!(server.post_text(&url, r#"{"text": "back"}"#, &[]).await.0, 201);

    // Listed for the owner, without the secret; deleted, the URL is dead.
    let (status, listed) =
        server.request("GET", "/api/rooms/alerts/webhooks", Some(&ann), None).await;
    assert_eq!(status, 200);
    assert_eq!(listed[0]["name"], "grafana");
    assert!(listed[0].get("path").is_none(), "{listed}");
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    let delete = format!("/api/rooms/alerts/webhooks/{id}");
    assert_eq!(server.request("DELETE", &delete, Some(&ann), None).await.0, 204);
    let (status, _, body) = server.post_text(&url, r#"{"text": "after"}"#, &[]).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("\"error\""));
    assert_eq!(server.request("DELETE", &delete, Some(&ann), None).await.0, 404);
    server.stop().await;
}
on_every_setup!(webhooks_post_as_their_bot);

#[tokio::test]
async fn webhooks_are_the_owners_and_refuse_bad_input() {
    let server = TestServer::start().await;
    server.create_room("ann", "ops").await;
    let (ann, bob) = (server.token("ann").await, server.token("bob").await);
    let create = "/api/rooms/ops/webhooks";
    let name = json!({"name": "ci-bot"});
    // Signed out, not the owner (even a member), the lobby that nobody owns, no such room.
    assert_eq!(server.request("POST", create, None, Some(&name)).await.0, 401);
    assert_eq!(server.request("POST", "/api/rooms/ops/join", Some(&bob), None).await.0, 204);
    let (status, body) = server.request("POST", create, Some(&bob), Some(&name)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("only the owner of \"ops\" manages its webhooks"))
    );
    assert_eq!(server.request("GET", create, Some(&bob), None).await.0, 403);
    assert_eq!(
        server.request("POST", "/api/rooms/lobby/webhooks", Some(&ann), Some(&name)).await.0,
        403
    );
    assert_eq!(
        server.request("POST", "/api/rooms/nowhere/webhooks", Some(&ann), Some(&name)).await.0,
        404
    );
    // A bot name must be a free, valid account name.
    assert_eq!(
        server.request("POST", create, Some(&ann), Some(&json!({"name": "bob"}))).await.0,
        409
    );
    assert_eq!(
        server.request("POST", create, Some(&ann), Some(&json!({"name": "no spaces"}))).await.0,
        400
    );
    assert_eq!(
        server.request("POST", create, Some(&ann), Some(&json!({"title": "x"}))).await.0,
        422
    );

    let (status, hook) = server.request("POST", create, Some(&ann), Some(&name)).await;
    assert_eq!(status, 201);
    let url = hook["path"].as_str().unwrap();
    let id = hook["id"].as_str().unwrap();
    // Someone else cannot delete it.
    assert_eq!(server.request("DELETE", &format!("{create}/{id}"), Some(&bob), None).await.0, 403);
    // Bad bodies get a JSON error; nothing is posted.
    for (body, status) in [
        ("{not json", 400),
        (r#"{"text": ""}"#, 400),
        (r#"{"blocks": []}"#, 400),
        (r#"{"text": "bell \u0007"}"#, 400),
        (r#"{"text": 5}"#, 422),
    ] {
        let (got, _, answer) = server.post_text(url, body, &[]).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.contains("\"error\""), "{answer}");
    }
    // A wrong or absurd secret is simply not found.
    for path in ["/hooks/nope", &format!("/hooks/{}", "a".repeat(300))] {
        assert_eq!(server.post_text(path, r#"{"text": "x"}"#, &[]).await.0, 404);
    }
    let (_, page) = server.request("GET", "/api/rooms/ops/messages", Some(&ann), None).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 0, "{page}");
    // The webhook's secret is not a token: it opens nothing else.
    let secret = url.trim_start_matches("/hooks/");
    assert_eq!(server.request("GET", "/api/rooms", Some(secret), None).await.0, 401);
    server.stop().await;
}
