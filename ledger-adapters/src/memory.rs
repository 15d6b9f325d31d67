//! The in-memory reference ledger: the ledger of the embedded default, of the demo, of tests, and
//! (with its operation log) of `corridor ledger-node --backend memory`.
//!
//! Its state lives in one mutex-guarded map. [`InMemoryLedger::new`] keeps it only there, so it is
//! lost when the process ends. [`InMemoryLedger::open_durable`] adds an append-only operation log
//! (see `memory/log.rs`): every state change (opening, issuance, a prepare with its vote, a commit,
//! an abort) is durable before the call that made it returns, and before any other call's answer
//! reflects it; the log is replayed at open. Replay and live calls change the state through one
//! function (`State::apply`), so a replayed ledger is the ledger that was running.
//!
//! Unlike the trait, it can also issue money (a central bank minting into an account), and it can
//! audit itself: every balance non-negative, holds within balances, and the sum of all balances
//! equal to what was issued.
//!
//! Decided transactions are remembered for [`DECIDED_RETENTION`] (repeated calls get the first
//! answer) and then forgotten, so its memory does not grow with the number of payments.
//!
//! It deliberately does not: time out holds (a ledger that voted yes waits for the coordinator),
//! compact its log, or let two processes share one log (the file is locked while open).

mod log;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use corridor_schemas::money::format_minor_units;
use corridor_schemas::{AccountName, Currency, Money, PaymentId};

pub use self::log::{LedgerLogError, OPENING_ACCOUNTS_MAX};
use self::log::{OperationLog, PostingRecord, Record, RefusalRecord};
use crate::ledger::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, Refusal, RefusalCode, TransactionId,
    TransactionState, Vote, check_postings, net_by_account,
};

pub struct InMemoryLedger {
    description: LedgerDescription,
    state: Mutex<State>,
    /// Present when the ledger was opened on an operation log.
    log: Option<OperationLog>,
    replay: Option<ReplaySummary>,
}

/// How long a decided transaction (committed, aborted, refused) is remembered after its decision,
/// so a repeated prepare, commit or abort gets the first answer. After that it is forgotten, so
/// memory stays flat however long the ledger runs: a repeated prepare then arrives long after
/// its deadline (the coordinator gives votes seconds) and is refused without being recorded; a
/// repeated commit of a forgotten transaction is acknowledged (see [`InMemoryLedger::commit`]);
/// a repeated abort gets UNKNOWN_TRANSACTION, which the coordinator takes as done (presumed
/// abort). The operation log keeps every record.
pub const DECIDED_RETENTION: Duration = Duration::from_secs(120);

#[derive(Default)]
struct State {
    accounts: HashMap<AccountName, Account>,
    transactions: HashMap<TransactionId, Transaction>,
    /// Decided transactions in the order of their decisions, with when they were decided here.
    decided: VecDeque<(SystemTime, TransactionId)>,
    /// The newest transaction id (UUID v7, so its creation time, Unix ms) forgotten so far.
    forgotten_through_ms: u64,
    /// Everything ever issued, in minor units; i128 so no issuance sequence can overflow it.
    issued_minor: i128,
}

#[derive(Default, Clone, Copy)]
struct Account {
    balance_minor: i64,
    held_minor: i64,
}

struct Transaction {
    postings: Vec<Posting>,
    state: TransactionState,
    refusal: Option<Refusal>,
    prepared_at: SystemTime,
}

/// What opening a durable ledger found in its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    pub path: PathBuf,
    /// The log was empty: the ledger was created now, with its opening balances.
    pub created: bool,
    /// Records replayed, the opening record included.
    pub records_replayed: usize,
    /// Bytes of a torn last record dropped at open: a crash interrupted an append whose call
    /// therefore never returned.
    pub torn_tail_bytes: u64,
}

/// What [`InMemoryLedger::audit`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerAudit {
    pub issued_minor: i128,
    pub balances_minor: i128,
    pub held_minor: i128,
    /// Holds that prepared (undecided) transactions account for; must equal `held_minor`.
    pub prepared_debits_minor: i128,
    pub accounts: usize,
    pub prepared_transactions: usize,
    /// Accounts whose available balance (balance minus holds) is negative: must be none.
    pub overdrawn: Vec<AccountName>,
}

impl LedgerAudit {
    /// Conservation: money only enters by issuance and never leaves the ledger.
    pub fn is_conserved(&self) -> bool {
        self.issued_minor == self.balances_minor
    }

    pub fn is_sound(&self) -> bool {
        self.is_conserved() && self.overdrawn.is_empty() && self.held_minor == self.prepared_debits_minor
    }
}

impl State {
    /// The one place the state changes, for live calls and for replay alike. Checks what the
    /// record needs (so a damaged or foreign log is refused at replay); a live call has checked
    /// the same things first, so an error here during a live call is a bug.
    fn apply(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::Created { opening_balances, .. } => {
                for (account, amount_minor) in opening_balances {
                    if !(0..=Money::MINOR_UNITS_MAX).contains(amount_minor) {
                        return Err(format!("opening balance of {account} is {amount_minor} minor units"));
                    }
                    if self
                        .accounts
                        .insert(account.clone(), Account { balance_minor: *amount_minor, held_minor: 0 })
                        .is_some()
                    {
                        return Err(format!("account {account} opens twice"));
                    }
                    self.issued_minor += i128::from(*amount_minor);
                }
            }
            Record::AccountOpened { account } => {
                self.accounts.entry(account.clone()).or_default();
            }
            Record::Issued { account, amount_minor } => {
                if *amount_minor <= 0 {
                    return Err(format!("issuance of {amount_minor} minor units"));
                }
                let entry = self.accounts.entry(account.clone()).or_default();
                entry.balance_minor = entry
                    .balance_minor
                    .checked_add(*amount_minor)
                    .ok_or_else(|| format!("issuance would overflow account {account}"))?;
                self.issued_minor += i128::from(*amount_minor);
            }
            Record::Prepared { transaction, postings, prepared_at_unix_ns, refusal } => {
                let id = parse_transaction(transaction)?;
                if self.transactions.contains_key(&id) {
                    return Err(format!("transaction {id} is prepared twice"));
                }
                let postings: Vec<Posting> = postings.iter().map(Posting::from).collect();
                let (state, refusal) = match refusal {
                    Some(refusal) => (TransactionState::Refused, Some(Refusal::try_from(refusal)?)),
                    None => {
                        self.place_holds(&postings).map_err(|reason| format!("transaction {id}: {reason}"))?;
                        (TransactionState::Prepared, None)
                    }
                };
                let prepared_at = self::log::from_unix_ns(*prepared_at_unix_ns);
                if state == TransactionState::Refused {
                    self.decided.push_back((SystemTime::now(), id));
                }
                self.transactions.insert(id, Transaction { postings, state, refusal, prepared_at });
            }
            Record::Committed { transaction } => {
                let id = parse_transaction(transaction)?;
                let State { accounts, transactions, .. } = self;
                let record = transactions.get_mut(&id).ok_or_else(|| format!("commit of unknown transaction {id}"))?;
                if record.state != TransactionState::Prepared {
                    return Err(format!("commit of transaction {id}, which is {:?}", record.state));
                }
                for (account, net_minor) in net_by_account(&record.postings) {
                    let entry =
                        accounts.get_mut(account).ok_or_else(|| format!("commit of {id} to unknown {account}"))?;
                    entry.balance_minor += net_minor;
                    if net_minor < 0 {
                        entry.held_minor += net_minor;
                    }
                    if entry.balance_minor < entry.held_minor || entry.held_minor < 0 {
                        return Err(format!("commit of {id} overdrew {account}: the prepare's hold did not cover it"));
                    }
                }
                record.state = TransactionState::Committed;
                self.decided.push_back((SystemTime::now(), id));
            }
            Record::Aborted { transaction } => {
                let id = parse_transaction(transaction)?;
                let State { accounts, transactions, .. } = self;
                let record = transactions.get_mut(&id).ok_or_else(|| format!("abort of unknown transaction {id}"))?;
                if record.state != TransactionState::Prepared {
                    return Err(format!("abort of transaction {id}, which is {:?}", record.state));
                }
                for (account, net_minor) in net_by_account(&record.postings) {
                    if net_minor < 0 {
                        let entry =
                            accounts.get_mut(account).ok_or_else(|| format!("abort of {id} on unknown {account}"))?;
                        entry.held_minor += net_minor;
                        if entry.held_minor < 0 {
                            return Err(format!("abort of {id} released more than {account} held"));
                        }
                    }
                }
                record.state = TransactionState::Aborted;
                self.decided.push_back((SystemTime::now(), id));
            }
        }
        Ok(())
    }

    /// Forgets transactions decided more than [`DECIDED_RETENTION`] before `now`.
    fn forget_decided(&mut self, now: SystemTime) {
        while let Some((decided_at, id)) = self.decided.front().copied() {
            if now.duration_since(decided_at).unwrap_or_default() < DECIDED_RETENTION {
                break;
            }
            self.decided.pop_front();
            if self.transactions.get(&id).is_some_and(|record| record.state != TransactionState::Prepared) {
                self.transactions.remove(&id);
                self.forgotten_through_ms = self.forgotten_through_ms.max(created_ms(id));
            }
        }
    }

    /// A transaction this ledger decided and then forgot: unknown now, but created no later than
    /// the newest one forgotten.
    fn was_forgotten(&self, id: TransactionId) -> bool {
        !self.transactions.contains_key(&id) && created_ms(id) <= self.forgotten_through_ms
    }

    /// Why a new prepare of `postings` must be refused, if it must.
    fn refusal_for(&self, postings: &[Posting], description: &LedgerDescription) -> Option<Refusal> {
        let net = net_by_account(postings);
        if let Some(missing) = net.keys().find(|account| !self.accounts.contains_key(**account)) {
            return Some(Refusal {
                code: RefusalCode::UnknownAccount,
                message: format!("account {} does not exist on ledger {}", missing, description.ledger),
            });
        }
        for (account, net_minor) in net.iter().filter(|(_, net)| **net < 0) {
            let entry = self.accounts.get(*account)?;
            let available_minor = entry.balance_minor - entry.held_minor;
            if available_minor < -net_minor {
                let currency = description.currency;
                return Some(Refusal {
                    code: RefusalCode::InsufficientFunds,
                    message: format!(
                        "account {account} has {} {currency} available, needs {}",
                        format_minor_units(available_minor, currency),
                        format_minor_units(-net_minor, currency),
                    ),
                });
            }
        }
        None
    }

    /// Holds the debits of a prepare that voted yes; all or nothing.
    fn place_holds(&mut self, postings: &[Posting]) -> Result<(), String> {
        let net = net_by_account(postings);
        for (account, net_minor) in &net {
            let entry = self.accounts.get(*account).ok_or_else(|| format!("unknown account {account}"))?;
            if *net_minor < 0 && entry.balance_minor - entry.held_minor < -net_minor {
                return Err(format!("a hold of {} would overdraw {account}", -net_minor));
            }
        }
        for (account, net_minor) in net.into_iter().filter(|(_, net)| *net < 0) {
            if let Some(entry) = self.accounts.get_mut(account) {
                entry.held_minor -= net_minor;
            }
        }
        Ok(())
    }
}

/// When the transaction's id was made (UUID v7 carries it), Unix ms.
fn created_ms(id: TransactionId) -> u64 {
    id.payment_id().as_uuid().get_timestamp().map_or(0, |timestamp| {
        let (seconds, nanos) = timestamp.to_unix();
        seconds.saturating_mul(1000).saturating_add(u64::from(nanos / 1_000_000))
    })
}

fn parse_transaction(text: &str) -> Result<TransactionId, String> {
    text.parse::<PaymentId>().map(TransactionId::from).map_err(|reason| format!("transaction id {text} {reason}"))
}

impl InMemoryLedger {
    /// A ledger kept only in memory: its state is lost when the process ends.
    pub fn new(description: LedgerDescription) -> Self {
        Self { description, state: Mutex::new(State::default()), log: None, replay: None }
    }

    /// A ledger whose every state change is appended to the log at `path` and made durable
    /// before the call returns. An empty or absent log creates the ledger with
    /// `opening_balances` (account, minor units; zero opens an empty account); an existing log is
    /// replayed and `opening_balances` are ignored, since they only ever apply to a new ledger.
    /// Refuses a log that belongs to another ledger, is corrupt before its last record, or is open
    /// in another ledger.
    pub async fn open_durable(
        path: impl Into<PathBuf>,
        description: LedgerDescription,
        opening_balances: &[(AccountName, i64)],
    ) -> Result<Self, LedgerLogError> {
        let path = path.into();
        check_opening_balances(opening_balances)?;
        let opening = Record::created(
            description.ledger.clone(),
            description.currency,
            description.jurisdiction.clone(),
            opening_balances.to_vec(),
        );
        let blocking_path = path.clone();
        let opened = tokio::task::spawn_blocking(move || self::log::open_file(&blocking_path, &opening))
            .await
            .map_err(|join_error| LedgerLogError::Io {
                path: path.clone(),
                source: std::io::Error::other(format!("opening the log stopped: {join_error}")),
            })??;
        let state = replay(&path, &description, &opened.records)?;
        let replay = ReplaySummary {
            path: path.clone(),
            created: opened.created,
            records_replayed: opened.records.len(),
            torn_tail_bytes: opened.torn_tail_bytes,
        };
        let log = OperationLog::start(path, opened.file)?;
        Ok(Self { description, state: Mutex::new(state), log: Some(log), replay: Some(replay) })
    }

    /// Several ledgers durable in one shared log at `path` (the embedded default's ledgers): each
    /// as [`InMemoryLedger::open_durable`] would open it, but one writer makes all their records
    /// durable with one write and one fsync, so the cost of durability does not grow with the
    /// number of ledgers. A ledger with no record in the log yet is created with its opening
    /// balances; a log holding a ledger not listed is refused.
    pub async fn open_durable_group(
        path: impl Into<PathBuf>,
        ledgers: Vec<(LedgerDescription, Vec<(AccountName, i64)>)>,
    ) -> Result<Vec<Self>, LedgerLogError> {
        let path = path.into();
        let mut openings = Vec::with_capacity(ledgers.len());
        for (description, opening_balances) in &ledgers {
            check_opening_balances(opening_balances)?;
            let record = Record::created(
                description.ledger.clone(),
                description.currency,
                description.jurisdiction.clone(),
                opening_balances.clone(),
            );
            openings.push((description.ledger.to_string(), record));
        }
        let blocking_path = path.clone();
        let opened = tokio::task::spawn_blocking(move || self::log::open_group_file(&blocking_path, &openings))
            .await
            .map_err(|join_error| LedgerLogError::Io {
                path: path.clone(),
                source: std::io::Error::other(format!("opening the log stopped: {join_error}")),
            })??;
        let mut states = Vec::with_capacity(ledgers.len());
        for ((description, _), (records, created)) in ledgers.iter().zip(&opened.ledgers) {
            let state = replay(&path, description, records)?;
            let summary = ReplaySummary {
                path: path.clone(),
                created: *created,
                records_replayed: records.len(),
                torn_tail_bytes: opened.torn_tail_bytes,
            };
            states.push((state, summary));
        }
        let writer = Arc::new(self::log::LogWriter::start(path, opened.file)?);
        Ok(ledgers
            .into_iter()
            .zip(states)
            .map(|((description, _), (state, summary))| {
                let log = OperationLog::shared(Arc::clone(&writer), description.ledger.to_string());
                Self { description, state: Mutex::new(state), log: Some(log), replay: Some(summary) }
            })
            .collect())
    }

    pub fn description(&self) -> &LedgerDescription {
        &self.description
    }

    pub fn currency(&self) -> Currency {
        self.description.currency
    }

    /// What opening found in the log; `None` for a ledger kept only in memory.
    pub fn replay_summary(&self) -> Option<&ReplaySummary> {
        self.replay.as_ref()
    }

    /// Write-and-fsync rounds of a durable ledger's log so far (group commit makes them fewer
    /// than the records written); `None` for a ledger kept only in memory.
    pub fn log_syncs(&self) -> Option<u64> {
        self.log.as_ref().map(OperationLog::syncs)
    }

    /// The log file of a durable ledger.
    pub fn log_path(&self) -> Option<&Path> {
        self.log.as_ref().map(OperationLog::path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic mid-update: an invariant broke, so stop loudly.
        self.state.lock().expect("ledger state lock poisoned by an earlier panic")
    }

    /// Applies a change and, on a durable ledger, queues its record; with the lock held, so the
    /// log's order is the order of application.
    fn record(&self, state: &mut State, record: Record) -> Result<(), LedgerError> {
        let framed = match &self.log {
            Some(log) => Some(log.encode(&record).map_err(LedgerError::Unavailable)?),
            None => None,
        };
        if let Err(reason) = state.apply(&record) {
            panic!("ledger invariant broken applying {record:?}: {reason}");
        }
        state.forget_decided(SystemTime::now());
        if let (Some(log), Some(framed)) = (&self.log, framed) {
            log.append(&framed);
        }
        Ok(())
    }

    /// Runs `operation` with the lock held. On a durable ledger it first waits for room in the
    /// log's queue (when the operation may change state) and afterwards waits until everything the
    /// operation did or saw is durable, so no answer ever reflects a change a crash could undo.
    async fn locked<T>(
        &self,
        may_change: bool,
        operation: impl FnOnce(&mut State) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let Some(log) = &self.log else {
            return operation(&mut self.lock());
        };
        let _permit = if may_change { Some(log.permit().await?) } else { None };
        let (outcome, seq) = {
            let mut state = self.lock();
            log.check_healthy()?;
            let outcome = operation(&mut state);
            (outcome, log.appended_seq())
        };
        log.wait_durable(seq).await?;
        outcome
    }

    /// Opens an empty account; opening an existing one changes nothing. On a durable ledger the
    /// record is durable before any answer reflects the account; [`InMemoryLedger::sync`] waits
    /// for it explicitly.
    pub fn open_account(&self, account: AccountName) {
        let mut state = self.lock();
        if state.accounts.contains_key(&account) {
            return;
        }
        // Fails only if the record cannot be encoded; then nothing changed, and a later prepare
        // naming the account votes no (UNKNOWN_ACCOUNT), which is the truth.
        let _not_opened_if_err = self.record(&mut state, Record::AccountOpened { account });
    }

    /// Issues new money into an account (opening it if needed), as the central bank does. On a
    /// durable ledger the record is durable before any answer reflects it; [`InMemoryLedger::sync`]
    /// waits for it explicitly.
    pub fn issue(&self, account: AccountName, amount_minor: i64) -> Result<(), LedgerError> {
        if amount_minor <= 0 {
            return Err(LedgerError::InvalidPostings(format!("issuance of {amount_minor} minor units")));
        }
        let mut state = self.lock();
        if let Some(log) = &self.log {
            log.check_healthy()?;
        }
        let balance_minor = state.accounts.get(&account).map_or(0, |entry| entry.balance_minor);
        if balance_minor.checked_add(amount_minor).is_none() {
            return Err(LedgerError::InvalidPostings(format!("issuance would overflow account {account}")));
        }
        self.record(&mut state, Record::Issued { account, amount_minor })
    }

    /// Waits until every change made so far is durable (at once for a ledger kept in memory).
    pub async fn sync(&self) -> Result<(), LedgerError> {
        self.locked(false, |_| Ok(())).await
    }

    /// Checks the books. Reads memory directly: on a durable ledger it may include changes whose
    /// calls have not returned yet.
    pub fn audit(&self) -> LedgerAudit {
        let state = self.lock();
        let mut audit = LedgerAudit {
            issued_minor: state.issued_minor,
            balances_minor: 0,
            held_minor: 0,
            prepared_debits_minor: 0,
            accounts: state.accounts.len(),
            prepared_transactions: 0,
            overdrawn: Vec::new(),
        };
        for (name, account) in &state.accounts {
            audit.balances_minor += i128::from(account.balance_minor);
            audit.held_minor += i128::from(account.held_minor);
            if account.balance_minor < account.held_minor || account.held_minor < 0 {
                audit.overdrawn.push(name.clone());
            }
        }
        for transaction in state.transactions.values() {
            if transaction.state == TransactionState::Prepared {
                audit.prepared_transactions += 1;
                audit.prepared_debits_minor += net_by_account(&transaction.postings)
                    .values()
                    .filter(|net| **net < 0)
                    .map(|net| -i128::from(*net))
                    .sum::<i128>();
            }
        }
        audit.overdrawn.sort();
        audit
    }

    /// Balances of every account, for reconciliation in tests and the demo.
    pub fn balances(&self) -> HashMap<AccountName, i64> {
        self.lock().accounts.iter().map(|(name, account)| (name.clone(), account.balance_minor)).collect()
    }

    fn prepare_locked(
        &self,
        state: &mut State,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        if let Some(existing) = state.transactions.get(&transaction) {
            if existing.postings != postings {
                return Err(LedgerError::Conflict(transaction));
            }
            return match existing.state {
                TransactionState::Prepared => Ok(Vote::Yes),
                TransactionState::Refused => Ok(Vote::No(
                    existing
                        .refusal
                        .clone()
                        .unwrap_or_else(|| Refusal { code: RefusalCode::UnknownAccount, message: "refused".into() }),
                )),
                TransactionState::Committed => Err(LedgerError::AlreadyCommitted(transaction)),
                TransactionState::Aborted => Err(LedgerError::AlreadyAborted(transaction)),
                TransactionState::Unknown => unreachable!("unknown transactions are never stored"),
            };
        }
        let now = SystemTime::now();
        if let Ok(late) = now.duration_since(deadline)
            && !late.is_zero()
        {
            // Not recorded: nothing was held, and the coordinator has already given up on it.
            return Ok(Vote::No(Refusal {
                code: RefusalCode::DeadlinePassed,
                message: format!(
                    "the prepare reached ledger {} {} ms after its deadline",
                    self.description.ledger,
                    late.as_millis()
                ),
            }));
        }
        let refusal = state.refusal_for(postings, &self.description);
        self.record(
            state,
            Record::Prepared {
                transaction: transaction.to_string(),
                postings: postings.iter().map(PostingRecord::from).collect(),
                prepared_at_unix_ns: self::log::unix_ns(now),
                refusal: refusal.as_ref().map(RefusalRecord::from),
            },
        )?;
        Ok(refusal.map_or(Vote::Yes, Vote::No))
    }
}

/// The state a ledger's records (its creation first) leave it in; checks they are this ledger's.
fn replay(path: &Path, description: &LedgerDescription, records: &[(u64, Record)]) -> Result<State, LedgerLogError> {
    let mut state = State::default();
    for (index, (offset, record)) in records.iter().enumerate() {
        let corrupt = |reason: String| LedgerLogError::Corrupt { path: path.to_owned(), offset: *offset, reason };
        match (index, record) {
            (0, Record::Created { format, ledger, currency, jurisdiction, .. }) => {
                if *format != self::log::FORMAT_VERSION {
                    let expected = self::log::FORMAT_VERSION;
                    return Err(corrupt(format!("log format {format}; this build reads format {expected}")));
                }
                let matches = *ledger == description.ledger
                    && *currency == description.currency
                    && *jurisdiction == description.jurisdiction;
                if !matches {
                    return Err(LedgerLogError::DifferentLedger {
                        path: path.to_owned(),
                        found: format!("{ledger} ({currency}, {jurisdiction})"),
                        expected: format!(
                            "{} ({}, {})",
                            description.ledger, description.currency, description.jurisdiction
                        ),
                    });
                }
            }
            (0, _) => return Err(corrupt("the first record does not create the ledger".into())),
            (_, Record::Created { .. }) => return Err(corrupt("a second creation record".into())),
            _ => {}
        }
        state.apply(record).map_err(corrupt)?;
    }
    Ok(state)
}

/// Opening balances must fit one log record and be valid issuances.
fn check_opening_balances(opening_balances: &[(AccountName, i64)]) -> Result<(), LedgerLogError> {
    if opening_balances.len() > OPENING_ACCOUNTS_MAX {
        return Err(LedgerLogError::OpeningBalances(format!(
            "{} accounts; at most {OPENING_ACCOUNTS_MAX}",
            opening_balances.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for (account, amount_minor) in opening_balances {
        if !(0..=Money::MINOR_UNITS_MAX).contains(amount_minor) {
            return Err(LedgerLogError::OpeningBalances(format!(
                "{account}: {amount_minor} minor units is not within 0..={}",
                Money::MINOR_UNITS_MAX
            )));
        }
        if !seen.insert(account) {
            return Err(LedgerLogError::OpeningBalances(format!("{account} appears twice")));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl Ledger for InMemoryLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        Ok(self.description.clone())
    }

    /// A new transaction that arrives after its deadline votes no (DEADLINE_PASSED) and is not
    /// recorded; a repeat of a known one returns the first answer whatever the time.
    async fn prepare(
        &self,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        check_postings(postings, self.description.currency)?;
        self.locked(true, |state| self.prepare_locked(state, transaction, postings, deadline)).await
    }

    /// A commit of a transaction decided and forgotten (older than [`DECIDED_RETENTION`]) is
    /// acknowledged: the coordinator sends COMMIT only for a transaction every ledger voted yes
    /// to, and a ledger only ever applies the coordinator's one decision, so it was committed.
    async fn commit(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        self.locked(true, |state| {
            if state.was_forgotten(transaction) {
                return Ok(());
            }
            let record = state.transactions.get(&transaction).ok_or(LedgerError::UnknownTransaction(transaction))?;
            match record.state {
                TransactionState::Committed => Ok(()),
                TransactionState::Aborted => Err(LedgerError::AlreadyAborted(transaction)),
                TransactionState::Refused => Err(LedgerError::Refused(transaction)),
                TransactionState::Prepared | TransactionState::Unknown => {
                    self.record(state, Record::Committed { transaction: transaction.to_string() })
                }
            }
        })
        .await
    }

    async fn abort(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        self.locked(true, |state| {
            let record = state.transactions.get(&transaction).ok_or(LedgerError::UnknownTransaction(transaction))?;
            match record.state {
                TransactionState::Aborted | TransactionState::Refused => Ok(()),
                TransactionState::Committed => Err(LedgerError::AlreadyCommitted(transaction)),
                TransactionState::Prepared | TransactionState::Unknown => {
                    self.record(state, Record::Aborted { transaction: transaction.to_string() })
                }
            }
        })
        .await
    }

    async fn status(&self, transaction: TransactionId) -> Result<TransactionState, LedgerError> {
        self.locked(false, |state| {
            Ok(state.transactions.get(&transaction).map_or(TransactionState::Unknown, |record| record.state))
        })
        .await
    }

    async fn in_doubt(&self, prepared_before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        self.locked(false, |state| {
            let mut in_doubt: Vec<(SystemTime, TransactionId)> = state
                .transactions
                .iter()
                .filter(|(_, record)| {
                    record.state == TransactionState::Prepared && record.prepared_at < prepared_before
                })
                .map(|(id, record)| (record.prepared_at, *id))
                .collect();
            in_doubt.sort();
            Ok(in_doubt.into_iter().take(limit).map(|(_, id)| id).collect())
        })
        .await
    }

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        self.locked(false, |state| {
            let entry = state.accounts.get(account).ok_or_else(|| LedgerError::UnknownAccount(account.clone()))?;
            Ok(AccountBalance {
                account: account.clone(),
                currency: self.description.currency,
                balance_minor: entry.balance_minor,
                held_minor: entry.held_minor,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests;
