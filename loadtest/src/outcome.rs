//! How one request ended, as the load generator saw it; what a kind of payment expects; and the
//! tally of endings.
//!
//! [`classify_payment`] turns the router's answer (the status and reason code of the payment, or a
//! `tonic::Status`) into an [`Outcome`]: settled, rejected, failed or held with the payment's
//! reason code, pending, a gRPC error by its canonical code name, or an answer the API contract does
//! not allow. The client adds its own endings: `DEADLINE` (no answer within the request timeout)
//! and not sent (the open loop's in-flight bound was reached). An [`Expectation`] is what a kind of
//! the mix says its payments must end as, e.g. `SETTLED` or `REJECTED:INSUFFICIENT_FUNDS`.
//! [`OutcomeCounts`] counts outcomes with a bounded number of rows.
//!
//! A rejection is a normal answer under load, not an error of the run; only the mix's
//! expectations say whether it was the right one. This module reads nothing but the status and
//! reason code: the receipt's legs, fees and timings are the router's business (the client does
//! not even decode them, see `payment_client`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use corridor_schemas::wire::v1 as wire;

use crate::payment_client::SubmitPaymentAnswer;

/// Reason codes longer than this are cut, so a misbehaving server cannot blow up the report.
pub const DETAIL_LENGTH_MAX: usize = 64;

/// Distinct (class, detail) rows kept; further new details are counted as [`OTHER_DETAIL`] of their class.
pub const OUTCOME_ROWS_MAX: usize = 32;

/// The detail under which outcomes past [`OUTCOME_ROWS_MAX`] distinct rows are counted.
pub const OTHER_DETAIL: &str = "(other)";

/// The detail of a request the client gave up on after its request timeout.
pub const DEADLINE: &str = "DEADLINE";

/// The broad kind of ending; the order here is the order of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutcomeClass {
    /// Every leg committed.
    Settled,
    /// Refused before any money moved (no route, compliance, insufficient funds, ...).
    Rejected,
    /// Aborted during settlement; every prepared leg was released.
    Failed,
    /// Held for a compliance officer's review.
    Held,
    /// Answered while not yet final, e.g. a commit the coordinator could not deliver yet.
    Pending,
    /// The echo service answered.
    Echoed,
    /// The call failed with a gRPC status: refused at the API, shed, timed out, or the connection
    /// was lost.
    GrpcError,
    /// The open loop did not send it: the in-flight bound was reached (the client is overloaded).
    NotSent,
    /// An answer the API contract does not allow (no payment, an unknown status).
    Unexpected,
}

impl OutcomeClass {
    pub const ALL: [OutcomeClass; 9] = [
        OutcomeClass::Settled,
        OutcomeClass::Rejected,
        OutcomeClass::Failed,
        OutcomeClass::Held,
        OutcomeClass::Pending,
        OutcomeClass::Echoed,
        OutcomeClass::GrpcError,
        OutcomeClass::NotSent,
        OutcomeClass::Unexpected,
    ];

    /// The name in expectations, reports and JSON.
    pub fn token(self) -> &'static str {
        match self {
            OutcomeClass::Settled => "SETTLED",
            OutcomeClass::Rejected => "REJECTED",
            OutcomeClass::Failed => "FAILED",
            OutcomeClass::Held => "HELD",
            OutcomeClass::Pending => "PENDING",
            OutcomeClass::Echoed => "OK",
            OutcomeClass::GrpcError => "GRPC",
            OutcomeClass::NotSent => "NOT_SENT",
            OutcomeClass::Unexpected => "UNEXPECTED",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            OutcomeClass::Settled => "settled",
            OutcomeClass::Rejected => "rejected",
            OutcomeClass::Failed => "failed",
            OutcomeClass::Held => "held for review",
            OutcomeClass::Pending => "pending",
            OutcomeClass::Echoed => "echoed",
            OutcomeClass::GrpcError => "gRPC error",
            OutcomeClass::NotSent => "not sent (client overloaded)",
            OutcomeClass::Unexpected => "unexpected answer",
        }
    }

    /// The classes of a request that got no payment (or echo) at all.
    pub fn is_error(self) -> bool {
        matches!(self, OutcomeClass::GrpcError | OutcomeClass::NotSent | OutcomeClass::Unexpected)
    }

    fn from_token(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|class| class.token() == token)
    }
}

/// One request's ending: its class and, except for a settlement, what the router said.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Outcome {
    pub class: OutcomeClass,
    /// The payment's reason code, the gRPC code name (e.g. `UNAVAILABLE`), `DEADLINE`, or what was
    /// unexpected; empty when there is none.
    pub detail: Cow<'static, str>,
}

impl Outcome {
    pub fn new(class: OutcomeClass, detail: impl Into<Cow<'static, str>>) -> Self {
        Self { class, detail: bounded_detail(detail.into()) }
    }

    pub fn grpc_error(status: &tonic::Status) -> Self {
        Self::new(OutcomeClass::GrpcError, grpc_code_name(status.code()))
    }

    /// No answer within the request timeout.
    pub fn deadline() -> Self {
        Self::new(OutcomeClass::GrpcError, DEADLINE)
    }

    pub fn not_sent() -> Self {
        Self::new(OutcomeClass::NotSent, "")
    }

    /// The connection was lost or never made (gRPC `UNAVAILABLE`): the router never answers that
    /// itself (it sheds load with `RESOURCE_EXHAUSTED`), so it comes from the client's transport.
    pub fn is_connection_lost(&self) -> bool {
        self.class == OutcomeClass::GrpcError && self.detail == grpc_code_name(tonic::Code::Unavailable)
    }

    pub fn is_timed_out(&self) -> bool {
        self.class == OutcomeClass::GrpcError && self.detail == DEADLINE
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            formatter.write_str(self.class.token())
        } else {
            write!(formatter, "{}:{}", self.class.token(), self.detail)
        }
    }
}

/// How a kind of request must end: a class, and optionally its exact detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    pub class: OutcomeClass,
    /// None: any detail of the class.
    pub detail: Option<String>,
}

impl Expectation {
    /// Parses `SETTLED`, `REJECTED:INSUFFICIENT_FUNDS`, `HELD`, `GRPC:INVALID_ARGUMENT`, `OK`, ...
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let (token, detail) = match text.split_once(':') {
            Some((token, detail)) => (token, Some(detail.to_owned())),
            None => (text, None),
        };
        let Some(class) = OutcomeClass::from_token(token) else {
            let tokens: Vec<&str> = OutcomeClass::ALL.iter().map(|class| class.token()).collect();
            anyhow::bail!("expect {text:?}: {token:?} is not one of {}", tokens.join(", "));
        };
        anyhow::ensure!(detail.as_deref() != Some(""), "expect {text:?}: nothing after the colon");
        Ok(Self { class, detail })
    }

    pub fn matches(&self, outcome: &Outcome) -> bool {
        self.class == outcome.class && self.detail.as_deref().is_none_or(|detail| detail == outcome.detail)
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(formatter, "{}:{detail}", self.class.token()),
            None => formatter.write_str(self.class.token()),
        }
    }
}

/// Classifies the answer to one SubmitPayment call.
pub fn classify_payment(result: Result<SubmitPaymentAnswer, tonic::Status>) -> Outcome {
    let answer = match result {
        Ok(answer) => answer,
        Err(status) => return Outcome::grpc_error(&status),
    };
    let Some(payment) = answer.payment else {
        return Outcome::new(OutcomeClass::Unexpected, "no payment in the response");
    };
    let reason_code = payment.reason.map(|reason| reason.code).unwrap_or_default();
    match wire::PaymentStatus::try_from(payment.status) {
        Ok(wire::PaymentStatus::Settled) => Outcome::new(OutcomeClass::Settled, ""),
        Ok(wire::PaymentStatus::Rejected) => Outcome::new(OutcomeClass::Rejected, reason_code),
        Ok(wire::PaymentStatus::Failed) => Outcome::new(OutcomeClass::Failed, reason_code),
        Ok(wire::PaymentStatus::Held) => Outcome::new(OutcomeClass::Held, reason_code),
        Ok(wire::PaymentStatus::Pending) => Outcome::new(OutcomeClass::Pending, reason_code),
        Ok(wire::PaymentStatus::Unspecified) => Outcome::new(OutcomeClass::Unexpected, "status UNSPECIFIED"),
        Err(_) => Outcome::new(OutcomeClass::Unexpected, format!("status {}", payment.status)),
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

/// Cuts `detail` to [`DETAIL_LENGTH_MAX`] characters; a short one is kept as it came.
fn bounded_detail(detail: Cow<'static, str>) -> Cow<'static, str> {
    match detail.char_indices().nth(DETAIL_LENGTH_MAX) {
        Some((cut, _)) => Cow::Owned(format!("{}…", &detail[..cut])),
        None => detail,
    }
}

/// How many requests ended in each outcome, in at most [`OUTCOME_ROWS_MAX`] rows plus one
/// [`OTHER_DETAIL`] row per class.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OutcomeCounts {
    rows: BTreeMap<Outcome, u64>,
}

impl OutcomeCounts {
    pub fn record(&mut self, outcome: &Outcome) {
        self.add(outcome, 1);
    }

    fn add(&mut self, outcome: &Outcome, count: u64) {
        if let Some(existing) = self.rows.get_mut(outcome) {
            *existing += count;
            return;
        }
        let key = if self.rows.len() >= OUTCOME_ROWS_MAX {
            Outcome { class: outcome.class, detail: Cow::Borrowed(OTHER_DETAIL) }
        } else {
            outcome.clone()
        };
        *self.rows.entry(key).or_default() += count;
    }

    /// Adds another tally's rows to this one's.
    pub fn merge(&mut self, other: &OutcomeCounts) {
        for (outcome, count) in &other.rows {
            self.add(outcome, *count);
        }
    }

    /// Rows in report order: by class, then by detail.
    pub fn rows(&self) -> impl Iterator<Item = (&Outcome, u64)> {
        self.rows.iter().map(|(outcome, count)| (outcome, *count))
    }

    pub fn total(&self) -> u64 {
        self.rows.values().sum()
    }

    fn count_where(&self, predicate: impl Fn(&Outcome) -> bool) -> u64 {
        self.rows.iter().filter(|(outcome, _)| predicate(outcome)).map(|(_, count)| *count).sum()
    }

    pub fn class_total(&self, class: OutcomeClass) -> u64 {
        self.count_where(|outcome| outcome.class == class)
    }

    pub fn connection_lost(&self) -> u64 {
        self.count_where(Outcome::is_connection_lost)
    }

    pub fn timed_out(&self) -> u64 {
        self.count_where(Outcome::is_timed_out)
    }

    /// Requests that got an answer from the server: all but lost connections, timeouts and
    /// requests never sent.
    pub fn answers(&self) -> u64 {
        self.count_where(|outcome| {
            !outcome.is_connection_lost() && !outcome.is_timed_out() && outcome.class != OutcomeClass::NotSent
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payment_client::{PaymentAnswer, ReasonAnswer};

    fn payment(status: wire::PaymentStatus, reason_code: Option<&str>) -> SubmitPaymentAnswer {
        SubmitPaymentAnswer {
            payment: Some(PaymentAnswer {
                status: status as i32,
                reason: reason_code.map(|code| ReasonAnswer { code: code.to_owned() }),
            }),
        }
    }

    #[test]
    fn classify_maps_every_kind_of_answer() {
        fn check(result: Result<SubmitPaymentAnswer, tonic::Status>, expected: &str) {
            assert_eq!(classify_payment(result).to_string(), expected);
        }
        check(Ok(payment(wire::PaymentStatus::Settled, None)), "SETTLED");
        // A settled payment's stray reason is not a detail of the outcome.
        check(Ok(payment(wire::PaymentStatus::Settled, Some("IGNORED"))), "SETTLED");
        check(Ok(payment(wire::PaymentStatus::Rejected, Some("INSUFFICIENT_FUNDS"))), "REJECTED:INSUFFICIENT_FUNDS");
        check(Ok(payment(wire::PaymentStatus::Rejected, None)), "REJECTED");
        check(Ok(payment(wire::PaymentStatus::Failed, Some("LEDGER_TIMEOUT"))), "FAILED:LEDGER_TIMEOUT");
        check(Ok(payment(wire::PaymentStatus::Held, Some("HELD_FOR_REVIEW"))), "HELD:HELD_FOR_REVIEW");
        check(Ok(payment(wire::PaymentStatus::Pending, Some("COMMIT_UNDELIVERED"))), "PENDING:COMMIT_UNDELIVERED");
        check(Ok(payment(wire::PaymentStatus::Unspecified, None)), "UNEXPECTED:status UNSPECIFIED");
        check(
            Ok(SubmitPaymentAnswer { payment: Some(PaymentAnswer { status: 42, reason: None }) }),
            "UNEXPECTED:status 42",
        );
        check(Ok(SubmitPaymentAnswer { payment: None }), "UNEXPECTED:no payment in the response");
        check(Err(tonic::Status::invalid_argument("amount")), "GRPC:INVALID_ARGUMENT");
        check(Err(tonic::Status::resource_exhausted("busy")), "GRPC:RESOURCE_EXHAUSTED");
        check(Err(tonic::Status::unavailable("connection refused")), "GRPC:UNAVAILABLE");
    }

    #[test]
    fn expectations_parse_and_match() {
        fn check(expect: &str, outcome: Outcome, matches: bool) {
            let expectation = Expectation::parse(expect).unwrap();
            assert_eq!(expectation.to_string(), expect);
            assert_eq!(expectation.matches(&outcome), matches, "{expect} vs {outcome}");
        }
        check("SETTLED", Outcome::new(OutcomeClass::Settled, ""), true);
        check("SETTLED", Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"), false);
        check("REJECTED", Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"), true);
        check("REJECTED:SANCTIONS_HIT", Outcome::new(OutcomeClass::Rejected, "SANCTIONS_HIT"), true);
        check("REJECTED:SANCTIONS_HIT", Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"), false);
        check("REJECTED:SANCTIONS_HIT", Outcome::new(OutcomeClass::Failed, "SANCTIONS_HIT"), false);
        check("HELD", Outcome::new(OutcomeClass::Held, "HELD_FOR_REVIEW"), true);
        check("GRPC:INVALID_ARGUMENT", Outcome::grpc_error(&tonic::Status::invalid_argument("x")), true);
        check("OK", Outcome::new(OutcomeClass::Echoed, ""), true);
        check("OK", Outcome::deadline(), false);
    }

    #[test]
    fn malformed_expectations_are_refused() {
        fn check(expect: &str, message: &str) {
            let error = Expectation::parse(expect).unwrap_err().to_string();
            assert!(error.contains(message), "{expect:?}: {error:?} does not say {message:?}");
        }
        check("settled", "\"settled\" is not one of SETTLED, REJECTED");
        check("REFUSED:X", "\"REFUSED\" is not one of");
        check("REJECTED:", "nothing after the colon");
    }

    #[test]
    fn long_details_are_cut_on_a_character_boundary() {
        fn check(detail: &str, expected: &str) {
            assert_eq!(Outcome::new(OutcomeClass::Rejected, detail.to_owned()).detail, expected);
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
    fn counts_total_by_class_and_find_lost_requests() {
        let mut counts = OutcomeCounts::default();
        for outcome in [
            Outcome::new(OutcomeClass::Settled, ""),
            Outcome::new(OutcomeClass::Settled, ""),
            Outcome::new(OutcomeClass::Rejected, "NO_ROUTE"),
            Outcome::new(OutcomeClass::Rejected, "OVER_LIMIT"),
            Outcome::grpc_error(&tonic::Status::unavailable("gone")),
            Outcome::grpc_error(&tonic::Status::invalid_argument("amount")),
            Outcome::deadline(),
            Outcome::not_sent(),
        ] {
            counts.record(&outcome);
        }
        assert_eq!(counts.class_total(OutcomeClass::Settled), 2);
        assert_eq!(counts.class_total(OutcomeClass::Rejected), 2);
        assert_eq!(counts.class_total(OutcomeClass::GrpcError), 3);
        assert_eq!(counts.total(), 8);
        assert_eq!((counts.connection_lost(), counts.timed_out()), (1, 1));
        // The INVALID_ARGUMENT is the server's answer; the lost, timed-out and unsent are not.
        assert_eq!(counts.answers(), 5);
        let rows: Vec<String> = counts.rows().map(|(outcome, count)| format!("{outcome}={count}")).collect();
        assert_eq!(
            rows,
            [
                "SETTLED=2",
                "REJECTED:NO_ROUTE=1",
                "REJECTED:OVER_LIMIT=1",
                "GRPC:DEADLINE=1",
                "GRPC:INVALID_ARGUMENT=1",
                "GRPC:UNAVAILABLE=1",
                "NOT_SENT=1"
            ]
        );
        let mut merged = counts.clone();
        merged.merge(&counts);
        assert_eq!(merged.total(), 16);
        assert_eq!(merged.connection_lost(), 2);
    }

    #[test]
    fn counts_fold_new_details_past_the_row_bound_into_other() {
        let mut counts = OutcomeCounts::default();
        for index in 0..OUTCOME_ROWS_MAX + 10 {
            counts.record(&Outcome::new(OutcomeClass::Rejected, format!("CODE_{index:03}")));
        }
        // A detail seen before the bound keeps its own row.
        counts.record(&Outcome::new(OutcomeClass::Rejected, "CODE_000"));
        assert_eq!(counts.rows().count(), OUTCOME_ROWS_MAX + 1);
        assert_eq!(counts.total(), u64::try_from(OUTCOME_ROWS_MAX + 11).unwrap());
        let other = counts.rows().find(|(outcome, _)| outcome.detail == OTHER_DETAIL).map(|(_, count)| count);
        assert_eq!(other, Some(10));
        let first = counts.rows().find(|(outcome, _)| outcome.detail == "CODE_000").map(|(_, count)| count);
        assert_eq!(first, Some(2));
    }
}
