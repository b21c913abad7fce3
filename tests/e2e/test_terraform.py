"""Terraform's aws provider, unchanged, against Kumo: each configuration in tests/e2e/terraform
applies, plans again with no change (every attribute reads back as written), and destroys
to nothing. Skipped where Terraform or the provider mirror is absent."""

import os
import shutil
import subprocess
import tempfile

import pytest

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "terraform")
TERRAFORM = shutil.which("terraform")
MIRROR = "/opt/tf-plugins"
PROVIDER = os.path.join(MIRROR, "registry.terraform.io", "hashicorp", "aws", "5.100.0")

pytestmark = pytest.mark.skipif(
    TERRAFORM is None or not os.path.isdir(PROVIDER),
    reason="Terraform or the hashicorp/aws 5.100.0 filesystem mirror under /opt/tf-plugins is absent",
)

CLI_CONFIG = f"""
provider_installation {{
  filesystem_mirror {{
    path    = "{MIRROR}"
    include = ["registry.terraform.io/hashicorp/aws"]
  }}
  direct {{
    exclude = ["registry.terraform.io/hashicorp/aws"]
  }}
}}
"""

PROVIDER_BLOCK = """
terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "5.100.0" }}
  }}
}}

provider "aws" {{
  region                      = "eu-west-1"
  access_key                  = "test"
  secret_key                  = "test"
  skip_metadata_api_check     = true
  # The account id comes from Kumo's STS GetCallerIdentity, as from AWS's.
  endpoints {{
    ec2 = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
"""


class Workspace:
    def __init__(self, endpoint, config):
        self.dir = tempfile.mkdtemp(prefix="kumo-tf-")
        with open(os.path.join(self.dir, "provider.tf"), "w") as f:
            f.write(PROVIDER_BLOCK.format(endpoint=endpoint))
        shutil.copy(os.path.join(HERE, config), self.dir)
        rc = os.path.join(self.dir, "cli.tfrc")
        with open(rc, "w") as f:
            f.write(CLI_CONFIG)
        self.env = dict(os.environ, TF_CLI_CONFIG_FILE=rc, TF_IN_AUTOMATION="1", TF_INPUT="0",
                        CHECKPOINT_DISABLE="1")

    def run(self, *args, ok=(0,)):
        p = subprocess.run([TERRAFORM, *args, "-no-color"], cwd=self.dir, env=self.env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode in ok, f"terraform {' '.join(args)} exited {p.returncode}:\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
        return p

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def apply_plan_destroy(kumo, config):
    ws = Workspace(kumo.endpoint, config)
    try:
        ws.run("init", "-input=false")
        ws.run("apply", "-auto-approve", "-input=false")
        # -detailed-exitcode: 0 is no change, 2 is a diff.
        plan = ws.run("plan", "-detailed-exitcode", "-input=false", ok=(0, 2))
        assert plan.returncode == 0, f"the second plan has changes:\n{plan.stdout[-6000:]}"
        ws.run("destroy", "-auto-approve", "-input=false")
    finally:
        ws.close()


def test_vpc_subnet_gateway_routes_and_security_groups(kumo, ec2):
    before = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    apply_plan_destroy(kumo, "network.tf")
    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == before
    groups = ec2.describe_security_groups()["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["default"] * len(before)
    assert ec2.describe_internet_gateways(Filters=[{"Name": "tag:Name", "Values": ["tf-main"]}])["InternetGateways"] == []


def test_instance_with_volumes_user_data_metadata_and_elastic_ip(kumo, ec2):
    apply_plan_destroy(kumo, "instance.tf")
    states = [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    assert set(states) <= {"terminated"}
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    assert [v for v in ec2.describe_volumes()["Volumes"] if v["State"] != "deleted"] == []
