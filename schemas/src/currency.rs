//! ISO 4217 currencies, from the list embedded at build time (`data/iso4217.xml`).
//!
//! A [`Currency`] is always a current, payable ISO 4217 code: withdrawn or made-up codes and codes
//! without minor units (metals, funds, test codes) cannot be constructed. It does not know exchange
//! rates or which ledger issues it; that is `fx` and the router's configuration.

use std::fmt;

mod table {
    include!(concat!(env!("OUT_DIR"), "/iso4217.rs"));
}

pub use table::ISO_4217_PUBLISHED;

/// A current ISO 4217 currency with a defined number of minor units. Two bytes, `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency {
    /// Index into the sorted embedded table.
    index: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("`{code}` is not a three-letter upper-case ISO 4217 code")]
    Malformed { code: String },
    #[error("`{code}` is not in the ISO 4217 list published {published} (unknown or withdrawn)", published = ISO_4217_PUBLISHED)]
    Unknown { code: String },
    #[error("`{code}` has no minor units in ISO 4217 (a metal, fund or test code) and cannot be paid")]
    NotPayable { code: String },
}

impl Currency {
    pub fn from_code(code: &str) -> Result<Self, CurrencyError> {
        let well_formed = code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase());
        if !well_formed {
            return Err(CurrencyError::Malformed { code: truncate_for_message(code) });
        }
        let index = table::ISO_4217
            .binary_search_by(|(entry, ..)| (*entry).cmp(code))
            .map_err(|_| CurrencyError::Unknown { code: code.to_owned() })?;
        if table::ISO_4217[index].2.is_none() {
            return Err(CurrencyError::NotPayable { code: code.to_owned() });
        }
        let index = u16::try_from(index).map_err(|_| CurrencyError::Unknown { code: code.to_owned() })?;
        Ok(Self { index })
    }

    pub fn code(self) -> &'static str {
        table::ISO_4217[usize::from(self.index)].0
    }

    pub fn numeric_code(self) -> u16 {
        table::ISO_4217[usize::from(self.index)].1
    }

    /// Digits after the decimal point: 0 for JPY, 2 for HKD, 3 for BHD.
    pub fn minor_units(self) -> u32 {
        // Construction refuses codes without minor units.
        u32::from(table::ISO_4217[usize::from(self.index)].2.unwrap_or(0))
    }

    pub fn name(self) -> &'static str {
        table::ISO_4217[usize::from(self.index)].3
    }

    /// Every payable currency of the embedded list.
    pub fn all() -> impl Iterator<Item = Currency> {
        (0..table::ISO_4217.len())
            .filter(|index| table::ISO_4217[*index].2.is_some())
            .filter_map(|index| u16::try_from(index).ok())
            .map(|index| Currency { index })
    }
}

/// Echoing a 10 MB "currency code" back in an error would be its own problem.
pub(crate) fn truncate_for_message(input: &str) -> String {
    const SHOWN_CHARS_MAX: usize = 40;
    if input.chars().count() <= SHOWN_CHARS_MAX {
        input.to_owned()
    } else {
        let shown: String = input.chars().take(SHOWN_CHARS_MAX).collect();
        format!("{shown}…")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::from_code(&code)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.code().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str, expected: Result<(u32, u16), &str>) {
        let actual = Currency::from_code(code).map(|c| (c.minor_units(), c.numeric_code()));
        match (actual, expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{code}"),
            (Err(error), Err(fragment)) => {
                assert!(error.to_string().contains(fragment), "{code}: `{error}` lacks `{fragment}`")
            }
            (got, want) => panic!("{code}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn codes_from_the_iso_list() {
        check("HKD", Ok((2, 344)));
        check("CNY", Ok((2, 156)));
        check("THB", Ok((2, 764)));
        check("AED", Ok((2, 784)));
        check("JPY", Ok((0, 392)));
        check("BHD", Ok((3, 48)));
        check("CLF", Ok((4, 990)));
        check("hkd", Err("three-letter upper-case"));
        check("HK", Err("three-letter upper-case"));
        check("HKDX", Err("three-letter upper-case"));
        check("", Err("three-letter upper-case"));
        check("DEM", Err("unknown or withdrawn"));
        check("FRF", Err("unknown or withdrawn"));
        check("ZZZ", Err("unknown or withdrawn"));
        check("XAU", Err("cannot be paid"));
        check("XXX", Err("cannot be paid"));
        check("XTS", Err("cannot be paid"));
    }

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(table::ISO_4217.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(ISO_4217_PUBLISHED, "2026-01-01");
        assert!(Currency::all().count() > 150);
        assert_eq!(Currency::from_code("EUR").map(Currency::name), Ok("Euro"));
    }

    #[test]
    fn long_garbage_is_not_echoed_whole() {
        let garbage = "A".repeat(10_000);
        let message = Currency::from_code(&garbage).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }
}
