//! Small validated identifiers: participants, idempotency keys, jurisdictions, ledgers, accounts.
//!
//! Each is a newtype over a `String` whose constructor checks length and alphabet, so ids can be
//! logged, used as keys and put in paths without escaping. They carry no meaning beyond their text.

use std::fmt;

use crate::currency::truncate_for_message;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("must not be empty")]
    Empty,
    #[error("`{value}` is not {length_min} to {length_max} characters long")]
    BadLength { value: String, length_min: usize, length_max: usize },
    #[error("`{value}` may only contain {alphabet}")]
    BadCharacter { value: String, alphabet: &'static str },
}

/// Defines a string newtype with a checked constructor, `as_str`, `Display`, and serde as a string.
macro_rules! identifier {
    ($(#[$meta:meta])* $name:ident, length_min = $length_min:expr, length_max = $length_max:expr, alphabet = $alphabet:expr, first = $first:expr, rest = $rest:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const LENGTH_MIN: usize = $length_min;
            pub const LENGTH_MAX: usize = $length_max;
            pub const ALPHABET: &'static str = $alphabet;

            pub fn new(value: impl Into<String>) -> Result<Self, IdentifierError> {
                let value = value.into();
                check_identifier(&value, Self::LENGTH_MIN, Self::LENGTH_MAX, Self::ALPHABET, $first, $rest)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentifierError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

pub(crate) use identifier;

pub(crate) fn check_identifier(
    value: &str,
    length_min: usize,
    length_max: usize,
    alphabet: &'static str,
    first: fn(u8) -> bool,
    rest: fn(u8) -> bool,
) -> Result<(), IdentifierError> {
    let bytes = value.as_bytes();
    let Some(&head) = bytes.first() else {
        return Err(IdentifierError::Empty);
    };
    if bytes.len() < length_min || bytes.len() > length_max {
        return Err(IdentifierError::BadLength { value: truncate_for_message(value), length_min, length_max });
    }
    if !first(head) || !bytes[1..].iter().all(|b| rest(*b)) {
        return Err(IdentifierError::BadCharacter { value: truncate_for_message(value), alphabet });
    }
    Ok(())
}

pub(crate) fn is_lower_alphanumeric(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

identifier!(
    /// A participant of the network: a bank, a wallet provider or a liquidity provider.
    ParticipantId,
    length_min = 1,
    length_max = 64,
    alphabet = "lower-case letters, digits, '.' and '-', starting with a letter or digit",
    first = is_lower_alphanumeric,
    rest = |b| is_lower_alphanumeric(b) || b == b'.' || b == b'-'
);

identifier!(
    /// Chosen by a participant for one payment; scoped to that participant.
    IdempotencyKey,
    length_min = 1,
    length_max = 128,
    alphabet = "printable ASCII without spaces",
    first = |b| b.is_ascii_graphic(),
    rest = |b| b.is_ascii_graphic()
);

identifier!(
    /// An ISO 3166-1 alpha-2 country code standing for a regulator's jurisdiction, e.g. `HK`.
    Jurisdiction,
    length_min = 2,
    length_max = 2,
    alphabet = "two upper-case letters (ISO 3166-1 alpha-2)",
    first = |b| b.is_ascii_uppercase(),
    rest = |b| b.is_ascii_uppercase()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids() {
        assert!(ParticipantId::new("bank-hk").is_ok());
        assert!(ParticipantId::new("lp.asia-1").is_ok());
        assert_eq!(ParticipantId::new(""), Err(IdentifierError::Empty));
        assert!(matches!(ParticipantId::new("Bank"), Err(IdentifierError::BadCharacter { .. })));
        assert!(matches!(ParticipantId::new("-bank"), Err(IdentifierError::BadCharacter { .. })));
        assert!(matches!(ParticipantId::new("a".repeat(65)), Err(IdentifierError::BadLength { .. })));
    }

    #[test]
    fn idempotency_keys_and_jurisdictions() {
        assert!(IdempotencyKey::new("order-2026-11-23/0001").is_ok());
        assert!(IdempotencyKey::new("with space").is_err());
        assert!(IdempotencyKey::new("é").is_err());
        assert!(Jurisdiction::new("HK").is_ok());
        assert!(Jurisdiction::new("H").is_err());
        assert!(Jurisdiction::new("hk").is_err());
        assert!(Jurisdiction::new("HKG").is_err());
    }
}
