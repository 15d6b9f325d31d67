//! `corridor demo`: the main job on the embedded default, needing no server.
//!
//! Starts the network of `ops/config/network.toml` in-process, serves the payment API on a loopback
//! port, and pays through that API like any integrator would: domestic and cross-border payments,
//! fixed send and fixed receive, multi-hop payments through a pivot ledger, payments at a locked
//! quote (`QuoteFx`, then `SubmitPayment` with its id), and payments that must be refused (over a
//! limit, insufficient funds, unknown payee account, malformed amount, no route). Then it checks
//! that quoted payments settled at exactly their quote and that a quote cannot be used twice,
//! replays some idempotency keys, reconciles every ledger account against the receipts, audits
//! every ledger for conservation, and prints the summary. Any surprise (a payment that did not end as expected,
//! money created or lost, a hold left behind) makes it exit non-zero.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Cell, CellAlignment, Table, presets::UTF8_FULL_CONDENSED};
use corridor_schemas::money::{format_minor_units, parse_signed_minor_units};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_feed_client::ComplianceFeedClient;
use corridor_schemas::wire::v1::compliance_review_client::ComplianceReviewClient;
use corridor_schemas::wire::v1::fx_service_client::FxServiceClient;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use corridor_schemas::{Address, Currency, FixedSide, LedgerId, Money, ParticipantId, QuoteRequest};
use futures::StreamExt;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rust_decimal::Decimal;
use tonic::transport::Channel;

mod parties;

use self::parties::Parties;
use crate::config::{Config, Role, StorageBackend, StorageConfig};
use crate::network::Network;
use crate::pipeline::Router;
use crate::{open_storage, router_over, server};

/// The demo network, built into the binary so the demo needs no files.
pub const NETWORK_TOML: &str = include_str!("../../ops/config/network.toml");

#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// Payments to send.
    #[arg(long, default_value_t = 4_000)]
    pub payments: usize,
    /// Payments in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// HTTP/2 connections the client spreads payments over.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Seed of the payment mix; the same seed sends the same payments.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Where the router keeps its journal, receipts and keys: `embedded` (a local file, fsync'd),
    /// or `postgres` (journal and receipts in PostgreSQL, keys in Redis; the demo creates a
    /// database of its own and drops it at the end).
    #[arg(long, value_enum, default_value_t = DemoStorage::Embedded)]
    pub storage: DemoStorage,
    /// With `--storage postgres`: a database the demo may create another database from.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pub database_url: String,
    /// With `--storage postgres`.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Plain-text gRPC and unsigned instructions, as `corridor serve --insecure-dev`. By default
    /// the demo creates a CA for the run, gives every party its own certificate (mTLS) and every
    /// participant a signing key.
    #[arg(long)]
    pub insecure_dev: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoStorage {
    Embedded,
    Postgres,
}

/// Bounds on the options, so a typo cannot ask for a billion payments.
const PAYMENTS_MAX: usize = 1_000_000;
const CONCURRENCY_MAX: usize = 4_096;
const CONNECTIONS_MAX: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Domestic,
    CrossBorderFixedSend,
    CrossBorderFixedReceive,
    MultiHop,
    Quoted,
    OverLimit,
    InsufficientFunds,
    UnknownPayee,
    MalformedAmount,
    NoRoute,
    Sanctioned,
    PossibleMatch,
    MissingTravelData,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Domestic => "domestic",
            Kind::CrossBorderFixedSend => "cross-border, fixed send",
            Kind::CrossBorderFixedReceive => "cross-border, fixed receive",
            Kind::MultiHop => "multi-hop, through a pivot ledger",
            Kind::Quoted => "at a locked quote (QuoteFx)",
            Kind::OverLimit => "over the single-payment limit",
            Kind::InsufficientFunds => "insufficient funds",
            Kind::UnknownPayee => "unknown payee account",
            Kind::MalformedAmount => "malformed amount",
            Kind::NoRoute => "no route (e-SGD, unserved)",
            Kind::Sanctioned => "beneficiary on the OFAC SDN list",
            Kind::PossibleMatch => "beneficiary close to an SDN name",
            Kind::MissingTravelData => "travel-rule data missing",
        }
    }

    /// How this kind of payment must end.
    fn expected(self) -> Observed {
        match self {
            Kind::Domestic
            | Kind::CrossBorderFixedSend
            | Kind::CrossBorderFixedReceive
            | Kind::MultiHop
            | Kind::Quoted => Observed::Settled,
            Kind::OverLimit => Observed::Rejected("OVER_LIMIT".into()),
            Kind::InsufficientFunds => Observed::Rejected("INSUFFICIENT_FUNDS".into()),
            Kind::UnknownPayee => Observed::Rejected("UNKNOWN_ACCOUNT".into()),
            Kind::MalformedAmount => Observed::Refused(format!("{:?}", tonic::Code::InvalidArgument)),
            Kind::NoRoute => Observed::Rejected("NO_ROUTE".into()),
            Kind::Sanctioned => Observed::Rejected("SANCTIONS_HIT".into()),
            Kind::PossibleMatch => Observed::Held,
            Kind::MissingTravelData => Observed::Rejected("TRAVEL_RULE_DATA_MISSING".into()),
        }
    }
}

/// How a payment ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Observed {
    Settled,
    /// Held for a compliance officer's review.
    Held,
    Rejected(String),
    Failed(String),
    Pending,
    /// Refused at the API with a gRPC error (its code's name); no payment was created.
    Refused(String),
}

impl Observed {
    fn describe(&self) -> (String, String) {
        match self {
            Observed::Settled => ("SETTLED".into(), String::new()),
            Observed::Held => ("HELD".into(), "HELD_FOR_REVIEW".into()),
            Observed::Rejected(code) => ("REJECTED".into(), code.clone()),
            Observed::Failed(code) => ("FAILED".into(), code.clone()),
            Observed::Pending => ("PENDING".into(), String::new()),
            Observed::Refused(code) => ("refused by the API".into(), code.clone()),
        }
    }
}

/// One connection of a participant: its payment and FX clients.
#[derive(Clone)]
struct Sender {
    payments: PaymentServiceClient<Channel>,
    fx: FxServiceClient<Channel>,
}

struct Job {
    kind: Kind,
    instruction: wire::PaymentInstruction,
}

struct Outcome {
    kind: Kind,
    instruction: wire::PaymentInstruction,
    observed: Observed,
    payment: Option<wire::Payment>,
    latency: Duration,
    /// For a quoted payment: the quote, and how long `QuoteFx` took.
    quote: Option<(wire::Quote, Duration)>,
}

/// The parts of the network the payment generator needs.
struct Catalogue {
    /// Bank wallets (not the low-balance one) per ledger, with their owner.
    wallets: BTreeMap<LedgerId, Vec<(Address, String)>>,
    low_balance: Option<(Address, String)>,
    currencies: HashMap<LedgerId, Currency>,
    /// Ledgers each ledger routes to, with the number of conversions the router's route takes.
    hops: BTreeMap<(LedgerId, LedgerId), usize>,
    limits: Vec<(LedgerId, Money)>,
    /// Travel-rule thresholds, by a ledger of their jurisdiction in their currency.
    travel_rules: Vec<(LedgerId, Money)>,
    jurisdictions: HashMap<LedgerId, corridor_schemas::Jurisdiction>,
}

impl Catalogue {
    /// What the generator needs, with every pair of ledgers classified by asking the router's own
    /// route finder for a route (direct, through a pivot, or none).
    fn new(config: &Config, network: &Network) -> anyhow::Result<Self> {
        let mut wallets: BTreeMap<LedgerId, Vec<(Address, String)>> = BTreeMap::new();
        let mut low_balance = None;
        for participant in config.participants.iter().filter(|p| p.role == Role::Bank) {
            for account in &participant.accounts {
                let entry = (account.address.clone(), participant.id.to_string());
                if account.address.account.as_str().ends_with("low-balance") {
                    low_balance = Some(entry);
                } else {
                    wallets.entry(account.address.ledger.clone()).or_default().push(entry);
                }
            }
        }
        let currencies: HashMap<LedgerId, Currency> =
            config.ledgers.iter().map(|ledger| (ledger.id.clone(), ledger.currency)).collect();
        let mut hops = BTreeMap::new();
        for (from, payers) in &wallets {
            for (to, payees) in &wallets {
                let (Some((payer, owner)), Some((payee, _))) = (payers.first(), payees.first()) else { continue };
                if from == to {
                    continue;
                }
                let probe = QuoteRequest {
                    participant: ParticipantId::new(owner.clone())?,
                    payer: payer.clone(),
                    payee: payee.clone(),
                    amount: Money::parse("100", currencies[from])?,
                    fixed_side: FixedSide::Send,
                };
                if let Ok(plan) = crate::route::plan(network, &probe, std::time::SystemTime::now()) {
                    hops.insert((from.clone(), to.clone()), plan.hops.len());
                }
            }
        }
        let mut limits = Vec::new();
        for limit in &config.limits {
            if let Some(ledger) =
                config.ledgers.iter().find(|l| l.jurisdiction == limit.jurisdiction && l.currency == limit.currency)
            {
                limits.push((ledger.id.clone(), Money::from_decimal(limit.single_payment_max, limit.currency)?));
            }
        }
        anyhow::ensure!(wallets.len() >= 2, "the demo network needs bank wallets on at least two ledgers");
        let mut travel_rules = Vec::new();
        for rule in &config.travel_rules {
            if let Some(ledger) =
                config.ledgers.iter().find(|l| l.jurisdiction == rule.jurisdiction && l.currency == rule.currency)
            {
                travel_rules.push((ledger.id.clone(), Money::from_decimal(rule.threshold, rule.currency)?));
            }
        }
        let jurisdictions = config.ledgers.iter().map(|l| (l.id.clone(), l.jurisdiction.clone())).collect();
        Ok(Self { wallets, low_balance, currencies, hops, limits, travel_rules, jurisdictions })
    }

    /// Pairs of ledgers whose route takes conversions in `range`.
    fn pairs(&self, range: std::ops::RangeInclusive<usize>) -> Vec<(&LedgerId, &LedgerId)> {
        self.hops.iter().filter(|(_, hops)| range.contains(*hops)).map(|((from, to), _)| (from, to)).collect()
    }
}

/// Everyday names, screened clear against the bundled SDN snapshot (the demo would report a
/// surprise otherwise).
const CLEAR_NAMES: &[&str] = &[
    "Chan Tai Man",
    "Wong Siu Ling",
    "Li Wei",
    "Zhang Xiu Ying",
    "Somchai Rattanakorn",
    "Napat Wongsakul",
    "Fatima Rahman",
    "Omar Haddad",
    "Tan Mei Ling",
    "Lim Boon Keng",
    "Chen Jia Hui",
    "Liu Yang",
];
/// Entries of the OFAC SDN list as a bank might type them, word order and spelling their own
/// (SDN 4319 "ESCOBAR BUITRAGO, Walter", 9587 "HUSSEIN, Mazen Ali", 9388 "MELGOZA TORRES, Martin"):
/// hits, denied.
const SANCTIONED_NAMES: &[&str] =
    &["Walter Escobar Buitrago", "Mazen Ali Hussein", "Martin Melgoza Torres", "Martin Melgosa Torres"];
/// Names close to SDN entries but not close enough to be sure (SDN 8279 "BOUT, Viktor
/// Anatolijevitch", 10286 "MALDONADO ESCOBAR, Fernando"): possible hits, held for review.
const NEAR_NAMES: &[&str] = &["Viktor Bout", "Fernando Maldonado"];

fn pick<'a>(rng: &mut StdRng, names: &[&'a str]) -> &'a str {
    names[rng.random_range(0..names.len())]
}

/// The payer's customer: name, address and country, as the travel rule asks — except in the
/// payments made to show the travel rule refusing a payment without them.
fn originator(rng: &mut StdRng, country: &corridor_schemas::Jurisdiction, kind: Kind) -> wire::Party {
    let name = pick(rng, CLEAR_NAMES).to_owned();
    let address = if kind == Kind::MissingTravelData {
        String::new()
    } else {
        format!("{} Harbour Road", rng.random_range(1..200))
    };
    wire::Party { name, address, country: country.to_string(), ..wire::Party::default() }
}

fn beneficiary(rng: &mut StdRng, country: &corridor_schemas::Jurisdiction, kind: Kind) -> wire::Party {
    let name = match kind {
        Kind::Sanctioned => pick(rng, SANCTIONED_NAMES),
        Kind::PossibleMatch => pick(rng, NEAR_NAMES),
        _ => pick(rng, CLEAR_NAMES),
    };
    wire::Party { name: name.to_owned(), country: country.to_string(), ..wire::Party::default() }
}

/// A typical retail amount in `currency`: 10 to 2,000 "dollars' worth", with cents.
fn retail_amount(rng: &mut StdRng, currency: Currency) -> Money {
    let dollars_to_local: i64 = match currency.code() {
        "CNY" => 7,
        "HKD" => 8,
        "THB" => 33,
        "AED" => 4,
        _ => 1,
    };
    let cents = rng.random_range(1_000..200_000_i64) * dollars_to_local;
    let minor = Decimal::new(cents, 2);
    Money::from_decimal(minor.round_dp(currency.minor_units()), currency)
        .unwrap_or_else(|_| Money::from_minor_units(1, currency).expect("one minor unit is a valid amount"))
}

fn money_to_wire(money: Money) -> wire::Money {
    money.into()
}

fn generate(catalogue: &Catalogue, count: usize, seed: u64, run: &str) -> Vec<Job> {
    let mut rng = StdRng::seed_from_u64(seed);
    let ledgers: Vec<&LedgerId> = catalogue.wallets.keys().collect();
    let direct = catalogue.pairs(1..=1);
    let multi_hop = catalogue.pairs(2..=usize::MAX);
    let routable = catalogue.pairs(1..=usize::MAX);
    let unroutable: Vec<(&LedgerId, &LedgerId)> = ledgers
        .iter()
        .flat_map(|a| ledgers.iter().map(move |b| (*a, *b)))
        .filter(|(a, b)| a != b && !catalogue.hops.contains_key(&((*a).clone(), (*b).clone())))
        .collect();
    let pick_wallet = |rng: &mut StdRng, ledger: &LedgerId| -> (Address, String) {
        let wallets = &catalogue.wallets[ledger];
        wallets[rng.random_range(0..wallets.len())].clone()
    };
    let mut jobs = Vec::with_capacity(count);
    for index in 0..count {
        let roll = rng.random_range(0..100);
        let mut kind = match roll {
            0..24 => Kind::Domestic,
            24..52 => Kind::CrossBorderFixedSend,
            52..61 => Kind::CrossBorderFixedReceive,
            61..70 => Kind::MultiHop,
            70..82 => Kind::Quoted,
            82..85 => Kind::OverLimit,
            85..88 => Kind::InsufficientFunds,
            88..90 => Kind::UnknownPayee,
            90..92 => Kind::MalformedAmount,
            92..94 => Kind::NoRoute,
            94..96 => Kind::Sanctioned,
            96..98 => Kind::PossibleMatch,
            _ => Kind::MissingTravelData,
        };
        if (kind == Kind::NoRoute && unroutable.is_empty())
            || (kind == Kind::MultiHop && multi_hop.is_empty())
            || (matches!(kind, Kind::CrossBorderFixedSend | Kind::CrossBorderFixedReceive) && direct.is_empty())
            || (matches!(kind, Kind::Quoted | Kind::InsufficientFunds) && routable.is_empty())
            || (kind == Kind::InsufficientFunds && catalogue.low_balance.is_none())
            || (kind == Kind::OverLimit && catalogue.limits.is_empty())
            || (kind == Kind::MissingTravelData && catalogue.travel_rules.is_empty())
        {
            kind = Kind::Domestic;
        }
        let (from, to) = match kind {
            Kind::Domestic | Kind::OverLimit | Kind::MalformedAmount | Kind::MissingTravelData => {
                let ledger = match kind {
                    Kind::MissingTravelData => {
                        &catalogue.travel_rules[rng.random_range(0..catalogue.travel_rules.len())].0
                    }
                    Kind::OverLimit => &catalogue.limits[rng.random_range(0..catalogue.limits.len())].0,
                    _ => ledgers[rng.random_range(0..ledgers.len())],
                };
                (ledger, ledger)
            }
            Kind::NoRoute => unroutable[rng.random_range(0..unroutable.len())],
            Kind::MultiHop => multi_hop[rng.random_range(0..multi_hop.len())],
            Kind::Quoted => routable[rng.random_range(0..routable.len())],
            Kind::InsufficientFunds => {
                let from = catalogue.low_balance.as_ref().map_or(ledgers[0], |(address, _)| &address.ledger);
                let to = routable.iter().find(|(a, _)| *a == from).map_or(from, |(_, b)| *b);
                (from, to)
            }
            _ => direct[rng.random_range(0..direct.len())],
        };
        let (payer, participant) = match (kind, &catalogue.low_balance) {
            (Kind::InsufficientFunds, Some(low)) => low.clone(),
            _ => pick_wallet(&mut rng, from),
        };
        let mut payee = pick_wallet(&mut rng, to).0;
        if payee == payer {
            payee = catalogue.wallets[to].iter().map(|(a, _)| a).find(|a| **a != payer).cloned().unwrap_or(payee);
        }
        let (from_currency, to_currency) = (catalogue.currencies[from], catalogue.currencies[to]);
        let fixed_receive = match kind {
            Kind::CrossBorderFixedReceive => true,
            Kind::MultiHop | Kind::Quoted => rng.random_bool(0.5),
            _ => false,
        };
        let (amount, fixed_side) = match kind {
            _ if fixed_receive => (money_to_wire(retail_amount(&mut rng, to_currency)), wire::FixedSide::Receive),
            Kind::OverLimit => {
                let limit = catalogue.limits.iter().find(|(ledger, _)| ledger == from).map(|(_, limit)| *limit);
                let over =
                    limit.and_then(|limit| Money::from_minor_units(limit.minor_units() / 5 * 6, from_currency).ok());
                (money_to_wire(over.unwrap_or_else(|| retail_amount(&mut rng, from_currency))), wire::FixedSide::Send)
            }
            Kind::InsufficientFunds => {
                let amount =
                    Money::parse("5000", from_currency).unwrap_or_else(|_| retail_amount(&mut rng, from_currency));
                (money_to_wire(amount), wire::FixedSide::Send)
            }
            Kind::MalformedAmount => {
                (wire::Money { currency: from_currency.code().into(), amount: "12.345".into() }, wire::FixedSide::Send)
            }
            Kind::MissingTravelData => {
                // Just above the jurisdiction's threshold.
                let threshold = catalogue.travel_rules.iter().find(|(ledger, _)| ledger == from).map(|(_, t)| *t);
                let above = threshold.and_then(|t| Money::from_minor_units(t.minor_units() + 100, from_currency).ok());
                (money_to_wire(above.unwrap_or_else(|| retail_amount(&mut rng, from_currency))), wire::FixedSide::Send)
            }
            _ => (money_to_wire(retail_amount(&mut rng, from_currency)), wire::FixedSide::Send),
        };
        if kind == Kind::UnknownPayee {
            payee = Address::new(
                to.clone(),
                corridor_schemas::AccountName::new("nobody.here").expect("valid account name"),
            );
        }
        jobs.push(Job {
            kind,
            instruction: wire::PaymentInstruction {
                participant_id: participant,
                idempotency_key: format!("demo-{run}-{index:07}"),
                payer: payer.to_string(),
                payee: payee.to_string(),
                amount: Some(amount),
                fixed_side: fixed_side as i32,
                reference: format!("demo payment {index}"),
                quote_id: String::new(),
                originator: Some(originator(&mut rng, &catalogue.jurisdictions[from], kind)),
                beneficiary: Some(beneficiary(&mut rng, &catalogue.jurisdictions[to], kind)),
                signed_at: None,
                signature: Vec::new(),
            },
        });
    }
    jobs
}

/// The quote request matching a payment instruction.
fn quote_request(instruction: &wire::PaymentInstruction) -> wire::QuoteFxRequest {
    wire::QuoteFxRequest {
        participant_id: instruction.participant_id.clone(),
        payer: instruction.payer.clone(),
        payee: instruction.payee.clone(),
        amount: instruction.amount.clone(),
        fixed_side: instruction.fixed_side,
    }
}

fn observe(
    result: Result<tonic::Response<wire::SubmitPaymentResponse>, tonic::Status>,
) -> (Observed, Option<wire::Payment>) {
    match result {
        Err(status) => (Observed::Refused(format!("{:?}", status.code())), None),
        Ok(response) => {
            let Some(payment) = response.into_inner().payment else {
                return (Observed::Refused(format!("{:?}", tonic::Code::Internal)), None);
            };
            let code = payment.reason.as_ref().map(|reason| reason.code.clone()).unwrap_or_default();
            let observed = match wire::PaymentStatus::try_from(payment.status) {
                Ok(wire::PaymentStatus::Settled) => Observed::Settled,
                Ok(wire::PaymentStatus::Rejected) => Observed::Rejected(code),
                Ok(wire::PaymentStatus::Failed) => Observed::Failed(code),
                Ok(wire::PaymentStatus::Held) => Observed::Held,
                _ => Observed::Pending,
            };
            (observed, Some(payment))
        }
    }
}

pub async fn run(options: DemoOptions) -> anyhow::Result<ExitCode> {
    anyhow::ensure!((1..=PAYMENTS_MAX).contains(&options.payments), "--payments must be 1..={PAYMENTS_MAX}");
    anyhow::ensure!(
        (1..=CONCURRENCY_MAX).contains(&options.concurrency),
        "--concurrency must be 1..={CONCURRENCY_MAX}"
    );
    anyhow::ensure!(
        (1..=CONNECTIONS_MAX).contains(&options.connections),
        "--connections must be 1..={CONNECTIONS_MAX}"
    );

    let mut config = Config::from_toml(NETWORK_TOML).context("the built-in demo network is invalid")?;
    // A fresh store per run (durable: fsync'd and group-committed, or PostgreSQL), removed at the
    // end: the demo's ledgers are in memory and start from their opening balances every time.
    let run = uuid::Uuid::now_v7().simple().to_string();
    let data_dir = std::env::temp_dir().join(format!("corridor-demo-{run}"));
    let demo_database = match options.storage {
        DemoStorage::Embedded => {
            config.storage = StorageConfig {
                backend: StorageBackend::Embedded,
                data_dir: data_dir.clone(),
                ..StorageConfig::default()
            };
            None
        }
        DemoStorage::Postgres => {
            let database = DemoDatabase::create(&options.database_url, &run).await?;
            config.storage = StorageConfig {
                backend: StorageBackend::Postgres,
                data_dir: data_dir.clone(),
                database_url: Some(database.url.clone()),
                redis_url: Some(options.redis_url.clone()),
            };
            Some(database)
        }
    };
    let (mut parties, server_security) = if options.insecure_dev {
        eprintln!("warning: --insecure-dev: plain-text gRPC, no certificates, unsigned instructions");
        Parties::insecure()
    } else {
        Parties::secure(&mut config, &data_dir.join("pki")).context("cannot set up the demo's PKI")?
    };
    let storage = open_storage(&config.storage).await.context("cannot open the demo's store")?;
    let network = Network::embedded(&config, "demo desk quotes (ops/config/network.toml)")?;
    let catalogue = Catalogue::new(&config, &network)?;
    let router = router_over(network, storage, &config, &server_security)?;
    let running = server::start(Arc::clone(&router), "127.0.0.1:0".parse()?, Arc::new(server_security)).await?;
    parties.set_address(running.local_addr.to_string());
    let endpoint = if parties.is_secure() {
        format!("https://{} (mTLS: a certificate per party, signed instructions)", running.local_addr)
    } else {
        format!("http://{} (plain text, --insecure-dev)", running.local_addr)
    };
    print_network(&config, &endpoint);

    // Each participant pays over its own connections (its own certificate).
    let mut senders: HashMap<String, Vec<Sender>> = HashMap::new();
    for participant in &config.participants {
        let mut connections = Vec::with_capacity(options.connections);
        for _ in 0..options.connections {
            let channel = parties.connect(participant.id.as_str()).await?;
            connections.push(Sender {
                payments: PaymentServiceClient::new(channel.clone()),
                fx: FxServiceClient::new(channel),
            });
        }
        senders.insert(participant.id.to_string(), connections);
    }
    let senders = Arc::new(senders);
    let parties = Arc::new(parties);

    let jobs = generate(&catalogue, options.payments, options.seed, &run);
    let progress = ProgressBar::new(u64::try_from(jobs.len()).unwrap_or(u64::MAX));
    progress.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} [{bar:40}] {pos}/{len} payments, {per_sec}")
            .map_err(|error| anyhow::anyhow!("progress template: {error}"))?
            .progress_chars("=> "),
    );

    let started = Instant::now();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut quote_histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let pool = Arc::clone(&senders);
    let signers = Arc::clone(&parties);
    let mut results = futures::stream::iter(jobs.into_iter().enumerate())
        .map(move |(index, job)| {
            let sender =
                pool.get(&job.instruction.participant_id).map(|connections| &connections[index % connections.len()]);
            let sender = sender.cloned();
            let signers = Arc::clone(&signers);
            async move {
                let Job { kind, mut instruction } = job;
                let Some(Sender { payments: mut client, mut fx }) = sender else {
                    let observed = Observed::Refused(format!("no connection for `{}`", instruction.participant_id));
                    return Outcome {
                        kind,
                        instruction,
                        observed,
                        payment: None,
                        latency: Duration::ZERO,
                        quote: None,
                    };
                };
                let mut quote = None;
                if kind == Kind::Quoted {
                    let asked = Instant::now();
                    let answer = fx.quote_fx(quote_request(&instruction)).await;
                    let quote_latency = asked.elapsed();
                    match answer.map(|response| response.into_inner().quote) {
                        Ok(Some(locked)) => {
                            instruction.quote_id = locked.quote_id.clone();
                            quote = Some((locked, quote_latency));
                        }
                        Ok(None) => {}
                        Err(status) => {
                            let observed = Observed::Refused(format!("QuoteFx {:?}", status.code()));
                            return Outcome {
                                kind,
                                instruction,
                                observed,
                                payment: None,
                                latency: quote_latency,
                                quote,
                            };
                        }
                    }
                }
                signers.sign(&mut instruction);
                let sent = Instant::now();
                let result =
                    client.submit_payment(wire::SubmitPaymentRequest { instruction: Some(instruction.clone()) }).await;
                let latency = sent.elapsed();
                let (observed, payment) = observe(result);
                Outcome { kind, instruction, observed, payment, latency, quote }
            }
        })
        .buffer_unordered(options.concurrency);
    while let Some(outcome) = results.next().await {
        histogram.saturating_record(u64::try_from(outcome.latency.as_micros()).unwrap_or(u64::MAX));
        if let Some((_, quote_latency)) = &outcome.quote {
            quote_histogram.saturating_record(u64::try_from(quote_latency.as_micros()).unwrap_or(u64::MAX));
        }
        progress.inc(1);
        outcomes.push(outcome);
    }
    let elapsed = started.elapsed();
    progress.finish_and_clear();

    let mut surprises: Vec<String> = Vec::new();
    print_outcomes(&outcomes, &mut surprises);
    print_corridors(&outcomes);
    print_multi_hop_example(&outcomes);
    print_performance(&outcomes, &histogram, &quote_histogram, elapsed, &options);
    check_quotes(&senders, &parties, &outcomes, &mut surprises).await;
    check_idempotency(&senders, &parties, &outcomes, &mut surprises).await;
    review_held(&parties, &config, &mut surprises).await?;
    let mut operator = PaymentServiceClient::new(parties.connect(crate::pki::OPERATOR_PARTY).await?);
    regulator_feeds(&parties, &config, &router, &mut operator, &mut surprises).await?;
    reconcile(&config, &router, &mut operator, &mut surprises).await?;
    running.stop().await?;
    drop(router);
    let _left_for_the_os = std::fs::remove_dir_all(&data_dir);
    if let Some(database) = demo_database {
        database.drop_database().await?;
    }

    if surprises.is_empty() {
        println!(
            "conservation: ok (every ledger balances to its issuance, no overdraft, no hold left, receipts match the ledgers)"
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("conservation: FAILED");
        for surprise in &surprises {
            println!("  - {surprise}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// A PostgreSQL database made for one demo run, so its receipts are only this run's.
struct DemoDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl DemoDatabase {
    async fn create(admin_url: &str, run: &str) -> anyhow::Result<Self> {
        let name = format!("corridor_demo_{run}");
        let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot reach PostgreSQL at {admin_url}"))?;
        tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await?;
        let (prefix, _) = admin_url.rsplit_once('/').context("--database-url has no database name")?;
        Ok(Self { admin_url: admin_url.to_owned(), url: format!("{prefix}/{name}"), name })
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        let (client, connection) = tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).await?;
        Ok(())
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(header.iter().map(Cell::new).collect::<Vec<_>>());
    table
}

fn right_align(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn print_network(config: &Config, endpoint: &str) {
    println!(
        "Corridor demo: an embedded network of {} CBDC ledgers, payment API on {endpoint}\n",
        config.ledgers.len()
    );
    let mut ledgers = table(&["ledger", "currency", "jurisdiction", "configured accounts"]);
    for ledger in &config.ledgers {
        let accounts =
            config.participants.iter().flat_map(|p| &p.accounts).filter(|a| a.address.ledger == ledger.id).count();
        ledgers.add_row(vec![
            ledger.id.to_string(),
            ledger.currency.to_string(),
            ledger.jurisdiction.to_string(),
            accounts.to_string(),
        ]);
    }
    right_align(&mut ledgers, &[3]);
    println!("{ledgers}\n");
}

fn print_outcomes(outcomes: &[Outcome], surprises: &mut Vec<String>) {
    let mut counts: BTreeMap<(Kind, Observed), usize> = BTreeMap::new();
    for outcome in outcomes {
        *counts.entry((outcome.kind, outcome.observed.clone())).or_default() += 1;
        if outcome.observed != outcome.kind.expected() && surprises.len() < 20 {
            let reason =
                outcome.payment.as_ref().and_then(|p| p.reason.as_ref()).map(|r| r.message.clone()).unwrap_or_default();
            surprises.push(format!(
                "{} payment {} → {} ended {:?}, expected {:?} {reason}",
                outcome.kind.label(),
                outcome.instruction.payer,
                outcome.instruction.payee,
                outcome.observed,
                outcome.kind.expected()
            ));
        }
    }
    let mut outcome_table = table(&["payment kind", "outcome", "reason", "count", "as expected"]);
    for ((kind, observed), count) in &counts {
        let (status, reason) = observed.describe();
        let expected = if *observed == kind.expected() { "yes" } else { "NO" };
        outcome_table.add_row(vec![kind.label().to_owned(), status, reason, count.to_string(), expected.to_owned()]);
    }
    right_align(&mut outcome_table, &[3]);
    let settled = outcomes.iter().filter(|o| o.observed == Observed::Settled).count();
    println!("Outcomes: {settled} settled, {} refused, of {}", outcomes.len() - settled, outcomes.len());
    println!("{outcome_table}\n");
}

#[derive(Default)]
struct CorridorVolume {
    payments: usize,
    send_minor: i128,
    receive_minor: i128,
    fees_minor: i128,
}

fn minor_of(money: Option<&wire::Money>) -> Option<(Currency, i64)> {
    let money = Money::try_from(money?.clone()).ok()?;
    Some((money.currency(), money.minor_units()))
}

/// A receipt's signed decimal posting as minor units, if it is exact in its currency.
fn posting_minor_units(posting: &wire::Posting) -> Option<i64> {
    let currency = Currency::from_code(&posting.currency).ok()?;
    parse_signed_minor_units(&posting.amount, currency).ok()
}

fn format_wide_minor(minor: i128, currency: Currency) -> String {
    i64::try_from(minor).map_or_else(|_| format!("{minor} minor units"), |minor| format_minor_units(minor, currency))
}

fn print_corridors(outcomes: &[Outcome]) {
    let mut corridors: BTreeMap<(String, Currency, Currency), CorridorVolume> = BTreeMap::new();
    for payment in outcomes.iter().filter(|o| o.observed == Observed::Settled).filter_map(|o| o.payment.as_ref()) {
        let (Some((send_currency, send)), Some((receive_currency, receive))) =
            (minor_of(payment.send_amount.as_ref()), minor_of(payment.receive_amount.as_ref()))
        else {
            continue;
        };
        let volume = corridors.entry((payment.route.join(" → "), send_currency, receive_currency)).or_default();
        volume.payments += 1;
        volume.send_minor += i128::from(send);
        volume.receive_minor += i128::from(receive);
        // The payer's fees: those in the send currency (a later hop's fee is in its own).
        volume.fees_minor += payment
            .fees
            .iter()
            .filter_map(|fee| minor_of(fee.amount.as_ref()))
            .filter(|(currency, _)| *currency == send_currency)
            .map(|(_, m)| i128::from(m))
            .sum::<i128>();
    }
    let mut corridor_table = table(&["route", "settled", "sent", "received", "payer's fees"]);
    for ((route, from, to), volume) in &corridors {
        corridor_table.add_row(vec![
            route.clone(),
            volume.payments.to_string(),
            format!("{} {from}", format_wide_minor(volume.send_minor, *from)),
            format!("{} {to}", format_wide_minor(volume.receive_minor, *to)),
            format!("{} {from}", format_wide_minor(volume.fees_minor, *from)),
        ]);
    }
    right_align(&mut corridor_table, &[1, 2, 3, 4]);
    println!("Volume per route (settled payments; a route of three ledgers converts twice)");
    println!("{corridor_table}\n");
}

fn format_ms(micros: u64) -> String {
    format!("{}.{:02} ms", micros / 1_000, (micros % 1_000) / 10)
}

fn print_performance(
    outcomes: &[Outcome],
    histogram: &Histogram<u64>,
    quote_histogram: &Histogram<u64>,
    elapsed: Duration,
    options: &DemoOptions,
) {
    let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX).max(1);
    let count = u64::try_from(outcomes.len()).unwrap_or(u64::MAX);
    let throughput = count.saturating_mul(1_000_000) / elapsed_us;
    let mut performance =
        table(&["storage", "payments", "concurrency", "wall time", "throughput", "p50", "p90", "p99", "max"]);
    let storage = match options.storage {
        DemoStorage::Embedded => "embedded (fsync)",
        DemoStorage::Postgres => "PostgreSQL + Redis",
    };
    performance.add_row(vec![
        storage.to_owned(),
        count.to_string(),
        format!("{} over {} connections", options.concurrency, options.connections),
        format_ms(elapsed_us),
        format!("{throughput} payments/s"),
        format_ms(histogram.value_at_quantile(0.50)),
        format_ms(histogram.value_at_quantile(0.90)),
        format_ms(histogram.value_at_quantile(0.99)),
        format_ms(histogram.max()),
    ]);
    if !quote_histogram.is_empty() {
        performance.add_row(vec![
            "QuoteFx (prices, stores the lock)".to_owned(),
            quote_histogram.len().to_string(),
            String::new(),
            String::new(),
            String::new(),
            format_ms(quote_histogram.value_at_quantile(0.50)),
            format_ms(quote_histogram.value_at_quantile(0.90)),
            format_ms(quote_histogram.value_at_quantile(0.99)),
            format_ms(quote_histogram.max()),
        ]);
    }
    right_align(&mut performance, &[1, 3, 4, 5, 6, 7, 8]);
    println!("Latency, as the client saw it (submit to final answer, over gRPC on loopback)");
    println!("{performance}\n");
}

/// One settled multi-hop payment's hops and fees, as its receipt tells them.
fn print_multi_hop_example(outcomes: &[Outcome]) {
    let Some(payment) = outcomes
        .iter()
        .filter(|o| o.observed == Observed::Settled)
        .filter_map(|o| o.payment.as_ref())
        .find(|p| p.hops.len() >= 2)
    else {
        return;
    };
    let money =
        |m: &Option<wire::Money>| m.as_ref().map(|m| format!("{} {}", m.amount, m.currency)).unwrap_or_default();
    let mut hops = table(&["hop", "provider", "pair", "rate", "rate source", "provider takes", "provider pays"]);
    for hop in &payment.hops {
        let conversion = hop.conversion.clone().unwrap_or_default();
        hops.add_row(vec![
            format!("{} → {}", hop.from_ledger, hop.to_ledger),
            conversion.provider_id,
            conversion.pair,
            conversion.rate,
            conversion.rate_source,
            money(&hop.send_amount),
            money(&hop.receive_amount),
        ]);
    }
    for fee in &payment.fees {
        hops.add_row(vec![
            format!("fee {}", fee.corridor),
            String::new(),
            String::new(),
            String::new(),
            fee.account.clone(),
            money(&fee.amount),
            String::new(),
        ]);
    }
    right_align(&mut hops, &[3, 5, 6]);
    println!(
        "A multi-hop payment: {} pays {} (debited {}), {} receives {}; {} legs in one two-phase commit",
        payment.payer,
        money(&payment.send_amount),
        money(&payment.total_debit),
        payment.payee,
        money(&payment.receive_amount),
        payment.legs.len()
    );
    println!("{hops}\n");
}

/// Every quoted payment that settled must have settled at exactly its quote; a used quote must be
/// refused to a second payment, and to another participant.
async fn check_quotes(
    senders: &HashMap<String, Vec<Sender>>,
    parties: &Parties,
    outcomes: &[Outcome],
    surprises: &mut Vec<String>,
) {
    const REUSES_MAX: usize = 20;
    let quoted: Vec<(&Outcome, &wire::Quote)> =
        outcomes.iter().filter_map(|o| o.quote.as_ref().map(|(quote, _)| (o, quote))).collect();
    let mut exact = 0;
    let mut settled = 0;
    for (outcome, quote) in &quoted {
        let Some(payment) = outcome.payment.as_ref().filter(|_| outcome.observed == Observed::Settled) else {
            continue;
        };
        settled += 1;
        let same = payment.send_amount == quote.send_amount
            && payment.receive_amount == quote.receive_amount
            && payment.total_debit == quote.total_debit
            && payment.fees == quote.fees
            && payment.hops == quote.hops
            && payment.route == quote.route
            && payment.quote_id == quote.quote_id;
        if same {
            exact += 1;
        } else if surprises.len() < 20 {
            surprises.push(format!("payment {} did not settle at its quote {}", payment.payment_id, quote.quote_id));
        }
    }
    let (mut reused, mut stolen, mut tried) = (0, 0, 0);
    for (outcome, _) in quoted.iter().filter(|(o, _)| o.observed == Observed::Settled).take(REUSES_MAX) {
        tried += 1;
        let mut again = outcome.instruction.clone();
        again.idempotency_key.push_str("-again");
        parties.sign(&mut again);
        let Some(mut client) = payments_of(senders, &again.participant_id) else { continue };
        match observe(client.submit_payment(wire::SubmitPaymentRequest { instruction: Some(again.clone()) }).await) {
            (Observed::Rejected(code), _) if code == "QUOTE_ALREADY_USED" => reused += 1,
            other => surprises.push(format!("a second payment with quote {} gave {:?}", again.quote_id, other.0)),
        }
        let mut other_bank = again;
        other_bank.participant_id = "lp-alpha".into();
        other_bank.idempotency_key.push_str("-stolen");
        parties.sign(&mut other_bank);
        let Some(mut client) = payments_of(senders, &other_bank.participant_id) else { continue };
        match client.submit_payment(wire::SubmitPaymentRequest { instruction: Some(other_bank.clone()) }).await {
            Err(status) if status.code() == tonic::Code::PermissionDenied => stolen += 1,
            other => {
                surprises.push(format!("quote {} used by another participant gave {other:?}", other_bank.quote_id))
            }
        }
    }
    let mut quotes = table(&["check", "sent", "as expected"]);
    quotes.add_row(vec![
        "quoted and settled → exactly the quoted amounts, fees and hops".to_owned(),
        settled.to_string(),
        exact.to_string(),
    ]);
    quotes.add_row(vec![
        "a used quote, new idempotency key → REJECTED QUOTE_ALREADY_USED".to_owned(),
        tried.to_string(),
        reused.to_string(),
    ]);
    quotes.add_row(vec![
        "the quote, another participant → PERMISSION_DENIED".to_owned(),
        tried.to_string(),
        stolen.to_string(),
    ]);
    right_align(&mut quotes, &[1, 2]);
    println!("Locked quotes ({} quoted with QuoteFx)", quoted.len());
    println!("{quotes}\n");
}

/// A payment client of `participant`'s own connections.
fn payments_of(senders: &HashMap<String, Vec<Sender>>, participant: &str) -> Option<PaymentServiceClient<Channel>> {
    senders.get(participant).and_then(|connections| connections.first()).map(|sender| sender.payments.clone())
}

/// Every officer reviews the payments held for its jurisdiction: the demo approves one in two
/// and rejects the others (each jurisdiction holding a payment gives the same verdict). Approved
/// ones must then settle, rejected ones end REJECTED.
async fn review_held(parties: &Parties, config: &Config, surprises: &mut Vec<String>) -> anyhow::Result<()> {
    let mut verdicts: BTreeMap<String, bool> = BTreeMap::new();
    let mut finals: BTreeMap<String, wire::Payment> = BTreeMap::new();
    for officer in &config.compliance_officers {
        let mut review = ComplianceReviewClient::new(parties.connect(officer.id.as_str()).await?);
        let held = review
            .list_held_payments(wire::ListHeldPaymentsRequest { officer_id: officer.id.to_string() })
            .await?
            .into_inner()
            .payments;
        for payment in held {
            let count = verdicts.len();
            let approve = *verdicts.entry(payment.payment_id.clone()).or_insert(count.is_multiple_of(2));
            let verdict = if approve { wire::ReviewVerdict::Approve } else { wire::ReviewVerdict::Reject };
            let decided = review
                .decide_held_payment(wire::DecideHeldPaymentRequest {
                    officer_id: officer.id.to_string(),
                    payment_id: payment.payment_id.clone(),
                    verdict: verdict as i32,
                    note: if approve { "documents checked".into() } else { "cannot rule out the match".into() },
                })
                .await?
                .into_inner()
                .payment
                .context("DecideHeldPayment answered no payment")?;
            finals.insert(decided.payment_id.clone(), decided);
        }
    }
    let (mut settled, mut rejected) = (0, 0);
    for (id, approve) in &verdicts {
        let status = finals.get(id).map_or(wire::PaymentStatus::Unspecified as i32, |payment| payment.status);
        match (approve, wire::PaymentStatus::try_from(status)) {
            (true, Ok(wire::PaymentStatus::Settled)) => settled += 1,
            (false, Ok(wire::PaymentStatus::Rejected)) => rejected += 1,
            (_, other) => surprises.push(format!("held payment {id} (approve: {approve}) ended {other:?}")),
        }
    }
    let mut table = table(&["review", "payments", "as expected"]);
    let approved = verdicts.values().filter(|approve| **approve).count();
    table.add_row(vec![
        "approved by every holding jurisdiction → SETTLED".to_owned(),
        approved.to_string(),
        settled.to_string(),
    ]);
    table.add_row(vec![
        "rejected by an officer → REJECTED (REVIEW_REJECTED)".to_owned(),
        (verdicts.len() - approved).to_string(),
        rejected.to_string(),
    ]);
    right_align(&mut table, &[1, 2]);
    println!("Compliance review (ComplianceReview, {} officers)", config.compliance_officers.len());
    println!("{table}\n");
    Ok(())
}

/// Every regulator reads its feed over ComplianceFeed: the counts, the first records of one feed,
/// completeness against the receipts (every final payment in exactly the feeds of the
/// jurisdictions it touched), and an offline verification of each export against the router's
/// public key.
async fn regulator_feeds(
    parties: &Parties,
    config: &Config,
    router: &Router,
    payments: &mut PaymentServiceClient<Channel>,
    surprises: &mut Vec<String>,
) -> anyhow::Result<()> {
    if let Some(signer) = router.feed_signer() {
        crate::feed::checkpoint_once(
            router.feed().store().as_ref(),
            signer,
            crate::storage::unix_ms(std::time::SystemTime::now()),
        )
        .await?;
    }
    // What the receipts say each feed must hold: every final payment, in every jurisdiction it touched.
    let mut expected: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = payments
            .list_payments(wire::ListPaymentsRequest { participant_id: String::new(), page_size: 1_000, page_token })
            .await?
            .into_inner();
        for payment in &page.payments {
            let is_final = [wire::PaymentStatus::Settled, wire::PaymentStatus::Rejected, wire::PaymentStatus::Failed]
                .iter()
                .any(|status| payment.status == *status as i32);
            if is_final {
                for jurisdiction in router.feed().touched(payment) {
                    expected.entry(jurisdiction.to_string()).or_default().insert(payment.payment_id.clone());
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut counts = table(&[
        "regulator",
        "feed",
        "records",
        "screenings",
        "outcomes",
        "receipts expect",
        "missing",
        "not its own",
        "checkpoints",
        "verified offline",
    ]);
    let mut sample: Option<(String, Vec<corridor_compliance::feed::FeedRecord>)> = None;
    for regulator in &config.regulators {
        let client = ComplianceFeedClient::new(parties.connect(regulator.id.as_str()).await?);
        let export = crate::feed_command::export_feed(client, regulator.id.as_str()).await?;
        let lines = corridor_compliance::feed::parse_lines(&export.text)?;
        let key: corridor_compliance::feed::FeedPublicKey =
            export.public_key.parse().map_err(|error| anyhow::anyhow!("public key: {error}"))?;
        let verified = match corridor_compliance::feed::verify(&lines, &[key]) {
            Ok(report) => format!("ok ({} records)", report.records),
            Err(error) => {
                surprises.push(format!("{}'s feed does not verify: {error}", regulator.id));
                "BROKEN".to_owned()
            }
        };
        let records: Vec<corridor_compliance::feed::FeedRecord> = lines
            .into_iter()
            .filter_map(|line| match line {
                corridor_compliance::feed::FeedLine::Record(record) => Some(*record),
                corridor_compliance::feed::FeedLine::Checkpoint(_) => None,
            })
            .collect();
        let outcomes: std::collections::BTreeSet<String> = records
            .iter()
            .filter(|r| r.entry.kind == corridor_compliance::feed::FeedKind::Outcome)
            .map(|r| r.entry.payment_id.clone())
            .collect();
        let screenings =
            records.iter().filter(|r| r.entry.kind == corridor_compliance::feed::FeedKind::Screening).count();
        let own = expected.get(regulator.jurisdiction.as_str()).cloned().unwrap_or_default();
        let missing = own.difference(&outcomes).count();
        let foreign = outcomes.difference(&own).count();
        if missing > 0 || foreign > 0 {
            surprises.push(format!(
                "{}'s feed: {missing} final payments missing, {foreign} payments that are not its own",
                regulator.id
            ));
        }
        counts.add_row(vec![
            regulator.id.to_string(),
            regulator.jurisdiction.to_string(),
            records.len().to_string(),
            screenings.to_string(),
            outcomes.len().to_string(),
            own.len().to_string(),
            missing.to_string(),
            foreign.to_string(),
            export.checkpoints.to_string(),
            verified,
        ]);
        if sample.is_none() {
            sample = Some((regulator.id.to_string(), records));
        }
    }
    right_align(&mut counts, &[2, 3, 4, 5, 6, 7, 8]);
    println!("Regulator feeds (ComplianceFeed/Subscribe from sequence 1, checked against the receipts)");
    println!("{counts}\n");
    if let Some((regulator, records)) = sample {
        let mut first = table(&["seq", "kind", "payment", "route", "amounts", "decisions", "status"]);
        for record in records.iter().filter(|r| !r.entry.decisions.is_empty() || r.entry.status.is_some()).take(8) {
            let entry = &record.entry;
            let decisions: Vec<String> = entry
                .decisions
                .iter()
                .map(|d| format!("{} {} {}", d.jurisdiction, d.hook, d.code.as_deref().unwrap_or(d.outcome.as_str())))
                .collect();
            first.add_row(vec![
                record.sequence.to_string(),
                entry.kind.as_str().to_owned(),
                entry.payment_id.chars().take(13).collect::<String>() + "…",
                entry.route.join("→"),
                entry.amounts.join(", "),
                decisions.join("; "),
                entry.status.clone().unwrap_or_default(),
            ]);
        }
        println!("The first records of {regulator}'s subscription");
        println!("{first}\n");
    }
    Ok(())
}

/// Retries some settled payments' keys: each must return the first payment, and the same key
/// with another amount must be refused with ALREADY_EXISTS.
async fn check_idempotency(
    senders: &HashMap<String, Vec<Sender>>,
    parties: &Parties,
    outcomes: &[Outcome],
    surprises: &mut Vec<String>,
) {
    const RETRIES_MAX: usize = 50;
    let settled: Vec<&Outcome> =
        outcomes.iter().filter(|o| o.observed == Observed::Settled).take(RETRIES_MAX).collect();
    let (mut replayed, mut conflicting) = (0, 0);
    for outcome in &settled {
        let first_id = outcome.payment.as_ref().map(|p| p.payment_id.clone()).unwrap_or_default();
        let Some(mut client) = payments_of(senders, &outcome.instruction.participant_id) else { continue };
        let retry =
            client.submit_payment(wire::SubmitPaymentRequest { instruction: Some(outcome.instruction.clone()) }).await;
        match observe(retry) {
            (Observed::Settled, Some(payment)) if payment.payment_id == first_id => replayed += 1,
            other => surprises.push(format!("retry of key {} gave {:?}", outcome.instruction.idempotency_key, other.0)),
        }
        let mut changed = outcome.instruction.clone();
        changed.reference.push_str(" (changed)");
        parties.sign(&mut changed);
        match client.submit_payment(wire::SubmitPaymentRequest { instruction: Some(changed) }).await {
            Err(status) if status.code() == tonic::Code::AlreadyExists => conflicting += 1,
            other => surprises
                .push(format!("reused key {} with a new body gave {other:?}", outcome.instruction.idempotency_key)),
        }
    }
    let mut idempotency = table(&["check", "sent", "as expected"]);
    idempotency.add_row(vec![
        "same key, same instruction → first payment returned".to_owned(),
        settled.len().to_string(),
        replayed.to_string(),
    ]);
    idempotency.add_row(vec![
        "same key, changed instruction → ALREADY_EXISTS".to_owned(),
        settled.len().to_string(),
        conflicting.to_string(),
    ]);
    right_align(&mut idempotency, &[1, 2]);
    println!("Idempotent retries");
    println!("{idempotency}\n");
}

/// Rebuilds every account's balance from the opening balances and the receipts the API returns,
/// compares it with the ledger itself, and audits each ledger.
async fn reconcile(
    config: &Config,
    router: &Router,
    client: &mut PaymentServiceClient<Channel>,
    surprises: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut expected: HashMap<(String, String), i128> = HashMap::new();
    for participant in &config.participants {
        for account in &participant.accounts {
            let currency = config.ledger(&account.address.ledger).map(|l| l.currency);
            let opening = account.opening_balance.zip(currency).and_then(|(b, c)| Money::from_decimal(b, c).ok());
            *expected.entry((account.address.ledger.to_string(), account.address.account.to_string())).or_default() +=
                opening.map_or(0, |m| i128::from(m.minor_units()));
        }
    }
    let mut page_token = String::new();
    let mut receipts = 0usize;
    loop {
        let page = client
            .list_payments(wire::ListPaymentsRequest { participant_id: String::new(), page_size: 1_000, page_token })
            .await?
            .into_inner();
        for payment in &page.payments {
            receipts += 1;
            let settled = payment.status == wire::PaymentStatus::Settled as i32;
            for leg in &payment.legs {
                let committed = leg.state == wire::LegState::Committed as i32;
                if committed != settled {
                    surprises.push(format!(
                        "payment {} is {} but its {} leg is {}",
                        payment.payment_id, payment.status, leg.ledger_id, leg.state
                    ));
                }
                if !committed {
                    continue;
                }
                for posting in &leg.postings {
                    let Some(minor) = posting_minor_units(posting) else {
                        surprises.push(format!("payment {} has an unreadable posting {posting:?}", payment.payment_id));
                        continue;
                    };
                    *expected.entry((leg.ledger_id.clone(), posting.account.clone())).or_default() += i128::from(minor);
                }
            }
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }

    let mut ledgers =
        table(&["ledger", "issued", "sum of balances", "held", "accounts", "receipts reconcile", "status"]);
    for ledger in &router.network().embedded_ledgers {
        let description = ledger.description();
        let audit = ledger.audit();
        let balances = ledger.balances();
        let mismatched = balances
            .iter()
            .filter(|(account, balance)| {
                expected.get(&(description.ledger.to_string(), account.to_string())).copied().unwrap_or(0)
                    != i128::from(**balance)
            })
            .count();
        let ok = audit.is_sound() && audit.held_minor == 0 && audit.prepared_transactions == 0 && mismatched == 0;
        if !ok {
            surprises.push(format!(
                "ledger {}: {audit:?}, {mismatched} accounts differ from the receipts",
                description.ledger
            ));
        }
        let currency = description.currency;
        ledgers.add_row(vec![
            description.ledger.to_string(),
            format!("{} {currency}", format_wide_minor(audit.issued_minor, currency)),
            format!("{} {currency}", format_wide_minor(audit.balances_minor, currency)),
            format!("{} {currency}", format_wide_minor(audit.held_minor, currency)),
            audit.accounts.to_string(),
            if mismatched == 0 { "all".to_owned() } else { format!("{mismatched} differ") },
            if ok { "ok".to_owned() } else { "BROKEN".to_owned() },
        ]);
    }
    right_align(&mut ledgers, &[1, 2, 3, 4]);
    println!("Conservation check per ledger ({receipts} receipts read back over gRPC)");
    println!("{ledgers}\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_network_is_valid_and_the_mix_covers_every_kind() {
        let config = Config::from_toml(NETWORK_TOML).unwrap();
        let network = Network::embedded(&config, "test").unwrap();
        let catalogue = Catalogue::new(&config, &network).unwrap();
        let jobs = generate(&catalogue, 2_000, 7, "test");
        for kind in [
            Kind::Domestic,
            Kind::CrossBorderFixedSend,
            Kind::CrossBorderFixedReceive,
            Kind::MultiHop,
            Kind::Quoted,
            Kind::OverLimit,
            Kind::InsufficientFunds,
            Kind::UnknownPayee,
            Kind::MalformedAmount,
            Kind::NoRoute,
            Kind::Sanctioned,
            Kind::PossibleMatch,
            Kind::MissingTravelData,
        ] {
            assert!(jobs.iter().any(|job| job.kind == kind), "no {kind:?} payment in the mix");
        }
        let again = generate(&catalogue, 2_000, 7, "test");
        assert!(jobs.iter().zip(&again).all(|(a, b)| a.instruction == b.instruction), "same seed, other payments");
    }
}
