//! The Anthropic provider against a local server replaying Messages streams.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::{
    LIVENESS, MockServer, Part, Script, assert_well_formed, drain, fixture, text_of,
};
use flynn_models::{
    CancellationToken, ChatMessage, ChatRequest, ImagePart, Provider, ProviderConfig,
    ProviderError, ProviderKind, Secret, StreamEvent, ToolCall, ToolSpec, build_provider,
};

fn provider(base_url: &str) -> Arc<dyn Provider> {
    build_provider(&ProviderConfig {
        kind: ProviderKind::Anthropic,
        base_url: Some(base_url.to_owned()),
        model: Some("claude-opus-4-6".into()),
        api_key: Some(Secret::new("sk-ant-test")),
        ..ProviderConfig::default()
    })
    .unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest {
        system: Some("You are terse.".into()),
        messages: vec![ChatMessage::user("Hello")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn streams_text_with_usage_and_sends_the_documented_request() {
    let mut server = MockServer::start(
        "",
        vec![Script::sse_per_event(&fixture("anthropic/text.sse"))],
    )
    .await;
    let provider = provider(&server.base_url);
    assert_eq!(provider.name(), "anthropic");
    assert_eq!(provider.context_window(), 200_000);
    let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta("Hello".into()),
            StreamEvent::TextDelta("! How can I".into()),
            StreamEvent::TextDelta(" help you today?".into()),
            StreamEvent::Usage {
                input_tokens: 25,
                output_tokens: 15
            },
            StreamEvent::Finished {
                stop_reason: "end_turn".into()
            },
        ]
    );

    let request = server.request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/messages");
    assert_eq!(request.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "model": "claude-opus-4-6",
            "max_tokens": 4096,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
            "stream": true
        })
    );
}

#[tokio::test]
async fn tool_use_input_json_deltas_split_across_chunks() {
    // 7-byte pieces split events, lines and the escaped JSON fragments.
    let mut server =
        MockServer::start("", vec![Script::sse(&fixture("anthropic/tool_use.sse"), 7)]).await;
    let mut photo = ChatMessage::user("And what is in this photo?");
    photo.images.push(ImagePart {
        mime_type: "image/jpeg".into(),
        data_base64: "/9j/4AAQ".into(),
    });
    let request = ChatRequest {
        model: String::new(),
        system: None,
        messages: vec![
            ChatMessage::user("Weather in Oslo?"),
            ChatMessage::assistant(
                "Checking.",
                vec![ToolCall {
                    id: "toolu_prev".into(),
                    name: "get_weather".into(),
                    arguments: json!({"location": "Oslo"}),
                }],
            ),
            ChatMessage::tool_result("toolu_prev", "rain, 4C"),
            photo,
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Get the current weather in a given location".into(),
            input_schema: json!({"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}),
        }]
        .into(),
        max_output_tokens: Some(1024),
    };
    let (events, error) =
        drain(provider(&server.base_url).stream(request, CancellationToken::new())).await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    assert_eq!(
        text_of(&events),
        "Okay, let's check the weather for San Francisco, CA:"
    );
    let calls: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCall(_)))
        .collect();
    assert_eq!(
        calls,
        vec![&StreamEvent::ToolCall(ToolCall {
            id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "San Francisco, CA", "unit": "fahrenheit"}),
        })]
    );
    assert_eq!(
        events[events.len() - 2..],
        [
            StreamEvent::Usage {
                input_tokens: 472 + 10 + 18,
                output_tokens: 89
            },
            StreamEvent::Finished {
                stop_reason: "tool_use".into()
            }
        ]
    );

    let body = server.request().await.json();
    assert_eq!(body["max_tokens"], 1024);
    assert!(body.get("system").is_none());
    assert_eq!(
        body["tools"],
        json!([{
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}
        }])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_prev", "name": "get_weather", "input": {"location": "Oslo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_prev", "content": "rain, 4C"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                {"type": "text", "text": "And what is in this photo?"}
            ]}
        ])
    );
}

#[tokio::test]
async fn http_errors_map_to_their_variants() {
    let server = MockServer::start(
        "",
        vec![
            Script::json(401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#),
            Script::json(429, r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#)
                .with_header("retry-after", "3"),
            Script::json(500, r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#),
            Script::json(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        ],
    )
    .await;
    let provider = provider(&server.base_url);
    let mut errors = Vec::new();
    for _ in 0..4 {
        let (events, error) = drain(provider.stream(hello(), CancellationToken::new())).await;
        assert!(events.is_empty());
        errors.push(error.expect("an error"));
    }
    assert_eq!(
        errors,
        vec![
            ProviderError::Unauthorized {
                status: 401,
                message: "invalid x-api-key".into()
            },
            ProviderError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
                message: "Number of request tokens has exceeded your per-minute rate limit".into()
            },
            ProviderError::Server {
                status: 500,
                message: "Internal server error".into()
            },
            ProviderError::Server {
                status: 529,
                message: "Overloaded".into()
            },
        ]
    );
}

#[tokio::test]
async fn an_error_event_mid_stream_ends_the_stream() {
    let server = MockServer::start(
        "",
        vec![Script::sse_per_event(&fixture("anthropic/overloaded.sse"))],
    )
    .await;
    let (events, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    assert_eq!(events, vec![StreamEvent::TextDelta("Partial".into())]);
    assert_eq!(
        error,
        Some(ProviderError::Server {
            status: 529,
            message: "Overloaded".into()
        })
    );
}

#[tokio::test]
async fn a_stream_cut_before_message_stop_is_stream_cut() {
    let script = Script::sse_per_event(&fixture("anthropic/cut.sse")).then(Part::Cut);
    let server = MockServer::start("", vec![script]).await;
    let (events, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    assert_eq!(text_of(&events), "Hello! How can I help you today?");
    let error = error.expect("an error");
    assert!(matches!(error, ProviderError::StreamCut { .. }), "{error}");
}

#[tokio::test]
async fn malformed_json_is_a_decode_error() {
    let body = b"event: message_start\ndata: {\"type\": \"message_start\", \"message\": {\"usage\": {\"input_tokens\": 3\n\n";
    let server = MockServer::start("", vec![Script::sse(body, 1000)]).await;
    let (_, error) =
        drain(provider(&server.base_url).stream(hello(), CancellationToken::new())).await;
    let error = error.expect("an error");
    assert!(matches!(error, ProviderError::Decode { .. }), "{error}");
}

#[tokio::test]
async fn cancel_during_a_slow_stream_closes_the_connection() {
    let body = fixture("anthropic/text.sse");
    let text = String::from_utf8(body).unwrap();
    // message_start, content_block_start, ping and the first text delta; then the server stalls.
    let head: String = text.split_inclusive("\n\n").take(4).collect();
    let script = Script {
        parts: vec![Part::Bytes(head.into_bytes()), Part::Hold],
        ..Script::sse(b"", 1)
    };
    let mut server = MockServer::start("", vec![script]).await;
    let cancel = CancellationToken::new();
    let mut rx = provider(&server.base_url).stream(hello(), cancel.clone());
    assert_eq!(
        rx.recv().await,
        Some(Ok(StreamEvent::TextDelta("Hello".into())))
    );
    // The server holds the stream until the client goes away: only the cancel can end it, so
    // the waits below are liveness bounds, not speed tests.
    cancel.cancel();
    let next = tokio::time::timeout(LIVENESS, rx.recv())
        .await
        .expect("the cancellation is reported");
    assert_eq!(next, Some(Err(ProviderError::Cancelled)));
    server.client_closed().await;
}

#[tokio::test]
async fn a_cancelled_token_sends_no_request() {
    let cancel = CancellationToken::new();
    cancel.cancel();
    // Nothing listens here: if a request were attempted the error would be Transport.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (events, error) = drain(provider(&format!("http://{addr}")).stream(hello(), cancel)).await;
    assert!(events.is_empty());
    assert_eq!(error, Some(ProviderError::Cancelled));
}
