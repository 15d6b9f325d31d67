//! Property: in any feed whose last record is covered by a signed checkpoint, any single record
//! removed, any two records swapped, and any one record altered (with or without its hash
//! recomputed) fails verification — at the line where the tampering is, or, for an alteration
//! whose hash was recomputed, at the line right after it. And the reader, a decoder of outside
//! input, never panics: any bytes are decoded or refused, and no single changed byte of an export
//! verifies unless every line still reads as it was. Random entries, random chain lengths, random
//! checkpoint positions; only the public API.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::sync::LazyLock;

use corridor_compliance::feed::{
    Checkpoint, DecisionOutcome, FeedChain, FeedDecision, FeedEntry, FeedHash, FeedKind, FeedLine, FeedReader,
    FeedRecord, FeedSigner, export_lines, parse_lines, verify, verify_reader,
};
use corridor_schemas::Jurisdiction;
use proptest::prelude::*;

static SIGNER: LazyLock<FeedSigner> = LazyLock::new(|| FeedSigner::generate().unwrap().0);

fn jurisdiction(code: &str) -> Jurisdiction {
    Jurisdiction::new(code).unwrap()
}

fn text() -> impl Strategy<Value = String> {
    // Printable text, quotes, backslashes, control characters and non-ASCII: JSON escapes must not
    // matter to the hash.
    prop::string::string_regex("[a-zA-Z0-9 \"\\\\/\t\n\u{0}é陳🙂-]{0,12}").unwrap()
}

fn decision() -> impl Strategy<Value = FeedDecision> {
    (
        prop::sample::select(vec!["HK", "CN", "TH", "AE"]),
        text(),
        prop::sample::select(vec![DecisionOutcome::Allow, DecisionOutcome::Deny, DecisionOutcome::Hold]),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(code, hook, outcome, reason_code, message)| FeedDecision {
            jurisdiction: jurisdiction(code),
            hook,
            outcome,
            code: reason_code,
            message,
        })
}

fn entry() -> impl Strategy<Value = FeedEntry> {
    (
        (any::<bool>(), text(), text(), text(), text()),
        (proptest::option::of(text()), proptest::option::of(text())),
        (prop::collection::vec(text(), 0..4), prop::collection::vec(text(), 0..4)),
        prop::collection::vec(decision(), 0..4),
        (proptest::option::of(text()), proptest::option::of(text())),
    )
        .prop_map(
            |(
                (is_outcome, payment_id, participant, payer, payee),
                (originator_name, beneficiary_name),
                (amounts, route),
                decisions,
                (status, reason_code),
            )| FeedEntry {
                kind: if is_outcome { FeedKind::Outcome } else { FeedKind::Screening },
                payment_id,
                participant,
                payer,
                payee,
                originator_name,
                originator_country: Some(jurisdiction("HK")),
                beneficiary_name,
                beneficiary_country: None,
                amounts,
                route,
                decisions,
                status,
                reason_code,
            },
        )
}

/// Entries, and for each whether a checkpoint follows it (the last one always has one).
fn feed() -> impl Strategy<Value = Vec<(FeedEntry, bool)>> {
    prop::collection::vec((entry(), any::<bool>()), 2..24)
}

#[derive(Debug, Clone)]
enum Alteration {
    Amounts,
    Status,
    DecisionCode,
    Payee,
    Kind,
    RecordedAt,
    Sequence(u64),
    Jurisdiction,
    PreviousHash,
    Hash,
}

fn alteration() -> impl Strategy<Value = Alteration> {
    prop_oneof![
        Just(Alteration::Amounts),
        Just(Alteration::Status),
        Just(Alteration::DecisionCode),
        Just(Alteration::Payee),
        Just(Alteration::Kind),
        Just(Alteration::RecordedAt),
        (1u64..5).prop_map(Alteration::Sequence),
        Just(Alteration::Jurisdiction),
        Just(Alteration::PreviousHash),
        Just(Alteration::Hash),
    ]
}

fn alter(record: &mut FeedRecord, alteration: &Alteration) {
    let entry = &mut record.entry;
    match alteration {
        Alteration::Amounts => entry.amounts.push("0.01 HKD".into()),
        Alteration::Status => entry.status = Some(format!("{}-ALTERED", entry.status.clone().unwrap_or_default())),
        Alteration::DecisionCode => entry.decisions.push(FeedDecision {
            jurisdiction: jurisdiction("HK"),
            hook: "inserted".into(),
            outcome: DecisionOutcome::Allow,
            code: None,
            message: None,
        }),
        Alteration::Payee => entry.payee.push('x'),
        Alteration::Kind => {
            entry.kind = match entry.kind {
                FeedKind::Screening => FeedKind::Outcome,
                FeedKind::Outcome => FeedKind::Screening,
            }
        }
        Alteration::RecordedAt => record.recorded_at_ms += 1,
        Alteration::Sequence(offset) => record.sequence += offset,
        Alteration::Jurisdiction => record.jurisdiction = jurisdiction("ZZ"),
        Alteration::PreviousHash => {
            let mut bytes = *record.previous_hash.as_bytes();
            bytes[31] ^= 0x80;
            record.previous_hash = FeedHash::from_bytes(bytes);
        }
        Alteration::Hash => {
            let mut bytes = *record.hash.as_bytes();
            bytes[0] ^= 1;
            record.hash = FeedHash::from_bytes(bytes);
        }
    }
}

/// The export text of `entries`.
fn export_text(entries: &[(FeedEntry, bool)]) -> String {
    let mut chain = FeedChain::new(jurisdiction("HK"));
    let mut records = Vec::new();
    let mut checkpoints: Vec<Checkpoint> = Vec::new();
    for (index, (entry, checkpointed)) in entries.iter().enumerate() {
        let at_ms = 1_760_000_000_000 + u64::try_from(index).unwrap();
        records.push(chain.append(entry.clone(), at_ms).unwrap());
        if *checkpointed || index + 1 == entries.len() {
            checkpoints.push(SIGNER.sign_head(&chain, at_ms));
        }
    }
    export_lines(&records, &checkpoints).unwrap()
}

/// The export of `entries` as a verifier reads it, and the line index of each record.
fn export(entries: &[(FeedEntry, bool)]) -> (Vec<FeedLine>, Vec<usize>) {
    let lines = parse_lines(&export_text(entries)).unwrap();
    let record_indices = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| matches!(line, FeedLine::Record(_)))
        .map(|(index, _)| index)
        .collect();
    (lines, record_indices)
}

fn record_at(lines: &mut [FeedLine], index: usize) -> &mut FeedRecord {
    match &mut lines[index] {
        FeedLine::Record(record) => record,
        FeedLine::Checkpoint(_) => unreachable!("indices come from records"),
    }
}

/// Verification fails, at `line` (counted from 1).
fn fails_at(lines: &[FeedLine], line: usize) -> Result<(), TestCaseError> {
    match verify(lines, &[SIGNER.public_key()]) {
        Ok(report) => Err(TestCaseError::fail(format!("tampering undetected: {report}"))),
        Err(error) => {
            prop_assert_eq!(error.line(), Some(line), "{}", error);
            Ok(())
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn an_untouched_feed_verifies_and_round_trips(entries in feed()) {
        let (lines, record_indices) = export(&entries);
        let report = verify(&lines, &[SIGNER.public_key()]).unwrap();
        prop_assert_eq!(report.records, u64::try_from(entries.len()).unwrap());
        prop_assert_eq!(report.records_after_last_checkpoint, 0);
        for (index, (entry, _)) in record_indices.iter().zip(&entries) {
            let FeedLine::Record(record) = &lines[*index] else { unreachable!() };
            prop_assert_eq!(&record.entry, entry);
        }
    }

    #[test]
    fn a_removed_record_is_detected_where_it_was(entries in feed(), pick in any::<prop::sample::Index>()) {
        let (mut lines, record_indices) = export(&entries);
        let removed = record_indices[pick.index(record_indices.len())];
        lines.remove(removed);
        fails_at(&lines, removed + 1)?;
    }

    #[test]
    fn swapped_records_are_detected_at_the_first(
        entries in feed(),
        first in any::<prop::sample::Index>(),
        second in any::<prop::sample::Index>(),
    ) {
        let (mut lines, record_indices) = export(&entries);
        let (first, second) = (first.index(record_indices.len()), second.index(record_indices.len()));
        prop_assume!(first != second);
        let (first, second) = (record_indices[first.min(second)], record_indices[first.max(second)]);
        lines.swap(first, second);
        fails_at(&lines, first + 1)?;
    }

    #[test]
    fn an_altered_record_is_detected_at_that_record(
        entries in feed(),
        pick in any::<prop::sample::Index>(),
        alteration in alteration(),
    ) {
        let (mut lines, record_indices) = export(&entries);
        let altered = record_indices[pick.index(record_indices.len())];
        alter(record_at(&mut lines, altered), &alteration);
        fails_at(&lines, altered + 1)?;
    }

    #[test]
    fn an_altered_record_with_its_hash_recomputed_is_detected_at_the_next_line(
        entries in feed(),
        pick in any::<prop::sample::Index>(),
        alteration in alteration().prop_filter("the hash is recomputed", |alteration| {
            !matches!(alteration, Alteration::Hash | Alteration::Sequence(_) | Alteration::Jurisdiction)
        }),
    ) {
        let (mut lines, record_indices) = export(&entries);
        let altered = record_indices[pick.index(record_indices.len())];
        let record = record_at(&mut lines, altered);
        alter(record, &alteration);
        record.hash = record.computed_hash();
        // A changed previous_hash breaks this record's own link; anything else the next line's.
        let expected_line = if matches!(alteration, Alteration::PreviousHash) { altered + 1 } else { altered + 2 };
        fails_at(&lines, expected_line)?;
    }

    #[test]
    fn any_bytes_are_decoded_or_refused_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        for item in FeedReader::new(&bytes[..]) {
            if let Err(error) = item {
                prop_assert!(error.line >= 1);
            }
        }
        let _ = verify_reader(&bytes[..], &[SIGNER.public_key()]);
    }

    #[test]
    fn one_changed_byte_never_verifies_unless_nothing_it_says_changed(
        entries in feed(),
        pick in any::<prop::sample::Index>(),
        replacement in any::<u8>(),
    ) {
        let text = export_text(&entries);
        let mut bytes = text.clone().into_bytes();
        let position = pick.index(bytes.len());
        prop_assume!(bytes[position] != replacement);
        bytes[position] = replacement;
        if verify_reader(&bytes[..], &[SIGNER.public_key()]).is_ok() {
            // Only a change JSON ignores can pass, e.g. the final line break turned into a space.
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(parse_lines(&changed).unwrap(), parse_lines(&text).unwrap());
        }
    }
}
