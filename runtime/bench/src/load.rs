//! The load generator: `connections` WebSockets, each keeping `in_flight` `system.info`
//! requests outstanding (a new one is sent as each reply arrives), for a warm-up and then a
//! measured window bounded by time or by a request count. Replies read in one wakeup are
//! answered with one flush, like the servers do, so the client is not the bottleneck.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::BenchError;
use crate::client::{self, REPLY_TIMEOUT, Reply, Ws};

/// At most this many latency samples are kept in total (bounded memory); counting goes on.
const MAX_SAMPLES: usize = 16_000_000;

/// When the measured window ends.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long.
    After(Duration),
    /// After this many measured replies (across all connections).
    Requests(u64),
}

/// The shape of one run.
#[derive(Debug, Clone, Copy)]
pub struct LoadSpec {
    pub connections: usize,
    pub in_flight: usize,
    /// Replies during the warm-up are not counted.
    pub warmup: Duration,
    pub stop: Stop,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub spec: LoadSpec,
    /// Successful replies inside the measured window.
    pub requests: u64,
    /// Error replies (anywhere in the run).
    pub errors: u64,
    /// The measured window's length.
    pub elapsed: Duration,
    /// CPU time each watched process spent inside the measured window (time-bounded runs
    /// only), in the order the pids were given, followed by the whole machine's busy time.
    pub cpu: Vec<Duration>,
    /// Sorted round-trip times of measured replies, in nanoseconds (saturating at ~4.3 s).
    latencies_ns: Vec<u32>,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`th percentile (0..=100) of round-trip time.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies_ns.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p / 100.0 * (self.latencies_ns.len() - 1) as f64).round() as usize;
        let index = rank.min(self.latencies_ns.len() - 1);
        Duration::from_nanos(u64::from(self.latencies_ns[index]))
    }
}

/// The clock every connection reads its phase from.
struct Phase {
    measure_from: Instant,
    measure_until: Option<Instant>,
    /// Measured replies still wanted (`Stop::Requests`).
    remaining: AtomicI64,
    stop: AtomicBool,
}

impl Phase {
    fn measuring(&self, now: Instant) -> bool {
        now >= self.measure_from && self.measure_until.is_none_or(|until| now < until)
    }

    /// Whether new requests should still be sent.
    fn sending(&self, now: Instant) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.measure_until.is_none_or(|until| now < until)
    }

    /// Counts one measured reply; stops everyone when the wanted count is reached.
    fn counted(&self) {
        if self.measure_until.is_none() && self.remaining.fetch_sub(1, Ordering::AcqRel) <= 1 {
            self.stop.store(true, Ordering::Relaxed);
        }
    }
}

struct ConnectionStats {
    requests: u64,
    errors: u64,
    latencies_ns: Vec<u32>,
}

/// Runs the load against `ws://addr/`.
pub async fn run(addr: SocketAddr, spec: LoadSpec) -> Result<LoadReport, BenchError> {
    run_watched(addr, spec, &[]).await
}

/// Runs the load and also reports the CPU time the processes `watch` (and the whole machine)
/// used inside the measured window (read from `/proc` at its start and end; time-bounded runs
/// only).
pub async fn run_watched(
    addr: SocketAddr,
    spec: LoadSpec,
    watch: &[u32],
) -> Result<LoadReport, BenchError> {
    if spec.connections == 0 || spec.in_flight == 0 {
        return Err(BenchError::Settings(
            "connections and in-flight requests must both be at least 1".into(),
        ));
    }
    let mut sockets = Vec::with_capacity(spec.connections);
    for _ in 0..spec.connections {
        sockets.push(client::connect(addr).await?);
    }
    let (phase, deadline) = phase_of(&spec);
    let (measure_from, measure_until) = (phase.measure_from, phase.measure_until);
    let watcher = measure_until.map(|until| spawn_cpu_watcher(measure_from, until, watch));
    let sample_cap = MAX_SAMPLES / spec.connections;
    let mut tasks = JoinSet::new();
    for ws in sockets {
        tasks.spawn(drive(ws, addr, spec.in_flight, phase.clone(), sample_cap));
    }
    let mut totals = join_all(&mut tasks, deadline, &phase, addr).await?;
    let cpu = match watcher {
        Some(watcher) => watcher
            .await
            .map_err(|e| BenchError::Child(format!("the CPU watcher failed: {e}")))??,
        None => Vec::new(),
    };
    let elapsed = match measure_until {
        Some(until) => until - measure_from,
        // The last counted reply ended the window; everything after is only draining.
        None => Instant::now().saturating_duration_since(measure_from),
    };
    totals.latencies_ns.sort_unstable();
    Ok(LoadReport {
        spec,
        requests: totals.requests,
        errors: totals.errors,
        elapsed,
        cpu,
        latencies_ns: totals.latencies_ns,
    })
}

/// The measured window of a run starting now, and the time by which it must have ended.
fn phase_of(spec: &LoadSpec) -> (Arc<Phase>, Instant) {
    let measure_from = Instant::now() + spec.warmup;
    let (measure_until, remaining, deadline) = match spec.stop {
        Stop::After(d) => (Some(measure_from + d), 0, measure_from + d + REPLY_TIMEOUT),
        Stop::Requests(n) => (
            None,
            i64::try_from(n).unwrap_or(i64::MAX),
            measure_from + Duration::from_secs(120),
        ),
    };
    let phase = Arc::new(Phase {
        measure_from,
        measure_until,
        remaining: AtomicI64::new(remaining),
        stop: AtomicBool::new(false),
    });
    (phase, deadline)
}

/// The CPU time each of `pids` (and the whole machine) uses between `from` and `until`.
pub(crate) fn spawn_cpu_watcher(
    from: Instant,
    until: Instant,
    pids: &[u32],
) -> tokio::task::JoinHandle<Result<Vec<Duration>, BenchError>> {
    let pids = pids.to_vec();
    tokio::spawn(async move {
        tokio::time::sleep_until(from.into()).await;
        let before = cpu_times(&pids)?;
        tokio::time::sleep_until(until.into()).await;
        let after = cpu_times(&pids)?;
        Ok::<_, BenchError>(
            after
                .iter()
                .zip(&before)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect::<Vec<_>>(),
        )
    })
}

/// Waits for every connection's loop and adds up what they counted; the first failure stops
/// the others and is the result.
async fn join_all(
    tasks: &mut JoinSet<Result<ConnectionStats, BenchError>>,
    deadline: Instant,
    phase: &Phase,
    addr: SocketAddr,
) -> Result<ConnectionStats, BenchError> {
    let mut totals = ConnectionStats {
        requests: 0,
        errors: 0,
        latencies_ns: Vec::new(),
    };
    let mut failure = None;
    loop {
        let joined = tokio::time::timeout_at(deadline.into(), tasks.join_next())
            .await
            .map_err(|_| BenchError::Timeout(format!("the load run against {addr} overran")))?;
        let Some(joined) = joined else { break };
        match joined {
            Ok(Ok(stats)) => {
                totals.requests += stats.requests;
                totals.errors += stats.errors;
                totals.latencies_ns.extend(stats.latencies_ns);
            }
            Ok(Err(e)) => {
                phase.stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(e);
            }
            Err(e) => {
                phase.stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(BenchError::Child(format!("a load task failed: {e}")));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(totals),
    }
}

pub(crate) fn cpu_times(pids: &[u32]) -> Result<Vec<Duration>, BenchError> {
    let mut times = pids
        .iter()
        .map(|pid| crate::procfs::cpu_time(*pid))
        .collect::<Result<Vec<_>, _>>()?;
    times.push(crate::procfs::machine_busy()?);
    Ok(times)
}

/// One connection's loop: keep `in_flight` requests outstanding until told to stop, then
/// collect the outstanding replies and close.
async fn drive(
    mut ws: Ws,
    addr: SocketAddr,
    in_flight: usize,
    phase: Arc<Phase>,
    sample_cap: usize,
) -> Result<ConnectionStats, BenchError> {
    let mut ledger = Ledger {
        outstanding: Vec::with_capacity(in_flight),
        next_id: 1,
        stats: ConnectionStats {
            requests: 0,
            errors: 0,
            latencies_ns: Vec::with_capacity(sample_cap.min(1 << 20)),
        },
        sample_cap,
    };
    ledger.send(&mut ws, addr, in_flight).await?;
    let mut received: Vec<Message> = Vec::with_capacity(in_flight);
    while !ledger.outstanding.is_empty() {
        receive_batch(&mut ws, addr, &mut received).await?;
        // One clock read per wakeup: every reply in the batch arrived by now.
        let now = Instant::now();
        let measuring = phase.measuring(now);
        let mut to_send = 0;
        for message in received.drain(..) {
            let Message::Text(text) = message else {
                continue;
            };
            ledger.settle(text.as_str(), addr, now, measuring, &phase)?;
            to_send += 1;
        }
        if to_send > 0 && phase.sending(now) {
            ledger.send(&mut ws, addr, to_send).await?;
        }
    }
    close(ws).await;
    Ok(ledger.stats)
}

/// Waits (bounded) for the next message, then takes the ones already there, up to 64.
async fn receive_batch(
    ws: &mut Ws,
    addr: SocketAddr,
    received: &mut Vec<Message>,
) -> Result<(), BenchError> {
    let first = tokio::time::timeout(REPLY_TIMEOUT, ws.next())
        .await
        .map_err(|_| BenchError::Timeout(format!("a reply from {addr}")))?;
    received.push(next_message(first, addr)?);
    while received.len() < 64 {
        match ws.next().now_or_never() {
            Some(message) => received.push(next_message(message, addr)?),
            None => break,
        }
    }
    Ok(())
}

/// One connection's outstanding requests (id, when sent) and what its replies counted.
struct Ledger {
    outstanding: Vec<(u64, Instant)>,
    next_id: u64,
    stats: ConnectionStats,
    sample_cap: usize,
}

impl Ledger {
    /// Sends `count` more requests in one flush.
    async fn send(
        &mut self,
        ws: &mut Ws,
        addr: SocketAddr,
        count: usize,
    ) -> Result<(), BenchError> {
        let sent_at = Instant::now();
        for _ in 0..count {
            ws.feed(client::request(self.next_id))
                .await
                .map_err(|e| BenchError::ws(addr, e))?;
            self.outstanding.push((self.next_id, sent_at));
            self.next_id += 1;
        }
        ws.flush().await.map_err(|e| BenchError::ws(addr, e))
    }

    /// Matches one reply (arrived by `now`) to its request and counts it.
    fn settle(
        &mut self,
        text: &str,
        addr: SocketAddr,
        now: Instant,
        measuring: bool,
        phase: &Phase,
    ) -> Result<(), BenchError> {
        let (id, ok) = match client::classify(text) {
            Reply::Result(id) => (id, true),
            Reply::Error(id) => (id, false),
            Reply::Unknown => {
                return Err(BenchError::Reply {
                    addr,
                    detail: format!("a frame without an integer id: {text}"),
                });
            }
        };
        let Some(index) = self.outstanding.iter().position(|(i, _)| *i == id) else {
            return Err(BenchError::Reply {
                addr,
                detail: format!("a reply to id {id}, which is not outstanding"),
            });
        };
        let (_, sent) = self.outstanding.swap_remove(index);
        if !ok {
            self.stats.errors += 1;
        } else if measuring {
            self.stats.requests += 1;
            if self.stats.latencies_ns.len() < self.sample_cap {
                let ns = now.saturating_duration_since(sent).as_nanos();
                self.stats
                    .latencies_ns
                    .push(u32::try_from(ns).unwrap_or(u32::MAX));
            }
            phase.counted();
        }
        Ok(())
    }
}

fn next_message(
    message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    addr: SocketAddr,
) -> Result<Message, BenchError> {
    match message {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(BenchError::ws(addr, e)),
        None => Err(BenchError::Reply {
            addr,
            detail: "the server closed the connection during the run".into(),
        }),
    }
}

/// Closes politely and waits (bounded) for the server's close reply.
pub(crate) async fn close(mut ws: Ws) {
    let _ = ws.close(None).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
