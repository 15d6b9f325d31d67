//! The PostgreSQL reference ledger: the same two-phase ledger as
//! [`InMemoryLedger`](crate::InMemoryLedger), kept in PostgreSQL so that holds, votes and
//! decisions survive a restart of the process.
//!
//! Its semantics are exactly the in-memory ledger's (that ledger and its tests are the
//! specification), the deadline included: a new prepare that reaches it after its deadline votes
//! no with [`RefusalCode::DeadlinePassed`], holds nothing and is not recorded, while a resend of a
//! prepare it already answered gets that answer whatever the time.
//!
//! How it stays right under concurrency and crashes:
//! - Every ledger call is one SQL transaction, so it happens entirely or not at all. A call whose
//!   database could not be reached, or whose SQL commit was not acknowledged, answers
//!   [`LedgerError::Unavailable`]: its outcome is in doubt, and resending it is safe because every
//!   call is idempotent per transaction id.
//! - A prepare first claims its transaction id (an insert that a concurrent duplicate waits on),
//!   then locks the rows of the accounts it debits, checks what is available and raises the holds.
//!   Commit and abort lock the transaction row first. Account rows are always locked in one order
//!   (the byte order of their names), so concurrent calls never deadlock.
//! - CHECK constraints in the schema (`postgres/schema.sql`) make an overdraft impossible in the
//!   database itself, whatever the code does.
//!
//! What it deliberately does not do: no hold expires (a ledger that voted yes waits for the
//! coordinator's decision, however long); nothing is ever deleted; the schema carries a version,
//! but there is no migration between versions yet (only version 1 exists); the connection is not
//! encrypted (NoTls: the database is expected on the same host or a private network for now).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use corridor_schemas::money::format_minor_units;
use corridor_schemas::{AccountName, Currency, PaymentId};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{IsolationLevel, NoTls, Row};

use crate::ledger::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, Refusal, RefusalCode, TransactionId,
    TransactionState, Vote, check_postings, net_by_account,
};
use crate::memory::LedgerAudit;

/// The advisory lock that serializes schema creation across processes ("corr-ldg" in ASCII).
const MIGRATION_ADVISORY_LOCK_KEY: i64 = i64::from_be_bytes(*b"corr-ldg");

const SCHEMA_SQL: &str = include_str!("postgres/schema.sql");

/// The version of `postgres/schema.sql`; bump it with every change to that file.
const SCHEMA_VERSION: i32 = 1;

/// Every refusal code, to read stored ones back.
const REFUSAL_CODES: [RefusalCode; 3] =
    [RefusalCode::InsufficientFunds, RefusalCode::UnknownAccount, RefusalCode::DeadlinePassed];

/// Fails to compile when `RefusalCode` gains a variant, so that `REFUSAL_CODES` gets it too.
const _: fn(RefusalCode) = |code| match code {
    RefusalCode::InsufficientFunds | RefusalCode::UnknownAccount | RefusalCode::DeadlinePassed => {}
};

/// Locks account rows in the one order every call uses (byte order of the names, `COLLATE "C"`,
/// the order of `AccountName`'s `Ord`). PostgreSQL locks `FOR UPDATE` rows after sorting them, so
/// two calls touching the same accounts queue up instead of deadlocking.
const LOCK_ACCOUNTS_SQL: &str = r#"
    SELECT account, balance_minor, held_minor
    FROM corridor_ledger_accounts
    WHERE ledger_id = $1 AND account = ANY($2)
    ORDER BY account COLLATE "C"
    FOR UPDATE"#;

/// A central-bank ledger kept in PostgreSQL. See the module docs.
pub struct PostgresLedger {
    description: LedgerDescription,
    pool: Pool,
}

impl PostgresLedger {
    /// Most database connections one ledger keeps open. Each call holds one connection for one SQL
    /// transaction; more calls than this wait for a free connection (at most
    /// [`Self::POOL_WAIT_TIMEOUT_MS`]). Kept small because several ledgers and routers share one server.
    pub const POOL_CONNECTIONS_MAX: usize = 16;

    /// How long a call waits for a free pooled connection before answering `Unavailable`.
    pub const POOL_WAIT_TIMEOUT_MS: u64 = 5_000;

    /// How long opening one database connection may take.
    pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

    /// Longest any one SQL statement may run, lock waits included: a stuck lock or a slow server turns
    /// into an `Unavailable` answer (and a rolled-back SQL transaction) instead of a call that hangs.
    pub const STATEMENT_TIMEOUT_MS: u64 = 10_000;

    /// Opens a bounded pool of connections to `database_url`, creates the tables if they are
    /// missing, and registers the ledger (or finds it, with its accounts and transactions, after a
    /// restart). A ledger id already stored with another currency is refused.
    pub async fn connect(database_url: &str, description: LedgerDescription) -> Result<Self, LedgerError> {
        let mut database_config =
            tokio_postgres::Config::from_str(database_url).map_err(unavailable("read the database url"))?;
        database_config.connect_timeout(Duration::from_millis(Self::CONNECT_TIMEOUT_MS));
        let statement_timeout = format!("-c statement_timeout={}", Self::STATEMENT_TIMEOUT_MS);
        let options = match database_config.get_options() {
            Some(existing) => format!("{existing} {statement_timeout}"),
            None => statement_timeout,
        };
        database_config.options(&options);
        if database_config.get_application_name().is_none() {
            database_config.application_name("corridor-ledger");
        }
        let manager = Manager::from_config(
            database_config,
            NoTls,
            // Fast: a connection the server closed is noticed and replaced; one that breaks
            // mid-call makes that call `Unavailable`, which the caller resends.
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(Self::POOL_CONNECTIONS_MAX)
            .wait_timeout(Some(Duration::from_millis(Self::POOL_WAIT_TIMEOUT_MS)))
            .create_timeout(Some(Duration::from_millis(Self::CONNECT_TIMEOUT_MS)))
            .recycle_timeout(Some(Duration::from_millis(Self::CONNECT_TIMEOUT_MS)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(unavailable("build the connection pool"))?;
        let ledger = Self { description, pool };
        ledger.create_schema().await?;
        ledger.register().await?;
        Ok(ledger)
    }

    pub fn description(&self) -> &LedgerDescription {
        &self.description
    }

    pub fn currency(&self) -> Currency {
        self.description.currency
    }

    fn ledger_id(&self) -> &str {
        self.description.ledger.as_str()
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, LedgerError> {
        self.pool.get().await.map_err(unavailable("get a database connection"))
    }

    /// Creates the tables unless this schema version is already applied. Under an advisory lock,
    /// so that processes starting together neither race on CREATE nor see half a schema.
    async fn create_schema(&self) -> Result<(), LedgerError> {
        let mut client = self.client().await?;
        let sql = client.transaction().await.map_err(unavailable("begin creating the schema"))?;
        let result = async {
            execute(&sql, "lock the schema", "SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_ADVISORY_LOCK_KEY])
                .await?;
            let marker = query_one(
                &sql,
                "look for the schema",
                "SELECT to_regclass('corridor_ledger_schema') IS NOT NULL AS present",
                &[],
            )
            .await?;
            if column::<bool>(&marker, "present")? {
                let applied = query_opt(
                    &sql,
                    "read the schema version",
                    "SELECT version FROM corridor_ledger_schema WHERE version = $1",
                    &[&SCHEMA_VERSION],
                )
                .await?;
                if applied.is_some() {
                    return Ok(());
                }
            }
            sql.batch_execute(SCHEMA_SQL).await.map_err(unavailable("create the schema"))?;
            execute(
                &sql,
                "record the schema version",
                "INSERT INTO corridor_ledger_schema (version) VALUES ($1) ON CONFLICT (version) DO NOTHING",
                &[&SCHEMA_VERSION],
            )
            .await?;
            Ok(())
        }
        .await;
        finish(sql, result).await
    }

    async fn register(&self) -> Result<(), LedgerError> {
        let client = self.client().await?;
        let currency = self.description.currency.code();
        execute(
            &client,
            "register the ledger",
            "INSERT INTO corridor_ledgers (ledger_id, currency, jurisdiction) VALUES ($1, $2, $3)
             ON CONFLICT (ledger_id) DO NOTHING",
            &[&self.ledger_id(), &currency, &self.description.jurisdiction.as_str()],
        )
        .await?;
        let row = query_one(
            &client,
            "read the ledger's registration",
            "SELECT currency FROM corridor_ledgers WHERE ledger_id = $1",
            &[&self.ledger_id()],
        )
        .await?;
        let stored_currency: String = column(&row, "currency")?;
        if stored_currency != currency {
            return Err(LedgerError::Unavailable(format!(
                "ledger {} is stored in this database with currency {stored_currency}, not {currency}",
                self.description.ledger
            )));
        }
        Ok(())
    }

    /// Opens an empty account; opening an existing one changes nothing.
    pub async fn open_account(&self, account: AccountName) -> Result<(), LedgerError> {
        let client = self.client().await?;
        execute(
            &client,
            "open the account",
            "INSERT INTO corridor_ledger_accounts (ledger_id, account) VALUES ($1, $2)
             ON CONFLICT (ledger_id, account) DO NOTHING",
            &[&self.ledger_id(), &account.as_str()],
        )
        .await?;
        Ok(())
    }

    /// Issues new money into an account (opening it if needed), as the central bank does.
    pub async fn issue(&self, account: AccountName, amount_minor: i64) -> Result<(), LedgerError> {
        if amount_minor <= 0 {
            return Err(LedgerError::InvalidPostings(format!("issuance of {amount_minor} minor units")));
        }
        let mut client = self.client().await?;
        let sql = client.transaction().await.map_err(unavailable("begin the issuance"))?;
        let result = async {
            let credited = sql
                .execute(
                    "INSERT INTO corridor_ledger_accounts (ledger_id, account, balance_minor) VALUES ($1, $2, $3)
                     ON CONFLICT (ledger_id, account)
                     DO UPDATE SET balance_minor = corridor_ledger_accounts.balance_minor + EXCLUDED.balance_minor",
                    &[&self.ledger_id(), &account.as_str(), &amount_minor],
                )
                .await;
            if let Err(error) = credited {
                if error.code() == Some(&SqlState::NUMERIC_VALUE_OUT_OF_RANGE) {
                    return Err(LedgerError::InvalidPostings(format!("issuance would overflow account {account}")));
                }
                return Err(unavailable("credit the issuance")(error));
            }
            // The total is NUMERIC, so it cannot overflow; `::BIGINT` only types the parameter.
            execute(
                &sql,
                "count the issuance",
                "UPDATE corridor_ledgers SET issued_minor = issued_minor + $2::BIGINT WHERE ledger_id = $1",
                &[&self.ledger_id(), &amount_minor],
            )
            .await?;
            Ok(())
        }
        .await;
        finish(sql, result).await
    }

    /// Checks the ledger from one consistent snapshot: conservation against the issuance total,
    /// no overdrawn account, holds equal to the debits of prepared transactions.
    pub async fn audit(&self) -> Result<LedgerAudit, LedgerError> {
        let mut client = self.client().await?;
        let sql = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(unavailable("begin the audit"))?;
        let result = self.audit_within(&sql).await;
        finish(sql, result).await
    }

    async fn audit_within(&self, sql: &deadpool_postgres::Transaction<'_>) -> Result<LedgerAudit, LedgerError> {
        let ledger_id = self.ledger_id();
        let issued = query_one(
            sql,
            "read the issuance total",
            "SELECT issued_minor::TEXT AS issued_minor FROM corridor_ledgers WHERE ledger_id = $1",
            &[&ledger_id],
        )
        .await?;
        let totals = query_one(
            sql,
            "sum the balances",
            "SELECT count(*) AS accounts,
                    coalesce(sum(balance_minor), 0)::TEXT AS balances_minor,
                    coalesce(sum(held_minor), 0)::TEXT AS held_minor
             FROM corridor_ledger_accounts WHERE ledger_id = $1",
            &[&ledger_id],
        )
        .await?;
        // The CHECK constraints forbid these rows; the audit looks anyway, so that a dropped
        // constraint or a restored bad backup shows up here.
        let overdrawn_rows = query(
            sql,
            "find overdrawn accounts",
            "SELECT account FROM corridor_ledger_accounts
             WHERE ledger_id = $1 AND (held_minor < 0 OR balance_minor < held_minor)",
            &[&ledger_id],
        )
        .await?;
        let prepared = query_one(
            sql,
            "count the prepared transactions",
            "SELECT count(*) AS prepared_transactions FROM corridor_ledger_transactions
             WHERE ledger_id = $1 AND state = 'prepared'",
            &[&ledger_id],
        )
        .await?;
        // What the holds must add up to: per prepared transaction and account, the net debit.
        let prepared_debits = query_one(
            sql,
            "sum the debits of prepared transactions",
            "SELECT coalesce(sum(-net_minor), 0)::TEXT AS prepared_debits_minor
             FROM (SELECT sum(postings.amount_minor) AS net_minor
                   FROM corridor_ledger_postings AS postings
                   JOIN corridor_ledger_transactions AS transactions USING (ledger_id, transaction_id)
                   WHERE transactions.ledger_id = $1 AND transactions.state = 'prepared'
                   GROUP BY postings.transaction_id, postings.account) AS per_account
             WHERE net_minor < 0",
            &[&ledger_id],
        )
        .await?;
        let mut overdrawn =
            overdrawn_rows.iter().map(|row| account_column(row, "account")).collect::<Result<Vec<_>, _>>()?;
        overdrawn.sort();
        Ok(LedgerAudit {
            issued_minor: sum_column(&issued, "issued_minor")?,
            balances_minor: sum_column(&totals, "balances_minor")?,
            held_minor: sum_column(&totals, "held_minor")?,
            prepared_debits_minor: sum_column(&prepared_debits, "prepared_debits_minor")?,
            accounts: count_column(&totals, "accounts")?,
            prepared_transactions: count_column(&prepared, "prepared_transactions")?,
            overdrawn,
        })
    }

    /// Balances of every account, for reconciliation in tests and the demo.
    pub async fn balances(&self) -> Result<HashMap<AccountName, i64>, LedgerError> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "read the balances",
            "SELECT account, balance_minor FROM corridor_ledger_accounts WHERE ledger_id = $1",
            &[&self.ledger_id()],
        )
        .await?;
        rows.iter().map(|row| Ok((account_column(row, "account")?, column(row, "balance_minor")?))).collect()
    }

    /// The hold part of a prepare, inside its SQL transaction.
    async fn hold(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
        received_at: SystemTime,
    ) -> Result<HoldOutcome, LedgerError> {
        let ledger_id = self.ledger_id();
        let transaction_uuid = transaction.payment_id().as_uuid();
        // Claim the id first. A concurrent prepare of the same id waits on this row's unique index
        // entry until this SQL transaction ends, then finds the row and gives the same answer: a
        // duplicate never places holds twice, and never sees a unique violation.
        let claimed = execute(
            sql,
            "claim the transaction id",
            "INSERT INTO corridor_ledger_transactions (ledger_id, transaction_id, state, prepared_at)
             VALUES ($1, $2, 'prepared', $3)
             ON CONFLICT (ledger_id, transaction_id) DO NOTHING",
            &[&ledger_id, &transaction_uuid, &received_at],
        )
        .await?;
        if claimed == 0 {
            return self.earlier_vote(sql, transaction, postings).await.map(HoldOutcome::Keep);
        }
        // Checked after the claim, so that a late resend of a prepare already answered gets that
        // answer. A new prepare that is late is not recorded (the claim is rolled back): nothing
        // was held, and the coordinator has already given up on it.
        if received_at > deadline {
            let late_by_ms = received_at.duration_since(deadline).map_or(0, |late_by| late_by.as_millis());
            return Ok(HoldOutcome::Discard(Vote::No(Refusal {
                code: RefusalCode::DeadlinePassed,
                message: format!(
                    "the prepare reached ledger {} {late_by_ms} ms after its deadline",
                    self.description.ledger
                ),
            })));
        }
        let accounts: Vec<&str> = postings.iter().map(|posting| posting.account.as_str()).collect();
        let currencies: Vec<&str> = postings.iter().map(|posting| posting.currency.code()).collect();
        let amounts_minor: Vec<i64> = postings.iter().map(|posting| posting.amount_minor).collect();
        execute(
            sql,
            "record the postings",
            "INSERT INTO corridor_ledger_postings (ledger_id, transaction_id, position, account, currency, amount_minor)
             SELECT $1, $2, (posting.ordinality - 1)::INTEGER, posting.account, posting.currency, posting.amount_minor
             FROM unnest($3::TEXT[], $4::TEXT[], $5::BIGINT[])
                  WITH ORDINALITY AS posting (account, currency, amount_minor, ordinality)",
            &[&ledger_id, &transaction_uuid, &accounts, &currencies, &amounts_minor],
        )
        .await?;

        let net = net_by_account(postings);
        let involved_accounts: Vec<&str> = net.keys().map(|account| account.as_str()).collect();
        // Accounts are never deleted, so this needs no lock.
        let existing_rows = query(
            sql,
            "look up the accounts",
            "SELECT account FROM corridor_ledger_accounts WHERE ledger_id = $1 AND account = ANY($2)",
            &[&ledger_id, &involved_accounts],
        )
        .await?;
        let existing =
            existing_rows.iter().map(|row| column::<String>(row, "account")).collect::<Result<HashSet<_>, _>>()?;
        if let Some(missing) = net.keys().find(|account| !existing.contains(account.as_str())) {
            let refusal = Refusal {
                code: RefusalCode::UnknownAccount,
                message: format!("account {} does not exist on ledger {}", missing, self.description.ledger),
            };
            return self.refuse(sql, transaction, refusal).await.map(HoldOutcome::Keep);
        }

        let debits: Vec<(&AccountName, i64)> = net
            .iter()
            .filter(|(_, net_minor)| **net_minor < 0)
            .map(|(account, net_minor)| (*account, -net_minor))
            .collect();
        let debited_accounts: Vec<&str> = debits.iter().map(|(account, _)| account.as_str()).collect();
        // Only the debited accounts are locked: a credit is applied at commit, so a busy credited
        // account (a fee account) does not serialize every prepare.
        let locked_rows =
            query(sql, "lock the debited accounts", LOCK_ACCOUNTS_SQL, &[&ledger_id, &debited_accounts]).await?;
        let mut locked: HashMap<String, (i64, i64)> = HashMap::with_capacity(locked_rows.len());
        for row in &locked_rows {
            locked.insert(column(row, "account")?, (column(row, "balance_minor")?, column(row, "held_minor")?));
        }
        for (account, debit_minor) in &debits {
            let Some(&(balance_minor, held_minor)) = locked.get(account.as_str()) else {
                return Err(LedgerError::Unavailable(format!("account {account} disappeared during the prepare")));
            };
            // Cannot overflow: the schema keeps 0 <= held_minor <= balance_minor.
            let available_minor = balance_minor - held_minor;
            if available_minor < *debit_minor {
                let currency = self.description.currency;
                let refusal = Refusal {
                    code: RefusalCode::InsufficientFunds,
                    message: format!(
                        "account {account} has {} {currency} available, needs {}",
                        format_minor_units(available_minor, currency),
                        format_minor_units(*debit_minor, currency),
                    ),
                };
                return self.refuse(sql, transaction, refusal).await.map(HoldOutcome::Keep);
            }
        }
        let holds_minor: Vec<i64> = debits.iter().map(|(_, debit_minor)| *debit_minor).collect();
        let held = execute(
            sql,
            "place the holds",
            "UPDATE corridor_ledger_accounts AS accounts
             SET held_minor = accounts.held_minor + hold.hold_minor
             FROM unnest($2::TEXT[], $3::BIGINT[]) AS hold (account, hold_minor)
             WHERE accounts.ledger_id = $1 AND accounts.account = hold.account",
            &[&ledger_id, &debited_accounts, &holds_minor],
        )
        .await?;
        expect_rows(held, debits.len(), "place the holds")?;
        Ok(HoldOutcome::Keep(Vote::Yes))
    }

    /// The answer to a repeated prepare: the first vote, or why there is none to give.
    async fn earlier_vote(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
        postings: &[Posting],
    ) -> Result<Vote, LedgerError> {
        let transaction_uuid = transaction.payment_id().as_uuid();
        let row = query_one(
            sql,
            "read the earlier prepare",
            "SELECT state, refusal_code, refusal_message FROM corridor_ledger_transactions
             WHERE ledger_id = $1 AND transaction_id = $2",
            &[&self.ledger_id(), &transaction_uuid],
        )
        .await?;
        let stored_postings = query(
            sql,
            "read the earlier postings",
            "SELECT account, currency, amount_minor FROM corridor_ledger_postings
             WHERE ledger_id = $1 AND transaction_id = $2 ORDER BY position",
            &[&self.ledger_id(), &transaction_uuid],
        )
        .await?;
        if !same_postings(&stored_postings, postings)? {
            return Err(LedgerError::Conflict(transaction));
        }
        match state_from_column(&column::<String>(&row, "state")?)? {
            TransactionState::Prepared => Ok(Vote::Yes),
            TransactionState::Refused => {
                let code = refusal_code_from_column(&column::<String>(&row, "refusal_code")?)?;
                Ok(Vote::No(Refusal { code, message: column(&row, "refusal_message")? }))
            }
            TransactionState::Committed => Err(LedgerError::AlreadyCommitted(transaction)),
            TransactionState::Aborted => Err(LedgerError::AlreadyAborted(transaction)),
            TransactionState::Unknown => {
                Err(LedgerError::Unavailable(format!("transaction {transaction} has no state")))
            }
        }
    }

    /// Records a no vote: the transaction stays known (so a resend gets the same vote, and a later
    /// abort is a no-op), and nothing is held.
    async fn refuse(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
        refusal: Refusal,
    ) -> Result<Vote, LedgerError> {
        let recorded = execute(
            sql,
            "record the refusal",
            "UPDATE corridor_ledger_transactions
             SET state = 'refused', refusal_code = $3, refusal_message = $4, decided_at = now()
             WHERE ledger_id = $1 AND transaction_id = $2",
            &[&self.ledger_id(), &transaction.payment_id().as_uuid(), &refusal.code.as_str(), &refusal.message],
        )
        .await?;
        expect_rows(recorded, 1, "record the refusal")?;
        Ok(Vote::No(refusal))
    }

    /// Locks the transaction's row until the SQL transaction ends, and reads its state.
    async fn lock_transaction(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
    ) -> Result<TransactionState, LedgerError> {
        let row = query_opt(
            sql,
            "lock the transaction",
            "SELECT state FROM corridor_ledger_transactions
             WHERE ledger_id = $1 AND transaction_id = $2 FOR UPDATE",
            &[&self.ledger_id(), &transaction.payment_id().as_uuid()],
        )
        .await?;
        match row {
            None => Ok(TransactionState::Unknown),
            Some(row) => state_from_column(&column::<String>(&row, "state")?),
        }
    }

    /// Net movement per account of a stored transaction, in the order accounts are locked in.
    async fn stored_net_by_account(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
    ) -> Result<Vec<(String, i64)>, LedgerError> {
        // The sum fits a BIGINT: at most POSTINGS_PER_TRANSACTION_MAX amounts of at most 10^15.
        let rows = query(
            sql,
            "read the postings",
            r#"SELECT account, sum(amount_minor)::BIGINT AS net_minor FROM corridor_ledger_postings
               WHERE ledger_id = $1 AND transaction_id = $2
               GROUP BY account ORDER BY account COLLATE "C""#,
            &[&self.ledger_id(), &transaction.payment_id().as_uuid()],
        )
        .await?;
        rows.iter().map(|row| Ok((column(row, "account")?, column(row, "net_minor")?))).collect()
    }

    async fn lock_accounts(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        accounts: &[&str],
    ) -> Result<(), LedgerError> {
        let locked = query(sql, "lock the accounts", LOCK_ACCOUNTS_SQL, &[&self.ledger_id(), &accounts]).await?;
        expect_rows(u64::try_from(locked.len()).unwrap_or(u64::MAX), accounts.len(), "lock the accounts")
    }

    async fn mark_decided(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
        state: &'static str,
    ) -> Result<(), LedgerError> {
        let marked = execute(
            sql,
            "record the decision",
            "UPDATE corridor_ledger_transactions SET state = $3, decided_at = now()
             WHERE ledger_id = $1 AND transaction_id = $2",
            &[&self.ledger_id(), &transaction.payment_id().as_uuid(), &state],
        )
        .await?;
        expect_rows(marked, 1, "record the decision")
    }

    /// The post part of a commit, inside its SQL transaction.
    async fn post(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
    ) -> Result<(), LedgerError> {
        match self.lock_transaction(sql, transaction).await? {
            TransactionState::Unknown => return Err(LedgerError::UnknownTransaction(transaction)),
            TransactionState::Committed => return Ok(()),
            TransactionState::Aborted => return Err(LedgerError::AlreadyAborted(transaction)),
            TransactionState::Refused => return Err(LedgerError::Refused(transaction)),
            TransactionState::Prepared => {}
        }
        let net = self.stored_net_by_account(sql, transaction).await?;
        let accounts: Vec<&str> = net.iter().map(|(account, _)| account.as_str()).collect();
        let nets_minor: Vec<i64> = net.iter().map(|(_, net_minor)| *net_minor).collect();
        self.lock_accounts(sql, &accounts).await?;
        // A debit leaves the balance and its hold together, so the available balance is unchanged.
        // The prepare's hold covers it; if the data was changed behind the ledger's back and it no
        // longer does, the CHECK constraints refuse the update, the SQL transaction rolls back, and
        // the transaction stays prepared (the call answers `Unavailable`).
        let posted = execute(
            sql,
            "post the transaction",
            "UPDATE corridor_ledger_accounts AS accounts
             SET balance_minor = accounts.balance_minor + movement.net_minor,
                 held_minor = accounts.held_minor + LEAST(movement.net_minor, 0)
             FROM unnest($2::TEXT[], $3::BIGINT[]) AS movement (account, net_minor)
             WHERE accounts.ledger_id = $1 AND accounts.account = movement.account",
            &[&self.ledger_id(), &accounts, &nets_minor],
        )
        .await?;
        expect_rows(posted, accounts.len(), "post the transaction")?;
        self.mark_decided(sql, transaction, "committed").await
    }

    /// The void part of an abort, inside its SQL transaction.
    async fn void(
        &self,
        sql: &deadpool_postgres::Transaction<'_>,
        transaction: TransactionId,
    ) -> Result<(), LedgerError> {
        match self.lock_transaction(sql, transaction).await? {
            TransactionState::Unknown => return Err(LedgerError::UnknownTransaction(transaction)),
            TransactionState::Aborted | TransactionState::Refused => return Ok(()),
            TransactionState::Committed => return Err(LedgerError::AlreadyCommitted(transaction)),
            TransactionState::Prepared => {}
        }
        let debits: Vec<(String, i64)> = self
            .stored_net_by_account(sql, transaction)
            .await?
            .into_iter()
            .filter(|(_, net_minor)| *net_minor < 0)
            .map(|(account, net_minor)| (account, -net_minor))
            .collect();
        let accounts: Vec<&str> = debits.iter().map(|(account, _)| account.as_str()).collect();
        let releases_minor: Vec<i64> = debits.iter().map(|(_, debit_minor)| *debit_minor).collect();
        self.lock_accounts(sql, &accounts).await?;
        let released = execute(
            sql,
            "release the holds",
            "UPDATE corridor_ledger_accounts AS accounts
             SET held_minor = accounts.held_minor - hold.release_minor
             FROM unnest($2::TEXT[], $3::BIGINT[]) AS hold (account, release_minor)
             WHERE accounts.ledger_id = $1 AND accounts.account = hold.account",
            &[&self.ledger_id(), &accounts, &releases_minor],
        )
        .await?;
        expect_rows(released, accounts.len(), "release the holds")?;
        self.mark_decided(sql, transaction, "aborted").await
    }
}

#[async_trait::async_trait]
impl Ledger for PostgresLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        Ok(self.description.clone())
    }

    async fn prepare(
        &self,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        check_postings(postings, self.description.currency)?;
        // Taken on arrival, before any wait for a connection or a lock: that is when the prepare
        // reached the ledger, for the deadline and for `in_doubt`.
        let received_at = SystemTime::now();
        let mut client = self.client().await?;
        let sql = client.transaction().await.map_err(unavailable("begin the prepare"))?;
        match self.hold(&sql, transaction, postings, deadline, received_at).await {
            Ok(HoldOutcome::Keep(vote)) => finish(sql, Ok(vote)).await,
            Ok(HoldOutcome::Discard(vote)) => {
                // If the rollback fails the connection is gone, and the server rolls back on its own.
                let _rolled_back_or_connection_lost = sql.rollback().await;
                Ok(vote)
            }
            Err(error) => finish(sql, Err(error)).await,
        }
    }

    async fn commit(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        let mut client = self.client().await?;
        let sql = client.transaction().await.map_err(unavailable("begin the commit"))?;
        let result = self.post(&sql, transaction).await;
        finish(sql, result).await
    }

    async fn abort(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        let mut client = self.client().await?;
        let sql = client.transaction().await.map_err(unavailable("begin the abort"))?;
        let result = self.void(&sql, transaction).await;
        finish(sql, result).await
    }

    async fn status(&self, transaction: TransactionId) -> Result<TransactionState, LedgerError> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "read the transaction state",
            "SELECT state FROM corridor_ledger_transactions WHERE ledger_id = $1 AND transaction_id = $2",
            &[&self.ledger_id(), &transaction.payment_id().as_uuid()],
        )
        .await?;
        match row {
            None => Ok(TransactionState::Unknown),
            Some(row) => state_from_column(&column::<String>(&row, "state")?),
        }
    }

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "read the balance",
            "SELECT balance_minor, held_minor FROM corridor_ledger_accounts WHERE ledger_id = $1 AND account = $2",
            &[&self.ledger_id(), &account.as_str()],
        )
        .await?
        .ok_or_else(|| LedgerError::UnknownAccount(account.clone()))?;
        Ok(AccountBalance {
            account: account.clone(),
            currency: self.description.currency,
            balance_minor: column(&row, "balance_minor")?,
            held_minor: column(&row, "held_minor")?,
        })
    }

    async fn in_doubt(&self, prepared_before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        let client = self.client().await?;
        // Ties on the microsecond are broken by id: ids are UUID v7, which sort by creation time.
        let rows = query(
            &client,
            "list the undecided prepares",
            "SELECT transaction_id::TEXT AS transaction_id FROM corridor_ledger_transactions
             WHERE ledger_id = $1 AND state = 'prepared' AND prepared_at < $2
             ORDER BY prepared_at, transaction_id
             LIMIT $3",
            &[&self.ledger_id(), &prepared_before, &i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?;
        rows.iter()
            .map(|row| {
                let text: String = column(row, "transaction_id")?;
                PaymentId::from_str(&text)
                    .map(TransactionId::from)
                    .map_err(|reason| LedgerError::Unavailable(format!("stored transaction id {text} {reason}")))
            })
            .collect()
    }
}

/// What a prepare does with its SQL transaction once it has its answer.
enum HoldOutcome {
    /// Commit: the vote (and, for a yes, the holds) is recorded.
    Keep(Vote),
    /// Roll back: the answer leaves no trace (a new prepare that arrived after its deadline).
    Discard(Vote),
}

/// Ends a call's SQL transaction: commits what succeeded (a no vote included: it is recorded),
/// rolls back what failed. A commit that was not acknowledged leaves the outcome in doubt, which
/// is what `Unavailable` says.
async fn finish<T>(sql: deadpool_postgres::Transaction<'_>, result: Result<T, LedgerError>) -> Result<T, LedgerError> {
    match result {
        Ok(value) => {
            sql.commit().await.map_err(unavailable("commit the SQL transaction"))?;
            Ok(value)
        }
        Err(error) => {
            // If the rollback fails the connection is gone, and the server rolls back on its own.
            let _rolled_back_or_connection_lost = sql.rollback().await;
            Err(error)
        }
    }
}

/// Turns a database or pool error into the in-doubt answer, saying what the ledger was doing and
/// the whole chain of causes (tokio-postgres shows only "db error" at the top; the server's
/// message and SQLSTATE are in its source).
fn unavailable<E: std::error::Error + 'static>(doing: &'static str) -> impl FnOnce(E) -> LedgerError {
    move |error| {
        let mut message = format!("could not {doing}: {error}");
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            match cause.downcast_ref::<tokio_postgres::error::DbError>() {
                Some(database_error) => message.push_str(&format!(
                    ": {} {} (SQLSTATE {})",
                    database_error.severity(),
                    database_error.message(),
                    database_error.code().code()
                )),
                None => message.push_str(&format!(": {cause}")),
            }
            source = cause.source();
        }
        LedgerError::Unavailable(message)
    }
}

async fn query(
    client: &impl GenericClient,
    doing: &'static str,
    text: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, LedgerError> {
    let statement = client.prepare_cached(text).await.map_err(unavailable(doing))?;
    client.query(&statement, parameters).await.map_err(unavailable(doing))
}

async fn query_opt(
    client: &impl GenericClient,
    doing: &'static str,
    text: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, LedgerError> {
    let statement = client.prepare_cached(text).await.map_err(unavailable(doing))?;
    client.query_opt(&statement, parameters).await.map_err(unavailable(doing))
}

async fn query_one(
    client: &impl GenericClient,
    doing: &'static str,
    text: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<Row, LedgerError> {
    let statement = client.prepare_cached(text).await.map_err(unavailable(doing))?;
    client.query_one(&statement, parameters).await.map_err(unavailable(doing))
}

async fn execute(
    client: &impl GenericClient,
    doing: &'static str,
    text: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<u64, LedgerError> {
    let statement = client.prepare_cached(text).await.map_err(unavailable(doing))?;
    client.execute(&statement, parameters).await.map_err(unavailable(doing))
}

/// A statement that must touch exactly the rows the ledger expects; anything else means its data
/// changed behind its back, and the SQL transaction is rolled back.
fn expect_rows(touched: u64, expected: usize, doing: &'static str) -> Result<(), LedgerError> {
    if usize::try_from(touched).ok() == Some(expected) {
        return Ok(());
    }
    Err(LedgerError::Unavailable(format!("could not {doing}: touched {touched} rows, expected {expected}")))
}

fn column<'row, T: FromSql<'row>>(row: &'row Row, name: &str) -> Result<T, LedgerError> {
    row.try_get(name).map_err(|error| LedgerError::Unavailable(format!("could not read column {name}: {error}")))
}

fn account_column(row: &Row, name: &str) -> Result<AccountName, LedgerError> {
    let text: String = column(row, name)?;
    AccountName::new(text).map_err(|error| LedgerError::Unavailable(format!("stored account name {error}")))
}

/// A sum the database returns as text (NUMERIC has no lossless i64 form); fits an i128 by the
/// schema's NUMERIC(38, 0) and BIGINT column types.
fn sum_column(row: &Row, name: &str) -> Result<i128, LedgerError> {
    let text: String = column(row, name)?;
    text.parse().map_err(|error| LedgerError::Unavailable(format!("could not read {name} `{text}`: {error}")))
}

fn count_column(row: &Row, name: &str) -> Result<usize, LedgerError> {
    let count: i64 = column(row, name)?;
    usize::try_from(count).map_err(|error| LedgerError::Unavailable(format!("could not read {name} {count}: {error}")))
}

fn state_from_column(text: &str) -> Result<TransactionState, LedgerError> {
    match text {
        "prepared" => Ok(TransactionState::Prepared),
        "committed" => Ok(TransactionState::Committed),
        "aborted" => Ok(TransactionState::Aborted),
        "refused" => Ok(TransactionState::Refused),
        other => {
            Err(LedgerError::Unavailable(format!("stored transaction state `{other}` is not one this ledger writes")))
        }
    }
}

fn refusal_code_from_column(text: &str) -> Result<RefusalCode, LedgerError> {
    REFUSAL_CODES
        .into_iter()
        .find(|code| code.as_str() == text)
        .ok_or_else(|| LedgerError::Unavailable(format!("stored refusal code `{text}` is not one this ledger writes")))
}

/// Whether stored postings (account, currency, amount_minor; in position order) are exactly
/// `postings`, in the same order: the in-memory ledger compares the two lists the same way.
fn same_postings(stored: &[Row], postings: &[Posting]) -> Result<bool, LedgerError> {
    if stored.len() != postings.len() {
        return Ok(false);
    }
    for (row, posting) in stored.iter().zip(postings) {
        let account: &str = column(row, "account")?;
        let currency: &str = column(row, "currency")?;
        let amount_minor: i64 = column(row, "amount_minor")?;
        if account != posting.account.as_str()
            || currency != posting.currency.code()
            || amount_minor != posting.amount_minor
        {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests;
