//! Waiting for the frame an `expect` line describes and matching it: replies by id, events by
//! id and order, batch replies paired by id in any order.

use std::time::Instant;

use serde_json::Value;

use crate::pattern::{Pattern, match_value, substitute};
use crate::report::FailureKind;
use crate::wirecheck::id_key;

use super::{Received, Runner, close_text};

impl Runner<'_> {
    fn expected_id(&mut self, name: &str, pattern: &Pattern) -> Option<String> {
        match pattern.member("id") {
            Some(Pattern::Scalar(v)) => Some(id_key(Some(v))),
            Some(Pattern::Matcher(m)) if m.reference.is_some() || m.literal.is_some() => {
                match substitute(&Pattern::Matcher(m.clone()), &self.captures) {
                    Ok(v) => Some(id_key(Some(&v))),
                    Err(e) => {
                        self.fail(
                            name,
                            FailureKind::Transcript,
                            format!("cannot resolve the expected id: {e}"),
                        );
                        None
                    }
                }
            }
            _ => {
                self.fail(
                    name,
                    FailureKind::Transcript,
                    "an expected frame's `id` must be a literal or a `$ref`",
                );
                None
            }
        }
    }

    pub(super) async fn expect(&mut self, name: &str, pattern: &Pattern) {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            self.ensure_open(name).await;
        }
        if let Pattern::Array(replies) = pattern {
            self.expect_batch(name, pattern, replies).await;
            return;
        }
        let Some(id) = self.expected_id(name, pattern) else {
            return;
        };
        let is_event = pattern.has_member("event");
        let what = describe_expected(pattern, &id);
        let waited = self
            .await_frame(name, pattern, &what, "nothing arrived", |runner| {
                runner.find(name, pattern, is_event, &id)
            })
            .await;
        if let Some(received) = waited {
            self.report_differences(name, &what, pattern, &received.frame);
        }
    }

    /// Waits until `pick` chooses a buffered frame of connection `name` and takes it out of
    /// the buffer. When the connection closes or the timeout passes first, reports `what` as
    /// missing (`nothing` says what did not arrive) and returns `None`.
    async fn await_frame(
        &mut self,
        name: &str,
        pattern: &Pattern,
        what: &str,
        nothing: &str,
        pick: impl Fn(&Self) -> Option<usize>,
    ) -> Option<Received> {
        let deadline = Instant::now() + self.options.timeout;
        loop {
            if let Some(index) = pick(self) {
                return Some(self.conns.get_mut(name)?.buffer.remove(index));
            }
            let message = if let Some(code) = self.conns.get(name).and_then(|c| c.closed) {
                format!(
                    "{what}: the connection closed ({}) before it arrived",
                    close_text(code)
                )
            } else if !self.pump(deadline).await {
                format!(
                    "{what}: {nothing} within {} ms",
                    self.options.timeout.as_millis()
                )
            } else {
                continue;
            };
            self.fail(name, FailureKind::Missing, message).expected = Some(pattern.describe());
            return None;
        }
    }

    /// Matches a received frame (or aligned batch) against the step's pattern and reports
    /// every difference.
    fn report_differences(&mut self, name: &str, what: &str, pattern: &Pattern, received: &Value) {
        for d in match_value(pattern, received, &mut self.captures) {
            let f = self.fail(
                name,
                FailureKind::Mismatch,
                format!("{what}: {}", d.message),
            );
            f.path = Some(d.path);
            f.expected = Some(d.expected);
            f.received = d.received;
        }
    }

    /// The buffered frame a step corresponds to: in order, same kind and id; in loose mode the
    /// first such frame that matches.
    fn find(&self, name: &str, pattern: &Pattern, is_event: bool, id: &str) -> Option<usize> {
        let conn = self.conns.get(name)?;
        let mut candidates = conn
            .buffer
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.is_batch && r.is_event == is_event && r.id == id);
        if self.options.loose {
            candidates
                .find(|(_, r)| {
                    let mut trial = self.captures.clone();
                    match_value(pattern, &r.frame, &mut trial).is_empty()
                })
                .map(|(i, _)| i)
        } else {
            candidates.next().map(|(i, _)| i)
        }
    }

    /// The buffered batch reply a step corresponds to: the next array frame; in loose mode the
    /// first one that matches.
    fn find_batch(&self, name: &str, pattern: &Pattern, ids: &[String]) -> Option<usize> {
        let conn = self.conns.get(name)?;
        let mut batches = conn.buffer.iter().enumerate().filter(|(_, r)| r.is_batch);
        if self.options.loose {
            batches
                .find(|(_, r)| {
                    align_batch(ids, &r.frame).is_ok_and(|aligned| {
                        let mut trial = self.captures.clone();
                        match_value(pattern, &aligned, &mut trial).is_empty()
                    })
                })
                .map(|(i, _)| i)
        } else {
            batches.next().map(|(i, _)| i)
        }
    }

    /// A batch reply: the next array frame, its replies paired with the expected ones by id
    /// (replies may come in any order; replies with the same id pair in order).
    async fn expect_batch(&mut self, name: &str, pattern: &Pattern, replies: &[Pattern]) {
        let mut ids = Vec::with_capacity(replies.len());
        for reply in replies {
            let Some(id) = self.expected_id(name, reply) else {
                return;
            };
            ids.push(id);
        }
        let what = format!("batch reply to requests {}", ids.join(", "));
        let waited = self
            .await_frame(name, pattern, &what, "no array frame arrived", |runner| {
                runner.find_batch(name, pattern, &ids)
            })
            .await;
        let Some(received) = waited else {
            return;
        };
        match align_batch(&ids, &received.frame) {
            Ok(aligned) => self.report_differences(name, &what, pattern, &aligned),
            Err(message) => {
                let f = self.fail(name, FailureKind::Mismatch, format!("{what}: {message}"));
                f.expected = Some(pattern.describe());
                f.received = Some(received.frame);
            }
        }
    }
}

/// The replies of a received batch in the order of the expected ids (`ids` as [`id_key`]
/// writes them), or why they cannot be paired: a reply missing, or one no expected reply has.
fn align_batch(ids: &[String], received: &Value) -> Result<Value, String> {
    let Value::Array(items) = received else {
        return Err("expected an array".into());
    };
    let mut left: Vec<Option<&Value>> = items.iter().map(Some).collect();
    let mut aligned = Vec::with_capacity(ids.len());
    for id in ids {
        let slot = left
            .iter_mut()
            .find(|r| r.is_some_and(|r| id_key(r.get("id")) == *id));
        match slot.and_then(Option::take) {
            Some(reply) => aligned.push(reply.clone()),
            None => {
                return Err(format!(
                    "no reply to request {id} in it (it holds replies to {})",
                    items
                        .iter()
                        .map(|r| id_key(r.get("id")))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    let extra: Vec<String> = left.iter().flatten().map(|r| id_key(r.get("id"))).collect();
    if !extra.is_empty() {
        return Err(format!(
            "it also holds replies to {}, which the transcript does not expect",
            extra.join(", ")
        ));
    }
    Ok(Value::Array(aligned))
}

fn describe_expected(pattern: &Pattern, id: &str) -> String {
    match pattern.literal_member("event") {
        Some(Value::String(e)) => format!("event `{e}` for request {id}"),
        _ if pattern.has_member("event") => format!("event for request {id}"),
        _ => {
            let which = if pattern.has_member("error") {
                "error reply"
            } else {
                "reply"
            };
            format!("{which} to request {id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batch_replies_pair_by_id_in_any_order() {
        let ids = [
            "1".to_owned(),
            "null".to_owned(),
            "\"a\"".to_owned(),
            "null".to_owned(),
        ];
        let received = json!([
            {"id": null, "error": {"code": -2, "n": 1}},
            {"id": "a", "result": {}},
            {"id": 1, "result": {}},
            {"id": null, "error": {"code": -2, "n": 2}}
        ]);
        let aligned = align_batch(&ids, &received).unwrap();
        assert_eq!(aligned[0]["id"], 1);
        assert_eq!(aligned[1]["error"]["n"], 1, "same ids pair in order");
        assert_eq!(aligned[2]["id"], "a");
        assert_eq!(aligned[3]["error"]["n"], 2);
        let e = align_batch(&ids[..2], &received).unwrap_err();
        assert!(e.contains("also holds replies to \"a\""), "{e}");
        let e = align_batch(&["2".to_owned()], &received).unwrap_err();
        assert!(e.contains("no reply to request 2"), "{e}");
        assert!(align_batch(&ids, &json!({"id": 1})).is_err());
    }
}
