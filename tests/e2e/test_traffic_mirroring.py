"""Traffic mirroring through the AWS CLI and boto3: targets, filters and their rules,
sessions, and AWS's rules and errors. The copies themselves are in test_compute_ns.py."""

from conftest import fails, latest_al2023


def instance(ec2, kumo, subnet, itype="t3.micro"):
    r = ec2.run_instances(ImageId=latest_al2023(kumo), InstanceType=itype, MinCount=1, MaxCount=1, SubnetId=subnet)
    return r["Instances"][0]["NetworkInterfaces"][0]["NetworkInterfaceId"]


def world(ec2, kumo, cidr="10.0.0.0/16"):
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"))["Subnet"]["SubnetId"]
    return vpc, subnet


def test_the_cli_walkthrough(kumo, ec2, cli):
    _, subnet = world(ec2, kumo)
    src, tgt = instance(ec2, kumo, subnet), instance(ec2, kumo, subnet)
    target = cli("ec2", "create-traffic-mirror-target", "--network-interface-id", tgt, "--description", "ids box",
                 "--tag-specifications", "ResourceType=traffic-mirror-target,Tags=[{Key=Name,Value=ids}]")["TrafficMirrorTarget"]
    tid = target["TrafficMirrorTargetId"]
    assert tid.startswith("tmt-") and target["Type"] == "network-interface" and target["NetworkInterfaceId"] == tgt
    assert target["Description"] == "ids box" and target["Tags"] == [{"Key": "Name", "Value": "ids"}] and target["OwnerId"]

    flt = cli("ec2", "create-traffic-mirror-filter", "--description", "web")["TrafficMirrorFilter"]
    fid = flt["TrafficMirrorFilterId"]
    assert flt["IngressFilterRules"] == [] and flt["EgressFilterRules"] == [] and flt["NetworkServices"] == []
    rule = cli("ec2", "create-traffic-mirror-filter-rule", "--traffic-mirror-filter-id", fid, "--traffic-direction", "ingress",
               "--rule-number", "100", "--rule-action", "accept", "--protocol", "6",
               "--destination-port-range", "FromPort=80,ToPort=443",
               "--source-cidr-block", "0.0.0.0/0", "--destination-cidr-block", "10.0.0.0/16")["TrafficMirrorFilterRule"]
    rid = rule["TrafficMirrorFilterRuleId"]
    assert rid.startswith("tmfr-") and rule["DestinationPortRange"] == {"FromPort": 80, "ToPort": 443}
    cli("ec2", "create-traffic-mirror-filter-rule", "--traffic-mirror-filter-id", fid, "--traffic-direction", "egress",
        "--rule-number", "100", "--rule-action", "reject", "--source-cidr-block", "10.0.0.0/16", "--destination-cidr-block", "0.0.0.0/0")
    seen = ec2.describe_traffic_mirror_filters(TrafficMirrorFilterIds=[fid])["TrafficMirrorFilters"][0]
    assert [r["TrafficMirrorFilterRuleId"] for r in seen["IngressFilterRules"]] == [rid]
    assert [r["RuleAction"] for r in seen["EgressFilterRules"]] == ["reject"]
    # Network services.
    out = cli("ec2", "modify-traffic-mirror-filter-network-services", "--traffic-mirror-filter-id", fid,
              "--add-network-services", "amazon-dns")["TrafficMirrorFilter"]
    assert out["NetworkServices"] == ["amazon-dns"]
    # Modify a rule: a field removed goes back to its default.
    out = ec2.modify_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=rid, RuleNumber=90, RemoveFields=["destination-port-range"],
                                                Protocol=6)["TrafficMirrorFilterRule"]
    assert out["RuleNumber"] == 90 and "DestinationPortRange" not in out
    rules = ec2.describe_traffic_mirror_filter_rules(TrafficMirrorFilterId=fid,
                                                     Filters=[{"Name": "traffic-direction", "Values": ["ingress"]}])["TrafficMirrorFilterRules"]
    assert [(r["TrafficMirrorFilterRuleId"], r["RuleNumber"]) for r in rules] == [(rid, 90)]

    session = cli("ec2", "create-traffic-mirror-session", "--network-interface-id", src, "--traffic-mirror-target-id", tid,
                  "--traffic-mirror-filter-id", fid, "--session-number", "1", "--packet-length", "100")["TrafficMirrorSession"]
    sid = session["TrafficMirrorSessionId"]
    assert sid.startswith("tms-") and session["SessionNumber"] == 1 and session["PacketLength"] == 100
    # A VXLAN id is chosen when none is given.
    assert 1 <= session["VirtualNetworkId"] <= 16777215
    out = ec2.modify_traffic_mirror_session(TrafficMirrorSessionId=sid, VirtualNetworkId=77, RemoveFields=["packet-length"])
    assert out["TrafficMirrorSession"]["VirtualNetworkId"] == 77 and "PacketLength" not in out["TrafficMirrorSession"]
    found = ec2.describe_traffic_mirror_sessions(Filters=[{"Name": "virtual-network-id", "Values": ["77"]}])["TrafficMirrorSessions"]
    assert [x["TrafficMirrorSessionId"] for x in found] == [sid]
    found = ec2.describe_traffic_mirror_targets(Filters=[{"Name": "network-interface-id", "Values": [tgt]}])["TrafficMirrorTargets"]
    assert [x["TrafficMirrorTargetId"] for x in found] == [tid]

    # In use: neither the target nor the filter goes.
    assert fails("TrafficMirrorTargetInUseException", ec2.delete_traffic_mirror_target, TrafficMirrorTargetId=tid) == \
        "The Traffic Mirror target cannot be deleted because a Traffic Mirror session is currently using it."
    assert fails("TrafficMirrorFilterInUse", ec2.delete_traffic_mirror_filter, TrafficMirrorFilterId=fid) == \
        "The Traffic Mirror filter cannot be deleted because a Traffic Mirror session is currently using it."
    assert cli("ec2", "delete-traffic-mirror-session", "--traffic-mirror-session-id", sid)["TrafficMirrorSessionId"] == sid
    assert ec2.delete_traffic_mirror_filter_rule(TrafficMirrorFilterRuleId=rid)["TrafficMirrorFilterRuleId"] == rid
    ec2.delete_traffic_mirror_filter(TrafficMirrorFilterId=fid)
    ec2.delete_traffic_mirror_target(TrafficMirrorTargetId=tid)
    fails("InvalidTrafficMirrorTargetId.NotFound", ec2.describe_traffic_mirror_targets, TrafficMirrorTargetIds=[tid])
    fails("InvalidTrafficMirrorFilterId.NotFound", ec2.describe_traffic_mirror_filters, TrafficMirrorFilterIds=[fid])
    fails("InvalidTrafficMirrorSessionId.NotFound", ec2.describe_traffic_mirror_sessions, TrafficMirrorSessionIds=[sid])
    fails("InvalidTrafficMirrorFilterRuleId.NotFound", ec2.delete_traffic_mirror_filter_rule, TrafficMirrorFilterRuleId=rid)


def test_rule_errors(kumo, ec2):
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    base = dict(TrafficMirrorFilterId=fid, TrafficDirection="ingress", RuleNumber=1, RuleAction="accept",
                SourceCidrBlock="0.0.0.0/0", DestinationCidrBlock="0.0.0.0/0")
    ec2.create_traffic_mirror_filter_rule(**base)
    assert fails("TrafficMirrorFilterRuleAlreadyExists", ec2.create_traffic_mirror_filter_rule, **base) == \
        "The Traffic Mirror filter rule already exists."
    # The other direction has its own numbers.
    ec2.create_traffic_mirror_filter_rule(**{**base, "TrafficDirection": "egress"})
    for bad in ({"RuleNumber": 0}, {"RuleNumber": 32767}, {"SourceCidrBlock": "10.0.0.0/33"},
                {"Protocol": 1, "DestinationPortRange": {"FromPort": 1, "ToPort": 2}},
                {"Protocol": 6, "DestinationPortRange": {"FromPort": 9, "ToPort": 2}}, {"Protocol": 300}):
        fails("InvalidParameterValue", ec2.create_traffic_mirror_filter_rule, **{**base, "RuleNumber": 2, **bad})
    # Ten rules a filter.
    for n in range(3, 11):
        ec2.create_traffic_mirror_filter_rule(**{**base, "RuleNumber": n})
    fails("TrafficMirrorFilterRuleLimitExceeded", ec2.create_traffic_mirror_filter_rule, **{**base, "RuleNumber": 20})
    fails("InvalidTrafficMirrorFilterId.NotFound", ec2.create_traffic_mirror_filter_rule, **{**base, "TrafficMirrorFilterId": "tmf-0123456789abcdef0"})
    # Pages of rules, counted in rules.
    first = ec2.describe_traffic_mirror_filter_rules(TrafficMirrorFilterId=fid, MaxResults=5)
    rest = ec2.describe_traffic_mirror_filter_rules(TrafficMirrorFilterId=fid, MaxResults=5, NextToken=first["NextToken"])
    ids = [r["TrafficMirrorFilterRuleId"] for r in first["TrafficMirrorFilterRules"] + rest["TrafficMirrorFilterRules"]]
    assert len(ids) == len(set(ids)) == 10 and "NextToken" not in rest


def test_session_rules(kumo, ec2, ec2_raw):
    vpc, subnet = world(ec2, kumo)
    src, tgt, other = (instance(ec2, kumo, subnet) for _ in range(3))
    fid = ec2.create_traffic_mirror_filter()["TrafficMirrorFilter"]["TrafficMirrorFilterId"]
    tid = ec2.create_traffic_mirror_target(NetworkInterfaceId=tgt)["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    args = dict(NetworkInterfaceId=src, TrafficMirrorTargetId=tid, TrafficMirrorFilterId=fid, SessionNumber=1)
    # One of the three kinds of target; only interfaces here.
    fails("MissingParameter", ec2.create_traffic_mirror_target)
    fails("InvalidParameterCombination", ec2.create_traffic_mirror_target, NetworkInterfaceId=tgt,
          NetworkLoadBalancerArn="arn:aws:elasticloadbalancing:eu-west-1:000000000000:loadbalancer/net/x/1")
    fails("Unsupported", ec2.create_traffic_mirror_target,
          NetworkLoadBalancerArn="arn:aws:elasticloadbalancing:eu-west-1:000000000000:loadbalancer/net/x/1")
    fails("InvalidNetworkInterfaceID.NotFound", ec2.create_traffic_mirror_target, NetworkInterfaceId="eni-0123456789abcdef0")
    # A target is no source, a source no target.
    fails("InvalidParameterCombination", ec2.create_traffic_mirror_session, **{**args, "NetworkInterfaceId": tgt})
    # A Xen instance type's interface cannot be a source; nor can a free interface.
    xen = instance(ec2, kumo, subnet, "t2.micro")
    assert fails("NetworkInterfaceNotSupported", ec2.create_traffic_mirror_session, **{**args, "NetworkInterfaceId": xen}) == \
        f"{xen} must be attached to a supported instance"
    free = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]["NetworkInterfaceId"]
    fails("NetworkInterfaceNotSupported", ec2.create_traffic_mirror_session, **{**args, "NetworkInterfaceId": free})
    # Numbers: session 1..32766, VXLAN id 0..16777215, packet length 1..8500.
    for bad in ({"SessionNumber": 0}, {"VirtualNetworkId": 16777216}, {"PacketLength": 9000}):
        fails("InvalidParameterValue", ec2_raw.create_traffic_mirror_session, **{**args, **bad})
    # A target in another VPC needs an active peering.
    _, far_subnet = world(ec2, kumo, "10.9.0.0/16")
    far = ec2.create_traffic_mirror_target(NetworkInterfaceId=instance(ec2, kumo, far_subnet))["TrafficMirrorTarget"]["TrafficMirrorTargetId"]
    fails("InvalidParameterValue", ec2.create_traffic_mirror_session, **{**args, "TrafficMirrorTargetId": far})
    # Three sessions a source.
    for n in (1, 2, 3):
        ec2.create_traffic_mirror_session(**{**args, "SessionNumber": n})
    fails("TrafficMirrorSessionsPerInterfaceLimitExceeded", ec2.create_traffic_mirror_session, **{**args, "SessionNumber": 4})
    assert fails("InvalidParameterCombination", ec2.create_traffic_mirror_target, NetworkInterfaceId=src).startswith(
        "An elastic network interface cannot be a traffic mirror target")
    fails("DryRunOperation", ec2.create_traffic_mirror_filter, DryRun=True)
    del vpc, other
