//! The agent-turn scenarios: `turns` (short turns on the embedded model: turns per second,
//! server CPU per turn, latency, time to first event, and the cost of a session holding
//! thousands of messages against a fresh one) and `stream` (long streamed answers: server CPU
//! per `content` event). The gateway runs in its own pinned process; figures are the server's
//! CPU time per unit, which other load on the machine barely moves.

use std::time::Duration;

use crate::BenchError;
use crate::child::{GatewaySetup, ServerKind, ServerProcess};
use crate::history::HistorySpec;
use crate::pin::Pinning;
use crate::sse_server::SseServer;
use crate::turns::{self, TurnReport, TurnSpec};

/// Target: server CPU per short turn, in microseconds.
pub const TURN_CPU_TARGET_US: f64 = 100.0;
/// Target: server CPU per streamed event, in microseconds.
pub const EVENT_CPU_TARGET_US: f64 = 2.0;
/// Target: a turn in a long session costs at most this much more than in a fresh one.
pub const HISTORY_RATIO_TARGET: f64 = 1.2;

/// The short turn's message and the long answer's.
pub const SHORT_MESSAGE: &str = "Hello, Flynn!";
pub const LONG_MESSAGE: &str = "[[long:3000]]";
/// The words of the long answer (the model server's answers have as many).
const LONG_WORDS: usize = 3000;

/// Settings of the agent scenarios.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// Session counts to run (one connection and one turn in flight each).
    pub sessions: Vec<usize>,
    pub warmup: Duration,
    pub duration: Duration,
    pub rounds: usize,
    /// Messages in each pre-filled session (0: no history comparison).
    pub history: usize,
    /// `stream` only: answers come from [`SseServer`] over HTTP, not the embedded model.
    pub model_server: bool,
    pub pinning: Option<Pinning>,
}

/// One measured run.
pub struct AgentRow {
    pub label: String,
    pub sessions: usize,
    pub report: TurnReport,
    pub server_cpu: Duration,
    pub load_cpu: Duration,
    pub other_cpu: Duration,
}

impl AgentRow {
    fn per(&self, units: u64) -> f64 {
        if units == 0 {
            return 0.0;
        }
        self.server_cpu.as_secs_f64() * 1e6 / units as f64
    }

    /// Server CPU per turn, us.
    pub fn us_per_turn(&self) -> f64 {
        self.per(self.report.turns)
    }

    /// Server CPU per event, us.
    pub fn us_per_event(&self) -> f64 {
        self.per(self.report.events)
    }
}

async fn measure(
    server: &ServerProcess,
    label: &str,
    spec: &TurnSpec,
) -> Result<AgentRow, BenchError> {
    tracing::info!(label, sessions = spec.sessions, "turn run");
    let report = turns::run(server.addr, spec, &[server.pid, std::process::id()]).await?;
    if report.errors > 0 {
        return Err(BenchError::Reply {
            addr: server.addr,
            detail: format!(
                "{} turns failed; the first: {}",
                report.errors,
                report.first_error.clone().unwrap_or_default()
            ),
        });
    }
    let server_cpu = report.cpu.first().copied().unwrap_or_default();
    let load_cpu = report.cpu.get(1).copied().unwrap_or_default();
    let machine = report.cpu.get(2).copied().unwrap_or_default();
    Ok(AgentRow {
        label: label.to_owned(),
        sessions: spec.sessions,
        other_cpu: machine.saturating_sub(server_cpu + load_cpu),
        report,
        server_cpu,
        load_cpu,
    })
}

fn spec(settings: &AgentSettings, sessions: usize, message: &str, prefix: &str) -> TurnSpec {
    TurnSpec {
        sessions,
        message: message.to_owned(),
        session_prefix: prefix.to_owned(),
        warmup: settings.warmup,
        duration: settings.duration,
        max_turns: None,
    }
}

/// Short turns: every session count fresh, and (with `history`) the largest count again on
/// sessions that already hold `history` messages, alternating rounds.
pub async fn turns(settings: &AgentSettings) -> Result<Vec<AgentRow>, BenchError> {
    let most = settings.sessions.iter().copied().max().unwrap_or(1);
    let setup = GatewaySetup {
        history: (settings.history > 0).then(|| HistorySpec {
            prefix: "bench:h".into(),
            sessions: most,
            messages: settings.history,
        }),
        max_connections: None,
        model_url: None,
    };
    if settings.history > 0 {
        tracing::info!(
            sessions = most,
            messages = settings.history,
            "filling sessions with history before the gateway starts"
        );
    }
    let server = ServerProcess::spawn(
        ServerKind::Gateway,
        settings.pinning.map(|p| p.server_core),
        Default::default(),
        &setup,
    )
    .await?;
    let mut rows = Vec::new();
    let outcome = async {
        for round in 0..settings.rounds.max(1) {
            for &sessions in &settings.sessions {
                // Fresh sessions each round: they start empty.
                let prefix = format!("bench:r{round}n{sessions}s");
                rows.push(
                    measure(
                        &server,
                        "fresh",
                        &spec(settings, sessions, SHORT_MESSAGE, &prefix),
                    )
                    .await?,
                );
            }
            if settings.history > 0 {
                let label = format!("{} msgs", settings.history);
                rows.push(
                    measure(
                        &server,
                        &label,
                        &spec(settings, most, SHORT_MESSAGE, "bench:h"),
                    )
                    .await?,
                );
            }
        }
        Ok::<(), BenchError>(())
    }
    .await;
    if let Err(e) = server.stop().await {
        tracing::warn!(error = %e, "server shutdown");
    }
    outcome.map(|()| rows)
}

/// Long streamed answers on every session count.
pub async fn stream(settings: &AgentSettings) -> Result<Vec<AgentRow>, BenchError> {
    // Kept until the end: dropping it stops the model server.
    let model_server = match settings.model_server {
        true => Some(SseServer::start(LONG_WORDS).await?),
        false => None,
    };
    let setup = GatewaySetup {
        model_url: model_server.as_ref().map(SseServer::base_url),
        ..GatewaySetup::default()
    };
    let label = if settings.model_server {
        "long/sse"
    } else {
        "long"
    };
    let server = ServerProcess::spawn(
        ServerKind::Gateway,
        settings.pinning.map(|p| p.server_core),
        Default::default(),
        &setup,
    )
    .await?;
    let mut rows = Vec::new();
    let outcome = async {
        for round in 0..settings.rounds.max(1) {
            for &sessions in &settings.sessions {
                let prefix = format!("bench:stream{round}n{sessions}s");
                rows.push(
                    measure(
                        &server,
                        label,
                        &spec(settings, sessions, LONG_MESSAGE, &prefix),
                    )
                    .await?,
                );
            }
        }
        Ok::<(), BenchError>(())
    }
    .await;
    if let Err(e) = server.stop().await {
        tracing::warn!(error = %e, "server shutdown");
    }
    outcome.map(|()| rows)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn print_rows(rows: &[AgentRow]) {
    println!(
        "{:>8}  {:<12} {:>9} {:>10} {:>8} {:>8} {:>9} {:>10} {:>11} {:>12} {:>9} {:>9}",
        "sessions",
        "history",
        "turns/s",
        "events/s",
        "p50 us",
        "p99 us",
        "1st ev us",
        "server CPU",
        "us/turn",
        "us/event",
        "load CPU",
        "other CPU"
    );
    for row in rows {
        let secs = row.report.elapsed.as_secs_f64().max(f64::EPSILON);
        println!(
            "{:>8}  {:<12} {:>9.0} {:>10.0} {:>8} {:>8} {:>9} {:>9.0}% {:>11.1} {:>12.2} {:>8.0}% {:>8.0}%",
            row.sessions,
            row.label,
            row.report.turns_per_second(),
            row.report.events_per_second(),
            us(row.report.latency(50.0)),
            us(row.report.latency(99.0)),
            us(row.report.first_event(50.0)),
            row.server_cpu.as_secs_f64() / secs * 100.0,
            row.us_per_turn(),
            row.us_per_event(),
            row.load_cpu.as_secs_f64() / secs * 100.0,
            row.other_cpu.as_secs_f64() / secs * 100.0,
        );
    }
}

/// Prints the turn runs, the medians and the targets.
pub fn print_turns(settings: &AgentSettings, rows: &[AgentRow]) {
    println!();
    println!(
        "agent turns ({SHORT_MESSAGE:?}, embedded model): one turn in flight per session, {:?} measured after {:?} warm-up, {} round(s)",
        settings.duration,
        settings.warmup,
        settings.rounds.max(1)
    );
    print_rows(rows);
    let most = settings.sessions.iter().copied().max().unwrap_or(1);
    let pick = |label: &str, sessions: usize, f: fn(&AgentRow) -> f64| {
        median(
            rows.iter()
                .filter(|r| r.label == label && r.sessions == sessions)
                .map(f)
                .collect(),
        )
    };
    for &sessions in &settings.sessions {
        let cpu = pick("fresh", sessions, AgentRow::us_per_turn);
        let rate = pick("fresh", sessions, |r| r.report.turns_per_second());
        let p50 = pick("fresh", sessions, |r| {
            r.report.latency(50.0).as_secs_f64() * 1e6
        });
        println!(
            "{sessions:>8}  median: {rate:.0} turns/s, {cpu:.1} us of server CPU per turn (target <= {TURN_CPU_TARGET_US}: {}), p50 {p50:.0} us",
            verdict(cpu <= TURN_CPU_TARGET_US)
        );
    }
    if settings.history > 0 {
        let label = format!("{} msgs", settings.history);
        let fresh = pick("fresh", most, AgentRow::us_per_turn);
        let long = pick(&label, most, AgentRow::us_per_turn);
        let ratio = long / fresh.max(f64::EPSILON);
        println!(
            "{most:>8}  sessions holding {} messages / fresh sessions, server CPU per turn: {long:.1} / {fresh:.1} us = {ratio:.2}x (target <= {HISTORY_RATIO_TARGET}x: {})",
            settings.history,
            verdict(ratio <= HISTORY_RATIO_TARGET)
        );
    }
}

/// Prints the stream runs, the medians and the target.
pub fn print_stream(settings: &AgentSettings, rows: &[AgentRow]) {
    println!();
    let model = if settings.model_server {
        format!(
            "an OpenAI-compatible SSE server in the load process, {} events per TCP write",
            crate::sse_server::EVENTS_PER_WRITE
        )
    } else {
        "embedded model".to_owned()
    };
    println!(
        "streamed answers ({LONG_MESSAGE:?}, {model}): one turn in flight per session, {:?} measured after {:?} warm-up, {} round(s)",
        settings.duration,
        settings.warmup,
        settings.rounds.max(1)
    );
    print_rows(rows);
    for &sessions in &settings.sessions {
        let cpu = median(
            rows.iter()
                .filter(|r| r.sessions == sessions)
                .map(AgentRow::us_per_event)
                .collect(),
        );
        let rate = median(
            rows.iter()
                .filter(|r| r.sessions == sessions)
                .map(|r| r.report.events_per_second())
                .collect(),
        );
        println!(
            "{sessions:>8}  median: {rate:.0} events/s, {cpu:.2} us of server CPU per event (target <= {EVENT_CPU_TARGET_US}: {})",
            verdict(cpu <= EVENT_CPU_TARGET_US)
        );
    }
}
