//! Helpers of the provider tests: fixtures, draining a stream, well-formedness checks. The
//! scripted fake server they run against is `flynn_test_support::model_server`, shared with the
//! gateway's agent tests.

use std::time::Duration;

use flynn_models::{CollectedResponse, EventReceiver, ProviderError, StreamEvent};

pub use flynn_test_support::model_server::{Framing, MockServer, Part, Script, Stream};

/// Reads a fixture under `tests/fixtures`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// How long a test waits for a stream's next item before failing: a liveness bound far above
/// what any load makes it take (the tests' alternatives never answer at all).
pub const LIVENESS: Duration = Duration::from_secs(60);

/// All events of a stream until it ends; the last item may be an error.
pub async fn drain(mut rx: EventReceiver) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    loop {
        let item = tokio::time::timeout(LIVENESS, rx.recv())
            .await
            .expect("a stream item within the liveness bound");
        match item {
            None => return (events, None),
            Some(Ok(event)) => events.push(event),
            Some(Err(error)) => {
                assert!(
                    tokio::time::timeout(LIVENESS, rx.recv())
                        .await
                        .expect("stream ends after an error")
                        .is_none(),
                    "nothing may follow an error"
                );
                return (events, Some(error));
            }
        }
    }
}

/// Text deltas joined.
pub fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Checks the closing order every successful stream must have: `Usage` then `Finished` last.
pub fn assert_well_formed(events: &[StreamEvent]) {
    let n = events.len();
    assert!(n >= 2, "too short: {events:?}");
    assert!(
        matches!(events[n - 2], StreamEvent::Usage { .. }),
        "{events:?}"
    );
    assert!(
        matches!(events[n - 1], StreamEvent::Finished { .. }),
        "{events:?}"
    );
    let usages = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Usage { .. }))
        .count();
    assert_eq!(usages, 1, "{events:?}");
}

pub fn collected_ok(result: Result<CollectedResponse, ProviderError>) -> CollectedResponse {
    result.unwrap_or_else(|e| panic!("stream failed: {e}"))
}
