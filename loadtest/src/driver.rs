//! The two ways of offering load, the warm-up, the run's length, and the progress bar.
//!
//! **Closed loop** (`--mode closed --concurrency C`): C workers, each sending its next request as
//! soon as the previous one is answered. The offered load adapts to the server, so this finds the
//! highest throughput at that concurrency; its latencies are measured from each send, and under
//! overload they look better than a user would see (a slow answer delays the requests behind it
//! instead of queueing them).
//!
//! **Open loop** (`--mode open --rate R`): request `i` is scheduled at `start + i/R` (see
//! `schedule`) and sent at that time in a task of its own, answered or not. A timer thread sleeps
//! until the next request is due and, when it wakes late, sends every request due by then in one
//! burst, so the arrival rate holds however the sleeps drift; it wakes at most once per
//! [`SEND_QUANTUM_US`], so above ~5,000/s requests leave in small bursts. Latency is measured
//! from the scheduled time (corrected for coordinated omission) and the service time from the
//! actual send.
//! At most `--in-flight-max` requests are in flight; a request that would exceed it is not sent,
//! and is counted as such with the time it had waited so far: never silently skipped.
//!
//! In both, request `i` goes out on connection `i % connections`, the first `--warmup` seconds are
//! sent but not recorded, and the run lasts `--duration` seconds or `--requests` requests after
//! it; requests still in flight at the end are waited for. The measured time runs from the end of
//! the warm-up to the last recorded answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::load::{Call, Connection, Load};
use crate::outcome::Outcome;
use crate::recorder::{Recorder, Recording, Sample};
use crate::schedule::{Schedule, latencies_us};

/// How a run offers load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Closed { concurrency: u64 },
    Open { rate_per_s: u64, in_flight_max: u64 },
}

/// How long the measured part lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    Duration(Duration),
    Requests(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub mode: Mode,
    pub length: Length,
    pub warmup: Duration,
    pub request_timeout: Duration,
}

/// What a finished run measured.
#[derive(Debug)]
pub struct Measurement {
    pub recording: Recording,
    /// From the end of the warm-up to the last recorded answer.
    pub measured_time: Duration,
}

/// Runs `plan` over `connections` (one client per HTTP/2 connection); the warm-up ends, and the
/// measured part begins, at `measure_start`.
pub async fn run(
    load: Arc<Load>,
    connections: Vec<Connection>,
    plan: Plan,
    progress: ProgressBar,
    measure_start: Instant,
) -> anyhow::Result<Measurement> {
    anyhow::ensure!(!connections.is_empty(), "a run needs at least one connection");
    let kinds = load.kind_names().len();
    let shared = Arc::new(Shared {
        load,
        recorder: Recorder::new(kinds)?,
        measure_start,
        plan,
        next_index: AtomicU64::new(0),
        measured_requests: AtomicU64::new(0),
        recorded: AtomicU64::new(0),
    });
    let ticker = tokio::spawn(tick_progress(Arc::clone(&shared), progress.clone()));
    let result = match plan.mode {
        Mode::Closed { concurrency } => closed_loop(Arc::clone(&shared), connections, concurrency).await,
        Mode::Open { rate_per_s, in_flight_max } => {
            open_loop(Arc::clone(&shared), connections, Schedule::new(rate_per_s), in_flight_max).await
        }
    };
    ticker.abort();
    // An aborted task lets go of what it holds only once it is gone.
    let _cancelled = ticker.await;
    progress.finish_and_clear();
    result?;
    let shared = Arc::into_inner(shared).context("a load task outlived the run")?;
    let recording = shared.recorder.merged(kinds)?;
    let measured_time = match recording.last_finished_at {
        Some(last) => last.saturating_duration_since(measure_start),
        None => measure_start.elapsed(),
    };
    Ok(Measurement { recording, measured_time })
}

/// What every request task reads.
struct Shared {
    load: Arc<Load>,
    recorder: Recorder,
    measure_start: Instant,
    plan: Plan,
    /// The next request number: its idempotency key, its random stream, its connection.
    next_index: AtomicU64,
    /// Closed loop, `--requests`: measured requests handed out so far.
    measured_requests: AtomicU64,
    /// Recorded requests, for the progress bar.
    recorded: AtomicU64,
}

impl Shared {
    fn record(&self, index: u64, call: Call, latency_us: u64, service_time_us: Option<u64>, finished_at: Instant) {
        let example = (!call.matched).then(|| self.load.describe(index));
        let sample = Sample {
            kind: call.kind,
            outcome: call.outcome,
            matched: call.matched,
            latency_us,
            service_time_us,
            example,
            finished_at,
        };
        self.recorder.record(index, sample);
        self.recorded.fetch_add(1, Ordering::Relaxed);
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn connection_for(index: u64, connections: usize) -> usize {
    let count = u64::try_from(connections.max(1)).unwrap_or(u64::MAX);
    usize::try_from(index % count).unwrap_or(0)
}

/// How long a closed-loop worker waits after its connection was lost before it sends again.
const LOST_CONNECTION_PAUSE_MS: u64 = 10;

async fn closed_loop(shared: Arc<Shared>, connections: Vec<Connection>, concurrency: u64) -> anyhow::Result<()> {
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        // Each worker owns clones of the clients: no per-request clone, no shared lock.
        workers.spawn(closed_worker(Arc::clone(&shared), connections.clone()));
    }
    while let Some(joined) = workers.join_next().await {
        joined.context("a load worker stopped abnormally")?;
    }
    Ok(())
}

async fn closed_worker(shared: Arc<Shared>, mut connections: Vec<Connection>) {
    loop {
        let sent_at = Instant::now();
        let measured = sent_at >= shared.measure_start;
        if measured {
            let finished = match shared.plan.length {
                Length::Requests(requests) => shared.measured_requests.fetch_add(1, Ordering::Relaxed) >= requests,
                Length::Duration(duration) => sent_at >= shared.measure_start + duration,
            };
            if finished {
                return;
            }
        }
        let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
        let connection_count = connections.len();
        let Some(connection) = connections.get_mut(connection_for(index, connection_count)) else { return };
        let call = shared.load.call(connection, index, shared.plan.request_timeout).await;
        let connection_lost = call.outcome.is_connection_lost();
        if measured {
            let finished_at = Instant::now();
            shared.record(index, call, micros(finished_at - sent_at), None, finished_at);
        }
        if connection_lost {
            // A dead server answers at once; without a pause the loop would spin on it.
            tokio::time::sleep(Duration::from_millis(LOST_CONNECTION_PAUSE_MS)).await;
        }
    }
}

async fn open_loop(
    shared: Arc<Shared>,
    connections: Vec<Connection>,
    schedule: Schedule,
    in_flight_max: u64,
) -> anyhow::Result<()> {
    let warmup_ns = u64::try_from(shared.plan.warmup.as_nanos()).unwrap_or(u64::MAX);
    // The schedule starts with the warm-up: everything due before its end is not recorded.
    let first_measured = schedule.due_before(warmup_ns);
    let total = match shared.plan.length {
        Length::Requests(requests) => first_measured.saturating_add(requests),
        Length::Duration(duration) => {
            let duration_ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
            schedule.due_before(warmup_ns.saturating_add(duration_ns))
        }
    };
    let start = shared.measure_start.checked_sub(shared.plan.warmup).context("the warm-up reaches before boot")?;
    // Every request task holds a sender; when the timer thread and the last task have dropped
    // theirs, `recv` returns None: everything sent has ended.
    let (all_done, mut all_ended) = mpsc::channel::<()>(1);
    let runtime = tokio::runtime::Handle::current();
    let timer_shared = Arc::clone(&shared);
    let timer = tokio::task::spawn_blocking(move || {
        let timer = OpenTimer {
            shared: timer_shared,
            connections,
            schedule,
            in_flight_max,
            in_flight: Arc::new(AtomicU64::new(0)),
            start,
            first_measured,
            total,
            runtime,
            all_done,
        };
        timer.run();
    });
    timer.await.context("the open loop's timer stopped abnormally")?;
    while all_ended.recv().await.is_some() {}
    Ok(())
}

/// The open loop's timer thread sends at most one burst per this many microseconds. Measured with
/// the echo service at 20,000/s on two cores: 15 % less client CPU and half the service time of
/// a wake-up per request, for the same latency from the schedule.
const SEND_QUANTUM_US: u64 = 200;

/// The open loop's timer thread.
struct OpenTimer {
    shared: Arc<Shared>,
    connections: Vec<Connection>,
    schedule: Schedule,
    in_flight_max: u64,
    in_flight: Arc<AtomicU64>,
    start: Instant,
    first_measured: u64,
    total: u64,
    runtime: tokio::runtime::Handle,
    all_done: mpsc::Sender<()>,
}

impl OpenTimer {
    fn run(self) {
        let mut next: u64 = 0;
        let mut earliest_wake = self.start;
        while next < self.total {
            let now = Instant::now();
            let elapsed_ns = u64::try_from(now.saturating_duration_since(self.start).as_nanos()).unwrap_or(u64::MAX);
            let due = self.schedule.due_by(elapsed_ns).min(self.total);
            if next >= due || now < earliest_wake {
                // A thread sleep, not the runtime's millisecond timer: requests leave within the
                // kernel's timer slack (~50 µs) of their time instead of up to a millisecond late.
                let wake = (self.start + Duration::from_nanos(self.schedule.due_ns(next))).max(earliest_wake);
                std::thread::sleep(wake.saturating_duration_since(now));
                continue;
            }
            for index in next..due {
                self.send(index);
            }
            next = due;
            // At high rates, one wake-up (of this thread, and of a runtime worker) per request
            // would cost more than the requests; gathering what falls due within a quantum
            // into one burst bounds the wake-ups, at the price of up to a quantum of lateness,
            // which the latency from the schedule includes.
            earliest_wake = now + Duration::from_micros(SEND_QUANTUM_US);
        }
    }

    fn send(&self, index: u64) {
        let scheduled_at = self.start + Duration::from_nanos(self.schedule.due_ns(index));
        let measured = index >= self.first_measured;
        if self.in_flight.load(Ordering::Relaxed) >= self.in_flight_max {
            if measured {
                let now = Instant::now();
                let waited_us = micros(now.saturating_duration_since(scheduled_at));
                let call = Call { kind: self.shared.load.kind_of(index), outcome: Outcome::not_sent(), matched: false };
                // Its wait so far is its latency; it had no service time.
                self.shared.record(index, call, waited_us, None, now);
            }
            return;
        }
        let Some(connection) = self.connections.get(connection_for(index, self.connections.len())) else { return };
        let mut connection = connection.clone();
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&self.shared);
        let in_flight = Arc::clone(&self.in_flight);
        let done = self.all_done.clone();
        let start = self.start;
        self.runtime.spawn(async move {
            let sent_at = Instant::now();
            let call = shared.load.call(&mut connection, index, shared.plan.request_timeout).await;
            let finished_at = Instant::now();
            in_flight.fetch_sub(1, Ordering::Relaxed);
            if measured {
                let since_start =
                    |at: Instant| u64::try_from(at.saturating_duration_since(start).as_nanos()).unwrap_or(u64::MAX);
                let (latency_us, service_time_us) =
                    latencies_us(since_start(scheduled_at), since_start(sent_at), since_start(finished_at));
                shared.record(index, call, latency_us, Some(service_time_us), finished_at);
            }
            // `done` says this request has ended, so everything it holds goes first.
            drop(shared);
            drop(done);
        });
    }
}

/// The progress bar's template while measuring a fixed duration, and a fixed number of requests.
const DURATION_TEMPLATE: &str = "{elapsed_precise} [{bar:40}] {msg}";
const REQUESTS_TEMPLATE: &str = "{elapsed_precise} [{bar:40}] {pos}/{len} requests, {msg}";
const PROGRESS_TICK_MS: u64 = 250;

/// A progress bar on stderr, or a hidden one when `quiet` or stderr is not a terminal.
pub fn progress_bar(plan: &Plan, quiet: bool) -> ProgressBar {
    use std::io::IsTerminal as _;
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (length, template) = match plan.length {
        Length::Duration(duration) => (u64::try_from(duration.as_millis()).unwrap_or(u64::MAX), DURATION_TEMPLATE),
        Length::Requests(requests) => (requests, REQUESTS_TEMPLATE),
    };
    let bar = ProgressBar::new(length);
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// Moves the bar from the counters, a few times a second: requests never touch it.
async fn tick_progress(shared: Arc<Shared>, bar: ProgressBar) {
    if bar.is_hidden() {
        return;
    }
    let mut interval = tokio::time::interval(Duration::from_millis(PROGRESS_TICK_MS));
    loop {
        interval.tick().await;
        let now = Instant::now();
        if now < shared.measure_start {
            let left_ms = shared.measure_start.saturating_duration_since(now).as_millis();
            bar.set_message(format!("warming up, {left_ms} ms left"));
            continue;
        }
        let recorded = shared.recorded.load(Ordering::Relaxed);
        let elapsed_ms =
            u64::try_from(now.saturating_duration_since(shared.measure_start).as_millis()).unwrap_or(u64::MAX);
        let per_s = recorded.saturating_mul(1_000) / elapsed_ms.max(1);
        match shared.plan.length {
            Length::Duration(_) => {
                bar.set_position(elapsed_ms);
                bar.set_message(format!("{recorded} requests, {per_s}/s"));
            }
            Length::Requests(_) => {
                bar.set_position(recorded);
                bar.set_message(format!("{per_s}/s"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
