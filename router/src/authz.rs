//! Who may do what: every gRPC call of the router (and of a ledger node) asks [`authorize`] here,
//! with the [`Caller`] its connection proved and the [`Call`] it is making. This is the one place
//! the rules live:
//!
//! | call | who |
//! |---|---|
//! | SubmitPayment, QuoteFx | a participant or liquidity provider, for itself only (the instruction's `participant_id` is the certificate's id) |
//! | GetPayment, ListPayments | the payment's participant; an operator for any |
//! | PublishRates | a liquidity provider, for itself only |
//! | GetRates | any party of the network |
//! | ListHeldPayments, DecideHeldPayment | a compliance officer, as itself, of the jurisdiction it is configured for |
//! | ComplianceFeed (Subscribe, QueryFeed, checkpoints) | a regulator, as itself, of the jurisdiction it is configured for |
//! | TransactionCoordinator | a ledger node |
//! | OperatorService | an operator |
//! | the ledger protocol (on a ledger node) | the router |
//! | health, reflection | anyone with a certificate |
//!
//! After this check the handlers still apply the network's own rules with the proven id (a
//! participant debits only accounts it owns, an officer decides only its jurisdiction's payments).
//! Over `--insecure-dev` plain text there is no certificate: the ids a request claims are trusted
//! and only those network rules apply.

use std::sync::Arc;

use corridor_schemas::{Jurisdiction, ParticipantId};
use tonic::{Request, Status};

use crate::tls::{PartyIdentity, Role};
use crate::transport::Peer;

/// Who is calling, as far as the connection proves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// Authenticated by its certificate.
    Party(Arc<PartyIdentity>),
    /// A plain-text (`--insecure-dev`) connection: nothing is proven.
    InsecureDev,
}

impl Caller {
    /// The caller of `request`, from the [`Peer`] its connection attached.
    pub fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        match request.extensions().get::<Peer>() {
            Some(Peer { identity: Some(identity), .. }) => Ok(Caller::Party(Arc::clone(identity))),
            Some(Peer { identity: None, .. }) => Ok(Caller::InsecureDev),
            None => Err(Status::unauthenticated("the connection carries no peer identity")),
        }
    }

    /// The caller's id when it is a participant or liquidity provider (for filling in a
    /// participant filter the request left empty).
    pub fn participant_id(&self) -> Option<&str> {
        match self {
            Caller::Party(identity) if matches!(identity.role, Role::Participant | Role::LiquidityProvider) => {
                Some(&identity.id)
            }
            _ => None,
        }
    }
}

/// A call, with what it names that authorization depends on.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// SubmitPayment: the instruction's participant.
    SubmitPayment { participant: &'a ParticipantId },
    /// QuoteFx: the request's participant.
    QuoteFx { participant: &'a ParticipantId },
    /// GetPayment: the participant that sent the payment.
    ReadPayment { owner: &'a ParticipantId },
    /// ListPayments: the participant filter (`None`: every participant's).
    ListPayments { participant: Option<&'a ParticipantId> },
    /// PublishRates: the provider the rates are published for.
    PublishRates { provider: &'a ParticipantId },
    /// GetRates.
    GetRates,
    /// ListHeldPayments, DecideHeldPayment: the officer named and its configured jurisdiction.
    ReviewHeld { officer: &'a ParticipantId, jurisdiction: &'a Jurisdiction },
    /// The compliance feed: the regulator named and its configured jurisdiction.
    ReadFeed { regulator: &'a ParticipantId, jurisdiction: &'a Jurisdiction },
    /// TransactionCoordinator: a ledger node asking for decisions, as the ledger it names.
    Coordinate { ledger: &'a str },
    /// OperatorService.
    Administer,
    /// The ledger protocol served by a ledger node.
    LedgerProtocol,
}

impl Call<'_> {
    fn name(&self) -> &'static str {
        match self {
            Call::SubmitPayment { .. } => "submit payments",
            Call::QuoteFx { .. } => "ask for quotes",
            Call::ReadPayment { .. } => "read this payment",
            Call::ListPayments { .. } => "list these payments",
            Call::PublishRates { .. } => "publish rates",
            Call::GetRates => "read rates",
            Call::ReviewHeld { .. } => "review held payments",
            Call::ReadFeed { .. } => "read compliance feeds",
            Call::Coordinate { .. } => "ask for commit decisions",
            Call::Administer => "administer the network",
            Call::LedgerProtocol => "call the ledger protocol",
        }
    }
}

/// Allows `call` for `caller`, or says why not (PERMISSION_DENIED naming the certificate's
/// identity and what it may not do).
pub fn authorize(caller: &Caller, call: Call<'_>) -> Result<(), Status> {
    let Caller::Party(identity) = caller else { return Ok(()) };
    let as_itself = |id: &ParticipantId| identity.id == id.as_str();
    let allowed = match call {
        Call::SubmitPayment { participant } | Call::QuoteFx { participant } => {
            matches!(identity.role, Role::Participant | Role::LiquidityProvider) && as_itself(participant)
        }
        Call::ReadPayment { owner } => {
            identity.role == Role::Operator
                || (matches!(identity.role, Role::Participant | Role::LiquidityProvider) && as_itself(owner))
        }
        Call::ListPayments { participant } => {
            identity.role == Role::Operator
                || (matches!(identity.role, Role::Participant | Role::LiquidityProvider)
                    && participant.is_some_and(as_itself))
        }
        Call::PublishRates { provider } => identity.role == Role::LiquidityProvider && as_itself(provider),
        Call::GetRates => true,
        Call::ReviewHeld { officer, jurisdiction } => {
            identity.role == Role::Officer && as_itself(officer) && identity.jurisdiction.as_ref() == Some(jurisdiction)
        }
        Call::ReadFeed { regulator, jurisdiction } => {
            identity.role == Role::Regulator
                && as_itself(regulator)
                && identity.jurisdiction.as_ref() == Some(jurisdiction)
        }
        Call::Coordinate { ledger } => identity.role == Role::LedgerNode && identity.id == ledger,
        Call::Administer => identity.role == Role::Operator,
        Call::LedgerProtocol => identity.role == Role::Router,
    };
    if allowed { Ok(()) } else { Err(Status::permission_denied(denial(identity, call))) }
}

fn denial(identity: &PartyIdentity, call: Call<'_>) -> String {
    let named = |claimed: &ParticipantId| {
        if identity.id == claimed.as_str() {
            String::new()
        } else {
            format!(" (the request names `{claimed}`, the certificate `{}`)", identity.id)
        }
    };
    let detail = match call {
        Call::SubmitPayment { participant } | Call::QuoteFx { participant } => named(participant),
        Call::ReadPayment { owner } => format!(" (it belongs to `{owner}`)"),
        Call::ListPayments { participant: Some(participant) } => named(participant),
        Call::ListPayments { participant: None } => " of every participant".to_owned(),
        Call::PublishRates { provider } => named(provider),
        Call::ReviewHeld { officer: claimed, jurisdiction } | Call::ReadFeed { regulator: claimed, jurisdiction } => {
            if identity.id != claimed.as_str() {
                named(claimed)
            } else {
                format!(" (configured for {jurisdiction}, the certificate names {})", jurisdiction_of(identity))
            }
        }
        Call::Coordinate { ledger } if identity.id != ledger => {
            format!(" (the request names ledger `{ledger}`, the certificate `{}`)", identity.id)
        }
        Call::GetRates | Call::Coordinate { .. } | Call::Administer | Call::LedgerProtocol => String::new(),
    };
    format!("{} may not {}{detail}", identity.uri(), call.name())
}

fn jurisdiction_of(identity: &PartyIdentity) -> String {
    identity.jurisdiction.as_ref().map_or_else(|| "none".to_owned(), ToString::to_string)
}

/// A tonic interceptor that lets through only callers allowed `call` (for services where every
/// method is the same call and names nobody: the operator service, the ledger protocol).
pub fn require(call: Call<'static>) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        authorize(&Caller::of(&request)?, call)?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests;
