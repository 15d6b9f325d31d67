//! Trace context across the ledger protocol: a payment's OpenTelemetry trace continues on the
//! ledger node that prepares and commits it.
//!
//! The client batches the transactions of many payments into one call, and one call has one set
//! of metadata, so each item's context travels: `corridor-traceparents` lists one W3C
//! `traceparent` per item, comma-separated, in item order (empty where a caller had none), and
//! the standard `traceparent` carries the first one, for proxies and collectors that only know
//! that header. The server opens each item's span (`ledger.prepare`, `ledger.commit`,
//! `ledger.abort`) as a child of that item's context, so it lands in its own payment's trace.
//!
//! With no tracer installed the spans have no valid context and nothing is sent.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tonic::metadata::{MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The per-item list's header.
pub const TRACEPARENTS_HEADER: &str = "corridor-traceparents";
/// The W3C header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The current span's context as a W3C `traceparent`, if it belongs to a trace.
pub(super) fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!("00-{}-{}-{:02x}", span_context.trace_id(), span_context.span_id(), span_context.trace_flags().to_u8())
    })
}

/// Puts the items' contexts on an outgoing call.
pub(super) fn attach<T>(request: &mut tonic::Request<T>, traceparents: &[Option<String>]) {
    if traceparents.iter().all(Option::is_none) {
        return;
    }
    let list: Vec<&str> = traceparents.iter().map(|traceparent| traceparent.as_deref().unwrap_or("")).collect();
    if let Ok(value) = MetadataValue::try_from(list.join(",")) {
        request.metadata_mut().insert(TRACEPARENTS_HEADER, value);
    }
    if let Some(first) = traceparents.iter().flatten().next()
        && let Ok(value) = MetadataValue::try_from(first.as_str())
    {
        request.metadata_mut().insert(TRACEPARENT_HEADER, value);
    }
}

/// Each of `items` items' remote context, from an incoming call's metadata: from the per-item
/// list when it has one entry per item, else the call's `traceparent` for every item.
pub(super) fn item_contexts(metadata: &MetadataMap, items: usize) -> Vec<Option<opentelemetry::Context>> {
    let text = |name: &str| metadata.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    if let Some(list) = text(TRACEPARENTS_HEADER) {
        let parsed: Vec<Option<opentelemetry::Context>> = list.split(',').map(parse).collect();
        if parsed.len() == items {
            return parsed;
        }
    }
    let shared = text(TRACEPARENT_HEADER).and_then(|traceparent| parse(&traceparent));
    vec![shared; items]
}

/// A W3C `traceparent` (version 00) as a remote parent context; `None` if malformed.
fn parse(traceparent: &str) -> Option<opentelemetry::Context> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00" || parts.next().is_some() || trace.len() != 32 || span.len() != 16 || flags.len() != 2 {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = TraceFlags::new(u8::from_str_radix(flags, 16).ok()?);
    let span_context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    span_context.is_valid().then(|| opentelemetry::Context::new().with_remote_span_context(span_context))
}

/// A span for one item of a call, joined to the item's trace when it has one.
pub(super) fn item_span(
    name: &'static str,
    transaction: &str,
    context: Option<opentelemetry::Context>,
) -> tracing::Span {
    let span = match name {
        "ledger.prepare" => tracing::debug_span!("ledger.prepare", transaction),
        "ledger.commit" => tracing::debug_span!("ledger.commit", transaction),
        _ => tracing::debug_span!("ledger.abort", transaction),
    };
    if let Some(context) = context {
        // Fails only when no tracer is installed, and then there is no trace to join.
        let _no_tracer = span.set_parent(context);
    }
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_round_trip_per_item_and_bad_ones_are_ignored() {
        let first = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let second = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
        let mut request = tonic::Request::new(());
        attach(&mut request, &[Some(first.to_owned()), None, Some(second.to_owned())]);
        assert_eq!(request.metadata().get(TRACEPARENT_HEADER).unwrap(), first);
        let contexts = item_contexts(request.metadata(), 3);
        let trace_of = |context: &Option<opentelemetry::Context>| {
            context.as_ref().map(|context| context.span().span_context().trace_id().to_string())
        };
        assert_eq!(trace_of(&contexts[0]).as_deref(), Some("0af7651916cd43dd8448eb211c80319c"));
        assert_eq!(trace_of(&contexts[1]), None);
        assert_eq!(trace_of(&contexts[2]).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        // A list that does not match the items falls back to the call's traceparent.
        assert_eq!(
            trace_of(&item_contexts(request.metadata(), 2)[1]).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
        for bad in [
            "",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-xyz-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        let mut untraced = tonic::Request::new(());
        attach(&mut untraced, &[None, None]);
        assert!(untraced.metadata().is_empty());
    }
}
