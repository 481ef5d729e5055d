//! The client side: what the generated `Client` needs from a [`Transport`], a call on its way
//! ([`PendingCall`]), and its events read one by one ([`Streaming`]).

use std::future::Future;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::RpcError;
use crate::ids::RequestId;
use crate::protocol::WireEvent;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The gateway answered with an error.
    #[error("the gateway answered with error {0}")]
    Rpc(RpcError),
    /// The connection could not be used.
    #[error("transport failed: {0}")]
    Transport(String),
    /// The connection closed before the reply arrived.
    #[error("the connection closed before the reply arrived")]
    Closed,
    /// The reply or an event did not match the spec's types.
    #[error("the reply does not match the spec: {0}")]
    Decode(#[from] serde_json::Error),
}

/// An event frame as received.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    pub event: String,
    pub data: Value,
    pub seq: Option<u64>,
    /// The turn the event belongs to, and its per-turn counter (decision resumable-runs).
    pub run_id: Option<String>,
    pub run_seq: Option<u64>,
}

/// A request on its way: its events as they arrive, then its reply.
#[derive(Debug)]
pub struct PendingCall {
    pub id: RequestId,
    pub events: mpsc::UnboundedReceiver<EventFrame>,
    pub reply: oneshot::Receiver<Result<Value, RpcError>>,
}

impl PendingCall {
    /// Waits for the reply, ignoring events, and decodes it.
    pub async fn finish<R: DeserializeOwned>(self) -> Result<R, ClientError> {
        match self.reply.await {
            Ok(Ok(value)) => Ok(serde_json::from_value(value)?),
            Ok(Err(error)) => Err(ClientError::Rpc(error)),
            Err(_) => Err(ClientError::Closed),
        }
    }

    /// The call as a stream of events of type `E` (the generated `Event`), then its reply.
    pub fn streaming<R, E>(self) -> Streaming<R, E> {
        Streaming {
            call: self,
            result: PhantomData,
        }
    }
}

/// A call whose events are read one by one before the reply.
#[derive(Debug)]
pub struct Streaming<R, E> {
    call: PendingCall,
    result: PhantomData<fn() -> (R, E)>,
}

impl<R: DeserializeOwned, E: WireEvent> Streaming<R, E> {
    pub fn id(&self) -> &RequestId {
        &self.call.id
    }

    /// The next event, decoded; `None` once the reply has arrived and every event was read.
    pub async fn next_event(&mut self) -> Option<Result<(E, Option<u64>), ClientError>> {
        let frame = self.call.events.recv().await?;
        Some(
            E::decode(&frame.event, frame.data)
                .map(|event| (event, frame.seq))
                .map_err(ClientError::from),
        )
    }

    /// Waits for the reply (events not yet read are dropped).
    pub async fn finish(self) -> Result<R, ClientError> {
        self.call.finish().await
    }
}

/// How the generated `Client` reaches a gateway.
pub trait Transport: Send + Sync {
    /// Sends a request and returns its pending events and reply.
    fn start(
        &self,
        method: &'static str,
        params: Value,
    ) -> impl Future<Output = Result<PendingCall, ClientError>> + Send;
}

/// Params as JSON for a transport.
pub fn to_params<T: Serialize>(params: &T) -> Result<Value, ClientError> {
    Ok(serde_json::to_value(params)?)
}
