//! `corridor`: serve the payment API, or run the demo on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use corridor_router::config::Config;
use corridor_router::demo::{self, DemoOptions};
use corridor_router::network::Network;
use corridor_router::transport::{ClientSecurity, ServerSecurity};
use corridor_router::{
    feed, http, lifecycle, open_storage, open_velocity_counter, recovery, review, router_over, server, telemetry,
};

#[derive(Parser)]
#[command(name = "corridor", version, about = "Open payment routing network for central-bank digital currencies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the payment API (gRPC, with health and reflection) for the network in a config file.
    Serve {
        /// The network's configuration (TOML), e.g. ops/config/network.toml.
        #[arg(long)]
        config: PathBuf,
        /// Overrides `server.listen`; port 0 picks a free port.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Overrides `storage.data_dir` (embedded storage).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Plain-text gRPC without certificates (the config's [tls] is ignored): callers'
        /// identities are whatever their requests claim, and only participants with a registered
        /// key must sign. For development only; logged as a warning.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Start an embedded five-ledger network, pay through its gRPC API, and print a summary.
    Demo(DemoOptions),
    /// Serve one central-bank ledger over the ledger protocol, as an out-of-process adapter.
    LedgerNode(corridor_router::ledger_node::LedgerNodeOptions),
    /// Check a ledger adapter at a gRPC address with the conformance kit.
    Conformance(corridor_router::conformance_command::ConformanceOptions),
    /// Export a regulator's compliance feed, or verify an export offline.
    #[command(subcommand)]
    Feed(corridor_router::feed_command::FeedCommand),
    /// The network's certificate authority: create it, issue party certificates, revoke them.
    #[command(subcommand)]
    Pki(corridor_router::pki::PkiCommand),
}

/// mimalloc rather than glibc malloc: the payment path allocates from many threads at once, and
/// glibc's arenas spent a fifth of the router's CPU there under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen, data_dir, insecure_dev } => {
                serve(config, listen, data_dir, insecure_dev).await
            }
            Command::Demo(options) => demo::run(options).await,
            Command::LedgerNode(options) => corridor_router::ledger_node::run(options, shutdown_signal()).await,
            Command::Conformance(options) => corridor_router::conformance_command::run(options).await,
            Command::Feed(command) => corridor_router::feed_command::run(command).await,
            Command::Pki(command) => corridor_router::pki::run(command),
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    config_path: PathBuf,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    insecure_dev: bool,
) -> anyhow::Result<ExitCode> {
    let mut config =
        Config::load(&config_path).with_context(|| format!("invalid configuration {}", config_path.display()))?;
    let _telemetry = telemetry::init(
        config.telemetry.log_format,
        &telemetry::TraceExport {
            endpoint: config.telemetry.otlp_endpoint.clone(),
            from_environment: true,
            service_name: config.telemetry.service_name.clone(),
        },
    )?;
    if let Some(data_dir) = data_dir {
        config.storage.data_dir = data_dir;
    }
    let tls = if insecure_dev {
        tracing::warn!(
            "--insecure-dev: plain-text gRPC without client certificates; identities are whatever requests claim. \
             Never use it on a network with real money."
        );
        None
    } else {
        Some(config.tls.as_ref().context(
            "tls: the configuration has no [tls] section (ca, cert, key, crl from `corridor pki`); \
             for plain text in development pass --insecure-dev",
        )?)
    };
    let server_security = Arc::new(ServerSecurity::from_files(tls).context("tls")?);
    let ledger_security = ClientSecurity::from_files(tls).context("tls")?;
    if server_security.is_mtls() {
        let unsigned: Vec<&str> =
            config.participants.iter().filter(|p| p.signing_key.is_none()).map(|p| p.id.as_str()).collect();
        if !unsigned.is_empty() {
            tracing::warn!(participants = ?unsigned, "no signing_key registered: these participants cannot pay");
        }
    }
    let storage = open_storage(&config.storage).await.context("cannot open storage")?;
    let ledger_logs = config.storage.data_dir.join("ledgers");
    std::fs::create_dir_all(&ledger_logs).with_context(|| format!("cannot create {}", ledger_logs.display()))?;
    let velocity_counter =
        open_velocity_counter(&config.storage).await.context("cannot open the velocity limits' counters")?;
    let network = Network::build(
        &config,
        &format!("config {}", config_path.display()),
        &ledger_logs,
        velocity_counter,
        &ledger_security,
    )
    .await?;
    let router = router_over(network, storage, &config, &server_security)?;
    let report =
        recovery::recover(router.storage(), router.coordinator(), router.feed()).await.context("recovery failed")?;
    tracing::info!(
        commits_completed = report.commits_completed,
        aborted = report.aborted,
        interrupted = report.interrupted,
        redriving = report.redriving,
        "recovery done"
    );
    // Replicas sharing PostgreSQL complete each other's payments when one of them is gone.
    let _takeover =
        recovery::spawn_takeover(router.storage().clone(), Arc::clone(router.coordinator()), router.feed().clone());
    let listen = listen.unwrap_or(config.server.listen);
    let _review_expiry = review::spawn_review_expiry(Arc::clone(&router));
    if let Some(sanctions) = &router.network().sanctions {
        tracing::info!(entries = sanctions.hook.entries(), "sanctions list loaded; SIGHUP reloads it");
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")?;
        let router = Arc::clone(&router);
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(sanctions) = &router.network().sanctions else { return };
                match sanctions.reload() {
                    Ok(entries) => tracing::info!(entries, "sanctions list reloaded"),
                    Err(error) => tracing::warn!(%error, "sanctions list not reloaded; the old one stays"),
                }
            }
        });
    }
    if let Some(signer) = router.feed_signer() {
        tracing::info!(public_key = %signer.public_key(), "signing feed checkpoints");
        let _checkpointer = feed::spawn_checkpointer(
            std::sync::Arc::clone(router.feed().store()),
            Arc::clone(signer),
            std::time::Duration::from_millis(config.feed.checkpoint_interval_ms),
        );
    }
    let _crl_reloader = server_security.spawn_crl_reloader();
    let running = server::start(Arc::clone(&router), listen, server_security)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    // Tests and scripts read this line to find the port.
    println!("corridor listening on {}", running.local_addr);
    tracing::info!(address = %running.local_addr, ledgers = config.ledgers.len(), storage = ?config.storage.backend, "serving the payment API");
    let _http = match config.telemetry.metrics_listen {
        Some(address) => {
            let http = http::start(address, Arc::clone(&router), Arc::clone(running.health()))
                .await
                .with_context(|| format!("cannot listen on telemetry.metrics_listen {address}"))?;
            // Tests and scripts read this line to find the port.
            println!("corridor metrics on {}", http.local_addr);
            Some(http)
        }
        None => None,
    };
    shutdown_signal().await;
    let drain_timeout = std::time::Duration::from_millis(config.server.drain_timeout_ms);
    let report = lifecycle::drain(&router, running, drain_timeout).await?;
    tracing::info!(handed_over = report.handed_over, waited_ms = report.waited.as_millis(), "stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(_) => {
                let _interrupted = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _interrupted = interrupt.await;
    }
}
