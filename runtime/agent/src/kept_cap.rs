//! The gateway-wide bound of the turns kept for `agent.attach` (see [`crate::run_registry`]).
//! Its own module because the config builds it ([`crate::config::AgentConfig::kept_cap`]) and
//! the config must not reach the run registry (and through it the runs).

/// The gateway-wide bound of kept turns (`[agent]` config).
#[derive(Debug, Clone, Copy)]
pub struct KeptCap {
    /// Most turns kept, running ones included (running ones are never dropped).
    pub max_turns: usize,
    /// Most bytes of kept event data over all kept turns.
    pub max_bytes: usize,
}
