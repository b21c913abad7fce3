"""Instance host names (PrivateDnsNameOptions) on the null driver: the subnet's on-launch
settings, the launch's own options, DescribeInstances and its filters, and
ModifyPrivateDnsNameOptions with AWS's errors. The guest's side is in test_compute_ns.py."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


@pytest.fixture
def ami(kumo):
    from conftest import make_client

    ssm = make_client(kumo.endpoint, service="ssm")
    return ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]


@pytest.fixture
def subnet(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]


def launch(ec2, ami, subnet, **kw):
    return ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet, **kw)["Instances"][0]


def describe(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def options(hostname_type, a, aaaa):
    return {"HostnameType": hostname_type, "EnableResourceNameDnsARecord": a, "EnableResourceNameDnsAAAARecord": aaaa}


def test_defaults_come_from_the_subnet_and_the_launch_overrides_them(ec2, ami, subnet):
    # AWS's defaults: the IP name, no resource-name records.
    plain = launch(ec2, ami, subnet)
    d = describe(ec2, plain["InstanceId"])
    assert d["PrivateDnsNameOptions"] == options("ip-name", False, False)
    assert d["PrivateDnsName"] == "ip-" + d["PrivateIpAddress"].replace(".", "-") + ".eu-west-1.compute.internal"
    assert plain["PrivateDnsNameOptions"] == options("ip-name", False, False)
    # The subnet's on-launch settings, one attribute per call, become the launch defaults.
    ec2.modify_subnet_attribute(SubnetId=subnet, PrivateDnsHostnameTypeOnLaunch="resource-name")
    ec2.modify_subnet_attribute(SubnetId=subnet, EnableResourceNameDnsARecordOnLaunch={"Value": True})
    on_launch = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["PrivateDnsNameOptionsOnLaunch"]
    assert on_launch == options("resource-name", True, False)
    rbn = launch(ec2, ami, subnet)
    iid = rbn["InstanceId"]
    d = describe(ec2, iid)
    assert d["PrivateDnsNameOptions"] == options("resource-name", True, False)
    assert d["PrivateDnsName"] == f"{iid}.eu-west-1.compute.internal"
    # The interface keeps the IP name of its address.
    eni = d["NetworkInterfaces"][0]
    assert eni["PrivateIpAddresses"][0]["PrivateDnsName"].startswith("ip-")
    # Each member given at launch wins over the subnet's; the others still come from it.
    own = launch(ec2, ami, subnet, PrivateDnsNameOptions={"HostnameType": "ip-name"})
    assert describe(ec2, own["InstanceId"])["PrivateDnsNameOptions"] == options("ip-name", True, False)
    off = launch(ec2, ami, subnet, PrivateDnsNameOptions={"EnableResourceNameDnsARecord": False})
    assert describe(ec2, off["InstanceId"])["PrivateDnsNameOptions"] == options("resource-name", False, False)


def test_us_east_1_names_use_ec2_internal(kumo, ami):
    from conftest import make_client

    ec2 = make_client(kumo.endpoint, region="us-east-1")
    ssm = make_client(kumo.endpoint, service="ssm", region="us-east-1")
    image = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    iid = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            PrivateDnsNameOptions={"HostnameType": "resource-name"})["Instances"][0]["InstanceId"]
    assert describe(ec2, iid)["PrivateDnsName"] == f"{iid}.ec2.internal"


def test_filters_match_the_options_and_the_name(ec2, ami, subnet):
    ip = launch(ec2, ami, subnet)["InstanceId"]
    rbn = launch(ec2, ami, subnet, PrivateDnsNameOptions=options("resource-name", True, False))["InstanceId"]

    def ids(name, *values):
        res = ec2.describe_instances(Filters=[{"Name": name, "Values": list(values)}])["Reservations"]
        return sorted(i["InstanceId"] for r in res for i in r["Instances"])

    assert ids("private-dns-name-options.hostname-type", "resource-name") == [rbn]
    assert ids("private-dns-name-options.hostname-type", "ip-name") == [ip]
    assert ids("private-dns-name-options.enable-resource-name-dns-a-record", "true") == [rbn]
    assert ids("private-dns-name-options.enable-resource-name-dns-aaaa-record", "false") == sorted([ip, rbn])
    assert ids("private-dns-name", f"{rbn}.eu-west-1.compute.internal") == [rbn]
    assert ids("private-dns-name", "i-*.eu-west-1.compute.internal") == [rbn]


def test_modify_private_dns_name_options(ec2, cli, ami, subnet):
    iid = launch(ec2, ami, subnet)["InstanceId"]
    # The host name type changes only while the instance is stopped: AWS's code and words.
    code, msg = cli.error("ec2", "modify-private-dns-name-options", "--instance-id", iid,
                          "--private-dns-hostname-type", "resource-name")
    assert (code, msg) == ("InvalidParameterValue", "Cannot modify hostname-type for running instances")
    assert describe(ec2, iid)["PrivateDnsNameOptions"]["HostnameType"] == "ip-name"
    # The records change while it runs.
    out = cli("ec2", "modify-private-dns-name-options", "--instance-id", iid, "--enable-resource-name-dns-a-record")
    assert out == {"Return": True}
    assert describe(ec2, iid)["PrivateDnsNameOptions"] == options("ip-name", True, False)
    # DryRun checks and changes nothing.
    with pytest.raises(ClientError) as e:
        ec2.modify_private_dns_name_options(InstanceId=iid, EnableResourceNameDnsARecord=False, DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert describe(ec2, iid)["PrivateDnsNameOptions"]["EnableResourceNameDnsARecord"] is True
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    ec2.modify_private_dns_name_options(InstanceId=iid, PrivateDnsHostnameType="resource-name")
    d = describe(ec2, iid)
    assert d["PrivateDnsNameOptions"] == options("resource-name", True, False)
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    assert describe(ec2, iid)["PrivateDnsName"] == f"{iid}.eu-west-1.compute.internal"


def test_modify_private_dns_name_options_errors(ec2, ec2_raw, cli, ami, subnet):
    code, _ = cli.error("ec2", "modify-private-dns-name-options", "--instance-id", "i-0123456789abcdef0",
                        "--enable-resource-name-dns-a-record")
    assert code == "InvalidInstanceID.NotFound"
    code, _ = cli.error("ec2", "modify-private-dns-name-options", "--instance-id", "nope",
                        "--enable-resource-name-dns-a-record")
    assert code == "InvalidInstanceID.Malformed"
    iid = launch(ec2, ami, subnet)["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2_raw.modify_private_dns_name_options(InstanceId=iid, PrivateDnsHostnameType="dns-name")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2_raw.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet,
                              PrivateDnsNameOptions={"HostnameType": "host-name"})
    assert error_code(e) == "InvalidParameterValue"


def test_subnet_aaaa_needs_ipv6(ec2, cli, subnet):
    code, msg = cli.error("ec2", "modify-subnet-attribute", "--subnet-id", subnet,
                          "--enable-resource-name-dns-aaaa-record-on-launch")
    assert code == "InvalidParameterValue"
    assert msg == (
        "Invalid value 'true' for enable-resource-name-dns-aaaa-record-on-launch. Cannot set "
        "enable-resource-name-dns-aaaa-record-on-launch to true unless the subnet "
        f"({subnet}) has an IPv6 CIDR block associated with it."
    )
    code, msg = cli.error("ec2", "modify-subnet-attribute", "--subnet-id", subnet, "--assign-ipv6-address-on-creation")
    assert code == "InvalidParameterValue" and "assign-ipv6-address-on-creation" in msg
    on_launch = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["PrivateDnsNameOptionsOnLaunch"]
    assert on_launch == options("ip-name", False, False)
