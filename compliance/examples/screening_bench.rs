//! Measures sanctions screening on the bundled OFAC snapshot: the time to parse and index the full
//! list, then the time of each of N screenings (default 10,000; `-- N` to change) of a mix of clean
//! names and sanctioned names, with median, p99, p99.9 and max per screening, and what the default
//! thresholds made of each group.
//!
//! Run: `cargo run --release -p corridor-compliance --example screening_bench [-- N]`.
//!
//! The mix (deterministic, from a fixed seed): 80% clean names built from common first and last
//! names of many cultures (some of which *are* on the list, as real names are); 20% names taken from
//! the list — primary names and aliases, individuals turned into "First Last" — of which half have
//! one letter changed and a quarter have their words shuffled. It does not measure the hook's
//! async overhead or a list reload.

use std::time::{Duration, Instant};

use corridor_compliance::sanctions::{EntryType, SanctionsList, Thresholds, Verdict};
use hdrhistogram::Histogram;

const SCREENINGS_DEFAULT: usize = 10_000;
const SANCTIONED_SHARE_PERCENT: u64 = 20;

const FIRST_NAMES: &[&str] = &[
    "James", "Mary", "John", "Linda", "Michael", "Sarah", "David", "Emma", "Jose", "Maria", "Juan", "Ana", "Carlos",
    "Lucia", "Pedro", "Sofia", "Mohammed", "Fatima", "Ahmed", "Aisha", "Omar", "Layla", "Yusuf", "Mariam", "Reza",
    "Maryam", "Mehmet", "Ayse", "Wei", "Li", "Fang", "Jing", "Hiroshi", "Yuki", "Min-jun", "Seo-yeon", "Rahul",
    "Priya", "Amit", "Anjali", "Budi", "Siti", "Ivan", "Olga", "Dmitry", "Natalia", "Piotr", "Anna", "Hans", "Julia",
    "Pierre", "Claire", "Giuseppe", "Giulia", "Lars", "Ingrid", "Chinedu", "Ngozi", "Kwame", "Ama", "Juma", "Wanjiru",
    "Moussa", "Aminata", "Daniel", "Rachel", "Nikos", "Eleni", "Bilal", "Ayesha",
];

const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Taylor",
    "Wilson",
    "Garcia",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Silva",
    "Santos",
    "Oliveira",
    "Hassan",
    "Ibrahim",
    "Abdullah",
    "Khalil",
    "Mansour",
    "Haddad",
    "Hosseini",
    "Ahmadi",
    "Yilmaz",
    "Kaya",
    "Zhang",
    "Wang",
    "Chen",
    "Liu",
    "Tanaka",
    "Suzuki",
    "Kim",
    "Park",
    "Sharma",
    "Patel",
    "Kumar",
    "Singh",
    "Santoso",
    "Ivanov",
    "Petrova",
    "Smirnov",
    "Nowak",
    "Kowalska",
    "Muller",
    "Schmidt",
    "Dubois",
    "Bernard",
    "Rossi",
    "Ferrari",
    "Andersen",
    "Johansson",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Boateng",
    "Mwangi",
    "Kamau",
    "Diallo",
    "Traore",
    "Cohen",
    "Levi",
    "Papadopoulos",
    "Khan",
    "Siddiqui",
    "Rahman",
    "Nguyen",
    "Tran",
    "Perera",
    "Novak",
    "Horvat",
];

/// xorshift64*: a fixed seed makes every run screen the same names.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// "LAST1 LAST2, First Middle" → "First Middle LAST1 LAST2"; other names unchanged.
fn first_last(name: &str) -> String {
    match name.split_once(", ") {
        Some((last, first)) => format!("{first} {last}"),
        None => name.to_owned(),
    }
}

/// One letter (not the first) of the name's longest word changed.
fn one_letter_changed(name: &str, rng: &mut Rng) -> String {
    let mut characters: Vec<char> = name.chars().collect();
    let (mut best_start, mut best_end, mut start) = (0, 0, None);
    for (index, character) in characters.iter().chain(std::iter::once(&' ')).enumerate() {
        match (character.is_alphabetic(), start) {
            (true, None) => start = Some(index),
            (false, Some(from)) => {
                if index - from > best_end - best_start {
                    (best_start, best_end) = (from, index);
                }
                start = None;
            }
            _ => {}
        }
    }
    if best_end - best_start < 2 {
        return name.to_owned();
    }
    let position = best_start + 1 + rng.below(best_end - best_start - 1);
    characters[position] = if characters[position].eq_ignore_ascii_case(&'e') { 'a' } else { 'e' };
    characters.into_iter().collect()
}

fn shuffled_words(name: &str, rng: &mut Rng) -> String {
    let mut words: Vec<&str> = name.split_whitespace().collect();
    for index in (1..words.len()).rev() {
        words.swap(index, rng.below(index + 1));
    }
    words.join(" ")
}

/// A name from the list, as a payment might carry it.
fn sanctioned_name(list: &SanctionsList, rng: &mut Rng) -> String {
    let entries = list.entries();
    let entry = &entries[rng.below(entries.len())];
    let listed = match rng.below(1 + entry.aliases.len()) {
        0 => entry.name.as_str(),
        alias => entry.aliases[alias - 1].name.as_str(),
    };
    let mut name = if entry.entry_type == EntryType::Individual { first_last(listed) } else { listed.to_owned() };
    if rng.below(2) == 0 {
        name = one_letter_changed(&name, rng);
    }
    if rng.below(4) == 0 {
        name = shuffled_words(&name, rng);
    }
    name
}

#[derive(Default)]
struct Tally {
    hits: usize,
    possible_hits: usize,
    clear: usize,
}

impl Tally {
    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Hit(_) => self.hits += 1,
            Verdict::PossibleHit(_) => self.possible_hits += 1,
            Verdict::Clear | Verdict::Unscreenable => self.clear += 1,
        }
    }

    fn line(&self, group: &str) -> String {
        let total = (self.hits + self.possible_hits + self.clear).max(1);
        let percent = |count: usize| format!("{}.{}%", count * 100 / total, count * 1000 / total % 10);
        format!(
            "{group:>10}: {total:>6} names, hit {:>5} ({}), possible hit {:>5} ({}), clear {:>5} ({})",
            self.hits,
            percent(self.hits),
            self.possible_hits,
            percent(self.possible_hits),
            self.clear,
            percent(self.clear)
        )
    }
}

fn micros(nanos: u64) -> String {
    format!("{}.{:01} µs", nanos / 1000, nanos % 1000 / 100)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let screenings: usize = match std::env::args().nth(1) {
        Some(count) => count.parse()?,
        None => SCREENINGS_DEFAULT,
    };

    let started = Instant::now();
    let list = SanctionsList::bundled()?;
    let load_time = started.elapsed();
    println!(
        "list: {} entries, {} names (primary + aliases); parsed and indexed in {:.1?}",
        list.len(),
        list.name_count(),
        load_time
    );

    let mut rng = Rng(0x5EED_CA5E_D00D_F00D);
    let names: Vec<(bool, String)> = (0..screenings)
        .map(|_| {
            if rng.next() % 100 < SANCTIONED_SHARE_PERCENT {
                (true, sanctioned_name(&list, &mut rng))
            } else {
                (false, format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)))
            }
        })
        .collect();

    let thresholds = Thresholds::default();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3)?;
    let (mut clean, mut sanctioned) = (Tally::default(), Tally::default());
    let run_started = Instant::now();
    for (is_sanctioned, name) in &names {
        let started = Instant::now();
        let verdict = list.screen(name, None, &thresholds);
        let elapsed = started.elapsed();
        histogram.record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1))?;
        if *is_sanctioned { sanctioned.count(&verdict) } else { clean.count(&verdict) }
    }
    let run_time = run_started.elapsed();

    println!(
        "screened {} names in {:.1?} ({} per second), thresholds hit {} / possible {}",
        names.len(),
        run_time,
        u128::from(u64::try_from(names.len()).unwrap_or(0)) * 1_000_000_000 / run_time.as_nanos().max(1),
        thresholds.hit_min(),
        thresholds.possible_min()
    );
    println!(
        "per screening: median {}, p99 {}, p99.9 {}, max {}",
        micros(histogram.value_at_quantile(0.5)),
        micros(histogram.value_at_quantile(0.99)),
        micros(histogram.value_at_quantile(0.999)),
        micros(histogram.max())
    );
    println!("{}", clean.line("clean"));
    println!("{}", sanctioned.line("sanctioned"));
    if load_time > Duration::from_secs(5) {
        println!("warning: loading took more than 5 s");
    }
    Ok(())
}
