//! Moving a team from the embedded store to PostgreSQL with `confab export` and
//! `confab import`: the same histories, ids and read markers, and everyone signs in with the
//! password they had.

use anyhow::{Result, ensure};
use e2e::cluster::Postgres;
use e2e::stomp::StompClient;
use e2e::{Confab, PASSWORD, confab_binary, http_json, register};
use serde_json::{Value, json};

/// What a user sees of the server: rooms with their unread counts, the lobby's history,
/// the conversations and one of them.
async fn view(addr: std::net::SocketAddr, token: &str) -> Result<Vec<Value>> {
    let mut seen = Vec::new();
    for path in [
        "/api/rooms",
        "/api/rooms/lobby/messages?limit=200",
        "/api/rooms/ops/messages",
        "/api/dms",
        "/api/dms/bea/messages",
    ] {
        let (status, body) = http_json(addr, "GET", path, Some(token), None).await?;
        ensure!(status == 200, "{path}: {status} {body}");
        seen.push(body);
    }
    Ok(seen)
}

async fn confab(args: &[&str]) -> Result<std::process::Output> {
    Ok(tokio::process::Command::new(confab_binary()?).args(args).output().await?)
}

#[tokio::test]
async fn a_team_moves_from_the_embedded_store_to_postgres() -> Result<()> {
    let before = Confab::start(e2e::FAST_SEEDING).await?;
    let (ada, bea) = (register(before.addr, "ada").await?, register(before.addr, "bea").await?);
    let (status, _) =
        http_json(before.addr, "POST", "/api/rooms", Some(&ada), Some(&json!({"name": "ops"})))
            .await?;
    ensure!(status == 201);
    let mut ada_stomp = StompClient::connect(&before.ws_url(), "ada", &ada).await?;
    for n in 1..=30 {
        ada_stomp.say("/app/room.lobby", &format!("lobby {n}"), Some(&format!("l{n}"))).await?;
    }
    ada_stomp.say("/app/room.ops", "in ops", None).await?;
    ada_stomp.say("/app/dm.bea", "psst", Some("d1")).await?;
    let (status, _) = http_json(
        before.addr,
        "POST",
        "/api/rooms/lobby/read",
        Some(&bea),
        Some(&json!({"seq": 12})),
    )
    .await?;
    ensure!(status == 204);
    let seen_before = (view(before.addr, &ada).await?, view(before.addr, &bea).await?);

    // Exported while the server runs.
    let file = tempfile::NamedTempFile::new()?;
    let data = before.data_dir().to_string_lossy().into_owned();
    let export = confab(&["--data", &data, "export", &file.path().to_string_lossy()]).await?;
    ensure!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    drop(before);

    let postgres = Postgres::start().await?;
    let url = postgres.url();
    let import = confab(&["--postgres", &url, "import", &file.path().to_string_lossy()]).await?;
    ensure!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    // A second import is refused: the store is not empty any more.
    let again = confab(&["--postgres", &url, "import", &file.path().to_string_lossy()]).await?;
    ensure!(!again.status.success());
    ensure!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let after = Confab::start(&["--postgres", &url]).await?;
    let mut tokens = Vec::new();
    for user in ["ada", "bea"] {
        let credentials = json!({"username": user, "password": PASSWORD});
        let (status, body) =
            http_json(after.addr, "POST", "/api/login", None, Some(&credentials)).await?;
        ensure!(status == 200, "{user} signs in with the old password: {body}");
        tokens.push(body["token"].as_str().unwrap_or_default().to_owned());
    }
    let seen_after = (view(after.addr, &tokens[0]).await?, view(after.addr, &tokens[1]).await?);
    ensure!(seen_after == seen_before, "the same rooms, histories, ids and read markers");
    // Ids go on where they were.
    let mut ada_again = StompClient::connect(&after.ws_url(), "ada", &tokens[0]).await?;
    ada_again.say("/app/room.lobby", "after the move", None).await?;
    let (_, page) =
        http_json(after.addr, "GET", "/api/rooms/lobby/messages?limit=1", Some(&tokens[0]), None)
            .await?;
    ensure!(page["messages"][0]["seq"] == 31, "{page}");
    Ok(())
}
