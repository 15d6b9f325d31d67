//! The kit against the reference ledger (in-process, and over gRPC through the real server and
//! client, restarts included), and against deliberately broken adapters, each of which must fail
//! the row of the rule it breaks.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use corridor_schemas::{AccountName, Currency, Jurisdiction, LedgerId, PaymentId};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

use super::*;
use crate::memory::InMemoryLedger;
use crate::remote::{LedgerAdapterService, RemoteLedger};
use crate::{AccountBalance, LedgerDescription, Posting};

fn account(name: &str) -> AccountName {
    AccountName::new(name).unwrap()
}

fn description() -> LedgerDescription {
    LedgerDescription {
        ledger: LedgerId::new("e-hkd").unwrap(),
        currency: Currency::from_code("HKD").unwrap(),
        jurisdiction: Jurisdiction::new("HK").unwrap(),
    }
}

fn opening() -> Vec<(AccountName, i64)> {
    vec![(account("conformance.a"), 100_000), (account("conformance.b"), 0)]
}

fn fixture() -> ConformanceFixture {
    ConformanceFixture::new(account("conformance.a"), account("conformance.b"))
}

fn funded_ledger() -> InMemoryLedger {
    let ledger = InMemoryLedger::new(description());
    for (account, amount_minor) in opening() {
        ledger.open_account(account.clone());
        if amount_minor > 0 {
            ledger.issue(account, amount_minor).unwrap();
        }
    }
    ledger
}

/// A file path under the system's temporary directory, removed when dropped.
struct ScratchFile(PathBuf);

impl ScratchFile {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!(
            "corridor-conformance-{}-{}",
            std::process::id(),
            PaymentId::generate()
        )))
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _already_gone = std::fs::remove_file(&self.0);
    }
}

fn assert_every_row_passed(report: &ConformanceReport, rows_expected: usize) {
    let failed: Vec<_> = report.failed().collect();
    assert!(failed.is_empty(), "failed rows: {failed:#?}");
    assert_eq!(report.rows.len(), rows_expected, "{:#?}", report.rows);
    assert!(report.passed());
}

/// Rows of a run without a restart hook: all but the restart row.
const ROWS_WITHOUT_RESTART: usize = 16;

#[tokio::test]
async fn the_reference_ledger_passes_in_process() {
    let ledger = funded_ledger();
    let report = run(&ledger, &fixture(), None).await;
    assert_every_row_passed(&report, ROWS_WITHOUT_RESTART);
    assert!(report.row(rows::SURVIVES_RESTART).is_none());
    assert_eq!(report.ledger, Some(description()));
    assert!(ledger.audit().is_sound());
    assert_eq!(ledger.audit().prepared_transactions, 0, "the kit left a hold behind");
}

/// A durable reference ledger behind a handle that a restart swaps for a freshly opened one.
struct ReopenableLedger {
    path: PathBuf,
    current: RwLock<Option<Arc<InMemoryLedger>>>,
}

impl ReopenableLedger {
    async fn open(path: PathBuf) -> Self {
        let ledger = InMemoryLedger::open_durable(&path, description(), &opening()).await.unwrap();
        Self { path, current: RwLock::new(Some(Arc::new(ledger))) }
    }

    fn current(&self) -> Result<Arc<InMemoryLedger>, LedgerError> {
        self.current.read().unwrap().clone().ok_or_else(|| LedgerError::Unavailable("restarting".into()))
    }
}

#[async_trait::async_trait]
impl RestartHook for ReopenableLedger {
    async fn restart(&self) -> Result<(), String> {
        // Dropping the last handle closes the log (and its lock) before it is opened again.
        let old = self.current.write().unwrap().take();
        drop(old);
        let reopened = InMemoryLedger::open_durable(&self.path, description(), &opening())
            .await
            .map_err(|error| error.to_string())?;
        *self.current.write().unwrap() = Some(Arc::new(reopened));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Ledger for ReopenableLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        self.current()?.describe().await
    }
    async fn prepare(
        &self,
        tx: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        self.current()?.prepare(tx, postings, deadline).await
    }
    async fn commit(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.current()?.commit(tx).await
    }
    async fn abort(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.current()?.abort(tx).await
    }
    async fn status(&self, tx: TransactionId) -> Result<TransactionState, LedgerError> {
        self.current()?.status(tx).await
    }
    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        self.current()?.balance(account).await
    }
    async fn in_doubt(&self, before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        self.current()?.in_doubt(before, limit).await
    }
}

#[tokio::test]
async fn the_durable_reference_ledger_passes_with_a_restart_in_process() {
    let file = ScratchFile::new();
    let ledger = ReopenableLedger::open(file.0.clone()).await;
    let report = run(&ledger, &fixture(), Some(&ledger)).await;
    assert_every_row_passed(&report, ROWS_WITHOUT_RESTART + 1);
    assert!(report.row(rows::SURVIVES_RESTART).unwrap().passed);
}

/// A ledger that forgets everything when restarted (a non-durable one): the restart row must
/// catch it.
struct ForgetfulLedger(RwLock<Arc<InMemoryLedger>>);

impl ForgetfulLedger {
    fn current(&self) -> Arc<InMemoryLedger> {
        self.0.read().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl RestartHook for ForgetfulLedger {
    async fn restart(&self) -> Result<(), String> {
        *self.0.write().unwrap() = Arc::new(funded_ledger());
        Ok(())
    }
}

#[async_trait::async_trait]
impl Ledger for ForgetfulLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        self.current().describe().await
    }
    async fn prepare(
        &self,
        tx: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        self.current().prepare(tx, postings, deadline).await
    }
    async fn commit(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.current().commit(tx).await
    }
    async fn abort(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.current().abort(tx).await
    }
    async fn status(&self, tx: TransactionId) -> Result<TransactionState, LedgerError> {
        self.current().status(tx).await
    }
    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        self.current().balance(account).await
    }
    async fn in_doubt(&self, before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        self.current().in_doubt(before, limit).await
    }
}

/// A gRPC ledger node on a fixed loopback port, over a durable reference ledger, which a restart
/// stops (server and ledger both) and starts again on the same port and log.
struct GrpcNode {
    path: PathBuf,
    address: SocketAddr,
    running: tokio::sync::Mutex<Option<RunningNode>>,
}

struct RunningNode {
    ledger: Arc<InMemoryLedger>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl GrpcNode {
    async fn start(path: PathBuf, listen: SocketAddr) -> Result<(SocketAddr, RunningNode), String> {
        let ledger = Arc::new(
            InMemoryLedger::open_durable(&path, description(), &opening()).await.map_err(|error| error.to_string())?,
        );
        let listener = TcpListener::bind(listen).await.map_err(|error| error.to_string())?;
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        let (stop, stopped) = oneshot::channel::<()>();
        let service = LedgerAdapterService::new(ledger.clone()).into_server();
        let task = tokio::spawn(
            tonic::transport::Server::builder().add_routes(Routes::new(service)).serve_with_incoming_shutdown(
                TcpIncoming::from(listener),
                async {
                    let _either_way = stopped.await;
                },
            ),
        );
        Ok((address, RunningNode { ledger, stop, task }))
    }

    async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            let _already_stopped = running.stop.send(());
            running.task.await.unwrap().unwrap();
            // The server has let go of its handles; wait for any straggler, then close the log.
            let mut ledger = running.ledger;
            for _ in 0..100 {
                match Arc::try_unwrap(ledger) {
                    Ok(last) => {
                        drop(last);
                        return;
                    }
                    Err(shared) => {
                        ledger = shared;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            panic!("the ledger is still shared after its server stopped");
        }
    }
}

#[async_trait::async_trait]
impl RestartHook for GrpcNode {
    async fn restart(&self) -> Result<(), String> {
        self.stop().await;
        let (_, running) = GrpcNode::start(self.path.clone(), self.address).await?;
        *self.running.lock().await = Some(running);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_durable_reference_ledger_passes_over_grpc_with_a_restart() {
    let file = ScratchFile::new();
    let (address, running) = GrpcNode::start(file.0.clone(), SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
    let node = GrpcNode { path: file.0.clone(), address, running: tokio::sync::Mutex::new(Some(running)) };
    let remote = RemoteLedger::connect_lazy(&format!("http://{address}")).unwrap();
    let report = run(&remote, &fixture(), Some(&node)).await;
    assert_every_row_passed(&report, ROWS_WITHOUT_RESTART + 1);
    node.stop().await;
}

/// Wraps the reference ledger and breaks one rule.
struct BrokenLedger {
    inner: InMemoryLedger,
    breaks: Rule,
    /// For `Rule::RepeatedPrepareHoldsAgain`: the shadow transactions that hold a second time.
    shadows: Mutex<Vec<TransactionId>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    RepeatedPrepareHoldsAgain,
    AbortAfterCommitAllowed,
    CommitAfterAbortAllowed,
    UnknownAccountIsAnError,
    DeadlineIgnored,
    LoneCreditAccepted,
}

impl BrokenLedger {
    fn new(breaks: Rule) -> Self {
        Self { inner: funded_ledger(), breaks, shadows: Mutex::new(Vec::new()) }
    }
}

#[async_trait::async_trait]
impl Ledger for BrokenLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        self.inner.describe().await
    }

    async fn prepare(
        &self,
        tx: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        let deadline =
            if self.breaks == Rule::DeadlineIgnored { SystemTime::now() + Duration::from_secs(60) } else { deadline };
        if self.breaks == Rule::RepeatedPrepareHoldsAgain && self.inner.status(tx).await? == TransactionState::Prepared
        {
            let shadow: TransactionId = PaymentId::generate().into();
            self.shadows.lock().unwrap().push(shadow);
            return self.inner.prepare(shadow, postings, deadline).await;
        }
        if self.breaks == Rule::LoneCreditAccepted && postings.len() == 1 && postings[0].amount_minor > 0 {
            // Money from nowhere: issue it, and pretend the prepare held it.
            self.inner.issue(postings[0].account.clone(), postings[0].amount_minor)?;
            return Ok(Vote::Yes);
        }
        let vote = self.inner.prepare(tx, postings, deadline).await;
        if self.breaks == Rule::UnknownAccountIsAnError
            && let Ok(Vote::No(refusal)) = &vote
            && refusal.code == RefusalCode::UnknownAccount
        {
            return Err(LedgerError::InvalidPostings(refusal.message.clone()));
        }
        vote
    }

    async fn commit(&self, tx: TransactionId) -> Result<(), LedgerError> {
        match self.inner.commit(tx).await {
            Err(LedgerError::AlreadyAborted(_)) if self.breaks == Rule::CommitAfterAbortAllowed => Ok(()),
            other => other,
        }
    }

    async fn abort(&self, tx: TransactionId) -> Result<(), LedgerError> {
        if self.breaks == Rule::RepeatedPrepareHoldsAgain {
            let shadows: Vec<TransactionId> = self.shadows.lock().unwrap().drain(..).collect();
            for shadow in shadows {
                let _released = self.inner.abort(shadow).await;
            }
        }
        match self.inner.abort(tx).await {
            Err(LedgerError::AlreadyCommitted(_)) if self.breaks == Rule::AbortAfterCommitAllowed => Ok(()),
            other => other,
        }
    }

    async fn status(&self, tx: TransactionId) -> Result<TransactionState, LedgerError> {
        self.inner.status(tx).await
    }

    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        self.inner.balance(account).await
    }

    async fn in_doubt(&self, before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        self.inner.in_doubt(before, limit).await
    }
}

#[tokio::test]
async fn a_broken_adapter_fails_the_row_of_the_rule_it_breaks() {
    let cases = [
        (Rule::RepeatedPrepareHoldsAgain, rows::PREPARE_IDEMPOTENT),
        (Rule::AbortAfterCommitAllowed, rows::ABORT_AFTER_COMMIT_REFUSED),
        (Rule::CommitAfterAbortAllowed, rows::COMMIT_AFTER_ABORT_REFUSED),
        (Rule::UnknownAccountIsAnError, rows::UNKNOWN_ACCOUNT_VOTES_NO),
        (Rule::DeadlineIgnored, rows::DEADLINE_PASSED_VOTES_NO),
        (Rule::LoneCreditAccepted, rows::POSTINGS_SUM_TO_ZERO),
    ];
    for (rule, row) in cases {
        let ledger = BrokenLedger::new(rule);
        let report = run(&ledger, &fixture(), None).await;
        let failed: Vec<&str> = report.failed().map(|row| row.name.as_str()).collect();
        assert!(failed.contains(&row), "{rule:?} should fail `{row}`; failed: {failed:?}");
        assert!(!report.passed());
        // The rule it breaks is the first failure: no earlier row was fooled into passing
        // something else, and none failed for an unrelated reason.
        assert_eq!(failed.first(), Some(&row), "{rule:?}: {:#?}", report.rows);
    }
}

#[tokio::test]
async fn a_ledger_that_forgets_on_restart_fails_the_restart_row() {
    let ledger = ForgetfulLedger(RwLock::new(Arc::new(funded_ledger())));
    let report = run(&ledger, &fixture(), Some(&ledger)).await;
    let failed: Vec<&str> = report.failed().map(|row| row.name.as_str()).collect();
    assert_eq!(failed.first(), Some(&rows::SURVIVES_RESTART), "{:#?}", report.rows);
}

#[tokio::test]
async fn a_fixture_that_cannot_work_fails_only_the_fixture_row() {
    let ledger = funded_ledger();
    let cases = [
        (ConformanceFixture::new(account("conformance.b"), account("conformance.a")), "the kit needs at least"),
        (ConformanceFixture::new(account("nobody"), account("conformance.b")), "account nobody does not exist"),
        (ConformanceFixture::new(account("conformance.a"), account("conformance.a")), "must differ"),
        (ConformanceFixture { amount_minor: 1, ..fixture() }, "the amount must be"),
    ];
    for (fixture, expected) in cases {
        let report = run(&ledger, &fixture, None).await;
        assert_eq!(report.rows.len(), 1, "{:#?}", report.rows);
        assert_eq!(report.rows[0].name, rows::FIXTURE);
        assert!(!report.rows[0].passed);
        assert!(report.rows[0].detail.contains(expected), "{}", report.rows[0].detail);
    }
}

/// PostgreSQL for the run below: `CORRIDOR_TEST_POSTGRES_URL`, as the PostgreSQL ledger's own tests.
fn postgres_url() -> String {
    std::env::var("CORRIDOR_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The PostgreSQL reference ledger, behind a handle that a restart replaces with a new connection
/// pool: what survives is what the database kept.
struct ReconnectingPostgres {
    description: LedgerDescription,
    current: RwLock<Option<Arc<crate::PostgresLedger>>>,
}

impl ReconnectingPostgres {
    fn current(&self) -> Result<Arc<crate::PostgresLedger>, LedgerError> {
        self.current.read().unwrap().clone().ok_or_else(|| LedgerError::Unavailable("restarting".into()))
    }
}

#[async_trait::async_trait]
impl RestartHook for ReconnectingPostgres {
    async fn restart(&self) -> Result<(), String> {
        let old = self.current.write().unwrap().take();
        drop(old);
        let reconnected = crate::PostgresLedger::connect(&postgres_url(), self.description.clone())
            .await
            .map_err(|error| error.to_string())?;
        *self.current.write().unwrap() = Some(Arc::new(reconnected));
        Ok(())
    }
}

#[async_trait::async_trait]
impl Ledger for ReconnectingPostgres {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        self.current()?.describe().await
    }
    async fn prepare(
        &self,
        tx: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        self.current()?.prepare(tx, postings, deadline).await
    }
    async fn commit(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.current()?.commit(tx).await
    }
    async fn abort(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.current()?.abort(tx).await
    }
    async fn status(&self, tx: TransactionId) -> Result<TransactionState, LedgerError> {
        self.current()?.status(tx).await
    }
    async fn balance(&self, account: &AccountName) -> Result<AccountBalance, LedgerError> {
        self.current()?.balance(account).await
    }
    async fn in_doubt(&self, before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        self.current()?.in_doubt(before, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_reference_ledger_passes_with_a_restart() {
    // A ledger id of its own, so runs and other tests sharing the database never meet.
    let uuid = PaymentId::generate().as_uuid().simple().to_string();
    let description =
        LedgerDescription { ledger: LedgerId::new(format!("conf-{}", &uuid[8..])).unwrap(), ..description() };
    let url = postgres_url();
    let ledger = crate::PostgresLedger::connect(&url, description.clone()).await.unwrap_or_else(|error| {
        panic!("no PostgreSQL at {url} (set CORRIDOR_TEST_POSTGRES_URL, or run ops/services.sh): {error}")
    });
    ledger.issue(account("conformance.a"), 100_000).await.unwrap();
    ledger.open_account(account("conformance.b")).await.unwrap();
    let ledger = ReconnectingPostgres { description, current: RwLock::new(Some(Arc::new(ledger))) };
    let report = run(&ledger, &fixture(), Some(&ledger)).await;
    assert_every_row_passed(&report, ROWS_WITHOUT_RESTART + 1);
    let audit = ledger.current().unwrap().audit().await.unwrap();
    assert!(audit.is_sound(), "{audit:?}");
    assert_eq!(audit.prepared_transactions, 0, "the kit left a hold behind");
}
