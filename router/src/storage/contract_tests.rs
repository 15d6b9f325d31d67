//! The storage contract every backend must meet, as functions over the traits; each backend's
//! tests call them with a fresh store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{IdempotencyKey, ParticipantId, PaymentId, QuoteId};

use super::{Decision, Journal, KeyClaim, KeyStore, PaymentStore, QuoteStore};

pub fn payment(participant: &str, status: wire::PaymentStatus) -> wire::Payment {
    wire::Payment {
        payment_id: PaymentId::generate().to_string(),
        participant_id: participant.into(),
        status: status as i32,
        ..wire::Payment::default()
    }
}

/// First writer wins, decisions survive `reopen`, finished entries keep their decision.
pub async fn journal_contract(journal: Arc<dyn Journal>, reopen: impl std::future::Future<Output = Arc<dyn Journal>>) {
    let first = payment("bank-a", wire::PaymentStatus::Pending);
    let second = payment("bank-a", wire::PaymentStatus::Pending);
    let first_id: PaymentId = first.payment_id.parse().unwrap();
    let second_id: PaymentId = second.payment_id.parse().unwrap();
    journal.begin(&first).await.unwrap();
    journal.begin(&second).await.unwrap();
    assert_eq!(journal.decide(first_id, Decision::Commit).await.unwrap(), Decision::Commit);
    assert_eq!(
        journal.decide(first_id, Decision::Abort).await.unwrap(),
        Decision::Commit,
        "a decision was overwritten"
    );
    let never_begun = PaymentId::generate();
    assert_eq!(journal.decide(never_begun, Decision::Abort).await.unwrap(), Decision::Abort);
    assert_eq!(journal.decide(never_begun, Decision::Commit).await.unwrap(), Decision::Abort);
    drop(journal);

    let reopened = reopen.await;
    let unfinished = reopened.unfinished().await.unwrap();
    let found: Vec<(String, Option<Decision>)> =
        unfinished.iter().map(|entry| (entry.payment.payment_id.clone(), entry.decision)).collect();
    assert_eq!(found, [(first.payment_id.clone(), Some(Decision::Commit)), (second.payment_id.clone(), None)]);
    reopened.finish(first_id).await.unwrap();
    assert_eq!(reopened.unfinished().await.unwrap().len(), 1);
    assert_eq!(
        reopened.decide(first_id, Decision::Abort).await.unwrap(),
        Decision::Commit,
        "finished forgot its decision"
    );
    assert_eq!(reopened.decide(second_id, Decision::Abort).await.unwrap(), Decision::Abort);
}

/// Pages by participant in id order, tracks pending receipts, replaces on save.
pub async fn payments_contract(store: Arc<dyn PaymentStore>) {
    let mut ours = Vec::new();
    let mut all_ids = Vec::new();
    for index in 0..7 {
        let participant = if index % 2 == 0 { "bank-a" } else { "bank-b" };
        let record = payment(participant, wire::PaymentStatus::Pending);
        store.save(&record).await.unwrap();
        all_ids.push(record.payment_id.clone());
        if participant == "bank-a" {
            ours.push(record.payment_id.clone());
        }
    }
    let bank_a = ParticipantId::new("bank-a").unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.list(Some(&bank_a), after, 3).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.into_iter().map(|p| p.payment_id));
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ours);
    let (all, next) = store.list(None, None, 100).await.unwrap();
    assert_eq!(all.iter().map(|p| p.payment_id.clone()).collect::<Vec<_>>(), all_ids);
    assert_eq!(next, None);
    assert_eq!(store.pending().await.unwrap().len(), 7);

    let mut settled = all[0].clone();
    settled.status = wire::PaymentStatus::Settled as i32;
    store.save(&settled).await.unwrap();
    assert_eq!(store.pending().await.unwrap().len(), 6);
    assert_eq!(store.get(settled.payment_id.parse().unwrap()).await.unwrap(), Some(settled));
    assert_eq!(store.get(PaymentId::generate()).await.unwrap(), None);
}

/// One claim per (participant, key), also when 50 race for it.
pub async fn keys_contract(keys: Arc<dyn KeyStore>) {
    let participant = ParticipantId::new("bank-a").unwrap();
    let key = IdempotencyKey::new(format!("invoice-{}", PaymentId::generate())).unwrap();
    let mut attempts = Vec::new();
    for index in 0..50u8 {
        let (keys, participant, key) = (Arc::clone(&keys), participant.clone(), key.clone());
        attempts.push(tokio::spawn(async move {
            let claim = KeyClaim { fingerprint: [index; 32], payment: PaymentId::generate() };
            (claim, keys.claim(&participant, &key, claim).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    let mut seen_existing = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            (claim, None) => winners.push(claim),
            (_, Some(existing)) => seen_existing.push(existing),
        }
    }
    assert_eq!(winners.len(), 1, "a key was claimed {} times", winners.len());
    assert!(seen_existing.iter().all(|existing| *existing == winners[0]));
    let other_participant = ParticipantId::new("bank-b").unwrap();
    let claim = KeyClaim { fingerprint: [0; 32], payment: PaymentId::generate() };
    assert_eq!(keys.claim(&other_participant, &key, claim).await.unwrap(), None, "keys are per participant");
}

/// Quotes round trip byte for byte; a quote is claimed once (16 racing claimers, one winner), a
/// repeated claim names the holder, the same payment's claim is idempotent; a claim of an unknown
/// quote leaves nothing behind; quotes and claims survive `reopen`.
pub async fn quote_contract(
    store: Arc<dyn QuoteStore>,
    reopen: impl std::future::Future<Output = Arc<dyn QuoteStore>>,
) {
    let expires_at = SystemTime::now() + Duration::from_secs(60);
    let quote = QuoteId::generate();
    let encoded: Vec<u8> = (0..=255).collect(); // every byte value, to catch text handling
    store.put(quote, &encoded, expires_at).await.unwrap();
    assert_eq!(store.get(quote).await.unwrap(), Some(encoded.clone()));

    let unknown = QuoteId::generate();
    assert_eq!(store.get(unknown).await.unwrap(), None);
    let late_claimer = PaymentId::generate();
    let unknown_claim = store.claim(unknown, late_claimer).await;
    assert!(!matches!(unknown_claim, Ok(Some(_))), "an unknown quote has a holder: {unknown_claim:?}");
    store.put(unknown, b"now known", expires_at).await.unwrap();
    let first_claimer = PaymentId::generate();
    assert_eq!(store.claim(unknown, first_claimer).await.unwrap(), None, "claiming an unknown quote kept a claim");

    let first = PaymentId::generate();
    let second = PaymentId::generate();
    assert_eq!(store.claim(quote, first).await.unwrap(), None);
    assert_eq!(store.claim(quote, second).await.unwrap(), Some(first), "a quote was claimed twice");
    assert_eq!(store.claim(quote, first).await.unwrap(), Some(first), "a claim is not idempotent");

    let raced = QuoteId::generate();
    store.put(raced, b"raced", expires_at).await.unwrap();
    let mut attempts = Vec::new();
    for _ in 0..16 {
        let store = Arc::clone(&store);
        attempts.push(tokio::spawn(async move {
            let payment = PaymentId::generate();
            (payment, store.claim(raced, payment).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    let mut holders = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            (payment, None) => winners.push(payment),
            (_, Some(holder)) => holders.push(holder),
        }
    }
    assert_eq!(winners.len(), 1, "a quote was claimed {} times", winners.len());
    assert!(holders.iter().all(|holder| *holder == winners[0]), "losers were told another holder");
    drop(store);

    let reopened = reopen.await;
    assert_eq!(reopened.get(quote).await.unwrap(), Some(encoded));
    assert_eq!(reopened.claim(quote, second).await.unwrap(), Some(first), "a claim did not survive reopening");
    assert_eq!(reopened.claim(raced, PaymentId::generate()).await.unwrap(), Some(winners[0]));
    assert_eq!(reopened.claim(unknown, late_claimer).await.unwrap(), Some(first_claimer));
}
