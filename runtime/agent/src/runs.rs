//! Kept events of turns and idempotency keys (decision resumable-runs).
//!
//! Every turn ([`crate::run::ActiveRun`]) numbers its events with `runSeq` from 1 and keeps
//! them in a [`RunLog`] while it runs and `agent.run_grace_secs` after it ends, so that
//! `agent.attach` (and a repeated `agent.send` with the same `idempotencyKey`) can replay them
//! and then follow the turn live.
//!
//! Memory bound: a turn keeps at most `agent.run_events_max` events and
//! `agent.run_events_max_bytes` bytes of event data (JSON text, counted by the length of the
//! [`EventJson`] every frame of the event shares; the oldest events are dropped
//! first, and an attach asking for a dropped one is refused naming what is kept). So kept events
//! take at most `run_events_max_bytes` per turn that is running or within its grace period; a
//! session runs one turn at a time, so that is bounded by the live sessions times the grace
//! period's turns.
//!
//! Over all turns, `agent.runs_kept_max` / `agent.runs_kept_max_bytes` bound what is kept: see
//! [`crate::run_registry`], which keeps the turns and the idempotency keys in flight.
//!
//! Recording an event and sending it to the followers happen under one lock, and an attach
//! replays and joins the followers under the same lock, so every follower sees each event
//! exactly once and in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flynn_protocol::types::AgentSendResult;
use flynn_protocol::wire::{EventEmitter, EventJson, EventSink, RequestId, RpcError, RunTag};
use flynn_protocol::{EmitEvents as _, ErrorCode};
use tokio::sync::oneshot;

/// What a turn's requester gets: the `agent.send` result or its error. Defined here (and
/// re-exported by `run` and `lanes`) so that the kept-events log does not reach the runs.
pub type Reply = Result<AgentSendResult, RpcError>;

/// Bounds of the kept events of one turn (`[agent]` config).
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    pub max_events: usize,
    pub max_bytes: usize,
}

struct Kept {
    seq: u64,
    event: &'static str,
    data: EventJson,
    bytes: usize,
}

/// Someone who joined the turn through `agent.attach` or a repeated `idempotencyKey`.
struct Follower {
    events: EventEmitter,
    reply: oneshot::Sender<Reply>,
}

#[derive(Default)]
struct LogState {
    kept: VecDeque<Kept>,
    bytes: usize,
    /// The last `runSeq` given out.
    last_seq: u64,
    /// The highest `runSeq` dropped by the bounds (0: none).
    dropped_through: u64,
    /// Followers that get the live events, the final event and the reply.
    followers: Vec<Follower>,
    /// Who else gets each live event ([`RunLog::record_live`]): the turn's requesters and those
    /// who steered into it. Under this lock rather than one of its own: one lock per event.
    audience: Vec<EventEmitter>,
    /// The turn's outcome, once it ended.
    outcome: Option<Reply>,
    /// The registry's bound of the running turns' kept bytes ([`RunLog::reserve_from`]) and
    /// this log's share of it; `None` before the turn is registered and after it ended.
    reserved: Option<(Arc<AtomicUsize>, usize)>,
}

/// The share of the registry's bound a log takes at a time: a short turn's few events fit in
/// its first one, so recording an event seldom touches the counter every turn shares.
pub(crate) const RESERVE_QUANTUM: usize = 16 * 1024;

/// The events of one turn, numbered and kept.
pub struct RunLog {
    run_id: Arc<str>,
    limits: RunLimits,
    state: Mutex<LogState>,
}

/// Why an attach was refused.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error(
        "events 1..={dropped_through} of turn `{run_id}` are no longer kept (agent.run_events_max / agent.run_events_max_bytes); kept: {kept}; attach with afterSeq >= {dropped_through}, or read the stored history with sessions.get"
    )]
    Dropped {
        run_id: String,
        dropped_through: u64,
        kept: String,
    },
    #[error(
        "turn `{run_id}` ended after {last} events; afterSeq {after} is beyond them (attach with afterSeq <= {last})"
    )]
    Beyond {
        run_id: String,
        after: u64,
        last: u64,
    },
}

impl AttachError {
    pub fn into_rpc(self) -> RpcError {
        RpcError::invalid("params.afterSeq", self.to_string())
    }
}

/// An [`EventSink`] that records what a typed emitter produced.
#[derive(Default)]
struct Capture(Mutex<Vec<(&'static str, EventJson)>>);

impl EventSink for Capture {
    fn send_event(&self, _: &RequestId, _: bool, event: &'static str, data: EventJson) {
        if let Ok(mut v) = self.0.lock() {
            v.push((event, data));
        }
    }
}

/// Runs `f` against a recording emitter and returns the events it emitted.
pub fn capture(f: impl Fn(&EventEmitter)) -> Vec<(&'static str, EventJson)> {
    let sink = Arc::new(Capture::default());
    let emitter = EventEmitter::new(RequestId::Number(0), sink.clone());
    f(&emitter);
    sink.0
        .lock()
        .map(|mut v| std::mem::take(&mut *v))
        .unwrap_or_default()
}

impl RunLog {
    pub fn new(run_id: Arc<str>, limits: RunLimits) -> Self {
        Self::with_audience(run_id, limits, Vec::new())
    }

    /// A log whose live events ([`RunLog::record_live`]) go to `audience` from the start.
    pub fn with_audience(run_id: Arc<str>, limits: RunLimits, audience: Vec<EventEmitter>) -> Self {
        Self {
            run_id,
            limits,
            state: Mutex::new(LogState {
                audience,
                ..LogState::default()
            }),
        }
    }

    pub fn run_id(&self) -> &Arc<str> {
        &self.run_id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers and keeps one event, then sends it to `audience` and the followers (under the
    /// log's lock, see the module docs).
    pub fn record(&self, event: &'static str, data: EventJson, audience: &[EventEmitter]) {
        let mut state = self.lock();
        self.push(&mut state, event, data, audience);
    }

    /// [`RunLog::record`] to the log's own audience ([`RunLog::add_audience`]).
    pub fn record_live(&self, event: &'static str, data: EventJson) {
        let mut state = self.lock();
        let audience = std::mem::take(&mut state.audience);
        self.push(&mut state, event, data, &audience);
        state.audience = audience;
    }

    /// Adds who gets the live events from now on ([`RunLog::record_live`]).
    pub fn add_audience(&self, events: EventEmitter) {
        self.lock().audience.push(events);
    }

    fn push(
        &self,
        state: &mut LogState,
        event: &'static str,
        data: EventJson,
        audience: &[EventEmitter],
    ) {
        state.last_seq += 1;
        let tag = RunTag {
            run_id: self.run_id.clone(),
            run_seq: state.last_seq,
        };
        for e in audience {
            e.emit_in_run(event, data.clone(), tag.clone());
        }
        for f in &state.followers {
            f.events.emit_in_run(event, data.clone(), tag.clone());
        }
        let bytes = data.len() + event.len();
        state.bytes += bytes;
        state.kept.push_back(Kept {
            seq: state.last_seq,
            event,
            data,
            bytes,
        });
        while state.kept.len() > self.limits.max_events || state.bytes > self.limits.max_bytes {
            let Some(old) = state.kept.pop_front() else {
                break;
            };
            state.bytes -= old.bytes;
            state.dropped_through = old.seq;
        }
        reserve(state);
    }

    /// Counts this running turn's kept bytes in `bound` (the registry's, see
    /// [`crate::run_registry`]) until [`RunLog::release`]: the log adds whole quanta to it
    /// ahead of its bytes, so `bound` stays at least the sum of the running turns' kept bytes
    /// without a shared write per event.
    pub(crate) fn reserve_from(&self, bound: &Arc<AtomicUsize>) {
        let mut state = self.lock();
        if state.reserved.is_none() {
            // A quantum ahead: the short turn's events then never touch `bound`.
            let share = state.bytes.max(1).next_multiple_of(RESERVE_QUANTUM);
            bound.fetch_add(share, Ordering::Relaxed);
            state.reserved = Some((bound.clone(), share));
        }
    }

    /// Gives the log's share of the registry's bound back (its turn ended) and returns its
    /// kept bytes.
    pub(crate) fn release(&self) -> usize {
        let mut state = self.lock();
        if let Some((bound, share)) = state.reserved.take() {
            bound.fetch_sub(share, Ordering::Relaxed);
        }
        state.bytes
    }

    /// Ends the turn: the final event (`done` or `error`) to `audience` and the followers, then
    /// the reply to the followers. Later attaches get both from the kept state.
    pub fn finish(
        &self,
        event: &'static str,
        data: EventJson,
        audience: &[EventEmitter],
        reply: Reply,
    ) {
        let mut state = self.lock();
        if state.outcome.is_some() {
            return;
        }
        self.push(&mut state, event, data, audience);
        for f in std::mem::take(&mut state.followers) {
            let _ = f.reply.send(reply.clone());
        }
        // Kept as is: a copy would copy the whole answer once more per turn.
        state.outcome = Some(reply);
    }

    /// Replays the kept events after `after` to `events`, then makes it a follower (or, when
    /// the turn has ended, answers at once). With `lenient`, dropped events are skipped rather
    /// than refused (a repeated `idempotencyKey` joins from what is kept).
    pub fn attach(
        &self,
        events: EventEmitter,
        after: u64,
        lenient: bool,
    ) -> Result<oneshot::Receiver<Reply>, AttachError> {
        let mut state = self.lock();
        if after < state.dropped_through && !lenient {
            let kept = match (state.kept.front(), state.kept.back()) {
                (Some(a), Some(b)) => format!("{}..={}", a.seq, b.seq),
                _ => "none".to_owned(),
            };
            return Err(AttachError::Dropped {
                run_id: self.run_id.to_string(),
                dropped_through: state.dropped_through,
                kept,
            });
        }
        if state.outcome.is_some() && after > state.last_seq {
            return Err(AttachError::Beyond {
                run_id: self.run_id.to_string(),
                after,
                last: state.last_seq,
            });
        }
        for k in state.kept.iter().filter(|k| k.seq > after) {
            events.emit_in_run(
                k.event,
                k.data.clone(),
                RunTag {
                    run_id: self.run_id.clone(),
                    run_seq: k.seq,
                },
            );
        }
        let (tx, rx) = oneshot::channel();
        match &state.outcome {
            Some(reply) => {
                let _ = tx.send(reply.clone());
            }
            None => state.followers.push(Follower { events, reply: tx }),
        }
        Ok(rx)
    }

    pub fn finished(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// Bytes of the kept event data (what the gateway-wide `agent.runs_kept_max_bytes` counts).
    pub fn kept_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The turn's outcome, once it ended.
    pub fn outcome(&self) -> Option<Reply> {
        self.lock().outcome.clone()
    }
}

/// Grows the log's share of the registry's bound to cover its kept bytes.
fn reserve(state: &mut LogState) {
    if let Some((bound, share)) = &mut state.reserved
        && state.bytes > *share
    {
        let more = (state.bytes - *share).next_multiple_of(RESERVE_QUANTUM);
        bound.fetch_add(more, Ordering::Relaxed);
        *share += more;
    }
}

/// Sends the event that ends a request with `reply`: `done` or `error`.
pub fn final_event(events: &EventEmitter, reply: &Reply) {
    match reply {
        Ok(result) => events.done(&flynn_protocol::types::DoneEventData {
            content: result.content.clone(),
        }),
        Err(e) => events.error(&flynn_protocol::types::ErrorEventData {
            code: e.code,
            message: e.message.clone(),
            queue: e
                .data
                .as_ref()
                .and_then(|d| serde_json::from_value(d["queue"].clone()).ok()),
        }),
    }
}

/// The event that ends a request with `reply`, encoded once for the run log and every
/// requester. `done` (every answered turn) is written by hand, as a streamed chunk is
/// ([`EventJson::one_string_member`]): its only member is `content`, the whole answer, which
/// serde_json escaped byte by byte after a copy into the typed data (a long answer's `done`
/// cost about as much as a quarter of its streamed events). Debug builds compare the text with
/// the typed encoding.
pub fn encoded_final_event(reply: &Reply) -> (&'static str, EventJson) {
    if let Ok(result) = reply {
        let json = EventJson::one_string_member("content", &result.content);
        debug_assert_eq!(
            Some(&json),
            EventJson::encode(&flynn_protocol::types::DoneEventData {
                content: result.content.clone(),
            })
            .ok()
            .as_ref()
        );
        return (flynn_protocol::events::DONE, json);
    }
    capture(|e| final_event(e, reply))
        .into_iter()
        .next()
        .unwrap_or_else(|| {
            (
                flynn_protocol::events::ERROR,
                EventJson::from_value(&serde_json::json!({
                    "code": ErrorCode::InternalError.code(),
                    "message": "the turn ended without an outcome",
                })),
            )
        })
}

/// The stored form of a reply (`agent.send` `idempotencyKey`).
pub fn encode_outcome(reply: &Reply) -> String {
    match reply {
        Ok(r) => serde_json::json!({ "result": r }),
        Err(e) => serde_json::json!({ "error": e }),
    }
    .to_string()
}

/// Reads a stored reply back; an unreadable one is reported as such.
pub fn decode_outcome(text: &str) -> Reply {
    #[derive(serde::Deserialize)]
    struct Stored {
        result: Option<AgentSendResult>,
        error: Option<RpcError>,
    }
    match serde_json::from_str::<Stored>(text) {
        Ok(Stored {
            result: Some(r), ..
        }) => Ok(r),
        Ok(Stored { error: Some(e), .. }) => Err(e),
        _ => Err(RpcError::internal(
            "the stored reply of this idempotencyKey cannot be read; send again with a new key",
        )),
    }
}

/// A stable fingerprint of a message (the same across restarts): FNV-1a over the text and the
/// attachments.
pub fn fingerprint(text: &str, attachments: &[flynn_protocol::types::Attachment]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes.iter().chain(&(bytes.len() as u64).to_le_bytes()) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(text.as_bytes());
    for a in attachments {
        feed(a.mime_type.as_bytes());
        feed(a.data.as_bytes());
        feed(a.filename.as_deref().unwrap_or("").as_bytes());
    }
    format!("fnv1a64:{h:016x}:{}", text.len())
}

/// The error of a key whose turn never ended (the gateway stopped during it).
pub fn interrupted(key: &str) -> RpcError {
    RpcError::new(
        ErrorCode::RequestCancelled,
        format!(
            "the turn of idempotencyKey `{key}` was interrupted: the gateway stopped before it ended and its reply was not stored; sessions.get shows what was saved; send again with a new key"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An emitter that records `(event, runSeq)` of what it sends.
    #[derive(Default)]
    struct Seen(Mutex<Vec<(&'static str, u64)>>);

    impl EventSink for Seen {
        fn send_event(&self, _: &RequestId, _: bool, _: &'static str, _: EventJson) {
            panic!("events of a turn are sent with their runSeq");
        }
        fn send_run_event(
            &self,
            _: &RequestId,
            _: bool,
            event: &'static str,
            _: EventJson,
            run: RunTag,
        ) {
            self.0.lock().unwrap().push((event, run.run_seq));
        }
    }

    fn emitter() -> (Arc<Seen>, EventEmitter) {
        let seen = Arc::new(Seen::default());
        (seen.clone(), EventEmitter::new(RequestId::Number(1), seen))
    }

    fn text(n: usize) -> EventJson {
        EventJson::from_value(&serde_json::json!({ "text": "x".repeat(n) }))
    }

    #[test]
    fn kept_events_are_bounded_in_bytes_and_count_and_attach_says_what_is_kept() {
        // Each event is `content` (7 bytes) + `{"text":"xxxxxxxxxx"}` (21 bytes) = 28 bytes.
        let log = RunLog::new(
            "run_t".into(),
            RunLimits {
                max_events: 100,
                max_bytes: 60,
            },
        );
        for _ in 0..5 {
            log.record("content", text(10), &[]);
        }
        {
            let state = log.lock();
            assert_eq!(state.kept.len(), 2, "two events fit in 60 bytes");
            assert!(state.bytes <= 60);
            assert_eq!(state.dropped_through, 3);
        }
        let (_, e) = emitter();
        let err = log.attach(e, 0, false).unwrap_err().to_string();
        assert!(err.contains("kept: 4..=5"), "{err}");
        assert!(err.contains("afterSeq >= 3"), "{err}");

        let log = RunLog::new(
            "run_c".into(),
            RunLimits {
                max_events: 3,
                max_bytes: usize::MAX,
            },
        );
        for _ in 0..10 {
            log.record("content", text(1), &[]);
        }
        assert_eq!(log.lock().kept.len(), 3);
        // An event larger than the whole budget is sent live but not kept.
        let log = RunLog::new(
            "run_b".into(),
            RunLimits {
                max_events: 10,
                max_bytes: 10,
            },
        );
        let (seen, live) = emitter();
        log.record("content", text(100), std::slice::from_ref(&live));
        assert_eq!(seen.0.lock().unwrap().as_slice(), &[("content", 1)]);
        assert!(log.lock().kept.is_empty());
    }

    #[test]
    fn attach_replays_then_follows_live_then_gets_the_reply_each_event_once() {
        let log = RunLog::new(
            "run_a".into(),
            RunLimits {
                max_events: 100,
                max_bytes: 1 << 20,
            },
        );
        log.record("content", text(1), &[]);
        log.record("content", text(1), &[]);
        let (seen, e) = emitter();
        let mut rx = log.attach(e, 1, false).unwrap();
        log.record("tool_start", text(1), &[]);
        assert!(rx.try_recv().is_err(), "no reply before the turn ends");
        let reply: Reply = Err(RpcError::internal("boom"));
        log.finish("error", text(1), &[], reply);
        assert!(matches!(rx.try_recv(), Ok(Err(_))));
        assert_eq!(
            seen.0.lock().unwrap().as_slice(),
            &[("content", 2), ("tool_start", 3), ("error", 4)]
        );
        // After the end: beyond the last event is refused, the rest is replayed with the reply.
        let (_, e) = emitter();
        assert!(matches!(
            log.attach(e, 9, false),
            Err(AttachError::Beyond { last: 4, .. })
        ));
        let (seen, e) = emitter();
        let mut rx = log.attach(e, 3, false).unwrap();
        assert!(matches!(rx.try_recv(), Ok(Err(_))));
        assert_eq!(seen.0.lock().unwrap().as_slice(), &[("error", 4)]);
    }

    #[test]
    fn fingerprints_are_stable_and_tell_messages_apart() {
        assert_eq!(fingerprint("hello", &[]), fingerprint("hello", &[]));
        assert_ne!(fingerprint("hello", &[]), fingerprint("hello!", &[]));
        // Pinned: keys are compared with fingerprints stored by earlier processes.
        assert_eq!(fingerprint("hello", &[]), "fnv1a64:764b948efcba6ace:5");
    }
}
