//! The two-phase ledger protocol as a Rust trait, and its types.
//!
//! Rules every implementation keeps (the conformance kit checks them):
//! - Every call is idempotent per transaction id: a repeated prepare returns the first vote, a
//!   repeated commit or abort succeeds again without effect.
//! - A prepare either places holds for all of its debits and votes yes, or holds nothing and votes
//!   no with a reason. Held funds are unavailable to every other transaction.
//! - A ledger that voted yes never releases the holds on its own: only commit or abort does.
//! - Commit after abort and abort after commit are refused.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use corridor_schemas::{AccountName, Currency, Jurisdiction, LedgerId, Money, PaymentId};

/// Identifies one transaction on a ledger: the id of the payment it belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(PaymentId);

impl TransactionId {
    pub fn payment_id(self) -> PaymentId {
        self.0
    }
}

impl From<PaymentId> for TransactionId {
    fn from(payment_id: PaymentId) -> Self {
        Self(payment_id)
    }
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One signed movement on one account: debits negative, credits positive, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Posting {
    pub account: AccountName,
    pub currency: Currency,
    pub amount_minor: i64,
}

impl Posting {
    pub fn debit(account: AccountName, money: Money) -> Self {
        Self { account, currency: money.currency(), amount_minor: -money.minor_units() }
    }

    pub fn credit(account: AccountName, money: Money) -> Self {
        Self { account, currency: money.currency(), amount_minor: money.minor_units() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerDescription {
    pub ledger: LedgerId,
    pub currency: Currency,
    pub jurisdiction: Jurisdiction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalCode {
    InsufficientFunds,
    UnknownAccount,
    /// The prepare arrived after its deadline: the coordinator has given up on it.
    DeadlinePassed,
}

impl RefusalCode {
    /// The stable, machine-readable form used on the wire and in receipts.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::InsufficientFunds => "INSUFFICIENT_FUNDS",
            RefusalCode::UnknownAccount => "UNKNOWN_ACCOUNT",
            RefusalCode::DeadlinePassed => "DEADLINE_PASSED",
        }
    }
}

/// Why a ledger voted no.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vote {
    /// Holds are placed; the ledger will do whatever the coordinator decides.
    Yes,
    /// Nothing is held.
    No(Refusal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// The ledger has no record of the transaction.
    Unknown,
    Prepared,
    Committed,
    Aborted,
    /// The ledger voted no; nothing is held.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalance {
    pub account: AccountName,
    pub currency: Currency,
    pub balance_minor: i64,
    pub held_minor: i64,
}

impl AccountBalance {
    pub fn available_minor(&self) -> i64 {
        self.balance_minor - self.held_minor
    }
}

/// A call the ledger refused, or could not answer. Business refusals of a prepare are not errors:
/// they are [`Vote::No`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("transaction {0} is unknown to this ledger")]
    UnknownTransaction(TransactionId),
    #[error("transaction {0} was already aborted")]
    AlreadyAborted(TransactionId),
    #[error("transaction {0} was already committed")]
    AlreadyCommitted(TransactionId),
    #[error("transaction {0} was refused at prepare and holds nothing to commit")]
    Refused(TransactionId),
    #[error("transaction {0} was already prepared with different postings")]
    Conflict(TransactionId),
    #[error("invalid postings: {0}")]
    InvalidPostings(String),
    #[error("account {0} does not exist on this ledger")]
    UnknownAccount(AccountName),
    /// The call may or may not have taken effect: the outcome is in doubt, not failed.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
}

/// Most postings one transaction may carry: a payment needs at most payer, payee, provider and fee.
pub const POSTINGS_PER_TRANSACTION_MAX: usize = 16;

/// Checks what any ledger must refuse before looking at balances: an empty or oversized set,
/// zero or out-of-range amounts, another currency, postings that do not sum to zero.
pub fn check_postings(postings: &[Posting], currency: Currency) -> Result<(), LedgerError> {
    if postings.is_empty() {
        return Err(LedgerError::InvalidPostings("a transaction needs at least one posting".into()));
    }
    if postings.len() > POSTINGS_PER_TRANSACTION_MAX {
        return Err(LedgerError::InvalidPostings(format!(
            "{} postings; at most {POSTINGS_PER_TRANSACTION_MAX} per transaction",
            postings.len()
        )));
    }
    let mut sum_minor: i64 = 0;
    for posting in postings {
        if posting.currency != currency {
            return Err(LedgerError::InvalidPostings(format!(
                "posting to {} is in {}; this ledger issues {currency}",
                posting.account, posting.currency
            )));
        }
        if posting.amount_minor == 0 || posting.amount_minor.unsigned_abs() > Money::MINOR_UNITS_MAX.unsigned_abs() {
            return Err(LedgerError::InvalidPostings(format!(
                "posting to {} has amount {} minor units; must be non-zero and within ±{}",
                posting.account,
                posting.amount_minor,
                Money::MINOR_UNITS_MAX
            )));
        }
        // Cannot overflow: at most 16 postings of at most 10^15 each.
        sum_minor += posting.amount_minor;
    }
    if sum_minor != 0 {
        return Err(LedgerError::InvalidPostings(format!("postings sum to {sum_minor} minor units, not zero")));
    }
    Ok(())
}

/// Net movement per account of a set of postings (an account may appear more than once).
pub(crate) fn net_by_account(postings: &[Posting]) -> BTreeMap<&AccountName, i64> {
    let mut net: BTreeMap<&AccountName, i64> = BTreeMap::new();
    for posting in postings {
        *net.entry(&posting.account).or_default() += posting.amount_minor;
    }
    net
}

/// A central-bank ledger, as the coordinator sees it. See the module docs for the rules.
#[async_trait::async_trait]
pub trait Ledger: Send + Sync + 'static {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError>;

    /// Answers when the ledger is reachable and serving now (for the router's readiness). An
    /// in-process ledger always is; an adapter behind a network or a database asks it.
    async fn probe(&self) -> Result<(), LedgerError> {
        self.describe().await.map(|_| ())
    }

    /// Places holds for the debits of `postings` and votes. Postings must be in the ledger's
    /// currency and sum to zero, else the call is refused with [`LedgerError::InvalidPostings`].
    /// A ledger reached after `deadline` (a remote one, over a slow network) votes no with
    /// [`RefusalCode::DeadlinePassed`]; an in-process ledger answers at once and may ignore it.
    async fn prepare(
        &self,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError>;

    /// Posts a prepared transaction and releases its holds.
    async fn commit(&self, transaction: TransactionId) -> Result<(), LedgerError>;

    /// Releases the holds of a prepared transaction. Aborting a refused one is a no-op.
    async fn abort(&self, transaction: TransactionId) -> Result<(), LedgerError>;

    async fn status(&self, transaction: TransactionId) -> Result<TransactionState, LedgerError>;

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError>;

    /// Transactions prepared before `prepared_before` and still undecided: the ones whose outcome
    /// a ledger node asks the coordinator for (in-doubt resolution). Oldest first, at most `limit`.
    async fn in_doubt(&self, prepared_before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError>;
}
