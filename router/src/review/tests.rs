//! The review queue end to end on an embedded router: hold, list, approve, reject, time out, and
//! several jurisdictions holding one payment.

use std::sync::Arc;
use std::time::Duration;

use corridor_compliance::{ComplianceHook, Decision, Reason, Subject};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{FixedSide, IdempotencyKey, Jurisdiction, Money, PaymentInstruction};

use super::*;
use crate::config::{Config, StorageConfig};
use crate::network::Network;

/// Holds every payment of at least `from`, in that amount's currency.
struct HoldLarge {
    from: Money,
}

#[async_trait::async_trait]
impl ComplianceHook for HoldLarge {
    fn name(&self) -> &'static str {
        "hold_large"
    }

    async fn check(&self, _: &Jurisdiction, subject: &Subject<'_>) -> Decision {
        let large = subject
            .amounts
            .iter()
            .any(|amount| amount.currency() == self.from.currency() && amount.minor_units() >= self.from.minor_units());
        if large {
            Decision::Hold(Reason { code: "LARGE_PAYMENT", message: format!("{} or more needs a look", self.from) })
        } else {
            Decision::Allow
        }
    }
}

const NETWORK: &str = r#"
[compliance]
review_timeout_ms = 3600000

[[compliance_officers]]
id = "officer-hk"
jurisdiction = "HK"

[[compliance_officers]]
id = "officer-cn"
jurisdiction = "CN"

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[ledgers]]
id = "e-cny"
currency = "CNY"
jurisdiction = "CN"

[[participants]]
id = "bank-hk"
role = "bank"
accounts = [{ address = "e-hkd/alice", opening_balance = "100000.00" }, { address = "e-hkd/bob" }]

[[participants]]
id = "bank-cn"
role = "bank"
accounts = [{ address = "e-cny/wei" }]

[[participants]]
id = "lp-one"
role = "liquidity_provider"
accounts = [{ address = "e-hkd/lp-one" }, { address = "e-cny/lp-one", opening_balance = "1000000.00" }]

[[rates]]
provider = "lp-one"
pair = "CNY/HKD"
bid = "1.17"
ask = "1.18"
"#;

async fn start(network_toml: &str, hold_in: &[(&str, &str)]) -> Arc<Router> {
    let mut config = Config::from_toml(network_toml).unwrap();
    let data_dir = std::env::temp_dir().join(format!("corridor-review-{}", uuid::Uuid::now_v7().simple()));
    config.storage = StorageConfig { data_dir, ..StorageConfig::default() };
    let storage = crate::open_storage(&config.storage).await.unwrap();
    let mut network = Network::embedded(&config, "test").unwrap();
    for (jurisdiction, from) in hold_in {
        let (amount, code) = from.split_once(' ').unwrap();
        let from = Money::parse(amount, corridor_schemas::Currency::from_code(code).unwrap()).unwrap();
        network.compliance.add_hook(Jurisdiction::new(*jurisdiction).unwrap(), Arc::new(HoldLarge { from }));
    }
    crate::router_over(network, storage, &config, &crate::transport::ServerSecurity::InsecureDev).unwrap()
}

fn pay(key: &str, payee: &str, amount: &str) -> PaymentInstruction {
    PaymentInstruction {
        participant: ParticipantId::new("bank-hk").unwrap(),
        idempotency_key: IdempotencyKey::new(key).unwrap(),
        payer: "e-hkd/alice".parse().unwrap(),
        payee: payee.parse().unwrap(),
        amount: Money::parse(amount, corridor_schemas::Currency::from_code("HKD").unwrap()).unwrap(),
        fixed_side: FixedSide::Send,
        reference: String::new(),
        quote: None,
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: None,
    }
}

fn officer(id: &str) -> ParticipantId {
    ParticipantId::new(id).unwrap()
}

fn status(payment: &wire::Payment) -> wire::PaymentStatus {
    wire::PaymentStatus::try_from(payment.status).unwrap()
}

fn id(payment: &wire::Payment) -> PaymentId {
    payment.payment_id.parse().unwrap()
}

fn balance(router: &Router, ledger: &str, account: &str) -> i64 {
    let ledger = router.network().embedded_ledgers.iter().find(|l| l.description().ledger.as_str() == ledger).unwrap();
    ledger.balances().into_iter().find(|(name, _)| name.as_str() == account).map_or(0, |(_, minor)| minor)
}

#[tokio::test]
async fn a_held_payment_waits_with_nothing_held_and_settles_when_approved() {
    let router = start(NETWORK, &[("HK", "5000.00 HKD")]).await;
    let held = router.submit(pay("k1", "e-hkd/bob", "6000.00")).await.unwrap();
    assert_eq!(status(&held), wire::PaymentStatus::Held);
    assert_eq!(held.reason.as_ref().unwrap().code, "HELD_FOR_REVIEW");
    assert!(held.legs.iter().all(|leg| leg.state == wire::LegState::NotSent as i32), "{held:?}");
    assert_eq!(balance(&router, "e-hkd", "alice"), 10_000_000, "nothing may move while held");
    // A retry of the key returns the held receipt; a small payment is not held.
    assert_eq!(router.submit(pay("k1", "e-hkd/bob", "6000.00")).await.unwrap().payment_id, held.payment_id);
    assert_eq!(status(&router.submit(pay("k2", "e-hkd/bob", "10.00")).await.unwrap()), wire::PaymentStatus::Settled);

    let queue = router.held_for(&officer("officer-hk")).await.unwrap();
    let queued: Vec<String> = queue.iter().map(|p| p.payment_id.clone()).collect();
    assert_eq!(queued, vec![held.payment_id.clone()]);
    assert!(router.held_for(&officer("officer-cn")).await.unwrap().is_empty());
    assert!(matches!(router.held_for(&officer("nobody")).await, Err(ReviewError::PermissionDenied(_))));
    match router.review(&officer("officer-cn"), id(&held), Verdict::Approve, "").await {
        Err(ReviewError::PermissionDenied(message)) => assert!(message.contains("waiting for: HK"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        router.review(&officer("officer-hk"), id(&held), Verdict::Approve, "bad\nnote").await,
        Err(ReviewError::InvalidArgument(_))
    ));

    let settled = router.review(&officer("officer-hk"), id(&held), Verdict::Approve, "known customer").await.unwrap();
    assert_eq!(status(&settled), wire::PaymentStatus::Settled, "{settled:?}");
    let review = settled.compliance.iter().find(|d| d.hook == REVIEW_HOOK).unwrap();
    assert_eq!(review.reason.as_ref().unwrap().message, "officer-hk: known customer");
    assert!(settled.compliance.iter().any(|d| d.hook == "hold_large"), "the hold stays on the record");
    assert_eq!(balance(&router, "e-hkd", "bob"), 601_000);
    // Decided once: a second verdict finds it settled.
    match router.review(&officer("officer-hk"), id(&held), Verdict::Reject, "").await {
        Err(ReviewError::NotHeld(message)) => assert!(message.contains("PAYMENT_STATUS_SETTLED"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(router.submit(pay("k1", "e-hkd/bob", "6000.00")).await.unwrap().status, settled.status);
}

#[tokio::test]
async fn a_rejected_or_timed_out_review_moves_nothing() {
    let router = start(NETWORK, &[("HK", "5000.00 HKD")]).await;
    let held = router.submit(pay("r1", "e-hkd/bob", "7000.00")).await.unwrap();
    let rejected =
        router.review(&officer("officer-hk"), id(&held), Verdict::Reject, "no source of funds").await.unwrap();
    assert_eq!(status(&rejected), wire::PaymentStatus::Rejected);
    assert_eq!(rejected.reason.as_ref().unwrap().code, "REVIEW_REJECTED");
    assert_eq!(balance(&router, "e-hkd", "alice"), 10_000_000);

    let router =
        start(&NETWORK.replace("review_timeout_ms = 3600000", "review_timeout_ms = 50"), &[("HK", "5000.00 HKD")])
            .await;
    let held = router.submit(pay("t1", "e-hkd/bob", "7000.00")).await.unwrap();
    assert_eq!(status(&held), wire::PaymentStatus::Held);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(router.expire_reviews().await.unwrap(), 1);
    let expired = router.storage().payments.get(id(&held)).await.unwrap().unwrap();
    assert_eq!(status(&expired), wire::PaymentStatus::Rejected);
    assert_eq!(expired.reason.as_ref().unwrap().code, "REVIEW_TIMEOUT");
    assert_eq!(router.expire_reviews().await.unwrap(), 0);
    assert_eq!(balance(&router, "e-hkd", "alice"), 10_000_000);
}

#[tokio::test]
async fn a_payment_held_by_two_jurisdictions_needs_both_approvals() {
    let router = start(NETWORK, &[("HK", "5000.00 HKD"), ("CN", "1000.00 CNY")]).await;
    let held = router.submit(pay("j1", "e-cny/wei", "6000.00")).await.unwrap();
    assert_eq!(status(&held), wire::PaymentStatus::Held, "{held:?}");
    let after_hk = router.review(&officer("officer-hk"), id(&held), Verdict::Approve, "").await.unwrap();
    assert_eq!(status(&after_hk), wire::PaymentStatus::Held, "CN has not decided yet");
    assert!(router.held_for(&officer("officer-hk")).await.unwrap().is_empty());
    assert_eq!(router.held_for(&officer("officer-cn")).await.unwrap().len(), 1);
    let settled = router.review(&officer("officer-cn"), id(&held), Verdict::Approve, "").await.unwrap();
    assert_eq!(status(&settled), wire::PaymentStatus::Settled, "{settled:?}");
    // 6000.00 ÷ 1.18 = 5084.745… → 5084.74 CNY
    assert_eq!(settled.receive_amount.as_ref().unwrap().amount, "5084.74");
    assert_eq!(settled.compliance.iter().filter(|d| d.hook == REVIEW_HOOK).count(), 2);
}

#[tokio::test]
async fn velocity_limits_count_what_settled_or_is_settling() {
    let limit = "jurisdiction = \"HK\"\ncurrency = \"HKD\"\nscope = \"wallet\"\nwindow_s = 3600\ncount_max = 3";
    let router = start(&format!("{NETWORK}\n[[velocity_limits]]\n{limit}\n"), &[("HK", "150000.00 HKD")]).await;
    let outcome = |payment: &wire::Payment| (status(payment), payment.reason.as_ref().map(|r| r.code.clone()));
    let refused = |code: &str| (wire::PaymentStatus::Rejected, Some(code.to_owned()));
    let settled = (wire::PaymentStatus::Settled, None);
    assert_eq!(outcome(&router.submit(pay("k1", "e-hkd/bob", "10.00")).await.unwrap()), settled);
    // Held: it is settling (counts); refused by the ledger: it never will (taken back).
    let held = router.submit(pay("k2", "e-hkd/bob", "150000.00")).await.unwrap();
    assert_eq!(status(&held), wire::PaymentStatus::Held);
    let broke = router.submit(pay("k3", "e-hkd/bob", "120000.00")).await.unwrap();
    assert_eq!(outcome(&broke), refused("INSUFFICIENT_FUNDS"));
    let third = router.submit(pay("k4", "e-hkd/bob", "1.00")).await.unwrap();
    assert_eq!(outcome(&third), settled, "the payment the ledger refused still counts");
    let fourth = router.submit(pay("k5", "e-hkd/bob", "1.00")).await.unwrap();
    assert_eq!(outcome(&fourth), refused("VELOCITY_COUNT_EXCEEDED"));
    // Rejected in review: taken back, so one more fits, and no more.
    router.review(&officer("officer-hk"), id(&held), Verdict::Reject, "no").await.unwrap();
    let after_review = router.submit(pay("k6", "e-hkd/bob", "1.00")).await.unwrap();
    assert_eq!(outcome(&after_review), settled, "the payment rejected in review still counts");
    let over = router.submit(pay("k7", "e-hkd/bob", "1.00")).await.unwrap();
    assert_eq!(outcome(&over), refused("VELOCITY_COUNT_EXCEEDED"));
}
