"""Real instances under the `ns` driver: they boot from the base image (`kumo image build`),
take their address on the subnet, serve the metadata service, install the launch key, run
their user data once, answer SSH with a real `ssh` client, keep their root data across a
stop and start, and are held to their type's limits by cgroups."""

import glob
import json
import os
import re
import subprocess
import tempfile
import time

import pytest

from botocore.exceptions import ClientError

from conftest import KUMO_BIN, Cli, error_code, make_client, serving

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes"]


@pytest.fixture(scope="module")
def ns_kumo():
    yield from serving("--driver", "ns")


def allow_ssh(ec2, vpc_id=None):
    """Opens port 22 in a VPC's default security group, as one does on AWS to log in."""
    filters = [{"Name": "group-name", "Values": ["default"]}]
    if vpc_id:
        filters.append({"Name": "vpc-id", "Values": [vpc_id]})
    else:
        filters.append({"Name": "vpc-id", "Values": [ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]]})
    sg = ec2.describe_security_groups(Filters=filters)["SecurityGroups"][0]["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return sg


@pytest.fixture
def ec2(ns_kumo):
    ns_kumo.reset()
    c = make_client(ns_kumo.endpoint)
    allow_ssh(c)
    return c


@pytest.fixture
def key(ec2, tmp_path):
    pem = ec2.create_key_pair(KeyName="ns-key", KeyType="ed25519")["KeyMaterial"]
    path = tmp_path / "ns-key.pem"
    path.write_text(pem)
    path.chmod(0o600)
    return str(path)


def ami(ns_kumo):
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    return ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]


def ssh(key, ip, command, user="ec2-user", timeout=30):
    """Runs a command over SSH, retrying until the guest's sshd answers."""
    deadline = time.time() + timeout
    while True:
        p = subprocess.run(["ssh", "-i", key, *SSH_OPTS, f"{user}@{ip}", command], capture_output=True, text=True, timeout=30)
        if p.returncode != 255 or time.time() > deadline:
            return p
        time.sleep(0.3)


def launch(ec2, ns_kumo, **kw):
    args = dict(ImageId=ami(ns_kumo), InstanceType="t3.micro", MinCount=1, MaxCount=1)
    args.update(kw)
    inst = ec2.run_instances(**args)["Instances"][0]
    ec2.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    return inst


def test_boot_metadata_key_user_data_and_ssh(ns_kumo, ec2, key):
    script = "#!/bin/sh\necho \"ran for $(curl -s http://169.254.169.254/latest/meta-data/instance-id)\" >> /var/lib/ud-ran\n"
    inst = launch(ec2, ns_kumo, KeyName="ns-key", UserData=script)
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    described = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    # A real driver runs it: no null-driver state reason.
    assert described["State"]["Name"] == "running" and "StateReason" not in described
    p = ssh(key, ip, "id -un; hostname; cat /var/lib/ud-ran; "
                     "T=$(curl -s -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); "
                     "for k in instance-id local-ipv4 mac instance-type ami-id placement/availability-zone public-keys/; do "
                     "curl -s -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/$k; echo; done; "
                     "curl -s http://169.254.169.254/latest/dynamic/instance-identity/document")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "ec2-user"
    assert lines[1] == described["PrivateDnsName"]
    assert lines[2] == f"ran for {iid}"
    mac = described["NetworkInterfaces"][0]["MacAddress"]
    assert lines[3:10] == [iid, ip, mac, "t3.micro", inst["ImageId"], inst["Placement"]["AvailabilityZone"], "0=ns-key"]
    assert f'"instanceId" : "{iid}"' in p.stdout or f'"instanceId": "{iid}"' in p.stdout
    # The interface's addresses are the guest's own.
    p = ssh(key, ip, "ip -4 -o addr show eth0; cat /sys/class/net/eth0/address")
    assert f"inet {ip}/" in p.stdout and mac in p.stdout
    # The console shows the boot: host key fingerprints, the user data, sshd. (boto3 decodes
    # the base64 the API sends.)
    out = ec2.get_console_output(InstanceId=iid)["Output"]
    assert "BEGIN SSH HOST KEY FINGERPRINTS" in out and "running user data" in out and "sshd started" in out
    # The primary address came from the subnet's DHCP server (router .1, the VPC's resolver),
    # before the metadata was read.
    assert f"DHCP: {ip}/20 via 172.31.0.1 on eth0" in out
    assert out.index("DHCP:") < out.index(f"instance {iid}")
    assert "nameserver 172.31.0.2" in ssh(key, ip, "cat /etc/resolv.conf").stdout
    # Another key is refused.
    other = make_key(ec2)
    assert ssh(other, ip, "true", timeout=0).returncode == 255


def make_key(ec2):
    pem = ec2.create_key_pair(KeyName="other-key")["KeyMaterial"]
    fd, path = tempfile.mkstemp()
    os.write(fd, pem.encode())
    os.close(fd)
    os.chmod(path, 0o600)
    return path


def test_stop_start_keeps_root_data_and_user_data_runs_once(ns_kumo, ec2, key):
    inst = launch(ec2, ns_kumo, KeyName="ns-key", UserData="#!/bin/sh\necho once >> /var/lib/ud-count\n")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    assert ssh(key, ip, "echo kept > /home/ec2-user/note").returncode == 0
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    # Stopped for real: nothing answers.
    assert ssh(key, ip, "true", timeout=0).returncode == 255
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    p = ssh(key, ip, "cat /home/ec2-user/note; wc -l < /var/lib/ud-count")
    assert p.stdout.split() == ["kept", "1"], p.stdout + p.stderr
    # A reboot keeps the data too.
    ec2.reboot_instances(InstanceIds=[iid])
    assert ssh(key, ip, "cat /home/ec2-user/note").stdout.strip() == "kept"
    # Termination removes the instance and its root volume's data.
    root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"][0]["VolumeId"]
    ec2.terminate_instances(InstanceIds=[iid])
    assert ssh(key, ip, "true", timeout=0).returncode == 255
    assert not os.path.exists(os.path.join(ns_kumo.data_dir, "volumes", f"{root}.root"))


def test_imds_v2_required_and_disabled(ns_kumo, ec2, key):
    v2 = launch(ec2, ns_kumo, KeyName="ns-key", MetadataOptions={"HttpTokens": "required"})
    p = ssh(key, v2["PrivateIpAddress"],
            "curl -s -o /dev/null -w '%{http_code}\\n' http://169.254.169.254/latest/meta-data/instance-id; "
            "T=$(curl -s -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); "
            "curl -s -w '\\n' -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/instance-id; "
            "curl -s -o /dev/null -w '%{http_code}\\n' -H 'X-aws-ec2-metadata-token: forged' http://169.254.169.254/latest/meta-data/instance-id; "
            "curl -s -o /dev/null -w '%{http_code}\\n' -X PUT http://169.254.169.254/latest/api/token")
    assert p.stdout.split() == ["401", v2["InstanceId"], "401", "400"], p.stdout + p.stderr


def test_the_token_response_stops_at_the_hop_limit(ns_kumo, ec2, key):
    """A real extra hop: a network namespace inside the guest, routed and masqueraded through
    it as a container bridge is. With the default hop limit (1) the token response dies in
    the guest's forward path; with 2 it reaches the inner namespace."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    setup = ("set -e; sudo ip netns add inner; "
             "sudo ip link add hop0 type veth peer name hop1 netns inner; "
             "sudo ip addr add 10.99.0.1/30 dev hop0; sudo ip link set hop0 up; "
             "sudo ip -n inner addr add 10.99.0.2/30 dev hop1; sudo ip -n inner link set hop1 up; "
             "sudo ip -n inner route add default via 10.99.0.1; "
             "sudo sysctl -qw net.ipv4.ip_forward=1; "
             "sudo nft add table ip hop; "
             "sudo nft 'add chain ip hop post { type nat hook postrouting priority 100; }'; "
             "sudo nft add rule ip hop post oifname eth0 masquerade")
    p = ssh(key, ip, setup)
    assert p.returncode == 0, p.stdout + p.stderr
    token = ("sudo ip netns exec inner curl -s -m 3 -X PUT http://169.254.169.254/latest/api/token "
             "-H 'X-aws-ec2-metadata-token-ttl-seconds: 60'; echo \" exit=$?\"")
    # The request gets through (the handshake is not limited); the answer does not.
    p = ssh(key, ip, token)
    assert p.stdout.strip() == "exit=28", p.stdout + p.stderr
    # From the guest itself, one hop, it does.
    p = ssh(key, ip, "curl -s -m 3 -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'")
    assert len(p.stdout.strip()) >= 32
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpPutResponseHopLimit=2)
    p = ssh(key, ip, token)
    out = p.stdout.split()
    assert out[-1] == "exit=0" and len(out[0]) >= 32, p.stdout + p.stderr


def test_secondary_addresses_come_from_the_metadata(ns_kumo, ec2, key):
    subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]["SubnetId"]
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.medium",
                  NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "SecondaryPrivateIpAddressCount": 2}])
    eni = inst["NetworkInterfaces"][0]
    secondary = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"] if not a["Primary"]]
    assert len(secondary) == 2
    p = ssh(key, inst["PrivateIpAddress"], "ip -4 -o addr show dev eth0")
    for a in secondary:
        assert f"inet {a}/" in p.stdout, p.stdout
    # Each is the instance's own: the host reaches its sshd on every one.
    for a in secondary:
        assert ssh(key, a, "hostname -I").returncode == 0


def until(check, timeout=5.0):
    """Polls `check` until it holds or `timeout` seconds pass; its last answer."""
    deadline = time.time() + timeout
    while True:
        ok = check()
        if ok or time.time() > deadline:
            return ok
        time.sleep(0.2)


def test_addresses_assigned_while_running_reach_the_guest(ns_kumo, ec2, key):
    """Issue 14: secondary addresses and prefixes assigned or unassigned while the instance
    runs reach its metadata, the VPC's routes and the guest within seconds, no restart."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.medium")
    ip, eni = inst["PrivateIpAddress"], inst["NetworkInterfaces"][0]["NetworkInterfaceId"]
    out = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=1)
    new = out["AssignedPrivateIpAddresses"][0]["PrivateIpAddress"]
    # The host reaches the guest's sshd on it, once the guest has it and the VPC routes it.
    assert until(lambda: ssh(key, new, "true", timeout=0).returncode == 0), "the new address does not answer"
    assert f"inet {new}/" in ssh(key, ip, "ip -4 -o addr show dev eth0").stdout
    imds = ("T=$(curl -s -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); "
            "M=$(curl -s -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/mac); "
            "curl -s -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/network/interfaces/macs/$M/local-ipv4s")
    assert ssh(key, ip, imds).stdout.split() == [ip, new]
    # Unassigned, it leaves the guest and the VPC's routes.
    ec2.unassign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[new])
    assert until(lambda: f"inet {new}/" not in ssh(key, ip, "ip -4 -o addr show dev eth0").stdout)
    assert ssh(key, ip, imds).stdout.split() == [ip]
    assert ssh(key, new, "true", timeout=0).returncode == 255
    # A delegated /28 is routed at once; an address of it is usable once the guest adds it.
    prefix = ec2.assign_private_ip_addresses(NetworkInterfaceId=eni, Ipv4PrefixCount=1)["AssignedIpv4Prefixes"][0]["Ipv4Prefix"]
    base = prefix.split("/")[0].rsplit(".", 1)
    mine = f"{base[0]}.{int(base[1]) + 3}"
    assert ssh(key, ip, f"sudo ip addr add {mine}/32 dev eth0").returncode == 0
    assert until(lambda: ssh(key, mine, "true", timeout=0).returncode == 0), "the prefix is not routed to the guest"
    # The address agent leaves an address the user added alone.
    time.sleep(2)
    assert f"inet {mine}/" in ssh(key, ip, "ip -4 -o addr show dev eth0").stdout


def test_a_second_interface_reaches_the_running_guest(ns_kumo, ec2, key):
    """Issue 14: attach-network-interface --device-index 1 on a running instance gives the guest
    an eth1 with the interface's MAC and addresses (replies leave by it), the metadata lists
    both MACs, and a detach takes it away; attached while stopped, it is there at the start."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.medium")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    groups = [g["GroupId"] for g in inst["SecurityGroups"]]
    eni = ec2.create_network_interface(SubnetId=inst["SubnetId"], Groups=groups, SecondaryPrivateIpAddressCount=1)["NetworkInterface"]
    mac = eni["MacAddress"]
    addrs = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"]]
    attachment = ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    for a in addrs:
        assert until(lambda: ssh(key, a, "true", timeout=0).returncode == 0, 10), f"{a} does not answer"
    p = ssh(key, ip, "cat /sys/class/net/eth1/address; ip -4 -o addr show dev eth1")
    assert p.stdout.splitlines()[0] == mac, p.stdout
    for a in addrs:
        assert f"inet {a}/" in p.stdout, p.stdout
    imds = ("T=$(curl -s -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); "
            "md() { curl -s -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/$1; echo; }; "
            f"md network/interfaces/macs/; md network/interfaces/macs/{mac}/device-number")
    out = ssh(key, ip, imds).stdout.split()
    assert sorted(out[:2]) == sorted([inst["NetworkInterfaces"][0]["MacAddress"] + "/", mac + "/"]) and out[2] == "1", out
    # Detached, it leaves the guest.
    ec2.detach_network_interface(AttachmentId=attachment)
    assert until(lambda: ssh(key, ip, "test -e /sys/class/net/eth1").returncode == 1, 10)
    assert ssh(key, addrs[0], "true", timeout=0).returncode == 255
    # Attached while the instance is stopped, it is there when the instance starts.
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    until(lambda: ec2.describe_network_interfaces(NetworkInterfaceIds=[eni["NetworkInterfaceId"]])["NetworkInterfaces"][0]["Status"] == "available")
    ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1)
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    assert until(lambda: ssh(key, addrs[0], "cat /sys/class/net/eth1/address", timeout=0).stdout.strip() == mac, 20)


def test_instance_store_survives_a_reboot_not_a_stop(ns_kumo, ec2, key):
    """A c5d.large's 50 GB NVMe instance store: the next NVMe device after the root, blank at
    each start, kept across a reboot, gone after a stop; EBS volumes come after it."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="c5d.large")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    mark = "echo instance-store-data | sudo dd of=/dev/nvme1n1 conv=fsync status=none"
    read = "sudo head -c 19 /dev/nvme1n1 | tr -d '\\000'; echo; sudo blockdev --getsize64 /dev/nvme1n1"
    assert ssh(key, ip, mark).returncode == 0
    p = ssh(key, ip, read)
    assert p.stdout.split() == ["instance-store-data", str(50 * 10**9)], p.stdout + p.stderr
    vol = ec2.create_volume(AvailabilityZone=inst["Placement"]["AvailabilityZone"], Size=1)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    assert ssh(key, ip, "readlink /dev/sdf").stdout.strip() == "nvme2n1"
    ec2.reboot_instances(InstanceIds=[iid])
    time.sleep(1)
    p = ssh(key, ip, read + "; readlink /dev/sdf")
    assert p.stdout.split() == ["instance-store-data", str(50 * 10**9), "nvme2n1"], p.stdout + p.stderr
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    p = ssh(key, ip, read)
    assert p.stdout.split() == [str(50 * 10**9)], p.stdout + p.stderr


def test_instances_share_their_subnet_and_cgroups_hold_the_type(ns_kumo, ec2, key):
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.77.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    allow_ssh(ec2, vpc)
    a = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet, InstanceType="t3.small")
    b = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet, InstanceType="t3.micro")
    assert a["PrivateIpAddress"].startswith("10.77.1.")
    # a reaches b's sshd across the subnet's bridge.
    p = ssh(key, a["PrivateIpAddress"], f"timeout 3 bash -c 'exec 3<>/dev/tcp/{b['PrivateIpAddress']}/22; head -c 7 <&3'")
    assert p.stdout == "SSH-2.0", p.stdout + p.stderr
    # The VPC's resolver (base + 2) knows the instances' private DNS names, and refuses the
    # rest at once (nothing leaves the machine).
    b_name = state_of(ec2, b["InstanceId"])["PrivateDnsName"]
    p = ssh(key, a["PrivateIpAddress"], f"grep nameserver /etc/resolv.conf; getent hosts {b_name}; hostname -f; start=$(date +%s); getent hosts example.com || echo unresolved $(( $(date +%s) - start ))")
    lines = p.stdout.splitlines()
    assert lines[0] == "nameserver 10.77.0.2"
    assert lines[1].split() == [b["PrivateIpAddress"], b_name]
    assert lines[2] == state_of(ec2, a["InstanceId"])["PrivateDnsName"]
    assert lines[3].split()[0] == "unresolved" and int(lines[3].split()[1]) <= 1, p.stdout
    # The type's memory (t3.small: 2 GiB) and vCPUs (2) are the cgroup's limits.
    mem = glob.glob(f"/sys/fs/cgroup/memory/kumo-*/{a['InstanceId']}/memory.limit_in_bytes")
    cpu = glob.glob(f"/sys/fs/cgroup/cpu/kumo-*/{a['InstanceId']}/cpu.cfs_quota_us")
    assert open(mem[0]).read().strip() == str(2048 << 20)
    assert open(cpu[0]).read().strip() == "200000"
    # The guest's processes are in it.
    procs = open(os.path.dirname(mem[0]) + "/cgroup.procs").read().split()
    assert len(procs) >= 2
    # And the guest sees them as its own machine (lxcfs): `free` shows the type's memory,
    # not the host's.
    p = ssh(key, a["PrivateIpAddress"], "grep MemTotal /proc/meminfo; free -m | awk '/^Mem:/ {print $2}'")
    assert p.stdout.split()[:3] == ["MemTotal:", str(2048 << 10), "kB"], p.stdout + p.stderr
    assert p.stdout.split()[3] == "2048", p.stdout


def test_an_arm64_instance_is_not_given_an_x86_64_guest(ns_kumo, ec2):
    """This x86_64 host runs x86_64 guests only: an arm64 launch answers AWS's
    InsufficientInstanceCapacity with the reason, instead of booting the wrong CPU."""
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    arm = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")["Parameter"]["Value"]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=arm, InstanceType="t4g.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InsufficientInstanceCapacity"
    assert "runs only x86_64 guests" in e.value.response["Error"]["Message"]
    assert ec2.describe_instances(Filters=[{"Name": "instance-type", "Values": ["t4g.micro"]}])["Reservations"] == []


def test_a_one_vcpu_guest_sees_one_cpu(ns_kumo, ec2, key):
    """t2.micro has 1 vCPU and 1 GiB: its /proc/cpuinfo, /proc/stat, nproc and
    /sys/devices/system/cpu say so, whatever the host has."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t2.micro")
    p = ssh(key, inst["PrivateIpAddress"], "grep -c ^processor /proc/cpuinfo; grep -c '^cpu[0-9]' /proc/stat; nproc; cat /sys/devices/system/cpu/online; grep MemTotal /proc/meminfo")
    assert p.stdout.split() == ["1", "1", "1", "0", "MemTotal:", str(1024 << 10), "kB"], p.stdout + p.stderr


def test_resource_names_reach_the_guest_and_the_resolver(ns_kumo, ec2, key):
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.79.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    allow_ssh(ec2, vpc)
    a = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet,
               PrivateDnsNameOptions={"HostnameType": "resource-name", "EnableResourceNameDnsARecord": True})
    b = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet)
    a_name = f"{a['InstanceId']}.eu-west-1.compute.internal"
    b_rbn = f"{b['InstanceId']}.eu-west-1.compute.internal"
    b_ip_name = state_of(ec2, b["InstanceId"])["PrivateDnsName"]
    assert state_of(ec2, a["InstanceId"])["PrivateDnsName"] == a_name
    # The guest's host name and the metadata's are the resource name.
    p = ssh(key, a["PrivateIpAddress"], "hostname; curl -s http://169.254.169.254/latest/meta-data/local-hostname; echo; "
            "curl -s http://169.254.169.254/latest/meta-data/hostname; echo")
    assert p.stdout.splitlines() == [a_name, a_name, a_name], p.stdout + p.stderr
    # From b, the VPC resolver answers a's resource name (its A record asked for) and a's IP
    # name, but not b's own resource name.
    a_ip_name = "ip-" + a["PrivateIpAddress"].replace(".", "-") + ".eu-west-1.compute.internal"
    p = ssh(key, b["PrivateIpAddress"], f"hostname; getent hosts {a_name}; getent hosts {a_ip_name}; "
            f"getent hosts {b_rbn} || echo none")
    assert [line.split() for line in p.stdout.splitlines()] == [
        [b_ip_name],
        [a["PrivateIpAddress"], a_name],
        [a["PrivateIpAddress"], a_ip_name],
        ["none"],
    ], p.stdout + p.stderr
    # b asks for its resource name's A record while it runs: the resolver follows.
    ec2.modify_private_dns_name_options(InstanceId=b["InstanceId"], EnableResourceNameDnsARecord=True)
    deadline = time.time() + 10
    while True:
        p = ssh(key, a["PrivateIpAddress"], f"getent hosts {b_rbn} || echo none")
        if p.stdout.split() == [b["PrivateIpAddress"], b_rbn] or time.time() > deadline:
            break
        time.sleep(0.3)
    assert p.stdout.split() == [b["PrivateIpAddress"], b_rbn], p.stdout + p.stderr


def test_dhcp_options_reach_the_guest_at_its_next_boot(ns_kumo, ec2, key):
    """The VPC's DHCP options set in the guest's resolver: its name servers (AmazonProvidedDNS
    is the VPC's resolver) and its domain name as the search list, taken at the next lease (an
    ns guest's next boot); `default` (no set) leaves the guest no name server."""
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    a = launch(ec2, ns_kumo, KeyName="ns-key")
    b = launch(ec2, ns_kumo, KeyName="ns-key")
    a_id, a_ip, b_ip = a["InstanceId"], a["PrivateIpAddress"], b["PrivateIpAddress"]
    short_b = "ip-" + b_ip.replace(".", "-")
    look = f"grep -v '^options' /etc/resolv.conf; getent hosts {short_b} || echo none"

    def restart():
        ec2.stop_instances(InstanceIds=[a_id])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[a_id], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ec2.start_instances(InstanceIds=[a_id])
        ec2.get_waiter("instance_running").wait(InstanceIds=[a_id], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        return ssh(key, a_ip, look).stdout.splitlines()

    # The region's default set: the resolver, and the region's domain to search, so a peer's
    # short name resolves.
    before = ssh(key, a_ip, look).stdout.splitlines()
    assert before[:2] == ["nameserver 172.31.0.2", "search eu-west-1.compute.internal"], before
    assert before[2].split() == [b_ip, f"{short_b}.eu-west-1.compute.internal"], before
    corp = ec2.create_dhcp_options(DhcpConfigurations=[
        {"Key": "domain-name", "Values": ["corp.example"]},
        {"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS", "10.0.0.53"]}])["DhcpOptions"]["DhcpOptionsId"]
    ec2.associate_dhcp_options(DhcpOptionsId=corp, VpcId=vpc)
    # A running guest keeps its lease until its next one.
    assert ssh(key, a_ip, look).stdout.splitlines() == before
    assert restart() == ["nameserver 172.31.0.2", "nameserver 10.0.0.53", "search corp.example", "none"]
    # No set: no name server at all.
    ec2.associate_dhcp_options(DhcpOptionsId="default", VpcId=vpc)
    assert restart() == ["none"]


def test_cli_run_and_ssh(ns_kumo, ec2, key):
    cli = Cli(ns_kumo.endpoint)
    out = cli("ec2", "run-instances", "--image-id", ami(ns_kumo), "--instance-type", "t3.micro", "--key-name", "ns-key")
    iid = out["Instances"][0]["InstanceId"]
    cli("ec2", "wait", "instance-running", "--instance-ids", iid)
    ip = cli("ec2", "describe-instances", "--instance-ids", iid)["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
    p = ssh(key, ip, "sudo -n id -u")
    assert p.stdout.strip() == "0", p.stderr


def state_of(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def wait_state(ec2, iid, want, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = state_of(ec2, iid)
        if st["State"]["Name"] == want:
            return st
        time.sleep(0.3)
    raise AssertionError(f"{iid} never became {want}: {state_of(ec2, iid)['State']}")


def test_guest_power_off_and_reboot_follow_shutdown_behaviour(ns_kumo, ec2, key):
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    # `sudo reboot` in the guest: it boots again and stays running. (Once sshd answers, the
    # command is sent once: a retry would reboot it twice.)
    assert ssh(key, ip, "echo before > /home/ec2-user/r").returncode == 0
    ssh(key, ip, "sudo reboot", timeout=0)
    time.sleep(1)
    p = ssh(key, ip, "cat /home/ec2-user/r")
    assert p.stdout.strip() == "before", p.stderr
    assert state_of(ec2, iid)["State"]["Name"] == "running"
    assert ec2.get_console_output(InstanceId=iid)["Output"].count("reboot requested in the guest") == 1
    # `sudo poweroff`: InstanceInitiatedShutdownBehavior stop (the default) stops it.
    assert ssh(key, ip, "true").returncode == 0
    ssh(key, ip, "sudo poweroff", timeout=0)
    st = wait_state(ec2, iid, "stopped")
    assert st["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    ec2.start_instances(InstanceIds=[iid])
    assert ssh(key, ip, "cat /home/ec2-user/r").stdout.strip() == "before"
    # With behaviour terminate, `shutdown -h now` terminates it.
    t = launch(ec2, ns_kumo, KeyName="ns-key", InstanceInitiatedShutdownBehavior="terminate")
    assert ssh(key, t["PrivateIpAddress"], "true").returncode == 0
    ssh(key, t["PrivateIpAddress"], "sudo shutdown -h now", timeout=0)
    wait_state(ec2, t["InstanceId"], "terminated")


def test_running_instances_boot_again_after_a_server_restart(ns_kumo, ec2, key):
    up = launch(ec2, ns_kumo, KeyName="ns-key")
    down = launch(ec2, ns_kumo, KeyName="ns-key")
    assert ssh(key, up["PrivateIpAddress"], "echo survived > /home/ec2-user/s").returncode == 0
    ec2.stop_instances(InstanceIds=[down["InstanceId"]])
    wait_state(ec2, down["InstanceId"], "stopped")
    ns_kumo.stop()
    # The server stopped its guests with it.
    assert ssh(key, up["PrivateIpAddress"], "true", timeout=0).returncode == 255
    ns_kumo.start()
    p = ssh(key, up["PrivateIpAddress"], "cat /home/ec2-user/s")
    assert p.stdout.strip() == "survived", p.stderr
    # The stopped one stays stopped.
    assert state_of(ec2, down["InstanceId"])["State"]["Name"] == "stopped"
    assert ssh(key, down["PrivateIpAddress"], "true", timeout=0).returncode == 255


def can_reach(key, src_ip, dst_ip, port):
    p = ssh(key, src_ip, f"timeout 2 bash -c 'exec 3<>/dev/tcp/{dst_ip}/{port}; head -c 7 <&3' 2>/dev/null; true")
    return p.stdout == "SSH-2.0"


def test_security_groups_are_live_stateful_firewalls(ns_kumo, ec2, key):
    vpc = ec2.create_vpc(CidrBlock="10.78.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.78.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    def group(name):
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
    admin, server, client, closed = group("admin"), group("server"), group("client"), group("closed")
    ec2.authorize_security_group_ingress(GroupId=admin, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    a = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet, SecurityGroupIds=[admin, client])
    b = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet, SecurityGroupIds=[admin, server])
    c = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet, SecurityGroupIds=[closed])
    a_ip, b_ip = a["PrivateIpAddress"], b["PrivateIpAddress"]
    # A second sshd on 2222 in b: a service no rule opens yet.
    assert ssh(key, b_ip, "sudo /usr/sbin/sshd -p 2222").returncode == 0
    assert can_reach(key, a_ip, b_ip, 22)
    assert not can_reach(key, a_ip, b_ip, 2222)
    # Ingress from members of another group: a (in client) may now connect; live, no restart.
    ec2.authorize_security_group_ingress(GroupId=server, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "UserIdGroupPairs": [{"GroupId": client}]}])
    assert can_reach(key, a_ip, b_ip, 2222)
    # Egress: without its groups' allow-all egress rules a can't open connections.
    for g in (admin, client):
        ec2.revoke_security_group_egress(GroupId=g, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert not can_reach(key, a_ip, b_ip, 2222)
    # Stateful: replies to the host's SSH still flow, though a has no egress rule.
    assert ssh(key, a_ip, "echo still").stdout.strip() == "still"
    ec2.authorize_security_group_egress(GroupId=client, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "IpRanges": [{"CidrIp": "10.78.0.0/16"}]}])
    assert can_reach(key, a_ip, b_ip, 2222)
    # Revoking the ingress closes it again.
    ec2.revoke_security_group_ingress(GroupId=server, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "UserIdGroupPairs": [{"GroupId": client}]}])
    assert not can_reach(key, a_ip, b_ip, 2222)
    # Ingress from a prefix list: its entries are the peers, and a change to the list reaches
    # the firewall at once.
    pl = ec2.create_managed_prefix_list(PrefixListName="clients", MaxEntries=5, AddressFamily="IPv4",
                                        Entries=[{"Cidr": f"{a_ip}/32"}])["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(GroupId=server, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "PrefixListIds": [{"PrefixListId": pl}]}])
    assert can_reach(key, a_ip, b_ip, 2222)
    ec2.modify_managed_prefix_list(PrefixListId=pl, CurrentVersion=1, RemoveEntries=[{"Cidr": f"{a_ip}/32"}], AddEntries=[{"Cidr": "192.0.2.0/24"}])
    assert not can_reach(key, a_ip, b_ip, 2222)
    ec2.restore_managed_prefix_list_version(PrefixListId=pl, PreviousVersion=1, CurrentVersion=2)
    assert can_reach(key, a_ip, b_ip, 2222)
    ec2.revoke_security_group_ingress(GroupId=server, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "PrefixListIds": [{"PrefixListId": pl}]}])
    assert not can_reach(key, a_ip, b_ip, 2222)
    # The other way, b to a: b's egress is checked before a's ingress, whichever instance's
    # rules come first.
    assert ssh(key, a_ip, "sudo /usr/sbin/sshd -p 2222").returncode == 0
    ec2.authorize_security_group_ingress(GroupId=client, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "UserIdGroupPairs": [{"GroupId": server}]}])
    assert can_reach(key, b_ip, a_ip, 2222)
    ec2.revoke_security_group_egress(GroupId=server, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert not can_reach(key, b_ip, a_ip, 2222)
    ec2.authorize_security_group_egress(GroupId=server, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2222, "UserIdGroupPairs": [{"GroupId": client}]}])
    assert can_reach(key, b_ip, a_ip, 2222)
    # A group with no ingress rules admits nothing, not even the host's SSH.
    assert ssh(key, c["PrivateIpAddress"], "true", timeout=0).returncode == 255
    # Changing an instance's groups takes effect at once.
    ec2.modify_instance_attribute(InstanceId=c["InstanceId"], Groups=[closed, admin])
    assert ssh(key, c["PrivateIpAddress"], "echo open").stdout.strip() == "open"


def test_network_acls_are_stateless_at_the_subnet_boundary(ns_kumo, ec2, key):
    vpc = ec2.create_vpc(CidrBlock="10.79.0.0/16")["Vpc"]["VpcId"]
    allow_ssh(ec2, vpc)
    one = ec2.create_subnet(VpcId=vpc, CidrBlock="10.79.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    two = ec2.create_subnet(VpcId=vpc, CidrBlock="10.79.2.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    # a in one subnet; b and c in the other. The default group admits its own members.
    a = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=one)
    b = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=two)
    c = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=two)
    a_ip, b_ip, c_ip = a["PrivateIpAddress"], b["PrivateIpAddress"], c["PrivateIpAddress"]
    assert ssh(key, b_ip, "sudo /usr/sbin/sshd -p 2222").returncode == 0
    # The default ACL allows everything.
    assert can_reach(key, a_ip, b_ip, 2222)

    # A custom ACL for the second subnet: SSH in, replies out to ephemeral ports.
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    def entry(n, egress, action, cidr, ports, protocol="6"):
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=n, Egress=egress, Protocol=protocol, RuleAction=action,
                                     CidrBlock=cidr, PortRange={"From": ports[0], "To": ports[1]})
    entry(100, False, "allow", "0.0.0.0/0", (22, 22))
    entry(100, True, "allow", "0.0.0.0/0", (1024, 65535))
    assoc = [x for x in ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [two]}])["NetworkAcls"][0]["Associations"]
             if x["SubnetId"] == two][0]["NetworkAclAssociationId"]
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)
    # Port 22 crosses the boundary both ways (the host's SSH too); 2222 has no entry.
    assert can_reach(key, a_ip, b_ip, 22)
    assert not can_reach(key, a_ip, b_ip, 2222)
    # Within the subnet nothing is evaluated: c reaches b's 2222.
    assert can_reach(key, c_ip, b_ip, 2222)
    # Stateless: a deny of the ephemeral ports towards the first subnet drops b's replies,
    # though b's group (stateful) would let them out.
    entry(90, True, "deny", "10.79.1.0/24", (1024, 65535))
    assert not can_reach(key, a_ip, b_ip, 22)
    assert ssh(key, b_ip, "echo host-still").stdout.strip() == "host-still"
    # Lowest number first: an allow at 80 wins over the deny at 90.
    entry(80, True, "allow", "10.79.1.0/24", (1024, 65535))
    assert can_reach(key, a_ip, b_ip, 22)
    ec2.delete_network_acl_entry(NetworkAclId=acl, RuleNumber=80, Egress=True)
    assert not can_reach(key, a_ip, b_ip, 22)
    # The metadata service is not filtered (AWS's ACLs do not see it): b's egress allows no
    # port 80, yet b reads its metadata.
    p = ssh(key, b_ip, "curl -s -m 3 http://169.254.169.254/latest/meta-data/instance-id")
    assert p.stdout.strip() == b["InstanceId"], p.stdout + p.stderr
    # Back on the default ACL, everything flows again.
    assoc = [x for x in ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Associations"]][0]["NetworkAclAssociationId"]
    default = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]["NetworkAclId"]
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=default)
    assert can_reach(key, a_ip, b_ip, 2222)
    # The default ACL's own rules are rules like any other: with everything allowed at 200,
    # replacing its rule 100 inbound with a deny of the first subnet cuts a off from b.
    ec2.create_network_acl_entry(NetworkAclId=default, RuleNumber=200, Egress=False, Protocol="-1", RuleAction="allow",
                                 CidrBlock="0.0.0.0/0")
    ec2.replace_network_acl_entry(NetworkAclId=default, RuleNumber=100, Egress=False, Protocol="-1", RuleAction="deny",
                                  CidrBlock="10.79.1.0/24")
    assert not can_reach(key, a_ip, b_ip, 2222)
    assert can_reach(key, c_ip, b_ip, 2222)


def test_vpc_peering_carries_traffic_where_both_sides_route_it(ns_kumo, ec2, key):
    def main_table(vpc):
        return ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}]
                                         )["RouteTables"][0]["RouteTableId"]
    va = ec2.create_vpc(CidrBlock="10.81.0.0/16")["Vpc"]["VpcId"]
    vb = ec2.create_vpc(CidrBlock="10.82.0.0/16")["Vpc"]["VpcId"]
    allow_ssh(ec2, va)
    sg_b = allow_ssh(ec2, vb)
    sa = ec2.create_subnet(VpcId=va, CidrBlock="10.81.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    sb = ec2.create_subnet(VpcId=vb, CidrBlock="10.82.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    a = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=sa)
    b = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=sb)
    a_ip, b_ip = a["PrivateIpAddress"], b["PrivateIpAddress"]
    assert ssh(key, b_ip, "true").returncode == 0
    # Two VPCs are two networks.
    assert not can_reach(key, a_ip, b_ip, 22)
    pcx = ec2.create_vpc_peering_connection(VpcId=va, PeerVpcId=vb)["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    # Active, but no route sends anything through it yet.
    assert not can_reach(key, a_ip, b_ip, 22)
    ec2.create_route(RouteTableId=main_table(va), DestinationCidrBlock="10.82.0.0/16", VpcPeeringConnectionId=pcx)
    # One side's route is not enough: b's replies have no way back.
    assert not can_reach(key, a_ip, b_ip, 22)
    ec2.create_route(RouteTableId=main_table(vb), DestinationCidrBlock="10.81.0.0/16", VpcPeeringConnectionId=pcx)
    assert can_reach(key, a_ip, b_ip, 22)
    # The receiver's groups still decide: b's port 22 open to the first VPC only.
    ec2.revoke_security_group_ingress(GroupId=sg_b, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert not can_reach(key, a_ip, b_ip, 22)
    ec2.authorize_security_group_ingress(GroupId=sg_b, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.81.0.0/16"}]}])
    assert can_reach(key, a_ip, b_ip, 22)
    # Or by a group of the peered VPC: its members are admitted, and an instance that joins
    # it later is too.
    ec2.revoke_security_group_ingress(GroupId=sg_b, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.81.0.0/16"}]}])
    assert not can_reach(key, a_ip, b_ip, 22)
    clients = ec2.create_security_group(GroupName="clients", Description="clients", VpcId=va)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=sg_b, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                                                        "UserIdGroupPairs": [{"GroupId": clients}]}])
    assert not can_reach(key, a_ip, b_ip, 22)
    sg_a = ec2.describe_instances(InstanceIds=[a["InstanceId"]])["Reservations"][0]["Instances"][0]["SecurityGroups"][0]["GroupId"]
    ec2.modify_instance_attribute(InstanceId=a["InstanceId"], Groups=[sg_a, clients])
    assert can_reach(key, a_ip, b_ip, 22)
    # A subnet moved onto a table without the route loses the way.
    bare = ec2.create_route_table(VpcId=va)["RouteTable"]["RouteTableId"]
    assoc = ec2.associate_route_table(RouteTableId=bare, SubnetId=sa)["AssociationId"]
    assert not can_reach(key, a_ip, b_ip, 22)
    ec2.disassociate_route_table(AssociationId=assoc)
    assert can_reach(key, a_ip, b_ip, 22)
    # Public DNS names: by default a's resolver answers b's public name with the public
    # address; with the accepter's AllowDnsResolutionFromRemoteVpc, with b's private one.
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vb)
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=b["InstanceId"])
    name = "ec2-" + eip["PublicIp"].replace(".", "-") + ".eu-west-1.compute.amazonaws.com"
    lookup = f"getent ahostsv4 {name} | head -1 | cut -d' ' -f1"
    assert ssh(key, a_ip, lookup).stdout.strip() == eip["PublicIp"]
    ec2.modify_vpc_peering_connection_options(VpcPeeringConnectionId=pcx,
                                              AccepterPeeringConnectionOptions={"AllowDnsResolutionFromRemoteVpc": True})
    assert ssh(key, a_ip, lookup).stdout.strip() == b_ip
    # Deleted, the link goes and the routes are blackholes.
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    assert not can_reach(key, a_ip, b_ip, 22)


def test_an_interface_endpoint_serves_kumo_api_inside_the_vpc(ns_kumo, ec2, key):
    """The seed's endpoint table for real: an instance with no public address calls the EC2 API
    at its usual name, which the VPC resolves to the endpoint's interface, over HTTPS that
    the guest verifies against the server's local CA."""
    vpc = ec2.create_vpc(CidrBlock="10.84.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    allow_ssh(ec2, vpc)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.84.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    inst = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet)
    ip = inst["PrivateIpAddress"]
    assert "PublicIpAddress" not in inst
    sg = ec2.create_security_group(GroupName="endpoint", Description="HTTPS from the VPC", VpcId=vpc)["GroupId"]
    https = [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.84.0.0/16"}]}]
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=https)
    ep = ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface", ServiceName="com.amazonaws.eu-west-1.ec2",
                                 SubnetIds=[subnet], SecurityGroupIds=[sg])["VpcEndpoint"]
    eni = ec2.describe_network_interfaces(NetworkInterfaceIds=ep["NetworkInterfaceIds"])["NetworkInterfaces"][0]
    eni_ip = eni["PrivateIpAddress"]
    regional = ep["DnsEntries"][0]["DnsName"]
    resolve = "getent ahostsv4 {} | head -1 | cut -d' ' -f1"
    # Private DNS: the service's own name is the endpoint's address, inside this VPC.
    assert ssh(key, ip, resolve.format("ec2.eu-west-1.amazonaws.com")).stdout.strip() == eni_ip
    assert ssh(key, ip, resolve.format(regional)).stdout.strip() == eni_ip
    call = ("curl -sS -m 5 --aws-sigv4 aws:amz:eu-west-1:ec2 --user test:test "
            "https://{}/ -d Action=DescribeVpcs -d Version=2016-11-15 -d VpcId.1=" + vpc)
    out = ssh(key, ip, call.format("ec2.eu-west-1.amazonaws.com"))
    assert out.returncode == 0, out.stderr
    assert f"<vpcId>{vpc}</vpcId>" in out.stdout
    # The certificate is the server's CA's, which the guest trusts; it names the endpoint's
    # own name too.
    out = ssh(key, ip, call.format(regional))
    assert f"<vpcId>{vpc}</vpcId>" in out.stdout, out.stderr
    issuer = ssh(key, ip, "echo | openssl s_client -connect ec2.eu-west-1.amazonaws.com:443 "
                          "-servername ec2.eu-west-1.amazonaws.com 2>/dev/null | openssl x509 -noout -issuer")
    assert "Kumo local CA" in issuer.stdout
    # The server's operator paths are not a guest's: reset through the endpoint is refused,
    # and nothing is reset.
    refused = ssh(key, ip, "curl -s -m 5 -X POST https://ec2.eu-west-1.amazonaws.com/_kumo/reset")
    assert "<Code>UnauthorizedOperation</Code>" in refused.stdout, refused.stdout
    assert ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]
    # The endpoint's group guards it: without the rule, the call does not connect.
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=https)
    out = ssh(key, ip, call.format("ec2.eu-west-1.amazonaws.com").replace("-m 5", "-m 2"))
    assert out.returncode != 0 and "<vpcId>" not in out.stdout
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=https)
    assert f"<vpcId>{vpc}</vpcId>" in ssh(key, ip, call.format("ec2.eu-west-1.amazonaws.com")).stdout
    # Private DNS off: the service's name is not the VPC's to answer; the endpoint's is.
    ec2.modify_vpc_endpoint(VpcEndpointId=ep["VpcEndpointId"], PrivateDnsEnabled=False)
    assert ssh(key, ip, resolve.format("ec2.eu-west-1.amazonaws.com")).stdout.strip() == ""
    assert f"<vpcId>{vpc}</vpcId>" in ssh(key, ip, call.format(regional)).stdout
    # Deleted, nothing answers there.
    ec2.delete_vpc_endpoints(VpcEndpointIds=[ep["VpcEndpointId"]])
    assert ssh(key, ip, resolve.format(regional)).stdout.strip() == ""
    out = ssh(key, ip, f"curl -sS -m 2 -k https://{eni_ip}/")
    assert out.returncode != 0


def test_ipv6_addresses_reach_the_guests_and_the_groups_filter_them(ns_kumo, ec2, key):
    """Issue 16's IPv6: instances in a subnet with an IPv6 block get their addresses at boot
    and live, ping each other over IPv6, see them in the metadata, and their groups filter
    IPv6 as they filter IPv4."""
    vpc = ec2.create_vpc(CidrBlock="10.85.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]["VpcId"]
    block = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"]
    import ipaddress
    first = str(next(ipaddress.ip_network(block).subnets(new_prefix=64)))
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.85.1.0/24", Ipv6CidrBlock=first,
                               AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet, AssignIpv6AddressOnCreation={"Value": True})
    default_sg = allow_ssh(ec2, vpc)
    a = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet)
    web = ec2.create_security_group(GroupName="web", Description="ssh over IPv4 only", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    b = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet, SecurityGroupIds=[default_sg, web], Ipv6AddressCount=2)
    a_ip, b_ip = a["PrivateIpAddress"], b["PrivateIpAddress"]
    a6 = a["NetworkInterfaces"][0]["Ipv6Addresses"][0]["Ipv6Address"]
    b6 = [x["Ipv6Address"] for x in b["NetworkInterfaces"][0]["Ipv6Addresses"]]
    has = lambda ip, addr: addr in ssh(key, ip, "ip -6 -o addr show dev eth0 scope global").stdout
    assert until(lambda: has(a_ip, a6) and all(has(b_ip, x) for x in b6), timeout=15)
    token = "T=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://169.254.169.254/latest/api/token); "
    md = lambda ip, path: ssh(key, ip, token + f"curl -s -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/{path}").stdout
    assert md(a_ip, "ipv6") == a6
    mac = md(b_ip, "mac")
    assert sorted(md(b_ip, f"network/interfaces/macs/{mac}/ipv6s").split()) == sorted(b6)
    assert md(b_ip, f"network/interfaces/macs/{mac}/subnet-ipv6-cidr-blocks") == first
    # Both in the default group, which admits its members: they ping over IPv6.
    ping = lambda ip, to: ssh(key, ip, f"sudo busybox ping -c 1 -W 3 {to} >/dev/null && echo ok").stdout.strip() == "ok"
    assert ping(a_ip, b6[1]) and ping(b_ip, a6)
    # A port the groups open over IPv4 only: not over IPv6 from outside the group.
    ec2.modify_instance_attribute(InstanceId=a["InstanceId"], Groups=[web])
    reach6 = lambda: ssh(key, a_ip, f"timeout 3 bash -c 'exec 3<>/dev/tcp/{b6[0]}/22; head -c 7 <&3' 2>/dev/null; true").stdout == "SSH-2.0"
    assert not reach6()
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": block}]}])
    # A new group's one egress rule is IPv4's (AWS adds ::/0 only to the default group): a
    # cannot send over IPv6 until its group lets it.
    assert not reach6()
    ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
    assert reach6()
    # A network ACL filters IPv6 at its subnet's IPv6 boundary too: c, in a second subnet
    # whose ACL admits IPv4 and only SSH over IPv6, answers no ping until ICMPv6 is let in.
    second = str(list(ipaddress.ip_network(block).subnets(new_prefix=64))[1])
    subnet2 = ec2.create_subnet(VpcId=vpc, CidrBlock="10.85.2.0/24", Ipv6CidrBlock=second,
                                AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    for egress in (True, False):
        ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=100, Protocol="-1", RuleAction="allow", Egress=egress, CidrBlock="0.0.0.0/0")
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=101, Protocol="-1", RuleAction="allow", Egress=True, Ipv6CidrBlock="::/0")
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=101, Protocol="6", RuleAction="allow", Egress=False,
                                 Ipv6CidrBlock="::/0", PortRange={"From": 22, "To": 22})
    assoc = [x for x in ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet2]}])[
        "NetworkAcls"][0]["Associations"] if x["SubnetId"] == subnet2][0]["NetworkAclAssociationId"]
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)
    c = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet2, Ipv6AddressCount=1)
    c_ip, c6 = c["PrivateIpAddress"], c["NetworkInterfaces"][0]["Ipv6Addresses"][0]["Ipv6Address"]
    assert until(lambda: has(c_ip, c6), timeout=15)
    assert ping(b_ip, c_ip) and not ping(b_ip, c6)
    ec2.create_network_acl_entry(NetworkAclId=acl, RuleNumber=102, Protocol="58", RuleAction="allow", Egress=False,
                                 Ipv6CidrBlock=block, IcmpTypeCode={"Type": -1, "Code": -1})
    assert ping(b_ip, c6)
    # A delegated /80 is routed to the interface: an address of it the guest adds by hand
    # answers (a's group admits SSH from the VPC's block).
    a_eni = a["NetworkInterfaces"][0]["NetworkInterfaceId"]
    prefix = ec2.assign_ipv6_addresses(NetworkInterfaceId=a_eni, Ipv6PrefixCount=1)["AssignedIpv6Prefixes"][0]
    in_prefix = str(ipaddress.ip_network(prefix).network_address + 1)
    assert ssh(key, a_ip, f"sudo ip -6 addr add {in_prefix}/128 dev eth0 nodad").returncode == 0
    assert until(lambda: ssh(key, b_ip, f"timeout 3 bash -c 'exec 3<>/dev/tcp/{in_prefix}/22; head -c 7 <&3' 2>/dev/null; true").stdout == "SSH-2.0", timeout=5)
    # Each /80 counts against the type's IPv6 limit (t3.micro: 2): a gives it back.
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=a_eni, Ipv6Prefixes=[prefix])
    # The resolver answers b's resource name with an AAAA record once b asks for one.
    name = f"{b['InstanceId']}.eu-west-1.compute.internal"
    aaaa = f"getent ahostsv6 {name} | head -1 | cut -d' ' -f1"
    assert ssh(key, a_ip, aaaa).stdout.strip() != b6[0]
    ec2.modify_private_dns_name_options(InstanceId=b["InstanceId"], EnableResourceNameDnsAAAARecord=True)
    assert ssh(key, a_ip, aaaa).stdout.strip() == b6[0]
    # The metadata's IPv6 endpoint answers only with HttpProtocolIpv6 enabled.
    v6md = ("T=$(curl -s -g -m 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://[fd00:ec2::254]/latest/api/token); "
            "curl -s -g -m 3 -H \"X-aws-ec2-metadata-token: $T\" http://[fd00:ec2::254]/latest/meta-data/instance-id")
    assert ssh(key, b_ip, v6md).stdout != b["InstanceId"]
    ec2.modify_instance_metadata_options(InstanceId=b["InstanceId"], HttpProtocolIpv6="enabled")
    assert ssh(key, b_ip, v6md).stdout == b["InstanceId"]
    seen = ec2.describe_instances(InstanceIds=[b["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert seen["MetadataOptions"]["HttpProtocolIpv6"] == "enabled"
    # Addresses assigned and unassigned while the guest runs reach it.
    added = ec2.assign_ipv6_addresses(NetworkInterfaceId=a["NetworkInterfaces"][0]["NetworkInterfaceId"], Ipv6AddressCount=1)["AssignedIpv6Addresses"][0]
    assert until(lambda: has(a_ip, added), timeout=10)
    ec2.unassign_ipv6_addresses(NetworkInterfaceId=a["NetworkInterfaces"][0]["NetworkInterfaceId"], Ipv6Addresses=[added])
    assert until(lambda: not has(a_ip, added), timeout=10)


LISTEN_VXLAN = """kill $(cat /tmp/vxlan.pid 2>/dev/null) 2>/dev/null; sleep 0.2
python3 - <<'PY' > /tmp/vxlan.log 2>&1 &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 4789))
s.settimeout(1.0)
end = time.time() + 12
while time.time() < end:
    try:
        d, a = s.recvfrom(65535)
    except socket.timeout:
        continue
    # VXLAN: flags, 24-bit VNI; then the Ethernet frame and the IPv4 packet.
    vni = int.from_bytes(d[4:7], "big")
    ip = d[8 + 14:]
    print(a[0], vni, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), ip[9], d[-12:].decode("latin-1"), flush=True)
PY
echo $! > /tmp/vxlan.pid; sleep 0.5; echo listening"""


def test_traffic_mirroring_copies_packets_to_the_target_in_vxlan(ns_kumo, ec2, key):
    vpc = ec2.create_vpc(CidrBlock="10.84.0.0/16")["Vpc"]["VpcId"]
    sg = allow_ssh(ec2, vpc)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.84.1.0/24", AvailabilityZone="eu-west-1a")["Subnet"]["SubnetId"]
    src = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet)
    tgt = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet)
    peer = launch(ec2, ns_kumo, KeyName="ns-key", SubnetId=subnet)
    src_ip, tgt_ip, peer_ip = src["PrivateIpAddress"], tgt["PrivateIpAddress"], peer["PrivateIpAddress"]
    src_eni = src["NetworkInterfaces"][0]["NetworkInterfaceId"]
    tgt_eni = tgt["NetworkInterfaces"][0]["NetworkInterfaceId"]
    target = ec2.create_traffic_mirror_target(NetworkInterfaceId=tgt_eni)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    flt = ec2.create_traffic_mirror_filter(Description="udp 7777")["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    # Egress UDP to port 7777 is mirrored; a reject of one peer's 7777 comes first.
    ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=flt, TrafficDirection="egress", RuleNumber=100, RuleAction="accept",
                                          Protocol=17, DestinationPortRange={"FromPort": 7777, "ToPort": 7777},
                                          SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0")
    ec2.create_traffic_mirror_filter_rule(TrafficMirrorFilterId=flt, TrafficDirection="egress", RuleNumber=50, RuleAction="reject",
                                          Protocol=17, SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="192.0.2.0/24")
    ec2.create_traffic_mirror_session(NetworkInterfaceId=src_eni, TrafficMirrorTargetId=target, TrafficMirrorFilterId=flt,
                                      SessionNumber=1, VirtualNetworkId=4242)
    assert ssh(key, tgt_ip, LISTEN_VXLAN).stdout.strip() == "listening"
    send = "python3 -c \"import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(m.encode(), (h, p)) for h, p, m in {}]\""
    msgs = [(peer_ip, 8888, "not-mirrored"), (peer_ip, 7777, "mirror-this!"), ("192.0.2.9", 7777, "rejected-one")]
    assert ssh(key, src_ip, send.format(msgs)).returncode == 0
    time.sleep(1.5)
    got = ssh(key, tgt_ip, "cat /tmp/vxlan.log").stdout.strip().splitlines()
    # One copy: the accepted packet, VXLAN id 4242, from the source's address, the inner
    # packet the source's own (UDP from the source to the peer).
    assert got == [f"{src_ip} 4242 {src_ip} {peer_ip} 17 mirror-this!"], got

    # The target's groups decide: without UDP 4789 from the source the copies are dropped.
    # (The default group admits its own members; move the target to a group that does not.)
    closed = ec2.create_security_group(GroupName="closed", Description="ssh only", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.modify_instance_attribute(InstanceId=tgt["InstanceId"], Groups=[closed])
    assert ssh(key, tgt_ip, LISTEN_VXLAN).stdout.strip() == "listening"
    assert ssh(key, src_ip, send.format([(peer_ip, 7777, "mirror-this!")])).returncode == 0
    time.sleep(1.5)
    assert ssh(key, tgt_ip, "cat /tmp/vxlan.log").stdout.strip() == ""
    ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{"IpProtocol": "udp", "FromPort": 4789, "ToPort": 4789, "IpRanges": [{"CidrIp": f"{src_ip}/32"}]}])
    time.sleep(2)
    assert ssh(key, tgt_ip, LISTEN_VXLAN).stdout.strip() == "listening"
    assert ssh(key, src_ip, send.format([(peer_ip, 7777, "mirror-again")])).returncode == 0
    time.sleep(1.5)
    assert ssh(key, tgt_ip, "cat /tmp/vxlan.log").stdout.strip().splitlines() == [f"{src_ip} 4242 {src_ip} {peer_ip} 17 mirror-again"]
    # A second source under the same VXLAN id (AWS allows it): both are mirrored.
    peer_eni = peer["NetworkInterfaces"][0]["NetworkInterfaceId"]
    ec2.create_traffic_mirror_session(NetworkInterfaceId=peer_eni, TrafficMirrorTargetId=target, TrafficMirrorFilterId=flt,
                                      SessionNumber=1, VirtualNetworkId=4242)
    ec2.authorize_security_group_ingress(GroupId=closed, IpPermissions=[{"IpProtocol": "udp", "FromPort": 4789, "ToPort": 4789, "IpRanges": [{"CidrIp": f"{peer_ip}/32"}]}])
    assert ssh(key, tgt_ip, LISTEN_VXLAN).stdout.strip() == "listening"
    assert ssh(key, src_ip, send.format([(peer_ip, 7777, "from-source1")])).returncode == 0
    assert ssh(key, peer_ip, send.format([(src_ip, 7777, "from-source2")])).returncode == 0
    time.sleep(1.5)
    got = sorted(ssh(key, tgt_ip, "cat /tmp/vxlan.log").stdout.strip().splitlines())
    assert got == sorted([f"{src_ip} 4242 {src_ip} {peer_ip} 17 from-source1", f"{peer_ip} 4242 {peer_ip} {src_ip} 17 from-source2"]), got
    del sg


def test_public_and_elastic_ips_reach_the_instance(ns_kumo, ec2, key):
    # Default subnets give a public address at launch.
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    public = state_of(ec2, inst["InstanceId"])["PublicIpAddress"]
    p = ssh(key, public, "curl -s http://169.254.169.254/latest/meta-data/public-ipv4; echo; hostname -I")
    assert p.stdout.split()[0] == public, p.stdout + p.stderr
    # The guest only has its private address; the public one is translated on the way in.
    assert p.stdout.split()[1] == inst["PrivateIpAddress"]
    eip = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=eip["AllocationId"], InstanceId=inst["InstanceId"])
    assert ssh(key, eip["PublicIp"], "echo via-eip").stdout.strip() == "via-eip"
    # The metadata service tells the guest its new public address.
    p = ssh(key, eip["PublicIp"], "curl -s http://169.254.169.254/latest/meta-data/public-ipv4")
    assert p.stdout.strip() == eip["PublicIp"]
    ec2.disassociate_address(AssociationId=ec2.describe_addresses(AllocationIds=[eip["AllocationId"]])["Addresses"][0]["AssociationId"])
    assert ssh(key, eip["PublicIp"], "true", timeout=0).returncode == 255


def test_cloud_config_user_data(ns_kumo, ec2, key, tmp_path):
    # A second key for a user that cloud-config creates.
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "dev")], check=True)
    dev_pub = (tmp_path / "dev.pub").read_text().strip()
    doc = f"""#cloud-config
write_files:
  - path: /etc/app/app.conf
    content: |
      port=8080
      greeting='hello'
    permissions: '0640'
  - path: /home/dev/notes.txt
    content: owned by dev
    owner: dev:dev
    defer: true
users:
  - default
  - name: dev
    groups: [adm]
    sudo: ALL=(ALL) NOPASSWD:ALL
    ssh_authorized_keys:
      - {dev_pub}
runcmd:
  - echo "runcmd saw $(cat /etc/app/app.conf | head -1)" > /var/lib/runcmd.out
  - [touch, /var/lib/argv form]
packages: [nginx]
"""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", UserData=doc)
    ip = inst["PrivateIpAddress"]
    # (write_files writes content as given: this one has no final newline.)
    p = ssh(str(tmp_path / "dev"), ip, "id -un; id -Gn; sudo -n id -u; cat /home/dev/notes.txt; echo; stat -c '%U %a' /home/dev/notes.txt /etc/app/app.conf; sudo cat /etc/app/app.conf; cat /var/lib/runcmd.out; ls '/var/lib/argv form'", user="dev")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "dev" and "adm" in lines[1].split() and lines[2] == "0"
    assert lines[3] == "owned by dev"
    assert lines[4:6] == ["dev 644", "root 640"]
    assert lines[6:8] == ["port=8080", "greeting='hello'"]
    assert lines[8] == "runcmd saw port=8080"
    # The launch key still works for the default user, and unsupported keys are logged.
    assert ssh(key, ip, "id -un").stdout.strip() == "ec2-user"
    out = ec2.get_console_output(InstanceId=inst["InstanceId"])["Output"]
    assert "cloud-config: packages is not supported" in out


def cores_used(iid, seconds=3.0):
    """The CPU an instance's processes used, in cores, over a few seconds (its cgroup)."""
    path = glob.glob(f"/sys/fs/cgroup/cpuacct/kumo-*/{iid}/cpuacct.usage")[0]
    a, t = int(open(path).read()), time.time()
    time.sleep(seconds)
    return (int(open(path).read()) - a) / 1e9 / (time.time() - t)


def test_a_standard_t3_out_of_credits_runs_at_its_baseline(ns_kumo, ec2, key):
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.micro", CreditSpecification={"CpuCredits": "standard"})
    iid = inst["InstanceId"]
    # A t3 starts with no credits; a busy loop spends them faster than the baseline earns.
    assert ssh(key, inst["PrivateIpAddress"], "nohup sh -c 'while :; do :; done' >/dev/null 2>&1 &").returncode == 0
    time.sleep(3)
    held = cores_used(iid)
    # t3.micro: 2 vCPUs at a 10 % baseline each, 0.2 of a core; CPUUtilization (of its two
    # vCPUs) about 10 %.
    assert 0.1 < held < 0.3, held
    ledger = json.loads(subprocess.run([KUMO_BIN, "admin", "--endpoint-url", ns_kumo.endpoint, "--region", "eu-west-1", "credits", iid], capture_output=True, text=True, check=True).stdout)
    assert ledger["throttled_to_baseline"] is True and ledger["balance"] < 0.5
    assert 10 < ledger["cpu_usage_percent"] < 30
    # Unlimited mode lifts the cap: the loop gets a whole core.
    ec2.modify_instance_credit_specification(InstanceCreditSpecifications=[{"InstanceId": iid, "CpuCredits": "unlimited"}])
    time.sleep(2)
    assert cores_used(iid) > 0.6


def attachment_state(ec2, vol):
    a = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]
    return a[0]["State"] if a else None


def schedule(ns_kumo, iid, code, seconds):
    p = subprocess.run([KUMO_BIN, "admin", "--endpoint-url", ns_kumo.endpoint, "--region", "eu-west-1",
                        "schedule-event", iid, "--code", code, "--in", str(seconds)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_scheduled_events_stop_and_reboot_the_guest(ns_kumo, ec2, key):
    """Issue 14: at an event's time the guest itself is stopped or rebooted, not only its
    record; DescribeInstanceStatus then lists the event as completed."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    # The guest's init (PID 1 of its namespace) is a new process after a reboot.
    started = "cut -d' ' -f22 /proc/1/stat"
    boot = ssh(key, ip, started).stdout.strip()
    assert boot
    schedule(ns_kumo, iid, "system-reboot", 2)
    deadline = time.time() + 30
    again = boot
    while time.time() < deadline and again in (boot, ""):
        time.sleep(1)
        again = ssh(key, ip, started, timeout=5).stdout.strip()
    assert again not in (boot, ""), "the guest was not rebooted"
    st = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert [(e["Code"], e["Description"].startswith("[Completed]")) for e in st["Events"]] == [("system-reboot", True)]
    assert st["InstanceState"]["Name"] == "running"
    # A stop event stops the guest at its time: no more SSH, the record stopped.
    schedule(ns_kumo, iid, "instance-stop", 2)
    wait_state(ec2, iid, "stopped", timeout=30)
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["StateReason"]["Code"] == "Server.ScheduledStop"
    deadline = time.time() + 20
    while time.time() < deadline and ssh(key, ip, "true", timeout=0).returncode != 255:
        time.sleep(1)
    assert ssh(key, ip, "true", timeout=0).returncode == 255, "the guest still answers after its scheduled stop"
    # Started again, it runs on a healthy host: the stop event is gone.
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    events = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]["Events"]
    assert [e["Code"] for e in events] == ["system-reboot"]


def test_an_instance_from_a_launch_template_boots_its_user_data_and_key(ns_kumo, ec2, key):
    """Issue 15: launching from a launch template is real: the template's image, key, user
    data and volume boot in the guest, with the call's type over the template's."""
    import base64
    script = b"#!/bin/sh\necho from-the-template > /var/lib/lt-ran\n"
    lid = ec2.create_launch_template(LaunchTemplateName="ns-lt", LaunchTemplateData={
        "ImageId": ami(ns_kumo), "InstanceType": "t3.micro", "KeyName": "ns-key",
        "UserData": base64.b64encode(script).decode(),
        "BlockDeviceMappings": [{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "VolumeType": "gp3"}}]})["LaunchTemplate"]["LaunchTemplateId"]
    inst = ec2.run_instances(MinCount=1, MaxCount=1, InstanceType="t3.small", LaunchTemplate={"LaunchTemplateId": lid})["Instances"][0]
    ec2.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    p = ssh(key, inst["PrivateIpAddress"], "cat /var/lib/lt-ran; curl -s http://169.254.169.254/latest/meta-data/instance-type; echo; "
                                          "sudo blockdev --getsize64 /dev/sdf")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["from-the-template", "t3.small", str(2 << 30)]


def test_a_multi_attach_volume_is_one_disk_in_several_guests(ns_kumo, ec2, key):
    """Issue 14: Multi-Attach io2 in two running guests at once is one volume: a write by one
    (O_DIRECT, past its page cache) is read by the other, and each detaches on its own."""
    a = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.micro")
    b = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.micro", SubnetId=a["SubnetId"])
    zone = a["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=4, VolumeType="io2", Iops=1000, MultiAttachEnabled=True)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=a["InstanceId"], Device="/dev/sdf")
    ec2.attach_volume(VolumeId=vol, InstanceId=b["InstanceId"], Device="/dev/sdh")
    got = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]
    assert sorted((x["InstanceId"], x["Device"], x["State"]) for x in got) == sorted(
        [(a["InstanceId"], "/dev/sdf", "attached"), (b["InstanceId"], "/dev/sdh", "attached")])
    write = "printf shared-%s {} | sudo dd of={} bs=4096 conv=sync oflag=direct status=none"
    read = "sudo dd if={} bs=4096 count=1 iflag=direct status=none | tr -d '\\000'"
    assert ssh(key, a["PrivateIpAddress"], write.format("by-a", "/dev/sdf")).returncode == 0
    assert ssh(key, b["PrivateIpAddress"], read.format("/dev/sdh")).stdout == "shared-by-a"
    assert ssh(key, b["PrivateIpAddress"], write.format("by-b", "/dev/sdh")).returncode == 0
    assert ssh(key, a["PrivateIpAddress"], read.format("/dev/sdf")).stdout == "shared-by-b"
    # One detaches; the other keeps the volume and its data.
    ec2.detach_volume(VolumeId=vol, InstanceId=a["InstanceId"])
    assert ssh(key, a["PrivateIpAddress"], "test -e /dev/sdf").returncode != 0
    assert ssh(key, b["PrivateIpAddress"], read.format("/dev/sdh")).stdout == "shared-by-b"
    ec2.detach_volume(VolumeId=vol, InstanceId=b["InstanceId"])
    assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "available"
    # Attached again, it comes back with what was written.
    ec2.attach_volume(VolumeId=vol, InstanceId=a["InstanceId"], Device="/dev/sdf")
    assert ssh(key, a["PrivateIpAddress"], read.format("/dev/sdf")).stdout == "shared-by-b"


def test_volumes_attach_live_grow_snapshot_and_detach(ns_kumo, ec2, key):
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    zone = inst["Placement"]["AvailabilityZone"]
    data = ec2.create_volume(AvailabilityZone=zone, Size=1, VolumeType="gp3")["VolumeId"]
    raw = ec2.create_volume(AvailabilityZone=zone, Size=1, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=data, InstanceId=iid, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=raw, InstanceId=iid, Device="/dev/sdg")
    # A Nitro type sees NVMe devices, linked from the names they were attached as.
    p = ssh(key, ip, "readlink /dev/sdf /dev/sdg; sudo blockdev --getsize64 /dev/nvme1n1")
    assert p.stdout.split() == ["nvme1n1", "nvme2n1", str(1 << 30)], p.stdout + p.stderr
    # A file system on it, mounted.
    p = ssh(key, ip, "sudo mkfs.xfs -q /dev/sdf && sudo mkdir -p /data && sudo mount /dev/sdf /data && echo kept | sudo tee /data/f >/dev/null && df -B1M --output=size /data | tail -1")
    assert p.returncode == 0, p.stderr
    before = int(p.stdout.split()[-1])
    # Detaching a mounted volume leaves it busy, still in the guest.
    ec2.detach_volume(VolumeId=data)
    assert attachment_state(ec2, data) == "busy"
    assert ssh(key, ip, "cat /data/f").stdout.strip() == "kept"
    # The seed's growth procedure: modify the volume, then grow the file system online.
    ec2.modify_volume(VolumeId=data, Size=2)
    p = ssh(key, ip, "sudo blockdev --getsize64 /dev/nvme1n1; sudo xfs_growfs -d /data >/dev/null && df -B1M --output=size /data | tail -1")
    assert len(p.stdout.split()) == 2, p.stdout + p.stderr
    size, after = p.stdout.split()
    assert int(size) == 2 << 30 and int(after) > before + 900, p.stdout + p.stderr
    # Snapshot a live volume: the snapshot holds what was written before, not after.
    assert ssh(key, ip, "head -c 1048576 /dev/zero | tr '\\000' 'Z' | sudo dd of=/dev/sdg bs=1M oflag=direct status=none").returncode == 0
    snap = ec2.create_snapshot(VolumeId=raw)["SnapshotId"]
    assert ssh(key, ip, "head -c 1048576 /dev/zero | tr '\\000' 'Y' | sudo dd of=/dev/sdg bs=1M oflag=direct status=none; sudo head -c 4 /dev/sdg").stdout == "YYYY"
    restored = ec2.create_volume(AvailabilityZone=zone, SnapshotId=snap)["VolumeId"]
    path = os.path.join(ns_kumo.data_dir, "volumes", f"{restored}.qcow2")
    check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 0 1M", path], capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout, check.stdout
    # Unmounted, the detach completes and the device leaves the guest.
    assert ssh(key, ip, "sudo umount /data").returncode == 0
    ec2.detach_volume(VolumeId=data)
    assert attachment_state(ec2, data) is None
    assert ssh(key, ip, "test -e /dev/nvme1n1 || echo gone").stdout.strip() == "gone"
    # A forced detach does not wait for the guest.
    assert ssh(key, ip, "sudo mkfs.xfs -q -f /dev/sdg && sudo mount /dev/sdg /mnt").returncode == 0
    ec2.detach_volume(VolumeId=raw, Force=True)
    assert attachment_state(ec2, raw) is None
    # Attached again later, it comes back with its data, at the lowest free NVMe name.
    ec2.attach_volume(VolumeId=data, InstanceId=iid, Device="/dev/sdh")
    p = ssh(key, ip, "readlink /dev/sdh; sudo mount /dev/sdh /data && cat /data/f")
    assert p.stdout.split() == ["nvme1n1", "kept"], p.stdout + p.stderr


def measured_iops(key, ip, device, ops=400, skip=0, write=False):
    """Reads (or writes) `ops` 4 KiB blocks of a device in the guest from block `skip` with
    O_DIRECT (past its page cache), one at a time, and gives the operations per second dd
    measured. Each read measurement reads blocks no earlier one read: the host may cache
    what was read."""
    io = f"if=/dev/zero of={device} seek={skip} oflag=direct" if write else f"if={device} of=/dev/null skip={skip} iflag=direct"
    p = ssh(key, ip, f"sudo dd {io} bs=4k count={ops} 2>&1 | tail -1")
    m = re.search(r"copied, ([0-9.]+) s", p.stdout)
    assert m, p.stdout + p.stderr
    return ops / float(m.group(1))


def test_volumes_deliver_their_iops_and_modify_volume_changes_them_live(ns_kumo, ec2, key):
    """An io1 volume provisioned at 100 IOPS delivers 100 (± 15 %) to the guest, reading and
    writing, and a ModifyVolume to 400 IOPS changes it while the guest runs."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    zone = inst["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=8, VolumeType="io1", Iops=100)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    slow = measured_iops(key, ip, "/dev/sdf")
    assert 85 <= slow <= 115, slow
    written = measured_iops(key, ip, "/dev/sdf", ops=300, skip=5_000, write=True)
    assert 85 <= written <= 115, written
    ec2.modify_volume(VolumeId=vol, Iops=400)
    fast = measured_iops(key, ip, "/dev/sdf", ops=1600, skip=10_000)
    assert 340 <= fast <= 460, fast


def test_run_command_without_ssh(ns_kumo, ec2):
    # No key pair and no port 22: only the agent can reach this instance.
    inst = launch(ec2, ns_kumo)
    iid = inst["InstanceId"]
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    sent = ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript", Parameters={"commands": ["id -u", "hostname", "echo oops >&2", "exit 3"]})["Command"]
    assert sent["Status"] == "Pending" and sent["InstanceIds"] == [iid]
    deadline = time.time() + 30
    while True:
        inv = ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId=iid)
        if inv["Status"] in ("Success", "Failed") or time.time() > deadline:
            break
        time.sleep(0.3)
    assert inv["Status"] == "Failed" and inv["ResponseCode"] == 3
    assert inv["StandardOutputContent"].split() == ["0", state_of(ec2, iid)["PrivateDnsName"]]
    assert inv["StandardErrorContent"].strip() == "oops"
    # The CLI form prints the output and exits with the command's status.
    p = subprocess.run([KUMO_BIN, "ssm", "--endpoint-url", ns_kumo.endpoint, "--region", "eu-west-1", "send-command", iid, "--", "cat", "/etc/os-release"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "Debian" in p.stdout, p.stderr
    # Its arguments reach the command as given, spaces, quotes and `;` included.
    p = subprocess.run([KUMO_BIN, "ssm", "--endpoint-url", ns_kumo.endpoint, "--region", "eu-west-1", "send-command", iid, "--", "sh", "-c", 'echo "a  b"; exit 3'], capture_output=True, text=True, timeout=60)
    assert (p.returncode, p.stdout) == (3, "a  b\n"), p.stderr
    # The instance's agent is online, with the instance's address and name.
    info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"]
    assert [(i["InstanceId"], i["PingStatus"], i["IPAddress"], i["PlatformType"]) for i in info] == [(iid, "Online", inst["PrivateIpAddress"], "Linux")]
    assert info[0]["ComputerName"] == state_of(ec2, iid)["PrivateDnsName"]
    assert iid in [i["InstanceId"] for i in ssm.describe_instance_information()["InstanceInformationList"]]
    with pytest.raises(ClientError) as e:
        ssm.describe_instance_information(Filters=[{"Key": "tag:Name", "Values": ["x"]}])
    assert error_code(e) == "InvalidFilterKey"
    # AWS's errors.
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=["i-0123456789abcdef0"], DocumentName="AWS-RunShellScript", Parameters={"commands": ["true"]})
    assert error_code(e) == "InvalidInstanceId"
    with pytest.raises(ClientError) as e:
        ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId="i-0123456789abcdef0")
    assert error_code(e) == "InvocationDoesNotExist"
    with pytest.raises(ClientError) as e:
        ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunPowerShellScript", Parameters={"commands": ["true"]})
    assert error_code(e) == "InvalidDocument"
    # The history: ListCommands, newest first, with each command's status over its instances;
    # ListCommandInvocations with the plugin's output when asked for details.
    listed = ssm.list_commands(InstanceId=iid)["Commands"]
    assert [c["CommandId"] for c in listed][-1] == sent["CommandId"] and len(listed) == 3, listed
    first = listed[-1]
    assert (first["Status"], first["CompletedCount"], first["ErrorCount"]) == ("Failed", 1, 1)
    assert [c["Status"] for c in ssm.list_commands(CommandId=sent["CommandId"])["Commands"]] == ["Failed"]
    page = ssm.list_commands(MaxResults=2)
    assert len(page["Commands"]) == 2 and page["NextToken"]
    rest = ssm.list_commands(MaxResults=2, NextToken=page["NextToken"])
    assert [c["CommandId"] for c in rest["Commands"]] == [sent["CommandId"]] and "NextToken" not in rest
    (one,) = ssm.list_command_invocations(CommandId=sent["CommandId"], Details=True)["CommandInvocations"]
    plugin = one["CommandPlugins"][0]
    assert (one["InstanceId"], one["Status"], plugin["ResponseCode"]) == (iid, "Failed", 3)
    assert "oops" in plugin["Output"]
    with pytest.raises(ClientError) as e:
        ssm.list_commands(CommandId="00000000-0000-4000-8000-000000000000")
    assert error_code(e) == "InvalidCommandId"
    with pytest.raises(ClientError) as e:
        ssm.list_commands(NextToken="not-a-token")
    assert error_code(e) == "InvalidNextToken"
    # The history and the output outlive a restart of the server.
    ns_kumo.stop()
    ns_kumo.start()
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    inv = ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId=iid)
    assert (inv["Status"], inv["ResponseCode"], inv["StandardErrorContent"].strip()) == ("Failed", 3, "oops")
    assert len(ssm.list_commands()["Commands"]) == 3
    # The instance boots again with the server; the test ends once its agent is back online.
    deadline = time.time() + 30
    while not ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"]:
        assert time.time() < deadline, "the agent did not come back after the restart"
        time.sleep(0.3)


def test_an_image_of_an_instance_carries_its_root_file_system(ns_kumo, ec2, key):
    inst = launch(ec2, ns_kumo, KeyName="ns-key")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    assert ssh(key, ip, "echo golden | sudo tee /etc/golden >/dev/null && sudo mkdir -p /opt/app && echo v1 | sudo tee /opt/app/version >/dev/null").returncode == 0
    # Another account cannot image it, nor halt its guest by trying: the one halt the console
    # shows below is the owner's image.
    stranger = make_client(ns_kumo.endpoint, key="333333333333")
    with pytest.raises(ClientError) as e:
        stranger.create_image(InstanceId=iid, Name="not-mine")
    assert error_code(e) == "InvalidInstanceID.NotFound"
    assert ssh(key, ip, "true").returncode == 0
    ami = ec2.create_image(InstanceId=iid, Name="golden-from-ns")["ImageId"]
    # A second image of the same name is refused before the guest is touched.
    with pytest.raises(ClientError) as e:
        ec2.create_image(InstanceId=iid, Name="golden-from-ns")
    assert error_code(e) == "InvalidAMIName.Duplicate"
    # CreateImage rebooted the guest: it is back, with its data.
    assert ssh(key, ip, "cat /etc/golden").stdout.strip() == "golden"
    console = ec2.get_console_output(InstanceId=iid)["Output"]
    assert console.count("[kumo-init] halted") == 1 and console.count("ready: sshd started") == 2
    # A changed file after the image is not in it.
    ssh(key, ip, "echo v2 | sudo tee /opt/app/version >/dev/null")
    child = launch(ec2, ns_kumo, KeyName="ns-key", ImageId=ami)
    p = ssh(key, child["PrivateIpAddress"], "cat /etc/golden /opt/app/version; curl -s http://169.254.169.254/latest/meta-data/ami-id")
    assert p.stdout.split() == ["golden", "v1", ami], p.stdout + p.stderr


def test_the_seed_walkthrough(ns_kumo, ec2, key):
    """The seed's procedures end to end: a type change seen inside, a volume moved between
    instances, a snapshot restored onto a new instance with the same checksum, and port 22
    opened and closed by a security-group rule."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="t3.micro")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    assert ssh(key, ip, "nproc").stdout.strip() == "2"
    # Stop, change the type, start: the new vCPU count is what the guest sees.
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.micro"})
    ec2.start_instances(InstanceIds=[iid])
    assert ssh(key, ip, "nproc").stdout.strip() == "1"
    # A volume: file system, data, detach, attach to another instance, read.
    other = launch(ec2, ns_kumo, KeyName="ns-key")
    zone = inst["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=1, VolumeType="gp3")["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    # t2 is a Xen type: the guest sees /dev/xvdf.
    p = ssh(key, ip, "sudo mkfs.xfs -q /dev/xvdf && sudo mount /dev/xvdf /mnt && sudo dd if=/dev/urandom of=/mnt/blob bs=1M count=8 status=none && sudo sha256sum /mnt/blob && sudo umount /mnt")
    assert p.returncode == 0, p.stderr
    digest = p.stdout.split()[0]
    ec2.detach_volume(VolumeId=vol)
    ec2.attach_volume(VolumeId=vol, InstanceId=other["InstanceId"], Device="/dev/sdf")
    p = ssh(key, other["PrivateIpAddress"], "sudo mount /dev/sdf /mnt && sudo sha256sum /mnt/blob")
    assert p.stdout.split()[0] == digest, p.stdout + p.stderr
    # Snapshot (the volume is mounted; `sync` first, as the EC2 docs advise for a consistent
    # snapshot), restore onto a new instance, compare checksums.
    assert ssh(key, other["PrivateIpAddress"], "sync").returncode == 0
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    third = launch(ec2, ns_kumo, KeyName="ns-key")
    restored = ec2.create_volume(AvailabilityZone=zone, SnapshotId=snap)["VolumeId"]
    ec2.attach_volume(VolumeId=restored, InstanceId=third["InstanceId"], Device="/dev/sdg")
    # (nouuid: under ns every guest shares the host's kernel, which already has this XFS
    # mounted for the other instance.)
    p = ssh(key, third["PrivateIpAddress"], "sudo mount -o ro,norecovery,nouuid /dev/sdg /mnt && sudo sha256sum /mnt/blob")
    assert p.stdout.split()[0] == digest, p.stdout + p.stderr
    # Port 22 closes when its rule is revoked, and opens again.
    sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [inst["VpcId"]]}])["SecurityGroups"][0]["GroupId"]
    ssh22 = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=ssh22)
    assert ssh(key, ip, "true", timeout=0).returncode == 255
    ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=ssh22)
    assert ssh(key, ip, "echo open").stdout.strip() == "open"


def test_instances_terminated_while_booting_do_not_run_on(ns_kumo, ec2, key):
    # RunInstances answers before the guests boot; terminating them at once must leave no
    # guest behind, whichever of the boot and the termination comes first.
    out = ec2.run_instances(ImageId=ami(ns_kumo), InstanceType="t3.micro", MinCount=4, MaxCount=4, KeyName="ns-key")["Instances"]
    ids = [i["InstanceId"] for i in out]
    assert all(i["State"]["Name"] == "pending" for i in out)
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    time.sleep(2)
    left = [i for i in ids if glob.glob(f"/sys/fs/cgroup/pids/kumo-*/{i}/cgroup.procs") and open(glob.glob(f"/sys/fs/cgroup/pids/kumo-*/{i}/cgroup.procs")[0]).read().strip()]
    assert left == []
    for i in out:
        assert ssh(key, i["PrivateIpAddress"], "true", timeout=0).returncode == 255


def keyscan(ip, kind="ed25519"):
    """The host key a guest's sshd offers, as `ssh-keygen -lf` fingerprints it."""
    deadline = time.time() + 30
    while time.time() < deadline:
        p = subprocess.run(["ssh-keyscan", "-T", "2", "-t", kind, ip], capture_output=True, text=True)
        if p.stdout.strip():
            fp = subprocess.run(["ssh-keygen", "-lf", "-"], input=p.stdout, capture_output=True, text=True)
            return fp.stdout.split()[1]
        time.sleep(0.3)
    raise AssertionError(f"no {kind} host key from {ip}")


def test_host_keys_are_each_instances_own_and_on_the_console(ns_kumo, ec2, key):
    """Host keys come from a pool the server fills ahead of boots: every instance still has keys
    of its own, and its console shows the fingerprints of the keys its sshd offers."""
    a, b = launch(ec2, ns_kumo, KeyName="ns-key"), launch(ec2, ns_kumo, KeyName="ns-key")
    fa, fb = keyscan(a["PrivateIpAddress"]), keyscan(b["PrivateIpAddress"])
    assert fa != fb
    out = ec2.get_console_output(InstanceId=a["InstanceId"])["Output"]
    block = out.split("-----BEGIN SSH HOST KEY FINGERPRINTS-----")[1].split("-----END SSH HOST KEY FINGERPRINTS-----")[0]
    assert fa in block and "(ED25519)" in block and "(RSA)" in block, block
    # A stop and start keeps them, as a root volume keeps /etc/ssh.
    ec2.stop_instances(InstanceIds=[a["InstanceId"]])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[a["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ec2.start_instances(InstanceIds=[a["InstanceId"]])
    ec2.get_waiter("instance_running").wait(InstanceIds=[a["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert keyscan(a["PrivateIpAddress"]) == fa


def test_with_the_metadata_endpoint_disabled_the_launch_key_never_arrives(ns_kumo, ec2, key):
    """As on EC2: the guest learns its key from the metadata, so with the endpoint disabled it
    has none, and a login with the launch key is refused."""
    inst = launch(ec2, ns_kumo, KeyName="ns-key", MetadataOptions={"HttpEndpoint": "disabled"})
    keyscan(inst["PrivateIpAddress"])  # sshd runs
    p = ssh(key, inst["PrivateIpAddress"], "true", timeout=5)
    assert p.returncode == 255 and "Permission denied" in p.stderr, p.stderr
    out = ec2.get_console_output(InstanceId=inst["InstanceId"])["Output"]
    assert "installed the launch key" not in out


def test_cpu_options_reach_the_guest(ns_kumo, ec2, key):
    # m5.large has 1 core and 2 threads per core by default; CpuOptions can turn the second
    # thread off, and the guest then sees one vCPU.
    one = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="m5.large", CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1})
    two = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="m5.large")
    assert ssh(key, one["PrivateIpAddress"], "nproc").stdout.strip() == "1"
    assert ssh(key, two["PrivateIpAddress"], "nproc").stdout.strip() == "2"


def kumo_ssh(ns_kumo, iid, key, *command, account=None):
    args = [KUMO_BIN, "ssh", "--endpoint-url", ns_kumo.endpoint, "--region", "eu-west-1", iid, "-i", key]
    if account:
        args += ["--account", account]
    return subprocess.run([*args, "--", *command], capture_output=True, text=True, timeout=60)


def test_kumo_ssh_reaches_each_of_two_overlapping_default_vpcs(ns_kumo, ec2, key, tmp_path):
    """Every account's default VPC is 172.31.0.0/16. With two of them on the host, a bare
    private address is ambiguous: the host routes it into neither (never the wrong instance),
    and `kumo ssh` reaches each instance by its id through its own VPC's link, checking the
    host key the guest printed on its console."""
    other = make_client(ns_kumo.endpoint, key="111111111111")
    allow_ssh(other)
    pem = tmp_path / "other.pem"
    pem.write_text(other.create_key_pair(KeyName="other", KeyType="ed25519")["KeyMaterial"])
    pem.chmod(0o600)

    def private_launch(c, key_name):
        subnet = c.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}, {"Name": "availability-zone", "Values": ["eu-west-1a"]}])["Subnets"][0]
        base = subnet["CidrBlock"].split("/")[0].rsplit(".", 1)[0]
        inst = launch(c, ns_kumo, KeyName=key_name, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet["SubnetId"], "AssociatePublicIpAddress": False, "PrivateIpAddress": base + ".10"}])
        assert "PublicIpAddress" not in state_of(c, inst["InstanceId"])
        return inst

    mine = private_launch(ec2, "ns-key")
    theirs = private_launch(other, "other")
    assert mine["PrivateIpAddress"] == theirs["PrivateIpAddress"]
    ask = "curl -s http://169.254.169.254/latest/meta-data/instance-id"
    deadline = time.time() + 30
    while True:
        p = kumo_ssh(ns_kumo, mine["InstanceId"], key, "sh", "-c", ask)
        if p.returncode == 0 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert p.stdout.strip() == mine["InstanceId"], p.stderr
    p = kumo_ssh(ns_kumo, theirs["InstanceId"], str(pem), "sh", "-c", ask, account="111111111111")
    assert p.stdout.strip() == theirs["InstanceId"], p.stderr
    # The login user is the image's, and a command's arguments arrive as given.
    p = kumo_ssh(ns_kumo, mine["InstanceId"], key, "printf", "%s|", "a  b", "c")
    assert (p.returncode, p.stdout) == (0, "a  b|c|"), p.stderr
    # A bare private address is unreachable from the host, not another account's instance.
    p = subprocess.run(["ssh", "-i", key, *SSH_OPTS, f"ec2-user@{mine['PrivateIpAddress']}", "true"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 255 and "No route to host" in p.stderr, p.stderr
    # Another account's instance is not found in this one.
    p = kumo_ssh(ns_kumo, theirs["InstanceId"], key, "true")
    assert p.returncode == 255 and "InvalidInstanceID.NotFound" in p.stderr, p.stderr
    # The console carries the keys the check used, as cloud-init prints them on EC2.
    console = ec2.get_console_output(InstanceId=mine["InstanceId"])["Output"]
    assert "-----BEGIN SSH HOST KEY KEYS-----\necdsa-sha2-nistp256 " in console
    # A stopped instance is said to be so.
    ec2.stop_instances(InstanceIds=[mine["InstanceId"]])
    wait_state(ec2, mine["InstanceId"], "stopped")
    p = kumo_ssh(ns_kumo, mine["InstanceId"], key, "true")
    assert p.returncode == 255 and "IncorrectInstanceState" in p.stderr, p.stderr


JS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")


def wait_agent(ssm, iid, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])["InstanceInformationList"]:
            return
        time.sleep(0.3)
    raise AssertionError(f"{iid}'s agent never came online")


def js_session(session, *lines, rows=30, cols=100):
    p = subprocess.run(["node", os.path.join(JS, "session.js"), session["StreamUrl"], session["TokenValue"], str(rows), str(cols), *lines], capture_output=True, text=True, timeout=60, cwd=JS)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def run_in(ssm, iid, command):
    """A shell command's output through Run Command."""
    sent = ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript", Parameters={"commands": [command]})["Command"]
    deadline = time.time() + 20
    while time.time() < deadline:
        inv = ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId=iid)
        if inv["Status"] in ("Success", "Failed"):
            return inv["StandardOutputContent"]
        time.sleep(0.3)
    raise AssertionError("the command did not finish")


def test_session_manager_gives_a_shell_on_a_pty(ns_kumo, ec2):
    """StartSession, then the data channel as SSM's clients speak it (the ssm-session
    library over a WebSocket): a shell as ssm-user on a PTY of the client's size, in
    /usr/bin, with sudo; `exit` ends the session, which DescribeSessions then lists as
    history."""
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    iid = launch(ec2, ns_kumo)["InstanceId"]
    wait_agent(ssm, iid)
    s = ssm.start_session(Target=iid, Reason="checking the PTY")
    assert re.fullmatch(r"root-[0-9a-f]{17}", s["SessionId"]), s["SessionId"]
    assert s["StreamUrl"].startswith(ns_kumo.endpoint.replace("http://", "ws://") + "/v1/data-channel/" + s["SessionId"] + "?")
    active = ssm.describe_sessions(State="Active")["Sessions"]
    assert [(x["SessionId"], x["Target"], x["Status"], x["Reason"]) for x in active] == [(s["SessionId"], iid, "Connecting", "checking the PTY")]
    # A daemon the session leaves behind (its own session, no terminal) does not hold the
    # session open.
    out = js_session(s, "id -un; pwd; stty size; tty; sudo -n id -u; echo $((6 * 7))-done", "setsid sleep 300 </dev/null >/dev/null 2>&1 &", "exit")
    text = out["output"]
    assert "ssm-user\r\n/usr/bin\r\n30 100\r\n/dev/pts/" in text, text
    assert "\r\n0\r\n42-done" in text, text
    assert out["closed"] and out["closedPayload"]["SessionId"] == s["SessionId"], out
    assert ssm.describe_sessions(State="Active")["Sessions"] == []
    history = ssm.describe_sessions(State="History", Filters=[{"key": "Target", "value": iid}])["Sessions"]
    assert [(x["SessionId"], x["Status"], x["Owner"], x["DocumentName"]) for x in history] == [(s["SessionId"], "Terminated", "arn:aws:iam::000000000000:root", "SSM-SessionManagerRunShell")]
    assert history[0]["EndDate"] >= history[0]["StartDate"]
    # A used token cannot open the channel again; the session has ended.
    again = js_session(s, "id")
    assert "ssm-user" not in again["output"] and again["closed"], again


def test_session_manager_refusals_and_terminate(ns_kumo, ec2):
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    iid = launch(ec2, ns_kumo)["InstanceId"]
    wait_agent(ssm, iid)
    with pytest.raises(ClientError) as e:
        ssm.start_session(Target="i-0123456789abcdef0")
    assert error_code(e) == "TargetNotConnected"
    assert e.value.response["Error"]["Message"] == "i-0123456789abcdef0 is not connected."
    with pytest.raises(ClientError) as e:
        ssm.start_session(Target=iid, DocumentName="AWS-StartPortForwardingSession")
    assert error_code(e) == "InvalidDocument"
    with pytest.raises(ClientError) as e:
        make_client(ns_kumo.endpoint, service="ssm", validate=False).describe_sessions()
    assert error_code(e) == "ValidationException"
    # TerminateSession closes a live channel: the shell's long sleep does not keep it open.
    s = ssm.start_session(Target=iid)
    proc = subprocess.Popen(["node", os.path.join(JS, "session.js"), s["StreamUrl"], s["TokenValue"], "24", "80", "sleep 300"], stdout=subprocess.PIPE, text=True, cwd=JS)
    until(lambda: ssm.describe_sessions(State="Active")["Sessions"][0]["Status"] == "Connected", timeout=10)
    time.sleep(1)
    # One channel per session: a second client with the same token is turned away.
    second = js_session(s, "id")
    assert second["closed"] and "ssm-user" not in second["output"] and "not active" in second["closedPayload"]["Output"], second
    # Another account cannot end it.
    other = make_client(ns_kumo.endpoint, service="ssm", key="111111111111")
    assert other.terminate_session(SessionId=s["SessionId"])["SessionId"] == s["SessionId"]
    assert ssm.describe_sessions(State="Active")["Sessions"][0]["Status"] == "Connected"
    assert ssm.terminate_session(SessionId=s["SessionId"])["SessionId"] == s["SessionId"]
    out = json.loads(proc.communicate(timeout=20)[0])
    assert out["closed"] and out["closedPayload"]["SessionId"] == s["SessionId"], out
    # What the session ran ends with it, as at a dropped SSH connection.
    assert until(lambda: "sleep 300" not in run_in(ssm, iid, "ps -eo args"), timeout=10), run_in(ssm, iid, "ps -eo args")
    assert ssm.describe_sessions(State="History")["Sessions"][0]["Status"] == "Terminated"
    with pytest.raises(ClientError) as e:
        ssm.resume_session(SessionId=s["SessionId"])
    assert error_code(e) == "DoesNotExistException"
    # Idempotent, as SSM's is.
    assert ssm.terminate_session(SessionId=s["SessionId"])["SessionId"] == s["SessionId"]
    # The AWS CLI starts a session, finds no session-manager-plugin on this machine, and
    # terminates the session again, as it does against AWS.
    p = Cli(ns_kumo.endpoint).raw("ssm", "start-session", "--target", iid)
    assert p.returncode != 0 and "SessionManagerPlugin is not found" in p.stderr, p.stderr
    latest = ssm.describe_sessions(State="History")["Sessions"][0]
    assert (latest["Target"], latest["Status"]) == (iid, "Terminated") and latest["SessionId"] != s["SessionId"]
    with pytest.raises(ClientError) as e:
        ssm.describe_sessions(State="History", MaxResults=201)
    assert error_code(e) == "ValidationException"
    page = ssm.describe_sessions(State="History", MaxResults=1)
    assert len(page["Sessions"]) == 1 and page["NextToken"]
    assert ssm.describe_sessions(State="History", MaxResults=1, NextToken=page["NextToken"])["Sessions"][0]["SessionId"] == s["SessionId"]
    # A stopped instance's agent is not connected.
    ec2.stop_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "stopped")
    with pytest.raises(ClientError) as e:
        ssm.start_session(Target=iid)
    assert error_code(e) == "TargetNotConnected"


def test_kumo_ssm_start_session_is_an_interactive_terminal(ns_kumo, ec2, tmp_path):
    """`kumo ssm start-session` in a real terminal (tmux): the keys go to a shell on a PTY of
    the terminal's size (which follows the terminal's when it is resized), Ctrl-C reaches the
    guest's foreground command, and `exit` ends the session, as with AWS's plugin. The
    terminal is left as it was, also when the client is killed with SIGTERM."""
    ssm = make_client(ns_kumo.endpoint, service="ssm")
    iid = launch(ec2, ns_kumo)["InstanceId"]
    wait_agent(ssm, iid)
    name = f"kumo-ssm-{os.getpid()}"
    # After the client, the pane's terminal says whether it echoes again (`echo`, not `-echo`).
    cmd = (f"{KUMO_BIN} ssm start-session --endpoint-url {ns_kumo.endpoint} --region eu-west-1 {iid}; echo kumo-exit=$?; "
           "stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?echo' | sed 's/^/tty-/'; sleep 30")
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd], check=True)

    def screen():
        return subprocess.run(["tmux", "capture-pane", "-p", "-t", name, "-S", "-100"], capture_output=True, text=True).stdout

    def keys(*k):
        subprocess.run(["tmux", "send-keys", "-t", name, *k], check=True)

    try:
        assert until(lambda: screen().rstrip().endswith("$"), timeout=15), screen()
        assert "Starting session with SessionId: root-" in screen()
        keys("id -un; stty size; echo $((6 * 7))-done", "Enter")
        assert until(lambda: "42-done\n" in screen(), timeout=10), screen()
        assert "ssm-user\n40 120\n42-done" in screen(), screen()
        # The terminal resized: the guest's PTY follows (the client sends the size at
        # SIGWINCH, the guest's agent sets it).
        subprocess.run(["tmux", "resize-window", "-t", name, "-x", "100", "-y", "30"], check=True)
        time.sleep(1.5)
        keys("clear; stty size", "Enter")
        assert until(lambda: "30 100" in screen().splitlines(), timeout=10), screen()
        # Ctrl-C goes to the guest's foreground command, not to the client.
        keys("sleep 100; echo after-sleep", "Enter")
        time.sleep(1)
        keys("C-c")
        assert until(lambda: screen().rstrip().endswith("^C\n$"), timeout=10), repr(screen())
        keys("echo still-here", "Enter")
        assert until(lambda: "\nstill-here\n$" in screen(), timeout=10), repr(screen())
        assert "after-sleep\n" not in screen().split("echo after-sleep")[-1], screen()
        keys("exit", "Enter")
        assert until(lambda: "kumo-exit=0" in screen(), timeout=10), screen()
        assert "Exiting session with sessionId: root-" in screen()
        assert until(lambda: "tty-echo\n" in screen(), timeout=5), screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    assert ssm.describe_sessions(State="History")["Sessions"][0]["Status"] == "Terminated"
    # Killed with SIGTERM mid-session, the client gives the terminal back as it found it
    # (not raw, echoing) and the session ends.
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd], check=True)
    try:
        assert until(lambda: screen().rstrip().endswith("$"), timeout=15), screen()
        pane = subprocess.run(["tmux", "display-message", "-p", "-t", name, "#{pane_pid}"], capture_output=True, text=True).stdout.strip()
        subprocess.run(["pkill", "-TERM", "-P", pane, "-f", "ssm start-session"], check=True)
        assert until(lambda: "kumo-exit=" in screen(), timeout=10), screen()
        assert until(lambda: "tty-echo\n" in screen(), timeout=5), screen()
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    assert until(lambda: ssm.describe_sessions(State="Active")["Sessions"] == [], timeout=10)


def test_lsblk_lists_only_the_guests_own_disks(ns_kumo, ec2, key):
    """Issue 14, item 6: an ns guest's lsblk listed the host's disks and other instances'
    volumes. It now lists the guest's own disks only (under their kernel names, loopN: an ns
    guest shares the host's kernel, which names them), with their sizes and mount points; an
    attached volume joins the list and a detached one leaves it."""
    other = launch(ec2, ns_kumo, KeyName="ns-key")
    theirs = ec2.create_volume(AvailabilityZone=other["Placement"]["AvailabilityZone"], Size=1)["VolumeId"]
    ec2.attach_volume(VolumeId=theirs, InstanceId=other["InstanceId"], Device="/dev/sdf")
    inst = launch(ec2, ns_kumo, KeyName="ns-key", InstanceType="c5d.large")
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    disks = lambda: ssh(key, ip, "lsblk -dno NAME").stdout.split()
    at_boot = disks()
    # The instance store, and nothing of the host's or the other instance's.
    assert len(at_boot) == 1 and at_boot[0].startswith("loop"), at_boot
    store = ssh(key, ip, "stat -Lc %t:%T /dev/nvme1n1").stdout.strip()
    assert ssh(key, ip, f"stat -Lc %t:%T /dev/{at_boot[0]}").stdout.strip() == store
    vol = ec2.create_volume(AvailabilityZone=inst["Placement"]["AvailabilityZone"], Size=1)["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    assert until(lambda: len(disks()) == 2, timeout=10), disks()
    p = ssh(key, ip, "sudo mkfs.xfs -q /dev/nvme2n1 && sudo mount /dev/nvme2n1 /mnt && lsblk -no NAME,SIZE,MOUNTPOINT")
    added = [l.split() for l in p.stdout.splitlines() if l.split() and l.split()[0] not in at_boot]
    assert len(added) == 1 and added[0][1:] == ["1G", "/mnt"], p.stdout + p.stderr
    assert ssh(key, ip, "sudo umount /mnt").returncode == 0
    ec2.detach_volume(VolumeId=vol)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert until(lambda: disks() == at_boot, timeout=10), disks()
