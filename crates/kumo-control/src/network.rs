//! What the VPC family shares: the default network each (account, region) starts with, the
//! parts every VPC is born with, and the cache of subnet allocators.

use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::net::*;
pub use crate::repo::instance::private_dns_name;
use crate::scope;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::Cidr;
use kumo_model::ipam::{Reservation, SubnetIps};
use kumo_model::regions;
use kumo_store::{Query, Read, Scope, Store, Tx};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// In-memory state of the VPC family. Everything here can be rebuilt from the store.
#[derive(Default)]
pub struct NetState {
    /// Scopes whose default network is known to exist.
    ready: Mutex<HashSet<String>>,
    /// Subnet allocators by `account/region/subnet`, as of the last commit.
    allocators: Mutex<HashMap<String, SubnetIps>>,
}

fn key(s: Scope, subnet: &str) -> String {
    format!("{}/{}/{}", s.account, s.region, subnet)
}

impl NetState {
    pub fn clear(&self) {
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.allocators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The allocator of a subnet: from the cache, or rebuilt from the store. The caller
    /// mutates its own copy and hands it back with [`NetState::commit`] once the transaction
    /// that used it has committed.
    pub fn allocator<V: Read>(
        &self,
        v: &V,
        s: Scope,
        subnet: &SubnetRecord,
    ) -> Result<SubnetIps, Fail> {
        if let Some(a) = self
            .allocators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key(s, &subnet.id))
        {
            return Ok(a.clone());
        }
        let cidr = Cidr::parse(&subnet.cidr).map_err(|_| Fail(Ec2Error::internal()))?;
        let mut a = SubnetIps::new(cidr);
        let reservations: Vec<ReservationRecord> = v.list(
            s,
            &Query {
                subnets: Some(&[subnet.id.as_str()]),
                ..Query::default()
            },
        )?;
        for r in reservations {
            if let Ok(c) = Cidr::parse(&r.cidr) {
                a.reserve(
                    c,
                    if r.kind == "prefix" {
                        Reservation::Prefix
                    } else {
                        Reservation::Explicit
                    },
                );
            }
        }
        for (addr, _) in v.pool_addrs(s, &subnet.id)? {
            a.mark(addr);
        }
        Ok(a)
    }

    /// Replaces the cached allocator of a subnet. Call it from `Store::write_then`, so the
    /// cache changes under the same write lock as the store.
    pub fn commit(&self, s: Scope, subnet: &str, a: &SubnetIps) {
        self.allocators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key(s, subnet), a.clone());
    }

    pub fn forget(&self, s: Scope, subnet: &str) {
        self.allocators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key(s, subnet));
    }

    /// Makes the default network of the caller's scope if it does not exist yet: the default
    /// VPC (172.31.0.0/16), a default /20 subnet per zone, an attached internet gateway, the
    /// main route table with a route to it, and the default security group, network ACL and
    /// DHCP options. AWS makes these when an account first has a region; Kumo makes them on
    /// the first call that can see them.
    pub fn ensure_default(&self, store: &Store, ctx: &RequestContext) -> Result<(), Ec2Error> {
        let k = format!("{}/{}", ctx.account_id, ctx.region);
        if self
            .ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&k)
        {
            return Ok(());
        }
        store
            .write(true, |tx| {
                let s = scope(ctx);
                if tx.get::<ScopeRecord>(s, "scope")?.is_some() {
                    return Ok(());
                }
                let dopt = default_dhcp_options(tx, s)?;
                let mut marker = ScopeRecord {
                    id: "scope".into(),
                    default_vpc_id: None,
                    default_dhcp_options_id: dopt,
                };
                if regions::get(s.region).is_some() {
                    marker.default_vpc_id =
                        Some(create_default_vpc(tx, s, &marker.default_dhcp_options_id)?);
                }
                tx.insert(s, &marker)?;
                Ok::<_, Fail>(())
            })
            .map_err(|f| f.0)?;
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(k);
        Ok(())
    }
}

fn default_dhcp_options(tx: &Tx, s: Scope) -> Result<String, Fail> {
    let domain = if s.region == "us-east-1" {
        "ec2.internal".to_string()
    } else {
        format!("{}.compute.internal", s.region)
    };
    let rec = DhcpOptionsRecord {
        id: new_id("dopt"),
        options: vec![
            ("domain-name".into(), vec![domain]),
            (
                "domain-name-servers".into(),
                vec!["AmazonProvidedDNS".into()],
            ),
        ],
    };
    tx.insert(s, &rec)?;
    Ok(rec.id)
}

/// The default VPC of a scope and everything in it; returns its id.
pub fn create_default_vpc(tx: &Tx, s: Scope, dhcp_options_id: &str) -> Result<String, Fail> {
    let vpc = new_vpc(tx, s, "172.31.0.0/16", true, dhcp_options_id, "default")?;
    let igw = InternetGatewayRecord {
        id: new_id("igw"),
        vpc_id: Some(vpc.id.clone()),
    };
    tx.insert(s, &igw)?;
    let mut rtb: RouteTableRecord = tx
        .get(s, &vpc.main_route_table_id)?
        .ok_or(Fail(Ec2Error::internal()))?;
    rtb.routes.push(RouteEntry {
        destination: "0.0.0.0/0".into(),
        gateway_id: igw.id.clone(),
        origin: "CreateRoute".into(),
    });
    tx.update(s, &rtb)?;
    if let Some(region) = regions::get(s.region) {
        for (i, zone) in region.zones.iter().enumerate() {
            let base =
                Cidr::parse("172.31.0.0/16").map(|c| c.base()).unwrap_or(0) + (i as u32) * 4096;
            let Some(cidr) = Cidr::new(base, 20) else {
                continue;
            };
            tx.insert(s, &default_subnet(&vpc.id, cidr, zone.name, zone.id))?;
        }
    }
    Ok(vpc.id)
}

pub fn default_subnet(vpc_id: &str, cidr: Cidr, zone: &str, zone_id: &str) -> SubnetRecord {
    SubnetRecord {
        id: new_id("subnet"),
        vpc_id: vpc_id.to_string(),
        cidr: cidr.to_string(),
        zone: zone.to_string(),
        zone_id: zone_id.to_string(),
        default_for_az: true,
        map_public_ip_on_launch: true,
        assign_ipv6_on_creation: false,
        enable_dns64: false,
        hostname_type: "ip-name".into(),
        resource_name_dns_a_record: false,
        resource_name_dns_aaaa_record: false,
        ipv6: None,
        acl: None,
    }
}

/// A VPC with the parts every VPC is born with: its main route table (with the local route),
/// its default security group and its default network ACL.
pub fn new_vpc(
    tx: &Tx,
    s: Scope,
    cidr: &str,
    is_default: bool,
    dhcp_options_id: &str,
    tenancy: &str,
) -> Result<VpcRecord, Fail> {
    let id = new_id("vpc");
    let rtb = RouteTableRecord {
        id: new_id("rtb"),
        vpc_id: id.clone(),
        main: true,
        main_association_id: Some(new_id("rtbassoc")),
        routes: vec![RouteEntry {
            destination: cidr.to_string(),
            gateway_id: "local".into(),
            origin: "CreateRouteTable".into(),
        }],
        associations: Vec::new(),
        propagating_vgws: Vec::new(),
    };
    let sg = SecurityGroupRecord {
        id: new_id("sg"),
        name: "default".into(),
        description: "default VPC security group".into(),
        vpc_id: id.clone(),
        ingress: vec![SgRule {
            id: new_id("sgr"),
            protocol: "-1".into(),
            from_port: None,
            to_port: None,
            cidr: None,
            cidr_ipv6: None,
            group_id: None, // filled below: the group itself
            group_owner: None,
            group_peering: None,
            prefix_list_id: None,
            description: None,
        }],
        egress: vec![all_traffic_egress()],
    };
    let mut sg = sg;
    sg.ingress[0].group_id = Some(sg.id.clone());
    let acl = NetworkAclRecord {
        id: new_id("acl"),
        vpc_id: id.clone(),
        is_default: true,
        entries: crate::records::net::AclEntry::default_allow(),
        ipv6: false,
    };
    let vpc = VpcRecord {
        id,
        cidrs: vec![VpcCidr {
            association_id: new_id("vpc-cidr-assoc"),
            cidr: cidr.to_string(),
        }],
        is_default,
        instance_tenancy: tenancy.to_string(),
        dhcp_options_id: dhcp_options_id.to_string(),
        enable_dns_support: true,
        enable_dns_hostnames: is_default,
        enable_network_address_usage_metrics: false,
        main_route_table_id: rtb.id.clone(),
        default_security_group_id: sg.id.clone(),
        default_network_acl_id: acl.id.clone(),
        ipv6: Vec::new(),
    };
    tx.insert(s, &vpc)?;
    tx.insert(s, &rtb)?;
    tx.insert(s, &sg)?;
    tx.insert(s, &acl)?;
    Ok(vpc)
}

/// Kumo's pool of Amazon-provided IPv6 blocks, held across accounts and regions as the public
/// IPv4 addresses are: each /56's index in `kumo_model::cidr::ipv6_pool_block`.
const IPV6_POOL: &str = "ipv6-56";
const GLOBAL: Scope = Scope {
    account: "",
    region: "",
};

/// Takes a free /56 of the IPv6 pool for a VPC (the one after the highest held, else the first
/// free one), and records the VPC as its holder.
pub fn take_ipv6_block(tx: &Tx, s: Scope, vpc: &str) -> Result<String, Fail> {
    let tag = format!("{}/{}/{vpc}", s.account, s.region);
    let start = tx.max_addr(GLOBAL, IPV6_POOL)?.map(|m| m + 1).unwrap_or(0);
    let held: std::collections::HashSet<u32> = if start >= 1 << 24 {
        tx.pool_addrs(GLOBAL, IPV6_POOL)?
            .into_iter()
            .map(|(a, _)| a)
            .collect()
    } else {
        Default::default()
    };
    for i in (start..1 << 24).chain((0..start).filter(|i| !held.contains(i))) {
        match tx.claim_addrs(GLOBAL, IPV6_POOL, &tag, &[i]) {
            Ok(()) => {
                return kumo_model::cidr::ipv6_pool_block(i)
                    .map(|c| c.to_string())
                    .ok_or(Fail(Ec2Error::internal()))
            }
            Err(kumo_store::StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Fail(Ec2Error::new(
        "InsufficientCidrBlocks",
        "Kumo's IPv6 pool has no free /56 left.",
    )))
}

/// Gives a /56 back to the pool.
pub fn release_ipv6_block(tx: &Tx, cidr: &str) -> Result<(), Fail> {
    if let Some(i) = kumo_model::cidr::ipv6_pool_index(cidr) {
        tx.release_addrs(GLOBAL, IPV6_POOL, &[i])?;
    }
    Ok(())
}

/// What a VPC's first IPv6 block brings, as AWS documents it: a local route in each of its
/// route tables, the `::/0` rules of its network ACLs (the default one's rule 101 allowing
/// `::/0` both ways, where that number is free), and an egress rule for `::/0` in its default
/// security group.
pub fn add_ipv6_block(tx: &Tx, s: Scope, vpc: &VpcRecord, cidr: &str) -> Result<(), Fail> {
    use crate::records::net::{AclEntry, NetworkAclRecord, SecurityGroupRecord};
    let q = Query {
        vpcs: Some(&[vpc.id.as_str()]),
        ..Query::default()
    };
    let tables: Vec<RouteTableRecord> = tx.list(s, &q)?;
    for mut t in tables {
        t.routes.push(RouteEntry {
            destination: cidr.to_string(),
            gateway_id: "local".into(),
            origin: "CreateRouteTable".into(),
        });
        tx.update(s, &t)?;
    }
    if !vpc.ipv6.is_empty() {
        return Ok(());
    }
    let acls: Vec<NetworkAclRecord> = tx.list(s, &q)?;
    for mut a in acls {
        a.ipv6 = true;
        if a.is_default {
            for egress in [true, false] {
                if !a
                    .entries
                    .iter()
                    .any(|e| e.egress == egress && e.rule_number == 101)
                {
                    a.entries.push(AclEntry {
                        rule_number: 101,
                        egress,
                        protocol: "-1".into(),
                        action: "allow".into(),
                        cidr: None,
                        ipv6_cidr: Some("::/0".into()),
                        icmp: None,
                        ports: None,
                    });
                }
            }
            a.entries.sort_by_key(|x| (!x.egress, x.rule_number));
        }
        tx.update(s, &a)?;
    }
    if let Some(mut sg) = tx.get::<SecurityGroupRecord>(s, &vpc.default_security_group_id)? {
        if !sg
            .egress
            .iter()
            .any(|r| r.cidr_ipv6.as_deref() == Some("::/0") && r.protocol == "-1")
        {
            sg.egress.push(SgRule {
                cidr: None,
                cidr_ipv6: Some("::/0".into()),
                ..all_traffic_egress()
            });
            tx.update(s, &sg)?;
        }
    }
    Ok(())
}

/// The egress rule every new security group starts with: all traffic to anywhere.
pub fn all_traffic_egress() -> SgRule {
    SgRule {
        id: new_id("sgr"),
        protocol: "-1".into(),
        from_port: None,
        to_port: None,
        cidr: Some("0.0.0.0/0".into()),
        cidr_ipv6: None,
        group_id: None,
        group_owner: None,
        group_peering: None,
        prefix_list_id: None,
        description: None,
    }
}

/// The default VPC of the caller's scope, if it has one.
pub fn default_vpc<V: Read>(v: &V, s: Scope) -> Result<Option<String>, Fail> {
    Ok(v.get::<ScopeRecord>(s, "scope")?
        .and_then(|m| m.default_vpc_id))
}

/// A random locally administered MAC address, as ENIs get.
pub fn new_mac() -> String {
    let mut b = crate::core::ids::name_bytes::<6>();
    b[0] = (b[0] & 0xfc) | 0x02;
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Resolves a zone given by name or id in the caller's region.
pub fn resolve_zone(
    region: &str,
    name: Option<&str>,
    id: Option<&str>,
) -> Result<Option<(&'static str, &'static str)>, Ec2Error> {
    let zones = regions::get(region)
        .map(|r| r.zones.as_slice())
        .unwrap_or(&[]);
    if let Some(n) = name {
        return zones
            .iter()
            .find(|z| z.name == n)
            .map(|z| Some((z.name, z.id)))
            .ok_or_else(|| {
                let all: Vec<&str> = zones.iter().map(|z| z.name).collect();
                Ec2Error::invalid_value(format!(
                    "Value ({n}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                    all.join(", ")
                ))
            });
    }
    if let Some(i) = id {
        return zones
            .iter()
            .find(|z| z.id == i)
            .map(|z| Some((z.name, z.id)))
            .ok_or_else(|| {
                Ec2Error::invalid_value(format!(
                    "Value ({i}) for parameter availabilityZoneId is invalid."
                ))
            });
    }
    Ok(None)
}
