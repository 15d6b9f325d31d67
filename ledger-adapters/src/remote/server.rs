//! [`LedgerAdapterService`]: serves any [`Ledger`] over `corridor.v1.LedgerAdapter`.
//!
//! Every call is read in full before the ledger is touched, so a malformed message changes
//! nothing. The items of a batch then go to the ledger concurrently (a durable ledger turns them
//! into one group commit) and are answered in request order. A prepare whose deadline has passed
//! when it arrives votes no (`DEADLINE_PASSED`) without reaching the ledger: the coordinator has
//! given up on it and will abort.
//!
//! Deadlines are compared with this host's wall clock, so router and ledger node clocks must be
//! kept in step (NTP). Skew errs safe either way: a prepare refused too early is a failed payment;
//! one accepted too late is aborted by the coordinator, which has already decided.
//!
//! Not here: the tonic server itself (listener, health, reflection, shutdown), which the binary
//! that serves a ledger builds (`corridor ledger-node`).

use tracing::Instrument;

use super::trace;
use std::sync::Arc;
use std::time::SystemTime;

use corridor_schemas::FieldError;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::ledger_adapter_server::{LedgerAdapter, LedgerAdapterServer};
use futures::future::join_all;
use tonic::{Request, Response, Status};

use super::BATCH_ITEMS_MAX;
use super::convert::{self, error_code, error_message, state_after_error, state_to_wire};
use crate::ledger::{Ledger, LedgerError, RefusalCode, TransactionId, Vote};

/// Largest request the service decodes: a full batch of the largest prepares fits with room.
pub const REQUEST_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Serves one ledger. Cheap to clone: it shares the ledger.
#[derive(Clone)]
pub struct LedgerAdapterService {
    ledger: Arc<dyn Ledger>,
}

impl LedgerAdapterService {
    pub fn new(ledger: Arc<dyn Ledger>) -> Self {
        Self { ledger }
    }

    /// The tonic service, with the request size limit set.
    pub fn into_server(self) -> LedgerAdapterServer<Self> {
        LedgerAdapterServer::new(self).max_decoding_message_size(REQUEST_BYTES_MAX)
    }
}

fn invalid_argument(error: FieldError) -> Status {
    Status::invalid_argument(error.to_string())
}

fn check_batch_size(field: &str, items: usize) -> Result<(), Status> {
    if items > BATCH_ITEMS_MAX {
        return Err(invalid_argument(FieldError::new(
            field,
            format!("{items} items; at most {BATCH_ITEMS_MAX} per call"),
        )));
    }
    Ok(())
}

/// The status of a call (Describe, Balance) that failed as a whole.
fn status_for(error: &LedgerError) -> Status {
    let message = error.to_string();
    match error {
        LedgerError::UnknownAccount(_) | LedgerError::UnknownTransaction(_) => Status::not_found(message),
        LedgerError::InvalidPostings(_) => Status::invalid_argument(message),
        LedgerError::Unavailable(_) => Status::unavailable(message),
        LedgerError::AlreadyAborted(_)
        | LedgerError::AlreadyCommitted(_)
        | LedgerError::Refused(_)
        | LedgerError::Conflict(_) => Status::failed_precondition(message),
    }
}

fn result_of(
    transaction: TransactionId,
    outcome: Result<wire::TransactionState, LedgerError>,
) -> wire::TransactionResult {
    match outcome {
        Ok(state) => wire::TransactionResult {
            transaction_id: transaction.to_string(),
            state: state.into(),
            error_code: String::new(),
            error_message: String::new(),
        },
        Err(error) => wire::TransactionResult {
            transaction_id: transaction.to_string(),
            state: state_after_error(&error).into(),
            error_code: error_code(&error).to_owned(),
            error_message: error_message(&error),
        },
    }
}

fn vote_of(transaction: TransactionId, outcome: Result<Vote, LedgerError>) -> wire::Vote {
    let transaction_id = transaction.to_string();
    match outcome {
        Ok(Vote::Yes) => wire::Vote {
            transaction_id,
            kind: wire::VoteKind::Yes.into(),
            reason_code: String::new(),
            reason_message: String::new(),
        },
        Ok(Vote::No(refusal)) => wire::Vote {
            transaction_id,
            kind: wire::VoteKind::No.into(),
            reason_code: refusal.code.as_str().to_owned(),
            reason_message: refusal.message,
        },
        // No vote was cast: the call failed for this item (see the module docs of `remote`).
        Err(error) => wire::Vote {
            transaction_id,
            kind: wire::VoteKind::Unspecified.into(),
            reason_code: error_code(&error).to_owned(),
            reason_message: error_message(&error),
        },
    }
}

#[tonic::async_trait]
impl LedgerAdapter for LedgerAdapterService {
    async fn describe(
        &self,
        _request: Request<wire::DescribeRequest>,
    ) -> Result<Response<wire::DescribeResponse>, Status> {
        let description = self.ledger.describe().await.map_err(|error| status_for(&error))?;
        Ok(Response::new(wire::DescribeResponse::from(&description)))
    }

    async fn prepare(&self, request: Request<wire::PrepareRequest>) -> Result<Response<wire::PrepareResponse>, Status> {
        let contexts = trace::item_contexts(request.metadata(), request.get_ref().items.len());
        let items = request.into_inner().items;
        check_batch_size("items", items.len())?;
        let items = items
            .into_iter()
            .enumerate()
            .map(|(index, item)| convert::prepare_item(item).map_err(|error| error.within(&format!("items[{index}]"))))
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid_argument)?;
        // The moment the batch reached this ledger, which its deadlines are measured against.
        let arrived = SystemTime::now();
        let ledger = &self.ledger;
        let votes = join_all(items.iter().zip(contexts).map(|((transaction, postings, deadline), context)| {
            let span = trace::item_span("ledger.prepare", &transaction.to_string(), context);
            async move {
                if let Ok(late) = arrived.duration_since(*deadline)
                    && !late.is_zero()
                {
                    let refusal = crate::ledger::Refusal {
                        code: RefusalCode::DeadlinePassed,
                        message: format!("the prepare arrived {} ms after its deadline", late.as_millis()),
                    };
                    return vote_of(*transaction, Ok(Vote::No(refusal)));
                }
                vote_of(*transaction, ledger.prepare(*transaction, postings, *deadline).await)
            }
            .instrument(span)
        }))
        .await;
        Ok(Response::new(wire::PrepareResponse { votes }))
    }

    async fn commit(&self, request: Request<wire::CommitRequest>) -> Result<Response<wire::CommitResponse>, Status> {
        let contexts = trace::item_contexts(request.metadata(), request.get_ref().transaction_ids.len());
        let ids = request.into_inner().transaction_ids;
        check_batch_size("transaction_ids", ids.len())?;
        let transactions = convert::transaction_ids(&ids, "transaction_ids").map_err(invalid_argument)?;
        let results = join_all(transactions.iter().zip(contexts).map(|(transaction, context)| {
            let span = trace::item_span("ledger.commit", &transaction.to_string(), context);
            async move {
                let outcome = self.ledger.commit(*transaction).await.map(|()| wire::TransactionState::Committed);
                result_of(*transaction, outcome)
            }
            .instrument(span)
        }))
        .await;
        Ok(Response::new(wire::CommitResponse { results }))
    }

    async fn abort(&self, request: Request<wire::AbortRequest>) -> Result<Response<wire::AbortResponse>, Status> {
        let contexts = trace::item_contexts(request.metadata(), request.get_ref().transaction_ids.len());
        let ids = request.into_inner().transaction_ids;
        check_batch_size("transaction_ids", ids.len())?;
        let transactions = convert::transaction_ids(&ids, "transaction_ids").map_err(invalid_argument)?;
        let results = join_all(transactions.iter().zip(contexts).map(|(transaction, context)| {
            let span = trace::item_span("ledger.abort", &transaction.to_string(), context);
            async move {
                // Aborting a refused transaction succeeds and leaves it refused; ask for the state
                // only then, so the common case costs one ledger call.
                let outcome = match self.ledger.abort(*transaction).await {
                    Ok(()) => match self.ledger.status(*transaction).await {
                        Ok(state) => Ok(state_to_wire(state)),
                        Err(_) => Ok(wire::TransactionState::Aborted),
                    },
                    Err(error) => Err(error),
                };
                result_of(*transaction, outcome)
            }
            .instrument(span)
        }))
        .await;
        Ok(Response::new(wire::AbortResponse { results }))
    }

    async fn status(&self, request: Request<wire::StatusRequest>) -> Result<Response<wire::StatusResponse>, Status> {
        let ids = request.into_inner().transaction_ids;
        check_batch_size("transaction_ids", ids.len())?;
        let transactions = convert::transaction_ids(&ids, "transaction_ids").map_err(invalid_argument)?;
        let results = join_all(transactions.iter().map(|transaction| async move {
            result_of(*transaction, self.ledger.status(*transaction).await.map(state_to_wire))
        }))
        .await;
        Ok(Response::new(wire::StatusResponse { results }))
    }

    async fn balance(&self, request: Request<wire::BalanceRequest>) -> Result<Response<wire::BalanceResponse>, Status> {
        let account = convert::account(&request.into_inner().account, "account").map_err(invalid_argument)?;
        let balance = self.ledger.balance(&account).await.map_err(|error| status_for(&error))?;
        Ok(Response::new(wire::BalanceResponse {
            account: balance.account.to_string(),
            currency: balance.currency.code().to_owned(),
            balance_minor: balance.balance_minor,
            held_minor: balance.held_minor,
            available_minor: balance.available_minor(),
        }))
    }
}
