"""Accounts and regions: a 12-digit access key is its own account; scopes never mix; STS."""

from conftest import Cli, make_client


def test_get_caller_identity(kumo):
    assert Cli(kumo.endpoint, key="123456789012")("sts", "get-caller-identity") == {
        "UserId": "123456789012",
        "Account": "123456789012",
        "Arn": "arn:aws:iam::123456789012:root",
    }
    sts = make_client(kumo.endpoint, service="sts", key="AKIAEXAMPLE")
    assert sts.get_caller_identity()["Account"] == "000000000000"


def test_accounts_are_isolated(kumo):
    a = Cli(kumo.endpoint, key="111111111111")
    b = Cli(kumo.endpoint, key="222222222222")
    a("ec2", "create-key-pair", "--key-name", "shared-name", "--key-type", "ed25519")
    assert b("ec2", "describe-key-pairs")["KeyPairs"] == []
    # The same name in another account is another key pair.
    b("ec2", "create-key-pair", "--key-name", "shared-name", "--key-type", "ed25519")
    ka = a("ec2", "describe-key-pairs")["KeyPairs"]
    kb = b("ec2", "describe-key-pairs")["KeyPairs"]
    assert len(ka) == len(kb) == 1 and ka[0]["KeyPairId"] != kb[0]["KeyPairId"]
    code, _ = b.error("ec2", "create-tags", "--resources", ka[0]["KeyPairId"], "--tags", "Key=a,Value=b")
    assert code == "InvalidKeyPair.NotFound"


def test_regions_are_isolated(kumo):
    eu = Cli(kumo.endpoint, region="eu-west-1")
    us = Cli(kumo.endpoint, region="us-east-1")
    eu("ec2", "create-key-pair", "--key-name", "regional", "--key-type", "ed25519")
    assert us("ec2", "describe-key-pairs")["KeyPairs"] == []
    assert len(eu("ec2", "describe-key-pairs")["KeyPairs"]) == 1


def test_reset_endpoints(kumo, cli):
    import urllib.request

    for path in ("/_kumo/reset", "/moto-api/reset"):
        cli("ec2", "create-key-pair", "--key-name", "gone", "--key-type", "ed25519")
        req = urllib.request.Request(kumo.endpoint + path, method="POST", data=b"")
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        assert cli("ec2", "describe-key-pairs")["KeyPairs"] == []
