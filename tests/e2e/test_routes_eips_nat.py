"""Route tables, Elastic IPs and NAT gateways, and ClientToken idempotency."""

import ipaddress

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


@pytest.fixture
def net(ec2):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    return {"vpc": vpc, "subnet": sid, "igw": igw}


def routes(ec2, rtb):
    t = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
    return {r["DestinationCidrBlock"]: r for r in t["Routes"]}


def test_route_tables_and_routes(ec2, net):
    rtb = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]
    assert [r["GatewayId"] for r in rtb["Routes"]] == ["local"]
    rid = rtb["RouteTableId"]
    with pytest.raises(ClientError) as e:
        ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    assert error_code(e) == "InvalidParameterValue", "the gateway is not attached to this VPC"
    ec2.attach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    with pytest.raises(ClientError) as e:
        ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", GatewayId=net["igw"])
    assert error_code(e) == "RouteAlreadyExists"
    assert e.value.response["Error"]["Message"] == "The route identified by 0.0.0.0/0 already exists."
    assert routes(ec2, rid)["0.0.0.0/0"]["State"] == "active"
    with pytest.raises(ClientError) as e:
        ec2.delete_route(RouteTableId=rid, DestinationCidrBlock="10.0.0.0/16")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.delete_route(RouteTableId=rid, DestinationCidrBlock="192.168.0.0/16")
    assert error_code(e) == "InvalidRoute.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.create_route(RouteTableId=rid, DestinationCidrBlock="nonsense", GatewayId=net["igw"])
    assert e.value.response["Error"]["Message"] == "Value (nonsense) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."
    # A detached gateway turns its routes into blackholes.
    ec2.detach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    assert routes(ec2, rid)["0.0.0.0/0"]["State"] == "blackhole"
    ec2.delete_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0")
    assert list(routes(ec2, rid)) == ["10.0.0.0/16"]
    with pytest.raises(ClientError) as e:
        ec2.describe_route_tables(RouteTableIds=["rtb-0123456789abcdef0"])
    assert error_code(e) == "InvalidRouteTableID.NotFound"


def test_associations(ec2, net):
    rid = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    assoc = ec2.associate_route_table(RouteTableId=rid, SubnetId=net["subnet"])
    assert assoc["AssociationState"]["State"] == "associated"
    other = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    with pytest.raises(ClientError) as e:
        ec2.associate_route_table(RouteTableId=other, SubnetId=net["subnet"])
    assert error_code(e) == "Resource.AlreadyAssociated"
    found = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [net["subnet"]]}])["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [rid]
    with pytest.raises(ClientError) as e:
        ec2.delete_route_table(RouteTableId=rid)
    assert error_code(e) == "DependencyViolation"
    assert e.value.response["Error"]["Message"] == f"The routeTable '{rid}' has dependencies and cannot be deleted."
    moved = ec2.replace_route_table_association(AssociationId=assoc["AssociationId"], RouteTableId=other)
    assert moved["NewAssociationId"].startswith("rtbassoc-")
    ec2.delete_route_table(RouteTableId=rid)
    ec2.disassociate_route_table(AssociationId=moved["NewAssociationId"])
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net["vpc"]]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    main_assoc = main["Associations"][0]["RouteTableAssociationId"]
    with pytest.raises(ClientError) as e:
        ec2.disassociate_route_table(AssociationId=main_assoc)
    assert e.value.response["Error"]["Message"] == f"cannot disassociate the main route table association {main_assoc}"
    with pytest.raises(ClientError) as e:
        ec2.delete_route_table(RouteTableId=main["RouteTableId"])
    assert error_code(e) == "DependencyViolation"
    # Making another table the main one frees the old main table.
    ec2.replace_route_table_association(AssociationId=main_assoc, RouteTableId=other)
    ec2.delete_route_table(RouteTableId=main["RouteTableId"])
    now_main = ec2.describe_route_tables(Filters=[{"Name": "association.main", "Values": ["true"]}, {"Name": "vpc-id", "Values": [net["vpc"]]}])["RouteTables"]
    assert [t["RouteTableId"] for t in now_main] == [other]


def test_client_token_idempotency(ec2, net):
    a = ec2.create_route_table(VpcId=net["vpc"], ClientToken="tok-1")["RouteTable"]["RouteTableId"]
    b = ec2.create_route_table(VpcId=net["vpc"], ClientToken="tok-1")["RouteTable"]["RouteTableId"]
    assert a == b
    other_vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    with pytest.raises(ClientError) as e:
        ec2.create_route_table(VpcId=other_vpc, ClientToken="tok-1")
    assert error_code(e) == "IdempotentParameterMismatch"
    e1 = ec2.create_network_interface(SubnetId=net["subnet"], ClientToken="eni-tok")["NetworkInterface"]
    e2 = ec2.create_network_interface(SubnetId=net["subnet"], ClientToken="eni-tok")["NetworkInterface"]
    assert e1["NetworkInterfaceId"] == e2["NetworkInterfaceId"]
    assert len(ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [net["subnet"]]}])["NetworkInterfaces"]) == 1
    # Without a token (boto3 fills a fresh one each call) every call creates.
    ec2.create_network_interface(SubnetId=net["subnet"])
    ec2.create_network_interface(SubnetId=net["subnet"])
    assert len(ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [net["subnet"]]}])["NetworkInterfaces"]) == 3


def test_elastic_ips(ec2, net):
    eni = ec2.create_network_interface(SubnetId=net["subnet"], SecondaryPrivateIpAddressCount=1)["NetworkInterface"]
    eid = eni["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")
    assert alloc["AllocationId"].startswith("eipalloc-") and alloc["Domain"] == "vpc"
    pub = alloc["PublicIp"]
    assert any(ipaddress.ip_address(pub) in ipaddress.ip_network(n) for n in ("198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15"))
    with pytest.raises(ClientError) as e:
        ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eid)
    assert error_code(e) == "Gateway.NotAttached"
    ec2.attach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    assoc = ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eid)["AssociationId"]
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])["NetworkInterfaces"][0]
    assert got["Association"]["PublicIp"] == pub
    assert got["PrivateIpAddresses"][0]["Association"]["AllocationId"] == alloc["AllocationId"]
    assert "Association" not in got["PrivateIpAddresses"][1]
    by_pub = ec2.describe_network_interfaces(Filters=[{"Name": "association.public-ip", "Values": [pub]}])["NetworkInterfaces"]
    assert [n["NetworkInterfaceId"] for n in by_pub] == [eid]
    addr = ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])["Addresses"][0]
    assert (addr["AssociationId"], addr["NetworkInterfaceId"], addr["PrivateIpAddress"]) == (assoc, eid, eni["PrivateIpAddress"])
    with pytest.raises(ClientError) as e:
        ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eid, AllowReassociation=False)
    assert error_code(e) == "Resource.AlreadyAssociated"
    second = eni["PrivateIpAddresses"][1]["PrivateIpAddress"]
    ec2.associate_address(AllocationId=alloc["AllocationId"], NetworkInterfaceId=eid, PrivateIpAddress=second, AllowReassociation=True)
    assert ec2.describe_addresses(PublicIps=[pub])["Addresses"][0]["PrivateIpAddress"] == second
    with pytest.raises(ClientError) as e:
        ec2.detach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    assert error_code(e) == "DependencyViolation"
    with pytest.raises(ClientError) as e:
        ec2.release_address(AllocationId=alloc["AllocationId"])
    assert error_code(e) == "InvalidIPAddress.InUse"
    with pytest.raises(ClientError) as e:
        ec2.release_address(PublicIp=pub)
    assert e.value.response["Error"]["Message"] == "You must specify an allocation id when releasing a VPC elastic IP address"
    current = ec2.describe_addresses(PublicIps=[pub])["Addresses"][0]["AssociationId"]
    ec2.disassociate_address(AssociationId=current)
    ec2.disassociate_address(AssociationId=current)  # idempotent
    ec2.release_address(AllocationId=alloc["AllocationId"])
    with pytest.raises(ClientError) as e:
        ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])
    assert error_code(e) == "InvalidAllocationID.NotFound"
    for _ in range(5):
        ec2.allocate_address(Domain="vpc")
    with pytest.raises(ClientError) as e:
        ec2.allocate_address(Domain="vpc")
    assert error_code(e) == "AddressLimitExceeded"
    pubs = [a["PublicIp"] for a in ec2.describe_addresses()["Addresses"]]
    assert len(set(pubs)) == 5


def test_nat_gateways(ec2, net):
    ec2.attach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=net["subnet"], AllocationId=alloc)["NatGateway"]
    assert nat["State"] == "pending"
    nid = nat["NatGatewayId"]
    waiter = ec2.get_waiter("nat_gateway_available")
    waiter.wait(NatGatewayIds=[nid], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    got = ec2.describe_nat_gateways(NatGatewayIds=[nid])["NatGateways"][0]
    a = got["NatGatewayAddresses"][0]
    assert a["AllocationId"] == alloc and a["PublicIp"] and a["PrivateIp"].startswith("10.0.1.")
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=[a["NetworkInterfaceId"]])["NetworkInterfaces"][0]
    assert eni["InterfaceType"] == "nat_gateway" and eni["RequesterManaged"] is True
    with pytest.raises(ClientError) as e:
        ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
    assert error_code(e) == "InvalidNetworkInterface.InUse"
    rid = ec2.create_route_table(VpcId=net["vpc"])["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rid, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nid)
    r = routes(ec2, rid)["0.0.0.0/0"]
    assert r["NatGatewayId"] == nid and r["State"] == "active"
    by_filter = ec2.describe_nat_gateways(Filter=[{"Name": "subnet-id", "Values": [net["subnet"]]}])["NatGateways"]
    assert [n["NatGatewayId"] for n in by_filter] == [nid]
    ec2.delete_nat_gateway(NatGatewayId=nid)
    got = ec2.describe_nat_gateways(NatGatewayIds=[nid])["NatGateways"][0]
    assert got["State"] == "deleted"
    assert routes(ec2, rid)["0.0.0.0/0"]["State"] == "blackhole"
    left = ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]
    assert "AssociationId" not in left, "the Elastic IP stays allocated, unassociated"
    with pytest.raises(ClientError) as e:
        ec2.describe_nat_gateways(NatGatewayIds=["nat-0123456789abcdef0"])
    assert error_code(e) == "NatGatewayNotFound"


def test_nat_gateway_failures_are_states(ec2, net):
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=net["subnet"], AllocationId=alloc)["NatGateway"]
    assert nat["State"] == "failed"
    assert nat["FailureCode"] == "Gateway.NotAttached"
    assert nat["FailureMessage"] == f"Network {net['vpc']} has no Internet gateway attached"
    ec2.attach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    ok = ec2.create_nat_gateway(SubnetId=net["subnet"], AllocationId=alloc)["NatGateway"]
    assert ok["State"] == "pending"
    again = ec2.create_nat_gateway(SubnetId=net["subnet"], AllocationId=alloc)["NatGateway"]
    assert (again["State"], again["FailureCode"]) == ("failed", "Resource.AlreadyAssociated")
    private = ec2.create_nat_gateway(SubnetId=net["subnet"], ConnectivityType="private")["NatGateway"]
    assert private["ConnectivityType"] == "private" and private["State"] == "pending"


def test_an_addresss_instance_follows_its_interface(ec2, net):
    # Associated while the interface is free, then the interface is attached and detached:
    # the address is on whatever instance the interface is on now, in the answer and the
    # instance-id filter alike.
    subnet = net["subnet"]
    ec2.attach_internet_gateway(InternetGatewayId=net["igw"], VpcId=net["vpc"])
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)

    def on():
        a = ec2.describe_addresses(AllocationIds=[alloc])["Addresses"][0]
        by_filter = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [iid]}])["Addresses"]
        return a.get("InstanceId"), [x["AllocationId"] for x in by_filter]

    assert on() == (None, [])
    att = ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    assert on() == (iid, [alloc])
    ec2.detach_network_interface(AttachmentId=att)
    assert on() == (None, [])
