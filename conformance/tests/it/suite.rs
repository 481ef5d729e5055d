//! The whole suite against the real daemon: every transcript that needs no token against a
//! gateway without one, the token transcripts (and a few others, to show the runner's default
//! credentials work, and the HTTP transcripts, which hold for both) against a gateway with one.
//! Both have `gateway.toml`'s timers at ten minutes (`Gateway::start_patient`), so no
//! transcript has to answer an approval or repeat a key before a timer runs out; the
//! transcripts that wait a timer out (`support::TIMER_TRANSCRIPTS`) run against a third
//! gateway with `gateway.toml` as it is. Only the gateway bugs listed in `support::KNOWN_BUGS`
//! are tolerated; any other failure fails the test with the report.

use crate::support;

use std::time::Duration;

use flynn_conformance::report::Report;
use flynn_conformance::run::{RunOptions, run_all};
use flynn_conformance::spec::Spec;
use flynn_conformance::transcript::{AuthNeed, Transcript};
use support::{Gateway, KNOWN_BUGS, TIMER_TRANSCRIPTS, TOKEN, transcripts, unexplained};

fn options(url: &str, token: Option<&str>) -> RunOptions {
    let mut o = RunOptions::new(url);
    o.token = token.map(str::to_owned);
    // A liveness bound per expected frame (nothing here waits it out when all is well): far
    // above what load makes a frame take, still short enough that a failing run ends.
    o.timeout = Duration::from_secs(30);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_suite_passes_against_the_daemon() {
    let spec = Spec::load().unwrap();
    let all = transcripts();
    let (timed, all): (Vec<Transcript>, Vec<Transcript>) = all
        .into_iter()
        .partition(|t| TIMER_TRANSCRIPTS.contains(&t.name()));
    assert_eq!(
        timed.len(),
        TIMER_TRANSCRIPTS.len(),
        "every timer transcript exists"
    );
    assert!(
        timed
            .iter()
            .all(|t| t.header.gateway.auth != AuthNeed::Token)
    );
    let (with_token, without): (Vec<Transcript>, Vec<Transcript>) = all
        .into_iter()
        .partition(|t| t.header.gateway.auth == AuthNeed::Token);
    let also_with_token: Vec<Transcript> = without
        .iter()
        .filter(|t| ["system", "nodes"].contains(&t.name()) || t.name().starts_with("http-"))
        .cloned()
        .collect();
    let open = Gateway::start_patient(None).await;
    let guarded = Gateway::start_patient(Some(TOKEN)).await;
    let timers = Gateway::start(None).await;
    let also = also_with_token.len();
    let token_set: Vec<Transcript> = with_token.into_iter().chain(also_with_token).collect();
    let (open_options, guarded_options, timers_options) = (
        options(&open.url, None),
        options(&guarded.url, Some(TOKEN)),
        options(&timers.url, None),
    );
    let (a, b, c) = tokio::join!(
        run_all(&spec, &without, &open_options),
        run_all(&spec, &token_set, &guarded_options),
        run_all(&spec, &timed, &timers_options),
    );
    open.stop().await;
    guarded.stop().await;
    timers.stop().await;

    for report in [&a, &b, &c] {
        println!("{}", report.to_text());
    }
    assert_eq!(
        a.summary.skipped, 0,
        "no transcript of the open gateway may be skipped"
    );
    assert_eq!(
        b.summary.skipped, 0,
        "no transcript of the guarded gateway may be skipped"
    );
    assert_eq!(c.summary.skipped, 0, "no timer transcript may be skipped");
    assert_eq!(
        a.transcripts.len() + b.transcripts.len() + c.transcripts.len(),
        transcripts().len() + also
    );
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for report in [&a, &b, &c] {
        let (u, s) = unexplained(report);
        problems.extend(u);
        seen.extend(s);
    }
    for id in &seen {
        let bug = KNOWN_BUGS
            .iter()
            .find(|b| b.id == *id)
            .map_or("", |b| b.what);
        println!("known gateway bug seen: {id}: {bug}");
    }
    assert!(
        problems.is_empty(),
        "failures no known gateway bug explains:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn token_transcripts_are_skipped_without_a_token_and_the_report_says_why() {
    let spec = Spec::load().unwrap();
    let auth: Vec<Transcript> = transcripts()
        .into_iter()
        .filter(|t| t.name().starts_with("auth-"))
        .collect();
    let open = Gateway::start(None).await;
    let report: Report = run_all(&spec, &auth, &options(&open.url, None)).await;
    let _ = &report;
    open.stop().await;
    assert!(report.passed(), "{}", report.to_text());
    assert_eq!(report.summary.passed, 1, "{}", report.to_text());
    assert_eq!(report.summary.skipped, auth.len() - 1);
    assert!(
        report
            .to_text()
            .contains("SKIP auth-header: shows token authentication")
    );
}
