//! The chat in real headless Chromium: people sign up, talk in rooms and in private, reload,
//! and ride out a server restart.

use anyhow::Result;
use e2e::{Browser, ChromeDriver, Confab, eventually};
use fantoccini::Locator;

const PASSWORD: &str = "a long enough password";

/// Opens the page and creates an account.
async fn sign_up(browser: &Browser, confab: &Confab, name: &str) -> Result<()> {
    browser.open_sign_up(&confab.url()).await?;
    fill_in_and_submit(browser, name).await
}

/// Opens the page and signs in to an existing account.
async fn sign_in(browser: &Browser, confab: &Confab, name: &str) -> Result<()> {
    browser.client.goto(&confab.url()).await?;
    fill_in_and_submit(browser, name).await
}

async fn fill_in_and_submit(browser: &Browser, name: &str) -> Result<()> {
    browser.type_into("#username", name).await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#status", "Online").await?;
    browser.wait_for_text("#members", name).await
}

/// Types a message and presses Enter.
async fn say(browser: &Browser, text: &str) -> Result<()> {
    browser.type_into("#draft", &format!("{text}\u{E007}")).await
}

/// Waits until the conversation shows `text` as a stored (not pending) message.
async fn wait_for_message(browser: &Browser, text: &str) -> Result<()> {
    browser.wait_for_text("#messages .message:not(.pending) .text", text).await
}

/// How many stored messages in the conversation read exactly `text`.
async fn count_messages(browser: &Browser, text: &str) -> Result<usize> {
    Ok(browser
        .texts("#messages .message:not(.pending) .text")
        .await?
        .iter()
        .filter(|t| *t == text)
        .count())
}

#[tokio::test]
async fn two_people_chat_in_the_lobby() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let bob = driver.browser().await?;
    sign_up(&bob, &confab, "bob").await?;
    let alice = driver.browser().await?;
    sign_up(&alice, &confab, "alice").await?;

    // Bob sees Alice join, in the conversation and in the member list.
    bob.wait_for_text("#messages .notice", "alice joined").await?;
    bob.wait_for_text("#members", "alice").await?;

    // Alice's message reaches Bob with Alice as the sender.
    say(&alice, "hello bob").await?;
    wait_for_message(&bob, "hello bob").await?;
    assert_eq!(bob.texts("#messages .message .sender").await?, ["alice"]);
    alice.wait_for_text("#messages .message.mine:not(.pending)", "hello bob").await?;

    // Markup is shown as text, never run.
    let hostile = "<img src=x onerror=alert(1)>";
    say(&alice, hostile).await?;
    wait_for_message(&bob, hostile).await?;
    assert!(bob.client.find_all(Locator::Css("#messages img")).await?.is_empty());
    assert!(bob.client.get_alert_text().await.is_err(), "no alert may open");

    // Bob types: Alice sees it.
    bob.type_into("#draft", "hi al").await?;
    alice.wait_for_text("#typing", "bob is typing…").await?;
    say(&bob, "ice, welcome").await?;
    wait_for_message(&alice, "hi alice, welcome").await?;
    bob.screenshot("lobby-bob").await?;
    alice.screenshot("lobby-alice").await?;

    // Bob's page closes: Alice sees him leave.
    bob.close().await?;
    alice.wait_for_text("#messages .notice", "bob left").await?;
    eventually("bob to leave the member list", || async {
        Ok((!alice.texts("#members li").await?.iter().any(|m| m.contains("bob"))).then_some(()))
    })
    .await?;
    alice.close().await
}

#[tokio::test]
async fn a_new_room_keeps_its_history_across_a_reload() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let erin = driver.browser().await?;
    sign_up(&erin, &confab, "erin").await?;
    let frank = driver.browser().await?;
    sign_up(&frank, &confab, "frank").await?;

    erin.click("#new-room").await?;
    erin.type_into("#new-room-name", "design\u{E007}").await?;
    erin.wait_for_text("#conversation-title", "# design").await?;
    // Frank sees the new room appear under "More rooms", joins it, and gets an unread badge
    // from the lobby.
    frank.wait_for_text("#other-rooms", "design").await?;
    frank.click("#other-rooms [data-room=design]").await?;
    frank.wait_for_text("#conversation-title", "# design").await?;
    erin.wait_for_text("#members", "frank").await?;
    for text in ["first draft is up", "looks great", "shipping it"] {
        say(&erin, text).await?;
        wait_for_message(&frank, text).await?;
    }
    frank.click("#rooms [data-room=lobby]").await?;
    say(&erin, "one more thing").await?;
    frank.wait_for_text("#rooms [data-room=design] .badge", "1").await?;

    erin.client.refresh().await?;
    erin.wait_for_text("#status", "Online").await?;
    erin.click("#rooms [data-room=design]").await?;
    for text in ["first draft is up", "looks great", "shipping it", "one more thing"] {
        wait_for_message(&erin, text).await?;
    }
    erin.wait_for_text("#messages .day", "Today").await?;
    erin.screenshot("room-after-reload").await?;
    erin.close().await?;
    frank.close().await
}

#[tokio::test]
async fn a_server_restart_loses_and_doubles_nothing() -> Result<()> {
    let mut confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let gina = driver.browser().await?;
    sign_up(&gina, &confab, "gina").await?;
    let hank = driver.browser().await?;
    sign_up(&hank, &confab, "hank").await?;
    say(&gina, "before the restart").await?;
    wait_for_message(&hank, "before the restart").await?;

    confab.kill().await?;
    gina.wait_for_text("#status", "Offline").await?;
    say(&gina, "said while the server was down").await?;
    gina.wait_for_text("#messages .message.pending", "said while the server was down").await?;
    gina.screenshot("offline-pending").await?;

    confab.start_again().await?;
    gina.wait_for_text("#status", "Online").await?;
    hank.wait_for_text("#status", "Online").await?;
    wait_for_message(&hank, "said while the server was down").await?;
    wait_for_message(&gina, "said while the server was down").await?;
    eventually("the pending copy to go", || async {
        Ok(gina
            .client
            .find_all(Locator::Css("#messages .message.pending"))
            .await?
            .is_empty()
            .then_some(()))
    })
    .await?;
    for browser in [&gina, &hank] {
        assert_eq!(count_messages(browser, "before the restart").await?, 1);
        assert_eq!(count_messages(browser, "said while the server was down").await?, 1);
    }
    gina.close().await?;
    hank.close().await
}

#[tokio::test]
async fn a_direct_message_between_two_people() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ivy = driver.browser().await?;
    sign_up(&ivy, &confab, "ivy").await?;
    let jack = driver.browser().await?;
    sign_up(&jack, &confab, "jack").await?;
    ivy.wait_for_text("#members", "jack").await?;
    ivy.click("#members button:not([disabled])").await?;
    ivy.wait_for_text("#conversation-title", "@ jack").await?;
    say(&ivy, "just between us").await?;
    ivy.wait_for_text("#messages .message.mine:not(.pending)", "just between us").await?;
    jack.wait_for_text("#dms [data-peer=ivy] .badge", "1").await?;
    assert_eq!(count_messages(&jack, "just between us").await?, 0, "not in the lobby");
    jack.click("#dms [data-peer=ivy]").await?;
    wait_for_message(&jack, "just between us").await?;
    say(&jack, "agreed").await?;
    wait_for_message(&ivy, "agreed").await?;
    jack.screenshot("direct-message").await?;
    ivy.close().await?;
    jack.close().await
}

#[tokio::test]
async fn three_tabs_of_one_person_are_present_once() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let kim = driver.browser().await?;
    sign_up(&kim, &confab, "kim").await?;
    let mut tabs = Vec::new();
    let first = driver.browser().await?;
    sign_up(&first, &confab, "leo").await?;
    tabs.push(first);
    for _ in 0..2 {
        let tab = driver.browser().await?;
        sign_in(&tab, &confab, "leo").await?;
        tabs.push(tab);
    }
    let leo_count = || async {
        Ok::<_, anyhow::Error>(
            kim.texts("#members li").await?.iter().filter(|m| m.contains("leo")).count(),
        )
    };
    kim.wait_for_text("#members", "leo").await?;
    assert_eq!(leo_count().await?, 1);
    assert_eq!(kim.text(".members .count").await?.as_deref(), Some("2"));
    for tab in tabs.drain(1..) {
        tab.close().await?;
    }
    assert_eq!(leo_count().await?, 1, "leo still has a tab open");
    tabs.pop().expect("one tab left").close().await?;
    eventually("leo to leave", || async { Ok((leo_count().await? == 0).then_some(())) }).await?;
    kim.close().await
}

#[tokio::test]
async fn the_page_fits_a_phone() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let phone = driver.browser_sized(390, 800).await?;
    phone.open_sign_up(&confab.url()).await?;
    phone.type_into("#username", "dora").await?;
    phone.type_into("#password", PASSWORD).await?;
    phone.click("#submit").await?;
    phone.wait_for_text("#status", "Online").await?;
    // The sidebar folds away behind the menu button.
    assert_eq!(phone.text("#members").await?.as_deref(), Some(""));
    say(&phone, "typing from a narrow screen").await?;
    wait_for_message(&phone, "typing from a narrow screen").await?;
    let overflow = phone
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await?;
    assert_eq!(overflow.as_i64(), Some(0), "no horizontal scrolling");
    phone.screenshot("phone").await?;
    phone.click(".menu").await?;
    phone.wait_for_text("#members", "dora").await?;
    phone.screenshot("phone-menu").await?;
    phone.close().await
}

#[tokio::test]
async fn history_scrolls_back_to_the_beginning() -> Result<()> {
    const SEEDED: usize = 260;
    let confab = Confab::start(e2e::FAST_SEEDING).await?;
    let token = e2e::register(confab.addr, "olga").await?;
    let mut olga = e2e::stomp::StompClient::connect(&confab.ws_url(), "olga", &token).await?;
    for n in 1..=SEEDED {
        olga.say("/app/room.lobby", &format!("old message {n}"), Some(&n.to_string())).await?;
    }

    let driver = ChromeDriver::start().await?;
    let pat = driver.browser().await?;
    sign_up(&pat, &confab, "pat").await?;
    wait_for_message(&pat, &format!("old message {SEEDED}")).await?;
    // The reader scrolls up until the page says the conversation begins here.
    eventually("the beginning of the conversation", || async {
        pat.client
            .execute("document.getElementById('messages').scrollTop = 0; return true", vec![])
            .await?;
        Ok(pat.text(".history-note").await?.filter(|note| note.contains("beginning")))
    })
    .await?;
    pat.screenshot("history-beginning").await?;
    let in_document = count_loaded(&pat).await?;
    assert!(in_document < SEEDED as u64, "far pages are collapsed: {in_document} in the document");
    // Then reads down to the newest, half a screen at a time. Only pages near the view keep
    // their lines in the document, so the messages are gathered as they pass.
    let history = read_down(&pat).await?;
    let expected: Vec<String> = (1..=SEEDED).map(|n| format!("old message {n}")).collect();
    let seeded: Vec<String> =
        history.read.into_iter().filter(|text| text.starts_with("old message")).collect();
    assert_eq!(seeded, expected, "every message once, oldest first");
    // Pages of history meet without a second separator for the same day, and one sender's
    // messages a moment apart read as one run, across pages too.
    assert_eq!(history.separators, 1, "one day, one separator");
    let starts: Vec<&String> =
        history.run_starts.iter().filter(|text| text.starts_with("old message")).collect();
    assert_eq!(starts, ["old message 1"], "olga's messages are one run");

    // A page loaded above keeps the reader's place: the top is not where they land.
    let reader = driver.browser().await?;
    sign_in(&reader, &confab, "olga").await?;
    wait_for_message(&reader, &format!("old message {SEEDED}")).await?;
    let before = count_loaded(&reader).await?;
    reader
        .client
        .execute("document.getElementById('messages').scrollTop = 0; return true", vec![])
        .await?;
    // The page arrives, then the view is moved down by its height, in the next frame.
    eventually("an older page above the reader's place", || async {
        let top = reader
            .client
            .execute("return document.getElementById('messages').scrollTop", vec![])
            .await?;
        let loaded = count_loaded(&reader).await? > before;
        Ok((loaded && top.as_f64().unwrap_or(0.0) > 0.0).then_some(()))
    })
    .await?;
    reader.close().await?;
    pat.close().await
}

/// How many messages the conversation shows.
async fn count_loaded(browser: &Browser) -> Result<u64> {
    let value = browser
        .client
        .execute("return document.querySelectorAll('#messages .message').length", vec![])
        .await?;
    Ok(value.as_u64().unwrap_or(0))
}

/// What reading a conversation from top to bottom showed.
struct History {
    /// Message texts, in the order first seen.
    read: Vec<String>,
    /// The most day separators in the document at once.
    separators: usize,
    /// The texts of messages that start a run (shown with name and avatar).
    run_starts: Vec<String>,
}

/// Scrolls the conversation from the top to the bottom, half a screen at a time.
async fn read_down(browser: &Browser) -> Result<History> {
    let step = "const m = document.getElementById('messages');
        const texts = Array.from(m.querySelectorAll('.message .text'), e => e.textContent);
        const days = m.querySelectorAll('.day').length;
        const heads = Array.from(m.querySelectorAll('.message:not(.grouped) .text'), e => e.textContent);
        const done = m.scrollTop + m.clientHeight >= m.scrollHeight - 2;
        m.scrollTop += m.clientHeight / 2;
        return [texts, days, heads, done];";
    let mut read: Vec<String> = Vec::new();
    let mut separators = 0;
    let mut run_starts: Vec<String> = Vec::new();
    for _ in 0..1000 {
        let (texts, days, heads, done): (Vec<String>, usize, Vec<String>, bool) =
            serde_json::from_value(browser.client.execute(step, vec![]).await?)?;
        for head in heads {
            if !run_starts.contains(&head) {
                run_starts.push(head);
            }
        }
        separators = separators.max(days);
        for text in texts {
            if !read.contains(&text) {
                read.push(text);
            }
        }
        if done {
            return Ok(History { read, separators, run_starts });
        }
        // Two animation frames: the scroll handler runs, then the pages it filled render.
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    }
    anyhow::bail!("never reached the bottom of the conversation")
}

/// A client of the original design's first stage: JSON over a bare WebSocket at `/room`,
/// with only the URL and a token added, chats with someone in the browser.
#[tokio::test]
async fn a_plain_json_websocket_client_chats_with_the_page() -> Result<()> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let kim = driver.browser().await?;
    sign_up(&kim, &confab, "kim").await?;

    let token = e2e::register(confab.addr, "legacy").await?;
    let url = format!("ws://{}/room?token={token}&room=lobby", confab.addr);
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    kim.wait_for_text("#members", "legacy").await?;

    let hello =
        serde_json::json!({"type": "message", "receiver": "all", "data": "hello from 2015"});
    socket.send(Message::text(hello.to_string())).await?;
    wait_for_message(&kim, "hello from 2015").await?;
    assert_eq!(kim.texts("#messages .message .sender").await?, ["legacy"]);

    say(&kim, "welcome back").await?;
    // The page's message reaches the JSON client, after presence and its own echo.
    let reply = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            if let Message::Text(text) = message? {
                let message: serde_json::Value = serde_json::from_str(text.as_str())?;
                if message["type"] == "message" && message["data"] == "welcome back" {
                    return Ok(message);
                }
            }
        }
        anyhow::bail!("the JSON socket closed")
    })
    .await??;
    assert_eq!((&reply["sender"], &reply["receiver"]), (&"kim".into(), &"all".into()));
    kim.screenshot("json-client").await?;

    socket.close(None).await?;
    kim.wait_for_text("#messages .notice", "legacy left").await?;
    kim.close().await
}

/// An operator makes a webhook from the command line, as README says; CI posts to it with
/// Slack's JSON; the page shows the message at once, marked as a bot's.
#[tokio::test]
async fn a_webhook_posts_into_the_room_and_the_page_marks_the_bot() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let lena = driver.browser().await?;
    sign_up(&lena, &confab, "lena").await?;

    let data = confab.data_dir().to_string_lossy().into_owned();
    let made = tokio::process::Command::new(e2e::confab_binary()?)
        .args(["--data", &data, "webhook", "create", "lobby", "ci-pipeline"])
        .output()
        .await?;
    anyhow::ensure!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let path = String::from_utf8(made.stdout)?.trim().to_owned();
    anyhow::ensure!(path.starts_with("/hooks/"), "{path}");

    let body = r#"{"text": "Build 1234 passed", "attachments": [{"fallback": "main @ 5e1f"}]}"#;
    let request = format!(
        "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        confab.addr,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(confab.addr).await?;
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer).await?;
    anyhow::ensure!(answer.starts_with("HTTP/1.0 201"), "{answer}");

    wait_for_message(&lena, "Build 1234 passed\nmain @ 5e1f").await?;
    lena.wait_for_text("#messages .message .sender", "ci-pipeline").await?;
    assert_eq!(lena.texts("#messages .message .bot-badge").await?, ["BOT"]);
    lena.screenshot("webhook-bot").await?;
    // After a reload, history says the same.
    lena.client.refresh().await?;
    lena.wait_for_text("#status", "Online").await?;
    wait_for_message(&lena, "Build 1234 passed").await?;
    assert_eq!(lena.texts("#messages .message .bot-badge").await?.len(), 1);
    lena.close().await
}
