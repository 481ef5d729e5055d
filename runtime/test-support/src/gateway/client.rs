//! The typed test client: the generated `flynn_protocol::Client` over its WebSocket transport,
//! with a raw call on the same connection for what the types cannot say (a param out of range,
//! a role the configuration refuses), so a test about one connection's state needs one client.

use std::fmt::Debug;
use std::ops::Deref;

use flynn_protocol::Client;
use flynn_protocol::wire::{ClientError, RpcError, Transport};
use flynn_protocol::ws_client::{ConnectOptions, WsTransport};
use serde_json::{Value, json};

/// The generated client on one WebSocket connection; derefs to `flynn_protocol::Client`.
pub struct TestClient {
    client: Client<WsTransport>,
}

impl Deref for TestClient {
    type Target = Client<WsTransport>;

    fn deref(&self) -> &Self::Target {
        &self.client
    }
}

impl TestClient {
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<Self, ClientError> {
        Ok(Self {
            client: Client::new(WsTransport::connect(url, options).await?),
        })
    }

    /// An untyped call on this connection, answered as the reply frame carries it:
    /// `{"result": ..}` or `{"error": {code, message, data}}`.
    pub async fn raw(&self, method: &'static str, params: Value) -> Value {
        let pending = self
            .client
            .transport()
            .start(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method}: the request could not be sent: {e}"));
        match pending.reply.await {
            Ok(Ok(result)) => json!({ "result": result }),
            Ok(Err(error)) => json!({ "error": error }),
            Err(_) => panic!("{method}: the connection closed before the reply"),
        }
    }
}

/// The protocol error of a typed call that was expected to fail (the test fails when it
/// succeeded, or failed otherwise than with an error reply).
pub fn rpc_error<T: Debug>(result: Result<T, ClientError>) -> RpcError {
    match result {
        Err(ClientError::Rpc(error)) => error,
        other => panic!("expected an error reply, got {other:?}"),
    }
}
