//! The gRPC edge of the payment API: wire messages in, domain types through the pipeline, wire
//! messages out. This is the only module that makes `tonic::Status`; each error names the field
//! and the reason.

use std::sync::Arc;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_server::PaymentService;
use corridor_schemas::{FieldError, ParticipantId, PaymentId, PaymentInstruction};
use tonic::{Request, Response, Status};

use crate::authz::{Call, Caller, authorize};
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
            SubmitError::Unauthenticated(message) => Status::unauthenticated(message),
            SubmitError::KeyReused(_) => Status::already_exists(error.to_string()),
            SubmitError::Overloaded(message) => Status::resource_exhausted(message),
            SubmitError::Unavailable(message) => Status::unavailable(message),
        }
    }
}

#[tonic::async_trait]
impl PaymentService for PaymentApi {
    async fn submit_payment(
        &self,
        request: Request<wire::SubmitPaymentRequest>,
    ) -> Result<Response<wire::SubmitPaymentResponse>, Status> {
        let caller = Caller::of(&request)?;
        let instruction = request
            .into_inner()
            .instruction
            .ok_or_else(|| invalid_argument(FieldError::new("instruction", "is required")))?;
        let instruction =
            PaymentInstruction::try_from(instruction).map_err(|error| invalid_argument(error.within("instruction")))?;
        authorize(&caller, Call::SubmitPayment { participant: &instruction.participant })?;
        let payment = self.router.submit(instruction).await?;
        Ok(Response::new(wire::SubmitPaymentResponse { payment: Some(payment) }))
    }

    async fn get_payment(
        &self,
        request: Request<wire::GetPaymentRequest>,
    ) -> Result<Response<wire::GetPaymentResponse>, Status> {
        let caller = Caller::of(&request)?;
        let payment_id = request.into_inner().payment_id;
        let id: PaymentId =
            payment_id.parse().map_err(|reason: String| invalid_argument(FieldError::new("payment_id", reason)))?;
        let payment = self
            .router
            .storage()
            .payments
            .get(id)
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?
            .ok_or_else(|| Status::not_found(format!("no payment with id {id}")))?;
        let owner = ParticipantId::new(payment.participant_id.clone())
            .map_err(|error| Status::internal(format!("stored payment {id} names no valid participant: {error}")))?;
        authorize(&caller, Call::ReadPayment { owner: &owner })?;
        Ok(Response::new(wire::GetPaymentResponse { payment: Some(payment) }))
    }

    async fn list_payments(
        &self,
        request: Request<wire::ListPaymentsRequest>,
    ) -> Result<Response<wire::ListPaymentsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        // A participant that names nobody lists its own payments.
        let participant_id = match (request.participant_id.as_str(), caller.participant_id()) {
            ("", Some(own)) => own.to_owned(),
            (named, _) => named.to_owned(),
        };
        let participant = match participant_id.as_str() {
            "" => None,
            id => Some(
                ParticipantId::new(id).map_err(|error| invalid_argument(FieldError::new("participant_id", error)))?,
            ),
        };
        authorize(&caller, Call::ListPayments { participant: participant.as_ref() })?;
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
        let (page, next) = self
            .router
            .storage()
            .payments
            .list(participant.as_ref(), after, limit)
            .await
            .map_err(|error| Status::unavailable(error.to_string()))?;
        Ok(Response::new(wire::ListPaymentsResponse {
            payments: page,
            next_page_token: next.map(|id| id.to_string()).unwrap_or_default(),
        }))
    }
}
