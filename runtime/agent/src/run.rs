//! One turn as the lanes and the turn loop see it: the user messages it answers, who waits for
//! its reply ([`Requester`], with the event sink its events go to), and the running turn
//! ([`ActiveRun`]): its cancellation and stop reason, its kept events, the messages steered into
//! it and everyone following it.

use std::sync::{Arc, Mutex};

use flynn_protocol::EmitEvents as _;
use flynn_protocol::types::ContentEventData;
use flynn_protocol::wire::{EventEmitter, EventJson};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

pub use crate::runs::Reply;

/// An inbound user message.
#[derive(Debug, Clone)]
pub struct UserMessage {
    pub text: String,
    pub attachments: Vec<flynn_protocol::types::Attachment>,
    /// The requester holds the `operator` scope: a turn may call tools only when every
    /// message it answers may (decision scopes).
    pub may_use_tools: bool,
    /// Who sent it (a token's name, a Tailscale login), shown in presence; never a secret.
    pub sender_name: Option<String>,
    /// The sender's id in presence when it is not the session's user part (a chat channel's
    /// sender in a group conversation); `None`: the session's user part.
    pub presence_sender: Option<String>,
}

/// Who waits for a turn's outcome.
pub struct Requester {
    pub events: EventEmitter,
    pub reply: oneshot::Sender<Reply>,
    /// Joined the run by steering: the reply is the run's, marked `steered`.
    pub steered: bool,
    /// The request's `idempotencyKey`: repeats of it follow the turn that answers it.
    pub key: Option<String>,
}

/// A message waiting in the lane.
pub struct Pending {
    pub message: UserMessage,
    pub requester: Requester,
}

/// Why a run stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Cancelled,
    Interrupted,
    /// The gateway is shutting down.
    Shutdown,
}

/// The run currently executing in a lane, as seen from outside it.
pub struct ActiveRun {
    pub cancel: CancellationToken,
    session_id: String,
    /// The turn's events, numbered (`runSeq`) and kept for `agent.attach`.
    log: crate::runs::RunLog,
    stop_reason: Mutex<Option<StopReason>>,
    /// Requests dropped by the interrupt decision that stopped this run (itself included).
    interrupt_dropped: std::sync::atomic::AtomicU64,
    /// Messages steered into the run; `None` once the run can no longer take any.
    steer_inbox: Mutex<Option<Vec<Steered>>>,
    /// Requesters whose steered message the run took: they get the run's reply.
    joined: Mutex<Vec<Requester>>,
}

impl ActiveRun {
    pub(crate) fn new(
        session_id: &str,
        limits: crate::runs::RunLimits,
        audience: Vec<EventEmitter>,
    ) -> Self {
        // A v4 UUID from the thread's generator (rand's, seeded from the OS): `Uuid::new_v4`
        // makes a getrandom(2) system call for every turn.
        let random = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let run_id: Arc<str> = format!("run_{}", random.simple()).into();
        Self {
            cancel: CancellationToken::new(),
            session_id: session_id.to_owned(),
            // Everyone who receives this run's events (grows when requests steer in).
            log: crate::runs::RunLog::with_audience(run_id, limits, audience),
            stop_reason: Mutex::new(None),
            interrupt_dropped: std::sync::atomic::AtomicU64::new(0),
            steer_inbox: Mutex::new(Some(Vec::new())),
            joined: Mutex::new(Vec::new()),
        }
    }

    /// Sends an event to everyone following this run, numbered with the turn's `runSeq` and
    /// kept for `agent.attach`.
    pub fn emit(&self, f: impl Fn(&EventEmitter)) {
        for (event, data) in crate::runs::capture(f) {
            self.record(event, data);
        }
    }

    /// [`ActiveRun::emit`] of a `content` event, the one a turn streams per model chunk:
    /// encoded in one pass ([`EventJson::encode_sorted`]: its members are in sorted order)
    /// and recorded without the recording emitter of `emit`.
    pub fn emit_content(&self, data: &ContentEventData) {
        let json = match data.transient {
            // `{"text":…}` written by hand (the model's chunks: nearly every event of a turn),
            // as serde_json writes it, which debug builds check here.
            None => {
                let json = EventJson::one_string_member("text", &data.text);
                debug_assert_eq!(Some(&json), EventJson::encode(data).ok().as_ref());
                Ok(json)
            }
            Some(_) => EventJson::encode_sorted(data),
        };
        match json {
            Ok(json) => self.record(flynn_protocol::events::CONTENT, json),
            // The typed emitter turns an encoding failure into an `error` event.
            Err(_) => self.emit(|e| e.content(data)),
        }
    }

    /// Records an event and sends it to the audience, which the log keeps under its own lock
    /// (one lock per event; a copy of the audience per event cost an allocation and a clone
    /// per member).
    fn record(&self, event: &'static str, data: EventJson) {
        self.log.record_live(event, data);
    }

    pub fn run_id(&self) -> &Arc<str> {
        self.log.run_id()
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    pub fn log(&self) -> &crate::runs::RunLog {
        &self.log
    }

    pub fn stop(&self, reason: StopReason) {
        if let Ok(mut r) = self.stop_reason.lock() {
            r.get_or_insert(reason);
        }
        self.cancel.cancel();
    }

    /// Stops the run for an `interrupt` decision that dropped `dropped` requests in all.
    pub fn interrupt(&self, dropped: u64) {
        self.interrupt_dropped
            .store(dropped, std::sync::atomic::Ordering::Release);
        self.stop(StopReason::Interrupted);
    }

    /// Requests dropped by the interrupt decision that stopped this run.
    pub fn interrupt_dropped(&self) -> u64 {
        self.interrupt_dropped
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop_reason.lock().ok().and_then(|r| *r)
    }

    /// Takes the messages steered in since the last call; their requesters join the run's
    /// reply. With `close`, the run stops accepting steering if there were none (it is about
    /// to finish), atomically.
    pub fn take_steered(&self, close: bool) -> Vec<UserMessage> {
        let Ok(mut inbox) = self.steer_inbox.lock() else {
            return Vec::new();
        };
        let taken = inbox.as_mut().map(std::mem::take).unwrap_or_default();
        if close && taken.is_empty() {
            *inbox = None;
        }
        drop(inbox);
        let mut messages = Vec::with_capacity(taken.len());
        for Steered { message, requester } in taken {
            messages.push(message);
            if let (Some(r), Ok(mut joined)) = (requester, self.joined.lock()) {
                joined.push(r);
            }
        }
        messages
    }

    /// True when steered messages are waiting (used to skip tool calls not yet started).
    pub fn has_steered(&self) -> bool {
        self.steer_inbox
            .lock()
            .map(|i| i.as_ref().is_some_and(|m| !m.is_empty()))
            .unwrap_or(false)
    }

    /// Injects a message, or gives it back (boxed: it is large) when the run no longer takes
    /// steering.
    pub(crate) fn try_steer(&self, steered: Steered) -> Result<(), Box<Steered>> {
        let Ok(mut inbox) = self.steer_inbox.lock() else {
            return Err(Box::new(steered));
        };
        match inbox.as_mut() {
            Some(messages) => {
                // Under the inbox's lock, then the log's: nothing takes them the other way round.
                if let Some(r) = &steered.requester {
                    self.log.add_audience(r.events.clone());
                }
                messages.push(steered);
                Ok(())
            }
            None => Err(Box::new(steered)),
        }
    }

    /// Stops accepting steering and returns what the run never took.
    pub(crate) fn close_inbox(&self) -> Vec<Steered> {
        self.steer_inbox
            .lock()
            .map(|mut i| i.take().unwrap_or_default())
            .unwrap_or_default()
    }

    pub(crate) fn take_joined(&self) -> Vec<Requester> {
        self.joined
            .lock()
            .map(|mut j| std::mem::take(&mut *j))
            .unwrap_or_default()
    }
}

/// A message steered into a run, with its requester when it is the only copy (`steer`; with
/// `steer_backlog` the requester waits on the queued copy).
pub(crate) struct Steered {
    pub(crate) message: UserMessage,
    pub(crate) requester: Option<Requester>,
}

/// A turn handed to the agent.
pub struct Turn {
    pub session_id: String,
    pub messages: Vec<UserMessage>,
    /// One-line summaries of messages dropped by overflow, to inject into this turn.
    pub overflow_summaries: Vec<String>,
    pub run: Arc<ActiveRun>,
}

/// The successful end of a turn.
pub struct TurnOutput {
    pub content: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
}
