//! Rules about what a payment must carry and where it may go: the travel rule and closed
//! corridors.
//!
//! - [`TravelRule`]: above a jurisdiction's threshold, the originator's name and account and one
//!   of (postal address, national id, date and place of birth), and the beneficiary's name and
//!   account, must be present; otherwise the payment is denied (`TRAVEL_RULE_DATA_MISSING`) with
//!   every missing field named. An empty `account` stands for the payment's own payer or payee
//!   address, so an account is always present.
//! - [`CorridorRule`]: a jurisdiction refuses payments from it into named jurisdictions, or into it
//!   from named jurisdictions, wherever they appear on the route (transit included):
//!   `CORRIDOR_CLOSED`.
//!
//! These hooks judge form and geography only; whether a name is sanctioned is the sanctions hook's.

use corridor_schemas::{Jurisdiction, Money, Party};

use crate::pipeline::{ComplianceHook, Decision, Reason, Subject};

/// The travel rule of one jurisdiction: applies to payments whose amount in `threshold`'s
/// currency is above `threshold` (a payment with no amount in that currency is not in scope).
#[derive(Debug, Clone)]
pub struct TravelRule {
    threshold: Money,
}

impl TravelRule {
    pub const NAME: &'static str = "travel_rule";

    pub fn new(threshold: Money) -> Self {
        Self { threshold }
    }
}

/// The originator fields missing under the travel rule, by wire name.
fn originator_missing(party: Option<&Party>) -> Vec<&'static str> {
    let Some(party) = party else {
        return vec!["originator.name", "originator.address or national_id or date_of_birth and place_of_birth"];
    };
    let mut missing = Vec::new();
    if party.name.is_none() {
        missing.push("originator.name");
    }
    let born = party.date_of_birth.is_some() && party.place_of_birth.is_some();
    if party.address.is_none() && party.national_id.is_none() && !born {
        missing.push("originator.address or national_id or date_of_birth and place_of_birth");
    }
    missing
}

#[async_trait::async_trait]
impl ComplianceHook for TravelRule {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn check(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Decision {
        let in_scope = subject.amounts.iter().any(|amount| {
            amount.currency() == self.threshold.currency() && amount.minor_units() > self.threshold.minor_units()
        });
        if !in_scope {
            return Decision::Allow;
        }
        let mut missing = originator_missing(subject.originator);
        if subject.beneficiary.and_then(|party| party.name.as_ref()).is_none() {
            missing.push("beneficiary.name");
        }
        if missing.is_empty() {
            return Decision::Allow;
        }
        Decision::Deny(Reason {
            code: "TRAVEL_RULE_DATA_MISSING",
            message: format!(
                "{jurisdiction} requires originator and beneficiary data above {}; missing: {}",
                self.threshold,
                missing.join(", ")
            ),
        })
    }
}

/// Corridors a jurisdiction has closed.
#[derive(Debug, Clone, Default)]
pub struct CorridorRule {
    /// Payments from this jurisdiction may not go to (or through) these.
    pub closed_to: Vec<Jurisdiction>,
    /// Payments into this jurisdiction may not come from (or through) these.
    pub closed_from: Vec<Jurisdiction>,
}

impl CorridorRule {
    pub const NAME: &'static str = "corridor_rule";
}

#[async_trait::async_trait]
impl ComplianceHook for CorridorRule {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn check(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Decision {
        let route = subject.jurisdictions;
        let closed = |list: &[Jurisdiction], others: &[Jurisdiction]| others.iter().find(|j| list.contains(j)).cloned();
        if route.first() == Some(jurisdiction)
            && let Some(other) = closed(&self.closed_to, route.get(1..).unwrap_or_default())
        {
            return Decision::Deny(Reason {
                code: "CORRIDOR_CLOSED",
                message: format!("{jurisdiction} has closed payments to {other}"),
            });
        }
        if route.last() == Some(jurisdiction)
            && let Some(other) =
                closed(&self.closed_from, route.get(..route.len().saturating_sub(1)).unwrap_or_default())
        {
            return Decision::Deny(Reason {
                code: "CORRIDOR_CLOSED",
                message: format!("{jurisdiction} has closed payments from {other}"),
            });
        }
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use corridor_schemas::{Address, Currency, ParticipantId, PaymentId};

    use super::*;

    fn money(amount: &str, code: &str) -> Money {
        Money::parse(amount, Currency::from_code(code).unwrap()).unwrap()
    }

    fn jurisdictions(codes: &[&str]) -> Vec<Jurisdiction> {
        codes.iter().map(|code| Jurisdiction::new(*code).unwrap()).collect()
    }

    async fn decide(
        hook: &dyn ComplianceHook,
        at: &str,
        route: &[&str],
        amounts: &[Money],
        originator: Option<&Party>,
        beneficiary: Option<&Party>,
    ) -> Decision {
        let participant = ParticipantId::new("bank-hk").unwrap();
        let payer: Address = "e-hkd/alice".parse().unwrap();
        let payee: Address = "e-aed/omar".parse().unwrap();
        let route = jurisdictions(route);
        let subject = Subject {
            payment: PaymentId::generate(),
            participant: &participant,
            payer: &payer,
            payee: &payee,
            amounts,
            jurisdictions: &route,
            originator,
            beneficiary,
        };
        hook.check(&Jurisdiction::new(at).unwrap(), &subject).await
    }

    fn party(name: &str) -> Party {
        Party { name: Some(name.into()), ..Party::default() }
    }

    #[tokio::test]
    async fn the_travel_rule_names_every_missing_field_above_its_threshold() {
        let rule = TravelRule::new(money("8000.00", "HKD"));
        let (below, above) = ([money("8000.00", "HKD")], [money("8000.01", "HKD")]);
        let route = ["HK", "AE"];
        assert_eq!(decide(&rule, "HK", &route, &below, None, None).await, Decision::Allow);
        match decide(&rule, "HK", &route, &above, None, None).await {
            Decision::Deny(reason) => {
                assert_eq!(reason.code, "TRAVEL_RULE_DATA_MISSING");
                assert_eq!(
                    reason.message,
                    "HK requires originator and beneficiary data above 8000.00 HKD; missing: originator.name, \
                     originator.address or national_id or date_of_birth and place_of_birth, beneficiary.name"
                );
            }
            other => panic!("{other:?}"),
        }
        let named = party("Alice Chan");
        let with_address = Party { address: Some("1 Queen's Road, Hong Kong".into()), ..named.clone() };
        let born = Party {
            date_of_birth: Some("1990-01-01".into()),
            place_of_birth: Some("Hong Kong".into()),
            ..named.clone()
        };
        let half_born = Party { date_of_birth: Some("1990-01-01".into()), ..named.clone() };
        let beneficiary = party("Omar Haddad");
        for (originator, expected) in [(&with_address, true), (&born, true), (&half_born, false), (&named, false)] {
            let decision = decide(&rule, "HK", &route, &above, Some(originator), Some(&beneficiary)).await;
            assert_eq!(decision == Decision::Allow, expected, "{originator:?}: {decision:?}");
        }
        // Out of scope: no amount in HKD on the route.
        assert_eq!(decide(&rule, "HK", &route, &[money("90000.00", "AED")], None, None).await, Decision::Allow);
    }

    #[tokio::test]
    async fn a_closed_corridor_refuses_its_direction_and_transit_only() {
        let rule = CorridorRule { closed_to: jurisdictions(&["AE"]), closed_from: jurisdictions(&["TH"]) };
        let amounts = [money("1.00", "HKD")];
        let check = |at: &'static str, route: &'static [&'static str]| {
            let rule = rule.clone();
            async move { decide(&rule, at, route, &amounts, None, None).await }
        };
        let denied = |decision: Decision, words: &str| match decision {
            Decision::Deny(reason) => {
                assert!(reason.code == "CORRIDOR_CLOSED" && reason.message.contains(words), "{reason:?}")
            }
            other => panic!("{other:?}"),
        };
        denied(check("HK", &["HK", "AE"]).await, "HK has closed payments to AE");
        denied(check("HK", &["HK", "AE", "CN"]).await, "to AE");
        denied(check("HK", &["TH", "HK"]).await, "HK has closed payments from TH");
        assert_eq!(check("HK", &["AE", "HK"]).await, Decision::Allow, "only payments to AE are closed");
        assert_eq!(check("HK", &["HK", "TH"]).await, Decision::Allow, "only payments from TH are closed");
        assert_eq!(check("HK", &["HK", "CN"]).await, Decision::Allow);
    }
}
