//! A tokio-tungstenite [`Transport`] for the generated `Client`: one connection,
//! requests multiplexed by id, events routed to the request they belong to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use std::marker::PhantomData;

use crate::client::{ClientError, EventFrame, PendingCall, Transport};
use crate::error::RpcError;
use crate::ids::RequestId;

/// The subprotocol names a transport offers: the generated crate's `SUBPROTOCOL` and
/// `BEARER_SUBPROTOCOL_PREFIX`, from the spec's `x-http.auth.browserSubprotocol`.
pub trait WsProtocol: Send + Sync + 'static {
    /// The subprotocol every client offers.
    const SUBPROTOCOL: &'static str;
    /// The prefix of the subprotocol entry that carries a token (base64url, no padding).
    const BEARER_SUBPROTOCOL_PREFIX: &'static str;
}

/// The `Sec-WebSocket-Protocol` entry carrying `token`.
pub fn bearer_subprotocol<P: WsProtocol>(token: &str) -> String {
    format!(
        "{}{}",
        P::BEARER_SUBPROTOCOL_PREFIX,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token)
    )
}

/// How to authenticate.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Bearer token, if the gateway needs one.
    pub token: Option<String>,
    /// Send the token as a subprotocol entry (the browser form) instead of a header.
    pub token_as_subprotocol: bool,
    /// Extra request headers (e.g. `Origin`).
    pub headers: Vec<(String, String)>,
}

struct Slot {
    events: mpsc::UnboundedSender<EventFrame>,
    reply: oneshot::Sender<Result<Value, RpcError>>,
}

type Slots = Arc<Mutex<HashMap<RequestId, Slot>>>;

/// A connected WebSocket transport offering `P`'s subprotocol. Dropping it closes the
/// connection.
pub struct WsTransport<P> {
    outbound: mpsc::UnboundedSender<Message>,
    slots: Slots,
    next_id: AtomicI64,
    open: Arc<AtomicBool>,
    protocol: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for WsTransport<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport").finish_non_exhaustive()
    }
}

fn transport_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

impl<P: WsProtocol> WsTransport<P> {
    /// Connects to `url` (`ws://127.0.0.1:18800/`).
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let mut request = url.into_client_request().map_err(transport_err)?;
        let headers = request.headers_mut();
        let mut protocols = vec![P::SUBPROTOCOL.to_owned()];
        if let Some(token) = &options.token {
            if options.token_as_subprotocol {
                protocols.push(bearer_subprotocol::<P>(token));
            } else {
                headers.insert(
                    "authorization",
                    HeaderValue::from_str(&format!("Bearer {token}")).map_err(transport_err)?,
                );
            }
        }
        headers.insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&protocols.join(", ")).map_err(transport_err)?,
        );
        for (name, value) in &options.headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(transport_err)?;
            headers.insert(name, HeaderValue::from_str(value).map_err(transport_err)?);
        }
        let (stream, _response) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(transport_err)?;
        let (mut sink, mut source) = stream.split();
        let (outbound, mut outbound_rx) = mpsc::unbounded_channel::<Message>();
        let slots: Slots = Arc::default();

        tokio::spawn(async move {
            while let Some(message) = outbound_rx.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let reader_slots = slots.clone();
        let open = Arc::new(AtomicBool::new(true));
        let reader_open = open.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = source.next().await {
                if let Message::Text(text) = message {
                    route(&reader_slots, text.as_str());
                }
            }
            // Connection gone: dropping the slots fails every pending call with `Closed`.
            reader_open.store(false, Ordering::Release);
            if let Ok(mut slots) = reader_slots.lock() {
                slots.clear();
            }
        });
        Ok(Self {
            outbound,
            slots,
            next_id: AtomicI64::new(1),
            open,
            protocol: PhantomData,
        })
    }

    /// False once the connection has closed.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Sends a raw text frame (for tests that need malformed input).
    pub fn send_raw(&self, text: String) -> Result<(), ClientError> {
        self.outbound
            .send(Message::text(text))
            .map_err(|_| ClientError::Closed)
    }

    /// Starts a close handshake.
    pub fn close(&self) {
        let _ = self.outbound.send(Message::Close(None));
    }
}

fn route(slots: &Slots, text: &str) {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Ok(id) = serde_json::from_value::<RequestId>(frame["id"].clone()) else {
        return;
    };
    let Ok(mut slots) = slots.lock() else {
        return;
    };
    if let Some(event) = frame["event"].as_str() {
        if let Some(slot) = slots.get(&id) {
            let _ = slot.events.send(EventFrame {
                event: event.to_owned(),
                data: frame["data"].clone(),
                seq: frame["seq"].as_u64(),
                run_id: frame["runId"].as_str().map(str::to_owned),
                run_seq: frame["runSeq"].as_u64(),
            });
        }
        return;
    }
    let Some(slot) = slots.remove(&id) else {
        return;
    };
    let reply = match frame.get("error") {
        Some(error) => Err(serde_json::from_value::<RpcError>(error.clone())
            .unwrap_or_else(|e| RpcError::internal(format!("malformed error reply {error}: {e}")))),
        None => Ok(frame.get("result").cloned().unwrap_or(Value::Null)),
    };
    let _ = slot.reply.send(reply);
}

impl<P: WsProtocol> Transport for WsTransport<P> {
    async fn start(&self, method: &'static str, params: Value) -> Result<PendingCall, ClientError> {
        let id = RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reply_tx, reply) = oneshot::channel();
        self.slots.lock().map_err(|_| ClientError::Closed)?.insert(
            id.clone(),
            Slot {
                events: events_tx,
                reply: reply_tx,
            },
        );
        let frame = serde_json::json!({ "id": id, "method": method, "params": params });
        self.outbound
            .send(Message::text(frame.to_string()))
            .map_err(|_| ClientError::Closed)?;
        Ok(PendingCall { id, events, reply })
    }
}

impl<P> Drop for WsTransport<P> {
    fn drop(&mut self) {
        let _ = self.outbound.send(Message::Close(None));
    }
}

/// A [`Transport`] that reconnects when its connection drops, and whose agent turns resume on
/// the new connection (decision resumable-runs): every `agent.send` carries an
/// `idempotencyKey` (one is added when missing) and names its session; when the connection
/// drops during the turn, the call rejoins it with `agent.attach` after the last `runSeq` it
/// received (or, before the first event, with the same keyed send), and events already
/// received are dropped by `runSeq`. The caller sees one stream, each event once, then the
/// reply. Other calls that were in flight fail with `Closed` (they are never sent twice); later
/// calls use a new connection.
pub struct ResumingWsTransport<P> {
    inner: Arc<Resuming<P>>,
}

impl<P> Clone for ResumingWsTransport<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

struct Resuming<P> {
    url: String,
    options: ConnectOptions,
    current: tokio::sync::Mutex<Option<Arc<WsTransport<P>>>>,
    /// Connection attempts per reconnect before a call gives up.
    max_attempts: u32,
    keys: AtomicU64,
}

impl<P> std::fmt::Debug for ResumingWsTransport<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumingWsTransport")
            .field("url", &self.inner.url)
            .finish_non_exhaustive()
    }
}

/// How a call rejoins its turn.
struct Resume {
    session_id: Value,
    run_id: Option<String>,
    last_seq: u64,
    send: Option<Value>,
}

impl Resume {
    fn rejoin(&self) -> (&'static str, Value) {
        match (&self.run_id, &self.send) {
            (None, Some(send)) => ("agent.send", send.clone()),
            (run_id, _) => {
                let mut params =
                    serde_json::json!({ "sessionId": self.session_id, "afterSeq": self.last_seq });
                if let Some(run_id) = run_id {
                    params["runId"] = Value::String(run_id.clone());
                }
                ("agent.attach", params)
            }
        }
    }
}

impl<P: WsProtocol> ResumingWsTransport<P> {
    /// Connects to `url`; reconnects with the same options when the connection drops.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let first = WsTransport::<P>::connect(url, options.clone()).await?;
        Ok(Self {
            inner: Arc::new(Resuming {
                url: url.to_owned(),
                options,
                current: tokio::sync::Mutex::new(Some(Arc::new(first))),
                max_attempts: 50,
                keys: AtomicU64::new(0),
            }),
        })
    }

    fn new_key(&self) -> String {
        let n = self.inner.keys.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("rs-{nanos:x}-{:x}-{n:x}", std::process::id())
    }
}

impl<P: WsProtocol> Resuming<P> {
    /// The open connection, or a new one.
    async fn transport(&self) -> Result<Arc<WsTransport<P>>, ClientError> {
        let mut current = self.current.lock().await;
        if let Some(t) = current.as_ref().filter(|t| t.is_open()) {
            return Ok(t.clone());
        }
        let mut last = ClientError::Closed;
        for attempt in 0..self.max_attempts {
            match WsTransport::<P>::connect(&self.url, self.options.clone()).await {
                Ok(t) => {
                    let t = Arc::new(t);
                    *current = Some(t.clone());
                    return Ok(t);
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(10u64 << attempt.min(7))).await;
        }
        Err(last)
    }
}

fn object(params: &mut Value) -> Result<&mut serde_json::Map<String, Value>, ClientError> {
    params
        .as_object_mut()
        .ok_or_else(|| ClientError::Transport("agent params must be an object".to_owned()))
}

impl<P: WsProtocol> Transport for ResumingWsTransport<P> {
    async fn start(
        &self,
        method: &'static str,
        mut params: Value,
    ) -> Result<PendingCall, ClientError> {
        let transport = self.inner.transport().await?;
        let resume = match method {
            "agent.send" => {
                let key = self.new_key();
                let session = {
                    let p = object(&mut params)?;
                    p.entry("idempotencyKey").or_insert(Value::String(key));
                    p.get("sessionId").or_else(|| p.get("session")).cloned()
                };
                // A rejoin must name the session: the connection's default one changes with
                // the connection.
                let session = match session {
                    Some(s) => s,
                    None => {
                        let info = transport.start("system.info", Value::Null).await?;
                        let info = info
                            .reply
                            .await
                            .map_err(|_| ClientError::Closed)?
                            .map_err(ClientError::Rpc)?;
                        info["sessionId"].clone()
                    }
                };
                let p = object(&mut params)?;
                p.remove("session");
                p.insert("sessionId".to_owned(), session.clone());
                Resume {
                    session_id: session,
                    run_id: None,
                    last_seq: 0,
                    send: Some(params.clone()),
                }
            }
            "agent.attach" => Resume {
                session_id: params["sessionId"].clone(),
                run_id: params["runId"].as_str().map(str::to_owned),
                last_seq: params["afterSeq"].as_u64().unwrap_or(0),
                send: None,
            },
            _ => return transport.start(method, params).await,
        };
        let call = transport.start(method, params).await?;
        let id = call.id.clone();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (reply_tx, reply) = oneshot::channel();
        tokio::spawn(follow(
            self.inner.clone(),
            call,
            resume,
            events_tx,
            reply_tx,
        ));
        Ok(PendingCall { id, events, reply })
    }
}

/// Forwards a turn's events (each `runSeq` once) and its reply; when the connection drops
/// before the reply, rejoins the turn on a new one from the last event seen.
async fn follow<P: WsProtocol>(
    inner: Arc<Resuming<P>>,
    mut call: PendingCall,
    mut resume: Resume,
    events_tx: mpsc::UnboundedSender<EventFrame>,
    reply_tx: oneshot::Sender<Result<Value, RpcError>>,
) {
    loop {
        while let Some(frame) = call.events.recv().await {
            if let Some(seq) = frame.run_seq {
                if seq <= resume.last_seq {
                    continue;
                }
                resume.last_seq = seq;
                if frame.run_id.is_some() {
                    resume.run_id.clone_from(&frame.run_id);
                }
            }
            let _ = events_tx.send(frame);
        }
        if let Ok(outcome) = call.reply.await {
            let _ = reply_tx.send(outcome);
            return;
        }
        // The connection dropped during the turn: rejoin it on a new one.
        let Ok(transport) = inner.transport().await else {
            return;
        };
        let (method, params) = resume.rejoin();
        match transport.start(method, params).await {
            Ok(next) => call = next,
            Err(_) => return,
        }
    }
}
