//! `config.get` (secrets as `***`) and `config.reload` (validate first; a bad file keeps the
//! running configuration and says what is wrong).

use flynn_protocol::ConfigMethods;
use flynn_protocol::types::{
    ConfigGetParams, ConfigGetResult, ConfigReloadParams, ConfigReloadResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};

use crate::config::Config;
use crate::connection::ConnectionState;
use crate::gateway::Gateway;

pub fn get(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: ConfigGetParams,
) -> Result<ConfigGetResult, RpcError> {
    serde_json::from_value(gw.config().redacted())
        .map_err(|e| RpcError::internal(format!("could not present the configuration: {e}")))
}

pub async fn reload(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: ConfigReloadParams,
) -> Result<ConfigReloadResult, RpcError> {
    let Some(path) = gw.config_path.clone() else {
        return Err(RpcError::internal(
            "the gateway was started without a config file (--config), so there is nothing to reload",
        ));
    };
    let loaded = tokio::task::spawn_blocking(move || Config::load(&path))
        .await
        .map_err(|e| RpcError::internal(format!("reload task failed: {e}")))?;
    let new = match loaded {
        Ok(config) => config.with_env(),
        Err(e) => {
            tracing::warn!(error = %e, "config.reload refused; keeping the running configuration");
            return Err(RpcError::internal(format!(
                "{e}; the running configuration is unchanged"
            )));
        }
    };
    let current = gw.config();
    let (old_server, new_server) = (&current.server, &new.server);
    if old_server.bind != new_server.bind || old_server.port != new_server.port {
        tracing::warn!("server.bind/server.port changes take effect after a restart");
    }
    new.check_exposure(old_server.bind)
        .map_err(|e| RpcError::internal(format!("{e}; the running configuration is unchanged")))?;
    // The snapshot's error names the section (models or ops) that could not be built.
    gw.set_config(new)
        .map_err(|e| RpcError::internal(format!("{e}; the running configuration is unchanged")))?;
    tracing::info!("configuration reloaded");
    Ok(ConfigReloadResult { success: true })
}

impl ConfigMethods for Gateway {
    fn config_get(
        &self,
        call: Call<ConnectionState>,
        params: ConfigGetParams,
    ) -> Reply<'_, ConfigGetResult> {
        Reply::ready(get(self, call, params))
    }
    fn config_reload(
        &self,
        call: Call<ConnectionState>,
        params: ConfigReloadParams,
    ) -> Reply<'_, ConfigReloadResult> {
        Reply::later(reload(self, call, params))
    }
}
