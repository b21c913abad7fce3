"""Every filter the EC2 API reference lists for the Describe operations Kumo serves either
works or answers AWS's invalid-filter error: none is accepted and then silently matches
nothing. The names come from the AWS model's documentation strings (botocore's copy), so a
filter AWS adds shows up here by itself.

For each operation a world with one of everything is built, then each documented name is
asked with the value `*` (any value): the answer must hold something, or be the
`InvalidParameterValue` "The filter '…' is invalid" refusal. The few names that stay empty
for a reason in this world (a field this world leaves blank, as AWS would) are listed with
that reason. A name that matches must also stop matching for a value nothing has."""

import pathlib
import re
import subprocess

import botocore.session
import pytest
from botocore.exceptions import ClientError

from conftest import KUMO_BIN, make_client

MODEL = botocore.session.get_session().get_service_model("ec2")


def documented(op):
    """The filter names the model's documentation lists for an operation's `Filters`."""
    shape = MODEL.operation_model(op).input_shape
    member = shape.members.get("Filters") or shape.members.get("Filter")
    doc = member.documentation.replace("&lt;", "<").replace("&gt;", ">")
    names = re.findall(r"<li>\s*<p>\s*<code>(.+?)</code>", doc)
    # `tag:<key>` is a pattern: asked for with the key every resource here carries.
    names = [n.strip().replace("tag:<key>", "tag:Name") for n in names]
    return sorted({n for n in names if "<" not in n and " " not in n})


# (operation, boto3 method, result key, extra arguments, names that stay empty here: why)
CASES = {
    "DescribeInstances": ("describe_instances", "Reservations", {}, {
        "affinity": "no dedicated host placement",
        "host-id": "no dedicated host",
        "capacity-reservation-id": "no capacity reservation targeted",
        "iam-instance-profile.id": "no instance profile",
        "iam-instance-profile.name": "no instance profile",
        "iam-instance-profile.arn": "no instance profile",
        "kernel-id": "HVM image: no kernel",
        "ramdisk-id": "HVM image: no ramdisk",
        "outpost-arn": "no Outpost",
        "placement-group-name": "no placement group",
        "placement-partition-number": "no placement group",
        "spot-instance-request-id": "not a Spot instance",
        "instance-lifecycle": "on-demand: AWS leaves it out",
        "product-code": "no product codes",
        "product-code.type": "no product codes",
        "platform": "Linux: AWS leaves it out",
        "state-reason-code": "running: no state reason",
        "state-reason-message": "running: no state reason",
        "network-interface.ipv6-address": "no IPv6",
        "network-interface.ipv6-addresses.ipv6-address": "no IPv6",
        "network-interface.ipv6-addresses.is-primary-ipv6": "no IPv6",
        "ipv6-address": "no IPv6",
        "network-interface.association.carrier-ip": "no carrier gateway",
        "network-interface.addresses.association.carrier-ip": "no carrier gateway",
        "network-interface.association.customer-owned-ip": "no Outpost",
        "network-interface.addresses.association.customer-owned-ip": "no Outpost",
        "network-interface.attachment.network-card-index": "AWS leaves it out on single-card types",
        "elastic-gpu-association-id": "no Elastic GPU",
        "tpm-support": "no NitroTPM",
        "operator.managed": "not a managed instance",
        "operator.principal": "not a managed instance",
        "network-interface.ipv6-prefixes.ipv6-prefix": "no IPv6",
        "network-interface.ipv6-native": "no IPv6: AWS shows it on IPv6-only interfaces",
        "network-interface.deny-all-igw-traffic": "no IPv6: AWS shows it on IPv6 interfaces",
        "network-interface.outpost-arn": "no Outpost",
        "network-interface.requester-id": "not an interface a service made",
        "requester-id": "not launched by a service",
    }),
    "DescribeVolumes": ("describe_volumes", "Volumes", {}, {}),
    "DescribeSnapshots": ("describe_snapshots", "Snapshots", {"OwnerIds": ["self"]}, {
        "owner-alias": "own snapshots: no alias",
        "transfer-type": "not a copy",
    }),
    "DescribeImages": ("describe_images", "Images", {"Owners": ["self"]}, {
        "kernel-id": "HVM image: no kernel",
        "ramdisk-id": "HVM image: no ramdisk",
        "owner-alias": "own image: no alias",
        "platform": "Linux: AWS leaves it out",
        "product-code": "no product codes",
        "product-code.type": "no product codes",
        "source-image-id": "made by CreateImage, not copied",
        "source-image-region": "made by CreateImage, not copied",
        "state-reason-code": "available: no state reason",
        "state-reason-message": "available: no state reason",
    }),
    "DescribeVpcs": ("describe_vpcs", "Vpcs", {}, {
        "ipv6-cidr-block-association.association-id": "no IPv6",
        "ipv6-cidr-block-association.ipv6-cidr-block": "no IPv6",
        "ipv6-cidr-block-association.ipv6-pool": "no IPv6",
        "ipv6-cidr-block-association.state": "no IPv6",
    }),
    "DescribeSubnets": ("describe_subnets", "Subnets", {}, {
        "customer-owned-ipv4-pool": "no Outpost",
        "outpost-arn": "no Outpost",
        "enable-lni-at-device-index": "no Outpost: AWS leaves it out",
        "ipv6-cidr-block-association.association-id": "no IPv6",
        "ipv6-cidr-block-association.ipv6-cidr-block": "no IPv6",
        "ipv6-cidr-block-association.state": "no IPv6",
    }),
    "DescribeSecurityGroups": ("describe_security_groups", "SecurityGroups", {}, {
        "ip-permission.ipv6-cidr": "no IPv6 rule",
        "egress.ip-permission.ipv6-cidr": "no IPv6 rule",
    }),
    "DescribeManagedPrefixLists": ("describe_managed_prefix_lists", "PrefixLists", {}, {}),
    "DescribeSecurityGroupRules": ("describe_security_group_rules", "SecurityGroupRules", {}, {}),
    "DescribeNetworkInterfaces": ("describe_network_interfaces", "NetworkInterfaces", {}, {
        "ipv6-addresses.ipv6-address": "no IPv6",
    }),
    "DescribeAddresses": ("describe_addresses", "Addresses", {}, {}),
    "DescribeRouteTables": ("describe_route_tables", "RouteTables", {}, {
        "association.gateway-id": "no gateway (edge) association",
        "route.destination-ipv6-cidr-block": "no IPv6",
        "route.destination-prefix-list-id": "no prefix lists",
        "route.egress-only-internet-gateway-id": "no egress-only gateway",
        "route.transit-gateway-id": "no transit gateway",
        "route.vpc-peering-connection-id": "no peering",
    }),
    "DescribeInternetGateways": ("describe_internet_gateways", "InternetGateways", {}, {}),
    "DescribeNatGateways": ("describe_nat_gateways", "NatGateways", {}, {}),
    "DescribeKeyPairs": ("describe_key_pairs", "KeyPairs", {}, {}),
    "DescribeNetworkAcls": ("describe_network_acls", "NetworkAcls", {}, {
        "entry.icmp.code": "the default ACL's entries are for all protocols",
        "entry.icmp.type": "the default ACL's entries are for all protocols",
        "entry.port-range.from": "the default ACL's entries are for all protocols",
        "entry.port-range.to": "the default ACL's entries are for all protocols",
        "entry.ipv6-cidr": "no IPv6",
    }),
    "DescribeDhcpOptions": ("describe_dhcp_options", "DhcpOptions", {}, {}),
    "DescribeTags": ("describe_tags", "Tags", {}, {}),
    "DescribeVolumeStatus": ("describe_volume_status", "VolumeStatuses", {}, {
        "action.code": "no volume event",
        "action.description": "no volume event",
        "action.event-id": "no volume event",
        "event.description": "no volume event",
        "event.event-id": "no volume event",
        "event.event-type": "no volume event",
        "event.not-after": "no volume event",
        "event.not-before": "no volume event",
    }),
    "DescribeVolumesModifications": ("describe_volumes_modifications", "VolumesModifications", {}, {}),
    "DescribeInstanceStatus": ("describe_instance_status", "InstanceStatuses", {"IncludeAllInstances": True}, {
        "event.not-after": "a system reboot has no end time",
    }),
    "DescribeInstanceCreditSpecifications": ("describe_instance_credit_specifications", "InstanceCreditSpecifications", {}, {}),
    "DescribeAvailabilityZones": ("describe_availability_zones", "AvailabilityZones", {}, {
        "message": "no zone has a message",
        "parent-zone-id": "availability zones have no parent (local zones do)",
        "parent-zone-name": "availability zones have no parent (local zones do)",
    }),
    "DescribeRegions": ("describe_regions", "Regions", {}, {}),
    "DescribeInstanceTypes": ("describe_instance_types", "InstanceTypes", {}, {}),
    "DescribeInstanceTypeOfferings": ("describe_instance_type_offerings", "InstanceTypeOfferings", {}, {}),
}


# Names Kumo takes beyond the pinned model's list: the aliases AWS also accepts (Ansible sends
# `cidr-block` and `isDefault`, Terraform `availabilityZone`) and the names the API reference
# lists that the model leaves out. They are read from the generator's tables
# (`crates/codegen/src/main.rs`), the one place they are written down, so each must work.
def extra_names():
    src = (pathlib.Path(__file__).resolve().parents[2] / "crates/codegen/src/main.rs").read_text()
    names = {}
    for table in ("FILTER_ALIASES", "FILTER_EXTRA"):
        body = src.split(f"pub const {table}")[1].split("];")[0]
        for op, name in re.findall(r'\(\s*"(\w+)",\s*"([^"]+)"', body):
            names.setdefault(op, []).append(name)
    return names


ALIASES = extra_names()


@pytest.fixture(scope="module")
def world():
    from conftest import serving

    yield from serving()


def build(endpoint, ec2=None):
    ec2 = ec2 or make_client(endpoint)
    ssm = make_client(endpoint, service="ssm")
    ami = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    vpc = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    # Group references both ways, for the `*.group-id`, `*.group-name` and `*.user-id` names.
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": sg}]}])
    ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": sg}]}])
    # A prefix list referenced both ways, for `*.prefix-list-id`.
    pl = ec2.create_managed_prefix_list(PrefixListName="office", MaxEntries=2, AddressFamily="IPv4",
                                        Entries=[{"Cidr": "203.0.113.0/24"}])["PrefixList"]["PrefixListId"]
    for authorize in (ec2.authorize_security_group_ingress, ec2.authorize_security_group_egress):
        authorize(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8443, "ToPort": 8443, "PrefixListIds": [{"PrefixListId": pl}]}])
    ec2.create_key_pair(KeyName="k")
    inst = ec2.run_instances(
        ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1, KeyName="k",
        NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [sg], "SecondaryPrivateIpAddressCount": 1,
                            "Ipv4PrefixCount": 1, "AssociatePublicIpAddress": True, "Description": "primary"}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]},
                           {"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "primary"}]}],
        Monitoring={"Enabled": True}, ClientToken="filters-1",
    )["Instances"][0]
    iid = inst["InstanceId"]
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni,
                          PrivateIpAddress=inst["NetworkInterfaces"][0]["PrivateIpAddress"])
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=2, VolumeType="gp3",
                            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}])["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    ec2.modify_volume(VolumeId=vol, Size=3)
    ec2.create_snapshot(VolumeId=vol, Description="data",
                        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "Name", "Value": "data"}]}])
    ec2.create_image(InstanceId=iid, Name="web-image", Description="web",
                     TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "Name", "Value": "web"}]}])
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnet)
    nat_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=nat_eip)["NatGateway"]["NatGatewayId"]
    private = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=private, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    ec2.create_route(RouteTableId=private, DestinationCidrBlock="192.168.0.0/16", NetworkInterfaceId=eni)
    # An operator's scheduled event, for DescribeInstanceStatus' `event.*`.
    p = subprocess.run([KUMO_BIN, "admin", "schedule-event", iid, "--code", "system-reboot", "--in", "3600",
                        "--endpoint-url", endpoint, "--region", "eu-west-1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    ec2.create_subnet_cidr_reservation(SubnetId=subnet, Cidr="10.60.1.128/28", ReservationType="prefix", Description="kept")
    # Everything carries a Name tag, for `tag:<key>`.
    names = [vpc, subnet, igw, sg, rtb, private, eni, alloc, nat_eip, pl]
    names += [r["NetworkAclId"] for r in ec2.describe_network_acls()["NetworkAcls"]]
    names += [r["DhcpOptionsId"] for r in ec2.describe_dhcp_options()["DhcpOptions"]]
    names += [r["NatGatewayId"] for r in ec2.describe_nat_gateways()["NatGateways"]]
    names += [r["KeyPairId"] for r in ec2.describe_key_pairs()["KeyPairs"]]
    ec2.create_tags(Resources=names, Tags=[{"Key": "Name", "Value": "thing"}])
    return ec2, {"instance": iid, "vpc": vpc, "subnet": subnet, "eni": eni, "volume": vol}


def ask(ec2, method, key, extra, name, value):
    out = getattr(ec2, method)(Filters=[{"Name": name, "Values": [value]}], **extra)
    items = out[key]
    if key == "Reservations":
        items = [i for r in items for i in r["Instances"]]
    return items


@pytest.mark.parametrize("op", sorted(CASES))
def test_every_documented_filter_works_or_is_refused(world, op):
    ec2, ids = build(world.endpoint)
    method, key, extra, empty = CASES[op]
    dead, refused, works = [], [], []
    if extra.get("SubnetId") == "?":
        extra = dict(extra, SubnetId=ids["subnet"])
    for name in documented(op):
        try:
            found = ask(ec2, method, key, extra, name, "*")
        except ClientError as e:
            err = e.response["Error"]
            assert (err["Code"], err["Message"]) == ("InvalidParameterValue", f"The filter '{name}' is invalid"), name
            refused.append(name)
            continue
        if found:
            works.append(name)
            assert ask(ec2, method, key, extra, name, "no-such-value-0") == [], name
        elif name not in empty:
            dead.append(name)
    for name in ALIASES.get(op, []):
        assert ask(ec2, method, key, extra, name, "*"), f"{op}: alias {name} matches nothing"
        assert ask(ec2, method, key, extra, name, "no-such-value-0") == [], name
    world.reset()
    print(f"{op}: {len(works)} work, {len(refused)} refused: {refused}")
    assert not dead, f"{op}: accepted but matching nothing: {dead}"
    # Most of the reference works, and the names kept out are AWS's refusal, not silence.
    assert len(works) > len(refused), (works, refused)
