"""Subnets, ENIs, private IPs, /28 prefixes and subnet CIDR reservations: AWS's allocation
rules, exactly."""

import ipaddress

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


@pytest.fixture
def vpc(ec2):
    return ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]


def subnet(ec2, vpc, cidr, **kw):
    return ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, **kw)["Subnet"]["SubnetId"]


def available(ec2, sid):
    return ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["AvailableIpAddressCount"]


def test_subnet_rules(cli, ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.1.0/24", AvailabilityZone="eu-west-1b")
    s = ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]
    assert s["AvailableIpAddressCount"] == 251
    assert s["AvailabilityZone"] == "eu-west-1b" and s["AvailabilityZoneId"].startswith("euw1-az")
    assert s["SubnetArn"] == f"arn:aws:ec2:eu-west-1:000000000000:subnet/{sid}"
    code, msg = cli.error("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.0.1.128/25")
    assert (code, msg) == ("InvalidSubnet.Conflict", "The CIDR '10.0.1.128/25' conflicts with another subnet")
    for bad in ("10.1.0.0/24", "10.0.0.0/29", "10.0.0.0/15"):
        code, msg = cli.error("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", bad)
        assert (code, msg) == ("InvalidSubnet.Range", f"The CIDR '{bad}' is invalid.")
    code, msg = cli.error("ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.0.9.0/24", "--availability-zone", "eu-west-1z")
    assert code == "InvalidParameterValue"
    assert msg.startswith("Value (eu-west-1z) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: eu-west-1a")
    zid = ec2.describe_availability_zones(ZoneNames=["eu-west-1c"])["AvailabilityZones"][0]["ZoneId"]
    s2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/28", AvailabilityZoneId=zid)["Subnet"]
    assert s2["AvailabilityZone"] == "eu-west-1c" and s2["AvailableIpAddressCount"] == 11
    code, msg = cli.error("ec2", "describe-subnets", "--subnet-ids", "subnet-0123456789abcdef0")
    assert (code, msg) == ("InvalidSubnetID.NotFound", "The subnet ID 'subnet-0123456789abcdef0' does not exist")
    ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
    got = ec2.describe_subnets(Filters=[{"Name": "map-public-ip-on-launch", "Values": ["true"]}, {"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    assert [x["SubnetId"] for x in got] == [sid]
    got = ec2.describe_subnets(Filters=[{"Name": "available-ip-address-count", "Values": ["11"]}])["Subnets"]
    assert [x["SubnetId"] for x in got] == [s2["SubnetId"]]


def test_automatic_addresses_skip_the_five_reserved(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.3.0/28")
    eni = ec2.create_network_interface(SubnetId=sid, SecondaryPrivateIpAddressCount=10)["NetworkInterface"]
    addrs = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]]
    assert addrs == [f"10.0.3.{i}" for i in range(4, 15)]
    assert eni["PrivateIpAddress"] == "10.0.3.4" and eni["PrivateIpAddresses"][0]["Primary"] is True
    assert available(ec2, sid) == 0
    with pytest.raises(ClientError) as e:
        ec2.create_network_interface(SubnetId=sid)
    assert error_code(e) == "InsufficientFreeAddressesInSubnet"
    assert e.value.response["Error"]["Message"] == "The specified subnet does not have enough free addresses to satisfy the request."
    # Deleting the ENI frees its addresses.
    ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    assert available(ec2, sid) == 11


def test_requested_addresses(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.4.0/24")
    eni = ec2.create_network_interface(SubnetId=sid, PrivateIpAddress="10.0.4.100")["NetworkInterface"]
    assert eni["PrivateIpAddress"] == "10.0.4.100"
    cases = [
        ("10.0.4.100", "InvalidIPAddress.InUse", "Address 10.0.4.100 is in use."),
        ("10.0.5.10", "InvalidParameterValue", "Address 10.0.5.10 does not fall within the subnet's address range"),
        ("10.0.4.0", "InvalidParameterValue", None),
        ("10.0.4.3", "InvalidParameterValue", None),
        ("10.0.4.255", "InvalidParameterValue", None),
    ]
    for addr, code, msg in cases:
        with pytest.raises(ClientError) as e:
            ec2.create_network_interface(SubnetId=sid, PrivateIpAddress=addr)
        assert error_code(e) == code, addr
        if msg:
            assert e.value.response["Error"]["Message"] == msg
    two = ec2.create_network_interface(
        SubnetId=sid,
        PrivateIpAddresses=[{"PrivateIpAddress": "10.0.4.20", "Primary": True}, {"PrivateIpAddress": "10.0.4.21", "Primary": False}],
    )["NetworkInterface"]
    assert [(a["PrivateIpAddress"], a["Primary"]) for a in two["PrivateIpAddresses"]] == [("10.0.4.20", True), ("10.0.4.21", False)]
    assert available(ec2, sid) == 251 - 3


def test_assign_and_unassign(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.6.0/24")
    a = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    b = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    out = ec2.assign_private_ip_addresses(NetworkInterfaceId=a, SecondaryPrivateIpAddressCount=2)
    assert [x["PrivateIpAddress"] for x in out["AssignedPrivateIpAddresses"]] == ["10.0.6.6", "10.0.6.7"]
    ec2.assign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=["10.0.6.50"])
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=b, PrivateIpAddresses=["10.0.6.50"])
    assert error_code(e) == "InvalidIPAddress.InUse"
    # AllowReassignment moves the address.
    ec2.assign_private_ip_addresses(NetworkInterfaceId=b, PrivateIpAddresses=["10.0.6.50"], AllowReassignment=True)
    addrs = lambda eni: [x["PrivateIpAddress"] for x in ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]["PrivateIpAddresses"]]  # noqa: E731
    assert "10.0.6.50" in addrs(b) and "10.0.6.50" not in addrs(a)
    # A primary address never moves.
    primary_b = addrs(b)[0]
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=[primary_b], AllowReassignment=True)
    assert error_code(e) == "InvalidIPAddress.InUse"
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=["10.0.6.60"], SecondaryPrivateIpAddressCount=1)
    assert error_code(e) == "InvalidParameterCombination"
    before = available(ec2, sid)
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=["10.0.6.6"])
    assert available(ec2, sid) == before + 1
    with pytest.raises(ClientError) as e:
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=[addrs(a)[0]])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=a, PrivateIpAddresses=["10.0.6.99"])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId="eni-0123456789abcdef0", SecondaryPrivateIpAddressCount=1)
    assert error_code(e) == "InvalidNetworkInterfaceID.NotFound"
    assert e.value.response["Error"]["Message"] == "The networkInterface ID 'eni-0123456789abcdef0' does not exist"


def test_prefix_delegation(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.7.0/24")
    eni = ec2.create_network_interface(SubnetId=sid, Ipv4PrefixCount=2)["NetworkInterface"]
    prefixes = [p["Ipv4Prefix"] for p in eni["Ipv4Prefixes"]]
    # The first /28 holds reserved addresses (and the primary), so the next ones are taken.
    assert prefixes == ["10.0.7.16/28", "10.0.7.32/28"]
    assert available(ec2, sid) == 251 - 1 - 32
    eid = eni["NetworkInterfaceId"]
    out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eid, Ipv4Prefixes=["10.0.7.160/28"])
    assert out["AssignedIpv4Prefixes"] == [{"Ipv4Prefix": "10.0.7.160/28"}]
    for bad in ("10.0.7.168/28", "10.0.7.176/29", "10.0.8.0/28"):
        with pytest.raises(ClientError) as e:
            ec2.assign_private_ip_addresses(NetworkInterfaceId=eid, Ipv4Prefixes=[bad])
        assert error_code(e) in ("InvalidParameterValue", "InvalidIPAddress.InUse"), bad
    # An address inside a delegated prefix is in use.
    with pytest.raises(ClientError) as e:
        ec2.create_network_interface(SubnetId=sid, PrivateIpAddress="10.0.7.20")
    assert error_code(e) == "InvalidIPAddress.InUse"
    found = ec2.describe_network_interfaces(Filters=[{"Name": "ipv4-prefix.ipv4-prefix", "Values": ["10.0.7.160/28"]}])["NetworkInterfaces"]
    assert [n["NetworkInterfaceId"] for n in found] == [eid]
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eid, Ipv4Prefixes=["10.0.7.16/28"])
    assert available(ec2, sid) == 251 - 1 - 32
    with pytest.raises(ClientError) as e:
        ec2.create_network_interface(SubnetId=sid, Ipv4Prefixes=[{"Ipv4Prefix": "10.0.7.48/28"}], Ipv4PrefixCount=1)
    assert error_code(e) == "InvalidParameterCombination"


def test_cidr_reservations(cli, ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.8.0/24")
    explicit = ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.8.0/26", ReservationType="explicit", Description="by hand")["SubnetCidrReservation"]
    assert explicit["SubnetCidrReservationId"].startswith("scr-") and explicit["ReservationType"] == "explicit"
    prefix = ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.8.128/26", ReservationType="prefix")["SubnetCidrReservation"]
    with pytest.raises(ClientError) as e:
        ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.8.32/27", ReservationType="prefix")
    assert error_code(e) == "InvalidParameterValue"
    assert e.value.response["Error"]["Message"] == "Reservation CIDR 10.0.8.32/27 has overlap with existing reserved CIDR block"
    with pytest.raises(ClientError) as e:
        ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.9.0/28", ReservationType="prefix")
    assert error_code(e) == "InvalidParameterValue"
    # Automatic addresses skip both reservations.
    eni = ec2.create_network_interface(SubnetId=sid, SecondaryPrivateIpAddressCount=1)["NetworkInterface"]
    assert [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]] == ["10.0.8.64", "10.0.8.65"]
    # Prefixes come from the prefix reservation first.
    out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni["NetworkInterfaceId"], Ipv4PrefixCount=1)
    assert out["AssignedIpv4Prefixes"] == [{"Ipv4Prefix": "10.0.8.128/28"}]
    # An explicit reservation is for addresses assigned by hand.
    hand = ec2.create_network_interface(SubnetId=sid, PrivateIpAddress="10.0.8.10")["NetworkInterface"]
    assert hand["PrivateIpAddress"] == "10.0.8.10"
    # Freed inside a reservation: not handed out again automatically.
    ec2.delete_network_interface(NetworkInterfaceId=hand["NetworkInterfaceId"])
    nxt = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    assert nxt["PrivateIpAddress"] == "10.0.8.66"
    got = ec2.get_subnet_cidr_reservations(SubnetId=sid)
    assert sorted(r["Cidr"] for r in got["SubnetIpv4CidrReservations"]) == ["10.0.8.0/26", "10.0.8.128/26"]
    assert got["SubnetIpv6CidrReservations"] == []
    only = ec2.get_subnet_cidr_reservations(SubnetId=sid, Filters=[{"Name": "reservationType", "Values": ["prefix"]}])
    assert [r["Cidr"] for r in only["SubnetIpv4CidrReservations"]] == ["10.0.8.128/26"]
    deleted = ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=explicit["SubnetCidrReservationId"])
    assert deleted["DeletedSubnetCidrReservation"]["Cidr"] == "10.0.8.0/26"
    with pytest.raises(ClientError) as e:
        ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=explicit["SubnetCidrReservationId"])
    assert error_code(e) == "InvalidSubnetCidrReservationID.NotFound"
    assert prefix["SubnetId"] == sid


def test_eni_describe_filters_and_attributes(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.10.0/24")
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    e1 = ec2.create_network_interface(SubnetId=sid, Description="first", Groups=[sg],
                                      TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "web"}]}])["NetworkInterface"]
    e2 = ec2.create_network_interface(SubnetId=sid, SecondaryPrivateIpAddressCount=1)["NetworkInterface"]
    assert e1["Groups"] == [{"GroupId": sg, "GroupName": "web"}]
    assert e2["Groups"][0]["GroupName"] == "default"
    ids = lambda *f: sorted(n["NetworkInterfaceId"] for n in ec2.describe_network_interfaces(Filters=list(f))["NetworkInterfaces"])  # noqa: E731
    second = e2["PrivateIpAddresses"][1]["PrivateIpAddress"]
    assert ids({"Name": "addresses.private-ip-address", "Values": [second]}) == [e2["NetworkInterfaceId"]]
    assert ids({"Name": "private-ip-address", "Values": [second]}) == []
    assert ids({"Name": "group-name", "Values": ["web"]}) == [e1["NetworkInterfaceId"]]
    assert ids({"Name": "tag:role", "Values": ["web"]}) == [e1["NetworkInterfaceId"]]
    assert ids({"Name": "subnet-id", "Values": [sid]}, {"Name": "status", "Values": ["available"]}) == sorted([e1["NetworkInterfaceId"], e2["NetworkInterfaceId"]])
    assert ids({"Name": "description", "Values": ["fir*"]}) == [e1["NetworkInterfaceId"]]
    mac = e1["MacAddress"]
    assert ids({"Name": "mac-address", "Values": [mac]}) == [e1["NetworkInterfaceId"]]
    with pytest.raises(ClientError) as e:
        ec2.describe_network_interfaces(NetworkInterfaceIds=[e1["NetworkInterfaceId"]], MaxResults=5)
    assert error_code(e) == "InvalidParameterCombination"
    eid = e1["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, SourceDestCheck={"Value": False})
    assert ec2.describe_network_interface_attribute(NetworkInterfaceId=eid, Attribute="sourceDestCheck")["SourceDestCheck"]["Value"] is False
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, Description={"Value": "changed"})
    assert ec2.describe_network_interface_attribute(NetworkInterfaceId=eid, Attribute="description")["Description"]["Value"] == "changed"
    default_sg = e2["Groups"][0]["GroupId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, Groups=[default_sg, sg])
    groups = ec2.describe_network_interface_attribute(NetworkInterfaceId=eid, Attribute="groupSet")["Groups"]
    assert sorted(g["GroupId"] for g in groups) == sorted([default_sg, sg])
    other_vpc_sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]]}])["SecurityGroups"][0]["GroupId"]
    with pytest.raises(ClientError) as e:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=eid, Groups=[other_vpc_sg])
    assert error_code(e) == "InvalidGroup.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.delete_subnet(SubnetId=sid)
    assert error_code(e) == "DependencyViolation"
    assert e.value.response["Error"]["Message"] == f"The subnet '{sid}' has dependencies and cannot be deleted."


def test_a_recreated_eni_gets_a_fresh_address(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.11.0/24")
    ec2.create_network_interface(SubnetId=sid)
    e = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    ec2.delete_network_interface(NetworkInterfaceId=e["NetworkInterfaceId"])
    again = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]
    assert again["NetworkInterfaceId"] != e["NetworkInterfaceId"]
    assert again["PrivateIpAddress"] != e["PrivateIpAddress"]
    assert ipaddress.ip_address(again["PrivateIpAddress"]) in ipaddress.ip_network("10.0.11.0/24")


def test_deleting_a_reservation_frees_its_addresses_for_automatic_use(ec2, vpc):
    sid = subnet(ec2, vpc, "10.0.12.0/28")
    scr = ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.0.12.0/29", ReservationType="explicit")["SubnetCidrReservation"]
    # .8–.14 are outside the reservation: seven addresses, then the subnet is full for automatic use.
    ec2.create_network_interface(SubnetId=sid, SecondaryPrivateIpAddressCount=6)
    with pytest.raises(ClientError) as e:
        ec2.create_network_interface(SubnetId=sid)
    assert error_code(e) == "InsufficientFreeAddressesInSubnet"
    assert available(ec2, sid) == 4, "reserved addresses still count as available"
    ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=scr["SubnetCidrReservationId"])
    got = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["PrivateIpAddress"]
    assert got in {"10.0.12.4", "10.0.12.5", "10.0.12.6", "10.0.12.7"}


def test_interface_settings_kumo_cannot_honour_are_refused_by_name(ec2, vpc):
    """EFA and trunk interfaces and connection tracking
    are refused, not ignored: an interface without them is not what was asked for."""
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.9.0/24")["Subnet"]["SubnetId"]
    for extra in (
        {"InterfaceType": "efa"},
        {"InterfaceType": "trunk"},
        {"ConnectionTrackingSpecification": {"TcpEstablishedTimeout": 86400}},
    ):
        with pytest.raises(ClientError) as e:
            ec2.create_network_interface(SubnetId=subnet, **extra)
        assert error_code(e) == "Unsupported", extra
        assert e.value.response["Error"]["Message"].startswith("Kumo does not support the CreateNetworkInterface setting"), extra
    assert ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet]}])["NetworkInterfaces"] == []
