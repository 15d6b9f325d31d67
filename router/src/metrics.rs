//! The router's Prometheus metrics: what happens to payments, how long each stage takes, how each
//! ledger answers, and how full the queues are. Served as text at `/metrics` by [`crate::http`].
//!
//! One registry per process ([`metrics`]), written from wherever the thing measured happens (the
//! pipeline, the coordinator, the stores' writers) and read only when scraped. Recording costs a
//! few atomic operations; labels are static strings except the ledger id and the reason code,
//! which come from a small fixed set (the configuration, the reason codes).
//!
//! Not here: traces (one per payment, [`crate::telemetry`]) and health ([`crate::lifecycle`]).

use std::sync::OnceLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PaymentLabels {
    pub status: &'static str,
    /// The reason code, empty for a settled payment.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    pub stage: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LedgerCallLabels {
    pub ledger: String,
    pub call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreLabels {
    pub store: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub queue: &'static str,
}

pub struct Metrics {
    registry: Registry,
    /// Final (and held) payments by status and reason code.
    pub payments: Family<PaymentLabels, Counter>,
    /// Seconds per pipeline stage: route (and FX pricing), compliance (screening), prepare,
    /// commit, total.
    pub stage_seconds: Family<StageLabels, Histogram>,
    /// Seconds per ledger call (prepare, commit, abort), by ledger.
    pub ledger_call_seconds: Family<LedgerCallLabels, Histogram>,
    /// Ledger calls that failed (a refusal to prepare is a vote, not an error), by ledger.
    pub ledger_errors: Family<LedgerCallLabels, Counter>,
    /// Decided payments whose decision some ledger has not acknowledged yet (re-delivered in the
    /// background).
    pub in_doubt: Gauge,
    /// Writes per group commit of the journal store (embedded writer, PostgreSQL group writer).
    pub journal_flush_writes: Family<StoreLabels, Histogram>,
    /// Seconds per group commit.
    pub journal_flush_seconds: Family<StoreLabels, Histogram>,
    /// Quoted payments: used (the quote was valid), expired, unknown, already used.
    pub quotes: Family<OutcomeLabels, Counter>,
    /// Journal entries taken over from routers that are gone, by decision (commit, abort).
    pub takeovers: Family<OutcomeLabels, Counter>,
    /// Requests waiting in a queue: payments in flight, the stores' writers.
    pub queue_depth: Family<QueueLabels, Gauge>,
    /// The bound of each queue.
    pub queue_capacity: Family<QueueLabels, Gauge>,
}

/// Latency buckets from 100 µs to about 13 s.
fn seconds_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.000_1, 2.0, 18)
}

/// Batch-size buckets: 1, 2, 4, … 1024.
fn size_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 11)
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("corridor");
        let payments = Family::<PaymentLabels, Counter>::default();
        registry.register("payments", "Payments by final status (or HELD) and reason code", payments.clone());
        let stage_seconds =
            Family::<StageLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register_with_unit(
            "stage_duration",
            "Time per pipeline stage: route (with FX pricing), compliance, prepare, commit, total",
            Unit::Seconds,
            stage_seconds.clone(),
        );
        let ledger_call_seconds =
            Family::<LedgerCallLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register_with_unit(
            "ledger_call_duration",
            "Time per ledger call (prepare, commit, abort), by ledger",
            Unit::Seconds,
            ledger_call_seconds.clone(),
        );
        let ledger_errors = Family::<LedgerCallLabels, Counter>::default();
        registry.register("ledger_errors", "Ledger calls that failed, by ledger and call", ledger_errors.clone());
        let in_doubt = Gauge::default();
        registry.register(
            "in_doubt_payments",
            "Decided payments some ledger has not acknowledged yet (re-delivered in the background)",
            in_doubt.clone(),
        );
        let journal_flush_writes =
            Family::<StoreLabels, Histogram>::new_with_constructor(|| Histogram::new(size_buckets()));
        registry.register(
            "journal_flush_writes",
            "Writes per group commit of the durable store",
            journal_flush_writes.clone(),
        );
        let journal_flush_seconds =
            Family::<StoreLabels, Histogram>::new_with_constructor(|| Histogram::new(seconds_buckets()));
        registry.register_with_unit(
            "journal_flush_duration",
            "Time per group commit of the durable store",
            Unit::Seconds,
            journal_flush_seconds.clone(),
        );
        let quotes = Family::<OutcomeLabels, Counter>::default();
        registry.register("quoted_payments", "Payments carrying a locked quote, by what became of it", quotes.clone());
        let takeovers = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "takeovers",
            "Journal entries taken over from a router that is gone (or an earlier run), by decision",
            takeovers.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register("queue_depth", "Requests in a bounded queue", queue_depth.clone());
        let queue_capacity = Family::<QueueLabels, Gauge>::default();
        registry.register("queue_capacity", "The bound of a queue", queue_capacity.clone());
        Self {
            registry,
            payments,
            stage_seconds,
            ledger_call_seconds,
            ledger_errors,
            in_doubt,
            journal_flush_writes,
            journal_flush_seconds,
            quotes,
            takeovers,
            queue_depth,
            queue_capacity,
        }
    }

    /// Counts one payment that ended (or was held) with `status` and `reason`.
    pub fn payment(&self, status: &'static str, reason: Option<&str>) {
        self.payments.get_or_create(&PaymentLabels { status, reason: reason.unwrap_or("").to_owned() }).inc();
    }

    pub fn stage(&self, stage: &'static str, microseconds: u64) {
        self.stage_seconds.get_or_create(&StageLabels { stage }).observe(seconds_of_us(microseconds));
    }

    pub fn ledger_call(&self, ledger: &str, call: &'static str, elapsed: Duration, failed: bool) {
        let labels = LedgerCallLabels { ledger: ledger.to_owned(), call };
        self.ledger_call_seconds.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if failed {
            self.ledger_errors.get_or_create(&labels).inc();
        }
    }

    pub fn journal_flush(&self, store: &'static str, writes: usize, elapsed: Duration) {
        let labels = StoreLabels { store };
        self.journal_flush_writes.get_or_create(&labels).observe(writes as f64);
        self.journal_flush_seconds.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    pub fn quote(&self, outcome: &'static str) {
        self.quotes.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn queue(&self, queue: &'static str, depth: usize, capacity: usize) {
        let labels = QueueLabels { queue };
        self.queue_depth.get_or_create(&labels).set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.queue_capacity.get_or_create(&labels).set(i64::try_from(capacity).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _infallible = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// Microseconds as seconds, for a histogram (an observation, never money).
fn seconds_of_us(microseconds: u64) -> f64 {
    Duration::from_micros(microseconds).as_secs_f64()
}

/// This process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_what_was_recorded() {
        let metrics = Metrics::new();
        metrics.payment("SETTLED", None);
        metrics.payment("REJECTED", Some("INSUFFICIENT_FUNDS"));
        metrics.stage("prepare", 1_500);
        metrics.ledger_call("e-hkd", "commit", Duration::from_millis(2), true);
        metrics.queue("payments_in_flight", 3, 4096);
        let text = metrics.render();
        for expected in [
            "corridor_payments_total{status=\"SETTLED\",reason=\"\"} 1",
            "corridor_payments_total{status=\"REJECTED\",reason=\"INSUFFICIENT_FUNDS\"} 1",
            "corridor_stage_duration_seconds_count{stage=\"prepare\"} 1",
            "corridor_ledger_errors_total{ledger=\"e-hkd\",call=\"commit\"} 1",
            "corridor_queue_depth{queue=\"payments_in_flight\"} 3",
            "corridor_queue_capacity{queue=\"payments_in_flight\"} 4096",
        ] {
            assert!(text.contains(expected), "no `{expected}` in:\n{text}");
        }
    }
}
