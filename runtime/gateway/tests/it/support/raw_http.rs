//! Raw HTTP and WebSocket handshakes for tests that must see status codes, response headers or
//! the bytes on the wire (what a browser or a misbehaving client would see), where the `Ws`
//! client of `support` hides them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::Response;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a raw read waits before the test fails.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One HTTP response.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// `GET path` over a fresh connection (`Connection: close`), with extra headers.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut bytes = Vec::new();
    tokio::time::timeout(RAW_TIMEOUT, stream.read_to_end(&mut bytes))
        .await
        .expect("response within the timeout")
        .expect("read response");
    parse_response(&bytes)
}

/// Parses a response read off the wire.
pub fn parse_response_bytes(bytes: &[u8]) -> HttpReply {
    parse_response(bytes)
}

fn parse_response(bytes: &[u8]) -> HttpReply {
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let mut lines = head.lines();
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    HttpReply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// A WebSocket handshake with extra headers, returning the server's handshake response too.
pub async fn ws_handshake(
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(WsStream, Response<Option<Vec<u8>>>), tokio_tungstenite::tungstenite::Error> {
    let mut request = url.into_client_request()?;
    for (k, v) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            v.parse().expect("header value"),
        );
    }
    tokio_tungstenite::connect_async(request).await
}

/// The HTTP status and body of a refused WebSocket upgrade.
pub async fn refused_upgrade(url: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    match ws_handshake(url, headers).await {
        Ok(_) => panic!("the upgrade was accepted; expected an HTTP refusal"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).unwrap_or(Value::Null))
                .unwrap_or(Value::Null);
            (status, body)
        }
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
    }
}

/// A WebSocket upgrade done by hand over a TCP stream: after it, the test owns the raw bytes
/// (and so decides whether pings are ever answered).
pub async fn raw_upgrade(addr: SocketAddr) -> TcpStream {
    raw_upgrade_sending(addr, &[]).await
}

/// Like `raw_upgrade`, but `early` (client frames) goes out in the same write as the upgrade
/// request, before the server's answer: a client that does not wait for the 101.
pub async fn raw_upgrade_sending(addr: SocketAddr, early: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
    let mut request = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .into_bytes();
    request.extend_from_slice(early);
    stream.write_all(&request).await.expect("write upgrade");
    // Read byte by byte up to the end of the headers so no frame byte is consumed.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(RAW_TIMEOUT, stream.read(&mut byte))
            .await
            .expect("handshake response within the timeout")
            .expect("read handshake");
        assert!(n == 1, "connection closed during the handshake: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "expected 101 Switching Protocols, got {head}"
    );
    stream
}

/// A client-to-server text frame (clients must mask; the mask is fixed, any mask is valid).
pub fn masked_text_frame(text: &str) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let payload = text.as_bytes();
    let mut frame = vec![0x81];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n => {
            let n = u16::try_from(n).expect("test frames stay under 64 KiB");
            frame.push(0x80 | 126);
            frame.extend_from_slice(&n.to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// One server-to-client frame read from a raw stream (servers never mask).
#[derive(Debug)]
pub struct RawFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 0x8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Reads one frame; `None` at end of stream.
pub async fn read_raw_frame(stream: &mut TcpStream) -> Option<RawFrame> {
    let mut header = [0u8; 2];
    stream.read_exact(&mut header).await.ok()?;
    let opcode = header[0] & 0x0f;
    let len = match header[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            stream.read_exact(&mut b).await.ok()?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            stream.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut payload = vec![0u8; usize::try_from(len).ok()?];
    stream.read_exact(&mut payload).await.ok()?;
    Some(RawFrame { opcode, payload })
}
