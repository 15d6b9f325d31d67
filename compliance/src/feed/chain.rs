//! [`FeedChain`]: one jurisdiction's chain head, and appending an entry to it.
//!
//! Pure: the chain assigns the sequence, `previous_hash` and `hash` and moves its head; it does not
//! store records, read clocks or sign anything. The caller persists each record before it treats
//! it as appended, and after a restart [`FeedChain::resume`]s from the last stored record.

use corridor_schemas::Jurisdiction;

use crate::feed::export::{FeedLineRef, LINE_BYTES_MAX, json_line};
use crate::feed::record::{FeedEntry, FeedHash, FeedRecord};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedChainError {
    #[error(
        "the feed of {jurisdiction} cannot resume at sequence 0 with head {head_hash}: an empty chain's head is 64 zeros"
    )]
    InconsistentHead { jurisdiction: Jurisdiction, head_hash: FeedHash },
    #[error("the feed of {jurisdiction} has used every sequence number")]
    SequenceExhausted { jurisdiction: Jurisdiction },
    #[error(
        "the record of payment `{payment_id}` would be a {line_bytes}-byte line; the feed allows at most {LINE_BYTES_MAX}"
    )]
    RecordTooLarge { payment_id: String, line_bytes: usize },
    #[error("the record of payment `{payment_id}` cannot be written as JSON: {reason}")]
    Unencodable { payment_id: String, reason: String },
}

/// The head of one jurisdiction's chain: the last sequence and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedChain {
    jurisdiction: Jurisdiction,
    last_sequence: u64,
    last_hash: FeedHash,
}

impl FeedChain {
    /// An empty chain: the first record appended is sequence 1.
    pub fn new(jurisdiction: Jurisdiction) -> Self {
        Self { jurisdiction, last_sequence: 0, last_hash: FeedHash::GENESIS }
    }

    /// The chain whose last record is `last_sequence` with hash `last_hash`; `(0, GENESIS)` is
    /// [`FeedChain::new`].
    pub fn resume(jurisdiction: Jurisdiction, last_sequence: u64, last_hash: FeedHash) -> Result<Self, FeedChainError> {
        if last_sequence == 0 && last_hash != FeedHash::GENESIS {
            return Err(FeedChainError::InconsistentHead { jurisdiction, head_hash: last_hash });
        }
        Ok(Self { jurisdiction, last_sequence, last_hash })
    }

    pub fn jurisdiction(&self) -> &Jurisdiction {
        &self.jurisdiction
    }

    /// The last sequence and its hash: `(0, GENESIS)` while empty.
    pub fn head(&self) -> (u64, FeedHash) {
        (self.last_sequence, self.last_hash)
    }

    /// Chains `entry` as the next record. On error nothing changes.
    ///
    /// Refuses an entry whose export line would be longer than [`LINE_BYTES_MAX`]: a record no
    /// verifier would read must never enter the chain.
    pub fn append(&mut self, entry: FeedEntry, recorded_at_ms: u64) -> Result<FeedRecord, FeedChainError> {
        let Some(sequence) = self.last_sequence.checked_add(1) else {
            return Err(FeedChainError::SequenceExhausted { jurisdiction: self.jurisdiction.clone() });
        };
        let mut record = FeedRecord {
            jurisdiction: self.jurisdiction.clone(),
            sequence,
            recorded_at_ms,
            entry,
            previous_hash: self.last_hash,
            hash: FeedHash::GENESIS,
        };
        record.hash = record.computed_hash();
        let line_bytes = match json_line(&FeedLineRef::Record(&record)) {
            Ok(line) => line.len(),
            Err(error) => {
                return Err(FeedChainError::Unencodable {
                    payment_id: record.entry.payment_id,
                    reason: error.to_string(),
                });
            }
        };
        if line_bytes > LINE_BYTES_MAX {
            return Err(FeedChainError::RecordTooLarge { payment_id: record.entry.payment_id, line_bytes });
        }
        self.last_sequence = sequence;
        self.last_hash = record.hash;
        Ok(record)
    }
}
