//! Real processes, real kills. A router and two `corridor ledger-node` processes (e-HKD, e-CNY,
//! each with a durable operation log) settle a stream of payments from concurrent clients. The
//! router is killed with SIGKILL at random moments several times and restarted on the same
//! files; one ledger node is killed and restarted too. Clients retry every unanswered payment
//! with the same idempotency key until it has a final answer.
//!
//! Afterwards, from the ledgers themselves (over the ledger protocol):
//! - conservation per ledger: the balances of every account sum to the opening balances;
//! - every payment all-or-nothing across its ledgers, none left prepared (in doubt);
//! - no idempotency key settled twice;
//! - every payment the API reported settled is committed on every ledger it touches.
//!
//! `ops/fault-test.sh` runs this test with its report printed.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::ledger_adapter_client::LedgerAdapterClient;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use corridor_schemas::{Currency, Money};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Mutex;

mod support;
use support::{Process, free_port, list_all};

const WALLETS_PER_BANK: usize = 4;
const WALLET_OPENING: &str = "100000.00";
const PROVIDER_OPENING: &str = "10000000.00";
const CLIENTS: usize = 8;
const ROUTER_KILLS: usize = 4;
/// How long a client keeps retrying one payment before the test gives up on it.
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

fn router_config(hkd_endpoint: &str, cny_endpoint: &str, data_dir: &Path) -> String {
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
data_dir = "{data_dir}"

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
        data_dir = data_dir.display(),
        hk_accounts = accounts("e-hkd", "bank-hk"),
        cn_accounts = accounts("e-cny", "bank-cn"),
    )
}

/// A payment the clients send, by index: alternately from Hong Kong and from the mainland, half
/// of them cross-border.
fn instruction(index: usize, rng: &mut StdRng) -> wire::PaymentInstruction {
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
        idempotency_key: format!("fault-{index:06}"),
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

/// Submits until a final answer arrives, reconnecting and retrying with the same key through
/// router restarts.
async fn submit_until_final(endpoint: &str, instruction: wire::PaymentInstruction) -> wire::Payment {
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < ANSWER_WAIT_MAX,
            "no final answer for {} in {ANSWER_WAIT_MAX:?}",
            instruction.idempotency_key
        );
        if let Ok(mut client) = PaymentServiceClient::connect(endpoint.to_owned()).await {
            let request = wire::SubmitPaymentRequest { instruction: Some(instruction.clone()) };
            if let Ok(response) = client.submit_payment(request).await {
                let payment = response.into_inner().payment.unwrap();
                if payment.status != wire::PaymentStatus::Pending as i32 {
                    return payment;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_of_the_router_and_a_ledger_node_break_no_invariant() {
    let directory = std::env::temp_dir().join(format!("corridor-fault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    let (router_port, hkd_port, cny_port) = (free_port(), free_port(), free_port());
    let router_endpoint = format!("http://127.0.0.1:{router_port}");
    let node = |ledger: &str, currency: &str, jurisdiction: &str, bank: &str, port: u16| {
        let config = directory.join(format!("{ledger}.toml"));
        std::fs::write(&config, node_config(ledger, currency, jurisdiction, bank)).unwrap();
        let args: Vec<String> = vec![
            "ledger-node".into(),
            "--insecure-dev".into(),
            "--config".into(),
            config.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--data-file".into(),
            directory.join(format!("{ledger}.log")).display().to_string(),
            "--coordinator".into(),
            router_endpoint.clone(),
        ];
        Process::start(&args)
    };
    let _hkd_node = node("e-hkd", "HKD", "HK", "bank-hk", hkd_port);
    let mut cny_node = node("e-cny", "CNY", "CN", "bank-cn", cny_port);
    let router_config_path = directory.join("router.toml");
    std::fs::write(
        &router_config_path,
        router_config(
            &format!("http://127.0.0.1:{hkd_port}"),
            &format!("http://127.0.0.1:{cny_port}"),
            &directory.join("router"),
        ),
    )
    .unwrap();
    let router_args: Vec<String> = vec![
        "serve".into(),
        "--insecure-dev".into(),
        "--config".into(),
        router_config_path.display().to_string(),
        "--listen".into(),
        format!("127.0.0.1:{router_port}"),
    ];
    let mut router = Process::start(&router_args);

    // Clients: each sends payments one after another until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let next_index = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let answers: Arc<Mutex<Vec<(wire::PaymentInstruction, wire::Payment)>>> = Arc::default();
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let (stop, next_index, in_flight, answers, endpoint) =
            (stop.clone(), next_index.clone(), in_flight.clone(), answers.clone(), router_endpoint.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(client as u64);
            while !stop.load(Ordering::SeqCst) {
                let index = next_index.fetch_add(1, Ordering::SeqCst);
                let instruction = instruction(index, &mut rng);
                in_flight.fetch_add(1, Ordering::SeqCst);
                let payment = submit_until_final(&endpoint, instruction.clone()).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                answers.lock().await.push((instruction, payment));
            }
        }));
    }

    // The killer.
    let mut rng = StdRng::seed_from_u64(2026);
    let mut kills: Vec<(String, usize, usize)> = Vec::new();
    for round in 0..ROUTER_KILLS {
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..1_200))).await;
        let (flying, sent) = (in_flight.load(Ordering::SeqCst), next_index.load(Ordering::SeqCst));
        router.kill();
        kills.push(("router".into(), flying, sent));
        tokio::time::sleep(Duration::from_millis(rng.random_range(50..300))).await;
        router.restart();
        if round == 1 {
            tokio::time::sleep(Duration::from_millis(rng.random_range(200..600))).await;
            let (flying, sent) = (in_flight.load(Ordering::SeqCst), next_index.load(Ordering::SeqCst));
            cny_node.kill();
            kills.push(("ledger node e-cny".into(), flying, sent));
            tokio::time::sleep(Duration::from_millis(300)).await;
            cny_node.restart();
        }
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    // Let background deliveries finish: no receipt may stay pending.
    let deadline = Instant::now() + Duration::from_secs(30);
    let payments = loop {
        let payments = list_all(&router_endpoint).await;
        if payments.iter().all(|p| p.status != wire::PaymentStatus::Pending as i32) || Instant::now() > deadline {
            break payments;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let answers = answers.lock().await.clone();
    println!("fault test: {} payments answered, {} stored by the router", answers.len(), payments.len());
    for (what, flying, sent) in &kills {
        println!("  killed the {what} with SIGKILL: {flying} payments in flight, {sent} sent so far");
    }

    // Exactly once: one payment per key, and it is the one the client was told about.
    let mut by_key: HashMap<(String, String), Vec<&wire::Payment>> = HashMap::new();
    for payment in &payments {
        by_key.entry((payment.participant_id.clone(), payment.idempotency_key.clone())).or_default().push(payment);
    }
    assert!(by_key.values().all(|found| found.len() == 1), "a key has more than one payment");
    for (instruction, answer) in &answers {
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
        assert_ne!(
            status,
            wire::PaymentStatus::Pending,
            "payment {} is still pending: {:?}",
            payment.payment_id,
            payment.reason
        );
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
            assert_ne!(
                state,
                wire::TransactionState::Prepared,
                "payment {} is in doubt on {}",
                payment.payment_id,
                leg.ledger_id
            );
            if state == wire::TransactionState::Committed {
                committed += 1;
            }
        }
        if status == wire::PaymentStatus::Settled {
            assert_eq!(
                committed,
                payment.legs.len(),
                "settled payment {} is not committed everywhere",
                payment.payment_id
            );
        } else {
            assert_eq!(committed, 0, "{status:?} payment {} is committed somewhere", payment.payment_id);
        }
    }
    println!("  outcomes: {outcomes:?}");

    // Conservation: every account's balance, summed per ledger, equals what was issued.
    for (ledger, bank, currency) in [("e-hkd", "bank-hk", "HKD"), ("e-cny", "bank-cn", "CNY")] {
        let currency = Currency::from_code(currency).unwrap();
        let mut accounts = wallets(bank);
        accounts.push("lp-one".into());
        accounts.push("corridor.fees".into());
        let issued = i128::from(Money::parse(WALLET_OPENING, currency).unwrap().minor_units())
            * WALLETS_PER_BANK as i128
            + i128::from(Money::parse(PROVIDER_OPENING, currency).unwrap().minor_units());
        let mut total = 0i128;
        let mut held = 0i128;
        let client = ledgers.get_mut(ledger).unwrap();
        for account in &accounts {
            let balance = client.balance(wire::BalanceRequest { account: account.clone() }).await.unwrap().into_inner();
            total += i128::from(balance.balance_minor);
            held += i128::from(balance.held_minor);
        }
        assert_eq!(total, issued, "{ledger}: money was created or destroyed");
        assert_eq!(held, 0, "{ledger}: holds are left");
        let issued = Money::from_minor_units(i64::try_from(issued).unwrap(), currency).unwrap();
        println!("  {ledger}: balances sum to the {issued} issued, nothing held");
    }
    let touched: HashSet<&str> = payments.iter().flat_map(|p| p.legs.iter().map(|l| l.ledger_id.as_str())).collect();
    assert_eq!(touched.len(), 2, "the load did not reach both ledgers");
    assert!(answers.len() >= 50, "too few payments to mean anything: {}", answers.len());
    drop(router);
    let _ = std::fs::remove_dir_all(&directory);
}
