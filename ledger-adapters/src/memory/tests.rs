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
