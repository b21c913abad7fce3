"""Issue 15: launch templates. Create, version, describe, modify and delete them through boto3
and the AWS CLI with AWS's answers, read an instance back as template data, and launch from
a template with the call's parameters merged over the template's."""

import json
import base64

from conftest import fails, latest_al2023


def test_create_describe_and_version_a_template(kumo, ec2):
    ami = latest_al2023(kumo)
    lt = ec2.create_launch_template(
        LaunchTemplateName="web-tier", VersionDescription="first",
        LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro",
                            "MetadataOptions": {"HttpTokens": "required"},
                            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]}]},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a"}]}],
    )["LaunchTemplate"]
    assert lt["LaunchTemplateId"].startswith("lt-") and len(lt["LaunchTemplateId"]) == 20
    assert (lt["LaunchTemplateName"], lt["DefaultVersionNumber"], lt["LatestVersionNumber"]) == ("web-tier", 1, 1)
    assert lt["CreatedBy"].startswith("arn:aws:iam::") and lt["Tags"] == [{"Key": "team", "Value": "a"}]
    lid = lt["LaunchTemplateId"]
    # A name is the region's once.
    assert fails("InvalidLaunchTemplateName.AlreadyExistsException", ec2.create_launch_template,
                 LaunchTemplateName="web-tier", LaunchTemplateData={"InstanceType": "t3.micro"}) == "Launch template name already in use."
    # Version 2 from version 1: its members, with the new ones over them.
    v2 = ec2.create_launch_template_version(LaunchTemplateId=lid, SourceVersion="1", VersionDescription="bigger",
                                            LaunchTemplateData={"InstanceType": "t3.large"})["LaunchTemplateVersion"]
    assert (v2["VersionNumber"], v2["DefaultVersion"], v2["VersionDescription"]) == (2, False, "bigger")
    assert v2["LaunchTemplateData"]["InstanceType"] == "t3.large"
    assert v2["LaunchTemplateData"]["ImageId"] == ami
    assert v2["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    v3 = ec2.create_launch_template_version(LaunchTemplateName="web-tier",
                                            LaunchTemplateData={"ImageId": ami})["LaunchTemplateVersion"]
    assert v3["VersionNumber"] == 3 and "InstanceType" not in v3["LaunchTemplateData"]
    got = ec2.describe_launch_templates(LaunchTemplateNames=["web-tier"])["LaunchTemplates"][0]
    assert (got["LaunchTemplateId"], got["DefaultVersionNumber"], got["LatestVersionNumber"]) == (lid, 1, 3)
    assert ec2.describe_launch_templates(Filters=[{"Name": "tag:team", "Values": ["a"]}])["LaunchTemplates"][0]["LaunchTemplateId"] == lid
    assert ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": ["nope"]}])["LaunchTemplates"] == []
    # Versions by number, alias and range, and by filter.
    desc = lambda **kw: [v["VersionNumber"] for v in ec2.describe_launch_template_versions(LaunchTemplateId=lid, **kw)["LaunchTemplateVersions"]]
    assert desc() == [1, 2, 3]
    assert desc(Versions=["$Latest"]) == [3]
    assert desc(Versions=["$Default", "2"]) == [1, 2]
    assert desc(MinVersion="2") == [2, 3]
    assert desc(MaxVersion="2") == [1, 2]
    assert desc(Filters=[{"Name": "instance-type", "Values": ["t3.large"]}]) == [2]
    assert desc(Filters=[{"Name": "is-default-version", "Values": ["true"]}]) == [1]
    # Pages of one version each, in order.
    page = ec2.describe_launch_template_versions(LaunchTemplateId=lid, MaxResults=1)
    seen = [v["VersionNumber"] for v in page["LaunchTemplateVersions"]]
    while page.get("NextToken"):
        page = ec2.describe_launch_template_versions(LaunchTemplateId=lid, MaxResults=1, NextToken=page["NextToken"])
        seen += [v["VersionNumber"] for v in page["LaunchTemplateVersions"]]
    assert seen == [1, 2, 3]
    # The default moves; version 1 can go then, the default never.
    assert ec2.modify_launch_template(LaunchTemplateId=lid, DefaultVersion="2")["LaunchTemplate"]["DefaultVersionNumber"] == 2
    out = ec2.delete_launch_template_versions(LaunchTemplateId=lid, Versions=["1", "2", "9"])
    assert [v["VersionNumber"] for v in out["SuccessfullyDeletedLaunchTemplateVersions"]] == [1]
    failed = {v["VersionNumber"]: v["ResponseError"]["Code"] for v in out["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert failed[9] == "launchTemplateVersionDoesNotExist" and 2 in failed
    assert desc() == [2, 3]
    # Version numbers are never reused.
    v4 = ec2.create_launch_template_version(LaunchTemplateId=lid, LaunchTemplateData={"InstanceType": "t3.nano"})
    assert v4["LaunchTemplateVersion"]["VersionNumber"] == 4
    gone = ec2.delete_launch_template(LaunchTemplateName="web-tier")["LaunchTemplate"]
    assert gone["LaunchTemplateId"] == lid
    assert fails("InvalidLaunchTemplateId.NotFound", ec2.describe_launch_templates, LaunchTemplateIds=[lid]) == \
        f"The specified launch template, with template ID {lid}, does not exist."


def test_awss_errors_for_templates(kumo, ec2, ec2_raw, cli):
    # boto3 refuses a short or long name itself; the server's own answer, unchecked.
    for bad in ("ab", "has space", "x" * 129):
        fails("InvalidLaunchTemplateName.MalformedException", ec2_raw.create_launch_template,
              LaunchTemplateName=bad, LaunchTemplateData={"InstanceType": "t3.micro"})
    # Empty data is no data (the AWS CLI sends `{}` as nothing).
    code, _ = cli.error("ec2", "create-launch-template", "--launch-template-name", "empty", "--launch-template-data", "{}")
    assert code == "MissingParameter"
    fails("InvalidParameterValue", ec2.create_launch_template, LaunchTemplateName="badtype",
          LaunchTemplateData={"InstanceType": "t9.huge"})
    lid = ec2.create_launch_template(LaunchTemplateName="errs", LaunchTemplateData={"InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    fails("InvalidLaunchTemplateId.Malformed", ec2.describe_launch_templates, LaunchTemplateIds=["lt-zz"])
    fails("InvalidLaunchTemplateName.NotFoundException", ec2.describe_launch_templates, LaunchTemplateNames=["nope"])
    fails("InvalidLaunchTemplateId.NotFound", ec2.create_launch_template_version,
          LaunchTemplateId="lt-0123456789abcdef0", LaunchTemplateData={"InstanceType": "t3.micro"})
    fails("InvalidLaunchTemplateName.NotFoundException", ec2.describe_launch_template_versions, LaunchTemplateName="nope")
    msg = fails("InvalidLaunchTemplateId.VersionNotFound", ec2.describe_launch_template_versions, LaunchTemplateId=lid, Versions=["3"])
    assert msg == f"Could not find the specified version 3 for the launch template with ID {lid}."
    fails("InvalidLaunchTemplateId.VersionNotFound", ec2.modify_launch_template, LaunchTemplateId=lid, DefaultVersion="2")
    fails("InvalidParameterValue", ec2.describe_launch_template_versions, LaunchTemplateId=lid, Versions=["abc"])
    fails("InvalidParameterValue", ec2.modify_launch_template, LaunchTemplateId=lid, DefaultVersion="$Foo")
    fails("InvalidParameterCombination", ec2.modify_launch_template, LaunchTemplateId=lid, LaunchTemplateName="errs", DefaultVersion="1")
    # Every template's versions: only `$Latest` and `$Default`.
    fails("MissingParameter", ec2.describe_launch_template_versions)
    fails("InvalidParameterValue", ec2.describe_launch_template_versions, Versions=["1"])
    ec2.create_launch_template(LaunchTemplateName="errs-2", LaunchTemplateData={"InstanceType": "t3.nano"})
    every = ec2.describe_launch_template_versions(Versions=["$Latest"])["LaunchTemplateVersions"]
    assert sorted(v["LaunchTemplateName"] for v in every) == ["errs", "errs-2"]
    fails("InvalidParameterValue", ec2_raw.describe_launch_templates, MaxResults=201)
    # DryRun checks and changes nothing.
    fails("DryRunOperation", ec2.create_launch_template, LaunchTemplateName="dry", DryRun=True,
          LaunchTemplateData={"InstanceType": "t3.micro"})
    assert ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": ["dry"]}])["LaunchTemplates"] == []
    fails("DryRunOperation", ec2.delete_launch_template, LaunchTemplateId=lid, DryRun=True)
    assert ec2.describe_launch_templates(LaunchTemplateIds=[lid])["LaunchTemplates"]
    # A token makes a create idempotent.
    a = ec2.create_launch_template(LaunchTemplateName="tok", ClientToken="t-1", LaunchTemplateData={"InstanceType": "t3.micro"})
    b = ec2.create_launch_template(LaunchTemplateName="tok", ClientToken="t-1", LaunchTemplateData={"InstanceType": "t3.micro"})
    assert a["LaunchTemplate"]["LaunchTemplateId"] == b["LaunchTemplate"]["LaunchTemplateId"]


def test_run_instances_from_a_template_merges_the_call_over_it(kumo, ec2):
    ami = latest_al2023(kumo)
    user_data = base64.b64encode(b"#!/bin/sh\necho from-template\n").decode()
    lid = ec2.create_launch_template(
        LaunchTemplateName="app",
        LaunchTemplateData={
            "ImageId": ami, "InstanceType": "t3.micro", "UserData": user_data,
            "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 12, "VolumeType": "gp3"}},
                                    {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 2}}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "from-lt"}, {"Key": "tier", "Value": "t"}]}],
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=lid, SourceVersion="1", LaunchTemplateData={"InstanceType": "t3.small"})
    # No version: the default (1); the call's type wins; block devices merge by name.
    inst = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": lid}, InstanceType="t3.medium",
                             BlockDeviceMappings=[{"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 3}}],
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "tier", "Value": "call"}]}])["Instances"][0]
    assert (inst["ImageId"], inst["InstanceType"]) == (ami, "t3.medium")
    iid = inst["InstanceId"]
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in d["Tags"]}
    assert tags == {"Name": "from-lt", "tier": "call", "aws:ec2launchtemplate:id": lid, "aws:ec2launchtemplate:version": "1"}
    devices = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in d["BlockDeviceMappings"]}
    assert set(devices) == {"/dev/xvda", "/dev/sdf", "/dev/sdg"}
    sizes = {v["Attachments"][0]["Device"]: v["Size"] for v in ec2.describe_volumes(VolumeIds=list(devices.values()))["Volumes"]}
    assert sizes == {"/dev/xvda": 12, "/dev/sdf": 2, "/dev/sdg": 3}
    ud = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(ud) == b"#!/bin/sh\necho from-template\n"
    # `$Latest` by name.
    latest = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "app", "Version": "$Latest"})["Instances"][0]
    assert latest["InstanceType"] == "t3.small"
    d = ec2.describe_instances(Filters=[{"Name": "tag:aws:ec2launchtemplate:version", "Values": ["2"]}])["Reservations"]
    assert [i["InstanceId"] for r in d for i in r["Instances"]] == [latest["InstanceId"]]
    # AWS's refusals.
    fails("InvalidLaunchTemplateId.NotFound", ec2.run_instances, MinCount=1, MaxCount=1,
          LaunchTemplate={"LaunchTemplateId": "lt-0123456789abcdef0"})
    fails("InvalidLaunchTemplateName.NotFoundException", ec2.run_instances, MinCount=1, MaxCount=1,
          LaunchTemplate={"LaunchTemplateName": "nope"})
    fails("InvalidLaunchTemplateId.VersionNotFound", ec2.run_instances, MinCount=1, MaxCount=1,
          LaunchTemplate={"LaunchTemplateId": lid, "Version": "7"})
    fails("InvalidParameterValue", ec2.run_instances, MinCount=1, MaxCount=1,
          LaunchTemplate={"LaunchTemplateId": lid, "Version": "newest"})
    fails("InvalidParameterCombination", ec2.run_instances, MinCount=1, MaxCount=1,
          LaunchTemplate={"LaunchTemplateId": lid, "LaunchTemplateName": "app"})
    # A template without an image needs the call's.
    bare = ec2.create_launch_template(LaunchTemplateName="bare", LaunchTemplateData={"InstanceType": "t3.micro"})["LaunchTemplate"]["LaunchTemplateId"]
    fails("MissingParameter", ec2.run_instances, MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": bare})
    assert ec2.run_instances(MinCount=1, MaxCount=1, ImageId=ami, LaunchTemplate={"LaunchTemplateId": bare})["Instances"][0]["InstanceType"] == "t3.micro"
    # Interfaces in the template and a subnet in the call: AWS's refusal.
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    nic = ec2.create_launch_template(LaunchTemplateName="nic", LaunchTemplateData={
        "ImageId": ami, "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": subnet, "AssociatePublicIpAddress": True}]})["LaunchTemplate"]["LaunchTemplateId"]
    msg = fails("InvalidParameterCombination", ec2.run_instances, MinCount=1, MaxCount=1,
                LaunchTemplate={"LaunchTemplateId": nic}, SubnetId=subnet)
    assert msg == "Network interfaces and an instance-level subnet ID may not be specified on the same request"
    placed = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": nic})["Instances"][0]
    assert placed["SubnetId"] == subnet


def test_get_launch_template_data_reads_an_instance_back(kumo, ec2):
    ami = latest_al2023(kumo)
    inst = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1,
                             MetadataOptions={"HttpTokens": "required"},
                             TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "src"}]}])["Instances"][0]
    data = ec2.get_launch_template_data(InstanceId=inst["InstanceId"])["LaunchTemplateData"]
    assert (data["ImageId"], data["InstanceType"]) == (ami, "t3.small")
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["Placement"]["AvailabilityZone"] == inst["Placement"]["AvailabilityZone"]
    assert data["NetworkInterfaces"][0]["DeviceIndex"] == 0
    assert data["NetworkInterfaces"][0]["SubnetId"] == inst["SubnetId"]
    assert data["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    assert data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 8
    assert data["TagSpecifications"] == [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "src"}]}]
    fails("InvalidInstanceID.NotFound", ec2.get_launch_template_data, InstanceId="i-0123456789abcdef0")
    # The data makes a template that launches the same kind of instance.
    data.pop("NetworkInterfaces")
    lt = ec2.create_launch_template(LaunchTemplateName="copy", LaunchTemplateData=data)["LaunchTemplate"]
    again = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"]})["Instances"][0]
    assert again["InstanceType"] == "t3.small"


def test_aws_cli_launch_template_round_trip(kumo, cli):
    ami = latest_al2023(kumo)
    data = json.dumps({"ImageId": ami, "InstanceType": "t3.micro"})
    lt = cli("ec2", "create-launch-template", "--launch-template-name", "cli-lt", "--launch-template-data", data)["LaunchTemplate"]
    out = cli("ec2", "describe-launch-template-versions", "--launch-template-id", lt["LaunchTemplateId"], "--versions", "$Latest")
    assert out["LaunchTemplateVersions"][0]["LaunchTemplateData"]["InstanceType"] == "t3.micro"
    run = cli("ec2", "run-instances", "--launch-template", f"LaunchTemplateName=cli-lt,Version=1")
    assert run["Instances"][0]["ImageId"] == ami
    code, _ = cli.error("ec2", "create-launch-template", "--launch-template-name", "cli-lt", "--launch-template-data", data)
    assert code == "InvalidLaunchTemplateName.AlreadyExistsException"
