//! Idempotent installation of what the build and the tests need.
//!
//! Each step checks first and does nothing when the tool is present at the right version:
//! a warm `cargo xtask setup` takes about a second. Nothing is downloaded from outside the
//! package registries (crates.io, Debian, npm).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::run_command;

/// trunk 0.22 needs a newer rustc than the project's 1.95.
const TRUNK_VERSION: &str = "0.21.14";
/// npm's binaryen; Debian's 108 builds modules Chromium rejects.
const BINARYEN_VERSION: &str = "132";
/// Debian packages the tests use, with a binary that shows each is installed.
const APT_PACKAGES: [(&str, &str); 7] = [
    ("chromium", "/usr/bin/chromium"),
    ("chromium-driver", "/usr/bin/chromedriver"),
    // Reactions are emoji: without a font for them the browser tests' screenshots show boxes.
    ("fonts-noto-color-emoji", "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
    ("redis-server", "/usr/bin/redis-server"),
    ("haproxy", "/usr/sbin/haproxy"),
    ("nginx-light", "/usr/sbin/nginx"),
    // The server only: the tests run their own clusters (Debian 12 ships PostgreSQL 15).
    ("postgresql", "/usr/lib/postgresql/15/bin/initdb"),
];

/// Everything: the client's tools and the tests' tools.
pub fn all(root: &Path) -> Result<()> {
    client_tools(root)?;
    apt_packages()?;
    interop_clients(root)
}

/// What `trunk build` needs: the wasm target, trunk, wasm-bindgen and wasm-opt.
pub fn client_tools(root: &Path) -> Result<()> {
    wasm_target()?;
    trunk()?;
    wasm_bindgen(root)?;
    wasm_opt(root)
}

/// `~/.cargo/bin`, where `cargo install` puts binaries.
pub fn cargo_bin() -> PathBuf {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"));
    cargo_home.join("bin")
}

/// The first line a command prints, or `None` if it cannot run.
fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// Whether `cargo nextest` is available.
pub fn has_nextest() -> bool {
    output_of("cargo", &["nextest", "--version"]).is_some()
}

fn wasm_target() -> Result<()> {
    let installed = output_of("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|line| line.trim() == "wasm32-unknown-unknown") {
        return Ok(());
    }
    run_command(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// `cargo install` without the release profile's fat LTO: twice as fast on two cores.
fn cargo_install(args: &[&str]) -> Result<()> {
    run_command(
        Command::new("cargo")
            .arg("install")
            .args(args)
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    )
}

fn trunk() -> Result<()> {
    let trunk = cargo_bin().join("trunk");
    let version = output_of(trunk.to_str().unwrap_or("trunk"), &["--version"]).unwrap_or_default();
    if version == format!("trunk {TRUNK_VERSION}") {
        return Ok(());
    }
    cargo_install(&["--locked", "trunk", "--version", TRUNK_VERSION])
}

/// The wasm-bindgen version Cargo.lock pins; the CLI must match it exactly.
fn locked_wasm_bindgen(root: &Path) -> Result<String> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("read Cargo.lock")?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\"" {
            let version = lines.next().unwrap_or_default();
            if let Some(version) =
                version.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"'))
            {
                return Ok(version.to_owned());
            }
        }
    }
    bail!("Cargo.lock has no wasm-bindgen package")
}

fn wasm_bindgen(root: &Path) -> Result<()> {
    let wanted = locked_wasm_bindgen(root)?;
    let binary = cargo_bin().join("wasm-bindgen");
    let version =
        output_of(binary.to_str().unwrap_or("wasm-bindgen"), &["--version"]).unwrap_or_default();
    if version == format!("wasm-bindgen {wanted}") {
        return Ok(());
    }
    // Not `--locked`: its lockfile pins a crate version the registry no longer has.
    cargo_install(&["wasm-bindgen-cli", "--version", &wanted])
}

fn wasm_opt(root: &Path) -> Result<()> {
    let binary = root.join(".tools/node_modules/.bin/wasm-opt");
    let version =
        output_of(binary.to_str().unwrap_or("wasm-opt"), &["--version"]).unwrap_or_default();
    if version.contains(&format!("version {BINARYEN_VERSION}")) {
        return Ok(());
    }
    run_command(Command::new("npm").args([
        "install",
        "--prefix",
        ".tools",
        "--no-save",
        "--no-audit",
        "--no-fund",
        &format!("binaryen@{BINARYEN_VERSION}"),
    ]))
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .filter(|(_, binary)| !Path::new(binary).exists())
        .map(|(package, _)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let as_root = output_of("id", &["-u"]).as_deref() == Some("0");
    let apt = |args: &[&str]| {
        let mut command = if as_root { Command::new("apt-get") } else { Command::new("sudo") };
        if !as_root {
            command.arg("apt-get");
        }
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run_command(&mut command)
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq"];
    install.extend(&missing);
    // Debian starts the services it installs (Redis, PostgreSQL, HAProxy, nginx); the
    // tests start their own, so nothing is left running: a policy-rc.d that says no, for
    // the length of the install, as Debian's container images do.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let hold = as_root && !policy.exists();
    if hold {
        std::fs::write(
            policy,
            "#!/bin/sh\n# cargo xtask setup: no daemons started by apt\nexit 101\n",
        )?;
        std::fs::set_permissions(policy, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let installed = apt(&install);
    if hold {
        std::fs::remove_file(policy)?;
    }
    installed
}

fn interop_clients(root: &Path) -> Result<()> {
    let interop = root.join("e2e/interop");
    if interop.join("node_modules/@stomp/stompjs").is_dir()
        && interop.join("node_modules/ws").is_dir()
    {
        return Ok(());
    }
    run_command(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(interop))
}
