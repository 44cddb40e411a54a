//! A team's server in real headless Chromium (issue 11): the first account sets it up as
//! admin, people join through an invitation link, a private room stays invisible and
//! unreachable to outsiders, a moderator bans someone, and an account deactivated while
//! its tab is open is signed out. With `--registration invite`, the default.

use anyhow::Result;
use e2e::{Browser, ChromeDriver, Confab, PASSWORD, eventually};

/// Fills in the open form and waits for the chat.
async fn create_account(browser: &Browser, name: &str) -> Result<()> {
    browser.type_into("#username", name).await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#status", "Online").await
}

/// The value of an input.
async fn value(browser: &Browser, css: &str) -> Result<String> {
    let element = browser.client.find(fantoccini::Locator::Css(css)).await?;
    Ok(element.prop("value").await?.unwrap_or_default())
}

#[tokio::test]
async fn a_newcomer_sets_up_a_team_server_with_no_command_line() -> Result<()> {
    let confab = Confab::start(&["--registration", "invite"]).await?;
    let driver = ChromeDriver::start().await?;

    // The first person is asked to set the server up, and is its admin.
    let ann = driver.browser().await?;
    ann.client.goto(&confab.url()).await?;
    ann.wait_for_text("#auth-heading", "Set up Confab").await?;
    ann.screenshot("team-setup").await?;
    create_account(&ann, "ann").await?;

    // Nobody else gets in without a link.
    let stranger = driver.browser().await?;
    stranger.client.goto(&confab.url()).await?;
    stranger.wait_for_text("#invite-only", "Ask an admin").await?;

    // The admin makes an invitation link for two people.
    ann.click("#open-admin").await?;
    ann.client.find(fantoccini::Locator::Css("#invite-uses")).await?.clear().await?;
    ann.type_into("#invite-uses", "2").await?;
    ann.click("#create-invitation").await?;
    eventually("the invitation link", || async {
        Ok(value(&ann, "#new-link").await.ok().filter(|link| link.contains("/join/")))
    })
    .await?;
    let link = value(&ann, "#new-link").await?;
    ann.wait_for_text("#invitations", "0 of 2 used").await?;
    ann.click("#admin .close").await?;

    // bob and carol join through it.
    let bob = driver.browser().await?;
    bob.client.goto(&link).await?;
    bob.wait_for_text("#auth-heading", "You're invited").await?;
    create_account(&bob, "bob").await?;
    let carol = driver.browser().await?;
    carol.client.goto(&link).await?;
    create_account(&carol, "carol").await?;
    // Used up: a third person cannot.
    stranger.client.goto(&link).await?;
    stranger.type_into("#username", "dave").await?;
    stranger.type_into("#password", PASSWORD).await?;
    stranger.click("#submit").await?;
    stranger.wait_for_text(".problem", "not valid").await?;

    // A private room: bob is added and sees it appear; carol sees nothing of it, in the
    // lists or by its address.
    ann.click("#new-room").await?;
    ann.type_into("#new-room-name", "board").await?;
    ann.click("#new-room-private").await?;
    ann.click(".new-room button[type=submit]").await?;
    ann.wait_for_text("#conversation-title", "board").await?;
    ann.click("#room-settings-button").await?;
    ann.type_into("#add-member", "bob").await?;
    ann.click("#add-member-submit").await?;
    ann.wait_for_text("#member-list", "bob").await?;
    ann.type_into("#room-topic-input", "Board matters only").await?;
    ann.click("#save-room").await?;
    ann.wait_for_text("#messages .notice.change", "ann set the topic").await?;
    ann.screenshot("team-room-settings").await?;
    ann.click("#room-settings .close").await?;
    ann.type_into("#draft", "the budget is approved\u{E007}").await?;
    bob.wait_for_text("#rooms", "board").await?;
    bob.click("#rooms [data-room=board]").await?;
    bob.wait_for_text("#messages .text", "the budget is approved").await?;
    let carol_rooms = carol.texts(".sidebar").await?.join(" ");
    assert!(!carol_rooms.contains("board"), "carol's lists: {carol_rooms}");
    carol.client.goto(&format!("{}#/room/board", confab.url())).await?;
    carol.wait_for_text("#error", "no such room, or it is private").await?;
    let everything = carol.texts("body").await?.join(" ");
    assert!(!everything.contains("budget"), "nothing of the room reaches carol");

    // A public room: ann makes bob a moderator; bob bans carol; carol is out, and cannot
    // come back.
    ann.click("#new-room").await?;
    ann.type_into("#new-room-name", "dev\u{E007}").await?;
    ann.wait_for_text("#conversation-title", "# dev").await?;
    for page in [&bob, &carol] {
        page.client.goto(&format!("{}#/room/dev", confab.url())).await?;
        page.wait_for_text("#conversation-title", "# dev").await?;
        page.wait_for_text("#status", "Online").await?;
    }
    ann.click("#room-settings-button").await?;
    ann.click("li[data-member=bob] button[data-action='Make moderator']").await?;
    ann.wait_for_text("#messages .notice.change", "ann made bob a moderator").await?;
    ann.click("#room-settings .close").await?;
    bob.click("#room-settings-button").await?;
    bob.click("li[data-member=carol] button[data-action=Ban]").await?;
    bob.wait_for_text("#messages .notice.change", "bob banned carol").await?;
    bob.wait_for_text("#banned-list", "carol").await?;
    bob.screenshot("team-moderator-bans").await?;
    carol.wait_for_text("#error", "no longer a member of #dev").await?;
    carol.client.goto(&format!("{}#/room/lobby", confab.url())).await?;
    carol.client.goto(&format!("{}#/room/dev", confab.url())).await?;
    carol.wait_for_text("#error", "you are banned from this room").await?;
    carol.screenshot("team-banned").await?;

    // The admin deactivates bob while his tab is open: the tab signs him out.
    bob.click("#room-settings .close").await?;
    ann.click("#open-admin").await?;
    let started = std::time::Instant::now();
    ann.click("li[data-person=bob] button[data-action=deactivate]").await?;
    bob.wait_for_text("#auth-heading", "Welcome back").await?;
    bob.wait_for_text(".problem", "signed out").await?;
    eprintln!("bob's tab showed him signed out {:?} after the click", started.elapsed());
    ann.wait_for_text("#people [data-person=bob]", "Reactivate").await?;
    ann.screenshot("team-admin").await?;
    bob.screenshot("team-deactivated").await?;
    for page in [ann, bob, carol, stranger] {
        page.close().await?;
    }
    Ok(())
}

/// A reset link from the admin panel sets bob's password and signs him in; his display
/// name, set in his profile, is what others see on his messages; he ends his other session.
#[tokio::test]
async fn a_reset_link_a_display_name_and_sessions_in_the_page() -> Result<()> {
    let confab = Confab::start(&[]).await?;
    let driver = ChromeDriver::start().await?;
    let ann = driver.browser().await?;
    ann.open_sign_up(&confab.url()).await?;
    create_account(&ann, "ann").await?;
    let old = driver.browser().await?;
    old.open_sign_up(&confab.url()).await?;
    create_account(&old, "bob").await?;

    ann.click("#open-admin").await?;
    ann.click("li[data-person=bob] button[data-action=reset]").await?;
    eventually("the reset link", || async {
        Ok(value(&ann, "#new-link").await.ok().filter(|link| link.contains("/reset/")))
    })
    .await?;
    let link = value(&ann, "#new-link").await?;
    ann.click("#admin .close").await?;

    // The link: a new password, and every other session of bob's ends.
    let bob = driver.browser().await?;
    bob.client.goto(&link).await?;
    bob.wait_for_text("#auth-heading", "Choose a new password").await?;
    bob.type_into("#password", "a brand new secret").await?;
    bob.click("#submit").await?;
    bob.wait_for_text("#status", "Online").await?;
    old.wait_for_text("#auth-heading", "Welcome back").await?;
    ensure_url_forgot_the_code(&bob).await?;

    // A display name, seen by others on his messages.
    bob.click("#me").await?;
    bob.type_into("#display-name", "Bob Builder").await?;
    bob.click("#save-display-name").await?;
    bob.wait_for_text("#profile .note", "Saved").await?;
    bob.wait_for_text("#sessions li", "Chrome on Linux").await?;
    bob.screenshot("team-profile").await?;
    bob.click("#profile .close").await?;
    bob.type_into("#draft", "can we fix it?\u{E007}").await?;
    ann.client.refresh().await?;
    ann.wait_for_text("#messages .message .sender", "Bob Builder").await?;
    for page in [ann, bob, old] {
        page.close().await?;
    }
    Ok(())
}

/// After a link is used, the address bar no longer holds its code.
async fn ensure_url_forgot_the_code(browser: &Browser) -> Result<()> {
    let url = browser.client.current_url().await?;
    anyhow::ensure!(!url.path().starts_with("/reset/"), "the address still holds the code: {url}");
    Ok(())
}
