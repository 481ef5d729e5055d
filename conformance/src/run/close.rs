//! Ends of connections: silence, the server's close, the client's close, and the end of a
//! transcript; frames nobody expected are reported at each of them.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::report::FailureKind;

use super::{Received, Runner, close_text};

impl Runner<'_> {
    fn report_leftovers(&mut self, name: &str, why: &str) {
        if self.options.loose {
            if let Some(conn) = self.conns.get_mut(name) {
                conn.buffer.clear();
            }
            return;
        }
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        let leftovers: Vec<Received> = conn.buffer.drain(..).collect();
        for r in leftovers {
            let what = if r.is_batch {
                format!(
                    "batch reply (an array of {})",
                    r.frame.as_array().map_or(0, Vec::len)
                )
            } else if r.is_event {
                format!(
                    "event `{}` for request {}",
                    r.frame.get("event").and_then(Value::as_str).unwrap_or("?"),
                    r.id
                )
            } else {
                format!("reply to request {}", r.id)
            };
            self.fail(name, FailureKind::Unexpected, format!("{what} {why}"))
                .received = Some(r.frame);
        }
    }

    pub(super) async fn expect_silence(&mut self, only: Option<&str>, window: Duration) {
        let names: Vec<String> = match only {
            Some(n) => vec![n.to_owned()],
            None => self.conns.keys().cloned().collect(),
        };
        for n in &names {
            self.report_leftovers(n, "arrived where the transcript expects silence");
        }
        let deadline = Instant::now() + window;
        while self.pump(deadline).await {
            for n in &names {
                self.report_leftovers(n, "arrived where the transcript expects silence");
            }
        }
    }

    pub(super) async fn expect_close(&mut self, name: &str, code: Option<u16>) {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            self.fail(
                name,
                FailureKind::Transcript,
                format!("connection `{name}` was never opened"),
            );
            return;
        }
        let deadline = Instant::now() + self.options.timeout;
        loop {
            if let Some(got) = self.conns.get(name).and_then(|c| c.closed) {
                self.report_leftovers(name, "arrived before the close");
                if let Some(expected) = code
                    && got != Some(expected)
                {
                    self.fail(
                        name,
                        FailureKind::Close,
                        format!("closed with {}, expected code {expected}", close_text(got)),
                    )
                    .expected = Some(Value::from(expected));
                }
                return;
            }
            if !self.pump(deadline).await {
                self.report_leftovers(name, "arrived while waiting for the close");
                self.fail(
                    name,
                    FailureKind::Close,
                    format!(
                        "the connection stayed open for {} ms; expected the server to close it{}",
                        self.options.timeout.as_millis(),
                        code.map(|c| format!(" with {c}")).unwrap_or_default()
                    ),
                );
                return;
            }
        }
    }

    pub(super) async fn close(&mut self, name: &str, code: u16) {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            self.fail(
                name,
                FailureKind::Transcript,
                format!("connection `{name}` was never opened"),
            );
            return;
        }
        self.report_leftovers(name, "arrived before the client closed the connection");
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        if conn.closed.is_some() {
            self.fail(
                name,
                FailureKind::Close,
                "the server had already closed the connection",
            );
            return;
        }
        conn.closing = true;
        if let Some(client) = &conn.client {
            client.close(code);
        }
        let deadline = Instant::now() + self.options.timeout;
        while self.conns.get(name).is_some_and(|c| c.closed.is_none()) {
            if !self.pump(deadline).await {
                self.fail(
                    name,
                    FailureKind::Close,
                    "the server did not answer the close handshake",
                );
                return;
            }
        }
    }

    pub(super) async fn finish(&mut self) {
        let settle = Instant::now() + self.options.settle;
        while self.pump(settle).await {}
        let mut names: Vec<String> = self.conns.keys().cloned().collect();
        names.sort();
        for name in &names {
            self.report_leftovers(name, "arrived but no step expects it");
        }
        for name in &names {
            if let Some(conn) = self.conns.get_mut(name)
                && conn.closed.is_none()
            {
                conn.closing = true;
                if let Some(client) = &conn.client {
                    client.close(1000);
                }
            }
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while self
            .conns
            .values()
            .any(|c| c.client.is_some() && c.closed.is_none())
        {
            if !self.pump(deadline).await {
                break;
            }
        }
    }
}
