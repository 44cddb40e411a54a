//! `cargo xtask <command>`: the project's own commands, in Rust instead of shell scripts.
//!
//! - `setup`: installs every tool the build and the tests need, skipping what is already
//!   installed at the right version. Safe to run again; quick when nothing is missing.
//! - `run [confab options]`: builds the browser client and starts the server.
//! - `dev`: the server and `trunk serve` together, each rebuilt when its sources change.
//! - `test`: setup, formatting and lint checks, the client build, then every test,
//!   end-to-end browser tests included.
//! - `client`: builds the browser client into `dist/`.
//! - `bench`: the benchmarks in `BENCHMARKS.md` (not part of CI; installs RabbitMQ).
//! - `fuzz`: AFL++ on the decoder and on a session (not part of CI; installs cargo-afl).
//! - `soak`: minutes of load, churn and hostile clients (not part of CI).

mod bench;
mod dev;
mod fuzz;
mod setup;
mod soak;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = root();
    std::env::set_current_dir(&root).context("enter the repository root")?;
    match command.as_str() {
        "setup" => setup::all(&root),
        "client" => {
            setup::client_tools(&root)?;
            build_client(&root)
        }
        "run" => run(&root, &rest),
        "dev" => dev::dev(&root, &rest),
        "test" => test(&root, &rest),
        "fuzz" => fuzz::fuzz(&root, &rest),
        "soak" => soak::soak(&root, &rest),
        "bench" => {
            setup::client_tools(&root)?;
            build_client(&root)?;
            bench::bench(&root)
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 setup    install the toolchain pieces, Chromium and test tools (idempotent)\n  \
                 run      build the client and start confab; extra options go to confab\n  \
                 dev      the server and trunk serve together, rebuilt on change (development)\n  \
                 test     lint, build, and run every test, browser tests included\n  \
                 client   build the browser client into dist/\n  \
                 bench    Confab against RabbitMQ Web-STOMP, and 1 vs 3 nodes; writes BENCHMARKS.md\n  \
                 fuzz     fuzz the decoder and a session with AFL++ (--minutes N, --target decode|session)\n  \
                 soak     5,000 connections, churn and hostile clients for --minutes N (10); writes BENCHMARKS.md"
            );
            if command.is_empty() { Ok(()) } else { bail!("unknown command {command:?}") }
        }
    }
}

/// The repository root: the parent of this crate.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace").to_owned()
}

/// Runs a command, echoing it, and fails if it fails.
pub(crate) fn run_command(command: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(command));
    let status = command.status().with_context(|| format!("cannot start {}", describe(command)))?;
    if !status.success() {
        bail!("{} failed ({status})", describe(command));
    }
    Ok(())
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// `PATH` with the project-local tools (npm's wasm-opt) first.
pub(crate) fn tool_path(root: &Path) -> std::ffi::OsString {
    let mut paths = vec![root.join(".tools/node_modules/.bin"), setup::cargo_bin()];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
    std::env::join_paths(paths).expect("paths without separators")
}

pub(crate) fn build_client(root: &Path) -> Result<()> {
    run_command(Command::new("trunk").args(["build", "--release"]).env("PATH", tool_path(root)))
}

fn run(root: &Path, confab_args: &[String]) -> Result<()> {
    setup::client_tools(root)?;
    build_client(root)?;
    run_command(
        Command::new("cargo")
            .args(["run", "--release", "-p", "backend", "--bin", "confab", "--"])
            .args(confab_args),
    )
}

fn test(root: &Path, extra: &[String]) -> Result<()> {
    setup::all(root)?;
    run_command(Command::new("cargo").args(["fmt", "--all", "--check"]))?;
    run_command(Command::new("cargo").args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_command(Command::new("cargo").args([
        "clippy",
        "-p",
        "shared",
        "-p",
        "frontend",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    build_client(root)?;
    run_command(Command::new("cargo").args(["build", "-p", "backend", "--bin", "confab"]))?;
    let confab = root.join("target/debug/confab");
    // The whole workspace, the page's pure rules (frontend/src/model) included, natively.
    let mut tests = Command::new("cargo");
    if setup::has_nextest() {
        tests.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
    } else {
        tests.args(["test", "--workspace", "--no-fail-fast"]);
    }
    run_command(tests.args(extra).env("CONFAB_BIN", confab).env("PATH", tool_path(root)))
}
