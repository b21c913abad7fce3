"""EBS volumes: real qcow2 files behind the API, AWS's type limits, attachments and
modifications."""

import os
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def volume_file(kumo, vid):
    return os.path.join(kumo.data_dir, "volumes", f"{vid}.qcow2")


def qemu_size(path):
    out = subprocess.run(["qemu-img", "info", "--output=json", "-f", "qcow2", path], capture_output=True, text=True, check=True).stdout
    import json

    return json.loads(out)["virtual-size"]


def test_create_describe_delete_with_real_files(kumo, ec2):
    v = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=8, VolumeType="gp3",
                          TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}])
    assert v["State"] == "creating" and v["VolumeId"].startswith("vol-")
    assert (v["Iops"], v["Throughput"]) == (3000, 125)
    vid = v["VolumeId"]
    path = volume_file(kumo, vid)
    assert os.path.exists(path) and qemu_size(path) == 8 << 30
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    d = ec2.describe_volumes(Filters=[{"Name": "tag:Name", "Values": ["data"]}])["Volumes"]
    assert [x["VolumeId"] for x in d] == [vid] and d[0]["State"] == "available"
    gp2 = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=100)
    assert (gp2["VolumeType"], gp2["Iops"]) == ("gp2", 300)
    ec2.delete_volume(VolumeId=vid)
    assert not os.path.exists(path)
    with pytest.raises(ClientError) as e:
        ec2.describe_volumes(VolumeIds=[vid])
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("InvalidVolume.NotFound", f"The volume '{vid}' does not exist.")


def test_type_limits(ec2):
    cases = [
        (dict(Size=10, VolumeType="gp2", Iops=300), "InvalidParameterCombination", "The parameter iops is not supported for gp2 volumes."),
        (dict(Size=10, VolumeType="io1"), "InvalidParameterCombination", "The parameter iops must be specified for io1 volumes."),
        (dict(Size=6, VolumeType="io1", Iops=400), "InvalidParameterValue", "Iops to volume size ratio of 66.666667 is too high; maximum is 50"),
        (dict(Size=2000, VolumeType="standard"), "InvalidParameterValue", "Volume of 2000GiB is too large for volume type standard; maximum is 1024GiB"),
        (dict(Size=10, VolumeType="st1"), "InvalidParameterValue", None),
        (dict(Size=10, VolumeType="gp2", Throughput=200), "InvalidParameterCombination", None),
        (dict(Size=100, VolumeType="gp3", Throughput=1000), "InvalidParameterValue", None),
        (dict(Size=10, VolumeType="gp3", MultiAttachEnabled=True), "InvalidParameterCombination", None),
    ]
    for extra, code, msg in cases:
        with pytest.raises(ClientError) as e:
            ec2.create_volume(AvailabilityZone="eu-west-1a", **extra)
        assert error_code(e) == code, extra
        if msg:
            assert e.value.response["Error"]["Message"] == msg
    with pytest.raises(ClientError) as e:
        ec2.create_volume(AvailabilityZone="eu-west-9z", Size=1)
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("InvalidZone.NotFound", "The zone 'eu-west-9z' does not exist.")
    assert ec2.create_volume(AvailabilityZone="eu-west-1a", Size=10, VolumeType="io2", Iops=5000, MultiAttachEnabled=True)["MultiAttachEnabled"] is True


def test_attach_detach_rules(ec2):
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]
    inst = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "eu-west-1a"})["Instances"][0]["InstanceId"]
    here = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    there = ec2.create_volume(AvailabilityZone="eu-west-1b", Size=1)["VolumeId"]
    with pytest.raises(ClientError) as e:
        ec2.attach_volume(VolumeId=there, InstanceId=inst, Device="/dev/sdf")
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("InvalidVolume.ZoneMismatch", f"The volume '{there}' is not in the same availability zone as instance '{inst}'")
    with pytest.raises(ClientError) as e:
        ec2.attach_volume(VolumeId=here, InstanceId=inst, Device="/dev/sdZZ")
    assert e.value.response["Error"]["Message"] == "Value (/dev/sdZZ) for parameter device is invalid. /dev/sdZZ is not a valid EBS device name."
    with pytest.raises(ClientError) as e:
        ec2.attach_volume(VolumeId=here, InstanceId=inst, Device="/dev/xvda")
    assert e.value.response["Error"]["Message"] == "Invalid value '/dev/xvda' for unixDevice. Attachment point /dev/xvda is already in use"
    att = ec2.attach_volume(VolumeId=here, InstanceId=inst, Device="/dev/sdf")
    assert att["State"] == "attaching"
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[here], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    v = ec2.describe_volumes(VolumeIds=[here])["Volumes"][0]
    assert v["State"] == "in-use" and v["Attachments"][0]["State"] == "attached"
    bdm = ec2.describe_instances(InstanceIds=[inst])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"]
    assert [b["DeviceName"] for b in bdm] == ["/dev/xvda", "/dev/sdf"] and bdm[1]["Ebs"]["VolumeId"] == here
    other = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    with pytest.raises(ClientError) as e:
        ec2.attach_volume(VolumeId=other, InstanceId=inst, Device="/dev/sdf")
    assert error_code(e) == "InvalidParameterValue"
    inst2 = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "eu-west-1a"})["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.attach_volume(VolumeId=here, InstanceId=inst2, Device="/dev/sdg")
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("VolumeInUse", f"{here} is already attached to an instance")
    with pytest.raises(ClientError) as e:
        ec2.delete_volume(VolumeId=here)
    assert error_code(e) == "VolumeInUse"
    assert ec2.detach_volume(VolumeId=here)["State"] == "detaching"
    ec2.get_waiter("volume_available").wait(VolumeIds=[here], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    with pytest.raises(ClientError) as e:
        ec2.detach_volume(VolumeId=here)
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("IncorrectState", f"Volume '{here}' is in the 'available' state.")
    # The detached volume's device name is free again on its instance.
    ec2.attach_volume(VolumeId=other, InstanceId=inst, Device="/dev/sdf")
    ec2.detach_volume(VolumeId=other)
    ec2.get_waiter("volume_available").wait(VolumeIds=[other], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    # Attach to the second instance; a later attachment survives termination.
    ec2.attach_volume(VolumeId=here, InstanceId=inst2, Device="/dev/sdg")
    ec2.terminate_instances(InstanceIds=[inst2])
    assert ec2.describe_volumes(VolumeIds=[here])["Volumes"][0]["State"] == "available"


def test_modify_grows_the_file(kumo, ec2):
    vid = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1, VolumeType="gp3")["VolumeId"]
    path = volume_file(kumo, vid)
    # Real bytes: write through QEMU's block layer, read them back after the growth.
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", path], check=True, capture_output=True)
    with pytest.raises(ClientError) as e:
        ec2.modify_volume(VolumeId=vid, Size=0)
    assert error_code(e) == "InvalidParameterValue"
    m = ec2.modify_volume(VolumeId=vid, Size=10, VolumeType="gp3", Iops=4000)["VolumeModification"]
    assert (m["ModificationState"], m["OriginalSize"], m["TargetSize"], m["TargetIops"]) == ("modifying", 1, 10, 4000)
    assert qemu_size(path) == 10 << 30
    read = subprocess.run(["qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 1M", path], capture_output=True, text=True)
    assert read.returncode == 0 and "Pattern verification failed" not in read.stdout
    mods = ec2.describe_volumes_modifications(VolumeIds=[vid])["VolumesModifications"]
    assert mods[0]["ModificationState"] == "completed" and mods[0]["Progress"] == 100
    v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
    assert (v["Size"], v["Iops"]) == (10, 4000)
    with pytest.raises(ClientError) as e:
        ec2.modify_volume(VolumeId=vid, Size=2)
    assert error_code(e) == "InvalidParameterValue"
    for size in (11, 12, 13):
        ec2.modify_volume(VolumeId=vid, Size=size)
    with pytest.raises(ClientError) as e:
        ec2.modify_volume(VolumeId=vid, Size=14)
    assert error_code(e) == "VolumeModificationRateExceeded"
    untouched = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    with pytest.raises(ClientError) as e:
        ec2.describe_volumes_modifications(VolumeIds=[untouched])
    assert error_code(e) == "InvalidVolumeModification.NotFound"


def test_encryption_by_default(ec2):
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False
    assert ec2.get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
    assert ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["Encrypted"] is False
    assert ec2.enable_ebs_encryption_by_default()["EbsEncryptionByDefault"] is True
    v = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)
    assert v["Encrypted"] is True and v["KmsKeyId"].endswith("alias/aws/ebs")
    ec2.disable_ebs_encryption_by_default()
    assert ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"] is False


def test_describe_volume_status(ec2, cli):
    gp3 = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1, VolumeType="gp3")["VolumeId"]
    io2 = ec2.create_volume(AvailabilityZone="eu-west-1b", Size=4, VolumeType="io2", Iops=1000)["VolumeId"]
    st = {s["VolumeId"]: s for s in ec2.describe_volume_status()["VolumeStatuses"]}
    assert set(st) == {gp3, io2}
    assert st[gp3]["VolumeStatus"] == {"Status": "ok", "Details": [{"Name": "io-enabled", "Status": "passed"}, {"Name": "io-performance", "Status": "not-applicable"}]}
    assert st[io2]["VolumeStatus"]["Details"][1] == {"Name": "io-performance", "Status": "normal"}
    assert st[io2]["AvailabilityZone"] == "eu-west-1b" and st[io2]["Events"] == [] and st[io2]["Actions"] == []
    only = ec2.describe_volume_status(Filters=[{"Name": "availability-zone", "Values": ["eu-west-1b"]}])["VolumeStatuses"]
    assert [s["VolumeId"] for s in only] == [io2]
    normal = ec2.describe_volume_status(Filters=[{"Name": "volume-status.details-status", "Values": ["normal"]}])["VolumeStatuses"]
    assert [s["VolumeId"] for s in normal] == [io2]
    page = ec2.describe_volume_status(MaxResults=5)
    assert len(page["VolumeStatuses"]) == 2 and "NextToken" not in page
    with pytest.raises(ClientError) as e:
        ec2.describe_volume_status(VolumeIds=["vol-0123456789abcdef0"])
    assert error_code(e) == "InvalidVolume.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_volume_status(Filters=[{"Name": "bogus", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"
    assert [s["VolumeId"] for s in cli("ec2", "describe-volume-status", "--volume-ids", gp3)["VolumeStatuses"]] == [gp3]


def test_volume_attributes(ec2, cli):
    vol = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1)["VolumeId"]
    got = ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")
    assert (got["VolumeId"], got["AutoEnableIO"]) == (vol, {"Value": False})
    ec2.modify_volume_attribute(VolumeId=vol, AutoEnableIO={"Value": True})
    assert ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")["AutoEnableIO"] == {"Value": True}
    assert ec2.describe_volume_attribute(VolumeId=vol, Attribute="productCodes")["ProductCodes"] == []
    with pytest.raises(ClientError) as e:
        ec2.describe_volume_attribute(VolumeId=vol, Attribute="size")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.modify_volume_attribute(VolumeId=vol)
    assert error_code(e) == "MissingParameter"
    with pytest.raises(ClientError) as e:
        ec2.modify_volume_attribute(VolumeId="vol-0123456789abcdef0", AutoEnableIO={"Value": True})
    assert error_code(e) == "InvalidVolume.NotFound"
    cli("ec2", "modify-volume-attribute", "--volume-id", vol, "--no-auto-enable-io")
    assert cli("ec2", "describe-volume-attribute", "--volume-id", vol, "--attribute", "autoEnableIO")["AutoEnableIO"] == {"Value": False}


def test_a_modification_whose_growth_fails_is_failed_and_changes_nothing(kumo, ec2):
    """The modification is recorded as an intent, then its effect made; when the file cannot
    grow, the modification says `failed` and the volume keeps its size and type, as a failed
    EBS modification leaves it. Never an InternalError with the new size already recorded."""
    vid = ec2.create_volume(AvailabilityZone="eu-west-1a", Size=1, VolumeType="gp2")["VolumeId"]
    os.remove(volume_file(kumo, vid))  # the host lost the file: no growth can be made
    m = ec2.modify_volume(VolumeId=vid, Size=5, VolumeType="gp3")["VolumeModification"]
    assert (m["ModificationState"], m["OriginalSize"], m["TargetSize"]) == ("failed", 1, 5)
    assert m["StatusMessage"]
    v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
    assert (v["Size"], v["VolumeType"]) == (1, "gp2")
    mods = ec2.describe_volumes_modifications(VolumeIds=[vid])["VolumesModifications"]
    assert [x["ModificationState"] for x in mods] == ["failed"]
    # A failed modification does not block the next one.
    with pytest.raises(ClientError) as e:
        ec2.modify_volume(VolumeId=vid, Size=0)
    assert error_code(e) == "InvalidParameterValue"


def test_create_volume_checks_required_members_before_the_zone(ec2):
    # AWS answers the missing size first, even for a zone that does not exist.
    with pytest.raises(ClientError) as e:
        ec2.create_volume(AvailabilityZone="eu-west-1z")
    assert error_code(e) == "MissingParameter"
    assert e.value.response["Error"]["Message"] == "The request must contain the parameter size/snapshot"
    with pytest.raises(ClientError) as e:
        ec2.create_volume(AvailabilityZone="eu-west-1z", Size=1)
    assert error_code(e) == "InvalidZone.NotFound"
