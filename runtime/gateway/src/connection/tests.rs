//! The transport on its own: a fake [`ConnectionService`] behind a real loopback WebSocket, no
//! `Gateway`. What the loop owes any service: requests reach it with their method, a request's
//! events reach the wire ahead of its reply and numbered from 1, a close the service asks for is
//! applied after the reply, and a closed connection has left the registry when the disconnect
//! hook runs (once) and its slot is released after.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flynn_protocol::Method;
use flynn_protocol::wire::{Call, Dispatched};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{ConnectionService, ConnectionState, Connections, Reserve, Settings, run};
use crate::auth::Identity;
use crate::inbound::InboundBudget;
use crate::tls::Transport;

struct Fake {
    registry: Arc<Connections>,
    methods: Mutex<Vec<Method>>,
    /// Per call of the hook: whether the connection was still in the registry.
    disconnects: Mutex<Vec<bool>>,
    /// Registered connections (the slot's count) seen by the hook.
    counted_at_disconnect: AtomicUsize,
}

impl ConnectionService for Fake {
    fn dispatch<'s>(
        &'s self,
        call: Call<ConnectionState>,
        method: Method,
        _params: Option<&RawValue>,
    ) -> Dispatched<'s> {
        self.methods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(method);
        Dispatched::Later(Box::pin(async move {
            // Pending on the first poll: the reply comes from the loop's in-flight set.
            tokio::task::yield_now().await;
            call.events.emit("delta", &serde_json::json!({ "n": 1 }));
            call.events.emit("delta", &serde_json::json!({ "n": 2 }));
            if method == Method::SystemDisconnect {
                call.connection.request_close(4000, "asked by the service");
            }
            flynn_protocol::wire::encode_reply(
                call.id(),
                call.jsonrpc(),
                &serde_json::json!({ "ok": true }),
            )
        }))
    }

    async fn on_disconnect(&self, connection: &ConnectionState) {
        let registered = self
            .registry
            .all()
            .iter()
            .any(|c| c.id() == &*connection.id);
        self.disconnects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(registered);
        self.counted_at_disconnect
            .store(self.registry.count(), Ordering::Release);
    }
}

/// The next text frame as JSON.
async fn next_json<S>(client: &mut S) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    // Liveness bounds here (60 s): they only say how long a failing test waits.
    let frame = tokio::time::timeout(Duration::from_secs(60), client.next())
        .await
        .expect("a frame within 60 s")
        .expect("the connection is open")
        .expect("a frame, not an error");
    match frame {
        Message::Text(text) => serde_json::from_str(text.as_str()).expect("a JSON frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_alone_behind_the_loop() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let registry = Arc::new(Connections::default());
    let fake = Arc::new(Fake {
        registry: registry.clone(),
        methods: Mutex::default(),
        disconnects: Mutex::default(),
        counted_at_disconnect: AtomicUsize::new(usize::MAX),
    });
    let server = {
        let fake = fake.clone();
        let registry = registry.clone();
        tokio::spawn(async move {
            let (tcp, peer) = listener.accept().await.expect("accept");
            let budget = InboundBudget::new(1 << 20, 64 << 10, Duration::from_secs(5));
            let config = crate::server::websocket_config(64 << 10);
            let ws = tokio_tungstenite::accept_async_with_config(
                budget.stream(Transport::Plain(tcp)),
                Some(config),
            )
            .await
            .expect("websocket handshake");
            let slot = registry.reserve(1).expect("a free slot");
            let settings = Settings {
                outbound_buffer_frames: 16,
                ping_interval: Duration::from_secs(30),
                write_stall: Duration::from_secs(10),
                close_delivery: Duration::from_secs(3),
                shutdown: CancellationToken::new(),
            };
            run(fake, Box::new(ws), peer, Identity::Open, slot, settings).await;
        })
    };
    let (mut client, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/"))
        .await
        .expect("connect");

    for (id, method, seq) in [(1, "system.info", 1), (2, "system.disconnect", 3)] {
        let request = format!(r#"{{"id":{id},"method":"{method}"}}"#);
        client.send(Message::text(request)).await.expect("send");
        for n in 0..2 {
            let event = next_json(&mut client).await;
            assert_eq!(event["event"], "delta", "{event}");
            assert_eq!(event["id"], id, "{event}");
            assert_eq!(event["seq"], seq + n, "events numbered in order: {event}");
            assert_eq!(event["data"]["n"], n + 1, "{event}");
        }
        let reply = next_json(&mut client).await;
        assert_eq!(reply["id"], id, "the reply after its events: {reply}");
        assert_eq!(reply["result"]["ok"], true, "{reply}");
    }
    // The close the service asked for, after the reply.
    match tokio::time::timeout(Duration::from_secs(60), client.next()).await {
        Ok(Some(Ok(Message::Close(Some(frame))))) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason.as_str(), "asked by the service");
        }
        other => panic!("expected the close frame 4000, got {other:?}"),
    }
    drop(client);
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the connection ends")
        .expect("the connection's task did not panic");

    let methods = fake.methods.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(*methods, [Method::SystemInfo, Method::SystemDisconnect]);
    let disconnects = fake.disconnects.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(
        *disconnects,
        [false],
        "the hook runs once, after the connection left the registry"
    );
    assert_eq!(
        fake.counted_at_disconnect.load(Ordering::Acquire),
        1,
        "the slot is held until the hook has run"
    );
    assert_eq!(registry.count(), 0, "the slot is released at the end");
}
