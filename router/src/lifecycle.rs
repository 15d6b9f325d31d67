//! The router's life: whether it is ready to take payments, and how it stops.
//!
//! **Readiness** reflects the real state: a background prober ([`Health::spawn_prober`]) asks,
//! every [`PROBE_INTERVAL`] and each within [`PROBE_TIMEOUT`], the journal's store, the
//! idempotency-key store and every ledger (`Ledger::probe`: a `Describe` round trip for a ledger node) whether they
//! answer. The gRPC health service (the overall `""` service and each API) says SERVING only
//! while all of them do, and while the router is not draining; `/readyz` says the same over HTTP.
//! A router whose database is down is alive (`/livez`) but not ready. Each change is logged once.
//!
//! **Draining** ([`drain`], on SIGTERM or SIGINT): NOT_SERVING at once, so load balancers stop
//! sending; new payments and quotes refused (UNAVAILABLE: retry on another replica); payments in
//! flight finish their two-phase commits, for up to `server.drain_timeout_ms`; then the gRPC
//! server stops (calls still open are answered), this router's journal lease is released so
//! another replica takes over at once whatever is still unfinished (or recovery does at the next
//! start), and the process exits 0. Nothing is left half-decided by a drain: an unfinished payment
//! is journaled, and the journal is what recovery and take-over complete.
//!
//! Not here: what is probed beyond reachability (a ledger's own health is its node's business).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::pipeline::Router;
use crate::server::RunningServer;

/// How often the prober asks every dependency.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may take before its dependency counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a drain looks whether the payments in flight have finished.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// The gRPC services whose health is reported (besides the overall `""`).
pub const SERVICES: [&str; 6] = [
    "corridor.v1.PaymentService",
    "corridor.v1.FxService",
    "corridor.v1.ComplianceReview",
    "corridor.v1.ComplianceFeed",
    "corridor.v1.OperatorService",
    "corridor.v1.TransactionCoordinator",
];

/// One dependency's state at the last probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `journal`, `idempotency_keys`, `ledger e-hkd`, ...
    pub name: String,
    /// Why it did not answer; `None` when it did.
    pub error: Option<String>,
}

/// What the router reports about itself; shared by the gRPC health service, `/readyz` and the
/// drain.
pub struct Health {
    reporter: HealthReporter,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    components: Vec<Component>,
    probed: bool,
    draining: bool,
    /// What was last told to the health service, so a change is logged once.
    reported: Option<bool>,
}

impl Health {
    pub fn new(reporter: HealthReporter) -> Arc<Self> {
        Arc::new(Self { reporter, state: Mutex::new(State::default()) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves only a probe report half-written.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ready: probed at least once, every dependency answered, not draining.
    pub fn is_ready(&self) -> bool {
        let state = self.state();
        state.probed && !state.draining && state.components.iter().all(|component| component.error.is_none())
    }

    pub fn is_draining(&self) -> bool {
        self.state().draining
    }

    /// Every dependency as of the last probe.
    pub fn components(&self) -> Vec<Component> {
        self.state().components.clone()
    }

    /// Asks every dependency now and reports the result.
    pub async fn probe(&self, router: &Router) {
        let storage = router.storage();
        let mut probes = vec![
            bounded(
                "journal".to_owned(),
                Box::pin(async { storage.journal.probe().await.map_err(|error| error.to_string()) }),
            ),
            bounded(
                "idempotency_keys".to_owned(),
                Box::pin(async { storage.keys.probe().await.map_err(|error| error.to_string()) }),
            ),
        ];
        let mut ledgers: Vec<_> = router.network().ledgers.iter().collect();
        ledgers.sort_by(|a, b| a.0.cmp(b.0));
        for (id, handle) in ledgers {
            let ledger = Arc::clone(&handle.ledger);
            probes.push(bounded(
                format!("ledger {id}"),
                Box::pin(async move { ledger.probe().await.map_err(|error| error.to_string()) }),
            ));
        }
        let components = futures::future::join_all(probes).await;
        {
            let mut state = self.state();
            for component in &components {
                let before = state.components.iter().find(|old| old.name == component.name);
                match (&component.error, before.and_then(|old| old.error.as_ref())) {
                    (Some(error), None) => tracing::warn!(component = %component.name, %error, "unreachable"),
                    (None, Some(_)) => tracing::info!(component = %component.name, "reachable again"),
                    _ => {}
                }
            }
            state.components = components;
            state.probed = true;
        }
        self.report().await;
    }

    /// Marks the router draining and reports NOT_SERVING at once.
    pub async fn start_draining(&self) {
        self.state().draining = true;
        self.report().await;
    }

    /// Tells the gRPC health service what [`Health::is_ready`] says.
    async fn report(&self) {
        let ready = self.is_ready();
        let changed = {
            let mut state = self.state();
            let changed = state.reported != Some(ready);
            state.reported = Some(ready);
            changed
        };
        if !changed {
            return;
        }
        let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
        self.reporter.set_service_status("", status).await;
        for service in SERVICES {
            self.reporter.set_service_status(service, status).await;
        }
        if ready {
            tracing::info!("ready: serving");
        } else {
            tracing::warn!(draining = self.is_draining(), "not ready: health reports NOT_SERVING");
        }
    }

    /// Probes every [`PROBE_INTERVAL`] until the handle is dropped or aborted.
    pub fn spawn_prober(self: &Arc<Self>, router: Arc<Router>) -> tokio::task::JoinHandle<()> {
        let health = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PROBE_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                health.probe(&router).await;
            }
        })
    }
}

/// One probe, bounded by [`PROBE_TIMEOUT`].
async fn bounded(name: String, probe: futures::future::BoxFuture<'_, Result<(), String>>) -> Component {
    let error = match tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(_elapsed) => Some(format!("no answer within {} ms", PROBE_TIMEOUT.as_millis())),
    };
    Component { name, error }
}

/// What a drain did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    /// Payments still in flight when the drain timeout ended the wait (handed over).
    pub handed_over: usize,
    pub waited: Duration,
}

/// Drains the router: see the module docs. `drain_timeout` bounds the wait for payments in flight.
pub async fn drain(router: &Router, server: RunningServer, drain_timeout: Duration) -> anyhow::Result<DrainReport> {
    let started = Instant::now();
    tracing::info!("draining: reporting NOT_SERVING, refusing new payments");
    server.health().start_draining().await;
    router.stop_admitting();
    let deadline = started + drain_timeout;
    let mut handed_over = 0;
    loop {
        let (in_flight, _) = router.in_flight();
        if in_flight == 0 {
            break;
        }
        if Instant::now() >= deadline {
            handed_over = in_flight;
            break;
        }
        tokio::time::sleep(DRAIN_POLL).await;
    }
    if handed_over > 0 {
        tracing::warn!(
            payments = handed_over,
            timeout_ms = drain_timeout.as_millis(),
            "draining: payments still in flight at the drain timeout; another replica (or the next start) completes them"
        );
    } else {
        tracing::info!(waited_ms = started.elapsed().as_millis(), "draining: no payment in flight");
    }
    // Calls still open are answered first; one stuck on an unreachable ledger is not waited for
    // past the request timeout.
    match tokio::time::timeout(crate::server::REQUEST_TIMEOUT, server.stop()).await {
        Ok(stopped) => stopped?,
        Err(_elapsed) => tracing::warn!("draining: calls still open after the request timeout; stopping anyway"),
    }
    tracing::info!("draining: the API is closed");
    if let Err(error) = router.storage().journal.release().await {
        tracing::warn!(%error, "draining: the journal lease was not released; other replicas take over when it lapses");
    }
    Ok(DrainReport { handed_over, waited: started.elapsed() })
}
