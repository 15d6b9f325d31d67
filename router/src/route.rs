//! Route finding, pricing, and the legs of a payment.
//!
//! Ledgers are the nodes of a graph; a liquidity provider with accounts on two ledgers and a fresh
//! rate between their currencies is an edge. A payment between two accounts of one ledger is
//! direct. Otherwise every simple path from the payer's ledger to the payee's with at most
//! `fx.hop_limit` edges is priced, hop by hop with the best provider of each hop, and the route
//! best for the payer wins:
//! - fixed send: the most received per unit debited (`receive / total_debit`);
//! - fixed receive: the least debited.
//!
//! Ties go to the shorter route, then to the first in ledger-id order, so the choice is
//! deterministic. Pricing the paths exhaustively (rather than a shortest-path search on
//! log-rates) keeps it exact under rounding, fees and provider maximums, and is cheap at the
//! sizes a hop limit allows; [`PATHS_PRICED_MAX`] bounds it.
//!
//! **Fees** are per hop ([`Network::fee_for`]), in the hop's source currency, on the amount the hop
//! converts: the first hop's fee is debited from the payer on top of the send amount; a later
//! hop's fee is taken out of the amount arriving on its ledger (the previous provider pays it).
//! Where the amount arriving cannot be split exactly into an amount to convert plus its fee, the
//! previous provider pays the largest split that fits and keeps the remainder, at most one minor
//! unit: rounding always goes toward the provider, as in `corridor_fx`.
//!
//! The result is a [`Plan`]: route, hops, fees and the postings per ledger, which always sum to
//! zero on each ledger. A locked quote stores the plan's hops and fees; [`legs_for`] rebuilds the
//! same postings from them when the quote is paid.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

use corridor_fx::{Conversion, CurrencyPair, FixedAmount, FxError, ProviderRate, RateBook};
use corridor_ledger_adapters::Posting;
use corridor_schemas::{AccountName, FixedSide, LedgerId, Money, ParticipantId, QuoteRequest};
use rust_decimal::Decimal;

use crate::network::{Fee, Network};
use crate::payment::{FeeCharge, Leg, LegState, PaymentReason};

/// The most candidate routes priced for one payment.
pub const PATHS_PRICED_MAX: usize = 512;

/// One conversion of a route: `provider` takes `send` on `from` and pays `receive` on `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub from: LedgerId,
    pub to: LedgerId,
    pub provider: ParticipantId,
    pub pair: CurrencyPair,
    /// Units of `receive`'s currency per unit of `send`'s, as the provider priced it (10 places).
    pub rate: Decimal,
    pub rate_source: String,
    pub rate_as_of: SystemTime,
    pub send: Money,
    pub receive: Money,
}

impl Hop {
    fn new(from: &LedgerId, to: &LedgerId, conversion: Conversion) -> Self {
        Self {
            from: from.clone(),
            to: to.clone(),
            rate: conversion.rate(),
            provider: conversion.provider,
            pair: conversion.pair,
            rate_source: conversion.rate_source,
            rate_as_of: conversion.rate_as_of,
            send: conversion.send,
            receive: conversion.receive,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub route: Vec<LedgerId>,
    /// What the first hop converts (or the payee gets, domestically); the payer's fee is on top.
    pub send: Money,
    pub receive: Money,
    /// `send` plus the payer's fee: everything the payer's account is debited.
    pub total_debit: Money,
    pub hops: Vec<Hop>,
    pub fees: Vec<FeeCharge>,
    pub legs: Vec<Leg>,
}

/// Prices `request` now on the network's fresh rates and plans its legs.
pub fn plan(network: &Network, request: &QuoteRequest, now: SystemTime) -> Result<Plan, PaymentReason> {
    let source = &request.payer.ledger;
    let destination = &request.payee.ledger;
    if source == destination {
        let amount = request.amount;
        let fee = network
            .fee_for(&request.participant, source, destination)
            .and_then(|fee| charge(fee, amount, source, destination));
        let total_debit = add(amount, fee.as_ref())?;
        let fees: Vec<FeeCharge> = fee.into_iter().collect();
        let legs = legs_for(network, request, &[], &fees, amount)?;
        return Ok(Plan {
            route: vec![source.clone()],
            send: amount,
            receive: amount,
            total_debit,
            hops: Vec::new(),
            fees,
            legs,
        });
    }

    let rate_max_age = network.fx.rate_max_age;
    let book = network.rates();
    let fresh = |rate: &ProviderRate| rate.is_fresh(now, rate_max_age);
    let paths = candidate_paths(network, &book, source, destination, &fresh);
    if paths.is_empty() {
        drop(book);
        return Err(no_path_reason(network, source, destination));
    }

    let mut best: Option<Priced> = None;
    let mut first_error: Option<FxError> = None;
    for path in &paths {
        match price_path(network, &book, request, path, &fresh) {
            Ok(priced) => {
                if best.as_ref().is_none_or(|current| priced.better_than(current, request.fixed_side)) {
                    best = Some(priced);
                }
            }
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    drop(book);
    let Some(best) = best else {
        return Err(match first_error {
            Some(error) => fx_reason(error),
            None => PaymentReason::new("NO_ROUTE", format!("no route from {source} to {destination}")),
        });
    };
    let legs = legs_for(network, request, &best.hops, &best.fees, best.send)?;
    Ok(Plan {
        route: best.route,
        send: best.send,
        receive: best.receive,
        total_debit: best.total_debit,
        hops: best.hops,
        fees: best.fees,
        legs,
    })
}

/// A priced path, before its legs.
struct Priced {
    route: Vec<LedgerId>,
    send: Money,
    receive: Money,
    total_debit: Money,
    hops: Vec<Hop>,
    fees: Vec<FeeCharge>,
}

impl Priced {
    fn better_than(&self, other: &Priced, fixed_side: FixedSide) -> bool {
        let value = match fixed_side {
            // receive / debit, compared exactly by cross-multiplying (i128 cannot overflow: both
            // factors are below 10^15).
            FixedSide::Send => (i128::from(self.receive.minor_units()) * i128::from(other.total_debit.minor_units()))
                .cmp(&(i128::from(other.receive.minor_units()) * i128::from(self.total_debit.minor_units()))),
            FixedSide::Receive => other.total_debit.minor_units().cmp(&self.total_debit.minor_units()),
        };
        match value {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => self.route.len() < other.route.len(),
        }
    }
}

/// Providers that can fill the hop `from` → `to`: an account on both ledgers.
fn bridges(network: &Network, provider: &ParticipantId, from: &LedgerId, to: &LedgerId) -> bool {
    network.providers.get(provider).is_some_and(|lp| lp.accounts.contains_key(from) && lp.accounts.contains_key(to))
}

/// Every simple path from `source` to `destination` with at most `hop_limit` edges, shortest
/// first, where each edge has a provider with accounts on both ledgers and a `usable` rate.
fn candidate_paths(
    network: &Network,
    book: &RateBook,
    source: &LedgerId,
    destination: &LedgerId,
    usable: &dyn Fn(&ProviderRate) -> bool,
) -> Vec<Vec<LedgerId>> {
    // Adjacency in ledger-id order, so the search (and its tie-breaks) is deterministic.
    let ledgers: BTreeMap<&LedgerId, corridor_schemas::Currency> =
        network.ledgers.iter().map(|(id, handle)| (id, handle.description.currency)).collect();
    let mut adjacent: BTreeMap<&LedgerId, Vec<&LedgerId>> = BTreeMap::new();
    for (from, from_currency) in &ledgers {
        for (to, to_currency) in &ledgers {
            if from == to || from_currency == to_currency {
                continue;
            }
            let connected = book.rates().iter().any(|rate| {
                let pair = rate.pair;
                let quotes = (pair.base == *from_currency && pair.quote == *to_currency)
                    || (pair.base == *to_currency && pair.quote == *from_currency);
                quotes && usable(rate) && bridges(network, &rate.provider, from, to)
            });
            if connected {
                adjacent.entry(from).or_default().push(to);
            }
        }
    }
    let mut paths = Vec::new();
    for length in 1..=network.fx.hop_limit {
        let mut path = vec![source];
        extend(&adjacent, destination, length, &mut path, &mut paths);
        if paths.len() >= PATHS_PRICED_MAX {
            paths.truncate(PATHS_PRICED_MAX);
            break;
        }
    }
    paths
}

/// Depth-first: completes `path` to exactly `length` edges ending at `destination`.
fn extend<'a>(
    adjacent: &BTreeMap<&'a LedgerId, Vec<&'a LedgerId>>,
    destination: &LedgerId,
    length: usize,
    path: &mut Vec<&'a LedgerId>,
    paths: &mut Vec<Vec<LedgerId>>,
) {
    if paths.len() >= PATHS_PRICED_MAX {
        return;
    }
    let Some(last) = path.last().copied() else { return };
    let edges_so_far = path.len() - 1;
    if edges_so_far == length {
        if last == destination {
            paths.push(path.iter().map(|ledger| (*ledger).clone()).collect());
        }
        return;
    }
    for next in adjacent.get(last).into_iter().flatten() {
        let arrives_early = *next == destination && edges_so_far + 1 < length;
        if path.contains(next) || arrives_early {
            continue;
        }
        path.push(next);
        extend(adjacent, destination, length, path, paths);
        path.pop();
    }
}

/// Why no path exists: only stale rates would connect the ledgers, or nothing would.
fn no_path_reason(network: &Network, source: &LedgerId, destination: &LedgerId) -> PaymentReason {
    let (from, to) = (network.currency_of(source), network.currency_of(destination));
    let book = network.rates();
    let any_age = candidate_paths(network, &book, source, destination, &|_| true);
    if !any_age.is_empty() {
        return PaymentReason::new(
            "STALE_RATES",
            format!(
                "the only rates that would connect {source} and {destination} are older than {} ms; \
                 their providers must publish again",
                network.fx.rate_max_age.as_millis()
            ),
        );
    }
    match (from, to) {
        (Some(from), Some(to)) if from == to => PaymentReason::new(
            "NO_ROUTE",
            format!("{source} and {destination} both issue {from}; no route through another currency connects them"),
        ),
        _ => PaymentReason::new(
            "NO_ROUTE",
            format!(
                "no chain of at most {} liquidity providers with accounts on the ledgers and rates for their \
                 currencies connects {source} to {destination}",
                network.fx.hop_limit
            ),
        ),
    }
}

fn fx_reason(error: FxError) -> PaymentReason {
    let code = match error {
        FxError::NoRate { .. } => "NO_ROUTE",
        FxError::BelowMinorUnit { .. } => "AMOUNT_BELOW_MINOR_UNIT",
        FxError::OutOfRange { .. } => "AMOUNT_OUT_OF_RANGE",
        FxError::AboveMaximum { .. } => "ABOVE_PROVIDER_MAXIMUM",
    };
    PaymentReason::new(code, error.to_string())
}

fn charge(fee: &Fee, amount: Money, from: &LedgerId, to: &LedgerId) -> Option<FeeCharge> {
    fee.on(amount).map(|fee_amount| FeeCharge {
        amount: fee_amount,
        account: fee.account.clone(),
        from: from.clone(),
        to: to.clone(),
    })
}

fn add(amount: Money, fee: Option<&FeeCharge>) -> Result<Money, PaymentReason> {
    let Some(fee) = fee else { return Ok(amount) };
    amount.checked_add(fee.amount).map_err(|error| {
        PaymentReason::new("AMOUNT_OUT_OF_RANGE", format!("{amount} plus the fee {}: {error}", fee.amount))
    })
}

/// The largest amount `x` with `x + fee(x) <= arrived`: what a later hop can convert out of what
/// arrived on its ledger. `None` when nothing is left after the fee.
fn convertible(fee: Option<&Fee>, arrived: Money) -> Option<Money> {
    let Some(fee) = fee else { return Some(arrived) };
    let arrived_minor = i128::from(arrived.minor_units());
    let total = |x: i128| x + i128::from(fee.fixed_minor) + x * i128::from(fee.basis_points) / 10_000;
    let mut x = (arrived_minor - i128::from(fee.fixed_minor)) * 10_000 / (10_000 + i128::from(fee.basis_points));
    // The estimate never overshoots; flooring the basis points can leave room for a unit or two.
    while total(x + 1) <= arrived_minor {
        x += 1;
    }
    let x = i64::try_from(x).ok()?;
    Money::from_minor_units(x, arrived.currency()).ok()
}

/// Prices one path for `request`: forward from the send amount, or backward from the receive
/// amount, with each hop's best eligible provider.
fn price_path(
    network: &Network,
    book: &RateBook,
    request: &QuoteRequest,
    path: &[LedgerId],
    usable: &dyn Fn(&ProviderRate) -> bool,
) -> Result<Priced, FxError> {
    let unknown = FxError::NoRate { from: request.amount.currency(), to: request.amount.currency() };
    let currency = |ledger: &LedgerId| network.currency_of(ledger).ok_or_else(|| unknown.clone());
    let fee_of = |index: usize| network.fee_for(&request.participant, &path[index], &path[index + 1]);
    let hop_count = path.len() - 1;
    let mut hops: Vec<Hop> = Vec::with_capacity(hop_count);
    let mut fees: Vec<FeeCharge> = Vec::new();
    match request.fixed_side {
        FixedSide::Send => {
            let mut amount = request.amount;
            for index in 0..hop_count {
                let (from, to) = (&path[index], &path[index + 1]);
                if index > 0 {
                    let fee = fee_of(index);
                    let converted = convertible(fee, amount)
                        .ok_or(FxError::BelowMinorUnit { amount, currency: amount.currency() })?;
                    if let Some(charge) = fee.and_then(|fee| charge(fee, converted, from, to)) {
                        // The previous provider pays exactly what the split needs and keeps any
                        // remainder.
                        let paid = converted.checked_add(charge.amount).unwrap_or(amount);
                        debug_assert!(paid.minor_units() <= amount.minor_units());
                        if let Some(previous) = hops.last_mut() {
                            previous.receive = paid;
                        }
                        fees.push(charge);
                    } else if let Some(previous) = hops.last_mut() {
                        previous.receive = converted;
                    }
                    amount = converted;
                }
                let eligible = |rate: &ProviderRate| usable(rate) && bridges(network, &rate.provider, from, to);
                let conversion =
                    book.best_conversion(currency(from)?, currency(to)?, FixedAmount::Send(amount), eligible)?;
                amount = conversion.receive;
                hops.push(Hop::new(from, to, conversion));
            }
        }
        FixedSide::Receive => {
            let mut needed = request.amount;
            for index in (0..hop_count).rev() {
                let (from, to) = (&path[index], &path[index + 1]);
                let eligible = |rate: &ProviderRate| usable(rate) && bridges(network, &rate.provider, from, to);
                let conversion =
                    book.best_conversion(currency(from)?, currency(to)?, FixedAmount::Receive(needed), eligible)?;
                needed = conversion.send;
                hops.push(Hop::new(from, to, conversion));
                if index > 0
                    && let Some(charge) = fee_of(index).and_then(|fee| charge(fee, needed, from, to))
                {
                    needed = needed
                        .checked_add(charge.amount)
                        .map_err(|error| FxError::OutOfRange { amount: needed, reason: error.to_string() })?;
                    fees.push(charge);
                }
            }
            hops.reverse();
            fees.reverse();
        }
    }
    let send = hops.first().map_or(request.amount, |hop| hop.send);
    let receive = hops.last().map_or(request.amount, |hop| hop.receive);
    let payer_fee = fee_of(0).and_then(|fee| charge(fee, send, &path[0], &path[1]));
    let total_debit = match &payer_fee {
        Some(fee) => send
            .checked_add(fee.amount)
            .map_err(|error| FxError::OutOfRange { amount: send, reason: error.to_string() })?,
        None => send,
    };
    fees.splice(0..0, payer_fee);
    Ok(Priced { route: path.to_vec(), send, receive, total_debit, hops, fees })
}

/// The postings of a payment with these hops and fees, per ledger in route order:
/// - the payer's ledger: payer → first provider (or payee) `send`, payer → fee account;
/// - each intermediate ledger: previous provider → next provider, and → fee account;
/// - the payee's ledger: last provider → payee.
///
/// Each leg sums to zero, or the plan is refused (a stored quote that does not add up).
pub fn legs_for(
    network: &Network,
    request: &QuoteRequest,
    hops: &[Hop],
    fees: &[FeeCharge],
    send: Money,
) -> Result<Vec<Leg>, PaymentReason> {
    let provider_account =
        |provider: &ParticipantId, ledger: &LedgerId| -> Result<AccountName, PaymentReason> {
            network.providers.get(provider).and_then(|lp| lp.accounts.get(ledger).cloned()).ok_or_else(|| {
                PaymentReason::new("NO_ROUTE", format!("{provider} no longer has an account on {ledger}"))
            })
        };
    let mut postings: Vec<(LedgerId, Vec<Posting>)> = Vec::new();
    let mut on = |ledger: &LedgerId, posting: Posting| match postings.iter_mut().find(|(id, _)| id == ledger) {
        Some((_, list)) => list.push(posting),
        None => postings.push((ledger.clone(), vec![posting])),
    };
    let payer = &request.payer;
    on(&payer.ledger, Posting::debit(payer.account.clone(), send));
    match hops.first() {
        None => on(&payer.ledger, Posting::credit(request.payee.account.clone(), send)),
        Some(first) => on(&first.from, Posting::credit(provider_account(&first.provider, &first.from)?, send)),
    }
    for (index, hop) in hops.iter().enumerate() {
        on(&hop.to, Posting::debit(provider_account(&hop.provider, &hop.to)?, hop.receive));
        match hops.get(index + 1) {
            Some(next) => on(&hop.to, Posting::credit(provider_account(&next.provider, &hop.to)?, next.send)),
            None => on(&hop.to, Posting::credit(request.payee.account.clone(), hop.receive)),
        }
    }
    // The payer pays its fee on top; a later hop's fee is inside the previous provider's debit.
    for fee in fees {
        if fee.from == payer.ledger {
            on(&payer.ledger, Posting::debit(payer.account.clone(), fee.amount));
        }
        on(&fee.account.ledger, Posting::credit(fee.account.account.clone(), fee.amount));
    }
    let mut legs = Vec::with_capacity(postings.len());
    for (ledger, list) in postings {
        let leg = leg(&ledger, list);
        let sum: i64 = leg.postings.iter().map(|posting| posting.amount_minor).sum();
        if sum != 0 {
            return Err(PaymentReason::new(
                "QUOTE_INCONSISTENT",
                format!("the postings on {ledger} do not balance (off by {sum} minor units)"),
            ));
        }
        if !leg.postings.is_empty() {
            legs.push(leg);
        }
    }
    Ok(legs)
}

/// A leg with its postings merged per account (zero nets dropped), so a provider paying through
/// itself or a payer debited for amount and fee shows as one posting per account.
fn leg(ledger: &LedgerId, postings: Vec<Posting>) -> Leg {
    let mut order: Vec<AccountName> = Vec::new();
    let mut net: HashMap<AccountName, Posting> = HashMap::new();
    for posting in postings {
        match net.get_mut(&posting.account) {
            Some(existing) => existing.amount_minor += posting.amount_minor,
            None => {
                order.push(posting.account.clone());
                net.insert(posting.account.clone(), posting);
            }
        }
    }
    let postings = order.iter().filter_map(|account| net.remove(account)).filter(|p| p.amount_minor != 0).collect();
    Leg { ledger: ledger.clone(), postings, state: LegState::NotSent, refusal: None }
}

#[cfg(test)]
mod tests;
