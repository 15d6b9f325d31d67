//! `corridor conformance`: runs the ledger conformance kit
//! ([`corridor_ledger_adapters::conformance`]) against an adapter at a gRPC address, through the
//! same `RemoteLedger` client the router uses, prints a pass/fail table, and exits non-zero if any
//! row failed.
//!
//! With `--restart-command`, the kit also checks that state survives a restart: it runs the
//! command (through `sh -c`) while a transaction is prepared, and expects the adapter back on the
//! same address with the transaction still holding. The command's output goes to stderr so the
//! table stays alone on stdout. A command that outlives [`RESTART_COMMAND_TIMEOUT_MS`] is killed.
//!
//! It does not start, fund or configure the adapter: the operator funds the two accounts first.

use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{Cell, Table, presets::UTF8_FULL_CONDENSED};
use corridor_ledger_adapters::conformance::{self, AMOUNT_MINOR_DEFAULT, ConformanceFixture, RestartHook};
use corridor_ledger_adapters::remote::RemoteLedger;
use corridor_schemas::AccountName;

/// Longest a restart command may run before it is killed and the restart row fails.
pub const RESTART_COMMAND_TIMEOUT_MS: u64 = 120_000;
/// How often a running restart command is checked for having finished.
const RESTART_COMMAND_POLL_MS: u64 = 50;

#[derive(Debug, Clone, clap::Args)]
pub struct ConformanceOptions {
    /// The adapter's gRPC address, e.g. 127.0.0.1:50061.
    #[arg(long)]
    pub ledger: String,
    /// The two accounts funded for the kit, A (with at least four times the amount available) then
    /// B: `--account A --account B`.
    #[arg(long = "account", required = true, num_args = 1)]
    pub accounts: Vec<String>,
    /// The amount the kit moves in each transaction, in minor units.
    #[arg(long, default_value_t = AMOUNT_MINOR_DEFAULT)]
    pub amount_minor: i64,
    /// A shell command that restarts the adapter on the same address and state; adds the row
    /// "state survives an adapter restart".
    #[arg(long)]
    pub restart_command: Option<String>,
    /// A router certificate (the ledger protocol answers only the router) and the CA; or
    /// --insecure-dev for a node serving plain text.
    #[command(flatten)]
    pub tls: crate::transport::TlsArgs,
}

/// Restarts the adapter by running a shell command.
struct ShellRestart {
    command: String,
}

#[async_trait::async_trait]
impl RestartHook for ShellRestart {
    async fn restart(&self) -> Result<(), String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|error| format!("cannot run `{}`: {error}", self.command))?;
        let give_up = Instant::now() + Duration::from_millis(RESTART_COMMAND_TIMEOUT_MS);
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("`{}` exited with {status}", self.command)),
                Ok(None) if Instant::now() < give_up => {
                    tokio::time::sleep(Duration::from_millis(RESTART_COMMAND_POLL_MS)).await;
                }
                Ok(None) => {
                    let _killed = child.kill();
                    let _reaped = child.wait();
                    return Err(format!("`{}` still ran after {RESTART_COMMAND_TIMEOUT_MS} ms", self.command));
                }
                Err(error) => return Err(format!("cannot wait for `{}`: {error}", self.command)),
            }
        }
    }
}

pub async fn run(options: ConformanceOptions) -> anyhow::Result<ExitCode> {
    let [account_a, account_b] = options.accounts.as_slice() else {
        anyhow::bail!("--account: give exactly two, A then B (got {})", options.accounts.len());
    };
    let account_a = AccountName::new(account_a.as_str()).with_context(|| format!("--account {account_a}"))?;
    let account_b = AccountName::new(account_b.as_str()).with_context(|| format!("--account {account_b}"))?;
    let fixture = ConformanceFixture { account_a, account_b, amount_minor: options.amount_minor };
    let security = crate::transport::ClientSecurity::from_files(options.tls.files(false)?.as_ref())?;
    let endpoint = security.endpoint(&options.ledger).with_context(|| format!("--ledger {}", options.ledger))?;
    let ledger =
        RemoteLedger::connect_lazy_at(endpoint, corridor_ledger_adapters::remote::RemoteLedgerSettings::default());
    let restart = options.restart_command.clone().map(|command| ShellRestart { command });

    let report = conformance::run(&ledger, &fixture, restart.as_ref().map(|hook| hook as &dyn RestartHook)).await;

    let subject = match &report.ledger {
        Some(description) => {
            format!("ledger {} ({}, {})", description.ledger, description.currency, description.jurisdiction)
        }
        None => "a ledger".to_owned(),
    };
    println!(
        "corridor conformance: {subject} at {}; A = {}, B = {}",
        options.ledger, fixture.account_a, fixture.account_b
    );
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header(vec![
        Cell::new("check"),
        Cell::new("result"),
        Cell::new("detail"),
    ]);
    for row in &report.rows {
        table.add_row(vec![
            Cell::new(&row.name),
            Cell::new(if row.passed { "pass" } else { "FAIL" }),
            Cell::new(&row.detail),
        ]);
    }
    println!("{table}");
    let passed = report.rows.iter().filter(|row| row.passed).count();
    println!("{passed} of {} checks passed", report.rows.len());
    Ok(if report.passed() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
