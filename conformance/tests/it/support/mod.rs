//! Test support: the real gateway (`flynn_gateway::start`, in process) on a free loopback port
//! with a temporary data directory and `conformance/gateway.toml`, and the repository's
//! transcripts.
#![allow(dead_code)]

use std::path::PathBuf;

use flynn_conformance::report::{Failure, Report, Status};
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

/// The named tokens the scope transcripts and `http-auth` use (README, "Scopes").
pub const SCOPED_TOKENS: &str = r#"
[[server.tokens]]
name = "conformance-read"
token = "conformance-read-token"
scopes = ["read"]

[[server.tokens]]
name = "conformance-chat"
token = "conformance-chat-token"
scopes = ["read", "chat"]

[[server.tokens]]
name = "conformance-operator"
token = "conformance-operator-token"
scopes = ["read", "chat", "operator"]

[[server.tokens]]
name = "conformance-noread"
token = "conformance-noread-token"
scopes = ["chat"]
"#;

/// The transcripts that wait out a timer of `gateway.toml` (the approval timeout, the grace of
/// a finished turn): only lower bounds, run against a gateway with those timers as configured.
pub const TIMER_TRANSCRIPTS: [&str; 2] = ["tool-approval-timeout", "resume-grace"];

/// `gateway.toml` with its timers at ten minutes: the transcripts that answer an approval, or
/// repeat a key right after a turn to get its kept events, then do so whenever the runner gets
/// to it, however loaded the machine (with 1500 ms and 1 s they would have to be that fast).
fn patient(suite: &str) -> String {
    let mut text = suite.to_owned();
    for (configured, patient) in [
        ("approval_timeout_ms = 1500", "approval_timeout_ms = 600000"),
        ("run_grace_secs = 1\n", "run_grace_secs = 600\n"),
    ] {
        assert!(
            text.contains(configured),
            "gateway.toml sets `{configured}`"
        );
        text = text.replace(configured, patient);
    }
    text
}

impl Gateway {
    /// Starts the daemon with `conformance/gateway.toml`, the embedded model, a temporary data
    /// directory, port 0 and optionally a token.
    pub async fn start(token: Option<&str>) -> Self {
        Self::start_with(token, false).await
    }

    /// [`Gateway::start`] with the timers of [`patient`]: for every transcript but the
    /// [`TIMER_TRANSCRIPTS`].
    pub async fn start_patient(token: Option<&str>) -> Self {
        Self::start_with(token, true).await
    }

    async fn start_with(token: Option<&str>, patient_timers: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let suite =
            std::fs::read_to_string(crate_dir().join("gateway.toml")).expect("gateway.toml");
        let suite = if patient_timers {
            patient(&suite)
        } else {
            suite
        };
        let token_line = token
            .map(|t| format!("token = {t:?}\n"))
            .unwrap_or_default();
        let text = format!(
            "[storage]\ndata_dir = {data:?}\n\n[server]\nport = 0\n{token_line}\n{suite}",
            data = data.display().to_string()
        );
        // The scope transcripts (scopes-*.jsonl) connect with these named tokens; like the
        // auth transcripts they run only against the gateway that requires a token.
        let text = if token.is_some() {
            format!("{text}\n{SCOPED_TOKENS}")
        } else {
            text
        };
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

/// Gateway bugs the suite tolerates while they are open. Empty: every transcript must pass.
pub const KNOWN_BUGS: &[KnownBug] = &[];

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
