"""Instances on the null driver: launch settings, the lifecycle, attributes, status, interfaces."""

import base64

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


@pytest.fixture
def ami(kumo):
    import boto3

    ssm = boto3.client("ssm", endpoint_url=kumo.endpoint, region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
    return ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]


def run(ec2, ami, **kw):
    kw.setdefault("InstanceType", "t3.micro")
    return ec2.run_instances(ImageId=ami, MinCount=kw.pop("MinCount", 1), MaxCount=kw.pop("MaxCount", 1), **kw)


def describe(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def test_ssm_and_images(kumo, ec2, ami):
    import boto3

    ssm = boto3.client("ssm", endpoint_url=kumo.endpoint, region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t")
    p = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]
    assert p["ARN"] == "arn:aws:ssm:eu-west-1::parameter/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name="/aws/service/nothing")
    assert error_code(e) == "ParameterNotFound"
    many = ssm.get_parameters(Names=["/aws/service/debian/release/12/latest/amd64", "/nope"])
    assert len(many["Parameters"]) == 1 and many["InvalidParameters"] == ["/nope"]
    # Under the null driver no guest runs, so no agent is online.
    run(ec2, ami)
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    with pytest.raises(ClientError) as e:
        ssm.describe_instance_information(MaxResults=51)
    assert error_code(e) == "ValidationException"
    imgs = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*"]}, {"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    assert [i["ImageId"] for i in imgs] == [ami]
    assert imgs[0]["ImageOwnerAlias"] == "amazon" and imgs[0]["OwnerId"] == "137112412989"
    with pytest.raises(ClientError) as e:
        ec2.describe_images(ImageIds=["ami-0123456789abcdef0"])
    assert error_code(e) == "InvalidAMIID.NotFound"
    assert e.value.response["Error"]["Message"] == "The image id '[ami-0123456789abcdef0]' does not exist"


def test_launch_and_describe(ec2, ami):
    ec2.create_key_pair(KeyName="k", KeyType="ed25519")
    ud = "#!/bin/sh\necho hello > /tmp/marker\n"
    res = run(ec2, ami, KeyName="k", UserData=ud, MinCount=2, MaxCount=3,
              TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}],
              Monitoring={"Enabled": True}, DisableApiTermination=False, MetadataOptions={"HttpTokens": "required"})
    assert res["ReservationId"].startswith("r-") and len(res["Instances"]) == 3
    inst = res["Instances"][0]
    assert inst["State"] == {"Code": 0, "Name": "pending"}
    assert inst["InstanceType"] == "t3.micro" and inst["KeyName"] == "k" and inst["ImageId"] == ami
    assert inst["Placement"]["AvailabilityZone"].startswith("eu-west-1")
    assert [i["AmiLaunchIndex"] for i in res["Instances"]] == [0, 1, 2]
    iid = inst["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    d = describe(ec2, iid)
    assert d["State"]["Name"] == "running"
    assert d["StateReason"]["Code"] == "Kumo.NullDriver", "the null driver says the instance runs nowhere"
    assert d["Tags"] == [{"Key": "Name", "Value": "web"}]
    assert d["MetadataOptions"]["HttpTokens"] == "required"
    assert d["Monitoring"]["State"] == "enabled"
    assert d["NetworkInterfaces"][0]["Attachment"]["DeviceIndex"] == 0
    assert d["PrivateIpAddress"] == d["NetworkInterfaces"][0]["PrivateIpAddress"]
    # The default subnet maps public IPs on launch.
    assert d["PublicIpAddress"] and d["PublicDnsName"].startswith("ec2-")
    ua = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(ua).decode() == ud
    found = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["web"]}, {"Name": "instance-state-name", "Values": ["running"]}])
    assert sum(len(r["Instances"]) for r in found["Reservations"]) == 3
    assert len(found["Reservations"]) == 1, "one launch, one reservation"
    by_ip = ec2.describe_instances(Filters=[{"Name": "private-ip-address", "Values": [d["PrivateIpAddress"]]}])["Reservations"]
    assert [i["InstanceId"] for r in by_ip for i in r["Instances"]] == [iid]
    eni = d["NetworkInterfaces"][0]["NetworkInterfaceId"]
    by_eni = ec2.describe_instances(Filters=[{"Name": "network-interface.network-interface-id", "Values": [eni]}])["Reservations"]
    assert [i["InstanceId"] for r in by_eni for i in r["Instances"]] == [iid]
    e = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    assert e["Status"] == "in-use" and e["Attachment"]["InstanceId"] == iid


def test_launch_errors(ec2, ami, cli):
    cases = [
        (dict(ImageId="ami-0123456789abcdef0"), "InvalidAMIID.NotFound", "The image id '[ami-0123456789abcdef0]' does not exist"),
        (dict(ImageId="banana"), "InvalidAMIID.Malformed", 'Invalid id: "banana" (expecting "ami-...")'),
        (dict(KeyName="nope"), "InvalidKeyPair.NotFound", "The key pair 'nope' does not exist"),
        (dict(InstanceType="t9.huge"), "InvalidParameterValue", "Invalid value 't9.huge' for InstanceType."),
        (dict(InstanceType="t4g.micro"), "InvalidParameterValue", None),
        (dict(UserData="x" * 17000), "InvalidParameterValue", "User data is limited to 16384 bytes"),
        (dict(SubnetId="subnet-0123456789abcdef0"), "InvalidSubnetID.NotFound", None),
    ]
    for extra, code, msg in cases:
        kw = dict(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)
        kw.update(extra)
        with pytest.raises(ClientError) as e:
            ec2.run_instances(**kw)
        assert error_code(e) == code, extra
        if msg:
            assert e.value.response["Error"]["Message"] == msg
    arch = None
    with pytest.raises(ClientError) as e:
        run(ec2, ami, InstanceType="t4g.micro")
    arch = e.value.response["Error"]["Message"]
    assert arch.startswith("The architecture 'arm64' of the specified instance type does not match the architecture 'x86_64' of the specified AMI.")
    old = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu/images/hvm-ssd/ubuntu-trusty*"]}])["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as e:
        run(ec2, old, InstanceType="t3.micro")
    assert "Elastic Network Adapter (ENA) is required" in e.value.response["Error"]["Message"]
    assert run(ec2, old, InstanceType="t2.micro")["Instances"][0]["InstanceType"] == "t2.micro"
    a_subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    with pytest.raises(ClientError) as e:
        run(ec2, ami, PrivateIpAddress="172.31.0.50", NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a_subnet}])
    assert error_code(e) == "InvalidParameterCombination"
    assert e.value.response["Error"]["Message"] == "Network interfaces and an instance-level private IP address may not be specified on the same request"
    with pytest.raises(ClientError) as e:
        run(ec2, ami, SubnetId=a_subnet, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": a_subnet}])
    assert e.value.response["Error"]["Message"] == "Network interfaces and an instance-level subnet ID may not be specified on the same request"
    # The CLI's --associate-public-ip-address moves subnet and address into the interface.
    s0 = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["eu-west-1a"]}, {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    out = cli("ec2", "run-instances", "--image-id", ami, "--instance-type", "t3.micro", "--subnet-id", s0["SubnetId"],
              "--associate-public-ip-address", "--private-ip-address", "172.31.0.50")
    assert out["Instances"][0]["PrivateIpAddress"] == "172.31.0.50"
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    with pytest.raises(ClientError) as e:
        run(ec2, ami, SubnetId=sid, SecurityGroups=["default"])
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("InvalidParameterCombination", "The parameter groupName cannot be used with the parameter subnet")
    other = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]]}])["SecurityGroups"][0]["GroupId"]
    with pytest.raises(ClientError) as e:
        run(ec2, ami, SubnetId=sid, SecurityGroupIds=[other])
    assert error_code(e) == "InvalidParameter"
    with pytest.raises(ClientError) as e:
        run(ec2, ami, SubnetId=sid, Placement={"AvailabilityZone": "eu-west-1c"})
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=0, MaxCount=0)
    assert e.value.response["Error"]["Message"] == "Maximum instance count must be greater than zero"


def test_lifecycle_and_errors(ec2, ami):
    iid = run(ec2, ami, DisableApiTermination=True)["Instances"][0]["InstanceId"]
    d = describe(ec2, iid)
    public = d["PublicIpAddress"]
    out = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert (out["PreviousState"]["Name"], out["CurrentState"]["Name"]) == ("running", "stopping")
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    d = describe(ec2, iid)
    assert d["StateReason"]["Code"] == "Client.UserInitiatedShutdown"
    assert d["StateTransitionReason"].startswith("User initiated (") and d["StateTransitionReason"].endswith(" GMT)")
    assert "PublicIpAddress" not in d, "a public IP goes at stop"
    again = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert (again["PreviousState"]["Name"], again["CurrentState"]["Name"]) == ("stopped", "stopped")
    with pytest.raises(ClientError) as e:
        ec2.reboot_instances(InstanceIds=[iid])
    assert error_code(e) == "IncorrectInstanceState"
    out = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert (out["PreviousState"]["Name"], out["CurrentState"]["Name"]) == ("stopped", "pending")
    d = describe(ec2, iid)
    assert d["State"]["Name"] == "running" and d["PublicIpAddress"], "a new public IP at start"
    assert d["PublicIpAddress"] != public or True  # the pool may hand back the same free address
    running_again = ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
    assert (running_again["PreviousState"]["Name"], running_again["CurrentState"]["Name"]) == ("running", "running")
    ec2.reboot_instances(InstanceIds=[iid])
    with pytest.raises(ClientError) as e:
        ec2.terminate_instances(InstanceIds=[iid])
    assert error_code(e) == "OperationNotPermitted"
    assert e.value.response["Error"]["Message"] == f"The instance '{iid}' may not be terminated. Modify its 'disableApiTermination' instance attribute and try again."
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiTermination={"Value": False})
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": True})
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert error_code(e) == "OperationNotPermitted"
    out = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert out["CurrentState"]["Name"] == "shutting-down"
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    with pytest.raises(ClientError) as e:
        ec2.start_instances(InstanceIds=[iid])
    assert e.value.response["Error"]["Message"] == f"The instance '{iid}' is not in a state from which it can be started."
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert e.value.response["Error"]["Message"] == f"This instance '{iid}' is not in a state from which it can be stopped."
    # Its interface, created by the launch, went with it.
    assert ec2.describe_network_interfaces(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["NetworkInterfaces"] == []
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=["i-0123456789abcdef0", "i-0123456789abcdef1"])
    assert e.value.response["Error"]["Message"] == "The instance IDs 'i-0123456789abcdef0, i-0123456789abcdef1' do not exist"
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=["i-nope"])
    assert error_code(e) == "InvalidInstanceID.Malformed"


def test_instance_store_backed_cannot_stop(ec2):
    img = ec2.describe_images(Filters=[{"Name": "root-device-type", "Values": ["instance-store"]}])["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as e:
        run(ec2, img, InstanceType="t3.micro")
    assert error_code(e) == "InvalidParameterValue"
    iid = run(ec2, img, InstanceType="m5d.large")["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[iid])
    assert error_code(e) == "UnsupportedOperation"
    assert e.value.response["Error"]["Message"] == f"The instance '{iid}' does not have an 'ebs' root device type and cannot be stopped."
    ec2.reboot_instances(InstanceIds=[iid])
    ec2.terminate_instances(InstanceIds=[iid])


def test_downtime_rules(ec2, ami):
    iid = run(ec2, ami)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.large"})
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("IncorrectInstanceState", f"The instance '{iid}' is not in the 'stopped' state.")
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"echo hi"})
    assert error_code(e) == "IncorrectInstanceState"
    ec2.stop_instances(InstanceIds=[iid])
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.large"})
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t4g.large"})
    assert error_code(e) == "InvalidParameterValue"
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"echo new"})
    ec2.start_instances(InstanceIds=[iid])
    d = describe(ec2, iid)
    assert d["InstanceType"] == "t3.large"
    assert d["CpuOptions"]["CoreCount"] == 1
    got = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"]
    assert got == "t3.large"
    assert base64.b64decode(ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]) == b"echo new"
    ec2.modify_instance_attribute(InstanceId=iid, SourceDestCheck={"Value": False})
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")["SourceDestCheck"]["Value"] is False
    ec2.reset_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="sourceDestCheck")["SourceDestCheck"]["Value"] is True
    with pytest.raises(ClientError) as e:
        ec2.reset_instance_attribute(InstanceId=iid, Attribute="instanceType")
    assert error_code(e) == "InvalidParameterValue"
    ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    v = ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior")
    assert v["InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"


def test_instance_status(ec2, ami):
    a = run(ec2, ami)["Instances"][0]["InstanceId"]
    b = run(ec2, ami)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[b])
    running = ec2.describe_instance_status()["InstanceStatuses"]
    assert [s["InstanceId"] for s in running] == [a]
    assert running[0]["InstanceStatus"]["Status"] == "ok" and running[0]["SystemStatus"]["Status"] == "ok"
    every = ec2.describe_instance_status(IncludeAllInstances=True)["InstanceStatuses"]
    st = {s["InstanceId"]: s for s in every}
    assert st[b]["InstanceState"]["Name"] == "stopped" and st[b]["InstanceStatus"]["Status"] == "not-applicable"
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=[a], WaiterConfig={"Delay": 1, "MaxAttempts": 3})


def test_network_interface_attachments(ec2, ami):
    d = run(ec2, ami, InstanceType="t3.micro")["Instances"][0]
    iid = d["InstanceId"]
    sid = d["SubnetId"]
    primary = d["NetworkInterfaces"][0]
    with pytest.raises(ClientError) as e:
        ec2.detach_network_interface(AttachmentId=primary["Attachment"]["AttachmentId"])
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("OperationNotPermitted", "The network interface at device index 0 cannot be detached.")
    with pytest.raises(ClientError) as e:
        ec2.delete_network_interface(NetworkInterfaceId=primary["NetworkInterfaceId"])
    assert error_code(e) == "InvalidNetworkInterface.InUse"
    second = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    third = ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"]
    att = ec2.attach_network_interface(NetworkInterfaceId=second, InstanceId=iid, DeviceIndex=1)["AttachmentId"]
    with pytest.raises(ClientError) as e:
        ec2.attach_network_interface(NetworkInterfaceId=third, InstanceId=iid, DeviceIndex=1)
    assert e.value.response["Error"]["Message"] == f"Instance '{iid}' already has an interface attached at device index '1'."
    # A t3.micro takes two interfaces.
    with pytest.raises(ClientError) as e:
        ec2.attach_network_interface(NetworkInterfaceId=third, InstanceId=iid, DeviceIndex=2)
    assert (error_code(e), e.value.response["Error"]["Message"]) == ("AttachmentLimitExceeded", "Interface count 3 exceeds the limit for t3.micro")
    assert len(describe(ec2, iid)["NetworkInterfaces"]) == 2
    # And two addresses per interface.
    with pytest.raises(ClientError) as e:
        ec2.assign_private_ip_addresses(NetworkInterfaceId=second, SecondaryPrivateIpAddressCount=2)
    assert error_code(e) == "PrivateIpAddressLimitExceeded"
    ec2.detach_network_interface(AttachmentId=att)
    assert ec2.describe_network_interfaces(NetworkInterfaceIds=[second])["NetworkInterfaces"][0]["Status"] == "available"
    other_zone = [s for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"] if s["SubnetId"] != sid][0]["SubnetId"]
    far = ec2.create_network_interface(SubnetId=other_zone)["NetworkInterface"]["NetworkInterfaceId"]
    with pytest.raises(ClientError) as e:
        ec2.attach_network_interface(NetworkInterfaceId=far, InstanceId=iid, DeviceIndex=1)
    assert error_code(e) == "InvalidParameterCombination"
    with pytest.raises(ClientError) as e:
        run(ec2, ami, InstanceType="t3.micro", NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": sid, "SecondaryPrivateIpAddressCount": 2}])
    assert error_code(e) == "PrivateIpAddressLimitExceeded"


def test_elastic_ip_on_an_instance(ec2, ami):
    d = run(ec2, ami)["Instances"][0]
    alloc = ec2.allocate_address(Domain="vpc")
    ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=d["InstanceId"])
    got = describe(ec2, d["InstanceId"])
    assert got["PublicIpAddress"] == alloc["PublicIp"]
    assert ec2.describe_addresses(AllocationIds=[alloc["AllocationId"]])["Addresses"][0]["InstanceId"] == d["InstanceId"]
    # An Elastic IP stays through stop and start.
    ec2.stop_instances(InstanceIds=[d["InstanceId"]])
    ec2.start_instances(InstanceIds=[d["InstanceId"]])
    assert describe(ec2, d["InstanceId"])["PublicIpAddress"] == alloc["PublicIp"]


def test_describe_paging_counts_instances(ec2, ami):
    run(ec2, ami, MinCount=7, MaxCount=7)
    pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
    counts = [sum(len(r["Instances"]) for r in p["Reservations"]) for p in pages]
    assert counts == [5, 2]
    with pytest.raises(ClientError) as e:
        ec2.describe_instances(InstanceIds=[pages[0]["Reservations"][0]["Instances"][0]["InstanceId"]], MaxResults=5)
    assert error_code(e) == "InvalidParameterCombination"


def test_client_token_on_run_instances(ec2, ami):
    a = run(ec2, ami, ClientToken="launch-1")
    b = run(ec2, ami, ClientToken="launch-1")
    assert a["ReservationId"] == b["ReservationId"]
    assert [i["InstanceId"] for i in a["Instances"]] == [i["InstanceId"] for i in b["Instances"]]
    with pytest.raises(ClientError) as e:
        run(ec2, ami, ClientToken="launch-1", InstanceType="t3.small")
    assert error_code(e) == "IdempotentParameterMismatch"


def test_hibernate_and_force_stop(ec2, ami):
    plain = run(ec2, ami)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[plain], Hibernate=True)
    assert error_code(e) == "UnsupportedHibernationConfiguration"
    sleepy = run(ec2, ami, HibernationOptions={"Configured": True})["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[sleepy], Hibernate=True)
    d = describe(ec2, sleepy)
    assert (d["State"]["Name"], d["StateReason"]["Code"]) == ("stopped", "Client.UserInitiatedHibernate")
    assert d["HibernationOptions"]["Configured"] is True
    # Force does not get round stop protection; without it, a forced stop stops.
    ec2.modify_instance_attribute(InstanceId=plain, DisableApiStop={"Value": True})
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[plain], Force=True)
    assert error_code(e) == "OperationNotPermitted"
    ec2.modify_instance_attribute(InstanceId=plain, DisableApiStop={"Value": False})
    out = ec2.stop_instances(InstanceIds=[plain], Force=True)["StoppingInstances"][0]
    assert out["CurrentState"]["Name"] == "stopping"
    assert describe(ec2, plain)["State"]["Name"] == "stopped"


def test_settings_kumo_cannot_honour_are_refused_by_name(ec2, ami):
    for extra in (
        {"InstanceMarketOptions": {"MarketType": "spot"}},
        {"Placement": {"Tenancy": "host"}},
        {"Placement": {"HostId": "h-0123456789abcdef0"}},
        {"NetworkInterfaces": [{"DeviceIndex": 0, "InterfaceType": "efa"}]},
        {"NetworkInterfaces": [{"DeviceIndex": 0, "ConnectionTrackingSpecification": {"UdpTimeout": 30}}]},
    ):
        with pytest.raises(ClientError) as e:
            run(ec2, ami, **extra)
        assert error_code(e) == "Unsupported", extra
        assert e.value.response["Error"]["Message"].startswith("Kumo does not support the RunInstances setting")
    assert ec2.describe_instances()["Reservations"] == []


def test_modify_instance_metadata_options(ec2, ami):
    iid = run(ec2, ami)["Instances"][0]["InstanceId"]
    out = ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="required", HttpPutResponseHopLimit=2)
    assert out["InstanceId"] == iid
    opts = out["InstanceMetadataOptions"]
    assert (opts["State"], opts["HttpTokens"], opts["HttpPutResponseHopLimit"], opts["HttpEndpoint"]) == ("pending", "required", 2, "enabled")
    d = describe(ec2, iid)["MetadataOptions"]
    assert (d["State"], d["HttpTokens"], d["HttpPutResponseHopLimit"]) == ("applied", "required", 2)
    # A setting not given keeps its value.
    ec2.modify_instance_metadata_options(InstanceId=iid, HttpEndpoint="disabled")
    d = describe(ec2, iid)["MetadataOptions"]
    assert (d["HttpTokens"], d["HttpPutResponseHopLimit"], d["HttpEndpoint"]) == ("required", 2, "disabled")
    assert ec2.describe_instances(Filters=[{"Name": "metadata-options.http-put-response-hop-limit", "Values": ["2"]}])["Reservations"]
    for bad in (0, 65):
        with pytest.raises(ClientError) as e:
            ec2.modify_instance_metadata_options(InstanceId=iid, HttpPutResponseHopLimit=bad)
        assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        run(ec2, ami, MetadataOptions={"HttpPutResponseHopLimit": 65})
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="sometimes")
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId="i-0123456789abcdef0", HttpTokens="optional")
    assert error_code(e) == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.modify_instance_metadata_options(InstanceId=iid, HttpTokens="optional", DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert describe(ec2, iid)["MetadataOptions"]["HttpTokens"] == "required"


def test_run_instances_answers_what_describe_reads(ec2, ami):
    # RunInstances builds its answer from the records it committed; DescribeInstances reads
    # them back. Apart from the state, which moves on, the two must be the same.
    out = run(
        ec2,
        ami,
        MinCount=3,
        MaxCount=3,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "z", "Value": "1"}, {"Key": "a", "Value": "2"}, {"Key": "m", "Value": ""}]}],
        BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "VolumeType": "gp3"}}],
    )
    ids = [i["InstanceId"] for i in out["Instances"]]
    read = {
        i["InstanceId"]: i
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
    }
    moving = ("State", "StateReason", "StateTransitionReason")
    for launched in out["Instances"]:
        described = read[launched["InstanceId"]]
        assert len(launched["BlockDeviceMappings"]) == 2 and len(launched["NetworkInterfaces"]) == 1
        assert sorted(t["Key"] for t in launched["Tags"]) == ["a", "m", "z"]
        for k in moving:
            launched.pop(k, None)
            described.pop(k, None)
        assert launched == described


def test_empty_placement_names_are_unset(ec2, ami):
    # Terraform's aws_instance with no availability_zone sends `Placement.AvailabilityZone=`
    # and `Placement.GroupName=`; AWS launches into the default subnet's first zone.
    first = sorted(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"])[0]
    inst = run(ec2, ami, Placement={"AvailabilityZone": "", "GroupName": ""})["Instances"][0]
    assert inst["Placement"]["AvailabilityZone"] == first
    assert describe(ec2, inst["InstanceId"])["Placement"]["AvailabilityZone"] == first
    with pytest.raises(ClientError) as e:
        run(ec2, ami, Placement={"AvailabilityZone": "eu-west-1z"})
    assert error_code(e) == "InvalidParameterValue"


def test_block_device_address_and_option_filters_match(ec2, ami):
    # Each of these filter names used to be accepted and then match nothing.
    inst = run(ec2, ami, BlockDeviceMappings=[{"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": False}}])["Instances"][0]
    iid = inst["InstanceId"]
    other = run(ec2, ami)["Instances"][0]["InstanceId"]
    got = describe(ec2, iid)
    extra = next(m for m in got["BlockDeviceMappings"] if m["DeviceName"] == "/dev/sdf")
    public = got["PublicIpAddress"]

    def found(name, value):
        res = ec2.describe_instances(Filters=[{"Name": name, "Values": [value]}])["Reservations"]
        return sorted(i["InstanceId"] for r in res for i in r["Instances"])

    assert found("block-device-mapping.volume-id", extra["Ebs"]["VolumeId"]) == [iid]
    assert found("block-device-mapping.volume-id", "vol-0123456789abcdef0") == []
    assert found("block-device-mapping.device-name", "/dev/sdf") == [iid]
    assert found("block-device-mapping.delete-on-termination", "false") == [iid]
    assert found("block-device-mapping.status", extra["Ebs"]["Status"]) == sorted([iid, other])
    assert found("block-device-mapping.status", "detached") == []
    assert found("network-interface.association.public-ip", public) == [iid]
    assert found("network-interface.addresses.association.public-ip", public) == [iid]
    assert found("network-interface.association.public-ip", "203.0.113.254") == []
    assert found("network-interface.attachment.instance-id", iid) == [iid]
    assert found("metadata-options.state", "applied") == sorted([iid, other])
    assert found("metadata-options.state", "pending") == []
    assert found("maintenance-options.auto-recovery", "default") == sorted([iid, other])
    assert found("maintenance-options.auto-recovery", "disabled") == []


def test_cpu_options_are_checked_recorded_and_returned(ec2, ami):
    info = ec2.describe_instance_types(InstanceTypes=["m5.large"])["InstanceTypes"][0]["VCpuInfo"]
    assert (info["ValidCores"], info["ValidThreadsPerCore"]) == ([1], [1, 2])
    inst = run(ec2, ami, InstanceType="m5.large", CpuOptions={"CoreCount": 1, "ThreadsPerCore": 1})["Instances"][0]
    assert inst["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    assert describe(ec2, inst["InstanceId"])["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 1}
    plain = run(ec2, ami, InstanceType="m5.large")["Instances"][0]
    assert plain["CpuOptions"] == {"CoreCount": 1, "ThreadsPerCore": 2}
    for bad, code in (
        ({"CoreCount": 2, "ThreadsPerCore": 1}, "InvalidParameterValue"),
        ({"CoreCount": 1, "ThreadsPerCore": 3}, "InvalidParameterValue"),
        ({"CoreCount": 1}, "MissingParameter"),
    ):
        with pytest.raises(ClientError) as e:
            run(ec2, ami, InstanceType="m5.large", CpuOptions=bad)
        assert error_code(e) == code, bad
    with pytest.raises(ClientError) as e:
        run(ec2, ami, InstanceType="m5.large", CpuOptions={"CoreCount": 1})
    assert e.value.response["Error"]["Message"] == "When specifying CpuOptions you must specify both CoreCount and ThreadsPerCore."
    # A type change takes the new type's defaults.
    iid = inst["InstanceId"]
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "m5.xlarge"})
    assert describe(ec2, iid)["CpuOptions"] == {"CoreCount": 2, "ThreadsPerCore": 2}


def test_kumo_ssh_says_why_it_cannot_reach_a_null_driver_instance(kumo, ec2, ami):
    import subprocess

    from conftest import KUMO_BIN

    iid = run(ec2, ami)["Instances"][0]["InstanceId"]
    p = subprocess.run([KUMO_BIN, "ssh", "--endpoint-url", kumo.endpoint, "--region", "eu-west-1", iid, "--", "true"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 255 and "runs no guest" in p.stderr and "null" in p.stderr, p.stderr
    p = subprocess.run([KUMO_BIN, "ssh", "--endpoint-url", kumo.endpoint, "--region", "eu-west-1", "i-0123456789abcdef0"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 255 and "InvalidInstanceID.NotFound" in p.stderr, p.stderr


def test_monitor_and_unmonitor_instances(ec2, ami):
    """Issue 15: detailed monitoring is switched on and off: `pending` then `enabled`,
    `disabling` then `disabled`, as DescribeInstances and its filter show."""
    import time
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    state = lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Monitoring"]["State"]
    assert state() == "disabled"
    out = ec2.monitor_instances(InstanceIds=[iid])["InstanceMonitorings"]
    assert out == [{"InstanceId": iid, "Monitoring": {"State": "pending"}}]
    deadline = time.time() + 10
    while state() != "enabled" and time.time() < deadline:
        time.sleep(0.2)
    assert state() == "enabled"
    got = ec2.describe_instances(Filters=[{"Name": "monitoring-state", "Values": ["enabled"]}])["Reservations"]
    assert [i["InstanceId"] for r in got for i in r["Instances"]] == [iid]
    assert ec2.unmonitor_instances(InstanceIds=[iid])["InstanceMonitorings"][0]["Monitoring"]["State"] == "disabling"
    deadline = time.time() + 10
    while state() != "disabled" and time.time() < deadline:
        time.sleep(0.2)
    assert state() == "disabled"
    with pytest.raises(ClientError) as e:
        ec2.monitor_instances(InstanceIds=["i-0123456789abcdef0"])
    assert error_code(e) == "InvalidInstanceID.NotFound"
    with pytest.raises(ClientError) as e:
        ec2.monitor_instances(InstanceIds=[iid], DryRun=True)
    assert error_code(e) == "DryRunOperation"
    assert state() == "disabled"
