//! Velocity counters in Redis (or Redis Cluster), shared by every router of a network:
//! [`RedisVelocityCounter`].
//!
//! One velocity key is two Redis keys with the velocity key as their hash tag, so both live on one
//! Cluster slot: `corridor:{<key>}:at`, a sorted set of payment ids scored by when they were added
//! (Unix ms), and `corridor:{<key>}:amount`, a hash of payment id → amount (minor units, decimal
//! text) plus the field `total`, the sum of the amounts in the sorted set.
//!
//! **Atomicity:** an add is one Lua script ([`ADD_SCRIPT`], sent with `EVAL`: one round trip, run
//! by Redis with nothing else in between): it forgets the entries at or before `at − window`
//! (subtracting their amounts), adds the entry unless it is already there (idempotent per payment),
//! sets both keys to expire, and answers the total and the count including the entry. Every
//! replica's adds to one key are therefore one sequence, and of two payments that only one fits,
//! the second sees the first. A removal is another script ([`REMOVE_SCRIPT`]). Amounts are only
//! ever handled as text by the scripts and summed by `HINCRBY` (64-bit integers): Lua's numbers are
//! doubles and would round large sums. A total beyond `i64` makes `HINCRBY` fail before the entry
//! is written: the add is an error, and the hook denies.
//!
//! Both keys expire [`KEY_EXPIRY_SLACK_MS`] after the latest add's window ends, so a key nobody pays
//! under leaves Redis by itself. Times are the routers' (`at`), not Redis's: replicas' clocks must
//! agree (NTP); a replica whose clock runs ahead by some seconds forgets entries that many seconds
//! early. The slack keeps a key alive for replicas whose clock runs behind.
//!
//! What it deliberately does not do: survive Redis losing writes (an add acknowledged by a primary
//! that fails over before replicating it can be lost, and a limit passed by that one payment);
//! Redis must persist (AOF) and not evict, as for idempotency keys and quotes.

use std::time::{Duration, SystemTime};

use corridor_compliance::velocity::{
    CounterError, VelocityCounter, WindowTotals, check_entry, check_key, unix_ms, window_ms,
};
use corridor_schemas::PaymentId;
use redis::aio::ConnectionManager;

use super::StorageError;

/// How much longer than the latest add's window a key is kept.
pub const KEY_EXPIRY_SLACK_MS: u64 = 60_000;

/// KEYS[1] the sorted set, KEYS[2] the amounts; ARGV[1] the payment id, ARGV[2] its amount,
/// ARGV[3] when it is added (Unix ms), ARGV[4] the cutoff (entries scored at or before it are
/// forgotten), ARGV[5] the keys' time to live (ms). Returns {total (text), count}.
pub const ADD_SCRIPT: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
for _, member in ipairs(expired) do
  local amount = redis.call('HGET', KEYS[2], member)
  if amount then
    if amount ~= '0' then redis.call('HINCRBY', KEYS[2], 'total', '-' .. amount) end
    redis.call('HDEL', KEYS[2], member)
  end
end
if #expired > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4]) end
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HINCRBY', KEYS[2], 'total', ARGV[2])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {redis.call('HGET', KEYS[2], 'total') or '0', redis.call('ZCARD', KEYS[1])}
";

/// KEYS as for [`ADD_SCRIPT`]; ARGV[1] the payment id. Takes the entry out if it is there.
pub const REMOVE_SCRIPT: &str = r"
local amount = redis.call('HGET', KEYS[2], ARGV[1])
if amount then
  if amount ~= '0' then redis.call('HINCRBY', KEYS[2], 'total', '-' .. amount) end
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
";

/// Sliding-window velocity counters in Redis (see the module docs).
#[derive(Clone)]
pub struct RedisVelocityCounter {
    connection: ConnectionManager,
}

fn unavailable(error: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(format!("redis: {error}"))
}

/// The sorted set of `key`'s entries by time.
fn entries_key(key: &str) -> String {
    format!("corridor:{{{key}}}:at")
}

/// The hash of `key`'s amounts and their total.
fn amounts_key(key: &str) -> String {
    format!("corridor:{{{key}}}:amount")
}

impl RedisVelocityCounter {
    pub async fn connect(redis_url: &str) -> Result<Self, StorageError> {
        let client =
            redis::Client::open(redis_url).map_err(|error| StorageError::Unavailable(format!("redis: {error}")))?;
        let connection = ConnectionManager::new(client)
            .await
            .map_err(|error| StorageError::Unavailable(format!("redis: {error}")))?;
        Ok(Self { connection })
    }
}

#[async_trait::async_trait]
impl VelocityCounter for RedisVelocityCounter {
    async fn add(
        &self,
        key: &str,
        entry: PaymentId,
        amount_minor: i64,
        at: SystemTime,
        window: Duration,
    ) -> Result<WindowTotals, CounterError> {
        check_entry(key, amount_minor)?;
        let (at_ms, window_ms) = (unix_ms(at), window_ms(window));
        // May be negative (a window longer than the time since the epoch): nothing is that old.
        let cutoff_ms = i128::from(at_ms) - i128::from(window_ms);
        let time_to_live_ms = window_ms.saturating_add(KEY_EXPIRY_SLACK_MS);
        let mut connection = self.connection.clone();
        let (total, count): (String, u64) = redis::cmd("EVAL")
            .arg(ADD_SCRIPT)
            .arg(2)
            .arg(entries_key(key))
            .arg(amounts_key(key))
            .arg(entry.to_string())
            .arg(amount_minor.to_string())
            .arg(at_ms.to_string())
            .arg(cutoff_ms.to_string())
            .arg(time_to_live_ms.to_string())
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        let amount_minor = total
            .parse()
            .map_err(|_| CounterError::Corrupt(format!("velocity total of `{key}` is `{total}`, not an integer")))?;
        Ok(WindowTotals { amount_minor, count })
    }

    async fn remove(&self, key: &str, entry: PaymentId) -> Result<(), CounterError> {
        check_key(key)?;
        let mut connection = self.connection.clone();
        redis::cmd("EVAL")
            .arg(REMOVE_SCRIPT)
            .arg(2)
            .arg(entries_key(key))
            .arg(amounts_key(key))
            .arg(entry.to_string())
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_velocity_keys_two_redis_keys_share_a_cluster_slot() {
        let key = "velocity:HK:wallet:e-hkd/alice:HKD:3600000";
        assert_eq!(entries_key(key), "corridor:{velocity:HK:wallet:e-hkd/alice:HKD:3600000}:at");
        assert_eq!(amounts_key(key), "corridor:{velocity:HK:wallet:e-hkd/alice:HKD:3600000}:amount");
        // Braces inside a key would move the hash tag: counters refuse such keys before Redis sees them.
        assert!(check_key("velocity:{x}").is_err());
    }
}
