//! A `PaymentInstruction` as an integrator sends it: arbitrary bytes decoded by prost, then
//! validated into the domain type.
//!
//! Checks, beyond "never panics": a converted instruction's amount is positive and at most
//! `Money::MINOR_UNITS_MAX` minor units; its signing time (if any) has a millisecond encoding; its
//! canonical signing encoding is deterministic, starts with the domain tag, and is the same after
//! a round trip through the canonical wire form (which converts back to the very same
//! instruction); and checking its signature returns an answer, whatever the bytes.
#![no_main]

use std::time::{Duration, SystemTime};

use corridor_schemas::signature::{DOMAIN_TAG_V1, canonical_bytes, unix_ms};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Money, ParticipantKey, PaymentInstruction};
use libfuzzer_sys::fuzz_target;
use prost::Message;

/// RFC 8032 §7.1 TEST 1's public key: any valid Ed25519 key will do to exercise verification.
const KEY_HEX: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
/// 2026-01-01T00:00:00Z in milliseconds, a fixed signing time for the determinism check.
const SIGNED_AT_MS: u64 = 1_767_225_600_000;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = wire::PaymentInstruction::decode(bytes) else {
        return;
    };
    let Ok(instruction) = PaymentInstruction::try_from(message) else {
        return;
    };

    let minor_units = instruction.amount.minor_units();
    assert!(minor_units > 0, "a converted amount is not positive: {instruction:?}");
    assert!(minor_units <= Money::MINOR_UNITS_MAX, "a converted amount is too large: {instruction:?}");
    assert_eq!(instruction.signed_at.is_some(), instruction.signature.is_some());

    let bytes = canonical_bytes(&instruction, SIGNED_AT_MS);
    assert!(bytes.starts_with(DOMAIN_TAG_V1));
    assert_eq!(bytes, canonical_bytes(&instruction.clone(), SIGNED_AT_MS), "the canonical encoding varies");

    // The canonical wire form, through protobuf bytes and back, is the same instruction.
    let canonical = wire::PaymentInstruction::from(&instruction);
    let reencoded = canonical.encode_to_vec();
    let redecoded = wire::PaymentInstruction::decode(reencoded.as_slice()).expect("our own encoding decodes");
    assert_eq!(redecoded, canonical);
    let again =
        PaymentInstruction::try_from(redecoded).expect("the canonical wire form of a valid instruction is valid");
    assert_eq!(again, instruction, "the canonical wire form converts to another instruction");
    assert_eq!(canonical_bytes(&again, SIGNED_AT_MS), bytes);

    if let Some(signed_at) = instruction.signed_at {
        let signed_at_ms = unix_ms(signed_at).expect("a converted signed_at has a millisecond encoding");
        assert_eq!(canonical_bytes(&again, signed_at_ms), canonical_bytes(&instruction, signed_at_ms));
        let key: ParticipantKey = KEY_HEX.parse().expect("a valid key");
        // Whether it verifies is up to the bytes; it must answer either way.
        let _ = key.verify(&instruction, signed_at, Duration::from_secs(300));
        let _ = key.verify(&instruction, SystemTime::UNIX_EPOCH, Duration::ZERO);
    }
});
