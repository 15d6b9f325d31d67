//! A payment as the router keeps it: the instruction, what the route and FX made of it, every
//! compliance decision, each ledger leg and its state, the final status and the timings.

use std::time::SystemTime;

use corridor_compliance::Screening;
use corridor_fx::Conversion;
use corridor_ledger_adapters::{Posting, Refusal};
use corridor_schemas::{Address, LedgerId, Money, PaymentId, PaymentInstruction, PaymentStatus};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeCharge {
    pub amount: Money,
    pub account: Address,
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
    /// What leaves the payer for the payee (fees on top), once priced.
    pub send: Option<Money>,
    pub receive: Option<Money>,
    pub conversion: Option<Conversion>,
    pub fees: Vec<FeeCharge>,
    pub route: Vec<LedgerId>,
    pub legs: Vec<Leg>,
    pub screening: Screening,
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
            conversion: None,
            fees: Vec::new(),
            route: Vec::new(),
            legs: Vec::new(),
            screening: Screening::default(),
            timings: Timings { received_at: Some(received_at), ..Timings::default() },
        }
    }
}
