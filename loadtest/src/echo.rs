//! `corridor-loadtest echo-server`: the cheapest gRPC service there is, a unary echo
//! (`proto/echo.proto`), on a multi-thread tokio runtime with nothing else running.
//!
//! Loaded with `run --service echo` through exactly the client machinery that loads the router,
//! with a payload as large as the mix's payment instructions, it shows how many unary calls per
//! second HTTP/2 and tonic alone reach on this machine, and at what latency: the ceiling the
//! router's figures are compared with. It has no TLS, no authentication, no limits beyond tonic's
//! defaults; it is a measuring instrument, not a service to expose.

use std::net::SocketAddr;

use anyhow::Context;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

/// The generated code of `proto/echo.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("corridor.loadtest.v1");
}

use proto::echo_server::{Echo, EchoServer};
use proto::{EchoReply, EchoRequest};

#[derive(Debug, Default)]
struct EchoService;

#[tonic::async_trait]
impl Echo for EchoService {
    async fn echo(&self, request: tonic::Request<EchoRequest>) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        Ok(tonic::Response::new(EchoReply { payload: request.into_inner().payload }))
    }
}

/// Serves the echo service on `listen` until SIGINT or SIGTERM. The first line on stdout is
/// `echo-server listening on <address>`, with the port the system chose for port 0.
pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr().context("the listener has no local address")?;
    println!("echo-server listening on {local}");
    // The line above is how a script or test learns the port: it must not sit in a buffer.
    std::io::Write::flush(&mut std::io::stdout()).context("cannot write to stdout")?;
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .add_service(EchoServer::new(EchoService))
        .serve_with_incoming_shutdown(incoming, shutdown_signal())
        .await
        .context("the echo server failed")?;
    Ok(())
}

async fn shutdown_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            eprintln!("warning: cannot listen for SIGTERM ({error}); stop the echo server with SIGINT");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
