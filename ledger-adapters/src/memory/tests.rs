use corridor_schemas::{Jurisdiction, LedgerId, PaymentId};
use proptest::prelude::*;

use super::*;

fn hkd() -> Currency {
    Currency::from_code("HKD").unwrap()
}

fn account(name: &str) -> AccountName {
    AccountName::new(name).unwrap()
}

fn ledger() -> InMemoryLedger {
    let ledger = InMemoryLedger::new(LedgerDescription {
        ledger: LedgerId::new("e-hkd").unwrap(),
        currency: hkd(),
        jurisdiction: Jurisdiction::new("HK").unwrap(),
    });
    ledger.issue(account("alice"), 10_000).unwrap();
    ledger.open_account(account("bob"));
    ledger
}

fn transfer(from: &str, to: &str, amount_minor: i64) -> Vec<Posting> {
    vec![
        Posting { account: account(from), currency: hkd(), amount_minor: -amount_minor },
        Posting { account: account(to), currency: hkd(), amount_minor },
    ]
}

fn deadline() -> std::time::SystemTime {
    std::time::SystemTime::now() + std::time::Duration::from_secs(5)
}

fn new_transaction() -> TransactionId {
    PaymentId::generate().into()
}

async fn available(ledger: &InMemoryLedger, name: &str) -> i64 {
    ledger.balance(&account(name)).await.unwrap().available_minor()
}

#[tokio::test]
async fn prepare_holds_and_commit_posts() {
    let ledger = ledger();
    let tx = new_transaction();
    assert_eq!(ledger.prepare(tx, &transfer("alice", "bob", 4_000), deadline()).await, Ok(Vote::Yes));
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor, alice.available_minor()), (10_000, 4_000, 6_000));
    assert_eq!(ledger.status(tx).await, Ok(TransactionState::Prepared));
    ledger.commit(tx).await.unwrap();
    assert_eq!(ledger.balance(&account("alice")).await.unwrap().balance_minor, 6_000);
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 4_000);
    assert!(ledger.audit().is_sound());
}

#[tokio::test]
async fn holds_count_against_later_prepares() {
    let ledger = ledger();
    assert_eq!(ledger.prepare(new_transaction(), &transfer("alice", "bob", 7_000), deadline()).await, Ok(Vote::Yes));
    let vote = ledger.prepare(new_transaction(), &transfer("alice", "bob", 7_000), deadline()).await.unwrap();
    let Vote::No(refusal) = vote else { panic!("overdraft voted yes") };
    assert_eq!(refusal.code, RefusalCode::InsufficientFunds);
    assert_eq!(refusal.message, "account alice has 30.00 HKD available, needs 70.00");
    assert_eq!(available(&ledger, "alice").await, 3_000);
}

#[tokio::test]
async fn abort_releases_holds_and_moves_nothing() {
    let ledger = ledger();
    let tx = new_transaction();
    ledger.prepare(tx, &transfer("alice", "bob", 10_000), deadline()).await.unwrap();
    ledger.abort(tx).await.unwrap();
    assert_eq!(available(&ledger, "alice").await, 10_000);
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 0);
    assert_eq!(ledger.status(tx).await, Ok(TransactionState::Aborted));
}

#[tokio::test]
async fn every_call_is_idempotent() {
    let ledger = ledger();
    let tx = new_transaction();
    let postings = transfer("alice", "bob", 2_500);
    assert_eq!(ledger.prepare(tx, &postings, deadline()).await, Ok(Vote::Yes));
    assert_eq!(ledger.prepare(tx, &postings, deadline()).await, Ok(Vote::Yes));
    assert_eq!(available(&ledger, "alice").await, 7_500, "a repeated prepare held twice");
    ledger.commit(tx).await.unwrap();
    ledger.commit(tx).await.unwrap();
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 2_500, "a repeated commit posted twice");

    let refused = new_transaction();
    let too_much = transfer("alice", "bob", 1_000_000);
    let first = ledger.prepare(refused, &too_much, deadline()).await.unwrap();
    assert!(matches!(first, Vote::No(_)));
    assert_eq!(ledger.prepare(refused, &too_much, deadline()).await.unwrap(), first);
    ledger.abort(refused).await.unwrap();
    ledger.abort(refused).await.unwrap();
}

#[tokio::test]
async fn decided_transactions_stay_decided() {
    let ledger = ledger();
    let committed = new_transaction();
    ledger.prepare(committed, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.commit(committed).await.unwrap();
    assert_eq!(ledger.abort(committed).await, Err(LedgerError::AlreadyCommitted(committed)));

    let aborted = new_transaction();
    ledger.prepare(aborted, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.abort(aborted).await.unwrap();
    assert_eq!(ledger.commit(aborted).await, Err(LedgerError::AlreadyAborted(aborted)));
    assert_eq!(
        ledger.prepare(aborted, &transfer("alice", "bob", 100), deadline()).await,
        Err(LedgerError::AlreadyAborted(aborted))
    );
}

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let ledger = ledger();
    let unknown = new_transaction();
    assert_eq!(ledger.commit(unknown).await, Err(LedgerError::UnknownTransaction(unknown)));
    assert_eq!(ledger.abort(unknown).await, Err(LedgerError::UnknownTransaction(unknown)));

    let mut unbalanced = transfer("alice", "bob", 100);
    unbalanced[1].amount_minor = 99;
    let error = ledger.prepare(new_transaction(), &unbalanced, deadline()).await.unwrap_err();
    assert_eq!(error.to_string(), "invalid postings: postings sum to -1 minor units, not zero");

    let mut wrong_currency = transfer("alice", "bob", 100);
    for posting in &mut wrong_currency {
        posting.currency = Currency::from_code("CNY").unwrap();
    }
    let error = ledger.prepare(new_transaction(), &wrong_currency, deadline()).await.unwrap_err();
    assert!(error.to_string().contains("this ledger issues HKD"), "{error}");

    let tx = new_transaction();
    ledger.prepare(tx, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    assert_eq!(ledger.prepare(tx, &transfer("alice", "bob", 200), deadline()).await, Err(LedgerError::Conflict(tx)));

    let vote = ledger.prepare(new_transaction(), &transfer("alice", "carol", 100), deadline()).await.unwrap();
    assert!(matches!(vote, Vote::No(Refusal { code: RefusalCode::UnknownAccount, .. })));
    assert_eq!(available(&ledger, "alice").await, 9_900, "only the one good prepare holds");
    assert!(ledger.audit().is_sound());
}

#[derive(Debug, Clone)]
enum Operation {
    Prepare { from: usize, to: usize, amount_minor: i64 },
    Commit(usize),
    Abort(usize),
    Issue { to: usize, amount_minor: i64 },
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (0..4usize, 0..4usize, 1..6_000i64).prop_map(|(from, to, amount_minor)| Operation::Prepare { from, to, amount_minor }),
        3 => (0..64usize).prop_map(Operation::Commit),
        2 => (0..64usize).prop_map(Operation::Abort),
        1 => (0..4usize, 1..5_000i64).prop_map(|(to, amount_minor)| Operation::Issue { to, amount_minor }),
    ]
}

proptest! {
    /// Any interleaving of prepares, commits, aborts and issuance keeps the ledger conserved,
    /// never lets an available balance go negative, and keeps holds equal to undecided debits.
    #[test]
    fn random_operations_keep_the_ledger_sound(operations in prop::collection::vec(operation(), 1..120)) {
        let names = ["alice", "bob", "carol", "dave"];
        let ledger = ledger();
        for name in names {
            ledger.open_account(account(name));
        }
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let mut transactions: Vec<TransactionId> = Vec::new();
        for operation in operations {
            runtime.block_on(async {
                match operation {
                    Operation::Prepare { from, to, amount_minor } if from != to => {
                        let tx = new_transaction();
                        transactions.push(tx);
                        ledger.prepare(tx, &transfer(names[from], names[to], amount_minor), deadline()).await.unwrap();
                    }
                    Operation::Prepare { .. } => {}
                    Operation::Commit(index) => {
                        if let Some(tx) = transactions.get(index) {
                            let _refused_or_decided = ledger.commit(*tx).await;
                        }
                    }
                    Operation::Abort(index) => {
                        if let Some(tx) = transactions.get(index) {
                            let _decided = ledger.abort(*tx).await;
                        }
                    }
                    Operation::Issue { to, amount_minor } => ledger.issue(account(names[to]), amount_minor).unwrap(),
                }
            });
            let audit = ledger.audit();
            prop_assert!(audit.is_sound(), "{audit:?}");
        }
    }
}

#[tokio::test]
async fn in_doubt_lists_only_undecided_prepares_oldest_first() {
    let ledger = ledger();
    let (first, second, decided) = (new_transaction(), new_transaction(), new_transaction());
    ledger.prepare(first, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.prepare(second, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.prepare(decided, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.commit(decided).await.unwrap();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(1);
    assert_eq!(ledger.in_doubt(later, 10).await.unwrap(), [first, second]);
    assert_eq!(ledger.in_doubt(later, 1).await.unwrap(), [first]);
    assert!(ledger.in_doubt(std::time::SystemTime::UNIX_EPOCH, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_prepare_past_its_deadline_votes_no_and_is_not_recorded() {
    let ledger = ledger();
    let late = new_transaction();
    let passed = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let vote = ledger.prepare(late, &transfer("alice", "bob", 100), passed).await.unwrap();
    assert!(matches!(vote, Vote::No(Refusal { code: RefusalCode::DeadlinePassed, .. })), "{vote:?}");
    assert_eq!(ledger.status(late).await, Ok(TransactionState::Unknown));
    assert_eq!(available(&ledger, "alice").await, 10_000);

    // A repeat of a prepare the ledger already answered returns that answer, whatever the time.
    let prepared = new_transaction();
    ledger.prepare(prepared, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    assert_eq!(ledger.prepare(prepared, &transfer("alice", "bob", 100), passed).await, Ok(Vote::Yes));
}

// The durable ledger: an operation log replayed at open.

/// A file path under the system's temporary directory, removed when dropped.
struct ScratchFile(std::path::PathBuf);

impl ScratchFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("corridor-ledger-log-{}-{}", std::process::id(), PaymentId::generate())))
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _already_gone = std::fs::remove_file(&self.0);
    }
}

fn hkd_description() -> LedgerDescription {
    LedgerDescription {
        ledger: LedgerId::new("e-hkd").unwrap(),
        currency: hkd(),
        jurisdiction: Jurisdiction::new("HK").unwrap(),
    }
}

fn opening() -> Vec<(AccountName, i64)> {
    vec![(account("alice"), 10_000), (account("bob"), 0)]
}

async fn open(file: &ScratchFile) -> InMemoryLedger {
    InMemoryLedger::open_durable(&file.0, hkd_description(), &opening()).await.unwrap()
}

#[tokio::test]
async fn a_durable_ledger_replays_to_the_state_it_had() {
    let file = ScratchFile::new();
    let ledger = open(&file).await;
    let summary = ledger.replay_summary().unwrap().clone();
    assert!(summary.created);
    assert_eq!((summary.records_replayed, summary.torn_tail_bytes), (1, 0));

    let (committed, aborted, held, refused) =
        (new_transaction(), new_transaction(), new_transaction(), new_transaction());
    ledger.prepare(committed, &transfer("alice", "bob", 1_000), deadline()).await.unwrap();
    ledger.commit(committed).await.unwrap();
    ledger.prepare(aborted, &transfer("alice", "bob", 2_000), deadline()).await.unwrap();
    ledger.abort(aborted).await.unwrap();
    ledger.prepare(held, &transfer("alice", "bob", 3_000), deadline()).await.unwrap();
    let refusal = ledger.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await.unwrap();
    ledger.issue(account("carol"), 500).unwrap();
    ledger.open_account(account("dave"));
    ledger.sync().await.unwrap();
    let balances = ledger.balances();
    let audit = ledger.audit();
    let in_doubt = ledger.in_doubt(std::time::SystemTime::now(), 10).await.unwrap();
    drop(ledger);

    // Opening balances only apply to a new ledger: an existing log ignores them.
    let reopened = InMemoryLedger::open_durable(&file.0, hkd_description(), &[(account("alice"), 1)]).await.unwrap();
    let summary = reopened.replay_summary().unwrap();
    assert!(!summary.created);
    assert_eq!(summary.records_replayed, 9, "{summary:?}");
    assert_eq!(reopened.balances(), balances);
    assert_eq!(reopened.audit(), audit);
    assert!(reopened.audit().is_sound());
    assert_eq!(reopened.in_doubt(std::time::SystemTime::now(), 10).await.unwrap(), in_doubt);
    assert_eq!(in_doubt, [held]);
    assert_eq!(reopened.status(committed).await, Ok(TransactionState::Committed));
    assert_eq!(reopened.status(aborted).await, Ok(TransactionState::Aborted));
    assert_eq!(reopened.status(held).await, Ok(TransactionState::Prepared));
    assert_eq!(reopened.status(refused).await, Ok(TransactionState::Refused));
    // Repeats after the restart return the first answers.
    assert_eq!(reopened.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await.unwrap(), refusal);
    assert_eq!(reopened.prepare(held, &transfer("alice", "bob", 3_000), deadline()).await, Ok(Vote::Yes));
    reopened.commit(held).await.unwrap();
    assert_eq!(available(&reopened, "alice").await, 10_000 - 1_000 - 3_000);
}

#[tokio::test]
async fn concurrent_calls_share_one_write_and_fsync() {
    let file = ScratchFile::new();
    let ledger = std::sync::Arc::new(open(&file).await);
    let syncs_before = ledger.log_syncs().unwrap();
    let prepares = 200;
    let tasks: Vec<_> = (0..prepares)
        .map(|_| {
            let ledger = std::sync::Arc::clone(&ledger);
            tokio::spawn(
                async move { ledger.prepare(new_transaction(), &transfer("alice", "bob", 10), deadline()).await },
            )
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Ok(Vote::Yes));
    }
    let syncs = ledger.log_syncs().unwrap() - syncs_before;
    assert!(syncs < prepares, "{prepares} prepares took {syncs} fsyncs: no group commit");
    drop(ledger);
    let reopened = open(&file).await;
    assert_eq!(reopened.audit().prepared_transactions, 200);
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_the_log_goes_on() {
    let file = ScratchFile::new();
    let ledger = open(&file).await;
    let kept = new_transaction();
    ledger.prepare(kept, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    drop(ledger);
    let good_length = std::fs::metadata(&file.0).unwrap().len();

    // A crash mid-append: a record's header and part of its payload, or zeros the file system
    // allocated but never filled.
    let whole = std::fs::read(&file.0).unwrap();
    for tail in [whole[..12].to_vec(), vec![0u8; 40], whole[..5].to_vec()] {
        let mut torn = whole.clone();
        torn.extend_from_slice(&tail);
        std::fs::write(&file.0, &torn).unwrap();
        let ledger = open(&file).await;
        assert_eq!(ledger.replay_summary().unwrap().torn_tail_bytes, u64::try_from(tail.len()).unwrap());
        assert_eq!(ledger.status(kept).await, Ok(TransactionState::Prepared));
        drop(ledger);
        assert_eq!(std::fs::metadata(&file.0).unwrap().len(), good_length, "the torn tail was not cut off");
    }

    // A last record whose checksum fails is torn too; appending after the cut works.
    let mut damaged = whole.clone();
    let last = damaged.len() - 2;
    damaged[last] ^= 0xff;
    std::fs::write(&file.0, &damaged).unwrap();
    let ledger = open(&file).await;
    assert_eq!(ledger.status(kept).await, Ok(TransactionState::Unknown), "the damaged last record was replayed");
    let after = new_transaction();
    ledger.prepare(after, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    drop(ledger);
    assert_eq!(open(&file).await.status(after).await, Ok(TransactionState::Prepared));
}

#[tokio::test]
async fn damage_before_the_last_record_is_corruption() {
    let file = ScratchFile::new();
    let ledger = open(&file).await;
    ledger.prepare(new_transaction(), &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.prepare(new_transaction(), &transfer("alice", "bob", 100), deadline()).await.unwrap();
    drop(ledger);
    let mut bytes = std::fs::read(&file.0).unwrap();
    // Inside the opening record's payload (its header is 8 bytes).
    bytes[20] ^= 0xff;
    std::fs::write(&file.0, &bytes).unwrap();
    let error = InMemoryLedger::open_durable(&file.0, hkd_description(), &opening()).await.err().unwrap();
    assert!(matches!(error, LedgerLogError::Corrupt { offset: 0, .. }), "{error}");
}

#[tokio::test]
async fn a_log_of_another_ledger_or_in_use_is_refused() {
    let file = ScratchFile::new();
    let ledger = open(&file).await;
    let in_use = InMemoryLedger::open_durable(&file.0, hkd_description(), &opening()).await.err().unwrap();
    assert!(matches!(in_use, LedgerLogError::InUse { .. }), "{in_use}");
    drop(ledger);

    let cny = LedgerDescription {
        ledger: LedgerId::new("e-cny").unwrap(),
        currency: Currency::from_code("CNY").unwrap(),
        jurisdiction: Jurisdiction::new("CN").unwrap(),
    };
    let error = InMemoryLedger::open_durable(&file.0, cny, &[]).await.err().unwrap();
    assert_eq!(error.to_string(), format!("{} holds ledger e-hkd (HKD, HK), not e-cny (CNY, CN)", file.0.display()));
}

#[tokio::test]
async fn bad_opening_balances_are_refused_before_anything_is_written() {
    let file = ScratchFile::new();
    for opening in [vec![(account("alice"), -1)], vec![(account("alice"), 1), (account("alice"), 2)]] {
        let error = InMemoryLedger::open_durable(&file.0, hkd_description(), &opening).await.err().unwrap();
        assert!(matches!(error, LedgerLogError::OpeningBalances(_)), "{error}");
    }
    assert!(!file.0.exists());
}

#[test]
fn the_checksum_is_crc_32() {
    assert_eq!(super::log::crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(super::log::crc32(b""), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever a durable ledger did, reopening its log gives back the same ledger.
    #[test]
    fn replay_reproduces_any_sequence_of_operations(operations in prop::collection::vec(operation(), 1..60)) {
        let names = ["alice", "bob", "carol", "dave"];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let file = ScratchFile::new();
        let (balances, audit, states) = runtime.block_on(async {
            let opening: Vec<(AccountName, i64)> =
                names.iter().zip([10_000, 5_000, 0, 0]).map(|(name, amount)| (account(name), amount)).collect();
            let ledger = InMemoryLedger::open_durable(&file.0, hkd_description(), &opening).await.unwrap();
            let mut transactions: Vec<TransactionId> = Vec::new();
            for operation in operations {
                match operation {
                    Operation::Prepare { from, to, amount_minor } if from != to => {
                        let tx = new_transaction();
                        transactions.push(tx);
                        ledger.prepare(tx, &transfer(names[from], names[to], amount_minor), deadline()).await.unwrap();
                    }
                    Operation::Prepare { .. } => {}
                    Operation::Commit(index) => {
                        if let Some(tx) = transactions.get(index) {
                            let _refused_or_decided = ledger.commit(*tx).await;
                        }
                    }
                    Operation::Abort(index) => {
                        if let Some(tx) = transactions.get(index) {
                            let _decided = ledger.abort(*tx).await;
                        }
                    }
                    Operation::Issue { to, amount_minor } => ledger.issue(account(names[to]), amount_minor).unwrap(),
                }
            }
            ledger.sync().await.unwrap();
            let mut states = Vec::new();
            for tx in &transactions {
                states.push((*tx, ledger.status(*tx).await.unwrap()));
            }
            (ledger.balances(), ledger.audit(), states)
        });
        let reopened = runtime.block_on(InMemoryLedger::open_durable(&file.0, hkd_description(), &[])).unwrap();
        prop_assert_eq!(reopened.balances(), balances);
        prop_assert_eq!(reopened.audit(), audit);
        for (tx, state) in states {
            prop_assert_eq!(runtime.block_on(reopened.status(tx)).unwrap(), state);
        }
    }
}

/// Decided transactions are forgotten after the retention, so memory stays flat under a steady
/// load; prepared ones never are. Afterwards a repeated commit is acknowledged, a repeated
/// prepare (long past its deadline) is refused without being recorded, and balances are unmoved.
#[tokio::test]
async fn decided_transactions_are_forgotten_after_the_retention_and_prepared_ones_never() {
    let ledger = ledger();
    let committed = new_transaction();
    let aborted = new_transaction();
    let refused = new_transaction();
    let prepared = new_transaction();
    ledger.prepare(committed, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.commit(committed).await.unwrap();
    ledger.prepare(aborted, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.abort(aborted).await.unwrap();
    assert!(matches!(ledger.prepare(refused, &transfer("bob", "alice", 1_000_000), deadline()).await, Ok(Vote::No(_))));
    ledger.prepare(prepared, &transfer("alice", "bob", 100), deadline()).await.unwrap();

    let later = SystemTime::now() + DECIDED_RETENTION - Duration::from_secs(1);
    ledger.lock().forget_decided(later);
    assert_eq!(ledger.lock().transactions.len(), 4, "forgotten before the retention ended");
    let after = SystemTime::now() + DECIDED_RETENTION + Duration::from_secs(1);
    ledger.lock().forget_decided(after);
    assert_eq!(ledger.lock().transactions.keys().copied().collect::<Vec<_>>(), [prepared]);

    let before = ledger.audit();
    assert_eq!(ledger.commit(committed).await, Ok(()), "a repeated commit of a forgotten transaction");
    assert_eq!(ledger.status(committed).await, Ok(TransactionState::Unknown));
    let late = SystemTime::now() - Duration::from_secs(1);
    assert!(matches!(
        ledger.prepare(committed, &transfer("alice", "bob", 100), late).await,
        Ok(Vote::No(Refusal { code: RefusalCode::DeadlinePassed, .. }))
    ));
    assert_eq!(ledger.abort(aborted).await, Err(LedgerError::UnknownTransaction(aborted)));
    assert_eq!(ledger.audit(), before);
    assert_eq!(ledger.audit().prepared_transactions, 1);
    // A transaction made after the newest forgotten one (ids carry milliseconds) is unknown.
    tokio::time::sleep(Duration::from_millis(2)).await;
    let fresh = new_transaction();
    assert_eq!(ledger.commit(fresh).await, Err(LedgerError::UnknownTransaction(fresh)));
    ledger.commit(prepared).await.unwrap();
    assert!(ledger.audit().is_sound());
}

fn description_of(id: &str, currency: &str, jurisdiction: &str) -> LedgerDescription {
    LedgerDescription {
        ledger: LedgerId::new(id).unwrap(),
        currency: Currency::from_code(currency).unwrap(),
        jurisdiction: Jurisdiction::new(jurisdiction).unwrap(),
    }
}

/// Ledgers sharing one log: each replays to its own state, one writer makes them all durable
/// (fewer fsyncs than records), a ledger added later is created in the same file, and a file
/// holding a ledger that is not opened on it is refused.
#[tokio::test]
async fn ledgers_sharing_one_log_replay_each_to_its_own_state() {
    let file = ScratchFile::new();
    let hkd = || (hkd_description(), opening());
    let cny = || (description_of("e-cny", "CNY", "CN"), vec![(account("alice"), 7_000), (account("bob"), 0)]);
    let ledgers = InMemoryLedger::open_durable_group(&file.0, vec![hkd(), cny()]).await.unwrap();
    assert!(ledgers.iter().all(|ledger| ledger.replay_summary().unwrap().created));
    let cny_transfer = |amount_minor: i64| {
        let cny = Currency::from_code("CNY").unwrap();
        vec![
            Posting { account: account("alice"), currency: cny, amount_minor: -amount_minor },
            Posting { account: account("bob"), currency: cny, amount_minor },
        ]
    };
    for index in 0..20 {
        let (hk, cn) = (new_transaction(), new_transaction());
        ledgers[0].prepare(hk, &transfer("alice", "bob", 10 + index), deadline()).await.unwrap();
        ledgers[1].prepare(cn, &cny_transfer(5 + index), deadline()).await.unwrap();
        if index % 2 == 0 {
            ledgers[0].commit(hk).await.unwrap();
            ledgers[1].commit(cn).await.unwrap();
        } else {
            ledgers[0].abort(hk).await.unwrap();
        }
    }
    let before: Vec<_> = ledgers.iter().map(|ledger| (ledger.balances(), ledger.audit())).collect();
    assert_eq!(ledgers[0].log_syncs(), ledgers[1].log_syncs(), "one writer for both");
    drop(ledgers);

    let thb = || (description_of("e-thb", "THB", "TH"), vec![(account("somchai"), 100)]);
    let reopened = InMemoryLedger::open_durable_group(&file.0, vec![hkd(), cny(), thb()]).await.unwrap();
    let after: Vec<_> = reopened.iter().take(2).map(|ledger| (ledger.balances(), ledger.audit())).collect();
    assert_eq!(after, before);
    assert!(!reopened[0].replay_summary().unwrap().created);
    assert!(reopened[2].replay_summary().unwrap().created, "a ledger new to the file is created in it");
    assert_eq!(reopened[2].balance(&account("somchai")).await.unwrap().balance_minor, 100);
    assert_eq!(reopened[1].audit().prepared_transactions, 10, "the aborted HKD legs' CNY legs stay prepared");
    assert!(reopened.iter().all(|ledger| ledger.audit().is_sound()));
    drop(reopened);

    let error = InMemoryLedger::open_durable_group(&file.0, vec![hkd()]).await.err().unwrap();
    assert!(error.to_string().contains("holds ledger `e-cny`, which is not among the ledgers opened on it"), "{error}");
    // A shared log is not a single ledger's log, and the other way round.
    assert!(InMemoryLedger::open_durable(&file.0, hkd_description(), &opening()).await.is_err());
}
