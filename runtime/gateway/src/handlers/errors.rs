//! Errors the handlers share.

use flynn_protocol::wire::RpcError;

/// Maps a storage failure to an internal error that says what failed.
pub(crate) fn store_error(e: flynn_store::StoreError) -> RpcError {
    tracing::error!(error = %e, "store failure");
    RpcError::internal(format!(
        "storage failed: {e}; check the gateway's data directory and logs"
    ))
}
