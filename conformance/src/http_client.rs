//! A plain HTTP/1.1 client for `http` steps (hyper's connection-level client over one TCP
//! connection per request): it sends exactly the headers the step names (plus `Host` from the
//! target URL unless the step sets its own, and `Content-Length`), so a conformance step can
//! send a `Host` a browser-grade client would refuse to, and nothing is added behind its back.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The largest response body read (the gateway's `/metrics` is under 100 KiB); a larger one is
/// an error rather than unbounded memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Target(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("the request cannot be built: {0}")]
    Build(String),
    #[error("the HTTP exchange failed: {0}")]
    Exchange(String),
    #[error("no complete answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// An answer.
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    /// Names lowercase, in the order received (a repeated header appears repeatedly).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// A header's value; repeated headers joined with `, ` (RFC 9110 section 5.3).
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// `host:port` of a `ws://` or `http://` URL; TLS (`wss://`, `https://`) is not spoken.
pub fn authority_of(url: &str) -> Result<String, HttpError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| HttpError::Target(format!("bad URL {url}: {e}")))?;
    match uri.scheme_str() {
        Some("ws") | Some("http") => {}
        Some("wss") | Some("https") => {
            return Err(HttpError::Target(format!(
                "{url}: run speaks plain HTTP and WebSocket only; test a TLS gateway through a plain listener"
            )));
        }
        _ => {
            return Err(HttpError::Target(format!(
                "{url}: the URL must start with ws:// or http://"
            )));
        }
    }
    let authority = uri
        .authority()
        .ok_or_else(|| HttpError::Target(format!("{url}: the URL names no host")))?;
    Ok(match authority.port_u16() {
        Some(_) => authority.as_str().to_owned(),
        None => format!("{}:80", authority.host()),
    })
}

/// Sends one request to the gateway at `url` (its path is replaced by `path`) and reads the
/// whole answer within `timeout`.
pub async fn send(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
    timeout: Duration,
) -> Result<HttpAnswer, HttpError> {
    let authority = authority_of(url)?;
    tokio::time::timeout(
        timeout,
        exchange(&authority, method, path, headers, body.unwrap_or_default()),
    )
    .await
    .map_err(|_| HttpError::Timeout(timeout))?
}

async fn exchange(
    authority: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<HttpAnswer, HttpError> {
    let mut builder = http::Request::builder().method(method).uri(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        builder = builder.header(http::header::HOST, authority);
    }
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| HttpError::Build(e.to_string()))?;
    let stream = TcpStream::connect(authority)
        .await
        .map_err(|source| HttpError::Connect {
            addr: authority.to_owned(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Exchange(e.to_string()))?;
    let driver = tokio::spawn(connection);
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| HttpError::Exchange(e.to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                HttpError::Exchange(format!(
                    "reading the body (at most {MAX_BODY_BYTES} bytes): {e}"
                ))
            })?
            .to_bytes()
            .to_vec();
        Ok(HttpAnswer {
            status,
            headers,
            body,
        })
    }
    .await;
    driver.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_plain_http_or_ws() {
        assert_eq!(
            authority_of("ws://127.0.0.1:18800/").unwrap(),
            "127.0.0.1:18800"
        );
        assert_eq!(authority_of("http://localhost/x").unwrap(), "localhost:80");
        let e = authority_of("wss://127.0.0.1:1/").unwrap_err();
        assert!(e.to_string().contains("plain HTTP"), "{e}");
        assert!(authority_of("ftp://x/").is_err());
    }

    /// Accepts one connection, keeps the request head it read, answers `answer`.
    async fn one_shot(answer: &'static str) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut chunk = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut chunk).await.unwrap();
                head.extend_from_slice(&chunk[..n]);
            }
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).to_lowercase()
        });
        (url, task)
    }

    #[tokio::test]
    async fn sends_exactly_the_given_headers_and_reads_the_answer() {
        let (url, seen) = one_shot(
            "HTTP/1.1 418 I'm a teapot\r\nx-a: 1\r\nX-A: 2\r\ncontent-length: 2\r\n\r\nhi",
        )
        .await;
        let headers = [("Host".to_owned(), "evil.example".to_owned())];
        let answer = send(
            &url,
            "GET",
            "/x?y=1",
            &headers,
            None,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 418);
        assert_eq!(answer.header("X-a").as_deref(), Some("1, 2"));
        assert_eq!(answer.body, b"hi");
        let head = seen.await.unwrap();
        assert!(head.starts_with("get /x?y=1 http/1.1\r\n"), "{head}");
        assert!(head.contains("host: evil.example\r\n"), "{head}");
        assert_eq!(head.matches("host:").count(), 1, "{head}");
        assert!(
            !head.contains("authorization") && !head.contains("user-agent"),
            "{head}"
        );

        let (url, seen) = one_shot("HTTP/1.1 204 No Content\r\n\r\n").await;
        let authority = authority_of(&url).unwrap();
        let answer = send(
            &url,
            "POST",
            "/",
            &[],
            Some(b"{}".to_vec()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 204);
        let head = seen.await.unwrap();
        assert!(head.contains(&format!("host: {authority}\r\n")), "{head}");
        assert!(head.contains("content-length: 2\r\n"), "{head}");
    }
}
