//! The secrets the daemon takes from its environment (`*_env` keys, `FLYNN_SERVER_TOKEN`). Its
//! own module so that what reads a secret (config, webhooks, push, channels) does not reach
//! into `config` for it.

use std::collections::BTreeMap;

/// Secrets the daemon read from its environment at start and then removed from it (so the
/// tools it runs cannot read them from `/proc/<pid>/environ`), by variable name. Set once by
/// `main` through [`keep_env_secrets`]; [`crate::config::Config::with_env`], also on `config.reload`, reads
/// them here. Unset (library use, in-process tests): the live environment is read as before.
static KEPT_ENV: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();

/// Keeps `secrets` (variable name to value) for [`crate::config::Config::with_env`]; only the first call
/// counts.
pub fn keep_env_secrets(secrets: BTreeMap<String, String>) {
    if KEPT_ENV.set(secrets).is_err() {
        tracing::warn!("the environment's secrets were already kept; ignoring a second copy");
    }
}

/// A secret variable: the copy kept at start, else the live environment.
pub(crate) fn env_secret(name: &str) -> Option<String> {
    KEPT_ENV
        .get()
        .and_then(|kept| kept.get(name).cloned())
        .or_else(|| std::env::var(name).ok())
}

/// The kept copies, if `main` kept any (unset in library use and in-process tests).
pub(crate) fn kept_env() -> Option<&'static BTreeMap<String, String>> {
    KEPT_ENV.get()
}
