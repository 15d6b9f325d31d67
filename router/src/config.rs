//! The router's configuration file (TOML) and its validation.
//!
//! Parsing turns the file into plain structs; [`Config::validate`] then checks every reference
//! (ledgers, accounts, currencies, providers) and returns errors that name the offending key, e.g.
//! `rates[2].pair: no ledger on this network issues AED`. Nothing starts on an invalid config.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use corridor_schemas::{Address, Currency, Jurisdiction, LedgerId, Money, ParticipantId};
use rust_decimal::Decimal;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    /// The router's certificate, key, and the network CA's certificate and CRL (`corridor pki`).
    /// Required by `corridor serve` unless it runs with `--insecure-dev`.
    #[serde(default)]
    pub tls: Option<crate::transport::TlsFiles>,
    #[serde(default)]
    pub settlement: SettlementConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    pub ledgers: Vec<LedgerConfig>,
    #[serde(default)]
    pub participants: Vec<ParticipantConfig>,
    #[serde(default)]
    pub fx: FxConfig,
    #[serde(default)]
    pub rates: Vec<RateConfig>,
    #[serde(default)]
    pub limits: Vec<LimitConfig>,
    #[serde(default)]
    pub compliance: ComplianceConfig,
    #[serde(default)]
    pub compliance_officers: Vec<OfficerConfig>,
    #[serde(default)]
    pub regulators: Vec<RegulatorConfig>,
    #[serde(default)]
    pub sanctions: Option<SanctionsConfig>,
    #[serde(default)]
    pub feed: FeedConfig,
    #[serde(default)]
    pub travel_rules: Vec<TravelRuleConfig>,
    #[serde(default)]
    pub corridor_rules: Vec<CorridorRuleConfig>,
    #[serde(default)]
    pub velocity_limits: Vec<VelocityLimitConfig>,
    #[serde(default)]
    pub fees: Vec<FeeConfig>,
    #[serde(default)]
    pub telemetry: TelemetryConfig,
}

/// How the router shows what it does: its log format, and the HTTP listener of its metrics and
/// probes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Where `/metrics` (Prometheus), `/livez` and `/readyz` are served over plain HTTP, e.g.
    /// `127.0.0.1:9464`. Absent: not served.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// `text` (for people, the default) or `json` (one object per line, for log collectors).
    #[serde(default)]
    pub log_format: LogFormat,
    /// An OpenTelemetry collector's OTLP/HTTP address, e.g. `http://127.0.0.1:4318`: every payment
    /// becomes a trace sent there. Absent: no traces (unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of this router's traces.
    #[serde(default = "TelemetryConfig::default_service_name")]
    pub service_name: String,
}

impl TelemetryConfig {
    fn default_service_name() -> String {
        "corridor-router".to_owned()
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            metrics_listen: None,
            log_format: LogFormat::default(),
            otlp_endpoint: None,
            service_name: Self::default_service_name(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "ServerConfig::default_listen")]
    pub listen: SocketAddr,
    /// How far a signed instruction's `signed_at` may be from the router's clock, either way.
    #[serde(default = "ServerConfig::default_signature_window_ms")]
    pub signature_window_ms: u64,
    /// Sustained payments and quotes per second one participant may send; more are answered
    /// RESOURCE_EXHAUSTED at once, so one participant's flood cannot starve the others.
    #[serde(default = "ServerConfig::default_participant_requests_per_s")]
    pub participant_requests_per_s: u32,
    /// How many requests above the sustained rate a participant may send in a burst.
    #[serde(default = "ServerConfig::default_participant_burst")]
    pub participant_burst: u32,
    /// On SIGTERM, how long payments in flight may take to finish before the router stops anyway
    /// (what is unfinished then is completed by another replica or at the next start).
    #[serde(default = "ServerConfig::default_drain_timeout_ms")]
    pub drain_timeout_ms: u64,
}

impl ServerConfig {
    fn default_listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 50051))
    }
    fn default_signature_window_ms() -> u64 {
        300_000
    }
    fn default_participant_requests_per_s() -> u32 {
        5_000
    }
    fn default_participant_burst() -> u32 {
        1_000
    }
    fn default_drain_timeout_ms() -> u64 {
        30_000
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: Self::default_listen(),
            signature_window_ms: Self::default_signature_window_ms(),
            participant_requests_per_s: Self::default_participant_requests_per_s(),
            participant_burst: Self::default_participant_burst(),
            drain_timeout_ms: Self::default_drain_timeout_ms(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    /// How long the coordinator waits for a ledger's vote before it aborts the payment.
    #[serde(default = "SettlementConfig::default_prepare_timeout_ms")]
    pub prepare_timeout_ms: u64,
    /// Attempts to deliver a commit or abort before the coordinator stops retrying in line.
    #[serde(default = "SettlementConfig::default_decision_attempts_max")]
    pub decision_attempts_max: u32,
    /// Payments being settled at once; more wait for a slot.
    #[serde(default = "SettlementConfig::default_in_flight_max")]
    pub in_flight_max: usize,
}

impl SettlementConfig {
    fn default_prepare_timeout_ms() -> u64 {
        5_000
    }
    fn default_decision_attempts_max() -> u32 {
        5
    }
    fn default_in_flight_max() -> usize {
        4_096
    }
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self {
            prepare_timeout_ms: Self::default_prepare_timeout_ms(),
            decision_attempts_max: Self::default_decision_attempts_max(),
            in_flight_max: Self::default_in_flight_max(),
        }
    }
}

/// Pricing and routing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxConfig {
    /// A rate older than this is never used to price (its provider must publish again).
    #[serde(default = "FxConfig::default_rate_max_age_ms")]
    pub rate_max_age_ms: u64,
    /// How long a quote from `QuoteFx` stays payable.
    #[serde(default = "FxConfig::default_quote_ttl_ms")]
    pub quote_ttl_ms: u64,
    /// The most conversions one route may chain (e-THB → e-HKD → e-AED is 2).
    #[serde(default = "FxConfig::default_hop_limit")]
    pub hop_limit: usize,
    /// Providers whose rates are seeded at start from ECB reference rates.
    #[serde(default)]
    pub ecb_seeds: Vec<EcbSeedConfig>,
}

/// A liquidity provider quoting around one day's ECB reference rates (for demos and replays).
/// The seeded rates are stamped with the start time, so they age like published ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcbSeedConfig {
    /// A file in the ECB `eurofxref-hist.csv` format, relative to the working directory. Absent:
    /// the snapshot built into the binary (2025-01-02 to 2026-10-30).
    #[serde(default)]
    pub file: Option<std::path::PathBuf>,
    /// `YYYY-MM-DD`; absent: the file's latest day.
    #[serde(default)]
    pub date: Option<String>,
    pub provider: ParticipantId,
    /// The provider's spread around the ECB mid, bid to ask.
    pub spread_bps: u32,
    /// `BASE/QUOTE` pairs, crossed through EUR.
    pub pairs: Vec<String>,
}

/// The highest `fx.hop_limit` accepted: each hop adds a ledger to the two-phase commit.
pub const HOP_LIMIT_MAX: usize = 6;

impl FxConfig {
    fn default_rate_max_age_ms() -> u64 {
        60_000
    }
    fn default_quote_ttl_ms() -> u64 {
        30_000
    }
    fn default_hop_limit() -> usize {
        3
    }
}

impl Default for FxConfig {
    fn default() -> Self {
        Self {
            rate_max_age_ms: Self::default_rate_max_age_ms(),
            quote_ttl_ms: Self::default_quote_ttl_ms(),
            hop_limit: Self::default_hop_limit(),
            ecb_seeds: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageBackend {
    /// Journal, receipts and idempotency keys in one local file (redb), group-committed.
    #[default]
    Embedded,
    /// Journal and receipts in PostgreSQL, idempotency keys in Redis: shareable by several routers.
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    #[serde(default)]
    pub backend: StorageBackend,
    /// Where the embedded store keeps its file.
    #[serde(default = "StorageConfig::default_data_dir")]
    pub data_dir: std::path::PathBuf,
    /// For `backend = "postgres"`, e.g. `postgres://postgres@127.0.0.1:5432/postgres`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// For `backend = "postgres"`, e.g. `redis://127.0.0.1:6379`.
    #[serde(default)]
    pub redis_url: Option<String>,
}

impl StorageConfig {
    fn default_data_dir() -> std::path::PathBuf {
        std::path::PathBuf::from("corridor-data")
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::default(),
            data_dir: Self::default_data_dir(),
            database_url: None,
            redis_url: None,
        }
    }
}

/// A central-bank ledger. On the embedded default it runs in-process, in memory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    pub id: LedgerId,
    pub currency: Currency,
    pub jurisdiction: Jurisdiction,
    #[serde(default)]
    pub name: String,
    /// A ledger node's gRPC address (`corridor ledger-node`), e.g. `http://127.0.0.1:50061`.
    /// Absent: the ledger runs in the router's process, durable in `storage.data_dir`.
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A bank or wallet provider: sends payments from its accounts.
    Bank,
    /// Also fills FX legs from its accounts on two or more ledgers.
    LiquidityProvider,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantConfig {
    pub id: ParticipantId,
    pub role: Role,
    #[serde(default)]
    pub name: String,
    /// Accounts the participant owns (may debit). Opening balances are issued on embedded ledgers.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Numbered accounts, for networks with many wallets: each series adds `count` accounts to
    /// `accounts` when the configuration is read.
    #[serde(default)]
    pub account_series: Vec<AccountSeriesConfig>,
    /// The participant's Ed25519 public key (64 hex digits): when set, every payment instruction
    /// it sends must carry a valid signature (schemas/SIGNATURES.md).
    #[serde(default)]
    pub signing_key: Option<corridor_schemas::ParticipantKey>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub address: Address,
    /// Decimal in the ledger's currency; issued into the account at start (embedded ledgers only).
    #[serde(default)]
    pub opening_balance: Option<Decimal>,
}

/// `count` accounts on `ledger` named `<prefix><n>`, n = 1..=count zero-padded to the width of
/// `count` (prefix "bank-hk.s", count 1000000: bank-hk.s0000001 ... bank-hk.s1000000), each
/// opening with `opening_balance`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSeriesConfig {
    pub ledger: LedgerId,
    pub prefix: String,
    pub count: u32,
    #[serde(default)]
    pub opening_balance: Option<Decimal>,
}

/// Most accounts all series of a configuration may add.
pub const SERIES_ACCOUNTS_MAX: u64 = 10_000_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    pub provider: ParticipantId,
    /// `BASE/QUOTE`, e.g. `CNY/HKD`: prices are QUOTE per one BASE.
    pub pair: String,
    pub bid: Decimal,
    pub ask: Decimal,
    /// The largest conversion filled at this rate per payment, as `"<amount> <currency>"` in
    /// either currency of the pair, e.g. `"250000.00 CNY"`.
    #[serde(default)]
    pub maximum: Option<String>,
}

impl RateConfig {
    /// `maximum` as money; `None` when absent.
    pub fn maximum(&self) -> Result<Option<Money>, String> {
        let Some(text) = &self.maximum else { return Ok(None) };
        let (amount, code) = text
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("`{text}` is not of the form \"<amount> <currency>\""))?;
        let currency = Currency::from_code(code.trim()).map_err(|error| error.to_string())?;
        Money::parse(amount, currency).map(Some).map_err(|error| error.to_string())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    pub jurisdiction: Jurisdiction,
    pub currency: Currency,
    /// Largest single payment, as a decimal in `currency`.
    pub single_payment_max: Decimal,
}

/// The review queue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceConfig {
    /// A held payment not decided within this time is rejected (`REVIEW_TIMEOUT`).
    #[serde(default = "ComplianceConfig::default_review_timeout_ms")]
    pub review_timeout_ms: u64,
}

impl ComplianceConfig {
    fn default_review_timeout_ms() -> u64 {
        86_400_000
    }
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        Self { review_timeout_ms: Self::default_review_timeout_ms() }
    }
}

/// A compliance officer, who decides held payments of one jurisdiction. (Identified by this id
/// until officers authenticate with certificates.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfficerConfig {
    pub id: ParticipantId,
    pub jurisdiction: Jurisdiction,
    #[serde(default)]
    pub name: String,
}

/// Sanctions screening against an OFAC SDN list (CSV distribution: sdn, alt, add files).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SanctionsConfig {
    /// The jurisdictions whose payments are screened.
    pub jurisdictions: Vec<Jurisdiction>,
    /// The list's three files; all absent: the snapshot built into the binary
    /// (`compliance/data/sanctions/`). Reloaded from the files on SIGHUP, without a restart.
    #[serde(default)]
    pub sdn_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub alt_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub add_file: Option<std::path::PathBuf>,
    /// Match score (per mille) from which a name is a hit: the payment is denied.
    #[serde(default)]
    pub hit_min: Option<u16>,
    /// Match score (per mille) from which a name is a possible hit: the payment is held for review.
    #[serde(default)]
    pub possible_min: Option<u16>,
}

impl SanctionsConfig {
    /// The three files, if configured (all or none).
    pub fn files(&self) -> Option<[&std::path::Path; 3]> {
        match (&self.sdn_file, &self.alt_file, &self.add_file) {
            (Some(sdn), Some(alt), Some(add)) => Some([sdn, alt, add]),
            _ => None,
        }
    }
}

/// A regulator, who reads its jurisdiction's compliance feed. (Identified by this id until
/// regulators authenticate with certificates.)
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegulatorConfig {
    pub id: ParticipantId,
    pub jurisdiction: Jurisdiction,
    #[serde(default)]
    pub name: String,
}

/// The compliance feed's checkpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// How often the router signs the head of every feed that has grown.
    #[serde(default = "FeedConfig::default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// The Ed25519 signing key (PKCS#8), created on first start if missing. Default:
    /// `<storage.data_dir>/feed-signing-key.pk8`.
    #[serde(default)]
    pub signing_key_file: Option<std::path::PathBuf>,
}

impl FeedConfig {
    fn default_checkpoint_interval_ms() -> u64 {
        5_000
    }
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self { checkpoint_interval_ms: Self::default_checkpoint_interval_ms(), signing_key_file: None }
    }
}

/// A jurisdiction's travel rule: above `threshold` (in `currency`), originator and beneficiary
/// data must be present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelRuleConfig {
    pub jurisdiction: Jurisdiction,
    pub currency: Currency,
    pub threshold: Decimal,
}

/// Corridors a jurisdiction has closed: no payments from it to `closed_to`, none into it from
/// `closed_from` (transit included).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorridorRuleConfig {
    pub jurisdiction: Jurisdiction,
    #[serde(default)]
    pub closed_to: Vec<Jurisdiction>,
    #[serde(default)]
    pub closed_from: Vec<Jurisdiction>,
}

/// Whose payments a velocity limit adds up (config `scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VelocityScopeConfig {
    /// Every payment the participant sends, from any of its accounts.
    Participant,
    /// Every payment from one payer account.
    Wallet,
}

/// A jurisdiction's velocity limit (`[[velocity_limits]]`): within any `window_s` seconds, one
/// participant's (or one wallet's) payments in `currency` may add up to at most `amount_max` and
/// number at most `count_max`. Counted in the embedded store, or in Redis with `backend = "postgres"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VelocityLimitConfig {
    pub jurisdiction: Jurisdiction,
    pub currency: Currency,
    pub scope: VelocityScopeConfig,
    pub window_s: u64,
    /// Decimal in `currency`.
    #[serde(default)]
    pub amount_max: Option<Decimal>,
    #[serde(default)]
    pub count_max: Option<u32>,
}

impl VelocityLimitConfig {
    /// The limit; or the field at fault (empty: the entry as a whole) and why.
    pub fn limit(&self) -> Result<corridor_compliance::VelocityLimit, (&'static str, String)> {
        use corridor_compliance::{VelocityLimit, VelocityLimitError, VelocityScope};
        let amount_max = self
            .amount_max
            .map(|amount| Money::from_decimal(amount, self.currency))
            .transpose()
            .map_err(|error| ("amount_max", error.to_string()))?;
        let scope = match self.scope {
            VelocityScopeConfig::Participant => VelocityScope::Participant,
            VelocityScopeConfig::Wallet => VelocityScope::Wallet,
        };
        let window = std::time::Duration::from_secs(self.window_s);
        VelocityLimit::new(scope, self.currency, window, amount_max, self.count_max).map_err(|error| {
            let field = match error {
                VelocityLimitError::NoMaximum => "",
                VelocityLimitError::Window => "window_s",
                VelocityLimitError::CurrencyMismatch { .. } => "amount_max",
                VelocityLimitError::CountMaxZero => "count_max",
            };
            (field, error.to_string())
        })
    }
}

/// The network fee of one hop of a route, from one ledger to the next, in the source ledger's
/// currency, credited to `account` inside the same two-phase commit. The first hop's fee is
/// charged to the payer on top of the amount; a later hop's is taken out of the amount flowing
/// through it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeConfig {
    pub from_ledger: LedgerId,
    /// The next ledger of the hop; absent means every other ledger (cross-border hops only; a
    /// domestic fee names `to_ledger = from_ledger`). An entry naming a ledger wins over one without.
    #[serde(default)]
    pub to_ledger: Option<LedgerId>,
    /// Only for payments this participant sends; wins over an entry for everyone.
    #[serde(default)]
    pub participant: Option<ParticipantId>,
    /// The fee's currency, stated: it must be the currency of `from_ledger`.
    pub currency: Currency,
    #[serde(default)]
    pub fixed: Decimal,
    #[serde(default)]
    pub basis_points: u32,
    /// Defaults to `<from_ledger>/corridor.fees`.
    #[serde(default)]
    pub account: Option<Address>,
}

/// A configuration error, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, reason: impl ToString) -> Self {
        Self { key: key.into(), reason: reason.to_string() }
    }
}

/// The most basis points a fee may charge (10%): more is surely a typo.
pub const FEE_BASIS_POINTS_MAX: u32 = 1_000;

impl Config {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|error| {
            let key = error.span().map_or_else(|| "config".to_owned(), |span| key_at(text, span.start));
            ConfigError::new(key, error.message())
        })?;
        config.expand_account_series()?;
        config.validate()?;
        Ok(config)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|error| ConfigError::new(path.display().to_string(), format!("cannot read: {error}")))?;
        Self::from_toml(&text)
    }

    /// Adds every series' accounts to its participant's `accounts`.
    fn expand_account_series(&mut self) -> Result<(), ConfigError> {
        let mut total: u64 = 0;
        for (index, participant) in self.participants.iter_mut().enumerate() {
            for (series_index, series) in participant.account_series.iter().enumerate() {
                let key = format!("participants[{index}].account_series[{series_index}]");
                total += u64::from(series.count);
                if series.count == 0 || total > SERIES_ACCOUNTS_MAX {
                    return Err(ConfigError::new(
                        format!("{key}.count"),
                        format!("{} accounts; every series together may add 1 to {SERIES_ACCOUNTS_MAX}", series.count),
                    ));
                }
                let width = series.count.to_string().len();
                // Checks the prefix once: the numbered names differ from the first only in digits.
                let first = format!("{}/{}{:0width$}", series.ledger, series.prefix, 1);
                first
                    .parse::<Address>()
                    .map_err(|error| ConfigError::new(format!("{key}.prefix"), error.to_string()))?;
                participant.accounts.reserve(series.count as usize);
                for number in 1..=series.count {
                    let text = format!("{}/{}{number:0width$}", series.ledger, series.prefix);
                    let address = text
                        .parse::<Address>()
                        .map_err(|error| ConfigError::new(format!("{key}.prefix"), error.to_string()))?;
                    participant.accounts.push(AccountConfig { address, opening_balance: series.opening_balance });
                }
            }
        }
        Ok(())
    }

    pub fn ledger(&self, id: &LedgerId) -> Option<&LedgerConfig> {
        self.ledgers.iter().find(|ledger| &ledger.id == id)
    }

    /// Some ledger of `jurisdiction` issues `currency`, or an error at `key`.
    fn check_jurisdiction_currency(
        &self,
        jurisdiction: &Jurisdiction,
        currency: Currency,
        key: &str,
    ) -> Result<(), ConfigError> {
        if self.ledgers.iter().any(|ledger| &ledger.jurisdiction == jurisdiction && ledger.currency == currency) {
            Ok(())
        } else {
            Err(ConfigError::new(key, format!("no ledger of jurisdiction {jurisdiction} issues {currency}")))
        }
    }

    /// A registered liquidity provider, or an error at `key`.
    fn check_provider(&self, provider: &ParticipantId, key: &str) -> Result<(), ConfigError> {
        let participant = self
            .participants
            .iter()
            .find(|p| &p.id == provider)
            .ok_or_else(|| ConfigError::new(key, format!("participant `{provider}` is not configured")))?;
        if participant.role != Role::LiquidityProvider {
            return Err(ConfigError::new(key, format!("`{provider}` is not a liquidity provider")));
        }
        Ok(())
    }

    /// A pair both of whose currencies some ledger issues, or an error at `key`.
    fn check_pair(&self, text: &str, key: &str) -> Result<corridor_fx::CurrencyPair, ConfigError> {
        let pair = corridor_fx::CurrencyPair::parse(text).map_err(|error| ConfigError::new(key, error))?;
        for currency in [pair.base, pair.quote] {
            if !self.ledgers.iter().any(|ledger| ledger.currency == currency) {
                return Err(ConfigError::new(key, format!("no ledger on this network issues {currency}")));
            }
        }
        Ok(pair)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(tls) = &self.tls
            && tls.crl.is_none()
        {
            return Err(ConfigError::new("tls.crl", "is required: the router honours the CA's revocation list"));
        }
        if self.ledgers.is_empty() {
            return Err(ConfigError::new("ledgers", "at least one ledger is needed"));
        }
        let mut ledger_ids = HashSet::new();
        for (index, ledger) in self.ledgers.iter().enumerate() {
            if !ledger_ids.insert(&ledger.id) {
                return Err(ConfigError::new(format!("ledgers[{index}].id"), format!("`{}` appears twice", ledger.id)));
            }
        }
        for (key, value) in [
            ("settlement.prepare_timeout_ms", self.settlement.prepare_timeout_ms),
            ("settlement.decision_attempts_max", u64::from(self.settlement.decision_attempts_max)),
            ("settlement.in_flight_max", u64::try_from(self.settlement.in_flight_max).unwrap_or(u64::MAX)),
            ("server.participant_requests_per_s", u64::from(self.server.participant_requests_per_s)),
            ("server.participant_burst", u64::from(self.server.participant_burst)),
            ("server.drain_timeout_ms", self.server.drain_timeout_ms),
            ("fx.rate_max_age_ms", self.fx.rate_max_age_ms),
            ("fx.quote_ttl_ms", self.fx.quote_ttl_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be positive"));
            }
        }
        if let Some(endpoint) = &self.telemetry.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "telemetry.otlp_endpoint",
                format!("`{endpoint}` is not an http:// or https:// URL of an OTLP/HTTP collector"),
            ));
        }
        if let Some(metrics) = self.telemetry.metrics_listen
            && metrics == self.server.listen
        {
            return Err(ConfigError::new(
                "telemetry.metrics_listen",
                format!("{metrics} is server.listen too: the metrics need an address of their own"),
            ));
        }
        if self.fx.hop_limit == 0 || self.fx.hop_limit > HOP_LIMIT_MAX {
            return Err(ConfigError::new("fx.hop_limit", format!("must be between 1 and {HOP_LIMIT_MAX}")));
        }
        if self.storage.backend == StorageBackend::Postgres {
            if self.storage.database_url.is_none() {
                return Err(ConfigError::new("storage.database_url", "is required with backend = \"postgres\""));
            }
            if self.storage.redis_url.is_none() {
                return Err(ConfigError::new("storage.redis_url", "is required with backend = \"postgres\""));
            }
        }
        let mut participant_ids = HashSet::new();
        let mut owners: HashMap<&Address, &ParticipantId> = HashMap::new();
        for (index, participant) in self.participants.iter().enumerate() {
            let key = format!("participants[{index}]");
            if !participant_ids.insert(&participant.id) {
                return Err(ConfigError::new(format!("{key}.id"), format!("`{}` appears twice", participant.id)));
            }
            let mut ledgers_of_provider = HashSet::new();
            for (account_index, account) in participant.accounts.iter().enumerate() {
                let key = format!("{key}.accounts[{account_index}]");
                let ledger = self.ledger(&account.address.ledger).ok_or_else(|| {
                    ConfigError::new(
                        format!("{key}.address"),
                        format!("ledger `{}` is not configured", account.address.ledger),
                    )
                })?;
                if let Some(owner) = owners.insert(&account.address, &participant.id) {
                    return Err(ConfigError::new(
                        format!("{key}.address"),
                        format!("{} is already owned by {owner}", account.address),
                    ));
                }
                if participant.role == Role::LiquidityProvider && !ledgers_of_provider.insert(&account.address.ledger) {
                    return Err(ConfigError::new(
                        format!("{key}.address"),
                        format!("a liquidity provider has one account per ledger; {} is its second", account.address),
                    ));
                }
                if let Some(opening_balance) = account.opening_balance {
                    Money::from_decimal(opening_balance, ledger.currency)
                        .map_err(|error| ConfigError::new(format!("{key}.opening_balance"), error))?;
                }
            }
        }
        for (index, rate) in self.rates.iter().enumerate() {
            let key = format!("rates[{index}]");
            self.check_provider(&rate.provider, &format!("{key}.provider"))?;
            let pair = self.check_pair(&rate.pair, &format!("{key}.pair"))?;
            if rate.bid <= Decimal::ZERO || rate.bid > rate.ask {
                return Err(ConfigError::new(
                    format!("{key}.bid"),
                    format!("bid {} and ask {} must be positive with bid <= ask", rate.bid, rate.ask),
                ));
            }
            let maximum = rate.maximum().map_err(|reason| ConfigError::new(format!("{key}.maximum"), reason))?;
            if let Some(maximum) = maximum
                && maximum.currency() != pair.base
                && maximum.currency() != pair.quote
            {
                return Err(ConfigError::new(
                    format!("{key}.maximum"),
                    format!("{} is not a currency of {pair}", maximum.currency()),
                ));
            }
        }
        for (index, seed) in self.fx.ecb_seeds.iter().enumerate() {
            let key = format!("fx.ecb_seeds[{index}]");
            self.check_provider(&seed.provider, &format!("{key}.provider"))?;
            for (pair_index, pair) in seed.pairs.iter().enumerate() {
                self.check_pair(pair, &format!("{key}.pairs[{pair_index}]"))?;
            }
            if seed.spread_bps > corridor_fx::EcbDay::SPREAD_BPS_MAX {
                return Err(ConfigError::new(
                    format!("{key}.spread_bps"),
                    format!("at most {}", corridor_fx::EcbDay::SPREAD_BPS_MAX),
                ));
            }
        }
        for (index, limit) in self.limits.iter().enumerate() {
            let key = format!("limits[{index}]");
            if !self
                .ledgers
                .iter()
                .any(|ledger| ledger.jurisdiction == limit.jurisdiction && ledger.currency == limit.currency)
            {
                return Err(ConfigError::new(
                    format!("{key}.currency"),
                    format!("no ledger of jurisdiction {} issues {}", limit.jurisdiction, limit.currency),
                ));
            }
            Money::from_decimal(limit.single_payment_max, limit.currency)
                .map_err(|error| ConfigError::new(format!("{key}.single_payment_max"), error))?;
        }
        if self.compliance.review_timeout_ms == 0 {
            return Err(ConfigError::new("compliance.review_timeout_ms", "must be positive"));
        }
        if let Some(sanctions) = &self.sanctions {
            let configured = [&sanctions.sdn_file, &sanctions.alt_file, &sanctions.add_file];
            if configured.iter().any(|file| file.is_some()) && sanctions.files().is_none() {
                return Err(ConfigError::new("sanctions", "sdn_file, alt_file and add_file go together"));
            }
            for (index, jurisdiction) in sanctions.jurisdictions.iter().enumerate() {
                if !self.ledgers.iter().any(|ledger| &ledger.jurisdiction == jurisdiction) {
                    return Err(ConfigError::new(
                        format!("sanctions.jurisdictions[{index}]"),
                        format!("no ledger on this network is in {jurisdiction}"),
                    ));
                }
            }
            let defaults = corridor_compliance::Thresholds::DEFAULT;
            let score = |value: Option<u16>, default: corridor_compliance::Score, key: &str| {
                value.map_or(Ok(default), |value| {
                    corridor_compliance::Score::new(value)
                        .ok_or_else(|| ConfigError::new(format!("sanctions.{key}"), "at most 1000 (per mille)"))
                })
            };
            let hit = score(sanctions.hit_min, defaults.hit_min(), "hit_min")?;
            let possible = score(sanctions.possible_min, defaults.possible_min(), "possible_min")?;
            corridor_compliance::Thresholds::new(hit, possible)
                .map_err(|error| ConfigError::new("sanctions.possible_min", error))?;
        }
        if self.feed.checkpoint_interval_ms == 0 {
            return Err(ConfigError::new("feed.checkpoint_interval_ms", "must be positive"));
        }
        for (index, regulator) in self.regulators.iter().enumerate() {
            let key = format!("regulators[{index}]");
            if !self.ledgers.iter().any(|ledger| ledger.jurisdiction == regulator.jurisdiction) {
                return Err(ConfigError::new(
                    format!("{key}.jurisdiction"),
                    format!("no ledger on this network is in {}", regulator.jurisdiction),
                ));
            }
            if self.regulators[..index].iter().any(|other| other.id == regulator.id) {
                return Err(ConfigError::new(format!("{key}.id"), format!("`{}` appears twice", regulator.id)));
            }
        }
        for (index, officer) in self.compliance_officers.iter().enumerate() {
            let key = format!("compliance_officers[{index}]");
            if !self.ledgers.iter().any(|ledger| ledger.jurisdiction == officer.jurisdiction) {
                return Err(ConfigError::new(
                    format!("{key}.jurisdiction"),
                    format!("no ledger on this network is in {}", officer.jurisdiction),
                ));
            }
            if self.compliance_officers[..index].iter().any(|other| other.id == officer.id) {
                return Err(ConfigError::new(format!("{key}.id"), format!("`{}` appears twice", officer.id)));
            }
        }
        for (index, rule) in self.travel_rules.iter().enumerate() {
            let key = format!("travel_rules[{index}]");
            self.check_jurisdiction_currency(&rule.jurisdiction, rule.currency, &format!("{key}.currency"))?;
            Money::from_decimal(rule.threshold, rule.currency)
                .map_err(|error| ConfigError::new(format!("{key}.threshold"), error))?;
            if self.travel_rules[..index].iter().any(|other| other.jurisdiction == rule.jurisdiction) {
                return Err(ConfigError::new(key, format!("{} has a travel rule already", rule.jurisdiction)));
            }
        }
        for (index, rule) in self.corridor_rules.iter().enumerate() {
            let key = format!("corridor_rules[{index}]");
            if !self.ledgers.iter().any(|ledger| ledger.jurisdiction == rule.jurisdiction) {
                return Err(ConfigError::new(
                    format!("{key}.jurisdiction"),
                    format!("no ledger on this network is in {}", rule.jurisdiction),
                ));
            }
            if rule.closed_to.contains(&rule.jurisdiction) || rule.closed_from.contains(&rule.jurisdiction) {
                return Err(ConfigError::new(key, format!("{} cannot close a corridor to itself", rule.jurisdiction)));
            }
        }
        for (index, limit) in self.velocity_limits.iter().enumerate() {
            let key = format!("velocity_limits[{index}]");
            self.check_jurisdiction_currency(&limit.jurisdiction, limit.currency, &format!("{key}.currency"))?;
            limit.limit().map_err(|(field, reason)| {
                ConfigError::new(if field.is_empty() { key.clone() } else { format!("{key}.{field}") }, reason)
            })?;
            let duplicate = self.velocity_limits[..index].iter().any(|other| {
                (&other.jurisdiction, other.currency, other.scope, other.window_s)
                    == (&limit.jurisdiction, limit.currency, limit.scope, limit.window_s)
            });
            if duplicate {
                return Err(ConfigError::new(
                    key,
                    "a velocity limit of this jurisdiction, currency, scope and window exists already; \
                     put amount_max and count_max in one entry",
                ));
            }
        }
        for (index, fee) in self.fees.iter().enumerate() {
            let key = format!("fees[{index}]");
            let from = self.ledger(&fee.from_ledger).ok_or_else(|| {
                ConfigError::new(
                    format!("{key}.from_ledger"),
                    format!("ledger `{}` is not configured", fee.from_ledger),
                )
            })?;
            if let Some(to_ledger) = &fee.to_ledger
                && self.ledger(to_ledger).is_none()
            {
                return Err(ConfigError::new(
                    format!("{key}.to_ledger"),
                    format!("ledger `{to_ledger}` is not configured"),
                ));
            }
            if fee.currency != from.currency {
                return Err(ConfigError::new(
                    format!("{key}.currency"),
                    format!("{} charges its fees in {}, not {}", fee.from_ledger, from.currency, fee.currency),
                ));
            }
            if let Some(participant) = &fee.participant
                && !self.participants.iter().any(|p| &p.id == participant)
            {
                return Err(ConfigError::new(
                    format!("{key}.participant"),
                    format!("participant `{participant}` is not configured"),
                ));
            }
            let duplicate = self.fees[..index].iter().any(|other| {
                other.from_ledger == fee.from_ledger
                    && other.to_ledger == fee.to_ledger
                    && other.participant == fee.participant
            });
            if duplicate {
                return Err(ConfigError::new(key, "a fee for this corridor is already configured"));
            }
            if fee.fixed < Decimal::ZERO || fee.fixed.normalize().scale() > from.currency.minor_units() {
                return Err(ConfigError::new(
                    format!("{key}.fixed"),
                    format!(
                        "must be zero or a positive amount of {} with at most {} decimals",
                        from.currency,
                        from.currency.minor_units()
                    ),
                ));
            }
            if fee.basis_points > FEE_BASIS_POINTS_MAX {
                return Err(ConfigError::new(format!("{key}.basis_points"), format!("at most {FEE_BASIS_POINTS_MAX}")));
            }
            if let Some(account) = &fee.account
                && account.ledger != fee.from_ledger
            {
                return Err(ConfigError::new(
                    format!("{key}.account"),
                    format!("must be on the fee's ledger {}", fee.from_ledger),
                ));
            }
        }
        Ok(())
    }
}

/// Best effort at naming the TOML key around a byte offset, for parse errors: the nearest
/// `[[table]]` header and `key =` before it.
fn key_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_number = before.matches('\n').count() + 1;
    let line = text[line_start..].lines().next().unwrap_or_default();
    let key = line.split('=').next().unwrap_or_default().trim();
    let table = before
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('['))
        .map(|line| line.trim().trim_matches(|c| c == '[' || c == ']').to_owned());
    match table {
        Some(table) if !key.is_empty() => format!("{table}.{key} (line {line_number})"),
        _ if !key.is_empty() => format!("{key} (line {line_number})"),
        _ => format!("line {line_number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
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
accounts = [{ address = "e-hkd/bank-hk.alice", opening_balance = "100.00" }]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
accounts = [{ address = "e-hkd/lp-one" }, { address = "e-cny/lp-one" }]

[[rates]]
provider = "lp-one"
pair = "CNY/HKD"
bid = "1.085"
ask = "1.090"
"#;

    fn check(edit: (&str, &str), expected_error: &str) {
        let text = MINIMAL.replacen(edit.0, edit.1, 1);
        assert_ne!(text, MINIMAL, "edit {edit:?} did not apply");
        match Config::from_toml(&text) {
            Ok(_) => panic!("{edit:?} was accepted"),
            Err(error) => assert!(error.to_string().contains(expected_error), "`{error}` lacks `{expected_error}`"),
        }
    }

    #[test]
    fn account_series_add_numbered_accounts_to_their_participant() {
        let series = r#"accounts = [{ address = "e-hkd/bank-hk.alice", opening_balance = "100.00" }]
account_series = [
  { ledger = "e-hkd", prefix = "bank-hk.s", count = 1000, opening_balance = "5.00" },
  { ledger = "e-cny", prefix = "w", count = 9 },
]"#;
        let text = MINIMAL.replacen(
            r#"accounts = [{ address = "e-hkd/bank-hk.alice", opening_balance = "100.00" }]"#,
            series,
            1,
        );
        let config = Config::from_toml(&text).unwrap();
        let accounts = &config.participants[0].accounts;
        assert_eq!(accounts.len(), 1 + 1000 + 9);
        assert_eq!(accounts[1].address.to_string(), "e-hkd/bank-hk.s0001");
        assert_eq!(accounts[1000].address.to_string(), "e-hkd/bank-hk.s1000");
        assert_eq!(accounts[1].opening_balance, Some(Decimal::new(500, 2)));
        assert_eq!((accounts[1001].address.to_string(), accounts[1001].opening_balance), ("e-cny/w1".to_owned(), None));

        let with = |series: &str| {
            MINIMAL.replacen("role = \"bank\"\n", &format!("role = \"bank\"\naccount_series = [{series}]\n"), 1)
        };
        let refused = |series: &str, expected: &str| match Config::from_toml(&with(series)) {
            Ok(_) => panic!("{series} was accepted"),
            Err(error) => assert!(error.to_string().contains(expected), "`{error}` lacks `{expected}`"),
        };
        refused(r#"{ ledger = "e-hkd", prefix = "x", count = 0 }"#, "participants[0].account_series[0].count");
        refused(r#"{ ledger = "e-hkd", prefix = "x", count = 10000001 }"#, "may add 1 to 10000000");
        refused(r#"{ ledger = "e-hkd", prefix = "bad name/", count = 2 }"#, "participants[0].account_series[0].prefix");
        refused(r#"{ ledger = "e-usd", prefix = "x", count = 2 }"#, "ledger `e-usd` is not configured");
        refused(
            r#"{ ledger = "e-hkd", prefix = "d", count = 2 }, { ledger = "e-hkd", prefix = "d", count = 2 }"#,
            "e-hkd/d1 is already owned by bank-hk",
        );
    }

    #[test]
    fn every_zero_setting_is_refused_by_its_key() {
        for key in [
            "settlement.prepare_timeout_ms",
            "settlement.decision_attempts_max",
            "settlement.in_flight_max",
            "server.participant_requests_per_s",
            "server.participant_burst",
            "server.drain_timeout_ms",
            "fx.rate_max_age_ms",
            "fx.quote_ttl_ms",
        ] {
            let (section, name) = key.split_once('.').unwrap();
            let text =
                format!("[{section}]\n{name} = 0\n\n{}", MINIMAL.replace(&format!("[{section}]\n"), "[unused]\n"));
            match Config::from_toml(&text) {
                Ok(_) => panic!("{key} = 0 was accepted"),
                Err(error) => assert!(error.to_string().contains(key), "`{error}` does not name {key}"),
            }
        }
    }

    #[test]
    fn telemetry_settings_are_checked() {
        let with = |section: &str| format!("{section}\n{MINIMAL}");
        let config =
            Config::from_toml(&with("[telemetry]\nmetrics_listen = \"127.0.0.1:9464\"\nlog_format = \"json\""))
                .unwrap();
        assert_eq!(config.telemetry.metrics_listen, Some(SocketAddr::from(([127, 0, 0, 1], 9464))));
        assert_eq!(config.telemetry.log_format, LogFormat::Json);
        let refused = |section: &str, expected: &str| match Config::from_toml(&with(section)) {
            Ok(_) => panic!("{section} was accepted"),
            Err(error) => assert!(error.to_string().contains(expected), "`{error}` lacks `{expected}`"),
        };
        refused("[telemetry]\nlog_format = \"xml\"", "log_format");
        refused("[telemetry]\nmetrics_port = 9464", "metrics_port");
        refused("[telemetry]\nmetrics_listen = \"127.0.0.1:50051\"", "telemetry.metrics_listen");
    }

    #[test]
    fn a_valid_config_loads() {
        let config = Config::from_toml(MINIMAL).unwrap();
        assert_eq!(config.ledgers.len(), 2);
        assert_eq!(config.server.listen.port(), 50051);
        assert_eq!(config.settlement.prepare_timeout_ms, 5_000);
    }

    #[test]
    fn errors_name_the_key() {
        check(("currency = \"HKD\"", "currency = \"HKX\""), "ledgers.currency (line 4)");
        check(("currency = \"HKD\"", "currency = \"HKX\""), "unknown or withdrawn");
        check(("jurisdiction = \"HK\"", "jurisdiction = \"HKG\""), "ledgers.jurisdiction");
        check(
            ("opening_balance = \"100.00\"", "opening_balance = \"100.001\""),
            "participants[0].accounts[0].opening_balance: `100.001` has 3 decimal places",
        );
        check(
            ("address = \"e-hkd/bank-hk.alice\"", "address = \"e-usd/bank-hk.alice\""),
            "participants[0].accounts[0].address: ledger `e-usd` is not configured",
        );
        check(("address = \"e-hkd/lp-one\"", "address = \"e-hkd/bank-hk.alice\""), "is already owned by bank-hk");
        check(("pair = \"CNY/HKD\"", "pair = \"CNY/AED\""), "rates[0].pair: no ledger on this network issues AED");
        check(
            ("provider = \"lp-one\"", "provider = \"bank-hk\""),
            "rates[0].provider: `bank-hk` is not a liquidity provider",
        );
        check(("bid = \"1.085\"", "bid = \"1.095\""), "rates[0].bid");
        check(("role = \"bank\"", "role = \"banker\""), "participants.role");
        check(("[[rates]]", "[[rates]]\nspread = 1"), "unknown field `spread`");
        check(("ask = \"1.090\"", "ask = \"1.090\"\nmaximum = \"100 USD\""), "rates[0].maximum: USD is not a currency");
        check(("ask = \"1.090\"", "ask = \"1.090\"\nmaximum = \"100\""), "rates[0].maximum: `100` is not of the form");
        check(("ask = \"1.090\"", "ask = \"1.090\"\nmaximum = \"1.001 CNY\""), "rates[0].maximum: `1.001`");
        check(("[[ledgers]]", "[fx]\nhop_limit = 9\n\n[[ledgers]]"), "fx.hop_limit: must be between 1 and 6");
    }

    #[test]
    fn limits_and_fees_are_checked() {
        let with = |extra: &str| Config::from_toml(&format!("{MINIMAL}\n{extra}"));
        assert!(with("[[limits]]\njurisdiction = \"HK\"\ncurrency = \"HKD\"\nsingle_payment_max = \"8000\"").is_ok());
        let error =
            with("[[limits]]\njurisdiction = \"HK\"\ncurrency = \"CNY\"\nsingle_payment_max = \"8000\"").unwrap_err();
        assert_eq!(error.to_string(), "limits[0].currency: no ledger of jurisdiction HK issues CNY");
        assert!(
            with("[[fees]]\nfrom_ledger = \"e-cny\"\nto_ledger = \"e-hkd\"\ncurrency = \"CNY\"\nfixed = \"1.00\"\nbasis_points = 5")
                .is_ok()
        );
        let fee = |body: &str| with(&format!("[[fees]]\nfrom_ledger = \"e-cny\"\ncurrency = \"CNY\"\n{body}"));
        let error = fee("to_ledger = \"e-hkd\"\nfixed = \"1.001\"").unwrap_err();
        assert!(error.to_string().starts_with("fees[0].fixed"), "{error}");
        let error = fee("[[fees]]\nfrom_ledger = \"e-cny\"\ncurrency = \"CNY\"").unwrap_err();
        assert_eq!(error.to_string(), "fees[1]: a fee for this corridor is already configured");
        assert!(fee("[[fees]]\nfrom_ledger = \"e-cny\"\ncurrency = \"CNY\"\nparticipant = \"bank-hk\"").is_ok());
        let error = fee("participant = \"bank-xx\"").unwrap_err();
        assert_eq!(error.to_string(), "fees[0].participant: participant `bank-xx` is not configured");
        let error = fee("to_ledger = \"e-hkd\"\nbasis_points = 5000").unwrap_err();
        assert_eq!(error.to_string(), "fees[0].basis_points: at most 1000");
        let travel = |body: &str| with(&format!("[[travel_rules]]\n{body}"));
        assert!(travel("jurisdiction = \"HK\"\ncurrency = \"HKD\"\nthreshold = \"8000.00\"").is_ok());
        let error = travel("jurisdiction = \"HK\"\ncurrency = \"CNY\"\nthreshold = \"8000\"").unwrap_err();
        assert_eq!(error.to_string(), "travel_rules[0].currency: no ledger of jurisdiction HK issues CNY");
        let error = travel("jurisdiction = \"HK\"\ncurrency = \"HKD\"\nthreshold = \"1.001\"").unwrap_err();
        assert!(error.to_string().starts_with("travel_rules[0].threshold"), "{error}");
        let corridor = |body: &str| with(&format!("[[corridor_rules]]\n{body}"));
        assert!(corridor("jurisdiction = \"HK\"\nclosed_to = [\"AE\"]").is_ok());
        let error = corridor("jurisdiction = \"AE\"\nclosed_to = [\"HK\"]").unwrap_err();
        assert_eq!(error.to_string(), "corridor_rules[0].jurisdiction: no ledger on this network is in AE");
        let error = corridor("jurisdiction = \"HK\"\nclosed_from = [\"HK\"]").unwrap_err();
        assert_eq!(error.to_string(), "corridor_rules[0]: HK cannot close a corridor to itself");
        let error = with("[[fees]]\nfrom_ledger = \"e-cny\"\ncurrency = \"HKD\"").unwrap_err();
        assert_eq!(error.to_string(), "fees[0].currency: e-cny charges its fees in CNY, not HKD");
    }

    #[test]
    fn velocity_limits_are_validated_with_the_key_named() {
        let velocity = |body: &str| Config::from_toml(&format!("{MINIMAL}\n[[velocity_limits]]\n{body}"));
        let base = "jurisdiction = \"HK\"\ncurrency = \"HKD\"\nscope = \"wallet\"\nwindow_s = 86400";
        assert!(velocity(&format!("{base}\namount_max = \"50000.00\"\ncount_max = 20")).is_ok());
        let check = |body: &str, expected: &str| {
            assert_eq!(velocity(body).err().map(|error| error.to_string()).as_deref(), Some(expected), "{body}");
        };
        check(
            "jurisdiction = \"HK\"\ncurrency = \"CNY\"\nscope = \"wallet\"\nwindow_s = 60\ncount_max = 1",
            "velocity_limits[0].currency: no ledger of jurisdiction HK issues CNY",
        );
        check(base, "velocity_limits[0]: a velocity limit needs amount_max, count_max, or both");
        check(
            &format!("{base}\namount_max = \"1.001\""),
            "velocity_limits[0].amount_max: `1.001` has 3 decimal places; HKD allows 2",
        );
        check(&format!("{base}\ncount_max = 0"), "velocity_limits[0].count_max: count_max must be at least 1");
        let zero_window = "jurisdiction = \"HK\"\ncurrency = \"HKD\"\nscope = \"wallet\"\nwindow_s = 0\ncount_max = 1";
        check(
            zero_window,
            "velocity_limits[0].window_s: the window must be longer than 0 and at most 31 days (2678400 s)",
        );
        let twice = format!("{base}\ncount_max = 1\n\n[[velocity_limits]]\n{base}\namount_max = \"1.00\"");
        assert!(velocity(&twice).unwrap_err().to_string().starts_with("velocity_limits[1]: a velocity limit of this"));
        let error =
            velocity("jurisdiction = \"HK\"\ncurrency = \"HKD\"\nscope = \"bank\"\nwindow_s = 1\ncount_max = 1");
        assert!(error.unwrap_err().to_string().starts_with("velocity_limits"), "an unknown scope was accepted");
    }
}
