//! Signed checkpoints of a chain head: [`FeedSigner`] signs, [`verify_checkpoint`] checks.
//!
//! A checkpoint is the router's Ed25519 signature (RFC 8032, pure Ed25519, through ring) over the
//! message [`checkpoint_message`] builds from one jurisdiction's head: sequence and hash. Whoever
//! holds the router's public key can then check, offline, that every record up to that sequence
//! is the one the router wrote. This module does not decide when to sign (the caller signs
//! periodically), keep keys anywhere, or rotate them.

use std::fmt;

use corridor_schemas::Jurisdiction;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::feed::chain::FeedChain;
use crate::feed::hex::hex_newtype_serde;
use crate::feed::record::FeedHash;

/// The first line of every checkpoint message. A new message format gets a new tag.
pub const CHECKPOINT_MESSAGE_DOMAIN: &str = "corridor-feed-checkpoint/v1\n";

/// An Ed25519 public key (32 bytes; 64 lower-case hex digits as text).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedPublicKey([u8; 32]);

hex_newtype_serde!(FeedPublicKey, 32);

impl FeedPublicKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 bytes of SHA-256 of the 32 public-key bytes.
    pub fn key_id(&self) -> KeyId {
        let hash = FeedHash::sha256(&self.0);
        let mut id = [0u8; 8];
        id.copy_from_slice(&hash.as_bytes()[..8]);
        KeyId(id)
    }
}

impl fmt::Debug for FeedPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FeedPublicKey({self})")
    }
}

/// Names a signing key in a checkpoint (16 lower-case hex digits), so a verifier holding several
/// keys knows which one to try. It is not a secret and proves nothing by itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 8]);

hex_newtype_serde!(KeyId, 8);

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// An Ed25519 signature (64 bytes; 128 lower-case hex digits as text).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckpointSignature([u8; 64]);

hex_newtype_serde!(CheckpointSignature, 64);

impl CheckpointSignature {
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for CheckpointSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointSignature({self})")
    }
}

/// The router's signed statement that the record at `sequence` of `jurisdiction`'s feed has hash
/// `head_hash` (and so, through the chain, what every record before it is).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub jurisdiction: Jurisdiction,
    pub sequence: u64,
    pub head_hash: FeedHash,
    /// Unix milliseconds, the signer's clock.
    pub signed_at_ms: u64,
    pub key_id: KeyId,
    pub signature: CheckpointSignature,
}

impl Checkpoint {
    /// The bytes `signature` signs.
    pub fn message(&self) -> String {
        checkpoint_message(&self.key_id, &self.jurisdiction, self.sequence, &self.head_hash, self.signed_at_ms)
    }
}

/// The signed message, ASCII: the domain line, then key id, jurisdiction, sequence (decimal, no
/// leading zeros), head hash and signing time (decimal), each followed by `\n`.
pub fn checkpoint_message(
    key_id: &KeyId,
    jurisdiction: &Jurisdiction,
    sequence: u64,
    head_hash: &FeedHash,
    signed_at_ms: u64,
) -> String {
    format!("{CHECKPOINT_MESSAGE_DOMAIN}{key_id}\n{jurisdiction}\n{sequence}\n{head_hash}\n{signed_at_ms}\n")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no Ed25519 key could be generated: the system random source failed")]
    Generate,
    #[error("not an Ed25519 private key in PKCS#8 form: {reason}")]
    Rejected { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("signed by key {key_id}, not by the expected key {expected}")]
    OtherKey { key_id: KeyId, expected: KeyId },
    #[error("signature invalid: the checkpoint was altered or not signed by key {key_id}")]
    BadSignature { key_id: KeyId },
}

/// The router's checkpoint signing key.
pub struct FeedSigner {
    key_pair: Ed25519KeyPair,
    public_key: FeedPublicKey,
}

impl fmt::Debug for FeedSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeedSigner").field("key_id", &self.public_key.key_id()).finish_non_exhaustive()
    }
}

impl FeedSigner {
    /// A new key from the system's random source, and its PKCS#8 v2 document (the private key:
    /// store it as a secret).
    pub fn generate() -> Result<(Self, Vec<u8>), KeyError> {
        Self::generate_with(&SystemRandom::new())
    }

    /// A new key from `random`.
    pub fn generate_with(random: &dyn SecureRandom) -> Result<(Self, Vec<u8>), KeyError> {
        let document = Ed25519KeyPair::generate_pkcs8(random).map_err(|_| KeyError::Generate)?;
        let pkcs8 = document.as_ref().to_vec();
        Ok((Self::from_pkcs8(&pkcs8)?, pkcs8))
    }

    /// A key from a PKCS#8 document: v2 as [`FeedSigner::generate`] writes it, or v1 as
    /// `openssl genpkey -algorithm ed25519` does.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let key_pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|rejected| KeyError::Rejected { reason: rejected.to_string() })?;
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(key_pair.public_key().as_ref());
        Ok(Self { key_pair, public_key: FeedPublicKey(public_key) })
    }

    pub fn public_key(&self) -> FeedPublicKey {
        self.public_key
    }

    pub fn key_id(&self) -> KeyId {
        self.public_key.key_id()
    }

    /// Signs that the record at `sequence` of `jurisdiction`'s feed has hash `head_hash`.
    pub fn sign(
        &self,
        jurisdiction: &Jurisdiction,
        sequence: u64,
        head_hash: FeedHash,
        signed_at_ms: u64,
    ) -> Checkpoint {
        let key_id = self.key_id();
        let message = checkpoint_message(&key_id, jurisdiction, sequence, &head_hash, signed_at_ms);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(self.key_pair.sign(message.as_bytes()).as_ref());
        Checkpoint {
            jurisdiction: jurisdiction.clone(),
            sequence,
            head_hash,
            signed_at_ms,
            key_id,
            signature: CheckpointSignature(signature),
        }
    }

    /// Signs the chain's current head.
    pub fn sign_head(&self, chain: &FeedChain, signed_at_ms: u64) -> Checkpoint {
        let (sequence, head_hash) = chain.head();
        self.sign(chain.jurisdiction(), sequence, head_hash, signed_at_ms)
    }
}

/// Checks that `checkpoint` names `public_key` and carries its valid signature.
pub fn verify_checkpoint(checkpoint: &Checkpoint, public_key: &FeedPublicKey) -> Result<(), CheckpointError> {
    let expected = public_key.key_id();
    if checkpoint.key_id != expected {
        return Err(CheckpointError::OtherKey { key_id: checkpoint.key_id, expected });
    }
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key.as_bytes())
        .verify(checkpoint.message().as_bytes(), checkpoint.signature.as_bytes())
        .map_err(|_| CheckpointError::BadSignature { key_id: checkpoint.key_id })
}
