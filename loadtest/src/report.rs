//! The end-of-run report: a summary table and an outcome table on stdout, and optionally the same
//! figures as a flat JSON object for scripts and CI.
//!
//! All figures are integers computed with integer arithmetic: latencies are recorded in
//! microseconds and shown as milliseconds with two decimals (rounded half up), throughput is
//! `requests * 1_000_000 / wall_time_us`. This module formats a finished run; it does not measure
//! anything and does not decide the exit code.

use std::fmt::Write as _;
use std::time::Duration;

use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use hdrhistogram::Histogram;

use crate::outcome::{OutcomeClass, OutcomeCounts};

/// What was asked for, repeated in the report so a saved report stands on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSettings {
    pub target: String,
    pub participant: String,
    pub payer: String,
    pub payee: String,
    pub amount: String,
    pub currency: String,
    pub fixed_side: &'static str,
    pub key_prefix: String,
    pub requests: u64,
    pub concurrency: usize,
    pub connections: usize,
}

/// The measured figures of a finished run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub completed: u64,
    pub wall_time_us: u64,
    pub throughput_per_s: u64,
    pub latency_p50_us: u64,
    pub latency_p90_us: u64,
    pub latency_p99_us: u64,
    pub latency_p999_us: u64,
    pub latency_max_us: u64,
}

impl Figures {
    pub fn new(latency_us: &Histogram<u64>, wall_time: Duration) -> Self {
        let completed = latency_us.len();
        let wall_time_us = u64::try_from(wall_time.as_micros()).unwrap_or(u64::MAX);
        Self {
            completed,
            wall_time_us,
            throughput_per_s: throughput_per_s(completed, wall_time_us),
            latency_p50_us: latency_us.value_at_quantile(0.50),
            latency_p90_us: latency_us.value_at_quantile(0.90),
            latency_p99_us: latency_us.value_at_quantile(0.99),
            latency_p999_us: latency_us.value_at_quantile(0.999),
            latency_max_us: latency_us.max(),
        }
    }
}

/// Completed requests per second over the wall time; a zero wall time counts as one microsecond.
pub fn throughput_per_s(completed: u64, wall_time_us: u64) -> u64 {
    let per_s = u128::from(completed) * 1_000_000 / u128::from(wall_time_us.max(1));
    u64::try_from(per_s).unwrap_or(u64::MAX)
}

/// Microseconds as milliseconds with two decimals, rounded half up: 1_235 µs is "1.24 ms".
pub fn format_ms(micros: u64) -> String {
    let hundredths_ms = micros.saturating_add(5) / 10;
    format!("{}.{:02} ms", hundredths_ms / 100, hundredths_ms % 100)
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

/// The summary table: one figure per row, so it fits a narrow terminal.
pub fn summary_table(settings: &RunSettings, figures: &Figures) -> Table {
    let mut summary = table(&["closed loop", "value"]);
    let rows: [(&str, String); 10] = [
        ("requests", format!("{} of {}", figures.completed, settings.requests)),
        ("concurrency", settings.concurrency.to_string()),
        ("connections", settings.connections.to_string()),
        ("wall time", format_ms(figures.wall_time_us)),
        ("throughput", format!("{} requests/s", figures.throughput_per_s)),
        ("latency p50", format_ms(figures.latency_p50_us)),
        ("latency p90", format_ms(figures.latency_p90_us)),
        ("latency p99", format_ms(figures.latency_p99_us)),
        ("latency p99.9", format_ms(figures.latency_p999_us)),
        ("latency max", format_ms(figures.latency_max_us)),
    ];
    for (name, value) in rows {
        summary.add_row(vec![name.to_owned(), value]);
    }
    right_align(&mut summary, &[1]);
    summary
}

/// The outcome table: one row per class and reason code, with its count and share.
pub fn outcome_table(counts: &OutcomeCounts) -> Table {
    let mut outcomes = table(&["outcome", "reason", "count", "share"]);
    let total = counts.total();
    for (outcome, count) in counts.rows() {
        outcomes.add_row(vec![
            outcome.class.label().to_owned(),
            outcome.detail.clone(),
            count.to_string(),
            format_percent(count, total),
        ]);
    }
    right_align(&mut outcomes, &[2, 3]);
    outcomes
}

/// One line saying what was sent, printed above the tables.
pub fn headline(settings: &RunSettings) -> String {
    format!(
        "SubmitPayment to {} as {}: {} → {}, {} {} fixed {}, keys {}-<n>",
        settings.target,
        settings.participant,
        settings.payer,
        settings.payee,
        settings.amount,
        settings.currency,
        settings.fixed_side,
        settings.key_prefix,
    )
}

/// The report as one flat JSON object; strings are escaped, numbers are integers.
pub fn json_report(settings: &RunSettings, figures: &Figures, counts: &OutcomeCounts) -> String {
    let mut json = String::from("{");
    let strings: [(&str, &str); 9] = [
        ("mode", "closed_loop"),
        ("target", &settings.target),
        ("participant", &settings.participant),
        ("payer", &settings.payer),
        ("payee", &settings.payee),
        ("amount", &settings.amount),
        ("currency", &settings.currency),
        ("fixed_side", settings.fixed_side),
        ("key_prefix", &settings.key_prefix),
    ];
    for (key, value) in strings {
        let _ = write!(json, "\"{key}\":{},", json_string(value));
    }
    let numbers: [(&str, u64); 11] = [
        ("requests", settings.requests),
        ("concurrency", u64::try_from(settings.concurrency).unwrap_or(u64::MAX)),
        ("connections", u64::try_from(settings.connections).unwrap_or(u64::MAX)),
        ("completed", figures.completed),
        ("wall_time_us", figures.wall_time_us),
        ("throughput_per_s", figures.throughput_per_s),
        ("latency_p50_us", figures.latency_p50_us),
        ("latency_p90_us", figures.latency_p90_us),
        ("latency_p99_us", figures.latency_p99_us),
        ("latency_p999_us", figures.latency_p999_us),
        ("latency_max_us", figures.latency_max_us),
    ];
    for (key, value) in numbers {
        let _ = write!(json, "\"{key}\":{value},");
    }
    for class in OutcomeClass::ALL {
        let _ = write!(json, "\"{}\":{},", class.json_key(), counts.class_total(class));
    }
    let _ = write!(json, "\"connection_failures\":{}}}", counts.connection_failures());
    json.push('\n');
    json
}

/// `value` as a JSON string literal (RFC 8259 escaping).
fn json_string(value: &str) -> String {
    let mut literal = String::with_capacity(value.len() + 2);
    literal.push('"');
    for character in value.chars() {
        match character {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            control if u32::from(control) < 0x20 => {
                let _ = write!(literal, "\\u{:04x}", u32::from(control));
            }
            other => literal.push(other),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;

    #[test]
    fn format_ms_rounds_microseconds_to_hundredths_of_a_millisecond() {
        fn check(micros: u64, expected: &str) {
            assert_eq!(format_ms(micros), expected, "{micros} µs");
        }
        check(0, "0.00 ms");
        check(4, "0.00 ms");
        check(5, "0.01 ms");
        check(10, "0.01 ms");
        check(999, "1.00 ms");
        check(1_234, "1.23 ms");
        check(1_235, "1.24 ms");
        check(12_340, "12.34 ms");
        check(1_000_000, "1000.00 ms");
        check(59_999_999, "60000.00 ms");
        check(u64::MAX, "18446744073709551.61 ms");
    }

    #[test]
    fn format_percent_rounds_down_to_hundredths() {
        fn check(part: u64, whole: u64, expected: &str) {
            assert_eq!(format_percent(part, whole), expected, "{part} of {whole}");
        }
        check(0, 0, "-");
        check(0, 10, "0.00 %");
        check(1, 3, "33.33 %");
        check(2, 3, "66.66 %");
        check(5_000, 5_000, "100.00 %");
        check(u64::MAX, u64::MAX, "100.00 %");
    }

    #[test]
    fn throughput_is_requests_per_second_in_integers() {
        fn check(completed: u64, wall_time_us: u64, expected: u64) {
            assert_eq!(throughput_per_s(completed, wall_time_us), expected, "{completed} in {wall_time_us} µs");
        }
        check(0, 1_000_000, 0);
        check(5_000, 1_000_000, 5_000);
        check(5_000, 2_500_000, 2_000);
        check(10_000, 3_000_000, 3_333);
        check(1, 0, 1_000_000);
        check(u64::MAX, 1, u64::MAX);
    }

    #[test]
    fn json_strings_are_escaped() {
        fn check(value: &str, expected: &str) {
            assert_eq!(json_string(value), expected);
        }
        check("bank-hk", "\"bank-hk\"");
        check("say \"hi\"", "\"say \\\"hi\\\"\"");
        check("a\\b", "\"a\\\\b\"");
        check("line\nnext\ttab", "\"line\\nnext\\ttab\"");
        check("\u{1}", "\"\\u0001\"");
        check("e-hkd → e-cny", "\"e-hkd → e-cny\"");
    }

    fn settings() -> RunSettings {
        RunSettings {
            target: "http://127.0.0.1:50051".to_owned(),
            participant: "bank-hk".to_owned(),
            payer: "e-hkd/bank-hk.w01".to_owned(),
            payee: "e-cny/bank-cn.w01".to_owned(),
            amount: "10.00".to_owned(),
            currency: "HKD".to_owned(),
            fixed_side: "send",
            key_prefix: "lt-1".to_owned(),
            requests: 3,
            concurrency: 2,
            connections: 1,
        }
    }

    #[test]
    fn json_report_is_one_flat_object_with_every_figure() {
        let mut latency_us = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for micros in [100, 200, 300] {
            latency_us.record(micros).unwrap();
        }
        let figures = Figures::new(&latency_us, Duration::from_millis(3));
        let mut counts = OutcomeCounts::default();
        counts.record(Outcome::new(OutcomeClass::Settled, ""));
        counts.record(Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"));
        counts.record(Outcome::new(OutcomeClass::GrpcError, "UNAVAILABLE"));
        let json = json_report(&settings(), &figures, &counts);
        assert_eq!(
            json,
            concat!(
                "{\"mode\":\"closed_loop\",\"target\":\"http://127.0.0.1:50051\",\"participant\":\"bank-hk\",",
                "\"payer\":\"e-hkd/bank-hk.w01\",\"payee\":\"e-cny/bank-cn.w01\",\"amount\":\"10.00\",",
                "\"currency\":\"HKD\",\"fixed_side\":\"send\",\"key_prefix\":\"lt-1\",",
                "\"requests\":3,\"concurrency\":2,\"connections\":1,\"completed\":3,\"wall_time_us\":3000,",
                "\"throughput_per_s\":1000,\"latency_p50_us\":200,\"latency_p90_us\":300,",
                "\"latency_p99_us\":300,\"latency_p999_us\":300,\"latency_max_us\":300,",
                "\"settled\":1,\"rejected\":1,\"failed\":0,\"pending\":0,\"grpc_errors\":1,\"unexpected\":0,",
                "\"connection_failures\":1}\n"
            )
        );
    }

    #[test]
    fn tables_show_every_figure_and_outcome() {
        let figures = Figures {
            completed: 3,
            wall_time_us: 3_000,
            throughput_per_s: 1_000,
            latency_p50_us: 2_000,
            latency_p90_us: 2_500,
            latency_p99_us: 2_990,
            latency_p999_us: 2_999,
            latency_max_us: 3_001,
        };
        let summary = summary_table(&settings(), &figures).to_string();
        for expected in
            ["3 of 3", "1000 requests/s", "2.00 ms", "2.50 ms", "2.99 ms", "3.00 ms", "latency p99.9", "latency max"]
        {
            assert!(summary.contains(expected), "{expected:?} missing from\n{summary}");
        }
        let mut counts = OutcomeCounts::default();
        counts.record(Outcome::new(OutcomeClass::Settled, ""));
        counts.record(Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"));
        let outcomes = outcome_table(&counts).to_string();
        for expected in ["settled", "rejected", "NO_ROUTE", "50.00 %"] {
            assert!(outcomes.contains(expected), "{expected:?} missing from\n{outcomes}");
        }
    }
}
