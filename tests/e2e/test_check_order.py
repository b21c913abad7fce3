"""AWS's order of checks (issue 13 item 3): required members and their combinations, then
value formats and ranges (every resource id's form first), then existence and state, then
limits. Each case below breaks an earlier check and a later one at once, and the earlier
one must answer. The ids that name nothing are well formed (`vol-00000000`), so that only
a lookup could refuse them."""

import gzip
import json
import os
import re

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, make_client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = json.load(gzip.open(os.path.join(ROOT, "crates", "codegen", "model", "ec2-2016-11-15.service-2.json.gz")))
SHAPES = MODEL["shapes"]
SERVED = re.findall(
    r'^    "(\w+)",$',
    open(os.path.join(ROOT, "crates", "codegen", "src", "main.rs")).read().split("pub const ALLOW")[1].split("];")[0],
    re.M,
)
# The id kinds whose form Kumo checks, with their `.Malformed` code, read from the rule itself.
CHECKS = open(os.path.join(ROOT, "crates", "kumo-control", "src", "core", "checks.rs")).read()
MALFORMED = {}
for kinds, code in re.findall(r'((?:K::\w+(?:\s*\|\s*)?)+)\s*=>\s*\{?\s*\("[\w-]+",\s*"([\w.]+)"\)', CHECKS):
    for k in re.findall(r"K::(\w+)", kinds):
        MALFORMED[k] = code

VOL = "vol-00000000"
INST = "i-00000000"
SG = "sg-00000000"
ENI = "eni-00000000"
AMI = "ami-00000000"
RTB = "rtb-00000000"
PL = "pl-00000000"
SNAP = "snap-00000000"

# (operation, parameters, code AWS answers first, and the message where a public report
# quotes AWS's).
CASES = [
    # The example: no size, in a zone that does not exist.
    ("CreateVolume", {"AvailabilityZone": "nowhere-1z"}, "MissingParameter", "The request must contain the parameter size/snapshot"),
    # An empty zone is no zone (go-amz always sends it).
    ("CreateVolume", {"Size": 8, "AvailabilityZone": ""}, "MissingParameter", "The request must contain the parameter zone"),
    ("CreateVolume", {"Size": 20000, "AvailabilityZone": "nowhere-1z"}, "InvalidParameterValue", None),
    ("CreateVolume", {"Size": 8, "AvailabilityZone": "nowhere-1z", "SnapshotId": "snapshot-1"}, "InvalidSnapshotID.Malformed", None),
    ("AttachVolume", {"VolumeId": VOL, "InstanceId": INST, "Device": "bogus"}, "InvalidParameterValue", None),
    ("AttachVolume", {"VolumeId": VOL, "InstanceId": "instance-1", "Device": "/dev/sdf"}, "InvalidInstanceID.Malformed", None),
    ("CreateSubnet", {"VpcId": "vpc-00000000", "CidrBlock": "10.0.0.0/29"}, "InvalidSubnet.Range", None),
    ("CreateSubnet", {"VpcId": "vpc-nope", "CidrBlock": "10.0.0.0/24"}, "InvalidVpcID.Malformed", 'Invalid id: "vpc-nope" (expecting "vpc-...")'),
    ("DescribeVpcs", {"VpcIds": ["vpc-nope"]}, "InvalidVpcID.Malformed", None),
    ("DeleteSecurityGroup", {"GroupId": "sg-zz"}, "InvalidGroupId.Malformed", None),
    (
        "AuthorizeSecurityGroupIngress",
        {"GroupId": "", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
        "InvalidGroupId.Malformed",
        None,
    ),
    (
        "AuthorizeSecurityGroupIngress",
        {"GroupId": SG, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 1, "ToPort": 70000, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
        "InvalidParameterValue",
        None,
    ),
    (
        "AuthorizeSecurityGroupIngress",
        {"GroupId": SG, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/33"}]}]},
        "InvalidParameterValue",
        None,
    ),
    (
        "RevokeSecurityGroupEgress",
        {"GroupId": SG, "IpPermissions": [{"IpProtocol": "udp", "FromPort": 53, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
        "InvalidParameterValue",
        None,
    ),
    # RunInstances: AWS's answers to members sent empty, before the image is looked up.
    (
        "RunInstances",
        {"ImageId": AMI, "MinCount": 1, "MaxCount": 1, "SecurityGroupIds": [""]},
        "InvalidParameterValue",
        "Value () for parameter groupId is invalid. The value cannot be empty",
    ),
    (
        "RunInstances",
        {"ImageId": AMI, "MinCount": 1, "MaxCount": 1, "KeyName": ""},
        "InvalidParameterValue",
        "Invalid value '' for keyPairNames. It should not be blank",
    ),
    ("RunInstances", {"ImageId": AMI, "MinCount": 1, "MaxCount": 1, "InstanceType": ""}, "InvalidParameterValue", "Invalid value '' for InstanceType."),
    ("RunInstances", {"ImageId": AMI, "MinCount": 2, "MaxCount": 1}, "InvalidParameterValue", None),
    ("RunInstances", {"ImageId": AMI, "MinCount": 1, "MaxCount": 1, "SubnetId": "subnet-x"}, "InvalidSubnetID.Malformed", None),
    ("AssignPrivateIpAddresses", {"NetworkInterfaceId": ENI, "Ipv4Prefixes": ["10.0.0.0/24"]}, "InvalidParameterValue", None),
    ("AssignPrivateIpAddresses", {"NetworkInterfaceId": ENI}, "MissingParameter", None),
    ("UnassignPrivateIpAddresses", {"NetworkInterfaceId": ENI, "PrivateIpAddresses": ["10.0.0.999"]}, "InvalidParameterValue", None),
    ("CreateNetworkInterface", {"SubnetId": "subnet-00000000", "Ipv4Prefixes": [{"Ipv4Prefix": "10.0.0.0/27"}]}, "InvalidParameterValue", None),
    ("AssociateAddress", {"AllocationId": "eipalloc-00000000"}, "MissingParameter", None),
    ("AssociateAddress", {"AllocationId": "eipalloc-00000000", "InstanceId": "i-zz"}, "InvalidInstanceID.Malformed", None),
    ("DisassociateAddress", {}, "MissingParameter", None),
    ("DescribeInstances", {"InstanceIds": [""]}, "MissingParameter", "The request must contain the parameter InstanceId"),
    ("DescribeInstances", {"InstanceIds": [INST], "MaxResults": 5}, "InvalidParameterCombination", None),
    ("DescribeNetworkInterfaces", {"NetworkInterfaceIds": [ENI], "MaxResults": 5}, "InvalidParameterCombination", None),
    ("DescribeSubnets", {"SubnetIds": ["subnet-00000000"], "NextToken": "not-a-token"}, "InvalidParameterValue", None),
    ("CreateKeyPair", {"KeyName": ""}, "MissingParameter", "The request must contain the parameter KeyName"),
    ("CreateSecurityGroup", {"GroupName": "web", "Description": "", "VpcId": "vpc-00000000"}, "MissingParameter", "The request must contain the parameter GroupDescription"),
    ("CreateSecurityGroup", {"GroupName": "sg-web", "Description": "web", "VpcId": "vpc-00000000"}, "InvalidParameterValue", None),
    (
        "CreateTags",
        {"Resources": [VOL], "Tags": [{"Key": "", "Value": "x"}]},
        "InvalidParameterValue",
        "Value ( '' ) for parameter Tag key is invalid. Tag key cannot be null or empty.",
    ),
    ("CreateTags", {"Resources": [VOL, "volume-1"], "Tags": [{"Key": "k", "Value": "v"}]}, "InvalidID", None),
    ("ModifyManagedPrefixList", {"PrefixListId": PL, "AddEntries": [{"Cidr": "10.0.0.0/99"}]}, "InvalidParameterValue", None),
    ("ModifyManagedPrefixList", {"PrefixListId": PL, "AddEntries": [{"Cidr": "10.0.0.0/24"}], "MaxEntries": 5}, "InvalidParameterCombination", None),
    (
        "CreateRoute",
        {"RouteTableId": RTB, "DestinationCidrBlock": "bad", "GatewayId": "igw-00000000", "NatGatewayId": "nat-00000000"},
        "InvalidParameterCombination",
        None,
    ),
    ("CreateRoute", {"RouteTableId": RTB, "DestinationCidrBlock": "bad", "GatewayId": "igw-00000000"}, "InvalidParameterValue", None),
    ("CreateNatGateway", {"ClientToken": "t" * 100}, "MissingParameter", None),
    ("CopySnapshot", {"SourceSnapshotId": SNAP, "SourceRegion": "nowhere-1", "KmsKeyId": "alias/x"}, "InvalidParameterDependency", None),
    ("CopySnapshot", {"SourceSnapshotId": SNAP, "SourceRegion": "nowhere-1"}, "InvalidParameterValue", None),
    (
        "ModifyImageAttribute",
        {"ImageId": AMI, "LaunchPermission": {"Add": [{"UserId": "123"}]}},
        "InvalidAMIAttributeItemValue",
        None,
    ),
    (
        "ModifySnapshotAttribute",
        {"SnapshotId": SNAP, "CreateVolumePermission": {"Add": [{"UserId": "12345"}]}},
        "InvalidAMIAttributeItemValue",
        None,
    ),
    ("RegisterImage", {"Name": "x"}, "MissingParameter", None),
    (
        "RegisterImage",
        {"Name": "ok-name", "RootDeviceName": "/dev/xvda", "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": SNAP, "Encrypted": True}}]},
        "InvalidParameterCombination",
        None,
    ),
    ("CreateImage", {"InstanceId": INST, "Name": "x"}, "InvalidAMIName.Malformed", None),
    ("ModifyInstanceAttribute", {"InstanceId": INST, "InstanceType": {"Value": "m9.gigantic"}}, "InvalidParameterValue", None),
    ("ModifyVpcAttribute", {"VpcId": "vpc-00000000"}, "MissingParameter", None),
    ("ModifyInstanceAttribute", {"InstanceId": "instance-1"}, "MissingParameter", None),
    # Ids the model types as plain strings (codegen's ID_MEMBERS) get the same rule.
    (
        "AuthorizeSecurityGroupIngress",
        {"GroupId": SG, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "group-1"}]}]},
        "InvalidGroupId.Malformed",
        None,
    ),
    ("CopySnapshot", {"SourceSnapshotId": "snapshot-1", "SourceRegion": "eu-west-1"}, "InvalidSnapshotID.Malformed", None),
    (
        "RunInstances",
        {"ImageId": AMI, "MinCount": 1, "MaxCount": 1, "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": "subnet-x"}]},
        "InvalidSubnetID.Malformed",
        None,
    ),
    ("ModifySnapshotAttribute", {"SnapshotId": "snapshot-1"}, "MissingParameter", None),
    # What Kumo does not take is refused before what such a request lacks.
    ("RunInstances", {"MinCount": 1, "MaxCount": 1, "InstanceMarketOptions": {"MarketType": "spot"}}, "Unsupported", None),
    # From a launch template the image may be the template's: the template is looked up.
    ("RunInstances", {"MinCount": 1, "MaxCount": 1, "LaunchTemplate": {"LaunchTemplateName": "web"}},
     "InvalidLaunchTemplateName.NotFoundException", None),
    ("RegisterImage", {"Name": "from-s3", "ImageLocation": "bucket/image.manifest.xml"}, "Unsupported", None),
    ("ModifySubnetAttribute", {"SubnetId": "subnet-00000000"}, "MissingParameter", None),
]


@pytest.mark.parametrize("op,params,code,message", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_the_earlier_check_answers(kumo, op, params, code, message):
    ec2 = make_client(kumo.endpoint, validate=False)
    with pytest.raises(ClientError) as e:
        ec2._make_api_call(op, params)
    assert error_code(e) == code, (op, params, e.value.response["Error"])
    if message is not None:
        assert e.value.response["Error"]["Message"] == message


def test_a_vpc_block_that_conflicts_is_refused_before_the_limit(ec2):
    """AssociateVpcCidrBlock on a VPC at its limit of five blocks: a block that overlaps one of
    them answers the conflict, a free one the limit."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    for i in range(1, 5):
        ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=f"10.{i}.0.0/16")
    with pytest.raises(ClientError) as e:
        ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.0.0.0/24")
    assert error_code(e) == "InvalidVpc.Range"
    with pytest.raises(ClientError) as e:
        ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.9.0.0/16")
    assert error_code(e) == "CidrLimitExceeded"


def test_a_bad_check_changes_nothing(kumo, ec2):
    """A request refused by a pure check leaves no trace, even on the account's first call."""
    fresh = make_client(kumo.endpoint, key="AKIDFRESHACCOUNT", validate=False)
    with pytest.raises(ClientError):
        fresh._make_api_call("CreateVolume", {"AvailabilityZone": "eu-west-1a"})
    assert ec2.describe_volumes()["Volumes"] == []


def id_members():
    """(operation, member, kind): every top-level member of a served request whose model
    shape is an id kind Kumo checks, alone or as a list."""
    for op in SERVED:
        inp = MODEL["operations"][op].get("input")
        if not inp:
            continue
        for m, ref in SHAPES[inp["shape"]]["members"].items():
            shape = ref["shape"]
            if SHAPES[shape]["type"] == "list":
                item = SHAPES[shape]["member"]["shape"]
                if item in MALFORMED:
                    yield op, m, item, True
            elif shape in MALFORMED:
                yield op, m, shape, False


@pytest.mark.parametrize("bad", ["x-1", ""], ids=["malformed", "empty"])
@pytest.mark.parametrize("op,member,kind,listed", list(id_members()))
def test_a_malformed_id_answers_before_any_lookup(kumo, op, member, kind, listed, bad):
    """Every served operation, with one id member malformed or sent empty (AWS answers
    `GroupId=` with InvalidGroupId.Malformed): the answer is never a lookup's NotFound. With
    the operation's other required members missing it is MissingParameter, as the decoder
    checks them first; otherwise the id kind's `.Malformed` code, or the operation's own
    phase-1 answer for a member it needs besides."""
    ec2 = make_client(kumo.endpoint, validate=False)
    params = {member: [bad] if listed else bad}
    with pytest.raises(ClientError) as e:
        ec2._make_api_call(op, params)
    code = error_code(e)
    assert "NotFound" not in code, (op, member, e.value.response["Error"])
    required = set(SHAPES[MODEL["operations"][op]["input"]["shape"]].get("required", [])) - {member}
    if not required:
        assert code in (MALFORMED[kind], "MissingParameter", "InvalidParameterCombination"), (op, member, e.value.response["Error"])
    else:
        assert code == "MissingParameter", (op, member, e.value.response["Error"])


def test_a_malformed_id_in_a_credit_batch_fails_only_its_item(ec2, ec2_raw):
    """ModifyInstanceCreditSpecification answers each instance on its own, a malformed id as
    one unsuccessful item, as AWS's error enum for the batch lists it."""
    out = ec2_raw.modify_instance_credit_specification(
        InstanceCreditSpecifications=[{"InstanceId": "instance-1", "CpuCredits": "standard"}]
    )
    (item,) = out["UnsuccessfulInstanceCreditSpecifications"]
    assert item["Error"]["Code"] == "InvalidInstanceID.Malformed", item


def test_release_address_takes_the_allocation_id_beside_a_public_ip(ec2):
    a = ec2.allocate_address(Domain="vpc")
    ec2.release_address(AllocationId=a["AllocationId"], PublicIp=a["PublicIp"])
    assert ec2.describe_addresses()["Addresses"] == []
