//! [`SanctionsHook`]: the compliance hook that screens a payment's originator and beneficiary names
//! against a sanctions list, which can be replaced without a restart.
//!
//! Decisions and their reason codes:
//! - a party's name is a hit → `Deny`, [`SanctionsHook::REASON_HIT`] (`SANCTIONS_HIT`);
//! - otherwise, a possible hit → `Hold`, [`SanctionsHook::REASON_POSSIBLE_MATCH`]
//!   (`SANCTIONS_POSSIBLE_MATCH`);
//! - otherwise, a name with no letter or digit to compare → `Hold`,
//!   [`SanctionsHook::REASON_NAME_UNSCREENABLE`] (`SANCTIONS_NAME_UNSCREENABLE`): a name that
//!   cannot be screened fails closed, to a human;
//! - otherwise `Allow` (the pipeline's `Decision::Allow` carries no reason).
//!
//! The message names every finding: which party, the name as given, the SDN entry number, the
//! matched name (and the alias, when an alias matched) and the score, e.g.
//! `originator "Banco Nacional de Cuba" matches SDN entry 306 "BANCO NACIONAL DE CUBA" (score 1000/1000)`.
//!
//! A party without a name is not screened here: whether names are required is the travel-rule
//! hook's decision. Screening takes tens of microseconds of CPU and does not yield, so it runs
//! inline on the caller's task.
//!
//! **Reload.** The list sits behind an `ArcSwap`: [`SanctionsHook::reload`] swaps in a new list
//! atomically; a screening already running holds its own reference and finishes on the old list,
//! which is dropped when the last such screening ends. Reading the pointer takes no lock.

use std::fmt::Write as _;
use std::sync::Arc;

use arc_swap::ArcSwap;
use corridor_schemas::{Jurisdiction, Party};

use super::{CountrySignal, MatchedName, NameMatch, SanctionsList, Thresholds, Verdict};
use crate::pipeline::{ComplianceHook, Decision, Reason, Subject};

/// Screens originator and beneficiary names against a swappable [`SanctionsList`].
#[derive(Debug)]
pub struct SanctionsHook {
    list: ArcSwap<SanctionsList>,
    thresholds: Thresholds,
}

impl SanctionsHook {
    pub const NAME: &'static str = "sanctions_screening";
    pub const REASON_HIT: &'static str = "SANCTIONS_HIT";
    pub const REASON_POSSIBLE_MATCH: &'static str = "SANCTIONS_POSSIBLE_MATCH";
    pub const REASON_NAME_UNSCREENABLE: &'static str = "SANCTIONS_NAME_UNSCREENABLE";

    pub fn new(list: SanctionsList, thresholds: Thresholds) -> Self {
        Self { list: ArcSwap::from_pointee(list), thresholds }
    }

    /// Replaces the list; screenings that started before finish on the old one.
    pub fn reload(&self, list: SanctionsList) {
        self.list.store(Arc::new(list));
    }

    /// The number of entries of the current list, for logs.
    pub fn entries(&self) -> usize {
        self.list.load().len()
    }

    /// The current list.
    pub fn list(&self) -> Arc<SanctionsList> {
        self.list.load_full()
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// The decision about these parties (role, party), on the current list.
    fn decide(&self, parties: &[(&str, Option<&Party>)]) -> Decision {
        let list = self.list.load();
        let mut hits = Vec::new();
        let mut possible_hits = Vec::new();
        let mut unscreenable = Vec::new();
        for &(role, party) in parties {
            let Some((name, party)) = party.and_then(|party| Some((party.name.as_deref()?, party))) else {
                continue;
            };
            match list.screen(name, party.country.as_ref(), &self.thresholds) {
                Verdict::Hit(found) => hits.push(finding(role, name, "matches", &found)),
                Verdict::PossibleHit(found) => possible_hits.push(finding(role, name, "possibly matches", &found)),
                Verdict::Unscreenable => {
                    unscreenable.push(format!("{role} name \"{name}\" has no letter or digit to screen"));
                }
                Verdict::Clear => {}
            }
        }
        let code = if !hits.is_empty() {
            Self::REASON_HIT
        } else if !possible_hits.is_empty() {
            Self::REASON_POSSIBLE_MATCH
        } else if !unscreenable.is_empty() {
            Self::REASON_NAME_UNSCREENABLE
        } else {
            return Decision::Allow;
        };
        let message = [hits, possible_hits, unscreenable].concat().join("; ");
        let reason = Reason { code, message };
        if code == Self::REASON_HIT { Decision::Deny(reason) } else { Decision::Hold(reason) }
    }
}

/// `originator "X" matches SDN entry 306 "Y" [through its aka "Z"] (score 950/1000[: ...])`.
fn finding(role: &str, name: &str, verb: &str, found: &NameMatch) -> String {
    let mut text = format!("{role} \"{name}\" {verb} SDN entry {} \"{}\"", found.entry_number, found.entry_name);
    if let MatchedName::Alias(alias_type) = found.matched_as {
        // Writing into a String cannot fail.
        let _ = write!(text, " through its {} \"{}\"", alias_type.as_str(), found.matched_name);
    }
    let _ = write!(text, " (score {}", found.score);
    let _ = match found.country_signal {
        CountrySignal::None => write!(text, ")"),
        CountrySignal::Match => {
            write!(text, ": name {}, raised as the country is among the entry's)", found.name_score)
        }
        CountrySignal::Mismatch => {
            write!(text, ": name {}, lowered as the country is not among the entry's)", found.name_score)
        }
    };
    text
}

#[async_trait::async_trait]
impl ComplianceHook for SanctionsHook {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    /// One list for every jurisdiction: a payment's names are screened once.
    fn same_for_every_jurisdiction(&self) -> bool {
        true
    }

    async fn check(&self, _jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Decision {
        self.decide(&[("originator", subject.originator), ("beneficiary", subject.beneficiary)])
    }
}
