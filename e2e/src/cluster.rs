//! Several confab nodes on one PostgreSQL and one Redis behind HAProxy, all on free
//! loopback ports, for the scale-out tests. Every process is started here and killed when
//! the cluster is dropped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result};
use tokio::process::{Child, Command};

use crate::{Confab, eventually, free_port, http_get, require};

/// A `redis-server` with append-only persistence, so a restart keeps what was stored.
pub struct Redis {
    /// Its port.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts `redis-server` on a free port.
    pub async fn start() -> Result<Redis> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let child = Redis::spawn(port, &dir).await?;
        Ok(Redis { port, child, dir })
    }

    async fn spawn(port: u16, dir: &tempfile::TempDir) -> Result<Child> {
        let binary =
            std::env::var("REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".into());
        require(
            PathBuf::from(&binary),
            "install it with `apt-get install redis-server` (`cargo xtask setup` does)",
        )?;
        let child = Command::new(&binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start redis-server")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        eventually("redis-server to listen", || async {
            Ok(tokio::net::TcpStream::connect(addr).await.ok().map(drop))
        })
        .await?;
        Ok(child)
    }

    /// `redis://...` for the nodes.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL).
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("kill redis-server")
    }

    /// Starts it again on the same port and directory.
    pub async fn start_again(&mut self) -> Result<()> {
        self.child = Redis::spawn(self.port, &self.dir).await?;
        Ok(())
    }
}

/// A PostgreSQL server of the test's own: `initdb` into a temporary directory, run as the
/// unprivileged `postgres` user (PostgreSQL refuses to run as root, and tests run as root).
/// `setpriv` execs it, so the child is the server itself; dropping it shuts it down.
pub struct Postgres {
    /// Its port.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// Where Debian's `postgresql` package puts the server's programs (`$POSTGRES_BIN`
/// overrides).
pub fn postgres_bin() -> PathBuf {
    std::env::var_os("POSTGRES_BIN")
        .map_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"), PathBuf::from)
}

/// A command that runs `program` of PostgreSQL's as the `postgres` user.
fn as_postgres(program: &str) -> std::process::Command {
    let mut command = std::process::Command::new("setpriv");
    command
        .args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"])
        .arg(postgres_bin().join(program));
    command
}

impl Postgres {
    /// Creates a cluster in a fresh directory and starts it on a free port.
    pub async fn start() -> Result<Postgres> {
        require(
            postgres_bin().join("initdb"),
            "install it with `apt-get install postgresql` (`cargo xtask setup` does)",
        )?;
        let dir = tempfile::tempdir()?;
        let status =
            std::process::Command::new("chown").arg("postgres").arg(dir.path()).status()?;
        anyhow::ensure!(status.success(), "cannot give the postgres user its directory");
        let output = as_postgres("initdb")
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .context("run initdb")?;
        anyhow::ensure!(
            output.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let child = Postgres::spawn(port, &dir)?;
        let postgres = Postgres { port, child, dir };
        postgres.wait().await?;
        Ok(postgres)
    }

    fn spawn(port: u16, dir: &tempfile::TempDir) -> Result<Child> {
        let mut command = as_postgres("postgres");
        command
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Command::from(command).kill_on_drop(true).spawn().context("start postgres")
    }

    async fn wait(&self) -> Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        eventually("postgres to accept connections", || async {
            let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
                return Ok(None);
            };
            // An SSLRequest: a server that is up answers with one byte ("N": no TLS here).
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            stream.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await?;
            let mut answer = [0u8; 1];
            Ok(stream.read_exact(&mut answer).await.ok().map(drop))
        })
        .await?;
        // Accepting the protocol comes a moment before accepting queries after a restart.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Ok(())
    }

    /// `postgres://...` for the nodes.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server as a crash would (immediate shutdown: no checkpoint, every
    /// connection cut) and starts it again on the same data: it recovers from its WAL.
    pub async fn restart(&mut self) -> Result<()> {
        self.quit();
        self.child.wait().await.context("wait for postgres to stop")?;
        self.child = Postgres::spawn(self.port, &self.dir)?;
        self.wait().await
    }

    /// SIGQUIT: PostgreSQL's immediate shutdown, which takes its backends down with it.
    fn quit(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").args(["-QUIT", &pid.to_string()]).status();
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.quit();
    }
}

/// HAProxy in front of the nodes, as configured in `deploy/haproxy.cfg`.
pub struct LoadBalancer {
    /// Where clients connect.
    pub addr: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl LoadBalancer {
    /// Starts `haproxy` for `nodes` with the project's configuration.
    pub async fn start(nodes: &[SocketAddr]) -> Result<LoadBalancer> {
        let binary = std::env::var("HAPROXY").unwrap_or_else(|_| "/usr/sbin/haproxy".into());
        require(
            PathBuf::from(&binary),
            "install it with `apt-get install haproxy` (`cargo xtask setup` does)",
        )?;
        let template = std::fs::read_to_string(crate::workspace_root().join("deploy/haproxy.cfg"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let servers: String = nodes
            .iter()
            .enumerate()
            .map(|(index, node)| {
                format!("    server node{} {node} check inter 500ms fall 2 rise 1\n", index + 1)
            })
            .collect();
        let config = template
            .replace("bind 127.0.0.1:8000", &format!("bind {addr}"))
            .split('\n')
            .filter(|line| !line.trim_start().starts_with("server node"))
            .collect::<Vec<_>>()
            .join("\n")
            + &servers;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, config)?;
        let child = Command::new(&binary)
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start haproxy")?;
        eventually("haproxy to route to a ready node", || async {
            Ok(http_get(addr, "/readyz").await.ok().filter(|body| body.contains("ready")))
        })
        .await?;
        Ok(LoadBalancer { addr, _child: child, _dir: dir })
    }

    /// The page's address through the balancer.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The STOMP endpoint through the balancer.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// PostgreSQL, Redis, `n` nodes on them, and HAProxy in front.
pub struct Cluster {
    /// The shared store.
    pub postgres: Postgres,
    /// The shared bus.
    pub redis: Redis,
    /// The nodes.
    pub nodes: Vec<Confab>,
    /// The balancer.
    pub balancer: LoadBalancer,
}

impl Cluster {
    /// Starts everything and waits until the balancer reaches a ready node.
    pub async fn start(n_nodes: usize) -> Result<Cluster> {
        Cluster::start_with(n_nodes, &[]).await
    }

    /// Like [`Cluster::start`], with more options for every node.
    pub async fn start_with(n_nodes: usize, options: &[&str]) -> Result<Cluster> {
        let (postgres, redis) = (Postgres::start().await?, Redis::start().await?);
        let mut nodes = Vec::new();
        for _ in 0..n_nodes {
            let args = ["--postgres", &postgres.url(), "--redis", &redis.url()];
            // HAProxy is on this machine: its X-Forwarded-For names the clients.
            let more = ["--heartbeat-ms", "2000", "--trusted-proxy", "127.0.0.1/32"];
            nodes.push(Confab::start(&[&args[..], &more[..], options].concat()).await?);
        }
        let addrs: Vec<SocketAddr> = nodes.iter().map(|node| node.addr).collect();
        let balancer = LoadBalancer::start(&addrs).await?;
        Ok(Cluster { postgres, redis, nodes, balancer })
    }

    /// How many WebSocket sessions each node holds, from its `/healthz`.
    pub async fn sessions_per_node(&self) -> Vec<u64> {
        let mut counts = Vec::new();
        for node in &self.nodes {
            let body = http_get(node.addr, "/healthz").await.unwrap_or_default();
            let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            counts.push(json["sessions"].as_u64().unwrap_or(0));
        }
        counts
    }
}
