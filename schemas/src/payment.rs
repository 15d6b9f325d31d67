//! A payment instruction as an integrator sends it, validated; payment ids and statuses.
//!
//! Validation here is what can be checked from the message alone (well-formed ids, addresses and
//! amounts). Whether the ledgers exist, the currencies match them and the participant owns the
//! payer account is the router's business: it knows the network.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::address::Address;
use crate::currency::Currency;
use crate::error::FieldError;
use crate::identifier::{IdempotencyKey, ParticipantId};
use crate::money::Money;
use crate::party::Party;
use crate::wire::v1 as wire;

/// An id that is a UUID v7, so ids sort by creation time and page naturally.
macro_rules! time_ordered_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new id for the current time. (The router passes time in through its clock;
            /// uuid's v7 generator reads the system clock itself, which only affects ordering,
            /// never money.)
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                let uuid = uuid::Uuid::try_parse(text).map_err(|_| "is not a UUID".to_owned())?;
                if uuid.get_version_num() != 7 {
                    return Err(concat!("is not a Corridor ", $what, " id (UUID v7)").to_owned());
                }
                Ok(Self(uuid))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

time_ordered_id!(
    /// A payment's id.
    PaymentId,
    "payment"
);
time_ordered_id!(
    /// A locked FX quote's id.
    QuoteId,
    "quote"
);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixedSide {
    /// The payer sends exactly the amount; the payee receives its conversion.
    Send,
    /// The payee receives exactly the amount; the payer sends what it costs.
    Receive,
}

impl From<FixedSide> for wire::FixedSide {
    fn from(side: FixedSide) -> Self {
        match side {
            FixedSide::Send => wire::FixedSide::Send,
            FixedSide::Receive => wire::FixedSide::Receive,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    /// Waiting for a compliance officer's review; nothing is held.
    Held,
    Settled,
    Rejected,
    Failed,
}

impl PaymentStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, PaymentStatus::Pending | PaymentStatus::Held)
    }

    /// The status's name, as the API's enum spells it without its prefix: `SETTLED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Held => "HELD",
            PaymentStatus::Settled => "SETTLED",
            PaymentStatus::Rejected => "REJECTED",
            PaymentStatus::Failed => "FAILED",
        }
    }
}

impl From<PaymentStatus> for wire::PaymentStatus {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Pending => wire::PaymentStatus::Pending,
            PaymentStatus::Settled => wire::PaymentStatus::Settled,
            PaymentStatus::Rejected => wire::PaymentStatus::Rejected,
            PaymentStatus::Failed => wire::PaymentStatus::Failed,
            PaymentStatus::Held => wire::PaymentStatus::Held,
        }
    }
}

/// A payment instruction whose every field is well formed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentInstruction {
    pub participant: ParticipantId,
    pub idempotency_key: IdempotencyKey,
    pub payer: Address,
    pub payee: Address,
    pub amount: Money,
    pub fixed_side: FixedSide,
    pub reference: String,
    /// A locked quote to pay with.
    pub quote: Option<QuoteId>,
    /// Who pays and who is paid, for compliance.
    pub originator: Option<Party>,
    pub beneficiary: Option<Party>,
    /// When the participant signed it; set exactly when `signature` is.
    pub signed_at: Option<SystemTime>,
    /// The participant's detached Ed25519 signature over the canonical encoding of the fields
    /// above and `signed_at` ([`crate::signature`] makes and checks it).
    pub signature: Option<[u8; 64]>,
}

/// A request for a locked quote: the priced part of a payment instruction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuoteRequest {
    pub participant: ParticipantId,
    pub payer: Address,
    pub payee: Address,
    pub amount: Money,
    pub fixed_side: FixedSide,
}

impl PaymentInstruction {
    pub const REFERENCE_CHARS_MAX: usize = 140;
    /// The latest `signed_at` accepted: 9999-12-31T23:59:59Z, so its milliseconds fit any encoding.
    pub const SIGNED_AT_SECONDS_MAX: i64 = 253_402_300_799;
}

/// A wire timestamp as a time at or after the Unix epoch, or why not.
fn signed_at_time(timestamp: prost_types::Timestamp) -> Result<SystemTime, FieldError> {
    let invalid = |reason: String| FieldError::new("signed_at", reason);
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|nanos| *nanos < 1_000_000_000)
        .ok_or_else(|| invalid(format!("has nanos {}; allowed are 0 to 999999999", timestamp.nanos)))?;
    let seconds = u64::try_from(timestamp.seconds)
        .map_err(|_| invalid(format!("is {} seconds before the Unix epoch", timestamp.seconds.unsigned_abs())))?;
    if timestamp.seconds > PaymentInstruction::SIGNED_AT_SECONDS_MAX {
        return Err(invalid(format!("is {} seconds after the Unix epoch, past the year 9999", timestamp.seconds)));
    }
    Ok(SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos))
}

/// Non-empty bytes as an Ed25519 signature.
fn signature_bytes(bytes: &[u8]) -> Result<Option<[u8; 64]>, FieldError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    <[u8; 64]>::try_from(bytes)
        .map(Some)
        .map_err(|_| FieldError::new("signature", format!("has {} bytes; an Ed25519 signature has 64", bytes.len())))
}

impl TryFrom<wire::Money> for Money {
    type Error = FieldError;
    fn try_from(money: wire::Money) -> Result<Self, Self::Error> {
        let currency = Currency::from_code(&money.currency).map_err(|error| FieldError::new("currency", error))?;
        Money::parse(&money.amount, currency).map_err(|error| FieldError::new("amount", error))
    }
}

impl From<Money> for wire::Money {
    fn from(money: Money) -> Self {
        wire::Money { currency: money.currency().code().to_owned(), amount: money.amount().to_string() }
    }
}

/// The fields an instruction and a quote request share, validated.
fn parties(
    participant_id: String,
    payer: &str,
    payee: &str,
    amount: Option<wire::Money>,
    fixed_side: i32,
) -> Result<QuoteRequest, FieldError> {
    let participant = ParticipantId::new(participant_id).map_err(|error| FieldError::new("participant_id", error))?;
    let payer = payer.parse::<Address>().map_err(|error| FieldError::new("payer", error))?;
    let payee = payee.parse::<Address>().map_err(|error| FieldError::new("payee", error))?;
    if payer == payee {
        return Err(FieldError::new("payee", "is the same account as the payer"));
    }
    let amount: Money = amount
        .ok_or_else(|| FieldError::new("amount", "is required"))?
        .try_into()
        .map_err(|error: FieldError| error.within("amount"))?;
    let fixed_side = match wire::FixedSide::try_from(fixed_side) {
        Ok(wire::FixedSide::Unspecified | wire::FixedSide::Send) => FixedSide::Send,
        Ok(wire::FixedSide::Receive) => FixedSide::Receive,
        Err(_) => return Err(FieldError::new("fixed_side", format!("{fixed_side} is not a FixedSide"))),
    };
    Ok(QuoteRequest { participant, payer, payee, amount, fixed_side })
}

impl TryFrom<wire::QuoteFxRequest> for QuoteRequest {
    type Error = FieldError;
    fn try_from(request: wire::QuoteFxRequest) -> Result<Self, Self::Error> {
        parties(request.participant_id, &request.payer, &request.payee, request.amount, request.fixed_side)
    }
}

impl TryFrom<wire::PaymentInstruction> for PaymentInstruction {
    type Error = FieldError;
    fn try_from(instruction: wire::PaymentInstruction) -> Result<Self, Self::Error> {
        let QuoteRequest { participant, payer, payee, amount, fixed_side } = parties(
            instruction.participant_id,
            &instruction.payer,
            &instruction.payee,
            instruction.amount,
            instruction.fixed_side,
        )?;
        let idempotency_key = IdempotencyKey::new(instruction.idempotency_key)
            .map_err(|error| FieldError::new("idempotency_key", error))?;
        let reference_chars = instruction.reference.chars().count();
        if reference_chars > PaymentInstruction::REFERENCE_CHARS_MAX {
            return Err(FieldError::new(
                "reference",
                format!(
                    "has {reference_chars} characters; at most {} allowed",
                    PaymentInstruction::REFERENCE_CHARS_MAX
                ),
            ));
        }
        if instruction.reference.chars().any(char::is_control) {
            return Err(FieldError::new("reference", "contains control characters"));
        }
        let quote = match instruction.quote_id.as_str() {
            "" => None,
            id => Some(id.parse::<QuoteId>().map_err(|reason| FieldError::new("quote_id", reason))?),
        };
        let party = |party: Option<wire::Party>, field: &str| -> Result<Option<Party>, FieldError> {
            party.map(Party::try_from).transpose().map_err(|error| error.within(field))
        };
        let originator = party(instruction.originator, "originator")?;
        let beneficiary = party(instruction.beneficiary, "beneficiary")?;
        let signed_at = instruction.signed_at.map(signed_at_time).transpose()?;
        let signature = signature_bytes(&instruction.signature)?;
        match (signed_at, signature) {
            (Some(_), None) => return Err(FieldError::new("signature", "is required when signed_at is set")),
            (None, Some(_)) => return Err(FieldError::new("signed_at", "is required with a signature")),
            _ => {}
        }
        Ok(Self {
            participant,
            idempotency_key,
            payer,
            payee,
            amount,
            fixed_side,
            reference: instruction.reference,
            quote,
            originator,
            beneficiary,
            signed_at,
            signature,
        })
    }
}

impl PaymentInstruction {
    /// The priced part of the instruction, as a quote request would carry it.
    pub fn quote_request(&self) -> QuoteRequest {
        QuoteRequest {
            participant: self.participant.clone(),
            payer: self.payer.clone(),
            payee: self.payee.clone(),
            amount: self.amount,
            fixed_side: self.fixed_side,
        }
    }
}

impl From<&PaymentInstruction> for wire::PaymentInstruction {
    /// The canonical wire form: amounts normalised to the currency's minor units, so two
    /// instructions that mean the same encode the same (the idempotency fingerprint relies on it).
    /// `signed_at` and `signature` are carried as they are: a fingerprint that must not change when
    /// the same instruction is signed again clears them first.
    fn from(instruction: &PaymentInstruction) -> Self {
        wire::PaymentInstruction {
            participant_id: instruction.participant.to_string(),
            idempotency_key: instruction.idempotency_key.to_string(),
            payer: instruction.payer.to_string(),
            payee: instruction.payee.to_string(),
            amount: Some(instruction.amount.into()),
            fixed_side: wire::FixedSide::from(instruction.fixed_side) as i32,
            reference: instruction.reference.clone(),
            quote_id: instruction.quote.map(|quote| quote.to_string()).unwrap_or_default(),
            originator: instruction.originator.as_ref().map(wire::Party::from),
            beneficiary: instruction.beneficiary.as_ref().map(wire::Party::from),
            signed_at: instruction.signed_at.map(prost_types::Timestamp::from),
            signature: instruction.signature.map(|signature| signature.to_vec()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> wire::PaymentInstruction {
        wire::PaymentInstruction {
            participant_id: "bank-hk".into(),
            idempotency_key: "k-1".into(),
            payer: "e-hkd/bank-hk.alice".into(),
            payee: "e-cny/bank-cn.wei".into(),
            amount: Some(wire::Money { currency: "HKD".into(), amount: "100.25".into() }),
            fixed_side: wire::FixedSide::Send as i32,
            reference: "invoice 7".into(),
            quote_id: String::new(),
            originator: None,
            beneficiary: None,
            signed_at: None,
            signature: Vec::new(),
        }
    }

    /// Gives the instruction a signing time and a signature (of the right length only).
    fn sign(instruction: &mut wire::PaymentInstruction) {
        instruction.signed_at = Some(prost_types::Timestamp { seconds: 1_767_225_600, nanos: 0 });
        instruction.signature = vec![7; 64];
    }

    /// `edit` after `sign`.
    fn signed(edit: impl FnOnce(&mut wire::PaymentInstruction)) -> impl FnOnce(&mut wire::PaymentInstruction) {
        move |instruction| {
            sign(instruction);
            edit(instruction);
        }
    }

    fn check(edit: impl FnOnce(&mut wire::PaymentInstruction), expected: Result<(), (&str, &str)>) {
        let mut instruction = valid();
        edit(&mut instruction);
        match (PaymentInstruction::try_from(instruction), expected) {
            (Ok(_), Ok(())) => {}
            (Err(error), Err((field, fragment))) => {
                assert_eq!(error.field, field, "{error}");
                assert!(error.reason.contains(fragment), "`{error}` lacks `{fragment}`");
            }
            (got, want) => panic!("got {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        check(|_| {}, Ok(()));
        check(|i| i.fixed_side = 0, Ok(()));
        check(|i| i.participant_id.clear(), Err(("participant_id", "must not be empty")));
        check(|i| i.idempotency_key = "a b".into(), Err(("idempotency_key", "printable ASCII")));
        check(|i| i.payer = "alice".into(), Err(("payer", "<ledger-id>/<account>")));
        check(|i| i.payee = "e-cny/".into(), Err(("payee", "must not be empty")));
        check(|i| i.payee = i.payer.clone(), Err(("payee", "same account")));
        check(|i| i.amount = None, Err(("amount", "is required")));
        check(
            |i| i.amount = Some(wire::Money { currency: "HKX".into(), amount: "1".into() }),
            Err(("amount.currency", "unknown or withdrawn")),
        );
        check(
            |i| i.amount = Some(wire::Money { currency: "HKD".into(), amount: "1.001".into() }),
            Err(("amount.amount", "HKD allows 2")),
        );
        check(
            |i| i.amount = Some(wire::Money { currency: "HKD".into(), amount: "-1".into() }),
            Err(("amount.amount", "plain decimal")),
        );
        check(
            |i| i.amount = Some(wire::Money { currency: "HKD".into(), amount: "0".into() }),
            Err(("amount.amount", "greater than zero")),
        );
        check(|i| i.fixed_side = 9, Err(("fixed_side", "not a FixedSide")));
        check(|i| i.reference = "x".repeat(141), Err(("reference", "at most 140")));
        check(|i| i.reference = "a\u{0}b".into(), Err(("reference", "control")));
        check(|i| i.quote_id = "quote-1".into(), Err(("quote_id", "not a UUID")));
        check(|i| i.quote_id = "67e55044-10b1-426f-9247-bb680e5fe0c8".into(), Err(("quote_id", "UUID v7")));
        check(|i| i.quote_id = QuoteId::generate().to_string(), Ok(()));
        check(
            |i| i.originator = Some(wire::Party { date_of_birth: "1990-02-30".into(), ..wire::Party::default() }),
            Err(("originator.date_of_birth", "not a date")),
        );
        check(sign, Ok(()));
        check(signed(|i| i.signature = vec![7; 63]), Err(("signature", "has 63 bytes")));
        check(signed(|i| i.signature = vec![7; 65]), Err(("signature", "has 65 bytes")));
        check(signed(|i| i.signature.clear()), Err(("signature", "is required")));
        check(signed(|i| i.signed_at = None), Err(("signed_at", "is required")));
        let at = |seconds, nanos| Some(prost_types::Timestamp { seconds, nanos });
        check(signed(|i| i.signed_at = at(-1, 0)), Err(("signed_at", "before the Unix epoch")));
        check(signed(|i| i.signed_at = at(0, -1)), Err(("signed_at", "nanos -1")));
        check(signed(|i| i.signed_at = at(0, 1_000_000_000)), Err(("signed_at", "nanos")));
        check(signed(|i| i.signed_at = at(0, 999_999_999)), Ok(()));
        let last = PaymentInstruction::SIGNED_AT_SECONDS_MAX;
        check(signed(|i| i.signed_at = at(last, 0)), Ok(()));
        check(signed(|i| i.signed_at = at(last + 1, 0)), Err(("signed_at", "year 9999")));
    }

    #[test]
    fn an_instruction_survives_the_wire_with_its_signature() {
        let mut wire = valid();
        sign(&mut wire);
        wire.signed_at = Some(prost_types::Timestamp { seconds: 1_767_225_600, nanos: 123_456_789 });
        let instruction = PaymentInstruction::try_from(wire.clone()).unwrap();
        assert_eq!(instruction.signature, Some([7; 64]));
        assert_eq!(instruction.signed_at, Some(SystemTime::UNIX_EPOCH + Duration::new(1_767_225_600, 123_456_789)));
        assert_eq!(wire::PaymentInstruction::from(&instruction), wire);
        let unsigned = PaymentInstruction::try_from(valid()).unwrap();
        assert_eq!((unsigned.signed_at, unsigned.signature), (None, None));
        assert_eq!(wire::PaymentInstruction::from(&unsigned), valid());
    }

    #[test]
    fn payment_ids_are_v7_and_ordered() {
        let first = PaymentId::generate();
        let second = PaymentId::generate();
        assert!(first < second);
        assert_eq!(first.to_string().parse::<PaymentId>(), Ok(first));
        assert!("not-a-uuid".parse::<PaymentId>().is_err());
        assert!("67e55044-10b1-426f-9247-bb680e5fe0c8".parse::<PaymentId>().is_err()); // v4
    }
}
