//! Prometheus metrics of one server instance.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Kind of GraphQL operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum OperationKind {
    /// A query.
    Query,
    /// A mutation.
    Mutation,
    /// A subscription.
    Subscription,
    /// Unknown (the document did not parse).
    Unknown,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// No errors.
    Ok,
    /// Executed, with errors.
    Error,
    /// Refused before execution (parse, validation, limits, method).
    Rejected,
    /// Over the rate limit.
    RateLimited,
    /// Bad or missing credentials.
    Unauthenticated,
    /// Took longer than the execution timeout.
    Timeout,
}

impl EncodeLabelValue for OperationKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            OperationKind::Query => "query",
            OperationKind::Mutation => "mutation",
            OperationKind::Subscription => "subscription",
            OperationKind::Unknown => "unknown",
        })
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Rejected => "rejected",
            Outcome::RateLimited => "rate_limited",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Timeout => "timeout",
        })
    }
}

/// Labels of the operation counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    /// Kind of operation.
    pub operation_type: OperationKind,
    /// How it ended.
    pub outcome: Outcome,
}

/// Labels of the latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// Kind of operation.
    pub operation_type: OperationKind,
}

/// The metrics of one instance.
pub struct Metrics {
    registry: Registry,
    /// GraphQL operations by type and outcome.
    pub operations: Family<OperationLabels, Counter>,
    /// GraphQL operation latency by type.
    pub latency: Family<KindLabels, Histogram>,
    /// Connections in the database pool.
    pub pool_size: Gauge,
    /// Idle connections in the database pool.
    pub pool_idle: Gauge,
    /// SQL statements executed.
    pub db_statements: Counter,
    /// SQL statements that failed.
    pub db_statement_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let operations = Family::<OperationLabels, Counter>::default();
        let latency = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
        });
        let pool_size = Gauge::default();
        let pool_idle = Gauge::default();
        registry.register(
            "graphql_operations",
            "GraphQL operations by type and outcome",
            operations.clone(),
        );
        registry.register(
            "graphql_operation_duration_seconds",
            "GraphQL operation latency",
            latency.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Connections in the database pool",
            pool_size.clone(),
        );
        registry.register(
            "db_pool_idle_connections",
            "Idle connections in the database pool",
            pool_idle.clone(),
        );
        let db_statements = Counter::default();
        let db_statement_errors = Counter::default();
        registry.register(
            "db_statements",
            "SQL statements executed",
            db_statements.clone(),
        );
        registry.register(
            "db_statement_errors",
            "SQL statements that failed",
            db_statement_errors.clone(),
        );
        Self {
            registry,
            operations,
            latency,
            pool_size,
            pool_idle,
            db_statements,
            db_statement_errors,
        }
    }
}

impl Metrics {
    /// Records one operation.
    pub fn record(&self, kind: OperationKind, outcome: Outcome, seconds: f64) {
        self.operations
            .get_or_create(&OperationLabels {
                operation_type: kind.clone(),
                outcome,
            })
            .inc();
        self.latency
            .get_or_create(&KindLabels {
                operation_type: kind,
            })
            .observe(seconds);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("could not encode metrics");
        }
        out
    }
}
