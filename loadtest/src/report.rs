//! The end-of-run report: the results table, the per-kind and outcome tables on stdout, and the
//! whole report as JSON (`--json`).
//!
//! Every figure is an integer computed with integer arithmetic: latencies are recorded in
//! microseconds and shown as milliseconds with three decimals, percentiles are addressed in parts
//! per million (99.9 % is 999_000) and read off the histogram by counting, throughput is
//! `answers * 10^6 / measured_time_us`. The JSON's percentile numbers are written from their exact
//! decimal text. This module formats a finished run; it does not measure, and does not decide the
//! exit code.

use std::str::FromStr as _;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::{OutcomeClass, OutcomeCounts};
use crate::recorder::{KindTally, Recording};
use crate::rss::{RssReport, format_mib};

/// The version of the JSON report's shape.
pub const REPORT_FORMAT: u32 = 1;

/// Parts per million of the whole: 100 %.
pub const PPM_ALL: u32 = 1_000_000;

/// The percentiles of the curve, in parts per million: every 5 % to 90 %, then every tenth of
/// what is left in each decade (91..99 %, 99.1..99.9 %, ...) to 99.9999 %, and the maximum.
pub fn curve_ppm() -> Vec<u32> {
    let mut points: Vec<u32> = (0..=18).map(|step| step * 50_000).collect();
    let mut left = 100_000;
    while left >= 10 {
        let step = left / 10;
        points.extend((1..=9).map(|tenth| PPM_ALL - left + tenth * step));
        left = step;
    }
    points.push(PPM_ALL);
    points
}

/// The values at `ppms` parts per million (ascending) of `histogram`, by counting in one pass: the
/// same values as hdrhistogram's `value_at_quantile`, the highest equivalent of the bucket
/// reached; 0 when empty.
pub fn values_at_ppm(histogram: &Histogram<u64>, ppms: &[u32]) -> Vec<u64> {
    let total = histogram.len();
    if total == 0 {
        return vec![0; ppms.len()];
    }
    let mut values = Vec::with_capacity(ppms.len());
    let mut recorded = histogram.iter_recorded().peekable();
    let mut counted: u64 = 0;
    let mut value = 0;
    for &ppm in ppms {
        // The rank of the value at ppm: ceil(ppm * total / 10^6), at least the first.
        let rank = (u128::from(ppm.min(PPM_ALL)) * u128::from(total)).div_ceil(u128::from(PPM_ALL)).max(1);
        while u128::from(counted) < rank {
            let Some(step) = recorded.next() else { break };
            counted += step.count_since_last_iteration();
            value = step.value_iterated_to();
        }
        values.push(value);
    }
    values
}

/// `ppm` as a percent in decimal text without trailing zeros: 999_000 is "99.9", 500_000 "50".
pub fn percent_text(ppm: u32) -> String {
    let (whole, fraction) = (ppm / 10_000, ppm % 10_000);
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:04}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The inverse of [`percent_text`]: "99.9" is 999_000; at most four decimals, at most 100.
pub fn ppm_from_percent_text(text: &str) -> Option<u32> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || fraction.len() > 4 || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let fraction: u32 = if fraction.is_empty() { 0 } else { format!("{fraction:0<4}").parse().ok()? };
    let ppm = whole.checked_mul(10_000)?.checked_add(fraction)?;
    (ppm <= PPM_ALL).then_some(ppm)
}

/// One point of a latency-percentile curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Percent of requests answered within `latency_us`, e.g. 99.9.
    pub percentile: serde_json::Number,
    pub latency_us: u64,
}

pub fn curve(histogram: &Histogram<u64>) -> Vec<CurvePoint> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let ppms = curve_ppm();
    let values = values_at_ppm(histogram, &ppms);
    ppms.iter()
        .zip(values)
        .filter_map(|(ppm, latency_us)| {
            let percentile = serde_json::Number::from_str(&percent_text(*ppm)).ok()?;
            Some(CurvePoint { percentile, latency_us })
        })
        .collect()
}

/// The headline percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        let values = values_at_ppm(histogram, &[500_000, 900_000, 990_000, 999_000]);
        let max = if histogram.is_empty() { 0 } else { histogram.max() };
        Self { p50: values[0], p90: values[1], p99: values[2], p999: values[3], max }
    }
}

/// What was asked for, repeated in the report so a saved report stands on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// "payments" or "echo".
    pub service: &'static str,
    /// "closed" or "open".
    pub mode: &'static str,
    pub target: String,
    pub connections: u64,
    /// Closed loop.
    pub concurrency: Option<u64>,
    /// Open loop.
    pub rate_per_s: Option<u64>,
    pub in_flight_max: Option<u64>,
    /// One of `duration_s` and `requests`.
    pub duration_s: Option<u64>,
    pub requests: Option<u64>,
    pub warmup_s: u64,
    pub request_timeout_ms: u64,
    pub seed: u64,
    /// The mix file, or "built-in demo"; none for the echo service.
    pub mix: Option<String>,
    pub key_prefix: Option<String>,
    /// The echo service's payload.
    pub payload_bytes: Option<usize>,
}

/// The measured figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Results {
    /// Measured requests, whatever their end.
    pub requests: u64,
    /// Requests the server answered (a refusal is an answer).
    pub answers: u64,
    /// Requests that got no payment (or echo) and whose kind did not expect that: gRPC errors,
    /// timeouts, lost connections, malformed answers, requests never sent. A refusal at the API
    /// that a kind expects (GRPC:INVALID_ARGUMENT for a malformed amount) is not one.
    pub errors: u64,
    pub connection_lost: u64,
    pub timed_out: u64,
    pub not_sent: u64,
    /// Answers that did not match their kind's expectation.
    pub unexpected: u64,
    pub measured_time_us: u64,
    /// Answers per second of measured time.
    pub throughput_per_s: u64,
    /// From the send (closed loop) or the scheduled time (open loop) to the end.
    pub latency_us: Percentiles,
    /// Open loop: from the actual send.
    pub service_time_us: Option<Percentiles>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeRow {
    pub outcome: String,
    pub class: &'static str,
    /// The class in words.
    pub meaning: &'static str,
    pub detail: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindRow {
    pub name: String,
    pub weight: u32,
    pub expect: String,
    pub requests: u64,
    pub matched: u64,
    pub unexpected: u64,
    pub examples: Vec<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub format: u32,
    /// `--label`: names the run in plots that overlay several.
    pub label: String,
    pub settings: Settings,
    pub results: Results,
    pub latency_curve: Vec<CurvePoint>,
    /// Open loop only; empty otherwise.
    pub service_time_curve: Vec<CurvePoint>,
    pub outcomes: Vec<OutcomeRow>,
    /// The outcomes counted in `results.errors`.
    pub errors: Vec<OutcomeRow>,
    pub kinds: Vec<KindRow>,
    pub server_rss: Option<RssReport>,
}

/// A kind of the run, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindSetting {
    pub name: String,
    pub weight: u32,
    pub expect: String,
}

impl Report {
    pub fn new(
        label: String,
        settings: Settings,
        kinds: &[KindSetting],
        recording: &Recording,
        measured_time_us: u64,
        server_rss: Option<RssReport>,
    ) -> Self {
        let outcomes_counts = &recording.outcomes;
        let open = settings.mode == "open";
        let answers = outcomes_counts.answers();
        let unexpected = recording.kinds.iter().map(KindTally::unexpected).sum();
        let results = Results {
            requests: outcomes_counts.total(),
            answers,
            errors: recording.errors.total(),
            connection_lost: outcomes_counts.connection_lost(),
            timed_out: outcomes_counts.timed_out(),
            not_sent: outcomes_counts.class_total(OutcomeClass::NotSent),
            unexpected,
            measured_time_us,
            throughput_per_s: throughput_per_s(answers, measured_time_us),
            latency_us: Percentiles::of(&recording.latency_us),
            service_time_us: open.then(|| Percentiles::of(&recording.service_time_us)),
        };
        let outcomes = outcome_rows(outcomes_counts);
        let errors = outcome_rows(&recording.errors);
        let kinds = kinds
            .iter()
            .zip(&recording.kinds)
            .filter(|(setting, tally)| setting.weight > 0 || tally.requests > 0)
            .map(|(setting, tally)| KindRow {
                name: setting.name.clone(),
                weight: setting.weight,
                expect: setting.expect.clone(),
                requests: tally.requests,
                matched: tally.matched,
                unexpected: tally.unexpected(),
                examples: tally.examples.clone(),
            })
            .collect();
        Self {
            format: REPORT_FORMAT,
            label,
            settings,
            results,
            latency_curve: curve(&recording.latency_us),
            service_time_curve: if open { curve(&recording.service_time_us) } else { Vec::new() },
            outcomes,
            errors,
            kinds,
            server_rss,
        }
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        let mut json = serde_json::to_string_pretty(self)?;
        json.push('\n');
        Ok(json)
    }

    /// The results table: one figure per row, so it fits a narrow terminal.
    pub fn results_table(&self) -> Table {
        let settings = &self.settings;
        let results = &self.results;
        let title = if self.label.is_empty() { "run" } else { self.label.as_str() };
        let mut table = table(&[title, "value"]);
        let mut rows: Vec<(String, String)> = Vec::new();
        let service = match (settings.service, &settings.mix, settings.payload_bytes) {
            ("echo", _, Some(bytes)) => format!("echo ({bytes}-byte payload)"),
            (service, Some(mix), _) => format!("{service} (mix: {mix})"),
            (service, _, _) => service.to_owned(),
        };
        rows.push(("service".into(), format!("{service} at {}", settings.target)));
        let mode = match settings.mode {
            "open" => "open loop (latency from the scheduled time)",
            _ => "closed loop",
        };
        rows.push(("mode".into(), mode.to_owned()));
        rows.push(("connections".into(), settings.connections.to_string()));
        if let Some(concurrency) = settings.concurrency {
            rows.push(("concurrency".into(), concurrency.to_string()));
        }
        if let Some(rate_per_s) = settings.rate_per_s {
            let in_flight = settings.in_flight_max.map(|max| format!(", at most {max} in flight")).unwrap_or_default();
            rows.push(("target rate".into(), format!("{rate_per_s} requests/s{in_flight}")));
        }
        let asked = match (settings.duration_s, settings.requests) {
            (Some(duration_s), _) => format!(" ({duration_s} s asked"),
            (None, Some(requests)) => format!(" ({requests} requests asked"),
            (None, None) => " (".to_owned(),
        };
        rows.push((
            "duration".into(),
            format!("{}{asked}, after a {} s warm-up)", format_seconds(results.measured_time_us), settings.warmup_s),
        ));
        rows.push(("requests".into(), format!("{} ({} answered)", results.requests, results.answers)));
        rows.push(("throughput".into(), format!("{} answers/s", results.throughput_per_s)));
        for (name, value) in percentile_rows(&results.latency_us) {
            rows.push((format!("latency {name}"), format_ms(value)));
        }
        if let Some(service_time) = &results.service_time_us {
            for (name, value) in percentile_rows(service_time) {
                rows.push((format!("service time {name}"), format_ms(value)));
            }
        }
        rows.push(("errors".into(), self.errors_text()));
        rows.push(("unexpected answers".into(), results.unexpected.to_string()));
        if let Some(rss) = &self.server_rss {
            rows.push(("server RSS".into(), rss_text(rss)));
        }
        for (name, value) in rows {
            table.add_row(vec![name, value]);
        }
        right_align(&mut table, &[1]);
        table
    }

    fn errors_text(&self) -> String {
        let errors: Vec<String> = self.errors.iter().map(|row| format!("{} {}", row.count, row.outcome)).collect();
        if errors.is_empty() { "0".to_owned() } else { format!("{} ({})", self.results.errors, errors.join(", ")) }
    }

    /// One row per kind: weight, expectation, and how the answers compared with it.
    pub fn kinds_table(&self) -> Table {
        let mut table = table(&["kind", "weight", "expect", "requests", "as expected", "unexpected"]);
        for kind in &self.kinds {
            table.add_row(vec![
                kind.name.clone(),
                kind.weight.to_string(),
                kind.expect.clone(),
                kind.requests.to_string(),
                kind.matched.to_string(),
                kind.unexpected.to_string(),
            ]);
        }
        right_align(&mut table, &[1, 3, 4, 5]);
        table
    }

    /// The first unexpected answers of each kind, one per line.
    pub fn examples(&self) -> Vec<String> {
        self.kinds
            .iter()
            .flat_map(|kind| kind.examples.iter().map(move |example| format!("{}: {example}", kind.name)))
            .collect()
    }

    /// One row per outcome: class and detail, count, share.
    pub fn outcomes_table(&self) -> Table {
        let mut table = table(&["outcome", "meaning", "count", "share"]);
        let total = self.results.requests;
        for row in &self.outcomes {
            table.add_row(vec![
                row.outcome.clone(),
                row.meaning.to_owned(),
                row.count.to_string(),
                format_percent(row.count, total),
            ]);
        }
        right_align(&mut table, &[2, 3]);
        table
    }

    /// The server's memory in one line, as the soak reads it.
    pub fn rss_line(&self) -> Option<String> {
        self.server_rss.as_ref().map(|rss| format!("server RSS: {}", rss_text(rss)))
    }
}

fn outcome_rows(counts: &OutcomeCounts) -> Vec<OutcomeRow> {
    counts
        .rows()
        .map(|(outcome, count)| OutcomeRow {
            outcome: outcome.to_string(),
            class: outcome.class.token(),
            meaning: outcome.class.label(),
            detail: outcome.detail.to_string(),
            count,
        })
        .collect()
}

fn rss_text(rss: &RssReport) -> String {
    let exited = if rss.exited { " (the server exited during the run)" } else { "" };
    format!(
        "start {}, end {}, peak {}{exited}",
        format_mib(rss.start_kib),
        format_mib(rss.end_kib),
        format_mib(rss.peak_kib)
    )
}

fn percentile_rows(percentiles: &Percentiles) -> [(&'static str, u64); 5] {
    [
        ("p50", percentiles.p50),
        ("p90", percentiles.p90),
        ("p99", percentiles.p99),
        ("p99.9", percentiles.p999),
        ("max", percentiles.max),
    ]
}

/// Answers per second over the measured time; a zero time counts as one microsecond.
pub fn throughput_per_s(answers: u64, measured_time_us: u64) -> u64 {
    let per_s = u128::from(answers) * 1_000_000 / u128::from(measured_time_us.max(1));
    u64::try_from(per_s).unwrap_or(u64::MAX)
}

/// Microseconds as milliseconds to the microsecond: 1_234 µs is "1.234 ms".
pub fn format_ms(micros: u64) -> String {
    format!("{}.{:03} ms", micros / 1_000, micros % 1_000)
}

/// Microseconds as seconds to the millisecond: 10_001_499 µs is "10.001 s".
pub fn format_seconds(micros: u64) -> String {
    let millis = micros / 1_000;
    format!("{}.{:03} s", millis / 1_000, millis % 1_000)
}

/// `part` of `whole` as a percentage with two decimals, rounded down: 1 of 3 is "33.33 %".
pub fn format_percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "-".to_owned();
    }
    let hundredths_percent = u128::from(part) * 10_000 / u128::from(whole);
    format!("{}.{:02} %", hundredths_percent / 100, hundredths_percent % 100)
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    table
}

fn right_align(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

#[cfg(test)]
mod tests;
