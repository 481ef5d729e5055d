//! Test support: the real gateway (`flynn_gateway::start`, in process) on a free loopback port
//! with a temporary data directory and `conformance/gateway.toml`, and the repository's
//! transcripts.
#![allow(dead_code)]

use std::path::PathBuf;

use flynn_conformance::report::{Failure, FailureKind, Report, Status};
use flynn_conformance::transcript::{Transcript, load_all};

/// The token of gateways started with one.
pub const TOKEN: &str = "conformance-token";

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn transcripts() -> Vec<Transcript> {
    load_all(&[crate_dir().join("transcripts")]).expect("the repository's transcripts load")
}

/// A daemon running in this process.
pub struct Gateway {
    running: Option<flynn_gateway::Running>,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// Starts the daemon with `conformance/gateway.toml`, the embedded model, a temporary data
    /// directory, port 0 and optionally a token.
    pub async fn start(token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let suite =
            std::fs::read_to_string(crate_dir().join("gateway.toml")).expect("gateway.toml");
        let token_line = token
            .map(|t| format!("token = {t:?}\n"))
            .unwrap_or_default();
        let text = format!(
            "[storage]\ndata_dir = {data:?}\n\n[server]\nport = 0\n{token_line}\n{suite}",
            data = data.display().to_string()
        );
        let config_path = dir.path().join("flynn.toml");
        std::fs::write(&config_path, text).expect("write config");
        let config =
            flynn_gateway::Config::load(&config_path).expect("the suite's config is valid");
        let running = flynn_gateway::start(config, Some(config_path))
            .await
            .expect("the gateway starts");
        Self {
            url: format!("ws://{}/", running.addr),
            running: Some(running),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

/// A deviation of the gateway from the spec that is known and reported (see the crate's
/// README, "Known gateway bugs"); the suite tolerates it, nothing else.
pub struct KnownBug {
    pub id: &'static str,
    pub what: &'static str,
    pub matches: fn(&str, &Failure) -> bool,
}

fn path_is(f: &Failure, p: &str) -> bool {
    f.path.as_deref() == Some(p)
}

pub const KNOWN_BUGS: &[KnownBug] = &[
    KnownBug {
        id: "event-after-reply",
        what: "the done/error event of agent.send can be written after the reply (replies are flushed before queued events in the same wakeup)",
        matches: |_, f| {
            f.kind == FailureKind::Order && f.message.contains("arrived after the reply")
        },
    },
    KnownBug {
        id: "jsonrpc-echo-events",
        what: "events of a request that carried \"jsonrpc\": \"2.0\" do not echo it",
        matches: |t, f| t == "jsonrpc-echo" && path_is(f, "jsonrpc"),
    },
    KnownBug {
        id: "array-frame-path",
        what: "a JSON array frame is read as a struct sequence: -2 names `jsonrpc` instead of the frame (\"\")",
        matches: |t, f| {
            t == "bad-frames"
                && path_is(f, "error.data.path")
                && f.received.as_ref().is_some_and(|r| r == "jsonrpc")
        },
    },
    KnownBug {
        id: "bad-jsonrpc-drops-id",
        what: "a request with a `jsonrpc` other than \"2.0\" is answered with id null although its id was readable",
        matches: |t, f| {
            t == "bad-frames"
                && (f.message.contains("request 8")
                    || (f.kind == FailureKind::Unexpected
                        && f.received.as_ref().is_some_and(|r| {
                            r["id"].is_null() && r["error"]["data"]["path"] == "jsonrpc"
                        })))
        },
    },
    KnownBug {
        id: "unknown-top-level-member",
        what: "an unknown top-level frame member is accepted instead of rejected with -2 naming it",
        matches: |t, f| t == "bad-frames" && f.message.contains("request 11"),
    },
    KnownBug {
        id: "unknown-param-path-doubled",
        what: "an unknown param is -2 with error.data.path naming it twice (`params.verbose.verbose`)",
        matches: |t, f| {
            t == "bad-frames"
                && path_is(f, "error.data.path")
                && f.received
                    .as_ref()
                    .and_then(|r| r.as_str())
                    .is_some_and(|r| {
                        let parts: Vec<&str> = r.rsplitn(3, '.').collect();
                        parts.len() >= 2 && parts[0] == parts[1]
                    })
        },
    },
    KnownBug {
        id: "deleted-session-lingers",
        what: "right after sessions.delete, sessions.get answers an empty fresh session and a second delete succeeds (the lane is still live) instead of SessionNotFound",
        matches: |t, f| {
            t == "sessions"
                && (f.message.contains("request 10") || f.message.contains("request 11"))
        },
    },
    KnownBug {
        id: "interrupt-queue-code",
        what: "the run stopped by interrupt reports queue code `preempted` and droppedCount 0 instead of `superseded` and 1",
        matches: |t, f| {
            t == "queue-interrupt"
                && f.path
                    .as_deref()
                    .is_some_and(|p| p.ends_with("queue.code") || p.ends_with("queue.droppedCount"))
        },
    },
    KnownBug {
        id: "cancelled-queue-data",
        what: "a queued request rejected by agent.cancel lacks error.data.queue (code cancelled)",
        matches: |t, f| t == "cancel" && f.message.contains("request 3"),
    },
    KnownBug {
        id: "approval-survives-close",
        what: "tool approval enabled by a connection is not dropped when that connection closes",
        matches: |t, _| t == "multi-connection",
    },
    KnownBug {
        id: "local-backends-missing",
        what: "system.localBackends omits the known backends (ollama, llamacpp) when none is configured",
        matches: |t, f| t == "operator" && path_is(f, "result.backends"),
    },
    KnownBug {
        id: "series-source-path",
        what: "an unknown id in observabilitySeries sourceIds is -2 on `params.sourceId` instead of `params.sourceIds`",
        matches: |t, f| t == "operator" && path_is(f, "error.data.path"),
    },
];

/// Failures no known bug explains, as report lines; and the known bugs seen.
pub fn unexplained(report: &Report) -> (Vec<String>, Vec<&'static str>) {
    let mut unexplained = Vec::new();
    let mut seen = Vec::new();
    for t in &report.transcripts {
        if t.status != Status::Failed {
            continue;
        }
        for f in &t.failures {
            match KNOWN_BUGS.iter().find(|b| (b.matches)(&t.name, f)) {
                Some(bug) => {
                    if !seen.contains(&bug.id) {
                        seen.push(bug.id);
                    }
                }
                None => unexplained.push(format!("{}: {}", t.name, f.headline())),
            }
        }
    }
    (unexplained, seen)
}
