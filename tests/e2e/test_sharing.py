"""Sharing across accounts: AMI launch permissions (ModifyImageAttribute and friends, block
public access for AMIs), snapshot create-volume permissions, what DescribeImages and
DescribeSnapshots show to whom, and CopyImage."""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import Cli, error_code, make_client

OWNER = "111111111111"
FRIEND = "222222222222"
STRANGER = "333333333333"


@pytest.fixture
def accounts(kumo):
    return tuple(make_client(kumo.endpoint, key=a) for a in (OWNER, FRIEND, STRANGER))


def snapshot(ec2, size=2, **kw):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=size, VolumeType="gp3", **kw)["VolumeId"]
    return vol, ec2.create_snapshot(VolumeId=vol)["SnapshotId"]


def register(ec2, snap, name="shared-1"):
    return ec2.register_image(
        Name=name,
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        EnaSupport=True,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeType": "gp3"}}],
    )["ImageId"]


def layer(kumo, vid):
    return os.path.join(kumo.data_dir, "volumes", f"{vid}.qcow2")


def fails(code, f, *a, **kw):
    with pytest.raises(ClientError) as e:
        f(*a, **kw)
    assert error_code(e) == code, str(e.value)
    return str(e.value)


def ids(images):
    return sorted(i["ImageId"] for i in images)


def test_launch_permission_for_one_account(kumo, accounts):
    owner, friend, stranger = accounts
    vol, snap = snapshot(owner)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x6b 0 1M", layer(kumo, vol)], check=True, capture_output=True)
    snap = owner.create_snapshot(VolumeId=vol)["SnapshotId"]
    ami = register(owner, snap)
    # Private: the others can neither see nor launch it.
    fails("InvalidAMIID.NotFound", friend.describe_images, ImageIds=[ami])
    fails("InvalidAMIID.NotFound", friend.run_instances, ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    owner.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": FRIEND}]})
    attr = owner.describe_image_attribute(ImageId=ami, Attribute="launchPermission")
    assert attr["ImageId"] == ami and attr["LaunchPermissions"] == [{"UserId": FRIEND}]
    # The friend sees it, owned by the owner, without the owner's tags, and launches it.
    img = friend.describe_images(ImageIds=[ami])["Images"][0]
    assert img["OwnerId"] == OWNER and img["Public"] is False
    assert ids(friend.describe_images(ExecutableUsers=["self"])["Images"]) == [ami]
    assert ami in ids(friend.describe_images()["Images"])
    assert ids(friend.describe_images(Owners=[OWNER])["Images"]) == [ami]
    assert friend.describe_images(Owners=["self"])["Images"] == []
    inst = friend.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]
    root = friend.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [inst["InstanceId"]]}])["Volumes"][0]
    assert root["SnapshotId"] == snap
    # The friend's root volume holds the owner's bytes, in a file of its own.
    check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x6b 0 1M", layer(kumo, root["VolumeId"])], capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout
    # The stranger still can't; nor can the friend change or read the image's permissions.
    fails("InvalidAMIID.NotFound", stranger.run_instances, ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    fails("AuthFailure", friend.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"UserId": STRANGER}]})
    fails("AuthFailure", friend.describe_image_attribute, ImageId=ami, Attribute="launchPermission")
    fails("AuthFailure", friend.deregister_image, ImageId=ami)
    # The owner lists what it shares with the friend.
    assert ids(owner.describe_images(ExecutableUsers=[FRIEND])["Images"]) == [ami]
    # Removing the permission takes it away; the friend's instance keeps running.
    owner.modify_image_attribute(ImageId=ami, Attribute="launchPermission", OperationType="remove", UserIds=[FRIEND])
    assert owner.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == []
    fails("InvalidAMIID.NotFound", friend.describe_images, ImageIds=[ami])
    state = friend.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("pending", "running")
    # Deleting the owner's snapshot (after the image) leaves the friend's volume readable.
    owner.deregister_image(ImageId=ami, DeleteAssociatedSnapshots=True)
    check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x6b 0 1M", layer(kumo, root["VolumeId"])], capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout


def test_public_image_and_block_public_access(accounts):
    owner, friend, stranger = accounts
    _, snap = snapshot(owner)
    ami = register(owner, snap)
    assert owner.get_image_block_public_access_state()["ImageBlockPublicAccessState"] == "unblocked"
    assert owner.enable_image_block_public_access(ImageBlockPublicAccessState="block-new-sharing")["ImageBlockPublicAccessState"] == "block-new-sharing"
    msg = fails("OperationNotPermitted", owner.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}]})
    assert "DisableImageBlockPublicAccess" in msg
    # Sharing with one account is still allowed.
    owner.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": FRIEND}]})
    assert owner.disable_image_block_public_access()["ImageBlockPublicAccessState"] == "unblocked"
    owner.modify_image_attribute(ImageId=ami, Attribute="launchPermission", OperationType="add", UserGroups=["all"])
    perms = owner.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert {"Group": "all"} in perms and {"UserId": FRIEND} in perms
    # Everyone sees it as public, and anyone may launch it.
    img = stranger.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Public"] is True and img["OwnerId"] == OWNER
    assert ami in ids(stranger.describe_images(ExecutableUsers=["all"], Filters=[{"Name": "is-public", "Values": ["true"]}])["Images"])
    assert ami not in ids(stranger.describe_images(ExecutableUsers=["self"])["Images"])
    assert ami in ids(stranger.describe_images(Owners=[OWNER])["Images"])
    stranger.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    # ResetImageAttribute makes it private again, for everyone.
    owner.reset_image_attribute(ImageId=ami, Attribute="launchPermission")
    assert owner.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == []
    fails("InvalidAMIID.NotFound", stranger.describe_images, ImageIds=[ami])
    fails("InvalidAMIID.NotFound", friend.describe_images, ImageIds=[ami])
    assert owner.describe_images(ImageIds=[ami])["Images"][0]["Public"] is False


def test_image_attribute_errors(accounts, kumo):
    owner, friend, _ = accounts
    _, snap = snapshot(owner)
    ami = register(owner, snap)
    msg = fails("InvalidAMIAttributeItemValue", owner.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"UserId": "123"}]})
    assert 'Invalid attribute item value "123" for userId item type.' in msg
    msg = fails("InvalidAMIAttributeItemValue", owner.modify_image_attribute, ImageId=ami, Attribute="launchPermission", OperationType="add", UserGroups=["everyone"])
    assert "for UserGroup item type" in msg
    # A bad item changes nothing, even beside a good one.
    fails("InvalidAMIAttributeItemValue", owner.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"UserId": FRIEND}, {"UserId": "x"}]})
    assert owner.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == []
    fails("InvalidAMIID.NotFound", owner.modify_image_attribute, ImageId="ami-0123456789abcdef0", LaunchPermission={"Add": [{"UserId": FRIEND}]})
    fails("InvalidAMIID.Malformed", owner.describe_image_attribute, ImageId="image-1", Attribute="description")
    # A catalog image belongs to Amazon.
    catalog = owner.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    fails("AuthFailure", owner.modify_image_attribute, ImageId=catalog, LaunchPermission={"Add": [{"UserId": FRIEND}]})
    # Description and IMDS support.
    owner.modify_image_attribute(ImageId=ami, Description={"Value": "golden image"})
    assert owner.describe_image_attribute(ImageId=ami, Attribute="description")["Description"] == {"Value": "golden image"}
    owner.modify_image_attribute(ImageId=ami, Attribute="description", Value="second")
    assert owner.describe_images(ImageIds=[ami])["Images"][0]["Description"] == "second"
    owner.modify_image_attribute(ImageId=ami, ImdsSupport={"Value": "v2.0"})
    assert owner.describe_image_attribute(ImageId=ami, Attribute="imdsSupport")["ImdsSupport"] == {"Value": "v2.0"}
    fails("InvalidParameterValue", owner.modify_image_attribute, ImageId=ami, ImdsSupport={"Value": "v1.0"})
    fails("AuthFailure", owner.describe_image_attribute, ImageId=ami, Attribute="blockDeviceMapping")
    # DryRun checks and changes nothing.
    fails("DryRunOperation", owner.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"UserId": FRIEND}]}, DryRun=True)
    fails("InvalidAMIID.NotFound", friend.describe_images, ImageIds=[ami])
    # ResetImageAttribute resets only launchPermission.
    raw = make_client(kumo.endpoint, key=OWNER, validate=False)
    fails("InvalidParameterValue", raw.reset_image_attribute, ImageId=ami, Attribute="description")


def test_encrypted_images_share_with_limits(accounts):
    owner, _, _ = accounts
    # Under the default EBS key: no account may be given the image.
    _, snap = snapshot(owner, Encrypted=True)
    ami = register(owner, snap, name="enc-default")
    msg = fails("InvalidParameter", owner.modify_image_attribute, ImageId=ami, LaunchPermission={"Add": [{"UserId": FRIEND}]})
    assert "AWS Managed CMK" in msg
    # Under a customer key: accounts yes, public no.
    _, snap2 = snapshot(owner, Encrypted=True, KmsKeyId="arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    ami2 = register(owner, snap2, name="enc-cmk")
    owner.modify_image_attribute(ImageId=ami2, LaunchPermission={"Add": [{"UserId": FRIEND}]})
    fails("UnsupportedOperation", owner.modify_image_attribute, ImageId=ami2, LaunchPermission={"Add": [{"Group": "all"}]})


def test_snapshot_create_volume_permission(kumo, accounts):
    owner, friend, stranger = accounts
    vol, _ = snapshot(owner)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x2e 1M 1M", layer(kumo, vol)], check=True, capture_output=True)
    snap = owner.create_snapshot(VolumeId=vol)["SnapshotId"]
    fails("InvalidSnapshot.NotFound", friend.describe_snapshots, SnapshotIds=[snap])
    fails("InvalidSnapshot.NotFound", friend.create_volume, AvailabilityZone="eu-west-1a", SnapshotId=snap)
    owner.modify_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[FRIEND])
    attr = owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert attr == {"SnapshotId": snap, "CreateVolumePermissions": [{"UserId": FRIEND}], "ResponseMetadata": attr["ResponseMetadata"]}
    # The friend sees it, owned by the owner, by default and with RestorableBy self.
    seen = friend.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert seen["OwnerId"] == OWNER
    assert [s["SnapshotId"] for s in friend.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]] == [snap]
    assert [s["SnapshotId"] for s in friend.describe_snapshots()["Snapshots"]] == [snap]
    assert friend.describe_snapshots(OwnerIds=["self"])["Snapshots"] == []
    assert [s["SnapshotId"] for s in friend.describe_snapshots(OwnerIds=[OWNER])["Snapshots"]] == [snap]
    assert [s["SnapshotId"] for s in owner.describe_snapshots(RestorableByUserIds=[FRIEND])["Snapshots"]] == [snap]
    assert stranger.describe_snapshots()["Snapshots"] == []
    # The friend restores it: the bytes are the owner's, in a file of the friend's.
    v = friend.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=snap)
    assert v["SnapshotId"] == snap and v["Size"] == 2
    def reads(vid):
        p = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x2e 1M 1M", layer(kumo, vid)], capture_output=True, text=True)
        return p.returncode == 0 and "Pattern verification failed" not in p.stdout
    assert reads(v["VolumeId"])
    # And copies it, standalone.
    copy = friend.copy_snapshot(SourceRegion="eu-west-1", SourceSnapshotId=snap)["SnapshotId"]
    assert friend.describe_snapshots(SnapshotIds=[copy])["Snapshots"][0]["OwnerId"] == FRIEND
    # Only the owner manages the permissions.
    fails("InvalidSnapshot.NotFound", friend.modify_snapshot_attribute, SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[STRANGER])
    fails("InvalidSnapshot.NotFound", friend.describe_snapshot_attribute, SnapshotId=snap, Attribute="createVolumePermission")
    # Public, then reset.
    owner.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert [s["SnapshotId"] for s in stranger.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"]] == [snap]
    owner.reset_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")
    assert owner.describe_snapshot_attribute(SnapshotId=snap, Attribute="createVolumePermission")["CreateVolumePermissions"] == []
    assert stranger.describe_snapshots()["Snapshots"] == []
    assert friend.describe_snapshots(OwnerIds=[OWNER])["Snapshots"] == []
    # The owner deletes it; the friend's volume and copy keep their bytes.
    owner.delete_snapshot(SnapshotId=snap)
    assert reads(v["VolumeId"])
    restored = friend.create_volume(AvailabilityZone="eu-west-1a", SnapshotId=copy)["VolumeId"]
    assert reads(restored)


def test_snapshot_permission_errors(accounts):
    owner, _, _ = accounts
    _, snap = snapshot(owner)
    msg = fails("InvalidAMIAttributeItemValue", owner.modify_snapshot_attribute, SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": "12"}]})
    assert '"12"' in msg
    fails("MissingParameter", owner.modify_snapshot_attribute, SnapshotId=snap, Attribute="createVolumePermission", UserIds=[FRIEND])
    _, enc = snapshot(owner, Encrypted=True)
    msg = fails("OperationNotPermitted", owner.modify_snapshot_attribute, SnapshotId=enc, CreateVolumePermission={"Add": [{"UserId": FRIEND}]})
    assert "default key" in msg
    _, cmk = snapshot(owner, Encrypted=True, KmsKeyId="arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    owner.modify_snapshot_attribute(SnapshotId=cmk, CreateVolumePermission={"Add": [{"UserId": FRIEND}]})
    msg = fails("OperationNotPermitted", owner.modify_snapshot_attribute, SnapshotId=cmk, CreateVolumePermission={"Add": [{"Group": "all"}]})
    assert "publicly" in msg
    fails("InvalidUserID.Malformed", owner.describe_snapshots, OwnerIds=["12345"])
    fails("InvalidUserID.Malformed", owner.describe_images, Owners=["12345"])
    fails("InvalidSnapshot.NotFound", owner.describe_snapshot_attribute, SnapshotId="snap-0123456789abcdef0", Attribute="createVolumePermission")


def test_copy_image(kumo, accounts):
    owner, friend, _ = accounts
    vol, _ = snapshot(owner)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x19 0 1M", layer(kumo, vol)], check=True, capture_output=True)
    snap = owner.create_snapshot(VolumeId=vol)["SnapshotId"]
    ami = register(owner, snap, name="to-copy")
    owner.create_tags(Resources=[ami], Tags=[{"Key": "team", "Value": "infra"}])
    # Across regions: a new image and a new snapshot of the caller's, holding the same bytes.
    us = make_client(kumo.endpoint, key=OWNER, region="us-east-1")
    copied = us.copy_image(Name="copied", SourceImageId=ami, SourceRegion="eu-west-1", Description="a copy", CopyImageTags=True,
                           TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "copy", "Value": "yes"}]}])["ImageId"]
    img = us.describe_images(ImageIds=[copied])["Images"][0]
    assert img["Name"] == "copied" and img["Description"] == "a copy" and img["OwnerId"] == OWNER
    assert img["Tags"] == [{"Key": "team", "Value": "infra"}]
    new_snap = img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert new_snap != snap
    s = us.describe_snapshots(SnapshotIds=[new_snap])["Snapshots"][0]
    assert s["Description"].startswith(f"Copied for DestinationAmi {copied} from SourceAmi {ami} for SourceSnapshot {snap}.")
    assert s["Tags"] == [{"Key": "copy", "Value": "yes"}]
    check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x19 0 1M", layer(kumo, new_snap)], capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout
    # Launchable there.
    us.run_instances(ImageId=copied, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    # Errors: a missing source, a duplicate name, an image shared without its storage.
    fails("InvalidAMIID.NotFound", us.copy_image, Name="x-copy", SourceImageId="ami-0123456789abcdef0", SourceRegion="eu-west-1")
    fails("InvalidAMIName.Duplicate", us.copy_image, Name="copied", SourceImageId=ami, SourceRegion="eu-west-1")
    fails("InvalidParameterDependency", us.copy_image, Name="k-copy", SourceImageId=ami, SourceRegion="eu-west-1", KmsKeyId="alias/x")
    owner.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": FRIEND}]})
    msg = fails("InvalidRequest", friend.copy_image, Name="theirs", SourceImageId=ami, SourceRegion="eu-west-1")
    assert "storage" in msg
    owner.modify_snapshot_attribute(SnapshotId=snap, CreateVolumePermission={"Add": [{"UserId": FRIEND}]})
    mine = friend.copy_image(Name="theirs", SourceImageId=ami, SourceRegion="eu-west-1", Encrypted=True)["ImageId"]
    got = friend.describe_images(ImageIds=[mine])["Images"][0]
    assert got["OwnerId"] == FRIEND and got["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True
    # A catalog image copies too: its blank root becomes a snapshot of the caller's.
    al = owner.describe_images(Owners=["amazon"], Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"][0]
    c = owner.copy_image(Name="my-al", SourceImageId=al["ImageId"], SourceRegion="eu-west-1")["ImageId"]
    assert owner.describe_images(ImageIds=[c])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"].startswith("snap-")


def test_cli_share_image(kumo):
    owner = Cli(kumo.endpoint, key=OWNER)
    friend = Cli(kumo.endpoint, key=FRIEND)
    vol = owner("ec2", "create-volume", "--availability-zone", "eu-west-1a", "--size", "1")["VolumeId"]
    snap = owner("ec2", "create-snapshot", "--volume-id", vol)["SnapshotId"]
    ami = owner("ec2", "register-image", "--name", "cli-shared", "--architecture", "x86_64", "--root-device-name", "/dev/xvda",
                "--virtualization-type", "hvm", "--block-device-mappings", f"DeviceName=/dev/xvda,Ebs={{SnapshotId={snap}}}")["ImageId"]
    owner("ec2", "modify-image-attribute", "--image-id", ami, "--launch-permission", f"Add=[{{UserId={FRIEND}}}]")
    out = owner("ec2", "describe-image-attribute", "--image-id", ami, "--attribute", "launchPermission")
    assert out["LaunchPermissions"] == [{"UserId": FRIEND}]
    assert [i["ImageId"] for i in friend("ec2", "describe-images", "--executable-users", "self")["Images"]] == [ami]
    owner("ec2", "modify-snapshot-attribute", "--snapshot-id", snap, "--attribute", "createVolumePermission", "--operation-type", "add", "--user-ids", FRIEND)
    assert friend("ec2", "describe-snapshots", "--restorable-by-user-ids", "self")["Snapshots"][0]["SnapshotId"] == snap
