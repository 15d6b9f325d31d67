//! Sanctions screening: party names against a list in the OFAC SDN CSV distribution format.
//!
//! - [`list`]: parsing `sdn.csv`, `alt.csv` and `add.csv` into [`SanctionsList`] (entries, aliases,
//!   address countries), and the snapshot bundled with this crate ([`SanctionsList::bundled`]).
//! - [`normalize`]: case, accents, punctuation, noise words, word order.
//! - [`matcher`]: token-level Jaro-Winkler against primary names and aliases, with the country as
//!   a second signal, through an index; scores are integers per mille ([`Score`]).
//! - [`Thresholds`] turn a score into a [`Verdict`]: hit, possible hit (hold for review), clear.
//! - [`hook`]: [`SanctionsHook`], the [`crate::ComplianceHook`] that screens a payment's originator
//!   and beneficiary, on a list that can be replaced while payments are being screened.
//!
//! What this module does not do: download or schedule list updates (a caller hands
//! [`SanctionsHook::reload`] a new list), screen addresses, dates of birth or identity numbers, or
//! decide whether a payment must carry names (the travel-rule hook does).

pub mod countries;
pub mod hook;
pub mod list;
pub mod matcher;
pub mod normalize;
#[cfg(test)]
mod tests;

use corridor_schemas::Jurisdiction;

pub use hook::SanctionsHook;
pub use list::{Alias, AliasType, EntryType, SanctionsEntry, SanctionsError, SanctionsList};
pub use matcher::{CountrySignal, MatchedName, NameMatch, Score};
pub use normalize::normalize_name;

/// Why thresholds were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdsError {
    #[error("the possible-hit minimum {possible_min} is above the hit minimum {hit_min}")]
    OutOfOrder { hit_min: Score, possible_min: Score },
    #[error("the possible-hit minimum must be above 0/1000, or every name would be held")]
    PossibleMinZero,
}

/// Where a score becomes a hit (deny) or a possible hit (hold for review). A score at or above
/// `hit_min` is a hit; at or above `possible_min` (and below `hit_min`) a possible hit; below, clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    hit_min: Score,
    possible_min: Score,
}

impl Thresholds {
    /// The defaults, hit at 920 and possible hit at 850, chosen from the measurements in
    /// `compliance/tests/sanctions.rs` against the bundled list:
    /// - every listed individual of a sample of 193, written "First Last", is a hit on its own
    ///   entry; with one letter of its longest word changed, 169 (88%) are hits and 18 (9%) more
    ///   possible hits;
    /// - of 256 common names from several cultures, 2 (0.8%) are hits — both are written exactly as
    ///   an alias on the list ("Luis Lopez", "Wei Zhang") — and 9 (3.5%) possible hits without a
    ///   country, 6 (2.3%) with one: mostly a listed name with one more surname or middle name
    ///   ("Jose Garcia" against "GIL GARCIA, Jose Alejandro", 850).
    ///
    /// A name identical to a listed one (1000) stays a hit when the country disagrees (950); a
    /// listed name missing one of three words (900) is a hit only with the country agreeing (950).
    pub const DEFAULT: Thresholds = Thresholds { hit_min: Score(920), possible_min: Score(850) };

    pub fn new(hit_min: Score, possible_min: Score) -> Result<Self, ThresholdsError> {
        if possible_min > hit_min {
            return Err(ThresholdsError::OutOfOrder { hit_min, possible_min });
        }
        if possible_min == Score::ZERO {
            return Err(ThresholdsError::PossibleMinZero);
        }
        Ok(Self { hit_min, possible_min })
    }

    pub fn hit_min(&self) -> Score {
        self.hit_min
    }

    pub fn possible_min(&self) -> Score {
        self.possible_min
    }

    /// What `best` (the best match of a name, if any) means under these thresholds.
    pub fn verdict(&self, best: Option<NameMatch>) -> Verdict {
        match best {
            Some(found) if found.score >= self.hit_min => Verdict::Hit(found),
            Some(found) if found.score >= self.possible_min => Verdict::PossibleHit(found),
            _ => Verdict::Clear,
        }
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The outcome of screening one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// At or above the hit threshold: the payment is denied.
    Hit(NameMatch),
    /// Between the thresholds: held for a compliance officer's review.
    PossibleHit(NameMatch),
    Clear,
    /// The name has no letter or digit, so nothing could be compared.
    Unscreenable,
}

impl SanctionsList {
    /// Screens one name (with the party's country, if known).
    pub fn screen(&self, name: &str, country: Option<&Jurisdiction>, thresholds: &Thresholds) -> Verdict {
        let tokens = normalize_name(name);
        if tokens.is_empty() {
            return Verdict::Unscreenable;
        }
        thresholds.verdict(self.best_match_of_tokens(tokens, country))
    }
}
