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

use std::collections::BTreeMap;

use corridor_compliance::feed::{Checkpoint, FeedEntry, FeedHash, FeedRecord};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Jurisdiction, ParticipantId, PaymentId};
use deadpool_postgres::{Config as PoolConfig, Pool, Runtime};
use prost::Message;
use tokio_postgres::NoTls;

use super::{
    Decision, FeedStore, Journal, JournalEntry, PaymentStore, StorageError, chain_feed_entries, decode_checkpoint,
    decode_feed_record, encode_checkpoint, is_pending, payment_id_of, resume_feed_chain,
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
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

fn decode_payment(bytes: &[u8]) -> Result<wire::Payment, StorageError> {
    wire::Payment::decode(bytes).map_err(|error| StorageError::Corrupt(format!("payment: {error}")))
}

impl PostgresStore {
    pub async fn connect(database_url: &str) -> Result<Self, StorageError> {
        let mut config = PoolConfig::new();
        config.url = Some(database_url.to_owned());
        config.pool = Some(deadpool_postgres::PoolConfig::new(POOL_SIZE_MAX));
        let pool = config.create_pool(Some(Runtime::Tokio1), NoTls).map_err(unavailable)?;
        let mut client = pool.get().await.map_err(unavailable)?;
        let transaction = client.transaction().await.map_err(unavailable)?;
        transaction.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK_ID]).await.map_err(unavailable)?;
        transaction.batch_execute(MIGRATIONS).await.map_err(unavailable)?;
        transaction.commit().await.map_err(unavailable)?;
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(unavailable)
    }
}

#[async_trait::async_trait]
impl Journal for PostgresStore {
    async fn begin(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let id = payment_id_of(payment)?.to_string();
        let bytes = payment.encode_to_vec();
        self.client()
            .await?
            .execute(
                "INSERT INTO corridor_journal (payment_id, payment) VALUES ($1, $2)
                 ON CONFLICT (payment_id) DO UPDATE SET payment = EXCLUDED.payment",
                &[&id, &bytes],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn decide(&self, payment: PaymentId, proposed: Decision) -> Result<Decision, StorageError> {
        let id = payment.to_string();
        // Insert-or-keep in one statement: the row's decision after it is the one that stands.
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO corridor_journal (payment_id, decision) VALUES ($1, $2)
                 ON CONFLICT (payment_id) DO UPDATE
                   SET decision = COALESCE(corridor_journal.decision, EXCLUDED.decision)
                 RETURNING decision",
                &[&id, &proposed.to_code()],
            )
            .await
            .map_err(unavailable)?;
        let code: Option<i16> = row.get(0);
        code.and_then(Decision::from_code).ok_or_else(|| StorageError::Corrupt(format!("journal decision of {id}")))
    }

    async fn finish(&self, payment: PaymentId) -> Result<(), StorageError> {
        self.client()
            .await?
            .execute(
                "UPDATE corridor_journal SET finished = TRUE, payment = NULL WHERE payment_id = $1",
                &[&payment.to_string()],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn unfinished(&self) -> Result<Vec<JournalEntry>, StorageError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT payment, decision FROM corridor_journal
                 WHERE NOT finished AND payment IS NOT NULL ORDER BY payment_id",
                &[],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let bytes: Vec<u8> = row.get(0);
                let decision: Option<i16> = row.get(1);
                Ok(JournalEntry { payment: decode_payment(&bytes)?, decision: decision.and_then(Decision::from_code) })
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl PaymentStore for PostgresStore {
    async fn save(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let id = payment_id_of(payment)?.to_string();
        let bytes = payment.encode_to_vec();
        self.client()
            .await?
            .execute(
                "INSERT INTO corridor_payments (payment_id, participant, pending, payment) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (payment_id) DO UPDATE SET pending = EXCLUDED.pending, payment = EXCLUDED.payment",
                &[&id, &payment.participant_id, &is_pending(payment), &bytes],
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, payment: PaymentId) -> Result<Option<wire::Payment>, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT payment FROM corridor_payments WHERE payment_id = $1", &[&payment.to_string()])
            .await
            .map_err(unavailable)?;
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
            .client()
            .await?
            .query(
                "SELECT payment_id, payment FROM corridor_payments
                 WHERE payment_id > $1 AND ($2::TEXT IS NULL OR participant = $2)
                 ORDER BY payment_id LIMIT $3",
                &[&after, &participant, &wanted],
            )
            .await
            .map_err(unavailable)?;
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
        let rows = self
            .client()
            .await?
            .query("SELECT payment FROM corridor_payments WHERE pending ORDER BY payment_id", &[])
            .await
            .map_err(unavailable)?;
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
        let jurisdictions: Vec<Jurisdiction> = {
            let mut touched: Vec<Jurisdiction> = entries.iter().map(|(jurisdiction, _)| jurisdiction.clone()).collect();
            touched.sort();
            touched.dedup();
            touched
        };
        let mut lock_ids: Vec<i64> = jurisdictions.iter().map(feed_lock_id).collect();
        lock_ids.sort_unstable();
        lock_ids.dedup();

        let mut client = self.client().await?;
        let transaction = client.transaction().await.map_err(database_error)?;
        for lock_id in &lock_ids {
            transaction.execute("SELECT pg_advisory_xact_lock($1)", &[lock_id]).await.map_err(database_error)?;
        }
        let names: Vec<&str> = jurisdictions.iter().map(Jurisdiction::as_str).collect();
        let rows = transaction
            .query(
                "SELECT jurisdiction, sequence, hash FROM corridor_feed_heads WHERE jurisdiction = ANY($1)",
                &[&names],
            )
            .await
            .map_err(database_error)?;
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
        let chained = chain_feed_entries(&mut chains, entries, recorded_at_ms)?;

        let mut record_jurisdictions = Vec::with_capacity(chained.len());
        let mut record_sequences = Vec::with_capacity(chained.len());
        let mut record_lines = Vec::with_capacity(chained.len());
        for chained in &chained {
            record_jurisdictions.push(chained.record.jurisdiction.as_str());
            record_sequences.push(sequence_column(chained.record.sequence)?);
            record_lines.push(chained.line.as_str());
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
        transaction
            .execute(
                "WITH records AS (
                     INSERT INTO corridor_feed (jurisdiction, sequence, record)
                     SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[])
                 )
                 INSERT INTO corridor_feed_heads (jurisdiction, sequence, hash)
                 SELECT * FROM UNNEST($4::TEXT[], $5::BIGINT[], $6::BYTEA[])
                 ON CONFLICT (jurisdiction) DO UPDATE SET sequence = EXCLUDED.sequence, hash = EXCLUDED.hash",
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
        transaction.commit().await.map_err(database_error)?;
        Ok(chained.into_iter().map(|chained| chained.record).collect())
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
            .client()
            .await?
            .query(
                "SELECT sequence, record FROM corridor_feed
                 WHERE jurisdiction = $1 AND sequence >= $2 ORDER BY sequence LIMIT $3",
                &[&jurisdiction.as_str(), &from_sequence, &limit],
            )
            .await
            .map_err(database_error)?;
        rows.iter().map(|row| decode_feed_record(row.get(1), jurisdiction, sequence_of(row.get(0))?)).collect()
    }

    async fn heads(&self) -> Result<Vec<(Jurisdiction, u64, FeedHash)>, StorageError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT jurisdiction, sequence, hash FROM corridor_feed_heads ORDER BY jurisdiction COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(database_error)?;
        rows.iter()
            .map(|row| {
                let name: &str = row.get(0);
                Ok((jurisdiction_of(name)?, sequence_of(row.get(1))?, hash_of(name, row.get(2))?))
            })
            .collect()
    }

    async fn save_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), StorageError> {
        let line = encode_checkpoint(checkpoint)?;
        self.client()
            .await?
            .execute(
                "INSERT INTO corridor_feed_checkpoints (jurisdiction, sequence, key_id, checkpoint)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[
                    &checkpoint.jurisdiction.as_str(),
                    &sequence_column(checkpoint.sequence)?,
                    &checkpoint.key_id.to_string(),
                    &line,
                ],
            )
            .await
            .map_err(database_error)?;
        Ok(())
    }

    async fn checkpoints(&self, jurisdiction: &Jurisdiction) -> Result<Vec<Checkpoint>, StorageError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT checkpoint FROM corridor_feed_checkpoints
                 WHERE jurisdiction = $1 ORDER BY sequence, key_id COLLATE \"C\"",
                &[&jurisdiction.as_str()],
            )
            .await
            .map_err(database_error)?;
        rows.iter().map(|row| decode_checkpoint(row.get(0), jurisdiction)).collect()
    }

    async fn latest_checkpoint(&self, jurisdiction: &Jurisdiction) -> Result<Option<Checkpoint>, StorageError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT checkpoint FROM corridor_feed_checkpoints
                 WHERE jurisdiction = $1 ORDER BY sequence DESC, key_id COLLATE \"C\" DESC LIMIT 1",
                &[&jurisdiction.as_str()],
            )
            .await
            .map_err(database_error)?;
        row.map(|row| decode_checkpoint(row.get(0), jurisdiction)).transpose()
    }
}
