#!/usr/bin/env python3
"""CloudWatch benchmark: what the metric operations cost on a store holding `--series`
series, against DescribeRegions (fixed cost, no store read) in the same run, on a fresh
release `kumo serve --driver null`, through boto3 (JSON 1.0).

- PutMetricData of 20 data points (one series, one call), and of 1,000 (1,000 series);
- GetMetricStatistics over 24 hours of one-minute data (1,440 points, 24 hour records),
  through boto3 and on the bare wire (urllib, the server's own share);
- GetMetricData with two metric queries and a math expression over the same day;
- ListMetrics of one namespace (a page of 500) and with a dimension filter.

Usage: bench/cloudwatch.py [--rounds N] [--series N]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build, and
`scripts/test` once for the Python clients in .venv)."""

import argparse
import datetime
import json
import os
import statistics
import sys
import urllib.request

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--series", type=int, default=10000)
    args = ap.parse_args()
    with serving("null", "kumo-cloudwatch-bench-") as (endpoint, _):
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
        ec2, cw = boto3.client("ec2", **kw), boto3.client("cloudwatch", **kw)
        now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
        # The store: `--series` series of one point each, in 10 namespaces.
        for start in range(0, args.series, 1000):
            cw.put_metric_data(Namespace=f"Bench/N{start // 1000 % 10}", MetricData=[
                {"MetricName": f"m{i}", "Dimensions": [{"Name": "Shard", "Value": str(i % 50)}], "Value": 1.0}
                for i in range(start, min(start + 1000, args.series))])
        # A day of one-minute data in two series.
        dims = [{"Name": "Host", "Value": "a"}]
        for host in ["a", "b"]:
            for day_start in range(0, 1440, 1000):
                cw.put_metric_data(Namespace="Bench/Day", MetricData=[
                    {"MetricName": "requests", "Dimensions": [{"Name": "Host", "Value": host}],
                     "Timestamp": now - datetime.timedelta(minutes=m), "Value": float(m % 17)}
                    for m in range(day_start, min(day_start + 1000, 1440))])
        day = dict(StartTime=now - datetime.timedelta(hours=24) + datetime.timedelta(minutes=1), EndTime=now + datetime.timedelta(minutes=1))

        def stat(i, host):
            return {"Id": i, "MetricStat": {"Metric": {"Namespace": "Bench/Day", "MetricName": "requests",
                    "Dimensions": [{"Name": "Host", "Value": host}]}, "Period": 60, "Stat": "Sum"}}

        # The same GetMetricStatistics on the bare wire: boto3 spends most of the call above
        # turning 1,440 time stamps into datetimes.
        raw = json.dumps({"Namespace": "Bench/Day", "MetricName": "requests", "Dimensions": dims, "Period": 60,
                          "Statistics": ["Average", "Maximum", "SampleCount"],
                          "StartTime": day["StartTime"].timestamp(), "EndTime": day["EndTime"].timestamp()}).encode()
        headers = {"X-Amz-Target": "GraniteServiceVersion20100801.GetMetricStatistics", "Content-Type": "application/x-amz-json-1.0",
                   "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0"}

        def bare():
            with urllib.request.urlopen(urllib.request.Request(endpoint + "/", data=raw, headers=headers)) as r:
                assert len(json.loads(r.read())["Datapoints"]) == 1440

        calls = {
            "DescribeRegions (baseline)": lambda: ec2.describe_regions(),
            "PutMetricData, 20 points": lambda: cw.put_metric_data(Namespace="Bench/Put", MetricData=[
                {"MetricName": "p", "Dimensions": dims, "Value": float(i)} for i in range(20)]),
            "PutMetricData, 1,000 series": lambda: cw.put_metric_data(Namespace="Bench/Wide", MetricData=[
                {"MetricName": f"w{i}", "Value": 1.0} for i in range(1000)]),
            "GetMetricStatistics, a day by minute": lambda: cw.get_metric_statistics(
                Namespace="Bench/Day", MetricName="requests", Dimensions=dims, Period=60,
                Statistics=["Average", "Maximum", "SampleCount"], **day),
            "GetMetricStatistics, a day, bare HTTP": bare,
            "GetMetricData, 2 series + math, a day": lambda: cw.get_metric_data(MetricDataQueries=[
                stat("a", "a"), stat("b", "b"), {"Id": "t", "Expression": "SUM(METRICS()) / 2"}], **day),
            "ListMetrics, a namespace (500)": lambda: cw.list_metrics(Namespace="Bench/N3"),
            "ListMetrics, a dimension filter": lambda: cw.list_metrics(Namespace="Bench/N3",
                                                                       Dimensions=[{"Name": "Shard", "Value": "7"}]),
        }
        results = {name: timed(args.rounds, call) for name, call in calls.items()}
        p50 = {name: statistics.median(t) for name, t in results.items()}
        b = p50["DescribeRegions (baseline)"]
        print(f"{args.rounds} rounds per call, {args.series} series stored")
        for name, t in results.items():
            print(f"{name}: p50 {p50[name] * 1000:.2f} ms  p99 {sorted(t)[int(len(t) * 0.99) - 1] * 1000:.2f} ms  "
                  f"ratio to baseline p50 {p50[name] / b:.2f}")


if __name__ == "__main__":
    main()
