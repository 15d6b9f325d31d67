//! [`RemoteLedger`]: a [`Ledger`] reached over gRPC, so the coordinator drives an out-of-process
//! adapter exactly like an in-process one.
//!
//! Coalescing: prepares, commits and aborts from many concurrent payments to one ledger become
//! few calls. Each kind has a bounded queue and a task that takes whatever is queued (up to
//! [`BATCH_ITEMS_MAX`]) without waiting for more, sends it as one call, and answers each caller
//! through its own oneshot. Under light load a call carries one item and costs no added latency;
//! under heavy load the queue fills while calls are in flight and the batches grow by themselves.
//! At most [`BATCH_CALLS_IN_FLIGHT_MAX`] calls of a kind are in flight at once, so one slow
//! call does not stall the rest.
//!
//! Failures: a transport error, a timeout or an answer that does not match the request is
//! [`LedgerError::Unavailable`]: the call may or may not have taken effect, and the coordinator
//! treats the outcome as in doubt. Per-item error codes map back to the matching [`LedgerError`].
//!
//! The channel connects lazily, so a ledger that is down when the router starts does not stop the
//! router; calls fail as unavailable until it is up, then the channel reconnects by itself.
//!
//! Not here: [`Ledger::in_doubt`], which the protocol does not expose (see there), and TLS.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_schemas::AccountName;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::ledger_adapter_client::LedgerAdapterClient;
use futures::future::BoxFuture;
use tokio::sync::{OnceCell, Semaphore, mpsc, oneshot};
use tonic::transport::{Channel, Endpoint};

use super::BATCH_ITEMS_MAX;
use super::convert::{error_from_code, refusal_code, state_from_wire};
use crate::ledger::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, Refusal, TransactionId, TransactionState, Vote,
};

/// Default bound on one gRPC call, from sending to the whole answer.
pub const CALL_TIMEOUT_MS_DEFAULT: u64 = 5_000;
/// Default bound on a caller's whole wait: queueing for a batch, then the call.
pub const WAIT_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Bound on establishing a connection; a ledger that does not accept within it is unavailable.
pub const CONNECT_TIMEOUT_MS: u64 = 2_000;
/// Items waiting per kind (prepare, commit, abort) for a batch; a caller past it waits for room.
pub const QUEUE_ITEMS_MAX: usize = 4 * BATCH_ITEMS_MAX;
/// Calls of one kind in flight at once.
pub const BATCH_CALLS_IN_FLIGHT_MAX: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteLedgerSettings {
    /// Bound on one gRPC call.
    pub call_timeout: Duration,
    /// Bound on a caller's whole wait (queue, then call). Past it the outcome is in doubt.
    pub wait_timeout: Duration,
}

impl Default for RemoteLedgerSettings {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(CALL_TIMEOUT_MS_DEFAULT),
            wait_timeout: Duration::from_millis(WAIT_TIMEOUT_MS_DEFAULT),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteLedgerError {
    #[error("`{url}` is not a ledger address: {reason}")]
    InvalidUrl { url: String, reason: String },
}

/// One caller's item and where its answer goes.
struct Queued<Item, Answer> {
    item: Item,
    /// The caller's trace context (W3C traceparent), sent with the item ([`super::trace`]).
    traceparent: Option<String>,
    answer: oneshot::Sender<Result<Answer, LedgerError>>,
}

/// Sends one batch as one call, with each item's trace context; returns exactly one answer per
/// item, in order.
type BatchCall<Item, Answer> = Arc<
    dyn Fn(
            LedgerAdapterClient<Channel>,
            Vec<Item>,
            Vec<Option<String>>,
        ) -> BoxFuture<'static, Vec<Result<Answer, LedgerError>>>
        + Send
        + Sync,
>;

struct PrepareItem {
    transaction: TransactionId,
    postings: Vec<Posting>,
    deadline: SystemTime,
}

pub struct RemoteLedger {
    url: String,
    client: LedgerAdapterClient<Channel>,
    settings: RemoteLedgerSettings,
    prepares: mpsc::Sender<Queued<PrepareItem, Vote>>,
    commits: mpsc::Sender<Queued<TransactionId, ()>>,
    aborts: mpsc::Sender<Queued<TransactionId, ()>>,
    description: OnceCell<LedgerDescription>,
}

impl std::fmt::Debug for RemoteLedger {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RemoteLedger").field("url", &self.url).finish_non_exhaustive()
    }
}

impl RemoteLedger {
    /// A ledger at `url` (e.g. `http://127.0.0.1:50061`), with the default timeouts. Connects on
    /// first use. Must be called inside a tokio runtime: it starts the batching tasks, which end
    /// when the `RemoteLedger` is dropped.
    pub fn connect_lazy(url: &str) -> Result<Self, RemoteLedgerError> {
        Self::connect_lazy_with(url, RemoteLedgerSettings::default())
    }

    pub fn connect_lazy_with(url: &str, settings: RemoteLedgerSettings) -> Result<Self, RemoteLedgerError> {
        let invalid = |reason: String| RemoteLedgerError::InvalidUrl { url: url.to_owned(), reason };
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|error| invalid(error.to_string()))?;
        Ok(Self::connect_lazy_at(endpoint, settings))
    }

    /// As [`connect_lazy_with`](Self::connect_lazy_with), through an endpoint the caller prepared
    /// (e.g. with TLS); its URI is the ledger's `url`.
    pub fn connect_lazy_at(endpoint: Endpoint, settings: RemoteLedgerSettings) -> Self {
        let url = endpoint.uri().to_string().trim_end_matches('/').to_owned();
        let endpoint = endpoint
            .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
            .timeout(settings.call_timeout)
            .tcp_nodelay(true);
        let client = LedgerAdapterClient::new(endpoint.connect_lazy());
        Self {
            url,
            prepares: spawn_batcher(
                client.clone(),
                Arc::new(|client, items, traces| Box::pin(call_prepare(client, items, traces))),
            ),
            commits: spawn_batcher(
                client.clone(),
                Arc::new(|client, items, traces| Box::pin(call_commit(client, items, traces))),
            ),
            aborts: spawn_batcher(
                client.clone(),
                Arc::new(|client, items, traces| Box::pin(call_abort(client, items, traces))),
            ),
            client,
            settings,
            description: OnceCell::new(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Queues one item and waits for its answer, within the caller's wait bound.
    async fn submit<Item, Answer>(
        &self,
        queue: &mpsc::Sender<Queued<Item, Answer>>,
        item: Item,
    ) -> Result<Answer, LedgerError> {
        let (answer, answered) = oneshot::channel();
        let traceparent = super::trace::current_traceparent();
        let wait = async {
            queue
                .send(Queued { item, traceparent, answer })
                .await
                .map_err(|_| LedgerError::Unavailable("the batching task has stopped".into()))?;
            answered.await.map_err(|_| LedgerError::Unavailable("the batch was dropped unanswered".into()))?
        };
        tokio::time::timeout(self.settings.wait_timeout, wait).await.map_err(|_| {
            LedgerError::Unavailable(format!(
                "{} did not answer within {} ms",
                self.url,
                self.settings.wait_timeout.as_millis()
            ))
        })?
    }
}

/// Starts the task that turns one kind's queue into batched calls.
fn spawn_batcher<Item, Answer>(
    client: LedgerAdapterClient<Channel>,
    call: BatchCall<Item, Answer>,
) -> mpsc::Sender<Queued<Item, Answer>>
where
    Item: Send + 'static,
    Answer: Send + 'static,
{
    let (queue, mut queued) = mpsc::channel::<Queued<Item, Answer>>(QUEUE_ITEMS_MAX);
    tokio::spawn(async move {
        let in_flight = Arc::new(Semaphore::new(BATCH_CALLS_IN_FLIGHT_MAX));
        while let Some(first) = queued.recv().await {
            // While every call slot is busy, items keep queueing: the next batch grows.
            let Ok(slot) = Arc::clone(&in_flight).acquire_owned().await else { break };
            let mut batch = vec![first];
            while batch.len() < BATCH_ITEMS_MAX {
                match queued.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let mut items = Vec::with_capacity(batch.len());
            let mut traces = Vec::with_capacity(batch.len());
            let mut answers = Vec::with_capacity(batch.len());
            for queued in batch {
                items.push(queued.item);
                traces.push(queued.traceparent);
                answers.push(queued.answer);
            }
            let call = Arc::clone(&call);
            let client = client.clone();
            tokio::spawn(async move {
                let results = call(client, items, traces).await;
                for (answer, result) in answers.into_iter().zip(results) {
                    // The caller may have stopped waiting; its outcome is then in doubt anyway.
                    let _caller_gone = answer.send(result);
                }
                drop(slot);
            });
        }
    });
    queue
}

fn unavailable(status: &tonic::Status) -> LedgerError {
    LedgerError::Unavailable(format!("{:?}: {}", status.code(), status.message()))
}

/// Every item gets the same in-doubt answer: the call failed as a whole.
fn all_unavailable<Answer>(items: usize, error: &LedgerError) -> Vec<Result<Answer, LedgerError>> {
    (0..items).map(|_| Err(error.clone())).collect()
}

fn mismatch(what: &str, expected: usize, got: usize) -> LedgerError {
    LedgerError::Unavailable(format!("the ledger answered {got} {what} for {expected} items"))
}

async fn call_prepare(
    mut client: LedgerAdapterClient<Channel>,
    items: Vec<PrepareItem>,
    traces: Vec<Option<String>>,
) -> Vec<Result<Vote, LedgerError>> {
    let request = wire::PrepareRequest {
        items: items
            .iter()
            .map(|item| wire::PrepareItem {
                transaction_id: item.transaction.to_string(),
                postings: item.postings.iter().map(wire::LedgerPosting::from).collect(),
                deadline: Some(item.deadline.into()),
            })
            .collect(),
    };
    let mut request = tonic::Request::new(request);
    super::trace::attach(&mut request, &traces);
    let votes = match client.prepare(request).await {
        Ok(response) => response.into_inner().votes,
        Err(status) => return all_unavailable(items.len(), &unavailable(&status)),
    };
    if votes.len() != items.len() {
        return all_unavailable(items.len(), &mismatch("votes", items.len(), votes.len()));
    }
    items.iter().zip(votes).map(|(item, vote)| vote_from_wire(item.transaction, &vote)).collect()
}

fn vote_from_wire(transaction: TransactionId, vote: &wire::Vote) -> Result<Vote, LedgerError> {
    if vote.transaction_id != transaction.to_string() {
        return Err(LedgerError::Unavailable(format!(
            "the ledger answered for {} where {transaction} was asked",
            vote.transaction_id
        )));
    }
    match wire::VoteKind::try_from(vote.kind) {
        Ok(wire::VoteKind::Yes) => Ok(Vote::Yes),
        Ok(wire::VoteKind::No) => match refusal_code(&vote.reason_code) {
            Some(code) => Ok(Vote::No(Refusal { code, message: vote.reason_message.clone() })),
            // A no for a reason this build does not know: nothing is held, but the vote cannot be
            // told as a `Refusal`. Unavailable makes the coordinator abort, which is what a no
            // makes it do too.
            None => Err(LedgerError::Unavailable(format!(
                "voted no for an unrecognised reason {}: {}",
                vote.reason_code, vote.reason_message
            ))),
        },
        Ok(wire::VoteKind::Unspecified) | Err(_) => {
            Err(error_from_code(&vote.reason_code, &vote.reason_message, transaction))
        }
    }
}

/// Commits and aborts share one shape: ids in, one result per id out.
fn decision_results(
    transactions: &[TransactionId],
    outcome: Result<Vec<wire::TransactionResult>, tonic::Status>,
) -> Vec<Result<(), LedgerError>> {
    let results = match outcome {
        Ok(results) => results,
        Err(status) => return all_unavailable(transactions.len(), &unavailable(&status)),
    };
    if results.len() != transactions.len() {
        return all_unavailable(transactions.len(), &mismatch("results", transactions.len(), results.len()));
    }
    transactions
        .iter()
        .zip(results)
        .map(|(transaction, result)| result_from_wire(*transaction, &result).map(|_| ()))
        .collect()
}

/// One item's result: its state, or the error it carries.
fn result_from_wire(
    transaction: TransactionId,
    result: &wire::TransactionResult,
) -> Result<TransactionState, LedgerError> {
    if result.transaction_id != transaction.to_string() {
        return Err(LedgerError::Unavailable(format!(
            "the ledger answered for {} where {transaction} was asked",
            result.transaction_id
        )));
    }
    if !result.error_code.is_empty() {
        return Err(error_from_code(&result.error_code, &result.error_message, transaction));
    }
    state_from_wire(result.state).ok_or_else(|| {
        LedgerError::Unavailable(format!("the ledger answered no state for {transaction} (state {})", result.state))
    })
}

async fn call_commit(
    mut client: LedgerAdapterClient<Channel>,
    items: Vec<TransactionId>,
    traces: Vec<Option<String>>,
) -> Vec<Result<(), LedgerError>> {
    let mut request =
        tonic::Request::new(wire::CommitRequest { transaction_ids: items.iter().map(ToString::to_string).collect() });
    super::trace::attach(&mut request, &traces);
    let outcome = client.commit(request).await.map(|response| response.into_inner().results);
    decision_results(&items, outcome)
}

async fn call_abort(
    mut client: LedgerAdapterClient<Channel>,
    items: Vec<TransactionId>,
    traces: Vec<Option<String>>,
) -> Vec<Result<(), LedgerError>> {
    let mut request =
        tonic::Request::new(wire::AbortRequest { transaction_ids: items.iter().map(ToString::to_string).collect() });
    super::trace::attach(&mut request, &traces);
    let outcome = client.abort(request).await.map(|response| response.into_inner().results);
    decision_results(&items, outcome)
}

#[async_trait::async_trait]
impl Ledger for RemoteLedger {
    /// Asked once; a ledger's identity does not change while it runs.
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        let description = self
            .description
            .get_or_try_init(|| async {
                let response = self
                    .client
                    .clone()
                    .describe(wire::DescribeRequest {})
                    .await
                    .map_err(|status| unavailable(&status))?;
                LedgerDescription::try_from(response.into_inner()).map_err(|error| {
                    LedgerError::Unavailable(format!("{} describes itself wrongly: {error}", self.url))
                })
            })
            .await?;
        Ok(description.clone())
    }

    /// A `Describe` round trip now (`describe` answers from its cache).
    async fn probe(&self) -> Result<(), LedgerError> {
        self.client.clone().describe(wire::DescribeRequest {}).await.map_err(|status| unavailable(&status))?;
        Ok(())
    }

    async fn prepare(
        &self,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        self.submit(&self.prepares, PrepareItem { transaction, postings: postings.to_vec(), deadline }).await
    }

    async fn commit(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        self.submit(&self.commits, transaction).await
    }

    async fn abort(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        self.submit(&self.aborts, transaction).await
    }

    /// Not batched: status is for reconciliation and tests, not the payment path.
    async fn status(&self, transaction: TransactionId) -> Result<TransactionState, LedgerError> {
        let request = wire::StatusRequest { transaction_ids: vec![transaction.to_string()] };
        let results =
            self.client.clone().status(request).await.map_err(|status| unavailable(&status))?.into_inner().results;
        match results.as_slice() {
            [result] => result_from_wire(transaction, result),
            _ => Err(mismatch("results", 1, results.len())),
        }
    }

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        let request = wire::BalanceRequest { account: account.to_string() };
        let response = match self.client.clone().balance(request).await {
            Ok(response) => response.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => {
                return Err(LedgerError::UnknownAccount(account.clone()));
            }
            Err(status) => return Err(unavailable(&status)),
        };
        let currency = corridor_schemas::Currency::from_code(&response.currency).map_err(|error| {
            LedgerError::Unavailable(format!("the ledger answered a balance in a bad currency: {error}"))
        })?;
        if response.account != account.as_str()
            || response.balance_minor.checked_sub(response.held_minor) != Some(response.available_minor)
        {
            return Err(LedgerError::Unavailable(format!("the ledger answered an inconsistent balance for {account}")));
        }
        Ok(AccountBalance {
            account: account.clone(),
            currency,
            balance_minor: response.balance_minor,
            held_minor: response.held_minor,
        })
    }

    /// Always empty: the protocol does not let the router list a ledger's in-doubt transactions.
    /// A ledger node resolves its own, by asking the coordinator (`ResolveTransaction`).
    async fn in_doubt(&self, _prepared_before: SystemTime, _limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        Ok(Vec::new())
    }
}
