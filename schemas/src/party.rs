//! The parties behind a payment — originator and beneficiary — as compliance needs them: a name
//! to screen against sanctions lists, and the identifying data the travel rule asks for.
//!
//! Validation here is about form only (lengths, no control characters, a real calendar date, a
//! two-letter country); which fields a payment must carry is decided by the jurisdictions' hooks.

use crate::error::FieldError;
use crate::identifier::Jurisdiction;
use crate::wire::v1 as wire;

/// A natural or legal person behind an account. Empty wire fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Party {
    pub name: Option<String>,
    pub account: Option<String>,
    pub address: Option<String>,
    pub national_id: Option<String>,
    /// `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    pub place_of_birth: Option<String>,
    pub country: Option<Jurisdiction>,
}

impl Party {
    /// The longest text field accepted, in characters (as ISO 20022 names allow).
    pub const TEXT_CHARS_MAX: usize = 140;
}

fn text(field: &str, value: String) -> Result<Option<String>, FieldError> {
    if value.is_empty() {
        return Ok(None);
    }
    let chars = value.chars().count();
    if chars > Party::TEXT_CHARS_MAX {
        return Err(FieldError::new(
            field,
            format!("has {chars} characters; at most {} allowed", Party::TEXT_CHARS_MAX),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "contains control characters"));
    }
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "is only spaces"));
    }
    Ok(Some(value))
}

/// `YYYY-MM-DD` naming a real day of the Gregorian calendar.
fn date(field: &str, value: String) -> Result<Option<String>, FieldError> {
    if value.is_empty() {
        return Ok(None);
    }
    let invalid = || FieldError::new(field, format!("`{}` is not a date YYYY-MM-DD", value.escape_debug()));
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u32, FieldError> {
        let part = &value[range];
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        part.parse().map_err(|_| invalid())
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(invalid()),
    };
    if year < 1800 || day == 0 || day > days_in_month {
        return Err(invalid());
    }
    Ok(Some(value))
}

impl TryFrom<wire::Party> for Party {
    type Error = FieldError;
    fn try_from(party: wire::Party) -> Result<Self, Self::Error> {
        let country = match party.country.as_str() {
            "" => None,
            code => Some(Jurisdiction::new(code).map_err(|error| FieldError::new("country", error))?),
        };
        Ok(Self {
            name: text("name", party.name)?,
            account: text("account", party.account)?,
            address: text("address", party.address)?,
            national_id: text("national_id", party.national_id)?,
            date_of_birth: date("date_of_birth", party.date_of_birth)?,
            place_of_birth: text("place_of_birth", party.place_of_birth)?,
            country,
        })
    }
}

impl From<&Party> for wire::Party {
    fn from(party: &Party) -> Self {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        wire::Party {
            name: text(&party.name),
            account: text(&party.account),
            address: text(&party.address),
            national_id: text(&party.national_id),
            date_of_birth: text(&party.date_of_birth),
            place_of_birth: text(&party.place_of_birth),
            country: party.country.as_ref().map(ToString::to_string).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(edit: impl FnOnce(&mut wire::Party), expected: Result<(), (&str, &str)>) {
        let mut party = wire::Party {
            name: "Wei Zhang".into(),
            account: "CN-0001".into(),
            address: "1 Bund Road, Shanghai".into(),
            national_id: "310101199001011234".into(),
            date_of_birth: "1990-01-01".into(),
            place_of_birth: "Shanghai".into(),
            country: "CN".into(),
        };
        edit(&mut party);
        match (Party::try_from(party), expected) {
            (Ok(_), Ok(())) => {}
            (Err(error), Err((field, words))) => {
                assert_eq!(error.field, field, "{error}");
                assert!(error.to_string().contains(words), "`{error}` lacks `{words}`");
            }
            (result, expected) => panic!("got {result:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn parties_are_checked_field_by_field() {
        check(|_| {}, Ok(()));
        check(|p| *p = wire::Party::default(), Ok(()));
        check(|p| p.name = "x".repeat(141), Err(("name", "at most 140")));
        check(|p| p.name = "a\nb".into(), Err(("name", "control")));
        check(|p| p.name = "   ".into(), Err(("name", "only spaces")));
        check(|p| p.date_of_birth = "2024-02-29".into(), Ok(()));
        check(|p| p.date_of_birth = "2023-02-29".into(), Err(("date_of_birth", "not a date")));
        check(|p| p.date_of_birth = "1990-13-01".into(), Err(("date_of_birth", "not a date")));
        check(|p| p.date_of_birth = "01/01/1990".into(), Err(("date_of_birth", "not a date")));
        check(|p| p.country = "CHN".into(), Err(("country", "2 to 2 characters")));
        check(|p| p.country = "cn".into(), Err(("country", "ISO 3166-1 alpha-2")));
    }

    #[test]
    fn a_party_survives_the_wire() {
        let wire = wire::Party { name: "Aisha Rahman".into(), country: "AE".into(), ..wire::Party::default() };
        let party = Party::try_from(wire.clone()).unwrap();
        assert_eq!(party.account, None);
        assert_eq!(wire::Party::from(&party), wire);
    }
}
