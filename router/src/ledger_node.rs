//! `corridor ledger-node`: serves one central-bank ledger over the ledger protocol
//! (`corridor.v1.LedgerAdapter`), with gRPC health and reflection, so the router can reach it as
//! an out-of-process adapter through `RemoteLedger`.
//!
//! Backends: `memory` is the reference in-memory ledger, durable when given a data file (its
//! operation log; without one its state is lost at exit, which the node warns about); `postgres`
//! is the PostgreSQL reference ledger. The node's TOML file names the ledger and its accounts;
//! each account is created with its opening balance when it does not exist yet (so the opening
//! balances of a new ledger are issued exactly once, and never again on a restart), and an existing
//! account is never touched.
//!
//! With `--coordinator`, the node runs the in-doubt resolver: transactions it has held for too long
//! without a decision are resolved by asking the router (`TransactionCoordinator`).
//!
//! Security: mutual TLS with `--tls-ca/--tls-cert/--tls-key/--tls-crl` (a `ledger_node`
//! certificate from `corridor pki`); only the router's certificate may call the ledger protocol,
//! and the node presents its own certificate to the coordinator. `--insecure-dev` serves plain
//! text, for development.
//!
//! The node prints `corridor ledger-node listening on <address>` as its first line on stdout
//! (scripts and tests read it), logs to stderr, and stops cleanly on SIGTERM or Ctrl-C.
//!
//! It does not: route payments, talk to other ledgers, or change balances except through the
//! protocol and the opening balances of its configuration.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use corridor_ledger_adapters::remote::{InDoubtResolver, InDoubtResolverSettings, LedgerAdapterService};
use corridor_ledger_adapters::{
    InMemoryLedger, Ledger, LedgerDescription, LedgerError, OPENING_ACCOUNTS_MAX, PostgresLedger,
};
use corridor_schemas::wire::FILE_DESCRIPTOR_SET;
use corridor_schemas::wire::v1::ledger_adapter_server::LedgerAdapterServer;
use corridor_schemas::{AccountName, Currency, Jurisdiction, LedgerId, Money, MoneyError};
use serde::Deserialize;
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;

use crate::authz::{self, Call};
use crate::transport::{self, ClientSecurity, ServerSecurity, TlsArgs};

/// The address a node listens on when neither the command line nor the file says.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:50061";
/// A call still unanswered after this long is cancelled with DEADLINE_EXCEEDED.
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// How long a stopping node waits for in-flight calls and connected clients before it exits.
pub const SHUTDOWN_GRACE_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// The in-memory reference ledger; durable with --data-file.
    Memory,
    /// The PostgreSQL reference ledger (--database-url).
    Postgres,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LedgerNodeOptions {
    /// The node's configuration (TOML), e.g. ops/config/ledger-node-e-hkd.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Overrides `node.listen`; port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    #[arg(long, value_enum, default_value_t = Backend::Memory)]
    pub backend: Backend,
    /// Memory backend: the operation log that keeps the ledger across restarts. Overrides
    /// `node.data_file`.
    #[arg(long)]
    pub data_file: Option<PathBuf>,
    /// Postgres backend: e.g. postgres://corridor@localhost/corridor. Overrides `node.database_url`.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The router serving TransactionCoordinator, e.g. 127.0.0.1:50051: enables in-doubt
    /// resolution. Overrides `node.coordinator`.
    #[arg(long)]
    pub coordinator: Option<String>,
    /// The node's certificate (role ledger_node), the CA and its CRL; or --insecure-dev.
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The node's TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerNodeConfig {
    pub ledger: LedgerSection,
    #[serde(default)]
    pub node: NodeSection,
    #[serde(default)]
    pub accounts: Vec<AccountSection>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSection {
    pub id: LedgerId,
    pub currency: Currency,
    pub jurisdiction: Jurisdiction,
    /// A display name, e.g. "e-HKD".
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub data_file: Option<PathBuf>,
    #[serde(default)]
    pub database_url: Option<String>,
    #[serde(default)]
    pub coordinator: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    pub name: AccountName,
    /// Decimal, in the ledger's currency, e.g. "1000.00"; zero opens an empty account.
    #[serde(default = "AccountSection::zero")]
    pub opening_balance: String,
}

impl AccountSection {
    fn zero() -> String {
        "0".into()
    }
}

impl LedgerNodeConfig {
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let config: Self = toml::from_str(text)?;
        config.opening_balances()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("invalid configuration {}", path.display()))
    }

    pub fn description(&self) -> LedgerDescription {
        LedgerDescription {
            ledger: self.ledger.id.clone(),
            currency: self.ledger.currency,
            jurisdiction: self.ledger.jurisdiction.clone(),
        }
    }

    /// Each account with its opening balance in minor units, checked; errors name the key.
    pub fn opening_balances(&self) -> anyhow::Result<Vec<(AccountName, i64)>> {
        anyhow::ensure!(
            self.accounts.len() <= OPENING_ACCOUNTS_MAX,
            "accounts: {} accounts; at most {OPENING_ACCOUNTS_MAX}",
            self.accounts.len()
        );
        let mut seen = HashSet::new();
        let mut balances = Vec::with_capacity(self.accounts.len());
        for (index, account) in self.accounts.iter().enumerate() {
            anyhow::ensure!(seen.insert(&account.name), "accounts[{index}].name: {} appears twice", account.name);
            let amount_minor = match Money::parse(&account.opening_balance, self.ledger.currency) {
                Ok(money) => money.minor_units(),
                // The text was well formed (a plain unsigned decimal) and is zero: an empty account.
                Err(MoneyError::NotPositive { .. }) => 0,
                Err(error) => anyhow::bail!("accounts[{index}].opening_balance: {error}"),
            };
            balances.push((account.name.clone(), amount_minor));
        }
        Ok(balances)
    }
}

/// The ledger a node serves, with what its backend needs at shutdown.
enum Served {
    Memory(Arc<InMemoryLedger>),
    Postgres(Arc<PostgresLedger>),
}

impl Served {
    fn ledger(&self) -> Arc<dyn Ledger> {
        match self {
            Served::Memory(ledger) => ledger.clone(),
            Served::Postgres(ledger) => ledger.clone(),
        }
    }
}

/// Runs the node until `shutdown` completes.
pub async fn run(options: LedgerNodeOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<ExitCode> {
    let config = LedgerNodeConfig::load(&options.config)?;
    let description = config.description();
    // Logs; and traces when OTEL_EXPORTER_OTLP_ENDPOINT names a collector: the node's spans join
    // each payment's trace (the router sends its context with every call).
    let export = crate::telemetry::TraceExport {
        endpoint: None,
        from_environment: true,
        service_name: format!("corridor-ledger-node-{}", description.ledger),
    };
    let _telemetry = match crate::telemetry::init(crate::config::LogFormat::Text, &export) {
        Ok(guard) => Some(guard),
        // A test harness or an embedding program may have set a logger already.
        Err(error) => {
            eprintln!("note: {error}");
            None
        }
    };
    let opening = config.opening_balances()?;
    let tls = options.tls.files(true)?;
    if tls.is_none() {
        tracing::warn!("--insecure-dev: plain-text gRPC; anyone who reaches this port can move this ledger's money");
    }
    let server_security = Arc::new(ServerSecurity::from_files(tls.as_ref()).context("tls")?);
    let coordinator_security = ClientSecurity::from_files(tls.as_ref()).context("tls")?;
    let _crl_reloader = server_security.spawn_crl_reloader();
    let served = open_backend(&options, &config, &description, &opening).await?;
    let ledger = served.ledger();

    let listen = match options.listen.or(config.node.listen) {
        Some(listen) => listen,
        None => LISTEN_DEFAULT.parse().context("the default listen address")?,
    };
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let local_addr = listener.local_addr()?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<LedgerAdapterServer<LedgerAdapterService>>().await;
    // List only what this node serves: the descriptor set also holds the payment API.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("corridor.v1.LedgerAdapter")
            .with_service_name("grpc.health.v1.Health")
    };
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tonic::transport::Server::builder()
        .timeout(std::time::Duration::from_millis(REQUEST_TIMEOUT_MS))
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(InterceptedService::new(
            LedgerAdapterService::new(ledger.clone()).into_server(),
            authz::require(Call::LedgerProtocol),
        ))
        .serve_with_incoming_shutdown(transport::incoming(listener, server_security), async {
            let _either_way = server_stopped.await;
        });
    let server = tokio::spawn(server);
    // Tests and scripts read this line to find the port.
    println!("corridor ledger-node listening on {local_addr}");
    tracing::info!(
        address = %local_addr,
        ledger = %description.ledger,
        currency = %description.currency,
        name = config.ledger.name.as_deref().unwrap_or(""),
        backend = ?options.backend,
        "serving the ledger"
    );

    let resolver = match options.coordinator.as_ref().or(config.node.coordinator.as_ref()) {
        Some(coordinator) => {
            let settings = InDoubtResolverSettings::new(description.ledger.clone(), coordinator.clone());
            let endpoint =
                coordinator_security.endpoint(coordinator).with_context(|| format!("--coordinator {coordinator}"))?;
            let resolver = InDoubtResolver::spawn_at(ledger.clone(), settings, endpoint);
            tracing::info!(%coordinator, "resolving in-doubt transactions with the coordinator");
            Some(resolver)
        }
        None => {
            tracing::warn!("no coordinator: transactions left in doubt stay held until one is given");
            None
        }
    };

    shutdown.await;
    tracing::info!("stopping");
    if let Some(resolver) = resolver {
        resolver.stop().await;
    }
    let _already_stopped = stop_server.send(());
    // Graceful: in-flight calls finish and clients are told to go away. A client that never lets
    // go of its connection must not keep the node up, so the wait is bounded; every answered call
    // is durable already, so cutting the rest off loses nothing that was acknowledged.
    match tokio::time::timeout(std::time::Duration::from_millis(SHUTDOWN_GRACE_MS), server).await {
        Ok(finished) => finished.context("the server task failed")??,
        Err(_) => tracing::warn!(
            grace_ms = SHUTDOWN_GRACE_MS,
            "clients still connected after the grace period; stopping anyway"
        ),
    }
    drop(ledger);
    // The last handle goes here once the server has let go: a durable memory ledger's log writer
    // drains and closes its file.
    drop(served);
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn open_backend(
    options: &LedgerNodeOptions,
    config: &LedgerNodeConfig,
    description: &LedgerDescription,
    opening: &[(AccountName, i64)],
) -> anyhow::Result<Served> {
    match options.backend {
        Backend::Memory => {
            let ledger = match options.data_file.as_ref().or(config.node.data_file.as_ref()) {
                Some(path) => {
                    let ledger = InMemoryLedger::open_durable(path, description.clone(), opening)
                        .await
                        .with_context(|| format!("cannot open the ledger's data file {}", path.display()))?;
                    if let Some(replay) = ledger.replay_summary() {
                        tracing::info!(
                            path = %replay.path.display(),
                            created = replay.created,
                            records = replay.records_replayed,
                            torn_tail_bytes = replay.torn_tail_bytes,
                            "opened the ledger's operation log"
                        );
                    }
                    ledger
                }
                None => {
                    tracing::warn!("no --data-file: the ledger is kept in memory only and lost at exit");
                    InMemoryLedger::new(description.clone())
                }
            };
            let created = create_missing_accounts(&ledger, opening).await?;
            ledger.sync().await.context("cannot make the opening balances durable")?;
            log_created(created);
            Ok(Served::Memory(Arc::new(ledger)))
        }
        Backend::Postgres => {
            let url = options
                .database_url
                .as_ref()
                .or(config.node.database_url.as_ref())
                .context("--backend postgres needs --database-url (or node.database_url)")?;
            let ledger =
                PostgresLedger::connect(url, description.clone()).await.context("cannot open the PostgreSQL ledger")?;
            let mut created = 0usize;
            for (account, amount_minor) in opening {
                if !account_exists(&ledger, account).await? {
                    if *amount_minor > 0 {
                        ledger.issue(account.clone(), *amount_minor).await?;
                    } else {
                        ledger.open_account(account.clone()).await?;
                    }
                    created += 1;
                }
            }
            log_created(created);
            Ok(Served::Postgres(Arc::new(ledger)))
        }
    }
}

fn log_created(created: usize) {
    if created > 0 {
        tracing::info!(accounts = created, "created accounts with their opening balances");
    }
}

async fn account_exists(ledger: &dyn Ledger, account: &AccountName) -> anyhow::Result<bool> {
    match ledger.balance(account).await {
        Ok(_) => Ok(true),
        Err(LedgerError::UnknownAccount(_)) => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot read account {account}")),
    }
}

/// Creates each configured account the ledger does not have yet. A new durable memory ledger
/// already has them all (its log opened with them, in one record); this covers a ledger kept in
/// memory only, and accounts added to the file later.
async fn create_missing_accounts(ledger: &InMemoryLedger, opening: &[(AccountName, i64)]) -> anyhow::Result<usize> {
    let mut created = 0;
    for (account, amount_minor) in opening {
        if !account_exists(ledger, account).await? {
            if *amount_minor > 0 {
                ledger
                    .issue(account.clone(), *amount_minor)
                    .with_context(|| format!("cannot create account {account}"))?;
            } else {
                ledger.open_account(account.clone());
            }
            created += 1;
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml: &str, expected_error: &str) {
        let error = LedgerNodeConfig::from_toml(toml).unwrap_err();
        assert!(format!("{error:#}").contains(expected_error), "{error:#} does not mention {expected_error}");
    }

    const LEDGER: &str = "[ledger]\nid = \"e-hkd\"\ncurrency = \"HKD\"\njurisdiction = \"HK\"\n";

    #[test]
    fn a_config_is_read_and_checked() {
        let config = LedgerNodeConfig::from_toml(&format!(
            "{LEDGER}[[accounts]]\nname = \"a\"\nopening_balance = \"12.34\"\n[[accounts]]\nname = \"b\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.opening_balances().unwrap(),
            [(AccountName::new("a").unwrap(), 1_234), (AccountName::new("b").unwrap(), 0)]
        );
        check(
            &format!("{LEDGER}[[accounts]]\nname = \"a\"\nopening_balance = \"1.234\"\n"),
            "accounts[0].opening_balance",
        );
        check(
            &format!("{LEDGER}[[accounts]]\nname = \"a\"\nopening_balance = \"-1\"\n"),
            "accounts[0].opening_balance",
        );
        check(
            &format!("{LEDGER}[[accounts]]\nname = \"a\"\n[[accounts]]\nname = \"a\"\n"),
            "accounts[1].name: a appears twice",
        );
        check("[ledger]\nid = \"e-hkd\"\ncurrency = \"XXX\"\njurisdiction = \"HK\"\n", "currency");
        check(&format!("{LEDGER}[node]\nlisten = \"nowhere\"\n"), "listen");
        check(&format!("{LEDGER}typo = 1\n"), "typo");
    }

    #[test]
    fn the_example_configs_are_valid() {
        for name in ["ledger-node-e-hkd.toml", "ledger-node-e-cny.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops/config").join(name);
            let config = LedgerNodeConfig::load(&path).unwrap();
            assert!(!config.opening_balances().unwrap().is_empty(), "{name}");
        }
    }
}
