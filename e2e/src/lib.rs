//! The end-to-end harness: starts real processes on free loopback ports and stops them.
//!
//! - [`Confab`]: the `confab` binary, serving the release build of the client.
//! - [`ChromeDriver`] and [`Browser`]: headless Chromium driven over WebDriver.
//! - [`eventually`]: poll a condition until a deadline instead of sleeping.
//! - [`cluster`]: Redis, several nodes and HAProxy; [`stomp`]: a typed STOMP client.
//!
//! A missing tool is a test failure with the command that installs it, never a skip.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

pub mod cluster;
pub mod stomp;

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// Flags for a server that a test fills with history over STOMP, faster than any person
/// types: the per-user send rates are off.
pub const FAST_SEEDING: &[&str] = &["--send-rate", "0", "--subscribe-rate", "0"];

/// How long a condition may take to become true before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("e2e sits in the workspace").to_owned()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("bound socket has an address").port()
}

/// Polls `check` until it returns `Some`, or fails after [`DEADLINE`] saying `what`.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let give_up = tokio::time::Instant::now() + DEADLINE;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if tokio::time::Instant::now() > give_up {
            match last_error {
                Some(error) => bail!("timed out waiting for {what}; last error: {error:#}"),
                None => bail!("timed out waiting for {what}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A file that must exist, or a failure naming the command that makes it.
pub fn require(path: PathBuf, how: &str) -> Result<PathBuf> {
    if path.exists() { Ok(path) } else { bail!("{} is missing: {how}", path.display()) }
}

/// The built client, `dist/` at the repository root.
pub fn dist_dir() -> Result<PathBuf> {
    let dist = workspace_root().join("dist");
    require(
        dist.join("index.html"),
        "build the client with `trunk build --release` (`cargo xtask test` does)",
    )?;
    Ok(dist)
}

/// The `confab` binary: `$CONFAB_BIN`, else `target/debug/confab`.
pub fn confab_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("CONFAB_BIN") {
        Some(path) => PathBuf::from(path),
        None => workspace_root().join("target/debug/confab"),
    };
    require(path, "build it with `cargo build -p backend` (`cargo xtask test` does)")
}

/// A running `confab` process on a free port; killed when dropped.
pub struct Confab {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    data: tempfile::TempDir,
    args: Vec<String>,
    /// `RUST_LOG` when the test reads the log (`stdout.log` in the data directory).
    log: Option<String>,
}

impl Confab {
    /// Starts `confab` on a free port with a fresh data directory, and waits until
    /// `/healthz` answers.
    pub async fn start(extra_args: &[&str]) -> Result<Confab> {
        let data = tempfile::tempdir().context("create a data directory")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        let child = Confab::spawn(addr, data.path(), &args, None).await?;
        Ok(Confab { addr, child, data, args, log: None })
    }

    /// Like [`Confab::start`], on a data directory prepared beforehand (an imported store).
    pub async fn start_in(data: tempfile::TempDir, extra_args: &[&str]) -> Result<Confab> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        let child = Confab::spawn(addr, data.path(), &args, None).await?;
        Ok(Confab { addr, child, data, args, log: None })
    }

    /// Like [`Confab::start`], logging at `rust_log` into [`Confab::log_file`].
    pub async fn start_logged(extra_args: &[&str], rust_log: &str) -> Result<Confab> {
        let data = tempfile::tempdir().context("create a data directory")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let args: Vec<String> = extra_args.iter().map(|arg| (*arg).to_owned()).collect();
        let child = Confab::spawn(addr, data.path(), &args, Some(rust_log)).await?;
        Ok(Confab { addr, child, data, args, log: Some(rust_log.to_owned()) })
    }

    /// Where [`Confab::start_logged`] logs.
    pub fn log_file(&self) -> PathBuf {
        self.data.path().join("stdout.log")
    }

    async fn spawn(
        addr: SocketAddr,
        data: &Path,
        args: &[String],
        log: Option<&str>,
    ) -> Result<Child> {
        let stdout = match log {
            Some(_) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(data.join("stdout.log"))
                    .context("open the log file")?,
            ),
            None => Stdio::null(),
        };
        let child = Command::new(confab_binary()?)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--static")
            .arg(dist_dir()?)
            .arg("--data")
            .arg(data)
            .args(args)
            // Tests sign many people up; a test of invitations says `--registration invite`,
            // which beats the environment.
            .env("CONFAB_REGISTRATION", "open")
            .env("RUST_LOG", log.unwrap_or("warn"))
            .stdout(stdout)
            .kill_on_drop(true)
            .spawn()
            .context("start confab")?;
        if args.iter().any(|arg| arg == "--tls-cert") {
            // HTTPS only: the test checks it with its own client; here, the port opens.
            eventually("confab to listen", || async { Ok(TcpStream::connect(addr).await.ok()) })
                .await?;
        } else {
            eventually("confab to answer /healthz", || async {
                Ok(http_get(addr, "/healthz").await.ok().filter(|body| body.contains("ok")))
            })
            .await?;
        }
        Ok(child)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its data directory (`--data`).
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The STOMP endpoint.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to the process.
    pub async fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.child.id().context("confab has exited already")?;
        let status =
            Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().await?;
        anyhow::ensure!(status.success(), "cannot signal confab");
        Ok(())
    }

    /// Stops the process with SIGKILL and waits for it to be gone.
    pub async fn kill(&mut self) -> Result<()> {
        self.child.kill().await.context("kill confab")
    }

    /// Sends SIGTERM, as an operator's `systemctl stop` does, and waits for the process to
    /// finish its shutdown.
    pub async fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().context("confab has exited already")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .context("kill")?;
        anyhow::ensure!(status.success(), "cannot signal confab");
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .context("confab did not stop after SIGTERM")?
            .context("wait for confab")
    }

    /// Starts the process again, on the same address and data directory.
    pub async fn start_again(&mut self) -> Result<()> {
        self.child =
            Confab::spawn(self.addr, self.data.path(), &self.args, self.log.as_deref()).await?;
        Ok(())
    }
}

/// A minimal HTTP/1.0 request with a JSON body; returns the status and the JSON answer.
pub async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value)> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = body.map(|body| body.to_string()).unwrap_or_default();
    let mut request =
        format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Type: application/json\r\n");
    if let Some(token) = token {
        request.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP body")?;
    let status = head.split(' ').nth(1).context("no status")?.parse()?;
    let json = if body.is_empty() { serde_json::Value::Null } else { serde_json::from_str(body)? };
    Ok((status, json))
}

/// Registers `user` (password `PASSWORD`) through `addr` and returns the session token.
pub async fn register(addr: SocketAddr, user: &str) -> Result<String> {
    let credentials = serde_json::json!({ "username": user, "password": PASSWORD });
    let (status, body) = http_json(addr, "POST", "/api/register", None, Some(&credentials)).await?;
    anyhow::ensure!(status == 201, "register {user}: {status} {body}");
    Ok(body["token"].as_str().context("a token")?.to_owned())
}

/// The password of every test account.
pub const PASSWORD: &str = "a long enough password";

/// A minimal HTTP/1.0 GET; returns the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (_, body) = response.split_once("\r\n\r\n").context("no HTTP body")?;
    Ok(body.to_owned())
}

/// A chromedriver process on a free port. It leads its own process group, which the
/// browsers it starts join; dropping it kills the whole group, so a failed test never
/// leaves a Chromium behind.
pub struct ChromeDriver {
    url: String,
    child: Child,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-9", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl ChromeDriver {
    /// Starts `chromedriver` and waits until it accepts connections.
    pub async fn start() -> Result<ChromeDriver> {
        let binary =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        require(
            PathBuf::from(&binary),
            "install it with `apt-get install chromium-driver` (`cargo xtask setup` does)",
        )?;
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start chromedriver")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        eventually("chromedriver to listen", || async {
            Ok(TcpStream::connect(addr).await.ok().map(drop))
        })
        .await?;
        Ok(ChromeDriver { url: format!("http://{addr}"), child })
    }

    /// Opens a new headless Chromium with its own profile.
    pub async fn browser(&self) -> Result<Browser> {
        Browser::open(&self.url, (1100, 760), serde_json::json!({})).await
    }

    /// Opens a new headless Chromium with a window of this size.
    pub async fn browser_sized(&self, width: u32, height: u32) -> Result<Browser> {
        Browser::open(&self.url, (width, height), serde_json::json!({})).await
    }

    /// Opens a new headless Chromium that saves downloads into `dir` without asking.
    pub async fn browser_downloading_to(&self, dir: &Path) -> Result<Browser> {
        let prefs = serde_json::json!({
            "download.default_directory": dir.display().to_string(),
            "download.prompt_for_download": false,
        });
        Browser::open(&self.url, (1100, 760), prefs).await
    }

    /// Opens a new headless Chromium whose user has allowed notifications for every site,
    /// as someone would answer the browser's question.
    pub async fn browser_allowing_notifications(&self) -> Result<Browser> {
        let prefs =
            serde_json::json!({ "profile.default_content_setting_values.notifications": 1 });
        Browser::open(&self.url, (1100, 760), prefs).await
    }
}

/// One headless Chromium session.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(
        driver_url: &str,
        (width, height): (u32, u32),
        prefs: serde_json::Value,
    ) -> Result<Browser> {
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        require(
            PathBuf::from(&chromium),
            "install it with `apt-get install chromium` (`cargo xtask setup` does)",
        )?;
        let profile = tempfile::tempdir().context("create a browser profile")?;
        let args = serde_json::json!([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ]);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args, "prefs": prefs }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(driver_url)
            .await
            .context("open a Chromium session")?;
        Ok(Browser { client, _profile: profile })
    }

    /// The text of the first element matching `css`, if there is one.
    pub async fn text(&self, css: &str) -> Result<Option<String>> {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => Ok(Some(element.text().await?)),
            Err(error) if error.is_no_such_element() => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// The texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        for element in self.client.find_all(Locator::Css(css)).await? {
            texts.push(element.text().await?);
        }
        Ok(texts)
    }

    /// Waits until some element matching `css` has a text containing `needle`. On timeout,
    /// saves a screenshot named after the wait, and says what the page showed.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Result<()> {
        let result = eventually(&format!("{needle:?} in {css}"), || async {
            Ok(self.texts(css).await?.iter().any(|text| text.contains(needle)).then_some(()))
        })
        .await;
        if let Err(error) = result {
            let name: String = format!("failed-{css}-{needle}")
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
                .take(80)
                .collect();
            let shot = self
                .screenshot(&name)
                .await
                .map(|path| path.display().to_string())
                .unwrap_or_default();
            let shown = self.texts(css).await.unwrap_or_default();
            return Err(error.context(format!("{css} showed {shown:?}; screenshot {shot}")));
        }
        Ok(())
    }

    /// Types into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let element = self.client.wait().for_element(Locator::Css(css)).await?;
        element.send_keys(text).await?;
        Ok(())
    }

    /// Opens `url` on the sign-up form: the first account of a new server opens there by
    /// itself; otherwise the form is switched to it.
    pub async fn open_sign_up(&self, url: &str) -> Result<()> {
        self.client.goto(url).await?;
        let submit = self.client.wait().for_element(Locator::Css("#submit")).await?;
        if submit.text().await? == "Sign in" {
            self.click("#switch-mode").await?;
        }
        Ok(())
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.client.wait().for_element(Locator::Css(css)).await?.click().await?;
        Ok(())
    }

    /// Saves a screenshot under `target/e2e-screenshots/` for people to look at.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = workspace_root().join("target/e2e-screenshots");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await?)?;
        Ok(path)
    }

    /// Ends the session and closes the browser.
    pub async fn close(self) -> Result<()> {
        self.client.close().await?;
        Ok(())
    }
}
