//! Webhooks: `POST /webhooks/<name>` for each configured `[webhooks.<name>]`.
//!
//! - [`config`]: the hook's table, its validation and its secrets (from the environment).
//! - [`signature`]: Standard Webhooks and GitHub HMAC-SHA256 verification (and signing, for
//!   senders and tests).
//! - [`template`]: the message the agent gets and the session it runs on.
//! - [`route`]: the HTTP route, its order of checks and the turn.
//!
//! A delivery becomes a turn through `inbox::start_turn` on the hook's session, so WebSocket
//! clients follow it with `agent.attach` like any other turn. Delivery ids are stored (store
//! table `webhook_deliveries`) and accepted once within the hook's replay window, across
//! restarts. The spec's decision `webhook-auth` says who may deliver.

pub mod config;
pub mod route;
pub mod signature;
pub mod template;

pub use config::{Scheme, SecretEnv, WebhookConfig};
pub use route::route;
