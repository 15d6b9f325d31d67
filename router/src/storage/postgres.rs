//! The production journal and receipts: PostgreSQL (or a distributed database speaking its
//! protocol), shared by every router of a network.
//!
//! The schema is created by [`PostgresStore::connect`] (idempotent migrations under an advisory
//! lock, so routers starting together do not race). Each write is its own transaction and
//! durable when it returns; PostgreSQL's own group commit batches concurrent ones.
//!
//! Tables: `corridor_journal` (payment id, the payment as prepared, decision, finished) and
//! `corridor_payments` (payment id, participant, pending flag, the wire payment).

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{ParticipantId, PaymentId};
use deadpool_postgres::{Config as PoolConfig, Pool, Runtime};
use prost::Message;
use tokio_postgres::NoTls;

use super::{Decision, Journal, JournalEntry, PaymentStore, StorageError, is_pending, payment_id_of};

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
";

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
