//! Tests of screening against the real bundled list that need the crate's insides: the index must
//! find the same best match as comparing with every listed name.

use std::sync::LazyLock;

use super::*;

static LIST: LazyLock<SanctionsList> = LazyLock::new(|| SanctionsList::bundled().unwrap());

/// Listed names as payments would write them, with typos, and names that are not listed.
const QUERIES: &[&str] = &[
    "Joaquin Guzman Loera",
    "Joaqiun Guzman Loera",
    "Joaquin Guzman Loira",
    "Nicolas Maduro",
    "Nicolas Madura Moros",
    "Osama bin Laden",
    "Usama Bin Ladn",
    "Muhammad Ali",
    "Mohamed Hassan",
    "Banco Nacional de Cuba",
    "Banco Nacinal de Cuba SA",
    "National Bank of Cuba",
    "Anglo Caribbean Company Limited",
    "Islamic Republic of Iran Shipping Lines",
    "Ayman al-Zawahiri",
    "Alzawahiri Ayman",
    "Wei Zhang",
    "Maria Garza",
    "Jennifer Miller",
    "Giulia Esposito",
    "Chinedu Okafor",
    "Hiroshi Tanaka",
    "Dmitry Smirnov",
    "Le Van Hung",
    "Al Qaida",
    "Al-Qaeda",
    "Hizballah",
    "Hezbollah",
    "Kim Jong Un",
    "Rosneft Trading SA",
    "Sea Star Shipping Company Ltd",
    "Mr. Abdul Rahman Yasin",
];

#[test]
fn the_index_finds_the_same_best_match_as_comparing_every_name() {
    for query in QUERIES {
        let indexed = LIST.best_match(query, None);
        let everything = LIST.best_match_without_index(query);
        assert_eq!(indexed, everything, "{query}");
    }
}

#[test]
fn the_bundled_list_is_whole() {
    assert_eq!(LIST.len(), 7379);
    assert_eq!(LIST.name_count(), 7379 + 9682);
    let individuals = LIST.entries().iter().filter(|entry| entry.entry_type == EntryType::Individual).count();
    assert_eq!(individuals, 3845);
    // Every country in the snapshot's addresses has a code, but "undetermined" and one disputed region.
    let mut unknown: Vec<&str> = LIST
        .entries()
        .iter()
        .flat_map(|entry| entry.countries.iter())
        .filter(|country| countries::iso_code_of_ofac_country(country).is_none())
        .map(String::as_str)
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    assert_eq!(unknown, ["Region: Kafia Kingi", "undetermined"]);
}
