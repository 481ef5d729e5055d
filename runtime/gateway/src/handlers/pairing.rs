//! `pairing.generate` and `pairing.list`: short-lived codes an unknown sender types to pair.
//! Codes come from a CSPRNG over an alphabet without look-alike characters (no 0/O, 1/I/L),
//! are persisted, and expire after `pairing.ttl_seconds`.

use chrono::{TimeZone, Utc};
use flynn_protocol::PairingMethods;
use flynn_protocol::types::{
    PairingCode, PairingGenerateParams, PairingGenerateResult, PairingListParams, PairingListResult,
};
use flynn_protocol::wire::{Call, Reply, RpcError};
use flynn_store::StoreError;
use rand::Rng;

use super::store_error;
use crate::connection::ConnectionState;
use crate::gateway::{Gateway, now_ms};

/// 31 symbols: 8 of them give ~39.6 bits, and codes expire in minutes.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
pub const CODE_LENGTH: usize = 8;

pub fn new_code() -> String {
    let mut rng = rand::rng();
    (0..CODE_LENGTH)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

fn timestamp(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn wire_code<T: TryFrom<String>>(code: String) -> Result<T, RpcError> {
    T::try_from(code)
        .map_err(|_| RpcError::internal("a stored pairing code does not match the spec's pattern"))
}

pub async fn generate(
    gw: &Gateway,
    _: Call<ConnectionState>,
    p: PairingGenerateParams,
) -> Result<PairingGenerateResult, RpcError> {
    let channel = p.channel.trim();
    if channel.is_empty() || channel.len() > 64 {
        return Err(RpcError::invalid(
            "params.channel",
            "`channel` must be 1-64 characters, e.g. `telegram`",
        ));
    }
    let now = now_ms();
    let ttl_ms =
        i64::try_from(gw.config().pairing.ttl_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires = now.saturating_add(ttl_ms);
    let _ = gw.store.purge_expired_pairing_codes(now).await;
    for _ in 0..8 {
        let code = new_code();
        match gw
            .store
            .insert_pairing_code(&code, channel, now, expires)
            .await
        {
            Ok(()) => {
                return Ok(PairingGenerateResult {
                    code: wire_code(code)?,
                    expires_at: timestamp(expires),
                });
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
    Err(RpcError::internal(
        "could not find an unused pairing code; retry",
    ))
}

pub async fn list(
    gw: &Gateway,
    _: Call<ConnectionState>,
    _: PairingListParams,
) -> Result<PairingListResult, RpcError> {
    let mut codes = gw
        .store
        .active_pairing_codes(now_ms())
        .await
        .map_err(store_error)?;
    // Oldest first, as the spec orders the list (the store returns newest first).
    codes.reverse();
    let codes = codes
        .into_iter()
        .map(|c| {
            Ok(PairingCode {
                code: wire_code(c.code)?,
                channel: c.channel,
                created_at: timestamp(c.created_at_ms),
                expires_at: timestamp(c.expires_at_ms),
            })
        })
        .collect::<Result<_, RpcError>>()?;
    Ok(PairingListResult { codes })
}

impl PairingMethods for Gateway {
    fn pairing_generate(
        &self,
        call: Call<ConnectionState>,
        params: PairingGenerateParams,
    ) -> Reply<'_, PairingGenerateResult> {
        Reply::later(generate(self, call, params))
    }
    fn pairing_list(
        &self,
        call: Call<ConnectionState>,
        params: PairingListParams,
    ) -> Reply<'_, PairingListResult> {
        Reply::later(list(self, call, params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_use_the_unambiguous_alphabet() {
        for _ in 0..200 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LENGTH);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['0', 'O', '1', 'I', 'L']));
        }
    }
}
