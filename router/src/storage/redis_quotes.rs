//! Locked FX quotes and their single use in Redis (or Redis Cluster), shared by every router of a
//! network.
//!
//! A quote is `SET corridor:quote:{<id>} <encoding> PX <ms until expires_at + QUOTE_RETENTION>`;
//! its claim is `corridor:quote:{<id>}:claim` → the claiming payment's id (text). The hash tag puts
//! a quote and its claim on one Cluster slot, so a claim is one Lua script ([`CLAIM_SCRIPT`], sent
//! with `EVAL`, one round trip, atomic): it answers the holder if there is one, and otherwise sets
//! the claim with the quote's remaining TTL (`PTTL`), so the claim expires exactly with its quote.
//! A claim of a quote that is not stored sets nothing and is an error. The script uses only
//! `GET`, `PTTL` and `SET … PX`, so any Redis ≥ 2.6 runs it.
//!
//! What it deliberately does not do: survive Redis losing writes. A claim acknowledged by a primary
//! that fails over before replicating it, or by a server that does not persist, can be lost and the
//! quote used twice; Redis must be configured to persist (AOF `appendfsync always` for the same
//! guarantee as the embedded store) and not to evict. TTLs are relative, computed from this
//! router's clock when the quote is stored.

use std::time::SystemTime;

use corridor_schemas::{PaymentId, QuoteId};
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

use super::{QUOTE_RETENTION, QuoteStore, StorageError, quote_not_stored};

/// KEYS[1] the quote, KEYS[2] its claim; ARGV[1] the claiming payment. Returns the holder's id if
/// claimed before, nil if claimed now, 0 if the quote is not stored.
const CLAIM_SCRIPT: &str = r"
local holder = redis.call('GET', KEYS[2])
if holder then return holder end
local ttl_ms = redis.call('PTTL', KEYS[1])
if ttl_ms == -2 then return 0 end
if ttl_ms == -1 then
  redis.call('SET', KEYS[2], ARGV[1])
else
  redis.call('SET', KEYS[2], ARGV[1], 'PX', math.max(ttl_ms, 1))
end
return false
";

#[derive(Clone)]
pub struct RedisQuoteStore {
    connection: ConnectionManager,
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(format!("redis: {error}"))
}

fn quote_key(quote: QuoteId) -> String {
    format!("corridor:quote:{{{quote}}}")
}

fn claim_key(quote: QuoteId) -> String {
    format!("corridor:quote:{{{quote}}}:claim")
}

/// Milliseconds from `now` until the quote's retention ends; at least 1 (Redis refuses `PX 0`), so a
/// quote stored after its retention ended is forgotten at once.
fn retained_for_ms(expires_at: SystemTime, now: SystemTime) -> u64 {
    let forget_at = expires_at.checked_add(QUOTE_RETENTION).unwrap_or(expires_at);
    let remaining = forget_at.duration_since(now).unwrap_or_default();
    u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisQuoteStore {
    pub async fn connect(redis_url: &str) -> Result<Self, StorageError> {
        let client = redis::Client::open(redis_url).map_err(unavailable)?;
        let connection = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self { connection })
    }
}

#[async_trait::async_trait]
impl QuoteStore for RedisQuoteStore {
    async fn put(&self, quote: QuoteId, encoded: &[u8], expires_at: SystemTime) -> Result<(), StorageError> {
        let retained_ms = retained_for_ms(expires_at, SystemTime::now());
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(quote_key(quote))
            .arg(encoded)
            .arg("PX")
            .arg(retained_ms)
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn get(&self, quote: QuoteId) -> Result<Option<Vec<u8>>, StorageError> {
        let mut connection = self.connection.clone();
        connection.get(quote_key(quote)).await.map_err(unavailable)
    }

    async fn claim(&self, quote: QuoteId, payment: PaymentId) -> Result<Option<PaymentId>, StorageError> {
        let mut connection = self.connection.clone();
        let answer: redis::Value = redis::cmd("EVAL")
            .arg(CLAIM_SCRIPT)
            .arg(2)
            .arg(quote_key(quote))
            .arg(claim_key(quote))
            .arg(payment.to_string())
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        match answer {
            // RESP2 turns the script's `false` into nil; RESP3 may keep it a boolean.
            redis::Value::Nil | redis::Value::Boolean(false) => Ok(None),
            redis::Value::Int(0) => Err(quote_not_stored(quote)),
            redis::Value::BulkString(holder) => {
                let holder = String::from_utf8_lossy(&holder);
                holder
                    .parse()
                    .map(Some)
                    .map_err(|reason| StorageError::Corrupt(format!("claim of quote {quote}: `{holder}` {reason}")))
            }
            other => Err(StorageError::Corrupt(format!("claim of quote {quote}: the script answered {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_quote_and_its_claim_share_a_cluster_slot() {
        let quote = QuoteId::generate();
        assert_eq!(quote_key(quote), format!("corridor:quote:{{{quote}}}"));
        assert_eq!(claim_key(quote), format!("{}:claim", quote_key(quote)));
    }

    #[test]
    fn quotes_are_kept_until_their_retention_ends() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let check =
            |expires_at: SystemTime, expected_ms: u64| assert_eq!(retained_for_ms(expires_at, now), expected_ms);
        check(now + Duration::from_secs(30), 30_000 + 3_600_000);
        check(now, 3_600_000);
        check(now - QUOTE_RETENTION + Duration::from_millis(5), 5);
        check(now - QUOTE_RETENTION, 1);
        check(SystemTime::UNIX_EPOCH, 1);
    }
}
