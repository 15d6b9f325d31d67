//! The conformance kit: checks that a ledger adapter keeps the rules of the two-phase protocol
//! (see [`Ledger`]), against any adapter — in-process, or any gRPC address through
//! [`RemoteLedger`](crate::remote::RemoteLedger). `corridor conformance` runs it from the command
//! line.
//!
//! The adapter's operator funds two accounts, A (with at least four times the kit's amount
//! available) and B, and names them in a [`ConformanceFixture`]. The kit moves money from A to B
//! and back, and aborts every hold it places, so a passing run leaves no net change (its last row
//! checks that). Each row is one rule, reported pass or fail with a one-line detail; rows are
//! independent (each uses its own transactions and cleans up), so one broken rule shows as its own
//! row.
//!
//! What it does not check: performance, behaviour under faults (a lost message, a crash between
//! hold and vote), that holds survive a crash rather than a clean restart, or rules that need the
//! operator's cooperation (issuance, account creation). It runs against a live ledger, so the two
//! accounts must not be used by anything else while it runs.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use corridor_schemas::money::format_minor_units;
use corridor_schemas::{AccountName, Currency, Money, PaymentId};
use futures::future::join_all;

use crate::ledger::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, RefusalCode, TransactionId, TransactionState, Vote,
};

/// The amount the kit moves in each transaction unless the fixture says otherwise.
pub const AMOUNT_MINOR_DEFAULT: i64 = 100;
/// Prepares sent at once to check that concurrent holds never overdraw.
pub const CONCURRENT_PREPARES: usize = 8;
/// How far ahead the deadline of the kit's ordinary prepares lies.
pub const PREPARE_DEADLINE_MS: u64 = 30_000;
/// After a restart, how long the kit keeps retrying calls that find the adapter unavailable.
pub const RESTART_SETTLE_MS: u64 = 30_000;
/// Pause between those retries.
pub const RESTART_POLL_MS: u64 = 100;

/// The names of the rows, stable so tests and scripts can look rows up.
pub mod rows {
    pub const FIXTURE: &str = "fixture: accounts exist and A is funded";
    pub const HOLDS_REDUCE_AVAILABILITY: &str = "holds reduce availability";
    pub const PREPARE_IDEMPOTENT: &str = "repeated prepare returns the first vote, holds once";
    pub const COMMIT_IDEMPOTENT: &str = "repeated commit succeeds, posts once";
    pub const ABORT_IDEMPOTENT: &str = "repeated abort succeeds, releases once";
    pub const ABORT_AFTER_COMMIT_REFUSED: &str = "abort after commit refused";
    pub const COMMIT_AFTER_ABORT_REFUSED: &str = "commit after abort refused";
    pub const UNKNOWN_TRANSACTION_REFUSED: &str = "unknown transaction: commit and abort refused";
    pub const UNBALANCED_POSTINGS_REFUSED: &str = "unbalanced postings refused";
    pub const POSTINGS_SUM_TO_ZERO: &str = "postings must sum to zero (a lone credit is refused)";
    pub const WRONG_CURRENCY_REFUSED: &str = "wrong currency refused";
    pub const CONFLICTING_DUPLICATE_REFUSED: &str = "same id with different postings refused";
    pub const UNKNOWN_ACCOUNT_VOTES_NO: &str = "unknown account votes no";
    pub const DEADLINE_PASSED_VOTES_NO: &str = "prepare past its deadline votes no";
    pub const NO_OVERDRAFT_UNDER_CONCURRENCY: &str = "no overdraft under concurrent prepares";
    pub const SURVIVES_RESTART: &str = "state survives an adapter restart";
    pub const NO_NET_CHANGE: &str = "the kit leaves balances as it found them";
}

/// The two accounts the operator funded for the kit, and the amount it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceFixture {
    /// Must have at least four times `amount_minor` available.
    pub account_a: AccountName,
    pub account_b: AccountName,
    /// At least 2 (the kit sends `amount_minor - 1` to unbalance postings).
    pub amount_minor: i64,
}

impl ConformanceFixture {
    pub fn new(account_a: AccountName, account_b: AccountName) -> Self {
        Self { account_a, account_b, amount_minor: AMOUNT_MINOR_DEFAULT }
    }
}

/// Restarts the adapter under test, for the row that checks its state survives.
#[async_trait::async_trait]
pub trait RestartHook: Send + Sync {
    /// Stops the adapter and starts it again on the same state and address. May return before
    /// it accepts calls: the kit retries unavailable calls for [`RESTART_SETTLE_MS`].
    async fn restart(&self) -> Result<(), String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceRow {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConformanceReport {
    /// What the adapter says it is; `None` if it could not say.
    pub ledger: Option<LedgerDescription>,
    pub rows: Vec<ConformanceRow>,
}

impl ConformanceReport {
    /// Every row passed (and there was at least one).
    pub fn passed(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|row| row.passed)
    }

    pub fn failed(&self) -> impl Iterator<Item = &ConformanceRow> {
        self.rows.iter().filter(|row| !row.passed)
    }

    pub fn row(&self, name: &str) -> Option<&ConformanceRow> {
        self.rows.iter().find(|row| row.name == name)
    }

    fn push(&mut self, name: &str, verdict: Result<String, String>) {
        let (passed, detail) = match verdict {
            Ok(detail) => (true, detail),
            Err(detail) => (false, detail),
        };
        self.rows.push(ConformanceRow { name: name.to_owned(), passed, detail });
    }
}

/// Runs every row against `ledger`; the restart row only when `restart` is given.
pub async fn run(
    ledger: &dyn Ledger,
    fixture: &ConformanceFixture,
    restart: Option<&dyn RestartHook>,
) -> ConformanceReport {
    let mut report = ConformanceReport { ledger: None, rows: Vec::new() };
    let description = match ledger.describe().await {
        Ok(description) => description,
        Err(error) => {
            report.push(rows::FIXTURE, Err(format!("describe failed: {error}")));
            return report;
        }
    };
    report.ledger = Some(description.clone());
    let kit = match Kit::prepare_fixture(ledger, fixture, &description).await {
        Ok(kit) => kit,
        Err(detail) => {
            report.push(rows::FIXTURE, Err(detail));
            return report;
        }
    };
    let start = match kit.snapshot().await {
        Ok(start) => start,
        Err(detail) => {
            report.push(rows::FIXTURE, Err(detail));
            return report;
        }
    };
    report.push(rows::FIXTURE, Ok(format!("{}; amount {}", kit.show(&start), kit.money(kit.amount))));
    report.push(rows::HOLDS_REDUCE_AVAILABILITY, kit.holds_reduce_availability().await);
    report.push(rows::PREPARE_IDEMPOTENT, kit.prepare_idempotent().await);
    report.push(rows::COMMIT_IDEMPOTENT, kit.commit_idempotent().await);
    report.push(rows::ABORT_IDEMPOTENT, kit.abort_idempotent().await);
    report.push(rows::ABORT_AFTER_COMMIT_REFUSED, kit.abort_after_commit_refused().await);
    report.push(rows::COMMIT_AFTER_ABORT_REFUSED, kit.commit_after_abort_refused().await);
    report.push(rows::UNKNOWN_TRANSACTION_REFUSED, kit.unknown_transaction_refused().await);
    report.push(rows::UNBALANCED_POSTINGS_REFUSED, kit.unbalanced_postings_refused().await);
    report.push(rows::POSTINGS_SUM_TO_ZERO, kit.lone_credit_refused().await);
    report.push(rows::WRONG_CURRENCY_REFUSED, kit.wrong_currency_refused().await);
    report.push(rows::CONFLICTING_DUPLICATE_REFUSED, kit.conflicting_duplicate_refused().await);
    report.push(rows::UNKNOWN_ACCOUNT_VOTES_NO, kit.unknown_account_votes_no().await);
    report.push(rows::DEADLINE_PASSED_VOTES_NO, kit.deadline_passed_votes_no().await);
    report.push(rows::NO_OVERDRAFT_UNDER_CONCURRENCY, kit.no_overdraft_under_concurrency().await);
    if let Some(restart) = restart {
        report.push(rows::SURVIVES_RESTART, kit.survives_restart(restart).await);
    }
    report.push(rows::NO_NET_CHANGE, kit.no_net_change(&start).await);
    report
}

/// Balances of the two fixture accounts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    a_balance_minor: i64,
    a_held_minor: i64,
    b_balance_minor: i64,
    b_held_minor: i64,
}

impl Snapshot {
    fn a_available_minor(&self) -> i64 {
        self.a_balance_minor - self.a_held_minor
    }
}

struct Kit<'a> {
    ledger: &'a dyn Ledger,
    a: AccountName,
    b: AccountName,
    currency: Currency,
    amount: i64,
}

fn new_transaction() -> TransactionId {
    PaymentId::generate().into()
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_millis(PREPARE_DEADLINE_MS)
}

/// A ledger call that must succeed for the row to go on.
fn step<T>(what: &str, outcome: Result<T, LedgerError>) -> Result<T, String> {
    outcome.map_err(|error| format!("{what} failed: {error}"))
}

fn expect_yes(what: &str, vote: Result<Vote, LedgerError>) -> Result<(), String> {
    match step(what, vote)? {
        Vote::Yes => Ok(()),
        Vote::No(refusal) => Err(format!("{what} voted no ({}: {})", refusal.code.as_str(), refusal.message)),
    }
}

/// Retries a call while it finds the adapter unavailable, for up to [`RESTART_SETTLE_MS`].
async fn settle<T, F, Attempt>(mut call: F) -> Result<T, LedgerError>
where
    F: FnMut() -> Attempt,
    Attempt: Future<Output = Result<T, LedgerError>>,
{
    let give_up = Instant::now() + Duration::from_millis(RESTART_SETTLE_MS);
    loop {
        match call().await {
            Err(LedgerError::Unavailable(_)) if Instant::now() < give_up => {
                tokio::time::sleep(Duration::from_millis(RESTART_POLL_MS)).await;
            }
            outcome => return outcome,
        }
    }
}

impl<'a> Kit<'a> {
    async fn prepare_fixture(
        ledger: &'a dyn Ledger,
        fixture: &ConformanceFixture,
        description: &LedgerDescription,
    ) -> Result<Kit<'a>, String> {
        if fixture.account_a == fixture.account_b {
            return Err("accounts A and B must differ".into());
        }
        if !(2..Money::MINOR_UNITS_MAX / 4).contains(&fixture.amount_minor) {
            return Err(format!("the amount must be 2..{} minor units", Money::MINOR_UNITS_MAX / 4));
        }
        let kit = Kit {
            ledger,
            a: fixture.account_a.clone(),
            b: fixture.account_b.clone(),
            currency: description.currency,
            amount: fixture.amount_minor,
        };
        let a = step("balance of A", ledger.balance(&kit.a).await)?;
        step("balance of B", ledger.balance(&kit.b).await)?;
        if a.available_minor() < 4 * kit.amount {
            return Err(format!(
                "A ({}) has {} available; the kit needs at least {}",
                kit.a,
                kit.money(a.available_minor()),
                kit.money(4 * kit.amount)
            ));
        }
        Ok(kit)
    }

    fn money(&self, minor_units: i64) -> String {
        format!("{} {}", format_minor_units(minor_units, self.currency), self.currency)
    }

    fn show(&self, snapshot: &Snapshot) -> String {
        format!(
            "A {} (held {}), B {} (held {})",
            self.money(snapshot.a_balance_minor),
            self.money(snapshot.a_held_minor),
            self.money(snapshot.b_balance_minor),
            self.money(snapshot.b_held_minor)
        )
    }

    async fn snapshot(&self) -> Result<Snapshot, String> {
        let a: AccountBalance = step("balance of A", self.ledger.balance(&self.a).await)?;
        let b: AccountBalance = step("balance of B", self.ledger.balance(&self.b).await)?;
        Ok(Snapshot {
            a_balance_minor: a.balance_minor,
            a_held_minor: a.held_minor,
            b_balance_minor: b.balance_minor,
            b_held_minor: b.held_minor,
        })
    }

    /// The snapshot now must equal `before`: the call just made changed nothing.
    async fn unchanged(&self, before: &Snapshot, after_what: &str) -> Result<(), String> {
        let after = self.snapshot().await?;
        if after != *before {
            return Err(format!("{after_what} changed balances: {} became {}", self.show(before), self.show(&after)));
        }
        Ok(())
    }

    fn transfer(&self, from: &AccountName, to: &AccountName, amount_minor: i64) -> Vec<Posting> {
        vec![
            Posting { account: from.clone(), currency: self.currency, amount_minor: -amount_minor },
            Posting { account: to.clone(), currency: self.currency, amount_minor },
        ]
    }

    fn a_to_b(&self) -> Vec<Posting> {
        self.transfer(&self.a, &self.b, self.amount)
    }

    async fn expect_state(&self, transaction: TransactionId, expected: TransactionState) -> Result<(), String> {
        let state = step("status", self.ledger.status(transaction).await)?;
        if state != expected {
            return Err(format!("status of {transaction} is {state:?}, expected {expected:?}"));
        }
        Ok(())
    }

    /// Best-effort release of a hold the kit placed, whatever the row found.
    async fn abort_quietly(&self, transaction: TransactionId) {
        let _cleanup = self.ledger.abort(transaction).await;
    }

    /// Moves `amount` from B back to A, undoing a committed A → B.
    async fn move_back(&self) -> Result<(), String> {
        let back = new_transaction();
        expect_yes(
            "prepare of B → A (returning the kit's money)",
            self.ledger.prepare(back, &self.transfer(&self.b, &self.a, self.amount), deadline()).await,
        )?;
        step("commit of B → A (returning the kit's money)", self.ledger.commit(back).await)
    }

    async fn holds_reduce_availability(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let verdict = async {
            expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
            let after = self.snapshot().await?;
            let expected = Snapshot { a_held_minor: before.a_held_minor + self.amount, ..before };
            if after != expected {
                return Err(format!(
                    "after a prepare of {}: {}, expected {}",
                    self.money(self.amount),
                    self.show(&after),
                    self.show(&expected)
                ));
            }
            self.expect_state(transaction, TransactionState::Prepared).await?;
            Ok(format!(
                "A's available went from {} to {}; no balance moved",
                self.money(before.a_available_minor()),
                self.money(after.a_available_minor())
            ))
        }
        .await;
        self.abort_quietly(transaction).await;
        verdict
    }

    async fn prepare_idempotent(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let held = new_transaction();
        let refused = new_transaction();
        let verdict = async {
            expect_yes("first prepare", self.ledger.prepare(held, &self.a_to_b(), deadline()).await)?;
            expect_yes("repeated prepare", self.ledger.prepare(held, &self.a_to_b(), deadline()).await)?;
            let after = self.snapshot().await?;
            if after.a_held_minor != before.a_held_minor + self.amount {
                return Err(format!(
                    "two prepares of one transaction hold {} on A; one prepare should hold {}",
                    self.money(after.a_held_minor - before.a_held_minor),
                    self.money(self.amount)
                ));
            }
            // A refusal must repeat too: the coordinator may resend a prepare whose no was lost.
            let too_much = before.a_available_minor().saturating_add(1).min(Money::MINOR_UNITS_MAX);
            let overdraft = self.transfer(&self.a, &self.b, too_much);
            let first = step("prepare of more than A has", self.ledger.prepare(refused, &overdraft, deadline()).await)?;
            let Vote::No(first_refusal) = &first else {
                return Err(format!(
                    "a prepare of {} from A, which has less available, voted yes",
                    self.money(too_much)
                ));
            };
            let second = step("repeated refused prepare", self.ledger.prepare(refused, &overdraft, deadline()).await)?;
            match &second {
                Vote::No(refusal) if refusal.code == first_refusal.code => {}
                other => return Err(format!("a refused prepare, repeated, answered {other:?}")),
            }
            let after_refusals = self.snapshot().await?;
            if after_refusals != after {
                return Err(format!("refused prepares changed balances: {}", self.show(&after_refusals)));
            }
            Ok(format!("yes twice, {} held once; no ({}) twice", self.money(self.amount), first_refusal.code.as_str()))
        }
        .await;
        self.abort_quietly(held).await;
        self.abort_quietly(refused).await;
        verdict
    }

    async fn commit_idempotent(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
        let verdict = async {
            step("first commit", self.ledger.commit(transaction).await)?;
            step("repeated commit", self.ledger.commit(transaction).await)?;
            let after = self.snapshot().await?;
            let expected = Snapshot {
                a_balance_minor: before.a_balance_minor - self.amount,
                b_balance_minor: before.b_balance_minor + self.amount,
                ..before
            };
            if after != expected {
                return Err(format!("after commit twice: {}, expected {}", self.show(&after), self.show(&expected)));
            }
            self.expect_state(transaction, TransactionState::Committed).await?;
            Ok(format!("{} moved A → B once; A's hold released", self.money(self.amount)))
        }
        .await;
        match self.ledger.status(transaction).await {
            Ok(TransactionState::Committed) => self.move_back().await.and(verdict),
            _ => {
                self.abort_quietly(transaction).await;
                verdict
            }
        }
    }

    async fn abort_idempotent(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let verdict = async {
            expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
            step("first abort", self.ledger.abort(transaction).await)?;
            step("repeated abort", self.ledger.abort(transaction).await)?;
            self.unchanged(&before, "prepare then abort twice").await?;
            self.expect_state(transaction, TransactionState::Aborted).await?;
            Ok(format!("A's {} hold released once; nothing moved", self.money(self.amount)))
        }
        .await;
        self.abort_quietly(transaction).await;
        verdict
    }

    async fn abort_after_commit_refused(&self) -> Result<String, String> {
        let transaction = new_transaction();
        expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
        if let Err(error) = self.ledger.commit(transaction).await {
            self.abort_quietly(transaction).await;
            return Err(format!("commit failed: {error}"));
        }
        let verdict = async {
            let committed = self.snapshot().await?;
            match self.ledger.abort(transaction).await {
                Err(LedgerError::AlreadyCommitted(_)) => {}
                Ok(()) => return Err("abort of a committed transaction succeeded".into()),
                Err(other) => {
                    return Err(format!(
                        "abort of a committed transaction failed with {other}, expected ALREADY_COMMITTED"
                    ));
                }
            }
            self.unchanged(&committed, "the refused abort").await?;
            self.expect_state(transaction, TransactionState::Committed).await?;
            Ok("ALREADY_COMMITTED; the commit stands".into())
        }
        .await;
        self.move_back().await.and(verdict)
    }

    async fn commit_after_abort_refused(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let verdict = async {
            expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
            step("abort", self.ledger.abort(transaction).await)?;
            match self.ledger.commit(transaction).await {
                Err(LedgerError::AlreadyAborted(_)) => {}
                Ok(()) => return Err("commit of an aborted transaction succeeded".into()),
                Err(other) => {
                    return Err(format!(
                        "commit of an aborted transaction failed with {other}, expected ALREADY_ABORTED"
                    ));
                }
            }
            self.unchanged(&before, "prepare, abort and the refused commit").await?;
            self.expect_state(transaction, TransactionState::Aborted).await?;
            Ok("ALREADY_ABORTED; nothing moved".into())
        }
        .await;
        if let Ok(TransactionState::Committed) = self.ledger.status(transaction).await {
            return self.move_back().await.and(verdict);
        }
        self.abort_quietly(transaction).await;
        verdict
    }

    async fn unknown_transaction_refused(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        match self.ledger.commit(transaction).await {
            Err(LedgerError::UnknownTransaction(_)) => {}
            other => {
                return Err(format!(
                    "commit of a transaction never prepared answered {other:?}, expected UNKNOWN_TRANSACTION"
                ));
            }
        }
        match self.ledger.abort(transaction).await {
            Err(LedgerError::UnknownTransaction(_)) => {}
            other => {
                return Err(format!(
                    "abort of a transaction never prepared answered {other:?}, expected UNKNOWN_TRANSACTION"
                ));
            }
        }
        self.expect_state(transaction, TransactionState::Unknown).await?;
        self.unchanged(&before, "commit and abort of an unknown transaction").await?;
        Ok("UNKNOWN_TRANSACTION for both; status unknown; nothing changed".into())
    }

    /// A prepare that must be refused as invalid postings, changing nothing and leaving no record.
    async fn refused_as_invalid(&self, postings: &[Posting], what: &str) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let outcome = self.ledger.prepare(transaction, postings, deadline()).await;
        self.abort_quietly(transaction).await;
        match outcome {
            Err(LedgerError::InvalidPostings(reason)) => {
                self.expect_state(transaction, TransactionState::Unknown).await?;
                self.unchanged(&before, what).await?;
                Ok(format!("INVALID_POSTINGS: {reason}"))
            }
            other => Err(format!("{what} answered {other:?}, expected INVALID_POSTINGS")),
        }
    }

    async fn unbalanced_postings_refused(&self) -> Result<String, String> {
        let mut postings = self.a_to_b();
        postings[1].amount_minor -= 1;
        self.refused_as_invalid(&postings, "a prepare whose postings sum to -1").await
    }

    async fn lone_credit_refused(&self) -> Result<String, String> {
        let postings = vec![Posting { account: self.b.clone(), currency: self.currency, amount_minor: self.amount }];
        self.refused_as_invalid(&postings, "a prepare of a lone credit (money from nowhere)").await
    }

    async fn wrong_currency_refused(&self) -> Result<String, String> {
        let other = ["USD", "EUR"]
            .into_iter()
            .filter_map(|code| Currency::from_code(code).ok())
            .find(|currency| *currency != self.currency)
            .ok_or("no other currency to try")?;
        let mut postings = self.a_to_b();
        for posting in &mut postings {
            posting.currency = other;
        }
        self.refused_as_invalid(&postings, &format!("a prepare in {other}")).await
    }

    async fn conflicting_duplicate_refused(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let verdict = async {
            expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
            let different = self.transfer(&self.a, &self.b, self.amount + 1);
            match self.ledger.prepare(transaction, &different, deadline()).await {
                Err(LedgerError::Conflict(_)) => {}
                other => return Err(format!("the same id with other postings answered {other:?}, expected CONFLICT")),
            }
            let after = self.snapshot().await?;
            if after.a_held_minor != before.a_held_minor + self.amount {
                return Err(format!(
                    "A holds {} more, expected {} (the first prepare only)",
                    self.money(after.a_held_minor - before.a_held_minor),
                    self.money(self.amount)
                ));
            }
            self.expect_state(transaction, TransactionState::Prepared).await?;
            Ok("CONFLICT; the first prepare stands, holding once".into())
        }
        .await;
        self.abort_quietly(transaction).await;
        verdict
    }

    async fn unknown_account_votes_no(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let absent = AccountName::new(format!("conformance.absent.{}", new_transaction()))
            .map_err(|error| format!("cannot name an absent account: {error}"))?;
        let outcome = self.ledger.prepare(transaction, &self.transfer(&self.a, &absent, self.amount), deadline()).await;
        self.abort_quietly(transaction).await;
        match outcome {
            Ok(Vote::No(refusal)) if refusal.code == RefusalCode::UnknownAccount => {
                self.unchanged(&before, "the refused prepare").await?;
                Ok(format!("no (UNKNOWN_ACCOUNT): {}", refusal.message))
            }
            other => {
                Err(format!("a prepare crediting {absent} answered {other:?}, expected a no vote (UNKNOWN_ACCOUNT)"))
            }
        }
    }

    async fn deadline_passed_votes_no(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        let passed = SystemTime::now() - Duration::from_secs(1);
        let outcome = self.ledger.prepare(transaction, &self.a_to_b(), passed).await;
        let state = self.ledger.status(transaction).await;
        self.abort_quietly(transaction).await;
        match outcome {
            Ok(Vote::No(refusal)) if refusal.code == RefusalCode::DeadlinePassed => {
                if let Ok(TransactionState::Prepared) = state {
                    return Err("voted no, yet the transaction is prepared".into());
                }
                self.unchanged(&before, "the late prepare").await?;
                Ok(format!("no (DEADLINE_PASSED): {}", refusal.message))
            }
            other => {
                Err(format!("a prepare 1 s past its deadline answered {other:?}, expected a no vote (DEADLINE_PASSED)"))
            }
        }
    }

    async fn no_overdraft_under_concurrency(&self) -> Result<String, String> {
        let before = self.snapshot().await?;
        let available = before.a_available_minor();
        // Each asks for a bit more than a quarter, so at most three fit, and all of them together
        // ask for about twice what is there.
        let each = (available / 4 + 1).min(Money::MINOR_UNITS_MAX);
        let requested = each.saturating_mul(i64::try_from(CONCURRENT_PREPARES).unwrap_or(i64::MAX));
        if requested <= available {
            return Err(format!("A has {} available: too much for the kit to exhaust", self.money(available)));
        }
        let postings = self.transfer(&self.a, &self.b, each);
        let transactions: Vec<TransactionId> = (0..CONCURRENT_PREPARES).map(|_| new_transaction()).collect();
        let votes =
            join_all(transactions.iter().map(|transaction| self.ledger.prepare(*transaction, &postings, deadline())))
                .await;
        let during = self.snapshot().await;
        for transaction in &transactions {
            self.abort_quietly(*transaction).await;
        }
        let during = during?;
        let mut yes = 0i64;
        let mut no = 0usize;
        for vote in votes {
            match vote {
                Ok(Vote::Yes) => yes += 1,
                Ok(Vote::No(_)) => no += 1,
                Err(error) => return Err(format!("a concurrent prepare failed: {error}")),
            }
        }
        let held = during.a_held_minor - before.a_held_minor;
        if held != yes * each {
            return Err(format!(
                "{yes} prepares voted yes for {} each, but A holds {} more",
                self.money(each),
                self.money(held)
            ));
        }
        if held > available || during.a_available_minor() < 0 {
            return Err(format!(
                "{yes} yes votes hold {} of A's {} available: overdrawn",
                self.money(held),
                self.money(available)
            ));
        }
        if yes == 0 {
            return Err(format!("every prepare voted no, though {} was available", self.money(available)));
        }
        self.unchanged(&before, "aborting every concurrent prepare").await?;
        Ok(format!(
            "{CONCURRENT_PREPARES} prepares of {} against {} available: {yes} yes, {no} no; all released",
            self.money(each),
            self.money(available)
        ))
    }

    async fn survives_restart(&self, restart: &dyn RestartHook) -> Result<String, String> {
        let before = self.snapshot().await?;
        let transaction = new_transaction();
        expect_yes("prepare", self.ledger.prepare(transaction, &self.a_to_b(), deadline()).await)?;
        if let Err(reason) = restart.restart().await {
            let _cleanup = settle(|| self.ledger.abort(transaction)).await;
            return Err(format!("the restart failed: {reason}"));
        }
        let verdict = async {
            let state = step("status after the restart", settle(|| self.ledger.status(transaction)).await)?;
            if state != TransactionState::Prepared {
                return Err(format!("after the restart the prepared transaction is {state:?}"));
            }
            let a = step("balance of A after the restart", settle(|| self.ledger.balance(&self.a)).await)?;
            if a.held_minor != before.a_held_minor + self.amount {
                return Err(format!(
                    "after the restart A holds {}, expected {}",
                    self.money(a.held_minor),
                    self.money(before.a_held_minor + self.amount)
                ));
            }
            step("commit after the restart", settle(|| self.ledger.commit(transaction)).await)?;
            self.expect_state(transaction, TransactionState::Committed).await?;
            Ok(format!("still prepared and holding {} after the restart; then committed", self.money(self.amount)))
        }
        .await;
        match settle(|| self.ledger.status(transaction)).await {
            Ok(TransactionState::Committed) => self.move_back().await.and(verdict),
            _ => {
                let _cleanup = settle(|| self.ledger.abort(transaction)).await;
                verdict
            }
        }
    }

    async fn no_net_change(&self, start: &Snapshot) -> Result<String, String> {
        self.unchanged(start, "the kit's run").await?;
        Ok(self.show(start))
    }
}

#[cfg(test)]
mod tests;
