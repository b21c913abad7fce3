"""Set-up from a bare machine: `kumo serve --driver auto` on a host that can run `ns` but has no
base image builds one at first start, in the background, while RunInstances already works; a
host that cannot run `ns` says why, once in the log and in every running instance's state."""

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time

from conftest import KUMO_BIN, Kumo, free_port, make_client

AL2023 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def plain_log(k):
    return re.sub(r"\x1b\[[0-9;]*m", "", open(k.log_path).read())


def ami(endpoint):
    return make_client(endpoint, service="ssm").get_parameter(Name=AL2023)["Parameter"]["Value"]


def test_the_base_image_is_built_at_first_start_while_instances_wait():
    images = tempfile.mkdtemp(prefix="kumo-images-")
    k = Kumo(extra_args=["--driver", "auto", "--images", images]).start()
    try:
        ec2 = make_client(k.endpoint)
        # RunInstances answers at once, before the image exists.
        iid = ec2.run_instances(ImageId=ami(k.endpoint), InstanceType="t3.micro", MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        assert "building it in the background" in plain_log(k)
        state = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert state == "pending"
        deadline = time.time() + 900
        while time.time() < deadline:
            inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
            if inst["State"]["Name"] != "pending":
                break
            time.sleep(2)
        assert inst["State"]["Name"] == "running", inst["State"]
        assert "StateReason" not in inst, "a real driver runs it"
        log = plain_log(k)
        # The progress bar went to the log, phase by phase.
        assert re.search(r"kumo::image: \[#+-*\] +\d+% ", log), log[-2000:]
        assert "the base image is ready" in log
        assert log.count("instance started") == 1, "booted once"
        assert glob.glob(os.path.join(images, "*", "READY")), "the image is stamped ready"
        # The guest really boots on the image it waited for.
        deadline = time.time() + 60
        out = ""
        while time.time() < deadline and "sshd" not in out:
            out = ec2.get_console_output(InstanceId=iid).get("Output", "")
            time.sleep(1)
        assert "sshd" in out, out
    finally:
        k.stop()
        shutil.rmtree(k.data_dir, ignore_errors=True)
        shutil.rmtree(images, ignore_errors=True)


def test_a_host_that_cannot_run_ns_says_why():
    """Without nftables on the PATH (as on a host that lacks the package), `auto` falls back to
    the null driver and says so: once in the log, naming what to install, and in every running
    instance's state reason."""
    bin_dir = tempfile.mkdtemp(prefix="kumo-path-")
    for dir_ in os.environ["PATH"].split(os.pathsep):
        for name in os.listdir(dir_) if os.path.isdir(dir_) else []:
            target = os.path.join(bin_dir, name)
            if name != "nft" and not os.path.exists(target):
                os.symlink(os.path.join(dir_, name), target)
    d = tempfile.mkdtemp(prefix="kumo-nons-")
    port = free_port()
    log_path = os.path.join(d, "serve.log")
    with open(log_path, "wb") as log:
        p = subprocess.Popen([KUMO_BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", d],
                             env=dict(os.environ, PATH=bin_dir), stdout=log, stderr=log)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while "kumo is ready" not in open(log_path).read():
            assert time.time() < deadline and p.poll() is None, open(log_path).read()
            time.sleep(0.05)
        time.sleep(0.2)
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(log_path).read())
        assert text.count("compute driver: null, because the ns driver cannot run here: nftables") == 1, text
        assert "is not installed" in text
        ec2 = make_client(endpoint)
        iid = ec2.run_instances(ImageId=ami(endpoint), InstanceType="t3.micro", MinCount=1, MaxCount=1)[
            "Instances"][0]["InstanceId"]
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        assert inst["State"]["Name"] == "running"
        assert inst["StateReason"]["Code"] == "Kumo.NullDriver"
        assert "nftables (`nft`), which enforces security groups, is not installed" in inst["StateReason"]["Message"]
    finally:
        p.terminate()
        p.wait(10)
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(bin_dir, ignore_errors=True)
