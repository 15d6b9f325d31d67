//! What the integration tests that drive real `corridor` processes share: starting a process and
//! waiting for its "listening on" line, killing, signalling and restarting it, free ports, fresh
//! PostgreSQL databases, and listing every payment a router stored.
//!
//! Each test file that uses it says `mod support;`; not every file uses every function.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::payment_service_client::PaymentServiceClient;
use tokio_postgres::NoTls;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn postgres_url() -> String {
    std::env::var("CORRIDOR_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("CORRIDOR_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Creates an empty database and returns its URL.
pub async fn fresh_database(name: &str) -> String {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), NoTls).await.unwrap();
    tokio::spawn(connection);
    let database = format!("corridor_test_{name}_{}", uuid::Uuid::now_v7().simple());
    client.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
    let base = postgres_url();
    let (prefix, _) = base.rsplit_once('/').unwrap();
    format!("{prefix}/{database}")
}

/// How a process is started: where its log goes (stderr is inherited without one), its
/// `RUST_LOG`, and extra environment variables.
#[derive(Clone, Debug)]
pub struct Launch {
    pub log: Option<PathBuf>,
    pub filter: String,
    pub env: Vec<(String, String)>,
}

impl Default for Launch {
    fn default() -> Self {
        Self { log: None, filter: "error".into(), env: Vec::new() }
    }
}

impl Launch {
    /// Logs into `log` at `filter`.
    pub fn logging(log: &Path, filter: &str) -> Self {
        Self { log: Some(log.to_owned()), filter: filter.into(), env: Vec::new() }
    }

    pub fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }
}

/// A running `corridor` process; killed when dropped.
pub struct Process {
    child: Child,
    stdout: BufReader<ChildStdout>,
    args: Vec<String>,
    launch: Launch,
}

impl Process {
    /// Starts `corridor ARGS` (log on stderr, errors only) and waits for its "listening on" line.
    pub fn start(args: &[String]) -> Self {
        Self::start_with(args, Launch::default())
    }

    pub fn start_with(args: &[String], launch: Launch) -> Self {
        let stderr = match &launch.log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_corridor"));
        command.args(args).env("RUST_LOG", &launch.filter).stdout(Stdio::piped()).stderr(stderr);
        for (name, value) in &launch.env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let log = launch.log.as_deref().map(read).unwrap_or_default();
        assert!(line.contains("listening on"), "{args:?} printed {line:?}; log:\n{log}");
        Self { child, stdout, args: args.to_vec(), launch }
    }

    /// The next line the process prints on stdout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and wait for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts it again with the same arguments (its log, if any, starts again too).
    pub fn restart(&mut self) {
        *self = Self::start_with(&self.args.clone(), self.launch.clone());
    }

    /// Sends a signal (`-TERM`, `-INT`, ...).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit (at most `within`) and returns its exit code.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            let log = self.launch.log.as_deref().map(read).unwrap_or_default();
            assert!(Instant::now() < deadline, "the process did not exit within {within:?}; log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _already_gone = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// A file's text, or nothing if it cannot be read.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Every payment the router at `endpoint` stored, all pages.
pub async fn list_all(endpoint: &str) -> Vec<wire::Payment> {
    let mut client = PaymentServiceClient::connect(endpoint.to_owned()).await.unwrap();
    let mut payments = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_payments(wire::ListPaymentsRequest { participant_id: String::new(), page_size: 1_000, page_token })
            .await
            .unwrap()
            .into_inner();
        payments.extend(page.payments);
        if page.next_page_token.is_empty() {
            return payments;
        }
        page_token = page.next_page_token;
    }
}
