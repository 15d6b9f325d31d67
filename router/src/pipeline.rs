//! The payment pipeline: check against the network → claim the idempotency key → route and price
//! → compliance → two-phase commit → final record.
//!
//! Errors that mean the instruction itself is wrong (unknown ledger, currency that does not match
//! the ledger, an account the participant does not own) are returned as [`SubmitError`] and leave
//! no trace. Once the key is claimed, every outcome is a stored payment: a refusal is a `Rejected`
//! payment with a reason code, so a retry of the same key gets the same answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corridor_compliance::{Outcome, Subject};
use corridor_ledger_adapters::{Ledger, TransactionId};
use corridor_schemas::{FieldError, FixedSide, Jurisdiction, LedgerId, PaymentId, PaymentInstruction, PaymentStatus};
use tokio::sync::Semaphore;

use crate::clock::Clock;
use crate::network::Network;
use crate::payment::{PaymentReason, PaymentRecord};
use crate::route;
use crate::settlement::{Coordinator, Settlement, elapsed_us};
use crate::store::{Claim, PaymentStore};

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    InvalidArgument(FieldError),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("idempotency key already used for payment {0} with a different instruction")]
    KeyReused(PaymentId),
    #[error("{0}")]
    Overloaded(String),
}

pub struct Router {
    network: Arc<Network>,
    coordinator: Coordinator,
    store: PaymentStore,
    in_flight: Semaphore,
    in_flight_max: usize,
    clock: Arc<dyn Clock>,
}

pub struct RouterSettings {
    pub prepare_timeout: Duration,
    pub decision_attempts_max: u32,
    pub in_flight_max: usize,
}

impl Router {
    pub fn new(network: Arc<Network>, settings: RouterSettings, clock: Arc<dyn Clock>) -> Self {
        let ledgers: HashMap<LedgerId, Arc<dyn Ledger>> =
            network.ledgers.iter().map(|(id, handle)| (id.clone(), Arc::clone(&handle.ledger))).collect();
        Self {
            coordinator: Coordinator::new(ledgers, settings.prepare_timeout, settings.decision_attempts_max),
            network,
            store: PaymentStore::default(),
            in_flight: Semaphore::new(settings.in_flight_max),
            in_flight_max: settings.in_flight_max,
            clock,
        }
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn payments(&self) -> &PaymentStore {
        &self.store
    }

    /// Runs one instruction through the pipeline and returns its final record.
    pub async fn submit(&self, instruction: PaymentInstruction) -> Result<Arc<PaymentRecord>, SubmitError> {
        let started = Instant::now();
        self.check_against_network(&instruction)?;
        let _permit = self.in_flight.try_acquire().map_err(|_| {
            SubmitError::Overloaded(format!("{} payments are already in flight; retry later", self.in_flight_max))
        })?;

        let mut record = PaymentRecord::pending(PaymentId::generate(), instruction, self.clock.now());
        let finished = match self.store.claim(record.clone()).await {
            Claim::New(finished) => finished,
            Claim::Replay(first) => return Ok(first),
            Claim::Conflict(payment) => return Err(SubmitError::KeyReused(payment)),
        };

        let route_started = Instant::now();
        let plan = route::plan(&self.network, &record.instruction);
        record.timings.route_us = elapsed_us(route_started);
        let plan = match plan {
            Ok(plan) => plan,
            Err(reason) => return Ok(self.finish(record, PaymentStatus::Rejected, Some(reason), started, finished)),
        };
        record.send = Some(plan.send);
        record.receive = Some(plan.receive);
        record.conversion = plan.conversion;
        record.fees = plan.fees;
        record.route = plan.route;
        record.legs = plan.legs;

        let compliance_started = Instant::now();
        let jurisdictions: Vec<Jurisdiction> =
            record.route.iter().filter_map(|ledger| self.network.jurisdiction_of(ledger).cloned()).collect();
        let amounts = [plan.send, plan.receive];
        let subject = Subject {
            payment: record.id,
            participant: &record.instruction.participant,
            payer: &record.instruction.payer,
            payee: &record.instruction.payee,
            amounts: if record.route.len() == 1 { &amounts[..1] } else { &amounts[..] },
        };
        let screening = self.network.compliance.screen(&subject, &jurisdictions).await;
        record.timings.compliance_us = elapsed_us(compliance_started);
        let objection = screening.first_objection().map(|(decision, reason)| {
            let code = match screening.outcome() {
                Outcome::Hold => "HELD_FOR_REVIEW",
                _ => reason.code,
            };
            PaymentReason::new(code, format!("{} {}: {}", decision.jurisdiction, decision.hook, reason.message))
        });
        record.screening = screening;
        if let Some(reason) = objection {
            // Holds are refused for now: there is no review queue yet, and funds are never held
            // while a payment waits for review.
            return Ok(self.finish(record, PaymentStatus::Rejected, Some(reason), started, finished));
        }

        let (settlement, timings) = self.coordinator.settle(TransactionId::from(record.id), &mut record.legs).await;
        record.timings.prepare_us = timings.prepare_us;
        record.timings.commit_us = timings.commit_us;
        let (status, reason) = match settlement {
            Settlement::Committed => (PaymentStatus::Settled, None),
            Settlement::CommitUndelivered(reason) => (PaymentStatus::Pending, Some(reason)),
            Settlement::Refused(reason) => (PaymentStatus::Rejected, Some(reason)),
            Settlement::Failed(reason) => (PaymentStatus::Failed, Some(reason)),
        };
        Ok(self.finish(record, status, reason, started, finished))
    }

    fn finish(
        &self,
        mut record: PaymentRecord,
        status: PaymentStatus,
        reason: Option<PaymentReason>,
        started: Instant,
        finished: tokio::sync::watch::Sender<bool>,
    ) -> Arc<PaymentRecord> {
        record.status = status;
        record.reason = reason;
        record.timings.finished_at = Some(self.clock.now());
        record.timings.total_us = elapsed_us(started);
        tracing::debug!(payment = %record.id, ?status, reason = ?record.reason, "payment finished");
        self.store.finish(record, finished)
    }

    /// What can be checked from the instruction and the network alone, before anything is stored.
    fn check_against_network(&self, instruction: &PaymentInstruction) -> Result<(), SubmitError> {
        let invalid = |field: &str, reason: String| SubmitError::InvalidArgument(FieldError::new(field, reason));
        let payer_currency = self
            .network
            .currency_of(&instruction.payer.ledger)
            .ok_or_else(|| invalid("payer", format!("ledger `{}` is not on this network", instruction.payer.ledger)))?;
        let payee_currency = self
            .network
            .currency_of(&instruction.payee.ledger)
            .ok_or_else(|| invalid("payee", format!("ledger `{}` is not on this network", instruction.payee.ledger)))?;
        let (side, ledger, currency) = match instruction.fixed_side {
            FixedSide::Send => ("payer", &instruction.payer.ledger, payer_currency),
            FixedSide::Receive => ("payee", &instruction.payee.ledger, payee_currency),
        };
        if instruction.amount.currency() != currency {
            return Err(invalid(
                "amount.currency",
                format!(
                    "{} does not match the {side} ledger {ledger}, which issues {currency} (fixed side: {side})",
                    instruction.amount.currency()
                ),
            ));
        }
        let participant = self.network.participants.get(&instruction.participant).ok_or_else(|| {
            SubmitError::PermissionDenied(format!(
                "participant `{}` is not registered on this network",
                instruction.participant
            ))
        })?;
        if !participant.accounts.contains(&instruction.payer) {
            return Err(SubmitError::PermissionDenied(format!(
                "participant `{}` does not own the payer account {}",
                instruction.participant, instruction.payer
            )));
        }
        Ok(())
    }
}
