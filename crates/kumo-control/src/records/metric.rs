//! CloudWatch metrics: a series (namespace, metric name and dimensions), and its data points
//! in one record per hour.
//!
//! A series' id begins with its namespace, so ListMetrics of one namespace reads one range of
//! ids; the rest of the id is a digest of the name and dimensions. A block's id is its
//! series' id and the hour, so a time range is a list of ids.

use kumo_model::metrics::Stat;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSeries {
    /// `<namespace>|<digest>`.
    pub id: String,
    pub namespace: String,
    pub metric_name: String,
    /// Sorted by name.
    pub dimensions: Vec<(String, String)>,
    /// The first hour (seconds since the epoch / 3600) with data still kept.
    pub first_hour: i64,
    /// When data last arrived (ms), which ListMetrics' two weeks and `RecentlyActive` read.
    pub last_ms: i64,
}

record!(MetricSeries, "metric", |_r| kumo_store::Index::default());

/// One stored data point: its time (seconds; whole minutes at standard resolution), its
/// unit and its statistic set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Point {
    pub t: i64,
    pub unit: String,
    pub stat: Stat,
}

/// A series' data points of one hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricBlock {
    /// `<series id>@<hour>`.
    pub id: String,
    /// Sorted by time, then unit.
    pub points: Vec<Point>,
}

record!(MetricBlock, "metric-data", |_r| kumo_store::Index::default(
));

impl MetricBlock {
    pub fn id_of(series: &str, hour: i64) -> String {
        format!("{series}@{hour:010}")
    }

    /// Adds a data point: merged into the one at the same time and unit.
    pub fn add(&mut self, t: i64, unit: &str, stat: &Stat) {
        let key = |p: &Point| (p.t, p.unit.clone());
        match self
            .points
            .binary_search_by(|p| key(p).cmp(&(t, unit.to_string())))
        {
            Ok(i) => self.points[i].stat.merge(stat),
            Err(i) => self.points.insert(
                i,
                Point {
                    t,
                    unit: unit.to_string(),
                    stat: stat.clone(),
                },
            ),
        }
    }
}
