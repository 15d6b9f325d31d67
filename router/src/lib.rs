//! The Corridor router: the payment API, the pipeline (route → FX → compliance → two-phase
//! commit), the coordinator, and the `corridor` binary's commands.
//!
//! Map: [`config`] reads and checks the configuration; [`network`] builds the ledgers, participants,
//! rates, fees and hooks from it; [`pipeline`] runs one payment; [`route`] plans its legs;
//! [`settlement`] is the two-phase-commit coordinator; [`storage`] keeps the journal, receipts,
//! idempotency keys and quote locks durably; [`recovery`] completes what a crash left; [`api`],
//! [`coordinator_api`] and [`server`] are the gRPC edge; [`demo`] is `corridor demo`.

pub mod api;
pub mod clock;
pub mod config;
pub mod conformance_command;
pub mod coordinator_api;
pub mod demo;
pub mod fx_api;
pub mod ledger_node;
pub mod network;
pub mod payment;
pub mod pipeline;
pub mod quote;
pub mod recovery;
pub mod review;
pub mod review_api;
pub mod route;
pub mod server;
pub mod settlement;
pub mod storage;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, StorageBackend, StorageConfig};
use crate::network::Network;
use crate::pipeline::{Router, RouterSettings};
use crate::storage::embedded::EmbeddedStore;
use crate::storage::postgres::PostgresStore;
use crate::storage::redis_keys::RedisKeyStore;
use crate::storage::redis_quotes::RedisQuoteStore;
use crate::storage::{Storage, StorageError};

/// Opens the stores the configuration names (creating schemas and files as needed).
pub async fn open_storage(config: &StorageConfig) -> Result<Storage, StorageError> {
    match config.backend {
        StorageBackend::Embedded => {
            let store = Arc::new(EmbeddedStore::open(&config.data_dir)?);
            Ok(Storage { journal: store.clone(), payments: store.clone(), keys: store.clone(), quotes: store })
        }
        StorageBackend::Postgres => {
            let missing = |key: &str| StorageError::Unavailable(format!("storage.{key} is not set"));
            let database_url = config.database_url.as_deref().ok_or_else(|| missing("database_url"))?;
            let redis_url = config.redis_url.as_deref().ok_or_else(|| missing("redis_url"))?;
            let postgres = Arc::new(PostgresStore::connect(database_url).await?);
            let keys = Arc::new(RedisKeyStore::connect(redis_url).await?);
            let quotes = Arc::new(RedisQuoteStore::connect(redis_url).await?);
            Ok(Storage { journal: postgres.clone(), payments: postgres, keys, quotes })
        }
    }
}

/// A router over `network` and `storage` with the settlement settings of `config`.
pub fn router_over(network: Network, storage: Storage, config: &Config) -> Arc<Router> {
    let settings = RouterSettings {
        prepare_timeout: Duration::from_millis(config.settlement.prepare_timeout_ms),
        decision_attempts_max: config.settlement.decision_attempts_max,
        in_flight_max: config.settlement.in_flight_max,
    };
    Arc::new(Router::new(Arc::new(network), storage, settings, Arc::new(clock::SystemClock)))
}
