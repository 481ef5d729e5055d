//! `outbound::send_with_retry` against a local server that answers as platform APIs do: 429 with
//! `Retry-After`, 5xx, a connection cut before any response, then success; and a permanent 404
//! returned at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use flynn_gateway::outbound::{RetryPolicy, client, send_with_retry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Serves one scripted answer per connection: `None` cuts the connection without answering.
async fn scripted(answers: Vec<Option<&'static str>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v3/thing", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        for answer in answers {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            seen.fetch_add(1, Ordering::SeqCst);
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            if let Some(answer) = answer {
                let _ = socket.write_all(answer.as_bytes()).await;
            }
            drop(socket);
        }
    });
    (url, count)
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
const LIMITED: &str = "HTTP/1.1 429 Too Many Requests\r\nretry-after: 0\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const UNAVAILABLE: &str =
    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
const GONE: &str = "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";

fn quick() -> RetryPolicy {
    RetryPolicy {
        attempts: 4,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        // No scripted answer hangs: a per-attempt timeout here is only a liveness bound (a
        // loopback request slower than this under load would be retried and shift the script).
        timeout: Duration::from_secs(60),
    }
}

#[tokio::test]
async fn rate_limits_errors_and_cuts_are_retried_until_success() {
    let (url, count) = scripted(vec![Some(LIMITED), Some(UNAVAILABLE), None, Some(OK)]).await;
    let http = client().unwrap();
    let response = send_with_retry("test call", quick(), || http.post(&url).body("x"))
        .await
        .expect("the fourth attempt succeeds");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(count.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_permanent_status_is_returned_at_once() {
    let (url, count) = scripted(vec![Some(GONE), Some(OK)]).await;
    let http = client().unwrap();
    let response = send_with_retry("test call", quick(), || http.get(&url))
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(count.load(Ordering::SeqCst), 1, "a 404 is not retried");
}

#[tokio::test]
async fn the_last_5xx_is_returned_and_cuts_exhaust_with_a_clear_error() {
    let (url, _) = scripted(vec![Some(UNAVAILABLE); 4]).await;
    let http = client().unwrap();
    let response = send_with_retry("test call", quick(), || http.get(&url))
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "the caller sees the final status");

    let (url, count) = scripted(vec![None; 4]).await;
    let error = send_with_retry("posting a reply", quick(), || http.get(&url))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(
        error.contains("posting a reply") && error.contains("4 attempts"),
        "{error}"
    );
    assert!(!error.contains("127.0.0.1"), "no URL in the error: {error}");
}

#[tokio::test]
async fn a_redirect_is_returned_not_followed() {
    // The target a redirect names must never be called: an API or key URL the operator chose
    // cannot send the gateway to another host (its own network, say).
    let (target, reached) = scripted(vec![Some(OK)]).await;
    let redirect: &'static str = Box::leak(
        format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let (url, _) = scripted(vec![Some(redirect)]).await;
    let http = client().unwrap();
    let response = send_with_retry("test call", quick(), || http.post(&url).body("x"))
        .await
        .unwrap();
    assert_eq!(response.status(), 307);
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "the redirect target was called"
    );
}
