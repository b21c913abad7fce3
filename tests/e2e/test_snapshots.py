"""Snapshots with real bytes: incremental layers, restores that read exactly the snapshot's
bytes, and deletion of a snapshot in the middle of a chain."""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def path(kumo, layer):
    return os.path.join(kumo.data_dir, "volumes", f"{layer}.qcow2")


def write(kumo, vol, pattern, offset_mib, length="1M"):
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -P {pattern} {offset_mib}M {length}", path(kumo, vol)], check=True, capture_output=True)


def reads(kumo, vol, pattern, offset_mib):
    p = subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"read -P {pattern} {offset_mib}M 1M", path(kumo, vol)], capture_output=True, text=True)
    return p.returncode == 0 and "Pattern verification failed" not in p.stdout


def same(kumo, a, b):
    return subprocess.run(["qemu-img", "compare", "-q", "-f", "qcow2", "-F", "qcow2", path(kumo, a), path(kumo, b)]).returncode == 0


def test_snapshot_restore_and_middle_deletion(kumo, ec2):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1, VolumeType="gp3")["VolumeId"]
    write(kumo, vol, 0x11, 0, "10M")
    s1 = ec2.create_snapshot(VolumeId=vol, Description="first")
    assert s1["State"] == "pending" and s1["VolumeSize"] == 1
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[s1["SnapshotId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    write(kumo, vol, 0x22, 20)
    s2 = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    write(kumo, vol, 0x33, 40)
    # Incremental: the second snapshot's layer holds about the one MiB written since the first.
    assert os.path.getsize(path(kumo, s2)) < 3 << 20
    assert os.path.getsize(path(kumo, s1["SnapshotId"])) > 10 << 20
    r1 = ec2.create_volume(AvailabilityZone="eu-west-1b", SnapshotId=s1["SnapshotId"])
    assert (r1["Size"], r1["SnapshotId"]) == (1, s1["SnapshotId"])
    r2 = ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=s2, Size=3)["VolumeId"]
    assert reads(kumo, r1["VolumeId"], 0x11, 0) and reads(kumo, r1["VolumeId"], 0, 20)
    assert reads(kumo, r2, 0x11, 0) and reads(kumo, r2, 0x22, 20) and reads(kumo, r2, 0, 40)
    assert same(kumo, r1["VolumeId"], s1["SnapshotId"])
    with pytest.raises(ClientError) as e:
        ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=s2, Size=0)
    assert error_code(e) == "InvalidParameterValue"
    # Delete the middle snapshot: the later volume, the restore and the live volume keep every byte.
    ec2.delete_snapshot(SnapshotId=s2)
    assert not os.path.exists(path(kumo, s2))
    assert reads(kumo, r2, 0x11, 0) and reads(kumo, r2, 0x22, 20)
    assert reads(kumo, vol, 0x11, 0) and reads(kumo, vol, 0x22, 20) and reads(kumo, vol, 0x33, 40)
    # A later snapshot still restores after the older one goes.
    s3 = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.delete_snapshot(SnapshotId=s1["SnapshotId"])
    r3 = ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=s3)["VolumeId"]
    assert reads(kumo, r3, 0x11, 0) and reads(kumo, r3, 0x22, 20) and reads(kumo, r3, 0x33, 40)
    # Deleting the source volume leaves its snapshots restorable.
    ec2.delete_volume(VolumeId=vol)
    r4 = ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=s3)["VolumeId"]
    assert same(kumo, r3, r4)


def test_describe_and_errors(ec2):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=2, Encrypted=True)["VolumeId"]
    snap = ec2.create_snapshot(VolumeId=vol, Description="nightly",
                               TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])["SnapshotId"]
    got = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "volume-id", "Values": [vol]}])["Snapshots"]
    assert [(s["SnapshotId"], s["Description"], s["Encrypted"], s["State"], s["Progress"]) for s in got] == [(snap, "nightly", True, "completed", "100%")]
    assert ec2.describe_snapshots(Filters=[{"Name": "tag:k", "Values": ["v"]}])["Snapshots"][0]["SnapshotId"] == snap
    assert ec2.describe_snapshots(OwnerIds=["amazon"])["Snapshots"] == []
    restored = ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=snap)
    assert restored["Encrypted"] is True and restored["Size"] == 2
    with pytest.raises(ClientError) as e:
        ec2.describe_snapshots(SnapshotIds=["snap-0123456789abcdef0"])
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("InvalidSnapshot.NotFound", "The snapshot 'snap-0123456789abcdef0' does not exist.")
    with pytest.raises(ClientError) as e:
        ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId="snap-0123456789abcdef0")
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("InvalidSnapshot.NotFound", "Snapshot does not exist")
    with pytest.raises(ClientError) as e:
        ec2.create_snapshot(VolumeId="vol-0123456789abcdef0")
    assert error_code(e) == "InvalidVolume.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId="snap-0123456789abcdef0")
    assert error_code(e) == "InvalidSnapshot.NotFound"


def test_copy_within_and_across_regions(kumo, ec2):
    from conftest import make_client

    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1, VolumeType="gp3")["VolumeId"]
    write(kumo, vol, 0x44, 0, "4M")
    src = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    # Within the region: a free layer on the source, reading exactly its bytes.
    out = ec2.copy_snapshot(SourceRegion="eu-west-1", SourceSnapshotId=src, TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])
    local = out["SnapshotId"]
    assert out["Tags"] == [{"Key": "k", "Value": "v"}]
    snap = ec2.describe_snapshots(SnapshotIds=[local])["Snapshots"][0]
    assert snap["Description"] == f"[Copied {src} from eu-west-1]" and snap["VolumeSize"] == 1 and snap["Encrypted"] is False
    assert os.path.getsize(path(kumo, local)) < 1 << 20
    assert same(kumo, local, src)
    # Deleting the source keeps the copy's bytes.
    ec2.delete_snapshot(SnapshotId=src)
    r = ec2.create_volume(AvailabilityZone="eu-west-1b", SnapshotId=local)["VolumeId"]
    assert reads(kumo, r, 0x44, 0) and reads(kumo, r, 0x44, 3)
    # Across regions, encrypted on request: a standalone layer in the other region.
    us = make_client(kumo.endpoint, region="us-west-2")
    far = us.copy_snapshot(SourceRegion="eu-west-1", SourceSnapshotId=local, Encrypted=True, Description="dr copy")["SnapshotId"]
    far_snap = us.describe_snapshots(SnapshotIds=[far])["Snapshots"][0]
    assert far_snap["Encrypted"] is True and far_snap["KmsKeyId"].startswith("arn:aws:kms:us-west-2:")
    assert far_snap["Description"] == "dr copy"
    with pytest.raises(ClientError) as e:
        ec2.describe_snapshots(SnapshotIds=[far])
    assert error_code(e) == "InvalidSnapshot.NotFound"
    ec2.delete_snapshot(SnapshotId=local)
    rv = us.create_volume(AvailabilityZone="us-west-2a", SnapshotId=far)
    assert rv["Encrypted"] is True
    assert reads(kumo, rv["VolumeId"], 0x44, 0)


def test_copy_errors(ec2):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    src = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    cases = [
        (dict(SourceRegion="eu-west-1", SourceSnapshotId="snap-0123456789abcdef0"), "InvalidSnapshot.NotFound"),
        (dict(SourceRegion="us-east-1", SourceSnapshotId=src), "InvalidSnapshot.NotFound"),
        (dict(SourceRegion="mars-north-1", SourceSnapshotId=src), "InvalidParameterValue"),
        (dict(SourceRegion="eu-west-1", SourceSnapshotId=src, KmsKeyId="alias/mine"), "InvalidParameterDependency"),
        (dict(SourceRegion="eu-west-1", SourceSnapshotId=src, DryRun=True), "DryRunOperation"),
    ]
    for kw, code in cases:
        with pytest.raises(ClientError) as e:
            ec2.copy_snapshot(**kw)
        assert error_code(e) == code, kw
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [src]


def test_cli_copy_snapshot(cli):
    vol = cli("ec2", "create-volume", "--availability-zone", "eu-west-1a", "--size", "1")["VolumeId"]
    src = cli("ec2", "create-snapshot", "--volume-id", vol)["SnapshotId"]
    copy = cli("ec2", "copy-snapshot", "--source-region", "eu-west-1", "--source-snapshot-id", src, "--encrypted", "--kms-key-id", "alias/backup")["SnapshotId"]
    snap = cli("ec2", "describe-snapshots", "--snapshot-ids", copy)["Snapshots"][0]
    assert (snap["Encrypted"], snap["KmsKeyId"]) == (True, "alias/backup")


def test_create_snapshots_of_an_instance(kumo, ec2):
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "eu-west-1a"})["Instances"][0]["InstanceId"]
    a = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1, TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "app", "Value": "db"}]}])["VolumeId"]
    b = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=2)["VolumeId"]
    loose = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    ec2.attach_volume(VolumeId=a, InstanceId=inst, Device="/dev/sdf")
    ec2.attach_volume(VolumeId=b, InstanceId=inst, Device="/dev/sdg")
    write(kumo, a, 0x55, 0)
    write(kumo, b, 0x66, 1)
    out = ec2.create_snapshots(
        InstanceSpecification={"InstanceId": inst},
        Description="nightly",
        CopyTagsFromSource="volume",
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "set", "Value": "1"}]}],
    )["Snapshots"]
    by_vol = {s["VolumeId"]: s for s in out}
    root = ec2.describe_instances(InstanceIds=[inst])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert set(by_vol) == {a, b, root}
    assert by_vol[a]["Tags"] == [{"Key": "set", "Value": "1"}, {"Key": "app", "Value": "db"}]
    assert by_vol[b]["VolumeSize"] == 2 and by_vol[b]["Description"] == "nightly" and by_vol[b]["AvailabilityZone"] == "eu-west-1a"
    # Writes after the point are not in the snapshots.
    write(kumo, a, 0x77, 0)
    ra = ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=by_vol[a]["SnapshotId"])["VolumeId"]
    rb = ec2.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=by_vol[b]["SnapshotId"])["VolumeId"]
    assert reads(kumo, ra, 0x55, 0) and reads(kumo, rb, 0x66, 1)
    assert reads(kumo, a, 0x77, 0)
    assert loose not in {s["VolumeId"] for s in ec2.describe_snapshots()["Snapshots"]}
    # Excluding the boot volume and a data volume.
    only = ec2.create_snapshots(InstanceSpecification={"InstanceId": inst, "ExcludeBootVolume": True, "ExcludeDataVolumeIds": [a]})["Snapshots"]
    assert [s["VolumeId"] for s in only] == [b]
    with pytest.raises(ClientError) as e:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": "i-0123456789abcdef0"})
    assert error_code(e) == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": inst, "ExcludeDataVolumeIds": ["vol-0123456789abcdef0"]})
    assert error_code(e) == "InvalidVolume.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.create_snapshots(InstanceSpecification={"InstanceId": inst}, DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert len(ec2.describe_snapshots()["Snapshots"]) == 4
