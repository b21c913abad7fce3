"""The default VPC, VPCs, secondary CIDR blocks, attributes, internet gateways, route tables."""

import pytest
from botocore.exceptions import ClientError

from conftest import Cli, error_code


def test_default_vpc_is_made_on_first_use(ec2):
    vpcs = ec2.describe_vpcs()["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]
    assert vpc["IsDefault"] is True and vpc["CidrBlock"] == "172.31.0.0/16" and vpc["State"] == "available"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["Subnets"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    assert sorted(s["AvailabilityZone"] for s in subnets) == sorted(zones)
    by_zone = {s["AvailabilityZone"]: s for s in subnets}
    for i, z in enumerate(zones):
        s = by_zone[z]
        assert s["CidrBlock"] == f"172.31.{16 * i}.0/20"
        assert s["DefaultForAz"] is True and s["MapPublicIpOnLaunch"] is True
        assert s["AvailableIpAddressCount"] == 4096 - 5
    igws = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])["InternetGateways"]
    assert len(igws) == 1
    rtbs = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["RouteTables"]
    assert len(rtbs) == 1 and rtbs[0]["Associations"][0]["Main"] is True
    routes = {r["DestinationCidrBlock"]: r["GatewayId"] for r in rtbs[0]["Routes"]}
    assert routes == {"172.31.0.0/16": "local", "0.0.0.0/0": igws[0]["InternetGatewayId"]}
    sgs = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])["SecurityGroups"]
    assert [g["GroupName"] for g in sgs] == ["default"]
    acls = ec2.describe_network_acls(Filters=[{"Name": "default", "Values": ["true"]}])["NetworkAcls"]
    assert len(acls) == 1 and len(acls[0]["Associations"]) == len(zones)
    dopt = ec2.describe_dhcp_options()["DhcpOptions"][0]
    keys = {c["Key"]: [v["Value"] for v in c["Values"]] for c in dopt["DhcpConfigurations"]}
    assert keys["domain-name"] == ["eu-west-1.compute.internal"]
    assert vpc["DhcpOptionsId"] == dopt["DhcpOptionsId"]
    attrs = ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")
    assert attrs["EnableDnsHostnames"]["Value"] is True


def test_default_vpc_per_account_and_region(kumo):
    a = Cli(kumo.endpoint, key="111111111111")("ec2", "describe-vpcs")["Vpcs"]
    b = Cli(kumo.endpoint, key="222222222222")("ec2", "describe-vpcs")["Vpcs"]
    c = Cli(kumo.endpoint, key="111111111111", region="us-east-1")("ec2", "describe-vpcs")["Vpcs"]
    assert len({a[0]["VpcId"], b[0]["VpcId"], c[0]["VpcId"]}) == 3


def test_create_and_delete_vpc(cli):
    vpc = cli("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--tag-specifications", "ResourceType=vpc,Tags=[{Key=Name,Value=main}]")["Vpc"]
    assert vpc["CidrBlock"] == "10.0.0.0/16" and vpc["IsDefault"] is False
    assert vpc["Tags"] == [{"Key": "Name", "Value": "main"}]
    # AWS's CreateVpc answer always carries the (here empty) IPv6 set; DescribeVpcs omits it.
    assert vpc["Ipv6CidrBlockAssociationSet"] == []
    vid = vpc["VpcId"]
    got = cli("ec2", "describe-vpcs", "--filters", "Name=tag:Name,Values=main")["Vpcs"]
    assert [v["VpcId"] for v in got] == [vid]
    assert "Ipv6CidrBlockAssociationSet" not in got[0]
    # Every VPC is born with a main route table, a default security group and a network ACL.
    assert len(cli("ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vid}")["RouteTables"]) == 1
    assert len(cli("ec2", "describe-security-groups", "--filters", f"Name=vpc-id,Values={vid}")["SecurityGroups"]) == 1
    subnet = cli("ec2", "create-subnet", "--vpc-id", vid, "--cidr-block", "10.0.1.0/24")["Subnet"]
    code, msg = cli.error("ec2", "delete-vpc", "--vpc-id", vid)
    assert (code, msg) == ("DependencyViolation", f"The vpc '{vid}' has dependencies and cannot be deleted.")
    cli("ec2", "delete-subnet", "--subnet-id", subnet["SubnetId"])
    cli("ec2", "delete-vpc", "--vpc-id", vid)
    code, msg = cli.error("ec2", "describe-vpcs", "--vpc-ids", vid)
    assert (code, msg) == ("InvalidVpcID.NotFound", f"The vpc ID '{vid}' does not exist")
    assert cli("ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vid}")["RouteTables"] == []


def test_vpc_cidr_rules(cli):
    for bad in ("10.0.0.0/15", "10.0.0.0/29"):
        code, msg = cli.error("ec2", "create-vpc", "--cidr-block", bad)
        assert (code, msg) == ("InvalidVpc.Range", f"The CIDR '{bad}' is invalid.")
    code, msg = cli.error("ec2", "create-vpc", "--cidr-block", "banana")
    assert (code, msg) == ("InvalidParameterValue", "Value (banana) for parameter cidrBlock is invalid. This is not a valid CIDR block.")
    # Host bits are cleared, as AWS does.
    assert cli("ec2", "create-vpc", "--cidr-block", "100.68.0.18/18")["Vpc"]["CidrBlock"] == "100.68.0.0/18"


def test_secondary_cidr_blocks(cli):
    vid = cli("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16")["Vpc"]["VpcId"]
    extra = cli("ec2", "create-route-table", "--vpc-id", vid)["RouteTable"]["RouteTableId"]
    a = cli("ec2", "associate-vpc-cidr-block", "--vpc-id", vid, "--cidr-block", "10.1.0.0/16")["CidrBlockAssociation"]
    assert a["CidrBlock"] == "10.1.0.0/16"

    def local_routes():
        tables = cli("ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vid}")["RouteTables"]
        return sorted(sorted(r["DestinationCidrBlock"] for r in t["Routes"] if r.get("GatewayId") == "local") for t in tables)
    # Every route table of the VPC, not only the main one, has the new block's local route.
    assert local_routes() == [["10.0.0.0/16", "10.1.0.0/16"]] * 2, extra
    code, _ = cli.error("ec2", "associate-vpc-cidr-block", "--vpc-id", vid, "--cidr-block", "10.1.128.0/17")
    assert code == "InvalidVpc.Range"
    # A subnet may use the secondary block.
    sn = cli("ec2", "create-subnet", "--vpc-id", vid, "--cidr-block", "10.1.0.0/24")["Subnet"]
    code, _ = cli.error("ec2", "disassociate-vpc-cidr-block", "--association-id", a["AssociationId"])
    assert code == "DependencyViolation"
    cli("ec2", "delete-subnet", "--subnet-id", sn["SubnetId"])
    cli("ec2", "disassociate-vpc-cidr-block", "--association-id", a["AssociationId"])
    assert local_routes() == [["10.0.0.0/16"]] * 2
    cli("ec2", "delete-route-table", "--route-table-id", extra)
    vpc = cli("ec2", "describe-vpcs", "--vpc-ids", vid)["Vpcs"][0]
    assert [c["CidrBlock"] for c in vpc["CidrBlockAssociationSet"]] == ["10.0.0.0/16"]
    primary = vpc["CidrBlockAssociationSet"][0]["AssociationId"]
    code, _ = cli.error("ec2", "disassociate-vpc-cidr-block", "--association-id", primary)
    assert code == "OperationNotPermitted"
    for i in range(2, 6):
        cli("ec2", "associate-vpc-cidr-block", "--vpc-id", vid, "--cidr-block", f"10.{i}.0.0/16")
    code, _ = cli.error("ec2", "associate-vpc-cidr-block", "--vpc-id", vid, "--cidr-block", "10.9.0.0/16")
    assert code == "CidrLimitExceeded"


def test_vpc_attributes(cli):
    vid = cli("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16")["Vpc"]["VpcId"]
    assert cli("ec2", "describe-vpc-attribute", "--vpc-id", vid, "--attribute", "enableDnsHostnames")["EnableDnsHostnames"]["Value"] is False
    cli("ec2", "modify-vpc-attribute", "--vpc-id", vid, "--enable-dns-hostnames", '{"Value":true}')
    assert cli("ec2", "describe-vpc-attribute", "--vpc-id", vid, "--attribute", "enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    code, msg = cli.error("ec2", "modify-vpc-attribute", "--vpc-id", vid, "--enable-dns-hostnames", '{"Value":true}', "--enable-dns-support", '{"Value":true}')
    assert code == "InvalidParameterCombination" and msg.startswith("Fields for multiple attribute types specified")


def test_default_vpc_can_be_deleted_and_recreated(ec2):
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    with pytest.raises(ClientError) as e:
        ec2.create_default_vpc()
    assert error_code(e) == "DefaultVpcAlreadyExists"
    igw = ec2.describe_internet_gateways()["InternetGateways"][0]["InternetGatewayId"]
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.delete_internet_gateway(InternetGatewayId=igw)
    for s in ec2.describe_subnets()["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    # The main route table still routes to the deleted gateway, as in AWS (a blackhole).
    ec2.delete_vpc(VpcId=vpc)
    assert ec2.describe_vpcs()["Vpcs"] == []
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="x", Description="x")
    assert error_code(e) == "VPCIdNotSpecified"
    new = ec2.create_default_vpc()["Vpc"]
    assert new["IsDefault"] is True and new["CidrBlock"] == "172.31.0.0/16"
    zone = ec2.describe_subnets()["Subnets"][0]["AvailabilityZone"]
    with pytest.raises(ClientError) as e:
        ec2.create_default_subnet(AvailabilityZone=zone)
    assert error_code(e) == "DefaultSubnetAlreadyExistsInAvailabilityZone"


def test_internet_gateways(cli):
    vid = cli("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16")["Vpc"]["VpcId"]
    igw = cli("ec2", "create-internet-gateway")["InternetGateway"]["InternetGatewayId"]
    other = cli("ec2", "create-internet-gateway")["InternetGateway"]["InternetGatewayId"]
    cli("ec2", "attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vid)
    code, msg = cli.error("ec2", "attach-internet-gateway", "--internet-gateway-id", other, "--vpc-id", vid)
    assert (code, msg) == ("InvalidParameterValue", f"Network {vid} already has an internet gateway attached")
    code, msg = cli.error("ec2", "attach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vid)
    assert (code, msg) == ("Resource.AlreadyAssociated", f"resource {igw} is already attached to network {vid}")
    code, _ = cli.error("ec2", "delete-internet-gateway", "--internet-gateway-id", igw)
    assert code == "DependencyViolation"
    code, _ = cli.error("ec2", "detach-internet-gateway", "--internet-gateway-id", other, "--vpc-id", vid)
    assert code == "Gateway.NotAttached"
    got = cli("ec2", "describe-internet-gateways", "--filters", f"Name=attachment.vpc-id,Values={vid}")["InternetGateways"]
    assert [g["InternetGatewayId"] for g in got] == [igw]
    assert got[0]["Attachments"] == [{"State": "available", "VpcId": vid}]
    cli("ec2", "detach-internet-gateway", "--internet-gateway-id", igw, "--vpc-id", vid)
    cli("ec2", "delete-internet-gateway", "--internet-gateway-id", igw)
    code, _ = cli.error("ec2", "describe-internet-gateways", "--internet-gateway-ids", igw)
    assert code == "InvalidInternetGatewayID.NotFound"


def test_describe_paging(ec2):
    for i in range(7):
        ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")
    pages = list(ec2.get_paginator("describe_vpcs").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Vpcs"]) for p in pages] == [5, 3]
    ids = [v["VpcId"] for p in pages for v in p["Vpcs"]]
    assert len(set(ids)) == 8


def test_filter_aliases_clients_send(ec2):
    # Ansible's ec2_vpc_net looks a VPC up by `cidr-block`; Terraform's default-VPC lookups
    # send `isDefault` and aws_default_subnet sends `availabilityZone`. AWS takes each as an
    # alias of the documented name.
    vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    for name in ["cidr", "cidr-block", "cidrBlock"]:
        got = ec2.describe_vpcs(Filters=[{"Name": name, "Values": ["10.7.0.0/16"]}])["Vpcs"]
        assert [v["VpcId"] for v in got] == [vpc], name
        assert ec2.describe_vpcs(Filters=[{"Name": name, "Values": ["10.8.0.0/16"]}])["Vpcs"] == []
    default = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    assert [v["IsDefault"] for v in default] == [True]
    others = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["false"]}])["Vpcs"]
    assert [v["VpcId"] for v in others] == [vpc]
    dopt = default[0]["DhcpOptionsId"]
    got = ec2.describe_vpcs(Filters=[{"Name": "dhcp-options-id", "Values": [dopt]}])["Vpcs"]
    assert default[0]["VpcId"] in [v["VpcId"] for v in got]
    zone = ec2.describe_availability_zones()["AvailabilityZones"][1]
    for name, value in [("availabilityZone", zone["ZoneName"]), ("availabilityZoneId", zone["ZoneId"])]:
        got = ec2.describe_subnets(Filters=[{"Name": name, "Values": [value]}, {"Name": "defaultForAz", "Values": ["true"]}])["Subnets"]
        assert [s["AvailabilityZone"] for s in got] == [zone["ZoneName"]], name
    sub = got[0]
    got = ec2.describe_subnets(Filters=[{"Name": "subnet-arn", "Values": [sub["SubnetArn"]]}])["Subnets"]
    assert [s["SubnetId"] for s in got] == [sub["SubnetId"]]
    with pytest.raises(ClientError) as e:
        ec2.describe_vpcs(Filters=[{"Name": "cidr-blocks", "Values": ["10.7.0.0/16"]}])
    assert error_code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"] == "The filter 'cidr-blocks' is invalid"
