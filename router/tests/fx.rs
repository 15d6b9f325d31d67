//! Drives `corridor.v1.FxService` and quoted payments against the real `corridor` binary over real
//! gRPC: locked quotes on a two-hop route (e-THB → e-HKD → e-AED) paid exactly as quoted, the ways a
//! quote cannot be used (reused, someone else's, mismatched, unknown, expired, a provider short of
//! liquidity), rate publication (who may, all or nothing, too old), the rate book (filters,
//! staleness), the reasons a quote is refused, and health and reflection.
//!
//! Balances cannot be read over gRPC, so "nothing moved" is proven by paying: an account that must
//! still hold exactly X pays X (settles) and then one minor unit more (refused with nothing left).
//!
//! One server per configuration, shared by the tests that use it (see [`Shared`]); each test uses
//! its own payer accounts, so the tests do not depend on each other's payments.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::fx_service_client::FxServiceClient;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// The `[fx]` section of the main server: rates stay fresh for a minute, quotes for 30 s.
const FX_MAIN: &str = "
[fx]
rate_max_age_ms = 60000
quote_ttl_ms = 30000
hop_limit = 3
";

/// The `[fx]` section of the server for waiting tests: quotes expire after 1.5 s and rates go stale
/// after 4 s (so tests on it publish the rates they need first).
const FX_SHORT: &str = "
[fx]
rate_max_age_ms = 4000
quote_ttl_ms = 1500
hop_limit = 3
";

/// Five ledgers; e-SGD is served by no provider. Every payer account belongs to one test.
const NETWORK: &str = r#"
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

[[ledgers]]
id = "e-sgd"
currency = "SGD"
jurisdiction = "SG"

[[participants]]
id = "bank-th"
role = "bank"
accounts = [
  { address = "e-thb/bank-th.quoted", opening_balance = "20000.00" },
  { address = "e-thb/bank-th.reuse", opening_balance = "20000.00" },
  { address = "e-thb/bank-th.misuse", opening_balance = "20000.00" },
  { address = "e-thb/bank-th.expiry", opening_balance = "20000.00" },
  { address = "e-thb/bank-th.errors", opening_balance = "20000.00" },
  { address = "e-thb/bank-th.sink" },
]

[[participants]]
id = "bank-th2"
role = "bank"
accounts = [{ address = "e-thb/bank-th2.main", opening_balance = "20000.00" }]

[[participants]]
id = "bank-ae"
role = "bank"
accounts = [
  { address = "e-aed/bank-ae.payee1" },
  { address = "e-aed/bank-ae.payee2" },
  { address = "e-aed/bank-ae.poor", opening_balance = "500.00" },
  { address = "e-aed/bank-ae.sink" },
]

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [
  { address = "e-hkd/bank-hk.w1", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.payee" },
]

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [{ address = "e-cny/bank-cn.w1", opening_balance = "1000.00" }]

[[participants]]
id = "bank-sg"
role = "bank"
accounts = [{ address = "e-sgd/bank-sg.w1", opening_balance = "1000.00" }]

[[participants]]
id = "lp-a"
role = "liquidity_provider"
accounts = [
  { address = "e-thb/lp-a", opening_balance = "1000000.00" },
  { address = "e-hkd/lp-a", opening_balance = "1000000.00" },
]

[[participants]]
id = "lp-b"
role = "liquidity_provider"
accounts = [
  { address = "e-hkd/lp-b", opening_balance = "1000000.00" },
  { address = "e-aed/lp-b", opening_balance = "1000000.00" },
]

# Almost no money. Its ask beats lp-b's (it wins AED -> HKD), its bid is worse (it never wins
# HKD -> AED), and it fills at most 100.00 AED.
[[participants]]
id = "lp-poor"
role = "liquidity_provider"
accounts = [
  { address = "e-hkd/lp-poor", opening_balance = "1.00" },
  { address = "e-aed/lp-poor", opening_balance = "1.00" },
]

# Only the publication test prices with lp-c's CNY/HKD rate.
[[participants]]
id = "lp-c"
role = "liquidity_provider"
accounts = [
  { address = "e-cny/lp-c", opening_balance = "100000.00" },
  { address = "e-hkd/lp-c", opening_balance = "100000.00" },
]

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
maximum = "250000.00 AED"

[[rates]]
provider = "lp-poor"
pair = "HKD/AED"
bid = "0.4700"
ask = "0.4720"
maximum = "100.00 AED"

[[rates]]
provider = "lp-c"
pair = "CNY/HKD"
bid = "1.0940"
ask = "1.0975"

# Cross-border hops only (no to_ledger); e-CNY charges nothing.
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
from_ledger = "e-aed"
currency = "AED"
fixed = "0.50"
basis_points = 5
"#;

/// The server process; killed when dropped so a failing test leaves nothing behind.
struct Server {
    child: Child,
    endpoint: String,
    config: PathBuf,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _already_gone = self.child.kill();
        let _reaped = self.child.wait();
        let _already_gone = std::fs::remove_file(&self.config);
        let _already_gone = std::fs::remove_dir_all(&self.data);
    }
}

/// Distinguishes the files of servers this process starts.
static SERVERS_STARTED: AtomicUsize = AtomicUsize::new(0);

fn start_server(name: &str, fx: &str) -> Server {
    let run =
        format!("corridor-fx-test-{name}-{}-{}", std::process::id(), SERVERS_STARTED.fetch_add(1, Ordering::SeqCst));
    let config = std::env::temp_dir().join(format!("{run}.toml"));
    std::fs::write(&config, format!("{fx}{NETWORK}")).unwrap();
    let data = std::env::temp_dir().join(format!("{run}-data"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["serve", "--insecure-dev", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let address =
        line.trim().strip_prefix("corridor listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    Server { child, endpoint: format!("http://{address}"), config, data }
}

/// One server per configuration, shared by the tests running at the same time: the first test
/// starts it, the last one to finish stops it (a later test would start a fresh one).
struct Shared {
    slot: Mutex<Weak<Server>>,
    name: &'static str,
    fx: &'static str,
}

impl Shared {
    fn get(&self) -> Arc<Server> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(start_server(self.name, self.fx));
        *slot = Arc::downgrade(&server);
        server
    }
}

static MAIN: Shared = Shared { slot: Mutex::new(Weak::new()), name: "main", fx: FX_MAIN };
static SHORT: Shared = Shared { slot: Mutex::new(Weak::new()), name: "short", fx: FX_SHORT };

async fn connect(server: &Server) -> (PaymentServiceClient<Channel>, FxServiceClient<Channel>) {
    let channel = Channel::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    (PaymentServiceClient::new(channel.clone()), FxServiceClient::new(channel))
}

fn money(currency: &str, amount: &str) -> Option<wire::Money> {
    Some(wire::Money { currency: currency.into(), amount: amount.into() })
}

fn quote_request(
    participant: &str,
    payer: &str,
    payee: &str,
    amount: Option<wire::Money>,
    side: wire::FixedSide,
) -> wire::QuoteFxRequest {
    wire::QuoteFxRequest {
        participant_id: participant.into(),
        payer: payer.into(),
        payee: payee.into(),
        amount,
        fixed_side: side as i32,
    }
}

async fn quote(fx: &mut FxServiceClient<Channel>, request: wire::QuoteFxRequest) -> Result<wire::Quote, tonic::Status> {
    Ok(fx.quote_fx(request).await?.into_inner().quote.unwrap())
}

/// The instruction that pays `quote`, exactly as quoted.
fn paying(quote: &wire::Quote, key: &str) -> wire::PaymentInstruction {
    wire::PaymentInstruction {
        participant_id: quote.participant_id.clone(),
        idempotency_key: key.into(),
        payer: quote.payer.clone(),
        payee: quote.payee.clone(),
        amount: quote.amount.clone(),
        fixed_side: quote.fixed_side,
        reference: "fx test".into(),
        quote_id: quote.quote_id.clone(),
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: Vec::new(),
    }
}

/// A payment without a quote (same-ledger ones carry no fee here).
fn unquoted(
    participant: &str,
    key: &str,
    payer: &str,
    payee: &str,
    currency: &str,
    amount: &str,
) -> wire::PaymentInstruction {
    wire::PaymentInstruction {
        participant_id: participant.into(),
        idempotency_key: key.into(),
        payer: payer.into(),
        payee: payee.into(),
        amount: money(currency, amount),
        fixed_side: wire::FixedSide::Send as i32,
        reference: "fx test".into(),
        quote_id: String::new(),
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: Vec::new(),
    }
}

async fn submit(
    client: &mut PaymentServiceClient<Channel>,
    instruction: wire::PaymentInstruction,
) -> Result<wire::Payment, tonic::Status> {
    let response = client.submit_payment(wire::SubmitPaymentRequest { instruction: Some(instruction) }).await?;
    Ok(response.into_inner().payment.unwrap())
}

async fn get_payment(client: &mut PaymentServiceClient<Channel>, id: &str) -> wire::Payment {
    client.get_payment(wire::GetPaymentRequest { payment_id: id.into() }).await.unwrap().into_inner().payment.unwrap()
}

/// Every payment of `participant` (all pages).
async fn payments_of(client: &mut PaymentServiceClient<Channel>, participant: &str) -> Vec<wire::Payment> {
    let mut payments = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_payments(wire::ListPaymentsRequest {
                participant_id: participant.into(),
                page_size: 1000,
                page_token,
            })
            .await
            .unwrap()
            .into_inner();
        payments.extend(page.payments);
        if page.next_page_token.is_empty() {
            return payments;
        }
        page_token = page.next_page_token;
    }
}

fn status_of(payment: &wire::Payment) -> wire::PaymentStatus {
    wire::PaymentStatus::try_from(payment.status).unwrap()
}

fn reason_code(payment: &wire::Payment) -> &str {
    payment.reason.as_ref().map_or("", |reason| reason.code.as_str())
}

fn leg_states(payment: &wire::Payment) -> Vec<(String, wire::LegState)> {
    payment.legs.iter().map(|leg| (leg.ledger_id.clone(), wire::LegState::try_from(leg.state).unwrap())).collect()
}

/// Proves `account` holds exactly `amount` with nothing held on it: paying all of it to `sink`
/// settles, and one minor unit more is refused with nothing available.
async fn assert_holds_exactly(
    client: &mut PaymentServiceClient<Channel>,
    participant: &str,
    account: &str,
    sink: &str,
    currency: &str,
    amount: &str,
) {
    let key = format!("drain-{account}");
    let all = submit(client, unquoted(participant, &key, account, sink, currency, amount)).await.unwrap();
    assert_eq!(status_of(&all), wire::PaymentStatus::Settled, "{account} does not hold {amount} {currency}: {all:?}");
    let more =
        submit(client, unquoted(participant, &format!("{key}-more"), account, sink, currency, "0.01")).await.unwrap();
    assert_eq!(status_of(&more), wire::PaymentStatus::Rejected, "{account} held more than {amount} {currency}");
    let reason = more.reason.unwrap();
    assert_eq!(reason.code, "INSUFFICIENT_FUNDS");
    assert!(reason.message.contains(&format!("has 0.00 {currency} available")), "{}", reason.message);
}

/// (ledger, account, amount) of every posting, in leg order.
fn postings_of(payment: &wire::Payment) -> Vec<(&str, &str, &str)> {
    payment
        .legs
        .iter()
        .flat_map(|leg| leg.postings.iter().map(|p| (leg.ledger_id.as_str(), p.account.as_str(), p.amount.as_str())))
        .collect()
}

fn nanos(at: Option<prost_types::Timestamp>) -> i128 {
    let at = at.unwrap();
    i128::from(at.seconds) * 1_000_000_000 + i128::from(at.nanos)
}

fn fee(kind_amount: (&str, &str), account: &str, corridor: &str) -> wire::Fee {
    wire::Fee {
        kind: "NETWORK".into(),
        amount: money(kind_amount.0, kind_amount.1),
        account: account.into(),
        corridor: corridor.into(),
    }
}

/// (from, to, provider, pair, rate, send, receive) of each hop.
fn hops_of(hops: &[wire::FxHop]) -> Vec<(String, String, String, String, String, wire::Money, wire::Money)> {
    hops.iter()
        .map(|hop| {
            let conversion = hop.conversion.clone().unwrap();
            (
                hop.from_ledger.clone(),
                hop.to_ledger.clone(),
                conversion.provider_id,
                conversion.pair,
                conversion.rate,
                hop.send_amount.clone().unwrap(),
                hop.receive_amount.clone().unwrap(),
            )
        })
        .collect()
}

fn hop(
    from: &str,
    to: &str,
    provider: &str,
    pair: &str,
    rate: &str,
    send: (&str, &str),
    receive: (&str, &str),
) -> (String, String, String, String, String, wire::Money, wire::Money) {
    (
        from.into(),
        to.into(),
        provider.into(),
        pair.into(),
        rate.into(),
        money(send.0, send.1).unwrap(),
        money(receive.0, receive.1).unwrap(),
    )
}

fn entry(pair: &str, bid: &str, ask: &str) -> wire::RateEntry {
    wire::RateEntry { pair: pair.into(), bid: bid.into(), ask: ask.into(), as_of: None, maximum: None }
}

async fn publish(
    fx: &mut FxServiceClient<Channel>,
    provider: &str,
    rates: Vec<wire::RateEntry>,
) -> Result<u32, tonic::Status> {
    let request = wire::PublishRatesRequest { provider_id: provider.into(), rates };
    Ok(fx.publish_rates(request).await?.into_inner().accepted)
}

async fn rates(fx: &mut FxServiceClient<Channel>, pair: &str) -> Result<wire::GetRatesResponse, tonic::Status> {
    Ok(fx.get_rates(wire::GetRatesRequest { pair: pair.into() }).await?.into_inner())
}

/// (provider, pair, bid, ask, stale) of each rate.
fn book_of(response: &wire::GetRatesResponse) -> Vec<(String, String, String, String, bool)> {
    response
        .rates
        .iter()
        .map(|rate| {
            let entry = rate.rate.clone().unwrap();
            (rate.provider_id.clone(), entry.pair, entry.bid, entry.ask, rate.stale)
        })
        .collect()
}

fn assert_refused(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, fragment: &str) {
    let error = result.expect_err("expected a refusal");
    assert_eq!(error.code(), code, "{}", error.message());
    assert!(error.message().contains(fragment), "`{}` lacks `{fragment}`", error.message());
}

/// Both fixed sides on e-THB → e-HKD → e-AED, amounts worked by hand; paying settles at exactly the
/// quote, a retry is the same payment, and exactly the quoted totals moved.
#[tokio::test]
async fn a_quote_prices_a_two_hop_route_and_the_payment_settles_exactly_as_quoted() {
    let server = MAIN.get();
    let (mut payments, mut fx) = connect(&server).await;
    let payer = "e-thb/bank-th.quoted";
    let payee = "e-aed/bank-ae.payee1";

    // Fixed send, 10000.00 THB. No provider quotes THB/AED: the route pivots through e-HKD.
    let sent = quote(&mut fx, quote_request("bank-th", payer, payee, money("THB", "10000.00"), wire::FixedSide::Send))
        .await
        .unwrap();
    assert_eq!(sent.route, ["e-thb", "e-hkd", "e-aed"]);
    assert_eq!((sent.participant_id.as_str(), sent.payer.as_str(), sent.payee.as_str()), ("bank-th", payer, payee));
    assert_eq!(sent.fixed_side, wire::FixedSide::Send as i32);
    assert_eq!(sent.amount, money("THB", "10000.00"));
    // Hop 1: lp-a sells HKD at its ask: 10000.00 / 4.1730 = 2396.3575... → 2396.35 HKD (down).
    // Hop 2 converts x with x + 1.00 + floor(x × 5 bp) <= 2396.35: x = 2394.16, fee 1.00 + 1.19
    // (floor 1.19708) = 2.19 HKD, and 2394.16 + 2.19 = 2396.35 exactly. lp-b buys HKD at its bid:
    // 2394.16 × 0.4711 = 1127.888776 → 1127.88 AED (down). (lp-poor bids less, and is above its
    // 100.00 AED maximum anyway.)
    assert_eq!(
        hops_of(&sent.hops),
        [
            hop("e-thb", "e-hkd", "lp-a", "HKD/THB", "0.2396357537", ("THB", "10000.00"), ("HKD", "2396.35")),
            hop("e-hkd", "e-aed", "lp-b", "HKD/AED", "0.4711", ("HKD", "2394.16"), ("AED", "1127.88")),
        ]
    );
    // The payer's fee on top: 5.00 + 10000.00 × 5 bp = 10.00 THB.
    assert_eq!(
        sent.fees,
        [
            fee(("THB", "10.00"), "e-thb/corridor.fees", "e-thb->e-hkd"),
            fee(("HKD", "2.19"), "e-hkd/corridor.fees", "e-hkd->e-aed"),
        ]
    );
    assert_eq!(sent.send_amount, money("THB", "10000.00"));
    assert_eq!(sent.receive_amount, money("AED", "1127.88"));
    assert_eq!(sent.total_debit, money("THB", "10010.00"));
    // 1127.88 / 10010.00 = 0.11267532467... → 10 places.
    assert_eq!(sent.all_in_rate, "0.1126753247");
    assert_eq!(nanos(sent.expires_at) - nanos(sent.quoted_at), 30_000 * 1_000_000, "quote_ttl_ms is 30000");

    // Fixed receive, 1000.00 AED, priced backward.
    let received =
        quote(&mut fx, quote_request("bank-th", payer, payee, money("AED", "1000.00"), wire::FixedSide::Receive))
            .await
            .unwrap();
    assert_eq!(received.route, ["e-thb", "e-hkd", "e-aed"]);
    // Hop 2: 1000.00 / 0.4711 = 2122.6915... → 2122.70 HKD (up). Its fee 1.00 + floor(2122.70 × 5
    // bp = 1.06135) = 2.06 HKD comes out of what arrives on e-HKD: 2124.76 HKD. Hop 1: 2124.76 ×
    // 4.1730 = 8866.62348 → 8866.63 THB (up). The payer's fee: 5.00 + floor(4.433315) = 9.43 THB.
    assert_eq!(
        hops_of(&received.hops),
        [
            hop("e-thb", "e-hkd", "lp-a", "HKD/THB", "0.2396357537", ("THB", "8866.63"), ("HKD", "2124.76")),
            hop("e-hkd", "e-aed", "lp-b", "HKD/AED", "0.4711", ("HKD", "2122.70"), ("AED", "1000.00")),
        ]
    );
    assert_eq!(
        received.fees,
        [
            fee(("THB", "9.43"), "e-thb/corridor.fees", "e-thb->e-hkd"),
            fee(("HKD", "2.06"), "e-hkd/corridor.fees", "e-hkd->e-aed"),
        ]
    );
    assert_eq!(received.send_amount, money("THB", "8866.63"));
    assert_eq!(received.receive_amount, money("AED", "1000.00"));
    assert_eq!(received.total_debit, money("THB", "8876.06"));
    // 1000.00 / 8876.06 = 0.11266260030...
    assert_eq!(received.all_in_rate, "0.1126626003");
    assert_eq!(nanos(received.expires_at) - nanos(received.quoted_at), 30_000 * 1_000_000);
    assert_ne!(received.quote_id, sent.quote_id);

    for (quote, key) in [(&sent, "quoted-send"), (&received, "quoted-receive")] {
        let payment = submit(&mut payments, paying(quote, key)).await.unwrap();
        assert_eq!(status_of(&payment), wire::PaymentStatus::Settled, "{payment:?}");
        assert_eq!(payment.quote_id, quote.quote_id);
        assert_eq!(payment.route, quote.route);
        assert_eq!(payment.send_amount, quote.send_amount);
        assert_eq!(payment.receive_amount, quote.receive_amount);
        assert_eq!(payment.total_debit, quote.total_debit);
        assert_eq!(payment.fees, quote.fees);
        assert_eq!(payment.hops, quote.hops, "the receipt's hops are not the quote's");
        assert!(payment.legs.iter().all(|leg| leg.state == wire::LegState::Committed as i32), "{payment:?}");
        // A retry of the key is the same payment, not a second one (and does not trip over the
        // quote it already used).
        let again = submit(&mut payments, paying(quote, key)).await.unwrap();
        assert_eq!(again, payment);
        assert_eq!(get_payment(&mut payments, &payment.payment_id).await, payment);
        if key == "quoted-send" {
            // The legs move exactly the hops: on e-HKD lp-a pays 2396.35, of which lp-b converts
            // 2394.16 and the network keeps its 2.19 fee.
            assert_eq!(
                postings_of(&payment),
                [
                    ("e-thb", "bank-th.quoted", "-10010.00"),
                    ("e-thb", "lp-a", "10000.00"),
                    ("e-thb", "corridor.fees", "10.00"),
                    ("e-hkd", "lp-a", "-2396.35"),
                    ("e-hkd", "lp-b", "2394.16"),
                    ("e-hkd", "corridor.fees", "2.19"),
                    ("e-aed", "lp-b", "-1127.88"),
                    ("e-aed", "bank-ae.payee1", "1127.88"),
                ]
            );
        }
    }

    // Exactly the quoted totals moved: 20000.00 − 10010.00 − 8876.06 = 1113.94 THB is left, and the
    // payee got exactly 1127.88 + 1000.00 = 2127.88 AED.
    assert_holds_exactly(&mut payments, "bank-th", payer, "e-thb/bank-th.sink", "THB", "1113.94").await;
    assert_holds_exactly(&mut payments, "bank-ae", payee, "e-aed/bank-ae.sink", "AED", "2127.88").await;
}

/// Single use: of two racing payments with one quote exactly one settles, and a later one is
/// refused too; only the winner's money moved.
#[tokio::test]
async fn a_quote_pays_once() {
    let server = MAIN.get();
    let (mut payments, mut fx) = connect(&server).await;
    let payer = "e-thb/bank-th.reuse";
    let locked = quote(
        &mut fx,
        quote_request("bank-th", payer, "e-aed/bank-ae.payee2", money("THB", "10000.00"), wire::FixedSide::Send),
    )
    .await
    .unwrap();
    assert_eq!(locked.total_debit, money("THB", "10010.00"));

    // Two payments race for it under different keys: exactly one settles.
    let (mut a, mut b) = (payments.clone(), payments.clone());
    let (first, second) =
        tokio::join!(submit(&mut a, paying(&locked, "reuse-1")), submit(&mut b, paying(&locked, "reuse-2")));
    let (first, second) = (first.unwrap(), second.unwrap());
    let (winner, loser) =
        if status_of(&first) == wire::PaymentStatus::Settled { (first, second) } else { (second, first) };
    assert_eq!(status_of(&winner), wire::PaymentStatus::Settled, "{winner:?}");
    assert_eq!(status_of(&loser), wire::PaymentStatus::Rejected, "{loser:?}");
    assert_eq!(reason_code(&loser), "QUOTE_ALREADY_USED");
    assert!(loser.reason.as_ref().unwrap().message.contains(&winner.payment_id), "{:?}", loser.reason);

    // And later, too.
    let late = submit(&mut payments, paying(&locked, "reuse-3")).await.unwrap();
    assert_eq!(status_of(&late), wire::PaymentStatus::Rejected);
    assert_eq!(reason_code(&late), "QUOTE_ALREADY_USED");
    assert_eq!(late.quote_id, locked.quote_id);
    for rejected in [&loser, &late] {
        assert!(rejected.legs.is_empty(), "a refused quote reached a ledger: {rejected:?}");
        assert_eq!(&get_payment(&mut payments, &rejected.payment_id).await, rejected);
    }

    // Only the winner moved money: 20000.00 − 10010.00 = 9990.00 THB is left.
    assert_holds_exactly(&mut payments, "bank-th", payer, "e-thb/bank-th.sink", "THB", "9990.00").await;
}

/// Someone else's quote, an instruction that differs from the quote, a malformed or unknown quote
/// id: refused, nothing stored but the unknown-quote rejection, and the quote still pays.
#[tokio::test]
async fn a_quote_is_only_for_its_participant_and_its_instruction() {
    let server = MAIN.get();
    let (mut payments, mut fx) = connect(&server).await;
    let payer = "e-thb/bank-th.misuse";
    let locked = quote(
        &mut fx,
        quote_request("bank-th", payer, "e-aed/bank-ae.payee2", money("THB", "1000.00"), wire::FixedSide::Send),
    )
    .await
    .unwrap();
    // 5.00 + 1000.00 × 5 bp = 5.50 THB on top.
    assert_eq!(locked.total_debit, money("THB", "1005.50"));

    type Edit = Box<dyn Fn(&mut wire::PaymentInstruction)>;
    let cases: Vec<(Edit, Code, String)> = vec![
        (
            // bank-th2 owns its payer account, but the quote is bank-th's.
            Box::new(|i| {
                i.participant_id = "bank-th2".into();
                i.payer = "e-thb/bank-th2.main".into();
            }),
            Code::PermissionDenied,
            format!("quote {} was issued to another participant", locked.quote_id),
        ),
        (
            Box::new(|i| i.amount = money("THB", "1000.01")),
            Code::InvalidArgument,
            format!("instruction.amount: does not match quote {}", locked.quote_id),
        ),
        (
            Box::new(|i| i.payee = "e-aed/bank-ae.sink".into()),
            Code::InvalidArgument,
            format!("instruction.payee: does not match quote {}", locked.quote_id),
        ),
        (
            Box::new(|i| i.payer = "e-thb/bank-th.reuse".into()),
            Code::InvalidArgument,
            format!("instruction.payer: does not match quote {}", locked.quote_id),
        ),
        (
            Box::new(|i| i.quote_id = "quote-1".into()),
            Code::InvalidArgument,
            "instruction.quote_id: is not a UUID".into(),
        ),
        (
            Box::new(|i| i.quote_id = "67e55044-10b1-426f-9247-bb680e5fe0c8".into()),
            Code::InvalidArgument,
            "instruction.quote_id: is not a Corridor quote id (UUID v7)".into(),
        ),
    ];
    for (edit, code, fragment) in cases {
        let mut bad = paying(&locked, "misuse");
        edit(&mut bad);
        assert_refused(submit(&mut payments, bad).await, code, &fragment);
    }

    // Fixed side can only differ where both ledgers issue one currency: a domestic quote.
    let domestic = quote(
        &mut fx,
        quote_request("bank-th", payer, "e-thb/bank-th.sink", money("THB", "100.00"), wire::FixedSide::Send),
    )
    .await
    .unwrap();
    assert_eq!(domestic.route, ["e-thb"]);
    assert!(domestic.hops.is_empty() && domestic.fees.is_empty(), "{domestic:?}");
    let mut receive = paying(&domestic, "misuse");
    receive.fixed_side = wire::FixedSide::Receive as i32;
    assert_refused(
        submit(&mut payments, receive).await,
        Code::InvalidArgument,
        &format!("instruction.fixed_side: does not match quote {}, which is for SEND", domestic.quote_id),
    );

    // A well-formed id no one issued: a stored rejection (so a retry of the key gets the same).
    let mut unknown = paying(&locked, "misuse-unknown");
    unknown.quote_id = "019a0000-0000-7000-8000-000000000000".into();
    let rejected = submit(&mut payments, unknown.clone()).await.unwrap();
    assert_eq!(status_of(&rejected), wire::PaymentStatus::Rejected);
    assert_eq!(reason_code(&rejected), "QUOTE_UNKNOWN");
    assert!(rejected.legs.is_empty(), "{rejected:?}");
    assert_eq!(submit(&mut payments, unknown).await.unwrap(), rejected);

    // Nothing refused was stored: bank-th2 has no payments, the key "misuse" is still free, and
    // the quote is still unused.
    assert!(payments_of(&mut payments, "bank-th2").await.is_empty());
    let keys: Vec<String> = payments_of(&mut payments, "bank-th")
        .await
        .into_iter()
        .filter(|payment| payment.payer == payer)
        .map(|payment| payment.idempotency_key)
        .collect();
    assert_eq!(keys, ["misuse-unknown"]);
    let paid = submit(&mut payments, paying(&locked, "misuse")).await.unwrap();
    assert_eq!(status_of(&paid), wire::PaymentStatus::Settled, "{paid:?}");
    assert_eq!(paid.total_debit, locked.total_debit);
    // 20000.00 − 1005.50 = 18994.50 THB; bank-th2 still has all of its 20000.00.
    assert_holds_exactly(&mut payments, "bank-th", payer, "e-thb/bank-th.sink", "THB", "18994.50").await;
    assert_holds_exactly(&mut payments, "bank-th2", "e-thb/bank-th2.main", "e-thb/bank-th.sink", "THB", "20000.00")
        .await;
}

/// Paid after its expiry, a quote is refused and nothing moves; a payment made in time keeps its
/// receipt on retry after the expiry.
#[tokio::test]
async fn an_expired_quote_is_rejected_and_moves_nothing() {
    let server = SHORT.get();
    let (mut payments, mut fx) = connect(&server).await;
    // Rates on this server go stale after 4 s: publish the one this test needs, fresh.
    assert_eq!(publish(&mut fx, "lp-a", vec![entry("HKD/THB", "4.1560", "4.1730")]).await.unwrap(), 1);
    let payer = "e-thb/bank-th.expiry";
    let locked = quote(
        &mut fx,
        quote_request("bank-th", payer, "e-hkd/bank-hk.payee", money("THB", "1000.00"), wire::FixedSide::Send),
    )
    .await
    .unwrap();
    assert_eq!(nanos(locked.expires_at) - nanos(locked.quoted_at), 1_500 * 1_000_000, "quote_ttl_ms is 1500");
    // Another quote, paid in time: 1000.00 THB + 5.50 fee.
    let in_time = quote(
        &mut fx,
        quote_request("bank-th", payer, "e-hkd/bank-hk.payee", money("THB", "1000.00"), wire::FixedSide::Send),
    )
    .await
    .unwrap();
    let settled = submit(&mut payments, paying(&in_time, "in-time")).await.unwrap();
    assert_eq!(status_of(&settled), wire::PaymentStatus::Settled, "{settled:?}");
    assert_eq!(settled.total_debit, money("THB", "1005.50"));
    let expires_at = SystemTime::try_from(locked.expires_at.unwrap()).unwrap();
    let wait = expires_at.duration_since(SystemTime::now()).unwrap_or_default() + Duration::from_millis(100);
    tokio::time::sleep(wait).await;

    let expired = submit(&mut payments, paying(&locked, "expiry")).await.unwrap();
    assert_eq!(status_of(&expired), wire::PaymentStatus::Rejected, "{expired:?}");
    assert_eq!(reason_code(&expired), "QUOTE_EXPIRED");
    assert!(expired.reason.as_ref().unwrap().message.contains("expired at"), "{:?}", expired.reason);
    assert!(expired.legs.is_empty(), "an expired quote reached a ledger: {expired:?}");
    assert_eq!(expired.quote_id, locked.quote_id);
    assert_eq!(submit(&mut payments, paying(&locked, "expiry")).await.unwrap(), expired);
    // A retry of the payment that settled in time still gets its receipt, though its quote has
    // expired since.
    assert_eq!(submit(&mut payments, paying(&in_time, "in-time")).await.unwrap(), settled);

    // Only the payment in time moved money: 20000.00 − 1005.50 = 18994.50 THB is left.
    assert_holds_exactly(&mut payments, "bank-th", payer, "e-thb/bank-th.sink", "THB", "18994.50").await;
}

/// The best-priced provider cannot fill its leg: LIQUIDITY_UNAVAILABLE, and neither the payer's
/// nor the provider's money moved.
#[tokio::test]
async fn a_provider_short_of_liquidity_rejects_the_quoted_payment_and_moves_nothing() {
    let server = MAIN.get();
    let (mut payments, mut fx) = connect(&server).await;
    let payer = "e-aed/bank-ae.poor";
    let locked = quote(
        &mut fx,
        quote_request("bank-ae", payer, "e-hkd/bank-hk.payee", money("AED", "50.00"), wire::FixedSide::Send),
    )
    .await
    .unwrap();
    // lp-poor sells HKD at 0.4720: 50.00 / 0.4720 = 105.932... → 105.93 HKD, better than lp-b's
    // 50.00 / 0.4730 = 105.70, and within its 100.00 AED maximum; but it has 1.00 HKD.
    assert_eq!(
        hops_of(&locked.hops),
        [hop("e-aed", "e-hkd", "lp-poor", "HKD/AED", "2.1186440678", ("AED", "50.00"), ("HKD", "105.93"))]
    );
    // 0.50 + floor(50.00 × 5 bp = 0.025) = 0.52 AED on top.
    assert_eq!(locked.total_debit, money("AED", "50.52"));

    let refused = submit(&mut payments, paying(&locked, "poor")).await.unwrap();
    assert_eq!(status_of(&refused), wire::PaymentStatus::Rejected, "{refused:?}");
    assert_eq!(reason_code(&refused), "LIQUIDITY_UNAVAILABLE", "{:?}", refused.reason);
    assert_eq!(
        leg_states(&refused),
        [("e-aed".into(), wire::LegState::Aborted), ("e-hkd".into(), wire::LegState::Refused)]
    );
    assert_eq!(refused.legs[1].refusal.as_ref().map(|refusal| refusal.code.as_str()), Some("INSUFFICIENT_FUNDS"));
    assert_eq!((&refused.total_debit, &refused.quote_id), (&locked.total_debit, &locked.quote_id));

    // The payer still has all of its 500.00 AED, and lp-poor its 1.00 on each ledger.
    assert_holds_exactly(&mut payments, "bank-ae", payer, "e-aed/bank-ae.sink", "AED", "500.00").await;
    assert_holds_exactly(&mut payments, "lp-poor", "e-aed/lp-poor", "e-aed/bank-ae.sink", "AED", "1.00").await;
    assert_holds_exactly(&mut payments, "lp-poor", "e-hkd/lp-poor", "e-hkd/bank-hk.payee", "HKD", "1.00").await;
}

/// Only registered providers publish; one bad entry refuses the whole request and leaves the book
/// as it was; a good publication shows in GetRates and reprices the next quote.
#[tokio::test]
async fn publishing_rates_is_for_providers_all_or_nothing_and_reprices_quotes() {
    let server = MAIN.get();
    let (_payments, mut fx) = connect(&server).await;
    let cny_to_hkd = || {
        quote_request(
            "bank-cn",
            "e-cny/bank-cn.w1",
            "e-hkd/bank-hk.payee",
            money("CNY", "100.00"),
            wire::FixedSide::Send,
        )
    };
    let received = |quote: &wire::Quote| quote.receive_amount.clone().unwrap().amount;
    // lp-c buys CNY at 1.0940: 100.00 × 1.0940 = 109.40 HKD (e-CNY charges no fee).
    assert_eq!(received(&quote(&mut fx, cny_to_hkd()).await.unwrap()), "109.40");
    let before = rates(&mut fx, "").await.unwrap();
    let good = || entry("CNY/HKD", "1.0950", "1.0960");
    let also_good = || entry("CNY/AED", "0.5100", "0.5200");

    assert_refused(
        publish(&mut fx, "bank-th", vec![good()]).await,
        Code::PermissionDenied,
        "`bank-th` is not a liquidity provider",
    );
    assert_refused(
        publish(&mut fx, "lp-nobody", vec![good()]).await,
        Code::PermissionDenied,
        "`lp-nobody` is not registered on this network",
    );
    assert_refused(publish(&mut fx, "", vec![good()]).await, Code::InvalidArgument, "provider_id");

    let now = SystemTime::now();
    let at = |time: SystemTime| Some(prost_types::Timestamp::from(time));
    let bad: Vec<(wire::RateEntry, &str)> = vec![
        (entry("CNY/HKD", "1.1000", "1.0900"), "rates[1].bid: 1.1000 is above the ask 1.0900"),
        (entry("USD/HKD", "7.80", "7.81"), "rates[1].pair: no ledger on this network issues USD"),
        (entry("CNYHKD", "1.09", "1.10"), "rates[1].pair: bad currency pair: `CNYHKD` is not of the form BASE/QUOTE"),
        (entry("CNY/HKD", "abc", "1.10"), "rates[1].bid: `abc` is not a decimal number"),
        (entry("CNY/HKD", "1.09", "0"), "rates[1].ask: 0 is not positive"),
        (
            wire::RateEntry { maximum: money("AED", "100.00"), ..good() },
            "rates[1].maximum: AED is not a currency of CNY/HKD",
        ),
        (wire::RateEntry { maximum: money("HKD", "1.234"), ..good() }, "rates[1].maximum.amount"),
        (wire::RateEntry { as_of: at(now + Duration::from_secs(60)), ..good() }, "rates[1].as_of: is in the future"),
    ];
    for (entry, fragment) in bad {
        let result = publish(&mut fx, "lp-c", vec![good(), entry.clone(), also_good()]).await;
        assert_refused(result, Code::InvalidArgument, fragment);
        assert_eq!(rates(&mut fx, "").await.unwrap(), before, "a refused publication ({entry:?}) changed the book");
    }
    // Older than the network's 60 s maximum age.
    let old = wire::RateEntry { as_of: at(now - Duration::from_secs(120)), ..good() };
    assert_refused(
        publish(&mut fx, "lp-c", vec![good(), old]).await,
        Code::FailedPrecondition,
        "rates[1].as_of: the rate is older than the network's maximum age of 60000 ms",
    );
    assert_eq!(rates(&mut fx, "").await.unwrap(), before);
    assert_eq!(received(&quote(&mut fx, cny_to_hkd()).await.unwrap()), "109.40", "a refused publication repriced");

    assert_eq!(publish(&mut fx, "lp-c", vec![entry("CNY/HKD", "1.1000", "1.1050")]).await.unwrap(), 1);
    let after = rates(&mut fx, "").await.unwrap();
    let mut expected = book_of(&before);
    let replaced = expected.iter_mut().find(|rate| rate.0 == "lp-c" && rate.1 == "CNY/HKD").unwrap();
    (replaced.2, replaced.3) = ("1.1000".into(), "1.1050".into());
    assert_eq!(book_of(&after), expected);
    let published = after.rates.iter().find(|rate| rate.provider_id == "lp-c").unwrap();
    assert_eq!(published.source, "PublishRates");
    // 100.00 × 1.1000 = 110.00 HKD.
    let repriced = quote(&mut fx, cny_to_hkd()).await.unwrap();
    assert_eq!(received(&repriced), "110.00");
    let conversion = repriced.hops[0].conversion.clone().unwrap();
    assert_eq!((conversion.provider_id.as_str(), conversion.rate.as_str()), ("lp-c", "1.1"));
    assert_eq!(conversion.rate_source, "PublishRates");
}

/// A pair filter matches either orientation; a malformed pair is refused.
#[tokio::test]
async fn get_rates_filters_by_pair_in_either_orientation() {
    let server = MAIN.get();
    let (_payments, mut fx) = connect(&server).await;
    for pair in ["HKD/THB", "THB/HKD"] {
        let response = rates(&mut fx, pair).await.unwrap();
        assert_eq!(response.rate_max_age_ms, 60_000);
        assert_eq!(book_of(&response), [("lp-a".into(), "HKD/THB".into(), "4.1560".into(), "4.1730".into(), false)]);
        assert!(response.rates[0].source.starts_with("config "), "{}", response.rates[0].source);
        assert!(response.rates[0].rate.as_ref().unwrap().as_of.is_some());
    }
    let aed = rates(&mut fx, "AED/HKD").await.unwrap();
    assert_eq!(
        book_of(&aed),
        [
            ("lp-b".into(), "HKD/AED".into(), "0.4711".into(), "0.4730".into(), false),
            ("lp-poor".into(), "HKD/AED".into(), "0.4700".into(), "0.4720".into(), false),
        ]
    );
    assert_eq!(aed.rates[0].rate.as_ref().unwrap().maximum, money("AED", "250000.00"));
    assert!(rates(&mut fx, "SGD/THB").await.unwrap().rates.is_empty());

    let before = rates(&mut fx, "HKD/THB").await.unwrap();
    for (pair, fragment) in [
        ("HKDTHB", "pair: bad currency pair: `HKDTHB` is not of the form BASE/QUOTE"),
        ("HKD/HKD", "quotes a currency against itself"),
        ("HKX/THB", "pair: bad currency pair"),
    ] {
        assert_refused(rates(&mut fx, pair).await, Code::InvalidArgument, fragment);
    }
    assert_eq!(rates(&mut fx, "HKD/THB").await.unwrap(), before);
}

/// A rate past the maximum age is flagged stale and prices neither quotes nor payments.
#[tokio::test]
async fn a_rate_past_the_maximum_age_is_stale_and_prices_nothing() {
    let server = SHORT.get();
    let (mut payments, mut fx) = connect(&server).await;
    // Just inside the 4 s maximum age; both providers of HKD/AED, so no fresh rate is left.
    let as_of = SystemTime::now() - Duration::from_millis(3_000);
    for (provider, bid, ask) in [("lp-b", "0.4711", "0.4730"), ("lp-poor", "0.4700", "0.4720")] {
        let rate = wire::RateEntry { as_of: Some(as_of.into()), ..entry("HKD/AED", bid, ask) };
        assert_eq!(publish(&mut fx, provider, vec![rate]).await.unwrap(), 1);
    }
    let fresh = rates(&mut fx, "HKD/AED").await.unwrap();
    assert_eq!(fresh.rate_max_age_ms, 4_000);
    assert!(fresh.rates.len() == 2 && fresh.rates.iter().all(|rate| !rate.stale), "{fresh:?}");
    let hkd_to_aed = || {
        quote_request(
            "bank-hk",
            "e-hkd/bank-hk.w1",
            "e-aed/bank-ae.payee1",
            money("HKD", "100.00"),
            wire::FixedSide::Send,
        )
    };
    // Still usable: 100.00 × 0.4711 = 47.11 AED.
    assert_eq!(quote(&mut fx, hkd_to_aed()).await.unwrap().receive_amount, money("AED", "47.11"));

    let stale_at = as_of + Duration::from_millis(4_000 + 300);
    tokio::time::sleep(stale_at.duration_since(SystemTime::now()).unwrap_or_default()).await;
    let stale = rates(&mut fx, "HKD/AED").await.unwrap();
    assert!(stale.rates.iter().all(|rate| rate.stale), "{stale:?}");
    // Only the flag changed.
    let unflagged: Vec<wire::ProviderRate> =
        stale.rates.iter().map(|rate| wire::ProviderRate { stale: false, ..rate.clone() }).collect();
    assert_eq!(unflagged, fresh.rates);

    assert_refused(quote(&mut fx, hkd_to_aed()).await, Code::FailedPrecondition, "STALE_RATES");
    assert_refused(quote(&mut fx, hkd_to_aed()).await, Code::FailedPrecondition, "older than 4000 ms");
    // A payment without a quote is refused for the same reason, before any ledger hears of it.
    let mut instruction = unquoted("bank-hk", "stale", "e-hkd/bank-hk.w1", "e-aed/bank-ae.payee1", "HKD", "100.00");
    instruction.reference = "stale rates".into();
    let refused = submit(&mut payments, instruction).await.unwrap();
    assert_eq!(status_of(&refused), wire::PaymentStatus::Rejected, "{refused:?}");
    assert_eq!(reason_code(&refused), "STALE_RATES");
    assert!(refused.legs.is_empty(), "{refused:?}");

    assert_eq!(rates(&mut fx, "HKD/AED").await.unwrap(), stale, "refused pricing changed the book");
    assert_holds_exactly(&mut payments, "bank-hk", "e-hkd/bank-hk.w1", "e-hkd/bank-hk.payee", "HKD", "1000.00").await;
}

/// Every refusal of QuoteFx, with its code and the field or reason code; none changed the book,
/// the price or any balance.
#[tokio::test]
async fn quote_errors_name_their_reason() {
    let server = MAIN.get();
    let (mut payments, mut fx) = connect(&server).await;
    let payer = "e-thb/bank-th.errors";
    let good =
        || quote_request("bank-th", payer, "e-aed/bank-ae.payee1", money("THB", "10000.00"), wire::FixedSide::Send);
    let priced = quote(&mut fx, good()).await.unwrap();
    let book = (rates(&mut fx, "HKD/THB").await.unwrap(), rates(&mut fx, "HKD/AED").await.unwrap());

    type Edit = Box<dyn Fn(&mut wire::QuoteFxRequest)>;
    let cases: Vec<(Edit, Code, &str)> = vec![
        (
            Box::new(|r| r.payee = "e-sgd/bank-sg.w1".into()),
            Code::FailedPrecondition,
            "NO_ROUTE: no chain of at most 3 liquidity providers",
        ),
        // 0.01 THB / 4.1730 = 0.0023 HKD.
        (
            Box::new(|r| {
                r.payee = "e-hkd/bank-hk.payee".into();
                r.amount = money("THB", "0.01");
            }),
            Code::FailedPrecondition,
            "AMOUNT_BELOW_MINOR_UNIT: 0.01 THB converts to less than one minor unit of HKD",
        ),
        // Above lp-b's maximum, and lp-poor's (100.00 AED): no provider fills it.
        (
            Box::new(|r| {
                r.amount = money("AED", "250000.01");
                r.fixed_side = wire::FixedSide::Receive as i32;
            }),
            Code::FailedPrecondition,
            "ABOVE_PROVIDER_MAXIMUM: lp-b converts at most 250000.00 AED per payment",
        ),
        (
            Box::new(|r| r.participant_id = "bank-hk".into()),
            Code::PermissionDenied,
            "participant `bank-hk` does not own the payer account e-thb/bank-th.errors",
        ),
        (Box::new(|r| r.participant_id = "bank-zz".into()), Code::PermissionDenied, "`bank-zz` is not registered"),
        (
            Box::new(|r| r.amount = money("THB", "12.345")),
            Code::InvalidArgument,
            "amount.amount: `12.345` has 3 decimal places; THB allows 2",
        ),
        (Box::new(|r| r.amount = money("THB", "-5")), Code::InvalidArgument, "amount.amount"),
        (Box::new(|r| r.amount = None), Code::InvalidArgument, "amount: is required"),
        (
            Box::new(|r| r.amount = money("HKD", "100.00")),
            Code::InvalidArgument,
            "amount.currency: HKD does not match the payer ledger e-thb",
        ),
        (
            Box::new(|r| r.fixed_side = wire::FixedSide::Receive as i32),
            Code::InvalidArgument,
            "amount.currency: THB does not match the payee ledger e-aed, which issues AED",
        ),
        (
            Box::new(|r| r.payee = "e-usd/x".into()),
            Code::InvalidArgument,
            "payee: ledger `e-usd` is not on this network",
        ),
        (Box::new(|r| r.payee = payer.into()), Code::InvalidArgument, "payee: is the same account as the payer"),
        (Box::new(|r| r.fixed_side = 7), Code::InvalidArgument, "fixed_side: 7 is not a FixedSide"),
    ];
    for (edit, code, fragment) in cases {
        let mut bad = good();
        edit(&mut bad);
        assert_refused(quote(&mut fx, bad).await, code, fragment);
    }

    // Nothing changed: the rates, the price, and bank-th.errors made no payment.
    assert_eq!((rates(&mut fx, "HKD/THB").await.unwrap(), rates(&mut fx, "HKD/AED").await.unwrap()), book);
    let again = quote(&mut fx, good()).await.unwrap();
    assert_ne!(again.quote_id, priced.quote_id);
    assert_eq!(
        (&again.send_amount, &again.receive_amount, &again.total_debit, &again.fees, &again.hops),
        (&priced.send_amount, &priced.receive_amount, &priced.total_debit, &priced.fees, &priced.hops)
    );
    assert!(payments_of(&mut payments, "bank-th").await.iter().all(|payment| payment.payer != payer));
    assert_holds_exactly(&mut payments, "bank-th", payer, "e-thb/bank-th.sink", "THB", "20000.00").await;
}

/// Health and reflection know the FX service.
#[tokio::test]
async fn health_and_reflection_list_the_fx_service() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let server = MAIN.get();
    let channel = Channel::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "corridor.v1.FxService".into() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("not a service list: {response:?}");
    };
    let services: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    assert!(services.iter().any(|name| name == "corridor.v1.FxService"), "{services:?}");
    assert!(services.iter().any(|name| name == "corridor.v1.PaymentService"), "{services:?}");
}
