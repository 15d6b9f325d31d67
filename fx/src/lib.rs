//! Corridor FX: the rate book of liquidity providers and the pricing of one conversion.
//!
//! A provider quotes a pair `BASE/QUOTE` with a bid (what it pays, in QUOTE, for one BASE) and an
//! ask (what it charges, in QUOTE, for one BASE). Converting from BASE to QUOTE uses the bid;
//! converting from QUOTE to BASE uses the ask. All arithmetic is `rust_decimal`; nothing here is a
//! float.
//!
//! **Rounding.** Amounts are rounded to the minor units of their currency, always toward the
//! liquidity provider, so the provider never pays out more than its quoted price allows:
//! - fixed send: the receive amount is rounded **down** (toward zero);
//! - fixed receive: the send amount is rounded **up** (away from zero).
//!
//! The payer's worst case is therefore one minor unit of the rounded currency. Intermediate
//! quotients keep rust_decimal's 28 significant digits before that single rounding.
//!
//! **Seeding from the ECB.** [`EcbHistory::parse`] reads the European Central Bank's euro reference
//! rates (`eurofxref-hist.csv`, units per one EUR) into exact decimals; [`EcbDay::provider_rates`]
//! turns one day into a provider's bid/ask for any pairs, crossed through the EUR pivot, spread
//! around the mid and rounded toward the provider, ready for [`RateBook::publish`]. The 2025–2026
//! rows are kept in `fx/data/` (ECB, source credited in `fx/data/SOURCES.md`).
//!
//! This crate does not know ledgers, accounts or liquidity balances; the router decides which
//! providers may fill a payment and passes that in.

mod book;
mod ecb;
mod pricing;

pub use book::{CurrencyPair, ProviderRate, RateBook, RateError};
pub use ecb::{ECB_SNAPSHOT_2025_2026, EcbDay, EcbError, EcbHistory};
pub use pricing::{Conversion, FixedAmount, FxError, PriceDirection};
