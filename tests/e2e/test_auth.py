"""Strict SigV4 authentication against a credentials file, and the loopback rule."""

import os
import shutil
import subprocess
import tempfile

import pytest
from botocore.exceptions import ClientError

from conftest import KUMO_BIN, Cli, Kumo, error_code, free_port, make_client, post


@pytest.fixture(scope="module")
def strict():
    d = tempfile.mkdtemp(prefix="kumo-auth-")
    creds = os.path.join(d, "credentials")
    with open(creds, "w") as f:
        f.write("# access key, secret, account\nAKIDALICE alice-secret 444455556666\n210987654321 bob-secret\n")
    k = Kumo(data_dir=d, extra_args=["--auth", "strict", "--credentials", creds]).start()
    yield k
    k.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_valid_signatures_pass(strict):
    c = make_client(strict.endpoint, key="AKIDALICE", secret="alice-secret")
    assert c.describe_regions()["Regions"]
    sts = make_client(strict.endpoint, service="sts", key="AKIDALICE", secret="alice-secret")
    assert sts.get_caller_identity()["Account"] == "444455556666"
    # A 12-digit key without an account in the file is its own account.
    bob = Cli(strict.endpoint, key="210987654321", secret="bob-secret")
    assert bob("sts", "get-caller-identity")["Account"] == "210987654321"
    assert bob("ec2", "create-key-pair", "--key-name", "signed", "--key-type", "ed25519")["KeyName"] == "signed"


def test_bad_signatures_fail(strict):
    for key, secret in [("AKIDALICE", "wrong"), ("AKIDNOBODY", "x")]:
        c = make_client(strict.endpoint, key=key, secret=secret)
        with pytest.raises(ClientError) as e:
            c.describe_regions()
        assert error_code(e) == "AuthFailure"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    status, _, body = post(strict.endpoint, "Action=DescribeRegions&Version=2016-11-15", headers={})
    assert status == 401 and "<Code>AuthFailure</Code>" in body


def test_kumo_tools_sign_like_the_cli(strict):
    """`kumo describe-unused-ips` signs its calls with SigV4, so strict servers (and AWS) accept it."""
    from test_unused_ips import unused_ips

    sid = make_client(strict.endpoint, key="AKIDALICE", secret="alice-secret").describe_subnets()["Subnets"][0]["SubnetId"]
    ok = unused_ips(strict, sid, "--output", "json", key="AKIDALICE", secret="alice-secret")
    assert ok.returncode == 0, ok.stderr
    bad = unused_ips(strict, sid, key="AKIDALICE", secret="wrong")
    assert bad.returncode == 255 and "AuthFailure" in bad.stderr


def test_refuses_open_auth_beyond_loopback():
    # Binding is refused before any socket opens, so nothing listens beyond loopback.
    d = tempfile.mkdtemp(prefix="kumo-refuse-")
    try:
        for extra in (["--auth", "open"], []):
            p = subprocess.run(
                [KUMO_BIN, "serve", "--listen", f"0.0.0.0:{free_port()}", "--data-dir", d, *extra],
                capture_output=True, text=True, timeout=30,
            )
            assert p.returncode != 0
            assert "strict" in p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
