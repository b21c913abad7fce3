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
