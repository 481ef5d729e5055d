//! Auto-compaction through the model: past the threshold, with `agent.auto_compact`, older
//! history is replaced by a model-written summary and the `context_warning` says so.

use crate::support;

use serde_json::json;
use support::TestGateway;

#[tokio::test]
async fn past_the_threshold_history_is_compacted_through_the_model() {
    let gw = TestGateway::start("[agent]\nauto_compact = true\n").await;
    let mut ws = gw.client().await;
    let session = "compact:one";
    let mut compacted = None;
    // Each turn adds about 2,500 estimated tokens to an 8,192-token window.
    for turn in 0..6 {
        let id = ws
            .request(
                "agent.send",
                json!({ "sessionId": session, "message": format!("turn {turn} [[long:1500]]") }),
            )
            .await;
        let (events, reply) = ws.reply_to(id).await;
        assert!(reply["result"].is_object(), "turn {turn} failed: {reply}");
        if let Some(w) = events
            .iter()
            .find(|e| e["event"] == "context_warning" && e["data"]["level"] == "compacted")
        {
            compacted = Some(w.clone());
            break;
        }
    }
    let warning =
        compacted.expect("a context_warning with level `compacted` within six long turns");
    let data = &warning["data"];
    assert_eq!(data["actions"]["autoCompacted"], true, "{warning}");
    assert_eq!(data["actions"]["checkpointSaved"], true, "{warning}");
    assert_eq!(
        data["actions"]["checkpointNamespace"], "session/checkpoints/compact/one",
        "{warning}"
    );
    // The budget reported is the one after compaction: below the threshold again.
    assert_eq!(data["budget"]["shouldCompact"], false, "{warning}");
    assert!(
        data["message"].as_str().unwrap_or("").contains("compacted"),
        "{warning}"
    );

    // The next turn runs on the summary: its prompt is far smaller than the window.
    let id = ws
        .request(
            "agent.send",
            json!({ "sessionId": session, "message": "and now?" }),
        )
        .await;
    let (_, reply) = ws.reply_to(id).await;
    let input = reply["result"]["usage"]["inputTokens"]
        .as_u64()
        .unwrap_or(u64::MAX);
    assert!(
        input < 4_000,
        "the turn after compaction still sends {input} input tokens: {reply}"
    );
    // The messages themselves stay in the store.
    let got = ws
        .call("sessions.get", json!({ "sessionId": session }))
        .await;
    assert!(
        got["result"]["history"].as_array().map_or(0, Vec::len) >= 6,
        "{got}"
    );
    gw.stop().await;
}
