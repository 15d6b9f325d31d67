//! Liquidity providers' published rates, shared by every router of a network through Redis.
//!
//! A provider publishes to whichever replica its connection reaches; every replica prices with
//! its own in-memory rate book. So each accepted publication is also stored in Redis (the newest
//! entry per provider and pair, in one hash) and announced on a channel; every replica listens
//! and applies what it hears, and on start (or after losing the channel) reads the hash, so a
//! replica that starts later, or missed messages, catches up. Another replica prices with a new
//! rate a few milliseconds after the one that accepted it.
//!
//! Publications travel as their wire encoding (`corridor.v1.PublishRatesRequest`, one entry per
//! hash field): a replica validates what it hears as it validates a call, so a message that is
//! not a valid publication for this network changes nothing. Keys are scoped by the network's
//! database name, so networks sharing one Redis do not hear each other.
//!
//! Not here: deciding whether a rate is acceptable (the FX API does), or rate history.

use futures::StreamExt;
use redis::aio::ConnectionManager;

use super::StorageError;

/// Wait before listening again after the channel was lost.
const RELISTEN_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("redis: {error}"))
}

#[derive(Clone)]
pub struct RedisRateBus {
    client: redis::Client,
    connection: ConnectionManager,
    /// The hash of the newest entry per provider and pair.
    latest_key: String,
    channel: String,
}

impl RedisRateBus {
    /// `network` scopes the keys: the network's database name.
    pub async fn connect(redis_url: &str, network: &str) -> Result<Self, StorageError> {
        let client = redis::Client::open(redis_url).map_err(unavailable)?;
        let connection = ConnectionManager::new(client.clone()).await.map_err(unavailable)?;
        Ok(Self {
            client,
            connection,
            latest_key: format!("corridor:rates:{{{network}}}:latest"),
            channel: format!("corridor:rates:{{{network}}}:published"),
        })
    }

    /// Stores each entry as the newest of its provider and pair and announces the publication.
    /// `entries` are (provider and pair, one-entry publication encoded); `publication` is the
    /// whole publication, encoded.
    pub async fn share(&self, entries: &[(String, Vec<u8>)], publication: &[u8]) -> Result<(), StorageError> {
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        for (field, encoded) in entries {
            pipeline.hset(&self.latest_key, field, encoded.as_slice()).ignore();
        }
        pipeline.publish(&self.channel, publication).ignore();
        let mut connection = self.connection.clone();
        pipeline.query_async::<()>(&mut connection).await.map_err(unavailable)
    }

    /// The newest publication of every provider and pair, encoded.
    pub async fn latest(&self) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut connection = self.connection.clone();
        let values: Vec<Vec<u8>> =
            redis::cmd("HVALS").arg(&self.latest_key).query_async(&mut connection).await.map_err(unavailable)?;
        Ok(values)
    }

    /// Calls `apply` with every publication: first the newest of each provider and pair, then
    /// each one announced, for as long as the task runs; after losing the channel it listens
    /// again and reads the newest again (so nothing missed meanwhile stays missed).
    pub fn spawn_listener(self, apply: impl Fn(&[u8]) + Send + Sync + 'static) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.listen(&apply).await {
                    tracing::warn!(%error, "lost the shared rates' channel; listening again");
                }
                tokio::time::sleep(RELISTEN_DELAY).await;
            }
        })
    }

    async fn listen(&self, apply: &(impl Fn(&[u8]) + Send + Sync)) -> Result<(), StorageError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(unavailable)?;
        pubsub.subscribe(&self.channel).await.map_err(unavailable)?;
        // Subscribed first, then read: a publication in between is heard, not lost.
        for publication in self.latest().await? {
            apply(&publication);
        }
        let mut messages = pubsub.on_message();
        while let Some(message) = messages.next().await {
            apply(message.get_payload_bytes());
        }
        Err(unavailable("the channel closed"))
    }
}
