//! The integration tests of flynn-gateway, in one binary: one module per area, `support` (and
//! `method_checks`) shared by them. One binary instead of one per file links the gateway and the
//! whole stack under it once, which was most of the tests' build time and of the disk space they
//! took (the store, models, tools and ops crates do the same).
//!
//! All modules share one process, so a test must not change process-wide state: no
//! `std::env::set_var` (give a spawned daemon its environment instead), no global tracing
//! subscriber (`tracing::subscriber::set_default` on the test's own thread), and no assertion on
//! a process-wide counter that other tests move (`support::alone` runs such a test in a process
//! of its own). Tests that need the daemon as a process use `support::process`.

mod method_checks;
mod support;

mod agent_cancel;
mod agent_compaction;
mod agent_lanes;
mod agent_resume;
mod agent_resume_cap;
mod agent_resume_cut;
mod agent_resume_process;
mod agent_runs;
mod analytics_methods;
mod auth_websocket;
mod canvas_methods;
mod channel_bluebubbles;
mod channel_gmail;
mod channel_google_chat;
mod channel_pairing;
mod channel_teams;
mod config_methods;
mod dashboard_http;
mod edge;
mod http_health;
mod http_metrics;
mod inbox_turns;
mod nodes_methods;
mod operations_methods;
mod outbound_retry;
mod persistence_process;
mod persistence_restart;
mod persistence_turn_load;
mod presence_methods;
mod scopes;
mod secrets_process;
mod sessions_methods;
mod sessions_pairing;
mod smoke;
mod tls;
mod tool_run_limits;
mod transport_frames;
mod transport_limits;
mod transport_node_client;
mod transport_system;
mod web_push;
mod webhooks;
