//! The review queue: payments a compliance hook held wait here, with nothing held on any ledger,
//! until a compliance officer of each holding jurisdiction decides, or the review times out.
//!
//! - **Approve**: the officer's decision is added to the payment's compliance record; once every
//!   jurisdiction that held it has approved, the payment resumes where it stopped: it is priced
//!   again (now, or at its locked quote if that is still valid), journaled and settled. It is not
//!   screened again: the officers approved this payment.
//! - **Reject**: the payment is `REJECTED` (`REVIEW_REJECTED`) at once.
//! - **Timeout**: a payment held longer than `compliance.review_timeout_ms` is `REJECTED`
//!   (`REVIEW_TIMEOUT`) by [`spawn_review_expiry`].
//!
//! Held payments are ordinary stored receipts with status `HELD`, so the queue survives restarts
//! and is shared by routers that share storage. Within one router, a payment is decided by one
//! call at a time (the running set). Across replicas the journal arbitrates: a rejection (an
//! officer's or the timeout's) first records ABORT as the payment's decision, and the last
//! approval's settlement must record COMMIT, first writer wins; so a payment approved on one
//! replica and rejected on another at the same moment either settles (and the rejection is
//! refused) or is aborted everywhere. Timeouts are applied by one replica only, the one that
//! leads ([`crate::storage::Journal::leads`]). Not arbitrated: two officers of different
//! jurisdictions approving the same payment on two replicas at the same instant may lose one
//! approval (the payment then waits for it again).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Jurisdiction, ParticipantId, PaymentId, PaymentStatus};

use crate::payment::{PaymentRecord, instruction_from_wire};
use crate::pipeline::{Router, SubmitError};
use crate::storage::Decision as JournalDecision;

/// The hook name under which an officer's decision is recorded in a payment's compliance list.
pub const REVIEW_HOOK: &str = "compliance_review";
/// The longest note an officer may attach, in characters.
pub const NOTE_CHARS_MAX: usize = 500;
/// How often held payments are checked for a timed-out review.
pub const REVIEW_EXPIRY_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NotHeld(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Submit(#[from] SubmitError),
}

impl From<crate::storage::StorageError> for ReviewError {
    fn from(error: crate::storage::StorageError) -> Self {
        ReviewError::Submit(SubmitError::from(error))
    }
}

fn is_held(payment: &wire::Payment) -> bool {
    payment.status == wire::PaymentStatus::Held as i32
}

/// Jurisdictions whose hooks held the payment and that have not approved it yet.
fn outstanding(payment: &wire::Payment) -> Vec<String> {
    let mut holding: Vec<String> = Vec::new();
    for decision in &payment.compliance {
        if decision.outcome == wire::ComplianceOutcome::Hold as i32 && !holding.contains(&decision.jurisdiction) {
            holding.push(decision.jurisdiction.clone());
        }
    }
    holding.retain(|jurisdiction| {
        !payment.compliance.iter().any(|decision| {
            decision.hook == REVIEW_HOOK
                && &decision.jurisdiction == jurisdiction
                && decision.outcome == wire::ComplianceOutcome::Allow as i32
        })
    });
    holding
}

impl Router {
    fn officer_jurisdiction(&self, officer: &ParticipantId) -> Result<&Jurisdiction, ReviewError> {
        self.network()
            .officers
            .get(officer)
            .ok_or_else(|| ReviewError::PermissionDenied(format!("`{officer}` is not a compliance officer here")))
    }

    /// The payments waiting for `officer`'s jurisdiction, oldest first.
    pub async fn held_for(&self, officer: &ParticipantId) -> Result<Vec<wire::Payment>, ReviewError> {
        let jurisdiction = self.officer_jurisdiction(officer)?.to_string();
        let open = self.storage().payments.pending().await?;
        Ok(open
            .into_iter()
            .filter(|payment| is_held(payment) && outstanding(payment).contains(&jurisdiction))
            .collect())
    }

    /// An officer's verdict on a held payment; the payment as it stands afterwards.
    pub async fn review(
        &self,
        officer: &ParticipantId,
        payment: PaymentId,
        verdict: Verdict,
        note: &str,
    ) -> Result<wire::Payment, ReviewError> {
        let started = Instant::now();
        let jurisdiction = self.officer_jurisdiction(officer)?.clone();
        if note.chars().count() > NOTE_CHARS_MAX || note.chars().any(char::is_control) {
            return Err(ReviewError::InvalidArgument(format!(
                "note: at most {NOTE_CHARS_MAX} characters, without control characters"
            )));
        }
        let Some(_running) = self.start_running(payment) else {
            return Err(ReviewError::NotHeld(format!("payment {payment} is being decided right now")));
        };
        let mut receipt = self
            .storage()
            .payments
            .get(payment)
            .await?
            .ok_or_else(|| ReviewError::NotFound(format!("no payment with id {payment}")))?;
        if !is_held(&receipt) {
            let status = wire::PaymentStatus::try_from(receipt.status).map_or("UNKNOWN", |status| status.as_str_name());
            return Err(ReviewError::NotHeld(format!("payment {payment} is {status}, not held for review")));
        }
        let waiting_for = outstanding(&receipt);
        if !waiting_for.contains(&jurisdiction.to_string()) {
            return Err(ReviewError::PermissionDenied(format!(
                "payment {payment} is not waiting for {jurisdiction}'s review (waiting for: {})",
                waiting_for.join(", ")
            )));
        }
        let (outcome, code) = match verdict {
            Verdict::Approve => (wire::ComplianceOutcome::Allow, "REVIEW_APPROVED"),
            Verdict::Reject => (wire::ComplianceOutcome::Deny, "REVIEW_REJECTED"),
        };
        let message = if note.is_empty() { format!("{officer}") } else { format!("{officer}: {note}") };
        receipt.compliance.push(wire::ComplianceDecision {
            jurisdiction: jurisdiction.to_string(),
            hook: REVIEW_HOOK.to_owned(),
            outcome: outcome as i32,
            reason: Some(wire::Reason { code: code.to_owned(), message: message.clone() }),
        });
        tracing::info!(%payment, %officer, ?verdict, "held payment reviewed");

        // The officer's decision is a screening decision: it goes to the feed like the hooks' did.
        self.feed().screening(&receipt, self.now()).await?;
        if verdict == Verdict::Reject {
            if self.storage().journal.decide(payment, JournalDecision::Abort).await? == JournalDecision::Commit {
                return Err(ReviewError::NotHeld(format!("payment {payment} was approved and is settling")));
            }
            if let Ok(instruction) = instruction_from_wire(&receipt) {
                self.release_velocity(payment, &instruction).await;
            }
            receipt.status = wire::PaymentStatus::Rejected as i32;
            receipt.reason = Some(wire::Reason {
                code: code.to_owned(),
                message: format!("{jurisdiction} compliance review rejected it ({message})"),
            });
            self.feed().save_receipt(self.storage().payments.as_ref(), &receipt, true, self.now()).await?;
            return Ok(receipt);
        }
        if !outstanding(&receipt).is_empty() {
            self.storage().payments.save(&receipt).await?;
            return Ok(receipt);
        }
        Ok(self.resume(receipt, started).await?)
    }

    /// Prices and settles an approved payment, under its own id and idempotency key.
    async fn resume(&self, receipt: wire::Payment, started: Instant) -> Result<wire::Payment, SubmitError> {
        let id: PaymentId = receipt.payment_id.parse().map_err(|reason| {
            SubmitError::Unavailable(format!("stored payment id {}: {reason}", receipt.payment_id))
        })?;
        let instruction = instruction_from_wire(&receipt).map_err(SubmitError::Unavailable)?;
        let received_at = receipt
            .timings
            .as_ref()
            .and_then(|timings| timings.received_at)
            .and_then(|at| SystemTime::try_from(at).ok())
            .unwrap_or_else(|| self.now());
        let mut record = PaymentRecord::pending(id, instruction, received_at);
        record.compliance_before = receipt.compliance;
        record.screening_recorded = true;
        self.storage().payments.save(&record.to_wire()).await?;
        match self.price(&mut record).await? {
            Ok(decide_by) => self.settle(record, decide_by, started).await,
            Err(reason) => {
                self.release_velocity(record.id, &record.instruction).await;
                self.finish(record, PaymentStatus::Rejected, Some(reason), started).await
            }
        }
    }

    /// Rejects every held payment whose review has waited longer than the network allows.
    pub async fn expire_reviews(&self) -> Result<usize, ReviewError> {
        if !self.storage().journal.leads().await? {
            return Ok(0);
        }
        let now = self.now();
        let timeout = self.network().review_timeout;
        let mut expired = 0;
        for mut receipt in self.storage().payments.pending().await? {
            let held_since = receipt
                .timings
                .as_ref()
                .and_then(|timings| timings.finished_at.or(timings.received_at))
                .and_then(|at| SystemTime::try_from(at).ok());
            let overdue = held_since.is_some_and(|since| since + timeout <= now);
            if !is_held(&receipt) || !overdue {
                continue;
            }
            let Ok(id) = receipt.payment_id.parse::<PaymentId>() else { continue };
            let Some(_running) = self.start_running(id) else { continue };
            // Approved on another replica at this moment and settling: not ours to reject.
            if self.storage().journal.decide(id, JournalDecision::Abort).await? == JournalDecision::Commit {
                continue;
            }
            if let Ok(instruction) = instruction_from_wire(&receipt) {
                self.release_velocity(id, &instruction).await;
            }
            receipt.status = wire::PaymentStatus::Rejected as i32;
            receipt.reason = Some(wire::Reason {
                code: "REVIEW_TIMEOUT".to_owned(),
                message: format!(
                    "no decision by {} within {} ms of the hold",
                    outstanding(&receipt).join(", "),
                    timeout.as_millis()
                ),
            });
            self.feed().save_receipt(self.storage().payments.as_ref(), &receipt, true, self.now()).await?;
            expired += 1;
        }
        Ok(expired)
    }
}

/// Rejects timed-out reviews in the background, every [`REVIEW_EXPIRY_INTERVAL`].
pub fn spawn_review_expiry(router: Arc<Router>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(REVIEW_EXPIRY_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match router.expire_reviews().await {
                Ok(0) => {}
                Ok(expired) => tracing::info!(expired, "held payments rejected after their review timed out"),
                Err(error) => tracing::warn!(%error, "review expiry failed; retrying"),
            }
        }
    })
}

#[cfg(test)]
mod tests;
