"""VPC peering connections through the AWS CLI and boto3: within an account, across accounts
and regions, routes to them, their lifecycle over time and AWS's errors. What an active
connection carries is in test_compute_ns.py."""

import datetime

import pytest

from conftest import Cli, fails, make_client
from test_time_credits_events import admin, clocked  # noqa: F401 (a fixture)

OTHER = "222233334444"


@pytest.fixture
def ec2(clocked):
    clocked.reset()
    return make_client(clocked.endpoint)


def vpc(ec2, cidr):
    return ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]


def pcx_of(ec2, pcx):
    return ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])["VpcPeeringConnections"][0]


def test_within_an_account(clocked, ec2):
    cli = Cli(clocked.endpoint)
    me = make_client(clocked.endpoint, service="sts").get_caller_identity()["Account"]
    a, b = vpc(ec2, "10.0.0.0/16"), vpc(ec2, "10.1.0.0/16")
    made = cli("ec2", "create-vpc-peering-connection", "--vpc-id", a, "--peer-vpc-id", b,
               "--tag-specifications", "ResourceType=vpc-peering-connection,Tags=[{Key=Name,Value=ab}]")["VpcPeeringConnection"]
    pcx = made["VpcPeeringConnectionId"]
    assert pcx.startswith("pcx-")
    assert made["Status"] == {"Code": "initiating-request", "Message": f"Initiating Request to {me}"}
    assert made["AccepterVpcInfo"] == {"OwnerId": me, "VpcId": b, "Region": "eu-west-1"}
    assert made["RequesterVpcInfo"]["CidrBlock"] == "10.0.0.0/16"
    assert made["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is False
    assert made["Tags"] == [{"Key": "Name", "Value": "ab"}] and "ExpirationTime" in made
    seen = pcx_of(ec2, pcx)
    assert seen["Status"] == {"Code": "pending-acceptance", "Message": f"Pending Acceptance by {me}"}
    # The same request again answers the same connection.
    assert ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"] == pcx
    # A route may name it before it is active: a blackhole until then.
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [a]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="10.1.0.0/16", VpcPeeringConnectionId=pcx)
    def route():
        rs = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
        return [r for r in rs if r["DestinationCidrBlock"] == "10.1.0.0/16"][0]
    assert route()["State"] == "blackhole" and route()["VpcPeeringConnectionId"] == pcx
    fails("OperationNotPermitted", ec2.modify_vpc_peering_connection_options, VpcPeeringConnectionId=pcx,
          RequesterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True})

    accepted = cli("ec2", "accept-vpc-peering-connection", "--vpc-peering-connection-id", pcx)["VpcPeeringConnection"]
    assert accepted["Status"] == {"Code": "provisioning", "Message": "Provisioning"}
    assert accepted["AccepterVpcInfo"]["CidrBlock"] == "10.1.0.0/16"
    assert accepted["AccepterVpcInfo"]["CidrBlockSet"] == [{"CidrBlock": "10.1.0.0/16"}]
    seen = pcx_of(ec2, pcx)
    assert seen["Status"] == {"Code": "active", "Message": "Active"} and "ExpirationTime" not in seen
    assert route()["State"] == "active"
    assert [r["VpcPeeringConnectionId"] for r in ec2.describe_route_tables(
        Filters=[{"Name": "route.vpc-peering-connection-id", "Values": [pcx]}])["RouteTables"][0]["Routes"]
        if "VpcPeeringConnectionId" in r] == [pcx]
    # Filters.
    def ids(name, *values):
        return [c["VpcPeeringConnectionId"] for c in ec2.describe_vpc_peering_connections(
            Filters=[{"Name": name, "Values": list(values)}])["VpcPeeringConnections"]]
    assert ids("status-code", "active") == [pcx]
    assert ids("accepter-vpc-info.cidr-block", "10.1.0.0/16") == [pcx]
    assert ids("requester-vpc-info.vpc-id", a) == [pcx]
    assert ids("tag:Name", "ab") == [pcx]
    assert ids("status-code", "pending-acceptance") == []
    # Options, on an active connection.
    out = ec2.modify_vpc_peering_connection_options(VpcPeeringConnectionId=pcx,
                                                    RequesterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True})
    assert out["RequesterPeeringConnectionOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    assert pcx_of(ec2, pcx)["RequesterVpcInfo"]["PeeringOptions"]["AllowDnsResolutionFromRemoteVpc"] is True
    # Groups may reference the peer VPC's groups; a VPC not peered is another network.
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=b)["GroupId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=a)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                                                       "UserIdGroupPairs": [{"GroupId": app}]}])
    [perm] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]["IpPermissions"]
    assert perm["UserIdGroupPairs"] == [{"GroupId": app, "UserId": me, "VpcPeeringConnectionId": pcx, "PeeringStatus": "active"}]
    lone = vpc(ec2, "10.3.0.0/16")
    far = ec2.create_security_group(GroupName="far", Description="far", VpcId=lone)["GroupId"]
    assert fails("InvalidGroup.NotFound", ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": far}]}]) == \
        "You have specified two resources that belong to different networks."
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                                                                    "UserIdGroupPairs": [{"GroupId": app}]}])
    # A second connection the other way cannot be made active beside this one.
    back = ec2.create_vpc_peering_connection(VpcId=b, PeerVpcId=a)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    assert fails("VpcPeeringConnectionAlreadyExists", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=back) == \
        f"The vpc peering connection identified by {pcx} already exists."
    # A peered VPC is not deleted.
    fails("DependencyViolation", ec2.delete_vpc, VpcId=b)
    assert ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=back)["Return"] is True

    # Deleted: shown as such for two hours, its routes blackholes.
    assert ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)["Return"] is True
    seen = pcx_of(ec2, pcx)
    assert seen["Status"] == {"Code": "deleted", "Message": f"Deleted by {me}"}
    assert route()["State"] == "blackhole"
    assert fails("InvalidStateTransition", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pcx) == \
        f"Invalid state transition for {pcx}, attempted to transition from deleted to active"
    admin(clocked, "advance-clock", str(2 * 3600 + 60))
    assert fails("InvalidVpcPeeringConnectionID.NotFound", ec2.describe_vpc_peering_connections, VpcPeeringConnectionIds=[pcx]) == \
        f"The vpcPeeringConnection ID '{pcx}' does not exist"
    assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []


def test_overlaps_fail_and_requests_expire(clocked, ec2):
    a, b, c = vpc(ec2, "10.0.0.0/16"), vpc(ec2, "10.0.128.0/17"), vpc(ec2, "10.2.0.0/16")
    failed = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]
    assert failed["Status"] == {"Code": "failed", "Message": "Failed due to incorrect VPC-ID, Account ID, or overlapping CIDR range"}
    fails("InvalidStateTransition", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=failed["VpcPeeringConnectionId"])
    fails("InvalidStateTransition", ec2.delete_vpc_peering_connection, VpcPeeringConnectionId=failed["VpcPeeringConnectionId"])
    # A VPC with itself overlaps itself.
    assert ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=a)["VpcPeeringConnection"]["Status"]["Code"] == "failed"
    # A missing VPC of the same account and region is refused at once; another account's
    # is found out later (failed).
    assert fails("InvalidVpcID.NotFound", ec2.create_vpc_peering_connection, VpcId=a, PeerVpcId="vpc-0123456789abcdef0") == \
        "The vpc ID 'vpc-0123456789abcdef0' does not exist"
    assert ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId="vpc-0123456789abcdef0", PeerOwnerId=OTHER
                                             )["VpcPeeringConnection"]["Status"]["Code"] == "failed"
    pending = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=c)["VpcPeeringConnection"]
    expires = pending["ExpirationTime"]
    assert (expires - datetime.datetime.now(datetime.timezone.utc)).days in (6, 7)
    # Failed requests go after two hours; a pending one expires after seven days and is shown
    # expired for two more.
    admin(clocked, "advance-clock", str(7 * 86400 + 60))
    seen = ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]
    assert [(x["VpcPeeringConnectionId"], x["Status"]["Code"]) for x in seen] == [(pending["VpcPeeringConnectionId"], "expired")]
    fails("InvalidStateTransition", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pending["VpcPeeringConnectionId"])
    ec2.delete_vpc(VpcId=c)
    admin(clocked, "advance-clock", str(2 * 86400))
    assert ec2.describe_vpc_peering_connections()["VpcPeeringConnections"] == []


def test_across_accounts_and_regions(clocked, ec2):
    other = make_client(clocked.endpoint, key=OTHER)
    me = make_client(clocked.endpoint, service="sts").get_caller_identity()["Account"]
    a = vpc(ec2, "10.0.0.0/16")
    b = vpc(other, "10.5.0.0/16")
    pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b, PeerOwnerId=OTHER,
                                            TagSpecifications=[{"ResourceType": "vpc-peering-connection", "Tags": [{"Key": "side", "Value": "requester"}]}]
                                            )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    theirs = pcx_of(other, pcx)
    assert theirs["Status"] == {"Code": "pending-acceptance", "Message": f"Pending Acceptance by {OTHER}"}
    assert theirs["RequesterVpcInfo"]["OwnerId"] == me
    # Tags are each account's own.
    assert theirs["Tags"] == []
    other.create_tags(Resources=[pcx], Tags=[{"Key": "side", "Value": "accepter"}])
    assert pcx_of(other, pcx)["Tags"] == [{"Key": "side", "Value": "accepter"}]
    assert pcx_of(ec2, pcx)["Tags"] == [{"Key": "side", "Value": "requester"}]
    tagged = other.describe_tags(Filters=[{"Name": "resource-type", "Values": ["vpc-peering-connection"]}])["Tags"]
    assert [(t["ResourceId"], t["Value"]) for t in tagged] == [(pcx, "accepter")]
    # Only the accepter accepts or rejects; the requester may withdraw a pending request.
    fails("OperationNotPermitted", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pcx)
    fails("OperationNotPermitted", ec2.reject_vpc_peering_connection, VpcPeeringConnectionId=pcx)
    fails("OperationNotPermitted", other.delete_vpc_peering_connection, VpcPeeringConnectionId=pcx)
    assert other.reject_vpc_peering_connection(VpcPeeringConnectionId=pcx)["Return"] is True
    assert pcx_of(ec2, pcx)["Status"] == {"Code": "rejected", "Message": f"Rejected by {OTHER}"}
    # The accepter sees a rejection for 2 hours, the requester for 2 days.
    admin(clocked, "advance-clock", str(3 * 3600))
    assert pcx_of(ec2, pcx)["Status"]["Code"] == "rejected"
    assert other.describe_vpc_peering_connections()["VpcPeeringConnections"] == []

    # Across accounts, once active, a group names the other account's group by its id.
    again = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b, PeerOwnerId=OTHER)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    theirs_sg = other.create_security_group(GroupName="db", Description="db", VpcId=b)["GroupId"]
    mine_sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=a)["GroupId"]
    pairs = [{"GroupId": mine_sg, "UserId": me}]
    rule = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": pairs}]
    fails("InvalidGroup.NotFound", other.authorize_security_group_ingress, GroupId=theirs_sg, IpPermissions=rule)
    other.accept_vpc_peering_connection(VpcPeeringConnectionId=again)
    other.authorize_security_group_ingress(GroupId=theirs_sg, IpPermissions=rule)
    [pair] = other.describe_security_groups(GroupIds=[theirs_sg])["SecurityGroups"][0]["IpPermissions"][0]["UserIdGroupPairs"]
    assert (pair["UserId"], pair["VpcPeeringConnectionId"]) == (me, again)
    refs = other.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [theirs_sg]}])["SecurityGroupRules"]
    [ref] = [r["ReferencedGroupInfo"] for r in refs if "ReferencedGroupInfo" in r]
    assert ref["UserId"] == me and ref["GroupId"] == mine_sg and ref["VpcPeeringConnectionId"] == again
    other.revoke_security_group_ingress(GroupId=theirs_sg, IpPermissions=rule)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=again)

    # Across regions: the accepter accepts in its own region.
    west = make_client(clocked.endpoint, region="us-west-2")
    w = vpc(west, "10.9.0.0/16")
    cross = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=w, PeerRegion="us-west-2")["VpcPeeringConnection"]
    assert cross["AccepterVpcInfo"]["Region"] == "us-west-2"
    pid = cross["VpcPeeringConnectionId"]
    fails("OperationNotPermitted", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pid)
    assert west.accept_vpc_peering_connection(VpcPeeringConnectionId=pid)["VpcPeeringConnection"]["AccepterVpcInfo"]["CidrBlock"] == "10.9.0.0/16"
    assert pcx_of(ec2, pid)["Status"]["Code"] == "active"
    # Either side deletes an active connection.
    west.delete_vpc_peering_connection(VpcPeeringConnectionId=pid)
    assert pcx_of(ec2, pid)["Status"]["Code"] == "deleted"


def test_errors(clocked, ec2, ec2_raw_clocked):
    a = vpc(ec2, "10.0.0.0/16")
    fails("InvalidVpcPeeringConnectionID.NotFound", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId="pcx-0123456789abcdef0")
    fails("InvalidVpcPeeringConnectionID.NotFound", ec2.delete_vpc_peering_connection, VpcPeeringConnectionId="pcx-0123456789abcdef0")
    fails("InvalidVpcPeeringConnectionId.Malformed", ec2.delete_vpc_peering_connection, VpcPeeringConnectionId="pcx-1")
    fails("InvalidVpcID.NotFound", ec2.create_vpc_peering_connection, VpcId="vpc-0123456789abcdef0", PeerVpcId=a)
    fails("MissingParameter", ec2_raw_clocked.create_vpc_peering_connection, VpcId=a)
    fails("InvalidParameterValue", ec2.create_vpc_peering_connection, VpcId=a, PeerVpcId=a, PeerOwnerId="12")
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [a]}])["RouteTables"][0]["RouteTableId"]
    assert fails("InvalidVpcPeeringConnectionID.NotFound", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.7.0.0/16",
                 VpcPeeringConnectionId="pcx-0123456789abcdef0") == "The vpcPeeringConnection ID 'pcx-0123456789abcdef0' does not exist"
    # A route in a VPC that is no side of the connection.
    b, c = vpc(ec2, "10.1.0.0/16"), vpc(ec2, "10.2.0.0/16")
    pcx = ec2.create_vpc_peering_connection(VpcId=b, PeerVpcId=c)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    fails("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="10.2.0.0/16", VpcPeeringConnectionId=pcx)
    # DryRun changes nothing.
    fails("DryRunOperation", ec2.accept_vpc_peering_connection, VpcPeeringConnectionId=pcx, DryRun=True)
    assert pcx_of(ec2, pcx)["Status"]["Code"] == "pending-acceptance"
    fails("DryRunOperation", ec2.create_vpc_peering_connection, VpcId=a, PeerVpcId=c, DryRun=True)
    assert len(ec2.describe_vpc_peering_connections()["VpcPeeringConnections"]) == 1


@pytest.fixture
def ec2_raw_clocked(clocked):
    return make_client(clocked.endpoint, validate=False)


def test_blocks_follow_and_stale_rules_revoke(clocked, ec2):
    a, b = vpc(ec2, "10.0.0.0/16"), vpc(ec2, "10.1.0.0/16")
    pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    # A block added to a peered VPC joins the connection's blocks; a removed one leaves.
    assoc = ec2.associate_vpc_cidr_block(VpcId=a, CidrBlock="10.50.0.0/16")["CidrBlockAssociation"]["AssociationId"]
    blocks = [c["CidrBlock"] for c in pcx_of(ec2, pcx)["RequesterVpcInfo"]["CidrBlockSet"]]
    assert blocks == ["10.0.0.0/16", "10.50.0.0/16"]
    ec2.disassociate_vpc_cidr_block(AssociationId=assoc)
    assert [c["CidrBlock"] for c in pcx_of(ec2, pcx)["RequesterVpcInfo"]["CidrBlockSet"]] == ["10.0.0.0/16"]
    # A rule naming the peer's group outlives the connection: it can still be revoked once
    # the connection is gone (a stale rule), and a new connection brings it back to life.
    web = ec2.create_security_group(GroupName="web", Description="web", VpcId=b)["GroupId"]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=a)["GroupId"]
    rule = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": app}]}]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=rule)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=rule)
    assert ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"][0]["IpPermissions"] == []
