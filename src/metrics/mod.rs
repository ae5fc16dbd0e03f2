//! Metrics: a catalog of metric definitions ([`catalog`]), one query over them (aggregates, a
//! time series in any IANA timezone, groups; [`query`]), one analytics record per conversation
//! ([`records`]) and cheap counters for every page load ([`counters`]).
//!
//! How the numbers are kept: every measured occurrence (a conversation created, a first response,
//! a rating, a call ended…) is written as a *fact* (`metric_facts`: metric, time, dimensions,
//! value) and added to hourly *rollups* (`metric_rollups`: count, sum, sum of squares, min, max
//! per UTC hour and dimension tuple, at six grains) by [`rollup::on_event`], which
//! [`crate::events::record`] calls in the transaction of the change. Dimensions are the values
//! when the occurrence happened (the queue a conversation was in when it was closed, the user who
//! replied first).
//!
//! Queries read rollups whenever they can answer exactly: no percentile asked, no tag filter or
//! grouping, a timezone whose offsets over the period are whole hours, and a period on whole UTC
//! hours. Hours are regrouped into local days, weeks (Monday first) and months in SQL with the
//! zone's offsets over the period, so daylight-saving changes come out right. Anything else is
//! computed from the facts, exactly, in SQL (percentiles are nearest-rank: the smallest value
//! with at least p % of the values at or below it).

pub mod catalog;
pub mod counters;
pub mod graphql;
pub mod query;
pub mod records;
pub mod rollup;
mod sql;
