"""Virtual private gateways and customer gateways through the AWS CLI and boto3: their states,
attachments, route propagation and routes, AWS's errors, and CreateVpnConnection's honest
refusal (Kumo builds no tunnels)."""

from conftest import fails


def test_virtual_private_gateway_lifecycle(kumo, ec2, cli):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    made = cli("ec2", "create-vpn-gateway", "--type", "ipsec.1",
               "--tag-specifications", "ResourceType=vpn-gateway,Tags=[{Key=Name,Value=office}]")["VpnGateway"]
    vgw = made["VpnGatewayId"]
    assert vgw.startswith("vgw-")
    assert made["State"] == "available" and made["Type"] == "ipsec.1" and made["AmazonSideAsn"] == 64512
    assert made["VpcAttachments"] == [] and made["Tags"] == [{"Key": "Name", "Value": "office"}]
    asn = ec2.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=65001, AvailabilityZone="eu-west-1a")["VpnGateway"]
    assert asn["AmazonSideAsn"] == 65001 and asn["AvailabilityZone"] == "eu-west-1a"

    out = cli("ec2", "attach-vpn-gateway", "--vpn-gateway-id", vgw, "--vpc-id", vpc)
    assert out == {"VpcAttachment": {"VpcId": vpc, "State": "attaching"}}
    seen = ec2.describe_vpn_gateways(VpnGatewayIds=[vgw])["VpnGateways"][0]
    assert seen["VpcAttachments"] == [{"VpcId": vpc, "State": "attached"}]
    # One gateway per VPC, one VPC per gateway.
    other_vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    fails("VpnGatewayAttachmentLimitExceeded", ec2.attach_vpn_gateway, VpnGatewayId=vgw, VpcId=other_vpc)
    assert fails("InvalidVpcState", ec2.attach_vpn_gateway, VpnGatewayId=asn["VpnGatewayId"], VpcId=vpc) == \
        f"VPC {vpc} is currently attached to the Virtual Private Gateway {vgw}."
    # Filters.
    def ids(name, *values):
        return sorted(g["VpnGatewayId"] for g in ec2.describe_vpn_gateways(Filters=[{"Name": name, "Values": list(values)}])["VpnGateways"])
    assert ids("attachment.vpc-id", vpc) == [vgw]
    assert ids("attachment.state", "attached") == [vgw]
    assert ids("amazon-side-asn", "65001") == [asn["VpnGatewayId"]]
    assert ids("tag:Name", "office") == [vgw]
    assert ids("state", "available") == sorted([vgw, asn["VpnGatewayId"]])

    # Routes to it, and propagation into a table of its VPC.
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="192.168.0.0/16", GatewayId=vgw)
    cli("ec2", "enable-vgw-route-propagation", "--gateway-id", vgw, "--route-table-id", rtb)
    table = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
    assert table["PropagatingVgws"] == [{"GatewayId": vgw}]
    [r] = [r for r in table["Routes"] if r["DestinationCidrBlock"] == "192.168.0.0/16"]
    assert r["GatewayId"] == vgw and r["State"] == "active"
    other_rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [other_vpc]}])["RouteTables"][0]["RouteTableId"]
    assert fails("Gateway.NotAttached", ec2.enable_vgw_route_propagation, GatewayId=vgw, RouteTableId=other_rtb) == \
        f"resource {vgw} is not attached to network {other_vpc}"
    fails("InvalidGatewayID.NotFound", ec2.create_route, RouteTableId=other_rtb, DestinationCidrBlock="192.168.0.0/16", GatewayId=vgw)
    # In use: the VPC and the gateway stay.
    fails("DependencyViolation", ec2.delete_vpc, VpcId=vpc)
    assert fails("IncorrectState", ec2.delete_vpn_gateway, VpnGatewayId=vgw) == "The VPN gateway is in use."

    cli("ec2", "detach-vpn-gateway", "--vpn-gateway-id", vgw, "--vpc-id", vpc)
    seen = ec2.describe_vpn_gateways(VpnGatewayIds=[vgw])["VpnGateways"][0]
    assert seen["VpcAttachments"] == [{"VpcId": vpc, "State": "detached"}]
    # Detached: its propagation ends and its routes are blackholes.
    table = ec2.describe_route_tables(RouteTableIds=[rtb])["RouteTables"][0]
    assert table["PropagatingVgws"] == []
    assert [r["State"] for r in table["Routes"] if r["DestinationCidrBlock"] == "192.168.0.0/16"] == ["blackhole"]
    assert fails("InvalidVpnGatewayAttachment.NotFound", ec2.detach_vpn_gateway, VpnGatewayId=vgw, VpcId=vpc) == \
        f"The attachment with vpn gateway ID '{vgw}' and vpc ID '{vpc}' does not exist"
    ec2.delete_vpn_gateway(VpnGatewayId=vgw)
    assert ec2.describe_vpn_gateways(VpnGatewayIds=[vgw])["VpnGateways"][0]["State"] == "deleted"
    assert fails("InvalidVpnGatewayID.NotFound", ec2.attach_vpn_gateway, VpnGatewayId=vgw, VpcId=vpc) == \
        f"The vpnGateway ID '{vgw}' does not exist"
    ec2.delete_route(RouteTableId=rtb, DestinationCidrBlock="192.168.0.0/16")
    ec2.delete_vpc(VpcId=vpc)


def test_vpn_gateway_errors_and_quota(kumo, ec2):
    fails("InvalidParameterValue", ec2.create_vpn_gateway, Type="ipsec.1", AmazonSideAsn=65535)
    fails("InvalidParameterValue", ec2.create_vpn_gateway, Type="ipsec.1", AmazonSideAsn=7224)
    ec2.create_vpn_gateway(Type="ipsec.1", AmazonSideAsn=4200000000)
    fails("InvalidVpnGatewayID.Malformed", ec2.delete_vpn_gateway, VpnGatewayId="vgw-x")
    fails("InvalidVpnGatewayID.NotFound", ec2.describe_vpn_gateways, VpnGatewayIds=["vgw-0123456789abcdef0"])
    fails("DryRunOperation", ec2.create_vpn_gateway, Type="ipsec.1", DryRun=True)
    for _ in range(4):
        ec2.create_vpn_gateway(Type="ipsec.1")
    assert fails("VpnGatewayLimitExceeded", ec2.create_vpn_gateway, Type="ipsec.1") == \
        "The maximum number of virtual private gateways has been reached."


def test_customer_gateways_and_vpn_connections(kumo, ec2, cli):
    made = cli("ec2", "create-customer-gateway", "--type", "ipsec.1", "--ip-address", "203.0.113.12", "--bgp-asn", "65534",
               "--device-name", "edge-1")["CustomerGateway"]
    cgw = made["CustomerGatewayId"]
    assert cgw.startswith("cgw-")
    assert made["BgpAsn"] == "65534" and made["IpAddress"] == "203.0.113.12" and made["DeviceName"] == "edge-1"
    assert made["State"] == "available" and made["Type"] == "ipsec.1"
    ec2.create_tags(Resources=[cgw], Tags=[{"Key": "site", "Value": "osaka"}])
    assert ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["customer-gateway"]}])["Tags"][0]["ResourceId"] == cgw
    # The same gateway again is the same gateway; a default ASN of 65000.
    again = ec2.create_customer_gateway(Type="ipsec.1", IpAddress="203.0.113.12", BgpAsn=65534, DeviceName="edge-1")["CustomerGateway"]
    assert again["CustomerGatewayId"] == cgw
    plain = ec2.create_customer_gateway(Type="ipsec.1", IpAddress="198.51.100.7")["CustomerGateway"]
    assert plain["BgpAsn"] == "65000" and plain["CustomerGatewayId"] != cgw
    ext = ec2.create_customer_gateway(Type="ipsec.1", IpAddress="198.51.100.8", BgpAsnExtended=4200000001)["CustomerGateway"]
    assert ext["BgpAsnExtended"] == "4200000001"
    got = ec2.describe_customer_gateways(Filters=[{"Name": "ip-address", "Values": ["203.0.113.12"]}])["CustomerGateways"]
    assert [c["CustomerGatewayId"] for c in got] == [cgw]
    got = ec2.describe_customer_gateways(Filters=[{"Name": "bgp-asn", "Values": ["65000"]}])["CustomerGateways"]
    assert [c["CustomerGatewayId"] for c in got] == [plain["CustomerGatewayId"]]
    # AWS's refusals.
    assert fails("MissingParameter", ec2.create_customer_gateway, Type="ipsec.1", BgpAsn=65000) == \
        "The request must contain the parameter ipAddress"
    fails("InvalidParameterValue", ec2.create_customer_gateway, Type="ipsec.1", IpAddress="not-an-ip")
    fails("InvalidParameterCombination", ec2.create_customer_gateway, Type="ipsec.1", IpAddress="198.51.100.9",
          BgpAsn=65000, BgpAsnExtended=4200000001)
    fails("InvalidCustomerGatewayId.Malformed", ec2.delete_customer_gateway, CustomerGatewayId="cgw-x")
    fails("InvalidCustomerGatewayID.NotFound", ec2.delete_customer_gateway, CustomerGatewayId="cgw-0123456789abcdef0")

    # A VPN connection needs tunnels Kumo cannot build: its gateways are checked, then it
    # is refused by name.
    vgw = ec2.create_vpn_gateway(Type="ipsec.1")["VpnGateway"]["VpnGatewayId"]
    fails("InvalidCustomerGatewayID.NotFound", ec2.create_vpn_connection, Type="ipsec.1",
          CustomerGatewayId="cgw-0123456789abcdef0", VpnGatewayId=vgw)
    code, msg = cli.error("ec2", "create-vpn-connection", "--type", "ipsec.1", "--customer-gateway-id", cgw,
                          "--vpn-gateway-id", vgw)
    assert code == "Unsupported" and "tunnels cannot be established" in msg

    cli("ec2", "delete-customer-gateway", "--customer-gateway-id", cgw)
    assert ec2.describe_customer_gateways(CustomerGatewayIds=[cgw])["CustomerGateways"][0]["State"] == "deleted"
    fails("InvalidCustomerGatewayID.NotFound", ec2.delete_customer_gateway, CustomerGatewayId=cgw)
