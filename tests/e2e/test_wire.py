"""The EC2 wire itself, checked with raw HTTP: envelopes, statuses, request ids, DryRun."""

import re
import xml.etree.ElementTree as ET

from conftest import post

NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"


def test_success_envelope_and_request_id(kumo):
    status, headers, body = post(kumo.endpoint, "Action=DescribeRegions&Version=2016-11-15")
    assert status == 200
    assert headers["content-type"] == "text/xml;charset=UTF-8"
    root = ET.fromstring(body)
    assert root.tag == NS + "DescribeRegionsResponse"
    rid = root.find(NS + "requestId").text
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", rid)
    assert headers["x-amzn-requestid"] == rid
    items = root.find(NS + "regionInfo").findall(NS + "item")
    assert {i.find(NS + "regionName").text for i in items} >= {"us-east-1", "eu-west-1"}


def test_error_envelope(kumo):
    status, headers, body = post(kumo.endpoint, "Action=DescribeKeyPairs&Version=2016-11-15&KeyName.1=nope")
    assert status == 400
    root = ET.fromstring(body)
    assert root.tag == "Response"
    assert root.find("Errors/Error/Code").text == "InvalidKeyPair.NotFound"
    assert root.find("Errors/Error/Message").text == "The key pair 'nope' does not exist"
    assert root.find("RequestID").text == headers["x-amzn-requestid"]


def code_of(body):
    return ET.fromstring(body).find("Errors/Error/Code").text


def message_of(body):
    return ET.fromstring(body).find("Errors/Error/Message").text


def test_invalid_action(kumo):
    status, _, body = post(kumo.endpoint, "Action=FlyToTheMoon&Version=2016-11-15")
    assert status == 400
    assert code_of(body) == "InvalidAction"
    assert message_of(body) == "The action FlyToTheMoon is not valid for this web service."


def test_missing_parameter(kumo):
    status, _, body = post(kumo.endpoint, "Action=CreateKeyPair&Version=2016-11-15")
    assert (status, code_of(body)) == (400, "MissingParameter")
    assert message_of(body) == "The request must contain the parameter KeyName"


def test_unknown_parameter(kumo):
    status, _, body = post(kumo.endpoint, "Action=DescribeRegions&Version=2016-11-15&Bogus=1")
    assert (status, code_of(body)) == (400, "UnknownParameter")
    assert message_of(body) == "The parameter Bogus is not recognized"


def test_malformed_values(kumo):
    for body in [
        "Action=DescribeRegions&DryRun=maybe",
        "Action=DescribeInstanceTypes&MaxResults=ten",
        "Action=CreateKeyPair&KeyName=k&KeyType=dsa",
        "Action=ImportKeyPair&KeyName=k&PublicKeyMaterial=%%%",
    ]:
        status, _, resp = post(kumo.endpoint, body + "&Version=2016-11-15")
        assert (status, code_of(resp)) == (400, "InvalidParameterValue"), body


def test_get_requests_work(kumo):
    status, _, body = post(kumo.endpoint, "Action=DescribeRegions&Version=2016-11-15", method="GET")
    assert status == 200
    assert "<DescribeRegionsResponse" in body


def test_dry_run_on_a_mutation_changes_nothing(kumo, cli):
    status, _, body = post(kumo.endpoint, "Action=CreateKeyPair&Version=2016-11-15&KeyName=dry&DryRun=true")
    assert (status, code_of(body)) == (412, "DryRunOperation")
    assert message_of(body) == "Request would have succeeded, but DryRun flag is set."
    assert cli("ec2", "describe-key-pairs")["KeyPairs"] == []


def test_dry_run_reports_the_real_error(kumo, cli):
    cli("ec2", "create-key-pair", "--key-name", "taken")
    status, _, body = post(kumo.endpoint, "Action=CreateKeyPair&Version=2016-11-15&KeyName=taken&DryRun=true")
    assert (status, code_of(body)) == (400, "InvalidKeyPair.Duplicate")


def test_dry_run_through_the_cli(cli):
    code, _ = cli.error("ec2", "describe-regions", "--dry-run")
    assert code == "DryRunOperation"
    key = cli("ec2", "create-key-pair", "--key-name", "k")
    code, _ = cli.error("ec2", "create-tags", "--resources", key["KeyPairId"], "--tags", "Key=a,Value=b", "--dry-run")
    assert code == "DryRunOperation"
    assert cli("ec2", "describe-tags")["Tags"] == []
    code, _ = cli.error("ec2", "delete-key-pair", "--key-name", "k", "--dry-run")
    assert code == "DryRunOperation"
    assert len(cli("ec2", "describe-key-pairs")["KeyPairs"]) == 1


def test_not_implemented_is_an_explicit_error(kumo):
    # An operation of the EC2 API outside Kumo's allow-list is answered like an unknown action.
    status, _, body = post(kumo.endpoint, "Action=CreateFleet&Version=2016-11-15&Type=instant")
    assert status == 400
    assert code_of(body) == "InvalidAction"


def test_unsigned_requests_use_the_default_region(kumo):
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = post(kumo.endpoint, "Action=DescribeAvailabilityZones&Version=2016-11-15", headers=unsigned)
    assert status == 200
    assert "<zoneName>us-east-1a</zoneName>" in body


def test_xml_escaping_of_user_text(cli):
    key = cli("ec2", "create-key-pair", "--key-name", "a<b>&'\"c")
    assert key["KeyName"] == "a<b>&'\"c"
    assert "\n" in key["KeyMaterial"]


def test_strict_client_shape_rules(kumo, cli):
    """What the Rust and Go SDKs insist on: the root is `{Action}Response` in the 2016-11-15
    namespace, and every list's children are `item`s."""
    key = cli("ec2", "create-key-pair", "--key-name", "shape", "--key-type", "ed25519")
    cli("ec2", "create-tags", "--resources", key["KeyPairId"], "--tags", "Key=a,Value=b")
    calls = {
        "DescribeRegions": "",
        "DescribeAvailabilityZones": "",
        "DescribeInstanceTypes": "&InstanceType.1=t3.micro",
        "DescribeInstanceTypeOfferings": "&MaxResults=5",
        "DescribeKeyPairs": "&IncludePublicKey=true",
        "DescribeTags": "",
        "CreateTags": f"&ResourceId.1={key['KeyPairId']}&Tag.1.Key=c&Tag.1.Value=d",
        "DeleteKeyPair": "&KeyName=shape",
    }
    lists = {"regionInfo", "availabilityZoneInfo", "instanceTypeSet", "instanceTypeOfferingSet", "keySet", "tagSet",
             "messageSet", "supportedArchitectures", "networkCards", "supportedUsageClasses"}
    for action, extra in calls.items():
        status, _, body = post(kumo.endpoint, f"Action={action}&Version=2016-11-15{extra}")
        assert status == 200, body
        root = ET.fromstring(body)
        assert root.tag == f"{NS}{action}Response"
        for el in root.iter():
            if el.tag.removeprefix(NS) in lists:
                assert all(c.tag == NS + "item" for c in el), (action, el.tag)


def test_session_data_channel_answers_bad_requests(kumo):
    """Session Manager's data channel: a plain GET is answered in EC2's error envelope, and a
    WebSocket for a session that is not active is closed with the reason."""
    import json
    import os
    import subprocess
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(kumo.endpoint + "/v1/data-channel/root-0123456789abcdef0")
        raise AssertionError("a plain GET was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400 and code_of(e.read().decode()) == "InvalidRequest"
    js = os.path.join(os.path.dirname(os.path.abspath(__file__)), "js")
    url = kumo.endpoint.replace("http://", "ws://") + "/v1/data-channel/root-0123456789abcdef0?role=publish_subscribe"
    p = subprocess.run(["node", os.path.join(js, "session.js"), url, "no-such-token", "24", "80"], capture_output=True, text=True, timeout=60, cwd=js)
    out = json.loads(p.stdout)
    assert out["closed"] and "is not active" in out["closedPayload"]["Output"], out
