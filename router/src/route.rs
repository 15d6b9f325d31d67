//! Route finding and the legs of a payment.
//!
//! A payment between two accounts of one ledger is direct. Between two ledgers, a liquidity
//! provider with an account on both bridges them: it receives the send amount on the source ledger
//! and pays the receive amount on the destination ledger, at the best price for the payer among
//! the providers that can. Multi-hop routes through a pivot ledger are not built yet.
//!
//! The result is a [`Plan`]: amounts, conversion, fees and the postings per ledger, which always
//! sum to zero on each ledger.

use std::collections::HashMap;

use corridor_fx::{Conversion, FixedAmount, FxError};
use corridor_ledger_adapters::Posting;
use corridor_schemas::{AccountName, FixedSide, LedgerId, Money, PaymentInstruction};

use crate::network::Network;
use crate::payment::{FeeCharge, Leg, LegState, PaymentReason};

#[derive(Debug, Clone)]
pub struct Plan {
    pub route: Vec<LedgerId>,
    pub send: Money,
    pub receive: Money,
    pub conversion: Option<Conversion>,
    pub fees: Vec<FeeCharge>,
    pub legs: Vec<Leg>,
}

/// Plans a payment whose ledgers and currencies the caller has already checked against the network.
pub fn plan(network: &Network, instruction: &PaymentInstruction) -> Result<Plan, PaymentReason> {
    let source = &instruction.payer.ledger;
    let destination = &instruction.payee.ledger;
    let fee = network.fee_for(source, destination);

    if source == destination {
        let amount = instruction.amount;
        let fee_charge = fee.and_then(|fee| fee.on(amount)).map(|fee_amount| FeeCharge {
            amount: fee_amount,
            account: fee.map(|fee| fee.account.clone()).unwrap_or_else(|| crate::network::default_fee_account(source)),
        });
        let mut postings = vec![
            Posting::debit(instruction.payer.account.clone(), amount),
            Posting::credit(instruction.payee.account.clone(), amount),
        ];
        add_fee_postings(&mut postings, &instruction.payer.account, fee_charge.as_ref());
        return Ok(Plan {
            route: vec![source.clone()],
            send: amount,
            receive: amount,
            conversion: None,
            fees: fee_charge.into_iter().collect(),
            legs: vec![leg(source, postings)],
        });
    }

    let (from, to) = match (network.currency_of(source), network.currency_of(destination)) {
        (Some(from), Some(to)) => (from, to),
        _ => return Err(PaymentReason::new("NO_ROUTE", "a ledger of this payment is not on the network")),
    };
    if from == to {
        return Err(PaymentReason::new(
            "NO_ROUTE",
            format!(
                "{source} and {destination} both issue {from}; bridging same-currency ledgers is not supported yet"
            ),
        ));
    }
    let fixed = match instruction.fixed_side {
        FixedSide::Send => FixedAmount::Send(instruction.amount),
        FixedSide::Receive => FixedAmount::Receive(instruction.amount),
    };
    let bridges = |provider: &corridor_schemas::ParticipantId| {
        network
            .providers
            .get(provider)
            .is_some_and(|lp| lp.accounts.contains_key(source) && lp.accounts.contains_key(destination))
    };
    let conversion = network.rates.best_conversion(from, to, fixed, bridges).map_err(|error| match error {
        FxError::NoRate { .. } => PaymentReason::new(
            "NO_ROUTE",
            format!("no liquidity provider with accounts on {source} and {destination} quotes {from} against {to}"),
        ),
        FxError::BelowMinorUnit { .. } => PaymentReason::new("AMOUNT_BELOW_MINOR_UNIT", error.to_string()),
        FxError::OutOfRange { .. } => PaymentReason::new("AMOUNT_OUT_OF_RANGE", error.to_string()),
    })?;
    let provider_account = |ledger: &LedgerId| -> Result<AccountName, PaymentReason> {
        network.providers.get(&conversion.provider).and_then(|lp| lp.accounts.get(ledger).cloned()).ok_or_else(|| {
            PaymentReason::new("NO_ROUTE", format!("{} has no account on {ledger}", conversion.provider))
        })
    };
    let (send, receive) = (conversion.send, conversion.receive);
    let fee_charge = fee.and_then(|fee| fee.on(send).map(|amount| FeeCharge { amount, account: fee.account.clone() }));

    let mut source_postings =
        vec![Posting::debit(instruction.payer.account.clone(), send), Posting::credit(provider_account(source)?, send)];
    add_fee_postings(&mut source_postings, &instruction.payer.account, fee_charge.as_ref());
    let destination_postings = vec![
        Posting::debit(provider_account(destination)?, receive),
        Posting::credit(instruction.payee.account.clone(), receive),
    ];
    Ok(Plan {
        route: vec![source.clone(), destination.clone()],
        send,
        receive,
        conversion: Some(conversion),
        fees: fee_charge.into_iter().collect(),
        legs: [leg(source, source_postings), leg(destination, destination_postings)]
            .into_iter()
            .filter(|leg| !leg.postings.is_empty())
            .collect(),
    })
}

fn add_fee_postings(postings: &mut Vec<Posting>, payer: &AccountName, fee: Option<&FeeCharge>) {
    if let Some(fee) = fee {
        postings.push(Posting::debit(payer.clone(), fee.amount));
        postings.push(Posting::credit(fee.account.account.clone(), fee.amount));
    }
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
