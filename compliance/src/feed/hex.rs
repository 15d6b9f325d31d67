//! Lower-case hexadecimal, the only text form the feed uses for bytes (hashes, key ids, public
//! keys, signatures).
//!
//! Decoding is strict on purpose: exactly the expected length, `0-9a-f` only. Upper-case digits are
//! refused, so every value has one spelling and two exports of the same feed compare equal byte for
//! byte. This module does not know what the bytes mean.

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    #[error("has {length_chars} characters; {expected_chars} lower-case hex digits expected")]
    BadLength { length_chars: usize, expected_chars: usize },
    #[error("has `{character}` at position {position}; only lower-case hex digits 0-9 a-f are allowed")]
    BadDigit { character: char, position: usize },
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn digit_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Exactly `2 * N` lower-case hex digits.
pub(crate) fn decode<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N {
        return Err(HexError::BadLength { length_chars: text.chars().count(), expected_chars: 2 * N });
    }
    let mut bytes = [0u8; N];
    for (index, pair) in digits.chunks_exact(2).enumerate() {
        let value = |offset: usize| {
            digit_value(pair[offset]).ok_or_else(|| {
                let position = 2 * index + offset;
                // The text is ASCII up to here, so the byte position is the character position.
                let character = text[position..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                HexError::BadDigit { character, position }
            })
        };
        bytes[index] = (value(0)? << 4) | value(1)?;
    }
    Ok(bytes)
}

/// Serde as a lower-case hex string, for the fixed-size byte newtypes of the feed.
macro_rules! hex_newtype_serde {
    ($name:ident, $length:expr) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&crate::feed::hex::encode(&self.0))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                crate::feed::hex::decode::<$length>(&text).map(Self).map_err(serde::de::Error::custom)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&crate::feed::hex::encode(&self.0))
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::feed::hex::HexError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                crate::feed::hex::decode::<$length>(text).map(Self)
            }
        }
    };
}

pub(crate) use hex_newtype_serde;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_spellings() {
        assert_eq!(encode(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(decode::<4>("000fa5ff"), Ok([0x00, 0x0f, 0xa5, 0xff]));
        assert_eq!(decode::<2>("00FF"), Err(HexError::BadDigit { character: 'F', position: 2 }));
        assert_eq!(decode::<2>("00f"), Err(HexError::BadLength { length_chars: 3, expected_chars: 4 }));
        assert_eq!(decode::<2>("0 ff"), Err(HexError::BadDigit { character: ' ', position: 1 }));
        assert_eq!(decode::<2>("éé"), Err(HexError::BadDigit { character: 'é', position: 0 }));
        assert_eq!(decode::<2>("ééé"), Err(HexError::BadLength { length_chars: 3, expected_chars: 4 }));
        assert_eq!(decode::<2>("0éa"), Err(HexError::BadDigit { character: 'é', position: 1 }));
    }
}
