"""`kumo describe-unused-ips`, and the fragmentation scenario: a /24 is fragmented until
prefix delegation fails while addresses remain, the tool shows why, and a prefix reservation
plus released addresses make room again."""

import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import KUMO_BIN, error_code, free_port


def unused_ips(kumo, subnet_id, *extra, key="test", secret="test"):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="eu-west-1",
               AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    env.pop("AWS_PROFILE", None)
    return subprocess.run([KUMO_BIN, "describe-unused-ips", subnet_id, "--endpoint-url", kumo.endpoint, *extra],
                          env=env, capture_output=True, text=True, timeout=60)


def test_fragmentation_scenario(kumo, ec2):
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    eni = ec2.create_network_interface(SubnetId=sid, PrivateIpAddress="10.30.1.5")["NetworkInterface"]["NetworkInterfaceId"]
    # One secondary address in each /28 that could otherwise hold a prefix.
    ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[f"10.30.1.{16 * i + 5}" for i in range(1, 15)])
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)
    assert error_code(e) == "InsufficientCidrBlocks"
    assert e.value.response["Error"]["Message"] == "The specified subnet does not have enough free cidr blocks to satisfy the request."
    free = ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["AvailableIpAddressCount"]
    assert free == 251 - 15, "plenty of single addresses remain"

    p = unused_ips(kumo, sid, "--output", "json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["free_28_count"] == 0 and report["free_28_blocks"] == []
    assert report["counts"] == {"reserved": 5, "aws_reserved": 5, "in_cidr_reservations": 0, "used": 15, "unused": 236}
    assert report["cidr"] == "10.30.1.0/24" and report["cidr_ips"] == 256
    assert report["largest_free_block"] in {"10.30.1.8/29", "10.30.1.24/29"}
    text = unused_ips(kumo, sid).stdout
    assert "cidr=10.30.1.0/24 cidr_ips=256 reserved=5 used=15 unused=236" in text
    assert "free /28 blocks for prefix delegation: 0" in text

    # Reserve a /28 for prefixes (it may cover an address in use), free that address, retry.
    ec2.create_subnet_cidr_reservation(SubnetId=sid, Cidr="10.30.1.64/28", ReservationType="prefix")
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)
    assert error_code(e) == "InsufficientCidrBlocks"
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=["10.30.1.69"])
    report = json.loads(unused_ips(kumo, sid, "--output", "json").stdout)
    assert report["free_28_blocks"] == ["10.30.1.64/28"]
    out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)
    assert out["AssignedIpv4Prefixes"] == [{"Ipv4Prefix": "10.30.1.64/28"}]
    # Automatic single addresses never come from the reserved block, even once it is free.
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4Prefixes=["10.30.1.64/28"])
    got = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=20)
    last_octets = [int(a["PrivateIpAddress"].rsplit(".", 1)[1]) for a in got["AssignedPrivateIpAddresses"]]
    assert len(last_octets) == 20 and not any(64 <= o < 80 for o in last_octets)
    report = json.loads(unused_ips(kumo, sid, "--output", "json").stdout)
    assert report["counts"]["in_cidr_reservations"] == 16


def test_errors_like_the_cli(kumo):
    p = unused_ips(kumo, "subnet-0123456789abcdef0")
    assert p.returncode == 255
    assert "An error occurred (InvalidSubnetID.NotFound)" in p.stderr


def test_the_sdk_endpoint_variables(kumo, ec2):
    """`AWS_ENDPOINT_URL_EC2` over `AWS_ENDPOINT_URL`, and `--endpoint-url` over both, as the AWS
    CLI resolves them. A dead endpoint (a closed loopback port) stands for the one not chosen."""
    sid = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    dead = f"http://127.0.0.1:{free_port()}"
    base = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="eu-west-1",
                AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
    for k in ["AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]:
        base.pop(k, None)

    def run(env, *flags):
        return subprocess.run([KUMO_BIN, "describe-unused-ips", sid, "--output", "json", *flags],
                              env=dict(base, **env), capture_output=True, text=True, timeout=60)

    ok = run({"AWS_ENDPOINT_URL": kumo.endpoint})
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["counts"]["aws_reserved"] == 5
    assert run({"AWS_ENDPOINT_URL": dead, "AWS_ENDPOINT_URL_EC2": kumo.endpoint}).returncode == 0
    refused = run({"AWS_ENDPOINT_URL": kumo.endpoint, "AWS_ENDPOINT_URL_EC2": dead})
    assert refused.returncode != 0 and "cannot connect" in refused.stderr, refused.stderr
    assert run({"AWS_ENDPOINT_URL_EC2": dead}, "--endpoint-url", kumo.endpoint).returncode == 0
