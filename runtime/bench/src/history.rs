//! Sessions filled with history before the gateway starts, so the turn benchmark can compare a
//! turn in a session holding thousands of messages with one in a fresh session. The messages
//! go through the store's own `append_messages` (sessions, counters and topic terms as a real
//! conversation would leave them), in batches of one transaction each.

use std::path::Path;

use flynn_store::{NewMessage, Role, Store};

use crate::BenchError;

/// Messages per transaction while filling.
const BATCH: usize = 2_000;

/// Which sessions to fill and how much.
#[derive(Debug, Clone)]
pub struct HistorySpec {
    /// Sessions `<prefix>0` .. `<prefix><sessions - 1>`.
    pub prefix: String,
    pub sessions: usize,
    /// Messages per session, alternating user and assistant.
    pub messages: usize,
}

/// Fills the database at `db_path` (created and migrated if needed) and closes it.
pub async fn fill(db_path: &Path, spec: &HistorySpec) -> Result<(), BenchError> {
    let store = Store::open_async(db_path)
        .await
        .map_err(|e| BenchError::Child(format!("cannot open {}: {e}", db_path.display())))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    for session in 0..spec.sessions {
        let session_id = format!("{}{session}", spec.prefix);
        let mut written = 0;
        while written < spec.messages {
            let n = BATCH.min(spec.messages - written);
            let batch = (written..written + n)
                .map(|i| NewMessage {
                    session_id: session_id.clone(),
                    role: if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    },
                    content: if i % 2 == 0 {
                        format!("Hello, Flynn! This is message {i}.")
                    } else {
                        format!("You said: Hello, Flynn! This is message {}.", i - 1)
                    },
                    attachments: None,
                    // Spread over the last few days, oldest first.
                    created_at_ms: now - (spec.messages - i) as i64 * 10,
                })
                .collect();
            store
                .append_messages(batch)
                .await
                .map_err(|e| BenchError::Child(format!("filling {session_id}: {e}")))?;
            written += n;
        }
    }
    store.close().await;
    Ok(())
}
