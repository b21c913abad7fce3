"""Terraform's aws provider, unchanged, against Kumo: each configuration in tests/e2e/terraform
applies, plans again with no change (every attribute reads back as written), and destroys
to nothing. Skipped where Terraform or the provider mirror is absent."""

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import make_client

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "terraform")
TERRAFORM = shutil.which("terraform")
MIRROR = "/opt/tf-plugins"
PROVIDER = os.path.join(MIRROR, "registry.terraform.io", "hashicorp", "aws", "5.100.0")

pytestmark = pytest.mark.skipif(
    TERRAFORM is None or not os.path.isdir(PROVIDER),
    reason="Terraform or the hashicorp/aws 5.100.0 filesystem mirror under /opt/tf-plugins is absent",
)

CLI_CONFIG = f"""
provider_installation {{
  filesystem_mirror {{
    path    = "{MIRROR}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"""

PROVIDER_BLOCK = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "5.100.0" }}
  }}
}}

provider "aws" {{
  region                      = "eu-west-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_metadata_api_check     = true
  # The account id comes from Kumo's STS GetCallerIdentity, as from AWS's.
  endpoints {{
    ec2 = "{endpoint}"
    sts = "{endpoint}"
    ssm = "{endpoint}"
  }}
}}
"""


class Workspace:
    def __init__(self, endpoint, config):
        self.dir = tempfile.mkdtemp(prefix="kumo-tf-")
        with open(os.path.join(self.dir, "provider.tf"), "w") as f:
            f.write(PROVIDER_BLOCK.format(endpoint=endpoint))
        shutil.copy(os.path.join(HERE, config), self.dir)
        rc = os.path.join(self.dir, "cli.tfrc")
        with open(rc, "w") as f:
            f.write(CLI_CONFIG)
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=rc, TF_IN_AUTOMATION="1", TF_INPUT="0",
                        CHECKPOINT_DISABLE="1")

    def run(self, *args, ok=(0,)):
        p = subprocess.run([TERRAFORM, *args, "-no-color"], cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode in ok, f"terraform {' '.join(args)} exited {p.returncode}:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        return p

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def apply_plan_destroy(kumo, config, check=None):
    """`check`, if given, is called after the apply with the configuration's outputs."""
    ws = Workspace(kumo.endpoint, config)
    try:
        ws.run("init", "-input=false")
        ws.run("apply", "-auto-approve", "-input=false")
        if check is not None:
            outputs = json.loads(ws.run("output", "-json").stdout)
            check({k: v["value"] for k, v in outputs.items()})
        # -detailed-exitcode: 0 is no change, 2 is a diff.
        plan = ws.run("plan", "-detailed-exitcode", "-input=false", ok=(0, 2))
        assert plan.returncode == 0, f"the second plan has changes:\n{plan.stdout[-6000:]}"
        ws.run("destroy", "-auto-approve", "-input=false")
    finally:
        ws.close()


def test_vpc_subnet_gateway_routes_and_security_groups(kumo, ec2):
    before = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    apply_plan_destroy(kumo, "network.tf")
    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == before
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"] * len(before)
    assert ec2.describe_internet_gateways(Filters=[{"Name": "tag:Name", "Values": ["tf-main"]}])["InternetGateways"] == []
    assert [p for p in ec2.describe_managed_prefix_lists()["PrefixLists"] if p["OwnerId"] != "AWS"] == []


def test_instance_with_volumes_user_data_metadata_and_elastic_ip(kumo, ec2):
    apply_plan_destroy(kumo, "instance.tf")
    states = [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert set(states) <= {"terminated"}
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [v for v in ec2.describe_volumes()["Volumes"] if v["State"] != "deleted"] == []


def test_network_interfaces_secondary_ips_attachment_and_elastic_ip(kumo, ec2):
    def check(out):
        counted, listed = (ec2.describe_network_interfaces(NetworkInterfaceIds=[out[k]])["NetworkInterfaces"][0]
                           for k in ("counted_id", "listed_id"))
        for eni, name, device in ((counted, "tf-eni-counted", 0), (listed, "tf-eni-listed", 1)):
            assert eni["Status"] == "in-use"
            assert eni["Description"] == name.replace("tf-eni-", "tf ")
            assert {"Key": "Name", "Value": name} in eni["TagSet"]
            assert [g["GroupName"] for g in eni["Groups"]] == ["tf-eni"]
            assert eni["Attachment"]["InstanceId"] == out["instance_id"]
            assert eni["Attachment"]["DeviceIndex"] == device
            assert eni["Attachment"]["Status"] == "attached"
            assert [a["Primary"] for a in eni["PrivateIpAddresses"]].count(True) == 1
        # private_ips_count = 2: a primary and two secondary addresses.
        assert len(counted["PrivateIpAddresses"]) == 3
        assert {a["PrivateIpAddress"] for a in listed["PrivateIpAddresses"]} == {"10.30.1.10", "10.30.1.11", "10.30.1.12"}
        # The Elastic IP is on the counted interface's primary address, and on no other.
        primary = counted["PrivateIpAddress"]
        addr = ec2.describe_addresses(AllocationIds=[out["eip_allocation_id"]])["Addresses"][0]
        assert addr["NetworkInterfaceId"] == counted["NetworkInterfaceId"]
        assert addr["PrivateIpAddress"] == primary
        assert addr["InstanceId"] == out["instance_id"]
        on = {a["PrivateIpAddress"]: a.get("Association", {}).get("PublicIp") for a in counted["PrivateIpAddresses"]}
        assert on == {ip: (addr["PublicIp"] if ip == primary else None) for ip in on}
        inst = ec2.describe_instances(InstanceIds=[out["instance_id"]])["Reservations"][0]["Instances"][0]
        assert inst["InstanceType"] == "t3.small"
        assert inst["PrivateIpAddress"] == primary
        assert inst["PublicIpAddress"] == addr["PublicIp"]
        assert sorted((n["Attachment"]["DeviceIndex"], n["NetworkInterfaceId"]) for n in inst["NetworkInterfaces"]) == [
            (0, out["counted_id"]), (1, out["listed_id"])]

    apply_plan_destroy(kumo, "eni.tf", check)
    assert ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": ["tf-eni-*"]}])["NetworkInterfaces"] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["tf-eni"]}])["Vpcs"] == []


def test_nat_gateway_with_private_route_table(kumo, ec2):
    def check(out):
        nat = ec2.describe_nat_gateways(NatGatewayIds=[out["nat_gateway_id"]])["NatGateways"][0]
        assert nat["State"] == "available"
        assert nat["ConnectivityType"] == "public"
        public = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": ["tf-nat-public"]}])["Subnets"][0]
        assert nat["SubnetId"] == public["SubnetId"]
        addr = ec2.describe_addresses(AllocationIds=[out["eip_allocation_id"]])["Addresses"][0]
        [nat_addr] = nat["NatGatewayAddresses"]
        assert nat_addr["AllocationId"] == out["eip_allocation_id"]
        assert nat_addr["PublicIp"] == addr["PublicIp"]
        assert addr["NetworkInterfaceId"] == nat_addr["NetworkInterfaceId"]
        rt = ec2.describe_route_tables(RouteTableIds=[out["private_route_table_id"]])["RouteTables"][0]
        default = [r for r in rt["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        assert [(r.get("NatGatewayId"), r["State"]) for r in default] == [(out["nat_gateway_id"], "active")]
        assert [a["SubnetId"] for a in rt["Associations"]] == [out["private_subnet_id"]]

    apply_plan_destroy(kumo, "nat.tf", check)
    nats = ec2.describe_nat_gateways(Filters=[{"Name": "tag:Name", "Values": ["tf-nat"]}])["NatGateways"]
    assert {n["State"] for n in nats} <= {"deleted"}
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["tf-nat"]}])["Vpcs"] == []


def test_amis_from_an_instance_and_from_a_snapshot(kumo, ec2):
    ssm = make_client(kumo.endpoint, service="ssm")
    param = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    latest = ssm.get_parameter(Name=param)["Parameter"]["Value"]

    def check(out):
        assert out["ami_id"] == latest
        vol = ec2.describe_volumes(VolumeIds=[out["volume_id"]])["Volumes"][0]
        assert vol["State"] == "in-use"
        assert [(a["InstanceId"], a["Device"], a["State"]) for a in vol["Attachments"]] == [
            (out["instance_id"], "/dev/sdh", "attached")]
        snap = ec2.describe_snapshots(SnapshotIds=[out["snapshot_id"]])["Snapshots"][0]
        assert (snap["VolumeId"], snap["State"], snap["VolumeSize"], snap["Description"]) == (
            out["volume_id"], "completed", 4, "tf data snapshot")
        copy, registered = (ec2.describe_images(ImageIds=[out[k]])["Images"][0]
                            for k in ("copy_ami_id", "registered_ami_id"))
        # CreateImage snapshots every EBS volume of the instance: the root and the attached one.
        assert (copy["Name"], copy["Description"], copy["State"]) == (
            "tf-img-from-instance", "made from the source instance", "available")
        copy_devices = {m["DeviceName"]: m["Ebs"] for m in copy["BlockDeviceMappings"] if "Ebs" in m}
        assert set(copy_devices) == {"/dev/xvda", "/dev/sdh"}
        assert copy_devices["/dev/sdh"]["VolumeSize"] == 4
        assert all(e["SnapshotId"].startswith("snap-") for e in copy_devices.values())
        assert (registered["Name"], registered["State"], registered["RootDeviceType"]) == (
            "tf-img-registered", "available", "ebs")
        assert (registered["VirtualizationType"], registered["EnaSupport"], registered["Architecture"]) == (
            "hvm", True, "x86_64")
        assert registered["RootDeviceName"] == "/dev/xvda"
        [root] = registered["BlockDeviceMappings"]
        assert (root["DeviceName"], root["Ebs"]["SnapshotId"], root["Ebs"]["VolumeType"]) == (
            "/dev/xvda", out["snapshot_id"], "gp3")

    apply_plan_destroy(kumo, "image.tf", check)
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert [v for v in ec2.describe_volumes()["Volumes"] if v["State"] != "deleted"] == []


def test_launch_template_and_an_instance_launched_from_it(kumo, ec2):
    """Issue 15: Terraform's aws_launch_template and an aws_instance from it apply, plan again
    with no change and destroy."""
    def check(out):
        lt = ec2.describe_launch_templates(LaunchTemplateIds=[out["template_id"]])["LaunchTemplates"][0]
        assert (lt["LaunchTemplateName"], lt["Tags"]) == ("tf-app", [{"Key": "team", "Value": "tf"}])
        inst = ec2.describe_instances(InstanceIds=[out["instance_id"]])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert inst["InstanceType"] == "t3.small"
        assert inst["MetadataOptions"]["HttpTokens"] == "required"
        assert tags["aws:ec2launchtemplate:id"] == out["template_id"]
        assert tags["aws:ec2launchtemplate:version"] == str(out["latest_version"])
        root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [out["instance_id"]]}])["Volumes"]
        assert [(v["Size"], v["VolumeType"]) for v in root] == [(12, "gp3")]

    apply_plan_destroy(kumo, "launch_template.tf", check)
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []



def test_ipv6_network_acl_peering_vpn_and_mirror_filter(kumo, ec2):
    before = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}

    def check(out):
        assert out["ipv6"].startswith("2001:db8:") and out["ipv6"].endswith("/56")
        assert out["subnet_ipv6"].endswith("/64") and out["pcx"] == "active"
        acls = ec2.describe_network_acls(Filters=[{"Name": "default", "Values": ["false"]}])["NetworkAcls"]
        rules = sorted(e["RuleNumber"] for a in acls for e in a["Entries"] if not e["Egress"] and "CidrBlock" in e)
        assert rules == [100, 110, 32767, 32767]
        assert sorted(len(a["Associations"]) for a in acls) == [0, 1]
        [vgw] = ec2.describe_vpn_gateways(Filters=[{"Name": "attachment.state", "Values": ["attached"]}])["VpnGateways"]
        rtb = ec2.describe_route_tables(Filters=[{"Name": "route.vpc-peering-connection-id", "Values": [
            ec2.describe_vpc_peering_connections()["VpcPeeringConnections"][0]["VpcPeeringConnectionId"]]}])["RouteTables"]
        assert len(rtb) == 2
        assert any(t["PropagatingVgws"] == [{"GatewayId": vgw["VpnGatewayId"]}] for t in rtb)

    apply_plan_destroy(kumo, "vpc_extras.tf", check)
    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == before
    assert ec2.describe_traffic_mirror_filters()["TrafficMirrorFilters"] == []
    assert [g["State"] for g in ec2.describe_customer_gateways()["CustomerGateways"]] == ["deleted"]


def test_vpc_endpoints_gateway_and_interface(kumo, ec2):
    """Issue 16: an S3 gateway endpoint found through its prefix list, and the Session
    Manager interface endpoints with private DNS, apply, plan again with no change and
    destroy, taking their routes and interfaces with them."""
    def check(out):
        assert out["s3_prefix_list"] == out["s3_endpoint_prefix_list"]
        assert out["ssm_service"] == "com.amazonaws.eu-west-1.ssm"
        assert ".ssm.eu-west-1.vpce.amazonaws.com" in out["ssm_dns"]
        enis = ec2.describe_network_interfaces(NetworkInterfaceIds=out["ssm_enis"])["NetworkInterfaces"]
        assert [e["InterfaceType"] for e in enis] == ["vpc_endpoint"]
        eps = ec2.describe_vpc_endpoints()["VpcEndpoints"]
        assert sorted(e["ServiceName"].rsplit(".", 1)[1] for e in eps) == ["ec2messages", "s3", "ssm", "ssmmessages"]
        assert all(e["State"] == "available" for e in eps)
        routes = [r for t in ec2.describe_route_tables()["RouteTables"] for r in t["Routes"]]
        assert any(r.get("DestinationPrefixListId") == out["s3_prefix_list"] for r in routes)

    apply_plan_destroy(kumo, "vpc_endpoints.tf", check)
    assert [e for e in ec2.describe_vpc_endpoints()["VpcEndpoints"] if e["State"] != "deleted"] == []
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["tf-endpoints"]}])["Vpcs"] == []
