//! Scale-out: three `corridor serve` replicas serve one network at once, sharing PostgreSQL (the
//! journal, receipts and feed; both ledgers are PostgreSQL ledgers behind `corridor ledger-node`)
//! and Redis (idempotency keys). Clients spread their payments over the replicas and, when a call
//! goes unanswered, retry it with the same idempotency key on the next replica. One replica is
//! killed with SIGKILL mid-run and never comes back: the others must take over its payments in
//! flight (its journal lease lapses) and answer the retries.
//!
//! Afterwards, from the ledgers themselves and from the shared stores:
//! - exactly once: one payment per idempotency key, and it is the one every client was told of;
//! - every payment all-or-nothing across its ledgers, none left prepared, settled means committed
//!   everywhere;
//! - conservation per ledger;
//! - feed completeness: every final payment has exactly one outcome record in the feed of each
//!   jurisdiction it touched, and each chain verifies.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corridor_compliance::feed::{FeedKind, FeedLine, parse_line, verify};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_feed_client::ComplianceFeedClient;
use corridor_schemas::wire::v1::ledger_adapter_client::LedgerAdapterClient;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use corridor_schemas::{Currency, Money};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Mutex;
use tokio_postgres::NoTls;

mod support;
use support::{Launch, Process, free_port, fresh_database, list_all, redis_url};

const REPLICAS: usize = 3;
const CLIENTS: usize = 9;
const WALLETS_PER_BANK: usize = 4;
const WALLET_OPENING: &str = "100000.00";
const PROVIDER_OPENING: &str = "10000000.00";
/// How long a client keeps retrying one payment before the test gives up on it: longer than a
/// lapsed lease plus a take-over round.
const ANSWER_WAIT_MAX: Duration = Duration::from_secs(60);

fn wallets(bank: &str) -> Vec<String> {
    (1..=WALLETS_PER_BANK).map(|index| format!("{bank}.w{index:02}")).collect()
}

fn node_config(ledger: &str, currency: &str, jurisdiction: &str, bank: &str) -> String {
    let mut text =
        format!("[ledger]\nid = \"{ledger}\"\ncurrency = \"{currency}\"\njurisdiction = \"{jurisdiction}\"\n\n");
    for wallet in wallets(bank) {
        text.push_str(&format!("[[accounts]]\nname = \"{wallet}\"\nopening_balance = \"{WALLET_OPENING}\"\n\n"));
    }
    text.push_str(&format!("[[accounts]]\nname = \"lp-one\"\nopening_balance = \"{PROVIDER_OPENING}\"\n\n"));
    text.push_str("[[accounts]]\nname = \"corridor.fees\"\nopening_balance = \"0\"\n");
    text
}

fn router_config(hkd_endpoint: &str, cny_endpoint: &str, database_url: &str, directory: &Path) -> String {
    let accounts = |ledger: &str, bank: &str| {
        wallets(bank)
            .iter()
            .map(|wallet| format!("{{ address = \"{ledger}/{wallet}\" }}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        r#"
[settlement]
prepare_timeout_ms = 2000
decision_attempts_max = 5

[storage]
backend = "postgres"
database_url = "{database_url}"
redis_url = "{redis_url}"

[feed]
# Shared by the replicas, like the database.
signing_key_file = "{key_file}"

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"
endpoint = "{hkd_endpoint}"

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"
endpoint = "{cny_endpoint}"

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [{hk_accounts}]

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [{cn_accounts}]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
accounts = [{{ address = "e-hkd/lp-one" }}, {{ address = "e-cny/lp-one" }}]

[[regulators]]
id = "regulator-hk"
jurisdiction = "HK"

[[regulators]]
id = "regulator-cn"
jurisdiction = "CN"

[[rates]]
provider = "lp-one"
pair = "CNY/HKD"
bid = "1.0850"
ask = "1.0900"

[[fees]]
from_ledger = "e-hkd"
currency = "HKD"
fixed = "1.00"
basis_points = 5
"#,
        redis_url = redis_url(),
        key_file = directory.join("feed-signing-key.pk8").display(),
        hk_accounts = accounts("e-hkd", "bank-hk"),
        cn_accounts = accounts("e-cny", "bank-cn"),
    )
}

/// A payment by index: alternately from Hong Kong and from the mainland, half of them
/// cross-border. Keys carry the run's id: Redis outlives test runs.
fn instruction(run: &str, index: usize, rng: &mut StdRng) -> wire::PaymentInstruction {
    let from_hk = index.is_multiple_of(2);
    let cross_border = rng.random_range(0..2) == 0;
    let (participant, payer_ledger, payer_bank, currency) =
        if from_hk { ("bank-hk", "e-hkd", "bank-hk", "HKD") } else { ("bank-cn", "e-cny", "bank-cn", "CNY") };
    let (payee_ledger, payee_bank) = match (from_hk, cross_border) {
        (true, true) => ("e-cny", "bank-cn"),
        (false, true) => ("e-hkd", "bank-hk"),
        _ => (payer_ledger, payer_bank),
    };
    let payer = rng.random_range(1..=WALLETS_PER_BANK);
    let mut payee = rng.random_range(1..=WALLETS_PER_BANK);
    if payee_ledger == payer_ledger && payee == payer {
        payee = payee % WALLETS_PER_BANK + 1;
    }
    wire::PaymentInstruction {
        participant_id: participant.into(),
        idempotency_key: format!("scale-{run}-{index:06}"),
        payer: format!("{payer_ledger}/{payer_bank}.w{payer:02}"),
        payee: format!("{payee_ledger}/{payee_bank}.w{payee:02}"),
        amount: Some(wire::Money {
            currency: currency.into(),
            amount: format!("{}.{:02}", rng.random_range(1..500), rng.random_range(0..100)),
        }),
        fixed_side: wire::FixedSide::Send as i32,
        reference: String::new(),
        quote_id: String::new(),
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: Vec::new(),
    }
}

/// What the clients saw, per replica.
#[derive(Default)]
struct Tally {
    /// Calls that got no final answer from this replica (transport error, UNAVAILABLE, timeout).
    unanswered: Vec<AtomicUsize>,
    /// Calls in flight now, per replica.
    in_flight: Vec<AtomicUsize>,
}

/// Submits to replica `first`, then to the next one on every unanswered attempt, with the same
/// key, until a final answer arrives. Returns the answer and the replica that gave it.
async fn submit_until_final(
    endpoints: &[String],
    first: usize,
    instruction: wire::PaymentInstruction,
    tally: &Tally,
) -> (wire::Payment, usize) {
    let started = Instant::now();
    let mut replica = first;
    loop {
        assert!(
            started.elapsed() < ANSWER_WAIT_MAX,
            "no final answer for {} in {ANSWER_WAIT_MAX:?}",
            instruction.idempotency_key
        );
        tally.in_flight[replica].fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let mut client = PaymentServiceClient::connect(endpoints[replica].clone()).await.ok()?;
            let request = wire::SubmitPaymentRequest { instruction: Some(instruction.clone()) };
            let call = tokio::time::timeout(Duration::from_secs(40), client.submit_payment(request)).await.ok()?;
            call.ok()?.into_inner().payment
        }
        .await;
        tally.in_flight[replica].fetch_sub(1, Ordering::SeqCst);
        match answer {
            Some(payment) if payment.status != wire::PaymentStatus::Pending as i32 => return (payment, replica),
            _ => {
                tally.unanswered[replica].fetch_add(1, Ordering::SeqCst);
                replica = (replica + 1) % endpoints.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Every record of `regulator`'s feed, in order.
async fn feed_lines(endpoint: &str, regulator: &str) -> Vec<FeedLine> {
    let mut feed = ComplianceFeedClient::connect(endpoint.to_owned()).await.unwrap();
    let mut request =
        wire::QueryFeedRequest { regulator_id: regulator.into(), page_size: 1000, ..wire::QueryFeedRequest::default() };
    let mut lines = Vec::new();
    loop {
        let page = feed.query_feed(request.clone()).await.unwrap().into_inner();
        for record in &page.records {
            lines.push(parse_line(lines.len() + 1, &record.line).unwrap());
        }
        if page.next_after_sequence == 0 {
            return lines;
        }
        request.after_sequence = page.next_after_sequence;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_lose_one_mid_run_and_break_no_invariant() {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let directory = std::env::temp_dir().join(format!("corridor-scale-out-{run}"));
    std::fs::create_dir_all(&directory).unwrap();
    let router_database = fresh_database("scale_router").await;
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let endpoints: Vec<String> = ports.iter().map(|port| format!("http://127.0.0.1:{port}")).collect();

    // Two PostgreSQL ledgers behind ledger nodes; their in-doubt questions go to a replica that
    // stays up (in production: the replicas' load-balanced address).
    let (hkd_port, cny_port) = (free_port(), free_port());
    let mut nodes = Vec::new();
    for (ledger, currency, jurisdiction, bank, port) in
        [("e-hkd", "HKD", "HK", "bank-hk", hkd_port), ("e-cny", "CNY", "CN", "bank-cn", cny_port)]
    {
        let config = directory.join(format!("{ledger}.toml"));
        std::fs::write(&config, node_config(ledger, currency, jurisdiction, bank)).unwrap();
        let database = fresh_database(&format!("scale_{}", ledger.replace('-', "_"))).await;
        nodes.push(Process::start(&[
            "ledger-node".into(),
            "--insecure-dev".into(),
            "--config".into(),
            config.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--backend".into(),
            "postgres".into(),
            "--database-url".into(),
            database,
            "--coordinator".into(),
            endpoints[REPLICAS - 1].clone(),
        ]));
    }
    let config_path = directory.join("router.toml");
    std::fs::write(
        &config_path,
        router_config(
            &format!("http://127.0.0.1:{hkd_port}"),
            &format!("http://127.0.0.1:{cny_port}"),
            &router_database,
            &directory,
        ),
    )
    .unwrap();
    let mut replicas: Vec<Process> = (0..REPLICAS)
        .map(|replica| {
            Process::start_with(
                &[
                    "serve".into(),
                    "--insecure-dev".into(),
                    "--config".into(),
                    config_path.display().to_string(),
                    "--listen".into(),
                    format!("127.0.0.1:{}", ports[replica]),
                    "--data-dir".into(),
                    directory.join(format!("replica-{replica}")).display().to_string(),
                ],
                Launch::logging(
                    &directory.join(format!("replica-{replica}.log")),
                    "error,corridor_router::recovery=info",
                ),
            )
        })
        .collect();

    // Clients: each sends payments one after another, spreading them over the replicas.
    let stop = Arc::new(AtomicBool::new(false));
    let next_index = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Tally {
        unanswered: (0..REPLICAS).map(|_| AtomicUsize::new(0)).collect(),
        in_flight: (0..REPLICAS).map(|_| AtomicUsize::new(0)).collect(),
    });
    type Answers = Vec<(wire::PaymentInstruction, wire::Payment, usize, usize)>;
    let answers: Arc<Mutex<Answers>> = Arc::default();
    let endpoints = Arc::new(endpoints);
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (stop, next_index, tally, answers, endpoints, run) =
            (stop.clone(), next_index.clone(), tally.clone(), answers.clone(), endpoints.clone(), run.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(client as u64);
            while !stop.load(Ordering::SeqCst) {
                let index = next_index.fetch_add(1, Ordering::SeqCst);
                let instruction = instruction(&run, index, &mut rng);
                let first = index % REPLICAS;
                let (payment, answered_by) = submit_until_final(&endpoints, first, instruction.clone(), &tally).await;
                answers.lock().await.push((instruction, payment, first, answered_by));
            }
        }));
    }

    // Let the three serve together, then kill replica 0 while it has payments in flight.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let kill_deadline = Instant::now() + Duration::from_secs(5);
    while tally.in_flight[0].load(Ordering::SeqCst) == 0 && Instant::now() < kill_deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let in_flight_at_kill = tally.in_flight[0].load(Ordering::SeqCst);
    let sent_at_kill = next_index.load(Ordering::SeqCst);
    replicas[0].kill();
    // Long enough for its lease to lapse and its payments to be taken over, with load going on.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    // Every receipt final: the survivors completed whatever the dead replica left.
    let survivor = endpoints[1].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let payments = loop {
        let payments = list_all(&survivor).await;
        if payments.iter().all(|p| p.status != wire::PaymentStatus::Pending as i32) || Instant::now() > deadline {
            break payments;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // And every journal entry finished, the dead replica's too: nothing is left to anyone.
    let (database, connection) = tokio_postgres::connect(&router_database, NoTls).await.unwrap();
    tokio::spawn(connection);
    let unfinished = loop {
        let row = database
            .query_one("SELECT count(*) FROM corridor_journal WHERE NOT finished AND payment IS NOT NULL", &[])
            .await
            .unwrap();
        let unfinished: i64 = row.get(0);
        if unfinished == 0 || Instant::now() > deadline {
            break unfinished;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(unfinished, 0, "journal entries left unfinished");
    let takeovers: Vec<String> = (1..REPLICAS)
        .flat_map(|replica| {
            std::fs::read_to_string(directory.join(format!("replica-{replica}.log")))
                .unwrap()
                .lines()
                .filter(|line| line.contains("took over"))
                .map(|line| format!("replica {replica}: {line}"))
                .collect::<Vec<_>>()
        })
        .collect();
    let answers = answers.lock().await.clone();
    let rerouted = answers.iter().filter(|(_, _, first, answered_by)| first != answered_by).count();
    let taken_over: Vec<&wire::Payment> = payments
        .iter()
        .filter(|payment| payment.reason.as_ref().is_some_and(|reason| reason.code == "ABORTED_IN_RECOVERY"))
        .collect();
    println!(
        "scale-out: {} payments answered by {REPLICAS} replicas; replica 0 killed with {in_flight_at_kill} \
         calls in flight after {sent_at_kill} sent; {rerouted} answered by another replica than the first tried; \
         {} aborted by a survivor's take-over; unanswered calls per replica {:?}",
        answers.len(),
        taken_over.len(),
        tally.unanswered.iter().map(|count| count.load(Ordering::SeqCst)).collect::<Vec<_>>(),
    );
    for takeover in &takeovers {
        println!("  {takeover}");
    }
    assert!(in_flight_at_kill > 0, "replica 0 had nothing in flight when killed: the test proved nothing");
    // Under load a replica always has journal entries open (payments settling, finishes queued).
    assert!(!takeovers.is_empty(), "no survivor took over anything from the dead replica");
    assert!(rerouted > 0, "no call was retried on another replica");
    let answered_after_kill: BTreeMap<usize, usize> =
        answers.iter().fold(BTreeMap::new(), |mut counts, (_, _, _, replica)| {
            *counts.entry(*replica).or_default() += 1;
            counts
        });
    assert!(answered_after_kill.get(&1).is_some_and(|count| *count > 0));
    assert!(answered_after_kill.get(&2).is_some_and(|count| *count > 0));

    // Exactly once: one payment per key, and it is the one the client was told about.
    let mut by_key: HashMap<(String, String), Vec<&wire::Payment>> = HashMap::new();
    for payment in &payments {
        by_key.entry((payment.participant_id.clone(), payment.idempotency_key.clone())).or_default().push(payment);
    }
    assert!(by_key.values().all(|found| found.len() == 1), "a key has more than one payment");
    for (instruction, answer, _, _) in &answers {
        let stored = &by_key[&(instruction.participant_id.clone(), instruction.idempotency_key.clone())][0];
        assert_eq!(stored.payment_id, answer.payment_id);
        assert_eq!(stored.status, answer.status, "payment {} changed status after it was answered", answer.payment_id);
    }

    // From the ledgers: all-or-nothing, nothing in doubt, and settled means committed everywhere.
    let mut ledgers = BTreeMap::new();
    for (ledger, port) in [("e-hkd", hkd_port), ("e-cny", cny_port)] {
        ledgers
            .insert(ledger.to_owned(), LedgerAdapterClient::connect(format!("http://127.0.0.1:{port}")).await.unwrap());
    }
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for payment in &payments {
        let status = wire::PaymentStatus::try_from(payment.status).unwrap();
        assert_ne!(status, wire::PaymentStatus::Pending, "payment {} is still pending", payment.payment_id);
        *outcomes.entry(status.as_str_name()).or_default() += 1;
        let mut committed = 0;
        for leg in &payment.legs {
            let client = ledgers.get_mut(&leg.ledger_id).unwrap();
            let result = client
                .status(wire::StatusRequest { transaction_ids: vec![payment.payment_id.clone()] })
                .await
                .unwrap()
                .into_inner()
                .results
                .remove(0);
            let state = wire::TransactionState::try_from(result.state).unwrap();
            assert_ne!(state, wire::TransactionState::Prepared, "{} in doubt on {}", payment.payment_id, leg.ledger_id);
            if state == wire::TransactionState::Committed {
                committed += 1;
            }
        }
        if status == wire::PaymentStatus::Settled {
            assert_eq!(
                committed,
                payment.legs.len(),
                "settled payment {} not committed everywhere",
                payment.payment_id
            );
        } else {
            assert_eq!(committed, 0, "{status:?} payment {} is committed somewhere", payment.payment_id);
        }
    }
    println!("  outcomes: {outcomes:?}");
    assert!(outcomes.get("PAYMENT_STATUS_SETTLED").is_some_and(|settled| *settled > 100), "{outcomes:?}");

    // Conservation: every account's balance, summed per ledger, equals what was issued.
    for (ledger, bank, currency) in [("e-hkd", "bank-hk", "HKD"), ("e-cny", "bank-cn", "CNY")] {
        let currency = Currency::from_code(currency).unwrap();
        let mut accounts = wallets(bank);
        accounts.push("lp-one".into());
        accounts.push("corridor.fees".into());
        let issued = i128::from(Money::parse(WALLET_OPENING, currency).unwrap().minor_units())
            * WALLETS_PER_BANK as i128
            + i128::from(Money::parse(PROVIDER_OPENING, currency).unwrap().minor_units());
        let client = ledgers.get_mut(ledger).unwrap();
        let mut total: i128 = 0;
        let mut held: i128 = 0;
        for account in accounts {
            let balance = client.balance(wire::BalanceRequest { account }).await.unwrap().into_inner();
            total += i128::from(balance.balance_minor);
            held += i128::from(balance.held_minor);
        }
        assert_eq!(held, 0, "{ledger}: holds are left");
        assert_eq!(total, issued, "{ledger} does not conserve money");
    }

    // Feed completeness: exactly one outcome per final payment per touched jurisdiction; chains verify.
    for (regulator, ledger) in [("regulator-hk", "e-hkd"), ("regulator-cn", "e-cny")] {
        let lines = feed_lines(&survivor, regulator).await;
        verify(&lines, &[]).unwrap_or_else(|error| panic!("{regulator}'s chain does not verify: {error}"));
        let mut outcomes_seen: HashMap<String, usize> = HashMap::new();
        for line in &lines {
            if let FeedLine::Record(record) = line
                && record.entry.kind == FeedKind::Outcome
            {
                *outcomes_seen.entry(record.entry.payment_id.clone()).or_default() += 1;
            }
        }
        for payment in &payments {
            // The route's ledgers, or the payer's and payee's when it was refused unrouted.
            let touches = if payment.route.is_empty() {
                [&payment.payer, &payment.payee].iter().any(|address| address.starts_with(&format!("{ledger}/")))
            } else {
                payment.route.iter().any(|on| on == ledger)
            };
            let seen = outcomes_seen.get(&payment.payment_id).copied().unwrap_or(0);
            assert_eq!(seen, usize::from(touches), "{regulator}: payment {} has {seen} outcomes", payment.payment_id);
        }
    }

    drop(replicas);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&directory);
}

/// A rate published to one replica prices on every replica: the others hear it at once, and a
/// replica that starts later reads it on start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_published_to_one_replica_reaches_every_replica() {
    use corridor_schemas::wire::v1::fx_service_client::FxServiceClient;

    let run = uuid::Uuid::now_v7().simple().to_string();
    let directory = std::env::temp_dir().join(format!("corridor-shared-rates-{run}"));
    std::fs::create_dir_all(&directory).unwrap();
    let database = fresh_database("shared_rates").await;
    // No ledger is paid here: each replica's in-process ledgers are never used.
    let config = router_config("", "", &database, &directory)
        .replace("endpoint = \"\"\n", "")
        .replace("[storage]\n", &format!("[storage]\ndata_dir = \"{}\"\n", directory.display()));
    let config_path = directory.join("router.toml");
    std::fs::write(&config_path, config).unwrap();
    let start = |name: &str| {
        let port = free_port();
        let process = Process::start(&[
            "serve".into(),
            "--insecure-dev".into(),
            "--config".into(),
            config_path.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-dir".into(),
            directory.join(name).display().to_string(),
        ]);
        (process, format!("http://127.0.0.1:{port}"))
    };
    let (_first, first_endpoint) = start("first");
    let (_second, second_endpoint) = start("second");
    let book = |response: wire::GetRatesResponse| -> Vec<(String, String, String)> {
        response
            .rates
            .into_iter()
            .filter_map(|rate| rate.rate.map(|entry| (rate.provider_id, entry.bid, entry.ask)))
            .collect()
    };
    let published = ("lp-one".to_owned(), "1.0700".to_owned(), "1.0750".to_owned());
    let mut first = FxServiceClient::connect(first_endpoint).await.unwrap();
    let request = wire::PublishRatesRequest {
        provider_id: "lp-one".into(),
        rates: vec![wire::RateEntry {
            pair: "CNY/HKD".into(),
            bid: "1.0700".into(),
            ask: "1.0750".into(),
            as_of: None,
            maximum: None,
        }],
    };
    assert_eq!(first.publish_rates(request).await.unwrap().into_inner().accepted, 1);
    assert_eq!(
        book(first.get_rates(wire::GetRatesRequest { pair: "CNY/HKD".into() }).await.unwrap().into_inner()),
        vec![published.clone()]
    );

    let mut second = FxServiceClient::connect(second_endpoint).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = book(second.get_rates(wire::GetRatesRequest { pair: "CNY/HKD".into() }).await.unwrap().into_inner());
        if seen == vec![published.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "the second replica still prices with {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A replica started afterwards has it from the start (a few milliseconds after).
    let (_third, third_endpoint) = start("third");
    let mut third = FxServiceClient::connect(third_endpoint).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = book(third.get_rates(wire::GetRatesRequest { pair: "CNY/HKD".into() }).await.unwrap().into_inner());
        if seen == vec![published.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "the late replica still prices with {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = std::fs::remove_dir_all(&directory);
}
