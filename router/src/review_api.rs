//! The gRPC edge of `corridor.v1.ComplianceReview`: compliance officers list and decide held
//! payments. A request names its officer; over mTLS the caller's certificate must be that officer's,
//! of the jurisdiction it is configured for ([`crate::authz`]).

use std::sync::Arc;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_review_server::ComplianceReview;
use corridor_schemas::{FieldError, ParticipantId, PaymentId};
use tonic::{Request, Response, Status};

use crate::authz::{Call, Caller, authorize};
use crate::pipeline::Router;
use crate::review::{ReviewError, Verdict};

pub struct ReviewApi {
    router: Arc<Router>,
}

impl ReviewApi {
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

impl From<ReviewError> for Status {
    fn from(error: ReviewError) -> Self {
        match error {
            ReviewError::PermissionDenied(message) => Status::permission_denied(message),
            ReviewError::NotFound(message) => Status::not_found(message),
            ReviewError::NotHeld(message) => Status::failed_precondition(message),
            ReviewError::InvalidArgument(message) => Status::invalid_argument(message),
            ReviewError::Submit(error) => Status::from(error),
        }
    }
}

impl ReviewApi {
    /// The officer a request names, once its caller may act as that officer.
    fn officer(&self, caller: &Caller, id: String) -> Result<ParticipantId, Status> {
        let officer = ParticipantId::new(id)
            .map_err(|error| Status::invalid_argument(FieldError::new("officer_id", error).to_string()))?;
        let network = self.router.network();
        let jurisdiction = network
            .officers
            .get(&officer)
            .ok_or_else(|| Status::permission_denied(format!("`{officer}` is not a compliance officer here")))?;
        authorize(caller, Call::ReviewHeld { officer: &officer, jurisdiction })?;
        Ok(officer)
    }
}

#[tonic::async_trait]
impl ComplianceReview for ReviewApi {
    async fn list_held_payments(
        &self,
        request: Request<wire::ListHeldPaymentsRequest>,
    ) -> Result<Response<wire::ListHeldPaymentsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let officer = self.officer(&caller, request.into_inner().officer_id)?;
        let payments = self.router.held_for(&officer).await?;
        Ok(Response::new(wire::ListHeldPaymentsResponse { payments }))
    }

    async fn decide_held_payment(
        &self,
        request: Request<wire::DecideHeldPaymentRequest>,
    ) -> Result<Response<wire::DecideHeldPaymentResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let officer = self.officer(&caller, request.officer_id)?;
        let payment: PaymentId = request
            .payment_id
            .parse()
            .map_err(|reason: String| Status::invalid_argument(FieldError::new("payment_id", reason).to_string()))?;
        let verdict = match wire::ReviewVerdict::try_from(request.verdict) {
            Ok(wire::ReviewVerdict::Approve) => Verdict::Approve,
            Ok(wire::ReviewVerdict::Reject) => Verdict::Reject,
            _ => {
                return Err(Status::invalid_argument(
                    FieldError::new("verdict", "must be REVIEW_VERDICT_APPROVE or REVIEW_VERDICT_REJECT").to_string(),
                ));
            }
        };
        let payment = self.router.review(&officer, payment, verdict, &request.note).await?;
        Ok(Response::new(wire::DecideHeldPaymentResponse { payment: Some(payment) }))
    }
}
