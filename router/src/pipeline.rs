//! The payment pipeline: check against the network → claim the idempotency key → route and price
//! (or take the locked quote) → compliance → journal → two-phase commit → final receipt. Also
//! `QuoteFx`: route and price now, and lock the result in the quote store.
//!
//! Errors that mean the instruction itself is wrong (unknown ledger, currency that does not match
//! the ledger, an account the participant does not own) are returned as [`SubmitError`] and leave
//! no trace. Once the key is claimed, every outcome is a stored payment: a refusal is a `Rejected`
//! payment with a reason code, so a retry of the same key gets the same answer, also after a
//! restart. Every store write is durable before the next step, and the final receipt is durable
//! before the answer is given.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use corridor_compliance::{Outcome, Subject};
use corridor_ledger_adapters::{Ledger, RefusalCode, TransactionId};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{
    FieldError, FixedSide, Jurisdiction, LedgerId, Money, ParticipantId, PaymentId, PaymentInstruction, PaymentStatus,
    QuoteId, QuoteRequest,
};
use prost::Message;
use tokio::sync::Semaphore;

use corridor_schemas::SignatureError;

use tracing::Instrument;

use crate::clock::Clock;
use crate::feed_writer::FeedWriter;
use crate::metrics::metrics;
use crate::network::Network;
use crate::payment::{LegState, PaymentReason, PaymentRecord};
use crate::quote::LockedQuote;
use crate::route::Plan;
use crate::settlement::{Coordinator, Decision, Settlement, elapsed_us};
use crate::storage::{Fingerprint, KeyClaim, Storage, StorageError};
use crate::{recovery, route};
use corridor_compliance::feed::FeedSigner;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    InvalidArgument(FieldError),
    #[error("{0}")]
    PermissionDenied(String),
    /// The instruction is not proven to come from its participant.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("idempotency key already used for payment {0} with a different instruction")]
    KeyReused(PaymentId),
    #[error("{0}")]
    Overloaded(String),
    /// The store could not be reached; the payment may or may not have been recorded, and a retry
    /// with the same key is safe.
    #[error("{0}")]
    Unavailable(String),
}

/// Why `QuoteFx` gave no quote.
#[derive(Debug, thiserror::Error)]
pub enum QuoteError {
    #[error("{0}")]
    InvalidArgument(FieldError),
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but cannot be priced now: NO_ROUTE, STALE_RATES, ...
    #[error("{}: {}", .0.code, .0.message)]
    Unpriceable(PaymentReason),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Overloaded(String),
}

impl From<SubmitError> for QuoteError {
    fn from(error: SubmitError) -> Self {
        match error {
            SubmitError::InvalidArgument(field) => QuoteError::InvalidArgument(field),
            SubmitError::PermissionDenied(message) => QuoteError::PermissionDenied(message),
            SubmitError::Overloaded(message) => QuoteError::Overloaded(message),
            other => QuoteError::Unavailable(other.to_string()),
        }
    }
}

impl From<StorageError> for SubmitError {
    fn from(error: StorageError) -> Self {
        SubmitError::Unavailable(format!("{error}; retrying with the same idempotency key is safe"))
    }
}

pub struct Router {
    network: Arc<Network>,
    feed: FeedWriter,
    /// Signs the feed's checkpoints; absent in tests that do not need them.
    feed_signer: Option<Arc<FeedSigner>>,
    /// Requests per participant (payments and quotes); absent: unlimited.
    participant_rate: Option<ParticipantRateLimiter>,
    /// Every instruction must be signed (over mTLS); otherwise only participants with a
    /// registered key must sign (`--insecure-dev`, tests).
    signatures_required: bool,
    coordinator: Arc<Coordinator>,
    storage: Storage,
    in_flight: Semaphore,
    in_flight_max: usize,
    /// Set when the router drains (SIGTERM): new payments and quotes are refused.
    draining: std::sync::atomic::AtomicBool,
    /// Payments this process is running now, so a retry can tell "still running here" from "its
    /// first attempt died before storing anything" (then the retry runs it, under the same id).
    running: std::sync::Mutex<std::collections::HashSet<PaymentId>>,
    clock: Arc<dyn Clock>,
}

/// Removes a payment from the running set when its run ends, however it ends.
pub(crate) struct Running<'a> {
    router: &'a Router,
    payment: PaymentId,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.router.running_set().remove(&self.payment);
    }
}

/// Each participant's request budget.
struct ParticipantRateLimiter {
    limiter: governor::DefaultKeyedRateLimiter<ParticipantId>,
    per_second: NonZeroU32,
}

pub struct RouterSettings {
    pub prepare_timeout: Duration,
    pub decision_attempts_max: u32,
    pub in_flight_max: usize,
}

/// How long a retry waits for the first submission of its key to finish before giving up.
const REPLAY_WAIT_MAX: Duration = Duration::from_secs(30);
const REPLAY_POLL_INITIAL: Duration = Duration::from_millis(2);
const REPLAY_POLL_MAX: Duration = Duration::from_millis(200);
/// A claimed payment with nothing stored for this long since its id was made has lost its first
/// attempt: a retry runs it. Pricing and screening, the only steps before the first write, take
/// milliseconds; a retry sooner than this waits instead.
const ADOPT_AFTER: Duration = Duration::from_secs(5);

/// How long ago the payment's id was made (UUID v7 carries the time).
fn payment_age(payment: PaymentId) -> Duration {
    let made = payment.as_uuid().get_timestamp().map(|timestamp| {
        let (seconds, nanos) = timestamp.to_unix();
        SystemTime::UNIX_EPOCH + Duration::new(seconds, nanos)
    });
    made.and_then(|made| SystemTime::now().duration_since(made).ok()).unwrap_or_default()
}

/// SHA-256 of the instruction's canonical protobuf encoding.
/// The signature and its time are left out: a retry signed again is the same instruction.
pub fn fingerprint(instruction: &PaymentInstruction) -> Fingerprint {
    let mut canonical = wire::PaymentInstruction::from(instruction);
    canonical.signed_at = None;
    canonical.signature = Vec::new();
    let encoded = canonical.encode_to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA256, &encoded);
    let mut fingerprint = [0; 32];
    fingerprint.copy_from_slice(digest.as_ref());
    fingerprint
}

impl Router {
    pub fn new(network: Arc<Network>, storage: Storage, settings: RouterSettings, clock: Arc<dyn Clock>) -> Self {
        let ledgers: HashMap<LedgerId, Arc<dyn Ledger>> =
            network.ledgers.iter().map(|(id, handle)| (id.clone(), Arc::clone(&handle.ledger))).collect();
        let jurisdictions: Vec<(LedgerId, Jurisdiction)> =
            network.ledgers.iter().map(|(id, handle)| (id.clone(), handle.description.jurisdiction.clone())).collect();
        Self {
            coordinator: Arc::new(Coordinator::new(ledgers, settings.prepare_timeout, settings.decision_attempts_max)),
            feed: FeedWriter::new(Arc::clone(&storage.feed), jurisdictions),
            feed_signer: None,
            participant_rate: None,
            signatures_required: false,
            network,
            storage,
            in_flight: Semaphore::new(settings.in_flight_max),
            in_flight_max: settings.in_flight_max,
            draining: std::sync::atomic::AtomicBool::new(false),
            running: std::sync::Mutex::default(),
            clock,
        }
    }

    fn running_set(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<PaymentId>> {
        self.running.lock().expect("running-set lock poisoned by an earlier panic")
    }

    /// Marks `payment` as running here; `None` if it already is.
    pub(crate) fn start_running(&self, payment: PaymentId) -> Option<Running<'_>> {
        // Release the lock before building the guard: dropping a guard takes the lock again.
        let inserted = self.running_set().insert(payment);
        if inserted { Some(Running { router: self, payment }) } else { None }
    }

    /// The router's clock's time.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub fn network(&self) -> &Network {
        &self.network
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Refuses every unsigned instruction, including those of participants with no registered key
    /// (who then cannot pay at all until they register one).
    pub fn with_signatures_required(mut self) -> Self {
        self.signatures_required = true;
        self
    }

    /// Limits each participant to `per_second` requests sustained, `burst` at once.
    pub fn with_participant_rate(mut self, per_second: NonZeroU32, burst: NonZeroU32) -> Self {
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        self.participant_rate =
            Some(ParticipantRateLimiter { limiter: governor::RateLimiter::keyed(quota), per_second });
        self
    }

    /// A request from `participant` within its rate, or RESOURCE_EXHAUSTED. Checked before
    /// anything is stored or priced.
    fn admit(&self, participant: &ParticipantId) -> Result<(), SubmitError> {
        let Some(rate) = &self.participant_rate else { return Ok(()) };
        rate.limiter.check_key(participant).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
            SubmitError::Overloaded(format!(
                "participant `{participant}` is above its rate of {} requests/s; retry in {} ms",
                rate.per_second,
                wait.as_millis().max(1)
            ))
        })
    }

    /// Signs this router's feed checkpoints with `signer`.
    pub fn with_feed_signer(mut self, signer: Arc<FeedSigner>) -> Self {
        self.feed_signer = Some(signer);
        self
    }

    pub fn feed_signer(&self) -> Option<&Arc<FeedSigner>> {
        self.feed_signer.as_ref()
    }

    /// What writes this router's payments into the compliance feed.
    pub fn feed(&self) -> &FeedWriter {
        &self.feed
    }

    /// From now on, new payments and quotes are refused (UNAVAILABLE: retry on another replica);
    /// those in flight go on. The first step of a drain.
    pub fn stop_admitting(&self) {
        self.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Payments running now, and the most that may.
    pub fn in_flight(&self) -> (usize, usize) {
        (self.in_flight_max.saturating_sub(self.in_flight.available_permits()), self.in_flight_max)
    }

    fn refuse_if_draining(&self) -> Result<(), SubmitError> {
        if self.is_draining() {
            return Err(SubmitError::Unavailable(
                "this router is draining (shutting down); retry on another replica".to_owned(),
            ));
        }
        Ok(())
    }

    /// Runs one instruction through the pipeline and returns its final receipt, in its own
    /// `payment` span (one trace per payment, [`crate::telemetry`]).
    pub async fn submit(&self, instruction: PaymentInstruction) -> Result<wire::Payment, SubmitError> {
        let span = tracing::info_span!(
            "payment",
            participant = instruction.participant.as_str(),
            idempotency_key = instruction.idempotency_key.as_str(),
            payment_id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        if let Some(trace_id) = crate::telemetry::trace_id(&span) {
            span.record("trace_id", trace_id);
        }
        self.submit_traced(instruction).instrument(span).await
    }

    async fn submit_traced(&self, instruction: PaymentInstruction) -> Result<wire::Payment, SubmitError> {
        let started = Instant::now();
        self.refuse_if_draining()?;
        let validate = tracing::debug_span!("validate");
        validate.in_scope(|| {
            self.admit(&instruction.participant)?;
            self.check_against_network(&instruction.quote_request())?;
            self.check_signature(&instruction)
        })?;
        if let Some(quote) = instruction.quote {
            self.check_quote_owner(quote, &instruction).instrument(validate).await?;
        }
        let _permit = self.in_flight.try_acquire().map_err(|_| {
            SubmitError::Overloaded(format!("{} payments are already in flight; retry later", self.in_flight_max))
        })?;

        let claim = KeyClaim { fingerprint: fingerprint(&instruction), payment: PaymentId::generate() };
        // Mark it running before the claim is visible, so a concurrent retry waits for it.
        let running = self.start_running(claim.payment);
        let claimed = self
            .storage
            .keys
            .claim(&instruction.participant, &instruction.idempotency_key, claim)
            .instrument(tracing::debug_span!("idempotency"))
            .await?;
        tracing::Span::current()
            .record("payment_id", tracing::field::display(claimed.map_or(claim.payment, |c| c.payment)));
        match claimed {
            None => {}
            Some(existing) if existing.fingerprint != claim.fingerprint => {
                return Err(SubmitError::KeyReused(existing.payment));
            }
            Some(existing) => {
                drop(running);
                return self.wait_until_final(existing.payment, instruction, started).await;
            }
        }
        self.run(claim.payment, instruction, started).await
    }

    /// Runs a payment whose key is claimed for `payment`, from its first stored receipt on.
    async fn run(
        &self,
        payment: PaymentId,
        instruction: PaymentInstruction,
        started: Instant,
    ) -> Result<wire::Payment, SubmitError> {
        // Its first stored receipt is written with its journal entry (`Journal::begin`), or is
        // the final one: a refusal before settlement leaves no pending receipt behind.
        let mut record = PaymentRecord::pending(payment, instruction, self.clock.now());

        let decide_by = match self.price(&mut record).await? {
            Ok(decide_by) => decide_by,
            Err(reason) => return self.finish(record, PaymentStatus::Rejected, Some(reason), started).await,
        };

        let compliance_started = Instant::now();
        let jurisdictions: Vec<Jurisdiction> =
            record.route.iter().filter_map(|ledger| self.network.jurisdiction_of(ledger).cloned()).collect();
        // Every amount on the route's ledgers, in route order, for the hooks.
        let mut amounts: Vec<Money> = Vec::with_capacity(record.hops.len() + 1);
        amounts.extend(record.send);
        amounts.extend(record.hops.iter().map(|hop| hop.receive));
        let subject = Subject {
            payment: record.id,
            participant: &record.instruction.participant,
            payer: &record.instruction.payer,
            payee: &record.instruction.payee,
            amounts: &amounts,
            jurisdictions: &jurisdictions,
            originator: record.instruction.originator.as_ref(),
            beneficiary: record.instruction.beneficiary.as_ref(),
        };
        let screening = self
            .network
            .compliance
            .screen(&subject, &jurisdictions)
            .instrument(tracing::debug_span!("compliance"))
            .await;
        record.timings.compliance_us = elapsed_us(compliance_started);
        let outcome = screening.outcome();
        let objection = screening.first_objection().map(|(decision, reason)| {
            let code = match outcome {
                Outcome::Hold => "HELD_FOR_REVIEW",
                _ => reason.code,
            };
            PaymentReason::new(code, format!("{} {}: {}", decision.jurisdiction, decision.hook, reason.message))
        });
        record.screening = screening;
        match (outcome, objection) {
            // Held: it waits, with nothing held on any ledger, for a compliance officer.
            (Outcome::Hold, Some(reason)) => {
                record.screening_recorded = true;
                record.status = PaymentStatus::Held;
                record.reason = Some(reason.clone());
                self.feed.screening(&record.to_wire(), self.clock.now()).await?;
                self.finish(record, PaymentStatus::Held, Some(reason), started).await
            }
            (_, Some(reason)) => {
                self.release_velocity(record.id, &record.instruction).await;
                self.finish(record, PaymentStatus::Rejected, Some(reason), started).await
            }
            (_, None) => self.settle(record, decide_by, started).await,
        }
    }

    /// Routes and prices `record` now (or takes its locked quote) and fills in its amounts, hops,
    /// fees and legs. `Ok(Ok(decide_by))`: priced, with the time a commit must be decided by (a
    /// quote's expiry); `Ok(Err(reason))`: it cannot be paid.
    pub(crate) async fn price(
        &self,
        record: &mut PaymentRecord,
    ) -> Result<Result<Option<SystemTime>, PaymentReason>, SubmitError> {
        let route_started = Instant::now();
        let route_span = tracing::debug_span!("route", quoted = record.instruction.quote.is_some());
        let (plan, decide_by) = match record.instruction.quote {
            Some(quote) => {
                match self.quoted_plan(quote, record.id, &record.instruction).instrument(route_span.clone()).await? {
                    Ok((plan, expires_at)) => {
                        metrics().quote("used");
                        (Ok(plan), Some(expires_at))
                    }
                    Err(reason) => {
                        metrics().quote(match reason.code.as_ref() {
                            "QUOTE_EXPIRED" => "expired",
                            "QUOTE_UNKNOWN" => "unknown",
                            "QUOTE_ALREADY_USED" => "already_used",
                            _ => "refused",
                        });
                        (Err(reason), None)
                    }
                }
            }
            None => (
                route_span
                    .in_scope(|| route::plan(&self.network, &record.instruction.quote_request(), self.clock.now())),
                None,
            ),
        };
        record.timings.route_us = elapsed_us(route_started);
        let plan = match plan {
            Ok(plan) => plan,
            Err(reason) => return Ok(Err(reason)),
        };
        record.send = Some(plan.send);
        record.receive = Some(plan.receive);
        record.total_debit = Some(plan.total_debit);
        record.hops = plan.hops;
        record.fees = plan.fees;
        record.route = plan.route;
        record.legs = plan.legs;
        Ok(Ok(decide_by))
    }

    /// Journals a priced, screened payment, settles it on every ledger and stores its receipt.
    pub(crate) async fn settle(
        &self,
        mut record: PaymentRecord,
        decide_by: Option<SystemTime>,
        started: Instant,
    ) -> Result<wire::Payment, SubmitError> {
        // From here a ledger may hold money for this payment: journal it first.
        self.storage.journal.begin(&record.to_wire()).instrument(tracing::debug_span!("journal.begin")).await?;
        let transaction = TransactionId::from(record.id);
        let (settlement, timings) =
            self.coordinator.settle(transaction, &mut record.legs, self.storage.journal.as_ref(), decide_by).await;
        record.timings.prepare_us = timings.prepare_us;
        record.timings.commit_us = timings.commit_us;
        let (status, reason, finished) = match settlement {
            Settlement::Committed => (PaymentStatus::Settled, None, true),
            Settlement::CommitUndelivered(reason) => (PaymentStatus::Pending, Some(reason), false),
            Settlement::Refused(reason) => (
                PaymentStatus::Rejected,
                Some(liquidity_or(reason, &record.legs, &record.instruction.payer.ledger)),
                true,
            ),
            Settlement::Failed(reason) => (PaymentStatus::Failed, Some(reason), true),
        };
        let aborted_cleanly =
            record.legs.iter().all(|leg| !matches!(leg.state, LegState::Prepared | LegState::InDoubt));
        if matches!(status, PaymentStatus::Rejected | PaymentStatus::Failed) {
            // Aborted on every ledger: it will never settle, so it stops counting now.
            self.release_velocity(record.id, &record.instruction).await;
        }
        let receipt = self.finish(record, status, reason, started).await?;
        if finished && (status == PaymentStatus::Settled || aborted_cleanly) {
            // Not awaited: the receipt is durable and the ledgers have their decision; a finish
            // lost in a crash only makes recovery re-send a decision the ledgers already have.
            let journal = Arc::clone(&self.storage.journal);
            let payment = transaction.payment_id();
            tokio::spawn(async move {
                if let Err(error) = journal.finish(payment).await {
                    tracing::warn!(%payment, %error, "journal finish failed; recovery will complete it");
                }
            });
        } else if status == PaymentStatus::Pending {
            // Decided commit, some ledger unreachable: keep delivering in the background.
            recovery::redrive(
                self.storage.clone(),
                Arc::clone(&self.coordinator),
                self.feed.clone(),
                receipt.clone(),
                Decision::Commit,
            );
        } else {
            // Aborted, but some ledger did not hear it: its hold stays until it does.
            recovery::redrive(
                self.storage.clone(),
                Arc::clone(&self.coordinator),
                self.feed.clone(),
                receipt.clone(),
                Decision::Abort,
            );
        }
        Ok(receipt)
    }

    pub(crate) async fn finish(
        &self,
        mut record: PaymentRecord,
        status: PaymentStatus,
        reason: Option<PaymentReason>,
        started: Instant,
    ) -> Result<wire::Payment, SubmitError> {
        record.status = status;
        record.reason = reason;
        record.timings.finished_at = Some(self.clock.now());
        record.timings.total_us = elapsed_us(started);
        tracing::debug!(payment = %record.id, ?status, reason = ?record.reason, "payment finished");
        let metrics = metrics();
        metrics.payment(status.as_str(), record.reason.as_ref().map(|reason| reason.code.as_ref()));
        let timings = &record.timings;
        for (stage, microseconds) in [
            ("route", timings.route_us),
            ("compliance", timings.compliance_us),
            ("prepare", timings.prepare_us),
            ("commit", timings.commit_us),
        ] {
            if microseconds > 0 {
                metrics.stage(stage, microseconds);
            }
        }
        if status != PaymentStatus::Held {
            metrics.stage("total", timings.total_us);
        }
        let receipt = record.to_wire();
        // With its feed records, in one write: a final receipt anyone can read is in the feed.
        self.feed
            .save_receipt(self.storage.payments.as_ref(), &receipt, record.screening_recorded, self.clock.now())
            .instrument(tracing::debug_span!("receipt", status = status.as_str()))
            .await?;
        Ok(receipt)
    }

    /// Takes a screened payment that will never settle (refused, failed, or rejected in review)
    /// back out of every velocity window it was counted in, so that velocity limits count what
    /// settled or is settling. A failure is only logged: the entry then counts until its window
    /// passes, which can only refuse more, never allow more.
    pub(crate) async fn release_velocity(&self, payment: PaymentId, instruction: &PaymentInstruction) {
        if self.network.velocity.is_empty() {
            return;
        }
        if let Err(error) = self.network.velocity.release(payment, &instruction.participant, &instruction.payer).await {
            tracing::warn!(%payment, %error, "velocity entries not taken back; they count until their windows pass");
        }
    }

    /// A retry of a key whose first submission may still be running (here or, with shared
    /// storage, on another router): wait for its final receipt, polling with backoff, for a
    /// bounded time. If no receipt was stored within [`ADOPT_AFTER`] of its id and nothing runs it
    /// here, its first attempt died before any ledger could have heard of it: run it now, under
    /// the same payment id (ledgers and the journal are idempotent per id, so even a duplicate run
    /// cannot settle it twice).
    async fn wait_until_final(
        &self,
        payment: PaymentId,
        instruction: PaymentInstruction,
        started: Instant,
    ) -> Result<wire::Payment, SubmitError> {
        let deadline = Instant::now() + REPLAY_WAIT_MAX;
        let mut poll = REPLAY_POLL_INITIAL;
        loop {
            match self.storage.payments.get(payment).await? {
                Some(receipt) if receipt.status != wire::PaymentStatus::Pending as i32 => return Ok(receipt),
                Some(_) => {}
                // Nothing stored yet: the first attempt may still be pricing and screening it (on
                // another router, with shared storage). Only once it is older than any attempt
                // can take to store something has that attempt died.
                None if payment_age(payment) >= ADOPT_AFTER => {
                    if let Some(_running) = self.start_running(payment) {
                        tracing::warn!(%payment, "adopting a payment whose first attempt stored nothing");
                        return self.run(payment, instruction, started).await;
                    }
                }
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(SubmitError::Unavailable(format!(
                    "payment {payment} for this idempotency key is still being settled; retry later"
                )));
            }
            tokio::time::sleep(poll).await;
            poll = (poll * 2).min(REPLAY_POLL_MAX);
        }
    }

    /// A participant with a registered key must sign its instructions (schemas/SIGNATURES.md),
    /// within the network's window of its own clock; the signature binds the idempotency key, so
    /// a replay is answered with the first outcome and a replay after the window is refused.
    fn check_signature(&self, instruction: &PaymentInstruction) -> Result<(), SubmitError> {
        let Some(key) = self.network.participants.get(&instruction.participant).and_then(|p| p.signing_key.as_ref())
        else {
            if self.signatures_required {
                return Err(SubmitError::Unauthenticated(format!(
                    "participant `{}` has no registered signing key, and every instruction must be signed \
                     (participants[].signing_key; schemas/SIGNATURES.md)",
                    instruction.participant
                )));
            }
            return Ok(());
        };
        key.verify(instruction, self.clock.now(), self.network.signature_window).map_err(|error| match error {
            SignatureError::Missing => SubmitError::Unauthenticated(format!(
                "participant `{}` signs its instructions: `signature` and `signed_at` are required",
                instruction.participant
            )),
            SignatureError::Malformed { reason } => SubmitError::InvalidArgument(FieldError::new("signature", reason)),
            SignatureError::Invalid => SubmitError::Unauthenticated(format!(
                "the signature does not verify with participant `{}`'s key",
                instruction.participant
            )),
            outside @ SignatureError::OutsideWindow { .. } => {
                SubmitError::Unauthenticated(format!("{outside}; sign it again with the current time"))
            }
        })
    }

    /// Prices `request` now and locks the price for `fx.quote_ttl`.
    pub async fn quote(&self, request: QuoteRequest) -> Result<LockedQuote, QuoteError> {
        self.refuse_if_draining()?;
        self.admit(&request.participant)?;
        self.check_against_network(&request)?;
        let now = self.clock.now();
        let plan = route::plan(&self.network, &request, now).map_err(QuoteError::Unpriceable)?;
        let quote = LockedQuote::new(QuoteId::generate(), request, plan, now, now + self.network.fx.quote_ttl);
        let encoded = quote.to_wire().encode_to_vec();
        self.storage
            .quotes
            .put(quote.id, &encoded, quote.expires_at)
            .await
            .map_err(|error| QuoteError::Unavailable(error.to_string()))?;
        Ok(quote)
    }

    async fn load_quote(&self, quote: QuoteId) -> Result<Option<LockedQuote>, SubmitError> {
        let Some(bytes) = self.storage.quotes.get(quote).await? else { return Ok(None) };
        let stored = wire::Quote::decode(bytes.as_slice())
            .map_err(|error| SubmitError::Unavailable(format!("stored quote {quote} is corrupt: {error}")))?;
        LockedQuote::from_wire(&stored)
            .map(Some)
            .map_err(|reason| SubmitError::Unavailable(format!("stored quote {quote} is corrupt: {reason}")))
    }

    /// Before the key is claimed: a quote that exists must be the sender's and match the
    /// instruction. (An unknown or expired quote is a stored rejection after the claim, so a retry
    /// of a payment that settled with it still gets its receipt.)
    async fn check_quote_owner(&self, quote: QuoteId, instruction: &PaymentInstruction) -> Result<(), SubmitError> {
        let Some(locked) = self.load_quote(quote).await? else { return Ok(()) };
        if locked.request.participant != instruction.participant {
            return Err(SubmitError::PermissionDenied(format!(
                "quote {quote} was issued to another participant; only it may pay with it"
            )));
        }
        match locked.mismatch(&instruction.quote_request()) {
            Some(field) => Err(SubmitError::InvalidArgument(field)),
            None => Ok(()),
        }
    }

    /// The plan a locked quote promised, claimed for `payment`, and the time its commit must be
    /// decided by; or why the quote cannot be used.
    async fn quoted_plan(
        &self,
        quote: QuoteId,
        payment: PaymentId,
        instruction: &PaymentInstruction,
    ) -> Result<Result<(Plan, SystemTime), PaymentReason>, SubmitError> {
        let Some(locked) = self.load_quote(quote).await? else {
            return Ok(Err(PaymentReason::new(
                "QUOTE_UNKNOWN",
                format!("no quote {quote} (never issued, or expired long ago)"),
            )));
        };
        let request = instruction.quote_request();
        if locked.request.participant != request.participant {
            return Ok(Err(PaymentReason::new(
                "QUOTE_NOT_YOURS",
                format!("quote {quote} was issued to another participant"),
            )));
        }
        if let Some(field) = locked.mismatch(&request) {
            return Ok(Err(PaymentReason::new("QUOTE_MISMATCH", field.to_string())));
        }
        if locked.is_expired(self.clock.now()) {
            return Ok(Err(PaymentReason::new(
                "QUOTE_EXPIRED",
                format!("quote {quote} expired at {}", crate::clock::rfc3339(locked.expires_at)),
            )));
        }
        match self.storage.quotes.claim(quote, payment).await? {
            None => {}
            Some(holder) if holder == payment => {}
            Some(holder) => {
                return Ok(Err(PaymentReason::new(
                    "QUOTE_ALREADY_USED",
                    format!("quote {quote} was already used by payment {holder}"),
                )));
            }
        }
        let legs = match route::legs_for(&self.network, &request, &locked.hops, &locked.fees, locked.send) {
            Ok(legs) => legs,
            Err(reason) => return Ok(Err(reason)),
        };
        let plan = Plan {
            route: locked.route,
            send: locked.send,
            receive: locked.receive,
            total_debit: locked.total_debit,
            hops: locked.hops,
            fees: locked.fees,
            legs,
        };
        Ok(Ok((plan, locked.expires_at)))
    }

    /// What can be checked from the request and the network alone, before anything is stored.
    fn check_against_network(&self, instruction: &QuoteRequest) -> Result<(), SubmitError> {
        let invalid = |field: &str, reason: String| SubmitError::InvalidArgument(FieldError::new(field, reason));
        let payer_currency = self
            .network
            .currency_of(&instruction.payer.ledger)
            .ok_or_else(|| invalid("payer", format!("ledger `{}` is not on this network", instruction.payer.ledger)))?;
        let payee_currency = self
            .network
            .currency_of(&instruction.payee.ledger)
            .ok_or_else(|| invalid("payee", format!("ledger `{}` is not on this network", instruction.payee.ledger)))?;
        let (side, ledger, currency) = match instruction.fixed_side {
            FixedSide::Send => ("payer", &instruction.payer.ledger, payer_currency),
            FixedSide::Receive => ("payee", &instruction.payee.ledger, payee_currency),
        };
        if instruction.amount.currency() != currency {
            return Err(invalid(
                "amount.currency",
                format!(
                    "{} does not match the {side} ledger {ledger}, which issues {currency} (fixed side: {side})",
                    instruction.amount.currency()
                ),
            ));
        }
        let participant = self.network.participants.get(&instruction.participant).ok_or_else(|| {
            SubmitError::PermissionDenied(format!(
                "participant `{}` is not registered on this network",
                instruction.participant
            ))
        })?;
        if !participant.accounts.contains(&instruction.payer) {
            return Err(SubmitError::PermissionDenied(format!(
                "participant `{}` does not own the payer account {}",
                instruction.participant, instruction.payer
            )));
        }
        Ok(())
    }
}

/// A refusal on a ledger other than the payer's for lack of funds is the provider's liquidity,
/// not the payer's money: say so.
fn liquidity_or(reason: PaymentReason, legs: &[crate::payment::Leg], payer_ledger: &LedgerId) -> PaymentReason {
    let provider_short = legs.iter().any(|leg| {
        &leg.ledger != payer_ledger
            && leg.refusal.as_ref().is_some_and(|refusal| refusal.code == RefusalCode::InsufficientFunds)
    });
    if provider_short {
        PaymentReason::new(
            "LIQUIDITY_UNAVAILABLE",
            format!("a liquidity provider's balance cannot fill its leg: {}", reason.message),
        )
    } else {
        reason
    }
}

#[cfg(test)]
mod tests;
