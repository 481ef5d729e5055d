//! stub
use super::routes::{Callback, HandledResult};
use crate::gateway::Gateway;
use std::sync::Arc;
#[derive(Default)]
pub struct TokenCache;
pub async fn handle(_gateway: &Arc<Gateway>, _callback: Callback) -> HandledResult {
    Err(super::ChannelError::Disabled("x"))
}
