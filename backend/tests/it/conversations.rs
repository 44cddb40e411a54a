//! Edits, deletions, reactions, replies and mentions (issue 12): each change to a message
//! is a numbered entry of the room's stream, delivered once and in id order, replayed on
//! resume, and folded into the message that history returns. On every setup. The attempts
//! that must fail are listed in the style of the security review.

use serde_json::{Value, json};
use shared::chat::{ChatMessage, DirectMessage, RoomChange, RoomEvent};

use crate::on_every_setup;
use crate::support::{Client, Setup, TestServer};

/// Sends a chat event as JSON to a room and waits for its RECEIPT, passing over the
/// MESSAGEs that come first; returns them.
async fn event(client: &mut Client, room: &str, body: Value, receipt: &str) -> Vec<ChatMessage> {
    client
        .send(&format!(
            "SEND\ndestination:/app/room.{room}\ncontent-type:application/json\nreceipt:{receipt}\n\n{body}\0"
        ))
        .await;
    let mut messages = Vec::new();
    loop {
        let frame = client.recv().await;
        if frame.command.as_str() == "RECEIPT" && frame.headers.get("receipt-id") == Some(receipt) {
            return messages;
        }
        assert_eq!(frame.command.as_str(), "MESSAGE", "{frame:?}");
        if let Ok(RoomEvent::Message(message)) = serde_json::from_slice(&frame.body) {
            messages.push(message);
        }
    }
}

/// The next stored entry of a room, passing over presence and typing.
async fn next_entry(client: &mut Client) -> ChatMessage {
    loop {
        if let RoomEvent::Message(message) = client.expect_room_event().await {
            return message;
        }
    }
}

async fn history(server: &TestServer, user: &str, query: &str) -> Vec<ChatMessage> {
    let token = server.token(user).await;
    let (status, page) = server
        .request("GET", &format!("/api/rooms/dev/messages?{query}"), Some(&token), None)
        .await;
    assert_eq!(status, 200, "{page}");
    serde_json::from_value(page["messages"].clone()).unwrap()
}

/// Two people edit, react, reply and delete; the other sees each change live, once, in id
/// order; history returns each message as it is now; a deleted message's text is gone from
/// its edits too.
async fn changes_to_messages_are_entries_of_the_stream(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("dev", "d").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("dev", "d").await;
    // carol only listens.
    let mut carol = Client::connect(&server, "carol").await;
    carol.join("dev", "d").await;

    event(&mut ann, "dev", json!({"type": "message", "text": "helo"}), "m").await;
    let said = next_entry(&mut carol).await;
    assert_eq!(said.text, "helo");
    let seq = said.seq;

    event(&mut ann, "dev", json!({"type": "edit", "seq": seq, "text": "hello @bob"}), "e").await;
    event(&mut bob, "dev", json!({"type": "react", "seq": seq, "emoji": "👍", "on": true}), "r1")
        .await;
    event(&mut ann, "dev", json!({"type": "react", "seq": seq, "emoji": "👍", "on": true}), "r2")
        .await;
    event(&mut bob, "dev", json!({"type": "react", "seq": seq, "emoji": "👍", "on": false}), "r3")
        .await;
    let reply = json!({"type": "message", "text": "thanks", "reply_to": seq});
    event(&mut bob, "dev", reply, "re").await;

    // Each entry reached carol once, in id order, right after the message.
    let mut entries = Vec::new();
    while entries.len() < 5 {
        entries.push(next_entry(&mut carol).await);
    }
    let ids: Vec<u64> = entries.iter().map(|entry| entry.seq).collect();
    assert_eq!(ids, (seq + 1..=seq + 5).collect::<Vec<_>>());
    assert_eq!(
        entries[0].change,
        Some(RoomChange::Edited { seq, text: "hello @bob".into() }),
        "the edit carries the new text"
    );
    let reaction = |on| Some(RoomChange::Reacted { seq, emoji: "👍".into(), on });
    assert_eq!(entries[1].change, reaction(true));
    assert_eq!((entries[1].sender.as_str(), entries[3].change.clone()), ("bob", reaction(false)));
    let quote = entries[4].reply_to.clone().expect("the reply quotes what it answers");
    assert_eq!((quote.seq, quote.sender.as_str(), quote.text.as_str()), (seq, "ann", "hello @bob"));

    // History: the message as it is now; the reply's quote as the original reads now.
    let page = history(&server, "bob", "").await;
    let message = page.iter().find(|message| message.seq == seq).unwrap();
    assert_eq!(message.text, "hello @bob");
    assert!(message.edited_at.is_some());
    assert_eq!(message.mentions, ["bob"]);
    assert_eq!(message.reactions.len(), 1);
    assert_eq!(
        (message.reactions[0].emoji.as_str(), &message.reactions[0].users),
        ("👍", &vec!["ann".to_owned()])
    );

    // Deleted: the text is gone from the message, from its edit, and from the quote.
    event(&mut ann, "dev", json!({"type": "delete", "seq": seq}), "x").await;
    let page = history(&server, "bob", "").await;
    let message = page.iter().find(|message| message.seq == seq).unwrap();
    assert!(message.deleted && message.text.is_empty() && message.reactions.is_empty());
    assert!(message.mentions.is_empty());
    assert!(page.iter().all(|message| message.change.is_none()), "history pages are to read");
    let every = history(&server, "bob", &format!("after={}", seq - 1)).await;
    let edit = every.iter().find(|message| message.seq == seq + 1).unwrap();
    assert_eq!(edit.change, Some(RoomChange::Edited { seq, text: String::new() }));
    let reply = page.iter().find(|message| message.seq == seq + 5).unwrap();
    let quote = reply.reply_to.clone().unwrap();
    assert!(quote.deleted && quote.text.is_empty(), "{quote:?}");
    assert!(!serde_json::to_string(&page).unwrap().contains("hello @bob"));
}
on_every_setup!(changes_to_messages_are_entries_of_the_stream);

/// A client that was away resumes with `since` and gets the edit, the reaction and the
/// deletion it missed, in order, after the message.
async fn a_resumed_client_catches_up_on_changes(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("dev", "d").await;
    let said = event(&mut ann, "dev", json!({"type": "message", "text": "one"}), "1").await;
    let first = said[0].seq;
    event(&mut ann, "dev", json!({"type": "message", "text": "two"}), "2").await;
    // bob was here up to `first + 1`, then away.
    event(&mut ann, "dev", json!({"type": "edit", "seq": first, "text": "uno"}), "e").await;
    event(
        &mut ann,
        "dev",
        json!({"type": "react", "seq": first + 1, "emoji": "🎉", "on": true}),
        "r",
    )
    .await;
    event(&mut ann, "dev", json!({"type": "delete", "seq": first + 1}), "x").await;
    let mut bob = Client::connect(&server, "bob").await;
    let (_, replayed) = bob.join_with_history("dev", "d", &format!("since:{}\n", first + 1)).await;
    let changes: Vec<Option<RoomChange>> = replayed.iter().map(|m| m.change.clone()).collect();
    assert_eq!(
        changes,
        [
            Some(RoomChange::Edited { seq: first, text: "uno".into() }),
            Some(RoomChange::Reacted { seq: first + 1, emoji: "🎉".into(), on: true }),
            Some(RoomChange::Deleted { seq: first + 1 }),
        ]
    );
    let ids: Vec<u64> = replayed.iter().map(|m| m.seq).collect();
    assert_eq!(ids, [first + 2, first + 3, first + 4]);
}
on_every_setup!(a_resumed_client_catches_up_on_changes);

/// Every attempt that must fail, and the words it fails with; nothing of it is stored.
async fn changes_others_may_not_make_are_refused(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("dev", "d").await;
    let said = event(&mut ann, "dev", json!({"type": "message", "text": "mine"}), "m").await;
    let seq = said[0].seq;
    let mut bob = Client::connect(&server, "bob").await;
    bob.join("dev", "d").await;
    let mut bob_refusals = vec![
        (
            json!({"type": "edit", "seq": seq, "text": "yours now"}),
            "only its author may edit a message",
        ),
        (
            json!({"type": "delete", "seq": seq}),
            "only moderators and owners (or its author) may do that",
        ),
        (json!({"type": "edit", "seq": 999, "text": "x"}), "no such message"),
        (json!({"type": "react", "seq": 999, "emoji": "👍", "on": true}), "no such message"),
        (
            json!({"type": "react", "seq": seq, "emoji": "ok", "on": true}),
            "a reaction is one emoji, not text",
        ),
        (
            json!({"type": "react", "seq": seq, "emoji": "", "on": true}),
            "a reaction is one emoji (1 to 12 characters)",
        ),
        (json!({"type": "edit", "seq": seq, "text": " "}), "message is empty"),
        (json!({"type": "message", "text": "re", "reply_to": 999}), "no message 999 in this room"),
        (json!({"type": "edit", "seq": "x", "text": "x"}), "invalid chat event"),
    ];
    // A change entry is no message to edit or react to.
    let change = json!({"type": "topic", "topic": "plans"});
    let token = server.token("ann").await;
    let (status, entry) =
        server.request("POST", "/api/rooms/dev/changes", Some(&token), Some(&change)).await;
    assert_eq!(status, 201, "{entry}");
    let entry_seq = entry["seq"].as_u64().unwrap();
    bob_refusals.push((
        json!({"type": "react", "seq": entry_seq, "emoji": "👍", "on": true}),
        "no such message",
    ));
    for (body, expected) in bob_refusals {
        let mut client = Client::connect(&server, "bob").await;
        client
            .send(&format!(
                "SEND\ndestination:/app/room.dev\ncontent-type:application/json\n\n{body}\0"
            ))
            .await;
        let error = client.expect_error().await;
        assert!(error.starts_with(expected), "{body}: {error}");
    }
    // A direct conversation has no message 1 yet.
    let mut client = Client::connect(&server, "bob").await;
    client
        .send("SEND\ndestination:/app/dm.ann\ncontent-type:application/json\n\n{\"type\":\"delete\",\"seq\":1}\0")
        .await;
    assert_eq!(client.expect_error().await, "no such message");

    // A non-member of a private room, and someone banned.
    let (status, _) = server
        .request(
            "POST",
            "/api/rooms",
            Some(&token),
            Some(&json!({"name": "board", "private": true})),
        )
        .await;
    assert_eq!(status, 201);
    let mut owner = Client::connect(&server, "ann").await;
    owner.join("board", "b").await;
    let private =
        event(&mut owner, "board", json!({"type": "message", "text": "secret"}), "p").await;
    let private_seq = private.last().unwrap().seq;
    let react = json!({"type": "react", "seq": private_seq, "emoji": "👍", "on": true});
    let mut carol = Client::connect(&server, "carol").await;
    carol
        .send(&format!(
            "SEND\ndestination:/app/room.board\ncontent-type:application/json\n\n{react}\0"
        ))
        .await;
    assert_eq!(carol.expect_error().await, "no such room, or it is private");
    let ban = json!({"type": "banned", "user": "bob"});
    let (status, _) =
        server.request("POST", "/api/rooms/dev/changes", Some(&token), Some(&ban)).await;
    assert_eq!(status, 201);
    let mut banned = Client::connect(&server, "bob").await;
    let react = json!({"type": "react", "seq": seq, "emoji": "👍", "on": true});
    banned
        .send(&format!(
            "SEND\ndestination:/app/room.dev\ncontent-type:application/json\n\n{react}\0"
        ))
        .await;
    assert_eq!(banned.expect_error().await, "you are banned from this room");
    // Signed out, over HTTP.
    let edit = json!({"type": "edited", "seq": seq, "text": "anon"});
    let (status, _) = server.request("POST", "/api/rooms/dev/changes", None, Some(&edit)).await;
    assert_eq!(status, 401);
    // Twenty different emoji at most on one message.
    let palette = "😀😁😂🤣😃😄😅😆😉😊😋😎😍😘🥰😗😙😚🙂🤗";
    for (n, emoji) in palette.chars().enumerate() {
        let body = json!({"type": "react", "seq": seq, "emoji": emoji.to_string(), "on": true});
        event(&mut ann, "dev", body, &format!("p{n}")).await;
    }
    let mut client = Client::connect(&server, "ann").await;
    let body = json!({"type": "react", "seq": seq, "emoji": "🤔", "on": true});
    client
        .send(&format!(
            "SEND\ndestination:/app/room.dev\ncontent-type:application/json\n\n{body}\0"
        ))
        .await;
    assert_eq!(client.expect_error().await, "a message has at most 20 different reactions");
    // Nothing refused was stored: the message reads as ann wrote it.
    let page = history(&server, "ann", "").await;
    let message = page.iter().find(|message| message.seq == seq).unwrap();
    assert_eq!((message.text.as_str(), message.reactions.len()), ("mine", 20));
    assert!(message.reactions.iter().all(|reaction| reaction.users == ["ann"]));
}
on_every_setup!(changes_others_may_not_make_are_refused);

/// `around` pages history with a message in its middle; a reply over HTTP quotes what it
/// answers; bad paging is a 400.
async fn history_pages_around_a_message(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let token = server.token("ann").await;
    for n in 1..=30 {
        let (status, _) = server
            .request(
                "POST",
                "/api/rooms/dev/messages",
                Some(&token),
                Some(&json!({"text": format!("m{n}")})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let ids = |page: &[ChatMessage]| page.iter().map(|m| m.seq).collect::<Vec<_>>();
    let page = history(&server, "ann", "around=15&limit=10").await;
    assert_eq!(ids(&page), (11..=20).collect::<Vec<_>>());
    let page = history(&server, "ann", "around=2&limit=10").await;
    assert_eq!(ids(&page), (1..=10).collect::<Vec<_>>());
    let page = history(&server, "ann", "around=30&limit=4").await;
    assert_eq!(ids(&page), [27, 28, 29, 30]);
    for query in
        ["around=3&before=9", "around=3&after=1", "around=x", "around=99999999999999999999"]
    {
        let (status, body) = server
            .request("GET", &format!("/api/rooms/dev/messages?{query}"), Some(&token), None)
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body["error"].is_string());
    }
    let (status, reply) = server
        .request(
            "POST",
            "/api/rooms/dev/messages",
            Some(&token),
            Some(&json!({"text": "about m3", "reply_to": 3})),
        )
        .await;
    assert_eq!(status, 201, "{reply}");
    assert_eq!(reply["reply_to"], json!({"seq": 3, "sender": "ann", "text": "m3"}));
    let (status, body) = server
        .request(
            "POST",
            "/api/rooms/dev/messages",
            Some(&token),
            Some(&json!({"text": "about nothing", "reply_to": 500})),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("no message 500 in this room")));
}
on_every_setup!(history_pages_around_a_message);

/// Mentions name members only; the room list counts unread messages (not changes) and,
/// among them, those that mention the reader.
async fn mentions_are_stored_and_counted(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let bob = server.token("bob").await;
    let (status, _) = server.request("POST", "/api/rooms/dev/join", Some(&bob), None).await;
    assert_eq!(status, 204);
    server.token("carol").await; // an account, not a member
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("dev", "d").await;
    let said =
        event(&mut ann, "dev", json!({"type": "message", "text": "@bob @carol @nobody look"}), "1")
            .await;
    assert_eq!(said[0].mentions, ["bob"], "only members are mentioned");
    let seq = said[0].seq;
    event(&mut ann, "dev", json!({"type": "message", "text": "no mention"}), "2").await;
    event(&mut ann, "dev", json!({"type": "message", "text": "`@bob` in code, bob@mail"}), "3")
        .await;
    event(&mut ann, "dev", json!({"type": "react", "seq": seq, "emoji": "👀", "on": true}), "4")
        .await;
    event(&mut ann, "dev", json!({"type": "edit", "seq": seq + 1, "text": "now @bob"}), "5").await;
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    let dev = rooms.as_array().unwrap().iter().find(|room| room["name"] == "dev").unwrap();
    assert_eq!((dev["unread"].as_u64(), dev["mentions"].as_u64()), (Some(3), Some(2)), "{dev}");
    // Reading up to the end clears both.
    let last = dev["last_seq"].as_u64().unwrap();
    let (status, _) = server
        .request("POST", "/api/rooms/dev/read", Some(&bob), Some(&json!({"seq": last})))
        .await;
    assert_eq!(status, 204);
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&bob), None).await;
    let dev = rooms.as_array().unwrap().iter().find(|room| room["name"] == "dev").unwrap();
    assert_eq!((dev["unread"].as_u64(), dev["mentions"].as_u64()), (Some(0), Some(0)));
    // Nobody counts their own messages as unread.
    let ann_token = server.token("ann").await;
    let (_, rooms) = server.request("GET", "/api/rooms", Some(&ann_token), None).await;
    let dev = rooms.as_array().unwrap().iter().find(|room| room["name"] == "dev").unwrap();
    assert_eq!(dev["unread"].as_u64(), Some(0));
}
on_every_setup!(mentions_are_stored_and_counted);

/// Sends a chat event as JSON to `/app/dm.<peer>` and waits for its RECEIPT; returns the
/// inbox entries that came first.
async fn dm_event(
    client: &mut Client,
    peer: &str,
    body: Value,
    receipt: &str,
) -> Vec<DirectMessage> {
    client
        .send(&format!(
            "SEND\ndestination:/app/dm.{peer}\ncontent-type:application/json\nreceipt:{receipt}\n\n{body}\0"
        ))
        .await;
    let mut entries = Vec::new();
    loop {
        let frame = client.recv().await;
        if frame.command.as_str() == "RECEIPT" && frame.headers.get("receipt-id") == Some(receipt) {
            return entries;
        }
        if let Ok(entry) = serde_json::from_slice::<DirectMessage>(&frame.body) {
            entries.push(entry);
        }
    }
}

/// The next entry of the inbox.
async fn next_dm(client: &mut Client) -> DirectMessage {
    loop {
        let (_, body) = client.expect_message().await;
        if let Ok(entry) = serde_json::from_str::<DirectMessage>(&body) {
            return entry;
        }
    }
}

/// Direct messages change the same way, in both inboxes, each numbering its own copy:
/// the author edits and deletes, both react, nobody else touches them.
async fn direct_messages_are_edited_deleted_and_reacted_to(setup: Setup) {
    let server = TestServer::start_on(setup, |_| {}).await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.subscribe("/user/queue/dm", "dm").await;
    let mut bob = Client::connect(&server, "bob").await;
    bob.subscribe("/user/queue/dm", "dm").await;
    // bob's inbox numbers differ from ann's: he has a note to himself first.
    dm_event(&mut bob, "bob", json!({"type": "message", "text": "note to self"}), "n").await;
    let sent = dm_event(&mut ann, "bob", json!({"type": "message", "text": "helo bob"}), "m").await;
    let ann_copy = match sent.into_iter().next() {
        Some(copy) => copy,
        None => next_dm(&mut ann).await,
    };
    let bob_copy = next_dm(&mut bob).await;
    assert_eq!((ann_copy.text.as_str(), bob_copy.text.as_str()), ("helo bob", "helo bob"));
    assert_ne!(ann_copy.seq, bob_copy.seq, "each inbox numbers its own copy");

    dm_event(
        &mut ann,
        "bob",
        json!({"type": "edit", "seq": ann_copy.seq, "text": "hello bob"}),
        "e",
    )
    .await;
    let seen = next_dm(&mut bob).await;
    assert_eq!(
        seen.change,
        Some(RoomChange::Edited { seq: bob_copy.seq, text: "hello bob".into() })
    );
    let react = json!({"type": "react", "seq": bob_copy.seq, "emoji": "👍", "on": true});
    dm_event(&mut bob, "ann", react, "r").await;
    let seen = next_dm(&mut ann).await;
    let expected = RoomChange::Reacted { seq: ann_copy.seq, emoji: "👍".into(), on: true };
    assert_eq!((seen.change, seen.from.as_str()), (Some(expected), "bob"));

    // Refused: bob edits or deletes ann's message; carol, outside, reacts to it.
    for (body, expected) in [
        (
            json!({"type": "edit", "seq": bob_copy.seq, "text": "mine now"}),
            "only its author may edit a message",
        ),
        (
            json!({"type": "delete", "seq": bob_copy.seq}),
            "only its author may delete a direct message",
        ),
        (json!({"type": "edit", "seq": 999, "text": "x"}), "no such message"),
    ] {
        let mut client = Client::connect(&server, "bob").await;
        client
            .send(&format!(
                "SEND\ndestination:/app/dm.ann\ncontent-type:application/json\n\n{body}\0"
            ))
            .await;
        assert_eq!(client.expect_error().await, expected, "{body}");
    }
    let mut carol = Client::connect(&server, "carol").await;
    let react = json!({"type": "react", "seq": ann_copy.seq, "emoji": "👍", "on": true});
    carol
        .send(&format!("SEND\ndestination:/app/dm.ann\ncontent-type:application/json\n\n{react}\0"))
        .await;
    assert_eq!(carol.expect_error().await, "no such message");

    // History, both sides: the message as it is now; then deleted, its text gone from both
    // copies and from the edit.
    let page = |user: &'static str, peer: &'static str| {
        let server = &server;
        async move {
            let token = server.token(user).await;
            let (status, page) = server
                .request("GET", &format!("/api/dms/{peer}/messages"), Some(&token), None)
                .await;
            assert_eq!(status, 200, "{page}");
            serde_json::from_value::<Vec<DirectMessage>>(page["messages"].clone()).unwrap()
        }
    };
    let bobs = page("bob", "ann").await;
    let message = bobs.iter().find(|m| m.seq == bob_copy.seq).unwrap();
    assert_eq!((message.text.as_str(), message.edited_at.is_some()), ("hello bob", true));
    assert_eq!(message.reactions.len(), 1);
    dm_event(&mut ann, "bob", json!({"type": "delete", "seq": ann_copy.seq}), "x").await;
    for (user, peer, seq) in [("ann", "bob", ann_copy.seq), ("bob", "ann", bob_copy.seq)] {
        let messages = page(user, peer).await;
        let message = messages.iter().find(|m| m.seq == seq).unwrap();
        assert!(message.deleted && message.text.is_empty() && message.reactions.is_empty());
        assert!(!serde_json::to_string(&messages).unwrap().contains("hello bob"), "{user}");
    }
    // Changes are not unread messages.
    let token = server.token("bob").await;
    let (_, dms) = server.request("GET", "/api/dms", Some(&token), None).await;
    let with_ann = dms.as_array().unwrap().iter().find(|dm| dm["peer"] == "ann").unwrap();
    assert_eq!(with_ann["unread"], 0, "{dms}");
}
on_every_setup!(direct_messages_are_edited_deleted_and_reacted_to);

/// Formatting comes parsed, beside the text (`rich`), wherever a message leaves the server:
/// live, in history, in the answer to a post, for an edit's new text, in DMs. Plain text
/// has none; a reply's snippet is plain; a tree a client makes up is never passed on.
async fn formatting_comes_parsed_with_the_text(setup: Setup) {
    use shared::markdown::{Block, Inline};
    let server = TestServer::start_on(setup, |_| {}).await;
    server.create_room("ann", "dev").await;
    let mut ann = Client::connect(&server, "ann").await;
    ann.join("dev", "d").await;
    let mut carol = Client::connect(&server, "carol").await;
    carol.join("dev", "d").await;
    let strong = |text: &str| Inline::Strong(vec![Inline::Text(text.into())]);

    event(&mut ann, "dev", json!({"type": "message", "text": "**bold** and `code`"}), "f").await;
    let formatted = next_entry(&mut carol).await;
    let tree = vec![Block::Paragraph(vec![
        strong("bold"),
        Inline::Text(" and ".into()),
        Inline::Code("code".into()),
    ])];
    assert_eq!(formatted.rich.as_ref(), Some(&tree));

    // Plain text, and a tree sent by a client (ignored: the server parses the text).
    let forged = json!({"type": "message", "text": "just @carol", "rich": [{"code": "x"}]});
    event(&mut ann, "dev", forged, "p").await;
    let plain = next_entry(&mut carol).await;
    assert_eq!((plain.text.as_str(), plain.rich.as_ref()), ("just @carol", None));

    // An unsafe link's text shows, not its target.
    let script = "[click](javascript:alert(1)) *now*";
    event(&mut ann, "dev", json!({"type": "message", "text": script}), "j").await;
    let shown = next_entry(&mut carol).await;
    let tree = serde_json::to_string(&shown.rich).unwrap();
    assert!(tree.contains("click") && !tree.contains("javascript") && !tree.contains("link"));

    // An edit carries its new text's tree; a reply's snippet is the original, plain.
    let edit = json!({"type": "edit", "seq": plain.seq, "text": "~~just~~ @carol"});
    event(&mut ann, "dev", edit, "e").await;
    let edited = next_entry(&mut carol).await;
    let struck = edited.rich.expect("the edit's tree");
    assert!(
        matches!(&struck[0], Block::Paragraph(inlines) if matches!(inlines[0], Inline::Strike(_)))
    );
    let reply = json!({"type": "message", "text": "yes", "reply_to": formatted.seq});
    event(&mut carol, "dev", reply, "r").await;
    let reply = next_entry(&mut ann).await;
    assert_eq!(reply.reply_to.map(|quote| quote.text).as_deref(), Some("bold and code"));

    // History and the answer to an HTTP post carry the same.
    let page = history(&server, "carol", "").await;
    let first = page.iter().find(|message| message.seq == formatted.seq).unwrap();
    assert_eq!(first.rich, formatted.rich);
    let now = page.iter().find(|message| message.seq == plain.seq).unwrap();
    assert_eq!(now.rich.as_ref(), Some(&struck), "history gives the edited text's tree");
    let token = server.token("ann").await;
    let (status, posted) = server
        .request("POST", "/api/rooms/dev/messages", Some(&token), Some(&json!({"text": "**hi**"})))
        .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(posted["rich"], json!([{"paragraph": [{"strong": [{"text": "hi"}]}]}]));

    // Direct messages: live and in history.
    let mut bob = Client::connect(&server, "bob").await;
    bob.subscribe("/user/queue/dm", "dm").await;
    dm_event(&mut ann, "bob", json!({"type": "message", "text": "> quoted"}), "dm").await;
    let dm = next_dm(&mut bob).await;
    let quoted = vec![Block::Quote(vec![Block::Paragraph(vec![Inline::Text("quoted".into())])])];
    assert_eq!(dm.rich.as_ref(), Some(&quoted));
    let token = server.token("bob").await;
    let (_, page) = server.request("GET", "/api/dms/ann/messages", Some(&token), None).await;
    assert_eq!(
        page["messages"][0]["rich"],
        json!([{"quote": [{"paragraph": [{"text": "quoted"}]}]}])
    );
}
on_every_setup!(formatting_comes_parsed_with_the_text);
