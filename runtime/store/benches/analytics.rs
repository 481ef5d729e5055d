//! Benchmark (not a test): fills a temp database with 100,000 messages over 5,000 sessions and
//! 30 days, plus tool runs, then times `session_analytics` (median of several runs) and
//! `append_message` throughput. Run with `cargo bench -p flynn-store`.

use std::time::{Duration, Instant};

use flynn_store::{NewMessage, Role, Store, StoreError};

const MESSAGES: u64 = 100_000;
const SESSIONS: u64 = 5_000;
const DAYS: i64 = 30;
const TOOL_RUNS: u64 = 20_000;
const DAY_MS: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600_000;
const RUNS: usize = 9;

const WORDS: &[&str] = &[
    "kubernetes",
    "deploy",
    "postgres",
    "rust",
    "docker",
    "invoice",
    "weather",
    "calendar",
    "meeting",
    "budget",
    "travel",
    "flight",
    "hotel",
    "recipe",
    "garden",
    "backup",
    "server",
    "network",
    "python",
    "email",
    "report",
    "summary",
    "translate",
    "music",
    "photo",
    "health",
    "running",
    "coffee",
    "book",
    "movie",
    "the",
    "and",
    "please",
    "could",
    "you",
    "with",
    "that",
    "this",
    "about",
    "what",
    "when",
    "how",
    "is",
    "it",
    "for",
    "my",
    "a",
    "to",
    "of",
    "in",
];
const TOOLS: &[&str] = &[
    "shell.exec",
    "web.search",
    "fs.read",
    "fs.write",
    "http.get",
    "calc",
];

/// Small deterministic generator (xorshift64*), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn session_id(n: u64) -> String {
    let frontend = ["telegram", "ws", "slack", "discord"][(n % 4) as usize];
    format!("{frontend}:{n}")
}

fn sentence(rng: &mut Rng) -> String {
    let len = 6 + rng.below(14) as usize;
    (0..len)
        .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

async fn fill(store: &Store, rng: &mut Rng) -> Result<(), StoreError> {
    // Timestamps ascend across the 30 days, as a live gateway writes them.
    let step = DAYS * DAY_MS / MESSAGES as i64;
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..MESSAGES {
        batch.push(NewMessage {
            session_id: session_id(rng.below(SESSIONS)),
            role: if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            },
            content: sentence(rng),
            attachments: None,
            created_at_ms: START + i as i64 * step,
        });
        if batch.len() == 1_000 {
            store.append_messages(std::mem::take(&mut batch)).await?;
        }
    }
    let runs: Vec<(String, &str, i64)> = (0..TOOL_RUNS)
        .map(|i| {
            let at = START + (i as i64) * (DAYS * DAY_MS / TOOL_RUNS as i64);
            (
                session_id(rng.below(SESSIONS)),
                TOOLS[rng.below(TOOLS.len() as u64) as usize],
                at,
            )
        })
        .collect();
    store
        .call(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut ensure = tx.prepare(
                    "INSERT OR IGNORE INTO sessions (id, frontend, user_id, created_at_ms, last_active_at_ms)
                     VALUES (?1, 'bench', ?1, ?2, ?2)",
                )?;
                let mut insert = tx.prepare(
                    "INSERT INTO tool_runs (session_id, tool, args, result, success, started_at_ms, finished_at_ms)
                     VALUES (?1, ?2, '{}', '{}', 1, ?3, ?3 + 20)",
                )?;
                for (s, tool, at) in &runs {
                    ensure.execute(rusqlite_params(s, *at))?;
                    insert.execute((s, tool, at))?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
}

fn rusqlite_params(s: &str, at: i64) -> (&str, i64) {
    (s, at)
}

async fn run() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().map_err(|source| StoreError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let path = dir.path().join("bench.db");
    let store = Store::open_async(&path).await?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    let t = Instant::now();
    fill(&store, &mut rng).await?;
    let fill_time = t.elapsed();
    store.flush().await?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "filled {MESSAGES} messages / {SESSIONS} sessions / {DAYS} days + {TOOL_RUNS} tool runs \
         in {:.2?} (batches of 1000); file {:.1} MiB",
        fill_time,
        size as f64 / 1_048_576.0
    );

    let end = START + DAYS * DAY_MS;
    for (label, since) in [
        ("30-day window", START),
        ("7-day window", end - 7 * DAY_MS),
        ("1-day window", end - DAY_MS),
    ] {
        let mut times = Vec::with_capacity(RUNS);
        let mut last = None;
        for _ in 0..RUNS {
            let t = Instant::now();
            last = Some(store.session_analytics(since, 10).await?);
            times.push(t.elapsed());
        }
        let min = times.iter().min().copied().unwrap_or_default();
        let a = last.ok_or(StoreError::Closed)?;
        println!(
            "session_analytics {label}: median {:.2?} (min {:.2?}, {RUNS} runs); \
             {} messages, {} sessions, {} days, top topic {:?}",
            median(times),
            min,
            a.total_messages,
            a.total_sessions,
            a.daily.len(),
            a.top_topics.first().map(|t| (&t.topic, t.occurrences)),
        );
    }

    // Where the time goes, query by query, for the 30-day window and one starting mid-day.
    for (label, since) in [
        ("30-day", START),
        ("7.5-day", end - 7 * DAY_MS - DAY_MS / 2),
    ] {
        let (since, split, split_day) = flynn_store::window_params(since)?;
        let per_query = store
            .read(move |conn| {
                use flynn_store::rusqlite::types::Value;
                let all = [
                    Value::Integer(since),
                    Value::Integer(split),
                    Value::Text(split_day),
                    Value::Integer(10),
                ];
                let mut out = Vec::new();
                for (name, sql) in flynn_store::ANALYTICS_QUERIES {
                    let mut stmt = conn.prepare(sql)?;
                    let params = &all[..stmt.parameter_count()];
                    let mut times = Vec::with_capacity(RUNS);
                    for _ in 0..RUNS {
                        let t = Instant::now();
                        let mut rows =
                            stmt.query(flynn_store::rusqlite::params_from_iter(params))?;
                        while rows.next()?.is_some() {}
                        times.push(t.elapsed());
                    }
                    out.push((*name, median(times)));
                }
                Ok(out)
            })
            .await?;
        println!("{label} window per query (median): {per_query:.2?}");
    }
    let sizes = store
        .read(|c| {
            let n = |t: &str| {
                c.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| {
                    r.get::<_, i64>(0)
                })
            };
            Ok((n("message_terms")?, n("session_days")?, n("term_days")?))
        })
        .await?;
    println!(
        "rows: message_terms {}, session_days {}, term_days {}",
        sizes.0, sizes.1, sizes.2
    );

    // Analytics while appends run: the reader thread keeps the writer free.
    let writer = store.clone();
    let t = Instant::now();
    let appends = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        for i in 0..200i64 {
            let t = Instant::now();
            writer
                .append_message(NewMessage {
                    session_id: "ws:during".to_owned(),
                    role: Role::User,
                    content: "append during analytics".to_owned(),
                    attachments: None,
                    created_at_ms: end + i,
                })
                .await?;
            worst = worst.max(t.elapsed());
        }
        Ok::<_, StoreError>(worst)
    });
    let mut analytics_runs = 0;
    while !appends.is_finished() {
        store.session_analytics(START, 10).await?;
        analytics_runs += 1;
    }
    let worst = appends.await.map_err(|_| StoreError::Closed)??;
    println!(
        "200 appends beside {analytics_runs} back-to-back 30-day analytics: {:.2?}, slowest append {:.2?}",
        t.elapsed(),
        worst
    );

    append_throughput(&store, &mut rng, end).await?;
    store.close().await;
    Ok(())
}

/// Write throughput after the fill: sequential appends, eight concurrent callers, one batch.
async fn append_throughput(store: &Store, rng: &mut Rng, end: i64) -> Result<(), StoreError> {
    // Sequential appends: each one is its own transaction with an fsync before it returns.
    let n = 500u32;
    let t = Instant::now();
    for i in 0..n {
        store
            .append_message(NewMessage {
                session_id: session_id(u64::from(i) % SESSIONS),
                role: Role::User,
                content: sentence(rng),
                attachments: None,
                created_at_ms: end + i64::from(i),
            })
            .await?;
    }
    let seq = t.elapsed();
    println!(
        "append_message sequential: {n} in {:.2?} = {:.0} msg/s ({:.2?} each, fsync per commit)",
        seq,
        f64::from(n) / seq.as_secs_f64(),
        seq / n
    );

    // Concurrent callers: the worker serialises them; throughput is bounded by commits.
    let t = Instant::now();
    let tasks: Vec<_> = (0..8u32)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..n / 8 {
                    store
                        .append_message(NewMessage {
                            session_id: format!("ws:worker{w}"),
                            role: Role::User,
                            content: "concurrent kubernetes deploy check".to_owned(),
                            attachments: None,
                            created_at_ms: end + i64::from(i),
                        })
                        .await?;
                }
                Ok::<_, StoreError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|_| StoreError::Closed)??;
    }
    let conc = t.elapsed();
    println!(
        "append_message 8 concurrent callers: {n} in {:.2?} = {:.0} msg/s",
        conc,
        f64::from(n) / conc.as_secs_f64()
    );

    let batch: Vec<NewMessage> = (0..1_000)
        .map(|i| NewMessage {
            session_id: session_id(i % SESSIONS),
            role: Role::User,
            content: sentence(rng),
            attachments: None,
            created_at_ms: end + i as i64,
        })
        .collect();
    let t = Instant::now();
    store.append_messages(batch).await?;
    let b = t.elapsed();
    println!(
        "append_messages one batch of 1000: {:.2?} = {:.0} msg/s",
        b,
        1000.0 / b.as_secs_f64()
    );
    Ok(())
}

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start tokio: {err}");
            std::process::exit(1);
        }
    };
    if let Err(err) = rt.block_on(run()) {
        eprintln!("benchmark failed: {err}");
        std::process::exit(1);
    }
}
