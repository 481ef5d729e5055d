//! The OpenAI-compatible provider against a local server replaying chat-completions streams.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Notify;

use crate::support::{
    Framing, LIVENESS, MockServer, Part, Script, assert_well_formed, drain, fixture, text_of,
};
use flynn_models::{
    CancellationToken, ChatMessage, ChatRequest, ImagePart, Provider, ProviderConfig,
    ProviderError, ProviderKind, Secret, StreamEvent, Timeouts, ToolCall, ToolSpec, build_provider,
};

fn provider_with(base_url: &str, key: Option<&str>, timeouts: Timeouts) -> Arc<dyn Provider> {
    build_provider(&ProviderConfig {
        kind: ProviderKind::Openai,
        base_url: Some(base_url.to_owned()),
        model: Some("gpt-4o-mini".into()),
        api_key: key.map(Secret::new),
        context_window: Some(128_000),
        timeouts,
        ..ProviderConfig::default()
    })
    .unwrap()
}

fn provider(base_url: &str) -> Arc<dyn Provider> {
    provider_with(base_url, Some("sk-test-123"), Timeouts::default())
}

fn hello() -> ChatRequest {
    ChatRequest {
        system: Some("You are terse.".into()),
        messages: vec![ChatMessage::user("Hello")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn streams_text_then_usage_and_sends_the_documented_request() {
    let mut server = MockServer::start(
        "/v1",
        vec![Script::sse_per_event(&fixture("openai/text.sse"))],
    )
    .await;
    let provider = provider(&server.base_url);
    assert_eq!(provider.name(), "openai");
    assert_eq!(provider.context_window(), 128_000);
    let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    let deltas: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::TextDelta(_)))
        .collect();
    assert_eq!(deltas.len(), 9, "one delta per non-empty content chunk");
    assert_eq!(text_of(&events), "Hello! How can I help you today?");
    assert_eq!(
        events[events.len() - 2..],
        [
            StreamEvent::Usage {
                input_tokens: 9,
                output_tokens: 12
            },
            StreamEvent::Finished {
                stop_reason: "end_turn".into()
            }
        ]
    );

    let request = server.request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test-123"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(
        request.json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hello"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[tokio::test]
async fn accumulates_tool_call_deltas_split_across_chunks() {
    // 5-byte pieces: lines, JSON and the argument fragments are all split at odd places.
    let mut server = MockServer::start(
        "/v1",
        vec![Script::sse(&fixture("openai/tool_calls.sse"), 5)],
    )
    .await;
    let earlier_call = ToolCall {
        id: "call_prev".into(),
        name: "get_weather".into(),
        arguments: json!({"location": "Oslo"}),
    };
    let mut user = ChatMessage::user("Weather and time in Paris?");
    user.images.push(ImagePart {
        mime_type: "image/png".into(),
        data_base64: "iVBORw0KGgo=".into(),
    });
    let request = ChatRequest {
        model: "gpt-4o".into(),
        system: None,
        messages: vec![
            ChatMessage::user("Weather in Oslo?"),
            ChatMessage::assistant("", vec![earlier_call]),
            ChatMessage::tool_result("call_prev", "rain, 4C"),
            ChatMessage::assistant("Rainy.", vec![]),
            user,
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Current weather".into(),
            input_schema: json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
        }]
        .into(),
        max_output_tokens: Some(256),
    };
    let (events, error) =
        drain(provider(&server.base_url).stream(request, CancellationToken::new())).await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall(ToolCall {
                id: "call_DdmO9pD3xa9XTPNJ32zg2hcA".into(),
                name: "get_weather".into(),
                arguments: json!({"location": "Paris, France"}),
            }),
            StreamEvent::ToolCall(ToolCall {
                id: "call_Kz3lq0mcuYVcWq8tSn9aYxB4".into(),
                name: "get_time".into(),
                arguments: json!({"tz": "CET"}),
            }),
            StreamEvent::Usage {
                input_tokens: 82,
                output_tokens: 41
            },
            StreamEvent::Finished {
                stop_reason: "tool_use".into()
            },
        ]
    );

    let body = server.request().await.json();
    assert_eq!(
        body["model"], "gpt-4o",
        "the request's model overrides the configured one"
    );
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["tools"],
        json!([{
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
            }
        }])
    );
    assert_eq!(
        body["messages"][1],
        json!({
            "role": "assistant",
            "content": null,
            "tool_calls": [{"id": "call_prev", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Oslo\"}"}}]
        })
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_prev", "content": "rain, 4C"})
    );
    assert_eq!(
        body["messages"][4]["content"],
        json!([
            {"type": "text", "text": "Weather and time in Paris?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
        ])
    );
}

#[tokio::test]
async fn ollama_style_stream_without_key_usage_or_done_is_accepted() {
    let mut script = Script::sse_per_event(&fixture("openai/ollama_no_done.sse"));
    script.framing = Framing::CloseDelimited;
    let mut server = MockServer::start("/v1", vec![script]).await;
    let provider = provider_with(&server.base_url, None, Timeouts::default());
    let request = hello();
    let expected_input = flynn_models::estimate_request_tokens(&request);
    let (events, error) = drain(provider.stream(request, CancellationToken::new())).await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    assert_eq!(text_of(&events), "Sure.");
    assert_eq!(
        events[events.len() - 2],
        StreamEvent::Usage {
            input_tokens: expected_input,
            output_tokens: 2
        },
        "no usage from the server: an estimate"
    );
    assert_eq!(server.request().await.header("authorization"), None);
}

#[tokio::test]
async fn http_401_is_unauthorized_with_the_api_message() {
    let body = r#"{"error": {"message": "Incorrect API key provided: sk-test***123.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}"#;
    let server = MockServer::start("/v1", vec![Script::json(401, body)]).await;
    let (events, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert_eq!(
        error,
        ProviderError::Unauthorized {
            status: 401,
            message: "Incorrect API key provided: sk-test***123.".into()
        }
    );
    assert!(error.to_string().contains("check the API key"), "{error}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn http_429_carries_retry_after() {
    let body = r#"{"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}"#;
    let server = MockServer::start(
        "/v1",
        vec![Script::json(429, body).with_header("retry-after", "20")],
    )
    .await;
    let (_, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    let error = error.expect("an error");
    assert_eq!(
        error,
        ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(20)),
            message: "Rate limit reached for requests".into()
        }
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn http_500_and_404_are_server_and_request_errors() {
    let server = MockServer::start(
        "/v1",
        vec![
            Script::json(500, r#"{"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}"#),
            Script::json(404, r#"{"error":"model \"llama9\" not found, try pulling it first"}"#),
        ],
    )
    .await;
    let provider = provider(&server.base_url);
    let (_, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert_eq!(
        error,
        Some(ProviderError::Server {
            status: 500,
            message: "The server had an error while processing your request.".into()
        })
    );
    let (_, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    let error = error.expect("an error");
    assert!(
        matches!(error, ProviderError::BadRequest { status: 404, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("try pulling it first"),
        "{error}"
    );
}

#[tokio::test]
async fn a_stream_cut_mid_way_is_stream_cut() {
    // Chunked body that stops without its terminating chunk: hyper reports a body error.
    let chunked = Script::sse_per_event(&fixture("openai/cut.sse")).then(Part::Cut);
    // Close-delimited body that simply ends: a clean EOF, but before finish_reason and [DONE].
    let mut close_delimited = Script::sse_per_event(&fixture("openai/cut.sse"));
    close_delimited.framing = Framing::CloseDelimited;
    let server = MockServer::start("/v1", vec![chunked, close_delimited]).await;
    let provider = provider(&server.base_url);
    for framing in ["chunked", "close-delimited"] {
        let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
        assert_eq!(text_of(&events), "Once upon a time", "{framing}");
        let error = error.expect("an error");
        assert!(
            matches!(error, ProviderError::StreamCut { .. }),
            "{framing}: {error}"
        );
        assert!(error.is_retryable());
    }
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let body = b"data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\n\n";
    let server = MockServer::start("/v1", vec![Script::sse(body, 1000)]).await;
    let (events, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    assert_eq!(text_of(&events), "Hi");
    let error = error.expect("an error");
    assert!(matches!(error, ProviderError::Decode { .. }), "{error}");
    assert!(error.to_string().contains("not valid JSON"), "{error}");
}

#[tokio::test]
async fn a_json_reply_instead_of_a_stream_is_a_decode_error() {
    let body = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}]}"#;
    let server = MockServer::start("/v1", vec![Script::json(200, body)]).await;
    let (_, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    let error = error.expect("an error");
    assert!(
        error.to_string().contains("not support streaming"),
        "{error}"
    );
}

#[tokio::test]
async fn cancel_during_a_slow_stream_closes_the_connection() {
    let body = fixture("openai/text.sse");
    let first_event_end = body.windows(2).position(|w| w == b"\n\n").unwrap() + 2;
    let second_event_end = first_event_end
        + body[first_event_end..]
            .windows(2)
            .position(|w| w == b"\n\n")
            .unwrap()
        + 2;
    // Headers, the role chunk and "Hello", then the server stalls until the client goes away.
    let script = Script {
        parts: vec![Part::Bytes(body[..second_event_end].to_vec()), Part::Hold],
        ..Script::sse(b"", 1)
    };
    let mut server = MockServer::start("/v1", vec![script]).await;
    let cancel = CancellationToken::new();
    let mut rx = provider(&server.base_url).stream(hello(), cancel.clone());
    let first = rx.recv().await.expect("an item").expect("an event");
    assert_eq!(first, StreamEvent::TextDelta("Hello".into()));

    // The server holds the stream until the client goes away: only the cancel can end it, so
    // the waits below are liveness bounds, not speed tests.
    cancel.cancel();
    let next = tokio::time::timeout(LIVENESS, rx.recv())
        .await
        .expect("the cancellation is reported");
    assert_eq!(next, Some(Err(ProviderError::Cancelled)));
    assert_eq!(rx.recv().await, None, "nothing after Cancelled");
    server.client_closed().await;
}

#[tokio::test]
async fn dropping_the_receiver_closes_the_connection() {
    let gate = Arc::new(Notify::new());
    let script = Script::sse(b"", 1).then(Part::Gate(gate)).then(Part::Hold);
    let mut server = MockServer::start("/v1", vec![script]).await;
    let mut rx = provider(&server.base_url).stream(hello(), CancellationToken::new());
    // The request is in flight (the server has it) before the receiver goes away. The receiver
    // drives the call, so it is polled meanwhile; the server sends nothing yet.
    tokio::select! {
        _ = server.request() => {}
        item = rx.recv() => panic!("the server sent nothing, yet the stream gave {item:?}"),
    }
    drop(rx);
    server.client_closed().await;
}

#[tokio::test]
async fn silence_between_chunks_hits_the_idle_timeout() {
    // The stream's text must arrive before the idle timeout fires: an upper bound on the mock
    // server's pace, so a precondition, not an assertion. An attempt where the timeout came
    // first (a loaded machine: nothing streamed in `idle_ms`) says nothing, and a longer timeout
    // is tried; the timeout's lower bound is checked in every attempt.
    for idle_ms in [200, 800, 3_200, 12_800] {
        if idle_timeout_attempt(idle_ms).await {
            return;
        }
        eprintln!("the text did not arrive within the {idle_ms} ms idle timeout; a longer one");
    }
    panic!("the stream's text never arrived before the idle timeout, up to 12.8 s");
}

/// One attempt of `silence_between_chunks_hits_the_idle_timeout`; false when the stream's text
/// had not all arrived when the idle timeout fired (inconclusive).
async fn idle_timeout_attempt(idle_ms: u64) -> bool {
    let script = Script::sse(&fixture("openai/cut.sse"), 10_000).then(Part::Hold);
    let server = MockServer::start("/v1", vec![script]).await;
    let timeouts = Timeouts {
        idle_ms,
        ..Timeouts::default()
    };
    let provider = provider_with(&server.base_url, Some("k"), timeouts);
    let started = Instant::now();
    let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert_eq!(
        error,
        Some(ProviderError::Timeout {
            phase: "waiting for the next chunk of the stream",
            after: Duration::from_millis(idle_ms)
        })
    );
    // The server holds the stream forever after the last chunk: ending at all (within drain's
    // liveness bound) is the idle timeout's doing; it cannot come before `idle_ms`.
    assert!(
        started.elapsed() >= Duration::from_millis(idle_ms),
        "{:?}",
        started.elapsed()
    );
    text_of(&events) == "Once upon a time"
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_first_byte_timeout() {
    // Accepts the connection and reads the request, but never sends headers.
    let gate = Arc::new(Notify::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        gate.notified().await;
        drop(socket);
    });
    let timeouts = Timeouts {
        first_byte_ms: 300,
        ..Timeouts::default()
    };
    let provider = provider_with(&format!("http://{addr}/v1"), None, timeouts);
    let (_, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert_eq!(
        error,
        Some(ProviderError::Timeout {
            phase: "waiting for the response headers",
            after: Duration::from_millis(300)
        })
    );
    held.abort();
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let provider = provider(&format!("http://{addr}/v1"));
    let (_, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    let error = error.expect("an error");
    assert!(matches!(error, ProviderError::Transport { .. }), "{error}");
    assert!(error.to_string().contains("check `base_url`"), "{error}");
}
