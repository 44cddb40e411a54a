//! The files in `deploy/` other than HAProxy's (tested by the cluster tests): nginx in front
//! of a node, WebSockets and the client's address passed on; the systemd unit, verified by
//! systemd itself where it is installed, its command line accepted by the real binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use e2e::stomp::StompClient;
use e2e::{Confab, free_port, http_get, register, require, workspace_root};
use tokio::net::TcpSocket;
use tokio::process::Command;

/// nginx with `deploy/nginx.conf`, its upstream pointed at `nodes` and its port free.
struct Nginx {
    addr: SocketAddr,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Nginx {
    async fn start(nodes: &[SocketAddr]) -> Result<Nginx> {
        let binary = PathBuf::from("/usr/sbin/nginx");
        require(
            binary.clone(),
            "install it with `apt-get install nginx-light` (`cargo xtask setup` does)",
        )?;
        let template = std::fs::read_to_string(workspace_root().join("deploy/nginx.conf"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let servers: String = nodes
            .iter()
            .map(|node| format!("        server {node} max_fails=2 fail_timeout=5s;\n"))
            .collect();
        let mut config: String = template
            .replace("listen 127.0.0.1:8000;", &format!("listen {addr};"))
            .lines()
            .filter(|line| !line.trim_start().starts_with("server 127.0.0.1:81"))
            .map(|line| format!("{line}\n"))
            .collect();
        config =
            config.replace("        least_conn;\n", &format!("        least_conn;\n{servers}"));
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, config)?;
        let prefix = dir.path().to_string_lossy().into_owned();
        // One process in the foreground (so that killing it leaves no worker behind), with
        // its pid, logs and temporary files in the test's directory.
        let globals = format!(
            "daemon off; master_process off; pid {prefix}/nginx.pid; error_log {prefix}/error.log;"
        );
        let child = Command::new(&binary)
            .args([
                "-p",
                &prefix,
                "-e",
                &format!("{prefix}/error.log"),
                "-c",
                &path.to_string_lossy(),
                "-g",
                &globals,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start nginx")?;
        e2e::eventually("nginx to reach the node", || async {
            Ok(http_get(addr, "/readyz").await.ok().filter(|body| body.contains("ready")))
        })
        .await
        .with_context(|| {
            std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
        })?;
        Ok(Nginx { addr, _child: child, _dir: dir })
    }
}

/// A WebSocket from `client` (a loopback address of its own) through `proxy`.
async fn connect_from(
    client: [u8; 4],
    proxy: SocketAddr,
    login: &str,
    token: &str,
) -> Result<StompClient> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((client, 0)))?;
    let stream = socket.connect(proxy).await?;
    StompClient::connect_over(stream, &format!("ws://{proxy}/ws"), login, token).await
}

#[tokio::test]
async fn nginx_passes_websockets_and_the_client_address() -> Result<()> {
    // One connection per client address: through nginx, two clients on two addresses are
    // two addresses only if the node trusts nginx's X-Forwarded-For.
    let node =
        Confab::start(&["--trusted-proxy", "127.0.0.1/32", "--max-connections-per-address", "1"])
            .await?;
    let nginx = Nginx::start(&[node.addr]).await?;
    let (ann, bob) = (register(node.addr, "ann").await?, register(node.addr, "bob").await?);

    let mut ann_ws = connect_from([127, 0, 0, 2], nginx.addr, "ann", &ann).await?;
    let mut bob_ws = connect_from([127, 0, 0, 3], nginx.addr, "bob", &bob).await?;
    bob_ws.subscribe("/topic/room.lobby", "lobby", &[]).await?;
    ann_ws.say("/app/room.lobby", "through nginx", Some("n1")).await?;
    let heard = String::from_utf8(bob_ws.next_body().await?.to_vec())?;
    ensure!(heard.contains("through nginx"), "{heard}");
    // A second connection from 127.0.0.2 is over that address's cap: the node saw the
    // client, not nginx.
    let refused = connect_from([127, 0, 0, 2], nginx.addr, "ann", &ann).await;
    ensure!(refused.is_err(), "the per-address cap applies to the real client");
    // The page and the API pass through as well.
    let page = http_get(nginx.addr, "/").await?;
    ensure!(page.contains("<html") || page.contains("<!DOCTYPE"), "{page}");
    Ok(())
}

/// The unit's `ExecStart=` line, split into words.
fn exec_start(unit: &str) -> Result<Vec<String>> {
    let line = unit.lines().find(|line| line.starts_with("ExecStart=")).context("ExecStart")?;
    Ok(line["ExecStart=".len()..].split_whitespace().map(str::to_owned).collect())
}

#[tokio::test]
async fn the_systemd_unit_is_valid_and_hardened() -> Result<()> {
    let unit = std::fs::read_to_string(workspace_root().join("deploy/confab.service"))?;
    for setting in [
        "DynamicUser=yes",
        "StateDirectory=confab",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "MemoryMax=",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        ensure!(unit.contains(setting), "{setting} in deploy/confab.service");
    }
    // The binary accepts the unit's command line (with a configuration file of its own).
    let words = exec_start(&unit)?;
    ensure!(words[0] == "/usr/local/bin/confab", "{words:?}");
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("confab.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:8080\"\n")?;
    let args: Vec<String> = words[1..]
        .iter()
        .map(|word| word.replace("/etc/confab/confab.toml", &config.to_string_lossy()))
        .collect();
    let checked =
        Command::new(e2e::confab_binary()?).args(&args).args(["config", "check"]).output().await?;
    ensure!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stderr));
    let settings = String::from_utf8(checked.stdout)?;
    ensure!(settings.contains("data = \"/var/lib/confab\"  # flag"), "{settings}");

    let analyze = PathBuf::from("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("systemd-analyze is not installed: the unit's systemd checks are skipped");
        return Ok(());
    }
    // systemd checks that ExecStart's binary exists: point it at the one built.
    let binary = e2e::confab_binary()?;
    let local = unit.replace("/usr/local/bin/confab", &binary.to_string_lossy());
    let path = dir.path().join("confab.service");
    std::fs::write(&path, local)?;
    let verify = Command::new(&analyze).arg("verify").arg(&path).output().await?;
    ensure!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security =
        Command::new(&analyze).args(["security", "--offline=yes"]).arg(&path).output().await?;
    let report = String::from_utf8_lossy(&security.stdout);
    let level: f64 = report
        .lines()
        .find_map(|line| line.split("Overall exposure level for confab.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("no exposure level in {report}"))?;
    ensure!(level <= 2.0, "exposure {level} (systemd rates up to 2.0 'OK')");
    Ok(())
}
