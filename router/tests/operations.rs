//! Operating the real binary: the Prometheus metrics after real payments, readiness that follows
//! a ledger node going away and coming back, a graceful drain with payments in flight, and
//! configuration errors that name their key.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

mod support;
use support::{Launch, Process, free_port, read};

fn temp_dir(name: &str) -> PathBuf {
    let directory = std::env::temp_dir().join(format!("corridor-operations-{name}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

/// `GET path` over plain HTTP/1.1: (status code, body).
fn http_get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap();
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

const WALLETS: usize = 8;

/// A two-ledger network: e-HKD in the router's process, e-CNY at `cny_endpoint` or in process.
fn network(data_dir: &Path, metrics_port: u16, cny_endpoint: Option<&str>) -> String {
    let wallets = |ledger: &str, bank: &str, balance: &str| {
        (1..=WALLETS)
            .map(|n| format!("{{ address = \"{ledger}/{bank}.w{n:02}\", opening_balance = \"{balance}\" }}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let cny_endpoint = cny_endpoint.map(|endpoint| format!("endpoint = \"{endpoint}\"\n")).unwrap_or_default();
    format!(
        r#"
[server]
drain_timeout_ms = 20000

[storage]
data_dir = "{data_dir}"

[telemetry]
metrics_listen = "127.0.0.1:{metrics_port}"

[settlement]
prepare_timeout_ms = 2000

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"
{cny_endpoint}
[[participants]]
id = "bank-hk"
role = "bank"
accounts = [{hk}]

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [{cn}]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
accounts = [{{ address = "e-hkd/lp-one", opening_balance = "10000000.00" }}, {{ address = "e-cny/lp-one", opening_balance = "10000000.00" }}]

[[rates]]
provider = "lp-one"
pair = "CNY/HKD"
bid = "1.0850"
ask = "1.0900"

[[limits]]
jurisdiction = "HK"
currency = "HKD"
single_payment_max = "1000000.00"
"#,
        data_dir = data_dir.display(),
        hk = wallets("e-hkd", "bank-hk", "100000.00"),
        cn = wallets("e-cny", "bank-cn", "100000.00"),
    )
}

fn node_config(directory: &Path) -> PathBuf {
    let mut text = "[ledger]\nid = \"e-cny\"\ncurrency = \"CNY\"\njurisdiction = \"CN\"\n".to_owned();
    for n in 1..=WALLETS {
        text.push_str(&format!("\n[[accounts]]\nname = \"bank-cn.w{n:02}\"\nopening_balance = \"100000.00\"\n"));
    }
    text.push_str("\n[[accounts]]\nname = \"lp-one\"\nopening_balance = \"10000000.00\"\n");
    let path = directory.join("e-cny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn serve_args(config: &Path) -> Vec<String> {
    let listen = format!("127.0.0.1:{}", free_port());
    ["serve", "--insecure-dev", "--config", &config.display().to_string(), "--listen", &listen]
        .map(str::to_owned)
        .to_vec()
}

fn endpoint_of(args: &[String]) -> String {
    format!("http://{}", args.last().unwrap())
}

fn payment(key: &str, amount: &str, cross_border: bool, wallet: usize) -> wire::SubmitPaymentRequest {
    let payee = if cross_border { format!("e-cny/bank-cn.w{wallet:02}") } else { "e-hkd/bank-hk.w01".to_owned() };
    let payer =
        if cross_border || wallet != 1 { format!("e-hkd/bank-hk.w{wallet:02}") } else { "e-hkd/bank-hk.w02".into() };
    wire::SubmitPaymentRequest {
        instruction: Some(wire::PaymentInstruction {
            participant_id: "bank-hk".into(),
            idempotency_key: key.into(),
            payer,
            payee,
            amount: Some(wire::Money { currency: "HKD".into(), amount: amount.into() }),
            fixed_side: wire::FixedSide::Send as i32,
            ..wire::PaymentInstruction::default()
        }),
    }
}

async fn health(endpoint: &str, service: &str) -> i32 {
    let channel = Channel::from_shared(endpoint.to_owned()).unwrap().connect().await.unwrap();
    HealthClient::new(channel).check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status
}

/// Waits until `service`'s health is `expected`, at most `within`.
async fn await_health(endpoint: &str, service: &str, expected: ServingStatus, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let status = health(endpoint, service).await;
        if status == expected as i32 {
            return;
        }
        assert!(Instant::now() < deadline, "{service} is {status:?}, not {expected:?}, after {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metrics_address(router: &mut Process) -> SocketAddr {
    let line = router.line();
    line.trim().strip_prefix("corridor metrics on ").unwrap_or_else(|| panic!("printed {line:?}")).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_real_payments_and_readiness_follows_a_ledger_node() {
    let directory = temp_dir("ready");
    let node_port = free_port();
    let node_args: Vec<String> = [
        "ledger-node",
        "--insecure-dev",
        "--config",
        &node_config(&directory).display().to_string(),
        "--listen",
        &format!("127.0.0.1:{node_port}"),
        "--data-file",
        &directory.join("e-cny.log").display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut node = Process::start_with(&node_args, Launch::logging(&directory.join("node.log"), "info"));
    let config = directory.join("router.toml");
    let node_endpoint = format!("http://127.0.0.1:{node_port}");
    std::fs::write(&config, network(&directory.join("data"), free_port(), Some(&node_endpoint))).unwrap();
    let args = serve_args(&config);
    let endpoint = endpoint_of(&args);
    let mut router = Process::start_with(&args, Launch::logging(&directory.join("router.log"), "info"));
    let metrics = metrics_address(&mut router);

    // Ready: every dependency answers.
    await_health(&endpoint, "", ServingStatus::Serving, Duration::from_secs(5)).await;
    await_health(&endpoint, "corridor.v1.PaymentService", ServingStatus::Serving, Duration::from_secs(5)).await;
    let (status, body) = http_get(metrics, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("journal: ok") && body.contains("ledger e-cny: ok"), "{body}");
    assert_eq!(http_get(metrics, "/livez").0, 200);

    // Real payments: two settled (one cross-border to the node), one refused by the ledger.
    let mut client = PaymentServiceClient::connect(endpoint.clone()).await.unwrap();
    for (key, amount, cross_border) in [("m-1", "10.00", false), ("m-2", "20.00", true), ("m-3", "900000.00", false)] {
        client.submit_payment(payment(key, amount, cross_border, 2)).await.unwrap();
    }
    let (status, text) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no `{series}` in\n{text}"))
    };
    assert_eq!(value("corridor_payments_total{status=\"SETTLED\",reason=\"\"}"), 2.0);
    let rejected: f64 = text
        .lines()
        .filter(|line| line.starts_with("corridor_payments_total{status=\"REJECTED\""))
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(rejected, 1.0, "{text}");
    assert_eq!(value("corridor_stage_duration_seconds_count{stage=\"total\"}"), 3.0);
    assert_eq!(value("corridor_stage_duration_seconds_count{stage=\"prepare\"}"), 3.0);
    assert!(value("corridor_stage_duration_seconds_count{stage=\"compliance\"}") >= 3.0);
    assert_eq!(value("corridor_ledger_call_duration_seconds_count{ledger=\"e-cny\",call=\"prepare\"}"), 1.0);
    assert_eq!(value("corridor_ledger_call_duration_seconds_count{ledger=\"e-cny\",call=\"commit\"}"), 1.0);
    assert!(value("corridor_ledger_call_duration_seconds_count{ledger=\"e-hkd\",call=\"prepare\"}") >= 3.0);
    assert!(value("corridor_journal_flush_writes_count{store=\"embedded\"}") >= 3.0);
    assert_eq!(value("corridor_queue_depth{queue=\"payments_in_flight\"}"), 0.0);
    assert_eq!(value("corridor_in_doubt_payments"), 0.0);

    // The node goes away: not ready, naming it; alive all the same.
    drop(node);
    await_health(&endpoint, "", ServingStatus::NotServing, Duration::from_secs(10)).await;
    await_health(&endpoint, "corridor.v1.PaymentService", ServingStatus::NotServing, Duration::from_secs(5)).await;
    let (status, body) = http_get(metrics, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("ledger e-cny: ") && !body.contains("ledger e-cny: ok"), "{body}");
    assert!(body.contains("ledger e-hkd: ok"), "{body}");
    assert_eq!(http_get(metrics, "/livez").0, 200);
    // A prepare on it now fails: counted as that ledger's error.
    let _refused = client.submit_payment(payment("m-4", "5.00", true, 3)).await;
    let (_, text) = http_get(metrics, "/metrics");
    assert!(text.contains("corridor_ledger_errors_total{ledger=\"e-cny\",call=\"prepare\"} 1"), "{text}");

    // Back on the same port: ready again.
    node = Process::start_with(&node_args, Launch::logging(&directory.join("node-again.log"), "info"));
    await_health(&endpoint, "", ServingStatus::Serving, Duration::from_secs(10)).await;
    assert_eq!(http_get(metrics, "/readyz").0, 200);
    let log = read(&directory.join("router.log"));
    assert!(log.contains("unreachable") && log.contains("reachable again"), "{log}");
    drop(node);
    drop(router);
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_payments_in_flight_and_exits_zero() {
    const PAYMENTS: usize = 400;
    let directory = temp_dir("drain");
    let config = directory.join("router.toml");
    std::fs::write(&config, network(&directory.join("data"), free_port(), None)).unwrap();
    let args = serve_args(&config);
    let endpoint = endpoint_of(&args);
    let mut router = Process::start_with(&args, Launch::logging(&directory.join("router.log"), "info"));
    let metrics = metrics_address(&mut router);

    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(Channel::from_shared(endpoint.clone()).unwrap().connect().await.unwrap());
    }
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for index in 0..PAYMENTS {
        let mut client = PaymentServiceClient::new(channels[index % channels.len()].clone());
        let answered = answered.clone();
        tokio::spawn(async move {
            let request = payment(&format!("drain-{index:04}"), "1.00", index % 2 == 0, index % WALLETS + 1);
            let _receiver_gone =
                answered.send(client.submit_payment(request).await.map(|response| response.into_inner()));
        });
    }
    drop(answered);
    // SIGTERM once the first answers are in: most of the rest are in flight.
    let mut results = Vec::new();
    while results.len() < 20 {
        results.push(answers.recv().await.unwrap());
    }
    let (_, text) = http_get(metrics, "/metrics");
    let in_flight_at_signal: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("corridor_queue_depth{queue=\"payments_in_flight\"} "))
        .unwrap()
        .parse()
        .unwrap();
    router.signal("-TERM");
    // While it drains: new payments are refused, with a reason, and health says NOT_SERVING.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut late = PaymentServiceClient::new(channels[0].clone());
    let refusal = late.submit_payment(payment("drain-late", "1.00", false, 3)).await.unwrap_err();
    assert_eq!(refusal.code(), Code::Unavailable, "{refusal:?}");
    assert!(refusal.message().contains("draining"), "{refusal:?}");
    let mut health_client = HealthClient::new(channels[1].clone());
    let status = health_client.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status;
    assert_eq!(status, ServingStatus::NotServing as i32);
    while let Some(result) = answers.recv().await {
        results.push(result);
    }
    assert_eq!(router.wait(Duration::from_secs(30)), Some(0), "log:\n{}", read(&directory.join("router.log")));
    let log = read(&directory.join("router.log"));
    assert!(log.contains("draining: reporting NOT_SERVING"), "{log}");
    assert!(log.contains("draining: no payment in flight"), "payments were cut off:\n{log}");

    // Every call was answered with a final receipt or refused as the router drained: none cut.
    let mut settled = Vec::new();
    let mut refused = 0;
    for result in &results {
        match result {
            Ok(response) => {
                let payment = response.payment.as_ref().unwrap();
                assert_eq!(payment.status, wire::PaymentStatus::Settled as i32, "{payment:?}");
                settled.push(payment.payment_id.clone());
            }
            Err(status) if status.code() == Code::Unavailable => refused += 1,
            Err(status) => panic!("a call ended with {status:?}"),
        }
    }
    println!("drain: {} settled, {refused} refused; {in_flight_at_signal} in flight at the signal", settled.len());
    assert_eq!(results.len(), PAYMENTS);
    assert!(in_flight_at_signal > 0.0, "nothing was in flight at the signal: the test proved nothing");
    assert!(settled.len() > 20, "only the payments answered before the signal settled");

    // Restarted on the same files: recovery finds nothing to complete, and every payment the API
    // stored is final and was reported as settled.
    let mut router = Process::start_with(&args, Launch::logging(&directory.join("router-again.log"), "info"));
    let _metrics = metrics_address(&mut router);
    let log = read(&directory.join("router-again.log"));
    let recovery = log.lines().find(|line| line.contains("recovery done")).unwrap();
    for field in ["commits_completed=0", "aborted=0", "interrupted=0", "redriving=0"] {
        assert!(recovery.contains(field), "{recovery}");
    }
    let mut client = PaymentServiceClient::connect(endpoint.clone()).await.unwrap();
    let stored = client
        .list_payments(wire::ListPaymentsRequest {
            participant_id: String::new(),
            page_size: 1_000,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert!(stored.iter().all(|payment| payment.status == wire::PaymentStatus::Settled as i32));
    let mut stored_ids: Vec<String> = stored.into_iter().map(|payment| payment.payment_id).collect();
    stored_ids.sort();
    settled.sort();
    assert_eq!(stored_ids, settled, "the stored payments are not the ones reported settled");
    drop(router);
    let _ = std::fs::remove_dir_all(&directory);
}

#[test]
fn a_bad_configuration_stops_the_start_and_names_the_key() {
    let directory = temp_dir("config");
    for (edit, key) in [
        ("[server]\ndrain_timeout_ms = 20000", "server.drain_timeout_ms"),
        ("[settlement]\nprepare_timeout_ms = 2000", "settlement.prepare_timeout_ms"),
    ] {
        let zero = edit.replace("20000", "0").replace("2000", "0");
        let text = network(&directory.join("data"), free_port(), None).replace(edit, &zero);
        let config = directory.join("bad.toml");
        std::fs::write(&config, text).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_corridor"))
            .args(["serve", "--insecure-dev", "--config", &config.display().to_string()])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key) && stderr.contains("must be positive"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&directory);
}

/// Every span a fake OTLP/HTTP collector received: (service, trace id, span id, parent span id,
/// name, attributes as text).
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String, String, String, String)>>>;

/// A collector on a free port accepting `POST /v1/traces` (protobuf), as an OpenTelemetry
/// collector would.
async fn fake_collector() -> (SocketAddr, Received) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;

    let received: Received = Received::default();
    let store = received.clone();
    let hex = |bytes: &[u8]| bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let mut spans = store.lock().unwrap();
                for resource in request.resource_spans {
                    let service = resource
                        .resource
                        .iter()
                        .flat_map(|resource| &resource.attributes)
                        .find(|attribute| attribute.key == "service.name")
                        .map(|attribute| format!("{:?}", attribute.value))
                        .unwrap_or_default();
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            let attributes = format!("{:?}", span.attributes);
                            spans.push((
                                service.clone(),
                                hex(&span.trace_id),
                                hex(&span.span_id),
                                hex(&span.parent_span_id),
                                span.name,
                                attributes,
                            ));
                        }
                    }
                }
                // An empty ExportTraceServiceResponse.
                ([(axum::http::header::CONTENT_TYPE, "application/x-protobuf")], Vec::<u8>::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_one_trace_across_the_router_and_a_ledger_node() {
    let (collector, received) = fake_collector().await;
    let directory = temp_dir("traces");
    let node_port = free_port();
    let node_log = directory.join("node.log");
    let node_args: Vec<String> = [
        "ledger-node",
        "--insecure-dev",
        "--config",
        &node_config(&directory).display().to_string(),
        "--listen",
        &format!("127.0.0.1:{node_port}"),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut node = Process::start_with(
        &node_args,
        Launch::logging(&node_log, "info")
            .with_env("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{collector}"))
            .with_env("OTEL_BSP_SCHEDULE_DELAY", "100"),
    );
    let config = directory.join("router.toml");
    let text = network(&directory.join("data"), free_port(), Some(&format!("http://127.0.0.1:{node_port}")))
        .replace(
            "[telemetry]\n",
            &format!("[telemetry]\notlp_endpoint = \"http://{collector}\"\nservice_name = \"router-under-test\"\nlog_format = \"json\"\n"),
        );
    std::fs::write(&config, text).unwrap();
    let args = serve_args(&config);
    let endpoint = endpoint_of(&args);
    // The pipeline's per-payment debug line shows the JSON logs carry the trace.
    let mut router = Process::start_with(
        &args,
        Launch::logging(&directory.join("router.log"), "info,corridor_router::pipeline=debug"),
    );
    let _metrics = metrics_address(&mut router);

    let mut client = PaymentServiceClient::connect(endpoint.clone()).await.unwrap();
    let receipt =
        client.submit_payment(payment("traced-1", "25.00", true, 4)).await.unwrap().into_inner().payment.unwrap();
    assert_eq!(receipt.status, wire::PaymentStatus::Settled as i32);

    // Both flush what they hold as they stop.
    router.signal("-TERM");
    assert_eq!(router.wait(Duration::from_secs(20)), Some(0));
    node.signal("-TERM");
    assert_eq!(node.wait(Duration::from_secs(20)), Some(0));

    let spans = received.lock().unwrap().clone();
    let payment_span = spans
        .iter()
        .find(|span| span.4 == "payment" && span.5.contains(&receipt.payment_id))
        .unwrap_or_else(|| panic!("no payment span for {} among {spans:#?}", receipt.payment_id));
    let trace = payment_span.1.clone();
    assert!(payment_span.0.contains("router-under-test"), "{payment_span:?}");
    let in_trace: Vec<_> = spans.iter().filter(|span| span.1 == trace).collect();
    let names = |service: &str| -> Vec<String> {
        in_trace.iter().filter(|span| span.0.contains(service)).map(|span| span.4.clone()).collect()
    };
    let router_spans = names("router-under-test");
    for stage in
        ["payment", "validate", "idempotency", "route", "compliance", "journal.begin", "journal.decide", "receipt"]
    {
        assert!(router_spans.iter().any(|name| name == stage), "no {stage} span in {router_spans:?}");
    }
    assert!(router_spans.iter().any(|name| name == "compliance.hook"), "{router_spans:?}");
    // Prepare and commit on each of the two ledgers.
    for call in ["ledger.prepare", "ledger.commit"] {
        for ledger in ["e-hkd", "e-cny"] {
            assert!(
                in_trace
                    .iter()
                    .any(|span| span.4 == call && span.0.contains("router-under-test") && span.5.contains(ledger)),
                "no {call} on {ledger} in {in_trace:#?}"
            );
        }
    }
    // The node's own spans joined the payment's trace, under the router's calls to it.
    let node_spans = names("corridor-ledger-node-e-cny");
    assert!(node_spans.contains(&"ledger.prepare".to_owned()), "{node_spans:?} / {spans:#?}");
    assert!(node_spans.contains(&"ledger.commit".to_owned()), "{node_spans:?}");
    let router_prepare_ids: Vec<&String> = in_trace
        .iter()
        .filter(|span| span.4 == "ledger.prepare" && span.0.contains("router-under-test") && span.5.contains("e-cny"))
        .map(|span| &span.2)
        .collect();
    let node_prepare =
        in_trace.iter().find(|span| span.4 == "ledger.prepare" && span.0.contains("ledger-node")).unwrap();
    assert!(router_prepare_ids.contains(&&node_prepare.3), "the node's prepare is not a child of the router's");

    // JSON logs carry the trace id.
    let log = read(&directory.join("router.log"));
    assert!(log.lines().any(|line| line.starts_with('{') && line.contains(&trace)), "{log}");
    let _ = std::fs::remove_dir_all(&directory);
}

/// The configuration ops/deploy gives every replica loads, and is one replicas can share.
#[test]
fn the_deployment_configuration_is_one_replicas_can_share() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/deploy/router.toml");
    let config = corridor_router::config::Config::load(&path).unwrap();
    assert_eq!(config.storage.backend, corridor_router::config::StorageBackend::Postgres);
    assert!(config.ledgers.iter().all(|ledger| ledger.endpoint.is_some()), "a ledger would run inside each replica");
    assert!(config.tls.is_some() && config.feed.signing_key_file.is_some());
    assert!(config.telemetry.metrics_listen.is_some() && config.telemetry.otlp_endpoint.is_some());
    assert!(config.server.drain_timeout_ms < 45_000, "longer than the pods' termination grace period");
}
