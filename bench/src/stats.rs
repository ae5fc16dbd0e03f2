//! Summaries of load runs, as a table or JSON.

use serde::Serialize;

use crate::load::Outcome;
use crate::scenario::Criterion;

/// The numbers of one side of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `graphql`, `plain` or `raw-db`.
    pub target: &'static str,
    /// Requests completed in the measured window.
    pub requests: usize,
    /// Requests per second over the measured window.
    pub rps: f64,
    /// Median latency in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile latency in milliseconds.
    pub p90_ms: f64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Mean latency in milliseconds.
    pub mean_ms: f64,
    /// Highest latency in milliseconds.
    pub max_ms: f64,
    /// SQL statements one request runs.
    pub statements_per_request: u64,
    /// Failed requests (must be 0 for a valid run).
    pub errors: u64,
    /// The first failure, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

impl Summary {
    /// Summarises one load run.
    pub fn new(target: &'static str, mut outcome: Outcome, statements_per_request: u64) -> Self {
        let latencies = &mut outcome.latencies_ns;
        latencies.sort_unstable();
        let requests = latencies.len();
        let total: u128 = latencies.iter().map(|&n| u128::from(n)).sum();
        let mean = if requests == 0 {
            0.0
        } else {
            total as f64 / requests as f64
        };
        let seconds = outcome.measured.as_secs_f64();
        Self {
            target,
            requests,
            rps: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p50_ms: ms(percentile(latencies, 0.50)),
            p90_ms: ms(percentile(latencies, 0.90)),
            p99_ms: ms(percentile(latencies, 0.99)),
            mean_ms: mean / 1e6,
            max_ms: ms(latencies.last().copied().unwrap_or(0)),
            statements_per_request,
            errors: outcome.errors,
            first_error: outcome.first_error,
        }
    }
}

/// The result of one scenario at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// Scenario name and concurrency, e.g. `inbox@32`.
    pub scenario: String,
    /// Concurrent clients (connections).
    pub concurrency: usize,
    /// Whether the GraphQL and plain answers were byte-identical (they must be equal as JSON);
    /// `None` for writes, whose answers carry new ids.
    pub identical_bytes: Option<bool>,
    /// The GraphQL side.
    pub graphql: Summary,
    /// The plain side.
    pub plain: Summary,
    /// Writes only: the reference's transaction on the pool without HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_db: Option<Summary>,
    /// The median of the rounds' `graphql rps / plain rps`.
    pub ratio: f64,
    /// Each round's ratio, in order.
    pub round_ratios: Vec<f64>,
    /// `graphql p50 / plain p50` over all rounds.
    pub p50_ratio: f64,
    /// `graphql p99 / plain p99` over all rounds.
    pub p99_ratio: f64,
    /// `graphql rps / raw_db rps`, for writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_db_ratio: Option<f64>,
    /// The target.
    pub criterion: Criterion,
    /// Whether the target is met.
    pub meets_target: bool,
    /// Whether both sides ran without errors (and, for writes, stored one message per answer).
    pub valid: bool,
    /// Writes only: what the check of stored rows found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored_check: Option<String>,
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn divide(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

impl ScenarioResult {
    /// Combines the sides.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        scenario: String,
        concurrency: usize,
        identical_bytes: Option<bool>,
        graphql: Summary,
        plain: Summary,
        raw_db: Option<Summary>,
        round_ratios: Vec<f64>,
        criterion: Criterion,
        stored_check: Option<(bool, String)>,
    ) -> Self {
        let ratio = median(&round_ratios);
        let p50_ratio = divide(graphql.p50_ms, plain.p50_ms);
        let p99_ratio = divide(graphql.p99_ms, plain.p99_ms);
        let meets_target = match criterion {
            Criterion::Throughput(at_least) => ratio >= at_least,
            Criterion::Latency(at_most) => p50_ratio > 0.0 && p50_ratio <= at_most,
        };
        let stored_ok = stored_check.as_ref().is_none_or(|(ok, _)| *ok);
        Self {
            scenario,
            concurrency,
            identical_bytes,
            valid: graphql.errors == 0
                && plain.errors == 0
                && raw_db.as_ref().is_none_or(|r| r.errors == 0)
                && stored_ok,
            raw_db_ratio: raw_db.as_ref().map(|r| divide(graphql.rps, r.rps)),
            raw_db,
            graphql,
            plain,
            ratio,
            round_ratios,
            p50_ratio,
            p99_ratio,
            criterion,
            meets_target,
            stored_check: stored_check.map(|(_, text)| text),
        }
    }
}

/// The results as a text table with ratio lines per scenario.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "{:<12} {:<8} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>7}\n",
        "scenario",
        "target",
        "requests",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "max ms",
        "sql",
        "errors"
    );
    for result in results {
        for side in [
            Some(&result.graphql),
            Some(&result.plain),
            result.raw_db.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            out.push_str(&format!(
                "{:<12} {:<8} {:>9} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>5} {:>7}\n",
                result.scenario,
                side.target,
                side.requests,
                side.rps,
                side.p50_ms,
                side.p90_ms,
                side.p99_ms,
                side.mean_ms,
                side.max_ms,
                side.statements_per_request,
                side.errors
            ));
        }
    }
    out.push('\n');
    for result in results {
        let target = match result.criterion {
            Criterion::Throughput(at_least) => format!("target rps ratio >= {at_least:.2}"),
            Criterion::Latency(at_most) => format!("target p50 ratio <= {at_most:.2}"),
        };
        out.push_str(&format!(
            "{}: graphql/plain rps = {:.3} (median of rounds [{}]), p50 = {:.3}, p99 = {:.3}{}; \
             {target}: {}{}\n",
            result.scenario,
            result.ratio,
            result
                .round_ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(", "),
            result.p50_ratio,
            result.p99_ratio,
            result
                .raw_db_ratio
                .map(|r| format!("; graphql/raw-db rps = {r:.3}"))
                .unwrap_or_default(),
            if result.meets_target {
                "met"
            } else {
                "NOT met"
            },
            if result.valid {
                ""
            } else {
                "; INVALID RUN: errors"
            }
        ));
        if let Some(check) = &result.stored_check {
            out.push_str(&format!("  {check}\n"));
        }
        for side in [
            Some(&result.graphql),
            Some(&result.plain),
            result.raw_db.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(error) = &side.first_error {
                out.push_str(&format!("  first {} error: {error}\n", side.target));
            }
        }
    }
    out
}
