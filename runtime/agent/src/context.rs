//! The context budget of a session: its estimated prompt against the model's window, the
//! `context_warning` a turn ends with when usage passes `agent.warning_pct`, the checkpoint
//! saved to memory and the optional auto-compaction past `agent.threshold_pct`.

use flynn_models::{ChatMessage, ChatRequest, Provider};
use flynn_protocol::types::{ContextBudget, ContextWarningActions, ContextWarningEventData};
use flynn_protocol::wire::RpcError;
use flynn_store::split_session_id;

use crate::deps::{Deps, now_ms};
use crate::run::ActiveRun;
use crate::session_config::StoredSessionConfig;

/// Messages of history sent to the model (and estimated).
pub(crate) const HISTORY_MESSAGES: u32 = 200;

pub(crate) fn store_err(e: flynn_store::StoreError) -> RpcError {
    RpcError::internal(format!("storage failed during the run: {e}"))
}

/// The session's estimated budget against `window`.
pub fn budget(estimated: u64, window: u64, threshold_pct: f64) -> ContextBudget {
    let window = window.max(1);
    let usage_pct = ((estimated as f64 / window as f64) * 1000.0).round() / 10.0;
    let threshold_tokens = (window as f64 * threshold_pct / 100.0).round() as u64;
    ContextBudget {
        estimated_tokens: estimated,
        context_window: window,
        remaining_tokens: window.saturating_sub(estimated),
        usage_pct,
        threshold_pct,
        threshold_tokens,
        should_compact: estimated >= threshold_tokens,
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The checkpoint namespace of a session: `session/checkpoints/<frontend>/<id>`.
pub fn checkpoint_namespace(session_id: &str) -> String {
    let (frontend, user) = split_session_id(session_id);
    format!("session/checkpoints/{frontend}/{user}")
}

pub(crate) async fn context_warning(
    deps: &Deps,
    session_id: &str,
    estimated: u64,
    provider: &dyn Provider,
    run: &ActiveRun,
) -> Option<ContextWarningEventData> {
    let window = provider.context_window();
    let settings = deps.settings();
    let b = budget(estimated, window, settings.agent.threshold_pct);
    if b.usage_pct < settings.agent.warning_pct {
        return None;
    }
    let mut actions = ContextWarningActions {
        checkpoint_saved: false,
        auto_compacted: false,
        checkpoint_namespace: None,
    };
    let base = format!(
        "Context usage is {:.1}% ({}/{} estimated tokens).",
        b.usage_pct,
        thousands(b.estimated_tokens),
        thousands(b.context_window)
    );
    if !b.should_compact {
        return Some(ContextWarningEventData {
            level: "warning".to_owned(),
            message: base,
            budget: b,
            actions,
        });
    }
    let namespace = checkpoint_namespace(session_id);
    if save_checkpoint(deps, session_id, &namespace).await {
        actions.checkpoint_saved = true;
        actions.checkpoint_namespace = Some(namespace.clone());
    }
    let message = if actions.checkpoint_saved {
        format!("{base} Checkpoint saved to memory namespace `{namespace}`.")
    } else {
        format!("{base} Saving the checkpoint failed; see the gateway log.")
    };
    if settings.agent.auto_compact {
        match compact(deps, session_id, provider, run).await {
            Ok(after) => {
                actions.auto_compacted = true;
                let after = budget(after, window, settings.agent.threshold_pct);
                let saved = if actions.checkpoint_saved {
                    format!(" Checkpoint saved to memory namespace `{namespace}`.")
                } else {
                    String::new()
                };
                return Some(ContextWarningEventData {
                    level: "compacted".to_owned(),
                    message: format!(
                        "Context usage reached {:.1}%; older history was compacted and usage is now {:.1}%.{saved}",
                        b.usage_pct, after.usage_pct
                    ),
                    budget: after,
                    actions,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, session = session_id, "auto-compaction failed; history left as it was")
            }
        }
    }
    Some(ContextWarningEventData {
        level: "checkpoint".to_owned(),
        message,
        budget: b,
        actions,
    })
}

/// Saves the session's recent history to its checkpoint namespace; false when that failed.
async fn save_checkpoint(deps: &Deps, session_id: &str, namespace: &str) -> bool {
    // The last 50 messages, 500 characters of each.
    let history = deps
        .store
        .history_excerpts(session_id, 50, 500)
        .await
        .unwrap_or_default();
    let checkpoint: String = history
        .iter()
        .map(|m| format!("{}: {}", m.role.as_str(), m.text))
        .collect::<Vec<_>>()
        .join("\n");
    match deps
        .store
        .save_memory(namespace, checkpoint, now_ms())
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not save the context checkpoint");
            false
        }
    }
}

/// Replaces the session's older history by a model-written summary kept in the session's
/// config (the messages themselves stay in the store). Returns the new estimate.
async fn compact(
    deps: &Deps,
    session_id: &str,
    provider: &dyn Provider,
    run: &ActiveRun,
) -> Result<u64, String> {
    let history = deps
        .store
        .history(session_id, Some(HISTORY_MESSAGES))
        .await
        .map_err(|e| e.to_string())?;
    // Keep the last exchange verbatim; summarize everything before it.
    let keep = 2.min(history.len());
    let (older, recent) = history.split_at(history.len() - keep);
    let Some(last_older) = older.last() else {
        return Err("nothing old enough to compact".to_owned());
    };
    let transcript: String = older
        .iter()
        .map(|m| format!("{}: {}", m.role.as_str(), m.content))
        .collect::<Vec<_>>()
        .join("\n");
    // About half the window, at four characters a token.
    let max_chars = usize::try_from(provider.context_window())
        .unwrap_or(usize::MAX)
        .saturating_mul(2);
    let mut start = transcript.len().saturating_sub(max_chars);
    while !transcript.is_char_boundary(start) {
        start += 1;
    }
    let request = ChatRequest {
        model: provider.model().to_owned(),
        system: Some("Summarize this conversation in at most 200 words, keeping facts, decisions and open tasks.".to_owned()),
        messages: vec![ChatMessage::user(transcript[start..].to_owned())],
        tools: std::sync::Arc::from([]),
        max_output_tokens: Some(400),
    };
    let response = flynn_models::collect(provider.stream(request, run.cancel.child_token()))
        .await
        .map_err(|e| e.to_string())?;
    let record = deps
        .store
        .session(session_id)
        .await
        .map_err(|e| e.to_string())?;
    let mut stored = StoredSessionConfig::parse(record.as_ref().and_then(|r| r.config.as_deref()));
    stored.compaction = Some(crate::session_config::Compaction {
        through_message_id: last_older.id,
        summary: response.text.clone(),
    });
    deps.store
        .set_session_config(session_id, stored.to_json())
        .await
        .map_err(|e| e.to_string())?;
    let settings = deps.settings();
    Ok(flynn_models::estimate_tokens(&settings.agent.system_prompt)
        + flynn_models::estimate_tokens(&response.text)
        + recent
            .iter()
            .map(|m| flynn_models::estimate_tokens(&m.content))
            .sum::<u64>())
}

/// The estimated budget of a stored session (for `system.contextUsage`).
pub async fn session_budget(
    deps: &Deps,
    session_id: &str,
    stored_config: Option<&str>,
) -> Result<ContextBudget, RpcError> {
    let overrides = StoredSessionConfig::parse(stored_config);
    let settings = deps.settings();
    let provider = settings.provider(overrides.model_tier.as_deref());
    let history = deps
        .store
        .history(session_id, Some(HISTORY_MESSAGES))
        .await
        .map_err(store_err)?;
    let estimated = flynn_models::estimate_tokens(&settings.agent.system_prompt)
        + history
            .iter()
            .map(|m| flynn_models::estimate_tokens(&m.content))
            .sum::<u64>();
    Ok(budget(
        estimated,
        provider.context_window(),
        settings.agent.threshold_pct,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_matches_the_protocol_document() {
        let b = budget(172_000, 200_000, 80.0);
        assert_eq!(b.usage_pct, 86.0);
        assert_eq!(b.remaining_tokens, 28_000);
        assert_eq!(b.threshold_tokens, 160_000);
        assert!(b.should_compact);
        assert!(!budget(152_000, 200_000, 80.0).should_compact);
        assert_eq!(thousands(172000), "172,000");
        assert_eq!(
            checkpoint_namespace("ws:abc-123"),
            "session/checkpoints/ws/abc-123"
        );
    }
}
