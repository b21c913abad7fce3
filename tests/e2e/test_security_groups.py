"""Security groups: create, delete, rules, references, limits and AWS's errors."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


@pytest.fixture
def vpc(ec2):
    return ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]


def ssh(cidr="0.0.0.0/0"):
    return [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": cidr}]}]


def test_create_describe_delete(ec2, vpc):
    out = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc,
                                    TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "front"}]}])
    gid = out["GroupId"]
    assert gid.startswith("sg-") and out["Tags"] == [{"Key": "tier", "Value": "front"}]
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert (g["GroupName"], g["Description"], g["VpcId"]) == ("web", "web servers", vpc)
    assert g["IpPermissions"] == []
    assert g["IpPermissionsEgress"][0]["IpProtocol"] == "-1"
    assert g["IpPermissionsEgress"][0]["IpRanges"] == [{"CidrIp": "0.0.0.0/0"}]
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="WEB", Description="x", VpcId=vpc)
    assert error_code(e) == "InvalidGroup.Duplicate"
    assert e.value.response["Error"]["Message"] == f"The security group 'WEB' already exists for VPC '{vpc}'"
    with pytest.raises(ClientError) as e:
        ec2.create_security_group(GroupName="sg-web", Description="x", VpcId=vpc)
    assert e.value.response["Error"]["Message"] == "Value (sg-web) for parameter GroupName is invalid. Group names may not be in the format sg-*."
    ec2.delete_security_group(GroupId=gid)
    with pytest.raises(ClientError) as e:
        ec2.describe_security_groups(GroupIds=[gid])
    assert error_code(e) == "InvalidGroup.NotFound"
    assert e.value.response["Error"]["Message"] == f"The security group '{gid}' does not exist"


def test_default_group_cannot_be_deleted(ec2, vpc):
    default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=default["GroupId"])
    assert error_code(e) == "CannotDelete"
    assert e.value.response["Error"]["Message"] == f'the specified group: "{default["GroupId"]}" name: "default" cannot be deleted by a user'
    # The default group lets its own members in.
    assert default["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == default["GroupId"]


def test_rules(ec2, vpc):
    gid = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    out = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh() + [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "inside"}, {"CidrIp": "192.168.0.0/16"}]},
    ])
    assert out["Return"] is True
    assert len(out["SecurityGroupRules"]) == 3
    assert all(r["SecurityGroupRuleId"].startswith("sgr-") and r["IsEgress"] is False for r in out["SecurityGroupRules"])
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh())
    assert error_code(e) == "InvalidPermission.Duplicate"
    assert e.value.response["Error"]["Message"] == 'the specified rule "peer: 0.0.0.0/0, TCP, from port: 22, to port: 22, ALLOW" already exists'
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    https = next(p for p in g["IpPermissions"] if p.get("FromPort") == 443)
    assert sorted(r["CidrIp"] for r in https["IpRanges"]) == ["10.0.0.0/8", "192.168.0.0/16"]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.from-port", "Values": ["443"]}])["SecurityGroups"]
    assert [x["GroupId"] for x in found] == [gid]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    assert len(rules) == 4  # three ingress, one default egress
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=ssh())
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=ssh())
    assert error_code(e) == "InvalidPermission.NotFound"
    one = next(r for r in rules if r.get("CidrIpv4") == "10.0.0.0/8")
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=[one["SecurityGroupRuleId"]])
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert [r["CidrIp"] for p in g["IpPermissions"] for r in p["IpRanges"]] == ["192.168.0.0/16"]


def test_revoke_in_the_default_vpc_reports_unknown_rules(ec2):
    gid = ec2.create_security_group(GroupName="dflt", Description="in the default VPC")["GroupId"]
    out = ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=ssh())
    assert out["Return"] is True
    assert out["UnknownIpPermissions"][0]["FromPort"] == 22


def test_group_references_and_dependencies(ec2, vpc):
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": app}]}])
    g = ec2.describe_security_groups(GroupIds=[db])["SecurityGroups"][0]
    assert g["IpPermissions"][0]["UserIdGroupPairs"][0]["GroupId"] == app
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.group-id", "Values": [app]}])["SecurityGroups"]
    assert [x["GroupId"] for x in found] == [db]
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=app)
    assert error_code(e) == "DependencyViolation"
    assert e.value.response["Error"]["Message"] == f"resource {app} has a dependent object"
    sid = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=sid, Groups=[db])["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as e:
        ec2.delete_security_group(GroupId=db)
    assert error_code(e) == "DependencyViolation"
    ec2.delete_network_interface(NetworkInterfaceId=eni)
    ec2.delete_security_group(GroupId=db)
    ec2.delete_security_group(GroupId=app)
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=vpc.replace("vpc-", "sg-"), IpPermissions=ssh())
    assert error_code(e) == "InvalidGroup.NotFound"


def test_rule_limit(ec2, vpc):
    gid = ec2.create_security_group(GroupName="many", Description="many", VpcId=vpc)["GroupId"]
    ranges = [{"CidrIp": f"10.{i}.0.0/16"} for i in range(60)]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": ranges}])
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh())
    assert error_code(e) == "RulesPerSecurityGroupLimitExceeded"
    # Egress has its own 60: one default rule plus 59 more fit.
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "udp", "FromPort": 53, "ToPort": 53, "IpRanges": ranges[:59]}])
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=ssh())
    assert error_code(e) == "RulesPerSecurityGroupLimitExceeded"


def test_cli_legacy_parameters(cli):
    vpc = cli("ec2", "describe-vpcs")["Vpcs"][0]["VpcId"]
    gid = cli("ec2", "create-security-group", "--group-name", "ssh-only", "--description", "ssh", "--vpc-id", vpc)["GroupId"]
    cli("ec2", "authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp", "--port", "22", "--cidr", "203.0.113.0/24")
    g = cli("ec2", "describe-security-groups", "--group-ids", gid)["SecurityGroups"][0]
    assert g["IpPermissions"][0]["FromPort"] == 22 and g["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "203.0.113.0/24"}]
    by_name = cli("ec2", "describe-security-groups", "--group-names", "ssh-only")["SecurityGroups"]
    assert [x["GroupId"] for x in by_name] == [gid]
    cli("ec2", "revoke-security-group-ingress", "--group-id", gid, "--protocol", "tcp", "--port", "22", "--cidr", "203.0.113.0/24")
    assert cli("ec2", "describe-security-groups", "--group-ids", gid)["SecurityGroups"][0]["IpPermissions"] == []
    cli("ec2", "delete-security-group", "--group-name", "ssh-only")


def ssh6(cidr="::/0"):
    return [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": cidr}]}]


def test_ipv6_ranges_are_stored_returned_and_revoked(ec2, vpc):
    gid = ec2.create_security_group(GroupName="six", Description="v6", VpcId=vpc)["GroupId"]
    out = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32", "Description": "lab"}]}])
    assert sorted((r.get("CidrIpv4", ""), r.get("CidrIpv6", "")) for r in out["SecurityGroupRules"]) == [
        ("", "2001:db8::/32"), ("10.0.0.0/8", "")]
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    perm = g["IpPermissions"][0]
    assert perm["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8::/32", "Description": "lab"}]
    assert perm["IpRanges"] == [{"CidrIp": "10.0.0.0/8"}]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.ipv6-cidr", "Values": ["2001:db8::/32"]}])["SecurityGroups"]
    assert [x["GroupId"] for x in found] == [gid]
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh6("2001:db8::/32"))
    assert error_code(e) == "InvalidPermission.Duplicate"
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh6("2001:db8::/129"))
    assert error_code(e) == "InvalidParameterValue"
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=ssh6("2001:db8::/32"))
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert g["IpPermissions"][0]["Ipv6Ranges"] == []


def test_revoking_the_absent_ipv6_egress_rule_is_not_found(ec2, vpc):
    # What Terraform's aws_security_group does on create: it revokes the `::/0` egress rule
    # AWS adds in IPv6 VPCs, and takes InvalidPermission.NotFound as "not there".
    gid = ec2.create_security_group(GroupName="tf", Description="tf", VpcId=vpc)["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    assert error_code(e) == "InvalidPermission.NotFound"
    g = ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]
    assert [r["CidrIp"] for p in g["IpPermissionsEgress"] for r in p["IpRanges"]] == ["0.0.0.0/0"]
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])


def test_ipv6_rules_have_their_own_limit(ec2, vpc):
    gid = ec2.create_security_group(GroupName="lim6", Description="lim6", VpcId=vpc)["GroupId"]
    v4 = [{"CidrIp": f"10.{i}.0.0/16"} for i in range(60)]
    v6 = [{"CidrIpv6": f"2001:db8:{i:x}::/48"} for i in range(60)]
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": v4, "Ipv6Ranges": v6}])
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=ssh6())
    assert error_code(e) == "RulesPerSecurityGroupLimitExceeded"


def test_get_security_groups_for_vpc(ec2, ec2_raw, cli, vpc):
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc,
                                    TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "front"}]}])["GroupId"]
    for i in range(6):
        ec2.create_security_group(GroupName=f"g{i}", Description=f"group {i}", VpcId=vpc)
    ec2.create_security_group(GroupName="elsewhere", Description="x", VpcId=other)
    out = cli("ec2", "get-security-groups-for-vpc", "--vpc-id", vpc)["SecurityGroupForVpcs"]
    # The VPC's own groups (its default one too), none of another VPC's.
    assert sorted(g["GroupName"] for g in out) == ["default", "g0", "g1", "g2", "g3", "g4", "g5", "web"]
    [w] = [g for g in out if g["GroupId"] == web]
    assert w == {"Description": "web servers", "GroupName": "web", "OwnerId": w["OwnerId"], "GroupId": web,
                 "Tags": [{"Key": "tier", "Value": "front"}], "PrimaryVpcId": vpc}
    # Filters, and pages counted in groups that the paginator walks.
    got = ec2.get_security_groups_for_vpc(VpcId=vpc, Filters=[{"Name": "group-name", "Values": ["g*"]}])["SecurityGroupForVpcs"]
    assert len(got) == 6
    got = ec2.get_security_groups_for_vpc(VpcId=vpc, Filters=[{"Name": "description", "Values": ["web servers"]}])["SecurityGroupForVpcs"]
    assert [g["GroupId"] for g in got] == [web]
    first = ec2.get_security_groups_for_vpc(VpcId=vpc, MaxResults=5)
    assert len(first["SecurityGroupForVpcs"]) == 5 and first["NextToken"]
    pages = ec2.get_paginator("get_security_groups_for_vpc").paginate(VpcId=vpc, PaginationConfig={"PageSize": 5})
    assert sum(len(p["SecurityGroupForVpcs"]) for p in pages) == 8
    for code, kw in [("InvalidVpcID.NotFound", dict(VpcId="vpc-0123456789abcdef0")),
                     ("InvalidVpcID.Malformed", dict(VpcId="vpc-x")),
                     ("InvalidParameterValue", dict(VpcId=vpc, MaxResults=4)),
                     ("InvalidParameterValue", dict(VpcId=vpc, Filters=[{"Name": "vpc-id", "Values": [vpc]}]))]:
        with pytest.raises(ClientError) as e:
            ec2_raw.get_security_groups_for_vpc(**kw)
        assert error_code(e) == code, kw
