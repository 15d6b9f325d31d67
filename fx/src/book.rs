//! The rate book: the latest bid/ask of each provider for each pair it quotes.

use std::fmt;
use std::time::{Duration, SystemTime};

use corridor_schemas::{Currency, CurrencyError, Money, ParticipantId};
use rust_decimal::Decimal;

/// `BASE/QUOTE`: a price is in QUOTE units per one BASE unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CurrencyPair {
    pub base: Currency,
    pub quote: Currency,
}

impl CurrencyPair {
    pub fn parse(text: &str) -> Result<Self, RateError> {
        let (base, quote) =
            text.split_once('/').ok_or_else(|| RateError::Pair(format!("`{text}` is not of the form BASE/QUOTE")))?;
        let currency =
            |code: &str| Currency::from_code(code).map_err(|error: CurrencyError| RateError::Pair(error.to_string()));
        let pair = Self { base: currency(base)?, quote: currency(quote)? };
        if pair.base == pair.quote {
            return Err(RateError::Pair(format!("`{text}` quotes a currency against itself")));
        }
        Ok(pair)
    }
}

impl fmt::Display for CurrencyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

/// One provider's price for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRate {
    pub provider: ParticipantId,
    pub pair: CurrencyPair,
    pub bid: Decimal,
    pub ask: Decimal,
    /// Where the price came from, for receipts and audit ("config ops/config/network.toml").
    pub source: String,
    pub as_of: SystemTime,
    /// The largest conversion the provider fills at this rate, per payment, in either currency of
    /// the pair. `None`: no maximum.
    pub maximum: Option<Money>,
}

impl ProviderRate {
    /// Priced at most `max_age` before `now`. A rate stamped in the future counts as fresh only
    /// because publication refuses such stamps.
    pub fn is_fresh(&self, now: SystemTime, max_age: Duration) -> bool {
        now.duration_since(self.as_of).map_or(true, |age| age <= max_age)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateError {
    #[error("bad currency pair: {0}")]
    Pair(String),
    #[error("{pair} from {provider}: bid {bid} and ask {ask} must be positive with bid <= ask")]
    Spread { provider: ParticipantId, pair: CurrencyPair, bid: Decimal, ask: Decimal },
    #[error("{pair} from {provider}: the maximum is in {currency}, which is not a currency of the pair")]
    MaximumCurrency { provider: ParticipantId, pair: CurrencyPair, currency: Currency },
}

/// The rates the router prices with. Small (providers × pairs), so a vector scanned in order.
#[derive(Debug, Clone, Default)]
pub struct RateBook {
    rates: Vec<ProviderRate>,
}

impl RateBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a provider's rate for a pair, replacing its previous rate for that pair.
    pub fn publish(&mut self, rate: ProviderRate) -> Result<(), RateError> {
        if rate.bid <= Decimal::ZERO || rate.ask <= Decimal::ZERO || rate.bid > rate.ask {
            return Err(RateError::Spread { provider: rate.provider, pair: rate.pair, bid: rate.bid, ask: rate.ask });
        }
        if let Some(maximum) = rate.maximum
            && maximum.currency() != rate.pair.base
            && maximum.currency() != rate.pair.quote
        {
            return Err(RateError::MaximumCurrency {
                provider: rate.provider,
                pair: rate.pair,
                currency: maximum.currency(),
            });
        }
        match self.rates.iter_mut().find(|existing| existing.provider == rate.provider && existing.pair == rate.pair) {
            Some(existing) => *existing = rate,
            None => self.rates.push(rate),
        }
        Ok(())
    }

    pub fn rates(&self) -> &[ProviderRate] {
        &self.rates
    }

    /// Rates that can convert `from` into `to`, in either orientation of the pair.
    pub(crate) fn rates_between(&self, from: Currency, to: Currency) -> impl Iterator<Item = &ProviderRate> {
        self.rates.iter().filter(move |rate| {
            (rate.pair.base == from && rate.pair.quote == to) || (rate.pair.base == to && rate.pair.quote == from)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_parse_and_refuse_nonsense() {
        assert_eq!(CurrencyPair::parse("CNY/HKD").unwrap().to_string(), "CNY/HKD");
        assert!(CurrencyPair::parse("CNYHKD").is_err());
        assert!(CurrencyPair::parse("HKD/HKD").unwrap_err().to_string().contains("against itself"));
        assert!(CurrencyPair::parse("CNY/XAU").unwrap_err().to_string().contains("cannot be paid"));
    }

    #[test]
    fn publish_replaces_and_refuses_crossed_prices() {
        let pair = CurrencyPair::parse("CNY/HKD").unwrap();
        let rate = |bid: &str, ask: &str| ProviderRate {
            provider: ParticipantId::new("lp-one").unwrap(),
            pair,
            bid: bid.parse().unwrap(),
            ask: ask.parse().unwrap(),
            source: "test".into(),
            as_of: SystemTime::UNIX_EPOCH,
            maximum: None,
        };
        let mut book = RateBook::new();
        book.publish(rate("1.08", "1.09")).unwrap();
        book.publish(rate("1.07", "1.10")).unwrap();
        assert_eq!(book.rates().len(), 1);
        assert_eq!(book.rates()[0].bid.to_string(), "1.07");
        assert!(book.publish(rate("1.10", "1.09")).is_err());
        assert!(book.publish(rate("0", "1.09")).is_err());
        let usd = Currency::from_code("USD").unwrap();
        let maximum = Some(Money::parse("10", usd).unwrap());
        assert!(
            book.publish(ProviderRate { maximum, ..rate("1.08", "1.09") }).unwrap_err().to_string().contains("USD")
        );
    }

    #[test]
    fn freshness_is_age_at_most_the_maximum() {
        let rate = ProviderRate {
            provider: ParticipantId::new("lp-one").unwrap(),
            pair: CurrencyPair::parse("CNY/HKD").unwrap(),
            bid: Decimal::ONE,
            ask: Decimal::ONE,
            source: "test".into(),
            as_of: SystemTime::UNIX_EPOCH + Duration::from_secs(100),
            maximum: None,
        };
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert!(rate.is_fresh(at(160), Duration::from_secs(60)));
        assert!(!rate.is_fresh(at(161), Duration::from_secs(60)));
        assert!(rate.is_fresh(at(50), Duration::from_secs(60)));
    }
}
