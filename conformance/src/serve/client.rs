//! What a served client sends, as the player sees it: its frames and close forwarded as
//! [`FromClient`], whether its handshake presents the token, and its requests described and
//! normalized for comparison.

use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::types::Handshake;
use crate::ws;

pub(super) enum FromClient {
    Text(String),
    Close(Option<u16>),
}

pub(super) fn describe_request(frame: &Value) -> String {
    match (frame.get("method").and_then(Value::as_str), frame.get("id")) {
        (Some(m), Some(id)) => format!("request {id} (`{m}`)"),
        (Some(m), None) => format!("a `{m}` request"),
        _ => "the frame".to_owned(),
    }
}

/// Whether the handshake carries `token` (`Authorization: Bearer` or the `flynn.bearer.`
/// subprotocol).
pub(super) fn presents_token(handshake: &Handshake, token: &str) -> bool {
    let bearer = format!("Bearer {token}");
    let by_header = handshake
        .headers
        .iter()
        .any(|(h, v)| h.eq_ignore_ascii_case("authorization") && *v == bearer);
    let by_protocol = handshake
        .subprotocols
        .iter()
        .any(|p| *p == format!("flynn.bearer.{}", ws::base64url(token)));
    by_header || by_protocol
}

/// Forwards the client's text frames and close to the player, tagged with the connection
/// name; a dropped connection is a close without a code.
pub(super) async fn forward_client(
    mut stream: SplitStream<WebSocketStream<TcpStream>>,
    tx: mpsc::UnboundedSender<(String, FromClient)>,
    tag: String,
) {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Text(text)) => {
                let _ = tx.send((tag.clone(), FromClient::Text(text.as_str().to_owned())));
            }
            Ok(Message::Close(frame)) => {
                let _ = tx.send((
                    tag.clone(),
                    FromClient::Close(frame.map(|f| u16::from(f.code))),
                ));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let _ = tx.send((tag, FromClient::Close(None)));
}

/// Params absent, `null`, `[]` and `{}` mean the same (all become `{}`, so a difference inside
/// params is reported at its own path).
pub(super) fn normalize_request(frame: &Value) -> Value {
    let Value::Object(map) = frame else {
        return frame.clone();
    };
    let mut out: Map<String, Value> = map.clone();
    let no_params = match out.get("params") {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    if no_params && out.contains_key("method") {
        out.insert("params".into(), Value::Object(Map::new()));
    }
    Value::Object(out)
}
