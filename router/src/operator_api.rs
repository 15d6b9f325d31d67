//! The gRPC edge of `corridor.v1.OperatorService`: administration of a running router. The whole
//! service is behind [`crate::authz::Call::Administer`] (operators only), checked by the
//! interceptor [`crate::server`] installs.

use std::sync::Arc;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::operator_service_server::OperatorService;
use tonic::{Request, Response, Status};

use crate::pipeline::Router;

pub struct OperatorApi {
    router: Arc<Router>,
}

impl OperatorApi {
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

#[tonic::async_trait]
impl OperatorService for OperatorApi {
    async fn reload_sanctions(
        &self,
        _request: Request<wire::ReloadSanctionsRequest>,
    ) -> Result<Response<wire::ReloadSanctionsResponse>, Status> {
        let sanctions =
            self.router.network().sanctions.as_ref().ok_or_else(|| {
                Status::failed_precondition("this network screens no payments (no [sanctions] section)")
            })?;
        let entries = sanctions.reload().map_err(|error| {
            Status::failed_precondition(format!("the sanctions list was not reloaded, the old one stays: {error}"))
        })?;
        tracing::info!(entries, "sanctions list reloaded by an operator");
        Ok(Response::new(wire::ReloadSanctionsResponse { entries: u64::try_from(entries).unwrap_or(u64::MAX) }))
    }
}
