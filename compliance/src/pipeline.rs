//! The hook trait, decisions, and the pipeline that runs hooks per jurisdiction.

use std::collections::HashMap;
use std::sync::Arc;

use corridor_schemas::{Address, Jurisdiction, Money, ParticipantId, Party, PaymentId};

/// Why a hook decided as it did. `code` is stable and machine-readable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Reason),
    /// Needs a compliance officer's review before any money is held.
    Hold(Reason),
}

/// What the hooks screen: one payment, as the router has resolved it.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub payment: PaymentId,
    pub participant: &'a ParticipantId,
    pub payer: &'a Address,
    pub payee: &'a Address,
    /// The amount on each ledger of the route, in route order (send first, receive last).
    pub amounts: &'a [Money],
    /// The jurisdiction of each ledger on the route, in route order (payer's first, payee's last).
    pub jurisdictions: &'a [Jurisdiction],
    /// Who pays and who is paid, as the instruction describes them (absent if it does not).
    pub originator: Option<&'a Party>,
    pub beneficiary: Option<&'a Party>,
}

#[async_trait::async_trait]
pub trait ComplianceHook: Send + Sync + 'static {
    /// Stable name, shown in receipts: `single_payment_limit`.
    fn name(&self) -> &'static str;

    /// Whether the decision is the same whichever jurisdiction asks (sanctions screening: one list
    /// for all). The pipeline then runs a hook registered for several jurisdictions once per
    /// payment and records its decision for each.
    fn same_for_every_jurisdiction(&self) -> bool {
        false
    }

    async fn check(&self, jurisdiction: &Jurisdiction, subject: &Subject<'_>) -> Decision;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookDecision {
    pub jurisdiction: Jurisdiction,
    pub hook: &'static str,
    pub decision: Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Deny,
    Hold,
}

/// Every decision about one payment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Screening {
    pub decisions: Vec<HookDecision>,
}

impl Screening {
    /// Any denial denies; otherwise any hold holds; otherwise allowed.
    pub fn outcome(&self) -> Outcome {
        let mut outcome = Outcome::Allow;
        for decision in &self.decisions {
            match decision.decision {
                Decision::Deny(_) => return Outcome::Deny,
                Decision::Hold(_) => outcome = Outcome::Hold,
                Decision::Allow => {}
            }
        }
        outcome
    }

    /// The first denial (or, failing that, the first hold): the reason a refused payment gives.
    pub fn first_objection(&self) -> Option<(&HookDecision, &Reason)> {
        let deny = self.decisions.iter().find_map(|d| match &d.decision {
            Decision::Deny(reason) => Some((d, reason)),
            _ => None,
        });
        deny.or_else(|| {
            self.decisions.iter().find_map(|d| match &d.decision {
                Decision::Hold(reason) => Some((d, reason)),
                _ => None,
            })
        })
    }
}

/// The hooks of every jurisdiction, run in registration order.
#[derive(Default, Clone)]
pub struct CompliancePipeline {
    hooks: HashMap<Jurisdiction, Vec<Arc<dyn ComplianceHook>>>,
}

impl CompliancePipeline {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_hook(&mut self, jurisdiction: Jurisdiction, hook: Arc<dyn ComplianceHook>) {
        self.hooks.entry(jurisdiction).or_default().push(hook);
    }

    pub fn hook_count(&self) -> usize {
        self.hooks.values().map(Vec::len).sum()
    }

    /// Runs the hooks of each jurisdiction once (a jurisdiction listed twice is screened once),
    /// in the order given.
    pub async fn screen(&self, subject: &Subject<'_>, jurisdictions: &[Jurisdiction]) -> Screening {
        let mut screening = Screening::default();
        // Decisions of jurisdiction-independent hooks already taken for this payment, by hook.
        // (Keyed by the hook's address as a number: a raw pointer would make the future !Send.)
        let mut shared: Vec<(usize, Decision)> = Vec::new();
        for (index, jurisdiction) in jurisdictions.iter().enumerate() {
            if jurisdictions[..index].contains(jurisdiction) {
                continue;
            }
            for hook in self.hooks.get(jurisdiction).into_iter().flatten() {
                let identity = Arc::as_ptr(hook).cast::<()>() as usize;
                let known = shared.iter().find(|(of, _)| *of == identity).map(|(_, decision)| decision.clone());
                let decision = match known {
                    Some(decision) => decision,
                    None => {
                        let span = tracing::debug_span!(
                            "compliance.hook",
                            jurisdiction = jurisdiction.as_str(),
                            hook = hook.name()
                        );
                        let decision = tracing::Instrument::instrument(hook.check(jurisdiction, subject), span).await;
                        if hook.same_for_every_jurisdiction() {
                            shared.push((identity, decision.clone()));
                        }
                        decision
                    }
                };
                screening.decisions.push(HookDecision {
                    jurisdiction: jurisdiction.clone(),
                    hook: hook.name(),
                    decision,
                });
            }
        }
        screening
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use corridor_schemas::{Address, Currency};

    use super::*;

    /// Counts its calls; decides the same everywhere when `shared`.
    struct Counting {
        calls: AtomicUsize,
        shared: bool,
    }

    #[async_trait::async_trait]
    impl ComplianceHook for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn same_for_every_jurisdiction(&self) -> bool {
            self.shared
        }

        async fn check(&self, _: &Jurisdiction, _: &Subject<'_>) -> Decision {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Decision::Allow
        }
    }

    #[tokio::test]
    async fn a_jurisdiction_independent_hook_runs_once_per_payment_and_is_recorded_for_each() {
        let jurisdictions: Vec<Jurisdiction> =
            ["HK", "CN", "AE"].iter().map(|c| Jurisdiction::new(*c).unwrap()).collect();
        for (shared, calls) in [(true, 1), (false, 3)] {
            let hook = Arc::new(Counting { calls: AtomicUsize::new(0), shared });
            let mut pipeline = CompliancePipeline::new();
            for jurisdiction in &jurisdictions {
                pipeline.add_hook(jurisdiction.clone(), Arc::clone(&hook) as Arc<dyn ComplianceHook>);
            }
            let participant = ParticipantId::new("bank-hk").unwrap();
            let (payer, payee): (Address, Address) = ("e-hkd/a".parse().unwrap(), "e-aed/b".parse().unwrap());
            let amounts = [Money::parse("1.00", Currency::from_code("HKD").unwrap()).unwrap()];
            let subject = Subject {
                payment: PaymentId::generate(),
                participant: &participant,
                payer: &payer,
                payee: &payee,
                amounts: &amounts,
                jurisdictions: &jurisdictions,
                originator: None,
                beneficiary: None,
            };
            let screening = pipeline.screen(&subject, &jurisdictions).await;
            assert_eq!(hook.calls.load(Ordering::SeqCst), calls, "shared: {shared}");
            let recorded: Vec<&str> = screening.decisions.iter().map(|d| d.jurisdiction.as_str()).collect();
            assert_eq!(recorded, ["HK", "CN", "AE"], "every jurisdiction keeps its decision");
        }
    }
}
