//! Wire ↔ domain conversions of the ledger protocol, and the stable error codes both sides of it
//! agree on. Conversions from the wire validate and name the failing field; they do not judge
//! postings (sums, currency of the ledger, amount ranges): that is the ledger's own check, whose
//! refusal is a per-item `INVALID_POSTINGS`, not a malformed message.

use std::time::SystemTime;

use corridor_schemas::wire::v1 as wire;
use corridor_schemas::{AccountName, Currency, FieldError, Jurisdiction, LedgerId, PaymentId};

use crate::ledger::{LedgerDescription, LedgerError, Posting, RefusalCode, TransactionId, TransactionState};

/// What `DescribeResponse.protocol` says for this version of the protocol.
pub const PROTOCOL: &str = "corridor.v1";

/// Every error code an item's result may carry, each with the [`LedgerError`] it stands for.
pub const ERROR_CODES: &[(&str, &str)] = &[
    ("UNKNOWN_TRANSACTION", "the ledger has no record of the transaction"),
    ("ALREADY_ABORTED", "the transaction was aborted; it cannot be committed or prepared again"),
    ("ALREADY_COMMITTED", "the transaction was committed; it cannot be aborted or prepared again"),
    ("REFUSED", "the ledger voted no; there is nothing to commit"),
    ("CONFLICT", "the id was already prepared with different postings"),
    ("INVALID_POSTINGS", "postings empty, too many, zero, out of range, in another currency, or not summing to zero"),
    ("UNKNOWN_ACCOUNT", "an account does not exist on this ledger; the message is its name"),
    ("UNAVAILABLE", "the ledger could not answer; the outcome is in doubt"),
];

/// The stable code of an error, as [`ERROR_CODES`] lists it.
pub(super) fn error_code(error: &LedgerError) -> &'static str {
    match error {
        LedgerError::UnknownTransaction(_) => "UNKNOWN_TRANSACTION",
        LedgerError::AlreadyAborted(_) => "ALREADY_ABORTED",
        LedgerError::AlreadyCommitted(_) => "ALREADY_COMMITTED",
        LedgerError::Refused(_) => "REFUSED",
        LedgerError::Conflict(_) => "CONFLICT",
        LedgerError::InvalidPostings(_) => "INVALID_POSTINGS",
        LedgerError::UnknownAccount(_) => "UNKNOWN_ACCOUNT",
        LedgerError::Unavailable(_) => "UNAVAILABLE",
    }
}

/// The message that goes with a code: what the error says beyond the code. For the variants that
/// carry only the transaction id, the id is already in the result.
pub(super) fn error_message(error: &LedgerError) -> String {
    match error {
        LedgerError::InvalidPostings(reason) | LedgerError::Unavailable(reason) => reason.clone(),
        LedgerError::UnknownAccount(account) => account.to_string(),
        other => other.to_string(),
    }
}

/// The error an item's code and message stand for. An unrecognised code becomes `Unavailable`:
/// the client cannot tell what happened, so the outcome is in doubt.
pub(super) fn error_from_code(code: &str, message: &str, transaction: TransactionId) -> LedgerError {
    match code {
        "UNKNOWN_TRANSACTION" => LedgerError::UnknownTransaction(transaction),
        "ALREADY_ABORTED" => LedgerError::AlreadyAborted(transaction),
        "ALREADY_COMMITTED" => LedgerError::AlreadyCommitted(transaction),
        "REFUSED" => LedgerError::Refused(transaction),
        "CONFLICT" => LedgerError::Conflict(transaction),
        "INVALID_POSTINGS" => LedgerError::InvalidPostings(message.to_owned()),
        "UNKNOWN_ACCOUNT" => match AccountName::new(message) {
            Ok(account) => LedgerError::UnknownAccount(account),
            Err(_) => LedgerError::InvalidPostings(format!("unknown account: {message}")),
        },
        "UNAVAILABLE" => LedgerError::Unavailable(message.to_owned()),
        other => LedgerError::Unavailable(format!("the ledger answered with unrecognised error {other}: {message}")),
    }
}

pub(super) fn refusal_code(text: &str) -> Option<RefusalCode> {
    [RefusalCode::InsufficientFunds, RefusalCode::UnknownAccount, RefusalCode::DeadlinePassed]
        .into_iter()
        .find(|code| code.as_str() == text)
}

pub(super) fn state_to_wire(state: TransactionState) -> wire::TransactionState {
    match state {
        TransactionState::Unknown => wire::TransactionState::Unknown,
        TransactionState::Prepared => wire::TransactionState::Prepared,
        TransactionState::Committed => wire::TransactionState::Committed,
        TransactionState::Aborted => wire::TransactionState::Aborted,
        TransactionState::Refused => wire::TransactionState::Refused,
    }
}

pub(super) fn state_from_wire(state: i32) -> Option<TransactionState> {
    match wire::TransactionState::try_from(state).ok()? {
        wire::TransactionState::Unspecified => None,
        wire::TransactionState::Unknown => Some(TransactionState::Unknown),
        wire::TransactionState::Prepared => Some(TransactionState::Prepared),
        wire::TransactionState::Committed => Some(TransactionState::Committed),
        wire::TransactionState::Aborted => Some(TransactionState::Aborted),
        wire::TransactionState::Refused => Some(TransactionState::Refused),
    }
}

/// The state a transaction is known to be in after a call failed with `error`; unspecified when
/// the error does not tell.
pub(super) fn state_after_error(error: &LedgerError) -> wire::TransactionState {
    match error {
        LedgerError::UnknownTransaction(_) => wire::TransactionState::Unknown,
        LedgerError::AlreadyAborted(_) => wire::TransactionState::Aborted,
        LedgerError::AlreadyCommitted(_) => wire::TransactionState::Committed,
        LedgerError::Refused(_) => wire::TransactionState::Refused,
        LedgerError::Conflict(_)
        | LedgerError::InvalidPostings(_)
        | LedgerError::UnknownAccount(_)
        | LedgerError::Unavailable(_) => wire::TransactionState::Unspecified,
    }
}

pub(super) fn transaction_id(text: &str, field: &str) -> Result<TransactionId, FieldError> {
    text.parse::<PaymentId>().map(TransactionId::from).map_err(|reason| FieldError::new(field, reason))
}

pub(super) fn transaction_ids(ids: &[String], field: &str) -> Result<Vec<TransactionId>, FieldError> {
    ids.iter().enumerate().map(|(index, id)| transaction_id(id, &format!("{field}[{index}]"))).collect()
}

pub(super) fn account(text: &str, field: &str) -> Result<AccountName, FieldError> {
    AccountName::new(text).map_err(|error| FieldError::new(field, error))
}

impl TryFrom<wire::LedgerPosting> for Posting {
    type Error = FieldError;
    fn try_from(posting: wire::LedgerPosting) -> Result<Self, Self::Error> {
        Ok(Posting {
            account: account(&posting.account, "account")?,
            currency: Currency::from_code(&posting.currency).map_err(|error| FieldError::new("currency", error))?,
            // Range and sign are the ledger's check (INVALID_POSTINGS), not the message's.
            amount_minor: posting.amount_minor,
        })
    }
}

impl From<&Posting> for wire::LedgerPosting {
    fn from(posting: &Posting) -> Self {
        Self {
            account: posting.account.to_string(),
            currency: posting.currency.code().to_owned(),
            amount_minor: posting.amount_minor,
        }
    }
}

/// A prepare item, read: its transaction, postings and deadline. Every field is required.
pub(super) fn prepare_item(item: wire::PrepareItem) -> Result<(TransactionId, Vec<Posting>, SystemTime), FieldError> {
    let transaction = transaction_id(&item.transaction_id, "transaction_id")?;
    let postings = item
        .postings
        .into_iter()
        .enumerate()
        .map(|(index, posting)| Posting::try_from(posting).map_err(|error| error.within(&format!("postings[{index}]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = item.deadline.ok_or_else(|| FieldError::new("deadline", "is required"))?;
    let deadline = SystemTime::try_from(deadline)
        .map_err(|error| FieldError::new("deadline", format!("is not a valid time: {error}")))?;
    Ok((transaction, postings, deadline))
}

impl From<&LedgerDescription> for wire::DescribeResponse {
    fn from(description: &LedgerDescription) -> Self {
        Self {
            ledger_id: description.ledger.to_string(),
            currency: description.currency.code().to_owned(),
            jurisdiction: description.jurisdiction.to_string(),
            protocol: PROTOCOL.to_owned(),
        }
    }
}

impl TryFrom<wire::DescribeResponse> for LedgerDescription {
    type Error = FieldError;
    fn try_from(response: wire::DescribeResponse) -> Result<Self, Self::Error> {
        if response.protocol != PROTOCOL {
            return Err(FieldError::new("protocol", format!("`{}` is not {PROTOCOL}", response.protocol)));
        }
        Ok(Self {
            ledger: LedgerId::new(response.ledger_id).map_err(|error| FieldError::new("ledger_id", error))?,
            currency: Currency::from_code(&response.currency).map_err(|error| FieldError::new("currency", error))?,
            jurisdiction: Jurisdiction::new(response.jurisdiction)
                .map_err(|error| FieldError::new("jurisdiction", error))?,
        })
    }
}
