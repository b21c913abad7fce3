"""Issue 15: On-Demand Capacity Reservations hold real capacity. A zone has `--zone-capacity`
slots; a reservation sets slots aside, launches that use none get only what is left, and
matching instances fill the reservation's slots while they run (and give them back when they
stop)."""

import concurrent.futures
import datetime

import pytest
from botocore.exceptions import ClientError

from conftest import fails, latest_al2023, make_client, serving

@pytest.fixture(scope="module")
def small():
    """A server whose zones hold 40 instances each."""
    yield from serving("--driver", "null", "--zone-capacity", "40")


@pytest.fixture
def ec2(small):
    small.reset()
    return make_client(small.endpoint)


def reservation(ec2, cr):
    return ec2.describe_capacity_reservations(CapacityReservationIds=[cr])["CapacityReservations"][0]


def test_create_describe_modify_cancel(small, ec2):
    cr = ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="eu-west-1a",
                                         InstanceCount=3, TagSpecifications=[{"ResourceType": "capacity-reservation", "Tags": [{"Key": "k", "Value": "v"}]}])["CapacityReservation"]
    cid = cr["CapacityReservationId"]
    assert cid.startswith("cr-") and len(cid) == 20
    assert (cr["State"], cr["TotalInstanceCount"], cr["AvailableInstanceCount"], cr["InstanceMatchCriteria"], cr["EndDateType"], cr["Tenancy"]) == \
        ("active", 3, 3, "open", "unlimited", "default")
    assert cr["CapacityReservationArn"].endswith(f":capacity-reservation/{cid}") and cr["AvailabilityZoneId"]
    assert cr["Tags"] == [{"Key": "k", "Value": "v"}]
    by = lambda **kw: [c["CapacityReservationId"] for c in ec2.describe_capacity_reservations(**kw)["CapacityReservations"]]
    assert by(Filters=[{"Name": "instance-type", "Values": ["c5.large"]}]) == [cid]
    assert by(Filters=[{"Name": "state", "Values": ["cancelled"]}]) == []
    fails("InvalidCapacityReservationId.NotFound", ec2.describe_capacity_reservations, CapacityReservationIds=["cr-0123456789abcdef0"])
    fails("InvalidCapacityReservationId.Malformed", ec2.describe_capacity_reservations, CapacityReservationIds=["cr-zz"])
    assert ec2.modify_capacity_reservation(CapacityReservationId=cid, InstanceCount=5)["Return"] is True
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
    ec2.modify_capacity_reservation(CapacityReservationId=cid, EndDateType="limited", EndDate=end)
    got = reservation(ec2, cid)
    assert (got["TotalInstanceCount"], got["EndDateType"]) == (5, "limited") and "EndDate" in got
    assert ec2.cancel_capacity_reservation(CapacityReservationId=cid)["Return"] is True
    assert reservation(ec2, cid)["State"] == "cancelled"
    fails("IncorrectState", ec2.cancel_capacity_reservation, CapacityReservationId=cid)
    fails("IncorrectState", ec2.modify_capacity_reservation, CapacityReservationId=cid, InstanceCount=1)
    # AWS's refusals at creation.
    msg = fails("InvalidParameterValue", ec2.create_capacity_reservation, InstanceType="c5.large", InstancePlatform="Linux/UNIX",
                AvailabilityZone="eu-west-1a", InstanceCount=1001)
    assert msg == "1001 is an invalid value for InstanceCount. InstanceCount must be between 1 and 1000."
    fails("MissingParameter", ec2.create_capacity_reservation, InstanceType="c5.large", InstancePlatform="Linux/UNIX",
          AvailabilityZone="eu-west-1a", InstanceCount=1, EndDateType="limited")
    fails("InvalidParameterValue", ec2.create_capacity_reservation, InstanceType="c5.large", InstancePlatform="Linux/UNIX",
          AvailabilityZone="us-east-1a", InstanceCount=1)
    fails("InvalidParameterValue", ec2.create_capacity_reservation, InstanceType="c9.nope", InstancePlatform="Linux/UNIX",
          AvailabilityZone="eu-west-1a", InstanceCount=1)
    # A reservation needs the zone's free capacity.
    fails("InsufficientInstanceCapacity", ec2.create_capacity_reservation, InstanceType="c5.large", InstancePlatform="Linux/UNIX",
          AvailabilityZone="eu-west-1a", InstanceCount=41)


def test_reserved_capacity_is_held_and_filled(small, ec2):
    ami = latest_al2023(small)
    subnet = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}["eu-west-1a"]
    cid = ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="eu-west-1a",
                                          InstanceCount=30)["CapacityReservation"]["CapacityReservationId"]
    run = lambda n, **kw: ec2.run_instances(ImageId=ami, MinCount=n, MaxCount=n, SubnetId=subnet, **kw)["Instances"]
    # Other types get only the 10 unreserved slots.
    small_ones = run(10, InstanceType="t3.micro")
    assert fails("InsufficientInstanceCapacity", run, 1, InstanceType="t3.micro").startswith("We currently do not have sufficient t3.micro capacity")
    # Matching instances fill the open reservation.
    filled = run(4, InstanceType="c5.large")
    assert {i["CapacityReservationId"] for i in filled} == {cid}
    assert reservation(ec2, cid)["AvailableInstanceCount"] == 26
    # A stopped one gives its slot back; started again, it takes it.
    ec2.stop_instances(InstanceIds=[filled[0]["InstanceId"]])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[filled[0]["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert reservation(ec2, cid)["AvailableInstanceCount"] == 27
    ec2.start_instances(InstanceIds=[filled[0]["InstanceId"]])
    assert reservation(ec2, cid)["AvailableInstanceCount"] == 26
    # `none` stays out of it, and finds no unreserved room.
    fails("InsufficientInstanceCapacity", run, 1, InstanceType="c5.large", CapacityReservationSpecification={"CapacityReservationPreference": "none"})
    # Targeted by id: the reservation's own slots; a type it does not hold finds none.
    t = run(2, InstanceType="c5.large", CapacityReservationSpecification={"CapacityReservationTarget": {"CapacityReservationId": cid}})
    assert {i["CapacityReservationId"] for i in t} == {cid}
    shown = ec2.describe_instances(InstanceIds=[t[0]["InstanceId"]])["Reservations"][0]["Instances"][0]
    assert shown["CapacityReservationSpecification"] == {"CapacityReservationTarget": {"CapacityReservationId": cid}}
    assert ec2.describe_instances(InstanceIds=[filled[1]["InstanceId"]])["Reservations"][0]["Instances"][0][
        "CapacityReservationSpecification"] == {"CapacityReservationPreference": "open"}
    fails("ReservationCapacityExceeded", run, 1, InstanceType="c5.xlarge",
          CapacityReservationSpecification={"CapacityReservationTarget": {"CapacityReservationId": cid}})
    fails("InvalidCapacityReservationId.NotFound", run, 1, InstanceType="c5.large",
          CapacityReservationSpecification={"CapacityReservationTarget": {"CapacityReservationId": "cr-0123456789abcdef0"}})
    fails("InvalidParameterCombination", run, 1, InstanceType="c5.large",
          CapacityReservationSpecification={"CapacityReservationPreference": "open", "CapacityReservationTarget": {"CapacityReservationId": cid}})
    d = ec2.describe_instances(Filters=[{"Name": "capacity-reservation-id", "Values": [cid]}])["Reservations"]
    assert len([i for r in d for i in r["Instances"]]) == 6
    # Cancelled, its slots go back to the zone: other types launch again.
    ec2.terminate_instances(InstanceIds=[i["InstanceId"] for i in small_ones])
    ec2.cancel_capacity_reservation(CapacityReservationId=cid)
    assert len(run(20, InstanceType="t3.micro")) == 20


def test_no_over_commit_under_32_parallel_launches(small, ec2):
    """32 launches at once of 2 instances each into a reservation of 40: exactly 20 succeed,
    and the reservation is full, never over-full."""
    ami = latest_al2023(small)
    subnet = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}["eu-west-1b"]
    cid = ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="eu-west-1b",
                                          InstanceCount=40, InstanceMatchCriteria="targeted")["CapacityReservation"]["CapacityReservationId"]

    def launch(_):
        client = make_client(small.endpoint)
        try:
            client.run_instances(ImageId=ami, InstanceType="c5.large", MinCount=2, MaxCount=2, SubnetId=subnet,
                                 CapacityReservationSpecification={"CapacityReservationTarget": {"CapacityReservationId": cid}})
            return "ok"
        except ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(launch, range(32)))
    assert results.count("ok") == 20 and results.count("ReservationCapacityExceeded") == 12, results
    assert reservation(ec2, cid)["AvailableInstanceCount"] == 0
    d = ec2.describe_instances(Filters=[{"Name": "capacity-reservation-id", "Values": [cid]}])["Reservations"]
    assert len([i for r in d for i in r["Instances"]]) == 40


def test_modify_instance_capacity_reservation_attributes(small, ec2):
    ami = latest_al2023(small)
    subnet = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}["eu-west-1a"]
    cid = ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="eu-west-1a",
                                          InstanceCount=1, InstanceMatchCriteria="targeted")["CapacityReservation"]["CapacityReservationId"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="c5.large", MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0]["InstanceId"]
    spec = {"CapacityReservationTarget": {"CapacityReservationId": cid}}
    fails("IncorrectInstanceState", ec2.modify_instance_capacity_reservation_attributes, InstanceId=iid, CapacityReservationSpecification=spec)
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert ec2.modify_instance_capacity_reservation_attributes(InstanceId=iid, CapacityReservationSpecification=spec)["Return"] is True
    ec2.start_instances(InstanceIds=[iid])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["CapacityReservationId"] == cid
    assert reservation(ec2, cid)["AvailableInstanceCount"] == 0


def test_a_start_takes_a_slot_again_or_runs_on_demand(small, ec2):
    """A stopped instance gives its slot back; at its start a targeted reservation that is full
    refuses it (ReservationCapacityExceeded), an open one lets it run On-Demand."""
    ami = latest_al2023(small)
    subnet = {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}["eu-west-1a"]

    def launch(target=None):
        spec = {"CapacityReservationTarget": {"CapacityReservationId": target}} if target else {}
        return ec2.run_instances(ImageId=ami, InstanceType="c5.large", MinCount=1, MaxCount=1, SubnetId=subnet,
                                 CapacityReservationSpecification=spec or {"CapacityReservationPreference": "open"})["Instances"][0]["InstanceId"]

    def stop(iid):
        ec2.stop_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    targeted = ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="eu-west-1a",
                                               InstanceCount=1, InstanceMatchCriteria="targeted")["CapacityReservation"]["CapacityReservationId"]
    first = launch(targeted)
    stop(first)
    launch(targeted)
    fails("ReservationCapacityExceeded", ec2.start_instances, InstanceIds=[first])
    ec2.cancel_capacity_reservation(CapacityReservationId=targeted)
    # Its reservation cancelled, an instance that targets it can no longer start.
    fails("ReservationCapacityExceeded", ec2.start_instances, InstanceIds=[first])
    opened = ec2.create_capacity_reservation(InstanceType="c5.large", InstancePlatform="Linux/UNIX", AvailabilityZone="eu-west-1a",
                                             InstanceCount=1)["CapacityReservation"]["CapacityReservationId"]
    a = launch()
    stop(a)
    b = launch()
    holder = lambda iid: ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0].get("CapacityReservationId")
    assert holder(b) == opened
    ec2.start_instances(InstanceIds=[a])
    assert holder(a) is None and reservation(ec2, opened)["AvailableInstanceCount"] == 0
