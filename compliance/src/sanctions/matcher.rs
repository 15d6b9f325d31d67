//! Fuzzy name matching against a list's primary names and aliases, through an index, with scores as
//! integers per mille ([`Score`]).
//!
//! **Token similarity** of a query token and a listed token (normalised, see [`super::normalize`]),
//! per mille:
//! - equal tokens: 1000;
//! - tokens of [`EXACT_TOKEN_CHARS_MAX`] (3) characters or fewer: 0 unless equal;
//! - tokens sharing fewer than half of the shorter one's character bigrams (with start and end
//!   marks: `osama` is `^o os sa am ma a$`): 0. One changed letter costs two bigrams, a swap three
//!   (`osama`/`usama` share 4 of 6, `muhammad`/`mohammed` 5 of 9);
//! - otherwise Jaro-Winkler (`strsim`) less [`LENGTH_DIFFERENCE_PENALTY`] in proportion to the
//!   difference in length; below [`TOKEN_SIMILARITY_MIN`] (800) it is 0 (unrelated tokens still
//!   score 500-700 under Jaro-Winkler, and letting that through would lift every score); pairs of
//!   four- or five-letter tokens below [`SHORT_TOKEN_SIMILARITY_MIN`] (900) lose
//!   [`SHORT_TOKEN_DISCOUNT`] (150).
//!
//! **Name score.** The query's tokens are paired one-to-one with a listed name's tokens, best pairs
//! first (greedy on similarity; tokens are few), in any order. Then
//! - the *query score* is the average similarity of the query's tokens, weighted by their length in
//!   characters; a query token left unpaired counts 0, so extra words in the query pull it down;
//! - the *name score* is the query score less [`UNMATCHED_LISTED_TOKEN_PENALTY`] per mille per
//!   listed token left unpaired, in proportion (a listed name of 3 tokens of which 1 is unpaired
//!   loses a third of that penalty). Leaving out a middle name or a second surname costs less than
//!   a wrong word, as it should: payments often carry shorter names than the list.
//!
//! **Country, a second signal.** Where the party's country is known and the entry has addresses in
//! countries with a known ISO code: [`COUNTRY_MATCH_BONUS`] is added when the party's country is
//! among them, [`COUNTRY_MISMATCH_PENALTY`] taken away when it is not. Nothing changes when either
//! side has no country. The adjustment is small on purpose: a name identical to a listed one stays a
//! hit wherever its holder lives (lists are incomplete on addresses), while a borderline name moves
//! across a threshold.
//!
//! **The index.** Screening does not compare the query with all ~17,000 listed names. The distinct
//! tokens of all names (the vocabulary, ~15,000) are indexed by their bigrams. For each query token
//! the index counts, per vocabulary token, the bigrams they share — exactly the count the
//! similarity rule above asks for — and computes Jaro-Winkler only for tokens that share enough of
//! them and whose lengths allow a similarity of 800 at all. Short tokens are looked up whole. Only
//! names holding a similar token are candidates, and they are scored best bound first: a candidate
//! whose bound (its similar query tokens all at 1000) is below the best score found is not scored.
//! The result is the same as scoring every listed name, which the tests check.
//!
//! Not here: deciding what a score means for a payment (see [`super::Thresholds`] and the hook),
//! dates of birth and identity numbers (the remarks are for the reviewer).

use std::collections::HashMap;
use std::fmt;

use corridor_schemas::Jurisdiction;

use super::list::{AliasType, SanctionsEntry, SanctionsList};
use super::normalize::normalize_name;

/// A similarity or match score in per mille: 0 (nothing alike) ..= 1000 (identical after
/// normalisation). Shown as `912/1000`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Score(pub(super) u16);

impl Score {
    pub const MAX: Score = Score(1000);
    pub const ZERO: Score = Score(0);

    /// `None` above 1000.
    pub const fn new(per_mille: u16) -> Option<Self> {
        if per_mille <= 1000 { Some(Self(per_mille)) } else { None }
    }

    pub const fn per_mille(self) -> u16 {
        self.0
    }

    fn clamped(per_mille: u32) -> Self {
        Self(u16::try_from(per_mille.min(1000)).unwrap_or(1000))
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/1000", self.0)
    }
}

/// Token pairs less similar than this (per mille, after the length adjustment) count as unpaired.
/// 800 keeps one changed letter (`loera`/`loesa` 907, `maduro`/`madura` 933), swapped letters
/// (`joaquin`/`joaqiun` 971) and common transliteration variants (`muhammad`/`mohammed` 850); at
/// 850, `damaso`/`demaso` (840) would be lost. It also lets through different names that look alike (`martinez`/`martitegui` 810): one
/// such pair among equal ones lowers a score below the hit threshold, it does not make a hit.
pub const TOKEN_SIMILARITY_MIN: u16 = 800;

/// Tokens of this many characters or fewer match only when equal: on two or three letters one
/// changed letter is a different name (`ali`/`ari`, `kim`/`kin`, `wei`/`wen`), and Jaro-Winkler
/// favours a short token that is the start of a long one (`san`/`santos` 883).
pub const EXACT_TOKEN_CHARS_MAX: usize = 3;

/// Pairs whose shorter token has this many characters or fewer (four or five) and a similarity
/// below [`SHORT_TOKEN_SIMILARITY_MIN`] count [`SHORT_TOKEN_DISCOUNT`] less.
pub const SHORT_TOKEN_CHARS_MAX: usize = 5;

/// On four or five letters, one changed letter is as often another name (`mary`/`mark` 883,
/// `omar`/`oman` 883, `amit`/`amir`, `linda`/`lidia`) as a misspelling (`said`/`saed` 867,
/// `yong`/`yeng` 850): Jaro-Winkler cannot tell them apart. Such pairs still count, discounted, so
/// that with the other tokens equal they make a possible hit (a human looks) but not a hit.
pub const SHORT_TOKEN_SIMILARITY_MIN: u16 = 900;

/// See [`SHORT_TOKEN_SIMILARITY_MIN`]: "Mary Taylor" against "TAYLOR, Mark" scores
/// (733 × 4 + 1000 × 6) / 10 = 893 rather than 953.
pub const SHORT_TOKEN_DISCOUNT: u16 = 150;

/// Per mille taken from a pair's Jaro-Winkler similarity per character of length difference, in
/// proportion to the longer token (`fang`/`fangwei`: 914 − 300 × 3/7 = 786). Jaro-Winkler's prefix
/// bonus rewards a truncated name as much as a typo; this keeps one inserted or dropped letter
/// cheap (`loera`/`loerra`: 967 − 50) and a different, longer name out.
pub const LENGTH_DIFFERENCE_PENALTY: u16 = 300;

/// Per mille taken from a name score when *all* of the listed name's tokens are unpaired, in
/// proportion to the share of them that are.
pub const UNMATCHED_LISTED_TOKEN_PENALTY: u16 = 300;

/// Per mille added when the party's country is among the entry's address countries.
pub const COUNTRY_MATCH_BONUS: u16 = 50;

/// Per mille taken away when the entry has address countries and the party's is not among them.
pub const COUNTRY_MISMATCH_PENALTY: u16 = 50;

/// Query tokens beyond this many are not compared. Ignoring a token can only raise a score (an
/// unpaired query token counts 0), so the bound errs toward flagging. A name of 140 characters
/// (the longest a party may have) rarely has more than 20 words.
pub const QUERY_TOKENS_MAX: usize = 32;

/// Which of an entry's names matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedName {
    Primary,
    Alias(AliasType),
}

/// What the party's country said about a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountrySignal {
    /// The party has no country, or the entry no address country with a known code.
    None,
    /// The party's country is among the entry's: the score was raised.
    Match,
    /// The entry has countries and the party's is not among them: the score was lowered.
    Mismatch,
}

/// The best match of a name against a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameMatch {
    /// OFAC entity number.
    pub entry_number: u32,
    /// The entry's primary name, as listed.
    pub entry_name: String,
    /// The name that matched (the primary name, or an alias), as listed.
    pub matched_name: String,
    pub matched_as: MatchedName,
    /// The score of the names alone.
    pub name_score: Score,
    pub country_signal: CountrySignal,
    /// The name score adjusted by the country signal: what thresholds are applied to.
    pub score: Score,
}

type VocabularyId = u32;
type NameId = u32;

/// One listed name: an entry's primary name or one of its aliases.
#[derive(Debug)]
struct IndexedName {
    /// Index into the list's entries.
    entry: u32,
    /// `None` for the primary name, else the index of the alias.
    alias: Option<u32>,
    tokens: Box<[VocabularyId]>,
}

/// Bigram keys: characters are `a-z`, `0-9` and the start and end marks.
const BIGRAM_ALPHABET_LEN: usize = 38;
const BIGRAM_START: u8 = 36;
const BIGRAM_END: u8 = 37;

fn bigram_letter(byte: u8) -> u8 {
    match byte {
        b'a'..=b'z' => byte - b'a',
        b'0'..=b'9' => byte - b'0' + 26,
        // Normalised tokens hold only the above; anything else shares the end mark's slot, which
        // can only add candidates, never lose one.
        _ => BIGRAM_END,
    }
}

/// The bigram keys of a token, with start and end marks: `n + 1` keys for `n` characters.
fn bigrams(token: &str) -> impl Iterator<Item = usize> + '_ {
    let letters =
        std::iter::once(BIGRAM_START).chain(token.bytes().map(bigram_letter)).chain(std::iter::once(BIGRAM_END));
    let next = letters.clone().skip(1);
    letters.zip(next).map(|(first, second)| usize::from(first) * BIGRAM_ALPHABET_LEN + usize::from(second))
}

/// Jaro-Winkler similarity of two tokens, per mille.
// strsim computes Jaro-Winkler in f64; the value is rounded to an integer per mille right here, so
// no float reaches a score.
#[allow(clippy::float_arithmetic)]
fn jaro_winkler_per_mille(first: &str, second: &str) -> u16 {
    let similarity = strsim::jaro_winkler(first, second);
    // Jaro-Winkler lies in 0..=1; the cast saturates anyway.
    (similarity * 1000.0).round() as u16
}

/// The similarity of `query` (a token of the name screened) to `listed` (a token of a listed name)
/// as scoring uses it: equal tokens 1000; short tokens 0 unless equal; tokens sharing fewer than
/// half of the shorter one's bigrams 0 (see [`shared_bigrams`]); otherwise Jaro-Winkler less the
/// length-difference penalty, and 0 below [`TOKEN_SIMILARITY_MIN`]. The index applies the same
/// rules piecewise (bigrams counted through the index, then [`similarity_of_candidates`]); this whole
/// form is the reference the tests compare the index with.
#[cfg(test)]
fn token_similarity(query: &str, listed: &str) -> u16 {
    if query == listed {
        return 1000;
    }
    let (shorter, longer) = (query.len().min(listed.len()), query.len().max(listed.len()));
    if shorter <= EXACT_TOKEN_CHARS_MAX || !enough_shared_bigrams(shared_bigrams(query, listed), shorter) {
        return 0;
    }
    similarity_of_candidates(query, listed, shorter, longer)
}

/// How many of `query`'s bigrams (with start and end marks, counted with repetition) `listed` holds
/// too. The index counts exactly this.
#[cfg(test)]
fn shared_bigrams(query: &str, listed: &str) -> usize {
    let listed_bigrams: Vec<usize> = bigrams(listed).collect();
    bigrams(query).filter(|bigram| listed_bigrams.contains(bigram)).count()
}

/// At least half of the shorter token's `length + 1` bigrams. Part of the definition of similar,
/// not only a shortcut: Jaro-Winkler alone rates many different names of four or five letters above
/// 800 on a shared first letter and a shared letter or two (`omar`/`oman`, `ayse`/`rays`), and the
/// bigram overlap asks for shared *pieces* of the name. It is also what lets the index find every
/// similar token without comparing against all of them.
fn enough_shared_bigrams(shared: usize, shorter_length: usize) -> bool {
    // shared ≥ (shorter_length + 1) / 2, in integers.
    shared * 2 > shorter_length
}

/// Jaro-Winkler less the length penalty, 0 below the minimum: the part of [`token_similarity`] left
/// once the cheap checks passed.
fn similarity_of_candidates(query: &str, listed: &str, shorter: usize, longer: usize) -> u16 {
    let length_penalty = usize::from(LENGTH_DIFFERENCE_PENALTY) * (longer - shorter) / longer;
    let similarity = usize::from(jaro_winkler_per_mille(query, listed)).saturating_sub(length_penalty);
    match u16::try_from(similarity) {
        Ok(similarity) if similarity < TOKEN_SIMILARITY_MIN => 0,
        Ok(similarity) if shorter <= SHORT_TOKEN_CHARS_MAX && similarity < SHORT_TOKEN_SIMILARITY_MIN => {
            similarity - SHORT_TOKEN_DISCOUNT
        }
        Ok(similarity) => similarity,
        Err(_) => 0,
    }
}

/// The vocabulary with its bigram index, and every listed name by its tokens.
#[derive(Debug, Default)]
pub(super) struct NameIndex {
    vocabulary: Vec<Box<str>>,
    ids: HashMap<Box<str>, VocabularyId>,
    /// Bigram key → the vocabulary tokens holding it (each once).
    tokens_by_bigram: Vec<Vec<VocabularyId>>,
    /// Vocabulary token → the names holding it (each once).
    names_by_token: Vec<Vec<NameId>>,
    names: Vec<IndexedName>,
}

impl NameIndex {
    /// Indexes the names of `entries`, of which there are at most [`super::list::NAMES_MAX`]
    /// (checked by the parser), so that every count below fits a `u32`; so do the tokens, which are
    /// fewer than the names' characters.
    pub(super) fn build(entries: &[SanctionsEntry]) -> Self {
        let mut index =
            Self { tokens_by_bigram: vec![Vec::new(); BIGRAM_ALPHABET_LEN * BIGRAM_ALPHABET_LEN], ..Self::default() };
        for (entry_index, entry) in entries.iter().enumerate() {
            let aliases = entry.aliases.iter().map(|alias| alias.name.as_str()).enumerate();
            let names = std::iter::once((None, entry.name.as_str()))
                .chain(aliases.map(|(alias_index, name)| (Some(alias_index), name)));
            for (alias, name) in names {
                let name_id = index.names.len() as NameId;
                let mut tokens: Vec<VocabularyId> = Vec::new();
                for token in normalize_name(name) {
                    let id = match index.ids.get(token.as_str()) {
                        Some(&id) => id,
                        None => {
                            let id = index.vocabulary.len() as VocabularyId;
                            // Short tokens match only when equal, by `ids`: no bigrams needed.
                            let bigram_keys = if token.len() > EXACT_TOKEN_CHARS_MAX {
                                bigrams(&token).collect()
                            } else {
                                Vec::new()
                            };
                            for bigram in bigram_keys {
                                let holders = &mut index.tokens_by_bigram[bigram];
                                if holders.last() != Some(&id) {
                                    holders.push(id);
                                }
                            }
                            index.vocabulary.push(token.clone().into_boxed_str());
                            index.names_by_token.push(Vec::new());
                            index.ids.insert(token.into_boxed_str(), id);
                            id
                        }
                    };
                    let holders = &mut index.names_by_token[id as usize];
                    if holders.last() != Some(&name_id) {
                        holders.push(name_id);
                    }
                    tokens.push(id);
                }
                index.names.push(IndexedName {
                    entry: entry_index as u32,
                    alias: alias.map(|alias| alias as u32),
                    tokens: tokens.into_boxed_slice(),
                });
            }
        }
        index
    }

    /// The vocabulary tokens similar to `token` (at least [`TOKEN_SIMILARITY_MIN`]), found through
    /// the bigram index. `shared` is scratch space of one counter per vocabulary token, all zero on
    /// entry and on return.
    fn similar_tokens(&self, token: &str, shared: &mut [u8]) -> Vec<(VocabularyId, u16)> {
        if token.len() <= EXACT_TOKEN_CHARS_MAX {
            return self.ids.get(token).map(|&id| (id, 1000)).into_iter().collect();
        }
        let mut touched: Vec<VocabularyId> = Vec::new();
        for bigram in bigrams(token) {
            for &id in &self.tokens_by_bigram[bigram] {
                let count = &mut shared[id as usize];
                if *count == 0 {
                    touched.push(id);
                }
                *count = count.saturating_add(1);
            }
        }
        let mut similar = Vec::new();
        for id in touched {
            let count = usize::from(std::mem::take(&mut shared[id as usize]));
            let candidate = &self.vocabulary[id as usize];
            let (shorter, longer) = (token.len().min(candidate.len()), token.len().max(candidate.len()));
            // At least half of the shorter token's bigrams in common. And Jaro-Winkler is at most
            // 0.8 + 0.2 r for a length ratio r = shorter / longer while the length penalty takes
            // 0.3 (1 - r): below r = 0.6 no pair reaches 0.8 (the bound here, 0.55, leaves room for
            // rounding).
            if !enough_shared_bigrams(count, shorter) || shorter * 20 < longer * 11 {
                continue;
            }
            let similarity = similarity_of_candidates(token, candidate, shorter, longer);
            if similarity > 0 {
                similar.push((id, similarity));
            }
        }
        similar
    }

    /// The name score of the query `tokens` against a listed name, given each query token's
    /// similarity to vocabulary tokens.
    fn name_score(&self, tokens: &[String], similarity: &HashMap<VocabularyId, Vec<u16>>, name: &IndexedName) -> u32 {
        // (similarity, query token, listed token), best first.
        let mut pairs: Vec<(u16, usize, usize)> = Vec::new();
        for (listed_index, id) in name.tokens.iter().enumerate() {
            if let Some(row) = similarity.get(id) {
                for (query_index, &value) in row.iter().enumerate() {
                    if value > 0 {
                        pairs.push((value, query_index, listed_index));
                    }
                }
            }
        }
        score_pairs(tokens.iter().map(String::len), name.tokens.len(), pairs)
    }

    /// The best-scoring listed name for the query `tokens` with its name score, through the index.
    /// Ties go to the first name in list order.
    fn best_name(&self, tokens: &[String]) -> Option<(NameId, u32)> {
        let lengths: Vec<usize> = tokens.iter().map(String::len).collect();
        let mut shared = vec![0u8; self.vocabulary.len()];
        let mut similarity: HashMap<VocabularyId, Vec<u16>> = HashMap::new();
        // Per listed name, which query tokens have a similar token in it (bit i for token i).
        let mut query_tokens_present = vec![0u32; self.names.len()];
        let mut candidates: Vec<NameId> = Vec::new();
        for (query_index, token) in tokens.iter().enumerate().take(QUERY_TOKENS_MAX) {
            for (id, value) in self.similar_tokens(token, &mut shared) {
                similarity.entry(id).or_insert_with(|| vec![0; tokens.len()])[query_index] = value;
                for &name_id in &self.names_by_token[id as usize] {
                    let present = &mut query_tokens_present[name_id as usize];
                    if *present == 0 {
                        candidates.push(name_id);
                    }
                    *present |= 1 << query_index;
                }
            }
        }
        // Score the most promising names first, and stop where even a perfect pairing could not beat
        // the best found: most candidates share one common token with the query and are never scored.
        let mut bounded: Vec<(u32, NameId)> = candidates
            .into_iter()
            .map(|name_id| {
                let present = query_tokens_present[name_id as usize];
                (score_bound(&lengths, present, self.names[name_id as usize].tokens.len()), name_id)
            })
            .collect();
        bounded.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut best: Option<(NameId, u32)> = None;
        for (bound, name_id) in bounded {
            if best.is_some_and(|(_, best_score)| bound < best_score) || bound == 0 {
                break;
            }
            let score = self.name_score(tokens, &similarity, &self.names[name_id as usize]);
            let better = match best {
                None => score > 0,
                Some((best_id, best_score)) => score > best_score || (score == best_score && name_id < best_id),
            };
            if better {
                best = Some((name_id, score));
            }
        }
        best
    }
}

/// The highest name score a listed name of `listed_token_count` tokens could reach when only the
/// query tokens in `present` (bit i for token i) have a similar token in it: those tokens paired at
/// 1000, and as few listed tokens unpaired as their number allows. Never below the real score.
fn score_bound(query_token_lengths: &[usize], present: u32, listed_token_count: usize) -> u32 {
    let query_length_total: usize = query_token_lengths.iter().sum();
    if query_length_total == 0 || listed_token_count == 0 {
        return 0;
    }
    let present_length: usize = query_token_lengths
        .iter()
        .enumerate()
        .filter(|(index, _)| present & (1 << index) != 0)
        .map(|(_, length)| length)
        .sum();
    let query_score = present_length * 1000 / query_length_total;
    let pairable = usize::try_from(present.count_ones()).unwrap_or(usize::MAX).min(listed_token_count);
    let penalty = usize::from(UNMATCHED_LISTED_TOKEN_PENALTY) * (listed_token_count - pairable) / listed_token_count;
    u32::try_from(query_score * (1000 - penalty) / 1000).unwrap_or(u32::MAX)
}

/// Greedy one-to-one pairing, best pairs first, and the name score from it (see the module docs).
fn score_pairs(
    query_token_lengths: impl Iterator<Item = usize> + Clone,
    listed_token_count: usize,
    mut pairs: Vec<(u16, usize, usize)>,
) -> u32 {
    let query_length_total: usize = query_token_lengths.clone().sum();
    if query_length_total == 0 || listed_token_count == 0 {
        return 0;
    }
    let lengths: Vec<usize> = query_token_lengths.collect();
    pairs.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut query_paired = vec![false; lengths.len()];
    let mut listed_paired = vec![false; listed_token_count];
    let mut weighted_similarity: usize = 0;
    let mut listed_paired_count: usize = 0;
    for (value, query_index, listed_index) in pairs {
        if query_paired[query_index] || listed_paired[listed_index] {
            continue;
        }
        query_paired[query_index] = true;
        listed_paired[listed_index] = true;
        listed_paired_count += 1;
        weighted_similarity += usize::from(value) * lengths[query_index];
    }
    let query_score = weighted_similarity / query_length_total;
    let unpaired = listed_token_count - listed_paired_count;
    let penalty = usize::from(UNMATCHED_LISTED_TOKEN_PENALTY) * unpaired / listed_token_count;
    let name_score = query_score * (1000 - penalty) / 1000;
    u32::try_from(name_score).unwrap_or(0)
}

impl SanctionsList {
    /// The best match of `name` among all primary names and aliases, adjusted by `country` (see the
    /// module docs), or `None` when no listed name has a token similar to one of the name's (or the
    /// name has no letters or digits at all).
    pub fn best_match(&self, name: &str, country: Option<&Jurisdiction>) -> Option<NameMatch> {
        self.best_match_of_tokens(normalize_name(name), country)
    }

    /// [`Self::best_match`] for a name already normalised.
    pub(super) fn best_match_of_tokens(
        &self,
        mut tokens: Vec<String>,
        country: Option<&Jurisdiction>,
    ) -> Option<NameMatch> {
        tokens.truncate(QUERY_TOKENS_MAX);
        if tokens.is_empty() {
            return None;
        }
        let (name_id, name_score) = self.index.best_name(&tokens)?;
        Some(self.name_match(name_id, name_score, country))
    }

    /// The best match by comparing every query token with every vocabulary token and scoring every
    /// listed name, without the index: the reference the index is tested against.
    #[cfg(test)]
    pub(super) fn best_match_without_index(&self, name: &str) -> Option<NameMatch> {
        let mut tokens = normalize_name(name);
        tokens.truncate(QUERY_TOKENS_MAX);
        let mut similarity: HashMap<VocabularyId, Vec<u16>> = HashMap::new();
        for (query_index, token) in tokens.iter().enumerate() {
            for (id, listed) in self.index.vocabulary.iter().enumerate() {
                let value = token_similarity(token, listed);
                if value > 0 {
                    similarity.entry(id as VocabularyId).or_insert_with(|| vec![0; tokens.len()])[query_index] = value;
                }
            }
        }
        let mut best: Option<(NameId, u32)> = None;
        for (name_id, listed) in self.index.names.iter().enumerate() {
            let score = self.index.name_score(&tokens, &similarity, listed);
            if score > 0 && best.is_none_or(|(_, best_score)| score > best_score) {
                best = Some((name_id as NameId, score));
            }
        }
        best.map(|(name_id, score)| self.name_match(name_id, score, None))
    }

    fn name_match(&self, name_id: NameId, name_score: u32, country: Option<&Jurisdiction>) -> NameMatch {
        let name = &self.index.names[name_id as usize];
        let entry = &self.entries[name.entry as usize];
        let (matched_name, matched_as) = match name.alias.and_then(|alias| entry.aliases.get(alias as usize)) {
            Some(alias) => (alias.name.clone(), MatchedName::Alias(alias.alias_type)),
            None => (entry.name.clone(), MatchedName::Primary),
        };
        let country_signal = match country {
            Some(_) if entry.country_codes.is_empty() => CountrySignal::None,
            Some(country) if entry.country_codes.contains(&country.as_str()) => CountrySignal::Match,
            Some(_) => CountrySignal::Mismatch,
            None => CountrySignal::None,
        };
        let score = match country_signal {
            CountrySignal::None => name_score,
            CountrySignal::Match => name_score + u32::from(COUNTRY_MATCH_BONUS),
            CountrySignal::Mismatch => name_score.saturating_sub(u32::from(COUNTRY_MISMATCH_PENALTY)),
        };
        NameMatch {
            entry_number: entry.number,
            entry_name: entry.name.clone(),
            matched_name,
            matched_as,
            name_score: Score::clamped(name_score),
            country_signal,
            score: Score::clamped(score),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(query: &[&str], listed: &[&str]) -> u32 {
        let mut pairs = Vec::new();
        for (query_index, token) in query.iter().enumerate() {
            for (listed_index, other) in listed.iter().enumerate() {
                let value = token_similarity(token, other);
                if value > 0 {
                    pairs.push((value, query_index, listed_index));
                }
            }
        }
        score_pairs(query.iter().map(|token| token.len()), listed.len(), pairs)
    }

    #[test]
    fn token_similarity_keeps_variants_and_drops_strangers() {
        let check = |first: &str, second: &str, expected: u16| {
            assert_eq!(token_similarity(first, second), expected, "{first} / {second}");
        };
        check("maduro", "maduro", 1000);
        check("maduro", "madura", 933);
        check("loera", "loesa", 907);
        check("joaquin", "joaqiun", 971);
        check("muhammad", "mohammed", 850);
        check("martinez", "martitegui", 810);
        check("garcia", "garza", 826 - 150);
        // One inserted letter costs 300 × 1/6 = 50 (967 − 50).
        check("loera", "loerra", 917);
        // Jaro-Winkler's prefix bonus is not a match: 914 − 300 × 3/7 = 786.
        check("fang", "fangwei", 0);
        // Four or five letters below 900: discounted by 150.
        check("usama", "osama", 867 - 150);
        check("mary", "mark", 883 - 150);
        check("omar", "oman", 883 - 150);
        check("said", "saed", 867 - 150);
        check("yong", "yeng", 850 - 150);
        check("damaso", "demaso", 840);
        // Too few shared bigrams, whatever Jaro-Winkler says.
        check("esposito", "espiritu", 0);
        // Short tokens: equal or nothing.
        check("ali", "ali", 1000);
        check("ali", "ari", 0);
        check("san", "santos", 0);
        check("wei", "wen", 0);
        let raw = |first: &str, second: &str| jaro_winkler_per_mille(first, second);
        assert_eq!((raw("fang", "fangwei"), raw("san", "santos"), raw("loera", "loerra")), (914, 883, 967));
    }

    #[test]
    fn scores_pair_tokens_in_any_order_and_penalise_what_is_left_over() {
        // Same tokens, any order.
        assert_eq!(score(&["manuel", "noriega"], &["noriega", "manuel"]), 1000);
        // A listed middle name left out: a third of the penalty.
        assert_eq!(score(&["maduro", "nicolas"], &["maduro", "moros", "nicolas"]), 900);
        // An extra query word costs its share of the query's characters.
        assert_eq!(score(&["maduro", "nicolas", "pereira"], &["maduro", "nicolas"]), 650);
        // Nothing alike.
        assert_eq!(score(&["jane", "doe"], &["maduro", "nicolas"]), 0);
        // Each listed token pairs once: a repeated query word does not double count.
        assert_eq!(score(&["ali", "ali"], &["ali", "hassan"]), 425);
    }

    #[test]
    fn bigrams_have_start_and_end_marks() {
        assert_eq!(bigrams("ab").count(), 3);
        let first = bigrams("ab").next();
        assert_eq!(first, Some(usize::from(BIGRAM_START) * BIGRAM_ALPHABET_LEN));
    }
}
