"""Own AMIs: RegisterImage from a snapshot, DescribeImages beside the public catalog,
launching from the image, the snapshot it holds, and DeregisterImage."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def snapshot(ec2, size=2):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=size, VolumeType="gp3")["VolumeId"]
    return ec2.create_snapshot(VolumeId=vol)["SnapshotId"]


def register(ec2, snap, name="golden-1", **kw):
    args = dict(
        Name=name,
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        EnaSupport=True,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeType": "gp3"}}],
    )
    args.update(kw)
    return ec2.register_image(**args)["ImageId"]


def test_register_describe_launch_deregister(ec2):
    snap = snapshot(ec2)
    ami = register(ec2, snap, Description="built by test", TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "role", "Value": "web"}]}])
    assert ami.startswith("ami-")
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["Name"] == "golden-1" and img["Description"] == "built by test"
    assert img["OwnerId"] == ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["OwnerId"] and img["Public"] is False and img["State"] == "available"
    assert img["RootDeviceType"] == "ebs" and img["RootDeviceName"] == "/dev/xvda"
    bdm = img["BlockDeviceMappings"][0]
    assert bdm["DeviceName"] == "/dev/xvda"
    assert bdm["Ebs"]["SnapshotId"] == snap and bdm["Ebs"]["VolumeSize"] == 2 and bdm["Ebs"]["Iops"] == 3000
    assert img["Tags"] == [{"Key": "role", "Value": "web"}]
    # Owners=self lists only own images; the public catalog stays out.
    mine = ec2.describe_images(Owners=["self"])["Images"]
    assert [i["ImageId"] for i in mine] == [ami]
    assert ec2.describe_images(Filters=[{"Name": "block-device-mapping.snapshot-id", "Values": [snap]}])["Images"][0]["ImageId"] == ami
    assert ec2.describe_images(Filters=[{"Name": "tag:role", "Values": ["web"]}])["Images"][0]["ImageId"] == ami
    assert ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "image-id", "Values": [ami]}])["Images"] == []
    # The image is launchable, and an instance type of another architecture is refused.
    inst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]
    assert inst["ImageId"] == ami and inst["Architecture"] == "x86_64"
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t4g.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidParameterValue"
    # The snapshot is held by the image.
    with pytest.raises(ClientError) as e:
        ec2.delete_snapshot(SnapshotId=snap)
    assert error_code(e) == "InvalidSnapshot.InUse"
    assert ami in str(e.value)
    out = ec2.deregister_image(ImageId=ami, DeleteAssociatedSnapshots=True)
    assert out["Return"] is True
    assert out["DeleteSnapshotResults"] == [{"SnapshotId": snap, "ReturnCode": "success"}]
    with pytest.raises(ClientError) as e:
        ec2.describe_snapshots(SnapshotIds=[snap])
    assert error_code(e) == "InvalidSnapshot.NotFound"
    # As AWS documents: while an instance launched from it lives, its id answers no image
    # rather than an error (ec2_ami's `wait` polls for exactly that); it launches nothing.
    assert ec2.describe_images(ImageIds=[ami])["Images"] == []
    assert ami not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidAMIID.NotFound"
    # The instance launched from it keeps running and can still change type when stopped.
    iid = inst["InstanceId"]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.small"})


def test_shared_snapshot_is_skipped_on_deregister(ec2):
    snap = snapshot(ec2)
    a = register(ec2, snap, name="img-a")
    b = register(ec2, snap, name="img-b")
    out = ec2.deregister_image(ImageId=a, DeleteAssociatedSnapshots=True)
    assert out["DeleteSnapshotResults"] == [{"SnapshotId": snap, "ReturnCode": "skipped"}]
    assert ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]["SnapshotId"] == snap
    ec2.deregister_image(ImageId=b)
    ec2.delete_snapshot(SnapshotId=snap)


@pytest.mark.parametrize(
    "kw,code",
    [
        ({"name": "tab\tname"}, "InvalidAMIName.Malformed"),
        ({"name": "bad*name"}, "InvalidAMIName.Malformed"),
        ({"RootDeviceName": "/dev/sda1"}, "InvalidBlockDeviceMapping"),
        ({"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}]}, "InvalidSnapshot.NotFound"),
        ({"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeType": "gp3"}}]}, "InvalidBlockDeviceMapping"),
        ({"Architecture": "sparc"}, "InvalidParameterValue"),
        ({"VirtualizationType": "paravirtual"}, "InvalidParameterCombination"),
        ({"ImageLocation": "bucket/image.manifest.xml"}, "Unsupported"),
    ],
)
def test_register_refusals(ec2, kw, code):
    snap = snapshot(ec2)
    name = kw.pop("name", "golden-x")
    with pytest.raises(ClientError) as e:
        register(ec2, snap, name=name, **kw)
    assert error_code(e) == code
    assert ec2.describe_images(Owners=["self"])["Images"] == []


def test_small_volume_and_duplicate_name(ec2):
    snap = snapshot(ec2, size=4)
    with pytest.raises(ClientError) as e:
        register(ec2, snap, BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeSize": 2}}])
    assert error_code(e) == "InvalidBlockDeviceMapping"
    ami = register(ec2, snap, name="dup")
    with pytest.raises(ClientError) as e:
        register(ec2, snap, name="dup")
    assert error_code(e) == "InvalidAMIName.Duplicate"
    assert ami in str(e.value)


def test_deregister_errors_and_dry_run(ec2):
    public = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId=public)
    assert error_code(e) == "AuthFailure"
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId="ami-0123456789abcdef0")
    assert error_code(e) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId="img-1")
    assert error_code(e) == "InvalidAMIID.Malformed"
    ami = register(ec2, snapshot(ec2))
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId=ami, DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["ImageId"] == ami


def test_cli_register_and_deregister(cli):
    vol = cli("ec2", "create-volume", "--availability-zone", "eu-west-1a", "--size", "1")["VolumeId"]
    snap = cli("ec2", "create-snapshot", "--volume-id", vol)["SnapshotId"]
    ami = cli(
        "ec2", "register-image", "--name", "cli-image", "--architecture", "arm64", "--root-device-name", "/dev/xvda",
        "--virtualization-type", "hvm", "--ena-support", "--block-device-mappings", f"DeviceName=/dev/xvda,Ebs={{SnapshotId={snap}}}",
    )["ImageId"]
    imgs = cli("ec2", "describe-images", "--owners", "self")["Images"]
    assert [(i["ImageId"], i["Architecture"], i["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]) for i in imgs] == [(ami, "arm64", snap)]
    code, _ = cli.error("ec2", "delete-snapshot", "--snapshot-id", snap)
    assert code == "InvalidSnapshot.InUse"
    assert cli("ec2", "deregister-image", "--image-id", ami)["Return"] is True
    assert cli("ec2", "describe-images", "--owners", "self")["Images"] == []


def test_create_image_from_an_instance(kumo, ec2):
    import os
    import subprocess

    def f(v):
        return os.path.join(kumo.data_dir, "volumes", f"{v}.qcow2")

    base = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=base, InstanceType="t3.micro", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "eu-west-1a"},
                            BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}])["Instances"][0]["InstanceId"]
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    root = next(b["Ebs"]["VolumeId"] for b in inst["BlockDeviceMappings"] if b["DeviceName"] == "/dev/xvda")
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x3c 0 1M", f(root)], check=True, capture_output=True)
    ami = ec2.create_image(InstanceId=iid, Name="baked", NoReboot=True,
                           BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "NoDevice": ""}],
                           TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "i"}]},
                                              {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "s"}]}])["ImageId"]
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert (img["RootDeviceName"], img["Architecture"], img["EnaSupport"]) == ("/dev/xvda", "x86_64", True)
    [m] = img["BlockDeviceMappings"]
    snap = m["Ebs"]["SnapshotId"]
    assert (m["DeviceName"], m["Ebs"]["VolumeSize"], m["Ebs"]["VolumeType"]) == ("/dev/xvda", 8, "gp3")
    s = ec2.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert s["Description"] == f"Created by CreateImage({iid}) for {ami}" and s["VolumeId"] == root
    assert s["Tags"] == [{"Key": "k", "Value": "s"}] and img["Tags"] == [{"Key": "k", "Value": "i"}]
    # The image launches with the bytes the instance's root volume held.
    child = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    croot = ec2.describe_instances(InstanceIds=[child])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x3c 0 1M", f(croot)], capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout
    with pytest.raises(ClientError) as e:
        ec2.create_image(InstanceId=iid, Name="baked")
    assert error_code(e) == "InvalidAMIName.Duplicate"
    ec2.terminate_instances(InstanceIds=[iid])
    with pytest.raises(ClientError) as e:
        ec2.create_image(InstanceId=iid, Name="too-late")
    assert error_code(e) == "IncorrectInstanceState"
    with pytest.raises(ClientError) as e:
        ec2.create_image(InstanceId="i-0123456789abcdef0", Name="nobody")
    assert error_code(e) == "InvalidInstanceID.NotFound"


def test_a_paravirtual_image_runs_only_on_types_that_list_it(ec2):
    # RegisterImage's default virtualization type is paravirtual, as on AWS.
    snap = snapshot(ec2)
    ami = ec2.register_image(Name="pv-1", Architecture="x86_64", RootDeviceName="/dev/xvda",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])["ImageId"]
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["VirtualizationType"] == "paravirtual"
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidParameterCombination"
    assert e.value.response["Error"]["Message"].startswith("Virtualization type 'hvm' is required for instances of type 't3.micro'.")
    # m1.small lists paravirtual; a stopped instance cannot move to a type that does not.
    iid = ec2.run_instances(ImageId=ami, InstanceType="m1.small", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.micro"})
    assert error_code(e) == "InvalidParameterCombination"


def test_an_image_with_a_gp2_root_launches(ec2):
    # The mapping shows the IOPS gp2 gives its size; the launch's volume derives its own.
    ami = register(ec2, snapshot(ec2, size=2), name="gp2-1",
                   BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot(ec2, size=2), "VolumeType": "gp2"}}])
    mapping = ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]
    assert (mapping["VolumeType"], mapping["Iops"]) == ("gp2", 100)
    inst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 50}}])["Instances"][0]
    vol = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    v = ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]
    assert (v["VolumeType"], v["Size"], v["Iops"]) == ("gp2", 50, 150)


@pytest.fixture(scope="module")
def clocked():
    from conftest import serving

    yield from serving("--test-clock")


def test_a_deregistered_id_answers_empty_then_not_found(clocked):
    import subprocess

    from conftest import KUMO_BIN, make_client

    ec2 = make_client(clocked.endpoint)
    ami = register(ec2, snapshot(ec2), name="short-lived")
    ec2.deregister_image(ImageId=ami)
    assert ec2.describe_images(ImageIds=[ami])["Images"] == []
    # No instance was launched from it: an hour on, the id is unknown.
    p = subprocess.run([KUMO_BIN, "admin", "advance-clock", "3601", "--endpoint-url", clocked.endpoint,
                        "--region", "eu-west-1"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=[ami])
    assert error_code(e) == "InvalidAMIID.NotFound"


def test_an_empty_image_location_is_not_given(ec2, ec2_raw):
    # Terraform's aws_ami always sends `ImageLocation=`; a real manifest still needs S3.
    snap = snapshot(ec2)
    ami = register(ec2_raw, snap, name="no-location", ImageLocation="")
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["RootDeviceType"] == "ebs"
    with pytest.raises(ClientError) as e:
        register(ec2_raw, snap, name="with-location", ImageLocation="my-bucket/image.manifest.xml")
    assert error_code(e) == "Unsupported"
