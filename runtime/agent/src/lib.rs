//! The Flynn agent: everything between "a user message arrived" and "its answer is stored and
//! delivered", independent of how the message came (a WebSocket request, a webhook, a chat
//! channel, a test).
//!
//! - [`lanes`]: one lane per session and its queue modes; [`lanes::Lanes`] is the agent's handle.
//!   `lane` holds one lane's state and the overflow rule, `worker` runs a lane's turns.
//! - [`turn`]: one turn, in steps: prompt, model step, tool step, persist; a stop is a typed
//!   error. [`context`]: the context budget, `context_warning`, checkpoint and compaction.
//! - [`run`]: the running turn ([`run::ActiveRun`]), its messages and requesters.
//! - [`runs`]: a turn's kept events (`runSeq`, `agent.attach`); [`run_registry`]: the kept turns
//!   and the `idempotencyKey`s in flight, bounded by [`kept_cap`].
//! - [`approvals`]: tool approval requests waiting for an answer.
//! - [`session_config`]: per-session overrides (queue policy, model tier, compaction) and the
//!   `/queue` and `/stop` chat commands.
//! - [`config`]: the `[queue]` and `[agent]` configuration sections.
//! - [`deps`]: the narrow inputs: the store, a [`deps::SettingsSource`] (one snapshot of the
//!   configuration slice, the model resolver and the tool registry, swapped whole on reload),
//!   the approvals and [`deps::Hooks`] (metrics, "a turn finished unwatched" for Web Push).
//!   Events go to each requester's `flynn_protocol::wire::EventEmitter`, over an `EventSink`
//!   that a WebSocket connection, an HTTP channel or a test implements.
//!
//! The agent knows nothing of the gateway: the gateway builds [`deps::Deps`], implements the
//! traits and holds the [`lanes::Lanes`].

pub mod approvals;
pub mod config;
pub mod context;
pub mod deps;
pub mod kept_cap;
mod lane;
pub mod lanes;
mod prompt;
pub mod run;
pub mod run_registry;
pub mod runs;
pub mod session_config;
pub mod turn;
mod worker;
