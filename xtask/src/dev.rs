//! `cargo xtask dev`: the development loop in one command. It starts the server (a debug
//! build) and `trunk serve` side by side, prints the address to open, rebuilds and restarts
//! the server when `backend/` or `shared/` change (trunk rebuilds and reloads the page by
//! itself), and stops both on Ctrl-C.
//!
//! Options: `--port` (the page, 8081), `--backend-port` (8080), `--dist` (trunk's output,
//! `dist-dev`), `--data` (the server's, `data`), `--release` (the page's release build,
//! which reuses what `cargo xtask client` compiled).
//!
//! trunk proxies `/api/` and `/ws` to the server, as `Trunk.toml` says; with other ports, a
//! copy of `Trunk.toml` with the server's address (`.trunk-dev.toml`, not committed) is used
//! instead. The server allows the page's development origin: only this command passes it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

use crate::{run_command, tool_path};

/// The development loop's settings.
struct Options {
    port: u16,
    backend_port: u16,
    dist: PathBuf,
    data: PathBuf,
    release: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut options = Options {
            port: 8081,
            backend_port: 8080,
            dist: PathBuf::from("dist-dev"),
            data: PathBuf::from("data"),
            release: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--port" => options.port = value()?.parse()?,
                "--backend-port" => options.backend_port = value()?.parse()?,
                "--dist" => options.dist = PathBuf::from(value()?),
                "--data" => options.data = PathBuf::from(value()?),
                "--release" => options.release = true,
                other => bail!(
                    "unknown option {other:?}: --port, --backend-port, --dist, --data, --release"
                ),
            }
        }
        Ok(options)
    }
}

/// A child process that is killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the loop until interrupted.
pub fn dev(root: &Path, args: &[String]) -> Result<()> {
    let options = Options::parse(args)?;
    crate::setup::client_tools(root)?;
    build_server()?;
    let origins = format!("http://127.0.0.1:{port},http://localhost:{port}", port = options.port);
    let start_server = || -> Result<Running> {
        let child = Command::new(root.join("target/debug/confab"))
            .args(["--listen", &format!("127.0.0.1:{}", options.backend_port)])
            .arg("--data")
            .arg(&options.data)
            .args(["--allowed-origin", &origins])
            // Its "open this address" line would point past the page being developed.
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("start confab")?;
        Ok(Running(child))
    };
    let mut server = start_server()?;
    let config = trunk_config(root, options.backend_port)?;
    let mut trunk = Command::new("trunk");
    trunk.arg("serve").arg("--dist").arg(&options.dist).args(["--port", &options.port.to_string()]);
    if options.release {
        trunk.arg("--release");
    }
    if let Some(config) = &config {
        trunk.arg("--config").arg(config);
    }
    let _trunk = Running(trunk.env("PATH", tool_path(root)).spawn().context("start trunk")?);
    println!(
        "Confab (development) is running: open http://127.0.0.1:{}/\n\
         The page rebuilds and reloads on save; the server restarts when backend/ or shared/ \
         change. Ctrl-C stops both.",
        options.port
    );
    let mut seen = newest_change(root);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = newest_change(root);
        if now <= seen {
            continue;
        }
        seen = now;
        eprintln!("server sources changed: rebuilding");
        match build_server() {
            Ok(()) => {
                drop(server);
                server = start_server()?;
                eprintln!("server restarted");
            }
            Err(error) => eprintln!("the server did not build ({error}); the old one runs on"),
        }
    }
}

fn build_server() -> Result<()> {
    run_command(Command::new("cargo").args(["build", "-p", "backend", "--bin", "confab"]))
}

/// `Trunk.toml` as it is for the default ports; a copy pointing at `backend_port` otherwise.
fn trunk_config(root: &Path, backend_port: u16) -> Result<Option<PathBuf>> {
    if backend_port == 8080 {
        return Ok(None);
    }
    let text = std::fs::read_to_string(root.join("Trunk.toml")).context("read Trunk.toml")?;
    let path = root.join(".trunk-dev.toml");
    std::fs::write(&path, text.replace("127.0.0.1:8080", &format!("127.0.0.1:{backend_port}")))?;
    Ok(Some(path))
}

/// The latest modification under the server's sources.
fn newest_change(root: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending: Vec<PathBuf> =
        ["backend/src", "backend/Cargo.toml", "shared/src", "shared/Cargo.toml"]
            .iter()
            .map(|path| root.join(path))
            .collect();
    while let Some(path) = pending.pop() {
        let Ok(metadata) = std::fs::metadata(&path) else { continue };
        if metadata.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|entry| entry.path()));
            }
        } else if let Ok(modified) = metadata.modified() {
            newest = newest.max(modified);
        }
    }
    newest
}
