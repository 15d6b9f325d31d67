//! Locked FX quotes: what `QuoteFx` promises, kept in the quote store until it is paid or expires.
//!
//! A quote is the priced part of a plan (route, hops, fees, amounts) for one participant, payer,
//! payee and amount, with an expiry. Paying it rebuilds the legs from exactly these hops and fees
//! ([`crate::route::legs_for`]): no re-pricing, so the payment settles at the quoted amounts or not
//! at all. A quote holds no money; the providers' liquidity is checked when the legs are prepared.
//! A quote is single-use: the first payment to claim it owns it.
//!
//! Stored as its wire `corridor.v1.Quote`, so what was promised is byte for byte what was stored.

use std::time::SystemTime;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{Address, FieldError, FixedSide, LedgerId, Money, ParticipantId, QuoteId, QuoteRequest};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::payment::FeeCharge;
use crate::route::{Hop, Plan};

/// Decimal places of [`LockedQuote::all_in_rate`].
pub const ALL_IN_RATE_DECIMALS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedQuote {
    pub id: QuoteId,
    pub request: QuoteRequest,
    pub route: Vec<LedgerId>,
    pub send: Money,
    pub receive: Money,
    pub total_debit: Money,
    pub hops: Vec<Hop>,
    pub fees: Vec<FeeCharge>,
    pub quoted_at: SystemTime,
    pub expires_at: SystemTime,
}

impl LockedQuote {
    pub fn new(id: QuoteId, request: QuoteRequest, plan: Plan, quoted_at: SystemTime, expires_at: SystemTime) -> Self {
        Self {
            id,
            request,
            route: plan.route,
            send: plan.send,
            receive: plan.receive,
            total_debit: plan.total_debit,
            hops: plan.hops,
            fees: plan.fees,
            quoted_at,
            expires_at,
        }
    }

    /// Receive per one unit of total debit, rounded half-even (for display: amounts are exact).
    pub fn all_in_rate(&self) -> Decimal {
        self.receive
            .amount()
            .checked_div(self.total_debit.amount())
            .unwrap_or_default()
            .round_dp_with_strategy(ALL_IN_RATE_DECIMALS, RoundingStrategy::MidpointNearestEven)
            .normalize()
    }

    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires_at
    }

    /// The first field of a payment instruction that differs from what was quoted.
    pub fn mismatch(&self, request: &QuoteRequest) -> Option<FieldError> {
        let quoted = &self.request;
        let differs = |field: &str, quoted: String| {
            Some(FieldError::new(field, format!("does not match quote {}, which is for {quoted}", self.id)))
        };
        if request.payer != quoted.payer {
            return differs("payer", quoted.payer.to_string());
        }
        if request.payee != quoted.payee {
            return differs("payee", quoted.payee.to_string());
        }
        if request.amount != quoted.amount {
            return differs("amount", quoted.amount.to_string());
        }
        if request.fixed_side != quoted.fixed_side {
            return differs("fixed_side", format!("{:?}", quoted.fixed_side).to_uppercase());
        }
        None
    }

    pub fn to_wire(&self) -> wire::Quote {
        wire::Quote {
            quote_id: self.id.to_string(),
            participant_id: self.request.participant.to_string(),
            payer: self.request.payer.to_string(),
            payee: self.request.payee.to_string(),
            fixed_side: wire::FixedSide::from(self.request.fixed_side) as i32,
            amount: Some(self.request.amount.into()),
            send_amount: Some(self.send.into()),
            receive_amount: Some(self.receive.into()),
            total_debit: Some(self.total_debit.into()),
            fees: self.fees.iter().map(FeeCharge::to_wire).collect(),
            route: self.route.iter().map(ToString::to_string).collect(),
            hops: self.hops.iter().map(Hop::to_wire).collect(),
            all_in_rate: self.all_in_rate().to_string(),
            quoted_at: Some(self.quoted_at.into()),
            expires_at: Some(self.expires_at.into()),
        }
    }

    /// A stored quote back; an error means the stored bytes are not a quote this router wrote.
    pub fn from_wire(quote: &wire::Quote) -> Result<Self, String> {
        let money = |field: &str, money: &Option<wire::Money>| -> Result<Money, String> {
            money
                .clone()
                .ok_or_else(|| format!("{field} is missing"))?
                .try_into()
                .map_err(|error: FieldError| format!("{field}: {error}"))
        };
        let time = |field: &str, at: Option<prost_types::Timestamp>| {
            at.and_then(|at| SystemTime::try_from(at).ok()).ok_or_else(|| format!("{field} is missing or invalid"))
        };
        let address = |field: &str, text: &str| text.parse::<Address>().map_err(|error| format!("{field}: {error}"));
        let fixed_side = match wire::FixedSide::try_from(quote.fixed_side) {
            Ok(wire::FixedSide::Receive) => FixedSide::Receive,
            _ => FixedSide::Send,
        };
        Ok(Self {
            id: quote.quote_id.parse().map_err(|error| format!("quote_id {error}"))?,
            request: QuoteRequest {
                participant: ParticipantId::new(quote.participant_id.clone()).map_err(|error| error.to_string())?,
                payer: address("payer", &quote.payer)?,
                payee: address("payee", &quote.payee)?,
                amount: money("amount", &quote.amount)?,
                fixed_side,
            },
            route: quote
                .route
                .iter()
                .map(|id| LedgerId::new(id.clone()).map_err(|error| error.to_string()))
                .collect::<Result<_, _>>()?,
            send: money("send_amount", &quote.send_amount)?,
            receive: money("receive_amount", &quote.receive_amount)?,
            total_debit: money("total_debit", &quote.total_debit)?,
            hops: quote.hops.iter().map(Hop::from_wire).collect::<Result<_, _>>()?,
            fees: quote.fees.iter().map(FeeCharge::from_wire).collect::<Result<_, _>>()?,
            quoted_at: time("quoted_at", quote.quoted_at)?,
            expires_at: time("expires_at", quote.expires_at)?,
        })
    }
}
