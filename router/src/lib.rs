//! The Corridor router: the payment API, the pipeline (route → FX → compliance → two-phase
//! commit), the coordinator, and the `corridor` binary's commands.
//!
//! Map: [`config`] reads and checks the configuration; [`network`] builds the ledgers, participants,
//! rates, fees and hooks from it; [`pipeline`] runs one payment; [`route`] plans its legs;
//! [`settlement`] is the two-phase-commit coordinator; [`store`] keeps payments and idempotency
//! keys; [`api`] and [`server`] are the gRPC edge; [`demo`] is `corridor demo`.

pub mod api;
pub mod clock;
pub mod config;
pub mod demo;
pub mod network;
pub mod payment;
pub mod pipeline;
pub mod route;
pub mod server;
pub mod settlement;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::network::Network;
use crate::pipeline::{Router, RouterSettings};

/// Builds a router over the embedded network described by `config`.
pub fn embedded_router(config: &Config, rate_source: &str) -> Result<Arc<Router>, config::ConfigError> {
    let network = Network::embedded(config, rate_source)?;
    let settings = RouterSettings {
        prepare_timeout: Duration::from_millis(config.settlement.prepare_timeout_ms),
        decision_attempts_max: config.settlement.decision_attempts_max,
        in_flight_max: config.settlement.in_flight_max,
    };
    Ok(Arc::new(Router::new(Arc::new(network), settings, Arc::new(clock::SystemClock))))
}
