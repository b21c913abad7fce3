//! CloudWatch's metric operations (`PutMetricData`, `GetMetricStatistics`, `GetMetricData`,
//! `ListMetrics`) on two of the three protocols CloudWatch's model lists:
//! - **Smithy RPC v2 CBOR** (what the pinned botocore, so the AWS CLI and boto3, uses):
//!   `POST /service/GraniteServiceVersion20100801/operation/<Op>`, `smithy-protocol:
//!   rpc-v2-cbor`, CBOR bodies, time stamps as tag 1 (seconds since the epoch);
//! - **JSON 1.0**: `POST /` with `X-Amz-Target: GraniteServiceVersion20100801.<Op>`, time
//!   stamps as numbers of seconds.
//!
//! Both carry errors as `{"__type": "com.amazonaws.cloudwatch#<Shape>", "message": …}` with
//! the query code in `x-amzn-query-error: <Code>;Sender` (CloudWatch is `awsQueryCompatible`),
//! which the SDKs report as the error's code. The query protocol (XML) is not served.

use crate::api::{blocking, Raw};
use crate::{auth, AppState};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kumo_control::metrics::{
    CwError, DataQuery, DataRequest, Datum, Dimension, ListQuery, Metric, MetricStat,
    StatisticsQuery,
};
use kumo_control::Kumo;
use std::sync::Arc;

/// The service's shape name, in the CBOR path and the JSON target.
pub const SERVICE: &str = "GraniteServiceVersion20100801";

/// A request or response body, whichever protocol carried it.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Null,
    Bool(bool),
    Num(f64),
    Text(String),
    /// Seconds since the epoch.
    Time(f64),
    List(Vec<Doc>),
    Map(Vec<(String, Doc)>),
}

impl Doc {
    fn get(&self, key: &str) -> Option<&Doc> {
        match self {
            Doc::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
        .filter(|v| **v != Doc::Null)
    }

    fn str(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Doc::Text(s) => Some(s.clone()),
            _ => None,
        }
    }

    fn num(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_num()
    }

    /// A number, or one of the doubles JSON writes as strings.
    fn as_num(&self) -> Option<f64> {
        match self {
            Doc::Num(n) => Some(*n),
            Doc::Text(t) if matches!(t.as_str(), "NaN" | "Infinity" | "-Infinity") => {
                t.parse().ok()
            }
            _ => None,
        }
    }

    /// An integer member (the model's are 32-bit): out-of-range values saturate, to be
    /// refused by the operation's checks.
    fn int(&self, key: &str) -> Option<i64> {
        self.num(key)
            .map(|n| n.clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i64)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Doc::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// A time stamp, in milliseconds, held within about 3,000 years of the epoch so that
    /// no arithmetic on it can overflow.
    fn time_ms(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Doc::Time(t) | Doc::Num(t) => Some((t.clamp(-1e11, 1e11) * 1000.0).round() as i64),
            _ => None,
        }
    }

    fn list(&self, key: &str) -> &[Doc] {
        match self.get(key) {
            Some(Doc::List(l)) => l,
            _ => &[],
        }
    }

    fn map(pairs: Vec<(&str, Doc)>) -> Doc {
        Doc::Map(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

fn from_cbor(v: ciborium::Value) -> Doc {
    use ciborium::Value as C;
    match v {
        C::Null => Doc::Null,
        C::Bool(b) => Doc::Bool(b),
        C::Integer(i) => Doc::Num(i128::from(i) as f64),
        C::Float(f) => Doc::Num(f),
        C::Text(s) => Doc::Text(s),
        C::Bytes(_) => Doc::Null,
        C::Tag(1, inner) => match from_cbor(*inner) {
            Doc::Num(t) => Doc::Time(t),
            other => other,
        },
        C::Tag(_, inner) => from_cbor(*inner),
        C::Array(a) => Doc::List(a.into_iter().map(from_cbor).collect()),
        C::Map(m) => Doc::Map(
            m.into_iter()
                .filter_map(|(k, v)| match k {
                    C::Text(k) => Some((k, from_cbor(v))),
                    _ => None,
                })
                .collect(),
        ),
        _ => Doc::Null,
    }
}

fn to_cbor(d: Doc) -> ciborium::Value {
    use ciborium::Value as C;
    match d {
        Doc::Null => C::Null,
        Doc::Bool(b) => C::Bool(b),
        Doc::Num(n) => C::Float(n),
        Doc::Text(s) => C::Text(s),
        Doc::Time(t) => C::Tag(1, Box::new(C::Float(t))),
        Doc::List(l) => C::Array(l.into_iter().map(to_cbor).collect()),
        Doc::Map(m) => C::Map(
            m.into_iter()
                .map(|(k, v)| (C::Text(k), to_cbor(v)))
                .collect(),
        ),
    }
}

fn from_json(v: serde_json::Value) -> Doc {
    use serde_json::Value as J;
    match v {
        J::Null => Doc::Null,
        J::Bool(b) => Doc::Bool(b),
        J::Number(n) => Doc::Num(n.as_f64().unwrap_or(0.0)),
        // Doubles JSON cannot write as numbers stay text: `as_num` reads them where a number
        // is due, and a dimension value "NaN" stays a string.
        J::String(s) => Doc::Text(s),
        J::Array(a) => Doc::List(a.into_iter().map(from_json).collect()),
        J::Object(o) => Doc::Map(o.into_iter().map(|(k, v)| (k, from_json(v))).collect()),
    }
}

fn to_json(d: Doc) -> serde_json::Value {
    use serde_json::Value as J;
    match d {
        Doc::Null => J::Null,
        Doc::Bool(b) => J::Bool(b),
        Doc::Num(n) | Doc::Time(n) => serde_json::Number::from_f64(n)
            .map(J::Number)
            .unwrap_or(J::Null),
        Doc::Text(s) => J::String(s),
        Doc::List(l) => J::Array(l.into_iter().map(to_json).collect()),
        Doc::Map(m) => J::Object(m.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
    }
}

/// Which protocol a request came in, and so its answer goes out in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Protocol {
    Cbor,
    Json,
}

/// The most a compressed body may expand to.
const MAX_INFLATED: u64 = 8 << 20;

/// A body sent with `Content-Encoding: gzip` (botocore compresses PutMetricData bodies over
/// 10 KiB, as CloudWatch's model asks), inflated within [`MAX_INFLATED`].
fn inflate(body: &[u8]) -> Result<Vec<u8>, CwError> {
    use std::io::Read;
    let mut out = Vec::new();
    let read = flate2::read::GzDecoder::new(body)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out);
    match read {
        Ok(n) if n as u64 <= MAX_INFLATED => Ok(out),
        Ok(_) => Err(CwError {
            code: "RequestEntityTooLarge",
            message: format!("The request body inflates to more than {MAX_INFLATED} bytes."),
        }),
        Err(_) => Err(CwError {
            code: "SerializationException",
            message: "The request body is not valid gzip.".into(),
        }),
    }
}

fn decode(p: Protocol, body: &[u8], gzip: bool) -> Result<Doc, CwError> {
    let bad = || CwError {
        code: "SerializationException",
        message: "The request body could not be read.".into(),
    };
    let inflated;
    let body = if gzip {
        inflated = inflate(body)?;
        &inflated[..]
    } else {
        body
    };
    if body.is_empty() {
        return Ok(Doc::Map(Vec::new()));
    }
    match p {
        Protocol::Cbor => ciborium::from_reader::<ciborium::Value, _>(body)
            .map(from_cbor)
            .map_err(|_| bad()),
        Protocol::Json => serde_json::from_slice(body)
            .map(from_json)
            .map_err(|_| bad()),
    }
}

fn reply(p: Protocol, status: StatusCode, rid: &str, body: Doc) -> Response {
    let (bytes, ctype) = match p {
        Protocol::Cbor => {
            let mut out = Vec::new();
            // Writing a Value into a Vec cannot fail.
            let _ = ciborium::into_writer(&to_cbor(body), &mut out);
            (out, "application/cbor")
        }
        Protocol::Json => (
            to_json(body).to_string().into_bytes(),
            "application/x-amz-json-1.0",
        ),
    };
    let mut r = (status, Bytes::from(bytes)).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    if p == Protocol::Cbor {
        h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Ok(v) = HeaderValue::from_str(rid) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

/// The error's shape in CloudWatch's model, for `__type`.
fn shape(code: &str) -> &str {
    match code {
        "InvalidParameterValue" => "InvalidParameterValueException",
        "MissingParameter" => "MissingRequiredParameterException",
        "InvalidParameterCombination" => "InvalidParameterCombinationException",
        "LimitExceeded" => "LimitExceededFault",
        "InternalServiceError" => "InternalServiceFault",
        other => other,
    }
}

pub fn error(p: Protocol, rid: &str, e: &CwError) -> Response {
    let server = e.code == "InternalServiceError";
    let status = if server {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::BAD_REQUEST
    };
    // InternalServiceFault's member is `Message`; the others' `message`.
    let message_key = if server { "Message" } else { "message" };
    let body = Doc::map(vec![
        (
            "__type",
            Doc::Text(format!("com.amazonaws.cloudwatch#{}", shape(e.code))),
        ),
        (message_key, Doc::Text(e.message.clone())),
    ]);
    let mut r = reply(p, status, rid, body);
    let fault = if server { "Receiver" } else { "Sender" };
    if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", e.code)) {
        r.headers_mut().insert("x-amzn-query-error", v);
    }
    r
}

/// `POST /service/{service}/operation/{op}`: the CBOR protocol.
pub async fn handle_cbor(
    State(state): State<Arc<AppState>>,
    Path((service, op)): Path<(String, String)>,
    raw: Raw,
) -> Response {
    let rid = crate::wire::request_id();
    if service != SERVICE {
        let e = CwError {
            code: "UnknownOperationException",
            message: format!("Kumo does not serve the service {service}."),
        };
        return error(Protocol::Cbor, &rid, &e);
    }
    blocking(state, move |s| {
        let caller = match auth::authenticate(s, &raw.auth(), s.kumo.now_ms()) {
            Ok(c) => c,
            Err(e) => {
                let (code, message) = auth::service_refusal(s, &raw.auth(), &e);
                return error(Protocol::Cbor, &rid, &CwError { code, message });
            }
        };
        run(
            &s.kumo,
            Protocol::Cbor,
            &op,
            &caller.account,
            &caller.region,
            &raw.body,
            gzipped(&raw.headers),
            &rid,
        )
    })
    .await
}

/// Whether the body came gzipped.
pub fn gzipped(h: &axum::http::HeaderMap) -> bool {
    h.get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"))
}

/// One operation: decode, act, encode.
#[allow(clippy::too_many_arguments)]
pub fn run(
    kumo: &Kumo,
    p: Protocol,
    op: &str,
    account: &str,
    region: &str,
    body: &[u8],
    gzip: bool,
    rid: &str,
) -> Response {
    let input = match decode(p, body, gzip) {
        Ok(d) => d,
        Err(e) => return error(p, rid, &e),
    };
    tracing::debug!(operation = %op, account, region, request_id = %rid, "cloudwatch request");
    // A bug must cost one request an InternalServiceError in CloudWatch's wire, which its
    // clients can read, never the connection.
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dispatch(kumo, op, account, region, &input)
    }))
    .unwrap_or_else(|_| {
        tracing::error!(operation = %op, request_id = %rid, "CloudWatch handler panicked");
        Err(CwError {
            code: "InternalServiceError",
            message: "An internal error occurred.".into(),
        })
    });
    match out {
        Ok(d) => reply(p, StatusCode::OK, rid, d),
        Err(e) => error(p, rid, &e),
    }
}

fn dispatch(
    kumo: &Kumo,
    op: &str,
    account: &str,
    region: &str,
    input: &Doc,
) -> Result<Doc, CwError> {
    match op {
        "PutMetricData" => put_metric_data(kumo, account, region, input),
        "GetMetricStatistics" => get_metric_statistics(kumo, account, region, input),
        "GetMetricData" => get_metric_data(kumo, account, region, input),
        "ListMetrics" => list_metrics(kumo, account, region, input),
        other => Err(CwError {
            code: "InvalidAction",
            message: format!("Kumo does not serve CloudWatch's {other}."),
        }),
    }
}

fn missing(name: &str) -> CwError {
    CwError {
        code: "MissingParameter",
        message: format!("The parameter {name} is required."),
    }
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, CwError> {
    v.ok_or_else(|| missing(name))
}

fn dimensions(d: &Doc) -> Vec<Dimension> {
    d.list("Dimensions")
        .iter()
        .map(|x| Dimension {
            name: x.str("Name").unwrap_or_default(),
            value: x.str("Value").unwrap_or_default(),
        })
        .collect()
}

fn numbers(d: &Doc, key: &str) -> Vec<f64> {
    d.list(key)
        .iter()
        .map(|x| x.as_num().unwrap_or(f64::NAN))
        .collect()
}

fn strings(d: &Doc, key: &str) -> Vec<String> {
    d.list(key)
        .iter()
        .filter_map(|x| match x {
            Doc::Text(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn datum(d: &Doc) -> Datum {
    Datum {
        metric_name: d.str("MetricName").unwrap_or_default(),
        dimensions: dimensions(d),
        timestamp_ms: d.time_ms("Timestamp"),
        value: d.num("Value"),
        statistic_values: d.get("StatisticValues").map(|s| {
            (
                s.num("SampleCount").unwrap_or(f64::NAN),
                s.num("Sum").unwrap_or(f64::NAN),
                s.num("Minimum").unwrap_or(f64::NAN),
                s.num("Maximum").unwrap_or(f64::NAN),
            )
        }),
        values: numbers(d, "Values"),
        counts: numbers(d, "Counts"),
        unit: d.str("Unit"),
        storage_resolution: d.int("StorageResolution"),
    }
}

fn put_metric_data(k: &Kumo, account: &str, region: &str, d: &Doc) -> Result<Doc, CwError> {
    let namespace = required(d.str("Namespace"), "Namespace")?;
    let mut data: Vec<Datum> = d.list("MetricData").iter().map(datum).collect();
    // Entity-associated data counts toward the same limits; Kumo keeps no entities.
    for e in d.list("EntityMetricData") {
        data.extend(e.list("MetricData").iter().map(datum));
    }
    k.cw_put_metric_data(account, region, &namespace, data)?;
    Ok(Doc::Map(Vec::new()))
}

fn metric(d: &Doc) -> Result<Metric, CwError> {
    Ok(Metric {
        namespace: required(d.str("Namespace"), "Namespace")?,
        metric_name: required(d.str("MetricName"), "MetricName")?,
        dimensions: dimensions(d),
    })
}

fn get_metric_statistics(k: &Kumo, account: &str, region: &str, d: &Doc) -> Result<Doc, CwError> {
    let q = StatisticsQuery {
        metric: metric(d)?,
        start_ms: required(d.time_ms("StartTime"), "StartTime")?,
        end_ms: required(d.time_ms("EndTime"), "EndTime")?,
        period: required(d.int("Period"), "Period")?,
        statistics: strings(d, "Statistics"),
        extended_statistics: strings(d, "ExtendedStatistics"),
        unit: d.str("Unit"),
    };
    let (label, points) = k.cw_get_metric_statistics(account, region, q)?;
    let points = points
        .into_iter()
        .map(|p| {
            let mut m = vec![(
                "Timestamp".to_string(),
                Doc::Time(p.timestamp_ms as f64 / 1000.0),
            )];
            for (name, v) in p.values {
                m.push((name, Doc::Num(v)));
            }
            m.push(("Unit".into(), Doc::Text(p.unit)));
            if !p.extended.is_empty() {
                m.push((
                    "ExtendedStatistics".into(),
                    Doc::Map(
                        p.extended
                            .into_iter()
                            .map(|(n, v)| (n, Doc::Num(v)))
                            .collect(),
                    ),
                ));
            }
            Doc::Map(m)
        })
        .collect();
    Ok(Doc::map(vec![
        ("Label", Doc::Text(label)),
        ("Datapoints", Doc::List(points)),
    ]))
}

fn get_metric_data(k: &Kumo, account: &str, region: &str, d: &Doc) -> Result<Doc, CwError> {
    let mut queries = Vec::new();
    for q in d.list("MetricDataQueries") {
        let metric_stat = match q.get("MetricStat") {
            Some(ms) => Some(MetricStat {
                metric: metric(ms.get("Metric").unwrap_or(&Doc::Null))?,
                period: required(ms.int("Period"), "MetricStat.Period")?,
                stat: required(ms.str("Stat"), "MetricStat.Stat")?,
                unit: ms.str("Unit"),
            }),
            None => None,
        };
        queries.push(DataQuery {
            id: q.str("Id").unwrap_or_default(),
            metric_stat,
            expression: q.str("Expression"),
            label: q.str("Label"),
            return_data: q.bool("ReturnData"),
            period: q.int("Period"),
        });
    }
    if queries.is_empty() {
        return Err(missing("MetricDataQueries"));
    }
    let req = DataRequest {
        queries,
        start_ms: required(d.time_ms("StartTime"), "StartTime")?,
        end_ms: required(d.time_ms("EndTime"), "EndTime")?,
        next_token: d.str("NextToken"),
        scan_by: d.str("ScanBy"),
        max_datapoints: d.int("MaxDatapoints"),
    };
    let (results, next) = k.cw_get_metric_data(account, region, req)?;
    let results = results
        .into_iter()
        .map(|r| {
            Doc::map(vec![
                ("Id", Doc::Text(r.id)),
                ("Label", Doc::Text(r.label)),
                (
                    "Timestamps",
                    Doc::List(
                        r.timestamps_ms
                            .into_iter()
                            .map(|t| Doc::Time(t as f64 / 1000.0))
                            .collect(),
                    ),
                ),
                (
                    "Values",
                    Doc::List(r.values.into_iter().map(Doc::Num).collect()),
                ),
                ("StatusCode", Doc::Text(r.status_code.into())),
                ("Messages", Doc::List(Vec::new())),
            ])
        })
        .collect();
    let mut out = vec![
        ("MetricDataResults", Doc::List(results)),
        ("Messages", Doc::List(Vec::new())),
    ];
    if let Some(t) = next {
        out.push(("NextToken", Doc::Text(t)));
    }
    Ok(Doc::map(out))
}

fn list_metrics(k: &Kumo, account: &str, region: &str, d: &Doc) -> Result<Doc, CwError> {
    let q = ListQuery {
        namespace: d.str("Namespace"),
        metric_name: d.str("MetricName"),
        dimensions: d
            .list("Dimensions")
            .iter()
            .map(|x| (x.str("Name").unwrap_or_default(), x.str("Value")))
            .collect(),
        recently_active: d.str("RecentlyActive"),
        next_token: d.str("NextToken"),
    };
    let (metrics, next) = k.cw_list_metrics(account, region, q)?;
    let metrics = metrics
        .into_iter()
        .map(|m| {
            Doc::map(vec![
                ("Namespace", Doc::Text(m.namespace)),
                ("MetricName", Doc::Text(m.metric_name)),
                (
                    "Dimensions",
                    Doc::List(
                        m.dimensions
                            .into_iter()
                            .map(|d| {
                                Doc::map(vec![
                                    ("Name", Doc::Text(d.name)),
                                    ("Value", Doc::Text(d.value)),
                                ])
                            })
                            .collect(),
                    ),
                ),
            ])
        })
        .collect();
    let mut out = vec![("Metrics", Doc::List(metrics))];
    if let Some(t) = next {
        out.push(("NextToken", Doc::Text(t)));
    }
    Ok(Doc::map(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_round_trip_keeps_time_stamps_and_nan() {
        let d = Doc::map(vec![
            ("T", Doc::Time(1_700_000_000.5)),
            ("V", Doc::Num(f64::NAN)),
            ("L", Doc::List(vec![Doc::Text("x".into()), Doc::Bool(true)])),
        ]);
        let mut bytes = Vec::new();
        ciborium::into_writer(&to_cbor(d), &mut bytes).unwrap();
        let back = decode(Protocol::Cbor, &bytes, false).unwrap();
        assert_eq!(back.time_ms("T"), Some(1_700_000_000_500));
        assert!(back.num("V").unwrap().is_nan());
        assert_eq!(back.list("L").len(), 2);
        // Tag 1 on the wire: 0xc1.
        assert!(bytes.contains(&0xc1));
    }

    #[test]
    fn json_doubles_and_errors() {
        let d = decode(
            Protocol::Json,
            br#"{"Value":"NaN","StartTime":1700000000}"#,
            false,
        )
        .unwrap();
        assert!(d.num("Value").unwrap().is_nan());
        assert_eq!(d.time_ms("StartTime"), Some(1_700_000_000_000));
        assert!(decode(Protocol::Cbor, b"\xff\x00", false).is_err());
        assert!(decode(Protocol::Json, b"{}", true).is_err());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, br#"{"Namespace":"N"}"#).unwrap();
        let d = decode(Protocol::Json, &gz.finish().unwrap(), true).unwrap();
        assert_eq!(d.str("Namespace").as_deref(), Some("N"));
        let r = error(
            Protocol::Json,
            "rid",
            &CwError {
                code: "InvalidParameterValue",
                message: "m".into(),
            },
        );
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers()["x-amzn-query-error"],
            "InvalidParameterValue;Sender"
        );
    }
}
