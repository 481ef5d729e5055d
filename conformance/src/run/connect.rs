//! Opening connections (`connect` lines and default credentials) and sending frames.

use crate::pattern::substitute;
use crate::report::FailureKind;
use crate::transcript::Outgoing;
use crate::ws::{self, ConnectError};

use super::Runner;

impl Runner<'_> {
    pub(super) async fn connect(
        &mut self,
        name: &str,
        headers: &[(String, String)],
        subprotocols: Option<&[String]>,
        path: Option<&str>,
        status: Option<u16>,
    ) {
        if self.conns.get(name).is_some_and(|c| c.opened) {
            self.fail(
                name,
                FailureKind::Transcript,
                format!("connection `{name}` is already open; use another `conn` name"),
            );
            return;
        }
        let token = self.options.token.as_deref();
        let mut expanded_headers = Vec::new();
        for (k, v) in headers {
            match ws::expand_token(v, token) {
                Some(v) => expanded_headers.push((k.clone(), v)),
                None => {
                    self.fail(
                        name,
                        FailureKind::Transcript,
                        format!("header `{k}` needs ${{TOKEN}}: pass --token"),
                    );
                    return;
                }
            }
        }
        let mut expanded_protocols = None;
        if let Some(list) = subprotocols {
            let mut out = Vec::new();
            for p in list {
                match ws::expand_token(p, token) {
                    Some(p) => out.push(p),
                    None => {
                        self.fail(
                            name,
                            FailureKind::Transcript,
                            "a subprotocol needs ${TOKEN}: pass --token",
                        );
                        return;
                    }
                }
            }
            expanded_protocols = Some(out);
        }
        self.open(
            name,
            &expanded_headers,
            expanded_protocols.as_deref(),
            path,
            status,
        )
        .await;
    }

    async fn open(
        &mut self,
        name: &str,
        headers: &[(String, String)],
        subprotocols: Option<&[String]>,
        path: Option<&str>,
        status: Option<u16>,
    ) {
        let result = ws::connect(
            &self.options.url,
            path,
            headers,
            subprotocols,
            name.to_owned(),
            self.events_tx.clone(),
        )
        .await;
        let conn = self.conns.entry(name.to_owned()).or_default();
        conn.opened = true;
        match (result, status) {
            (Ok(client), None) => {
                if let Some(offered) = subprotocols.filter(|p| !p.is_empty()) {
                    match &client.protocol {
                        Some(p) if offered.contains(p) && !p.starts_with("flynn.bearer.") => {}
                        Some(p) => {
                            let message = format!(
                                "the server selected subprotocol {p:?}; it must select one that was offered and never the token entry"
                            );
                            conn.client = Some(client);
                            self.fail(name, FailureKind::Connect, message);
                            return;
                        }
                        None => {}
                    }
                }
                conn.client = Some(client);
            }
            (Ok(client), Some(expected)) => {
                conn.client = Some(client);
                self.fail(
                    name,
                    FailureKind::Connect,
                    format!("the handshake succeeded; expected HTTP {expected}"),
                );
            }
            (Err(ConnectError::Http { status: got, .. }), Some(expected)) if got == expected => {
                conn.closed = Some(None);
            }
            (Err(e), _) => {
                conn.closed = Some(None);
                let message = format!("cannot open the connection: {e}");
                self.fail(name, FailureKind::Connect, message);
            }
        }
    }

    /// Opens `name` with the default credentials if no step opened it yet.
    pub(super) async fn ensure_open(&mut self, name: &str) -> bool {
        if !self.conns.get(name).is_some_and(|c| c.opened) {
            let headers: Vec<(String, String)> = self
                .options
                .token
                .iter()
                .map(|t| ("Authorization".to_owned(), format!("Bearer {t}")))
                .collect();
            self.open(name, &headers, None, None, None).await;
        }
        self.conns.get(name).is_some_and(|c| c.client.is_some())
    }

    pub(super) async fn send(&mut self, name: &str, frame: &Outgoing, malformed: bool) {
        if !self.ensure_open(name).await {
            return;
        }
        let text = match frame {
            Outgoing::Raw(text) => text.clone(),
            Outgoing::Frame { pattern, .. } => match substitute(pattern, &self.captures) {
                Ok(value) => {
                    if !malformed {
                        for v in self.spec.check_request(&value) {
                            self.fail(
                                name,
                                FailureKind::Transcript,
                                format!("the transcript sends a frame that breaks the spec: {v}"),
                            )
                            .path = Some(v.path.clone());
                        }
                    }
                    value.to_string()
                }
                Err(e) => {
                    self.fail(
                        name,
                        FailureKind::Transcript,
                        format!("cannot build the frame: {e}"),
                    );
                    return;
                }
            },
        };
        let Some(conn) = self.conns.get_mut(name) else {
            return;
        };
        conn.rules.note_request_text(&text);
        let closed = conn.closed.is_some();
        let sent = conn.client.as_ref().is_some_and(|c| c.send_text(text));
        if !sent || closed {
            self.fail(
                name,
                FailureKind::Close,
                "cannot send: the connection is closed",
            );
        }
    }
}
