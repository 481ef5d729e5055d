//! Operator metrics: `GET /metrics` in the Prometheus text format (prometheus-client).
//!
//! One registry per process, like the log buffer: counters are bumped where things happen
//! (requests in `connection`, turns and tool runs in `agent_hooks`, the agent's hooks, auth
//! failures at the edge, webhook deliveries in `webhooks`, Web Push sends in `push`); gauges
//! (connections, queue depth, inbound budget in use) are read from the gateway when scraped. Every label takes values
//! from a bounded set: method names, event names, tool names of the registry (`unknown` for
//! others), configured webhook names, fixed outcomes.

mod histogram;

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

use self::histogram::BatchHistogram;
use crate::config::QueueMode;

/// The content type of the Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodOutcome {
    method: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabel {
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookOutcome {
    hook: String,
    outcome: &'static str,
}

type HistogramFamily<L> = Family<L, BatchHistogram, fn() -> BatchHistogram>;

fn latency_histogram() -> BatchHistogram {
    // 1 ms .. ~33 s.
    BatchHistogram::new(exponential_buckets(0.001, 2.0, 16))
}

fn turn_histogram() -> Histogram {
    // 50 ms .. ~27 min: model turns with tools are long.
    Histogram::new(exponential_buckets(0.05, 2.0, 16))
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    events: Family<EventLabel, Counter>,
    /// The `content` series of `events`, resolved at the first one: a turn streams one per
    /// model chunk, and a family lookup hashes the label under a lock.
    content_events: OnceLock<Counter>,
    /// Socket writes (flushes) that carried at least one event frame: with `events_sent`,
    /// how many events leave per write(2), i.e. whether events ready together were coalesced.
    event_writes: Counter,
    turns: Family<OutcomeLabel, Counter>,
    turn_seconds: Histogram,
    tokens: Family<DirectionLabel, Counter>,
    tool_runs: Family<ToolOutcome, Counter>,
    auth_failures: Family<TransportLabel, Counter>,
    queue_depth: Family<ModeLabel, Gauge>,
    inbound_bytes: Gauge,
    webhooks: Family<HookOutcome, Counter>,
    push_sends: Family<OutcomeLabel, Counter>,
    /// The request series of every method (`requests_total{method,outcome}` and
    /// `request_duration_seconds{method}`), resolved once; index: the method's position in
    /// `Method::ALL`. A family lookup per request hashes the labels under a lock on the
    /// `system.info` hot path.
    per_method: Vec<MethodSeries>,
}

/// One method's request series, handles into the families above.
struct MethodSeries {
    ok: Counter,
    error: Counter,
    seconds: BatchHistogram,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process's metrics (created on first use).
pub fn get() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

const MODES: [(QueueMode, &str); 5] = [
    (QueueMode::Followup, "followup"),
    (QueueMode::Collect, "collect"),
    (QueueMode::Steer, "steer"),
    (QueueMode::SteerBacklog, "steer_backlog"),
    (QueueMode::Interrupt, "interrupt"),
];

/// The wire name of a queue mode (the label value of `flynn_queue_depth`).
pub fn mode_name(mode: QueueMode) -> &'static str {
    MODES
        .iter()
        .find(|(m, _)| *m == mode)
        .map_or("followup", |(_, name)| name)
}

/// Registers `metric` under `name` and returns a handle to it.
fn register<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// Registers a new, empty metric of type `M` under `name` and returns a handle to it.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    register(registry, name, help, M::default())
}

/// Registers `requests_total{method,outcome}` and `request_duration_seconds{method}` and
/// resolves the series of every method, in the order of `Method::ALL`.
fn register_requests(registry: &mut Registry) -> Vec<MethodSeries> {
    let requests: Family<MethodOutcome, Counter> = registered(
        registry,
        "requests",
        "Requests answered, by method and outcome (ok or error)",
    );
    let request_seconds = register(
        registry,
        "request_duration_seconds",
        "Time from a request's arrival to its reply, by method",
        HistogramFamily::<MethodLabel>::new_with_constructor(latency_histogram),
    );
    flynn_protocol::Method::ALL
        .iter()
        .map(|m| {
            let method = m.name();
            // One statement per lookup: a family's guard held across a second lookup that
            // inserts would deadlock on the family's lock.
            let ok = requests
                .get_or_create(&MethodOutcome {
                    method,
                    outcome: "ok",
                })
                .clone();
            let error = requests
                .get_or_create(&MethodOutcome {
                    method,
                    outcome: "error",
                })
                .clone();
            let seconds = request_seconds
                .get_or_create(&MethodLabel { method })
                .clone();
            MethodSeries { ok, error, seconds }
        })
        .collect()
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("flynn");
        // Registration order is the order of the exposition; field initializers run in the
        // order written, and `registry` moves in last.
        Self {
            connections: registered(&mut registry, "connections", "Open WebSocket connections"),
            per_method: register_requests(&mut registry),
            events: registered(
                &mut registry,
                "events_sent",
                "Event frames queued to WebSocket clients, by event",
            ),
            content_events: OnceLock::new(),
            event_writes: registered(
                &mut registry,
                "event_writes",
                "WebSocket writes (one flush, usually one write(2)) that carried event frames",
            ),
            turns: registered(
                &mut registry,
                "agent_turns",
                "Agent turns finished, by outcome (ok or error)",
            ),
            turn_seconds: register(
                &mut registry,
                "agent_turn_duration_seconds",
                "Duration of agent turns",
                turn_histogram(),
            ),
            tokens: registered(
                &mut registry,
                "model_tokens",
                "Model tokens of finished turns, by direction (input or output)",
            ),
            tool_runs: registered(
                &mut registry,
                "tool_runs",
                "Tool runs of agent turns, by tool and outcome (ok, failed or error)",
            ),
            auth_failures: registered(
                &mut registry,
                "auth_failures",
                "Refused credentials (missing, wrong or rate-limited), by transport",
            ),
            queue_depth: registered(
                &mut registry,
                "queue_depth",
                "Messages waiting in session lanes, by the lane's queue mode",
            ),
            inbound_bytes: registered(
                &mut registry,
                "inbound_bytes",
                "Bytes of the inbound budget (server.max_inbound_bytes) held by unfinished incoming messages",
            ),
            webhooks: registered(
                &mut registry,
                "webhook_deliveries",
                "Webhook deliveries, by hook and outcome",
            ),
            push_sends: registered(
                &mut registry,
                "push_sends",
                "Web Push notifications sent, by outcome (crate::push::sender)",
            ),
            registry,
        }
    }

    /// A request was answered.
    pub fn request(&self, method: flynn_protocol::Method, ok: bool, elapsed: Duration) {
        self.requests(method, ok, elapsed, 1);
    }

    /// `n` requests of one method and outcome were answered, each in `elapsed` (a read burst's
    /// requests answered at once): one update of each series.
    pub fn requests(&self, method: flynn_protocol::Method, ok: bool, elapsed: Duration, n: u32) {
        // `Method` is a fieldless enum in spec order, the order of `Method::ALL`.
        let Some(series) = self.per_method.get(method as usize) else {
            return;
        };
        if ok {
            series.ok.inc_by(n.into());
        } else {
            series.error.inc_by(n.into());
        }
        series.seconds.observe_n(elapsed.as_secs_f64(), n.into());
    }

    /// An event frame was queued to a client.
    pub fn event_sent(&self, event: &'static str) {
        if event == flynn_protocol::events::CONTENT {
            // A handle shares the series' counter.
            let series = || self.events.get_or_create(&EventLabel { event }).clone();
            self.content_events.get_or_init(series).inc();
        } else {
            self.events.get_or_create(&EventLabel { event }).inc();
        }
    }

    /// A flush that carried event frames went to a client's socket.
    pub fn event_write(&self) {
        self.event_writes.inc();
    }

    /// An agent turn ended.
    pub fn turn(&self, ok: bool, elapsed: Duration, input_tokens: u64, output_tokens: u64) {
        let outcome = if ok { "ok" } else { "error" };
        self.turns.get_or_create(&OutcomeLabel { outcome }).inc();
        self.turn_seconds.observe(elapsed.as_secs_f64());
        self.tokens
            .get_or_create(&DirectionLabel { direction: "input" })
            .inc_by(input_tokens);
        self.tokens
            .get_or_create(&DirectionLabel {
                direction: "output",
            })
            .inc_by(output_tokens);
    }

    /// A tool ran in an agent turn. `known` is false for a name the registry does not have
    /// (counted as `unknown`, so a model cannot grow the label set).
    pub fn tool_run(&self, tool: &str, known: bool, outcome: &'static str) {
        let tool = if known {
            tool.to_owned()
        } else {
            "unknown".into()
        };
        self.tool_runs
            .get_or_create(&ToolOutcome { tool, outcome })
            .inc();
    }

    /// Credentials were refused on `transport` (`websocket` or `http`).
    pub fn auth_failure(&self, transport: &'static str) {
        self.auth_failures
            .get_or_create(&TransportLabel { transport })
            .inc();
    }

    /// A webhook delivery ended with `outcome` (`accepted`, `bad_signature`, ...). `hook` is a
    /// configured name (unknown names are counted as `unknown`).
    pub fn webhook(&self, hook: &str, outcome: &'static str) {
        self.webhooks
            .get_or_create(&HookOutcome {
                hook: hook.to_owned(),
                outcome,
            })
            .inc();
    }

    /// A Web Push send ended with `outcome` (one of `crate::push::sender::Outcome`'s names).
    pub fn push_send(&self, outcome: &'static str) {
        self.push_sends
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// The text exposition, with the gauges set from what the caller read from the gateway
    /// now: the open `connections`, each lane's queue mode and depth (`Lanes::queue_depths`)
    /// and the inbound budget in use (`InboundBudget::used_bytes`). Values rather than
    /// `&Gateway`, so this module stays a leaf that everything may use.
    pub fn render(
        &self,
        connections: usize,
        depths: &[(QueueMode, usize)],
        inbound_bytes: usize,
    ) -> String {
        self.connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
        self.inbound_bytes
            .set(i64::try_from(inbound_bytes).unwrap_or(i64::MAX));
        for (mode, name) in MODES {
            let depth: usize = depths
                .iter()
                .filter(|(m, _)| *m == mode)
                .map(|(_, d)| d)
                .sum();
            self.queue_depth
                .get_or_create(&ModeLabel { mode: name })
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_are_the_wire_names() {
        assert_eq!(mode_name(QueueMode::SteerBacklog), "steer_backlog");
        assert_eq!(mode_name(QueueMode::Collect), "collect");
    }
}
