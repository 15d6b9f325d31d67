//! Drives compliance against the real `corridor` binary over real gRPC: sanctions screening of
//! originator and beneficiary names (hits, spelling variants, clean names), the travel rule, closed
//! corridors, the review queue of held payments (`corridor.v1.ComplianceReview`), the regulator feed
//! (`corridor.v1.ComplianceFeed`: completeness per jurisdiction, resumable and live subscriptions,
//! filtered queries, signed checkpoints), `corridor feed export` / `corridor feed verify` as
//! subprocesses (and every tamper they must catch), and the review timeout.
//!
//! Balances cannot be read over gRPC, so "nothing moved" is proven by paying: an account that must
//! still hold exactly X pays X (settles) and then one minor unit more (refused with nothing left).
//!
//! One server for everything but the review timeout (see [`Shared`]); each test uses its own payer
//! accounts and its own party names, so the tests do not depend on each other's payments, and the
//! feed checks that look at the whole feed only state what holds whatever runs beside them.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use corridor_compliance::feed::{
    Checkpoint, DecisionOutcome, FeedKind, FeedLine, FeedPublicKey, FeedRecord, parse_line, verify_checkpoint,
};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_feed_client::ComplianceFeedClient;
use corridor_schemas::wire::v1::compliance_review_client::ComplianceReviewClient;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use tonic::Code;
use tonic::transport::Channel;

/// The review timeout of the main server: an hour, so nothing it holds times out during a test.
const REVIEW_LONG: &str = "
[compliance]
review_timeout_ms = 3600000
";

/// The review timeout of the timeout test's server: 1.5 s.
const REVIEW_SHORT: &str = "
[compliance]
review_timeout_ms = 1500
";

/// Three ledgers (HK, CN, SG), a bank on each, one provider bridging CNY/HKD and one HKD/SGD.
/// HK and CN screen names against the built-in OFAC snapshot; HK applies the travel rule above
/// 8000.00 HKD; SG has closed payments coming from HK. No fees, so amounts are what is sent.
const NETWORK: &str = r#"
[fx]
rate_max_age_ms = 86400000
quote_ttl_ms = 30000
hop_limit = 3

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"

[[ledgers]]
id = "e-sgd"
currency = "SGD"
jurisdiction = "SG"

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [
  { address = "e-hkd/bank-hk.sanctions", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.travel", opening_balance = "30000.00" },
  { address = "e-hkd/bank-hk.corridor", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.review", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.feed", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.export", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.timeout", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.payee" },
  { address = "e-hkd/bank-hk.sink" },
]

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [
  { address = "e-cny/bank-cn.feed", opening_balance = "1000.00" },
  { address = "e-cny/bank-cn.payee" },
]

[[participants]]
id = "bank-sg"
role = "bank"
accounts = [
  { address = "e-sgd/bank-sg.corridor", opening_balance = "1000.00" },
  { address = "e-sgd/bank-sg.payee" },
]

[[participants]]
id = "lp-hc"
role = "liquidity_provider"
accounts = [
  { address = "e-hkd/lp-hc", opening_balance = "1000000.00" },
  { address = "e-cny/lp-hc", opening_balance = "1000000.00" },
]

[[participants]]
id = "lp-hs"
role = "liquidity_provider"
accounts = [
  { address = "e-hkd/lp-hs", opening_balance = "1000000.00" },
  { address = "e-sgd/lp-hs", opening_balance = "1000000.00" },
]

[[rates]]
provider = "lp-hc"
pair = "CNY/HKD"
bid = "1.0940"
ask = "1.0975"

[[rates]]
provider = "lp-hs"
pair = "HKD/SGD"
bid = "0.1700"
ask = "0.1710"

[sanctions]
jurisdictions = ["HK", "CN"]

[[travel_rules]]
jurisdiction = "HK"
currency = "HKD"
threshold = "8000.00"

[[corridor_rules]]
jurisdiction = "SG"
closed_from = ["HK"]

[[compliance_officers]]
id = "officer-hk"
jurisdiction = "HK"

[[compliance_officers]]
id = "officer-cn"
jurisdiction = "CN"

[[regulators]]
id = "regulator-hk"
jurisdiction = "HK"

[[regulators]]
id = "regulator-cn"
jurisdiction = "CN"

[[regulators]]
id = "regulator-sg"
jurisdiction = "SG"

[feed]
checkpoint_interval_ms = 200
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

/// Distinguishes the files of servers (and exports) this process makes.
static FILES_MADE: AtomicUsize = AtomicUsize::new(0);

fn temp_path(name: &str, suffix: &str) -> PathBuf {
    let run =
        format!("corridor-compliance-test-{name}-{}-{}", std::process::id(), FILES_MADE.fetch_add(1, Ordering::SeqCst));
    std::env::temp_dir().join(format!("{run}{suffix}"))
}

fn start_server(name: &str, review: &str) -> Server {
    let config = temp_path(name, ".toml");
    std::fs::write(&config, format!("{review}{NETWORK}")).unwrap();
    let data = temp_path(name, "-data");
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
    review: &'static str,
}

impl Shared {
    fn get(&self) -> Arc<Server> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(start_server(self.name, self.review));
        *slot = Arc::downgrade(&server);
        server
    }
}

static MAIN: Shared = Shared { slot: Mutex::new(Weak::new()), name: "main", review: REVIEW_LONG };

struct Clients {
    payments: PaymentServiceClient<Channel>,
    review: ComplianceReviewClient<Channel>,
    feed: ComplianceFeedClient<Channel>,
}

async fn connect(server: &Server) -> Clients {
    let channel = Channel::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    Clients {
        payments: PaymentServiceClient::new(channel.clone()),
        review: ComplianceReviewClient::new(channel.clone()),
        feed: ComplianceFeedClient::new(channel),
    }
}

fn money(currency: &str, amount: &str) -> Option<wire::Money> {
    Some(wire::Money { currency: currency.into(), amount: amount.into() })
}

/// A party with a name only.
fn named(name: &str) -> wire::Party {
    wire::Party { name: name.into(), ..wire::Party::default() }
}

/// A party with a name and a postal address: enough for the travel rule.
fn addressed(name: &str) -> wire::Party {
    wire::Party { address: "1 Queen's Road Central, Hong Kong".into(), country: "HK".into(), ..named(name) }
}

#[allow(clippy::too_many_arguments)]
fn instruction(
    participant: &str,
    key: &str,
    payer: &str,
    payee: &str,
    currency: &str,
    amount: &str,
    originator: Option<wire::Party>,
    beneficiary: Option<wire::Party>,
) -> wire::PaymentInstruction {
    wire::PaymentInstruction {
        participant_id: participant.into(),
        idempotency_key: key.into(),
        payer: payer.into(),
        payee: payee.into(),
        amount: money(currency, amount),
        fixed_side: wire::FixedSide::Send as i32,
        reference: "compliance test".into(),
        quote_id: String::new(),
        originator,
        beneficiary,
        signed_at: None,
        signature: Vec::new(),
    }
}

/// bank-hk pays `amount` HKD from `payer` with these parties.
fn from_hk(
    key: &str,
    payer: &str,
    payee: &str,
    amount: &str,
    originator: Option<wire::Party>,
    beneficiary: Option<wire::Party>,
) -> wire::PaymentInstruction {
    instruction("bank-hk", key, payer, payee, "HKD", amount, originator, beneficiary)
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

/// Every payment on the server (all pages), oldest first.
async fn all_payments(client: &mut PaymentServiceClient<Channel>) -> Vec<wire::Payment> {
    let mut payments = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_payments(wire::ListPaymentsRequest { participant_id: String::new(), page_size: 1000, page_token })
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

/// "SETTLED", "REJECTED", ...: the feed's name of the payment's status.
fn status_name(payment: &wire::Payment) -> &'static str {
    status_of(payment).as_str_name().strip_prefix("PAYMENT_STATUS_").unwrap()
}

fn reason_code(payment: &wire::Payment) -> &str {
    payment.reason.as_ref().map_or("", |reason| reason.code.as_str())
}

fn reason_message(payment: &wire::Payment) -> &str {
    payment.reason.as_ref().map_or("", |reason| reason.message.as_str())
}

fn leg_states(payment: &wire::Payment) -> Vec<(String, wire::LegState)> {
    payment.legs.iter().map(|leg| (leg.ledger_id.clone(), wire::LegState::try_from(leg.state).unwrap())).collect()
}

/// Asserts the payment has legs and every one of them is in `state`.
fn assert_legs(payment: &wire::Payment, state: wire::LegState) {
    let states = leg_states(payment);
    assert!(!states.is_empty() && states.iter().all(|(_, leg)| *leg == state), "{states:?} not all {state:?}");
}

/// (jurisdiction, hook, outcome, reason code, reason message) of every compliance decision.
fn decisions(payment: &wire::Payment) -> Vec<(String, String, wire::ComplianceOutcome, String, String)> {
    payment
        .compliance
        .iter()
        .map(|decision| {
            let reason = decision.reason.clone().unwrap_or_default();
            (
                decision.jurisdiction.clone(),
                decision.hook.clone(),
                wire::ComplianceOutcome::try_from(decision.outcome).unwrap(),
                reason.code,
                reason.message,
            )
        })
        .collect()
}

/// The one decision of `hook` in `jurisdiction`.
fn decision_of<'a>(payment: &'a wire::Payment, jurisdiction: &str, hook: &str) -> &'a wire::ComplianceDecision {
    let found: Vec<_> =
        payment.compliance.iter().filter(|d| d.jurisdiction == jurisdiction && d.hook == hook).collect();
    assert_eq!(found.len(), 1, "{jurisdiction} {hook} in {:?}", decisions(payment));
    found[0]
}

/// Asserts a sanctions denial by `jurisdiction` whose message names the entry, its number and a
/// score at or above the hit threshold (920/1000 by default).
fn assert_sanctions_hit(payment: &wire::Payment, jurisdiction: &str, finding: &str) {
    let decision = decision_of(payment, jurisdiction, "sanctions_screening");
    assert_eq!(decision.outcome, wire::ComplianceOutcome::Deny as i32, "{decision:?}");
    let reason = decision.reason.clone().unwrap();
    assert_eq!(reason.code, "SANCTIONS_HIT");
    assert!(reason.message.contains(finding), "`{}` lacks `{finding}`", reason.message);
    let score: u32 = reason.message.split("(score ").nth(1).unwrap().split('/').next().unwrap().parse().unwrap();
    assert!((920..=1000).contains(&score), "score {score} is not a hit: {}", reason.message);
}

fn assert_refused(result: Result<impl std::fmt::Debug, tonic::Status>, code: Code, fragment: &str) {
    let error = result.expect_err("expected a refusal");
    assert_eq!(error.code(), code, "{}", error.message());
    assert!(error.message().contains(fragment), "`{}` lacks `{fragment}`", error.message());
}

/// Proves `account` holds exactly `amount` HKD with nothing held on it: paying all of it settles,
/// and one minor unit more is refused with nothing available. (The parties satisfy the travel rule.)
async fn assert_holds_exactly(client: &mut PaymentServiceClient<Channel>, account: &str, amount: &str) {
    let (originator, beneficiary) = (Some(addressed("Chan Tai Man")), Some(named("Li Wei")));
    let key = format!("drain-{account}");
    let sink = "e-hkd/bank-hk.sink";
    let all = submit(client, from_hk(&key, account, sink, amount, originator.clone(), beneficiary.clone())).await;
    let all = all.unwrap();
    assert_eq!(status_of(&all), wire::PaymentStatus::Settled, "{account} does not hold {amount} HKD: {all:?}");
    let more = submit(client, from_hk(&format!("{key}-more"), account, sink, "0.01", originator, beneficiary)).await;
    let more = more.unwrap();
    assert_eq!(status_of(&more), wire::PaymentStatus::Rejected, "{account} held more than {amount} HKD");
    assert_eq!(reason_code(&more), "INSUFFICIENT_FUNDS");
    assert!(reason_message(&more).contains("has 0.00 HKD available"), "{}", reason_message(&more));
}

// ----- review -----

async fn held_for(
    review: &mut ComplianceReviewClient<Channel>,
    officer: &str,
) -> Result<Vec<wire::Payment>, tonic::Status> {
    let request = wire::ListHeldPaymentsRequest { officer_id: officer.into() };
    Ok(review.list_held_payments(request).await?.into_inner().payments)
}

/// The ids of the payments held for `officer`, oldest first.
async fn held_ids(review: &mut ComplianceReviewClient<Channel>, officer: &str) -> Vec<String> {
    held_for(review, officer).await.unwrap().into_iter().map(|payment| payment.payment_id).collect()
}

async fn decide(
    review: &mut ComplianceReviewClient<Channel>,
    officer: &str,
    payment: &str,
    verdict: wire::ReviewVerdict,
    note: &str,
) -> Result<wire::Payment, tonic::Status> {
    let request = wire::DecideHeldPaymentRequest {
        officer_id: officer.into(),
        payment_id: payment.into(),
        verdict: verdict as i32,
        note: note.into(),
    };
    Ok(review.decide_held_payment(request).await?.into_inner().payment.unwrap())
}

// ----- feed -----

fn parsed(record: &wire::FeedRecord) -> FeedRecord {
    match parse_line(1, &record.line).unwrap() {
        FeedLine::Record(parsed) => *parsed,
        FeedLine::Checkpoint(checkpoint) => panic!("a checkpoint as a record: {checkpoint:?}"),
    }
}

fn query(regulator: &str) -> wire::QueryFeedRequest {
    wire::QueryFeedRequest { regulator_id: regulator.into(), page_size: 1000, ..wire::QueryFeedRequest::default() }
}

/// Every record `request` matches (all pages), with the page sizes seen.
async fn query_all(
    feed: &mut ComplianceFeedClient<Channel>,
    mut request: wire::QueryFeedRequest,
) -> (Vec<wire::FeedRecord>, Vec<usize>) {
    let mut records = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = feed.query_feed(request.clone()).await.unwrap().into_inner();
        pages.push(page.records.len());
        if page.next_after_sequence != 0 {
            assert_eq!(Some(page.next_after_sequence), page.records.last().map(|r| r.sequence), "page token");
        }
        records.extend(page.records);
        if page.next_after_sequence == 0 {
            return (records, pages);
        }
        request.after_sequence = page.next_after_sequence;
    }
}

/// The newest sequence of `regulator`'s feed.
async fn head(feed: &mut ComplianceFeedClient<Channel>, regulator: &str) -> u64 {
    let request = wire::GetCheckpointRequest { regulator_id: regulator.into() };
    feed.get_checkpoint(request).await.unwrap().into_inner().head_sequence
}

/// The records 1..=`up_to` of `regulator`'s feed, read through Subscribe from sequence 1.
async fn subscribed(feed: &mut ComplianceFeedClient<Channel>, regulator: &str, up_to: u64) -> Vec<wire::FeedRecord> {
    let request = wire::SubscribeFeedRequest { regulator_id: regulator.into(), from_sequence: 1 };
    let mut stream = feed.subscribe(request).await.unwrap().into_inner();
    let mut records = Vec::new();
    while (records.len() as u64) < up_to {
        let record = tokio::time::timeout(Duration::from_secs(5), stream.message()).await.unwrap().unwrap().unwrap();
        records.push(record);
    }
    records
}

/// The records of `payment` in `regulator`'s feed: (kind, status, reason code, decisions as
/// (jurisdiction, hook, outcome, code)).
type Described = (FeedKind, Option<String>, Option<String>, Vec<(String, String, DecisionOutcome, Option<String>)>);

fn describe(record: &FeedRecord) -> Described {
    let entry = &record.entry;
    let decisions = entry
        .decisions
        .iter()
        .map(|d| (d.jurisdiction.to_string(), d.hook.clone(), d.outcome, d.code.clone()))
        .collect();
    (entry.kind, entry.status.clone(), entry.reason_code.clone(), decisions)
}

async fn records_of(feed: &mut ComplianceFeedClient<Channel>, regulator: &str, payment: &str) -> Vec<FeedRecord> {
    let (records, _) = query_all(feed, query(regulator)).await;
    records.iter().map(parsed).filter(|record| record.entry.payment_id == payment).collect()
}

/// Waits (up to 2 s) for a checkpoint of `regulator`'s feed covering at least `sequence`.
async fn checkpoint_covering(
    feed: &mut ComplianceFeedClient<Channel>,
    regulator: &str,
    sequence: u64,
) -> wire::GetCheckpointResponse {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let request = wire::GetCheckpointRequest { regulator_id: regulator.into() };
        let response = feed.get_checkpoint(request).await.unwrap().into_inner();
        if response.checkpoint.as_ref().is_some_and(|checkpoint| checkpoint.sequence >= sequence) {
            return response;
        }
        assert!(Instant::now() < deadline, "no checkpoint of {regulator} covers {sequence}: {response:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn touches(payment: &wire::Payment, ledger: &str) -> bool {
    let prefix = format!("{ledger}/");
    payment.route.iter().any(|on| on == ledger)
        || payment.payer.starts_with(&prefix)
        || payment.payee.starts_with(&prefix)
}

fn entry_touches(record: &FeedRecord, ledger: &str) -> bool {
    let entry = &record.entry;
    let prefix = format!("{ledger}/");
    entry.route.iter().any(|on| on == ledger) || entry.payer.starts_with(&prefix) || entry.payee.starts_with(&prefix)
}

/// Sanctioned names are rejected (`SANCTIONS_HIT`) before any money is held, the receipt naming
/// the SDN entry and the score; a spelling variant is caught; on a cross-border route both
/// screening jurisdictions deny; a clean name settles; nothing moved for the rejected ones.
#[tokio::test]
async fn sanctioned_names_are_rejected_and_clean_names_settle() {
    let server = MAIN.get();
    let mut clients = connect(&server).await;
    let payments = &mut clients.payments;
    let payer = "e-hkd/bank-hk.sanctions";
    let payee = "e-hkd/bank-hk.payee";

    // A sanctioned beneficiary, HK domestic.
    let hit = submit(
        payments,
        from_hk(
            "sanctions-1",
            payer,
            payee,
            "100.00",
            Some(named("Chan Tai Man")),
            Some(named("Walter Escobar Buitrago")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&hit), wire::PaymentStatus::Rejected, "{hit:?}");
    assert_eq!(reason_code(&hit), "SANCTIONS_HIT");
    assert!(
        reason_message(&hit)
            .starts_with("HK sanctions_screening: beneficiary \"Walter Escobar Buitrago\" matches SDN entry 4319"),
        "{}",
        reason_message(&hit)
    );
    assert_sanctions_hit(&hit, "HK", "beneficiary \"Walter Escobar Buitrago\" matches SDN entry 4319");
    assert_eq!(decision_of(&hit, "HK", "travel_rule").outcome, wire::ComplianceOutcome::Allow as i32);
    assert!(hit.compliance.iter().all(|decision| decision.jurisdiction == "HK"), "{:?}", decisions(&hit));
    assert_legs(&hit, wire::LegState::NotSent);
    assert_eq!(get_payment(payments, &hit.payment_id).await, hit, "the stored receipt is what was answered");

    // A sanctioned originator on HK -> CN: both screening jurisdictions deny; HK's decision comes first.
    let cross = submit(
        payments,
        from_hk(
            "sanctions-2",
            payer,
            "e-cny/bank-cn.payee",
            "100.00",
            Some(named("Mazen Ali Hussein")),
            Some(named("Li Wei")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&cross), wire::PaymentStatus::Rejected, "{cross:?}");
    assert_eq!(reason_code(&cross), "SANCTIONS_HIT");
    assert!(reason_message(&cross).starts_with("HK sanctions_screening: originator"), "{}", reason_message(&cross));
    assert_eq!(cross.route, ["e-hkd", "e-cny"]);
    assert_sanctions_hit(&cross, "HK", "originator \"Mazen Ali Hussein\" matches SDN entry 9587");
    assert_sanctions_hit(&cross, "CN", "originator \"Mazen Ali Hussein\" matches SDN entry 9587");
    assert_legs(&cross, wire::LegState::NotSent);

    // A spelling variant of "MELGOZA TORRES, Martin".
    let variant = submit(
        payments,
        from_hk(
            "sanctions-3",
            payer,
            payee,
            "100.00",
            Some(named("Chan Tai Man")),
            Some(named("Martin Melgosa Torres")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&variant), wire::PaymentStatus::Rejected, "{variant:?}");
    assert_eq!(reason_code(&variant), "SANCTIONS_HIT");
    assert_sanctions_hit(&variant, "HK", "beneficiary \"Martin Melgosa Torres\" matches SDN entry 9388");
    assert_legs(&variant, wire::LegState::NotSent);

    // Clean names settle, with the screening's ALLOW in the receipt.
    let clean = submit(
        payments,
        from_hk("sanctions-4", payer, payee, "100.00", Some(named("Chan Tai Man")), Some(named("Li Wei"))),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&clean), wire::PaymentStatus::Settled, "{clean:?}");
    assert_legs(&clean, wire::LegState::Committed);
    let allowed = decision_of(&clean, "HK", "sanctions_screening");
    assert_eq!(allowed.outcome, wire::ComplianceOutcome::Allow as i32, "{allowed:?}");

    // A retry of the rejected key is the same rejected payment, not a second screening.
    let again = submit(
        payments,
        from_hk(
            "sanctions-1",
            payer,
            payee,
            "100.00",
            Some(named("Chan Tai Man")),
            Some(named("Walter Escobar Buitrago")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(again, hit);

    // Only the clean payment moved money.
    assert_holds_exactly(payments, payer, "900.00").await;
}

/// Above 8000.00 HKD, HK requires the originator's name and address (or national id, or date and
/// place of birth) and the beneficiary's name: missing data rejects the payment naming every
/// missing field; at the threshold nothing is required; with the data it settles.
#[tokio::test]
async fn the_travel_rule_names_the_missing_originator_data() {
    let server = MAIN.get();
    let mut clients = connect(&server).await;
    let payments = &mut clients.payments;
    let payer = "e-hkd/bank-hk.travel";
    let payee = "e-hkd/bank-hk.payee";

    let missing = "originator.address or national_id or date_of_birth and place_of_birth";
    let cases: Vec<(&str, Option<wire::Party>, Option<wire::Party>, String)> = vec![
        ("travel-none", None, None, format!("missing: originator.name, {missing}, beneficiary.name")),
        ("travel-names", Some(named("Chan Tai Man")), Some(named("Li Wei")), format!("missing: {missing}")),
        (
            "travel-half-born",
            Some(wire::Party { date_of_birth: "1980-02-29".into(), ..named("Chan Tai Man") }),
            Some(named("Li Wei")),
            format!("missing: {missing}"),
        ),
        ("travel-no-beneficiary", Some(addressed("Chan Tai Man")), None, "missing: beneficiary.name".to_owned()),
    ];
    for (key, originator, beneficiary, fragment) in cases {
        let refused = submit(payments, from_hk(key, payer, payee, "9000.00", originator, beneficiary)).await.unwrap();
        assert_eq!(status_of(&refused), wire::PaymentStatus::Rejected, "{key}: {refused:?}");
        assert_eq!(reason_code(&refused), "TRAVEL_RULE_DATA_MISSING", "{key}");
        let message = reason_message(&refused);
        assert!(
            message.starts_with("HK travel_rule: HK requires originator and beneficiary data above 8000.00 HKD;"),
            "{key}: {message}"
        );
        assert!(message.ends_with(&fragment), "{key}: `{message}` does not end with `{fragment}`");
        let decision = decision_of(&refused, "HK", "travel_rule");
        assert_eq!(decision.outcome, wire::ComplianceOutcome::Deny as i32, "{key}: {decision:?}");
        assert_eq!(decision.reason.as_ref().unwrap().code, "TRAVEL_RULE_DATA_MISSING");
        assert_legs(&refused, wire::LegState::NotSent);
    }

    // At the threshold the rule does not apply.
    let at = submit(payments, from_hk("travel-at", payer, payee, "8000.00", None, None)).await.unwrap();
    assert_eq!(status_of(&at), wire::PaymentStatus::Settled, "{at:?}");
    // An address, a national id, or a date and place of birth each satisfies it.
    let by_address = submit(
        payments,
        from_hk("travel-address", payer, payee, "9000.00", Some(addressed("Chan Tai Man")), Some(named("Li Wei"))),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&by_address), wire::PaymentStatus::Settled, "{by_address:?}");
    assert_eq!(decision_of(&by_address, "HK", "travel_rule").outcome, wire::ComplianceOutcome::Allow as i32);
    let born =
        wire::Party { date_of_birth: "1980-02-29".into(), place_of_birth: "Kowloon".into(), ..named("Chan Tai Man") };
    let by_birth = submit(payments, from_hk("travel-born", payer, payee, "9000.00", Some(born), Some(named("Li Wei"))))
        .await
        .unwrap();
    assert_eq!(status_of(&by_birth), wire::PaymentStatus::Settled, "{by_birth:?}");

    // 30000.00 - 8000.00 - 9000.00 - 9000.00: the rejected payments moved nothing.
    assert_holds_exactly(payments, payer, "4000.00").await;
}

/// SG has closed payments coming from HK: HK -> SG is rejected (`CORRIDOR_CLOSED`) by SG's hook
/// before any money is held; SG -> HK is open.
#[tokio::test]
async fn a_closed_corridor_rejects_hk_to_sg_only() {
    let server = MAIN.get();
    let mut clients = connect(&server).await;
    let payments = &mut clients.payments;
    let payer = "e-hkd/bank-hk.corridor";

    let closed = submit(
        payments,
        from_hk(
            "corridor-1",
            payer,
            "e-sgd/bank-sg.payee",
            "100.00",
            Some(named("Chan Tai Man")),
            Some(named("Li Wei")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&closed), wire::PaymentStatus::Rejected, "{closed:?}");
    assert_eq!(reason_code(&closed), "CORRIDOR_CLOSED");
    assert_eq!(reason_message(&closed), "SG corridor_rule: SG has closed payments from HK");
    assert_eq!(closed.route, ["e-hkd", "e-sgd"]);
    let decision = decision_of(&closed, "SG", "corridor_rule");
    assert_eq!(decision.outcome, wire::ComplianceOutcome::Deny as i32, "{decision:?}");
    assert_eq!(decision.reason.as_ref().unwrap().code, "CORRIDOR_CLOSED");
    assert_legs(&closed, wire::LegState::NotSent);

    // The other direction is open.
    let open = submit(
        payments,
        instruction(
            "bank-sg",
            "corridor-2",
            "e-sgd/bank-sg.corridor",
            "e-hkd/bank-hk.payee",
            "SGD",
            "100.00",
            Some(named("Tan Ah Kow")),
            Some(named("Chan Tai Man")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&open), wire::PaymentStatus::Settled, "{open:?}");
    assert_eq!(open.route, ["e-sgd", "e-hkd"]);
    assert_eq!(decision_of(&open, "SG", "corridor_rule").outcome, wire::ComplianceOutcome::Allow as i32);

    assert_holds_exactly(payments, payer, "1000.00").await;
}

/// The review queue over gRPC: a possible hit is held (nothing on any ledger); officers list and
/// decide only what waits for their jurisdiction; every refusal has its code and reason and
/// changes nothing; approval settles (after every holding jurisdiction approved), rejection
/// rejects, a decided payment takes no second decision, and the receipt keeps every decision.
#[tokio::test]
async fn officers_review_held_payments() {
    let server = MAIN.get();
    let mut clients = connect(&server).await;
    let (payments, review, feed) = (&mut clients.payments, &mut clients.review, &mut clients.feed);
    let payer = "e-hkd/bank-hk.review";
    let payee = "e-hkd/bank-hk.payee";

    // HK domestic, possible hit: held by HK only.
    let held = submit(
        payments,
        from_hk("review-1", payer, payee, "100.00", Some(named("Chan Tai Man")), Some(named("Viktor Bout"))),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&held), wire::PaymentStatus::Held, "{held:?}");
    assert_eq!(reason_code(&held), "HELD_FOR_REVIEW");
    assert!(
        reason_message(&held)
            .starts_with("HK sanctions_screening: beneficiary \"Viktor Bout\" possibly matches SDN entry"),
        "{}",
        reason_message(&held)
    );
    let hold = decision_of(&held, "HK", "sanctions_screening");
    assert_eq!(hold.outcome, wire::ComplianceOutcome::Hold as i32, "{hold:?}");
    assert_eq!(hold.reason.as_ref().unwrap().code, "SANCTIONS_POSSIBLE_MATCH");
    assert_legs(&held, wire::LegState::NotSent);

    // HK -> CN, possible hit: held by both.
    let both = submit(
        payments,
        from_hk(
            "review-2",
            payer,
            "e-cny/bank-cn.payee",
            "100.00",
            Some(named("Fernando Maldonado")),
            Some(named("Li Wei")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&both), wire::PaymentStatus::Held, "{both:?}");
    for jurisdiction in ["HK", "CN"] {
        let decision = decision_of(&both, jurisdiction, "sanctions_screening");
        assert_eq!(decision.outcome, wire::ComplianceOutcome::Hold as i32, "{decision:?}");
        assert_eq!(decision.reason.as_ref().unwrap().code, "SANCTIONS_POSSIBLE_MATCH");
    }

    // A retry of a held payment's key answers with the held payment; nothing is screened again.
    let retried = submit(
        payments,
        from_hk("review-1", payer, payee, "100.00", Some(named("Chan Tai Man")), Some(named("Viktor Bout"))),
    )
    .await
    .unwrap();
    assert_eq!(retried, held);

    // A third, HK only, to be rejected.
    let doomed = submit(
        payments,
        from_hk("review-3", payer, payee, "100.00", Some(named("Viktor Bout")), Some(named("Li Wei"))),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&doomed), wire::PaymentStatus::Held, "{doomed:?}");

    // Who sees what, oldest first.
    let mine = [&held.payment_id, &both.payment_id, &doomed.payment_id];
    let listed = |ids: Vec<String>| ids.into_iter().filter(|id| mine.contains(&id)).collect::<Vec<_>>();
    assert_eq!(
        listed(held_ids(review, "officer-hk").await),
        [held.payment_id.clone(), both.payment_id.clone(), doomed.payment_id.clone()]
    );
    assert_eq!(listed(held_ids(review, "officer-cn").await), std::slice::from_ref(&both.payment_id));
    let listed_held = held_for(review, "officer-hk").await.unwrap();
    assert_eq!(listed_held.iter().find(|p| p.payment_id == held.payment_id), Some(&held), "the listing is the receipt");

    // Refusals: each with its code and reason; none changes the payment, the queue or the feed.
    let before = (
        get_payment(payments, &held.payment_id).await,
        records_of(feed, "regulator-hk", &held.payment_id).await,
        held_ids(review, "officer-hk").await,
    );
    assert_refused(
        held_for(review, "officer-zz").await,
        Code::PermissionDenied,
        "`officer-zz` is not a compliance officer",
    );
    assert_refused(
        held_for(review, "regulator-hk").await,
        Code::PermissionDenied,
        "`regulator-hk` is not a compliance officer",
    );
    assert_refused(held_for(review, "").await, Code::InvalidArgument, "officer_id");
    let approve = wire::ReviewVerdict::Approve;
    assert_refused(
        decide(review, "officer-cn", &held.payment_id, approve, "").await,
        Code::PermissionDenied,
        &format!("payment {} is not waiting for CN's review (waiting for: HK)", held.payment_id),
    );
    assert_refused(
        decide(review, "officer-zz", &held.payment_id, approve, "").await,
        Code::PermissionDenied,
        "`officer-zz` is not a compliance officer",
    );
    assert_refused(
        decide(review, "officer-hk", &held.payment_id, wire::ReviewVerdict::Unspecified, "").await,
        Code::InvalidArgument,
        "verdict: must be REVIEW_VERDICT_APPROVE or REVIEW_VERDICT_REJECT",
    );
    let mut unknown_verdict = wire::DecideHeldPaymentRequest {
        officer_id: "officer-hk".into(),
        payment_id: held.payment_id.clone(),
        verdict: 7,
        note: String::new(),
    };
    assert_refused(review.decide_held_payment(unknown_verdict.clone()).await, Code::InvalidArgument, "verdict");
    unknown_verdict.verdict = approve as i32;
    unknown_verdict.note = "x".repeat(501);
    assert_refused(
        review.decide_held_payment(unknown_verdict.clone()).await,
        Code::InvalidArgument,
        "note: at most 500",
    );
    unknown_verdict.note = "line\nbreak".into();
    assert_refused(review.decide_held_payment(unknown_verdict).await, Code::InvalidArgument, "note");
    assert_refused(decide(review, "officer-hk", "not-an-id", approve, "").await, Code::InvalidArgument, "payment_id");
    assert_refused(
        decide(review, "officer-hk", "01890a5d-ac96-774b-bcce-b302099a8057", approve, "").await,
        Code::NotFound,
        "no payment with id 01890a5d-ac96-774b-bcce-b302099a8057",
    );
    let after = (
        get_payment(payments, &held.payment_id).await,
        records_of(feed, "regulator-hk", &held.payment_id).await,
        held_ids(review, "officer-hk").await,
    );
    assert_eq!(after.0, before.0, "a refused decision changed the payment");
    assert_eq!(after.1, before.1, "a refused decision reached the feed");
    assert_eq!(listed(after.2), listed(before.2), "a refused decision changed the queue");

    // Approval of an HK-only hold settles it.
    let approved = decide(review, "officer-hk", &held.payment_id, approve, "name differs in birth year").await.unwrap();
    assert_eq!(status_of(&approved), wire::PaymentStatus::Settled, "{approved:?}");
    assert_eq!(approved.reason, None, "{approved:?}");
    assert_legs(&approved, wire::LegState::Committed);
    let by_officer = decision_of(&approved, "HK", "compliance_review");
    assert_eq!(by_officer.outcome, wire::ComplianceOutcome::Allow as i32);
    assert_eq!(
        by_officer.reason,
        Some(wire::Reason { code: "REVIEW_APPROVED".into(), message: "officer-hk: name differs in birth year".into() })
    );
    assert_eq!(decision_of(&approved, "HK", "sanctions_screening"), hold, "the hook's hold stays on record");
    assert_eq!(get_payment(payments, &held.payment_id).await, approved);
    // A second decision on a decided payment.
    let settled = approved.clone();
    for verdict in [approve, wire::ReviewVerdict::Reject] {
        assert_refused(
            decide(review, "officer-hk", &held.payment_id, verdict, "").await,
            Code::FailedPrecondition,
            "not held for review",
        );
    }
    assert_eq!(get_payment(payments, &held.payment_id).await, settled, "a second decision changed the payment");

    // HK -> CN: HK's approval leaves it held for CN; CN's settles it.
    let half = decide(review, "officer-hk", &both.payment_id, approve, "").await.unwrap();
    assert_eq!(status_of(&half), wire::PaymentStatus::Held, "{half:?}");
    assert_legs(&half, wire::LegState::NotSent);
    assert_eq!(decision_of(&half, "HK", "compliance_review").reason.as_ref().unwrap().message, "officer-hk");
    assert_eq!(get_payment(payments, &both.payment_id).await, half);
    assert!(!held_ids(review, "officer-hk").await.contains(&both.payment_id), "HK has decided it");
    assert!(held_ids(review, "officer-cn").await.contains(&both.payment_id), "CN has not");
    assert_refused(
        decide(review, "officer-hk", &both.payment_id, approve, "").await,
        Code::PermissionDenied,
        "is not waiting for HK's review (waiting for: CN)",
    );
    assert_eq!(get_payment(payments, &both.payment_id).await, half, "a refused decision changed the payment");
    let whole = decide(review, "officer-cn", &both.payment_id, approve, "ok").await.unwrap();
    assert_eq!(status_of(&whole), wire::PaymentStatus::Settled, "{whole:?}");
    assert_eq!(whole.route, ["e-hkd", "e-cny"]);
    assert_legs(&whole, wire::LegState::Committed);
    let reviews: Vec<_> = decisions(&whole).into_iter().filter(|d| d.1 == "compliance_review").collect();
    assert_eq!(
        reviews,
        [
            (
                "HK".into(),
                "compliance_review".into(),
                wire::ComplianceOutcome::Allow,
                "REVIEW_APPROVED".into(),
                "officer-hk".into()
            ),
            (
                "CN".into(),
                "compliance_review".into(),
                wire::ComplianceOutcome::Allow,
                "REVIEW_APPROVED".into(),
                "officer-cn: ok".into()
            ),
        ]
    );
    assert!(!held_ids(review, "officer-cn").await.contains(&both.payment_id));

    // Rejection.
    let rejected =
        decide(review, "officer-hk", &doomed.payment_id, wire::ReviewVerdict::Reject, "confirmed match").await.unwrap();
    assert_eq!(status_of(&rejected), wire::PaymentStatus::Rejected, "{rejected:?}");
    assert_eq!(reason_code(&rejected), "REVIEW_REJECTED");
    assert_eq!(reason_message(&rejected), "HK compliance review rejected it (officer-hk: confirmed match)");
    assert_legs(&rejected, wire::LegState::NotSent);
    let stored = get_payment(payments, &doomed.payment_id).await;
    assert_eq!(stored, rejected);
    let by_officer = decision_of(&stored, "HK", "compliance_review");
    assert_eq!(by_officer.outcome, wire::ComplianceOutcome::Deny as i32);
    assert_eq!(by_officer.reason.as_ref().unwrap().code, "REVIEW_REJECTED");
    assert_refused(
        decide(review, "officer-hk", &doomed.payment_id, approve, "").await,
        Code::FailedPrecondition,
        "not held for review",
    );
    assert_eq!(get_payment(payments, &doomed.payment_id).await, rejected);
    assert!(listed(held_ids(review, "officer-hk").await).is_empty(), "nothing of this test waits any more");

    // The feed has the officers' decisions (HK's only in HK's feed) and the outcomes.
    let in_hk: Vec<Described> = records_of(feed, "regulator-hk", &both.payment_id).await.iter().map(describe).collect();
    let in_cn: Vec<Described> = records_of(feed, "regulator-cn", &both.payment_id).await.iter().map(describe).collect();
    let review_of = |j: &str| {
        (j.to_owned(), "compliance_review".to_owned(), DecisionOutcome::Allow, Some("REVIEW_APPROVED".to_owned()))
    };
    let hold_of = |j: &str| {
        (
            j.to_owned(),
            "sanctions_screening".to_owned(),
            DecisionOutcome::Hold,
            Some("SANCTIONS_POSSIBLE_MATCH".to_owned()),
        )
    };
    for (records, own) in [(&in_hk, "HK"), (&in_cn, "CN")] {
        let kinds: Vec<FeedKind> = records.iter().map(|r| r.0).collect();
        assert_eq!(
            kinds,
            [FeedKind::Screening, FeedKind::Screening, FeedKind::Screening, FeedKind::Outcome],
            "{own}: {records:?}"
        );
        assert!(records.iter().all(|r| r.3.iter().all(|d| d.0 == own)), "{own} sees another's decisions: {records:?}");
        assert!(records[0].3.contains(&hold_of(own)), "{records:?}");
        assert!(records[3].3.contains(&review_of(own)), "{records:?}");
        assert_eq!((records[3].1.as_deref(), records[3].2.as_deref()), (Some("SETTLED"), None));
    }
    let doomed_in_hk: Vec<Described> =
        records_of(feed, "regulator-hk", &doomed.payment_id).await.iter().map(describe).collect();
    let last = doomed_in_hk.last().unwrap();
    assert_eq!(
        (last.0, last.1.as_deref(), last.2.as_deref()),
        (FeedKind::Outcome, Some("REJECTED"), Some("REVIEW_REJECTED"))
    );

    // 1000.00 - 100.00 (HK) - 100.00 (HK -> CN): the rejected one moved nothing.
    assert_holds_exactly(payments, payer, "800.00").await;
}

/// The regulator feed over gRPC: completeness (every final payment touching HK has its OUTCOME
/// and SCREENING records in HK's feed, nothing else is there), each regulator sees its own
/// jurisdiction's decisions only, Subscribe resumes from any sequence and is live, QueryFeed
/// filters and pages exactly, GetCheckpoint returns a verifiable signed checkpoint; every refusal
/// has its code and reason.
#[tokio::test]
async fn regulators_read_their_own_jurisdictions_feed() {
    let server = MAIN.get();
    let mut clients = connect(&server).await;
    let (payments, feed) = (&mut clients.payments, &mut clients.feed);
    let payer = "e-hkd/bank-hk.feed";
    let payee = "e-hkd/bank-hk.payee";
    // Only this test's payments carry this originator.
    let ours = || Some(named("Ho Kit Ling"));

    // A mix: settled HK, sanctioned HK -> CN, held HK, settled CN domestic.
    let settled =
        submit(payments, from_hk("feed-1", payer, payee, "150.00", ours(), Some(named("Chan Tai Man")))).await.unwrap();
    assert_eq!(status_of(&settled), wire::PaymentStatus::Settled, "{settled:?}");
    let sanctioned = submit(
        payments,
        from_hk("feed-2", payer, "e-cny/bank-cn.payee", "120.00", ours(), Some(named("Walter Escobar Buitrago"))),
    )
    .await
    .unwrap();
    assert_eq!((status_of(&sanctioned), reason_code(&sanctioned)), (wire::PaymentStatus::Rejected, "SANCTIONS_HIT"));
    let held = submit(payments, from_hk("feed-3", payer, payee, "200.00", ours(), Some(named("Fernando Maldonado"))))
        .await
        .unwrap();
    assert_eq!(status_of(&held), wire::PaymentStatus::Held, "{held:?}");
    let domestic_cn = submit(
        payments,
        instruction(
            "bank-cn",
            "feed-4",
            "e-cny/bank-cn.feed",
            "e-cny/bank-cn.payee",
            "CNY",
            "80.00",
            ours(),
            Some(named("Li Wei")),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&domestic_cn), wire::PaymentStatus::Settled, "{domestic_cn:?}");

    // Completeness, from a snapshot: every payment listed now is in the feed read after it.
    let listed = all_payments(payments).await;
    let hk_head = head(feed, "regulator-hk").await;
    let cn_head = head(feed, "regulator-cn").await;
    let hk_wire = subscribed(feed, "regulator-hk", hk_head).await;
    let cn_wire = subscribed(feed, "regulator-cn", cn_head).await;
    let hk: Vec<FeedRecord> = hk_wire.iter().map(parsed).collect();
    let cn: Vec<FeedRecord> = cn_wire.iter().map(parsed).collect();
    for (sequence, (record, line)) in hk.iter().zip(&hk_wire).enumerate() {
        assert_eq!(record.sequence, sequence as u64 + 1, "Subscribe from 1 skipped or repeated a record");
        assert_eq!(record.jurisdiction.as_str(), "HK");
        assert_eq!(
            (line.sequence, &line.payment_id, line.hash.clone()),
            (record.sequence, &record.entry.payment_id, record.hash.to_string())
        );
        assert_eq!(line.kind, record.entry.kind.as_str());
        assert_eq!(line.status, record.entry.status.clone().unwrap_or_default());
        assert!(entry_touches(record, "e-hkd"), "a payment not touching HK in HK's feed: {:?}", record.entry);
        assert!(record.entry.decisions.iter().all(|d| d.jurisdiction.as_str() == "HK"), "{:?}", record.entry.decisions);
    }
    for record in &cn {
        assert!(entry_touches(record, "e-cny"), "{:?}", record.entry);
        assert!(record.entry.decisions.iter().all(|d| d.jurisdiction.as_str() == "CN"), "{:?}", record.entry.decisions);
    }
    let mut by_payment: BTreeMap<&str, Vec<&FeedRecord>> = BTreeMap::new();
    for record in &hk {
        by_payment.entry(record.entry.payment_id.as_str()).or_default().push(record);
    }
    let mut checked = 0;
    for payment in &listed {
        let records = by_payment.get(payment.payment_id.as_str()).cloned().unwrap_or_default();
        if !touches(payment, "e-hkd") {
            assert!(records.is_empty(), "payment {} does not touch HK but is in its feed", payment.payment_id);
            continue;
        }
        let screenings = records.iter().filter(|r| r.entry.kind == FeedKind::Screening).count();
        let outcomes: Vec<_> = records.iter().filter(|r| r.entry.kind == FeedKind::Outcome).collect();
        match status_of(payment) {
            wire::PaymentStatus::Settled | wire::PaymentStatus::Rejected | wire::PaymentStatus::Failed => {
                assert_eq!(outcomes.len(), 1, "payment {}: {records:?}", payment.payment_id);
                assert!(screenings >= 1, "payment {} has no SCREENING record", payment.payment_id);
                let outcome = &outcomes[0].entry;
                assert_eq!(outcome.status.as_deref(), Some(status_name(payment)), "{}", payment.payment_id);
                assert_eq!(outcome.reason_code.as_deref(), payment.reason.as_ref().map(|r| r.code.as_str()));
                assert_eq!(outcome.route, payment.route);
                checked += 1;
            }
            // Held: screened; it may have been decided since the listing.
            wire::PaymentStatus::Held => {
                assert!(screenings >= 1, "held payment {} is not in the feed", payment.payment_id)
            }
            _ => {}
        }
    }
    assert!(checked >= 2, "only {checked} final payments touching HK");

    // This test's payments, exactly.
    let describe_in = |records: &[FeedRecord], payment: &str| -> Vec<Described> {
        records.iter().filter(|r| r.entry.payment_id == payment).map(describe).collect()
    };
    let sanctions = |j: &str| (j.to_owned(), "sanctions_screening".to_owned());
    let in_hk = describe_in(&hk, &sanctioned.payment_id);
    assert_eq!(in_hk.iter().map(|r| r.0).collect::<Vec<_>>(), [FeedKind::Screening, FeedKind::Outcome]);
    assert_eq!((in_hk[1].1.as_deref(), in_hk[1].2.as_deref()), (Some("REJECTED"), Some("SANCTIONS_HIT")));
    assert_eq!((in_hk[0].1.as_deref(), in_hk[0].2.as_deref()), (None, None), "a SCREENING record has no status");
    let hk_deny = in_hk[0].3.iter().find(|d| (d.0.clone(), d.1.clone()) == sanctions("HK")).unwrap();
    assert_eq!((hk_deny.2, hk_deny.3.as_deref()), (DecisionOutcome::Deny, Some("SANCTIONS_HIT")));
    let in_cn = describe_in(&cn, &sanctioned.payment_id);
    assert_eq!(in_cn.len(), 2, "{in_cn:?}");
    assert!(in_cn[0].3.iter().any(|d| (d.0.clone(), d.1.clone()) == sanctions("CN")), "{in_cn:?}");
    assert_eq!(describe_in(&hk, &held.payment_id).iter().map(|r| r.0).collect::<Vec<_>>(), [FeedKind::Screening]);
    assert!(describe_in(&hk, &domestic_cn.payment_id).is_empty(), "a CN-domestic payment in HK's feed");
    assert_eq!(
        describe_in(&cn, &domestic_cn.payment_id).iter().map(|r| r.0).collect::<Vec<_>>(),
        [FeedKind::Screening, FeedKind::Outcome]
    );
    assert!(describe_in(&cn, &settled.payment_id).is_empty(), "an HK-domestic payment in CN's feed");
    let sg_records: Vec<FeedRecord> = query_all(feed, query("regulator-sg")).await.0.iter().map(parsed).collect();
    assert!(sg_records.iter().all(|r| entry_touches(r, "e-sgd")), "{sg_records:?}");
    assert!(describe_in(&sg_records, &settled.payment_id).is_empty());

    // From 0 is from the beginning.
    let request = wire::SubscribeFeedRequest { regulator_id: "regulator-hk".into(), from_sequence: 0 };
    let mut from_zero = feed.subscribe(request).await.unwrap().into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), from_zero.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first, hk_wire[0]);
    drop(from_zero);

    // Subscribe resumes at the sequence asked for.
    let resume_at = hk.iter().find(|r| r.entry.payment_id == held.payment_id).unwrap().sequence;
    let request = wire::SubscribeFeedRequest { regulator_id: "regulator-hk".into(), from_sequence: resume_at };
    let mut resumed = feed.subscribe(request).await.unwrap().into_inner();
    for expected in &hk_wire[usize::try_from(resume_at).unwrap() - 1..] {
        let record = tokio::time::timeout(Duration::from_secs(5), resumed.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(&record, expected);
    }
    drop(resumed);

    // Subscribe is live: records appended after the subscription arrive on the open stream.
    let live_from = head(feed, "regulator-hk").await + 1;
    let request = wire::SubscribeFeedRequest { regulator_id: "regulator-hk".into(), from_sequence: live_from };
    let mut live = feed.subscribe(request).await.unwrap().into_inner();
    let started = Instant::now();
    let late =
        submit(payments, from_hk("feed-5", payer, payee, "50.00", ours(), Some(named("Chan Tai Man")))).await.unwrap();
    assert_eq!(status_of(&late), wire::PaymentStatus::Settled, "{late:?}");
    let mut seen = Vec::new();
    let mut next = live_from;
    while seen.len() < 2 {
        let record = tokio::time::timeout(Duration::from_secs(3), live.message()).await.unwrap().unwrap().unwrap();
        assert_eq!(record.sequence, next, "the live stream skipped or repeated a record");
        next += 1;
        if record.payment_id == late.payment_id {
            seen.push((record.kind.clone(), record.status.clone()));
        }
    }
    assert_eq!(seen, [("SCREENING".to_owned(), String::new()), ("OUTCOME".to_owned(), "SETTLED".to_owned())]);
    assert!(started.elapsed() < Duration::from_secs(3), "live records took {:?}", started.elapsed());
    drop(live);

    // QueryFeed: exactly the records each filter matches, compared with the whole feed read at once.
    let snapshot_head = head(feed, "regulator-hk").await;
    let (whole, _) = query_all(feed, query("regulator-hk")).await;
    let whole: Vec<FeedRecord> = whole.iter().map(parsed).filter(|r| r.sequence <= snapshot_head).collect();
    assert_eq!(whole.len() as u64, snapshot_head);
    let matching = |filter: &dyn Fn(&FeedRecord) -> bool| -> Vec<u64> {
        whole.iter().filter(|r| filter(r)).map(|r| r.sequence).collect()
    };
    let served = |records: Vec<wire::FeedRecord>| -> Vec<u64> {
        records.iter().map(|r| r.sequence).filter(|s| *s <= snapshot_head).collect()
    };
    let rejected = wire::QueryFeedRequest { status: "REJECTED".into(), ..query("regulator-hk") };
    let expected = matching(&|r| r.entry.status.as_deref() == Some("REJECTED"));
    assert!(!expected.is_empty());
    assert_eq!(served(query_all(feed, rejected.clone()).await.0), expected, "status REJECTED");
    let settled_filter = wire::QueryFeedRequest { status: "SETTLED".into(), ..query("regulator-hk") };
    assert_eq!(
        served(query_all(feed, settled_filter).await.0),
        matching(&|r| r.entry.status.as_deref() == Some("SETTLED")),
        "status SETTLED"
    );
    // The party filter: case-insensitive substring of any party; only this test's payments match.
    let party = wire::QueryFeedRequest { party: "kIT lI".into(), ..query("regulator-hk") };
    let by_party: Vec<(String, String)> =
        query_all(feed, party.clone()).await.0.iter().map(|r| (r.payment_id.clone(), r.kind.clone())).collect();
    let pair = |payment: &wire::Payment, kind: &str| (payment.payment_id.clone(), kind.to_owned());
    assert_eq!(
        by_party,
        [
            pair(&settled, "SCREENING"),
            pair(&settled, "OUTCOME"),
            pair(&sanctioned, "SCREENING"),
            pair(&sanctioned, "OUTCOME"),
            pair(&held, "SCREENING"),
            pair(&late, "SCREENING"),
            pair(&late, "OUTCOME"),
        ]
    );
    let payee_party = wire::QueryFeedRequest { party: "BANK-HK.FEED".into(), ..query("regulator-hk") };
    assert_eq!(query_all(feed, payee_party).await.0.len(), 7, "the payer matches too");
    // Party and status together.
    let both = wire::QueryFeedRequest { status: "REJECTED".into(), ..party.clone() };
    let found: Vec<(String, String)> =
        query_all(feed, both).await.0.iter().map(|r| (r.payment_id.clone(), r.status.clone())).collect();
    assert_eq!(found, [(sanctioned.payment_id.clone(), "REJECTED".to_owned())]);
    // Some amount on the route of at least 150.00 HKD (150.00, 200.00; not 120.00 or 50.00).
    let large = wire::QueryFeedRequest { min_amount: money("HKD", "150.00"), ..party.clone() };
    let found: Vec<(String, String)> =
        query_all(feed, large).await.0.iter().map(|r| (r.payment_id.clone(), r.kind.clone())).collect();
    assert_eq!(found, [pair(&settled, "SCREENING"), pair(&settled, "OUTCOME"), pair(&held, "SCREENING")]);
    let min = wire::QueryFeedRequest { min_amount: money("HKD", "1000.00"), ..query("regulator-hk") };
    let expected = matching(&|r| {
        r.entry.amounts.iter().any(|a| a.strip_suffix(" HKD").is_some_and(|n| n.parse::<f64>().unwrap() >= 1000.0))
    });
    assert_eq!(served(query_all(feed, min).await.0), expected, "min_amount 1000.00 HKD");
    // The CNY amount of the HK -> CN payment is on HK's record too.
    let cny = wire::QueryFeedRequest { min_amount: money("CNY", "0.01"), ..party.clone() };
    let found: Vec<String> = query_all(feed, cny).await.0.iter().map(|r| r.payment_id.clone()).collect();
    assert_eq!(found, [sanctioned.payment_id.clone(), sanctioned.payment_id.clone()]);
    // Paging: two at a time gives the same records, in pages of at most two, each page's token its last sequence.
    let (one_shot, pages) = query_all(feed, party.clone()).await;
    assert_eq!(pages, [7]);
    let (paged, pages) = query_all(feed, wire::QueryFeedRequest { page_size: 2, ..party.clone() }).await;
    assert_eq!(paged, one_shot);
    assert!(pages.iter().all(|size| *size <= 2) && pages.len() >= 4, "{pages:?}");
    let first_page =
        feed.query_feed(wire::QueryFeedRequest { page_size: 2, ..party.clone() }).await.unwrap().into_inner();
    assert_eq!(first_page.records, one_shot[..2]);
    assert_eq!(first_page.next_after_sequence, one_shot[1].sequence);
    // Time bounds: before the first record nothing, from it everything.
    let first_at = hk_wire[0].recorded_at;
    let before = wire::QueryFeedRequest { to_time: first_at, ..query("regulator-hk") };
    assert!(query_all(feed, before).await.0.is_empty());

    // GetCheckpoint: a checkpoint signed by the key it names, over the record at its sequence.
    let late_outcome = next - 1;
    let checkpoint = checkpoint_covering(feed, "regulator-hk", late_outcome).await;
    assert_eq!(checkpoint.jurisdiction, "HK");
    assert!(is_hex(&checkpoint.public_key, 64), "{}", checkpoint.public_key);
    let signed = checkpoint.checkpoint.unwrap();
    assert!(checkpoint.head_sequence >= signed.sequence);
    assert!(is_hex(&signed.signature, 128) && is_hex(&signed.head_hash, 64), "{signed:?}");
    let Ok(FeedLine::Checkpoint(parsed_checkpoint)) = parse_line(1, &signed.line) else { panic!("{}", signed.line) };
    let public_key: FeedPublicKey = checkpoint.public_key.parse().unwrap();
    verify_checkpoint(&parsed_checkpoint, &public_key).unwrap();
    assert_eq!(
        (parsed_checkpoint.sequence, parsed_checkpoint.head_hash.to_string()),
        (signed.sequence, signed.head_hash.clone())
    );
    let at = wire::QueryFeedRequest { after_sequence: signed.sequence - 1, page_size: 1, ..query("regulator-hk") };
    let covered = feed.query_feed(at).await.unwrap().into_inner().records;
    assert_eq!(covered[0].hash, signed.head_hash, "the checkpoint's head is the record at its sequence");
    let listed_checkpoints = feed
        .list_checkpoints(wire::ListCheckpointsRequest { regulator_id: "regulator-hk".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed_checkpoints.public_key, checkpoint.public_key);
    assert!(listed_checkpoints.checkpoints.contains(&signed));
    let cn_checkpoint = feed
        .get_checkpoint(wire::GetCheckpointRequest { regulator_id: "regulator-cn".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cn_checkpoint.jurisdiction.as_str(), &cn_checkpoint.public_key), ("CN", &checkpoint.public_key));

    // Refusals: code and reason; the feed read before and after is the same.
    let unchanged_before = query_all(feed, wire::QueryFeedRequest { page_size: 1000, ..query("regulator-hk") }).await.0;
    let stranger = "`regulator-zz` is not a regulator on this network";
    assert_refused(feed.query_feed(query("regulator-zz")).await, Code::PermissionDenied, stranger);
    assert_refused(
        feed.subscribe(wire::SubscribeFeedRequest { regulator_id: "regulator-zz".into(), from_sequence: 1 }).await,
        Code::PermissionDenied,
        stranger,
    );
    assert_refused(
        feed.get_checkpoint(wire::GetCheckpointRequest { regulator_id: "regulator-zz".into() }).await,
        Code::PermissionDenied,
        stranger,
    );
    assert_refused(
        feed.list_checkpoints(wire::ListCheckpointsRequest { regulator_id: "regulator-zz".into() }).await,
        Code::PermissionDenied,
        stranger,
    );
    assert_refused(
        feed.query_feed(query("officer-hk")).await,
        Code::PermissionDenied,
        "`officer-hk` is not a regulator",
    );
    assert_refused(feed.query_feed(query("")).await, Code::InvalidArgument, "regulator_id");
    let bad_status = wire::QueryFeedRequest { status: "settled".into(), ..query("regulator-hk") };
    assert_refused(
        feed.query_feed(bad_status).await,
        Code::InvalidArgument,
        "status: `settled` is not SETTLED, REJECTED, FAILED or HELD",
    );
    // HELD is an accepted filter (no OUTCOME record ever has it: a held payment has none yet).
    let held_filter = wire::QueryFeedRequest { status: "HELD".into(), ..query("regulator-hk") };
    feed.query_feed(held_filter).await.unwrap();
    let pending = wire::QueryFeedRequest { status: "PENDING".into(), ..query("regulator-hk") };
    assert_refused(feed.query_feed(pending).await, Code::InvalidArgument, "status: `PENDING`");
    let too_big = wire::QueryFeedRequest { page_size: 1001, ..query("regulator-hk") };
    assert_refused(
        feed.query_feed(too_big).await,
        Code::InvalidArgument,
        "page_size: 1001 is above the maximum of 1000",
    );
    let bad_amount = wire::QueryFeedRequest { min_amount: money("HKD", "1.001"), ..query("regulator-hk") };
    assert_refused(feed.query_feed(bad_amount).await, Code::InvalidArgument, "min_amount.amount");
    let bad_currency = wire::QueryFeedRequest { min_amount: money("XYZ", "1.00"), ..query("regulator-hk") };
    assert_refused(feed.query_feed(bad_currency).await, Code::InvalidArgument, "min_amount.currency");
    let unchanged_after = query_all(feed, query("regulator-hk")).await.0;
    assert_eq!(unchanged_after[..unchanged_before.len()], unchanged_before[..], "a refused call changed the feed");
}

/// Runs `corridor` with `args`: (exit code, stdout).
fn corridor(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_corridor")).args(args).stderr(Stdio::inherit()).output().unwrap();
    (output.status.code().unwrap(), String::from_utf8(output.stdout).unwrap())
}

fn verify_file(feed: &Path, public_key: &str) -> (i32, String) {
    corridor(&["feed", "verify", "--feed", feed.to_str().unwrap(), "--public-key", public_key])
}

/// Removes the file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _already_gone = std::fs::remove_file(&self.0);
    }
}

/// `corridor feed export` then `corridor feed verify`, as a regulator runs them: the export
/// verifies; a deleted, altered or reordered record and a wrong key are each reported BROKEN at
/// their line, with exit code 1.
#[tokio::test]
async fn an_exported_feed_verifies_and_tampering_is_caught() {
    let server = MAIN.get();
    let mut clients = connect(&server).await;
    let (payments, feed) = (&mut clients.payments, &mut clients.feed);
    let payer = "e-hkd/bank-hk.export";
    for (key, amount) in [("export-1", "11.00"), ("export-2", "12.00"), ("export-3", "13.00")] {
        let paid =
            submit(payments, from_hk(key, payer, "e-hkd/bank-hk.payee", amount, Some(named("Chan Tai Man")), None))
                .await;
        assert_eq!(status_of(&paid.unwrap()), wire::PaymentStatus::Settled);
    }
    let newest = head(feed, "regulator-hk").await;
    let checkpoint = checkpoint_covering(feed, "regulator-hk", newest).await;
    let key = checkpoint.public_key;

    let out = TempFile(temp_path("export", ".jsonl"));
    let path = out.0.to_str().unwrap();
    let (code, stdout) = corridor(&[
        "feed",
        "export",
        "--insecure-dev",
        "--router",
        &server.endpoint,
        "--regulator",
        "regulator-hk",
        "--out",
        path,
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with("exported ") && stdout.contains(" of HK to ") && stdout.contains(&key), "{stdout}");
    let text = std::fs::read_to_string(&out.0).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let records = lines.iter().filter(|line| line.starts_with("{\"record\":")).count();
    assert!(lines.iter().any(|line| line.starts_with("{\"checkpoint\":")), "no checkpoint in the export");
    let (code, stdout) = verify_file(&out.0, &key);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.starts_with(&format!("ok: {records} records of HK (1..{records}), ")), "{stdout}");

    // The sequence of a record line.
    let sequence = |line: &str| match parse_line(1, line).unwrap() {
        FeedLine::Record(record) => record.sequence,
        FeedLine::Checkpoint(_) => panic!("not a record: {line}"),
    };
    let is_record = |line: &str| line.starts_with("{\"record\":");
    // A record (not the first) followed by a record, from the middle on.
    let middle = (lines.len() / 2..lines.len() - 1)
        .chain(1..lines.len() / 2)
        .find(|&i| is_record(lines[i]) && is_record(lines[i + 1]) && sequence(lines[i]) > 1)
        .unwrap();
    let s = sequence(lines[middle]);
    let tampered = |edit: &dyn Fn(&mut Vec<String>)| -> (i32, String) {
        let mut copy: Vec<String> = lines.iter().map(|line| (*line).to_owned()).collect();
        edit(&mut copy);
        let file = TempFile(temp_path("tampered", ".jsonl"));
        std::fs::write(&file.0, copy.iter().map(|line| format!("{line}\n")).collect::<String>()).unwrap();
        verify_file(&file.0, &key)
    };
    let broken = |(code, stdout): (i32, String), expected: &str| {
        assert_eq!(code, 1, "{stdout}");
        assert!(stdout.starts_with(&format!("BROKEN: {expected}")), "`{stdout}` is not `BROKEN: {expected}`");
    };

    // A record deleted: the next one is out of sequence, at the deleted line's number.
    broken(
        tampered(&|copy| {
            copy.remove(middle);
        }),
        &format!(
            "line {}: sequence {} follows {} (record {s} removed, or records reordered)",
            middle + 1,
            s + 1,
            s - 1
        ),
    );
    // An amount changed inside a record: its hash no longer matches.
    let with_amount =
        (middle..lines.len()).find(|&i| is_record(lines[i]) && lines[i].contains("\"amounts\":[\"")).unwrap();
    broken(
        tampered(&|copy| {
            let line = &copy[with_amount];
            let start = line.find("\"amounts\":[\"").unwrap() + "\"amounts\":[\"".len();
            let end = start + line[start..].find(' ').unwrap();
            copy[with_amount] = format!("{}999999.99{}", &line[..start], &line[end..]);
        }),
        &format!(
            "line {}, sequence {}: hash does not match the record's content (record altered)",
            with_amount + 1,
            sequence(lines[with_amount])
        ),
    );
    // Two records swapped.
    broken(
        tampered(&|copy| copy.swap(middle, middle + 1)),
        &format!(
            "line {}: sequence {} follows {} (record {s} removed, or records reordered)",
            middle + 1,
            s + 1,
            s - 1
        ),
    );
    // Another key: the first checkpoint is not trusted.
    let first_checkpoint = lines.iter().position(|line| line.starts_with("{\"checkpoint\":")).unwrap();
    let Ok(FeedLine::Checkpoint(Checkpoint { sequence: covered, .. })) = parse_line(1, lines[first_checkpoint]) else {
        panic!("{}", lines[first_checkpoint]);
    };
    let other_key = format!("{}{}", if key.starts_with('0') { '1' } else { '0' }, &key[1..]);
    broken(
        verify_file(&out.0, &other_key),
        &format!("checkpoint at line {} for sequence {covered}: signed by key", first_checkpoint + 1),
    );
    let (code, stdout) = verify_file(&out.0, &other_key);
    assert!(code == 1 && stdout.contains("which is not a trusted key"), "{stdout}");
    // The untouched file still verifies.
    assert_eq!(verify_file(&out.0, &key).0, 0);
}

/// A held payment nobody decides is rejected (`REVIEW_TIMEOUT`) once the review timeout has
/// passed (checked every second), its OUTCOME is in the feed, and it takes no decision after.
#[tokio::test]
async fn a_review_that_times_out_rejects_the_payment() {
    let server = start_server("short", REVIEW_SHORT);
    let mut clients = connect(&server).await;
    let (payments, review, feed) = (&mut clients.payments, &mut clients.review, &mut clients.feed);
    let started = Instant::now();
    let held = submit(
        payments,
        from_hk(
            "timeout-1",
            "e-hkd/bank-hk.timeout",
            "e-hkd/bank-hk.payee",
            "100.00",
            Some(named("Viktor Bout")),
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_of(&held), wire::PaymentStatus::Held, "{held:?}");
    assert_eq!(held_ids(review, "officer-hk").await, std::slice::from_ref(&held.payment_id));

    let expired = loop {
        let payment = get_payment(payments, &held.payment_id).await;
        if status_of(&payment) != wire::PaymentStatus::Held {
            break payment;
        }
        assert!(started.elapsed() < Duration::from_secs(4), "still held after {:?}", started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1400), "rejected after {waited:?}, before the timeout");
    assert_eq!(status_of(&expired), wire::PaymentStatus::Rejected, "{expired:?}");
    assert_eq!(reason_code(&expired), "REVIEW_TIMEOUT");
    assert!(reason_message(&expired).starts_with("no decision by HK within"), "{}", reason_message(&expired));
    assert_legs(&expired, wire::LegState::NotSent);
    assert!(held_ids(review, "officer-hk").await.is_empty());
    assert_refused(
        decide(review, "officer-hk", &held.payment_id, wire::ReviewVerdict::Approve, "").await,
        Code::FailedPrecondition,
        "not held for review",
    );
    assert_eq!(get_payment(payments, &held.payment_id).await, expired);

    let in_feed: Vec<Described> =
        records_of(feed, "regulator-hk", &held.payment_id).await.iter().map(describe).collect();
    assert_eq!(
        in_feed.iter().map(|r| r.0).collect::<Vec<_>>(),
        [FeedKind::Screening, FeedKind::Outcome],
        "{in_feed:?}"
    );
    assert_eq!((in_feed[1].1.as_deref(), in_feed[1].2.as_deref()), (Some("REJECTED"), Some("REVIEW_TIMEOUT")));
    assert!(records_of(feed, "regulator-cn", &held.payment_id).await.is_empty());

    // Nothing moved.
    assert_holds_exactly(payments, "e-hkd/bank-hk.timeout", "1000.00").await;

    // The reason states the configured timeout, 1500 ms (checked last, so that everything above is
    // checked whatever this says).
    let message = reason_message(&expired);
    assert!(message.contains("1.5 s") || message.contains("1500 ms"), "`{message}` misstates the 1500 ms timeout");
}
