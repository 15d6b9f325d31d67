//! Route finding and multi-hop pricing, with amounts computed by hand in the comments, and a
//! property test that no route creates money.

use std::time::{Duration, SystemTime};

use corridor_schemas::{Address, Currency, QuoteRequest};
use proptest::prelude::*;

use super::*;
use crate::config::Config;

/// e-THB, e-HKD, e-AED, e-CNY. lp-a bridges THB/HKD, lp-b HKD/AED, lp-c (optional) THB/AED
/// directly. No provider quotes THB/AED unless a test adds lp-c's rate.
const NETWORK: &str = r#"
[fx]
rate_max_age_ms = 60000
hop_limit = 3

[[ledgers]]
id = "e-thb"
currency = "THB"
jurisdiction = "TH"

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-aed"
currency = "AED"
jurisdiction = "AE"

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"

[[participants]]
id = "bank-th"
role = "bank"
accounts = [{ address = "e-thb/th.a", opening_balance = "1000000.00" }]

[[participants]]
id = "bank-ae"
role = "bank"
accounts = [{ address = "e-aed/ae.a" }]

[[participants]]
id = "lp-a"
role = "liquidity_provider"
accounts = [{ address = "e-thb/lp-a" }, { address = "e-hkd/lp-a" }]

[[participants]]
id = "lp-b"
role = "liquidity_provider"
accounts = [{ address = "e-hkd/lp-b" }, { address = "e-aed/lp-b" }]

[[participants]]
id = "lp-c"
role = "liquidity_provider"
accounts = [{ address = "e-thb/lp-c" }, { address = "e-aed/lp-c" }]

[[rates]]
provider = "lp-a"
pair = "HKD/THB"
bid = "4.1560"
ask = "4.1730"

[[rates]]
provider = "lp-b"
pair = "HKD/AED"
bid = "0.4711"
ask = "0.4730"

[[fees]]
from_ledger = "e-thb"
currency = "THB"
fixed = "5.00"
basis_points = 5

[[fees]]
from_ledger = "e-hkd"
to_ledger = "e-aed"
currency = "HKD"
fixed = "1.00"
basis_points = 5
"#;

fn network_with(extra: &str) -> Network {
    let config = Config::from_toml(&format!("{NETWORK}\n{extra}")).unwrap();
    Network::embedded(&config, "test").unwrap()
}

fn money(text: &str) -> Money {
    let (amount, code) = text.split_once(' ').unwrap();
    Money::parse(amount, Currency::from_code(code).unwrap()).unwrap()
}

fn request(amount: &str, fixed_side: FixedSide) -> QuoteRequest {
    QuoteRequest {
        participant: ParticipantId::new("bank-th").unwrap(),
        payer: "e-thb/th.a".parse::<Address>().unwrap(),
        payee: "e-aed/ae.a".parse::<Address>().unwrap(),
        amount: money(amount),
        fixed_side,
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// Each leg as `ledger: account amount, ...` for compact comparisons.
fn legs(plan: &Plan) -> Vec<String> {
    plan.legs
        .iter()
        .map(|leg| {
            let postings: Vec<String> = leg
                .postings
                .iter()
                .map(|p| {
                    format!("{} {}", p.account, corridor_schemas::money::format_minor_units(p.amount_minor, p.currency))
                })
                .collect();
            format!("{}: {}", leg.ledger, postings.join(", "))
        })
        .collect()
}

#[test]
fn thb_to_aed_goes_through_hkd_at_hand_computed_amounts_fixed_send() {
    let plan = plan(&network_with(""), &request("10000.00 THB", FixedSide::Send), now()).unwrap();
    assert_eq!(plan.route.iter().map(ToString::to_string).collect::<Vec<_>>(), ["e-thb", "e-hkd", "e-aed"]);
    // Payer's fee: 5.00 + 10000.00 × 0.0005 = 10.00 THB, on top.
    // Hop 1, THB → HKD with lp-a's HKD/THB ask: 10000 ÷ 4.1730 = 2396.3575… → 2396.35 HKD (down).
    // On e-HKD the hop-2 fee comes out: the largest x with x + 1.00 + ⌊x × 0.0005⌋ ≤ 2396.35 is
    // 2394.16 (fee 1.00 + 1.19 = 2.19; 2394.16 + 2.19 = 2396.35 exactly).
    // Hop 2, HKD → AED with lp-b's bid: 2394.16 × 0.4711 = 1127.888776 → 1127.88 AED (down).
    assert_eq!(
        (plan.send, plan.total_debit, plan.receive),
        (money("10000.00 THB"), money("10010.00 THB"), money("1127.88 AED"))
    );
    assert_eq!(
        legs(&plan),
        [
            "e-thb: th.a -10010.00, lp-a 10000.00, corridor.fees 10.00",
            "e-hkd: lp-a -2396.35, lp-b 2394.16, corridor.fees 2.19",
            "e-aed: lp-b -1127.88, ae.a 1127.88",
        ]
    );
    let fees: Vec<String> = plan.fees.iter().map(|fee| format!("{} {}->{}", fee.amount, fee.from, fee.to)).collect();
    assert_eq!(fees, ["10.00 THB e-thb->e-hkd", "2.19 HKD e-hkd->e-aed"]);
}

#[test]
fn thb_to_aed_goes_through_hkd_at_hand_computed_amounts_fixed_receive() {
    let plan = plan(&network_with(""), &request("1000.00 AED", FixedSide::Receive), now()).unwrap();
    // Hop 2 backward: 1000.00 AED ÷ 0.4711 = 2122.6915… → 2122.70 HKD (up).
    // Hop-2 fee on it: 1.00 + ⌊2122.70 × 0.0005⌋ = 1.00 + 1.06 = 2.06, so 2124.76 HKD must arrive.
    // Hop 1 backward: 2124.76 × 4.1730 = 8866.62348 → 8866.63 THB (up).
    // Payer's fee: 5.00 + ⌊8866.63 × 0.0005⌋ = 5.00 + 4.43 = 9.43; debit 8876.06 THB.
    assert_eq!(
        (plan.send, plan.total_debit, plan.receive),
        (money("8866.63 THB"), money("8876.06 THB"), money("1000.00 AED"))
    );
    assert_eq!(
        legs(&plan),
        [
            "e-thb: th.a -8876.06, lp-a 8866.63, corridor.fees 9.43",
            "e-hkd: lp-a -2124.76, lp-b 2122.70, corridor.fees 2.06",
            "e-aed: lp-b -1000.00, ae.a 1000.00",
        ]
    );
}

#[test]
fn the_cheapest_route_wins_direct_or_through_a_pivot() {
    // Through HKD the payee gets 1127.88 AED for 10010.00 THB (above).
    // Direct at ask 8.90: 10000 ÷ 8.90 = 1123.59 AED for the same debit: worse, so via HKD.
    let worse = "[[rates]]\nprovider = \"lp-c\"\npair = \"AED/THB\"\nbid = \"8.80\"\nask = \"8.90\"";
    let plan_worse = plan(&network_with(worse), &request("10000.00 THB", FixedSide::Send), now()).unwrap();
    assert_eq!(plan_worse.route.len(), 3);
    assert_eq!(plan_worse.receive, money("1127.88 AED"));
    // Direct at ask 8.85: 10000 ÷ 8.85 = 1129.94 AED: better than via HKD.
    let better = "[[rates]]\nprovider = \"lp-c\"\npair = \"AED/THB\"\nbid = \"8.80\"\nask = \"8.85\"";
    let plan_better = plan(&network_with(better), &request("10000.00 THB", FixedSide::Send), now()).unwrap();
    assert_eq!(plan_better.route.len(), 2);
    assert_eq!(plan_better.receive, money("1129.94 AED"));
    assert_eq!(legs(&plan_better)[1], "e-aed: lp-c -1129.94, ae.a 1129.94");
}

#[test]
fn refusals_say_why() {
    let check = |extra: &str, request: QuoteRequest, at: SystemTime, code: &str, words: &str| {
        let network = network_with(extra);
        let reason = plan(&network, &request, at).unwrap_err();
        assert_eq!(reason.code, code, "{}", reason.message);
        assert!(reason.message.contains(words), "`{}` lacks `{words}`", reason.message);
    };
    let send = request("10000.00 THB", FixedSide::Send);
    check("", request("10000.00 THB", FixedSide::Send), now() + Duration::from_secs(61), "STALE_RATES", "older");
    // Two hops are needed; a hop limit of one finds nothing.
    let limited = NETWORK.replace("hop_limit = 3", "hop_limit = 1");
    let network = Network::embedded(&Config::from_toml(&limited).unwrap(), "test").unwrap();
    let reason = plan(&network, &send, now()).unwrap_err();
    assert_eq!(reason.code, "NO_ROUTE");
    assert!(reason.message.contains("at most 1 liquidity provider"), "{}", reason.message);
    // lp-b fills at most 1000 AED; 10000 THB makes 1127.88.
    let capped = NETWORK.replace("ask = \"0.4730\"", "ask = \"0.4730\"\nmaximum = \"1000.00 AED\"");
    let network = Network::embedded(&Config::from_toml(&capped).unwrap(), "test").unwrap();
    let reason = plan(&network, &send, now()).unwrap_err();
    assert_eq!(reason.code, "ABOVE_PROVIDER_MAXIMUM", "{}", reason.message);
    assert_eq!(plan(&network, &request("5000.00 THB", FixedSide::Send), now()).unwrap().route.len(), 3);
    // 0.01 THB ÷ 4.1730 is less than one cent of HKD.
    check("", request("0.01 THB", FixedSide::Send), now(), "AMOUNT_BELOW_MINOR_UNIT", "less than one minor unit");
    // e-CNY has no provider at all.
    let to_cny = QuoteRequest { payee: "e-cny/nobody".parse().unwrap(), ..send.clone() };
    check("", to_cny, now(), "NO_ROUTE", "connects e-thb to e-cny");
}

#[test]
fn a_participant_fee_wins_over_the_corridor_fee_and_domestic_fees_need_their_own_entry() {
    let own = "[[fees]]\nfrom_ledger = \"e-thb\"\nparticipant = \"bank-th\"\ncurrency = \"THB\"\nfixed = \"1.00\"";
    let plan_own = plan(&network_with(own), &request("10000.00 THB", FixedSide::Send), now()).unwrap();
    assert_eq!(plan_own.total_debit, money("10001.00 THB"));
    let domestic = QuoteRequest { payee: "e-thb/lp-a".parse().unwrap(), ..request("100.00 THB", FixedSide::Send) };
    let free = plan(&network_with(""), &domestic, now()).unwrap();
    assert_eq!((free.total_debit, free.fees.len()), (money("100.00 THB"), 0));
    let charged = "[[fees]]\nfrom_ledger = \"e-thb\"\nto_ledger = \"e-thb\"\ncurrency = \"THB\"\nfixed = \"0.50\"";
    let paid = plan(&network_with(charged), &domestic, now()).unwrap();
    assert_eq!(paid.total_debit, money("100.50 THB"));
    assert_eq!(legs(&paid), ["e-thb: th.a -100.50, lp-a 100.00, corridor.fees 0.50"]);
}

#[test]
fn legs_rebuilt_from_a_quote_are_the_planned_legs() {
    let network = network_with("");
    let request = request("1234.56 THB", FixedSide::Send);
    let planned = plan(&network, &request, now()).unwrap();
    let rebuilt = legs_for(&network, &request, &planned.hops, &planned.fees, planned.send).unwrap();
    assert_eq!(rebuilt, planned.legs);
    // A tampered hop does not balance, and is refused rather than settled.
    let mut hops = planned.hops.clone();
    hops[1].send = money("1.00 HKD");
    let reason = legs_for(&network, &request, &hops, &planned.fees, planned.send).unwrap_err();
    assert_eq!(reason.code, "QUOTE_INCONSISTENT");
}

/// What the hop's send amount is worth in its receive currency at the provider's exact price
/// (its bid, or dividing by its ask), and that price as receive per send.
fn worth(network: &Network, hop: &Hop) -> (Decimal, Decimal) {
    let book = network.rates();
    let rate = book.rates().iter().find(|rate| rate.provider == hop.provider && rate.pair == hop.pair).unwrap();
    if hop.pair.base == hop.send.currency() {
        (hop.send.amount() * rate.bid, rate.bid)
    } else {
        (hop.send.amount() / rate.ask, Decimal::ONE / rate.ask)
    }
}

fn unit(currency: Currency) -> Decimal {
    Decimal::new(1, currency.minor_units())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No route creates money. On every ledger the legs sum to zero; on every hop the provider
    /// pays out no more than the send amount is worth at its quoted price, and the payer loses
    /// at most the rounding bound: one minor unit of the receive currency for the hop's own
    /// rounding, one for the next hop's fee split, and (fixed receive) one minor unit of the send
    /// currency rounded up, at the hop's price.
    #[test]
    fn no_route_creates_money(
        amount_minor in 1_i64..5_000_000_000,
        receive in any::<bool>(),
        direct in any::<bool>(),
        ask_hundredths in 850_i64..950,
    ) {
        let extra = if direct {
            format!("[[rates]]\nprovider = \"lp-c\"\npair = \"AED/THB\"\nbid = \"8.00\"\nask = \"{}\"", Decimal::new(ask_hundredths, 2))
        } else {
            String::new()
        };
        let network = network_with(&extra);
        let (currency, side) = if receive { ("AED", FixedSide::Receive) } else { ("THB", FixedSide::Send) };
        let amount = Money::from_minor_units(amount_minor, Currency::from_code(currency).unwrap()).unwrap();
        let request = QuoteRequest { amount, fixed_side: side, ..request("1.00 THB", FixedSide::Send) };
        let Ok(plan) = plan(&network, &request, now()) else { return Ok(()) };
        for leg in &plan.legs {
            prop_assert_eq!(leg.postings.iter().map(|p| p.amount_minor).sum::<i64>(), 0);
        }
        for hop in &plan.hops {
            let (worth, price) = worth(&network, hop);
            let bound = unit(hop.receive.currency()) * Decimal::TWO + unit(hop.send.currency()) * price;
            prop_assert!(hop.receive.amount() <= worth, "{hop:?} pays out more than {worth}");
            prop_assert!(worth - hop.receive.amount() <= bound, "{hop:?} loses more than {bound} to rounding");
        }
        match side {
            FixedSide::Send => prop_assert_eq!(plan.send, amount),
            FixedSide::Receive => prop_assert_eq!(plan.receive, amount),
        }
        let fees: i64 = plan.fees.iter().filter(|f| f.from == plan.route[0]).map(|f| f.amount.minor_units()).sum();
        prop_assert_eq!(plan.total_debit.minor_units(), plan.send.minor_units() + fees);
    }
}

/// e-JPY (no minor units) → e-USD (two) → e-BHD (three): rounding per currency at every hop.
const ZERO_TWO_THREE: &str = r#"
[[ledgers]]
id = "e-jpy"
currency = "JPY"
jurisdiction = "JP"

[[ledgers]]
id = "e-usd"
currency = "USD"
jurisdiction = "US"

[[ledgers]]
id = "e-bhd"
currency = "BHD"
jurisdiction = "BH"

[[participants]]
id = "bank-jp"
role = "bank"
accounts = [{ address = "e-jpy/jp.a", opening_balance = "100000000" }]

[[participants]]
id = "bank-bh"
role = "bank"
accounts = [{ address = "e-bhd/bh.a" }]

[[participants]]
id = "lp-x"
role = "liquidity_provider"
accounts = [{ address = "e-jpy/lp-x" }, { address = "e-usd/lp-x" }]

[[participants]]
id = "lp-y"
role = "liquidity_provider"
accounts = [{ address = "e-usd/lp-y" }, { address = "e-bhd/lp-y" }]

[[rates]]
provider = "lp-x"
pair = "USD/JPY"
bid = "154.25"
ask = "154.75"

[[rates]]
provider = "lp-y"
pair = "USD/BHD"
bid = "0.3765"
ask = "0.3775"

[[fees]]
from_ledger = "e-usd"
to_ledger = "e-bhd"
currency = "USD"
fixed = "1.00"
"#;

#[test]
fn jpy_to_bhd_through_usd_rounds_to_each_currencys_minor_units() {
    let network = Network::embedded(&Config::from_toml(ZERO_TWO_THREE).unwrap(), "test").unwrap();
    let request = |amount: &str, fixed_side| QuoteRequest {
        participant: ParticipantId::new("bank-jp").unwrap(),
        payer: "e-jpy/jp.a".parse().unwrap(),
        payee: "e-bhd/bh.a".parse().unwrap(),
        amount: money(amount),
        fixed_side,
    };
    // Fixed send 100000 JPY: ÷ 154.75 (lp-x sells USD at its ask) = 646.2035… → 646.20 USD;
    // the e-USD → e-BHD fee of 1.00 USD leaves 645.20; × 0.3765 (lp-y's bid) = 242.9178 → 242.917 BHD.
    let send = plan(&network, &request("100000 JPY", FixedSide::Send), now()).unwrap();
    assert_eq!((send.total_debit, send.receive), (money("100000 JPY"), money("242.917 BHD")));
    assert_eq!(
        legs(&send),
        [
            "e-jpy: jp.a -100000, lp-x 100000",
            "e-usd: lp-x -646.20, lp-y 645.20, corridor.fees 1.00",
            "e-bhd: lp-y -242.917, bh.a 242.917",
        ]
    );
    // Fixed receive 100.000 BHD: ÷ 0.3765 = 265.6042… → 265.61 USD, + 1.00 fee = 266.61 USD;
    // × 154.75 = 41257.8975 → 41258 JPY (up: JPY has no minor units).
    let receive = plan(&network, &request("100.000 BHD", FixedSide::Receive), now()).unwrap();
    assert_eq!((receive.total_debit, receive.receive), (money("41258 JPY"), money("100.000 BHD")));
    assert_eq!(legs(&receive)[1], "e-usd: lp-x -266.61, lp-y 265.61, corridor.fees 1.00");
}
