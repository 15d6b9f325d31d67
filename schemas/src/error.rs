//! The error of a wire-to-domain conversion: which field, and why.

/// A field of an incoming message that failed validation.
///
/// `field` is the path of the field in the message as the client wrote it
/// (`instruction.amount.amount`), so a client can find it without reading our source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl ToString) -> Self {
        Self { field: field.into(), reason: reason.to_string() }
    }

    /// The same error, one level deeper: `amount` inside `instruction` becomes `instruction.amount`.
    pub fn within(self, parent: &str) -> Self {
        Self { field: format!("{parent}.{}", self.field), reason: self.reason }
    }
}
