//! Durable router state: the coordinator's journal, payment receipts, idempotency keys, locked
//! FX quotes with their single use, and the compliance feed (hash-chained records and signed
//! checkpoints, one chain per jurisdiction).
//!
//! Five traits, two backends:
//! - **embedded** (the default, no server): one redb file with group commit — concurrent writes
//!   from many payments share one fsync ([`embedded`]);
//! - **production**: the journal, the receipts and the feed in PostgreSQL ([`postgres`]),
//!   idempotency keys and quote locks in Redis ([`redis_keys`], [`redis_quotes`]), so several
//!   routers can share them.
//!
//! Every write here is durable when its future returns. Payments are stored as their wire
//! `corridor.v1.Payment` encoding: the receipt format is already versioned, and a payment read
//! back after a restart is byte-for-byte what the client was told. Quotes are stored as whatever
//! encoding the caller gives: this module neither reads nor prices them. Feed records and
//! checkpoints are stored as their export lines (`corridor_compliance::feed`'s JSON lines), so an
//! export is the stored lines in order; the store chains entries itself ([`FeedStore::append`]),
//! because only the store sees every appender of a chain.
//!
//! What is deliberately not here: retention of anything but quotes (journal, receipts and keys are
//! never deleted yet; a quote and its claim are forgotten [`QUOTE_RETENTION`] after the quote
//! expires), deciding whether a quote is still valid (the caller compares its expiry with its
//! clock), and deciding what a feed entry says or when a checkpoint is signed ([`crate::feed`] signs).

pub mod embedded;
pub mod postgres;
pub mod redis_keys;
pub mod redis_quotes;
pub mod redis_rates;
pub mod redis_velocity;
pub mod velocity;

#[cfg(test)]
pub(crate) mod contract_tests;
#[cfg(test)]
mod postgres_redis_tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_compliance::feed::{Checkpoint, FeedChain, FeedEntry, FeedHash, FeedLine, FeedRecord, parse_line};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{IdempotencyKey, Jurisdiction, ParticipantId, PaymentId, QuoteId};

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

/// How long a router's ownership of its journal entries lasts after its last renewal; the
/// lease is renewed every [`LEASE_RENEW_INTERVAL`]. A replica that stops renewing (dead, or cut
/// off from the database) has its unfinished payments taken over this long after.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often a router renews its lease.
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(1);

/// A journaled payment that has not finished: what recovery must complete.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// The payment as it was when its legs were about to be prepared (status PENDING, legs planned).
    pub payment: wire::Payment,
    /// `None`: prepared (maybe) but undecided, so recovery aborts it.
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The write cannot be stored as asked (e.g. a feed entry too large for an export line);
    /// retrying it will not help. Nothing of it was stored.
    #[error("refused: {0}")]
    Refused(String),
}

/// The coordinator's write-ahead journal (presumed abort).
#[async_trait::async_trait]
pub trait Journal: Send + Sync + 'static {
    /// Durably records a payment whose legs are about to be prepared, so that after a crash the
    /// payment is known and aborted on every ledger that may hold it; in the same write, saves it
    /// as the payment's receipt (PENDING) in the receipts of the same backend, so that it can be
    /// read while it settles.
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

    /// Whether the journal has an entry (begun, decided or finished) for `payment`.
    async fn contains(&self, payment: PaymentId) -> Result<bool, StorageError>;

    /// Up to `limit` begun, unfinished entries whose owner is gone, now owned by this router
    /// (oldest first): what this router must complete for a router that died, or for its own
    /// earlier run. Every entry is owned by the router that began it (or took it over last).
    /// With PostgreSQL an owner is gone once its lease lapsed ([`LEASE_TTL`] after its last
    /// renewal; each router renews its lease in the background) or was released; with the
    /// embedded store only one process can open the file, so the orphans are the entries left
    /// by earlier runs. Two routers never take over the same entry at once. Taking over is
    /// safe even from an owner that is slow rather than dead: decisions are first-writer-wins
    /// and every ledger call is idempotent.
    async fn take_over(&self, limit: usize) -> Result<Vec<JournalEntry>, StorageError>;

    /// Answers when the journal's store is reachable and serving (a cheap read); for readiness.
    async fn probe(&self) -> Result<(), StorageError>;

    /// Whether this router runs the network's chores that must run once, not once per replica
    /// (rejecting held payments whose review timed out): the router holding a lease that started
    /// first. With the embedded store the one router always does. During a change of leader two
    /// routers may both believe they lead for a moment; the chores must stay safe if so.
    async fn leads(&self) -> Result<bool, StorageError>;

    /// Gives up this router's ownership now (it is draining or stopping): its unfinished entries
    /// may be taken over by another router at once instead of after its lease lapses.
    async fn release(&self) -> Result<(), StorageError>;
}

/// Payment receipts, by id (UUID v7, so in creation order).
#[async_trait::async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    async fn save(&self, payment: &wire::Payment) -> Result<(), StorageError>;

    /// Appends `feed` to the compliance feed of this same backend, then saves `payment`, as one
    /// atomic write: both or neither are durable on return. A payment's final receipt goes this
    /// way with its feed records (a receipt anyone can read is in the feed already), and one
    /// write instead of two keeps a group commit off the payment's path. A feed entry the store
    /// refuses fails the whole call and saves nothing.
    async fn save_with_feed(
        &self,
        payment: &wire::Payment,
        feed: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    ) -> Result<(), StorageError>;

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

    /// Answers when the store is reachable; for readiness.
    async fn probe(&self) -> Result<(), StorageError>;
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

/// The compliance feed: one hash chain per jurisdiction, and the signed checkpoints of its heads.
#[async_trait::async_trait]
pub trait FeedStore: Send + Sync + 'static {
    /// Appends each entry to its jurisdiction's chain, in order, and returns the records; durable
    /// on return. Sequence numbers and hashes are assigned inside the store (from the chain's
    /// stored head, with corridor_compliance's [`FeedChain`]), so concurrent appenders — tasks of
    /// one router, or routers sharing the database — never fork or gap a chain.
    ///
    /// All or nothing: if any entry is refused ([`StorageError::Refused`], e.g. too large for an
    /// export line) or the write fails, none of them is appended.
    async fn append(
        &self,
        entries: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    ) -> Result<Vec<FeedRecord>, StorageError>;

    /// Records of `jurisdiction` with sequence >= `from_sequence`, at most `limit`, in order.
    async fn records(
        &self,
        jurisdiction: &Jurisdiction,
        from_sequence: u64,
        limit: usize,
    ) -> Result<Vec<FeedRecord>, StorageError>;

    /// Every jurisdiction's head: (jurisdiction, last sequence, its hash), by jurisdiction. A
    /// jurisdiction without records is absent.
    async fn heads(&self) -> Result<Vec<(Jurisdiction, u64, FeedHash)>, StorageError>;

    /// Stores a checkpoint as given (the store does not check its signature or its head). One is
    /// kept per (jurisdiction, sequence, key): saving another for the same three keeps the first,
    /// so routers that sign the same head at once store one checkpoint, not several.
    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StorageError>;

    /// Checkpoints of `jurisdiction`, in sequence order (then by key id).
    async fn checkpoints(&self, jurisdiction: &Jurisdiction) -> Result<Vec<Checkpoint>, StorageError>;

    /// The checkpoint of `jurisdiction` with the highest sequence (of any key), if any.
    async fn latest_checkpoint(&self, jurisdiction: &Jurisdiction) -> Result<Option<Checkpoint>, StorageError>;
}

/// The five stores the router uses, whatever their backend.
#[derive(Clone)]
pub struct Storage {
    pub journal: Arc<dyn Journal>,
    pub payments: Arc<dyn PaymentStore>,
    pub keys: Arc<dyn KeyStore>,
    pub quotes: Arc<dyn QuoteStore>,
    pub feed: Arc<dyn FeedStore>,
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
pub(crate) fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// One record chained by [`chain_feed_entries`], with its export line (what the store keeps).
struct ChainedRecord {
    record: FeedRecord,
    line: String,
}

/// Chains `entries`, in order, onto `chains` (every jurisdiction of `entries` must be there,
/// resumed from its stored head) and encodes each record's export line. Nothing is stored here:
/// on an error the caller stores none of them, and drops `chains`.
fn chain_feed_entries(
    chains: &mut BTreeMap<Jurisdiction, FeedChain>,
    entries: Vec<(Jurisdiction, FeedEntry)>,
    recorded_at_ms: u64,
) -> Result<Vec<ChainedRecord>, StorageError> {
    let mut chained = Vec::with_capacity(entries.len());
    for (jurisdiction, entry) in entries {
        let chain = chains.get_mut(&jurisdiction).ok_or_else(|| {
            StorageError::Corrupt(format!("the feed of {jurisdiction} was not resumed before appending"))
        })?;
        let record = chain
            .append(entry, recorded_at_ms)
            .map_err(|error| StorageError::Refused(format!("feed entry for {jurisdiction}: {error}")))?;
        let line = FeedLine::Record(Box::new(record.clone())).to_json().map_err(|error| {
            StorageError::Refused(format!("feed record {jurisdiction}/{}: {error}", record.sequence))
        })?;
        chained.push(ChainedRecord { record, line });
    }
    Ok(chained)
}

/// The chain of `jurisdiction` whose stored head is `head` (`None`: no record yet).
fn resume_feed_chain(jurisdiction: &Jurisdiction, head: Option<(u64, FeedHash)>) -> Result<FeedChain, StorageError> {
    match head {
        None => Ok(FeedChain::new(jurisdiction.clone())),
        Some((sequence, hash)) => FeedChain::resume(jurisdiction.clone(), sequence, hash)
            .map_err(|error| StorageError::Corrupt(format!("feed head of {jurisdiction}: {error}"))),
    }
}

/// The export line of a checkpoint, as stored.
fn encode_checkpoint(checkpoint: &Checkpoint) -> Result<String, StorageError> {
    FeedLine::Checkpoint(checkpoint.clone()).to_json().map_err(|error| {
        StorageError::Refused(format!("checkpoint {}/{}: {error}", checkpoint.jurisdiction, checkpoint.sequence))
    })
}

/// A stored record line, checked to be the record stored under `jurisdiction` and `sequence`.
fn decode_feed_record(line: &str, jurisdiction: &Jurisdiction, sequence: u64) -> Result<FeedRecord, StorageError> {
    let corrupt = |what: String| StorageError::Corrupt(format!("feed record {jurisdiction}/{sequence}: {what}"));
    match parse_line(1, line).map_err(|error| corrupt(error.to_string()))? {
        FeedLine::Record(record) if record.jurisdiction == *jurisdiction && record.sequence == sequence => Ok(*record),
        FeedLine::Record(record) => {
            Err(corrupt(format!("the stored line is record {}/{}", record.jurisdiction, record.sequence)))
        }
        FeedLine::Checkpoint(_) => Err(corrupt("the stored line is a checkpoint".into())),
    }
}

/// A stored checkpoint line, checked to be of `jurisdiction`.
fn decode_checkpoint(line: &str, jurisdiction: &Jurisdiction) -> Result<Checkpoint, StorageError> {
    let corrupt = |what: String| StorageError::Corrupt(format!("feed checkpoint of {jurisdiction}: {what}"));
    match parse_line(1, line).map_err(|error| corrupt(error.to_string()))? {
        FeedLine::Checkpoint(checkpoint) if checkpoint.jurisdiction == *jurisdiction => Ok(checkpoint),
        FeedLine::Checkpoint(checkpoint) => Err(corrupt(format!("the stored line is of {}", checkpoint.jurisdiction))),
        FeedLine::Record(_) => Err(corrupt("the stored line is a record".into())),
    }
}

fn quote_not_stored(quote: QuoteId) -> StorageError {
    StorageError::Unavailable(format!("quote {quote} is not stored (never stored, or forgotten after its retention)"))
}
