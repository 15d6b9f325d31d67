//! The closed loop: a fixed number of workers, each sending its next SubmitPayment as soon as the
//! answer to its previous one arrives, until the planned number of requests has been sent.
//!
//! Request `n` (counting from 0) carries the idempotency key `<prefix>-<n>` and goes out on
//! connection `n % connections`, so requests are spread round-robin over the HTTP/2 connections
//! whichever worker sends them. Workers report each request's latency (in microseconds, measured
//! around the call alone) and outcome over a bounded channel to one collector, which owns the
//! histogram, the outcome counts and the progress bar; workers share nothing else but the counter
//! that hands out request numbers.
//!
//! Because a worker waits for its answer before sending again, the load offered adapts to the
//! router: this measures the throughput reached at a given concurrency and the latency at that
//! throughput. It does not measure latency at a fixed arrival rate (a slow answer delays the
//! requests behind it instead of queueing them, so tails under overload look better than they
//! are); that is the open-loop mode's job, which comes later. It never retries: a request that
//! fails is counted once, as it ended.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tonic::transport::Channel;

use crate::outcome::{Outcome, OutcomeCounts, classify};

/// The highest latency the histogram tells apart; slower answers are recorded as this. It is
/// above the client's request timeout, so in practice nothing saturates.
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// Precision of the latency histogram: values are exact to three significant digits.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Samples in flight between the workers and the collector.
pub const SAMPLE_CHANNEL_CAPACITY: usize = 4_096;

/// What to send and how hard.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Sent as is for every request, except for its idempotency key.
    pub instruction: wire::PaymentInstruction,
    pub key_prefix: String,
    pub requests: u64,
    pub concurrency: usize,
}

/// What a finished run measured.
#[derive(Debug)]
pub struct Measurement {
    pub latency_us: Histogram<u64>,
    pub outcomes: OutcomeCounts,
    /// From just before the first request to the last answer.
    pub wall_time: Duration,
}

/// One request's report from a worker to the collector.
struct Sample {
    latency_us: u64,
    outcome: Outcome,
}

/// The idempotency key of request `index` of a run.
pub fn idempotency_key(key_prefix: &str, index: u64) -> String {
    format!("{key_prefix}-{index}")
}

/// The connection request `index` goes out on, out of `connections` (at least one).
pub fn connection_for(index: u64, connections: usize) -> usize {
    let connections_count = u64::try_from(connections.max(1)).unwrap_or(u64::MAX);
    usize::try_from(index % connections_count).unwrap_or(0)
}

/// Runs the plan over `clients` (one per connection) and returns what it measured.
pub async fn run(
    clients: Vec<PaymentServiceClient<Channel>>,
    plan: Plan,
    progress: &ProgressBar,
) -> anyhow::Result<Measurement> {
    anyhow::ensure!(!clients.is_empty(), "the closed loop needs at least one connection");
    anyhow::ensure!(plan.concurrency > 0, "the closed loop needs at least one worker");
    let mut latency_us = Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS)
        .context("cannot create the latency histogram")?;
    let mut outcomes = OutcomeCounts::default();

    let shared = Arc::new(Shared {
        clients,
        instruction: plan.instruction,
        key_prefix: plan.key_prefix,
        requests: plan.requests,
        next_index: AtomicU64::new(0),
    });
    // More workers than requests would only idle.
    let workers_count = u64::try_from(plan.concurrency).unwrap_or(u64::MAX).min(plan.requests);
    let (sender, mut receiver) = mpsc::channel::<Sample>(SAMPLE_CHANNEL_CAPACITY);

    let started = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..workers_count {
        workers.spawn(worker(Arc::clone(&shared), sender.clone()));
    }
    // The channel closes when the last worker is done.
    drop(sender);
    while let Some(sample) = receiver.recv().await {
        latency_us.saturating_record(sample.latency_us);
        outcomes.record(sample.outcome);
        progress.inc(1);
    }
    let wall_time = started.elapsed();
    while let Some(joined) = workers.join_next().await {
        joined.context("a load worker stopped abnormally")?;
    }
    Ok(Measurement { latency_us, outcomes, wall_time })
}

/// What every worker reads; only `next_index` changes.
struct Shared {
    clients: Vec<PaymentServiceClient<Channel>>,
    instruction: wire::PaymentInstruction,
    key_prefix: String,
    requests: u64,
    next_index: AtomicU64,
}

async fn worker(shared: Arc<Shared>, samples: mpsc::Sender<Sample>) {
    loop {
        let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
        if index >= shared.requests {
            return;
        }
        let Some(client) = shared.clients.get(connection_for(index, shared.clients.len())) else {
            return;
        };
        let mut client = client.clone();
        let mut instruction = shared.instruction.clone();
        instruction.idempotency_key = idempotency_key(&shared.key_prefix, index);
        let request = wire::SubmitPaymentRequest { instruction: Some(instruction) };

        let sent = Instant::now();
        let result = client.submit_payment(request).await;
        let latency_us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);

        let outcome = classify(result.map(tonic::Response::into_inner));
        if samples.send(Sample { latency_us, outcome }).await.is_err() {
            // The collector is gone: nobody is counting any more.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_prefix_dash_request_number() {
        fn check(key_prefix: &str, index: u64, expected: &str) {
            assert_eq!(idempotency_key(key_prefix, index), expected);
        }
        check("lt-1767225600000-42", 0, "lt-1767225600000-42-0");
        check("run", 9_999, "run-9999");
    }

    #[test]
    fn requests_go_round_robin_over_the_connections() {
        fn check(connections: usize, expected: &[usize]) {
            let spread: Vec<usize> = (0..7).map(|index| connection_for(index, connections)).collect();
            assert_eq!(spread, expected, "{connections} connections");
        }
        check(1, &[0, 0, 0, 0, 0, 0, 0]);
        check(3, &[0, 1, 2, 0, 1, 2, 0]);
        check(4, &[0, 1, 2, 3, 0, 1, 2]);
        // Zero connections is refused before the run; here it must not divide by zero.
        check(0, &[0, 0, 0, 0, 0, 0, 0]);
    }
}
