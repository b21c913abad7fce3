"""DHCP options sets through boto3 and the AWS CLI: create, describe, associate (a set or
`default`), delete, and AWS's errors. What guests get from a set is in test_compute_ns.py."""

from conftest import Cli, fails


def vpc_dopt(ec2, vpc):
    return ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["DhcpOptionsId"]


def test_create_associate_describe_delete(kumo, ec2):
    d = ec2.create_dhcp_options(
        DhcpConfigurations=[
            {"Key": "domain-name", "Values": ["corp.example"]},
            {"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS", "10.0.0.53"]},
            {"Key": "ntp-servers", "Values": ["169.254.169.123"]},
            {"Key": "netbios-node-type", "Values": ["2"]},
        ],
        TagSpecifications=[{"ResourceType": "dhcp-options", "Tags": [{"Key": "Name", "Value": "corp"}]}],
    )["DhcpOptions"]
    dopt = d["DhcpOptionsId"]
    assert dopt.startswith("dopt-") and d["OwnerId"] and d["Tags"] == [{"Key": "Name", "Value": "corp"}]
    conf = {c["Key"]: [v["Value"] for v in c["Values"]] for c in d["DhcpConfigurations"]}
    assert conf["domain-name-servers"] == ["AmazonProvidedDNS", "10.0.0.53"]
    found = ec2.describe_dhcp_options(Filters=[{"Name": "key", "Values": ["ntp-servers"]}])["DhcpOptions"]
    assert [x["DhcpOptionsId"] for x in found] == [dopt]
    found = ec2.describe_dhcp_options(Filters=[{"Name": "tag:Name", "Values": ["corp"]}])["DhcpOptions"]
    assert [x["DhcpOptionsId"] for x in found] == [dopt]

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    first = vpc_dopt(ec2, vpc)
    ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc)
    assert vpc_dopt(ec2, vpc) == dopt
    assert [v["VpcId"] for v in ec2.describe_vpcs(Filters=[{"Name": "dhcp-options-id", "Values": [dopt]}])["Vpcs"]] == [vpc]
    # In use: not deleted.
    assert fails("DependencyViolation", ec2.delete_dhcp_options, DhcpOptionsId=dopt) == \
        f"The dhcpOptions '{dopt}' has dependencies and cannot be deleted."
    # `default` is no set at all.
    ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc)
    assert vpc_dopt(ec2, vpc) == "default"
    ec2.delete_dhcp_options(DhcpOptionsId=dopt)
    assert fails("InvalidDhcpOptionID.NotFound", ec2.describe_dhcp_options, DhcpOptionsIds=[dopt]) == \
        f"The dhcpOption ID '{dopt}' does not exist"
    # The region's default set is a set like any other.
    ec2.associate_dhcp_options(DhcpOptionsId=first, VpcId=vpc)
    assert vpc_dopt(ec2, vpc) == first
    # The region's default set may go once no VPC uses it; new VPCs then get none.
    ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc)
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=default_vpc)
    ec2.delete_dhcp_options(DhcpOptionsId=first)
    later = ec2.create_vpc(CidrBlock="10.3.0.0/16")["Vpc"]["VpcId"]
    assert vpc_dopt(ec2, later) == "default"
    again = ec2.create_dhcp_options(DhcpConfigurations=[{"Key": "domain-name", "Values": ["x.example"]}])["DhcpOptions"]["DhcpOptionsId"]
    ec2.associate_dhcp_options(DhcpOptionsId=again, VpcId=vpc)
    assert vpc_dopt(ec2, vpc) == again
    # DryRun changes nothing.
    fails("DryRunOperation", ec2.associate_dhcp_options, DhcpOptionsId="default", VpcId=vpc, DryRun=True)
    assert vpc_dopt(ec2, vpc) == again


def test_errors(kumo, ec2):
    def create(*conf):
        return ec2.create_dhcp_options(DhcpConfigurations=[{"Key": k, "Values": v} for k, v in conf])

    assert fails("InvalidParameterValue", create, ("domain-nam", ["x"])) == \
        "Value (domain-nam) for parameter name is invalid. Unknown DHCP option"
    assert fails("InvalidParameterValue", create, ("domain-name-servers", ["10.0.0.1", "nameserver"])) == \
        "Value (10.0.0.1,nameserver) for parameter value is invalid. Invalid DHCP option value."
    fails("InvalidParameterValue", create, ("domain-name-servers", ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]))
    fails("InvalidParameterValue", create, ("domain-name-servers", ["AmazonProvidedDNS", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]))
    fails("InvalidParameterValue", create, ("netbios-node-type", ["3"]))
    fails("InvalidParameterValue", create, ("ntp-servers", ["pool.ntp.org"]))
    fails("InvalidParameterValue", create, ("ipv6-address-preferred-lease-time", ["100"]))
    # Several domain names, as AWS takes them in any region; IPv6 name servers beside IPv4.
    create(("domain-name", ["eu-west-1.compute.internal corp.example"]),
           ("domain-name-servers", ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "fd00::53"]))
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    fails("InvalidDhcpOptionID.NotFound", ec2.associate_dhcp_options, DhcpOptionsId="dopt-0123456789abcdef0", VpcId=vpc)
    fails("InvalidVpcID.NotFound", ec2.associate_dhcp_options, DhcpOptionsId="default", VpcId="vpc-0123456789abcdef0")
    fails("InvalidDhcpOptionsId.Malformed", ec2.associate_dhcp_options, DhcpOptionsId="dopt", VpcId=vpc)
    fails("InvalidDhcpOptionsId.Malformed", ec2.delete_dhcp_options, DhcpOptionsId="default")
    fails("InvalidDhcpOptionID.NotFound", ec2.delete_dhcp_options, DhcpOptionsId="dopt-0123456789abcdef0")


def test_the_aws_cli(kumo):
    cli = Cli(kumo.endpoint)
    d = cli("ec2", "create-dhcp-options", "--dhcp-configurations",
            "Key=domain-name,Values=corp.example", "Key=domain-name-servers,Values=AmazonProvidedDNS")["DhcpOptions"]
    vpc = cli("ec2", "create-vpc", "--cidr-block", "10.2.0.0/16")["Vpc"]["VpcId"]
    cli("ec2", "associate-dhcp-options", "--dhcp-options-id", d["DhcpOptionsId"], "--vpc-id", vpc)
    assert cli("ec2", "describe-vpcs", "--vpc-ids", vpc)["Vpcs"][0]["DhcpOptionsId"] == d["DhcpOptionsId"]
    code, _ = cli.error("ec2", "delete-dhcp-options", "--dhcp-options-id", d["DhcpOptionsId"])
    assert code == "DependencyViolation"
