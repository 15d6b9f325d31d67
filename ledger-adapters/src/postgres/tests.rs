//! Tests of the PostgreSQL ledger against a real server: the in-memory ledger's tests replayed,
//! a differential property test against the in-memory ledger itself, and what only a database
//! ledger can get wrong: concurrent calls on separate connections, restarts, and constraints
//! that hold even when the code is bypassed.
//!
//! They need PostgreSQL at `CORRIDOR_TEST_POSTGRES_URL` (default: the local one `ops/services.sh`
//! starts). Each test uses a ledger id of its own, so the tests run in parallel in one database.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_schemas::{Jurisdiction, LedgerId, PaymentId};
use proptest::prelude::*;

use super::*;
use crate::InMemoryLedger;

const TEST_DATABASE_URL_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn database_url() -> String {
    std::env::var("CORRIDOR_TEST_POSTGRES_URL").unwrap_or_else(|_| TEST_DATABASE_URL_DEFAULT.to_owned())
}

fn hkd() -> Currency {
    Currency::from_code("HKD").unwrap()
}

fn account(name: &str) -> AccountName {
    AccountName::new(name).unwrap()
}

/// A ledger id no other test (or earlier run) uses: the random tail of a UUID v7.
fn unique_ledger_id() -> LedgerId {
    let uuid = PaymentId::generate().as_uuid().simple().to_string();
    LedgerId::new(format!("t-{}", &uuid[8..])).unwrap()
}

fn description(ledger: &LedgerId, currency: Currency) -> LedgerDescription {
    LedgerDescription { ledger: ledger.clone(), currency, jurisdiction: Jurisdiction::new("HK").unwrap() }
}

async fn connect(ledger: &LedgerId) -> PostgresLedger {
    let url = database_url();
    PostgresLedger::connect(&url, description(ledger, hkd())).await.unwrap_or_else(|error| {
        panic!("no PostgreSQL at {url} (set CORRIDOR_TEST_POSTGRES_URL, or run ops/services.sh): {error}")
    })
}

/// Like the in-memory tests' ledger: alice holds 100.00 HKD, bob has an empty account.
async fn ledger() -> PostgresLedger {
    let ledger = connect(&unique_ledger_id()).await;
    ledger.issue(account("alice"), 10_000).await.unwrap();
    ledger.open_account(account("bob")).await.unwrap();
    ledger
}

fn transfer(from: &str, to: &str, amount_minor: i64) -> Vec<Posting> {
    vec![
        Posting { account: account(from), currency: hkd(), amount_minor: -amount_minor },
        Posting { account: account(to), currency: hkd(), amount_minor },
    ]
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(5)
}

fn new_transaction() -> TransactionId {
    PaymentId::generate().into()
}

async fn available(ledger: &PostgresLedger, name: &str) -> i64 {
    ledger.balance(&account(name)).await.unwrap().available_minor()
}

async fn assert_sound(ledger: &PostgresLedger) -> LedgerAudit {
    let audit = ledger.audit().await.unwrap();
    assert!(audit.is_sound(), "{audit:?}");
    audit
}

#[tokio::test]
async fn prepare_holds_and_commit_posts() {
    let ledger = ledger().await;
    let tx = new_transaction();
    assert_eq!(ledger.prepare(tx, &transfer("alice", "bob", 4_000), deadline()).await, Ok(Vote::Yes));
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor, alice.available_minor()), (10_000, 4_000, 6_000));
    assert_eq!(ledger.status(tx).await, Ok(TransactionState::Prepared));
    let audit = assert_sound(&ledger).await;
    assert_eq!((audit.issued_minor, audit.held_minor, audit.prepared_debits_minor), (10_000, 4_000, 4_000));
    assert_eq!((audit.accounts, audit.prepared_transactions), (2, 1));

    ledger.commit(tx).await.unwrap();
    assert_eq!(ledger.status(tx).await, Ok(TransactionState::Committed));
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor), (6_000, 0));
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 4_000);
    let balances = ledger.balances().await.unwrap();
    assert_eq!(balances, HashMap::from([(account("alice"), 6_000), (account("bob"), 4_000)]));
    let audit = assert_sound(&ledger).await;
    assert_eq!((audit.balances_minor, audit.held_minor, audit.prepared_transactions), (10_000, 0, 0));
    assert_eq!(ledger.describe().await.unwrap(), *ledger.description());
}

#[tokio::test]
async fn holds_count_against_later_prepares() {
    let ledger = ledger().await;
    assert_eq!(ledger.prepare(new_transaction(), &transfer("alice", "bob", 7_000), deadline()).await, Ok(Vote::Yes));
    let refused = new_transaction();
    let vote = ledger.prepare(refused, &transfer("alice", "bob", 7_000), deadline()).await.unwrap();
    let Vote::No(refusal) = vote else { panic!("overdraft voted yes") };
    assert_eq!(refusal.code, RefusalCode::InsufficientFunds);
    assert_eq!(refusal.message, "account alice has 30.00 HKD available, needs 70.00");
    assert_eq!(available(&ledger, "alice").await, 3_000);
    assert_eq!(ledger.status(refused).await, Ok(TransactionState::Refused));
    assert_sound(&ledger).await;
}

#[tokio::test]
async fn abort_releases_holds_and_moves_nothing() {
    let ledger = ledger().await;
    let tx = new_transaction();
    ledger.prepare(tx, &transfer("alice", "bob", 10_000), deadline()).await.unwrap();
    assert_eq!(available(&ledger, "alice").await, 0);
    ledger.abort(tx).await.unwrap();
    assert_eq!(available(&ledger, "alice").await, 10_000);
    assert_eq!(ledger.balance(&account("alice")).await.unwrap().balance_minor, 10_000);
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 0);
    assert_eq!(ledger.status(tx).await, Ok(TransactionState::Aborted));
    assert_sound(&ledger).await;
}

#[tokio::test]
async fn every_call_is_idempotent() {
    let ledger = ledger().await;
    let tx = new_transaction();
    let postings = transfer("alice", "bob", 2_500);
    assert_eq!(ledger.prepare(tx, &postings, deadline()).await, Ok(Vote::Yes));
    assert_eq!(ledger.prepare(tx, &postings, deadline()).await, Ok(Vote::Yes));
    assert_eq!(available(&ledger, "alice").await, 7_500, "a repeated prepare held twice");
    ledger.commit(tx).await.unwrap();
    ledger.commit(tx).await.unwrap();
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 2_500, "a repeated commit posted twice");
    assert_eq!(ledger.prepare(tx, &postings, deadline()).await, Err(LedgerError::AlreadyCommitted(tx)));

    let aborted = new_transaction();
    ledger.prepare(aborted, &transfer("alice", "bob", 1_000), deadline()).await.unwrap();
    ledger.abort(aborted).await.unwrap();
    ledger.abort(aborted).await.unwrap();
    assert_eq!(available(&ledger, "alice").await, 7_500, "a repeated abort released twice");

    let refused = new_transaction();
    let too_much = transfer("alice", "bob", 1_000_000);
    let first = ledger.prepare(refused, &too_much, deadline()).await.unwrap();
    assert!(matches!(first, Vote::No(_)));
    assert_eq!(ledger.prepare(refused, &too_much, deadline()).await.unwrap(), first);
    ledger.abort(refused).await.unwrap();
    ledger.abort(refused).await.unwrap();
    assert_eq!(ledger.status(refused).await, Ok(TransactionState::Refused));

    ledger.open_account(account("bob")).await.unwrap();
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 2_500, "reopening emptied an account");
    assert_sound(&ledger).await;
}

#[tokio::test]
async fn decided_transactions_stay_decided() {
    let ledger = ledger().await;
    let committed = new_transaction();
    ledger.prepare(committed, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.commit(committed).await.unwrap();
    assert_eq!(ledger.abort(committed).await, Err(LedgerError::AlreadyCommitted(committed)));
    assert_eq!(ledger.status(committed).await, Ok(TransactionState::Committed));

    let aborted = new_transaction();
    ledger.prepare(aborted, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.abort(aborted).await.unwrap();
    assert_eq!(ledger.commit(aborted).await, Err(LedgerError::AlreadyAborted(aborted)));
    assert_eq!(
        ledger.prepare(aborted, &transfer("alice", "bob", 100), deadline()).await,
        Err(LedgerError::AlreadyAborted(aborted))
    );
    assert_eq!(ledger.status(aborted).await, Ok(TransactionState::Aborted));

    let refused = new_transaction();
    ledger.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await.unwrap();
    assert_eq!(ledger.commit(refused).await, Err(LedgerError::Refused(refused)));
    assert_eq!(ledger.status(refused).await, Ok(TransactionState::Refused));

    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 100);
    assert_sound(&ledger).await;
}

#[tokio::test]
async fn bad_requests_are_refused_and_change_nothing() {
    let ledger = ledger().await;
    let unknown = new_transaction();
    assert_eq!(ledger.commit(unknown).await, Err(LedgerError::UnknownTransaction(unknown)));
    assert_eq!(ledger.abort(unknown).await, Err(LedgerError::UnknownTransaction(unknown)));
    assert_eq!(ledger.status(unknown).await, Ok(TransactionState::Unknown), "a refused commit or abort left a record");

    let mut unbalanced = transfer("alice", "bob", 100);
    unbalanced[1].amount_minor = 99;
    let rejected = new_transaction();
    let error = ledger.prepare(rejected, &unbalanced, deadline()).await.unwrap_err();
    assert_eq!(error.to_string(), "invalid postings: postings sum to -1 minor units, not zero");
    assert_eq!(ledger.status(rejected).await, Ok(TransactionState::Unknown));

    let mut wrong_currency = transfer("alice", "bob", 100);
    for posting in &mut wrong_currency {
        posting.currency = Currency::from_code("CNY").unwrap();
    }
    let error = ledger.prepare(new_transaction(), &wrong_currency, deadline()).await.unwrap_err();
    assert!(error.to_string().contains("this ledger issues HKD"), "{error}");

    let tx = new_transaction();
    ledger.prepare(tx, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    assert_eq!(ledger.prepare(tx, &transfer("alice", "bob", 200), deadline()).await, Err(LedgerError::Conflict(tx)));
    let mut reordered = transfer("alice", "bob", 100);
    reordered.reverse();
    assert_eq!(ledger.prepare(tx, &reordered, deadline()).await, Err(LedgerError::Conflict(tx)));

    let to_carol = new_transaction();
    let vote = ledger.prepare(to_carol, &transfer("alice", "carol", 100), deadline()).await.unwrap();
    let expected = format!("account carol does not exist on ledger {}", ledger.description().ledger);
    assert_eq!(vote, Vote::No(Refusal { code: RefusalCode::UnknownAccount, message: expected }));
    assert_eq!(ledger.balance(&account("carol")).await, Err(LedgerError::UnknownAccount(account("carol"))));

    assert_eq!(
        ledger.issue(account("alice"), 0).await,
        Err(LedgerError::InvalidPostings("issuance of 0 minor units".into()))
    );
    assert_eq!(
        ledger.issue(account("alice"), i64::MAX).await,
        Err(LedgerError::InvalidPostings("issuance would overflow account alice".into()))
    );
    assert_eq!(available(&ledger, "alice").await, 9_900, "only the one good prepare holds");
    let audit = assert_sound(&ledger).await;
    assert_eq!((audit.issued_minor, audit.balances_minor), (10_000, 10_000), "a refused issuance counted");
}

#[tokio::test]
async fn in_doubt_lists_only_undecided_prepares_oldest_first() {
    let ledger = ledger().await;
    let (first, second, decided, refused) =
        (new_transaction(), new_transaction(), new_transaction(), new_transaction());
    ledger.prepare(first, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.prepare(second, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.prepare(decided, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    ledger.commit(decided).await.unwrap();
    ledger.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(1);
    assert_eq!(ledger.in_doubt(later, 10).await.unwrap(), [first, second]);
    assert_eq!(ledger.in_doubt(later, 1).await.unwrap(), [first]);
    assert!(ledger.in_doubt(later, 0).await.unwrap().is_empty());
    assert!(ledger.in_doubt(SystemTime::UNIX_EPOCH, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_prepare_past_its_deadline_votes_no_and_is_not_recorded() {
    let ledger = ledger().await;
    let passed = SystemTime::now() - Duration::from_secs(1);
    let late = new_transaction();
    let vote = ledger.prepare(late, &transfer("alice", "bob", 100), passed).await.unwrap();
    let Vote::No(refusal) = vote else { panic!("a late prepare voted yes") };
    assert_eq!(refusal.code, RefusalCode::DeadlinePassed);
    let expected_start = format!("the prepare reached ledger {} ", ledger.description().ledger);
    assert!(refusal.message.starts_with(&expected_start), "{}", refusal.message);
    assert!(refusal.message.ends_with(" ms after its deadline"), "{}", refusal.message);
    assert_eq!(available(&ledger, "alice").await, 10_000);
    assert_eq!(ledger.status(late).await, Ok(TransactionState::Unknown));
    assert_eq!(ledger.abort(late).await, Err(LedgerError::UnknownTransaction(late)));
    assert!(ledger.in_doubt(SystemTime::now() + Duration::from_secs(1), 10).await.unwrap().is_empty());

    // A repeat of a prepare the ledger already answered returns that answer, whatever the time.
    let prepared = new_transaction();
    assert_eq!(ledger.prepare(prepared, &transfer("alice", "bob", 100), deadline()).await, Ok(Vote::Yes));
    assert_eq!(ledger.prepare(prepared, &transfer("alice", "bob", 100), passed).await, Ok(Vote::Yes));
    let refused = new_transaction();
    let first = ledger.prepare(refused, &transfer("alice", "carol", 100), deadline()).await.unwrap();
    assert_eq!(ledger.prepare(refused, &transfer("alice", "carol", 100), passed).await, Ok(first));
    assert_eq!(available(&ledger, "alice").await, 9_900);
    assert_sound(&ledger).await;
}

/// 50 prepares of 30.00 race for 1000.00 on separate connections: exactly 33 fit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_prepares_never_overdraw() {
    const PREPARES: usize = 50;
    let ledger = Arc::new(connect(&unique_ledger_id()).await);
    ledger.issue(account("alice"), 100_000).await.unwrap();
    ledger.open_account(account("bob")).await.unwrap();

    let prepares: Vec<_> = (0..PREPARES)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                let tx = new_transaction();
                (tx, ledger.prepare(tx, &transfer("alice", "bob", 3_000), deadline()).await.unwrap())
            })
        })
        .collect();
    let (mut voted_yes, mut voted_no) = (Vec::new(), Vec::new());
    for prepare in prepares {
        match prepare.await.unwrap() {
            (tx, Vote::Yes) => voted_yes.push(tx),
            (tx, Vote::No(refusal)) => {
                assert_eq!(refusal.code, RefusalCode::InsufficientFunds, "{}", refusal.message);
                voted_no.push(tx);
            }
        }
    }
    assert!(ledger.pool.status().size > 1, "the prepares did not overlap on several connections");
    assert_eq!(voted_yes.len(), 33);
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor, alice.available_minor()), (100_000, 99_000, 1_000));
    let audit = assert_sound(&ledger).await;
    assert_eq!(audit.prepared_transactions, 33);

    let decisions: Vec<_> = voted_yes
        .iter()
        .map(|tx| (*tx, true))
        .chain(voted_no.iter().map(|tx| (*tx, false)))
        .map(|(tx, commit)| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move { if commit { ledger.commit(tx).await } else { ledger.abort(tx).await } })
        })
        .collect();
    for decision in decisions {
        decision.await.unwrap().unwrap();
    }
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor), (1_000, 0));
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 99_000);
    assert_eq!(assert_sound(&ledger).await.prepared_transactions, 0);
}

/// Duplicates of one prepare racing on separate connections: one claim wins, the rest get its
/// answer (the same postings) or a conflict (other postings), and only one hold is placed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_duplicate_prepares_hold_once() {
    let ledger = Arc::new(ledger().await);
    let tx = new_transaction();
    let prepares: Vec<_> = (0..20)
        .map(|index| {
            let ledger = Arc::clone(&ledger);
            let amount_minor = if index % 2 == 0 { 2_500 } else { 3_000 };
            tokio::spawn(async move {
                (amount_minor, ledger.prepare(tx, &transfer("alice", "bob", amount_minor), deadline()).await)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for prepare in prepares {
        answers.push(prepare.await.unwrap());
    }
    let winners: HashSet<i64> =
        answers.iter().filter(|(_, answer)| *answer == Ok(Vote::Yes)).map(|(amount_minor, _)| *amount_minor).collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    let winner = *winners.iter().next().unwrap();
    for (amount_minor, answer) in &answers {
        let expected = if *amount_minor == winner { Ok(Vote::Yes) } else { Err(LedgerError::Conflict(tx)) };
        assert_eq!(*answer, expected);
    }
    assert_eq!(available(&ledger, "alice").await, 10_000 - winner, "a duplicate prepare held twice");

    let commits: Vec<_> = (0..10)
        .map(|_| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move { ledger.commit(tx).await })
        })
        .collect();
    for commit in commits {
        commit.await.unwrap().unwrap();
    }
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, winner, "a duplicate commit posted twice");
    assert_sound(&ledger).await;
}

/// Transactions that debit the same accounts listed in opposite orders, and transfers both ways,
/// prepared and committed concurrently: locks are taken in one order, so none deadlocks (the
/// database would abort one of a deadlocked pair, which would surface here as `Unavailable`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_lock_orders_do_not_deadlock() {
    const TASKS: usize = 40;
    let ledger = Arc::new(connect(&unique_ledger_id()).await);
    ledger.issue(account("alice"), 100_000).await.unwrap();
    ledger.issue(account("bob"), 100_000).await.unwrap();
    ledger.open_account(account("carol")).await.unwrap();
    let both_pay_carol = |first: &str, second: &str| {
        vec![
            Posting { account: account(first), currency: hkd(), amount_minor: -100 },
            Posting { account: account(second), currency: hkd(), amount_minor: -100 },
            Posting { account: account("carol"), currency: hkd(), amount_minor: 200 },
        ]
    };
    let tasks: Vec<_> = (0..TASKS)
        .map(|index| {
            let ledger = Arc::clone(&ledger);
            let postings = match index % 4 {
                0 => both_pay_carol("alice", "bob"),
                1 => both_pay_carol("bob", "alice"),
                2 => transfer("alice", "bob", 100),
                _ => transfer("bob", "alice", 100),
            };
            tokio::spawn(async move {
                let tx = new_transaction();
                assert_eq!(ledger.prepare(tx, &postings, deadline()).await, Ok(Vote::Yes));
                ledger.commit(tx).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let balances = ledger.balances().await.unwrap();
    assert_eq!(balances[&account("carol")], 200 * 20);
    assert_eq!(balances[&account("alice")], 100_000 - 100 * 20);
    assert_eq!(balances[&account("bob")], 100_000 - 100 * 20);
    assert_sound(&ledger).await;
}

/// A restart is a new pool on the same ledger id: everything the ledger promised is still there.
#[tokio::test]
async fn state_survives_a_restart() {
    let ledger_id = unique_ledger_id();
    let (prepared, refused, committed, aborted) =
        (new_transaction(), new_transaction(), new_transaction(), new_transaction());
    let refusal = {
        let ledger = connect(&ledger_id).await;
        ledger.issue(account("alice"), 10_000).await.unwrap();
        ledger.open_account(account("bob")).await.unwrap();
        assert_eq!(ledger.prepare(prepared, &transfer("alice", "bob", 4_000), deadline()).await, Ok(Vote::Yes));
        ledger.prepare(committed, &transfer("alice", "bob", 1_000), deadline()).await.unwrap();
        ledger.commit(committed).await.unwrap();
        ledger.prepare(aborted, &transfer("alice", "bob", 1_000), deadline()).await.unwrap();
        ledger.abort(aborted).await.unwrap();
        let refusal = ledger.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await.unwrap();
        ledger.pool.close();
        refusal
    };

    let ledger = connect(&ledger_id).await;
    assert_eq!(ledger.status(prepared).await, Ok(TransactionState::Prepared));
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor), (9_000, 4_000));
    assert_eq!(ledger.in_doubt(SystemTime::now() + Duration::from_secs(1), 10).await.unwrap(), [prepared]);
    assert_eq!(ledger.prepare(prepared, &transfer("alice", "bob", 4_000), deadline()).await, Ok(Vote::Yes));
    assert_eq!(ledger.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await, Ok(refusal));
    assert_eq!(ledger.commit(aborted).await, Err(LedgerError::AlreadyAborted(aborted)));
    assert_eq!(ledger.abort(committed).await, Err(LedgerError::AlreadyCommitted(committed)));
    assert_eq!(available(&ledger, "alice").await, 5_000, "a resent prepare held again after the restart");

    ledger.commit(prepared).await.unwrap();
    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor), (5_000, 0));
    assert_eq!(ledger.balance(&account("bob")).await.unwrap().balance_minor, 5_000);
    let audit = assert_sound(&ledger).await;
    assert_eq!(audit.issued_minor, 10_000, "the issuance total did not survive");
}

/// Bypass the ledger code entirely: the schema's CHECK constraints still refuse any write that
/// would overdraw an account.
#[tokio::test]
async fn the_database_itself_refuses_an_overdraft() {
    let ledger = ledger().await;
    ledger.prepare(new_transaction(), &transfer("alice", "bob", 4_000), deadline()).await.unwrap();
    let ledger_id = ledger.description().ledger.as_str();
    let mut client = ledger.pool.get().await.unwrap();
    let overdrafts = [
        ("UPDATE corridor_ledger_accounts SET held_minor = balance_minor + 1", "available_not_negative"),
        ("UPDATE corridor_ledger_accounts SET balance_minor = balance_minor - 7000", "available_not_negative"),
        ("UPDATE corridor_ledger_accounts SET held_minor = -1, balance_minor = -1", "held_not_negative"),
    ];
    for (update, constraint) in overdrafts {
        let error = client
            .execute(&format!("{update} WHERE ledger_id = $1 AND account = 'alice'"), &[&ledger_id])
            .await
            .unwrap_err();
        let database_error = error.as_db_error().unwrap_or_else(|| panic!("{update}: {error}"));
        assert_eq!(database_error.code(), &SqlState::CHECK_VIOLATION, "{update}");
        assert_eq!(database_error.constraint(), Some(format!("corridor_ledger_accounts_{constraint}").as_str()));
    }
    // The same statements are otherwise valid: spending exactly what is available is allowed.
    let sql = client.transaction().await.unwrap();
    let spent = sql
        .execute(
            "UPDATE corridor_ledger_accounts SET balance_minor = held_minor WHERE ledger_id = $1 AND account = 'alice'",
            &[&ledger_id],
        )
        .await
        .unwrap();
    assert_eq!(spent, 1);
    sql.rollback().await.unwrap();

    let alice = ledger.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor), (10_000, 4_000));
    assert_sound(&ledger).await;
}

/// The router uses the payment id as the transaction id on every ledger of a payment, and
/// several ledgers may share a database: nothing may leak between them.
#[tokio::test]
async fn ledgers_sharing_a_database_are_separate() {
    let (one, other) = (ledger().await, connect(&unique_ledger_id()).await);
    other.open_account(account("alice")).await.unwrap();
    other.issue(account("bob"), 500).await.unwrap();
    let tx = new_transaction();
    assert_eq!(one.prepare(tx, &transfer("alice", "bob", 1_000), deadline()).await, Ok(Vote::Yes));
    assert_eq!(other.status(tx).await, Ok(TransactionState::Unknown));
    assert_eq!(other.prepare(tx, &transfer("bob", "alice", 500), deadline()).await, Ok(Vote::Yes));
    one.commit(tx).await.unwrap();
    assert_eq!(other.status(tx).await, Ok(TransactionState::Prepared));
    other.abort(tx).await.unwrap();
    assert_eq!(one.status(tx).await, Ok(TransactionState::Committed));
    assert_eq!(one.balances().await.unwrap(), HashMap::from([(account("alice"), 9_000), (account("bob"), 1_000)]));
    assert_eq!(other.balances().await.unwrap(), HashMap::from([(account("alice"), 0), (account("bob"), 500)]));
    assert_eq!(assert_sound(&one).await.issued_minor, 10_000);
    assert_eq!(assert_sound(&other).await.issued_minor, 500);
}

#[tokio::test]
async fn a_ledger_id_keeps_its_currency() {
    let ledger_id = unique_ledger_id();
    connect(&ledger_id).await;
    let cny = Currency::from_code("CNY").unwrap();
    let Err(LedgerError::Unavailable(message)) =
        PostgresLedger::connect(&database_url(), description(&ledger_id, cny)).await
    else {
        panic!("a ledger id was reused with another currency");
    };
    assert!(message.contains("with currency HKD, not CNY"), "{message}");
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable() {
    let nobody_listens = "postgres://postgres@127.0.0.1:1/postgres";
    let result = PostgresLedger::connect(nobody_listens, description(&unique_ledger_id(), hkd())).await;
    assert!(matches!(result, Err(LedgerError::Unavailable(_))), "{:?}", result.err());
    let result = PostgresLedger::connect("not a database url", description(&unique_ledger_id(), hkd())).await;
    assert!(matches!(result, Err(LedgerError::Unavailable(_))), "{:?}", result.err());
}

#[derive(Debug, Clone)]
enum Operation {
    Prepare {
        from: usize,
        to: usize,
        amount_minor: i64,
    },
    /// A new prepare that arrives after its deadline.
    LatePrepare {
        from: usize,
        to: usize,
        amount_minor: i64,
    },
    RepeatPrepare {
        index: usize,
        amount_minor: i64,
    },
    Commit(usize),
    Abort(usize),
    Issue {
        to: usize,
        amount_minor: i64,
    },
}

/// `erin` is never opened: prepares touching her are refused as unknown accounts.
const NAMES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (0..5usize, 0..5usize, 1..6_000i64)
            .prop_map(|(from, to, amount_minor)| Operation::Prepare { from, to, amount_minor }),
        1 => (0..5usize, 0..5usize, 1..6_000i64)
            .prop_map(|(from, to, amount_minor)| Operation::LatePrepare { from, to, amount_minor }),
        1 => (0..16usize, 1..6_000i64)
            .prop_map(|(index, amount_minor)| Operation::RepeatPrepare { index, amount_minor }),
        3 => (0..16usize).prop_map(Operation::Commit),
        2 => (0..16usize).prop_map(Operation::Abort),
        1 => (0..4usize, 1..5_000i64).prop_map(|(to, amount_minor)| Operation::Issue { to, amount_minor }),
    ]
}

/// Applies one operation to both ledgers and checks they answer alike.
async fn apply_to_both(
    operation: &Operation,
    memory: &InMemoryLedger,
    postgres: &PostgresLedger,
    transactions: &mut Vec<(TransactionId, Vec<Posting>)>,
) -> Result<(), TestCaseError> {
    match operation {
        Operation::Prepare { from, to, amount_minor } if from != to => {
            let (tx, postings) = (new_transaction(), transfer(NAMES[*from], NAMES[*to], *amount_minor));
            let expected = memory.prepare(tx, &postings, deadline()).await;
            prop_assert_eq!(postgres.prepare(tx, &postings, deadline()).await, expected);
            transactions.push((tx, postings));
        }
        Operation::LatePrepare { from, to, amount_minor } if from != to => {
            let (tx, postings) = (new_transaction(), transfer(NAMES[*from], NAMES[*to], *amount_minor));
            let passed = SystemTime::now() - Duration::from_millis(1);
            // The messages say how late each call was, which differs by a few milliseconds.
            let code_only = |vote: Vote| match vote {
                Vote::Yes => None,
                Vote::No(refusal) => Some(refusal.code),
            };
            let expected = memory.prepare(tx, &postings, passed).await.map(code_only);
            prop_assert_eq!(&expected, &Ok(Some(RefusalCode::DeadlinePassed)));
            prop_assert_eq!(postgres.prepare(tx, &postings, passed).await.map(code_only), expected);
            transactions.push((tx, postings));
        }
        Operation::Prepare { .. } | Operation::LatePrepare { .. } => {}
        Operation::RepeatPrepare { index, amount_minor } => {
            if let Some((tx, postings)) = transactions.get(*index) {
                // Half the repeats resend the same postings, half change the amount (a conflict).
                let postings = if amount_minor % 2 == 0 {
                    postings.clone()
                } else {
                    transfer(postings[0].account.as_str(), postings[1].account.as_str(), *amount_minor)
                };
                let expected = memory.prepare(*tx, &postings, deadline()).await;
                prop_assert_eq!(postgres.prepare(*tx, &postings, deadline()).await, expected);
            }
        }
        Operation::Commit(index) => {
            if let Some((tx, _)) = transactions.get(*index) {
                prop_assert_eq!(postgres.commit(*tx).await, memory.commit(*tx).await);
            }
        }
        Operation::Abort(index) => {
            if let Some((tx, _)) = transactions.get(*index) {
                prop_assert_eq!(postgres.abort(*tx).await, memory.abort(*tx).await);
            }
        }
        Operation::Issue { to, amount_minor } => {
            let expected = memory.issue(account(NAMES[*to]), *amount_minor);
            prop_assert_eq!(postgres.issue(account(NAMES[*to]), *amount_minor).await, expected);
        }
    }
    for (tx, _) in transactions.iter() {
        prop_assert_eq!(postgres.status(*tx).await, memory.status(*tx).await);
    }
    for name in &NAMES[..4] {
        prop_assert_eq!(postgres.balance(&account(name)).await, memory.balance(&account(name)).await);
    }
    let audit = postgres.audit().await.unwrap();
    prop_assert!(audit.is_sound(), "{:?}", audit);
    prop_assert_eq!(audit, memory.audit());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The in-memory ledger is the specification: any sequence of prepares (new, resent and
    /// conflicting), commits, aborts and issuance gets the same answers, states, balances and
    /// audit from the PostgreSQL ledger.
    #[test]
    fn the_postgres_ledger_answers_like_the_memory_ledger(operations in prop::collection::vec(operation(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let ledger_id = unique_ledger_id();
            let postgres = connect(&ledger_id).await;
            let memory = InMemoryLedger::new(description(&ledger_id, hkd()));
            for name in &NAMES[..4] {
                memory.open_account(account(name));
                postgres.open_account(account(name)).await.unwrap();
            }
            memory.issue(account("alice"), 10_000).unwrap();
            postgres.issue(account("alice"), 10_000).await.unwrap();
            let mut transactions = Vec::new();
            for operation in &operations {
                apply_to_both(operation, &memory, &postgres, &mut transactions).await?;
            }
            let later = SystemTime::now() + Duration::from_secs(1);
            prop_assert_eq!(postgres.in_doubt(later, 100).await.unwrap(), memory.in_doubt(later, 100).await.unwrap());
            prop_assert_eq!(postgres.balances().await.unwrap(), memory.balances());
            Ok(())
        })?;
    }
}
