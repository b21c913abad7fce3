"""Every served operation, sent its members empty (`Member=`, as Terraform sends an unset
placement zone): the answer is a success or one of AWS's client errors (4xx, EC2's XML, a
code other than InternalError), never a server error. The operations and their members come
from the pinned AWS model Kumo's wire code is generated from."""

import gzip
import json
import os
import re

import pytest
from botocore.exceptions import ClientError

from conftest import make_client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = json.load(gzip.open(os.path.join(ROOT, "crates", "codegen", "model", "ec2-2016-11-15.service-2.json.gz")))
SHAPES = MODEL["shapes"]
SERVED = re.findall(r'^    "(\w+)",$', open(os.path.join(ROOT, "crates", "codegen", "src", "main.rs")).read().split("pub const ALLOW")[1].split("];")[0], re.M)

# Operations whose empty call would change shared state for the ones after it.
SKIP = {"ResetEbsDefaultKmsKeyId"}


def blank(shape_name, depth=0):
    """The emptiest value of a shape that still has its form: '' for a string, one blank
    member for a list, blank required members for a structure."""
    s = SHAPES[shape_name]
    t = s["type"]
    if t == "string":
        return ""
    if t in ("integer", "long"):
        return 1
    if t == "boolean":
        return False
    if t == "timestamp":
        return "2026-01-01T00:00:00Z"
    if t == "list":
        return [blank(s["member"]["shape"], depth + 1)] if depth < 3 else []
    if t == "structure":
        return {m: blank(s["members"][m]["shape"], depth + 1) for m in s.get("required", [])} if depth < 3 else {}
    return ""


def calls(op):
    """The operation with its required members blank, then with each optional string or
    string-list member blank besides."""
    inp = MODEL["operations"][op].get("input")
    if not inp:
        yield {}
        return
    shape = SHAPES[inp["shape"]]
    base = {m: blank(shape["members"][m]["shape"]) for m in shape.get("required", [])}
    yield base
    for m, ref in shape["members"].items():
        if m in base or m == "DryRun":
            continue
        kind = SHAPES[ref["shape"]]["type"]
        if kind == "string" or (kind == "list" and SHAPES[SHAPES[ref["shape"]]["member"]["shape"]]["type"] == "string"):
            yield dict(base, **{m: blank(ref["shape"])})


@pytest.mark.parametrize("op", [o for o in SERVED if o not in SKIP])
def test_blank_members_get_a_client_error_or_success(kumo, op):
    ec2 = make_client(kumo.endpoint, validate=False)
    for params in calls(op):
        try:
            ec2._make_api_call(op, params)
        except ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            code = e.response["Error"]["Code"]
            assert status < 500 and code not in ("InternalError", "InternalFailure"), (op, params, e.response["Error"])
