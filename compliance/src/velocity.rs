//! Velocity limits: how much (amount) and how often (count) one participant or one wallet may pay
//! within a sliding window, per jurisdiction and currency.
//!
//! A [`VelocityHook`] screens a payment by adding it to a [`VelocityCounter`] — sliding-window
//! totals kept outside this crate (the router's embedded store, or Redis shared by every router
//! replica; [`MemoryVelocityCounter`] for tests and a single process) — and reading back the
//! window's totals *including this payment*. The add is atomic in every counter, so of several
//! concurrent payments that only one fits, exactly one sees totals within the limit. A payment
//! over the limit is taken back out at once (`VELOCITY_AMOUNT_EXCEEDED` /
//! `VELOCITY_COUNT_EXCEEDED`), so a refused payment does not use up anyone's allowance. For the
//! instant between its add and its removal it does count: a concurrent payment may then be denied
//! although it would have fitted alone. That errs towards refusing, never past the limit.
//!
//! The counter counts what settled or is settling. A payment this hook allowed that ends refused
//! or failed later (another hook denied it, a ledger voted no) must be taken back by the router
//! with [`VelocityHooks::release`] (or [`VelocityHook::release`]); one it cannot take back (a crash
//! in between) keeps counting until its window passes — again towards refusing.
//!
//! A counter that cannot be reached denies (`VELOCITY_UNAVAILABLE`): the limit fails closed, like
//! [`crate::SinglePaymentLimit`]. A payment without an amount in the limit's currency is allowed:
//! it moves nothing the limit measures.
//!
//! What it deliberately does not do: calendar periods (a "day" is the last 24 hours, not since
//! midnight), conversion (a limit in HKD counts only amounts the route carries in HKD), or a
//! clock of its own (time comes in through the [`Clock`] seam; with several replicas the window
//! is as accurate as their clocks agree).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use corridor_schemas::money::format_minor_units;
use corridor_schemas::{Address, Currency, Jurisdiction, Money, ParticipantId, PaymentId};

use crate::pipeline::{ComplianceHook, Decision, Reason, Subject};

/// The totals would pass the amount maximum.
pub const VELOCITY_AMOUNT_EXCEEDED: &str = "VELOCITY_AMOUNT_EXCEEDED";
/// The totals would pass the count maximum.
pub const VELOCITY_COUNT_EXCEEDED: &str = "VELOCITY_COUNT_EXCEEDED";
/// The counter could not be asked; the payment is refused (fail closed).
pub const VELOCITY_UNAVAILABLE: &str = "VELOCITY_UNAVAILABLE";

/// Longest counter key, in bytes. The hook's keys are far shorter; the bound keeps a stored key
/// small in every backend.
pub const KEY_BYTES_MAX: usize = 512;

/// Where the hooks read the time: the router passes its own clock, tests a hand-moved one.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock, as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// One window's totals under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowTotals {
    /// Sum of the amounts of the entries in the window (wider than one amount, so a sum cannot
    /// overflow).
    pub amount_minor: i128,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    #[error("velocity counter unavailable: {0}")]
    Unavailable(String),
    #[error("velocity counter data is corrupt: {0}")]
    Corrupt(String),
    /// The request itself cannot be counted (a key too long or with characters a backend cannot
    /// store, a negative amount). Nothing was recorded.
    #[error("velocity counter refused `{key}`: {reason}")]
    Refused { key: String, reason: String },
}

/// Sliding-window counters, shared by every router of a network.
///
/// The window of an add at `at` is the half-open interval (`at` − `window`, `at`] in whole
/// milliseconds since the Unix epoch: an entry added at `t` counts while `at − t < window`, and is
/// forgotten by the first add whose `at − t ≥ window`. Entries later than `at` (a replica whose
/// clock is ahead) count.
#[async_trait::async_trait]
pub trait VelocityCounter: Send + Sync + 'static {
    /// Adds `amount_minor` (not negative) for `entry` (a payment id) under `key` at `at`, forgets
    /// entries older than `window`, and returns the window's totals including this entry.
    /// Idempotent per (key, entry): adding an entry that still counts changes nothing (neither its
    /// amount nor its time) and returns the totals. Atomic: concurrent adds, from this process or
    /// any other sharing the counter, see each other's entries in one order.
    async fn add(
        &self,
        key: &str,
        entry: PaymentId,
        amount_minor: i64,
        at: SystemTime,
        window: Duration,
    ) -> Result<WindowTotals, CounterError>;

    /// Takes an entry back out (a payment that was refused later, or denied by this very limit).
    /// Removing an entry that is not counted is not an error.
    async fn remove(&self, key: &str, entry: PaymentId) -> Result<(), CounterError>;
}

/// The checks every counter makes before recording anything: a key of printable ASCII without
/// spaces or braces (Redis Cluster reads braces as a hash tag), at most [`KEY_BYTES_MAX`] bytes;
/// an amount that is not negative.
pub fn check_entry(key: &str, amount_minor: i64) -> Result<(), CounterError> {
    check_key(key)?;
    if amount_minor < 0 {
        return Err(CounterError::Refused { key: key.to_owned(), reason: format!("negative amount {amount_minor}") });
    }
    Ok(())
}

/// The key half of [`check_entry`].
pub fn check_key(key: &str) -> Result<(), CounterError> {
    let refused = |reason: &str| Err(CounterError::Refused { key: truncated(key), reason: reason.to_owned() });
    if key.is_empty() {
        return refused("empty key");
    }
    if key.len() > KEY_BYTES_MAX {
        return refused(&format!("longer than {KEY_BYTES_MAX} bytes"));
    }
    if !key.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'{' && byte != b'}') {
        return refused("only printable ASCII without spaces or braces");
    }
    Ok(())
}

fn truncated(key: &str) -> String {
    key.chars().take(64).collect()
}

/// Milliseconds since the Unix epoch; before it counts as 0, too far ahead as `u64::MAX`. Every
/// counter measures windows in these units.
pub fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// A window in whole milliseconds (saturating).
pub fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
}

/// Whose payments a limit adds up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VelocityScope {
    /// Every payment a participant (bank, wallet provider) sends, from any of its accounts.
    Participant,
    /// Every payment from one payer account.
    Wallet,
}

impl VelocityScope {
    pub fn as_str(self) -> &'static str {
        match self {
            VelocityScope::Participant => "participant",
            VelocityScope::Wallet => "wallet",
        }
    }
}

impl fmt::Display for VelocityScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VelocityLimitError {
    #[error("a velocity limit needs amount_max, count_max, or both")]
    NoMaximum,
    #[error("the window must be longer than 0 and at most 31 days ({} s)", VelocityLimit::WINDOW_MAX.as_secs())]
    Window,
    #[error("amount_max is in {amount}, the limit in {limit}")]
    CurrencyMismatch { amount: Currency, limit: Currency },
    #[error("count_max must be at least 1")]
    CountMaxZero,
}

/// A sliding-window limit: at most `amount_max` and at most `count_max` payments of one scope in
/// `currency` within `window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VelocityLimit {
    scope: VelocityScope,
    currency: Currency,
    window: Duration,
    amount_max: Option<Money>,
    count_max: Option<u32>,
}

impl VelocityLimit {
    /// The longest window: a month and a day. Counters keep every entry of a window, so the window
    /// bounds what they store.
    pub const WINDOW_MAX: Duration = Duration::from_secs(31 * 86_400);

    pub fn new(
        scope: VelocityScope,
        currency: Currency,
        window: Duration,
        amount_max: Option<Money>,
        count_max: Option<u32>,
    ) -> Result<Self, VelocityLimitError> {
        if amount_max.is_none() && count_max.is_none() {
            return Err(VelocityLimitError::NoMaximum);
        }
        if window < Duration::from_millis(1) || window > Self::WINDOW_MAX {
            return Err(VelocityLimitError::Window);
        }
        if let Some(amount_max) = amount_max
            && amount_max.currency() != currency
        {
            return Err(VelocityLimitError::CurrencyMismatch { amount: amount_max.currency(), limit: currency });
        }
        if count_max == Some(0) {
            return Err(VelocityLimitError::CountMaxZero);
        }
        Ok(Self { scope, currency, window, amount_max, count_max })
    }

    pub fn scope(&self) -> VelocityScope {
        self.scope
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn amount_max(&self) -> Option<Money> {
        self.amount_max
    }

    pub fn count_max(&self) -> Option<u32> {
        self.count_max
    }
}

/// The counter key of a payment `participant` sends from `payer`, under a limit of `scope`,
/// `currency` and `window` in `jurisdiction`:
/// `velocity:{jurisdiction}:{scope}:{participant or payer address}:{currency}:{window ms}`,
/// e.g. `velocity:HK:wallet:e-hkd/alice:HKD:86400000`. The window is part of the key so that an
/// hourly and a daily limit on the same payer keep their own entries (the shorter window would
/// otherwise forget what the longer one still counts); two limits with the same key share entries,
/// which is right because an add is idempotent per payment.
pub fn velocity_key(
    jurisdiction: &Jurisdiction,
    scope: VelocityScope,
    participant: &ParticipantId,
    payer: &Address,
    currency: Currency,
    window: Duration,
) -> String {
    let whose = match scope {
        VelocityScope::Participant => participant.to_string(),
        VelocityScope::Wallet => payer.to_string(),
    };
    format!("velocity:{jurisdiction}:{scope}:{whose}:{currency}:{}", window_ms(window))
}

/// A jurisdiction's velocity limit as a compliance hook (see the module docs).
pub struct VelocityHook {
    limit: VelocityLimit,
    counter: Arc<dyn VelocityCounter>,
    clock: Clock,
}

impl VelocityHook {
    pub const PARTICIPANT: &'static str = "velocity_participant";
    pub const WALLET: &'static str = "velocity_wallet";

    pub fn new(limit: VelocityLimit, counter: Arc<dyn VelocityCounter>, clock: Clock) -> Self {
        Self { limit, counter, clock }
    }

    pub fn limit(&self) -> &VelocityLimit {
        &self.limit
    }

    /// The payment's amount this limit counts: its first amount on the route in the limit's
    /// currency.
    fn amount_of(&self, subject: &Subject<'_>) -> Option<Money> {
        subject.amounts.iter().copied().find(|amount| amount.currency() == self.limit.currency)
    }

    /// The counter key of `subject` under this limit in `jurisdiction`.
    pub fn key(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> String {
        self.key_of(jurisdiction, subject.participant, subject.payer)
    }

    fn key_of(&self, jurisdiction: &Jurisdiction, participant: &ParticipantId, payer: &Address) -> String {
        velocity_key(jurisdiction, self.limit.scope, participant, payer, self.limit.currency, self.limit.window)
    }

    /// Takes the payment back out of this limit's window: for the router, when a payment this hook
    /// allowed ends refused or failed, so the counter keeps counting only what settled or is
    /// settling. Idempotent; a payment this hook never counted is a no-op.
    pub async fn release(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Result<(), CounterError> {
        if self.amount_of(subject).is_none() {
            return Ok(());
        }
        self.release_payment(jurisdiction, subject.payment, subject.participant, subject.payer).await
    }

    /// [`VelocityHook::release`] from what every stored receipt carries: the payment, its
    /// participant and its payer.
    pub async fn release_payment(
        &self,
        jurisdiction: &Jurisdiction,
        payment: PaymentId,
        participant: &ParticipantId,
        payer: &Address,
    ) -> Result<(), CounterError> {
        self.counter.remove(&self.key_of(jurisdiction, participant, payer), payment).await
    }

    /// The objection to `totals`, if they pass a maximum (the amount is checked first).
    fn objection(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>, totals: WindowTotals) -> Option<Reason> {
        let currency = self.limit.currency;
        let window = window_text(self.limit.window);
        let whose = match self.limit.scope {
            VelocityScope::Participant => format!("participant {}", subject.participant),
            VelocityScope::Wallet => format!("wallet {}", subject.payer),
        };
        let total = total_text(totals.amount_minor, currency);
        let count = totals.count;
        if let Some(amount_max) = self.limit.amount_max
            && totals.amount_minor > i128::from(amount_max.minor_units())
        {
            return Some(Reason {
                code: VELOCITY_AMOUNT_EXCEEDED,
                message: format!(
                    "{whose} would pay {total} in {count} payments within {window} with this one, above \
                     {jurisdiction}'s limit of {amount_max} per {window}"
                ),
            });
        }
        if let Some(count_max) = self.limit.count_max
            && count > u64::from(count_max)
        {
            return Some(Reason {
                code: VELOCITY_COUNT_EXCEEDED,
                message: format!(
                    "{whose} would make {count} payments ({total}) within {window} with this one, above \
                     {jurisdiction}'s limit of {count_max} payments per {window}"
                ),
            });
        }
        None
    }
}

#[async_trait::async_trait]
impl ComplianceHook for VelocityHook {
    fn name(&self) -> &'static str {
        match self.limit.scope {
            VelocityScope::Participant => Self::PARTICIPANT,
            VelocityScope::Wallet => Self::WALLET,
        }
    }

    async fn check(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Decision {
        let Some(amount) = self.amount_of(subject) else { return Decision::Allow };
        let key = self.key(jurisdiction, subject);
        let at = (self.clock)();
        let totals = match self.counter.add(&key, subject.payment, amount.minor_units(), at, self.limit.window).await {
            Ok(totals) => totals,
            Err(error) => {
                return Decision::Deny(Reason {
                    code: VELOCITY_UNAVAILABLE,
                    message: format!(
                        "{jurisdiction}'s {} velocity limit in {} cannot be checked, so the payment is refused: \
                         {error}",
                        self.limit.scope, self.limit.currency
                    ),
                });
            }
        };
        let Some(mut reason) = self.objection(jurisdiction, subject, totals) else { return Decision::Allow };
        if let Err(error) = self.counter.remove(&key, subject.payment).await {
            // The denial stands either way; the entry just keeps counting until its window passes.
            reason.message.push_str(&format!(" (it could not be taken back out of the window: {error})"));
        }
        Decision::Deny(reason)
    }
}

/// The velocity hooks of a network, by jurisdiction, so that the router can take a payment back
/// out of every window it was counted in.
#[derive(Default, Clone)]
pub struct VelocityHooks {
    hooks: Vec<(Jurisdiction, Arc<VelocityHook>)>,
}

impl VelocityHooks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `hook` for `jurisdiction` (the caller adds the same hook to the pipeline).
    pub fn add(&mut self, jurisdiction: Jurisdiction, hook: Arc<VelocityHook>) {
        self.hooks.push((jurisdiction, hook));
    }

    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Takes `payment` (sent by `participant` from `payer`) back out of every velocity hook's
    /// window: for the router, when a payment it screened ends refused or failed. Every hook is
    /// asked, whatever the route was — a hook that never counted the payment changes nothing — so
    /// the caller needs only what every stored receipt carries. Tries every hook even after one
    /// fails, and returns the first failure.
    pub async fn release(
        &self,
        payment: PaymentId,
        participant: &ParticipantId,
        payer: &Address,
    ) -> Result<(), CounterError> {
        let mut first_error = None;
        for (jurisdiction, hook) in &self.hooks {
            if let Err(error) = hook.release_payment(jurisdiction, payment, participant, payer).await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// `window` in its largest whole unit: `24h`, `90m`, `30s`, `1500ms`.
fn window_text(window: Duration) -> String {
    let ms = window_ms(window);
    match ms {
        _ if ms >= 3_600_000 && ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms >= 60_000 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms >= 1_000 && ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

fn total_text(amount_minor: i128, currency: Currency) -> String {
    match i64::try_from(amount_minor) {
        Ok(minor) => format!("{} {currency}", format_minor_units(minor, currency)),
        Err(_) => format!("{amount_minor} minor units of {currency}"),
    }
}

/// Idle keys one add forgets at most (keys whose every entry has left its window): bounds one
/// add's cost; a backlog drains over the following adds.
pub const IDLE_KEYS_FORGOTTEN_PER_ADD_MAX: usize = 16;

/// A [`VelocityCounter`] in this process's memory: for tests, and for a single router that needs
/// no durability (its counts start empty after a restart). Keys whose entries have all left their
/// window are forgotten by later adds, at most [`IDLE_KEYS_FORGOTTEN_PER_ADD_MAX`] per add.
#[derive(Default)]
pub struct MemoryVelocityCounter {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    windows: HashMap<String, MemoryWindow>,
    /// (when the key's last entry leaves its window, key): the idle keys to forget, in order.
    idle: BTreeSet<(u64, String)>,
}

#[derive(Default)]
struct MemoryWindow {
    /// Entry → (added at, amount), both in ms / minor units.
    entries: HashMap<PaymentId, (u64, i64)>,
    by_time: BTreeSet<(u64, PaymentId)>,
    totals: WindowTotals,
    /// The latest `at + window` of any add: from then on no entry counts.
    forget_at_ms: u64,
}

impl MemoryWindow {
    fn take(&mut self, entry: PaymentId) {
        if let Some((at_ms, amount_minor)) = self.entries.remove(&entry) {
            self.by_time.remove(&(at_ms, entry));
            self.totals.amount_minor -= i128::from(amount_minor);
            self.totals.count = self.totals.count.saturating_sub(1);
        }
    }
}

impl MemoryVelocityCounter {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, CounterError> {
        self.state.lock().map_err(|_| CounterError::Unavailable("memory counter poisoned by an earlier panic".into()))
    }

    /// How many keys it holds (idle ones not yet forgotten included).
    pub fn key_count(&self) -> Result<usize, CounterError> {
        Ok(self.state()?.windows.len())
    }
}

#[async_trait::async_trait]
impl VelocityCounter for MemoryVelocityCounter {
    async fn add(
        &self,
        key: &str,
        entry: PaymentId,
        amount_minor: i64,
        at: SystemTime,
        window: Duration,
    ) -> Result<WindowTotals, CounterError> {
        check_entry(key, amount_minor)?;
        let (at_ms, window_ms) = (unix_ms(at), window_ms(window));
        let mut state = self.state()?;
        let state = &mut *state;
        let idle: Vec<(u64, String)> = state
            .idle
            .iter()
            .take_while(|(forget_at_ms, _)| *forget_at_ms <= at_ms)
            .take(IDLE_KEYS_FORGOTTEN_PER_ADD_MAX)
            .cloned()
            .collect();
        for idle_key in idle {
            state.idle.remove(&idle_key);
            state.windows.remove(&idle_key.1);
        }
        let counted = state.windows.entry(key.to_owned()).or_default();
        if let Some(cutoff_ms) = at_ms.checked_sub(window_ms) {
            let expired: Vec<PaymentId> =
                counted.by_time.iter().take_while(|(added_ms, _)| *added_ms <= cutoff_ms).map(|(_, id)| *id).collect();
            for id in expired {
                counted.take(id);
            }
        }
        if counted.entries.contains_key(&entry) {
            return Ok(counted.totals);
        }
        counted.entries.insert(entry, (at_ms, amount_minor));
        counted.by_time.insert((at_ms, entry));
        counted.totals.amount_minor += i128::from(amount_minor);
        counted.totals.count += 1;
        let totals = counted.totals;
        let forget_at_ms = at_ms.saturating_add(window_ms);
        if forget_at_ms > counted.forget_at_ms {
            let previous = std::mem::replace(&mut counted.forget_at_ms, forget_at_ms);
            state.idle.remove(&(previous, key.to_owned()));
            state.idle.insert((forget_at_ms, key.to_owned()));
        }
        Ok(totals)
    }

    async fn remove(&self, key: &str, entry: PaymentId) -> Result<(), CounterError> {
        check_key(key)?;
        if let Some(counted) = self.state()?.windows.get_mut(key) {
            counted.take(entry);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{CompliancePipeline, Outcome};

    fn money(amount: &str, code: &str) -> Money {
        Money::parse(amount, Currency::from_code(code).unwrap()).unwrap()
    }

    fn hkd() -> Currency {
        Currency::from_code("HKD").unwrap()
    }

    fn hk() -> Jurisdiction {
        Jurisdiction::new("HK").unwrap()
    }

    const T0_S: u64 = 1_800_000_000;

    fn at_s(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0_S + seconds)
    }

    /// A clock the test moves by hand.
    fn test_clock() -> (Clock, Arc<Mutex<SystemTime>>) {
        let now = Arc::new(Mutex::new(at_s(0)));
        let read = Arc::clone(&now);
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    /// One payment as the hooks see it: `bank-hk` pays from `payer`.
    struct Payment {
        id: PaymentId,
        participant: ParticipantId,
        payer: Address,
        payee: Address,
        amounts: Vec<Money>,
        jurisdictions: Vec<Jurisdiction>,
    }

    impl Payment {
        fn new(payer: &str, amounts: &[Money]) -> Self {
            Self {
                id: PaymentId::generate(),
                participant: ParticipantId::new("bank-hk").unwrap(),
                payer: payer.parse().unwrap(),
                payee: "e-hkd/bob".parse().unwrap(),
                amounts: amounts.to_vec(),
                jurisdictions: vec![hk()],
            }
        }

        fn subject(&self) -> Subject<'_> {
            Subject {
                payment: self.id,
                participant: &self.participant,
                payer: &self.payer,
                payee: &self.payee,
                amounts: &self.amounts,
                jurisdictions: &self.jurisdictions,
                originator: None,
                beneficiary: None,
            }
        }
    }

    fn limit(scope: VelocityScope, window_s: u64, amount_max: Option<&str>, count_max: Option<u32>) -> VelocityLimit {
        let amount_max = amount_max.map(|amount| money(amount, "HKD"));
        VelocityLimit::new(scope, hkd(), Duration::from_secs(window_s), amount_max, count_max).unwrap()
    }

    fn totals(amount_minor: i128, count: u64) -> WindowTotals {
        WindowTotals { amount_minor, count }
    }

    fn code(decision: &Decision) -> Option<&'static str> {
        match decision {
            Decision::Allow => None,
            Decision::Deny(reason) | Decision::Hold(reason) => Some(reason.code),
        }
    }

    #[tokio::test]
    async fn the_window_slides_and_adds_are_idempotent() {
        let counter = MemoryVelocityCounter::new();
        let window = Duration::from_secs(60);
        let ids: Vec<PaymentId> = (0..4).map(|_| PaymentId::generate()).collect();
        // (entry, amount, at, totals afterwards): a 60 s window is (at - 60 s, at].
        let steps = [
            (0, 100, 0, totals(100, 1)),
            (1, 250, 10, totals(350, 2)),
            (0, 999, 20, totals(350, 2)), // the same entry again: neither amount nor time changes
            (2, 5, 59, totals(355, 3)),
            (3, 1, 60, totals(256, 3)), // entry 0, added at 0, has left the window
            (1, 250, 69, totals(256, 3)),
            (0, 7, 70, totals(13, 3)), // entry 1 left at 70; entry 0 counts again, anew
        ];
        for (index, (entry, amount_minor, at, expected)) in steps.into_iter().enumerate() {
            let got = counter.add("velocity:k", ids[entry], amount_minor, at_s(at), window).await.unwrap();
            assert_eq!(got, expected, "step {index}");
        }
        counter.remove("velocity:k", ids[2]).await.unwrap();
        counter.remove("velocity:k", ids[2]).await.unwrap();
        counter.remove("velocity:other", ids[2]).await.unwrap();
        assert_eq!(counter.add("velocity:k", ids[2], 5, at_s(71), window).await.unwrap(), totals(13, 3));
        assert_eq!(
            counter.add("velocity:other", ids[2], 5, at_s(71), window).await.unwrap(),
            totals(5, 1),
            "keys are independent"
        );
    }

    #[tokio::test]
    async fn idle_keys_are_forgotten_a_bounded_number_per_add() {
        let counter = MemoryVelocityCounter::new();
        let window = Duration::from_secs(10);
        for index in 0..40 {
            counter.add(&format!("velocity:{index}"), PaymentId::generate(), 1, at_s(0), window).await.unwrap();
        }
        counter.add("velocity:recent", PaymentId::generate(), 1, at_s(5), window).await.unwrap();
        assert_eq!(counter.key_count().unwrap(), 41, "forgotten before its window passed");
        counter.add("velocity:late", PaymentId::generate(), 1, at_s(10), window).await.unwrap();
        assert_eq!(counter.key_count().unwrap(), 42 - IDLE_KEYS_FORGOTTEN_PER_ADD_MAX);
        for _ in 0..2 {
            counter.add("velocity:late", PaymentId::generate(), 1, at_s(11), window).await.unwrap();
        }
        assert_eq!(counter.key_count().unwrap(), 2, "the backlog did not drain: `recent` and `late` remain");
    }

    #[tokio::test]
    async fn counters_refuse_what_they_cannot_store() {
        let counter = MemoryVelocityCounter::new();
        let check = |key: &str, amount_minor: i64, refused: bool| {
            assert_eq!(check_entry(key, amount_minor).is_err(), refused, "{key:?} {amount_minor}");
        };
        check("velocity:HK:wallet:e-hkd/alice:HKD:60000", 1, false);
        check("velocity:HK:wallet:e-hkd/a:b:HKD:60000", 0, false);
        check("", 1, true);
        check("with space", 1, true);
        check("velocity:{tag}", 1, true);
        check(&"k".repeat(KEY_BYTES_MAX), 1, false);
        check(&"k".repeat(KEY_BYTES_MAX + 1), 1, true);
        check("velocity:k", -1, true);
        let refused = counter.add("velocity:{x}", PaymentId::generate(), 1, at_s(0), Duration::from_secs(1)).await;
        assert!(matches!(refused, Err(CounterError::Refused { .. })), "{refused:?}");
        assert_eq!(counter.key_count().unwrap(), 0);
    }

    #[test]
    fn limits_are_validated() {
        let window = Duration::from_secs(3_600);
        let check = |window: Duration, amount_max: Option<Money>, count_max: Option<u32>, expected| {
            let got = VelocityLimit::new(VelocityScope::Wallet, hkd(), window, amount_max, count_max).err();
            assert_eq!(got, expected, "{window:?} {amount_max:?} {count_max:?}");
        };
        check(window, Some(money("10.00", "HKD")), None, None);
        check(window, None, Some(1), None);
        check(VelocityLimit::WINDOW_MAX, None, Some(3), None);
        check(window, None, None, Some(VelocityLimitError::NoMaximum));
        check(Duration::ZERO, None, Some(3), Some(VelocityLimitError::Window));
        check(VelocityLimit::WINDOW_MAX + Duration::from_millis(1), None, Some(3), Some(VelocityLimitError::Window));
        check(window, None, Some(0), Some(VelocityLimitError::CountMaxZero));
        let currency = Currency::from_code("CNY").unwrap();
        let mismatch = VelocityLimitError::CurrencyMismatch { amount: currency, limit: hkd() };
        check(window, Some(money("10.00", "CNY")), None, Some(mismatch));
    }

    #[test]
    fn windows_read_in_their_largest_whole_unit() {
        let check =
            |window_ms: u64, expected: &str| assert_eq!(window_text(Duration::from_millis(window_ms)), expected);
        check(86_400_000, "24h");
        check(5_400_000, "90m");
        check(30_000, "30s");
        check(1_500, "1500ms");
        check(1, "1ms");
    }

    #[test]
    fn keys_name_jurisdiction_scope_whose_currency_and_window() {
        let payment = Payment::new("e-hkd/alice", &[money("1.00", "HKD")]);
        let (clock, _) = test_clock();
        let counter: Arc<dyn VelocityCounter> = Arc::new(MemoryVelocityCounter::new());
        let key = |scope, window_s| {
            let hook = VelocityHook::new(limit(scope, window_s, None, Some(1)), Arc::clone(&counter), clock.clone());
            hook.key(&hk(), &payment.subject())
        };
        assert_eq!(key(VelocityScope::Wallet, 3_600), "velocity:HK:wallet:e-hkd/alice:HKD:3600000");
        assert_eq!(key(VelocityScope::Participant, 86_400), "velocity:HK:participant:bank-hk:HKD:86400000");
        assert!(check_key(&key(VelocityScope::Wallet, 60)).is_ok());
    }

    #[tokio::test]
    async fn an_amount_limit_denies_what_would_pass_it_and_takes_it_back_out() {
        let (clock, now) = test_clock();
        let counter = Arc::new(MemoryVelocityCounter::new());
        let hook = VelocityHook::new(
            limit(VelocityScope::Wallet, 3_600, Some("1000.00"), None),
            Arc::clone(&counter) as Arc<dyn VelocityCounter>,
            clock,
        );
        assert_eq!(hook.name(), "velocity_wallet");
        let first = Payment::new("e-hkd/alice", &[money("600.00", "HKD")]);
        assert_eq!(hook.check(&hk(), &first.subject()).await, Decision::Allow);
        *now.lock().unwrap() = at_s(1_800);
        let over = Payment::new("e-hkd/alice", &[money("400.01", "HKD")]);
        let Decision::Deny(reason) = hook.check(&hk(), &over.subject()).await else { panic!("allowed over the limit") };
        assert_eq!(reason.code, VELOCITY_AMOUNT_EXCEEDED);
        assert_eq!(
            reason.message,
            "wallet e-hkd/alice would pay 1000.01 HKD in 2 payments within 1h with this one, above HK's limit of \
             1000.00 HKD per 1h"
        );
        // The denied payment was taken back out: exactly the rest of the allowance still fits.
        let fits = Payment::new("e-hkd/alice", &[money("400.00", "HKD")]);
        assert_eq!(hook.check(&hk(), &fits.subject()).await, Decision::Allow);
        let other_wallet = Payment::new("e-hkd/carol", &[money("1000.00", "HKD")]);
        assert_eq!(hook.check(&hk(), &other_wallet.subject()).await, Decision::Allow, "wallets are separate");
        // An hour after the first payment it has left the window.
        *now.lock().unwrap() = at_s(3_600);
        let again = Payment::new("e-hkd/alice", &[money("600.00", "HKD")]);
        assert_eq!(hook.check(&hk(), &again.subject()).await, Decision::Allow);
        let one_more = Payment::new("e-hkd/alice", &[money("0.01", "HKD")]);
        assert_eq!(code(&hook.check(&hk(), &one_more.subject()).await), Some(VELOCITY_AMOUNT_EXCEEDED));
    }

    #[tokio::test]
    async fn a_count_limit_counts_payments_of_the_participant_and_release_gives_one_back() {
        let (clock, _) = test_clock();
        let hook = VelocityHook::new(
            limit(VelocityScope::Participant, 60, None, Some(2)),
            Arc::new(MemoryVelocityCounter::new()),
            clock,
        );
        assert_eq!(hook.name(), "velocity_participant");
        let payments: Vec<Payment> = ["e-hkd/a", "e-hkd/b", "e-hkd/c"]
            .into_iter()
            .map(|payer| Payment::new(payer, &[money("5.00", "CNY"), money("1.00", "HKD")]))
            .collect();
        let mut codes = Vec::new();
        for payment in &payments {
            codes.push(code(&hook.check(&hk(), &payment.subject()).await));
        }
        assert_eq!(codes, [None, None, Some(VELOCITY_COUNT_EXCEEDED)], "the participant's wallets add up");
        let Decision::Deny(reason) = hook.check(&hk(), &payments[2].subject()).await else { panic!("allowed") };
        assert_eq!(
            reason.message,
            "participant bank-hk would make 3 payments (3.00 HKD) within 1m with this one, above HK's limit of 2 \
             payments per 1m"
        );
        // The second payment failed at a ledger: the router releases it, and the third fits.
        hook.release(&hk(), &payments[1].subject()).await.unwrap();
        assert_eq!(hook.check(&hk(), &payments[2].subject()).await, Decision::Allow);
        // Screening the same payment again does not count it twice.
        assert_eq!(hook.check(&hk(), &payments[2].subject()).await, Decision::Allow);
    }

    #[tokio::test]
    async fn a_payment_without_an_amount_in_the_currency_is_allowed_and_not_counted() {
        let (clock, _) = test_clock();
        let counter = Arc::new(MemoryVelocityCounter::new());
        let hook = VelocityHook::new(limit(VelocityScope::Wallet, 60, None, Some(1)), Arc::clone(&counter) as _, clock);
        let elsewhere = Payment::new("e-cny/wei", &[money("5.00", "CNY"), money("1.00", "THB")]);
        assert_eq!(hook.check(&hk(), &elsewhere.subject()).await, Decision::Allow);
        hook.release(&hk(), &elsewhere.subject()).await.unwrap();
        assert_eq!(counter.key_count().unwrap(), 0);
    }

    /// A counter whose store is down.
    struct Unreachable;

    #[async_trait::async_trait]
    impl VelocityCounter for Unreachable {
        async fn add(
            &self,
            _: &str,
            _: PaymentId,
            _: i64,
            _: SystemTime,
            _: Duration,
        ) -> Result<WindowTotals, CounterError> {
            Err(CounterError::Unavailable("connection refused".into()))
        }

        async fn remove(&self, _: &str, _: PaymentId) -> Result<(), CounterError> {
            Err(CounterError::Unavailable("connection refused".into()))
        }
    }

    #[tokio::test]
    async fn a_counter_that_cannot_be_reached_denies() {
        let (clock, _) = test_clock();
        let hook =
            VelocityHook::new(limit(VelocityScope::Wallet, 60, Some("100.00"), None), Arc::new(Unreachable), clock);
        let payment = Payment::new("e-hkd/alice", &[money("1.00", "HKD")]);
        let Decision::Deny(reason) = hook.check(&hk(), &payment.subject()).await else { panic!("failed open") };
        assert_eq!(reason.code, VELOCITY_UNAVAILABLE);
        assert_eq!(
            reason.message,
            "HK's wallet velocity limit in HKD cannot be checked, so the payment is refused: velocity counter \
             unavailable: connection refused"
        );
        assert!(hook.release(&hk(), &payment.subject()).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_32_concurrent_payments_exactly_the_count_limit_pass() {
        let (clock, _) = test_clock();
        let hook = Arc::new(VelocityHook::new(
            limit(VelocityScope::Wallet, 60, None, Some(10)),
            Arc::new(MemoryVelocityCounter::new()),
            clock,
        ));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let hook = Arc::clone(&hook);
            tasks.push(tokio::spawn(async move {
                let payment = Payment::new("e-hkd/alice", &[money("1.00", "HKD")]);
                hook.check(&hk(), &payment.subject()).await
            }));
        }
        let mut allowed = 0;
        for task in tasks {
            match task.await.unwrap() {
                Decision::Allow => allowed += 1,
                denied => assert_eq!(code(&denied), Some(VELOCITY_COUNT_EXCEEDED)),
            }
        }
        assert_eq!(allowed, 10);
    }

    #[tokio::test]
    async fn the_router_releases_every_velocity_hook_of_the_route() {
        let (clock, _) = test_clock();
        let counter: Arc<dyn VelocityCounter> = Arc::new(MemoryVelocityCounter::new());
        let hook =
            |scope| Arc::new(VelocityHook::new(limit(scope, 60, None, Some(1)), Arc::clone(&counter), clock.clone()));
        let mut pipeline = CompliancePipeline::new();
        let mut velocity = VelocityHooks::new();
        for scope in [VelocityScope::Participant, VelocityScope::Wallet] {
            let hook = hook(scope);
            pipeline.add_hook(hk(), Arc::clone(&hook) as Arc<dyn ComplianceHook>);
            velocity.add(hk(), hook);
        }
        assert_eq!(velocity.len(), 2);
        let first = Payment::new("e-hkd/alice", &[money("1.00", "HKD")]);
        let second = Payment::new("e-hkd/alice", &[money("1.00", "HKD")]);
        assert_eq!(pipeline.screen(&first.subject(), &[hk()]).await.outcome(), Outcome::Allow);
        let refused = pipeline.screen(&second.subject(), &[hk()]).await;
        let hooks: Vec<_> =
            refused.decisions.iter().map(|decision| (decision.hook, code(&decision.decision))).collect();
        assert_eq!(
            hooks,
            [
                ("velocity_participant", Some(VELOCITY_COUNT_EXCEEDED)),
                ("velocity_wallet", Some(VELOCITY_COUNT_EXCEEDED))
            ]
        );
        // The first payment is refused later: released from both windows, the second fits.
        velocity.release(second.id, &second.participant, &second.payer).await.unwrap();
        assert_eq!(pipeline.screen(&second.subject(), &[hk()]).await.outcome(), Outcome::Deny, "released another");
        velocity.release(first.id, &first.participant, &first.payer).await.unwrap();
        assert_eq!(pipeline.screen(&second.subject(), &[hk()]).await.outcome(), Outcome::Allow);
    }
}
