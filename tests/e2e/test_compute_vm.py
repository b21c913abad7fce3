"""Real instances under the `vm` driver: QEMU virtual machines booting the base image's own
kernel and initramfs from a virtio root disk (KVM where a probe boot shows it works, TCG on
these machines). They take their address from the subnet's DHCP server, serve the metadata,
install the launch key, run user data, answer SSH, grow their root partition online with
growpart and resize2fs, hot-plug volumes under their EC2 names, and stop on the ACPI power
button. The main suite runs on `ns`; these few tests cover what only a VM has."""

import shutil
import subprocess
import time

import pytest

from conftest import KUMO_BIN, make_client, serving
from test_compute_ns import SSH_OPTS, allow_ssh

# A boot under TCG takes tens of seconds; SSH answers once sshd runs.
BOOT_TIMEOUT = 300


def test_qemu_is_installed():
    # scripts/test installs it; a missing QEMU fails here rather than skipping the vm tests.
    assert shutil.which("qemu-system-x86_64"), "qemu-system-x86 is missing: run scripts/test, which installs it"


@pytest.fixture(scope="module")
def vm_kumo():
    yield from serving("--driver", "vm")


@pytest.fixture(scope="module")
def ec2(vm_kumo):
    c = make_client(vm_kumo.endpoint)
    allow_ssh(c)
    return c


@pytest.fixture(scope="module")
def key(ec2, tmp_path_factory):
    pem = ec2.create_key_pair(KeyName="vm-key", KeyType="ed25519")["KeyMaterial"]
    path = tmp_path_factory.mktemp("vm") / "vm-key.pem"
    path.write_text(pem)
    path.chmod(0o600)
    return str(path)


def ssh(key, ip, command, timeout=BOOT_TIMEOUT):
    deadline = time.time() + timeout
    while True:
        p = subprocess.run(["ssh", "-i", key, *SSH_OPTS, f"ec2-user@{ip}", command], capture_output=True, text=True, timeout=120)
        if p.returncode != 255 or time.time() > deadline:
            return p
        time.sleep(1)


def wait_for(check, timeout=60, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def instance(ec2, key, vm_kumo):
    ssm = make_client(vm_kumo.endpoint, service="ssm")
    image = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    user_data = "#!/bin/sh\necho vm-user-data-ran > /var/tmp/marker\n"
    t0 = time.time()
    inst = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="vm-key", UserData=user_data)["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    p = ssh(key, ip, "true")
    assert p.returncode == 0, p.stderr
    print(f"vm: RunInstances to SSH-ready in {time.time() - t0:.1f} s")
    return iid, ip


def test_vm_boots_its_own_kernel_with_dhcp_imds_key_and_user_data(ec2, key, instance, vm_kumo):
    iid, ip = instance
    p = ssh(key, ip, "cat /var/tmp/marker; uname -r; nproc; ip -4 -o addr show dev eth0; cat /proc/cmdline; "
                     "grep -v '^options' /etc/resolv.conf")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    # The VPC's DHCP options (the region's default set): its resolver, its domain to search.
    vpc_cidr = ec2.describe_vpcs(VpcIds=[ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["VpcId"]])["Vpcs"][0]["CidrBlock"]
    resolver = vpc_cidr.split("/")[0].rsplit(".", 1)[0] + ".2"
    assert lines[5:] == [f"nameserver {resolver}", "search eu-west-1.compute.internal"], lines
    assert lines[0] == "vm-user-data-ran"
    # The image's own kernel (Debian's cloud kernel), not the host's.
    assert lines[1].endswith("-cloud-amd64")
    assert lines[1] != subprocess.run(["uname", "-r"], capture_output=True, text=True).stdout.strip()
    assert lines[2] == "2"  # t3.micro: 2 vCPUs (-smp)
    assert f"inet {ip}/" in lines[3]
    assert "kumo.vm" in lines[4]
    # The address came from the subnet's DHCP server.
    console = ec2.get_console_output(InstanceId=iid, Latest=True).get("Output", "")
    assert f"DHCP: {ip}/" in console
    # IMDSv2 from inside, across the tap into the VPC's namespace.
    p = ssh(key, ip, "T=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 60'); "
                     "curl -sf -H \"X-aws-ec2-metadata-token: $T\" http://169.254.169.254/latest/meta-data/instance-id")
    assert p.stdout.strip() == iid
    # DescribeInstances says the guest runs under software emulation when there is no KVM.
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    kvm = "kvm" in open(f"/proc/{qemu_pid(iid)}/cmdline").read().split("\0")
    if not kvm:
        assert d["StateReason"]["Code"] == "Kumo.SoftwareEmulation"
    # Run Command reaches the VM's agent without SSH.
    ssm = make_client(vm_kumo.endpoint, service="ssm")
    sent = ssm.send_command(InstanceIds=[iid], DocumentName="AWS-RunShellScript", Parameters={"commands": ["uname -r"]})["Command"]
    inv = wait_for(lambda: (lambda i: i if i["Status"] in ("Success", "Failed") else None)(
        ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId=iid)), what="the command")
    assert inv["Status"] == "Success" and inv["StandardOutputContent"].strip() == lines[1]


def test_vm_takes_new_dhcp_options_at_its_next_lease(ec2, key, instance):
    """A VPC's new DHCP options set reaches a running VM at its next lease, as on AWS: here a
    renewal forced with udhcpc's SIGUSR1. Several domain names arrive as option 119."""
    iid, ip = instance
    vpc = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["VpcId"]
    old = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["DhcpOptionsId"]
    corp = ec2.create_dhcp_options(DhcpConfigurations=[
        {"Key": "domain-name", "Values": ["corp.example other.example"]},
        {"Key": "domain-name-servers", "Values": ["AmazonProvidedDNS", "10.0.0.53"]}])["DhcpOptions"]["DhcpOptionsId"]
    ec2.associate_dhcp_options(DhcpOptionsId=corp, VpcId=vpc)
    try:
        resolver = ssh(key, ip, "grep ^nameserver /etc/resolv.conf").stdout.split()[1]
        # Nothing changes before the lease does.
        assert "corp.example" not in ssh(key, ip, "cat /etc/resolv.conf").stdout
        assert ssh(key, ip, "sudo pkill -USR1 -f 'busybox udhcpc'").returncode == 0
        got = wait_for(lambda: (lambda t: t if "corp.example" in t else None)(
            ssh(key, ip, "grep -v '^options' /etc/resolv.conf").stdout), what="the renewed lease")
        assert got.splitlines() == [f"nameserver {resolver}", "nameserver 10.0.0.53",
                                    "search corp.example other.example"], got
    finally:
        ec2.associate_dhcp_options(DhcpOptionsId=old, VpcId=vpc)


def qemu_pid(iid):
    """The QEMU process running an instance (named after it with -name)."""
    out = subprocess.run(["pgrep", "-f", f"qemu-system-x86_64 -name {iid}"], capture_output=True, text=True).stdout.split()
    assert out, f"no QEMU runs {iid}"
    return int(out[0])


def test_vm_root_volume_grows_online_with_growpart_and_resize2fs(ec2, key, instance):
    iid, ip = instance
    root = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    p = ssh(key, ip, "readlink -f /dev/nvme0n1; readlink -f /dev/nvme0n1p1; lsblk -bdno SIZE /dev/nvme0n1; df -B1 --output=size / | tail -1")
    assert p.returncode == 0, p.stderr
    disk, part, size, fs = p.stdout.split()
    assert (disk, part) == ("/dev/vda", "/dev/vda1")
    assert int(size) == 8 << 30
    assert int(fs) < 8 << 30
    ec2.modify_volume(VolumeId=root, Size=10)
    # The guest sees the new size at once (virtio's capacity change), as on EC2.
    wait_for(lambda: ssh(key, ip, "lsblk -bdno SIZE /dev/nvme0n1").stdout.strip() == str(10 << 30), what="the disk to grow in the guest")
    p = ssh(key, ip, "sudo growpart /dev/nvme0n1 1 && sudo resize2fs /dev/nvme0n1p1 && df -B1 --output=size / | tail -1")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "CHANGED" in p.stdout
    assert int(p.stdout.split()[-1]) > int(9.5 * (1 << 30))


def test_vm_volume_hotplug_busy_detach_and_clean_stop_start(ec2, key, instance):
    iid, ip = instance
    zone = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(Size=1, AvailabilityZone=zone, VolumeType="gp3")["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    # Hot-plugged: the guest names it as EC2 does (nvme1n1 on Nitro types, linked from sdf),
    # with the volume id as its serial.
    wait_for(lambda: ssh(key, ip, "test -b /dev/nvme1n1 && test -L /dev/sdf").returncode == 0, what="the volume in the guest")
    p = ssh(key, ip, "lsblk -dno SERIAL $(readlink -f /dev/nvme1n1); sudo mkfs.ext4 -q /dev/nvme1n1 && sudo mkdir -p /data && sudo mount /dev/sdf /data && echo hello | sudo tee /data/f >/dev/null && sync && cat /data/f")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [vol.replace("-", ""), "hello"]
    # A snapshot of the mounted volume: QEMU moves the disk onto a new overlay and the guest
    # writes on; a volume restored from the snapshot holds the bytes of that moment.
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    assert ssh(key, ip, "echo later | sudo tee /data/f >/dev/null && sync && cat /data/f").stdout.strip() == "later"
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    copy = ec2.create_volume(SnapshotId=snap, AvailabilityZone=zone)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[copy], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.attach_volume(VolumeId=copy, InstanceId=iid, Device="/dev/sdg")
    wait_for(lambda: ssh(key, ip, "test -b /dev/nvme2n1 && test -L /dev/sdg").returncode == 0, what="the restored volume in the guest")
    p = ssh(key, ip, "sudo mkdir -p /old && sudo mount -o ro /dev/sdg /old && cat /old/f && sudo umount /old")
    assert p.stdout.strip() == "hello", p.stdout + p.stderr
    ec2.detach_volume(VolumeId=copy)
    ec2.get_waiter("volume_available").wait(VolumeIds=[copy], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    # Mounted: the detach stays busy, as on EC2, until the file system is unmounted and the
    # volume detached again.
    ec2.detach_volume(VolumeId=vol)
    att = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]
    assert att and att[0]["State"] == "busy"
    assert ssh(key, ip, "sudo umount /data").returncode == 0
    ec2.detach_volume(VolumeId=vol)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    wait_for(lambda: ssh(key, ip, "test -e /dev/nvme1n1 || echo gone").stdout.strip() == "gone", what="the device to leave the guest")
    size_before = ssh(key, ip, "lsblk -bdno SIZE /dev/nvme0n1").stdout.strip()
    # A clean stop presses the ACPI power button; the guest's init shuts down.
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2, "MaxAttempts": 90})
    console = ec2.get_console_output(InstanceId=iid).get("Output", "")
    assert "stopping: sending SIGTERM" in console
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # The root disk kept its data and its size across the stop.
    p = ssh(key, ip, "cat /var/tmp/marker; lsblk -bdno SIZE /dev/nvme0n1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["vm-user-data-ran", size_before]


def test_vm_instance_store_is_blank_after_a_stop(ec2, key, vm_kumo):
    """A c5d.large's instance store is a virtio disk with EC2's serial (`AWS…`) and name
    (`/dev/nvme1n1`); what is written there is gone after the guest powers itself off and
    the instance starts again."""
    ssm = make_client(vm_kumo.endpoint, service="ssm")
    image = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    inst = ec2.run_instances(ImageId=image, InstanceType="c5d.large", MinCount=1, MaxCount=1, KeyName="vm-key")["Instances"][0]
    iid, ip = inst["InstanceId"], inst["PrivateIpAddress"]
    read = "sudo head -c 19 /dev/nvme1n1 | tr -d '\\000'; echo; lsblk -bdno SIZE,SERIAL $(readlink -f /dev/nvme1n1)"
    p = ssh(key, ip, "echo instance-store-data | sudo dd of=/dev/nvme1n1 conv=fsync status=none && " + read)
    assert p.returncode == 0, p.stderr
    data, size, serial = p.stdout.split()
    assert (data, int(size)) == ("instance-store-data", 50 * 10**9) and serial.startswith("AWS")
    # `sudo poweroff` in the guest: the VM powers off, QEMU exits, and the instance stops
    # (its shutdown behaviour is stop), losing its instance store.
    ssh(key, ip, "sudo poweroff", timeout=0)
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 2, "MaxAttempts": 90})
    st = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert st["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    p = ssh(key, ip, read)
    assert p.stdout.split() == [size, serial], p.stdout + p.stderr
    ec2.terminate_instances(InstanceIds=[iid])


def test_vm_image_of_a_running_instance_carries_its_disk(ec2, key, instance):
    """CreateImage without a reboot: the guest is paused (its disks flushed) while its root
    disk is copied, then runs on; an instance launched from the image has its files."""
    iid, ip = instance
    assert ssh(key, ip, "echo from-the-image | sudo tee /etc/kumo-image-marker >/dev/null && sync").returncode == 0
    image = ec2.create_image(InstanceId=iid, Name="vm-image", NoReboot=True)["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    # The source runs on (it was resumed after the copy).
    assert ssh(key, ip, "cat /etc/kumo-image-marker", timeout=30).stdout.strip() == "from-the-image"
    new = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="vm-key")["Instances"][0]
    ec2.get_waiter("instance_running").wait(InstanceIds=[new["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    p = ssh(key, new["PrivateIpAddress"], "cat /etc/kumo-image-marker; hostname")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[0] == "from-the-image"
    ec2.terminate_instances(InstanceIds=[new["InstanceId"]])


def test_vm_interface_hot_plug_and_unplug(ec2, key, instance, vm_kumo):
    """AttachNetworkInterface on a running VM plugs a virtio-net device (QMP device_add on a
    PCIe root port): the guest's kernel names it eth1, its agent gives it the interface's
    address from the metadata with a routing table of its own, and it answers SSH; a detach
    unplugs it."""
    iid, ip = instance
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    eni = ec2.create_network_interface(SubnetId=d["SubnetId"], Groups=[g["GroupId"] for g in d["SecurityGroups"]])["NetworkInterface"]
    eni_id, addr, mac = eni["NetworkInterfaceId"], eni["PrivateIpAddress"], eni["MacAddress"]
    att = ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    p = ssh(key, addr, "cat /sys/class/net/eth1/address; ip -4 -o addr show dev eth1; ip rule")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == mac, p.stdout
    assert f"inet {addr}/" in p.stdout
    assert f"from {addr} lookup 10001" in p.stdout
    p = ssh(key, ip, "curl -s http://169.254.169.254/latest/meta-data/network/interfaces/macs/; echo; "
                     f"curl -s http://169.254.169.254/latest/meta-data/network/interfaces/macs/{mac}/device-number")
    assert mac + "/" in p.stdout and p.stdout.strip().endswith("1"), p.stdout
    ec2.detach_network_interface(AttachmentId=att)
    wait_for(lambda: ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]["Status"] == "available", what="the detach")
    links = lambda: (lambda p: p.stdout.split() if p.returncode == 0 else None)(ssh(key, ip, "ls /sys/class/net", timeout=10))
    wait_for(lambda: links() == ["eth0", "lo"], timeout=90, what="eth1 to leave the guest")
    assert ssh(key, addr, "true", timeout=3).returncode == 255
    ec2.delete_network_interface(NetworkInterfaceId=eni_id)
    # Attached again at once, it is plugged anew, and the guest stays up throughout.
    eni2 = ec2.create_network_interface(SubnetId=d["SubnetId"], Groups=[g["GroupId"] for g in d["SecurityGroups"]])["NetworkInterface"]
    att = ec2.attach_network_interface(NetworkInterfaceId=eni2["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    ec2.detach_network_interface(AttachmentId=att)
    att = ec2.attach_network_interface(NetworkInterfaceId=eni2["NetworkInterfaceId"], InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    p = ssh(key, eni2["PrivateIpAddress"], "ip -o link | grep -c ether")
    assert p.returncode == 0 and p.stdout.strip() in ("2", "3"), p.stdout + p.stderr
    ec2.detach_network_interface(AttachmentId=att)
    wait_for(lambda: links() == ["eth0", "lo"], timeout=90, what="the interfaces to leave the guest")


def test_vm_multi_attach_volume_is_one_disk_in_two_vms(ec2, key, instance, vm_kumo):
    """Issue 14: a Multi-Attach io2 volume in two running VMs is one volume: both QEMUs open
    the volume's one export (never its file), so a write by one (O_DIRECT, past the guest's
    page cache) is read by the other; a ModifyVolume grows it in both; each detaches on its
    own and the other keeps it."""
    iid, ip = instance
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    ssm = make_client(vm_kumo.endpoint, service="ssm")
    image = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    other = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="vm-key",
                              SubnetId=d["SubnetId"])["Instances"][0]
    oid, oip = other["InstanceId"], other["PrivateIpAddress"]
    assert ssh(key, oip, "true").returncode == 0
    zone = d["Placement"]["AvailabilityZone"]
    vol = ec2.create_volume(AvailabilityZone=zone, Size=4, VolumeType="io2", Iops=1000, MultiAttachEnabled=True)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=vol, InstanceId=oid, Device="/dev/sdh")
    got = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["Attachments"]
    assert sorted((x["InstanceId"], x["State"]) for x in got) == sorted([(iid, "attached"), (oid, "attached")])
    for host, dev in ((ip, "/dev/sdf"), (oip, "/dev/sdh")):
        wait_for(lambda: ssh(key, host, f"test -b {dev}", timeout=10).returncode == 0, what=f"{dev} in {host}")
    write = "printf shared-%s {} | sudo dd of={} bs=4096 conv=sync oflag=direct status=none"
    read = "sudo dd if={} bs=4096 count=1 iflag=direct status=none | tr -d '\\000'"
    assert ssh(key, ip, write.format("by-a", "/dev/sdf")).returncode == 0
    assert ssh(key, oip, read.format("/dev/sdh")).stdout == "shared-by-a"
    assert ssh(key, oip, write.format("by-b", "/dev/sdh")).returncode == 0
    assert ssh(key, ip, read.format("/dev/sdf")).stdout == "shared-by-b"
    # Grown, the volume is the new size in both guests.
    ec2.modify_volume(VolumeId=vol, Size=5)
    for host, dev in ((ip, "/dev/sdf"), (oip, "/dev/sdh")):
        wait_for(lambda: ssh(key, host, f"sudo blockdev --getsize64 {dev}", timeout=10).stdout.strip() == str(5 << 30),
                 timeout=30, what=f"{dev} to grow in {host}")
    # One detaches; the other keeps the volume and its data.
    ec2.detach_volume(VolumeId=vol, InstanceId=iid)
    wait_for(lambda: ssh(key, ip, "test -e /dev/sdf || echo gone", timeout=10).stdout.strip() == "gone", timeout=90,
             what="the volume to leave the first guest")
    assert ssh(key, oip, read.format("/dev/sdh")).stdout == "shared-by-b"
    ec2.detach_volume(VolumeId=vol, InstanceId=oid)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    ec2.terminate_instances(InstanceIds=[oid])


def test_vm_scheduled_reboot_reboots_the_guest(ec2, key, instance, vm_kumo):
    """A system-reboot event at its time reboots the VM itself: the guest's kernel boots
    again (its boot id changes), and the event is listed as completed."""
    iid, ip = instance
    boot_id = ssh(key, ip, "cat /proc/sys/kernel/random/boot_id").stdout.strip()
    assert boot_id
    p = subprocess.run([KUMO_BIN, "admin", "--endpoint-url", vm_kumo.endpoint, "--region", "eu-west-1",
                        "schedule-event", iid, "--code", "system-reboot", "--in", "2"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: ssh(key, ip, "cat /proc/sys/kernel/random/boot_id", timeout=5).stdout.strip() not in ("", boot_id),
             timeout=BOOT_TIMEOUT, what="the guest to boot again")
    st = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert [(e["Code"], e["Description"].startswith("[Completed]")) for e in st["Events"]] == [("system-reboot", True)]
