//! A stand-in for an OpenAI-compatible chat-completions API, run in the load process, for the
//! `stream --model-server` variant: the gateway's model is then a real HTTP provider (reqwest,
//! SSE decoding, JSON chunks) instead of the embedded model.
//!
//! Every call is answered the way a fast API streams: the same answer as the embedded model's
//! `[[long:N]]` (chunks of three words), as `chat.completion.chunk` events, written
//! `EVENTS_PER_WRITE` to a TCP write (one HTTP chunk each) with a scheduler yield between writes.
//! The embedded model's one chunk per yield is the worst case for coalescing; this is the usual
//! one (a real API sends several SSE events per segment when tokens come fast). The request
//! body is read and ignored.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::BenchError;

/// SSE events per TCP write.
pub const EVENTS_PER_WRITE: usize = 8;
/// Words per delta, as the embedded model's chunks.
const WORDS_PER_DELTA: usize = 3;
/// Largest request head read (the bench's prompts are small).
const MAX_HEAD: usize = 64 * 1024;

/// The server; stops when dropped.
pub struct SseServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl SseServer {
    /// Listens on 127.0.0.1 and a free port; each call streams an answer of `words` words.
    pub async fn start(words: usize) -> Result<Self, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::io("cannot bind the model server", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::io("cannot read the model server's address", e))?;
        let body = std::sync::Arc::new(answer_writes(words));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve(stream, &body).await {
                        tracing::debug!(error = %e, "model server connection ended");
                    }
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The API root for the gateway's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for SseServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers the requests of one keep-alive connection until the client closes it.
async fn serve(mut stream: TcpStream, writes: &[Vec<u8>]) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    while read_request(&mut stream, &mut buf).await? {
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  transfer-encoding: chunked\r\n\r\n",
            )
            .await?;
        for write in writes {
            stream.write_all(write).await?;
            tokio::task::yield_now().await;
        }
    }
    Ok(())
}

/// Reads one request (head and `content-length` body) into `buf`; false at a clean close.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(false);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(true)
}

/// The response body, cut into the TCP writes it is sent in (each one HTTP chunk holding
/// `EVENTS_PER_WRITE` SSE events; the last also ends the body).
fn answer_writes(words: usize) -> Vec<Vec<u8>> {
    let text: Vec<String> = (0..words).map(|i| format!("word{i} ")).collect();
    let mut events: Vec<String> = text
        .chunks(WORDS_PER_DELTA)
        .map(|delta| {
            let chunk = serde_json::json!({
                "object": "chat.completion.chunk",
                "choices": [{ "index": 0, "delta": { "content": delta.concat() } }],
            });
            format!("data: {chunk}\n\n")
        })
        .collect();
    let stop = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [{ "index": 0, "delta": {}, "finish_reason": "stop" }],
    });
    let usage = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": { "prompt_tokens": 16, "completion_tokens": words },
    });
    events.push(format!("data: {stop}\n\ndata: {usage}\n\ndata: [DONE]\n\n"));
    let mut writes: Vec<Vec<u8>> = events
        .chunks(EVENTS_PER_WRITE)
        .map(|group| {
            let data = group.concat();
            format!("{:x}\r\n{data}\r\n", data.len()).into_bytes()
        })
        .collect();
    if let Some(last) = writes.last_mut() {
        last.extend_from_slice(b"0\r\n\r\n");
    }
    writes
}
