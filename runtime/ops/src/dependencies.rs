//! `system.dockerDependencies` and `system.dockerDependencyControl`.
//!
//! Services come from the compose file ([`crate::compose`]); their containers from
//! `docker compose -f FILE [-p PROJECT] ps --all --format json`. Control runs
//! `docker compose -f FILE [-p PROJECT] start|restart|stop SERVICE`; `start` of a service
//! without a container runs `up -d SERVICE` instead (there is nothing to start); `update` runs
//! `pull SERVICE` and then `up -d SERVICE`.

use std::path::Path;

use crate::command::Invocation;
use crate::compose::{self, ComposeService};
use crate::docker::{self, ComposeContainer, MISSING, container_for, dependency_view, parse_ps};
use crate::error::OpsError;
use crate::ops::{Ops, describe};
use flynn_protocol::types::{
    ControlAction, DockerDependencyStatus, SystemDockerDependenciesResult,
    SystemDockerDependencyControlResult,
};

/// A dependency's view plus the container behind it (for the sampler and the logs).
#[derive(Debug, Clone)]
pub(crate) struct DependencySnapshot {
    pub(crate) view: DockerDependencyStatus,
    pub(crate) container: Option<ComposeContainer>,
}

impl Ops {
    /// `system.dockerDependencies`: every compose service but Flynn's own, in file order.
    ///
    /// No compose file configured: an empty list. Docker missing or failing: every service is
    /// listed with `state: "unavailable"` and the reason in `error`. Fails only when the
    /// configured compose file cannot be read or parsed.
    pub async fn docker_dependencies(&self) -> Result<SystemDockerDependenciesResult, OpsError> {
        let snapshots = self.dependency_snapshots().await?;
        Ok(SystemDockerDependenciesResult {
            dependencies: snapshots.into_iter().map(|s| s.view).collect(),
        })
    }

    /// `system.dockerDependencyControl`: runs `action` on dependency `id` and returns its new
    /// state. Only ids that `system.dockerDependencies` lists, and only actions in the
    /// dependency's current `availableActions`, are accepted.
    pub async fn docker_dependency_control(
        &self,
        id: &str,
        action: ControlAction,
    ) -> Result<SystemDockerDependencyControlResult, OpsError> {
        let services = self.compose_services().await?;
        let Some(service) = services.iter().find(|s| s.id == id) else {
            return Err(OpsError::UnknownDependency {
                id: id.to_owned(),
                valid: services.iter().map(|s| s.id.clone()).collect(),
            });
        };
        let target = format!("docker dependency `{id}`");
        let current = self.dependency_snapshot(service).await;
        if !current.view.available_actions.contains(&action) {
            return Err(OpsError::ActionNotAvailable {
                target,
                action,
                status: current.view.status_text,
                available: current.view.available_actions,
            });
        }
        let message = self
            .run_dependency_action(service, &current.view, action)
            .await
            .map_err(|reason| OpsError::ActionFailed {
                target: target.clone(),
                action,
                reason,
            })?;
        tracing::info!(dependency = id, %action, "docker dependency control done");
        let after = self.dependency_snapshot(service).await;
        Ok(SystemDockerDependencyControlResult {
            dependency: id.to_owned(),
            action,
            status: docker::short_state(&after.view),
            message: Some(message),
        })
    }

    /// The dependencies of the compose file (empty when none is configured).
    pub(crate) async fn compose_services(&self) -> Result<Vec<ComposeService>, OpsError> {
        let docker = &self.inner.config.docker;
        match &docker.compose_file {
            None => Ok(Vec::new()),
            Some(path) => Ok(compose::load(path, &docker.self_service).await?),
        }
    }

    pub(crate) async fn dependency_snapshots(&self) -> Result<Vec<DependencySnapshot>, OpsError> {
        let services = self.compose_services().await?;
        if services.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.snapshots_of(&services).await)
    }

    pub(crate) async fn dependency_snapshot(&self, service: &ComposeService) -> DependencySnapshot {
        let mut snapshots = self.snapshots_of(std::slice::from_ref(service)).await;
        snapshots.pop().unwrap_or_else(|| DependencySnapshot {
            view: dependency_view(service, None),
            container: None,
        })
    }

    async fn snapshots_of(&self, services: &[ComposeService]) -> Vec<DependencySnapshot> {
        match self.compose_ps().await {
            Ok(containers) => services
                .iter()
                .map(|service| {
                    let container = container_for(&containers, &service.service).cloned();
                    DependencySnapshot {
                        view: dependency_view(service, container.as_ref()),
                        container,
                    }
                })
                .collect(),
            Err(error) => services
                .iter()
                .map(|service| DependencySnapshot {
                    view: docker::unavailable_view(service, &error),
                    container: None,
                })
                .collect(),
        }
    }

    async fn compose_ps(&self) -> Result<Vec<ComposeContainer>, String> {
        let Some(invocation) = self.compose_invocation() else {
            return Ok(Vec::new());
        };
        let invocation = invocation.args(["ps", "--all", "--format", "json"]);
        let output = self
            .inner
            .runner
            .run(&invocation)
            .await
            .map_err(|err| describe(&err))?;
        parse_ps(&output.stdout)
    }

    /// `docker compose -f FILE [-p PROJECT]`, or `None` without a compose file.
    pub(crate) fn compose_invocation(&self) -> Option<Invocation> {
        let config = &self.inner.config;
        let file: &Path = config.docker.compose_file.as_deref()?;
        let mut invocation = Invocation::new(&config.binaries.docker)
            .args(["compose", "-f"])
            .arg(file.display().to_string());
        if let Some(project) = &config.docker.project_name {
            invocation = invocation.args(["-p", project.as_str()]);
        }
        Some(invocation)
    }

    async fn run_dependency_action(
        &self,
        service: &ComposeService,
        current: &DockerDependencyStatus,
        action: ControlAction,
    ) -> Result<String, String> {
        let Some(base) = self.compose_invocation() else {
            return Err("no compose file is configured ([ops.docker].compose_file)".to_owned());
        };
        let name = service.service.as_str();
        let run = |args: &[&str], long: bool| {
            let invocation = base.clone().args(args.iter().copied()).arg(name);
            let runner = if long {
                self.inner.update_runner.clone()
            } else {
                self.inner.runner.clone()
            };
            async move { runner.run(&invocation).await.map_err(|err| describe(&err)) }
        };
        match action {
            ControlAction::Start if current.state == MISSING => {
                run(&["up", "-d"], true).await?;
                Ok(format!("Created and started {name} container."))
            }
            ControlAction::Start => {
                run(&["start"], false).await?;
                Ok(format!("Started {name} container."))
            }
            ControlAction::Restart => {
                run(&["restart"], false).await?;
                Ok(format!("Restarted {name} container."))
            }
            ControlAction::Stop => {
                run(&["stop"], false).await?;
                Ok(format!("Stopped {name} container."))
            }
            ControlAction::Update => {
                run(&["pull"], true).await?;
                run(&["up", "-d"], true).await?;
                Ok(format!(
                    "Pulled the latest {name} image and reconciled its container (up -d)."
                ))
            }
        }
    }
}
