//! Sanctions screening against the real bundled OFAC snapshot, through the public API: the cases
//! the issue asks for (a listed name, its spelling variants and aliases, clean names, entities with
//! legal forms, the country signal, the hook's decisions and reload) and the false-positive
//! measurement on common names.
//!
//! Run with `--nocapture` to see the measured rates.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, LazyLock};

use corridor_compliance::sanctions::{
    AliasType, CountrySignal, EntryType, MatchedName, NameMatch, SanctionsHook, SanctionsList, Score, Thresholds,
    ThresholdsError, Verdict,
};
use corridor_compliance::{ComplianceHook, CompliancePipeline, Decision, Outcome, Subject};
use corridor_schemas::{Address, Currency, Jurisdiction, Money, ParticipantId, Party, PaymentId};

static LIST: LazyLock<SanctionsList> = LazyLock::new(|| SanctionsList::bundled().unwrap());

fn jurisdiction(code: &str) -> Jurisdiction {
    Jurisdiction::new(code).unwrap()
}

fn screen(name: &str, country: Option<&str>) -> Verdict {
    LIST.screen(name, country.map(jurisdiction).as_ref(), &Thresholds::default())
}

/// The match behind a hit or a possible hit; panics on clear.
fn found(verdict: &Verdict) -> &NameMatch {
    match verdict {
        Verdict::Hit(found) | Verdict::PossibleHit(found) => found,
        other => panic!("expected a match, got {other:?}"),
    }
}

fn check_hit(name: &str, entry_number: u32, score_min: u16) {
    let verdict = screen(name, None);
    assert!(matches!(verdict, Verdict::Hit(_)), "{name}: {verdict:?}");
    let found = found(&verdict);
    assert_eq!(found.entry_number, entry_number, "{name}: {found:?}");
    assert!(found.score.per_mille() >= score_min, "{name}: {found:?}");
}

#[test]
fn a_sanctioned_individual_written_first_last_is_a_hit() {
    // SDN entry 6861 is listed as "GUZMAN LOERA, Joaquin"; 22790 as "MADURO MOROS, Nicolas".
    let verdict = screen("Joaquin Guzman Loera", None);
    let expected = NameMatch {
        entry_number: 6861,
        entry_name: "GUZMAN LOERA, Joaquin".into(),
        matched_name: "GUZMAN LOERA, Joaquin".into(),
        matched_as: MatchedName::Primary,
        name_score: Score::MAX,
        country_signal: CountrySignal::None,
        score: Score::MAX,
    };
    assert_eq!(verdict, Verdict::Hit(expected));
    check_hit("Nicolas Maduro Moros", 22790, 1000);
    // Accents, case and word order do not matter.
    check_hit("Joaquín GUZMÁN Loera", 6861, 1000);
    check_hit("Loera, Joaquin Guzman", 6861, 1000);
}

#[test]
fn spelling_variants_are_caught() {
    // One letter changed, two letters swapped, one letter left out.
    check_hit("Joaquin Guzman Loira", 6861, 920);
    check_hit("Joaqiun Guzman Loera", 6861, 980);
    check_hit("Nicolas Madura Moros", 22790, 970);
    // "BIN LADIN, Usama" (an alias of 6365) with a letter left out: held for review.
    let verdict = screen("Usama Bin Ladn", None);
    assert!(matches!(verdict, Verdict::PossibleHit(_)), "{verdict:?}");
    assert_eq!(found(&verdict).entry_number, 6365);
}

#[test]
fn aliases_are_caught() {
    let verdict = screen("National Bank of Cuba", None);
    let found = found(&verdict);
    assert!(matches!(verdict, Verdict::Hit(_)));
    assert_eq!((found.entry_number, found.entry_name.as_str()), (306, "BANCO NACIONAL DE CUBA"));
    assert_eq!(
        (found.matched_name.as_str(), found.matched_as),
        ("NATIONAL BANK OF CUBA", MatchedName::Alias(AliasType::Aka))
    );
    check_hit("Chapo Guzman", 6861, 1000);
    check_hit("Osama bin Laden", 6365, 1000);
}

#[test]
fn clean_names_are_clear() {
    for name in ["Jennifer Miller", "Sophie Roberts", "Hiroshi Tanaka", "Aisha Rahman", "Acme Widgets Ltd", "John Doe"]
    {
        assert_eq!(screen(name, None), Verdict::Clear, "{name}");
    }
    assert_eq!(screen("-- / --", None), Verdict::Unscreenable);
}

#[test]
fn entities_match_whatever_their_legal_form() {
    // Listed as "ANGLO-CARIBBEAN CO., LTD." and "BANCO NACIONAL DE CUBA".
    check_hit("Anglo Caribbean Company Limited", 173, 1000);
    check_hit("Banco Nacional de Cuba S.A.", 306, 1000);
    // A shared legal form and a shared generic word do not make a match: "GALAX TRADING CO., LTD."
    // is the closest to these, far below the thresholds.
    for name in ["Zenith Trading Company Limited", "Anglo Trading Ltd"] {
        let verdict = screen(name, None);
        assert_eq!(verdict, Verdict::Clear, "{name}");
        let best = LIST.best_match(name, None).unwrap();
        assert!(best.score.per_mille() < 600, "{name}: {best:?}");
    }
}

#[test]
fn the_country_signal_moves_a_borderline_score() {
    // "Nicolas Maduro" leaves out the second surname: 900 on the names alone, a possible hit. The
    // entry's address is in Venezuela.
    assert_eq!(LIST.entry(22790).unwrap().country_codes, ["VE"]);
    let check = |country: Option<&str>, signal: CountrySignal, score: u16, hit: bool| {
        let verdict = screen("Nicolas Maduro", country);
        let found = found(&verdict);
        assert_eq!((found.entry_number, found.name_score.per_mille()), (22790, 900));
        assert_eq!((found.country_signal, found.score.per_mille()), (signal, score), "{country:?}");
        assert_eq!(matches!(verdict, Verdict::Hit(_)), hit, "{country:?}: {verdict:?}");
    };
    check(None, CountrySignal::None, 900, false);
    check(Some("VE"), CountrySignal::Match, 950, true);
    check(Some("GB"), CountrySignal::Mismatch, 850, false);
    // A name identical to a listed one stays a hit wherever its holder lives.
    let verdict = screen("Nicolas Maduro Moros", Some("GB"));
    assert!(matches!(verdict, Verdict::Hit(_)));
    assert_eq!(found(&verdict).score.per_mille(), 950);
}

#[test]
fn thresholds_are_configurable() {
    let score = |per_mille| Score::new(per_mille).unwrap();
    assert_eq!(Score::new(1001), None);
    assert_eq!(Thresholds::default(), Thresholds::new(score(920), score(850)).unwrap());
    assert!(matches!(Thresholds::new(score(800), score(900)), Err(ThresholdsError::OutOfOrder { .. })));
    assert_eq!(Thresholds::new(score(900), Score::ZERO), Err(ThresholdsError::PossibleMinZero));
    // Stricter thresholds turn the same score (900) from a possible hit into a hit, or clear.
    let lenient = Thresholds::new(score(900), score(800)).unwrap();
    assert!(matches!(LIST.screen("Nicolas Maduro", None, &lenient), Verdict::Hit(_)));
    let strict = Thresholds::new(score(1000), score(950)).unwrap();
    assert_eq!(LIST.screen("Nicolas Maduro", None, &strict), Verdict::Clear);
}

fn party(name: &str, country: Option<&str>) -> Party {
    Party { name: Some(name.into()), country: country.map(jurisdiction), ..Party::default() }
}

/// The hook's decision on a payment between these parties.
async fn decide(hook: &SanctionsHook, originator: Option<&Party>, beneficiary: Option<&Party>) -> Decision {
    let participant = ParticipantId::new("bank-us").unwrap();
    let payer: Address = "e-usd/alice".parse().unwrap();
    let payee: Address = "e-usd/bob".parse().unwrap();
    let amounts = [Money::parse("100.00", Currency::from_code("USD").unwrap()).unwrap()];
    let jurisdictions = [jurisdiction("US")];
    let subject = Subject {
        payment: PaymentId::generate(),
        participant: &participant,
        payer: &payer,
        payee: &payee,
        amounts: &amounts,
        jurisdictions: &jurisdictions,
        originator,
        beneficiary,
    };
    hook.check(&jurisdiction("US"), &subject).await
}

fn bundled_hook() -> SanctionsHook {
    SanctionsHook::new(SanctionsList::bundled().unwrap(), Thresholds::default())
}

#[tokio::test]
async fn the_hook_denies_holds_and_allows_with_reason_codes() {
    let hook = bundled_hook();
    assert_eq!(hook.name(), "sanctions_screening");
    assert_eq!(hook.entries(), 7379);

    let cuba = party("Banco Nacional de Cuba", None);
    let clean = party("Jennifer Miller", Some("US"));
    let denied = decide(&hook, Some(&cuba), Some(&clean)).await;
    let Decision::Deny(reason) = denied else { panic!("{denied:?}") };
    assert_eq!(reason.code, "SANCTIONS_HIT");
    assert_eq!(
        reason.message,
        r#"originator "Banco Nacional de Cuba" matches SDN entry 306 "BANCO NACIONAL DE CUBA" (score 1000/1000)"#
    );

    // The beneficiary is screened too; an alias is named as such.
    let alias = party("National Bank of Cuba", None);
    let Decision::Deny(reason) = decide(&hook, Some(&clean), Some(&alias)).await else { panic!() };
    assert_eq!(
        reason.message,
        r#"beneficiary "National Bank of Cuba" matches SDN entry 306 "BANCO NACIONAL DE CUBA" through its aka "NATIONAL BANK OF CUBA" (score 1000/1000)"#
    );

    // A possible hit is held, with the country's part in the score spelled out.
    let maduro = party("Nicolas Maduro", Some("GB"));
    let Decision::Hold(reason) = decide(&hook, Some(&maduro), None).await else { panic!() };
    assert_eq!(reason.code, "SANCTIONS_POSSIBLE_MATCH");
    assert_eq!(
        reason.message,
        r#"originator "Nicolas Maduro" possibly matches SDN entry 22790 "MADURO MOROS, Nicolas" (score 850/1000: name 900/1000, lowered as the country is not among the entry's)"#
    );

    // A hit outranks a possible hit, and the message names both.
    let Decision::Deny(reason) = decide(&hook, Some(&maduro), Some(&cuba)).await else { panic!() };
    assert_eq!(reason.code, "SANCTIONS_HIT");
    assert!(reason.message.starts_with(r#"beneficiary "Banco Nacional de Cuba" matches"#), "{}", reason.message);
    assert!(reason.message.contains(r#"; originator "Nicolas Maduro" possibly matches"#), "{}", reason.message);

    // A name with nothing to compare fails closed, to a human.
    let Decision::Hold(reason) = decide(&hook, Some(&party("-- --", None)), None).await else { panic!() };
    assert_eq!(reason.code, "SANCTIONS_NAME_UNSCREENABLE");

    // Clean names, absent parties and parties without a name are allowed: whether names are
    // required is the travel-rule hook's decision.
    assert_eq!(decide(&hook, Some(&clean), Some(&party("Sophie Roberts", None))).await, Decision::Allow);
    assert_eq!(decide(&hook, None, None).await, Decision::Allow);
    assert_eq!(decide(&hook, Some(&Party::default()), None).await, Decision::Allow);
}

#[tokio::test]
async fn the_hook_runs_in_the_pipeline() {
    let mut pipeline = CompliancePipeline::new();
    pipeline.add_hook(jurisdiction("US"), Arc::new(bundled_hook()));
    let participant = ParticipantId::new("bank-us").unwrap();
    let payer: Address = "e-usd/alice".parse().unwrap();
    let payee: Address = "e-usd/bob".parse().unwrap();
    let amounts = [Money::parse("100.00", Currency::from_code("USD").unwrap()).unwrap()];
    let guzman = party("Joaquin Guzman Loera", Some("MX"));
    let jurisdictions = [jurisdiction("US")];
    let subject = Subject {
        payment: PaymentId::generate(),
        participant: &participant,
        payer: &payer,
        payee: &payee,
        amounts: &amounts,
        jurisdictions: &jurisdictions,
        originator: None,
        beneficiary: Some(&guzman),
    };
    let screening = pipeline.screen(&subject, &jurisdictions).await;
    assert_eq!(screening.outcome(), Outcome::Deny);
    let (decision, reason) = screening.first_objection().unwrap();
    assert_eq!((decision.hook, reason.code), ("sanctions_screening", "SANCTIONS_HIT"));
}

/// A one-entry list in the CSV distribution format.
fn list_of_one(number: u32, name: &str) -> SanctionsList {
    let sdn = format!("{number},\"{name}\",\"individual\",\"TEST\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n");
    SanctionsList::parse(&sdn, "", "").unwrap()
}

#[tokio::test]
async fn reload_swaps_the_list_and_screenings_in_flight_keep_theirs() {
    let hook = SanctionsHook::new(list_of_one(1, "DOE, John"), Thresholds::default());
    let doe = party("John Doe", None);
    let guzman = party("Joaquin Guzman Loera", None);
    assert_eq!(hook.entries(), 1);
    assert!(matches!(decide(&hook, Some(&doe), None).await, Decision::Deny(_)));
    assert_eq!(decide(&hook, Some(&guzman), None).await, Decision::Allow);

    // A screening that took the list before the reload keeps it to the end.
    let in_flight = hook.list();
    hook.reload(SanctionsList::bundled().unwrap());
    assert_eq!(hook.entries(), 7379);
    assert_eq!(decide(&hook, Some(&doe), None).await, Decision::Allow);
    assert!(matches!(decide(&hook, Some(&guzman), None).await, Decision::Deny(_)));
    assert!(matches!(in_flight.screen("John Doe", None, &hook.thresholds()), Verdict::Hit(_)));
    assert_eq!(in_flight.len(), 1);
}

#[test]
fn reload_while_screening_from_other_threads() {
    // Readers screen while the list is swapped back and forth: every answer comes from one whole
    // list (John Doe is on the first only, Joaquin Guzman Loera on the second only), never a mix.
    let hook = Arc::new(SanctionsHook::new(list_of_one(1, "DOE, John"), Thresholds::default()));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let hook = Arc::clone(&hook);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let list = hook.list();
                    let doe = matches!(list.screen("John Doe", None, &hook.thresholds()), Verdict::Hit(_));
                    let guzman =
                        matches!(list.screen("Joaquin Guzman Loera", None, &hook.thresholds()), Verdict::Hit(_));
                    assert!(doe != guzman, "a list with both or neither: {} entries", list.len());
                }
            })
        })
        .collect();
    for round in 0..20 {
        if round % 2 == 0 {
            hook.reload(list_of_one(6861, "GUZMAN LOERA, Joaquin"));
        } else {
            hook.reload(list_of_one(1, "DOE, John"));
        }
    }
    for reader in readers {
        reader.join().unwrap();
    }
}

/// 256 common first + last names from several cultures, each with a country its holder might give,
/// written as payments carry them. None was chosen with the list in view.
const COMMON_NAMES: &[(&str, &str)] = &[
    // English-speaking
    ("James Smith", "US"),
    ("Mary Johnson", "US"),
    ("John Williams", "US"),
    ("Patricia Brown", "US"),
    ("Robert Jones", "US"),
    ("Jennifer Miller", "US"),
    ("Michael Davis", "US"),
    ("Linda Wilson", "US"),
    ("William Anderson", "US"),
    ("Elizabeth Taylor", "US"),
    ("David Thomas", "US"),
    ("Barbara Moore", "US"),
    ("Richard Jackson", "US"),
    ("Susan Martin", "US"),
    ("Joseph Thompson", "US"),
    ("Jessica White", "US"),
    ("Thomas Harris", "US"),
    ("Sarah Clark", "US"),
    ("Charles Lewis", "GB"),
    ("Karen Robinson", "GB"),
    ("Christopher Walker", "GB"),
    ("Nancy Young", "GB"),
    ("Daniel Allen", "GB"),
    ("Lisa King", "GB"),
    ("Matthew Wright", "GB"),
    ("Betty Scott", "GB"),
    ("Anthony Green", "GB"),
    ("Margaret Baker", "GB"),
    ("Mark Adams", "GB"),
    ("Sandra Nelson", "GB"),
    ("Emily Hill", "AU"),
    ("Oliver Campbell", "AU"),
    ("Jack Mitchell", "AU"),
    ("Sophie Roberts", "AU"),
    ("Harry Carter", "AU"),
    ("Chloe Phillips", "AU"),
    // Spanish and Portuguese
    ("Jose Garcia", "MX"),
    ("Maria Rodriguez", "ES"),
    ("Juan Martinez", "CO"),
    ("Ana Hernandez", "AR"),
    ("Luis Lopez", "MX"),
    ("Carmen Gonzalez", "ES"),
    ("Carlos Perez", "CO"),
    ("Rosa Sanchez", "AR"),
    ("Jorge Ramirez", "MX"),
    ("Isabel Torres", "ES"),
    ("Pedro Flores", "CO"),
    ("Lucia Rivera", "AR"),
    ("Miguel Gomez", "MX"),
    ("Elena Diaz", "ES"),
    ("Francisco Morales", "CO"),
    ("Laura Reyes", "AR"),
    ("Antonio Cruz", "MX"),
    ("Marta Ortiz", "ES"),
    ("Javier Gutierrez", "CO"),
    ("Sofia Chavez", "AR"),
    ("Alejandro Ramos", "MX"),
    ("Paula Vargas", "ES"),
    ("Fernando Castillo", "CO"),
    ("Andrea Jimenez", "AR"),
    ("Joao Silva", "BR"),
    ("Ana Santos", "BR"),
    ("Pedro Oliveira", "BR"),
    ("Mariana Souza", "BR"),
    ("Lucas Pereira", "BR"),
    ("Beatriz Costa", "BR"),
    ("Rafael Almeida", "PT"),
    ("Camila Ferreira", "PT"),
    ("Gabriel Rodrigues", "PT"),
    ("Juliana Lima", "PT"),
    // Arabic, Persian, Turkish
    ("Mohammed Ali", "EG"),
    ("Fatima Hassan", "SA"),
    ("Ahmed Ibrahim", "JO"),
    ("Aisha Abdullah", "LB"),
    ("Omar Khalil", "AE"),
    ("Layla Mansour", "MA"),
    ("Yusuf Haddad", "EG"),
    ("Mariam Saleh", "SA"),
    ("Khalid Nasser", "JO"),
    ("Noor Aziz", "LB"),
    ("Hassan Farouk", "AE"),
    ("Zainab Hamdan", "MA"),
    ("Tariq Suleiman", "EG"),
    ("Huda Karim", "SA"),
    ("Samir Habib", "JO"),
    ("Rania Awad", "LB"),
    ("Karim Mahmoud", "AE"),
    ("Leila Rahimi", "MA"),
    ("Reza Hosseini", "IR"),
    ("Maryam Ahmadi", "IR"),
    ("Ali Moradi", "IR"),
    ("Sara Karimi", "IR"),
    ("Mehmet Yilmaz", "TR"),
    ("Ayse Kaya", "TR"),
    ("Mustafa Demir", "TR"),
    ("Elif Sahin", "TR"),
    ("Emre Celik", "TR"),
    ("Zeynep Aydin", "TR"),
    // Chinese, Japanese, Korean, Vietnamese
    ("Wei Zhang", "CN"),
    ("Li Wang", "CN"),
    ("Fang Li", "CN"),
    ("Jing Liu", "CN"),
    ("Min Chen", "CN"),
    ("Lei Yang", "CN"),
    ("Yan Huang", "CN"),
    ("Hao Zhao", "CN"),
    ("Xin Wu", "CN"),
    ("Ying Zhou", "CN"),
    ("Jun Xu", "CN"),
    ("Mei Sun", "CN"),
    ("Hiroshi Tanaka", "JP"),
    ("Yuki Suzuki", "JP"),
    ("Takeshi Takahashi", "JP"),
    ("Sakura Watanabe", "JP"),
    ("Kenji Ito", "JP"),
    ("Aiko Yamamoto", "JP"),
    ("Haruto Nakamura", "JP"),
    ("Yui Kobayashi", "JP"),
    ("Min-jun Kim", "KR"),
    ("Seo-yeon Lee", "KR"),
    ("Ji-ho Park", "KR"),
    ("Ha-eun Choi", "KR"),
    ("Do-yun Jung", "KR"),
    ("Soo-ah Kang", "KR"),
    ("Nguyen Van An", "VN"),
    ("Tran Thi Mai", "VN"),
    ("Le Van Hung", "VN"),
    ("Pham Thi Lan", "VN"),
    ("Hoang Minh Duc", "VN"),
    ("Vu Thi Hoa", "VN"),
    // Indian, Indonesian
    ("Rahul Sharma", "IN"),
    ("Priya Patel", "IN"),
    ("Amit Kumar", "IN"),
    ("Anjali Singh", "IN"),
    ("Vikram Gupta", "IN"),
    ("Sunita Reddy", "IN"),
    ("Arjun Nair", "IN"),
    ("Deepa Iyer", "IN"),
    ("Sanjay Mehta", "IN"),
    ("Kavita Joshi", "IN"),
    ("Rajesh Rao", "IN"),
    ("Pooja Verma", "IN"),
    ("Suresh Menon", "IN"),
    ("Lakshmi Pillai", "IN"),
    ("Budi Santoso", "ID"),
    ("Siti Rahayu", "ID"),
    ("Agus Setiawan", "ID"),
    ("Dewi Lestari", "ID"),
    ("Wahyu Hidayat", "ID"),
    ("Putri Wulandari", "ID"),
    // Russian and Slavic
    ("Ivan Ivanov", "RU"),
    ("Olga Petrova", "RU"),
    ("Dmitry Smirnov", "RU"),
    ("Natalia Kuznetsova", "RU"),
    ("Sergei Popov", "RU"),
    ("Elena Sokolova", "RU"),
    ("Alexei Lebedev", "RU"),
    ("Tatiana Kozlova", "RU"),
    ("Andrei Novikov", "RU"),
    ("Irina Morozova", "RU"),
    ("Piotr Nowak", "PL"),
    ("Anna Kowalska", "PL"),
    ("Tomasz Wisniewski", "PL"),
    ("Katarzyna Wojcik", "PL"),
    ("Jan Novak", "CZ"),
    ("Petra Svobodova", "CZ"),
    ("Milan Horvat", "HR"),
    ("Ivana Kovac", "HR"),
    // German, French, Italian, Nordic, Dutch
    ("Hans Muller", "DE"),
    ("Anna Schmidt", "DE"),
    ("Peter Schneider", "DE"),
    ("Julia Fischer", "DE"),
    ("Klaus Weber", "DE"),
    ("Monika Meyer", "DE"),
    ("Stefan Wagner", "AT"),
    ("Sabine Becker", "CH"),
    ("Jean Martin", "FR"),
    ("Marie Bernard", "FR"),
    ("Pierre Dubois", "FR"),
    ("Sophie Thomas", "FR"),
    ("Nicolas Robert", "FR"),
    ("Camille Richard", "FR"),
    ("Louis Petit", "FR"),
    ("Claire Durand", "FR"),
    ("Giuseppe Rossi", "IT"),
    ("Francesca Russo", "IT"),
    ("Marco Ferrari", "IT"),
    ("Giulia Esposito", "IT"),
    ("Luca Bianchi", "IT"),
    ("Chiara Romano", "IT"),
    ("Alessandro Colombo", "IT"),
    ("Valentina Ricci", "IT"),
    ("Lars Andersen", "DK"),
    ("Ingrid Nielsen", "DK"),
    ("Erik Johansson", "SE"),
    ("Astrid Larsson", "SE"),
    ("Mikko Virtanen", "FI"),
    ("Aino Korhonen", "FI"),
    ("Jan de Vries", "NL"),
    ("Sanne Jansen", "NL"),
    ("Pieter van Dijk", "NL"),
    ("Lotte Bakker", "NL"),
    // African
    ("Chinedu Okafor", "NG"),
    ("Ngozi Adeyemi", "NG"),
    ("Emeka Okonkwo", "NG"),
    ("Amaka Eze", "NG"),
    ("Oluwaseun Adebayo", "NG"),
    ("Funmilayo Bello", "NG"),
    ("Kwame Mensah", "GH"),
    ("Akosua Boateng", "GH"),
    ("Kofi Asante", "GH"),
    ("Ama Owusu", "GH"),
    ("Juma Mwangi", "KE"),
    ("Wanjiru Kamau", "KE"),
    ("Baraka Otieno", "KE"),
    ("Amina Njoroge", "KE"),
    ("Tendai Moyo", "ZW"),
    ("Thandiwe Ndlovu", "ZW"),
    ("Sipho Dlamini", "ZA"),
    ("Nomvula Khumalo", "ZA"),
    ("Abebe Bekele", "ET"),
    ("Tigist Tesfaye", "ET"),
    ("Moussa Diallo", "ML"),
    ("Aminata Traore", "ML"),
    ("Ousmane Diop", "SN"),
    ("Fatou Ndiaye", "SN"),
    // More, mixed
    ("Daniel Cohen", "IL"),
    ("Rachel Levi", "IL"),
    ("David Mizrahi", "IL"),
    ("Noa Friedman", "IL"),
    ("George Papadopoulos", "GR"),
    ("Eleni Georgiou", "GR"),
    ("Nikos Nikolaidis", "GR"),
    ("Andreea Popescu", "RO"),
    ("Mihai Ionescu", "RO"),
    ("Bogdan Stan", "RO"),
    ("Laszlo Nagy", "HU"),
    ("Eva Toth", "HU"),
    ("Arman Petrosyan", "AM"),
    ("Nino Beridze", "GE"),
    ("Aibek Nurlanov", "KZ"),
    ("Dilnoza Karimova", "UZ"),
    ("Tenzin Dorje", "NP"),
    ("Bilal Khan", "PK"),
    ("Ayesha Siddiqui", "PK"),
    ("Imran Chaudhry", "PK"),
    ("Nadia Rahman", "BD"),
    ("Farhan Hossain", "BD"),
    ("Sadia Islam", "BD"),
    ("Kamal Perera", "LK"),
    ("Nimal Fernando", "LK"),
    ("Anh Nguyen", "VN"),
    ("Somchai Saelim", "TH"),
    ("Niran Chaiyaporn", "TH"),
    ("Maria Santos Reyes", "PH"),
    ("Jose dela Cruz", "PH"),
];

struct Rates {
    hits: Vec<String>,
    possible_hits: Vec<String>,
}

fn rates(with_country: bool) -> Rates {
    let mut rates = Rates { hits: Vec::new(), possible_hits: Vec::new() };
    for (name, country) in COMMON_NAMES {
        let verdict = screen(name, with_country.then_some(*country));
        let describe = |found: &NameMatch| {
            format!("{name} ({country}) → {} \"{}\" {}", found.entry_number, found.matched_name, found.score)
        };
        match &verdict {
            Verdict::Hit(found) => rates.hits.push(describe(found)),
            Verdict::PossibleHit(found) => rates.possible_hits.push(describe(found)),
            Verdict::Clear | Verdict::Unscreenable => {}
        }
    }
    rates
}

/// `count` of the common names, in per mille.
fn per_mille(count: usize) -> usize {
    count * 1000 / COMMON_NAMES.len()
}

#[test]
fn false_positive_rate_on_common_names() {
    assert!(COMMON_NAMES.len() >= 200);
    for with_country in [false, true] {
        let rates = rates(with_country);
        println!(
            "common names {} country: {} names, hits {} ({}‰), possible hits {} ({}‰)",
            if with_country { "with" } else { "without" },
            COMMON_NAMES.len(),
            rates.hits.len(),
            per_mille(rates.hits.len()),
            rates.possible_hits.len(),
            per_mille(rates.possible_hits.len()),
        );
        for line in rates.hits.iter().map(|hit| format!("  hit: {hit}")) {
            println!("{line}");
        }
        for line in rates.possible_hits.iter().map(|possible| format!("  possible: {possible}")) {
            println!("{line}");
        }
        // The bounds: under 1.5% of common names denied outright (they are names that are on the
        // list as written), under 6% held for review.
        assert!(per_mille(rates.hits.len()) < 15, "hit rate: {:?}", rates.hits);
        assert!(per_mille(rates.possible_hits.len()) < 60, "possible-hit rate: {:?}", rates.possible_hits);
    }
}

/// "LAST1 LAST2, First Middle" → "First Middle LAST1 LAST2".
fn first_last(name: &str) -> String {
    match name.split_once(", ") {
        Some((last, first)) => format!("{first} {last}"),
        None => name.to_owned(),
    }
}

/// One letter of the name's longest word changed (not its first): the `seed`-th after the first,
/// modulo the word's length.
fn one_letter_changed(name: &str, seed: usize) -> String {
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
    let position = best_start + 1 + seed % (best_end - best_start - 1);
    characters[position] = if characters[position].eq_ignore_ascii_case(&'e') { 'a' } else { 'e' };
    characters.into_iter().collect()
}

#[test]
fn listed_individuals_and_their_one_letter_variants_are_caught() {
    // Every 20th individual of the list, written "First Last", as listed and with one letter of its
    // longest word changed.
    let individuals: Vec<_> = LIST
        .entries()
        .iter()
        .filter(|entry| entry.entry_type == EntryType::Individual)
        .step_by(20)
        .map(|entry| (entry.number, first_last(&entry.name)))
        .collect();
    let (mut exact_hits, mut variant_hits, mut variant_possible_hits) = (0, 0, 0);
    for (seed, (number, name)) in individuals.iter().enumerate() {
        if matches!(screen(name, None), Verdict::Hit(ref found) if found.entry_number == *number) {
            exact_hits += 1;
        }
        match screen(&one_letter_changed(name, seed), None) {
            Verdict::Hit(_) => variant_hits += 1,
            Verdict::PossibleHit(_) => variant_possible_hits += 1,
            _ => {}
        }
    }
    let total = individuals.len();
    println!(
        "listed individuals: {total}, as listed: {exact_hits} hits; one letter changed: {variant_hits} hits, {variant_possible_hits} possible hits"
    );
    assert_eq!(exact_hits, total, "every listed name, reordered, is a hit on its own entry");
    // At least 95% of variants caught (hit or held), at least 85% hits.
    assert!((variant_hits + variant_possible_hits) * 100 >= total * 95);
    assert!(variant_hits * 100 >= total * 85);
}
