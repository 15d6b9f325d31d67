use std::sync::Arc;
use std::time::Duration;

use redb::ReadableTableMetadata;

use super::*;
use crate::storage::contract_tests;

fn temp_directory(name: &str) -> std::path::PathBuf {
    let directory =
        std::env::temp_dir().join(format!("corridor-store-{name}-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&directory).unwrap();
    directory
}

#[tokio::test]
async fn journal_meets_the_contract_across_reopening() {
    let directory = temp_directory("journal");
    let store: Arc<dyn Journal> = Arc::new(EmbeddedStore::open(&directory).unwrap());
    let reopen_directory = directory.clone();
    contract_tests::journal_contract(store, async move {
        // The writer thread of the first store may still hold the file for a moment.
        for _ in 0..100 {
            match EmbeddedStore::open(&reopen_directory) {
                Ok(store) => return Arc::new(store) as Arc<dyn Journal>,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
        panic!("the store did not reopen");
    })
    .await;
    std::fs::remove_dir_all(directory).unwrap();
}

#[tokio::test]
async fn payments_meet_the_contract() {
    let directory = temp_directory("payments");
    contract_tests::payments_contract(Arc::new(EmbeddedStore::open(&directory).unwrap())).await;
    std::fs::remove_dir_all(directory).unwrap();
}

#[tokio::test]
async fn keys_meet_the_contract() {
    let directory = temp_directory("keys");
    contract_tests::keys_contract(Arc::new(EmbeddedStore::open(&directory).unwrap())).await;
    std::fs::remove_dir_all(directory).unwrap();
}

/// Opens the store in `directory`, waiting for an earlier store's writer thread to let go of it.
async fn reopen(directory: &std::path::Path) -> EmbeddedStore {
    for _ in 0..100 {
        match EmbeddedStore::open(directory) {
            Ok(store) => return store,
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    panic!("the store did not reopen");
}

#[tokio::test]
async fn quotes_meet_the_contract_across_reopening() {
    let directory = temp_directory("quotes");
    let store: Arc<dyn QuoteStore> = Arc::new(EmbeddedStore::open(&directory).unwrap());
    let reopen_directory = directory.clone();
    contract_tests::quote_contract(
        store,
        async move { Arc::new(reopen(&reopen_directory).await) as Arc<dyn QuoteStore> },
    )
    .await;
    std::fs::remove_dir_all(directory).unwrap();
}

#[tokio::test]
async fn a_claim_of_a_quote_not_stored_is_an_error() {
    let directory = temp_directory("quote-unknown");
    let store = EmbeddedStore::open(&directory).unwrap();
    let quotes: &dyn QuoteStore = &store;
    let error = quotes.claim(QuoteId::generate(), PaymentId::generate()).await.unwrap_err();
    assert!(error.to_string().contains("is not stored"), "{error}");
    std::fs::remove_dir_all(directory).unwrap();
}

/// How many quotes, claims and expiry index entries the file holds.
fn quote_rows(store: &EmbeddedStore) -> (u64, u64, u64) {
    let transaction = store.database.begin_read().unwrap();
    let count = |table: TableDefinition<&[u8], &[u8]>| transaction.open_table(table).unwrap().len().unwrap();
    let by_expiry = transaction.open_table(QUOTES_BY_EXPIRY).unwrap().len().unwrap();
    (count(QUOTES), count(QUOTE_CLAIMS), by_expiry)
}

#[tokio::test]
async fn quotes_past_their_retention_are_deleted_by_later_writes() {
    let directory = temp_directory("quote-retention");
    let store = EmbeddedStore::open(&directory).unwrap();
    let quotes: &dyn QuoteStore = &store;
    let now = SystemTime::now();
    let long_gone = QuoteId::generate();
    quotes.put(long_gone, b"old", now - QUOTE_RETENTION - Duration::from_secs(86_400)).await.unwrap();
    assert_eq!(quotes.get(long_gone).await.unwrap(), Some(b"old".to_vec()), "a write deleted what it just stored");
    // Retention ends in a second; claimed meanwhile.
    let ending = QuoteId::generate();
    quotes.put(ending, b"ending", now - QUOTE_RETENTION + Duration::from_secs(1)).await.unwrap();
    assert_eq!(quotes.get(long_gone).await.unwrap(), None, "a quote past its retention outlived a later write");
    let claimer = PaymentId::generate();
    assert_eq!(quotes.claim(ending, claimer).await.unwrap(), None);
    let kept = QuoteId::generate();
    quotes.put(kept, b"kept", now + Duration::from_secs(60)).await.unwrap();
    assert_eq!(quotes.claim(ending, PaymentId::generate()).await.unwrap(), Some(claimer), "deleted too early");
    assert_eq!(quote_rows(&store), (2, 1, 2));

    let ended = now + Duration::from_millis(1_100);
    tokio::time::sleep(ended.duration_since(SystemTime::now()).unwrap_or_default()).await;
    quotes.put(QuoteId::generate(), b"later", now + Duration::from_secs(60)).await.unwrap();
    assert_eq!(quotes.get(ending).await.unwrap(), None, "a quote outlived its retention");
    assert!(quotes.claim(ending, PaymentId::generate()).await.is_err(), "a deleted quote could be claimed");
    assert_eq!(quotes.get(kept).await.unwrap(), Some(b"kept".to_vec()));
    assert_eq!(quote_rows(&store), (2, 0, 2), "a deleted quote's claim or index entry was left behind");
    std::fs::remove_dir_all(directory).unwrap();
}

#[tokio::test]
async fn each_write_deletes_a_bounded_number_of_expired_quotes_oldest_first() {
    let directory = temp_directory("quote-bound");
    let store = EmbeddedStore::open(&directory).unwrap();
    let far_past_ms = 1_000_000;
    let ids: Vec<QuoteId> = (0..100).map(|_| QuoteId::generate()).collect();
    // Written straight into the file, so no write of the store's has deleted any yet.
    {
        let transaction = store.database.begin_write().unwrap();
        {
            let mut tables = QuoteTables {
                quotes: transaction.open_table(QUOTES).unwrap(),
                claims: transaction.open_table(QUOTE_CLAIMS).unwrap(),
                by_expiry: transaction.open_table(QUOTES_BY_EXPIRY).unwrap(),
            };
            for (index, id) in ids.iter().enumerate() {
                // Newest first, so deletion order is not insertion order.
                let expires_at_ms = far_past_ms + 100 - index as u64;
                tables.put(&quote_bytes(*id), expires_at_ms, b"old").unwrap();
                tables.claim(*id, PaymentId::generate()).unwrap();
            }
        }
        transaction.commit().unwrap();
    }
    assert_eq!(quote_rows(&store), (100, 100, 100));
    let quotes: &dyn QuoteStore = &store;
    let fresh = QuoteId::generate();
    quotes.put(fresh, b"fresh", SystemTime::now() + Duration::from_secs(60)).await.unwrap();
    assert_eq!(quote_rows(&store), (37, 36, 37), "one write deleted other than 64 expired quotes");
    for oldest in &ids[36..] {
        assert_eq!(quotes.get(*oldest).await.unwrap(), None, "deleted out of expiry order");
    }
    assert_eq!(quotes.claim(fresh, PaymentId::generate()).await.unwrap(), None);
    assert_eq!(quote_rows(&store), (1, 1, 1), "the backlog did not drain on the next write");
    assert_eq!(quotes.get(fresh).await.unwrap(), Some(b"fresh".to_vec()));
    std::fs::remove_dir_all(directory).unwrap();
}

#[test]
fn an_unchanged_expiry_is_reindexed_once_and_a_changed_one_moves() {
    let directory = temp_directory("quote-reput");
    let store = EmbeddedStore::open(&directory).unwrap();
    let transaction = store.database.begin_write().unwrap();
    {
        let mut tables = QuoteTables {
            quotes: transaction.open_table(QUOTES).unwrap(),
            claims: transaction.open_table(QUOTE_CLAIMS).unwrap(),
            by_expiry: transaction.open_table(QUOTES_BY_EXPIRY).unwrap(),
        };
        let id = quote_bytes(QuoteId::generate());
        tables.put(&id, 5, b"first").unwrap();
        tables.put(&id, 5, b"again").unwrap();
        tables.put(&id, 7, b"later").unwrap();
        assert_eq!(tables.by_expiry.len().unwrap(), 1);
        assert!(tables.by_expiry.get(&expiry_key(7, &id)[..]).unwrap().is_some());
        assert_eq!(tables.forget_expired(7 + 3_600_000).unwrap(), 0, "deleted when its retention ends, not before");
        assert_eq!(tables.forget_expired(8 + 3_600_000).unwrap(), 1);
        assert_eq!(tables.quotes.len().unwrap(), 0);
    }
    drop(transaction);
    drop(store);
    std::fs::remove_dir_all(directory).unwrap();
}
