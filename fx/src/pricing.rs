//! Pricing one conversion: fixed send or fixed receive, the provider that is best for the payer,
//! and rounding toward the provider (see the crate docs).

use std::time::SystemTime;

use corridor_schemas::{Currency, Money, MoneyError, ParticipantId};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::book::{CurrencyPair, ProviderRate, RateBook};

/// The amount a payment fixes: what the payer sends, or what the payee receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixedAmount {
    Send(Money),
    Receive(Money),
}

/// How a quoted price turns the send currency into the receive currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceDirection {
    /// Send currency is the pair's base: receive = send × bid.
    MultiplyByBid,
    /// Send currency is the pair's quote: receive = send ÷ ask.
    DivideByAsk,
}

/// A priced conversion, ready to become ledger postings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub provider: ParticipantId,
    pub pair: CurrencyPair,
    pub direction: PriceDirection,
    /// The provider's price used: the bid or the ask of `pair`.
    pub price: Decimal,
    pub send: Money,
    pub receive: Money,
    pub rate_source: String,
    pub rate_as_of: SystemTime,
}

impl Conversion {
    /// Decimal places of [`Conversion::rate`].
    pub const RATE_DECIMALS: u32 = 10;

    /// Units of the receive currency per unit of the send currency, rounded half-even to
    /// [`Conversion::RATE_DECIMALS`] places (for display; amounts are computed from `price`).
    pub fn rate(&self) -> Decimal {
        let rate = match self.direction {
            PriceDirection::MultiplyByBid => self.price,
            PriceDirection::DivideByAsk => Decimal::ONE.checked_div(self.price).unwrap_or_default(),
        };
        rate.round_dp_with_strategy(Self::RATE_DECIMALS, RoundingStrategy::MidpointNearestEven).normalize()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FxError {
    #[error("no liquidity provider quotes {from} against {to}")]
    NoRate { from: Currency, to: Currency },
    #[error("{amount} converts to less than one minor unit of {currency}")]
    BelowMinorUnit { amount: Money, currency: Currency },
    #[error("conversion of {amount} is out of range: {reason}")]
    OutOfRange { amount: Money, reason: String },
    #[error("{provider} converts at most {maximum} per payment at this rate")]
    AboveMaximum { provider: ParticipantId, maximum: Money },
}

impl RateBook {
    /// Prices converting into `to` (fixed send) or from `from` (fixed receive) with every eligible
    /// provider's rate, and returns the best for the payer: the largest receive amount for a fixed
    /// send, the smallest send amount for a fixed receive. Ties go to the provider listed first.
    pub fn best_conversion(
        &self,
        from: Currency,
        to: Currency,
        amount: FixedAmount,
        eligible: impl Fn(&ProviderRate) -> bool,
    ) -> Result<Conversion, FxError> {
        let mut best: Option<Conversion> = None;
        let mut first_error: Option<FxError> = None;
        for rate in self.rates_between(from, to).filter(|rate| eligible(rate)) {
            match convert(rate, from, to, amount) {
                Ok(conversion) => {
                    let better = match (&best, amount) {
                        (None, _) => true,
                        (Some(current), FixedAmount::Send(_)) => {
                            conversion.receive.minor_units() > current.receive.minor_units()
                        }
                        (Some(current), FixedAmount::Receive(_)) => {
                            conversion.send.minor_units() < current.send.minor_units()
                        }
                    };
                    if better {
                        best = Some(conversion);
                    }
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        best.ok_or_else(|| first_error.unwrap_or(FxError::NoRate { from, to }))
    }
}

/// Converts with one provider's rate. `rate` must quote `from` against `to` in some orientation.
pub fn convert(rate: &ProviderRate, from: Currency, to: Currency, amount: FixedAmount) -> Result<Conversion, FxError> {
    let (direction, price) = if rate.pair.base == from {
        (PriceDirection::MultiplyByBid, rate.bid)
    } else {
        (PriceDirection::DivideByAsk, rate.ask)
    };
    let (send, receive) = match amount {
        FixedAmount::Send(send) => {
            let raw = match direction {
                PriceDirection::MultiplyByBid => send.amount().checked_mul(price),
                PriceDirection::DivideByAsk => send.amount().checked_div(price),
            };
            let receive = to_money(raw, to, RoundingStrategy::ToZero, send)?;
            (send, receive)
        }
        FixedAmount::Receive(receive) => {
            let raw = match direction {
                PriceDirection::MultiplyByBid => receive.amount().checked_div(price),
                PriceDirection::DivideByAsk => receive.amount().checked_mul(price),
            };
            let send = to_money(raw, from, RoundingStrategy::AwayFromZero, receive)?;
            (send, receive)
        }
    };
    if let Some(maximum) = rate.maximum {
        let converted = if maximum.currency() == send.currency() { send } else { receive };
        if converted.minor_units() > maximum.minor_units() {
            return Err(FxError::AboveMaximum { provider: rate.provider.clone(), maximum });
        }
    }
    Ok(Conversion {
        provider: rate.provider.clone(),
        pair: rate.pair,
        direction,
        price,
        send,
        receive,
        rate_source: rate.source.clone(),
        rate_as_of: rate.as_of,
    })
}

fn to_money(
    raw: Option<Decimal>,
    currency: Currency,
    rounding: RoundingStrategy,
    from: Money,
) -> Result<Money, FxError> {
    let raw = raw.ok_or_else(|| FxError::OutOfRange { amount: from, reason: "decimal overflow".into() })?;
    let rounded = raw.round_dp_with_strategy(currency.minor_units(), rounding);
    if rounded <= Decimal::ZERO {
        return Err(FxError::BelowMinorUnit { amount: from, currency });
    }
    Money::from_decimal(rounded, currency)
        .map_err(|error: MoneyError| FxError::OutOfRange { amount: from, reason: error.to_string() })
}

#[cfg(test)]
mod tests;
