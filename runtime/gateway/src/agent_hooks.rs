//! What the gateway does when the agent's turns and tool calls end: metrics
//! (`flynn_turns_total`, `flynn_tool_runs_total`, ...) and Web Push when a turn finished with
//! nobody watching its session ([`crate::push::sender::Notifier`]).

use std::time::Duration;

use flynn_agent::deps::Hooks;

use crate::push::sender::Notifier;

/// The gateway's [`Hooks`].
pub struct GatewayHooks {
    pub push: Notifier,
}

impl Hooks for GatewayHooks {
    fn turn_finished(&self, session_id: &str, run_id: &str, answer: &str) {
        self.push.turn_finished(session_id, run_id, answer);
    }

    fn turn_measured(&self, ok: bool, elapsed: Duration, input_tokens: u64, output_tokens: u64) {
        crate::metrics::get().turn(ok, elapsed, input_tokens, output_tokens);
    }

    fn tool_ran(&self, tool: &str, known: bool, outcome: &'static str) {
        crate::metrics::get().tool_run(tool, known, outcome);
    }
}
