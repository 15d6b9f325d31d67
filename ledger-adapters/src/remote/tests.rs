//! The protocol over real gRPC on loopback: the server, the coalescing client, and the in-doubt
//! resolver against a small fake coordinator.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::ledger_adapter_client::LedgerAdapterClient;
use corridor_schemas::wire::v1::ledger_adapter_server::{LedgerAdapter, LedgerAdapterServer};
use corridor_schemas::wire::v1::transaction_coordinator_server::{
    TransactionCoordinator, TransactionCoordinatorServer,
};
use corridor_schemas::{AccountName, Currency, Jurisdiction, LedgerId, PaymentId};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use super::*;
use crate::ledger::{
    Ledger, LedgerDescription, LedgerError, Posting, Refusal, RefusalCode, TransactionId, TransactionState, Vote,
};
use crate::memory::InMemoryLedger;

fn hkd() -> Currency {
    Currency::from_code("HKD").unwrap()
}

fn account(name: &str) -> AccountName {
    AccountName::new(name).unwrap()
}

fn description() -> LedgerDescription {
    LedgerDescription {
        ledger: LedgerId::new("e-hkd").unwrap(),
        currency: hkd(),
        jurisdiction: Jurisdiction::new("HK").unwrap(),
    }
}

fn funded_ledger() -> Arc<InMemoryLedger> {
    let ledger = InMemoryLedger::new(description());
    ledger.issue(account("alice"), 10_000).unwrap();
    ledger.open_account(account("bob"));
    Arc::new(ledger)
}

fn transfer(from: &str, to: &str, amount_minor: i64) -> Vec<Posting> {
    vec![
        Posting { account: account(from), currency: hkd(), amount_minor: -amount_minor },
        Posting { account: account(to), currency: hkd(), amount_minor },
    ]
}

fn deadline() -> SystemTime {
    SystemTime::now() + Duration::from_secs(30)
}

fn new_transaction() -> TransactionId {
    PaymentId::generate().into()
}

/// A tonic server on a loopback port, stopped gracefully by [`TestServer::stop`].
struct TestServer {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl TestServer {
    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    async fn stop(self) {
        let _already_stopped = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

/// Serves `routes` on `listen` (port 0 picks one) until stopped.
async fn serve(routes: Routes, listen: SocketAddr) -> TestServer {
    let listener = TcpListener::bind(listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(tonic::transport::Server::builder().add_routes(routes).serve_with_incoming_shutdown(
        TcpIncoming::from(listener),
        async {
            let _either_way = stopped.await;
        },
    ));
    TestServer { address, stop, task }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn serve_ledger(ledger: Arc<dyn Ledger>) -> TestServer {
    serve(Routes::new(LedgerAdapterService::new(ledger).into_server()), loopback()).await
}

async fn raw_client(server: &TestServer) -> LedgerAdapterClient<tonic::transport::Channel> {
    LedgerAdapterClient::connect(server.url()).await.unwrap()
}

#[tokio::test]
async fn a_remote_ledger_answers_like_the_ledger_it_calls() {
    let ledger = funded_ledger();
    let server = serve_ledger(ledger.clone()).await;
    let remote = RemoteLedger::connect_lazy(&server.url()).unwrap();

    assert_eq!(remote.describe().await, Ok(description()));
    let tx = new_transaction();
    assert_eq!(remote.prepare(tx, &transfer("alice", "bob", 4_000), deadline()).await, Ok(Vote::Yes));
    assert_eq!(remote.prepare(tx, &transfer("alice", "bob", 4_000), deadline()).await, Ok(Vote::Yes));
    assert_eq!(remote.status(tx).await, Ok(TransactionState::Prepared));
    let alice = remote.balance(&account("alice")).await.unwrap();
    assert_eq!((alice.balance_minor, alice.held_minor, alice.currency), (10_000, 4_000, hkd()));
    assert_eq!(remote.commit(tx).await, Ok(()));
    assert_eq!(remote.commit(tx).await, Ok(()));
    assert_eq!(remote.abort(tx).await, Err(LedgerError::AlreadyCommitted(tx)));
    assert_eq!(
        remote.prepare(tx, &transfer("alice", "bob", 4_000), deadline()).await,
        Err(LedgerError::AlreadyCommitted(tx))
    );
    assert_eq!(remote.prepare(tx, &transfer("alice", "bob", 1), deadline()).await, Err(LedgerError::Conflict(tx)));

    let refused = new_transaction();
    let Ok(Vote::No(refusal)) = remote.prepare(refused, &transfer("alice", "bob", 1_000_000), deadline()).await else {
        panic!("an overdraft was not refused");
    };
    assert_eq!(refusal.code, RefusalCode::InsufficientFunds);
    assert_eq!(refusal.message, "account alice has 60.00 HKD available, needs 10000.00");
    assert_eq!(remote.commit(refused).await, Err(LedgerError::Refused(refused)));
    assert_eq!(remote.abort(refused).await, Ok(()));
    assert_eq!(remote.status(refused).await, Ok(TransactionState::Refused));

    let aborted = new_transaction();
    remote.prepare(aborted, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    assert_eq!(remote.abort(aborted).await, Ok(()));
    assert_eq!(remote.commit(aborted).await, Err(LedgerError::AlreadyAborted(aborted)));

    let unknown = new_transaction();
    assert_eq!(remote.commit(unknown).await, Err(LedgerError::UnknownTransaction(unknown)));
    assert_eq!(remote.abort(unknown).await, Err(LedgerError::UnknownTransaction(unknown)));
    assert_eq!(remote.status(unknown).await, Ok(TransactionState::Unknown));
    assert_eq!(remote.balance(&account("nobody")).await, Err(LedgerError::UnknownAccount(account("nobody"))));

    let mut unbalanced = transfer("alice", "bob", 100);
    unbalanced[1].amount_minor = 99;
    assert_eq!(
        remote.prepare(new_transaction(), &unbalanced, deadline()).await,
        Err(LedgerError::InvalidPostings("postings sum to -1 minor units, not zero".into()))
    );
    let vote = remote.prepare(new_transaction(), &transfer("alice", "carol", 100), deadline()).await;
    assert!(matches!(vote, Ok(Vote::No(Refusal { code: RefusalCode::UnknownAccount, .. }))), "{vote:?}");
    assert!(remote.in_doubt(SystemTime::now(), 10).await.unwrap().is_empty());
    assert!(ledger.audit().is_sound());
    server.stop().await;
}

/// Counts the Prepare calls reaching the server, and how many items each carried.
#[derive(Clone)]
struct CountingAdapter {
    inner: LedgerAdapterService,
    prepare_batches: Arc<Mutex<Vec<usize>>>,
}

#[tonic::async_trait]
impl LedgerAdapter for CountingAdapter {
    async fn describe(
        &self,
        request: Request<wire::DescribeRequest>,
    ) -> Result<Response<wire::DescribeResponse>, Status> {
        self.inner.describe(request).await
    }
    async fn prepare(&self, request: Request<wire::PrepareRequest>) -> Result<Response<wire::PrepareResponse>, Status> {
        self.prepare_batches.lock().unwrap().push(request.get_ref().items.len());
        self.inner.prepare(request).await
    }
    async fn commit(&self, request: Request<wire::CommitRequest>) -> Result<Response<wire::CommitResponse>, Status> {
        self.inner.commit(request).await
    }
    async fn abort(&self, request: Request<wire::AbortRequest>) -> Result<Response<wire::AbortResponse>, Status> {
        self.inner.abort(request).await
    }
    async fn status(&self, request: Request<wire::StatusRequest>) -> Result<Response<wire::StatusResponse>, Status> {
        self.inner.status(request).await
    }
    async fn balance(&self, request: Request<wire::BalanceRequest>) -> Result<Response<wire::BalanceResponse>, Status> {
        self.inner.balance(request).await
    }
}

/// A ledger that takes its time to vote, so calls pile up behind one another.
struct SlowLedger(Arc<InMemoryLedger>);

#[async_trait::async_trait]
impl Ledger for SlowLedger {
    async fn describe(&self) -> Result<LedgerDescription, LedgerError> {
        self.0.describe().await
    }
    async fn prepare(
        &self,
        tx: TransactionId,
        postings: &[Posting],
        deadline: SystemTime,
    ) -> Result<Vote, LedgerError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.0.prepare(tx, postings, deadline).await
    }
    async fn commit(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.0.commit(tx).await
    }
    async fn abort(&self, tx: TransactionId) -> Result<(), LedgerError> {
        self.0.abort(tx).await
    }
    async fn status(&self, tx: TransactionId) -> Result<TransactionState, LedgerError> {
        self.0.status(tx).await
    }
    async fn balance(&self, account: &AccountName) -> Result<crate::AccountBalance, LedgerError> {
        self.0.balance(account).await
    }
    async fn in_doubt(&self, before: SystemTime, limit: usize) -> Result<Vec<TransactionId>, LedgerError> {
        self.0.in_doubt(before, limit).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_prepares_are_coalesced_into_few_calls() {
    let ledger = funded_ledger();
    let prepare_batches = Arc::new(Mutex::new(Vec::new()));
    let adapter = CountingAdapter {
        inner: LedgerAdapterService::new(Arc::new(SlowLedger(ledger.clone()))),
        prepare_batches: prepare_batches.clone(),
    };
    let server = serve(Routes::new(LedgerAdapterServer::new(adapter)), loopback()).await;
    let remote = Arc::new(RemoteLedger::connect_lazy(&server.url()).unwrap());

    // 20 of 100 minor units each fit in alice's 10 000; each prepare is its own payment.
    let payments = 300usize;
    let tasks: Vec<_> = (0..payments)
        .map(|index| {
            let remote = remote.clone();
            let amount_minor = if index % 15 == 0 { 100 } else { 1_000_000 };
            tokio::spawn(async move {
                let tx = new_transaction();
                (tx, remote.prepare(tx, &transfer("alice", "bob", amount_minor), deadline()).await)
            })
        })
        .collect();
    let mut yes = 0;
    for task in tasks {
        let (tx, vote) = task.await.unwrap();
        match vote.unwrap() {
            Vote::Yes => {
                yes += 1;
                assert_eq!(ledger.status(tx).await, Ok(TransactionState::Prepared), "a yes went to the wrong caller");
            }
            Vote::No(refusal) => assert_eq!(refusal.code, RefusalCode::InsufficientFunds),
        }
    }
    assert_eq!(yes, payments / 15);
    let batches = prepare_batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), payments);
    assert!(batches.len() <= payments / 10, "{payments} prepares took {} calls: {batches:?}", batches.len());
    assert!(batches.iter().all(|items| *items <= BATCH_ITEMS_MAX));
    server.stop().await;
}

#[tokio::test]
async fn malformed_calls_are_refused_naming_the_field_and_change_nothing() {
    let ledger = funded_ledger();
    let server = serve_ledger(ledger.clone()).await;
    let mut client = raw_client(&server).await;
    let good = |transaction_id: String| wire::PrepareItem {
        transaction_id,
        postings: transfer("alice", "bob", 100).iter().map(wire::LedgerPosting::from).collect(),
        deadline: Some(deadline().into()),
    };
    let mut bad_account = good(new_transaction().to_string());
    bad_account.postings[1].account = "bob smith".into();
    let mut bad_currency = good(new_transaction().to_string());
    bad_currency.postings[0].currency = "hkd".into();
    let mut no_deadline = good(new_transaction().to_string());
    no_deadline.deadline = None;
    let v4 = "1b4e28ba-2fa1-41d2-883f-0016d3cca427".to_owned();
    let cases: Vec<(Vec<wire::PrepareItem>, &str)> = vec![
        (vec![good(new_transaction().to_string()), good("nope".into())], "items[1].transaction_id: is not a UUID"),
        (vec![good(v4)], "items[0].transaction_id: is not a Corridor payment id (UUID v7)"),
        (vec![bad_account], "items[0].postings[1].account: `bob smith` may only contain"),
        (vec![bad_currency], "items[0].postings[0].currency: `hkd` is not a three-letter upper-case ISO 4217 code"),
        (vec![no_deadline], "items[0].deadline: is required"),
        (
            (0..=BATCH_ITEMS_MAX).map(|_| good(new_transaction().to_string())).collect(),
            "items: 257 items; at most 256 per call",
        ),
    ];
    for (items, expected) in cases {
        let status = client.prepare(wire::PrepareRequest { items }).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{expected}");
        assert!(status.message().starts_with(expected), "{} does not start with {expected}", status.message());
    }
    let status = client
        .commit(wire::CommitRequest { transaction_ids: vec![new_transaction().to_string(), "x".into()] })
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "transaction_ids[1]: is not a UUID"));
    let status = client.balance(wire::BalanceRequest { account: String::new() }).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "account: must not be empty"));
    assert_eq!(ledger.audit().prepared_transactions, 0);
    assert_eq!(ledger.balance(&account("alice")).await.unwrap().held_minor, 0);
    server.stop().await;
}

#[tokio::test]
async fn each_item_of_a_batch_gets_its_own_answer_in_order() {
    let ledger = funded_ledger();
    let server = serve_ledger(ledger.clone()).await;
    let mut client = raw_client(&server).await;
    let item = |tx: TransactionId, postings: Vec<Posting>, deadline: SystemTime| wire::PrepareItem {
        transaction_id: tx.to_string(),
        postings: postings.iter().map(wire::LedgerPosting::from).collect(),
        deadline: Some(deadline.into()),
    };
    let (good, unbalanced, late, poor) = (new_transaction(), new_transaction(), new_transaction(), new_transaction());
    let mut lopsided = transfer("alice", "bob", 100);
    lopsided[0].amount_minor = -101;
    let passed = SystemTime::now() - Duration::from_secs(2);
    let items = vec![
        item(good, transfer("alice", "bob", 100), deadline()),
        item(unbalanced, lopsided, deadline()),
        item(late, transfer("alice", "bob", 100), passed),
        item(poor, transfer("bob", "alice", 100), deadline()),
    ];
    let votes = client.prepare(wire::PrepareRequest { items }).await.unwrap().into_inner().votes;
    let summary: Vec<(String, i32, &str)> =
        votes.iter().map(|vote| (vote.transaction_id.clone(), vote.kind, vote.reason_code.as_str())).collect();
    assert_eq!(
        summary,
        [
            (good.to_string(), wire::VoteKind::Yes as i32, ""),
            (unbalanced.to_string(), wire::VoteKind::Unspecified as i32, "INVALID_POSTINGS"),
            (late.to_string(), wire::VoteKind::No as i32, "DEADLINE_PASSED"),
            (poor.to_string(), wire::VoteKind::No as i32, "INSUFFICIENT_FUNDS"),
        ]
    );
    // The late prepare never reached the ledger.
    assert_eq!(ledger.status(late).await, Ok(TransactionState::Unknown));

    let unknown = new_transaction();
    let results = client
        .commit(wire::CommitRequest { transaction_ids: vec![good.to_string(), unknown.to_string(), poor.to_string()] })
        .await
        .unwrap()
        .into_inner()
        .results;
    let summary: Vec<(i32, &str)> = results.iter().map(|result| (result.state, result.error_code.as_str())).collect();
    assert_eq!(
        summary,
        [
            (wire::TransactionState::Committed as i32, ""),
            (wire::TransactionState::Unknown as i32, "UNKNOWN_TRANSACTION"),
            (wire::TransactionState::Refused as i32, "REFUSED"),
        ]
    );
    let results = client
        .abort(wire::AbortRequest { transaction_ids: vec![good.to_string(), poor.to_string()] })
        .await
        .unwrap()
        .into_inner()
        .results;
    let summary: Vec<(i32, &str)> = results.iter().map(|result| (result.state, result.error_code.as_str())).collect();
    assert_eq!(
        summary,
        [(wire::TransactionState::Committed as i32, "ALREADY_COMMITTED"), (wire::TransactionState::Refused as i32, ""),]
    );
    server.stop().await;
}

#[tokio::test]
async fn a_ledger_that_is_down_is_unavailable_until_it_comes_up() {
    // A port that nothing listens on (yet).
    let address = TcpListener::bind(loopback()).await.unwrap().local_addr().unwrap();
    let settings = RemoteLedgerSettings { call_timeout: Duration::from_secs(2), wait_timeout: Duration::from_secs(3) };
    let remote = RemoteLedger::connect_lazy_with(&format!("http://{address}"), settings).unwrap();
    let tx = new_transaction();
    let outcome = remote.prepare(tx, &transfer("alice", "bob", 100), deadline()).await;
    assert!(matches!(outcome, Err(LedgerError::Unavailable(_))), "{outcome:?}");
    assert!(matches!(remote.describe().await, Err(LedgerError::Unavailable(_))));

    let ledger = funded_ledger();
    let server = serve(Routes::new(LedgerAdapterService::new(ledger.clone()).into_server()), address).await;
    let mut vote = remote.prepare(tx, &transfer("alice", "bob", 100), deadline()).await;
    for _ in 0..50 {
        if !matches!(vote, Err(LedgerError::Unavailable(_))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        vote = remote.prepare(tx, &transfer("alice", "bob", 100), deadline()).await;
    }
    assert_eq!(vote, Ok(Vote::Yes));
    assert_eq!(remote.describe().await, Ok(description()));
    server.stop().await;
}

#[test]
fn bad_addresses_are_refused_up_front() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _entered = runtime.enter();
    let error = RemoteLedger::connect_lazy("not a url").unwrap_err();
    assert!(error.to_string().starts_with("`not a url` is not a ledger address"), "{error}");
}

/// A coordinator that knows the outcome of some transactions and ignores the rest.
#[derive(Clone, Default)]
struct FakeCoordinator {
    outcomes: Arc<Mutex<HashMap<String, wire::TransactionOutcome>>>,
    asked_by: Arc<Mutex<Vec<(String, usize)>>>,
}

#[tonic::async_trait]
impl TransactionCoordinator for FakeCoordinator {
    async fn resolve_transaction(
        &self,
        request: Request<wire::ResolveTransactionRequest>,
    ) -> Result<Response<wire::ResolveTransactionResponse>, Status> {
        let request = request.into_inner();
        self.asked_by.lock().unwrap().push((request.ledger_id.clone(), request.transaction_ids.len()));
        let outcomes = self.outcomes.lock().unwrap();
        let transactions = request
            .transaction_ids
            .into_iter()
            .filter_map(|id| {
                outcomes
                    .get(&id)
                    .map(|outcome| wire::ResolvedTransaction { transaction_id: id, outcome: (*outcome).into() })
            })
            .collect();
        Ok(Response::new(wire::ResolveTransactionResponse { transactions }))
    }
}

#[tokio::test]
async fn the_resolver_applies_the_coordinators_decisions() {
    let ledger = funded_ledger();
    let (to_commit, to_abort, unanswered) = (new_transaction(), new_transaction(), new_transaction());
    for tx in [to_commit, to_abort, unanswered] {
        ledger.prepare(tx, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    }
    let coordinator = FakeCoordinator::default();
    {
        let mut outcomes = coordinator.outcomes.lock().unwrap();
        outcomes.insert(to_commit.to_string(), wire::TransactionOutcome::Commit);
        outcomes.insert(to_abort.to_string(), wire::TransactionOutcome::Abort);
    }
    let server = serve(Routes::new(TransactionCoordinatorServer::new(coordinator.clone())), loopback()).await;

    let settings = InDoubtResolverSettings {
        scan_interval: Duration::from_millis(50),
        prepared_age_min: Duration::from_millis(10),
        ..InDoubtResolverSettings::new(LedgerId::new("e-hkd").unwrap(), server.url())
    };
    let resolver = InDoubtResolver::spawn(ledger.clone(), settings).unwrap();
    for _ in 0..100 {
        if ledger.status(to_commit).await == Ok(TransactionState::Committed)
            && ledger.status(to_abort).await == Ok(TransactionState::Aborted)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    resolver.stop().await;
    assert_eq!(ledger.status(to_commit).await, Ok(TransactionState::Committed));
    assert_eq!(ledger.status(to_abort).await, Ok(TransactionState::Aborted));
    assert_eq!(ledger.status(unanswered).await, Ok(TransactionState::Prepared), "released without a decision");
    assert!(ledger.audit().is_sound());
    let asked_by = coordinator.asked_by.lock().unwrap().clone();
    assert!(!asked_by.is_empty());
    assert!(asked_by.iter().all(|(ledger_id, _)| ledger_id == "e-hkd"));
    server.stop().await;
}

#[tokio::test]
async fn one_round_asks_only_about_transactions_older_than_the_threshold() {
    let ledger = funded_ledger();
    let (old, young) = (new_transaction(), new_transaction());
    ledger.prepare(old, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let threshold = SystemTime::now();
    ledger.prepare(young, &transfer("alice", "bob", 100), deadline()).await.unwrap();
    let coordinator = FakeCoordinator::default();
    {
        let mut outcomes = coordinator.outcomes.lock().unwrap();
        outcomes.insert(old.to_string(), wire::TransactionOutcome::Abort);
        outcomes.insert(young.to_string(), wire::TransactionOutcome::Abort);
    }
    let server = serve(Routes::new(TransactionCoordinatorServer::new(coordinator.clone())), loopback()).await;
    let mut client =
        corridor_schemas::wire::v1::transaction_coordinator_client::TransactionCoordinatorClient::connect(server.url())
            .await
            .unwrap();
    let ledger_id = LedgerId::new("e-hkd").unwrap();
    let round = resolve_in_doubt_once(ledger.as_ref(), &mut client, &ledger_id, threshold, 10).await.unwrap();
    assert_eq!(round, ResolveRound { asked: 1, committed: 0, aborted: 1, unresolved: 0 });
    assert_eq!(ledger.status(old).await, Ok(TransactionState::Aborted));
    assert_eq!(ledger.status(young).await, Ok(TransactionState::Prepared));
    server.stop().await;

    // A coordinator that is down is an error of the round, and changes nothing.
    let error = resolve_in_doubt_once(ledger.as_ref(), &mut client, &ledger_id, SystemTime::now(), 10).await;
    assert!(matches!(error, Err(InDoubtError::Coordinator(_))), "{error:?}");
    assert_eq!(ledger.status(young).await, Ok(TransactionState::Prepared));
}

#[test]
fn the_service_names_are_the_protocols() {
    assert_eq!(<LedgerAdapterServer<LedgerAdapterService> as NamedService>::NAME, "corridor.v1.LedgerAdapter");
}
