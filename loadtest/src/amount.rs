//! Amounts of the mix file: a fixed decimal (`"25.00"`) or a range (`"10.00..500.00"`), drawn in
//! whole minor units and written back as a decimal string. Never a float.
//!
//! The number of decimals is the larger of the two bounds' as written, so `"10..500.00"` draws
//! `"123.45"` and `"0.5"` is sent as `"0.5"`. Whether that many decimals suit the currency is the
//! router's to judge (a mix may send a malformed amount on purpose); this module only keeps the
//! arithmetic exact.

use std::fmt::Write as _;

use rand::RngExt;
use rand::rngs::SmallRng;

/// The most decimals an amount may have.
pub const DECIMALS_MAX: u32 = 9;

/// An amount or a uniform range of amounts, in minor units of `10^-decimals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmountRange {
    low_minor: u64,
    high_minor: u64,
    decimals: u32,
}

impl AmountRange {
    /// Parses `"12.34"` or `"10.00..500.00"`.
    pub fn parse(source: &str) -> anyhow::Result<Self> {
        let (low_text, high_text) = source.split_once("..").unwrap_or((source, source));
        let (low, low_decimals) = parse_decimal(low_text.trim(), source)?;
        let (high, high_decimals) = parse_decimal(high_text.trim(), source)?;
        let decimals = low_decimals.max(high_decimals);
        let scale = |value: u64, from: u32| -> anyhow::Result<u64> {
            let factor = 10_u64.pow(decimals - from);
            value.checked_mul(factor).ok_or_else(|| anyhow::anyhow!("amount {source:?} is too large"))
        };
        let (low_minor, high_minor) = (scale(low, low_decimals)?, scale(high, high_decimals)?);
        anyhow::ensure!(low_minor <= high_minor, "amount range {source:?} runs downwards");
        Ok(Self { low_minor, high_minor, decimals })
    }

    /// One amount, uniform over the range's minor units.
    pub fn sample_minor(&self, rng: &mut SmallRng) -> u64 {
        rng.random_range(self.low_minor..=self.high_minor)
    }

    /// One amount as a decimal string.
    pub fn sample(&self, rng: &mut SmallRng) -> String {
        format_minor(self.sample_minor(rng), self.decimals)
    }
}

/// `"123.45"` → (12345, 2); digits with at most one point, no sign, no exponent.
fn parse_decimal(text: &str, source: &str) -> anyhow::Result<(u64, u32)> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits_only = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    anyhow::ensure!(
        !whole.is_empty()
            && digits_only(whole)
            && digits_only(fraction)
            && !(text.contains('.') && fraction.is_empty()),
        "amount {source:?}: {text:?} is not a decimal such as 12.34"
    );
    let decimals = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
    anyhow::ensure!(decimals <= DECIMALS_MAX, "amount {source:?}: more than {DECIMALS_MAX} decimals");
    let mut minor: u64 = 0;
    for byte in whole.bytes().chain(fraction.bytes()) {
        minor = minor
            .checked_mul(10)
            .and_then(|value| value.checked_add(u64::from(byte - b'0')))
            .ok_or_else(|| anyhow::anyhow!("amount {source:?} is too large"))?;
    }
    Ok((minor, decimals))
}

/// `minor` units of `10^-decimals` as a decimal string: (12345, 2) → "123.45", (5, 3) → "0.005".
pub fn format_minor(minor: u64, decimals: u32) -> String {
    let mut out = String::with_capacity(24);
    if decimals == 0 {
        let _ = write!(out, "{minor}");
        return out;
    }
    let factor = 10_u64.pow(decimals);
    let width = usize::try_from(decimals).unwrap_or(0);
    // Writing to a String cannot fail.
    let _ = write!(out, "{}.{:0width$}", minor / factor, minor % factor);
    out
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn fixed_amounts_and_ranges_parse_to_exact_minor_units() {
        fn check(source: &str, low: u64, high: u64, decimals: u32) {
            let range = AmountRange::parse(source).unwrap();
            assert_eq!((range.low_minor, range.high_minor, range.decimals), (low, high, decimals), "{source:?}");
        }
        check("25.00", 2_500, 2_500, 2);
        check("10.00..500.00", 1_000, 50_000, 2);
        check("10..500.00", 1_000, 50_000, 2);
        check("0.1..0.3", 1, 3, 1);
        check("12", 12, 12, 0);
        check("1.005..1.006", 1_005, 1_006, 3);
        check(" 5.00 .. 9.99 ", 500, 999, 2);
        // A float would make 0.1 + 0.2 something else; these are integers all the way.
        check("0.10..0.30", 10, 30, 2);
        check("18446744073709551615", u64::MAX, u64::MAX, 0);
    }

    #[test]
    fn malformed_amounts_are_refused() {
        fn check(source: &str, message: &str) {
            let error = AmountRange::parse(source).unwrap_err().to_string();
            assert!(error.contains(message), "{source:?}: {error:?} does not say {message:?}");
        }
        check("", "is not a decimal");
        check("-5.00", "is not a decimal");
        check("1e3", "is not a decimal");
        check("5.", "is not a decimal");
        check(".5", "is not a decimal");
        check("1.2.3", "is not a decimal");
        check("500.00..10.00", "runs downwards");
        check("1.0000000001", "more than 9 decimals");
        check("18446744073709551616", "too large");
        check("18446744073709551615..18446744073709551615.0", "too large");
    }

    #[test]
    fn formatting_keeps_every_decimal() {
        fn check(minor: u64, decimals: u32, expected: &str) {
            assert_eq!(format_minor(minor, decimals), expected);
        }
        check(12_345, 2, "123.45");
        check(5, 3, "0.005");
        check(100, 2, "1.00");
        check(0, 2, "0.00");
        check(42, 0, "42");
        check(u64::MAX, 2, "184467440737095516.15");
    }

    #[test]
    fn samples_stay_in_range_with_the_range_s_decimals() {
        let range = AmountRange::parse("10.00..10.05").unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let text = range.sample(&mut rng);
            assert_eq!(text.split_once('.').map(|(_, fraction)| fraction.len()), Some(2), "{text}");
            seen.insert(text);
        }
        let expected: std::collections::BTreeSet<String> =
            ["10.00", "10.01", "10.02", "10.03", "10.04", "10.05"].map(str::to_owned).into();
        assert_eq!(seen, expected);
    }
}
