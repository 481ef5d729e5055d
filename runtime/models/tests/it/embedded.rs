//! The embedded model: one test per directive, plus the protocol guarantees every stream keeps.

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::json;
use tokio::sync::mpsc::error::TryRecvError;

use crate::support::{assert_well_formed, collected_ok, drain, text_of};
use flynn_models::{
    CancellationToken, ChatMessage, ChatRequest, EmbeddedProvider, ImagePart, PNG_1X1_BASE64,
    Provider, ProviderConfig, ProviderError, StreamEvent, ToolCall, build_provider, collect,
    estimate_request_tokens, estimate_tokens,
};

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::user(text)],
        ..ChatRequest::default()
    }
}

async fn run(
    provider: &dyn Provider,
    request: ChatRequest,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    drain(provider.stream(request, CancellationToken::new())).await
}

#[tokio::test]
async fn default_reply_echoes_in_three_word_chunks_with_estimated_usage() {
    let provider = build_provider(&ProviderConfig::default()).unwrap();
    assert_eq!(provider.name(), "embedded");
    assert_eq!(provider.model(), "flynn-embedded");
    assert_eq!(provider.context_window(), 8192);
    let request = ask("the quick brown fox jumps over the lazy dog");
    let input = estimate_request_tokens(&request);
    let (events, error) = run(provider.as_ref(), request).await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    let expected = "You said: the quick brown fox jumps over the lazy dog";
    assert_eq!(
        events,
        vec![
            StreamEvent::TextDelta("You said: the ".into()),
            StreamEvent::TextDelta("quick brown fox ".into()),
            StreamEvent::TextDelta("jumps over the ".into()),
            StreamEvent::TextDelta("lazy dog".into()),
            StreamEvent::Usage {
                input_tokens: input,
                output_tokens: estimate_tokens(expected)
            },
            StreamEvent::Finished {
                stop_reason: "end_turn".into()
            },
        ]
    );
}

#[tokio::test]
async fn replies_are_deterministic() {
    let provider = EmbeddedProvider::default();
    let request = ask("same [[long:40]] [[attach:text/plain a.txt]]");
    let first = run(&provider, request.clone()).await;
    let second = run(&provider, request).await;
    assert_eq!(first, second);
}

#[tokio::test]
async fn echo_directive_quotes_the_text_without_directives() {
    let provider = EmbeddedProvider::default();
    let answer = collected_ok(
        collect(provider.stream(
            ask("[[echo]] hello [[long:3]] there"),
            CancellationToken::new(),
        ))
        .await,
    );
    assert_eq!(answer.text, "You said: hello there lorem ipsum dolor");
    // Only the last user message counts.
    let request = ChatRequest {
        messages: vec![
            ChatMessage::user("[[fail:old]]"),
            ChatMessage::assistant("ok", vec![]),
            ChatMessage::user("new"),
        ],
        ..ChatRequest::default()
    };
    let answer = collected_ok(collect(provider.stream(request, CancellationToken::new())).await);
    assert_eq!(answer.text, "You said: new");
}

#[tokio::test]
async fn tool_directive_calls_the_tool_then_answers_with_its_output() {
    let provider = EmbeddedProvider::default();
    let question = ChatMessage::user("list it [[tool:shell.exec {\"command\": \"ls -1\"}]]");
    let (events, error) = run(
        &provider,
        ChatRequest {
            messages: vec![question.clone()],
            ..ChatRequest::default()
        },
    )
    .await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    let call = ToolCall {
        id: "call_emb_1_0".into(),
        name: "shell.exec".into(),
        arguments: json!({"command": "ls -1"}),
    };
    assert_eq!(events[0], StreamEvent::ToolCall(call.clone()));
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finished {
            stop_reason: "tool_use".into()
        })
    );

    // The agent loop runs the tool and sends the result back.
    let follow_up = ChatRequest {
        messages: vec![
            question,
            ChatMessage::assistant("", vec![call]),
            ChatMessage::tool_result("call_emb_1_0", "Cargo.toml\nsrc"),
        ],
        ..ChatRequest::default()
    };
    let answer = collected_ok(collect(provider.stream(follow_up, CancellationToken::new())).await);
    assert!(answer.tool_calls.is_empty());
    assert_eq!(answer.stop_reason, "end_turn");
    assert_eq!(answer.text, "Tool shell.exec returned: Cargo.toml\nsrc.");
}

#[tokio::test]
async fn several_tool_directives_give_several_calls_in_one_turn() {
    let provider = EmbeddedProvider::default();
    let request = ChatRequest {
        messages: vec![
            ChatMessage::user("first"),
            ChatMessage::assistant("You said: first", vec![]),
            ChatMessage::user("[[tool:a]] [[tool:b {\"n\": [[1]]}]]"),
        ],
        ..ChatRequest::default()
    };
    let answer =
        collected_ok(collect(provider.stream(request.clone(), CancellationToken::new())).await);
    assert_eq!(
        answer.tool_calls,
        vec![
            ToolCall {
                id: "call_emb_2_0".into(),
                name: "a".into(),
                arguments: json!({})
            },
            ToolCall {
                id: "call_emb_2_1".into(),
                name: "b".into(),
                arguments: json!({"n": [[1]]})
            },
        ]
    );
    let mut answered = request;
    answered
        .messages
        .push(ChatMessage::assistant("", answer.tool_calls.clone()));
    answered
        .messages
        .push(ChatMessage::tool_result("call_emb_2_0", "A"));
    answered
        .messages
        .push(ChatMessage::tool_result("call_emb_2_1", "B"));
    let answer = collected_ok(collect(provider.stream(answered, CancellationToken::new())).await);
    assert_eq!(answer.text, "Tool a returned: A. Tool b returned: B.");
}

#[tokio::test]
async fn attach_directive_emits_a_valid_payload() {
    let provider = EmbeddedProvider::default();
    let (events, error) = run(
        &provider,
        ask("[[attach:image/png dot.png]] [[attach:text/plain]]"),
    )
    .await;
    assert_eq!(error, None);
    assert_well_formed(&events);
    assert_eq!(
        text_of(&events),
        "Attached dot.png (image/png). Attached a file (text/plain)."
    );
    let attachments: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Attachment { .. }))
        .collect();
    assert_eq!(attachments.len(), 2);
    let StreamEvent::Attachment {
        mime_type,
        data_base64,
        filename,
    } = attachments[0]
    else {
        unreachable!()
    };
    assert_eq!(mime_type, "image/png");
    assert_eq!(filename.as_deref(), Some("dot.png"));
    assert_eq!(data_base64, PNG_1X1_BASE64);
    let png = base64::engine::general_purpose::STANDARD
        .decode(data_base64)
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let StreamEvent::Attachment {
        data_base64: text, ..
    } = attachments[1]
    else {
        unreachable!()
    };
    let text = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "Attachment file from the Flynn embedded model.\n"
    );
}

#[tokio::test]
async fn long_directive_produces_n_words_streamed_in_many_chunks() {
    let provider = EmbeddedProvider::default();
    let answer =
        collected_ok(collect(provider.stream(ask("[[long:300]]"), CancellationToken::new())).await);
    assert_eq!(answer.text.split_whitespace().count(), 300);
    assert_eq!(answer.text_deltas, 100);
    assert_eq!(answer.output_tokens, estimate_tokens(&answer.text));
    assert!(answer.output_tokens > 300, "{}", answer.output_tokens);
}

#[tokio::test]
async fn delay_directive_spaces_chunks_and_cancel_interrupts_the_wait() {
    let provider = EmbeddedProvider::default();
    // Spacing: 9 words = 3 chunks, 40 ms before each of the last two and before the end.
    let started = Instant::now();
    let (events, error) = run(
        &provider,
        ask("[[delay:40]] one two three four five six seven"),
    )
    .await;
    assert_eq!(error, None);
    assert_eq!(
        text_of(&events),
        "You said: one two three four five six seven"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(120),
        "{:?}",
        started.elapsed()
    );

    // Cancel while it waits a minute (the longest delay) before the second chunk.
    let cancel = CancellationToken::new();
    let mut rx = provider.stream(ask("[[delay:60000]] a b c d e f"), cancel.clone());
    assert_eq!(
        rx.recv().await,
        Some(Ok(StreamEvent::TextDelta("You said: a ".into())))
    );
    let cancelled_at = Instant::now();
    cancel.cancel();
    assert_eq!(rx.recv().await, Some(Err(ProviderError::Cancelled)));
    assert_eq!(rx.recv().await, None);
    // A liveness bound, not a speed test: a stream that finished its wait before seeing the
    // cancel would take a minute; one interrupted in the wait takes microseconds, even loaded.
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(30),
        "the cancel did not interrupt the wait: {:?}",
        cancelled_at.elapsed()
    );
}

/// A cancel that comes while the caller's task is parked in `recv` (the call waits) wakes it:
/// the cancellation's wakeup reaches the task that polls the call, not only the next `recv`.
#[tokio::test]
async fn a_cancel_wakes_a_caller_parked_in_recv() {
    let provider = EmbeddedProvider::default();
    let cancel = CancellationToken::new();
    let mut rx = provider.stream(ask("[[delay:60000]] a b c d e f"), cancel.clone());
    assert_eq!(
        rx.recv().await,
        Some(Ok(StreamEvent::TextDelta("You said: a ".into())))
    );
    let (parked_tx, parked) = tokio::sync::oneshot::channel();
    let caller = tokio::spawn(async move {
        let mut parked_tx = Some(parked_tx);
        // Polled once (the call starts its minute's wait), then parked.
        let next = std::future::poll_fn(|cx| {
            let poll = rx.poll_recv(cx);
            if let Some(tx) = parked_tx.take() {
                let _ = tx.send(poll.is_pending());
            }
            poll
        })
        .await;
        (next, rx.recv().await)
    });
    assert_eq!(parked.await, Ok(true), "the call should be waiting");
    cancel.cancel();
    // A liveness bound, not a speed test: a caller the cancel did not wake waits a minute.
    let ended = tokio::time::timeout(Duration::from_secs(30), caller).await;
    let Ok(Ok((next, last))) = ended else {
        panic!("the cancel did not wake the caller parked in recv: {ended:?}");
    };
    assert_eq!(next, Some(Err(ProviderError::Cancelled)));
    assert_eq!(last, None);
}

#[tokio::test]
async fn fail_directive_errors_after_the_first_chunk() {
    let provider = EmbeddedProvider::default();
    let (events, error) = run(
        &provider,
        ask("[[fail:model exploded]] tell me a story please"),
    )
    .await;
    assert_eq!(
        events,
        vec![StreamEvent::TextDelta("You said: tell ".into())]
    );
    assert_eq!(
        error,
        Some(ProviderError::Upstream {
            message: "model exploded".into()
        })
    );
}

#[tokio::test]
async fn images_are_acknowledged() {
    let provider = EmbeddedProvider::default();
    let mut message = ChatMessage::user("what is this");
    for mime_type in ["image/jpeg", "image/png"] {
        message.images.push(ImagePart {
            mime_type: mime_type.into(),
            data_base64: "AAAA".into(),
        });
    }
    let mut request = ChatRequest {
        messages: vec![message],
        ..ChatRequest::default()
    };
    let answer =
        collected_ok(collect(provider.stream(request.clone(), CancellationToken::new())).await);
    assert_eq!(
        answer.text,
        "I received 2 images (image/jpeg, image/png). You said: what is this"
    );
    request.messages[0].images.truncate(1);
    let answer = collected_ok(collect(provider.stream(request, CancellationToken::new())).await);
    assert!(
        answer.text.starts_with("I received 1 image (image/jpeg)."),
        "{}",
        answer.text
    );
}

#[tokio::test]
async fn a_prompt_beyond_the_context_window_is_rejected() {
    let provider = EmbeddedProvider::new("tiny", 50);
    let (events, error) = run(&provider, ask(&"word ".repeat(100))).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert!(
        matches!(error, ProviderError::BadRequest { status: 400, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("context window is 50"),
        "{error}"
    );
}

#[tokio::test]
async fn max_output_tokens_cuts_the_text() {
    let provider = EmbeddedProvider::default();
    let mut request = ask("[[long:100]] [[attach:image/png]]");
    request.max_output_tokens = Some(10);
    let answer = collected_ok(collect(provider.stream(request, CancellationToken::new())).await);
    assert_eq!(answer.stop_reason, "max_tokens");
    assert_eq!(answer.text.chars().count(), 40);
    assert!(answer.attachments.is_empty());
    assert_eq!(answer.output_tokens, 10);
}

#[tokio::test]
async fn a_bad_directive_is_a_bad_request_showing_the_right_form() {
    let provider = EmbeddedProvider::default();
    let (_, error) = run(&provider, ask("[[long:many]]")).await;
    let error = error.expect("an error");
    assert!(matches!(error, ProviderError::BadRequest { .. }), "{error}");
    assert!(error.to_string().contains("[[long:200]]"), "{error}");
}

#[tokio::test]
async fn the_call_runs_in_the_receivers_task_and_ends_with_it() {
    let provider = EmbeddedProvider::default();
    let mut rx = provider.stream(ask("[[delay:30000]] a b c d e f"), CancellationToken::new());
    assert_eq!(
        rx.recv().await,
        Some(Ok(StreamEvent::TextDelta("You said: a ".into())))
    );
    // The call waits 30 s before chunk two inside the receiver, polled by its `recv`: no task
    // of its own is left behind to stop when the receiver goes away.
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(metrics.num_alive_tasks(), 0, "no task runs the call");
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    drop(rx);
    assert_eq!(metrics.num_alive_tasks(), 0);
}

#[test]
fn outside_a_runtime_the_stream_reports_why() {
    let provider = EmbeddedProvider::default();
    let mut rx = provider.stream(ask("hi"), CancellationToken::new());
    let item = rx.try_recv().expect("one item");
    let error = item.expect_err("an error");
    assert!(error.to_string().contains("tokio runtime"), "{error}");
}

#[tokio::test]
async fn a_short_answer_is_queued_whole_and_a_long_one_streams_neither_from_a_task() {
    let provider = EmbeddedProvider::default();
    let metrics = tokio::runtime::Handle::current().metrics();
    let mut rx = provider.stream(ask("one two three four"), CancellationToken::new());
    assert_eq!(metrics.num_alive_tasks(), 0, "no task for a short answer");
    // Every item is there at once, still one chunk of three words each.
    let mut items = Vec::new();
    while let Ok(item) = rx.try_recv() {
        items.push(item.expect("no error"));
    }
    assert_eq!(
        items[..2],
        [
            StreamEvent::TextDelta("You said: one ".into()),
            StreamEvent::TextDelta("two three four".into())
        ]
    );
    assert!(matches!(items[2], StreamEvent::Usage { .. }), "{items:?}");
    assert!(
        matches!(items[3], StreamEvent::Finished { .. }),
        "{items:?}"
    );
    assert_eq!(items.len(), 4);

    // More chunks than are queued whole: streamed by the receiver, still without a task.
    let mut rx = provider.stream(ask("[[long:300]]"), CancellationToken::new());
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "a long answer is not queued whole"
    );
    assert_eq!(metrics.num_alive_tasks(), 0, "no task for a long answer");
    let answer = collected_ok(collect(rx).await);
    assert_eq!(answer.text_deltas, 100);
}
