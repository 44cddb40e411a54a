//! Search (issue 13) in real headless Chromium: the shortcut takes the keyboard to the
//! box; a word finds messages in every room the reader is in and their direct messages,
//! `from:` and `in:` narrow it, the matching words are marked; a click on a result opens
//! its room at it, 500 messages back.

use std::net::SocketAddr;

use anyhow::{Context, Result, ensure};
use e2e::{Browser, ChromeDriver, Confab, FAST_SEEDING, PASSWORD, eventually, http_json, register};
use serde_json::{Value, json};

async fn js(browser: &Browser, script: &str) -> Result<Value> {
    Ok(browser.client.execute(script, Vec::new()).await?)
}

async fn post(addr: SocketAddr, token: &str, path: &str, body: Value) -> Result<Value> {
    let (status, answer) = http_json(addr, "POST", path, Some(token), Some(&body)).await?;
    ensure!(status == 201 || status == 200 || status == 204, "{path}: {status} {answer}");
    Ok(answer)
}

/// Runs a search from the box and waits for its results; returns their texts.
async fn search(browser: &Browser, query: &str) -> Result<Vec<String>> {
    // Esc closes the last results; the box starts empty.
    js(
        browser,
        "const box = document.getElementById('search'); \
         box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true})); \
         box.value = ''; box.dispatchEvent(new Event('input')); \
         return document.getElementById('search-results') === null;",
    )
    .await?;
    browser.type_into("#search", &format!("{query}\u{E007}")).await?;
    eventually(&format!("the results of {query:?}"), || async {
        let texts = js(
            browser,
            &format!(
                "const panel = document.getElementById('search-results');
                 if (!panel || document.getElementById('search').value !== {query:?}) return null;
                 return [...panel.querySelectorAll('.hit')].map(h => h.textContent);"
            ),
        )
        .await?;
        Ok(serde_json::from_value::<Option<Vec<String>>>(texts)?)
    })
    .await
}

#[tokio::test]
async fn search_finds_by_word_person_and_room_and_lands_on_the_message() -> Result<()> {
    let confab = Confab::start(FAST_SEEDING).await?;
    let ann = register(confab.addr, "ann").await?;
    let bob = register(confab.addr, "bob").await?;
    post(confab.addr, &ann, "/api/rooms", json!({"name": "ops"})).await?;
    post(confab.addr, &bob, "/api/rooms/ops/join", json!({})).await?;
    let target = post(
        confab.addr,
        &ann,
        "/api/rooms/ops/messages",
        json!({"text": "the kraken deploy failed"}),
    )
    .await?;
    let target = target["seq"].as_u64().context("a seq")?;
    for n in 0..500 {
        let filler = json!({ "text": format!("routine line {n}") });
        post(confab.addr, &ann, "/api/rooms/ops/messages", filler).await?;
    }
    post(confab.addr, &bob, "/api/rooms/lobby/messages", json!({"text": "a Kraken in the lobby"}))
        .await?;
    post(confab.addr, &ann, "/api/dms/bob/messages", json!({"text": "kraken notes for you"}))
        .await?;

    let driver = ChromeDriver::start().await?;
    let browser = driver.browser().await?;
    browser.client.goto(&confab.url()).await?;
    browser.type_into("#username", "bob").await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#status", "Online").await?;

    // Ctrl+K takes the keyboard to the box.
    js(
        &browser,
        "document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'k', ctrlKey: true, bubbles: true})); return null;",
    )
    .await?;
    let focused =
        js(&browser, "return document.activeElement && document.activeElement.id").await?;
    ensure!(focused == "search", "Ctrl+K focuses the search box, not {focused}");

    // A word: every room bob is in and his direct messages, the word marked.
    let mut found = search(&browser, "kraken").await?;
    found.sort();
    ensure!(found.len() == 3, "{found:?}");
    ensure!(
        found.iter().any(|hit| hit.contains("#ops") && hit.contains("the kraken deploy failed"))
    );
    ensure!(
        found.iter().any(|hit| hit.contains("#lobby") && hit.contains("a Kraken in the lobby"))
    );
    ensure!(found.iter().any(|hit| hit.contains("@ann") && hit.contains("kraken notes")));
    let marks = js(
        &browser,
        "return [...document.querySelectorAll('#search-results mark')].map(m => m.textContent);",
    )
    .await?;
    ensure!(marks.as_array().map_or(0, Vec::len) == 3, "{marks}");
    browser.screenshot("search-results").await?;
    // From a person; in a room.
    let found = search(&browser, "kraken from:bob").await?;
    ensure!(found.len() == 1 && found[0].contains("#lobby"), "{found:?}");
    let found = search(&browser, "kraken in:ops").await?;
    ensure!(found.len() == 1 && found[0].contains("deploy failed"), "{found:?}");

    // The click lands on it, 500 messages back in a room not opened yet.
    browser.click("#search-results .hit").await?;
    browser.wait_for_text("#conversation-title", "ops").await?;
    eventually("the found message in view, marked", || async {
        let seen = js(&browser, &format!(
            "const m = document.getElementById('m{target}'); if (!m) return false;
             const r = m.getBoundingClientRect(); const v = document.getElementById('messages').getBoundingClientRect();
             return (m.classList.contains('focused') || document.activeElement === m) && r.top >= v.top && r.bottom <= v.bottom;"
        ))
        .await?;
        Ok((seen == true).then_some(()))
    })
    .await?;
    let closed = js(&browser, "return document.getElementById('search-results') === null").await?;
    ensure!(closed == true, "the results close once one is chosen");
    browser.screenshot("search-landed").await?;
    browser.close().await
}
