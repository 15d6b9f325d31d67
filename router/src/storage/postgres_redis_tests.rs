//! The storage contract against PostgreSQL and Redis. The test command (ops/test.sh) starts both;
//! the URLs come from CORRIDOR_TEST_POSTGRES_URL and CORRIDOR_TEST_REDIS_URL, defaulting to the
//! local servers. Each test gets its own database, so runs never see each other's rows.

use std::sync::Arc;

use tokio_postgres::NoTls;

use super::contract_tests;
use super::postgres::PostgresStore;
use super::redis_keys::RedisKeyStore;
use super::redis_quotes::RedisQuoteStore;
use super::{Journal, PaymentStore, QuoteStore};

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
