//! Drives the real `corridor` binary over real gRPC: `corridor serve` on an ephemeral port, a small
//! two-ledger network, and a client that pays, reads back, pages, retries and sends bad input.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use tonic::Code;
use tonic::transport::Channel;

const NETWORK: &str = r#"
[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [
  { address = "e-hkd/bank-hk.alice", opening_balance = "1000.00" },
  { address = "e-hkd/bank-hk.bob", opening_balance = "1000.00" },
]

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [{ address = "e-cny/bank-cn.wei", opening_balance = "1000.00" }]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
accounts = [
  { address = "e-hkd/lp-one", opening_balance = "100000.00" },
  { address = "e-cny/lp-one", opening_balance = "100000.00" },
]

[[rates]]
provider = "lp-one"
pair = "CNY/HKD"
bid = "1.0850"
ask = "1.0900"

[[limits]]
jurisdiction = "HK"
currency = "HKD"
single_payment_max = "500.00"

[[fees]]
from_ledger = "e-hkd"
currency = "HKD"
fixed = "1.00"
basis_points = 10
"#;

/// The server process; killed when dropped so a failing test leaves nothing behind.
struct Server {
    child: Child,
    endpoint: String,
    _config: TempFile,
    _data: TempDirectory,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _already_gone = self.child.kill();
        let _reaped = self.child.wait();
    }
}

struct TempFile(PathBuf);

struct TempDirectory(PathBuf);

impl Drop for TempDirectory {
    fn drop(&mut self) {
        let _already_gone = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _already_gone = std::fs::remove_file(&self.0);
    }
}

fn start_server(test: &str) -> Server {
    let path = std::env::temp_dir().join(format!("corridor-grpc-test-{test}-{}.toml", std::process::id()));
    std::fs::write(&path, NETWORK).unwrap();
    let config = TempFile(path);
    let data =
        TempDirectory(std::env::temp_dir().join(format!("corridor-grpc-test-{test}-{}-data", std::process::id())));
    spawn_server(config, data)
}

/// Starts `corridor serve` on a config and data directory (which may hold an earlier run's state).
fn spawn_server(config: TempFile, data: TempDirectory) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(["serve", "--insecure-dev", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config.0)
        .arg("--data-dir")
        .arg(&data.0)
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
    Server { child, endpoint: format!("http://{address}"), _config: config, _data: data }
}

async fn client(server: &Server) -> PaymentServiceClient<Channel> {
    PaymentServiceClient::connect(server.endpoint.clone()).await.unwrap()
}

fn instruction(key: &str, payer: &str, payee: &str, currency: &str, amount: &str) -> wire::PaymentInstruction {
    let participant = if payer.starts_with("e-hkd/bank-hk") { "bank-hk" } else { "bank-cn" };
    wire::PaymentInstruction {
        participant_id: participant.into(),
        idempotency_key: key.into(),
        payer: payer.into(),
        payee: payee.into(),
        amount: Some(wire::Money { currency: currency.into(), amount: amount.into() }),
        fixed_side: wire::FixedSide::Send as i32,
        reference: "integration test".into(),
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

fn status_of(payment: &wire::Payment) -> wire::PaymentStatus {
    wire::PaymentStatus::try_from(payment.status).unwrap()
}

fn leg_states(payment: &wire::Payment) -> Vec<(String, wire::LegState)> {
    payment.legs.iter().map(|leg| (leg.ledger_id.clone(), wire::LegState::try_from(leg.state).unwrap())).collect()
}

#[tokio::test]
async fn health_and_a_cross_border_payment_with_its_receipt() {
    let server = start_server("receipt");
    let channel = Channel::from_shared(server.endpoint.clone()).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let health = health
        .check(tonic_health::pb::HealthCheckRequest { service: "corridor.v1.PaymentService".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    let mut client = client(&server).await;
    let payment = submit(&mut client, instruction("k1", "e-hkd/bank-hk.alice", "e-cny/bank-cn.wei", "HKD", "100.00"))
        .await
        .unwrap();
    assert_eq!(status_of(&payment), wire::PaymentStatus::Settled, "{payment:?}");
    // 100.00 HKD ÷ 1.0900 (lp-one sells CNY at its ask) = 91.7431... → 91.74 CNY, rounded down.
    assert_eq!(payment.receive_amount, Some(wire::Money { currency: "CNY".into(), amount: "91.74".into() }));
    assert_eq!(payment.hops.len(), 1);
    let fx = payment.hops[0].conversion.as_ref().unwrap();
    assert_eq!((fx.provider_id.as_str(), fx.pair.as_str(), fx.rate.as_str()), ("lp-one", "CNY/HKD", "0.9174311927"));
    assert_eq!(payment.total_debit, Some(wire::Money { currency: "HKD".into(), amount: "101.10".into() }));
    // Fee: 1.00 + 100.00 × 10 bp = 1.10 HKD, on top of the amount.
    assert_eq!(payment.fees.len(), 1);
    assert_eq!(payment.fees[0].amount, Some(wire::Money { currency: "HKD".into(), amount: "1.10".into() }));
    assert_eq!(payment.fees[0].account, "e-hkd/corridor.fees");
    assert_eq!(payment.fees[0].corridor, "e-hkd->e-cny");
    assert_eq!(payment.route, ["e-hkd", "e-cny"]);
    assert_eq!(
        leg_states(&payment),
        [("e-hkd".into(), wire::LegState::Committed), ("e-cny".into(), wire::LegState::Committed)]
    );
    let source_postings: Vec<(&str, &str)> =
        payment.legs[0].postings.iter().map(|p| (p.account.as_str(), p.amount.as_str())).collect();
    assert_eq!(source_postings, [("bank-hk.alice", "-101.10"), ("lp-one", "100.00"), ("corridor.fees", "1.10")]);
    let hooks: Vec<(&str, &str, i32)> =
        payment.compliance.iter().map(|d| (d.jurisdiction.as_str(), d.hook.as_str(), d.outcome)).collect();
    assert_eq!(hooks, [("HK", "single_payment_limit", wire::ComplianceOutcome::Allow as i32)]);
    let timings = payment.timings.as_ref().unwrap();
    assert!(timings.received_at.is_some() && timings.finished_at.is_some() && timings.total_us > 0);

    let fetched = client
        .get_payment(wire::GetPaymentRequest { payment_id: payment.payment_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(fetched, payment);
}

#[tokio::test]
async fn a_ledger_voting_no_moves_no_money_anywhere() {
    let server = start_server("abort");
    let mut client = client(&server).await;
    // The CNY ledger votes no (unknown payee) after the HKD ledger has placed its hold.
    let refused =
        submit(&mut client, instruction("k1", "e-hkd/bank-hk.alice", "e-cny/nobody", "HKD", "300.00")).await.unwrap();
    assert_eq!(status_of(&refused), wire::PaymentStatus::Rejected);
    assert_eq!(refused.reason.as_ref().unwrap().code, "UNKNOWN_ACCOUNT");
    assert_eq!(
        leg_states(&refused),
        [("e-hkd".into(), wire::LegState::Aborted), ("e-cny".into(), wire::LegState::Refused)]
    );
    // Had the abort left anything held or moved, alice could not now spend exactly her 1000.00 HKD
    // (domestic payments carry no fee here: the configured fee is cross-border only).
    for key in ["k2", "k3"] {
        let payment =
            submit(&mut client, instruction(key, "e-hkd/bank-hk.alice", "e-hkd/bank-hk.bob", "HKD", "500.00"))
                .await
                .unwrap();
        assert_eq!(status_of(&payment), wire::PaymentStatus::Settled, "{payment:?}");
    }
    let empty = submit(&mut client, instruction("k4", "e-hkd/bank-hk.alice", "e-hkd/bank-hk.bob", "HKD", "0.01"))
        .await
        .unwrap();
    assert_eq!(status_of(&empty), wire::PaymentStatus::Rejected);
    let reason = empty.reason.unwrap();
    assert_eq!(reason.code, "INSUFFICIENT_FUNDS");
    assert!(reason.message.contains("has 0.00 HKD available"), "{}", reason.message);
}

#[tokio::test]
async fn compliance_denial_holds_nothing() {
    let server = start_server("limit");
    let mut client = client(&server).await;
    let denied = submit(&mut client, instruction("k1", "e-hkd/bank-hk.alice", "e-hkd/bank-hk.bob", "HKD", "500.01"))
        .await
        .unwrap();
    assert_eq!(status_of(&denied), wire::PaymentStatus::Rejected);
    let reason = denied.reason.clone().unwrap();
    assert_eq!(reason.code, "OVER_LIMIT");
    assert_eq!(reason.message, "HK single_payment_limit: 500.01 HKD is above HK's single-payment limit of 500.00 HKD");
    assert_eq!(leg_states(&denied), [("e-hkd".into(), wire::LegState::NotSent)]);
}

#[tokio::test]
async fn retries_are_exactly_once() {
    let server = start_server("idempotency");
    let mut client = client(&server).await;
    let first = instruction("same-key", "e-hkd/bank-hk.alice", "e-cny/bank-cn.wei", "HKD", "10.00");
    let (mut client_a, mut client_b) = (client.clone(), client.clone());
    let (a, b) = tokio::join!(submit(&mut client_a, first.clone()), submit(&mut client_b, first.clone()));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.payment_id, b.payment_id, "two concurrent submissions of one key made two payments");
    let again = submit(&mut client, first.clone()).await.unwrap();
    assert_eq!(again, a);

    let mut changed = first.clone();
    changed.amount = Some(wire::Money { currency: "HKD".into(), amount: "10.01".into() });
    let error = submit(&mut client, changed).await.unwrap_err();
    assert_eq!(error.code(), Code::AlreadyExists);
    assert!(error.message().contains(&a.payment_id), "{}", error.message());

    // The same key is a different key for another participant.
    let mut other = instruction("same-key", "e-cny/bank-cn.wei", "e-hkd/bank-hk.bob", "CNY", "10.00");
    other.participant_id = "bank-cn".into();
    assert_ne!(submit(&mut client, other).await.unwrap().payment_id, a.payment_id);

    let listed = client
        .list_payments(wire::ListPaymentsRequest { participant_id: "bank-hk".into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.payments.len(), 1, "one key, one payment");
}

#[tokio::test]
async fn list_pages_through_every_payment_in_order() {
    let server = start_server("paging");
    let mut client = client(&server).await;
    let mut submitted = Vec::new();
    for index in 0..7 {
        let payment = submit(
            &mut client,
            instruction(&format!("page-{index}"), "e-hkd/bank-hk.alice", "e-hkd/bank-hk.bob", "HKD", "1.00"),
        )
        .await
        .unwrap();
        submitted.push(payment.payment_id);
    }
    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_payments(wire::ListPaymentsRequest { participant_id: String::new(), page_size: 3, page_token })
            .await
            .unwrap()
            .into_inner();
        assert!(page.payments.len() <= 3);
        seen.extend(page.payments.into_iter().map(|p| p.payment_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, submitted);
}

/// SIGKILL the server, start it again on the same files: receipts, keys and balances are all there.
#[tokio::test]
async fn receipts_keys_and_balances_survive_a_killed_router() {
    let mut server = start_server("restart");
    let mut client = client(&server).await;
    let first = instruction("before-crash", "e-hkd/bank-hk.alice", "e-cny/bank-cn.wei", "HKD", "400.00");
    let settled = submit(&mut client, first.clone()).await.unwrap();
    assert_eq!(status_of(&settled), wire::PaymentStatus::Settled);

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let (config, data) = (TempFile(server._config.0.clone()), TempDirectory(server._data.0.clone()));
    std::mem::forget(server); // its files now belong to the restarted server
    let server = spawn_server(config, data);
    let mut client = PaymentServiceClient::connect(server.endpoint.clone()).await.unwrap();

    let fetched = client
        .get_payment(wire::GetPaymentRequest { payment_id: settled.payment_id.clone() })
        .await
        .unwrap()
        .into_inner()
        .payment
        .unwrap();
    assert_eq!(fetched, settled, "the receipt changed across the restart");
    let replayed = submit(&mut client, first).await.unwrap();
    assert_eq!(replayed, settled, "a retry after the restart did not return the first outcome");
    // alice had 1000.00 and paid 400.00 + 1.40 fee: exactly 598.60 is left (had her ledger
    // restarted from its opening balance, the last payment would settle).
    for (key, amount) in [("after-1", "498.60"), ("after-2", "100.00")] {
        let payment = submit(&mut client, instruction(key, "e-hkd/bank-hk.alice", "e-hkd/bank-hk.bob", "HKD", amount))
            .await
            .unwrap();
        assert_eq!(status_of(&payment), wire::PaymentStatus::Settled, "{payment:?}");
    }
    let empty = submit(&mut client, instruction("after-3", "e-hkd/bank-hk.alice", "e-hkd/bank-hk.bob", "HKD", "0.01"))
        .await
        .unwrap();
    assert_eq!(empty.reason.map(|reason| reason.code), Some("INSUFFICIENT_FUNDS".to_owned()));
}

/// One bad thing per case: the gRPC code and a fragment of the message (which names the field).
#[tokio::test]
async fn bad_input_is_refused_precisely_and_changes_nothing() {
    let server = start_server("bad-input");
    let mut client = client(&server).await;
    let good = || instruction("bad", "e-hkd/bank-hk.alice", "e-cny/bank-cn.wei", "HKD", "10.00");
    fn money(currency: &str, amount: &str) -> Option<wire::Money> {
        Some(wire::Money { currency: currency.into(), amount: amount.into() })
    }
    type Edit = Box<dyn Fn(&mut wire::PaymentInstruction)>;
    let cases: Vec<(Edit, Code, &str)> = vec![
        (
            Box::new(|i| i.amount = money("HKX", "10")),
            Code::InvalidArgument,
            "instruction.amount.currency: `HKX` is not in the ISO 4217 list",
        ),
        (Box::new(|i| i.amount = money("DEM", "10")), Code::InvalidArgument, "unknown or withdrawn"),
        (
            Box::new(|i| i.amount = money("HKD", "10.001")),
            Code::InvalidArgument,
            "instruction.amount.amount: `10.001` has 3 decimal places; HKD allows 2",
        ),
        (
            Box::new(|i| i.amount = money("HKD", "0")),
            Code::InvalidArgument,
            "instruction.amount.amount: must be greater than zero",
        ),
        (Box::new(|i| i.amount = money("HKD", "-5")), Code::InvalidArgument, "instruction.amount.amount"),
        (Box::new(|i| i.amount = money("HKD", "1e3")), Code::InvalidArgument, "not a plain decimal"),
        (Box::new(|i| i.amount = None), Code::InvalidArgument, "instruction.amount: is required"),
        (
            Box::new(|i| i.payer = "bank-hk.alice".into()),
            Code::InvalidArgument,
            "instruction.payer: `bank-hk.alice` is not of the form <ledger-id>/<account>",
        ),
        (
            Box::new(|i| i.payee = "e-usd/someone".into()),
            Code::InvalidArgument,
            "instruction.payee: ledger `e-usd` is not on this network",
        ),
        (
            Box::new(|i| i.amount = money("CNY", "10.00")),
            Code::InvalidArgument,
            "instruction.amount.currency: CNY does not match the payer ledger e-hkd, which issues HKD",
        ),
        (
            Box::new(|i| i.idempotency_key = String::new()),
            Code::InvalidArgument,
            "instruction.idempotency_key: must not be empty",
        ),
        (Box::new(|i| i.fixed_side = 7), Code::InvalidArgument, "instruction.fixed_side"),
        (
            Box::new(|i| i.participant_id = "bank-cn".into()),
            Code::PermissionDenied,
            "participant `bank-cn` does not own the payer account e-hkd/bank-hk.alice",
        ),
        (Box::new(|i| i.participant_id = "bank-zz".into()), Code::PermissionDenied, "`bank-zz` is not registered"),
    ];
    for (edit, code, fragment) in cases {
        let mut bad = good();
        edit(&mut bad);
        let error = submit(&mut client, bad.clone()).await.unwrap_err();
        assert_eq!(error.code(), code, "{bad:?}: {}", error.message());
        assert!(error.message().contains(fragment), "`{}` lacks `{fragment}`", error.message());
    }
    let error = client.submit_payment(wire::SubmitPaymentRequest { instruction: None }).await.unwrap_err();
    assert_eq!((error.code(), error.message()), (Code::InvalidArgument, "instruction: is required"));
    let error = client.get_payment(wire::GetPaymentRequest { payment_id: "nope".into() }).await.unwrap_err();
    assert_eq!((error.code(), error.message()), (Code::InvalidArgument, "payment_id: is not a UUID"));
    let unknown = "019a0000-0000-7000-8000-000000000000";
    let error = client.get_payment(wire::GetPaymentRequest { payment_id: unknown.into() }).await.unwrap_err();
    assert_eq!(error.code(), Code::NotFound);
    let error =
        client.list_payments(wire::ListPaymentsRequest { page_size: 5_000, ..Default::default() }).await.unwrap_err();
    assert_eq!(error.code(), Code::InvalidArgument);

    // Nothing was stored, and the key "bad" is still free: the good instruction settles under it.
    let listed = client.list_payments(wire::ListPaymentsRequest::default()).await.unwrap().into_inner();
    assert!(listed.payments.is_empty(), "refused input left payments behind: {:?}", listed.payments);
    assert_eq!(status_of(&submit(&mut client, good()).await.unwrap()), wire::PaymentStatus::Settled);
}
