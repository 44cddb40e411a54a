//! Third-party STOMP clients against the real binary: `@stomp/stompjs` under Node.js.

use anyhow::{Context, Result, ensure};
use e2e::{Confab, workspace_root};

#[tokio::test]
async fn stompjs_connects_subscribes_publishes_and_receives() -> Result<()> {
    let interop = workspace_root().join("e2e/interop");
    ensure!(
        interop.join("node_modules/@stomp/stompjs").is_dir(),
        "@stomp/stompjs is not installed: run `npm ci --prefix e2e/interop` (`cargo xtask setup` does)"
    );
    let confab = Confab::start(&[]).await?;
    let output = tokio::process::Command::new("node")
        .arg(interop.join("stompjs.mjs"))
        .arg(confab.ws_url())
        .current_dir(&interop)
        .kill_on_drop(true)
        .output()
        .await
        .context("run node (install Node.js 18 or later)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(output.status.success(), "stompjs run failed ({}):\n{stdout}\n{stderr}", output.status);
    ensure!(stdout.contains("\"ok\":true"), "unexpected output: {stdout}");
    Ok(())
}
