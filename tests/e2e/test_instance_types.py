"""DescribeInstanceTypes and DescribeInstanceTypeOfferings: catalog figures, filters, paging."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def test_t3_micro_figures(cli):
    t = cli("ec2", "describe-instance-types", "--instance-types", "t3.micro")["InstanceTypes"]
    assert len(t) == 1
    t = t[0]
    assert t["VCpuInfo"]["DefaultVCpus"] == 2
    assert t["MemoryInfo"]["SizeInMiB"] == 1024
    assert t["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]
    assert t["NetworkInfo"]["MaximumNetworkInterfaces"] == 2
    assert t["NetworkInfo"]["Ipv4AddressesPerInterface"] == 2
    assert t["EbsInfo"]["NvmeSupport"] == "required"
    assert t["BurstablePerformanceSupported"] is True
    assert t["InstanceStorageSupported"] is False


def test_instance_storage_type(ec2):
    t = ec2.describe_instance_types(InstanceTypes=["m5d.large"])["InstanceTypes"][0]
    assert t["InstanceStorageSupported"] is True
    assert t["InstanceStorageInfo"]["TotalSizeInGB"] > 0
    assert t["InstanceStorageInfo"]["Disks"][0]["Type"] == "ssd"


def test_unknown_type(ec2):
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_types(InstanceTypes=["t3.micro", "t9.huge"])
    assert error_code(e) == "InvalidInstanceType"
    assert e.value.response["Error"]["Message"] == "The following supplied instance types do not exist: [t9.huge]"


def test_filters(ec2):
    pages = ec2.get_paginator("describe_instance_types").paginate(
        Filters=[
            {"Name": "instance-type", "Values": ["t3.*"]},
            {"Name": "vcpu-info.default-vcpus", "Values": ["2"]},
        ]
    )
    got = sorted(t["InstanceType"] for p in pages for t in p["InstanceTypes"])
    assert got == ["t3.large", "t3.medium", "t3.micro", "t3.nano", "t3.small"]
    arm = ec2.describe_instance_types(
        Filters=[{"Name": "processor-info.supported-architecture", "Values": ["arm64"]}, {"Name": "instance-type", "Values": ["t4g.micro"]}]
    )["InstanceTypes"]
    assert [t["InstanceType"] for t in arm] == ["t4g.micro"]
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_types(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert error_code(e) == "InvalidParameterValue"


def test_paging_counts_items_and_never_repeats_a_token(ec2):
    seen, tokens = [], []
    kwargs = {"MaxResults": 20, "Filters": [{"Name": "instance-type", "Values": ["m5*", "c5*"]}]}
    while True:
        page = ec2.describe_instance_types(**kwargs)
        assert len(page["InstanceTypes"]) <= 20
        seen += [t["InstanceType"] for t in page["InstanceTypes"]]
        token = page.get("NextToken")
        if not token:
            break
        assert token not in tokens
        tokens.append(token)
        kwargs["NextToken"] = token
    assert len(seen) == len(set(seen))
    assert len(seen) > 20, "the filter spans more than one page"
    every = [t["InstanceType"] for p in ec2.get_paginator("describe_instance_types").paginate(
        Filters=[{"Name": "instance-type", "Values": ["m5*", "c5*"]}], PaginationConfig={"PageSize": 7}
    ) for t in p["InstanceTypes"]]
    assert sorted(every) == sorted(seen)


def test_max_results_bounds_and_bad_tokens(ec2, ec2_raw):
    for bad in (4, 101):
        with pytest.raises(ClientError) as e:
            ec2_raw.describe_instance_types(MaxResults=bad)
        assert error_code(e) == "InvalidParameterValue"
        if bad == 4:
            assert e.value.response["Error"]["Message"] == (
                "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5."
            )
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_types(MaxResults=5, NextToken="not-a-token")
    assert error_code(e) == "InvalidParameterValue"
    # A token from another operation is foreign too.
    tags_token = ec2.describe_instance_type_offerings(MaxResults=5)["NextToken"]
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_types(MaxResults=5, NextToken=tags_token)
    assert error_code(e) == "InvalidParameterValue"


def test_cli_auto_paginates_with_page_size(cli):
    out = cli("ec2", "describe-instance-types", "--filters", "Name=instance-type,Values=t3.*", "--page-size", "5")
    assert len(out["InstanceTypes"]) == 7


def test_offerings_by_region_zone_and_zone_id(ec2):
    region = [o for p in ec2.get_paginator("describe_instance_type_offerings").paginate(
        Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}]) for o in p["InstanceTypeOfferings"]]
    assert region == [{"InstanceType": "t3.micro", "LocationType": "region", "Location": "eu-west-1"}]
    zones = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t3.micro"]}]
    )["InstanceTypeOfferings"]
    assert sorted(o["Location"] for o in zones) == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    ids = ec2.describe_instance_type_offerings(
        LocationType="availability-zone-id", Filters=[{"Name": "location", "Values": ["euw1-az1"]}, {"Name": "instance-type", "Values": ["t3.micro"]}]
    )["InstanceTypeOfferings"]
    assert ids == [{"InstanceType": "t3.micro", "LocationType": "availability-zone-id", "Location": "euw1-az1"}]


def test_offerings_max_results(ec2, ec2_raw):
    page = ec2.describe_instance_type_offerings(MaxResults=5)
    assert len(page["InstanceTypeOfferings"]) == 5 and page["NextToken"]
    with pytest.raises(ClientError) as e:
        ec2_raw.describe_instance_type_offerings(MaxResults=1001)
    assert error_code(e) == "InvalidParameterValue"
