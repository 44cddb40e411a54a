//! Scale-out: nodes on one PostgreSQL and one Redis behind HAProxy. Users on different
//! nodes talk as if on one server; a node killed with SIGKILL, a Redis restart or a
//! PostgreSQL restart in the middle of publishing loses and doubles nothing.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::cluster::Cluster;
use e2e::stomp::StompClient;
use e2e::{ChromeDriver, eventually, register};
use shared::chat::{DirectMessage, DirectoryEvent, Notice, RoomEvent};

fn room_event(body: &[u8]) -> Result<RoomEvent> {
    Ok(serde_json::from_slice(body)?)
}

/// Connects `user` straight to node `index`.
async fn on_node(cluster: &Cluster, index: usize, user: &str, token: &str) -> Result<StompClient> {
    StompClient::connect(&cluster.nodes[index].ws_url(), user, token).await
}

/// Waits for a room event matching `wanted`, skipping others.
async fn wait_for_event(
    client: &mut StompClient,
    wanted: impl Fn(&RoomEvent) -> bool,
) -> Result<RoomEvent> {
    loop {
        let event = room_event(&client.next_body().await?)?;
        if wanted(&event) {
            return Ok(event);
        }
    }
}

#[tokio::test]
async fn people_on_different_nodes_share_rooms_presence_typing_and_dms() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let lb = cluster.balancer.addr;
    let (ann, bob, cat) =
        (register(lb, "ann").await?, register(lb, "bob").await?, register(lb, "cat").await?);
    let mut ann_a = on_node(&cluster, 0, "ann", &ann).await?;
    let mut bob_b = on_node(&cluster, 1, "bob", &bob).await?;
    let nodes: HashSet<String> = [ann_a.node().to_owned(), bob_b.node().to_owned()].into();
    ensure!(nodes.len() == 2, "ann and bob are on different nodes");

    ann_a.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    ann_a.subscribe("/user/queue/dm", "dm", &[]).await?;
    let snapshot = bob_b.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    ensure!(
        matches!(room_event(&snapshot[0])?, RoomEvent::Presence { users } if users == ["ann", "bob"])
    );
    bob_b.subscribe("/user/queue/notices", "notices", &[]).await?;
    wait_for_event(
        &mut ann_a,
        |event| matches!(event, RoomEvent::Joined { user, .. } if user == "bob"),
    )
    .await?;

    // Chat across nodes, in order, stamped with the sender.
    for n in 1..=20 {
        bob_b.say("/app/room.lobby", &format!("b{n}"), None).await?;
    }
    for n in 1..=20 {
        let RoomEvent::Message(message) =
            wait_for_event(&mut ann_a, |e| matches!(e, RoomEvent::Message(_))).await?
        else {
            unreachable!()
        };
        ensure!(
            message.sender == "bob" && message.text == format!("b{n}") && message.seq == n,
            "{message:?}"
        );
    }

    // Typing crosses nodes.
    bob_b.send_json("/app/room.lobby", r#"{"type":"typing"}"#).await?;
    wait_for_event(
        &mut ann_a,
        |event| matches!(event, RoomEvent::Typing { user } if user == "bob"),
    )
    .await?;

    // A DM from node B reaches ann on node A, and a third node.
    let mut ann_c = on_node(&cluster, 2, "ann", &ann).await?;
    ann_c.subscribe("/user/queue/dm", "dm", &[]).await?;
    bob_b.say("/app/dm.ann", "hello across nodes", None).await?;
    for tab in [&mut ann_a, &mut ann_c] {
        loop {
            let body = tab.next_body().await?;
            if let Ok(dm) = serde_json::from_slice::<DirectMessage>(&body) {
                ensure!(dm.from == "bob" && dm.text == "hello across nodes");
                break;
            }
        }
    }
    // Cat has no session anywhere: bob hears she is offline, whichever node he is on.
    let seen = bob_b.say("/app/dm.cat", "for later", None).await?;
    let notice = match seen.first() {
        Some(body) => serde_json::from_slice::<Notice>(body)?,
        None => serde_json::from_slice::<Notice>(&bob_b.next_body().await?)?,
    };
    ensure!(notice == Notice::UserOffline { user: "cat".into() }, "{notice:?}");
    let mut cat_c = on_node(&cluster, 2, "cat", &cat).await?;
    let replayed = cat_c.subscribe("/user/queue/dm", "dm", &[]).await?;
    ensure!(replayed.len() == 1, "the stored DM is replayed to cat");

    // A room created through node A is announced to bob on node B.
    bob_b.subscribe("/topic/rooms", "directory", &[]).await?;
    let (status, body) = e2e::http_json(
        cluster.nodes[0].addr,
        "POST",
        "/api/rooms",
        Some(&ann),
        Some(&serde_json::json!({ "name": "design" })),
    )
    .await?;
    ensure!(status == 201, "{status} {body}");
    let announced = loop {
        if let Ok(event) = serde_json::from_slice::<DirectoryEvent>(&bob_b.next_body().await?) {
            break event;
        }
    };
    ensure!(announced == DirectoryEvent::Created { room: "design".into(), by: "ann".into() });

    // Leaving crosses nodes too.
    drop(bob_b);
    wait_for_event(
        &mut ann_a,
        |event| matches!(event, RoomEvent::Left { user, .. } if user == "bob"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_killed_node_loses_and_doubles_nothing() -> Result<()> {
    let mut cluster = Cluster::start(3).await?;
    let lb = cluster.balancer.addr;
    let (dan, eve) = (register(lb, "dan").await?, register(lb, "eve").await?);
    let mut dan_a = on_node(&cluster, 0, "dan", &dan).await?;
    dan_a.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    let mut eve_b = on_node(&cluster, 1, "eve", &eve).await?;
    eve_b.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    wait_for_event(&mut dan_a, |e| matches!(e, RoomEvent::Joined { user, .. } if user == "eve"))
        .await?;

    // Eve talks; dan reads up to seq 10 on node A, which then dies.
    for n in 1..=10 {
        eve_b.say("/app/room.lobby", &format!("m{n}"), Some(&format!("k{n}"))).await?;
    }
    let mut last_seen = 0;
    while last_seen < 10 {
        if let RoomEvent::Message(message) = room_event(&dan_a.next_body().await?)? {
            ensure!(message.seq == last_seen + 1, "in order, no gap");
            last_seen = message.seq;
        }
    }
    cluster.nodes[0].kill().await?;
    drop(dan_a);

    // While dan is away, eve goes on, and resends one message (as after her own reconnect).
    for n in 11..=15 {
        eve_b.say("/app/room.lobby", &format!("m{n}"), Some(&format!("k{n}"))).await?;
    }
    eve_b.say("/app/room.lobby", "m15", Some("k15")).await?;
    // Within the reaping window, eve sees dan leave (his node died without a goodbye).
    wait_for_event(&mut eve_b, |e| matches!(e, RoomEvent::Left { user, .. } if user == "dan"))
        .await?;

    // Dan reconnects through the balancer, lands on a live node, and resumes.
    let mut dan_again = StompClient::connect(&cluster.balancer.ws_url(), "dan", &dan).await?;
    ensure!(!dan_again.node().is_empty());
    let replayed = dan_again.subscribe("/topic/room.lobby", "lobby", &[("since", "10")]).await?;
    let seqs: Vec<u64> = replayed
        .iter()
        .filter_map(|body| match room_event(body) {
            Ok(RoomEvent::Message(message)) => Some(message.seq),
            _ => None,
        })
        .collect();
    ensure!(seqs == (11..=15).collect::<Vec<_>>(), "exactly what dan missed: {seqs:?}");
    wait_for_event(&mut eve_b, |e| matches!(e, RoomEvent::Joined { user, .. } if user == "dan"))
        .await?;
    eve_b.say("/app/room.lobby", "m16", None).await?;
    let RoomEvent::Message(next) =
        wait_for_event(&mut dan_again, |e| matches!(e, RoomEvent::Message(_))).await?
    else {
        unreachable!()
    };
    ensure!(next.seq == 16 && next.text == "m16");
    ensure!(dan_again.body_within(Duration::from_millis(300)).await?.is_none(), "nothing doubled");
    Ok(())
}

/// A fault while two publishers (one per node) send: every SEND either got a RECEIPT and
/// reached every subscriber once, in id order, or was refused.
async fn publishing_through(fault: Fault) -> Result<()> {
    const PER_PUBLISHER: usize = 120;
    let mut cluster = Cluster::start_with(2, e2e::FAST_SEEDING).await?;
    let lb = cluster.balancer.addr;
    let mut readers = Vec::new();
    for (index, name) in ["ann", "bob"].into_iter().enumerate() {
        let token = register(lb, name).await?;
        let mut reader = on_node(&cluster, index, name, &token).await?;
        reader.subscribe("/topic/room.lobby", "lobby", &[]).await?;
        readers.push(reader);
    }
    let receipted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let refusals = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for index in 0..2 {
        let name = format!("pub{index}");
        let token = register(lb, &name).await?;
        let url = cluster.nodes[index].ws_url();
        let (receipted, refusals) = (receipted.clone(), refusals.clone());
        publishers.push(tokio::spawn(async move {
            let mut client = StompClient::connect(&url, &name, &token).await?;
            for n in 0..PER_PUBLISHER {
                let text = format!("{name}-{n}");
                // Until it is taken: a refusal closes the session, and the next try (with the
                // same idempotency key) may find the first one stored after all.
                loop {
                    match client.say("/app/room.lobby", &text, Some(&text)).await {
                        Ok(_) => break,
                        Err(_) => loop {
                            refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            if let Ok(again) = StompClient::connect(&url, &name, &token).await {
                                client = again;
                                break;
                            }
                        },
                    }
                }
                receipted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(text);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            anyhow::Ok(())
        }));
    }
    eventually("a third of the messages", || async {
        let n = receipted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        Ok((n >= PER_PUBLISHER * 2 / 3).then_some(()))
    })
    .await?;
    match fault {
        Fault::Redis => {
            cluster.redis.kill().await?;
            let node = cluster.nodes[0].addr;
            eventually("the node to see its bus gone", || async {
                Ok(e2e::http_get(node, "/healthz").await?.contains("disconnected").then_some(()))
            })
            .await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
            cluster.redis.start_again().await?;
        }
        Fault::Postgres => cluster.postgres.restart().await?,
    }
    for publisher in publishers {
        publisher.await??;
    }
    let refused = refusals.load(std::sync::atomic::Ordering::Relaxed);
    match fault {
        // Storing never stopped: nothing was refused.
        Fault::Redis => ensure!(refused == 0, "{refused} SENDs refused while only Redis was away"),
        // The fault came while they published.
        Fault::Postgres => ensure!(refused > 0, "no SEND met the restart"),
    }
    let receipted = receipted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    ensure!(receipted.len() == 2 * PER_PUBLISHER, "every message was taken in the end");

    // What the store holds, in order: what every reader must have had, once each.
    let token = register(lb, "auditor").await?;
    let mut stored = Vec::new();
    loop {
        let path = format!("/api/rooms/lobby/messages?after={}&limit=200", stored.len());
        let (status, page) = e2e::http_json(lb, "GET", &path, Some(&token), None).await?;
        ensure!(status == 200, "{page}");
        let messages: Vec<shared::chat::ChatMessage> =
            serde_json::from_value(page["messages"].clone())?;
        stored.extend(messages.into_iter().map(|message| (message.seq, message.text)));
        if page["more"] != true {
            break;
        }
    }
    ensure!(
        stored.iter().map(|(seq, _)| *seq).eq(1..=stored.len() as u64),
        "the store's ids run without gaps"
    );
    let stored_texts: HashSet<&String> = stored.iter().map(|(_, text)| text).collect();
    ensure!(receipted.iter().all(|text| stored_texts.contains(text)), "every RECEIPT means stored");
    for (reader, name) in readers.iter_mut().zip(["ann", "bob"]) {
        let mut seen = Vec::new();
        while seen.len() < stored.len() {
            if let RoomEvent::Message(message) = room_event(&reader.next_body().await?)? {
                seen.push((message.seq, message.text));
            }
        }
        ensure!(seen == stored, "{name} got every stored message once, in order");
        ensure!(
            reader
                .body_within(Duration::from_millis(300))
                .await?
                .iter()
                .all(|body| { !matches!(room_event(body), Ok(RoomEvent::Message(_))) }),
            "{name} got nothing twice"
        );
    }
    Ok(())
}

/// What fails while the publishers publish.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Redis is killed and started again: live delivery pauses, storing goes on.
    Redis,
    /// PostgreSQL is killed and started again: storing pauses and SENDs are refused.
    Postgres,
}

#[tokio::test]
async fn a_redis_restart_while_publishing_loses_and_doubles_nothing() -> Result<()> {
    publishing_through(Fault::Redis).await
}

#[tokio::test]
async fn a_postgres_restart_while_publishing_loses_and_doubles_nothing() -> Result<()> {
    publishing_through(Fault::Postgres).await
}

#[tokio::test]
async fn two_browsers_on_different_nodes_behind_the_balancer() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let driver = ChromeDriver::start().await?;
    let mut pages = Vec::new();
    for name in ["hal", "ida"] {
        let browser = driver.browser().await?;
        browser.open_sign_up(&cluster.balancer.url()).await?;
        browser.type_into("#username", name).await?;
        browser.type_into("#password", e2e::PASSWORD).await?;
        browser.click("#submit").await?;
        browser.wait_for_text("#status", "Online").await?;
        pages.push(browser);
    }
    let spread = cluster.sessions_per_node().await;
    ensure!(
        spread.iter().filter(|&&n| n == 1).count() == 2,
        "one session on each of two nodes: {spread:?}"
    );
    let (hal, ida) = (&pages[0], &pages[1]);
    hal.wait_for_text("#members", "ida").await?;
    ida.type_into("#draft", "hello from another node\u{E007}").await?;
    hal.wait_for_text("#messages .message:not(.pending) .text", "hello from another node").await?;
    hal.screenshot("cluster-hal").await?;
    for page in pages {
        page.close().await?;
    }
    Ok(())
}

/// The ERROR a fresh connection of `user` on node `index` gets for `frame`.
async fn refusal(
    cluster: &Cluster,
    index: usize,
    user: &str,
    token: &str,
    frame: shared::stomp::ClientFrame,
) -> Result<String> {
    let mut client = on_node(cluster, index, user, token).await?;
    client.send_frame(frame).await?;
    loop {
        if let shared::stomp::ServerFrame::Error { message, .. } = client.next_frame().await? {
            return Ok(message.unwrap_or_default());
        }
    }
}

fn subscribe_frame(room: &str, since: Option<&str>) -> shared::stomp::ClientFrame {
    shared::stomp::ClientFrame::Subscribe {
        destination: format!("/topic/room.{room}"),
        id: "s".into(),
        ack: shared::stomp::AckMode::Auto,
        receipt: None,
        headers: since.map(|since| ("since", since)).into_iter().collect(),
    }
}

fn send_frame(destination: &str, content_type: &str, body: &str) -> shared::stomp::ClientFrame {
    shared::stomp::ClientFrame::Send {
        destination: destination.into(),
        transaction: None,
        receipt: None,
        headers: [("content-type", content_type)].into_iter().collect(),
        body: bytes::Bytes::from(body.to_owned()),
    }
}

/// Issue 11, item 4, on three nodes: a private room's outsider, a banned person and a muted
/// one are refused on every path whichever node they use, and a ban made through one node
/// ends the banned person's subscription on another at the ban's entry.
#[tokio::test]
async fn room_rules_hold_on_every_node() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let lb = cluster.balancer.addr;
    let (ann, bob, cat) =
        (register(lb, "ann").await?, register(lb, "bob").await?, register(lb, "cat").await?);
    let node = |index: usize| cluster.nodes[index].addr;
    let create = |name: &str, private: bool| serde_json::json!({"name": name, "private": private});
    let (status, _) =
        e2e::http_json(node(0), "POST", "/api/rooms", Some(&ann), Some(&create("board", true)))
            .await?;
    ensure!(status == 201);
    let (status, _) =
        e2e::http_json(node(0), "POST", "/api/rooms", Some(&ann), Some(&create("dev", false)))
            .await?;
    ensure!(status == 201);
    let mut ann_a = on_node(&cluster, 0, "ann", &ann).await?;
    ann_a.say("/app/room.board", "the budget", None).await?;

    // The outsider, through every node.
    for index in 0..3 {
        let (status, body) =
            e2e::http_json(node(index), "GET", "/api/rooms/board/messages", Some(&cat), None)
                .await?;
        ensure!(status == 403 && !body.to_string().contains("budget"), "{status} {body}");
        for frame in [
            subscribe_frame("board", None),
            subscribe_frame("board", Some("0")),
            send_frame("/app/room.board", "text/plain", "let me in"),
            send_frame("/topic/room.board", "text/plain", "let me in"),
        ] {
            let error = refusal(&cluster, index, "cat", &cat, frame).await?;
            ensure!(error == "no such room, or it is private", "node {index}: {error}");
        }
    }

    // A ban made on node 0 ends cat's subscription on node 1 at the ban's entry.
    let mut cat_b = on_node(&cluster, 1, "cat", &cat).await?;
    cat_b.subscribe("/topic/room.dev", "dev", &[]).await?;
    let mut bob_c = on_node(&cluster, 2, "bob", &bob).await?;
    bob_c.subscribe("/topic/room.dev", "dev", &[]).await?;
    let ban = serde_json::json!({"type": "banned", "user": "cat"});
    let (status, entry) =
        e2e::http_json(node(0), "POST", "/api/rooms/dev/changes", Some(&ann), Some(&ban)).await?;
    ensure!(status == 201, "{entry}");
    for client in [&mut cat_b, &mut bob_c] {
        wait_for_event(
            client,
            |e| matches!(e, RoomEvent::Message(m) if m.text == "ann banned cat"),
        )
        .await?;
    }
    ann_a.say("/app/room.dev", "after the ban", None).await?;
    wait_for_event(&mut bob_c, |e| matches!(e, RoomEvent::Message(m) if m.text == "after the ban"))
        .await?;
    ensure!(
        cat_b.body_within(Duration::from_millis(500)).await?.is_none(),
        "cat hears nothing more"
    );
    for index in 0..3 {
        for frame in
            [subscribe_frame("dev", Some("1")), send_frame("/app/room.dev", "text/plain", "back")]
        {
            let error = refusal(&cluster, index, "cat", &cat, frame).await?;
            ensure!(error == "you are banned from this room", "node {index}: {error}");
        }
    }

    // A mute made on node 1 holds on node 2; reading still works on node 0.
    let mute = serde_json::json!({"type": "muted", "user": "bob"});
    let (status, _) =
        e2e::http_json(node(1), "POST", "/api/rooms/dev/changes", Some(&ann), Some(&mute)).await?;
    ensure!(status == 201);
    for frame in [
        send_frame("/app/room.dev", "text/plain", "hello?"),
        send_frame("/app/room.dev", "application/json", r#"{"type":"typing"}"#),
    ] {
        let error = refusal(&cluster, 2, "bob", &bob, frame).await?;
        ensure!(error == "you are muted in this room", "{error}");
    }
    let (status, _) =
        e2e::http_json(node(0), "GET", "/api/rooms/dev/messages", Some(&bob), None).await?;
    ensure!(status == 200, "muted people read");
    Ok(())
}

/// Issue 12 on three nodes: edits, reactions and deletions made through different nodes
/// reach a reader on a third node once each, in id order, interleaved with messages; and a
/// reader who resumes with `since` on yet another node gets the same entries.
#[tokio::test]
async fn message_changes_cross_nodes_once_and_in_order() -> Result<()> {
    let cluster = Cluster::start_with(3, e2e::FAST_SEEDING).await?;
    let lb = cluster.balancer.addr;
    let (ann, bob, dee) =
        (register(lb, "ann").await?, register(lb, "bob").await?, register(lb, "dee").await?);
    let mut dee_c = on_node(&cluster, 2, "dee", &dee).await?;
    dee_c.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    let mut ann_a = on_node(&cluster, 0, "ann", &ann).await?;
    let mut bob_b = on_node(&cluster, 1, "bob", &bob).await?;
    ann_a.say("/app/room.lobby", "first", None).await?;
    let first = loop {
        if let RoomEvent::Message(message) = room_event(&dee_c.next_body().await?)? {
            break message.seq;
        }
    };
    // Interleaved from two nodes: messages, edits, reactions, a deletion.
    let events = [
        (0, serde_json::json!({"type": "edit", "seq": first, "text": "first, edited"})),
        (1, serde_json::json!({"type": "react", "seq": first, "emoji": "👍", "on": true})),
        (1, serde_json::json!({"type": "message", "text": "second", "reply_to": first})),
        (0, serde_json::json!({"type": "react", "seq": first, "emoji": "👍", "on": true})),
        (1, serde_json::json!({"type": "react", "seq": first, "emoji": "👍", "on": false})),
        (0, serde_json::json!({"type": "delete", "seq": first})),
    ];
    // Each sent once the reader has the one before, so that none is refused for the
    // order they arrive in (a reply to a message deleted a moment before).
    let mut entries = Vec::new();
    for (node, event) in &events {
        let client = if *node == 0 { &mut ann_a } else { &mut bob_b };
        client.send_json("/app/room.lobby", &event.to_string()).await?;
        loop {
            if let RoomEvent::Message(message) = room_event(&dee_c.next_body().await?)? {
                entries.push(message);
                break;
            }
        }
    }
    let ids: Vec<u64> = entries.iter().map(|entry| entry.seq).collect();
    ensure!(ids == (first + 1..=first + 6).collect::<Vec<_>>(), "in order: {ids:?}");
    ensure!(dee_c.body_within(Duration::from_millis(500)).await?.is_none(), "nothing doubled");
    let kinds: HashSet<String> = entries
        .iter()
        .map(|entry| match &entry.change {
            Some(change) => {
                serde_json::to_value(change).map(|v| v["type"].to_string()).unwrap_or_default()
            }
            None => "message".to_owned(),
        })
        .collect();
    ensure!(kinds.len() == 4, "edits, reactions, a message and a deletion: {kinds:?}");
    // Resumed on the first node from before the changes: the same entries, the same order.
    let mut late = on_node(&cluster, 0, "dee", &dee).await?;
    let since = first.to_string();
    let mut replayed = Vec::new();
    for body in late.subscribe("/topic/room.lobby", "lobby", &[("since", since.as_str())]).await? {
        if let RoomEvent::Message(message) = room_event(&body)? {
            replayed.push(message);
        }
    }
    while replayed.len() < events.len() {
        if let RoomEvent::Message(message) = room_event(&late.next_body().await?)? {
            replayed.push(message);
        }
    }
    // The same entries, the same order; replayed after the deletion, the edit no longer
    // carries the deleted text, and the reply quotes its original as deleted.
    let shape = |list: &[shared::chat::ChatMessage]| {
        list.iter()
            .map(|entry| (entry.seq, entry.change.as_ref().map(|c| c.describe("", str::to_owned))))
            .collect::<Vec<_>>()
    };
    ensure!(
        replayed[0].change
            == Some(shared::chat::RoomChange::Edited { seq: first, text: String::new() }),
        "{:?}",
        replayed[0]
    );
    ensure!(
        shape(&replayed) == shape(&entries),
        "a resume on another node gets what a live reader got: {:?} then {:?}",
        shape(&entries),
        shape(&replayed)
    );
    // History on the third node: the message as it is now.
    let (status, page) =
        e2e::http_json(cluster.nodes[2].addr, "GET", "/api/rooms/lobby/messages", Some(&dee), None)
            .await?;
    ensure!(status == 200);
    let original = page["messages"]
        .as_array()
        .and_then(|messages| messages.iter().find(|m| m["seq"] == first))
        .cloned()
        .unwrap_or_default();
    ensure!(original["deleted"] == true && original["text"] == "", "{original}");
    Ok(())
}
