//! Attacks on a real `corridor serve` over mutual TLS, each asserting the error and that nothing
//! changed: no client certificate, a certificate from another CA, a revoked certificate, one
//! participant debiting another, forged, tampered and replayed signatures, oversized messages, a
//! flood from one participant while another still pays, a regulator reading another
//! jurisdiction's feed; and the authorization matrix, every role against every call, over the
//! wire. The CA and every certificate are made with the `corridor pki` commands.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use corridor_router::tls::Role;
use corridor_router::transport::{ClientSecurity, TlsFiles};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_feed_client::ComplianceFeedClient;
use corridor_schemas::wire::v1::compliance_review_client::ComplianceReviewClient;
use corridor_schemas::wire::v1::fx_service_client::FxServiceClient;
use corridor_schemas::wire::v1::ledger_adapter_client::LedgerAdapterClient;
use corridor_schemas::wire::v1::operator_service_client::OperatorServiceClient;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use corridor_schemas::wire::v1::transaction_coordinator_client::TransactionCoordinatorClient;
use corridor_schemas::{ParticipantKey, PaymentInstruction};
use ring::signature::Ed25519KeyPair;
use tonic::Code;
use tonic::transport::Channel;

/// The network: two ledgers (e-AED in a `corridor ledger-node` process of its own, over mTLS),
/// two banks and a provider that sign, a bank to revoke, officers and regulators of both
/// jurisdictions. The keys, `{tls}` and `{aed_node}` are filled in per test.
const NETWORK: &str = r#"
[server]
participant_requests_per_s = 20
participant_burst = 20

{tls}

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-aed"
currency = "AED"
jurisdiction = "AE"
endpoint = "{aed_node}"

[[participants]]
id = "bank-a"
role = "bank"
signing_key = "{key:bank-a}"
accounts = [{ address = "e-hkd/bank-a", opening_balance = "1000.00" }]

[[participants]]
id = "bank-b"
role = "bank"
signing_key = "{key:bank-b}"
accounts = [{ address = "e-hkd/bank-b", opening_balance = "1000.00" }]

[[participants]]
id = "bank-c"
role = "bank"
signing_key = "{key:bank-c}"
accounts = [{ address = "e-hkd/bank-c", opening_balance = "1000.00" }]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
signing_key = "{key:lp-one}"
accounts = [
  { address = "e-hkd/lp-one", opening_balance = "100000.00" },
  { address = "e-aed/lp-one" },
]

[[rates]]
provider = "lp-one"
pair = "AED/HKD"
bid = "2.1000"
ask = "2.1300"

[sanctions]
jurisdictions = ["HK", "AE"]

[[compliance_officers]]
id = "officer-hk"
jurisdiction = "HK"

[[compliance_officers]]
id = "officer-ae"
jurisdiction = "AE"

[[regulators]]
id = "regulator-hk"
jurisdiction = "HK"

[[regulators]]
id = "regulator-ae"
jurisdiction = "AE"
"#;

const SIGNERS: [&str; 4] = ["bank-a", "bank-b", "bank-c", "lp-one"];

/// The e-AED node's own configuration: the provider's and a merchant's accounts.
const AED_NODE: &str = r#"
[ledger]
id = "e-aed"
currency = "AED"
jurisdiction = "AE"

[[accounts]]
name = "lp-one"
opening_balance = "100000.00"

[[accounts]]
name = "merchant"
opening_balance = "0"
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts the binary and returns it with the address its first line names.
fn spawn(args: &[&str], prefix: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corridor"))
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.trim().strip_prefix(prefix).unwrap_or_else(|| panic!("{line}")).to_owned();
    (child, address)
}

fn corridor(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_corridor")).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "corridor {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A network served over mTLS by a real `corridor serve`, with its CA in `dir/pki`.
struct SecureNetwork {
    dir: PathBuf,
    child: Child,
    node: Child,
    address: String,
    node_address: String,
    signers: HashMap<&'static str, Ed25519KeyPair>,
}

impl Drop for SecureNetwork {
    fn drop(&mut self) {
        for child in [&mut self.child, &mut self.node] {
            let _already_gone = child.kill();
            let _reaped = child.wait();
        }
        let _left_for_the_os = std::fs::remove_dir_all(&self.dir);
    }
}

impl SecureNetwork {
    fn start(test: &str) -> SecureNetwork {
        let dir = std::env::temp_dir().join(format!("corridor-security-{test}-{}", std::process::id()));
        let _stale = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pki = dir.join("pki");
        corridor(&["pki", "init", "--dir", pki.to_str().unwrap()]);

        let random = ring::rand::SystemRandom::new();
        let mut signers = HashMap::new();
        let mut text = NETWORK.to_owned();
        for participant in SIGNERS {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&random).unwrap();
            let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
            text = text.replace(&format!("{{key:{participant}}}"), &ParticipantKey::of(&key_pair).to_string());
            signers.insert(participant, key_pair);
        }
        let party = |id: &str, extension: &str| pki.join("parties").join(format!("{id}.{extension}"));
        let tls = format!(
            "[tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\ncrl = {:?}\n",
            pki.join("ca.pem"),
            party("router", "pem"),
            party("router", "key"),
            pki.join("crl.pem")
        );
        let (router_port, node_port) = (free_port(), free_port());
        let node_address = format!("127.0.0.1:{node_port}");
        let config = dir.join("network.toml");
        std::fs::write(&config, text.replace("{tls}", &tls).replace("{aed_node}", &node_address)).unwrap();
        corridor(&["pki", "issue-network", "--dir", pki.to_str().unwrap(), "--config", config.to_str().unwrap()]);

        let node_config = dir.join("e-aed.toml");
        std::fs::write(&node_config, AED_NODE).unwrap();
        let router_address = format!("127.0.0.1:{router_port}");
        let (node, node_address) = spawn(
            &[
                "ledger-node",
                "--config",
                node_config.to_str().unwrap(),
                "--listen",
                &node_address,
                "--coordinator",
                &router_address,
                "--tls-ca",
                pki.join("ca.pem").to_str().unwrap(),
                "--tls-crl",
                pki.join("crl.pem").to_str().unwrap(),
                "--tls-cert",
                party("e-aed", "pem").to_str().unwrap(),
                "--tls-key",
                party("e-aed", "key").to_str().unwrap(),
            ],
            "corridor ledger-node listening on ",
        );
        let (child, address) = spawn(
            &[
                "serve",
                "--listen",
                &router_address,
                "--config",
                config.to_str().unwrap(),
                "--data-dir",
                dir.join("data").to_str().unwrap(),
            ],
            "corridor listening on ",
        );
        SecureNetwork { dir, child, node, address, node_address, signers }
    }

    fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }

    fn files(&self, party: &str) -> TlsFiles {
        let prefix = self.pki().join("parties").join(party);
        TlsFiles {
            ca: self.pki().join("ca.pem"),
            cert: prefix.with_extension("pem"),
            key: prefix.with_extension("key"),
            crl: None,
        }
    }

    /// A new connection as `party` (its certificate from `corridor pki issue-network`).
    async fn connect(&self, party: &str) -> Channel {
        self.connect_with(&ClientSecurity::mtls(&self.files(party)).unwrap()).await.unwrap()
    }

    async fn connect_with(&self, security: &ClientSecurity) -> Result<Channel, tonic::transport::Error> {
        security.endpoint(&self.address)?.connect().await
    }

    /// A connection to the e-AED ledger node as `party`.
    async fn connect_node(&self, party: &str) -> Result<Channel, tonic::transport::Error> {
        ClientSecurity::mtls(&self.files(party)).unwrap().endpoint(&self.node_address)?.connect().await
    }

    /// The balance of `account` on the e-AED node, read with the router's certificate.
    async fn aed_balance(&self, account: &str) -> String {
        let mut node = LedgerAdapterClient::new(self.connect_node("router").await.unwrap());
        let balance = node.balance(wire::BalanceRequest { account: account.into() }).await.unwrap().into_inner();
        format!("{balance:?}")
    }

    async fn payments(&self, party: &str) -> PaymentServiceClient<Channel> {
        PaymentServiceClient::new(self.connect(party).await)
    }

    /// A payment of `amount` HKD from `payer`'s account to bank-b's (bank-a's when bank-b pays),
    /// sent as `participant` and signed now with `participant`'s key.
    fn instruction(&self, participant: &str, payer: &str, key: &str, amount: &str) -> wire::PaymentInstruction {
        let mut instruction = wire::PaymentInstruction {
            participant_id: participant.into(),
            idempotency_key: key.into(),
            payer: format!("e-hkd/{payer}"),
            payee: if payer == "bank-b" { "e-hkd/bank-a" } else { "e-hkd/bank-b" }.into(),
            amount: Some(wire::Money { currency: "HKD".into(), amount: amount.into() }),
            fixed_side: wire::FixedSide::Send as i32,
            reference: "security test".into(),
            ..Default::default()
        };
        sign(&mut instruction, &self.signers[participant], SystemTime::now());
        instruction
    }

    /// What an attack must not change: every receipt (as the operator sees them), the rates, and
    /// both regulators' feeds.
    async fn snapshot(&self) -> Snapshot {
        let mut operator = self.payments("operator").await;
        let payments = operator
            .list_payments(wire::ListPaymentsRequest { page_size: 1_000, ..Default::default() })
            .await
            .unwrap()
            .into_inner()
            .payments
            .into_iter()
            .map(|payment| (payment.payment_id, payment.status))
            .collect();
        let rates = FxServiceClient::new(self.connect("operator").await)
            .get_rates(wire::GetRatesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .rates
            .into_iter()
            .map(|rate| format!("{rate:?}"))
            .collect();
        let mut feeds = Vec::new();
        for regulator in ["regulator-hk", "regulator-ae"] {
            let page = ComplianceFeedClient::new(self.connect(regulator).await)
                .query_feed(wire::QueryFeedRequest {
                    regulator_id: regulator.into(),
                    page_size: 1_000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            feeds.push(page.records.len());
        }
        Snapshot { payments, rates, feeds }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    payments: Vec<(String, i32)>,
    rates: Vec<String>,
    feeds: Vec<usize>,
}

fn sign(instruction: &mut wire::PaymentInstruction, key_pair: &Ed25519KeyPair, at: SystemTime) {
    instruction.signed_at = None;
    instruction.signature = Vec::new();
    let domain = PaymentInstruction::try_from(instruction.clone()).unwrap();
    let signature = corridor_schemas::signature::sign(&domain, at, key_pair).unwrap();
    instruction.signed_at = Some(at.into());
    instruction.signature = signature.to_vec();
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

/// A connection that cannot be made or a call that fails on it: what a refused handshake gives a
/// client (the server closes the connection once it has seen the certificate, or the lack of one).
async fn refused(network: &SecureNetwork, security: &ClientSecurity) -> Option<String> {
    let channel = match network.connect_with(security).await {
        Ok(channel) => channel,
        Err(error) => return Some(format!("connect: {error}")),
    };
    match FxServiceClient::new(channel).get_rates(wire::GetRatesRequest::default()).await {
        Ok(_) => None,
        Err(status) => Some(format!("call: {status}")),
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn a_connection_without_a_certificate_of_this_network_is_refused() {
    let network = SecureNetwork::start("strangers");
    let before = network.snapshot().await;

    // No client certificate at all: trusts the CA but presents nothing.
    let anonymous = ClientSecurity::Mtls(
        tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(read(&network.pki().join("ca.pem")))),
    );
    assert!(refused(&network, &anonymous).await.is_some(), "a client without a certificate was served");

    // A certificate for `bank-a` from another CA, whose holder trusts our CA.
    let other = network.dir.join("other-ca");
    corridor(&["pki", "init", "--dir", other.to_str().unwrap()]);
    let prefix = other.join("bank-a");
    corridor(&[
        "pki",
        "issue",
        "--dir",
        other.to_str().unwrap(),
        "--party",
        "bank-a",
        "--role",
        "participant",
        "--out",
        prefix.to_str().unwrap(),
    ]);
    let impostor = ClientSecurity::mtls_from_pem(
        &read(&network.pki().join("ca.pem")),
        &read(&prefix.with_extension("pem")),
        &read(&prefix.with_extension("key")),
    );
    assert!(refused(&network, &impostor).await.is_some(), "a certificate from another CA was served");

    // Plain text to a TLS port.
    assert!(refused(&network, &ClientSecurity::InsecureDev).await.is_some(), "plain text was served");

    // And the real bank-a is served.
    assert!(refused(&network, &ClientSecurity::mtls(&network.files("bank-a")).unwrap()).await.is_none());
    assert_eq!(network.snapshot().await, before);
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_without_a_restart() {
    let network = SecureNetwork::start("revoked");
    let bank_c = ClientSecurity::mtls(&network.files("bank-c")).unwrap();
    assert!(refused(&network, &bank_c).await.is_none(), "bank-c is served before its revocation");

    corridor(&["pki", "revoke", "--dir", network.pki().to_str().unwrap(), "--party", "bank-c"]);
    let before = network.snapshot().await;
    // The router re-reads the CRL every few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        if let Some(reason) = refused(&network, &bank_c).await {
            break reason;
        }
        assert!(Instant::now() < deadline, "bank-c is still served 20 s after its revocation");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // Nor can it pay, signed as it is.
    let mut instruction = network.instruction("bank-c", "bank-c", "revoked-pays", "10.00");
    sign(&mut instruction, &network.signers["bank-c"], SystemTime::now());
    if let Ok(channel) = network.connect_with(&bank_c).await {
        let result = submit(&mut PaymentServiceClient::new(channel), instruction).await;
        assert!(result.is_err(), "a revoked participant paid: {result:?}");
    }
    assert_eq!(network.snapshot().await, before, "refused as {reason}");
    // Everyone else still is served.
    assert!(refused(&network, &ClientSecurity::mtls(&network.files("bank-a")).unwrap()).await.is_none());
}

#[tokio::test]
async fn a_participant_cannot_debit_another_participants_account() {
    let network = SecureNetwork::start("debit-another");
    let mut bank_a = network.payments("bank-a").await;
    let before = network.snapshot().await;

    // bank-a's certificate, claiming to be bank-b, signed with bank-b's key even.
    let claimed = network.instruction("bank-b", "bank-b", "claims-b", "10.00");
    let status = submit(&mut bank_a, claimed).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("corridor://participant/bank-a"), "{}", status.message());

    // As itself, from bank-b's account.
    let from_b = network.instruction("bank-a", "bank-b", "from-b", "10.00");
    let status = submit(&mut bank_a, from_b).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("does not own the payer account"), "{}", status.message());

    // bank-a cannot read bank-b's payment either, nor list bank-b's.
    let paid = submit(&mut network.payments("bank-b").await, network.instruction("bank-b", "bank-b", "b-pays", "1.00"))
        .await
        .unwrap();
    let after_b_paid = network.snapshot().await;
    assert_ne!(after_b_paid, before);
    let status = bank_a.get_payment(wire::GetPaymentRequest { payment_id: paid.payment_id.clone() }).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = bank_a
        .list_payments(wire::ListPaymentsRequest { participant_id: "bank-b".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Its own list is its own: empty.
    let own = bank_a.list_payments(wire::ListPaymentsRequest::default()).await.unwrap().into_inner();
    assert!(own.payments.is_empty(), "{:?}", own.payments);
    assert_eq!(network.snapshot().await, after_b_paid);
}

#[tokio::test]
async fn forged_tampered_unsigned_and_replayed_instructions_are_refused() {
    let network = SecureNetwork::start("signatures");
    let mut bank_a = network.payments("bank-a").await;
    let before = network.snapshot().await;

    let refused_as = |result: Result<wire::Payment, tonic::Status>, code: Code, what: &str| {
        let status = result.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
    };
    // Signed with another participant's key.
    let mut forged = network.instruction("bank-a", "bank-a", "forged", "10.00");
    sign(&mut forged, &network.signers["bank-b"], SystemTime::now());
    refused_as(submit(&mut bank_a, forged).await, Code::Unauthenticated, "a forged signature");
    // Signed, then the amount changed.
    let mut tampered = network.instruction("bank-a", "bank-a", "tampered", "10.00");
    tampered.amount = Some(wire::Money { currency: "HKD".into(), amount: "900.00".into() });
    refused_as(submit(&mut bank_a, tampered).await, Code::Unauthenticated, "a tampered instruction");
    // Not signed at all.
    let mut unsigned = network.instruction("bank-a", "bank-a", "unsigned", "10.00");
    unsigned.signature = Vec::new();
    unsigned.signed_at = None;
    refused_as(submit(&mut bank_a, unsigned).await, Code::Unauthenticated, "an unsigned instruction");
    // A malformed signature.
    let mut short = network.instruction("bank-a", "bank-a", "short", "10.00");
    short.signature.truncate(10);
    refused_as(submit(&mut bank_a, short).await, Code::InvalidArgument, "a 10-byte signature");
    // Signed ten minutes ago: outside the window.
    let mut stale = network.instruction("bank-a", "bank-a", "stale", "10.00");
    sign(&mut stale, &network.signers["bank-a"], SystemTime::now() - Duration::from_secs(600));
    refused_as(submit(&mut bank_a, stale).await, Code::Unauthenticated, "a signature outside the window");
    // A signature lifted onto another idempotency key (the signature binds the key).
    let original = network.instruction("bank-a", "bank-a", "original", "10.00");
    let mut lifted = original.clone();
    lifted.idempotency_key = "lifted".into();
    refused_as(submit(&mut bank_a, lifted).await, Code::Unauthenticated, "a signature moved to another key");
    assert_eq!(network.snapshot().await, before, "a refused instruction changed something");

    // The genuine instruction pays once; replaying it exactly returns the same payment.
    let first = submit(&mut bank_a, original.clone()).await.unwrap();
    assert_eq!(status_of(&first), wire::PaymentStatus::Settled);
    let after = network.snapshot().await;
    let replayed = submit(&mut bank_a, original).await.unwrap();
    assert_eq!(replayed.payment_id, first.payment_id);
    assert_eq!(network.snapshot().await, after, "a replay changed something");
    assert_eq!(after.payments.len(), before.payments.len() + 1);
}

#[tokio::test]
async fn an_oversized_message_is_refused_before_it_is_decoded() {
    let network = SecureNetwork::start("oversized");
    let mut bank_a = network.payments("bank-a").await;
    let before = network.snapshot().await;
    let mut huge = network.instruction("bank-a", "bank-a", "huge", "10.00");
    huge.reference = "x".repeat(1 << 20);
    let status = submit(&mut bank_a, huge).await.unwrap_err();
    assert!(matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted), "{status:?}");
    let mut rates = FxServiceClient::new(network.connect("lp-one").await);
    let flood_of_rates = wire::PublishRatesRequest {
        provider_id: "lp-one".into(),
        rates: vec![wire::RateEntry { pair: "AED/HKD".repeat(8), ..Default::default() }; 10_000],
    };
    let status = rates.publish_rates(flood_of_rates).await.unwrap_err();
    assert!(matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted), "{status:?}");
    assert_eq!(network.snapshot().await, before);
    // The connection is still good for a normal payment.
    let paid = submit(&mut bank_a, network.instruction("bank-a", "bank-a", "normal", "10.00")).await.unwrap();
    assert_eq!(status_of(&paid), wire::PaymentStatus::Settled);
}

#[tokio::test]
async fn a_flood_from_one_participant_does_not_stop_another() {
    let network = SecureNetwork::start("flood");
    let flooder = network.payments("bank-b").await;
    // 200 signed payments from bank-b at once, at a limit of 20/s with a burst of 20.
    let instructions: Vec<_> =
        (0..200).map(|index| network.instruction("bank-b", "bank-b", &format!("flood-{index}"), "0.01")).collect();
    let flood = tokio::spawn(async move {
        let calls = instructions.into_iter().map(|instruction| {
            let mut client = flooder.clone();
            async move { submit(&mut client, instruction).await }
        });
        futures::future::join_all(calls).await
    });
    // Meanwhile bank-a pays, one at a time.
    let mut bank_a = network.payments("bank-a").await;
    for index in 0..5 {
        let paid =
            submit(&mut bank_a, network.instruction("bank-a", "bank-a", &format!("steady-{index}"), "1.00")).await;
        assert_eq!(status_of(&paid.unwrap()), wire::PaymentStatus::Settled);
    }
    let results = flood.await.unwrap();
    let exhausted: Vec<_> = results.iter().filter_map(|result| result.as_ref().err()).collect();
    let settled = results.iter().filter(|result| result.is_ok()).count();
    assert!(exhausted.iter().all(|status| status.code() == Code::ResourceExhausted), "{exhausted:?}");
    assert!(exhausted.len() >= 150, "only {} of 200 refused", exhausted.len());
    assert!(settled >= 20, "the burst was not served: {settled}");
    // Exactly the accepted ones exist: the refused left nothing behind.
    let snapshot = network.snapshot().await;
    assert_eq!(snapshot.payments.len(), settled + 5);
}

#[tokio::test]
async fn a_regulator_reads_only_its_own_jurisdictions_feed_and_an_officer_decides_only_its_own() {
    let network = SecureNetwork::start("regulators");
    let before = network.snapshot().await;
    let mut hk = ComplianceFeedClient::new(network.connect("regulator-hk").await);
    for regulator in ["regulator-ae", "regulator-xx"] {
        let status = hk
            .query_feed(wire::QueryFeedRequest { regulator_id: regulator.into(), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{regulator}: {status:?}");
        let status = hk
            .subscribe(wire::SubscribeFeedRequest { regulator_id: regulator.into(), from_sequence: 1 })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{regulator}: {status:?}");
        let status =
            hk.get_checkpoint(wire::GetCheckpointRequest { regulator_id: regulator.into() }).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{regulator}: {status:?}");
    }
    let mut officer = ComplianceReviewClient::new(network.connect("officer-hk").await);
    let status = officer
        .list_held_payments(wire::ListHeldPaymentsRequest { officer_id: "officer-ae".into() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(network.snapshot().await, before);
}

/// Every role's certificate against every call of the router, each naming the caller itself
/// where the call names someone: allowed calls get past authorization (they may still fail for
/// other reasons, never PERMISSION_DENIED), the rest get PERMISSION_DENIED.
#[tokio::test]
async fn the_authorization_matrix_holds_over_the_wire() {
    let network = SecureNetwork::start("matrix");
    let paid = submit(&mut network.payments("bank-a").await, network.instruction("bank-a", "bank-a", "seed", "1.00"))
        .await
        .unwrap();
    let parties = [
        (Role::Participant, "bank-a"),
        (Role::LiquidityProvider, "lp-one"),
        (Role::LedgerNode, "e-hkd"),
        (Role::Regulator, "regulator-hk"),
        (Role::Officer, "officer-hk"),
        (Role::Operator, "operator"),
        (Role::Router, "router"),
    ];
    let calls: [(&str, &[Role]); 14] = [
        ("SubmitPayment", &[Role::Participant, Role::LiquidityProvider]),
        ("GetPayment of bank-a's", &[Role::Participant, Role::Operator]),
        ("ListPayments", &[Role::Participant, Role::LiquidityProvider, Role::Operator]),
        ("QuoteFx", &[Role::Participant, Role::LiquidityProvider]),
        ("PublishRates", &[Role::LiquidityProvider]),
        ("GetRates", &Role::ALL),
        ("ListHeldPayments", &[Role::Officer]),
        ("DecideHeldPayment", &[Role::Officer]),
        ("Subscribe", &[Role::Regulator]),
        ("QueryFeed", &[Role::Regulator]),
        ("GetCheckpoint", &[Role::Regulator]),
        ("ListCheckpoints", &[Role::Regulator]),
        ("ReloadSanctions", &[Role::Operator]),
        ("ResolveTransaction", &[Role::LedgerNode]),
    ];
    let mut wrong = Vec::new();
    let mut cells = 0;
    for (role, me) in parties {
        let channel = network.connect(me).await;
        for (call, allowed) in calls {
            let code = match call_as(&network, channel.clone(), me, call, &paid.payment_id).await {
                Ok(()) => Code::Ok,
                Err(status) => status.code(),
            };
            cells += 1;
            let denied = code == Code::PermissionDenied;
            if denied == allowed.contains(&role) {
                wrong.push(format!("{call} by {role} ({me}): {code:?}"));
            }
        }
    }
    assert_eq!(cells, 7 * 14);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

async fn call_as(
    network: &SecureNetwork,
    channel: Channel,
    me: &str,
    call: &str,
    payment_id: &str,
) -> Result<(), tonic::Status> {
    let mut payments = PaymentServiceClient::new(channel.clone());
    let mut fx = FxServiceClient::new(channel.clone());
    let mut review = ComplianceReviewClient::new(channel.clone());
    let mut feed = ComplianceFeedClient::new(channel.clone());
    let regulator_id = me.to_owned();
    match call {
        "SubmitPayment" => {
            let mut instruction = wire::PaymentInstruction {
                participant_id: me.into(),
                idempotency_key: format!("matrix-{me}"),
                payer: format!("e-hkd/{me}"),
                payee: "e-hkd/bank-b".into(),
                amount: Some(wire::Money { currency: "HKD".into(), amount: "1.00".into() }),
                fixed_side: wire::FixedSide::Send as i32,
                ..Default::default()
            };
            if let Some(key_pair) = network.signers.get(me) {
                sign(&mut instruction, key_pair, SystemTime::now());
            }
            payments.submit_payment(wire::SubmitPaymentRequest { instruction: Some(instruction) }).await.map(drop)
        }
        "GetPayment of bank-a's" => {
            payments.get_payment(wire::GetPaymentRequest { payment_id: payment_id.into() }).await.map(drop)
        }
        "ListPayments" => payments.list_payments(wire::ListPaymentsRequest::default()).await.map(drop),
        "QuoteFx" => fx
            .quote_fx(wire::QuoteFxRequest {
                participant_id: me.into(),
                payer: format!("e-hkd/{me}"),
                payee: "e-aed/lp-one".into(),
                amount: Some(wire::Money { currency: "HKD".into(), amount: "1.00".into() }),
                fixed_side: wire::FixedSide::Send as i32,
            })
            .await
            .map(drop),
        "PublishRates" => {
            fx.publish_rates(wire::PublishRatesRequest { provider_id: me.into(), rates: Vec::new() }).await.map(drop)
        }
        "GetRates" => fx.get_rates(wire::GetRatesRequest::default()).await.map(drop),
        "ListHeldPayments" => {
            review.list_held_payments(wire::ListHeldPaymentsRequest { officer_id: me.into() }).await.map(drop)
        }
        "DecideHeldPayment" => review
            .decide_held_payment(wire::DecideHeldPaymentRequest {
                officer_id: me.into(),
                payment_id: payment_id.into(),
                verdict: wire::ReviewVerdict::Approve as i32,
                note: String::new(),
            })
            .await
            .map(drop),
        "Subscribe" => feed.subscribe(wire::SubscribeFeedRequest { regulator_id, from_sequence: 1 }).await.map(drop),
        "QueryFeed" => feed
            .query_feed(wire::QueryFeedRequest { regulator_id, page_size: 10, ..Default::default() })
            .await
            .map(drop),
        "GetCheckpoint" => feed.get_checkpoint(wire::GetCheckpointRequest { regulator_id }).await.map(drop),
        "ListCheckpoints" => feed.list_checkpoints(wire::ListCheckpointsRequest { regulator_id }).await.map(drop),
        "ReloadSanctions" => {
            OperatorServiceClient::new(channel).reload_sanctions(wire::ReloadSanctionsRequest {}).await.map(drop)
        }
        "ResolveTransaction" => TransactionCoordinatorClient::new(channel)
            .resolve_transaction(wire::ResolveTransactionRequest { ledger_id: me.into(), transaction_ids: Vec::new() })
            .await
            .map(drop),
        other => panic!("no call {other}"),
    }
}

/// The e-AED ledger runs in a node of its own: the router reaches it over mTLS with its router
/// certificate and settles through it; nobody else may call the ledger protocol.
#[tokio::test]
async fn a_ledger_node_serves_the_router_and_nobody_else() {
    let network = SecureNetwork::start("ledger-node");
    let merchant_before = network.aed_balance("merchant").await;

    // A participant's certificate, straight to the node: refused by the node's authorization.
    let mut as_bank = LedgerAdapterClient::new(network.connect_node("bank-a").await.unwrap());
    let status = as_bank.describe(wire::DescribeRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("corridor://participant/bank-a"), "{}", status.message());
    let status = as_bank.balance(wire::BalanceRequest { account: "merchant".into() }).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    // Plain text to the node: no answer.
    let plain = ClientSecurity::InsecureDev.endpoint(&network.node_address).unwrap().connect().await;
    if let Ok(channel) = plain {
        assert!(LedgerAdapterClient::new(channel).describe(wire::DescribeRequest {}).await.is_err());
    }
    assert_eq!(network.aed_balance("merchant").await, merchant_before);

    // A cross-border payment settles with its e-AED leg on the node, over mTLS.
    let mut instruction = network.instruction("bank-a", "bank-a", "to-dubai", "100.00");
    instruction.payee = "e-aed/merchant".into();
    sign(&mut instruction, &network.signers["bank-a"], SystemTime::now());
    let paid = submit(&mut network.payments("bank-a").await, instruction).await.unwrap();
    assert_eq!(status_of(&paid), wire::PaymentStatus::Settled, "{paid:?}");
    assert_ne!(network.aed_balance("merchant").await, merchant_before);

    // The node asks the coordinator only as itself.
    let mut as_node = TransactionCoordinatorClient::new(network.connect("e-aed").await);
    let status = as_node
        .resolve_transaction(wire::ResolveTransactionRequest {
            ledger_id: "e-hkd".into(),
            transaction_ids: vec![paid.payment_id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let answer = as_node
        .resolve_transaction(wire::ResolveTransactionRequest {
            ledger_id: "e-aed".into(),
            transaction_ids: vec![paid.payment_id.clone()],
        })
        .await;
    assert!(answer.is_ok(), "{answer:?}");
}
