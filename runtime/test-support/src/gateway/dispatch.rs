//! In-process dispatch: a request run by the gateway's `ConnectionService` (the generated
//! `dispatch` behind it, scope checks included) for a connection that has no socket. For
//! handler tests where the transport is not the point: no listener, no frames, no reader task.
//! The transport's own tests (frames, batches, limits, close codes) stay on real sockets.
//!
//! [`Dispatcher`] is a `flynn_protocol::wire::Transport`, so the generated typed client runs on
//! it ([`InProcessClient`]). The call runs to its reply before the client sees anything: events
//! a handler emits after its reply (an agent turn's late `done`) are not collected, so streaming
//! turns belong on a socket. The connection is not in the gateway's connection registry
//! (`system.info`'s count and the live connections do not include it).

use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flynn_gateway::Gateway;
use flynn_gateway::auth::Identity;
use flynn_gateway::connection::{ConnectionService, ConnectionState};
use flynn_protocol::wire::{
    Call, ClientError, Dispatched, EventEmitter, EventFrame, EventJson, EventSink, PendingCall,
    RequestId, RpcError, RunTag, Transport,
};
use flynn_protocol::{Client, Method};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

/// Numbers the in-process connections of this test process (`in-process-N`).
static CONNECTIONS: AtomicU64 = AtomicU64::new(1);

/// Events a call emitted, in order, numbered like a connection's `seq`.
#[derive(Default)]
struct Collected {
    frames: Mutex<Vec<EventFrame>>,
}

impl Collected {
    fn push(&self, event: &'static str, data: Value, run: Option<RunTag>) {
        let mut frames = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        let seq = frames.len() as u64 + 1;
        frames.push(EventFrame {
            event: event.to_owned(),
            data,
            seq: Some(seq),
            run_id: run.as_ref().map(|r| r.run_id.to_string()),
            run_seq: run.map(|r| r.run_seq),
        });
    }

    fn take(&self) -> Vec<EventFrame> {
        std::mem::take(&mut *self.frames.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl EventSink for Collected {
    fn send_event(&self, _: &RequestId, _: bool, event: &'static str, data: EventJson) {
        self.push(event, data.to_value(), None);
    }

    fn send_run_event(
        &self,
        _: &RequestId,
        _: bool,
        event: &'static str,
        data: EventJson,
        run: RunTag,
    ) {
        self.push(event, data.to_value(), Some(run));
    }
}

/// One socketless connection of a running gateway: its own id and identity (so its scopes).
#[derive(Clone)]
pub struct Dispatcher {
    gateway: Arc<Gateway>,
    connection: Arc<ConnectionState>,
    next_id: Arc<AtomicI64>,
}

impl Dispatcher {
    /// A connection of `gateway` authenticated as `identity` (`Identity::Open`: every scope).
    pub fn new(gateway: Arc<Gateway>, identity: Identity) -> Self {
        let n = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            gateway,
            connection: Arc::new(ConnectionState::new(
                format!("in-process-{n}"),
                peer,
                identity,
                1024,
            )),
            next_id: Arc::new(AtomicI64::new(1)),
        }
    }

    /// The connection's state, as handlers see it.
    pub fn connection(&self) -> &Arc<ConnectionState> {
        &self.connection
    }

    /// Runs `method` to its reply: the events it emitted before, and its result or error. An
    /// unknown name is answered like the wire answers it (-3).
    pub async fn run(
        &self,
        method: &str,
        params: Value,
    ) -> (Vec<EventFrame>, Result<Value, RpcError>) {
        let Some(method) = Method::from_name(method) else {
            return (Vec::new(), Err(RpcError::method_not_found(method)));
        };
        let id = RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed));
        let params = serde_json::value::to_raw_value(&params).expect("params serialize");
        let events = Arc::new(Collected::default());
        let call = Call::new(
            self.connection.clone(),
            EventEmitter::new(id, events.clone()),
        );
        let reply = match ConnectionService::dispatch(&*self.gateway, call, method, Some(&params)) {
            Dispatched::Ready(reply) => reply,
            Dispatched::Later(reply) => reply.await,
        };
        (events.take(), reply.and_then(|frame| result_of(&frame)))
    }

    /// Like [`Dispatcher::run`], the reply as a frame carries it: `{"result": ..}` or
    /// `{"error": {code, message, data}}`.
    pub async fn raw(&self, method: &str, params: Value) -> Value {
        match self.run(method, params).await.1 {
            Ok(result) => json!({ "result": result }),
            Err(error) => json!({ "error": error }),
        }
    }
}

/// The result (or error) of an encoded reply frame.
fn result_of(frame: &str) -> Result<Value, RpcError> {
    let mut frame: Value = serde_json::from_str(frame).expect("the reply frame is JSON");
    if let Some(error) = frame.get_mut("error") {
        return Err(serde_json::from_value(error.take()).expect("the error object decodes"));
    }
    Ok(frame
        .get_mut("result")
        .map(Value::take)
        .expect("a reply frame has a result or an error"))
}

impl Transport for Dispatcher {
    async fn start(&self, method: &'static str, params: Value) -> Result<PendingCall, ClientError> {
        let (events, reply) = self.run(method, params).await;
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        for event in events {
            let _ = events_tx.send(event);
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let _ = reply_tx.send(reply);
        Ok(PendingCall {
            id: RequestId::Number(0),
            events: events_rx,
            reply: reply_rx,
        })
    }
}

/// The generated typed client over a [`Dispatcher`]; derefs to `flynn_protocol::Client`.
pub struct InProcessClient {
    client: Client<Dispatcher>,
}

impl InProcessClient {
    pub fn new(dispatcher: Dispatcher) -> Self {
        Self {
            client: Client::new(dispatcher),
        }
    }

    /// An untyped call on the same connection (see [`Dispatcher::raw`]).
    pub async fn raw(&self, method: &str, params: Value) -> Value {
        self.client.transport().raw(method, params).await
    }
}

impl Deref for InProcessClient {
    type Target = Client<Dispatcher>;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}
