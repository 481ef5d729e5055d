//! Proves the harness works end to end without timing anything: the load generator completes
//! ~200 `system.info` round trips against the raw server and against the real gateway (both
//! in-process on 127.0.0.1 port 0) with no error replies, and the idle test opens, counts and
//! measures a few connections.

use std::time::Duration;

use flynn_bench::load::{self, LoadSpec, Stop};
use flynn_bench::{client, gateway_server, idle, raw_server};

const SPEC: LoadSpec = LoadSpec {
    connections: 4,
    in_flight: 3,
    warmup: Duration::ZERO,
    stop: Stop::Requests(200),
};

fn check(report: &load::LoadReport) {
    assert!(
        report.requests >= 200,
        "only {} replies counted",
        report.requests
    );
    assert_eq!(report.errors, 0, "error replies");
    assert!(report.percentile(99.0) >= report.percentile(50.0));
    assert!(report.percentile(50.0) > Duration::ZERO);
}

#[tokio::test]
async fn load_generator_runs_against_raw_server_and_gateway() {
    let raw = raw_server::RawServer::start(raw_server::RawOptions::default())
        .await
        .unwrap();
    let report = load::run(raw.addr, SPEC).await.unwrap();
    check(&report);

    let dir = tempfile::tempdir().unwrap();
    let gateway = gateway_server::start(dir.path(), None, None).await.unwrap();
    let report = load::run(gateway.addr, SPEC).await.unwrap();
    check(&report);

    // Both answer system.info with the same members and (but for digits) the same length;
    // each sees its own connection.
    let mut infos = Vec::new();
    for addr in [raw.addr, gateway.addr] {
        let mut ws = client::connect(addr).await.unwrap();
        let info = client::system_info(&mut ws, addr, 7).await.unwrap();
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(info.connections >= 1, "{info:?}");
        infos.push(info);
    }
    assert_eq!(infos[0].members, infos[1].members);
    assert!(
        infos[0].frame_bytes.abs_diff(infos[1].frame_bytes) <= 4,
        "{infos:?}"
    );
    gateway.shutdown().await;
    raw.stop();
}

#[tokio::test]
async fn idle_test_opens_and_counts_connections() {
    let raw = raw_server::RawServer::start(raw_server::RawOptions::default())
        .await
        .unwrap();
    let spec = idle::IdleSpec {
        connections: 20,
        concurrency: 8,
        idle: Duration::from_millis(10),
    };
    // The server runs in this process here, so the RSS delta is not meaningful; the count is.
    let report = idle::run(raw.addr, std::process::id(), spec).await.unwrap();
    assert_eq!(report.connections, 20);
    assert_eq!(report.server_reported_connections, 21, "20 idle + control");
    assert!(report.rss_before_kib > 0);
    raw.stop();
}
