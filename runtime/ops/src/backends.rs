//! `system.localBackends` and `system.localBackendControl`.
//!
//! Status: `systemctl --user show UNIT --property=…` per backend. Control: `systemctl --user
//! start|restart|stop UNIT`; `update` pulls every configured model with `ollama pull MODEL`
//! (ollama) or restarts the unit (llama.cpp: model files are refreshed outside Flynn).

use futures_util::future::join_all;

use crate::command::Invocation;
use crate::config::{BackendProvider, LocalBackendConfig};
use crate::error::OpsError;
use crate::ops::{Ops, describe};
use crate::systemd::{self, backend_from_properties, parse_show, unavailable_backend};
use flynn_protocol::types::{
    ControlAction, LocalBackendStatus, SystemLocalBackendControlResult, SystemLocalBackendsResult,
};

impl Ops {
    /// `system.localBackends`: one entry per configured backend, in config order. Never fails:
    /// a backend whose status cannot be read is listed with `activeState: "unavailable"` and
    /// the reason in `error`.
    pub async fn local_backends(&self) -> SystemLocalBackendsResult {
        let statuses = self
            .inner
            .config
            .local_backends
            .iter()
            .map(|backend| self.backend_status(backend));
        SystemLocalBackendsResult {
            backends: join_all(statuses).await,
        }
    }

    /// `system.localBackendControl`: runs `action` on backend `id` and returns its new state.
    ///
    /// Only ids that `system.localBackends` lists, and only actions in the backend's current
    /// `availableActions`, are accepted.
    pub async fn local_backend_control(
        &self,
        id: &str,
        action: ControlAction,
    ) -> Result<SystemLocalBackendControlResult, OpsError> {
        let backends = &self.inner.config.local_backends;
        let Some(backend) = backends.iter().find(|b| b.id() == id) else {
            return Err(OpsError::UnknownBackend {
                id: id.to_owned(),
                valid: backends.iter().map(|b| b.id().to_owned()).collect(),
            });
        };
        let target = format!("local backend `{id}`");
        let current = self.backend_status(backend).await;
        if !current.available_actions.contains(&action) {
            return Err(OpsError::ActionNotAvailable {
                target,
                action,
                status: current.status_text,
                available: current.available_actions,
            });
        }
        let message = self
            .run_backend_action(backend, action)
            .await
            .map_err(|reason| OpsError::ActionFailed {
                target: target.clone(),
                action,
                reason,
            })?;
        tracing::info!(backend = id, %action, "local backend control done");
        let after = self.backend_status(backend).await;
        Ok(SystemLocalBackendControlResult {
            backend: id.to_owned(),
            action,
            status: systemd::short_state(&after),
            message: Some(message),
        })
    }

    pub(crate) async fn backend_status(&self, backend: &LocalBackendConfig) -> LocalBackendStatus {
        let invocation = Invocation::new(&self.inner.config.binaries.systemctl)
            .args(systemd::show_args(backend.unit()));
        match self.inner.runner.run(&invocation).await {
            Ok(output) => {
                let props = parse_show(&output.stdout);
                if props.get("ActiveState").is_none() {
                    unavailable_backend(
                        backend,
                        format!(
                            "`{invocation}` printed no ActiveState; is this a systemd unit name?"
                        ),
                    )
                } else {
                    backend_from_properties(backend, &props)
                }
            }
            Err(err) => {
                tracing::debug!(backend = backend.id(), error = %err, "local backend status unavailable");
                unavailable_backend(backend, describe(&err))
            }
        }
    }

    async fn run_backend_action(
        &self,
        backend: &LocalBackendConfig,
        action: ControlAction,
    ) -> Result<String, String> {
        let unit = backend.unit();
        let systemctl = |verb: &str| {
            Invocation::new(&self.inner.config.binaries.systemctl).args(["--user", verb, unit])
        };
        let (verb, done) = match (action, backend.provider) {
            (ControlAction::Start, _) => ("start", format!("Started {unit}.")),
            (ControlAction::Restart, _) => ("restart", format!("Restarted {unit}.")),
            (ControlAction::Stop, _) => ("stop", format!("Stopped {unit}.")),
            (ControlAction::Update, BackendProvider::Llamacpp) => (
                "restart",
                format!("Restarted {unit}; llama.cpp model files are refreshed outside Flynn."),
            ),
            (ControlAction::Update, BackendProvider::Ollama) => {
                return self.pull_ollama_models(backend).await;
            }
        };
        self.inner
            .runner
            .run(&systemctl(verb))
            .await
            .map_err(|err| describe(&err))?;
        Ok(done)
    }

    async fn pull_ollama_models(&self, backend: &LocalBackendConfig) -> Result<String, String> {
        if backend.models.is_empty() {
            return Ok(format!(
                "No models are configured for `{}` (set `models` in its [[ops.local_backends]] entry); nothing to pull.",
                backend.id()
            ));
        }
        for model in &backend.models {
            let mut pull =
                Invocation::new(&self.inner.config.binaries.ollama).args(["pull", model]);
            if let Some(host) = &backend.ollama_host {
                pull = pull.env("OLLAMA_HOST", host);
            }
            self.inner
                .update_runner
                .run(&pull)
                .await
                .map_err(|err| format!("pulling `{model}`: {}", describe(&err)))?;
        }
        Ok(format!(
            "Pulled {} model(s): {}.",
            backend.models.len(),
            backend.models.join(", ")
        ))
    }
}
