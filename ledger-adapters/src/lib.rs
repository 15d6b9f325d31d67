//! The ledger side of Corridor: the two-phase [`Ledger`] trait every central-bank ledger adapter
//! implements; the reference ledgers ([`InMemoryLedger`], durable with an operation log, and
//! [`PostgresLedger`]); [`remote`], the ledger protocol over gRPC (a server for any ledger, the
//! batching client the router uses, in-doubt resolution); and [`conformance`], the kit that tells
//! an adapter's author whether it keeps the rules.
//!
//! Vocabulary: the coordinator speaks prepare / commit / abort; inside a ledger, a prepare places
//! holds, a commit posts and an abort voids them. This crate knows nothing of payments, FX or
//! compliance: it moves minor units between accounts of one currency, atomically per transaction.

pub mod conformance;
mod ledger;
mod memory;
mod postgres;
pub mod remote;

pub use ledger::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, Refusal, RefusalCode, TransactionId,
    TransactionState, Vote, check_postings,
};
pub use memory::{InMemoryLedger, LedgerAudit, LedgerLogError, OPENING_ACCOUNTS_MAX, ReplaySummary};
pub use postgres::PostgresLedger;
