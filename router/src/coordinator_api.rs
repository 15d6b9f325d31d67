//! The router's ledger-facing API: `corridor.v1.TransactionCoordinator.ResolveTransaction`.
//!
//! A ledger holding a prepared transaction it has heard nothing more about asks here. The answer
//! comes from the journal through a first-writer-wins decision: a decided payment gets its
//! decision; an undecided or unknown one is decided ABORT on the spot (presumed abort), so the
//! coordinator can never commit it afterwards and the ledger never hears "unknown".

use std::sync::Arc;

use corridor_schemas::PaymentId;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::transaction_coordinator_server::TransactionCoordinator;
use tonic::{Request, Response, Status};

use crate::authz::{Call, Caller, authorize};

use crate::storage::{Decision, Journal};

/// Most transactions one ResolveTransaction call may ask about.
pub const RESOLVE_BATCH_MAX: usize = 1_000;

pub struct CoordinatorApi {
    journal: Arc<dyn Journal>,
}

impl CoordinatorApi {
    pub fn new(journal: Arc<dyn Journal>) -> Self {
        Self { journal }
    }
}

#[tonic::async_trait]
impl TransactionCoordinator for CoordinatorApi {
    async fn resolve_transaction(
        &self,
        request: Request<wire::ResolveTransactionRequest>,
    ) -> Result<Response<wire::ResolveTransactionResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        authorize(&caller, Call::Coordinate { ledger: &request.ledger_id })?;
        if request.transaction_ids.len() > RESOLVE_BATCH_MAX {
            return Err(Status::invalid_argument(format!(
                "transaction_ids: {} ids; at most {RESOLVE_BATCH_MAX} per call",
                request.transaction_ids.len()
            )));
        }
        let mut ids = Vec::with_capacity(request.transaction_ids.len());
        for (index, id) in request.transaction_ids.iter().enumerate() {
            let payment: PaymentId =
                id.parse().map_err(|reason| Status::invalid_argument(format!("transaction_ids[{index}]: {reason}")))?;
            ids.push(payment);
        }
        let mut transactions = Vec::with_capacity(ids.len());
        for payment in ids {
            let decision = self
                .journal
                .decide(payment, Decision::Abort)
                .await
                .map_err(|error| Status::unavailable(format!("cannot read the journal: {error}")))?;
            tracing::info!(ledger = %request.ledger_id, %payment, ?decision, "resolved an in-doubt transaction");
            let outcome = match decision {
                Decision::Commit => wire::TransactionOutcome::Commit,
                Decision::Abort => wire::TransactionOutcome::Abort,
            };
            transactions
                .push(wire::ResolvedTransaction { transaction_id: payment.to_string(), outcome: outcome as i32 });
        }
        Ok(Response::new(wire::ResolveTransactionResponse { transactions }))
    }
}
