//! Idempotency keys in Redis (or Redis Cluster), shared by every router of a network.
//!
//! A key is claimed with one `SET NX`: the first router to set it owns the payment; any other
//! reads back who did. Values are `<fingerprint hex>:<payment id>`. Keys do not expire yet
//! (retention is a later issue); Redis must therefore be configured to persist and not evict.

use corridor_schemas::{IdempotencyKey, ParticipantId};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{Fingerprint, KeyClaim, KeyStore, StorageError};

#[derive(Clone)]
pub struct RedisKeyStore {
    connection: ConnectionManager,
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("redis: {error}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn encode(claim: KeyClaim) -> String {
    format!("{}:{}", hex(&claim.fingerprint), claim.payment)
}

fn decode(value: &str) -> Result<KeyClaim, StorageError> {
    let corrupt = || StorageError::Corrupt(format!("idempotency value `{value}`"));
    let (fingerprint_hex, payment) = value.split_once(':').ok_or_else(corrupt)?;
    if fingerprint_hex.len() != 64 {
        return Err(corrupt());
    }
    let mut fingerprint: Fingerprint = [0; 32];
    for (index, byte) in fingerprint.iter_mut().enumerate() {
        let pair = fingerprint_hex.get(index * 2..index * 2 + 2).ok_or_else(corrupt)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| corrupt())?;
    }
    Ok(KeyClaim { fingerprint, payment: payment.parse().map_err(|_| corrupt())? })
}

impl RedisKeyStore {
    pub async fn connect(redis_url: &str) -> Result<Self, StorageError> {
        let client = redis::Client::open(redis_url).map_err(unavailable)?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self { connection })
    }

    fn redis_key(participant: &ParticipantId, key: &IdempotencyKey) -> String {
        // Participant ids cannot contain ':' so the split is unambiguous; the hash tag keeps a
        // participant's keys on one Redis Cluster slot.
        format!("corridor:idempotency:{{{participant}}}:{key}")
    }
}

#[async_trait::async_trait]
impl KeyStore for RedisKeyStore {
    async fn claim(
        &self,
        participant: &ParticipantId,
        key: &IdempotencyKey,
        claim: KeyClaim,
    ) -> Result<Option<KeyClaim>, StorageError> {
        let redis_key = Self::redis_key(participant, key);
        let mut connection = self.connection.clone();
        let set: bool = connection.set_nx(&redis_key, encode(claim)).await.map_err(unavailable)?;
        if set {
            return Ok(None);
        }
        let existing: String = connection.get(&redis_key).await.map_err(unavailable)?;
        decode(&existing).map(Some)
    }

    async fn probe(&self) -> Result<(), StorageError> {
        let mut connection = self.connection.clone();
        let _pong: String = redis::cmd("PING").query_async(&mut connection).await.map_err(unavailable)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use corridor_schemas::PaymentId;

    use super::*;

    #[test]
    fn values_round_trip() {
        let claim = KeyClaim { fingerprint: [0xab; 32], payment: PaymentId::generate() };
        assert_eq!(decode(&encode(claim)).unwrap(), claim);
        assert!(decode("zz:1").is_err());
    }
}
