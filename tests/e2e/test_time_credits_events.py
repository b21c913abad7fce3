"""What time does to instances, driven by a test clock: CPU credits of T-family instances,
scheduled events, a guest powering itself off, terminated instances vanishing."""

import json
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import KUMO_BIN, Kumo, error_code, make_client


@pytest.fixture(scope="module")
def clocked():
    k = Kumo(extra_args=["--test-clock"]).start()
    yield k
    k.stop()
    shutil.rmtree(k.data_dir, ignore_errors=True)


@pytest.fixture
def ec2c(clocked):
    clocked.reset()
    return make_client(clocked.endpoint)


def admin(k, *args, ok=True):
    p = subprocess.run([KUMO_BIN, "admin", *args, "--endpoint-url", k.endpoint, "--region", "eu-west-1"], capture_output=True, text=True, timeout=30)
    if ok:
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)
    return p


def ami(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["al2023-ami-2023*-x86_64"]}])["Images"][0]["ImageId"]


def launch(ec2, itype, **kw):
    return ec2.run_instances(ImageId=ami(ec2), InstanceType=itype, MinCount=1, MaxCount=1, **kw)["Instances"][0]["InstanceId"]


def test_default_credit_specifications(ec2c):
    get = lambda f: ec2c.get_default_credit_specification(InstanceFamily=f)["InstanceFamilyCreditSpecification"]["CpuCredits"]  # noqa: E731
    assert (get("t2"), get("t3"), get("t4g")) == ("standard", "unlimited", "unlimited")
    ec2c.modify_default_credit_specification(InstanceFamily="t3", CpuCredits="standard")
    assert get("t3") == "standard"
    with pytest.raises(ClientError) as e:
        ec2c.get_default_credit_specification(InstanceFamily="m5")
    assert error_code(e) == "InvalidParameterValue"
    a = launch(ec2c, "t3.micro")
    b = launch(ec2c, "t3.micro", CreditSpecification={"CpuCredits": "unlimited"})
    launch(ec2c, "m5.large")
    with pytest.raises(ClientError) as e:
        launch(ec2c, "m5.large", CreditSpecification={"CpuCredits": "unlimited"})
    assert error_code(e) == "InvalidParameterCombination"
    specs = {s["InstanceId"]: s["CpuCredits"] for s in ec2c.describe_instance_credit_specifications()["InstanceCreditSpecifications"]}
    assert specs == {a: "standard", b: "unlimited"}
    out = ec2c.modify_instance_credit_specification(InstanceCreditSpecifications=[{"InstanceId": a, "CpuCredits": "unlimited"}, {"InstanceId": "i-0123456789abcdef0", "CpuCredits": "unlimited"}])
    assert [x["InstanceId"] for x in out["SuccessfulInstanceCreditSpecifications"]] == [a]
    assert out["UnsuccessfulInstanceCreditSpecifications"][0]["Error"]["Code"] == "InvalidInstanceID.NotFound"


def test_credit_ledger(clocked, ec2c):
    t2 = launch(ec2c, "t2.micro")
    t3 = launch(ec2c, "t3.micro")
    l2 = admin(clocked, "credits", t2)
    assert (l2["cpu_credits"], l2["balance"], l2["earned_per_hour"], l2["max_balance"]) == ("standard", 30.0, 6.0, 144.0)
    assert admin(clocked, "credits", t3)["balance"] == 0.0
    admin(clocked, "advance-clock", "3600")
    assert admin(clocked, "credits", t2)["balance"] == pytest.approx(36.0, abs=0.05)
    assert admin(clocked, "credits", t3)["balance"] == pytest.approx(12.0, abs=0.05)
    admin(clocked, "advance-clock", str(3 * 86400))
    assert admin(clocked, "credits", t2)["balance"] == 144.0
    assert admin(clocked, "credits", t3)["balance"] == 288.0
    # T2 loses its credits at a stop; T3 keeps them.
    ec2c.stop_instances(InstanceIds=[t2, t3])
    assert admin(clocked, "credits", t2)["balance"] == 0.0
    assert admin(clocked, "credits", t3)["balance"] == 288.0
    p = admin(clocked, "credits", launch(ec2c, "m5.large"), ok=False)
    assert p.returncode == 255 and "no CPU credits" in p.stderr


def test_scheduled_events(clocked, ec2c):
    iid = launch(ec2c, "t3.micro")
    ev = admin(clocked, "schedule-event", iid, "--code", "instance-stop", "--in", "600")
    st = ec2c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert [(e["Code"], e["InstanceEventId"]) for e in st["Events"]] == [("instance-stop", ev["instance_event_id"])]
    assert st["Events"][0]["NotBefore"].isoformat().startswith(ev["not_before"][:16])
    # A reboot keeps the host, and the event.
    ec2c.reboot_instances(InstanceIds=[iid])
    assert len(ec2c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]["Events"]) == 1
    # A stop and start moves it to a healthy host: the event is gone.
    ec2c.stop_instances(InstanceIds=[iid])
    ec2c.start_instances(InstanceIds=[iid])
    assert ec2c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]["Events"] == []
    # Left alone, the instance is stopped at the deadline.
    admin(clocked, "schedule-event", iid, "--code", "instance-retirement", "--in", "60")
    admin(clocked, "advance-clock", "61")
    d = ec2c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["State"]["Name"] == "stopped"
    assert d["StateReason"]["Code"] == "Server.ScheduledStop"
    # The start moved it to a healthy host: the completed retirement is gone with it.
    ec2c.start_instances(InstanceIds=[iid])
    assert ec2c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]["Events"] == []
    # Reboot events complete at their time, and stay listed as completed for a week.
    admin(clocked, "schedule-event", iid, "--code", "system-reboot", "--in", "30")
    admin(clocked, "advance-clock", "31")
    st = ec2c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]
    assert st["InstanceState"]["Name"] == "running"
    assert [(e["Code"], e["Description"].startswith("[Completed] ")) for e in st["Events"]] == [("system-reboot", True)]
    admin(clocked, "advance-clock", str(7 * 86400))
    assert ec2c.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"][0]["Events"] == []
    p = admin(clocked, "schedule-event", iid, "--code", "party", ok=False)
    assert p.returncode == 255


def test_guest_shutdown_follows_the_behaviour(clocked, ec2c):
    stops = launch(ec2c, "t3.micro")
    terminates = launch(ec2c, "t3.micro", InstanceInitiatedShutdownBehavior="terminate")
    assert admin(clocked, "guest-shutdown", stops)["state"] == "stopping"
    assert admin(clocked, "guest-shutdown", terminates)["state"] == "shutting-down"
    a = ec2c.describe_instances(InstanceIds=[stops])["Reservations"][0]["Instances"][0]
    b = ec2c.describe_instances(InstanceIds=[terminates])["Reservations"][0]["Instances"][0]
    assert (a["State"]["Name"], a["StateReason"]["Code"]) == ("stopped", "Client.InstanceInitiatedShutdown")
    assert b["State"]["Name"] == "terminated"


def test_terminated_instances_vanish_after_an_hour(clocked, ec2c):
    iid = launch(ec2c, "t3.micro")
    ec2c.terminate_instances(InstanceIds=[iid])
    admin(clocked, "advance-clock", "1800")
    assert ec2c.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "terminated"
    admin(clocked, "advance-clock", "1900")
    with pytest.raises(ClientError) as e:
        ec2c.describe_instances(InstanceIds=[iid])
    assert error_code(e) == "InvalidInstanceID.NotFound"
    assert ec2c.describe_instances()["Reservations"] == []


def test_clock_is_fixed_without_the_flag(kumo):
    p = admin(kumo, "advance-clock", "60", ok=False)
    assert p.returncode == 255 and "OperationNotPermitted" in p.stderr
