#!/usr/bin/env python3
"""Boot benchmark for the `ns` and `vm` drivers: RunInstances to SSH-ready, instances started
per second, and memory per idle instance, against a fresh release `kumo serve --driver ns`
(or `--driver vm`: QEMU, under TCG where KVM does not work, so fewer and slower boots).

Usage: bench/ns_boot.py [--driver ns|vm] [--instances N] [--burst M] [--vpcs K]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build,
`kumo image build`, and `scripts/test` once for the Python clients in .venv; run as root).

Each figure is printed next to a baseline measured in the same run: the RunInstances call's
own latency (the API's share of a boot), so boots can be compared as ratios on a noisy
machine. Under `ns` it also times a secondary address assigned to a running instance until it
answers SSH (against the AssignPrivateIpAddresses call), a second interface attached until
its address answers SSH on eth1 (against the AttachNetworkInterface call), and the firewall
sync: a security-group change in a VPC with
running instances, before and after K more VPCs with running instances exist (incremental:
the ratio stays near 1), against an Elastic IP association, which re-renders every VPC of
the account and region, and DescribeSecurityGroups as the API's floor."""

import argparse
import glob
import os
import socket
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import boto3  # noqa: E402
import botocore.config  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving  # noqa: E402


def ssh_ready(ip, deadline):
    """Waits until the instance's sshd sends its banner; returns when it did, or None. A SYN
    sent before the guest has its address is dropped, not refused, so each attempt gives up
    after 50 ms and tries again (a 0.5 s attempt rounded every boot up to half a second)."""
    while time.time() < deadline:
        try:
            with socket.create_connection((ip, 22), timeout=0.05) as c:
                c.settimeout(1)
                if c.recv(7) == b"SSH-2.0":
                    return time.time()
        except OSError:
            time.sleep(0.01)
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", choices=["ns", "vm"], default="ns")
    ap.add_argument("--instances", type=int, help="sequential launches to time (ns 10, vm 3)")
    ap.add_argument("--burst", type=int, help="instances in one RunInstances call (ns 20, vm 3)")
    ap.add_argument("--vpcs", type=int, default=8, help="VPCs with a running instance added before the second firewall timing (ns)")
    args = ap.parse_args()
    vm = args.driver == "vm"
    args.instances = args.instances or (3 if vm else 10)
    args.burst = args.burst or (3 if vm else 20)
    wait = 600 if vm else 60
    # KUMO_BENCH_BIN names another build to measure (serve.py), for an A/B in one session.
    with serving(args.driver, "kumo-ns-bench-") as (endpoint, data):
        cfg = botocore.config.Config(retries={"max_attempts": 1})
        ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test", config=cfg)
        ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test", config=cfg)
        ami = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
        ec2.create_key_pair(KeyName="bench")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"][0]["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

        if not vm:
            # The server makes SSH host keys ahead of boots in its idle time (a pool of 32 sets
            # beside the images): let it, so that what is measured is a boot, not a key.
            pool = os.path.join(os.environ.get("KUMO_IMAGES", "/var/cache/kumo/images"), "hostkeys")
            want = min(32, args.instances + args.burst)
            t = time.time()
            while len(glob.glob(os.path.join(pool, "set-*"))) < want and time.time() - t < 300:
                time.sleep(1)
            print(f"host-key pool: {len(glob.glob(os.path.join(pool, 'set-*')))} sets ready after {time.time() - t:.0f} s")

        api, ready = [], []
        for _ in range(args.instances):
            t = time.time()
            inst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="bench")["Instances"][0]
            api.append(time.time() - t)
            done = ssh_ready(inst["PrivateIpAddress"], t + wait)
            if done is None:
                raise SystemExit(f"{inst['InstanceId']} never answered SSH")
            ready.append(done - t)
        p50_api, p50_ready = statistics.median(api), statistics.median(ready)
        print(f"baseline RunInstances call (1 instance): p50 {p50_api * 1000:.0f} ms  max {max(api) * 1000:.0f} ms  ({len(api)} launches)")
        target = "" if vm else "  (target <= 400 ms)"
        print(f"RunInstances to SSH-ready ({args.driver}, 1 instance): p50 {p50_ready * 1000:.0f} ms  max {max(ready) * 1000:.0f} ms{target}")
        print(f"ratio SSH-ready/baseline: p50 {p50_ready / p50_api:.2f}")

        t = time.time()
        burst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=args.burst, MaxCount=args.burst, KeyName="bench")["Instances"]
        api_burst = time.time() - t
        for i in burst:
            if ssh_ready(i["PrivateIpAddress"], t + 2 * wait) is None:
                raise SystemExit(f"{i['InstanceId']} never answered SSH")
        took = time.time() - t
        print(f"{args.burst} instances in one call: API {api_burst * 1000:.0f} ms, all SSH-ready in {took:.2f} s: {args.burst / took:.2f} instances started per second")

        if not vm:
            live_addresses(ec2, burst[0], wait)
            hot_plug(ec2, burst[0], wait)
            firewall_sync(ec2, ami, sg, burst[0]["InstanceId"], args.vpcs, wait)

        time.sleep(3)
        total = 0
        n = 0
        for f in glob.glob(f"/sys/fs/cgroup/memory/kumo-{driver_prefix(data)}/i-*/memory.usage_in_bytes"):
            total += int(open(f).read())
            n += 1
        if n:
            what = "QEMU and its guest's touched memory" if vm else "page cache included"
            print(f"memory per idle instance (cgroup memory.usage_in_bytes, {what}): {total / n / 2**20:.1f} MiB over {n} instances")


def timed(f, n=15):
    """The median seconds of `n` calls of f."""
    out = []
    for _ in range(n):
        t = time.time()
        f()
        out.append(time.time() - t)
    return statistics.median(out)


def live_addresses(ec2, inst, wait, rounds=10):
    """AssignPrivateIpAddresses on a running instance to the new address answering SSH from
    the host (the guest adds it from its metadata; the VPC routes it), against the call's own
    latency; then the unassigned address going away."""
    eni = inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    api, live = [], []
    for _ in range(rounds):
        t = time.time()
        out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)
        api.append(time.time() - t)
        ip = out["AssignedPrivateIpAddresses"][0]["PrivateIpAddress"]
        done = ssh_ready(ip, t + wait)
        if done is None:
            raise SystemExit(f"{ip} never answered SSH")
        live.append(done - t)
        ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[ip])
    p50_api, p50_live = statistics.median(api), statistics.median(live)
    print(f"baseline AssignPrivateIpAddresses call: p50 {p50_api * 1000:.0f} ms  ({rounds} calls)")
    print(f"AssignPrivateIpAddresses to the address answering SSH: p50 {p50_live * 1000:.0f} ms  max {max(live) * 1000:.0f} ms  (target <= 2000 ms)")
    print(f"ratio live/baseline: p50 {p50_live / p50_api:.1f}")


def hot_plug(ec2, inst, wait, rounds=5):
    """AttachNetworkInterface (device index 1) on a running instance to its address answering
    SSH from the host: eth1 up in the guest with the interface's address and the VPC routing
    it, against the call's own latency."""
    groups = [g["GroupId"] for g in inst["SecurityGroups"]]
    eni = ec2.create_network_interface(SubnetId=inst["SubnetId"], Groups=groups)["NetworkInterface"]
    ip = eni["PrivateIpAddress"]
    api, live = [], []
    for _ in range(rounds):
        t = time.time()
        att = ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=inst["InstanceId"], DeviceIndex=1)["AttachmentId"]
        api.append(time.time() - t)
        done = ssh_ready(ip, t + wait)
        if done is None:
            raise SystemExit(f"{ip} never answered SSH on eth1")
        live.append(done - t)
        ec2.detach_network_interface(AttachmentId=att)
        time.sleep(1.5)  # the guest's agent forgets the unplugged eth1
    p50_api, p50_live = statistics.median(api), statistics.median(live)
    print(f"baseline AttachNetworkInterface call: p50 {p50_api * 1000:.0f} ms  ({rounds} calls)")
    print(f"AttachNetworkInterface to eth1 answering SSH: p50 {p50_live * 1000:.0f} ms  max {max(live) * 1000:.0f} ms")
    print(f"ratio eth1-up/baseline: p50 {p50_live / p50_api:.1f}")


def firewall_sync(ec2, ami, sg, instance, vpcs, wait):
    """A rule change answers once the firewall has it: its cost is the re-render of the VPCs
    it reaches. Timed in the default VPC (with the launches' instances running) alone, then
    with `vpcs` more VPCs that each run an instance."""
    rule = [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]

    def change():
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=rule)
        ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=rule)

    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]

    def move_eip():
        a = ec2.associate_address(AllocationId=alloc, InstanceId=instance)["AssociationId"]
        ec2.disassociate_address(AssociationId=a)

    def describe():
        ec2.describe_security_groups(GroupIds=[sg])
        ec2.describe_security_groups(GroupIds=[sg])

    base = timed(describe)
    one = timed(change)
    eip_one = timed(move_eip)
    launched = []
    for n in range(vpcs):
        v = ec2.create_vpc(CidrBlock=f"10.{100 + n}.0.0/16")["Vpc"]["VpcId"]
        sub = ec2.create_subnet(VpcId=v, CidrBlock=f"10.{100 + n}.1.0/24")["Subnet"]["SubnetId"]
        launched.append(ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=sub)["Instances"][0]["InstanceId"])
    ec2.get_waiter("instance_running").wait(InstanceIds=launched, WaiterConfig={"Delay": 1, "MaxAttempts": wait})
    many = timed(change)
    eip_many = timed(move_eip)
    print(f"baseline DescribeSecurityGroups x2: p50 {base * 1000:.1f} ms")
    print(f"security-group change (authorize + revoke), 1 VPC running: p50 {one * 1000:.1f} ms; with {vpcs} more VPCs running: p50 {many * 1000:.1f} ms")
    print(f"ratio change/baseline: {one / base:.2f} with 1 VPC, {many / base:.2f} with {vpcs + 1}; ratio {vpcs + 1} VPCs/1 VPC: {many / one:.2f} (incremental: near 1)")
    print(f"Elastic IP associate + disassociate (re-renders every VPC of the region): p50 {eip_one * 1000:.1f} ms with 1 VPC, {eip_many * 1000:.1f} ms with {vpcs + 1}; ratio {eip_many / eip_one:.2f}")


def driver_prefix(data_dir):
    """The `ns` driver's name prefix for a data directory (see NsDriver::new)."""
    h = 0
    for b in os.path.realpath(data_dir).encode():
        h = (h * 31 + b) & 0xFFFFFFFF
    return f"k{h & 0xff:02x}"


if __name__ == "__main__":
    main()
