//! The feed against its specification (the module docs): hash and message encodings rebuilt
//! from the text, the export format, and every tampering the chain and checkpoints must catch,
//! each failing at its line with its message.

use std::sync::LazyLock;

use corridor_schemas::{Address, Currency, Jurisdiction, LedgerId, Money, ParticipantId, Party, PaymentId};

use super::*;
use crate::pipeline::{Decision, HookDecision, Reason, Screening, Subject};

fn jurisdiction(code: &str) -> Jurisdiction {
    Jurisdiction::new(code).unwrap()
}

const START_MS: u64 = 1_760_000_000_000;

/// A varied entry: every kind, outcome and optional field occurs in a feed of a few records.
fn entry(index: u64) -> FeedEntry {
    let is_final = index.is_multiple_of(2);
    FeedEntry {
        kind: if is_final { FeedKind::Outcome } else { FeedKind::Screening },
        payment_id: format!("0190f0c0-0000-7000-8000-{index:012}"),
        participant: "bank-hk".into(),
        payer: "e-hkd/alice".into(),
        payee: "e-cny/wei".into(),
        originator_name: Some("Alice Chan".into()),
        originator_country: Some(jurisdiction("HK")),
        beneficiary_name: (!index.is_multiple_of(3)).then(|| "Wei Zhang".into()),
        beneficiary_country: Some(jurisdiction("CN")),
        amounts: vec![format!("{index}00.00 HKD"), format!("{index}91.50 CNY")],
        route: vec!["e-hkd".into(), "e-cny".into()],
        decisions: vec![
            FeedDecision {
                jurisdiction: jurisdiction("HK"),
                hook: "single_payment_limit".into(),
                outcome: DecisionOutcome::Allow,
                code: None,
                message: None,
            },
            FeedDecision {
                jurisdiction: jurisdiction("CN"),
                hook: "sanctions".into(),
                outcome: if index.is_multiple_of(5) { DecisionOutcome::Deny } else { DecisionOutcome::Allow },
                code: index.is_multiple_of(5).then(|| "SANCTIONS_MATCH".into()),
                message: index.is_multiple_of(5).then(|| "beneficiary matches a listed name".into()),
            },
        ],
        status: is_final.then(|| if index.is_multiple_of(5) { "REJECTED".into() } else { "SETTLED".into() }),
        reason_code: (is_final && index.is_multiple_of(5)).then(|| "COMPLIANCE_DENIED".into()),
    }
}

/// `count` records of `code`'s feed, a checkpoint right after each sequence in `checkpoint_at`.
fn feed(code: &str, count: u64, checkpoint_at: &[u64], signer: &FeedSigner) -> (Vec<FeedRecord>, Vec<Checkpoint>) {
    let mut chain = FeedChain::new(jurisdiction(code));
    let (mut records, mut checkpoints) = (Vec::new(), Vec::new());
    for sequence in 1..=count {
        records.push(chain.append(entry(sequence), START_MS + sequence * 1_000).unwrap());
        if checkpoint_at.contains(&sequence) {
            checkpoints.push(signer.sign_head(&chain, START_MS + sequence * 1_000 + 1));
        }
    }
    (records, checkpoints)
}

/// Exported and read back, as a verifier sees it.
fn lines(records: &[FeedRecord], checkpoints: &[Checkpoint]) -> Vec<FeedLine> {
    parse_lines(&export_lines(records, checkpoints).unwrap()).unwrap()
}

/// HK's feed of 20 records with checkpoints after 7, 14 and 20; CN's of 20 with the same key.
struct Standard {
    signer: FeedSigner,
    other_signer: FeedSigner,
    records: Vec<FeedRecord>,
    checkpoints: Vec<Checkpoint>,
    lines: Vec<FeedLine>,
    cn_lines: Vec<FeedLine>,
}

static STANDARD: LazyLock<Standard> = LazyLock::new(|| {
    let (signer, _) = FeedSigner::generate().unwrap();
    let (other_signer, _) = FeedSigner::generate().unwrap();
    let (records, checkpoints) = feed("HK", 20, &[7, 14, 20], &signer);
    let lines = lines(&records, &checkpoints);
    let (cn_records, cn_checkpoints) = feed("CN", 20, &[7, 14, 20], &signer);
    let cn_lines = self::lines(&cn_records, &cn_checkpoints);
    Standard { signer, other_signer, records, checkpoints, lines, cn_lines }
});

/// The line of record `sequence` in the standard export (checkpoints after 7 and 14 shift it).
fn line_of(sequence: u64) -> usize {
    let shift = match sequence {
        ..=7 => 0,
        8..=14 => 1,
        _ => 2,
    };
    usize::try_from(sequence).unwrap() + shift
}

fn record_at(lines: &mut [FeedLine], line: usize) -> &mut FeedRecord {
    match &mut lines[line - 1] {
        FeedLine::Record(record) => record,
        FeedLine::Checkpoint(_) => panic!("line {line} is a checkpoint"),
    }
}

fn checkpoint_at(lines: &mut [FeedLine], line: usize) -> &mut Checkpoint {
    match &mut lines[line - 1] {
        FeedLine::Checkpoint(checkpoint) => checkpoint,
        FeedLine::Record(_) => panic!("line {line} is a record"),
    }
}

fn trusted() -> [FeedPublicKey; 1] {
    [STANDARD.signer.public_key()]
}

/// Tampers with a copy of the standard export and expects verification to fail with `expected`.
fn check(name: &str, tamper: impl FnOnce(&mut Vec<FeedLine>), expected: &str) {
    let mut lines = STANDARD.lines.clone();
    tamper(&mut lines);
    assert_ne!(lines, STANDARD.lines, "{name}: the tampering changed nothing");
    match verify(&lines, &trusted()) {
        Ok(report) => panic!("{name}: verified despite the tampering: {report}"),
        Err(error) => assert_eq!(error.to_string(), expected, "{name}"),
    }
}

#[test]
fn an_untouched_export_verifies() {
    let report = verify(&STANDARD.lines, &trusted()).unwrap();
    assert_eq!(
        report,
        VerifyReport {
            jurisdiction: jurisdiction("HK"),
            records: 20,
            first_sequence: Some(1),
            last_sequence: Some(20),
            checkpoints_verified: 3,
            last_checkpointed_sequence: Some(20),
            last_checkpoint_signed_at_ms: Some(START_MS + 20_001),
            records_after_last_checkpoint: 0,
        }
    );
    assert_eq!(
        report.to_string(),
        format!(
            "feed of HK verified: 20 records, sequences 1 to 20; 3 signed checkpoints, the last for sequence 20 (signed \
             at {} ms); every record is covered by a signed checkpoint",
            START_MS + 20_001
        )
    );
    assert_eq!(STANDARD.lines.len(), 23);
    assert!(matches!(&STANDARD.lines[7], FeedLine::Checkpoint(checkpoint) if checkpoint.sequence == 7));

    // Without the last checkpoint the tail is reported as covered by nothing.
    let uncovered = verify(&STANDARD.lines[..22], &trusted()).unwrap();
    assert_eq!((uncovered.last_checkpointed_sequence, uncovered.records_after_last_checkpoint), (Some(14), 6));
    assert!(uncovered.to_string().ends_with("; 6 records after the last checkpoint covered by no signature"));
    let unsigned = verify(&lines(&STANDARD.records, &[]), &trusted()).unwrap();
    assert_eq!((unsigned.checkpoints_verified, unsigned.records_after_last_checkpoint), (0, 20));
    assert!(unsigned.to_string().contains("; no signed checkpoint; 20 records after"));
}

#[test]
fn removed_and_reordered_records_fail_where_the_sequence_breaks() {
    check(
        "a record removed in the middle",
        |lines| {
            lines.remove(line_of(10) - 1);
        },
        "line 11: sequence 11 follows 9 (record 10 removed, or records reordered)",
    );
    check(
        "several records removed",
        |lines| {
            lines.drain(line_of(3) - 1..line_of(6) - 1);
        },
        "line 3: sequence 6 follows 2 (records 3 to 5 removed, or records reordered)",
    );
    check(
        "the record a checkpoint covers removed",
        |lines| {
            lines.remove(line_of(7) - 1);
        },
        "checkpoint at line 7 covers sequence 7, but the feed before it ends at sequence 6 (record 7 removed)",
    );
    check(
        "the last records removed, their checkpoint kept",
        |lines| {
            lines.drain(line_of(18) - 1..line_of(20));
        },
        "checkpoint at line 20 covers sequence 20, but the feed before it ends at sequence 17 (records 18 to 20 removed)",
    );
    check(
        "the first record removed",
        |lines| {
            lines.remove(0);
        },
        "line 1: the feed starts at sequence 2, not 1 (record 1 removed)",
    );
    check(
        "the first records removed, the checkpoint after them kept as if it were an anchor",
        |lines| {
            lines.drain(..line_of(7));
        },
        "checkpoint at line 1 for sequence 7 comes before any record, but a whole feed starts at sequence 1 (records \
         1 to 7 removed, or a range export checked as a whole feed)",
    );
    check(
        "two neighbours swapped",
        |lines| lines.swap(line_of(3) - 1, line_of(4) - 1),
        "line 3: sequence 4 follows 2 (record 3 removed, or records reordered)",
    );
    check(
        "two distant records swapped",
        |lines| lines.swap(line_of(3) - 1, line_of(12) - 1),
        "line 3: sequence 12 follows 2 (records 3 to 11 removed, or records reordered)",
    );
    check(
        "a record repeated",
        |lines| {
            let copy = lines[line_of(5) - 1].clone();
            lines.insert(line_of(5), copy);
        },
        "line 6: sequence 5 follows 5 (records repeated or reordered)",
    );
    check(
        "a record's sequence changed",
        |lines| record_at(lines, line_of(9)).sequence = 19,
        "line 10: sequence 19 follows 8 (records 9 to 18 removed, or records reordered)",
    );
    check("sequence 0", |lines| record_at(lines, 1).sequence = 0, "line 1: sequence 0 (sequences start at 1)");
}

#[test]
fn an_altered_record_fails_at_that_record() {
    let altered = |sequence: u64| {
        format!(
            "line {}, sequence {sequence}: hash does not match the record's content (record altered)",
            line_of(sequence)
        )
    };
    check("an amount", |lines| record_at(lines, line_of(10)).entry.amounts[1] = "1.00 CNY".into(), &altered(10));
    check("a status", |lines| record_at(lines, line_of(16)).entry.status = Some("FAILED".into()), &altered(16));
    check(
        "a decision's code",
        |lines| record_at(lines, line_of(5)).entry.decisions[1].code = Some("CLEARED".into()),
        &altered(5),
    );
    check(
        "a decision's outcome",
        |lines| record_at(lines, line_of(5)).entry.decisions[1].outcome = DecisionOutcome::Allow,
        &altered(5),
    );
    check("a name removed", |lines| record_at(lines, line_of(1)).entry.originator_name = None, &altered(1));
    check(
        "a name emptied",
        |lines| record_at(lines, line_of(1)).entry.originator_name = Some(String::new()),
        &altered(1),
    );
    check("the time", |lines| record_at(lines, line_of(20)).recorded_at_ms += 1, &altered(20));
    check("the kind", |lines| record_at(lines, line_of(2)).entry.kind = FeedKind::Screening, &altered(2));
    check(
        "the jurisdiction of a decision",
        |lines| record_at(lines, line_of(8)).entry.decisions[0].jurisdiction = jurisdiction("SG"),
        &altered(8),
    );
    check(
        "the previous hash",
        |lines| record_at(lines, line_of(12)).previous_hash = FeedHash::from_bytes([7; 32]),
        &altered(12),
    );
    check("the hash", |lines| record_at(lines, line_of(15)).hash = FeedHash::from_bytes([7; 32]), &altered(15));
    check(
        "a route moved between fields without changing their concatenation",
        |lines| {
            let record = record_at(lines, line_of(3));
            record.entry.route = vec!["e-hkde-cny".into()];
        },
        &altered(3),
    );
}

#[test]
fn an_altered_record_with_its_hash_recomputed_breaks_the_next_link() {
    check(
        "the next record's link",
        |lines| {
            let record = record_at(lines, line_of(10));
            record.entry.amounts[0] = "1.00 HKD".into();
            record.hash = record.computed_hash();
        },
        "line 12, sequence 11: previous_hash is not the hash of sequence 10 at line 11 (record 10 altered and its \
         hash recomputed, or this record's link altered)",
    );
    check(
        "the checkpoint right after it",
        |lines| {
            let record = record_at(lines, line_of(14));
            record.entry.status = Some("FAILED".into());
            record.hash = record.computed_hash();
        },
        "checkpoint at line 16 for sequence 14: head_hash is not the hash of the record at line 15 (records up to 14 \
         altered)",
    );
    check(
        "every later link rewritten: the next checkpoint still catches it",
        |lines| {
            let mut previous = None;
            for sequence in 10..=14 {
                let record = record_at(lines, line_of(sequence));
                if sequence == 10 {
                    record.entry.payee = "e-cny/mallory".into();
                }
                if let Some(previous) = previous {
                    record.previous_hash = previous;
                }
                record.hash = record.computed_hash();
                previous = Some(record.hash);
            }
        },
        "checkpoint at line 16 for sequence 14: head_hash is not the hash of the record at line 15 (records up to 14 \
         altered)",
    );
    check(
        "the first record given a previous hash",
        |lines| {
            let record = record_at(lines, 1);
            record.previous_hash = FeedHash::from_bytes([1; 32]);
            record.hash = record.computed_hash();
        },
        "line 1, sequence 1: previous_hash is not 64 zeros, as the first record's must be (record altered)",
    );
}

#[test]
fn forged_misplaced_and_foreign_checkpoints_fail_at_their_line() {
    check(
        "a byte of a signature",
        |lines| {
            let checkpoint = checkpoint_at(lines, 16);
            let mut signature = *checkpoint.signature.as_bytes();
            signature[10] ^= 1;
            checkpoint.signature = CheckpointSignature::from_bytes(signature);
        },
        "checkpoint at line 16 for sequence 14: signature invalid (checkpoint forged or altered)",
    );
    check(
        "a signed head moved to an altered chain",
        |lines| checkpoint_at(lines, 16).head_hash = FeedHash::from_bytes([3; 32]),
        "checkpoint at line 16 for sequence 14: signature invalid (checkpoint forged or altered)",
    );
    check(
        "a signing time",
        |lines| checkpoint_at(lines, 8).signed_at_ms += 1,
        "checkpoint at line 8 for sequence 7: signature invalid (checkpoint forged or altered)",
    );
    check(
        "signed with another key",
        |lines| {
            let genuine = checkpoint_at(lines, 16).clone();
            *checkpoint_at(lines, 16) =
                STANDARD.other_signer.sign(&genuine.jurisdiction, genuine.sequence, genuine.head_hash, 1);
        },
        &format!(
            "checkpoint at line 16 for sequence 14: signed by key {}, which is not a trusted key",
            STANDARD.other_signer.key_id()
        ),
    );
    check(
        "signed with another key under the trusted key's id",
        |lines| {
            let genuine = checkpoint_at(lines, 16).clone();
            let mut forged = STANDARD.other_signer.sign(&genuine.jurisdiction, genuine.sequence, genuine.head_hash, 1);
            forged.key_id = genuine.key_id;
            *checkpoint_at(lines, 16) = forged;
        },
        "checkpoint at line 16 for sequence 14: signature invalid (checkpoint forged or altered)",
    );
    check(
        "a checkpoint moved after later records",
        |lines| {
            let checkpoint = lines.remove(7);
            lines.insert(9, checkpoint);
        },
        "checkpoint at line 10 covers sequence 7, but the feed before it already reached sequence 9 (a checkpoint \
         goes right after the record it covers: checkpoint moved, or records reordered)",
    );
}

#[test]
fn feeds_of_two_jurisdictions_do_not_mix() {
    check(
        "another jurisdiction's record in place of one",
        |lines| lines[4] = STANDARD.cn_lines[4].clone(),
        "line 5, sequence 5: a record of CN in the feed of HK (feeds mixed)",
    );
    check(
        "another jurisdiction's checkpoint",
        |lines| lines[7] = STANDARD.cn_lines[7].clone(),
        "checkpoint at line 8 for sequence 7: it is of CN, in the feed of HK (feeds mixed)",
    );
    check(
        "another jurisdiction's record relabelled",
        |lines| record_at(lines, 5).jurisdiction = jurisdiction("CN"),
        "line 5, sequence 5: a record of CN in the feed of HK (feeds mixed)",
    );
    // CN's own feed verifies with the same key.
    assert_eq!(verify(&STANDARD.cn_lines, &trusted()).unwrap().jurisdiction, jurisdiction("CN"));
}

#[test]
fn a_range_export_starts_after_its_anchor_checkpoint() {
    let (records, checkpoints) = (&STANDARD.records, &STANDARD.checkpoints);
    let range = lines(&records[7..], checkpoints);
    assert!(matches!(&range[0], FeedLine::Checkpoint(checkpoint) if checkpoint.sequence == 7));
    let report = verify_range(&range, &trusted()).unwrap();
    assert_eq!(
        (report.records, report.first_sequence, report.last_sequence, report.checkpoints_verified),
        (13, Some(8), Some(20), 3)
    );
    // Checked as a whole feed, the same lines are a feed missing its start.
    assert_eq!(verify(&range, &trusted()).unwrap_err(), VerifyError::AnchorInWholeFeed { line: 1, sequence: 7 });
    // A whole feed is also a valid range.
    assert_eq!(verify_range(&STANDARD.lines, &trusted()), verify(&STANDARD.lines, &trusted()));

    let unanchored = lines(&records[7..], &checkpoints[1..]);
    assert_eq!(
        verify_range(&unanchored, &trusted()).unwrap_err().to_string(),
        "line 1: the range starts at sequence 8 with no checkpoint for sequence 7 before it (records 1 to 7 removed, \
         or the range exported without its anchor checkpoint)"
    );

    let mut altered = range.clone();
    let first = record_at(&mut altered, 2);
    first.previous_hash = FeedHash::from_bytes([9; 32]);
    first.hash = first.computed_hash();
    assert_eq!(
        verify_range(&altered, &trusted()).unwrap_err().to_string(),
        "line 2, sequence 8: previous_hash is not the head_hash of the checkpoint at line 1 (record altered, or the \
         wrong anchor)"
    );

    // Two anchors must agree.
    let mut disagreeing = range.clone();
    let anchor = &checkpoints[0];
    let second = STANDARD.signer.sign(&anchor.jurisdiction, anchor.sequence, FeedHash::from_bytes([5; 32]), 9);
    disagreeing.insert(1, FeedLine::Checkpoint(second));
    assert_eq!(
        verify_range(&disagreeing, &trusted()).unwrap_err().to_string(),
        "checkpoint at line 2 for sequence 7: head_hash differs from the checkpoint at line 1 for the same sequence"
    );

    // A range of nothing since its anchor verifies and says so; as a whole feed it lost everything.
    assert_eq!(verify_range(&lines(&[], &[]), &trusted()), Err(VerifyError::Empty));
    let only_anchor = [FeedLine::Checkpoint(checkpoints[2].clone())];
    let report = verify_range(&only_anchor, &trusted()).unwrap();
    assert_eq!((report.records, report.last_sequence, report.last_checkpointed_sequence), (0, None, Some(20)));
    assert_eq!(report.records_after_last_checkpoint, 0);
    assert_eq!(
        report.to_string(),
        "feed of HK verified: no records; 1 signed checkpoint, the last for sequence 20 (signed at 1760000020001 ms); \
         every record is covered by a signed checkpoint"
    );
    assert_eq!(verify(&only_anchor, &trusted()).unwrap_err(), VerifyError::AnchorInWholeFeed { line: 1, sequence: 20 });

    // The empty feed's checkpoint (sequence 0) may open a whole feed.
    let (signer, chain) = (&STANDARD.signer, FeedChain::new(jurisdiction("HK")));
    let mut whole = vec![FeedLine::Checkpoint(signer.sign_head(&chain, 1))];
    whole.extend(STANDARD.lines.iter().cloned());
    assert_eq!(verify(&whole, &trusted()).unwrap().checkpoints_verified, 4);
}

#[test]
fn a_later_checkpoint_held_by_the_regulator_catches_truncation() {
    // The export was cut after record 17 together with its checkpoints; the regulator appends the
    // checkpoint for 20 it received from the live feed.
    let mut truncated = lines(&STANDARD.records[..17], &STANDARD.checkpoints[..2]);
    assert_eq!(verify(&truncated, &trusted()).unwrap().records_after_last_checkpoint, 3);
    truncated.push(FeedLine::Checkpoint(STANDARD.checkpoints[2].clone()));
    assert_eq!(
        verify(&truncated, &trusted()).unwrap_err(),
        VerifyError::CheckpointBeyondFeed { line: 20, sequence: 20, feed_end: 17 }
    );
}

#[test]
fn several_trusted_keys_cover_a_rotation() {
    let (old, new) = (&STANDARD.signer, &STANDARD.other_signer);
    let mut chain = FeedChain::new(jurisdiction("SG"));
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    for sequence in 1..=6 {
        records.push(chain.append(entry(sequence), START_MS + sequence).unwrap());
        match sequence {
            3 => checkpoints.push(old.sign_head(&chain, 1)),
            4 => {
                checkpoints.push(old.sign_head(&chain, 2));
                checkpoints.push(new.sign_head(&chain, 3));
            }
            6 => checkpoints.push(new.sign_head(&chain, 4)),
            _ => {}
        }
    }
    let export = lines(&records, &checkpoints);
    let report = verify(&export, &[old.public_key(), new.public_key()]).unwrap();
    assert_eq!((report.checkpoints_verified, report.last_checkpointed_sequence), (4, Some(6)));
    assert_eq!(
        verify(&export, &[new.public_key()]).unwrap_err(),
        VerifyError::UntrustedKey { line: 4, sequence: 3, key_id: old.key_id() }
    );
    assert_eq!(verify(&export, &[]).unwrap_err().line(), Some(4));
}

/// The hash input rebuilt byte by byte from the specification in the module docs.
#[test]
fn the_record_hash_follows_the_specification() {
    let record = FeedRecord {
        jurisdiction: jurisdiction("HK"),
        sequence: 2,
        recorded_at_ms: 1_760_000_000_123,
        entry: FeedEntry {
            kind: FeedKind::Outcome,
            payment_id: "p-1".into(),
            participant: "bank-hk".into(),
            payer: "e-hkd/alice".into(),
            payee: "e-cny/wei".into(),
            originator_name: Some("Chan Tai Man 陳大文".into()),
            originator_country: Some(jurisdiction("HK")),
            beneficiary_name: None,
            beneficiary_country: None,
            amounts: vec!["100.00 HKD".into(), "91.50 CNY".into()],
            route: vec!["e-hkd".into(), "e-cny".into()],
            decisions: vec![
                FeedDecision {
                    jurisdiction: jurisdiction("HK"),
                    hook: "single_payment_limit".into(),
                    outcome: DecisionOutcome::Allow,
                    code: None,
                    message: None,
                },
                FeedDecision {
                    jurisdiction: jurisdiction("CN"),
                    hook: "sanctions".into(),
                    outcome: DecisionOutcome::Deny,
                    code: Some("SANCTIONS_MATCH".into()),
                    message: Some("listed".into()),
                },
            ],
            status: Some("REJECTED".into()),
            reason_code: Some("COMPLIANCE_DENIED".into()),
        },
        previous_hash: FeedHash::from_bytes([0xab; 32]),
        hash: FeedHash::GENESIS,
    };

    let mut expected: Vec<u8> = b"corridor-feed-record/v1\n".to_vec();
    let u64_be = |bytes: &mut Vec<u8>, value: u64| bytes.extend_from_slice(&value.to_be_bytes());
    let str_ = |bytes: &mut Vec<u8>, text: &str| {
        u64_be(bytes, u64::try_from(text.len()).unwrap());
        bytes.extend_from_slice(text.as_bytes());
    };
    let opt = |bytes: &mut Vec<u8>, text: Option<&str>| match text {
        None => bytes.push(0),
        Some(text) => {
            bytes.push(1);
            str_(bytes, text);
        }
    };
    str_(&mut expected, "HK");
    u64_be(&mut expected, 2);
    u64_be(&mut expected, 1_760_000_000_123);
    expected.extend_from_slice(&[0xab; 32]);
    for text in ["OUTCOME", "p-1", "bank-hk", "e-hkd/alice", "e-cny/wei"] {
        str_(&mut expected, text);
    }
    opt(&mut expected, Some("Chan Tai Man 陳大文"));
    opt(&mut expected, Some("HK"));
    opt(&mut expected, None);
    opt(&mut expected, None);
    u64_be(&mut expected, 2);
    str_(&mut expected, "100.00 HKD");
    str_(&mut expected, "91.50 CNY");
    u64_be(&mut expected, 2);
    str_(&mut expected, "e-hkd");
    str_(&mut expected, "e-cny");
    u64_be(&mut expected, 2);
    for (jurisdiction, hook, outcome, code, message) in [
        ("HK", "single_payment_limit", "ALLOW", None, None),
        ("CN", "sanctions", "DENY", Some("SANCTIONS_MATCH"), Some("listed")),
    ] {
        str_(&mut expected, jurisdiction);
        str_(&mut expected, hook);
        str_(&mut expected, outcome);
        opt(&mut expected, code);
        opt(&mut expected, message);
    }
    opt(&mut expected, Some("REJECTED"));
    opt(&mut expected, Some("COMPLIANCE_DENIED"));

    assert_eq!(record.canonical_encoding(), expected);
    assert_eq!(record.computed_hash(), FeedHash::sha256(&expected));
    // The fixed vector the module docs give re-implementers (an independent implementation of the
    // text, in Python, computes the same).
    assert_eq!(expected.len(), 462);
    assert_eq!(record.computed_hash().to_string(), "c8eb24ba7bcb834e1237f58bd944c8facee911db6a2e83c2ebbc69e744726262");
}

#[test]
fn the_hash_covers_values_not_json_text() {
    let text = export_lines(&STANDARD.records[..3], &[]).unwrap();
    let reworded: String = text
        .lines()
        .map(|line| {
            // Keys re-sorted (serde_json's default map is ordered by key), a name spelled with an
            // escape, and spaces around the line.
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let sorted = serde_json::to_string(&value).unwrap();
            assert_ne!(sorted, line);
            format!("  {}  \n", sorted.replace("Alice Chan", "\\u0041lice Chan"))
        })
        .collect();
    assert!(reworded.contains("\\u0041lice"));
    assert_eq!(verify(&parse_lines(&reworded).unwrap(), &trusted()).unwrap().records, 3);
}

#[test]
fn the_checkpoint_message_follows_the_specification() {
    let checkpoint = STANDARD.signer.sign(&jurisdiction("HK"), 14, FeedHash::from_bytes([0x0f; 32]), 1_760_000_014_001);
    let key_id = STANDARD.signer.key_id();
    assert_eq!(key_id.to_string().len(), 16);
    assert_eq!(
        checkpoint.message(),
        format!("corridor-feed-checkpoint/v1\n{key_id}\nHK\n14\n{}\n1760000014001\n", "0f".repeat(32))
    );
    // The signature is plain Ed25519 over those bytes, checkable without this crate.
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, STANDARD.signer.public_key().as_bytes())
        .verify(checkpoint.message().as_bytes(), checkpoint.signature.as_bytes())
        .unwrap();
    // The key id is the first 8 bytes of SHA-256 of the public key.
    let digest = FeedHash::sha256(STANDARD.signer.public_key().as_bytes());
    assert_eq!(key_id.to_string(), hex::encode(&digest.as_bytes()[..8]));

    assert_eq!(verify_checkpoint(&checkpoint, &STANDARD.signer.public_key()), Ok(()));
    assert_eq!(
        verify_checkpoint(&checkpoint, &STANDARD.other_signer.public_key()),
        Err(CheckpointError::OtherKey { key_id, expected: STANDARD.other_signer.key_id() })
    );
    let mut altered = checkpoint.clone();
    altered.sequence = 15;
    assert_eq!(
        verify_checkpoint(&altered, &STANDARD.signer.public_key()),
        Err(CheckpointError::BadSignature { key_id })
    );
}

#[test]
fn signing_keys_round_trip_through_pkcs8() {
    let (signer, pkcs8) = FeedSigner::generate().unwrap();
    let reloaded = FeedSigner::from_pkcs8(&pkcs8).unwrap();
    assert_eq!(reloaded.public_key(), signer.public_key());
    let checkpoint = reloaded.sign(&jurisdiction("HK"), 1, FeedHash::GENESIS, 5);
    assert_eq!(verify_checkpoint(&checkpoint, &signer.public_key()), Ok(()));
    assert!(matches!(FeedSigner::from_pkcs8(b"not a key"), Err(KeyError::Rejected { .. })));
    // Debug names the key, never the private part.
    assert_eq!(format!("{signer:?}"), format!("FeedSigner {{ key_id: KeyId({}), .. }}", signer.key_id()));
    // The public key's text form round trips.
    let text = signer.public_key().to_string();
    assert_eq!(text.parse::<FeedPublicKey>(), Ok(signer.public_key()));
    assert!(text.to_uppercase().parse::<FeedPublicKey>().is_err());
}

#[test]
fn the_chain_assigns_sequence_and_links_and_resumes() {
    let mut chain = FeedChain::new(jurisdiction("HK"));
    assert_eq!(chain.head(), (0, FeedHash::GENESIS));
    let first = chain.append(entry(1), 10).unwrap();
    let second = chain.append(entry(2), 5).unwrap(); // the clock may step back
    assert_eq!((first.sequence, first.previous_hash), (1, FeedHash::GENESIS));
    assert_eq!((second.sequence, second.previous_hash), (2, first.hash));
    assert_eq!(first.hash, first.computed_hash());
    assert_eq!(chain.head(), (2, second.hash));

    // A resumed chain continues exactly as the uninterrupted one.
    let mut resumed = FeedChain::resume(jurisdiction("HK"), 2, second.hash).unwrap();
    assert_eq!(resumed.append(entry(3), 20), chain.clone().append(entry(3), 20));
    assert_eq!(
        FeedChain::resume(jurisdiction("HK"), 0, FeedHash::GENESIS).unwrap(),
        FeedChain::new(jurisdiction("HK"))
    );
    assert_eq!(
        FeedChain::resume(jurisdiction("HK"), 0, first.hash).unwrap_err().to_string(),
        format!(
            "the feed of HK cannot resume at sequence 0 with head {}: an empty chain's head is 64 zeros",
            first.hash
        )
    );
    let mut full = FeedChain::resume(jurisdiction("HK"), u64::MAX, first.hash).unwrap();
    assert_eq!(full.append(entry(1), 0), Err(FeedChainError::SequenceExhausted { jurisdiction: jurisdiction("HK") }));

    // A record no verifier would read is refused, and the chain stays where it was.
    let refused = chain.append(with_message_bytes(entry(3), LINE_BYTES_MAX), 30).unwrap_err();
    assert!(matches!(refused, FeedChainError::RecordTooLarge { line_bytes, .. } if line_bytes > LINE_BYTES_MAX));
    assert_eq!(chain.head(), (2, second.hash));
    // One just under the limit is appended and reads back.
    let record = chain.append(with_message_bytes(entry(3), LINE_BYTES_MAX - 2_000), 30).unwrap();
    let text = export_lines(std::slice::from_ref(&record), &[]).unwrap();
    assert!(text.len() > LINE_BYTES_MAX - 2_000 && text.len() <= LINE_BYTES_MAX + 1);
    assert!(matches!(&parse_lines(&text).unwrap()[0], FeedLine::Record(read) if **read == record));
}

fn with_message_bytes(mut entry: FeedEntry, message_bytes: usize) -> FeedEntry {
    entry.decisions[0].message = Some("x".repeat(message_bytes));
    entry
}

#[test]
fn the_export_places_checkpoints_and_refuses_what_it_cannot_place() {
    let (records, checkpoints) = (&STANDARD.records, &STANDARD.checkpoints);
    let text = export_lines(records, checkpoints).unwrap();
    assert_eq!(text.lines().count(), 23);
    assert!(text.ends_with('\n'));
    assert!(
        text.lines().nth(7).unwrap().starts_with(r#"{"checkpoint":{"jurisdiction":"HK","sequence":7,"head_hash":""#)
    );
    assert!(text.lines().next().unwrap().starts_with(
        r#"{"record":{"jurisdiction":"HK","sequence":1,"recorded_at_ms":1760000001000,"entry":{"kind":"SCREENING","#
    ));
    assert_eq!(parse_lines(&text).unwrap(), STANDARD.lines);
    for line in &STANDARD.lines {
        assert_eq!(parse_line(1, &line.to_json().unwrap()).unwrap(), *line);
    }

    assert_eq!(export_lines(&[], &[]), Ok(String::new()));
    let mut mixed = records[..3].to_vec();
    mixed[2].jurisdiction = jurisdiction("CN");
    assert_eq!(
        export_lines(&mixed, &[]).unwrap_err().to_string(),
        "record 3 is of CN; an export holds the feed of one jurisdiction, HK"
    );
    let gap = [records[0].clone(), records[2].clone()];
    assert_eq!(
        export_lines(&gap, &[]).unwrap_err().to_string(),
        "record 3 follows record 1; an export holds consecutive records"
    );
    assert_eq!(
        export_lines(&records[..5], &checkpoints[..1]).unwrap_err(),
        ExportError::CheckpointOutsideExport { jurisdiction: jurisdiction("HK"), sequence: 7 }
    );
    assert!(export_lines(&[], &checkpoints[..1]).is_err());
}

/// Reads `text` both ways (in memory and streaming) and expects the same error.
fn check_parse(name: &str, text: &str, expected: &str) {
    let in_memory = parse_lines(text).map(|_| ()).unwrap_err();
    assert_eq!(in_memory.to_string(), expected, "{name}");
    let streamed = FeedReader::new(text.as_bytes()).find_map(Result::err).unwrap();
    assert_eq!(streamed, in_memory, "{name}");
}

/// The 1-based column of the last character of `needle`'s first occurrence in `text`.
fn column_after(text: &str, needle: &str) -> usize {
    text.find(needle).unwrap() + needle.len()
}

#[test]
fn a_bad_line_is_named() {
    let good = STANDARD.lines[0].to_json().unwrap();
    let checkpoint = STANDARD.lines[7].to_json().unwrap();
    check_parse("bad JSON", &format!("{good}\n{{\"record\": \n"), "line 2: column 11: EOF while parsing a value");
    check_parse(
        "an unknown line kind",
        &format!("{good}\n{{\"receipt\":{{}}}}\n"),
        "line 2: column 10: unknown variant `receipt`, expected `record` or `checkpoint`",
    );
    let line = good.replacen("\"sequence\"", "\"note\":\"x\",\"sequence\"", 1);
    check_parse(
        "an unknown key in a record",
        &format!("{good}\n{line}\n"),
        &format!(
            "line 2: column {}: unknown field `note`, expected one of `jurisdiction`, `sequence`, `recorded_at_ms`, \
             `entry`, `previous_hash`, `hash`",
            column_after(&line, "\"note\"")
        ),
    );
    let line = good.replacen("\"payment_id\"", "\"memo\":1,\"payment_id\"", 1);
    check_parse(
        "an unknown key in an entry",
        &line,
        &format!(
            "line 1: column {}: unknown field `memo`, expected one of `kind`, `payment_id`, `participant`, `payer`, \
             `payee`, `originator_name`, `originator_country`, `beneficiary_name`, `beneficiary_country`, `amounts`, \
             `route`, `decisions`, `status`, `reason_code`",
            column_after(&line, "\"memo\"")
        ),
    );
    let line = good.replacen("\"sequence\":1,", "\"sequence\":1,\"sequence\":2,", 1);
    check_parse(
        "a repeated key",
        &line,
        &format!("line 1: column {}: duplicate field `sequence`", column_after(&line, "\"sequence\":1,\"sequence\"")),
    );
    check_parse(
        "a second key beside the line kind",
        &format!("{},\"record\":{{}}}}", &checkpoint[..checkpoint.len() - 1]),
        &format!("line 1: column {}: expected value", checkpoint.len() - 1),
    );
    let hash = STANDARD.records[0].hash.to_string();
    let line = good.replace(&hash, &hash.to_uppercase());
    check_parse(
        "upper-case hex",
        &line,
        &format!(
            "line 1: column {}: has `{}` at position {}; only lower-case hex digits 0-9 a-f are allowed",
            column_after(&line, &hash.to_uppercase()) + 2,
            hash.to_uppercase().chars().find(char::is_ascii_uppercase).unwrap(),
            hash.find(|c: char| c.is_ascii_lowercase()).unwrap(),
        ),
    );
    let line = good.replace(&hash, "abcd");
    check_parse(
        "a short hash",
        &line,
        &format!(
            "line 1: column {}: has 4 characters; 64 lower-case hex digits expected",
            column_after(&line, "\"abcd\"") + 1
        ),
    );
    check_parse(
        "a bad jurisdiction",
        &good.replacen("\"HK\"", "\"hk\"", 1),
        "line 1: column 30: `hk` may only contain two upper-case letters (ISO 3166-1 alpha-2)",
    );
    check_parse(
        "a negative sequence",
        &good.replacen("\"sequence\":1", "\"sequence\":-1", 1),
        "line 1: column 44: invalid value: integer `-1`, expected u64",
    );
    check_parse(
        "a fractional time",
        &good.replacen("\"recorded_at_ms\":1760000001000", "\"recorded_at_ms\":1.5", 1),
        "line 1: column 64: invalid type: floating point `1.5`, expected u64",
    );
    check_parse("an empty line", &format!("{good}\n\n{good}\n"), "line 2: the line is empty");
    check_parse("two line breaks at the end", &format!("{good}\n\n"), "line 2: the line is empty");
    check_parse(
        "a line one byte too long",
        &format!("{good}\n{}\n", " ".repeat(LINE_BYTES_MAX + 1)),
        &format!("line 2: the line is {} bytes long; at most {LINE_BYTES_MAX} allowed", LINE_BYTES_MAX + 1),
    );
    // The streaming reader stops reading a line as soon as it is too long.
    let overlong = format!("{good}\n{}\n{good}\n", " ".repeat(3 * LINE_BYTES_MAX));
    let streamed = FeedReader::new(overlong.as_bytes()).find_map(Result::err).unwrap();
    assert_eq!(streamed.to_string(), format!("line 2: the line is longer than {LINE_BYTES_MAX} bytes"));

    // What is accepted: CRLF line breaks, no final line break, an empty export.
    let crlf = format!("{good}\r\n{good}");
    assert_eq!(parse_lines(&crlf).unwrap().len(), 2);
    assert_eq!(FeedReader::new(crlf.as_bytes()).map(|item| item.unwrap().0).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(parse_lines(""), Ok(Vec::new()));
    assert_eq!(parse_lines("\n").unwrap_err().to_string(), "line 1: the line is empty");
}

#[test]
fn the_streaming_reader_stops_at_the_first_bad_line_and_refuses_bytes_that_are_not_text() {
    let good = STANDARD.lines[0].to_json().unwrap();
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"record\":\xff}\n");
    bytes.extend_from_slice(format!("{good}\n").as_bytes());
    let items: Vec<_> = FeedReader::new(&bytes[..]).collect();
    assert_eq!(items.len(), 2, "nothing after the first error");
    assert_eq!(items[1], Err(ParseError { line: 2, failure: LineFailure::NotUtf8 }));
}

#[test]
fn the_verifier_is_left_as_it_was_by_a_line_it_refuses() {
    let mut verifier = FeedVerifier::new(&trusted(), FeedStart::Whole);
    for (index, line) in STANDARD.lines.iter().enumerate() {
        if index == 4 {
            // A foreign record at line 5 is refused and leaves no trace.
            assert!(verifier.push(5, &STANDARD.cn_lines[4]).is_err());
        }
        verifier.push(index + 1, line).unwrap();
    }
    assert_eq!(verifier.finish(), verify(&STANDARD.lines, &trusted()));
}

#[test]
fn verify_reader_reads_and_verifies_an_export() {
    let text = export_lines(&STANDARD.records, &STANDARD.checkpoints).unwrap();
    assert_eq!(verify_reader(text.as_bytes(), &trusted()).unwrap(), verify(&STANDARD.lines, &trusted()).unwrap());
    let tampered = text.replacen("\"1100.00 HKD\"", "\"1.00 HKD\"", 1);
    assert_eq!(
        verify_reader(tampered.as_bytes(), &trusted()).unwrap_err(),
        FeedCheckError::Verify(VerifyError::HashMismatch { line: line_of(11), sequence: 11 })
    );
    assert!(matches!(
        verify_reader("{}\n".as_bytes(), &trusted()),
        Err(FeedCheckError::Parse(ParseError { line: 1, .. }))
    ));
    assert_eq!(verify_reader("".as_bytes(), &trusted()), Err(FeedCheckError::Verify(VerifyError::Empty)));
}

#[test]
fn an_entry_is_built_from_the_screened_payment() {
    let participant = ParticipantId::new("bank-hk").unwrap();
    let payer: Address = "e-hkd/alice".parse().unwrap();
    let payee: Address = "e-cny/wei".parse().unwrap();
    let amounts = [
        Money::parse("100.00", Currency::from_code("HKD").unwrap()).unwrap(),
        Money::parse("91.50", Currency::from_code("CNY").unwrap()).unwrap(),
    ];
    let originator = Party { name: Some("Alice Chan".into()), country: Some(jurisdiction("HK")), ..Party::default() };
    let subject = Subject {
        payment: PaymentId::generate(),
        participant: &participant,
        payer: &payer,
        payee: &payee,
        amounts: &amounts,
        jurisdictions: &[jurisdiction("HK"), jurisdiction("CN")],
        originator: Some(&originator),
        beneficiary: None,
    };
    let screening = Screening {
        decisions: vec![
            HookDecision { jurisdiction: jurisdiction("HK"), hook: "single_payment_limit", decision: Decision::Allow },
            HookDecision {
                jurisdiction: jurisdiction("CN"),
                hook: "travel_rule",
                decision: Decision::Hold(Reason { code: "MISSING_BENEFICIARY", message: "no name".into() }),
            },
        ],
    };
    let route = [LedgerId::new("e-hkd").unwrap(), LedgerId::new("e-cny").unwrap()];
    let entry = FeedEntry::from_subject(FeedKind::Screening, &subject, &route, &screening);
    assert_eq!(
        entry,
        FeedEntry {
            kind: FeedKind::Screening,
            payment_id: subject.payment.to_string(),
            participant: "bank-hk".into(),
            payer: "e-hkd/alice".into(),
            payee: "e-cny/wei".into(),
            originator_name: Some("Alice Chan".into()),
            originator_country: Some(jurisdiction("HK")),
            beneficiary_name: None,
            beneficiary_country: None,
            amounts: vec!["100.00 HKD".into(), "91.50 CNY".into()],
            route: vec!["e-hkd".into(), "e-cny".into()],
            decisions: vec![
                FeedDecision {
                    jurisdiction: jurisdiction("HK"),
                    hook: "single_payment_limit".into(),
                    outcome: DecisionOutcome::Allow,
                    code: None,
                    message: None,
                },
                FeedDecision {
                    jurisdiction: jurisdiction("CN"),
                    hook: "travel_rule".into(),
                    outcome: DecisionOutcome::Hold,
                    code: Some("MISSING_BENEFICIARY".into()),
                    message: Some("no name".into()),
                },
            ],
            status: None,
            reason_code: None,
        }
    );
    assert_eq!(status_name(corridor_schemas::PaymentStatus::Settled), "SETTLED");
}
