"""VPC endpoints through the AWS CLI and boto3: interface endpoints (their requester-managed
interfaces, DNS names, groups, private DNS rules), gateway endpoints (their prefix-list routes),
the services Kumo stands behind, the region's AWS-managed prefix lists, and AWS's errors. The
endpoint carrying real calls from an instance is in test_compute_ns.py."""

from conftest import fails

REGION = "eu-west-1"


def network(ec2, dns=True):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    if dns:
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{REGION}b")["Subnet"]["SubnetId"]
    a2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.3.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    return vpc, a, b, a2


def test_interface_endpoint_lifecycle(kumo, ec2, cli):
    vpc, a, b, a2 = network(ec2)
    sg = ec2.create_security_group(GroupName="endpoints", Description="443 from the VPC", VpcId=vpc)["GroupId"]
    made = cli("ec2", "create-vpc-endpoint", "--vpc-id", vpc, "--vpc-endpoint-type", "Interface",
               "--service-name", f"com.amazonaws.{REGION}.ec2", "--subnet-ids", a, b,
               "--security-group-ids", sg,
               "--tag-specifications", "ResourceType=vpc-endpoint,Tags=[{Key=Name,Value=ec2-api}]")["VpcEndpoint"]
    vpce = made["VpcEndpointId"]
    assert vpce.startswith("vpce-") and made["State"] == "pending"
    assert made["VpcEndpointType"] == "Interface" and made["PrivateDnsEnabled"] is True
    assert made["SubnetIds"] == [a, b] and made["Groups"] == [{"GroupId": sg, "GroupName": "endpoints"}]
    assert made["RouteTableIds"] == [] and made["Tags"] == [{"Key": "Name", "Value": "ec2-api"}]
    assert '"Effect": "Allow"' in made["PolicyDocument"]
    # AWS's names: regional, one per zone, then the service's own name with private DNS.
    names = [d["DnsName"] for d in made["DnsEntries"]]
    tag = names[0].split(".")[0][len(vpce) + 1:]
    assert len(tag) == 8
    assert names == [
        f"{vpce}-{tag}.ec2.{REGION}.vpce.amazonaws.com",
        f"{vpce}-{tag}-{REGION}a.ec2.{REGION}.vpce.amazonaws.com",
        f"{vpce}-{tag}-{REGION}b.ec2.{REGION}.vpce.amazonaws.com",
        f"ec2.{REGION}.amazonaws.com",
    ]
    # One requester-managed interface per subnet, in use, with the endpoint's group.
    enis = made["NetworkInterfaceIds"]
    assert len(enis) == 2
    seen = ec2.describe_network_interfaces(NetworkInterfaceIds=enis)["NetworkInterfaces"]
    for e in seen:
        assert e["InterfaceType"] == "vpc_endpoint" and e["RequesterManaged"] is True
        assert e["Description"] == f"VPC Endpoint Interface {vpce}" and e["Status"] == "in-use"
        assert [g["GroupId"] for g in e["Groups"]] == [sg]
    assert sorted(e["SubnetId"] for e in seen) == sorted([a, b])
    fails("InvalidNetworkInterface.InUse", ec2.delete_network_interface, NetworkInterfaceId=enis[0])
    # The endpoint's interfaces are the service's: not attached, re-addressed or regrouped by hand.
    from conftest import latest_al2023
    iid = ec2.run_instances(ImageId=latest_al2023(kumo), InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            SubnetId=a)["Instances"][0]["InstanceId"]
    fails("OperationNotPermitted", ec2.attach_network_interface, NetworkInterfaceId=enis[0], InstanceId=iid, DeviceIndex=1)
    fails("OperationNotPermitted", ec2.assign_private_ip_addresses, NetworkInterfaceId=enis[0], SecondaryPrivateIpAddressCount=1)
    fails("OperationNotPermitted", ec2.modify_network_interface_attribute, NetworkInterfaceId=enis[0], Groups=[sg])
    ec2.terminate_instances(InstanceIds=[iid])

    got = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert got["State"] == "available" and got["NetworkInterfaceIds"] == enis
    def ids(name, *values):
        return [e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints(Filters=[{"Name": name, "Values": list(values)}])["VpcEndpoints"]]
    assert ids("vpc-id", vpc) == [vpce]
    assert ids("service-name", f"com.amazonaws.{REGION}.ec2") == [vpce]
    assert ids("vpc-endpoint-type", "Interface") == [vpce]
    assert ids("vpc-endpoint-state", "available") == [vpce]
    assert ids("tag:Name", "ec2-api") == [vpce]
    assert ids("vpc-endpoint-type", "Gateway") == []

    # AWS's rules: one subnet per zone, one private DNS name per VPC.
    assert fails("DuplicateSubnetsInSameZone", ec2.modify_vpc_endpoint, VpcEndpointId=vpce, AddSubnetIds=[a2]) == \
        f"Found another VPC endpoint subnet in the availability zone of {a}"
    assert fails("InvalidParameter", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
                 ServiceName=f"com.amazonaws.{REGION}.ec2", SubnetIds=[a2]) == \
        f"private-dns-enabled cannot be set because there is already a conflicting DNS domain for ec2.{REGION}.amazonaws.com in the VPC {vpc}"
    # Without private DNS a second endpoint to the service is fine.
    second = ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", ServiceName=f"com.amazonaws.{REGION}.ec2",
                                     SubnetIds=[a2], PrivateDnsEnabled=False)["VpcEndpoint"]
    assert second["PrivateDnsEnabled"] is False
    assert all("vpce.amazonaws.com" in d["DnsName"] for d in second["DnsEntries"])
    # No groups given: the VPC's default group.
    default_sg = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
    assert [g["GroupId"] for g in second["Groups"]] == [default_sg]

    # Modify: move a subnet, change groups and private DNS.
    assert ec2.modify_vpc_endpoint(VpcEndpointId=vpce, RemoveSubnetIds=[b], AddSecurityGroupIds=[default_sg],
                                   RemoveSecurityGroupIds=[sg])["Return"] is True
    got = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert got["SubnetIds"] == [a] and len(got["NetworkInterfaceIds"]) == 1
    assert [g["GroupId"] for g in got["Groups"]] == [default_sg]
    gone = [e for e in enis if e not in got["NetworkInterfaceIds"]]
    fails("InvalidNetworkInterfaceID.NotFound", ec2.describe_network_interfaces, NetworkInterfaceIds=gone)
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=got["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    assert [g["GroupId"] for g in eni["Groups"]] == [default_sg]
    assert fails("InvalidParameter", ec2.modify_vpc_endpoint, VpcEndpointId=vpce, RemoveSecurityGroupIds=[default_sg]) == \
        "A VPC endpoint must have at least one security group."
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, PrivateDnsEnabled=False)
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["PrivateDnsEnabled"] is False

    # In use: the VPC stays.
    fails("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    out = cli("ec2", "delete-vpc-endpoints", "--vpc-endpoint-ids", vpce, second["VpcEndpointId"], "vpce-0123456789abcdef0")
    assert out["Unsuccessful"] == [{
        "Error": {"Code": "InvalidVpcEndpoint.NotFound", "Message": "The Vpc Endpoint Id 'vpce-0123456789abcdef0' does not exist"},
        "ResourceId": "vpce-0123456789abcdef0",
    }]
    # Deleted: shown so for a while, its interfaces gone, the VPC free.
    got = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert got["State"] == "deleted" and got["NetworkInterfaceIds"] == []
    assert ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"] == []
    for s in (a, b, a2):
        ec2.delete_subnet(SubnetId=s)
    ec2.delete_security_group(GroupId=sg)
    ec2.delete_vpc(VpcId=vpc)


def test_interface_endpoint_errors(kumo, ec2):
    vpc, a, b, _ = network(ec2, dns=False)
    svc = f"com.amazonaws.{REGION}.ssm"
    assert fails("InvalidParameter", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
                 ServiceName=svc, SubnetIds=[a]) == \
        f"Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC attributes set to true for {vpc}"
    assert fails("InvalidServiceName", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
                 ServiceName=f"com.amazonaws.{REGION}.organizations", SubnetIds=[a]) == \
        f"The Vpc Endpoint Service 'com.amazonaws.{REGION}.organizations' does not exist"
    # Another region's service is not this region's.
    fails("InvalidServiceName", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
          ServiceName="com.amazonaws.us-east-1.ssm", SubnetIds=[a])
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    assert fails("InvalidParameter", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
                 ServiceName=svc, RouteTableIds=[rtb]) == "Route table IDs are only supported for Gateway type VPC Endpoint."
    fails("InvalidVpcID.NotFound", ec2.create_vpc_endpoint, VpcId="vpc-0123456789abcdef0", VpcEndpointType="Interface",
          ServiceName=svc, PrivateDnsEnabled=False)
    fails("InvalidSubnetID.NotFound", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
          ServiceName=svc, SubnetIds=["subnet-0123456789abcdef0"], PrivateDnsEnabled=False)
    fails("InvalidGroup.NotFound", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
          ServiceName=svc, SubnetIds=[a], SecurityGroupIds=["sg-0123456789abcdef0"], PrivateDnsEnabled=False)
    assert fails("DuplicateSubnetsInSameZone", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
                 ServiceName=svc, SubnetIds=[a, _], PrivateDnsEnabled=False) == \
        f"Found another VPC endpoint subnet in the availability zone of {a}"
    fails("MalformedPolicy", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface",
          ServiceName=svc, PolicyDocument="not json", PrivateDnsEnabled=False)
    fails("InvalidVpcEndpointId.Malformed", ec2.describe_vpc_endpoints, VpcEndpointIds=["vpce-nope"])
    assert fails("InvalidVpcEndpointId.NotFound", ec2.describe_vpc_endpoints, VpcEndpointIds=["vpce-0123456789abcdef0"]) == \
        "The Vpc Endpoint Id 'vpce-0123456789abcdef0' does not exist"
    fails("InvalidVpcEndpointId.NotFound", ec2.modify_vpc_endpoint, VpcEndpointId="vpce-0123456789abcdef0", ResetPolicy=True)
    # Nothing was half-made: no endpoint and no interface.
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []
    assert ec2.describe_network_interfaces(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkInterfaces"] == []
    # DryRun makes nothing.
    fails("DryRunOperation", ec2.create_vpc_endpoint, VpcId=vpc, VpcEndpointType="Interface", ServiceName=svc,
          SubnetIds=[a], PrivateDnsEnabled=False, DryRun=True)
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []


def test_gateway_endpoint_routes(kumo, ec2, cli):
    vpc, a, _, _ = network(ec2)
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    other = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    s3 = f"com.amazonaws.{REGION}.s3"
    [pl] = ec2.describe_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": [s3]}])["PrefixLists"]
    plid = pl["PrefixListId"]
    assert plid.startswith("pl-") and pl["Cidrs"]
    # The type defaults to Gateway; a gateway endpoint is available at once.
    made = cli("ec2", "create-vpc-endpoint", "--vpc-id", vpc, "--service-name", s3,
               "--route-table-ids", main)["VpcEndpoint"]
    vpce = made["VpcEndpointId"]
    assert made["VpcEndpointType"] == "Gateway" and made["State"] == "available"
    assert made["RouteTableIds"] == [main] and made["DnsEntries"] == [] and made["NetworkInterfaceIds"] == []
    assert made["PolicyDocument"] == '{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}'
    routes = ec2.describe_route_tables(RouteTableIds=[main])["RouteTables"][0]["Routes"]
    assert {"DestinationPrefixListId": plid, "GatewayId": vpce, "Origin": "CreateRoute", "State": "active"} in routes
    # One route per prefix list and table.
    assert fails("InvalidParameter", ec2.create_vpc_endpoint, VpcId=vpc, ServiceName=s3, RouteTableIds=[main]) == \
        f"route table {main} already has a route with destination-prefix-list-id {plid}"
    assert fails("InvalidParameter", ec2.create_vpc_endpoint, VpcId=vpc, ServiceName=s3, SubnetIds=[a]) == \
        "Subnet IDs are only supported for Interface and GatewayLoadBalancer type VPC Endpoints."
    fails("InvalidRouteTableID.NotFound", ec2.create_vpc_endpoint, VpcId=vpc, ServiceName=s3,
          RouteTableIds=["rtb-0123456789abcdef0"])
    # A gateway service is not an interface one.
    fails("InvalidParameter", ec2.create_vpc_endpoint, VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.ec2")

    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddRouteTableIds=[other], RemoveRouteTableIds=[main])
    got = ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]
    assert got["RouteTableIds"] == [other]
    tables = {t["RouteTableId"]: t["Routes"] for t in ec2.describe_route_tables(RouteTableIds=[main, other])["RouteTables"]}
    assert not any(r.get("GatewayId") == vpce for r in tables[main])
    assert any(r.get("DestinationPrefixListId") == plid and r.get("GatewayId") == vpce for r in tables[other])
    assert [t["RouteTableId"] for t in ec2.describe_route_tables(
        Filters=[{"Name": "route.destination-prefix-list-id", "Values": [plid]}])["RouteTables"]] == [other]

    # A table deleted leaves the endpoint's list.
    spare = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddRouteTableIds=[spare])
    ec2.delete_route_table(RouteTableId=spare)
    assert ec2.describe_vpc_endpoints(VpcEndpointIds=[vpce])["VpcEndpoints"][0]["RouteTableIds"] == [other]
    assert ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])["Unsuccessful"] == []
    routes = ec2.describe_route_tables(RouteTableIds=[other])["RouteTables"][0]["Routes"]
    assert not any(r.get("GatewayId") == vpce for r in routes)


def test_endpoint_services_and_prefix_lists(kumo, ec2, cli):
    out = cli("ec2", "describe-vpc-endpoint-services")
    names = out["ServiceNames"]
    for short in ("ec2", "ssm", "ssmmessages", "ec2messages", "sts", "monitoring", "s3", "dynamodb"):
        assert f"com.amazonaws.{REGION}.{short}" in names
    assert names == sorted(names)
    details = {d["ServiceName"]: d for d in out["ServiceDetails"]}
    ec2d = details[f"com.amazonaws.{REGION}.ec2"]
    assert ec2d["ServiceType"] == [{"ServiceType": "Interface"}] and ec2d["Owner"] == "amazon"
    assert ec2d["PrivateDnsName"] == f"ec2.{REGION}.amazonaws.com"
    assert ec2d["BaseEndpointDnsNames"] == [f"ec2.{REGION}.vpce.amazonaws.com"]
    assert ec2d["AvailabilityZones"][0] == f"{REGION}a" and ec2d["AcceptanceRequired"] is False
    assert ec2d["ServiceId"].startswith("vpce-svc-")
    s3 = details[f"com.amazonaws.{REGION}.s3"]
    assert s3["ServiceType"] == [{"ServiceType": "Gateway"}] and "PrivateDnsName" not in s3
    gateways = ec2.describe_vpc_endpoint_services(Filters=[{"Name": "service-type", "Values": ["Gateway"]}])
    assert gateways["ServiceNames"] == [f"com.amazonaws.{REGION}.dynamodb", f"com.amazonaws.{REGION}.s3"]
    assert fails("InvalidServiceName", ec2.describe_vpc_endpoint_services,
                 ServiceNames=[f"com.amazonaws.{REGION}.organizations"]) == \
        f"The Vpc Endpoint Service 'com.amazonaws.{REGION}.organizations' does not exist"
    fails("InvalidFilter", ec2.describe_vpc_endpoint_services, Filters=[{"Name": "vpc-id", "Values": ["x"]}])
    # Pages in name order.
    first = ec2.describe_vpc_endpoint_services(MaxResults=5)
    assert len(first["ServiceDetails"]) == 5 and first["NextToken"]
    rest = ec2.describe_vpc_endpoint_services(MaxResults=5, NextToken=first["NextToken"])
    assert first["ServiceNames"] + rest["ServiceNames"] == names and "NextToken" not in rest

    # The region's AWS-managed lists: us-east-1's ids are AWS's own.
    east = kumo_client(kumo, "us-east-1")
    lists = {p["PrefixListName"]: p for p in east.describe_prefix_lists()["PrefixLists"]}
    assert lists["com.amazonaws.us-east-1.s3"]["PrefixListId"] == "pl-63a5400a"
    assert lists["com.amazonaws.us-east-1.dynamodb"]["PrefixListId"] == "pl-02cd2c6b"
    assert east.describe_prefix_lists(PrefixListIds=["pl-63a5400a"])["PrefixLists"][0]["PrefixListName"] == \
        "com.amazonaws.us-east-1.s3"
    fails("InvalidPrefixListID.NotFound", east.describe_prefix_lists, PrefixListIds=["pl-00000000"])
    # They are managed prefix lists owned by AWS: listed, readable, and usable in group rules
    # (the usual egress to S3 through its gateway endpoint), never changed.
    aws = [p for p in east.describe_managed_prefix_lists()["PrefixLists"] if p["OwnerId"] == "AWS"]
    assert sorted(p["PrefixListName"] for p in aws) == ["com.amazonaws.us-east-1.dynamodb", "com.amazonaws.us-east-1.s3"]
    s3 = east.describe_managed_prefix_lists(Filters=[{"Name": "prefix-list-name", "Values": ["com.amazonaws.us-east-1.s3"]}])["PrefixLists"]
    assert [(p["PrefixListId"], p["State"], p["AddressFamily"]) for p in s3] == [("pl-63a5400a", "create-complete", "IPv4")]
    entries = east.get_managed_prefix_list_entries(PrefixListId="pl-63a5400a")["Entries"]
    assert [e["Cidr"] for e in entries] == lists["com.amazonaws.us-east-1.s3"]["Cidrs"]
    vpc = east.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    sg = east.create_security_group(GroupName="to-s3", Description="egress to S3", VpcId=vpc)["GroupId"]
    east.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "PrefixListIds": [{"PrefixListId": "pl-63a5400a"}]}])
    rules = east.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])["SecurityGroupRules"]
    assert any(r.get("PrefixListId") == "pl-63a5400a" for r in rules)
    fails("InvalidPrefixListID.NotFound", east.modify_managed_prefix_list, PrefixListId="pl-63a5400a", CurrentVersion=1,
          AddEntries=[{"Cidr": "192.0.2.0/24"}])


def kumo_client(kumo, region):
    from conftest import make_client
    return make_client(kumo.endpoint, region=region)
