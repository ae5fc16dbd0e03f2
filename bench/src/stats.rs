//! Summaries of load runs, as a table or JSON.

use serde::Serialize;

use crate::load::Outcome;

/// The numbers of one side of a scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// `graphql` or `plain`.
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
fn percentile(sorted: &[u64], q: f64) -> u64 {
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

/// The result of one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// Scenario name.
    pub scenario: &'static str,
    /// Whether the GraphQL and plain answers were byte-identical (they must be equal as JSON).
    pub identical_bytes: bool,
    /// The GraphQL side.
    pub graphql: Summary,
    /// The plain side.
    pub plain: Summary,
    /// The median of the rounds' `graphql rps / plain rps`.
    pub ratio: f64,
    /// Each round's ratio, in order.
    pub round_ratios: Vec<f64>,
    /// The ratio aimed for.
    pub target_ratio: f64,
    /// Whether `ratio >= target_ratio`.
    pub meets_target: bool,
    /// Whether both sides ran without errors.
    pub valid: bool,
}

impl ScenarioResult {
    /// Combines both sides.
    pub fn new(
        scenario: &'static str,
        identical_bytes: bool,
        graphql: Summary,
        plain: Summary,
        round_ratios: Vec<f64>,
        target_ratio: f64,
    ) -> Self {
        let mut sorted = round_ratios.clone();
        sorted.sort_by(f64::total_cmp);
        let ratio = match sorted.len() {
            0 => 0.0,
            n if n % 2 == 1 => sorted[n / 2],
            n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            scenario,
            identical_bytes,
            valid: graphql.errors == 0 && plain.errors == 0,
            graphql,
            plain,
            ratio,
            round_ratios,
            target_ratio,
            meets_target: ratio >= target_ratio,
        }
    }
}

/// The results as a text table with one ratio line per scenario.
pub fn table(results: &[ScenarioResult]) -> String {
    let mut out = format!(
        "{:<10} {:<8} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>7}\n",
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
        for side in [&result.graphql, &result.plain] {
            out.push_str(&format!(
                "{:<10} {:<8} {:>9} {:>10.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>5} {:>7}\n",
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
        out.push_str(&format!(
            "{}: graphql_rps / plain_rps = {:.3}, median of rounds [{}] (target >= {:.2}: {}){}\n",
            result.scenario,
            result.ratio,
            result
                .round_ratios
                .iter()
                .map(|r| format!("{r:.3}"))
                .collect::<Vec<_>>()
                .join(", "),
            result.target_ratio,
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
        for side in [&result.graphql, &result.plain] {
            if let Some(error) = &side.first_error {
                out.push_str(&format!("  first {} error: {error}\n", side.target));
            }
        }
    }
    out
}
