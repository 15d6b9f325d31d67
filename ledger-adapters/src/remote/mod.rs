//! The ledger protocol over gRPC (`corridor.v1.LedgerAdapter`, in `schemas/proto/corridor/v1/ledger.proto`):
//! [`LedgerAdapterService`] serves any [`Ledger`](crate::Ledger) to the network,
//! [`RemoteLedger`] is a [`Ledger`](crate::Ledger) that calls such a service, and
//! [`InDoubtResolver`] lets a ledger node ask the coordinator what became of transactions it has
//! held for too long.
//!
//! This module is the crate's only edge to the wire: everything else works on domain types.
//!
//! Conventions both sides keep, beyond what the .proto says:
//! - Calls are batches of at most [`BATCH_ITEMS_MAX`] items, answered one result per item, in
//!   order. One item's failure is that item's result, never the call's: the client coalesces the
//!   transactions of unrelated payments into one call.
//! - A failed item carries a stable error code (see [`ERROR_CODES`]) in
//!   `TransactionResult.error_code`, or, in a prepare, in `Vote.reason_code` of a vote whose kind
//!   is `VOTE_KIND_UNSPECIFIED` (no vote was cast: the call failed for that item).
//! - A message that cannot be read at all (an id that is not a UUID v7, an account name or a
//!   currency code that is not well formed, too many items) is refused as a whole with
//!   `INVALID_ARGUMENT`, naming the field, and changes nothing.
//!
//! Not here (yet): TLS and authentication of the router to the adapter.

mod client;
mod convert;
mod in_doubt;
mod server;
pub mod trace;

pub use client::{
    BATCH_CALLS_IN_FLIGHT_MAX, CALL_TIMEOUT_MS_DEFAULT, CONNECT_TIMEOUT_MS, QUEUE_ITEMS_MAX, RemoteLedger,
    RemoteLedgerError, RemoteLedgerSettings, WAIT_TIMEOUT_MS_DEFAULT,
};
pub use convert::{ERROR_CODES, PROTOCOL};
pub use in_doubt::{
    IN_DOUBT_AGE_MIN_MS, IN_DOUBT_BATCH_MAX, IN_DOUBT_SCAN_INTERVAL_MS, InDoubtError, InDoubtResolver,
    InDoubtResolverSettings, RESOLVE_CALL_TIMEOUT_MS, ResolveRound, resolve_in_doubt_once,
};
pub use server::{LedgerAdapterService, REQUEST_BYTES_MAX};

/// Most items (transactions) one Prepare, Commit, Abort or Status call may carry. Large enough
/// that coalescing pays off under load, small enough that one call stays well under
/// [`REQUEST_BYTES_MAX`] (256 prepares of 16 postings are about 600 KiB).
pub const BATCH_ITEMS_MAX: usize = 256;

#[cfg(test)]
mod tests;
