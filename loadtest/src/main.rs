//! `corridor-loadtest`: a load generator for a running Corridor router, and the yardstick to
//! judge it by.
//!
//! - `run` loads a router's payment API over `--connections` HTTP/2 connections (plain text, as
//!   `corridor serve --insecure-dev` serves it), closed loop (`--concurrency` requests in flight:
//!   the highest throughput) or open loop (`--rate` requests per second on a fixed schedule,
//!   latency measured from each request's scheduled time: what a user would see under that load,
//!   without coordinated omission). The payments come from a mix (`--mix-file`, the built-in
//!   `mixes/demo.toml` for the demo network by default): domestic, cross-border, at a locked quote,
//!   multi-hop, and payments that must be refused, each kind with the outcome it must get. After a
//!   `--warmup` it measures for `--duration` seconds or `--requests` requests, then prints a
//!   results table (throughput, latency percentiles, errors), how each kind's answers compared
//!   with its expectation, and the outcomes; `--json` writes all of it with the latency curve,
//!   `--plot` draws the curve as SVG, `--server-pid` samples the server's memory.
//! - `echo-server` serves a trivial unary echo service, and `run --service echo` loads it with the
//!   same client, connections, modes and report, sending payloads as large as the mix's
//!   instructions: the gRPC ceiling of the machine, to compare the router's figures with.
//! - `plot` overlays the latency curves of several JSON reports in one SVG, one per `--label`.
//! - `compare` tables several JSON reports, each as a ratio to a baseline (`--markdown` too);
//!   `report-field` prints one value of a report, for scripts (`loadtest/bench.sh` uses both).
//! - `mix` checks a mix file and shows its kinds and a few of its payments.
//!
//! It is an outside client: it depends on no Corridor crate but the wire types of
//! `corridor-schemas`, sends instructions as the mix writes them without validating them (the
//! router's refusals are part of the load), and decodes of each answer only the payment's status
//! and reason code. The same `--seed` sends the same payments in the same order; idempotency keys
//! are `<prefix>-<n>` with a prefix from the time and process id, so reruns never replay old keys.
//!
//! What it does not do: TLS or signed instructions (it loads `--insecure-dev` routers), retries
//! (every request is counted once, as it ended), checking the ledgers afterwards (`corridor demo`
//! reconciles; this counts), or timed pass/fail judgements (it reports figures; a script compares
//! them). The client shares the machine with the server, so it keeps its own work small: one
//! shared payload or one drawn instruction per request, clients cloned once per worker, answers
//! decoded only as far as needed, histograms in a few shards merged at the end.
//!
//! Exit code: 0 when the run completed, whatever the outcomes (rejections are answers, not
//! errors; unexpected ones are reported); 1 on bad options, an unreadable file, or when it cannot
//! connect; 2 when the run completed but some requests lost their connection or timed out.

mod amount;
mod compare;
mod driver;
mod echo;
mod load;
mod mix;
mod outcome;
mod pattern;
mod payment_client;
mod plot;
mod recorder;
mod report;
mod rss;
mod schedule;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use corridor_schemas::IdempotencyKey;
use serde::Deserialize;

use crate::driver::{Length, Mode, Plan};
use crate::load::Load;
use crate::mix::{MIX_FILE_BYTES_MAX, Mix};
use crate::report::{KindSetting, Report, Settings};
use crate::rss::RssSampler;

/// Bounds on the options, so a typo cannot ask for a billion payments or a million sockets.
const CONNECTIONS_MAX: u64 = 64;
const CONCURRENCY_MAX: u64 = 4_096;
const RATE_MAX: u64 = 1_000_000;
const IN_FLIGHT_MAX: u64 = 100_000;
const DURATION_MAX_S: u64 = 86_400;
const REQUESTS_MAX: u64 = 100_000_000;
const WARMUP_MAX_S: u64 = 600;
const PAYLOAD_BYTES_MAX: u64 = 1 << 20;
const CLIENT_THREADS_MAX: u64 = 64;
/// Reports one `plot` overlays.
const PLOT_REPORTS_MAX: usize = 16;
/// Bytes of one JSON report `plot` reads.
const REPORT_BYTES_MAX: u64 = 64 << 20;

const DEFAULT_CONCURRENCY: u64 = 64;
const DEFAULT_IN_FLIGHT_MAX: u64 = 10_000;
const DEFAULT_DURATION_S: u64 = 10;

/// How long one request may take before the client gives up and counts it as `DEADLINE`; below
/// the histograms' ceiling, so every latency is recorded as measured.
const REQUEST_TIMEOUT_MS: u64 = 30_000;
const _: () = assert!(REQUEST_TIMEOUT_MS * 1_000 < recorder::LATENCY_MAX_US);

/// The exit code of a bad option, an unreadable file, or a server that cannot be reached.
const EXIT_BAD_RUN: u8 = 1;
/// The exit code of a run that completed but lost its connection or timed out for some requests.
const EXIT_REQUESTS_LOST: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "corridor-loadtest",
    version,
    about = "Load generator for a Corridor router (gRPC), with an echo server as the machine's ceiling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load a router (or the echo service) and report throughput, latency and outcomes.
    Run(Box<RunOptions>),
    /// Serve the echo service: the gRPC ceiling `run --service echo` measures.
    EchoServer {
        /// Where to listen; port 0 picks a free port (printed on the first line of stdout).
        #[arg(long, default_value = "127.0.0.1:50061")]
        listen: SocketAddr,
    },
    /// Overlay the latency curves of several `run --json` reports in one SVG.
    Plot {
        /// The SVG file to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "Latency by percentile")]
        title: String,
        /// The JSON reports; each curve's legend is its report's label (or file name).
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
    },
    /// Compare several `run --json` reports, each as a ratio to a baseline's throughput.
    Compare {
        /// The report every other is compared with (the echo ceiling, in the benchmark).
        #[arg(long)]
        baseline: PathBuf,
        /// Also write the table as Markdown to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// The reports, in the order of the table (the baseline first, wherever it is listed).
        #[arg(required = true, num_args = 1..)]
        reports: Vec<PathBuf>,
    },
    /// Print one value of a `run --json` report, by JSON pointer (`/results/throughput_per_s`).
    ReportField { report: PathBuf, pointer: String },
    /// Check a mix file, show its kinds and weights and a few of its payments.
    Mix {
        #[command(flatten)]
        mix: MixOptions,
        /// Payments to show.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=1_000))]
        show: u64,
    },
}

#[derive(Debug, Clone, Args)]
struct MixOptions {
    /// The mix file (TOML, the format of loadtest/mixes/demo.toml); the built-in demo mix by default.
    #[arg(long)]
    mix_file: Option<PathBuf>,
    /// Weights by kind name, replacing the file's: "domestic=20,cross-border=50"; 0 disables a kind.
    #[arg(long)]
    mix: Option<String>,
    /// Seed of the payments drawn: the same seed sends the same payments in the same order.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

#[derive(Debug, Args)]
struct RunOptions {
    /// What to load: the router's payment API, or `corridor-loadtest echo-server`.
    #[arg(long, value_enum, default_value_t = ServiceArgument::Payments)]
    service: ServiceArgument,
    /// The server's gRPC endpoint; plain HTTP/2 (this client has no TLS). Several endpoints
    /// (router replicas), comma-separated, share the connections round-robin.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// HTTP/2 connections; requests are spread over them round-robin.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=CONNECTIONS_MAX))]
    connections: u64,
    /// Closed loop (requests in flight) or open loop (requests per second).
    #[arg(long, value_enum, default_value_t = ModeArgument::Closed)]
    mode: ModeArgument,
    /// Closed loop: requests in flight at once [default: 64].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=CONCURRENCY_MAX))]
    concurrency: Option<u64>,
    /// Open loop: requests per second, scheduled at fixed intervals.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=RATE_MAX))]
    rate: Option<u64>,
    /// Open loop: requests in flight at most; a request past it is counted as not sent [default: 10000].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=IN_FLIGHT_MAX))]
    in_flight_max: Option<u64>,
    /// Seconds to measure after the warm-up [default: 10].
    #[arg(long, conflicts_with = "requests", value_parser = clap::value_parser!(u64).range(1..=DURATION_MAX_S))]
    duration: Option<u64>,
    /// Requests to measure after the warm-up, instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=REQUESTS_MAX))]
    requests: Option<u64>,
    /// Seconds of load before measuring; their answers are not recorded.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=WARMUP_MAX_S))]
    warmup: u64,
    #[command(flatten)]
    mix: MixOptions,
    /// Prefix of the idempotency keys `<prefix>-<n>`; by default made from the current time and
    /// process id, so reruns do not collide with earlier keys.
    #[arg(long)]
    key_prefix: Option<String>,
    /// Echo service: bytes per payload [default: the mean encoded size of the mix's instructions].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=PAYLOAD_BYTES_MAX))]
    payload_bytes: Option<u64>,
    /// Names the run in the report and in `plot`'s legend, e.g. "embedded".
    #[arg(long, default_value = "")]
    label: String,
    /// Write the whole report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the latency-percentile plot as SVG to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Sample this process's resident memory (/proc/PID/status) every second while measuring.
    #[arg(long)]
    server_pid: Option<u32>,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    quiet: bool,
    /// Threads of the client's runtime [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=CLIENT_THREADS_MAX))]
    client_threads: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ServiceArgument {
    /// The router's PaymentService (and FxService for quoted kinds).
    Payments,
    /// The echo service of `corridor-loadtest echo-server`.
    Echo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArgument {
    /// `--concurrency` requests in flight, each worker sending when its previous one is answered.
    Closed,
    /// `--rate` requests per second, each sent at its scheduled time whether or not others are answered.
    Open,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with success; a bad option is exit code 1, not clap's 2.
            let _ = error.print();
            return if error.use_stderr() { ExitCode::from(EXIT_BAD_RUN) } else { ExitCode::SUCCESS };
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Run(options) = &cli.command
        && let Some(threads) = options.client_threads.and_then(|threads| usize::try_from(threads).ok())
    {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_BAD_RUN);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(options) => run(*options).await,
            Command::EchoServer { listen } => echo::serve(listen).await.map(|()| ExitCode::SUCCESS),
            Command::Plot { out, title, reports } => plot_reports(&out, &title, &reports).map(|()| ExitCode::SUCCESS),
            Command::Mix { mix, show } => show_mix(&mix, show).map(|()| ExitCode::SUCCESS),
            Command::Compare { baseline, markdown, reports } => {
                compare::compare(&baseline, &reports, markdown.as_deref()).map(|()| ExitCode::SUCCESS)
            }
            Command::ReportField { report, pointer } => compare::field(&report, &pointer).map(|value| {
                println!("{value}");
                ExitCode::SUCCESS
            }),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(EXIT_BAD_RUN)
        }
    }
}

/// The plan of a run from its options, refusing combinations that mean nothing.
fn plan(options: &RunOptions) -> anyhow::Result<Plan> {
    let mode = match options.mode {
        ModeArgument::Closed => {
            anyhow::ensure!(options.rate.is_none(), "--rate is for --mode open; the closed loop takes --concurrency");
            anyhow::ensure!(options.in_flight_max.is_none(), "--in-flight-max is for --mode open");
            Mode::Closed { concurrency: options.concurrency.unwrap_or(DEFAULT_CONCURRENCY) }
        }
        ModeArgument::Open => {
            anyhow::ensure!(
                options.concurrency.is_none(),
                "--concurrency is for --mode closed; the open loop takes --rate (and --in-flight-max)"
            );
            let Some(rate_per_s) = options.rate else {
                anyhow::bail!("--mode open needs --rate, the requests per second");
            };
            Mode::Open { rate_per_s, in_flight_max: options.in_flight_max.unwrap_or(DEFAULT_IN_FLIGHT_MAX) }
        }
    };
    let length = match (options.duration, options.requests) {
        (_, Some(requests)) => Length::Requests(requests),
        (duration, None) => Length::Duration(Duration::from_secs(duration.unwrap_or(DEFAULT_DURATION_S))),
    };
    anyhow::ensure!(
        options.target.split(',').all(|target| target.trim().starts_with("http://")),
        "--target must be an http:// URL (this client has no TLS; serve with --insecure-dev)"
    );
    Ok(Plan {
        mode,
        length,
        warmup: Duration::from_secs(options.warmup),
        request_timeout: Duration::from_millis(REQUEST_TIMEOUT_MS),
    })
}

/// The mix of the options, and what to call it in the report.
fn load_mix(options: &MixOptions) -> anyhow::Result<(Mix, String)> {
    let (mut mix, name) = match &options.mix_file {
        None => (Mix::demo()?, "built-in demo".to_owned()),
        Some(path) => {
            let source = read_bounded(path, MIX_FILE_BYTES_MAX, "mix file")?;
            let mix = Mix::parse(&source).with_context(|| format!("mix file {}", path.display()))?;
            (mix, path.display().to_string())
        }
    };
    if let Some(overrides) = &options.mix {
        mix.override_weights(overrides)?;
    }
    Ok((mix, name))
}

fn read_bounded(path: &Path, bytes_max: u64, what: &str) -> anyhow::Result<String> {
    let metadata = std::fs::metadata(path).with_context(|| format!("cannot read the {what} {}", path.display()))?;
    anyhow::ensure!(metadata.len() <= bytes_max, "the {what} {} is larger than {bytes_max} bytes", path.display());
    std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// A prefix no earlier run used: the start time in milliseconds and the process id.
fn default_key_prefix(unix_time_ms: u128, process_id: u32) -> String {
    format!("lt-{unix_time_ms}-{process_id}")
}

fn unix_time_ms() -> u128 {
    // A clock before 1970 only makes the prefix less unique; the process id still differs.
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since_epoch| since_epoch.as_millis())
}

/// Checks that every key of the run is a valid idempotency key, up to the longest possible.
fn check_key_prefix(key_prefix: &str) -> anyhow::Result<()> {
    let longest = format!("{key_prefix}-{}", u64::MAX);
    IdempotencyKey::new(longest.as_str())
        .with_context(|| format!("--key-prefix {key_prefix:?} makes invalid idempotency keys such as {longest:?}"))?;
    Ok(())
}

async fn run(options: RunOptions) -> anyhow::Result<ExitCode> {
    let plan = plan(&options)?;
    let seed = options.mix.seed;
    let (load, mix_name, key_prefix, kinds) = match options.service {
        ServiceArgument::Payments => {
            anyhow::ensure!(options.payload_bytes.is_none(), "--payload-bytes is for --service echo");
            let (mix, mix_name) = load_mix(&options.mix)?;
            let key_prefix =
                options.key_prefix.clone().unwrap_or_else(|| default_key_prefix(unix_time_ms(), std::process::id()));
            check_key_prefix(&key_prefix)?;
            let kinds = mix
                .kinds()
                .iter()
                .map(|kind| KindSetting { name: kind.name.clone(), weight: kind.weight, expect: kind.expectations() })
                .collect();
            (Load::Payments { mix, seed, key_prefix: key_prefix.clone() }, Some(mix_name), Some(key_prefix), kinds)
        }
        ServiceArgument::Echo => {
            let payload_bytes = match options.payload_bytes {
                Some(bytes) => usize::try_from(bytes).context("--payload-bytes does not fit this machine")?,
                None => load_mix(&options.mix)?.0.mean_request_bytes(seed),
            };
            let load = Load::echo(payload_bytes);
            let kinds = vec![KindSetting { name: load::ECHO_KIND.to_owned(), weight: 1, expect: "OK".to_owned() }];
            (load, None, None, kinds)
        }
    };
    let payload_bytes = match &load {
        Load::Echo { payload, .. } => Some(payload.len()),
        Load::Payments { .. } => None,
    };
    if let Some(pid) = options.server_pid {
        rss::read_status(pid)?;
    }
    let connections_count = usize::try_from(options.connections).context("--connections does not fit this machine")?;
    let channels = load::connect(&options.target, connections_count).await?;
    let connections = channels.into_iter().map(|channel| load.client(channel)).collect();

    let progress = driver::progress_bar(&plan, options.quiet);
    let measure_start = Instant::now() + plan.warmup;
    let sampler = options.server_pid.map(|pid| RssSampler::start(pid, measure_start)).transpose()?;
    let measurement = driver::run(Arc::new(load), connections, plan, progress, measure_start).await?;
    let server_rss = match sampler {
        Some(sampler) => Some(sampler.finish().await?),
        None => None,
    };

    let settings = Settings { mix: mix_name, key_prefix, payload_bytes, ..settings_of(&options, &plan) };
    let measured_time_us = u64::try_from(measurement.measured_time.as_micros()).unwrap_or(u64::MAX);
    let report =
        Report::new(options.label.clone(), settings, &kinds, &measurement.recording, measured_time_us, server_rss);

    // The files first: a reader of stdout that goes away (`| head`) must not cost the report.
    if let Some(path) = &options.json {
        std::fs::write(path, report.to_json()?)
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
    }
    if let Some(path) = &options.plot {
        let svg = plot::svg(&plot_title(&report), &run_curves(&report));
        std::fs::write(path, svg).with_context(|| format!("cannot write the plot to {}", path.display()))?;
    }
    print_report(&report);

    let results = &report.results;
    if results.unexpected > 0 {
        eprintln!("warning: {} of {} requests did not end as their kind expects", results.unexpected, results.requests);
    }
    if results.not_sent > 0 {
        eprintln!(
            "warning: {} requests were not sent: {} in flight at once is the limit (--in-flight-max)",
            results.not_sent,
            report.settings.in_flight_max.unwrap_or(0)
        );
    }
    if results.connection_lost + results.timed_out > 0 {
        eprintln!(
            "error: of {} requests, {} lost their connection to {} (UNAVAILABLE) and {} had no answer within {} ms",
            results.requests, results.connection_lost, options.target, results.timed_out, REQUEST_TIMEOUT_MS
        );
        return Ok(ExitCode::from(EXIT_REQUESTS_LOST));
    }
    Ok(ExitCode::SUCCESS)
}

/// The settings of a run as the report repeats them; the mix, the keys and the payload are the
/// caller's to fill in.
fn settings_of(options: &RunOptions, plan: &Plan) -> Settings {
    let (mode, concurrency, rate_per_s, in_flight_max) = match plan.mode {
        Mode::Closed { concurrency } => ("closed", Some(concurrency), None, None),
        Mode::Open { rate_per_s, in_flight_max } => ("open", None, Some(rate_per_s), Some(in_flight_max)),
    };
    let (duration_s, requests) = match plan.length {
        Length::Duration(duration) => (Some(duration.as_secs()), None),
        Length::Requests(requests) => (None, Some(requests)),
    };
    Settings {
        service: match options.service {
            ServiceArgument::Payments => "payments",
            ServiceArgument::Echo => "echo",
        },
        mode,
        target: options.target.clone(),
        connections: options.connections,
        concurrency,
        rate_per_s,
        in_flight_max,
        duration_s,
        requests,
        warmup_s: options.warmup,
        request_timeout_ms: REQUEST_TIMEOUT_MS,
        seed: options.mix.seed,
        mix: None,
        key_prefix: None,
        payload_bytes: None,
    }
}

/// The tables on stdout, in one write; a closed stdout is not an error of the run.
fn print_report(report: &Report) {
    use std::fmt::Write as _;
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "{}", report.results_table());
    if let Some(line) = report.rss_line() {
        let _ = writeln!(text, "{line}");
    }
    let _ = writeln!(text, "{}", report.kinds_table());
    let examples = report.examples();
    if !examples.is_empty() {
        let _ = writeln!(text, "First unexpected answers:");
        for example in &examples {
            let _ = writeln!(text, "  {example}");
        }
    }
    let _ = writeln!(text, "{}", report.outcomes_table());
    write_stdout(&text);
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush())
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("warning: cannot print the report: {error}");
    }
}

fn plot_title(report: &Report) -> String {
    let settings = &report.settings;
    let load = match (settings.concurrency, settings.rate_per_s) {
        (Some(concurrency), _) => format!("closed loop, {concurrency} in flight"),
        (None, Some(rate_per_s)) => format!("open loop, {rate_per_s}/s"),
        (None, None) => String::new(),
    };
    let run = if report.label.is_empty() {
        settings.service.to_owned()
    } else {
        format!("{}, {}", settings.service, report.label)
    };
    format!("{run}: latency by percentile ({load})")
}

/// The curves of one run: its latency, and in the open loop its service time, dashed.
fn run_curves(report: &Report) -> Vec<plot::Curve> {
    let label = if report.label.is_empty() { "latency".to_owned() } else { report.label.clone() };
    let mut curves = vec![plot::Curve {
        label: if report.service_time_curve.is_empty() {
            label.clone()
        } else {
            format!("{label} (from the schedule)")
        },
        points: curve_points(&report.latency_curve),
        answers: report.results.requests,
        dashed: false,
    }];
    if !report.service_time_curve.is_empty() {
        curves.push(plot::Curve {
            label: format!("{label} (service time, from the send)"),
            points: curve_points(&report.service_time_curve),
            answers: report.results.requests,
            dashed: true,
        });
    }
    curves
}

fn curve_points(curve: &[report::CurvePoint]) -> Vec<(u32, u64)> {
    curve
        .iter()
        .filter_map(|point| Some((report::ppm_from_percent_text(&point.percentile.to_string())?, point.latency_us)))
        .collect()
}

/// The parts of a JSON report `plot` reads.
#[derive(Debug, Deserialize)]
struct PlotInput {
    #[serde(default)]
    label: String,
    results: PlotResults,
    latency_curve: Vec<report::CurvePoint>,
}

#[derive(Debug, Deserialize)]
struct PlotResults {
    requests: u64,
}

fn plot_reports(out: &Path, title: &str, paths: &[PathBuf]) -> anyhow::Result<()> {
    anyhow::ensure!(paths.len() <= PLOT_REPORTS_MAX, "plot overlays at most {PLOT_REPORTS_MAX} reports");
    let mut curves = Vec::with_capacity(paths.len());
    for path in paths {
        let text = read_bounded(path, REPORT_BYTES_MAX, "report")?;
        let input: PlotInput = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a `corridor-loadtest run --json` report", path.display()))?;
        let label = if input.label.is_empty() {
            path.file_stem().map_or_else(|| path.display().to_string(), |stem| stem.to_string_lossy().into_owned())
        } else {
            input.label
        };
        let points = curve_points(&input.latency_curve);
        anyhow::ensure!(
            points.len() == input.latency_curve.len(),
            "{}: a percentile of latency_curve is not a percent with at most four decimals",
            path.display()
        );
        curves.push(plot::Curve { label, points, answers: input.results.requests, dashed: false });
    }
    std::fs::write(out, plot::svg(title, &curves)).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

fn show_mix(options: &MixOptions, show: u64) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let (mix, name) = load_mix(options)?;
    let total: u64 = mix.kinds().iter().map(|kind| u64::from(kind.weight)).sum();
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_header(["kind", "weight", "share", "entries", "expect"]);
    for kind in mix.kinds() {
        table.add_row(vec![
            kind.name.clone(),
            kind.weight.to_string(),
            report::format_percent(u64::from(kind.weight), total),
            kind.entries().to_string(),
            kind.expectations(),
        ]);
    }
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "mix: {name}\n{table}");
    for index in 0..show {
        let generated = mix.generate(options.seed, index, "lt-example");
        let quoted = if generated.entry.quoted { ", quoted" } else { "" };
        let _ = writeln!(
            text,
            "{index}: [{}{quoted}] {} → expect {}",
            mix.kinds()[generated.kind].name,
            mix::describe(&generated.instruction),
            generated.entry.expect
        );
    }
    let _ = writeln!(
        text,
        "an instruction of this mix encodes to {} bytes on average",
        mix.mean_request_bytes(options.seed)
    );
    write_stdout(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Result<RunOptions, String> {
        let cli =
            Cli::try_parse_from(["corridor-loadtest", "run"].iter().chain(arguments)).map_err(|e| e.to_string())?;
        match cli.command {
            Command::Run(options) => Ok(*options),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn run_has_the_documented_defaults() {
        let options = parse(&[]).unwrap();
        assert_eq!(options.target, "http://127.0.0.1:50051");
        assert_eq!(
            (options.service, options.mode, options.connections),
            (ServiceArgument::Payments, ModeArgument::Closed, 4)
        );
        assert_eq!((options.warmup, options.mix.seed), (2, 2026));
        let plan = plan(&options).unwrap();
        assert_eq!(plan.mode, Mode::Closed { concurrency: 64 });
        assert_eq!(plan.length, Length::Duration(Duration::from_secs(10)));
        assert_eq!(plan.warmup, Duration::from_secs(2));
        assert_eq!(plan.request_timeout, Duration::from_secs(30));
    }

    #[test]
    fn options_are_bounded() {
        fn check(arguments: &[&str], accepted: bool) {
            let parsed = parse(arguments);
            assert_eq!(parsed.is_ok(), accepted, "{arguments:?}: {parsed:?}");
        }
        let over = |max: u64| (max + 1).to_string();
        check(&["--connections", "64"], true);
        check(&["--connections", &over(CONNECTIONS_MAX)], false);
        check(&["--connections", "0"], false);
        check(&["--concurrency", "4096"], true);
        check(&["--concurrency", &over(CONCURRENCY_MAX)], false);
        check(&["--rate", &over(RATE_MAX)], false);
        check(&["--rate", "0"], false);
        check(&["--in-flight-max", &over(IN_FLIGHT_MAX)], false);
        check(&["--duration", &over(DURATION_MAX_S)], false);
        check(&["--duration", "0"], false);
        check(&["--requests", &REQUESTS_MAX.to_string()], true);
        check(&["--requests", &over(REQUESTS_MAX)], false);
        check(&["--warmup", "0"], true);
        check(&["--warmup", &over(WARMUP_MAX_S)], false);
        check(&["--payload-bytes", &over(PAYLOAD_BYTES_MAX)], false);
        check(&["--duration", "5", "--requests", "10"], false);
        check(&["--mode", "sideways"], false);
        check(&["--service", "ledger"], false);
    }

    #[test]
    fn modes_take_their_own_options_only() {
        fn check(arguments: &[&str], expected: Result<Mode, &str>) {
            let result = plan(&parse(arguments).unwrap()).map(|plan| plan.mode).map_err(|error| error.to_string());
            match (result, expected) {
                (Ok(mode), Ok(expected)) => assert_eq!(mode, expected, "{arguments:?}"),
                (Err(error), Err(message)) => assert!(error.contains(message), "{arguments:?}: {error}"),
                (result, expected) => panic!("{arguments:?}: {result:?}, expected {expected:?}"),
            }
        }
        check(&["--concurrency", "8"], Ok(Mode::Closed { concurrency: 8 }));
        check(&["--mode", "open", "--rate", "500"], Ok(Mode::Open { rate_per_s: 500, in_flight_max: 10_000 }));
        check(
            &["--mode", "open", "--rate", "500", "--in-flight-max", "20"],
            Ok(Mode::Open { rate_per_s: 500, in_flight_max: 20 }),
        );
        check(&["--mode", "open"], Err("--mode open needs --rate"));
        check(&["--rate", "500"], Err("--rate is for --mode open"));
        check(&["--in-flight-max", "5"], Err("--in-flight-max is for --mode open"));
        check(&["--mode", "open", "--rate", "5", "--concurrency", "5"], Err("--concurrency is for --mode closed"));
        check(&["--target", "https://router:50051"], Err("--target must be an http:// URL"));
    }

    #[test]
    fn the_length_is_a_duration_or_a_number_of_requests() {
        let length = |arguments: &[&str]| plan(&parse(arguments).unwrap()).unwrap().length;
        assert_eq!(length(&["--duration", "60"]), Length::Duration(Duration::from_secs(60)));
        assert_eq!(length(&["--requests", "500"]), Length::Requests(500));
    }

    #[test]
    fn key_prefixes_must_make_valid_idempotency_keys() {
        fn check(key_prefix: &str, accepted: bool) {
            assert_eq!(check_key_prefix(key_prefix).is_ok(), accepted, "{key_prefix:?}");
        }
        check(&default_key_prefix(1_767_225_600_000, 4_194_304), true);
        check("run-7", true);
        check("with space", false);
        // 128 characters is the key's limit: "<107 characters>-18446744073709551615" is 128.
        check(&"k".repeat(107), true);
        check(&"k".repeat(108), false);
        assert_eq!(default_key_prefix(1_767_225_600_000, 42), "lt-1767225600000-42");
    }

    #[test]
    fn the_other_subcommands_parse() {
        let cli = Cli::try_parse_from(["corridor-loadtest", "echo-server", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(cli.command, Command::EchoServer { listen } if listen.port() == 0));
        let cli = Cli::try_parse_from(["corridor-loadtest", "plot", "--out", "x.svg", "a.json", "b.json"]).unwrap();
        assert!(matches!(cli.command, Command::Plot { reports, .. } if reports.len() == 2));
        assert!(Cli::try_parse_from(["corridor-loadtest", "plot", "--out", "x.svg"]).is_err());
        let cli = Cli::try_parse_from(["corridor-loadtest", "mix", "--mix", "domestic=1", "--show", "3"]).unwrap();
        assert!(matches!(cli.command, Command::Mix { show: 3, .. }));
    }

    #[test]
    fn an_unknown_kind_in_mix_is_refused_before_connecting() {
        let options = parse(&["--mix", "domestic=5,wire-transfer=5"]).unwrap();
        let error = load_mix(&options.mix).unwrap_err().to_string();
        assert!(
            error.starts_with("--mix: the mix has no kind \"wire-transfer\" (it has: domestic, cross-border"),
            "{error}"
        );
    }
}
