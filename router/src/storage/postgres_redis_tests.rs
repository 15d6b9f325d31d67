//! The storage contract against PostgreSQL and Redis. The test command (ops/test.sh) starts both;
//! the URLs come from CORRIDOR_TEST_POSTGRES_URL and CORRIDOR_TEST_REDIS_URL, defaulting to the
//! local servers. Each test gets its own database, so runs never see each other's rows.

use std::sync::Arc;

use corridor_compliance::velocity::VelocityCounter;
use tokio_postgres::NoTls;

use super::contract_tests;
use super::postgres::PostgresStore;
use super::redis_keys::RedisKeyStore;
use super::redis_quotes::RedisQuoteStore;
use super::redis_velocity::RedisVelocityCounter;
use super::{FeedStore, Journal, PaymentStore, QuoteStore};

fn postgres_url() -> String {
    std::env::var("CORRIDOR_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn redis_url() -> String {
    std::env::var("CORRIDOR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Creates an empty database for one test and returns its URL.
async fn fresh_database(name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    let database = format!("corridor_test_{name}_{}", uuid::Uuid::now_v7().simple());
    client.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let base = postgres_url();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{database}")
}

#[tokio::test]
async fn postgres_journal_meets_the_contract_across_reconnecting() {
    let url = fresh_database("journal").await;
    let journal: Arc<dyn Journal> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let reopen_url = url.clone();
    contract_tests::journal_contract(journal, async move {
        Arc::new(PostgresStore::connect(&reopen_url).await.unwrap()) as Arc<dyn Journal>
    })
    .await;
}

#[tokio::test]
async fn postgres_payments_meet_the_contract() {
    let url = fresh_database("payments").await;
    let store: Arc<dyn PaymentStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    contract_tests::payments_contract(store).await;
}

#[tokio::test]
async fn redis_keys_meet_the_contract() {
    contract_tests::keys_contract(Arc::new(RedisKeyStore::connect(&redis_url()).await.unwrap())).await;
}

#[tokio::test]
async fn redis_quotes_meet_the_contract_across_reconnecting() {
    let quotes: Arc<dyn QuoteStore> = Arc::new(RedisQuoteStore::connect(&redis_url()).await.unwrap());
    contract_tests::quote_contract(quotes, async {
        Arc::new(RedisQuoteStore::connect(&redis_url()).await.unwrap()) as Arc<dyn QuoteStore>
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_velocity_counters_meet_the_contract_across_reconnecting() {
    let counter: Arc<dyn VelocityCounter> = Arc::new(RedisVelocityCounter::connect(&redis_url()).await.unwrap());
    contract_tests::velocity_contract(counter, async {
        Arc::new(RedisVelocityCounter::connect(&redis_url()).await.unwrap()) as Arc<dyn VelocityCounter>
    })
    .await;
}

/// Several replicas share the counters: 32 payments spread over four connections (as four routers
/// would hold) against a count limit of 10, exactly 10 pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_velocity_counters_are_shared_by_replicas() {
    use corridor_compliance::velocity::system_clock;
    use corridor_compliance::{ComplianceHook, Decision, Subject, VelocityHook, VelocityLimit, VelocityScope};
    use corridor_schemas::{Address, Currency, Jurisdiction, Money, ParticipantId, PaymentId};

    let hkd = Currency::from_code("HKD").unwrap();
    let limit =
        VelocityLimit::new(VelocityScope::Wallet, hkd, std::time::Duration::from_secs(60), None, Some(10)).unwrap();
    let mut replicas = Vec::new();
    for _ in 0..4 {
        let counter: Arc<dyn VelocityCounter> = Arc::new(RedisVelocityCounter::connect(&redis_url()).await.unwrap());
        replicas.push(Arc::new(VelocityHook::new(limit.clone(), counter, system_clock())));
    }
    let payer: Address = format!("e-hkd/{}", PaymentId::generate()).parse().unwrap();
    let mut attempts = Vec::new();
    for index in 0..32 {
        let (hook, payer) = (Arc::clone(&replicas[index % replicas.len()]), payer.clone());
        attempts.push(tokio::spawn(async move {
            let participant = ParticipantId::new("bank-hk").unwrap();
            let jurisdictions = [Jurisdiction::new("HK").unwrap()];
            let amounts = [Money::parse("1.00", hkd).unwrap()];
            let subject = Subject {
                payment: PaymentId::generate(),
                participant: &participant,
                payer: &payer,
                payee: &payer,
                amounts: &amounts,
                jurisdictions: &jurisdictions,
                originator: None,
                beneficiary: None,
            };
            hook.check(&jurisdictions[0], &subject).await
        }));
    }
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == Decision::Allow {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10, "{allowed} of 32 payments through four replicas passed a count limit of 10");
}

#[tokio::test]
async fn postgres_feed_meets_the_contract_across_reconnecting() {
    let url = fresh_database("feed").await;
    let feed: Arc<dyn FeedStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let reopen_url = url.clone();
    contract_tests::feed_contract(feed, async move {
        Arc::new(PostgresStore::connect(&reopen_url).await.unwrap()) as Arc<dyn FeedStore>
    })
    .await;
}

#[tokio::test]
async fn postgres_feed_appends_from_one_router_never_fork() {
    let url = fresh_database("feed_race").await;
    let feed: Arc<dyn FeedStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    contract_tests::feed_race_contract(vec![feed]).await;
}

/// Two stores with their own connection pools, as two router replicas sharing the database.
#[tokio::test]
async fn postgres_feed_appends_from_two_routers_never_fork() {
    let url = fresh_database("feed_replicas").await;
    let first: Arc<dyn FeedStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let second: Arc<dyn FeedStore> = Arc::new(PostgresStore::connect(&url).await.unwrap());
    contract_tests::feed_race_contract(vec![first, second]).await;
}

#[tokio::test]
async fn postgres_checkpoints_meet_the_contract() {
    let url = fresh_database("feed_checkpoints").await;
    contract_tests::checkpoint_contract(Arc::new(PostgresStore::connect(&url).await.unwrap())).await;
}

#[tokio::test]
async fn postgres_begin_stores_the_pending_receipt() {
    let url = fresh_database("begin_receipt").await;
    contract_tests::begin_saves_the_pending_receipt(Arc::new(PostgresStore::connect(&url).await.unwrap())).await;
}

#[tokio::test]
async fn postgres_saves_a_receipt_with_its_feed_records_or_not_at_all() {
    let url = fresh_database("save_with_feed").await;
    contract_tests::save_with_feed_contract(Arc::new(PostgresStore::connect(&url).await.unwrap())).await;
}

#[tokio::test]
async fn postgres_refuses_a_feed_append_whole() {
    let url = fresh_database("feed_refused").await;
    contract_tests::feed_refusal_contract(Arc::new(PostgresStore::connect(&url).await.unwrap())).await;
}

/// A head that fell behind its records (as if restored from an older backup) must not fork the
/// chain: the primary key refuses the append.
#[tokio::test]
async fn postgres_a_stale_head_is_refused_not_forked() {
    let url = fresh_database("feed_stale").await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let feed: &dyn FeedStore = &store;
    let hk = corridor_schemas::Jurisdiction::new("HK").unwrap();
    let entry = || contract_tests::feed_entry(corridor_compliance::feed::FeedKind::Screening, "stale");
    let first = feed.append(vec![(hk.clone(), entry()), (hk.clone(), entry())], 1).await.unwrap();
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    let stale_hash = first[0].hash.as_bytes().to_vec();
    client
        .execute("UPDATE corridor_feed_heads SET sequence = 1, hash = $1 WHERE jurisdiction = 'HK'", &[&stale_hash])
        .await
        .unwrap();
    assert!(feed.append(vec![(hk.clone(), entry())], 2).await.is_err(), "a stale head forked the chain");
    assert_eq!(feed.records(&hk, 1, 10).await.unwrap(), first);
}

/// Replicas sharing one database: a live router's payments are never taken over; a router whose
/// lease lapsed (it died without releasing) has its unfinished payments taken over by exactly one
/// of the routers still alive.
#[tokio::test]
async fn postgres_replicas_take_over_only_from_a_router_whose_lease_lapsed() {
    let url = fresh_database("leases").await;
    let lease = std::time::Duration::from_millis(1_500);
    let dying = PostgresStore::connect_with_lease(&url, lease).await.unwrap();
    let alive = PostgresStore::connect_with_lease(&url, lease).await.unwrap();
    let also_alive = PostgresStore::connect_with_lease(&url, lease).await.unwrap();
    assert_ne!(dying.instance(), alive.instance());
    // One leader: the router whose lease started first.
    assert!(dying.leads().await.unwrap());
    assert!(!alive.leads().await.unwrap() && !also_alive.leads().await.unwrap());

    let mut dying_ids = Vec::new();
    for _ in 0..40 {
        let payment = contract_tests::payment("bank-a", corridor_schemas::wire::v1::PaymentStatus::Pending);
        dying.begin(&payment).await.unwrap();
        dying_ids.push(payment.payment_id);
    }
    let own = contract_tests::payment("bank-a", corridor_schemas::wire::v1::PaymentStatus::Pending);
    alive.begin(&own).await.unwrap();
    // Everyone is alive, each renewing its lease: nothing to take over, however long we wait.
    tokio::time::sleep(lease * 2).await;
    assert!(alive.take_over(100).await.unwrap().is_empty(), "took over a live router's payments");
    assert!(also_alive.take_over(100).await.unwrap().is_empty(), "took over a live router's payments");

    // The first router dies without a word: its renewal stops with it.
    drop(dying);
    tokio::time::sleep(lease + std::time::Duration::from_millis(500)).await;
    let (first, second) = tokio::join!(alive.take_over(25), also_alive.take_over(25));
    let (first, second) = (first.unwrap(), second.unwrap());
    let mut taken: Vec<String> = first.iter().chain(&second).map(|entry| entry.payment.payment_id.clone()).collect();
    let rest = alive.take_over(100).await.unwrap();
    taken.extend(rest.iter().map(|entry| entry.payment.payment_id.clone()));
    taken.sort();
    dying_ids.sort();
    assert_eq!(taken, dying_ids, "every orphan taken over exactly once, and nothing else");
    assert!(also_alive.take_over(100).await.unwrap().is_empty(), "the survivors' own entries were taken over");

    // The leader died: the next oldest leads.
    assert!(alive.leads().await.unwrap());
    assert!(!also_alive.leads().await.unwrap());

    // A router that releases its lease (a drain) hands its entries over at once.
    alive.release().await.unwrap();
    assert!(also_alive.leads().await.unwrap());
    let handed: Vec<String> =
        also_alive.take_over(100).await.unwrap().into_iter().map(|entry| entry.payment.payment_id).collect();
    assert!(handed.contains(&own.payment_id));
    assert_eq!(handed.len(), 1 + first.len() + rest.len(), "{handed:?}");
}
