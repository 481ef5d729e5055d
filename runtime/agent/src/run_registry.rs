//! The turns the gateway keeps for `agent.attach` and the `idempotencyKey`s in flight
//! (decision resumable-runs); the kept events of one turn are in [`crate::runs::RunLog`].
//!
//! Gateway-wide bound ([`KeptCap`], `agent.runs_kept_max` / `agent.runs_kept_max_bytes`): each
//! time a turn starts or ends, while more turns are kept than `max_turns`, or their kept event
//! data exceeds `max_bytes`, the finished turn that ended first (more exactly: whose grace
//! period ends first, see below) is forgotten (as if its grace period had passed). Running
//! turns are never forgotten, so they alone may exceed the cap; they are bounded by one per
//! session and by the per-turn limits. Kept memory is therefore at most
//! `runs_kept_max_bytes` plus the running turns' events.
//!
//! A finished turn is forgotten when its grace period (`agent.run_grace_secs`) has passed, seen
//! by the next use of the registry (each takes its lock, which first forgets the turns due):
//! no task and no timer per turn. The finished turns are kept in the order their grace
//! periods end, which is the order they ended unless a reload changed the grace period, so
//! the due ones are at the front, and the cap forgets that front first.
//!
//! A forgotten turn's `idempotencyKey` is answered from the store, but only once its reply is
//! stored: until then the key stays bound to the turn here, so a repeat never sees the store's
//! "not ended yet" record (which means interrupted) for a turn that did end.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flynn_protocol::wire::EventEmitter;
use tokio::sync::oneshot;

pub use crate::kept_cap::KeptCap;
use crate::run::ActiveRun;
use crate::runs::{Reply, final_event};

/// A repeated send waiting for the turn of its key to start.
struct Joiner {
    events: EventEmitter,
    reply: oneshot::Sender<Reply>,
}

enum KeyState {
    /// Claimed; the turn has not started (or the store is being asked).
    Waiting(Vec<Joiner>),
    /// Bound to its turn (kept with the turn, then only in the store).
    Run(Arc<ActiveRun>),
}

struct KeyEntry {
    fingerprint: String,
    state: KeyState,
    /// The turn's reply is in the store: the entry may go with its turn.
    stored: bool,
}

impl KeyEntry {
    fn bound_to(&self, run_id: &str) -> bool {
        matches!(&self.state, KeyState::Run(r) if &**r.run_id() == run_id)
    }
}

/// What [`Runs::claim_key`] found.
pub enum Claim {
    /// Nobody holds the key in memory: the caller holds it now, and must look in the store.
    New,
    /// The key names another message.
    Mismatch,
    /// The key's turn has not started yet: wait for the reply (events come with it).
    Waiting(oneshot::Receiver<Reply>),
    /// The key's turn runs or is kept: attach to it.
    Run(Arc<ActiveRun>),
}

/// A finished turn still kept.
struct Ended {
    run_id: Arc<str>,
    /// Its kept bytes (final once the turn ended).
    bytes: usize,
    /// When its grace period ends (`None`: a grace period too long to count).
    expires: Option<Instant>,
}

#[derive(Default)]
struct RunsState {
    runs: HashMap<Arc<str>, Arc<ActiveRun>>,
    /// Start order of `runs`, to find a session's latest.
    order: u64,
    started: HashMap<Arc<str>, u64>,
    /// The finished turns of `runs`, in the order their grace periods end (the order they
    /// ended, unless a reload changed the grace period); the cap and the grace period drop
    /// from the front.
    ended: VecDeque<Ended>,
    /// The sum of the kept bytes in `ended`, so the cap is checked without visiting (and
    /// locking) every kept turn each time a turn starts or ends.
    ended_bytes: usize,
    /// The turns of `runs` that have not ended.
    running: HashMap<Arc<str>, Arc<ActiveRun>>,
    /// At least the kept bytes of the `running` turns: each running turn's log keeps its
    /// share of it ahead of its bytes ([`crate::runs::RunLog::reserve_from`]), so the cap is
    /// checked without visiting (and locking) every running turn while the bound fits.
    running_bound: Arc<AtomicUsize>,
    keys: HashMap<(String, String), KeyEntry>,
}

impl RunsState {
    /// Forgets the finished turns whose grace period has passed, with the keys bound to them
    /// whose reply is stored.
    fn expire_due(&mut self) {
        self.expire_due_at(&mut None);
    }

    /// [`RunsState::expire_due`] at `now`, read from the clock when `None` and needed (and
    /// then kept there for the caller).
    fn expire_due_at(&mut self, now: &mut Option<Instant>) {
        while let Some(Ended {
            expires: Some(expires),
            ..
        }) = self.ended.front()
        {
            if *expires > *now.get_or_insert_with(Instant::now) {
                break;
            }
            self.forget_oldest_ended();
        }
    }

    /// Forgets the finished turn that ended first and returns its id; `None` when none is left.
    fn forget_oldest_ended(&mut self) -> Option<Arc<str>> {
        let oldest = self.ended.pop_front()?;
        self.ended_bytes -= oldest.bytes;
        self.runs.remove(&oldest.run_id);
        self.started.remove(&oldest.run_id);
        self.forget_keys(&oldest.run_id);
        Some(oldest.run_id)
    }

    fn forget_keys(&mut self, run_id: &str) {
        if !self.keys.is_empty() {
            self.keys.retain(|_, k| !(k.bound_to(run_id) && k.stored));
        }
    }

    /// Forgets the finished turns that ended first until the kept ones fit `cap`.
    fn enforce(&mut self, cap: KeptCap) -> Vec<Arc<str>> {
        let mut dropped = Vec::new();
        // The running turns' bytes grow as they run: summed once, and only when their bound
        // does not fit already.
        let mut running_bytes: Option<usize> = None;
        loop {
            if self.runs.len() <= cap.max_turns {
                let room = cap.max_bytes.saturating_sub(self.ended_bytes);
                let running = *running_bytes.get_or_insert_with(|| {
                    let bound = self.running_bound.load(Ordering::Relaxed);
                    if bound <= room {
                        return bound;
                    }
                    self.running.values().map(|r| r.log().kept_bytes()).sum()
                });
                if self.ended_bytes.saturating_add(running) <= cap.max_bytes {
                    break;
                }
            }
            // Only running turns left: they are never dropped.
            let Some(oldest) = self.forget_oldest_ended() else {
                break;
            };
            dropped.push(oldest);
        }
        dropped
    }
}

/// Turns that are running or kept after they ended, and the idempotency keys in flight.
#[derive(Default)]
pub struct Runs {
    state: Mutex<RunsState>,
}

impl Runs {
    /// The state, with the turns whose grace period has passed forgotten first.
    fn lock(&self) -> std::sync::MutexGuard<'_, RunsState> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.expire_due();
        state
    }

    /// Keeps a turn that starts; finished turns beyond `cap` are forgotten.
    pub fn insert(&self, run: Arc<ActiveRun>, cap: KeptCap) {
        let mut s = self.lock();
        s.order += 1;
        let order = s.order;
        s.started.insert(run.run_id().clone(), order);
        run.log().reserve_from(&s.running_bound);
        s.running.insert(run.run_id().clone(), run.clone());
        s.runs.insert(run.run_id().clone(), run);
        log_dropped(&s.enforce(cap), cap);
    }

    /// A kept turn ended: it is now the newest finished one, kept for `grace` (then forgotten
    /// with the keys bound to it; the store keeps them), and the oldest beyond `cap` go.
    pub fn ended(&self, run_id: &str, cap: KeptCap, grace: Duration) {
        // One clock read for the turns due, this turn's deadline and the zero grace period
        // below, instead of three.
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.expire_due_at(&mut Some(now));
        if let Some(run) = s.running.remove(run_id) {
            let bytes = run.log().release();
            s.ended_bytes += bytes;
            let expires = now.checked_add(grace);
            // In the order their grace periods end: the order they ended, unless a reload
            // shortened the grace period (then binary search puts it before longer ones).
            let at = s.ended.partition_point(|e| match (e.expires, expires) {
                (Some(earlier), Some(this)) => earlier <= this,
                (_, None) => true,
                (None, Some(_)) => false,
            });
            s.ended.insert(
                at,
                Ended {
                    run_id: run.run_id().clone(),
                    bytes,
                    expires,
                },
            );
        }
        log_dropped(&s.enforce(cap), cap);
        // A grace period of zero: forgotten now.
        s.expire_due_at(&mut Some(now));
    }

    pub fn get(&self, run_id: &str) -> Option<Arc<ActiveRun>> {
        self.lock().runs.get(run_id).cloned()
    }

    /// The session's running turn.
    pub fn running(&self, session_id: &str) -> Option<Arc<str>> {
        let s = self.lock();
        s.runs
            .values()
            .find(|r| r.session_id() == session_id && !r.log().finished())
            .map(|r| r.run_id().clone())
    }

    /// The session's running turn, else its latest kept one.
    pub fn latest(&self, session_id: &str) -> Option<Arc<ActiveRun>> {
        let s = self.lock();
        s.runs
            .values()
            .filter(|r| r.session_id() == session_id)
            .max_by_key(|r| {
                (
                    !r.log().finished(),
                    s.started.get(r.run_id()).copied().unwrap_or(0),
                )
            })
            .cloned()
    }

    /// The kept turns of a session, oldest first (for error messages).
    pub fn kept_ids(&self, session_id: &str) -> Vec<String> {
        let s = self.lock();
        let mut ids: Vec<(u64, String)> = s
            .runs
            .values()
            .filter(|r| r.session_id() == session_id)
            .map(|r| {
                (
                    s.started.get(r.run_id()).copied().unwrap_or(0),
                    r.run_id().to_string(),
                )
            })
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    /// How many turns are kept, running ones included.
    pub fn kept_count(&self) -> usize {
        self.lock().runs.len()
    }

    /// Forgets the keys of a deleted session that are no longer waiting for their turn.
    pub fn forget_session(&self, session_id: &str) {
        self.lock()
            .keys
            .retain(|(s, _), k| s != session_id || matches!(k.state, KeyState::Waiting(_)));
    }

    /// Claims `key` of `session_id` for a message with `fingerprint`, or says who holds it.
    pub fn claim_key(
        &self,
        session_id: &str,
        key: &str,
        fingerprint: &str,
        events: &EventEmitter,
    ) -> Claim {
        let mut s = self.lock();
        let id = (session_id.to_owned(), key.to_owned());
        match s.keys.get_mut(&id) {
            None => {
                s.keys.insert(
                    id,
                    KeyEntry {
                        fingerprint: fingerprint.to_owned(),
                        state: KeyState::Waiting(Vec::new()),
                        stored: false,
                    },
                );
                Claim::New
            }
            Some(entry) if entry.fingerprint != fingerprint => Claim::Mismatch,
            Some(entry) => match &mut entry.state {
                KeyState::Run(run) => Claim::Run(run.clone()),
                KeyState::Waiting(joiners) => {
                    let (tx, rx) = oneshot::channel();
                    joiners.push(Joiner {
                        events: events.clone(),
                        reply: tx,
                    });
                    Claim::Waiting(rx)
                }
            },
        }
    }

    /// The turn answering `key` started: its waiting repeats follow it from its first event.
    pub fn bind_key(&self, session_id: &str, key: &str, run: &Arc<ActiveRun>) {
        let mut s = self.lock();
        let Some(entry) = s.keys.get_mut(&(session_id.to_owned(), key.to_owned())) else {
            return;
        };
        let before = std::mem::replace(&mut entry.state, KeyState::Run(run.clone()));
        if let KeyState::Waiting(joiners) = before {
            for j in joiners {
                if let Ok(rx) = run.log().attach(j.events, 0, true) {
                    tokio::spawn(async move {
                        if let Ok(reply) = rx.await {
                            let _ = j.reply.send(reply);
                        }
                    });
                }
            }
        }
    }

    /// The key's request got `reply` (it is in the store now): repeats still waiting (its turn
    /// never started, or the store answered) get it with its final event; a key bound to a turn
    /// stays while the turn is kept (or goes now, when the turn already was forgotten).
    pub fn release_key(&self, session_id: &str, key: &str, reply: &Reply) {
        let mut s = self.lock();
        let id = (session_id.to_owned(), key.to_owned());
        let RunsState { runs, keys, .. } = &mut *s;
        match keys.get_mut(&id) {
            None => return,
            Some(entry) => {
                if let KeyState::Run(run) = &entry.state {
                    entry.stored = true;
                    if !runs.contains_key(run.run_id()) {
                        keys.remove(&id);
                    }
                    return;
                }
            }
        }
        if let Some(KeyEntry {
            state: KeyState::Waiting(joiners),
            ..
        }) = keys.remove(&id)
        {
            for j in joiners {
                final_event(&j.events, reply);
                let _ = j.reply.send(reply.clone());
            }
        }
    }
}

fn log_dropped(dropped: &[Arc<str>], cap: KeptCap) {
    if !dropped.is_empty() {
        tracing::debug!(
            dropped = ?dropped,
            runs_kept_max = cap.max_turns,
            runs_kept_max_bytes = cap.max_bytes,
            "finished turns forgotten before their grace period ended (agent.runs_kept_max / runs_kept_max_bytes)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runs::{RESERVE_QUANTUM, RunLimits};
    use flynn_protocol::wire::{EventJson, RequestId, RpcError};

    const LIMITS: RunLimits = RunLimits {
        max_events: 100,
        max_bytes: 1 << 20,
    };
    const ROOMY: KeptCap = KeptCap {
        max_turns: 100,
        max_bytes: usize::MAX,
    };

    fn run(session: &str) -> Arc<ActiveRun> {
        Arc::new(ActiveRun::new(session, LIMITS, Vec::new()))
    }

    fn finish(runs: &Runs, r: &Arc<ActiveRun>, cap: KeptCap) {
        r.log().finish(
            "error",
            flynn_protocol::wire::EventJson::from_value(&serde_json::json!({})),
            &[],
            Err(RpcError::internal("end")),
        );
        runs.ended(r.run_id(), cap, Duration::from_secs(300));
    }

    fn emitter() -> EventEmitter {
        struct Nowhere;
        impl flynn_protocol::wire::EventSink for Nowhere {
            fn send_event(
                &self,
                _: &RequestId,
                _: bool,
                _: &'static str,
                _: flynn_protocol::wire::EventJson,
            ) {
            }
        }
        EventEmitter::new(RequestId::Number(1), Arc::new(Nowhere))
    }

    #[test]
    fn the_cap_forgets_the_turn_that_ended_first_never_a_running_one() {
        let runs = Runs::default();
        let cap = KeptCap {
            max_turns: 2,
            max_bytes: usize::MAX,
        };
        let (a, b) = (run("ws:a"), run("ws:b"));
        runs.insert(a.clone(), cap);
        runs.insert(b.clone(), cap);
        // B started after A but ends first: it is the oldest finished turn.
        finish(&runs, &b, cap);
        finish(&runs, &a, cap);
        let c = run("ws:c");
        runs.insert(c.clone(), cap);
        assert!(
            runs.get(b.run_id()).is_none(),
            "B ended first and goes first"
        );
        assert!(runs.get(a.run_id()).is_some());
        assert_eq!(runs.kept_count(), 2);
        // Only running turns left beyond the cap: none of them is dropped.
        let d = run("ws:d");
        runs.insert(d.clone(), cap);
        let e = run("ws:e");
        runs.insert(e.clone(), cap);
        assert!(runs.get(a.run_id()).is_none());
        for r in [&c, &d, &e] {
            assert!(runs.get(r.run_id()).is_some(), "running turns stay");
        }
        assert_eq!(runs.running("ws:d").as_deref(), Some(&**d.run_id()));
    }

    #[test]
    fn the_byte_cap_counts_the_running_turns_bytes_beyond_their_reserved_bound() {
        // Each event is `content` (7 bytes) + `{"text":"x…x"}` (11 bytes + the text).
        let event = |n| EventJson::from_value(&serde_json::json!({ "text": "x".repeat(n) }));
        let runs = Runs::default();
        let (cap, q) = (
            KeptCap {
                max_turns: 100,
                max_bytes: 3_000,
            },
            RESERVE_QUANTUM,
        );
        let bound = || {
            runs.state
                .lock()
                .unwrap()
                .running_bound
                .load(Ordering::Relaxed)
        };
        let (a, b, c) = (run("ws:a"), run("ws:b"), run("ws:c"));
        runs.insert(a.clone(), cap);
        runs.insert(b.clone(), cap);
        assert_eq!(bound(), 2 * q, "a quantum ahead per running turn");
        // B ends keeping ~1,000 bytes; A, running, keeps ~1,500: both fit.
        b.log().record("content", event(980), &[]);
        finish(&runs, &b, cap);
        a.log().record("content", event(1_480), &[]);
        assert_eq!(bound(), q, "B's share went back when it ended");
        runs.insert(c.clone(), cap);
        assert!(runs.get(b.run_id()).is_some(), "1,000 + 1,500 fit 3,000");
        // A grows past what is left beside B: the bound (a quantum per running turn) is over
        // the cap, so the running turns' bytes are counted, and the next start forgets B.
        a.log().record("content", event(980), &[]);
        runs.insert(run("ws:d"), cap);
        assert!(
            runs.get(b.run_id()).is_none(),
            "1,000 + 2,500 do not fit 3,000"
        );
        assert!(
            runs.get(a.run_id()).is_some(),
            "a running turn is never forgotten"
        );
        // Many quanta: a long turn's share grows with its bytes and goes back at its end.
        for _ in 0..40 {
            c.log().record("content", event(1_000), &[]);
        }
        assert!(
            bound() >= 2 * q + 40_000,
            "A and D a quantum each, C over 40,000 bytes"
        );
        for r in [&a, &c] {
            finish(&runs, r, ROOMY);
        }
        assert_eq!(bound(), q, "only D runs");
    }

    #[test]
    fn a_finished_turn_is_forgotten_once_its_grace_period_passed_with_no_task() {
        // No tokio runtime here: nothing may spawn a task or arm a timer.
        let runs = Runs::default();
        let (a, b) = (run("ws:a"), run("ws:b"));
        runs.insert(a.clone(), ROOMY);
        runs.insert(b.clone(), ROOMY);
        let end = |r: &Arc<ActiveRun>, grace: Duration| {
            r.log().finish(
                "error",
                flynn_protocol::wire::EventJson::from_value(&serde_json::json!({})),
                &[],
                Err(RpcError::internal("end")),
            );
            runs.ended(r.run_id(), ROOMY, grace);
        };
        end(&a, Duration::from_millis(20));
        end(&b, Duration::from_secs(300));
        assert!(runs.get(a.run_id()).is_some(), "within its grace period");
        std::thread::sleep(Duration::from_millis(40));
        assert!(runs.get(a.run_id()).is_none(), "its grace period passed");
        assert!(runs.get(b.run_id()).is_some(), "B's has not");
        assert_eq!(runs.kept_count(), 1);
        // A grace period of zero: forgotten as it ends.
        let c = run("ws:c");
        runs.insert(c.clone(), ROOMY);
        end(&c, Duration::ZERO);
        assert!(runs.get(c.run_id()).is_none());
    }

    #[test]
    fn a_forgotten_turns_key_stays_bound_until_its_reply_is_stored() {
        let runs = Runs::default();
        let a = run("ws:a");
        runs.insert(a.clone(), ROOMY);
        assert!(matches!(
            runs.claim_key("ws:a", "k", "fp", &emitter()),
            Claim::New
        ));
        runs.bind_key("ws:a", "k", &a);
        // The turn ends and the cap forgets it at once; its reply is not stored yet.
        finish(
            &runs,
            &a,
            KeptCap {
                max_turns: 0,
                max_bytes: usize::MAX,
            },
        );
        assert!(runs.get(a.run_id()).is_none());
        assert!(
            matches!(runs.claim_key("ws:a", "k", "fp", &emitter()), Claim::Run(r) if r.run_id() == a.run_id()),
            "until stored, a repeat still finds the turn (not the store's unfinished record)"
        );
        runs.release_key("ws:a", "k", &Err(RpcError::internal("end")));
        assert!(
            matches!(runs.claim_key("ws:a", "k", "fp", &emitter()), Claim::New),
            "once stored, the store answers the key"
        );
        // The same key on another session is another key.
        assert!(matches!(
            runs.claim_key("ws:b", "k", "other", &emitter()),
            Claim::New
        ));
    }
}
