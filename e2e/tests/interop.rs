//! Third-party STOMP clients against the real binary: `@stomp/stompjs` under Node.js.

use anyhow::{Context, Result, ensure};
use e2e::{Confab, workspace_root};

/// Runs `script` under Node against a fresh server started with `args`.
async fn run_node(script: &str, args: &[&str]) -> Result<()> {
    let interop = workspace_root().join("e2e/interop");
    ensure!(
        interop.join("node_modules/@stomp/stompjs").is_dir(),
        "@stomp/stompjs is not installed: run `npm ci --prefix e2e/interop` (`cargo xtask setup` does)"
    );
    let confab = Confab::start(args).await?;
    let output = tokio::process::Command::new("node")
        .arg(interop.join(script))
        .arg(confab.ws_url())
        .current_dir(&interop)
        .kill_on_drop(true)
        .output()
        .await
        .context("run node (install Node.js 18 or later)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}", output.status);
    ensure!(stdout.contains("\"ok\":true"), "unexpected output: {stdout}");
    Ok(())
}

#[tokio::test]
async fn stompjs_connects_subscribes_publishes_and_receives() -> Result<()> {
    run_node("stompjs.mjs", &[]).await
}

/// The original design's clients: stompjs on `/pub` and `/sub` chats with stompjs on `/app`
/// and `/topic`, and with a plain JSON WebSocket on `/room`.
#[tokio::test]
async fn spring_style_clients_chat_with_everyone() -> Result<()> {
    run_node("spring.mjs", &["--app-prefix", "/pub", "--broker-prefix", "/sub"]).await
}
