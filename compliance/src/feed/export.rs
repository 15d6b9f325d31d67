//! The export format (JSON lines) of one jurisdiction's feed: writing it ([`export_lines`]) and
//! reading it back ([`parse_lines`], [`FeedReader`]).
//!
//! Reading is a decoder of outside input: it never panics, bounds every line at
//! [`LINE_BYTES_MAX`], refuses unknown and duplicate keys (a key the hash does not cover must not
//! ride along unnoticed), and names the line of every failure. It checks form only; whether the
//! lines are a genuine feed is [`verify`](crate::feed::verify())'s job.

use std::io::BufRead;

use corridor_schemas::Jurisdiction;
use serde::{Deserialize, Serialize};

use crate::feed::checkpoint::Checkpoint;
use crate::feed::record::FeedRecord;

/// The longest line accepted, in bytes, without its line break. The chain refuses to append a
/// record that would be longer.
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// One line of an export: `{"record":{…}}` or `{"checkpoint":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedLine {
    Record(Box<FeedRecord>),
    Checkpoint(Checkpoint),
}

/// [`FeedLine`] by reference, for writing without copying; serialises identically.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FeedLineRef<'a> {
    Record(&'a FeedRecord),
    Checkpoint(&'a Checkpoint),
}

/// One line's JSON, without the line break.
pub(crate) fn json_line(line: &FeedLineRef<'_>) -> Result<String, serde_json::Error> {
    serde_json::to_string(line)
}

impl FeedLine {
    /// The line's JSON, without the line break.
    pub fn to_json(&self) -> Result<String, ExportError> {
        let line = match self {
            FeedLine::Record(record) => FeedLineRef::Record(record),
            FeedLine::Checkpoint(checkpoint) => FeedLineRef::Checkpoint(checkpoint),
        };
        json_line(&line).map_err(|error| ExportError::Unencodable { reason: error.to_string() })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("record {sequence} is of {found}; an export holds the feed of one jurisdiction, {expected}")]
    MixedJurisdictions { sequence: u64, expected: Jurisdiction, found: Jurisdiction },
    #[error("record {sequence} follows record {previous}; an export holds consecutive records")]
    NotConsecutive { sequence: u64, previous: u64 },
    #[error(
        "the checkpoint of {jurisdiction} for sequence {sequence} covers no record of the export and is not its anchor (the sequence before its first record)"
    )]
    CheckpointOutsideExport { jurisdiction: Jurisdiction, sequence: u64 },
    #[error("cannot be written as JSON: {reason}")]
    Unencodable { reason: String },
}

/// The export of `records` (consecutive, of one jurisdiction, in sequence order) with
/// `checkpoints` placed where a verifier expects them: each right after the record it covers, and
/// one covering the sequence just before the first record (the anchor of an export that does
/// not start at 1) before every record. Checkpoints covering the same record keep their order.
/// Every line ends with `\n`.
pub fn export_lines(records: &[FeedRecord], checkpoints: &[Checkpoint]) -> Result<String, ExportError> {
    let Some(first) = records.first() else {
        return match checkpoints.first() {
            None => Ok(String::new()),
            Some(checkpoint) => Err(ExportError::CheckpointOutsideExport {
                jurisdiction: checkpoint.jurisdiction.clone(),
                sequence: checkpoint.sequence,
            }),
        };
    };
    for pair in records.windows(2) {
        if pair[1].jurisdiction != first.jurisdiction {
            return Err(ExportError::MixedJurisdictions {
                sequence: pair[1].sequence,
                expected: first.jurisdiction.clone(),
                found: pair[1].jurisdiction.clone(),
            });
        }
        if pair[0].sequence.checked_add(1) != Some(pair[1].sequence) {
            return Err(ExportError::NotConsecutive { sequence: pair[1].sequence, previous: pair[0].sequence });
        }
    }
    let anchor_sequence = first.sequence.checked_sub(1);
    let last_sequence = records.last().map_or(first.sequence, |last| last.sequence);
    for checkpoint in checkpoints {
        let covered = (first.sequence..=last_sequence).contains(&checkpoint.sequence)
            || Some(checkpoint.sequence) == anchor_sequence;
        if checkpoint.jurisdiction != first.jurisdiction || !covered {
            return Err(ExportError::CheckpointOutsideExport {
                jurisdiction: checkpoint.jurisdiction.clone(),
                sequence: checkpoint.sequence,
            });
        }
    }
    let mut text = String::new();
    let mut push = |line: FeedLineRef<'_>| -> Result<(), ExportError> {
        text.push_str(&json_line(&line).map_err(|error| ExportError::Unencodable { reason: error.to_string() })?);
        text.push('\n');
        Ok(())
    };
    for checkpoint in checkpoints.iter().filter(|checkpoint| Some(checkpoint.sequence) == anchor_sequence) {
        push(FeedLineRef::Checkpoint(checkpoint))?;
    }
    for record in records {
        push(FeedLineRef::Record(record))?;
        for checkpoint in checkpoints.iter().filter(|checkpoint| checkpoint.sequence == record.sequence) {
            push(FeedLineRef::Checkpoint(checkpoint))?;
        }
    }
    Ok(text)
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineFailure {
    #[error("the line is {line_bytes} bytes long; at most {LINE_BYTES_MAX} allowed")]
    TooLong { line_bytes: usize },
    #[error("the line is longer than {LINE_BYTES_MAX} bytes")]
    TooLongToRead,
    #[error("the line is not UTF-8 text")]
    NotUtf8,
    #[error("the line is empty")]
    Empty,
    #[error("column {column}: {reason}")]
    Json { column: usize, reason: String },
    #[error("cannot read the line: {reason}")]
    Read { reason: String },
}

/// A line of an export that cannot be read; `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {failure}")]
pub struct ParseError {
    pub line: usize,
    pub failure: LineFailure,
}

/// Decodes line number `line` (counted from 1, for the error), without its line break.
pub fn parse_line(line: usize, text: &str) -> Result<FeedLine, ParseError> {
    let fail = |failure| ParseError { line, failure };
    if text.len() > LINE_BYTES_MAX {
        return Err(fail(LineFailure::TooLong { line_bytes: text.len() }));
    }
    if text.is_empty() {
        return Err(fail(LineFailure::Empty));
    }
    serde_json::from_str(text).map_err(|error| {
        // serde_json ends its message with the position; the line is ours to name, the column is
        // the useful part.
        let message = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let reason = message.strip_suffix(&position).unwrap_or(&message).to_owned();
        fail(LineFailure::Json { column: error.column(), reason })
    })
}

/// Decodes a whole export. Lines end with `\n` (a `\r` before it is dropped); the text may end
/// with one line break; an empty line anywhere else is an error.
pub fn parse_lines(text: &str) -> Result<Vec<FeedLine>, ParseError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .enumerate()
        .map(|(index, line)| parse_line(index + 1, line.strip_suffix('\r').unwrap_or(line)))
        .collect()
}

/// Decodes an export line by line from a reader, holding one line (at most [`LINE_BYTES_MAX`]) in
/// memory at a time. Yields `(line number, line)`; after the first error it yields nothing more.
#[derive(Debug)]
pub struct FeedReader<R> {
    reader: R,
    line: usize,
    buffer: Vec<u8>,
    done: bool,
}

impl<R: BufRead> FeedReader<R> {
    pub fn new(reader: R) -> Self {
        Self { reader, line: 0, buffer: Vec::new(), done: false }
    }

    fn next_line(&mut self) -> Option<Result<(usize, FeedLine), ParseError>> {
        self.buffer.clear();
        // Room for the longest line, a `\r` and the `\n`: anything longer is refused unread.
        const READ_BYTES_MAX: u64 = (LINE_BYTES_MAX as u64) + 2;
        let read = std::io::Read::take(&mut self.reader, READ_BYTES_MAX).read_until(b'\n', &mut self.buffer);
        self.line += 1;
        let fail = |failure| Some(Err(ParseError { line: self.line, failure }));
        match read {
            Err(error) => return fail(LineFailure::Read { reason: error.to_string() }),
            Ok(0) => return None,
            Ok(_) => {}
        }
        let mut bytes = &self.buffer[..];
        match bytes.strip_suffix(b"\n") {
            Some(line) => bytes = line,
            None if self.buffer.len() > LINE_BYTES_MAX + 1 => return fail(LineFailure::TooLongToRead),
            None => {}
        }
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let Ok(text) = std::str::from_utf8(bytes) else {
            return fail(LineFailure::NotUtf8);
        };
        Some(parse_line(self.line, text).map(|line| (self.line, line)))
    }
}

impl<R: BufRead> Iterator for FeedReader<R> {
    type Item = Result<(usize, FeedLine), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_line();
        self.done = !matches!(item, Some(Ok(_)));
        item
    }
}
