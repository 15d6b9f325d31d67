//! Seeding the rate book from the European Central Bank's euro foreign-exchange reference rates.
//!
//! The ECB publishes, for each business day, how many units of about thirty currencies one euro is
//! worth (`eurofxref-hist.csv`: a header `Date,USD,JPY,...,` and one row per day, `N/A` where there
//! is no rate). [`EcbHistory::parse`] reads that file into exact decimals; [`EcbDay::mid`] gives the
//! mid of any pair of its currencies through the EUR pivot; [`EcbDay::provider_rates`] turns the mids
//! into a provider's bid/ask around them, ready for [`RateBook::publish`](crate::RateBook::publish).
//!
//! **Columns.** A column whose code is not a current, payable ISO 4217 currency (the withdrawn CYP,
//! EEK, ROL, ... that the ECB keeps in the history) is skipped and its values are not read. A code
//! that is not three upper-case letters, a repeated column, or a column named EUR is an error.
//!
//! **Seeded prices.** bid = mid × (1 − s/2) and ask = mid × (1 + s/2), where s = spread_bps / 10 000,
//! then rounded to [`EcbDay::QUOTE_SIGNIFICANT_DIGITS`] significant digits, the bid **down** and the
//! ask **up**: rounding only ever widens the spread, toward the provider, and a tiny cross such as
//! GBP per IDR (0.0000411...) keeps as many meaningful digits as a large one such as IDR per GBP.
//! The mid itself is the quotient of two ECB values with rust_decimal's 28 significant digits.
//!
//! This module does not fetch anything, know the time of day the ECB publishes, or decide which
//! provider quotes what: the caller passes the file's text, the provider, the pairs and `as_of`.
//! There are no floats here.

use std::collections::BTreeMap;
use std::time::SystemTime;

use corridor_schemas::{Currency, CurrencyError, ParticipantId};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::book::{CurrencyPair, ProviderRate};

/// The ECB reference rates of 2025-01-02 to 2026-10-30 (`fx/data/`, source in its SOURCES.md),
/// built in so a demo network can seed rates with no file at hand.
pub const ECB_SNAPSHOT_2025_2026: &str = include_str!("../data/ecb-eurofxref-2025-2026.csv");

/// Every day of an ECB reference-rate file, keyed by date.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcbHistory {
    /// Keyed by the `YYYY-MM-DD` date, which sorts chronologically.
    days: BTreeMap<String, EcbDay>,
}

/// One business day's reference rates: units of each currency per one EUR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcbDay {
    /// `YYYY-MM-DD`, a valid calendar date.
    date: String,
    /// Every rate is positive. EUR itself is not in the map: it is 1 by definition.
    per_eur: BTreeMap<Currency, Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcbError {
    #[error("line 1, column {column}: bad header: {reason}")]
    Header { column: usize, reason: String },
    #[error("line {line}: {found} fields, but the header has {expected}")]
    FieldCount { line: usize, expected: usize, found: usize },
    #[error("line {line}, column 1: `{text}` is not a date of the form YYYY-MM-DD: {reason}")]
    Date { line: usize, text: String, reason: String },
    #[error("line {line}, column 1: {date} appears already on line {first_line}")]
    DuplicateDate { line: usize, date: String, first_line: usize },
    #[error("line {line}, column {column} ({currency}): `{text}` is neither a plain decimal number nor N/A")]
    Value { line: usize, column: usize, currency: Currency, text: String },
    #[error("line {line}, column {column} ({currency}): rate {value} must be greater than zero")]
    NotPositive { line: usize, column: usize, currency: Currency, value: Decimal },
    #[error("line {line}, column {column}: `{text}` stands under the header's empty last column")]
    Stray { line: usize, column: usize, text: String },
    #[error("ECB reference rates {date} have no rate for {pair}")]
    NoRate { date: String, pair: CurrencyPair },
    #[error("{pair} quotes a currency against itself")]
    SameCurrency { pair: CurrencyPair },
    #[error("a spread of {spread_bps} bp is wider than the {max_bps} bp allowed", max_bps = EcbDay::SPREAD_BPS_MAX)]
    Spread { spread_bps: u32 },
    #[error("ECB reference rates {date}, {pair}: {reason}")]
    Price { date: String, pair: CurrencyPair, reason: String },
}

/// What the parser does with one column of the file.
#[derive(Debug, Clone, Copy)]
enum Column {
    Rate(Currency),
    /// Not a current, payable ISO 4217 currency: values are not read.
    Skipped,
    /// The empty name after the header's trailing comma: values must be empty.
    Trailing,
}

const NO_RATE: &str = "N/A";
const DATE_HEADER: &str = "Date";
/// Longest value text accepted; the ECB's longest is about ten characters.
const VALUE_LENGTH_MAX: usize = 40;

impl EcbHistory {
    /// Parses the ECB's CSV: a header `Date,CCY,...` (a trailing comma is allowed, and then every
    /// row has one too), then one row per day in any order. Line and column numbers in errors count
    /// from 1. Values are plain decimals (`1.1172`, `136`) or `N/A`; nothing is rounded.
    pub fn parse(text: &str) -> Result<Self, EcbError> {
        let mut lines = text.lines().enumerate().map(|(index, line)| (index.saturating_add(1), line));
        let header = lines.next().map(|(_, line)| line).unwrap_or_default();
        let columns = parse_header(header)?;
        let mut days = BTreeMap::new();
        let mut first_lines: BTreeMap<String, usize> = BTreeMap::new();
        for (line, row) in lines {
            let fields: Vec<&str> = row.split(',').collect();
            if fields.len() != columns.len().saturating_add(1) {
                return Err(EcbError::FieldCount {
                    line,
                    expected: columns.len().saturating_add(1),
                    found: fields.len(),
                });
            }
            let date = fields.first().copied().unwrap_or_default();
            check_date(date).map_err(|reason| EcbError::Date { line, text: shorten(date), reason })?;
            if let Some(&first_line) = first_lines.get(date) {
                return Err(EcbError::DuplicateDate { line, date: date.to_owned(), first_line });
            }
            first_lines.insert(date.to_owned(), line);
            let mut per_eur = BTreeMap::new();
            for (index, (column, field)) in columns.iter().zip(fields.iter().skip(1)).enumerate() {
                let column_number = index.saturating_add(2);
                match column {
                    Column::Skipped => {}
                    Column::Trailing if field.is_empty() => {}
                    Column::Trailing => {
                        return Err(EcbError::Stray { line, column: column_number, text: shorten(field) });
                    }
                    Column::Rate(_) if *field == NO_RATE => {}
                    Column::Rate(currency) => {
                        let value = parse_rate(field).ok_or_else(|| EcbError::Value {
                            line,
                            column: column_number,
                            currency: *currency,
                            text: shorten(field),
                        })?;
                        if value <= Decimal::ZERO {
                            return Err(EcbError::NotPositive {
                                line,
                                column: column_number,
                                currency: *currency,
                                value,
                            });
                        }
                        per_eur.insert(*currency, value);
                    }
                }
            }
            days.insert(date.to_owned(), EcbDay { date: date.to_owned(), per_eur });
        }
        Ok(Self { days })
    }

    /// The day dated `date` (`YYYY-MM-DD`), if the file has a row for it.
    pub fn day(&self, date: &str) -> Option<&EcbDay> {
        self.days.get(date)
    }

    /// The most recent day.
    pub fn latest(&self) -> Option<&EcbDay> {
        self.days.last_key_value().map(|(_, day)| day)
    }

    /// Every day, **oldest first** (`.rev()` for newest first, the file's own order).
    pub fn days(&self) -> impl DoubleEndedIterator<Item = &EcbDay> + ExactSizeIterator {
        self.days.values()
    }
}

impl EcbDay {
    /// Significant digits a seeded bid or ask is rounded to (see the module docs).
    pub const QUOTE_SIGNIFICANT_DIGITS: u32 = 12;
    /// The widest spread [`EcbDay::provider_rates`] accepts: 100 %, far beyond any real quote, so a
    /// spread given in the wrong unit is refused rather than published.
    pub const SPREAD_BPS_MAX: u32 = 10_000;

    /// `YYYY-MM-DD`.
    pub fn date(&self) -> &str {
        &self.date
    }

    /// Units of each currency per one EUR, for the currencies that have a rate this day. EUR itself
    /// is not in the map (see [`EcbDay::per_eur`]).
    pub fn rates(&self) -> &BTreeMap<Currency, Decimal> {
        &self.per_eur
    }

    /// Units of `currency` per one EUR: 1 for EUR, `None` if the day has no rate for it.
    pub fn per_eur(&self, currency: Currency) -> Option<Decimal> {
        if currency.code() == "EUR" { Some(Decimal::ONE) } else { self.per_eur.get(&currency).copied() }
    }

    /// The mid of `BASE/QUOTE` through the EUR pivot: per_eur(QUOTE) ÷ per_eur(BASE), with 28
    /// significant digits. EUR may be either side. `None` if either currency has no rate this day
    /// or the pair quotes a currency against itself.
    pub fn mid(&self, pair: CurrencyPair) -> Option<Decimal> {
        if pair.base == pair.quote {
            return None;
        }
        self.per_eur(pair.quote)?.checked_div(self.per_eur(pair.base)?)
    }

    /// `provider`'s bid and ask for each of `pairs`, `spread_bps` wide around this day's mid and
    /// rounded toward the provider (see the module docs). `source` reads "ECB reference rates
    /// 2026-10-30 ± 10 bp"; `maximum` is `None`. A pair without a rate this day is an error.
    pub fn provider_rates(
        &self,
        provider: &ParticipantId,
        pairs: &[CurrencyPair],
        spread_bps: u32,
        as_of: SystemTime,
    ) -> Result<Vec<ProviderRate>, EcbError> {
        if spread_bps > Self::SPREAD_BPS_MAX {
            return Err(EcbError::Spread { spread_bps });
        }
        // s/2 = spread_bps / 20 000, exact: spread_bps × 10⁻⁴ ÷ 2 terminates.
        let half_spread = Decimal::new(i64::from(spread_bps), 4) / Decimal::TWO;
        let source = format!("ECB reference rates {} ± {spread_bps} bp", self.date);
        pairs
            .iter()
            .map(|&pair| {
                if pair.base == pair.quote {
                    return Err(EcbError::SameCurrency { pair });
                }
                let mid = self.mid(pair).ok_or_else(|| EcbError::NoRate { date: self.date.clone(), pair })?;
                let price_error =
                    |reason: &str| EcbError::Price { date: self.date.clone(), pair, reason: reason.into() };
                let bid = mid
                    .checked_mul(Decimal::ONE - half_spread)
                    .map(|bid| round_significant(bid, Self::QUOTE_SIGNIFICANT_DIGITS, RoundingStrategy::ToZero))
                    .ok_or_else(|| price_error("the bid overflows"))?;
                let ask = mid
                    .checked_mul(Decimal::ONE + half_spread)
                    .map(|ask| round_significant(ask, Self::QUOTE_SIGNIFICANT_DIGITS, RoundingStrategy::AwayFromZero))
                    .ok_or_else(|| price_error("the ask overflows"))?;
                if bid <= Decimal::ZERO || bid > ask {
                    return Err(price_error(&format!("bid {bid} and ask {ask} must be positive with bid <= ask")));
                }
                Ok(ProviderRate {
                    provider: provider.clone(),
                    pair,
                    bid,
                    ask,
                    source: source.clone(),
                    as_of,
                    maximum: None,
                })
            })
            .collect()
    }
}

fn parse_header(header: &str) -> Result<Vec<Column>, EcbError> {
    let mut names = header.split(',');
    let first = names.next().unwrap_or_default();
    if first != DATE_HEADER {
        let reason = format!("the first column must be `{DATE_HEADER}`, not `{}`", shorten(first));
        return Err(EcbError::Header { column: 1, reason });
    }
    let names: Vec<&str> = names.collect();
    let mut columns = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let column = index.saturating_add(2);
        let header_error = |reason: String| EcbError::Header { column, reason };
        let last = index.saturating_add(1) == names.len();
        if name.is_empty() {
            if last && index > 0 {
                columns.push(Column::Trailing);
                continue;
            }
            return Err(header_error("empty currency code".into()));
        }
        if names.iter().take(index).any(|earlier| earlier == name) {
            return Err(header_error(format!("{} appears twice", shorten(name))));
        }
        if *name == "EUR" {
            return Err(header_error("EUR is the pivot: its rate per EUR is always 1".into()));
        }
        columns.push(match Currency::from_code(name) {
            Ok(currency) => Column::Rate(currency),
            Err(CurrencyError::Unknown { .. } | CurrencyError::NotPayable { .. }) => Column::Skipped,
            Err(error @ CurrencyError::Malformed { .. }) => return Err(header_error(error.to_string())),
        });
    }
    if columns.is_empty() {
        return Err(EcbError::Header { column: 2, reason: "no currency columns".into() });
    }
    Ok(columns)
}

/// A plain decimal, optionally negative (so that `-1.5` is reported as not positive rather than
/// as not a number): no exponent, separators, spaces or `+`. `None` if it is not one, or has more
/// digits than rust_decimal holds exactly.
fn parse_rate(text: &str) -> Option<Decimal> {
    if text.len() > VALUE_LENGTH_MAX {
        return None;
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(whole) || !digits_only(fraction) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

/// Checks `YYYY-MM-DD` is a real Gregorian calendar date. Returns the reason it is not.
fn check_date(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes
            .iter()
            .enumerate()
            .all(|(index, b)| if index == 4 || index == 7 { *b == b'-' } else { b.is_ascii_digit() });
    if !shape_ok {
        return Err("expected four digits, `-`, two digits, `-`, two digits".into());
    }
    let number = |range: std::ops::Range<usize>| text.get(range).and_then(|part| part.parse::<u32>().ok()).unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(format!("there is no month {month}")),
    };
    if day == 0 || day > days_in_month {
        return Err(format!("month {month} of {year} has no day {day}"));
    }
    Ok(())
}

/// Rounds a positive `value` to `digits` significant digits (never to fewer decimal places than 0,
/// so a number with more than `digits` whole digits keeps them all).
fn round_significant(value: Decimal, digits: u32, strategy: RoundingStrategy) -> Decimal {
    let value = value.normalize();
    let mantissa_digits = value.mantissa().unsigned_abs().checked_ilog10().map_or(1, |log| log.saturating_add(1));
    // Whole digits = mantissa_digits − scale (≤ 0 below 1); decimals to keep = digits − whole digits.
    let decimals = digits.saturating_add(value.scale()).saturating_sub(mantissa_digits);
    if decimals >= value.scale() { value } else { value.round_dp_with_strategy(decimals, strategy) }
}

/// Echoing a 10 MB field back in an error would be its own problem.
fn shorten(text: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 40;
    if text.chars().count() <= SHOWN_CHARS_MAX {
        text.to_owned()
    } else {
        let shown: String = text.chars().take(SHOWN_CHARS_MAX).collect();
        format!("{shown}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three days, newest first like the ECB's file: a withdrawn currency (CYP, values not read),
    /// N/A, an integer rate, and the trailing comma.
    const TABLE: &str = "\
Date,USD,JPY,CYP,GBP,ISK,
2026-10-30,1.1172,175.68,N/A,0.8338,136,
2026-10-29,1.25,160,0.5787,0.8,N/A,
2008-02-29,1.4,N/A,0.585274,0.7,99.5,
";

    fn currency(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn pair(text: &str) -> CurrencyPair {
        CurrencyPair::parse(text).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn parses_rates_na_and_skips_withdrawn_columns() {
        let history = EcbHistory::parse(TABLE).unwrap();
        let dates: Vec<&str> = history.days().map(EcbDay::date).collect();
        assert_eq!(dates, ["2008-02-29", "2026-10-29", "2026-10-30"]);
        assert_eq!(history.latest().unwrap().date(), "2026-10-30");
        let day = history.day("2026-10-29").unwrap();
        let codes: Vec<&str> = day.rates().keys().map(|currency| currency.code()).collect();
        assert_eq!(codes, ["GBP", "JPY", "USD"], "ISK is N/A and CYP is withdrawn");
        assert_eq!(day.per_eur(currency("USD")), Some(dec("1.25")));
        assert_eq!(day.per_eur(currency("EUR")), Some(Decimal::ONE));
        assert_eq!(day.per_eur(currency("ISK")), None);
        assert_eq!(history.day("2026-10-30").unwrap().per_eur(currency("ISK")), Some(dec("136")));
        assert_eq!(history.day("2008-02-29").unwrap().per_eur(currency("JPY")), None);
        assert!(history.day("2026-10-31").is_none());
        // No trailing comma, CRLF line ends, and a header with no rows.
        let plain = EcbHistory::parse("Date,USD\r\n2026-10-30,1.1172\r\n").unwrap();
        assert_eq!(plain.latest().unwrap().per_eur(currency("USD")), Some(dec("1.1172")));
        assert!(EcbHistory::parse("Date,USD,\n").unwrap().latest().is_none());
    }

    fn check(text: &str, expected: &str) {
        match EcbHistory::parse(text) {
            Ok(history) => panic!("{text:?} parsed: {history:?}; wanted `{expected}`"),
            Err(error) => assert_eq!(error.to_string(), expected, "{text:?}"),
        }
    }

    #[test]
    fn errors_name_line_and_column() {
        check("", "line 1, column 1: bad header: the first column must be `Date`, not ``");
        check("date,USD\n", "line 1, column 1: bad header: the first column must be `Date`, not `date`");
        check("Date,\n", "line 1, column 2: bad header: empty currency code");
        check("Date\n", "line 1, column 2: bad header: no currency columns");
        check("Date,USD,,JPY,\n", "line 1, column 3: bad header: empty currency code");
        check("Date,USD,usd,\n", "line 1, column 3: bad header: `usd` is not a three-letter upper-case ISO 4217 code");
        check("Date,USD,JPY,USD,\n", "line 1, column 4: bad header: USD appears twice");
        check("Date,USD,EUR,\n", "line 1, column 3: bad header: EUR is the pivot: its rate per EUR is always 1");
        check("Date,USD,JPY,\n2026-10-30,1.1,\n", "line 2: 3 fields, but the header has 4");
        check("Date,USD,JPY,\n2026-10-30,1.1,175,\n\n", "line 3: 1 fields, but the header has 4");
        check("Date,USD,\n2026-10-30,1.1,x\n", "line 2, column 3: `x` stands under the header's empty last column");
        check(
            "Date,USD,\n30/10/2026,1.1,\n",
            "line 2, column 1: `30/10/2026` is not a date of the form YYYY-MM-DD: \
             expected four digits, `-`, two digits, `-`, two digits",
        );
        check(
            "Date,USD,\n2026-13-01,1.1,\n",
            "line 2, column 1: `2026-13-01` is not a date of the form YYYY-MM-DD: there is no month 13",
        );
        check(
            "Date,USD,\n2025-02-29,1.1,\n",
            "line 2, column 1: `2025-02-29` is not a date of the form YYYY-MM-DD: month 2 of 2025 has no day 29",
        );
        check(
            "Date,USD,\n2026-10-30,1.1,\n2026-10-29,1.1,\n2026-10-30,1.2,\n",
            "line 4, column 1: 2026-10-30 appears already on line 2",
        );
        let value_error =
            |text: &str| format!("line 2, column 3 (JPY): `{text}` is neither a plain decimal number nor N/A");
        for bad in ["", "abc", "1e3", "1;5", "+175", " 175", "175.", ".5", "1_000", "n/a", "NaN", "1.2.3"] {
            check(&format!("Date,USD,JPY,\n2026-10-30,1.1,{bad},\n"), &value_error(bad));
        }
        // More digits than rust_decimal holds exactly is refused, not rounded.
        check(
            "Date,USD,JPY,\n2026-10-30,1.1,1.00000000000000000000000000001,\n",
            &value_error("1.00000000000000000000000000001"),
        );
        check("Date,USD,JPY,\n2026-10-30,1.1,0,\n", "line 2, column 3 (JPY): rate 0 must be greater than zero");
        check(
            "Date,USD,JPY,\n2026-10-30,1.1,-0.000,\n",
            "line 2, column 3 (JPY): rate 0.000 must be greater than zero",
        );
        check("Date,USD,JPY,\n2026-10-30,-1.1,175,\n", "line 2, column 2 (USD): rate -1.1 must be greater than zero");
        // A withdrawn column's values are not read at all.
        assert!(EcbHistory::parse("Date,CYP,USD,\n2026-10-30,whatever,1.1,\n").is_ok());
    }

    #[test]
    fn mid_goes_through_the_eur_pivot() {
        let history = EcbHistory::parse(TABLE).unwrap();
        let day = history.day("2026-10-29").unwrap();
        // JPY per USD = 160 ÷ 1.25 = 128
        assert_eq!(day.mid(pair("USD/JPY")), Some(dec("128")));
        // USD per JPY = 1.25 ÷ 160 = 0.0078125
        assert_eq!(day.mid(pair("JPY/USD")), Some(dec("0.0078125")));
        // USD per GBP = 1.25 ÷ 0.8 = 1.5625
        assert_eq!(day.mid(pair("GBP/USD")), Some(dec("1.5625")));
        // EUR on either side: the ECB value itself, or its inverse.
        assert_eq!(day.mid(pair("EUR/USD")), Some(dec("1.25")));
        assert_eq!(day.mid(pair("USD/EUR")), Some(dec("0.8")));
        // 28 significant digits: 1.1172 ÷ 175.68 = 0.006359289617486338797814207650273...
        let latest = history.latest().unwrap();
        assert_eq!(latest.mid(pair("JPY/USD")), Some(dec("0.0063592896174863387978142077")));
        // No rate: ISK is N/A on 2026-10-29.
        assert_eq!(day.mid(pair("USD/ISK")), None);
        assert_eq!(day.mid(CurrencyPair { base: currency("USD"), quote: currency("USD") }), None);
    }

    #[test]
    fn provider_rates_spread_around_the_mid_and_round_toward_the_provider() {
        let history = EcbHistory::parse(TABLE).unwrap();
        let provider = ParticipantId::new("lp-ecb").unwrap();
        let as_of = SystemTime::UNIX_EPOCH;
        let quote = |date: &str, text: &str, spread_bps: u32| {
            let rates = history.day(date).unwrap().provider_rates(&provider, &[pair(text)], spread_bps, as_of).unwrap();
            (rates[0].bid.to_string(), rates[0].ask.to_string())
        };
        // 10 bp: s/2 = 0.0005. 128 × 0.9995 = 127.936; 128 × 1.0005 = 128.064 (exact, nothing to round).
        assert_eq!(quote("2026-10-29", "USD/JPY", 10), ("127.936".into(), "128.064".into()));
        // 1.5625 × 0.9995 = 1.56171875; 1.5625 × 1.0005 = 1.56328125 (9 significant digits: exact).
        assert_eq!(quote("2026-10-29", "GBP/USD", 10), ("1.56171875".into(), "1.56328125".into()));
        // 0.0078125 × 0.99875 = 0.007802734375; × 1.00125 = 0.007822265625 (25 bp, 10 digits: exact).
        assert_eq!(quote("2026-10-29", "JPY/USD", 25), ("0.007802734375".into(), "0.007822265625".into()));
        // mid 0.0063592896174863387978142077 (JPY/USD on 2026-10-30):
        // × 0.9995 = 0.006356109972677595628415300... → down, 12 digits → 0.00635610997267
        // × 1.0005 = 0.006362469262295081967213114... → up, 12 digits → 0.00636246926230
        assert_eq!(quote("2026-10-30", "JPY/USD", 10), ("0.00635610997267".into(), "0.00636246926230".into()));
        // Zero spread still rounds apart: mid 175.68 ÷ 1.1172 = 157.250268528464017185821697...
        // → bid 157.250268528 (down), ask 157.250268529 (up).
        assert_eq!(quote("2026-10-30", "USD/JPY", 0), ("157.250268528".into(), "157.250268529".into()));
        // More whole digits than significant digits: rounded to whole units, never to tens.
        // 20275.17 ÷ 0.000000007 = 2896452857142.857142...
        let big = EcbHistory::parse("Date,USD,IDR,\n2026-10-30,0.000000007,20275.17,\n").unwrap();
        let rates = big.latest().unwrap().provider_rates(&provider, &[pair("USD/IDR")], 0, as_of).unwrap();
        assert_eq!(
            (rates[0].bid.to_string(), rates[0].ask.to_string()),
            ("2896452857142".into(), "2896452857143".into())
        );

        let day = history.day("2026-10-29").unwrap();
        let rates = day.provider_rates(&provider, &[pair("USD/JPY"), pair("EUR/GBP")], 10, as_of).unwrap();
        assert_eq!(rates.len(), 2);
        assert_eq!(rates[1].source, "ECB reference rates 2026-10-29 ± 10 bp");
        assert_eq!((rates[1].bid.to_string(), rates[1].ask.to_string()), ("0.7996".into(), "0.8004".into()));
        assert_eq!((&rates[1].provider, rates[1].as_of, rates[1].maximum), (&provider, as_of, None));

        let error = |text: &str, spread_bps: u32| {
            day.provider_rates(&provider, &[pair("USD/JPY"), pair(text)], spread_bps, as_of).unwrap_err().to_string()
        };
        assert_eq!(error("USD/ISK", 10), "ECB reference rates 2026-10-29 have no rate for USD/ISK");
        assert_eq!(error("GBP/JPY", 10_001), "a spread of 10001 bp is wider than the 10000 bp allowed");
        let same = CurrencyPair { base: currency("GBP"), quote: currency("GBP") };
        let error = day.provider_rates(&provider, &[same], 10, as_of).unwrap_err();
        assert_eq!(error.to_string(), "GBP/GBP quotes a currency against itself");
        // The widest spread allowed still gives a positive bid.
        let widest = day.provider_rates(&provider, &[pair("USD/JPY")], EcbDay::SPREAD_BPS_MAX, as_of).unwrap();
        assert_eq!((widest[0].bid.to_string(), widest[0].ask.to_string()), ("64".into(), "192".into()));
    }

    #[test]
    fn seeded_rates_publish() {
        let history = EcbHistory::parse(TABLE).unwrap();
        let provider = ParticipantId::new("lp-ecb").unwrap();
        let pairs = [pair("USD/JPY"), pair("JPY/USD"), pair("GBP/ISK"), pair("EUR/ISK"), pair("ISK/EUR")];
        let mut book = crate::RateBook::new();
        for spread_bps in [0, 1, 10, 250] {
            for rate in
                history.latest().unwrap().provider_rates(&provider, &pairs, spread_bps, SystemTime::UNIX_EPOCH).unwrap()
            {
                book.publish(rate).unwrap();
            }
        }
        assert_eq!(book.rates().len(), pairs.len());
    }

    #[test]
    fn significant_digit_rounding() {
        let round = |text: &str, digits: u32, strategy| round_significant(dec(text), digits, strategy).to_string();
        assert_eq!(round("0.000041123456789", 3, RoundingStrategy::ToZero), "0.0000411");
        assert_eq!(round("0.000041123456789", 3, RoundingStrategy::AwayFromZero), "0.0000412");
        assert_eq!(round("123.456", 4, RoundingStrategy::AwayFromZero), "123.5");
        assert_eq!(round("999.95", 4, RoundingStrategy::AwayFromZero), "1000.0");
        assert_eq!(round("123456", 3, RoundingStrategy::ToZero), "123456");
        assert_eq!(round("1.5000", 2, RoundingStrategy::ToZero), "1.5");
    }
}
