"""CreateTags, DeleteTags and DescribeTags, with AWS's limits and errors."""

import pytest
from botocore.exceptions import ClientError

from conftest import error_code


@pytest.fixture
def key_id(cli):
    return cli("ec2", "create-key-pair", "--key-name", "k", "--key-type", "ed25519")["KeyPairId"]


def test_create_and_describe(cli, key_id):
    cli("ec2", "create-tags", "--resources", key_id, "--tags", "Key=env,Value=dev", "Key=Name,Value=main")
    tags = cli("ec2", "describe-tags")["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("Name", "main"), ("env", "dev")]
    assert all(t["ResourceId"] == key_id and t["ResourceType"] == "key-pair" for t in tags)
    # Overwriting a key keeps one tag with the new value.
    cli("ec2", "create-tags", "--resources", key_id, "--tags", "Key=env,Value=prod")
    tags = cli("ec2", "describe-tags", "--filters", "Name=key,Values=env")["Tags"]
    assert [(t["Key"], t["Value"]) for t in tags] == [("env", "prod")]
    # A tag without a value gets the empty string.
    cli("ec2", "create-tags", "--resources", key_id, "--tags", "Key=flag")
    tags = cli("ec2", "describe-tags", "--filters", "Name=key,Values=flag")["Tags"]
    assert tags[0]["Value"] == ""


def test_describe_filters(ec2):
    a = ec2.create_key_pair(KeyName="a", KeyType="ed25519")["KeyPairId"]
    b = ec2.create_key_pair(KeyName="b", KeyType="ed25519")["KeyPairId"]
    ec2.create_tags(Resources=[a, b], Tags=[{"Key": "Owner", "Value": "TeamA"}])
    ec2.create_tags(Resources=[b], Tags=[{"Key": "stage", "Value": "beta"}])
    f = lambda *fs: sorted((t["ResourceId"], t["Key"]) for t in ec2.describe_tags(Filters=list(fs))["Tags"])  # noqa: E731
    assert f({"Name": "resource-id", "Values": [b]}) == [(b, "Owner"), (b, "stage")]
    assert f({"Name": "value", "Values": ["bet*"]}) == [(b, "stage")]
    assert f({"Name": "tag:Owner", "Values": ["TeamA"]}) == sorted([(a, "Owner"), (b, "Owner")])
    assert f({"Name": "resource-type", "Values": ["key-pair"]}, {"Name": "key", "Values": ["stage"]}) == [(b, "stage")]
    assert f({"Name": "resource-type", "Values": ["instance"]}) == []
    with pytest.raises(ClientError) as e:
        ec2.describe_tags(Filters=[{"Name": "flavour", "Values": ["x"]}])
    assert error_code(e) == "InvalidParameterValue"


def test_describe_tags_pages(ec2):
    ids = [ec2.create_key_pair(KeyName=f"k{i}", KeyType="ed25519")["KeyPairId"] for i in range(4)]
    ec2.create_tags(Resources=ids, Tags=[{"Key": f"t{j}", "Value": "v"} for j in range(3)])
    pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Tags"]) for p in pages] == [5, 5, 2]
    seen = [(t["ResourceId"], t["Key"]) for p in pages for t in p["Tags"]]
    assert len(set(seen)) == 12
    for bad in (4, 1001):
        with pytest.raises(ClientError) as e:
            ec2.describe_tags(MaxResults=bad)
        assert error_code(e) == "InvalidParameterValue"
    with pytest.raises(ClientError) as e:
        ec2.describe_tags(MaxResults=5, NextToken="bogus")
    assert error_code(e) == "InvalidParameterValue"


def test_limits(cli, key_id):
    too_many = [f"Key=k{i},Value=v" for i in range(51)]
    code, msg = cli.error("ec2", "create-tags", "--resources", key_id, "--tags", *too_many)
    assert (code, msg) == ("TagLimitExceeded", "The resultant tag set must not have more than 50 user tags.")
    cli("ec2", "create-tags", "--resources", key_id, "--tags", *too_many[:50])
    code, _ = cli.error("ec2", "create-tags", "--resources", key_id, "--tags", "Key=one-more,Value=v")
    assert code == "TagLimitExceeded"
    # Overwriting an existing key does not count against the limit.
    cli("ec2", "create-tags", "--resources", key_id, "--tags", "Key=k0,Value=new")
    code, msg = cli.error("ec2", "create-tags", "--resources", key_id, "--tags", f"Key={'k' * 129},Value=v")
    assert (code, msg) == ("InvalidParameterValue", "Tag key exceeds the maximum length of 128 characters")
    code, _ = cli.error("ec2", "create-tags", "--resources", key_id, "--tags", f"Key=v,Value={'v' * 257}")
    assert code == "InvalidParameterValue"
    code, msg = cli.error("ec2", "create-tags", "--resources", key_id, "--tags", "Key=aws:owner,Value=x")
    assert code == "InvalidParameterValue" and "reserved for internal use" in msg


def test_bad_resource_ids(cli, key_id):
    code, msg = cli.error("ec2", "create-tags", "--resources", "banana", "--tags", "Key=a,Value=b")
    assert (code, msg) == ("InvalidID", "The ID 'banana' is not valid")
    code, msg = cli.error("ec2", "create-tags", "--resources", "key-0123456789abcdef0", "--tags", "Key=a,Value=b")
    assert code == "InvalidKeyPair.NotFound"
    code, msg = cli.error("ec2", "create-tags", "--resources", "i-0123456789abcdef0", "--tags", "Key=a,Value=b")
    assert (code, msg) == ("InvalidInstanceID.NotFound", "The instance ID 'i-0123456789abcdef0' does not exist")
    # All or nothing: one bad id in the list and no resource is tagged.
    cli.error("ec2", "create-tags", "--resources", key_id, "banana", "--tags", "Key=a,Value=b")
    assert cli("ec2", "describe-tags")["Tags"] == []


def test_delete_semantics(cli, key_id):
    cli("ec2", "create-tags", "--resources", key_id, "--tags", "Key=a,Value=1", "Key=b,Value=2", "Key=c,Value=", "Key=d,Value=4")
    keys = lambda: sorted(t["Key"] for t in cli("ec2", "describe-tags")["Tags"])  # noqa: E731
    cli("ec2", "delete-tags", "--resources", key_id, "--tags", "Key=a,Value=wrong")
    assert keys() == ["a", "b", "c", "d"], "a value that does not match deletes nothing"
    cli("ec2", "delete-tags", "--resources", key_id, "--tags", "Key=a,Value=1")
    assert keys() == ["b", "c", "d"]
    cli("ec2", "delete-tags", "--resources", key_id, "--tags", "Key=b")
    assert keys() == ["c", "d"], "a key alone deletes whatever the value"
    cli("ec2", "delete-tags", "--resources", key_id, "--tags", "Key=d,Value=")
    assert keys() == ["c", "d"], "an empty value deletes only a tag whose value is empty"
    cli("ec2", "delete-tags", "--resources", key_id, "--tags", "Key=c,Value=")
    assert keys() == ["d"]
    cli("ec2", "delete-tags", "--resources", key_id)
    assert keys() == [], "no tags named deletes them all"


def test_deleting_a_resource_deletes_its_tags(cli, key_id):
    cli("ec2", "create-tags", "--resources", key_id, "--tags", "Key=a,Value=1")
    cli("ec2", "delete-key-pair", "--key-pair-id", key_id)
    assert cli("ec2", "describe-tags")["Tags"] == []
