//! Velocity counters for the embedded backend: [`EmbeddedVelocityCounter`], the sliding-window
//! totals of the velocity limits ([`corridor_compliance::velocity`]) in a redb file of their own,
//! `velocity.redb` in the data directory.
//!
//! A file of its own rather than a table of `corridor.redb`: the counters have their own writer,
//! so a burst of velocity adds never delays the journal's group commit (nor the other way round),
//! and the file can be inspected or reset without touching payments. Its layout and write path
//! mirror the store's: one writer thread takes whatever adds and removals are queued — up to
//! [`VELOCITY_WRITE_BATCH_MAX`] — applies them one after another in a single write transaction,
//! commits it with redb's default durability (fsync), and only then answers each caller.
//!
//! **Atomicity:** every add and removal of the process runs on that one thread, in queue order,
//! each seeing the effects of the ones before it (in the same transaction or an earlier one), and
//! an add reads its window's totals *after* writing its own entry. So two concurrent payments can
//! never both see totals that only one fits. The file is one process's: redb refuses a second
//! opener, and routers that share counters use Redis ([`super::redis_velocity`]).
//!
//! Layout (keys and values are bytes; `len` is the velocity key's length, u16 big-endian, so one
//! key's rows are contiguous and no key is a prefix of another's rows):
//! - `velocity_windows`: key → totals: amount (i128) ‖ count (u64) ‖ forget-at (Unix ms, u64), all
//!   big-endian; forget-at is the latest `at + window` of any add, from when no entry counts;
//! - `velocity_entries`: len ‖ key ‖ payment id → added at (Unix ms, u64) ‖ amount (i64);
//! - `velocity_entries_by_time`: len ‖ key ‖ added at ‖ payment id → (): the window's order;
//! - `velocity_idle`: forget-at ‖ key → (): keys in the order their last entry leaves its window.
//!
//! What it deliberately does not do: keep anything past its window. Every add forgets its own key's
//! entries that left the window, and up to [`IDLE_KEYS_FORGOTTEN_PER_ADD_MAX`] whole keys whose
//! forget-at has passed (a backlog drains over the following adds); time is always the `at` of the
//! add, never the writer's clock, so a test clock governs forgetting too.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_compliance::velocity::{
    CounterError, IDLE_KEYS_FORGOTTEN_PER_ADD_MAX, VelocityCounter, WindowTotals, check_entry, check_key, unix_ms,
    window_ms,
};
use corridor_schemas::PaymentId;
use redb::{Database, ReadableTable, Table, TableDefinition, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StorageError;

const WINDOWS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("velocity_windows");
const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("velocity_entries");
const ENTRIES_BY_TIME: TableDefinition<&[u8], ()> = TableDefinition::new("velocity_entries_by_time");
const IDLE: TableDefinition<&[u8], ()> = TableDefinition::new("velocity_idle");

/// The counters' file in the data directory.
pub const VELOCITY_FILE_NAME: &str = "velocity.redb";
/// Most adds and removals one group commit carries.
pub const VELOCITY_WRITE_BATCH_MAX: usize = 1_024;
/// Adds and removals waiting for the writer; callers wait when it is full.
const VELOCITY_WRITE_QUEUE_MAX: usize = 8_192;

const ID_BYTES: usize = 16;
const MS_BYTES: usize = 8;
const WINDOW_ROW_BYTES: usize = 32;
const ENTRY_VALUE_BYTES: usize = 16;

enum Operation {
    Add { key: String, entry: [u8; ID_BYTES], amount_minor: i64, at_ms: u64, window_ms: u64 },
    Remove { key: String, entry: [u8; ID_BYTES] },
}

struct WriteRequest {
    operation: Operation,
    reply: oneshot::Sender<Result<WindowTotals, CounterError>>,
}

/// Sliding-window velocity counters in `velocity.redb` (see the module docs).
#[derive(Clone)]
pub struct EmbeddedVelocityCounter {
    /// For tests to read the tables; everything else goes through the writer.
    #[cfg(test)]
    database: Arc<Database>,
    writer: mpsc::Sender<WriteRequest>,
}

fn unavailable(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

impl EmbeddedVelocityCounter {
    /// Opens (or creates) `velocity.redb` in `directory`, and starts its writer thread.
    pub fn open(directory: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(directory)
            .map_err(|error| unavailable(format!("cannot create {}: {error}", directory.display())))?;
        let path = directory.join(VELOCITY_FILE_NAME);
        // A bounded page cache (redb's default is 1 GiB): the windows are small and recent.
        let database = Database::builder()
            .set_cache_size(16 * 1024 * 1024)
            .create(&path)
            .map_err(|error| unavailable(format!("{}: {error}", path.display())))?;
        let transaction = database.begin_write().map_err(unavailable)?;
        Tables::open(&transaction).map_err(unavailable)?;
        transaction.commit().map_err(unavailable)?;
        let database = Arc::new(database);
        let (writer, requests) = mpsc::channel(VELOCITY_WRITE_QUEUE_MAX);
        let writer_database = Arc::clone(&database);
        std::thread::Builder::new()
            .name("corridor-velocity-writer".into())
            .spawn(move || write_loop(&writer_database, requests))
            .map_err(|error| unavailable(format!("cannot start the velocity writer: {error}")))?;
        Ok(Self {
            #[cfg(test)]
            database,
            writer,
        })
    }

    async fn write(&self, operation: Operation) -> Result<WindowTotals, CounterError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteRequest { operation, reply })
            .await
            .map_err(|_| CounterError::Unavailable("the velocity writer has stopped".into()))?;
        answer.await.map_err(|_| CounterError::Unavailable("the velocity writer stopped before answering".into()))?
    }
}

#[async_trait::async_trait]
impl VelocityCounter for EmbeddedVelocityCounter {
    async fn add(
        &self,
        key: &str,
        entry: PaymentId,
        amount_minor: i64,
        at: SystemTime,
        window: Duration,
    ) -> Result<WindowTotals, CounterError> {
        check_entry(key, amount_minor)?;
        let operation = Operation::Add {
            key: key.to_owned(),
            entry: *entry.as_uuid().as_bytes(),
            amount_minor,
            at_ms: unix_ms(at),
            window_ms: window_ms(window),
        };
        self.write(operation).await
    }

    async fn remove(&self, key: &str, entry: PaymentId) -> Result<(), CounterError> {
        check_key(key)?;
        self.write(Operation::Remove { key: key.to_owned(), entry: *entry.as_uuid().as_bytes() }).await.map(|_| ())
    }
}

/// The writer thread: takes a first request, then whatever else is queued, applies all of them in
/// one transaction, commits (fsync), then answers each.
fn write_loop(database: &Database, mut requests: mpsc::Receiver<WriteRequest>) {
    while let Some(first) = requests.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < VELOCITY_WRITE_BATCH_MAX {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        match apply_batch(database, &batch) {
            Ok(replies) => {
                for (request, reply) in batch.into_iter().zip(replies) {
                    let _caller_gone = request.reply.send(reply);
                }
            }
            Err(error) => {
                for request in batch {
                    let _caller_gone = request.reply.send(Err(CounterError::Unavailable(error.clone())));
                }
            }
        }
    }
}

/// Why one operation did not apply.
enum OperationError {
    /// Stored data that cannot be read: found before the operation wrote anything of its own, so it
    /// fails alone and the rest of the batch commits.
    Corrupt(String),
    /// The file failed: the whole transaction is abandoned.
    Store(redb::StorageError),
}

impl From<redb::StorageError> for OperationError {
    fn from(error: redb::StorageError) -> Self {
        OperationError::Store(error)
    }
}

/// Applies a batch in one write transaction. Corrupt data fails only its operation; an error of
/// the file fails the batch, and nothing of it is written.
fn apply_batch(database: &Database, batch: &[WriteRequest]) -> Result<Vec<Result<WindowTotals, CounterError>>, String> {
    let transaction = database.begin_write().map_err(|error| error.to_string())?;
    let mut replies = Vec::with_capacity(batch.len());
    let mut failure = None;
    {
        let mut tables = Tables::open(&transaction).map_err(|error| error.to_string())?;
        for request in batch {
            let outcome = match &request.operation {
                Operation::Add { key, entry, amount_minor, at_ms, window_ms } => {
                    tables.add(key, entry, *amount_minor, *at_ms, *window_ms)
                }
                Operation::Remove { key, entry } => tables.remove(key, entry),
            };
            match outcome {
                Ok(totals) => replies.push(Ok(totals)),
                Err(OperationError::Corrupt(reason)) => replies.push(Err(CounterError::Corrupt(reason))),
                Err(OperationError::Store(error)) => {
                    failure = Some(error.to_string());
                    break;
                }
            }
        }
    }
    if let Some(error) = failure {
        transaction.abort().map_err(|abort| format!("{error}; then the abort failed: {abort}"))?;
        return Err(error);
    }
    transaction.commit().map_err(|error| error.to_string())?;
    Ok(replies)
}

/// A key's totals row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct WindowRow {
    totals: WindowTotals,
    forget_at_ms: u64,
}

impl WindowRow {
    fn encode(self) -> [u8; WINDOW_ROW_BYTES] {
        let mut bytes = [0; WINDOW_ROW_BYTES];
        bytes[..16].copy_from_slice(&self.totals.amount_minor.to_be_bytes());
        bytes[16..24].copy_from_slice(&self.totals.count.to_be_bytes());
        bytes[24..].copy_from_slice(&self.forget_at_ms.to_be_bytes());
        bytes
    }

    fn decode(key: &str, bytes: &[u8]) -> Result<Self, OperationError> {
        let bytes: &[u8; WINDOW_ROW_BYTES] = bytes.try_into().map_err(|_| {
            OperationError::Corrupt(format!("totals of `{key}`: {} bytes, expected {WINDOW_ROW_BYTES}", bytes.len()))
        })?;
        let (amount, rest) = bytes.split_at(16);
        let (count, forget_at) = rest.split_at(8);
        Ok(Self {
            totals: WindowTotals {
                amount_minor: i128::from_be_bytes(be(amount)),
                count: u64::from_be_bytes(be(count)),
            },
            forget_at_ms: u64::from_be_bytes(be(forget_at)),
        })
    }
}

/// The first `N` bytes of `bytes` as an array, for `from_be_bytes` (callers check the length).
fn be<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut array = [0; N];
    array.copy_from_slice(&bytes[..N]);
    array
}

/// An entry's value: added at ‖ amount.
fn decode_entry(key: &str, bytes: &[u8]) -> Result<(u64, i64), OperationError> {
    if bytes.len() != ENTRY_VALUE_BYTES {
        return Err(OperationError::Corrupt(format!(
            "an entry of `{key}`: {} bytes, expected {ENTRY_VALUE_BYTES}",
            bytes.len()
        )));
    }
    Ok((u64::from_be_bytes(be(&bytes[..MS_BYTES])), i64::from_be_bytes(be(&bytes[MS_BYTES..]))))
}

/// `len ‖ key`: the prefix of one key's entries (keys are at most `KEY_BYTES_MAX` bytes, checked
/// before they reach the writer; a longer one could not have passed, and is cut to fit).
fn prefix(key: &[u8]) -> Vec<u8> {
    let length = u16::try_from(key.len()).unwrap_or(u16::MAX);
    let mut bytes = Vec::with_capacity(2 + key.len() + MS_BYTES + ID_BYTES);
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(&key[..usize::from(length)]);
    bytes
}

fn entry_key(prefix: &[u8], entry: &[u8; ID_BYTES]) -> Vec<u8> {
    [prefix, entry].concat()
}

fn by_time_key(prefix: &[u8], at_ms: u64, entry: &[u8]) -> Vec<u8> {
    [prefix, &at_ms.to_be_bytes(), entry].concat()
}

fn idle_key(forget_at_ms: u64, key: &[u8]) -> Vec<u8> {
    [&forget_at_ms.to_be_bytes()[..], key].concat()
}

/// The velocity tables of one write transaction.
struct Tables<'t> {
    windows: Table<'t, &'static [u8], &'static [u8]>,
    entries: Table<'t, &'static [u8], &'static [u8]>,
    by_time: Table<'t, &'static [u8], ()>,
    idle: Table<'t, &'static [u8], ()>,
}

impl<'t> Tables<'t> {
    fn open(transaction: &'t WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(Self {
            windows: transaction.open_table(WINDOWS)?,
            entries: transaction.open_table(ENTRIES)?,
            by_time: transaction.open_table(ENTRIES_BY_TIME)?,
            idle: transaction.open_table(IDLE)?,
        })
    }

    /// Deletes up to [`IDLE_KEYS_FORGOTTEN_PER_ADD_MAX`] keys, whole, whose forget-at is at or
    /// before `now_ms`, oldest first.
    fn forget_idle(&mut self, now_ms: u64) -> Result<(), redb::StorageError> {
        let end = now_ms.saturating_add(1).to_be_bytes();
        let mut due = Vec::new();
        for row in self.idle.range(..&end[..])? {
            let (index_key, _) = row?;
            due.push(index_key.value().to_vec());
            if due.len() == IDLE_KEYS_FORGOTTEN_PER_ADD_MAX {
                break;
            }
        }
        for index_key in due {
            self.idle.remove(&index_key[..])?;
            // An index key without a velocity key after its time is not ours to interpret.
            let Some(key) = index_key.get(MS_BYTES..).filter(|key| !key.is_empty()) else { continue };
            self.windows.remove(key)?;
            let prefix = prefix(key);
            let start = entry_key(&prefix, &[0; ID_BYTES]);
            let end = entry_key(&prefix, &[0xff; ID_BYTES]);
            self.entries.retain_in(&start[..]..=&end[..], |_, _| false)?;
            let start = by_time_key(&prefix, 0, &[0; ID_BYTES]);
            let end = by_time_key(&prefix, u64::MAX, &[0xff; ID_BYTES]);
            self.by_time.retain_in(&start[..]..=&end[..], |_, _| false)?;
        }
        Ok(())
    }

    fn row(&self, key: &str) -> Result<Option<WindowRow>, OperationError> {
        let stored = self.windows.get(key.as_bytes())?.map(|value| value.value().to_vec());
        stored.map(|bytes| WindowRow::decode(key, &bytes)).transpose()
    }

    /// See [`VelocityCounter::add`]. Reads and checks everything before it writes its own rows.
    fn add(
        &mut self,
        key: &str,
        entry: &[u8; ID_BYTES],
        amount_minor: i64,
        at_ms: u64,
        window_ms: u64,
    ) -> Result<WindowTotals, OperationError> {
        self.forget_idle(at_ms)?;
        let existing = self.row(key)?;
        let mut row = existing.unwrap_or_default();
        let prefix = prefix(key.as_bytes());

        // Entries that left the window: added at or before at − window.
        let mut expired = Vec::new();
        if let Some(cutoff_ms) = at_ms.checked_sub(window_ms) {
            let start = by_time_key(&prefix, 0, &[0; ID_BYTES]);
            let end = by_time_key(&prefix, cutoff_ms, &[0xff; ID_BYTES]);
            for index in self.by_time.range(&start[..]..=&end[..])? {
                let (index_key, _) = index?;
                let index_key = index_key.value().to_vec();
                let id: [u8; ID_BYTES] = index_key[index_key.len().saturating_sub(ID_BYTES)..]
                    .try_into()
                    .map_err(|_| OperationError::Corrupt(format!("an index row of `{key}` is too short")))?;
                let amount = match self.entries.get(&entry_key(&prefix, &id)[..])? {
                    Some(value) => Some(decode_entry(key, value.value())?.1),
                    None => None, // an index row without its entry: dropped, nothing to subtract
                };
                expired.push((index_key, id, amount));
            }
        }
        for (_, _, amount) in &expired {
            if let Some(amount) = amount {
                row.totals.amount_minor -= i128::from(*amount);
                row.totals.count =
                    row.totals.count.checked_sub(1).ok_or_else(|| {
                        OperationError::Corrupt(format!("`{key}` counts fewer entries than it holds"))
                    })?;
            }
        }
        let this_entry = entry_key(&prefix, entry);
        let counted = self.entries.get(&this_entry[..])?.is_some() && !expired.iter().any(|(_, id, _)| id == entry);

        for (index_key, id, _) in &expired {
            self.by_time.remove(&index_key[..])?;
            self.entries.remove(&entry_key(&prefix, id)[..])?;
        }
        if !counted {
            let mut value = [0; ENTRY_VALUE_BYTES];
            value[..MS_BYTES].copy_from_slice(&at_ms.to_be_bytes());
            value[MS_BYTES..].copy_from_slice(&amount_minor.to_be_bytes());
            self.entries.insert(&this_entry[..], &value[..])?;
            self.by_time.insert(&by_time_key(&prefix, at_ms, entry)[..], ())?;
            row.totals.amount_minor += i128::from(amount_minor);
            row.totals.count += 1;
            let forget_at_ms = at_ms.saturating_add(window_ms);
            if forget_at_ms > row.forget_at_ms {
                if existing.is_some() {
                    self.idle.remove(&idle_key(row.forget_at_ms, key.as_bytes())[..])?;
                }
                row.forget_at_ms = forget_at_ms;
                self.idle.insert(&idle_key(forget_at_ms, key.as_bytes())[..], ())?;
            }
        }
        if existing != Some(row) {
            self.windows.insert(key.as_bytes(), &row.encode()[..])?;
        }
        Ok(row.totals)
    }

    /// See [`VelocityCounter::remove`]; answers the totals left.
    fn remove(&mut self, key: &str, entry: &[u8; ID_BYTES]) -> Result<WindowTotals, OperationError> {
        let Some(mut row) = self.row(key)? else { return Ok(WindowTotals::default()) };
        let prefix = prefix(key.as_bytes());
        let this_entry = entry_key(&prefix, entry);
        let stored = self.entries.get(&this_entry[..])?.map(|value| value.value().to_vec());
        let Some(stored) = stored else { return Ok(row.totals) };
        let (at_ms, amount_minor) = decode_entry(key, &stored)?;
        row.totals.amount_minor -= i128::from(amount_minor);
        row.totals.count = row
            .totals
            .count
            .checked_sub(1)
            .ok_or_else(|| OperationError::Corrupt(format!("`{key}` counts fewer entries than it holds")))?;
        self.entries.remove(&this_entry[..])?;
        self.by_time.remove(&by_time_key(&prefix, at_ms, entry)[..])?;
        self.windows.insert(key.as_bytes(), &row.encode()[..])?;
        Ok(row.totals)
    }
}

#[cfg(test)]
mod tests {
    use corridor_compliance::MemoryVelocityCounter;
    use redb::{ReadableDatabase, ReadableTableMetadata};

    use super::*;
    use crate::storage::contract_tests;

    fn temp_directory(name: &str) -> std::path::PathBuf {
        let directory = std::env::temp_dir().join(format!(
            "corridor-velocity-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7()
        ));
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    /// Opens the counter in `directory`, waiting for an earlier one's writer thread to let go of it.
    async fn reopen(directory: &Path) -> EmbeddedVelocityCounter {
        for _ in 0..100 {
            match EmbeddedVelocityCounter::open(directory) {
                Ok(counter) => return counter,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!("the velocity counter did not reopen");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_embedded_counter_meets_the_contract_across_reopening() {
        let directory = temp_directory("contract");
        let counter: Arc<dyn VelocityCounter> = Arc::new(EmbeddedVelocityCounter::open(&directory).unwrap());
        let reopen_directory = directory.clone();
        contract_tests::velocity_contract(counter, async move {
            Arc::new(reopen(&reopen_directory).await) as Arc<dyn VelocityCounter>
        })
        .await;
        std::fs::remove_dir_all(directory).unwrap();
    }

    /// The in-memory counter is the reference the others are held to (it is not durable: here
    /// "reopening" hands back the same counter).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_memory_counter_meets_the_contract_but_durability() {
        let counter: Arc<dyn VelocityCounter> = Arc::new(MemoryVelocityCounter::new());
        let same = Arc::clone(&counter);
        contract_tests::velocity_contract(counter, async move { same }).await;
    }

    /// Rows in (windows, entries, entries by time, idle index).
    fn rows(counter: &EmbeddedVelocityCounter) -> (u64, u64, u64, u64) {
        let transaction = counter.database.begin_read().unwrap();
        let windows = transaction.open_table(WINDOWS).unwrap().len().unwrap();
        let entries = transaction.open_table(ENTRIES).unwrap().len().unwrap();
        let by_time = transaction.open_table(ENTRIES_BY_TIME).unwrap().len().unwrap();
        let idle = transaction.open_table(IDLE).unwrap().len().unwrap();
        (windows, entries, by_time, idle)
    }

    #[tokio::test]
    async fn entries_and_idle_keys_leave_the_file_with_their_window() {
        let directory = temp_directory("forget");
        let counter = EmbeddedVelocityCounter::open(&directory).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let window = Duration::from_secs(10);
        for index in 0..40 {
            for _ in 0..2 {
                counter.add(&format!("velocity:idle-{index}"), PaymentId::generate(), 1, t0, window).await.unwrap();
            }
        }
        assert_eq!(rows(&counter), (40, 80, 80, 40));
        let kept = PaymentId::generate();
        counter.add("velocity:busy", kept, 5, t0 + Duration::from_secs(5), window).await.unwrap();
        counter.remove("velocity:busy", PaymentId::generate()).await.unwrap();
        assert_eq!(rows(&counter), (41, 81, 81, 41), "forgotten before its window passed");

        // Ten seconds on, one add forgets a bounded number of idle keys, oldest first.
        let later = t0 + Duration::from_secs(10);
        counter.add("velocity:busy", PaymentId::generate(), 5, later, window).await.unwrap();
        let forgotten = u64::try_from(IDLE_KEYS_FORGOTTEN_PER_ADD_MAX).unwrap();
        assert_eq!(rows(&counter), (41 - forgotten, 82 - 2 * forgotten, 82 - 2 * forgotten, 41 - forgotten));
        for _ in 0..2 {
            counter.add("velocity:busy", PaymentId::generate(), 5, later, window).await.unwrap();
        }
        assert_eq!(rows(&counter), (1, 4, 4, 1), "the backlog did not drain");

        // The busy key's own entries leave with its window; a removal takes one out of every table.
        let totals = counter.add("velocity:busy", PaymentId::generate(), 5, t0 + Duration::from_secs(15), window);
        assert_eq!(totals.await.unwrap(), WindowTotals { amount_minor: 20, count: 4 });
        assert_eq!(rows(&counter), (1, 4, 4, 1), "the entry of t0 + 5 s outlived its window");
        counter.remove("velocity:busy", kept).await.unwrap();
        assert_eq!(rows(&counter), (1, 4, 4, 1), "removing a forgotten entry changed something");
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn totals_rows_round_trip() {
        let row = WindowRow {
            totals: WindowTotals { amount_minor: i128::from(i64::MAX) * 3, count: 7 },
            forget_at_ms: 1_800_000_000_000,
        };
        assert_eq!(WindowRow::decode("k", &row.encode()).ok(), Some(row));
        assert!(WindowRow::decode("k", &[0; 31]).is_err());
        assert!(decode_entry("k", &[0; 15]).is_err());
    }
}
