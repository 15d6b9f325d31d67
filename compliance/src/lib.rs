//! Corridor compliance: the [`ComplianceHook`] trait, the [`CompliancePipeline`] that runs the hooks
//! of every jurisdiction a payment touches, and the built-in hooks.
//!
//! Hooks decide before any money is held: allow, deny with a reason, or hold for review. Every
//! decision of every hook is kept (the pipeline does not stop at the first denial), so a payment's
//! receipt and, later, the regulator feed show the whole picture. This crate does not know
//! ledgers or FX: the router hands it the payment's parties, amounts and jurisdictions.

pub mod feed;
mod hooks;
mod pipeline;
mod rules;
pub mod sanctions;
pub mod velocity;

pub use feed::{Checkpoint, FeedChain, FeedEntry, FeedPublicKey, FeedRecord, FeedSigner};
pub use hooks::SinglePaymentLimit;
pub use pipeline::{ComplianceHook, CompliancePipeline, Decision, HookDecision, Outcome, Reason, Screening, Subject};
pub use rules::{CorridorRule, TravelRule};
pub use sanctions::{SanctionsError, SanctionsHook, SanctionsList, Score, Thresholds, Verdict};
pub use velocity::{
    CounterError, MemoryVelocityCounter, VelocityCounter, VelocityHook, VelocityHooks, VelocityLimit,
    VelocityLimitError, VelocityScope, WindowTotals,
};
