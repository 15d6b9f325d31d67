//! Logs and traces of `corridor serve` and `corridor ledger-node`.
//!
//! **Logs** go to stderr through `tracing`: text for people (the default), or one JSON object per
//! line (`telemetry.log_format = "json"`) carrying the fields of the spans an event happened in
//! — for a payment, its `payment_id` and, with tracing on, its `trace_id`.
//!
//! **Traces** (off by default): with `telemetry.otlp_endpoint` (or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`), every payment is one OpenTelemetry trace, exported over OTLP
//! (HTTP/protobuf) to a collector: a `payment` span with one child per stage — `validate`,
//! `idempotency`, `route` (route finding and FX pricing), `compliance` with a `compliance.hook`
//! per hook, `journal.begin`, `ledger.prepare` per ledger, `journal.decide`, `ledger.commit` (or
//! `ledger.abort`) per ledger, `receipt` (the final receipt and its feed records, one durable
//! write). The trace continues on the ledger nodes: the remote-ledger client sends each
//! payment's trace context with its prepare and commit (`ledger_adapters::remote`), and a node
//! exporting to the same collector adds its own `ledger.prepare`/`ledger.commit` spans to the
//! payment's trace. `OTEL_BSP_*` variables tune the batch exporter.
//!
//! Not here: metrics ([`crate::metrics`]).

use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;

/// Where traces go, when they go anywhere.
#[derive(Debug, Clone, Default)]
pub struct TraceExport {
    /// A collector's OTLP/HTTP base URL (`http://collector:4318`); `None` with
    /// `from_environment` reads `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: Option<String>,
    pub from_environment: bool,
    pub service_name: String,
}

impl TraceExport {
    fn enabled(&self) -> bool {
        self.endpoint.is_some()
            || (self.from_environment && std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some_and(|v| !v.is_empty()))
    }
}

/// Flushes the traces not exported yet when dropped (at exit).
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    pub fn tracing_on(&self) -> bool {
        self.provider.is_some()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: traces not all exported at exit: {error}");
        }
    }
}

/// Installs the process's logger (and tracer, if `export` is enabled). `RUST_LOG` filters
/// (default `info`).
pub fn init(format: LogFormat, export: &TraceExport) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs: Box<dyn Layer<_> + Send + Sync> = match format {
        LogFormat::Text => Box::new(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        ),
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(false)
                .with_span_list(true)
                .with_writer(std::io::stderr),
        ),
    };
    let provider = if export.enabled() {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_http();
        if let Some(endpoint) = &export.endpoint {
            exporter = exporter.with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')));
        }
        let exporter = exporter.build().map_err(|error| anyhow::anyhow!("telemetry.otlp_endpoint: {error}"))?;
        Some(
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(export.service_name.clone()).build())
                .build(),
        )
    } else {
        None
    };
    // Each layer filters for itself: the stage spans are DEBUG, so with traces off (or only
    // INFO logs) they are never even created; with traces on, Corridor's own spans (not the
    // HTTP/2 stack's) become trace spans whatever RUST_LOG says.
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer().with_tracer(provider.tracer("corridor")).with_filter(
            tracing_subscriber::filter::filter_fn(|metadata| {
                metadata.target().starts_with("corridor") && *metadata.level() <= tracing::Level::DEBUG
            }),
        )
    });
    tracing_subscriber::registry()
        .with(traces)
        .with(logs.with_filter(filter))
        .try_init()
        .map_err(|error| anyhow::anyhow!("cannot install the logger: {error}"))?;
    Ok(TelemetryGuard { provider })
}

/// The OpenTelemetry trace id of `span` (32 hex digits), when tracing is on.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}
