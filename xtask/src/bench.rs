//! `cargo xtask bench`: Confab side by side with RabbitMQ Web-STOMP on this machine, the
//! embedded store against PostgreSQL, and one node against three on PostgreSQL and Redis.
//! Writes `BENCHMARKS.md`. Not part of CI.
//!
//! Every server runs pinned to CPU 0 (`taskset`), the load generator to CPU 1. RabbitMQ
//! (Debian's package, its Erlang VM limited to one scheduler) and Redis listen on loopback
//! only, with their state in a temporary directory; every process started here is stopped
//! here.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::run_command;

/// A process killed when dropped, with its whole process group (RabbitMQ's script starts
/// an Erlang VM under it); then its companion (RabbitMQ's epmd), if any.
pub(crate) struct Server {
    child: Child,
    name: &'static str,
    _companion: Option<Box<Server>>,
}

impl Server {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Each server leads its own process group: kill the group, then reap the leader.
        let _ = Command::new("kill").args(["-9", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("stopped {}", self.name);
    }
}

fn wait_for_port(port: u16, what: &str) -> Result<()> {
    let give_up = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > give_up {
            bail!("{what} did not open port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Waits (up to 70 s) until few sockets are in TIME_WAIT: thousands of them left by an
/// earlier run make every new loopback connection search for a free port.
fn quiet_sockets() {
    let give_up = Instant::now() + Duration::from_secs(70);
    loop {
        let time_wait = std::fs::read_to_string("/proc/net/sockstat")
            .unwrap_or_default()
            .split_whitespace()
            .skip_while(|word| *word != "tw")
            .nth(1)
            .and_then(|count| count.parse::<u64>().ok())
            .unwrap_or(0);
        if time_wait < 5000 || Instant::now() > give_up {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Installs Debian's rabbitmq-server without letting the package start its own broker.
fn install_rabbitmq() -> Result<()> {
    if Path::new("/usr/lib/rabbitmq/bin/rabbitmq-server").exists() {
        return Ok(());
    }
    let policy = Path::new("/usr/sbin/policy-rc.d");
    std::fs::write(policy, "#!/bin/sh\nexit 101\n").context("write policy-rc.d (run as root)")?;
    let _ = run_command(Command::new("chmod").args(["+x", "/usr/sbin/policy-rc.d"]));
    let installed = run_command(
        Command::new("apt-get").args(["update", "-qq"]).env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .and_then(|()| {
        run_command(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "rabbitmq-server"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    });
    let _ = std::fs::remove_file(policy);
    installed
}

/// RabbitMQ with only the Web-STOMP listener (plus AMQP and Erlang distribution, all on
/// loopback), one scheduler, pinned to CPU 0.
fn start_rabbitmq(dir: &Path) -> Result<(Server, u16)> {
    let (stomp, amqp, dist, epmd) = (free_port()?, free_port()?, free_port()?, free_port()?);
    std::fs::write(
        dir.join("rabbitmq.conf"),
        format!(
            "listeners.tcp.default = 127.0.0.1:{amqp}\nstomp.listeners.tcp = none\nweb_stomp.tcp.ip = 127.0.0.1\nweb_stomp.tcp.port = {stomp}\nloopback_users.guest = true\n"
        ),
    )?;
    std::fs::write(dir.join("enabled_plugins"), "[rabbitmq_web_stomp].\n")?;
    // Our own epmd, in the foreground: as a daemon it would outlive the benchmark.
    let epmd_server = Server {
        child: Command::new("epmd")
            .args(["-address", "127.0.0.1", "-port", &epmd.to_string()])
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start epmd")?,
        name: "epmd",
        _companion: None,
    };
    wait_for_port(epmd, "epmd")?;
    let child = Command::new("taskset")
        .args(["-c", "0", "/usr/lib/rabbitmq/bin/rabbitmq-server"])
        .current_dir(dir)
        .env("HOME", dir)
        .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
        .env("RABBITMQ_LOG_BASE", dir.join("log"))
        .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
        .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
        .env("RABBITMQ_NODENAME", "confab-bench@localhost")
        .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
        .env("RABBITMQ_NODE_PORT", amqp.to_string())
        .env("RABBITMQ_DIST_PORT", dist.to_string())
        .env("ERL_EPMD_ADDRESS", "127.0.0.1")
        .env("ERL_EPMD_PORT", epmd.to_string())
        .env(
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
            "+S 1:1 -kernel inet_dist_use_interface {127,0,0,1}",
        )
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start rabbitmq-server")?;
    let server = Server { child, name: "rabbitmq", _companion: Some(Box::new(epmd_server)) };
    wait_for_port(stomp, "rabbitmq web-stomp")?;
    Ok((server, stomp))
}

/// The pid of the process listening on `port` (RabbitMQ's Erlang VM, not its script).
fn listener_pid(port: u16) -> Result<u32> {
    for _ in 0..50 {
        let output = Command::new("ss").args(["-ltnpH", &format!("sport = :{port}")]).output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if let Some(pid) =
            text.split("pid=").nth(1).and_then(|rest| rest.split(',').next()?.parse().ok())
        {
            return Ok(pid);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("no process listens on port {port}")
}

/// A load generator is few accounts on one address sending far faster than people: the
/// per-user rates and per-address caps that protect a real server are off for it.
const LOAD_TEST_FLAGS: [&str; 10] = [
    "--send-rate",
    "0",
    "--subscribe-rate",
    "0",
    "--topic-rate",
    "0",
    "--max-connections",
    "0",
    "--max-connections-per-address",
    "0",
];

/// Starts confab on a free port; retries on another port if the one picked was taken in
/// the meantime (an outgoing connection may grab it). Returns the server and its port.
pub(crate) fn start_confab(root: &Path, data: &Path, extra: &[&str]) -> Result<(Server, u16)> {
    let flags: Vec<&str> = LOAD_TEST_FLAGS.iter().chain(extra).copied().collect();
    start_confab_with(root, data, &flags)
}

/// Like [`start_confab`], with exactly these flags (the per-user rates stay on unless they
/// say otherwise).
pub(crate) fn start_confab_with(root: &Path, data: &Path, flags: &[&str]) -> Result<(Server, u16)> {
    for _ in 0..5 {
        let port = free_port()?;
        let mut child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(root.join("target/release/confab"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--static"])
            .arg(root.join("dist"))
            .arg("--data")
            .arg(data)
            .args(flags)
            // The load generator signs its users up.
            .env("CONFAB_REGISTRATION", "open")
            .env("RUST_LOG", "warn")
            .process_group(0)
            .stdout(Stdio::null())
            .spawn()
            .context("start confab")?;
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok((Server { child, name: "confab", _companion: None }, port));
            }
            if child.try_wait()?.is_some() || Instant::now() > give_up {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    bail!("confab did not start")
}

fn start_redis(dir: &Path, port: u16) -> Result<Server> {
    let child = Command::new("taskset")
        .args([
            "-c",
            "0",
            "redis-server",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir"])
        .arg(dir)
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .context("start redis-server")?;
    let server = Server { child, name: "redis", _companion: None };
    wait_for_port(port, "redis")?;
    Ok(server)
}

/// A PostgreSQL of its own in `dir` (made with `initdb` as the `postgres` user, since it
/// refuses to run as root), pinned to CPU 0 with its backends, durable as in production
/// (fsync on). Returns the server; its pid is the postmaster's.
fn start_postgres(dir: &Path, port: u16) -> Result<Server> {
    let bin = PathBuf::from("/usr/lib/postgresql/15/bin");
    std::fs::create_dir_all(dir)?;
    run_command(Command::new("chown").arg("postgres").arg(dir))?;
    let as_postgres = |program: &str| {
        let mut command = Command::new("setpriv");
        command
            .args(["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"])
            .arg(bin.join(program));
        command
    };
    if !dir.join("data/PG_VERSION").exists() {
        let status = as_postgres("initdb")
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-A", "trust", "-U", "postgres"])
            .stdout(Stdio::null())
            .status()
            .context("run initdb")?;
        if !status.success() {
            bail!("initdb failed");
        }
    }
    let mut command = Command::new("taskset");
    command.args(["-c", "0"]).arg("setpriv").args([
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        "--",
    ]);
    let child = command
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(dir)
        .args(["-c", "max_connections=200"])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start postgres")?;
    let server = Server { child, name: "postgres", _companion: None };
    wait_for_port(port, "postgres")?;
    std::thread::sleep(Duration::from_millis(500));
    Ok(server)
}

/// A session token for the `bench` user on a Confab node.
pub(crate) fn token(port: u16) -> Result<String> {
    let body = r#"{"username":"bench","password":"bench password"}"#;
    for path in ["/api/register", "/api/login"] {
        let output = Command::new("curl")
            .args(["-s", "-X", "POST", "-H", "content-type: application/json", "-d", body])
            .arg(format!("http://127.0.0.1:{port}{path}"))
            .output()
            .context("run curl")?;
        if let Ok(json) = serde_json::from_slice::<Value>(&output.stdout)
            && let Some(token) = json["token"].as_str()
        {
            return Ok(token.to_owned());
        }
    }
    bail!("cannot get a token from confab on port {port}")
}

/// Runs the load generator pinned to CPU 1 and returns its JSON result.
pub(crate) fn loadgen(root: &Path, args: &[String]) -> Result<Value> {
    eprintln!("$ loadgen {}", args.join(" "));
    let output = Command::new("taskset")
        .args(["-c", "1"])
        .arg(root.join("target/release/loadgen"))
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .context("run loadgen")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    let json: Value =
        serde_json::from_str(line).with_context(|| format!("loadgen printed {text:?}"))?;
    eprintln!("  {json}");
    Ok(json)
}

pub(crate) fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|arg| (*arg).to_owned()).collect()
}

/// Whether a fan-out run met the bar: p99 under 50 ms, nothing lost, doubled, reordered.
fn clean(result: &Value) -> bool {
    result["latency_ms"]["p99"].as_f64().unwrap_or(f64::MAX) < 50.0
        && result["lost"] == 0
        && result["doubled"] == 0
        && result["reordered"] == 0
        && result["errors"] == 0
}

/// Raises the rate until a rate is not clean; returns the best clean run. Each rate gets two
/// attempts, so that one stray pause (a garbage collection, a page-cache flush) does not
/// end the sweep for either server.
fn sweep(root: &Path, base: &[String], rates: &[u32]) -> Result<Option<Value>> {
    quiet_sockets();
    let mut best = None;
    for rate in rates {
        let mut run = base.to_vec();
        run.extend(args(&["--rate", &rate.to_string()]));
        let first = loadgen(root, &run)?;
        let result = if clean(&first) { first } else { loadgen(root, &run)? };
        if !clean(&result) {
            break;
        }
        best = Some(result);
    }
    Ok(best)
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap_or(0.0)
}

/// One target's figures for the scenarios.
#[derive(Default)]
struct Figures {
    fanout: Option<Value>,
    pairs: Option<Value>,
    idle: Option<Value>,
    storm: Option<Value>,
    stalled: Option<Value>,
}

/// Runs the scenarios against one target, each on a fresh server from `start`. The
/// connect storm goes first, before other runs leave thousands of sockets in TIME_WAIT.
fn scenarios(
    root: &Path,
    start: &mut dyn FnMut() -> Result<(Server, u32, Vec<String>)>,
    rates: &[u32],
) -> Result<Figures> {
    let mut figures = Figures::default();
    let mut run_on_fresh = |extra: &[&str]| -> Result<Value> {
        quiet_sockets();
        let (_server, pid, mut run) = start()?;
        run.extend(args(extra));
        run.extend(args(&["--server-pid", &pid.to_string()]));
        loadgen(root, &run)
    };
    // The storm twice, each on a fresh server; the better counts (as with the sweeps).
    let storm = ["--scenario", "connect-storm", "--connections", "5000", "--rooms", "1000"];
    let (first, second) = (run_on_fresh(&storm)?, run_on_fresh(&storm)?);
    let rate = |run: &Value| number(&run["connect_per_sec"]);
    figures.storm = Some(if rate(&first) >= rate(&second) { first } else { second });
    figures.pairs = Some(run_on_fresh(&[
        "--connections",
        "2000",
        "--rooms",
        "1000",
        "--publishers",
        "1000",
        "--rate",
        "2000",
        "--concurrency",
        "128",
    ])?);
    // Ten subscribers that never read, among 100 that do, 4 KB bodies for 15 s.
    figures.stalled = Some(run_on_fresh(&[
        "--connections",
        "100",
        "--rooms",
        "10",
        "--publishers",
        "10",
        "--rate",
        "1000",
        "--body-bytes",
        "4000",
        "--duration",
        "15",
        "--stalled",
        "10",
    ])?);
    figures.idle =
        Some(run_on_fresh(&["--scenario", "idle", "--connections", "10000", "--rooms", "1000"])?);
    quiet_sockets();
    let (_server, pid, mut base) = start()?;
    base.extend(args(&[
        "--connections",
        "1000",
        "--rooms",
        "10",
        "--publishers",
        "10",
        "--body-bytes",
        "100",
    ]));
    base.extend(args(&["--server-pid", &pid.to_string(), "--duration", "5", "--warmup", "2"]));
    figures.fanout = sweep(root, &base, rates)?;
    Ok(figures)
}

/// `cargo xtask bench`.
pub fn bench(root: &Path) -> Result<()> {
    // The test tools (Chromium, chromedriver, redis-server) and the client's, then RabbitMQ.
    crate::setup::all(root)?;
    install_rabbitmq()?;
    run_command(Command::new("cargo").args([
        "build",
        "--release",
        "-p",
        "backend",
        "-p",
        "bench",
    ]))?;
    let scratch = tempfile_dir()?;

    // RabbitMQ.
    let mut n_rabbit = 0;
    let mut start_rabbit = || -> Result<(Server, u32, Vec<String>)> {
        n_rabbit += 1;
        let dir = scratch.join(format!("rabbitmq-{n_rabbit}"));
        std::fs::create_dir_all(&dir)?;
        let (server, port) = start_rabbitmq(&dir)?;
        let target = args(&[
            "--url",
            &format!("ws://127.0.0.1:{port}/ws"),
            "--login",
            "guest",
            "--passcode",
            "guest",
        ]);
        Ok((server, listener_pid(port)?, target))
    };
    let rabbit = scenarios(root, &mut start_rabbit, &[50, 100, 150, 200, 300, 400])?;

    // Confab, embedded engine.
    let mut n_confab = 0;
    let mut start_confab_fresh = || -> Result<(Server, u32, Vec<String>)> {
        n_confab += 1;
        let (server, port) = start_confab(root, &scratch.join(format!("confab-{n_confab}")), &[])?;
        let pid = server.pid();
        let target =
            args(&["--url", &format!("ws://127.0.0.1:{port}/ws"), "--passcode", &token(port)?]);
        Ok((server, pid, target))
    };
    let confab =
        scenarios(root, &mut start_confab_fresh, &[1000, 1500, 2000, 2500, 3000, 3500, 4000])?;

    // Confab chat rooms: stored, stamped, idempotent.
    let chat = {
        let (_server, pid, mut run) = start_confab_fresh()?;
        run.extend(args(&[
            "--mode",
            "chat",
            "--connections",
            "1000",
            "--rooms",
            "10",
            "--publishers",
            "10",
            "--server-pid",
            &pid.to_string(),
            "--duration",
            "5",
        ]));
        sweep(root, &run, &[1000, 1500, 2000, 2500, 3000])?
    };

    // Chat rooms on PostgreSQL: one node alone, then one and three nodes on PostgreSQL and
    // Redis. Every server (nodes, PostgreSQL and its backends, Redis) on CPU 0.
    let mut cluster_runs = Vec::new();
    for (label, n_nodes, with_redis) in [
        ("PostgreSQL", 1usize, false),
        ("PostgreSQL + Redis", 1, true),
        ("PostgreSQL + Redis", 3, true),
    ] {
        quiet_sockets();
        let postgres_port = free_port()?;
        let postgres =
            start_postgres(&scratch.join(format!("pg-{n_nodes}-{with_redis}")), postgres_port)?;
        let postgres_url = format!("postgres://postgres@127.0.0.1:{postgres_port}/postgres");
        let redis_port = free_port()?;
        let redis_dir = scratch.join(format!("redis-{n_nodes}"));
        std::fs::create_dir_all(&redis_dir)?;
        let redis = if with_redis { Some(start_redis(&redis_dir, redis_port)?) } else { None };
        let redis_url = format!("redis://127.0.0.1:{redis_port}/");
        let mut nodes = Vec::new();
        let mut run = Vec::new();
        for index in 0..n_nodes {
            let data = scratch.join(format!("node-{n_nodes}-{index}"));
            let mut flags = vec!["--postgres", postgres_url.as_str()];
            if with_redis {
                flags.extend(["--redis", redis_url.as_str()]);
            }
            let (node, port) = start_confab(root, &data, &flags)?;
            nodes.push(node);
            run.extend(args(&["--url", &format!("ws://127.0.0.1:{port}/ws")]));
        }
        let token = token(nodes_port(&run)?)?;
        run.extend(args(&["--passcode", &token, "--mode", "chat", "--connections", "1000"]));
        run.extend(args(&["--rooms", "10", "--publishers", "10", "--duration", "5"]));
        for node in &nodes {
            run.extend(args(&["--server-pid", &node.pid().to_string()]));
        }
        run.extend(args(&["--watch", &format!("postgres:{}", postgres.pid())]));
        if let Some(redis) = &redis {
            run.extend(args(&["--watch", &format!("redis:{}", redis.pid())]));
        }
        let rates = [500, 1000, 1500, 2000, 2500, 3000];
        cluster_runs.push((label, n_nodes, sweep(root, &run, &rates)?));
        drop(nodes);
    }

    let client = browser_client(root)?;
    let search = search_figures(root)?;
    let report = report(&rabbit, &confab, chat.as_ref(), &cluster_runs, &client, &search)?;
    let previous = std::fs::read_to_string(root.join("BENCHMARKS.md")).unwrap_or_default();
    let report = keep_blocks(&previous, report);
    std::fs::write(root.join("BENCHMARKS.md"), &report)?;
    println!("{report}");
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// `search_bench`: a million messages imported into each store, a fixed mix of searches
/// timed over HTTP against the release `confab`.
fn search_figures(root: &Path) -> Result<Value> {
    e2e_bench(root, "search_bench")
}

/// Runs a benchmark binary of the `e2e` crate against the release `confab`; its last line
/// of output is its result, as JSON.
fn e2e_bench(root: &Path, bin: &str) -> Result<Value> {
    eprintln!("$ {bin}");
    let output = Command::new("cargo")
        .args(["run", "-q", "-p", "e2e", "--bin", bin])
        .env("CONFAB_BIN", root.join("target/release/confab"))
        .env("PATH", crate::tool_path(root))
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("run {bin}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("{bin} printed {text:?}"))
}

/// The browser client: the release wasm's size, and `scroll_bench` (a 10,000-message
/// history paged back in headless Chromium, served by the release `confab` that
/// [`bench`] built first) as one JSON value.
fn browser_client(root: &Path) -> Result<Value> {
    crate::build_client(root)?;
    let wasm = std::fs::read_dir(root.join("dist"))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .context("dist/ has no .wasm: the client build failed")?;
    let raw = std::fs::metadata(&wasm)?.len();
    let gzip = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -9 -c '{}' | wc -c", wasm.display()))
        .output()
        .context("run gzip")?;
    let gzipped: u64 = String::from_utf8_lossy(&gzip.stdout).trim().parse().context("gzip size")?;
    let scroll = e2e_bench(root, "scroll_bench")?;
    eprintln!("  {scroll}");
    Ok(serde_json::json!({ "wasm_bytes": raw, "wasm_gzip_bytes": gzipped, "scroll": scroll }))
}

fn nodes_port(run: &[String]) -> Result<u16> {
    let url = run.get(1).context("a url")?;
    url.rsplit(':')
        .next()
        .and_then(|tail| tail.trim_end_matches("/ws").parse().ok())
        .context("a port")
}

pub(crate) fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("confab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn ratio(confab: f64, rabbit: f64, higher_is_better: bool) -> String {
    if confab <= 0.0 || rabbit <= 0.0 {
        return "—".into();
    }
    let ratio = if higher_is_better { confab / rabbit } else { rabbit / confab };
    format!("{ratio:.1}×")
}

fn report(
    rabbit: &Figures,
    confab: &Figures,
    chat: Option<&Value>,
    clusters: &[(&str, usize, Option<Value>)],
    client: &Value,
    search: &Value,
) -> Result<String> {
    let get = |figures: &Option<Value>, path: &[&str]| {
        let mut value = figures.clone().unwrap_or(Value::Null);
        for key in path {
            value = value[*key].clone();
        }
        number(&value)
    };
    let machine = format!(
        "{} cores ({}), Linux {}, {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::fs::read_to_string("/proc/cpuinfo")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("model name\t: "))
            .unwrap_or("unknown CPU"),
        String::from_utf8_lossy(&Command::new("uname").arg("-r").output()?.stdout).trim(),
        String::from_utf8_lossy(&Command::new("date").args(["-u", "+%Y-%m-%d"]).output()?.stdout)
            .trim(),
    );
    let mut out = String::new();
    writeln!(out, "# Benchmarks\n")?;
    writeln!(
        out,
        "Written by `cargo xtask bench` on {machine}. Servers pinned to CPU 0, the load"
    )?;
    writeln!(
        out,
        "generator (`loadgen`, the `bench` crate) to CPU 1; 100-byte bodies; no heart-beats."
    )?;
    writeln!(out, "RabbitMQ is Debian's 3.10 with `rabbitmq_web_stomp`, its VM on one scheduler.")?;
    writeln!(
        out,
        "Rate sweeps try each rate up to twice and stop at the first rate with no clean attempt;"
    )?;
    writeln!(
        out,
        "the connect storm runs twice on fresh servers and the better run counts. Both servers get"
    )?;
    writeln!(out, "the same treatment.\n")?;
    writeln!(out, "| scenario | RabbitMQ Web-STOMP | Confab | Confab ÷ RabbitMQ | target |")?;
    writeln!(out, "|---|---|---|---|---|")?;
    let (rd, cd) = (
        get(&rabbit.fanout, &["deliveries_per_sec"]),
        get(&confab.fanout, &["deliveries_per_sec"]),
    );
    writeln!(
        out,
        "| 1,000 connections, 10 rooms of 100, 10 publishers: most deliveries/s with p99 < 50 ms, nothing lost | {rd:.0} (p99 {:.1} ms) | {cd:.0} (p99 {:.1} ms) | {} | ≥ 200,000 and ≥ 15× |",
        get(&rabbit.fanout, &["latency_ms", "p99"]),
        get(&confab.fanout, &["latency_ms", "p99"]),
        ratio(cd, rd, true)
    )?;
    let (rp, cp) =
        (get(&rabbit.pairs, &["latency_ms", "p99"]), get(&confab.pairs, &["latency_ms", "p99"]));
    writeln!(
        out,
        "| 2,000 connections in 1,000 rooms of 2, 2,000 msgs/s: p99 | {rp:.1} ms | {cp:.1} ms | {} | — |",
        ratio(cp, rp, false)
    )?;
    let (ri, ci) = (
        get(&rabbit.idle, &["server", "kib_per_connection"]),
        get(&confab.idle, &["server", "kib_per_connection"]),
    );
    writeln!(
        out,
        "| 10,000 idle subscribed connections: memory per connection | {ri:.1} KiB | {ci:.1} KiB | {} smaller | ≤ 16 KiB, ≤ 1/10 |",
        ratio(ci, ri, false)
    )?;
    let (rs, cs) =
        (get(&rabbit.storm, &["connect_per_sec"]), get(&confab.storm, &["connect_per_sec"]));
    writeln!(
        out,
        "| connect storm, 5,000 CONNECT + SUBSCRIBE: connections/s | {rs:.0} | {cs:.0} | {} | ≥ 10,000 |",
        ratio(cs, rs, true)
    )?;
    let stalled = |figures: &Figures| {
        format!(
            "{:.0} of 10 cut off, RSS {:.0} MiB, p99 of the others {:.1} ms",
            get(&figures.stalled, &["stalled_closed_by_server"]),
            get(&figures.stalled, &["server", "rss_mib"]),
            get(&figures.stalled, &["latency_ms", "p99"]),
        )
    };
    writeln!(
        out,
        "| slow consumers: 10 of 110 subscribers never read, 4 KB bodies, 44 MB/s of deliveries for 15 s | {} | {} | — | cut off, memory bounded |",
        stalled(rabbit),
        stalled(confab)
    )?;
    let chat_rate = chat.map_or(0.0, |run| number(&run["sent_per_sec"]));
    let chat_deliveries = chat.map_or(0.0, |run| number(&run["deliveries_per_sec"]));
    let chat_p99 = chat.map_or(0.0, |run| number(&run["latency_ms"]["p99"]));
    writeln!(
        out,
        "| Confab chat rooms (stored, stamped, idempotent), rooms of 100: most stored msgs/s with p99 < 50 ms | — | {chat_rate:.0} msgs/s = {chat_deliveries:.0} deliveries/s (p99 {chat_p99:.1} ms) | — | ≥ 1,500 msgs/s |"
    )?;
    writeln!(out, "\n## Chat rooms on PostgreSQL, and several nodes on PostgreSQL and Redis\n")?;
    writeln!(
        out,
        "1,000 subscribers in rooms of 100 (spread over the nodes), 10 publishers; every message stored in \
         PostgreSQL (fsync on) before it is delivered. All servers share CPU 0: the nodes, PostgreSQL \
         with its backends, Redis. CPU is per 1,000 stored messages, in CPU-seconds, measured over the \
         5 s window, so that the cost on more cores can be computed from it.\n"
    )?;
    writeln!(
        out,
        "| store, bus | nodes | most stored msgs/s with p99 < 50 ms | deliveries/s | p50 | p99 | CPU s / 1,000 msgs: nodes · PostgreSQL · Redis |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (label, n_nodes, run) in clusters {
        let run = run.clone().unwrap_or(Value::Null);
        let rate = number(&run["sent_per_sec"]).max(1.0);
        // cpu_percent of one core over the window → CPU-seconds per 1,000 messages.
        let per_thousand = |percent: f64| percent / 100.0 * 1000.0 / rate;
        let watched = |name: &str| {
            run["watched"][name]["cpu_percent"]
                .as_f64()
                .map_or_else(|| "—".to_owned(), |percent| format!("{:.3}", per_thousand(percent)))
        };
        writeln!(
            out,
            "| {label} | {n_nodes} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.3} · {} · {} |",
            number(&run["sent_per_sec"]),
            number(&run["deliveries_per_sec"]),
            number(&run["latency_ms"]["p50"]),
            number(&run["latency_ms"]["p99"]),
            per_thousand(number(&run["server"]["cpu_percent"])),
            watched("postgres"),
            watched("redis"),
        )?;
    }
    writeln!(out, "\n## The browser client\n")?;
    writeln!(
        out,
        "`scroll_bench` seeds a room with 10,000 messages, opens it in headless Chromium and scrolls"
    )?;
    writeln!(
        out,
        "to the top until the whole history is loaded (a third of the messages formatted, a seventh\nreplies, a fifth with reactions); a long task (over 50 ms) is a visible stall.\n"
    )?;
    writeln!(out, "| measure | Confab | target |")?;
    writeln!(out, "|---|---|---|")?;
    writeln!(
        out,
        "| release wasm | {:.0} KB raw, {:.0} KB gzipped | ≤ 250 KB gzipped |",
        number(&client["wasm_bytes"]) / 1000.0,
        number(&client["wasm_gzip_bytes"]) / 1000.0
    )?;
    let scroll = &client["scroll"];
    writeln!(
        out,
        "| 10,000-message history: messages loaded, requests, time per request p50 / max | {:.0} in {:.0} requests, {:.0} / {:.0} ms | — |",
        number(&scroll["loaded"]),
        number(&scroll["pages"]),
        number(&scroll["page_ms"]["p50"]),
        number(&scroll["page_ms"]["max"]),
    )?;
    writeln!(
        out,
        "| 10,000-message history: long tasks while scrolling, longest, total | {:.0}, {:.0} ms, {:.0} ms | none over 50 ms |",
        number(&scroll["long_tasks"]["count"]),
        number(&scroll["long_tasks"]["max_ms"]),
        number(&scroll["long_tasks"]["total_ms"]),
    )?;
    writeln!(
        out,
        "| the page's start (sign-in, the room's first view): long tasks, longest | {:.0}, {:.0} ms | — |",
        number(&scroll["long_tasks_at_start"]["count"]),
        number(&scroll["long_tasks_at_start"]["max_ms"]),
    )?;
    writeln!(out, "\n## Search\n")?;
    writeln!(
        out,
        "`search_bench` imports {:.0} messages (ten rooms, fifty people, a year, words drawn with Zipf's law from a",
        number(&search["messages"])
    )?;
    writeln!(
        out,
        "20,000-word vocabulary) into each store and times 300 searches over HTTP as a reader in every room: rare,"
    )?;
    writeln!(
        out,
        "middling and common words, two words, a phrase, a prefix, `from:` and `in:`.\n"
    )?;
    writeln!(out, "| store | import | p50 | p95 | max | slowest kind (its p95) | target |")?;
    writeln!(out, "|---|---|---|---|---|---|---|")?;
    for (label, key) in [("embedded (SQLite FTS5)", "embedded"), ("PostgreSQL (GIN)", "postgres")] {
        let run = &search[key];
        let slowest = run["by_kind"]
            .as_object()
            .and_then(|kinds| {
                kinds.iter().max_by(|a, b| number(&a.1["p95"]).total_cmp(&number(&b.1["p95"])))
            })
            .map(|(kind, times)| format!("{kind} ({:.0} ms)", number(&times["p95"])))
            .unwrap_or_default();
        writeln!(
            out,
            "| {label} | {:.0} s | {:.1} ms | {:.1} ms | {:.0} ms | {slowest} | p95 < 50 ms |",
            number(&run["import_s"]),
            number(&run["ms"]["p50"]),
            number(&run["ms"]["p95"]),
            number(&run["ms"]["max"]),
        )?;
    }
    writeln!(out, "\n## Raw results\n")?;
    writeln!(out, "```json")?;
    for (name, figures) in [("rabbitmq", rabbit), ("confab", confab)] {
        for (scenario, run) in [
            ("fanout", &figures.fanout),
            ("pairs", &figures.pairs),
            ("idle", &figures.idle),
            ("storm", &figures.storm),
            ("stalled", &figures.stalled),
        ] {
            writeln!(
                out,
                "{{\"target\":\"{name}\",\"scenario\":\"{scenario}\",\"result\":{}}}",
                run.clone().unwrap_or(Value::Null)
            )?;
        }
    }
    if let Some(chat) = chat {
        writeln!(out, "{{\"target\":\"confab\",\"scenario\":\"chat\",\"result\":{chat}}}")?;
    }
    for (label, n_nodes, run) in clusters {
        writeln!(
            out,
            "{{\"target\":\"confab on {label}, {n_nodes} nodes\",\"scenario\":\"chat\",\"result\":{}}}",
            run.clone().unwrap_or(Value::Null)
        )?;
    }
    writeln!(out, "{{\"target\":\"confab\",\"scenario\":\"browser\",\"result\":{client}}}")?;
    writeln!(out, "{{\"target\":\"confab\",\"scenario\":\"search\",\"result\":{search}}}")?;
    writeln!(
        out,
        "```\n\nReproduce with `cargo xtask bench` (about 30 minutes; installs what is missing, RabbitMQ included)."
    )?;
    Ok(out)
}

/// The blocks other commands write into `BENCHMARKS.md` (`cargo xtask soak`), between
/// `<!-- name:begin -->` and `<!-- name:end -->`: kept when the rest is written anew.
const KEPT_BLOCKS: [&str; 1] = ["soak"];

/// `report` with the kept blocks of `previous` appended.
fn keep_blocks(previous: &str, mut report: String) -> String {
    for name in KEPT_BLOCKS {
        if let Some(block) = block(previous, name) {
            report.push('\n');
            report.push_str(block);
            report.push('\n');
        }
    }
    report
}

/// The block `name` of `text`, markers included.
fn block<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let begin = text.find(&format!("<!-- {name}:begin -->"))?;
    let end_marker = format!("<!-- {name}:end -->");
    let end = text[begin..].find(&end_marker)? + begin + end_marker.len();
    Some(&text[begin..end])
}

/// Puts `content` into `BENCHMARKS.md` as the block `name`, in place of the old one.
pub(crate) fn write_block(root: &Path, name: &str, content: &str) -> Result<()> {
    let path = root.join("BENCHMARKS.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let new_block = format!("<!-- {name}:begin -->\n{}\n<!-- {name}:end -->", content.trim_end());
    let text = match block(&text, name) {
        Some(old) => text.replacen(old, &new_block, 1),
        None => format!("{}\n\n{new_block}\n", text.trim_end()),
    };
    std::fs::write(path, text)?;
    Ok(())
}
