//! A sanctions list in the OFAC CSV distribution format: `sdn.csv`, `alt.csv` and `add.csv` as
//! `SanctionsList::parse` takes them. The input is UTF-8 text (the router reads the files with
//! `read_to_string`) split into the three files at its first two NUL bytes; a missing part is an
//! empty file.
//!
//! Checks, beyond "never panics": a parsed list's entries have distinct numbers, each found by
//! `entry`; names and aliases are non-empty; `name_count` counts them; and screening works on the
//! list: an entry's own primary name (when it has at most `QUERY_TOKENS_MAX` tokens) matches at
//! 1000/1000.
#![no_main]

use std::collections::HashSet;

use corridor_compliance::sanctions::matcher::QUERY_TOKENS_MAX;
use corridor_compliance::sanctions::{SanctionsList, normalize_name};
use corridor_compliance::{Score, Thresholds};
use corridor_schemas::Jurisdiction;
use libfuzzer_sys::fuzz_target;

/// Screening is slower than parsing: check a few names per input.
const SCREENED_MAX: usize = 8;

fuzz_target!(|text: &str| {
    let mut files = text.splitn(3, '\0');
    let sdn = files.next().unwrap_or_default();
    let alt = files.next().unwrap_or_default();
    let add = files.next().unwrap_or_default();
    let Ok(list) = SanctionsList::parse(sdn, alt, add) else {
        return;
    };

    assert_eq!(list.len(), list.entries().len());
    assert_eq!(list.is_empty(), list.entries().is_empty());
    let mut numbers = HashSet::new();
    let mut names = 0;
    for entry in list.entries() {
        assert!(numbers.insert(entry.number), "entry {} is listed twice", entry.number);
        assert_eq!(list.entry(entry.number), Some(entry));
        assert!(!entry.name.trim().is_empty());
        assert!(entry.aliases.iter().all(|alias| !alias.name.trim().is_empty()));
        assert!(entry.country_codes.len() <= entry.countries.len());
        names += 1 + entry.aliases.len();
    }
    assert_eq!(list.name_count(), names);

    let hong_kong = Jurisdiction::new("HK").expect("a valid jurisdiction");
    for entry in list.entries().iter().take(SCREENED_MAX) {
        let tokens = normalize_name(&entry.name).len();
        let best = list.best_match(&entry.name, None);
        if tokens == 0 {
            assert_eq!(best, None, "{:?} has no token but matched", entry.name);
        } else if tokens <= QUERY_TOKENS_MAX {
            let best = best.unwrap_or_else(|| panic!("{:?} does not match itself", entry.name));
            assert_eq!(best.name_score, Score::MAX, "{:?} matched {best:?}", entry.name);
            assert_eq!(best.score, Score::MAX, "{:?} matched {best:?}", entry.name);
        }
        let _ = list.screen(&entry.name, Some(&hong_kong), &Thresholds::DEFAULT);
        for alias in entry.aliases.iter().take(SCREENED_MAX) {
            let _ = list.screen(&alias.name, None, &Thresholds::DEFAULT);
        }
    }
});
