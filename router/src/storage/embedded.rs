//! The embedded store: journal, receipts, idempotency keys and quote locks in one redb file on
//! local disk.
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
//!   `quote_claims`: quote id → payment id; `quotes_by_expiry`: expiry ‖ quote id → ().
//!
//! Quotes are the only thing deleted: every write transaction first deletes up to
//! [`QUOTE_DELETIONS_PER_WRITE_MAX`] quotes (with their claims) whose retention has ended, oldest
//! first, using the wall clock of the writer thread. The bound keeps one write's cost small; a
//! backlog (after a long stop) drains over the following writes. Nothing else is ever deleted.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{IdempotencyKey, ParticipantId, PaymentId, QuoteId};
use prost::Message;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use super::{
    Decision, Journal, JournalEntry, KeyClaim, KeyStore, PaymentStore, QUOTE_RETENTION, QuoteStore, StorageError,
    decode_claim, encode_claim, is_pending, payment_id_of, quote_not_stored, unix_ms,
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
    Begin { id: [u8; 16], payment: Vec<u8> },
    Decide { id: [u8; 16], proposed: Decision },
    Finish { id: [u8; 16] },
    Save { id: [u8; 16], participant: String, pending: bool, payment: Vec<u8> },
    Claim { key: Vec<u8>, claim: KeyClaim },
    PutQuote { id: [u8; 16], expires_at_ms: u64, encoded: Vec<u8> },
    ClaimQuote { quote: QuoteId, payment: PaymentId },
}

enum Reply {
    Done,
    Decided(Decision),
    Claimed(Option<KeyClaim>),
    QuoteClaimed(Option<PaymentId>),
}

struct WriteRequest {
    operation: Operation,
    reply: oneshot::Sender<Result<Reply, StorageError>>,
}

/// The embedded backend of all four stores.
#[derive(Clone)]
pub struct EmbeddedStore {
    database: Arc<Database>,
    writer: mpsc::Sender<WriteRequest>,
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

impl EmbeddedStore {
    /// Opens (or creates) the store in `directory`, and starts its writer thread.
    pub fn open(directory: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(directory)
            .map_err(|error| unavailable(format!("cannot create {}: {error}", directory.display())))?;
        let path = directory.join("corridor.redb");
        let database = Database::create(&path).map_err(|error| unavailable(format!("{}: {error}", path.display())))?;
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
        }
        transaction.commit().map_err(unavailable)?;
        let database = Arc::new(database);
        let (writer, requests) = mpsc::channel(WRITE_QUEUE_MAX);
        let writer_database = Arc::clone(&database);
        std::thread::Builder::new()
            .name("corridor-store-writer".into())
            .spawn(move || write_loop(&writer_database, requests))
            .map_err(|error| unavailable(format!("cannot start the store writer: {error}")))?;
        Ok(Self { database, writer })
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
        let outcome = apply_batch(database, &batch, unix_ms(SystemTime::now()));
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
        let mut payments = transaction.open_table(PAYMENTS).map_err(|error| error.to_string())?;
        let mut by_participant = transaction.open_table(PAYMENTS_BY_PARTICIPANT).map_err(|error| error.to_string())?;
        let mut pending = transaction.open_table(PAYMENTS_PENDING).map_err(|error| error.to_string())?;
        let mut keys = transaction.open_table(KEYS).map_err(|error| error.to_string())?;
        for request in batch {
            let reply: Result<Reply, StorageError> = (|| match &request.operation {
                Operation::Begin { id, payment } => {
                    let mut value = vec![UNDECIDED, 0];
                    value.extend_from_slice(payment);
                    journal.insert(&id[..], &value[..])?;
                    unfinished.insert(&id[..], ())?;
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
                Operation::Save { id, participant, pending: is_pending, payment } => {
                    payments.insert(&id[..], &payment[..])?;
                    let mut index = participant_prefix(participant);
                    index.extend_from_slice(id);
                    by_participant.insert(&index[..], ())?;
                    if *is_pending {
                        pending.insert(&id[..], ())?;
                    } else {
                        pending.remove(&id[..])?;
                    }
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
            })();
            replies.push(reply);
        }
    }
    transaction.commit().map_err(|error| error.to_string())?;
    Ok(replies)
}

#[async_trait::async_trait]
impl Journal for EmbeddedStore {
    async fn begin(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let id = id_bytes(payment_id_of(payment)?);
        self.write(Operation::Begin { id, payment: payment.encode_to_vec() }).await.map(|_| ())
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
                let value = value.value();
                if value.len() <= 2 {
                    continue; // a bare decision: nothing of ours to complete
                }
                let decision = Decision::from_code(i16::from(value[0]));
                entries.push(JournalEntry { payment: decode_payment(&value[2..])?, decision });
            }
            Ok(entries)
        })
        .await
    }
}

#[async_trait::async_trait]
impl PaymentStore for EmbeddedStore {
    async fn save(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let id = id_bytes(payment_id_of(payment)?);
        let operation = Operation::Save {
            id,
            participant: payment.participant_id.clone(),
            pending: is_pending(payment),
            payment: payment.encode_to_vec(),
        };
        self.write(operation).await.map(|_| ())
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

#[cfg(test)]
mod tests;
