//! The two-phase-commit coordinator (presumed abort).
//!
//! 1. PREPARE every leg on its ledger at once, each bounded by the prepare timeout.
//! 2. All voted yes: the decision is COMMIT (this is the point where the durable journal records
//!    it before any ledger hears it); then COMMIT is delivered to every ledger, retried with
//!    backoff. A decided commit is never turned into an abort.
//! 3. Otherwise: ABORT every leg that voted yes or whose vote is unknown (timeout, error); a leg
//!    that voted no holds nothing. Aborting a transaction the ledger never saw is harmless.
//!
//! The coordinator talks to ledgers only through the [`Ledger`] trait and never looks at balances.
//! It does not retry a prepare: a payment whose votes do not all arrive in time is aborted.
//! Not built yet: the durable journal and recovery after a crash.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use corridor_ledger_adapters::{Ledger, LedgerError, TransactionId, Vote};
use corridor_schemas::LedgerId;
use futures::future::join_all;

use crate::payment::{Leg, LegState, PaymentReason};

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
    /// A vote did not arrive (timeout or ledger error); every leg was released.
    Failed(PaymentReason),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SettlementTimings {
    pub prepare_us: u64,
    pub commit_us: u64,
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
    pub async fn settle(&self, transaction: TransactionId, legs: &mut [Leg]) -> (Settlement, SettlementTimings) {
        let mut timings = SettlementTimings::default();
        let started = Instant::now();
        let votes = join_all(legs.iter().map(|leg| self.prepare(transaction, leg))).await;
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
        let settlement = match objection {
            None => {
                // Decision point: COMMIT. The journal write goes here, before any ledger is told.
                let acks = join_all(legs.iter().map(|leg| self.deliver(transaction, leg, Decision::Commit))).await;
                let mut undelivered = None;
                for (leg, ack) in legs.iter_mut().zip(acks) {
                    match ack {
                        Ok(()) => leg.state = LegState::Committed,
                        Err(error) => {
                            undelivered.get_or_insert_with(|| {
                                PaymentReason::new("COMMIT_UNDELIVERED", format!("{}: {error}", leg.ledger))
                            });
                        }
                    }
                }
                undelivered.map_or(Settlement::Committed, Settlement::CommitUndelivered)
            }
            Some(objection) => {
                let to_abort: Vec<usize> = legs
                    .iter()
                    .enumerate()
                    .filter(|(_, leg)| matches!(leg.state, LegState::Prepared | LegState::InDoubt))
                    .map(|(index, _)| index)
                    .collect();
                let acks =
                    join_all(to_abort.iter().map(|index| self.deliver(transaction, &legs[*index], Decision::Abort)))
                        .await;
                for (index, ack) in to_abort.into_iter().zip(acks) {
                    match ack {
                        Ok(()) => legs[index].state = LegState::Aborted,
                        // The hold stays until the ledger hears the abort; recovery re-sends it.
                        Err(error) => {
                            tracing::error!(%transaction, ledger = %legs[index].ledger, %error, "abort undelivered")
                        }
                    }
                }
                objection
            }
        };
        timings.commit_us = elapsed_us(started);
        (settlement, timings)
    }

    async fn prepare(&self, transaction: TransactionId, leg: &Leg) -> Result<Vote, LedgerError> {
        let ledger = self.ledger(&leg.ledger)?;
        let deadline = SystemTime::now() + self.prepare_timeout;
        match tokio::time::timeout(self.prepare_timeout, ledger.prepare(transaction, &leg.postings, deadline)).await {
            Ok(vote) => vote,
            Err(_elapsed) => {
                Err(LedgerError::Unavailable(format!("no vote within {} ms", self.prepare_timeout.as_millis())))
            }
        }
    }

    /// Delivers a decision to one ledger, retrying with backoff. Both calls are idempotent, so a
    /// resend after a lost answer is safe.
    async fn deliver(&self, transaction: TransactionId, leg: &Leg, decision: Decision) -> Result<(), LedgerError> {
        let ledger = self.ledger(&leg.ledger)?;
        let mut backoff = DECISION_BACKOFF_INITIAL;
        let mut attempt = 1;
        loop {
            let result = match decision {
                Decision::Commit => ledger.commit(transaction).await,
                Decision::Abort => match ledger.abort(transaction).await {
                    // Presumed abort: a ledger that never saw the prepare holds nothing.
                    Err(LedgerError::UnknownTransaction(_)) => Ok(()),
                    other => other,
                },
            };
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

#[derive(Debug, Clone, Copy)]
enum Decision {
    Commit,
    Abort,
}

pub(crate) fn elapsed_us(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
