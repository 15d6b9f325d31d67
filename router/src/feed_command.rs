//! `corridor feed`: what a regulator runs on its own machine.
//!
//! - `corridor feed export` reads the regulator's feed from a router (ComplianceFeed: every record
//!   from the beginning up to the current head, and every signed checkpoint) into a JSON-lines file
//!   in the export format of `corridor_compliance::feed` — records in sequence order, each
//!   checkpoint right after the record it covers.
//! - `corridor feed verify` checks such a file offline, against the router's public key: every
//!   record's hash, every link, sequence continuity, every checkpoint's signature and head. It
//!   says exactly where a chain breaks, and exits non-zero if it does.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use corridor_compliance::feed::{FeedLine, FeedPublicKey, export_lines, parse_line, verify_reader};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_feed_client::ComplianceFeedClient;
use futures::StreamExt;

#[derive(Debug, clap::Subcommand)]
pub enum FeedCommand {
    /// Write a regulator's whole feed and its checkpoints to a JSON-lines file.
    Export {
        /// The router's gRPC address, e.g. 127.0.0.1:50051.
        #[arg(long)]
        router: String,
        /// The regulator whose jurisdiction's feed to export.
        #[arg(long)]
        regulator: String,
        /// Where to write the export.
        #[arg(long)]
        out: PathBuf,
        /// The regulator's certificate and the CA; or --insecure-dev.
        #[command(flatten)]
        tls: crate::transport::TlsArgs,
    },
    /// Verify an exported feed against the router's public key (hex), offline.
    Verify {
        /// The export (JSON lines).
        #[arg(long)]
        feed: PathBuf,
        /// The router's Ed25519 public key, 64 hex digits (GetCheckpoint shows it). Repeat for
        /// several trusted keys (after a key rotation).
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<String>,
    },
}

pub async fn run(command: FeedCommand) -> anyhow::Result<ExitCode> {
    match command {
        FeedCommand::Export { router, regulator, out, tls } => export(router, regulator, out, &tls).await,
        FeedCommand::Verify { feed, public_keys } => verify(feed, &public_keys),
    }
}

/// A regulator's feed as read from a router, in the export format.
pub struct Export {
    pub jurisdiction: String,
    /// Hex Ed25519 public key the router signs with.
    pub public_key: String,
    pub records: usize,
    pub checkpoints: usize,
    /// JSON lines.
    pub text: String,
}

/// Reads `regulator`'s whole feed (up to its head when the call starts) and every checkpoint.
pub async fn export_feed(
    mut client: ComplianceFeedClient<tonic::transport::Channel>,
    regulator: &str,
) -> anyhow::Result<Export> {
    let head = client
        .get_checkpoint(wire::GetCheckpointRequest { regulator_id: regulator.to_owned() })
        .await
        .context("GetCheckpoint")?
        .into_inner();
    let checkpoints = client
        .list_checkpoints(wire::ListCheckpointsRequest { regulator_id: regulator.to_owned() })
        .await
        .context("ListCheckpoints")?
        .into_inner()
        .checkpoints;
    let head_sequence = head.head_sequence.max(checkpoints.last().map_or(0, |c| c.sequence));
    let mut records = Vec::new();
    if head_sequence > 0 {
        let mut stream = client
            .subscribe(wire::SubscribeFeedRequest { regulator_id: regulator.to_owned(), from_sequence: 1 })
            .await
            .context("Subscribe")?
            .into_inner();
        while let Some(record) = stream.next().await {
            let record = record.context("the feed stream broke")?;
            let sequence = record.sequence;
            match parse_line(records.len() + 1, &record.line).context("a record line from the router")? {
                FeedLine::Record(record) => records.push(*record),
                FeedLine::Checkpoint(_) => anyhow::bail!("the router sent a checkpoint as record {sequence}"),
            }
            if sequence >= head_sequence {
                break;
            }
        }
    }
    let mut parsed = Vec::with_capacity(checkpoints.len());
    for checkpoint in &checkpoints {
        match parse_line(parsed.len() + 1, &checkpoint.line).context("a checkpoint line from the router")? {
            FeedLine::Checkpoint(checkpoint) => parsed.push(checkpoint),
            FeedLine::Record(_) => anyhow::bail!("the router sent a record as a checkpoint"),
        }
    }
    let text = export_lines(&records, &parsed).context("the router's feed cannot be exported")?;
    Ok(Export {
        jurisdiction: head.jurisdiction,
        public_key: head.public_key,
        records: records.len(),
        checkpoints: parsed.len(),
        text,
    })
}

async fn export(
    router: String,
    regulator: String,
    out: PathBuf,
    tls: &crate::transport::TlsArgs,
) -> anyhow::Result<ExitCode> {
    let security = crate::transport::ClientSecurity::from_files(tls.files(false)?.as_ref())?;
    let channel = security
        .endpoint(&router)
        .with_context(|| format!("--router {router}"))?
        .connect()
        .await
        .with_context(|| format!("cannot reach {router}"))?;
    let client = ComplianceFeedClient::new(channel);
    let export = export_feed(client, &regulator).await?;
    std::fs::write(&out, &export.text).with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "exported {} records and {} checkpoints of {} to {} (router public key {})",
        export.records,
        export.checkpoints,
        export.jurisdiction,
        out.display(),
        export.public_key
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(feed: PathBuf, public_keys: &[String]) -> anyhow::Result<ExitCode> {
    let keys = public_keys
        .iter()
        .map(|key| key.parse::<FeedPublicKey>().map_err(|error| anyhow::anyhow!("--public-key {key}: {error}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let file = std::fs::File::open(&feed).with_context(|| format!("cannot open {}", feed.display()))?;
    match verify_reader(BufReader::new(file), &keys) {
        Ok(report) => {
            println!(
                "ok: {} records of {} ({}..{}), {} checkpoints verified, last checkpoint at sequence {}, {} records after it",
                report.records,
                report.jurisdiction,
                report.first_sequence.map_or("-".to_owned(), |s| s.to_string()),
                report.last_sequence.map_or("-".to_owned(), |s| s.to_string()),
                report.checkpoints_verified,
                report.last_checkpointed_sequence.map_or("none".to_owned(), |s| s.to_string()),
                report.records_after_last_checkpoint,
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            println!("BROKEN: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}
