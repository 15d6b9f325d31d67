//! Signed payment instructions: the canonical encoding (v1) a participant signs with Ed25519, and
//! the check the router makes against the public key the participant registered.
//!
//! The signature is over [`canonical_bytes`], built from the validated domain instruction, not
//! from the protobuf bytes: two wire messages that mean the same (`10.5` and `10.50` HKD, an
//! upper-case quote id) sign the same, and an encoder's choices (field order, default values,
//! unknown fields) can neither break nor forge a signature. Every field the router acts on is
//! covered, and so is `signed_at`. `schemas/SIGNATURES.md` specifies the encoding byte by byte,
//! with a test vector that a test below checks.
//!
//! Replay: a signature binds the idempotency key and the time it was made. Within the window a
//! replayed instruction carries the same key, so the idempotency store answers it with the first
//! outcome and it can never cause a second payment; an instruction with a new key needs a new
//! signature; after the window it is refused here.
//!
//! This module does not know which participant has which key, how wide the window is, or what the
//! clock says: the router passes all three in. It never sees a private key except in [`sign`],
//! which is for clients, tests and the demo.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::party::Party;
use crate::payment::{FixedSide, PaymentInstruction};

/// The first bytes of every v1 encoding: a signature made for anything else (another message
/// type, another version of this encoding) can never verify as an instruction's.
pub const DOMAIN_TAG_V1: &[u8] = b"corridor-instruction/v1\n";

/// Why an instruction's signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the instruction is not signed: it needs both signed_at and signature")]
    Missing,
    #[error("the signature cannot be checked: {reason}")]
    Malformed { reason: String },
    #[error("the signature does not verify with the participant's registered key")]
    Invalid,
    #[error(
        "signed_at is {} ms after the Unix epoch and the router's clock reads {}; it must be within {} ms of it",
        unix_ms_for_message(*signed_at),
        unix_ms_for_message(*now),
        window.as_millis()
    )]
    OutsideWindow { signed_at: SystemTime, now: SystemTime, window: Duration },
}

/// A participant's registered Ed25519 public key; written as 64 hex digits in configuration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ParticipantKey([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not an Ed25519 public key: 64 hex digits expected")]
pub struct ParticipantKeyError {
    value: String,
}

impl ParticipantKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The public half of a key pair.
    pub fn of(key_pair: &Ed25519KeyPair) -> Self {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(key_pair.public_key().as_ref());
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// [`verify`] with this key.
    pub fn verify(
        &self,
        instruction: &PaymentInstruction,
        now: SystemTime,
        window: Duration,
    ) -> Result<(), SignatureError> {
        verify(instruction, &self.0, now, window)
    }
}

impl FromStr for ParticipantKey {
    type Err = ParticipantKeyError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || ParticipantKeyError { value: text.chars().take(80).collect() };
        let bytes = from_hex(text).ok_or_else(error)?;
        <[u8; 32]>::try_from(bytes.as_slice()).map(Self).map_err(|_| error())
    }
}

impl TryFrom<String> for ParticipantKey {
    type Error = ParticipantKeyError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<ParticipantKey> for String {
    fn from(key: ParticipantKey) -> Self {
        key.to_string()
    }
}

impl fmt::Display for ParticipantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ParticipantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ParticipantKey({self})")
    }
}

/// The bytes a participant signs: [`DOMAIN_TAG_V1`], then the instruction's fields in a fixed
/// order, then `signed_at_ms` (milliseconds since the Unix epoch). Text is a u32 big-endian
/// byte length and the UTF-8 bytes; integers are big-endian and fixed width; an optional party is
/// a flag byte (0 absent, 1 present) and, when present, its seven fields as text (empty when
/// absent). The instruction's own `signed_at` and `signature` are not read: the caller passes the
/// time being signed.
pub fn canonical_bytes(instruction: &PaymentInstruction, signed_at_ms: u64) -> Vec<u8> {
    let mut encoder = Encoder(Vec::with_capacity(256));
    encoder.0.extend_from_slice(DOMAIN_TAG_V1);
    encoder.text(instruction.participant.as_str());
    encoder.text(instruction.idempotency_key.as_str());
    encoder.text(&instruction.payer.to_string());
    encoder.text(&instruction.payee.to_string());
    encoder.text(instruction.amount.currency().code());
    encoder.0.extend_from_slice(&instruction.amount.minor_units().to_be_bytes());
    // The wire enum's numbers; FIXED_SIDE_UNSPECIFIED means SEND and signs as SEND.
    encoder.0.push(match instruction.fixed_side {
        FixedSide::Send => 1,
        FixedSide::Receive => 2,
    });
    encoder.text(&instruction.reference);
    encoder.text(&instruction.quote.map(|quote| quote.to_string()).unwrap_or_default());
    encoder.party(instruction.originator.as_ref());
    encoder.party(instruction.beneficiary.as_ref());
    encoder.0.extend_from_slice(&signed_at_ms.to_be_bytes());
    encoder.0
}

/// The signature a participant attaches, made with its private key. Set the instruction's
/// `signed_at` to the same time and `signature` to the result. Fails only for a time that has no
/// encoding (before the Unix epoch).
pub fn sign(
    instruction: &PaymentInstruction,
    signed_at: SystemTime,
    key_pair: &Ed25519KeyPair,
) -> Result<[u8; 64], SignatureError> {
    let bytes = canonical_bytes(instruction, unix_ms(signed_at)?);
    let mut signature = [0; 64];
    signature.copy_from_slice(key_pair.sign(&bytes).as_ref());
    Ok(signature)
}

/// Accepts an instruction whose signature verifies with `public_key` over its canonical encoding
/// and whose `signed_at` is at most `window` before or after `now` (both edges included, at
/// millisecond precision). The signature is checked first, so `OutsideWindow` always means an
/// authentic instruction from a participant whose clock (or queue) is off.
pub fn verify(
    instruction: &PaymentInstruction,
    public_key: &[u8; 32],
    now: SystemTime,
    window: Duration,
) -> Result<(), SignatureError> {
    let (Some(signed_at), Some(signature)) = (instruction.signed_at, instruction.signature) else {
        return Err(SignatureError::Missing);
    };
    let signed_at_ms = unix_ms(signed_at)?;
    let bytes = canonical_bytes(instruction, signed_at_ms);
    UnparsedPublicKey::new(&ED25519, public_key).verify(&bytes, &signature).map_err(|_| SignatureError::Invalid)?;
    // Compare what was signed: the time truncated to the millisecond.
    let signed_at = SystemTime::UNIX_EPOCH + Duration::from_millis(signed_at_ms);
    let skew = match now.duration_since(signed_at) {
        Ok(age) => age,
        Err(ahead) => ahead.duration(),
    };
    if skew > window {
        return Err(SignatureError::OutsideWindow { signed_at, now, window });
    }
    Ok(())
}

/// Milliseconds since the Unix epoch, truncated; a time before the epoch has none.
pub fn unix_ms(time: SystemTime) -> Result<u64, SignatureError> {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| SignatureError::Malformed { reason: "signed_at is before the Unix epoch".to_owned() })?;
    u64::try_from(since_epoch.as_millis())
        .map_err(|_| SignatureError::Malformed { reason: "signed_at is too far in the future".to_owned() })
}

fn unix_ms_for_message(time: SystemTime) -> u128 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|since| since.as_millis()).unwrap_or(0)
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn text(&mut self, text: &str) {
        // Validation bounds every field to a few hundred bytes and gRPC messages to a few MiB, so
        // the saturation never happens; it only keeps this function total.
        let length = u32::try_from(text.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&length.to_be_bytes());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn party(&mut self, party: Option<&Party>) {
        let Some(party) = party else {
            self.0.push(0);
            return;
        };
        self.0.push(1);
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        self.text(&text(&party.name));
        self.text(&text(&party.account));
        self.text(&text(&party.address));
        self.text(&text(&party.national_id));
        self.text(&text(&party.date_of_birth));
        self.text(&text(&party.place_of_birth));
        self.text(party.country.as_ref().map(|country| country.as_str()).unwrap_or_default());
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Hex digits (either case, no separators) as bytes.
fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |byte: u8| char::from(byte).to_digit(16).and_then(|value| u8::try_from(value).ok());
    text.as_bytes().chunks(2).map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::currency::Currency;
    use crate::identifier::{IdempotencyKey, Jurisdiction, ParticipantId};
    use crate::money::Money;
    use crate::payment::QuoteId;

    /// RFC 8032 §7.1 TEST 1's secret key, so the public key below can be checked against the RFC.
    const VECTOR_SEED_HEX: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const VECTOR_PUBLIC_KEY_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    /// 2026-01-01T00:00:00.000Z.
    const VECTOR_SIGNED_AT_MS: u64 = 1_767_225_600_000;
    const VECTOR_BYTES_HEX: &str = concat!(
        "636f727269646f722d696e737472756374696f6e2f76310a0000000762616e6b",
        "2d686b0000000d696e762d323032362d3030303100000013652d686b642f6261",
        "6e6b2d686b2e616c69636500000011652d636e792f62616e6b2d636e2e776569",
        "00000003484b4400000000000027420100000009696e766f6963652037000000",
        "2430313934306631632d376132622d376333642d386534662d61316232633364",
        "3465356636010000000c4368616e20546169204d616e00000000000000000000",
        "0000000000000000000000000002484b000000019b76daa800",
    );
    const VECTOR_SIGNATURE_HEX: &str = concat!(
        "e439c9ed786ec86ed3945723c0979463bc70ec64210ad22548fa7ca7357880dc",
        "36abdc27147a8a62cfb35760c93ca08ab3ab111ddb9f9476e12d38ddef57e006",
    );

    fn key_pair_from_seed(seed_hex: &str) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&from_hex(seed_hex).unwrap()).unwrap()
    }

    fn hkd(amount: &str) -> Money {
        Money::parse(amount, Currency::from_code("HKD").unwrap()).unwrap()
    }

    /// The instruction of the documented test vector.
    fn vector_instruction() -> PaymentInstruction {
        PaymentInstruction {
            participant: ParticipantId::new("bank-hk").unwrap(),
            idempotency_key: IdempotencyKey::new("inv-2026-0001").unwrap(),
            payer: "e-hkd/bank-hk.alice".parse().unwrap(),
            payee: "e-cny/bank-cn.wei".parse().unwrap(),
            amount: hkd("100.5"),
            fixed_side: FixedSide::Send,
            reference: "invoice 7".to_owned(),
            quote: Some("01940f1c-7a2b-7c3d-8e4f-a1b2c3d4e5f6".parse().unwrap()),
            originator: Some(Party {
                name: Some("Chan Tai Man".to_owned()),
                country: Some(Jurisdiction::new("HK").unwrap()),
                ..Party::default()
            }),
            beneficiary: None,
            signed_at: None,
            signature: None,
        }
    }

    fn at_ms(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn signed(
        mut instruction: PaymentInstruction,
        signed_at: SystemTime,
        key_pair: &Ed25519KeyPair,
    ) -> PaymentInstruction {
        instruction.signed_at = Some(signed_at);
        instruction.signature = Some(sign(&instruction, signed_at, key_pair).unwrap());
        instruction
    }

    const WINDOW: Duration = Duration::from_secs(300);

    #[test]
    fn the_documented_test_vector_holds_byte_for_byte() {
        let key_pair = key_pair_from_seed(VECTOR_SEED_HEX);
        assert_eq!(ParticipantKey::of(&key_pair).to_string(), VECTOR_PUBLIC_KEY_HEX);
        let instruction = vector_instruction();
        assert_eq!(hex(&canonical_bytes(&instruction, VECTOR_SIGNED_AT_MS)), VECTOR_BYTES_HEX);
        let signature = sign(&instruction, at_ms(VECTOR_SIGNED_AT_MS), &key_pair).unwrap();
        assert_eq!(hex(&signature), VECTOR_SIGNATURE_HEX);
        let signed = PaymentInstruction {
            signed_at: Some(at_ms(VECTOR_SIGNED_AT_MS)),
            signature: Some(signature),
            ..instruction
        };
        let public_key: ParticipantKey = VECTOR_PUBLIC_KEY_HEX.parse().unwrap();
        assert_eq!(public_key.verify(&signed, at_ms(VECTOR_SIGNED_AT_MS), WINDOW), Ok(()));

        // The document states the same values (hex may be wrapped across lines there).
        let document: String =
            include_str!("../SIGNATURES.md").chars().filter(|character| !character.is_whitespace()).collect();
        for (what, value) in [
            ("seed", VECTOR_SEED_HEX),
            ("public key", VECTOR_PUBLIC_KEY_HEX),
            ("canonical bytes", VECTOR_BYTES_HEX),
            ("signature", VECTOR_SIGNATURE_HEX),
            ("signed_at", "1767225600000"),
        ] {
            assert!(document.contains(value), "SIGNATURES.md lacks the test vector's {what} {value}");
        }
    }

    #[test]
    fn a_signed_instruction_verifies_with_its_key_only() {
        let key_pair = key_pair_from_seed(VECTOR_SEED_HEX);
        let now = at_ms(VECTOR_SIGNED_AT_MS);
        let instruction = signed(vector_instruction(), now, &key_pair);
        assert_eq!(verify(&instruction, ParticipantKey::of(&key_pair).as_bytes(), now, WINDOW), Ok(()));
        let other = key_pair_from_seed("0000000000000000000000000000000000000000000000000000000000000001");
        assert_eq!(
            verify(&instruction, ParticipantKey::of(&other).as_bytes(), now, WINDOW),
            Err(SignatureError::Invalid)
        );
        let mut flipped = instruction.clone();
        if let Some(signature) = flipped.signature.as_mut() {
            signature[0] ^= 1;
        }
        assert_eq!(
            verify(&flipped, ParticipantKey::of(&key_pair).as_bytes(), now, WINDOW),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn unsigned_and_half_signed_instructions_are_missing_a_signature() {
        let key_pair = key_pair_from_seed(VECTOR_SEED_HEX);
        let key = ParticipantKey::of(&key_pair);
        let now = at_ms(VECTOR_SIGNED_AT_MS);
        let instruction = signed(vector_instruction(), now, &key_pair);
        for edit in [
            |i: &mut PaymentInstruction| i.signature = None,
            |i: &mut PaymentInstruction| i.signed_at = None,
            |i: &mut PaymentInstruction| (i.signature, i.signed_at) = (None, None),
        ] {
            let mut unsigned = instruction.clone();
            edit(&mut unsigned);
            assert_eq!(key.verify(&unsigned, now, WINDOW), Err(SignatureError::Missing));
        }
        let before_epoch = SystemTime::UNIX_EPOCH - Duration::from_millis(1);
        assert!(matches!(sign(&instruction, before_epoch, &key_pair), Err(SignatureError::Malformed { .. })));
        let early = PaymentInstruction { signed_at: Some(before_epoch), ..instruction };
        assert!(matches!(key.verify(&early, now, WINDOW), Err(SignatureError::Malformed { .. })));
    }

    #[test]
    fn changing_any_single_field_invalidates_the_signature() {
        let key_pair = key_pair_from_seed(VECTOR_SEED_HEX);
        let key = ParticipantKey::of(&key_pair);
        let now = at_ms(VECTOR_SIGNED_AT_MS);
        let original = signed(vector_instruction(), now, &key_pair);
        let party = |edit: fn(&mut Party)| {
            move |i: &mut PaymentInstruction| {
                if let Some(party) = i.originator.as_mut() {
                    edit(party);
                }
            }
        };
        type Edit = Box<dyn Fn(&mut PaymentInstruction)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("participant", Box::new(|i| i.participant = ParticipantId::new("bank-hk2").unwrap())),
            ("idempotency_key", Box::new(|i| i.idempotency_key = IdempotencyKey::new("inv-2026-0002").unwrap())),
            ("payer", Box::new(|i| i.payer = "e-hkd/bank-hk.alicf".parse().unwrap())),
            ("payee", Box::new(|i| i.payee = "e-cny/bank-cn.wej".parse().unwrap())),
            ("amount", Box::new(|i| i.amount = hkd("100.51"))),
            ("currency", Box::new(|i| i.amount = Money::parse("100.5", Currency::from_code("CNY").unwrap()).unwrap())),
            ("fixed_side", Box::new(|i| i.fixed_side = FixedSide::Receive)),
            ("reference", Box::new(|i| i.reference = "invoice 8".to_owned())),
            ("quote (none)", Box::new(|i| i.quote = None)),
            ("quote (another)", Box::new(|i| i.quote = Some(QuoteId::generate()))),
            ("originator (none)", Box::new(|i| i.originator = None)),
            ("originator.name", Box::new(party(|p| p.name = Some("Chan Tai Mun".to_owned())))),
            ("originator.account", Box::new(party(|p| p.account = Some("HK-1".to_owned())))),
            ("originator.address", Box::new(party(|p| p.address = Some("1 Queen's Road".to_owned())))),
            ("originator.national_id", Box::new(party(|p| p.national_id = Some("A1234567".to_owned())))),
            ("originator.date_of_birth", Box::new(party(|p| p.date_of_birth = Some("1980-01-01".to_owned())))),
            ("originator.place_of_birth", Box::new(party(|p| p.place_of_birth = Some("Kowloon".to_owned())))),
            ("originator.country", Box::new(party(|p| p.country = Some(Jurisdiction::new("CN").unwrap())))),
            // Length prefixes keep text from moving between neighbouring fields.
            (
                "originator.name into account",
                Box::new(party(|p| (p.name, p.account) = (Some("Chan Tai".to_owned()), Some(" Man".to_owned())))),
            ),
            ("beneficiary (empty party)", Box::new(|i| i.beneficiary = Some(Party::default()))),
            (
                "originator as beneficiary",
                Box::new(|i| (i.originator, i.beneficiary) = (i.beneficiary.take(), i.originator.take())),
            ),
            ("signed_at (+1 ms)", Box::new(|i| i.signed_at = i.signed_at.map(|t| t + Duration::from_millis(1)))),
            ("signed_at (-1 ms)", Box::new(|i| i.signed_at = i.signed_at.map(|t| t - Duration::from_millis(1)))),
        ];
        let original_bytes = canonical_bytes(&original, VECTOR_SIGNED_AT_MS);
        for (field, edit) in edits {
            let mut changed = original.clone();
            edit(&mut changed);
            assert_ne!(changed, original, "{field}: the edit changed nothing");
            let changed_ms = unix_ms(changed.signed_at.unwrap()).unwrap();
            assert_ne!(canonical_bytes(&changed, changed_ms), original_bytes, "{field}");
            assert_eq!(key.verify(&changed, now, WINDOW), Err(SignatureError::Invalid), "{field}");
        }
    }

    #[test]
    fn equal_amounts_written_differently_sign_the_same() {
        let tenth = |amount: &str| PaymentInstruction { amount: hkd(amount), ..vector_instruction() };
        let bytes = canonical_bytes(&tenth("10.5"), VECTOR_SIGNED_AT_MS);
        assert_eq!(canonical_bytes(&tenth("10.50"), VECTOR_SIGNED_AT_MS), bytes);
        assert_eq!(canonical_bytes(&tenth("010.500"), VECTOR_SIGNED_AT_MS), bytes);
        assert_ne!(canonical_bytes(&tenth("10.05"), VECTOR_SIGNED_AT_MS), bytes);
        // An upper-case quote id parses to the same quote and signs the same.
        let quote = |text: &str| PaymentInstruction { quote: Some(text.parse().unwrap()), ..vector_instruction() };
        assert_eq!(
            canonical_bytes(&quote("01940F1C-7A2B-7C3D-8E4F-A1B2C3D4E5F6"), VECTOR_SIGNED_AT_MS),
            canonical_bytes(&quote("01940f1c-7a2b-7c3d-8e4f-a1b2c3d4e5f6"), VECTOR_SIGNED_AT_MS)
        );
    }

    #[test]
    fn the_window_includes_its_edges_on_both_sides() {
        let key_pair = key_pair_from_seed(VECTOR_SEED_HEX);
        let key = ParticipantKey::of(&key_pair);
        let signed_at = at_ms(VECTOR_SIGNED_AT_MS);
        let instruction = signed(vector_instruction(), signed_at, &key_pair);
        let millisecond = Duration::from_millis(1);
        let check = |now: SystemTime, accepted: bool| {
            let result = key.verify(&instruction, now, WINDOW);
            let expected =
                if accepted { Ok(()) } else { Err(SignatureError::OutsideWindow { signed_at, now, window: WINDOW }) };
            assert_eq!(result, expected, "now = {now:?}");
        };
        check(signed_at, true);
        check(signed_at + WINDOW, true);
        check(signed_at + WINDOW + millisecond, false);
        check(signed_at - WINDOW, true);
        check(signed_at - WINDOW - millisecond, false);
        check(signed_at + Duration::from_secs(86_400), false);

        // What is signed is the millisecond: a finer part of signed_at neither breaks the
        // signature nor widens the window.
        let fine = signed_at + Duration::from_micros(999);
        let finely_signed = signed(vector_instruction(), fine, &key_pair);
        assert_eq!(finely_signed.signature, instruction.signature);
        assert_eq!(key.verify(&finely_signed, signed_at + WINDOW, WINDOW), Ok(()));
        assert!(key.verify(&finely_signed, signed_at + WINDOW + Duration::from_micros(1), WINDOW).is_err());
    }

    #[test]
    fn participant_keys_are_64_hex_digits() {
        let key: ParticipantKey = VECTOR_PUBLIC_KEY_HEX.parse().unwrap();
        assert_eq!(key.to_string(), VECTOR_PUBLIC_KEY_HEX);
        assert_eq!(VECTOR_PUBLIC_KEY_HEX.to_uppercase().parse::<ParticipantKey>(), Ok(key));
        assert_eq!(String::from(key).parse::<ParticipantKey>(), Ok(key));
        for bad in [
            "",
            "d75a",
            &VECTOR_PUBLIC_KEY_HEX[1..],
            &format!("{VECTOR_PUBLIC_KEY_HEX}00"),
            &format!("{}g", &VECTOR_PUBLIC_KEY_HEX[1..]),
        ] {
            let error = bad.parse::<ParticipantKey>().unwrap_err();
            assert!(error.to_string().contains("64 hex digits"), "{bad}: {error}");
        }
        assert!("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511é".parse::<ParticipantKey>().is_err());
    }
}
