//! Conversations people expect (issue 12), in real headless Chromium with two people:
//! edits and deletions seen live, reactions toggled by both, replies whose snippet brings
//! an original 500 messages back into view, Markdown with a list of XSS vectors that must
//! all show as text, a mention highlighted, counted and notified, and a reader who was
//! offline catching up on an edit, a deletion and a reaction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, ensure};
use e2e::{Browser, ChromeDriver, Confab, FAST_SEEDING, PASSWORD, eventually, http_json, register};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Opens the page at `url` and signs in.
async fn sign_in(browser: &Browser, url: &str, name: &str) -> Result<()> {
    browser.client.goto(url).await?;
    browser.type_into("#username", name).await?;
    browser.type_into("#password", PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#status", "Online").await
}

async fn say(browser: &Browser, text: &str) -> Result<()> {
    browser.type_into("#draft", &format!("{text}\u{E007}")).await
}

async fn js(browser: &Browser, script: &str) -> Result<Value> {
    Ok(browser.client.execute(script, Vec::new()).await?)
}

/// The id of the newest message whose text contains `needle`, once there is one.
async fn seq_of(browser: &Browser, needle: &str) -> Result<u64> {
    let script = format!(
        "const all = [...document.querySelectorAll('#messages article.message[data-seq]')]
            .filter(m => m.querySelector('.text') && m.querySelector('.text').textContent.includes({needle:?}));
         return all.length ? Number(all[all.length - 1].dataset.seq) : null;"
    );
    eventually(&format!("a message with {needle:?}"), || async {
        Ok(js(browser, &script).await?.as_u64())
    })
    .await
}

/// Puts the keyboard on a message, which shows its toolbar, then clicks `css` in it.
async fn on_message(browser: &Browser, seq: u64, css: &str) -> Result<()> {
    // Pointing at it makes its toolbar (a window in the background gets no focus events).
    js(
        browser,
        &format!(
            "const m = document.getElementById('m{seq}');
             m.dispatchEvent(new MouseEvent('mouseenter')); m.focus(); return null;"
        ),
    )
    .await?;
    browser.click(&format!("#m{seq} {css}")).await
}

/// Posts into a room over HTTP as the owner of `token`.
async fn post(addr: SocketAddr, token: &str, room: &str, body: Value) -> Result<Value> {
    let (status, answer) =
        http_json(addr, "POST", &format!("/api/rooms/{room}/messages"), Some(token), Some(&body))
            .await?;
    ensure!(status == 201, "{status} {answer}");
    Ok(answer)
}

/// XSS vectors, each with the text it must show instead: raw HTML shows as itself; a link
/// to anything but http, https or mailto shows as its label.
const XSS: [(&str, &str); 24] = [
    ("<script>window.__xss=1</script>", "<script>window.__xss=1</script>"),
    ("<img src=x onerror=\"window.__xss=2\">", "<img src=x onerror=\"window.__xss=2\">"),
    ("<svg onload=\"window.__xss=3\">", "<svg onload=\"window.__xss=3\">"),
    (
        "<iframe src=\"javascript:window.__xss=4\"></iframe>",
        "<iframe src=\"javascript:window.__xss=4\"></iframe>",
    ),
    ("[click five](javascript:window.__xss=5)", "click five"),
    ("[click six](JaVaScRiPt:window.__xss=6)", "click six"),
    ("[data seven](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "data seven"),
    ("![image eight](javascript:window.__xss=8)", "image eight"),
    (
        "<a href=\"javascript:window.__xss=9\">nine</a>",
        "<a href=\"javascript:window.__xss=9\">nine</a>",
    ),
    ("<body onload=\"window.__xss=10\">", "<body onload=\"window.__xss=10\">"),
    ("<style>body{display:none}</style>", "<style>body{display:none}</style>"),
    ("<details open ontoggle=\"window.__xss=12\">", "<details open ontoggle=\"window.__xss=12\">"),
    (
        "<input autofocus onfocus=\"window.__xss=13\">",
        "<input autofocus onfocus=\"window.__xss=13\">",
    ),
    (
        "<video><source onerror=\"window.__xss=14\"></video>",
        "<video><source onerror=\"window.__xss=14\"></video>",
    ),
    (
        "<object data=\"javascript:window.__xss=15\"></object>",
        "<object data=\"javascript:window.__xss=15\"></object>",
    ),
    ("<embed src=\"javascript:window.__xss=16\">", "<embed src=\"javascript:window.__xss=16\">"),
    (
        "<form action=\"javascript:window.__xss=17\"><button>go</button></form>",
        "<form action=\"javascript:window.__xss=17\"><button>go</button></form>",
    ),
    ("[vb eighteen](vbscript:msgbox)", "vb eighteen"),
    ("[entity nineteen](&#x6A;avascript:window.__xss=19)", "entity nineteen"),
    (
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=20\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:window.__xss=20\">",
    ),
    ("javascript:window.__xss=21", "javascript:window.__xss=21"),
    ("`<script>window.__xss=22</script>`", "<script>window.__xss=22</script>"),
    ("<<script>script>window.__xss=23</script>", "<<script>script>window.__xss=23</script>"),
    (
        "<math><mi xlink:href=\"javascript:window.__xss=24\">m</mi></math>",
        "<math><mi xlink:href=\"javascript:window.__xss=24\">m</mi></math>",
    ),
];

#[tokio::test]
async fn two_people_edit_delete_react_reply_format_and_mention() -> Result<()> {
    let confab = Confab::start(FAST_SEEDING).await?;
    let ann_token = register(confab.addr, "ann").await?;
    register(confab.addr, "bob").await?;
    let driver = ChromeDriver::start().await?;
    let ann = driver.browser().await?;
    let bob = driver.browser_allowing_notifications().await?;
    sign_in(&ann, &confab.url(), "ann").await?;
    sign_in(&bob, &confab.url(), "bob").await?;

    // An edit, by the Up arrow in an empty composer, seen live.
    say(&ann, "the plan is **ready**").await?;
    bob.wait_for_text("#messages .message .text strong", "ready").await?;
    let plan = seq_of(&ann, "the plan is").await?;
    ann.type_into("#draft", "\u{E013}").await?;
    ann.type_into(".edit-box textarea", "\u{E009}a\u{E000}the plan is **final**\u{E007}").await?;
    bob.wait_for_text(&format!("#m{plan} .text"), "the plan is final").await?;
    bob.wait_for_text(&format!("#m{plan} .edited"), "edited").await?;

    // Reactions, toggled by both.
    on_message(&bob, plan, ".tool.react").await?;
    on_message(&bob, plan, ".pick").await?;
    ann.wait_for_text(&format!("#m{plan} .reaction .count"), "1").await?;
    on_message(&ann, plan, ".tool.react").await?;
    on_message(&ann, plan, ".pick").await?;
    bob.wait_for_text(&format!("#m{plan} .reaction .count"), "2").await?;
    bob.click(&format!("#m{plan} .reaction")).await?;
    ann.wait_for_text(&format!("#m{plan} .reaction .count"), "1").await?;
    let pressed = js(
        &bob,
        &format!(
            "return document.querySelector('#m{plan} .reaction').getAttribute('aria-pressed');"
        ),
    )
    .await?;
    ensure!(pressed == "false", "bob's reaction is taken back: {pressed}");

    // A reply, with the snippet of what it answers.
    on_message(&bob, plan, ".tool.reply").await?;
    bob.wait_for_text("#replying", "the plan is final").await?;
    say(&bob, "agreed, ship it").await?;
    ann.wait_for_text("#messages .quote", "the plan is final").await?;

    // A deletion, seen live.
    say(&ann, "oops, wrong room").await?;
    let oops = seq_of(&bob, "oops, wrong room").await?;
    on_message(&ann, oops, ".tool.delete").await?;
    ann.client.accept_alert().await?;
    bob.wait_for_text(&format!("#m{oops}"), "message deleted").await?;

    // Formatting, and every XSS vector shows as text.
    for (vector, _) in XSS {
        post(confab.addr, &ann_token, "lobby", json!({ "text": vector })).await?;
    }
    post(confab.addr, &ann_token, "lobby", json!({"text": "Steps:\n1. **build** it\n2. *test* it\n3. ~~skip~~ no\n\n> measure twice\n\n```\ncargo xtask test\n```\nsee https://example.com/runbook or [the docs](https://docs.example.com)"})).await?;
    bob.wait_for_text("#messages .message .text", "measure twice").await?;
    let shown: Vec<String> = serde_json::from_value(
        js(&bob, "return [...document.querySelectorAll('#messages .message .text')].map(t => t.textContent);").await?,
    )?;
    for (vector, expected) in XSS {
        ensure!(
            shown.iter().any(|text| text.contains(expected)),
            "{vector:?} should show {expected:?}: {shown:?}"
        );
    }
    let injected = js(
        &bob,
        "return { xss: window.__xss === undefined ? null : window.__xss,
                  elements: document.querySelectorAll('#messages script, #messages img, #messages iframe, #messages object, #messages embed, #messages style, #messages form, #messages video, #messages details, #messages meta, #messages math, #messages input, #messages body, #messages svg:not(.lock)').length,
                  links: [...document.querySelectorAll('#messages a')].map(a => [a.getAttribute('href'), a.rel, a.target]) };",
    )
    .await?;
    ensure!(injected["xss"].is_null() && injected["elements"] == 0, "{injected}");
    for link in injected["links"].as_array().context("links")? {
        let href = link[0].as_str().unwrap_or_default();
        ensure!(
            ["http://", "https://", "mailto:"].iter().any(|scheme| href.starts_with(scheme))
                && link[1] == "noopener noreferrer"
                && link[2] == "_blank",
            "{link}"
        );
    }
    ensure!(shown.iter().any(|t| t.contains("cargo xtask test")), "the code block shows");
    let formatted = js(&bob, "return ['#messages ol li strong', '#messages blockquote', '#messages pre code', '#messages s', '#messages em'].map(css => document.querySelectorAll(css).length);").await?;
    ensure!(
        formatted.as_array().is_some_and(|counts| counts.iter().all(|n| n.as_u64() > Some(0))),
        "{formatted}"
    );

    // A mention while bob is elsewhere with the tab hidden: highlighted, counted, notified;
    // the notification opens the room at the message.
    bob.click("#new-room").await?;
    bob.type_into("#new-room-name", "side\u{E007}").await?;
    bob.wait_for_text("#conversation-title", "side").await?;
    js(
        &bob,
        "window.__notes = [];
         const Real = window.Notification;
         window.Notification = class extends Real {
             constructor(title, options) { super(title, options); window.__notes.push({ title, body: options.body, note: this }); }
         };
         Object.defineProperty(document, 'visibilityState', { get: () => 'hidden', configurable: true });
         return Real.permission;",
    )
    .await
    .and_then(|permission| {
        ensure!(permission == "granted", "the test browser allows notifications: {permission}");
        Ok(())
    })?;
    say(&ann, "@bob can you review the **plan**?").await?;
    bob.wait_for_text("#rooms [data-room=lobby] .badge.mention", "@1").await?;
    let note = eventually("a notification", || async {
        let notes = js(&bob, "return window.__notes.map(n => [n.title, n.body]);").await?;
        Ok(notes.as_array().and_then(|notes| notes.first().cloned()))
    })
    .await?;
    ensure!(
        note[0] == "ann mentioned you in #lobby" && note[1] == "@bob can you review the plan?",
        "{note}"
    );
    let title = js(&bob, "return document.title;").await?;
    ensure!(title.as_str().is_some_and(|t| t.starts_with('(')), "the tab counts unread: {title}");
    js(&bob, "window.__notes[0].note.dispatchEvent(new Event('click')); return null;").await?;
    bob.wait_for_text("#conversation-title", "lobby").await?;
    let mention = seq_of(&bob, "can you review").await?;
    eventually("the mention in view and marked", || async {
        let seen = js(&bob, &format!(
            "const m = document.getElementById('m{mention}'); if (!m) return false;
             const r = m.getBoundingClientRect(); const v = document.getElementById('messages').getBoundingClientRect();
             return m.classList.contains('mentions-me') && r.top >= v.top && r.bottom <= v.bottom;"
        ))
        .await?;
        Ok((seen == true).then_some(()))
    })
    .await?;
    let highlighted =
        js(&bob, &format!("return document.querySelector('#m{mention} .mention.me') !== null;"))
            .await?;
    ensure!(highlighted == true, "the mention of bob is marked");

    // A busy room, for people to look at.
    on_message(&bob, mention, ".tool.react").await?;
    on_message(&bob, mention, ".pick:nth-child(4)").await?;
    on_message(&bob, mention, ".tool.reply").await?;
    say(&bob, "on it, @ann").await?;
    ann.wait_for_text("#messages .message .text", "on it").await?;
    js(&ann, "document.getElementById('messages').scrollTop = 1e9; return null;").await?;
    ann.screenshot("conversations-busy-room").await?;
    bob.screenshot("conversations-mention").await?;
    ann.close().await?;
    bob.close().await
}

#[tokio::test]
async fn a_reply_brings_its_original_500_messages_back_into_view() -> Result<()> {
    let confab = Confab::start(FAST_SEEDING).await?;
    let ann_token = register(confab.addr, "ann").await?;
    register(confab.addr, "bob").await?;
    let original =
        post(confab.addr, &ann_token, "lobby", json!({"text": "the original plan"})).await?;
    let original = original["seq"].as_u64().context("a seq")?;
    for n in 0..500 {
        post(confab.addr, &ann_token, "lobby", json!({ "text": format!("filler {n}") })).await?;
    }
    post(confab.addr, &ann_token, "lobby", json!({"text": "back to that", "reply_to": original}))
        .await?;
    let driver = ChromeDriver::start().await?;
    let bob = driver.browser().await?;
    sign_in(&bob, &confab.url(), "bob").await?;
    bob.wait_for_text("#messages .quote", "the original plan").await?;
    ensure!(
        js(&bob, &format!("return document.getElementById('m{original}') === null;")).await?
            == true,
        "the original is not loaded yet"
    );
    bob.click("#messages .quote").await?;
    eventually("the original in view, marked", || async {
        let seen = js(&bob, &format!(
            "const m = document.getElementById('m{original}'); if (!m) return false;
             const r = m.getBoundingClientRect(); const v = document.getElementById('messages').getBoundingClientRect();
             return (m.classList.contains('focused') || document.activeElement === m) && r.top >= v.top && r.bottom <= v.bottom;"
        ))
        .await?;
        Ok((seen == true).then_some(()))
    })
    .await?;
    bob.screenshot("conversations-reply-jump").await?;
    bob.close().await
}

/// A TCP relay in front of the server that can be cut (every connection dropped, new ones
/// refused) and restored: a reader's network going away and coming back.
struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    _accept: JoinHandle<()>,
}

impl Gate {
    async fn start(target: SocketAddr) -> Result<Gate> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = tokio::spawn({
            let (open, links) = (open.clone(), links.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        continue;
                    }
                    let link = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    links.lock().await.push(link);
                }
            }
        });
        Ok(Gate { addr, open, links, _accept: accept })
    }

    async fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().await.drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_reader_offline_during_an_edit_a_deletion_and_a_reaction_sees_them_all() -> Result<()> {
    let confab = Confab::start(FAST_SEEDING).await?;
    register(confab.addr, "ann").await?;
    register(confab.addr, "bob").await?;
    let gate = Gate::start(confab.addr).await?;
    let driver = ChromeDriver::start().await?;
    let ann = driver.browser().await?;
    let bob = driver.browser().await?;
    sign_in(&ann, &confab.url(), "ann").await?;
    sign_in(&bob, &format!("http://{}", gate.addr), "bob").await?;
    say(&ann, "keep this one").await?;
    say(&ann, "delete this one").await?;
    bob.wait_for_text("#messages .message .text", "delete this one").await?;
    let (keep, gone) =
        (seq_of(&ann, "keep this one").await?, seq_of(&ann, "delete this one").await?);

    gate.cut().await;
    bob.wait_for_text("#status", "Offline").await?;
    on_message(&ann, keep, ".tool.edit").await?;
    ann.type_into(".edit-box textarea", "\u{E009}a\u{E000}keep this one, edited\u{E007}").await?;
    ann.wait_for_text(&format!("#m{keep} .text"), "edited").await?;
    on_message(&ann, keep, ".tool.react").await?;
    on_message(&ann, keep, ".pick").await?;
    ann.wait_for_text(&format!("#m{keep} .reaction .count"), "1").await?;
    on_message(&ann, gone, ".tool.delete").await?;
    ann.client.accept_alert().await?;
    ann.wait_for_text(&format!("#m{gone}"), "message deleted").await?;

    gate.restore();
    bob.wait_for_text("#status", "Online").await?;
    bob.wait_for_text(&format!("#m{keep} .text"), "keep this one, edited").await?;
    bob.wait_for_text(&format!("#m{keep} .edited"), "edited").await?;
    bob.wait_for_text(&format!("#m{keep} .reaction .count"), "1").await?;
    bob.wait_for_text(&format!("#m{gone}"), "message deleted").await?;
    bob.screenshot("conversations-caught-up").await?;
    ann.close().await?;
    bob.close().await
}
