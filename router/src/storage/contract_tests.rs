//! The storage contract every backend must meet, as functions over the traits; each backend's
//! tests call them with a fresh store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_compliance::feed::{
    FeedEntry, FeedHash, FeedKind, FeedRecord, FeedSigner, LINE_BYTES_MAX, export_lines, parse_lines, verify,
};
use corridor_compliance::velocity::{self, CounterError, VelocityCounter, WindowTotals};
use corridor_compliance::{self as compliance, ComplianceHook, VelocityHook, VelocityLimit, VelocityScope};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Address, Currency, IdempotencyKey, Jurisdiction, Money, ParticipantId, PaymentId, QuoteId};

use super::{Decision, FeedStore, Journal, JournalEntry, KeyClaim, KeyStore, PaymentStore, QuoteStore, StorageError};

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
    // This router stops: what it began is anyone's to complete.
    journal.release().await.unwrap();
    drop(journal);

    let reopened = reopen.await;
    let unfinished = reopened.unfinished().await.unwrap();
    let found: Vec<(String, Option<Decision>)> =
        unfinished.iter().map(|entry| (entry.payment.payment_id.clone(), entry.decision)).collect();
    assert_eq!(found, [(first.payment_id.clone(), Some(Decision::Commit)), (second.payment_id.clone(), None)]);
    assert!(reopened.contains(first_id).await.unwrap());
    assert!(reopened.contains(never_begun).await.unwrap(), "a bare decision is journaled too");
    assert!(!reopened.contains(PaymentId::generate()).await.unwrap());
    // The earlier run's entries are taken over, oldest first, each once.
    let ids = |entries: Vec<JournalEntry>| -> Vec<String> {
        entries.into_iter().map(|entry| entry.payment.payment_id).collect()
    };
    assert_eq!(ids(reopened.take_over(1).await.unwrap()), vec![first.payment_id.clone()]);
    let rest = reopened.take_over(10).await.unwrap();
    assert_eq!(rest.iter().map(|entry| entry.decision).collect::<Vec<_>>(), [None]);
    assert_eq!(ids(rest), vec![second.payment_id.clone()]);
    assert!(reopened.take_over(10).await.unwrap().is_empty(), "an entry was taken over twice");
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

/// Velocity counters: the window slides with `at` (an entry added at `t` counts while
/// `at − t < window`), adds are idempotent per entry, removals take an entry back, keys are
/// independent, bad keys are refused, entries survive `reopen`, a short window expires on the real
/// clock; and through the hook, of 32 concurrent payments against a count limit of 10 — and of 32
/// against an amount limit that fits 10 — exactly 10 pass, and the denied ones are taken back out.
/// Keys are new on every run, so runs against a shared Redis never meet.
pub async fn velocity_contract(
    counter: Arc<dyn VelocityCounter>,
    reopen: impl std::future::Future<Output = Arc<dyn VelocityCounter>>,
) {
    let run = PaymentId::generate();
    let key = format!("velocity:HK:wallet:e-hkd/{run}:HKD:60000");
    let other_key = format!("velocity:HK:participant:{run}:HKD:60000");
    let window = Duration::from_secs(60);
    let t0 = SystemTime::now();
    let at = |seconds: u64| t0 + Duration::from_secs(seconds);
    let totals = |amount_minor: i128, count: u64| WindowTotals { amount_minor, count };
    let ids: Vec<PaymentId> = (0..4).map(|_| PaymentId::generate()).collect();
    // (entry, amount, at, totals afterwards)
    let steps = [
        (0, 100, 0, totals(100, 1)),
        (1, 250, 10, totals(350, 2)),
        (0, 999, 20, totals(350, 2)), // the same entry again: neither its amount nor its time changes
        (2, 5, 59, totals(355, 3)),
        (3, 1, 60, totals(256, 3)), // entry 0, added at 0, has left the window
        (1, 250, 69, totals(256, 3)),
        (0, 7, 70, totals(13, 3)), // entry 1 left at 70; entry 0 counts again, anew
    ];
    for (index, (entry, amount_minor, seconds, expected)) in steps.into_iter().enumerate() {
        let got = counter.add(&key, ids[entry], amount_minor, at(seconds), window).await.unwrap();
        assert_eq!(got, expected, "step {index}");
    }
    counter.remove(&key, ids[2]).await.unwrap();
    counter.remove(&key, ids[2]).await.unwrap();
    counter.remove(&other_key, ids[2]).await.unwrap();
    assert_eq!(counter.add(&key, ids[3], 1, at(71), window).await.unwrap(), totals(8, 2), "a removal did not count");
    assert_eq!(counter.add(&other_key, ids[2], 5, at(71), window).await.unwrap(), totals(5, 1), "keys are independent");
    let refused = counter.add(&format!("velocity:{{{run}}}"), ids[0], 1, at(71), window).await;
    assert!(matches!(refused, Err(CounterError::Refused { .. })), "{refused:?}");
    let refused = counter.add(&key, PaymentId::generate(), -1, at(71), window).await;
    assert!(matches!(refused, Err(CounterError::Refused { .. })), "{refused:?}");
    drop(counter);

    let counter = reopen.await;
    assert_eq!(counter.add(&key, ids[3], 1, at(72), window).await.unwrap(), totals(8, 2), "entries were lost");
    assert_eq!(counter.add(&other_key, ids[2], 5, at(72), window).await.unwrap(), totals(5, 1));

    // A short window on the real clock.
    let short_key = format!("velocity:HK:wallet:e-hkd/{run}-short:HKD:200");
    let short = Duration::from_millis(200);
    let first = counter.add(&short_key, PaymentId::generate(), 1, SystemTime::now(), short).await.unwrap();
    assert_eq!(first, totals(1, 1));
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = counter.add(&short_key, PaymentId::generate(), 2, SystemTime::now(), short).await.unwrap();
    assert_eq!(second, totals(2, 1), "an entry outlived its window");

    // 32 payments at once through the hook: a count limit of 10, then an amount limit that fits 10.
    let hkd = Currency::from_code("HKD").unwrap();
    let count_limit = VelocityLimit::new(VelocityScope::Wallet, hkd, window, None, Some(10)).unwrap();
    let amount_max = Money::parse("10.00", hkd).unwrap();
    let amount_limit = VelocityLimit::new(VelocityScope::Wallet, hkd, window, Some(amount_max), None).unwrap();
    for (limit, wallet, denial) in [
        (count_limit, format!("e-hkd/{run}-count"), "VELOCITY_COUNT_EXCEEDED"),
        (amount_limit, format!("e-hkd/{run}-amount"), "VELOCITY_AMOUNT_EXCEEDED"),
    ] {
        let hook = Arc::new(VelocityHook::new(limit, Arc::clone(&counter), velocity::system_clock()));
        let payer: Address = wallet.parse().unwrap();
        let mut attempts = Vec::new();
        for _ in 0..32 {
            let (hook, payer) = (Arc::clone(&hook), payer.clone());
            attempts.push(tokio::spawn(async move {
                let payment = VelocityPayment::new(payer, Money::parse("1.00", hkd).unwrap());
                hook.check(&payment.jurisdiction, &payment.subject()).await
            }));
        }
        let mut allowed = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                compliance::Decision::Allow => allowed += 1,
                compliance::Decision::Deny(reason) => assert_eq!(reason.code, denial, "{}", reason.message),
                held => panic!("a velocity limit held a payment: {held:?}"),
            }
        }
        assert_eq!(allowed, 10, "{denial}: {allowed} of 32 concurrent payments passed a limit that fits 10");
        let probe = VelocityPayment::new(payer, Money::parse("1.00", hkd).unwrap());
        let key = hook.key(&probe.jurisdiction, &probe.subject());
        let after = counter.add(&key, probe.id, 100, SystemTime::now(), window).await.unwrap();
        assert_eq!(after, totals(1_000 + 100, 11), "{denial}: the denied payments were not all taken back out");
        counter.remove(&key, probe.id).await.unwrap();
    }
}

/// One payment as the velocity hooks see it, owning what its `Subject` borrows.
struct VelocityPayment {
    id: PaymentId,
    jurisdiction: Jurisdiction,
    jurisdictions: Vec<Jurisdiction>,
    participant: ParticipantId,
    payer: Address,
    payee: Address,
    amounts: Vec<Money>,
}

impl VelocityPayment {
    fn new(payer: Address, amount: Money) -> Self {
        let jurisdiction = Jurisdiction::new("HK").unwrap();
        Self {
            id: PaymentId::generate(),
            jurisdictions: vec![jurisdiction.clone()],
            jurisdiction,
            participant: ParticipantId::new("bank-hk").unwrap(),
            payer,
            payee: "e-hkd/payee".parse().unwrap(),
            amounts: vec![amount],
        }
    }

    fn subject(&self) -> compliance::Subject<'_> {
        compliance::Subject {
            payment: self.id,
            participant: &self.participant,
            payer: &self.payer,
            payee: &self.payee,
            amounts: &self.amounts,
            jurisdictions: &self.jurisdictions,
            originator: None,
            beneficiary: None,
        }
    }
}

fn jurisdiction(code: &str) -> Jurisdiction {
    Jurisdiction::new(code).unwrap()
}

/// A feed entry about a new payment, its payment id made unique by `tag`.
pub fn feed_entry(kind: FeedKind, tag: &str) -> FeedEntry {
    FeedEntry {
        kind,
        payment_id: format!("{}-{tag}", PaymentId::generate()),
        participant: "bank-a".into(),
        payer: "e-hkd/alice".into(),
        payee: "e-thb/bob".into(),
        originator_name: Some("Alice \u{0} Ltd \u{1F600}".into()), // a NUL and a non-BMP character, to catch text handling
        originator_country: Some(jurisdiction("HK")),
        beneficiary_name: None,
        beneficiary_country: Some(jurisdiction("TH")),
        amounts: vec!["100.00 HKD".into(), "452.17 THB".into()],
        route: vec!["e-hkd".into(), "e-thb".into()],
        decisions: Vec::new(),
        status: (kind == FeedKind::Outcome).then(|| "SETTLED".into()),
        reason_code: None,
    }
}

/// Every record of `jurisdiction`, read in pages of 7 (to exercise paging).
pub async fn all_records(feed: &dyn FeedStore, jurisdiction: &Jurisdiction) -> Vec<FeedRecord> {
    let mut records: Vec<FeedRecord> = Vec::new();
    loop {
        let from_sequence = records.last().map_or(1, |last| last.sequence + 1);
        let page = feed.records(jurisdiction, from_sequence, 7).await.unwrap();
        assert!(page.len() <= 7, "a page longer than its limit");
        let done = page.len() < 7;
        records.extend(page);
        if done {
            return records;
        }
    }
}

/// Appends chain per jurisdiction from sequence 1, in the order given; records read back equal
/// what `append` returned; heads follow; an empty append appends nothing; all of it survives
/// `reopen`, and appending after reopening continues the chain.
pub async fn feed_contract(feed: Arc<dyn FeedStore>, reopen: impl std::future::Future<Output = Arc<dyn FeedStore>>) {
    let (hk, th) = (jurisdiction("HK"), jurisdiction("TH"));
    assert!(feed.heads().await.unwrap().is_empty());
    assert!(feed.records(&hk, 1, 10).await.unwrap().is_empty());
    let screening = feed_entry(FeedKind::Screening, "one");
    let outcome = FeedEntry { kind: FeedKind::Outcome, status: Some("SETTLED".into()), ..screening.clone() };
    let entries = vec![(hk.clone(), screening.clone()), (th.clone(), screening.clone()), (hk.clone(), outcome.clone())];
    let appended = feed.append(entries, 1_700_000_000_123).await.unwrap();
    let placed: Vec<(&str, u64)> = appended.iter().map(|r| (r.jurisdiction.as_str(), r.sequence)).collect();
    assert_eq!(placed, [("HK", 1), ("TH", 1), ("HK", 2)]);
    assert_eq!(appended[0].entry, screening);
    assert_eq!(appended[2].entry, outcome);
    assert_eq!(appended[0].previous_hash, FeedHash::GENESIS);
    assert_eq!(appended[1].previous_hash, FeedHash::GENESIS);
    assert_eq!(appended[2].previous_hash, appended[0].hash, "HK's second record is not chained to its first");
    for record in &appended {
        assert_eq!(record.hash, record.computed_hash());
        assert_eq!(record.recorded_at_ms, 1_700_000_000_123);
    }
    assert!(feed.append(Vec::new(), 1).await.unwrap().is_empty());

    let hk_records = vec![appended[0].clone(), appended[2].clone()];
    assert_eq!(feed.records(&hk, 1, 100).await.unwrap(), hk_records);
    assert_eq!(feed.records(&hk, 0, 100).await.unwrap(), hk_records);
    assert_eq!(feed.records(&hk, 2, 100).await.unwrap(), hk_records[1..]);
    assert_eq!(feed.records(&hk, 1, 1).await.unwrap(), hk_records[..1]);
    assert!(feed.records(&hk, 3, 100).await.unwrap().is_empty());
    assert!(feed.records(&hk, 1, 0).await.unwrap().is_empty());
    assert!(feed.records(&jurisdiction("AE"), 1, 100).await.unwrap().is_empty());
    let heads = vec![(hk.clone(), 2, appended[2].hash), (th.clone(), 1, appended[1].hash)];
    assert_eq!(feed.heads().await.unwrap(), heads);
    drop(feed);

    let reopened = reopen.await;
    assert_eq!(reopened.records(&hk, 1, 100).await.unwrap(), hk_records, "records did not survive reopening");
    assert_eq!(reopened.records(&th, 1, 100).await.unwrap(), [appended[1].clone()]);
    assert_eq!(reopened.heads().await.unwrap(), heads);
    let later = reopened.append(vec![(hk.clone(), feed_entry(FeedKind::Outcome, "two"))], 1_700_000_000_456).await;
    let later = later.unwrap();
    assert_eq!((later[0].sequence, later[0].previous_hash), (3, appended[2].hash), "the chain restarted");
}

/// Appends from 16 tasks at once (spread over `stores`: one store, or several sharing a database
/// as routers would), to the same two jurisdictions in both orders: each jurisdiction's chain
/// ends up with sequences 1..=N, every entry exactly once, stored as returned, and unforked; its
/// export verifies with the key returned, which signed the heads.
pub async fn feed_race_contract(stores: Vec<Arc<dyn FeedStore>>) -> FeedSigner {
    const TASKS: usize = 16;
    const APPENDS_PER_TASK: usize = 12;
    let (hk, th) = (jurisdiction("HK"), jurisdiction("TH"));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let feed = Arc::clone(&stores[task % stores.len()]);
        let (hk, th) = (hk.clone(), th.clone());
        tasks.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            for round in 0..APPENDS_PER_TASK {
                let entry = |which: &str| feed_entry(FeedKind::Screening, &format!("{task}-{round}-{which}"));
                // Both orders and both jurisdictions in one append: a backend that locks chains
                // in the order given would deadlock here.
                let entries = match (task + round) % 4 {
                    0 => vec![(hk.clone(), entry("a")), (th.clone(), entry("b"))],
                    1 => vec![(th.clone(), entry("a")), (hk.clone(), entry("b"))],
                    2 => vec![(hk.clone(), entry("a")), (hk.clone(), entry("b")), (th.clone(), entry("c"))],
                    _ => vec![(th.clone(), entry("a"))],
                };
                appended.extend(feed.append(entries, 1_700_000_000_000 + round as u64).await.unwrap());
            }
            appended
        }));
    }
    let mut appended = Vec::new();
    for task in tasks {
        appended.extend(task.await.unwrap());
    }
    let feed = &stores[0];
    for jurisdiction in [&hk, &th] {
        let stored = all_records(feed.as_ref(), jurisdiction).await;
        let mut ours: Vec<FeedRecord> =
            appended.iter().filter(|record| &record.jurisdiction == jurisdiction).cloned().collect();
        ours.sort_by_key(|record| record.sequence);
        let sequences: Vec<u64> = stored.iter().map(|record| record.sequence).collect();
        assert_eq!(sequences, (1..=ours.len() as u64).collect::<Vec<_>>(), "the chain of {jurisdiction} has gaps");
        assert_eq!(stored, ours, "what was stored for {jurisdiction} is not what append returned");
        let mut payments: Vec<&str> = stored.iter().map(|record| record.entry.payment_id.as_str()).collect();
        payments.sort_unstable();
        payments.dedup();
        assert_eq!(payments.len(), stored.len(), "an entry of {jurisdiction} was stored twice");
        for pair in stored.windows(2) {
            assert_eq!(
                pair[1].previous_hash, pair[0].hash,
                "the chain of {jurisdiction} forked at {}",
                pair[1].sequence
            );
        }
    }
    let (signer, _pkcs8) = FeedSigner::generate().unwrap();
    feed_verifies(feed, &signer).await;
    signer
}

/// Signs every head with `signer`, saves the checkpoints, and checks that each jurisdiction's
/// export verifies with that key alone and covers every record.
pub async fn feed_verifies(feed: &Arc<dyn FeedStore>, signer: &FeedSigner) {
    let heads = feed.heads().await.unwrap();
    assert!(!heads.is_empty());
    for (jurisdiction, sequence, hash) in heads {
        feed.save_checkpoint(&signer.sign(&jurisdiction, sequence, hash, 1_700_000_001_000)).await.unwrap();
        let records = all_records(feed.as_ref(), &jurisdiction).await;
        let checkpoints = feed.checkpoints(&jurisdiction).await.unwrap();
        let export = export_lines(&records, &checkpoints).unwrap();
        let report = verify(&parse_lines(&export).unwrap(), &[signer.public_key()])
            .unwrap_or_else(|error| panic!("the feed of {jurisdiction} does not verify: {error}"));
        assert_eq!(report.records, sequence);
        assert_eq!(report.last_checkpointed_sequence, Some(sequence));
        assert_eq!(report.records_after_last_checkpoint, 0);
    }
}

/// Checkpoints round trip exactly, in sequence order; one is kept per (jurisdiction, sequence,
/// key), the first; the latest is the highest sequence; an export with them verifies with both
/// keys.
pub async fn checkpoint_contract(feed: Arc<dyn FeedStore>) {
    let (hk, th) = (jurisdiction("HK"), jurisdiction("TH"));
    assert_eq!(feed.latest_checkpoint(&hk).await.unwrap(), None);
    let entries = (0..3).map(|index| (hk.clone(), feed_entry(FeedKind::Screening, &index.to_string()))).collect();
    let records = feed.append(entries, 5).await.unwrap();
    let (old_key, _) = FeedSigner::generate().unwrap();
    let (new_key, _) = FeedSigner::generate().unwrap();
    let at_3_new = new_key.sign(&hk, 3, records[2].hash, 30);
    let at_3_old = old_key.sign(&hk, 3, records[2].hash, 20);
    let at_1_old = old_key.sign(&hk, 1, records[0].hash, 10);
    for checkpoint in [&at_3_new, &at_3_old, &at_1_old] {
        feed.save_checkpoint(checkpoint).await.unwrap();
    }
    feed.save_checkpoint(&old_key.sign(&hk, 3, records[2].hash, 99)).await.unwrap();
    let mut at_3 = vec![at_3_old.clone(), at_3_new.clone()];
    at_3.sort_by_key(|checkpoint| checkpoint.key_id.to_string());
    let expected = [vec![at_1_old.clone()], at_3.clone()].concat();
    assert_eq!(feed.checkpoints(&hk).await.unwrap(), expected, "checkpoints are not kept once each, in order");
    assert!(feed.checkpoints(&th).await.unwrap().is_empty());
    assert_eq!(feed.latest_checkpoint(&hk).await.unwrap(), Some(at_3[1].clone()));
    assert_eq!(feed.latest_checkpoint(&th).await.unwrap(), None);
    let export = export_lines(&records, &expected).unwrap();
    let report = verify(&parse_lines(&export).unwrap(), &[old_key.public_key(), new_key.public_key()]).unwrap();
    assert_eq!((report.checkpoints_verified, report.last_checkpointed_sequence), (3, Some(3)));
}

/// An append with an entry the chain refuses (too large for an export line) is refused whole:
/// nothing of it is stored and the chain continues from where it was.
pub async fn feed_refusal_contract(feed: Arc<dyn FeedStore>) {
    let hk = jurisdiction("HK");
    let first = feed.append(vec![(hk.clone(), feed_entry(FeedKind::Screening, "kept"))], 1).await.unwrap();
    let huge = FeedEntry { originator_name: Some("x".repeat(LINE_BYTES_MAX)), ..feed_entry(FeedKind::Outcome, "huge") };
    let refused = feed
        .append(vec![(hk.clone(), feed_entry(FeedKind::Outcome, "fits")), (hk.clone(), huge)], 2)
        .await
        .unwrap_err();
    assert!(matches!(refused, StorageError::Refused(_)), "{refused}");
    assert_eq!(feed.records(&hk, 1, 10).await.unwrap(), first, "a refused append left records behind");
    assert_eq!(feed.heads().await.unwrap(), [(hk.clone(), 1, first[0].hash)]);
    let next = feed.append(vec![(hk.clone(), feed_entry(FeedKind::Outcome, "next"))], 3).await.unwrap();
    assert_eq!((next[0].sequence, next[0].previous_hash), (2, first[0].hash));
}

/// A receipt saved with its feed entries: both are stored; with an entry the chain refuses,
/// neither is (and the chain continues). Concurrent saves, grouped into one write by a backend
/// that groups them, each get their own records, in their own order, and every receipt.
pub async fn save_with_feed_contract<S: PaymentStore + FeedStore>(store: Arc<S>) {
    let hk = jurisdiction("HK");
    let cn = jurisdiction("CN");
    let receipt = payment("bank-a", wire::PaymentStatus::Settled);
    let entries = vec![
        (hk.clone(), feed_entry(FeedKind::Screening, "with-receipt")),
        (cn.clone(), feed_entry(FeedKind::Screening, "with-receipt")),
        (hk.clone(), feed_entry(FeedKind::Outcome, "with-receipt")),
    ];
    store.save_with_feed(&receipt, entries, 1).await.unwrap();
    let id: PaymentId = receipt.payment_id.parse().unwrap();
    assert_eq!(store.get(id).await.unwrap(), Some(receipt));
    assert_eq!(all_records(store.as_ref(), &hk).await.len(), 2);
    assert_eq!(all_records(store.as_ref(), &cn).await.len(), 1);

    let refused_receipt = payment("bank-a", wire::PaymentStatus::Settled);
    let huge = FeedEntry { originator_name: Some("x".repeat(LINE_BYTES_MAX)), ..feed_entry(FeedKind::Outcome, "huge") };
    let refused = store
        .save_with_feed(
            &refused_receipt,
            vec![(hk.clone(), feed_entry(FeedKind::Screening, "fits")), (hk.clone(), huge)],
            2,
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, StorageError::Refused(_)), "{refused}");
    assert_eq!(
        store.get(refused_receipt.payment_id.parse().unwrap()).await.unwrap(),
        None,
        "receipt saved without its feed"
    );
    assert_eq!(all_records(store.as_ref(), &hk).await.len(), 2, "a refused save left records behind");

    let saves = (0..40).map(|index| {
        let store = Arc::clone(&store);
        let hk = hk.clone();
        async move {
            let receipt = payment("bank-b", wire::PaymentStatus::Rejected);
            let name = format!("concurrent-{index}");
            let screening = feed_entry(FeedKind::Screening, &name);
            let outcome =
                FeedEntry { payment_id: screening.payment_id.clone(), ..feed_entry(FeedKind::Outcome, &name) };
            let entries = vec![(hk.clone(), screening), (hk, outcome)];
            store.save_with_feed(&receipt, entries, 10 + index).await.unwrap();
            receipt
        }
    });
    let receipts = futures::future::join_all(saves).await;
    for receipt in &receipts {
        assert_eq!(store.get(receipt.payment_id.parse().unwrap()).await.unwrap().as_ref(), Some(receipt));
    }
    let records = all_records(store.as_ref(), &hk).await;
    assert_eq!(records.len(), 2 + 2 * receipts.len());
    for pair in records[2..].chunks(2) {
        assert_eq!(pair[0].entry.payment_id, pair[1].entry.payment_id, "one save's records were split");
        assert_eq!((pair[0].entry.kind, pair[1].entry.kind), (FeedKind::Screening, FeedKind::Outcome));
    }
}

/// Beginning a payment in the journal also stores it as its pending receipt, in the same write.
pub async fn begin_saves_the_pending_receipt<S: Journal + PaymentStore>(store: Arc<S>) {
    let payment = payment("bank-a", wire::PaymentStatus::Pending);
    let id: PaymentId = payment.payment_id.parse().unwrap();
    store.begin(&payment).await.unwrap();
    assert_eq!(store.get(id).await.unwrap(), Some(payment.clone()));
    assert_eq!(store.pending().await.unwrap(), std::slice::from_ref(&payment));
    assert_eq!(store.unfinished().await.unwrap().len(), 1);
    let mut settled = payment;
    settled.status = wire::PaymentStatus::Settled as i32;
    store.save(&settled).await.unwrap();
    assert!(store.pending().await.unwrap().is_empty());
}
