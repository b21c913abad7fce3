"""Every member AWS sends in its answers is in Kumo's, in AWS's forms (an empty list where AWS
sends one).

The reference for "what AWS sends" is AWS's own published answers: the AWS CLI's examples
(`awscli/examples/ec2/*.rst`, shipped with the `awscli` package) show real output of each
command. A world with one of everything is built through boto3, and every answer is
recorded; then for each served operation that has published examples, each member path the
examples show (`Vpc.CidrBlockAssociationSet[].CidrBlockState.State`) must be in one of Kumo's
answers to that operation, unless its parent is absent too (one report per gap) or it is
listed below with the reason this world leaves it out, as AWS would. A served operation with
examples that this test does not call fails it too, so coverage cannot shrink unseen."""

import collections
import datetime
import json
import os
import re
import subprocess
import tempfile
import textwrap

import awscli
import botocore.session
import pytest

from conftest import make_client
from test_filters import CASES, build

MODEL = botocore.session.get_session().get_service_model("ec2")
EXAMPLES = os.path.join(os.path.dirname(awscli.__file__), "examples", "ec2")
ALLOW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "crates", "codegen", "src", "main.rs")

# (operation, member path): why this world's answer has no such member, as AWS's would not.
ABSENT = {
    ("DescribeNetworkAcls", "NetworkAcls[].Entries[].Ipv6CidrBlock"): "no IPv6 yet: a VPC's default ACL has IPv6 entries only with an IPv6 block",
    ("DescribeInstances", "Reservations[].Instances[].IamInstanceProfile"): "no instance profile: IAM is issue 17",
    ("CreateLaunchTemplateVersion", "LaunchTemplateVersion.LaunchTemplateData.NetworkInterfaces[].Ipv6Addresses"): "no IPv6 yet (issue 16)",
    ("CreateNetworkInterface", "NetworkInterface.ConnectionTrackingConfiguration"): "only with a connection tracking specification, which Kumo refuses by name",
    ("CreateTrafficMirrorTarget", "TrafficMirrorTarget.NetworkLoadBalancerArn"): "the example's target is a load balancer; Kumo runs none, so its targets are interfaces",
    ("DescribeTrafficMirrorTargets", "TrafficMirrorTargets[].NetworkLoadBalancerArn"): "the example's target is a load balancer; Kumo runs none, so its targets are interfaces",
    ("CreateVpcEndpoint", "VpcEndpoint.ResourceConfigurationArn"): "that example is a Resource endpoint (VPC Lattice); Kumo's endpoints are to AWS services",
    ("CreateVpcEndpoint", "VpcEndpoint.ServiceNetworkArn"): "that example is a ServiceNetwork endpoint (VPC Lattice); Kumo's endpoints are to AWS services",
    ("GetConsoleOutput", "Output"): "the null driver runs no guest, so there is no console yet; AWS leaves it out then",
}


# Served operations that never answer with success here, and why.
REFUSED = {
    "CreateVpnConnection": "Kumo builds no IPsec tunnels: it answers Unsupported (test_vpn_gateways.py)",
}


def op_file(op):
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", op)
    return re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", s).lower()


def published(op):
    """The JSON answers the CLI's examples of `op` show: whole answers only, not the
    projections of examples that use `--query`."""
    path = os.path.join(EXAMPLES, op_file(op) + ".rst")
    if not os.path.exists(path):
        return []
    out = []
    members = set(MODEL.operation_model(op).output_shape.members) if MODEL.operation_model(op).output_shape else set()
    for m in re.finditer(r"Output::[ \t]*\n((?:[ \t]*\n|[ \t]+.*(?:\n|$))+)", open(path).read()):
        try:
            answer = json.loads(textwrap.dedent(m.group(1)))
        except ValueError:
            continue  # a few examples are hand-edited past JSON (a missing quote): they say nothing
        if isinstance(answer, dict) and answer and set(answer) <= members:
            out.append(answer)
    return out


def member_paths(value, prefix=""):
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{prefix}.{k}" if prefix else k
            out.add(p)
            out |= member_paths(v, p)
    elif isinstance(value, list):
        for v in value:
            out |= member_paths(v, prefix + "[]")
    return out


def served():
    src = open(ALLOW).read().split("pub const ALLOW")[1].split("];")[0]
    return re.findall(r'^\s*"(\w+)",$', src, re.M)


def more(ec2, ids, record):
    """Calls for the served operations with published examples that building the world does
    not make, each with the members its example shows. `record` keeps a client's answers."""
    iid, vpc, subnet, vol = ids["instance"], ids["vpc"], ids["subnet"], ids["volume"]
    tags = lambda rt: [{"ResourceType": rt, "Tags": [{"Key": "Name", "Value": "shown"}]}]
    ec2.create_vpc(CidrBlock="10.61.0.0/16", TagSpecifications=tags("vpc"))
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.2.0/24", TagSpecifications=tags("subnet"))
    ec2.create_internet_gateway(TagSpecifications=tags("internet-gateway"))
    dopt = ec2.create_dhcp_options(TagSpecifications=tags("dhcp-options"), DhcpConfigurations=[
        {"Key": "domain-name-servers", "Values": ["10.2.5.1", "10.2.5.2"]}, {"Key": "domain-name", "Values": ["example.com"]}]
    )["DhcpOptions"]["DhcpOptionsId"]
    ec2.associate_dhcp_options(DhcpOptionsId=dopt, VpcId=vpc)
    sg = ec2.create_security_group(GroupName="shown", Description="shown", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "ssh"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32", "Description": "ssh"}]}])
    ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])
    assoc = ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock="10.62.0.0/16")["CidrBlockAssociation"]["AssociationId"]
    ec2.disassociate_vpc_cidr_block(AssociationId=assoc)
    for attr in ("enableDnsSupport", "enableDnsHostnames"):
        ec2.describe_vpc_attribute(VpcId=vpc, Attribute=attr)
    eni = ec2.create_network_interface(SubnetId=subnet, Description="extra", Groups=[sg])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.attach_network_interface(NetworkInterfaceId=eni, InstanceId=iid, DeviceIndex=1)
    for attr in ("description", "groupSet", "sourceDestCheck", "attachment"):
        ec2.describe_network_interface_attribute(NetworkInterfaceId=eni, Attribute=attr)
    for attr in ("autoEnableIO", "productCodes"):
        ec2.describe_volume_attribute(VolumeId=vol, Attribute=attr)
    snap = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"][0]["SnapshotId"]
    ec2.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=["111122223333"])
    ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    ec2.copy_snapshot(SourceSnapshotId=snap, SourceRegion="eu-west-1", Description="copy")
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    ec2.copy_image(SourceImageId=image, SourceRegion="eu-west-1", Name="copy")
    ec2.register_image(Name="registered", RootDeviceName="/dev/xvda", VirtualizationType="hvm", Architecture="x86_64",
                       BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])
    ec2.enable_ebs_encryption_by_default()
    ec2.disable_ebs_encryption_by_default()
    ec2.get_image_block_public_access_state()
    ec2.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")
    ec2.disable_image_block_public_access()
    ec2.get_console_output(InstanceId=iid)
    ec2.get_default_credit_specification(InstanceFamily="t3")
    ec2.modify_default_credit_specification(InstanceFamily="t3", CpuCredits="unlimited")
    ec2.modify_instance_credit_specification(InstanceCreditSpecifications=[{"InstanceId": iid, "CpuCredits": "standard"}])
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", HttpEndpoint="enabled")
    ec2.get_subnet_cidr_reservations(SubnetId=subnet)
    res = ec2.create_subnet_cidr_reservation(SubnetId=subnet, Cidr="10.60.1.64/28", ReservationType="explicit")
    ec2.delete_subnet_cidr_reservation(SubnetCidrReservationId=res["SubnetCidrReservation"]["SubnetCidrReservationId"])
    pl = [p for p in ec2.describe_managed_prefix_lists()["PrefixLists"] if p["OwnerId"] != "AWS"][0]["PrefixListId"]
    ec2.get_managed_prefix_list_entries(PrefixListId=pl)
    ec2.get_managed_prefix_list_associations(PrefixListId=pl)
    other = ec2.create_managed_prefix_list(PrefixListName="other", MaxEntries=3, AddressFamily="IPv4",
                                           Entries=[{"Cidr": "10.0.0.0/8", "Description": "a"}])["PrefixList"]["PrefixListId"]
    ec2.get_managed_prefix_list_entries(PrefixListId=other)
    ec2.modify_managed_prefix_list(PrefixListId=other, CurrentVersion=1, AddEntries=[{"Cidr": "172.16.0.0/12"}])
    ec2.restore_managed_prefix_list_version(PrefixListId=other, PreviousVersion=1, CurrentVersion=2)
    ec2.delete_managed_prefix_list(PrefixListId=other)
    key = ec2.import_key_pair(KeyName="imported", PublicKeyMaterial=public_key())["KeyName"]
    ec2.delete_key_pair(KeyName=key)
    nat = ec2.describe_nat_gateways()["NatGateways"][0]["NatGatewayId"]
    ec2.delete_nat_gateway(NatGatewayId=nat)
    # Launch templates, placement groups, capacity reservations, monitoring (issue 15).
    data = {"ImageId": image_of(ec2, iid), "InstanceType": "t3.micro", "KeyName": "shown", "UserData": "IyEvYmluL3NoCmVjaG8gaGk=",
            "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "SubnetId": subnet, "Groups": [sg],
                                   "DeleteOnTermination": True}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "purpose", "Value": "shown"}]}]}
    lt = ec2.create_launch_template(LaunchTemplateName="shown", VersionDescription="first", LaunchTemplateData=data,
                                    TagSpecifications=tags("launch-template"))["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=lt, SourceVersion="1", VersionDescription="second",
                                       LaunchTemplateData={"InstanceType": "t3.small"})
    ec2.describe_launch_templates(LaunchTemplateIds=[lt])
    ec2.describe_launch_template_versions(LaunchTemplateId=lt)
    ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="2")
    ec2.get_launch_template_data(InstanceId=iid)
    ec2.delete_launch_template_versions(LaunchTemplateId=lt, Versions=["1", "7"])
    ec2.delete_launch_template(LaunchTemplateId=lt)
    ec2.create_placement_group(GroupName="shown", Strategy="partition", PartitionCount=2, TagSpecifications=tags("placement-group"))
    ec2.create_placement_group(GroupName="shown-spread", Strategy="spread")
    ec2.describe_placement_groups()
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=30)
    cr = ec2.create_capacity_reservation(InstanceType="t3.micro", InstancePlatform="Linux/UNIX", AvailabilityZone=zone, InstanceCount=2,
                                         EndDateType="limited", EndDate=end,
                                         TagSpecifications=tags("capacity-reservation"))["CapacityReservation"]["CapacityReservationId"]
    ec2.describe_capacity_reservations(CapacityReservationIds=[cr])
    ec2.modify_capacity_reservation(CapacityReservationId=cr, InstanceCount=3)
    ec2.monitor_instances(InstanceIds=[iid])
    ec2.unmonitor_instances(InstanceIds=[iid])
    ec2.stop_instances(InstanceIds=[iid])
    ec2.modify_private_dns_name_options(InstanceId=iid, PrivateDnsHostnameType="resource-name", EnableResourceNameDnsARecord=True)
    ec2.modify_instance_placement(InstanceId=iid, GroupName="shown", PartitionNumber=1)
    ec2.modify_instance_capacity_reservation_attributes(InstanceId=iid, CapacityReservationSpecification={
        "CapacityReservationPreference": "none"})
    ec2.start_instances(InstanceIds=[iid])
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.cancel_capacity_reservation(CapacityReservationId=cr)
    ec2.delete_placement_group(GroupName="shown-spread")
    # Network ACLs and associations (issue 16).
    acl = ec2.create_network_acl(VpcId=vpc, TagSpecifications=tags("network-acl"))["NetworkAcl"]["NetworkAclId"]
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Egress=False, Protocol="6", RuleAction="allow",
                                 CidrBlock="0.0.0.0/0", PortRange={"From": 22, "To": 22})
    acl_assoc = [a for x in ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
                 for a in x["Associations"] if a["SubnetId"] == subnet][0]["NetworkAclAssociationId"]
    ec2.replace_network_acl_association(AssociationId=acl_assoc, NetworkAclId=acl)
    rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    rtb2 = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    spare = ec2.create_subnet(VpcId=vpc, CidrBlock="10.60.3.0/24")["Subnet"]["SubnetId"]
    rtb_assoc = ec2.associate_route_table(RouteTableId=rtb, SubnetId=spare)["AssociationId"]
    ec2.replace_route_table_association(AssociationId=rtb_assoc, RouteTableId=rtb2)
    vol2 = ec2.create_volume(AvailabilityZone=zone, Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol2], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    running = ec2.run_instances(ImageId=image_of(ec2, iid), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[running], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.attach_volume(VolumeId=vol2, InstanceId=running, Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol2], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.detach_volume(VolumeId=vol2)
    # VPC peering (issue 16): one connection accepted and given options, one rejected.
    peer = ec2.create_vpc(CidrBlock="10.70.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer, TagSpecifications=tags("vpc-peering-connection")
                                            )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    ec2.modify_vpc_peering_connection_options(VpcPeeringConnectionId=pcx,
                                              RequesterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True},
                                              AccepterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True})
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    third = ec2.create_vpc(CidrBlock="10.71.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=third)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.reject_vpc_peering_connection(VpcPeeringConnectionId=other)
    # Virtual private and customer gateways (issue 16).
    vgw = ec2.create_vpn_gateway(Type="ipsec.1", TagSpecifications=tags("vpn-gateway"))["VpnGateway"]["VpnGatewayId"]
    ec2.attach_vpn_gateway(VpnGatewayId=vgw, VpcId=vpc)
    ec2.describe_vpn_gateways(VpnGatewayIds=[vgw])
    cgw = ec2.create_customer_gateway(Type="ipsec.1", IpAddress="203.0.113.12", BgpAsn=65534,
                                      TagSpecifications=tags("customer-gateway"))["CustomerGateway"]["CustomerGatewayId"]
    ec2.describe_customer_gateways(CustomerGatewayIds=[cgw])
    # Traffic mirroring (issue 16): a target, a filter with a rule each way, a session.
    mirrored = ec2.run_instances(ImageId=image_of(ec2, iid), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet
                                 )["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]
    tmt = ec2.create_traffic_mirror_target(NetworkInterfaceId=eni, Description="shown", TagSpecifications=tags("traffic-mirror-target")
                                           )["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    ec2.describe_traffic_mirror_targets(TrafficMirrorTargetIds=[tmt])
    tmf = ec2.create_traffic_mirror_filter(Description="shown", TagSpecifications=tags("traffic-mirror-filter")
                                           )["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    tmfr = ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=tmf, TrafficDirection="ingress", RuleNumber=100, RuleAction="accept",
                                                 Protocol=6, DestinationPortRange={"FromPort": 22, "ToPort": 22},
                                                 SourcePortRange={"FromPort": 1024, "ToPort": 65535}, Description="shown",
                                                 SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="10.0.0.0/24"
                                                 )["TrafficMirrorFilterRule"]["TrafficMirrorFilterRuleId"]
    ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=tmf, TrafficDirection="egress", RuleNumber=100, RuleAction="accept",
                                          Protocol=17, DestinationPortRange={"FromPort": 53, "ToPort": 53},
                                          SourceCidrBlock="10.0.0.0/24", DestinationCidrBlock="0.0.0.0/0")
    ec2.modify_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=tmfr, SourcePortRange={"FromPort": 1024, "ToPort": 65000})
    ec2.modify_traffic_mirror_filter_network_services(TrafficMirrorFilterId=tmf, AddNetworkServices=["amazon-dns"])
    ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[tmf])
    tms = ec2.create_traffic_mirror_session(NetworkInterfaceId=mirrored, TrafficMirrorTargetId=tmt, TrafficMirrorFilterId=tmf,
                                            SessionNumber=1, PacketLength=100, VirtualNetworkId=13314, Description="shown",
                                            TagSpecifications=tags("traffic-mirror-session"))["TrafficMirrorSession"]["TrafficMirrorSessionId"]
    ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=tms, PacketLength=200)
    ec2.describe_traffic_mirror_sessions(TrafficMirrorSessionIds=[tms])
    ec2.delete_traffic_mirror_session(TrafficMirrorSessionId=tms)
    ec2.delete_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=tmfr)
    ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=tmf)
    # VPC endpoints (issue 16): one of each type, the services, the AWS-managed lists.
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    ep = ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", ServiceName="com.amazonaws.eu-west-1.ec2",
                                 SubnetIds=[subnet], SecurityGroupIds=[sg], TagSpecifications=tags("vpc-endpoint")
                                 )["VpcEndpoint"]["VpcEndpointId"]
    rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["RouteTables"][0]["RouteTableId"]
    gw = ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.eu-west-1.s3", RouteTableIds=[rtb])["VpcEndpoint"]["VpcEndpointId"]
    ec2.modify_vpc_endpoint(VpcEndpointId=gw, ResetPolicy=True)
    ec2.describe_vpc_endpoints(VpcEndpointIds=[ep, gw])
    ec2.describe_vpc_endpoint_services()
    ec2.describe_prefix_lists()
    ec2.describe_route_tables(RouteTableIds=[rtb])
    ec2.delete_vpc_endpoints(VpcEndpointIds=[gw])
    # IPv6 (issue 16): an egress-only gateway, a route to it, interface addresses.
    v6 = ec2.create_vpc(CidrBlock="10.72.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    eigw = ec2.create_egress_only_internet_gateway(VpcId=v6, TagSpecifications=tags("egress-only-internet-gateway")
                                                   )["EgressOnlyInternetGateway"]["EgressOnlyInternetGatewayId"]
    ec2.describe_egress_only_internet_gateways(EgressOnlyInternetGatewayIds=[eigw])
    v6_rtb = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [v6]}])["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=v6_rtb, DestinationIpv6CidrBlock="::/0", EgressOnlyInternetGatewayId=eigw)
    block = ec2.describe_vpcs(VpcIds=[v6])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    v6_subnet = ec2.create_subnet(VpcId=v6, CidrBlock="10.72.1.0/24", Ipv6CidrBlock=block.replace("/56", "/64"))["Subnet"]["SubnetId"]
    v6_eni = ec2.create_network_interface(SubnetId=v6_subnet, Ipv6AddressCount=1)["NetworkInterface"]["NetworkInterfaceId"]
    added = ec2.assign_ipv6_addresses(NetworkInterfaceId=v6_eni, Ipv6AddressCount=1)["AssignedIpv6Addresses"]
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=v6_eni, Ipv6Addresses=added)
    ec2.describe_network_interfaces(NetworkInterfaceIds=[v6_eni])
    ec2.delete_route(RouteTableId=v6_rtb, DestinationIpv6CidrBlock="::/0")
    ec2.delete_egress_only_internet_gateway(EgressOnlyInternetGatewayId=eigw)
    ec2.delete_traffic_mirror_target(TrafficMirrorTargetId=tmt)
    # IPv6 blocks (issue 16): a VPC's /56 and a subnet's /64 of it, given and taken back.
    v6 = ec2.create_vpc(CidrBlock="10.72.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    block = ec2.describe_vpcs(VpcIds=[v6])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]
    v6_subnet = ec2.create_subnet(VpcId=v6, CidrBlock="10.72.1.0/24")["Subnet"]["SubnetId"]
    first64 = block["Ipv6CidrBlock"].replace("/56", "/64")
    sub_assoc = ec2.associate_subnet_cidr_block(SubnetId=v6_subnet, Ipv6CidrBlock=first64)["Ipv6CidrBlockAssociation"]["AssociationId"]
    ec2.describe_subnets(SubnetIds=[v6_subnet])
    ec2.disassociate_subnet_cidr_block(AssociationId=sub_assoc)
    ec2.disassociate_vpc_cidr_block(AssociationId=block["AssociationId"])
    ec2.associate_vpc_cidr_block(VpcId=v6, AmazonProvidedIpv6CidrBlock=True)
    # CreateDefaultVpc, in a region whose default VPC is taken apart first.
    west = make_client(ec2.meta.endpoint_url, region="us-west-2")
    west.meta.events.register("after-call.ec2", record)
    old = west.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for sn in west.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [old]}])["Subnets"]:
        west.delete_subnet(SubnetId=sn["SubnetId"])
    for igw in west.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [old]}])["InternetGateways"]:
        west.detach_internet_gateway(InternetGatewayId=igw["InternetGatewayId"], VpcId=old)
        west.delete_internet_gateway(InternetGatewayId=igw["InternetGatewayId"])
    west.delete_vpc(VpcId=old)
    west.create_default_vpc()


def image_of(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["ImageId"]


def public_key():
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/k"], check=True)
        return open(f"{d}/k.pub", "rb").read()


@pytest.fixture(scope="module")
def answers():
    from conftest import serving

    for k in serving():
        ec2 = make_client(k.endpoint)
        recorded = collections.defaultdict(list)

        def keep(http_response, parsed, model, **_):
            if http_response.status_code < 300:
                recorded[model.name].append({n: v for n, v in parsed.items() if n != "ResponseMetadata"})

        ec2.meta.events.register("after-call.ec2", keep)
        _, ids = build(k.endpoint, ec2)
        for op, (method, _key, extra, _) in CASES.items():
            if extra.get("SubnetId") == "?":
                extra = dict(extra, SubnetId=ids["subnet"])
            getattr(ec2, method)(**extra)
        more(ec2, ids, keep)
        yield recorded


def test_every_member_aws_shows_is_sent(answers):
    gaps, compared = {}, 0
    for op, got in sorted(answers.items()):
        examples = published(op)
        if not examples:
            continue
        compared += 1
        shown = set().union(*map(member_paths, examples))
        have = set().union(*map(member_paths, got))
        for path in sorted(shown - have):
            parent = path.rsplit(".", 1)[0].removesuffix("[]") if "." in path else ""
            if parent and parent not in have:
                continue  # reported at the parent
            if any(path == p or path.startswith(p + ".") for (o, p) in ABSENT if o == op):
                continue
            gaps.setdefault(op, []).append(path)
    print(f"{compared} operations compared with AWS's published answers")
    assert compared >= 40, compared
    assert not gaps, f"members AWS sends that Kumo's answers lack: {gaps}"


def test_every_served_operation_with_published_answers_is_compared(answers):
    missing = [op for op in served() if published(op) and op not in answers and op not in REFUSED]
    assert not missing, f"served operations with published answers this test never calls: {missing}"


def test_the_absent_list_holds_only_real_gaps(answers):
    """An entry in ABSENT that Kumo now sends, or that no example shows, is stale."""
    for op, path in ABSENT:
        shown = set().union(*map(member_paths, published(op))) if published(op) else set()
        assert any(p == path or p.startswith(path + ".") or p.startswith(path + "[]") for p in shown), (op, path)
        have = set().union(*map(member_paths, answers.get(op, [])))
        # A list's own path is there when Kumo sends it empty; its items must not be.
        own = path[:-2] if path.endswith("[]") else None
        assert not any(p == path or p.startswith(path + ".") for p in have if p != own), (op, path)
