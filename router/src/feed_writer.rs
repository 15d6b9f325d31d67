//! What the router writes to the compliance feed, and when: for every payment, a `SCREENING`
//! record with its compliance decisions and an `OUTCOME` record with its final status — each in
//! the feed of every jurisdiction the payment touches. The two go in one write, with the outcome,
//! before the answer is given; a payment held for review has its screening recorded when it is
//! held, and each officer's decision when it is made. (The decisions themselves are taken before
//! any money is held; after a crash, recovery records what it completes.)
//! Records go to the feed of every jurisdiction the payment touches (the jurisdictions of
//! its route's ledgers, or of the payer's and payee's ledgers when it has no route). Records are
//! built from the payment's receipt, so the feed says exactly what the participant was told.
//!
//! A jurisdiction's record carries that jurisdiction's decisions only: a regulator sees the
//! payments touching it, their outcomes, and its own hooks' and officers' decisions.
//!
//! Appends are durable before the payment's answer is given. Sequencing, hashing and signing are
//! the feed store's and the checkpointer's business, not this module's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use corridor_compliance::feed::{DecisionOutcome, FeedDecision, FeedEntry, FeedKind};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Jurisdiction, LedgerId};

use crate::storage::{FeedStore, PaymentStore, StorageError, unix_ms};

/// Appends receipts to the feed.
#[derive(Clone)]
pub struct FeedWriter {
    feed: Arc<dyn FeedStore>,
    jurisdictions: Arc<HashMap<String, Jurisdiction>>,
}

fn money(money: &Option<wire::Money>) -> Option<String> {
    money.as_ref().map(|money| format!("{} {}", money.amount, money.currency))
}

fn status_name(status: i32) -> Option<String> {
    match wire::PaymentStatus::try_from(status) {
        Ok(wire::PaymentStatus::Settled) => Some("SETTLED".into()),
        Ok(wire::PaymentStatus::Rejected) => Some("REJECTED".into()),
        Ok(wire::PaymentStatus::Failed) => Some("FAILED".into()),
        Ok(wire::PaymentStatus::Held) => Some("HELD".into()),
        Ok(wire::PaymentStatus::Pending) => Some("PENDING".into()),
        _ => None,
    }
}

fn is_final(receipt: &wire::Payment) -> bool {
    [wire::PaymentStatus::Settled, wire::PaymentStatus::Rejected, wire::PaymentStatus::Failed]
        .iter()
        .any(|status| receipt.status == *status as i32)
}

/// The entry a receipt makes, of `kind`.
pub fn entry_of(kind: FeedKind, receipt: &wire::Payment) -> FeedEntry {
    let party = |party: &Option<wire::Party>| {
        let name = party.as_ref().map(|p| p.name.clone()).filter(|name| !name.is_empty());
        let country = party.as_ref().and_then(|p| Jurisdiction::new(p.country.clone()).ok());
        (name, country)
    };
    let (originator_name, originator_country) = party(&receipt.originator);
    let (beneficiary_name, beneficiary_country) = party(&receipt.beneficiary);
    let mut amounts: Vec<String> = money(&receipt.send_amount).into_iter().collect();
    amounts.extend(receipt.hops.iter().filter_map(|hop| money(&hop.receive_amount)));
    if receipt.hops.is_empty() && receipt.send_amount.is_none() {
        amounts.extend(money(&receipt.receive_amount));
    }
    let decisions = receipt
        .compliance
        .iter()
        .filter_map(|decision| {
            let outcome = match wire::ComplianceOutcome::try_from(decision.outcome) {
                Ok(wire::ComplianceOutcome::Allow) => DecisionOutcome::Allow,
                Ok(wire::ComplianceOutcome::Deny) => DecisionOutcome::Deny,
                Ok(wire::ComplianceOutcome::Hold) => DecisionOutcome::Hold,
                _ => return None,
            };
            Some(FeedDecision {
                jurisdiction: Jurisdiction::new(decision.jurisdiction.clone()).ok()?,
                hook: decision.hook.clone(),
                outcome,
                code: decision.reason.as_ref().map(|reason| reason.code.clone()),
                message: decision.reason.as_ref().map(|reason| reason.message.clone()),
            })
        })
        .collect();
    let outcome = kind == FeedKind::Outcome;
    FeedEntry {
        kind,
        payment_id: receipt.payment_id.clone(),
        participant: receipt.participant_id.clone(),
        payer: receipt.payer.clone(),
        payee: receipt.payee.clone(),
        originator_name,
        originator_country,
        beneficiary_name,
        beneficiary_country,
        amounts,
        route: receipt.route.clone(),
        decisions,
        status: if outcome { status_name(receipt.status) } else { None },
        reason_code: if outcome { receipt.reason.as_ref().map(|reason| reason.code.clone()) } else { None },
    }
}

impl FeedWriter {
    pub fn new(feed: Arc<dyn FeedStore>, ledgers: impl IntoIterator<Item = (LedgerId, Jurisdiction)>) -> Self {
        let jurisdictions =
            ledgers.into_iter().map(|(ledger, jurisdiction)| (ledger.to_string(), jurisdiction)).collect();
        Self { feed, jurisdictions: Arc::new(jurisdictions) }
    }

    pub fn store(&self) -> &Arc<dyn FeedStore> {
        &self.feed
    }

    /// The jurisdictions the receipt's payment touches, each once, in route order.
    pub fn touched(&self, receipt: &wire::Payment) -> Vec<Jurisdiction> {
        let ends = [ledger_of(&receipt.payer), ledger_of(&receipt.payee)];
        let ledgers: Vec<&str> =
            if receipt.route.is_empty() { ends.to_vec() } else { receipt.route.iter().map(String::as_str).collect() };
        let mut touched: Vec<Jurisdiction> = Vec::with_capacity(ledgers.len());
        for jurisdiction in ledgers.into_iter().filter_map(|ledger| self.jurisdictions.get(ledger)) {
            if !touched.contains(jurisdiction) {
                touched.push(jurisdiction.clone());
            }
        }
        touched
    }

    /// Appends the receipt's compliance decisions (before money is held, or after a review).
    pub async fn screening(&self, receipt: &wire::Payment, at: SystemTime) -> Result<(), StorageError> {
        self.append(&[FeedKind::Screening], receipt, at).await
    }

    /// Appends the receipt's final outcome; a receipt that is not final is not recorded.
    pub async fn outcome(&self, receipt: &wire::Payment, at: SystemTime) -> Result<(), StorageError> {
        if !is_final(receipt) {
            return Ok(());
        }
        self.append(&[FeedKind::Outcome], receipt, at).await
    }

    /// Appends the receipt's compliance decisions and its final outcome in one write: for a
    /// payment whose screening was not recorded on its own (it did not wait for a review).
    pub async fn screening_and_outcome(&self, receipt: &wire::Payment, at: SystemTime) -> Result<(), StorageError> {
        if !is_final(receipt) {
            return Ok(());
        }
        self.append(&[FeedKind::Screening, FeedKind::Outcome], receipt, at).await
    }

    /// Saves `receipt` with the feed records it makes, in one write (both or neither): when it is
    /// final, its outcome and, unless its screening was recorded on its own when it was held, its
    /// screening. A receipt that is not final is saved alone.
    pub async fn save_receipt(
        &self,
        payments: &dyn PaymentStore,
        receipt: &wire::Payment,
        screening_recorded: bool,
        at: SystemTime,
    ) -> Result<(), StorageError> {
        let kinds: &[FeedKind] = match (is_final(receipt), screening_recorded) {
            (false, _) => &[],
            (true, true) => &[FeedKind::Outcome],
            (true, false) => &[FeedKind::Screening, FeedKind::Outcome],
        };
        let entries = self.entries(kinds, receipt);
        if entries.is_empty() {
            return payments.save(receipt).await;
        }
        payments.save_with_feed(receipt, entries, unix_ms(at)).await
    }

    async fn append(&self, kinds: &[FeedKind], receipt: &wire::Payment, at: SystemTime) -> Result<(), StorageError> {
        let entries = self.entries(kinds, receipt);
        if entries.is_empty() {
            return Ok(());
        }
        self.feed.append(entries, unix_ms(at)).await.map(|_| ())
    }

    /// The entries of `kinds` the receipt makes, for each jurisdiction it touches.
    fn entries(&self, kinds: &[FeedKind], receipt: &wire::Payment) -> Vec<(Jurisdiction, FeedEntry)> {
        let touched = self.touched(receipt);
        let mut entries: Vec<(Jurisdiction, FeedEntry)> = Vec::with_capacity(touched.len() * kinds.len());
        for kind in kinds {
            let entry = entry_of(*kind, receipt);
            // Each regulator sees the payment, its outcome, and its own jurisdiction's decisions only.
            for jurisdiction in &touched {
                let mut own = entry.clone();
                own.decisions.retain(|decision| &decision.jurisdiction == jurisdiction);
                entries.push((jurisdiction.clone(), own));
            }
        }
        entries
    }
}

fn ledger_of(address: &str) -> &str {
    address.split_once('/').map_or(address, |(ledger, _)| ledger)
}
