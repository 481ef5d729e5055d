//! Tool approval (`agent.setToolUseCallback` + `agent.approveTool`): which sessions ask before
//! each tool call, and the approval requests waiting for an answer.
//!
//! The setting belongs to the connection that enabled it and is dropped when it closes (a
//! closed client cannot answer).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// An answer: approved, and an optional reason.
pub type Answer = (bool, Option<String>);

#[derive(Default)]
pub struct Approvals {
    /// Session id -> the connection that enabled approval.
    enabled: Mutex<HashMap<String, String>>,
    /// Approval id -> (session, the waiting run).
    pending: Mutex<HashMap<String, (String, oneshot::Sender<Answer>)>>,
}

impl Approvals {
    pub fn set_enabled(&self, session_id: &str, connection_id: &str, enabled: bool) {
        if let Ok(mut map) = self.enabled.lock() {
            if enabled {
                map.insert(session_id.to_owned(), connection_id.to_owned());
            } else {
                map.remove(session_id);
            }
        }
        if !enabled {
            self.refuse_pending(session_id, "tool approval was switched off");
        }
    }

    /// Answers every pending approval of `session_id` with a refusal.
    fn refuse_pending(&self, session_id: &str, reason: &str) {
        let waiting: Vec<oneshot::Sender<Answer>> = match self.pending.lock() {
            Ok(mut map) => {
                let ids: Vec<String> = map
                    .iter()
                    .filter(|(_, (s, _))| s == session_id)
                    .map(|(id, _)| id.clone())
                    .collect();
                ids.into_iter()
                    .filter_map(|id| map.remove(&id))
                    .map(|(_, tx)| tx)
                    .collect()
            }
            Err(_) => Vec::new(),
        };
        for tx in waiting {
            let _ = tx.send((false, Some(reason.to_owned())));
        }
    }

    pub fn is_enabled(&self, session_id: &str) -> bool {
        self.enabled
            .lock()
            .map(|m| m.contains_key(session_id))
            .unwrap_or(false)
    }

    /// Drops the settings of a closed connection.
    pub fn connection_closed(&self, connection_id: &str) {
        let sessions: Vec<String> = match self.enabled.lock() {
            Ok(mut map) => {
                let sessions = map
                    .iter()
                    .filter(|(_, c)| *c == connection_id)
                    .map(|(s, _)| s.clone())
                    .collect();
                map.retain(|_, c| c != connection_id);
                sessions
            }
            Err(_) => Vec::new(),
        };
        for session in sessions {
            self.refuse_pending(&session, "the connection that enabled tool approval closed");
        }
    }

    /// Opens an approval request; returns its id and the receiver of the answer.
    pub fn open(&self, session_id: &str) -> (String, oneshot::Receiver<Answer>) {
        let id = format!("appr_{}", uuid::Uuid::new_v4().simple());
        let (tx, rx) = oneshot::channel();
        if let Ok(mut map) = self.pending.lock() {
            map.insert(id.clone(), (session_id.to_owned(), tx));
        }
        (id, rx)
    }

    pub fn close(&self, id: &str) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(id);
        }
    }

    /// Delivers an answer; false when the id is unknown, answered or expired.
    pub fn answer(&self, id: &str, answer: Answer) -> bool {
        let sender = self.pending.lock().ok().and_then(|mut m| m.remove(id));
        sender.is_some_and(|(_, s)| s.send(answer).is_ok())
    }
}
