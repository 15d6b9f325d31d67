//! The operation log that makes an [`InMemoryLedger`](super::InMemoryLedger) durable: an
//! append-only file of every state change, replayed at open.
//!
//! Format: a sequence of records, each `length (u32, little endian) | CRC-32 of the payload (u32,
//! little endian) | payload`, where the payload is one JSON-encoded [`Record`]. The first record
//! names the ledger and carries its opening balances, so a file can never be replayed into the
//! wrong ledger and the opening state is written in one piece (a crash while it is written leaves
//! an empty log, and the next start creates the ledger again).
//!
//! Group commit: callers append encoded records to a shared buffer under the ledger's lock (so the
//! file's order is the order in which changes were applied), and one writer thread writes whatever
//! has accumulated with one `write` and one `sync_data`, then publishes the sequence number that
//! is now durable. A caller returns only once its record, and every record before it, is durable.
//! The writer is an OS thread, not a tokio task, because `write` and `fsync` block.
//!
//! A failed write or fsync is not retried: after a failed fsync the kernel may have dropped the
//! dirty pages, so the file's content is unknown. The log turns failed, every later call of the
//! ledger is refused as unavailable, and the operator restarts the node, whose replay reads what
//! really reached the disk.
//!
//! This module does not compact or rotate the log; a long-lived node's log grows without bound
//! and its start-up replay grows with it. That is acceptable for a reference ledger and tests,
//! not for a production central bank (which runs the PostgreSQL ledger or its own).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use corridor_schemas::{AccountName, Currency, Jurisdiction, LedgerId};
use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::ledger::{LedgerError, Posting, Refusal, RefusalCode};

/// Largest record the log writes or reads. The biggest is the opening record
/// ([`OPENING_ACCOUNTS_MAX`] accounts of at most about 100 bytes each); a prepare is under 2 KiB.
/// One record, so a ledger is created whole or (torn, dropped at open) not at all.
pub const RECORD_BYTES_MAX: usize = 128 * 1024 * 1024;
/// Most accounts an opening record may carry, so it stays within [`RECORD_BYTES_MAX`]: a ledger
/// with a million wallets opens in one record (the size-scaling benchmark runs one).
pub const OPENING_ACCOUNTS_MAX: usize = 1_048_576;
/// Records appended but not yet durable, at most: a caller past this waits for the writer.
pub const RECORDS_PENDING_MAX: usize = 4_096;
/// Bytes of a record's header: its length and its checksum.
const RECORD_HEADER_BYTES: usize = 8;
/// The log format written in the opening record; a file of another format is refused.
pub(super) const FORMAT_VERSION: u32 = 1;

/// Why a log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LedgerLogError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is in use by another ledger (it is locked)")]
    InUse { path: PathBuf },
    #[error("{path} is corrupt at byte {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("{path} holds ledger {found}, not {expected}")]
    DifferentLedger { path: PathBuf, found: String, expected: String },
    #[error("opening balances: {0}")]
    OpeningBalances(String),
}

/// One state change of the ledger, as stored. Transaction ids are kept as text (payment ids, UUID
/// v7) and postings in a local shape, so the file format does not follow the domain types' derives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum Record {
    /// Always the first record: which ledger this is, and the state it opened with.
    Created {
        format: u32,
        ledger: LedgerId,
        currency: Currency,
        jurisdiction: Jurisdiction,
        /// Account and opening balance in minor units; zero opens an empty account.
        opening_balances: Vec<(AccountName, i64)>,
    },
    AccountOpened {
        account: AccountName,
    },
    Issued {
        account: AccountName,
        amount_minor: i64,
    },
    /// A prepare and its vote: no refusal means the ledger voted yes and holds the debits.
    Prepared {
        transaction: String,
        postings: Vec<PostingRecord>,
        prepared_at_unix_ns: u64,
        refusal: Option<RefusalRecord>,
    },
    Committed {
        transaction: String,
    },
    Aborted {
        transaction: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PostingRecord {
    pub account: AccountName,
    pub currency: Currency,
    pub amount_minor: i64,
}

impl From<&Posting> for PostingRecord {
    fn from(posting: &Posting) -> Self {
        Self { account: posting.account.clone(), currency: posting.currency, amount_minor: posting.amount_minor }
    }
}

impl From<&PostingRecord> for Posting {
    fn from(posting: &PostingRecord) -> Self {
        Self { account: posting.account.clone(), currency: posting.currency, amount_minor: posting.amount_minor }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefusalRecord {
    /// The stable code of [`RefusalCode::as_str`].
    pub code: String,
    pub message: String,
}

impl From<&Refusal> for RefusalRecord {
    fn from(refusal: &Refusal) -> Self {
        Self { code: refusal.code.as_str().to_owned(), message: refusal.message.clone() }
    }
}

impl TryFrom<&RefusalRecord> for Refusal {
    type Error = String;
    fn try_from(record: &RefusalRecord) -> Result<Self, Self::Error> {
        let code = [RefusalCode::InsufficientFunds, RefusalCode::UnknownAccount, RefusalCode::DeadlinePassed]
            .into_iter()
            .find(|code| code.as_str() == record.code)
            .ok_or_else(|| format!("unknown refusal code {}", record.code))?;
        Ok(Self { code, message: record.message.clone() })
    }
}

impl Record {
    pub(super) fn created(
        ledger: LedgerId,
        currency: Currency,
        jurisdiction: Jurisdiction,
        opening_balances: Vec<(AccountName, i64)>,
    ) -> Self {
        Self::Created { format: FORMAT_VERSION, ledger, currency, jurisdiction, opening_balances }
    }
}

/// Nanoseconds since the Unix epoch (saturating; u64 lasts until 2554): when a transaction was
/// prepared, which orders in-doubt transactions oldest first, before and after a restart alike.
pub(super) fn unix_ns(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
}

pub(super) fn from_unix_ns(unix_ns: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_ns)
}

/// CRC-32 (IEEE 802.3, the polynomial of zlib and PNG), table-driven. Enough to tell a torn or
/// damaged record from a good one; it is not a defence against deliberate tampering.
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc = CRC32_TABLE[usize::from((crc as u8) ^ byte)] ^ (crc >> 8);
    }
    !crc
}

const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut index = 0;
    while index < 256 {
        let mut crc = index as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
            bit += 1;
        }
        table[index] = crc;
        index += 1;
    }
    table
};

/// Frames one record: header, then payload. In a shared log (`tag`: the ledger's id) the payload
/// is the ledger's id, a newline, then the record.
pub(super) fn encode(tag: Option<&str>, record: &Record) -> Result<Vec<u8>, String> {
    let mut payload = Vec::new();
    if let Some(tag) = tag {
        payload.extend_from_slice(tag.as_bytes());
        payload.push(b'\n');
    }
    serde_json::to_writer(&mut payload, record).map_err(|error| format!("cannot encode a log record: {error}"))?;
    if payload.len() > RECORD_BYTES_MAX {
        return Err(format!("a log record of {} bytes exceeds {RECORD_BYTES_MAX}", payload.len()));
    }
    let length = u32::try_from(payload.len()).map_err(|_| "a log record is too long".to_owned())?;
    let mut framed = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    framed.extend_from_slice(&length.to_le_bytes());
    framed.extend_from_slice(&crc32(&payload).to_le_bytes());
    framed.extend_from_slice(&payload);
    Ok(framed)
}

/// What decoding a whole file found.
#[derive(Debug)]
pub(super) struct Decoded {
    /// Each good record with the offset it starts at, and its ledger's id in a shared log.
    pub records: Vec<(u64, Option<String>, Record)>,
    /// Bytes up to the end of the last good record; the rest, if any, is a torn tail.
    pub valid_bytes: u64,
}

/// Decodes a log. A damaged last record (short, or failing its checksum, or followed only by zero
/// bytes, which is how some file systems show a write that never reached the disk) is a torn tail
/// left by a crash mid-append, and is dropped. Damage anywhere else is corruption.
pub(super) fn decode(bytes: &[u8], tagged: bool) -> Result<Decoded, (u64, String)> {
    let offset_of = |offset: usize| u64::try_from(offset).unwrap_or(u64::MAX);
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let torn = Decoded { records: Vec::new(), valid_bytes: offset_of(offset) };
        let only_zeros_follow = rest.iter().all(|byte| *byte == 0);
        if rest.len() < RECORD_HEADER_BYTES || only_zeros_follow {
            return Ok(Decoded { records, ..torn });
        }
        let length = usize::try_from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]))
            .map_err(|_| (offset_of(offset), "record length does not fit in memory".to_owned()))?;
        let checksum = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if length == 0 || length > RECORD_BYTES_MAX {
            return Err((offset_of(offset), format!("record length {length} is not within 1..={RECORD_BYTES_MAX}")));
        }
        let end = RECORD_HEADER_BYTES + length;
        if rest.len() < end {
            return Ok(Decoded { records, ..torn });
        }
        let payload = &rest[RECORD_HEADER_BYTES..end];
        if crc32(payload) != checksum {
            if rest[end..].iter().all(|byte| *byte == 0) {
                return Ok(Decoded { records, ..torn });
            }
            return Err((offset_of(offset), "checksum mismatch in a record that is not the last".to_owned()));
        }
        let (tag, json) = match (tagged, payload.iter().position(|byte| *byte == b'\n')) {
            (false, _) => (None, payload),
            (true, Some(end)) if end > 0 => {
                let tag = std::str::from_utf8(&payload[..end])
                    .map_err(|_| (offset_of(offset), "a shared log record's ledger id is not UTF-8".to_owned()))?;
                (Some(tag.to_owned()), &payload[end + 1..])
            }
            (true, _) => return Err((offset_of(offset), "a shared log record names no ledger".to_owned())),
        };
        let record: Record = serde_json::from_slice(json)
            .map_err(|error| (offset_of(offset), format!("a record with a good checksum does not decode: {error}")))?;
        records.push((offset_of(offset), tag, record));
        offset += end;
    }
    Ok(Decoded { records, valid_bytes: offset_of(offset) })
}

/// How far the log has reached the disk, as the writer publishes it.
#[derive(Debug, Clone)]
enum Durability {
    /// Every record with a sequence number up to this one is durable.
    UpTo(u64),
    /// A write or fsync failed: nothing more will become durable.
    Failed(String),
}

/// Records waiting for the writer.
struct Pending {
    bytes: Vec<u8>,
    /// Sequence number of the last record appended (records are numbered from 1).
    appended_seq: u64,
    /// Set when the ledger is dropped: the writer drains what is left and stops.
    closed: bool,
}

struct Queue {
    pending: Mutex<Pending>,
    wakeup: Condvar,
    /// Write-and-fsync rounds so far: fewer than records appended when group commit works.
    syncs: AtomicU64,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned lock means a panic mid-append: an invariant broke, so stop loudly.
        self.pending.lock().expect("log queue lock poisoned by an earlier panic")
    }
}

/// A log opened and replayed: what the ledger keeps. Several ledgers may share one file and its
/// writer (`tag` then names this ledger in each of its records): one write and one fsync make
/// all their records durable, however many ledgers there are.
pub(super) struct OperationLog {
    writer: Arc<LogWriter>,
    tag: Option<String>,
}

/// The file, its queue and its writer thread; stopped when the last ledger using it is dropped.
pub(super) struct LogWriter {
    path: PathBuf,
    queue: Arc<Queue>,
    durable: watch::Receiver<Durability>,
    permits: Arc<Semaphore>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// The file and its records, read at open, before the writer starts.
pub(super) struct OpenedFile {
    pub file: File,
    pub records: Vec<(u64, Record)>,
    pub created: bool,
    pub torn_tail_bytes: u64,
}

/// Opens (creating if absent) and locks a log file, decodes it (`tagged`: a shared log) and drops
/// a torn tail: what both kinds of log do first.
fn open_and_decode(path: &Path, tagged: bool) -> Result<(File, Decoded, u64), LedgerLogError> {
    let io = |source| LedgerLogError::Io { path: path.to_owned(), source };
    let existed = path.exists();
    let mut file = OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io)?;
    // Two writers appending to one file would interleave records; the lock is released when the
    // file is closed, which includes the process dying.
    file.try_lock().map_err(|error| match error {
        std::fs::TryLockError::WouldBlock => LedgerLogError::InUse { path: path.to_owned() },
        std::fs::TryLockError::Error(source) => io(source),
    })?;
    if !existed {
        sync_parent_directory(path).map_err(io)?;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io)?;
    let decoded = decode(&bytes, tagged).map_err(|(offset, reason)| LedgerLogError::Corrupt {
        path: path.to_owned(),
        offset,
        reason,
    })?;
    let file_bytes = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    let torn_tail_bytes = file_bytes - decoded.valid_bytes;
    if torn_tail_bytes > 0 {
        // Appending after a torn record would bury it mid-file, where it reads as corruption.
        file.set_len(decoded.valid_bytes).map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    Ok((file, decoded, torn_tail_bytes))
}

/// Opens (creating if absent) and locks a log file, decodes it, drops a torn tail, and writes the
/// opening record if the log is empty. Blocking: call it off the async workers.
pub(super) fn open_file(path: &Path, opening_record: &Record) -> Result<OpenedFile, LedgerLogError> {
    let io = |source| LedgerLogError::Io { path: path.to_owned(), source };
    let (mut file, decoded, torn_tail_bytes) = open_and_decode(path, false)?;
    let mut records: Vec<(u64, Record)> =
        decoded.records.into_iter().map(|(offset, _, record)| (offset, record)).collect();
    let created = records.is_empty();
    if created {
        let framed = encode(None, opening_record).map_err(LedgerLogError::OpeningBalances)?;
        file.write_all(&framed).map_err(io)?;
        file.sync_data().map_err(io)?;
        records.push((0, opening_record.clone()));
    }
    Ok(OpenedFile { file, records, created, torn_tail_bytes })
}

/// A shared log opened: each ledger's records, in order.
pub(super) struct OpenedGroup {
    pub file: File,
    /// Per ledger of `openings`, in their order: its records and whether it was created now.
    pub ledgers: Vec<(Vec<(u64, Record)>, bool)>,
    pub torn_tail_bytes: u64,
}

/// Opens (or creates) a log shared by several ledgers, each named by its tag (its id) with its
/// creation record. A ledger with no record yet is created (all of them in one write and one
/// fsync); a file holding records of a ledger not among `openings` is refused, since its state
/// would be silently dropped.
pub(super) fn open_group_file(path: &Path, openings: &[(String, Record)]) -> Result<OpenedGroup, LedgerLogError> {
    let io = |source| LedgerLogError::Io { path: path.to_owned(), source };
    let (mut file, decoded, torn_tail_bytes) = open_and_decode(path, true)?;
    let mut ledgers: Vec<(Vec<(u64, Record)>, bool)> = openings.iter().map(|_| (Vec::new(), false)).collect();
    for (offset, tag, record) in decoded.records {
        let tag = tag.unwrap_or_default();
        let index = openings.iter().position(|(opening_tag, _)| *opening_tag == tag).ok_or_else(|| {
            LedgerLogError::Corrupt {
                path: path.to_owned(),
                offset,
                reason: format!("the log holds ledger `{tag}`, which is not among the ledgers opened on it"),
            }
        })?;
        ledgers[index].0.push((offset, record));
    }
    let mut creation = Vec::new();
    for ((tag, opening), (records, created)) in openings.iter().zip(&mut ledgers) {
        if records.is_empty() {
            creation.extend(encode(Some(tag), opening).map_err(LedgerLogError::OpeningBalances)?);
            records.push((decoded.valid_bytes, opening.clone()));
            *created = true;
        }
    }
    if !creation.is_empty() {
        file.write_all(&creation).map_err(io)?;
        file.sync_data().map_err(io)?;
    }
    Ok(OpenedGroup { file, ledgers, torn_tail_bytes })
}

/// Makes a newly created file's directory entry durable, so the file itself survives a crash.
fn sync_parent_directory(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = path;
    }
    Ok(())
}

impl OperationLog {
    /// Starts the writer on an opened file whose records have been replayed: one ledger's log.
    pub(super) fn start(path: PathBuf, file: File) -> Result<Self, LedgerLogError> {
        Ok(Self { writer: Arc::new(LogWriter::start(path, file)?), tag: None })
    }

    /// A ledger's handle on a shared log, its records tagged with `tag`.
    pub(super) fn shared(writer: Arc<LogWriter>, tag: String) -> Self {
        Self { writer, tag: Some(tag) }
    }

    /// Frames a record for this log.
    pub(super) fn encode(&self, record: &Record) -> Result<Vec<u8>, String> {
        encode(self.tag.as_deref(), record)
    }

    pub(super) fn path(&self) -> &Path {
        &self.writer.path
    }

    pub(super) async fn permit(&self) -> Result<OwnedSemaphorePermit, LedgerError> {
        self.writer.permit().await
    }

    pub(super) fn check_healthy(&self) -> Result<(), LedgerError> {
        self.writer.check_healthy()
    }

    pub(super) fn append(&self, framed: &[u8]) -> u64 {
        self.writer.append(framed)
    }

    pub(super) fn appended_seq(&self) -> u64 {
        self.writer.appended_seq()
    }

    pub(super) fn syncs(&self) -> u64 {
        self.writer.syncs()
    }

    pub(super) async fn wait_durable(&self, seq: u64) -> Result<(), LedgerError> {
        self.writer.wait_durable(seq).await
    }
}

impl LogWriter {
    /// Starts the writer on an opened file whose records have been replayed.
    pub(super) fn start(path: PathBuf, file: File) -> Result<Self, LedgerLogError> {
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending { bytes: Vec::new(), appended_seq: 0, closed: false }),
            wakeup: Condvar::new(),
            syncs: AtomicU64::new(0),
        });
        let (publish, durable) = watch::channel(Durability::UpTo(0));
        let writer_queue = Arc::clone(&queue);
        let writer = std::thread::Builder::new()
            .name("ledger-log-writer".into())
            .spawn(move || write_records(file, &writer_queue, &publish))
            .map_err(|source| LedgerLogError::Io { path: path.clone(), source })?;
        Ok(Self { path, queue, durable, permits: Arc::new(Semaphore::new(RECORDS_PENDING_MAX)), writer: Some(writer) })
    }

    /// Waits for room in the queue of records not yet durable. Held until the caller's record
    /// is durable, so at most [`RECORDS_PENDING_MAX`] callers have records in flight.
    pub(super) async fn permit(&self) -> Result<OwnedSemaphorePermit, LedgerError> {
        Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| LedgerError::Unavailable("the ledger's log is closed".into()))
    }

    /// Refuses every call once the log has failed: the ledger's memory may hold changes that
    /// never reached the disk, and nobody may see them.
    pub(super) fn check_healthy(&self) -> Result<(), LedgerError> {
        match &*self.durable.borrow() {
            Durability::Failed(reason) => Err(unavailable_after_failure(reason)),
            Durability::UpTo(_) => Ok(()),
        }
    }

    /// Queues a framed record; returns its sequence number (counted over the whole file). Call
    /// with the ledger's lock held, so the log's order is the order in which changes were applied.
    pub(super) fn append(&self, framed: &[u8]) -> u64 {
        let mut pending = self.queue.lock();
        pending.bytes.extend_from_slice(framed);
        pending.appended_seq += 1;
        let seq = pending.appended_seq;
        drop(pending);
        self.queue.wakeup.notify_one();
        seq
    }

    /// The last record appended (of any ledger of the file). Read with the ledger's lock held, it
    /// covers every change the caller has seen.
    pub(super) fn appended_seq(&self) -> u64 {
        self.queue.lock().appended_seq
    }

    /// Write-and-fsync rounds the writer has completed.
    pub(super) fn syncs(&self) -> u64 {
        self.queue.syncs.load(Ordering::Relaxed)
    }

    /// Returns once every record up to `seq` is durable.
    pub(super) async fn wait_durable(&self, seq: u64) -> Result<(), LedgerError> {
        let mut durable = self.durable.clone();
        let reached = durable
            .wait_for(|durability| match durability {
                Durability::UpTo(durable_seq) => *durable_seq >= seq,
                Durability::Failed(_) => true,
            })
            .await
            .map_err(|_| LedgerError::Unavailable("the ledger's log writer stopped".into()))?;
        match &*reached {
            Durability::UpTo(_) => Ok(()),
            Durability::Failed(reason) => Err(unavailable_after_failure(reason)),
        }
    }
}

fn unavailable_after_failure(reason: &str) -> LedgerError {
    LedgerError::Unavailable(format!("the ledger's log failed ({reason}); restart the ledger node to recover"))
}

impl Drop for LogWriter {
    /// Lets the writer drain what is queued and close the file (releasing its lock), so the same
    /// file can be opened again as soon as this returns. Blocks for at most one write and fsync.
    fn drop(&mut self) {
        self.queue.lock().closed = true;
        self.queue.wakeup.notify_all();
        if let Some(writer) = self.writer.take() {
            let _writer_outcome = writer.join();
        }
    }
}

/// The writer thread: takes everything queued, writes it with one call, makes it durable with one
/// `sync_data`, publishes how far it got. Ends when the ledger is closed and the queue drained, or
/// at the first failure.
fn write_records(mut file: File, queue: &Queue, publish: &watch::Sender<Durability>) {
    loop {
        let (bytes, seq) = {
            let mut pending = queue.lock();
            while pending.bytes.is_empty() && !pending.closed {
                pending = queue.wakeup.wait(pending).expect("log queue lock poisoned by an earlier panic");
            }
            if pending.bytes.is_empty() {
                return;
            }
            (std::mem::take(&mut pending.bytes), pending.appended_seq)
        };
        if let Err(error) = file.write_all(&bytes).and_then(|()| file.sync_data()) {
            tracing::error!(%error, "the ledger's log could not be written; refusing every call from now on");
            publish.send_replace(Durability::Failed(error.to_string()));
            return;
        }
        queue.syncs.fetch_add(1, Ordering::Relaxed);
        publish.send_replace(Durability::UpTo(seq));
    }
}
