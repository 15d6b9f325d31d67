//! What the feed records: the router's [`FeedEntry`] about one payment, chained into a
//! [`FeedRecord`] of one jurisdiction, and the canonical encoding its hash is computed over.
//!
//! The hash covers values, not JSON text: a verifier parses a record, re-encodes its fields with
//! [`FeedRecord::canonical_encoding`] (specified in the [`feed`](crate::feed) module docs) and
//! hashes that, so re-indented or key-reordered JSON still verifies and no JSON canonicalisation
//! is needed to re-implement the check. This module does not chain records (that is
//! [`FeedChain`](crate::feed::FeedChain)) and does not validate the free-text fields: the feed
//! records what the router saw, in the router's words.

use std::fmt;

use corridor_schemas::{Jurisdiction, LedgerId, PaymentStatus};
use ring::digest;
use serde::{Deserialize, Serialize};

use crate::feed::hex::hex_newtype_serde;
use crate::pipeline::{Decision, HookDecision, Screening, Subject};

/// The domain tag every record hash input starts with. A new encoding gets a new tag.
pub const RECORD_HASH_DOMAIN: &[u8] = b"corridor-feed-record/v1\n";

/// A SHA-256 hash, written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedHash([u8; 32]);

hex_newtype_serde!(FeedHash, 32);

impl FeedHash {
    /// The `previous_hash` of sequence 1: 32 zero bytes.
    pub const GENESIS: FeedHash = FeedHash([0; 32]);

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// SHA-256 of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Self {
        let mut hash = [0u8; 32];
        hash.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
        Self(hash)
    }
}

impl fmt::Debug for FeedHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FeedHash({self})")
    }
}

/// Which moment of a payment a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FeedKind {
    /// The compliance decisions: the hooks' before any money is held, or a compliance officer's
    /// on a held payment.
    Screening,
    /// The payment's final status: settled, rejected, failed.
    Outcome,
}

impl FeedKind {
    /// The text the JSON and the hash input use.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedKind::Screening => "SCREENING",
            FeedKind::Outcome => "OUTCOME",
        }
    }
}

/// What one hook decided, as the feed writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DecisionOutcome {
    Allow,
    Deny,
    Hold,
}

impl DecisionOutcome {
    /// The text the JSON and the hash input use.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionOutcome::Allow => "ALLOW",
            DecisionOutcome::Deny => "DENY",
            DecisionOutcome::Hold => "HOLD",
        }
    }
}

/// One hook's decision about the payment. `code` and `message` are the hook's reason, absent for
/// an allow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedDecision {
    pub jurisdiction: Jurisdiction,
    pub hook: String,
    pub outcome: DecisionOutcome,
    pub code: Option<String>,
    pub message: Option<String>,
}

impl From<&HookDecision> for FeedDecision {
    fn from(decision: &HookDecision) -> Self {
        let (outcome, reason) = match &decision.decision {
            Decision::Allow => (DecisionOutcome::Allow, None),
            Decision::Deny(reason) => (DecisionOutcome::Deny, Some(reason)),
            Decision::Hold(reason) => (DecisionOutcome::Hold, Some(reason)),
        };
        FeedDecision {
            jurisdiction: decision.jurisdiction.clone(),
            hook: decision.hook.to_owned(),
            outcome,
            code: reason.map(|reason| reason.code.to_owned()),
            message: reason.map(|reason| reason.message.clone()),
        }
    }
}

/// What the router says about one payment; the chain adds where it sits ([`FeedRecord`]).
///
/// Identifiers, addresses and amounts are plain text on purpose: a feed is an archive, and a
/// record written today must still parse after the validation rules of these types change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedEntry {
    pub kind: FeedKind,
    pub payment_id: String,
    /// The participant that submitted the payment.
    pub participant: String,
    /// `ledger/account`.
    pub payer: String,
    pub payee: String,
    pub originator_name: Option<String>,
    pub originator_country: Option<Jurisdiction>,
    pub beneficiary_name: Option<String>,
    pub beneficiary_country: Option<Jurisdiction>,
    /// The amount on each ledger of the route, in route order, e.g. `100.00 HKD`.
    pub amounts: Vec<String>,
    /// The ledgers of the route, in order.
    pub route: Vec<String>,
    pub decisions: Vec<FeedDecision>,
    /// `SETTLED`, `REJECTED`, `FAILED`, `HELD`… ([`status_name`]); absent on a screening that
    /// decided nothing final.
    pub status: Option<String>,
    pub reason_code: Option<String>,
}

impl FeedEntry {
    /// An entry with the parties, amounts, route and decisions of a screened payment; `status` and
    /// `reason_code` are left for the caller.
    pub fn from_subject(kind: FeedKind, subject: &Subject<'_>, route: &[LedgerId], screening: &Screening) -> Self {
        FeedEntry {
            kind,
            payment_id: subject.payment.to_string(),
            participant: subject.participant.to_string(),
            payer: subject.payer.to_string(),
            payee: subject.payee.to_string(),
            originator_name: subject.originator.and_then(|party| party.name.clone()),
            originator_country: subject.originator.and_then(|party| party.country.clone()),
            beneficiary_name: subject.beneficiary.and_then(|party| party.name.clone()),
            beneficiary_country: subject.beneficiary.and_then(|party| party.country.clone()),
            amounts: subject.amounts.iter().map(ToString::to_string).collect(),
            route: route.iter().map(ToString::to_string).collect(),
            decisions: screening.decisions.iter().map(FeedDecision::from).collect(),
            status: None,
            reason_code: None,
        }
    }
}

/// The feed's name for a payment status.
pub fn status_name(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Pending => "PENDING",
        PaymentStatus::Held => "HELD",
        PaymentStatus::Settled => "SETTLED",
        PaymentStatus::Rejected => "REJECTED",
        PaymentStatus::Failed => "FAILED",
    }
}

/// One entry at its place in one jurisdiction's chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedRecord {
    pub jurisdiction: Jurisdiction,
    /// From 1, without gaps, per jurisdiction.
    pub sequence: u64,
    /// When the router appended the record (unix milliseconds, the router's clock). Order is the
    /// sequence; time may step back when the clock does.
    pub recorded_at_ms: u64,
    pub entry: FeedEntry,
    /// The `hash` of the record before this one in the same jurisdiction ([`FeedHash::GENESIS`] for
    /// sequence 1).
    pub previous_hash: FeedHash,
    /// SHA-256 of [`FeedRecord::canonical_encoding`].
    pub hash: FeedHash,
}

impl FeedRecord {
    /// The bytes `hash` is computed over: [`RECORD_HASH_DOMAIN`], then every field except `hash`,
    /// as the module docs specify.
    pub fn canonical_encoding(&self) -> Vec<u8> {
        let mut encoder = Encoder(Vec::with_capacity(512));
        encoder.0.extend_from_slice(RECORD_HASH_DOMAIN);
        encoder.text(self.jurisdiction.as_str());
        encoder.number(self.sequence);
        encoder.number(self.recorded_at_ms);
        encoder.0.extend_from_slice(self.previous_hash.as_bytes());
        let entry = &self.entry;
        encoder.text(entry.kind.as_str());
        encoder.text(&entry.payment_id);
        encoder.text(&entry.participant);
        encoder.text(&entry.payer);
        encoder.text(&entry.payee);
        encoder.optional_text(entry.originator_name.as_deref());
        encoder.optional_text(entry.originator_country.as_ref().map(Jurisdiction::as_str));
        encoder.optional_text(entry.beneficiary_name.as_deref());
        encoder.optional_text(entry.beneficiary_country.as_ref().map(Jurisdiction::as_str));
        encoder.texts(&entry.amounts);
        encoder.texts(&entry.route);
        encoder.count(entry.decisions.len());
        for decision in &entry.decisions {
            encoder.text(decision.jurisdiction.as_str());
            encoder.text(&decision.hook);
            encoder.text(decision.outcome.as_str());
            encoder.optional_text(decision.code.as_deref());
            encoder.optional_text(decision.message.as_deref());
        }
        encoder.optional_text(entry.status.as_deref());
        encoder.optional_text(entry.reason_code.as_deref());
        encoder.0
    }

    /// The hash this record's content calls for (what `hash` must be).
    pub fn computed_hash(&self) -> FeedHash {
        FeedHash::sha256(&self.canonical_encoding())
    }
}

/// Length-prefixed, big-endian: every value has exactly one encoding and no value's encoding is
/// a prefix of another's, so no two different records share a hash input.
struct Encoder(Vec<u8>);

impl Encoder {
    fn number(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    fn count(&mut self, count: usize) {
        // usize is at most 64 bits on every target Rust supports, so this never saturates.
        self.number(u64::try_from(count).unwrap_or(u64::MAX));
    }

    fn text(&mut self, text: &str) {
        self.count(text.len());
        self.0.extend_from_slice(text.as_bytes());
    }

    fn optional_text(&mut self, text: Option<&str>) {
        match text {
            None => self.0.push(0),
            Some(text) => {
                self.0.push(1);
                self.text(text);
            }
        }
    }

    fn texts(&mut self, texts: &[String]) {
        self.count(texts.len());
        for text in texts {
            self.text(text);
        }
    }
}
