//! Latency-percentile plots as hand-written SVG: `run --plot` draws one run, `plot` overlays the
//! curves of several JSON reports.
//!
//! The x axis is logarithmic in 1/(1 − p), so each decade of "nines" gets the same width: 0 %, 90 %,
//! 99 %, 99.9 %, ...; it ends at the decade the largest run's number of answers still resolves
//! (500 answers say nothing about 99.9 %), where each curve's maximum is drawn. The y axis is
//! linear latency in milliseconds from 0, to a round value above the highest point. Coordinates are
//! integer tenths of a pixel; the only floating-point step is the logarithm of the x axis.
//!
//! It draws; it reads no files and has no opinion about which run is better.

use std::fmt::Write as _;

use crate::report::PPM_ALL;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 560;
const LEFT: u32 = 80;
const RIGHT: u32 = 45;
const TOP: u32 = 50;
const BOTTOM: u32 = 70;
const PLOT_WIDTH: u32 = WIDTH - LEFT - RIGHT;
const PLOT_HEIGHT: u32 = HEIGHT - TOP - BOTTOM;
/// The most decades of nines on the x axis: 99.9999 %.
pub const DECADES_MAX: u32 = 6;
/// The most horizontal gridlines.
const Y_STEPS_MAX: u64 = 8;
/// Curves a plot tells apart by colour; more cycle through them again, dashed.
const COLOURS: [&str; 8] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

/// One curve: its legend, its points (percentile in parts per million, latency in µs), and how
/// many answers it was measured from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(u32, u64)>,
    pub answers: u64,
    pub dashed: bool,
}

/// Thousandths of a decade of 1/(1 − p): 0 at 0 %, 1_000 at 90 %, 3_000 at 99.9 %.
#[allow(clippy::float_arithmetic)]
// The one logarithm of the plot: integer arithmetic has none, and a pixel position needs no
// exactness. Only the rounded result leaves this function.
fn decade_millis(ppm: u32) -> u32 {
    let left = PPM_ALL.saturating_sub(ppm).max(1);
    let decades = f64::from(PPM_ALL).log10() - f64::from(left).log10();
    // At most 6_000: a conversion of a small, non-negative value.
    (decades * 1_000.0).round().clamp(0.0, f64::from(DECADES_MAX * 1_000)) as u32
}

/// The decades the x axis shows: as many as the largest run resolves (10^d answers resolve d
/// decades), at least one, at most [`DECADES_MAX`].
fn decades_shown(curves: &[Curve]) -> u32 {
    let answers = curves.iter().map(|curve| curve.answers).max().unwrap_or(0);
    answers.checked_ilog10().unwrap_or(0).clamp(1, DECADES_MAX)
}

/// "90%", "99.9%" for decade 1, 3.
fn decade_label(decade: u32) -> String {
    match decade {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        _ => format!("99.{}%", "9".repeat(usize::try_from(decade - 2).unwrap_or(0))),
    }
}

/// The y axis: a gridline step from 1-2-5 × 10^k µs and the top, a whole number of steps.
fn y_axis(max_us: u64) -> (u64, u64) {
    let mut magnitude: u64 = 1;
    loop {
        for base in [1, 2, 5] {
            let step = base * magnitude;
            let steps = max_us.div_ceil(step).max(1);
            if steps <= Y_STEPS_MAX {
                return (step, steps * step);
            }
        }
        magnitude = magnitude.saturating_mul(10);
    }
}

/// Microseconds as milliseconds without trailing zeros: 2_500 is "2.5", 200 is "0.2".
fn ms_label(micros: u64) -> String {
    let (whole, fraction) = (micros / 1_000, micros % 1_000);
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:03}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Tenths of a pixel as SVG text: 1234 is "123.4".
fn px(tenths: u64) -> String {
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            control if control.is_control() => escaped.push(' '),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The plot as an SVG document.
pub fn svg(title: &str, curves: &[Curve]) -> String {
    let decades = decades_shown(curves);
    let last_millis = decades * 1_000;
    // The points each curve shows: those within the axis, and its maximum at the right edge.
    let shown: Vec<Vec<(u32, u64)>> = curves
        .iter()
        .map(|curve| {
            curve
                .points
                .iter()
                .filter_map(|&(ppm, latency_us)| {
                    if ppm >= PPM_ALL {
                        return Some((last_millis, latency_us));
                    }
                    let millis = decade_millis(ppm);
                    (millis <= last_millis).then_some((millis, latency_us))
                })
                .collect()
        })
        .collect();
    let max_us = shown.iter().flatten().map(|(_, latency_us)| *latency_us).max().unwrap_or(0);
    let (y_step, y_top) = y_axis(max_us);
    let x_of = |millis: u32| -> u64 {
        u64::from(LEFT) * 10 + u64::from(millis) * u64::from(PLOT_WIDTH) * 10 / u64::from(last_millis.max(1))
    };
    let y_of = |latency_us: u64| -> u64 {
        let height = u64::from(PLOT_HEIGHT) * 10;
        u64::from(TOP) * 10 + height - latency_us.min(y_top) * height / y_top.max(1)
    };
    let (plot_left, plot_right) = (u64::from(LEFT) * 10, u64::from(LEFT + PLOT_WIDTH) * 10);
    let (plot_top, plot_bottom) = (u64::from(TOP) * 10, u64::from(TOP + PLOT_HEIGHT) * 10);

    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored below.
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(out, r##"<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>"##);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="17" font-weight="bold">{}</text>"#,
        WIDTH / 2,
        escape(title)
    );
    // Vertical gridlines: one per decade of nines.
    for decade in 0..=decades {
        let x = px(x_of(decade * 1_000));
        let _ = writeln!(
            out,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="#dddddd"/>"##,
            px(plot_top),
            px(plot_bottom)
        );
        let _ = writeln!(
            out,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            px(plot_bottom + 200),
            decade_label(decade)
        );
    }
    // Horizontal gridlines.
    let mut value = 0;
    while value <= y_top {
        let y = px(y_of(value));
        let _ = writeln!(
            out,
            r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#dddddd"/>"##,
            px(plot_left),
            px(plot_right)
        );
        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            px(plot_left - 80),
            px(y_of(value) + 45),
            ms_label(value)
        );
        value += y_step;
    }
    let _ = writeln!(
        out,
        r##"<rect x="{}" y="{}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#333333"/>"##,
        px(plot_left),
        px(plot_top)
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile (logarithmic in 1/(1 − p))</text>"#,
        LEFT + PLOT_WIDTH / 2,
        HEIGHT - 20
    );
    let _ = writeln!(
        out,
        r#"<text x="20" y="{0}" text-anchor="middle" transform="rotate(-90 20 {0})">latency (ms)</text>"#,
        TOP + PLOT_HEIGHT / 2
    );
    // The curves, then their legend in the top left corner, where latency curves rarely go.
    for (index, (curve, points)) in curves.iter().zip(&shown).enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let dash = if curve.dashed || index >= COLOURS.len() { r#" stroke-dasharray="6 4""# } else { "" };
        let coordinates: Vec<String> = points
            .iter()
            .map(|&(millis, latency_us)| format!("{},{}", px(x_of(millis)), px(y_of(latency_us))))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline class="curve" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"><title>{}</title></polyline>"#,
            coordinates.join(" "),
            escape(&curve.label)
        );
        let legend_y = u64::from(TOP) * 10 + 250 + u64::try_from(index).unwrap_or(0) * 200;
        let _ = writeln!(
            out,
            r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            px(plot_left + 150),
            px(plot_left + 450),
            y = px(legend_y)
        );
        let _ = writeln!(
            out,
            r#"<text class="legend" x="{}" y="{}">{}</text>"#,
            px(plot_left + 520),
            px(legend_y + 45),
            escape(&curve.label)
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{curve_ppm, percent_text};

    fn curve(label: &str, answers: u64, scale_us: u64) -> Curve {
        let points = curve_ppm().into_iter().map(|ppm| (ppm, u64::from(ppm / 10_000) * scale_us + 100)).collect();
        Curve { label: label.to_owned(), points, answers, dashed: false }
    }

    #[test]
    fn decades_of_nines_are_equally_wide() {
        fn check(ppm: u32, millis: u32) {
            assert_eq!(decade_millis(ppm), millis, "{}%", percent_text(ppm));
        }
        check(0, 0);
        check(500_000, 301);
        check(900_000, 1_000);
        check(990_000, 2_000);
        check(999_000, 3_000);
        check(999_990, 5_000);
        check(999_999, 6_000);
        check(PPM_ALL, 6_000);
    }

    #[test]
    fn the_axis_shows_the_decades_the_runs_resolve() {
        fn check(answers: &[u64], decades: u32) {
            let curves: Vec<Curve> = answers.iter().map(|&count| curve("run", count, 10)).collect();
            assert_eq!(decades_shown(&curves), decades, "{answers:?}");
        }
        check(&[], 1);
        check(&[5], 1);
        check(&[500], 2);
        check(&[500, 120_000], 5);
        check(&[u64::MAX], DECADES_MAX);
        for (decade, label) in [(0, "0%"), (1, "90%"), (2, "99%"), (3, "99.9%"), (6, "99.9999%")] {
            assert_eq!(decade_label(decade), label);
        }
    }

    #[test]
    fn the_y_axis_ends_on_a_round_number() {
        fn check(max_us: u64, step: u64, top: u64) {
            assert_eq!(y_axis(max_us), (step, top), "{max_us} µs");
        }
        check(0, 1, 1);
        check(7, 1, 7);
        check(9, 2, 10);
        check(180, 50, 200);
        check(1_234, 200, 1_400);
        check(13_650, 2_000, 14_000);
        check(29_210, 5_000, 30_000);
        for (micros, label) in [(0, "0"), (200, "0.2"), (2_500, "2.5"), (14_000, "14"), (1, "0.001")] {
            assert_eq!(ms_label(micros), label);
        }
    }

    #[test]
    fn the_plot_is_well_formed_svg_with_every_curve_and_its_legend() {
        let curves = [curve("embedded <fsync>", 200_000, 40), Curve { dashed: true, ..curve("echo & co", 500, 2) }];
        let svg = svg("Latency by percentile", &curves);
        let document = roxmltree::Document::parse(&svg).unwrap();
        let root = document.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        let polylines: Vec<_> = root.descendants().filter(|node| node.has_tag_name("polyline")).collect();
        assert_eq!(polylines.len(), 2);
        for polyline in &polylines {
            let points = polyline.attribute("points").unwrap();
            assert!(points.split(' ').count() > 10, "{points}");
            for point in points.split(' ') {
                let (x, y) = point.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(x >= f64::from(LEFT) && x <= f64::from(LEFT + PLOT_WIDTH), "{point}");
                assert!(y >= f64::from(TOP) && y <= f64::from(TOP + PLOT_HEIGHT), "{point}");
            }
        }
        assert_eq!(polylines[1].attribute("stroke-dasharray"), Some("6 4"));
        let texts: Vec<&str> =
            root.descendants().filter(|node| node.has_tag_name("text")).filter_map(|node| node.text()).collect();
        for expected in
            ["Latency by percentile", "embedded <fsync>", "echo & co", "0%", "90%", "99.999%", "latency (ms)"]
        {
            assert!(texts.contains(&expected), "{expected:?} not in {texts:?}");
        }
        // 200,000 answers resolve five decades; nothing past 99.999 % is labelled.
        assert!(!texts.contains(&"99.9999%"));
    }

    #[test]
    fn an_empty_plot_is_still_a_document() {
        let svg = svg("nothing", &[]);
        roxmltree::Document::parse(&svg).unwrap();
    }
}
