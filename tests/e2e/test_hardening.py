"""A parser and a server that cannot be stalled, and AWS's envelope for every error: each attack
is sent as raw HTTP (or through boto3) and must fail cleanly while real clients go on being
served."""

import multiprocessing
import resource
import shutil
import socket
import threading
import time
import xml.etree.ElementTree as ET

import pytest
from botocore.exceptions import ClientError

from conftest import Kumo, error_code, make_client, post

SIGNED = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/ec2/aws4_request, SignedHeaders=host, Signature=0"


@pytest.fixture(scope="module")
def quick():
    """A server with short connection timeouts, so the attacks end within a test."""
    k = Kumo(extra_args=["--idle-timeout", "2", "--body-timeout", "2"]).start()
    yield k
    k.stop()
    shutil.rmtree(k.data_dir, ignore_errors=True)


def connect(k):
    s = socket.create_connection(("127.0.0.1", k.port), timeout=10)
    return s


def read_response(s):
    """Reads one response (Content-Length framed); returns (status, headers, body), or None at
    EOF before any byte."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            return None if not data else (0, {}, data.decode(errors="replace"))
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest[:n].decode()


def envelope(body):
    root = ET.fromstring(body)
    assert root.tag == "Response", body
    rid = root.find("RequestID").text
    assert rid and len(rid) == 36, body
    return root.find("Errors/Error/Code").text


def closed_by_server(s, within):
    """True when the server closes `s` within `within` seconds."""
    s.settimeout(within)
    try:
        while True:
            if not s.recv(65536):
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


# 5. Decoding is linear and bounded.

def big_body(keys):
    return "Action=DescribeRegions&Version=2016-11-15&" + "&".join(f"RegionName{i:06}=x" for i in range(keys))


def test_a_body_of_100000_keys_is_refused(kumo):
    status, _, body = post(kumo.endpoint, big_body(100_000))
    assert (status, envelope(body)) == (400, "InvalidQueryParameter")
    assert "more than 10000" in ET.fromstring(body).find("Errors/Error/Message").text


def test_a_body_at_the_parameter_cap_is_decoded(kumo):
    status, _, body = post(kumo.endpoint, big_body(9_998))
    # Decoded whole, then refused for its first unknown member, as AWS refuses it.
    assert (status, envelope(body)) == (400, "UnknownParameter")
    assert "RegionName000000" in body


def test_a_list_index_beyond_the_cap_is_refused(ec2_raw, kumo):
    status, _, body = post(kumo.endpoint, "Action=DescribeRegions&Version=2016-11-15&RegionName.10001=eu-west-1")
    assert (status, envelope(body)) == (400, "InvalidQueryParameter")


def test_big_bodies_do_not_stall_other_clients(kumo):
    """Two of the attack's bodies at once: the server goes on answering everyone else."""
    results = []

    def attack():
        results.append(post(kumo.endpoint, big_body(100_000))[0])

    threads = [threading.Thread(target=attack) for _ in range(2)]
    for t in threads:
        t.start()
    ec2 = make_client(kumo.endpoint)
    for _ in range(5):
        assert ec2.describe_regions()["Regions"]
    for t in threads:
        t.join(60)
    assert results == [400, 400]


# 6. Slow and idle clients are cut off.

def test_half_sent_headers_are_cut_off(quick):
    socks = []
    for _ in range(400):
        s = connect(quick)
        s.sendall(b"POST / HTTP/1.1\r\nHost: kumo\r\nX-Slow: ")
        socks.append(s)
    # The server still answers a real client meanwhile.
    assert make_client(quick.endpoint).describe_regions()["Regions"]
    deadline = time.time() + 30
    open_ = list(socks)
    while open_ and time.time() < deadline:
        open_ = [s for s in open_ if not closed_by_server(s, 0.05)]
    assert not open_, f"{len(open_)} of 400 half-sent connections still open"
    for s in socks:
        s.close()


def test_an_idle_keep_alive_connection_is_closed(quick):
    s = connect(quick)
    s.sendall(f"POST / HTTP/1.1\r\nHost: kumo\r\nAuthorization: {SIGNED}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 41\r\n\r\nAction=DescribeRegions&Version=2016-11-15".encode())
    assert read_response(s)[0] == 200
    assert closed_by_server(s, 30)


def test_a_body_that_stops_arriving_times_out_with_the_envelope(quick):
    s = connect(quick)
    s.sendall(b"POST / HTTP/1.1\r\nHost: kumo\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nAction=Desc")
    s.settimeout(30)
    status, headers, body = read_response(s)
    assert (status, envelope(body)) == (408, "RequestTimeout")
    assert headers["connection"] == "close"
    assert closed_by_server(s, 10)


def hold(port, n, ready, release, out):
    """A child process that opens `n` idle connections, reports, waits, then counts those the
    server closed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        except OSError:
            break
    ready.put(len(socks))
    release.wait(300)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    out.put(closed)


def flood(k, total, procs=2):
    ctx = multiprocessing.get_context("fork")
    ready, out, release = ctx.Queue(), ctx.Queue(), ctx.Event()
    ps = [ctx.Process(target=hold, args=(k.port, total // procs, ready, release, out)) for _ in range(procs)]
    for p in ps:
        p.start()
    opened = sum(ready.get(timeout=300) for _ in ps)
    return ps, release, out, opened


def test_an_idle_flood_of_20000_connections_does_not_lock_out_a_client():
    k = Kumo().start()
    try:
        ps, release, out, opened = flood(k, 20_000)
        assert opened == 20_000
        # A new, signed DescribeRegions still answers, and so does the health check.
        assert make_client(k.endpoint).describe_regions()["Regions"]
        with urllib_open(k.endpoint + "/_kumo/health") as r:
            assert r.status == 200
        release.set()
        closed = sum(out.get(timeout=300) for _ in ps)
        for p in ps:
            p.join(60)
        # Beyond the cap (the open-file limit less a tenth), the longest idle made room.
        cap = max_connections(k)
        if cap < 20_000:
            assert closed >= 20_000 - cap
    finally:
        k.stop()
        shutil.rmtree(k.data_dir, ignore_errors=True)


def urllib_open(url):
    import urllib.request

    return urllib.request.urlopen(url, timeout=30)


def max_connections(k):
    import re

    log = re.sub(r"\x1b\[[0-9;]*m", "", open(k.log_path).read())
    return int(re.search(r"max_connections=(\d+)", log).group(1))


def test_at_the_cap_idle_connections_make_room_and_busy_ones_refuse_cleanly():
    k = Kumo(extra_args=["--max-connections", "50", "--body-timeout", "30"]).start()
    try:
        idle = [connect(k) for _ in range(120)]
        # The oldest idle connections were closed to admit the newer ones.
        assert sum(closed_by_server(s, 0.2) for s in idle[:70]) == 70
        assert make_client(k.endpoint).describe_regions()["Regions"]
        for s in idle:
            s.close()
        time.sleep(0.5)
        # Fifty connections busy with a request (a body in progress) fill the cap.
        busy = []
        for _ in range(50):
            s = connect(k)
            s.sendall(b"POST / HTTP/1.1\r\nHost: kumo\r\nContent-Length: 100\r\n\r\nAction=")
            busy.append(s)
        time.sleep(0.5)
        s = connect(k)
        status, headers, body = read_response(s)
        assert (status, envelope(body)) == (503, "RequestLimitExceeded")
        # boto3 treats it as throttling and retries; once the busy ones end, it is served.
        for b in busy:
            b.close()
        time.sleep(0.5)
        assert make_client(k.endpoint).describe_regions()["Regions"]
    finally:
        k.stop()
        shutil.rmtree(k.data_dir, ignore_errors=True)


# 7. Every error is AWS XML.

@pytest.mark.parametrize(
    "raw,status",
    [
        (b"GET /nowhere HTTP/1.1\r\nHost: kumo\r\n\r\n", 404),
        (b"PUT / HTTP/1.1\r\nHost: kumo\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /_kumo/reset HTTP/1.1\r\nHost: kumo\r\n\r\n", 405),
        (b"POST / HTTP/1.1\r\nHost: kumo\r\nContent-Length: 3000000\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nHost: kumo\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(300)) + b"\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: kumo\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\nabc\r\n0\r\n\r\n", 400),
        (b"NOT AN HTTP REQUEST\r\n\r\n", 400),
    ],
)
def test_every_http_error_is_the_ec2_envelope(kumo, raw, status):
    s = connect(kumo)
    s.sendall(raw)
    got, headers, body = read_response(s)
    assert got == status, body
    assert headers["content-type"] == "text/xml;charset=UTF-8"
    assert envelope(body) in ("InvalidRequest",)
    assert headers["x-amzn-requestid"] == ET.fromstring(body).find("RequestID").text
    # The server ends the connection cleanly: nothing of a half-read body is taken as a request.
    assert closed_by_server(s, 10)


def test_a_request_after_an_ec2_error_on_the_same_connection_works(kumo):
    s = connect(kumo)
    bad = "Action=DescribeRegions&Version=2016-11-15&Bogus=1"
    good = "Action=DescribeRegions&Version=2016-11-15"
    for body, want in [(bad, 400), (good, 200)]:
        s.sendall(f"POST / HTTP/1.1\r\nHost: kumo\r\nAuthorization: {SIGNED}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        assert read_response(s)[0] == want
    s.close()


def test_after_a_413_the_connection_closes_cleanly(kumo):
    s = connect(kumo)
    s.sendall(b"POST / HTTP/1.1\r\nHost: kumo\r\nContent-Length: 3000000\r\n\r\n" + b"a" * 65536)
    status, headers, body = read_response(s)
    assert (status, headers["connection"]) == (413, "close")
    assert closed_by_server(s, 10)


# 8. Paging tokens are tamper-evident.

def test_an_edited_next_token_is_invalid(ec2, kumo):
    page = ec2.describe_instance_types(MaxResults=5)
    token = page["NextToken"]
    assert ec2.describe_instance_types(MaxResults=5, NextToken=token)["InstanceTypes"]
    flip = "A" if token[3] != "A" else "B"
    edited = token[:3] + flip + token[4:]
    with pytest.raises(ClientError) as e:
        ec2.describe_instance_types(MaxResults=5, NextToken=edited)
    assert error_code(e) == "InvalidParameterValue"
    assert "NextToken is invalid" in e.value.response["Error"]["Message"]


def test_next_tokens_survive_a_restart():
    k = Kumo().start()
    try:
        c = make_client(k.endpoint)
        token = c.describe_instance_types(MaxResults=5)["NextToken"]
        k.stop()
        k.start()
        assert make_client(k.endpoint).describe_instance_types(MaxResults=5, NextToken=token)["InstanceTypes"]
    finally:
        k.stop()
        shutil.rmtree(k.data_dir, ignore_errors=True)
