"""`AWS/EC2` metrics measured from real guests (the `ns` driver): a guest that burns CPU
shows in `aws cloudwatch get-metric-statistics`, and a standard-mode t3 spends its credits.

The server runs with the test clock, so that the t3 can bank credits for an hour and a
five-minute credit window can be closed without waiting for it; CPU time is always real."""

import datetime
import subprocess
import time

import pytest

from conftest import KUMO_BIN, Cli, make_client, serving
from test_compute_ns import allow_ssh, ssh, until

UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def ns_clocked():
    yield from serving("--driver", "ns", "--test-clock")


def advance(k, seconds):
    p = subprocess.run([KUMO_BIN, "admin", "advance-clock", str(seconds), "--endpoint-url", k.endpoint, "--region", "eu-west-1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def points(cli, iid, metric, stat, start, end, period=60):
    out = cli("cloudwatch", "get-metric-statistics", "--namespace", "AWS/EC2", "--metric-name", metric,
              "--dimensions", f"Name=InstanceId,Value={iid}", "--statistics", stat, "--period", str(period),
              "--start-time", start.isoformat(), "--end-time", end.isoformat())
    return sorted(out["Datapoints"], key=lambda p: p["Timestamp"])


def test_cpu_utilization_network_and_credits_come_from_the_guest(ns_clocked, tmp_path):
    k = ns_clocked
    ec2 = make_client(k.endpoint)
    cli = Cli(k.endpoint)
    allow_ssh(ec2)
    pem = ec2.create_key_pair(KeyName="m", KeyType="ed25519")["KeyMaterial"]
    key = tmp_path / "m.pem"
    key.write_text(pem)
    key.chmod(0o600)
    ssm = make_client(k.endpoint, service="ssm")
    image = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
    # Detailed monitoring: one data point a minute.
    busy = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="m",
                             Monitoring={"Enabled": True}, CreditSpecification={"CpuCredits": "standard"})["Instances"][0]
    # Basic monitoring: one data point per five minutes.
    idle = ec2.run_instances(ImageId=image, InstanceType="t3.nano", MinCount=1, MaxCount=1)["Instances"][0]
    iid, ip = busy["InstanceId"], busy["PrivateIpAddress"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid, idle["InstanceId"]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Monitoring"]["State"] in ("pending", "enabled")
    assert ssh(str(key), ip, "true").returncode == 0
    vol = ec2.create_volume(AvailabilityZone=busy["Placement"]["AvailabilityZone"], Size=1, VolumeType="gp2")["VolumeId"]
    ec2.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vol], WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    # An hour idle banks credits (t3.micro: 12 an hour) and closes a credit window.
    advance(k, 3600)
    start = datetime.datetime.now(UTC) - datetime.timedelta(hours=1)
    end = datetime.datetime.now(UTC) + datetime.timedelta(hours=3)
    first = until(lambda: points(cli, iid, "CPUCreditBalance", "Maximum", start, end, period=300), 30)
    assert first and first[-1]["Maximum"] > 5, first
    banked = first[-1]["Maximum"]

    # Both vCPUs busy: CPUUtilization up to 100 %, credits spent at up to 2 a minute.
    burn_start = time.time()
    assert ssh(str(key), ip, "for i in 1 2; do nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & done").returncode == 0
    # 20,000 writes of 4 KiB to the gp2 volume, past the page cache: faster than its 100 IOPS
    # baseline earns, so its burst bucket goes down.
    assert ssh(str(key), ip, "sudo dd if=/dev/zero of=/dev/sdf bs=4k count=20000 oflag=direct status=none").returncode == 0
    # (More than one vCPU's half: the host may be busy with other work.)
    hot = until(lambda: [p for p in points(cli, iid, "CPUUtilization", "Maximum", start, end) if p["Maximum"] > 40], 150)
    assert hot, points(cli, iid, "CPUUtilization", "Maximum", start, end)
    assert hot[0]["Unit"] == "Percent"
    # Each minute is its own point (the AWS CLI prints time stamps as the seconds they are on
    # the wire).
    stamps = [p["Timestamp"] for p in points(cli, iid, "CPUUtilization", "SampleCount", start, end)]
    assert all(s % 60 == 0 for s in stamps) and len(set(stamps)) == len(stamps), stamps

    # Close the credit window the burn ends in, moving the clock only to its end (the clock
    # is an hour ahead of real time): the balance has fallen below what was banked, though
    # the moved clock earned up to one more credit.
    time.sleep(max(0, 100 - (time.time() - burn_start)))
    server_now = time.time() + 3600
    closing = int(server_now - server_now % 300)
    advance(k, int(300 - server_now % 300) + 2)
    # (Five-minute periods count from the query's start, so the closed window's point falls
    # in the period that covers its start.)
    later = until(lambda: (lambda ps: ps if any(p["Timestamp"] > closing - 300 for p in ps) else [])(
        [p for p in points(cli, iid, "CPUCreditBalance", "Maximum", start, end, period=300)
         if p["Timestamp"] > first[-1]["Timestamp"]]), 20)
    assert later and min(p["Maximum"] for p in later) < banked, (banked, later)
    used = points(cli, iid, "CPUCreditUsage", "Sum", start, end, period=300)
    assert max(p["Sum"] for p in used) > 1.0, used

    # SSH's own traffic is in the network counters; the status checks pass.
    net = points(cli, iid, "NetworkIn", "Sum", start, end, period=3600)
    assert sum(p["Sum"] for p in net) > 1000 and net[0]["Unit"] == "Bytes"
    assert sum(p["Sum"] for p in points(cli, iid, "NetworkPacketsOut", "Sum", start, end, period=3600)) > 10
    checks = points(cli, iid, "StatusCheckFailed", "Maximum", start, end)
    assert checks and all(p["Maximum"] == 0 for p in checks)

    # The volume's device counted the writes (AWS/EBS, a point a minute).
    def ebs(metric, stat="Sum"):
        out = cli("cloudwatch", "get-metric-statistics", "--namespace", "AWS/EBS", "--metric-name", metric,
                  "--dimensions", f"Name=VolumeId,Value={vol}", "--statistics", stat, "--period", "3600",
                  "--start-time", start.isoformat(), "--end-time", end.isoformat())
        values = [p[stat] for p in out["Datapoints"]]
        return min(values, default=None) if stat == "Minimum" else sum(values)
    written = until(lambda: ebs("VolumeWriteBytes") >= 20000 * 4096, 90)
    assert written, ebs("VolumeWriteBytes")
    assert ebs("VolumeWriteOps") >= 20000 and ebs("VolumeTotalWriteTime") > 0
    assert ebs("VolumeIdleTime") > 0
    # 20,000 credits spent, 100 a second earned back: below full, far from empty.
    assert 99.0 < ebs("BurstBalance", "Minimum") < 100.0, ebs("BurstBalance", "Minimum")
    vol_metrics = {m["MetricName"] for m in cli("cloudwatch", "list-metrics", "--namespace", "AWS/EBS",
                                                "--dimensions", f"Name=VolumeId,Value={vol}")["Metrics"]}
    assert {"VolumeReadOps", "VolumeWriteOps", "VolumeReadBytes", "VolumeWriteBytes", "VolumeQueueLength", "BurstBalance"} <= vol_metrics

    # What is listed: the instance's metrics, and with detailed monitoring the aggregates.
    names = {m["MetricName"] for m in cli("cloudwatch", "list-metrics", "--namespace", "AWS/EC2",
                                          "--dimensions", f"Name=InstanceId,Value={iid}")["Metrics"]}
    assert {"CPUUtilization", "NetworkIn", "NetworkOut", "NetworkPacketsIn", "NetworkPacketsOut",
            "StatusCheckFailed", "StatusCheckFailed_Instance", "StatusCheckFailed_System",
            "CPUCreditUsage", "CPUCreditBalance"} <= names, names
    # Standard mode has no surplus metrics.
    assert "CPUSurplusCreditBalance" not in names
    by_type = cli("cloudwatch", "list-metrics", "--namespace", "AWS/EC2", "--dimensions", "Name=InstanceType,Value=t3.micro")["Metrics"]
    assert any(m["MetricName"] == "CPUUtilization" for m in by_type)

    # The basic-monitoring instance's points sit on five-minute marks.
    basic = points(cli, idle["InstanceId"], "CPUUtilization", "SampleCount", start, end)
    assert basic and all(p["Timestamp"] % 300 == 0 for p in basic), basic
    assert not cli("cloudwatch", "list-metrics", "--namespace", "AWS/EC2", "--dimensions", "Name=InstanceType,Value=t3.nano")["Metrics"]
