//! The agent-turn load generator: `sessions` WebSockets, each keeping one `agent.send` turn in
//! flight (a new one is sent as each reply arrives) for a warm-up and then a measured window.
//! Per turn it records the round trip (send to reply) and the time to the turn's first event;
//! it counts the events (`content`, `done`, ...) that arrive, so the same generator measures
//! short turns (`Hello, Flynn!`) and long streamed answers (`[[long:3000]]`).
//!
//! Each connection sends to its own session: `sessionId` = `<prefix><index>` (e.g.
//! `bench:s7`), so a run can target sessions that were filled with history beforehand (see
//! [`crate::history`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;

use crate::BenchError;
use crate::client::{self, REPLY_TIMEOUT, Ws};

/// Latency samples kept per connection at most (bounded memory; counting goes on).
const MAX_SAMPLES_PER_CONNECTION: usize = 1 << 18;

/// The shape of one turn run.
#[derive(Debug, Clone)]
pub struct TurnSpec {
    /// Connections, one session each, one turn in flight each.
    pub sessions: usize,
    /// The message every turn sends.
    pub message: String,
    /// Session ids are this prefix followed by the connection's index.
    pub session_prefix: String,
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Stop after this many measured turns in total instead (tests), when set.
    pub max_turns: Option<u64>,
}

/// What one turn run measured.
#[derive(Debug, Clone)]
pub struct TurnReport {
    /// Turns whose reply arrived inside the measured window.
    pub turns: u64,
    /// Events (of any kind) that arrived inside the measured window.
    pub events: u64,
    /// Error replies (anywhere in the run).
    pub errors: u64,
    /// The first error reply seen, to say what went wrong.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// CPU time of each watched process inside the window, then the machine's busy time.
    pub cpu: Vec<Duration>,
    /// Sorted round trips of measured turns, ns.
    latencies_ns: Vec<u64>,
    /// Sorted send-to-first-event times of measured turns, ns.
    first_event_ns: Vec<u64>,
}

fn percentile(sorted: &[u64], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    Duration::from_nanos(sorted[rank.min(sorted.len() - 1)])
}

impl TurnReport {
    pub fn turns_per_second(&self) -> f64 {
        self.turns as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The `p`th percentile of the turn round trip.
    pub fn latency(&self, p: f64) -> Duration {
        percentile(&self.latencies_ns, p)
    }

    /// The `p`th percentile of the time to the first event.
    pub fn first_event(&self, p: f64) -> Duration {
        percentile(&self.first_event_ns, p)
    }
}

/// What a frame from the gateway is, as far as the generator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Event(u64),
    Result(u64),
    Error(u64),
    Unknown,
}

/// Reads the kind and id of a frame. The gateway writes `{"id":N,"event":…` and
/// `{"id":N,"result":…` in that order, so the fast path is a prefix scan.
pub fn classify(text: &str) -> Frame {
    if let Some(rest) = text.strip_prefix(r#"{"id":"#) {
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        if end > 0
            && let Ok(id) = rest[..end].parse()
        {
            let after = &rest[end..];
            if after.starts_with(r#","event":"#) {
                return Frame::Event(id);
            }
            if after.starts_with(r#","result":"#) {
                return Frame::Result(id);
            }
        }
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return Frame::Unknown;
    };
    match value.get("id").and_then(Value::as_u64) {
        Some(id) if value.get("event").is_some() => Frame::Event(id),
        Some(id) if value.get("result").is_some() => Frame::Result(id),
        Some(id) => Frame::Error(id),
        None => Frame::Unknown,
    }
}

/// The text of turn `id` to `session_id`.
pub fn request(id: u64, session_id: &str, message: &str) -> Message {
    let frame = serde_json::json!({
        "id": id,
        "method": "agent.send",
        "params": { "sessionId": session_id, "message": message },
    });
    Message::text(frame.to_string())
}

struct Window {
    from: Instant,
    until: Instant,
    stop: AtomicBool,
}

#[derive(Default)]
struct Stats {
    turns: u64,
    events: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_ns: Vec<u64>,
    first_event_ns: Vec<u64>,
}

/// Runs the turn load against `ws://addr/`, reading the CPU time of `watch` (and the machine)
/// at the window's start and end.
pub async fn run(
    addr: SocketAddr,
    spec: &TurnSpec,
    watch: &[u32],
) -> Result<TurnReport, BenchError> {
    if spec.sessions == 0 {
        return Err(BenchError::Settings("sessions must be at least 1".into()));
    }
    let mut sockets = Vec::with_capacity(spec.sessions);
    for _ in 0..spec.sessions {
        sockets.push(client::connect(addr).await?);
    }
    let start = Instant::now();
    let window = Arc::new(Window {
        from: start + spec.warmup,
        until: start + spec.warmup + spec.duration,
        stop: AtomicBool::new(false),
    });
    let watcher = crate::load::spawn_cpu_watcher(window.from, window.until, watch);
    let mut tasks = JoinSet::new();
    for (index, ws) in sockets.into_iter().enumerate() {
        let session = format!("{}{index}", spec.session_prefix);
        let max = spec.max_turns.map(|n| n.div_ceil(spec.sessions as u64));
        tasks.spawn(drive(
            ws,
            addr,
            session,
            spec.message.clone(),
            window.clone(),
            max,
        ));
    }
    let mut total = match join_all(&mut tasks, &window, addr).await {
        Ok(total) => total,
        Err(e) => {
            watcher.abort();
            return Err(e);
        }
    };
    let (cpu, elapsed) = if spec.max_turns.is_some() {
        watcher.abort();
        (Vec::new(), start.elapsed())
    } else {
        let cpu = watcher
            .await
            .map_err(|e| BenchError::Child(format!("the CPU watcher failed: {e}")))??;
        (cpu, spec.duration)
    };
    total.latencies_ns.sort_unstable();
    total.first_event_ns.sort_unstable();
    Ok(TurnReport {
        turns: total.turns,
        events: total.events,
        errors: total.errors,
        first_error: total.first_error,
        elapsed,
        cpu,
        latencies_ns: total.latencies_ns,
        first_event_ns: total.first_event_ns,
    })
}

/// Waits for every session's loop (until the window's end plus the reply timeout) and adds up
/// what they counted; the first failure stops the others and is the result.
async fn join_all(
    tasks: &mut JoinSet<Result<Stats, BenchError>>,
    window: &Window,
    addr: SocketAddr,
) -> Result<Stats, BenchError> {
    let deadline = window.until + REPLY_TIMEOUT;
    let mut total = Stats::default();
    let mut failure = None;
    loop {
        let joined = tokio::time::timeout_at(deadline.into(), tasks.join_next())
            .await
            .map_err(|_| BenchError::Timeout(format!("the turn run against {addr} overran")))?;
        let Some(joined) = joined else { break };
        match joined {
            Ok(Ok(stats)) => {
                total.turns += stats.turns;
                total.events += stats.events;
                total.errors += stats.errors;
                total.first_error = total.first_error.or(stats.first_error);
                total.latencies_ns.extend(stats.latencies_ns);
                total.first_event_ns.extend(stats.first_event_ns);
            }
            Ok(Err(e)) => {
                window.stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(e);
            }
            Err(e) => {
                window.stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(BenchError::Child(format!("a turn task failed: {e}")));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// One session's loop: a turn, its events and its reply, then the next turn.
async fn drive(
    mut ws: Ws,
    addr: SocketAddr,
    session: String,
    message: String,
    window: Arc<Window>,
    max_turns: Option<u64>,
) -> Result<Stats, BenchError> {
    let mut stats = Stats::default();
    let mut id: u64 = 0;
    let counting = max_turns.is_some();
    loop {
        let now = Instant::now();
        let done = match max_turns {
            Some(max) => stats.turns + stats.errors >= max,
            None => now >= window.until,
        };
        if done || window.stop.load(Ordering::Relaxed) {
            break;
        }
        id += 1;
        let sent = Instant::now();
        ws.send(request(id, &session, &message))
            .await
            .map_err(|e| BenchError::ws(addr, e))?;
        let mut first_event: Option<Instant> = None;
        let mut events = 0u64;
        loop {
            let frame = tokio::time::timeout(REPLY_TIMEOUT, ws.next())
                .await
                .map_err(|_| BenchError::Timeout(format!("a turn reply from {addr}")))?;
            let text = match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(BenchError::ws(addr, e)),
                None => {
                    return Err(BenchError::Reply {
                        addr,
                        detail: "the gateway closed the connection during a turn".into(),
                    });
                }
            };
            match classify(text.as_str()) {
                Frame::Event(i) if i == id => {
                    events += 1;
                    first_event.get_or_insert_with(Instant::now);
                }
                Frame::Result(i) if i == id => {
                    let now = Instant::now();
                    if counting || (sent >= window.from && now < window.until) {
                        stats.turns += 1;
                        stats.events += events;
                        if stats.latencies_ns.len() < MAX_SAMPLES_PER_CONNECTION {
                            stats.latencies_ns.push(nanos(now - sent));
                            if let Some(first) = first_event {
                                stats.first_event_ns.push(nanos(first - sent));
                            }
                        }
                    }
                    break;
                }
                Frame::Error(i) if i == id => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert_with(|| text.to_string());
                    break;
                }
                _ => {
                    return Err(BenchError::Reply {
                        addr,
                        detail: format!("a frame that is not of turn {id}: {text}"),
                    });
                }
            }
        }
    }
    crate::load::close(ws).await;
    Ok(stats)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_frames() {
        assert_eq!(
            classify(r#"{"id":3,"event":"content","data":{},"seq":1}"#),
            Frame::Event(3)
        );
        assert_eq!(classify(r#"{"id":3,"result":{}}"#), Frame::Result(3));
        assert_eq!(
            classify(r#"{"id":4,"error":{"code":-3,"message":"x"}}"#),
            Frame::Error(4)
        );
        assert_eq!(classify("nope"), Frame::Unknown);
    }
}
