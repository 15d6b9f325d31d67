//! Corridor's shared vocabulary: the protobuf wire types (in [`wire`], and only there) and the
//! validated domain types every other crate works with.
//!
//! Conversions from the wire are `TryFrom` impls that validate every field and name the field
//! that is wrong; nothing past this crate sees an unvalidated string or amount. This crate does
//! not know about gRPC status codes: mapping errors to `tonic::Status` is the router's job.

pub mod address;
pub mod currency;
pub mod error;
pub mod identifier;
pub mod money;
pub mod party;
pub mod payment;
pub mod signature;
pub mod wire;

pub use address::{AccountName, Address, AddressError, LedgerId};
pub use currency::{Currency, CurrencyError};
pub use error::FieldError;
pub use identifier::{IdempotencyKey, IdentifierError, Jurisdiction, ParticipantId};
pub use money::{Money, MoneyError};
pub use party::Party;
pub use payment::{FixedSide, PaymentId, PaymentInstruction, PaymentStatus, QuoteId, QuoteRequest};
pub use signature::{ParticipantKey, ParticipantKeyError, SignatureError};
