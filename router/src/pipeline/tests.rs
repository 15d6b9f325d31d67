//! Admission: one participant's flood is refused at once and changes nothing, while another
//! participant's payments go through.

use corridor_schemas::{Currency, FixedSide, IdempotencyKey, Money, ParticipantId, PaymentInstruction};

use super::*;
use crate::config::{Config, StorageConfig};
use crate::network::Network;

const NETWORK: &str = r#"
[server]
participant_requests_per_s = 5
participant_burst = 5

[[ledgers]]
id = "e-hkd"
currency = "HKD"
jurisdiction = "HK"

[[participants]]
id = "bank-a"
role = "bank"
accounts = [{ address = "e-hkd/a.1", opening_balance = "1000.00" }, { address = "e-hkd/a.2" }]

[[participants]]
id = "bank-b"
role = "bank"
accounts = [{ address = "e-hkd/b.1", opening_balance = "1000.00" }, { address = "e-hkd/b.2" }]
"#;

fn pay(participant: &str, key: &str, payer: &str, payee: &str) -> PaymentInstruction {
    PaymentInstruction {
        participant: ParticipantId::new(participant).unwrap(),
        idempotency_key: IdempotencyKey::new(key).unwrap(),
        payer: payer.parse().unwrap(),
        payee: payee.parse().unwrap(),
        amount: Money::parse("1.00", Currency::from_code("HKD").unwrap()).unwrap(),
        fixed_side: FixedSide::Send,
        reference: String::new(),
        quote: None,
        originator: None,
        beneficiary: None,
        signed_at: None,
        signature: None,
    }
}

#[tokio::test]
async fn a_flood_from_one_participant_is_refused_at_once_and_others_go_through() {
    let mut config = Config::from_toml(NETWORK).unwrap();
    let data_dir = std::env::temp_dir().join(format!("corridor-admission-{}", uuid::Uuid::now_v7().simple()));
    config.storage = StorageConfig { data_dir, ..StorageConfig::default() };
    let storage = crate::open_storage(&config.storage).await.unwrap();
    let router = crate::router_over(
        Network::embedded(&config, "test").unwrap(),
        storage,
        &config,
        &crate::transport::ServerSecurity::InsecureDev,
    )
    .unwrap();

    let mut admitted = 0;
    let mut refused = 0;
    for index in 0..40 {
        match router.submit(pay("bank-a", &format!("a-{index}"), "e-hkd/a.1", "e-hkd/a.2")).await {
            Ok(_) => admitted += 1,
            Err(SubmitError::Overloaded(message)) => {
                assert!(message.contains("`bank-a` is above its rate of 5 requests/s"), "{message}");
                refused += 1;
            }
            Err(other) => panic!("{other}"),
        }
    }
    // The burst of 5, plus whatever the sustained rate refilled while the loop ran.
    assert!((5..=8).contains(&admitted), "{admitted} admitted");
    assert_eq!(admitted + refused, 40);
    // Refused requests left nothing: only the admitted payments are stored.
    let (stored, _) =
        router.storage().payments.list(Some(&ParticipantId::new("bank-a").unwrap()), None, 100).await.unwrap();
    assert_eq!(stored.len(), admitted);
    // The other participant is not affected.
    for index in 0..5 {
        let receipt = router.submit(pay("bank-b", &format!("b-{index}"), "e-hkd/b.1", "e-hkd/b.2")).await.unwrap();
        assert_eq!(receipt.status, wire::PaymentStatus::Settled as i32);
    }
}

fn key_pair(seed: u8) -> ring::signature::Ed25519KeyPair {
    ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn signed(
    mut instruction: PaymentInstruction,
    key: &ring::signature::Ed25519KeyPair,
    at: std::time::SystemTime,
) -> PaymentInstruction {
    instruction.signature = Some(corridor_schemas::signature::sign(&instruction, at, key).unwrap());
    instruction.signed_at = Some(at);
    instruction
}

#[tokio::test]
async fn a_participant_with_a_key_must_sign_and_forged_stale_or_altered_instructions_change_nothing() {
    let key = key_pair(7);
    let public = corridor_schemas::ParticipantKey::of(&key);
    let text = NETWORK.replace(
        "id = \"bank-a\"\nrole = \"bank\"",
        &format!("id = \"bank-a\"\nrole = \"bank\"\nsigning_key = \"{public}\""),
    );
    let mut config = Config::from_toml(&text).unwrap();
    config.server.participant_requests_per_s = 1_000;
    config.server.participant_burst = 1_000;
    let data_dir = std::env::temp_dir().join(format!("corridor-signed-{}", uuid::Uuid::now_v7().simple()));
    config.storage = StorageConfig { data_dir, ..StorageConfig::default() };
    let storage = crate::open_storage(&config.storage).await.unwrap();
    let router = crate::router_over(
        Network::embedded(&config, "test").unwrap(),
        storage,
        &config,
        &crate::transport::ServerSecurity::InsecureDev,
    )
    .unwrap();
    let now = std::time::SystemTime::now();
    let refused = |result: Result<wire::Payment, SubmitError>, words: &str| match result {
        Err(SubmitError::Unauthenticated(message)) => assert!(message.contains(words), "`{message}` lacks `{words}`"),
        other => panic!("{other:?}"),
    };

    refused(
        router.submit(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2")).await,
        "`signature` and `signed_at` are required",
    );
    refused(
        router.submit(signed(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2"), &key_pair(8), now)).await,
        "does not verify",
    );
    let mut altered = signed(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2"), &key, now);
    altered.amount = Money::parse("900.00", Currency::from_code("HKD").unwrap()).unwrap();
    refused(router.submit(altered).await, "does not verify");
    let stale = now - std::time::Duration::from_secs(301);
    refused(router.submit(signed(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2"), &key, stale)).await, "sign it again");
    // Nothing was stored and the key is still free.
    let bank_a = ParticipantId::new("bank-a").unwrap();
    assert!(router.storage().payments.list(Some(&bank_a), None, 10).await.unwrap().0.is_empty());

    let first = router.submit(signed(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2"), &key, now)).await.unwrap();
    assert_eq!(first.status, wire::PaymentStatus::Settled as i32);
    // A replay, and a retry signed again later, get the first outcome: one payment.
    let replay = router.submit(signed(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2"), &key, now)).await.unwrap();
    let later = now + std::time::Duration::from_secs(5);
    let resigned = router.submit(signed(pay("bank-a", "s-1", "e-hkd/a.1", "e-hkd/a.2"), &key, later)).await.unwrap();
    assert_eq!(
        (replay.payment_id.as_str(), resigned.payment_id.as_str()),
        (first.payment_id.as_str(), first.payment_id.as_str())
    );
    assert_eq!(router.storage().payments.list(Some(&bank_a), None, 10).await.unwrap().0.len(), 1);
    // A participant without a registered key is not asked for signatures (yet).
    let unsigned = router.submit(pay("bank-b", "u-1", "e-hkd/b.1", "e-hkd/b.2")).await.unwrap();
    assert_eq!(unsigned.status, wire::PaymentStatus::Settled as i32);
}
