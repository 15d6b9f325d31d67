//! The embedded store: journal, receipts, idempotency keys, quote locks and the compliance feed in
//! one redb file on local disk.
//!
//! Writes go through one writer thread that batches whatever is queued — up to
//! [`WRITE_BATCH_MAX`] operations from concurrent payments — into a single redb write
//! transaction, committed with `Durability::Immediate` (fsync) before any of them is answered:
//! group commit. Reads run on their own read transactions and never wait for the writer.
//!
//! Layout (all keys and values are bytes):
//! - `journal`: payment id → [decision, finished, wire Payment…] (decision 0 undecided, 1 commit,
//!   2 abort; the payment bytes are dropped once finished, the decision is kept);
//! - `journal_unfinished`: payment id → () for what recovery must look at;
//! - `payments`: payment id → wire Payment; `payments_by_participant`: participant ∅ id → ();
//!   `payments_pending`: payment id → ();
//! - `keys`: participant ∅ idempotency key → fingerprint ‖ payment id;
//! - `quotes`: quote id → expiry (Unix ms, u64 big-endian) ‖ the quote's encoding;
//!   `quote_claims`: quote id → payment id; `quotes_by_expiry`: expiry ‖ quote id → ();
//! - `feed_records`: jurisdiction ∅ sequence (u64 big-endian) → the record's export line (JSON);
//!   `feed_heads`: jurisdiction → last sequence (u64 big-endian) ‖ its hash (32 bytes);
//!   `feed_checkpoints`: jurisdiction ∅ sequence ‖ key id (16 hex digits) → the checkpoint's
//!   export line.
//!
//! The feed is chained inside the writer thread, from `feed_heads` as the transaction sees it: one
//! thread applies every append of the process one after another, so a chain can neither fork nor
//! gap, and the records share the group commit (one fsync) with the payment writes around them.
//! An append is all or nothing: its records are chained, and checked not to exist yet (a head
//! behind its records refuses the append rather than overwrite one), before anything is written;
//! a file error while writing them fails the whole batch (the transaction is dropped, not
//! committed). redb lets one process open the file, so no other writer exists.
//!
//! Quotes are the only thing deleted: every write transaction first deletes up to
//! [`QUOTE_DELETIONS_PER_WRITE_MAX`] quotes (with their claims) whose retention has ended, oldest
//! first, using the wall clock of the writer thread. The bound keeps one write's cost small; a
//! backlog (after a long stop) drains over the following writes. Nothing else is ever deleted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use corridor_compliance::feed::{Checkpoint, FeedEntry, FeedHash, FeedRecord};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{IdempotencyKey, Jurisdiction, ParticipantId, PaymentId, QuoteId};
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::{
    Decision, FeedStore, Journal, JournalEntry, KeyClaim, KeyStore, PaymentStore, QUOTE_RETENTION, QuoteStore,
    StorageError, chain_feed_entries, decode_checkpoint, decode_claim, decode_feed_record, encode_checkpoint,
    encode_claim, is_pending, payment_id_of, quote_not_stored, resume_feed_chain, unix_ms,
};

const JOURNAL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("journal");
const JOURNAL_UNFINISHED: TableDefinition<&[u8], ()> = TableDefinition::new("journal_unfinished");
const PAYMENTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("payments");
const PAYMENTS_BY_PARTICIPANT: TableDefinition<&[u8], ()> = TableDefinition::new("payments_by_participant");
const PAYMENTS_PENDING: TableDefinition<&[u8], ()> = TableDefinition::new("payments_pending");
const KEYS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("keys");
const QUOTES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("quotes");
const QUOTE_CLAIMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("quote_claims");
const QUOTES_BY_EXPIRY: TableDefinition<&[u8], ()> = TableDefinition::new("quotes_by_expiry");
const FEED_RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feed_records");
const FEED_HEADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feed_heads");
const FEED_CHECKPOINTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("feed_checkpoints");

/// redb's page cache (its default is 1 GiB, which a long run fills: the router's memory would grow
/// to it). Recent pages are what payments read back.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Most operations one group commit carries.
pub const WRITE_BATCH_MAX: usize = 1_024;
/// Operations waiting for the writer; callers wait when it is full.
const WRITE_QUEUE_MAX: usize = 8_192;
/// Most expired quotes one write transaction deletes.
pub const QUOTE_DELETIONS_PER_WRITE_MAX: usize = 64;
/// Bytes of the expiry (Unix ms, big-endian) in front of a stored quote and of a quote id in the
/// expiry index.
const EXPIRY_BYTES: usize = 8;

const UNDECIDED: u8 = 0;

enum Operation {
    /// The journal entry, and the same payment as its receipt.
    Begin(SaveOperation),
    Decide {
        id: [u8; 16],
        proposed: Decision,
    },
    Finish {
        id: [u8; 16],
    },
    Save(SaveOperation),
    /// Feed entries then a receipt, all or nothing.
    SaveWithFeed {
        save: SaveOperation,
        entries: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    },
    Claim {
        key: Vec<u8>,
        claim: KeyClaim,
    },
    PutQuote {
        id: [u8; 16],
        expires_at_ms: u64,
        encoded: Vec<u8>,
    },
    ClaimQuote {
        quote: QuoteId,
        payment: PaymentId,
    },
    AppendFeed {
        entries: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    },
    SaveCheckpoint {
        key: Vec<u8>,
        line: String,
    },
}

struct SaveOperation {
    id: [u8; 16],
    participant: String,
    pending: bool,
    payment: Vec<u8>,
}

impl SaveOperation {
    fn of(payment: &wire::Payment) -> Result<Self, StorageError> {
        Ok(Self {
            id: id_bytes(payment_id_of(payment)?),
            participant: payment.participant_id.clone(),
            pending: is_pending(payment),
            payment: payment.encode_to_vec(),
        })
    }
}

/// The payment tables of one write transaction.
struct PaymentTables<'t> {
    payments: Table<'t, &'static [u8], &'static [u8]>,
    by_participant: Table<'t, &'static [u8], ()>,
    pending: Table<'t, &'static [u8], ()>,
}

impl PaymentTables<'_> {
    fn save(&mut self, save: &SaveOperation) -> Result<(), redb::StorageError> {
        let SaveOperation { id, participant, pending, payment } = save;
        self.payments.insert(&id[..], &payment[..])?;
        let mut index = participant_prefix(participant);
        index.extend_from_slice(id);
        self.by_participant.insert(&index[..], ())?;
        if *pending {
            self.pending.insert(&id[..], ())?;
        } else {
            self.pending.remove(&id[..])?;
        }
        Ok(())
    }
}

enum Reply {
    Done,
    Decided(Decision),
    Claimed(Option<KeyClaim>),
    QuoteClaimed(Option<PaymentId>),
    FeedAppended(Vec<FeedRecord>),
}

struct WriteRequest {
    operation: Operation,
    reply: oneshot::Sender<Result<Reply, StorageError>>,
}

/// The embedded backend of all five stores.
#[derive(Clone)]
pub struct EmbeddedStore {
    database: Arc<Database>,
    writer: mpsc::Sender<WriteRequest>,
    /// What [`Journal::take_over`] still has to hand out: `None` until its first call, which
    /// lists every unfinished entry. Only one process can open the file and the router takes over
    /// (recovery) before its API opens, so those are the entries earlier runs left; every entry
    /// begun after that is this router's own.
    orphans: Arc<std::sync::Mutex<Option<Vec<Vec<u8>>>>>,
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

impl From<redb::StorageError> for StorageError {
    fn from(error: redb::StorageError) -> Self {
        unavailable(error)
    }
}

fn id_bytes(payment: PaymentId) -> [u8; 16] {
    *payment.as_uuid().as_bytes()
}

fn quote_bytes(quote: QuoteId) -> [u8; 16] {
    *quote.as_uuid().as_bytes()
}

/// The expiry index's key: expiry first, so the index is in deletion order.
fn expiry_key(expires_at_ms: u64, id: &[u8; 16]) -> [u8; EXPIRY_BYTES + 16] {
    let mut key = [0; EXPIRY_BYTES + 16];
    key[..EXPIRY_BYTES].copy_from_slice(&expires_at_ms.to_be_bytes());
    key[EXPIRY_BYTES..].copy_from_slice(id);
    key
}

/// The expiry in front of a stored quote (or an expiry index key).
fn expiry_of(bytes: &[u8]) -> Option<u64> {
    bytes.get(..EXPIRY_BYTES).and_then(|prefix| prefix.try_into().ok()).map(u64::from_be_bytes)
}

fn participant_prefix(participant: &str) -> Vec<u8> {
    let mut key = participant.as_bytes().to_vec();
    key.push(0);
    key
}

fn payment_id_from_bytes(bytes: &[u8]) -> Result<PaymentId, StorageError> {
    let uuid = uuid::Uuid::from_slice(bytes).map_err(|error| StorageError::Corrupt(format!("payment id: {error}")))?;
    uuid.to_string().parse().map_err(|reason| StorageError::Corrupt(format!("payment id {uuid} {reason}")))
}

fn decode_payment(bytes: &[u8]) -> Result<wire::Payment, StorageError> {
    wire::Payment::decode(bytes).map_err(|error| StorageError::Corrupt(format!("payment: {error}")))
}

/// Bytes of a stored feed head: the last sequence (u64 big-endian) and its hash.
const FEED_HEAD_BYTES: usize = 8 + 32;

/// The prefix of a jurisdiction's rows in `feed_records` and `feed_checkpoints`. Jurisdictions
/// never contain a zero byte, so no jurisdiction's prefix is a prefix of another's rows.
fn feed_prefix(jurisdiction: &Jurisdiction) -> Vec<u8> {
    let mut key = jurisdiction.as_str().as_bytes().to_vec();
    key.push(0);
    key
}

/// The key of a record (and the start of a checkpoint's key): the prefix, then the sequence.
fn feed_key(jurisdiction: &Jurisdiction, sequence: u64) -> Vec<u8> {
    let mut key = feed_prefix(jurisdiction);
    key.extend_from_slice(&sequence.to_be_bytes());
    key
}

fn checkpoint_key(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut key = feed_key(&checkpoint.jurisdiction, checkpoint.sequence);
    key.extend_from_slice(checkpoint.key_id.to_string().as_bytes());
    key
}

fn encode_feed_head(sequence: u64, hash: &FeedHash) -> [u8; FEED_HEAD_BYTES] {
    let mut value = [0; FEED_HEAD_BYTES];
    value[..8].copy_from_slice(&sequence.to_be_bytes());
    value[8..].copy_from_slice(hash.as_bytes());
    value
}

fn decode_feed_head(jurisdiction: &str, value: &[u8]) -> Result<(u64, FeedHash), StorageError> {
    let corrupt = || StorageError::Corrupt(format!("feed head of {jurisdiction}: {} bytes", value.len()));
    let sequence =
        value.get(..8).and_then(|bytes| bytes.try_into().ok()).map(u64::from_be_bytes).ok_or_else(corrupt)?;
    let hash: [u8; 32] = value.get(8..).and_then(|bytes| bytes.try_into().ok()).ok_or_else(corrupt)?;
    Ok((sequence, FeedHash::from_bytes(hash)))
}

fn stored_text<'v>(what: &dyn std::fmt::Display, bytes: &'v [u8]) -> Result<&'v str, StorageError> {
    std::str::from_utf8(bytes).map_err(|error| StorageError::Corrupt(format!("{what}: {error}")))
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `directory`, and starts its writer thread.
    pub fn open(directory: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(directory)
            .map_err(|error| unavailable(format!("cannot create {}: {error}", directory.display())))?;
        let path = directory.join("corridor.redb");
        let database = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
            .map_err(|error| unavailable(format!("{}: {error}", path.display())))?;
        // Create every table up front so readers never meet a missing one.
        let transaction = database.begin_write().map_err(unavailable)?;
        {
            transaction.open_table(JOURNAL).map_err(unavailable)?;
            transaction.open_table(JOURNAL_UNFINISHED).map_err(unavailable)?;
            transaction.open_table(PAYMENTS).map_err(unavailable)?;
            transaction.open_table(PAYMENTS_BY_PARTICIPANT).map_err(unavailable)?;
            transaction.open_table(PAYMENTS_PENDING).map_err(unavailable)?;
            transaction.open_table(KEYS).map_err(unavailable)?;
            transaction.open_table(QUOTES).map_err(unavailable)?;
            transaction.open_table(QUOTE_CLAIMS).map_err(unavailable)?;
            transaction.open_table(QUOTES_BY_EXPIRY).map_err(unavailable)?;
            transaction.open_table(FEED_RECORDS).map_err(unavailable)?;
            transaction.open_table(FEED_HEADS).map_err(unavailable)?;
            transaction.open_table(FEED_CHECKPOINTS).map_err(unavailable)?;
        }
        transaction.commit().map_err(unavailable)?;
        let orphans = Arc::new(std::sync::Mutex::new(None));
        let database = Arc::new(database);
        let (writer, requests) = mpsc::channel(WRITE_QUEUE_MAX);
        let writer_database = Arc::clone(&database);
        std::thread::Builder::new()
            .name("corridor-store-writer".into())
            .spawn(move || write_loop(&writer_database, requests))
            .map_err(|error| unavailable(format!("cannot start the store writer: {error}")))?;
        Ok(Self { database, writer, orphans })
    }

    async fn write(&self, operation: Operation) -> Result<Reply, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteRequest { operation, reply })
            .await
            .map_err(|_| unavailable("the store writer has stopped"))?;
        answer.await.map_err(|_| unavailable("the store writer stopped before answering"))?
    }

    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let database = Arc::clone(&self.database);
        tokio::task::spawn_blocking(move || read(&database)).await.map_err(unavailable)?
    }
}

/// The writer thread: takes a first request, then whatever else is queued, applies all of them in
/// one transaction, commits (fsync), then answers each.
fn write_loop(database: &Database, mut requests: mpsc::Receiver<WriteRequest>) {
    while let Some(first) = requests.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH_MAX {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let metrics = crate::metrics::metrics();
        metrics.queue("embedded_store_writes", requests.len(), WRITE_QUEUE_MAX);
        let started = std::time::Instant::now();
        let outcome = apply_batch(database, &batch, unix_ms(SystemTime::now()));
        metrics.journal_flush("embedded", batch.len(), started.elapsed());
        match outcome {
            Ok(replies) => {
                for (request, reply) in batch.into_iter().zip(replies) {
                    let _caller_gone = request.reply.send(reply);
                }
            }
            Err(error) => {
                for request in batch {
                    let _caller_gone = request.reply.send(Err(StorageError::Unavailable(error.clone())));
                }
            }
        }
    }
}

/// The quote tables of one write transaction.
struct QuoteTables<'t> {
    quotes: Table<'t, &'static [u8], &'static [u8]>,
    claims: Table<'t, &'static [u8], &'static [u8]>,
    by_expiry: Table<'t, &'static [u8], ()>,
}

impl QuoteTables<'_> {
    /// Deletes up to [`QUOTE_DELETIONS_PER_WRITE_MAX`] quotes, with their claims, whose retention
    /// ended before `now_ms`, oldest first; returns how many index entries it removed.
    fn forget_expired(&mut self, now_ms: u64) -> Result<usize, redb::StorageError> {
        let retention_ms = u64::try_from(QUOTE_RETENTION.as_millis()).unwrap_or(u64::MAX);
        let Some(expired_before_ms) = now_ms.checked_sub(retention_ms) else { return Ok(0) };
        let end = expiry_key(expired_before_ms, &[0; 16]);
        let mut due = Vec::new();
        for row in self.by_expiry.range(..&end[..])? {
            let (key, _) = row?;
            due.push(key.value().to_vec());
            if due.len() == QUOTE_DELETIONS_PER_WRITE_MAX {
                break;
            }
        }
        for key in &due {
            self.by_expiry.remove(&key[..])?;
            // An index key of another length is not ours to interpret: dropping it from the index is all.
            if let Some(id) = key.get(EXPIRY_BYTES..).filter(|id| id.len() == 16) {
                self.quotes.remove(id)?;
                self.claims.remove(id)?;
            }
        }
        Ok(due.len())
    }

    fn put(&mut self, id: &[u8; 16], expires_at_ms: u64, encoded: &[u8]) -> Result<(), redb::StorageError> {
        let mut value = Vec::with_capacity(EXPIRY_BYTES + encoded.len());
        value.extend_from_slice(&expires_at_ms.to_be_bytes());
        value.extend_from_slice(encoded);
        let replaced = self.quotes.insert(&id[..], &value[..])?.and_then(|old| expiry_of(old.value()));
        if let Some(replaced_expires_at_ms) = replaced {
            self.by_expiry.remove(&expiry_key(replaced_expires_at_ms, id)[..])?;
        }
        self.by_expiry.insert(&expiry_key(expires_at_ms, id)[..], ())?;
        Ok(())
    }

    /// First claimer wins; a quote that is not stored is an error and records nothing.
    fn claim(&mut self, quote: QuoteId, payment: PaymentId) -> Result<Option<PaymentId>, StorageError> {
        let id = quote_bytes(quote);
        if self.quotes.get(&id[..])?.is_none() {
            return Err(quote_not_stored(quote));
        }
        let existing = self.claims.get(&id[..])?.map(|holder| holder.value().to_vec());
        match existing {
            Some(holder) => payment_id_from_bytes(&holder).map(Some),
            None => {
                self.claims.insert(&id[..], &id_bytes(payment)[..])?;
                Ok(None)
            }
        }
    }
}

/// The feed tables of one write transaction.
struct FeedTables<'t> {
    records: Table<'t, &'static [u8], &'static [u8]>,
    heads: Table<'t, &'static [u8], &'static [u8]>,
    checkpoints: Table<'t, &'static [u8], &'static [u8]>,
}

/// Why a feed write failed: the entries themselves (only this operation fails), or the file (the
/// whole batch fails, so no operation is left half written).
enum FeedWriteError {
    Operation(StorageError),
    Batch(String),
}

impl FeedTables<'_> {
    /// Chains `entries` from the heads this transaction sees, then writes the records and the new
    /// heads. A record already stored under a new record's key would be a fork: the append is
    /// refused before anything is written.
    fn append(
        &mut self,
        entries: &[(Jurisdiction, FeedEntry)],
        recorded_at_ms: u64,
    ) -> Result<Vec<FeedRecord>, FeedWriteError> {
        let batch = |error: redb::StorageError| FeedWriteError::Batch(format!("appending to the feed: {error}"));
        let mut chains = BTreeMap::new();
        for (jurisdiction, _) in entries {
            if chains.contains_key(jurisdiction) {
                continue;
            }
            let head = self.heads.get(jurisdiction.as_str().as_bytes()).map_err(batch)?;
            let head = head.map(|value| decode_feed_head(jurisdiction.as_str(), value.value())).transpose();
            let chain =
                head.and_then(|head| resume_feed_chain(jurisdiction, head)).map_err(FeedWriteError::Operation)?;
            chains.insert(jurisdiction.clone(), chain);
        }
        let chained =
            chain_feed_entries(&mut chains, entries.to_vec(), recorded_at_ms).map_err(FeedWriteError::Operation)?;
        let keys: Vec<Vec<u8>> =
            chained.iter().map(|chained| feed_key(&chained.record.jurisdiction, chained.record.sequence)).collect();
        for (key, chained) in keys.iter().zip(&chained) {
            if self.records.get(&key[..]).map_err(batch)?.is_some() {
                return Err(FeedWriteError::Operation(StorageError::Corrupt(format!(
                    "the feed of {} already holds sequence {}: its head is behind its records",
                    chained.record.jurisdiction, chained.record.sequence
                ))));
            }
        }
        for (key, chained) in keys.iter().zip(&chained) {
            self.records.insert(&key[..], chained.line.as_bytes()).map_err(batch)?;
        }
        for (jurisdiction, chain) in &chains {
            let (sequence, hash) = chain.head();
            if sequence > 0 {
                self.heads
                    .insert(jurisdiction.as_str().as_bytes(), &encode_feed_head(sequence, &hash)[..])
                    .map_err(batch)?;
            }
        }
        Ok(chained.into_iter().map(|chained| chained.record).collect())
    }

    /// Stores a checkpoint unless one is stored under its key already (the first is kept).
    fn save_checkpoint(&mut self, key: &[u8], line: &str) -> Result<(), redb::StorageError> {
        if self.checkpoints.get(key)?.is_none() {
            self.checkpoints.insert(key, line.as_bytes())?;
        }
        Ok(())
    }
}

/// Applies a batch in one write transaction, after deleting quotes whose retention ended before
/// `now_ms`. An error of one operation fails only that operation; an error of the transaction
/// itself (or of the deletions) fails the batch.
fn apply_batch(
    database: &Database,
    batch: &[WriteRequest],
    now_ms: u64,
) -> Result<Vec<Result<Reply, StorageError>>, String> {
    let transaction = database.begin_write().map_err(|error| error.to_string())?;
    let mut replies = Vec::with_capacity(batch.len());
    {
        let mut quote_tables = QuoteTables {
            quotes: transaction.open_table(QUOTES).map_err(|error| error.to_string())?,
            claims: transaction.open_table(QUOTE_CLAIMS).map_err(|error| error.to_string())?,
            by_expiry: transaction.open_table(QUOTES_BY_EXPIRY).map_err(|error| error.to_string())?,
        };
        quote_tables.forget_expired(now_ms).map_err(|error| format!("deleting expired quotes: {error}"))?;
        let mut journal = transaction.open_table(JOURNAL).map_err(|error| error.to_string())?;
        let mut unfinished = transaction.open_table(JOURNAL_UNFINISHED).map_err(|error| error.to_string())?;
        let mut payments = PaymentTables {
            payments: transaction.open_table(PAYMENTS).map_err(|error| error.to_string())?,
            by_participant: transaction.open_table(PAYMENTS_BY_PARTICIPANT).map_err(|error| error.to_string())?,
            pending: transaction.open_table(PAYMENTS_PENDING).map_err(|error| error.to_string())?,
        };
        let mut keys = transaction.open_table(KEYS).map_err(|error| error.to_string())?;
        let mut feed = FeedTables {
            records: transaction.open_table(FEED_RECORDS).map_err(|error| error.to_string())?,
            heads: transaction.open_table(FEED_HEADS).map_err(|error| error.to_string())?,
            checkpoints: transaction.open_table(FEED_CHECKPOINTS).map_err(|error| error.to_string())?,
        };
        for request in batch {
            // Feed writes fail the batch on a file error, rather than leave an append half written.
            match &request.operation {
                Operation::AppendFeed { entries, recorded_at_ms } => {
                    match feed.append(entries, *recorded_at_ms) {
                        Ok(records) => replies.push(Ok(Reply::FeedAppended(records))),
                        Err(FeedWriteError::Operation(error)) => replies.push(Err(error)),
                        Err(FeedWriteError::Batch(error)) => return Err(error),
                    }
                    continue;
                }
                Operation::SaveWithFeed { save, entries, recorded_at_ms } => {
                    match feed.append(entries, *recorded_at_ms) {
                        Ok(_) => {
                            payments.save(save).map_err(|error| format!("saving a receipt: {error}"))?;
                            replies.push(Ok(Reply::Done));
                        }
                        Err(FeedWriteError::Operation(error)) => replies.push(Err(error)),
                        Err(FeedWriteError::Batch(error)) => return Err(error),
                    }
                    continue;
                }
                Operation::SaveCheckpoint { key, line } => {
                    feed.save_checkpoint(key, line).map_err(|error| format!("saving a checkpoint: {error}"))?;
                    replies.push(Ok(Reply::Done));
                    continue;
                }
                _ => {}
            }
            let reply: Result<Reply, StorageError> = (|| match &request.operation {
                Operation::Begin(save) => {
                    let mut value = vec![UNDECIDED, 0];
                    value.extend_from_slice(&save.payment);
                    journal.insert(&save.id[..], &value[..])?;
                    unfinished.insert(&save.id[..], ())?;
                    payments.save(save)?;
                    Ok(Reply::Done)
                }
                Operation::Decide { id, proposed } => {
                    let existing = journal.get(&id[..])?.map(|value| value.value().to_vec());
                    match existing {
                        Some(value) if value.first().copied().unwrap_or(UNDECIDED) != UNDECIDED => {
                            let code = i16::from(value[0]);
                            Ok(Reply::Decided(Decision::from_code(code).unwrap_or(Decision::Abort)))
                        }
                        Some(mut value) => {
                            value[0] = u8::try_from(proposed.to_code()).unwrap_or(2);
                            journal.insert(&id[..], &value[..])?;
                            Ok(Reply::Decided(*proposed))
                        }
                        None => {
                            let value = [u8::try_from(proposed.to_code()).unwrap_or(2), 0];
                            journal.insert(&id[..], &value[..])?;
                            Ok(Reply::Decided(*proposed))
                        }
                    }
                }
                Operation::Finish { id } => {
                    let existing = journal.get(&id[..])?.map(|value| value.value().to_vec());
                    if let Some(value) = existing {
                        let decision = value.first().copied().unwrap_or(UNDECIDED);
                        journal.insert(&id[..], &[decision, 1][..])?;
                    }
                    unfinished.remove(&id[..])?;
                    Ok(Reply::Done)
                }
                Operation::Save(save) => {
                    payments.save(save)?;
                    Ok(Reply::Done)
                }
                Operation::Claim { key, claim } => {
                    let existing = keys.get(&key[..])?.map(|value| value.value().to_vec());
                    match existing {
                        Some(bytes) => Ok(Reply::Claimed(Some(decode_claim(&bytes)?))),
                        None => {
                            keys.insert(&key[..], &encode_claim(*claim)[..])?;
                            Ok(Reply::Claimed(None))
                        }
                    }
                }
                Operation::PutQuote { id, expires_at_ms, encoded } => {
                    quote_tables.put(id, *expires_at_ms, encoded)?;
                    Ok(Reply::Done)
                }
                Operation::ClaimQuote { quote, payment } => {
                    quote_tables.claim(*quote, *payment).map(Reply::QuoteClaimed)
                }
                Operation::AppendFeed { .. } | Operation::SaveWithFeed { .. } | Operation::SaveCheckpoint { .. } => {
                    Err(StorageError::Corrupt("a feed write reached the payment writes".into()))
                }
            })();
            replies.push(reply);
        }
    }
    transaction.commit().map_err(|error| error.to_string())?;
    Ok(replies)
}

/// A stored journal value (decision code, reserved byte, payment) as an entry; `None` for a bare
/// decision, which has nothing of ours to complete.
fn journal_entry(value: &[u8]) -> Result<Option<JournalEntry>, StorageError> {
    if value.len() <= 2 {
        return Ok(None);
    }
    let decision = Decision::from_code(i16::from(value[0]));
    Ok(Some(JournalEntry { payment: decode_payment(&value[2..])?, decision }))
}

#[async_trait::async_trait]
impl Journal for EmbeddedStore {
    async fn begin(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        self.write(Operation::Begin(SaveOperation::of(payment)?)).await.map(|_| ())
    }

    async fn decide(&self, payment: PaymentId, proposed: Decision) -> Result<Decision, StorageError> {
        match self.write(Operation::Decide { id: id_bytes(payment), proposed }).await? {
            Reply::Decided(decision) => Ok(decision),
            _ => Err(StorageError::Corrupt("the writer answered a decision with something else".into())),
        }
    }

    async fn finish(&self, payment: PaymentId) -> Result<(), StorageError> {
        self.write(Operation::Finish { id: id_bytes(payment) }).await.map(|_| ())
    }

    async fn unfinished(&self) -> Result<Vec<JournalEntry>, StorageError> {
        self.read(|database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let unfinished = transaction.open_table(JOURNAL_UNFINISHED).map_err(unavailable)?;
            let journal = transaction.open_table(JOURNAL).map_err(unavailable)?;
            let mut entries = Vec::new();
            for row in unfinished.iter().map_err(unavailable)? {
                let (id, _) = row.map_err(unavailable)?;
                let id = id.value().to_vec();
                let Some(value) = journal.get(&id[..]).map_err(unavailable)? else { continue };
                entries.extend(journal_entry(value.value())?);
            }
            Ok(entries)
        })
        .await
    }

    async fn contains(&self, payment: PaymentId) -> Result<bool, StorageError> {
        let id = id_bytes(payment);
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let journal = transaction.open_table(JOURNAL).map_err(unavailable)?;
            Ok(journal.get(&id[..]).map_err(unavailable)?.is_some())
        })
        .await
    }

    async fn take_over(&self, limit: usize) -> Result<Vec<JournalEntry>, StorageError> {
        let listed = self.orphans.lock().map_err(|_| unavailable("the orphan list's lock is poisoned"))?.is_some();
        if !listed {
            let ids = self
                .read(|database| {
                    let transaction = database.begin_read().map_err(unavailable)?;
                    let unfinished = transaction.open_table(JOURNAL_UNFINISHED).map_err(unavailable)?;
                    let mut ids = Vec::new();
                    for row in unfinished.iter().map_err(unavailable)? {
                        ids.push(row.map_err(unavailable)?.0.value().to_vec());
                    }
                    Ok(ids)
                })
                .await?;
            let mut orphans = self.orphans.lock().map_err(|_| unavailable("the orphan list's lock is poisoned"))?;
            orphans.get_or_insert(ids);
        }
        let taken: Vec<Vec<u8>> = {
            let mut orphans = self.orphans.lock().map_err(|_| unavailable("the orphan list's lock is poisoned"))?;
            let orphans = orphans.get_or_insert_with(Vec::new);
            let count = limit.min(orphans.len());
            orphans.drain(..count).collect()
        };
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let unfinished = transaction.open_table(JOURNAL_UNFINISHED).map_err(unavailable)?;
            let journal = transaction.open_table(JOURNAL).map_err(unavailable)?;
            let mut entries = Vec::with_capacity(taken.len());
            for id in taken {
                if unfinished.get(&id[..]).map_err(unavailable)?.is_none() {
                    continue; // finished since the file was opened
                }
                let Some(value) = journal.get(&id[..]).map_err(unavailable)? else { continue };
                entries.extend(journal_entry(value.value())?);
            }
            Ok(entries)
        })
        .await
    }

    async fn probe(&self) -> Result<(), StorageError> {
        self.read(|database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            transaction.open_table(JOURNAL_UNFINISHED).map_err(unavailable)?;
            Ok(())
        })
        .await?;
        // A writer thread that stopped (its file failed) leaves reads working and writes not.
        if self.writer.is_closed() {
            return Err(unavailable("the store writer has stopped"));
        }
        Ok(())
    }

    async fn leads(&self) -> Result<bool, StorageError> {
        Ok(true)
    }

    /// Nothing to give up: no other process can open the file while this one has it.
    async fn release(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl PaymentStore for EmbeddedStore {
    async fn save(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        self.write(Operation::Save(SaveOperation::of(payment)?)).await.map(|_| ())
    }

    async fn save_with_feed(
        &self,
        payment: &wire::Payment,
        feed: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    ) -> Result<(), StorageError> {
        let save = SaveOperation::of(payment)?;
        self.write(Operation::SaveWithFeed { save, entries: feed, recorded_at_ms }).await.map(|_| ())
    }

    async fn get(&self, payment: PaymentId) -> Result<Option<wire::Payment>, StorageError> {
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let payments = transaction.open_table(PAYMENTS).map_err(unavailable)?;
            let found = payments.get(&id_bytes(payment)[..]).map_err(unavailable)?;
            found.map(|bytes| decode_payment(bytes.value())).transpose()
        })
        .await
    }

    async fn list(
        &self,
        participant: Option<&ParticipantId>,
        after: Option<PaymentId>,
        limit: usize,
    ) -> Result<(Vec<wire::Payment>, Option<PaymentId>), StorageError> {
        let participant = participant.map(|p| p.as_str().to_owned());
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let payments = transaction.open_table(PAYMENTS).map_err(unavailable)?;
            let mut ids: Vec<Vec<u8>> = Vec::new();
            // One more than asked, to know whether another page follows.
            let wanted = limit.saturating_add(1);
            match participant {
                None => {
                    let start = after.map(|id| id_bytes(id).to_vec()).unwrap_or_default();
                    for row in payments.range(&start[..]..).map_err(unavailable)? {
                        let (id, _) = row.map_err(unavailable)?;
                        let id = id.value().to_vec();
                        if after.is_some() && id == start {
                            continue;
                        }
                        ids.push(id);
                        if ids.len() == wanted {
                            break;
                        }
                    }
                }
                Some(participant) => {
                    let index = transaction.open_table(PAYMENTS_BY_PARTICIPANT).map_err(unavailable)?;
                    let prefix = participant_prefix(&participant);
                    let mut start = prefix.clone();
                    if let Some(after) = after {
                        start.extend_from_slice(&id_bytes(after));
                    }
                    for row in index.range(&start[..]..).map_err(unavailable)? {
                        let (key, _) = row.map_err(unavailable)?;
                        let key = key.value();
                        if !key.starts_with(&prefix) {
                            break;
                        }
                        if key == &start[..] && after.is_some() {
                            continue;
                        }
                        ids.push(key[prefix.len()..].to_vec());
                        if ids.len() == wanted {
                            break;
                        }
                    }
                }
            }
            let more = ids.len() > limit;
            ids.truncate(limit);
            let mut page = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(bytes) = payments.get(&id[..]).map_err(unavailable)? {
                    page.push(decode_payment(bytes.value())?);
                }
            }
            let next = if more { ids.last().map(|id| payment_id_from_bytes(id)).transpose()? } else { None };
            Ok((page, next))
        })
        .await
    }

    async fn pending(&self) -> Result<Vec<wire::Payment>, StorageError> {
        self.read(|database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let pending = transaction.open_table(PAYMENTS_PENDING).map_err(unavailable)?;
            let payments = transaction.open_table(PAYMENTS).map_err(unavailable)?;
            let mut found = Vec::new();
            for row in pending.iter().map_err(unavailable)? {
                let (id, _) = row.map_err(unavailable)?;
                if let Some(bytes) = payments.get(id.value()).map_err(unavailable)? {
                    found.push(decode_payment(bytes.value())?);
                }
            }
            Ok(found)
        })
        .await
    }
}

#[async_trait::async_trait]
impl KeyStore for EmbeddedStore {
    async fn claim(
        &self,
        participant: &ParticipantId,
        key: &IdempotencyKey,
        claim: KeyClaim,
    ) -> Result<Option<KeyClaim>, StorageError> {
        let mut store_key = participant_prefix(participant.as_str());
        store_key.extend_from_slice(key.as_str().as_bytes());
        match self.write(Operation::Claim { key: store_key, claim }).await? {
            Reply::Claimed(existing) => Ok(existing),
            _ => Err(StorageError::Corrupt("the writer answered a claim with something else".into())),
        }
    }

    /// The keys are in the journal's file: [`Journal::probe`] answers for both.
    async fn probe(&self) -> Result<(), StorageError> {
        Journal::probe(self).await
    }
}

#[async_trait::async_trait]
impl QuoteStore for EmbeddedStore {
    async fn put(&self, quote: QuoteId, encoded: &[u8], expires_at: SystemTime) -> Result<(), StorageError> {
        let operation = Operation::PutQuote {
            id: quote_bytes(quote),
            expires_at_ms: unix_ms(expires_at),
            encoded: encoded.to_vec(),
        };
        self.write(operation).await.map(|_| ())
    }

    async fn get(&self, quote: QuoteId) -> Result<Option<Vec<u8>>, StorageError> {
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let quotes = transaction.open_table(QUOTES).map_err(unavailable)?;
            let Some(value) = quotes.get(&quote_bytes(quote)[..]).map_err(unavailable)? else { return Ok(None) };
            let encoded = value
                .value()
                .get(EXPIRY_BYTES..)
                .ok_or_else(|| StorageError::Corrupt(format!("quote {quote}: shorter than its expiry")))?;
            Ok(Some(encoded.to_vec()))
        })
        .await
    }

    async fn claim(&self, quote: QuoteId, payment: PaymentId) -> Result<Option<PaymentId>, StorageError> {
        match self.write(Operation::ClaimQuote { quote, payment }).await? {
            Reply::QuoteClaimed(existing) => Ok(existing),
            _ => Err(StorageError::Corrupt("the writer answered a quote claim with something else".into())),
        }
    }
}

#[async_trait::async_trait]
impl FeedStore for EmbeddedStore {
    async fn append(
        &self,
        entries: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    ) -> Result<Vec<FeedRecord>, StorageError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(Operation::AppendFeed { entries, recorded_at_ms }).await? {
            Reply::FeedAppended(records) => Ok(records),
            _ => Err(StorageError::Corrupt("the writer answered a feed append with something else".into())),
        }
    }

    async fn records(
        &self,
        jurisdiction: &Jurisdiction,
        from_sequence: u64,
        limit: usize,
    ) -> Result<Vec<FeedRecord>, StorageError> {
        let jurisdiction = jurisdiction.clone();
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let table = transaction.open_table(FEED_RECORDS).map_err(unavailable)?;
            let start = feed_key(&jurisdiction, from_sequence);
            let end = feed_key(&jurisdiction, u64::MAX);
            let mut records = Vec::new();
            for row in table.range(&start[..]..=&end[..]).map_err(unavailable)? {
                if records.len() >= limit {
                    break;
                }
                let (key, line) = row.map_err(unavailable)?;
                let sequence = key
                    .value()
                    .get(key.value().len().saturating_sub(8)..)
                    .and_then(|bytes| bytes.try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StorageError::Corrupt(format!("feed record key of {jurisdiction}")))?;
                let what = format!("feed record {jurisdiction}/{sequence}");
                records.push(decode_feed_record(stored_text(&what, line.value())?, &jurisdiction, sequence)?);
            }
            Ok(records)
        })
        .await
    }

    async fn heads(&self) -> Result<Vec<(Jurisdiction, u64, FeedHash)>, StorageError> {
        self.read(|database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let table = transaction.open_table(FEED_HEADS).map_err(unavailable)?;
            let mut heads = Vec::new();
            for row in table.iter().map_err(unavailable)? {
                let (key, value) = row.map_err(unavailable)?;
                let name = stored_text(&"feed head key", key.value())?;
                let jurisdiction = Jurisdiction::new(name)
                    .map_err(|error| StorageError::Corrupt(format!("feed head jurisdiction: {error}")))?;
                let (sequence, hash) = decode_feed_head(name, value.value())?;
                heads.push((jurisdiction, sequence, hash));
            }
            Ok(heads)
        })
        .await
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        let operation =
            Operation::SaveCheckpoint { key: checkpoint_key(checkpoint), line: encode_checkpoint(checkpoint)? };
        self.write(operation).await.map(|_| ())
    }

    async fn checkpoints(&self, jurisdiction: &Jurisdiction) -> Result<Vec<Checkpoint>, StorageError> {
        let jurisdiction = jurisdiction.clone();
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let table = transaction.open_table(FEED_CHECKPOINTS).map_err(unavailable)?;
            let prefix = feed_prefix(&jurisdiction);
            let mut checkpoints = Vec::new();
            for row in table.range(&prefix[..]..).map_err(unavailable)? {
                let (key, line) = row.map_err(unavailable)?;
                if !key.value().starts_with(&prefix) {
                    break;
                }
                let what = format!("feed checkpoint of {jurisdiction}");
                checkpoints.push(decode_checkpoint(stored_text(&what, line.value())?, &jurisdiction)?);
            }
            Ok(checkpoints)
        })
        .await
    }

    async fn latest_checkpoint(&self, jurisdiction: &Jurisdiction) -> Result<Option<Checkpoint>, StorageError> {
        let jurisdiction = jurisdiction.clone();
        self.read(move |database| {
            let transaction = database.begin_read().map_err(unavailable)?;
            let table = transaction.open_table(FEED_CHECKPOINTS).map_err(unavailable)?;
            let start = feed_prefix(&jurisdiction);
            // Every key of the jurisdiction is its prefix, 8 sequence bytes and a key id: all
            // sort before the prefix followed by 9 bytes of 0xff.
            let mut end = start.clone();
            end.extend_from_slice(&[0xff; 9]);
            let Some(row) = table.range(&start[..]..&end[..]).map_err(unavailable)?.next_back() else {
                return Ok(None);
            };
            let (_, line) = row.map_err(unavailable)?;
            let what = format!("feed checkpoint of {jurisdiction}");
            decode_checkpoint(stored_text(&what, line.value())?, &jurisdiction).map(Some)
        })
        .await
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod feed_tests {
    use std::sync::Arc;

    use corridor_compliance::feed::FeedKind;
    use corridor_schemas::Jurisdiction;

    use super::{EmbeddedStore, FEED_HEADS, encode_feed_head};
    use crate::storage::{FeedStore, StorageError, contract_tests};

    fn temp_directory(name: &str) -> std::path::PathBuf {
        let directory =
            std::env::temp_dir().join(format!("corridor-store-{name}-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    /// Opens the store in `directory`, waiting for an earlier store's writer thread to let go of it.
    async fn reopen(directory: &std::path::Path) -> Arc<dyn FeedStore> {
        for _ in 0..100 {
            match EmbeddedStore::open(directory) {
                Ok(store) => return Arc::new(store),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        panic!("the store did not reopen");
    }

    #[tokio::test]
    async fn feed_meets_the_contract_across_reopening() {
        let directory = temp_directory("feed");
        let store: Arc<dyn FeedStore> = Arc::new(EmbeddedStore::open(&directory).unwrap());
        let reopen_directory = directory.clone();
        contract_tests::feed_contract(store, async move { reopen(&reopen_directory).await }).await;
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn concurrent_feed_appends_chain_without_forks_or_gaps() {
        let directory = temp_directory("feed-race");
        let store: Arc<dyn FeedStore> = Arc::new(EmbeddedStore::open(&directory).unwrap());
        let signer = contract_tests::feed_race_contract(vec![Arc::clone(&store)]).await;
        drop(store);
        let reopened = reopen(&directory).await;
        contract_tests::feed_verifies(&reopened, &signer).await;
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn checkpoints_meet_the_contract() {
        let directory = temp_directory("feed-checkpoints");
        contract_tests::checkpoint_contract(Arc::new(EmbeddedStore::open(&directory).unwrap())).await;
        std::fs::remove_dir_all(directory).unwrap();
    }

    /// A head that fell behind its records (as if the file were damaged) must not fork the chain:
    /// the append is refused, nothing is overwritten, and other writes go on.
    #[tokio::test]
    async fn a_stale_head_is_refused_not_forked() {
        let directory = temp_directory("feed-stale");
        let store = EmbeddedStore::open(&directory).unwrap();
        let feed: &dyn FeedStore = &store;
        let hk = Jurisdiction::new("HK").unwrap();
        let entry = || contract_tests::feed_entry(FeedKind::Screening, "stale");
        let first = feed.append(vec![(hk.clone(), entry()), (hk.clone(), entry())], 1).await.unwrap();
        let transaction = store.database.begin_write().unwrap();
        transaction
            .open_table(FEED_HEADS)
            .unwrap()
            .insert(&b"HK"[..], &encode_feed_head(1, &first[0].hash)[..])
            .unwrap();
        transaction.commit().unwrap();
        let refused = feed.append(vec![(hk.clone(), entry())], 2).await.unwrap_err();
        assert!(matches!(refused, StorageError::Corrupt(_)), "{refused}");
        assert_eq!(feed.records(&hk, 1, 10).await.unwrap(), first, "a stale head overwrote a record");
        let th = Jurisdiction::new("TH").unwrap();
        assert_eq!(feed.append(vec![(th, entry())], 3).await.unwrap()[0].sequence, 1);
        drop(store);
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn a_refused_entry_appends_nothing() {
        let directory = temp_directory("feed-refused");
        contract_tests::feed_refusal_contract(Arc::new(EmbeddedStore::open(&directory).unwrap())).await;
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn beginning_a_payment_stores_its_pending_receipt() {
        let directory = temp_directory("begin-receipt");
        contract_tests::begin_saves_the_pending_receipt(Arc::new(EmbeddedStore::open(&directory).unwrap())).await;
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn a_receipt_is_saved_with_its_feed_records_or_not_at_all() {
        let directory = temp_directory("save-with-feed");
        contract_tests::save_with_feed_contract(Arc::new(EmbeddedStore::open(&directory).unwrap())).await;
        std::fs::remove_dir_all(directory).unwrap();
    }
}
