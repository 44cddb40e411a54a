//! `confab backup` under write load, and `confab restore`: the restored server holds every
//! message that got a RECEIPT before the backup started, with ids in order and no gaps.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::stomp::StompClient;
use e2e::{Confab, confab_binary, http_json, register};

const PUBLISHERS: usize = 20;

async fn confab(args: &[&str]) -> Result<std::process::Output> {
    Ok(tokio::process::Command::new(confab_binary()?).args(args).output().await?)
}

/// Every message of the lobby, by id.
async fn lobby(server: &Confab, token: &str) -> Result<BTreeMap<u64, String>> {
    let mut stored = BTreeMap::new();
    loop {
        let path = format!("/api/rooms/lobby/messages?after={}&limit=200", stored.len());
        let (status, page) = http_json(server.addr, "GET", &path, Some(token), None).await?;
        ensure!(status == 200, "{page}");
        for message in page["messages"].as_array().into_iter().flatten() {
            let seq = message["seq"].as_u64().context("seq")?;
            stored.insert(seq, message["text"].as_str().unwrap_or_default().to_owned());
        }
        if page["more"] != true {
            return Ok(stored);
        }
    }
}

fn count(receipted: &Mutex<Vec<String>>) -> usize {
    receipted.lock().unwrap_or_else(PoisonError::into_inner).len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_write_load_restores_every_receipted_message() -> Result<()> {
    let mut server = Confab::start(e2e::FAST_SEEDING).await?;
    let token = register(server.addr, "writer").await?;
    let receipted = Arc::new(Mutex::new(Vec::new()));
    let mut publishers = Vec::new();
    for index in 0..PUBLISHERS {
        let (url, token, receipted) = (server.ws_url(), token.clone(), receipted.clone());
        publishers.push(tokio::spawn(async move {
            let Ok(mut client) = StompClient::connect(&url, "writer", &token).await else {
                return;
            };
            for n in 0.. {
                let text = format!("{index}-{n}");
                if client.say("/app/room.lobby", &text, Some(&text)).await.is_err() {
                    return;
                }
                receipted.lock().unwrap_or_else(PoisonError::into_inner).push(text);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    e2e::eventually("writes under way", || async { Ok((count(&receipted) > 500).then_some(())) })
        .await?;

    // What had a RECEIPT before the backup started must be in it.
    let before: Vec<String> = receipted.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let backups = tempfile::tempdir()?;
    let file = backups.path().join("confab-backup.db");
    let data = server.data_dir().to_string_lossy().into_owned();
    let backup = confab(&["--data", &data, "backup", &file.to_string_lossy()]).await?;
    ensure!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let said = String::from_utf8_lossy(&backup.stderr);
    ensure!(said.contains("backed up") && said.contains("messages"), "{said}");
    // Writes go on after the backup, so the restored store is visibly the backup's.
    let after_backup = count(&receipted);
    e2e::eventually("writes after the backup", || async {
        Ok((count(&receipted) > after_backup + 200).then_some(()))
    })
    .await?;
    let status = server.terminate().await?;
    ensure!(status.success(), "{status}");
    for publisher in publishers {
        publisher.await?;
    }
    let all = count(&receipted);

    // Restored over the store it was taken from, as README says: stop, restore, start.
    let restore = confab(&["--data", &data, "restore", &file.to_string_lossy()]).await?;
    ensure!(restore.status.success(), "{}", String::from_utf8_lossy(&restore.stderr));
    server.start_again().await?;
    let login = serde_json::json!({"username": "writer", "password": e2e::PASSWORD});
    let (status, body) = http_json(server.addr, "POST", "/api/login", None, Some(&login)).await?;
    ensure!(status == 200, "the account is in the backup: {body}");
    let token = body["token"].as_str().context("token")?.to_owned();
    let stored = lobby(&server, &token).await?;
    ensure!(stored.keys().copied().eq(1..=stored.len() as u64), "ids without gaps");
    let texts: HashSet<&String> = stored.values().collect();
    let missing = before.iter().filter(|text| !texts.contains(text)).count();
    ensure!(missing == 0, "{missing} of {} messages receipted before the backup", before.len());
    ensure!(stored.len() < all, "the restored store is the backup ({} of {all})", stored.len());

    // The restored server takes new messages with the next ids.
    let mut client = StompClient::connect(&server.ws_url(), "writer", &token).await?;
    client.say("/app/room.lobby", "after the restore", None).await?;
    let again = lobby(&server, &token).await?;
    ensure!(again.get(&(stored.len() as u64 + 1)).map(String::as_str) == Some("after the restore"));
    Ok(())
}

#[tokio::test]
async fn backup_and_restore_refuse_what_they_cannot_do() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let file = dir.path().join("backup.db").to_string_lossy().into_owned();
    // No store there yet: no empty backup is made.
    let output = confab(&["--data", &data, "backup", &file]).await?;
    ensure!(!output.status.success());
    ensure!(String::from_utf8_lossy(&output.stderr).contains("cannot open"));
    ensure!(!dir.path().join("backup.db").exists());
    // With PostgreSQL, the operator is pointed at the right tools.
    let postgres = ["--postgres", "postgres://nobody@127.0.0.1:1/none"];
    for command in ["backup", "restore"] {
        let output = confab(&[&postgres[..], &[command, &file]].concat()).await?;
        ensure!(!output.status.success());
        ensure!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"), "{command}");
    }
    // A file that is not a backup is refused.
    std::fs::write(dir.path().join("notes.txt"), "hello")?;
    let notes = dir.path().join("notes.txt").to_string_lossy().into_owned();
    let output = confab(&["--data", &data, "restore", &notes]).await?;
    ensure!(!output.status.success());
    ensure!(String::from_utf8_lossy(&output.stderr).contains("not a Confab backup"));
    Ok(())
}
