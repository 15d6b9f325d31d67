//! Offline verification of an exported feed: [`verify`] and [`verify_range`] (lines in memory),
//! [`verify_reader`] and [`verify_range_reader`] (streaming, constant memory), and the
//! [`FeedVerifier`] underneath them.
//!
//! Checks, line by line, in this order — a record: its jurisdiction is the feed's, its sequence
//! follows the one before (or is 1, or, in a range, follows the anchor checkpoint), its `hash` is
//! the hash of its content, its `previous_hash` is the hash before it (64 zeros for sequence 1).
//! A checkpoint: its jurisdiction is the feed's, its key is trusted, its signature is valid, it
//! covers the last record before it, and its `head_hash` is that record's hash. The first failure
//! ends the check and names the line, the sequence and the likely tampering. This module does not
//! fetch keys or checkpoints: the caller supplies what it trusts.
//!
//! What verification cannot see, stated in the [`VerifyReport`]: records after the last checkpoint
//! are protected by the chain only, so the last of them may be dropped, or the very last altered
//! with its hash recomputed, unnoticed. A regulator holding a later checkpoint (from the live
//! feed) inserts it after the record it covers, or appends it, to close that gap.

use std::fmt;
use std::io::BufRead;

use corridor_schemas::Jurisdiction;

use crate::feed::checkpoint::{Checkpoint, FeedPublicKey, KeyId, verify_checkpoint};
use crate::feed::export::{FeedLine, FeedReader, ParseError};
use crate::feed::record::{FeedHash, FeedRecord};

/// Where and how an export fails verification. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the feed is empty: no records and no checkpoints")]
    Empty,
    #[error("line {line}, sequence {sequence}: a record of {found} in the feed of {expected} (feeds mixed)")]
    RecordJurisdiction { line: usize, sequence: u64, expected: Jurisdiction, found: Jurisdiction },
    #[error(
        "checkpoint at line {line} for sequence {sequence}: it is of {found}, in the feed of {expected} (feeds mixed)"
    )]
    CheckpointJurisdiction { line: usize, sequence: u64, expected: Jurisdiction, found: Jurisdiction },
    #[error("line {line}: sequence 0 (sequences start at 1)")]
    SequenceZero { line: usize },
    #[error("line {line}: the feed starts at sequence {sequence}, not 1 ({} removed)", removed(1, .sequence.saturating_sub(1)))]
    NotFromStart { line: usize, sequence: u64 },
    #[error(
        "checkpoint at line {line} for sequence {sequence} comes before any record, but a whole feed starts at sequence 1 ({} removed, or a range export checked as a whole feed)",
        removed(1, *.sequence)
    )]
    AnchorInWholeFeed { line: usize, sequence: u64 },
    #[error(
        "line {line}: the range starts at sequence {sequence} with no checkpoint for sequence {} before it ({} removed, or the range exported without its anchor checkpoint)",
        .sequence.saturating_sub(1), removed(1, .sequence.saturating_sub(1))
    )]
    Unanchored { line: usize, sequence: u64 },
    #[error("line {line}: sequence {sequence} follows {previous} ({})", out_of_sequence(.previous, .sequence))]
    OutOfSequence { line: usize, sequence: u64, previous: u64 },
    #[error("line {line}, sequence {sequence}: hash does not match the record's content (record altered)")]
    HashMismatch { line: usize, sequence: u64 },
    #[error("line {line}, sequence 1: previous_hash is not 64 zeros, as the first record's must be (record altered)")]
    GenesisLink { line: usize },
    #[error(
        "line {line}, sequence {sequence}: previous_hash is not the hash of sequence {} at line {previous_line} (record {} altered and its hash recomputed, or this record's link altered)",
        .sequence.saturating_sub(1), .sequence.saturating_sub(1)
    )]
    BrokenLink { line: usize, sequence: u64, previous_line: usize },
    #[error(
        "line {line}, sequence {sequence}: previous_hash is not the head_hash of the checkpoint at line {checkpoint_line} (record altered, or the wrong anchor)"
    )]
    AnchorLink { line: usize, sequence: u64, checkpoint_line: usize },
    #[error("checkpoint at line {line} for sequence {sequence}: signed by key {key_id}, which is not a trusted key")]
    UntrustedKey { line: usize, sequence: u64, key_id: KeyId },
    #[error("checkpoint at line {line} for sequence {sequence}: signature invalid (checkpoint forged or altered)")]
    BadSignature { line: usize, sequence: u64 },
    #[error(
        "checkpoint at line {line} covers sequence {sequence}, but the feed before it ends at sequence {feed_end} ({} removed)",
        removed(.feed_end.saturating_add(1), *.sequence)
    )]
    CheckpointBeyondFeed { line: usize, sequence: u64, feed_end: u64 },
    #[error(
        "checkpoint at line {line} covers sequence {sequence}, but the feed before it already reached sequence {feed_end} (a checkpoint goes right after the record it covers: checkpoint moved, or records reordered)"
    )]
    CheckpointMisplaced { line: usize, sequence: u64, feed_end: u64 },
    #[error(
        "checkpoint at line {line} for sequence {sequence}: head_hash is not the hash of the record at line {record_line} (records up to {sequence} altered)"
    )]
    CheckpointHeadMismatch { line: usize, sequence: u64, record_line: usize },
    #[error(
        "checkpoint at line {line} for sequence {sequence}: head_hash differs from the checkpoint at line {other_line} for the same sequence"
    )]
    CheckpointsDisagree { line: usize, sequence: u64, other_line: usize },
}

fn removed(first: u64, last: u64) -> String {
    if first == last { format!("record {first}") } else { format!("records {first} to {last}") }
}

fn out_of_sequence(previous: &u64, sequence: &u64) -> String {
    if sequence <= previous {
        "records repeated or reordered".to_owned()
    } else {
        format!("{} removed, or records reordered", removed(previous.saturating_add(1), sequence.saturating_sub(1)))
    }
}

impl VerifyError {
    /// The line verification failed at (none for an empty feed).
    pub fn line(&self) -> Option<usize> {
        match self {
            VerifyError::Empty => None,
            VerifyError::RecordJurisdiction { line, .. }
            | VerifyError::CheckpointJurisdiction { line, .. }
            | VerifyError::SequenceZero { line }
            | VerifyError::NotFromStart { line, .. }
            | VerifyError::AnchorInWholeFeed { line, .. }
            | VerifyError::Unanchored { line, .. }
            | VerifyError::OutOfSequence { line, .. }
            | VerifyError::HashMismatch { line, .. }
            | VerifyError::GenesisLink { line }
            | VerifyError::BrokenLink { line, .. }
            | VerifyError::AnchorLink { line, .. }
            | VerifyError::UntrustedKey { line, .. }
            | VerifyError::BadSignature { line, .. }
            | VerifyError::CheckpointBeyondFeed { line, .. }
            | VerifyError::CheckpointMisplaced { line, .. }
            | VerifyError::CheckpointHeadMismatch { line, .. }
            | VerifyError::CheckpointsDisagree { line, .. } => Some(*line),
        }
    }
}

/// A feed that could not be read, or was read and did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedCheckError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub jurisdiction: Jurisdiction,
    pub records: u64,
    /// The first and last record's sequence (none if the export holds only checkpoints).
    pub first_sequence: Option<u64>,
    pub last_sequence: Option<u64>,
    pub checkpoints_verified: u64,
    /// The sequence the last checkpoint covers, and when it was signed.
    pub last_checkpointed_sequence: Option<u64>,
    pub last_checkpoint_signed_at_ms: Option<u64>,
    /// Records after the last checkpoint, protected by the chain only.
    pub records_after_last_checkpoint: u64,
}

fn count(number: u64, singular: &str, plural: &str) -> String {
    if number == 1 { format!("1 {singular}") } else { format!("{number} {plural}") }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let records = count(self.records, "record", "records");
        match (self.first_sequence, self.last_sequence) {
            (Some(first), Some(last)) => {
                write!(f, "feed of {} verified: {records}, sequences {first} to {last}", self.jurisdiction)?
            }
            _ => write!(f, "feed of {} verified: no records", self.jurisdiction)?,
        }
        let checkpoints = count(self.checkpoints_verified, "signed checkpoint", "signed checkpoints");
        match (self.last_checkpointed_sequence, self.last_checkpoint_signed_at_ms) {
            (Some(sequence), Some(signed_at_ms)) => {
                write!(f, "; {checkpoints}, the last for sequence {sequence} (signed at {signed_at_ms} ms)")?
            }
            _ => write!(f, "; no signed checkpoint")?,
        }
        match self.records_after_last_checkpoint {
            0 => write!(f, "; every record is covered by a signed checkpoint"),
            uncovered => write!(
                f,
                "; {} after the last checkpoint covered by no signature",
                count(uncovered, "record", "records")
            ),
        }
    }
}

/// What an export must start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedStart {
    /// The whole feed: record 1 first (a checkpoint of the empty feed, sequence 0, may precede it).
    /// Removing the first records is then detected like any other removal.
    Whole,
    /// A range: record 1, or record k + 1 after an anchor checkpoint for sequence k. The report's
    /// `first_sequence` says where it starts; that nothing before it was removed is beyond what
    /// the range can show.
    Range,
}

/// Where the chain stands after the lines pushed so far.
#[derive(Debug, Clone, Copy)]
struct Head {
    sequence: u64,
    hash: FeedHash,
    line: usize,
    /// Set by a checkpoint before the first record (the anchor), not by a record.
    anchor: bool,
}

/// Checks an export line by line; [`FeedVerifier::finish`] gives the report.
#[derive(Debug, Clone)]
pub struct FeedVerifier {
    trusted_keys: Vec<FeedPublicKey>,
    start: FeedStart,
    jurisdiction: Option<Jurisdiction>,
    head: Option<Head>,
    first_sequence: Option<u64>,
    records: u64,
    checkpoints_verified: u64,
    last_checkpoint: Option<(u64, u64)>,
}

impl FeedVerifier {
    /// Checkpoints must be signed by one of `trusted_keys` (several while a key is rotated); the
    /// export must start as `start` says.
    pub fn new(trusted_keys: &[FeedPublicKey], start: FeedStart) -> Self {
        Self {
            trusted_keys: trusted_keys.to_vec(),
            start,
            jurisdiction: None,
            head: None,
            first_sequence: None,
            records: 0,
            checkpoints_verified: 0,
            last_checkpoint: None,
        }
    }

    /// Checks the next line; `line` is its number in the export, for errors. After an error the
    /// verifier is left as it was before the line.
    pub fn push(&mut self, line: usize, feed_line: &FeedLine) -> Result<(), VerifyError> {
        match feed_line {
            FeedLine::Record(record) => self.push_record(line, record),
            FeedLine::Checkpoint(checkpoint) => self.push_checkpoint(line, checkpoint),
        }
    }

    fn push_record(&mut self, line: usize, record: &FeedRecord) -> Result<(), VerifyError> {
        let sequence = record.sequence;
        if let Some(expected) = &self.jurisdiction
            && *expected != record.jurisdiction
        {
            return Err(VerifyError::RecordJurisdiction {
                line,
                sequence,
                expected: expected.clone(),
                found: record.jurisdiction.clone(),
            });
        }
        if sequence == 0 {
            return Err(VerifyError::SequenceZero { line });
        }
        match self.head {
            None if sequence != 1 && self.start == FeedStart::Whole => {
                return Err(VerifyError::NotFromStart { line, sequence });
            }
            None if sequence != 1 => return Err(VerifyError::Unanchored { line, sequence }),
            Some(head) if head.sequence.checked_add(1) != Some(sequence) => {
                return Err(VerifyError::OutOfSequence { line, sequence, previous: head.sequence });
            }
            _ => {}
        }
        if record.computed_hash() != record.hash {
            return Err(VerifyError::HashMismatch { line, sequence });
        }
        if sequence == 1 && record.previous_hash != FeedHash::GENESIS {
            return Err(VerifyError::GenesisLink { line });
        }
        match self.head {
            Some(head) if head.hash != record.previous_hash && head.anchor => {
                return Err(VerifyError::AnchorLink { line, sequence, checkpoint_line: head.line });
            }
            Some(head) if head.hash != record.previous_hash => {
                return Err(VerifyError::BrokenLink { line, sequence, previous_line: head.line });
            }
            _ => {}
        }
        self.jurisdiction.get_or_insert_with(|| record.jurisdiction.clone());
        self.first_sequence.get_or_insert(sequence);
        self.head = Some(Head { sequence, hash: record.hash, line, anchor: false });
        self.records += 1;
        Ok(())
    }

    fn push_checkpoint(&mut self, line: usize, checkpoint: &Checkpoint) -> Result<(), VerifyError> {
        let sequence = checkpoint.sequence;
        if let Some(expected) = &self.jurisdiction
            && *expected != checkpoint.jurisdiction
        {
            return Err(VerifyError::CheckpointJurisdiction {
                line,
                sequence,
                expected: expected.clone(),
                found: checkpoint.jurisdiction.clone(),
            });
        }
        let Some(key) = self.trusted_keys.iter().find(|key| key.key_id() == checkpoint.key_id) else {
            return Err(VerifyError::UntrustedKey { line, sequence, key_id: checkpoint.key_id });
        };
        if verify_checkpoint(checkpoint, key).is_err() {
            return Err(VerifyError::BadSignature { line, sequence });
        }
        match self.head {
            None if sequence != 0 && self.start == FeedStart::Whole => {
                return Err(VerifyError::AnchorInWholeFeed { line, sequence });
            }
            None => {}
            Some(head) if sequence > head.sequence => {
                return Err(VerifyError::CheckpointBeyondFeed { line, sequence, feed_end: head.sequence });
            }
            Some(head) if sequence < head.sequence => {
                return Err(VerifyError::CheckpointMisplaced { line, sequence, feed_end: head.sequence });
            }
            Some(head) if head.hash != checkpoint.head_hash && head.anchor => {
                return Err(VerifyError::CheckpointsDisagree { line, sequence, other_line: head.line });
            }
            Some(head) if head.hash != checkpoint.head_hash => {
                return Err(VerifyError::CheckpointHeadMismatch { line, sequence, record_line: head.line });
            }
            Some(_) => {}
        }
        if self.head.is_none() {
            self.head = Some(Head { sequence, hash: checkpoint.head_hash, line, anchor: true });
        }
        self.jurisdiction.get_or_insert_with(|| checkpoint.jurisdiction.clone());
        self.checkpoints_verified += 1;
        self.last_checkpoint = Some((sequence, checkpoint.signed_at_ms));
        Ok(())
    }

    /// The report, once every line has been pushed.
    pub fn finish(self) -> Result<VerifyReport, VerifyError> {
        let Some(jurisdiction) = self.jurisdiction else {
            return Err(VerifyError::Empty);
        };
        let last_sequence = self.head.filter(|head| !head.anchor).map(|head| head.sequence);
        let last_checkpointed_sequence = self.last_checkpoint.map(|(sequence, _)| sequence);
        let records_after_last_checkpoint = match (last_sequence, last_checkpointed_sequence) {
            (Some(last), Some(checkpointed)) => last.saturating_sub(checkpointed),
            (Some(_), None) => self.records,
            (None, _) => 0,
        };
        Ok(VerifyReport {
            jurisdiction,
            records: self.records,
            first_sequence: self.first_sequence,
            last_sequence,
            checkpoints_verified: self.checkpoints_verified,
            last_checkpointed_sequence,
            last_checkpoint_signed_at_ms: self.last_checkpoint.map(|(_, signed_at_ms)| signed_at_ms),
            records_after_last_checkpoint,
        })
    }
}

/// Verifies the export of a whole feed held in memory; line numbers are positions in `lines`,
/// from 1 (as [`parse_lines`](crate::feed::parse_lines) numbers them).
pub fn verify(lines: &[FeedLine], trusted_keys: &[FeedPublicKey]) -> Result<VerifyReport, VerifyError> {
    verify_lines(lines, trusted_keys, FeedStart::Whole)
}

/// Verifies the export of a range of a feed held in memory ([`FeedStart::Range`]).
pub fn verify_range(lines: &[FeedLine], trusted_keys: &[FeedPublicKey]) -> Result<VerifyReport, VerifyError> {
    verify_lines(lines, trusted_keys, FeedStart::Range)
}

fn verify_lines(
    lines: &[FeedLine],
    trusted_keys: &[FeedPublicKey],
    start: FeedStart,
) -> Result<VerifyReport, VerifyError> {
    let mut verifier = FeedVerifier::new(trusted_keys, start);
    for (index, line) in lines.iter().enumerate() {
        verifier.push(index + 1, line)?;
    }
    verifier.finish()
}

/// Reads and verifies the export of a whole feed from `reader`, one line in memory at a time.
pub fn verify_reader<R: BufRead>(reader: R, trusted_keys: &[FeedPublicKey]) -> Result<VerifyReport, FeedCheckError> {
    verify_lines_read(reader, trusted_keys, FeedStart::Whole)
}

/// Reads and verifies the export of a range of a feed ([`FeedStart::Range`]) from `reader`.
pub fn verify_range_reader<R: BufRead>(
    reader: R,
    trusted_keys: &[FeedPublicKey],
) -> Result<VerifyReport, FeedCheckError> {
    verify_lines_read(reader, trusted_keys, FeedStart::Range)
}

fn verify_lines_read<R: BufRead>(
    reader: R,
    trusted_keys: &[FeedPublicKey],
    start: FeedStart,
) -> Result<VerifyReport, FeedCheckError> {
    let mut verifier = FeedVerifier::new(trusted_keys, start);
    for item in FeedReader::new(reader) {
        let (line, feed_line) = item?;
        verifier.push(line, &feed_line)?;
    }
    Ok(verifier.finish()?)
}
