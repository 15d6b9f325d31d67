//! A `QuoteFxRequest` as an integrator sends it: arbitrary bytes decoded by prost, then validated
//! into a `QuoteRequest`.
//!
//! Checks, beyond "never panics": a converted request's amount is positive and at most
//! `Money::MINOR_UNITS_MAX` minor units, payer and payee differ, and the request written back in
//! canonical wire form (protobuf bytes and back) converts to the same request.
#![no_main]

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Money, QuoteRequest};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|bytes: &[u8]| {
    let Ok(message) = wire::QuoteFxRequest::decode(bytes) else {
        return;
    };
    let Ok(request) = QuoteRequest::try_from(message) else {
        return;
    };

    let minor_units = request.amount.minor_units();
    assert!(minor_units > 0, "a converted amount is not positive: {request:?}");
    assert!(minor_units <= Money::MINOR_UNITS_MAX, "a converted amount is too large: {request:?}");
    assert_ne!(request.payer, request.payee);

    let canonical = wire::QuoteFxRequest {
        participant_id: request.participant.to_string(),
        payer: request.payer.to_string(),
        payee: request.payee.to_string(),
        amount: Some(request.amount.into()),
        fixed_side: wire::FixedSide::from(request.fixed_side) as i32,
    };
    let redecoded =
        wire::QuoteFxRequest::decode(canonical.encode_to_vec().as_slice()).expect("our own encoding decodes");
    assert_eq!(redecoded, canonical);
    let again = QuoteRequest::try_from(redecoded).expect("the canonical wire form of a valid request is valid");
    assert_eq!(again, request, "the canonical wire form converts to another request");
});
