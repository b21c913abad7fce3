"""Ansible's amazon.aws collection (bundled with the pinned `ansible` package), unchanged,
against Kumo: each playbook in tests/e2e/ansible runs twice per state, and the second run
reports no change."""

import os
import re
import shutil
import subprocess

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible")
PLAYBOOK = shutil.which("ansible-playbook")

pytestmark = pytest.mark.skipif(PLAYBOOK is None, reason="ansible-playbook is not installed (scripts/test installs it)")


def play(kumo, book, **extra):
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
               ANSIBLE_NOCOLOR="1", ANSIBLE_HOST_KEY_CHECKING="False")
    args = [PLAYBOOK, os.path.join(HERE, book), "-e", f"endpoint={kumo.endpoint}"]
    for k, v in extra.items():
        args += ["-e", f"{k}={v}"]
    p = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"{book} {extra} failed:\n{p.stdout[-6000:]}\n{p.stderr[-3000:]}"
    m = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0", p.stdout)
    assert m, p.stdout[-3000:]
    return int(m.group(2))


@pytest.fixture
def image(kumo):
    from conftest import make_client

    ssm = make_client(kumo.endpoint, service="ssm")
    return ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]


def test_network_and_instances_present_then_absent(kumo, ec2, image):
    assert play(kumo, "network_and_instance.yml", image=image, state="present") > 0
    assert play(kumo, "network_and_instance.yml", image=image, state="present") == 0
    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ans-vpc"]}])["Vpcs"][0]
    assert {t["Key"]: t["Value"] for t in vpc["Tags"]} == {"Name": "ans-vpc", "team": "infra"}
    assert ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute="enableDnsHostnames")["EnableDnsHostnames"]["Value"] is True
    running = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    names = sorted(t["Value"] for r in running for i in r["Instances"] for t in i["Tags"] if t["Key"] == "Name")
    assert names == ["ans-default", "ans-web"]
    by_name = {t["Value"]: i for r in running for i in r["Instances"] for t in i["Tags"] if t["Key"] == "Name"}
    assert by_name["ans-web"]["VpcId"] == vpc["VpcId"]
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    assert by_name["ans-default"]["VpcId"] == default["VpcId"]
    assert play(kumo, "network_and_instance.yml", image=image, state="absent") > 0
    assert play(kumo, "network_and_instance.yml", image=image, state="absent") == 0
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ans-vpc"]}])["Vpcs"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []


INVENTORY = shutil.which("ansible-inventory")


def plain(v):
    """Inventory output without the `{"__ansible_unsafe": ...}` wrappers of ansible-core's
    legacy JSON profile."""
    if isinstance(v, dict):
        if set(v) == {"__ansible_unsafe"}:
            return v["__ansible_unsafe"]
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def inventory(kumo):
    """`ansible-inventory --list` over inventory.aws_ec2.yml (the amazon.aws.aws_ec2 plugin)."""
    import json

    env = dict(os.environ, KUMO_ENDPOINT=kumo.endpoint, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="False")
    p = subprocess.run([INVENTORY, "-i", os.path.join(HERE, "inventory.aws_ec2.yml"), "--list"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return plain(json.loads(p.stdout))


def tag(resource, key, tags="Tags"):
    return {t["Key"]: t["Value"] for t in resource.get(tags) or []}.get(key)


def test_storage_and_addresses_present_stopped_absent(kumo, ec2, image):
    book = "storage_and_addresses.yml"
    assert play(kumo, book, image=image, state="present") > 0
    assert play(kumo, book, image=image, state="present") == 0

    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ans-store-vpc"]}])["Vpcs"]
    assert [v["CidrBlock"] for v in vpc] == ["10.31.0.0/16"]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc[0]["VpcId"]]}]
    subnet = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    assert [(s["CidrBlock"], s["AvailabilityZone"]) for s in subnet] == [("10.31.1.0/24", "eu-west-1a")]
    subnet_id = subnet[0]["SubnetId"]
    igw = ec2.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc[0]["VpcId"]]}])["InternetGateways"]
    assert len(igw) == 1

    # The route table: the local route and a default route to the internet gateway, on the subnet.
    rt = ec2.describe_route_tables(Filters=in_vpc + [{"Name": "tag:Name", "Values": ["ans-store-rt"]}])["RouteTables"]
    assert len(rt) == 1
    routes = {r["DestinationCidrBlock"]: r["GatewayId"] for r in rt[0]["Routes"]}
    assert routes == {"10.31.0.0/16": "local", "0.0.0.0/0": igw[0]["InternetGatewayId"]}
    assert all(r["State"] == "active" for r in rt[0]["Routes"])
    assert [a["SubnetId"] for a in rt[0]["Associations"] if not a["Main"]] == [subnet_id]

    # The network interface: primary and secondary private IPs, description, tags.
    eni = ec2.describe_network_interfaces(Filters=[{"Name": "tag:Name", "Values": ["ans-store-eni"]}])["NetworkInterfaces"]
    assert len(eni) == 1
    eni = eni[0]
    assert eni["SubnetId"] == subnet_id and eni["Description"] == "ans storage interface"
    assert tag(eni, "team", "TagSet") == "storage"
    assert sorted((p["PrivateIpAddress"], p["Primary"]) for p in eni["PrivateIpAddresses"]) == [
        ("10.31.1.20", True), ("10.31.1.21", False)]

    # The instances, running in the subnet.
    found = ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["storage"]}])["Reservations"]
    by_name = {tag(i, "Name"): i for r in found for i in r["Instances"]}
    assert sorted(by_name) == ["ans-peer", "ans-store"]
    assert all(i["State"]["Name"] == "running" and i["SubnetId"] == subnet_id for i in by_name.values())
    store = by_name["ans-store"]

    # The NAT gateway, available in the subnet with an address of its own.
    nat = ec2.describe_nat_gateways(Filter=[{"Name": "subnet-id", "Values": [subnet_id]}])["NatGateways"]
    assert [(n["State"], n["ConnectivityType"], tag(n, "Name")) for n in nat] == [("available", "public", "ans-store-nat")]
    nat_address = nat[0]["NatGatewayAddresses"][0]
    assert nat_address["AllocationId"].startswith("eipalloc-") and nat_address["PublicIp"]

    # Elastic IPs: one on the instance, one on the interface's secondary IP, one the NAT's.
    addresses = {a["AllocationId"]: a for a in ec2.describe_addresses()["Addresses"]}
    assert len(addresses) == 3
    on_instance = [a for a in addresses.values() if tag(a, "Name") == "ans-store-eip"]
    assert len(on_instance) == 1 and on_instance[0]["InstanceId"] == store["InstanceId"] and on_instance[0]["Domain"] == "vpc"
    assert on_instance[0]["PrivateIpAddress"] == store["PrivateIpAddress"]
    on_eni = [a for a in addresses.values() if tag(a, "Name") == "ans-eni-eip"]
    assert len(on_eni) == 1 and on_eni[0]["NetworkInterfaceId"] == eni["NetworkInterfaceId"]
    assert on_eni[0]["PrivateIpAddress"] == "10.31.1.21" and "InstanceId" not in on_eni[0]
    assert addresses[nat_address["AllocationId"]]["NetworkInterfaceId"] == nat_address["NetworkInterfaceId"]
    assert ec2.describe_instances(InstanceIds=[store["InstanceId"]])["Reservations"][0]["Instances"][0]["PublicIpAddress"] == on_instance[0]["PublicIp"]

    # The volume: 2 GiB gp3, tagged, attached to the instance at /dev/sdf.
    vol = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["ans-store-data"]}])["Volumes"]
    assert len(vol) == 1
    vol = vol[0]
    assert (vol["Size"], vol["VolumeType"], vol["Iops"], vol["State"], vol["AvailabilityZone"]) == (2, "gp3", 3000, "in-use", "eu-west-1a")
    assert tag(vol, "team") == "storage"
    assert [(a["InstanceId"], a["Device"], a["State"]) for a in vol["Attachments"]] == [(store["InstanceId"], "/dev/sdf", "attached")]

    # The snapshot of it: completed, with its description and tags (and the volume's Name).
    snap = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "description", "Values": ["ans storage snapshot"]}])["Snapshots"]
    assert [(s["VolumeId"], s["State"], s["VolumeSize"]) for s in snap] == [(vol["VolumeId"], "completed", 2)]
    assert tag(snap[0], "team") == "storage" and tag(snap[0], "Name") == "ans-store-data"

    # The image of the instance: available, tagged, with the root and the data volume's snapshots.
    img = ec2.describe_images(Owners=["self"])["Images"]
    assert [(i["Name"], i["State"], i["Description"]) for i in img] == [("ans-store-image", "available", "ans storage image")]
    assert tag(img[0], "team") == "storage"
    devices = {m["DeviceName"]: m["Ebs"] for m in img[0]["BlockDeviceMappings"]}
    assert sorted(devices) == ["/dev/sdf", "/dev/xvda"] and devices["/dev/sdf"]["VolumeSize"] == 2
    for ebs in devices.values():
        s = ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
        assert s["State"] == "completed" and tag(s, "team") == "storage"

    # The aws_ec2 inventory plugin: both instances, grouped by their role tag, at their private IPs.
    inv = inventory(kumo)
    assert sorted(inv["role_storage"]["hosts"]) == ["ans-peer", "ans-store"]
    for name, i in by_name.items():
        hv = inv["_meta"]["hostvars"][name]
        assert hv["ansible_host"] == hv["private_ip_address"] == i["PrivateIpAddress"]
        assert hv["instance_id"] == i["InstanceId"]

    # Stopped: ans-store stops (a change once), keeping its volume and its Elastic IP.
    assert play(kumo, book, image=image, state="stopped") > 0
    assert play(kumo, book, image=image, state="stopped") == 0
    i = ec2.describe_instances(InstanceIds=[store["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert i["State"]["Name"] == "stopped"
    assert ec2.describe_volumes(VolumeIds=[vol["VolumeId"]])["Volumes"][0]["Attachments"][0]["State"] == "attached"
    assert ec2.describe_addresses(AllocationIds=[on_instance[0]["AllocationId"]])["Addresses"][0]["InstanceId"] == store["InstanceId"]
    assert inventory(kumo)["role_storage"]["hosts"] == ["ans-peer"]

    assert play(kumo, book, image=image, state="absent") > 0
    assert play(kumo, book, image=image, state="absent") == 0
    assert ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["ans-store-vpc"]}])["Vpcs"] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])["NetworkInterfaces"] == []
    assert ec2.describe_volumes()["Volumes"] == []
    assert ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert {n["State"] for n in ec2.describe_nat_gateways(NatGatewayIds=[nat[0]["NatGatewayId"]])["NatGateways"]} <= {"deleted"}
    left = ec2.describe_instances(Filters=[{"Name": "tag:role", "Values": ["storage"]}])["Reservations"]
    assert {i["State"]["Name"] for r in left for i in r["Instances"]} == {"terminated"}
    assert "role_storage" not in inventory(kumo)


def test_launch_template_and_placement_group(kumo, ec2, image):
    """Issue 15: amazon.aws's ec2_launch_template and ec2_placement_group, and an
    amazon.aws ec2_instance launched from the template into the group."""
    assert play(kumo, "templates_and_groups.yml", image=image, state="present") > 0
    assert play(kumo, "templates_and_groups.yml", image=image, state="present") == 0
    lt = ec2.describe_launch_templates(LaunchTemplateNames=["ans-lt"])["LaunchTemplates"][0]
    assert (lt["LatestVersionNumber"], lt["DefaultVersionNumber"], lt["Tags"]) == (1, 1, [{"Key": "team", "Value": "infra"}])
    running = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["ans-from-lt"]},
                                              {"Name": "instance-state-name", "Values": ["running"]}])["Reservations"]
    [inst] = [i for r in running for i in r["Instances"]]
    assert inst["InstanceType"] == "t3.small"
    assert inst["Placement"]["GroupName"] == "ans-pg" and inst["Placement"]["PartitionNumber"] in (1, 2, 3)
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert (tags["aws:ec2launchtemplate:id"], tags["aws:ec2launchtemplate:version"]) == (lt["LaunchTemplateId"], "1")
    assert play(kumo, "templates_and_groups.yml", image=image, state="absent") > 0
    assert play(kumo, "templates_and_groups.yml", image=image, state="absent") == 0
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert ec2.describe_placement_groups()["PlacementGroups"] == []

