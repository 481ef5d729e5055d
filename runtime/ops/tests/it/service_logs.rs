//! `system.serviceLogs`: recorded `journalctl -o json` and `docker logs --timestamps` output
//! through fake tools, and the daemon's own lines through the tracing layer.

use crate::common::{
    FakeTools, OpsFakes, assert_matches_spec, cat, cat_err, fixture, ops, strings,
};
use flynn_ops::{
    BackendProvider, LocalBackendConfig, LogBuffer, LogLevel, LogRecord, Ops, OpsConfig, OpsError,
};
use flynn_protocol::types::ServiceLogLine;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

/// `__REALTIME_TIMESTAMP` of every recorded ollama journal entry, in ms.
const JOURNAL_TS: u64 = 1_795_319_632_503;
/// Time of the recorded whisper container lines, in ms.
const WHISPER_TS: u64 = 1_795_319_714_437;

fn journal_config(tools: &FakeTools) -> OpsConfig {
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    config
}

fn line(ts: u64, level: LogLevel, text: &str) -> ServiceLogLine {
    ServiceLogLine {
        ts,
        level: level.as_str().to_owned(),
        text: text.to_owned(),
    }
}

#[tokio::test]
async fn journal_lines_are_parsed_levelled_and_masked() {
    let tools = FakeTools::new();
    tools.tool("journalctl", &cat("journalctl/ollama.json"));
    let result = ops(journal_config(&tools))
        .service_logs("systemd:ollama", Some(200), Some(900))
        .await
        .unwrap();
    assert_eq!(
        result.lines,
        vec![
            line(
                JOURNAL_TS,
                LogLevel::Info,
                r#"time=2025-02-19T20:13:01.000Z level=INFO source=routes.go:1238 msg="Listening on 127.0.0.1:11434 (version 0.5.7)""#
            ),
            line(
                JOURNAL_TS,
                LogLevel::Warn,
                r#"time=2025-02-19T20:13:01.100Z level=WARN source=gpu.go:602 msg="no compatible GPUs were discovered""#
            ),
            line(
                JOURNAL_TS,
                LogLevel::Info,
                r#"time=2025-02-19T20:13:01.200Z level=INFO source=images.go:432 msg="pulling manifest" registry_token=*** authorization="***""#
            ),
            // MESSAGE was an array of bytes with colour codes.
            line(
                JOURNAL_TS,
                LogLevel::Error,
                "ERROR model load failed: out of memory"
            ),
            // PRIORITY 3.
            line(
                JOURNAL_TS,
                LogLevel::Error,
                "llama_model_load: error loading model: api_key=***"
            ),
            // PRIORITY 4.
            line(JOURNAL_TS, LogLevel::Warn, "warning: falling back to CPU"),
            // PRIORITY 6 (stderr of the unit), level from the text.
            line(JOURNAL_TS, LogLevel::Error, "error: connection refused"),
        ]
    );
    assert!(result.redacted);
    assert!(!result.truncated);
    assert_eq!(result.source_id, "systemd:ollama");
    let value = serde_json::to_value(&result).unwrap();
    assert_matches_spec("SystemServiceLogsResult", &value);
    assert_eq!(value["lines"][0]["level"], json!("info"));
    assert_eq!(
        tools.calls("journalctl"),
        vec![strings(&[
            "--user",
            "-u",
            "ollama.service",
            "-o",
            "json",
            "-n",
            "201",
            "--since=-900s"
        ])]
    );
}

#[tokio::test]
async fn journal_reads_one_line_more_to_detect_truncation() {
    let tools = FakeTools::new();
    tools.tool("journalctl", &cat("journalctl/ollama.json"));
    let result = ops(journal_config(&tools))
        .service_logs("systemd:ollama", Some(3), None)
        .await
        .unwrap();
    assert!(result.truncated);
    let texts: Vec<&str> = result.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "llama_model_load: error loading model: api_key=***",
            "warning: falling back to CPU",
            "error: connection refused"
        ]
    );
    assert_eq!(
        tools.calls("journalctl"),
        vec![strings(&[
            "--user",
            "-u",
            "ollama.service",
            "-o",
            "json",
            "-n",
            "4"
        ])]
    );

    // Exactly as many lines as asked: not truncated, not redacted.
    let tools = FakeTools::new();
    tools.tool("journalctl", &cat("journalctl/llama-server.json"));
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Llamacpp)];
    let result = ops(config)
        .service_logs("systemd:llamacpp", Some(1), None)
        .await
        .unwrap();
    assert!(!result.truncated);
    assert!(!result.redacted);
    assert_eq!(
        result.lines,
        vec![line(
            1_795_319_622_806,
            LogLevel::Error,
            "error: failed to load model /models/missing.gguf"
        )]
    );
}

#[tokio::test]
async fn journal_failure_is_a_logs_unavailable_error() {
    let tools = FakeTools::new();
    tools.tool(
        "journalctl",
        &format!("{}; exit 1", cat_err("journalctl/bad-since.stderr")),
    );
    let err = ops(journal_config(&tools))
        .service_logs("systemd:ollama", None, Some(60))
        .await
        .unwrap_err();
    assert!(matches!(err, OpsError::LogsUnavailable { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with("cannot read the logs of systemd:ollama"),
        "{text}"
    );
    assert!(text.contains("Failed to parse timestamp: bogus"), "{text}");
}

fn docker_logs_tool(tools: &FakeTools) {
    tools.tool(
        "docker",
        &format!(
            "case \"$*\" in\n\
             *' ps --all --format json') {ps} ;;\n\
             'logs '*flynn-whisper-server-1) {out}; {err} ;;\n\
             'logs '*) for a in \"$@\"; do last=$a; done; echo \"Error response from daemon: No such container: $last\" >&2; exit 1 ;;\n\
             *) echo \"unexpected: $*\" >&2; exit 2 ;;\n\
             esac",
            ps = cat("docker/compose-ps.ndjson"),
            out = cat("docker/logs-whisper.stdout"),
            err = cat_err("docker/logs-whisper.stderr"),
        ),
    );
}

fn docker_config(tools: &FakeTools) -> OpsConfig {
    let mut config = tools.config();
    config.docker.compose_file = Some(fixture("compose/docker-compose.yml"));
    config
}

#[tokio::test]
async fn docker_logs_merge_both_streams_by_time() {
    let tools = FakeTools::new();
    docker_logs_tool(&tools);
    let result = ops(docker_config(&tools))
        .service_logs("docker:whisper", Some(200), Some(900))
        .await
        .unwrap();
    assert_eq!(
        result.lines,
        vec![
            line(
                WHISPER_TS,
                LogLevel::Unknown,
                "whisper_init_from_file_with_params_no_state: loading model from /models/ggml-base.en.bin"
            ),
            line(
                WHISPER_TS,
                LogLevel::Unknown,
                "whisper server listening at http://0.0.0.0:8080"
            ),
            line(WHISPER_TS, LogLevel::Warn, "WARN: request took 2.5s"),
            line(
                WHISPER_TS,
                LogLevel::Error,
                "error: failed to read audio: Authorization: ***"
            ),
        ]
    );
    assert!(result.redacted);
    assert!(!result.truncated);
    assert_matches_spec(
        "SystemServiceLogsResult",
        &serde_json::to_value(&result).unwrap(),
    );
    let compose = fixture("compose/docker-compose.yml").display().to_string();
    assert_eq!(
        tools.calls("docker"),
        vec![
            strings(&["compose", "-f", &compose, "ps", "--all", "--format", "json"]),
            strings(&[
                "logs",
                "--timestamps",
                "--tail",
                "201",
                "--since",
                "900s",
                "flynn-whisper-server-1"
            ]),
        ]
    );

    // Fewer lines than exist: the newest ones, marked truncated.
    let result = ops(docker_config(&tools))
        .service_logs("docker:whisper", Some(2), None)
        .await
        .unwrap();
    assert!(result.truncated);
    assert_eq!(result.lines.len(), 2);
    assert_eq!(result.lines[1].level, LogLevel::Error.as_str());
    assert_eq!(
        tools.calls("docker").last().unwrap(),
        &strings(&[
            "logs",
            "--timestamps",
            "--tail",
            "3",
            "flynn-whisper-server-1"
        ])
    );
}

#[tokio::test]
async fn docker_sources_without_container_or_docker_are_errors() {
    let tools = FakeTools::new();
    docker_logs_tool(&tools);
    let err = ops(docker_config(&tools))
        .service_logs("docker:redis-cache", None, None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        OpsError::NoContainer {
            source_id: "docker:redis-cache".into()
        }
    );
    let err = ops(docker_config(&tools))
        .service_logs("docker:brave-search", None, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("No such container: brave-search"),
        "{err}"
    );

    let tools = FakeTools::new();
    tools.tool(
        "docker",
        &format!("{}; exit 1", cat_err("docker/daemon-down.stderr")),
    );
    let err = ops(docker_config(&tools))
        .service_logs("docker:whisper", None, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Cannot connect to the Docker daemon"),
        "{err}"
    );
}

#[tokio::test]
async fn unknown_sources_and_bad_params_are_typed_errors() {
    let tools = FakeTools::new();
    let mut config = docker_config(&tools);
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    let ops = ops(config);
    for id in ["systemd:vllm", "docker:flynn", "k8s:ollama", ""] {
        let err = ops.service_logs(id, None, None).await.unwrap_err();
        assert_eq!(
            err,
            OpsError::UnknownSource {
                id: id.into(),
                valid: strings(&[
                    "systemd:flynn",
                    "systemd:ollama",
                    "docker:whisper",
                    "docker:brave-search",
                    "docker:searxng",
                    "docker:redis-cache"
                ]),
            }
        );
    }
    for (lines, since, name) in [
        (Some(0), None, "lines"),
        (Some(5001), None, "lines"),
        (None, Some(0), "sinceSeconds"),
        (None, Some(604_801), "sinceSeconds"),
    ] {
        let err = ops
            .service_logs("systemd:flynn", lines, since)
            .await
            .unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidParams { name: n, .. } if n == name),
            "{err:?}"
        );
        assert!(err.is_invalid_request());
    }
    assert!(tools.calls("journalctl").is_empty());
    assert!(tools.calls("docker").is_empty());
}

#[tokio::test]
async fn daemon_logs_come_from_the_tracing_layer() {
    let buffer = LogBuffer::new(100);
    let subscriber = tracing_subscriber::registry().with(buffer.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(user = "bob", path = "/a b", "request served");
        tracing::error!(token = "sk-abcdefghijklmnop1234", "upstream failed");
        tracing::warn!(attempt = 2, "retrying");
        tracing::debug!("not captured at the default level");
    });
    let ops = Ops::new(OpsConfig::default(), buffer.clone()).unwrap();
    let result = ops.service_logs("systemd:flynn", None, None).await.unwrap();
    let lines: Vec<(&str, &str)> = result
        .lines
        .iter()
        .map(|l| (l.level.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (
                LogLevel::Info.as_str(),
                r#"request served user=bob path="/a b""#
            ),
            (LogLevel::Error.as_str(), "upstream failed token=***"),
            (LogLevel::Warn.as_str(), "retrying attempt=2"),
        ]
    );
    assert!(result.redacted);
    assert!(!result.truncated);
    assert_eq!(buffer.errors_total(), 1);
    let now = result.fetched_at;
    assert!(
        result
            .lines
            .iter()
            .all(|l| l.ts <= now && l.ts + 60_000 > now)
    );
}

#[tokio::test]
async fn daemon_buffer_is_bounded_filtered_by_time_and_cut() {
    let buffer = LogBuffer::new(4);
    let now = flynn_ops::time::now_ms();
    for (age_s, text) in [
        (7200, "too old anyway"),
        (3600, "an hour ago"),
        (30, "half a minute ago"),
        (10, "ten seconds ago"),
        (1, "0123456789abcdefghij"),
    ] {
        buffer.push(LogRecord {
            ts: now - age_s * 1000,
            level: LogLevel::Info,
            text: text.to_owned(),
        });
    }
    assert_eq!(buffer.snapshot().len(), 4, "capacity bounds the buffer");
    assert_eq!(buffer.snapshot()[0].text, "an hour ago");
    let config = OpsConfig {
        max_log_line_chars: 12,
        ..OpsConfig::default()
    };
    let ops = Ops::new(config, buffer).unwrap();

    let result = ops
        .service_logs("systemd:flynn", None, Some(60))
        .await
        .unwrap();
    let texts: Vec<&str> = result.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["half a minut…", "ten seconds …", "0123456789ab…"]);
    assert!(result.truncated, "cut lines mark the response truncated");
    assert!(!result.redacted);

    let result = ops
        .service_logs("systemd:flynn", Some(1), None)
        .await
        .unwrap();
    assert_eq!(result.lines.len(), 1);
    assert!(result.truncated);
}
