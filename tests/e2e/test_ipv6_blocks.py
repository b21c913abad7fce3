"""IPv6 blocks of VPCs and subnets through the AWS CLI and boto3: Amazon-provided /56s from
Kumo's pool (RFC 3849's 2001:db8::/32), /64s of them for subnets, what a VPC's first block
brings (routes, ACL and group rules), and AWS's refusals."""

import ipaddress

from conftest import fails


def v6_of(ec2, vpc):
    return ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0].get("Ipv6CidrBlockAssociationSet", [])


def test_a_vpc_with_an_amazon_provided_block(kumo, ec2, cli):
    made = cli("ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--amazon-provided-ipv6-cidr-block")["Vpc"]
    vpc = made["VpcId"]
    [a] = made["Ipv6CidrBlockAssociationSet"]
    # As AWS answers CreateVpc: associating, the block not yet shown.
    assert a["Ipv6CidrBlockState"] == {"State": "associating"} and a["Ipv6CidrBlock"] == ""
    assert a["Ipv6Pool"] == "Amazon" and a["NetworkBorderGroup"] == "eu-west-1" and a["AssociationId"].startswith("vpc-cidr-assoc-")
    [seen] = v6_of(ec2, vpc)
    block = ipaddress.ip_network(seen["Ipv6CidrBlock"])
    assert seen["Ipv6CidrBlockState"]["State"] == "associated" and seen["AssociationId"] == a["AssociationId"]
    assert block.prefixlen == 56 and block.subnet_of(ipaddress.ip_network("2001:db8::/32"))
    # A second VPC gets a block of its own.
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    assert v6_of(ec2, other)[0]["Ipv6CidrBlock"] != seen["Ipv6CidrBlock"]
    # What the block brings: a local route, the default ACL's ::/0 rules, the default group's
    # egress to ::/0.
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]
    assert {"DestinationIpv6CidrBlock": str(block), "GatewayId": "local", "Origin": "CreateRouteTable", "State": "active"} in rtb["Routes"]
    # A table made later has the IPv6 local route too.
    later = ec2.create_route_table(VpcId=vpc)["RouteTable"]
    assert any(r.get("DestinationIpv6CidrBlock") == str(block) for r in later["Routes"])
    acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"][0]
    v6_rules = sorted((e["RuleNumber"], e["Egress"], e["RuleAction"]) for e in acl["Entries"] if e.get("Ipv6CidrBlock") == "::/0")
    assert v6_rules == [(101, False, "allow"), (101, True, "allow"), (32767, False, "deny"), (32767, True, "deny")]
    sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    assert any(p["IpProtocol"] == "-1" and p.get("Ipv6Ranges") == [{"CidrIpv6": "::/0"}] for p in sg["IpPermissionsEgress"])
    # Filters.
    found = ec2.describe_vpcs(Filters=[{"Name": "ipv6-cidr-block-association.ipv6-cidr-block", "Values": [str(block)]}])["Vpcs"]
    assert [v["VpcId"] for v in found] == [vpc]


def test_associate_subnets_and_disassociate(kumo, ec2, cli):
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24")["Subnet"]["SubnetId"]
    assert "Ipv6CidrBlockAssociationSet" not in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]
    # A subnet's IPv6 settings need its IPv6 block.
    assert fails("InvalidParameterValue", ec2.modify_subnet_attribute, SubnetId=subnet, AssignIpv6AddressOnCreation={"Value": True}) == \
        f"Invalid value 'true' for assign-ipv6-address-on-creation. Cannot set assign-ipv6-address-on-creation to true unless the subnet ({subnet}) has an IPv6 CIDR block associated with it."
    fails("InvalidParameterValue", ec2.modify_subnet_attribute, SubnetId=subnet, EnableDns64={"Value": True})
    out = cli("ec2", "associate-vpc-cidr-block", "--vpc-id", vpc, "--amazon-provided-ipv6-cidr-block")
    assoc = out["Ipv6CidrBlockAssociation"]
    assert assoc["Ipv6CidrBlockState"] == {"State": "associating"} and "Ipv6CidrBlock" not in assoc
    block = ipaddress.ip_network(v6_of(ec2, vpc)[0]["Ipv6CidrBlock"])
    # One Amazon-provided block per network border group, so one per VPC here.
    fails("CidrLimitExceeded", ec2.associate_vpc_cidr_block, VpcId=vpc, AmazonProvidedIpv6CidrBlock=True)
    fails("InvalidParameterCombination", ec2.associate_vpc_cidr_block, VpcId=vpc, AmazonProvidedIpv6CidrBlock=True, CidrBlock="10.3.0.0/16")
    fails("InvalidParameterValue", ec2.associate_vpc_cidr_block, VpcId=vpc, AmazonProvidedIpv6CidrBlock=True,
          Ipv6CidrBlockNetworkBorderGroup="us-east-1-wl1")
    fails("Unsupported", ec2.associate_vpc_cidr_block, VpcId=vpc, Ipv6Pool="ipv6pool-ec2-0123456789abcdef0", Ipv6CidrBlock="2600:1f00::/56")

    subnets = list(block.subnets(new_prefix=64))
    got = cli("ec2", "associate-subnet-cidr-block", "--subnet-id", subnet, "--ipv6-cidr-block", str(subnets[1]))
    a = got["Ipv6CidrBlockAssociation"]
    assert got["SubnetId"] == subnet and a["Ipv6CidrBlock"] == str(subnets[1]) and a["Ipv6CidrBlockState"]["State"] == "associating"
    shown = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["Ipv6CidrBlockAssociationSet"]
    assert [(x["Ipv6CidrBlock"], x["Ipv6CidrBlockState"]["State"]) for x in shown] == [(str(subnets[1]), "associated")]
    assert [x["SubnetId"] for x in ec2.describe_subnets(Filters=[{"Name": "ipv6-cidr-block-association.ipv6-cidr-block",
                                                                   "Values": [str(subnets[1])]}])["Subnets"]] == [subnet]
    # AWS's refusals: a /64 only, inside the VPC's block, not another subnet's, one a subnet.
    assert fails("InvalidParameterValue", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.2.0/24", Ipv6CidrBlock=str(block)) == \
        f"invalid value for parameter ipv6-cidr-block: {block}"
    assert fails("InvalidSubnet.Range", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.2.0/24", Ipv6CidrBlock="2001:db8:ffff:ffff::/64") == \
        "The IPv6 CIDR '2001:db8:ffff:ffff::/64' is invalid."
    assert fails("InvalidSubnet.Conflict", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.2.0/24", Ipv6CidrBlock=str(subnets[1])) == \
        f"The IPv6 CIDR '{subnets[1]}' conflicts with another subnet"
    fails("InvalidParameterValue", ec2.associate_subnet_cidr_block, SubnetId=subnet, Ipv6CidrBlock=str(subnets[2]))
    second = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.2.0/24", Ipv6CidrBlock=str(subnets[2]))["Subnet"]
    assert second["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"] == str(subnets[2])
    # IPv6-only subnets are refused by name; AWS's own combination errors come first.
    assert fails("InvalidParameterCombination", ec2.create_subnet, VpcId=vpc, CidrBlock="10.2.3.0/24", Ipv6Native=True,
                 Ipv6CidrBlock=str(subnets[3])).startswith("When specifying ipv4 parameters")
    assert fails("MissingParameter", ec2.create_subnet, VpcId=vpc, Ipv6Native=True) == \
        "Either 'ipv6CidrBlock' or 'ipv6IpamPoolId' should be provided."
    fails("Unsupported", ec2.create_subnet, VpcId=vpc, Ipv6Native=True, Ipv6CidrBlock=str(subnets[3]))
    # With its block, a subnet's IPv6 settings that Kumo cannot carry out are refused by name.
    fails("Unsupported", ec2.modify_subnet_attribute, SubnetId=subnet, EnableDns64={"Value": True})

    # The VPC's block stays while subnets hold /64s of it.
    vpc_assoc = v6_of(ec2, vpc)[0]["AssociationId"]
    assert fails("InvalidCidrBlock.InUse", ec2.disassociate_vpc_cidr_block, AssociationId=vpc_assoc) == \
        f"The vpc {vpc} currently has a subnet within CIDR block {block}"
    fails("InvalidSubnetCidrBlockAssociationId.Malformed", ec2.disassociate_subnet_cidr_block, AssociationId="x")
    fails("InvalidSubnetCidrBlockAssociationID.NotFound", ec2.disassociate_subnet_cidr_block, AssociationId="subnet-cidr-assoc-0123456789abcdef0")
    for x in (subnet, second["SubnetId"]):
        sa = ec2.describe_subnets(SubnetIds=[x])["Subnets"][0]["Ipv6CidrBlockAssociationSet"][0]["AssociationId"]
        out = ec2.disassociate_subnet_cidr_block(AssociationId=sa)
        assert out["Ipv6CidrBlockAssociation"]["Ipv6CidrBlockState"]["State"] == "disassociating"
    out = ec2.disassociate_vpc_cidr_block(AssociationId=vpc_assoc)
    assert out["Ipv6CidrBlockAssociation"]["Ipv6CidrBlock"] == str(block)
    assert out["Ipv6CidrBlockAssociation"]["Ipv6CidrBlockState"]["State"] == "disassociating"
    assert "Ipv6CidrBlockAssociationSet" not in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]
    assert not any("DestinationIpv6CidrBlock" in r for r in rtb["Routes"])
    # The block goes back to the pool, and a VPC may take one again.
    ec2.associate_vpc_cidr_block(VpcId=vpc, AmazonProvidedIpv6CidrBlock=True)
    assert v6_of(ec2, vpc)[0]["Ipv6CidrBlockState"]["State"] == "associated"


def ipv6_subnet(ec2, cidr="10.3.0.0/16"):
    vpc = ec2.create_vpc(CidrBlock=cidr, AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    block = v6_of(ec2, vpc)[0]["Ipv6CidrBlock"]
    net = ipaddress.ip_network(block)
    first = str(next(net.subnets(new_prefix=64)))
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace(".0.0/16", ".1.0/24"), Ipv6CidrBlock=first)["Subnet"]["SubnetId"]
    plain = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace(".0.0/16", ".2.0/24"))["Subnet"]["SubnetId"]
    return vpc, subnet, plain, ipaddress.ip_network(first)


def test_interfaces_take_ipv6_addresses_of_their_subnet(kumo, ec2, cli):
    vpc, subnet, plain, net = ipv6_subnet(ec2)
    eni = ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=2)["NetworkInterface"]
    got = [a["Ipv6Address"] for a in eni["Ipv6Addresses"]]
    assert len(got) == 2 and all(ipaddress.ip_address(a) in net for a in got)
    assert all(a["IsPrimaryIpv6"] is False for a in eni["Ipv6Addresses"])
    # Random, not the block's first addresses (which are reserved).
    assert all(int(ipaddress.ip_address(a)) - int(net.network_address) > 3 for a in got)
    eid = eni["NetworkInterfaceId"]
    chosen = str(net.network_address + 0x10)
    out = cli("ec2", "assign-ipv6-addresses", "--network-interface-id", eid, "--ipv6-addresses", chosen)
    assert out["NetworkInterfaceId"] == eid and out["AssignedIpv6Addresses"] == [chosen]
    more = ec2.assign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6AddressCount=1)["AssignedIpv6Addresses"]
    assert len(more) == 1
    seen = ec2.describe_network_interfaces(NetworkInterfaceIds=[eid])["NetworkInterfaces"][0]
    assert sorted(a["Ipv6Address"] for a in seen["Ipv6Addresses"]) == sorted(got + [chosen] + more)
    found = ec2.describe_network_interfaces(Filters=[{"Name": "ipv6-addresses.ipv6-address", "Values": [chosen]}])
    assert [e["NetworkInterfaceId"] for e in found["NetworkInterfaces"]] == [eid]

    # AWS's errors.
    other = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    assert fails("InvalidIPAddress.InUse", ec2.assign_ipv6_addresses, NetworkInterfaceId=other, Ipv6Addresses=[chosen]) == \
        f"Address {chosen} is in use."
    assert fails("InvalidParameterCombination", ec2.assign_ipv6_addresses, NetworkInterfaceId=other, Ipv6AddressCount=1,
                 Ipv6Addresses=[str(net.network_address + 0x11)]) == \
        "IPv6 addresses and IPv6 address count may not be specified on the same request"
    fails("InvalidParameterValue", ec2.assign_ipv6_addresses, NetworkInterfaceId=other, Ipv6Addresses=["2001:db8:ffff::5"])
    fails("InvalidParameterValue", ec2.assign_ipv6_addresses, NetworkInterfaceId=other, Ipv6Addresses=[str(net.network_address + 1)])
    fails("InvalidParameterValue", ec2.assign_ipv6_addresses, NetworkInterfaceId=other, Ipv6Addresses=["not-an-address"])
    in_plain = ec2.create_network_interface(SubnetId=plain)["NetworkInterface"]["NetworkInterfaceId"]
    fails("InvalidParameterValue", ec2.assign_ipv6_addresses, NetworkInterfaceId=in_plain, Ipv6AddressCount=1)
    fails("InvalidParameterValue", ec2.create_network_interface, SubnetId=plain, Ipv6AddressCount=1)
    fails("InvalidNetworkInterfaceID.NotFound", ec2.assign_ipv6_addresses, NetworkInterfaceId="eni-0123456789abcdef0", Ipv6AddressCount=1)
    # Delegated /80 prefixes: by count (random, aligned) or by name, each one slot.
    got_p = ec2.assign_ipv6_addresses(NetworkInterfaceId=other, Ipv6PrefixCount=1)["AssignedIpv6Prefixes"]
    assert len(got_p) == 1 and ipaddress.ip_network(got_p[0]).prefixlen == 80 and ipaddress.ip_network(got_p[0]).subnet_of(net)
    named = str(ipaddress.ip_network(f"{net.network_address + (0x1234 << 48)}/80"))
    assert ec2.assign_ipv6_addresses(NetworkInterfaceId=other, Ipv6Prefixes=[named])["AssignedIpv6Prefixes"] == [named]
    fails("InvalidIPAddress.InUse", ec2.assign_ipv6_addresses, NetworkInterfaceId=eid, Ipv6Prefixes=[named])
    fails("InvalidIPAddress.InUse", ec2.assign_ipv6_addresses, NetworkInterfaceId=eid,
          Ipv6Addresses=[str(ipaddress.ip_network(named).network_address + 7)])
    fails("InvalidParameterValue", ec2.assign_ipv6_addresses, NetworkInterfaceId=eid, Ipv6Prefixes=[str(net)])
    fails("InvalidParameterCombination", ec2.assign_ipv6_addresses, NetworkInterfaceId=eid, Ipv6PrefixCount=1, Ipv6Prefixes=[named])
    seen_p = ec2.describe_network_interfaces(NetworkInterfaceIds=[other])["NetworkInterfaces"][0]["Ipv6Prefixes"]
    assert sorted(p["Ipv6Prefix"] for p in seen_p) == sorted(got_p + [named])
    out = ec2.unassign_ipv6_addresses(NetworkInterfaceId=other, Ipv6Prefixes=got_p + [named])
    assert sorted(out["UnassignedIpv6Prefixes"]) == sorted(got_p + [named])

    out = ec2.unassign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6Addresses=[chosen])
    assert out["UnassignedIpv6Addresses"] == [chosen] and out["NetworkInterfaceId"] == eid
    assert fails("InvalidParameterValue", ec2.unassign_ipv6_addresses, NetworkInterfaceId=eid, Ipv6Addresses=[chosen]) == \
        f"Some of the specified addresses are not assigned to interface {eid}"
    # Released, the address is free for another interface.
    assert ec2.assign_ipv6_addresses(NetworkInterfaceId=other, Ipv6Addresses=[chosen])["AssignedIpv6Addresses"] == [chosen]
    # The subnet's block stays while interfaces hold addresses of it.
    assoc = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["Ipv6CidrBlockAssociationSet"][0]["AssociationId"]
    fails("InvalidCidrBlock.InUse", ec2.disassociate_subnet_cidr_block, AssociationId=assoc)


def test_instances_take_ipv6_at_launch_and_from_the_subnet_setting(kumo, ec2):
    from conftest import latest_al2023
    vpc, subnet, plain, net = ipv6_subnet(ec2, "10.4.0.0/16")
    ami = latest_al2023(kumo)
    run = lambda **kw: ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, **kw)["Instances"][0]
    i = run(SubnetId=subnet, Ipv6AddressCount=2)
    nic = i["NetworkInterfaces"][0]
    v6 = [a["Ipv6Address"] for a in nic["Ipv6Addresses"]]
    assert len(v6) == 2 and all(ipaddress.ip_address(a) in net for a in v6)
    seen = ec2.describe_instances(InstanceIds=[i["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert seen["Ipv6Address"] == v6[0]
    assert [x["InstanceId"] for r in ec2.describe_instances(Filters=[{"Name": "ipv6-address", "Values": [v6[0]]}])["Reservations"]
            for x in r["Instances"]] == [i["InstanceId"]]
    assert [x["InstanceId"] for r in ec2.describe_instances(Filters=[
        {"Name": "network-interface.ipv6-addresses.ipv6-address", "Values": [v6[1]]}])["Reservations"] for x in r["Instances"]] == [i["InstanceId"]]
    listed = run(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Ipv6Addresses": [{"Ipv6Address": str(net.network_address + 0x20)}]}])
    assert [a["Ipv6Address"] for a in listed["NetworkInterfaces"][0]["Ipv6Addresses"]] == [str(net.network_address + 0x20)]
    # t3.micro holds 2 IPv6 addresses per interface, as 2 IPv4 ones.
    fails("PrivateIpAddressLimitExceeded", run, SubnetId=subnet, Ipv6AddressCount=3)
    fails("InvalidParameterValue", run, SubnetId=plain, Ipv6AddressCount=1)
    # AssignIpv6AddressOnCreation: one address unless the request says otherwise.
    ec2.modify_subnet_attribute(SubnetId=subnet, AssignIpv6AddressOnCreation={"Value": True})
    auto = run(SubnetId=subnet)
    assert len(auto["NetworkInterfaces"][0]["Ipv6Addresses"]) == 1
    none = ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=0)["NetworkInterface"]
    assert none["Ipv6Addresses"] == []
    # The limit counts on a running instance too, and when an interface is attached.
    fails("PrivateIpAddressLimitExceeded", ec2.assign_ipv6_addresses,
          NetworkInterfaceId=nic["NetworkInterfaceId"], Ipv6AddressCount=1)
    three = ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=3)["NetworkInterface"]["NetworkInterfaceId"]
    fails("PrivateIpAddressLimitExceeded", ec2.attach_network_interface, NetworkInterfaceId=three,
          InstanceId=i["InstanceId"], DeviceIndex=1)
    fails("InvalidParameterCombination", run, Ipv6AddressCount=1,
          NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet}])
    assert fails("InvalidParameterValue", run, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Ipv6AddressCount": 1,
                                                                   "Ipv6PrefixCount": 1}]) == \
        "You can and can only specify one of ipv6-addresses or ipv6-addresses-count  ipv6-prefix and ipv6-prefix-count."
    with_prefix = run(NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Ipv6PrefixCount": 1}])
    assert len(with_prefix["NetworkInterfaces"][0]["Ipv6Prefixes"]) == 1


def test_egress_only_gateways_and_ipv6_routes(kumo, ec2, cli):
    vpc, subnet, _, net = ipv6_subnet(ec2, "10.5.0.0/16")
    other = ec2.create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    made = cli("ec2", "create-egress-only-internet-gateway", "--vpc-id", vpc,
               "--tag-specifications", "ResourceType=egress-only-internet-gateway,Tags=[{Key=Name,Value=out6}]")
    eigw = made["EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"]
    assert eigw.startswith("eigw-")
    assert made["EgressOnlyInternetGateway"]["Attachments"] == [{"State": "attached", "VpcId": vpc}]
    assert made["EgressOnlyInternetGateway"]["Tags"] == [{"Key": "Name", "Value": "out6"}]
    got = ec2.describe_egress_only_internet_gateways(EgressOnlyInternetGatewayIds=[eigw])["EgressOnlyInternetGateways"]
    assert [g["EgressOnlyInternetGatewayId"] for g in got] == [eigw]
    tagged = ec2.describe_egress_only_internet_gateways(Filters=[{"Name": "tag:Name", "Values": ["out6"]}])
    assert [g["EgressOnlyInternetGatewayId"] for g in tagged["EgressOnlyInternetGateways"]] == [eigw]
    # An unknown id is no error: the answer is empty.
    assert ec2.describe_egress_only_internet_gateways(EgressOnlyInternetGatewayIds=["eigw-0123456789abcdef0"])[
        "EgressOnlyInternetGateways"] == []
    fails("InvalidVpcID.NotFound", ec2.create_egress_only_internet_gateway, VpcId="vpc-0123456789abcdef0")

    # IPv6 routes: ::/0 through it, a more specific one to an internet gateway.
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=eigw)
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    ec2.create_route(RouteTableId=rtb, DestinationIpv6CidrBlock="2001:db8:ffff::1/48", GatewayId=igw)
    routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
    assert {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": eigw, "Origin": "CreateRoute", "State": "active"} in routes
    assert {"DestinationIpv6CidrBlock": "2001:db8:ffff::/48", "GatewayId": igw, "Origin": "CreateRoute", "State": "active"} in routes
    found = ec2.describe_route_tables(Filters=[{"Name": "route.egress-only-internet-gateway-id", "Values": [eigw]}])["RouteTables"]
    assert [t["RouteTableId"] for t in found] == [rtb]
    assert fails("RouteAlreadyExists", ec2.create_route, RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", GatewayId=igw) == \
        "The route identified by ::/0 already exists."
    fails("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", EgressOnlyInternetGatewayId=eigw)
    assert fails("InvalidParameterValue", ec2.create_route, RouteTableId=rtb, DestinationCidrBlock="::/0", GatewayId=igw) == \
        "Value (::/0) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block."
    assert fails("MissingParameter", ec2.create_route, RouteTableId=rtb, GatewayId=igw) == \
        "The request must contain the parameter destinationCidrBlock or destinationIpv6CidrBlock"
    other_rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [other]}])["RouteTables"][0]["RouteTableId"]
    fails("InvalidGatewayID.NotFound", ec2.create_route, RouteTableId=other_rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=eigw)
    ec2.replace_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", GatewayId=igw)
    ec2.replace_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=eigw)
    assert fails("InvalidRoute.NotFound", ec2.delete_route, RouteTableId=rtb, DestinationIpv6CidrBlock="2001:db8:eeee::/48") == \
        f"no route with destination-ipv6-cidr-block 2001:db8:eeee::/48 in route table {rtb}"

    # A VPC with one cannot go; deleted, its routes are blackholes.
    fails("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    assert ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=eigw)["ReturnCode"] is True
    assert fails("InvalidGatewayID.NotFound", ec2.delete_egress_only_internet_gateway, EgressOnlyInternetGatewayId=eigw) == \
        f"The eigw ID '{eigw}' does not exist"
    routes = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]["Routes"]
    assert [r["State"] for r in routes if r.get("EgressOnlyInternetGatewayId") == eigw] == ["blackhole"]
    ec2.delete_route(RouteTableId=rtb, DestinationIpv6CidrBlock="::/0")
    assert ec2.describe_egress_only_internet_gateways()["EgressOnlyInternetGateways"] == []


def test_a_primary_ipv6_address_stays_with_its_interface(kumo, ec2):
    vpc, subnet, _, net = ipv6_subnet(ec2, "10.7.0.0/16")
    eni = ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=2, EnablePrimaryIpv6=True)["NetworkInterface"]
    first, second = eni["Ipv6Addresses"]
    assert (first["IsPrimaryIpv6"], second["IsPrimaryIpv6"]) == (True, False)
    eid = eni["NetworkInterfaceId"]
    assert fails("InvalidParameterValue", ec2.unassign_ipv6_addresses, NetworkInterfaceId=eid,
                 Ipv6Addresses=[first["Ipv6Address"]]) == \
        f"The primary IPv6 address {first['Ipv6Address']} of interface {eid} cannot be unassigned."
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=eid, Ipv6Addresses=[second["Ipv6Address"]])
    # Enabled later on another interface: its first address becomes the primary one, for good.
    other = ec2.create_network_interface(SubnetId=subnet, Ipv6AddressCount=1)["NetworkInterface"]["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=other, EnablePrimaryIpv6=True)
    got = ec2.describe_network_interfaces(NetworkInterfaceIds=[other])["NetworkInterfaces"][0]["Ipv6Addresses"]
    assert [a["IsPrimaryIpv6"] for a in got] == [True]
    fails("InvalidParameterValue", ec2.modify_network_interface_attribute, NetworkInterfaceId=other, EnablePrimaryIpv6=False)


def test_aaaa_records_of_resource_names_need_the_subnets_block(kumo, ec2):
    vpc, subnet, plain, _ = ipv6_subnet(ec2, "10.8.0.0/16")
    ec2.modify_subnet_attribute(SubnetId=subnet, EnableResourceNameDnsAAAARecordOnLaunch={"Value": True})
    got = ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["PrivateDnsNameOptionsOnLaunch"]
    assert got["EnableResourceNameDnsAAAARecord"] is True
    assert fails("InvalidParameterValue", ec2.modify_subnet_attribute, SubnetId=plain,
                 EnableResourceNameDnsAAAARecordOnLaunch={"Value": True}).startswith(
        "Invalid value 'true' for enable-resource-name-dns-aaaa-record-on-launch.")
    fails("Unsupported", ec2.modify_subnet_attribute, SubnetId=subnet, EnableDns64={"Value": True})
