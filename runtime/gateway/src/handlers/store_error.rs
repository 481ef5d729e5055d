//! The one mapping of storage failures to protocol errors, shared by the handler modules. A
//! module of its own (re-exported by `handlers`) so that using it ties no handler module to
//! `handlers` itself.

use flynn_protocol::wire::RpcError;

/// Maps a storage failure to an internal error that says what failed.
pub(crate) fn store_error(e: flynn_store::StoreError) -> RpcError {
    tracing::error!(error = %e, "store failure");
    RpcError::internal(format!(
        "storage failed: {e}; check the gateway's data directory and logs"
    ))
}
