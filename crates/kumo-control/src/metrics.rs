//! CloudWatch metrics: PutMetricData, GetMetricStatistics, GetMetricData and ListMetrics on
//! the stored series ([`crate::records::metric`]), with AWS's checks and messages; and
//! [`record`], through which the sampler ([`crate::flows::metrics`]) publishes `AWS/EC2`.
//!
//! Retention: every data point is kept at the resolution it arrived in (one second or one
//! minute) for 15 days, then dropped (the series' oldest hours go as it gets new data; a read
//! never looks further back). AWS keeps 60-second data for 15 days too, and rolls older data
//! up into 5-minute and 1-hour points for 63 and 455 days, which Kumo does not. As AWS does,
//! a query whose period does not suit its start's age gets no data points: under 60 seconds
//! beyond 3 hours, and not a multiple of 300 beyond 15 days.

use crate::core::error::Fail;
use crate::records::metric::{MetricBlock, MetricSeries};
use crate::Kumo;
use kumo_model::metrics::{periods, Expr, Series, Stat, Statistic, Value};
use kumo_store::{Query, Read, Scope, Tx};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The most time series one expression may read (ids and `METRICS()` together), as a
/// request holds at most 500 queries.
const MAX_READS: usize = 500;

/// Data points are kept this long (hours).
pub const RETAIN_HOURS: i64 = 15 * 24;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// CloudWatch's units.
pub const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// A CloudWatch error: its query-protocol code (`InvalidParameterValue`, …) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct CwError {
    pub code: &'static str,
    pub message: String,
}

fn invalid(m: impl Into<String>) -> CwError {
    CwError {
        code: "InvalidParameterValue",
        message: m.into(),
    }
}

fn combination(m: impl Into<String>) -> CwError {
    CwError {
        code: "InvalidParameterCombination",
        message: m.into(),
    }
}

fn validation(m: impl Into<String>) -> CwError {
    CwError {
        code: "ValidationError",
        message: m.into(),
    }
}

impl From<Fail> for CwError {
    fn from(f: Fail) -> CwError {
        tracing::error!(error = %f.0, "CloudWatch: store error");
        CwError {
            code: "InternalServiceError",
            message: "An internal error occurred.".into(),
        }
    }
}

impl From<kumo_store::StoreError> for CwError {
    fn from(e: kumo_store::StoreError) -> CwError {
        CwError::from(Fail::from(e))
    }
}

/// A series: its metric name and its dimensions, sorted.
type SeriesKey = (String, Vec<(String, String)>);

/// A metric's dimension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

/// One `MetricDatum`.
#[derive(Debug, Clone, Default)]
pub struct Datum {
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub timestamp_ms: Option<i64>,
    pub value: Option<f64>,
    /// `StatisticValues`: sample count, sum, minimum, maximum.
    pub statistic_values: Option<(f64, f64, f64, f64)>,
    pub values: Vec<f64>,
    pub counts: Vec<f64>,
    pub unit: Option<String>,
    pub storage_resolution: Option<i64>,
}

/// A metric: namespace, name, dimensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
}

/// GetMetricStatistics' input.
#[derive(Debug, Clone)]
pub struct StatisticsQuery {
    pub metric: Metric,
    pub start_ms: i64,
    pub end_ms: i64,
    pub period: i64,
    pub statistics: Vec<String>,
    pub extended_statistics: Vec<String>,
    pub unit: Option<String>,
}

/// One of GetMetricStatistics' data points.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    pub timestamp_ms: i64,
    pub unit: String,
    /// (statistic, value) for the plain statistics asked.
    pub values: Vec<(String, f64)>,
    /// (percentile, value) for those the data can answer.
    pub extended: Vec<(String, f64)>,
}

/// One `MetricDataQuery`.
#[derive(Debug, Clone, Default)]
pub struct DataQuery {
    pub id: String,
    pub metric_stat: Option<MetricStat>,
    pub expression: Option<String>,
    pub label: Option<String>,
    pub return_data: Option<bool>,
    pub period: Option<i64>,
}

/// A `MetricStat`.
#[derive(Debug, Clone)]
pub struct MetricStat {
    pub metric: Metric,
    pub period: i64,
    pub stat: String,
    pub unit: Option<String>,
}

/// GetMetricData's input.
#[derive(Debug, Clone, Default)]
pub struct DataRequest {
    pub queries: Vec<DataQuery>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub next_token: Option<String>,
    pub scan_by: Option<String>,
    pub max_datapoints: Option<i64>,
}

/// One `MetricDataResult`.
#[derive(Debug, Clone, PartialEq)]
pub struct DataResult {
    pub id: String,
    pub label: String,
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
    pub status_code: &'static str,
}

/// ListMetrics' input.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    /// Name, and the value to match (any value when `None`).
    pub dimensions: Vec<(String, Option<String>)>,
    pub recently_active: Option<String>,
    pub next_token: Option<String>,
}

/// A series' id: its namespace, then a digest of its name and dimensions (sorted by name).
pub fn series_id(namespace: &str, metric_name: &str, dims: &[(String, String)]) -> String {
    let mut key = Vec::new();
    key.extend_from_slice(metric_name.as_bytes());
    for (n, v) in dims {
        key.push(0);
        key.extend_from_slice(n.as_bytes());
        key.push(1);
        key.extend_from_slice(v.as_bytes());
    }
    let digest: String = openssl::hash::hash(openssl::hash::MessageDigest::sha256(), &key)
        .map(|d| d.iter().take(16).map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default();
    format!("{namespace}|{digest}")
}

fn sorted(dims: &[Dimension]) -> Vec<(String, String)> {
    let mut d: Vec<(String, String)> = dims
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    d.sort();
    d
}

/// Stores data points of one series (time in seconds, unit, statistic set), creating the
/// series on its first point, and drops the series' hours past retention.
pub fn record(
    tx: &Tx,
    s: Scope,
    namespace: &str,
    metric_name: &str,
    dims: &[(String, String)],
    points: &[(i64, &str, Stat)],
    now_ms: i64,
) -> Result<(), Fail> {
    let id = series_id(namespace, metric_name, dims);
    let oldest = now_ms.div_euclid(HOUR_MS) - RETAIN_HOURS;
    let mut series = match tx.get::<MetricSeries>(s, &id)? {
        Some(r) => r,
        None => {
            let r = MetricSeries {
                id: id.clone(),
                namespace: namespace.to_string(),
                metric_name: metric_name.to_string(),
                dimensions: dims.to_vec(),
                first_hour: oldest.max(points.iter().map(|p| p.0 / 3600).min().unwrap_or(0)),
                last_ms: now_ms,
            };
            tx.insert(s, &r)?;
            r
        }
    };
    let mut blocks: BTreeMap<i64, MetricBlock> = BTreeMap::new();
    for (t, unit, stat) in points {
        let hour = t.div_euclid(3600);
        let b = match blocks.entry(hour) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let bid = MetricBlock::id_of(&id, hour);
                let b = tx.get::<MetricBlock>(s, &bid)?.unwrap_or(MetricBlock {
                    id: bid,
                    points: Vec::new(),
                });
                e.insert(b)
            }
        };
        b.add(*t, unit, stat);
    }
    for (hour, b) in &blocks {
        if !tx.update(s, b)? {
            tx.insert(s, b)?;
        }
        series.first_hour = series.first_hour.min(*hour);
    }
    // Retention: the hours that fell out of it since the last write.
    if series.first_hour < oldest {
        for hour in series.first_hour.max(oldest - 24 * 365)..oldest {
            tx.delete::<MetricBlock>(s, &MetricBlock::id_of(&id, hour))?;
        }
        series.first_hour = oldest;
    }
    series.last_ms = now_ms;
    tx.update(s, &series)?;
    Ok(())
}

/// The points of a series from `start` to `end` (seconds), within retention.
fn points_of<V: Read>(
    v: &V,
    s: Scope,
    id: &str,
    start: i64,
    end: i64,
    now_ms: i64,
) -> Result<Vec<(i64, String, Stat)>, Fail> {
    let oldest = now_ms.div_euclid(HOUR_MS) - RETAIN_HOURS;
    let first = start.div_euclid(3600).max(oldest);
    let last = (end - 1)
        .div_euclid(3600)
        .min(now_ms.div_euclid(HOUR_MS) + 3);
    if first > last {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = (first..=last).map(|h| MetricBlock::id_of(id, h)).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let blocks = v.list::<MetricBlock>(
        s,
        &Query {
            ids: Some(&refs),
            ..Default::default()
        },
    )?;
    Ok(blocks
        .into_iter()
        .flat_map(|b| b.points)
        .filter(|p| p.t >= start && p.t < end)
        .map(|p| (p.t, p.unit, p.stat))
        .collect())
}

fn check_unit(unit: &str, param: &str) -> Result<(), CwError> {
    if UNITS.contains(&unit) {
        return Ok(());
    }
    Err(invalid(format!(
        "The parameter {param} must be a value in the set [ {} ].",
        UNITS.join(", ")
    )))
}

/// A value CloudWatch accepts: finite, and 0 or between 2^-360 and 2^360 in magnitude.
fn check_value(v: f64, param: &str) -> Result<(), CwError> {
    let m = v.abs();
    if v.is_finite() && (m == 0.0 || (m >= 2f64.powi(-360) && m <= 2f64.powi(360))) {
        return Ok(());
    }
    let shown = if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        v.to_string()
    };
    Err(invalid(format!(
        "The value {shown} for parameter {param} is invalid."
    )))
}

fn check_dimensions(dims: &[Dimension], at: &str) -> Result<(), CwError> {
    if dims.len() > 30 {
        return Err(invalid(format!(
            "The collection {at}Dimensions must not have a size greater than 30."
        )));
    }
    let mut seen = HashSet::new();
    for (j, d) in dims.iter().enumerate() {
        let p = format!("{at}Dimensions.member.{}", j + 1);
        for (what, text, max) in [("Name", &d.name, 255), ("Value", &d.value, 1024)] {
            if text.is_empty() {
                return Err(invalid(format!(
                    "The parameter {p}.{what} must be longer than 0 characters."
                )));
            }
            if text.chars().count() > max {
                return Err(invalid(format!(
                    "The parameter {p}.{what} must be shorter than {} characters.",
                    max + 1
                )));
            }
            if !text.is_ascii() {
                return Err(invalid(format!(
                    "The value for parameter {p}.{what} contains non-ASCII characters."
                )));
            }
        }
        if !seen.insert(d.name.as_str()) {
            return Err(invalid(format!(
                "The parameter {p}.Name has a duplicate value: {}.",
                d.name
            )));
        }
    }
    Ok(())
}

fn check_namespace(ns: &str) -> Result<(), CwError> {
    if ns.is_empty() || ns.chars().count() > 255 || ns.contains(':') || !ns.is_ascii() {
        return Err(invalid(format!(
            "The value {ns} for parameter Namespace is invalid."
        )));
    }
    Ok(())
}

/// A period AWS accepts: 1, 5, 10, 20 or 30 seconds (high resolution), or a multiple of 60.
fn period_ok(p: i64) -> bool {
    p > 0 && (matches!(p, 1 | 5 | 10 | 20 | 30) || p % 60 == 0)
}

/// Whether a period can read data that starts at `start_ms`, by AWS's retention tiers.
fn period_reaches(period: i64, start_ms: i64, now_ms: i64) -> bool {
    let age = now_ms - start_ms;
    !(age > 3 * HOUR_MS && period % 60 != 0
        || age > 15 * DAY_MS && period % 300 != 0
        || age > 63 * DAY_MS && period % 3600 != 0)
}

/// A period's first second: the start rounded down to the minute (or to the second for
/// high-resolution periods).
fn aligned(start_ms: i64, period: i64) -> i64 {
    let s = start_ms.div_euclid(1000);
    if period % 60 == 0 {
        s.div_euclid(60) * 60
    } else {
        s
    }
}

impl Kumo {
    /// PutMetricData.
    pub fn cw_put_metric_data(
        &self,
        account: &str,
        region: &str,
        namespace: &str,
        data: Vec<Datum>,
    ) -> Result<(), CwError> {
        if namespace.starts_with("AWS/") {
            return Err(invalid(format!(
                "The value {namespace} for parameter Namespace is invalid."
            )));
        }
        check_namespace(namespace)?;
        if data.is_empty() {
            return Err(CwError {
                code: "MissingParameter",
                message: "The parameter MetricData is required.".into(),
            });
        }
        if data.len() > 1000 {
            return Err(invalid(
                "The collection MetricData must not have a size greater than 1000.",
            ));
        }
        let now = self.now_ms();
        let mut by_series: HashMap<SeriesKey, Vec<(i64, &str, Stat)>> = HashMap::new();
        for (i, d) in data.iter().enumerate() {
            let at = format!("MetricData.member.{}.", i + 1);
            if d.metric_name.is_empty() || d.metric_name.chars().count() > 255 {
                return Err(invalid(format!(
                    "The parameter {at}MetricName must be shorter than 256 characters."
                )));
            }
            check_dimensions(&d.dimensions, &at)?;
            if d.value.is_some() && !d.values.is_empty() {
                return Err(combination(format!("The parameters {at}Value and {at}Values are mutually exclusive and you have specified both.")));
            }
            if d.value.is_some() && d.statistic_values.is_some() {
                return Err(combination(format!("The parameters {at}Value and {at}StatisticValues are mutually exclusive and you have specified both.")));
            }
            if d.value.is_none() && d.values.is_empty() && d.statistic_values.is_none() {
                return Err(combination(format!("At least one of the parameters {at}Value and {at}StatisticValues must be specified.")));
            }
            if !d.counts.is_empty() && d.counts.len() != d.values.len() {
                return Err(invalid(format!(
                    "The parameters {at}Values and {at}Counts must be of the same size."
                )));
            }
            if d.values.len() > 150 {
                return Err(invalid(format!(
                    "The collection {at}Values must not have a size greater than 150."
                )));
            }
            let unit = d.unit.as_deref().unwrap_or("None");
            check_unit(unit, &format!("{at}Unit"))?;
            let resolution = d.storage_resolution.unwrap_or(60);
            if resolution != 1 && resolution != 60 {
                return Err(invalid(format!(
                    "The parameter {at}StorageResolution must be a value in the set [ 1, 60 ]."
                )));
            }
            let t_ms = d.timestamp_ms.unwrap_or(now);
            if t_ms < now - 14 * DAY_MS || t_ms > now + 2 * HOUR_MS {
                return Err(invalid(format!(
                    "The parameter {at}Timestamp must specify a time within the past two weeks."
                )));
            }
            let mut stat: Option<Stat> = None;
            let mut add = |s: Stat| match &mut stat {
                Some(x) => x.merge(&s),
                None => stat = Some(s),
            };
            if let Some(v) = d.value {
                check_value(v, &format!("{at}Value"))?;
                add(Stat::value(v, 1.0));
            }
            for (j, v) in d.values.iter().enumerate() {
                check_value(*v, &format!("{at}Values.member.{}", j + 1))?;
                let c = d.counts.get(j).copied().unwrap_or(1.0);
                if !(c.is_finite() && c > 0.0) {
                    return Err(invalid(format!(
                        "The parameter {at}Counts.member.{} must be greater than 0.",
                        j + 1
                    )));
                }
                add(Stat::value(*v, c));
            }
            if let Some((n, sum, min, max)) = d.statistic_values {
                let sv = format!("{at}StatisticValues.");
                for (name, v) in [
                    ("SampleCount", n),
                    ("Sum", sum),
                    ("Minimum", min),
                    ("Maximum", max),
                ] {
                    check_value(v, &format!("{sv}{name}"))?;
                }
                if n <= 0.0 {
                    return Err(invalid(format!(
                        "The parameter {sv}SampleCount must be greater than 0."
                    )));
                }
                if max < min {
                    return Err(invalid(format!(
                        "The parameter {sv}Maximum must be greater than {sv}Minimum."
                    )));
                }
                add(Stat::set(n, sum, min, max));
            }
            let Some(stat) = stat else { continue };
            let secs = t_ms.div_euclid(1000);
            let t = if resolution == 60 {
                secs.div_euclid(60) * 60
            } else {
                secs
            };
            by_series
                .entry((d.metric_name.clone(), sorted(&d.dimensions)))
                .or_default()
                .push((t, unit, stat));
        }
        let s = Scope { account, region };
        self.store.write(true, |tx| {
            for ((name, dims), points) in &by_series {
                record(tx, s, namespace, name, dims, points, now)?;
            }
            Ok::<_, Fail>(())
        })?;
        Ok(())
    }

    /// GetMetricStatistics.
    pub fn cw_get_metric_statistics(
        &self,
        account: &str,
        region: &str,
        q: StatisticsQuery,
    ) -> Result<(String, Vec<Datapoint>), CwError> {
        check_dimensions(&q.metric.dimensions, "")?;
        if !period_ok(q.period) {
            return Err(invalid("The parameter Period must be a multiple of 60."));
        }
        if q.start_ms == q.end_ms {
            return Err(invalid(
                "The parameter StartTime must not equal parameter EndTime.",
            ));
        }
        if q.start_ms > q.end_ms {
            return Err(invalid(
                "The parameter StartTime must be less than the parameter EndTime.",
            ));
        }
        if q.statistics.is_empty() == q.extended_statistics.is_empty() {
            return Err(combination(
                "Must specify either Statistics or ExtendedStatistics, but not both.",
            ));
        }
        let mut stats = Vec::new();
        for (i, s) in q.statistics.iter().enumerate() {
            match Statistic::plain(s) {
                Some(st) => stats.push((s.clone(), st)),
                None => return Err(invalid(format!("The parameter Statistics.member.{}.<list element> must be a value in the set [SampleCount, Average, Sum, Minimum, Maximum].", i + 1))),
            }
        }
        let mut extended = Vec::new();
        for (i, s) in q.extended_statistics.iter().enumerate() {
            match Statistic::percentile(s) {
                Some(st) => extended.push((s.clone(), st)),
                None => {
                    return Err(invalid(format!(
                        "The value {s} for parameter ExtendedStatistics.member.{} is not a valid percentile.",
                        i + 1
                    )))
                }
            }
        }
        if let Some(u) = &q.unit {
            check_unit(u, "Unit")?;
        }
        let start = aligned(q.start_ms, q.period);
        let end = q.end_ms.div_euclid(1000) + i64::from(q.end_ms.rem_euclid(1000) != 0);
        // Counted on the times as given, before the start is rounded down.
        let span_ms = q.end_ms - q.start_ms;
        let wanted = (span_ms + q.period * 1000 - 1) / (q.period * 1000);
        if wanted > 1440 {
            return Err(combination(format!("You have requested up to {wanted} datapoints, which exceeds the limit of 1440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.")));
        }
        let label = q.metric.metric_name.clone();
        let now = self.now_ms();
        if !period_reaches(q.period, q.start_ms, now) {
            return Ok((label, Vec::new()));
        }
        let s = Scope { account, region };
        let id = series_id(
            &q.metric.namespace,
            &q.metric.metric_name,
            &sorted(&q.metric.dimensions),
        );
        let points = self.store.read(|v| points_of(v, s, &id, start, end, now))?;
        let mut by_unit: BTreeMap<String, Vec<(i64, Stat)>> = BTreeMap::new();
        for (t, unit, stat) in points {
            if q.unit.as_ref().is_none_or(|u| *u == unit) {
                by_unit.entry(unit).or_default().push((t, stat));
            }
        }
        let mut out = Vec::new();
        for (unit, pts) in by_unit {
            for (t, stat) in periods(pts.iter().map(|(t, s)| (*t, s)), start, end, q.period) {
                out.push(Datapoint {
                    timestamp_ms: t * 1000,
                    unit: unit.clone(),
                    values: stats
                        .iter()
                        .filter_map(|(n, st)| stat.get(*st).map(|v| (n.clone(), v)))
                        .collect(),
                    extended: extended
                        .iter()
                        .filter_map(|(n, st)| stat.get(*st).map(|v| (n.clone(), v)))
                        .collect(),
                });
            }
        }
        out.sort_by_key(|d| d.timestamp_ms);
        Ok((label, out))
    }

    /// GetMetricData: the results and the next token.
    pub fn cw_get_metric_data(
        &self,
        account: &str,
        region: &str,
        req: DataRequest,
    ) -> Result<(Vec<DataResult>, Option<String>), CwError> {
        if req.queries.len() > 500 {
            return Err(validation(
                "The collection MetricDataQueries must not have a size greater than 500.",
            ));
        }
        if req.start_ms == req.end_ms {
            return Err(validation(
                "The parameter StartTime must not equal parameter EndTime.",
            ));
        }
        if req.start_ms > req.end_ms {
            return Err(validation(
                "The parameter EndTime must be greater than StartTime.",
            ));
        }
        let descending = match req.scan_by.as_deref() {
            None | Some("TimestampDescending") => true,
            Some("TimestampAscending") => false,
            Some(other) => {
                return Err(validation(format!("The value {other} for parameter ScanBy is not a member of [TimestampDescending, TimestampAscending].")))
            }
        };
        let max = req.max_datapoints.unwrap_or(100_800);
        if max <= 0 {
            return Err(validation(
                "The parameter MaxDatapoints must be greater than 0.",
            ));
        }
        let offset: usize = match &req.next_token {
            None => 0,
            Some(t) => t
                .strip_prefix("kumo-gmd-")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| CwError {
                    code: "InvalidNextToken",
                    message: "The service couldn't understand the next token.".into(),
                })?,
        };
        // Checks, each query in turn.
        let mut seen = HashSet::new();
        let mut exprs: HashMap<String, Expr> = HashMap::new();
        for (i, q) in req.queries.iter().enumerate() {
            let at = format!("MetricDataQueries.member.{}", i + 1);
            let id_ok = q.id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && q.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && q.id.len() <= 255;
            if !id_ok {
                return Err(validation(format!(
                    "The value {} for parameter {at}.Id is not matching the expected pattern ^[a-z][a-zA-Z0-9_]*$.",
                    q.id
                )));
            }
            if !seen.insert(q.id.as_str()) {
                return Err(validation(format!(
                    "The value {} for parameter {at}.Id is duplicated.",
                    q.id
                )));
            }
            match (&q.metric_stat, &q.expression) {
                (None, None) => {
                    return Err(validation(format!("The parameter {at}.MetricStat is required.\n")))
                }
                (Some(_), Some(_)) => {
                    return Err(validation(format!("The parameters {at}.MetricStat and {at}.Expression are mutually exclusive and you have specified both.")))
                }
                (Some(ms), None) => {
                    check_dimensions(&ms.metric.dimensions, &format!("{at}.MetricStat.Metric."))?;
                    if Statistic::parse(&ms.stat).is_none() {
                        return Err(validation(format!(
                            "The value {} for parameter {at}.MetricStat.Stat is not a valid statistic.",
                            ms.stat
                        )));
                    }
                    if !period_ok(ms.period) {
                        return Err(validation(format!(
                            "The parameter {at}.MetricStat.Period must be a multiple of 60."
                        )));
                    }
                    if let Some(u) = &ms.unit {
                        check_unit(u, &format!("{at}.MetricStat.Unit")).map_err(|e| validation(e.message))?;
                    }
                }
                (None, Some(e)) => {
                    let parsed = Expr::parse(e).map_err(|m| {
                        validation(format!("Error in expression {}: {}", q.id, m.0))
                    })?;
                    // The series it reads, each a copy: bounded as a query's metrics are.
                    let mut ids = Vec::new();
                    parsed.ids(&mut ids);
                    let metric_queries = req.queries.iter().filter(|q| q.metric_stat.is_some()).count();
                    if ids.len() + parsed.metrics_calls() * metric_queries > MAX_READS {
                        return Err(validation(format!(
                            "Error in expression {}: it reads more than {MAX_READS} time series",
                            q.id
                        )));
                    }
                    exprs.insert(q.id.clone(), parsed);
                }
            }
            if let Some(p) = q.period {
                if !period_ok(p) {
                    return Err(validation(format!(
                        "The parameter {at}.Period must be a multiple of 60."
                    )));
                }
            }
        }
        let now = self.now_ms();
        let s = Scope { account, region };
        // The metric queries' series.
        let mut values: HashMap<String, Series> = HashMap::new();
        let mut metric_series: Vec<Series> = Vec::new();
        self.store.read(|v| {
            for q in &req.queries {
                let Some(ms) = &q.metric_stat else { continue };
                let start = aligned(req.start_ms, ms.period);
                let end = req.end_ms.div_euclid(1000);
                let mut series = Series::new();
                if period_reaches(ms.period, req.start_ms, now) {
                    let id = series_id(
                        &ms.metric.namespace,
                        &ms.metric.metric_name,
                        &sorted(&ms.metric.dimensions),
                    );
                    let pts = points_of(v, s, &id, start, end, now)?;
                    let stat = Statistic::parse(&ms.stat).unwrap_or(Statistic::Average);
                    let kept = pts
                        .iter()
                        .filter(|(_, u, _)| ms.unit.as_ref().is_none_or(|w| w == u))
                        .map(|(t, _, st)| (*t, st));
                    for (t, agg) in periods(kept, start, end, ms.period) {
                        if let Some(x) = agg.get(stat) {
                            series.insert(t, x);
                        }
                    }
                }
                metric_series.push(series.clone());
                values.insert(q.id.clone(), series);
            }
            Ok::<_, Fail>(())
        })?;
        // Expressions, each once, reading the others by id.
        let mut evaluated: HashMap<String, Value> = values
            .iter()
            .map(|(k, v)| (k.clone(), Value::Series(v.clone())))
            .collect();
        let order = expression_order(&req.queries, &exprs)?;
        for id in order {
            let e = &exprs[&id];
            let v = {
                let lookup = |i: &str| evaluated.get(i).cloned();
                let all = || metric_series.clone();
                e.eval(&lookup, &all)
                    .map_err(|m| validation(format!("Error in expression {id}: {}", m.0)))?
            };
            evaluated.insert(id, v);
        }
        // Labels: a metric's name, with the stat and the period when the queries differ in
        // them; an expression's id.
        let stats: HashSet<&str> = req
            .queries
            .iter()
            .filter_map(|q| q.metric_stat.as_ref().map(|m| m.stat.as_str()))
            .collect();
        let periods_seen: HashSet<i64> = req
            .queries
            .iter()
            .filter_map(|q| q.metric_stat.as_ref().map(|m| m.period))
            .collect();
        let mut results = Vec::new();
        for q in &req.queries {
            if q.return_data == Some(false) {
                continue;
            }
            let label = q.label.clone().unwrap_or_else(|| match &q.metric_stat {
                Some(ms) => {
                    let mut l = ms.metric.metric_name.clone();
                    if stats.len() > 1 {
                        l.push(' ');
                        l.push_str(&ms.stat);
                    }
                    if periods_seen.len() > 1 {
                        l.push_str(&format!(" {}", ms.period));
                    }
                    l
                }
                None => q.id.clone(),
            });
            let series: Vec<Series> = match evaluated.remove(&q.id) {
                Some(Value::Series(s)) => vec![s],
                Some(Value::Array(a)) => a,
                Some(Value::Scalar(_)) => {
                    return Err(validation(format!("Error in expression {}: the expression must return a time series or an array of time series, not a single value.", q.id)))
                }
                None => vec![Series::new()],
            };
            for s in series {
                let mut pts: Vec<(i64, f64)> = s.into_iter().collect();
                if descending {
                    pts.reverse();
                }
                results.push(DataResult {
                    id: q.id.clone(),
                    label: label.clone(),
                    timestamps_ms: pts.iter().map(|p| p.0 * 1000).collect(),
                    values: pts.iter().map(|p| p.1).collect(),
                    status_code: "Complete",
                });
            }
        }
        // Pages counted in data points across the results, in order.
        let mut skip = offset;
        let mut room = max as usize;
        let mut more = false;
        for r in &mut results {
            let n = r.values.len();
            let drop = skip.min(n);
            skip -= drop;
            r.timestamps_ms.drain(..drop);
            r.values.drain(..drop);
            if r.values.len() > room {
                r.timestamps_ms.truncate(room);
                r.values.truncate(room);
                r.status_code = "PartialData";
                more = true;
            }
            room -= r.values.len();
        }
        let next = more.then(|| format!("kumo-gmd-{}", offset + max as usize));
        Ok((results, next))
    }

    /// ListMetrics: up to 500 metrics and the next token.
    pub fn cw_list_metrics(
        &self,
        account: &str,
        region: &str,
        q: ListQuery,
    ) -> Result<(Vec<Metric>, Option<String>), CwError> {
        if let Some(ra) = &q.recently_active {
            if ra != "PT3H" {
                return Err(invalid(
                    "The parameter RecentlyActive must be a value in the set [ PT3H ].",
                ));
            }
        }
        if q.dimensions.len() > 10 {
            return Err(invalid(
                "The collection Dimensions must not have a size greater than 10.",
            ));
        }
        let after = match &q.next_token {
            None => None,
            Some(t) => Some(decode_token(t).ok_or_else(|| CwError {
                code: "InvalidNextToken",
                message: "The service couldn't understand the next token.".into(),
            })?),
        };
        let now = self.now_ms();
        let since = now
            - if q.recently_active.is_some() {
                3 * HOUR_MS
            } else {
                14 * DAY_MS
            };
        let prefix = q.namespace.as_ref().map(|n| format!("{n}|"));
        let s = Scope { account, region };
        let mut out = Vec::new();
        let mut next = None;
        self.store.read(|v| {
            // A token from another namespace's listing starts no earlier than this one's.
            let mut scan_from = match (&after, &prefix) {
                (Some(a), Some(p)) => a.clone().max(p.clone()),
                (Some(a), None) => a.clone(),
                (None, Some(p)) => p.clone(),
                (None, None) => String::new(),
            };
            let mut last_out = String::new();
            'scan: loop {
                let page = v.list::<MetricSeries>(
                    s,
                    &Query {
                        after: (!scan_from.is_empty()).then_some(scan_from.as_str()),
                        limit: Some(500),
                        ..Default::default()
                    },
                )?;
                if page.is_empty() {
                    break;
                }
                for r in page {
                    if prefix
                        .as_ref()
                        .is_some_and(|p| !r.id.starts_with(p.as_str()))
                    {
                        break 'scan;
                    }
                    scan_from = r.id.clone();
                    let matches = q.namespace.as_ref().is_none_or(|n| *n == r.namespace)
                        && q.metric_name.as_ref().is_none_or(|m| *m == r.metric_name)
                        && r.last_ms >= since
                        && q.dimensions.iter().all(|(n, val)| {
                            r.dimensions
                                .iter()
                                .any(|(dn, dv)| dn == n && val.as_ref().is_none_or(|x| x == dv))
                        });
                    if !matches {
                        continue;
                    }
                    if out.len() == 500 {
                        next = Some(encode_token(&last_out));
                        break 'scan;
                    }
                    last_out = r.id.clone();
                    out.push(Metric {
                        namespace: r.namespace,
                        metric_name: r.metric_name,
                        dimensions: r
                            .dimensions
                            .into_iter()
                            .map(|(name, value)| Dimension { name, value })
                            .collect(),
                    });
                }
            }
            Ok::<_, Fail>(())
        })?;
        Ok((out, next))
    }
}

/// The expressions in an order where each comes after those it reads; an expression that
/// reads itself, directly or not, is refused.
fn expression_order(
    queries: &[DataQuery],
    exprs: &HashMap<String, Expr>,
) -> Result<Vec<String>, CwError> {
    let mut order = Vec::new();
    let mut done: HashSet<String> = HashSet::new();
    fn visit(
        id: &str,
        exprs: &HashMap<String, Expr>,
        done: &mut HashSet<String>,
        path: &mut Vec<String>,
        order: &mut Vec<String>,
    ) -> Result<(), CwError> {
        if done.contains(id) || !exprs.contains_key(id) {
            return Ok(());
        }
        if path.iter().any(|p| p == id) {
            return Err(validation(format!(
                "Error in expression {id}: Circular dependency detected"
            )));
        }
        path.push(id.to_string());
        let mut reads = Vec::new();
        exprs[id].ids(&mut reads);
        for r in reads {
            visit(&r, exprs, done, path, order)?;
        }
        path.pop();
        done.insert(id.to_string());
        order.push(id.to_string());
        Ok(())
    }
    for q in queries {
        if exprs.contains_key(&q.id) {
            visit(&q.id, exprs, &mut done, &mut Vec::new(), &mut order)?;
        }
    }
    Ok(order)
}

fn encode_token(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(t: &str) -> Option<String> {
    if !t.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_aws_accepts() {
        for p in [1, 5, 10, 20, 30, 60, 120, 300, 86400] {
            assert!(period_ok(p), "{p}");
        }
        for p in [0, -60, 2, 45, 90, 61] {
            assert!(!period_ok(p), "{p}");
        }
    }

    #[test]
    fn retention_tiers() {
        let now = 100 * DAY_MS;
        assert!(period_reaches(1, now - HOUR_MS, now));
        assert!(!period_reaches(1, now - 4 * HOUR_MS, now));
        assert!(period_reaches(60, now - 4 * HOUR_MS, now));
        assert!(!period_reaches(60, now - 16 * DAY_MS, now));
        assert!(period_reaches(300, now - 16 * DAY_MS, now));
        assert!(!period_reaches(300, now - 64 * DAY_MS, now));
        assert!(period_reaches(3600, now - 64 * DAY_MS, now));
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(
            decode_token(&encode_token("Ns|ab12")).as_deref(),
            Some("Ns|ab12")
        );
        assert_eq!(decode_token("zz"), None);
        assert_eq!(decode_token("abc"), None);
    }

    #[test]
    fn values_in_cloudwatch_range() {
        assert!(check_value(0.0, "V").is_ok());
        assert!(check_value(2f64.powi(360), "V").is_ok());
        assert_eq!(
            check_value(f64::NAN, "MetricData.member.1.Value")
                .unwrap_err()
                .message,
            "The value NaN for parameter MetricData.member.1.Value is invalid."
        );
        assert!(check_value(2f64.powi(361), "V").is_err());
        assert!(check_value(f64::INFINITY, "V").is_err());
    }
}
