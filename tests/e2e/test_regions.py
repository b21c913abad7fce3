"""DescribeRegions and DescribeAvailabilityZones through the CLI and boto3."""

import pytest
from botocore.exceptions import ClientError

from conftest import Cli, error_code, make_client


def names(regions):
    return {r["RegionName"] for r in regions}


def test_default_regions_are_the_enabled_ones(cli):
    regions = cli("ec2", "describe-regions")["Regions"]
    assert "us-east-1" in names(regions)
    assert "af-south-1" not in names(regions), "opt-in regions need --all-regions"
    assert all(r["OptInStatus"] == "opt-in-not-required" for r in regions)
    r = next(r for r in regions if r["RegionName"] == "eu-west-1")
    assert r["Endpoint"] == "ec2.eu-west-1.amazonaws.com"


def test_all_regions_and_filters(cli):
    every = cli("ec2", "describe-regions", "--all-regions")["Regions"]
    assert {"af-south-1", "me-south-1", "us-east-1"} <= names(every)
    opt_in = cli("ec2", "describe-regions", "--all-regions", "--filters", "Name=opt-in-status,Values=not-opted-in")["Regions"]
    assert "af-south-1" in names(opt_in) and "us-east-1" not in names(opt_in)
    eu = cli("ec2", "describe-regions", "--filters", "Name=region-name,Values=eu-*")["Regions"]
    assert names(eu) and all(n.startswith("eu-") for n in names(eu))
    ep = cli("ec2", "describe-regions", "--filters", "Name=endpoint,Values=*us-west-2*")["Regions"]
    assert names(ep) == {"us-west-2"}


def test_named_opt_in_region_is_answered(cli):
    r = cli("ec2", "describe-regions", "--region-names", "af-south-1")["Regions"]
    assert names(r) == {"af-south-1"}
    assert r[0]["OptInStatus"] == "not-opted-in"


def test_unknown_region_name(cli):
    code, msg = cli.error("ec2", "describe-regions", "--region-names", "us--east-1")
    assert code == "InvalidParameterValue"
    assert msg == "Invalid region: [us--east-1]"


def test_invalid_filter(cli):
    code, msg = cli.error("ec2", "describe-regions", "--filters", "Name=colour,Values=blue")
    assert (code, msg) == ("InvalidParameterValue", "The filter 'colour' is invalid")


def test_zones_follow_the_credential_scope_region(kumo):
    eu = Cli(kumo.endpoint, region="eu-west-1")("ec2", "describe-availability-zones")["AvailabilityZones"]
    us = Cli(kumo.endpoint, region="us-west-2")("ec2", "describe-availability-zones")["AvailabilityZones"]
    assert [z["ZoneName"] for z in eu][:3] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    assert all(z["RegionName"] == "us-west-2" for z in us)
    z = eu[0]
    assert z["State"] == "available"
    assert z["ZoneType"] == "availability-zone"
    assert z["ZoneId"].startswith("euw1-az")
    assert z["OptInStatus"] == "opt-in-not-required"
    # The zone group, short and long, as AWS names it.
    assert (z["GroupName"], z["GroupLongName"]) == ("eu-west-1-zg-1", "Europe (Ireland) 1")
    assert {(x["GroupName"], x["GroupLongName"]) for x in us} == {("us-west-2-zg-1", "US West (Oregon) 1")}


def test_zone_filters_and_names(ec2):
    by_name = ec2.describe_availability_zones(ZoneNames=["eu-west-1b"])["AvailabilityZones"]
    assert [z["ZoneName"] for z in by_name] == ["eu-west-1b"]
    zid = by_name[0]["ZoneId"]
    by_id = ec2.describe_availability_zones(ZoneIds=[zid])["AvailabilityZones"]
    assert [z["ZoneName"] for z in by_id] == ["eu-west-1b"]
    f = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["*c"]}])["AvailabilityZones"]
    assert [z["ZoneName"] for z in f] == ["eu-west-1c"]
    none = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["impaired"]}])["AvailabilityZones"]
    assert none == []
    long = ec2.describe_availability_zones(Filters=[{"Name": "group-long-name", "Values": ["Europe (Ireland) 1"]}])["AvailabilityZones"]
    assert len(long) == 3


def test_unknown_zone(ec2):
    with pytest.raises(ClientError) as e:
        ec2.describe_availability_zones(ZoneNames=["eu-west-1z"])
    assert error_code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"] == "Invalid availability zone: [eu-west-1z]"


def test_boto3_sees_regions(kumo):
    c = make_client(kumo.endpoint, region="ap-southeast-2")
    assert "ap-southeast-2" in names(c.describe_regions()["Regions"])
