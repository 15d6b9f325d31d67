//! What a run records: latency histograms, outcome counts and, per kind of the mix, how many
//! answers matched its expectation, with the first few that did not.
//!
//! Requests record into one of a few shards (a worker or request number picks it), each behind its
//! own mutex, held only for the few counter updates of one sample and never across an await: on
//! two cores the shards are almost never contended, and memory stays bounded however high the
//! concurrency (a histogram with three significant digits up to 60 s is ~140 KiB). The shards are
//! merged once, at the end.
//!
//! It records; it does not decide what is measured (the loops leave out the warm-up) or report.

use std::sync::Mutex;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::outcome::{Outcome, OutcomeCounts};

/// The highest latency the histograms tell apart; slower answers are recorded as this. It is
/// twice the request timeout, so in practice nothing saturates.
pub const LATENCY_MAX_US: u64 = 60_000_000;

/// Precision of the latency histograms: values are exact to three significant digits.
pub const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// Recording shards.
pub const SHARDS: u64 = 16;

/// Unexpected answers kept as examples, per kind.
pub const EXAMPLES_PER_KIND_MAX: usize = 3;

/// One finished request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of its kind in the mix (0 for the echo service).
    pub kind: usize,
    pub outcome: Outcome,
    /// Whether the outcome is the one its kind expects.
    pub matched: bool,
    /// Microseconds from its scheduled time (open loop) or its send (closed loop) to its end.
    pub latency_us: u64,
    /// Open loop only: microseconds from its actual send to its answer.
    pub service_time_us: Option<u64>,
    /// What was sent, for an unexpected answer kept as an example.
    pub example: Option<String>,
    pub finished_at: Instant,
}

/// Per kind: answers, and how many matched the kind's expectation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindTally {
    pub requests: u64,
    pub matched: u64,
    pub examples: Vec<String>,
}

impl KindTally {
    pub fn unexpected(&self) -> u64 {
        self.requests - self.matched
    }

    fn merge(&mut self, other: &KindTally) {
        self.requests += other.requests;
        self.matched += other.matched;
        let room = EXAMPLES_PER_KIND_MAX.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.iter().take(room).cloned());
    }
}

/// Everything recorded by one shard, or by all once merged.
#[derive(Debug, Clone)]
pub struct Recording {
    pub latency_us: Histogram<u64>,
    pub service_time_us: Histogram<u64>,
    pub outcomes: OutcomeCounts,
    /// The outcomes that are errors their kind did not expect: no payment (or echo) at all.
    pub errors: OutcomeCounts,
    pub kinds: Vec<KindTally>,
    pub last_finished_at: Option<Instant>,
}

impl Recording {
    pub fn new(kinds: usize) -> anyhow::Result<Self> {
        let histogram = || Histogram::<u64>::new_with_bounds(1, LATENCY_MAX_US, LATENCY_SIGNIFICANT_DIGITS);
        Ok(Self {
            latency_us: histogram()?,
            service_time_us: histogram()?,
            outcomes: OutcomeCounts::default(),
            errors: OutcomeCounts::default(),
            kinds: vec![KindTally::default(); kinds],
            last_finished_at: None,
        })
    }

    pub fn record(&mut self, sample: Sample) {
        self.latency_us.saturating_record(sample.latency_us);
        if let Some(service_time_us) = sample.service_time_us {
            self.service_time_us.saturating_record(service_time_us);
        }
        self.outcomes.record(&sample.outcome);
        if !sample.matched && sample.outcome.class.is_error() {
            self.errors.record(&sample.outcome);
        }
        if let Some(tally) = self.kinds.get_mut(sample.kind) {
            tally.requests += 1;
            if sample.matched {
                tally.matched += 1;
            } else if tally.examples.len() < EXAMPLES_PER_KIND_MAX
                && let Some(example) = sample.example
            {
                tally.examples.push(format!("{}: {example}", sample.outcome));
            }
        }
        self.last_finished_at = self.last_finished_at.max(Some(sample.finished_at));
    }

    pub fn merge(&mut self, other: &Recording) -> anyhow::Result<()> {
        self.latency_us.add(&other.latency_us)?;
        self.service_time_us.add(&other.service_time_us)?;
        self.outcomes.merge(&other.outcomes);
        self.errors.merge(&other.errors);
        for (mine, theirs) in self.kinds.iter_mut().zip(&other.kinds) {
            mine.merge(theirs);
        }
        self.last_finished_at = self.last_finished_at.max(other.last_finished_at);
        Ok(())
    }
}

/// The shards.
#[derive(Debug)]
pub struct Recorder {
    shards: Vec<Mutex<Recording>>,
}

impl Recorder {
    pub fn new(kinds: usize) -> anyhow::Result<Self> {
        let shards = (0..SHARDS).map(|_| Recording::new(kinds).map(Mutex::new)).collect::<anyhow::Result<_>>()?;
        Ok(Self { shards })
    }

    /// Records into the shard `hint` picks.
    pub fn record(&self, hint: u64, sample: Sample) {
        let shard = usize::try_from(hint % SHARDS).unwrap_or(0);
        // A poisoned shard means a recording panicked, a bug; its counts are still whole numbers.
        let mut recording = self.shards[shard].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        recording.record(sample);
    }

    /// All shards merged.
    pub fn merged(self, kinds: usize) -> anyhow::Result<Recording> {
        let mut total = Recording::new(kinds)?;
        for shard in self.shards {
            let shard = shard.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            total.merge(&shard)?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::OutcomeClass;

    fn sample(kind: usize, outcome: Outcome, matched: bool, latency_us: u64) -> Sample {
        Sample {
            kind,
            outcome,
            matched,
            latency_us,
            service_time_us: Some(latency_us / 2),
            example: Some(format!("request of kind {kind}")),
            finished_at: Instant::now(),
        }
    }

    #[test]
    fn shards_merge_into_one_recording() {
        let recorder = Recorder::new(2).unwrap();
        for hint in 0..100_u64 {
            let settled = Outcome::new(OutcomeClass::Settled, "");
            recorder.record(hint, sample(0, settled, true, 1_000 + hint));
        }
        for hint in 0..5_u64 {
            let rejected = Outcome::new(OutcomeClass::Rejected, "NO_ROUTE");
            recorder.record(hint * 7, sample(1, rejected, false, 50_000));
        }
        let recording = recorder.merged(2).unwrap();
        assert_eq!(recording.latency_us.len(), 105);
        assert_eq!(recording.service_time_us.len(), 105);
        assert_eq!(recording.latency_us.max(), recording.latency_us.highest_equivalent(50_000));
        assert_eq!(recording.outcomes.total(), 105);
        assert_eq!(recording.errors.total(), 0, "an unexpected rejection is an answer, not an error");
        assert_eq!(recording.kinds[0], KindTally { requests: 100, matched: 100, examples: Vec::new() });
        let unexpected = &recording.kinds[1];
        assert_eq!((unexpected.requests, unexpected.matched, unexpected.unexpected()), (5, 0, 5));
        assert_eq!(unexpected.examples.len(), EXAMPLES_PER_KIND_MAX);
        assert_eq!(unexpected.examples[0], "REJECTED:NO_ROUTE: request of kind 1");
        assert!(recording.last_finished_at.is_some());
    }

    #[test]
    fn a_latency_above_the_ceiling_saturates() {
        let mut recording = Recording::new(1).unwrap();
        recording.record(sample(0, Outcome::deadline(), false, u64::MAX));
        assert_eq!(recording.latency_us.len(), 1);
        assert!(recording.latency_us.max() >= LATENCY_MAX_US);
        assert_eq!(recording.errors.total(), 1);
        // An error the kind expects (a refusal at the API, say) is not one.
        let refused = Outcome::grpc_error(&tonic::Status::invalid_argument("amount"));
        recording.record(sample(0, refused, true, 100));
        assert_eq!(recording.errors.total(), 1);
    }
}
