//! Ending a connection on the socket: the closing handshake in both directions (bounded, with
//! a lingering raw drain after it), the close code for a read that failed, and the refusal of a
//! connection whose authentication failed.

use std::net::SocketAddr;
use std::time::Duration;

use flynn_protocol::wire::{self, RpcError};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::info;

use crate::auth::AuthError;
use crate::inbound::{BudgetExhausted, BudgetedStream};

/// A connection's socket. Boxed: it is moved through several async layers, each of which would
/// keep a slot for it in its future (BENCHMARKS.md, finding 3).
pub type Socket = Box<WebSocketStream<BudgetedStream>>;

/// How long the peer has to answer a close frame once it was delivered. (How long the frame
/// may take to reach a peer that reads slowly is `server.close_delivery_timeout_ms`: it waits
/// behind what is already buffered.)
const CLOSE_ANSWER: Duration = Duration::from_secs(2);

/// Refuses an authenticated-later connection: one error frame (-4 or -5), then close 1008.
pub async fn refuse(mut ws: Socket, peer: SocketAddr, error: AuthError) {
    info!(%peer, error = %error, "websocket authentication failed");
    let frame = wire::error_reply(None, false, &RpcError::new(error.code(), error.to_string()));
    let _ = ws.send(Message::text(frame)).await;
    let _ = WebSocketStream::close(
        &mut *ws,
        Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "authentication failed".into(),
        }),
    )
    .await;
    drain_until_closed(ws).await;
}

/// Waits (bounded) for the peer's close reply so the close frame is really delivered.
async fn drain_until_closed(mut ws: Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

/// Sends a close frame, lets it reach the peer (bounded by `delivery`), and reads (bounded)
/// until the peer answers it, so the peer sees the code rather than a reset.
pub(super) async fn close_socket(ws: &mut Socket, code: u16, reason: String, delivery: Duration) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: truncate_reason(reason).into(),
    };
    let close = ws.send(Message::Close(Some(frame)));
    if tokio::time::timeout(delivery, close).await.is_err() {
        return;
    }
    drain_after_close(ws).await;
}

/// The peer sent a close frame: tungstenite has queued the answer (the same code); send it
/// (bounded by `delivery`) and end the connection (RFC 6455 section 5.5.1).
pub(super) async fn answer_close(ws: &mut Socket, delivery: Duration) {
    if tokio::time::timeout(delivery, ws.flush()).await.is_err() {
        return;
    }
    drain_after_close(ws).await;
}

/// Reads what the peer still sends until the closing handshake ends (bounded): closing the
/// socket with unread bytes would reset the connection, and a reset can destroy the close frame
/// before the peer reads it. When tungstenite stops reading early (an error after the close,
/// such as a frame it refuses), the rest is read raw after a FIN (a lingering close), so the
/// socket is dropped with nothing unread whenever the peer ends within the bound.
async fn drain_after_close(ws: &mut Socket) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = tokio::time::timeout(CLOSE_ANSWER, async {
        while let Some(Ok(_)) = ws.next().await {}
        let stream = ws.get_mut();
        let _ = stream.shutdown().await;
        let mut discard = [0u8; 2048];
        while let Ok(n) = stream.read(&mut discard).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// The close code for a read that failed, when the connection should be failed with one: 1002
/// for protocol errors, 1007 for text that is not UTF-8, 1009 for a frame over the limit, 1013
/// when the inbound memory budget is spent. `None` when the connection is simply gone.
pub(super) fn failure_close(
    error: &tokio_tungstenite::tungstenite::Error,
) -> Option<(u16, String)> {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match error {
        Error::Capacity(_) => Some((1009, "frame larger than server.max_frame_bytes".into())),
        Error::Utf8(_) => Some((1007, "a text frame is not valid UTF-8".into())),
        Error::Protocol(
            ProtocolError::ResetWithoutClosingHandshake
            | ProtocolError::SendAfterClosing
            | ProtocolError::ReceivedAfterClosing,
        ) => None,
        Error::Protocol(e) => Some((1002, format!("protocol error: {e}"))),
        Error::Io(e)
            if e.get_ref()
                .is_some_and(|inner| inner.is::<BudgetExhausted>()) =>
        {
            Some((1013, BudgetExhausted.to_string()))
        }
        _ => None,
    }
}

/// A close reason is at most 123 bytes (RFC 6455 section 5.5: control payloads of 125 bytes,
/// two of them the code).
fn truncate_reason(mut reason: String) -> String {
    if reason.len() > 123 {
        let mut end = 123;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}
