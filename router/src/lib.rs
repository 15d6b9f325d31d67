//! The Corridor router: the payment API, the pipeline (route → FX → compliance → two-phase
//! commit), the coordinator, and the `corridor` binary's commands.
//!
//! Map: [`config`] reads and checks the configuration; [`network`] builds the ledgers, participants,
//! rates, fees and hooks from it; [`pipeline`] runs one payment; [`route`] plans its legs;
//! [`settlement`] is the two-phase-commit coordinator; [`storage`] keeps the journal, receipts,
//! idempotency keys and quote locks durably; [`recovery`] completes what a crash left; [`api`],
//! [`fx_api`], [`review_api`], [`feed_api`], [`operator_api`], [`coordinator_api`] and [`server`]
//! are the gRPC edge; [`transport`] is the mTLS listener and client endpoints, [`authz`] decides
//! who may call what, [`tls`] and [`pki`] are the certificates; [`demo`] is `corridor demo`.

pub mod api;
pub mod authz;
pub mod clock;
pub mod config;
pub mod conformance_command;
pub mod coordinator_api;
pub mod demo;
pub mod feed;
pub mod feed_api;
pub mod feed_command;
pub mod feed_writer;
pub mod fx_api;
pub mod http;
pub mod ledger_node;
pub mod lifecycle;
pub mod metrics;
pub mod network;
pub mod operator_api;
pub mod payment;
pub mod pipeline;
pub mod pki;
pub mod quote;
pub mod recovery;
pub mod review;
pub mod review_api;
pub mod route;
pub mod server;
pub mod settlement;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, StorageBackend, StorageConfig};
use crate::network::Network;
use crate::pipeline::{Router, RouterSettings};
use crate::storage::embedded::EmbeddedStore;
use crate::storage::postgres::PostgresStore;
use crate::storage::redis_keys::RedisKeyStore;
use crate::storage::redis_quotes::RedisQuoteStore;
use crate::storage::redis_velocity::RedisVelocityCounter;
use crate::storage::velocity::EmbeddedVelocityCounter;
use crate::storage::{Storage, StorageError};

/// Opens the stores the configuration names (creating schemas and files as needed).
pub async fn open_storage(config: &StorageConfig) -> Result<Storage, StorageError> {
    match config.backend {
        StorageBackend::Embedded => {
            let store = Arc::new(EmbeddedStore::open(&config.data_dir)?);
            Ok(Storage {
                journal: store.clone(),
                payments: store.clone(),
                keys: store.clone(),
                quotes: store.clone(),
                feed: store,
            })
        }
        StorageBackend::Postgres => {
            let missing = |key: &str| StorageError::Unavailable(format!("storage.{key} is not set"));
            let database_url = config.database_url.as_deref().ok_or_else(|| missing("database_url"))?;
            let redis_url = config.redis_url.as_deref().ok_or_else(|| missing("redis_url"))?;
            let postgres = Arc::new(PostgresStore::connect(database_url).await?);
            let keys = Arc::new(RedisKeyStore::connect(redis_url).await?);
            let quotes = Arc::new(RedisQuoteStore::connect(redis_url).await?);
            Ok(Storage { journal: postgres.clone(), payments: postgres.clone(), keys, quotes, feed: postgres })
        }
    }
}

/// Opens the counters of the velocity limits for the configured backend: `velocity.redb` in the
/// data directory (embedded), or Redis (`backend = "postgres"`), which every replica shares.
pub async fn open_velocity_counter(
    config: &StorageConfig,
) -> Result<Arc<dyn corridor_compliance::VelocityCounter>, StorageError> {
    match config.backend {
        StorageBackend::Embedded => Ok(Arc::new(EmbeddedVelocityCounter::open(&config.data_dir)?)),
        StorageBackend::Postgres => {
            let redis_url = config
                .redis_url
                .as_deref()
                .ok_or_else(|| StorageError::Unavailable("storage.redis_url is not set".into()))?;
            Ok(Arc::new(RedisVelocityCounter::connect(redis_url).await?))
        }
    }
}

/// A router over `network` and `storage` with the settlement settings of `config`, signing feed
/// checkpoints with the key in `feed.signing_key_file` (created if missing; default
/// `<storage.data_dir>/feed-signing-key.pk8`). Over mTLS every instruction must be signed.
pub fn router_over(
    network: Network,
    storage: Storage,
    config: &Config,
    security: &transport::ServerSecurity,
) -> anyhow::Result<Arc<Router>> {
    let settings = RouterSettings {
        prepare_timeout: Duration::from_millis(config.settlement.prepare_timeout_ms),
        decision_attempts_max: config.settlement.decision_attempts_max,
        in_flight_max: config.settlement.in_flight_max,
    };
    let key_file = config.feed.signing_key_file.clone().unwrap_or_else(|| config.storage.data_dir.join(FEED_KEY_FILE));
    if let Some(directory) = key_file.parent() {
        std::fs::create_dir_all(directory)
            .map_err(|error| anyhow::anyhow!("cannot create {}: {error}", directory.display()))?;
    }
    let signer = feed::load_or_create_signer(&key_file)
        .map_err(|error| anyhow::anyhow!("feed signing key {}: {error}", key_file.display()))?;
    let per_second = std::num::NonZeroU32::new(config.server.participant_requests_per_s)
        .ok_or_else(|| anyhow::anyhow!("server.participant_requests_per_s must be positive"))?;
    let burst = std::num::NonZeroU32::new(config.server.participant_burst)
        .ok_or_else(|| anyhow::anyhow!("server.participant_burst must be positive"))?;
    let mut router = Router::new(Arc::new(network), storage, settings, Arc::new(clock::SystemClock))
        .with_feed_signer(Arc::new(signer))
        .with_participant_rate(per_second, burst);
    if security.is_mtls() {
        router = router.with_signatures_required();
    }
    let router = Arc::new(router);
    if let Some(bus) = router.network().rate_bus.clone() {
        // Weak: the listener must not keep a stopped router alive.
        let listening = Arc::downgrade(&router);
        let _listener = bus.spawn_listener(move |publication| {
            if let Some(router) = listening.upgrade() {
                fx_api::apply_shared(&router, publication);
            }
        });
    }
    Ok(router)
}

/// The feed signing key's file name in the data directory, unless configured elsewhere.
pub const FEED_KEY_FILE: &str = "feed-signing-key.pk8";
