//! The chat in real headless Chromium: two people, two browsers, one server.

use anyhow::Result;
use e2e::{Browser, ChromeDriver, Confab};

/// Opens the page and joins the lobby as `name`.
async fn join(browser: &Browser, confab: &Confab, name: &str) -> Result<()> {
    browser.client.goto(&confab.url()).await?;
    browser.type_into("#name", name).await?;
    browser.click("#join").await?;
    browser.wait_for_text("#status", "Online").await?;
    browser.wait_for_text("#members", name).await
}

/// Types a message and presses Enter.
async fn say(browser: &Browser, text: &str) -> Result<()> {
    browser.type_into("#draft", &format!("{text}\u{E007}")).await
}

#[tokio::test]
async fn two_people_chat_in_the_lobby() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let bob = driver.browser().await?;
    join(&bob, &confab, "bob").await?;
    let alice = driver.browser().await?;
    join(&alice, &confab, "alice").await?;

    // Bob sees Alice join, in the conversation and in the member list.
    bob.wait_for_text("#messages .notice", "alice joined").await?;
    bob.wait_for_text("#members", "alice").await?;

    // Alice's message reaches Bob with Alice as the sender.
    say(&alice, "hello bob").await?;
    bob.wait_for_text("#messages .message", "hello bob").await?;
    let senders = bob.texts("#messages .message .sender").await?;
    assert_eq!(senders, ["alice"]);
    alice.wait_for_text("#messages .message.mine", "hello bob").await?;

    // Markup is shown as text, never run.
    let hostile = "<img src=x onerror=alert(1)>";
    say(&alice, hostile).await?;
    bob.wait_for_text("#messages .message .text", hostile).await?;
    assert!(bob.client.find_all(fantoccini::Locator::Css("#messages img")).await?.is_empty());
    assert!(bob.client.get_alert_text().await.is_err(), "no alert may open");

    say(&bob, "hi alice, welcome").await?;
    alice.wait_for_text("#messages .message", "hi alice, welcome").await?;
    bob.screenshot("chat-bob").await?;
    alice.screenshot("chat-alice").await?;

    // Bob's page closes: Alice sees him leave.
    bob.close().await?;
    alice.wait_for_text("#messages .notice", "bob left").await?;
    e2e::eventually("bob to leave the member list", || async {
        Ok((!alice.texts("#members li").await?.iter().any(|m| m.contains("bob"))).then_some(()))
    })
    .await?;
    alice.close().await
}

#[tokio::test]
async fn the_page_reconnects_after_a_server_restart() -> Result<()> {
    let mut confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let carol = driver.browser().await?;
    join(&carol, &confab, "carol").await?;
    let addr = confab.addr;
    confab.kill().await?;
    carol.wait_for_text("#status", "Offline").await?;
    carol.screenshot("offline").await?;
    let restarted = Confab::start_at(addr, &[]).await?;
    carol.wait_for_text("#status", "Online").await?;
    carol.wait_for_text("#messages .notice", "Reconnected").await?;
    say(&carol, "back again").await?;
    carol.wait_for_text("#messages .message.mine", "back again").await?;
    drop(restarted);
    carol.close().await
}

#[tokio::test]
async fn the_page_fits_a_phone() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let phone = driver.browser_sized(390, 800).await?;
    phone.client.goto(&confab.url()).await?;
    phone.type_into("#name", "dora").await?;
    phone.click("#join").await?;
    phone.wait_for_text("#status", "Online").await?;
    // The member list folds away behind the menu button.
    assert_eq!(phone.text("#members").await?.as_deref(), Some(""));
    phone.click(".menu").await?;
    phone.wait_for_text("#members", "dora").await?;
    say(&phone, "typing from a narrow screen").await?;
    phone.wait_for_text("#messages .message.mine", "typing from a narrow screen").await?;
    // No horizontal scrolling.
    let overflow = phone
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await?;
    assert_eq!(overflow.as_i64(), Some(0));
    phone.screenshot("phone").await?;
    phone.close().await
}
