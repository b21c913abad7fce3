"""CloudWatch metrics through real clients: boto3 and the AWS CLI (botocore's JSON 1.0
protocol), and botocore's own Smithy RPC v2 CBOR serializer and parser; custom metrics
(PutMetricData), their statistics, metric math, listing, paging and AWS's errors."""

import datetime
import math
import urllib.request

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.parsers
import botocore.serialize
import pytest

from conftest import Cli, fails, make_client

UTC = datetime.timezone.utc


@pytest.fixture
def cw(kumo):
    return make_client(kumo.endpoint, service="cloudwatch")


@pytest.fixture
def cw_raw(kumo):
    return make_client(kumo.endpoint, service="cloudwatch", validate=False)


def minute(dt):
    return dt.replace(second=0, microsecond=0)


def test_custom_metrics_statistics_and_percentiles(cw):
    now = minute(datetime.datetime.now(UTC))
    dims = [{"Name": "Host", "Value": "web-1"}]
    # A cloudwatch-agent-style series: disk usage each minute for five minutes.
    cw.put_metric_data(
        Namespace="Custom/Disk",
        MetricData=[
            {"MetricName": "disk_used_percent", "Dimensions": dims, "Timestamp": now - datetime.timedelta(minutes=i), "Value": v, "Unit": "Percent"}
            for i, v in enumerate([50.0, 40.0, 30.0, 20.0, 10.0])
        ],
    )
    # Values/Counts and a statistic set land in the same minute as raw values.
    cw.put_metric_data(Namespace="Custom/Disk", MetricData=[
        {"MetricName": "latency", "Dimensions": dims, "Timestamp": now, "Values": [1.0, 2.0, 3.0], "Counts": [1, 1, 2], "Unit": "Milliseconds"},
        {"MetricName": "latency", "Dimensions": dims, "Timestamp": now, "StatisticValues": {"SampleCount": 4, "Sum": 40, "Minimum": 10, "Maximum": 10}, "Unit": "Milliseconds"},
    ])
    start, end = now - datetime.timedelta(minutes=10), now + datetime.timedelta(minutes=1)
    r = cw.get_metric_statistics(Namespace="Custom/Disk", MetricName="disk_used_percent", Dimensions=dims,
                                 StartTime=start, EndTime=end, Period=60, Statistics=["Average", "SampleCount"])
    assert r["Label"] == "disk_used_percent"
    points = sorted(r["Datapoints"], key=lambda p: p["Timestamp"])
    assert [p["Average"] for p in points] == [10.0, 20.0, 30.0, 40.0, 50.0]
    assert all(p["SampleCount"] == 1.0 and p["Unit"] == "Percent" for p in points)
    assert points[-1]["Timestamp"] == now
    # One period over all of them.
    r = cw.get_metric_statistics(Namespace="Custom/Disk", MetricName="disk_used_percent", Dimensions=dims,
                                 StartTime=start, EndTime=end, Period=3600, Statistics=["Sum", "Minimum", "Maximum", "SampleCount"])
    (p,) = r["Datapoints"]
    assert (p["Sum"], p["Minimum"], p["Maximum"], p["SampleCount"]) == (150.0, 10.0, 50.0, 5.0)
    # Another dimension set is another metric: nothing.
    r = cw.get_metric_statistics(Namespace="Custom/Disk", MetricName="disk_used_percent", Dimensions=[{"Name": "Host", "Value": "web-2"}],
                                 StartTime=start, EndTime=end, Period=60, Statistics=["Average"])
    assert r["Datapoints"] == []
    # Percentiles from the raw values; the statistic set (min == max) keeps its distribution.
    r = cw.get_metric_statistics(Namespace="Custom/Disk", MetricName="latency", Dimensions=dims,
                                 StartTime=start, EndTime=end, Period=60, ExtendedStatistics=["p50", "p99.9"])
    (p,) = r["Datapoints"]
    assert p["ExtendedStatistics"] == {"p50": 3.0, "p99.9": 10.0}
    r = cw.get_metric_statistics(Namespace="Custom/Disk", MetricName="latency", Dimensions=dims,
                                 StartTime=start, EndTime=end, Period=60, Statistics=["SampleCount", "Sum", "Average"])
    (p,) = r["Datapoints"]
    assert (p["SampleCount"], p["Sum"], p["Average"]) == (8.0, 49.0, 49.0 / 8)
    # A unit filter that matches nothing.
    r = cw.get_metric_statistics(Namespace="Custom/Disk", MetricName="latency", Dimensions=dims,
                                 StartTime=start, EndTime=end, Period=60, Statistics=["Sum"], Unit="Seconds")
    assert r["Datapoints"] == []


def test_get_metric_data_with_metric_math(cw):
    now = minute(datetime.datetime.now(UTC))
    for host, values in [("a", [1.0, 2.0, 3.0]), ("b", [10.0, 20.0, 30.0])]:
        cw.put_metric_data(Namespace="Custom/App", MetricData=[
            {"MetricName": "requests", "Dimensions": [{"Name": "Host", "Value": host}], "Timestamp": now - datetime.timedelta(minutes=2 - i), "Value": v, "Unit": "Count"}
            for i, v in enumerate(values)
        ])

    def stat(id_, host, ret=False):
        return {"Id": id_, "ReturnData": ret, "MetricStat": {"Metric": {"Namespace": "Custom/App", "MetricName": "requests",
                "Dimensions": [{"Name": "Host", "Value": host}]}, "Period": 60, "Stat": "Sum"}}

    r = cw.get_metric_data(
        MetricDataQueries=[
            stat("a", "a", ret=True), stat("b", "b"),
            {"Id": "total", "Expression": "SUM(METRICS())", "Label": "all hosts"},
            {"Id": "mean", "Expression": "AVG([a, b])"},
            {"Id": "peak", "Expression": "MAX([a, b]) * 2"},
            {"Id": "ratio", "Expression": "b / a"},
        ],
        StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1),
    )
    res = {x["Id"]: x for x in r["MetricDataResults"]}
    assert set(res) == {"a", "total", "mean", "peak", "ratio"}
    # Newest first by default.
    assert res["a"]["Values"] == [3.0, 2.0, 1.0] and res["a"]["Label"] == "requests"
    assert res["a"]["Timestamps"][0] == now
    assert res["total"]["Values"] == [33.0, 22.0, 11.0] and res["total"]["Label"] == "all hosts"
    assert res["mean"]["Values"] == [16.5, 11.0, 5.5] and res["mean"]["Label"] == "mean"
    assert res["peak"]["Values"] == [60.0, 40.0, 20.0]
    assert res["ratio"]["Values"] == [10.0, 10.0, 10.0]
    assert all(x["StatusCode"] == "Complete" for x in res.values())
    # Oldest first, and pages counted in data points.
    r = cw.get_metric_data(MetricDataQueries=[stat("a", "a", ret=True), stat("b", "b", ret=True)], ScanBy="TimestampAscending", MaxDatapoints=4,
                           StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1))
    first = {x["Id"]: x for x in r["MetricDataResults"]}
    assert first["a"]["Values"] == [1.0, 2.0, 3.0] and first["b"]["Values"] == [10.0]
    assert first["b"]["StatusCode"] == "PartialData" and r["NextToken"]
    r = cw.get_metric_data(MetricDataQueries=[stat("a", "a", ret=True), stat("b", "b", ret=True)], ScanBy="TimestampAscending", MaxDatapoints=4,
                           StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1), NextToken=r["NextToken"])
    rest = {x["Id"]: x for x in r["MetricDataResults"]}
    assert rest["a"]["Values"] == [] and rest["b"]["Values"] == [20.0, 30.0] and "NextToken" not in r
    # Queries that differ in their statistic are labelled with it.
    r = cw.get_metric_data(MetricDataQueries=[stat("a", "a", ret=True), dict(stat("m", "a", ret=True), MetricStat=dict(stat("m", "a")["MetricStat"], Stat="Maximum"))],
                           StartTime=now - datetime.timedelta(minutes=5), EndTime=now + datetime.timedelta(minutes=1))
    assert sorted(x["Label"] for x in r["MetricDataResults"]) == ["requests Maximum", "requests Sum"]


def test_list_metrics_filters_and_pages(cw):
    cw.put_metric_data(Namespace="Custom/List", MetricData=[
        {"MetricName": f"m{i:04}", "Dimensions": [{"Name": "Shard", "Value": str(i % 3)}], "Value": 1.0} for i in range(600)
    ])
    cw.put_metric_data(Namespace="Custom/Other", MetricData=[{"MetricName": "m0000", "Value": 1.0}])
    page = cw.list_metrics(Namespace="Custom/List")
    assert len(page["Metrics"]) == 500 and page["NextToken"]
    rest = cw.list_metrics(Namespace="Custom/List", NextToken=page["NextToken"])
    assert len(rest["Metrics"]) == 100 and "NextToken" not in rest
    names = {m["MetricName"] for m in page["Metrics"] + rest["Metrics"]}
    assert len(names) == 600
    # The paginator walks the same pages.
    assert sum(len(p["Metrics"]) for p in cw.get_paginator("list_metrics").paginate(Namespace="Custom/List")) == 600
    # A dimension by name matches any value; with a value, that value only.
    assert len(cw.list_metrics(Namespace="Custom/List", Dimensions=[{"Name": "Shard"}])["Metrics"]) == 500
    only = cw.list_metrics(Namespace="Custom/List", Dimensions=[{"Name": "Shard", "Value": "1"}])["Metrics"]
    assert len(only) == 200 and all(m["Dimensions"] == [{"Name": "Shard", "Value": "1"}] for m in only)
    both = cw.list_metrics(MetricName="m0000")["Metrics"]
    assert sorted(m["Namespace"] for m in both) == ["Custom/List", "Custom/Other"]
    assert len(cw.list_metrics(Namespace="Custom/List", RecentlyActive="PT3H", MetricName="m0001")["Metrics"]) == 1
    assert cw.list_metrics(Namespace="Custom/None")["Metrics"] == []
    # A token from another namespace's listing starts no earlier than this namespace.
    other = cw.list_metrics(Namespace="Custom/Other", NextToken=page["NextToken"])["Metrics"]
    assert [m["MetricName"] for m in other] == ["m0000"]


def test_put_metric_data_errors(cw, cw_raw):
    now = datetime.datetime.now(UTC)
    m = lambda **kw: dict({"MetricName": "x"}, **kw)  # noqa: E731
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="AWS/EC2", MetricData=[m(Value=1.0)]) == \
        "The value AWS/EC2 for parameter Namespace is invalid."
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(Value=math.nan)]) == \
        "The value NaN for parameter MetricData.member.1.Value is invalid."
    fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(Value=2.0 ** 361)])
    assert fails("InvalidParameterCombination", cw.put_metric_data, Namespace="C", MetricData=[m(Value=1.0), m(Value=1.0, Values=[1.0])]) == \
        "The parameters MetricData.member.2.Value and MetricData.member.2.Values are mutually exclusive and you have specified both."
    assert fails("InvalidParameterCombination", cw.put_metric_data, Namespace="C",
                 MetricData=[m(Value=1.0, StatisticValues={"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1})]) == \
        "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually exclusive and you have specified both."
    assert fails("InvalidParameterCombination", cw.put_metric_data, Namespace="C", MetricData=[m()]) == \
        "At least one of the parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues must be specified."
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(Values=[1.0, 2.0], Counts=[1.0])]) == \
        "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size."
    assert fails("InvalidParameterValue", cw_raw.put_metric_data, Namespace="C", MetricData=[m(Value=1.0)] * 1001) == \
        "The collection MetricData must not have a size greater than 1000."
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(Value=1.0, Timestamp=now - datetime.timedelta(days=15))]) == \
        "The parameter MetricData.member.1.Timestamp must specify a time within the past two weeks."
    fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(Value=1.0, Timestamp=now + datetime.timedelta(hours=3))])
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(Value=1.0, StorageResolution=30)]) == \
        "The parameter MetricData.member.1.StorageResolution must be a value in the set [ 1, 60 ]."
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="C",
                 MetricData=[m(Value=1.0, Dimensions=[{"Name": "d", "Value": "v" * 1025}])]) == \
        "The parameter MetricData.member.1.Dimensions.member.1.Value must be shorter than 1025 characters."
    fails("InvalidParameterValue", cw_raw.put_metric_data, Namespace="C",
          MetricData=[m(Value=1.0, Dimensions=[{"Name": f"d{i}", "Value": "v"} for i in range(31)])])
    assert fails("InvalidParameterValue", cw.put_metric_data, Namespace="C",
                 MetricData=[m(StatisticValues={"SampleCount": 2, "Sum": 3, "Minimum": 2, "Maximum": 1})]) == \
        "The parameter MetricData.member.1.StatisticValues.Maximum must be greater than MetricData.member.1.StatisticValues.Minimum."
    fails("InvalidParameterValue", cw.put_metric_data, Namespace="C", MetricData=[m(StatisticValues={"SampleCount": 0, "Sum": 0, "Minimum": 0, "Maximum": 0})])
    fails("InvalidParameterValue", cw_raw.put_metric_data, Namespace="C", MetricData=[m(Value=1.0, Unit="Furlongs")])
    # Nothing of a refused call is stored.
    assert cw.list_metrics(Namespace="C")["Metrics"] == []
    # Counts that overflow a double saturate instead of storing an infinity; "NaN" as a
    # dimension's value is a string like any other.
    cw.put_metric_data(Namespace="C", MetricData=[m(Values=[1.0, 2.0], Counts=[1e308, 1e308], Dimensions=[{"Name": "d", "Value": "NaN"}])] * 2)
    got = cw.get_metric_statistics(Namespace="C", MetricName="x", Dimensions=[{"Name": "d", "Value": "NaN"}], Period=60,
                                   Statistics=["SampleCount"], StartTime=now - datetime.timedelta(minutes=5),
                                   EndTime=now + datetime.timedelta(minutes=1))["Datapoints"]
    assert len(got) == 1 and math.isfinite(got[0]["SampleCount"])


def test_get_statistics_and_data_errors(cw, cw_raw):
    now = datetime.datetime.now(UTC)
    q = dict(Namespace="C", MetricName="x", StartTime=now - datetime.timedelta(hours=1), EndTime=now)
    assert fails("InvalidParameterValue", cw.get_metric_statistics, Period=45, Statistics=["Average"], **q) == \
        "The parameter Period must be a multiple of 60."
    assert fails("InvalidParameterValue", cw.get_metric_statistics, Namespace="C", MetricName="x", StartTime=now, EndTime=now, Period=60, Statistics=["Sum"]) == \
        "The parameter StartTime must not equal parameter EndTime."
    fails("InvalidParameterValue", cw.get_metric_statistics, Namespace="C", MetricName="x", StartTime=now, EndTime=now - datetime.timedelta(hours=1), Period=60, Statistics=["Sum"])
    assert fails("InvalidParameterCombination", cw.get_metric_statistics, Namespace="C", MetricName="x", StartTime=now - datetime.timedelta(days=2),
                 EndTime=now, Period=60, Statistics=["Sum"]) == \
        "You have requested up to 2880 datapoints, which exceeds the limit of 1440. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
    fails("InvalidParameterCombination", cw.get_metric_statistics, Period=60, **q)
    fails("InvalidParameterCombination", cw.get_metric_statistics, Period=60, Statistics=["Sum"], ExtendedStatistics=["p90"], **q)
    fails("InvalidParameterValue", cw_raw.get_metric_statistics, Period=60, Statistics=["Median"], **q)
    fails("InvalidParameterValue", cw.get_metric_statistics, Period=60, ExtendedStatistics=["p101"], **q)
    ms = {"Metric": {"Namespace": "C", "MetricName": "x"}, "Period": 60, "Stat": "Sum"}
    t = dict(StartTime=now - datetime.timedelta(hours=1), EndTime=now)
    assert fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "M1", "MetricStat": ms}], **t) == \
        "The value M1 for parameter MetricDataQueries.member.1.Id is not matching the expected pattern ^[a-z][a-zA-Z0-9_]*$."
    assert fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "m1", "MetricStat": dict(ms, Stat="Median")}], **t) == \
        "The value Median for parameter MetricDataQueries.member.1.MetricStat.Stat is not a valid statistic."
    assert fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "m1"}], **t).startswith(
        "The parameter MetricDataQueries.member.1.MetricStat is required.")
    fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "m1", "MetricStat": ms}, {"Id": "m1", "MetricStat": ms}], **t)
    fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "e1", "Expression": "m9 + "}], **t)
    fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "e1", "Expression": "m9 * 2"}], **t)
    fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "e1", "Expression": "e2"}, {"Id": "e2", "Expression": "e1"}], **t)
    fails("InvalidNextToken", cw.get_metric_data, MetricDataQueries=[{"Id": "m1", "MetricStat": ms}], NextToken="garbage", **t)
    # Expressions are bounded: AWS's 2,048 characters, a nesting depth, the series they read.
    fails("ValidationError", cw_raw.get_metric_data, MetricDataQueries=[{"Id": "e1", "Expression": "(" * 3000 + "1" + ")" * 3000}], **t)
    fails("ValidationError", cw.get_metric_data, MetricDataQueries=[{"Id": "e1", "Expression": "(" * 100 + "1" + ")" * 100}], **t)
    fails("ValidationError", cw.get_metric_data, MetricDataQueries=[
        {"Id": "m1", "MetricStat": ms}, {"Id": "e1", "Expression": "+".join(["m1"] * 501)}], **t)
    fails("InvalidNextToken", cw.list_metrics, NextToken="zz")
    fails("InvalidParameterValue", cw_raw.list_metrics, RecentlyActive="PT1H")


def test_the_aws_cli(kumo):
    cli = Cli(kumo.endpoint)
    cli("cloudwatch", "put-metric-data", "--namespace", "Seed/FreeSpace", "--metric-name", "disk_free",
        "--dimensions", "InstanceId=i-0123456789abcdef0,Path=/", "--value", "73.5", "--unit", "Percent")
    listed = cli("cloudwatch", "list-metrics", "--namespace", "Seed/FreeSpace")["Metrics"]
    assert listed == [{"Namespace": "Seed/FreeSpace", "MetricName": "disk_free",
                       "Dimensions": [{"Name": "InstanceId", "Value": "i-0123456789abcdef0"}, {"Name": "Path", "Value": "/"}]}]
    now = datetime.datetime.now(UTC)
    out = cli("cloudwatch", "get-metric-statistics", "--namespace", "Seed/FreeSpace", "--metric-name", "disk_free",
              "--dimensions", "Name=InstanceId,Value=i-0123456789abcdef0", "Name=Path,Value=/",
              "--start-time", (now - datetime.timedelta(minutes=5)).isoformat(), "--end-time", (now + datetime.timedelta(minutes=1)).isoformat(),
              "--period", "300", "--statistics", "Average")
    assert [p["Average"] for p in out["Datapoints"]] == [73.5]
    code, msg = cli.error("cloudwatch", "put-metric-data", "--namespace", "AWS/EBS", "--metric-name", "x", "--value", "1")
    assert code == "InvalidParameterValue" and "Namespace" in msg


def cbor_call(kumo, op, params):
    """An operation on the Smithy RPC v2 CBOR protocol with botocore's own serializer,
    SigV4 signer and parser (the protocol CloudWatch's model lists first)."""
    model = make_client(kumo.endpoint, service="cloudwatch").meta.service_model
    op_model = model.operation_model(op)
    req = botocore.serialize.create_serializer("smithy-rpc-v2-cbor").serialize_to_request(params, op_model)
    url = kumo.endpoint + req["url_path"]
    aws = botocore.awsrequest.AWSRequest(method=req["method"], url=url, data=req["body"], headers=req["headers"])
    botocore.auth.SigV4Auth(botocore.credentials.Credentials("test", "test"), "monitoring", "eu-west-1").add_auth(aws)
    prepared = aws.prepare()
    http = urllib.request.Request(url, data=prepared.body, headers=dict(prepared.headers), method="POST")
    try:
        with urllib.request.urlopen(http) as r:
            status, headers, body = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, headers, body = e.code, dict(e.headers), e.read()
    headers = {k.lower(): v for k, v in headers.items()}
    parsed = botocore.parsers.create_parser("smithy-rpc-v2-cbor").parse(
        {"status_code": status, "headers": headers, "body": body}, op_model.output_shape)
    return status, headers, parsed


def test_the_cbor_protocol(kumo):
    now = minute(datetime.datetime.now(UTC))
    status, headers, _ = cbor_call(kumo, "PutMetricData", {"Namespace": "Cbor/Test", "MetricData": [
        {"MetricName": "m", "Timestamp": now, "Value": 7.0, "Unit": "Count"}]})
    assert status == 200 and headers["smithy-protocol"] == "rpc-v2-cbor" and headers["content-type"] == "application/cbor"
    status, _, out = cbor_call(kumo, "GetMetricStatistics", {"Namespace": "Cbor/Test", "MetricName": "m",
                               "StartTime": now - datetime.timedelta(minutes=1), "EndTime": now + datetime.timedelta(minutes=1),
                               "Period": 60, "Statistics": ["Sum"]})
    assert status == 200
    (p,) = out["Datapoints"]
    assert p["Sum"] == 7.0 and p["Timestamp"] == now and p["Unit"] == "Count"
    status, headers, out = cbor_call(kumo, "PutMetricData", {"Namespace": "AWS/Custom", "MetricData": [{"MetricName": "m", "Value": 1.0}]})
    assert status == 400 and headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert out["Error"]["Code"] == "InvalidParameterValue"
    assert out["Error"]["Message"] == "The value AWS/Custom for parameter Namespace is invalid."
    # The same data through JSON.
    cw = make_client(kumo.endpoint, service="cloudwatch")
    assert cw.list_metrics(Namespace="Cbor/Test")["Metrics"][0]["MetricName"] == "m"


def test_metrics_are_per_account_and_region(kumo):
    a = make_client(kumo.endpoint, service="cloudwatch")
    b = make_client(kumo.endpoint, service="cloudwatch", key="111122223333")
    c = make_client(kumo.endpoint, service="cloudwatch", region="us-east-1")
    a.put_metric_data(Namespace="Scoped", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert len(a.list_metrics(Namespace="Scoped")["Metrics"]) == 1
    assert b.list_metrics(Namespace="Scoped")["Metrics"] == []
    assert c.list_metrics(Namespace="Scoped")["Metrics"] == []


def test_unserved_operations_say_so(kumo):
    cw = make_client(kumo.endpoint, service="cloudwatch")
    msg = fails("InvalidAction", cw.describe_alarms)
    assert "DescribeAlarms" in msg
