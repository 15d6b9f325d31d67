//! `compare`: several `run --json` reports side by side, each as a ratio to a baseline (the echo
//! ceiling, in the benchmark): throughput, latency percentiles and the server's memory. Printed as
//! a table, and as Markdown for the README with `--markdown`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use serde::Deserialize;

use crate::report;

/// The parts of a JSON report `compare` reads.
#[derive(Debug, Deserialize)]
pub struct Case {
    #[serde(default)]
    pub label: String,
    pub settings: CaseSettings,
    pub results: CaseResults,
    #[serde(default)]
    pub server_rss: Option<CaseRss>,
}

#[derive(Debug, Deserialize)]
pub struct CaseSettings {
    pub mode: String,
    pub connections: u64,
    #[serde(default)]
    pub concurrency: Option<u64>,
    #[serde(default)]
    pub rate_per_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct CaseResults {
    pub answers: u64,
    pub errors: u64,
    pub unexpected: u64,
    pub throughput_per_s: u64,
    pub latency_us: report::Percentiles,
}

#[derive(Debug, Deserialize)]
pub struct CaseRss {
    pub start_kib: u64,
    pub end_kib: u64,
    pub peak_kib: u64,
}

/// One row of the comparison, as text.
struct Row {
    label: String,
    load: String,
    throughput: String,
    ratio: String,
    p50: String,
    p99: String,
    p999: String,
    memory: String,
    checks: String,
}

const HEADER: [&str; 9] = [
    "case",
    "load",
    "throughput",
    "of baseline",
    "p50",
    "p99",
    "p99.9",
    "server memory (start → end, peak)",
    "answers",
];

pub fn read(path: &Path) -> anyhow::Result<Case> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a `corridor-loadtest run --json` report", path.display()))
}

fn mib(kib: u64) -> String {
    format!("{} MiB", kib.div_ceil(1024))
}

fn row(case: &Case, path: &Path, baseline_throughput: u64) -> Row {
    let label = if case.label.is_empty() {
        path.file_stem().map_or_else(|| path.display().to_string(), |stem| stem.to_string_lossy().into_owned())
    } else {
        case.label.clone()
    };
    let load = match (case.settings.mode.as_str(), case.settings.concurrency, case.settings.rate_per_s) {
        ("open", _, Some(rate)) => format!("open, {rate}/s"),
        (_, Some(concurrency), _) => format!("closed, {concurrency} in flight"),
        (mode, _, _) => mode.to_owned(),
    };
    let latency = &case.results.latency_us;
    Row {
        label,
        load: format!("{load}, {} conn.", case.settings.connections),
        throughput: format!("{}/s", group_thousands(case.results.throughput_per_s)),
        ratio: report::format_percent(case.results.throughput_per_s, baseline_throughput),
        p50: report::format_ms(latency.p50),
        p99: report::format_ms(latency.p99),
        p999: report::format_ms(latency.p999),
        memory: case.server_rss.as_ref().map_or_else(
            || "-".to_owned(),
            |rss| format!("{} → {}, {}", mib(rss.start_kib), mib(rss.end_kib), mib(rss.peak_kib)),
        ),
        checks: format!(
            "{}{}",
            group_thousands(case.results.answers),
            match (case.results.unexpected, case.results.errors) {
                (0, 0) => String::new(),
                (unexpected, errors) => format!(" ({unexpected} unexpected, {errors} errors)"),
            }
        ),
    }
}

fn group_thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

/// Prints the comparison of `paths` against `baseline` (which is also its first row), and writes
/// it as a Markdown table to `markdown` if given.
pub fn compare(baseline: &Path, paths: &[PathBuf], markdown: Option<&Path>) -> anyhow::Result<()> {
    let base = read(baseline)?;
    let baseline_throughput = base.results.throughput_per_s;
    let mut rows = vec![row(&base, baseline, baseline_throughput)];
    for path in paths.iter().filter(|path| path.as_path() != baseline) {
        rows.push(row(&read(path)?, path, baseline_throughput));
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(HEADER);
    for row in &rows {
        table.add_row(
            [
                &row.label,
                &row.load,
                &row.throughput,
                &row.ratio,
                &row.p50,
                &row.p99,
                &row.p999,
                &row.memory,
                &row.checks,
            ]
            .into_iter()
            .enumerate()
            .map(|(column, text)| {
                let cell = Cell::new(text);
                if (2..=6).contains(&column) { cell.set_alignment(CellAlignment::Right) } else { cell }
            }),
        );
    }
    println!("{table}");
    if let Some(markdown) = markdown {
        std::fs::write(markdown, to_markdown(&rows)).with_context(|| format!("cannot write {}", markdown.display()))?;
    }
    Ok(())
}

fn to_markdown(rows: &[Row]) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "| {} |", HEADER.join(" | "));
    let _ = writeln!(text, "|---|---|--:|--:|--:|--:|--:|---|--:|");
    for row in rows {
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.label, row.load, row.throughput, row.ratio, row.p50, row.p99, row.p999, row.memory, row.checks
        );
    }
    text
}

/// The value at a JSON pointer (`/results/throughput_per_s`) of a report, as text: for scripts.
pub fn field(path: &Path, pointer: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let found = value.pointer(pointer).with_context(|| format!("{} has no {pointer}", path.display()))?;
    Ok(match found {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(50885), "50,885");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }

    #[test]
    fn a_report_compares_to_its_baseline() {
        let directory = std::env::temp_dir().join(format!("corridor-compare-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let report = |label: &str, throughput: u64, rss: &str| {
            format!(
                r#"{{"label": "{label}", "settings": {{"mode": "closed", "connections": 4, "concurrency": 64}},
                "results": {{"answers": 1000, "errors": 0, "unexpected": 0, "throughput_per_s": {throughput},
                "latency_us": {{"p50": 1500, "p90": 2000, "p99": 3250, "p999": 4000, "max": 5000}}}}{rss}}}"#
            )
        };
        let echo = directory.join("a.json");
        let router = directory.join("b.json");
        std::fs::write(&echo, report("echo", 40_000, "")).unwrap();
        std::fs::write(
            &router,
            report("router", 10_000, r#", "server_rss": {"start_kib": 1024, "end_kib": 2048, "peak_kib": 4096}"#),
        )
        .unwrap();
        let rows: Vec<Row> = [&echo, &router].iter().map(|path| row(&read(path).unwrap(), path, 40_000)).collect();
        assert_eq!((rows[1].throughput.as_str(), rows[1].ratio.as_str()), ("10,000/s", "25.00 %"));
        assert_eq!(rows[1].memory, "1 MiB → 2 MiB, 4 MiB");
        assert_eq!(rows[0].memory, "-");
        let markdown = to_markdown(&rows);
        assert!(markdown.contains("| router | closed, 64 in flight, 4 conn. | 10,000/s | 25.00 % |"), "{markdown}");
        assert_eq!(field(&router, "/results/throughput_per_s").unwrap(), "10000");
        assert!(field(&router, "/results/nothing").is_err());
        std::fs::remove_dir_all(directory).unwrap();
    }
}
