//! In-doubt resolution on the ledger's side: [`InDoubtResolver`] is the background task of a
//! ledger node that finds transactions it has held (voted yes on) for longer than a threshold
//! without hearing the decision, asks the coordinator (`TransactionCoordinator.ResolveTransaction`)
//! for their outcome, and commits or aborts them.
//!
//! Why it exists: a ledger that voted yes must never release its holds on its own (another ledger
//! of the same payment may have committed). If the coordinator's decision was lost (a crash, a
//! network cut) the holds would stay forever; asking is the only safe way out. The coordinator's
//! answer is final: a decided transaction gets its decision, an undecided or unknown one is aborted
//! on the spot (presumed abort), so a yes-voted hold is never released by guesswork.
//!
//! The threshold ([`IN_DOUBT_AGE_MIN_MS`]) is well above the router's prepare timeout (5 s), so
//! the resolver does not race the coordinator's own commit or abort of a healthy payment; if it
//! does, both deliver the same decision and every call is idempotent.
//!
//! Not here: the coordinator's side of `ResolveTransaction` (the router serves it).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_schemas::LedgerId;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::transaction_coordinator_client::TransactionCoordinatorClient;
use futures::future::join_all;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};

use super::BATCH_ITEMS_MAX;
use super::client::{CONNECT_TIMEOUT_MS, RemoteLedgerError};
use super::convert::transaction_id;
use crate::ledger::{Ledger, LedgerError, TransactionId};

/// How often the resolver looks for in-doubt transactions.
pub const IN_DOUBT_SCAN_INTERVAL_MS: u64 = 3_000;
/// A transaction prepared longer ago than this, still undecided, is in doubt. Three times the
/// router's default prepare timeout: a healthy payment is decided long before.
pub const IN_DOUBT_AGE_MIN_MS: u64 = 15_000;
/// Most transactions asked about in one round (one ResolveTransaction call).
pub const IN_DOUBT_BATCH_MAX: usize = BATCH_ITEMS_MAX;
/// Bound on one ResolveTransaction call.
pub const RESOLVE_CALL_TIMEOUT_MS: u64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InDoubtResolverSettings {
    /// The ledger asking, as the coordinator knows it.
    pub ledger: LedgerId,
    /// Where the coordinator serves `TransactionCoordinator`, e.g. `http://router:50051`.
    pub coordinator_url: String,
    pub scan_interval: Duration,
    pub prepared_age_min: Duration,
    pub batch_max: usize,
    pub call_timeout: Duration,
}

impl InDoubtResolverSettings {
    /// The settings of a production node: the named defaults of this module.
    pub fn new(ledger: LedgerId, coordinator_url: impl Into<String>) -> Self {
        Self {
            ledger,
            coordinator_url: coordinator_url.into(),
            scan_interval: Duration::from_millis(IN_DOUBT_SCAN_INTERVAL_MS),
            prepared_age_min: Duration::from_millis(IN_DOUBT_AGE_MIN_MS),
            batch_max: IN_DOUBT_BATCH_MAX,
            call_timeout: Duration::from_millis(RESOLVE_CALL_TIMEOUT_MS),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolveRound {
    /// In-doubt transactions found and asked about.
    pub asked: usize,
    pub committed: usize,
    pub aborted: usize,
    /// Asked about but not settled this round (no answer for it, or the ledger call failed);
    /// the next round asks again.
    pub unresolved: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InDoubtError {
    #[error("the ledger could not list its in-doubt transactions: {0}")]
    Ledger(LedgerError),
    #[error("the coordinator did not answer: {0}")]
    Coordinator(String),
}

/// The running resolver; stop it with [`InDoubtResolver::stop`] (dropping it leaves it running
/// until the runtime ends).
pub struct InDoubtResolver {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl InDoubtResolver {
    /// Starts resolving for `ledger`. Connects to the coordinator lazily, so a coordinator that is
    /// down only delays resolution. Must be called inside a tokio runtime.
    pub fn spawn(ledger: Arc<dyn Ledger>, settings: InDoubtResolverSettings) -> Result<Self, RemoteLedgerError> {
        let url = settings.coordinator_url.clone();
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|error| RemoteLedgerError::InvalidUrl { url, reason: error.to_string() })?;
        Ok(Self::spawn_at(ledger, settings, endpoint))
    }

    /// As [`spawn`](Self::spawn), reaching the coordinator through `endpoint` (one the caller
    /// prepared, e.g. with TLS) instead of `settings.coordinator_url`.
    pub fn spawn_at(ledger: Arc<dyn Ledger>, settings: InDoubtResolverSettings, endpoint: Endpoint) -> Self {
        let endpoint =
            endpoint.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS)).timeout(settings.call_timeout);
        let mut coordinator = TransactionCoordinatorClient::new(endpoint.connect_lazy());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(settings.scan_interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = ticks.tick() => {}
                }
                let prepared_before =
                    SystemTime::now().checked_sub(settings.prepared_age_min).unwrap_or(SystemTime::UNIX_EPOCH);
                let round = resolve_in_doubt_once(
                    ledger.as_ref(),
                    &mut coordinator,
                    &settings.ledger,
                    prepared_before,
                    settings.batch_max,
                );
                match round.await {
                    Ok(round) if round.asked > 0 => tracing::info!(
                        asked = round.asked,
                        committed = round.committed,
                        aborted = round.aborted,
                        unresolved = round.unresolved,
                        "resolved in-doubt transactions with the coordinator"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "in-doubt resolution failed; retrying next round"),
                }
            }
        });
        Self { stop, task }
    }

    /// Stops after the round in progress, if any.
    pub async fn stop(self) {
        let _already_stopped = self.stop.send(());
        let _task_outcome = self.task.await;
    }
}

/// One round: lists up to `limit` transactions prepared before `prepared_before` and still
/// undecided, asks the coordinator, and applies its answers.
pub async fn resolve_in_doubt_once(
    ledger: &dyn Ledger,
    coordinator: &mut TransactionCoordinatorClient<Channel>,
    ledger_id: &LedgerId,
    prepared_before: SystemTime,
    limit: usize,
) -> Result<ResolveRound, InDoubtError> {
    let in_doubt = ledger.in_doubt(prepared_before, limit).await.map_err(InDoubtError::Ledger)?;
    if in_doubt.is_empty() {
        return Ok(ResolveRound::default());
    }
    let request = wire::ResolveTransactionRequest {
        ledger_id: ledger_id.to_string(),
        transaction_ids: in_doubt.iter().map(ToString::to_string).collect(),
    };
    let answers = coordinator
        .resolve_transaction(request)
        .await
        .map_err(|status| InDoubtError::Coordinator(format!("{:?}: {}", status.code(), status.message())))?
        .into_inner()
        .transactions;

    let asked: HashSet<TransactionId> = in_doubt.iter().copied().collect();
    let mut decisions: Vec<(TransactionId, wire::TransactionOutcome)> = Vec::new();
    let mut seen: HashSet<TransactionId> = HashSet::new();
    for answer in answers {
        let Ok(transaction) = transaction_id(&answer.transaction_id, "transaction_id") else {
            tracing::warn!(id = %answer.transaction_id, "the coordinator answered for a malformed transaction id");
            continue;
        };
        if !asked.contains(&transaction) || !seen.insert(transaction) {
            tracing::warn!(%transaction, "the coordinator answered for a transaction not asked about, or twice");
            continue;
        }
        match wire::TransactionOutcome::try_from(answer.outcome) {
            Ok(outcome @ (wire::TransactionOutcome::Commit | wire::TransactionOutcome::Abort)) => {
                decisions.push((transaction, outcome));
            }
            _ => tracing::warn!(%transaction, outcome = answer.outcome, "the coordinator gave no outcome"),
        }
    }

    let applied = join_all(decisions.iter().map(|(transaction, outcome)| async move {
        let transaction = *transaction;
        match outcome {
            wire::TransactionOutcome::Commit => (true, ledger.commit(transaction).await, transaction),
            _ => (false, ledger.abort(transaction).await, transaction),
        }
    }))
    .await;
    let mut round = ResolveRound { asked: in_doubt.len(), ..ResolveRound::default() };
    for (commit, outcome, transaction) in applied {
        match (commit, outcome) {
            (true, Ok(())) => round.committed += 1,
            (false, Ok(())) => round.aborted += 1,
            (_, Err(error @ (LedgerError::AlreadyAborted(_) | LedgerError::AlreadyCommitted(_)))) => {
                // The ledger decided one way and the coordinator the other: atomicity is broken
                // somewhere. Nothing here can repair it; say so as loudly as possible.
                tracing::error!(%transaction, %error, commit, "the coordinator's decision contradicts the ledger's");
            }
            (_, Err(error)) => {
                tracing::warn!(%transaction, %error, commit, "could not apply the coordinator's decision");
            }
        }
    }
    round.unresolved = round.asked - round.committed - round.aborted;
    Ok(round)
}
