//! The built binary end to end: `echo-server` on a free port, `run --service echo` against it in
//! both modes with `--json` and `--plot`, `plot` overlaying the two reports, and the exit codes of
//! a bad option and of a target that is not there. No timing is asserted: only that the runs
//! complete, count what they sent and write well-formed reports.

// Tests fail loudly on any unexpected error; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_corridor-loadtest");

/// The echo server, stopped when dropped.
struct EchoServer {
    child: Child,
    address: String,
}

impl EchoServer {
    fn start() -> Self {
        let mut child = Command::new(BINARY)
            .args(["echo-server", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let address =
            line.trim().strip_prefix("echo-server listening on ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
        Self { child, address }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A file in the temp directory, unique to this test process, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        Self(std::env::temp_dir().join(format!("corridor-loadtest-{}-{name}", std::process::id())))
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn loadtest(arguments: &[&str]) -> Output {
    Command::new(BINARY).args(arguments).output().unwrap()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn echo_runs_in_both_modes_and_their_reports_plot_together() {
    let server = EchoServer::start();
    let target = format!("http://{}", server.address);
    let (closed_json, closed_svg, open_json, overlay) = (
        TempFile::new("closed.json"),
        TempFile::new("closed.svg"),
        TempFile::new("open.json"),
        TempFile::new("overlay.svg"),
    );

    let closed = loadtest(&[
        "run",
        "--service",
        "echo",
        "--target",
        &target,
        "--requests",
        "500",
        "--warmup",
        "0",
        "--concurrency",
        "8",
        "--connections",
        "2",
        "--label",
        "echo closed",
        "--json",
        closed_json.path(),
        "--plot",
        closed_svg.path(),
    ]);
    assert_success(&closed);
    let stdout = String::from_utf8(closed.stdout).unwrap();
    assert!(stdout.contains("answers/s") && stdout.contains("latency p99.9"), "{stdout}");

    let report: serde_json::Value = serde_json::from_str(&closed_json.read()).unwrap();
    assert_eq!(report["label"], "echo closed");
    assert_eq!(report["settings"]["service"], "echo");
    assert_eq!(report["settings"]["mode"], "closed");
    assert_eq!(report["settings"]["requests"], 500);
    assert!(report["settings"]["payload_bytes"].as_u64().unwrap() > 50, "sized like a payment instruction");
    let results = &report["results"];
    assert_eq!((results["requests"].as_u64(), results["answers"].as_u64()), (Some(500), Some(500)));
    assert_eq!((results["errors"].as_u64(), results["unexpected"].as_u64()), (Some(0), Some(0)));
    assert!(results["throughput_per_s"].as_u64().unwrap() > 0);
    let latency = &results["latency_us"];
    assert!(latency["p50"].as_u64().unwrap() <= latency["p99"].as_u64().unwrap());
    assert!(latency["p99"].as_u64().unwrap() <= latency["max"].as_u64().unwrap());
    let curve = report["latency_curve"].as_array().unwrap();
    assert!(curve.len() > 20);
    assert_eq!(curve.last().unwrap()["percentile"], 100);
    assert_eq!(curve.last().unwrap()["latency_us"], latency["max"]);
    assert_eq!(report["kinds"][0]["name"], "echo");
    assert_eq!(report["kinds"][0]["matched"], 500);
    assert_eq!(report["outcomes"][0]["outcome"], "OK");
    assert!(closed_svg.read().contains("<polyline"));

    let open = loadtest(&[
        "run",
        "--service",
        "echo",
        "--target",
        &target,
        "--mode",
        "open",
        "--rate",
        "1000",
        "--requests",
        "500",
        "--warmup",
        "0",
        "--label",
        "echo open",
        "--json",
        open_json.path(),
        "--quiet",
    ]);
    assert_success(&open);
    let report: serde_json::Value = serde_json::from_str(&open_json.read()).unwrap();
    assert_eq!(report["settings"]["mode"], "open");
    assert_eq!(report["settings"]["rate_per_s"], 1000);
    assert_eq!(report["results"]["requests"], 500);
    assert_eq!(report["results"]["answers"], 500);
    assert!(report["results"]["service_time_us"]["p50"].is_u64());
    assert!(!report["service_time_curve"].as_array().unwrap().is_empty());

    let plotted = loadtest(&[
        "plot",
        "--out",
        overlay.path(),
        "--title",
        "echo, both loops",
        closed_json.path(),
        open_json.path(),
    ]);
    assert_success(&plotted);
    let svg = overlay.read();
    assert_eq!(svg.matches("<polyline").count(), 2);
    assert!(svg.contains("echo closed") && svg.contains("echo open") && svg.contains("echo, both loops"));
}

#[test]
fn bad_options_and_a_missing_server_exit_with_1() {
    let bad_kind = loadtest(&["run", "--mix", "domestic=1,wire=2"]);
    assert_eq!(bad_kind.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_kind.stderr).contains("the mix has no kind \"wire\""));

    let bad_flag = loadtest(&["run", "--connections", "0"]);
    assert_eq!(bad_flag.status.code(), Some(1));

    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = format!("http://127.0.0.1:{port}");
    let nobody = loadtest(&["run", "--service", "echo", "--target", &target, "--requests", "10", "--quiet"]);
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("cannot connect"));

    let help = loadtest(&["run", "--help"]);
    assert_success(&help);
}
