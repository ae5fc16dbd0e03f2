//! The metric query: checks the request, resolves the period in the timezone, picks rollups or
//! facts, and runs the aggregation in SQL (one statement for every metric of the request, plus one
//! per level of percentiles when asked).

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};
use uuid::Uuid;

use super::catalog::{self, Aggregation, Dimension, Kind, MetricDef};
use super::rollup::{Grain, HOUR_MS};
use super::sql::Sql;
use crate::error::{AppError, AppResult};

const DAY_MS: i64 = 86_400_000;

/// A period relative to now, in the query's timezone. Weeks start on Monday; "this" periods run
/// to their end (including the part still ahead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    /// Today.
    Today,
    /// Yesterday.
    Yesterday,
    /// This week.
    ThisWeek,
    /// Last week.
    PreviousWeek,
    /// This month.
    ThisMonth,
    /// Last month.
    PreviousMonth,
    /// This quarter.
    ThisQuarter,
    /// Last quarter.
    PreviousQuarter,
    /// This year.
    ThisYear,
    /// Today and the 6 days before.
    Last7Days,
    /// Today and the 29 days before.
    Last30Days,
}

/// The period a query covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    /// A preset.
    Preset(Preset),
    /// From `start` (included) to `end` (excluded).
    Interval {
        /// Start.
        start: DateTime<Utc>,
        /// End.
        end: DateTime<Utc>,
    },
}

/// Length of the time series' buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// Hours.
    Hour,
    /// Local days.
    Day,
    /// Local weeks, Monday first.
    Week,
    /// Local calendar months.
    Month,
}

impl Granularity {
    fn name(self) -> &'static str {
        match self {
            Self::Hour => "HOUR",
            Self::Day => "DAY",
            Self::Week => "WEEK",
            Self::Month => "MONTH",
        }
    }
}

/// A value of a dimension.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimValue {
    /// A row id (channel, queue, team, user, tag).
    Id(Uuid),
    /// A name (channel type, direction).
    Name(String),
}

impl DimValue {
    fn into_value(self) -> Value {
        match self {
            DimValue::Id(id) => id.into(),
            DimValue::Name(name) => name.into(),
        }
    }
}

/// Only facts whose `dimension` is one of `values`.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The dimension.
    pub dimension: Dimension,
    /// Accepted values.
    pub values: Vec<DimValue>,
}

/// A metric request.
#[derive(Clone, Debug)]
pub struct MetricQuery {
    /// Metric ids.
    pub ids: Vec<String>,
    /// The period.
    pub period: Period,
    /// IANA timezone name.
    pub timezone: String,
    /// Time series granularity; none for no series.
    pub granularity: Option<Granularity>,
    /// Filters, all of which must hold.
    pub filters: Vec<Filter>,
    /// Dimensions to group by.
    pub group_by: Vec<Dimension>,
    /// Aggregations; the metric's defaults when none.
    pub aggregations: Option<Vec<Aggregation>>,
}

/// Configured limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest period in days.
    pub max_interval_days: i64,
    /// Most buckets of a series.
    pub max_buckets: usize,
    /// Most groups.
    pub max_groups: usize,
}

/// Aggregated values (only the asked aggregations are set).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Values {
    /// Number of facts.
    pub count: i64,
    sum: f64,
    sum_sq: f64,
    min: Option<f64>,
    max: Option<f64>,
    /// Median.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
}

impl Values {
    fn merge(&mut self, other: &Values) {
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }

    /// The value of `aggregation`; none when there are no facts (count is then 0).
    pub fn get(&self, aggregation: Aggregation) -> Option<f64> {
        if aggregation == Aggregation::Count {
            return Some(self.count as f64);
        }
        if self.count == 0 {
            return None;
        }
        let n = self.count as f64;
        match aggregation {
            Aggregation::Count => Some(n),
            Aggregation::Sum => Some(self.sum),
            Aggregation::Avg => Some(self.sum / n),
            Aggregation::Min => self.min,
            Aggregation::Max => self.max,
            Aggregation::P50 => self.p50,
            Aggregation::P90 => self.p90,
            Aggregation::Stddev => {
                let mean = self.sum / n;
                Some((self.sum_sq / n - mean * mean).max(0.0).sqrt())
            }
        }
    }
}

/// One bucket of a series.
#[derive(Clone, Debug)]
pub struct Bucket {
    /// Start (the period's start for a first bucket that began before it).
    pub start: DateTime<Utc>,
    /// End (excluded).
    pub end: DateTime<Utc>,
    /// Its values.
    pub values: Values,
}

/// One group of a grouped result.
#[derive(Clone, Debug)]
pub struct Group {
    /// The group's value of each `groupBy` dimension (none: facts without one).
    pub keys: Vec<(Dimension, Option<DimValue>)>,
    /// Its values over the period.
    pub values: Values,
    /// Its series (when a granularity was asked).
    pub series: Vec<Bucket>,
}

/// What the numbers were computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Hourly rollups.
    Rollups,
    /// The facts, row by row in SQL.
    Facts,
    /// Current conversations (a snapshot).
    Live,
}

/// The answer for one metric.
#[derive(Clone, Debug)]
pub struct MetricResult {
    /// The metric.
    pub def: &'static MetricDef,
    /// Aggregations computed.
    pub aggregations: Vec<Aggregation>,
    /// Period start.
    pub start: DateTime<Utc>,
    /// Period end (excluded).
    pub end: DateTime<Utc>,
    /// Timezone.
    pub timezone: Tz,
    /// Granularity.
    pub granularity: Option<Granularity>,
    /// Values over the whole period.
    pub values: Values,
    /// Time series.
    pub series: Vec<Bucket>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Where the numbers came from.
    pub source: Source,
}

fn ceil_div(a: i64, b: i64) -> i64 {
    (a + b - 1).div_euclid(b)
}

fn bad(message: String) -> AppError {
    AppError::BadUserInput(message)
}

/// Parses an IANA timezone name.
pub fn timezone(name: &str) -> AppResult<Tz> {
    Tz::from_str(name).map_err(|_| {
        bad(format!(
            "unknown timezone {name:?}: use an IANA name such as \"Europe/Copenhagen\""
        ))
    })
}

fn midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    // A midnight skipped by a daylight-saving change: the day starts at the first local time.
    (0..4)
        .find_map(|h| {
            date.and_hms_opt(h, 0, 0)
                .and_then(|t| tz.from_local_datetime(&t).earliest())
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

fn month_start(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

fn add_months(date: NaiveDate, months: i32) -> NaiveDate {
    let total = date.year() * 12 + date.month0() as i32 + months;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .unwrap_or(date)
}

fn week_start(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

/// The UTC bounds of `period` in `tz` at `now`.
pub fn resolve(period: Period, tz: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let today = now.with_timezone(&tz).date_naive();
    let days = |from: NaiveDate, to: NaiveDate| (midnight(tz, from), midnight(tz, to));
    let quarter = add_months(month_start(today), -(today.month0() as i32 % 3));
    match period {
        Period::Interval { start, end } => (start, end),
        Period::Preset(p) => match p {
            Preset::Today => days(today, today + Duration::days(1)),
            Preset::Yesterday => days(today - Duration::days(1), today),
            Preset::ThisWeek => days(week_start(today), week_start(today) + Duration::days(7)),
            Preset::PreviousWeek => days(week_start(today) - Duration::days(7), week_start(today)),
            Preset::ThisMonth => days(month_start(today), add_months(today, 1)),
            Preset::PreviousMonth => days(add_months(today, -1), month_start(today)),
            Preset::ThisQuarter => days(quarter, add_months(quarter, 3)),
            Preset::PreviousQuarter => days(add_months(quarter, -3), quarter),
            Preset::ThisYear => {
                let jan = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
                days(jan, add_months(jan, 12))
            }
            Preset::Last7Days => days(today - Duration::days(6), today + Duration::days(1)),
            Preset::Last30Days => days(today - Duration::days(29), today + Duration::days(1)),
        },
    }
}

/// The calendar buckets of `granularity` covering `[start, end)` in `tz`, clipped to it.
pub fn buckets(
    granularity: Granularity,
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    max: usize,
) -> AppResult<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    let too_many = || {
        bad(format!(
            "granularity {} over this period makes more than {max} buckets (the most a series may \
             have): choose a coarser granularity or a shorter period",
            granularity.name()
        ))
    };
    // Sized up front: growing a vector of a few hundred buckets step by step costs more than
    // the rest of this function (each step is a larger allocation).
    let span_ms = (end - start).num_milliseconds().max(0);
    let estimate = match granularity {
        Granularity::Hour => ceil_div(span_ms, HOUR_MS),
        Granularity::Day => span_ms / DAY_MS + 2,
        Granularity::Week => span_ms / (7 * DAY_MS) + 2,
        Granularity::Month => span_ms / (28 * DAY_MS) + 2,
    };
    let mut out = Vec::with_capacity(usize::try_from(estimate).unwrap_or(0).min(max));
    match granularity {
        Granularity::Hour => {
            let hours = ceil_div(span_ms, HOUR_MS);
            if hours as usize > max {
                return Err(too_many());
            }
            for i in 0..hours {
                let s = start + Duration::milliseconds(i * HOUR_MS);
                out.push((s, (s + Duration::hours(1)).min(end)));
            }
        }
        _ => {
            let first = start.with_timezone(&tz).date_naive();
            let mut date = match granularity {
                Granularity::Week => week_start(first),
                Granularity::Month => month_start(first),
                _ => first,
            };
            loop {
                let next = match granularity {
                    Granularity::Week => date + Duration::days(7),
                    Granularity::Month => add_months(date, 1),
                    _ => date + Duration::days(1),
                };
                let (s, e) = (midnight(tz, date), midnight(tz, next));
                if s >= end {
                    break;
                }
                if out.len() == max {
                    return Err(too_many());
                }
                out.push((s.max(start), e.min(end)));
                date = next;
            }
        }
    }
    Ok(out)
}

/// The zone's UTC offsets over `[start, end)`: `(from_ms, offset_ms)`, first from `start`.
///
/// Offsets change on quarter hours (UTC) at most once a day in every zone of the tz database, so
/// the zone is asked once a day and, only where a day's start and end offsets differ, every
/// quarter hour of that day: a week costs 8 lookups instead of 672.
fn offsets(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(i64, i64)> {
    let offset = |ms: i64| {
        let t = DateTime::from_timestamp_millis(ms).unwrap_or_default();
        i64::from(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        ) * 1000
    };
    let step = 15 * 60 * 1000;
    let (s, e) = (start.timestamp_millis(), end.timestamp_millis());
    let mut out = vec![(s, offset(s))];
    // Quarter hours after `s` and before `e`, a day at a time.
    let last = (e - 1).div_euclid(step) * step;
    let mut from = s.div_euclid(step) * step;
    let mut before = out[0].1;
    while from < last {
        let to = (from + DAY_MS).min(last);
        let after = offset(to);
        if after != before {
            let mut t = from + step;
            while t <= to {
                let o = offset(t);
                if out.last().is_some_and(|&(_, l)| l != o) {
                    out.push((t, o));
                }
                t += step;
            }
        }
        before = after;
        from = to;
    }
    out
}

/// How one source table is read.
struct Table {
    from: &'static str,
    time: &'static str,
    unit_ms: i64,
    channel: &'static str,
    channel_type: &'static str,
    queue: &'static str,
    user: &'static str,
    direction: &'static str,
    conversation: &'static str,
    /// Count, sum, sum of squares, min and max of the table's values, as SQL aggregates (the
    /// last four empty for a table that only counts).
    aggregates: [&'static str; 5],
    uuid_nil: bool,
}

const ROLLUPS: Table = Table {
    from: "metric_rollups t",
    time: "t.hour",
    unit_ms: HOUR_MS,
    channel: "t.channel_id",
    channel_type: "t.channel_type",
    queue: "t.queue_id",
    user: "t.user_id",
    direction: "t.direction",
    conversation: "",
    aggregates: [
        "CAST(SUM(t.\"count\") AS BIGINT)",
        "SUM(t.\"sum\")",
        "SUM(t.sum_sq)",
        "MIN(t.\"min\")",
        "MAX(t.\"max\")",
    ],
    uuid_nil: true,
};

const FACTS: Table = Table {
    from: "metric_facts t",
    time: "t.at_ms",
    unit_ms: 1,
    channel: "t.channel_id",
    channel_type: "t.channel_type",
    queue: "t.queue_id",
    user: "t.user_id",
    direction: "t.direction",
    conversation: "t.conversation_id",
    aggregates: [
        "COUNT(*)",
        "SUM(t.value)",
        "SUM(t.value * t.value)",
        "MIN(t.value)",
        "MAX(t.value)",
    ],
    uuid_nil: false,
};

const LIVE: Table = Table {
    from: "conversations t",
    time: "",
    unit_ms: 1,
    channel: "t.channel_id",
    channel_type: "t.channel_type",
    queue: "t.queue_id",
    user: "t.assignee_id",
    direction: "t.direction",
    conversation: "t.id",
    aggregates: ["COUNT(*)", "", "", "", ""],
    uuid_nil: false,
};

impl Table {
    fn column(&self, d: Dimension) -> &'static str {
        match d {
            Dimension::Channel => self.channel,
            Dimension::ChannelType => self.channel_type,
            Dimension::Queue => self.queue,
            Dimension::User => self.user,
            Dimension::Direction => self.direction,
            Dimension::Team => "tm.team_id",
            Dimension::Tag => "ct.tag_id",
        }
    }
}

/// The time series' bucket of a row, as a key the buckets are matched by.
struct BucketExpr {
    sql: String,
    keys: BucketKeys,
}

/// The buckets' keys, in bucket order and increasing. Consecutive keys (hours, days, weeks and
/// months all are) are kept as a range: a row's bucket is then found by subtraction, with no
/// list to allocate or hash.
struct BucketKeys {
    first: i64,
    len: usize,
    /// The keys when they are not consecutive (searched by bisection); empty when they are.
    list: Vec<i64>,
}

impl BucketKeys {
    fn range(first: i64, len: usize) -> Self {
        Self {
            first,
            len,
            list: Vec::new(),
        }
    }

    fn of(keys: Vec<i64>) -> Self {
        let first = keys.first().copied().unwrap_or(0);
        let consecutive = keys
            .iter()
            .enumerate()
            .all(|(i, &k)| i64::try_from(i).is_ok_and(|i| k == first + i));
        if consecutive {
            Self::range(first, keys.len())
        } else {
            Self {
                first,
                len: keys.len(),
                list: keys,
            }
        }
    }

    /// The index of the bucket whose key is `key`.
    fn index(&self, key: i64) -> Option<usize> {
        if self.list.is_empty() {
            usize::try_from(key - self.first)
                .ok()
                .filter(|&i| i < self.len)
        } else {
            self.list.binary_search(&key).ok()
        }
    }
}

fn bucket_expr(
    table: &Table,
    granularity: Granularity,
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    list: &[(DateTime<Utc>, DateTime<Utc>)],
) -> BucketExpr {
    let u = table.unit_ms;
    let t = table.time;
    let local = || {
        let segments = offsets(tz, start, end);
        let mut off = String::from("CASE");
        for pair in segments.windows(2) {
            off.push_str(&format!(
                " WHEN {t} < {} THEN {}",
                pair[1].0 / u,
                pair[0].1 / u
            ));
        }
        let last = segments.last().map_or(0, |s| s.1);
        if segments.len() == 1 {
            format!("({t} + {})", last / u)
        } else {
            format!("({t} + {off} ELSE {} END)", last / u)
        }
    };
    let epoch_day = |s: DateTime<Utc>| {
        s.with_timezone(&tz)
            .date_naive()
            .signed_duration_since(NaiveDate::default())
            .num_days()
    };
    let (sql, keys) = match granularity {
        Granularity::Hour => (
            format!("({t} - {}) / {}", start.timestamp_millis() / u, HOUR_MS / u),
            BucketKeys::range(0, list.len()),
        ),
        Granularity::Day => (
            format!("{} / {}", local(), DAY_MS / u),
            BucketKeys::of(list.iter().map(|b| epoch_day(b.0)).collect()),
        ),
        Granularity::Week => (
            format!("({} / {} - 4) / 7", local(), DAY_MS / u),
            BucketKeys::of(
                list.iter()
                    .map(|b| (epoch_day(b.0) - 4).div_euclid(7))
                    .collect(),
            ),
        ),
        Granularity::Month => {
            let mut sql = String::from("CASE");
            for (i, b) in list.iter().enumerate().skip(1) {
                sql.push_str(&format!(
                    " WHEN {t} < {} THEN {}",
                    b.0.timestamp_millis() / u,
                    i - 1
                ));
            }
            sql.push_str(&format!(" ELSE {} END", list.len().saturating_sub(1)));
            if list.len() <= 1 {
                sql = "0".into();
            }
            (sql, BucketKeys::range(0, list.len()))
        }
    };
    BucketExpr { sql, keys }
}

/// What every statement of a request shares.
struct Plan<'a> {
    org_id: Uuid,
    tz: Tz,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    granularity: Option<Granularity>,
    buckets: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    filters: &'a [Filter],
    group_by: &'a [Dimension],
    /// The aggregates beyond the count that the asked aggregations need.
    needs: Needs,
}

/// Which of the aggregates beyond the count (sum, sum of squares, min, max, in that order) the
/// asked aggregations need: only those are computed, sent and read.
#[derive(Clone, Copy, Debug, Default)]
struct Needs([bool; 4]);

impl Needs {
    fn of<'a>(asked: impl IntoIterator<Item = &'a Aggregation>) -> Self {
        let mut needs = [false; 4];
        for a in asked {
            match a {
                Aggregation::Sum | Aggregation::Avg => needs[0] = true,
                Aggregation::Stddev => {
                    needs[0] = true;
                    needs[1] = true;
                }
                Aggregation::Min => needs[2] = true,
                Aggregation::Max => needs[3] = true,
                Aggregation::Count | Aggregation::P50 | Aggregation::P90 => {}
            }
        }
        Self(needs)
    }

    /// The positions (0 sum, 1 sum of squares, 2 min, 3 max) needed, in order.
    fn positions(self) -> impl Iterator<Item = usize> {
        (0..4).filter(move |&i| self.0[i])
    }
}

/// Rows of one statement: (metric, bucket index, group keys) → values.
type Rows = Vec<(&'static str, Option<usize>, Vec<Option<DimValue>>, Values)>;

impl Plan<'_> {
    fn grain(&self) -> Grain {
        let dims = self
            .filters
            .iter()
            .map(|f| f.dimension)
            .chain(self.group_by.iter().copied());
        let (mut c, mut q, mut u, mut d) = (false, false, false, false);
        for dim in dims {
            match dim {
                Dimension::Channel | Dimension::ChannelType => c = true,
                Dimension::Queue => q = true,
                Dimension::User | Dimension::Team => u = true,
                Dimension::Direction => d = true,
                Dimension::Tag => {}
            }
        }
        Grain::for_dims(c, q, u, d)
    }

    fn uses_tags(&self) -> bool {
        self.filters.iter().any(|f| f.dimension == Dimension::Tag)
            || self.group_by.contains(&Dimension::Tag)
    }

    /// Whether rollups answer exactly: whole-hour offsets, a period on whole hours, no tags.
    fn rollups_answer(&self) -> bool {
        !self.uses_tags()
            && self.start.timestamp_millis() % HOUR_MS == 0
            && self.end.timestamp_millis() % HOUR_MS == 0
            && offsets(self.tz, self.start, self.end)
                .iter()
                .all(|&(_, o)| o % HOUR_MS == 0)
    }

    /// `FROM … WHERE …` of `table` for `metrics` (joins for team and tag groups).
    fn source_clause(
        &self,
        sql: &mut Sql,
        table: &Table,
        metrics: &[&'static str],
        grain: Option<Grain>,
        grouped: bool,
    ) {
        sql.push(" FROM ").push(table.from);
        if grouped && self.group_by.contains(&Dimension::Team) {
            sql.push(" LEFT JOIN team_members tm ON tm.user_id = ")
                .push(table.user);
        }
        if grouped && self.group_by.contains(&Dimension::Tag) {
            sql.push(" LEFT JOIN conversation_tags ct ON ct.conversation_id = ")
                .push(table.conversation);
        }
        sql.push(" WHERE t.org_id = ").bind(self.org_id);
        if table.time.is_empty() {
            sql.push(" AND t.status <> 'CLOSED'");
        } else {
            sql.push(" AND t.metric IN ")
                .bind_list(metrics.iter().map(|m| Value::from(*m)));
            if let Some(grain) = grain {
                sql.push(&format!(" AND t.grain = {}", grain as i16));
            }
            sql.push(&format!(
                " AND {t} >= {} AND {t} < {}",
                self.start.timestamp_millis() / table.unit_ms,
                ceil_div(self.end.timestamp_millis(), table.unit_ms),
                t = table.time
            ));
        }
        for filter in self.filters {
            let values = filter.values.iter().cloned().map(DimValue::into_value);
            match filter.dimension {
                Dimension::Team => {
                    sql.push(&format!(
                        " AND {} IN (SELECT user_id FROM team_members WHERE org_id = ",
                        table.user
                    ))
                    .bind(self.org_id)
                    .push(" AND team_id IN ")
                    .bind_list(values)
                    .push(")");
                }
                Dimension::Tag => {
                    sql.push(&format!(
                        " AND {} IN (SELECT conversation_id FROM conversation_tags WHERE org_id = ",
                        table.conversation
                    ))
                    .bind(self.org_id)
                    .push(" AND tag_id IN ")
                    .bind_list(values)
                    .push(")");
                }
                d => {
                    sql.push(" AND ")
                        .push(table.column(d))
                        .push(" IN ")
                        .bind_list(values);
                }
            }
        }
    }

    /// The leading columns of a result row, by position: the metric (one of `metrics`, or ""
    /// for the live table), the bucket's index when there is a `bucket` (`None` for a row outside
    /// every bucket: skip it) and `n` group keys. By position: no name lookups and no per-value
    /// allocations beyond group names.
    #[allow(clippy::type_complexity)]
    fn row_key(
        &self,
        table: &Table,
        row: &QueryResult,
        metrics: &[&'static str],
        bucket: Option<&BucketExpr>,
        n: usize,
    ) -> AppResult<Option<(&'static str, Option<usize>, Vec<Option<DimValue>>)>> {
        let metric = if table.time.is_empty() {
            ""
        } else if let [only] = metrics {
            // The statement asked for this one alone.
            only
        } else {
            let name: String = row.try_get_by_index(0)?;
            match metrics.iter().find(|m| **m == name) {
                Some(m) => m,
                None => return Ok(None),
            }
        };
        let index = match bucket {
            Some(b) => {
                let key: i64 = row.try_get_by_index(1)?;
                match b.keys.index(key) {
                    Some(i) => Some(i),
                    None => return Ok(None),
                }
            }
            None => None,
        };
        let first = 1 + usize::from(bucket.is_some());
        let mut keys = Vec::with_capacity(n);
        for (i, d) in self.group_by.iter().enumerate().take(n) {
            let value = if d.is_entity() {
                let id: Option<Uuid> = row.try_get_by_index(first + i)?;
                // Rollups write the nil UUID for "none".
                id.filter(|id| !(table.uuid_nil && id.is_nil()))
                    .map(DimValue::Id)
            } else {
                let name: Option<String> = row.try_get_by_index(first + i)?;
                name.filter(|n| !n.is_empty()).map(DimValue::Name)
            };
            keys.push(value);
        }
        Ok(Some((metric, index, keys)))
    }

    /// Count, sum, sum of squares, min and max per metric, bucket and group, in one statement.
    async fn aggregate<C: ConnectionTrait>(
        &self,
        conn: &C,
        table: &Table,
        metrics: &[&'static str],
        grain: Option<Grain>,
        grouped: bool,
    ) -> AppResult<Rows> {
        let backend = conn.get_database_backend();
        let mut sql = Sql::new(backend);
        let live = table.time.is_empty();
        let bucket = match (self.granularity, live) {
            (Some(g), false) => Some(bucket_expr(
                table,
                g,
                self.tz,
                self.start,
                self.end,
                &self.buckets,
            )),
            _ => None,
        };
        let mut select = vec![if live {
            "'' AS metric".to_string()
        } else {
            "t.metric AS metric".to_string()
        }];
        if let Some(b) = &bucket {
            select.push(format!("CAST({} AS BIGINT) AS b", b.sql));
        }
        let n_groups = if grouped { self.group_by.len() } else { 0 };
        for (i, d) in self.group_by.iter().enumerate().take(n_groups) {
            select.push(format!("{} AS g{i}", table.column(*d)));
        }
        let groups = select.len();
        // The count, then what the asked aggregations need (a table that only counts has no more).
        let needed: Vec<usize> = if live {
            Vec::new()
        } else {
            self.needs.positions().collect()
        };
        select.push(table.aggregates[0].to_string());
        select.extend(needed.iter().map(|&i| table.aggregates[i + 1].to_string()));
        sql.push("SELECT ").push(&select.join(", "));
        self.source_clause(&mut sql, table, metrics, grain, grouped);
        sql.push(" GROUP BY ").push(
            &(1..=groups)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
        let rows = conn.query_all_raw(sql.statement()).await?;
        let at = groups; // the count's position
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some((metric, index, keys)) =
                self.row_key(table, &row, metrics, bucket.as_ref(), n_groups)?
            else {
                continue;
            };
            let count: i64 = row.try_get_by_index(at)?;
            let mut values = Values {
                count,
                ..Values::default()
            };
            if live {
                values.sum = count as f64;
                values.sum_sq = count as f64;
                values.min = Some(1.0);
                values.max = Some(1.0);
            }
            for (k, &i) in needed.iter().enumerate() {
                let value: Option<f64> = row.try_get_by_index(at + 1 + k)?;
                match i {
                    0 => values.sum = value.unwrap_or(0.0),
                    1 => values.sum_sq = value.unwrap_or(0.0),
                    2 => values.min = value,
                    _ => values.max = value,
                }
            }
            out.push((metric, index, keys, values));
        }
        Ok(out)
    }

    /// Nearest-rank p50 and p90 from the facts, per metric and per bucket and/or group as asked.
    async fn percentiles<C: ConnectionTrait>(
        &self,
        conn: &C,
        metrics: &[&'static str],
        by_bucket: bool,
        by_group: bool,
    ) -> AppResult<
        Vec<(
            &'static str,
            Option<usize>,
            Vec<Option<DimValue>>,
            Option<f64>,
            Option<f64>,
        )>,
    > {
        let table = &FACTS;
        let backend = conn.get_database_backend();
        let bucket = match (self.granularity, by_bucket) {
            (Some(g), true) => Some(bucket_expr(
                table,
                g,
                self.tz,
                self.start,
                self.end,
                &self.buckets,
            )),
            _ => None,
        };
        let mut keys = vec![("t.metric".to_string(), "metric".to_string())];
        if let Some(b) = &bucket {
            keys.push((format!("CAST({} AS BIGINT)", b.sql), "b".into()));
        }
        let n_groups = if by_group { self.group_by.len() } else { 0 };
        for (i, d) in self.group_by.iter().enumerate().take(n_groups) {
            keys.push((table.column(*d).to_string(), format!("g{i}")));
        }
        let partition = keys
            .iter()
            .map(|k| k.0.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let inner = keys
            .iter()
            .map(|(e, a)| format!("{e} AS {a}"))
            .collect::<Vec<_>>()
            .join(", ");
        let outer = keys
            .iter()
            .map(|k| k.1.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::new(backend);
        sql.push(&format!(
            "SELECT {outer}, MIN(CASE WHEN rn * 100 >= 50 * cnt THEN v END) AS p50, \
             MIN(CASE WHEN rn * 100 >= 90 * cnt THEN v END) AS p90 FROM (SELECT {inner}, \
             t.value AS v, ROW_NUMBER() OVER (PARTITION BY {partition} ORDER BY t.value) AS rn, \
             COUNT(*) OVER (PARTITION BY {partition}) AS cnt"
        ));
        self.source_clause(&mut sql, table, metrics, None, by_group);
        sql.push(&format!(") x GROUP BY {outer}"));
        let rows = conn.query_all_raw(sql.statement()).await?;
        let at = keys.len(); // p50's position
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let Some((metric, index, keys)) =
                self.row_key(table, &row, metrics, bucket.as_ref(), n_groups)?
            else {
                continue;
            };
            out.push((
                metric,
                index,
                keys,
                row.try_get_by_index(at)?,
                row.try_get_by_index(at + 1)?,
            ));
        }
        Ok(out)
    }
}

fn check_dimensions(defs: &[&MetricDef], q: &MetricQuery) -> AppResult<()> {
    for def in defs {
        for f in &q.filters {
            if !def.dimensions.contains(&f.dimension) {
                return Err(bad(format!(
                    "metric {} can't be filtered by {} (its dimensions: {})",
                    def.id,
                    f.dimension.name(),
                    dimension_list(def)
                )));
            }
        }
        for d in &q.group_by {
            if !def.dimensions.contains(d) {
                return Err(bad(format!(
                    "metric {} can't be grouped by {} (its dimensions: {})",
                    def.id,
                    d.name(),
                    dimension_list(def)
                )));
            }
        }
    }
    Ok(())
}

fn dimension_list(def: &MetricDef) -> String {
    if def.dimensions.is_empty() {
        return "none".into();
    }
    def.dimensions
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn check_groups<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    group_by: &[Dimension],
    max: usize,
) -> AppResult<()> {
    let mut product: u128 = 1;
    for d in group_by {
        let n = match d {
            Dimension::ChannelType => 7,
            Dimension::Direction => 2,
            entity => {
                let table = match entity {
                    Dimension::Channel => "channels",
                    Dimension::Queue => "queues",
                    Dimension::Team => "teams",
                    Dimension::User => "users",
                    _ => "tags",
                };
                let mut sql = Sql::new(conn.get_database_backend());
                sql.push(&format!(
                    "SELECT COUNT(*) AS n FROM {table} WHERE org_id = "
                ))
                .bind(org_id);
                let row = conn.query_one_raw(sql.statement()).await?;
                row.map(|r| r.try_get::<i64>("", "n"))
                    .transpose()?
                    .unwrap_or(0)
            }
        };
        product = product.saturating_mul(n as u128 + 1);
    }
    if product > max as u128 {
        let names = group_by
            .iter()
            .map(|d| d.name())
            .collect::<Vec<_>>()
            .join(" and ");
        return Err(bad(format!(
            "grouping by {names} may make up to {product} groups; at most {max} are allowed: \
             group by fewer or smaller dimensions, or filter instead"
        )));
    }
    Ok(())
}

/// Checks `q` and computes every metric it asks for (in the order asked).
pub async fn run<C: ConnectionTrait>(
    conn: &C,
    org_id: Uuid,
    now: DateTime<Utc>,
    limits: Limits,
    q: &MetricQuery,
) -> AppResult<Vec<MetricResult>> {
    if q.ids.is_empty() {
        return Err(bad("ask for at least one metric id".into()));
    }
    let mut defs = Vec::with_capacity(q.ids.len());
    for id in &q.ids {
        let def = catalog::find(id).ok_or_else(|| {
            bad(format!(
                "unknown metric {id:?}: metricDefinitions lists the metrics"
            ))
        })?;
        defs.push(def);
    }
    let mut aggregations = Vec::with_capacity(defs.len());
    for def in &defs {
        let asked = match &q.aggregations {
            Some(list) if !list.is_empty() => {
                let mut list = list.clone();
                list.sort();
                list.dedup();
                list
            }
            _ => def.default_aggregations.to_vec(),
        };
        if let Some(a) = asked.iter().find(|a| !def.aggregations.contains(a)) {
            return Err(bad(format!(
                "metric {} doesn't support the aggregation {} (it supports {})",
                def.id,
                a.name(),
                def.aggregations
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        aggregations.push(asked);
    }
    let tz = timezone(&q.timezone)?;
    if let Period::Interval { start, end } = q.period
        && end <= start
    {
        return Err(bad(format!(
            "the period's end ({}) must be after its start ({})",
            end.to_rfc3339(),
            start.to_rfc3339()
        )));
    }
    let (start, end) = resolve(q.period, tz, now);
    let max_ms = limits.max_interval_days.saturating_mul(DAY_MS);
    if (end - start).num_milliseconds() > max_ms {
        return Err(bad(format!(
            "the period spans {:.1} days; at most {} are allowed",
            (end - start).num_milliseconds() as f64 / DAY_MS as f64,
            limits.max_interval_days
        )));
    }
    check_dimensions(&defs, q)?;
    let mut seen = Vec::new();
    for d in &q.group_by {
        if seen.contains(d) {
            return Err(bad(format!("groupBy names {} twice", d.name())));
        }
        seen.push(*d);
    }
    for f in &q.filters {
        if f.values.is_empty() {
            return Err(bad(format!(
                "the filter on {} needs at least one value",
                f.dimension.name()
            )));
        }
    }
    let buckets = match q.granularity {
        Some(g) => buckets(g, tz, start, end, limits.max_buckets)?,
        None => Vec::new(),
    };
    if !q.group_by.is_empty() {
        check_groups(conn, org_id, &q.group_by, limits.max_groups).await?;
    }

    let plan = Plan {
        org_id,
        tz,
        start,
        end,
        granularity: q.granularity,
        buckets,
        filters: &q.filters,
        group_by: &q.group_by,
        needs: Needs::of(
            defs.iter()
                .zip(&aggregations)
                .filter(|(d, _)| d.kind == Kind::Facts)
                .flat_map(|(_, asked)| asked),
        ),
    };
    let fact_metrics: Vec<&str> = defs
        .iter()
        .filter(|d| d.kind == Kind::Facts)
        .map(|d| d.id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rollups = plan.rollups_answer();
    // Teams and tags are many per fact: their groups overlap, so totals are read without them.
    let overlapping = q.group_by.contains(&Dimension::Team) || q.group_by.contains(&Dimension::Tag);
    let grouped = !q.group_by.is_empty();
    let mut totals: Rows = Vec::new();
    let mut grouped_rows: Rows = Vec::new();
    for (wanted, table, metrics, grain) in [
        (
            !fact_metrics.is_empty(),
            if rollups { &ROLLUPS } else { &FACTS },
            &fact_metrics[..],
            rollups.then(|| plan.grain()),
        ),
        (
            defs.iter().any(|d| d.kind == Kind::OpenNow),
            &LIVE,
            &[][..],
            None,
        ),
    ] {
        if !wanted {
            continue;
        }
        let rows = plan.aggregate(conn, table, metrics, grain, grouped).await?;
        if overlapping {
            totals.extend(plan.aggregate(conn, table, metrics, grain, false).await?);
        } else if grouped {
            totals.extend(rows.iter().cloned());
        }
        // Moved rather than copied when nothing came before (the usual case: one table).
        let into = if grouped {
            &mut grouped_rows
        } else {
            &mut totals
        };
        if into.is_empty() {
            *into = rows;
        } else {
            into.extend(rows);
        }
    }
    let percentile_metrics: Vec<&str> = defs
        .iter()
        .zip(&aggregations)
        .filter(|(d, a)| d.kind == Kind::Facts && a.iter().any(|a| a.is_percentile()))
        .map(|(d, _)| d.id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut percentiles = Vec::new();
    if !percentile_metrics.is_empty() {
        let series = q.granularity.is_some();
        let grouped = !q.group_by.is_empty();
        for (b, g) in [(false, false), (true, false), (false, true), (true, true)] {
            if (b && !series) || (g && !grouped) {
                continue;
            }
            percentiles.extend(plan.percentiles(conn, &percentile_metrics, b, g).await?);
        }
    }

    let mut results = Vec::with_capacity(defs.len());
    for (def, aggregations) in defs.into_iter().zip(aggregations) {
        let live = def.kind == Kind::OpenNow;
        let key = if live { "" } else { def.id };
        let series_len = if live { 0 } else { plan.buckets.len() };
        // The buckets, empty, to merge rows into (built once: the result's own vectors).
        let empty_series = || {
            plan.buckets[..series_len]
                .iter()
                .map(|&(start, end)| Bucket {
                    start,
                    end,
                    values: Values::default(),
                })
                .collect::<Vec<_>>()
        };
        let mut values = Values::default();
        let mut series = empty_series();
        let mut groups: BTreeMap<Vec<Option<DimValue>>, (Values, Vec<Bucket>)> = BTreeMap::new();
        for (_, index, _, v) in totals.iter().filter(|r| r.0 == key) {
            values.merge(v);
            if let Some(i) = index
                && let Some(b) = series.get_mut(*i)
            {
                b.values.merge(v);
            }
        }
        for (_, index, keys, v) in grouped_rows.iter().filter(|r| r.0 == key) {
            let entry = groups
                .entry(keys.clone())
                .or_insert_with(|| (Values::default(), empty_series()));
            entry.0.merge(v);
            if let Some(i) = index
                && let Some(b) = entry.1.get_mut(*i)
            {
                b.values.merge(v);
            }
        }
        for (metric, index, keys, p50, p90) in &percentiles {
            if *metric != def.id {
                continue;
            }
            let target = match (index, keys.is_empty() || q.group_by.is_empty()) {
                (None, true) => Some(&mut values),
                (Some(i), true) => series.get_mut(*i).map(|b| &mut b.values),
                (None, false) => groups.get_mut(keys).map(|g| &mut g.0),
                (Some(i), false) => groups
                    .get_mut(keys)
                    .and_then(|g| g.1.get_mut(*i))
                    .map(|b| &mut b.values),
            };
            if let Some(t) = target {
                t.p50 = *p50;
                t.p90 = *p90;
            }
        }
        let mut groups: Vec<Group> = groups
            .into_iter()
            .map(|(keys, (values, s))| Group {
                keys: q.group_by.iter().copied().zip(keys).collect(),
                values,
                series: s,
            })
            .collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.values.count));
        results.push(MetricResult {
            def,
            aggregations,
            start,
            end,
            timezone: tz,
            granularity: if live { None } else { q.granularity },
            values,
            series,
            groups,
            source: if live {
                Source::Live
            } else if rollups {
                Source::Rollups
            } else {
                Source::Facts
            },
        });
    }
    Ok(results)
}

/// Whether `backend` is PostgreSQL (for callers building their own reference SQL).
pub fn is_postgres(backend: DbBackend) -> bool {
    backend == DbBackend::Postgres
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every quarter hour, as plainly as it can be written.
    fn offsets_every_quarter(tz: Tz, start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(i64, i64)> {
        let offset = |ms: i64| {
            let t = DateTime::from_timestamp_millis(ms).unwrap();
            i64::from(
                tz.offset_from_utc_datetime(&t.naive_utc())
                    .fix()
                    .local_minus_utc(),
            ) * 1000
        };
        let step = 15 * 60 * 1000;
        let (s, e) = (start.timestamp_millis(), end.timestamp_millis());
        let mut out = vec![(s, offset(s))];
        let mut t = s.div_euclid(step) * step + step;
        while t < e {
            let o = offset(t);
            if out.last().is_some_and(|&(_, last)| last != o) {
                out.push((t, o));
            }
            t += step;
        }
        out
    }

    #[test]
    fn offsets_found_a_day_at_a_time_are_those_of_every_quarter_hour() {
        let zones = [
            "UTC",
            "Europe/Copenhagen",
            "America/New_York",
            "Australia/Lord_Howe",
            "America/St_Johns",
            "Asia/Kathmandu",
            "Pacific/Chatham",
            "Africa/Casablanca",
        ];
        // Periods of odd lengths starting at odd times, over two years of transitions.
        let base = DateTime::parse_from_rfc3339("2025-01-01T00:07:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for zone in zones {
            let tz: Tz = zone.parse().unwrap();
            for k in 0..60 {
                let start = base + Duration::minutes(k * 17_011);
                for days in [0, 1, 3, 30, 200] {
                    let end = start + Duration::days(days) + Duration::minutes(k * 7 + 1);
                    assert_eq!(
                        offsets(tz, start, end),
                        offsets_every_quarter(tz, start, end),
                        "{zone} {start} {end}"
                    );
                }
            }
        }
    }
}
