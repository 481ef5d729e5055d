//! The agent runs on its narrow inputs alone, without the gateway: a store, a settings
//! snapshot (the embedded model, the default tools), a test event sink and test hooks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flynn_agent::config::{AgentConfig, QueueConfig, QueuePolicy};
use flynn_agent::deps::{Deps, Hooks, Settings};
use flynn_agent::lanes::{Lanes, Pending, Reply, Requester, UserMessage};
use flynn_protocol::ErrorCode;
use flynn_protocol::wire::{EventEmitter, EventJson, EventSink, RequestId, RunTag};
use tokio::sync::oneshot;

/// Records `(event, runSeq)` of every event a requester gets.
#[derive(Default)]
struct Events(Mutex<Vec<(&'static str, u64)>>);

impl EventSink for Events {
    fn send_event(&self, _: &RequestId, _: bool, event: &'static str, _: EventJson) {
        self.0.lock().unwrap().push((event, 0));
    }
    fn send_run_event(
        &self,
        _: &RequestId,
        _: bool,
        event: &'static str,
        _: EventJson,
        run: RunTag,
    ) {
        self.0.lock().unwrap().push((event, run.run_seq));
    }
}

/// Records what the host would be told.
#[derive(Default)]
struct Recorded {
    finished: Mutex<Vec<(String, String, String)>>,
    measured: Mutex<Vec<bool>>,
    tools: Mutex<Vec<(String, &'static str)>>,
}

impl Hooks for Recorded {
    fn turn_finished(&self, session_id: &str, run_id: &str, answer: &str) {
        self.finished.lock().unwrap().push((
            session_id.to_owned(),
            run_id.to_owned(),
            answer.to_owned(),
        ));
    }
    fn turn_measured(&self, ok: bool, _: Duration, _: u64, _: u64) {
        self.measured.lock().unwrap().push(ok);
    }
    fn tool_ran(&self, tool: &str, _: bool, outcome: &'static str) {
        self.tools.lock().unwrap().push((tool.to_owned(), outcome));
    }
}

struct Agent {
    lanes: Lanes,
    hooks: Arc<Recorded>,
    store: flynn_store::Store,
    _dir: tempfile::TempDir,
}

async fn agent() -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let store = flynn_store::Store::open_async(&dir.path().join("agent.sqlite"))
        .await
        .unwrap();
    let workspace = dir.path().join("workspace");
    std::fs::create_dir_all(&workspace).unwrap();
    let settings = Arc::new(Settings {
        agent: AgentConfig::default(),
        queue: QueueConfig::default(),
        models: Arc::new(
            flynn_models::ModelTiers::build(&flynn_models::ModelsConfig::default()).unwrap(),
        ),
        tools: Arc::new(flynn_tools::ToolRegistry::with_defaults(
            &flynn_tools::ToolsConfig::default(),
        )),
        workspace,
    });
    let hooks = Arc::new(Recorded::default());
    let lanes = Lanes::new(Deps {
        store: store.clone(),
        settings: Arc::new(settings),
        approvals: Arc::default(),
        hooks: hooks.clone(),
    });
    Agent {
        lanes,
        hooks,
        store,
        _dir: dir,
    }
}

fn send(lanes: &Lanes, session_id: &str, text: &str) -> (Arc<Events>, oneshot::Receiver<Reply>) {
    let events = Arc::new(Events::default());
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        message: UserMessage {
            text: text.to_owned(),
            attachments: Vec::new(),
            may_use_tools: true,
            sender_name: None,
            presence_sender: None,
        },
        requester: Requester {
            events: EventEmitter::new(RequestId::Number(1), events.clone()),
            reply,
            steered: false,
            key: None,
        },
    };
    let policy = QueuePolicy {
        debounce_ms: 0,
        ..QueuePolicy::default()
    };
    lanes.submit(session_id, policy, pending);
    (events, answer)
}

#[tokio::test]
async fn a_turn_with_a_tool_call_runs_on_the_narrow_inputs_and_tells_the_hooks() {
    let agent = agent().await;
    let (events, answer) = send(&agent.lanes, "test:a", "list it [[tool:file.list]]");
    let reply = tokio::time::timeout(Duration::from_secs(60), answer)
        .await
        .expect("the turn ends (liveness bound)")
        .expect("a reply")
        .expect("an answer");
    assert!(
        reply.content.contains("Tool file.list returned"),
        "{}",
        reply.content
    );
    let run_id = reply.run_id.clone().expect("the turn's run id");

    let seen = events.0.lock().unwrap().clone();
    let names: Vec<&str> = seen.iter().map(|(e, _)| *e).collect();
    for expected in ["tool_start", "tool_end", "content", "done"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs[0] == 1,
        "numbered from 1 without gaps: {seqs:?}"
    );

    assert_eq!(
        *agent.hooks.finished.lock().unwrap(),
        [("test:a".to_owned(), run_id, reply.content.clone())]
    );
    assert_eq!(*agent.hooks.measured.lock().unwrap(), [true]);
    assert_eq!(
        *agent.hooks.tools.lock().unwrap(),
        [("file.list".to_owned(), "ok")]
    );
    let history = agent.store.history("test:a", None).await.unwrap();
    assert_eq!(history.len(), 2, "the user message and the answer");
    assert_eq!(history[1].content, reply.content);
    agent.lanes.wait_idle(Duration::from_secs(2)).await;
    assert!(agent.lanes.active_session_ids().is_empty());
}

#[tokio::test]
async fn a_cancelled_turn_ends_with_the_cancel_error_and_no_finished_hook() {
    let agent = agent().await;
    let (events, answer) = send(
        &agent.lanes,
        "test:b",
        "[[delay:60000]] [[long:50]] a slow answer",
    );
    // Wait for the first streamed chunk: the turn is in its model step, and the next chunk
    // comes a minute later (the longest delay the embedded model takes).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !events
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(e, _)| *e == "content")
    {
        assert!(tokio::time::Instant::now() < deadline, "no content came");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (cancelled, rejected) = agent
        .lanes
        .cancel_session("test:b", "cancelled by the test", &QueuePolicy::default())
        .await;
    assert!(cancelled);
    assert_eq!(rejected, 0);
    // A liveness bound, not a speed test: a stop seen only at the next chunk would take a
    // minute; one that interrupts the model's wait takes milliseconds, even under load.
    let error = tokio::time::timeout(Duration::from_secs(45), answer)
        .await
        .expect("the stop interrupts the model's wait")
        .expect("a reply")
        .expect_err("a stopped turn has no answer");
    assert_eq!(error.code, ErrorCode::RequestCancelled.code());
    assert!(agent.hooks.finished.lock().unwrap().is_empty());
    assert_eq!(*agent.hooks.measured.lock().unwrap(), [false]);
    let names: Vec<&str> = events.0.lock().unwrap().iter().map(|(e, _)| *e).collect();
    assert_eq!(names.last(), Some(&"error"), "{names:?}");
}
