//! The router's plain-HTTP listener for operators (`telemetry.metrics_listen`): `GET /metrics`
//! (Prometheus text exposition, [`crate::metrics`]), `GET /livez` (the process answers) and
//! `GET /readyz` (200 only while the router is ready to take payments, [`crate::lifecycle`]; the
//! body names each dependency and why it is down). For Prometheus and the orchestrator's probes,
//! on an internal address: it carries no payment data and no TLS.
//!
//! Not here: the payment API (gRPC, [`crate::server`]).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::lifecycle::Health;
use crate::metrics::metrics;
use crate::pipeline::Router;

#[derive(Clone)]
struct Shared {
    router: Arc<Router>,
    health: Arc<Health>,
}

/// The listener, serving until dropped.
pub struct RunningHttp {
    pub local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for RunningHttp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `listen` (port 0 picks one) and serves `/metrics`, `/livez` and `/readyz`.
pub async fn start(listen: SocketAddr, router: Arc<Router>, health: Arc<Health>) -> anyhow::Result<RunningHttp> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/metrics", get(render_metrics))
        .route("/livez", get(|| async { "alive\n" }))
        .route("/readyz", get(readiness))
        .with_state(Shared { router, health });
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::warn!(%error, "the metrics listener stopped");
        }
    });
    Ok(RunningHttp { local_addr, task })
}

async fn render_metrics(State(shared): State<Shared>) -> impl IntoResponse {
    let metrics = metrics();
    // Sampled when scraped: the semaphore knows how many payments run.
    let (in_flight, in_flight_max) = shared.router.in_flight();
    metrics.queue("payments_in_flight", in_flight, in_flight_max);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.render())
}

async fn readiness(State(shared): State<Shared>) -> impl IntoResponse {
    let mut body = String::new();
    if shared.health.is_draining() {
        body.push_str("draining\n");
    }
    for component in shared.health.components() {
        match component.error {
            None => body.push_str(&format!("{}: ok\n", component.name)),
            Some(error) => body.push_str(&format!("{}: {error}\n", component.name)),
        }
    }
    let status = if shared.health.is_ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, body)
}
