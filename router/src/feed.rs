//! The router's side of the compliance feed's checkpoints: its Ed25519 signing key on disk
//! ([`load_or_create_signer`]) and the checkpointer, which periodically signs every chain head
//! that has grown since its last checkpoint ([`checkpoint_once`], [`spawn_checkpointer`]).
//!
//! The key file holds the PKCS#8 document ring generates (or `openssl genpkey -algorithm
//! ed25519` writes). A missing file is created with mode 0600, atomically and never over an
//! existing one: the key is written to a temporary file beside it, synced, then hard-linked into
//! place, so a crash leaves either no key or the whole key, and routers starting together end up
//! with the same key. Routers that share a database should share the key file too (configure
//! `feed.signing_key_file`), so regulators trust one key.
//!
//! What this module deliberately does not do: chain or store records (the [`FeedStore`] does),
//! decide what an entry says (`feed_writer`), rotate keys, or refuse a key file others can read
//! (it warns: secrets mounted by orchestrators are often 0644, and refusing would stop the router
//! rather than protect the key).

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use corridor_compliance::feed::{FeedSigner, KeyError};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::storage::{FeedStore, StorageError, unix_ms};

/// The longest key file read. An Ed25519 PKCS#8 document is under 100 bytes; anything this large
/// is not a key.
pub const KEY_FILE_BYTES_MAX: u64 = 4_096;

/// Permissions of a key file this module creates: the owner reads and writes, nobody else.
const KEY_FILE_MODE: u32 = 0o600;

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read the key file: {0}")]
    Read(std::io::Error),
    #[error("the key file is longer than {KEY_FILE_BYTES_MAX} bytes: not a key")]
    TooLong,
    #[error("cannot create the key file: {0}")]
    Create(std::io::Error),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// The signer whose PKCS#8 key is in `path`, creating the file (mode 0600) with a new key if there
/// is none. An existing file is never overwritten, even one that holds no valid key.
pub fn load_or_create_signer(path: &Path) -> Result<FeedSigner, SigningKeyError> {
    // Twice at most: a file that appears between our read and our link is another router's new
    // key, and the second read finds it.
    for _ in 0..2 {
        match read_key_file(path) {
            Ok(pkcs8) => return Ok(FeedSigner::from_pkcs8(&pkcs8)?),
            Err(SigningKeyError::Read(error)) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        if let Some(signer) = create_key_file(path)? {
            tracing::info!(path = %path.display(), public_key = %signer.public_key(), "created a feed signing key");
            return Ok(signer);
        }
    }
    Ok(FeedSigner::from_pkcs8(&read_key_file(path)?)?)
}

fn read_key_file(path: &Path) -> Result<Vec<u8>, SigningKeyError> {
    let file = std::fs::File::open(path).map_err(SigningKeyError::Read)?;
    let mode = file.metadata().map_err(SigningKeyError::Read)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "the feed signing key is readable by others than its owner");
    }
    let mut pkcs8 = Vec::new();
    file.take(KEY_FILE_BYTES_MAX + 1).read_to_end(&mut pkcs8).map_err(SigningKeyError::Read)?;
    if u64::try_from(pkcs8.len()).unwrap_or(u64::MAX) > KEY_FILE_BYTES_MAX {
        return Err(SigningKeyError::TooLong);
    }
    Ok(pkcs8)
}

/// Writes a new key to `path` unless a file is there: `None` if one is (someone else's key won).
fn create_key_file(path: &Path) -> Result<Option<FeedSigner>, SigningKeyError> {
    let (signer, pkcs8) = FeedSigner::generate()?;
    let temporary = temporary_path(path);
    let written = write_new_file(&temporary, &pkcs8).and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    });
    // The temporary name is ours alone; failing to remove it leaves litter, not a wrong key.
    let _litter = std::fs::remove_file(&temporary);
    if !written.map_err(SigningKeyError::Create)? {
        return Ok(None);
    }
    // The new name is durable only once its directory is.
    if let Some(directory) = path.parent().filter(|directory| !directory.as_os_str().is_empty()) {
        std::fs::File::open(directory).and_then(|directory| directory.sync_all()).map_err(SigningKeyError::Create)?;
    }
    Ok(Some(signer))
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "feed-signing-key".into(), |name| name.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::now_v7().simple()))
}

fn write_new_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(KEY_FILE_MODE).open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// For every head whose sequence is beyond its jurisdiction's latest checkpoint (of any key), signs
/// it at `now_ms` and saves the checkpoint; returns how many it saved.
///
/// A head at or behind its latest checkpoint is not signed. Behind, or at it with another hash,
/// means the stored chain is not the one signed before (restored from an old backup, or altered):
/// that is logged as an error and left to a human, since signing it would vouch for the rewritten
/// chain.
pub async fn checkpoint_once(feed: &dyn FeedStore, signer: &FeedSigner, now_ms: u64) -> Result<usize, StorageError> {
    let mut saved = 0;
    for (jurisdiction, sequence, head_hash) in feed.heads().await? {
        if let Some(latest) = feed.latest_checkpoint(&jurisdiction).await? {
            if latest.sequence > sequence || (latest.sequence == sequence && latest.head_hash != head_hash) {
                tracing::error!(
                    %jurisdiction,
                    head_sequence = sequence,
                    %head_hash,
                    checkpoint_sequence = latest.sequence,
                    checkpoint_head_hash = %latest.head_hash,
                    "the feed's head disagrees with its latest checkpoint: not signing it"
                );
                continue;
            }
            if latest.sequence == sequence {
                continue;
            }
        }
        feed.save_checkpoint(&signer.sign(&jurisdiction, sequence, head_hash, now_ms)).await?;
        saved += 1;
    }
    Ok(saved)
}

/// Runs [`checkpoint_once`] now and then every `interval`, on the system clock, until the task is
/// aborted. Errors are logged and the next interval tries again.
pub fn spawn_checkpointer(feed: Arc<dyn FeedStore>, signer: Arc<FeedSigner>, interval: Duration) -> JoinHandle<()> {
    spawn_checkpointer_with_clock(feed, signer, interval, Arc::new(SystemClock))
}

/// [`spawn_checkpointer`] with the signing time read from `clock`. A zero `interval` counts as
/// one millisecond.
pub fn spawn_checkpointer_with_clock(
    feed: Arc<dyn FeedStore>,
    signer: Arc<FeedSigner>,
    interval: Duration,
    clock: Arc<dyn Clock>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match checkpoint_once(feed.as_ref(), &signer, unix_ms(clock.now())).await {
                Ok(0) => {}
                Ok(saved) => tracing::debug!(saved, "signed feed checkpoints"),
                Err(error) => tracing::warn!(%error, "feed checkpoints not signed; trying again next interval"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::time::Duration;

    use corridor_compliance::feed::{FeedHash, FeedKind, FeedSigner, verify_checkpoint};
    use corridor_schemas::Jurisdiction;

    use super::*;
    use crate::storage::contract_tests::feed_entry;
    use crate::storage::embedded::EmbeddedStore;

    fn temp_directory(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("corridor-feed-{name}-{}-{}", std::process::id(), uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    fn files_in(directory: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_key_file_is_created_once_with_mode_0600_and_reloaded() {
        let directory = temp_directory("key");
        let path = directory.join("feed-signing-key.pk8");
        let created = load_or_create_signer(&path).unwrap();
        let metadata = std::fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        let stored = std::fs::read(&path).unwrap();
        let reloaded = load_or_create_signer(&path).unwrap();
        assert_eq!(reloaded.public_key(), created.public_key(), "reloading made another key");
        assert_eq!(std::fs::read(&path).unwrap(), stored, "reloading rewrote the key file");
        assert_eq!(files_in(&directory), ["feed-signing-key.pk8"], "a temporary file was left behind");
        // What the file holds signs what the first signer's public key verifies.
        let checkpoint = reloaded.sign(&Jurisdiction::new("HK").unwrap(), 0, FeedHash::GENESIS, 1);
        verify_checkpoint(&checkpoint, &created.public_key()).unwrap();
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn routers_starting_together_end_up_with_one_key() {
        let directory = temp_directory("key-race");
        let path = directory.join("key.pk8");
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || load_or_create_signer(&path).unwrap().public_key())
            })
            .collect();
        let keys: Vec<_> = starts.into_iter().map(|start| start.join().unwrap()).collect();
        assert!(keys.iter().all(|key| *key == keys[0]), "routers started with different keys");
        assert_eq!(files_in(&directory), ["key.pk8"]);
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused_and_kept() {
        let directory = temp_directory("key-bad");
        let path = directory.join("key.pk8");
        std::fs::write(&path, b"not a key").unwrap();
        let error = load_or_create_signer(&path).unwrap_err();
        assert!(matches!(error, SigningKeyError::Key(KeyError::Rejected { .. })), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a key", "a file that is not a key was overwritten");
        std::fs::write(&path, vec![0; 5_000]).unwrap();
        assert!(matches!(load_or_create_signer(&path), Err(SigningKeyError::TooLong)));
        let missing_directory = directory.join("missing").join("key.pk8");
        assert!(matches!(load_or_create_signer(&missing_directory), Err(SigningKeyError::Create(_))));
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[test]
    fn a_key_written_by_openssl_style_pkcs8_v1_loads() {
        // RFC 8410's example private key (PKCS#8 v1, as `openssl genpkey -algorithm ed25519` writes).
        let pkcs8_v1: [u8; 48] = [
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, 0xd4, 0xee,
            0x72, 0xdb, 0xf9, 0x13, 0x58, 0x4a, 0xd5, 0xb6, 0xd8, 0xf1, 0xf7, 0x69, 0xf8, 0xad, 0x3a, 0xfe, 0x7c, 0x28,
            0xcb, 0xf1, 0xd4, 0xfb, 0xe0, 0x97, 0xa8, 0x8f, 0x44, 0x75, 0x58, 0x42,
        ];
        let directory = temp_directory("key-v1");
        let path = directory.join("key.pk8");
        std::fs::write(&path, pkcs8_v1).unwrap();
        let signer = load_or_create_signer(&path).unwrap();
        assert_eq!(signer.public_key().to_string(), "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1");
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn checkpoint_once_signs_only_heads_that_grew() {
        let directory = temp_directory("checkpointer");
        let store = EmbeddedStore::open(&directory).unwrap();
        let feed: &dyn FeedStore = &store;
        let (hk, th) = (Jurisdiction::new("HK").unwrap(), Jurisdiction::new("TH").unwrap());
        let (signer, _) = FeedSigner::generate().unwrap();
        assert_eq!(checkpoint_once(feed, &signer, 10).await.unwrap(), 0, "signed an empty feed");
        let entry = |tag: &str| feed_entry(FeedKind::Screening, tag);
        feed.append(vec![(hk.clone(), entry("1")), (th.clone(), entry("2")), (hk.clone(), entry("3"))], 1)
            .await
            .unwrap();
        assert_eq!(checkpoint_once(feed, &signer, 20).await.unwrap(), 2);
        assert_eq!(checkpoint_once(feed, &signer, 30).await.unwrap(), 0, "signed heads that did not grow");
        let grown = feed.append(vec![(hk.clone(), entry("4"))], 2).await.unwrap();
        assert_eq!(checkpoint_once(feed, &signer, 40).await.unwrap(), 1);

        let hk_checkpoints = feed.checkpoints(&hk).await.unwrap();
        let signed: Vec<(u64, u64)> = hk_checkpoints.iter().map(|c| (c.sequence, c.signed_at_ms)).collect();
        assert_eq!(signed, [(2, 20), (3, 40)]);
        assert_eq!(hk_checkpoints[1].head_hash, grown[0].hash);
        let th_checkpoints = feed.checkpoints(&th).await.unwrap();
        assert_eq!(th_checkpoints.iter().map(|c| (c.sequence, c.signed_at_ms)).collect::<Vec<_>>(), [(1, 20)]);
        for checkpoint in hk_checkpoints.iter().chain(&th_checkpoints) {
            verify_checkpoint(checkpoint, &signer.public_key()).unwrap();
        }
        drop(store);
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn a_head_that_disagrees_with_its_checkpoint_is_not_signed() {
        let directory = temp_directory("checkpointer-disagree");
        let store = EmbeddedStore::open(&directory).unwrap();
        let feed: &dyn FeedStore = &store;
        let hk = Jurisdiction::new("HK").unwrap();
        let (signer, _) = FeedSigner::generate().unwrap();
        let records = feed.append(vec![(hk.clone(), feed_entry(FeedKind::Outcome, "x"))], 1).await.unwrap();
        // A checkpoint of another chain at the same sequence, and one beyond the head.
        feed.save_checkpoint(&signer.sign(&hk, 1, records[0].previous_hash, 5)).await.unwrap();
        assert_eq!(checkpoint_once(feed, &signer, 10).await.unwrap(), 0);
        feed.save_checkpoint(&signer.sign(&hk, 2, records[0].hash, 6)).await.unwrap();
        feed.append(vec![(hk.clone(), feed_entry(FeedKind::Outcome, "y"))], 2).await.unwrap();
        assert_eq!(checkpoint_once(feed, &signer, 20).await.unwrap(), 0);
        drop(store);
        std::fs::remove_dir_all(directory).unwrap();
    }

    #[tokio::test]
    async fn the_spawned_checkpointer_signs_what_grows() {
        let directory = temp_directory("checkpointer-task");
        let feed: Arc<dyn FeedStore> = Arc::new(EmbeddedStore::open(&directory).unwrap());
        let hk = Jurisdiction::new("HK").unwrap();
        let (signer, _) = FeedSigner::generate().unwrap();
        let signer = Arc::new(signer);
        let task = spawn_checkpointer(Arc::clone(&feed), Arc::clone(&signer), Duration::from_millis(10));
        for (round, tag) in ["a", "b"].iter().enumerate() {
            let record = feed.append(vec![(hk.clone(), feed_entry(FeedKind::Outcome, tag))], 1).await.unwrap();
            let mut latest = None;
            for _ in 0..500 {
                latest = feed.latest_checkpoint(&hk).await.unwrap();
                if latest.as_ref().is_some_and(|latest| latest.sequence == record[0].sequence) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let latest = latest.unwrap_or_else(|| panic!("round {round}: no checkpoint was signed"));
            assert_eq!((latest.sequence, latest.head_hash), (record[0].sequence, record[0].hash));
            verify_checkpoint(&latest, &signer.public_key()).unwrap();
        }
        task.abort();
        let _aborted = task.await;
        drop(feed);
        std::fs::remove_dir_all(directory).unwrap();
    }
}
