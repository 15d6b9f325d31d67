//! Payments and idempotency keys, in memory.
//!
//! Payments are kept in id order (UUID v7, so creation order) for paging. An idempotency key maps,
//! per participant, to the instruction it first came with and its payment; a retry waits for that
//! payment to become final and gets the same record. Not built yet: durability across restarts
//! (the embedded store and Redis), and bounded retention.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use corridor_schemas::{IdempotencyKey, ParticipantId, PaymentId, PaymentInstruction};
use tokio::sync::watch;

use crate::payment::PaymentRecord;

struct KeyEntry {
    instruction: PaymentInstruction,
    payment: PaymentId,
    /// Becomes `true` when the payment is final.
    finished: watch::Receiver<bool>,
}

/// What claiming an idempotency key found.
pub enum Claim {
    /// The key is new: the caller owns the payment and must call [`PaymentStore::finish`].
    New(watch::Sender<bool>),
    /// The key was used with the same instruction: here is that payment, once final.
    Replay(Arc<PaymentRecord>),
    /// The key was used with a different instruction.
    Conflict(PaymentId),
}

#[derive(Default)]
pub struct PaymentStore {
    payments: Mutex<BTreeMap<PaymentId, Arc<PaymentRecord>>>,
    keys: Mutex<HashMap<(ParticipantId, IdempotencyKey), KeyEntry>>,
}

impl PaymentStore {
    fn payments(&self) -> std::sync::MutexGuard<'_, BTreeMap<PaymentId, Arc<PaymentRecord>>> {
        self.payments.lock().expect("payment store lock poisoned by an earlier panic")
    }

    /// Claims the record's idempotency key, storing the pending record if the key is new.
    pub async fn claim(&self, record: PaymentRecord) -> Claim {
        let key = (record.instruction.participant.clone(), record.instruction.idempotency_key.clone());
        let existing = {
            let mut keys = self.keys.lock().expect("idempotency lock poisoned by an earlier panic");
            match keys.get(&key) {
                Some(entry) if entry.instruction != record.instruction => return Claim::Conflict(entry.payment),
                Some(entry) => (entry.payment, entry.finished.clone()),
                None => {
                    let (sender, receiver) = watch::channel(false);
                    keys.insert(
                        key,
                        KeyEntry { instruction: record.instruction.clone(), payment: record.id, finished: receiver },
                    );
                    self.payments().insert(record.id, Arc::new(record));
                    return Claim::New(sender);
                }
            }
        };
        let (payment, mut finished) = existing;
        // The first submission may still be settling: wait for its outcome. If its task vanished
        // (the sender dropped), the record holds whatever state it reached.
        let _sender_gone = finished.wait_for(|done| *done).await;
        match self.get(payment) {
            Some(record) => Claim::Replay(record),
            None => Claim::Conflict(payment),
        }
    }

    /// Replaces a payment's record (its new state) without finishing it.
    pub fn update(&self, record: PaymentRecord) -> Arc<PaymentRecord> {
        let record = Arc::new(record);
        self.payments().insert(record.id, Arc::clone(&record));
        record
    }

    /// Stores the final record and wakes retries waiting on its key.
    pub fn finish(&self, record: PaymentRecord, finished: watch::Sender<bool>) -> Arc<PaymentRecord> {
        let record = self.update(record);
        let _no_waiters = finished.send(true);
        record
    }

    pub fn get(&self, id: PaymentId) -> Option<Arc<PaymentRecord>> {
        self.payments().get(&id).cloned()
    }

    /// Up to `limit` payments after `after` (exclusive), oldest first, optionally of one
    /// participant; and the id to continue from if more remain.
    pub fn list(
        &self,
        participant: Option<&ParticipantId>,
        after: Option<PaymentId>,
        limit: usize,
    ) -> (Vec<Arc<PaymentRecord>>, Option<PaymentId>) {
        let payments = self.payments();
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut matching = payments
            .range((start, Bound::Unbounded))
            .map(|(_, record)| record)
            .filter(|record| participant.is_none_or(|p| &record.instruction.participant == p));
        let page: Vec<_> = matching.by_ref().take(limit).cloned().collect();
        let more = matching.next().is_some();
        let next = if more { page.last().map(|record| record.id) } else { None };
        (page, next)
    }

    pub fn len(&self) -> usize {
        self.payments().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
