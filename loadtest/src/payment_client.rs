//! A lean client for `PaymentService/SubmitPayment` and `FxService/QuoteFx`: it sends the wire
//! types of `corridor-schemas` as they are, and decodes only the few fields of the answers the
//! load generator reads.
//!
//! The router answers every payment with its whole receipt (legs, postings, fees, hops,
//! compliance decisions, timings). Decoding all of that into owned strings for every answer is
//! client work that measures nothing and competes with the router for the same cores, so the
//! answers are decoded into views that keep the status and reason code of the payment, or the id of
//! a quote, and skip every other field on the wire without allocating. The views mirror the field
//! numbers of `schemas/proto/corridor/v1/payments.proto` and `fx.proto`; a test decodes full
//! wire messages through them, so a renumbered field cannot go unnoticed.
//!
//! It does not sign instructions (the router under test runs `--insecure-dev`) and speaks no TLS.

use corridor_schemas::wire::v1 as wire;
use tonic::client::Grpc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstCodec;

const SUBMIT_PAYMENT_PATH: &str = "/corridor.v1.PaymentService/SubmitPayment";
const QUOTE_FX_PATH: &str = "/corridor.v1.FxService/QuoteFx";

/// `SubmitPaymentResponse`, reduced to what the outcome needs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubmitPaymentAnswer {
    /// `SubmitPaymentResponse.payment`.
    #[prost(message, optional, tag = "1")]
    pub payment: Option<PaymentAnswer>,
}

/// `Payment`, reduced to its status and reason.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PaymentAnswer {
    /// `Payment.status`, a `PaymentStatus`.
    #[prost(int32, tag = "6")]
    pub status: i32,
    /// `Payment.reason`.
    #[prost(message, optional, tag = "7")]
    pub reason: Option<ReasonAnswer>,
}

/// `Reason`, without its message for humans.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ReasonAnswer {
    /// `Reason.code`.
    #[prost(string, tag = "1")]
    pub code: String,
}

/// `QuoteFxResponse`, reduced to the quote's id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct QuoteFxAnswer {
    /// `QuoteFxResponse.quote`.
    #[prost(message, optional, tag = "1")]
    pub quote: Option<QuoteAnswer>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct QuoteAnswer {
    /// `Quote.quote_id`.
    #[prost(string, tag = "1")]
    pub quote_id: String,
}

/// The payment and FX calls over one HTTP/2 connection. Cloning shares the connection.
#[derive(Debug, Clone)]
pub struct PaymentClient {
    grpc: Grpc<Channel>,
}

impl PaymentClient {
    pub fn new(channel: Channel) -> Self {
        Self { grpc: Grpc::new(channel) }
    }

    pub async fn submit_payment(
        &mut self,
        request: wire::SubmitPaymentRequest,
    ) -> Result<SubmitPaymentAnswer, tonic::Status> {
        self.unary::<_, SubmitPaymentAnswer>(request, SUBMIT_PAYMENT_PATH).await
    }

    pub async fn quote_fx(&mut self, request: wire::QuoteFxRequest) -> Result<QuoteFxAnswer, tonic::Status> {
        self.unary::<_, QuoteFxAnswer>(request, QUOTE_FX_PATH).await
    }

    async fn unary<Request, Answer>(&mut self, request: Request, path: &'static str) -> Result<Answer, tonic::Status>
    where
        Request: prost::Message + Send + Sync + 'static,
        Answer: prost::Message + Default + Send + Sync + 'static,
    {
        self.grpc
            .ready()
            .await
            .map_err(|error| tonic::Status::unavailable(format!("connection not ready: {error}")))?;
        let codec = ProstCodec::<Request, Answer>::default();
        let response = self.grpc.unary(tonic::Request::new(request), PathAndQuery::from_static(path), codec).await?;
        Ok(response.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    fn money(amount: &str, currency: &str) -> Option<wire::Money> {
        Some(wire::Money { currency: currency.to_owned(), amount: amount.to_owned() })
    }

    #[test]
    fn a_full_receipt_decodes_to_its_status_and_reason() {
        let response = wire::SubmitPaymentResponse {
            payment: Some(wire::Payment {
                payment_id: "01a208e1-2b4e-7000-8000-000000000000".to_owned(),
                participant_id: "bank-th".to_owned(),
                idempotency_key: "lt-1-7".to_owned(),
                payer: "e-thb/bank-th.low-balance".to_owned(),
                payee: "e-hkd/bank-hk.w01".to_owned(),
                status: wire::PaymentStatus::Rejected as i32,
                reason: Some(wire::Reason {
                    code: "INSUFFICIENT_FUNDS".to_owned(),
                    message: "the payer's available balance is below the debit".to_owned(),
                }),
                send_amount: money("5000.00", "THB"),
                receive_amount: money("1160.12", "HKD"),
                route: vec!["e-thb".to_owned(), "e-hkd".to_owned()],
                legs: vec![wire::Leg {
                    ledger_id: "e-thb".to_owned(),
                    postings: vec![wire::Posting {
                        account: "e-thb/bank-th.low-balance".to_owned(),
                        currency: "THB".to_owned(),
                        amount: "-5000.00".to_owned(),
                    }],
                    state: wire::LegState::Refused as i32,
                    refusal: Some(wire::Reason { code: "INSUFFICIENT_FUNDS".to_owned(), message: String::new() }),
                }],
                compliance: vec![wire::ComplianceDecision {
                    jurisdiction: "TH".to_owned(),
                    hook: "sanctions_screening".to_owned(),
                    outcome: wire::ComplianceOutcome::Allow as i32,
                    reason: None,
                }],
                timings: Some(wire::Timings { total_us: 1_234, ..wire::Timings::default() }),
                fixed_side: wire::FixedSide::Send as i32,
                quote_id: "q-1".to_owned(),
                total_debit: money("5007.50", "THB"),
                originator: Some(wire::Party { name: "Somchai Rattanakorn".to_owned(), ..wire::Party::default() }),
                beneficiary: Some(wire::Party { name: "Chan Tai Man".to_owned(), ..wire::Party::default() }),
                ..wire::Payment::default()
            }),
        };
        let answer = SubmitPaymentAnswer::decode(response.encode_to_vec().as_slice()).unwrap();
        assert_eq!(
            answer,
            SubmitPaymentAnswer {
                payment: Some(PaymentAnswer {
                    status: wire::PaymentStatus::Rejected as i32,
                    reason: Some(ReasonAnswer { code: "INSUFFICIENT_FUNDS".to_owned() }),
                })
            }
        );
        let settled = wire::SubmitPaymentResponse {
            payment: Some(wire::Payment { status: wire::PaymentStatus::Settled as i32, ..wire::Payment::default() }),
        };
        let answer = SubmitPaymentAnswer::decode(settled.encode_to_vec().as_slice()).unwrap();
        assert_eq!(answer.payment, Some(PaymentAnswer { status: wire::PaymentStatus::Settled as i32, reason: None }));
    }

    #[test]
    fn a_full_quote_decodes_to_its_id() {
        let response = wire::QuoteFxResponse {
            quote: Some(wire::Quote {
                quote_id: "0199a0c4-quote".to_owned(),
                participant_id: "bank-hk".to_owned(),
                payer: "e-hkd/bank-hk.w01".to_owned(),
                payee: "e-cny/bank-cn.w01".to_owned(),
                amount: money("100.00", "HKD"),
                send_amount: money("100.00", "HKD"),
                receive_amount: money("84.73", "CNY"),
                route: vec!["e-hkd".to_owned(), "e-cny".to_owned()],
                all_in_rate: "0.8389108911".to_owned(),
                ..wire::Quote::default()
            }),
        };
        let answer = QuoteFxAnswer::decode(response.encode_to_vec().as_slice()).unwrap();
        assert_eq!(answer, QuoteFxAnswer { quote: Some(QuoteAnswer { quote_id: "0199a0c4-quote".to_owned() }) });
    }
}
