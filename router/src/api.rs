//! The gRPC edge of the payment API: wire messages in, domain types through the pipeline, wire
//! messages out. This is the only module that makes `tonic::Status`; each error names the field
//! and the reason.

use std::sync::Arc;
use std::time::SystemTime;

use corridor_compliance::{Decision, Outcome};
use corridor_fx::Conversion;
use corridor_ledger_adapters::Posting;
use corridor_schemas::money::format_minor_units;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_server::PaymentService;
use corridor_schemas::{FieldError, ParticipantId, PaymentId, PaymentInstruction};
use tonic::{Request, Response, Status};

use crate::payment::{LegState, PaymentRecord};
use crate::pipeline::{Router, SubmitError};

/// Largest page `ListPayments` returns, and the size used when the client asks for none.
pub const PAGE_SIZE_MAX: u32 = 1_000;
pub const PAGE_SIZE_DEFAULT: u32 = 100;

pub struct PaymentApi {
    router: Arc<Router>,
}

impl PaymentApi {
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

fn invalid_argument(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

impl From<SubmitError> for Status {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::InvalidArgument(field) => invalid_argument(field.within("instruction")),
            SubmitError::PermissionDenied(message) => Status::permission_denied(message),
            SubmitError::KeyReused(_) => Status::already_exists(error.to_string()),
            SubmitError::Overloaded(message) => Status::resource_exhausted(message),
        }
    }
}

#[tonic::async_trait]
impl PaymentService for PaymentApi {
    async fn submit_payment(
        &self,
        request: Request<wire::SubmitPaymentRequest>,
    ) -> Result<Response<wire::SubmitPaymentResponse>, Status> {
        let instruction = request
            .into_inner()
            .instruction
            .ok_or_else(|| invalid_argument(FieldError::new("instruction", "is required")))?;
        let instruction =
            PaymentInstruction::try_from(instruction).map_err(|error| invalid_argument(error.within("instruction")))?;
        let record = self.router.submit(instruction).await?;
        Ok(Response::new(wire::SubmitPaymentResponse { payment: Some(to_wire(&record)) }))
    }

    async fn get_payment(
        &self,
        request: Request<wire::GetPaymentRequest>,
    ) -> Result<Response<wire::GetPaymentResponse>, Status> {
        let payment_id = request.into_inner().payment_id;
        let id: PaymentId =
            payment_id.parse().map_err(|reason: String| invalid_argument(FieldError::new("payment_id", reason)))?;
        let record =
            self.router.payments().get(id).ok_or_else(|| Status::not_found(format!("no payment with id {id}")))?;
        Ok(Response::new(wire::GetPaymentResponse { payment: Some(to_wire(&record)) }))
    }

    async fn list_payments(
        &self,
        request: Request<wire::ListPaymentsRequest>,
    ) -> Result<Response<wire::ListPaymentsResponse>, Status> {
        let request = request.into_inner();
        let participant = match request.participant_id.as_str() {
            "" => None,
            id => Some(
                ParticipantId::new(id).map_err(|error| invalid_argument(FieldError::new("participant_id", error)))?,
            ),
        };
        let page_size = match request.page_size {
            0 => PAGE_SIZE_DEFAULT,
            size if size <= PAGE_SIZE_MAX => size,
            size => {
                return Err(invalid_argument(FieldError::new(
                    "page_size",
                    format!("{size} is above the maximum of {PAGE_SIZE_MAX}"),
                )));
            }
        };
        let after =
            match request.page_token.as_str() {
                "" => None,
                token => Some(token.parse::<PaymentId>().map_err(|_| {
                    invalid_argument(FieldError::new("page_token", "is not a token this server returned"))
                })?),
            };
        let limit = usize::try_from(page_size).unwrap_or(usize::MAX);
        let (page, next) = self.router.payments().list(participant.as_ref(), after, limit);
        Ok(Response::new(wire::ListPaymentsResponse {
            payments: page.iter().map(|record| to_wire(record)).collect(),
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
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

fn conversion_to_wire(conversion: &Conversion) -> wire::FxConversion {
    wire::FxConversion {
        provider_id: conversion.provider.to_string(),
        pair: conversion.pair.to_string(),
        rate: conversion.rate().to_string(),
        rate_source: conversion.rate_source.clone(),
        rate_as_of: timestamp(Some(conversion.rate_as_of)),
    }
}

/// The receipt of a payment as integrators see it.
pub fn to_wire(record: &PaymentRecord) -> wire::Payment {
    let instruction = &record.instruction;
    let legs = record
        .legs
        .iter()
        .map(|leg| wire::Leg {
            ledger_id: leg.ledger.to_string(),
            postings: leg.postings.iter().map(posting_to_wire).collect(),
            state: match leg.state {
                LegState::NotSent => wire::LegState::NotSent,
                LegState::Prepared => wire::LegState::Prepared,
                LegState::InDoubt => wire::LegState::InDoubt,
                LegState::Committed => wire::LegState::Committed,
                LegState::Aborted => wire::LegState::Aborted,
                LegState::Refused => wire::LegState::Refused,
            } as i32,
            refusal: leg.refusal.as_ref().map(|refusal| reason(refusal.code.as_str(), &refusal.message)),
        })
        .collect();
    let compliance = record
        .screening
        .decisions
        .iter()
        .map(|decision| {
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
        })
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
        fx: record.conversion.as_ref().map(conversion_to_wire),
        fees: record
            .fees
            .iter()
            .map(|fee| wire::Fee {
                kind: "NETWORK".into(),
                amount: Some(fee.amount.into()),
                account: fee.account.to_string(),
            })
            .collect(),
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
