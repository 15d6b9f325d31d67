//! The authorization matrix: every role against every call, as itself and as someone else.

use corridor_schemas::{Jurisdiction, ParticipantId};
use tonic::Code;

use super::{Call, Caller, authorize};
use crate::tls::{PartyIdentity, Role};

fn id(text: &str) -> ParticipantId {
    ParticipantId::new(text).unwrap()
}

fn jurisdiction(code: &str) -> Jurisdiction {
    Jurisdiction::new(code).unwrap()
}

/// A caller of `role` named `me`, of jurisdiction HK where the role has one.
fn caller(role: Role) -> Caller {
    let jurisdiction = role.has_jurisdiction().then(|| jurisdiction("HK"));
    Caller::Party(std::sync::Arc::new(PartyIdentity::new(role, "me", jurisdiction).unwrap()))
}

/// Every call, naming the caller (`me`) or someone else, and the roles allowed each.
#[test]
fn every_role_may_make_exactly_its_own_calls() {
    let me = id("me");
    let other = id("other");
    let hk = jurisdiction("HK");
    let ae = jurisdiction("AE");
    let payers = [Role::Participant, Role::LiquidityProvider];
    let readers = [Role::Participant, Role::LiquidityProvider, Role::Operator];
    let table: Vec<(&str, Call<'_>, &[Role])> = vec![
        ("SubmitPayment as itself", Call::SubmitPayment { participant: &me }, &payers),
        ("SubmitPayment as another", Call::SubmitPayment { participant: &other }, &[]),
        ("QuoteFx as itself", Call::QuoteFx { participant: &me }, &payers),
        ("QuoteFx as another", Call::QuoteFx { participant: &other }, &[]),
        ("GetPayment of its own", Call::ReadPayment { owner: &me }, &readers),
        ("GetPayment of another's", Call::ReadPayment { owner: &other }, &[Role::Operator]),
        ("ListPayments of its own", Call::ListPayments { participant: Some(&me) }, &readers),
        ("ListPayments of another's", Call::ListPayments { participant: Some(&other) }, &[Role::Operator]),
        ("ListPayments of everyone's", Call::ListPayments { participant: None }, &[Role::Operator]),
        ("PublishRates as itself", Call::PublishRates { provider: &me }, &[Role::LiquidityProvider]),
        ("PublishRates as another", Call::PublishRates { provider: &other }, &[]),
        ("GetRates", Call::GetRates, &Role::ALL),
        ("ReviewHeld as itself", Call::ReviewHeld { officer: &me, jurisdiction: &hk }, &[Role::Officer]),
        ("ReviewHeld, other jurisdiction", Call::ReviewHeld { officer: &me, jurisdiction: &ae }, &[]),
        ("ReviewHeld as another", Call::ReviewHeld { officer: &other, jurisdiction: &hk }, &[]),
        ("ReadFeed as itself", Call::ReadFeed { regulator: &me, jurisdiction: &hk }, &[Role::Regulator]),
        ("ReadFeed, other jurisdiction", Call::ReadFeed { regulator: &me, jurisdiction: &ae }, &[]),
        ("ReadFeed as another", Call::ReadFeed { regulator: &other, jurisdiction: &hk }, &[]),
        ("TransactionCoordinator as itself", Call::Coordinate { ledger: "me" }, &[Role::LedgerNode]),
        ("TransactionCoordinator as another", Call::Coordinate { ledger: "e-hkd" }, &[]),
        ("OperatorService", Call::Administer, &[Role::Operator]),
        ("LedgerAdapter", Call::LedgerProtocol, &[Role::Router]),
    ];
    let mut wrong = Vec::new();
    for (name, call, allowed) in &table {
        for role in Role::ALL {
            let result = authorize(&caller(role), *call);
            let expected = allowed.contains(&role);
            match (&result, expected) {
                (Ok(()), true) => {}
                (Err(status), false) if status.code() == Code::PermissionDenied => {
                    assert!(status.message().contains("corridor://"), "{name}: {}", status.message());
                }
                _ => wrong.push(format!("{name} by {role}: {result:?}, expected allowed = {expected}")),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_plain_text_caller_is_left_to_the_network_rules() {
    let other = id("other");
    for call in [Call::SubmitPayment { participant: &other }, Call::Administer, Call::LedgerProtocol] {
        assert!(authorize(&Caller::InsecureDev, call).is_ok());
    }
}

#[test]
fn a_denial_names_the_certificate_and_the_claimed_id() {
    let other = id("bank-b");
    let status = authorize(&caller(Role::Participant), Call::SubmitPayment { participant: &other }).unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(
        status.message(),
        "corridor://participant/me may not submit payments (the request names `bank-b`, the certificate `me`)"
    );
    let me = id("me");
    let ae = jurisdiction("AE");
    let status = authorize(&caller(Role::Regulator), Call::ReadFeed { regulator: &me, jurisdiction: &ae }).unwrap_err();
    assert!(status.message().contains("configured for AE, the certificate names HK"), "{}", status.message());
}

#[test]
fn a_request_without_a_peer_is_unauthenticated() {
    let status = Caller::of(&tonic::Request::new(())).unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}
