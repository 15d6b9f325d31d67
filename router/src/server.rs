//! The gRPC server: the payment API, FX, compliance review and feeds, the operator API, the
//! ledger-facing TransactionCoordinator API, the standard health service and server reflection
//! (so `grpcurl` works without .proto files), on a listener the caller chooses, over mutual TLS
//! (or plain text with `--insecure-dev`; see [`crate::transport`]). Who may call what is
//! [`crate::authz`]'s: the per-call checks sit in each API, whole services behind an interceptor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use corridor_schemas::wire::FILE_DESCRIPTOR_SET;
use corridor_schemas::wire::v1::compliance_feed_server::ComplianceFeedServer;
use corridor_schemas::wire::v1::compliance_review_server::ComplianceReviewServer;
use corridor_schemas::wire::v1::fx_service_server::FxServiceServer;
use corridor_schemas::wire::v1::operator_service_server::OperatorServiceServer;
use corridor_schemas::wire::v1::payment_service_server::PaymentServiceServer;
use corridor_schemas::wire::v1::transaction_coordinator_server::TransactionCoordinatorServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

use crate::api::PaymentApi;
use crate::authz::{self, Call};
use crate::coordinator_api::CoordinatorApi;
use crate::feed_api::FeedApi;
use crate::fx_api::FxApi;
use crate::lifecycle::Health;
use crate::operator_api::OperatorApi;
use crate::pipeline::Router;
use crate::review_api::ReviewApi;
use crate::transport::{self, ServerSecurity};

/// Largest request the payment API decodes. An instruction is a few hundred bytes.
pub const REQUEST_BYTES_MAX: usize = 64 * 1024;
/// A request still unanswered after this long is cancelled with DEADLINE_EXCEEDED.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent calls (HTTP/2 streams) one connection may have open; a client needing more opens
/// more connections, each with its own handshake and identity.
pub const STREAMS_PER_CONNECTION_MAX: u32 = 1_024;
/// A connection older than this is asked to go away (clients reconnect with a new handshake),
/// so a revoked certificate loses even the connections it opened before its revocation.
pub const CONNECTION_AGE_MAX: Duration = Duration::from_secs(300);

pub struct RunningServer {
    pub local_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    health: Arc<Health>,
    prober: JoinHandle<()>,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.prober.abort();
    }
}

impl RunningServer {
    /// Readiness as the health service reports it ([`crate::lifecycle`]).
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Stops accepting, lets in-flight calls finish, and waits for the server to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let (shutdown, _) = oneshot::channel();
        let _already_stopping = std::mem::replace(&mut self.shutdown, shutdown).send(());
        (&mut self.task).await??;
        Ok(())
    }

    /// Waits until the server ends on its own (it only does on error) or `signal` completes.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
        signal.await;
        self.stop().await
    }
}

/// Binds `listen` (port 0 picks a free port) and serves in the background, over mTLS or (for
/// [`ServerSecurity::InsecureDev`]) plain text.
pub async fn start(
    router: Arc<Router>,
    listen: SocketAddr,
    security: Arc<ServerSecurity>,
) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // The first answer is already a real one: probed before the listener opens.
    let health = Health::new(health_reporter);
    health.probe(&router).await;
    let prober = health.spawn_prober(Arc::clone(&router));
    // List only what this server serves: the descriptor set also holds the ledger protocol,
    // which ledger adapters serve, not the router.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("corridor.v1.PaymentService")
            .with_service_name("corridor.v1.FxService")
            .with_service_name("corridor.v1.ComplianceReview")
            .with_service_name("corridor.v1.ComplianceFeed")
            .with_service_name("corridor.v1.OperatorService")
            .with_service_name("corridor.v1.TransactionCoordinator")
            .with_service_name("grpc.health.v1.Health")
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let coordinator = TransactionCoordinatorServer::new(CoordinatorApi::new(Arc::clone(&router.storage().journal)))
        .max_decoding_message_size(REQUEST_BYTES_MAX);
    let operator = InterceptedService::new(
        OperatorServiceServer::new(OperatorApi::new(Arc::clone(&router))).max_decoding_message_size(REQUEST_BYTES_MAX),
        authz::require(Call::Administer),
    );
    let public_key = router.feed_signer().map(|signer| signer.public_key());
    let feed = ComplianceFeedServer::new(FeedApi::new(Arc::clone(&router), public_key))
        .max_decoding_message_size(REQUEST_BYTES_MAX);
    let review =
        ComplianceReviewServer::new(ReviewApi::new(Arc::clone(&router))).max_decoding_message_size(REQUEST_BYTES_MAX);
    let fx = FxServiceServer::new(FxApi::new(Arc::clone(&router))).max_decoding_message_size(REQUEST_BYTES_MAX);
    let payments = PaymentServiceServer::new(PaymentApi::new(router)).max_decoding_message_size(REQUEST_BYTES_MAX);

    let (shutdown, shutdown_signal) = oneshot::channel::<()>();
    let incoming = transport::incoming(listener, security);
    let server = tonic::transport::Server::builder()
        .timeout(REQUEST_TIMEOUT)
        .max_concurrent_streams(Some(STREAMS_PER_CONNECTION_MAX))
        .max_connection_age(CONNECTION_AGE_MAX)
        .max_connection_age_grace(REQUEST_TIMEOUT)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(payments)
        .add_service(fx)
        .add_service(review)
        .add_service(feed)
        .add_service(operator)
        .add_service(coordinator)
        .serve_with_incoming_shutdown(incoming, async {
            let _either_way = shutdown_signal.await;
        });
    let task = tokio::spawn(server);
    Ok(RunningServer { local_addr, shutdown, task, health, prober })
}
