//! `record` against the real daemon: a client driven through the proxy (a draft transcript
//! played loosely) is written as a transcript whose volatile values are matchers; that
//! transcript validates and replays strictly against a fresh gateway.

use crate::support;

use std::path::Path;
use std::sync::Arc;

use flynn_conformance::record::{RecordOptions, Recorder};
use flynn_conformance::report::Failure;
use flynn_conformance::run::{RunOptions, run_transcript};
use flynn_conformance::spec::Spec;
use flynn_conformance::transcript::Transcript;
use flynn_conformance::validate::validate;
use support::{Gateway, KNOWN_BUGS};

const DRAFT: &str = r#"{"type":"header","name":"draft"}
{"type":"send","frame":{"id":1,"method":"system.info"}}
{"type":"expect","frame":{"id":1}}
{"type":"send","frame":{"id":2,"method":"sessions.create","params":{}}}
{"type":"expect","frame":{"id":2,"result":{"sessionId":{"$capture":"s"}}}}
{"type":"send","frame":{"id":3,"method":"sessions.get","params":{"sessionId":{"$ref":"s"}}}}
{"type":"expect","frame":{"id":3}}
{"type":"send","frame":{"id":4,"method":"pairing.generate","params":{"channel":"telegram"}}}
{"type":"expect","frame":{"id":4}}
{"type":"send","frame":{"id":5,"method":"agent.send","params":{"message":"hello there"}}}
{"type":"expect","frame":{"id":5}}
{"type":"send","raw":"{oops"}
{"type":"expect","frame":{"id":null}}
"#;

/// Failures a known gateway bug explains are tolerated (the recording keeps what happened).
fn unexplained<'a>(name: &str, failures: &'a [Failure]) -> Vec<&'a Failure> {
    failures
        .iter()
        .filter(|f| !KNOWN_BUGS.iter().any(|b| (b.matches)(name, f)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_exchange_is_generalized_and_replays_against_a_fresh_gateway() {
    let spec = Arc::new(Spec::load().unwrap());
    let upstream = Gateway::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("recorded.jsonl");
    let recorder = Recorder::bind(RecordOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: upstream.url.clone(),
        out: out.clone(),
        name: None,
        description: Some("A recording made by the record test.".into()),
        token: None,
    })
    .await
    .unwrap();
    let proxy = format!("ws://{}/", recorder.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let recording = tokio::spawn(recorder.run(spec.clone(), async {
        let _ = stopped.await;
    }));

    let draft = Transcript::parse(Path::new("draft.jsonl"), DRAFT).unwrap();
    let mut loose = RunOptions::new(proxy);
    loose.loose = true;
    let driven = run_transcript(&spec, &draft, &loose).await;
    assert!(driven.failures.is_empty(), "{:?}", driven.failures);
    stop.send(()).unwrap();
    let wire = recording.await.unwrap().unwrap();
    assert!(
        unexplained("draft", &wire.transcripts[0].failures).is_empty(),
        "{}",
        wire.to_text()
    );
    upstream.stop().await;

    let text = std::fs::read_to_string(&out).unwrap();
    let recorded = Transcript::load(&out).unwrap();
    assert_eq!(recorded.name(), "recorded");
    assert!(
        text.starts_with("{\"type\":\"header\",\"name\":\"recorded\""),
        "{text}"
    );
    // Volatile values became matchers; the generated session id is captured and referenced by
    // the request that used it; error messages are free text; event seq is left to the wire rules.
    assert!(
        text.contains(r#""connectionId":{"$capture":"connectionId""#),
        "{text}"
    );
    assert!(text.contains(r#""uptime":{"$example":"#), "{text}");
    assert!(
        text.contains(r#""params":{"sessionId":{"$ref":"sessionId2"}}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""code":{"$capture":"pairingCode""#),
        "{text}"
    );
    assert!(text.contains(r#""expiresAt":{"$example":"#), "{text}");
    assert!(text.contains(r#"{"type":"send","raw":"{oops"}"#), "{text}");
    assert!(
        text.contains(r#""code":-1,"message":{"$example":"#),
        "{text}"
    );
    assert!(!text.contains("\"seq\""), "{text}");
    let problems = validate(&spec, &recorded);
    assert!(
        unexplained("draft", &problems).is_empty()
            || problems
                .iter()
                .all(|p| p.message.contains("after its reply")),
        "{problems:?}"
    );

    let fresh = Gateway::start(None).await;
    let replay = run_transcript(&spec, &recorded, &RunOptions::new(fresh.url.clone())).await;
    fresh.stop().await;
    assert!(
        unexplained("recorded", &replay.failures).is_empty(),
        "{:?}",
        replay.failures
    );
}
