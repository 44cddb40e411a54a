//! `GET /api/search` (issue 13): words, phrases, prefixes, `from:` and `in:`, on every
//! setup; what the index holds follows edits and deletions; and, in the style of the
//! security review, nobody finds what they may not read: another's private room, another's
//! direct messages, a room they were banned from, anything while signed out.

use std::time::Duration;

use serde_json::{Value, json};

use crate::on_every_setup;
use crate::support::{Client, Setup, TestServer};

/// Posts `text` to `room` as `user`; returns the stored message.
async fn say(server: &TestServer, user: &str, room: &str, text: &str) -> Value {
    let token = server.token(user).await;
    let (status, message) = server
        .request(
            "POST",
            &format!("/api/rooms/{room}/messages"),
            Some(&token),
            Some(&json!({ "text": text })),
        )
        .await;
    assert_eq!(status, 201, "{message}");
    // Messages a few milliseconds apart, so that `before` can fall between them.
    tokio::time::sleep(Duration::from_millis(5)).await;
    message
}

/// Searches as `user`; returns the status and the answer.
async fn search(server: &TestServer, user: Option<&str>, query: &str) -> (u16, Value) {
    let token = match user {
        Some(user) => Some(server.token(user).await),
        None => None,
    };
    server.request("GET", &format!("/api/search?{query}"), token.as_deref(), None).await
}

/// What a search found, as "room:seq" or "@peer:seq", best first.
async fn found(server: &TestServer, user: &str, query: &str) -> Vec<String> {
    let (status, page) = search(server, Some(user), query).await;
    assert_eq!(status, 200, "{query}: {page}");
    page["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| match (hit["room"].as_str(), hit["peer"].as_str()) {
            (Some(room), _) => format!("{room}:{}", hit["seq"]),
            (None, Some(peer)) => format!("@{peer}:{}", hit["seq"]),
            _ => panic!("a hit is in a room or a conversation: {hit}"),
        })
        .collect()
}

async fn change(server: &TestServer, user: &str, room: &str, change: Value) {
    let token = server.token(user).await;
    let (status, body) = server
        .request("POST", &format!("/api/rooms/{room}/changes"), Some(&token), Some(&change))
        .await;
    assert_eq!(status, 201, "{change}: {body}");
}

fn encode(query: &str) -> String {
    query
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn q(query: &str) -> String {
    format!("q={}", encode(query))
}

async fn search_finds_only_what_the_caller_may_read(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let bob = server.token("bob").await;
    let (status, _) = server.request("POST", "/api/rooms/dev/join", Some(&bob), None).await;
    assert_eq!(status, 204);
    let failed = say(&server, "ann", "dev", "The deploy **failed** on Friday").await;
    let fixed = say(&server, "ann", "dev", "deployment fixed").await;
    let build = say(&server, "bob", "dev", "who broke the build?").await;
    let ann = server.token("ann").await;
    let (status, _) = server
        .request("POST", "/api/rooms", Some(&ann), Some(&json!({"name": "board", "private": true})))
        .await;
    assert_eq!(status, 201);
    let secret = say(&server, "ann", "board", "deploy salaries secretly").await;
    let (status, dm) = server
        .request(
            "POST",
            "/api/dms/bob/messages",
            Some(&ann),
            Some(&json!({"text": "deploy notes"})),
        )
        .await;
    assert_eq!(status, 201, "{dm}");
    let (dev, board) =
        (|m: &Value| format!("dev:{}", m["seq"]), |m: &Value| format!("board:{}", m["seq"]));
    let (f, x, b) = (dev(&failed), dev(&fixed), dev(&build));

    // Words, prefixes, phrases, filters: bob's rooms and his DMs, never ann's private room.
    let mut hits = found(&server, "bob", &q("deploy")).await;
    hits.sort();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.contains(&f) && hits.iter().any(|hit| hit.starts_with("@ann:")), "{hits:?}");
    assert_eq!(found(&server, "bob", &q("DEPLOY* fri*")).await, [f.as_str()]);
    assert_eq!(found(&server, "bob", &q("deploy*")).await.len(), 3);
    let (_, page) = search(&server, Some("bob"), &format!("{}&limit=1", q("deploy*"))).await;
    assert_eq!(page["hits"].as_array().map(Vec::len), Some(1), "limit: {page}");
    assert_eq!(found(&server, "bob", &q("\"deploy failed\"")).await, [f.as_str()]);
    assert!(found(&server, "bob", &q("\"failed deploy\"")).await.is_empty());
    assert_eq!(found(&server, "bob", &q("build from:bob")).await, [b.as_str()]);
    assert!(found(&server, "bob", &q("deploy from:bob")).await.is_empty());
    assert_eq!(found(&server, "bob", &q("deploy in:#dev")).await, [f.as_str()]);
    assert_eq!(found(&server, "bob", &format!("{}&room=dev", q("deploy"))).await, [f.as_str()]);
    assert_eq!(found(&server, "ann", &q("salaries")).await, [board(&secret)]);
    // The hit: its words marked, its place, who and when.
    let (_, page) = search(&server, Some("bob"), &q("failed")).await;
    let hit = &page["hits"][0];
    assert_eq!(
        (hit["sender"].as_str(), hit["seq"].as_u64()),
        (Some("ann"), failed["seq"].as_u64())
    );
    let marked: Vec<&str> = hit["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|part| part["hit"] == true)
        .map(|part| part["text"].as_str().unwrap())
        .collect();
    assert_eq!(marked, ["failed"], "{hit}");
    let shown: String = hit["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| part["text"].as_str().unwrap())
        .collect();
    assert_eq!(shown, "The deploy failed on Friday", "plain text, without Markdown's marks");
    assert_eq!(page["more"], false);
    // `before`: only what was said earlier.
    let before = format!("{}&before={}", q("deploy"), dm["sent_at"]);
    assert_eq!(found(&server, "bob", &before).await, [f.as_str()]);

    // Nobody else's: a private room, another's DMs; a public room they are not in only
    // when they name it.
    for query in ["salaries", "secretly", "notes"] {
        assert!(found(&server, "carol", &q(query)).await.is_empty(), "{query}");
    }
    let (status, page) = search(&server, Some("carol"), &q("deploy in:board")).await;
    let (history, _) = server
        .request("GET", "/api/rooms/board/messages", Some(&server.token("carol").await), None)
        .await;
    assert_eq!(status, history, "search answers as history does for a private room: {page}");
    assert!(found(&server, "carol", &q("deploy")).await.is_empty());
    assert_eq!(found(&server, "carol", &q("deploy in:dev")).await, [f.as_str()]);
    // Index words are only words: its syntax and scope markers find nothing of others'.
    let scope_of_board =
        format!("r{}", "board".bytes().map(|b| format!("{b:02X}")).collect::<String>());
    for query in [
        scope_of_board.as_str(),
        "scope: deploy",
        "body:salaries OR x",
        "NEAR(salaries",
        "\"",
        "*salaries",
        "salaries\"*",
    ] {
        let (status, page) = search(&server, Some("carol"), &q(query)).await;
        assert!(status == 200 || status == 400, "{query}: {status} {page}");
        assert!(!page.to_string().contains("salaries\",\"hit"), "{query}: {page}");
        assert_eq!(page["hits"].as_array().map_or(0, Vec::len), 0, "{query}: {page}");
    }

    // Edits and deletions: the index follows, in the same transaction.
    change(
        &server,
        "ann",
        "dev",
        json!({"type": "edited", "seq": failed["seq"], "text": "the release failed"}),
    )
    .await;
    assert!(found(&server, "bob", &q("deploy in:dev")).await.is_empty());
    assert_eq!(found(&server, "bob", &q("release")).await, [f.as_str()]);
    change(&server, "ann", "dev", json!({"type": "deleted", "seq": fixed["seq"]})).await;
    assert!(found(&server, "bob", &q("deployment")).await.is_empty());
    assert!(!found(&server, "bob", &q("deploy*")).await.contains(&x));
    let mut ann_client = Client::connect(&server, "ann").await;
    ann_client
        .send(&format!(
            "SEND\ndestination:/app/dm.bob\ncontent-type:application/json\nreceipt:x\n\n{}\0",
            json!({"type": "delete", "seq": dm["seq"]})
        ))
        .await;
    ann_client.drain_until_receipt("x").await;
    assert!(found(&server, "bob", &q("notes")).await.is_empty());
    assert!(found(&server, "ann", &q("notes")).await.is_empty(), "both copies are gone");

    // Banned: the room's messages are out of reach at once.
    assert_eq!(found(&server, "bob", &q("release")).await, [f.as_str()]);
    change(&server, "ann", "dev", json!({"type": "banned", "user": "bob"})).await;
    assert!(found(&server, "bob", &q("release")).await.is_empty());
    let (status, _) = search(&server, Some("bob"), &q("release in:dev")).await;
    assert!(status == 403 || status == 404, "{status}");
}
on_every_setup!(search_finds_only_what_the_caller_may_read);

/// Signed out, or with bad input: a clear 4xx with a JSON body, nothing found.
async fn bad_searches_are_refused(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    say(&server, "ann", "lobby", "hello world").await;
    let (status, body) = search(&server, None, &q("hello")).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].is_string());
    let long = "x".repeat(501);
    for (query, expected) in [
        (String::new(), "search for at least one word"),
        (q("  !!! "), "search for at least one word"),
        (q("from:ann"), "search for at least one word"),
        (q(&long), "a search is at most 500 characters"),
        (q(&"a ".repeat(17)), "a search has at most 16 words and phrases"),
        (q("hello from:"), "from: needs a name after it"),
        (q("hello in:a in:b"), "in: may be given once"),
        (format!("{}&limit=0", q("hello")), "limit must be 1 to 100"),
        (format!("{}&limit=101", q("hello")), "limit must be 1 to 100"),
        (q("hello from:x"), "invalid user name"),
        (format!("{}&room=Not%20A%20Room", q("hello")), "invalid room"),
        (format!("{}&room=dev", q("hello in:lobby")), "the room is given twice"),
    ] {
        let (status, body) = search(&server, Some("ann"), &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains(expected), "{query}: {error:?}, wanted {expected:?}");
    }
    for query in [format!("{}&limit=many", q("hello")), format!("{}&before=soon", q("hello"))] {
        let (status, body) = search(&server, Some("ann"), &query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, body) = search(&server, Some("ann"), &q("hello in:nowhere")).await;
    assert_eq!(status, 404, "{body}");
    // And the good one still works.
    assert_eq!(found(&server, "ann", &q("hello")).await.len(), 1);
}
on_every_setup!(bad_searches_are_refused);
