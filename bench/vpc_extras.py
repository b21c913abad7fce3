#!/usr/bin/env python3
"""The rest of the VPC (issue 16): what its calls cost on a store that holds `--vpcs` VPCs
(each with a subnet, a custom network ACL of 19 inbound entries and a peering connection to
the next VPC), against DescribeRegions (fixed cost, no store read) in the same run, on a
fresh release `kumo serve --driver null`, through boto3.

- DescribeNetworkAcls of one VPC (its default and custom ACL, 40 entries);
- CreateNetworkAclEntry then DeleteNetworkAclEntry (a write pair: the ACL's record, twice);
- DescribeVpcPeeringConnections of one id, and a page of 100;
- AuthorizeSecurityGroupIngress then Revoke of a rule naming a peered VPC's group (reads
  the scope's peering connections to find the link);
- DescribeRouteTables of one VPC (a route to its peering connection, its state read);
- CreateTrafficMirrorFilterRule then DeleteTrafficMirrorFilterRule.

Usage: bench/vpc_extras.py [--rounds N] [--vpcs N]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build, and
`scripts/test` once for the Python clients in .venv)."""

import argparse
import os
import statistics
import sys

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--vpcs", type=int, default=200)
    args = ap.parse_args()
    with serving("null", "kumo-vpc-bench-") as (endpoint, _):
        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        vpcs, acls, groups = [], [], []
        for i in range(args.vpcs):
            vpc = ec2.create_vpc(CidrBlock=f"10.{i // 250}.{i % 250}.0/24")["Vpc"]["VpcId"]
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{i // 250}.{i % 250}.0/26")
            acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
            for n in range(1, 20):
                ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=n * 10, Egress=False, Protocol="6",
                                             RuleAction="allow", CidrBlock="0.0.0.0/0",
                                             PortRange={"From": 1000 + n, "To": 1000 + n})
            groups.append(ec2.create_security_group(GroupName="g", Description="g", VpcId=vpc)["GroupId"])
            vpcs.append(vpc)
            acls.append(acl)
        pcxs = []
        for a, b in zip(vpcs, vpcs[1:]):
            pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
            ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
            pcxs.append(pcx)
        mid = len(vpcs) // 2
        rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpcs[mid]]}])["RouteTables"][0]["RouteTableId"]
        ec2.create_route(RouteTableId=rtb, DestinationCidrBlock=f"10.{(mid + 1) // 250}.{(mid + 1) % 250}.0/24",
                         VpcPeeringConnectionId=pcxs[mid])
        fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]

        def acl_pair():
            ec2.create_network_acl_entry(NetworkAclId=acls[mid], RuleNumber=5, Egress=True, Protocol="-1",
                                         RuleAction="deny", CidrBlock="192.0.2.0/24")
            ec2.delete_network_acl_entry(NetworkAclId=acls[mid], RuleNumber=5, Egress=True)

        peer_rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": groups[mid + 1]}]}]

        def peer_group_pair():
            ec2.authorize_security_group_ingress(GroupId=groups[mid], IpPermissions=peer_rule)
            ec2.revoke_security_group_ingress(GroupId=groups[mid], IpPermissions=peer_rule)

        def mirror_rule_pair():
            r = ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=fid, TrafficDirection="ingress", RuleNumber=1,
                                                      RuleAction="accept", SourceCidrBlock="0.0.0.0/0",
                                                      DestinationCidrBlock="0.0.0.0/0")
            ec2.delete_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=r["TrafficMirrorFilterRule"]["TrafficMirrorFilterRuleId"])

        cases = [
            ("DescribeRegions (baseline)", lambda: ec2.describe_regions()),
            ("DescribeNetworkAcls, one VPC", lambda: ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpcs[mid]]}])),
            ("Create+DeleteNetworkAclEntry", acl_pair),
            ("DescribeVpcPeeringConnections, one id", lambda: ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcxs[mid]])),
            ("DescribeVpcPeeringConnections, page of 100", lambda: ec2.describe_vpc_peering_connections(MaxResults=100)),
            ("Authorize+Revoke, peered group", peer_group_pair),
            ("DescribeRouteTables, one VPC", lambda: ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpcs[mid]]}])),
            ("Create+DeleteTrafficMirrorFilterRule", mirror_rule_pair),
        ]
        results = []
        for name, call in cases:
            call()  # warm
            ts = timed(args.rounds, call)
            results.append((name, statistics.median(ts)))
        base = results[0][1]
        print(f"{args.vpcs} VPCs, {len(pcxs)} active peering connections, {args.rounds} rounds, median per call")
        for name, t in results:
            print(f"  {name:44s} {t * 1000:8.2f} ms  {t / base:6.2f}x")


if __name__ == "__main__":
    main()
