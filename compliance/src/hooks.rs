//! Built-in hooks.

use corridor_schemas::{Jurisdiction, Money};

use crate::pipeline::{ComplianceHook, Decision, Reason, Subject};

/// A jurisdiction's limit on one payment, in that jurisdiction's currency: a payment whose amount
/// in that currency is above the limit is denied (`OVER_LIMIT`). A payment that touches the
/// jurisdiction without an amount in the limit's currency is denied too (`LIMIT_NOT_APPLICABLE`):
/// a limit that cannot be checked fails closed.
#[derive(Debug, Clone)]
pub struct SinglePaymentLimit {
    limit: Money,
}

impl SinglePaymentLimit {
    pub const NAME: &'static str = "single_payment_limit";

    pub fn new(limit: Money) -> Self {
        Self { limit }
    }
}

#[async_trait::async_trait]
impl ComplianceHook for SinglePaymentLimit {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn check(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Decision {
        let Some(amount) = subject.amounts.iter().find(|amount| amount.currency() == self.limit.currency()) else {
            return Decision::Deny(Reason {
                code: "LIMIT_NOT_APPLICABLE",
                message: format!(
                    "{jurisdiction} limits payments in {}, and this payment has no amount in it",
                    self.limit.currency()
                ),
            });
        };
        if amount.minor_units() > self.limit.minor_units() {
            return Decision::Deny(Reason {
                code: "OVER_LIMIT",
                message: format!("{amount} is above {jurisdiction}'s single-payment limit of {}", self.limit),
            });
        }
        Decision::Allow
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use corridor_schemas::{Address, Currency, ParticipantId, PaymentId};

    use super::*;
    use crate::pipeline::{CompliancePipeline, Outcome};

    fn money(amount: &str, code: &str) -> Money {
        Money::parse(amount, Currency::from_code(code).unwrap()).unwrap()
    }

    fn jurisdiction(code: &str) -> Jurisdiction {
        Jurisdiction::new(code).unwrap()
    }

    fn pipeline() -> CompliancePipeline {
        let mut pipeline = CompliancePipeline::new();
        pipeline.add_hook(jurisdiction("HK"), Arc::new(SinglePaymentLimit::new(money("8000.00", "HKD"))));
        pipeline.add_hook(jurisdiction("CN"), Arc::new(SinglePaymentLimit::new(money("50000.00", "CNY"))));
        pipeline
    }

    async fn screen(amounts: &[Money], jurisdictions: &[&str]) -> crate::Screening {
        let participant = ParticipantId::new("bank-cn").unwrap();
        let payer: Address = "e-cny/wei".parse().unwrap();
        let payee: Address = "e-hkd/alice".parse().unwrap();
        let subject = Subject {
            payment: PaymentId::generate(),
            participant: &participant,
            payer: &payer,
            payee: &payee,
            amounts,
            jurisdictions: &[],
            originator: None,
            beneficiary: None,
        };
        let jurisdictions: Vec<_> = jurisdictions.iter().map(|code| jurisdiction(code)).collect();
        pipeline().screen(&subject, &jurisdictions).await
    }

    #[tokio::test]
    async fn limits_apply_per_jurisdiction_in_its_currency() {
        let within = screen(&[money("7000.00", "CNY"), money("7600.00", "HKD")], &["CN", "HK"]).await;
        assert_eq!(within.outcome(), Outcome::Allow);
        assert_eq!(within.decisions.len(), 2);

        // At the limit is allowed, one cent above is not.
        let at = screen(&[money("7400.00", "CNY"), money("8000.00", "HKD")], &["CN", "HK"]).await;
        assert_eq!(at.outcome(), Outcome::Allow);
        let over = screen(&[money("7400.01", "CNY"), money("8000.01", "HKD")], &["CN", "HK"]).await;
        assert_eq!(over.outcome(), Outcome::Deny);
        let (decision, reason) = over.first_objection().unwrap();
        assert_eq!(
            (decision.jurisdiction.as_str(), decision.hook, reason.code),
            ("HK", "single_payment_limit", "OVER_LIMIT")
        );
        assert_eq!(reason.message, "8000.01 HKD is above HK's single-payment limit of 8000.00 HKD");
        assert_eq!(over.decisions[0].decision, Decision::Allow, "CN still recorded its own decision");
    }

    #[tokio::test]
    async fn jurisdictions_without_hooks_allow_and_repeats_screen_once() {
        let screening = screen(&[money("1.00", "THB")], &["TH", "TH"]).await;
        assert_eq!(screening.outcome(), Outcome::Allow);
        assert!(screening.decisions.is_empty());
        let domestic = screen(&[money("9000.00", "HKD")], &["HK", "HK"]).await;
        assert_eq!(domestic.decisions.len(), 1);
        assert_eq!(domestic.outcome(), Outcome::Deny);
    }

    #[tokio::test]
    async fn a_limit_that_cannot_be_checked_fails_closed() {
        let screening = screen(&[money("1.00", "THB")], &["HK"]).await;
        assert_eq!(screening.first_objection().map(|(_, reason)| reason.code), Some("LIMIT_NOT_APPLICABLE"));
    }
}
