#!/usr/bin/env python3
"""Launch-path benchmark: what a RunInstances costs when it goes through a launch template
(the template read and merged beneath the call), into a placement group (the group's members
read), and into an open capacity reservation (the reservations and their filled slots
counted), against a plain RunInstances in the same run, on a fresh release `kumo serve
--driver null` (the API's own cost, no guest).

Usage: bench/launch_paths.py [--rounds N] [--instances N]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build, and
`scripts/test` once for the Python clients in .venv).

`--instances` instances are launched first (plain, in the same zone), so the paths that read
the region's instances (a group's members, a reservation's filled slots) show what they pay
for them."""

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import boto3  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--instances", type=int, default=1000)
    args = ap.parse_args()
    with serving("null", "kumo-launch-bench-") as (endpoint, _):
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
        ec2, ssm = boto3.client("ec2", **kw), boto3.client("ssm", **kw)
        ami = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
        subnet = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}["us-east-1a"]
        for _ in range(args.instances // 100):
            ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=100, MaxCount=100, SubnetId=subnet)
        lt = ec2.create_launch_template(LaunchTemplateName="bench", LaunchTemplateData={
            "ImageId": ami, "InstanceType": "c5.large", "MetadataOptions": {"HttpTokens": "required"},
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}]})["LaunchTemplate"]["LaunchTemplateId"]
        ec2.create_placement_group(GroupName="bench", Strategy="partition", PartitionCount=7)
        base = dict(MinCount=1, MaxCount=1, SubnetId=subnet)
        paths = {
            "plain RunInstances (baseline)": lambda: ec2.run_instances(ImageId=ami, InstanceType="c5.large", **base),
            "from a launch template": lambda: ec2.run_instances(LaunchTemplate={"LaunchTemplateId": lt}, **base),
            "into a partition placement group": lambda: ec2.run_instances(ImageId=ami, InstanceType="c5.large",
                                                                          Placement={"GroupName": "bench"}, **base),
        }
        results = {name: timed(args.rounds, call) for name, call in paths.items()}
        # Last: an open reservation large enough for every round, which every later plain
        # launch of its type also consults.
        ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="us-east-1a",
                                        InstanceCount=args.rounds)
        results["into an open capacity reservation"] = timed(args.rounds, paths["plain RunInstances (baseline)"])
        p50 = {name: statistics.median(t) for name, t in results.items()}
        b = p50["plain RunInstances (baseline)"]
        print(f"{args.rounds} launches of one c5.large per path, {args.instances} instances already in the zone")
        for name, t in results.items():
            print(f"{name}: p50 {p50[name] * 1000:.2f} ms  p99 {sorted(t)[int(len(t) * 0.99) - 1] * 1000:.2f} ms  ratio to baseline p50 {p50[name] / b:.2f}")


if __name__ == "__main__":
    main()
