"""An `ns` server killed with `kill -9` cannot clean up: its guests, namespaces, links and the
host's routes to its VPCs stay. The next server on the machine (any data directory) sweeps
them, so a VPC with the same CIDR is reachable again. (Its own module: one `ns` server at a
time per machine.)"""

import shutil
import subprocess

from conftest import Kumo, make_client
from test_compute_ns import SSH_OPTS, allow_ssh, ami, launch, ssh


def netns():
    return set(l.split()[0] for l in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.splitlines() if l.strip())


def routes_to(cidr):
    return subprocess.run(["ip", "route", "show", cidr], capture_output=True, text=True).stdout.strip()


def kumo_rules():
    """The host's rules that send what the host sends from a VPC link's address into that VPC."""
    lines = subprocess.run(["ip", "rule"], capture_output=True, text=True).stdout.splitlines()
    return [l for l in lines if 20000 <= int(l.split(":")[0]) < 20256]


def boot_in(k, cidr, tmp_path, name):
    ec2 = make_client(k.endpoint)
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"))["Subnet"]["SubnetId"]
    allow_ssh(ec2, vpc)
    pem = ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyMaterial"]
    key = tmp_path / f"{name}.pem"
    key.write_text(pem)
    key.chmod(0o600)
    inst = launch(ec2, k, KeyName=name, SubnetId=subnet)
    return str(key), inst["PrivateIpAddress"]


def test_the_next_server_sweeps_what_a_killed_one_left(tmp_path):
    cidr = "10.79.0.0/16"
    before = netns()
    a = Kumo(extra_args=["--driver", "ns"]).start()
    b = None
    try:
        key, ip = boot_in(a, cidr, tmp_path, "a-key")
        assert ssh(key, ip, "true").returncode == 0
        # A second VPC with the same CIDR: the host routes it into neither, and keeps a rule
        # per VPC link for the way in by its own address.
        boot_in(a, cidr, tmp_path, "a-key2")
        assert routes_to(cidr).startswith("unreachable"), routes_to(cidr)
        assert len(kumo_rules()) == 2, kumo_rules()
        a.kill9()
        left = netns() - before
        assert left, "a killed server leaves its namespaces"
        assert routes_to(cidr), "and the host's route to its VPCs"
        # The guest outlived its server: reached from its VPC link's own address (the first
        # link's host end).
        p = subprocess.run(["ssh", "-b", "100.127.0.1", "-i", key, *SSH_OPTS, f"ec2-user@{ip}", "true"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr

        b = Kumo(extra_args=["--driver", "ns"]).start()
        assert not (left & netns()), "the next server removed the dead one's namespaces"
        assert not routes_to(cidr), "and the unreachable route no link held"
        assert not kumo_rules(), "and its rules"
        assert "killed left" in open(b.log_path).read()
        # The dead server's guest is gone with them, and the same CIDR works in the new one.
        key2, ip2 = boot_in(b, cidr, tmp_path, "b-key")
        p = ssh(key2, ip2, "hostname -I")
        assert p.returncode == 0, p.stderr
        assert ip2 in p.stdout.split()
    finally:
        for k in (a, b):
            if k:
                k.stop()
                shutil.rmtree(k.data_dir, ignore_errors=True)
    assert not routes_to(cidr), "a clean stop leaves no route behind"
    assert not kumo_rules(), "nor a rule"
    assert netns() <= before
