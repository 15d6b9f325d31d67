//! The production journal, receipts and compliance feed: PostgreSQL (or a distributed database
//! speaking its protocol), shared by every router of a network.
//!
//! The schema is created by [`PostgresStore::connect`] (idempotent migrations under an advisory
//! lock, so routers starting together do not race). Each write is its own transaction and
//! durable when it returns; PostgreSQL's own group commit batches concurrent ones.
//!
//! Tables: `corridor_journal` (payment id, the payment as prepared, decision, finished),
//! `corridor_payments` (payment id, participant, pending flag, the wire payment),
//! `corridor_feed` (jurisdiction, sequence, the record's export line), `corridor_feed_heads`
//! (jurisdiction, last sequence, its hash) and `corridor_feed_checkpoints` (jurisdiction,
//! sequence, key id, the checkpoint's export line). Feed lines are TEXT, not JSONB: JSONB would
//! reorder keys and refuses `\u0000`, which a party's name may contain; the hash covers values,
//! and the stored line is what an export prints.
//!
//! **The feed never forks**, however many routers append at once: an append is one transaction
//! that first takes a transaction-scoped advisory lock per jurisdiction it touches (in ascending
//! lock-id order, deduplicated, so two appends touching the same chains never deadlock), then
//! reads each head from `corridor_feed_heads`, chains the entries with `FeedChain`, inserts the
//! records and moves the heads. The lock is released only when the transaction ends, after its
//! commit is visible, so the next appender reads the new head. The primary key
//! `(jurisdiction, sequence)` is the last line of defence: an appender that somehow read a stale
//! head fails on it instead of forking the chain. The lock serialises appends to one
//! jurisdiction across all routers, each holding it for a few round trips and its commit.
//!
//! So each router sends its appends through one group writer: whatever appends (and receipts
//! saved with their feed records, `save_with_feed`) are waiting go into one transaction that
//! takes each lock once. An append the chain refuses fails the group, which is then retried one
//! append per transaction, so it fails alone. Statements are prepared once per pooled connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use corridor_compliance::feed::{Checkpoint, FeedEntry, FeedHash, FeedRecord};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Jurisdiction, ParticipantId, PaymentId};
use deadpool_postgres::{Config as PoolConfig, Pool, Runtime};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{
    Decision, FeedStore, Journal, JournalEntry, LEASE_RENEW_INTERVAL, LEASE_TTL, PaymentStore, StorageError,
    chain_feed_entries, decode_checkpoint, decode_feed_record, encode_checkpoint, is_pending, payment_id_of,
    resume_feed_chain,
};

/// Connections each router keeps to the database.
pub const POOL_SIZE_MAX: usize = 32;

/// An arbitrary, fixed advisory-lock id that serialises Corridor's migrations.
const MIGRATION_LOCK_ID: i64 = 0x00c0_4d1d_0001;

const MIGRATIONS: &str = "
CREATE TABLE IF NOT EXISTS corridor_journal (
    payment_id  TEXT PRIMARY KEY,
    payment     BYTEA,
    decision    SMALLINT CHECK (decision IN (1, 2)),
    finished    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS corridor_journal_unfinished ON corridor_journal (payment_id) WHERE NOT finished;
ALTER TABLE corridor_journal ADD COLUMN IF NOT EXISTS owner TEXT;
CREATE TABLE IF NOT EXISTS corridor_routers (
    instance_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS corridor_payments (
    payment_id  TEXT PRIMARY KEY,
    participant TEXT NOT NULL,
    pending     BOOLEAN NOT NULL,
    payment     BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS corridor_payments_by_participant ON corridor_payments (participant, payment_id);
CREATE INDEX IF NOT EXISTS corridor_payments_pending ON corridor_payments (payment_id) WHERE pending;
CREATE TABLE IF NOT EXISTS corridor_feed (
    jurisdiction TEXT NOT NULL,
    sequence     BIGINT NOT NULL CHECK (sequence >= 1),
    record       TEXT NOT NULL,
    PRIMARY KEY (jurisdiction, sequence)
);
CREATE TABLE IF NOT EXISTS corridor_feed_heads (
    jurisdiction TEXT PRIMARY KEY,
    sequence     BIGINT NOT NULL CHECK (sequence >= 1),
    hash         BYTEA NOT NULL CHECK (length(hash) = 32)
);
CREATE TABLE IF NOT EXISTS corridor_feed_checkpoints (
    jurisdiction TEXT NOT NULL,
    sequence     BIGINT NOT NULL CHECK (sequence >= 0),
    key_id       TEXT NOT NULL,
    checkpoint   TEXT NOT NULL,
    PRIMARY KEY (jurisdiction, sequence, key_id)
);
";

/// The advisory lock of one jurisdiction's chain: the first 8 bytes of SHA-256 of a tag and the
/// jurisdiction, so it cannot meet [`MIGRATION_LOCK_ID`] or another program's small lock ids by
/// design (only by a 2^-64 chance, which would merely serialise more than needed).
fn feed_lock_id(jurisdiction: &Jurisdiction) -> i64 {
    let hash = FeedHash::sha256(format!("corridor-feed-lock/v1\n{jurisdiction}").as_bytes());
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&hash.as_bytes()[..8]);
    i64::from_be_bytes(bytes)
}

/// A database error with the server's own message (tokio-postgres's alone says only "db error"):
/// a refused insert into the feed must say which constraint refused it.
fn database_error(error: tokio_postgres::Error) -> StorageError {
    match error.as_db_error() {
        Some(db_error) => StorageError::Unavailable(format!("{error}: {db_error}")),
        None => unavailable(error),
    }
}

/// A sequence as PostgreSQL's BIGINT.
fn sequence_column(sequence: u64) -> Result<i64, StorageError> {
    i64::try_from(sequence)
        .map_err(|_| StorageError::Refused(format!("feed sequence {sequence} is beyond PostgreSQL's BIGINT")))
}

fn sequence_of(column: i64) -> Result<u64, StorageError> {
    u64::try_from(column).map_err(|_| StorageError::Corrupt(format!("feed sequence {column} is negative")))
}

fn jurisdiction_of(column: &str) -> Result<Jurisdiction, StorageError> {
    Jurisdiction::new(column).map_err(|error| StorageError::Corrupt(format!("feed jurisdiction: {error}")))
}

fn hash_of(jurisdiction: &str, column: &[u8]) -> Result<FeedHash, StorageError> {
    let bytes: [u8; 32] = column
        .try_into()
        .map_err(|_| StorageError::Corrupt(format!("feed head of {jurisdiction}: a {}-byte hash", column.len())))?;
    Ok(FeedHash::from_bytes(bytes))
}

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    group: GroupWriter,
    /// This router's id as the owner of the journal entries it begins (a UUID v7 per process).
    instance: Arc<str>,
    /// The lease, renewed in the background while any clone of the store lives.
    lease: Arc<Lease>,
}

struct Lease {
    /// Held while renewing; `true` once released, after which it is never renewed again.
    released: tokio::sync::Mutex<bool>,
    renewal: std::sync::OnceLock<tokio::task::AbortHandle>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(renewal) = self.renewal.get() {
            renewal.abort();
        }
    }
}

/// Leases lapsed longer ago than this are deleted (their entries were taken over long since).
const LEASE_FORGET_AFTER_S: f64 = 3600.0;

/// Most appends one group transaction carries.
const GROUP_WRITES_MAX: usize = 256;
/// Appends waiting for the group writer; callers wait when it is full.
const GROUP_QUEUE_MAX: usize = 4_096;

/// One feed append, with the receipt saved in the same transaction (`save_with_feed`).
struct GroupWrite {
    entries: Vec<(Jurisdiction, FeedEntry)>,
    recorded_at_ms: u64,
    receipt: Option<Receipt>,
}

struct Receipt {
    id: String,
    participant: String,
    pending: bool,
    bytes: Vec<u8>,
}

struct GroupRequest {
    write: GroupWrite,
    reply: oneshot::Sender<Result<Vec<FeedRecord>, StorageError>>,
}

/// The group writer: concurrent feed appends of this router go into one transaction, which takes
/// each jurisdiction's lock once for all of them. Without it, appends to a jurisdiction run one
/// after another, each holding the lock through its own commit: a few hundred a second at most.
#[derive(Clone)]
struct GroupWriter {
    requests: mpsc::Sender<GroupRequest>,
}

impl GroupWriter {
    fn start(pool: Pool) -> Self {
        let (requests, mut queue) = mpsc::channel::<GroupRequest>(GROUP_QUEUE_MAX);
        tokio::spawn(async move {
            while let Some(first) = queue.recv().await {
                let mut batch = vec![first];
                while batch.len() < GROUP_WRITES_MAX {
                    match queue.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
                let writes: Vec<&GroupWrite> = batch.iter().map(|request| &request.write).collect();
                let metrics = crate::metrics::metrics();
                metrics.queue("postgres_group_writes", queue.len(), GROUP_QUEUE_MAX);
                let started = std::time::Instant::now();
                let written = write_group(&pool, &writes).await;
                metrics.journal_flush("postgres", writes.len(), started.elapsed());
                match written {
                    Ok(records) => {
                        for (request, records) in batch.into_iter().zip(records) {
                            let _caller_gone = request.reply.send(Ok(records));
                        }
                    }
                    // One refused append must not fail the others: each alone, in its own transaction.
                    Err(_) if batch.len() > 1 => {
                        for request in batch {
                            let result = write_group(&pool, &[&request.write])
                                .await
                                .map(|mut records| records.pop().unwrap_or_default());
                            let _caller_gone = request.reply.send(result);
                        }
                    }
                    Err(error) => {
                        for request in batch {
                            let _caller_gone = request.reply.send(Err(error.clone()));
                        }
                    }
                }
            }
        });
        Self { requests }
    }

    async fn write(&self, write: GroupWrite) -> Result<Vec<FeedRecord>, StorageError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(GroupRequest { write, reply })
            .await
            .map_err(|_| unavailable("the feed writer has stopped"))?;
        answer.await.map_err(|_| unavailable("the feed writer stopped before answering"))?
    }
}

/// Appends every write's entries, in order, and saves their receipts, in one transaction; the
/// records appended for each write, in order.
async fn write_group(pool: &Pool, writes: &[&GroupWrite]) -> Result<Vec<Vec<FeedRecord>>, StorageError> {
    let jurisdictions: Vec<Jurisdiction> = {
        let mut touched: Vec<Jurisdiction> = writes
            .iter()
            .flat_map(|write| write.entries.iter().map(|(jurisdiction, _)| jurisdiction.clone()))
            .collect();
        touched.sort();
        touched.dedup();
        touched
    };
    let mut lock_ids: Vec<i64> = jurisdictions.iter().map(feed_lock_id).collect();
    lock_ids.sort_unstable();
    lock_ids.dedup();

    let mut client = pool.get().await.map_err(unavailable)?;
    let transaction = client.transaction().await.map_err(database_error)?;
    for lock_id in &lock_ids {
        let lock = transaction.prepare_cached("SELECT pg_advisory_xact_lock($1)").await.map_err(database_error)?;
        transaction.execute(&lock, &[lock_id]).await.map_err(database_error)?;
    }
    let names: Vec<&str> = jurisdictions.iter().map(Jurisdiction::as_str).collect();
    let heads_query = transaction
        .prepare_cached("SELECT jurisdiction, sequence, hash FROM corridor_feed_heads WHERE jurisdiction = ANY($1)")
        .await
        .map_err(database_error)?;
    let rows = transaction.query(&heads_query, &[&names]).await.map_err(database_error)?;
    let mut heads = BTreeMap::new();
    for row in &rows {
        let name: &str = row.get(0);
        heads.insert(name.to_owned(), (sequence_of(row.get(1))?, hash_of(name, row.get(2))?));
    }
    let mut chains = BTreeMap::new();
    for jurisdiction in &jurisdictions {
        let head = heads.get(jurisdiction.as_str()).copied();
        chains.insert(jurisdiction.clone(), resume_feed_chain(jurisdiction, head)?);
    }
    let mut appended = Vec::with_capacity(writes.len());
    let mut record_jurisdictions = Vec::new();
    let mut record_sequences = Vec::new();
    let mut record_lines = Vec::new();
    for write in writes {
        let chained = chain_feed_entries(&mut chains, write.entries.clone(), write.recorded_at_ms)?;
        for chained in &chained {
            record_jurisdictions.push(chained.record.jurisdiction.as_str().to_owned());
            record_sequences.push(sequence_column(chained.record.sequence)?);
        }
        let (lines, records): (Vec<String>, Vec<FeedRecord>) =
            chained.into_iter().map(|chained| (chained.line, chained.record)).unzip();
        record_lines.extend(lines);
        appended.push(records);
    }
    let mut head_jurisdictions = Vec::with_capacity(chains.len());
    let mut head_sequences = Vec::with_capacity(chains.len());
    let mut head_hashes = Vec::with_capacity(chains.len());
    for (jurisdiction, chain) in &chains {
        let (sequence, hash) = chain.head();
        head_jurisdictions.push(jurisdiction.as_str());
        head_sequences.push(sequence_column(sequence)?);
        head_hashes.push(hash.as_bytes().to_vec());
    }
    // One statement: the records (the primary key refuses a sequence stored already), then the
    // heads they moved.
    let statement = transaction
        .prepare_cached(
            "WITH records AS (
                 INSERT INTO corridor_feed (jurisdiction, sequence, record)
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[])
             )
             INSERT INTO corridor_feed_heads (jurisdiction, sequence, hash)
             SELECT * FROM UNNEST($4::TEXT[], $5::BIGINT[], $6::BYTEA[])
             ON CONFLICT (jurisdiction) DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash",
        )
        .await
        .map_err(database_error)?;
    transaction
        .execute(
            &statement,
            &[
                &record_jurisdictions,
                &record_sequences,
                &record_lines,
                &head_jurisdictions,
                &head_sequences,
                &head_hashes,
            ],
        )
        .await
        .map_err(database_error)?;
    let receipts: Vec<&Receipt> = writes.iter().filter_map(|write| write.receipt.as_ref()).collect();
    if !receipts.is_empty() {
        let ids: Vec<&str> = receipts.iter().map(|receipt| receipt.id.as_str()).collect();
        let participants: Vec<&str> = receipts.iter().map(|receipt| receipt.participant.as_str()).collect();
        let pending: Vec<bool> = receipts.iter().map(|receipt| receipt.pending).collect();
        let bytes: Vec<&[u8]> = receipts.iter().map(|receipt| receipt.bytes.as_slice()).collect();
        let statement = transaction
            .prepare_cached(
                "INSERT INTO corridor_payments (payment_id, participant, pending, payment)
                 SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BOOLEAN[], $4::BYTEA[])
                 ON CONFLICT (payment_id) DO UPDATE SET pending = EXCLUDED.pending, payment = EXCLUDED.payment",
            )
            .await
            .map_err(database_error)?;
        transaction.execute(&statement, &[&ids, &participants, &pending, &bytes]).await.map_err(database_error)?;
    }
    transaction.commit().await.map_err(database_error)?;
    Ok(appended)
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

fn decode_payment(bytes: &[u8]) -> Result<wire::Payment, StorageError> {
    wire::Payment::decode(bytes).map_err(|error| StorageError::Corrupt(format!("payment: {error}")))
}

impl PostgresStore {
    pub async fn connect(database_url: &str) -> Result<Self, StorageError> {
        Self::connect_with_lease(database_url, LEASE_TTL).await
    }

    /// Like [`PostgresStore::connect`], with a lease of `lease_ttl` (tests shorten it).
    pub async fn connect_with_lease(database_url: &str, lease_ttl: Duration) -> Result<Self, StorageError> {
        let mut config = PoolConfig::new();
        config.url = Some(database_url.to_owned());
        config.pool = Some(deadpool_postgres::PoolConfig::new(POOL_SIZE_MAX));
        let pool = config.create_pool(Some(Runtime::Tokio1), NoTls).map_err(unavailable)?;
        let mut client = pool.get().await.map_err(unavailable)?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_ID]).await.map_err(unavailable)?;
        transaction.batch_execute(MIGRATIONS).await.map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        let group = GroupWriter::start(pool.clone());
        Self::with_lease(pool, group, lease_ttl).await
    }

    /// Takes a lease for a new instance id before anything can be begun under it (an entry whose
    /// owner holds no lease is an orphan to every other router), and keeps renewing it.
    async fn with_lease(pool: Pool, group: GroupWriter, lease_ttl: Duration) -> Result<Self, StorageError> {
        let instance: Arc<str> = uuid::Uuid::now_v7().to_string().into();
        let description = format!(
            "pid {} on {}",
            std::process::id(),
            std::env::var("HOSTNAME").unwrap_or_else(|_| "an unnamed host".to_owned())
        );
        let ttl_s = lease_ttl.as_secs_f64();
        renew_lease(&pool, &instance, &description, ttl_s).await?;
        let lease = Arc::new(Lease { released: tokio::sync::Mutex::new(false), renewal: std::sync::OnceLock::new() });
        let renewal = {
            let pool = pool.clone();
            let instance = Arc::clone(&instance);
            // Weak: the task must not keep the lease (whose drop stops it) alive.
            let lease = Arc::downgrade(&lease);
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(LEASE_RENEW_INTERVAL.min(lease_ttl / 2));
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut failing = false;
                loop {
                    ticks.tick().await;
                    let Some(lease) = lease.upgrade() else { return };
                    let released = lease.released.lock().await;
                    if *released {
                        return;
                    }
                    let renewed = renew_lease(&pool, &instance, &description, ttl_s).await;
                    drop(released);
                    match renewed {
                        Ok(()) if failing => {
                            tracing::info!(%instance, "lease renewed again");
                            failing = false;
                        }
                        Ok(()) => {}
                        Err(error) if !failing => {
                            tracing::warn!(%instance, %error, "cannot renew this router's lease; other routers may take over its payments");
                            failing = true;
                        }
                        Err(_) => {}
                    }
                }
            })
        };
        let _first = lease.renewal.set(renewal.abort_handle());
        Ok(Self { pool, group, instance, lease })
    }

    /// This router's id as an owner of journal entries.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(unavailable)
    }

    /// Runs one statement, prepared once per pooled connection: parsed and planned once, not on
    /// every call.
    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(database_error)?;
        client.execute(&statement, params).await.map_err(database_error)
    }

    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(database_error)?;
        client.query(&statement, params).await.map_err(database_error)
    }

    async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(database_error)?;
        client.query_one(&statement, params).await.map_err(database_error)
    }

    async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>, StorageError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(database_error)?;
        client.query_opt(&statement, params).await.map_err(database_error)
    }
}

#[async_trait::async_trait]
impl Journal for PostgresStore {
    async fn begin(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let id = payment_id_of(payment)?.to_string();
        let bytes = payment.encode_to_vec();
        // One statement, so one transaction: the journal entry and the pending receipt.
        self.execute(
            "WITH journal AS (
                 INSERT INTO corridor_journal (payment_id, payment, owner) VALUES ($1, $2, $5)
                 ON CONFLICT (payment_id) DO UPDATE SET payment = EXCLUDED.payment, owner = EXCLUDED.owner
             )
             INSERT INTO corridor_payments (payment_id, participant, pending, payment) VALUES ($1, $3, $4, $2)
             ON CONFLICT (payment_id) DO UPDATE SET pending = EXCLUDED.pending, payment = EXCLUDED.payment",
            &[&id, &bytes, &payment.participant_id, &is_pending(payment), &&*self.instance],
        )
        .await?;
        Ok(())
    }

    async fn decide(&self, payment: PaymentId, proposed: Decision) -> Result<Decision, StorageError> {
        let id = payment.to_string();
        // Insert-or-keep in one statement: the row's decision after it is the one that stands.
        let row = self
            .query_one(
                "INSERT INTO corridor_journal (payment_id, decision) VALUES ($1, $2)
                 ON CONFLICT (payment_id) DO UPDATE
                   SET decision = COALESCE(corridor_journal.decision, EXCLUDED.decision)
                 RETURNING decision",
                &[&id, &proposed.to_code()],
            )
            .await?;
        let code: Option<i16> = row.get(0);
        code.and_then(Decision::from_code).ok_or_else(|| StorageError::Corrupt(format!("journal decision of {id}")))
    }

    async fn finish(&self, payment: PaymentId) -> Result<(), StorageError> {
        self.execute(
            "UPDATE corridor_journal SET finished = TRUE, payment = NULL WHERE payment_id = $1",
            &[&payment.to_string()],
        )
        .await?;
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<JournalEntry>, StorageError> {
        let rows = self
            .query(
                "SELECT payment, decision FROM corridor_journal
                 WHERE NOT finished AND payment IS NOT NULL ORDER BY payment_id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.get(0);
                let decision: Option<i16> = row.get(1);
                Ok(JournalEntry { payment: decode_payment(&bytes)?, decision: decision.and_then(Decision::from_code) })
            })
            .collect()
    }

    async fn contains(&self, payment: PaymentId) -> Result<bool, StorageError> {
        let row =
            self.query_opt("SELECT 1 FROM corridor_journal WHERE payment_id = $1", &[&payment.to_string()]).await?;
        Ok(row.is_some())
    }

    async fn take_over(&self, limit: usize) -> Result<Vec<JournalEntry>, StorageError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // The orphans are locked as they are chosen, and routers taking over at once skip each
        // other's: an entry is taken by one router. The lease is compared with the database's
        // clock, so the routers' own clocks do not matter.
        let rows = self
            .query(
                "UPDATE corridor_journal AS entry SET owner = $1
                 FROM (
                     SELECT payment_id FROM corridor_journal AS candidate
                     WHERE NOT finished AND payment IS NOT NULL AND owner IS DISTINCT FROM $1
                       AND NOT EXISTS (
                           SELECT 1 FROM corridor_routers
                           WHERE instance_id = candidate.owner AND lease_until > clock_timestamp()
                       )
                     ORDER BY payment_id LIMIT $2
                     FOR UPDATE SKIP LOCKED
                 ) AS orphan
                 WHERE entry.payment_id = orphan.payment_id
                 RETURNING entry.payment_id, entry.payment, entry.decision",
                &[&&*self.instance, &limit],
            )
            .await?;
        let mut entries: Vec<(String, JournalEntry)> = rows
            .iter()
            .map(|row| {
                let id: String = row.get(0);
                let bytes: Vec<u8> = row.get(1);
                let decision: Option<i16> = row.get(2);
                let entry =
                    JournalEntry { payment: decode_payment(&bytes)?, decision: decision.and_then(Decision::from_code) };
                Ok((id, entry))
            })
            .collect::<Result<_, StorageError>>()?;
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(entries.into_iter().map(|(_, entry)| entry).collect())
    }

    async fn probe(&self) -> Result<(), StorageError> {
        self.query_one("SELECT 1", &[]).await.map(|_| ())
    }

    async fn leads(&self) -> Result<bool, StorageError> {
        let row = self
            .query_opt(
                "SELECT instance_id FROM corridor_routers WHERE lease_until > clock_timestamp()
                 ORDER BY started_at, instance_id LIMIT 1",
                &[],
            )
            .await?;
        Ok(row.is_some_and(|row| row.get::<_, &str>(0) == &*self.instance))
    }

    async fn release(&self) -> Result<(), StorageError> {
        // No renewal in flight, and none after: the lease stays deleted.
        let mut released = self.lease.released.lock().await;
        *released = true;
        self.execute("DELETE FROM corridor_routers WHERE instance_id = $1", &[&&*self.instance]).await?;
        Ok(())
    }
}

/// Takes or extends `instance`'s lease to `ttl_s` seconds from the database's now, and forgets
/// leases lapsed long ago.
async fn renew_lease(pool: &Pool, instance: &str, description: &str, ttl_s: f64) -> Result<(), StorageError> {
    let client = pool.get().await.map_err(unavailable)?;
    let statement = client
        .prepare_cached(
            "WITH forgotten AS (
                 DELETE FROM corridor_routers WHERE lease_until < clock_timestamp() - make_interval(secs => $4)
             )
             INSERT INTO corridor_routers (instance_id, description, lease_until)
             VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
             ON CONFLICT (instance_id) DO UPDATE SET lease_until = EXCLUDED.lease_until",
        )
        .await
        .map_err(database_error)?;
    client
        .execute(&statement, &[&instance, &description, &ttl_s, &LEASE_FORGET_AFTER_S])
        .await
        .map_err(database_error)?;
    Ok(())
}

#[async_trait::async_trait]
impl PaymentStore for PostgresStore {
    async fn save(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let id = payment_id_of(payment)?.to_string();
        let bytes = payment.encode_to_vec();
        self.execute(
            "INSERT INTO corridor_payments (payment_id, participant, pending, payment) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (payment_id) DO UPDATE SET pending = EXCLUDED.pending, payment = EXCLUDED.payment",
            &[&id, &payment.participant_id, &is_pending(payment), &bytes],
        )
        .await?;
        Ok(())
    }

    async fn save_with_feed(
        &self,
        payment: &wire::Payment,
        feed: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    ) -> Result<(), StorageError> {
        let receipt = Receipt {
            id: payment_id_of(payment)?.to_string(),
            participant: payment.participant_id.clone(),
            pending: is_pending(payment),
            bytes: payment.encode_to_vec(),
        };
        self.group.write(GroupWrite { entries: feed, recorded_at_ms, receipt: Some(receipt) }).await.map(|_| ())
    }

    async fn get(&self, payment: PaymentId) -> Result<Option<wire::Payment>, StorageError> {
        let row = self
            .query_opt("SELECT payment FROM corridor_payments WHERE payment_id = $1", &[&payment.to_string()])
            .await?;
        row.map(|row| decode_payment(row.get::<_, &[u8]>(0))).transpose()
    }

    async fn list(
        &self,
        participant: Option<&ParticipantId>,
        after: Option<PaymentId>,
        limit: usize,
    ) -> Result<(Vec<wire::Payment>, Option<PaymentId>), StorageError> {
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let participant = participant.map(|p| p.as_str().to_owned());
        let wanted = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT payment_id, payment FROM corridor_payments
                 WHERE payment_id > $1 AND ($2::TEXT IS NULL OR participant = $2)
                 ORDER BY payment_id LIMIT $3",
                &[&after, &participant, &wanted],
            )
            .await?;
        let more = rows.len() > limit;
        let mut page = Vec::with_capacity(rows.len().min(limit));
        let mut last_id = None;
        for row in rows.iter().take(limit) {
            let id: String = row.get(0);
            page.push(decode_payment(row.get::<_, &[u8]>(1))?);
            last_id = Some(id);
        }
        let next = match (more, last_id) {
            (true, Some(id)) => {
                Some(id.parse().map_err(|reason| StorageError::Corrupt(format!("payment id {id} {reason}")))?)
            }
            _ => None,
        };
        Ok((page, next))
    }

    async fn pending(&self) -> Result<Vec<wire::Payment>, StorageError> {
        let rows = self.query("SELECT payment FROM corridor_payments WHERE pending ORDER BY payment_id", &[]).await?;
        rows.iter().map(|row| decode_payment(row.get::<_, &[u8]>(0))).collect()
    }
}

#[async_trait::async_trait]
impl FeedStore for PostgresStore {
    async fn append(
        &self,
        entries: Vec<(Jurisdiction, FeedEntry)>,
        recorded_at_ms: u64,
    ) -> Result<Vec<FeedRecord>, StorageError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.group.write(GroupWrite { entries, recorded_at_ms, receipt: None }).await
    }

    async fn records(
        &self,
        jurisdiction: &Jurisdiction,
        from_sequence: u64,
        limit: usize,
    ) -> Result<Vec<FeedRecord>, StorageError> {
        let Ok(from_sequence) = i64::try_from(from_sequence) else { return Ok(Vec::new()) };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .query(
                "SELECT sequence, record FROM corridor_feed
                 WHERE jurisdiction = $1 AND sequence >= $2 ORDER BY sequence LIMIT $3",
                &[&jurisdiction.as_str(), &from_sequence, &limit],
            )
            .await?;
        rows.iter().map(|row| decode_feed_record(row.get(1), jurisdiction, sequence_of(row.get(0))?)).collect()
    }

    async fn heads(&self) -> Result<Vec<(Jurisdiction, u64, FeedHash)>, StorageError> {
        let rows = self
            .query(
                "SELECT jurisdiction, sequence, hash FROM corridor_feed_heads ORDER BY jurisdiction COLLATE \"C\"",
                &[],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let name: &str = row.get(0);
                Ok((jurisdiction_of(name)?, sequence_of(row.get(1))?, hash_of(name, row.get(2))?))
            })
            .collect()
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        let line = encode_checkpoint(checkpoint)?;
        self.execute(
            "INSERT INTO corridor_feed_checkpoints (jurisdiction, sequence, key_id, checkpoint)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[
                &checkpoint.jurisdiction.as_str(),
                &sequence_column(checkpoint.sequence)?,
                &checkpoint.key_id.to_string(),
                &line,
            ],
        )
        .await?;
        Ok(())
    }

    async fn checkpoints(&self, jurisdiction: &Jurisdiction) -> Result<Vec<Checkpoint>, StorageError> {
        let rows = self
            .query(
                "SELECT checkpoint FROM corridor_feed_checkpoints
                 WHERE jurisdiction = $1 ORDER BY sequence, key_id COLLATE \"C\"",
                &[&jurisdiction.as_str()],
            )
            .await?;
        rows.iter().map(|row| decode_checkpoint(row.get(0), jurisdiction)).collect()
    }

    async fn latest_checkpoint(&self, jurisdiction: &Jurisdiction) -> Result<Option<Checkpoint>, StorageError> {
        let row = self
            .query_opt(
                "SELECT checkpoint FROM corridor_feed_checkpoints
                 WHERE jurisdiction = $1 ORDER BY sequence DESC, key_id COLLATE \"C\" DESC LIMIT 1",
                &[&jurisdiction.as_str()],
            )
            .await?;
        row.map(|row| decode_checkpoint(row.get(0), jurisdiction)).transpose()
    }
}
