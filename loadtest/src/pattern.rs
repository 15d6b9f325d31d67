//! Text templates of the mix file: literal text with `{a..b}` ranges, e.g. `e-hkd/bank-hk.w{01..06}`.
//!
//! A range stands for a uniformly random integer in `[a, b]`, zero-padded to the width of `a` as
//! written (`{01..06}` gives `03`, `{1..199}` gives `7`, `{000001..1000000}` gives `000042` or
//! `1000000`). Rendering draws one number per range and writes it into the output: it costs the
//! same for `b = 1_000_000` as for `b = 6`, because nothing is ever listed.
//!
//! There is no escape for a literal brace: mix files name ledgers, accounts and people, none of
//! which contain `{` or `}`, so a stray brace is an error rather than text.

use std::fmt::Write as _;

use rand::RngExt;
use rand::rngs::SmallRng;

/// The most digits a range bound may have; 19 digits always fit a `u64`.
pub const RANGE_DIGITS_MAX: usize = 19;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    /// Longest text a rendering can produce, to size the output once.
    rendered_length_max: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Range { low: u64, high: u64, width: usize },
}

impl Template {
    /// Parses `source`; the error names the offending part.
    pub fn parse(source: &str) -> anyhow::Result<Self> {
        let mut segments = Vec::new();
        let mut rest = source;
        while !rest.is_empty() {
            let brace = rest.find(['{', '}']).unwrap_or(rest.len());
            if brace > 0 {
                segments.push(Segment::Text(rest[..brace].to_owned()));
            }
            rest = &rest[brace..];
            if rest.starts_with('}') {
                anyhow::bail!("`}}` without an opening `{{` in {source:?}");
            }
            if rest.is_empty() {
                break;
            }
            let Some(close) = rest.find('}') else {
                anyhow::bail!("`{{` without a closing `}}` in {source:?}");
            };
            segments.push(parse_range(&rest[1..close], source)?);
            rest = &rest[close + 1..];
        }
        let rendered_length_max = segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.len(),
                Segment::Range { high, width, .. } => (*width).max(decimal_digits(*high)),
            })
            .sum();
        Ok(Self { segments, rendered_length_max })
    }

    /// The template's text when it has no range.
    pub fn as_literal(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [] => Some(""),
            [Segment::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// One rendering, each range drawn from `rng`.
    pub fn render(&self, rng: &mut SmallRng) -> String {
        if let Some(literal) = self.as_literal() {
            return literal.to_owned();
        }
        let mut out = String::with_capacity(self.rendered_length_max);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Range { low, high, width } => {
                    let value = rng.random_range(*low..=*high);
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{value:0width$}");
                }
            }
        }
        out
    }
}

/// Parses the inside of `{a..b}`.
fn parse_range(inside: &str, source: &str) -> anyhow::Result<Segment> {
    let Some((low_text, high_text)) = inside.split_once("..") else {
        anyhow::bail!("`{{{inside}}}` in {source:?} is not a range `{{a..b}}`");
    };
    let bound = |text: &str| -> anyhow::Result<u64> {
        anyhow::ensure!(
            !text.is_empty() && text.len() <= RANGE_DIGITS_MAX && text.bytes().all(|byte| byte.is_ascii_digit()),
            "`{{{inside}}}` in {source:?}: {text:?} is not a number of 1 to {RANGE_DIGITS_MAX} digits"
        );
        Ok(text.parse()?)
    };
    let (low, high) = (bound(low_text)?, bound(high_text)?);
    anyhow::ensure!(low <= high, "`{{{inside}}}` in {source:?}: {low} is above {high}");
    Ok(Segment::Range { low, high, width: low_text.len() })
}

fn decimal_digits(value: u64) -> usize {
    usize::try_from(value.checked_ilog10().unwrap_or(0) + 1).unwrap_or(RANGE_DIGITS_MAX + 1)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    #[test]
    fn literals_render_as_written() {
        fn check(source: &str) {
            let template = Template::parse(source).unwrap();
            assert_eq!(template.as_literal(), Some(source));
            assert_eq!(template.render(&mut rng()), source);
        }
        check("");
        check("e-hkd/bank-hk.w01");
        check("Chan Tai Man");
    }

    #[test]
    fn ranges_are_zero_padded_to_the_width_of_their_low_bound_and_stay_in_bounds() {
        fn check(source: &str, prefix: &str, width: usize, low: u64, high: u64) {
            let template = Template::parse(source).unwrap();
            assert_eq!(template.as_literal(), None);
            let mut rng = rng();
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..2_000 {
                let text = template.render(&mut rng);
                let digits = text.strip_prefix(prefix).unwrap();
                assert!(digits.len() >= width, "{text:?} is narrower than {width}");
                assert!(digits.len() == width || !digits.starts_with('0'), "{text:?} is over-padded");
                let value: u64 = digits.parse().unwrap();
                assert!((low..=high).contains(&value), "{text:?} outside {low}..={high}");
                seen.insert(value);
            }
            if high - low < 10 {
                assert_eq!(seen.len(), usize::try_from(high - low + 1).unwrap(), "every value of {source:?} drawn");
            }
        }
        check("e-hkd/bank-hk.w{01..06}", "e-hkd/bank-hk.w", 2, 1, 6);
        check("n{1..199}", "n", 1, 1, 199);
        check("w{7..7}", "w", 1, 7, 7);
        check("acct{000001..1000000}", "acct", 6, 1, 1_000_000);
        check("{0..9}", "", 1, 0, 9);
    }

    #[test]
    fn a_million_accounts_cost_one_draw() {
        let template = Template::parse("e-cny/user.{0000001..1000000}").unwrap();
        let mut rng = rng();
        let text = template.render(&mut rng);
        assert_eq!(text.len(), "e-cny/user.".len() + 7);
        // The extremes are reachable and written at the right width.
        let single = Template::parse("{1000000..1000000}").unwrap();
        assert_eq!(single.render(&mut rng), "1000000");
        let first = Template::parse("{0000001..0000001}").unwrap();
        assert_eq!(first.render(&mut rng), "0000001");
    }

    #[test]
    fn several_ranges_and_text_between_them() {
        let template = Template::parse("{1..1} Road {02..02}/{3..3}").unwrap();
        assert_eq!(template.render(&mut rng()), "1 Road 02/3");
    }

    #[test]
    fn the_same_seed_renders_the_same_text() {
        let template = Template::parse("w{01..99}-{1..1000000}").unwrap();
        let first: Vec<String> = (0..5)
            .map({
                let mut rng = rng();
                move |_| template.render(&mut rng)
            })
            .collect();
        let template = Template::parse("w{01..99}-{1..1000000}").unwrap();
        let mut rng = rng();
        let again: Vec<String> = (0..5).map(|_| template.render(&mut rng)).collect();
        assert_eq!(first, again);
    }

    #[test]
    fn malformed_templates_are_refused_with_the_reason() {
        fn check(source: &str, message: &str) {
            let error = Template::parse(source).unwrap_err().to_string();
            assert!(error.contains(message), "{source:?}: {error:?} does not say {message:?}");
        }
        check("w{01..06", "without a closing");
        check("w01}", "without an opening");
        check("w{}", "is not a range");
        check("w{01-06}", "is not a range");
        check("w{a..6}", "\"a\" is not a number");
        check("w{1..}", "\"\" is not a number");
        check("w{-1..6}", "\"-1\" is not a number");
        check("w{6..1}", "6 is above 1");
        check("w{1..99999999999999999999}", "is not a number of 1 to 19 digits");
    }
}
