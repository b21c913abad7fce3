//! The stored documents of the VPC family. Each is versioned from its first row (see
//! `kumo_store::Record`).

use kumo_store::Index;
use serde::{Deserialize, Serialize};

/// One IPv4 CIDR block of a VPC.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VpcCidr {
    pub association_id: String,
    pub cidr: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcRecord {
    pub id: String,
    /// The first block is the primary one and cannot be removed.
    pub cidrs: Vec<VpcCidr>,
    pub is_default: bool,
    pub instance_tenancy: String,
    pub dhcp_options_id: String,
    pub enable_dns_support: bool,
    pub enable_dns_hostnames: bool,
    pub enable_network_address_usage_metrics: bool,
    pub main_route_table_id: String,
    pub default_security_group_id: String,
    pub default_network_acl_id: String,
    /// Amazon-provided IPv6 blocks (/56s of Kumo's pool, `ipv6_pool_block`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<VpcCidr>,
}
record!(VpcRecord, "vpc", |s| Index {
    state: Some("available".into()),
    vpc: Some(s.id.clone()),
    ..Index::default()
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubnetRecord {
    pub id: String,
    pub vpc_id: String,
    pub cidr: String,
    pub zone: String,
    pub zone_id: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    pub assign_ipv6_on_creation: bool,
    pub enable_dns64: bool,
    pub hostname_type: String,
    pub resource_name_dns_a_record: bool,
    pub resource_name_dns_aaaa_record: bool,
    /// The subnet's IPv6 block (a /64 of one of its VPC's), with its association id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<VpcCidr>,
    /// The subnet's network ACL association, once ReplaceNetworkAclAssociation made one;
    /// until then the VPC's default ACL, by the association id [`SubnetRecord::acl_of`] gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<AclAssociation>,
}

/// A subnet's network ACL association.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclAssociation {
    pub id: String,
    pub network_acl_id: String,
}

impl SubnetRecord {
    /// The subnet's association: its own, or the VPC's default ACL (`default_acl`) under an
    /// id made from the subnet's, stable until the association is replaced.
    pub fn acl_of(&self, default_acl: &str) -> AclAssociation {
        self.acl.clone().unwrap_or_else(|| AclAssociation {
            id: format!(
                "aclassoc-{}",
                self.id
                    .trim_start_matches("subnet-")
                    .chars()
                    .take(17)
                    .collect::<String>()
            ),
            network_acl_id: default_acl.to_string(),
        })
    }

    /// Whether the subnet is associated with `acl`: by its own association, else as its
    /// VPC's default ACL.
    pub fn uses_acl(&self, acl: &NetworkAclRecord) -> bool {
        match &self.acl {
            Some(a) => a.network_acl_id == acl.id,
            None => acl.is_default && self.vpc_id == acl.vpc_id,
        }
    }
}
record!(SubnetRecord, "subnet", |s| Index {
    state: Some("available".into()),
    vpc: Some(s.vpc_id.clone()),
    subnet: Some(s.id.clone()),
    zone: Some(s.zone.clone()),
    ..Index::default()
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReservationRecord {
    pub id: String,
    pub subnet_id: String,
    pub cidr: String,
    /// `prefix` or `explicit`.
    pub kind: String,
    pub description: Option<String>,
}
record!(ReservationRecord, "subnet-cidr-reservation", |s| Index {
    subnet: Some(s.subnet_id.clone()),
    ..Index::default()
});

/// An address of an ENI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EniAddress {
    pub addr: String,
    pub primary: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EniAttachment {
    pub id: String,
    pub instance_id: String,
    pub device_index: i32,
    pub status: String,
    pub delete_on_termination: bool,
    pub attach_time_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EniRecord {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub zone: String,
    pub zone_id: String,
    pub description: String,
    pub mac: String,
    /// The primary address first.
    pub addresses: Vec<EniAddress>,
    /// Delegated /28 prefixes.
    pub prefixes: Vec<String>,
    /// IPv6 addresses of the subnet's block, in RFC 5952's text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<String>,
    /// Delegated IPv6 /80 prefixes of the subnet's block.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6_prefixes: Vec<String>,
    /// The first IPv6 address is the interface's primary one (`EnablePrimaryIpv6`): it stays
    /// until the interface is deleted. Once on, never off, as on AWS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub primary_ipv6: bool,
    pub groups: Vec<String>,
    pub source_dest_check: bool,
    pub interface_type: String,
    pub requester_managed: bool,
    pub requester_id: Option<String>,
    pub attachment: Option<EniAttachment>,
}
// Only the columns a query looks at: an interface is found by its VPC and subnet. Each
// column set is one more index entry per row, and a launch writes one row per interface.
record!(EniRecord, "network-interface", |s| Index {
    vpc: Some(s.vpc_id.clone()),
    subnet: Some(s.subnet_id.clone()),
    ..Index::default()
});

/// One security-group rule: a protocol, a port range and one peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SgRule {
    pub id: String,
    pub protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub cidr: Option<String>,
    /// An IPv6 peer, enforced for the interfaces' IPv6 addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_ipv6: Option<String>,
    pub group_id: Option<String>,
    /// A referenced group of another account (in a VPC peered with this group's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_owner: Option<String>,
    /// The peering connection through which a referenced group in another VPC is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_peering: Option<String>,
    /// A customer-managed prefix list: the rule admits each of its current entries (of the
    /// list's address family), and weighs the list's `max_entries` against the rule limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_list_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityGroupRecord {
    pub id: String,
    pub name: String,
    pub description: String,
    pub vpc_id: String,
    pub ingress: Vec<SgRule>,
    pub egress: Vec<SgRule>,
}
// The name is unique per VPC, ignoring case: the unique index holds `vpc/lower-case name`.
record!(SecurityGroupRecord, "security-group", |s| Index {
    name: Some(format!("{}/{}", s.vpc_id, s.name.to_lowercase())),
    vpc: Some(s.vpc_id.clone()),
    ..Index::default()
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternetGatewayRecord {
    pub id: String,
    pub vpc_id: Option<String>,
}
record!(InternetGatewayRecord, "internet-gateway", |s| Index {
    vpc: s.vpc_id.clone(),
    ..Index::default()
});

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteEntry {
    pub destination: String,
    /// `local`, an internet gateway id, …
    pub gateway_id: String,
    /// `CreateRouteTable` (the local route) or `CreateRoute`.
    pub origin: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableAssoc {
    pub id: String,
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteTableRecord {
    pub id: String,
    pub vpc_id: String,
    pub main: bool,
    /// The association id of the main association, when `main`.
    pub main_association_id: Option<String>,
    pub routes: Vec<RouteEntry>,
    pub associations: Vec<RouteTableAssoc>,
    /// Virtual private gateways whose routes it takes (EnableVgwRoutePropagation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub propagating_vgws: Vec<String>,
}
record!(RouteTableRecord, "route-table", |s| Index {
    vpc: Some(s.vpc_id.clone()),
    ..Index::default()
});

/// One network ACL entry, as CreateNetworkAclEntry gave it (the protocol as its number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    pub rule_number: i32,
    pub egress: bool,
    pub protocol: String,
    /// `allow` or `deny`.
    pub action: String,
    pub cidr: Option<String>,
    pub ipv6_cidr: Option<String>,
    /// (type, code).
    pub icmp: Option<(i32, i32)>,
    /// (from, to).
    pub ports: Option<(i32, i32)>,
}

impl AclEntry {
    /// A default ACL's rule 100 both ways: all traffic, from and to anywhere.
    pub fn default_allow() -> Vec<AclEntry> {
        [true, false]
            .into_iter()
            .map(|egress| AclEntry {
                rule_number: 100,
                egress,
                protocol: "-1".into(),
                action: "allow".into(),
                cidr: Some("0.0.0.0/0".into()),
                ipv6_cidr: None,
                icmp: None,
                ports: None,
            })
            .collect()
    }
}

/// A network ACL. Its entries are kept in rule-number order; the `*` rule (32767, deny all)
/// is implicit. Which subnets it filters is on the subnets ([`SubnetRecord::acl`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAclRecord {
    pub id: String,
    pub vpc_id: String,
    pub is_default: bool,
    /// Documents from before custom ACLs were all default ACLs, with rule 100 both ways.
    #[serde(default = "AclEntry::default_allow")]
    pub entries: Vec<AclEntry>,
    /// Whether its VPC has an IPv6 block: it then shows a `*` rule for `::/0` too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ipv6: bool,
}
record!(NetworkAclRecord, "network-acl", |s| Index {
    vpc: Some(s.vpc_id.clone()),
    ..Index::default()
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpOptionsRecord {
    pub id: String,
    /// (key, values), e.g. `domain-name-servers` → `AmazonProvidedDNS`.
    pub options: Vec<(String, Vec<String>)>,
}
record!(DhcpOptionsRecord, "dhcp-options", |_s| Index::default());

/// Marks that a scope's default network (default VPC and its parts) has been made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeRecord {
    pub id: String,
    pub default_vpc_id: Option<String>,
    pub default_dhcp_options_id: String,
}
record!(ScopeRecord, "scope", |_s| Index::default());

/// Where an Elastic IP points.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EipAssociation {
    pub id: String,
    pub eni_id: String,
    pub private_ip: String,
    pub instance_id: Option<String>,
}

/// An Elastic IP. The public address is also held in the store's `public` address pool, so no
/// two accounts ever get the same one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRecord {
    pub id: String,
    pub public_ip: String,
    pub association: Option<EipAssociation>,
    /// Set when a service (a NAT gateway) holds the association.
    pub service_managed: Option<String>,
}
record!(AddressRecord, "elastic-ip", |s| Index {
    name: Some(s.public_ip.clone()),
    ..Index::default()
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatGatewayRecord {
    pub id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    /// `public` or `private`.
    pub connectivity: String,
    /// `pending`, `available`, `failed`, `deleting` or `deleted`.
    pub state: String,
    pub failure: Option<(String, String)>,
    pub eni_id: Option<String>,
    pub private_ip: Option<String>,
    pub allocation_id: Option<String>,
    pub public_ip: Option<String>,
    pub association_id: Option<String>,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
}
record!(NatGatewayRecord, "natgateway", |s| Index {
    state: Some(s.state.clone()),
    vpc: Some(s.vpc_id.clone()),
    subnet: Some(s.subnet_id.clone()),
    ..Index::default()
});

/// One entry of a managed prefix list.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrefixListEntry {
    pub cidr: String,
    pub description: Option<String>,
}

/// A customer-managed prefix list, with every version of its entries (a version is made by
/// each change of the entries, as on AWS; renaming and resizing make none).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixListRecord {
    pub id: String,
    pub name: String,
    /// `IPv4` or `IPv6`.
    pub family: String,
    pub max_entries: i32,
    /// (version, entries), oldest first; the last is the current version.
    pub versions: Vec<(i64, Vec<PrefixListEntry>)>,
    /// The last change asked for: `create`, `modify`, `restore` or `delete`. It shows as
    /// `<op>-in-progress` until the transition delay has passed, then `<op>-complete`, or
    /// `<op>-failed` with `failure` as the state message.
    pub op: String,
    pub failure: Option<String>,
    pub changed_ms: i64,
}
record!(PrefixListRecord, "prefix-list", |_s| Index::default());

impl PrefixListRecord {
    pub fn version(&self) -> i64 {
        self.versions.last().map(|v| v.0).unwrap_or(1)
    }

    /// The current version's entries.
    pub fn entries(&self) -> &[PrefixListEntry] {
        self.versions.last().map(|v| v.1.as_slice()).unwrap_or(&[])
    }

    /// The state AWS shows at `now_ms`, with changes taking `delay_ms`.
    pub fn state(&self, now_ms: i64, delay_ms: i64) -> String {
        let outcome = if now_ms < self.changed_ms + delay_ms {
            "in-progress"
        } else if self.failure.is_some() {
            "failed"
        } else {
            "complete"
        };
        format!("{}-{outcome}", self.op)
    }
}

/// One side of a VPC peering connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeeringSide {
    pub account: String,
    pub region: String,
    pub vpc_id: String,
    /// The VPC's IPv4 CIDRs: the requester's from the request on, the accepter's from its
    /// acceptance on (AWS shows them then).
    pub cidrs: Vec<String>,
    /// `AllowDnsResolutionFromRemoteVpc`, as this side's owner set it.
    pub allow_dns: bool,
}

/// A VPC peering connection. The same document is kept in both sides' scopes (the
/// requester's and the accepter's account and region), each copy indexed by its own side's
/// VPC, and every change writes both in one transaction. `status` is `pending-acceptance`,
/// `active`, `rejected`, `deleted` or `failed`; `expired` is a pending one past
/// `expires_ms`, worked out when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcPeeringRecord {
    pub id: String,
    pub requester: PeeringSide,
    pub accepter: PeeringSide,
    pub status: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// When it was rejected, deleted or failed, and by which account.
    pub ended_ms: Option<i64>,
    pub ended_by: Option<String>,
    /// The VPC of the scope this copy is kept in.
    pub local_vpc: String,
}
impl VpcPeeringRecord {
    /// Whether the VPC `vpc` of `account` and `region` is a side of the connection.
    pub fn joins(&self, account: &str, region: &str, vpc: &str) -> bool {
        [&self.requester, &self.accepter]
            .iter()
            .any(|s| s.account == account && s.region == region && s.vpc_id == vpc)
    }

    /// The other side, seen from the VPC `vpc` of `account` and `region`.
    pub fn far_side(&self, account: &str, region: &str, vpc: &str) -> &PeeringSide {
        let r = &self.requester;
        if r.account == account && r.region == region && r.vpc_id == vpc {
            &self.accepter
        } else {
            r
        }
    }
}
record!(VpcPeeringRecord, "vpc-peering-connection", |s| Index {
    state: Some(s.status.clone()),
    vpc: Some(s.local_vpc.clone()),
    ..Index::default()
});

/// A virtual private gateway's attachment to a VPC: `attached` or `detached`, since
/// `changed_ms` (shown `attaching` or `detaching` until the transition delay has passed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VgwAttachment {
    pub vpc_id: String,
    pub attached: bool,
    pub changed_ms: i64,
}

/// A virtual private gateway: AWS's side of a Site-to-Site VPN, which Kumo keeps as state
/// (attachments, route propagation) without tunnels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpnGatewayRecord {
    pub id: String,
    pub amazon_side_asn: i64,
    pub zone: Option<String>,
    pub created_ms: i64,
    /// Its attachments, the last one current; a detached one stays until the next attach.
    pub attachment: Option<VgwAttachment>,
    pub deleted_ms: Option<i64>,
}
record!(VpnGatewayRecord, "vpn-gateway", |s| Index {
    vpc: s
        .attachment
        .as_ref()
        .filter(|a| a.attached)
        .map(|a| a.vpc_id.clone()),
    ..Index::default()
});

/// A customer gateway: the description of a VPN device on the far side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerGatewayRecord {
    pub id: String,
    pub bgp_asn: Option<i64>,
    pub bgp_asn_extended: Option<i64>,
    pub ip_address: Option<String>,
    pub device_name: Option<String>,
    pub certificate_arn: Option<String>,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
}
record!(CustomerGatewayRecord, "customer-gateway", |_s| {
    Index::default()
});

/// A traffic mirror target: an interface that receives the copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorTargetRecord {
    pub id: String,
    pub eni_id: String,
    pub vpc_id: String,
    pub description: Option<String>,
}
record!(MirrorTargetRecord, "traffic-mirror-target", |s| Index {
    vpc: Some(s.vpc_id.clone()),
    ..Index::default()
});

/// One rule of a traffic mirror filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFilterRule {
    pub id: String,
    /// `ingress` or `egress`.
    pub direction: String,
    pub rule_number: i32,
    /// `accept` or `reject`.
    pub action: String,
    pub protocol: Option<i32>,
    pub source_cidr: String,
    pub destination_cidr: String,
    pub source_ports: Option<(i32, i32)>,
    pub destination_ports: Option<(i32, i32)>,
    pub description: Option<String>,
}

/// A traffic mirror filter: its rules (each with an id of its own, `tmfr-…`) and network
/// services (`amazon-dns`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFilterRecord {
    pub id: String,
    pub description: Option<String>,
    pub network_services: Vec<String>,
    pub rules: Vec<MirrorFilterRule>,
}
record!(MirrorFilterRecord, "traffic-mirror-filter", |_s| {
    Index::default()
});

/// A filter rule's id, kept as a record of its own so that an id alone finds its filter
/// (ModifyTrafficMirrorFilterRule and the tag calls name only the rule).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorRuleRef {
    pub id: String,
    pub filter_id: String,
}
record!(MirrorRuleRef, "traffic-mirror-filter-rule", |_s| {
    Index::default()
});

/// A traffic mirror session: a source interface, its target and filter, its order among the
/// source's sessions, and the VXLAN id its copies carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSessionRecord {
    pub id: String,
    pub eni_id: String,
    pub vpc_id: String,
    pub target_id: String,
    pub filter_id: String,
    pub session_number: i32,
    pub vni: i32,
    pub packet_length: Option<i32>,
    pub description: Option<String>,
}
record!(MirrorSessionRecord, "traffic-mirror-session", |s| Index {
    vpc: Some(s.vpc_id.clone()),
    ..Index::default()
});

/// An interface endpoint's network interface in one subnet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointSubnet {
    pub subnet_id: String,
    pub zone: String,
    pub eni_id: String,
}

/// A VPC endpoint to one of the services Kumo stands behind: a gateway endpoint's route
/// tables (each holds a route to the service's prefix list through it), or an interface
/// endpoint's network interfaces, one per subnet, where Kumo serves the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcEndpointRecord {
    pub id: String,
    pub vpc_id: String,
    pub service_name: String,
    /// `Gateway` or `Interface`.
    pub endpoint_type: String,
    pub policy: String,
    pub route_tables: Vec<String>,
    pub subnets: Vec<EndpointSubnet>,
    pub groups: Vec<String>,
    pub private_dns: bool,
    /// The eight characters after the id in the endpoint's DNS names.
    pub dns_tag: String,
    pub created_ms: i64,
    pub deleted_ms: Option<i64>,
}
impl VpcEndpointRecord {
    /// The service's short name (`ec2` of `com.amazonaws.eu-west-1.ec2`).
    pub fn short_of(service: &str) -> &str {
        service.rsplit('.').next().unwrap_or(service)
    }

    pub fn short(&self) -> &str {
        Self::short_of(&self.service_name)
    }

    /// The name a service answers at in a region: what private DNS resolves in the VPC.
    pub fn private_name(region: &str, short: &str) -> String {
        format!("{short}.{region}.amazonaws.com")
    }

    /// The endpoint's own DNS names, in AWS's order: the regional one, then a zonal one per
    /// subnet (with that subnet).
    pub fn own_names(&self, region: &str) -> Vec<(String, Option<String>)> {
        let short = self.short();
        let base = format!("{}-{}", self.id, self.dns_tag);
        let mut out = vec![(format!("{base}.{short}.{region}.vpce.amazonaws.com"), None)];
        for sub in &self.subnets {
            out.push((
                format!("{base}-{}.{short}.{region}.vpce.amazonaws.com", sub.zone),
                Some(sub.subnet_id.clone()),
            ));
        }
        out
    }
}
record!(VpcEndpointRecord, "vpc-endpoint", |s| Index {
    vpc: Some(s.vpc_id.clone()),
    ..Index::default()
});

/// An egress-only internet gateway: IPv6 out of its VPC, nothing in. Attached to its VPC for
/// its whole life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressOnlyGatewayRecord {
    pub id: String,
    pub vpc_id: String,
    pub created_ms: i64,
}
record!(
    EgressOnlyGatewayRecord,
    "egress-only-internet-gateway",
    |s| Index {
        vpc: Some(s.vpc_id.clone()),
        ..Index::default()
    }
);
