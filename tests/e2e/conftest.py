"""Fixtures that run a real `kumo serve` and talk to it with real clients (AWS CLI, boto3)."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import boto3
import botocore.config
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUMO_BIN = os.environ.get("KUMO_BIN", os.path.join(ROOT, "target", "debug", "kumo"))
AWS_BIN = shutil.which("aws") or "aws"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Kumo:
    """A `kumo serve` process on a free loopback port with its own data directory."""

    def __init__(self, data_dir=None, extra_args=()):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="kumo-e2e-")
        self.extra_args = list(extra_args)
        # Instances run nowhere unless a test asks for a real driver (test_compute_ns.py).
        if "--driver" not in self.extra_args:
            self.extra_args += ["--driver", "null"]
        self.proc = None
        self.log_path = os.path.join(self.data_dir, "serve.log")

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [KUMO_BIN, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data_dir, *self.extra_args],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kumo exited with {self.proc.returncode}: {open(self.log_path).read()}")
            try:
                with urllib.request.urlopen(self.endpoint + "/_kumo/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("kumo did not become ready")

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def reset(self):
        req = urllib.request.Request(self.endpoint + "/_kumo/reset", method="POST", data=b"")
        with urllib.request.urlopen(req) as r:
            assert r.status == 200


def serving(*extra_args):
    """A server for a fixture's lifetime (`yield from serving(...)`), removed with its data."""
    k = Kumo(extra_args=list(extra_args)).start()
    yield k
    k.stop()
    shutil.rmtree(k.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kumo():
    yield from serving()


@pytest.fixture(autouse=True)
def _clean(request):
    if "kumo" in request.fixturenames:
        request.getfixturevalue("kumo").reset()
    yield


class CliError(Exception):
    def __init__(self, code, message, stderr):
        super().__init__(stderr)
        self.code = code
        self.message = message


class Cli:
    """The AWS CLI pointed at a Kumo, with fixed credentials and region."""

    def __init__(self, endpoint, region="eu-west-1", key="test", secret="test"):
        self.endpoint = endpoint
        self.env = dict(os.environ)
        self.env.update(
            AWS_ACCESS_KEY_ID=key,
            AWS_SECRET_ACCESS_KEY=secret,
            AWS_DEFAULT_REGION=region,
            AWS_CONFIG_FILE="/nonexistent",
            AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )
        self.env.pop("AWS_PROFILE", None)

    def raw(self, *args):
        return subprocess.run(
            [AWS_BIN, "--endpoint-url", self.endpoint, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def __call__(self, *args):
        """Runs `aws ARGS --output json`; returns the parsed output or raises CliError."""
        p = self.raw(*args, "--output", "json")
        if p.returncode != 0:
            m = re.search(r"An error occurred \(([^)]+)\) when calling the \w+ operation(?: \([^)]*\))?: (.*)", p.stderr)
            if m:
                raise CliError(m.group(1), m.group(2).strip(), p.stderr)
            raise RuntimeError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def error(self, *args):
        """Runs a call that must fail; returns (code, message)."""
        with pytest.raises(CliError) as e:
            self(*args)
        return e.value.code, e.value.message


@pytest.fixture
def cli(kumo):
    return Cli(kumo.endpoint)


def make_client(endpoint, service="ec2", region="eu-west-1", key="test", secret="test", validate=True):
    """A boto3 client; `validate=False` lets out-of-model values reach the server."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )


@pytest.fixture
def ec2(kumo):
    return make_client(kumo.endpoint)


@pytest.fixture
def ec2_raw(kumo):
    """A client that does not check parameters against the model before sending them."""
    return make_client(kumo.endpoint, validate=False)


def error_code(exc_info):
    return exc_info.value.response["Error"]["Code"]


def fails(code, call, *args, **kwargs):
    """Calls a boto3 operation that must fail with AWS's `code`; returns the message."""
    import pytest
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        call(*args, **kwargs)
    assert error_code(e) == code, e.value.response["Error"]
    return e.value.response["Error"]["Message"]


def latest_al2023(kumo):
    """The image id of the Amazon Linux 2023 public parameter, as Kumo's SSM answers it."""
    ssm = make_client(kumo.endpoint, service="ssm")
    return ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]


FAKE_AUTH = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=0"


def post(endpoint, body, headers=None, method="POST"):
    """A raw HTTP request, by default with the credential scope of `cli` (eu-west-1, default
    account) and an unverified signature; returns (status, lower-cased headers, body text)."""
    if headers is None:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": FAKE_AUTH}
    data = body.encode() if isinstance(body, str) else body
    url = endpoint + "/"
    if method == "GET":
        url += "?" + body
        data = None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode()
