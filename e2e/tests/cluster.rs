//! Scale-out: three nodes on one Redis behind HAProxy. Users on different nodes talk as if
//! on one server; a node killed with SIGKILL or a Redis restart loses nothing.

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

#[tokio::test]
async fn service_resumes_after_redis_restarts() -> Result<()> {
    let mut cluster = Cluster::start(2).await?;
    let lb = cluster.balancer.addr;
    let (fay, gus) = (register(lb, "fay").await?, register(lb, "gus").await?);
    let mut fay_a = on_node(&cluster, 0, "fay", &fay).await?;
    fay_a.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    fay_a.subscribe("/user/queue/notices", "notices", &[]).await?;
    let mut gus_b = on_node(&cluster, 1, "gus", &gus).await?;
    gus_b.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    gus_b.say("/app/room.lobby", "before", None).await?;

    cluster.redis.kill().await?;
    // The nodes keep their sockets, report not ready, and refuse to accept messages.
    let node = cluster.nodes[1].addr;
    eventually("node to report not ready", || async {
        Ok(e2e::http_get(node, "/readyz").await.ok().filter(|body| body.contains("unavailable")))
    })
    .await?;
    let refused = gus_b.say("/app/room.lobby", "during", None).await;
    ensure!(refused.is_err(), "a message that cannot be stored gets no RECEIPT");
    let message = format!("{:#}", refused.err().unwrap_or_else(|| anyhow::anyhow!("")));
    ensure!(message.contains("not accepted"), "{message}");
    // A client that listens to its notices is told instead, and keeps its connection.
    fay_a
        .send_frame(shared::stomp::ClientFrame::Send {
            destination: "/app/room.lobby".into(),
            transaction: None,
            receipt: Some("r-during".into()),
            headers: [("content-type", "text/plain")].into_iter().collect(),
            body: bytes::Bytes::from_static(b"during"),
        })
        .await?;
    let mut texts = Vec::new();
    let notice = loop {
        let body = fay_a.next_body().await?;
        if let Ok(RoomEvent::Message(message)) = room_event(&body) {
            texts.push(message.text);
        } else if let Ok(notice) = serde_json::from_slice::<Notice>(&body) {
            break notice;
        }
    };
    ensure!(
        matches!(&notice, Notice::NotAccepted { receipt: Some(receipt), .. } if receipt == "r-during"),
        "{notice:?}"
    );

    cluster.redis.start_again().await?;
    eventually("node to be ready again", || async {
        Ok(e2e::http_get(node, "/readyz").await.ok().filter(|body| body.contains("\"ready\"")))
    })
    .await?;
    let mut gus_again = on_node(&cluster, 1, "gus", &gus).await?;
    gus_again.subscribe("/topic/room.lobby", "lobby", &[("since", "1")]).await?;
    gus_again.say("/app/room.lobby", "after", None).await?;
    // Fay's node resubscribed by itself: both messages reached her, nothing lost.
    while texts.len() < 2 {
        if let RoomEvent::Message(message) = room_event(&fay_a.next_body().await?)? {
            texts.push(message.text);
        }
    }
    ensure!(texts == ["before", "after"], "{texts:?}");
    // Through the balancer too, once its health checks see the nodes ready again.
    let page = eventually("the balancer to serve history", || async {
        let (status, page) =
            e2e::http_json(lb, "GET", "/api/rooms/lobby/messages", Some(&gus), None).await?;
        Ok((status == 200).then_some(page))
    })
    .await?;
    ensure!(page["messages"].as_array().map(Vec::len) == Some(2), "{page}");
    Ok(())
}

#[tokio::test]
async fn two_browsers_on_different_nodes_behind_the_balancer() -> Result<()> {
    let cluster = Cluster::start(3).await?;
    let driver = ChromeDriver::start().await?;
    let mut pages = Vec::new();
    for name in ["hal", "ida"] {
        let browser = driver.browser().await?;
        browser.client.goto(&cluster.balancer.url()).await?;
        browser.click("#switch-mode").await?;
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
