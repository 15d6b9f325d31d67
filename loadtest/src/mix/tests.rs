use std::collections::BTreeMap;

use super::*;
use crate::outcome::OutcomeClass;

const SMALL: &str = r#"
[names]
HK = ["Chan Tai Man"]

[[kind]]
name = "domestic"
weight = 30
participant = "bank-hk"
payer = "e-hkd/bank-hk.w{01..03}"
payee = "e-hkd/bank-hk.w{04..06}"
amount = "10.00..20.00"
currency = "HKD"
originator = { country = "HK", address = "{1..9} Harbour Road" }
beneficiary = { country = "HK" }

[[kind]]
name = "cross-border"
weight = 70
participant = "bank-hk"
payer = "e-hkd/bank-hk.w01"
payee = "e-cny/bank-cn.w01"
amount = "5.00"
currency = "HKD"
originator = { name = "Wong Siu Ling", country = "HK" }
beneficiary = { name = ["Li Wei", "Liu Yang"], country = "CN" }

[[kind]]
name = "cross-border"
share = 3
participant = "bank-cn"
payer = "e-cny/bank-cn.w01"
payee = "e-hkd/bank-hk.w01"
amount = "7.00"
currency = "HKD"
fixed_side = "receive"
quoted = true
originator = { name = "Li Wei", country = "CN" }
beneficiary = { name = "Chan Tai Man", country = "HK" }
expect = "REJECTED:NO_ROUTE"
"#;

/// How often each kind name was drawn in `draws` requests.
fn draw_counts(mix: &Mix, draws: u64) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for index in 0..draws {
        let generated = mix.generate(1, index, "t");
        *counts.entry(mix.kinds()[generated.kind].name.clone()).or_default() += 1;
    }
    counts
}

#[test]
fn the_built_in_mix_has_every_required_kind_with_its_expectation() {
    let mix = Mix::demo().unwrap();
    let kinds: BTreeMap<&str, (u32, String)> =
        mix.kinds().iter().map(|kind| (kind.name.as_str(), (kind.weight, kind.expectations()))).collect();
    for (name, expect) in [
        ("domestic", "SETTLED"),
        ("cross-border", "SETTLED"),
        ("quoted", "SETTLED"),
        ("multi-hop", "SETTLED"),
        ("sanctioned", "REJECTED:SANCTIONS_HIT"),
        ("insufficient-funds", "REJECTED:INSUFFICIENT_FUNDS"),
    ] {
        let (weight, expectations) = &kinds[name];
        assert!(*weight > 0, "{name} is disabled");
        assert_eq!(expectations, expect, "{name}");
    }
    // Every instruction carries names for screening, and a quoted kind exists.
    for index in 0..500 {
        let generated = mix.generate(3, index, "t");
        let instruction = &generated.instruction;
        assert!(!instruction.originator.as_ref().unwrap().name.is_empty());
        assert!(!instruction.beneficiary.as_ref().unwrap().name.is_empty());
        assert_ne!(instruction.payer, instruction.payee, "{}", describe(instruction));
        if mix.kinds()[generated.kind].name == "quoted" {
            assert!(generated.entry.quoted);
        }
    }
}

#[test]
fn generation_fills_every_field_from_its_entry() {
    let mix = Mix::parse(SMALL).unwrap();
    let generated = (0..100)
        .map(|index| mix.generate(9, index, "run-1"))
        .find(|generated| generated.entry.quoted)
        .expect("the quoted entry is drawn within 100 requests");
    assert_eq!(generated.entry.expect.class, OutcomeClass::Rejected);
    let instruction = generated.instruction;
    assert!(instruction.idempotency_key.starts_with("run-1-"));
    assert_eq!(instruction.participant_id, "bank-cn");
    assert_eq!((instruction.payer.as_str(), instruction.payee.as_str()), ("e-cny/bank-cn.w01", "e-hkd/bank-hk.w01"));
    assert_eq!(instruction.amount, Some(wire::Money { currency: "HKD".to_owned(), amount: "7.00".to_owned() }));
    assert_eq!(instruction.fixed_side, wire::FixedSide::Receive as i32);
    let originator = instruction.originator.unwrap();
    assert_eq!((originator.name.as_str(), originator.country.as_str()), ("Li Wei", "CN"));
    assert_eq!(instruction.quote_id, "");

    let domestic = (0..100).map(|index| mix.generate(9, index, "k")).find(|generated| generated.kind == 0).unwrap();
    let originator = domestic.instruction.originator.unwrap();
    assert_eq!(originator.name, "Chan Tai Man", "the name comes from [names] of its country");
    assert!(originator.address.ends_with(" Harbour Road"));
    let beneficiary = domestic.instruction.beneficiary.unwrap();
    assert_eq!(beneficiary.name, "Chan Tai Man");
}

#[test]
fn the_same_seed_and_index_draw_the_same_request() {
    let mix = Mix::demo().unwrap();
    for index in [0, 1, 17, 1_000_000] {
        assert_eq!(mix.generate(42, index, "p").instruction, mix.generate(42, index, "p").instruction);
    }
    let first: Vec<_> = (0..20).map(|index| mix.generate(42, index, "p").instruction).collect();
    let other_seed: Vec<_> = (0..20).map(|index| mix.generate(43, index, "p").instruction).collect();
    assert_ne!(first, other_seed);
}

#[test]
fn weights_split_between_kinds_and_shares_within_a_kind() {
    let mix = Mix::parse(SMALL).unwrap();
    let counts = draw_counts(&mix, 20_000);
    // 30 : 70 within a few percent.
    let domestic = counts["domestic"];
    assert!((5_400..=6_600).contains(&domestic), "{counts:?}");
    // Within cross-border, shares 1 : 3.
    let mut quoted = 0;
    let mut cross_border = 0;
    for index in 0..20_000 {
        let generated = mix.generate(1, index, "t");
        if generated.kind == 1 {
            cross_border += 1;
            quoted += u64::from(generated.entry.quoted);
        }
    }
    assert!((cross_border * 70 / 100..=cross_border * 80 / 100).contains(&quoted), "{quoted} of {cross_border}");
}

#[test]
fn overrides_change_weights_by_name_and_zero_disables() {
    let mut mix = Mix::parse(SMALL).unwrap();
    mix.override_weights("cross-border=0").unwrap();
    assert_eq!(draw_counts(&mix, 1_000), BTreeMap::from([("domestic".to_owned(), 1_000)]));
    mix.override_weights(" domestic = 0 , cross-border=5").unwrap();
    assert_eq!(draw_counts(&mix, 1_000), BTreeMap::from([("cross-border".to_owned(), 1_000)]));
    let weights: Vec<(String, u32)> = mix.kinds().iter().map(|kind| (kind.name.clone(), kind.weight)).collect();
    assert_eq!(weights, [("domestic".to_owned(), 0), ("cross-border".to_owned(), 5)]);
}

#[test]
fn bad_overrides_are_refused_precisely() {
    fn check(overrides: &str, message: &str) {
        let mut mix = Mix::parse(SMALL).unwrap();
        let error = mix.override_weights(overrides).unwrap_err().to_string();
        assert_eq!(error, message, "{overrides:?}");
    }
    check("domestc=5", "--mix: the mix has no kind \"domestc\" (it has: domestic, cross-border)");
    check("domestic", "--mix \"domestic\": expected name=weight, e.g. domestic=20");
    check("domestic=-1", "--mix \"domestic=-1\": the weight must be a whole number 0..=1000000");
    check("domestic=1000001", "--mix \"domestic=1000001\": the weight must be a whole number 0..=1000000");
    check("domestic=1,domestic=2", "--mix names \"domestic\" twice");
    check(
        "domestic=0,cross-border=0",
        "--mix \"domestic=0,cross-border=0\": every kind of the mix has weight 0: nothing to send",
    );
}

#[test]
fn bad_mix_files_are_refused_naming_the_entry_and_field() {
    fn check(edit: (&str, &str), message: &str) {
        let source = SMALL.replacen(edit.0, edit.1, 1);
        assert_ne!(source, SMALL, "the edit {edit:?} changed nothing");
        let error = format!("{:#}", Mix::parse(&source).unwrap_err());
        assert!(error.contains(message), "{edit:?}: {error:?} does not say {message:?}");
    }
    check(
        ("payer = \"e-hkd/bank-hk.w{01..03}\"", "payer = \"e-hkd/bank-hk.w{03..01}\""),
        "[[kind]] #1 (\"domestic\"): payer: `{03..01}` in \"e-hkd/bank-hk.w{03..01}\": 3 is above 1",
    );
    check(("amount = \"10.00..20.00\"", "amount = \"ten\""), "[[kind]] #1 (\"domestic\"): amount \"ten\"");
    check(("expect = \"REJECTED:NO_ROUTE\"", "expect = \"REFUSED\""), "[[kind]] #3 (\"cross-border\"): expect");
    check(
        ("share = 3", "share = 3\nweight = 71"),
        "[[kind]] #3 (\"cross-border\"): weight 71 differs from the weight 70",
    );
    check(("weight = 30\n", ""), "[[kind]] #1 (\"domestic\"): the first entry of a name needs a weight");
    check(("weight = 30", "weight = 1000001"), "weight 1000001 is above 1000000");
    check(("share = 3", "share = 0"), "share 0 is not in 1..=1000000");
    check(("name = \"domestic\"", "name = \"dom=estic\""), "[[kind]] #1 (\"dom=estic\"): a name must be non-empty");
    check(("name = \"domestic\"", "name = \" domestic\""), "a name must be non-empty, without ',', '='");
    check(("fixed_side = \"receive\"", "fixed_side = \"both\""), "unknown variant `both`");
    check(("quoted = true", "quoted = true\nspeed = 3"), "unknown field `speed`");
    check(
        ("beneficiary = { country = \"HK\" }", "beneficiary = { country = \"TH\" }"),
        "beneficiary has no name, and [names] has none for its country \"TH\"",
    );
    let all_disabled = SMALL.replacen("weight = 30", "weight = 0", 1).replacen("weight = 70", "weight = 0", 1);
    assert_eq!(
        Mix::parse(&all_disabled).unwrap_err().to_string(),
        "every kind of the mix has weight 0: nothing to send"
    );
    assert_eq!(Mix::parse("").unwrap_err().to_string(), "the mix has no [[kind]]");
}

#[test]
fn a_million_account_mix_draws_without_listing_them() {
    let source = SMALL.replacen("e-hkd/bank-hk.w{04..06}", "e-hkd/user.{0000001..1000000}", 1);
    let mix = Mix::parse(&source).unwrap();
    let payees: BTreeSet<String> = (0..2_000)
        .map(|index| mix.generate(5, index, "t"))
        .filter(|generated| generated.kind == 0)
        .map(|generated| generated.instruction.payee)
        .collect();
    assert!(payees.len() > 500, "{} distinct payees", payees.len());
    assert!(payees.iter().all(|payee| payee.len() == "e-hkd/user.".len() + 7), "{payees:?}");
}

#[test]
fn the_payload_size_follows_the_mix() {
    let mix = Mix::demo().unwrap();
    let bytes = mix.mean_request_bytes(1);
    assert!((150..=600).contains(&bytes), "{bytes} bytes");
}
