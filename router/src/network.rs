//! The network the router serves, built from a validated [`Config`]: ledgers, participants and the
//! accounts they own, liquidity providers, the rate book, fees and the compliance pipeline.
//!
//! On the embedded default every ledger is an [`InMemoryLedger`] created here, and opening balances
//! are issued into it. The router itself only ever talks to ledgers through the [`Ledger`] trait.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use corridor_compliance::velocity::{self, MemoryVelocityCounter, VelocityCounter, VelocityHook, VelocityHooks};
use corridor_compliance::{
    ComplianceHook, CompliancePipeline, CorridorRule, SanctionsHook, SanctionsList, Score, SinglePaymentLimit,
    Thresholds, TravelRule,
};
use corridor_fx::{CurrencyPair, EcbHistory, ProviderRate, RateBook};
use corridor_ledger_adapters::remote::{RemoteLedger, RemoteLedgerSettings};
use corridor_ledger_adapters::{InMemoryLedger, Ledger, LedgerDescription};
use corridor_schemas::{AccountName, Address, Currency, Jurisdiction, LedgerId, Money, ParticipantId, ParticipantKey};
use rust_decimal::Decimal;

use crate::config::{Config, ConfigError, EcbSeedConfig, Role, SanctionsConfig};
use crate::transport::ClientSecurity;

/// A ledger as the router knows it.
#[derive(Clone)]
pub struct LedgerHandle {
    pub description: LedgerDescription,
    pub ledger: Arc<dyn Ledger>,
}

pub struct Participant {
    pub role: Role,
    pub accounts: HashSet<Address>,
    /// When set, its instructions must be signed with this key.
    pub signing_key: Option<ParticipantKey>,
}

/// A liquidity provider's account on each ledger it serves.
pub struct LiquidityProvider {
    pub accounts: HashMap<LedgerId, AccountName>,
}

/// The network fee of one hop, from one ledger to the next: fixed + basis points of the amount
/// the hop converts, in the source ledger's currency.
#[derive(Debug, Clone)]
pub struct Fee {
    pub fixed_minor: i64,
    pub basis_points: u32,
    pub account: Address,
}

/// Which payments and hops a fee applies to (see [`Network::fee_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeeKey {
    pub from: LedgerId,
    /// `None`: every cross-border hop from `from`.
    pub to: Option<LedgerId>,
    /// `None`: every participant.
    pub participant: Option<ParticipantId>,
}

/// Pricing and routing settings (config `[fx]`).
#[derive(Debug, Clone, Copy)]
pub struct FxSettings {
    pub rate_max_age: Duration,
    pub quote_ttl: Duration,
    pub hop_limit: usize,
}

impl Fee {
    /// The fee on `send`, in its currency: the fixed part plus the basis-point part rounded down to
    /// the minor unit. `None` when it comes to zero.
    pub fn on(&self, send: Money) -> Option<Money> {
        // i128: 10^15 × 1000 cannot overflow it.
        let proportional = i128::from(send.minor_units()) * i128::from(self.basis_points) / 10_000;
        let total = i128::from(self.fixed_minor) + proportional;
        i64::try_from(total).ok().and_then(|total| Money::from_minor_units(total, send.currency()).ok())
    }
}

pub struct Network {
    pub ledgers: HashMap<LedgerId, LedgerHandle>,
    pub participants: HashMap<ParticipantId, Participant>,
    pub providers: HashMap<ParticipantId, LiquidityProvider>,
    /// Replaced at run time by `PublishRates`; read by every pricing.
    rates: RwLock<RateBook>,
    pub fx: FxSettings,
    /// The velocity hooks (also in `compliance`), to take back a payment that ends refused or failed.
    pub velocity: VelocityHooks,
    pub fees: HashMap<FeeKey, Fee>,
    pub compliance: CompliancePipeline,
    /// The sanctions hook, shared by every screening jurisdiction, and where its list comes from.
    pub sanctions: Option<Sanctions>,
    /// Compliance officers and the jurisdiction whose held payments each decides.
    pub officers: HashMap<ParticipantId, Jurisdiction>,
    /// How long a held payment waits for its review.
    pub review_timeout: Duration,
    /// How far a signature's time may be from the router's clock.
    pub signature_window: Duration,
    /// Regulators and the jurisdiction whose feed each reads.
    pub regulators: HashMap<ParticipantId, Jurisdiction>,
    /// The in-memory ledgers created for the embedded default, for audits by the demo and tests.
    pub embedded_ledgers: Vec<Arc<InMemoryLedger>>,
    /// With shared storage (`backend = "postgres"`): where accepted rate publications go so that
    /// every replica prices with them.
    pub rate_bus: Option<crate::storage::redis_rates::RedisRateBus>,
}

/// The database's name in a PostgreSQL URL (`postgres://host/name?options`): what identifies a
/// network among others sharing one Redis.
fn database_name(url: &str) -> &str {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let name = path.rsplit_once('/').map_or("", |(_, name)| name);
    let name = name.split_once('?').map_or(name, |(name, _)| name);
    if name.is_empty() { "postgres" } else { name }
}

/// The shared operation log of the in-process ledgers, in the ledger log directory.
pub const LEDGERS_LOG: &str = "ledgers.log";

/// The accounts each ledger must start with: every configured account with its opening balance
/// (zero opens it empty), and the fee accounts.
fn opening_balances(config: &Config) -> Result<HashMap<LedgerId, Vec<(AccountName, i64)>>, ConfigError> {
    let mut opening: HashMap<LedgerId, Vec<(AccountName, i64)>> = HashMap::new();
    for (index, participant) in config.participants.iter().enumerate() {
        for (account_index, account) in participant.accounts.iter().enumerate() {
            let key = format!("participants[{index}].accounts[{account_index}]");
            let currency = config
                .ledger(&account.address.ledger)
                .map(|ledger| ledger.currency)
                .ok_or_else(|| ConfigError { key: key.clone(), reason: "no such ledger".into() })?;
            let minor = match account.opening_balance {
                Some(balance) if balance > Decimal::ZERO => Money::from_decimal(balance, currency)
                    .map_err(|error| ConfigError { key: format!("{key}.opening_balance"), reason: error.to_string() })?
                    .minor_units(),
                _ => 0,
            };
            opening.entry(account.address.ledger.clone()).or_default().push((account.address.account.clone(), minor));
        }
    }
    for fee in &config.fees {
        let account = fee.account.clone().unwrap_or_else(|| default_fee_account(&fee.from_ledger));
        let accounts = opening.entry(account.ledger.clone()).or_default();
        if !accounts.iter().any(|(name, _)| name == &account.account) {
            accounts.push((account.account, 0));
        }
    }
    Ok(opening)
}

fn description_of(ledger: &crate::config::LedgerConfig) -> LedgerDescription {
    LedgerDescription {
        ledger: ledger.id.clone(),
        currency: ledger.currency,
        jurisdiction: ledger.jurisdiction.clone(),
    }
}

impl Network {
    /// The embedded network of tests and the demo: one in-memory, non-durable ledger per
    /// configured ledger (remote endpoints are ignored), opening balances issued.
    pub fn embedded(config: &Config, rate_source: &str) -> Result<Self, ConfigError> {
        config.validate()?;
        let opening = opening_balances(config)?;
        let mut ledgers = HashMap::new();
        let mut embedded_ledgers = Vec::new();
        for ledger_config in &config.ledgers {
            let description = description_of(ledger_config);
            let ledger = Arc::new(InMemoryLedger::new(description.clone()));
            for (account, minor) in opening.get(&ledger_config.id).into_iter().flatten() {
                if *minor > 0 {
                    ledger.issue(account.clone(), *minor).map_err(|error| ConfigError {
                        key: format!("opening balance of {}/{account}", ledger_config.id),
                        reason: error.to_string(),
                    })?;
                } else {
                    ledger.open_account(account.clone());
                }
            }
            embedded_ledgers.push(Arc::clone(&ledger));
            ledgers.insert(ledger_config.id.clone(), LedgerHandle { description, ledger });
        }
        // In memory like its ledgers: velocity limits count from zero in every embedded network.
        let velocity_counter = Arc::new(MemoryVelocityCounter::new());
        Self::assemble(config, rate_source, ledgers, embedded_ledgers, velocity_counter)
    }

    /// The network `corridor serve` runs: a ledger with an `endpoint` is reached over the ledger
    /// protocol (its node funds its own accounts); the others are in-process, kept durable in one
    /// shared operation log under `ledger_logs` (opening balances issued once, when a ledger is new
    /// to the log).
    /// Velocity limits count in `velocity_counter` (see [`crate::open_velocity_counter`]); remote
    /// ledgers are reached as `ledger_security` says (the router's certificate over mTLS).
    pub async fn build(
        config: &Config,
        rate_source: &str,
        ledger_logs: &Path,
        velocity_counter: Arc<dyn VelocityCounter>,
        ledger_security: &ClientSecurity,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let opening = opening_balances(config)?;
        let mut ledgers = HashMap::new();
        let mut in_process = Vec::new();
        for (index, ledger_config) in config.ledgers.iter().enumerate() {
            let description = description_of(ledger_config);
            let failed = |reason: String| ConfigError { key: format!("ledgers[{index}]"), reason };
            match &ledger_config.endpoint {
                Some(endpoint) => {
                    let ledger: Arc<dyn Ledger> = Arc::new(RemoteLedger::connect_lazy_at(
                        ledger_security.endpoint(endpoint).map_err(|error| failed(format!("endpoint: {error}")))?,
                        RemoteLedgerSettings::default(),
                    ));
                    ledgers.insert(ledger_config.id.clone(), LedgerHandle { description, ledger });
                }
                None => {
                    let accounts = opening.get(&ledger_config.id).cloned().unwrap_or_default();
                    in_process.push((description, accounts));
                }
            }
        }
        // Every in-process ledger in one shared operation log: one write and one fsync make all
        // their changes durable, so durability costs the same with 4 ledgers or 16.
        let mut embedded_ledgers = Vec::new();
        if !in_process.is_empty() {
            let path = ledger_logs.join(LEDGERS_LOG);
            let opened = InMemoryLedger::open_durable_group(&path, in_process).await.map_err(|error| ConfigError {
                key: "ledgers".into(),
                reason: format!("cannot open {}: {error}", path.display()),
            })?;
            for ledger in opened {
                let ledger = Arc::new(ledger);
                let description = ledger.description().clone();
                embedded_ledgers.push(Arc::clone(&ledger));
                ledgers.insert(description.ledger.clone(), LedgerHandle { description, ledger });
            }
        }
        let in_process_ledgers = !embedded_ledgers.is_empty();
        let mut network = Self::assemble(config, rate_source, ledgers, embedded_ledgers, velocity_counter)?;
        if config.storage.backend == crate::config::StorageBackend::Postgres {
            if in_process_ledgers {
                tracing::warn!(
                    "ledgers without an endpoint run inside this router's process: run one replica only, or give \
                     every ledger a ledger node (each replica would otherwise keep its own copy of those ledgers)"
                );
            }
            let failed = |key: &str, reason: String| ConfigError { key: format!("storage.{key}"), reason };
            let redis_url =
                config.storage.redis_url.as_deref().ok_or_else(|| failed("redis_url", "is not set".into()))?;
            let database_url =
                config.storage.database_url.as_deref().ok_or_else(|| failed("database_url", "is not set".into()))?;
            let bus = crate::storage::redis_rates::RedisRateBus::connect(redis_url, database_name(database_url))
                .await
                .map_err(|error| failed("redis_url", error.to_string()))?;
            network.rate_bus = Some(bus);
        }
        Ok(network)
    }

    /// Everything but the ledgers: participants, providers, rates, fees, hooks.
    fn assemble(
        config: &Config,
        rate_source: &str,
        ledgers: HashMap<LedgerId, LedgerHandle>,
        embedded_ledgers: Vec<Arc<InMemoryLedger>>,
        velocity_counter: Arc<dyn VelocityCounter>,
    ) -> Result<Self, ConfigError> {
        let mut participants = HashMap::new();
        let mut providers = HashMap::new();
        for participant_config in &config.participants {
            let mut accounts = HashSet::new();
            let mut provider_accounts = HashMap::new();
            for account in &participant_config.accounts {
                provider_accounts.insert(account.address.ledger.clone(), account.address.account.clone());
                accounts.insert(account.address.clone());
            }
            if participant_config.role == Role::LiquidityProvider {
                providers.insert(participant_config.id.clone(), LiquidityProvider { accounts: provider_accounts });
            }
            let signing_key = participant_config.signing_key;
            participants.insert(
                participant_config.id.clone(),
                Participant { role: participant_config.role, accounts, signing_key },
            );
        }

        let mut rates = RateBook::new();
        let as_of = SystemTime::now();
        for (index, rate) in config.rates.iter().enumerate() {
            let key = |field: &str| format!("rates[{index}].{field}");
            let pair = CurrencyPair::parse(&rate.pair)
                .map_err(|error| ConfigError { key: key("pair"), reason: error.to_string() })?;
            rates
                .publish(ProviderRate {
                    provider: rate.provider.clone(),
                    pair,
                    bid: rate.bid,
                    ask: rate.ask,
                    source: rate_source.to_owned(),
                    as_of,
                    maximum: rate.maximum().map_err(|reason| ConfigError { key: key("maximum"), reason })?,
                })
                .map_err(|error| ConfigError { key: key("bid"), reason: error.to_string() })?;
        }

        for (index, seed) in config.fx.ecb_seeds.iter().enumerate() {
            for rate in ecb_seed_rates(seed, as_of)
                .map_err(|reason| ConfigError { key: format!("fx.ecb_seeds[{index}]"), reason })?
            {
                rates.publish(rate).map_err(|error| ConfigError {
                    key: format!("fx.ecb_seeds[{index}]"),
                    reason: error.to_string(),
                })?;
            }
        }

        let mut fees = HashMap::new();
        for fee in &config.fees {
            let currency = ledgers[&fee.from_ledger].description.currency;
            let account = fee.account.clone().unwrap_or_else(|| default_fee_account(&fee.from_ledger));
            let fixed_minor = minor_units_of(fee.fixed, currency);
            let key = FeeKey {
                from: fee.from_ledger.clone(),
                to: fee.to_ledger.clone(),
                participant: fee.participant.clone(),
            };
            fees.insert(key, Fee { fixed_minor, basis_points: fee.basis_points, account });
        }

        let mut compliance = CompliancePipeline::new();
        for limit in &config.limits {
            let money = Money::from_decimal(limit.single_payment_max, limit.currency)
                .map_err(|error| ConfigError { key: "limits".into(), reason: error.to_string() })?;
            compliance.add_hook(limit.jurisdiction.clone(), Arc::new(SinglePaymentLimit::new(money)));
        }
        for rule in &config.travel_rules {
            let threshold = Money::from_decimal(rule.threshold, rule.currency)
                .map_err(|error| ConfigError { key: "travel_rules".into(), reason: error.to_string() })?;
            compliance.add_hook(rule.jurisdiction.clone(), Arc::new(TravelRule::new(threshold)));
        }
        let mut sanctions = None;
        if let Some(screening) = &config.sanctions {
            let hook = Arc::new(SanctionsHook::new(load_sanctions(screening)?, sanctions_thresholds(screening)?));
            for jurisdiction in &screening.jurisdictions {
                compliance.add_hook(jurisdiction.clone(), Arc::clone(&hook) as Arc<dyn ComplianceHook>);
            }
            sanctions = Some(Sanctions { hook, source: screening.clone() });
        }
        for rule in &config.corridor_rules {
            let hook = CorridorRule { closed_to: rule.closed_to.clone(), closed_from: rule.closed_from.clone() };
            compliance.add_hook(rule.jurisdiction.clone(), Arc::new(hook));
        }
        let mut velocity = VelocityHooks::new();
        for (index, limit) in config.velocity_limits.iter().enumerate() {
            // Validated already; a failure here still names its key.
            let key = format!("velocity_limits[{index}]");
            let velocity_limit = limit.limit().map_err(|(field, reason)| ConfigError {
                key: if field.is_empty() { key.clone() } else { format!("{key}.{field}") },
                reason,
            })?;
            let counter = Arc::clone(&velocity_counter);
            let hook = Arc::new(VelocityHook::new(velocity_limit, counter, velocity::system_clock()));
            compliance.add_hook(limit.jurisdiction.clone(), Arc::clone(&hook) as Arc<dyn ComplianceHook>);
            velocity.add(limit.jurisdiction.clone(), hook);
        }

        let fx = FxSettings {
            rate_max_age: Duration::from_millis(config.fx.rate_max_age_ms),
            quote_ttl: Duration::from_millis(config.fx.quote_ttl_ms),
            hop_limit: config.fx.hop_limit,
        };
        let officers = config.compliance_officers.iter().map(|o| (o.id.clone(), o.jurisdiction.clone())).collect();
        Ok(Self {
            ledgers,
            participants,
            providers,
            rates: RwLock::new(rates),
            fx,
            fees,
            compliance,
            velocity,
            sanctions,
            officers,
            review_timeout: Duration::from_millis(config.compliance.review_timeout_ms),
            signature_window: Duration::from_millis(config.server.signature_window_ms),
            regulators: config.regulators.iter().map(|r| (r.id.clone(), r.jurisdiction.clone())).collect(),
            embedded_ledgers,
            rate_bus: None,
        })
    }

    /// The fee of the hop `from` → `to` for payments `participant` sends. The most specific entry
    /// wins: participant and both ledgers, participant and source, both ledgers, source alone. An
    /// entry without `to` applies to cross-border hops only.
    pub fn fee_for(&self, participant: &ParticipantId, from: &LedgerId, to: &LedgerId) -> Option<&Fee> {
        let lookup = |to: Option<&LedgerId>, participant: Option<&ParticipantId>| {
            self.fees.get(&FeeKey { from: from.clone(), to: to.cloned(), participant: participant.cloned() })
        };
        let cross_border = from != to;
        lookup(Some(to), Some(participant))
            .or_else(|| if cross_border { lookup(None, Some(participant)) } else { None })
            .or_else(|| lookup(Some(to), None))
            .or_else(|| if cross_border { lookup(None, None) } else { None })
    }

    /// The rate book, for pricing. Held only while pricing (no await inside).
    pub fn rates(&self) -> RwLockReadGuard<'_, RateBook> {
        self.rates.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn rates_mut(&self) -> RwLockWriteGuard<'_, RateBook> {
        self.rates.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn jurisdiction_of(&self, ledger: &LedgerId) -> Option<&Jurisdiction> {
        self.ledgers.get(ledger).map(|handle| &handle.description.jurisdiction)
    }

    pub fn currency_of(&self, ledger: &LedgerId) -> Option<Currency> {
        self.ledgers.get(ledger).map(|handle| handle.description.currency)
    }
}

/// The configured list's files, or the snapshot built into the binary.
/// The network's sanctions screening: the hook every screening jurisdiction shares, and the
/// configuration its list is read from.
pub struct Sanctions {
    pub hook: Arc<SanctionsHook>,
    pub source: SanctionsConfig,
}

impl Sanctions {
    /// Re-reads the list from its source and swaps it in; on an error the old list stays. Returns
    /// the entries now in force.
    pub fn reload(&self) -> Result<usize, ConfigError> {
        self.hook.reload(load_sanctions(&self.source)?);
        Ok(self.hook.entries())
    }
}

pub fn load_sanctions(config: &SanctionsConfig) -> Result<SanctionsList, ConfigError> {
    let failed = |reason: String| ConfigError { key: "sanctions".into(), reason };
    match config.files() {
        None => SanctionsList::bundled().map_err(|error| failed(error.to_string())),
        Some([sdn, alt, add]) => {
            let read = |path: &Path| {
                std::fs::read_to_string(path)
                    .map_err(|error| failed(format!("cannot read {}: {error}", path.display())))
            };
            SanctionsList::parse(&read(sdn)?, &read(alt)?, &read(add)?).map_err(|error| failed(error.to_string()))
        }
    }
}

fn sanctions_thresholds(config: &SanctionsConfig) -> Result<Thresholds, ConfigError> {
    let defaults = Thresholds::DEFAULT;
    let score = |value: Option<u16>, default: Score| value.and_then(Score::new).unwrap_or(default);
    Thresholds::new(score(config.hit_min, defaults.hit_min()), score(config.possible_min, defaults.possible_min()))
        .map_err(|error| ConfigError { key: "sanctions.possible_min".into(), reason: error.to_string() })
}

/// A seeded provider's rates: its pairs around the chosen day's ECB mids.
fn ecb_seed_rates(seed: &EcbSeedConfig, as_of: SystemTime) -> Result<Vec<ProviderRate>, String> {
    let text = match &seed.file {
        None => std::borrow::Cow::Borrowed(corridor_fx::ECB_SNAPSHOT_2025_2026),
        Some(path) => std::borrow::Cow::Owned(
            std::fs::read_to_string(path).map_err(|error| format!("file: cannot read {}: {error}", path.display()))?,
        ),
    };
    let history = EcbHistory::parse(&text).map_err(|error| format!("file: {error}"))?;
    let day = match &seed.date {
        Some(date) => history.day(date).ok_or_else(|| format!("date: the file has no rates for {date}"))?,
        None => history.latest().ok_or("file: it has no rates")?,
    };
    let pairs = seed
        .pairs
        .iter()
        .map(|pair| CurrencyPair::parse(pair).map_err(|error| format!("pairs: {error}")))
        .collect::<Result<Vec<_>, _>>()?;
    day.provider_rates(&seed.provider, &pairs, seed.spread_bps, as_of).map_err(|error| error.to_string())
}

pub fn default_fee_account(ledger: &LedgerId) -> Address {
    Address::new(ledger.clone(), AccountName::new("corridor.fees").expect("a valid constant account name"))
}

/// An exact, validated decimal (the config checked its scale) as minor units.
fn minor_units_of(amount: Decimal, currency: Currency) -> i64 {
    if amount.is_zero() {
        return 0;
    }
    Money::from_decimal(amount, currency).map_or(0, Money::minor_units)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEDED: &str = r#"
[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[participants]]
id = "lp-ecb"
role = "liquidity_provider"
accounts = [{ address = "e-cny/lp-ecb" }, { address = "e-hkd/lp-ecb" }]

[[fx.ecb_seeds]]
provider = "lp-ecb"
date = "2026-10-30"
spread_bps = 20
pairs = ["CNY/HKD"]
"#;

    #[test]
    fn ecb_seeds_quote_around_the_days_cross_through_eur() {
        let config = Config::from_toml(SEEDED).unwrap();
        let network = Network::embedded(&config, "test").unwrap();
        let book = network.rates();
        let rate = &book.rates()[0];
        // 2026-10-30: 7.4326 CNY and 8.7652 HKD per EUR, so CNY/HKD = 8.7652 ÷ 7.4326 = 1.1792912305249...
        // ± 10 bp each side: bid × 0.999 = 1.1781119392944..., ask × 1.001 = 1.1804705217555...,
        // cut to 12 significant digits toward the provider (bid down, ask up).
        assert_eq!((rate.bid.to_string().as_str(), rate.ask.to_string().as_str()), ("1.17811193929", "1.18047052176"));
        assert_eq!(rate.source, "ECB reference rates 2026-10-30 ± 20 bp");
    }

    #[test]
    fn ecb_seed_errors_name_the_key() {
        let check = |edit: (&str, &str), expected: &str| {
            let text = SEEDED.replacen(edit.0, edit.1, 1);
            let error = match Config::from_toml(&text) {
                Err(error) => error,
                Ok(config) => Network::embedded(&config, "test").err().unwrap(),
            };
            assert!(error.to_string().contains(expected), "`{error}` lacks `{expected}`");
        };
        check(
            ("date = \"2026-10-30\"", "date = \"2026-10-31\""),
            "fx.ecb_seeds[0]: date: the file has no rates for 2026-10-31",
        );
        check(
            ("pairs = [\"CNY/HKD\"]", "pairs = [\"CNY/AED\"]"),
            "fx.ecb_seeds[0].pairs[0]: no ledger on this network issues AED",
        );
        check(
            ("provider = \"lp-ecb\"", "provider = \"lp-x\""),
            "fx.ecb_seeds[0].provider: participant `lp-x` is not configured",
        );
        check(
            ("date = \"2026-10-30\"", "file = \"/nonexistent.csv\""),
            "fx.ecb_seeds[0]: file: cannot read /nonexistent.csv",
        );
    }

    #[test]
    fn fee_is_fixed_plus_basis_points_rounded_down() {
        let fee = Fee { fixed_minor: 100, basis_points: 5, account: "e-cny/corridor.fees".parse().unwrap() };
        let cny = Currency::from_code("CNY").unwrap();
        // 1.00 + 1234.56 × 0.0005 = 1.00 + 0.61728 → 1.61
        assert_eq!(fee.on(Money::parse("1234.56", cny).unwrap()).unwrap().to_string(), "1.61 CNY");
        let free = Fee { fixed_minor: 0, basis_points: 0, account: fee.account.clone() };
        assert_eq!(free.on(Money::parse("1234.56", cny).unwrap()), None);
    }
}
