#!/usr/bin/env python3
"""VPC endpoints and IPv6 on interfaces (issue 16): what their calls cost on a store that holds
`--vpcs` VPCs (each with an IPv6 /56, a subnet with a /64, an interface endpoint, a gateway
endpoint on its main route table, an egress-only gateway with its ::/0 route, and
`--enis` interfaces holding an IPv6 address each), against DescribeRegions (fixed cost, no
store read) in the same run, on a fresh release `kumo serve --driver null`, through boto3.

- DescribeVpcEndpoints of one id, and a page of 100;
- CreateVpcEndpoint (an interface endpoint in one subnet: its interface and address) then
  DeleteVpcEndpoints;
- AssignIpv6Addresses (a count of one: the subnet's interfaces read for collisions) then
  UnassignIpv6Addresses;
- DescribeRouteTables of one VPC (the endpoint's and the gateway's routes, their states read);
- DescribeNetworkInterfaces of one subnet.

Usage: bench/endpoints_ipv6.py [--rounds N] [--vpcs N] [--enis N]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build, and
`scripts/test` once for the Python clients in .venv)."""

import argparse
import ipaddress
import os
import statistics
import sys

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--vpcs", type=int, default=100)
    ap.add_argument("--enis", type=int, default=20)
    args = ap.parse_args()
    with serving("null", "kumo-vpce-bench-") as (endpoint, _):
        region = "us-east-1"
        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name=region,
                           aws_access_key_id="bench", aws_secret_access_key="bench")
        vpcs, subnets, endpoints, enis = [], [], [], []
        for i in range(args.vpcs):
            vpc = ec2.create_vpc(CidrBlock=f"10.{i // 250}.{i % 250}.0/24", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
            ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
            block = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
            first = str(next(ipaddress.ip_network(block).subnets(new_prefix=64)))
            subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{i // 250}.{i % 250}.0/24", Ipv6CidrBlock=first,
                                       AvailabilityZone=f"{region}a")["Subnet"]["SubnetId"]
            endpoints.append(ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", SubnetIds=[subnet],
                                                     ServiceName=f"com.amazonaws.{region}.ec2")["VpcEndpoint"]["VpcEndpointId"])
            rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
            ec2.create_vpc_endpoint(VpcId=vpc, ServiceName=f"com.amazonaws.{region}.s3", RouteTableIds=[rtb])
            eigw = ec2.create_egress_only_internet_gateway(VpcId=vpc)["EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"]
            ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=eigw)
            for _ in range(args.enis):
                enis.append(ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=1)["NetworkInterface"]["NetworkInterfaceId"])
            vpcs.append(vpc)
            subnets.append(subnet)
        mid = len(vpcs) // 2
        eni = enis[mid * args.enis]

        def endpoint_pair():
            e = ec2.create_vpc_endpoint(VpcId=vpcs[mid], VpcEndpointType="Interface", SubnetIds=[subnets[mid]],
                                        ServiceName=f"com.amazonaws.{region}.sts")["VpcEndpoint"]["VpcEndpointId"]
            ec2.delete_vpc_endpoints(VpcEndpointIds=[e])

        def ipv6_pair():
            a = ec2.assign_ipv6_addresses(NetworkInterfaceId=eni, Ipv6AddressCount=1)["AssignedIpv6Addresses"]
            ec2.unassign_ipv6_addresses(NetworkInterfaceId=eni, Ipv6Addresses=a)

        cases = [
            ("DescribeRegions (baseline)", lambda: ec2.describe_regions()),
            ("DescribeVpcEndpoints, one id", lambda: ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoints[mid]])),
            ("DescribeVpcEndpoints, page of 100", lambda: ec2.describe_vpc_endpoints(MaxResults=100)),
            ("CreateVpcEndpoint+DeleteVpcEndpoints", endpoint_pair),
            ("Assign+UnassignIpv6Addresses", ipv6_pair),
            ("DescribeRouteTables, one VPC", lambda: ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpcs[mid]]}])),
            ("DescribeNetworkInterfaces, one subnet", lambda: ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnets[mid]]}])),
        ]
        results = []
        for name, call in cases:
            call()  # warm
            ts = timed(args.rounds, call)
            results.append((name, statistics.median(ts)))
        base = results[0][1]
        print(f"{args.vpcs} VPCs, {2 * args.vpcs} endpoints, {len(enis)} interfaces with IPv6, {args.rounds} rounds, median per call")
        for name, t in results:
            print(f"  {name:44s} {t * 1000:8.2f} ms  {t / base:6.2f}x")


if __name__ == "__main__":
    main()
