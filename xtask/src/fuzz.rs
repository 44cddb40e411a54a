//! `cargo xtask fuzz [--minutes N] [--target decode|session]`: coverage-guided fuzzing with
//! AFL++ (through cargo-afl, which works on stable Rust) of the STOMP decoder and of a
//! signed-in session fed arbitrary frames. Not part of CI: the committed corpus
//! (`fuzz/corpus/`) is replayed by `cargo xtask test` instead.
//!
//! Targets run side by side, one per core, each for the given minutes, starting from the
//! committed corpus; findings go to `target/fuzz/out/<target>/default/{crashes,hangs}`.
//! The report gives executions, coverage and crashes per target.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::run_command;

const TARGETS: [&str; 2] = ["decode", "session"];

/// Installs what is missing, builds the targets instrumented, fuzzes, reports.
pub fn fuzz(root: &Path, args: &[String]) -> Result<()> {
    let mut minutes = 5u64;
    let mut targets: Vec<&str> = TARGETS.to_vec();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => {
                minutes = args.next().context("--minutes needs a number")?.parse()?;
            }
            "--target" => {
                let target = args.next().context("--target needs a name")?;
                let Some(known) = TARGETS.iter().find(|known| **known == target.as_str()) else {
                    bail!("unknown target {target:?}: {TARGETS:?}");
                };
                targets = vec![known];
            }
            other => bail!("unknown option {other:?}: --minutes N, --target decode|session"),
        }
    }
    install_afl()?;
    let target_dir = root.join("target/fuzz");
    run_command(
        Command::new("cargo")
            .args(["afl", "build", "--release", "-p", "fuzz", "--bins"])
            .env("CARGO_TARGET_DIR", &target_dir),
    )?;
    let mut running = Vec::new();
    for target in &targets {
        let out = target_dir.join("out").join(target);
        std::fs::create_dir_all(&out)?;
        eprintln!("$ cargo afl fuzz {target} for {minutes} min");
        let child = Command::new("cargo")
            .args(["afl", "fuzz", "-i"])
            .arg(root.join("fuzz/corpus").join(target))
            .arg("-o")
            .arg(&out)
            .args(["-V", &(minutes * 60).to_string()])
            .arg(target_dir.join("release").join(target))
            .env("AFL_NO_UI", "1")
            .env("AFL_SKIP_CPUFREQ", "1")
            .env("AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES", "1")
            .env("AFL_AUTORESUME", "1")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("start the fuzzer for {target}"))?;
        running.push((target, out, child));
    }
    let mut failed = false;
    for (target, out, mut child) in running {
        let status = child.wait()?;
        let stats = std::fs::read_to_string(out.join("default/fuzzer_stats")).unwrap_or_default();
        let field = |name: &str| {
            stats
                .lines()
                .find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    (key.trim() == name).then(|| value.trim().to_owned())
                })
                .unwrap_or_else(|| "?".into())
        };
        println!(
            "{target}: {} executions ({}/s), {} corpus entries, coverage {}, {} crashes, {} hangs{}",
            field("execs_done"),
            field("execs_per_sec"),
            field("corpus_count"),
            field("bitmap_cvg"),
            field("saved_crashes"),
            field("saved_hangs"),
            if status.success() { String::new() } else { format!(" (fuzzer exited {status})") },
        );
        failed |= field("saved_crashes") != "0";
    }
    if failed {
        bail!("crashes found: see target/fuzz/out/<target>/default/crashes");
    }
    Ok(())
}

/// cargo-afl and its AFL++ runtime, unless installed.
fn install_afl() -> Result<()> {
    let installed = Command::new("cargo")
        .args(["afl", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if installed {
        return Ok(());
    }
    run_command(
        Command::new("cargo")
            .args(["install", "cargo-afl"])
            .env("CARGO_PROFILE_RELEASE_LTO", "false"),
    )
}
