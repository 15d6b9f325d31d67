//! The two-phase-commit coordinator (presumed abort).
//!
//! 0. (The pipeline has journaled the payment and its legs before calling in: after a crash,
//!    recovery knows which ledgers may hold it.)
//! 1. PREPARE every leg on its ledger at once, each bounded by the prepare timeout and carrying
//!    that deadline.
//! 2. All voted yes: the journal records COMMIT, durably, before any ledger hears it. The journal
//!    decides first-writer-wins: if a ledger asked for the outcome first (ResolveTransaction), the
//!    standing decision is ABORT and the coordinator obeys it. Then the decision is delivered to
//!    every ledger, retried with capped backoff. A decided commit is never turned into an abort.
//! 3. Otherwise: ABORT every leg that voted yes or whose vote is unknown (timeout, error); a leg
//!    that voted no holds nothing. Aborting a transaction the ledger never saw is harmless.
//!    Nothing is journaled for an abort: presumed abort.
//!
//! The coordinator talks to ledgers only through the [`Ledger`] trait and never looks at balances.
//! It does not retry a prepare: a payment whose votes do not all arrive in time is aborted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use corridor_ledger_adapters::{Ledger, LedgerError, TransactionId, Vote};
use corridor_schemas::LedgerId;
use futures::future::join_all;
use tracing::Instrument;

use crate::metrics::metrics;
use crate::payment::{Leg, LegState, PaymentReason};
use crate::storage::{Decision as JournalDecision, Journal};

/// How one settlement ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Every leg is committed.
    Committed,
    /// Decided commit, but some ledger has not acknowledged yet (it was unreachable through every
    /// attempt). The decision stands; its legs stay `Prepared` until a later delivery.
    CommitUndelivered(PaymentReason),
    /// A ledger voted no; every other leg was released.
    Refused(PaymentReason),
    /// A vote did not arrive (timeout or ledger error), or the decision could not be recorded;
    /// every leg was released.
    Failed(PaymentReason),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SettlementTimings {
    pub prepare_us: u64,
    pub commit_us: u64,
}

/// What the coordinator tells a ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Commit,
    Abort,
}

pub struct Coordinator {
    ledgers: HashMap<LedgerId, Arc<dyn Ledger>>,
    prepare_timeout: Duration,
    decision_attempts_max: u32,
}

/// First wait between two deliveries of a decision; doubles each time up to the maximum.
const DECISION_BACKOFF_INITIAL: Duration = Duration::from_millis(20);
const DECISION_BACKOFF_MAX: Duration = Duration::from_secs(2);

impl Coordinator {
    pub fn new(
        ledgers: HashMap<LedgerId, Arc<dyn Ledger>>,
        prepare_timeout: Duration,
        decision_attempts_max: u32,
    ) -> Self {
        Self { ledgers, prepare_timeout, decision_attempts_max: decision_attempts_max.max(1) }
    }

    /// Settles `legs` atomically under transaction id `transaction`, updating each leg's state.
    /// With `decide_by` (a locked quote's expiry), the commit must be decided before then: it
    /// bounds the prepare deadline, and votes that arrive later abort the payment.
    pub async fn settle(
        &self,
        transaction: TransactionId,
        legs: &mut [Leg],
        journal: &dyn Journal,
        decide_by: Option<SystemTime>,
    ) -> (Settlement, SettlementTimings) {
        let mut timings = SettlementTimings::default();
        let started = Instant::now();
        let mut timeout = self.prepare_timeout;
        if let Some(decide_by) = decide_by {
            timeout = timeout.min(decide_by.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO));
        }
        let votes = join_all(legs.iter().map(|leg| self.prepare(transaction, leg, timeout))).await;
        timings.prepare_us = elapsed_us(started);

        let mut objection: Option<Settlement> = None;
        for (leg, vote) in legs.iter_mut().zip(votes) {
            match vote {
                Ok(Vote::Yes) => leg.state = LegState::Prepared,
                Ok(Vote::No(refusal)) => {
                    leg.state = LegState::Refused;
                    objection.get_or_insert_with(|| {
                        Settlement::Refused(PaymentReason::new(
                            refusal.code.as_str(),
                            format!("{}: {}", leg.ledger, refusal.message),
                        ))
                    });
                    leg.refusal = Some(refusal);
                }
                Err(error) => {
                    leg.state = LegState::InDoubt;
                    let code = match error {
                        LedgerError::Unavailable(_) => "LEDGER_UNAVAILABLE",
                        _ => "LEDGER_ERROR",
                    };
                    objection.get_or_insert_with(|| {
                        Settlement::Failed(PaymentReason::new(code, format!("{}: {error}", leg.ledger)))
                    });
                }
            }
        }

        let started = Instant::now();
        let quote_expired = decide_by.is_some_and(|decide_by| SystemTime::now() >= decide_by);
        let objection = match objection {
            Some(Settlement::Refused(reason)) => Some(Settlement::Refused(reason)),
            // Whatever else went wrong, a vote that came too late for the quote is why.
            _ if quote_expired => Some(Settlement::Failed(PaymentReason::new(
                "QUOTE_EXPIRED",
                "the quote expired before every ledger had voted; the payment was aborted",
            ))),
            Some(objection) => Some(objection),
            // Decision point: COMMIT is durable in the journal before any ledger is told.
            None => match journal
                .decide(transaction.payment_id(), JournalDecision::Commit)
                .instrument(tracing::debug_span!("journal.decide"))
                .await
            {
                Ok(JournalDecision::Commit) => None,
                Ok(JournalDecision::Abort) => Some(Settlement::Failed(PaymentReason::new(
                    "ABORTED_BY_COORDINATOR",
                    "a ledger asked for the outcome before the votes were in; the payment was aborted",
                ))),
                Err(error) => Some(Settlement::Failed(PaymentReason::new(
                    "JOURNAL_UNAVAILABLE",
                    format!("the commit decision could not be recorded, so the payment was aborted: {error}"),
                ))),
            },
        };
        let settlement = match objection {
            None => match self.complete(transaction, legs, Decision::Commit).await {
                None => Settlement::Committed,
                Some(reason) => Settlement::CommitUndelivered(reason),
            },
            Some(objection) => {
                if let Some(reason) = self.complete(transaction, legs, Decision::Abort).await {
                    // The holds stay until the ledger hears the abort: it asks, or recovery resends.
                    tracing::error!(%transaction, reason = %reason.message, "abort undelivered");
                }
                objection
            }
        };
        timings.commit_us = elapsed_us(started);
        (settlement, timings)
    }

    /// Delivers a decision to every leg that may hold the transaction, retrying each with backoff,
    /// and records each leg's new state. `None` when every ledger acknowledged; otherwise the
    /// first failure (those legs keep their state: the decision must be delivered again later).
    pub async fn complete(
        &self,
        transaction: TransactionId,
        legs: &mut [Leg],
        decision: Decision,
    ) -> Option<PaymentReason> {
        let targets: Vec<usize> = legs
            .iter()
            .enumerate()
            .filter(|(_, leg)| match decision {
                Decision::Commit => leg.state != LegState::Committed,
                Decision::Abort => matches!(leg.state, LegState::Prepared | LegState::InDoubt),
            })
            .map(|(index, _)| index)
            .collect();
        let acks = join_all(targets.iter().map(|index| self.deliver(transaction, &legs[*index], decision))).await;
        let mut undelivered = None;
        for (index, ack) in targets.into_iter().zip(acks) {
            match ack {
                Ok(()) => {
                    legs[index].state = match decision {
                        Decision::Commit => LegState::Committed,
                        Decision::Abort => LegState::Aborted,
                    }
                }
                Err(error) => {
                    let code = match decision {
                        Decision::Commit => "COMMIT_UNDELIVERED",
                        Decision::Abort => "ABORT_UNDELIVERED",
                    };
                    undelivered
                        .get_or_insert_with(|| PaymentReason::new(code, format!("{}: {error}", legs[index].ledger)));
                }
            }
        }
        undelivered
    }

    async fn prepare(&self, transaction: TransactionId, leg: &Leg, timeout: Duration) -> Result<Vote, LedgerError> {
        let ledger = self.ledger(&leg.ledger)?;
        let deadline = SystemTime::now() + timeout;
        let started = Instant::now();
        let span = tracing::debug_span!("ledger.prepare", ledger = leg.ledger.as_str());
        let prepare = ledger.prepare(transaction, &leg.postings, deadline).instrument(span);
        let vote = match tokio::time::timeout(timeout, prepare).await {
            Ok(vote) => vote,
            Err(_elapsed) => Err(LedgerError::Unavailable(format!("no vote within {} ms", timeout.as_millis()))),
        };
        // A vote, yes or no, is an answer; an error is not.
        metrics().ledger_call(leg.ledger.as_str(), "prepare", started.elapsed(), vote.is_err());
        vote
    }

    /// Delivers a decision to one ledger, retrying with backoff. Both calls are idempotent, so a
    /// resend after a lost answer is safe.
    async fn deliver(&self, transaction: TransactionId, leg: &Leg, decision: Decision) -> Result<(), LedgerError> {
        let ledger = self.ledger(&leg.ledger)?;
        let mut backoff = DECISION_BACKOFF_INITIAL;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let (call, result) = match decision {
                Decision::Commit => (
                    "commit",
                    ledger
                        .commit(transaction)
                        .instrument(tracing::debug_span!("ledger.commit", ledger = leg.ledger.as_str(), attempt))
                        .await,
                ),
                Decision::Abort => match ledger
                    .abort(transaction)
                    .instrument(tracing::debug_span!("ledger.abort", ledger = leg.ledger.as_str(), attempt))
                    .await
                {
                    // Presumed abort: a ledger that never saw the prepare holds nothing.
                    Err(LedgerError::UnknownTransaction(_)) => ("abort", Ok(())),
                    other => ("abort", other),
                },
            };
            metrics().ledger_call(leg.ledger.as_str(), call, started.elapsed(), result.is_err());
            match result {
                Err(LedgerError::Unavailable(reason)) if attempt < self.decision_attempts_max => {
                    tracing::warn!(%transaction, ledger = %leg.ledger, attempt, %reason, ?decision, "retrying decision");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(DECISION_BACKOFF_MAX);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn ledger(&self, ledger: &LedgerId) -> Result<&Arc<dyn Ledger>, LedgerError> {
        self.ledgers.get(ledger).ok_or_else(|| LedgerError::Unavailable(format!("ledger {ledger} is not connected")))
    }
}

pub(crate) fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
