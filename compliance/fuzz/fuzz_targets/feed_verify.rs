//! The offline verifier of a feed export, from arbitrary bytes: `verify_reader` and
//! `verify_range_reader` (streaming), `verify` and `verify_range` (lines in memory), with a fixed
//! trusted key (the seeds in `corpus/feed_verify` are signed with it).
//!
//! Random bytes rarely carry a valid hash or signature, so the target also *repairs* what it
//! decodes: it relinks the records (each `previous_hash` the hash before it, each `hash`
//! recomputed) and re-signs every checkpoint over the head before it, to reach the checks behind
//! the hashes (sequences, anchors, checkpoint placement, jurisdictions).
//!
//! Checks, beyond "never panics": the streaming and in-memory verifiers agree; what verifies as a
//! whole feed verifies as a range with the same report; nothing with a checkpoint verifies without
//! a trusted key; and a verified report counts the export's records and checkpoints and names its
//! first and last sequence and its jurisdiction.
#![no_main]

use std::sync::LazyLock;

use corridor_compliance::feed::{
    FeedHash, FeedLine, FeedPublicKey, FeedSigner, VerifyReport, parse_lines, verify, verify_range,
    verify_range_reader, verify_reader,
};
use libfuzzer_sys::fuzz_target;

/// An Ed25519 private key in PKCS#8 v1 form: the fixed prefix, then RFC 8032 §7.1 TEST 1's seed.
const PKCS8_V1_HEX: &str =
    concat!("302e020100300506032b657004220420", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",);

static SIGNER: LazyLock<FeedSigner> = LazyLock::new(|| {
    let digit = |byte: u8| char::from(byte).to_digit(16).expect("hex") as u8;
    let pkcs8: Vec<u8> = PKCS8_V1_HEX.as_bytes().chunks(2).map(|pair| digit(pair[0]) << 4 | digit(pair[1])).collect();
    FeedSigner::from_pkcs8(&pkcs8).expect("a valid PKCS#8 document")
});

fuzz_target!(|bytes: &[u8]| {
    let keys = [SIGNER.public_key()];
    let whole = verify_reader(bytes, &keys).ok();
    let range = verify_range_reader(bytes, &keys).ok();
    if whole.is_some() {
        assert_eq!(range, whole, "a whole feed that verifies does not verify as a range");
    }

    let Ok(text) = std::str::from_utf8(bytes) else {
        assert_eq!(whole, None, "bytes that are not UTF-8 verified");
        return;
    };
    let Ok(lines) = parse_lines(text) else {
        assert_eq!(whole, None, "an export parse_lines refuses verified");
        assert_eq!(range, None, "an export parse_lines refuses verified as a range");
        return;
    };
    check(&lines, whole, range);

    let repaired = repair(&lines);
    let repaired_text: String =
        repaired.iter().map(|line| line.to_json().expect("a decoded line encodes") + "\n").collect();
    let whole = verify_reader(repaired_text.as_bytes(), &keys).ok();
    let range = verify_range_reader(repaired_text.as_bytes(), &keys).ok();
    if whole.is_some() {
        assert_eq!(range, whole, "a whole feed that verifies does not verify as a range");
    }
    assert_eq!(parse_lines(&repaired_text).as_ref(), Ok(&repaired), "the repaired export reads differently");
    check(&repaired, whole, range);
});

/// The in-memory verifiers give what the streaming ones gave, and a report fits the lines.
fn check(lines: &[FeedLine], whole: Option<VerifyReport>, range: Option<VerifyReport>) {
    let keys = [SIGNER.public_key()];
    assert_eq!(verify(lines, &keys).ok(), whole, "verify and verify_reader disagree");
    assert_eq!(verify_range(lines, &keys).ok(), range, "verify_range and verify_range_reader disagree");

    let checkpoints = lines.iter().filter(|line| matches!(line, FeedLine::Checkpoint(_))).count();
    if checkpoints > 0 {
        assert!(verify(lines, &[]).is_err(), "a checkpoint verified without a trusted key");
        let stranger = FeedPublicKey::from_bytes([7; 32]);
        assert!(verify_range(lines, &[stranger]).is_err(), "a checkpoint verified with another key");
    }

    for report in [whole, range].into_iter().flatten() {
        let records: Vec<_> = lines
            .iter()
            .filter_map(|line| match line {
                FeedLine::Record(record) => Some(record),
                FeedLine::Checkpoint(_) => None,
            })
            .collect();
        assert_eq!(report.records, records.len() as u64);
        assert_eq!(report.checkpoints_verified, checkpoints as u64);
        assert_eq!(report.first_sequence, records.first().map(|record| record.sequence));
        assert_eq!(report.last_sequence, records.last().map(|record| record.sequence));
        let jurisdiction = match &lines[0] {
            FeedLine::Record(record) => &record.jurisdiction,
            FeedLine::Checkpoint(checkpoint) => &checkpoint.jurisdiction,
        };
        assert_eq!(&report.jurisdiction, jurisdiction);
    }
}

/// The lines with every link and hash made right and every checkpoint signed by [`SIGNER`] over
/// the head before it (an anchor, before any record, keeps its head hash; one for sequence 0 gets
/// the empty feed's).
fn repair(lines: &[FeedLine]) -> Vec<FeedLine> {
    let mut head = FeedHash::GENESIS;
    let mut seen_record = false;
    lines
        .iter()
        .map(|line| match line {
            FeedLine::Record(record) => {
                let mut record = record.clone();
                record.previous_hash = head;
                record.hash = record.computed_hash();
                head = record.hash;
                seen_record = true;
                FeedLine::Record(record)
            }
            FeedLine::Checkpoint(checkpoint) => {
                if !seen_record {
                    head = if checkpoint.sequence == 0 { FeedHash::GENESIS } else { checkpoint.head_hash };
                }
                FeedLine::Checkpoint(SIGNER.sign(
                    &checkpoint.jurisdiction,
                    checkpoint.sequence,
                    head,
                    checkpoint.signed_at_ms,
                ))
            }
        })
        .collect()
}
