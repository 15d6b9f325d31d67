//! The OFAC SDN list in its CSV distribution format, parsed: `sdn.csv` (one line per entry),
//! `alt.csv` (aliases by entry number) and `add.csv` (addresses by entry number).
//!
//! The files have no header; fields are comma-separated, text fields are double-quoted (and may
//! hold commas: `"ANGLO-CARIBBEAN CO., LTD."`), and `-0-` (often followed by a space) means empty.
//! Parsing is strict about what screening relies on — entry numbers, names, types, alias types, the
//! number of fields, aliases and addresses pointing at an entry that exists — and every error names
//! the file, the line and the field. Other fields (title, vessel data, remarks) are kept as text.
//! A line holding only the DOS end-of-file mark (`\x1a`), which OFAC's files have carried, is skipped.
//!
//! This module does not fetch lists, and keeps only what screening and a reviewer need: of the
//! addresses only the country is kept (as written, and as an ISO code where
//! [`super::countries`] knows it).

use std::collections::HashMap;

use super::countries::iso_code_of_ofac_country;
use super::matcher::NameIndex;

/// The bundled snapshot's `sdn.csv` (1.5 MB), `alt.csv` (0.47 MB) and `add.csv` (0.74 MB): about
/// 2.7 MB of text built into every binary that calls [`SanctionsList::bundled`] (and only those:
/// the linker drops the statics otherwise). See `compliance/data/sanctions/SOURCES.md`.
const BUNDLED_SDN_CSV: &str = include_str!("../../data/sanctions/ofac-sdn.csv");
const BUNDLED_ALT_CSV: &str = include_str!("../../data/sanctions/ofac-alt.csv");
const BUNDLED_ADD_CSV: &str = include_str!("../../data/sanctions/ofac-add.csv");

/// The most names (primary names and aliases together) a list may have: the index numbers names
/// and tokens with `u32`, and a list this size would take gigabytes. The SDN list has ~17,000.
pub const NAMES_MAX: usize = 4_000_000;

/// Fields per line of each file, as OFAC publishes them.
const SDN_FIELDS: usize = 12;
const ALT_FIELDS: usize = 5;
const ADD_FIELDS: usize = 6;

/// Why a list could not be loaded. Lines are 1-based, as an editor shows them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SanctionsError {
    #[error("{file} line {line}: not readable as CSV: {reason}")]
    Csv { file: &'static str, line: u64, reason: String },
    #[error("{file} line {line}: {found} fields, expected {expected}")]
    FieldCount { file: &'static str, line: u64, found: usize, expected: usize },
    #[error("{file} line {line}, field `{field}`: {reason}")]
    BadField { file: &'static str, line: u64, field: &'static str, reason: String },
    #[error("{file} line {line}: entry {number} is not in sdn.csv")]
    UnknownEntry { file: &'static str, line: u64, number: u32 },
    #[error("sdn.csv line {line}: entry {number} is listed a second time (first on line {first_line})")]
    DuplicateEntry { line: u64, number: u32, first_line: u64 },
    #[error("the list has {names} names (primary names and aliases); at most {names_max} are accepted")]
    TooLarge { names: usize, names_max: usize },
}

/// What an SDN entry is (`SDN_Type`; empty means an entity).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    Individual,
    Entity,
    Vessel,
    Aircraft,
}

/// How an alias relates to the entry (`Alt_Type`): also known as, formerly known as, now known as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AliasType {
    Aka,
    Fka,
    Nka,
}

impl AliasType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aka => "aka",
            Self::Fka => "fka",
            Self::Nka => "nka",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub alias_type: AliasType,
}

/// One SDN entry with its aliases and the countries of its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanctionsEntry {
    /// OFAC's entity number (`ent_num`), the stable key of an entry.
    pub number: u32,
    /// The primary name as OFAC writes it (individuals: "LAST, First Middle").
    pub name: String,
    pub entry_type: EntryType,
    /// Sanctions programmes, e.g. `["SDGT", "SDT"]`.
    pub programs: Vec<String>,
    pub title: Option<String>,
    /// Dates and places of birth, identity documents, ...: for a human reviewer.
    pub remarks: Option<String>,
    pub aliases: Vec<Alias>,
    /// The countries of the entry's addresses as OFAC writes them, each once, in file order.
    pub countries: Vec<String>,
    /// The same countries as ISO 3166-1 alpha-2 codes, each once; countries without a known code
    /// are left out.
    pub country_codes: Vec<&'static str>,
}

/// A parsed list and its name index. Cheap to share (`Arc`), immutable once built.
#[derive(Debug)]
pub struct SanctionsList {
    pub(super) entries: Vec<SanctionsEntry>,
    by_number: HashMap<u32, usize>,
    pub(super) index: NameIndex,
}

impl SanctionsList {
    /// Parses the three files of the CSV distribution (the contents of `sdn.csv`, `alt.csv`,
    /// `add.csv`) and builds the name index.
    pub fn parse(sdn: &str, alt: &str, add: &str) -> Result<Self, SanctionsError> {
        let mut entries = Vec::new();
        let mut by_number: HashMap<u32, usize> = HashMap::new();
        let mut lines_of_entries: Vec<u64> = Vec::new();
        for (line, fields) in records("sdn.csv", sdn, SDN_FIELDS)? {
            let file = "sdn.csv";
            let number = entry_number(file, line, &fields[0])?;
            if let Some(&first) = by_number.get(&number) {
                return Err(SanctionsError::DuplicateEntry { line, number, first_line: lines_of_entries[first] });
            }
            let name = required(file, line, "SDN_Name", &fields[1])?;
            let entry_type = match optional(&fields[2]) {
                None => EntryType::Entity,
                Some("individual") => EntryType::Individual,
                Some("vessel") => EntryType::Vessel,
                Some("aircraft") => EntryType::Aircraft,
                Some(other) => {
                    return Err(bad_field(file, line, "SDN_Type", format!("unknown type `{}`", other.escape_debug())));
                }
            };
            let programs = optional(&fields[3])
                .map(|programs| {
                    programs
                        .split(['[', ']'])
                        .map(str::trim)
                        .filter(|program| !program.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            by_number.insert(number, entries.len());
            lines_of_entries.push(line);
            entries.push(SanctionsEntry {
                number,
                name,
                entry_type,
                programs,
                title: optional(&fields[4]).map(str::to_owned),
                remarks: optional(&fields[11]).map(str::to_owned),
                aliases: Vec::new(),
                countries: Vec::new(),
                country_codes: Vec::new(),
            });
        }

        for (line, fields) in records("alt.csv", alt, ALT_FIELDS)? {
            let file = "alt.csv";
            let entry = entry_of(file, line, &fields[0], &by_number)?;
            let alias_type = match optional(&fields[2]) {
                Some("aka") => AliasType::Aka,
                Some("fka") => AliasType::Fka,
                Some("nka") => AliasType::Nka,
                other => {
                    let found = other.unwrap_or("-0-").escape_debug().to_string();
                    return Err(bad_field(file, line, "Alt_Type", format!("`{found}` is not aka, fka or nka")));
                }
            };
            let name = required(file, line, "Alt_Name", &fields[3])?;
            entries[entry].aliases.push(Alias { name, alias_type });
        }

        for (line, fields) in records("add.csv", add, ADD_FIELDS)? {
            let entry = &mut entries[entry_of("add.csv", line, &fields[0], &by_number)?];
            if let Some(country) = optional(&fields[4]) {
                if !entry.countries.iter().any(|known| known == country) {
                    entry.countries.push(country.to_owned());
                }
                if let Some(code) = iso_code_of_ofac_country(country)
                    && !entry.country_codes.contains(&code)
                {
                    entry.country_codes.push(code);
                }
            }
        }

        let names: usize = entries.iter().map(|entry| 1 + entry.aliases.len()).sum();
        if names > NAMES_MAX {
            return Err(SanctionsError::TooLarge { names, names_max: NAMES_MAX });
        }
        let index = NameIndex::build(&entries);
        Ok(Self { entries, by_number, index })
    }

    /// The snapshot in `compliance/data/sanctions/` (7,379 entries; see its `SOURCES.md`), built in
    /// with `include_str!` (about 2.7 MB of binary size). Parsing and indexing take tens of
    /// milliseconds: do it once at start and share the list.
    pub fn bundled() -> Result<Self, SanctionsError> {
        Self::parse(BUNDLED_SDN_CSV, BUNDLED_ALT_CSV, BUNDLED_ADD_CSV)
    }

    pub fn entries(&self) -> &[SanctionsEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry with OFAC entity number `number`.
    pub fn entry(&self, number: u32) -> Option<&SanctionsEntry> {
        self.by_number.get(&number).map(|&index| &self.entries[index])
    }

    /// Primary names and aliases together: what screening compares against.
    pub fn name_count(&self) -> usize {
        self.entries.iter().map(|entry| 1 + entry.aliases.len()).sum()
    }
}

/// The records of one file with their 1-based line numbers, each with exactly `expected` fields.
fn records(file: &'static str, text: &str, expected: usize) -> Result<Vec<(u64, Vec<String>)>, SanctionsError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut records = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                let line = error.position().map_or(line, csv::Position::line);
                return Err(SanctionsError::Csv { file, line, reason: error.to_string() });
            }
        }
        let line = record.position().map_or(line, csv::Position::line);
        if record.len() == 1 && record[0].trim() == "\u{1a}" {
            continue;
        }
        if record.len() != expected {
            return Err(SanctionsError::FieldCount { file, line, found: record.len(), expected });
        }
        records.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(records)
}

/// A field's text, or `None` for OFAC's empty mark `-0-` or an empty field.
fn optional(field: &str) -> Option<&str> {
    match field.trim() {
        "" | "-0-" => None,
        text => Some(text),
    }
}

fn required(file: &'static str, line: u64, field: &'static str, text: &str) -> Result<String, SanctionsError> {
    optional(text).map(str::to_owned).ok_or_else(|| bad_field(file, line, field, "is empty".into()))
}

fn bad_field(file: &'static str, line: u64, field: &'static str, reason: String) -> SanctionsError {
    SanctionsError::BadField { file, line, field, reason }
}

fn entry_number(file: &'static str, line: u64, text: &str) -> Result<u32, SanctionsError> {
    let text = text.trim();
    text.parse()
        .map_err(|_| bad_field(file, line, "ent_num", format!("`{}` is not an entry number", text.escape_debug())))
}

/// The index in `entries` of the entry an `alt.csv` or `add.csv` line points at.
fn entry_of(
    file: &'static str,
    line: u64,
    number: &str,
    by_number: &HashMap<u32, usize>,
) -> Result<usize, SanctionsError> {
    let number = entry_number(file, line, number)?;
    by_number.get(&number).copied().ok_or(SanctionsError::UnknownEntry { file, line, number })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDN: &str = r#"36,"AEROCARIBBEAN AIRLINES",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- 
173,"ANGLO-CARIBBEAN CO., LTD.",-0- ,"CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- 
1572,"NORIEGA, Manuel Antonio","individual","CUBA] [SDGT",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,"DOB 11 Feb 1934; a ""quoted"" remark."
9001,"SEA GHOST","vessel","IRAN","-0-","9HA1234","Crude Oil Tanker",-0- ,"150,000",-0- ,-0- ,-0- 
"#;
    const ALT: &str = r#"36,12,"aka","AERO-CARIBBEAN",-0- 
1572,900,"fka","NORIEGA MORENO, Manuel",-0- 
"#;
    const ADD: &str = r#"36,25,-0- ,"Havana","Cuba",-0- 
173,129,"Ibex House, The Minories","London EC3N 1DY","United Kingdom",-0- 
173,130,-0- ,"Havana","Cuba",-0- 
173,131,-0- ,"Somewhere","Atlantis",-0- 
173,132,-0- ,"Cienfuegos","Cuba",-0- 
"#;

    #[test]
    fn a_sample_parses_with_quotes_empties_aliases_and_addresses() {
        let list = SanctionsList::parse(SDN, ALT, ADD).unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(list.name_count(), 6);

        let airline = list.entry(36).unwrap();
        assert_eq!(airline.entry_type, EntryType::Entity);
        assert_eq!(airline.title, None);
        assert_eq!(airline.aliases, [Alias { name: "AERO-CARIBBEAN".into(), alias_type: AliasType::Aka }]);

        let anglo = list.entry(173).unwrap();
        assert_eq!(anglo.name, "ANGLO-CARIBBEAN CO., LTD.", "a quoted comma stays in the field");
        assert_eq!(anglo.countries, ["United Kingdom", "Cuba", "Atlantis"], "each once, in file order");
        assert_eq!(anglo.country_codes, ["GB", "CU"], "Atlantis has no code");

        let noriega = list.entry(1572).unwrap();
        assert_eq!(noriega.entry_type, EntryType::Individual);
        assert_eq!(noriega.programs, ["CUBA", "SDGT"]);
        assert_eq!(noriega.remarks.as_deref(), Some(r#"DOB 11 Feb 1934; a "quoted" remark."#));
        assert_eq!(noriega.aliases[0].alias_type, AliasType::Fka);
        assert!(noriega.countries.is_empty());

        assert_eq!(list.entry(9001).unwrap().entry_type, EntryType::Vessel);
        assert!(list.entry(1).is_none());
    }

    #[test]
    fn a_dos_end_of_file_mark_and_empty_files_are_accepted() {
        let list = SanctionsList::parse(&format!("{SDN}\u{1a}"), &format!("{ALT}\u{1a}\n"), "").unwrap();
        assert_eq!(list.len(), 4);
        assert!(list.entry(36).unwrap().countries.is_empty());
        let empty = SanctionsList::parse("", "", "").unwrap();
        assert!(empty.is_empty());
    }

    fn check_error(sdn: &str, alt: &str, add: &str, expected: &str) {
        match SanctionsList::parse(sdn, alt, add) {
            Ok(_) => panic!("parsed, expected the error `{expected}`"),
            Err(error) => assert_eq!(error.to_string(), expected),
        }
    }

    #[test]
    fn errors_name_the_file_line_and_field() {
        let bad_number = SDN.replace("173,", "17x,");
        check_error(&bad_number, ALT, ADD, "sdn.csv line 2, field `ent_num`: `17x` is not an entry number");
        let short = SDN.replace(r#""CUBA",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- "#, r#""CUBA",-0- "#);
        check_error(&short, ALT, ADD, "sdn.csv line 1: 5 fields, expected 12");
        let no_name = SDN.replace(r#""SEA GHOST""#, "-0- ");
        check_error(&no_name, ALT, ADD, "sdn.csv line 4, field `SDN_Name`: is empty");
        let bad_type = SDN.replace(r#""vessel""#, r#""submarine""#);
        check_error(&bad_type, ALT, ADD, "sdn.csv line 4, field `SDN_Type`: unknown type `submarine`");
        let twice = format!("{SDN}36,\"AGAIN\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n");
        check_error(&twice, ALT, ADD, "sdn.csv line 5: entry 36 is listed a second time (first on line 1)");
        let bad_alias_type = ALT.replace(r#""fka""#, r#""xka""#);
        check_error(SDN, &bad_alias_type, ADD, "alt.csv line 2, field `Alt_Type`: `xka` is not aka, fka or nka");
        let orphan_alias = format!("{ALT}4242,1,\"aka\",\"NOBODY\",-0- \n");
        check_error(SDN, &orphan_alias, ADD, "alt.csv line 3: entry 4242 is not in sdn.csv");
        let orphan_address = ADD.replace("173,131", "174,131");
        check_error(SDN, ALT, &orphan_address, "add.csv line 4: entry 174 is not in sdn.csv");
        let long_address = ADD.replace("\"Havana\",\"Cuba\",-0- \n173", "\"Havana\",\"Cuba\",-0- ,-0- \n173");
        check_error(SDN, ALT, &long_address, "add.csv line 1: 7 fields, expected 6");
    }

    #[test]
    fn errors_count_lines_inside_quoted_fields() {
        // A remark spanning two lines: the next record starts on line 3.
        let sdn = "1,\"A\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"two\nlines\"\nX,\"B\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n";
        check_error(sdn, "", "", "sdn.csv line 3, field `ent_num`: `X` is not an entry number");
    }
}
