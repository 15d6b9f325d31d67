//! Hand-computed cases. Each line: the provider's pair with bid/ask, the payment, the expected
//! result, and the arithmetic done by hand in the comment.

use proptest::prelude::*;

use super::*;

fn money(amount: &str, code: &str) -> Money {
    Money::parse(amount, Currency::from_code(code).unwrap()).unwrap()
}

fn rate(provider: &str, pair: &str, bid: &str, ask: &str) -> ProviderRate {
    ProviderRate {
        provider: ParticipantId::new(provider).unwrap(),
        pair: CurrencyPair::parse(pair).unwrap(),
        bid: bid.parse().unwrap(),
        ask: ask.parse().unwrap(),
        source: "hand-written".into(),
        as_of: SystemTime::UNIX_EPOCH,
        maximum: None,
    }
}

fn book(rates: &[ProviderRate]) -> RateBook {
    let mut book = RateBook::new();
    for rate in rates {
        book.publish(rate.clone()).unwrap();
    }
    book
}

/// `fixed` is "send" or "receive"; `expected` is the other side's amount, or an error fragment.
fn check(pair: (&str, &str, &str), from: &str, to: &str, fixed: &str, amount: &str, expected: Result<&str, &str>) {
    let book = book(&[rate("lp-one", pair.0, pair.1, pair.2)]);
    let (from, to) = (Currency::from_code(from).unwrap(), Currency::from_code(to).unwrap());
    let fixed_amount = match fixed {
        "send" => FixedAmount::Send(money(amount, from.code())),
        _ => FixedAmount::Receive(money(amount, to.code())),
    };
    let result = book.best_conversion(from, to, fixed_amount, |_| true);
    match (result, expected) {
        (Ok(conversion), Ok(want)) => {
            let got = if fixed == "send" { conversion.receive } else { conversion.send };
            assert_eq!(got.amount().to_string(), want, "{pair:?} {fixed} {amount}");
        }
        (Err(error), Err(fragment)) => assert!(error.to_string().contains(fragment), "`{error}` lacks `{fragment}`"),
        (got, want) => panic!("{pair:?} {fixed} {amount}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn hand_computed_conversions() {
    let cny_hkd = ("CNY/HKD", "1.0850", "1.0900");
    // 100.00 × 1.0850 = 108.50
    check(cny_hkd, "CNY", "HKD", "send", "100.00", Ok("108.50"));
    // 33.33 × 1.0850 = 36.16305 → down → 36.16
    check(cny_hkd, "CNY", "HKD", "send", "33.33", Ok("36.16"));
    // 100.00 ÷ 1.0900 = 91.743119... → down → 91.74
    check(cny_hkd, "HKD", "CNY", "send", "100.00", Ok("91.74"));
    // receive 100.00 CNY: 100.00 × 1.0900 = 109.00 HKD
    check(cny_hkd, "HKD", "CNY", "receive", "100.00", Ok("109.00"));
    // receive 36.17 HKD: 36.17 ÷ 1.0850 = 33.336405... → up → 33.34 CNY
    check(cny_hkd, "CNY", "HKD", "receive", "36.17", Ok("33.34"));

    let usd_jpy = ("USD/JPY", "154.25", "154.75");
    // 10.00 × 154.25 = 1542.5 → down → 1542 (JPY has no minor units)
    check(usd_jpy, "USD", "JPY", "send", "10.00", Ok("1542"));
    // 1000 ÷ 154.75 = 6.462035... → down → 6.46
    check(usd_jpy, "JPY", "USD", "send", "1000", Ok("6.46"));
    // receive 0.01 USD: 0.01 × 154.75 = 1.5475 → up → 2 JPY
    check(usd_jpy, "JPY", "USD", "receive", "0.01", Ok("2"));
    // 1 ÷ 154.75 = 0.00646... → down → 0.00: nothing to pay out
    check(usd_jpy, "JPY", "USD", "send", "1", Err("less than one minor unit of USD"));

    let usd_bhd = ("USD/BHD", "0.3765", "0.3775");
    // 10.00 × 0.3765 = 3.765 exactly (BHD has three decimals)
    check(usd_bhd, "USD", "BHD", "send", "10.00", Ok("3.765"));
    // 1.01 × 0.3765 = 0.380265 → down → 0.380
    check(usd_bhd, "USD", "BHD", "send", "1.01", Ok("0.380"));
    // receive 100.00 USD: 100.00 × 0.3775 = 37.750 BHD
    check(usd_bhd, "BHD", "USD", "receive", "100.00", Ok("37.750"));
    // receive 1.000 BHD: 1.000 ÷ 0.3765 = 2.656042... → up → 2.66 USD
    check(usd_bhd, "USD", "BHD", "receive", "1.000", Ok("2.66"));
    // 0.001 BHD ÷ 0.3775 = 0.002649... → down → 0.00 USD
    check(usd_bhd, "BHD", "USD", "send", "0.001", Err("less than one minor unit"));

    check(cny_hkd, "CNY", "AED", "send", "1.00", Err("no liquidity provider quotes CNY against AED"));
}

#[test]
fn best_provider_for_the_payer_wins() {
    let book = book(&[
        rate("lp-one", "CNY/HKD", "1.0850", "1.0900"),
        rate("lp-two", "CNY/HKD", "1.0870", "1.0920"),
        rate("lp-three", "HKD/CNY", "0.9180", "0.9190"),
    ]);
    let (cny, hkd) = (Currency::from_code("CNY").unwrap(), Currency::from_code("HKD").unwrap());
    let send = book.best_conversion(cny, hkd, FixedAmount::Send(money("1000.00", "CNY")), |_| true).unwrap();
    // lp-one: 1085.00; lp-two: 1087.00; lp-three: 1000 ÷ 0.9190 = 1088.139... → 1088.13
    assert_eq!((send.provider.as_str(), send.receive.to_string().as_str()), ("lp-three", "1088.13 HKD"));
    let not_three = |rate: &ProviderRate| rate.provider.as_str() != "lp-three";
    let send = book.best_conversion(cny, hkd, FixedAmount::Send(money("1000.00", "CNY")), not_three).unwrap();
    assert_eq!((send.provider.as_str(), send.receive.to_string().as_str()), ("lp-two", "1087.00 HKD"));
    assert_eq!(send.rate().to_string(), "1.087");
    // Fixed receive: the payee gets exactly 1000.00 HKD, the payer pays CNY.
    // lp-one: 1000 ÷ 1.0850 = 921.658... → 921.66; lp-two: 1000 ÷ 1.0870 = 919.963... → 919.97;
    // lp-three: 1000 × 0.9190 = 919.00 → cheapest.
    let receive = book.best_conversion(cny, hkd, FixedAmount::Receive(money("1000.00", "HKD")), |_| true).unwrap();
    assert_eq!((receive.provider.as_str(), receive.send.to_string().as_str()), ("lp-three", "919.00 CNY"));
}

#[test]
fn a_provider_maximum_excludes_larger_conversions_in_either_currency() {
    let capped = |maximum: &str| ProviderRate {
        maximum: Some(maximum.split_once(' ').map(|(amount, code)| money(amount, code)).unwrap()),
        ..rate("lp-capped", "CNY/HKD", "1.0950", "1.0960")
    };
    let (cny, hkd) = (Currency::from_code("CNY").unwrap(), Currency::from_code("HKD").unwrap());
    let fixed_send = FixedAmount::Send(money("1000.00", "CNY"));
    // 1000.00 CNY × 1.0950 = 1095.00 HKD
    for (maximum, expected_provider) in [
        ("1000.00 CNY", "lp-capped"),
        ("999.99 CNY", "lp-one"),
        ("1095.00 HKD", "lp-capped"),
        ("1094.99 HKD", "lp-one"),
    ] {
        let book = book(&[rate("lp-one", "CNY/HKD", "1.0850", "1.0900"), capped(maximum)]);
        let best = book.best_conversion(cny, hkd, fixed_send, |_| true).unwrap();
        assert_eq!(best.provider.as_str(), expected_provider, "maximum {maximum}");
    }
    let alone = book(&[capped("999.99 CNY")]);
    let error = alone.best_conversion(cny, hkd, fixed_send, |_| true).unwrap_err();
    assert_eq!(error.to_string(), "lp-capped converts at most 999.99 CNY per payment at this rate");
}

proptest! {
    /// Rounding always favours the provider: for a fixed send, the payee never gets more than
    /// send × price; for a fixed receive, the payer never pays less than receive ÷ price. And the
    /// payer loses at most one minor unit to rounding.
    #[test]
    fn rounding_never_favours_the_payer(
        minor in 1i64..1_000_000_000,
        bid_bp in 1u32..2_000_000,
        spread_bp in 0u32..10_000,
        codes in prop::sample::select(vec![("USD", "JPY"), ("JPY", "USD"), ("USD", "BHD"), ("BHD", "JPY"), ("CNY", "HKD")]),
        fixed_send in any::<bool>(),
    ) {
        let (from, to) = (Currency::from_code(codes.0).unwrap(), Currency::from_code(codes.1).unwrap());
        let bid = Decimal::new(i64::from(bid_bp), 4);
        let ask = bid + Decimal::new(i64::from(spread_bp), 4);
        let rate = ProviderRate { pair: CurrencyPair { base: from, quote: to }, bid, ask, ..rate("lp-one", "CNY/HKD", "1", "1") };
        let amount = if fixed_send {
            FixedAmount::Send(Money::from_minor_units(minor, from).unwrap())
        } else {
            FixedAmount::Receive(Money::from_minor_units(minor, to).unwrap())
        };
        if let Ok(conversion) = convert(&rate, from, to, amount) {
            let exact_receive = conversion.send.amount() * bid;
            prop_assert!(conversion.receive.amount() <= exact_receive);
            let one_unit_receive = Decimal::new(1, to.minor_units());
            let one_unit_send = Decimal::new(1, from.minor_units());
            if fixed_send {
                prop_assert!(exact_receive - conversion.receive.amount() < one_unit_receive);
            } else {
                prop_assert!((conversion.send.amount() - one_unit_send) * bid < conversion.receive.amount());
            }
        }
    }
}
