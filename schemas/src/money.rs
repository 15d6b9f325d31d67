//! Money: a positive amount of one currency, exact to the currency's minor units.
//!
//! [`Money`] stores an integer count of minor units (cents, fils, yen), so it is exact and cheap to
//! add; the decimal form is for the wire and for people. Constructors refuse zero, negative amounts,
//! more decimals than the currency has, and amounts above [`Money::MINOR_UNITS_MAX`]. There are no
//! floats here and no rounding: rounding belongs to the code that converts (`fx`), which must say
//! which way it rounds.

use std::fmt;

use rust_decimal::Decimal;

use crate::currency::{Currency, truncate_for_message};

/// A positive amount of money in one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor_units: i64,
    currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("`{amount}` is not a plain decimal number such as 125.50")]
    Malformed { amount: String },
    #[error("must be greater than zero, got {amount}")]
    NotPositive { amount: String },
    #[error("`{amount}` has {decimals} decimal places; {currency} allows {allowed}")]
    TooManyDecimals { amount: String, decimals: u32, currency: Currency, allowed: u32 },
    #[error("{amount} {currency} is above the largest amount Corridor carries in one payment")]
    TooLarge { amount: String, currency: Currency },
    #[error("cannot combine {left} with {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
}

impl Money {
    /// The largest amount one payment, fee or posting may carry, in minor units (10^15). Keeps every
    /// sum of a few thousand of them far from `i64::MAX`, so ledger arithmetic cannot overflow.
    pub const MINOR_UNITS_MAX: i64 = 1_000_000_000_000_000;

    /// Longest decimal string accepted on the wire.
    const TEXT_LENGTH_MAX: usize = 32;

    pub fn from_minor_units(minor_units: i64, currency: Currency) -> Result<Self, MoneyError> {
        if minor_units <= 0 {
            return Err(MoneyError::NotPositive { amount: format_minor_units(minor_units, currency) });
        }
        if minor_units > Self::MINOR_UNITS_MAX {
            return Err(MoneyError::TooLarge { amount: format_minor_units(minor_units, currency), currency });
        }
        Ok(Self { minor_units, currency })
    }

    /// An exact decimal amount; refuses digits below the currency's minor unit rather than rounding.
    pub fn from_decimal(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        if amount <= Decimal::ZERO {
            return Err(MoneyError::NotPositive { amount: amount.to_string() });
        }
        let normalized = amount.normalize();
        let allowed = currency.minor_units();
        if normalized.scale() > allowed {
            return Err(MoneyError::TooManyDecimals {
                amount: amount.to_string(),
                decimals: normalized.scale(),
                currency,
                allowed,
            });
        }
        let too_large = || MoneyError::TooLarge { amount: amount.to_string(), currency };
        let scaled = normalized.checked_mul(Decimal::from(10_i64.pow(allowed))).ok_or_else(too_large)?;
        let minor_units = i64::try_from(scaled).map_err(|_| too_large())?;
        Self::from_minor_units(minor_units, currency)
    }

    /// Parses a plain decimal string: digits, optionally a point and more digits. No sign, exponent,
    /// separators or spaces: an amount that needs interpreting is refused, not guessed.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let malformed = || MoneyError::Malformed { amount: truncate_for_message(amount) };
        if amount.len() > Self::TEXT_LENGTH_MAX {
            return Err(malformed());
        }
        let (whole, fraction) = amount.split_once('.').unwrap_or((amount, "0"));
        let digits_only = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(whole) || !digits_only(fraction) {
            return Err(malformed());
        }
        // Check precision and size on the text: a decimal parser would round away a 29th digit.
        let decimals = u32::try_from(fraction.trim_end_matches('0').len()).unwrap_or(u32::MAX);
        if decimals > currency.minor_units() {
            let allowed = currency.minor_units();
            return Err(MoneyError::TooManyDecimals {
                amount: truncate_for_message(amount),
                decimals,
                currency,
                allowed,
            });
        }
        const WHOLE_DIGITS_MAX: usize = 20;
        if whole.trim_start_matches('0').len() > WHOLE_DIGITS_MAX {
            return Err(MoneyError::TooLarge { amount: truncate_for_message(amount), currency });
        }
        let decimal: Decimal = amount.parse().map_err(|_| malformed())?;
        Self::from_decimal(decimal, currency)
    }

    pub fn minor_units(self) -> i64 {
        self.minor_units
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The amount as a decimal with exactly the currency's minor units (`12.50`, never `12.5`).
    pub fn amount(self) -> Decimal {
        Decimal::new(self.minor_units, self.currency.minor_units())
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency });
        }
        let sum = self.minor_units.checked_add(other.minor_units).unwrap_or(i64::MAX);
        Self::from_minor_units(sum, self.currency)
    }
}

/// Formats a signed count of minor units as a decimal: `-1250` HKD is `-12.50`.
pub fn format_minor_units(minor_units: i64, currency: Currency) -> String {
    Decimal::new(minor_units, currency.minor_units()).to_string()
}

/// Parses a signed decimal as written by [`format_minor_units`] (`-12.50`) back into minor units,
/// refusing anything that is not exact in the currency.
pub fn parse_signed_minor_units(amount: &str, currency: Currency) -> Result<i64, MoneyError> {
    let (negative, magnitude) = match amount.strip_prefix('-') {
        Some(magnitude) => (true, magnitude),
        None => (false, amount),
    };
    let money = Money::parse(magnitude, currency)?;
    Ok(if negative { -money.minor_units() } else { money.minor_units() })
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::from_code(code).unwrap()
    }

    fn check(amount: &str, code: &str, expected: Result<i64, &str>) {
        match (Money::parse(amount, currency(code)), expected) {
            (Ok(money), Ok(minor)) => assert_eq!(money.minor_units(), minor, "{amount} {code}"),
            (Err(error), Err(fragment)) => {
                assert!(error.to_string().contains(fragment), "{amount} {code}: `{error}` lacks `{fragment}`")
            }
            (got, want) => panic!("{amount} {code}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parse() {
        check("125.50", "HKD", Ok(12_550));
        check("125.5", "HKD", Ok(12_550));
        check("125", "HKD", Ok(12_500));
        check("0.01", "HKD", Ok(1));
        check("125.500", "HKD", Ok(12_550)); // trailing zeros are not extra precision
        check("1500", "JPY", Ok(1_500));
        check("1.125", "BHD", Ok(1_125));
        check("125.505", "HKD", Err("has 3 decimal places; HKD allows 2"));
        check("1.5", "JPY", Err("has 1 decimal places; JPY allows 0"));
        check("1.1255", "BHD", Err("BHD allows 3"));
        check("0", "HKD", Err("greater than zero"));
        check("0.00", "HKD", Err("greater than zero"));
        check("-5", "HKD", Err("plain decimal"));
        check("+5", "HKD", Err("plain decimal"));
        check("1e3", "HKD", Err("plain decimal"));
        check("1_000", "HKD", Err("plain decimal"));
        check("1,000.00", "HKD", Err("plain decimal"));
        check(" 5", "HKD", Err("plain decimal"));
        check(".5", "HKD", Err("plain decimal"));
        check("5.", "HKD", Err("plain decimal"));
        check("", "HKD", Err("plain decimal"));
        check("NaN", "HKD", Err("plain decimal"));
        check("1.000000000000000000000000000001", "HKD", Err("has 30 decimal places"));
        check("10000000000000.00", "HKD", Ok(Money::MINOR_UNITS_MAX));
        check("10000000000000.01", "HKD", Err("largest amount"));
        check("99999999999999999999999999999", "HKD", Err("largest amount"));
    }

    #[test]
    fn display_keeps_minor_units() {
        let money = Money::parse("12.5", currency("HKD")).unwrap();
        assert_eq!(money.to_string(), "12.50 HKD");
        assert_eq!(format_minor_units(-1_250, currency("HKD")), "-12.50");
        assert_eq!(format_minor_units(7, currency("BHD")), "0.007");
        assert_eq!(format_minor_units(7, currency("JPY")), "7");
    }

    #[test]
    fn signed_minor_units_round_trip() {
        let hkd = currency("HKD");
        for minor in [-1_250_i64, 1, -1, 999_999] {
            assert_eq!(parse_signed_minor_units(&format_minor_units(minor, hkd), hkd), Ok(minor));
        }
        assert!(parse_signed_minor_units("1.001", hkd).is_err());
        assert!(parse_signed_minor_units("--1", hkd).is_err());
    }

    #[test]
    fn add_refuses_other_currencies() {
        let hkd = Money::parse("1", currency("HKD")).unwrap();
        let cny = Money::parse("1", currency("CNY")).unwrap();
        assert_eq!(hkd.checked_add(hkd).unwrap().minor_units(), 200);
        assert!(matches!(hkd.checked_add(cny), Err(MoneyError::CurrencyMismatch { .. })));
    }

    proptest! {
        #[test]
        fn decimal_text_round_trips(minor in 1..=Money::MINOR_UNITS_MAX, code in prop::sample::select(vec!["JPY", "HKD", "BHD", "CLF"])) {
            let currency = currency(code);
            let money = Money::from_minor_units(minor, currency).unwrap();
            let reparsed = Money::parse(&money.amount().to_string(), currency).unwrap();
            prop_assert_eq!(reparsed, money);
        }
    }
}
