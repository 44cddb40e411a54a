//! `search_bench`: search over a long history. Writes an export of `SEARCH_MESSAGES`
//! messages (default 1,000,000: ten rooms, fifty people, sentences drawn from a
//! 20,000-word vocabulary with Zipf's law, a year long), imports it with `confab import`
//! into the embedded store and into PostgreSQL, and times a fixed mix of searches over
//! HTTP as a reader who is in every room: rare, middling and common words, two words, a
//! phrase, a prefix, `from:` and `in:`. One JSON line (`SEARCH_STORES=embedded` or
//! `=postgres` runs one store). A benchmark, run by `cargo xtask bench`; not a test.
//!
//! `search_bench write FILE` only writes the history: `confab import FILE` then seeds any
//! store with it.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use e2e::cluster::Postgres;
use e2e::{Confab, FAST_SEEDING, confab_binary, http_json, register};
use serde_json::{Value, json};

const ROOMS: usize = 10;
const PEOPLE: usize = 50;
const VOCABULARY: usize = 20_000;
const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ren", "to", "sa", "vi", "nor", "el", "da", "pu", "qui", "ba", "fe", "go",
    "zu",
];

/// A small deterministic generator (xorshift64*): the same history and queries every run.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The word of a vocabulary rank: two or more syllables, one per base-16 digit.
fn word(rank: usize) -> String {
    let mut n = rank + SYLLABLES.len();
    let mut out = Vec::new();
    while n > 0 {
        out.push(SYLLABLES[n % SYLLABLES.len()]);
        n /= SYLLABLES.len();
    }
    out.concat()
}

/// Draws vocabulary ranks with Zipf's law (exponent 1).
struct Zipf(Vec<f64>);

impl Zipf {
    fn new() -> Zipf {
        let mut total = 0.0;
        Zipf(
            (0..VOCABULARY)
                .map(|rank| {
                    total += 1.0 / (rank as f64 + 1.0);
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, random: &mut Random) -> usize {
        let total = self.0.last().copied().unwrap_or(1.0);
        let at = (random.next() >> 11) as f64 / (1u64 << 53) as f64 * total;
        self.0.partition_point(|&cumulative| cumulative < at).min(VOCABULARY - 1)
    }
}

fn room(index: usize) -> String {
    if index == 0 { "lobby".to_owned() } else { format!("team{index}") }
}

/// Writes the export; returns some sentences said, for phrase queries.
fn write_history(path: &std::path::Path, messages: usize) -> Result<Vec<Vec<String>>> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let year = 365 * 86_400_000_i64;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    let start = now - year;
    let line = |out: &mut std::io::BufWriter<std::fs::File>, record: Value| -> Result<()> {
        serde_json::to_writer(&mut *out, &record)?;
        out.write_all(b"\n")?;
        Ok(())
    };
    for person in 0..PEOPLE {
        line(
            &mut out,
            json!({"kind": "user", "name": format!("person{person}"), "password_hash": "unusable", "created_at": start}),
        )?;
    }
    let per_room = messages.div_ceil(ROOMS);
    for index in 0..ROOMS {
        let last = per_room.min(messages - (index * per_room).min(messages));
        let created_by = (index > 0).then(|| "person0".to_owned());
        line(
            &mut out,
            json!({"kind": "room", "name": room(index), "created_by": created_by, "created_at": start, "last_seq": last}),
        )?;
        for person in 0..PEOPLE {
            line(
                &mut out,
                json!({"kind": "member", "room": room(index), "user": format!("person{person}"), "last_read": last}),
            )?;
        }
    }
    let (zipf, mut random) = (Zipf::new(), Random(0x9E37_79B9_7F4A_7C15));
    let mut seqs = [0u64; ROOMS];
    let mut said = Vec::new();
    for n in 0..messages {
        let index = n % ROOMS;
        seqs[index] += 1;
        let length = 6 + random.below(13);
        let words: Vec<String> = (0..length).map(|_| word(zipf.draw(&mut random))).collect();
        if n % 5_000 == 0 {
            said.push(words.clone());
        }
        let sent_at = start + (year as f64 * n as f64 / messages as f64) as i64;
        line(
            &mut out,
            json!({
                "kind": "message", "room": room(index), "seq": seqs[index],
                "sender": format!("person{}", random.below(PEOPLE)), "text": words.join(" "),
                "sent_at": sent_at, "key": null,
            }),
        )?;
    }
    out.flush()?;
    Ok(said)
}

/// The searches timed, each with its kind.
fn queries(said: &[Vec<String>]) -> Vec<(&'static str, String)> {
    let mut random = Random(0xD1B5_4A32_D192_ED03);
    let mut out = Vec::new();
    for n in 0..300 {
        let (kind, query) = match n % 10 {
            0..=2 => ("rare word", word(2_000 + random.below(VOCABULARY - 2_000))),
            3 => ("middling word", word(100 + random.below(1_900))),
            4 => ("common word", word(random.below(100))),
            5 => (
                "two words",
                format!("{} {}", word(50 + random.below(1_000)), word(50 + random.below(1_000))),
            ),
            6 => {
                let sentence = &said[random.below(said.len())];
                let at = random.below(sentence.len() - 1);
                ("phrase", format!("\"{} {}\"", sentence[at], sentence[at + 1]))
            }
            7 => {
                let whole = word(200 + random.below(3_000));
                ("prefix", format!("{}*", &whole[..whole.len().min(5)]))
            }
            8 => (
                "from:",
                format!("{} from:person{}", word(20 + random.below(500)), random.below(PEOPLE)),
            ),
            _ => (
                "in:",
                format!("{} in:{}", word(20 + random.below(500)), room(random.below(ROOMS))),
            ),
        };
        out.push((kind, query));
    }
    out
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0)
}

/// Imports, serves, and times the searches on one store.
async fn run(
    file: &std::path::Path,
    store_args: &[&str],
    searches: &[(&'static str, String)],
) -> Result<Value> {
    let data = tempfile::tempdir()?;
    let started = Instant::now();
    let import = tokio::process::Command::new(confab_binary()?)
        .arg("--data")
        .arg(data.path())
        .args(store_args)
        .arg("import")
        .arg(file)
        .output()
        .await?;
    ensure!(import.status.success(), "{}", String::from_utf8_lossy(&import.stderr));
    let import_s = started.elapsed().as_secs_f64();
    let confab = Confab::start_in(data, &[FAST_SEEDING, store_args].concat()).await?;
    let token = register(confab.addr, "reader").await?;
    for index in 1..ROOMS {
        let (status, body) = http_json(
            confab.addr,
            "POST",
            &format!("/api/rooms/{}/join", room(index)),
            Some(&token),
            None,
        )
        .await?;
        ensure!(status < 300, "join: {status} {body}");
    }
    let search = |addr: SocketAddr, query: String| {
        let token = token.clone();
        async move {
            let path = format!("/api/search?q={}", encode(&query));
            let started = Instant::now();
            let (status, body) = http_json(addr, "GET", &path, Some(&token), None).await?;
            let took = started.elapsed();
            ensure!(status == 200, "{query}: {status} {body}");
            anyhow::Ok((took, body["hits"].as_array().map_or(0, Vec::len)))
        }
    };
    // Warm the caches as a server in use would be.
    for (_, query) in searches.iter().take(30) {
        search(confab.addr, query.clone()).await?;
    }
    let mut all = Vec::new();
    let mut by_kind: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut empty = 0;
    for (kind, query) in searches {
        let (took, hits) = search(confab.addr, query.clone()).await?;
        let ms = took.as_secs_f64() * 1000.0;
        all.push(ms);
        by_kind.entry(kind).or_default().push(ms);
        empty += usize::from(hits == 0);
    }
    all.sort_by(f64::total_cmp);
    let kinds: serde_json::Map<String, Value> = by_kind
        .into_iter()
        .map(|(kind, mut times)| {
            times.sort_by(f64::total_cmp);
            (kind.to_owned(), json!({"p50": percentile(&times, 0.5), "p95": percentile(&times, 0.95), "max": percentile(&times, 1.0)}))
        })
        .collect();
    Ok(json!({
        "import_s": import_s,
        "queries": all.len(),
        "empty_results": empty,
        "ms": {"p50": percentile(&all, 0.5), "p95": percentile(&all, 0.95), "max": percentile(&all, 1.0)},
        "by_kind": kinds,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let messages: usize = std::env::var("SEARCH_MESSAGES")
        .ok()
        .map(|n| n.parse())
        .transpose()
        .context("SEARCH_MESSAGES is a number")?
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir()?;
    // `search_bench write FILE` only writes the history, for `confab import FILE`.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let file = match args.as_slice() {
        [write, file] if write == "write" => std::path::PathBuf::from(file),
        [] => dir.path().join("history.jsonl"),
        _ => anyhow::bail!("usage: search_bench [write FILE]"),
    };
    let started = Instant::now();
    let said = write_history(&file, messages)?;
    eprintln!("wrote {messages} messages in {:.1} s", started.elapsed().as_secs_f64());
    if !args.is_empty() {
        return Ok(());
    }
    let searches = queries(&said);
    // SEARCH_STORES=embedded or =postgres runs one.
    let stores = std::env::var("SEARCH_STORES").unwrap_or_default();
    let embedded = match stores.as_str() {
        "postgres" => Value::Null,
        _ => run(&file, &[], &searches).await?,
    };
    eprintln!("embedded: {embedded}");
    let on_postgres = match stores.as_str() {
        "embedded" => Value::Null,
        _ => {
            let postgres = Postgres::start().await?;
            run(&file, &["--postgres", &postgres.url()], &searches).await?
        }
    };
    eprintln!("postgres: {on_postgres}");
    println!(
        "{}",
        json!({"scenario": "search", "messages": messages, "embedded": embedded, "postgres": on_postgres})
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
