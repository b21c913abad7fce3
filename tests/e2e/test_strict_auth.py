"""Strict SigV4 tried as an attacker would: reset without authority, a captured request's body
swapped, a replay from long ago, presigned URLs past their expiry, session tokens. Each attack
is performed with real clients (boto3, the AWS CLI, botocore's signer) or raw HTTP, and must
fail with AWS's code."""

import datetime
import os
import shutil
import subprocess
import tempfile
import urllib.request
from unittest import mock

import botocore.auth
import botocore.credentials
import botocore.exceptions
import pytest
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from conftest import KUMO_BIN, Kumo, error_code, make_client

CREDS = """# key, secret, [account], [session token]
AKIDALICE alice-secret 444455556666
AKIDTEMP temp-secret 444455556666 FQoGZXIvYXdzEXAMPLETOKEN
AKIDPLAIN plain-secret
"""

FORM = "application/x-www-form-urlencoded; charset=utf-8"


def strict_server(*extra):
    d = tempfile.mkdtemp(prefix="kumo-strict-")
    creds = os.path.join(d, "credentials")
    with open(creds, "w") as f:
        f.write(CREDS)
    return Kumo(data_dir=d, extra_args=["--auth", "strict", "--credentials", creds, *extra]).start()


@pytest.fixture(scope="module")
def strict():
    k = strict_server()
    yield k
    k.stop()
    shutil.rmtree(k.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def strict_ops():
    """A strict server that serves reset and admin calls to signed requests, on a test clock."""
    k = strict_server("--enable-reset", "--enable-admin", "--test-clock")
    yield k
    k.stop()
    shutil.rmtree(k.data_dir, ignore_errors=True)


def send(url, method, headers, body):
    req = urllib.request.Request(url, data=body if method != "GET" else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def signed_request(endpoint, path="/", body=b"Action=DescribeRegions&Version=2016-11-15", key="AKIDALICE",
                   secret="alice-secret", token=None, when=None, method="POST", content_type=FORM):
    """A request signed by botocore's own SigV4 signer (at `when`, else now); returns its URL,
    method, headers and body, to send as it is or tampered with."""
    req = AWSRequest(method=method, url=endpoint + path, data=body, headers={"Content-Type": content_type})
    creds = botocore.credentials.Credentials(key, secret, token)
    signer = botocore.auth.SigV4Auth(creds, "ec2", "eu-west-1")
    if when is None:
        signer.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(req)
    return req.url, method, dict(req.headers.items()), body


def code_of(text):
    import xml.etree.ElementTree as ET

    root = ET.fromstring(text)
    assert root.find("RequestID").text, text
    return root.find("Errors/Error/Code").text


def key_names(c):
    return [k["KeyName"] for k in c.describe_key_pairs()["KeyPairs"]]


# 1. Reset and admin calls need authority.

def test_reset_is_refused_without_the_flag_even_signed(strict):
    alice = make_client(strict.endpoint, key="AKIDALICE", secret="alice-secret")
    alice.create_key_pair(KeyName="precious", KeyType="ed25519")
    for path in ["/_kumo/reset", "/moto-api/reset", "/_kumo/admin/advance-clock"]:
        status, text = send(strict.endpoint + path, "POST", {}, b"")
        assert (status, code_of(text)) == (403, "UnauthorizedOperation"), (path, text)
        # Signed is not enough on a server started without --enable-reset/--enable-admin.
        status, text = send(*signed_request(strict.endpoint, path=path, body=b""))
        assert (status, code_of(text)) == (403, "UnauthorizedOperation"), (path, text)
    assert "precious" in key_names(alice)


def test_reset_with_the_flag_needs_a_signature(strict_ops):
    alice = make_client(strict_ops.endpoint, key="AKIDALICE", secret="alice-secret")
    alice.create_key_pair(KeyName="doomed", KeyType="ed25519")
    status, text = send(strict_ops.endpoint + "/_kumo/reset", "POST", {}, b"")
    assert (status, code_of(text)) == (401, "AuthFailure")
    status, text = send(*signed_request(strict_ops.endpoint, path="/_kumo/reset", body=b"", secret="wrong"))
    assert (status, code_of(text)) == (401, "AuthFailure")
    assert "doomed" in key_names(alice)
    status, text = send(*signed_request(strict_ops.endpoint, path="/moto-api/reset", body=b""))
    assert status == 200, text
    assert key_names(alice) == []


def test_kumo_admin_signs_with_the_cli_credentials(strict_ops):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDALICE", AWS_SECRET_ACCESS_KEY="wrong", AWS_REGION="eu-west-1")
    args = [KUMO_BIN, "admin", "--endpoint-url", strict_ops.endpoint, "credits", "i-0123456789abcdef0"]
    bad = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
    assert bad.returncode == 255 and "AuthFailure" in bad.stderr, bad.stderr
    env["AWS_SECRET_ACCESS_KEY"] = "alice-secret"
    good = subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)
    # Signed and allowed: the call itself runs, in alice's account, and finds no such instance.
    assert good.returncode == 255 and "InvalidInstanceID.NotFound" in good.stderr, good.stderr


# 2. The body is covered by the signature.

def test_a_captured_requests_body_cannot_be_swapped(strict):
    url, method, headers, body = signed_request(strict.endpoint)
    assert send(url, method, headers, body)[0] == 200
    evil = b"Action=CreateKeyPair&Version=2016-11-15&KeyName=evil"
    headers2 = dict(headers, **{"Content-Length": str(len(evil))})
    status, text = send(url, method, headers2, evil)
    assert (status, code_of(text)) == (401, "AuthFailure")
    # Claiming the original body's hash in an unsigned X-Amz-Content-SHA256 does not help.
    import hashlib

    headers3 = dict(headers2, **{"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    status, text = send(url, method, headers3, evil)
    assert (status, code_of(text)) == (401, "AuthFailure")
    alice = make_client(strict.endpoint, key="AKIDALICE", secret="alice-secret")
    assert "evil" not in key_names(alice)


def test_unsigned_payload_is_not_accepted_for_ec2(strict):
    req = AWSRequest(method="POST", url=strict.endpoint + "/", data=b"Action=DescribeRegions&Version=2016-11-15",
                     headers={"Content-Type": FORM, "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    # botocore signs the payload header's value as the payload hash when it is present.
    signer = botocore.auth.SigV4Auth(botocore.credentials.Credentials("AKIDALICE", "alice-secret"), "ec2", "eu-west-1")
    signer.payload = lambda request: "UNSIGNED-PAYLOAD"
    signer.add_auth(req)
    status, text = send(req.url, "POST", dict(req.headers.items()), req.body)
    assert (status, code_of(text)) == (401, "AuthFailure")


# 3. Time is checked.

def test_a_request_signed_in_2015_is_expired(strict):
    when = datetime.datetime(2015, 8, 30, 12, 36, 0)
    status, text = send(*signed_request(strict.endpoint, when=when))
    assert (status, code_of(text)) == (400, "RequestExpired")
    assert "<Message>Request has expired.</Message>" in text


def test_skew_of_more_than_15_minutes_either_way(strict):
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for minutes, ok in [(-14, True), (14, True), (-16, False), (16, False)]:
        status, text = send(*signed_request(strict.endpoint, when=now + datetime.timedelta(minutes=minutes)))
        if ok:
            assert status == 200, (minutes, text)
        else:
            assert (status, code_of(text)) == (400, "RequestExpired"), minutes


def test_the_cli_reports_request_expired(strict):
    """Through boto3 with a clock an hour behind, as a misconfigured machine would sign."""
    c = make_client(strict.endpoint, key="AKIDALICE", secret="alice-secret")
    an_hour_ago = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - datetime.timedelta(hours=1)
    with mock.patch("botocore.auth.get_current_datetime", return_value=an_hour_ago):
        with pytest.raises(ClientError) as e:
            c.describe_regions()
    assert error_code(e) == "RequestExpired"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def advance(k, seconds):
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDALICE", AWS_SECRET_ACCESS_KEY="alice-secret", AWS_REGION="eu-west-1")
    p = subprocess.run([KUMO_BIN, "admin", "--endpoint-url", k.endpoint, "advance-clock", str(seconds)],
                       env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_presigned_urls_honour_their_expiry_on_the_test_clock(strict_ops):
    c = make_client(strict_ops.endpoint, key="AKIDALICE", secret="alice-secret")
    url = c.generate_presigned_url("describe_regions", Params={}, ExpiresIn=60, HttpMethod="GET")
    assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
    status, text = send(url, "GET", {}, None)
    assert status == 200 and "<regionInfo>" in text, text
    # An edited presigned URL fails its signature.
    status, text = send(url.replace("DescribeRegions", "DescribeVpcs"), "GET", {}, None)
    assert (status, code_of(text)) == (401, "AuthFailure")
    advance(strict_ops, 61)
    status, text = send(url, "GET", {}, None)
    assert (status, code_of(text)) == (400, "RequestExpired")


def test_the_test_clock_is_the_servers_clock(strict_ops):
    advance(strict_ops, 3600)
    real_now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    # Signed by the machine's clock, the request is now more than 15 minutes behind.
    status, text = send(*signed_request(strict_ops.endpoint, when=real_now))
    assert (status, code_of(text)) == (400, "RequestExpired")
    # Signed in the server's time, it is accepted.
    status, text = send(*signed_request(strict_ops.endpoint, when=real_now + datetime.timedelta(hours=1)))
    assert status == 200, text


# 4. Session tokens.

def test_session_tokens(strict):
    import boto3
    import botocore.config

    def client(key, secret, token):
        return boto3.client("ec2", endpoint_url=strict.endpoint, region_name="eu-west-1", aws_access_key_id=key,
                            aws_secret_access_key=secret, aws_session_token=token,
                            config=botocore.config.Config(retries={"max_attempts": 1}))

    assert client("AKIDTEMP", "temp-secret", "FQoGZXIvYXdzEXAMPLETOKEN").describe_regions()["Regions"]
    for key, secret, token in [
        ("AKIDTEMP", "temp-secret", "FQoGZXIvYXdzWRONGTOKEN"),  # the wrong token
        ("AKIDTEMP", "temp-secret", None),  # temporary credentials without their token
        ("AKIDPLAIN", "plain-secret", "FQoGZXIvYXdzEXAMPLETOKEN"),  # a token for a key that has none
    ]:
        with pytest.raises(ClientError) as e:
            client(key, secret, token).describe_regions()
        assert error_code(e) == "AuthFailure", (key, token)
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert client("AKIDPLAIN", "plain-secret", None).describe_regions()["Regions"]


def test_cloudwatch_is_signed_like_ec2_and_answers_in_its_own_wire(strict):
    """A CloudWatch call is verified as strictly as EC2's, and a refusal reaches the client
    in CloudWatch's JSON with the codes AWS's JSON and query services give (where EC2 says
    AuthFailure to each): a bad signature, an unknown key, no signature."""
    alice = make_client(strict.endpoint, service="cloudwatch", key="AKIDALICE", secret="alice-secret")
    alice.put_metric_data(Namespace="Strict", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert alice.list_metrics(Namespace="Strict")["Metrics"][0]["MetricName"] == "m"
    forged = make_client(strict.endpoint, service="cloudwatch", key="AKIDALICE", secret="wrong")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        forged.list_metrics(Namespace="Strict")
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.0"
    unknown = make_client(strict.endpoint, service="cloudwatch", key="AKIDNOBODY", secret="x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.put_metric_data(Namespace="Strict", MetricData=[{"MetricName": "n", "Value": 1.0}])
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
    assert e.value.response["Error"]["Message"] == "The security token included in the request is invalid."
    status, text = send(strict.endpoint + "/", "POST", {"X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics",
                                                         "Content-Type": "application/x-amz-json-1.0"}, b"{}")
    assert status == 400 and "MissingAuthenticationToken" in text
    assert [m["MetricName"] for m in alice.list_metrics(Namespace="Strict")["Metrics"]] == ["m"]
