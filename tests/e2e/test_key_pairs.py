"""Key pairs, with fingerprints checked against openssl and ssh-keygen."""

import base64
import os
import shutil
import subprocess

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw).stdout


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


def test_created_rsa_fingerprint_matches_openssl(cli, tmp):
    key = cli("ec2", "create-key-pair", "--key-name", "k")
    assert key["KeyPairId"].startswith("key-") and len(key["KeyPairId"]) == 21
    pem = tmp / "k.pem"
    pem.write_text(key["KeyMaterial"])
    assert key["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    out = sh(f"openssl pkcs8 -in {pem} -inform PEM -outform DER -topk8 -nocrypt | openssl sha1 -c")
    assert out.split("= ")[-1].strip() == key["KeyFingerprint"]
    # The private key really is the pair of the stored public key.
    os.chmod(pem, 0o600)
    derived = sh(f"ssh-keygen -y -f {pem}").split()[:2]
    described = cli("ec2", "describe-key-pairs", "--key-names", "k", "--include-public-key")["KeyPairs"][0]
    assert described["PublicKey"].split()[:2] == derived
    assert described["KeyType"] == "rsa"
    assert described["KeyFingerprint"] == key["KeyFingerprint"]


def test_cli_query_writes_a_usable_pem(cli, tmp):
    p = cli.raw("ec2", "create-key-pair", "--key-name", "k2", "--query", "KeyMaterial", "--output", "text")
    assert p.returncode == 0, p.stderr
    pem = tmp / "k2.pem"
    pem.write_text(p.stdout)
    os.chmod(pem, 0o600)
    assert sh(f"ssh-keygen -y -f {pem}").startswith("ssh-rsa ")


def test_created_ed25519_fingerprint_matches_ssh_keygen(cli, tmp):
    key = cli("ec2", "create-key-pair", "--key-name", "e", "--key-type", "ed25519")
    assert key["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    pem = tmp / "e.pem"
    pem.write_text(key["KeyMaterial"])
    os.chmod(pem, 0o600)
    pub = tmp / "e.pub"
    pub.write_text(sh(f"ssh-keygen -y -f {pem}"))
    printed = sh(f"ssh-keygen -l -E sha256 -f {pub}").split()[1]
    assert printed == "SHA256:" + key["KeyFingerprint"].rstrip("=")
    assert len(base64.b64decode(key["KeyFingerprint"])) == 32
    assert cli("ec2", "describe-key-pairs", "--key-names", "e")["KeyPairs"][0]["KeyType"] == "ed25519"


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_ppk_format(cli, tmp, key_type):
    key = cli("ec2", "create-key-pair", "--key-name", "p", "--key-type", key_type, "--key-format", "ppk")
    alg = "ssh-rsa" if key_type == "rsa" else "ssh-ed25519"
    assert key["KeyMaterial"].startswith(f"PuTTY-User-Key-File-2: {alg}\nEncryption: none\n")
    # puttygen is one of the tools scripts/test installs.
    assert shutil.which("puttygen"), "puttygen (putty-tools) is missing: run scripts/test, which installs it"
    ppk = tmp / "p.ppk"
    ppk.write_text(key["KeyMaterial"])
    # puttygen checks the file's MAC; the public key it derives is the stored one.
    out = sh(f"puttygen {ppk} -O public-openssh")
    described = cli("ec2", "describe-key-pairs", "--key-names", "p", "--include-public-key")["KeyPairs"][0]
    assert out.split()[:2] == described["PublicKey"].split()[:2]


def test_imported_rsa_fingerprint_is_md5_of_spki(cli, tmp):
    sh(f"ssh-keygen -q -t rsa -b 2048 -N '' -C me -f {tmp}/id_rsa")
    expected = sh(f"ssh-keygen -e -m PKCS8 -f {tmp}/id_rsa.pub | openssl pkey -pubin -outform DER | openssl md5 -c")
    expected = expected.split("= ")[-1].strip()
    got = cli("ec2", "import-key-pair", "--key-name", "mine", "--public-key-material", f"fileb://{tmp}/id_rsa.pub")
    assert got["KeyFingerprint"] == expected
    assert got["KeyName"] == "mine" and got["KeyPairId"].startswith("key-")
    # The same key as RFC 4716 and as base64 DER gives the same fingerprint.
    sh(f"ssh-keygen -e -f {tmp}/id_rsa.pub > {tmp}/rfc4716.pub")
    got2 = cli("ec2", "import-key-pair", "--key-name", "mine2", "--public-key-material", f"fileb://{tmp}/rfc4716.pub")
    assert got2["KeyFingerprint"] == expected
    sh(f"ssh-keygen -e -m PKCS8 -f {tmp}/id_rsa.pub | openssl pkey -pubin -outform DER | base64 -w0 > {tmp}/der.b64")
    got3 = cli("ec2", "import-key-pair", "--key-name", "mine3", "--public-key-material", f"fileb://{tmp}/der.b64")
    assert got3["KeyFingerprint"] == expected


def test_imported_ed25519(cli, tmp):
    sh(f"ssh-keygen -q -t ed25519 -N '' -f {tmp}/id_ed25519")
    got = cli("ec2", "import-key-pair", "--key-name", "ed", "--public-key-material", f"fileb://{tmp}/id_ed25519.pub")
    printed = sh(f"ssh-keygen -l -E sha256 -f {tmp}/id_ed25519.pub").split()[1]
    assert printed == "SHA256:" + got["KeyFingerprint"].rstrip("=")
    d = cli("ec2", "describe-key-pairs", "--key-names", "ed", "--include-public-key")["KeyPairs"][0]
    assert d["KeyType"] == "ed25519"
    assert d["PublicKey"].split()[:2] == open(f"{tmp}/id_ed25519.pub").read().split()[:2]


def test_import_rejects_bad_material(cli, tmp):
    for name, material in [("junk", b"hello"), ("ecdsa", None)]:
        path = tmp / name
        if material is None:
            sh(f"ssh-keygen -q -t ecdsa -N '' -f {tmp}/ec")
            path = tmp / "ec.pub"
        else:
            path.write_bytes(material)
        code, msg = cli.error("ec2", "import-key-pair", "--key-name", name, "--public-key-material", f"fileb://{path}")
        assert (code, msg) == ("InvalidKey.Format", "Key is not in valid OpenSSH public key format")


def test_duplicates(cli, tmp):
    cli("ec2", "create-key-pair", "--key-name", "dup")
    code, msg = cli.error("ec2", "create-key-pair", "--key-name", "dup")
    assert (code, msg) == ("InvalidKeyPair.Duplicate", "The keypair 'dup' already exists.")
    sh(f"ssh-keygen -q -t ed25519 -N '' -f {tmp}/x")
    code, _ = cli.error("ec2", "import-key-pair", "--key-name", "dup", "--public-key-material", f"fileb://{tmp}/x.pub")
    assert code == "InvalidKeyPair.Duplicate"


def test_not_found(cli):
    code, msg = cli.error("ec2", "describe-key-pairs", "--key-names", "ghost")
    assert (code, msg) == ("InvalidKeyPair.NotFound", "The key pair 'ghost' does not exist")
    code, _ = cli.error("ec2", "describe-key-pairs", "--key-pair-ids", "key-0123456789abcdef0")
    assert code == "InvalidKeyPair.NotFound"
    code, _ = cli.error("ec2", "delete-key-pair", "--key-pair-id", "key-0123456789abcdef0")
    assert code == "InvalidKeyPair.NotFound"


def test_bad_key_names(cli):
    code, _ = cli.error("ec2", "create-key-pair", "--key-name", "x" * 256)
    assert code == "InvalidParameterValue"
    code, _ = cli.error("ec2", "create-key-pair", "--key-name", " padded ")
    assert code == "InvalidParameterValue"
    assert cli("ec2", "create-key-pair", "--key-name", "y" * 255)["KeyName"] == "y" * 255


def test_delete_by_name_and_id(cli):
    a = cli("ec2", "create-key-pair", "--key-name", "a", "--key-type", "ed25519")
    cli("ec2", "create-key-pair", "--key-name", "b", "--key-type", "ed25519")
    out = cli("ec2", "delete-key-pair", "--key-pair-id", a["KeyPairId"])
    assert out["Return"] is True and out["KeyPairId"] == a["KeyPairId"]
    cli("ec2", "delete-key-pair", "--key-name", "b")
    assert cli("ec2", "describe-key-pairs")["KeyPairs"] == []
    # Deleting a name that does not exist succeeds, as in AWS.
    assert cli("ec2", "delete-key-pair", "--key-name", "never")["Return"] is True


def test_filters(ec2):
    for n in ["web-1", "web-2", "db-1"]:
        ec2.create_key_pair(KeyName=n, KeyType="ed25519")
    names = lambda r: sorted(k["KeyName"] for k in r["KeyPairs"])  # noqa: E731
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["web*"]}])) == ["web-1", "web-2"]
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["db-?"]}])) == ["db-1"]
    fp = ec2.describe_key_pairs(KeyNames=["web-2"])["KeyPairs"][0]["KeyFingerprint"]
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "fingerprint", "Values": [fp]}])) == ["web-2"]
    kid = ec2.describe_key_pairs(KeyNames=["db-1"])["KeyPairs"][0]["KeyPairId"]
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "key-pair-id", "Values": [kid]}])) == ["db-1"]
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "env", "Value": "prod"}])
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "tag:env", "Values": ["prod"]}])) == ["db-1"]
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "tag-key", "Values": ["env"]}])) == ["db-1"]
    assert names(ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["web*"]}, {"Name": "tag:env", "Values": ["prod"]}])) == []
    with pytest.raises(ClientError) as e:
        ec2.describe_key_pairs(Filters=[{"Name": "color", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"


def test_tags_at_creation(ec2):
    k = ec2.create_key_pair(KeyName="t", KeyType="ed25519", TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "team", "Value": "a"}]}])
    assert k["Tags"] == [{"Key": "team", "Value": "a"}]
    d = ec2.describe_key_pairs(KeyNames=["t"])["KeyPairs"][0]
    assert d["Tags"] == [{"Key": "team", "Value": "a"}]
    with pytest.raises(ClientError) as e:
        ec2.create_key_pair(KeyName="u", TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.describe_key_pairs(KeyNames=["u"])
    assert error_code(e) == "InvalidKeyPair.NotFound"


def test_create_time_is_now(ec2):
    import datetime

    ec2.create_key_pair(KeyName="when", KeyType="ed25519")
    t = ec2.describe_key_pairs(KeyNames=["when"])["KeyPairs"][0]["CreateTime"]
    assert abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) < 60
