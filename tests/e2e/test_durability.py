"""No acknowledged write is lost: kill -9 a loaded server, restart it, count."""

import shutil
import signal
import threading
import time

from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

from conftest import Kumo, make_client


def test_kill_9_under_load_loses_nothing_acknowledged():
    k = Kumo().start()
    acked = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(n):
        c = make_client(k.endpoint, key="123456789012")
        i = 0
        while not stop.is_set():
            name = f"w{n}-{i}"
            try:
                kp = c.create_key_pair(KeyName=name, KeyType="ed25519")
                c.create_tags(Resources=[kp["KeyPairId"]], Tags=[{"Key": "n", "Value": name}])
                with lock:
                    acked.append((name, kp["KeyPairId"]))
            except (ClientError, EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, OSError):
                return
            except Exception:  # the connection dies in many ways when the server is killed
                return
            i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    k.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) > 20, "the load ran"

    k2 = Kumo(data_dir=k.data_dir).start()
    try:
        c = make_client(k2.endpoint, key="123456789012")
        stored = {kp["KeyName"]: kp for kp in c.describe_key_pairs()["KeyPairs"]}
        tags = {t["ResourceId"]: t["Value"] for t in c.describe_tags(Filters=[{"Name": "key", "Values": ["n"]}])["Tags"]}
        for name, kid in acked:
            assert name in stored, f"acknowledged key pair {name} was lost"
            assert stored[name]["KeyPairId"] == kid
            assert tags.get(kid) == name, f"acknowledged tag on {name} was lost"
    finally:
        k2.stop()
        shutil.rmtree(k.data_dir, ignore_errors=True)


def test_sigterm_shuts_down_cleanly_and_state_survives():
    k = Kumo().start()
    c = make_client(k.endpoint)
    c.create_key_pair(KeyName="persist", KeyType="ed25519")
    k.proc.send_signal(signal.SIGTERM)
    assert k.proc.wait(10) == 0
    k2 = Kumo(data_dir=k.data_dir).start()
    try:
        names = [kp["KeyName"] for kp in make_client(k2.endpoint).describe_key_pairs()["KeyPairs"]]
        assert names == ["persist"]
    finally:
        k2.stop()
        shutil.rmtree(k.data_dir, ignore_errors=True)
