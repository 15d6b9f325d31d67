//! Durable router state: the coordinator's journal, payment receipts, and idempotency keys.
//!
//! Three traits, two backends:
//! - **embedded** (the default, no server): one redb file with group commit — concurrent writes
//!   from many payments share one fsync ([`embedded`]);
//! - **production**: the journal and the receipts in PostgreSQL ([`postgres`]), idempotency keys
//!   in Redis ([`redis_keys`]), so several routers can share them.
//!
//! Every write here is durable when its future returns. Payments are stored as their wire
//! `corridor.v1.Payment` encoding: the receipt format is already versioned, and a payment read
//! back after a restart is byte-for-byte what the client was told.
//!
//! What is deliberately not here: retention (nothing is ever deleted yet), and ownership leases
//! for several routers recovering at once (a later issue).

pub mod embedded;
pub mod postgres;
pub mod redis_keys;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod postgres_redis_tests;

use std::sync::Arc;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{IdempotencyKey, ParticipantId, PaymentId};

/// The coordinator's decision for one payment's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Abort,
}

impl Decision {
    fn to_code(self) -> i16 {
        match self {
            Decision::Commit => 1,
            Decision::Abort => 2,
        }
    }

    fn from_code(code: i16) -> Option<Self> {
        match code {
            1 => Some(Decision::Commit),
            2 => Some(Decision::Abort),
            _ => None,
        }
    }
}

/// A journaled payment that has not finished: what recovery must complete.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The payment as it was when its legs were about to be prepared (status PENDING, legs planned).
    pub payment: wire::Payment,
    /// `None`: prepared (maybe) but undecided, so recovery aborts it.
    pub decision: Option<Decision>,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// The coordinator's write-ahead journal (presumed abort).
#[async_trait::async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Durably records a payment whose legs are about to be prepared, so that after a crash the
    /// payment is known and aborted on every ledger that may hold it.
    async fn begin(&self, payment: &wire::Payment) -> Result<(), StorageError>;

    /// Records `proposed` unless a decision is already recorded, and returns the decision that
    /// stands (first writer wins). Durable on return: COMMIT goes here before any ledger hears it.
    /// Deciding a payment that was never begun records it (as a bare decision), so a late
    /// question about it keeps getting the same answer.
    async fn decide(&self, payment: PaymentId, proposed: Decision) -> Result<Decision, StorageError>;

    /// Marks a payment finished: every ledger acknowledged the decision.
    async fn finish(&self, payment: PaymentId) -> Result<(), StorageError>;

    /// Begun or decided, not finished: oldest first.
    async fn unfinished(&self) -> Result<Vec<JournalEntry>, StorageError>;
}

/// Payment receipts, by id (UUID v7, so in creation order).
#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    async fn save(&self, payment: &wire::Payment) -> Result<(), StorageError>;

    async fn get(&self, payment: PaymentId) -> Result<Option<wire::Payment>, StorageError>;

    /// Up to `limit` payments after `after`, oldest first, optionally one participant's; and the
    /// id to continue after when more remain.
    async fn list(
        &self,
        participant: Option<&ParticipantId>,
        after: Option<PaymentId>,
        limit: usize,
    ) -> Result<(Vec<wire::Payment>, Option<PaymentId>), StorageError>;

    /// Payments still PENDING, for recovery.
    async fn pending(&self) -> Result<Vec<wire::Payment>, StorageError>;
}

/// SHA-256 of the instruction's canonical encoding: what a key was first used with.
pub type Fingerprint = [u8; 32];

/// What an earlier use of an idempotency key left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyClaim {
    pub fingerprint: Fingerprint,
    pub payment: PaymentId,
}

#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Claims `(participant, key)` for `claim`. `None`: the key was free and is now taken;
    /// `Some(existing)`: the key was taken before, by that claim.
    async fn claim(
        &self,
        participant: &ParticipantId,
        key: &IdempotencyKey,
        claim: KeyClaim,
    ) -> Result<Option<KeyClaim>, StorageError>;
}

/// The three stores the router uses, whatever their backend.
#[derive(Clone)]
pub struct Storage {
    pub journal: Arc<dyn Journal>,
    pub payments: Arc<dyn PaymentStore>,
    pub keys: Arc<dyn KeyStore>,
}

fn payment_id_of(payment: &wire::Payment) -> Result<PaymentId, StorageError> {
    payment
        .payment_id
        .parse()
        .map_err(|reason| StorageError::Corrupt(format!("payment id `{}` {reason}", payment.payment_id)))
}

fn is_pending(payment: &wire::Payment) -> bool {
    payment.status == wire::PaymentStatus::Pending as i32
}

/// The key-value encoding of a key claim: fingerprint then the payment id's 16 bytes.
fn encode_claim(claim: KeyClaim) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(48);
    bytes.extend_from_slice(&claim.fingerprint);
    bytes.extend_from_slice(claim.payment.as_uuid().as_bytes());
    bytes
}

fn decode_claim(bytes: &[u8]) -> Result<KeyClaim, StorageError> {
    let corrupt = || StorageError::Corrupt(format!("key claim of {} bytes, expected 48", bytes.len()));
    let fingerprint: Fingerprint = bytes.get(..32).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
    let uuid = bytes.get(32..48).and_then(|b| uuid::Uuid::from_slice(b).ok()).ok_or_else(corrupt)?;
    let payment = uuid.to_string().parse().map_err(|_| corrupt())?;
    Ok(KeyClaim { fingerprint, payment })
}
