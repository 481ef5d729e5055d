//! `system.localBackends` / `system.localBackendControl` against a fake `systemctl` that prints
//! recorded `systemctl --user show` output and records its arguments.

use std::time::{Duration, Instant};

use crate::common::{
    FakeTools, OpsFakes, assert_matches_spec, cat, cat_err, ops, show_args, strings,
};
use flynn_ops::{BackendProvider, LocalBackendConfig, OpsError};
use flynn_protocol::types::ControlAction;
use serde_json::json;

fn backend(provider: BackendProvider, id: &str, unit: &str) -> LocalBackendConfig {
    let mut config = LocalBackendConfig::new(provider);
    config.id = Some(id.to_owned());
    config.unit = Some(unit.to_owned());
    config
}

/// A systemctl that answers `show` for the three recorded units.
fn recorded_systemctl(tools: &FakeTools) {
    tools.tool(
        "systemctl",
        &format!(
            "case \"$3\" in\n\
             ollama.service) {} ;;\n\
             llama-server.service) {} ;;\n\
             whisper-gpu.service) {} ;;\n\
             *) echo \"unexpected unit $3\" >&2; exit 2 ;;\n\
             esac",
            cat("systemctl/show-ollama-running.txt"),
            cat("systemctl/show-llama-server-failed.txt"),
            cat("systemctl/show-not-found.txt"),
        ),
    );
}

/// A systemctl whose `ollama.service` starts stopped and follows start/restart/stop.
fn stateful_systemctl(tools: &FakeTools, start_fails: bool) {
    let start = if start_fails {
        format!("{}; exit 5", cat_err("systemctl/start-not-found.stderr"))
    } else {
        "echo running > \"$STATE/unit.state\"".to_owned()
    };
    tools.tool(
        "systemctl",
        &format!(
            "case \"$2\" in\n\
             show) if [ \"$(cat \"$STATE/unit.state\" 2>/dev/null)\" = running ]; then {running}; else {stopped}; fi ;;\n\
             start) {start} ;;\n\
             restart) echo running > \"$STATE/unit.state\" ;;\n\
             stop) echo stopped > \"$STATE/unit.state\" ;;\n\
             *) echo \"unexpected $*\" >&2; exit 2 ;;\n\
             esac",
            running = cat("systemctl/show-ollama-running.txt"),
            stopped = cat("systemctl/show-ollama-stopped.txt"),
        ),
    );
}

#[tokio::test]
async fn lists_running_failed_and_missing_units_from_recorded_output() {
    let tools = FakeTools::new();
    recorded_systemctl(&tools);
    let mut config = tools.config();
    config.local_backends = vec![
        LocalBackendConfig::new(BackendProvider::Ollama),
        LocalBackendConfig::new(BackendProvider::Llamacpp),
        backend(
            BackendProvider::Llamacpp,
            "whisper-gpu",
            "whisper-gpu.service",
        ),
    ];
    let result = ops(config).local_backends().await;
    let value = serde_json::to_value(&result).unwrap();
    assert_eq!(
        value,
        json!({"backends": [
            {
                "id": "ollama", "provider": "ollama", "name": "Ollama", "unit": "ollama.service",
                "configured": true, "loadState": "loaded", "activeState": "active",
                "subState": "running", "unitFileState": "enabled", "description": "Ollama Service",
                "pid": 9398, "result": "success", "statusText": "active (running)",
                "availableActions": ["restart", "stop", "update"]
            },
            {
                "id": "llamacpp", "provider": "llamacpp", "name": "llama.cpp",
                "unit": "llama-server.service", "configured": true, "loadState": "loaded",
                "activeState": "failed", "subState": "failed", "unitFileState": "static",
                "description": "llama.cpp server", "result": "exit-code",
                "statusText": "failed (Result: exit-code, status=3)",
                "availableActions": ["start", "update"]
            },
            {
                "id": "whisper-gpu", "provider": "llamacpp", "name": "llama.cpp",
                "unit": "whisper-gpu.service", "configured": true, "loadState": "not-found",
                "activeState": "inactive", "subState": "dead",
                "description": "whisper-gpu.service", "result": "success",
                "statusText": "not-found (no such unit)", "availableActions": []
            }
        ]})
    );
    assert_matches_spec("SystemLocalBackendsResult", &value);

    let mut calls = tools.calls("systemctl");
    calls.sort();
    let mut expected = vec![
        show_args("llama-server.service"),
        show_args("ollama.service"),
        show_args("whisper-gpu.service"),
    ];
    expected.sort();
    assert_eq!(calls, expected);
}

#[tokio::test]
async fn systemctl_failure_keeps_every_backend_listed_with_its_error() {
    let tools = FakeTools::new();
    tools.tool(
        "systemctl",
        &format!("{}; exit 1", cat_err("systemctl/show-no-bus.stderr")),
    );
    let mut config = tools.config();
    config.local_backends = vec![
        LocalBackendConfig::new(BackendProvider::Ollama),
        LocalBackendConfig::new(BackendProvider::Llamacpp),
    ];
    let result = ops(config).local_backends().await;
    assert_eq!(result.backends.len(), 2);
    for entry in &result.backends {
        assert!(entry.configured);
        assert_eq!(entry.active_state, "unavailable");
        assert_eq!(entry.load_state, "unknown");
        assert!(entry.available_actions.is_empty());
        assert_eq!(entry.pid, None);
        let error = entry.error.as_deref().unwrap();
        assert!(
            error.contains("Failed to connect to bus: No medium found"),
            "{error}"
        );
        assert!(error.contains("exit status 1"), "{error}");
        assert!(
            entry.status_text.starts_with("unavailable: "),
            "{}",
            entry.status_text
        );
    }
    let value = serde_json::to_value(&result).unwrap();
    assert_eq!(
        value["backends"][0]["error"],
        json!(result.backends[0].error.clone().unwrap())
    );
    assert_matches_spec("SystemLocalBackendsResult", &value);
}

#[tokio::test]
async fn missing_systemctl_is_reported_per_backend() {
    let tools = FakeTools::new();
    let mut config = tools.config(); // no systemctl written into the dir
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    let result = ops(config.clone()).local_backends().await;
    let error = result.backends[0].error.as_deref().unwrap();
    assert!(error.contains("was not found"), "{error}");
    assert!(error.contains("[ops.binaries]"), "{error}");
    assert_eq!(result.backends[0].active_state, "unavailable");

    // A plain name is looked up on PATH, where it does not exist either.
    config.binaries.systemctl = "flynn-ops-test-no-such-systemctl".into();
    let result = ops(config).local_backends().await;
    let error = result.backends[0].error.as_deref().unwrap();
    assert!(
        error.contains("`flynn-ops-test-no-such-systemctl` was not found"),
        "{error}"
    );
}

#[tokio::test]
async fn slow_systemctl_is_killed_with_its_children() {
    let tools = FakeTools::new();
    tools.tool(
        "systemctl",
        "sleep 600 & echo $! > \"$STATE/child.pid\"; wait",
    );
    let mut config = tools.config();
    config.command_timeout_secs = 1;
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    // Ten minutes unless the timeout kills the script: ending within the generous liveness
    // bound is the timeout's doing, and it cannot come before its second.
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(60), ops(config).local_backends())
        .await
        .expect("the slow systemctl was not cut by its timeout");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "ended before its timeout: {:?}",
        started.elapsed()
    );
    let error = result.backends[0].error.as_deref().unwrap();
    assert!(
        error.contains("did not finish within 1 s and was killed"),
        "{error}"
    );

    // The script's own child (`sleep 600`) was in the killed process group.
    let pid = std::fs::read_to_string(tools.root().join("child.pid")).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let gone = match std::fs::read_to_string(&stat) {
            Err(_) => true,
            // Field 3 is the state; a killed child that no one reaped yet is a zombie.
            Ok(text) => text.rsplit(')').next().unwrap().trim().starts_with('Z'),
        };
        if gone {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the grandchild survived the timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn start_restart_stop_run_systemctl_and_report_the_new_state() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, false);
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    let ops = ops(config);

    let started = ops
        .local_backend_control("ollama", ControlAction::Start)
        .await
        .unwrap();
    let value = serde_json::to_value(&started).unwrap();
    assert_eq!(
        value,
        json!({
            "backend": "ollama",
            "action": "start",
            "status": {"id": "ollama", "activeState": "active", "subState": "running", "statusText": "active (running)"},
            "message": "Started ollama.service."
        })
    );
    assert_matches_spec("SystemLocalBackendControlResult", &value);

    let restarted = ops
        .local_backend_control("ollama", ControlAction::Restart)
        .await
        .unwrap();
    assert_eq!(restarted.status.active_state, "active");
    let stopped = ops
        .local_backend_control("ollama", ControlAction::Stop)
        .await
        .unwrap();
    assert_eq!(stopped.status.active_state, "inactive");
    assert_eq!(stopped.status.status_text, "inactive (dead)");
    assert_eq!(stopped.message.as_deref(), Some("Stopped ollama.service."));

    let show = show_args("ollama.service");
    assert_eq!(
        tools.calls("systemctl"),
        vec![
            show.clone(),
            strings(&["--user", "start", "ollama.service"]),
            show.clone(),
            show.clone(),
            strings(&["--user", "restart", "ollama.service"]),
            show.clone(),
            show.clone(),
            strings(&["--user", "stop", "ollama.service"]),
            show,
        ]
    );
}

#[tokio::test]
async fn control_only_accepts_listed_ids() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, false);
    let mut config = tools.config();
    config.local_backends = vec![
        LocalBackendConfig::new(BackendProvider::Ollama),
        LocalBackendConfig::new(BackendProvider::Llamacpp),
    ];
    let err = ops(config)
        .local_backend_control("vllm", ControlAction::Restart)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        OpsError::UnknownBackend {
            id: "vllm".into(),
            valid: strings(&["ollama", "llamacpp"])
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown local backend `vllm`; valid ids: ollama, llamacpp"
    );
    assert!(err.is_invalid_request());
    assert!(
        tools.calls("systemctl").is_empty(),
        "nothing may run for an unknown id"
    );
}

#[tokio::test]
async fn control_refuses_an_action_the_unit_does_not_offer_now() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, false); // stopped
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    let err = ops(config)
        .local_backend_control("ollama", ControlAction::Stop)
        .await
        .unwrap_err();
    match &err {
        OpsError::ActionNotAvailable {
            action, available, ..
        } => {
            assert_eq!(*action, ControlAction::Stop);
            assert_eq!(available, &[ControlAction::Start, ControlAction::Update]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("available actions: start, update"),
        "{err}"
    );
    assert_eq!(tools.calls("systemctl"), vec![show_args("ollama.service")]);

    // Action names are the generated enum's: an unknown one never reaches ops (the gateway's
    // params check answers -2 naming `params.action`; operations_methods tests that reply).
    assert!("reload".parse::<ControlAction>().is_err());
    assert_eq!(
        "update".parse::<ControlAction>().ok(),
        Some(ControlAction::Update)
    );
}

#[tokio::test]
async fn failing_control_command_is_an_action_failed_error() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, true);
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    let err = ops(config)
        .local_backend_control("ollama", ControlAction::Start)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OpsError::ActionFailed { .. }));
    assert!(!err.is_invalid_request());
    assert!(
        text.contains("Failed to start whisper-gpu.service: Unit whisper-gpu.service not found."),
        "{text}"
    );
    assert!(text.contains("exit status 5"), "{text}");
}

#[tokio::test]
async fn update_pulls_every_configured_ollama_model() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, false);
    tools.tool(
        "ollama",
        "echo \"$OLLAMA_HOST\" >> \"$STATE/ollama.host\"; echo 'pulling manifest'; echo success",
    );
    let mut config = tools.config();
    let mut ollama = LocalBackendConfig::new(BackendProvider::Ollama);
    ollama.models = strings(&["llama3.2:3b", "nomic-embed-text"]);
    ollama.ollama_host = Some("127.0.0.1:11500".into());
    config.local_backends = vec![ollama];
    let result = ops(config)
        .local_backend_control("ollama", ControlAction::Update)
        .await
        .unwrap();
    assert_eq!(
        result.message.as_deref(),
        Some("Pulled 2 model(s): llama3.2:3b, nomic-embed-text.")
    );
    assert_eq!(
        tools.calls("ollama"),
        vec![
            strings(&["pull", "llama3.2:3b"]),
            strings(&["pull", "nomic-embed-text"])
        ]
    );
    assert_eq!(
        std::fs::read_to_string(tools.root().join("ollama.host")).unwrap(),
        "127.0.0.1:11500\n127.0.0.1:11500\n"
    );
    // No systemctl action, only the two status reads.
    assert_eq!(
        tools.calls("systemctl"),
        vec![show_args("ollama.service"), show_args("ollama.service")]
    );
}

#[tokio::test]
async fn failed_model_pull_names_the_model() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, false);
    tools.tool(
        "ollama",
        "echo 'Error: pull model manifest: file does not exist' >&2; exit 1",
    );
    let mut config = tools.config();
    let mut ollama = LocalBackendConfig::new(BackendProvider::Ollama);
    ollama.models = strings(&["no-such-model"]);
    config.local_backends = vec![ollama];
    let err = ops(config)
        .local_backend_control("ollama", ControlAction::Update)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("update of local backend `ollama` failed: pulling `no-such-model`"),
        "{text}"
    );
    assert!(
        text.contains("pull model manifest: file does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn update_of_llamacpp_restarts_its_unit() {
    let tools = FakeTools::new();
    stateful_systemctl(&tools, false);
    let mut config = tools.config();
    config.local_backends = vec![backend(
        BackendProvider::Llamacpp,
        "llamacpp",
        "ollama.service", // the stateful fake only knows this unit's recordings
    )];
    let result = ops(config)
        .local_backend_control("llamacpp", ControlAction::Update)
        .await
        .unwrap();
    assert_eq!(result.status.active_state, "active");
    assert!(
        result
            .message
            .unwrap()
            .starts_with("Restarted ollama.service")
    );
    assert_eq!(
        tools.calls("systemctl")[1],
        strings(&["--user", "restart", "ollama.service"])
    );
}
