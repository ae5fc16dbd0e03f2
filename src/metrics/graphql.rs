//! GraphQL of metrics: the catalog, the metric query, analytics records and counters.

use async_graphql::{Context, Enum, InputObject, Object, OneofObject, SimpleObject};
use chrono::{DateTime, Utc};

use super::catalog::{self, Aggregation, Dimension, MetricDef, Unit};
use super::query::{self, DimValue, Filter, Granularity, Limits, MetricQuery, Period, Preset};
use crate::auth::Permission;
use crate::error::{AppError, AppResult};
use crate::graphql::context::ContextExt;
use crate::graphql::relay::{decode_id, encode_id};

/// What a metric's values measure.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "Unit")]
pub enum MetricUnit {
    /// Occurrences.
    Count,
    /// Durations in seconds.
    Seconds,
    /// A share in percent (the `avg` aggregation; `count` is the denominator).
    Percent,
}

/// An aggregation of a metric's facts.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "Aggregation")]
pub enum MetricAggregation {
    /// Number of facts.
    Count,
    /// Sum of the values.
    Sum,
    /// Mean of the values (for percent metrics: the percentage).
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median, nearest rank (computed exactly from the facts).
    P50,
    /// 90th percentile, nearest rank (computed exactly from the facts).
    P90,
    /// Population standard deviation.
    Stddev,
}

/// A dimension metrics are filtered and grouped by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "Dimension")]
pub enum MetricDimension {
    /// The channel (values: channel ids).
    Channel,
    /// The channel's type (values: `EMAIL`, `SMS`, `WHATSAPP`, `MESSENGER`, `CHAT`, `VOICE`,
    /// `VIDEO`).
    ChannelType,
    /// The queue (values: queue ids).
    Queue,
    /// The user's teams (values: team ids); a user in two teams counts in both groups.
    Team,
    /// The user (values: user ids); each metric says which user.
    User,
    /// The conversation's current tags (values: tag ids); computed from facts, not rollups.
    Tag,
    /// `INBOUND` or `OUTBOUND`.
    Direction,
}

/// A period relative to now, in the query's timezone. Weeks start on Monday.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "MetricPeriodPreset", remote = "Preset")]
pub enum PresetGql {
    /// Today.
    Today,
    /// Yesterday.
    Yesterday,
    /// This week, Monday to Sunday.
    ThisWeek,
    /// Last week.
    PreviousWeek,
    /// This calendar month.
    ThisMonth,
    /// Last calendar month.
    PreviousMonth,
    /// This quarter.
    ThisQuarter,
    /// Last quarter.
    PreviousQuarter,
    /// This calendar year.
    ThisYear,
    /// Today and the 6 days before.
    Last7Days,
    /// Today and the 29 days before.
    Last30Days,
}

/// Length of a time series' buckets, aligned to the query's timezone.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "MetricGranularity", remote = "Granularity")]
pub enum GranularityGql {
    /// Hours.
    Hour,
    /// Local days (23 or 25 hours across daylight-saving changes).
    Day,
    /// Local weeks, Monday first.
    Week,
    /// Local calendar months.
    Month,
}

/// What a metric result was computed from.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(name = "MetricSource", remote = "query::Source")]
pub enum SourceGql {
    /// Hourly rollups (whole-hour timezone offsets, no percentiles, no tags).
    Rollups,
    /// The raw facts, aggregated in SQL.
    Facts,
    /// The conversations as they are now.
    Live,
}

/// An explicit interval.
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "MetricIntervalInput")]
pub struct IntervalInput {
    /// Start (included).
    pub start: DateTime<Utc>,
    /// End (excluded); after the start, and at most `--metrics-max-interval-days` later.
    pub end: DateTime<Utc>,
}

/// The period of a metric query: a preset or an interval.
#[derive(OneofObject, Clone, Debug)]
#[graphql(name = "MetricPeriodInput")]
pub enum PeriodInput {
    /// A preset relative to now.
    Preset(PresetGql),
    /// An explicit interval.
    Interval(IntervalInput),
}

/// Only facts whose dimension has one of the values.
#[derive(InputObject, Clone, Debug)]
#[graphql(name = "MetricFilterInput")]
pub struct FilterInput {
    /// The dimension.
    pub dimension: MetricDimension,
    /// Global ids for channel, queue, team, user and tag; names for channel type and direction.
    pub values: Vec<String>,
}

/// A metric of the catalog.
pub struct MetricDefinition(pub &'static MetricDef);

/// A metric of the catalog, with its exact definition.
#[Object]
impl MetricDefinition {
    /// Stable id, as passed to `metric`.
    async fn id(&self) -> &str {
        self.0.id
    }

    /// What it measures, precisely (when it counts, which user and queue it is attributed to).
    async fn description(&self) -> &str {
        self.0.description
    }

    /// Unit of its values.
    async fn unit(&self) -> MetricUnit {
        self.0.unit.into()
    }

    /// Aggregations it supports.
    async fn aggregations(&self) -> Vec<MetricAggregation> {
        self.0.aggregations.iter().map(|&a| a.into()).collect()
    }

    /// Aggregations computed when none are asked for.
    async fn default_aggregations(&self) -> Vec<MetricAggregation> {
        self.0
            .default_aggregations
            .iter()
            .map(|&a| a.into())
            .collect()
    }

    /// Dimensions it can be filtered and grouped by.
    async fn dimensions(&self) -> Vec<MetricDimension> {
        self.0.dimensions.iter().map(|&d| d.into()).collect()
    }

    /// Whether it has a time series (false for snapshots such as `conversations_open`).
    async fn time_series(&self) -> bool {
        self.0.kind == catalog::Kind::Facts
    }
}

/// Aggregated values; an aggregation not asked for is null, and so is every aggregation but
/// `count` when there are no facts.
pub struct MetricValues {
    values: query::Values,
    asked: Vec<Aggregation>,
}

impl MetricValues {
    fn get(&self, a: Aggregation) -> Option<f64> {
        if self.asked.contains(&a) {
            self.values.get(a)
        } else {
            None
        }
    }
}

/// Aggregated values of a metric over a period, a bucket or a group.
#[Object]
impl MetricValues {
    /// Number of facts.
    async fn count(&self) -> Option<i64> {
        self.asked
            .contains(&Aggregation::Count)
            .then_some(self.values.count)
    }

    /// Sum of the values.
    async fn sum(&self) -> Option<f64> {
        self.get(Aggregation::Sum)
    }

    /// Mean (for percent metrics: the percentage).
    async fn avg(&self) -> Option<f64> {
        self.get(Aggregation::Avg)
    }

    /// Smallest value.
    async fn min(&self) -> Option<f64> {
        self.get(Aggregation::Min)
    }

    /// Largest value.
    async fn max(&self) -> Option<f64> {
        self.get(Aggregation::Max)
    }

    /// Median (nearest rank).
    async fn p50(&self) -> Option<f64> {
        self.get(Aggregation::P50)
    }

    /// 90th percentile (nearest rank).
    async fn p90(&self) -> Option<f64> {
        self.get(Aggregation::P90)
    }

    /// Population standard deviation.
    async fn stddev(&self) -> Option<f64> {
        self.get(Aggregation::Stddev)
    }
}

/// One bucket of a time series.
#[derive(SimpleObject)]
pub struct MetricBucket {
    /// Start of the bucket (local midnight for days; the period's start for a first bucket that
    /// began before it).
    start: DateTime<Utc>,
    /// End of the bucket (excluded).
    end: DateTime<Utc>,
    /// Its values.
    values: MetricValues,
}

/// A group's value of one dimension.
#[derive(SimpleObject)]
pub struct MetricGroupKey {
    /// The dimension.
    dimension: MetricDimension,
    /// A global id (channel, queue, team, user, tag) or a name (channel type, direction); null
    /// for facts without one (no queue, no assignee, no tag).
    value: Option<String>,
}

/// The values of one group.
#[derive(SimpleObject)]
pub struct MetricGroup {
    /// The group's value of each `groupBy` dimension, in order.
    keys: Vec<MetricGroupKey>,
    /// Its values over the period.
    values: MetricValues,
    /// Its time series (empty without a granularity).
    series: Vec<MetricBucket>,
}

/// The answer of a metric query.
#[derive(SimpleObject)]
pub struct MetricResult {
    /// The metric.
    metric: MetricDefinition,
    /// Aggregations computed.
    aggregations: Vec<MetricAggregation>,
    /// Start of the period (UTC).
    start: DateTime<Utc>,
    /// End of the period (UTC, excluded).
    end: DateTime<Utc>,
    /// The timezone the period and buckets are aligned to.
    timezone: String,
    /// Granularity of the series.
    granularity: Option<GranularityGql>,
    /// Values over the whole period.
    values: MetricValues,
    /// Time series (empty without a granularity).
    series: Vec<MetricBucket>,
    /// Groups, largest count first (empty without `groupBy`).
    groups: Vec<MetricGroup>,
    /// What the numbers were computed from.
    source: SourceGql,
}

fn key_string(d: Dimension, v: &DimValue) -> String {
    match (v, d.type_name()) {
        (DimValue::Id(id), Some(t)) => encode_id(t, *id).0,
        (DimValue::Id(id), None) => id.to_string(),
        (DimValue::Name(n), _) => n.clone(),
    }
}

fn result(r: query::MetricResult) -> MetricResult {
    let asked = r.aggregations.clone();
    let values = |values: query::Values| MetricValues {
        values,
        asked: asked.clone(),
    };
    let series = |buckets: Vec<query::Bucket>| {
        buckets
            .into_iter()
            .map(|b| MetricBucket {
                start: b.start,
                end: b.end,
                values: values(b.values),
            })
            .collect::<Vec<_>>()
    };
    MetricResult {
        metric: MetricDefinition(r.def),
        aggregations: r.aggregations.iter().map(|&a| a.into()).collect(),
        start: r.start,
        end: r.end,
        timezone: r.timezone.name().to_string(),
        granularity: r.granularity.map(Into::into),
        values: values(r.values),
        series: series(r.series),
        groups: r
            .groups
            .into_iter()
            .map(|g| MetricGroup {
                keys: g
                    .keys
                    .iter()
                    .map(|(d, v)| MetricGroupKey {
                        dimension: (*d).into(),
                        value: v.as_ref().map(|v| key_string(*d, v)),
                    })
                    .collect(),
                values: values(g.values),
                series: series(g.series),
            })
            .collect(),
        source: r.source.into(),
    }
}

fn filter(input: FilterInput) -> AppResult<Filter> {
    let dimension: Dimension = input.dimension.into();
    let mut values = Vec::with_capacity(input.values.len());
    for raw in input.values {
        let value = match dimension {
            Dimension::ChannelType => {
                crate::channels::ChannelType::parse(&raw).ok_or_else(|| {
                    AppError::BadUserInput(format!(
                        "{raw:?} is not a channel type (EMAIL, SMS, WHATSAPP, MESSENGER, CHAT, \
                         VOICE, VIDEO)"
                    ))
                })?;
                DimValue::Name(raw)
            }
            Dimension::Direction => {
                if raw != "INBOUND" && raw != "OUTBOUND" {
                    return Err(AppError::BadUserInput(format!(
                        "{raw:?} is not a direction (INBOUND, OUTBOUND)"
                    )));
                }
                DimValue::Name(raw)
            }
            d => DimValue::Id(decode_id(&raw, d.type_name().unwrap_or_default())?),
        };
        values.push(value);
    }
    Ok(Filter { dimension, values })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    ctx: &Context<'_>,
    ids: Vec<String>,
    period: PeriodInput,
    timezone: Option<String>,
    granularity: Option<GranularityGql>,
    filters: Option<Vec<FilterInput>>,
    group_by: Option<Vec<MetricDimension>>,
    aggregations: Option<Vec<MetricAggregation>>,
) -> async_graphql::Result<Vec<MetricResult>> {
    let app = ctx.app();
    let principal = app.principal()?;
    principal.require(Permission::ManageRouting)?;
    let timezone = match timezone {
        Some(tz) => tz,
        None => app
            .load::<entity::organization::Entity>(principal.org_id)
            .await?
            .map(|o| o.timezone)
            .unwrap_or_else(|| "UTC".into()),
    };
    let q = MetricQuery {
        ids,
        period: match period {
            PeriodInput::Preset(p) => Period::Preset(p.into()),
            PeriodInput::Interval(i) => Period::Interval {
                start: i.start,
                end: i.end,
            },
        },
        timezone,
        granularity: granularity.map(Into::into),
        filters: filters
            .unwrap_or_default()
            .into_iter()
            .map(filter)
            .collect::<AppResult<_>>()?,
        group_by: group_by
            .unwrap_or_default()
            .into_iter()
            .map(Into::into)
            .collect(),
        aggregations: aggregations.map(|a| a.into_iter().map(Into::into).collect()),
    };
    let config = &app.state.config;
    let limits = Limits {
        max_interval_days: config.metrics_max_interval_days,
        max_buckets: config.metrics_max_buckets,
        max_groups: config.metrics_max_groups,
    };
    let now = app.state.clock.now();
    let results = query::run(app.db(), principal.org_id, now, limits, &q).await?;
    Ok(results.into_iter().map(result).collect())
}

/// Metric queries.
#[derive(Default)]
pub struct MetricsQuery;

/// Metrics: the catalog and the query (TEAM_LEAD and above).
#[Object]
impl MetricsQuery {
    /// Every metric of the catalog.
    async fn metric_definitions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<MetricDefinition>> {
        ctx.app().principal()?.require(Permission::ManageRouting)?;
        Ok(catalog::CATALOG.iter().map(MetricDefinition).collect())
    }

    /// One metric over a period: aggregates, a time series and groups. Bad input (an unknown
    /// metric, an aggregation or dimension it doesn't have, a bad period or timezone, too many
    /// buckets or groups) is a `BAD_USER_INPUT` error naming the problem.
    #[allow(clippy::too_many_arguments)]
    async fn metric(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Metric id (see `metricDefinitions`).")] id: String,
        #[graphql(desc = "The period: a preset or an interval.")] period: PeriodInput,
        #[graphql(
            desc = "IANA timezone the period and buckets align to; the organization's when omitted."
        )]
        timezone: Option<String>,
        #[graphql(desc = "Time series granularity; no series when omitted.")] granularity: Option<
            GranularityGql,
        >,
        #[graphql(desc = "Filters, all of which must hold.")] filters: Option<Vec<FilterInput>>,
        #[graphql(desc = "Dimensions to group by (each group gets its own series).")]
        group_by: Option<Vec<MetricDimension>>,
        #[graphql(desc = "Aggregations to compute; the metric's defaults when omitted.")]
        aggregations: Option<Vec<MetricAggregation>>,
    ) -> async_graphql::Result<MetricResult> {
        let mut results = run(
            ctx,
            vec![id],
            period,
            timezone,
            granularity,
            filters,
            group_by,
            aggregations,
        )
        .await?;
        results
            .pop()
            .ok_or_else(|| AppError::internal("metric query returned nothing").into())
    }

    /// Several metrics over the same period, filters and groups, computed together (one SQL
    /// statement for all of them, plus one per level of percentiles when asked).
    #[allow(clippy::too_many_arguments)]
    async fn metrics(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Metric ids (see `metricDefinitions`).")] ids: Vec<String>,
        #[graphql(desc = "The period: a preset or an interval.")] period: PeriodInput,
        #[graphql(
            desc = "IANA timezone the period and buckets align to; the organization's when omitted."
        )]
        timezone: Option<String>,
        #[graphql(desc = "Time series granularity; no series when omitted.")] granularity: Option<
            GranularityGql,
        >,
        #[graphql(desc = "Filters, all of which must hold.")] filters: Option<Vec<FilterInput>>,
        #[graphql(desc = "Dimensions to group by (each group gets its own series).")]
        group_by: Option<Vec<MetricDimension>>,
        #[graphql(
            desc = "Aggregations to compute (each metric must support them); each metric's defaults when omitted."
        )]
        aggregations: Option<Vec<MetricAggregation>>,
    ) -> async_graphql::Result<Vec<MetricResult>> {
        if ids.len() > 20 {
            return Err(AppError::BadUserInput("metrics takes at most 20 ids".into()).into());
        }
        run(
            ctx,
            ids,
            period,
            timezone,
            granularity,
            filters,
            group_by,
            aggregations,
        )
        .await
    }
}

/// Inbound and outbound message counts per conversation, batched across a page of records.
pub struct RecordMessageCounts {
    db: sea_orm::DatabaseConnection,
    org_id: uuid::Uuid,
}

impl crate::graphql::context::ScopedLoader for RecordMessageCounts {
    fn new(db: sea_orm::DatabaseConnection, org_id: uuid::Uuid) -> Self {
        Self { db, org_id }
    }
}

impl async_graphql::dataloader::Loader<uuid::Uuid> for RecordMessageCounts {
    type Value = (i64, i64);
    type Error = AppError;

    async fn load(
        &self,
        keys: &[uuid::Uuid],
    ) -> Result<std::collections::HashMap<uuid::Uuid, (i64, i64)>, AppError> {
        super::records::message_counts(&self.db, self.org_id, keys).await
    }
}

fn seconds_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<f64> {
    match (from, to) {
        (Some(f), Some(t)) if t >= f => Some((t - f).num_milliseconds() as f64 / 1000.0),
        _ => None,
    }
}

/// One conversation's analytics record.
pub struct AnalyticsRecord(pub entity::conversation::Model);

impl AnalyticsRecord {
    async fn counts(&self, ctx: &Context<'_>) -> async_graphql::Result<(i64, i64)> {
        Ok(ctx
            .app()
            .loader::<RecordMessageCounts>()?
            .load_one(self.0.id)
            .await?
            .unwrap_or((0, 0)))
    }
}

/// One conversation's analytics record (Dixa's records): where it came in, who had it, and its
/// timings and counts. Channel, queue, assignee, tags and rating are on `conversation`.
#[Object]
impl AnalyticsRecord {
    /// The conversation (channel, queue, assignee, tags, rating, …).
    async fn conversation(&self) -> crate::conversations::graphql::Conversation {
        crate::conversations::graphql::Conversation(self.0.clone())
    }

    /// The conversation's channel type.
    async fn channel_type(&self) -> Option<crate::channels::graphql::ChannelTypeGql> {
        crate::channels::ChannelType::parse(&self.0.channel_type).map(Into::into)
    }

    /// `INBOUND` or `OUTBOUND`.
    async fn direction(&self) -> &str {
        &self.0.direction
    }

    /// `OPEN`, `PENDING` or `CLOSED`.
    async fn status(&self) -> &str {
        &self.0.status
    }

    /// When it was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When a person first replied (inbound conversations).
    async fn first_response_at(&self) -> Option<DateTime<Utc>> {
        self.0.first_response_at
    }

    /// Seconds from creation to the first reply by a person.
    async fn first_response_seconds(&self) -> Option<f64> {
        seconds_between(Some(self.0.created_at), self.0.first_response_at)
    }

    /// When it was (last) closed; null while open.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.0.closed_at
    }

    /// Seconds from creation to the close; null while open.
    async fn resolution_seconds(&self) -> Option<f64> {
        seconds_between(Some(self.0.created_at), self.0.closed_at)
    }

    /// Seconds it waited in its queue before being assigned; null when it was never queued or
    /// is still waiting.
    async fn wait_seconds(&self) -> Option<f64> {
        seconds_between(self.0.queued_at, self.0.assigned_at)
    }

    /// Seconds from its assignment to its close (handling time); null when not both.
    async fn handling_seconds(&self) -> Option<f64> {
        seconds_between(self.0.assigned_at, self.0.closed_at)
    }

    /// Messages from contacts (removed messages excluded).
    async fn messages_inbound(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.counts(ctx).await?.0)
    }

    /// Messages to contacts (removed messages excluded).
    async fn messages_outbound(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(self.counts(ctx).await?.1)
    }

    /// The rating's score: CSAT 1–5, or thumbs 1 (up) / 0 (down).
    async fn rating_score(&self) -> Option<i32> {
        self.0.rating_score
    }
}

/// Which analytics records to list.
#[derive(InputObject, Default)]
pub struct AnalyticsRecordFilterInput {
    /// Created in this period (in `timezone`).
    pub period: Option<PeriodInput>,
    /// IANA timezone of `period`; the organization's when omitted.
    pub timezone: Option<String>,
    /// Any of these channels.
    pub channel_ids: Option<Vec<async_graphql::ID>>,
    /// Any of these channel types.
    pub channel_types: Option<Vec<crate::channels::graphql::ChannelTypeGql>>,
    /// Any of these queues.
    pub queue_ids: Option<Vec<async_graphql::ID>>,
    /// Assigned to any of these users.
    pub assignee_ids: Option<Vec<async_graphql::ID>>,
    /// Assigned to a member of any of these teams.
    pub team_ids: Option<Vec<async_graphql::ID>>,
    /// With any of these tags.
    pub tag_ids: Option<Vec<async_graphql::ID>>,
    /// `INBOUND` or `OUTBOUND`.
    pub direction: Option<crate::conversations::graphql::ConversationDirection>,
    /// Any of these statuses.
    pub statuses: Option<Vec<crate::conversations::graphql::ConversationStatusGql>>,
    /// Rated (true) or not (false).
    pub rated: Option<bool>,
}

fn ids_of(
    ids: Option<Vec<async_graphql::ID>>,
    type_name: &str,
) -> AppResult<Option<Vec<uuid::Uuid>>> {
    ids.map(|ids| ids.iter().map(|id| decode_id(id, type_name)).collect())
        .transpose()
}

/// A queue's unread counts.
#[derive(SimpleObject)]
pub struct QueueUnreadCount {
    /// The queue.
    queue: crate::queues::graphql::Queue,
    /// Unassigned open conversations in it with messages the caller hasn't read.
    conversations: i64,
    /// Messages in them the caller hasn't read.
    messages: i64,
}

/// The caller's unread (badge) counts.
#[derive(SimpleObject)]
pub struct UnreadCounts {
    /// Conversations with unread messages: the caller's own plus the unassigned ones in their
    /// queues (the badge number).
    total: i64,
    /// Open conversations assigned to the caller with unread messages.
    mine: i64,
    /// Unread messages in them.
    mine_messages: i64,
    /// Per queue the caller is a member of: unassigned open conversations with unread messages.
    queues: Vec<QueueUnreadCount>,
}

/// Open conversations of one queue and status.
#[derive(SimpleObject)]
pub struct OpenConversationCount {
    /// The queue; null for conversations in no queue.
    queue: Option<crate::queues::graphql::Queue>,
    /// `OPEN` or `PENDING`.
    status: String,
    /// How many.
    count: i64,
}

/// A contact's communication on one channel type.
#[derive(SimpleObject)]
pub struct ChannelCommunication {
    /// The channel type.
    channel_type: Option<crate::channels::graphql::ChannelTypeGql>,
    /// Conversations with the contact as requester.
    conversations: i64,
    /// Messages from the contact.
    messages_inbound: i64,
    /// Messages to the contact.
    messages_outbound: i64,
}

/// A contact's communication summary.
#[derive(SimpleObject)]
pub struct CommunicationSummary {
    /// Per channel type.
    channels: Vec<ChannelCommunication>,
    /// Conversations in all.
    conversations: i64,
    /// When the first conversation started.
    first_contact_at: Option<DateTime<Utc>>,
    /// When the last message was written.
    last_contact_at: Option<DateTime<Utc>>,
    /// The last message, either way.
    last_message: Option<crate::messages::graphql::Message>,
}

/// Analytics records and counters.
#[derive(Default)]
pub struct MetricsCountersQuery;

/// Analytics records (TEAM_LEAD and above) and counters (the caller's own: AGENT and above).
#[Object]
impl MetricsCountersQuery {
    /// One analytics record per conversation, newest first.
    async fn analytics_records(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Only records matching this filter.")] filter: Option<
            AnalyticsRecordFilterInput,
        >,
        #[graphql(desc = "Items after this cursor.")] after: Option<String>,
        #[graphql(desc = "Items before this cursor.")] before: Option<String>,
        #[graphql(desc = "The first N items (1-100).")] first: Option<i32>,
        #[graphql(desc = "The last N items (1-100).")] last: Option<i32>,
    ) -> async_graphql::Result<crate::graphql::relay::Connection<AnalyticsRecord>> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::ManageRouting)?;
        let f = filter.unwrap_or_default();
        let (created_from, created_to) = match f.period {
            Some(period) => {
                let tz = match f.timezone {
                    Some(tz) => tz,
                    None => app
                        .load::<entity::organization::Entity>(principal.org_id)
                        .await?
                        .map(|o| o.timezone)
                        .unwrap_or_else(|| "UTC".into()),
                };
                let tz = query::timezone(&tz)?;
                let period = match period {
                    PeriodInput::Preset(p) => Period::Preset(p.into()),
                    PeriodInput::Interval(i) => {
                        if i.end <= i.start {
                            return Err(AppError::BadUserInput(
                                "the period's end must be after its start".into(),
                            )
                            .into());
                        }
                        Period::Interval {
                            start: i.start,
                            end: i.end,
                        }
                    }
                };
                let (s, e) = query::resolve(period, tz, app.state.clock.now());
                (Some(s), Some(e))
            }
            None => (None, None),
        };
        let filter = super::records::RecordFilter {
            created_from,
            created_to,
            channel_ids: ids_of(f.channel_ids, "Channel")?,
            channel_types: f.channel_types.map(|t| {
                t.into_iter()
                    .map(|t| crate::channels::ChannelType::from(t).as_str().to_string())
                    .collect()
            }),
            queue_ids: ids_of(f.queue_ids, "Queue")?,
            assignee_ids: ids_of(f.assignee_ids, "User")?,
            team_ids: ids_of(f.team_ids, "Team")?,
            tag_ids: ids_of(f.tag_ids, "Tag")?,
            direction: f.direction.map(|d| {
                if d == crate::conversations::graphql::ConversationDirection::Outbound {
                    "OUTBOUND".to_string()
                } else {
                    "INBOUND".to_string()
                }
            }),
            statuses: f.statuses.map(|s| {
                s.into_iter()
                    .map(|s| {
                        crate::conversations::service::Status::from(s)
                            .as_str()
                            .to_string()
                    })
                    .collect()
            }),
            rated: f.rated,
        };
        let (page, total) = super::records::list(
            app.db(),
            principal,
            filter,
            &crate::graphql::relay::PageArgs {
                after,
                before,
                first,
                last,
            },
        )
        .await?;
        Ok(crate::graphql::relay::Connection::new(
            page.map(AnalyticsRecord),
            total,
        ))
    }

    /// The caller's unread (badge) counts, in one statement.
    async fn my_unread_counts(&self, ctx: &Context<'_>) -> async_graphql::Result<UnreadCounts> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::WorkConversations)?;
        let badge = super::counters::badge(app.db(), principal.org_id, principal.user_id()).await?;
        let queues = app
            .loader::<crate::graphql::context::ById<entity::queue::Entity>>()?
            .load_many(badge.queues.iter().map(|(q, _)| *q))
            .await?;
        let queues: Vec<QueueUnreadCount> = badge
            .queues
            .iter()
            .filter_map(|(q, u)| {
                queues.get(q).map(|m| QueueUnreadCount {
                    queue: crate::queues::graphql::Queue(m.clone()),
                    conversations: u.conversations,
                    messages: u.messages,
                })
            })
            .collect();
        Ok(UnreadCounts {
            total: badge.mine.conversations + queues.iter().map(|q| q.conversations).sum::<i64>(),
            mine: badge.mine.conversations,
            mine_messages: badge.mine.messages,
            queues,
        })
    }

    /// Open and pending conversations per queue and status, in one statement.
    async fn open_conversation_counts(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<OpenConversationCount>> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::WorkConversations)?;
        let rows = super::counters::open_by_queue(app.db(), principal.org_id).await?;
        let queues = app
            .loader::<crate::graphql::context::ById<entity::queue::Entity>>()?
            .load_many(rows.iter().filter_map(|r| r.0))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(q, status, count)| OpenConversationCount {
                queue: q
                    .and_then(|q| queues.get(&q).cloned())
                    .map(crate::queues::graphql::Queue),
                status,
                count,
            })
            .collect())
    }

    /// A contact's communication summary: conversations and messages per channel type, first
    /// and last contact, the last message.
    async fn contact_communication_summary(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The contact's global id.")] contact_id: async_graphql::ID,
    ) -> async_graphql::Result<CommunicationSummary> {
        let app = ctx.app();
        let principal = app.principal()?;
        principal.require(Permission::WorkConversations)?;
        let id = decode_id(&contact_id, "Contact")?;
        if app.load::<entity::contact::Entity>(id).await?.is_none() {
            return Err(AppError::NotFound("contact".into()).into());
        }
        let s = super::counters::contact_summary(app.db(), principal.org_id, id).await?;
        Ok(CommunicationSummary {
            conversations: s.channels.iter().map(|c| c.conversations).sum(),
            channels: s
                .channels
                .into_iter()
                .map(|c| ChannelCommunication {
                    channel_type: crate::channels::ChannelType::parse(&c.channel_type)
                        .map(Into::into),
                    conversations: c.conversations,
                    messages_inbound: c.inbound,
                    messages_outbound: c.outbound,
                })
                .collect(),
            first_contact_at: s.first_contact_at,
            last_contact_at: s.last_message.as_ref().map(|m| m.created_at),
            last_message: s.last_message.map(crate::messages::graphql::Message),
        })
    }
}
