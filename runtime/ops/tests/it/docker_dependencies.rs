//! `system.dockerDependencies` / `system.dockerDependencyControl`: compose file parsing and a
//! fake `docker` printing recorded `docker compose ps --format json` output (both forms).

use crate::common::{
    FakeTools, OpsFakes, assert_matches_spec, cat, cat_err, fixture, ops, strings,
};
use flynn_ops::compose::{self, ComposeService};
use flynn_ops::{OpsConfig, OpsError};
use flynn_protocol::types::ControlAction;
use serde_json::json;

fn compose_file() -> String {
    fixture("compose/docker-compose.yml").display().to_string()
}

fn ps_args() -> Vec<String> {
    strings(&[
        "compose",
        "-f",
        &compose_file(),
        "ps",
        "--all",
        "--format",
        "json",
    ])
}

fn compose_args(rest: &[&str]) -> Vec<String> {
    let mut args = strings(&["compose", "-f", &compose_file()]);
    args.extend(strings(rest));
    args
}

fn docker_config(tools: &FakeTools) -> OpsConfig {
    let mut config = tools.config();
    config.docker.compose_file = Some(fixture("compose/docker-compose.yml"));
    config
}

/// A docker whose `ps` prints `ps_fixture`, and whose start/restart/stop/pull/up succeed; after
/// `start searxng` the recorded exited searxng line reads as running.
fn stateful_docker(tools: &FakeTools, ps_fixture: &str) {
    tools.tool(
        "docker",
        &format!(
            "case \"$*\" in\n\
             *' ps --all --format json') if [ -f \"$STATE/searxng.started\" ]; then \
               sed 's/\"State\":\"exited\",\"Status\":\"Exited (1) 13 seconds ago\"/\"State\":\"running\",\"Status\":\"Up 1 second\"/' '{ps}'; \
             else cat '{ps}'; fi ;;\n\
             *' start searxng') touch \"$STATE/searxng.started\" ;;\n\
             *' start '*|*' restart '*|*' stop '*|*' pull '*|*' up -d '*) : ;;\n\
             *) echo \"unexpected: $*\" >&2; exit 2 ;;\n\
             esac",
            ps = fixture(ps_fixture).display()
        ),
    );
}

#[test]
fn compose_file_lists_profile_services_and_skips_flynn() {
    let text = std::fs::read_to_string(fixture("compose/docker-compose.yml")).unwrap();
    let services = compose::parse(&text, "flynn").unwrap();
    let summary: Vec<(&str, &str, &str, Vec<String>)> = services
        .iter()
        .map(|s| {
            (
                s.id.as_str(),
                s.name.as_str(),
                s.service.as_str(),
                s.profiles.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "whisper",
                "Whisper (whisper.cpp)",
                "whisper-server",
                strings(&["voice"])
            ),
            (
                "brave-search",
                "Brave Search",
                "brave-search",
                strings(&["search"])
            ),
            ("searxng", "SearXNG", "searxng", strings(&["search"])),
            ("redis-cache", "Redis cache", "redis-cache", Vec::new()),
        ]
    );

    // Another self service name: `flynn` is then a dependency like any other.
    let services = compose::parse(&text, "searxng").unwrap();
    let ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["flynn", "whisper", "brave-search", "redis-cache"]);
}

#[test]
fn compose_names_and_ids_follow_extensions_labels_and_the_suffix_rule() {
    let text = r#"
services:
  tts-server:
    image: x
    labels:
      - "flynn.name=Piper TTS"
      - "flynn.id=tts"
  ocr-server:
    image: x
    labels:
      flynn.name: Tesseract
  ocr:
    image: x
  embed-server:
    image: x
    x-flynn-id: embeddings
    x-flynn-name: Embeddings
  -bad:
    image: x
  server:
    image: x
  a-svc:
    x-flynn-id: dup
  b-svc:
    x-flynn-id: dup
"#;
    let services = compose::parse(text, "flynn").unwrap();
    let summary: Vec<(&str, &str, &str)> = services
        .iter()
        .map(|s| (s.id.as_str(), s.name.as_str(), s.service.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("tts", "Piper TTS", "tts-server"),
            // `ocr` is the name of another service, so this one keeps its own name.
            ("ocr-server", "Tesseract", "ocr-server"),
            ("ocr", "ocr", "ocr"),
            ("embeddings", "Embeddings", "embed-server"),
            ("server", "server", "server"),
            ("dup", "a-svc", "a-svc"),
            // `dup` is taken by the earlier service.
            ("b-svc", "b-svc", "b-svc"),
        ]
    );
    // Ids are distinct.
    let mut ids: Vec<&str> = services.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), services.len(), "{services:?}");

    assert_eq!(compose::default_id("whisper-server"), "whisper");
    assert_eq!(compose::default_id("brave-search"), "brave-search");
    assert_eq!(compose::default_id("-server"), "-server");
}

#[test]
fn compose_errors_and_empty_files() {
    assert_eq!(
        compose::parse("version: '3'\n", "flynn").unwrap(),
        Vec::<ComposeService>::new()
    );
    assert!(
        compose::parse("services: [a, b]\n", "flynn")
            .unwrap_err()
            .contains("mapping")
    );
    assert!(compose::parse("services:\n  a: [\n", "flynn").is_err());
}

#[tokio::test]
async fn ndjson_ps_output_maps_state_health_and_missing_containers() {
    let tools = FakeTools::new();
    tools.tool("docker", &cat("docker/compose-ps.ndjson"));
    let result = ops(docker_config(&tools))
        .docker_dependencies()
        .await
        .unwrap();
    let value = serde_json::to_value(&result).unwrap();
    assert_eq!(
        value,
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
                "id": "redis-cache", "name": "Redis cache", "service": "redis-cache",
                "configured": true, "state": "missing", "health": "none",
                "statusText": "no container (not created yet)",
                "availableActions": ["start", "update"]
            }
        ]})
    );
    assert_matches_spec("SystemDockerDependenciesResult", &value);
    assert_eq!(tools.calls("docker"), vec![ps_args()]);
}

#[tokio::test]
async fn array_ps_output_gives_the_same_states() {
    let tools = FakeTools::new();
    tools.tool("docker", &cat("docker/compose-ps-array.json"));
    let mut config = docker_config(&tools);
    config.docker.project_name = Some("flynn".into());
    let result = ops(config).docker_dependencies().await.unwrap();
    let states: Vec<(&str, &str, &str, Option<&str>)> = result
        .dependencies
        .iter()
        .map(|d| {
            (
                d.id.as_str(),
                d.state.as_str(),
                d.health.as_str(),
                d.container_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (
                "whisper",
                "running",
                "healthy",
                Some("flynn-whisper-server-1")
            ),
            ("brave-search", "running", "unhealthy", Some("brave-search")),
            ("searxng", "exited", "none", Some("searxng")),
            ("redis-cache", "missing", "none", None),
        ]
    );
    assert_eq!(
        result.dependencies[0].status_text,
        "Up 23 seconds (healthy)"
    );
    assert_eq!(
        tools.calls("docker"),
        vec![compose_args(&[
            "-p", "flynn", "ps", "--all", "--format", "json"
        ])]
    );
}

#[tokio::test]
async fn docker_failures_list_every_dependency_as_unavailable() {
    let cases = [
        (
            format!("{}; exit 125", cat_err("docker/compose-missing.stderr")),
            "unknown shorthand flag: 'f' in -f",
        ),
        (
            format!("{}; exit 1", cat_err("docker/daemon-down.stderr")),
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
        ),
        (
            "echo '{\"Service\": ' ".to_owned(),
            "docker compose ps printed an invalid JSON line",
        ),
    ];
    for (body, message) in cases {
        let tools = FakeTools::new();
        tools.tool("docker", &body);
        let result = ops(docker_config(&tools))
            .docker_dependencies()
            .await
            .unwrap();
        assert_eq!(result.dependencies.len(), 4);
        for dependency in &result.dependencies {
            assert_eq!(dependency.state, "unavailable");
            assert_eq!(dependency.health, "unknown");
            assert!(dependency.available_actions.is_empty());
            let error = dependency.error.as_deref().unwrap();
            assert!(error.contains(message), "{error}");
        }
        assert_matches_spec(
            "SystemDockerDependenciesResult",
            &serde_json::to_value(&result).unwrap(),
        );
    }

    // No docker at all.
    let tools = FakeTools::new();
    let result = ops(docker_config(&tools))
        .docker_dependencies()
        .await
        .unwrap();
    let error = result.dependencies[0].error.as_deref().unwrap();
    assert!(error.contains("was not found"), "{error}");
}

#[tokio::test]
async fn no_compose_file_means_no_dependencies_and_a_bad_one_is_an_error() {
    let tools = FakeTools::new();
    tools.tool("docker", &cat("docker/compose-ps.ndjson"));
    let result = ops(tools.config()).docker_dependencies().await.unwrap();
    assert!(result.dependencies.is_empty());
    assert!(tools.calls("docker").is_empty());

    let mut config = tools.config();
    config.docker.compose_file = Some(tools.root().join("missing.yml"));
    let err = ops(config).docker_dependencies().await.unwrap_err();
    assert!(matches!(err, OpsError::ComposeFile(_)));
    assert!(
        err.to_string().contains("cannot read the compose file"),
        "{err}"
    );
    assert!(
        err.to_string().contains("[ops.docker].compose_file"),
        "{err}"
    );
}

#[tokio::test]
async fn start_of_an_exited_dependency_runs_compose_start() {
    let tools = FakeTools::new();
    stateful_docker(&tools, "docker/compose-ps.ndjson");
    let result = ops(docker_config(&tools))
        .docker_dependency_control("searxng", ControlAction::Start)
        .await
        .unwrap();
    let value = serde_json::to_value(&result).unwrap();
    assert_eq!(
        value,
        json!({
            "dependency": "searxng",
            "action": "start",
            "status": {"id": "searxng", "state": "running", "health": "none", "statusText": "running"},
            "message": "Started searxng container."
        })
    );
    assert_matches_spec("SystemDockerDependencyControlResult", &value);
    assert_eq!(
        tools.calls("docker"),
        vec![ps_args(), compose_args(&["start", "searxng"]), ps_args()]
    );
}

#[tokio::test]
async fn restart_stop_and_update_target_the_compose_service() {
    let tools = FakeTools::new();
    stateful_docker(&tools, "docker/compose-ps-array.json");
    let ops = ops(docker_config(&tools));
    let restarted = ops
        .docker_dependency_control("whisper", ControlAction::Restart)
        .await
        .unwrap();
    assert_eq!(
        restarted.status.status_text, "running (healthy)",
        "{restarted:?}"
    );
    assert_eq!(
        restarted.message.as_deref(),
        Some("Restarted whisper-server container.")
    );
    ops.docker_dependency_control("whisper", ControlAction::Stop)
        .await
        .unwrap();
    let updated = ops
        .docker_dependency_control("brave-search", ControlAction::Update)
        .await
        .unwrap();
    assert_eq!(updated.status.health, "unhealthy");
    let created = ops
        .docker_dependency_control("redis-cache", ControlAction::Start)
        .await
        .unwrap();
    assert_eq!(
        created.message.as_deref(),
        Some("Created and started redis-cache container.")
    );

    assert_eq!(
        tools.calls("docker"),
        vec![
            ps_args(),
            compose_args(&["restart", "whisper-server"]),
            ps_args(),
            ps_args(),
            compose_args(&["stop", "whisper-server"]),
            ps_args(),
            ps_args(),
            compose_args(&["pull", "brave-search"]),
            compose_args(&["up", "-d", "brave-search"]),
            ps_args(),
            ps_args(),
            compose_args(&["up", "-d", "redis-cache"]),
            ps_args(),
        ]
    );
}

#[tokio::test]
async fn control_only_accepts_listed_ids_and_available_actions() {
    let tools = FakeTools::new();
    stateful_docker(&tools, "docker/compose-ps.ndjson");
    let ops = ops(docker_config(&tools));
    for id in ["flynn", "whisper-server"] {
        let err = ops
            .docker_dependency_control(id, ControlAction::Restart)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            OpsError::UnknownDependency {
                id: id.into(),
                valid: strings(&["whisper", "brave-search", "searxng", "redis-cache"]),
            }
        );
        assert!(err.is_invalid_request());
    }
    assert!(tools.calls("docker").is_empty());

    let err = ops
        .docker_dependency_control("searxng", ControlAction::Stop)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("action `stop` is not available for docker dependency `searxng` now (status: Exited (1) 13 seconds ago); available actions: start, update"),
        "{err}"
    );
    assert_eq!(tools.calls("docker"), vec![ps_args()]);
}

#[tokio::test]
async fn control_is_refused_while_docker_is_unavailable() {
    let tools = FakeTools::new();
    tools.tool(
        "docker",
        &format!("{}; exit 1", cat_err("docker/daemon-down.stderr")),
    );
    let err = ops(docker_config(&tools))
        .docker_dependency_control("whisper", ControlAction::Restart)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("available actions: (none)"), "{text}");
    assert!(
        text.contains("Cannot connect to the Docker daemon"),
        "{text}"
    );
    assert_eq!(tools.calls("docker"), vec![ps_args()]);
}
