"""Address uniqueness holds under concurrent requests: 64 clients assigning in one subnet."""

import threading

from conftest import make_client


def test_64_concurrent_clients_never_share_an_address(kumo, ec2):
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    sid = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.0.0/22")["Subnet"]["SubnetId"]
    enis = [ec2.create_network_interface(SubnetId=sid)["NetworkInterface"]["NetworkInterfaceId"] for _ in range(8)]
    errors = []
    barrier = threading.Barrier(64)

    def client(n):
        c = make_client(kumo.endpoint)
        eni = enis[n % len(enis)]
        barrier.wait()
        try:
            for i in range(4):
                if i % 2 == 0:
                    c.assign_private_ip_addresses(NetworkInterfaceId=eni, SecondaryPrivateIpAddressCount=2)
                else:
                    # Half of the clients race for the same explicit addresses.
                    want = f"10.20.3.{(n * 7 + i) % 200 + 10}"
                    try:
                        c.assign_private_ip_addresses(NetworkInterfaceId=eni, PrivateIpAddresses=[want])
                    except c.exceptions.ClientError as e:
                        if e.response["Error"]["Code"] != "InvalidIPAddress.InUse":
                            raise
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    held = []
    for page in ec2.get_paginator("describe_network_interfaces").paginate(Filters=[{"Name": "subnet-id", "Values": [sid]}]):
        for n in page["NetworkInterfaces"]:
            held += [a["PrivateIpAddress"] for a in n["PrivateIpAddresses"]]
    assert len(held) == len(set(held)), "an address is held twice"
    assert len(held) >= 8 + 64 * 2 * 2
    avail = ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["AvailableIpAddressCount"]
    assert avail == 1024 - 5 - len(held)
