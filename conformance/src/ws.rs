//! WebSocket plumbing shared by the modes: a client connection whose incoming frames, close and
//! errors are delivered as tagged [`Incoming`] messages on one channel per transcript (so a step
//! can wait on every connection at once), and the token substitutions of `connect` lines.

use base64::Engine as _;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Something that happened on a connection.
#[derive(Debug, Clone)]
pub enum Incoming {
    Text(String),
    /// A binary frame (the protocol has none), with its length.
    Binary(usize),
    /// The peer's close frame (`None`: closed without a code, or the TCP connection dropped).
    Closed {
        code: Option<u16>,
        reason: String,
    },
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the HTTP handshake was refused with status {status}{}", body_suffix(.body))]
    Http { status: u16, body: String },
    #[error("{0}")]
    Other(String),
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// The sending half of a client connection; incoming traffic goes to the channel given to
/// [`connect`].
#[derive(Debug)]
pub struct ClientConn {
    outbound: mpsc::UnboundedSender<Message>,
    /// The subprotocol the server selected.
    pub protocol: Option<String>,
}

impl ClientConn {
    /// Queues a text frame; false when the connection is gone.
    pub fn send_text(&self, text: String) -> bool {
        self.outbound.send(Message::text(text)).is_ok()
    }

    /// Starts the close handshake.
    pub fn close(&self, code: u16) -> bool {
        self.outbound
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "".into(),
            })))
            .is_ok()
    }
}

/// Opens `url` (with `path` replacing its path when given) and forwards everything it receives
/// to `events` tagged with `tag`.
pub async fn connect<T: Clone + Send + 'static>(
    url: &str,
    path: Option<&str>,
    headers: &[(String, String)],
    subprotocols: Option<&[String]>,
    tag: T,
    events: mpsc::UnboundedSender<(T, Incoming)>,
) -> Result<ClientConn, ConnectError> {
    let target = match path {
        Some(p) => with_path(url, p),
        None => url.to_owned(),
    };
    let request = handshake_request(&target, headers, subprotocols)?;
    let (stream, response) = match tokio_tungstenite::connect_async(request).await {
        Ok(ok) => ok,
        Err(WsError::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            return Err(ConnectError::Http { status, body });
        }
        Err(e) => {
            return Err(ConnectError::Other(format!(
                "cannot connect to {target}: {e}"
            )));
        }
    };
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (sink, source) = stream.split();
    let (outbound, outbound_rx) = mpsc::unbounded_channel::<Message>();
    tokio::spawn(write_outbound(sink, outbound_rx));
    tokio::spawn(read_incoming(source, tag, events));
    Ok(ClientConn { outbound, protocol })
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The handshake request for `target` with `headers` and the offered `subprotocols`.
fn handshake_request(
    target: &str,
    headers: &[(String, String)],
    subprotocols: Option<&[String]>,
) -> Result<Request, ConnectError> {
    let mut request = target
        .into_client_request()
        .map_err(|e| ConnectError::Other(format!("bad URL {target}: {e}")))?;
    let map = request.headers_mut();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| ConnectError::Other(format!("bad header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| ConnectError::Other(format!("bad value for header {name}: {e}")))?;
        map.insert(name, value);
    }
    if let Some(protocols) = subprotocols.filter(|p| !p.is_empty()) {
        let value = HeaderValue::from_str(&protocols.join(", "))
            .map_err(|e| ConnectError::Other(format!("bad subprotocol list: {e}")))?;
        map.insert("sec-websocket-protocol", value);
    }
    Ok(request)
}

/// Sends what [`ClientConn`] queues, until a close is sent or the connection is gone.
async fn write_outbound(
    mut sink: SplitSink<Stream, Message>,
    mut outbound_rx: mpsc::UnboundedReceiver<Message>,
) {
    while let Some(message) = outbound_rx.recv().await {
        let closing = matches!(message, Message::Close(_));
        if sink.send(message).await.is_err() || closing {
            break;
        }
    }
}

/// Delivers text, binary and the close to `events`; a connection that drops without a close
/// frame is delivered as a close without a code.
async fn read_incoming<T: Clone>(
    mut source: SplitStream<Stream>,
    tag: T,
    events: mpsc::UnboundedSender<(T, Incoming)>,
) {
    let mut closed = false;
    while let Some(message) = source.next().await {
        match message {
            Ok(Message::Text(text)) if !closed => {
                let _ = events.send((tag.clone(), Incoming::Text(text.as_str().to_owned())));
            }
            Ok(Message::Binary(bytes)) if !closed => {
                let _ = events.send((tag.clone(), Incoming::Binary(bytes.len())));
            }
            Ok(Message::Close(frame)) if !closed => {
                closed = true;
                let (code, reason) = match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.as_str().to_owned()),
                    None => (None, String::new()),
                };
                let _ = events.send((tag.clone(), Incoming::Closed { code, reason }));
                // Keep reading so tungstenite answers the close; nothing else follows.
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    if !closed {
        let _ = events.send((
            tag,
            Incoming::Closed {
                code: None,
                reason: String::new(),
            },
        ));
    }
}

/// `url` with its path (and query) replaced by `path`.
pub fn with_path(url: &str, path: &str) -> String {
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    match url.find("://") {
        Some(scheme_end) => {
            let rest = &url[scheme_end + 3..];
            let host_end = rest.find('/').map_or(url.len(), |i| scheme_end + 3 + i);
            format!("{}{path}", &url[..host_end])
        }
        None => format!("{url}{path}"),
    }
}

/// base64url without padding, as in the `flynn.bearer.` subprotocol entry.
pub fn base64url(text: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Replaces `${TOKEN}` and `${TOKEN_B64URL}`; `None` when the text needs a token and none is
/// known.
pub fn expand_token(text: &str, token: Option<&str>) -> Option<String> {
    if !text.contains("${TOKEN") {
        return Some(text.to_owned());
    }
    let token = token?;
    Some(
        text.replace("${TOKEN_B64URL}", &base64url(token))
            .replace("${TOKEN}", token),
    )
}

/// The reverse of [`expand_token`], for `record`.
pub fn hide_token(text: &str, token: Option<&str>) -> String {
    match token.filter(|t| !t.is_empty()) {
        Some(t) => text
            .replace(&base64url(t), "${TOKEN_B64URL}")
            .replace(t, "${TOKEN}"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_tokens() {
        assert_eq!(with_path("ws://127.0.0.1:1/", "/x"), "ws://127.0.0.1:1/x");
        assert_eq!(with_path("ws://127.0.0.1:1", "x"), "ws://127.0.0.1:1/x");
        assert_eq!(with_path("ws://h:1/a/b?q", "/c"), "ws://h:1/c");
        assert_eq!(
            expand_token("Bearer ${TOKEN}", Some("t0k")).as_deref(),
            Some("Bearer t0k")
        );
        assert_eq!(expand_token("Bearer ${TOKEN}", None), None);
        assert_eq!(expand_token("plain", None).as_deref(), Some("plain"));
        let sub = expand_token("flynn.bearer.${TOKEN_B64URL}", Some("conformance-token")).unwrap();
        assert_eq!(
            hide_token(&sub, Some("conformance-token")),
            "flynn.bearer.${TOKEN_B64URL}"
        );
        assert_eq!(
            hide_token("Bearer conformance-token", Some("conformance-token")),
            "Bearer ${TOKEN}"
        );
    }
}
