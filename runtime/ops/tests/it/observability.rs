//! Observability sources, the sampler, its bounded rings, restart and error counting, and the
//! bucketing of `system.observabilitySeries`.

use std::time::{Duration, Instant};

use crate::common::{
    FakeTools, OpsFakes, assert_matches_spec, cat, cat_err, fixture, ops, strings,
};
use flynn_ops::observability::{Observation, bucket_points};
use flynn_ops::{
    BackendProvider, DAEMON_SOURCE_ID, LocalBackendConfig, LogBuffer, LogLevel, LogRecord, Ops,
    OpsConfig, OpsError, SeriesStore,
};
use flynn_protocol::types::ObservabilityPoint;
use serde_json::json;

/// A multiple of 30 s, so 30 s buckets start at it.
const T0: u64 = 1_795_318_980_000;

fn point(ts: u64, state_code: u64, error_count: u64) -> ObservabilityPoint {
    ObservabilityPoint {
        ts,
        state_code,
        health_code: 0,
        error_count,
        restart_count: 0,
    }
}

/// systemctl (ollama running, llama.cpp failed) and docker (recorded compose ps, logs).
///
/// The recorded `ps` says "Up 14 seconds" however late it is asked, which looks like a restart
/// to samples taken 30 s apart; `long_uptime` makes it "Up 2 hours" instead.
fn recorded_tools(tools: &FakeTools, long_uptime: bool) {
    let ps = if long_uptime {
        format!(
            "sed 's/\"Status\":\"Up [0-9]* seconds/\"Status\":\"Up 2 hours/' '{}'",
            fixture("docker/compose-ps.ndjson").display()
        )
    } else {
        cat("docker/compose-ps.ndjson")
    };
    tools.tool(
        "systemctl",
        &format!(
            "case \"$3\" in\n\
             ollama.service) {} ;;\n\
             llama-server.service) {} ;;\n\
             esac",
            cat("systemctl/show-ollama-running.txt"),
            cat("systemctl/show-llama-server-failed.txt"),
        ),
    );
    tools.tool(
        "docker",
        &format!(
            "for a in \"$@\"; do last=$a; done\n\
             case \"$1 $last\" in\n\
             'compose json') {ps} ;;\n\
             'logs flynn-whisper-server-1') {wo}; {we} ;;\n\
             'logs brave-search') {bo}; {be} ;;\n\
             'logs searxng') {so}; {se} ;;\n\
             *) echo \"unexpected: $*\" >&2; exit 2 ;;\n\
             esac",
            ps = ps,
            wo = cat("docker/logs-whisper.stdout"),
            we = cat_err("docker/logs-whisper.stderr"),
            bo = cat("docker/logs-brave-search.stdout"),
            be = cat_err("docker/logs-brave-search.stderr"),
            so = cat("docker/logs-searxng.stdout"),
            se = cat_err("docker/logs-searxng.stderr"),
        ),
    );
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

fn full_config(tools: &FakeTools) -> OpsConfig {
    let mut config = tools.config();
    config.local_backends = vec![
        LocalBackendConfig::new(BackendProvider::Ollama),
        LocalBackendConfig::new(BackendProvider::Llamacpp),
    ];
    config.docker.compose_file = Some(fixture("compose/docker-compose.yml"));
    config
}

fn source_ids() -> Vec<String> {
    strings(&[
        "systemd:flynn",
        "systemd:ollama",
        "systemd:llamacpp",
        "docker:whisper",
        "docker:brave-search",
        "docker:searxng",
        "docker:redis-cache",
    ])
}

#[tokio::test]
async fn sources_cover_the_daemon_backends_and_dependencies() {
    let tools = FakeTools::new();
    recorded_tools(&tools, false);
    let result = ops(full_config(&tools)).observability_sources().await;
    let value = serde_json::to_value(&result).unwrap();
    let source = |id: &str, name: &str, kind: &str, runtime: &str, status: &str, logs: bool| {
        json!({"id": id, "name": name, "kind": kind, "runtime": runtime, "status": status,
               "graphCapable": true, "logCapable": logs})
    };
    assert_eq!(
        value,
        json!({"sources": [
            source("systemd:flynn", "Flynn daemon", "systemd_system", "systemd_system", "running", true),
            source("systemd:ollama", "Ollama", "local_backend", "systemd_user", "running", true),
            source("systemd:llamacpp", "llama.cpp", "local_backend", "systemd_user", "failed", true),
            source("docker:whisper", "Whisper (whisper.cpp)", "docker_dependency", "docker_compose", "running", true),
            source("docker:brave-search", "Brave Search", "docker_dependency", "docker_compose", "running", true),
            source("docker:searxng", "SearXNG", "docker_dependency", "docker_compose", "failed", true),
            source("docker:redis-cache", "Redis cache", "docker_dependency", "docker_compose", "stopped", false),
        ]})
    );
    assert_matches_spec("SystemObservabilitySourcesResult", &value);
}

#[tokio::test]
async fn sources_survive_missing_tools_and_a_broken_compose_file() {
    let tools = FakeTools::new(); // no fake tools at all
    let mut config = full_config(&tools);
    config.docker.compose_file = Some(tools.root().join("missing.yml"));
    let result = ops(config).observability_sources().await;
    let summary: Vec<(&str, &str)> = result
        .sources
        .iter()
        .map(|s| (s.id.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("systemd:flynn", "running"),
            ("systemd:ollama", "unknown"),
            ("systemd:llamacpp", "unknown"),
        ]
    );
}

#[tokio::test]
async fn samples_carry_the_state_and_health_codes_and_rings_are_bounded() {
    let tools = FakeTools::new();
    recorded_tools(&tools, true);
    let mut config = full_config(&tools);
    config.ring_capacity = 3;
    config.sample_error_counts = false;
    let ops = ops(config);
    for i in 0..5 {
        ops.sample(T0 + i * 30_000).await;
    }
    let now = T0 + 4 * 30_000;
    let result = ops
        .observability_series(Some(60), Some(1), None, now)
        .await
        .unwrap();
    let value = serde_json::to_value(&result).unwrap();
    assert_matches_spec("SystemObservabilitySeriesResult", &value);
    assert_eq!(result.generated_at, now);
    let ids: Vec<&str> = result.series.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(ids, source_ids());
    let expected_codes = [(3, 2), (3, 2), (1, 1), (3, 2), (3, 1), (1, 0), (1, 0)];
    for (series, (state, health)) in result.series.iter().zip(expected_codes) {
        let times: Vec<u64> = series.points.iter().map(|p| p.ts).collect();
        assert_eq!(
            times,
            [T0 + 60_000, T0 + 90_000, T0 + 120_000],
            "{}: the ring keeps the newest 3",
            series.source_id
        );
        for p in &series.points {
            assert_eq!(
                (p.state_code, p.health_code, p.restart_count, p.error_count),
                (state, health, 0, 0),
                "{}",
                series.source_id
            );
        }
    }
    assert!(
        tools.calls("journalctl").is_empty(),
        "error counting is off"
    );
}

#[tokio::test]
async fn error_counts_come_from_logs_since_the_previous_sample() {
    let tools = FakeTools::new();
    recorded_tools(&tools, false);
    let buffer = LogBuffer::new(10);
    let ops = Ops::new(full_config(&tools), buffer.clone()).unwrap();
    let error = |text: &str| LogRecord {
        ts: T0,
        level: LogLevel::Error,
        text: text.to_owned(),
    };
    buffer.push(error("first"));
    buffer.push(error("second"));

    // Before every recorded line; the first sample counts no tool logs.
    let first = 1_795_319_600_000;
    ops.sample(first).await;
    assert!(tools.calls("journalctl").is_empty());
    // After every recorded line.
    let second = 1_795_319_800_000;
    ops.sample(second).await;
    buffer.push(error("third"));
    ops.sample(second + 30_000).await;

    let series = ops
        .observability_series(Some(10), Some(30), None, second + 30_000)
        .await
        .unwrap();
    let errors: Vec<(String, Vec<u64>)> = series
        .series
        .iter()
        .map(|s| {
            (
                s.source_id.clone(),
                s.points.iter().map(|p| p.error_count).collect(),
            )
        })
        .collect();
    // ollama's journal: the colour-coded ERROR, the PRIORITY 3 line and `error: ...` (3);
    // llama.cpp's: `error: failed to load model` (1);
    // whisper: its stderr error line; searxng: `ERROR:searx...`; brave-search: none.
    // The fakes print the same lines every time, but only lines newer than the previous sample
    // count, so the third sample sees none of them again.
    assert_eq!(
        errors,
        vec![
            ("systemd:flynn".to_owned(), vec![2, 0, 1]),
            ("systemd:ollama".to_owned(), vec![0, 3, 0]),
            ("systemd:llamacpp".to_owned(), vec![0, 1, 0]),
            ("docker:whisper".to_owned(), vec![0, 1, 0]),
            ("docker:brave-search".to_owned(), vec![0, 0, 0]),
            ("docker:searxng".to_owned(), vec![0, 1, 0]),
            ("docker:redis-cache".to_owned(), vec![0, 0, 0]),
        ]
    );
    let journal = tools.calls("journalctl");
    assert_eq!(
        journal.len(),
        4,
        "two loaded units, two samples after the first"
    );
    assert!(
        journal.contains(&strings(&[
            "--user",
            "-u",
            "ollama.service",
            "-o",
            "json",
            "-n",
            "1000",
            "--since=@1795319600"
        ])),
        "{journal:?}"
    );
    let docker_logs: Vec<Vec<String>> = tools
        .calls("docker")
        .into_iter()
        .filter(|c| c[0] == "logs")
        .collect();
    assert!(docker_logs.contains(&strings(&[
        "logs",
        "--timestamps",
        "--tail",
        "1000",
        "--since",
        "1795319600",
        "flynn-whisper-server-1"
    ])));
    assert!(
        docker_logs
            .iter()
            .all(|c| c.last().unwrap() != "redis-cache"),
        "no container, no logs"
    );
}

#[tokio::test]
async fn restarts_are_counted_from_pid_changes_and_returns_to_running() {
    let tools = FakeTools::new();
    let running = fixture("systemctl/show-ollama-running.txt");
    tools.tool(
        "systemctl",
        &format!(
            "n=$(cat \"$STATE/n\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$STATE/n\"\n\
             case $n in\n\
             1) cat '{running}' ;;\n\
             3) {stopped} ;;\n\
             *) sed 's/^MainPID=.*/MainPID=4242/' '{running}' ;;\n\
             esac",
            running = running.display(),
            stopped = cat("systemctl/show-ollama-stopped.txt"),
        ),
    );
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    config.sample_error_counts = false;
    let ops = ops(config);
    for i in 0..5 {
        ops.sample(T0 + i * 30_000).await;
    }
    let points = ops.series_store().points("systemd:ollama");
    let seen: Vec<(u64, u64)> = points
        .iter()
        .map(|p| (p.state_code, p.restart_count))
        .collect();
    // pid 9398, pid 4242 (restart), stopped, running again (restart), same pid.
    assert_eq!(seen, [(3, 0), (3, 1), (1, 1), (3, 2), (3, 2)]);
}

#[test]
fn container_restarts_are_seen_through_id_and_uptime() {
    let store = SeriesStore::new(10);
    let observe = |ts: u64, id: &str, uptime: (u64, u64)| Observation {
        ts,
        state_code: 3,
        health_code: 2,
        error_count: 0,
        instance: Some(id.to_owned()),
        uptime_secs: Some(uptime),
    };
    let counts: Vec<u64> = [
        observe(T0, "a1", (300, 360)),
        observe(T0 + 30_000, "a1", (330, 390)),
        // Restarted in place: same id, but up for 5 s only after 30 s.
        observe(T0 + 60_000, "a1", (5, 6)),
        // Recreated: new id.
        observe(T0 + 90_000, "b2", (35, 36)),
        observe(T0 + 120_000, "b2", (65, 66)),
    ]
    .iter()
    .map(|o| store.record("docker:whisper", o).restart_count)
    .collect();
    assert_eq!(counts, [0, 0, 1, 2, 2]);
    assert_eq!(store.last_sample_ts("docker:whisper"), Some(T0 + 120_000));
    assert_eq!(
        flynn_ops::docker::uptime_bounds("Up 5 seconds (healthy)"),
        Some((5, 6))
    );
    assert_eq!(
        flynn_ops::docker::uptime_bounds("Up About an hour"),
        Some((3600, 7200))
    );
    assert_eq!(
        flynn_ops::docker::uptime_bounds("Up Less than a second"),
        Some((0, 1))
    );
    assert_eq!(
        flynn_ops::docker::uptime_bounds("Exited (1) 13 seconds ago"),
        None
    );
}

#[test]
fn buckets_keep_the_last_point_and_sum_errors() {
    let points = [
        point(T0 - 90_000, 3, 9),   // outside a 1-minute window
        point(T0 - 60_000, 3, 100), // exactly the window start: excluded
        point(T0 - 30_000, 3, 0),
        point(T0 - 29_000, 1, 1),
        point(T0 - 20_000, 2, 2),
        point(T0 - 1, 3, 4),
        point(T0, 3, 1),
        point(T0 + 5_000, 3, 7), // after now
    ];
    // T0 is a multiple of 30 s, so buckets are [T0-30s, T0) and [T0, T0+30s).
    assert_eq!(T0 % 30_000, 0);
    let buckets = bucket_points(&points, 1, 30, T0);
    assert_eq!(
        buckets,
        vec![
            ObservabilityPoint {
                ts: T0 - 1,
                state_code: 3,
                health_code: 0,
                error_count: 7,
                restart_count: 0
            },
            point(T0, 3, 1),
        ]
    );
    // One-second buckets keep every point of the window.
    assert_eq!(bucket_points(&points, 1, 1, T0).len(), 5);
    // A window of 2 minutes takes the oldest two as well.
    assert_eq!(bucket_points(&points, 2, 1, T0).len(), 7);
    assert!(bucket_points(&[], 60, 30, T0).is_empty());
}

#[test]
fn rings_drop_the_oldest_point_past_capacity() {
    let store = SeriesStore::new(4);
    for i in 0..10 {
        store.record(
            "docker:whisper",
            &Observation {
                ts: T0 + i,
                state_code: 3,
                health_code: 2,
                error_count: i,
                instance: None,
                uptime_secs: None,
            },
        );
    }
    let kept: Vec<u64> = store
        .points("docker:whisper")
        .iter()
        .map(|p| p.ts - T0)
        .collect();
    assert_eq!(kept, [6, 7, 8, 9]);
    assert!(store.points("docker:other").is_empty());
    assert_eq!(SeriesStore::new(0).capacity(), 1);
}

#[tokio::test]
async fn series_validates_its_parameters_and_ids() {
    let tools = FakeTools::new();
    let mut config = tools.config();
    config.local_backends = vec![LocalBackendConfig::new(BackendProvider::Ollama)];
    let ops = ops(config);
    for (window, bucket, name) in [
        (Some(0), None, "windowMinutes"),
        (Some(1441), None, "windowMinutes"),
        (None, Some(0), "bucketSeconds"),
        (None, Some(3601), "bucketSeconds"),
    ] {
        let err = ops
            .observability_series(window, bucket, None, T0)
            .await
            .unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidParams { name: n, .. } if n == name),
            "{err:?}"
        );
    }
    let err = ops
        .observability_series(None, None, Some(&strings(&["docker:whisper"])), T0)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown observability source `docker:whisper`; valid ids: systemd:flynn, systemd:ollama"
    );

    let result = ops
        .observability_series(
            None,
            None,
            Some(&strings(&["systemd:ollama", "systemd:ollama"])),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&result).unwrap(),
        json!({"generatedAt": T0, "windowMinutes": 60, "bucketSeconds": 30,
               "series": [{"sourceId": "systemd:ollama", "points": []}]})
    );
}

#[tokio::test]
async fn the_sampler_task_samples_until_shutdown() {
    let tools = FakeTools::new();
    let mut config = tools.config();
    config.sampler_interval_secs = 1;
    let ops = ops(config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = ops.spawn_sampler(async move {
        let _ = stopped.await;
    });
    // Liveness bounds (far above any load), not speed tests.
    let deadline = Instant::now() + Duration::from_secs(60);
    while ops.series_store().points(DAEMON_SOURCE_ID).is_empty() {
        assert!(Instant::now() < deadline, "no sample was taken within 60 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("the sampler stops on shutdown")
        .unwrap();
    let point = &ops.series_store().points(DAEMON_SOURCE_ID)[0];
    assert_eq!((point.state_code, point.health_code), (3, 2));
}
