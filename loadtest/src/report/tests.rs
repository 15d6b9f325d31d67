use std::time::Instant;

use super::*;
use crate::outcome::Outcome;
use crate::recorder::Sample;

fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    for value in values {
        histogram.record(value).unwrap();
    }
    histogram
}

#[test]
fn the_curve_ladder_runs_from_zero_to_the_maximum_in_decades() {
    let ppm = curve_ppm();
    assert_eq!(ppm.first(), Some(&0));
    assert_eq!(ppm.last(), Some(&PPM_ALL));
    assert!(ppm.windows(2).all(|pair| pair[0] < pair[1]), "ascending: {ppm:?}");
    for expected in [500_000, 900_000, 910_000, 990_000, 999_000, 999_900, 999_990, 999_999] {
        assert!(ppm.contains(&expected), "{expected} missing");
    }
    assert_eq!(ppm.len(), 19 + 5 * 9 + 1);
}

#[test]
#[allow(clippy::float_arithmetic)]
// hdrhistogram takes a float quantile; the comparison needs one, the code under test does not.
fn values_at_ppm_agree_with_hdrhistogram() {
    let histogram = histogram((1..=10_000).map(|value| value * 7));
    let ppms = curve_ppm();
    let ours = values_at_ppm(&histogram, &ppms);
    for (&ppm, &value) in ppms.iter().zip(&ours) {
        let expected = histogram.value_at_quantile(f64::from(ppm) / f64::from(PPM_ALL));
        // At 0 hdrhistogram gives the bucket's lowest equivalent, we its highest; and a float
        // quantile times the count may round up across one bucket boundary.
        assert!(
            histogram.equivalent(value, expected)
                || histogram.next_non_equivalent(value) == histogram.lowest_equivalent(expected),
            "{ppm} ppm: {value} vs {expected}"
        );
    }
    assert_eq!(ours.last(), Some(&histogram.max()));
    // Exact ranks: 10,000 values 7, 14, ...: the value at 50 % is the 5,000th, 35,000 (to 3 digits).
    assert_eq!(values_at_ppm(&histogram, &[500_000]), [histogram.highest_equivalent(35_000)]);
    assert_eq!(values_at_ppm(&Histogram::<u64>::new(3).unwrap(), &[500_000]), [0]);
}

#[test]
fn percentiles_are_exact_on_small_samples() {
    let histogram = histogram([100, 200, 300, 400, 1_000]);
    let percentiles = Percentiles::of(&histogram);
    assert_eq!(percentiles, Percentiles { p50: 300, p90: 1_000, p99: 1_000, p999: 1_000, max: 1_000 });
}

#[test]
fn percent_text_round_trips_through_ppm() {
    fn check(ppm: u32, text: &str) {
        assert_eq!(percent_text(ppm), text);
        assert_eq!(ppm_from_percent_text(text), Some(ppm), "{text}");
    }
    check(0, "0");
    check(500_000, "50");
    check(999_000, "99.9");
    check(999_990, "99.999");
    check(999_999, "99.9999");
    check(PPM_ALL, "100");
    assert_eq!(ppm_from_percent_text("99.90"), Some(999_000));
    assert_eq!(ppm_from_percent_text("100.0"), Some(PPM_ALL));
    for refused in ["", "100.1", "99.99999", "-1", "1e2", "9a"] {
        assert_eq!(ppm_from_percent_text(refused), None, "{refused:?}");
    }
    // Through serde_json's numbers and back, as the plot command reads them.
    for ppm in curve_ppm() {
        let number = serde_json::Number::from_str(&percent_text(ppm)).unwrap();
        let json = serde_json::to_string(&number).unwrap();
        assert_eq!(ppm_from_percent_text(&json), Some(ppm), "{json}");
    }
}

#[test]
fn throughput_and_formats_are_integers() {
    assert_eq!(throughput_per_s(5_000, 1_000_000), 5_000);
    assert_eq!(throughput_per_s(10_000, 3_000_000), 3_333);
    assert_eq!(throughput_per_s(1, 0), 1_000_000);
    assert_eq!(format_ms(0), "0.000 ms");
    assert_eq!(format_ms(1_234), "1.234 ms");
    assert_eq!(format_ms(60_000_000), "60000.000 ms");
    assert_eq!(format_seconds(10_001_499), "10.001 s");
    assert_eq!(format_percent(1, 3), "33.33 %");
    assert_eq!(format_percent(0, 0), "-");
}

fn settings(mode: &'static str) -> Settings {
    Settings {
        service: "payments",
        mode,
        target: "http://127.0.0.1:50051".to_owned(),
        connections: 4,
        concurrency: (mode == "closed").then_some(64),
        rate_per_s: (mode == "open").then_some(2_000),
        in_flight_max: (mode == "open").then_some(10_000),
        duration_s: Some(10),
        requests: None,
        warmup_s: 2,
        request_timeout_ms: 30_000,
        seed: 1,
        mix: Some("built-in demo".to_owned()),
        key_prefix: Some("lt-1-2".to_owned()),
        payload_bytes: None,
    }
}

fn recording() -> Recording {
    let mut recording = Recording::new(2).unwrap();
    let mut sample = |kind, outcome: Outcome, matched, latency_us| {
        recording.record(Sample {
            kind,
            outcome,
            matched,
            latency_us,
            service_time_us: Some(latency_us / 2),
            example: Some("bank-hk e-hkd/bank-hk.w01 → e-cny/bank-cn.w02".to_owned()),
            finished_at: Instant::now(),
        });
    };
    for latency_us in [1_000, 2_000, 3_000] {
        sample(0, Outcome::new(OutcomeClass::Settled, ""), true, latency_us);
    }
    sample(1, Outcome::new(OutcomeClass::Rejected, "INSUFFICIENT_FUNDS"), true, 500);
    sample(1, Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"), false, 700);
    sample(0, Outcome::deadline(), false, 30_000_000);
    recording
}

fn kinds() -> Vec<KindSetting> {
    vec![
        KindSetting { name: "domestic".to_owned(), weight: 60, expect: "SETTLED".to_owned() },
        KindSetting {
            name: "insufficient-funds".to_owned(),
            weight: 40,
            expect: "REJECTED:INSUFFICIENT_FUNDS".to_owned(),
        },
        KindSetting { name: "disabled".to_owned(), weight: 0, expect: "SETTLED".to_owned() },
    ]
}

#[test]
fn the_json_report_has_every_section() {
    let report = Report::new("embedded".to_owned(), settings("open"), &kinds(), &recording(), 2_000_000, None);
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["format"], 1);
    assert_eq!(json["label"], "embedded");
    assert_eq!(json["settings"]["mode"], "open");
    assert_eq!(json["settings"]["rate_per_s"], 2_000);
    assert_eq!(json["settings"]["concurrency"], serde_json::Value::Null);
    let results = &json["results"];
    assert_eq!(results["requests"], 6);
    assert_eq!(results["answers"], 5);
    assert_eq!((results["errors"].as_u64(), results["timed_out"].as_u64()), (Some(1), Some(1)));
    assert_eq!(results["unexpected"], 2);
    assert_eq!(results["measured_time_us"], 2_000_000);
    assert_eq!(results["throughput_per_s"], 2);
    let latency = &results["latency_us"];
    for key in ["p50", "p90", "p99", "p999", "max"] {
        assert!(latency[key].is_u64(), "latency_us.{key}: {latency}");
    }
    assert!(results["service_time_us"]["p50"].is_u64());
    let curve = json["latency_curve"].as_array().unwrap();
    assert_eq!(curve.len(), curve_ppm().len());
    assert_eq!(curve[0]["percentile"], 0);
    assert_eq!(
        curve.iter().find(|point| point["percentile"] == 99.9).map(|point| point["latency_us"].is_u64()),
        Some(true)
    );
    assert_eq!(curve.last().unwrap()["percentile"], 100);
    assert_eq!(json["service_time_curve"].as_array().unwrap().len(), curve.len());
    let outcomes: Vec<(&str, u64)> = json["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["outcome"].as_str().unwrap(), row["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [("SETTLED", 3), ("REJECTED:INSUFFICIENT_FUNDS", 1), ("REJECTED:NO_ROUTE", 1), ("GRPC:DEADLINE", 1)]
    );
    let kinds = json["kinds"].as_array().unwrap();
    assert_eq!(kinds.len(), 2, "the disabled kind with no requests is left out");
    assert_eq!(kinds[1]["name"], "insufficient-funds");
    assert_eq!(
        (kinds[1]["requests"].as_u64(), kinds[1]["matched"].as_u64(), kinds[1]["unexpected"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(kinds[1]["examples"][0], "REJECTED:NO_ROUTE: bank-hk e-hkd/bank-hk.w01 → e-cny/bank-cn.w02");
    assert_eq!(json["errors"][0]["outcome"], "GRPC:DEADLINE");
    assert_eq!(json["errors"].as_array().map(Vec::len), Some(1));
    assert_eq!(json["server_rss"], serde_json::Value::Null);
}

#[test]
fn a_closed_loop_report_has_no_service_time() {
    let report = Report::new(String::new(), settings("closed"), &kinds(), &recording(), 1_000_000, None);
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["results"]["service_time_us"], serde_json::Value::Null);
    assert_eq!(json["service_time_curve"].as_array().map(Vec::len), Some(0));
}

#[test]
fn tables_show_the_figures_kinds_and_outcomes() {
    let rss = RssReport {
        pid: 42,
        samples: Vec::new(),
        start_kib: 80 * 1_024,
        end_kib: 81 * 1_024,
        peak_kib: 90 * 1_024,
        exited: false,
    };
    let report = Report::new("embedded".to_owned(), settings("open"), &kinds(), &recording(), 2_000_000, Some(rss));
    let results = report.results_table().to_string();
    for expected in [
        "embedded",
        "payments (mix: built-in demo) at http://127.0.0.1:50051",
        "open loop",
        "2000 requests/s, at most 10000 in flight",
        "2.000 s (10 s asked, after a 2 s warm-up)",
        "6 (5 answered)",
        "2 answers/s",
        "latency p99.9",
        "service time p50",
        "1 (1 GRPC:DEADLINE)",
        "start 80.0 MiB, end 81.0 MiB, peak 90.0 MiB",
    ] {
        assert!(results.contains(expected), "{expected:?} missing from\n{results}");
    }
    assert_eq!(report.rss_line().as_deref(), Some("server RSS: start 80.0 MiB, end 81.0 MiB, peak 90.0 MiB"));
    let kinds = report.kinds_table().to_string();
    for expected in ["insufficient-funds", "REJECTED:INSUFFICIENT_FUNDS", "as expected"] {
        assert!(kinds.contains(expected), "{expected:?} missing from\n{kinds}");
    }
    assert_eq!(report.examples().len(), 2);
    let outcomes = report.outcomes_table().to_string();
    for expected in ["SETTLED", "50.00 %", "GRPC:DEADLINE"] {
        assert!(outcomes.contains(expected), "{expected:?} missing from\n{outcomes}");
    }
}
