"""`kumo serve --moto-compat`: a suite written against moto's server mode finds moto's
account and moto's public AMIs (moto's ids, in every region) and launches from them;
everything else stays AWS's behaviour."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code, make_client, serving

# From moto's amis.json: a Windows image, an Amazon Linux one, the EKS images whose ids are
# not of AWS's form, a paravirtual one.
WINDOWS_2008 = "ami-12c6146b"
AMZN2 = "amzn2-ami-hvm-2.0.20180810-x86_64-gp2"
EKS_LINUX = "ami-ekslinux"
PARAVIRTUAL = "ami-8104a4f8"


@pytest.fixture(scope="module")
def moto():
    yield from serving("--moto-compat")


def clients(endpoint, region="us-east-1"):
    # moto's own documentation's credentials.
    ec2 = make_client(endpoint, region=region, key="testing", secret="testing")
    sts = make_client(endpoint, service="sts", region=region, key="testing", secret="testing")
    return ec2, sts


def test_motos_account_and_catalog(moto):
    ec2, sts = clients(moto.endpoint)
    assert sts.get_caller_identity()["Account"] == "123456789012"
    # The same id in every region, with moto's name, owner and platform.
    for region in ["us-east-1", "eu-west-1", "ap-southeast-2"]:
        img = clients(moto.endpoint, region)[0].describe_images(ImageIds=[WINDOWS_2008])["Images"][0]
        assert img["ImageId"] == WINDOWS_2008
        assert img["Name"] == "Windows_Server-2008-R2_SP1-English-64Bit-Base-2017.10.13"
        assert img["OwnerId"] == "801119661308" and img["ImageOwnerAlias"] == "amazon"
        assert img["Platform"] == "windows" and img["PlatformDetails"] == "Windows"
        assert img["Public"] is True and img["State"] == "available"
    by_name = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [AMZN2]}])["Images"]
    assert [i["ImageId"] for i in by_name] == ["ami-04681a1dbd79675a5"]
    assert by_name[0]["VirtualizationType"] == "hvm" and by_name[0]["RootDeviceType"] == "ebs"
    windows = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "platform", "Values": ["windows"]}])["Images"]
    assert len(windows) == 24
    pv = ec2.describe_images(ImageIds=[PARAVIRTUAL])["Images"][0]
    assert pv["VirtualizationType"] == "paravirtual"
    # Kumo's own catalog is still there.
    al2023 = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*"]}])["Images"]
    assert al2023


def test_launches_from_motos_images(moto):
    ec2, _ = clients(moto.endpoint)
    moto.reset()
    for image, itype in [(WINDOWS_2008, "t2.micro"), (EKS_LINUX, "t3.micro"), ("ami-0b301ce3ce3475r4f", "t3.micro")]:
        inst = ec2.run_instances(ImageId=image, InstanceType=itype, MinCount=1, MaxCount=1)["Instances"][0]
        assert inst["ImageId"] == image
    res = ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [WINDOWS_2008]}])["Reservations"]
    assert len(res) == 1
    # An instance of a Windows image is a Windows instance, as AWS bills and shows it.
    win = res[0]["Instances"][0]
    assert (win["Platform"], win["PlatformDetails"], win["UsageOperation"]) == ("windows", "Windows", "RunInstances:0002")
    by_platform = ec2.describe_instances(Filters=[{"Name": "platform", "Values": ["windows"]}])["Reservations"]
    assert [i["InstanceId"] for r in by_platform for i in r["Instances"]] == [win["InstanceId"]]
    linux = ec2.describe_instances(Filters=[{"Name": "image-id", "Values": [EKS_LINUX]}])["Reservations"][0]["Instances"][0]
    assert "Platform" not in linux and linux["PlatformDetails"] == "Linux/UNIX"
    # moto's default type, m1.small, runs the paravirtual image; a type that runs only HVM
    # images refuses it, as AWS does.
    ec2.run_instances(ImageId=PARAVIRTUAL, InstanceType="m1.small", MinCount=1, MaxCount=1)
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=PARAVIRTUAL, InstanceType="t2.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidParameterCombination"
    assert e.value.response["Error"]["Message"].startswith(
        "Virtualization type 'hvm' is required for instances of type 't2.micro'.")


def test_everything_else_is_still_aws(moto):
    ec2, _ = clients(moto.endpoint)
    # A catalog image is not the caller's to deregister.
    with pytest.raises(ClientError) as e:
        ec2.deregister_image(ImageId=WINDOWS_2008)
    assert error_code(e) == "AuthFailure"
    # Ids outside the catalog are checked as AWS checks them.
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="ami-nothere", InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidAMIID.Malformed"
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidAMIID.NotFound"
    # An account the access key names still wins.
    sts = make_client(moto.endpoint, service="sts", key="111122223333", secret="x")
    assert sts.get_caller_identity()["Account"] == "111122223333"


def test_without_the_flag_motos_ids_do_not_exist(kumo, ec2):
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=WINDOWS_2008, InstanceType="t3.micro", MinCount=1, MaxCount=1)
    assert error_code(e) == "InvalidAMIID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=[EKS_LINUX])
    assert error_code(e) == "InvalidAMIID.Malformed"
    sts = make_client(kumo.endpoint, service="sts", key="testing", secret="testing")
    assert sts.get_caller_identity()["Account"] == "000000000000"
