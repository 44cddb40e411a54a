//! Logs: with `--log-format json` every line is a JSON object; lines about a connection
//! carry its id and user; and at the most verbose level no password, token or message text
//! appears in any line.

use anyhow::{Context, Result, ensure};
use e2e::stomp::StompClient;
use e2e::{Confab, http_json};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ANN_PASSWORD: &str = "ann-password-4711-secret";
const GUESS: &str = "guessed-password-0815-secret";
const TEXTS: [&str; 5] = [
    "room-text-7f3a-secret",
    "dm-text-91bc-secret",
    "refused-text-22de-secret",
    "json-text-5e8f-secret",
    "transaction-text-c0d1-secret",
];

async fn sign_up(server: &Confab, name: &str, password: &str) -> Result<String> {
    let body = json!({"username": name, "password": password});
    let (status, answer) =
        http_json(server.addr, "POST", "/api/register", None, Some(&body)).await?;
    ensure!(status == 201 || status == 200, "{status} {answer}");
    Ok(answer["token"].as_str().context("token")?.to_owned())
}

/// Does everything that might log a secret: sign-ups, a wrong password, a forged token,
/// messages, a DM, refused frames, a transaction, the JSON endpoint.
async fn chat(server: &Confab) -> Result<Vec<String>> {
    let ann = sign_up(server, "ann", ANN_PASSWORD).await?;
    let bob = sign_up(server, "bob", "bob-password-3141-secret").await?;
    let wrong = json!({"username": "ann", "password": GUESS});
    let (status, _) = http_json(server.addr, "POST", "/api/login", None, Some(&wrong)).await?;
    ensure!(status == 401);
    ensure!(
        StompClient::connect(&server.ws_url(), "ann", "forged-token-2718-secret").await.is_err()
    );
    let (status, _) =
        http_json(server.addr, "GET", "/api/rooms", Some("forged-token-2718-secret"), None).await?;
    ensure!(status == 401);

    let mut stomp = StompClient::connect(&server.ws_url(), "ann", &ann).await?;
    stomp.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    stomp.say("/app/room.lobby", TEXTS[0], Some("k1")).await?;
    stomp.say("/app/dm.bob", TEXTS[1], Some("k2")).await?;
    let mut json = json_socket(server, &bob).await?;
    json.send(Message::text(
        json!({"type": "message", "receiver": "all", "data": TEXTS[3]}).to_string(),
    ))
    .await?;
    json.send(Message::text(format!("{{\"type\": 5, \"data\": \"{}\"}}", TEXTS[2]))).await?;
    // Wait for the JSON client's message to come back, so it was handled.
    loop {
        let message = json.next().await.context("the JSON socket closed")??;
        if let Message::Text(text) = message
            && text.contains(TEXTS[3])
        {
            break;
        }
    }
    json.close(None).await?;
    // A transaction, committed, then a frame that ends the session with an ERROR.
    stomp.send_frame(e2e::stomp::begin("tx")).await?;
    stomp.send_frame(e2e::stomp::send_in("tx", "/app/room.lobby", TEXTS[4])).await?;
    stomp.send_frame(e2e::stomp::commit("tx")).await?;
    // A message with a control character is refused, quoting nothing back into the log;
    // then a frame of an unknown transaction, which ends the session with an ERROR.
    let refused = json!({"type": "message", "text": format!("{}\u{7}", TEXTS[2])});
    stomp.send_json("/app/room.lobby", &refused.to_string()).await?;
    let _ = stomp.send_frame(e2e::stomp::send_in("no-such-tx", "/app/room.lobby", TEXTS[4])).await;
    while stomp.next_frame().await.is_ok() {}
    Ok(vec![ann, bob])
}

async fn json_socket(
    server: &Confab,
    token: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let url = format!("ws://{}/room?token={token}&room=lobby", server.addr);
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

fn assert_no_secrets(log: &str, tokens: &[String]) -> Result<()> {
    let mut secrets: Vec<&str> =
        vec![ANN_PASSWORD, GUESS, "forged-token-2718-secret", "bob-password"];
    secrets.extend(TEXTS);
    secrets.extend(tokens.iter().map(String::as_str));
    for secret in secrets {
        ensure!(!log.contains(secret), "{secret:?} is in the log");
    }
    Ok(())
}

#[tokio::test]
async fn json_logs_parse_name_the_connection_and_hold_no_secrets() -> Result<()> {
    let mut server = Confab::start_logged(&["--log-format", "json"], "trace").await?;
    let tokens = chat(&server).await?;
    ensure!(server.terminate().await?.success());
    let log = std::fs::read_to_string(server.log_file())?;
    assert_no_secrets(&log, &tokens)?;

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).with_context(|| format!("not JSON: {line}")))
        .collect::<Result<_>>()?;
    ensure!(lines.len() > 10, "{} lines", lines.len());
    ensure!(lines.iter().any(|line| line["fields"]["message"] == "Confab is running"
        || line["message"] == "Confab is running"));
    // Every line logged inside a connection names it; once signed in, its user too.
    let about_connections: Vec<&Value> =
        lines.iter().filter(|line| line["span"]["name"] == "connection").collect();
    ensure!(about_connections.iter().all(|line| line["span"]["id"].is_u64()));
    let signed_in: Vec<&Value> =
        about_connections.iter().copied().filter(|line| line["message"] == "signed in").collect();
    ensure!(signed_in.iter().any(|line| line["span"]["user"] == "ann"), "{signed_in:?}");
    for line in &about_connections {
        let id = &line["span"]["id"];
        let user_known = signed_in.iter().any(|signed| &signed["span"]["id"] == id);
        if user_known && line["message"] != "connection opened" {
            ensure!(line["span"]["user"].is_string(), "no user on {line}");
        }
    }
    let refusals = about_connections
        .iter()
        .filter(|line| line["message"] == "refusing a frame: ERROR, then close");
    ensure!(refusals.count() >= 1);
    let json_lines =
        about_connections.iter().filter(|line| line["message"] == "JSON connection opened");
    ensure!(json_lines.into_iter().all(|line| line["span"]["user"] == "bob"));
    Ok(())
}

#[tokio::test]
async fn text_logs_name_the_connection_and_hold_no_secrets() -> Result<()> {
    let mut server = Confab::start_logged(&[], "trace").await?;
    let tokens = chat(&server).await?;
    ensure!(server.terminate().await?.success());
    let log = std::fs::read_to_string(server.log_file())?;
    assert_no_secrets(&log, &tokens)?;
    ensure!(log.contains("Confab is running: open http://"));
    ensure!(
        log.lines().any(|line| line.contains("connection{id=")
            && line.contains("user=ann}")
            && line.contains("signed in")),
        "{log}"
    );
    ensure!(!log.contains('\u{1b}'), "no colour codes when the output is not a terminal");
    Ok(())
}
