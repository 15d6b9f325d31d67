//! A payment as the router keeps it: the instruction, what the route and FX made of it, every
//! compliance decision, each ledger leg and its state, the final status and the timings.

use std::time::SystemTime;

use corridor_compliance::{Decision, Outcome, Screening};
use corridor_fx::CurrencyPair;
use corridor_ledger_adapters::{Posting, Refusal};
use corridor_schemas::money::{format_minor_units, parse_signed_minor_units};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{
    AccountName, Address, Currency, FieldError, LedgerId, Money, ParticipantId, PaymentId, PaymentInstruction,
    PaymentStatus,
};

use crate::route::Hop;

/// Why a payment was rejected or failed: a stable code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReason {
    pub code: String,
    pub message: String,
}

impl PaymentReason {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

/// A network fee of one hop (`from` → `to`; the same ledger twice for a domestic fee), in the
/// currency of `from`, credited to `account` on `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeCharge {
    pub amount: Money,
    pub account: Address,
    pub from: LedgerId,
    pub to: LedgerId,
}

impl FeeCharge {
    pub fn to_wire(&self) -> wire::Fee {
        wire::Fee {
            kind: "NETWORK".into(),
            amount: Some(self.amount.into()),
            account: self.account.to_string(),
            corridor: format!("{}->{}", self.from, self.to),
        }
    }

    pub fn from_wire(fee: &wire::Fee) -> Result<Self, String> {
        let amount: Money =
            fee.amount.clone().ok_or("fee without amount")?.try_into().map_err(|e: FieldError| e.to_string())?;
        let account: Address = fee.account.parse().map_err(|error| format!("fee account: {error}"))?;
        let (from, to) = fee.corridor.split_once("->").ok_or_else(|| format!("fee corridor `{}`", fee.corridor))?;
        let ledger = |id: &str| LedgerId::new(id.to_owned()).map_err(|error| format!("fee corridor: {error}"));
        Ok(Self { amount, account, from: ledger(from)?, to: ledger(to)? })
    }
}

impl Hop {
    pub fn to_wire(&self) -> wire::FxHop {
        wire::FxHop {
            from_ledger: self.from.to_string(),
            to_ledger: self.to.to_string(),
            conversion: Some(wire::FxConversion {
                provider_id: self.provider.to_string(),
                pair: self.pair.to_string(),
                rate: self.rate.to_string(),
                rate_source: self.rate_source.clone(),
                rate_as_of: Some(self.rate_as_of.into()),
            }),
            send_amount: Some(self.send.into()),
            receive_amount: Some(self.receive.into()),
        }
    }

    pub fn from_wire(hop: &wire::FxHop) -> Result<Self, String> {
        let conversion = hop.conversion.as_ref().ok_or("hop without conversion")?;
        let money = |money: &Option<wire::Money>| -> Result<Money, String> {
            money.clone().ok_or("hop without amount")?.try_into().map_err(|e: FieldError| e.to_string())
        };
        let ledger = |id: &str| LedgerId::new(id.to_owned()).map_err(|error| format!("hop ledger: {error}"));
        Ok(Self {
            from: ledger(&hop.from_ledger)?,
            to: ledger(&hop.to_ledger)?,
            provider: ParticipantId::new(conversion.provider_id.clone()).map_err(|error| error.to_string())?,
            pair: CurrencyPair::parse(&conversion.pair).map_err(|error| error.to_string())?,
            rate: conversion.rate.parse().map_err(|_| format!("hop rate `{}`", conversion.rate))?,
            rate_source: conversion.rate_source.clone(),
            rate_as_of: conversion
                .rate_as_of
                .and_then(|at| SystemTime::try_from(at).ok())
                .ok_or("hop without a valid rate time")?,
            send: money(&hop.send_amount)?,
            receive: money(&hop.receive_amount)?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// Planned, never sent: the payment was refused before settlement.
    NotSent,
    Prepared,
    Committed,
    Aborted,
    /// The ledger voted no.
    Refused,
    /// The ledger did not answer a prepare in time or failed; released by an abort.
    InDoubt,
}

impl From<LegState> for wire::LegState {
    fn from(state: LegState) -> Self {
        match state {
            LegState::NotSent => wire::LegState::NotSent,
            LegState::Prepared => wire::LegState::Prepared,
            LegState::InDoubt => wire::LegState::InDoubt,
            LegState::Committed => wire::LegState::Committed,
            LegState::Aborted => wire::LegState::Aborted,
            LegState::Refused => wire::LegState::Refused,
        }
    }
}

/// One payment's postings on one ledger. They sum to zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leg {
    pub ledger: LedgerId,
    pub postings: Vec<Posting>,
    pub state: LegState,
    pub refusal: Option<Refusal>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    pub received_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub route_us: u64,
    pub compliance_us: u64,
    pub prepare_us: u64,
    pub commit_us: u64,
    pub total_us: u64,
}

#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub id: PaymentId,
    pub instruction: PaymentInstruction,
    pub status: PaymentStatus,
    pub reason: Option<PaymentReason>,
    /// What leaves the payer for the payee (the payer's fee on top), once priced.
    pub send: Option<Money>,
    pub receive: Option<Money>,
    /// `send` plus the payer's fee.
    pub total_debit: Option<Money>,
    pub hops: Vec<Hop>,
    pub fees: Vec<FeeCharge>,
    pub route: Vec<LedgerId>,
    pub legs: Vec<Leg>,
    pub screening: Screening,
    /// Decisions taken before this run, as the receipt showed them: a held payment's screening
    /// and its reviews, when an approval resumes it. Shown before `screening`.
    pub compliance_before: Vec<wire::ComplianceDecision>,
    /// Its screening is in the feed already (it was held for review); only the outcome is left.
    pub screening_recorded: bool,
    pub timings: Timings,
}

impl PaymentRecord {
    pub fn pending(id: PaymentId, instruction: PaymentInstruction, received_at: SystemTime) -> Self {
        Self {
            id,
            instruction,
            status: PaymentStatus::Pending,
            reason: None,
            send: None,
            receive: None,
            total_debit: None,
            hops: Vec::new(),
            fees: Vec::new(),
            route: Vec::new(),
            legs: Vec::new(),
            screening: Screening::default(),
            compliance_before: Vec::new(),
            screening_recorded: false,
            timings: Timings { received_at: Some(received_at), ..Timings::default() },
        }
    }
}

fn timestamp(time: Option<SystemTime>) -> Option<prost_types::Timestamp> {
    time.map(prost_types::Timestamp::from)
}

fn reason(code: &str, message: &str) -> wire::Reason {
    wire::Reason { code: code.to_owned(), message: message.to_owned() }
}

fn posting_to_wire(posting: &Posting) -> wire::Posting {
    wire::Posting {
        account: posting.account.to_string(),
        currency: posting.currency.code().to_owned(),
        amount: format_minor_units(posting.amount_minor, posting.currency),
    }
}

impl PaymentRecord {
    /// The receipt of a payment as integrators see it, and as it is stored.
    pub fn to_wire(&self) -> wire::Payment {
        let record = self;
        let instruction = &record.instruction;
        let legs = record
            .legs
            .iter()
            .map(|leg| wire::Leg {
                ledger_id: leg.ledger.to_string(),
                postings: leg.postings.iter().map(posting_to_wire).collect(),
                state: wire::LegState::from(leg.state) as i32,
                refusal: leg.refusal.as_ref().map(|refusal| reason(refusal.code.as_str(), &refusal.message)),
            })
            .collect();
        let compliance = record
            .compliance_before
            .iter()
            .cloned()
            .chain(record.screening.decisions.iter().map(|decision| {
                let (outcome, why) = match &decision.decision {
                    Decision::Allow => (Outcome::Allow, None),
                    Decision::Deny(why) => (Outcome::Deny, Some(why)),
                    Decision::Hold(why) => (Outcome::Hold, Some(why)),
                };
                wire::ComplianceDecision {
                    jurisdiction: decision.jurisdiction.to_string(),
                    hook: decision.hook.to_owned(),
                    outcome: match outcome {
                        Outcome::Allow => wire::ComplianceOutcome::Allow,
                        Outcome::Deny => wire::ComplianceOutcome::Deny,
                        Outcome::Hold => wire::ComplianceOutcome::Hold,
                    } as i32,
                    reason: why.map(|why| reason(why.code, &why.message)),
                }
            }))
            .collect();
        wire::Payment {
            payment_id: record.id.to_string(),
            participant_id: instruction.participant.to_string(),
            idempotency_key: instruction.idempotency_key.to_string(),
            payer: instruction.payer.to_string(),
            payee: instruction.payee.to_string(),
            status: wire::PaymentStatus::from(record.status) as i32,
            reason: record.reason.as_ref().map(|why| reason(&why.code, &why.message)),
            send_amount: record.send.map(wire::Money::from),
            receive_amount: record.receive.map(wire::Money::from),
            hops: record.hops.iter().map(Hop::to_wire).collect(),
            fees: record.fees.iter().map(FeeCharge::to_wire).collect(),
            total_debit: record.total_debit.map(wire::Money::from),
            quote_id: instruction.quote.map(|quote| quote.to_string()).unwrap_or_default(),
            originator: instruction.originator.as_ref().map(wire::Party::from),
            beneficiary: instruction.beneficiary.as_ref().map(wire::Party::from),
            route: record.route.iter().map(ToString::to_string).collect(),
            legs,
            compliance,
            timings: Some(wire::Timings {
                received_at: timestamp(record.timings.received_at),
                finished_at: timestamp(record.timings.finished_at),
                route_us: record.timings.route_us,
                compliance_us: record.timings.compliance_us,
                prepare_us: record.timings.prepare_us,
                commit_us: record.timings.commit_us,
                total_us: record.timings.total_us,
            }),
            fixed_side: wire::FixedSide::from(instruction.fixed_side) as i32,
            reference: instruction.reference.clone(),
        }
    }
}

/// The instruction a stored receipt was made from: what an approved held payment resumes with.
pub fn instruction_from_wire(payment: &wire::Payment) -> Result<PaymentInstruction, String> {
    let fixed_receive = payment.fixed_side == wire::FixedSide::Receive as i32;
    let amount = if fixed_receive { payment.receive_amount.clone() } else { payment.send_amount.clone() };
    let instruction = wire::PaymentInstruction {
        participant_id: payment.participant_id.clone(),
        idempotency_key: payment.idempotency_key.clone(),
        payer: payment.payer.clone(),
        payee: payment.payee.clone(),
        amount,
        fixed_side: payment.fixed_side,
        reference: payment.reference.clone(),
        quote_id: payment.quote_id.clone(),
        originator: payment.originator.clone(),
        beneficiary: payment.beneficiary.clone(),
        signed_at: None,
        signature: Vec::new(),
    };
    PaymentInstruction::try_from(instruction).map_err(|error| format!("stored payment {}: {error}", payment.payment_id))
}

/// The legs of a stored payment, back as ledger postings: what recovery re-sends decisions for.
pub fn legs_from_wire(legs: &[wire::Leg]) -> Result<Vec<Leg>, String> {
    legs.iter()
        .map(|leg| {
            let ledger = LedgerId::new(leg.ledger_id.clone()).map_err(|error| format!("leg ledger: {error}"))?;
            let postings = leg
                .postings
                .iter()
                .map(|posting| {
                    let currency = Currency::from_code(&posting.currency).map_err(|error| error.to_string())?;
                    Ok(Posting {
                        account: AccountName::new(posting.account.clone()).map_err(|error| error.to_string())?,
                        currency,
                        amount_minor: parse_signed_minor_units(&posting.amount, currency)
                            .map_err(|error| error.to_string())?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            let state = match wire::LegState::try_from(leg.state) {
                Ok(wire::LegState::Prepared) => LegState::Prepared,
                Ok(wire::LegState::Committed) => LegState::Committed,
                Ok(wire::LegState::Aborted) => LegState::Aborted,
                Ok(wire::LegState::Refused) => LegState::Refused,
                Ok(wire::LegState::InDoubt) => LegState::InDoubt,
                // Journaled before the votes: the ledger may or may not hold it.
                _ => LegState::InDoubt,
            };
            Ok(Leg { ledger, postings, state, refusal: None })
        })
        .collect()
}
