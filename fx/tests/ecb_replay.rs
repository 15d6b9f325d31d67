//! Replays every day of the ECB euro reference rates 2025-01-02 to 2026-10-30
//! (`fx/data/ecb-eurofxref-2025-2026.csv`; source: European Central Bank, credited in
//! `fx/data/SOURCES.md`) through the EUR pivot, for every ordered pair (A, B) of distinct currencies
//! among EUR and those with a rate that day (USD, JPY, GBP, CHF, CNY, HKD, THB, INR, KRW, SGD, AUD
//! must be among them every day):
//!
//! - **cross = product of legs**: rate(A→EUR) × rate(EUR→B) equals the direct mid(A/B) to a relative
//!   difference of at most [`CROSS_RELATIVE_DIFFERENCE_MAX`];
//! - **pricing through the pivot**: a fixed send of A priced with two zero-spread conversions via EUR
//!   (the EUR amount rounded to cents, toward the provider) receives no more B than one direct
//!   conversion at the cross mid, and less than [`send_bound`] less; a fixed receive of B sends no
//!   less A via EUR than directly, and less than [`receive_bound`] more. One exception, by exactly one
//!   minor unit and only when the exact result is a whole number of minor units: see
//!   [`boundary_slack`];
//! - **seeded quotes publish**: every day's 10 bp quotes for every pair have bid ≤ mid ≤ ask and are
//!   accepted by `RateBook::publish`.
//!
//! Prices come from the crate's own `RateBook::best_conversion` (the crate does not export
//! `convert`), one provider per book, so the best conversion is that provider's. Silent on success;
//! a failure names the date, the pair, the amount and both results.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::SystemTime;

use corridor_fx::{CurrencyPair, EcbDay, EcbHistory, FixedAmount, FxError, ProviderRate, RateBook};
use corridor_schemas::{Currency, Money, ParticipantId};
use rust_decimal::{Decimal, RoundingStrategy};

const DATA_FILE: &str = "data/ecb-eurofxref-2025-2026.csv";
const FIRST_DATE: &str = "2025-01-02";
const LAST_DATE: &str = "2026-10-30";
const DAY_COUNT: usize = 468;
/// Σ over the days of n × (n − 1), n = currencies with a rate that day + EUR: 30 × 29 × 468 (BGN,
/// withdrawn from ISO 4217 on 2026-01-01, is skipped by the parser; RUB is N/A throughout).
const ORDERED_PAIR_COUNT: usize = 407_160;

/// Must have a rate every day of the file, so the replay cannot silently shrink.
const CORE_CURRENCIES: [&str; 11] = ["USD", "JPY", "GBP", "CHF", "CNY", "HKD", "THB", "INR", "KRW", "SGD", "AUD"];

/// Fixed amounts priced for each pair, truncated to the minor units of their currency (1 234 567 JPY).
const AMOUNTS: [&str; 3] = ["1", "1000", "1234567.89"];

/// The largest ratio allowed between the largest and the smallest per-EUR value of one day (EUR's
/// own 1 included), checked for every day: it bounds how small a compared value can be.
/// 2025–2026 peaks near 2.5 × 10⁴ (IDR against GBP).
const PER_EUR_RATIO_MAX: i64 = 10_000_000;

/// 10⁻²⁰. Derivation: rust_decimal keeps at most 28 decimal places in a 96-bit mantissa (28 or 29
/// significant digits), so each product or quotient is within one unit of its 28th decimal place
/// (10⁻²⁸ absolute) or, from 7.9 up, of its 28th significant digit (10⁻²⁷ relative). Every value
/// compared is at least 1 / [`PER_EUR_RATIO_MAX`] = 10⁻⁷, so one rounding is at most
/// 10⁻²⁸ / 10⁻⁷ = 10⁻²¹ relative. The check has three roundings (the A→EUR leg 1 / per_eur(A), the
/// product, and the direct quotient per_eur(B) / per_eur(A); the EUR→B leg is the ECB value itself,
/// exact): at most 3 × 10⁻²¹ (plus second-order terms), under 10⁻²⁰.
const CROSS_RELATIVE_DIFFERENCE_MAX: Decimal = Decimal::from_parts(1, 0, 0, false, 20);

const SEEDED_SPREAD_BPS: u32 = 10;

fn eur() -> Currency {
    Currency::from_code("EUR").unwrap()
}

fn history() -> EcbHistory {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DATA_FILE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    EcbHistory::parse(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// EUR first, then every currency with a rate that day.
fn currencies(day: &EcbDay) -> Vec<Currency> {
    std::iter::once(eur()).chain(day.rates().keys().copied()).collect()
}

fn pair(base: Currency, quote: Currency) -> CurrencyPair {
    CurrencyPair { base, quote }
}

/// One minor unit of `currency` (0.01 USD, 1 JPY).
fn unit(currency: Currency) -> Decimal {
    Decimal::new(1, currency.minor_units())
}

/// A zero-spread rate: bid = ask = `price`.
fn mid_rate(provider: &ParticipantId, pair: CurrencyPair, price: Decimal, date: &str) -> ProviderRate {
    ProviderRate {
        provider: provider.clone(),
        pair,
        bid: price,
        ask: price,
        source: format!("ECB reference rates {date} mid"),
        as_of: SystemTime::UNIX_EPOCH,
        maximum: None,
    }
}

fn book(rates: impl IntoIterator<Item = ProviderRate>) -> RateBook {
    let mut book = RateBook::new();
    for rate in rates {
        book.publish(rate).unwrap();
    }
    book
}

/// Converts with the book's one provider; `Ok(None)` when the result is under one minor unit.
fn price(book: &RateBook, from: Currency, to: Currency, amount: FixedAmount) -> Result<Option<Money>, FxError> {
    match book.best_conversion(from, to, amount, |_| true) {
        Ok(conversion) => Ok(Some(match amount {
            FixedAmount::Send(_) => conversion.receive,
            FixedAmount::Receive(_) => conversion.send,
        })),
        Err(FxError::BelowMinorUnit { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Fixed send A → EUR → B with the EUR/X mid rates of `legs`. The amount of B, 0 if a leg pays out
/// less than one minor unit. A leg from EUR to EUR is no conversion.
fn send_via_pivot(legs: &RateBook, from: Currency, to: Currency, send: Money) -> Result<Decimal, FxError> {
    let euros = if from == eur() {
        send
    } else {
        match price(legs, from, eur(), FixedAmount::Send(send))? {
            Some(euros) => euros,
            None => return Ok(Decimal::ZERO),
        }
    };
    if to == eur() {
        return Ok(euros.amount());
    }
    Ok(price(legs, eur(), to, FixedAmount::Send(euros))?.map_or(Decimal::ZERO, Money::amount))
}

/// Fixed receive A → EUR → B: the amount of A to send. Rounding up never leaves a leg at zero.
fn receive_via_pivot(legs: &RateBook, from: Currency, to: Currency, receive: Money) -> Result<Decimal, FxError> {
    let below = |currency| FxError::BelowMinorUnit { amount: receive, currency };
    let euros = if to == eur() {
        receive
    } else {
        price(legs, eur(), to, FixedAmount::Receive(receive))?.ok_or_else(|| below(eur()))?
    };
    if from == eur() {
        return Ok(euros.amount());
    }
    Ok(price(legs, from, eur(), FixedAmount::Receive(euros))?.ok_or_else(|| below(from))?.amount())
}

/// Fixed send: direct − via-pivot is below this. Via the pivot, the EUR amount is rounded down by
/// less than 0.01 EUR, worth less than 0.01 × per_eur(B) of B, and the B amount is rounded down by
/// less than one minor unit of B. The direct result is rounded down too, which only narrows the gap:
/// exact − via < 0.01 × per_eur(B) + unit(B) and direct ≤ exact.
fn send_bound(per_eur_to: Decimal, to: Currency) -> Decimal {
    Decimal::new(1, 2) * per_eur_to + unit(to)
}

/// Fixed receive, mirrored: via-pivot − direct is below this. The EUR amount is rounded up by less
/// than 0.01 EUR, which costs less than 0.01 × per_eur(A) of A, and the A amount is rounded up by
/// less than one minor unit of A; the direct send is rounded up too: direct ≥ exact.
fn receive_bound(per_eur_from: Decimal, from: Currency) -> Decimal {
    Decimal::new(1, 2) * per_eur_from + unit(from)
}

/// How far the direct conversion may fall on the wrong side of the via-pivot one: one minor unit of
/// `currency` when the exact result `amount × multiplier ÷ divisor` is a whole number of minor
/// units, else zero.
///
/// Why: the direct price is the cross mid per_eur(B) ÷ per_eur(A) cut to 28 digits, so it is a
/// hair (≤ 10⁻²¹ relative, see [`CROSS_RELATIVE_DIFFERENCE_MAX`]) above or below the exact cross.
/// When the exact result lies exactly on a minor-unit boundary, a hair on the provider's side
/// rounds a whole unit further (receive 1000.00 EUR for HUF at 412.9 HUF/EUR: 1000 ÷ 0.0024218939...
/// (cut to 28 digits, a hair low) = 412900.000...01, rounded up to 412900.01 HUF, where
/// 1000 × 412.9 = 412900.00 exactly). The via-pivot legs here are the ECB values themselves, exact,
/// so the pivot wins by that unit; rounding still favours the provider in both. Everywhere else the
/// ordering is asserted strictly. In this file 30 534 of the 2 442 960 priced cases are exact on a
/// boundary, and 6 166 of those need the unit: 6 165 fixed receives of EUR (the direct price there is
/// 1 ÷ per_eur(A)) and AUD→CAD receiving 1000.00 CAD on 2025-03-17 (1000 × 1.716 ÷ 1.5625 = 1098.24).
fn boundary_slack(amount: Decimal, multiplier: Decimal, divisor: Decimal, currency: Currency) -> Decimal {
    let on_boundary = amount.checked_mul(multiplier).is_some_and(|numerator| {
        numerator
            .checked_div(divisor)
            .map(|quotient| quotient.round_dp(currency.minor_units()))
            .and_then(|candidate| candidate.checked_mul(divisor))
            .is_some_and(|product| product == numerator)
    });
    if on_boundary { unit(currency) } else { Decimal::ZERO }
}

fn amount(text: &str, currency: Currency) -> Money {
    let exact: Decimal = text.parse().unwrap();
    Money::from_decimal(exact.round_dp_with_strategy(currency.minor_units(), RoundingStrategy::ToZero), currency)
        .unwrap()
}

/// Failures are collected so one run shows how many there are; the first few are printed in full.
#[derive(Default)]
struct Failures {
    count: usize,
    shown: Vec<String>,
}

impl Failures {
    const SHOWN_MAX: usize = 20;

    fn add(&mut self, message: String) {
        self.count += 1;
        if self.shown.len() < Self::SHOWN_MAX {
            self.shown.push(message);
        }
    }

    fn assert_none(&self) {
        assert!(self.count == 0, "{} failures; the first {}:\n{}", self.count, self.shown.len(), self.shown.join("\n"));
    }
}

#[test]
fn the_file_covers_2025_to_2026_and_the_core_currencies_every_day() {
    let history = history();
    assert_eq!(history.days().len(), DAY_COUNT);
    assert_eq!(history.days().next().map(EcbDay::date), Some(FIRST_DATE));
    assert_eq!(history.latest().map(EcbDay::date), Some(LAST_DATE));
    for day in history.days() {
        for code in CORE_CURRENCIES {
            let currency = Currency::from_code(code).unwrap();
            assert!(day.per_eur(currency).is_some(), "{}: no rate for {code}", day.date());
        }
    }
}

#[test]
fn cross_rates_through_the_pivot_equal_the_product_of_their_legs() {
    let history = history();
    let mut failures = Failures::default();
    let mut pairs_checked = 0;
    for day in history.days() {
        let currencies = currencies(day);
        let per_eur: Vec<Decimal> = currencies.iter().map(|&currency| day.per_eur(currency).unwrap()).collect();
        let (smallest, largest) = (per_eur.iter().min().unwrap(), per_eur.iter().max().unwrap());
        assert!(
            *largest <= *smallest * Decimal::from(PER_EUR_RATIO_MAX),
            "{}: per-EUR values from {smallest} to {largest} span more than {PER_EUR_RATIO_MAX}, \
             so CROSS_RELATIVE_DIFFERENCE_MAX is no longer derived",
            day.date()
        );
        // rate(X→EUR): EUR per X, 1 for EUR itself.
        let to_eur =
            |currency: Currency| if currency == eur() { Some(Decimal::ONE) } else { day.mid(pair(currency, eur())) };
        let from_eur =
            |currency: Currency| if currency == eur() { Some(Decimal::ONE) } else { day.mid(pair(eur(), currency)) };
        for &from in &currencies {
            for &to in currencies.iter().filter(|&&to| to != from) {
                pairs_checked += 1;
                let direct = day.mid(pair(from, to)).unwrap();
                let legs =
                    to_eur(from).zip(from_eur(to)).and_then(|(first, second)| first.checked_mul(second)).unwrap();
                if (legs - direct).abs() > CROSS_RELATIVE_DIFFERENCE_MAX * direct {
                    failures.add(format!(
                        "{} {from}/{to}: via EUR {legs}, direct {direct}, relative difference above {}",
                        day.date(),
                        CROSS_RELATIVE_DIFFERENCE_MAX
                    ));
                }
            }
        }
    }
    failures.assert_none();
    assert_eq!(pairs_checked, ORDERED_PAIR_COUNT);
}

#[test]
fn pricing_through_the_pivot_stays_within_rounding_of_the_direct_cross() {
    let history = history();
    let pivot = ParticipantId::new("ecb-pivot").unwrap();
    let direct_provider = ParticipantId::new("ecb-direct").unwrap();
    let mut failures = Failures::default();
    let mut pairs_checked = 0;
    for day in history.days() {
        let currencies = currencies(day);
        // Every leg through EUR, as EUR/X with bid = ask = the ECB value itself.
        let legs = book(
            day.rates().iter().map(|(&currency, &value)| mid_rate(&pivot, pair(eur(), currency), value, day.date())),
        );
        for &from in &currencies {
            for &to in currencies.iter().filter(|&&to| to != from) {
                pairs_checked += 1;
                let cross = pair(from, to);
                let direct_book = book([mid_rate(&direct_provider, cross, day.mid(cross).unwrap(), day.date())]);
                let (per_eur_from, per_eur_to) = (day.per_eur(from).unwrap(), day.per_eur(to).unwrap());
                for text in AMOUNTS {
                    let send = amount(text, from);
                    let direct = price(&direct_book, from, to, FixedAmount::Send(send))
                        .map(|got| got.map_or(Decimal::ZERO, Money::amount));
                    let via = send_via_pivot(&legs, from, to, send);
                    let bound = send_bound(per_eur_to, to);
                    // Exact receive = send × per_eur(B) ÷ per_eur(A).
                    let slack = boundary_slack(send.amount(), per_eur_to, per_eur_from, to);
                    match (&direct, &via) {
                        (Ok(direct), Ok(via)) if *direct + slack >= *via && *direct - *via < bound => {}
                        _ => failures.add(format!(
                            "{} {from}→{to} send {send}: direct {direct:?}, via EUR {via:?}; \
                             want direct + {slack} ≥ via EUR and direct − via EUR < {bound}",
                            day.date()
                        )),
                    }

                    let receive = amount(text, to);
                    let direct = price(&direct_book, from, to, FixedAmount::Receive(receive)).and_then(|got| {
                        got.map(Money::amount).ok_or(FxError::BelowMinorUnit { amount: receive, currency: from })
                    });
                    let via = receive_via_pivot(&legs, from, to, receive);
                    let bound = receive_bound(per_eur_from, from);
                    // Exact send = receive × per_eur(A) ÷ per_eur(B).
                    let slack = boundary_slack(receive.amount(), per_eur_from, per_eur_to, from);
                    match (&direct, &via) {
                        (Ok(direct), Ok(via)) if *via + slack >= *direct && *via - *direct < bound => {}
                        _ => failures.add(format!(
                            "{} {from}→{to} receive {receive}: direct send {direct:?}, via EUR send {via:?}; \
                             want via EUR + {slack} ≥ direct and via EUR − direct < {bound}",
                            day.date()
                        )),
                    }
                }
            }
        }
    }
    failures.assert_none();
    assert_eq!(pairs_checked, ORDERED_PAIR_COUNT);
}

#[test]
fn seeded_quotes_bracket_the_mid_and_publish_every_day() {
    let history = history();
    let provider = ParticipantId::new("lp-ecb").unwrap();
    let mut failures = Failures::default();
    for day in history.days() {
        let currencies = currencies(day);
        let pairs: Vec<CurrencyPair> = currencies
            .iter()
            .flat_map(|&from| currencies.iter().filter(move |&&to| to != from).map(move |&to| pair(from, to)))
            .collect();
        let rates = match day.provider_rates(&provider, &pairs, SEEDED_SPREAD_BPS, SystemTime::UNIX_EPOCH) {
            Ok(rates) => rates,
            Err(error) => {
                failures.add(format!("{}: {error}", day.date()));
                continue;
            }
        };
        let mut book = RateBook::new();
        for rate in rates {
            let mid = day.mid(rate.pair).unwrap();
            if !(rate.bid <= mid && mid <= rate.ask) {
                failures.add(format!("{} {}: bid {} mid {mid} ask {}", day.date(), rate.pair, rate.bid, rate.ask));
            }
            let description = format!("{} {}: bid {} ask {}", day.date(), rate.pair, rate.bid, rate.ask);
            if let Err(error) = book.publish(rate) {
                failures.add(format!("{description}: {error}"));
            }
        }
        if book.rates().len() != pairs.len() {
            failures.add(format!("{}: {} rates published for {} pairs", day.date(), book.rates().len(), pairs.len()));
        }
    }
    failures.assert_none();
}
