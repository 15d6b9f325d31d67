//! `--server-pid`: the server's resident memory during the measured part of a run, read from
//! `/proc/<pid>/status` (Linux) once a second, and its peak (`VmHWM`) at the end.
//!
//! A soak run shows with it whether the server's memory grows with the number of payments. It
//! reads a file of another process; it does not attach to it, and a server that exits during the
//! run only ends the sampling.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Seconds between two samples.
pub const SAMPLE_INTERVAL_MS: u64 = 1_000;

/// Samples kept; a run longer than this many intervals keeps every other one (soaks run for
/// minutes, not days, so this is only a bound).
pub const SAMPLES_MAX: usize = 100_000;

/// The memory figures of `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStatus {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

/// Reads VmRSS and VmHWM from a `/proc/<pid>/status` text.
pub fn parse_status(status: &str) -> Option<MemoryStatus> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let value = line[name.len()..].trim().strip_suffix("kB")?;
        value.trim().parse().ok()
    };
    Some(MemoryStatus { rss_kib: field("VmRSS:")?, peak_kib: field("VmHWM:")? })
}

pub fn read_status(pid: u32) -> anyhow::Result<MemoryStatus> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path} (--server-pid)"))?;
    parse_status(&text).with_context(|| format!("{path} has no VmRSS and VmHWM lines"))
}

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RssSample {
    /// Milliseconds since the start of the measured part.
    pub elapsed_ms: u64,
    pub rss_kib: u64,
}

/// The figures of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RssReport {
    pub pid: u32,
    pub samples: Vec<RssSample>,
    pub start_kib: u64,
    pub end_kib: u64,
    /// The process's peak resident set since it started (VmHWM), at the end of the run.
    pub peak_kib: u64,
    /// Whether the process was gone before the end.
    pub exited: bool,
}

/// A sampler running in the background.
#[derive(Debug)]
pub struct RssSampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<RssReport>,
}

impl RssSampler {
    /// Checks that `pid` can be read, then samples from `measure_start` on.
    pub fn start(pid: u32, measure_start: Instant) -> anyhow::Result<Self> {
        read_status(pid)?;
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut peak_kib = 0;
            let mut exited = false;
            tokio::time::sleep_until(measure_start.into()).await;
            let mut interval = tokio::time::interval(Duration::from_millis(SAMPLE_INTERVAL_MS));
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = interval.tick() => {}
                }
                match read_status(pid) {
                    Ok(status) => {
                        push_sample(&mut samples, measure_start, status.rss_kib);
                        peak_kib = status.peak_kib;
                    }
                    Err(_) => {
                        exited = true;
                        break;
                    }
                }
            }
            if !exited {
                match read_status(pid) {
                    Ok(status) => {
                        push_sample(&mut samples, measure_start, status.rss_kib);
                        peak_kib = status.peak_kib;
                    }
                    Err(_) => exited = true,
                }
            }
            let start_kib = samples.first().map_or(0, |sample: &RssSample| sample.rss_kib);
            let end_kib = samples.last().map_or(0, |sample| sample.rss_kib);
            RssReport { pid, samples, start_kib, end_kib, peak_kib, exited }
        });
        Ok(Self { stop, task })
    }

    /// Takes the last sample and the peak, and stops.
    pub async fn finish(self) -> anyhow::Result<RssReport> {
        // The task may have ended already (the server exited); then nobody listens.
        let _ = self.stop.send(());
        self.task.await.context("the memory sampler stopped abnormally")
    }
}

fn push_sample(samples: &mut Vec<RssSample>, measure_start: Instant, rss_kib: u64) {
    if samples.len() >= SAMPLES_MAX {
        // Halve the resolution rather than grow without bound.
        let mut index = 0;
        samples.retain(|_| {
            index += 1;
            index % 2 == 1
        });
    }
    let elapsed_ms = u64::try_from(measure_start.elapsed().as_millis()).unwrap_or(u64::MAX);
    samples.push(RssSample { elapsed_ms, rss_kib });
}

/// KiB as MiB with one decimal, rounded half up: 1_536 KiB is "1.5 MiB".
pub fn format_mib(kib: u64) -> String {
    let tenths = (u128::from(kib) * 10 + 512) / 1_024;
    format!("{}.{} MiB", tenths / 10, tenths % 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_files_give_rss_and_peak() {
        let status = "Name:\tcorridor\nUmask:\t0022\nVmPeak:\t 2000000 kB\nVmHWM:\t   91236 kB\nVmRSS:\t   80012 kB\n";
        assert_eq!(parse_status(status), Some(MemoryStatus { rss_kib: 80_012, peak_kib: 91_236 }));
        // A kernel thread has no memory lines.
        assert_eq!(parse_status("Name:\tkthreadd\nState:\tS (sleeping)\n"), None);
        assert_eq!(parse_status("VmHWM:\t12 MB\nVmRSS:\t1 kB\n"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let status = read_status(std::process::id()).unwrap();
        assert!(status.rss_kib > 0 && status.peak_kib >= status.rss_kib, "{status:?}");
        assert!(read_status(u32::MAX).is_err());
    }

    #[test]
    fn mib_have_one_decimal() {
        fn check(kib: u64, expected: &str) {
            assert_eq!(format_mib(kib), expected);
        }
        check(0, "0.0 MiB");
        check(1_536, "1.5 MiB");
        check(1_024, "1.0 MiB");
        check(80_012, "78.1 MiB");
        check(51, "0.0 MiB");
        check(52, "0.1 MiB");
    }

    #[tokio::test]
    async fn the_sampler_samples_this_process() {
        let sampler = RssSampler::start(std::process::id(), Instant::now()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let report = sampler.finish().await.unwrap();
        assert!(!report.exited);
        assert!(report.samples.len() >= 2, "{report:?}");
        assert!(report.start_kib > 0 && report.peak_kib >= report.end_kib);
    }
}
