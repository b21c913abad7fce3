#!/usr/bin/env python3
"""Session Manager benchmark: how long a whole session takes (StartSession, the data channel,
the guest's agent opening a shell on a PTY, `exit`, the channel closed), through `kumo ssm
start-session` with its input piped, against a fresh release `kumo serve --driver ns`.

Usage: bench/session.py [--rounds N]
(after `cargo build --release -p kumo`, or with KUMO_BENCH_BIN naming another build,
`kumo image build`, and `scripts/test` once for the Python clients in .venv; run as root).

The same-run baseline is Run Command's round trip through the same agent (`kumo ssm
send-command i-… -- true`): both wait for the agent's next poll of its queue, so the ratio
shows what a session costs beyond that."""

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import boto3  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve import serving  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    binary = os.environ.get("KUMO_BENCH_BIN") or os.path.join(ROOT, "target", "release", "kumo")
    with serving("ns", "kumo-session-bench-") as (endpoint, _):
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench", aws_secret_access_key="bench")
        ec2, ssm = boto3.client("ec2", **kw), boto3.client("ssm", **kw)
        ami = ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64")["Parameter"]["Value"]
        iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        cli = [binary, "ssm", "--endpoint-url", endpoint, "--region", "us-east-1"]
        env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        deadline = time.time() + 30
        while subprocess.run([*cli, "send-command", iid, "--", "true"], env=env, capture_output=True).returncode != 0:
            if time.time() > deadline:
                sys.exit("the instance's agent never came online")
            time.sleep(0.5)
        command, session = [], []
        for _ in range(args.rounds):
            t = time.time()
            p = subprocess.run([*cli, "send-command", iid, "--", "true"], env=env, capture_output=True)
            assert p.returncode == 0, p.stderr
            command.append(time.time() - t)
            t = time.time()
            p = subprocess.run([*cli, "start-session", iid], input=b"echo in-session\nexit\n", env=env, capture_output=True, timeout=60)
            session.append(time.time() - t)
            assert b"in-session" in p.stdout and b"Exiting session" in p.stdout, p.stdout + p.stderr
        base, whole = statistics.median(command), statistics.median(session)
        print(f"baseline Run Command round trip (send-command -- true): p50 {base * 1000:.0f} ms  max {max(command) * 1000:.0f} ms  ({args.rounds} rounds)")
        print(f"whole session (start-session, echo, exit, channel closed): p50 {whole * 1000:.0f} ms  max {max(session) * 1000:.0f} ms")
        print(f"ratio session/baseline: p50 {whole / base:.2f}")


if __name__ == "__main__":
    main()
