#!/usr/bin/env python3
"""Volume I/O benchmark for the `ns` driver: the operations per second a guest gets from an
EBS volume, next to what its type provisions (the same-run baseline), as a ratio.

Usage: bench/volume_iops.py [--ops N]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build,
`kumo image build`, and `scripts/test` once for the Python clients in .venv; run as root).

One t3.micro guest gets an io1 volume at 100 IOPS, a gp3 volume at its 3,000, a gp2 volume
of 10 GiB (100 IOPS baseline, bursting to 3,000 on its credits) and an io1 volume modified
from 100 to 400 IOPS while attached. In the guest, dd reads (then writes) 4 KiB blocks with
O_DIRECT, one at a time, from blocks no earlier measurement touched (the host may cache what
was read); each figure is the dd's operations per second."""

import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
import boto3  # noqa: E402
import botocore.config  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving  # noqa: E402

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"]


def ssh(key, ip, command, deadline):
    while True:
        p = subprocess.run(["ssh", "-i", key, *SSH_OPTS, f"ec2-user@{ip}", command], capture_output=True, text=True, timeout=300)
        if p.returncode != 255 or time.time() > deadline:
            return p
        time.sleep(0.3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops", type=int, default=600, help="4 KiB operations per measurement at 100 IOPS (scaled up for faster volumes)")
    args = ap.parse_args()
    with serving("ns", "kumo-iops-bench-") as (endpoint, data):
        cfg = botocore.config.Config(retries={"max_attempts": 1})
        client = lambda svc: boto3.client(svc, endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test", config=cfg)  # noqa: E731
        ec2, ssm = client("ec2"), client("ssm")
        ami = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
        key = os.path.join(data, "bench.pem")
        with open(key, "w") as f:
            f.write(ec2.create_key_pair(KeyName="bench", KeyType="ed25519")["KeyMaterial"])
        os.chmod(key, 0o600)
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        inst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="bench")["Instances"][0]
        iid, ip, zone = inst["InstanceId"], inst["PrivateIpAddress"], inst["Placement"]["AvailabilityZone"]
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        deadline = time.time() + 60

        def volume(device, **kw):
            v = ec2.create_volume(AvailabilityZone=zone, **kw)["VolumeId"]
            ec2.attach_volume(VolumeId=v, InstanceId=iid, Device=device)
            return v

        def measure(device, ops, skip, write=False):
            io = f"if=/dev/zero of={device} seek={skip} oflag=direct" if write else f"if={device} of=/dev/null skip={skip} iflag=direct"
            p = ssh(key, ip, f"sudo dd {io} bs=4k count={ops} 2>&1 | tail -1", deadline + 600)
            m = re.search(r"copied, ([0-9.]+) s", p.stdout)
            if not m:
                raise SystemExit(f"dd failed: {p.stdout} {p.stderr}")
            return ops / float(m.group(1))

        def row(what, provisioned, device, ops, skip):
            r = measure(device, ops, skip)
            w = measure(device, ops, skip + 10 * ops, write=True)
            print(f"{what:<40} provisioned {provisioned:>5} IOPS  read {r:7.0f}  write {w:7.0f}  ratio read {r / provisioned:.2f}  write {w / provisioned:.2f}")

        volume("/dev/sdf", Size=8, VolumeType="io1", Iops=100)
        volume("/dev/sdg", Size=8, VolumeType="gp3")
        volume("/dev/sdh", Size=10, VolumeType="gp2")
        mod = volume("/dev/sdi", Size=8, VolumeType="io1", Iops=100)
        ssh(key, ip, "true", deadline)
        n = args.ops
        row("io1, 100 IOPS", 100, "/dev/sdf", n, 0)
        row("gp3, 3,000 IOPS", 3000, "/dev/sdg", n * 30, 0)
        row("gp2 10 GiB, burst (baseline 100)", 3000, "/dev/sdh", n * 30, 0)
        ec2.modify_volume(VolumeId=mod, Iops=400)
        row("io1 modified live 100 -> 400 IOPS", 400, "/dev/sdi", n * 4, 0)


if __name__ == "__main__":
    sys.exit(main())
