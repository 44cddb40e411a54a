//! The development loop as README describes it: `cargo xtask dev` starts the server and
//! `trunk serve`; two people sign up on the development address and chat. The page's
//! release build is asked for, so that trunk reuses what `cargo xtask test` compiled.

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::{Browser, ChromeDriver, free_port, http_get, workspace_root};

/// The dev loop's processes, stopped with their whole process group when dropped.
struct DevLoop {
    child: std::process::Child,
}

impl Drop for DevLoop {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = std::process::Command::new("kill").args(["-TERM", "--", &group]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::process::Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

async fn sign_up(browser: &Browser, url: &str, name: &str) -> Result<()> {
    browser.open_sign_up(url).await?;
    browser.type_into("#username", name).await?;
    browser.type_into("#password", e2e::PASSWORD).await?;
    browser.click("#submit").await?;
    browser.wait_for_text("#status", "Online").await?;
    browser.wait_for_text("#members", name).await
}

#[tokio::test]
async fn the_development_loop_chats() -> Result<()> {
    let (port, backend_port) = (free_port(), free_port());
    let dist = tempfile::tempdir()?;
    let data = tempfile::tempdir()?;
    let child = std::process::Command::new("cargo")
        .args(["xtask", "dev", "--release"])
        .args(["--port", &port.to_string(), "--backend-port", &backend_port.to_string()])
        .arg("--dist")
        .arg(dist.path())
        .arg("--data")
        .arg(data.path())
        .current_dir(workspace_root())
        // Two people sign up freely here; invitations have their own browser test.
        .env("CONFAB_REGISTRATION", "open")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("start cargo xtask dev")?;
    let _dev = DevLoop { child };
    // trunk builds the page first: give it minutes, not the usual seconds.
    let page = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let give_up = tokio::time::Instant::now() + Duration::from_secs(300);
    while !http_get(page, "/").await.is_ok_and(|body| body.contains("<body")) {
        if tokio::time::Instant::now() > give_up {
            bail!("the development page did not come up on {page}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let url = format!("http://127.0.0.1:{port}/");
    let driver = ChromeDriver::start().await?;
    let (ann, bob) = (driver.browser().await?, driver.browser().await?);
    sign_up(&ann, &url, "ann").await?;
    sign_up(&bob, &url, "bob").await?;
    ann.wait_for_text("#members", "bob").await?;
    bob.type_into("#draft", "hello through trunk serve\u{E007}").await?;
    ann.wait_for_text("#messages .message:not(.pending) .text", "hello through trunk serve")
        .await?;
    ann.screenshot("dev-loop").await?;
    ann.close().await?;
    bob.close().await
}
