//! Drives the real `corridor` binary as an out-of-process ledger: `corridor ledger-node` on the
//! durable memory backend, checked by `corridor conformance` with a restart command that kills the
//! node outright (SIGKILL, as a crash would) and starts it again on the same port and data file.
//! Then a clean stop (SIGTERM) and a start that finds the state it left.
//!
//! Unix only: the restart command is a shell script, and the nodes it starts are found by pid.

#![cfg(unix)]
// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use corridor_ledger_adapters::conformance::rows;
use corridor_ledger_adapters::remote::RemoteLedger;
use corridor_ledger_adapters::{Ledger, Posting, TransactionId, TransactionState, Vote};
use corridor_schemas::{AccountName, Currency, PaymentId};

const CORRIDOR: &str = env!("CARGO_BIN_EXE_corridor");

/// `{ledger}` is replaced by the ledger's id.
const LEDGER_NODE_TOML: &str = r#"
[ledger]
id = "{ledger}"
currency = "HKD"
jurisdiction = "HK"

[[accounts]]
name = "conformance.a"
opening_balance = "1000.00"

[[accounts]]
name = "conformance.b"
opening_balance = "0"

[[accounts]]
name = "bank-hk.alice"
opening_balance = "250.00"
"#;

/// Starts the node in the background (so it outlives the script), records its pid, and returns
/// once it listens. Its output goes to files: a node holding the script's stdout would keep whoever
/// reads that output waiting for it to end. `{backend}` is replaced by the backend's arguments.
const START_NODE_SH: &str = r#"#!/bin/sh
set -eu
dir="$(dirname "$0")"
: > "$dir/node.out"
"$CORRIDOR_BIN" ledger-node --insecure-dev --config "$dir/ledger.toml" {backend} \
  --listen "$1" > "$dir/node.out" 2>> "$dir/node.err" < /dev/null &
echo $! > "$dir/node.pid"
tries=0
until grep -q 'listening on' "$dir/node.out"; do
  tries=$((tries + 1))
  if [ "$tries" -gt 600 ]; then echo "the ledger node did not start" >&2; exit 1; fi
  sleep 0.05
done
"#;

/// Kills the running node as a crash would, waits until it is gone (or a zombie: by then its files,
/// the data file's lock included, are closed), and starts it again on the same address.
const RESTART_NODE_SH: &str = r#"#!/bin/sh
set -eu
dir="$(dirname "$0")"
pid="$(cat "$dir/node.pid")"
kill -KILL "$pid"
while [ -e "/proc/$pid" ] && [ "$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null)" != "Z" ]; do
  sleep 0.02
done
exec sh "$dir/start-node.sh" "$(cat "$dir/address")"
"#;

/// A scratch directory holding the node's files; on drop, kills the node its scripts started
/// (by the pid they recorded) and removes the directory.
struct NodeDirectory(PathBuf);

/// The durable memory backend, with its operation log in the node's directory.
const MEMORY_BACKEND: &str = "--backend memory --data-file \"$dir/ledger.log\"";

impl NodeDirectory {
    /// A node of ledger e-hkd on the durable memory backend.
    fn new() -> Self {
        Self::with("e-hkd", MEMORY_BACKEND)
    }

    fn with(ledger: &str, backend: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("corridor-ledger-node-{}-{}", std::process::id(), PaymentId::generate()));
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("ledger.toml"), LEDGER_NODE_TOML.replace("{ledger}", ledger)).unwrap();
        std::fs::write(path.join("start-node.sh"), START_NODE_SH.replace("{backend}", backend)).unwrap();
        std::fs::write(path.join("restart-node.sh"), RESTART_NODE_SH).unwrap();
        Self(path)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Runs the start script; returns the address the node listens on.
    fn start_node(&self, listen: &str) -> String {
        let status = Command::new("sh")
            .arg(self.file("start-node.sh"))
            .arg(listen)
            .env("CORRIDOR_BIN", CORRIDOR)
            .status()
            .unwrap();
        assert!(status.success(), "the node did not start: {}", self.node_log());
        let out = std::fs::read_to_string(self.file("node.out")).unwrap();
        let address =
            out.lines().next().unwrap().strip_prefix("corridor ledger-node listening on ").unwrap().to_owned();
        std::fs::write(self.file("address"), &address).unwrap();
        address
    }

    fn node_log(&self) -> String {
        std::fs::read_to_string(self.file("node.err")).unwrap_or_default()
    }

    fn scripted_node_pid(&self) -> Option<String> {
        std::fs::read_to_string(self.file("node.pid")).ok().map(|pid| pid.trim().to_owned())
    }

    /// Stops the node the scripts started with `signal`, and waits until it is gone.
    fn stop_scripted_node(&self, signal: &str) {
        if let Some(pid) = self.scripted_node_pid() {
            let _signalled = Command::new("kill").arg(signal).arg(&pid).status();
            let give_up = Instant::now() + Duration::from_secs(10);
            let proc = Path::new("/proc").join(&pid);
            while proc.exists() && Instant::now() < give_up {
                let state = std::fs::read_to_string(proc.join("stat")).unwrap_or_default();
                if state.split(' ').nth(2) == Some("Z") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = std::fs::remove_file(self.file("node.pid"));
        }
    }
}

impl Drop for NodeDirectory {
    fn drop(&mut self) {
        self.stop_scripted_node("-KILL");
        let _already_gone = std::fs::remove_dir_all(&self.0);
    }
}

fn account(name: &str) -> AccountName {
    AccountName::new(name).unwrap()
}

/// Runs `corridor conformance` with a crash-and-restart command against the node of `directory`,
/// and checks that every row passed.
fn check_conformance_across_a_crash(directory: &NodeDirectory, ledger: &str) {
    let address = directory.start_node("127.0.0.1:0");
    let restart = format!("sh {}", directory.file("restart-node.sh").display());
    let output = Command::new(CORRIDOR)
        .args(["conformance", "--insecure-dev", "--ledger", &format!("http://{address}")])
        .args(["--account", "conformance.a", "--account", "conformance.b"])
        .args(["--restart-command", &restart])
        .env("CORRIDOR_BIN", CORRIDOR)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    // Shown with --nocapture: the table as an operator sees it.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "conformance failed:\n{stdout}\n{}\nnode log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        directory.node_log()
    );
    assert!(
        stdout.starts_with(&format!("corridor conformance: ledger {ledger} (HKD, HK) at http://{address}")),
        "{stdout}"
    );
    for row in [
        rows::FIXTURE,
        rows::HOLDS_REDUCE_AVAILABILITY,
        rows::PREPARE_IDEMPOTENT,
        rows::COMMIT_IDEMPOTENT,
        rows::ABORT_IDEMPOTENT,
        rows::ABORT_AFTER_COMMIT_REFUSED,
        rows::COMMIT_AFTER_ABORT_REFUSED,
        rows::UNKNOWN_TRANSACTION_REFUSED,
        rows::UNBALANCED_POSTINGS_REFUSED,
        rows::POSTINGS_SUM_TO_ZERO,
        rows::WRONG_CURRENCY_REFUSED,
        rows::CONFLICTING_DUPLICATE_REFUSED,
        rows::UNKNOWN_ACCOUNT_VOTES_NO,
        rows::DEADLINE_PASSED_VOTES_NO,
        rows::NO_OVERDRAFT_UNDER_CONCURRENCY,
        rows::SURVIVES_RESTART,
        rows::NO_NET_CHANGE,
    ] {
        let line =
            stdout.lines().find(|line| line.contains(row)).unwrap_or_else(|| panic!("no row `{row}`:\n{stdout}"));
        assert!(line.contains("┆ pass"), "{line}");
    }
    assert!(stdout.contains("17 of 17 checks passed"), "{stdout}");
}

#[test]
fn a_ledger_node_passes_the_conformance_kit_across_a_crash_and_restart() {
    let directory = NodeDirectory::new();
    check_conformance_across_a_crash(&directory, "e-hkd");
    // The node was killed and restarted from its log: it logged the replay.
    assert!(directory.node_log().contains("created=false"), "{}", directory.node_log());
}

#[test]
fn a_ledger_node_on_postgres_passes_the_conformance_kit_across_a_crash_and_restart() {
    // PostgreSQL as the ledger crate's tests find it; a ledger id of its own, so runs never meet.
    let url = std::env::var("CORRIDOR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let uuid = PaymentId::generate().as_uuid().simple().to_string();
    let ledger = format!("node-{}", &uuid[8..]);
    let directory = NodeDirectory::with(&ledger, &format!("--backend postgres --database-url '{url}'"));
    check_conformance_across_a_crash(&directory, &ledger);
}

#[test]
fn conformance_exits_non_zero_when_a_row_fails() {
    let directory = NodeDirectory::new();
    let address = directory.start_node("127.0.0.1:0");
    // bank-hk.alice has 250.00; the kit needs four times the amount available.
    let output = Command::new(CORRIDOR)
        .args(["conformance", "--insecure-dev", "--ledger", &format!("http://{address}")])
        .args(["--account", "bank-hk.alice", "--account", "conformance.b", "--amount-minor", "10000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL") && stdout.contains("the kit needs at least 400.00 HKD"), "{stdout}");
    assert!(stdout.contains("0 of 1 checks passed"), "{stdout}");
}

/// A node started as this test's own child, so its exit status can be read.
struct ChildNode(Child);

impl ChildNode {
    fn start(directory: &NodeDirectory) -> (Self, String) {
        let mut child = Command::new(CORRIDOR)
            .args(["ledger-node", "--insecure-dev", "--backend", "memory", "--listen", "127.0.0.1:0"])
            .arg("--config")
            .arg(directory.file("ledger.toml"))
            .arg("--data-file")
            .arg(directory.file("ledger.log"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
        let address = first_line.trim().strip_prefix("corridor ledger-node listening on ").unwrap().to_owned();
        (Self(child), address)
    }

    /// SIGTERM, then the exit status.
    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.0.wait().unwrap()
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _already_gone = self.0.kill();
        let _reaped = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_node_stops_cleanly_and_starts_where_it_stopped() {
    let directory = NodeDirectory::new();
    let hkd = Currency::from_code("HKD").unwrap();
    let transfer = vec![
        Posting { account: account("bank-hk.alice"), currency: hkd, amount_minor: -5_000 },
        Posting { account: account("conformance.b"), currency: hkd, amount_minor: 5_000 },
    ];
    let held: TransactionId = PaymentId::generate().into();
    let deadline = SystemTime::now() + Duration::from_secs(30);

    let (node, address) = ChildNode::start(&directory);
    let ledger = RemoteLedger::connect_lazy(&format!("http://{address}")).unwrap();
    assert_eq!(ledger.prepare(held, &transfer, deadline).await, Ok(Vote::Yes));
    // Let go of the connection, as a router would when told the node is going away.
    drop(ledger);
    let status = node.terminate();
    assert!(status.success(), "SIGTERM: {status}");

    // The opening balances were issued once: a restart finds the same state, hold included.
    let (node, address) = ChildNode::start(&directory);
    let ledger = RemoteLedger::connect_lazy(&format!("http://{address}")).unwrap();
    assert_eq!(ledger.status(held).await, Ok(TransactionState::Prepared));
    let alice = ledger.balance(&account("bank-hk.alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor), (25_000, 5_000));
    assert_eq!(ledger.commit(held).await, Ok(()));
    assert_eq!(ledger.balance(&account("conformance.b")).await.unwrap().balance_minor, 5_000);
    drop(ledger);
    assert!(node.terminate().success());
}
