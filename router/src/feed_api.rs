//! The gRPC edge of `corridor.v1.ComplianceFeed`: a regulator reads its own jurisdiction's feed —
//! live (`Subscribe`, resumable from any sequence), by filter (`QueryFeed`) — and the signed
//! checkpoints that make it verifiable offline. A request names its regulator (configured with its
//! jurisdiction); over mTLS the caller's certificate must be that regulator's, of that
//! jurisdiction ([`crate::authz`]). Nobody reads another jurisdiction's feed.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_compliance::feed::{Checkpoint, DecisionOutcome, FeedLine, FeedPublicKey, FeedRecord};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::compliance_feed_server::ComplianceFeed;
use corridor_schemas::{FieldError, Jurisdiction, Money, ParticipantId};
use futures::Stream;
use tonic::{Request, Response, Status};

use crate::authz::{Call, Caller, authorize};
use crate::pipeline::Router;
use crate::storage::FeedStore;

/// Records read from the store per batch, for a subscription or a query.
pub const FEED_BATCH_SIZE: usize = 256;
/// How often a subscription that has caught up looks for new records.
pub const SUBSCRIPTION_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// `QueryFeed` page sizes.
pub const QUERY_PAGE_SIZE_MAX: u32 = 1_000;
pub const QUERY_PAGE_SIZE_DEFAULT: u32 = 100;
/// The most records one `QueryFeed` call scans before it returns a page (maybe short) and a token.
pub const QUERY_SCAN_MAX: usize = 100_000;

pub struct FeedApi {
    router: Arc<Router>,
    public_key: Option<FeedPublicKey>,
}

impl FeedApi {
    pub fn new(router: Arc<Router>, public_key: Option<FeedPublicKey>) -> Self {
        Self { router, public_key }
    }

    /// The jurisdiction of the regulator a request names, once its caller may act as that
    /// regulator.
    fn jurisdiction_of(&self, caller: &Caller, regulator_id: String) -> Result<Jurisdiction, Status> {
        let regulator = ParticipantId::new(regulator_id)
            .map_err(|error| Status::invalid_argument(FieldError::new("regulator_id", error).to_string()))?;
        let jurisdiction =
            self.router.network().regulators.get(&regulator).cloned().ok_or_else(|| {
                Status::permission_denied(format!("`{regulator}` is not a regulator on this network"))
            })?;
        authorize(caller, Call::ReadFeed { regulator: &regulator, jurisdiction: &jurisdiction })?;
        Ok(jurisdiction)
    }

    fn public_key_hex(&self) -> String {
        self.public_key.map(|key| key.to_string()).unwrap_or_default()
    }
}

fn unavailable(error: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("the feed store cannot be reached: {error}"))
}

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms))
}

fn record_to_wire(record: FeedRecord) -> Result<wire::FeedRecord, Status> {
    let summary = wire::FeedRecord {
        sequence: record.sequence,
        payment_id: record.entry.payment_id.clone(),
        kind: record.entry.kind.as_str().to_owned(),
        recorded_at: Some(timestamp(record.recorded_at_ms)),
        status: record.entry.status.clone().unwrap_or_default(),
        hash: record.hash.to_string(),
        line: String::new(),
    };
    let line = FeedLine::Record(Box::new(record)).to_json().map_err(|error| Status::internal(error.to_string()))?;
    Ok(wire::FeedRecord { line, ..summary })
}

fn checkpoint_to_wire(checkpoint: Checkpoint) -> Result<wire::FeedCheckpoint, Status> {
    let wire = wire::FeedCheckpoint {
        sequence: checkpoint.sequence,
        head_hash: checkpoint.head_hash.to_string(),
        signed_at: Some(timestamp(checkpoint.signed_at_ms)),
        key_id: checkpoint.key_id.to_string(),
        signature: checkpoint.signature.to_string(),
        line: String::new(),
    };
    let line = FeedLine::Checkpoint(checkpoint).to_json().map_err(|error| Status::internal(error.to_string()))?;
    Ok(wire::FeedCheckpoint { line, ..wire })
}

/// A query's filters, checked.
struct Filter {
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    party: Option<String>,
    min_amount: Option<Money>,
    status: Option<String>,
}

fn unix_ms(at: prost_types::Timestamp, field: &str) -> Result<u64, Status> {
    let time = SystemTime::try_from(at)
        .map_err(|_| Status::invalid_argument(FieldError::new(field, "is not a valid time").to_string()))?;
    Ok(time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

impl Filter {
    fn matches(&self, record: &FeedRecord) -> bool {
        let entry = &record.entry;
        if self.from_ms.is_some_and(|from| record.recorded_at_ms < from)
            || self.to_ms.is_some_and(|to| record.recorded_at_ms >= to)
        {
            return false;
        }
        if let Some(status) = &self.status {
            // A held payment has no outcome yet: its screening records, with a hold, are what
            // "HELD" finds.
            let held = status == "HELD"
                && entry.status.is_none()
                && entry.decisions.iter().any(|decision| decision.outcome == DecisionOutcome::Hold);
            if !held && entry.status.as_deref() != Some(status.as_str()) {
                return false;
            }
        }
        if let Some(party) = &self.party {
            let names = [
                Some(entry.participant.as_str()),
                Some(entry.payer.as_str()),
                Some(entry.payee.as_str()),
                entry.originator_name.as_deref(),
                entry.beneficiary_name.as_deref(),
            ];
            if !names.into_iter().flatten().any(|name| name.to_lowercase().contains(party.as_str())) {
                return false;
            }
        }
        if let Some(minimum) = self.min_amount {
            let reaches = entry.amounts.iter().any(|text| {
                let Some((amount, code)) = text.split_once(' ') else { return false };
                code == minimum.currency().code()
                    && Money::parse(amount, minimum.currency()).is_ok_and(|m| m.minor_units() >= minimum.minor_units())
            });
            if !reaches {
                return false;
            }
        }
        true
    }
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<wire::FeedRecord, Status>> + Send + 'static>>;

/// The records of `jurisdiction` from `next` on, then whatever is appended later.
fn subscription(feed: Arc<dyn FeedStore>, jurisdiction: Jurisdiction, next: u64) -> FeedStream {
    let state = (feed, jurisdiction, next, VecDeque::<FeedRecord>::new());
    Box::pin(futures::stream::unfold(state, |(feed, jurisdiction, mut next, mut buffer)| async move {
        loop {
            if let Some(record) = buffer.pop_front() {
                next = record.sequence + 1;
                let item = record_to_wire(record);
                return Some((item, (feed, jurisdiction, next, buffer)));
            }
            match feed.records(&jurisdiction, next, FEED_BATCH_SIZE).await {
                Ok(records) if records.is_empty() => tokio::time::sleep(SUBSCRIPTION_POLL_INTERVAL).await,
                Ok(records) => buffer.extend(records),
                Err(error) => return Some((Err(unavailable(error)), (feed, jurisdiction, next, buffer))),
            }
        }
    }))
}

#[tonic::async_trait]
impl ComplianceFeed for FeedApi {
    type SubscribeStream = FeedStream;

    async fn subscribe(
        &self,
        request: Request<wire::SubscribeFeedRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let jurisdiction = self.jurisdiction_of(&caller, request.regulator_id)?;
        let feed = Arc::clone(self.router.feed().store());
        Ok(Response::new(subscription(feed, jurisdiction, request.from_sequence.max(1))))
    }

    async fn query_feed(
        &self,
        request: Request<wire::QueryFeedRequest>,
    ) -> Result<Response<wire::QueryFeedResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let jurisdiction = self.jurisdiction_of(&caller, request.regulator_id)?;
        let page_size = match request.page_size {
            0 => QUERY_PAGE_SIZE_DEFAULT,
            size if size <= QUERY_PAGE_SIZE_MAX => size,
            size => {
                return Err(Status::invalid_argument(
                    FieldError::new("page_size", format!("{size} is above the maximum of {QUERY_PAGE_SIZE_MAX}"))
                        .to_string(),
                ));
            }
        };
        let page_size = usize::try_from(page_size).unwrap_or(usize::MAX);
        let min_amount = match request.min_amount {
            None => None,
            Some(money) => Some(
                Money::try_from(money)
                    .map_err(|error| Status::invalid_argument(error.within("min_amount").to_string()))?,
            ),
        };
        let status = match request.status.as_str() {
            "" => None,
            known @ ("SETTLED" | "REJECTED" | "FAILED" | "HELD") => Some(known.to_owned()),
            other => {
                return Err(Status::invalid_argument(
                    FieldError::new("status", format!("`{other}` is not SETTLED, REJECTED, FAILED or HELD"))
                        .to_string(),
                ));
            }
        };
        let filter = Filter {
            from_ms: request.from_time.map(|at| unix_ms(at, "from_time")).transpose()?,
            to_ms: request.to_time.map(|at| unix_ms(at, "to_time")).transpose()?,
            party: Some(request.party.to_lowercase()).filter(|party| !party.is_empty()),
            min_amount,
            status,
        };
        let feed = self.router.feed().store();
        let mut next = request.after_sequence.saturating_add(1);
        let mut page = Vec::new();
        let mut scanned = 0;
        loop {
            let batch = feed.records(&jurisdiction, next, FEED_BATCH_SIZE).await.map_err(unavailable)?;
            let Some(last) = batch.last().map(|record| record.sequence) else {
                return Ok(Response::new(wire::QueryFeedResponse { records: page, next_after_sequence: 0 }));
            };
            for record in batch {
                scanned += 1;
                let sequence = record.sequence;
                if filter.matches(&record) {
                    page.push(record_to_wire(record)?);
                    if page.len() == page_size {
                        return Ok(Response::new(wire::QueryFeedResponse {
                            records: page,
                            next_after_sequence: sequence,
                        }));
                    }
                }
            }
            if scanned >= QUERY_SCAN_MAX {
                return Ok(Response::new(wire::QueryFeedResponse { records: page, next_after_sequence: last }));
            }
            next = last + 1;
        }
    }

    async fn get_checkpoint(
        &self,
        request: Request<wire::GetCheckpointRequest>,
    ) -> Result<Response<wire::GetCheckpointResponse>, Status> {
        let caller = Caller::of(&request)?;
        let jurisdiction = self.jurisdiction_of(&caller, request.into_inner().regulator_id)?;
        let feed = self.router.feed().store();
        let checkpoint = feed.checkpoints(&jurisdiction).await.map_err(unavailable)?.pop();
        let head_sequence = feed
            .heads()
            .await
            .map_err(unavailable)?
            .into_iter()
            .find(|(of, _, _)| *of == jurisdiction)
            .map_or(0, |(_, sequence, _)| sequence);
        Ok(Response::new(wire::GetCheckpointResponse {
            jurisdiction: jurisdiction.to_string(),
            checkpoint: checkpoint.map(checkpoint_to_wire).transpose()?,
            head_sequence,
            public_key: self.public_key_hex(),
        }))
    }

    async fn list_checkpoints(
        &self,
        request: Request<wire::ListCheckpointsRequest>,
    ) -> Result<Response<wire::ListCheckpointsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let jurisdiction = self.jurisdiction_of(&caller, request.into_inner().regulator_id)?;
        let checkpoints = self.router.feed().store().checkpoints(&jurisdiction).await.map_err(unavailable)?;
        Ok(Response::new(wire::ListCheckpointsResponse {
            checkpoints: checkpoints.into_iter().map(checkpoint_to_wire).collect::<Result<_, _>>()?,
            public_key: self.public_key_hex(),
        }))
    }
}
