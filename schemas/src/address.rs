//! Addresses of accounts on central-bank ledgers: `<ledger-id>/<account>`, e.g. `e-hkd/bank-hk.alice`.
//!
//! An address says where an account lives; whether the account exists is for its ledger to say.

use std::fmt;
use std::str::FromStr;

use crate::identifier::{IdentifierError, check_identifier, identifier, is_lower_alphanumeric};

identifier!(
    /// A central-bank ledger on the network, e.g. `e-hkd`.
    LedgerId,
    length_min = 1,
    length_max = 32,
    alphabet = "lower-case letters, digits and '-', starting with a letter or digit",
    first = is_lower_alphanumeric,
    rest = |b| is_lower_alphanumeric(b) || b == b'-'
);

identifier!(
    /// An account's name on its own ledger, e.g. `bank-hk.alice`.
    AccountName,
    length_min = 1,
    length_max = 64,
    alphabet = "letters, digits, '.', '_', ':' and '-', starting with a letter or digit",
    first = |b| b.is_ascii_alphanumeric(),
    rest = |b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
);

/// Where an account lives: its ledger and its name there.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Address {
    pub ledger: LedgerId,
    pub account: AccountName,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{address}` is not of the form <ledger-id>/<account>")]
    NoSeparator { address: String },
    #[error("bad ledger id: {0}")]
    Ledger(IdentifierError),
    #[error("bad account name: {0}")]
    Account(IdentifierError),
}

impl Address {
    pub fn new(ledger: LedgerId, account: AccountName) -> Self {
        Self { ledger, account }
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(address: &str) -> Result<Self, Self::Err> {
        let Some((ledger, account)) = address.split_once('/') else {
            return Err(AddressError::NoSeparator { address: crate::currency::truncate_for_message(address) });
        };
        let ledger = LedgerId::new(ledger).map_err(AddressError::Ledger)?;
        let account = AccountName::new(account).map_err(AddressError::Account)?;
        Ok(Self { ledger, account })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ledger, self.account)
    }
}

impl TryFrom<String> for Address {
    type Error = AddressError;
    fn try_from(address: String) -> Result<Self, Self::Error> {
        address.parse()
    }
}

impl From<Address> for String {
    fn from(address: Address) -> Self {
        address.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), &str>) {
        match (input.parse::<Address>(), expected) {
            (Ok(address), Ok((ledger, account))) => {
                assert_eq!((address.ledger.as_str(), address.account.as_str()), (ledger, account));
                assert_eq!(address.to_string(), input);
            }
            (Err(error), Err(fragment)) => {
                assert!(error.to_string().contains(fragment), "{input}: `{error}` lacks `{fragment}`")
            }
            (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn parse() {
        check("e-hkd/bank-hk.alice", Ok(("e-hkd", "bank-hk.alice")));
        check("e-cny/lp-asia", Ok(("e-cny", "lp-asia")));
        check("e-aed/A_1:x", Ok(("e-aed", "A_1:x")));
        check("e-hkd", Err("<ledger-id>/<account>"));
        check("/alice", Err("bad ledger id: must not be empty"));
        check("e-hkd/", Err("bad account name: must not be empty"));
        check("E-HKD/alice", Err("bad ledger id"));
        check("e-hkd/al ice", Err("bad account name"));
        check("e-hkd/alice/extra", Err("bad account name"));
        check("e-hkd/.alice", Err("bad account name"));
    }
}
