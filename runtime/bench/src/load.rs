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
    let start = Instant::now();
    let measure_from = start + spec.warmup;
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
    let watcher = measure_until.map(|until| {
        let pids = watch.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
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
    });
    let sample_cap = MAX_SAMPLES / spec.connections;
    let mut tasks = JoinSet::new();
    for ws in sockets {
        tasks.spawn(drive(ws, addr, spec.in_flight, phase.clone(), sample_cap));
    }
    let mut requests = 0;
    let mut errors = 0;
    let mut latencies_ns = Vec::new();
    let mut failure = None;
    loop {
        let joined = tokio::time::timeout_at(deadline.into(), tasks.join_next())
            .await
            .map_err(|_| BenchError::Timeout(format!("the load run against {addr} overran")))?;
        let Some(joined) = joined else { break };
        match joined {
            Ok(Ok(stats)) => {
                requests += stats.requests;
                errors += stats.errors;
                latencies_ns.extend(stats.latencies_ns);
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
    if let Some(e) = failure {
        return Err(e);
    }
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
    latencies_ns.sort_unstable();
    Ok(LoadReport {
        spec,
        requests,
        errors,
        elapsed,
        cpu,
        latencies_ns,
    })
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
    let mut stats = ConnectionStats {
        requests: 0,
        errors: 0,
        latencies_ns: Vec::with_capacity(sample_cap.min(1 << 20)),
    };
    let mut outstanding: Vec<(u64, Instant)> = Vec::with_capacity(in_flight);
    let mut next_id: u64 = 1;
    let sent_at = Instant::now();
    for _ in 0..in_flight {
        ws.feed(client::request(next_id))
            .await
            .map_err(|e| BenchError::ws(addr, e))?;
        outstanding.push((next_id, sent_at));
        next_id += 1;
    }
    ws.flush().await.map_err(|e| BenchError::ws(addr, e))?;

    let mut received: Vec<Message> = Vec::with_capacity(in_flight);
    while !outstanding.is_empty() {
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
        // One clock read per wakeup: every reply in the batch arrived by now.
        let now = Instant::now();
        let measuring = phase.measuring(now);
        let mut to_send = 0;
        for message in received.drain(..) {
            let Message::Text(text) = message else {
                continue;
            };
            let (id, ok) = match client::classify(text.as_str()) {
                Reply::Result(id) => (id, true),
                Reply::Error(id) => (id, false),
                Reply::Unknown => {
                    return Err(BenchError::Reply {
                        addr,
                        detail: format!("a frame without an integer id: {text}"),
                    });
                }
            };
            let Some(index) = outstanding.iter().position(|(i, _)| *i == id) else {
                return Err(BenchError::Reply {
                    addr,
                    detail: format!("a reply to id {id}, which is not outstanding"),
                });
            };
            let (_, sent) = outstanding.swap_remove(index);
            if !ok {
                stats.errors += 1;
            } else if measuring {
                stats.requests += 1;
                if stats.latencies_ns.len() < sample_cap {
                    let ns = now.saturating_duration_since(sent).as_nanos();
                    stats
                        .latencies_ns
                        .push(u32::try_from(ns).unwrap_or(u32::MAX));
                }
                phase.counted();
            }
            to_send += 1;
        }
        if to_send > 0 && phase.sending(now) {
            let sent_at = Instant::now();
            for _ in 0..to_send {
                ws.feed(client::request(next_id))
                    .await
                    .map_err(|e| BenchError::ws(addr, e))?;
                outstanding.push((next_id, sent_at));
                next_id += 1;
            }
            ws.flush().await.map_err(|e| BenchError::ws(addr, e))?;
        }
    }
    close(ws).await;
    Ok(stats)
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
