"""Volumes made at launch: the image's root volume, the request's BlockDeviceMappings, their
DeleteOnTermination flags, and the root volume of an own AMI holding its snapshot's bytes."""

import json
import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def al2023(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]


def launch(ec2, image, **kw):
    kw.setdefault("InstanceType", "t3.micro")
    kw.setdefault("Placement", {"AvailabilityZone": "eu-west-1a"})
    return ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, **kw)["Instances"][0]


def file_of(kumo, vol):
    return os.path.join(kumo.data_dir, "volumes", f"{vol}.qcow2")


def virtual_size(kumo, vol):
    out = subprocess.run(["qemu-img", "info", "--output=json", "-U", file_of(kumo, vol)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["virtual-size"]


def bdm(ec2, iid):
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return [(b["DeviceName"], b["Ebs"]["VolumeId"], b["Ebs"]["DeleteOnTermination"]) for b in inst["BlockDeviceMappings"]]


def test_root_volume_from_a_catalog_image(kumo, ec2):
    inst = launch(ec2, al2023(ec2))
    iid = inst["InstanceId"]
    [(dev, root, dot)] = bdm(ec2, iid)
    assert (dev, dot) == ("/dev/xvda", True)
    v = ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]
    assert (v["Size"], v["VolumeType"], v["Iops"], v["AvailabilityZone"], v["State"]) == (8, "gp3", 3000, "eu-west-1a", "in-use")
    assert v["Attachments"][0]["InstanceId"] == iid and v["Attachments"][0]["Device"] == "/dev/xvda"
    assert virtual_size(kumo, root) == 8 << 30
    attr = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")["BlockDeviceMappings"]
    assert [b["Ebs"]["VolumeId"] for b in attr] == [root]
    # The root volume of a running instance stays; once stopped it can be detached.
    with pytest.raises(ClientError) as e:
        ec2.detach_volume(VolumeId=root)
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("IncorrectState", f"Unable to detach root volume '{root}' from instance '{iid}'")
    ec2.terminate_instances(InstanceIds=[iid])
    with pytest.raises(ClientError) as e:
        ec2.describe_volumes(VolumeIds=[root])
    assert error_code(e) == "InvalidVolume.NotFound"
    assert not os.path.exists(file_of(kumo, root))


def test_block_device_mappings_change_and_add_volumes(kumo, ec2):
    inst = launch(
        ec2,
        al2023(ec2),
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 20, "Iops": 4000}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 5, "VolumeType": "io2", "Iops": 500, "DeleteOnTermination": False, "Encrypted": True}},
        ],
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "team", "Value": "db"}]}],
    )
    iid = inst["InstanceId"]
    maps = bdm(ec2, iid)
    assert [(d, dot) for d, _, dot in maps] == [("/dev/sdf", False), ("/dev/xvda", True)] or [(d, dot) for d, _, dot in maps] == [("/dev/xvda", True), ("/dev/sdf", False)]
    vols = {v["Attachments"][0]["Device"]: v for v in ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]}
    assert (vols["/dev/xvda"]["Size"], vols["/dev/xvda"]["VolumeType"], vols["/dev/xvda"]["Iops"]) == (20, "gp3", 4000)
    data = vols["/dev/sdf"]
    assert (data["Size"], data["VolumeType"], data["Iops"], data["Encrypted"]) == (5, "io2", 500, True)
    assert all(v["Tags"] == [{"Key": "team", "Value": "db"}] for v in vols.values())
    assert virtual_size(kumo, vols["/dev/xvda"]["VolumeId"]) == 20 << 30
    # Keep the root volume too, through ModifyInstanceAttribute.
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"DeleteOnTermination": False}}])
    assert all(dot is False for _, _, dot in bdm(ec2, iid))
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/sdz", "Ebs": {"DeleteOnTermination": False}}])
    assert error_code(e) == "InvalidInstanceAttributeValue"
    ec2.terminate_instances(InstanceIds=[iid])
    left = ec2.describe_volumes(VolumeIds=[v["VolumeId"] for v in vols.values()])["Volumes"]
    assert sorted(v["State"] for v in left) == ["available", "available"]


@pytest.mark.parametrize(
    "mappings,code",
    [
        ([{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 4}}], "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/sdf", "Ebs": {"VolumeType": "gp3"}}], "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10}}, {"DeviceName": "sdf", "Ebs": {"VolumeSize": 10}}], "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": "snap-0123456789abcdef0"}}], "InvalidSnapshot.NotFound"),
        ([{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "VolumeType": "io1"}}], "InvalidParameterCombination"),
        ([{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 10, "KmsKeyId": "alias/k"}}], "InvalidParameterDependency"),
        ([{"DeviceName": "/dev/xvda", "NoDevice": ""}], "InvalidBlockDeviceMapping"),
        ([{"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"}], "Unsupported"),
    ],
)
def test_bad_mappings_leave_nothing(ec2, mappings, code):
    with pytest.raises(ClientError) as e:
        launch(ec2, al2023(ec2), BlockDeviceMappings=mappings)
    assert error_code(e) == code
    assert ec2.describe_instances()["Reservations"] == []
    assert ec2.describe_volumes()["Volumes"] == []


def test_own_image_root_volume_holds_the_snapshot_bytes(kumo, ec2):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=2, VolumeType="gp3")["VolumeId"]
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 1M", file_of(kumo, vol)], check=True, capture_output=True)
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ami = ec2.register_image(
        Name="with-bytes",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        EnaSupport=True,
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap, "VolumeType": "gp3"}}],
    )["ImageId"]
    iid = launch(ec2, ami, BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 3}}])["InstanceId"]
    [(_, root, _)] = bdm(ec2, iid)
    v = ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]
    assert (v["Size"], v["SnapshotId"]) == (3, snap)
    check = subprocess.run(["qemu-io", "-r", "-f", "qcow2", "-c", "read -P 0x5a 1M 1M", file_of(kumo, root)], capture_output=True, text=True)
    assert check.returncode == 0 and "Pattern verification failed" not in check.stdout
    with pytest.raises(ClientError) as e:
        launch(ec2, ami, BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 1}}])
    assert error_code(e) == "InvalidBlockDeviceMapping"
    assert snap in e.value.response["Error"]["Message"]


def test_instance_store_image_has_no_volumes(ec2):
    img = ec2.describe_images(Filters=[{"Name": "root-device-type", "Values": ["instance-store"]}])["Images"][0]["ImageId"]
    iid = launch(ec2, img, InstanceType="m5d.large")["InstanceId"]
    assert bdm(ec2, iid) == []
    assert ec2.describe_volumes()["Volumes"] == []


def test_cli_run_instances_with_mappings(cli, ec2):
    image = al2023(ec2)
    out = cli(
        "ec2", "run-instances", "--image-id", image, "--instance-type", "t3.micro", "--placement", "AvailabilityZone=eu-west-1a",
        "--block-device-mappings", "DeviceName=/dev/xvda,Ebs={VolumeSize=12,VolumeType=gp2}",
    )
    iid = out["Instances"][0]["InstanceId"]
    vols = cli("ec2", "describe-volumes", "--filters", f"Name=attachment.instance-id,Values={iid}")["Volumes"]
    assert [(v["Size"], v["VolumeType"], v["Iops"]) for v in vols] == [(12, "gp2", 100)]


def test_no_volume_file_outlives_a_failed_or_smaller_launch(kumo, ec2):
    import glob

    def files():
        return sorted(os.path.basename(p) for p in glob.glob(os.path.join(kumo.data_dir, "volumes", "*.qcow2")))

    # A launch that fails in its transaction (after the root volumes' files were started).
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=al2023(ec2), InstanceType="t3.micro", KeyName="no-such-key", MinCount=3, MaxCount=3)
    assert error_code(e) == "InvalidKeyPair.NotFound"
    assert files() == []
    # A launch of 3: exactly their three root volumes, each a file.
    out = ec2.run_instances(ImageId=al2023(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=3)["Instances"]
    vols = sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"])
    assert len(out) == 3 and files() == [f"{v}.qcow2" for v in vols]


def test_a_volume_detached_before_termination_is_kept(kumo, ec2):
    """A launch volume marked DeleteOnTermination that was detached before the instance
    terminated is no longer the instance's: it stays, with its data, as AWS keeps it."""
    inst = launch(ec2, al2023(ec2), BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}}])
    iid = inst["InstanceId"]
    vol = [v for d, v, _ in bdm(ec2, iid) if d == "/dev/sdf"][0]
    ec2.detach_volume(VolumeId=vol)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    # Its device is no longer the instance's to change either.
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"DeleteOnTermination": False}}])
    assert error_code(e) == "InvalidInstanceAttributeValue"
    ec2.terminate_instances(InstanceIds=[iid])
    assert ec2.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"] == "available"
    assert os.path.exists(file_of(kumo, vol))
