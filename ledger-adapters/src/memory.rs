//! The in-memory reference ledger: the ledger of the embedded default, of the demo and of tests.
//!
//! It keeps everything in one mutex-guarded map, so its state is lost when the process ends;
//! durability is the PostgreSQL ledger's job. Unlike the trait, it can also issue money (a central
//! bank minting into an account), and it can audit itself: every balance non-negative, holds within
//! balances, and the sum of all balances equal to what was issued.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use corridor_schemas::money::format_minor_units;
use corridor_schemas::{AccountName, Currency};

use crate::ledger::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, Refusal, RefusalCode, TransactionId,
    TransactionState, Vote, check_postings, net_by_account,
};

pub struct InMemoryLedger {
    description: LedgerDescription,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    accounts: HashMap<AccountName, Account>,
    transactions: HashMap<TransactionId, Transaction>,
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

impl InMemoryLedger {
    pub fn new(description: LedgerDescription) -> Self {
        Self { description, state: Mutex::new(State::default()) }
    }

    pub fn description(&self) -> &LedgerDescription {
        &self.description
    }

    pub fn currency(&self) -> Currency {
        self.description.currency
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a panic mid-update: an invariant broke, so stop loudly.
        self.state.lock().expect("ledger state lock poisoned by an earlier panic")
    }

    /// Opens an empty account; opening an existing one changes nothing.
    pub fn open_account(&self, account: AccountName) {
        self.lock().accounts.entry(account).or_default();
    }

    /// Issues new money into an account (opening it if needed), as the central bank does.
    pub fn issue(&self, account: AccountName, amount_minor: i64) -> Result<(), LedgerError> {
        if amount_minor <= 0 {
            return Err(LedgerError::InvalidPostings(format!("issuance of {amount_minor} minor units")));
        }
        let mut state = self.lock();
        let entry = state.accounts.entry(account.clone()).or_default();
        entry.balance_minor = entry
            .balance_minor
            .checked_add(amount_minor)
            .ok_or_else(|| LedgerError::InvalidPostings(format!("issuance would overflow account {account}")))?;
        state.issued_minor += i128::from(amount_minor);
        Ok(())
    }

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

    fn refuse(state: &mut State, transaction: TransactionId, postings: &[Posting], refusal: Refusal) -> Vote {
        state.transactions.insert(
            transaction,
            Transaction {
                postings: postings.to_vec(),
                state: TransactionState::Refused,
                refusal: Some(refusal.clone()),
                prepared_at: SystemTime::now(),
            },
        );
        Vote::No(refusal)
    }
}

#[async_trait::async_trait]
impl Ledger for InMemoryLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        Ok(self.description.clone())
    }

    /// Answers at once, in process: the deadline cannot have passed in between, so it is not checked.
    async fn prepare(
        &self,
        transaction: TransactionId,
        postings: &[Posting],
        _deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        check_postings(postings, self.description.currency)?;
        let mut state = self.lock();
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
                        .unwrap_or(Refusal { code: RefusalCode::UnknownAccount, message: "refused".into() }),
                )),
                TransactionState::Committed => Err(LedgerError::AlreadyCommitted(transaction)),
                TransactionState::Aborted => Err(LedgerError::AlreadyAborted(transaction)),
                TransactionState::Unknown => unreachable!("unknown transactions are never stored"),
            };
        }
        let net = net_by_account(postings);
        if let Some(missing) = net.keys().find(|account| !state.accounts.contains_key(**account)) {
            let refusal = Refusal {
                code: RefusalCode::UnknownAccount,
                message: format!("account {} does not exist on ledger {}", missing, self.description.ledger),
            };
            return Ok(Self::refuse(&mut state, transaction, postings, refusal));
        }
        for (account, net_minor) in net.iter().filter(|(_, net)| **net < 0) {
            let held = state.accounts[*account];
            let available_minor = held.balance_minor - held.held_minor;
            if available_minor < -net_minor {
                let currency = self.description.currency;
                let refusal = Refusal {
                    code: RefusalCode::InsufficientFunds,
                    message: format!(
                        "account {account} has {} {currency} available, needs {}",
                        format_minor_units(available_minor, currency),
                        format_minor_units(-net_minor, currency),
                    ),
                };
                return Ok(Self::refuse(&mut state, transaction, postings, refusal));
            }
        }
        for (account, net_minor) in net.iter().filter(|(_, net)| **net < 0) {
            if let Some(entry) = state.accounts.get_mut(*account) {
                entry.held_minor -= net_minor;
            }
        }
        state.transactions.insert(
            transaction,
            Transaction {
                postings: postings.to_vec(),
                state: TransactionState::Prepared,
                refusal: None,
                prepared_at: SystemTime::now(),
            },
        );
        Ok(Vote::Yes)
    }

    async fn commit(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        let mut state = self.lock();
        let State { accounts, transactions, .. } = &mut *state;
        let record = transactions.get_mut(&transaction).ok_or(LedgerError::UnknownTransaction(transaction))?;
        match record.state {
            TransactionState::Committed => return Ok(()),
            TransactionState::Aborted => return Err(LedgerError::AlreadyAborted(transaction)),
            TransactionState::Refused => return Err(LedgerError::Refused(transaction)),
            TransactionState::Prepared | TransactionState::Unknown => {}
        }
        for (account, net_minor) in net_by_account(&record.postings) {
            let entry = accounts.get_mut(account).expect("a prepared transaction's accounts exist");
            entry.balance_minor += net_minor;
            if net_minor < 0 {
                entry.held_minor += net_minor;
            }
            assert!(
                entry.balance_minor >= entry.held_minor && entry.held_minor >= 0,
                "commit of {transaction} overdrew {account}: the prepare's hold did not cover it"
            );
        }
        record.state = TransactionState::Committed;
        Ok(())
    }

    async fn abort(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        let mut state = self.lock();
        let State { accounts, transactions, .. } = &mut *state;
        let record = transactions.get_mut(&transaction).ok_or(LedgerError::UnknownTransaction(transaction))?;
        match record.state {
            TransactionState::Aborted | TransactionState::Refused => return Ok(()),
            TransactionState::Committed => return Err(LedgerError::AlreadyCommitted(transaction)),
            TransactionState::Prepared | TransactionState::Unknown => {}
        }
        for (account, net_minor) in net_by_account(&record.postings) {
            if net_minor < 0 {
                let entry = accounts.get_mut(account).expect("a prepared transaction's accounts exist");
                entry.held_minor += net_minor;
                assert!(entry.held_minor >= 0, "abort of {transaction} released more than {account} held");
            }
        }
        record.state = TransactionState::Aborted;
        Ok(())
    }

    async fn status(&self, transaction: TransactionId) -> Result<TransactionState, LedgerError> {
        Ok(self.lock().transactions.get(&transaction).map_or(TransactionState::Unknown, |record| record.state))
    }

    async fn in_doubt(&self, prepared_before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        let state = self.lock();
        let mut in_doubt: Vec<(SystemTime, TransactionId)> = state
            .transactions
            .iter()
            .filter(|(_, record)| record.state == TransactionState::Prepared && record.prepared_at < prepared_before)
            .map(|(id, record)| (record.prepared_at, *id))
            .collect();
        in_doubt.sort();
        Ok(in_doubt.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        let state = self.lock();
        let entry = state.accounts.get(account).ok_or_else(|| LedgerError::UnknownAccount(account.clone()))?;
        Ok(AccountBalance {
            account: account.clone(),
            currency: self.description.currency,
            balance_minor: entry.balance_minor,
            held_minor: entry.held_minor,
        })
    }
}

#[cfg(test)]
mod tests;
