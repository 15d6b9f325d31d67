//! Durable router state: the coordinator's journal, payment receipts, idempotency keys, and locked
//! FX quotes with their single use.
//!
//! Four traits, two backends:
//! - **embedded** (the default, no server): one redb file with group commit — concurrent writes
//!   from many payments share one fsync ([`embedded`]);
//! - **production**: the journal and the receipts in PostgreSQL ([`postgres`]), idempotency keys
//!   and quote locks in Redis ([`redis_keys`], [`redis_quotes`]), so several routers can share them.
//!
//! Every write here is durable when its future returns. Payments are stored as their wire
//! `corridor.v1.Payment` encoding: the receipt format is already versioned, and a payment read
//! back after a restart is byte-for-byte what the client was told. Quotes are stored as whatever
//! encoding the caller gives: this module neither reads nor prices them.
//!
//! What is deliberately not here: retention of anything but quotes (journal, receipts and keys are
//! never deleted yet; a quote and its claim are forgotten [`QUOTE_RETENTION`] after the quote
//! expires), deciding whether a quote is still valid (the caller compares its expiry with its
//! clock), and ownership leases for several routers recovering at once (a later issue).

pub mod embedded;
pub mod postgres;
pub mod redis_keys;
pub mod redis_quotes;

#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod postgres_redis_tests;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{IdempotencyKey, ParticipantId, PaymentId, QuoteId};

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

    /// Payments not final yet (PENDING, or HELD for review), oldest first: for recovery and the
    /// review queue.
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

/// How long a quote (and its claim) is kept after it expires, so that a late use is told "expired"
/// rather than "unknown". After that both are deleted.
pub const QUOTE_RETENTION: Duration = Duration::from_secs(3600);

/// Locked FX quotes: stored when quoted, claimed once by the payment that uses them.
#[async_trait::async_trait]
pub trait QuoteStore: Send + Sync + 'static {
    /// Stores a new quote (its wire encoding, opaque here) that expires at `expires_at`. Kept until
    /// `expires_at + QUOTE_RETENTION`, so that a late use is told "expired" rather than "unknown".
    async fn put(&self, quote: QuoteId, encoded: &[u8], expires_at: SystemTime) -> Result<(), StorageError>;

    /// The quote's encoding as stored, or `None` if it was never stored or is forgotten. A quote may
    /// still be returned a little after its retention ends (until it is deleted): the caller decides
    /// validity from the quote's own expiry, never from whether it is found.
    async fn get(&self, quote: QuoteId) -> Result<Option<Vec<u8>>, StorageError>;

    /// Claims the quote for `payment`, atomically (first claimer wins). `None`: it was unused and is
    /// now this payment's; `Some(existing)`: it was claimed before, by `existing` (which may equal
    /// `payment`: a claim is idempotent for the same payment). The claim is kept as long as the quote.
    ///
    /// Claiming a quote that is not stored (never put, or already forgotten) is an error
    /// ([`StorageError::Unavailable`], naming the quote) and records nothing, in every backend here:
    /// a claim never outlives, or exists without, its quote. Callers check [`QuoteStore::get`] first.
    async fn claim(&self, quote: QuoteId, payment: PaymentId) -> Result<Option<PaymentId>, StorageError>;
}

/// The four stores the router uses, whatever their backend.
#[derive(Clone)]
pub struct Storage {
    pub journal: Arc<dyn Journal>,
    pub payments: Arc<dyn PaymentStore>,
    pub keys: Arc<dyn KeyStore>,
    pub quotes: Arc<dyn QuoteStore>,
}

fn payment_id_of(payment: &wire::Payment) -> Result<PaymentId, StorageError> {
    payment
        .payment_id
        .parse()
        .map_err(|reason| StorageError::Corrupt(format!("payment id `{}` {reason}", payment.payment_id)))
}

/// Not final yet: PENDING, or HELD for review. Such payments are indexed, for recovery and for
/// the review queue.
fn is_pending(payment: &wire::Payment) -> bool {
    payment.status == wire::PaymentStatus::Pending as i32 || payment.status == wire::PaymentStatus::Held as i32
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

/// Milliseconds since the Unix epoch; times before it count as the epoch, times too far ahead as
/// the last representable millisecond.
fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

fn quote_not_stored(quote: QuoteId) -> StorageError {
    StorageError::Unavailable(format!("quote {quote} is not stored (never stored, or forgotten after its retention)"))
}
