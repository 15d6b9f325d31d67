//! The settlement invariants under injected faults, as a property test over the whole pipeline
//! (route → FX → compliance → two-phase commit) on in-memory ledgers.
//!
//! Every ledger is wrapped in a [`FaultyLedger`] that, per call and from a seeded RNG, fails
//! before acting (nothing happened), fails after acting (the effect happened, the answer was lost),
//! or answers late (after the coordinator's deadline). Random payment mixes — domestic,
//! cross-border both ways, unknown payees, amounts above balances and limits, pairs with no route —
//! run concurrently. Afterwards, from the ledgers themselves:
//! - conservation: every ledger's balances sum to what was issued;
//! - no overdraft and no hold left behind;
//! - atomicity: a settled payment is committed on every ledger it touches, any other payment on none;
//! - exactly once: each idempotency key maps to one payment;
//! - the receipts reconcile with the ledger balances, account by account.
//!
//! In some cases the router "crashes": every payment in flight is dropped at whatever await it had
//! reached (between journal writes, between votes and decision, between commits), and a new
//! router over the same durable store and ledgers runs recovery before the checks.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corridor_ledger_adapters::{
    AccountBalance, Ledger, LedgerDescription, LedgerError, Posting, TransactionId, TransactionState, Vote,
};
use corridor_router::clock::SystemClock;
use corridor_router::config::Config;
use corridor_router::network::Network;
use corridor_router::pipeline::{Router, RouterSettings};
use corridor_router::recovery;
use corridor_router::storage::embedded::EmbeddedStore;
use corridor_router::storage::{Decision, Journal, JournalEntry, Storage, StorageError};
use corridor_schemas::money::parse_signed_minor_units;
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{
    AccountName, Currency, FixedSide, IdempotencyKey, LedgerId, Money, ParticipantId, PaymentId, PaymentInstruction,
};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::sync::Notify;

const NETWORK: &str = r#"
[settlement]
prepare_timeout_ms = 50
decision_attempts_max = 20

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-thb"
currency = "THB"
jurisdiction = "TH"

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [{ address = "e-cny/cn.a", opening_balance = "900.00" }, { address = "e-cny/cn.b", opening_balance = "300.00" }]

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [{ address = "e-hkd/hk.a", opening_balance = "900.00" }, { address = "e-hkd/hk.b", opening_balance = "300.00" }]

[[participants]]
id = "bank-th"
role = "bank"
accounts = [{ address = "e-thb/th.a", opening_balance = "4000.00" }, { address = "e-thb/th.b", opening_balance = "1000.00" }]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
accounts = [
  { address = "e-cny/lp-one", opening_balance = "1500.00" },
  { address = "e-hkd/lp-one", opening_balance = "1500.00" },
  { address = "e-thb/lp-one", opening_balance = "6000.00" },
]

[[participants]]
id = "lp-two"
role = "liquidity_provider"
accounts = [{ address = "e-cny/lp-two", opening_balance = "800.00" }, { address = "e-hkd/lp-two", opening_balance = "800.00" }]

# No CNY/THB quote: CNY <-> THB has no route.
[[rates]]
provider = "lp-one"
pair = "CNY/HKD"
bid = "1.0850"
ask = "1.0900"

[[rates]]
provider = "lp-two"
pair = "CNY/HKD"
bid = "1.0860"
ask = "1.0910"

[[rates]]
provider = "lp-one"
pair = "HKD/THB"
bid = "4.1500"
ask = "4.1800"

[[limits]]
jurisdiction = "HK"
currency = "HKD"
single_payment_max = "400.00"

[[fees]]
from_ledger = "e-cny"
currency = "CNY"
fixed = "0.50"
basis_points = 20
"#;

/// Probabilities, in percent, of each fault on each call.
#[derive(Debug, Clone, Copy)]
struct Faults {
    fail_before_percent: u32,
    fail_after_percent: u32,
    late_vote_percent: u32,
}

/// A ledger that misbehaves on purpose, wrapping a correct one.
struct FaultyLedger {
    inner: Arc<dyn Ledger>,
    faults: Faults,
    rng: Mutex<StdRng>,
    late_by: Duration,
}

enum Fault {
    None,
    FailBefore,
    FailAfter,
    Late,
}

impl FaultyLedger {
    fn roll(&self, allow_late: bool) -> Fault {
        let roll = self.rng.lock().unwrap().random_range(0..100u32);
        let Faults { fail_before_percent: before, fail_after_percent: after, late_vote_percent: late } = self.faults;
        if roll < before {
            Fault::FailBefore
        } else if roll < before + after {
            Fault::FailAfter
        } else if allow_late && roll < before + after + late {
            Fault::Late
        } else {
            Fault::None
        }
    }

    fn unavailable(what: &str) -> LedgerError {
        LedgerError::Unavailable(format!("injected fault: {what}"))
    }
}

#[async_trait::async_trait]
impl Ledger for FaultyLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        self.inner.describe().await
    }

    async fn prepare(
        &self,
        transaction: TransactionId,
        postings: &[Posting],
        deadline: std::time::SystemTime,
    ) -> Result<Vote, LedgerError> {
        match self.roll(true) {
            Fault::FailBefore => Err(Self::unavailable("prepare lost on the way in")),
            Fault::FailAfter => {
                let _vote_lost = self.inner.prepare(transaction, postings, deadline).await;
                Err(Self::unavailable("vote lost on the way out"))
            }
            Fault::Late => {
                let vote = self.inner.prepare(transaction, postings, deadline).await;
                tokio::time::sleep(self.late_by).await;
                vote
            }
            Fault::None => self.inner.prepare(transaction, postings, deadline).await,
        }
    }

    async fn commit(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        match self.roll(false) {
            Fault::FailBefore => Err(Self::unavailable("commit lost on the way in")),
            Fault::FailAfter => {
                let _ack_lost = self.inner.commit(transaction).await;
                Err(Self::unavailable("commit acknowledgement lost"))
            }
            _ => self.inner.commit(transaction).await,
        }
    }

    async fn abort(&self, transaction: TransactionId) -> Result<(), LedgerError> {
        match self.roll(false) {
            Fault::FailBefore => Err(Self::unavailable("abort lost on the way in")),
            Fault::FailAfter => {
                let _ack_lost = self.inner.abort(transaction).await;
                Err(Self::unavailable("abort acknowledgement lost"))
            }
            _ => self.inner.abort(transaction).await,
        }
    }

    async fn status(&self, transaction: TransactionId) -> Result<TransactionState, LedgerError> {
        self.inner.status(transaction).await
    }

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        self.inner.balance(account).await
    }

    async fn in_doubt(
        &self,
        prepared_before: std::time::SystemTime,
        limit: usize,
    ) -> Result<Vec<TransactionId>, LedgerError> {
        self.inner.in_doubt(prepared_before, limit).await
    }
}

#[derive(Debug, Clone)]
struct PaymentSpec {
    payer: usize,
    payee: usize,
    unknown_payee: bool,
    amount_cents: i64,
    fixed_receive: bool,
    /// Submit the same instruction twice, concurrently.
    duplicate: bool,
}

const WALLETS: [(&str, &str); 6] = [
    ("bank-cn", "e-cny/cn.a"),
    ("bank-cn", "e-cny/cn.b"),
    ("bank-hk", "e-hkd/hk.a"),
    ("bank-hk", "e-hkd/hk.b"),
    ("bank-th", "e-thb/th.a"),
    ("bank-th", "e-thb/th.b"),
];

fn payment_spec() -> impl Strategy<Value = PaymentSpec> {
    (
        0..6usize,
        0..6usize,
        prop::bool::weighted(0.08),
        1..120_000i64,
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(payer, payee, unknown_payee, amount_cents, fixed_receive, duplicate)| PaymentSpec {
            payer,
            payee,
            unknown_payee,
            amount_cents,
            fixed_receive,
            duplicate,
        })
}

fn instruction(index: usize, spec: &PaymentSpec, network: &Network) -> Option<PaymentInstruction> {
    let (participant, payer) = WALLETS[spec.payer];
    let payee = if spec.unknown_payee {
        format!("{}/nobody", WALLETS[spec.payee].1.split('/').next()?)
    } else {
        WALLETS[spec.payee].1.to_owned()
    };
    if payer == payee {
        return None;
    }
    let (payer, payee) =
        (payer.parse::<corridor_schemas::Address>().ok()?, payee.parse::<corridor_schemas::Address>().ok()?);
    let (fixed_side, ledger) =
        if spec.fixed_receive { (FixedSide::Receive, &payee.ledger) } else { (FixedSide::Send, &payer.ledger) };
    let amount = Money::from_minor_units(spec.amount_cents, network.currency_of(ledger)?).ok()?;
    Some(PaymentInstruction {
        participant: ParticipantId::new(participant).ok()?,
        idempotency_key: IdempotencyKey::new(format!("key-{index}")).ok()?,
        payer,
        payee,
        amount,
        fixed_side,
        reference: String::new(),
        quote: None,
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: None,
    })
}

/// Counts journal writes and wakes the test when the `crash_at`-th one has been made: the crash
/// then lands wherever the payments in flight happen to be.
struct CrashingJournal {
    inner: Arc<dyn Journal>,
    writes: AtomicUsize,
    crash_at: usize,
    crash: Arc<Notify>,
}

impl CrashingJournal {
    fn count(&self) {
        if self.writes.fetch_add(1, Ordering::SeqCst) + 1 == self.crash_at {
            self.crash.notify_one();
        }
    }
}

#[async_trait::async_trait]
impl Journal for CrashingJournal {
    async fn begin(&self, payment: &wire::Payment) -> Result<(), StorageError> {
        let result = self.inner.begin(payment).await;
        self.count();
        result
    }

    async fn decide(&self, payment: PaymentId, proposed: Decision) -> Result<Decision, StorageError> {
        let result = self.inner.decide(payment, proposed).await;
        self.count();
        result
    }

    async fn finish(&self, payment: PaymentId) -> Result<(), StorageError> {
        let result = self.inner.finish(payment).await;
        self.count();
        result
    }

    async fn unfinished(&self) -> Result<Vec<JournalEntry>, StorageError> {
        self.inner.unfinished().await
    }

    async fn contains(&self, payment: PaymentId) -> Result<bool, StorageError> {
        self.inner.contains(payment).await
    }

    async fn take_over(&self, limit: usize) -> Result<Vec<JournalEntry>, StorageError> {
        self.inner.take_over(limit).await
    }

    async fn probe(&self) -> Result<(), StorageError> {
        self.inner.probe().await
    }

    async fn leads(&self) -> Result<bool, StorageError> {
        self.inner.leads().await
    }

    async fn release(&self) -> Result<(), StorageError> {
        self.inner.release().await
    }
}

async fn run_case(
    specs: Vec<PaymentSpec>,
    faults: Faults,
    crash_at: Option<usize>,
    seed: u64,
) -> Result<(), TestCaseError> {
    let config = Config::from_toml(NETWORK).unwrap();
    let mut network = Network::embedded(&config, "test").unwrap();
    for (index, handle) in network.ledgers.values_mut().enumerate() {
        let inner = Arc::clone(&handle.ledger);
        handle.ledger = Arc::new(FaultyLedger {
            inner,
            faults,
            rng: Mutex::new(StdRng::seed_from_u64(seed.wrapping_add(index as u64))),
            late_by: Duration::from_millis(200),
        });
    }
    let network = Arc::new(network);
    let data_dir = std::env::temp_dir().join(format!("corridor-invariants-{}-{seed}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let store = Arc::new(EmbeddedStore::open(&data_dir).unwrap());
    let crash = Arc::new(Notify::new());
    let journal = Arc::new(CrashingJournal {
        inner: store.clone(),
        writes: AtomicUsize::new(0),
        crash_at: crash_at.unwrap_or(usize::MAX),
        crash: Arc::clone(&crash),
    });
    let storage =
        Storage { journal, payments: store.clone(), keys: store.clone(), quotes: store.clone(), feed: store.clone() };
    let settings = || RouterSettings {
        prepare_timeout: Duration::from_millis(config.settlement.prepare_timeout_ms),
        // Enough that a decision is never left undelivered at these fault rates (0.3^20).
        decision_attempts_max: config.settlement.decision_attempts_max,
        in_flight_max: 1_024,
    };
    let router = Arc::new(Router::new(Arc::clone(&network), storage.clone(), settings(), Arc::new(SystemClock)));

    let mut submissions = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let Some(instruction) = instruction(index, spec, &network) else { continue };
        let copies = if spec.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let router = Arc::clone(&router);
            let instruction = instruction.clone();
            submissions.push(tokio::spawn(async move { router.submit(instruction).await }));
        }
    }
    let crashed = if crash_at.is_some() {
        // A crash: every payment in flight stops at whatever await it had reached, then a new
        // router over the same store and ledgers recovers.
        let all_done = async {
            while !submissions.iter().all(|submission| submission.is_finished()) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::select! {
            _ = crash.notified() => {
                for submission in &submissions {
                    submission.abort();
                }
                true
            }
            _ = all_done => false,
        }
    } else {
        false
    };
    let mut payment_by_key: HashMap<String, String> = HashMap::new();
    for submission in submissions {
        let Ok(receipt) = submission.await else { continue };
        let receipt = receipt.unwrap();
        let first = payment_by_key.entry(receipt.idempotency_key.clone()).or_insert(receipt.payment_id.clone());
        prop_assert_eq!(first, &receipt.payment_id, "key {} settled as two payments", receipt.idempotency_key);
    }
    let router = if crashed {
        drop(router);
        // Writes already handed to the store's writer thread before the crash still land (as
        // a real crash would find them in the file or not at all): one more write through the
        // same first-in-first-out writer waits for them, so the new router sees what it would
        // find on disk after a restart.
        store.decide(PaymentId::generate(), Decision::Abort).await.unwrap();
        let storage = Storage {
            journal: store.clone(),
            payments: store.clone(),
            keys: store.clone(),
            quotes: store.clone(),
            feed: store.clone(),
        };
        let recovered = Arc::new(Router::new(Arc::clone(&network), storage, settings(), Arc::new(SystemClock)));
        let report = recovery::recover(recovered.storage(), recovered.coordinator(), recovered.feed()).await.unwrap();
        prop_assert_eq!(report.redriving, 0, "a decision could not be delivered during recovery");
        recovered
    } else {
        router
    };

    // Atomicity and finality, from the ledgers themselves.
    let (receipts, _) = router.storage().payments.list(None, None, usize::MAX).await.unwrap();
    let mut expected_balances: HashMap<(String, String), i128> = HashMap::new();
    for participant in &config.participants {
        for account in &participant.accounts {
            let currency = config.ledger(&account.address.ledger).unwrap().currency;
            let opening = Money::from_decimal(account.opening_balance.unwrap(), currency).unwrap();
            expected_balances.insert(
                (account.address.ledger.to_string(), account.address.account.to_string()),
                opening.minor_units().into(),
            );
        }
    }
    for receipt in &receipts {
        let status = wire::PaymentStatus::try_from(receipt.status).unwrap();
        prop_assert!(
            status != wire::PaymentStatus::Pending,
            "payment {} is still pending: {:?}",
            receipt.payment_id,
            receipt.reason
        );
        let payment: PaymentId = receipt.payment_id.parse().unwrap();
        let mut committed = HashSet::new();
        for leg in &receipt.legs {
            let ledger_id = LedgerId::new(leg.ledger_id.clone()).unwrap();
            let ledger = &network.ledgers[&ledger_id].ledger;
            let state = ledger.status(payment.into()).await.unwrap();
            prop_assert!(state != TransactionState::Prepared, "payment {} left a hold on {}", payment, leg.ledger_id);
            if state == TransactionState::Committed {
                committed.insert(leg.ledger_id.clone());
                for posting in &leg.postings {
                    let currency = Currency::from_code(&posting.currency).unwrap();
                    let minor = parse_signed_minor_units(&posting.amount, currency).unwrap();
                    *expected_balances.entry((leg.ledger_id.clone(), posting.account.clone())).or_default() +=
                        i128::from(minor);
                }
            }
        }
        let settled = status == wire::PaymentStatus::Settled;
        let all = committed.len() == receipt.legs.len();
        prop_assert!(
            if settled { all } else { committed.is_empty() },
            "payment {} is {:?} but committed on {:?} of {} legs",
            payment,
            status,
            committed,
            receipt.legs.len()
        );
    }

    // Conservation, no overdraft, no hold; and the receipts explain every balance.
    for ledger in &network.embedded_ledgers {
        let audit = ledger.audit();
        prop_assert!(audit.is_sound(), "{:?}", audit);
        prop_assert_eq!(audit.held_minor, 0);
        let ledger_id = ledger.description().ledger.to_string();
        for (account, balance) in ledger.balances() {
            let expected = expected_balances.get(&(ledger_id.clone(), account.to_string())).copied().unwrap_or(0);
            prop_assert_eq!(expected, i128::from(balance), "{}/{} does not match its receipts", ledger_id, account);
        }
    }
    drop(router);
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}

fn faults() -> impl Strategy<Value = Faults> {
    prop_oneof![
        Just(Faults { fail_before_percent: 0, fail_after_percent: 0, late_vote_percent: 0 }),
        (0..15u32, 0..15u32, 0..10u32).prop_map(|(before, after, late)| Faults {
            fail_before_percent: before,
            fail_after_percent: after,
            late_vote_percent: late,
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_payment_mixes_under_faults_keep_every_invariant(
        specs in prop::collection::vec(payment_spec(), 1..40),
        faults in faults(),
        crash_at in prop::option::weighted(0.5, 1..60usize),
        seed in any::<u64>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        runtime.block_on(run_case(specs, faults, crash_at, seed))?;
    }
}
