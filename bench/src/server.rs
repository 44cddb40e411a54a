//! The server's resource use, read from `/proc`: resident memory and CPU time.

use std::time::Instant;

/// A reading of some processes' counters.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    at: Instant,
    /// Resident set size, KiB, summed.
    pub rss_kib: u64,
    cpu_ticks: u64,
}

/// Reads the processes now; missing ones count zero.
pub fn sample(pids: &[u32]) -> Sample {
    let mut rss_kib = 0;
    let mut cpu_ticks = 0;
    for pid in pids {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            rss_kib += status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            // Fields after the command (which may contain spaces): utime is 14th, stime 15th.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            let field = |index: usize| {
                fields.get(index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0)
            };
            cpu_ticks += field(11) + field(12);
        }
    }
    Sample { at: Instant::now(), rss_kib, cpu_ticks }
}

/// CPU use between two samples, in percent of one core (clock ticks are 100 per second
/// on Linux).
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let seconds = after.at.duration_since(before.at).as_secs_f64();
    if seconds <= 0.0 {
        return 0.0;
    }
    (after.cpu_ticks.saturating_sub(before.cpu_ticks)) as f64 / 100.0 / seconds * 100.0
}

/// Reads a process and all its descendants (PostgreSQL's postmaster and its backends).
pub fn sample_tree(root: u32) -> Sample {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let ppid = after.split_whitespace().nth(1).and_then(|value| value.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid) in &parents {
            if tree.contains(ppid) && !tree.contains(pid) {
                tree.push(*pid);
                grew = true;
            }
        }
    }
    sample(&tree)
}
