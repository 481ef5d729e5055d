//! Agent turns that do not come from a WebSocket request: webhooks, chat channels and anything
//! else the gateway receives over HTTP. They go through the same lanes (queue modes, one run per
//! session) as `agent.send`, and their events are kept for `agent.attach`, so a WebSocket client
//! can follow a turn it did not start.

use std::sync::Arc;

use flynn_protocol::wire::{EventEmitter, EventJson, EventSink, RequestId, RpcError};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::gateway::Gateway;
use flynn_agent::lanes::{Pending, Reply, Requester, UserMessage};

/// A message that arrived over HTTP and becomes a turn.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// The session the turn runs on (`webhook:<name>`, `teams:<conversation>`, ...); checked
    /// by [`start_turn`] with the protocol's session id rules.
    pub session_id: String,
    pub text: String,
    /// Who sent it, shown in presence (a hook's name, a chat user); never a secret.
    pub sender_name: Option<String>,
    /// Whether the turn may call tools. A message from outside the operator's own clients is
    /// `false` unless its configuration says otherwise (decision scopes: tools need `operator`).
    pub may_use_tools: bool,
}

/// Events of an inbound turn: nobody holds a WebSocket request for them. Implement it to see
/// them as they happen (a test, a channel that streams); [`Discard`] drops them (they are still
/// kept in the run's log for `agent.attach`).
pub trait InboundEvents: Send + Sync {
    fn event(&self, event: &'static str, data: &Value);

    /// The event as encoded for the wire; by default parsed back for [`InboundEvents::event`].
    /// Observers that drop events override it so nothing is parsed.
    fn encoded_event(&self, event: &'static str, data: &EventJson) {
        self.event(event, &data.to_value());
    }
}

/// Drops every event.
pub struct Discard;

impl InboundEvents for Discard {
    fn event(&self, _: &'static str, _: &Value) {}
    fn encoded_event(&self, _: &'static str, _: &EventJson) {}
}

struct Sink(Arc<dyn InboundEvents>);

impl EventSink for Sink {
    fn send_event(&self, _: &RequestId, _: bool, event: &'static str, data: EventJson) {
        self.0.encoded_event(event, &data);
    }
}

/// A turn handed to the session's lane. Await [`StartedTurn::reply`] for its outcome, or drop
/// it: the turn runs to its end either way and its messages are stored.
pub struct StartedTurn {
    pub session_id: String,
    pub reply: oneshot::Receiver<Reply>,
}

/// Queues `message` as a turn on its session, with the session's queue policy (or the
/// configured one for the session's channel prefix).
pub async fn start_turn(
    gateway: &Arc<Gateway>,
    message: InboundMessage,
    events: Arc<dyn InboundEvents>,
) -> Result<StartedTurn, RpcError> {
    start_turn_from(gateway, message, None, events).await
}

/// [`start_turn`] for a message whose sender is not the session's user part (a chat channel's
/// conversation with several people): presence counts it for `presence_sender`.
pub async fn start_turn_from(
    gateway: &Arc<Gateway>,
    message: InboundMessage,
    presence_sender: Option<String>,
    events: Arc<dyn InboundEvents>,
) -> Result<StartedTurn, RpcError> {
    crate::session_id::validate_session_id(&message.session_id, "sessionId")?;
    if message.text.trim().is_empty() {
        return Err(RpcError::invalid(
            "message",
            "the message is empty; nothing to send to the agent",
        ));
    }
    let session_id = message.session_id;
    let policy = gateway.queue_policy(&session_id).await.unwrap_or_else(|| {
        gateway
            .config()
            .queue_policy_for(flynn_store::split_session_id(&session_id).0)
    });
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        message: UserMessage {
            text: message.text,
            attachments: Vec::new(),
            may_use_tools: message.may_use_tools,
            sender_name: message.sender_name,
            presence_sender,
        },
        requester: Requester {
            events: EventEmitter::new(RequestId::String(String::new()), Arc::new(Sink(events))),
            reply,
            steered: false,
            key: None,
        },
    };
    gateway.lanes.submit(&session_id, policy, pending);
    Ok(StartedTurn {
        session_id,
        reply: answer,
    })
}
