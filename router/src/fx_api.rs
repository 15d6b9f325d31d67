//! The gRPC edge of `corridor.v1.FxService`: locked quotes for integrators, rate publication for
//! liquidity providers, and the rate book for anyone.
//!
//! Until participants authenticate with certificates (a later issue), the provider named in
//! `PublishRates` is taken at its word, as the participant of `SubmitPayment` is.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use corridor_fx::{CurrencyPair, ProviderRate};
use corridor_schemas::wire::v1 as wire;
use corridor_schemas::wire::v1::fx_service_server::FxService;
use corridor_schemas::{FieldError, Money, ParticipantId, QuoteRequest};
use prost::Message;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use crate::authz::{Call, Caller, authorize};
use crate::config::Role;
use crate::pipeline::{QuoteError, Router};

/// How far in the future a published rate's timestamp may be: clocks differ a little.
pub const RATE_CLOCK_SKEW_MAX: Duration = Duration::from_secs(5);
/// The source of every rate a provider published (configured and seeded rates name their file).
pub const PUBLISHED_SOURCE: &str = "PublishRates";
/// The most rates one `PublishRates` may carry.
pub const RATES_PER_PUBLISH_MAX: usize = 1_000;

pub struct FxApi {
    router: Arc<Router>,
}

impl FxApi {
    pub fn new(router: Arc<Router>) -> Self {
        Self { router }
    }
}

impl From<QuoteError> for Status {
    fn from(error: QuoteError) -> Self {
        match error {
            QuoteError::InvalidArgument(field) => Status::invalid_argument(field.to_string()),
            QuoteError::PermissionDenied(message) => Status::permission_denied(message),
            QuoteError::Unpriceable(_) => Status::failed_precondition(error.to_string()),
            QuoteError::Unavailable(message) => Status::unavailable(message),
            QuoteError::Overloaded(message) => Status::resource_exhausted(message),
        }
    }
}

/// One published entry, validated against the network.
fn rate_from_wire(
    router: &Router,
    provider: &ParticipantId,
    entry: wire::RateEntry,
    now: SystemTime,
) -> Result<ProviderRate, FieldError> {
    let pair = CurrencyPair::parse(&entry.pair).map_err(|error| FieldError::new("pair", error))?;
    for currency in [pair.base, pair.quote] {
        if !router.network().ledgers.values().any(|ledger| ledger.description.currency == currency) {
            return Err(FieldError::new("pair", format!("no ledger on this network issues {currency}")));
        }
    }
    let decimal = |field: &str, text: &str| -> Result<Decimal, FieldError> {
        let value: Decimal =
            text.parse().map_err(|_| FieldError::new(field, format!("`{text}` is not a decimal number")))?;
        if value <= Decimal::ZERO {
            return Err(FieldError::new(field, format!("{value} is not positive")));
        }
        Ok(value)
    };
    let (bid, ask) = (decimal("bid", &entry.bid)?, decimal("ask", &entry.ask)?);
    if bid > ask {
        return Err(FieldError::new("bid", format!("{bid} is above the ask {ask}")));
    }
    let as_of = match entry.as_of {
        None => now,
        Some(at) => SystemTime::try_from(at).map_err(|_| FieldError::new("as_of", "is not a valid time"))?,
    };
    if as_of > now + RATE_CLOCK_SKEW_MAX {
        return Err(FieldError::new("as_of", "is in the future"));
    }
    // Within the skew allowed, a rate is as old as its arrival: it must not outlive the maximum age.
    let as_of = as_of.min(now);
    let maximum = match entry.maximum {
        None => None,
        Some(maximum) => {
            let maximum = Money::try_from(maximum).map_err(|error| error.within("maximum"))?;
            if maximum.currency() != pair.base && maximum.currency() != pair.quote {
                return Err(FieldError::new("maximum", format!("{} is not a currency of {pair}", maximum.currency())));
            }
            Some(maximum)
        }
    };
    Ok(ProviderRate { provider: provider.clone(), pair, bid, ask, source: PUBLISHED_SOURCE.into(), as_of, maximum })
}

/// Applies a publication a router of this network accepted and shared (another replica, or this
/// one: applying it again changes nothing). It is checked as a call would be; entries that are
/// invalid here, stale, or older than what the book holds for their provider and pair are
/// skipped.
pub fn apply_shared(router: &Router, encoded: &[u8]) {
    let Ok(publication) = wire::PublishRatesRequest::decode(encoded) else {
        tracing::warn!("a shared rate publication that does not decode; ignored");
        return;
    };
    let Ok(provider) = ParticipantId::new(publication.provider_id) else { return };
    let network = router.network();
    if !network.participants.get(&provider).is_some_and(|participant| participant.role == Role::LiquidityProvider) {
        return;
    }
    let now = router.now();
    for entry in publication.rates {
        let Ok(rate) = rate_from_wire(router, &provider, entry, now) else { continue };
        if !rate.is_fresh(now, network.fx.rate_max_age) {
            continue;
        }
        let mut book = network.rates_mut();
        let newer = book
            .rates()
            .iter()
            .find(|held| held.provider == rate.provider && held.pair == rate.pair)
            // A publication replaces a configured or seeded rate, and an older publication.
            .is_none_or(|held| held.source != PUBLISHED_SOURCE || held.as_of <= rate.as_of);
        if newer {
            let _checked_already = book.publish(rate);
        }
    }
}

fn rate_to_wire(rate: &ProviderRate, stale: bool) -> wire::ProviderRate {
    wire::ProviderRate {
        provider_id: rate.provider.to_string(),
        rate: Some(wire::RateEntry {
            pair: rate.pair.to_string(),
            bid: rate.bid.to_string(),
            ask: rate.ask.to_string(),
            as_of: Some(rate.as_of.into()),
            maximum: rate.maximum.map(wire::Money::from),
        }),
        source: rate.source.clone(),
        stale,
    }
}

#[tonic::async_trait]
impl FxService for FxApi {
    async fn quote_fx(
        &self,
        request: Request<wire::QuoteFxRequest>,
    ) -> Result<Response<wire::QuoteFxResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = QuoteRequest::try_from(request.into_inner())
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        authorize(&caller, Call::QuoteFx { participant: &request.participant })?;
        let quote = self.router.quote(request).await?;
        Ok(Response::new(wire::QuoteFxResponse { quote: Some(quote.to_wire()) }))
    }

    async fn publish_rates(
        &self,
        request: Request<wire::PublishRatesRequest>,
    ) -> Result<Response<wire::PublishRatesResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let provider = ParticipantId::new(request.provider_id)
            .map_err(|error| Status::invalid_argument(FieldError::new("provider_id", error).to_string()))?;
        authorize(&caller, Call::PublishRates { provider: &provider })?;
        let network = self.router.network();
        match network.participants.get(&provider) {
            Some(participant) if participant.role == Role::LiquidityProvider => {}
            Some(_) => return Err(Status::permission_denied(format!("`{provider}` is not a liquidity provider"))),
            None => {
                return Err(Status::permission_denied(format!("`{provider}` is not registered on this network")));
            }
        }
        if request.rates.len() > RATES_PER_PUBLISH_MAX {
            return Err(Status::invalid_argument(
                FieldError::new("rates", format!("{} entries; at most {RATES_PER_PUBLISH_MAX}", request.rates.len()))
                    .to_string(),
            ));
        }
        let now = self.router.now();
        let max_age = network.fx.rate_max_age;
        let mut rates = Vec::with_capacity(request.rates.len());
        for (index, entry) in request.rates.into_iter().enumerate() {
            let field = format!("rates[{index}]");
            let rate = rate_from_wire(&self.router, &provider, entry, now)
                .map_err(|error| Status::invalid_argument(error.within(&field).to_string()))?;
            if !rate.is_fresh(now, max_age) {
                return Err(Status::failed_precondition(format!(
                    "{field}.as_of: the rate is older than the network's maximum age of {} ms",
                    max_age.as_millis()
                )));
            }
            rates.push(rate);
        }
        // All or nothing: every entry was checked before the book changes. With replicas, the
        // others hear of it first: if they cannot, nothing changes here either.
        let accepted = u32::try_from(rates.len()).unwrap_or(u32::MAX);
        if let Some(bus) = &network.rate_bus {
            let shared = |rates: Vec<wire::RateEntry>| {
                wire::PublishRatesRequest { provider_id: provider.to_string(), rates }.encode_to_vec()
            };
            let entries: Vec<(String, Vec<u8>)> = rates
                .iter()
                .map(|rate| {
                    (format!("{provider}|{}", rate.pair), shared(rate_to_wire(rate, false).rate.into_iter().collect()))
                })
                .collect();
            let publication = shared(rates.iter().filter_map(|rate| rate_to_wire(rate, false).rate).collect());
            bus.share(&entries, &publication).await.map_err(|error| {
                Status::unavailable(format!("cannot share the rates with the other routers: {error}"))
            })?;
        }
        let mut book = network.rates_mut();
        for rate in rates {
            book.publish(rate).map_err(|error| Status::invalid_argument(error.to_string()))?;
        }
        Ok(Response::new(wire::PublishRatesResponse { accepted }))
    }

    async fn get_rates(
        &self,
        request: Request<wire::GetRatesRequest>,
    ) -> Result<Response<wire::GetRatesResponse>, Status> {
        authorize(&Caller::of(&request)?, Call::GetRates)?;
        let request = request.into_inner();
        let pair = match request.pair.as_str() {
            "" => None,
            text => Some(
                CurrencyPair::parse(text)
                    .map_err(|error| Status::invalid_argument(FieldError::new("pair", error).to_string()))?,
            ),
        };
        let network = self.router.network();
        let now = self.router.now();
        let max_age = network.fx.rate_max_age;
        let book = network.rates();
        let rates = book
            .rates()
            .iter()
            .filter(|rate| {
                pair.is_none_or(|pair| {
                    rate.pair == pair || (rate.pair.base == pair.quote && rate.pair.quote == pair.base)
                })
            })
            .map(|rate| rate_to_wire(rate, !rate.is_fresh(now, max_age)))
            .collect();
        Ok(Response::new(wire::GetRatesResponse {
            rates,
            rate_max_age_ms: u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX),
        }))
    }
}
