use std::sync::Arc;

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
