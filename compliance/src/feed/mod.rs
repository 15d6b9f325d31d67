//! The tamper-evident compliance feed: each jurisdiction's hash-chained records of the payments
//! that touch it, the router's signed checkpoints of each chain's head, the export format, and
//! its offline verification.
//!
//! The router appends a record for every screening and every final outcome to the feed of every
//! jurisdiction the payment touches ([`FeedChain::append`]) and periodically signs each chain's
//! head ([`FeedSigner::sign_head`]). A regulator verifies an export ([`verify`], [`verify_range`],
//! [`verify_reader`]) with the router's public key and no other help: a removed, reordered, inserted or altered
//! record, and a forged checkpoint, fail verification at the line where the chain breaks.
//!
//! This module is a pure library. It does not store records or checkpoints, read the clock,
//! decide which jurisdictions a payment touches or which decisions each regulator may see
//! (the router decides what an entry holds), schedule checkpoints, or serve the feed.
//!
//! # Format, version 1
//!
//! This is the specification a regulator re-implements; the code follows it, and the tests in
//! `feed/tests.rs` check the code against byte strings built from this text.
//!
//! ## Records
//!
//! Each jurisdiction has its own chain. Its records are numbered by `sequence` from 1, without
//! gaps. A record is the router's entry (what it says about the payment) at its place in the
//! chain:
//!
//! | field | JSON | meaning |
//! |---|---|---|
//! | `jurisdiction` | string, ISO 3166-1 alpha-2 | whose feed |
//! | `sequence` | integer ≥ 1 | place in that feed |
//! | `recorded_at_ms` | integer | unix milliseconds, the router's clock; informational (order is `sequence`) |
//! | `entry.kind` | `"SCREENING"` or `"OUTCOME"` | the compliance decisions (before money is held, or on review of a held payment), or the final status |
//! | `entry.payment_id` | string | |
//! | `entry.participant` | string | who submitted the payment |
//! | `entry.payer`, `entry.payee` | string | `ledger/account` |
//! | `entry.originator_name`, `entry.beneficiary_name` | string or null | |
//! | `entry.originator_country`, `entry.beneficiary_country` | string (alpha-2) or null | |
//! | `entry.amounts` | array of strings | per ledger of the route, in route order, e.g. `"100.00 HKD"` |
//! | `entry.route` | array of strings | the ledgers, in order |
//! | `entry.decisions` | array of objects | `jurisdiction`, `hook`, `outcome` (`"ALLOW"`, `"DENY"`, `"HOLD"`), `code` and `message` (string or null; null for an allow) |
//! | `entry.status` | string or null | `"SETTLED"`, `"REJECTED"`, `"FAILED"`, `"HELD"`, `"PENDING"` |
//! | `entry.reason_code` | string or null | why, for a payment not settled |
//! | `previous_hash` | 64 lower-case hex digits | `hash` of the record before in this feed; 64 zeros for sequence 1 |
//! | `hash` | 64 lower-case hex digits | SHA-256 of the record's canonical encoding |
//!
//! A null may also be written by leaving the key out. Unknown keys and repeated keys are errors.
//!
//! ## The record hash
//!
//! `hash = SHA-256(E)`, where `E` is the concatenation of, in this order:
//!
//! 1. the 24 ASCII bytes `corridor-feed-record/v1\n` (ending in one line feed, 0x0A);
//! 2. `str(jurisdiction)`, `u64(sequence)`, `u64(recorded_at_ms)`;
//! 3. the 32 bytes `previous_hash` stands for (not its hex text);
//! 4. `str(kind)`, `str(payment_id)`, `str(participant)`, `str(payer)`, `str(payee)`;
//! 5. `opt(originator_name)`, `opt(originator_country)`, `opt(beneficiary_name)`,
//!    `opt(beneficiary_country)`;
//! 6. `u64(n)` and `str(amount)` for each of the n amounts, in order; the same for `route`;
//! 7. `u64(n)` for the n decisions, then for each in order: `str(jurisdiction)`, `str(hook)`,
//!    `str(outcome)`, `opt(code)`, `opt(message)`;
//! 8. `opt(status)`, `opt(reason_code)`.
//!
//! where `u64(x)` is x as 8 bytes big-endian; `str(s)` is `u64(byte length of s in UTF-8)` followed
//! by the UTF-8 bytes of s (exactly as decoded from the JSON string, no normalisation); `opt(s)` is
//! the byte 0x00 for null and the byte 0x01 followed by `str(s)` for a string. `kind` and `outcome`
//! are their JSON strings (`SCREENING`, `ALLOW`…).
//!
//! Test vector: the record with `jurisdiction` `HK`, `sequence` 2, `recorded_at_ms`
//! 1760000000123, `previous_hash` 32 bytes 0xab, kind `OUTCOME`, payment id `p-1`, participant
//! `bank-hk`, payer `e-hkd/alice`, payee `e-cny/wei`, originator `Chan Tai Man 陳大文` of `HK`, no
//! beneficiary name or country, amounts `100.00 HKD`, `91.50 CNY`, route `e-hkd`, `e-cny`,
//! decisions (`HK`, `single_payment_limit`, `ALLOW`, null, null) and (`CN`, `sanctions`, `DENY`,
//! `SANCTIONS_MATCH`, `listed`), status `REJECTED`, reason code `COMPLIANCE_DENIED` has a
//! 462-byte encoding and the hash
//! `c8eb24ba7bcb834e1237f58bd944c8facee911db6a2e83c2ebbc69e744726262`.
//!
//! The hash covers the values, not the JSON text: whitespace, key order and string escapes in the
//! export do not matter, and no JSON canonicalisation is needed.
//!
//! ## Checkpoints
//!
//! | field | JSON | meaning |
//! |---|---|---|
//! | `jurisdiction` | string | whose feed |
//! | `sequence` | integer | the record it covers (0: the empty feed) |
//! | `head_hash` | 64 hex digits | that record's `hash` (64 zeros for sequence 0) |
//! | `signed_at_ms` | integer | unix milliseconds, the signer's clock |
//! | `key_id` | 16 hex digits | the first 8 bytes of SHA-256 of the 32-byte Ed25519 public key |
//! | `signature` | 128 hex digits | Ed25519 (RFC 8032, pure, not pre-hashed) signature of the message below |
//!
//! The signed message is these ASCII bytes, each line ending in one line feed (0x0A), numbers in
//! decimal without leading zeros, hex in lower case:
//!
//! ```text
//! corridor-feed-checkpoint/v1
//! {key_id}
//! {jurisdiction}
//! {sequence}
//! {head_hash}
//! {signed_at_ms}
//! ```
//!
//! ## Export (JSON lines)
//!
//! UTF-8 text, one JSON object per line, each line ending in `\n` (a `\r` before it is ignored; no
//! empty lines), at most 1 MiB ([`LINE_BYTES_MAX`]) per line. A line is `{"record": {…}}` or
//! `{"checkpoint": {…}}`. An export holds the feed of one jurisdiction:
//!
//! - records in sequence order, without gaps, starting at sequence 1 (a *whole* feed) — or, for
//!   the export of a *range*, starting at sequence k + 1 right after an *anchor*: a checkpoint for
//!   sequence k as the first line(s), whose `head_hash` the first record's `previous_hash` must
//!   equal;
//! - each checkpoint right after the record it covers (several may follow one record, e.g. signed
//!   by an old and a new key during a rotation); a whole feed may open with checkpoints of the
//!   empty feed (sequence 0).
//!
//! Numbers are JSON integers (no fraction, no exponent); in practice they stay far below 2^53, so
//! any JSON parser reads them exactly.
//!
//! ## Verification
//!
//! The verifier is told whether it checks a whole feed or a range ([`FeedStart`]): a range that
//! starts after an anchor is indistinguishable from a whole feed whose first records were
//! removed, so only a whole-feed check proves nothing is missing at the start.
//!
//! Every record's hash is recomputed and every link checked; every checkpoint must be signed by
//! a trusted key and its `head_hash` must be the hash of the record before it. The first failure
//! is reported with its line (counted from 1) and sequence ([`VerifyError`]). Records after the
//! last checkpoint are protected by the chain alone (the report counts them): to check an export
//! for truncation against a later checkpoint obtained elsewhere, insert that checkpoint after the
//! record it covers, or append it — a checkpoint beyond the export's last record fails
//! verification as records removed from the end.

mod chain;
mod checkpoint;
mod export;
mod hex;
mod record;
mod verify;

#[cfg(test)]
mod tests;

pub use chain::{FeedChain, FeedChainError};
pub use checkpoint::{
    CHECKPOINT_MESSAGE_DOMAIN, Checkpoint, CheckpointError, CheckpointSignature, FeedPublicKey, FeedSigner, KeyError,
    KeyId, checkpoint_message, verify_checkpoint,
};
pub use export::{
    ExportError, FeedLine, FeedReader, LINE_BYTES_MAX, LineFailure, ParseError, export_lines, parse_line, parse_lines,
};
pub use hex::HexError;
pub use record::{
    DecisionOutcome, FeedDecision, FeedEntry, FeedHash, FeedKind, FeedRecord, RECORD_HASH_DOMAIN, status_name,
};
pub use verify::{
    FeedCheckError, FeedStart, FeedVerifier, VerifyError, VerifyReport, verify, verify_range, verify_range_reader,
    verify_reader,
};
