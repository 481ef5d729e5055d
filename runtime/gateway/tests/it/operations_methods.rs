//! Operator methods over a real WebSocket against the in-process daemon, with `[ops.binaries]`
//! pointing at fake `systemctl`, `docker`, `journalctl` and `ollama` that print the real
//! recorded output of `runtime/ops/tests/fixtures` (and its error cases) and record their
//! arguments: `system.localBackends` / `system.localBackendControl`,
//! `system.dockerDependencies` / `system.dockerDependencyControl`,
//! `system.observabilitySources` / `system.observabilitySeries`, `system.serviceLogs`.
//!
//! The daemon's sampler takes its first sample right after start and then waits
//! `ops.sampler_interval_secs` (an hour here), so each test first waits for that sample to be
//! in the series (the fakes are then quiet) before counting calls.
//!
//! Expected behaviour: issue 7 (commands without a shell, only for listed ids; a missing or
//! failing command leaves the entry `configured` with state `unavailable` and the error text),
//! spec/flynn.openrpc.json (unknown backend / dependency / source: -2 naming the param) and the
//! protocol document.

use crate::method_checks;
use crate::support;

use method_checks::fake_tools::{
    FakeTools, OpsBinaries, cat, cat_err, fixture, show_args, strings,
};
use method_checks::{assert_code, assert_invalid, call_ok, now_ms, poll_until, stop, toml_str};
use serde_json::{Value, json};
use support::{TestGateway, Ws};

/// Flynn's compose file as the tests use it: the daemon itself (excluded), three
/// profile-scoped dependencies and one always-on dependency without a container.
const COMPOSE: &str = r#"name: flynn
services:
  flynn:
    image: flynn:latest
    ports:
      - "127.0.0.1:18800:18800"
  whisper-server:
    image: ghcr.io/ggerganov/whisper.cpp:main-cuda
    container_name: flynn-whisper-server-1
    profiles: ["voice"]
  brave-search:
    image: ghcr.io/example/brave-search-proxy:latest
    container_name: brave-search
    profiles:
      - search
  searxng:
    image: searxng/searxng:latest
    container_name: searxng
    profiles: [search]
  redis-cache:
    image: redis:7
"#;

/// A test's fakes, compose file and gateway.
struct Ops {
    tools: FakeTools,
    compose: String,
    gw: TestGateway,
    ws: Ws,
}

impl Ops {
    /// The `docker compose -f FILE` prefix followed by `rest`.
    fn compose_args(&self, rest: &[&str]) -> Vec<String> {
        let mut args = strings(&["compose", "-f", &self.compose]);
        args.extend(strings(rest));
        args
    }

    fn ps_args(&self) -> Vec<String> {
        self.compose_args(&["ps", "--all", "--format", "json"])
    }

    async fn stop(self) {
        stop(self.gw, [self.ws]).await;
    }
}

/// systemctl answering `show` from the recordings (ollama running, llama-server failed) and
/// accepting start/restart/stop.
fn recorded_systemctl(tools: &FakeTools) {
    tools.tool(
        "systemctl",
        &format!(
            "case \"$2\" in\n\
             show) case \"$3\" in\n\
               ollama.service) {} ;;\n\
               llama-server.service) {} ;;\n\
               *) echo \"unexpected unit $3\" >&2; exit 2 ;;\n\
               esac ;;\n\
             start|restart|stop) : ;;\n\
             *) echo \"unexpected $*\" >&2; exit 2 ;;\n\
             esac",
            cat("systemctl/show-ollama-running.txt"),
            cat("systemctl/show-llama-server-failed.txt"),
        ),
    );
}

/// docker printing the recorded `compose ps` (searxng reads as running once started) and the
/// whisper container's recorded logs; compose actions succeed.
fn recorded_docker(tools: &FakeTools) {
    tools.tool(
        "docker",
        &format!(
            "case \"$*\" in\n\
             *' ps --all --format json') if [ -f \"$STATE/searxng.started\" ]; then \
               sed 's/\"State\":\"exited\",\"Status\":\"Exited (1) 13 seconds ago\"/\"State\":\"running\",\"Status\":\"Up 1 second\"/' '{ps}'; \
             else cat '{ps}'; fi ;;\n\
             *' start searxng') touch \"$STATE/searxng.started\" ;;\n\
             *' start '*|*' restart '*|*' stop '*|*' pull '*|*' up -d '*) : ;;\n\
             'logs '*flynn-whisper-server-1) {out}; {err} ;;\n\
             *) echo \"unexpected: $*\" >&2; exit 2 ;;\n\
             esac",
            ps = fixture("docker/compose-ps.ndjson").display(),
            out = cat("docker/logs-whisper.stdout"),
            err = cat_err("docker/logs-whisper.stderr"),
        ),
    );
}

fn recorded_journalctl(tools: &FakeTools) {
    tools.tool(
        "journalctl",
        &format!(
            "case \"$3\" in\n\
             ollama.service) {} ;;\n\
             llama-server.service) {} ;;\n\
             esac",
            cat("journalctl/ollama.json"),
            cat("journalctl/llama-server.json"),
        ),
    );
}

/// Starts a gateway whose ops section uses `tools` (written by the caller or not) and waits
/// for the sampler's first sample.
async fn start(tools: FakeTools) -> Ops {
    let compose_path = tools.root().join("docker-compose.yml");
    std::fs::write(&compose_path, COMPOSE).expect("write compose file");
    let compose = compose_path.display().to_string();
    let toml = format!(
        "[ops]\nsampler_interval_secs = 3600\ncommand_timeout_secs = 10\n\
         {binaries}\n\
         [[ops.local_backends]]\nprovider = \"ollama\"\nmodels = [\"llama3.2:3b\", \"nomic-embed-text\"]\n\n\
         [[ops.local_backends]]\nprovider = \"llamacpp\"\n\n\
         [ops.docker]\ncompose_file = {compose}\n",
        binaries = tools.binaries_toml(),
        compose = toml_str(&compose),
    );
    let gw = TestGateway::start(&toml).await;
    let mut ws = gw.client().await;
    poll_until(
        &mut ws,
        "system.observabilitySeries",
        json!({"bucketSeconds": 1}),
        "the sampler's first sample of every source",
        |r| {
            r["series"].as_array().is_some_and(|series| {
                !series.is_empty()
                    && series
                        .iter()
                        .all(|s| s["points"].as_array().is_some_and(|p| !p.is_empty()))
            })
        },
    )
    .await;
    Ops {
        tools,
        compose,
        gw,
        ws,
    }
}

/// Fakes printing every recording.
async fn start_recorded() -> Ops {
    let tools = FakeTools::new();
    recorded_systemctl(&tools);
    recorded_docker(&tools);
    recorded_journalctl(&tools);
    tools.tool("ollama", "echo 'pulling manifest'; echo success");
    start(tools).await
}

fn backend(result: &Value, id: &str) -> Value {
    result["backends"]
        .as_array()
        .unwrap_or_else(|| panic!("`backends`: {result}"))
        .iter()
        .find(|b| b["id"] == json!(id))
        .cloned()
        .unwrap_or_else(|| panic!("backend {id} listed: {result}"))
}

#[tokio::test]
async fn local_backends_are_read_from_systemctl_user_show() {
    let mut ops = start_recorded().await;
    let before = ops.tools.calls("systemctl").len();
    let result = call_ok(&mut ops.ws, "system.localBackends", json!({})).await;
    assert_eq!(
        result,
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
            }
        ]})
    );
    let mut calls = ops.tools.calls("systemctl")[before..].to_vec();
    calls.sort();
    assert_eq!(
        calls,
        [
            show_args("llama-server.service"),
            show_args("ollama.service")
        ],
        "one `systemctl --user show` per unit"
    );
    ops.stop().await;
}

#[tokio::test]
async fn local_backend_control_runs_exactly_the_systemctl_action() {
    let mut ops = start_recorded().await;
    let before = ops.tools.calls("systemctl").len();
    let result = call_ok(
        &mut ops.ws,
        "system.localBackendControl",
        json!({"backend": "ollama", "action": "restart"}),
    )
    .await;
    assert_eq!(
        result,
        json!({"backend": "ollama", "action": "restart",
               "status": {"id": "ollama", "activeState": "active", "subState": "running",
                          "statusText": "active (running)"},
               "message": "Restarted ollama.service."})
    );
    let calls = ops.tools.calls("systemctl")[before..].to_vec();
    let actions: Vec<&Vec<String>> = calls.iter().filter(|c| c[1] != "show").collect();
    assert_eq!(
        actions,
        [&strings(&["--user", "restart", "ollama.service"])],
        "exactly one action call: {calls:?}"
    );
    assert_eq!(
        calls.len(),
        3,
        "status read, action, status read: {calls:?}"
    );

    // `update` of ollama pulls every configured model, one `ollama pull` each.
    let updated = call_ok(
        &mut ops.ws,
        "system.localBackendControl",
        json!({"backend": "ollama", "action": "update"}),
    )
    .await;
    assert_eq!(
        updated["message"],
        json!("Pulled 2 model(s): llama3.2:3b, nomic-embed-text.")
    );
    assert_eq!(
        ops.tools.calls("ollama"),
        [
            strings(&["pull", "llama3.2:3b"]),
            strings(&["pull", "nomic-embed-text"])
        ]
    );

    // An action the unit does not offer now (llama-server failed: start, update).
    let reply = ops
        .ws
        .call(
            "system.localBackendControl",
            json!({"backend": "llamacpp", "action": "stop"}),
        )
        .await;
    assert_invalid(&reply, "params.action", "stop of a failed unit");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("start, update"),
        "{reply}"
    );
    // `update` of llama.cpp restarts its unit (model files are managed outside Flynn).
    let before = ops.tools.calls("systemctl").len();
    let updated = call_ok(
        &mut ops.ws,
        "system.localBackendControl",
        json!({"backend": "llamacpp", "action": "update"}),
    )
    .await;
    assert_eq!(updated["backend"], json!("llamacpp"));
    assert_eq!(updated["status"]["id"], json!("llamacpp"));
    assert!(
        updated["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Restarted llama-server.service")),
        "{updated}"
    );
    let calls = ops.tools.calls("systemctl")[before..].to_vec();
    let actions: Vec<&Vec<String>> = calls.iter().filter(|c| c[1] != "show").collect();
    assert_eq!(
        actions,
        [&strings(&["--user", "restart", "llama-server.service"])],
        "{calls:?}"
    );

    let after = ops.tools.calls("systemctl");
    assert!(
        !after.iter().any(|c| c[1] == "stop"),
        "the refused stop never ran: {after:?}"
    );
    ops.stop().await;
}

#[tokio::test]
async fn unknown_backend_is_invalid_request_and_runs_nothing() {
    let mut ops = start_recorded().await;
    let systemctl = ops.tools.calls("systemctl").len();
    for id in ["vllm", "ollama.service", "--user"] {
        let reply = ops
            .ws
            .call(
                "system.localBackendControl",
                json!({"backend": id, "action": "restart"}),
            )
            .await;
        assert_invalid(&reply, "params.backend", &format!("backend {id}"));
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ollama, llamacpp"),
            "the error lists the valid ids: {reply}"
        );
    }
    let reply = ops
        .ws
        .call(
            "system.localBackendControl",
            json!({"backend": "ollama", "action": "reload"}),
        )
        .await;
    assert_invalid(&reply, "params.action", "an action outside the enum");
    assert_eq!(
        ops.tools.calls("systemctl").len(),
        systemctl,
        "systemctl is not called for an unknown id: {:?}",
        ops.tools.calls("systemctl")
    );
    assert!(ops.tools.calls("ollama").is_empty());
    ops.stop().await;
}

#[tokio::test]
async fn docker_dependencies_come_from_the_compose_file_without_flynn() {
    let mut ops = start_recorded().await;
    let before = ops.tools.calls("docker").len();
    let result = call_ok(&mut ops.ws, "system.dockerDependencies", json!({})).await;
    assert_eq!(
        result,
        json!({"dependencies": [
            {
                "id": "whisper", "name": "Whisper (whisper.cpp)", "service": "whisper-server",
                "configured": true, "state": "running", "health": "healthy",
                "statusText": "Up 14 seconds (healthy)", "containerName": "flynn-whisper-server-1",
                "availableActions": ["restart", "stop", "update"]
            },
            {
                "id": "brave-search", "name": "Brave Search", "service": "brave-search",
                "configured": true, "state": "running", "health": "unhealthy",
                "statusText": "Up 13 seconds (unhealthy)", "containerName": "brave-search",
                "availableActions": ["restart", "stop", "update"]
            },
            {
                "id": "searxng", "name": "SearXNG", "service": "searxng",
                "configured": true, "state": "exited", "health": "none",
                "statusText": "Exited (1) 13 seconds ago", "containerName": "searxng",
                "availableActions": ["start", "update"]
            },
            {
                "id": "redis-cache", "name": "redis-cache", "service": "redis-cache",
                "configured": true, "state": "missing", "health": "none",
                "statusText": "no container (not created yet)",
                "availableActions": ["start", "update"]
            }
        ]}),
        "profile-scoped services are listed, the `flynn` service is not"
    );
    assert_eq!(ops.tools.calls("docker")[before..], [ops.ps_args()]);
    ops.stop().await;
}

#[tokio::test]
async fn docker_dependency_control_runs_compose_for_listed_ids_only() {
    let mut ops = start_recorded().await;
    let before = ops.tools.calls("docker").len();
    let updated = call_ok(
        &mut ops.ws,
        "system.dockerDependencyControl",
        json!({"dependency": "brave-search", "action": "update"}),
    )
    .await;
    assert_eq!(updated["dependency"], json!("brave-search"));
    assert_eq!(updated["action"], json!("update"));
    assert_eq!(
        updated["status"],
        json!({"id": "brave-search", "state": "running", "health": "unhealthy",
               "statusText": "running (unhealthy)"})
    );
    assert_eq!(
        ops.tools.calls("docker")[before..],
        [
            ops.ps_args(),
            ops.compose_args(&["pull", "brave-search"]),
            ops.compose_args(&["up", "-d", "brave-search"]),
            ops.ps_args(),
        ],
        "update = pull, then up -d, of that compose service"
    );

    let before = ops.tools.calls("docker").len();
    let started = call_ok(
        &mut ops.ws,
        "system.dockerDependencyControl",
        json!({"dependency": "searxng", "action": "start"}),
    )
    .await;
    assert_eq!(
        started,
        json!({"dependency": "searxng", "action": "start",
               "status": {"id": "searxng", "state": "running", "health": "none",
                          "statusText": "running"},
               "message": "Started searxng container."})
    );
    assert_eq!(
        ops.tools.calls("docker")[before..],
        [
            ops.ps_args(),
            ops.compose_args(&["start", "searxng"]),
            ops.ps_args()
        ]
    );

    // Ids are those of the listing: not Flynn itself, not compose service names.
    let before = ops.tools.calls("docker").len();
    for id in ["flynn", "whisper-server", "nope"] {
        let reply = ops
            .ws
            .call(
                "system.dockerDependencyControl",
                json!({"dependency": id, "action": "restart"}),
            )
            .await;
        assert_invalid(&reply, "params.dependency", &format!("dependency {id}"));
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("whisper, brave-search, searxng, redis-cache"),
            "{reply}"
        );
    }
    assert_eq!(
        ops.tools.calls("docker").len(),
        before,
        "docker is not called for an unknown id"
    );
    // An action not available now (redis-cache has no container: start, update).
    let reply = ops
        .ws
        .call(
            "system.dockerDependencyControl",
            json!({"dependency": "redis-cache", "action": "stop"}),
        )
        .await;
    assert_invalid(&reply, "params.action", "stop without a container");
    ops.stop().await;
}

#[tokio::test]
async fn observability_sources_and_sampled_series() {
    let mut ops = start_recorded().await;
    let sources = call_ok(&mut ops.ws, "system.observabilitySources", json!({})).await;
    let source = |id: &str, name: &str, kind: &str, runtime: &str, status: &str, logs: bool| {
        json!({"id": id, "name": name, "kind": kind, "runtime": runtime, "status": status,
               "graphCapable": true, "logCapable": logs})
    };
    assert_eq!(
        sources,
        json!({"sources": [
            source("systemd:flynn", "Flynn daemon", "systemd_system", "systemd_system", "running", true),
            source("systemd:ollama", "Ollama", "local_backend", "systemd_user", "running", true),
            source("systemd:llamacpp", "llama.cpp", "local_backend", "systemd_user", "failed", true),
            source("docker:whisper", "Whisper (whisper.cpp)", "docker_dependency", "docker_compose", "running", true),
            source("docker:brave-search", "Brave Search", "docker_dependency", "docker_compose", "running", true),
            source("docker:searxng", "SearXNG", "docker_dependency", "docker_compose", "failed", true),
            source("docker:redis-cache", "redis-cache", "docker_dependency", "docker_compose", "stopped", false),
        ]})
    );

    let t = now_ms();
    let series = call_ok(
        &mut ops.ws,
        "system.observabilitySeries",
        json!({"windowMinutes": 5, "bucketSeconds": 1}),
    )
    .await;
    let generated = series["generatedAt"].as_u64().expect("generatedAt ms");
    assert!(generated >= t && generated <= now_ms(), "{series}");
    assert_eq!(series["windowMinutes"], json!(5));
    assert_eq!(series["bucketSeconds"], json!(1));
    let ids: Vec<&Value> = series["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["sourceId"])
        .collect();
    assert_eq!(
        ids,
        [
            "systemd:flynn",
            "systemd:ollama",
            "systemd:llamacpp",
            "docker:whisper",
            "docker:brave-search",
            "docker:searxng",
            "docker:redis-cache"
        ]
        .map(|id| json!(id))
        .iter()
        .collect::<Vec<_>>()
    );
    // The first sample: (stateCode, healthCode) per source, from the recordings.
    let expected = [(3, 2), (3, 2), (1, 1), (3, 2), (3, 1), (1, 0), (1, 0)];
    for (s, (state, health)) in series["series"].as_array().unwrap().iter().zip(expected) {
        let points = s["points"].as_array().unwrap();
        assert_eq!(points.len(), 1, "one sample so far: {s}");
        let p = &points[0];
        assert_eq!(
            (p["stateCode"].clone(), p["healthCode"].clone()),
            (json!(state), json!(health)),
            "{s}"
        );
        assert_eq!(p["restartCount"], json!(0), "{s}");
        assert_eq!(p["errorCount"], json!(0), "{s}");
        assert!(p["ts"].as_u64().is_some_and(|ts| ts <= generated), "{s}");
    }
    let one = call_ok(
        &mut ops.ws,
        "system.observabilitySeries",
        json!({"sourceIds": ["docker:whisper"]}),
    )
    .await;
    assert_eq!(one["windowMinutes"], json!(60), "default window");
    assert_eq!(one["bucketSeconds"], json!(30), "default bucket");
    assert_eq!(one["series"].as_array().unwrap().len(), 1);
    assert_eq!(one["series"][0]["sourceId"], json!("docker:whisper"));

    for (params, path) in [
        (json!({"windowMinutes": 0}), "params.windowMinutes"),
        (json!({"windowMinutes": 1441}), "params.windowMinutes"),
        (json!({"bucketSeconds": 3601}), "params.bucketSeconds"),
        // Spec: "Unknown ids in `sourceIds` are InvalidRequest on `params.sourceIds`."
        (json!({"sourceIds": ["docker:flynn"]}), "params.sourceIds"),
    ] {
        let reply = ops
            .ws
            .call("system.observabilitySeries", params.clone())
            .await;
        assert_invalid(
            &reply,
            path,
            &format!("system.observabilitySeries {params}"),
        );
    }
    ops.stop().await;
}

#[tokio::test]
async fn service_logs_of_docker_and_journald_sources_are_masked() {
    let mut ops = start_recorded().await;
    let before = ops.tools.calls("docker").len();
    let logs = call_ok(
        &mut ops.ws,
        "system.serviceLogs",
        json!({"sourceId": "docker:whisper", "lines": 200, "sinceSeconds": 900}),
    )
    .await;
    const WHISPER_TS: u64 = 1_795_319_714_437;
    assert_eq!(logs["sourceId"], json!("docker:whisper"));
    assert_eq!(logs["redacted"], json!(true), "a bearer token was masked");
    assert_eq!(logs["truncated"], json!(false));
    assert_eq!(
        logs["lines"],
        json!([
            {"ts": WHISPER_TS, "level": "unknown",
             "text": "whisper_init_from_file_with_params_no_state: loading model from /models/ggml-base.en.bin"},
            {"ts": WHISPER_TS, "level": "unknown", "text": "whisper server listening at http://0.0.0.0:8080"},
            {"ts": WHISPER_TS, "level": "warn", "text": "WARN: request took 2.5s"},
            {"ts": WHISPER_TS, "level": "error", "text": "error: failed to read audio: Authorization: ***"},
        ])
    );
    assert!(!logs.to_string().contains("abc123secretvalue"), "{logs}");
    assert!(logs["fetchedAt"].as_u64().is_some_and(|t| t <= now_ms()));
    assert_eq!(
        ops.tools.calls("docker")[before..],
        [
            ops.ps_args(),
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
    // Fewer lines than exist: the newest, marked truncated.
    let two = call_ok(
        &mut ops.ws,
        "system.serviceLogs",
        json!({"sourceId": "docker:whisper", "lines": 2}),
    )
    .await;
    assert_eq!(two["truncated"], json!(true));
    assert_eq!(two["lines"].as_array().unwrap().len(), 2);
    assert_eq!(two["lines"][1]["level"], json!("error"));

    let journal = call_ok(
        &mut ops.ws,
        "system.serviceLogs",
        json!({"sourceId": "systemd:ollama"}),
    )
    .await;
    assert_eq!(journal["redacted"], json!(true));
    let texts: Vec<&str> = journal["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 7, "{journal}");
    assert!(
        texts.contains(&"llama_model_load: error loading model: api_key=***"),
        "{texts:?}"
    );
    assert_eq!(
        ops.tools.calls("journalctl").last().unwrap(),
        &strings(&["--user", "-u", "ollama.service", "-o", "json", "-n", "201"])
    );

    for id in ["docker:flynn", "systemd:vllm", "k8s:whisper"] {
        let reply = ops
            .ws
            .call("system.serviceLogs", json!({"sourceId": id}))
            .await;
        assert_invalid(&reply, "params.sourceId", &format!("logs of {id}"));
    }
    let reply = ops
        .ws
        .call(
            "system.serviceLogs",
            json!({"sourceId": "docker:whisper", "lines": 0}),
        )
        .await;
    assert_invalid(&reply, "params.lines", "lines 0");
    ops.stop().await;
}

/// Feeds the daemon's log buffer from this thread's events, as `main`'s subscriber does for the
/// whole process, until the guard is dropped. Only this thread: the other tests of the binary
/// (and their gateways) run in the same process and must neither get a subscriber nor fill the
/// buffer. A `#[tokio::test]` runs its gateway's tasks on the test's thread.
#[must_use]
fn capture_daemon_logs() -> tracing::subscriber::DefaultGuard {
    use tracing_subscriber::layer::SubscriberExt;
    let buffer = flynn_gateway::logging::buffer(2000);
    let subscriber = tracing_subscriber::registry().with(buffer.layer());
    tracing::subscriber::set_default(subscriber)
}

#[tokio::test]
async fn service_logs_of_the_daemon_come_from_its_own_log_buffer() {
    let _logs = capture_daemon_logs();
    let mut ops = start_recorded().await;
    let listening = format!("listening on ws://{}/", ops.gw.addr);
    tracing::warn!(
        header = "Authorization: Bearer sk-abcdefghijklmnop1234",
        "upstream refused the request"
    );
    let logs = call_ok(
        &mut ops.ws,
        "system.serviceLogs",
        json!({"sourceId": "systemd:flynn", "sinceSeconds": 600}),
    )
    .await;
    let lines = logs["lines"].as_array().unwrap();
    assert!(
        lines.iter().any(
            |l| l["level"] == json!("info") && l["text"].as_str().unwrap().contains(&listening)
        ),
        "the daemon's start line `{listening}` is in its log: {logs}"
    );
    let refused: Vec<&Value> = lines
        .iter()
        .filter(|l| l["text"].as_str().unwrap().contains("upstream refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{logs}");
    assert_eq!(refused[0]["level"], json!("warn"));
    assert!(
        !logs.to_string().contains("sk-abcdefghijklmnop1234"),
        "secrets are masked: {logs}"
    );
    assert_eq!(logs["redacted"], json!(true));
    let ts: Vec<u64> = lines.iter().map(|l| l["ts"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ts:?}");
    ops.stop().await;
}

#[tokio::test]
async fn missing_binaries_leave_every_entry_unavailable_with_the_error() {
    // No fake is written: every configured binary path is missing.
    let mut ops = start(FakeTools::new()).await;
    let backends = call_ok(&mut ops.ws, "system.localBackends", json!({})).await;
    assert_eq!(
        backends["backends"].as_array().unwrap().len(),
        2,
        "{backends}"
    );
    for id in ["ollama", "llamacpp"] {
        let b = backend(&backends, id);
        assert_eq!(b["configured"], json!(true), "{b}");
        assert_eq!(b["activeState"], json!("unavailable"), "{b}");
        assert_eq!(b["availableActions"], json!([]), "{b}");
        let error = b["error"]
            .as_str()
            .unwrap_or_else(|| panic!("`error` text: {b}"));
        assert!(
            error.contains("systemctl` was not found") && error.contains("[ops.binaries]"),
            "the entry carries the error text: {b}"
        );
        assert!(
            b["statusText"]
                .as_str()
                .is_some_and(|t| t.starts_with("unavailable: ")),
            "{b}"
        );
    }
    let deps = call_ok(&mut ops.ws, "system.dockerDependencies", json!({})).await;
    let deps = deps["dependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 4);
    for d in deps {
        assert_eq!(d["configured"], json!(true), "{d}");
        assert_eq!(d["state"], json!("unavailable"), "{d}");
        assert_eq!(d["availableActions"], json!([]), "{d}");
        assert!(
            d["error"]
                .as_str()
                .is_some_and(|e| e.contains("docker` was not found")),
            "the entry carries the error text: {d}"
        );
    }
    let sources = call_ok(&mut ops.ws, "system.observabilitySources", json!({})).await;
    let statuses: Vec<(&Value, &Value)> = sources["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (&s["id"], &s["status"]))
        .collect();
    assert_eq!(statuses.len(), 7, "{sources}");
    assert_eq!(statuses[0], (&json!("systemd:flynn"), &json!("running")));
    assert_eq!(statuses[1], (&json!("systemd:ollama"), &json!("unknown")));

    // A control action cannot run: refused as unavailable, nothing started.
    let reply = ops
        .ws
        .call(
            "system.localBackendControl",
            json!({"backend": "ollama", "action": "restart"}),
        )
        .await;
    assert_invalid(
        &reply,
        "params.action",
        "restart while systemctl is missing",
    );
    // Logs of a backend need journalctl: a failed command is InternalError with its message.
    let reply = ops
        .ws
        .call("system.serviceLogs", json!({"sourceId": "systemd:ollama"}))
        .await;
    assert_code(&reply, 5, "logs while journalctl is missing");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("journalctl` was not found"),
        "{reply}"
    );
    ops.stop().await;
}

#[tokio::test]
async fn failing_tools_are_reported_per_entry_with_their_message() {
    let tools = FakeTools::new();
    tools.tool(
        "systemctl",
        &format!("{}; exit 1", cat_err("systemctl/show-no-bus.stderr")),
    );
    tools.tool(
        "docker",
        &format!("{}; exit 1", cat_err("docker/daemon-down.stderr")),
    );
    let mut ops = start(tools).await;
    let backends = call_ok(&mut ops.ws, "system.localBackends", json!({})).await;
    for id in ["ollama", "llamacpp"] {
        let b = backend(&backends, id);
        assert_eq!(b["activeState"], json!("unavailable"), "{b}");
        let error = b["error"]
            .as_str()
            .unwrap_or_else(|| panic!("`error` text: {b}"));
        assert!(
            error.contains("Failed to connect to bus: No medium found")
                && error.contains("exit status 1"),
            "{b}"
        );
    }
    let deps = call_ok(&mut ops.ws, "system.dockerDependencies", json!({})).await;
    for d in deps["dependencies"].as_array().unwrap() {
        assert_eq!(d["state"], json!("unavailable"), "{d}");
        assert!(
            d["error"].as_str().is_some_and(|e| e.contains(
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
            )),
            "{d}"
        );
    }
    let reply = ops
        .ws
        .call("system.serviceLogs", json!({"sourceId": "docker:whisper"}))
        .await;
    assert_code(&reply, 5, "docker logs while the engine is down");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Cannot connect to the Docker daemon"),
        "{reply}"
    );
    ops.stop().await;
}
