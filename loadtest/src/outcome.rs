//! How one SubmitPayment call ended, as the load generator saw it, and the tally of those endings.
//!
//! [`classify`] turns the router's answer (a `wire::SubmitPaymentResponse` or a `tonic::Status`)
//! into an [`Outcome`]: settled, rejected or failed with the payment's reason code, pending (the
//! router answered before the payment became final), a gRPC error by its canonical code name, or
//! an answer the API contract does not allow. [`OutcomeCounts`] counts outcomes with a bounded
//! number of rows.
//!
//! This module does not judge outcomes: a rejection is a normal answer under load, not an error of
//! the run. It does not read anything but the status and reason code of the payment either; the
//! receipt's legs, fees and timings are the router's business and are dropped here.

use std::collections::BTreeMap;

use corridor_schemas::wire::v1 as wire;

/// Reason codes longer than this are cut, so a misbehaving server cannot blow up the report.
pub const DETAIL_LENGTH_MAX: usize = 64;

/// Distinct (class, detail) rows kept; further new details are counted as [`OTHER_DETAIL`] of their class.
pub const OUTCOME_ROWS_MAX: usize = 32;

/// The detail under which outcomes past [`OUTCOME_ROWS_MAX`] distinct rows are counted.
pub const OTHER_DETAIL: &str = "(other)";

/// The broad kind of ending; the order here is the order of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutcomeClass {
    /// Every leg committed.
    Settled,
    /// Refused before any money moved (no route, compliance, insufficient funds, ...).
    Rejected,
    /// Aborted during settlement; every prepared leg was released.
    Failed,
    /// Answered while not yet final, e.g. a commit the coordinator could not deliver yet, or a
    /// payment held for a compliance officer's review.
    Pending,
    /// The call itself failed with a gRPC status: refused at the API, timed out, or the
    /// connection was lost.
    GrpcError,
    /// An answer the API contract does not allow (no payment, an unknown status).
    Unexpected,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 6] = [
        OutcomeClass::Settled,
        OutcomeClass::Rejected,
        OutcomeClass::Failed,
        OutcomeClass::Pending,
        OutcomeClass::GrpcError,
        OutcomeClass::Unexpected,
    ];

    pub fn label(self) -> &'static str {
        match self {
            OutcomeClass::Settled => "settled",
            OutcomeClass::Rejected => "rejected",
            OutcomeClass::Failed => "failed",
            OutcomeClass::Pending => "pending",
            OutcomeClass::GrpcError => "gRPC error",
            OutcomeClass::Unexpected => "unexpected answer",
        }
    }

    /// The name of this class's count in the JSON report.
    pub fn json_key(self) -> &'static str {
        match self {
            OutcomeClass::Settled => "settled",
            OutcomeClass::Rejected => "rejected",
            OutcomeClass::Failed => "failed",
            OutcomeClass::Pending => "pending",
            OutcomeClass::GrpcError => "grpc_errors",
            OutcomeClass::Unexpected => "unexpected",
        }
    }
}

/// One request's ending: its class and, except for a settlement, what the router said.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Outcome {
    pub class: OutcomeClass,
    /// The payment's reason code, the gRPC code name (e.g. `UNAVAILABLE`), or what was unexpected;
    /// empty when the router gave none.
    pub detail: String,
}

impl Outcome {
    pub fn new(class: OutcomeClass, detail: &str) -> Self {
        Self { class, detail: bounded_detail(detail) }
    }
}

/// Classifies the answer to one SubmitPayment call.
pub fn classify(result: Result<wire::SubmitPaymentResponse, tonic::Status>) -> Outcome {
    let response = match result {
        Ok(response) => response,
        Err(status) => return Outcome::new(OutcomeClass::GrpcError, grpc_code_name(status.code())),
    };
    let Some(payment) = response.payment else {
        return Outcome::new(OutcomeClass::Unexpected, "no payment in the response");
    };
    let reason_code = payment.reason.as_ref().map_or("", |reason| reason.code.as_str());
    match wire::PaymentStatus::try_from(payment.status) {
        Ok(wire::PaymentStatus::Settled) => Outcome::new(OutcomeClass::Settled, ""),
        Ok(wire::PaymentStatus::Rejected) => Outcome::new(OutcomeClass::Rejected, reason_code),
        Ok(wire::PaymentStatus::Failed) => Outcome::new(OutcomeClass::Failed, reason_code),
        // Held for a compliance officer: not final, like a pending one.
        Ok(wire::PaymentStatus::Pending | wire::PaymentStatus::Held) => {
            Outcome::new(OutcomeClass::Pending, reason_code)
        }
        Ok(wire::PaymentStatus::Unspecified) => Outcome::new(OutcomeClass::Unexpected, "status UNSPECIFIED"),
        Err(_) => Outcome::new(OutcomeClass::Unexpected, &format!("status {}", payment.status)),
    }
}

/// The canonical name of a gRPC status code, as the gRPC specification spells it.
pub fn grpc_code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Cuts `detail` to [`DETAIL_LENGTH_MAX`] characters.
fn bounded_detail(detail: &str) -> String {
    match detail.char_indices().nth(DETAIL_LENGTH_MAX) {
        Some((cut, _)) => format!("{}…", &detail[..cut]),
        None => detail.to_owned(),
    }
}

/// How many requests ended in each outcome, in at most [`OUTCOME_ROWS_MAX`] rows plus one
/// [`OTHER_DETAIL`] row per class.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutcomeCounts {
    rows: BTreeMap<Outcome, u64>,
}

impl OutcomeCounts {
    pub fn record(&mut self, outcome: Outcome) {
        let key = if self.rows.len() >= OUTCOME_ROWS_MAX && !self.rows.contains_key(&outcome) {
            Outcome { class: outcome.class, detail: OTHER_DETAIL.to_owned() }
        } else {
            outcome
        };
        *self.rows.entry(key).or_default() += 1;
    }

    /// Rows in report order: by class, then by detail.
    pub fn rows(&self) -> impl Iterator<Item = (&Outcome, u64)> {
        self.rows.iter().map(|(outcome, count)| (outcome, *count))
    }

    pub fn class_total(&self, class: OutcomeClass) -> u64 {
        self.rows.iter().filter(|(outcome, _)| outcome.class == class).map(|(_, count)| *count).sum()
    }

    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }

    /// Requests whose connection was lost or never made: gRPC `UNAVAILABLE`, which the router
    /// never answers itself (it sheds load with `RESOURCE_EXHAUSTED`), so it comes from the
    /// client's transport.
    pub fn connection_failures(&self) -> u64 {
        self.rows
            .iter()
            .filter(|(outcome, _)| {
                outcome.class == OutcomeClass::GrpcError && outcome.detail == grpc_code_name(tonic::Code::Unavailable)
            })
            .map(|(_, count)| *count)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: wire::PaymentStatus, reason_code: Option<&str>) -> wire::SubmitPaymentResponse {
        wire::SubmitPaymentResponse {
            payment: Some(wire::Payment {
                status: status as i32,
                reason: reason_code
                    .map(|code| wire::Reason { code: code.to_owned(), message: "for humans".to_owned() }),
                ..wire::Payment::default()
            }),
        }
    }

    #[test]
    fn classify_maps_every_kind_of_answer() {
        fn check(result: Result<wire::SubmitPaymentResponse, tonic::Status>, class: OutcomeClass, detail: &str) {
            let outcome = classify(result);
            assert_eq!(outcome, Outcome { class, detail: detail.to_owned() });
        }
        check(Ok(payment(wire::PaymentStatus::Settled, None)), OutcomeClass::Settled, "");
        // A settled payment's stray reason is not a detail of the outcome.
        check(Ok(payment(wire::PaymentStatus::Settled, Some("IGNORED"))), OutcomeClass::Settled, "");
        check(
            Ok(payment(wire::PaymentStatus::Rejected, Some("INSUFFICIENT_FUNDS"))),
            OutcomeClass::Rejected,
            "INSUFFICIENT_FUNDS",
        );
        check(Ok(payment(wire::PaymentStatus::Rejected, None)), OutcomeClass::Rejected, "");
        check(Ok(payment(wire::PaymentStatus::Failed, Some("LEDGER_TIMEOUT"))), OutcomeClass::Failed, "LEDGER_TIMEOUT");
        check(
            Ok(payment(wire::PaymentStatus::Pending, Some("COMMIT_UNDELIVERED"))),
            OutcomeClass::Pending,
            "COMMIT_UNDELIVERED",
        );
        check(Ok(payment(wire::PaymentStatus::Unspecified, None)), OutcomeClass::Unexpected, "status UNSPECIFIED");
        check(
            Ok(wire::SubmitPaymentResponse { payment: Some(wire::Payment { status: 42, ..wire::Payment::default() }) }),
            OutcomeClass::Unexpected,
            "status 42",
        );
        check(
            Ok(wire::SubmitPaymentResponse { payment: None }),
            OutcomeClass::Unexpected,
            "no payment in the response",
        );
        check(Err(tonic::Status::invalid_argument("amount")), OutcomeClass::GrpcError, "INVALID_ARGUMENT");
        check(Err(tonic::Status::already_exists("key reused")), OutcomeClass::GrpcError, "ALREADY_EXISTS");
        check(Err(tonic::Status::resource_exhausted("busy")), OutcomeClass::GrpcError, "RESOURCE_EXHAUSTED");
        check(Err(tonic::Status::unavailable("connection refused")), OutcomeClass::GrpcError, "UNAVAILABLE");
    }

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        fn check(detail: &str, expected: &str) {
            assert_eq!(Outcome::new(OutcomeClass::Rejected, detail).detail, expected);
        }
        let exactly = "A".repeat(DETAIL_LENGTH_MAX);
        check(&exactly, &exactly);
        check(&format!("{exactly}B"), &format!("{exactly}…"));
        let wide = "é".repeat(DETAIL_LENGTH_MAX + 3);
        check(&wide, &format!("{}…", "é".repeat(DETAIL_LENGTH_MAX)));
        check("", "");
    }

    #[test]
    fn grpc_code_names_are_the_canonical_spelling() {
        for (code, name) in [
            (tonic::Code::Ok, "OK"),
            (tonic::Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
            (tonic::Code::FailedPrecondition, "FAILED_PRECONDITION"),
            (tonic::Code::Unauthenticated, "UNAUTHENTICATED"),
        ] {
            assert_eq!(grpc_code_name(code), name);
        }
    }

    #[test]
    fn counts_total_by_class_and_find_connection_failures() {
        let mut counts = OutcomeCounts::default();
        for outcome in [
            Outcome::new(OutcomeClass::Settled, ""),
            Outcome::new(OutcomeClass::Settled, ""),
            Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"),
            Outcome::new(OutcomeClass::Rejected, "OVER_LIMIT"),
            Outcome::new(OutcomeClass::GrpcError, "UNAVAILABLE"),
            Outcome::new(OutcomeClass::GrpcError, "INVALID_ARGUMENT"),
        ] {
            counts.record(outcome);
        }
        for (class, total) in [
            (OutcomeClass::Settled, 2),
            (OutcomeClass::Rejected, 2),
            (OutcomeClass::Failed, 0),
            (OutcomeClass::GrpcError, 2),
        ] {
            assert_eq!(counts.class_total(class), total, "{class:?}");
        }
        assert_eq!(counts.total(), 6);
        assert_eq!(counts.connection_failures(), 1);
        let rows: Vec<(OutcomeClass, &str, u64)> =
            counts.rows().map(|(outcome, count)| (outcome.class, outcome.detail.as_str(), count)).collect();
        assert_eq!(
            rows,
            [
                (OutcomeClass::Settled, "", 2),
                (OutcomeClass::Rejected, "NO_ROUTE", 1),
                (OutcomeClass::Rejected, "OVER_LIMIT", 1),
                (OutcomeClass::GrpcError, "INVALID_ARGUMENT", 1),
                (OutcomeClass::GrpcError, "UNAVAILABLE", 1),
            ]
        );
    }

    #[test]
    fn counts_fold_new_details_past_the_row_bound_into_other() {
        let mut counts = OutcomeCounts::default();
        for index in 0..OUTCOME_ROWS_MAX + 10 {
            counts.record(Outcome::new(OutcomeClass::Rejected, &format!("CODE_{index:03}")));
        }
        // A detail seen before the bound keeps its own row.
        counts.record(Outcome::new(OutcomeClass::Rejected, "CODE_000"));
        assert_eq!(counts.rows().count(), OUTCOME_ROWS_MAX + 1);
        assert_eq!(counts.total(), u64::try_from(OUTCOME_ROWS_MAX + 11).unwrap());
        let other = counts.rows().find(|(outcome, _)| outcome.detail == OTHER_DETAIL).map(|(_, count)| count);
        assert_eq!(other, Some(10));
        let first = counts.rows().find(|(outcome, _)| outcome.detail == "CODE_000").map(|(_, count)| count);
        assert_eq!(first, Some(2));
    }
}
