//! Completing what a crash (or an unreachable ledger) left half done.
//!
//! At start, before the API opens, [`recover`] reads the journal:
//! - a payment decided COMMIT but not finished is committed on every ledger (re-driven until each
//!   acknowledges) and its receipt becomes SETTLED;
//! - a payment begun but undecided is decided ABORT (through the journal, so a concurrent
//!   ResolveTransaction gets the same answer) and aborted on every ledger that may hold it; its
//!   receipt becomes FAILED with `ABORTED_IN_RECOVERY`;
//! - a receipt still PENDING with no journal entry was interrupted before any ledger was asked
//!   anything; it becomes FAILED with `INTERRUPTED`, nothing having been held. A HELD receipt
//!   keeps waiting for its review.
//!
//! A decision that cannot be delivered now (the ledger is down) is handed to [`redrive`], a
//! background task that retries until every ledger acknowledges.
//!
//! **Several routers** (replicas sharing PostgreSQL) each own the journal entries they begin,
//! under a lease in the database ([`crate::storage::Journal::take_over`]). Recovery only ever
//! completes entries taken over from an owner that is gone, never another live router's
//! payments in flight; [`spawn_takeover`] keeps doing so while the router serves, so a replica
//! that dies has its payments completed by the others within a few seconds. A replica that is
//! only slow, not dead, is safe too: the journal's decision is first-writer-wins and every ledger
//! call idempotent, so the two can only agree.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_ledger_adapters::TransactionId;
use corridor_schemas::PaymentId;
use corridor_schemas::wire::v1 as wire;

use crate::feed_writer::FeedWriter;
use crate::payment::{Leg, LegState, legs_from_wire};
use crate::settlement::{Coordinator, Decision};
use crate::storage::{Decision as JournalDecision, Storage, StorageError};

/// Wait between two background deliveries of a decision to a ledger that is down.
pub const REDRIVE_INTERVAL: Duration = Duration::from_secs(2);
/// How often a serving router looks for payments of routers that are gone.
pub const TAKEOVER_INTERVAL: Duration = Duration::from_secs(1);
/// Most journal entries taken over at once.
pub const TAKEOVER_BATCH_MAX: usize = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    pub commits_completed: usize,
    pub aborted: usize,
    pub interrupted: usize,
    /// Decisions handed to the background because a ledger did not acknowledge.
    pub redriving: usize,
}

fn reason(code: &str, message: &str) -> Option<wire::Reason> {
    Some(wire::Reason { code: code.to_owned(), message: message.to_owned() })
}

/// The receipt after a decision was delivered (or not) to `legs`.
fn apply(mut receipt: wire::Payment, legs: &[Leg], decision: Decision, delivered: bool) -> wire::Payment {
    for (wire_leg, leg) in receipt.legs.iter_mut().zip(legs) {
        wire_leg.state = wire::LegState::from(leg.state) as i32;
    }
    match (decision, delivered) {
        (Decision::Commit, true) => {
            receipt.status = wire::PaymentStatus::Settled as i32;
            receipt.reason = None;
        }
        (Decision::Commit, false) => {
            receipt.status = wire::PaymentStatus::Pending as i32;
            receipt.reason = reason("COMMIT_UNDELIVERED", "decided commit; a ledger has not acknowledged yet");
        }
        (Decision::Abort, _) => {
            if receipt.status == wire::PaymentStatus::Pending as i32 {
                receipt.status = wire::PaymentStatus::Failed as i32;
                receipt.reason = reason(
                    "ABORTED_IN_RECOVERY",
                    "the router stopped before deciding; every ledger that may have held the payment was told to abort",
                );
            }
        }
    }
    receipt.timings.get_or_insert_with(Default::default).finished_at.get_or_insert_with(|| SystemTime::now().into());
    receipt
}

/// Delivers `decision` for one journaled payment now; on failure hands it to the background.
/// Returns whether it was delivered now.
async fn complete_one(
    storage: &Storage,
    coordinator: &Arc<Coordinator>,
    feed: &FeedWriter,
    receipt: wire::Payment,
    decision: Decision,
) -> Result<bool, StorageError> {
    let payment: PaymentId =
        receipt.payment_id.parse().map_err(|reason| StorageError::Corrupt(format!("payment id {reason}")))?;
    let mut legs = legs_from_wire(&receipt.legs).map_err(StorageError::Corrupt)?;
    if decision == Decision::Abort {
        // Anything not known to be released may be held.
        for leg in &mut legs {
            if leg.state != LegState::Refused && leg.state != LegState::Aborted {
                leg.state = LegState::InDoubt;
            }
        }
    }
    let undelivered = coordinator.complete(TransactionId::from(payment), &mut legs, decision).await;
    let delivered = undelivered.is_none();
    // A receipt that was final before the crash was already given to the client, and its feed
    // records were stored with it (one write): it stays as it is, byte for byte — only its
    // journal entry was left unfinished.
    if !is_final(&receipt) {
        let updated = apply(receipt.clone(), &legs, decision, delivered);
        // With its feed records, in one write: a final receipt anyone can read is in the feed.
        feed.save_receipt(storage.payments.as_ref(), &updated, false, SystemTime::now()).await?;
    }
    if delivered {
        storage.journal.finish(payment).await?;
    } else {
        redrive(storage.clone(), Arc::clone(coordinator), feed.clone(), receipt, decision);
    }
    Ok(delivered)
}

/// Keeps delivering `decision` in the background until every ledger acknowledges, then stores
/// the final receipt and finishes the journal entry.
pub fn redrive(
    storage: Storage,
    coordinator: Arc<Coordinator>,
    feed: FeedWriter,
    receipt: wire::Payment,
    decision: Decision,
) {
    tokio::spawn(async move {
        let Ok(payment) = receipt.payment_id.parse::<PaymentId>() else { return };
        let Ok(mut legs) = legs_from_wire(&receipt.legs) else { return };
        // In doubt on some ledger until delivered, for as long as this task runs.
        let in_doubt = &crate::metrics::metrics().in_doubt;
        in_doubt.inc();
        struct Delivered<'a>(&'a prometheus_client::metrics::gauge::Gauge);
        impl Drop for Delivered<'_> {
            fn drop(&mut self) {
                self.0.dec();
            }
        }
        let _delivered = Delivered(in_doubt);
        loop {
            tokio::time::sleep(REDRIVE_INTERVAL).await;
            if coordinator.complete(TransactionId::from(payment), &mut legs, decision).await.is_none() {
                // A final receipt (an abort some ledger had not heard) is already stored with its
                // feed records; a pending one (a commit not delivered) becomes final now.
                let saved = if is_final(&receipt) {
                    Ok(())
                } else {
                    let updated = apply(receipt.clone(), &legs, decision, true);
                    feed.save_receipt(storage.payments.as_ref(), &updated, false, SystemTime::now()).await
                };
                let finished = storage.journal.finish(payment).await;
                if saved.is_ok() && finished.is_ok() {
                    tracing::info!(%payment, ?decision, "decision delivered to every ledger");
                    return;
                }
            }
        }
    });
}

fn is_final(receipt: &wire::Payment) -> bool {
    receipt.status != wire::PaymentStatus::Pending as i32 && receipt.status != wire::PaymentStatus::Held as i32
}

/// Completes every journal entry this router can take over now (see
/// [`crate::storage::Journal::take_over`]), adding to `report`.
async fn take_over_all(
    storage: &Storage,
    coordinator: &Arc<Coordinator>,
    feed: &FeedWriter,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    loop {
        let entries = storage.journal.take_over(TAKEOVER_BATCH_MAX).await?;
        if entries.is_empty() {
            return Ok(());
        }
        for entry in entries {
            let payment: PaymentId = entry
                .payment
                .payment_id
                .parse()
                .map_err(|reason| StorageError::Corrupt(format!("payment id {reason}")))?;
            // First writer wins: if the owner decided COMMIT before it died, this is COMMIT.
            let decision = match entry.decision {
                Some(decision) => decision,
                None => storage.journal.decide(payment, JournalDecision::Abort).await?,
            };
            // The stored receipt may be newer than the journal's snapshot (leg states): prefer it.
            let receipt = storage.payments.get(payment).await?.filter(|r| !r.legs.is_empty()).unwrap_or(entry.payment);
            let decision = match decision {
                JournalDecision::Commit => Decision::Commit,
                JournalDecision::Abort => Decision::Abort,
            };
            let delivered = complete_one(storage, coordinator, feed, receipt, decision).await?;
            crate::metrics::metrics()
                .takeovers
                .get_or_create(&crate::metrics::OutcomeLabels {
                    outcome: if decision == Decision::Commit { "commit" } else { "abort" },
                })
                .inc();
            match (decision, delivered) {
                (_, false) => report.redriving += 1,
                (Decision::Commit, true) => report.commits_completed += 1,
                (Decision::Abort, true) => report.aborted += 1,
            }
        }
    }
}

/// Keeps taking over the payments of routers that are gone, every [`TAKEOVER_INTERVAL`], while
/// this router serves (replicas sharing PostgreSQL; with the embedded store there is never
/// anything to take over after [`recover`]).
pub fn spawn_takeover(
    storage: Storage,
    coordinator: Arc<Coordinator>,
    feed: FeedWriter,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(TAKEOVER_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let mut report = RecoveryReport::default();
            match take_over_all(&storage, &coordinator, &feed, &mut report).await {
                Ok(()) if report == RecoveryReport::default() => {}
                Ok(()) => tracing::info!(
                    commits_completed = report.commits_completed,
                    aborted = report.aborted,
                    redriving = report.redriving,
                    "took over the payments of a router that is gone"
                ),
                Err(error) => {
                    tracing::warn!(%error, "taking over the payments of routers that are gone failed; retrying")
                }
            }
        }
    })
}

/// Runs recovery; see the module docs.
pub async fn recover(
    storage: &Storage,
    coordinator: &Arc<Coordinator>,
    feed: &FeedWriter,
) -> Result<RecoveryReport, StorageError> {
    let mut report = RecoveryReport::default();
    take_over_all(storage, coordinator, feed, &mut report).await?;
    for mut receipt in storage.payments.pending().await? {
        // A held payment waits for its review, across restarts; nothing is held for it. A
        // journaled one is its owner's (maybe another live router's) or was just completed.
        if receipt.status == wire::PaymentStatus::Held as i32 {
            continue;
        }
        let payment: PaymentId =
            receipt.payment_id.parse().map_err(|reason| StorageError::Corrupt(format!("payment id {reason}")))?;
        if storage.journal.contains(payment).await? {
            continue;
        }
        receipt.status = wire::PaymentStatus::Failed as i32;
        receipt.reason =
            reason("INTERRUPTED", "the router stopped before settlement began; no ledger was asked to hold anything");
        feed.save_receipt(storage.payments.as_ref(), &receipt, false, SystemTime::now()).await?;
        report.interrupted += 1;
    }
    Ok(report)
}
