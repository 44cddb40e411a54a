//! `confab bot create` as README shows it: the printed token posts over HTTP while the
//! server runs, marked as a bot; names already taken or invalid are refused.

use anyhow::{Result, ensure};
use e2e::{Confab, confab_binary, http_json, register};
use serde_json::json;

async fn confab(args: &[&str]) -> Result<std::process::Output> {
    Ok(tokio::process::Command::new(confab_binary()?).args(args).output().await?)
}

#[tokio::test]
async fn a_bot_made_on_the_command_line_posts_over_http() -> Result<()> {
    let server = Confab::start(&[]).await?;
    register(server.addr, "ann").await?;
    let data = server.data_dir().to_string_lossy().into_owned();
    let made = confab(&["--data", &data, "bot", "create", "nightly-build"]).await?;
    ensure!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let token = String::from_utf8(made.stdout)?.trim().to_owned();
    ensure!(token.len() == 64, "one line, the token: {token:?}");

    let (status, _) =
        http_json(server.addr, "POST", "/api/rooms/lobby/join", Some(&token), None).await?;
    ensure!(status == 204);
    let body = json!({"text": "nightly build is green"});
    let (status, message) =
        http_json(server.addr, "POST", "/api/rooms/lobby/messages", Some(&token), Some(&body))
            .await?;
    ensure!(status == 201 && message["bot"] == true, "{status} {message}");

    for (name, reason) in [("ann", "taken"), ("nightly-build", "taken"), ("x", "invalid bot name")]
    {
        let again = confab(&["--data", &data, "bot", "create", name]).await?;
        ensure!(!again.status.success(), "{name}");
        ensure!(
            String::from_utf8_lossy(&again.stderr).contains(reason),
            "{name}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
    }
    // A new token for the bot works beside the first; people get none this way.
    let renewed = confab(&["--data", &data, "bot", "token", "nightly-build"]).await?;
    ensure!(renewed.status.success(), "{}", String::from_utf8_lossy(&renewed.stderr));
    let second = String::from_utf8(renewed.stdout)?.trim().to_owned();
    ensure!(second.len() == 64 && second != token);
    let (status, _) = http_json(server.addr, "GET", "/api/rooms", Some(&second), None).await?;
    ensure!(status == 200);
    for (name, reason) in [("ann", "a person, not a bot"), ("nobody-here", "no user named")] {
        let refused = confab(&["--data", &data, "bot", "token", name]).await?;
        ensure!(!refused.status.success());
        ensure!(String::from_utf8_lossy(&refused.stderr).contains(reason), "{name}");
    }
    // A bot has no password to sign in with.
    let login = json!({"username": "nightly-build", "password": ""});
    let (status, _) = http_json(server.addr, "POST", "/api/login", None, Some(&login)).await?;
    ensure!(status == 400 || status == 401, "{status}");
    Ok(())
}
