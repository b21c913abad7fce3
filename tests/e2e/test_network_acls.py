"""Network ACLs through the AWS CLI and boto3: create, entries, associations, delete, and
AWS's errors. What the entries do to packets is in test_compute_ns.py."""

from conftest import fails


def entries(ec2, acl, egress):
    a = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]
    return [(e["RuleNumber"], e["Protocol"], e["RuleAction"], e.get("CidrBlock"), e.get("PortRange"), e.get("IcmpTypeCode"))
            for e in a["Entries"] if e["Egress"] == egress]


def vpc_with_subnets(ec2, cidr="10.0.0.0/16"):
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.split(".")[:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=".".join(base + [str(i), "0/24"]))["Subnet"]["SubnetId"] for i in (1, 2)]
    return vpc, subnets


def assoc_of(ec2, subnet):
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    assert len(acls) == 1, acls
    [a] = [x for x in acls[0]["Associations"] if x["SubnetId"] == subnet]
    return acls[0]["NetworkAclId"], a["NetworkAclAssociationId"]


def test_the_cli_walkthrough(kumo, ec2, cli):
    vpc, (s1, s2) = vpc_with_subnets(ec2)
    default = ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]
    default_acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "default", "Values": ["true"]}])["NetworkAcls"][0]
    # Both subnets start on the default ACL, which allows everything (rule 100) both ways.
    assert sorted(a["SubnetId"] for a in default_acl["Associations"]) == sorted([s1, s2])
    assert entries(ec2, default_acl["NetworkAclId"], False) == [(100, "-1", "allow", "0.0.0.0/0", None, None), (32767, "-1", "deny", "0.0.0.0/0", None, None)]
    assert default["VpcId"] == vpc

    acl = cli("ec2", "create-network-acl", "--vpc-id", vpc,
              "--tag-specifications", "ResourceType=network-acl,Tags=[{Key=Name,Value=web}]")["NetworkAcl"]
    acl_id = acl["NetworkAclId"]
    assert acl_id.startswith("acl-") and not acl["IsDefault"] and acl["Associations"] == []
    assert acl["Tags"] == [{"Key": "Name", "Value": "web"}]
    # A new ACL denies everything: only the `*` rules.
    assert [(e["RuleNumber"], e["RuleAction"], e["Egress"]) for e in acl["Entries"]] == [(32767, "deny", True), (32767, "deny", False)]

    # The CLI takes protocol names and sends their numbers.
    cli("ec2", "create-network-acl-entry", "--network-acl-id", acl_id, "--ingress", "--rule-number", "100",
        "--protocol", "tcp", "--port-range", "From=22,To=22", "--cidr-block", "0.0.0.0/0", "--rule-action", "allow")
    cli("ec2", "create-network-acl-entry", "--network-acl-id", acl_id, "--ingress", "--rule-number", "90",
        "--protocol", "icmp", "--icmp-type-code", "Type=8,Code=-1", "--cidr-block", "10.0.1.0/24", "--rule-action", "deny")
    cli("ec2", "create-network-acl-entry", "--network-acl-id", acl_id, "--egress", "--rule-number", "100",
        "--protocol", "tcp", "--port-range", "From=1024,To=65535", "--cidr-block", "0.0.0.0/0", "--rule-action", "allow")
    cli("ec2", "create-network-acl-entry", "--network-acl-id", acl_id, "--egress", "--rule-number", "200",
        "--protocol", "all", "--cidr-block", "10.0.0.0/16", "--rule-action", "allow")
    assert entries(ec2, acl_id, False) == [
        (90, "1", "deny", "10.0.1.0/24", None, {"Type": 8, "Code": -1}),
        (100, "6", "allow", "0.0.0.0/0", {"From": 22, "To": 22}, None),
        (32767, "-1", "deny", "0.0.0.0/0", None, None),
    ]
    assert entries(ec2, acl_id, True) == [
        (100, "6", "allow", "0.0.0.0/0", {"From": 1024, "To": 65535}, None),
        (200, "-1", "allow", "10.0.0.0/16", None, None),
        (32767, "-1", "deny", "0.0.0.0/0", None, None),
    ]
    # Replace an entry in place: its number and direction stay.
    cli("ec2", "replace-network-acl-entry", "--network-acl-id", acl_id, "--ingress", "--rule-number", "100",
        "--protocol", "6", "--port-range", "From=22,To=23", "--cidr-block", "192.0.2.0/24", "--rule-action", "allow")
    assert entries(ec2, acl_id, False)[1] == (100, "6", "allow", "192.0.2.0/24", {"From": 22, "To": 23}, None)
    cli("ec2", "delete-network-acl-entry", "--network-acl-id", acl_id, "--egress", "--rule-number", "200")
    assert [e[0] for e in entries(ec2, acl_id, True)] == [100, 32767]

    # Move s1 onto the ACL: a new association id, and the default ACL lets it go.
    old_acl, old_assoc = assoc_of(ec2, s1)
    assert old_acl == default_acl["NetworkAclId"]
    new_assoc = cli("ec2", "replace-network-acl-association", "--association-id", old_assoc, "--network-acl-id", acl_id)["NewAssociationId"]
    assert new_assoc.startswith("aclassoc-") and new_assoc != old_assoc
    assert assoc_of(ec2, s1) == (acl_id, new_assoc)
    assert assoc_of(ec2, s2)[0] == default_acl["NetworkAclId"]
    # The old association id is gone.
    assert fails("InvalidAssociationID.NotFound", ec2.replace_network_acl_association, AssociationId=old_assoc, NetworkAclId=acl_id) == \
        f"The association ID '{old_assoc}' does not exist"

    # Filters on entries and associations.
    def ids(*filters):
        return sorted(a["NetworkAclId"] for a in ec2.describe_network_acls(Filters=[{"Name": n, "Values": v} for n, v in filters])["NetworkAcls"])
    assert ids(("vpc-id", [vpc]), ("entry.rule-number", ["90"])) == [acl_id]
    assert ids(("vpc-id", [vpc]), ("entry.port-range.to", ["65535"])) == [acl_id]
    assert ids(("association.association-id", [new_assoc])) == [acl_id]
    assert ids(("vpc-id", [vpc]), ("default", ["false"])) == [acl_id]
    assert ids(("tag:Name", ["web"])) == [acl_id]

    # In use: not deleted; nor is the VPC while it has an ACL of its own.
    code, msg = cli.error("ec2", "delete-network-acl", "--network-acl-id", acl_id)
    assert (code, msg) == ("DependencyViolation", f"The networkAcl '{acl_id}' has dependencies and cannot be deleted.")
    cli("ec2", "replace-network-acl-association", "--association-id", new_assoc, "--network-acl-id", default_acl["NetworkAclId"])
    assert assoc_of(ec2, s1)[0] == default_acl["NetworkAclId"]
    for s in (s1, s2):
        ec2.delete_subnet(SubnetId=s)
    assert fails("DependencyViolation", ec2.delete_vpc, VpcId=vpc) == f"The vpc '{vpc}' has dependencies and cannot be deleted."
    cli("ec2", "delete-network-acl", "--network-acl-id", acl_id)
    assert fails("InvalidNetworkAclID.NotFound", ec2.describe_network_acls, NetworkAclIds=[acl_id]) == \
        f"The networkAcl ID '{acl_id}' does not exist"
    ec2.delete_vpc(VpcId=vpc)


def test_entry_errors(kumo, ec2, ec2_raw):
    vpc, _ = vpc_with_subnets(ec2, "10.1.0.0/16")
    acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    base = dict(NetworkAclId=acl, RuleNumber=100, Egress=False, Protocol="6", RuleAction="allow",
                CidrBlock="0.0.0.0/0", PortRange={"From": 80, "To": 80})

    def create(client=ec2, **kw):
        return client.create_network_acl_entry(**{**base, **kw})

    create()
    assert fails("NetworkAclEntryAlreadyExists", create) == "The network acl entry identified by 100 already exists."
    # The same number the other way is another entry.
    create(Egress=True)
    # The API takes protocol numbers only (the CLI translates names).
    assert fails("InvalidParameterValue", create, RuleNumber=101, Protocol="tcp") == "Invalid value 'tcp' for IP protocol. Unknown protocol."
    fails("InvalidParameterValue", create, RuleNumber=101, Protocol="256")
    for n in (0, 32767, 40000):
        assert fails("InvalidParameterValue", create, RuleNumber=n) == \
            f"Value ({n}) for parameter ruleNumber is invalid. Rulenumber must be in range 1..32766"
    assert fails("InvalidParameterCombination", create, RuleNumber=101, Ipv6CidrBlock="::/0") == \
        "The parameter cidrBlock cannot be used with the parameter ipv6CidrBlock"
    assert fails("InvalidParameterValue", create, RuleNumber=101, CidrBlock="10.0.0.0/33") == "CIDR block 10.0.0.0/33 is malformed"
    # TCP and UDP need ports, ICMP a type and code.
    args = {k: v for k, v in base.items() if k != "PortRange"}
    assert "portRange" in fails("MissingParameter", ec2.create_network_acl_entry, **{**args, "RuleNumber": 101})
    assert fails("MissingParameter", ec2.create_network_acl_entry, **{**args, "RuleNumber": 101, "Protocol": "1"}) == \
        "The request must contain the parameter icmpTypeCode.type"
    fails("InvalidParameterValue", create, RuleNumber=101, PortRange={"From": 90, "To": 80})
    fails("InvalidParameterValue", create, client=ec2_raw, RuleNumber=101, RuleAction="permit")
    # Other protocols need neither. A CIDR with host bits is refused, not widened.
    fails("InvalidParameterValue", ec2.create_network_acl_entry, **{**args, "RuleNumber": 102, "Protocol": "50", "CidrBlock": "10.1.2.3/16"})
    ec2.create_network_acl_entry(**{**args, "RuleNumber": 102, "Protocol": "50", "CidrBlock": "10.1.0.0/16"})
    a = ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]
    [esp] = [e for e in a["Entries"] if e["RuleNumber"] == 102]
    assert esp["CidrBlock"] == "10.1.0.0/16" and esp["Protocol"] == "50" and "PortRange" not in esp

    # Replace and delete need the entry; the `*` rule is no entry of one's own.
    assert fails("InvalidNetworkAclEntry.NotFound", ec2.replace_network_acl_entry, **{**base, "RuleNumber": 150}) == "no ingress entry with number 150"
    assert fails("InvalidNetworkAclEntry.NotFound", ec2.delete_network_acl_entry, NetworkAclId=acl, RuleNumber=150, Egress=True) == "no egress entry with number 150"
    fails("InvalidParameterValue", ec2.delete_network_acl_entry, NetworkAclId=acl, RuleNumber=32767, Egress=True)
    fails("InvalidNetworkAclID.NotFound", create, NetworkAclId="acl-0123456789abcdef0")
    fails("InvalidNetworkAclId.Malformed", create, NetworkAclId="acl-x")

    # 20 rules per direction, the `*` rule included: 19 of one's own.
    for n in range(2, 19):
        create(RuleNumber=n)
    assert len([e for e in ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"] if not e["Egress"]]) == 20
    fails("NetworkAclEntryLimitExceeded", create, RuleNumber=300)
    # Replacing is not adding; the other direction has room.
    ec2.replace_network_acl_entry(**{**base, "RuleNumber": 2, "RuleAction": "deny"})
    create(RuleNumber=300, Egress=True)

    # DryRun changes nothing.
    fails("DryRunOperation", create, RuleNumber=301, Egress=True, DryRun=True)
    fails("DryRunOperation", ec2.delete_network_acl_entry, NetworkAclId=acl, RuleNumber=100, Egress=True, DryRun=True)
    egress = [e["RuleNumber"] for e in ec2.describe_network_acls(NetworkAclIds=[acl])["NetworkAcls"][0]["Entries"] if e["Egress"]]
    assert egress == [100, 300, 32767]


def test_acl_and_association_errors(kumo, ec2):
    vpc, (s1, _) = vpc_with_subnets(ec2, "10.2.0.0/16")
    other, _ = vpc_with_subnets(ec2, "10.3.0.0/16")
    acls = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
    default = acls[0]["NetworkAclId"]
    assert fails("InvalidParameterValue", ec2.delete_network_acl, NetworkAclId=default) == f"cannot delete default network ACL {default}"
    fails("InvalidVpcID.NotFound", ec2.create_network_acl, VpcId="vpc-0123456789abcdef0")
    foreign = ec2.create_network_acl(VpcId=other)["NetworkAcl"]["NetworkAclId"]
    _, assoc = assoc_of(ec2, s1)
    fails("InvalidParameterValue", ec2.replace_network_acl_association, AssociationId=assoc, NetworkAclId=foreign)
    fails("InvalidNetworkAclID.NotFound", ec2.replace_network_acl_association, AssociationId=assoc, NetworkAclId="acl-0123456789abcdef0")
    fails("InvalidAssociationID.NotFound", ec2.replace_network_acl_association, AssociationId="aclassoc-0123456789abcdef0", NetworkAclId=default)
    # The association did not move.
    assert assoc_of(ec2, s1) == (default, assoc)
    # DryRun and idempotency.
    fails("DryRunOperation", ec2.create_network_acl, VpcId=vpc, DryRun=True)
    assert len(ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]) == 1
    one = ec2.create_network_acl(VpcId=vpc, ClientToken="tok-1")
    two = ec2.create_network_acl(VpcId=vpc, ClientToken="tok-1")
    assert one["NetworkAcl"]["NetworkAclId"] == two["NetworkAcl"]["NetworkAclId"] and two["ClientToken"] == "tok-1"
    fails("DryRunOperation", ec2.delete_network_acl, NetworkAclId=foreign, DryRun=True)
    ec2.delete_network_acl(NetworkAclId=foreign)
