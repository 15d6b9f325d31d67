//! `corridor-loadtest`: a closed-loop load generator for a running Corridor router.
//!
//! It opens `--connections` HTTP/2 connections to the router's gRPC API, then keeps
//! `--concurrency` SubmitPayment calls in flight until `--requests` have been answered, every one
//! the same instruction (`--participant`, `--payer`, `--payee`, `--amount` `--currency`,
//! `--fixed-side`) under its own idempotency key `<key-prefix>-<n>`. A progress bar runs on stderr;
//! at the end it prints the throughput, the latency percentiles and the outcomes by status and
//! reason code on stdout, and with `--json` writes the same figures as a flat JSON object.
//!
//! It is an outside client: it depends on nothing but the wire types of `corridor-schemas`.
//! It sends the instruction as given, without validating it, so the router's refusal paths can be
//! loaded as well as its settlement path; only the idempotency keys it makes itself are checked.
//! Reusing a `--key-prefix` replays earlier keys, which loads the idempotent-replay path instead.
//!
//! What it does not do (yet): there is no open-loop mode (requests at a fixed arrival rate, which
//! is what shows latency under overload without coordinated omission) and no mix options (many
//! payers, payees, amounts and currencies in one run); both come in a later issue. Every request
//! debits the same payer account, so this is a hot-account benchmark. It does not warm up, retry,
//! speak TLS, or check the ledgers afterwards (`corridor demo` reconciles; this only counts).
//!
//! Exit code: 0 when the run completed, whatever the outcomes (rejections are answers, not
//! errors); 1 on bad options or when it cannot connect; 2 when the run completed but some requests
//! lost their connection (gRPC `UNAVAILABLE`).

mod closed_loop;
mod outcome;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use corridor_schemas::IdempotencyKey;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use indicatif::{ProgressBar, ProgressStyle};
use tonic::transport::{Channel, Endpoint};

use crate::report::{Figures, RunSettings};

/// Bounds on the options, so a typo cannot ask for a billion payments or a million sockets.
const REQUESTS_MAX: u64 = 1_000_000;
const CONCURRENCY_MAX: u64 = 4_096;
const CONNECTIONS_MAX: u64 = 64;

/// How long to wait for each connection to the router before giving up.
const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// How long one SubmitPayment may take before the client cancels it and counts it as an error;
/// below the histogram's ceiling so every latency is recorded as measured.
const REQUEST_TIMEOUT_MS: u64 = 30_000;
const _: () = assert!(REQUEST_TIMEOUT_MS * 1_000 < closed_loop::LATENCY_MAX_US);

/// The exit code of a run that completed but lost its connection for some requests.
const EXIT_CONNECTION_LOST: u8 = 2;

const PROGRESS_TEMPLATE: &str = "{elapsed_precise} [{bar:40}] {pos}/{len} requests, {per_sec}, eta {eta}";

#[derive(Debug, Parser)]
#[command(
    name = "corridor-loadtest",
    version,
    about = "Closed-loop load generator for a running Corridor router (gRPC SubmitPayment)"
)]
struct Cli {
    /// The router's gRPC endpoint; plain HTTP/2 (this build has no TLS).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// The sending participant; it must own the payer account.
    #[arg(long, default_value = "bank-hk")]
    participant: String,
    /// The payer's address, "<ledger-id>/<account>".
    #[arg(long, default_value = "e-hkd/bank-hk.w01")]
    payer: String,
    /// The payee's address, "<ledger-id>/<account>".
    #[arg(long, default_value = "e-cny/bank-cn.w01")]
    payee: String,
    /// ISO 4217 code of the amount.
    #[arg(long, default_value = "HKD")]
    currency: String,
    /// Decimal amount, sent exactly as written.
    #[arg(long, default_value = "10.00")]
    amount: String,
    /// Which side of a cross-currency payment the amount fixes.
    #[arg(long, value_enum, default_value_t = FixedSideArgument::Send)]
    fixed_side: FixedSideArgument,
    /// Requests to send in all (1 to 1,000,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=REQUESTS_MAX))]
    requests: u64,
    /// Requests in flight at once (1 to 4,096).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=CONCURRENCY_MAX))]
    concurrency: u64,
    /// HTTP/2 connections; requests are spread over them round-robin (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=CONNECTIONS_MAX))]
    connections: u64,
    /// Also write the report as a flat JSON object to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Prefix of the idempotency keys `<prefix>-<n>`; by default made from the current time and
    /// process id, so reruns do not collide with earlier keys.
    #[arg(long)]
    key_prefix: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FixedSideArgument {
    /// The payer sends exactly the amount.
    Send,
    /// The payee receives exactly the amount.
    Receive,
}

impl FixedSideArgument {
    fn to_wire(self) -> wire::FixedSide {
        match self {
            FixedSideArgument::Send => wire::FixedSide::Send,
            FixedSideArgument::Receive => wire::FixedSide::Receive,
        }
    }

    fn label(self) -> &'static str {
        match self {
            FixedSideArgument::Send => "send",
            FixedSideArgument::Receive => "receive",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let key_prefix = match cli.key_prefix {
        Some(key_prefix) => key_prefix,
        None => default_key_prefix(unix_time_ms(), std::process::id()),
    };
    check_key_prefix(&key_prefix, cli.requests)?;
    anyhow::ensure!(cli.target.starts_with("http://"), "--target must be an http:// URL (this build has no TLS)");
    let concurrency = usize::try_from(cli.concurrency).context("--concurrency does not fit this machine")?;
    let connections = usize::try_from(cli.connections).context("--connections does not fit this machine")?;

    let settings = RunSettings {
        target: cli.target,
        participant: cli.participant,
        payer: cli.payer,
        payee: cli.payee,
        amount: cli.amount,
        currency: cli.currency,
        fixed_side: cli.fixed_side.label(),
        key_prefix,
        requests: cli.requests,
        concurrency,
        connections,
    };
    let clients = connect(&settings.target, connections).await?;
    let plan = closed_loop::Plan {
        instruction: instruction_template(&settings, cli.fixed_side),
        key_prefix: settings.key_prefix.clone(),
        requests: settings.requests,
        concurrency,
    };

    let progress = ProgressBar::new(settings.requests);
    progress
        .set_style(ProgressStyle::with_template(PROGRESS_TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar()));
    let measurement = closed_loop::run(clients, plan, &progress).await;
    progress.finish_and_clear();
    let measurement = measurement?;

    let figures = Figures::new(&measurement.latency_us, measurement.wall_time);
    println!("{}", report::headline(&settings));
    println!("{}", report::summary_table(&settings, &figures));
    println!("{}", report::outcome_table(&measurement.outcomes));
    if let Some(path) = &cli.json {
        std::fs::write(path, report::json_report(&settings, &figures, &measurement.outcomes))
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
    }

    let connection_failures = measurement.outcomes.connection_failures();
    if connection_failures > 0 {
        eprintln!(
            "error: {connection_failures} of {} requests lost their connection to {} (gRPC UNAVAILABLE)",
            figures.completed, settings.target
        );
        return Ok(ExitCode::from(EXIT_CONNECTION_LOST));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens `connections` HTTP/2 connections to `target`, failing if any cannot be made.
async fn connect(target: &str, connections: usize) -> anyhow::Result<Vec<PaymentServiceClient<Channel>>> {
    let endpoint = Endpoint::from_shared(target.to_owned())
        .with_context(|| format!("--target {target} is not a valid URL"))?
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(REQUEST_TIMEOUT_MS));
    let mut clients = Vec::with_capacity(connections);
    for number in 1..=connections {
        // Each `connect` makes its own connection; clones of a channel would share one.
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to {target} (connection {number} of {connections})"))?;
        clients.push(PaymentServiceClient::new(channel));
    }
    Ok(clients)
}

/// The instruction every request sends, with an empty idempotency key the loop fills in.
fn instruction_template(settings: &RunSettings, fixed_side: FixedSideArgument) -> wire::PaymentInstruction {
    wire::PaymentInstruction {
        participant_id: settings.participant.clone(),
        idempotency_key: String::new(),
        payer: settings.payer.clone(),
        payee: settings.payee.clone(),
        amount: Some(wire::Money { currency: settings.currency.clone(), amount: settings.amount.clone() }),
        fixed_side: fixed_side.to_wire() as i32,
        reference: String::new(),
        quote_id: String::new(),
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: Vec::new(),
    }
}

/// A prefix no earlier run used: the start time in milliseconds and the process id.
fn default_key_prefix(unix_time_ms: u128, process_id: u32) -> String {
    format!("lt-{unix_time_ms}-{process_id}")
}

fn unix_time_ms() -> u128 {
    // A clock before 1970 only makes the prefix less unique; the process id still differs.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since_epoch| since_epoch.as_millis())
}

/// Checks that every key of the run is a valid idempotency key; the last one is the longest.
fn check_key_prefix(key_prefix: &str, requests: u64) -> anyhow::Result<()> {
    let longest = closed_loop::idempotency_key(key_prefix, requests.saturating_sub(1));
    IdempotencyKey::new(longest.as_str())
        .with_context(|| format!("--key-prefix {key_prefix:?} makes invalid idempotency keys such as {longest:?}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_the_documented_defaults() {
        let cli = Cli::try_parse_from(["corridor-loadtest"]).unwrap();
        assert_eq!(cli.target, "http://127.0.0.1:50051");
        assert_eq!(cli.fixed_side, FixedSideArgument::Send);
        assert_eq!((cli.requests, cli.concurrency, cli.connections), (10_000, 64, 4));
        assert_eq!((cli.json, cli.key_prefix), (None, None));
    }

    #[test]
    fn options_are_bounded() {
        fn check(arguments: &[&str], accepted: bool) {
            let parsed = Cli::try_parse_from(std::iter::once("corridor-loadtest").chain(arguments.iter().copied()));
            assert_eq!(parsed.is_ok(), accepted, "{arguments:?}: {parsed:?}");
        }
        let requests_max = REQUESTS_MAX.to_string();
        let requests_over = (REQUESTS_MAX + 1).to_string();
        let concurrency_max = CONCURRENCY_MAX.to_string();
        let concurrency_over = (CONCURRENCY_MAX + 1).to_string();
        let connections_max = CONNECTIONS_MAX.to_string();
        let connections_over = (CONNECTIONS_MAX + 1).to_string();
        check(&["--requests", &requests_max], true);
        check(&["--requests", &requests_over], false);
        check(&["--requests", "0"], false);
        check(&["--concurrency", &concurrency_max], true);
        check(&["--concurrency", &concurrency_over], false);
        check(&["--concurrency", "0"], false);
        check(&["--connections", &connections_max], true);
        check(&["--connections", &connections_over], false);
        check(&["--connections", "0"], false);
        check(&["--fixed-side", "receive"], true);
        check(&["--fixed-side", "both"], false);
        check(&["--amount", "12.345"], true);
    }

    #[test]
    fn key_prefixes_must_make_valid_idempotency_keys() {
        fn check(key_prefix: &str, requests: u64, accepted: bool) {
            assert_eq!(check_key_prefix(key_prefix, requests).is_ok(), accepted, "{key_prefix:?} × {requests}");
        }
        check(&default_key_prefix(1_767_225_600_000, 4_194_304), REQUESTS_MAX, true);
        check("run-7", 1, true);
        check("with space", 1, false);
        check("", 1, true);
        // 128 characters is the key's limit: "<121 characters>-999999" is 128.
        check(&"k".repeat(121), 1_000_000, true);
        check(&"k".repeat(122), 1_000_000, false);
        check(&"k".repeat(122), 10, true);
    }

    #[test]
    fn default_key_prefix_is_time_and_process() {
        assert_eq!(default_key_prefix(1_767_225_600_000, 42), "lt-1767225600000-42");
    }

    #[test]
    fn the_template_sends_the_options_as_given() {
        let cli = Cli::try_parse_from([
            "corridor-loadtest",
            "--participant",
            "bank-th",
            "--payer",
            "e-thb/bank-th.w01",
            "--payee",
            "e-hkd/bank-hk.w02",
            "--currency",
            "HKD",
            "--amount",
            "0100.5",
            "--fixed-side",
            "receive",
        ])
        .unwrap();
        let settings = RunSettings {
            target: cli.target,
            participant: cli.participant,
            payer: cli.payer,
            payee: cli.payee,
            amount: cli.amount,
            currency: cli.currency,
            fixed_side: cli.fixed_side.label(),
            key_prefix: "run".to_owned(),
            requests: 1,
            concurrency: 1,
            connections: 1,
        };
        let instruction = instruction_template(&settings, cli.fixed_side);
        assert_eq!(
            instruction,
            wire::PaymentInstruction {
                participant_id: "bank-th".to_owned(),
                idempotency_key: String::new(),
                payer: "e-thb/bank-th.w01".to_owned(),
                payee: "e-hkd/bank-hk.w02".to_owned(),
                amount: Some(wire::Money { currency: "HKD".to_owned(), amount: "0100.5".to_owned() }),
                fixed_side: wire::FixedSide::Receive as i32,
                reference: String::new(),
                quote_id: String::new(),
                originator: None,
                beneficiary: None,
                signed_at: None,
                signature: Vec::new(),
            }
        );
    }
}
