//! `cargo xtask soak [--minutes N]`: Confab (release build) under 5,000 connections for N
//! minutes (10 by default): 4,000 subscribers in chat rooms and 10 publishers that must lose,
//! double and reorder nothing; 1,000 connections churning beside them (connect, subscribe,
//! publish, drop); and one hostile client per finding of the security review. Reports the
//! server's memory and open files over time, the well-behaved clients' latency, and their
//! lost, doubled and reordered counts, and writes them into `BENCHMARKS.md`. Not part of CI.
//!
//! The server keeps its per-user rates on (high enough for the load generator's own
//! accounts), so that the hostile user meets them.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench::{args, loadgen, start_confab_with, tempfile_dir, token, write_block};
use crate::run_command;

/// Runs the soak and records it.
pub fn soak(root: &Path, options: &[String]) -> Result<()> {
    let minutes: u64 = match options {
        [] => 10,
        [flag, minutes] if flag == "--minutes" => minutes.parse().context("--minutes N")?,
        _ => bail!("usage: cargo xtask soak [--minutes N]"),
    };
    crate::setup::client_tools(root)?;
    crate::build_client(root)?;
    run_command(Command::new("cargo").args([
        "build",
        "--release",
        "-p",
        "backend",
        "-p",
        "bench",
    ]))?;
    let scratch = tempfile_dir()?;
    let flags = [
        "--send-rate",
        "2000",
        "--send-burst",
        "4000",
        "--subscribe-rate",
        "2000",
        "--subscribe-burst",
        "4000",
        "--max-connections",
        "0",
        "--max-connections-per-address",
        "0",
    ];
    let (server, port) = start_confab_with(root, &scratch.join("soak"), &flags)?;
    let token = token(port)?;
    let seconds = minutes * 60;
    let run = args(&[
        "--scenario",
        "soak",
        "--mode",
        "chat",
        "--url",
        &format!("ws://127.0.0.1:{port}/ws"),
        "--passcode",
        &token,
        "--connections",
        "4000",
        "--churn",
        "1000",
        "--hostile",
        "--rooms",
        "10",
        "--publishers",
        "10",
        "--rate",
        "200",
        "--warmup",
        "10",
        "--duration",
        &seconds.to_string(),
        "--deadline",
        &(seconds + 300).to_string(),
        "--sample-secs",
        &(seconds / 20).max(5).to_string(),
        "--server-pid",
        &server.pid().to_string(),
    ]);
    let result = loadgen(root, &run)?;
    drop(server);
    let _ = std::fs::remove_dir_all(&scratch);
    let report = report(&result, minutes)?;
    println!("{report}");
    write_block(root, "soak", &report)
}

fn report(result: &Value, minutes: u64) -> Result<String> {
    let mut out = String::new();
    writeln!(out, "## Soak: {minutes} minutes under churn and hostile clients\n")?;
    writeln!(
        out,
        "`cargo xtask soak` ({}): 4,000 subscribers in 10 chat rooms and 10 publishers at 200 \
         messages/s (well-behaved), 1,000 connections that connect, subscribe, publish and drop \
         every 1–4 s, and one hostile client per finding of the security review (resubscribe \
         loops with full replays, 256 replays on a socket that never reads, megabyte login \
         names, transaction hoards, typing floods, failed logins, sockets that never CONNECT, \
         overflowing content-lengths). Release build, one node, embedded store.\n",
        String::from_utf8_lossy(&Command::new("date").args(["-u", "+%Y-%m-%d"]).output()?.stdout)
            .trim()
    )?;
    let latency = &result["latency_ms"];
    writeln!(out, "| well-behaved clients | figure |\n|---|---|")?;
    writeln!(
        out,
        "| deliveries/s | {:.0} |",
        result["deliveries_per_sec"].as_f64().unwrap_or(0.0)
    )?;
    writeln!(
        out,
        "| latency p50 / p99 / max | {} / {} / {} ms |",
        latency["p50"], latency["p99"], latency["max"]
    )?;
    writeln!(
        out,
        "| lost / doubled / reordered | {} / {} / {} |",
        result["lost"], result["doubled"], result["reordered"]
    )?;
    writeln!(out, "| ERRORs to well-behaved clients | {} |", result["errors"])?;
    writeln!(out, "\n| background | rounds |\n|---|---|")?;
    if let Some(counts) = result["background"].as_object() {
        for (name, count) in counts {
            writeln!(out, "| {} | {count} |", name.replace('_', " "))?;
        }
    }
    writeln!(out, "\n| at (s) | server RSS (MiB) | open files |\n|---|---|---|")?;
    for sample in result["samples"].as_array().into_iter().flatten() {
        writeln!(out, "| {} | {} | {} |", sample["at_s"], sample["rss_mib"], sample["open_files"])?;
    }
    writeln!(out, "\n```json\n{result}\n```")?;
    Ok(out)
}
