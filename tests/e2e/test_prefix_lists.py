"""Customer-managed prefix lists: versions of their entries, AWS's refusals, and security-group
rules that reference them (stored, returned, revoked, weighed against the rule limit)."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def refused(exc_info):
    err = exc_info.value.response["Error"]
    return err["Code"], err["Message"]


def make(ec2, name="office", max_entries=5, family="IPv4", entries=(), **kw):
    return ec2.create_managed_prefix_list(
        PrefixListName=name, MaxEntries=max_entries, AddressFamily=family,
        Entries=[{"Cidr": c} for c in entries], **kw)["PrefixList"]


def entries(ec2, pl, **kw):
    return sorted(e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=pl, **kw)["Entries"])


def test_create_describe_and_entries(ec2):
    out = ec2.create_managed_prefix_list(
        PrefixListName="office", MaxEntries=5, AddressFamily="IPv4", ClientToken="pl-1",
        Entries=[{"Cidr": "203.0.113.0/24", "Description": "hq"}, {"Cidr": "198.51.100.7/32"}],
        TagSpecifications=[{"ResourceType": "prefix-list", "Tags": [{"Key": "team", "Value": "net"}]}])["PrefixList"]
    pl = out["PrefixListId"]
    assert pl.startswith("pl-")
    # The answer reports the creation under way; the next read finds it complete.
    assert (out["State"], out["Version"], out["MaxEntries"], out["AddressFamily"]) == ("create-in-progress", 1, 5, "IPv4")
    assert out["PrefixListArn"] == f"arn:aws:ec2:eu-west-1:{out['OwnerId']}:prefix-list/{pl}"
    assert out["Tags"] == [{"Key": "team", "Value": "net"}]
    again = ec2.create_managed_prefix_list(
        PrefixListName="office", MaxEntries=5, AddressFamily="IPv4", ClientToken="pl-1",
        Entries=[{"Cidr": "203.0.113.0/24", "Description": "hq"}, {"Cidr": "198.51.100.7/32"}],
        TagSpecifications=[{"ResourceType": "prefix-list", "Tags": [{"Key": "team", "Value": "net"}]}])["PrefixList"]
    assert again["PrefixListId"] == pl
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert (got["State"], got["PrefixListName"], got["Version"]) == ("create-complete", "office", 1)
    got = ec2.get_managed_prefix_list_entries(PrefixListId=pl)["Entries"]
    assert sorted((e["Cidr"], e.get("Description")) for e in got) == [("198.51.100.7/32", None), ("203.0.113.0/24", "hq")]
    make(ec2, "other")
    for name, value in [("prefix-list-name", "off*"), ("prefix-list-id", pl), ("tag:team", "net"), ("owner-id", got and out["OwnerId"])]:
        found = ec2.describe_managed_prefix_lists(Filters=[{"Name": name, "Values": [value]}])["PrefixLists"]
        assert pl in [x["PrefixListId"] for x in found], name
        if name != "owner-id":
            assert len(found) == 1, name
    # Host bits are cleared, as for every CIDR.
    assert entries(ec2, make(ec2, "bits", entries=["10.1.2.3/16"])["PrefixListId"]) == ["10.1.0.0/16"]
    # Pages are counted in entries.
    big = make(ec2, "big", max_entries=20, entries=[f"10.0.{i}.0/24" for i in range(7)])["PrefixListId"]
    first = ec2.get_managed_prefix_list_entries(PrefixListId=big, MaxResults=5)
    rest = ec2.get_managed_prefix_list_entries(PrefixListId=big, MaxResults=5, NextToken=first["NextToken"])
    assert len(first["Entries"]) == 5 and len(rest["Entries"]) == 2 and "NextToken" not in rest


def test_ipv6_lists(ec2):
    pl = make(ec2, "v6", family="IPv6", entries=["2001:db8:0:0:1::/80"])["PrefixListId"]
    assert entries(ec2, pl) == ["2001:db8:0:0:1::/80"]
    with pytest.raises(ClientError) as e:
        make(ec2, "mixed", family="IPv6", entries=["10.0.0.0/8"])
    assert refused(e) == ("InvalidParameterValue", "CIDR block 10.0.0.0/8 is malformed")


def test_create_refusals(ec2, ec2_raw):
    with pytest.raises(ClientError) as e:
        make(ec2, max_entries=1001)
    assert refused(e) == ("InvalidParameterValue", "Must specify a max size between 1 and 1000")
    with pytest.raises(ClientError) as e:
        make(ec2, max_entries=0)
    assert refused(e) == ("InvalidParameterValue", "Must specify a max size between 1 and 1000")
    with pytest.raises(ClientError) as e:
        make(ec2, family="IPv5")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        make(ec2, name="com.amazonaws.mine")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        make(ec2, max_entries=200, entries=[f"10.0.{i}.0/24" for i in range(101)])
    assert refused(e) == ("InvalidParameterValue", "The number of entries per request cannot exceeds limit (100).")
    with pytest.raises(ClientError) as e:
        make(ec2, max_entries=1, entries=["10.0.0.0/24", "10.0.1.0/24"])
    assert error_code(e) == "PrefixListMaxEntriesExceeded"
    with pytest.raises(ClientError) as e:
        make(ec2, entries=["10.0.0.0/33"])
    assert refused(e) == ("InvalidParameterValue", "CIDR block 10.0.0.0/33 is malformed")
    with pytest.raises(ClientError) as e:
        ec2_raw.create_managed_prefix_list(PrefixListName="x", AddressFamily="IPv4")
    assert error_code(e) == "MissingParameter"
    # Nothing of a refused call stays (the region's AWS-managed lists are always there).
    assert [p for p in ec2.describe_managed_prefix_lists()["PrefixLists"] if p["OwnerId"] != "AWS"] == []


def test_unknown_and_malformed_ids(ec2):
    with pytest.raises(ClientError) as e:
        ec2.describe_managed_prefix_lists(PrefixListIds=["pl-0123456789abcdef0"])
    assert refused(e) == ("InvalidPrefixListID.NotFound", "The prefix list (pl-0123456789abcdef0) does not exist.")
    with pytest.raises(ClientError) as e:
        ec2.get_managed_prefix_list_entries(PrefixListId="pl-0123456789abcdef0")
    assert refused(e) == ("InvalidPrefixListID.NotFound", "The prefix list (pl-0123456789abcdef0) does not exist.")
    with pytest.raises(ClientError) as e:
        ec2.get_managed_prefix_list_entries(PrefixListId="office")
    assert error_code(e) == "InvalidPrefixListId.Malformed"


def test_modify_versions_and_restore(ec2):
    pl = make(ec2, entries=["10.0.0.0/24"])["PrefixListId"]
    out = ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=1,
                                         AddEntries=[{"Cidr": "10.0.1.0/24"}, {"Cidr": "10.0.2.0/24"}])["PrefixList"]
    # The answer is the change under way, on the version it was asked of.
    assert (out["State"], out["Version"]) == ("modify-in-progress", 1)
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert (got["State"], got["Version"]) == ("modify-complete", 2)
    ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=2, RemoveEntries=[{"Cidr": "10.0.0.0/24"}])
    assert entries(ec2, pl) == ["10.0.1.0/24", "10.0.2.0/24"]
    assert entries(ec2, pl, TargetVersion=1) == ["10.0.0.0/24"]
    # Renaming and resizing make no version.
    ec2.modify_managed_prefix_list(PrefixListId=pl, PrefixListName="renamed")
    ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=8)
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert (got["PrefixListName"], got["MaxEntries"], got["Version"]) == ("renamed", 8, 3)
    # The refusals AWS answers.
    with pytest.raises(ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=1, AddEntries=[{"Cidr": "10.0.9.0/24"}])
    assert refused(e) == ("PrefixListVersionMismatch", "The prefix list has the incorrect version number.")
    with pytest.raises(ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=9, AddEntries=[{"Cidr": "10.0.9.0/24"}])
    assert refused(e) == ("InvalidParameterCombination", "You cannot modify the entries and the maximum entries for the prefix list in the same request.")
    with pytest.raises(ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, AddEntries=[{"Cidr": "10.0.1.0/24"}], RemoveEntries=[{"Cidr": "10.0.1.0/24"}])
    assert refused(e) == ("InvalidParameterValue", "Request cannot contain Cidr 10.0.1.0/24 in both AddPrefixListEntries and RemovePrefixListEntries")
    with pytest.raises(ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, RemoveEntries=[{"Cidr": "10.9.9.0/24"}])
    assert error_code(e) == "InvalidPrefixListModification"
    with pytest.raises(ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, AddEntries=[{"Cidr": f"10.1.{i}.0/24"} for i in range(7)])
    assert error_code(e) == "PrefixListMaxEntriesExceeded"
    with pytest.raises(ClientError) as e:
        ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=1)
    assert error_code(e) == "PrefixListMaxEntriesExceeded"
    assert entries(ec2, pl) == ["10.0.1.0/24", "10.0.2.0/24"]
    # Restoring a version makes a new one with the old entries.
    out = ec2.restore_managed_prefix_list_version(PrefixListId=pl, PreviousVersion=1, CurrentVersion=3)["PrefixList"]
    assert (out["State"], out["Version"]) == ("restore-in-progress", 3)
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert (got["State"], got["Version"]) == ("restore-complete", 4)
    assert entries(ec2, pl) == ["10.0.0.0/24"]
    with pytest.raises(ClientError) as e:
        ec2.restore_managed_prefix_list_version(PrefixListId=pl, PreviousVersion=1, CurrentVersion=3)
    assert error_code(e) == "PrefixListVersionMismatch"


def ssh_from(pl, description=None):
    ref = {"PrefixListId": pl}
    if description:
        ref["Description"] = description
    return [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [ref]}]


@pytest.fixture
def group(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]


def test_rules_reference_prefix_lists(ec2, group):
    pl = make(ec2, entries=["203.0.113.0/24"])["PrefixListId"]
    out = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ssh_from(pl, "office"))
    rule = out["SecurityGroupRules"][0]
    assert (rule["PrefixListId"], rule["Description"]) == (pl, "office")
    perm = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"][0]
    assert perm["PrefixListIds"] == [{"PrefixListId": pl, "Description": "office"}]
    assert perm["IpRanges"] == [] and perm["UserIdGroupPairs"] == []
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])["SecurityGroupRules"]
    assert [r["PrefixListId"] for r in rules if not r["IsEgress"]] == [pl]
    found = ec2.describe_security_groups(Filters=[{"Name": "ip-permission.prefix-list-id", "Values": [pl]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [group]
    assoc = ec2.get_managed_prefix_list_associations(PrefixListId=pl)["PrefixListAssociations"]
    assert [a["ResourceId"] for a in assoc] == [group]
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ssh_from(pl))
    assert error_code(e) == "InvalidPermission.Duplicate"
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ssh_from("pl-0123456789abcdef0"))
    assert refused(e) == ("InvalidPrefixListID.NotFound", "The prefix list ID 'pl-0123456789abcdef0' does not exist")
    # A referenced list is not deleted: AWS accepts the call and fails it in the state.
    out = ec2.delete_managed_prefix_list(PrefixListId=pl)["PrefixList"]
    assert out["State"] == "delete-in-progress"
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert got["State"] == "delete-failed" and group in got["StateMessage"]
    ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=ssh_from(pl))
    with pytest.raises(ClientError) as e:
        ec2.revoke_security_group_ingress(GroupId=group, IpPermissions=ssh_from(pl))
    assert error_code(e) == "InvalidPermission.NotFound"
    assert ec2.get_managed_prefix_list_associations(PrefixListId=pl)["PrefixListAssociations"] == []
    ec2.delete_managed_prefix_list(PrefixListId=pl)
    with pytest.raises(ClientError) as e:
        ec2.describe_managed_prefix_lists(PrefixListIds=[pl])
    assert error_code(e) == "InvalidPrefixListID.NotFound"


def test_a_list_weighs_its_size_against_the_rule_limit(ec2, group):
    pl = make(ec2, max_entries=50)["PrefixListId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": p, "ToPort": p, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]} for p in range(1, 11)])
    # 10 rules and a list of 50: the limit of 60 is reached, not passed.
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=ssh_from(pl))
    with pytest.raises(ClientError) as e:
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    assert refused(e) == ("RulesPerSecurityGroupLimitExceeded", "The maximum number of rules per security group has been reached.")
    # An IPv6 rule counts against the IPv6 limit only.
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    # Growing the list past the group's limit fails in the list's state; its size stays.
    out = ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=51)["PrefixList"]
    assert out["State"] == "modify-in-progress"
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert (got["State"], got["MaxEntries"]) == ("modify-failed", 50)
    assert group in got["StateMessage"]
    # Shrinking it is fine, and makes room.
    ec2.modify_managed_prefix_list(PrefixListId=pl, MaxEntries=40)
    got = ec2.describe_managed_prefix_lists(PrefixListIds=[pl])["PrefixLists"][0]
    assert (got["State"], got["MaxEntries"]) == ("modify-complete", 40)
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
