//! Locked FX quotes, as property tests over the whole pipeline (quote → claim → compliance →
//! two-phase commit) on in-memory ledgers, with a test clock that decides when quotes expire:
//! - a quoted payment settles at exactly its quote (amounts, fees, hops, and every balance it moves),
//!   or not at all, and then nothing moved and nothing is held;
//! - an expired quote never settles, at its expiry or any time after;
//! - rates that move after quoting do not change what the quote pays;
//! - a quote is single-use, also when paid concurrently;
//! - no mix of quoted and unquoted payments creates or destroys money on any ledger.
//!
//! A quote that cannot be priced, and a quote that is priced, hold nothing.
//!
//! The test clock starts at the real time and only moves forward by parts of a quote's lifetime, so
//! a quote's expiry is always in the real future: the coordinator's own deadline (real time) never
//! interferes, and the test clock alone decides whether a quote has expired when it is paid.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use corridor_fx::ProviderRate;
use corridor_router::clock::Clock;
use corridor_router::config::Config;
use corridor_router::network::Network;
use corridor_router::payment::FeeCharge;
use corridor_router::pipeline::{QuoteError, Router, RouterSettings};
use corridor_router::quote::LockedQuote;
use corridor_router::route::Hop;
use corridor_router::storage::Storage;
use corridor_router::storage::embedded::EmbeddedStore;
use corridor_schemas::money::parse_signed_minor_units;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{
    Address, Currency, FixedSide, IdempotencyKey, LedgerId, Money, ParticipantId, PaymentInstruction, QuoteRequest,
};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use rust_decimal::Decimal;

/// Five ledgers; three providers that bridge some pairs only, so THB, JPY and BHD reach the others
/// through HKD (and BHD through AED as well): up to three hops. lp-gamma quotes THB/HKD better than
/// lp-alpha up to 2,000 HKD but holds only 300 HKD; lp-beta fills at most 40,000 AED per payment.
const NETWORK: &str = r#"
[settlement]
prepare_timeout_ms = 5000
decision_attempts_max = 5

[fx]
rate_max_age_ms = 86400000
quote_ttl_ms = 30000
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
id = "e-jpy"
currency = "JPY"
jurisdiction = "JP"

[[ledgers]]
id = "e-bhd"
currency = "BHD"
jurisdiction = "BH"

[[participants]]
id = "bank-th"
role = "bank"
accounts = [{ address = "e-thb/th.a", opening_balance = "5000000.00" }, { address = "e-thb/th.low", opening_balance = "300.00" }]

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [{ address = "e-hkd/hk.a", opening_balance = "1000000.00" }, { address = "e-hkd/hk.b", opening_balance = "800000.00" }]

[[participants]]
id = "bank-ae"
role = "bank"
accounts = [{ address = "e-aed/ae.a", opening_balance = "500000.00" }]

[[participants]]
id = "bank-jp"
role = "bank"
accounts = [{ address = "e-jpy/jp.a", opening_balance = "50000000" }, { address = "e-jpy/jp.b", opening_balance = "1000000" }]

[[participants]]
id = "bank-bh"
role = "bank"
accounts = [{ address = "e-bhd/bh.a", opening_balance = "50000.000" }, { address = "e-bhd/bh.low", opening_balance = "5.000" }]

[[participants]]
id = "lp-alpha"
role = "liquidity_provider"
accounts = [
  { address = "e-thb/lp-alpha", opening_balance = "20000000.00" },
  { address = "e-hkd/lp-alpha", opening_balance = "5000000.00" },
  { address = "e-jpy/lp-alpha", opening_balance = "100000000" },
]

[[participants]]
id = "lp-beta"
role = "liquidity_provider"
accounts = [
  { address = "e-hkd/lp-beta", opening_balance = "3000000.00" },
  { address = "e-aed/lp-beta", opening_balance = "1000000.00" },
  { address = "e-bhd/lp-beta", opening_balance = "100000.000" },
]

[[participants]]
id = "lp-gamma"
role = "liquidity_provider"
accounts = [{ address = "e-thb/lp-gamma", opening_balance = "1000000.00" }, { address = "e-hkd/lp-gamma", opening_balance = "300.00" }]

[[rates]]
provider = "lp-alpha"
pair = "HKD/THB"
bid = "4.1500"
ask = "4.1800"

[[rates]]
provider = "lp-alpha"
pair = "HKD/JPY"
bid = "19.100"
ask = "19.250"

[[rates]]
provider = "lp-beta"
pair = "HKD/AED"
bid = "0.4711"
ask = "0.4730"
maximum = "40000.00 AED"

[[rates]]
provider = "lp-beta"
pair = "AED/BHD"
bid = "0.1024"
ask = "0.1027"

[[rates]]
provider = "lp-gamma"
pair = "HKD/THB"
bid = "4.1600"
ask = "4.1700"
maximum = "2000.00 HKD"

[[fees]]
from_ledger = "e-thb"
currency = "THB"
fixed = "5.00"
basis_points = 5

[[fees]]
from_ledger = "e-hkd"
currency = "HKD"
fixed = "1.00"
basis_points = 5

[[fees]]
from_ledger = "e-hkd"
to_ledger = "e-hkd"
currency = "HKD"
fixed = "0.10"

[[fees]]
from_ledger = "e-hkd"
to_ledger = "e-aed"
participant = "bank-hk"
currency = "HKD"
fixed = "0.25"
basis_points = 2

[[fees]]
from_ledger = "e-jpy"
currency = "JPY"
fixed = "150"
basis_points = 10

[[fees]]
from_ledger = "e-aed"
currency = "AED"
fixed = "0.50"
basis_points = 5

[[fees]]
from_ledger = "e-bhd"
currency = "BHD"
fixed = "0.050"
basis_points = 8
account = "e-bhd/bh.fees"
"#;

/// Payers and payees: (participant, wallet).
const WALLETS: [(&str, &str); 9] = [
    ("bank-th", "e-thb/th.a"),
    ("bank-th", "e-thb/th.low"),
    ("bank-hk", "e-hkd/hk.a"),
    ("bank-hk", "e-hkd/hk.b"),
    ("bank-ae", "e-aed/ae.a"),
    ("bank-jp", "e-jpy/jp.a"),
    ("bank-jp", "e-jpy/jp.b"),
    ("bank-bh", "e-bhd/bh.a"),
    ("bank-bh", "e-bhd/bh.low"),
];

/// Why a quoted payment may fail to settle on healthy ledgers: someone's balance is short.
const SETTLEMENT_REFUSALS: [&str; 2] = ["LIQUIDITY_UNAVAILABLE", "INSUFFICIENT_FUNDS"];

/// Why a valid request may not be priced on this network.
const PRICING_REFUSALS: [&str; 3] = ["AMOUNT_BELOW_MINOR_UNIT", "ABOVE_PROVIDER_MAXIMUM", "AMOUNT_OUT_OF_RANGE"];

/// A clock the test moves by hand.
struct TestClock(Mutex<SystemTime>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

impl TestClock {
    fn set(&self, at: SystemTime) {
        *self.0.lock().unwrap() = at;
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

/// Balances of every account on every ledger: (ledger, account) → minor units.
type Balances = BTreeMap<(String, String), i64>;

/// A fresh network, store and router for one case.
struct Harness {
    config: Config,
    network: Arc<Network>,
    router: Arc<Router>,
    clock: Arc<TestClock>,
    data_dir: PathBuf,
}

static HARNESSES: AtomicU64 = AtomicU64::new(0);

impl Harness {
    fn new() -> Self {
        let config = Config::from_toml(NETWORK).unwrap();
        let network = Arc::new(Network::embedded(&config, "test desk").unwrap());
        let data_dir = std::env::temp_dir().join(format!(
            "corridor-quotes-{}-{}",
            std::process::id(),
            HARNESSES.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&data_dir);
        let store = Arc::new(EmbeddedStore::open(&data_dir).unwrap());
        let storage = Storage {
            journal: store.clone(),
            payments: store.clone(),
            keys: store.clone(),
            quotes: store.clone(),
            feed: store,
        };
        let settings = RouterSettings {
            prepare_timeout: Duration::from_millis(config.settlement.prepare_timeout_ms),
            decision_attempts_max: config.settlement.decision_attempts_max,
            in_flight_max: 1_024,
        };
        let clock = Arc::new(TestClock(Mutex::new(SystemTime::now())));
        let router_clock: Arc<dyn Clock> = clock.clone();
        let router = Arc::new(Router::new(Arc::clone(&network), storage, settings, router_clock));
        Self { config, network, router, clock, data_dir }
    }

    fn ttl(&self) -> Duration {
        self.network.fx.quote_ttl
    }

    fn balances(&self) -> Balances {
        let mut balances = Balances::new();
        for ledger in &self.network.embedded_ledgers {
            let id = ledger.description().ledger.to_string();
            for (account, balance) in ledger.balances() {
                balances.insert((id.clone(), account.to_string()), balance);
            }
        }
        balances
    }

    /// What the configuration issued, account by account.
    fn opening_balances(&self) -> Balances {
        let mut balances = Balances::new();
        for participant in &self.config.participants {
            for account in &participant.accounts {
                let currency = self.config.ledger(&account.address.ledger).unwrap().currency;
                let opening = account.opening_balance.unwrap_or_default();
                let minor = Money::from_decimal(opening, currency).map_or(0, Money::minor_units);
                balances.insert((account.address.ledger.to_string(), account.address.account.to_string()), minor);
            }
        }
        balances
    }

    /// Every ledger conserved, no overdraft, no hold, no undecided transaction.
    fn assert_quiet(&self) -> Result<(), TestCaseError> {
        for ledger in &self.network.embedded_ledgers {
            let audit = ledger.audit();
            let id = &ledger.description().ledger;
            prop_assert!(audit.is_sound(), "{} fails its audit: {:?}", id, audit);
            prop_assert_eq!(audit.held_minor, 0, "{} holds money: {:?}", id, audit);
            prop_assert_eq!(audit.prepared_transactions, 0, "{} has undecided transactions", id);
        }
        Ok(())
    }

    async fn quote(&self, request: &QuoteRequest) -> Result<Option<LockedQuote>, TestCaseError> {
        let quoted_at = self.clock.now();
        match self.router.quote(request.clone()).await {
            Ok(quote) => {
                check_quote(&self.network, request, &quote, quoted_at, self.ttl())?;
                Ok(Some(quote))
            }
            Err(QuoteError::Unpriceable(reason)) => {
                prop_assert!(
                    PRICING_REFUSALS.contains(&reason.code.as_str()),
                    "{:?} was refused a quote: {} {}",
                    request,
                    reason.code,
                    reason.message
                );
                Ok(None)
            }
            Err(error) => Err(TestCaseError::fail(format!("quote for {request:?} failed: {error}"))),
        }
    }

    async fn submit(&self, instruction: PaymentInstruction) -> wire::Payment {
        self.router.submit(instruction).await.unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// One payment: wallets by index into [`WALLETS`], an amount worth `hkd_cents` HKD cents in the
/// currency of the fixed side.
#[derive(Debug, Clone, Copy)]
struct Spec {
    payer: usize,
    payee: usize,
    hkd_cents: i64,
    fixed_receive: bool,
}

fn spec() -> impl Strategy<Value = Spec> {
    (0..WALLETS.len(), 0..WALLETS.len(), hkd_cents(), prop::bool::weighted(0.4))
        .prop_map(|(payer, payee, hkd_cents, fixed_receive)| Spec { payer, payee, hkd_cents, fixed_receive })
}

/// Log-uniform from one cent to about 100,000 HKD: below a minor unit, around lp-gamma's
/// liquidity and maximum, above lp-beta's maximum, above the low wallets' balances.
fn hkd_cents() -> impl Strategy<Value = i64> {
    (1..1_000i64, 0..5u32).prop_map(|(mantissa, exponent)| mantissa * 10i64.pow(exponent))
}

/// A spec between two wallets on different ledgers.
fn cross_border_spec() -> impl Strategy<Value = Spec> {
    spec().prop_filter("payer and payee on different ledgers", |spec| {
        ledger_of(WALLETS[spec.payer].1) != ledger_of(WALLETS[spec.payee].1)
    })
}

fn ledger_of(address: &str) -> &str {
    address.split('/').next().unwrap()
}

/// Roughly the same value in every currency: minor units per 100 HKD cents.
fn amount_in(currency: Currency, hkd_cents: i64) -> Money {
    let per_hkd = match currency.code() {
        "THB" => 416,
        "AED" => 47,
        "JPY" => 19,
        "BHD" => 48,
        _ => 100,
    };
    Money::from_minor_units((hkd_cents * per_hkd / 100).max(1), currency).unwrap()
}

/// The request of `spec`; `None` when payer and payee are the same wallet.
fn request(network: &Network, spec: Spec) -> Option<QuoteRequest> {
    if spec.payer == spec.payee {
        return None;
    }
    let (participant, payer) = WALLETS[spec.payer];
    let payer: Address = payer.parse().unwrap();
    let payee: Address = WALLETS[spec.payee].1.parse().unwrap();
    let (fixed_side, fixed_ledger) =
        if spec.fixed_receive { (FixedSide::Receive, &payee.ledger) } else { (FixedSide::Send, &payer.ledger) };
    let amount = amount_in(network.currency_of(fixed_ledger).unwrap(), spec.hkd_cents);
    Some(QuoteRequest { participant: ParticipantId::new(participant).unwrap(), payer, payee, amount, fixed_side })
}

fn instruction(request: &QuoteRequest, key: &str, quote: Option<&LockedQuote>) -> PaymentInstruction {
    PaymentInstruction {
        participant: request.participant.clone(),
        idempotency_key: IdempotencyKey::new(key.to_owned()).unwrap(),
        payer: request.payer.clone(),
        payee: request.payee.clone(),
        amount: request.amount,
        fixed_side: request.fixed_side,
        reference: String::new(),
        quote: quote.map(|quote| quote.id),
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: None,
    }
}

/// What a quote promises, checked on its own: it is for the request, its amounts add up, its
/// hops chain from the payer's ledger to the payee's, and it lives exactly one TTL.
fn check_quote(
    network: &Network,
    request: &QuoteRequest,
    quote: &LockedQuote,
    quoted_at: SystemTime,
    ttl: Duration,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&quote.request, request);
    prop_assert_eq!(quote.quoted_at, quoted_at);
    prop_assert_eq!(quote.expires_at, quoted_at + ttl);
    match request.fixed_side {
        FixedSide::Send => prop_assert_eq!(quote.send, request.amount),
        FixedSide::Receive => prop_assert_eq!(quote.receive, request.amount),
    }
    prop_assert_eq!(quote.send.currency(), network.currency_of(&request.payer.ledger).unwrap());
    prop_assert_eq!(quote.receive.currency(), network.currency_of(&request.payee.ledger).unwrap());
    prop_assert!(quote.send.minor_units() > 0 && quote.receive.minor_units() > 0, "{:?}", quote);
    let payer_fees: i64 =
        quote.fees.iter().filter(|fee| fee.from == request.payer.ledger).map(|fee| fee.amount.minor_units()).sum();
    prop_assert_eq!(quote.total_debit.minor_units(), quote.send.minor_units() + payer_fees, "{:?}", quote);
    for fee in &quote.fees {
        prop_assert_eq!(Some(fee.amount.currency()), network.currency_of(&fee.from));
        prop_assert_eq!(&fee.account.ledger, &fee.from);
    }
    prop_assert_eq!(quote.route.first(), Some(&request.payer.ledger));
    prop_assert_eq!(quote.route.last(), Some(&request.payee.ledger));
    if request.payer.ledger == request.payee.ledger {
        prop_assert!(quote.hops.is_empty());
        prop_assert_eq!(quote.send, quote.receive);
    } else {
        prop_assert_eq!(quote.hops.len() + 1, quote.route.len());
        for (index, hop) in quote.hops.iter().enumerate() {
            prop_assert_eq!(&hop.from, &quote.route[index]);
            prop_assert_eq!(&hop.to, &quote.route[index + 1]);
        }
        prop_assert_eq!(quote.hops.first().map(|hop| hop.send), Some(quote.send));
        prop_assert_eq!(quote.hops.last().map(|hop| hop.receive), Some(quote.receive));
    }
    // The balance changes it promises conserve money on every ledger.
    let mut per_ledger: BTreeMap<String, i64> = BTreeMap::new();
    for ((ledger, _), minor) in
        promised_moves(network, &quote.request, (quote.total_debit, quote.receive), &quote.hops, &quote.fees)
    {
        *per_ledger.entry(ledger).or_default() += minor;
    }
    for (ledger, sum) in per_ledger {
        prop_assert_eq!(sum, 0, "quote {:?} creates {} minor units on {}", quote, sum, ledger);
    }
    Ok(())
}

/// The balance changes a priced payment makes: the payer pays the total debit, the payee gets
/// what the last hop delivers, each fee account its fee, each provider takes its hop's send on one
/// ledger and pays its receive on the next.
fn promised_moves(
    network: &Network,
    request: &QuoteRequest,
    (total_debit, receive): (Money, Money),
    hops: &[Hop],
    fees: &[FeeCharge],
) -> Balances {
    let mut moves = Balances::new();
    let mut add = |ledger: &LedgerId, account: String, minor: i64| {
        *moves.entry((ledger.to_string(), account)).or_default() += minor;
    };
    add(&request.payer.ledger, request.payer.account.to_string(), -total_debit.minor_units());
    add(&request.payee.ledger, request.payee.account.to_string(), receive.minor_units());
    for fee in fees {
        add(&fee.account.ledger, fee.account.account.to_string(), fee.amount.minor_units());
    }
    for hop in hops {
        let accounts = &network.providers[&hop.provider].accounts;
        add(&hop.from, accounts[&hop.from].to_string(), hop.send.minor_units());
        add(&hop.to, accounts[&hop.to].to_string(), -hop.receive.minor_units());
    }
    moves.retain(|_, minor| *minor != 0);
    moves
}

/// `after - before`, account by account, without the unchanged ones.
fn moves_between(before: &Balances, after: &Balances) -> Balances {
    let mut moves = Balances::new();
    for (key, balance) in after {
        moves.insert(key.clone(), balance - before.get(key).copied().unwrap_or(0));
    }
    for (key, balance) in before {
        if !after.contains_key(key) {
            moves.insert(key.clone(), -balance);
        }
    }
    moves.retain(|_, minor| *minor != 0);
    moves
}

fn status_of(receipt: &wire::Payment) -> wire::PaymentStatus {
    wire::PaymentStatus::try_from(receipt.status).unwrap()
}

fn reason_of(receipt: &wire::Payment) -> &str {
    receipt.reason.as_ref().map_or("", |reason| reason.code.as_str())
}

/// How a quoted payment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paid {
    /// Settled over this many hops.
    Settled(usize),
    /// Refused for lack of funds or liquidity.
    Refused,
}

/// A payment made with `quote` settled at exactly the quote, balances moved exactly as promised;
/// or it was refused for lack of funds, and nothing moved. Either way nothing is held.
fn check_paid_with(
    harness: &Harness,
    quote: &LockedQuote,
    receipt: &wire::Payment,
    before: &Balances,
) -> Result<Paid, TestCaseError> {
    let moved = moves_between(before, &harness.balances());
    harness.assert_quiet()?;
    prop_assert_eq!(&receipt.quote_id, &quote.id.to_string());
    let committed = receipt.legs.iter().filter(|leg| leg.state == wire::LegState::Committed as i32).count();
    match status_of(receipt) {
        wire::PaymentStatus::Settled => {
            let promised = quote.to_wire();
            prop_assert_eq!(&receipt.send_amount, &promised.send_amount, "send of {}", receipt.payment_id);
            prop_assert_eq!(&receipt.receive_amount, &promised.receive_amount, "receive of {}", receipt.payment_id);
            prop_assert_eq!(&receipt.total_debit, &promised.total_debit, "total debit of {}", receipt.payment_id);
            prop_assert_eq!(&receipt.fees, &promised.fees, "fees of {}", receipt.payment_id);
            prop_assert_eq!(&receipt.hops, &promised.hops, "hops of {}", receipt.payment_id);
            prop_assert_eq!(&receipt.route, &promised.route, "route of {}", receipt.payment_id);
            prop_assert_eq!(committed, receipt.legs.len(), "settled {} with uncommitted legs", receipt.payment_id);
            let expected = promised_moves(
                &harness.network,
                &quote.request,
                (quote.total_debit, quote.receive),
                &quote.hops,
                &quote.fees,
            );
            prop_assert_eq!(moved, expected, "balances moved otherwise than quote {:?} promised", quote);
            Ok(Paid::Settled(quote.hops.len()))
        }
        wire::PaymentStatus::Rejected => {
            prop_assert!(
                SETTLEMENT_REFUSALS.contains(&reason_of(receipt)),
                "quoted payment {} rejected: {:?}",
                receipt.payment_id,
                receipt.reason
            );
            prop_assert!(moved.is_empty(), "rejected payment {} moved {:?}", receipt.payment_id, moved);
            prop_assert_eq!(committed, 0);
            Ok(Paid::Refused)
        }
        status => Err(TestCaseError::fail(format!(
            "quoted payment {} ended {status:?}: {:?}",
            receipt.payment_id, receipt.reason
        ))),
    }
}

/// When a quoted payment is submitted, counted from its quote.
#[derive(Debug, Clone, Copy)]
enum PayAt {
    Immediately,
    /// This many milliseconds later (less than the TTL).
    Later(u64),
    /// One nanosecond before the quote expires.
    LastMoment,
}

fn pay_at() -> impl Strategy<Value = PayAt> {
    prop_oneof![Just(PayAt::Immediately), (0..30_000u64).prop_map(PayAt::Later), Just(PayAt::LastMoment)]
}

fn move_clock_to_pay(harness: &Harness, quote: &LockedQuote, at: PayAt) {
    match at {
        PayAt::Immediately => {}
        PayAt::Later(ms) => {
            harness.clock.advance(Duration::from_millis(ms).min(harness.ttl() - Duration::from_millis(1)));
        }
        PayAt::LastMoment => harness.clock.set(quote.expires_at - Duration::from_nanos(1)),
    }
}

#[derive(Debug, Default)]
struct Coverage {
    settled: usize,
    settled_multi_hop: usize,
    refused: usize,
    unpriced: usize,
    requote_differs: usize,
    expired: usize,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `test` on `cases` inputs from `strategy`; panics with the minimal failing input.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: Debug,
{
    let config =
        ProptestConfig { cases, failure_persistence: None, max_shrink_iters: 256, ..ProptestConfig::default() };
    if let Err(error) = TestRunner::new(config).run(&strategy, test) {
        panic!("{error}");
    }
}

#[test]
fn a_quoted_payment_settles_at_exactly_its_quote_or_moves_nothing() {
    let runtime = runtime();
    let coverage = RefCell::new(Coverage::default());
    check(40, prop::collection::vec((spec(), pay_at()), 1..6), |payments| {
        runtime.block_on(async {
            let harness = Harness::new();
            for (index, (spec, at)) in payments.into_iter().enumerate() {
                let Some(request) = request(&harness.network, spec) else { continue };
                let before = harness.balances();
                let quote = harness.quote(&request).await?;
                prop_assert_eq!(&harness.balances(), &before, "quoting moved money");
                harness.assert_quiet()?;
                let Some(quote) = quote else {
                    coverage.borrow_mut().unpriced += 1;
                    continue;
                };
                move_clock_to_pay(&harness, &quote, at);
                let receipt = harness.submit(instruction(&request, &format!("pay-{index}"), Some(&quote))).await;
                let mut coverage = coverage.borrow_mut();
                match check_paid_with(&harness, &quote, &receipt, &before)? {
                    Paid::Settled(hops) => {
                        coverage.settled += 1;
                        coverage.settled_multi_hop += usize::from(hops >= 2);
                    }
                    Paid::Refused => coverage.refused += 1,
                }
            }
            Ok(())
        })
    });
    let coverage = coverage.into_inner();
    assert!(coverage.settled > 0 && coverage.settled_multi_hop > 0, "too few payments settled: {coverage:?}");
}

#[test]
fn an_expired_quote_never_settles() {
    let runtime = runtime();
    let coverage = RefCell::new(Coverage::default());
    // How long after its expiry the quote is paid, then tried again.
    let late = || prop_oneof![Just(0u64), 1..90_000u64];
    check(32, (spec(), late(), 1..90_000u64), |(spec, late_by_ms, again_after_ms)| {
        runtime.block_on(async {
            let harness = Harness::new();
            let Some(request) = request(&harness.network, spec) else { return Ok(()) };
            let Some(quote) = harness.quote(&request).await? else { return Ok(()) };
            let before = harness.balances();
            harness.clock.set(quote.expires_at + Duration::from_millis(late_by_ms));
            for (attempt, key) in ["expired", "expired-again"].into_iter().enumerate() {
                if attempt > 0 {
                    harness.clock.advance(Duration::from_millis(again_after_ms));
                }
                let receipt = harness.submit(instruction(&request, key, Some(&quote))).await;
                prop_assert_eq!(status_of(&receipt), wire::PaymentStatus::Rejected, "{:?}", receipt);
                prop_assert_eq!(reason_of(&receipt), "QUOTE_EXPIRED", "{:?}", receipt.reason);
                prop_assert!(receipt.legs.iter().all(|leg| leg.state == wire::LegState::NotSent as i32));
                prop_assert_eq!(moves_between(&before, &harness.balances()), Balances::new());
                harness.assert_quiet()?;
            }
            coverage.borrow_mut().expired += 1;
            Ok(())
        })
    });
    let coverage = coverage.into_inner();
    assert!(coverage.expired > 0, "no quote was tried after its expiry: {coverage:?}");
}

fn rate_factor() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        Just(Decimal::new(1, 1)),
        Just(Decimal::new(5, 1)),
        Just(Decimal::new(97, 2)),
        Just(Decimal::new(103, 2)),
        Just(Decimal::new(2, 0)),
        Just(Decimal::new(10, 0)),
    ]
}

#[test]
fn rates_that_move_after_quoting_do_not_change_what_the_quote_pays() {
    let runtime = runtime();
    let coverage = RefCell::new(Coverage::default());
    check(32, (cross_border_spec(), rate_factor(), pay_at()), |(spec, factor, at)| {
        runtime.block_on(async {
            let harness = Harness::new();
            let Some(request) = request(&harness.network, spec) else { return Ok(()) };
            let before = harness.balances();
            let Some(quote) = harness.quote(&request).await? else { return Ok(()) };
            // Every provider on the route reprices its pair, and lp-gamma, a competitor on
            // THB/HKD, reprices too.
            {
                let mut book = harness.network.rates_mut();
                let moved: Vec<ProviderRate> = book
                    .rates()
                    .iter()
                    .filter(|rate| {
                        rate.provider.as_str() == "lp-gamma"
                            || quote.hops.iter().any(|hop| hop.provider == rate.provider && hop.pair == rate.pair)
                    })
                    .map(|rate| ProviderRate {
                        bid: rate.bid * factor,
                        ask: rate.ask * factor,
                        source: "moved".into(),
                        as_of: harness.clock.now(),
                        ..rate.clone()
                    })
                    .collect();
                for rate in moved {
                    book.publish(rate).unwrap();
                }
            }
            move_clock_to_pay(&harness, &quote, at);
            let receipt = harness.submit(instruction(&request, "after-the-move", Some(&quote))).await;
            let paid = check_paid_with(&harness, &quote, &receipt, &before)?;
            // The move is real: a new quote for the same request prices differently.
            let requote = harness.router.quote(request.clone()).await;
            let mut coverage = coverage.borrow_mut();
            match paid {
                Paid::Settled(_) => coverage.settled += 1,
                Paid::Refused => coverage.refused += 1,
            }
            if let Ok(requote) = requote
                && (requote.total_debit, requote.receive) != (quote.total_debit, quote.receive)
            {
                coverage.requote_differs += 1;
            }
            Ok(())
        })
    });
    let coverage = coverage.into_inner();
    assert!(coverage.settled > 0 && coverage.requote_differs > 0, "the rate moves were never tested: {coverage:?}");
}

#[test]
fn a_quote_paid_concurrently_is_used_once() {
    let runtime = runtime();
    let coverage = RefCell::new(Coverage::default());
    check(24, (spec(), 2..8usize), |(spec, copies)| {
        runtime.block_on(async {
            let harness = Harness::new();
            let Some(request) = request(&harness.network, spec) else { return Ok(()) };
            let before = harness.balances();
            let Some(quote) = harness.quote(&request).await? else { return Ok(()) };
            let submissions: Vec<_> = (0..copies)
                .map(|copy| {
                    let router = Arc::clone(&harness.router);
                    let instruction = instruction(&request, &format!("copy-{copy}"), Some(&quote));
                    tokio::spawn(async move { router.submit(instruction).await })
                })
                .collect();
            let mut receipts = Vec::new();
            for submission in submissions {
                receipts.push(submission.await.unwrap().unwrap());
            }
            let (used, owners): (Vec<_>, Vec<_>) = receipts.iter().partition(|receipt| {
                status_of(receipt) == wire::PaymentStatus::Rejected && reason_of(receipt) == "QUOTE_ALREADY_USED"
            });
            prop_assert_eq!(owners.len(), 1, "{} payments used the quote: {:?}", owners.len(), owners);
            prop_assert_eq!(used.len(), copies - 1);
            let owner = owners[0];
            let paid = check_paid_with(&harness, &quote, owner, &before)?;
            if paid != Paid::Refused {
                coverage.borrow_mut().settled += 1;
            }
            let moved = moves_between(&before, &harness.balances());

            // Later, too, the quote stays used; the owner's key still answers with its payment.
            let later = harness.submit(instruction(&request, "later", Some(&quote))).await;
            prop_assert_eq!(reason_of(&later), "QUOTE_ALREADY_USED", "{:?}", later);
            let owner_key = owner.idempotency_key.clone();
            let replay = harness.submit(instruction(&request, &owner_key, Some(&quote))).await;
            prop_assert_eq!(&replay.payment_id, &owner.payment_id);
            prop_assert_eq!(replay.status, owner.status);
            prop_assert_eq!(moves_between(&before, &harness.balances()), moved, "a later use of the quote moved money");
            harness.assert_quiet()?;
            Ok(())
        })
    });
    let coverage = coverage.into_inner();
    assert!(coverage.settled > 0, "no concurrently paid quote settled: {coverage:?}");
}

/// One payment of a batch: quoted in a phase (or unquoted), then submitted with all the others.
#[derive(Debug, Clone, Copy)]
struct BatchItem {
    spec: Spec,
    /// `Some(phase)`: quoted in that phase, before the clock moves on.
    quoted_in: Option<usize>,
}

const PHASES: usize = 3;

/// How far the clock moves after a phase of quoting, in milliseconds.
fn clock_step() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 1..30_000u64, Just(30_000u64), 30_001..60_000u64]
}

#[test]
fn no_mix_of_quoted_and_unquoted_payments_creates_money() {
    let runtime = runtime();
    let coverage = RefCell::new(Coverage::default());
    let item =
        (spec(), prop::option::weighted(0.6, 0..PHASES)).prop_map(|(spec, quoted_in)| BatchItem { spec, quoted_in });
    let steps = prop::collection::vec(clock_step(), PHASES);
    check(24, (prop::collection::vec(item, 1..24), steps), |(items, steps)| {
        runtime.block_on(async {
            let harness = Harness::new();
            let requests: Vec<Option<QuoteRequest>> =
                items.iter().map(|item| request(&harness.network, item.spec)).collect();
            let mut quotes: Vec<Option<LockedQuote>> = vec![None; items.len()];
            for (phase, step) in steps.iter().enumerate() {
                for (index, item) in items.iter().enumerate() {
                    if let (Some(request), Some(quoted_in)) = (&requests[index], item.quoted_in)
                        && quoted_in == phase
                    {
                        quotes[index] = harness.quote(request).await?;
                    }
                }
                harness.clock.advance(Duration::from_millis(*step));
            }
            let paid_at = harness.clock.now();
            let submissions: Vec<_> = requests
                .iter()
                .enumerate()
                .filter_map(|(index, request)| {
                    let instruction = instruction(request.as_ref()?, &format!("batch-{index}"), quotes[index].as_ref());
                    let router = Arc::clone(&harness.router);
                    Some((index, tokio::spawn(async move { router.submit(instruction).await })))
                })
                .collect();
            let mut expected = harness.opening_balances();
            let mut explained = harness.opening_balances();
            for (index, submission) in submissions {
                let receipt = submission.await.unwrap().unwrap();
                let status = status_of(&receipt);
                prop_assert!(
                    matches!(status, wire::PaymentStatus::Settled | wire::PaymentStatus::Rejected),
                    "payment {} ended {:?}: {:?}",
                    receipt.payment_id,
                    status,
                    receipt.reason
                );
                let settled = status == wire::PaymentStatus::Settled;
                if let Some(quote) = &quotes[index] {
                    if paid_at >= quote.expires_at {
                        prop_assert_eq!(reason_of(&receipt), "QUOTE_EXPIRED", "{:?}", receipt);
                        coverage.borrow_mut().expired += 1;
                    } else if settled {
                        let promised = quote.to_wire();
                        prop_assert_eq!(&receipt.total_debit, &promised.total_debit);
                        prop_assert_eq!(&receipt.receive_amount, &promised.receive_amount);
                        prop_assert_eq!(&receipt.fees, &promised.fees);
                        prop_assert_eq!(&receipt.hops, &promised.hops);
                    } else {
                        prop_assert!(SETTLEMENT_REFUSALS.contains(&reason_of(&receipt)), "{:?}", receipt.reason);
                    }
                }
                let committed = receipt.legs.iter().filter(|leg| leg.state == wire::LegState::Committed as i32);
                prop_assert_eq!(committed.clone().count(), if settled { receipt.legs.len() } else { 0 });
                if !settled {
                    continue;
                }
                coverage.borrow_mut().settled += 1;
                // What the ledgers were told, and what the receipt says was paid, both explain
                // the balances.
                for leg in committed {
                    for posting in &leg.postings {
                        let currency = Currency::from_code(&posting.currency).unwrap();
                        let minor = parse_signed_minor_units(&posting.amount, currency).unwrap();
                        *expected.entry((leg.ledger_id.clone(), posting.account.clone())).or_default() += minor;
                    }
                }
                let request = requests[index].as_ref().unwrap();
                let hops: Vec<Hop> = receipt.hops.iter().map(|hop| Hop::from_wire(hop).unwrap()).collect();
                let fees: Vec<FeeCharge> = receipt.fees.iter().map(|fee| FeeCharge::from_wire(fee).unwrap()).collect();
                let total_debit: Money = receipt.total_debit.clone().unwrap().try_into().unwrap();
                let receive: Money = receipt.receive_amount.clone().unwrap().try_into().unwrap();
                for (key, minor) in promised_moves(&harness.network, request, (total_debit, receive), &hops, &fees) {
                    *explained.entry(key).or_default() += minor;
                }
            }
            let balances = harness.balances();
            prop_assert_eq!(
                moves_between(&expected, &balances),
                Balances::new(),
                "the legs do not explain the ledgers"
            );
            prop_assert_eq!(
                moves_between(&explained, &balances),
                Balances::new(),
                "the receipts do not explain the ledgers"
            );
            prop_assert!(balances.values().all(|balance| *balance >= 0), "{:?}", balances);
            // Every ledger holds exactly what the configuration issued on it.
            let mut issued: BTreeMap<String, i64> = BTreeMap::new();
            for ((ledger, _), minor) in harness.opening_balances() {
                *issued.entry(ledger).or_default() += minor;
            }
            let mut held: BTreeMap<String, i64> = BTreeMap::new();
            for ((ledger, _), minor) in &balances {
                *held.entry(ledger.clone()).or_default() += minor;
            }
            prop_assert_eq!(held, issued);
            harness.assert_quiet()?;
            Ok(())
        })
    });
    let coverage = coverage.into_inner();
    assert!(coverage.settled > 0 && coverage.expired > 0, "the batches were too uniform: {coverage:?}");
}

fn address(text: &str) -> Address {
    text.parse().unwrap()
}

fn money(amount: &str, currency: &str) -> Money {
    Money::parse(amount, Currency::from_code(currency).unwrap()).unwrap()
}

fn quote_request(participant: &str, payer: &str, payee: &str, amount: Money, fixed_side: FixedSide) -> QuoteRequest {
    QuoteRequest {
        participant: ParticipantId::new(participant).unwrap(),
        payer: address(payer),
        payee: address(payee),
        amount,
        fixed_side,
    }
}

#[test]
fn a_three_hop_quote_paid_at_its_last_moment_settles_at_exactly_its_quote() {
    runtime().block_on(async {
        let harness = Harness::new();
        let request = quote_request("bank-jp", "e-jpy/jp.a", "e-bhd/bh.a", money("250.000", "BHD"), FixedSide::Receive);
        let before = harness.balances();
        let quote = harness.quote(&request).await.unwrap().unwrap();
        let route: Vec<String> = quote.route.iter().map(ToString::to_string).collect();
        assert_eq!(route, ["e-jpy", "e-hkd", "e-aed", "e-bhd"]);
        assert_eq!(quote.fees.len(), 3, "a fee on each hop: {:?}", quote.fees);
        harness.clock.set(quote.expires_at - Duration::from_nanos(1));
        let receipt = harness.submit(instruction(&request, "last-moment", Some(&quote))).await;
        assert_eq!(check_paid_with(&harness, &quote, &receipt, &before).unwrap(), Paid::Settled(3));
    });
}

#[test]
fn nothing_is_held_when_a_quote_cannot_be_priced_or_paid() {
    runtime().block_on(async {
        let harness = Harness::new();
        let before = harness.balances();

        // Above lp-beta's maximum, the only HKD/AED provider: no quote, nothing stored or held.
        let too_big =
            quote_request("bank-hk", "e-hkd/hk.a", "e-aed/ae.a", money("45000.00", "AED"), FixedSide::Receive);
        match harness.router.quote(too_big).await {
            Err(QuoteError::Unpriceable(reason)) => assert_eq!(reason.code, "ABOVE_PROVIDER_MAXIMUM"),
            other => panic!("expected ABOVE_PROVIDER_MAXIMUM, got {other:?}"),
        }
        assert_eq!(harness.balances(), before);
        harness.assert_quiet().unwrap();

        // lp-gamma prices THB→HKD best but holds 300 HKD: the quote is given, the payment refused.
        let short = quote_request("bank-th", "e-thb/th.a", "e-hkd/hk.b", money("1000.00", "HKD"), FixedSide::Receive);
        let quote = harness.quote(&short).await.unwrap().unwrap();
        assert_eq!(quote.hops[0].provider.as_str(), "lp-gamma");
        let receipt = harness.submit(instruction(&short, "short", Some(&quote))).await;
        assert_eq!(check_paid_with(&harness, &quote, &receipt, &before).unwrap(), Paid::Refused);
        assert_eq!(reason_of(&receipt), "LIQUIDITY_UNAVAILABLE");
        // The refused payment owns the quote: another payment cannot take it.
        let again = harness.submit(instruction(&short, "short-again", Some(&quote))).await;
        assert_eq!(reason_of(&again), "QUOTE_ALREADY_USED");
        assert_eq!(harness.balances(), before);

        // The payer's 300 THB do not cover 299 THB plus the fee.
        let poor = quote_request("bank-th", "e-thb/th.low", "e-hkd/hk.a", money("299.00", "THB"), FixedSide::Send);
        let quote = harness.quote(&poor).await.unwrap().unwrap();
        let receipt = harness.submit(instruction(&poor, "poor", Some(&quote))).await;
        assert_eq!(check_paid_with(&harness, &quote, &receipt, &before).unwrap(), Paid::Refused);
        assert_eq!(reason_of(&receipt), "INSUFFICIENT_FUNDS");
        assert_eq!(harness.balances(), before);
    });
}
