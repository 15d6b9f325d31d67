//! What one request is, for each service the load generator can drive, and the connections it
//! goes over.
//!
//! [`Load::Payments`] draws request `index` from the mix and sends it (`QuoteFx` first for a quoted
//! kind, then `SubmitPayment` with the quote's id); [`Load::Echo`] sends the same shared payload to
//! the echo service every time. Both go through [`Load::call`], so the loops, the histograms and
//! the report cannot tell them apart: the difference between a router run and an echo run is the
//! server's work, not the client's.
//!
//! A call is bounded by the request timeout: past it the client gives up and counts `DEADLINE`. It
//! never retries.

use std::time::Duration;

use anyhow::Context;
use corridor_schemas::wire::v1 as wire;
use prost::bytes::Bytes;
use tonic::transport::{Channel, Endpoint};

use crate::echo::proto::EchoRequest;
use crate::echo::proto::echo_client::EchoClient;
use crate::mix::{Mix, describe};
use crate::outcome::{Expectation, Outcome, OutcomeClass, classify_payment, grpc_code_name};
use crate::payment_client::{PaymentClient, SubmitPaymentAnswer};

/// How long to wait for each connection before giving up.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;

/// The kind name of the echo service's only kind.
pub const ECHO_KIND: &str = "echo";

/// The client of one HTTP/2 connection, for the service a run loads. Cloning shares the connection.
#[derive(Debug, Clone)]
pub enum Connection {
    Payments(PaymentClient),
    Echo(EchoClient<Channel>),
}

/// Opens `count` HTTP/2 connections to `target`, failing if any cannot be made.
pub async fn connect(target: &str, count: usize) -> anyhow::Result<Vec<Channel>> {
    // Several targets (router replicas, comma-separated): connection `n` goes to target `n % len`.
    let targets: Vec<&str> = target.split(',').map(str::trim).collect();
    anyhow::ensure!(
        count >= targets.len(),
        "{count} connections cannot reach {} targets: give at least one connection per target",
        targets.len()
    );
    let mut endpoints = Vec::with_capacity(targets.len());
    for target in &targets {
        endpoints.push(
            Endpoint::from_shared((*target).to_owned())
                .with_context(|| format!("--target {target} is not a valid URL"))?
                .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
                .tcp_nodelay(true),
        );
    }
    let mut connections = Vec::with_capacity(count);
    for number in 0..count {
        let (target, endpoint) = (targets[number % targets.len()], &endpoints[number % targets.len()]);
        // Each `connect` makes its own connection; clones of a channel would share one.
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("cannot connect to {target} (connection {} of {count})", number + 1))?;
        connections.push(channel);
    }
    Ok(connections)
}

/// What every request of a run sends.
#[derive(Debug)]
pub enum Load {
    Payments { mix: Mix, seed: u64, key_prefix: String },
    Echo { payload: Bytes, expect: Expectation },
}

/// How one request ended.
#[derive(Debug)]
pub struct Call {
    pub kind: usize,
    pub outcome: Outcome,
    pub matched: bool,
}

impl Load {
    pub fn echo(payload_bytes: usize) -> Self {
        Load::Echo {
            payload: Bytes::from(vec![0x5a; payload_bytes]),
            expect: Expectation { class: OutcomeClass::Echoed, detail: None },
        }
    }

    /// The client for this load over `channel`.
    pub fn client(&self, channel: Channel) -> Connection {
        match self {
            Load::Payments { .. } => Connection::Payments(PaymentClient::new(channel)),
            Load::Echo { .. } => Connection::Echo(EchoClient::new(channel)),
        }
    }

    /// The kind names, in the order of the `kind` of every [`Call`].
    pub fn kind_names(&self) -> Vec<String> {
        match self {
            Load::Payments { mix, .. } => mix.kinds().iter().map(|kind| kind.name.clone()).collect(),
            Load::Echo { .. } => vec![ECHO_KIND.to_owned()],
        }
    }

    /// The kind request `index` is of, without sending it (for a request never sent).
    pub fn kind_of(&self, index: u64) -> usize {
        match self {
            Load::Payments { mix, seed, key_prefix } => mix.generate(*seed, index, key_prefix).kind,
            Load::Echo { .. } => 0,
        }
    }

    /// What request `index` sent, for the report's examples of unexpected answers.
    pub fn describe(&self, index: u64) -> String {
        match self {
            // The request is drawn again from its seed: no copy is kept for the rare answer that
            // needs one.
            Load::Payments { mix, seed, key_prefix } => describe(&mix.generate(*seed, index, key_prefix).instruction),
            Load::Echo { payload, .. } => format!("echo of {} bytes, request {index}", payload.len()),
        }
    }

    /// Sends request `index` over `connection` and waits for its end, at most `timeout`.
    pub async fn call(&self, connection: &mut Connection, index: u64, timeout: Duration) -> Call {
        match (self, connection) {
            (Load::Payments { mix, seed, key_prefix }, Connection::Payments(client)) => {
                let generated = mix.generate(*seed, index, key_prefix);
                let quoted = generated.entry.quoted;
                let outcome = match tokio::time::timeout(timeout, pay(client, generated.instruction, quoted)).await {
                    Ok(Ok(answer)) => classify_payment(Ok(answer)),
                    Ok(Err(outcome)) => outcome,
                    Err(_elapsed) => Outcome::deadline(),
                };
                let matched = generated.entry.expect.matches(&outcome);
                Call { kind: generated.kind, outcome, matched }
            }
            (Load::Echo { payload, expect }, Connection::Echo(client)) => {
                let request = EchoRequest { payload: payload.clone() };
                let outcome = match tokio::time::timeout(timeout, client.echo(request)).await {
                    Ok(Ok(reply)) if reply.get_ref().payload.len() == payload.len() => {
                        Outcome::new(OutcomeClass::Echoed, "")
                    }
                    Ok(Ok(_)) => Outcome::new(OutcomeClass::Unexpected, "the echo differs from the request"),
                    Ok(Err(status)) => Outcome::grpc_error(&status),
                    Err(_elapsed) => Outcome::deadline(),
                };
                let matched = expect.matches(&outcome);
                Call { kind: 0, outcome, matched }
            }
            // The connections are made by `client`, for this same load.
            (_, _) => Call {
                kind: 0,
                outcome: Outcome::new(OutcomeClass::Unexpected, "a client for another service"),
                matched: false,
            },
        }
    }
}

/// One payment: QuoteFx first if `quoted`, then SubmitPayment. A failed quote ends the payment
/// with an outcome of its own.
async fn pay(
    client: &mut PaymentClient,
    mut instruction: wire::PaymentInstruction,
    quoted: bool,
) -> Result<SubmitPaymentAnswer, Outcome> {
    if quoted {
        let request = wire::QuoteFxRequest {
            participant_id: instruction.participant_id.clone(),
            payer: instruction.payer.clone(),
            payee: instruction.payee.clone(),
            amount: instruction.amount.clone(),
            fixed_side: instruction.fixed_side,
        };
        match client.quote_fx(request).await {
            Ok(answer) => match answer.quote {
                Some(quote) => instruction.quote_id = quote.quote_id,
                None => return Err(Outcome::new(OutcomeClass::Unexpected, "QuoteFx answered without a quote")),
            },
            // A lost connection is one whichever call lost it.
            Err(status) if status.code() == tonic::Code::Unavailable => return Err(Outcome::grpc_error(&status)),
            Err(status) => {
                return Err(Outcome::new(
                    OutcomeClass::GrpcError,
                    format!("QuoteFx:{}", grpc_code_name(status.code())),
                ));
            }
        }
    }
    let request = wire::SubmitPaymentRequest { instruction: Some(instruction) };
    client.submit_payment(request).await.map_err(|status| Outcome::grpc_error(&status))
}
