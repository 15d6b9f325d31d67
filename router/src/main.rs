//! `corridor`: serve the payment API, or run the demo on the embedded default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use corridor_router::config::Config;
use corridor_router::demo::{self, DemoOptions};
use corridor_router::{embedded_router, server};

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
    },
    /// Start an embedded four-ledger network, pay through its gRPC API, and print a summary.
    Demo(DemoOptions),
}

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
            Command::Serve { config, listen } => serve(config, listen).await,
            Command::Demo(options) => demo::run(options).await,
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

async fn serve(config_path: PathBuf, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config =
        Config::load(&config_path).with_context(|| format!("invalid configuration {}", config_path.display()))?;
    let router = embedded_router(&config, &format!("config {}", config_path.display()))?;
    let listen = listen.unwrap_or(config.server.listen);
    let running = server::start(router, listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    // Tests and scripts read this line to find the port.
    println!("corridor listening on {}", running.local_addr);
    tracing::info!(address = %running.local_addr, ledgers = config.ledgers.len(), "serving the payment API on the embedded network");
    running.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
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
