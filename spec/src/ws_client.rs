//! A tokio-tungstenite [`Transport`] for the generated [`crate::Client`]: one connection,
//! requests multiplexed by id, events routed to the request they belong to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::wire::{ClientError, EventFrame, PendingCall, RequestId, RpcError, Transport};

/// The subprotocol every Flynn WebSocket offers; the gateway selects it.
pub const SUBPROTOCOL: &str = "flynn.v1";
/// Prefix of the subprotocol entry that carries a bearer token for clients that cannot set
/// headers (browsers): `flynn.bearer.<base64url(token), no padding>`.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "flynn.bearer.";

/// The `Sec-WebSocket-Protocol` entry carrying `token`.
pub fn bearer_subprotocol(token: &str) -> String {
    format!(
        "{BEARER_SUBPROTOCOL_PREFIX}{}",
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

/// A connected WebSocket transport. Dropping it closes the connection.
pub struct WsTransport {
    outbound: mpsc::UnboundedSender<Message>,
    slots: Slots,
    next_id: AtomicI64,
}

impl std::fmt::Debug for WsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTransport").finish_non_exhaustive()
    }
}

fn transport_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Transport(e.to_string())
}

impl WsTransport {
    /// Connects to `url` (`ws://127.0.0.1:18800/`).
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        let mut request = url.into_client_request().map_err(transport_err)?;
        let headers = request.headers_mut();
        let mut protocols = vec![SUBPROTOCOL.to_owned()];
        if let Some(token) = &options.token {
            if options.token_as_subprotocol {
                protocols.push(bearer_subprotocol(token));
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
        tokio::spawn(async move {
            while let Some(Ok(message)) = source.next().await {
                if let Message::Text(text) = message {
                    route(&reader_slots, text.as_str());
                }
            }
            // Connection gone: dropping the slots fails every pending call with `Closed`.
            if let Ok(mut slots) = reader_slots.lock() {
                slots.clear();
            }
        });
        Ok(Self {
            outbound,
            slots,
            next_id: AtomicI64::new(1),
        })
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

impl Transport for WsTransport {
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

impl Drop for WsTransport {
    fn drop(&mut self) {
        let _ = self.outbound.send(Message::Close(None));
    }
}
