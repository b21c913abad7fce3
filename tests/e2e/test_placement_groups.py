"""Issue 15: placement groups. Create, describe and delete them with AWS's answers, launch into
them by AWS's rules (a type's supported strategies, a cluster group's one zone, a spread
group's 7 running instances per zone, a partition group's partitions), and move a stopped
instance between them."""

from conftest import fails, latest_al2023


def run(ec2, kumo, n=1, **kw):
    args = dict(ImageId=latest_al2023(kumo), InstanceType="c5.large", MinCount=n, MaxCount=n)
    args.update(kw)
    return ec2.run_instances(**args)["Instances"]


def test_create_describe_and_delete(kumo, ec2):
    pg = ec2.create_placement_group(GroupName="hpc", Strategy="cluster",
                                    TagSpecifications=[{"ResourceType": "placement-group", "Tags": [{"Key": "k", "Value": "v"}]}])["PlacementGroup"]
    assert pg["GroupId"].startswith("pg-") and len(pg["GroupId"]) == 20
    assert (pg["GroupName"], pg["State"], pg["Strategy"]) == ("hpc", "available", "cluster")
    assert pg["GroupArn"].endswith(":placement-group/hpc") and pg["GroupArn"].startswith("arn:aws:ec2:eu-west-1:")
    assert "SpreadLevel" not in pg and pg["Tags"] == [{"Key": "k", "Value": "v"}]
    spread = ec2.create_placement_group(GroupName="web", Strategy="spread")["PlacementGroup"]
    assert spread["SpreadLevel"] == "rack"
    part = ec2.create_placement_group(GroupName="hdfs", Strategy="partition", PartitionCount=3)["PlacementGroup"]
    assert part["PartitionCount"] == 3
    names = lambda **kw: sorted(g["GroupName"] for g in ec2.describe_placement_groups(**kw)["PlacementGroups"])
    assert names() == ["hdfs", "hpc", "web"]
    assert names(Filters=[{"Name": "strategy", "Values": ["spread", "partition"]}]) == ["hdfs", "web"]
    assert names(Filters=[{"Name": "tag:k", "Values": ["v"]}]) == ["hpc"]
    assert names(GroupIds=[part["GroupId"]]) == ["hdfs"]
    assert names(GroupNames=["web"]) == ["web"]
    assert fails("InvalidPlacementGroup.Duplicate", ec2.create_placement_group, GroupName="hpc", Strategy="spread") == \
        "The placement group 'hpc' already exists."
    assert fails("InvalidPlacementGroup.Unknown", ec2.describe_placement_groups, GroupNames=["nope"]) == \
        "The Placement Group 'nope' is unknown."
    fails("InvalidPlacementGroupId.Malformed", ec2.describe_placement_groups, GroupIds=["pg-zz"])
    fails("InvalidParameterCombination", ec2.create_placement_group, GroupName="x", Strategy="cluster", PartitionCount=2)
    fails("InvalidParameterValue", ec2.create_placement_group, GroupName="x", Strategy="partition", PartitionCount=8)
    fails("InvalidParameterCombination", ec2.create_placement_group, GroupName="x", Strategy="cluster", SpreadLevel="rack")
    fails("InvalidParameterValue", ec2.create_placement_group, GroupName="x", Strategy="spread", SpreadLevel="host")
    fails("DryRunOperation", ec2.create_placement_group, GroupName="dry", Strategy="spread", DryRun=True)
    assert "dry" not in names()
    ec2.delete_placement_group(GroupName="web")
    assert names() == ["hdfs", "hpc"]
    fails("InvalidPlacementGroup.Unknown", ec2.delete_placement_group, GroupName="web")
    # Taggable by id afterwards too.
    ec2.create_tags(Resources=[part["GroupId"]], Tags=[{"Key": "late", "Value": "1"}])
    assert names(Filters=[{"Name": "tag:late", "Values": ["1"]}]) == ["hdfs"]


def test_launch_into_groups_by_awss_rules(kumo, ec2):
    ec2.create_placement_group(GroupName="hpc", Strategy="cluster")
    zones = sorted({s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]}.items())
    (z1, s1), (z2, s2) = zones[0], zones[1]
    inst = run(ec2, kumo, 2, SubnetId=s1, Placement={"GroupName": "hpc"})
    d = ec2.describe_instances(InstanceIds=[i["InstanceId"] for i in inst])["Reservations"][0]["Instances"]
    assert {(i["Placement"]["GroupName"], i["Placement"].get("GroupId", "")[:3]) for i in d} == {("hpc", "pg-")}
    got = ec2.describe_instances(Filters=[{"Name": "placement-group-name", "Values": ["hpc"]}])["Reservations"]
    assert sorted(i["InstanceId"] for r in got for i in r["Instances"]) == sorted(i["InstanceId"] for i in inst)
    # A cluster group lives in one zone; a burstable type cannot be in one.
    msg = fails("InvalidPlacementGroup.InUse", run, ec2, kumo, SubnetId=s2, Placement={"GroupName": "hpc"})
    assert msg == f"The placement group 'hpc' is in use in another availability zone: {z1}"
    assert fails("InvalidParameterCombination", run, ec2, kumo, InstanceType="t3.micro", SubnetId=s1, Placement={"GroupName": "hpc"}) == \
        "Cluster placement groups are not supported by the 't3.micro' instance type. Specify a supported instance type or change the placement group strategy, and try again."
    fails("InvalidPlacementGroup.Unknown", run, ec2, kumo, Placement={"GroupName": "nope"})
    # Its instances hold it until they are terminated.
    assert fails("InvalidPlacementGroup.InUse", ec2.delete_placement_group, GroupName="hpc") == \
        "The placement group 'hpc' is in use and may not be deleted."
    ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in inst])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[i["InstanceId"] for i in inst], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.delete_placement_group(GroupName="hpc")
    # Spread: at most 7 running instances per zone.
    ec2.create_placement_group(GroupName="web", Strategy="spread")
    run(ec2, kumo, 5, InstanceType="t3.micro", SubnetId=s1, Placement={"GroupName": "web"})
    fails("InsufficientInstanceCapacity", run, ec2, kumo, 3, InstanceType="t3.micro", SubnetId=s1, Placement={"GroupName": "web"})
    run(ec2, kumo, 2, InstanceType="t3.micro", SubnetId=s1, Placement={"GroupName": "web"})
    run(ec2, kumo, 1, InstanceType="t3.micro", SubnetId=s2, Placement={"GroupName": "web"})
    # Partition: numbered partitions, filled evenly when none is named.
    ec2.create_placement_group(GroupName="hdfs", Strategy="partition", PartitionCount=3)
    first = run(ec2, kumo, 4, Placement={"GroupName": "hdfs"})
    parts = sorted(i["Placement"]["PartitionNumber"] for i in first)
    assert parts == [1, 1, 2, 3]
    pinned = run(ec2, kumo, 1, Placement={"GroupName": "hdfs", "PartitionNumber": 3})[0]
    assert pinned["Placement"]["PartitionNumber"] == 3
    got = ec2.describe_instances(Filters=[{"Name": "placement-partition-number", "Values": ["3"]}])["Reservations"]
    assert len([i for r in got for i in r["Instances"]]) == 2
    fails("InvalidParameterValue", run, ec2, kumo, Placement={"GroupName": "hdfs", "PartitionNumber": 4})
    fails("InvalidParameterCombination", run, ec2, kumo, InstanceType="t3.micro", Placement={"GroupName": "web", "PartitionNumber": 1})


def test_modify_instance_placement_of_a_stopped_instance(kumo, ec2):
    ec2.create_placement_group(GroupName="hdfs", Strategy="partition", PartitionCount=2)
    iid = run(ec2, kumo)[0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    fails("IncorrectInstanceState", ec2.modify_instance_placement, InstanceId=iid, GroupName="hdfs")
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    placement = lambda: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Placement"]
    assert ec2.modify_instance_placement(InstanceId=iid, GroupName="hdfs", PartitionNumber=2)["Return"] is True
    assert (placement()["GroupName"], placement()["PartitionNumber"]) == ("hdfs", 2)
    ec2.modify_instance_placement(InstanceId=iid, PartitionNumber=1)
    assert placement()["PartitionNumber"] == 1
    fails("InvalidPlacementGroup.InUse", ec2.delete_placement_group, GroupName="hdfs")
    ec2.modify_instance_placement(InstanceId=iid, GroupName="")
    assert placement()["GroupName"] == "" and "PartitionNumber" not in placement()
    ec2.delete_placement_group(GroupName="hdfs")
    ec2.modify_instance_placement(InstanceId=iid, Tenancy="dedicated")
    assert placement()["Tenancy"] == "dedicated"
    fails("Unsupported", ec2.modify_instance_placement, InstanceId=iid, Tenancy="host")
    fails("InvalidPlacementGroup.Unknown", ec2.modify_instance_placement, InstanceId=iid, GroupName="nope")


def test_a_start_keeps_the_spread_rule(kumo, ec2):
    """The 7 running instances per zone of a spread group hold at a start as at a launch."""
    ec2.create_placement_group(GroupName="web", Strategy="spread")
    ids = [i["InstanceId"] for i in run(ec2, kumo, 7, InstanceType="t3.micro", Placement={"GroupName": "web"})]
    ec2.stop_instances(InstanceIds=[ids[0]])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[ids[0]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    zone = ec2.describe_instances(InstanceIds=[ids[1]])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    run(ec2, kumo, 1, InstanceType="t3.micro", Placement={"GroupName": "web", "AvailabilityZone": zone})
    fails("InsufficientInstanceCapacity", ec2.start_instances, InstanceIds=[ids[0]])
    ec2.terminate_instances(InstanceIds=[ids[1]])
    ec2.start_instances(InstanceIds=[ids[0]])


def test_dedicated_tenancy_by_instance_type(kumo, ec2):
    """Dedicated Instances: T3 can be one, T2, T3a and T4g cannot (AWS's burstable guide);
    AWS answers its generic Unsupported."""
    unsupported = "The requested configuration is currently not supported. Please check the documentation for supported configurations."
    inst = run(ec2, kumo, InstanceType="t3.micro", Placement={"Tenancy": "dedicated"})[0]
    assert inst["Placement"]["Tenancy"] == "dedicated"
    got = ec2.describe_instances(Filters=[{"Name": "tenancy", "Values": ["dedicated"]}])["Reservations"]
    assert [i["InstanceId"] for r in got for i in r["Instances"]] == [inst["InstanceId"]]
    for t in ["t2.micro", "t3a.micro"]:
        assert fails("Unsupported", run, ec2, kumo, InstanceType=t, Placement={"Tenancy": "dedicated"}) == unsupported
    # A dedicated VPC makes its instances dedicated, with the same rule.
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", InstanceTenancy="dedicated")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
    assert fails("Unsupported", run, ec2, kumo, InstanceType="t2.micro", SubnetId=subnet) == unsupported
    assert run(ec2, kumo, InstanceType="m5.large", SubnetId=subnet)[0]["Placement"]["Tenancy"] == "dedicated"
    # Neither a type change nor a tenancy change makes an unsupported pair.
    iid = inst["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert fails("Unsupported", ec2.modify_instance_attribute, InstanceId=iid, InstanceType={"Value": "t2.micro"}) == unsupported
    ec2.modify_instance_placement(InstanceId=iid, Tenancy="default")
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.micro"})
    assert fails("Unsupported", ec2.modify_instance_placement, InstanceId=iid, Tenancy="dedicated") == unsupported
    assert fails("Unsupported", ec2.create_capacity_reservation, InstanceType="t4g.micro", InstancePlatform="Linux/UNIX",
                 AvailabilityZone="eu-west-1a", InstanceCount=1, Tenancy="dedicated") == unsupported
