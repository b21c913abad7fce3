//! The firewall projection: a VPC's security groups, interfaces and public addresses as a
//! [`kumo_compute::firewall::Firewall`], applied by the driver, with the running instances'
//! metadata following.

use super::spec::metadata;
use crate::core::error::Fail;
use crate::host::Compute;
use crate::records::instance::InstanceRecord;
use crate::records::net::VpcRecord;
use crate::Kumo;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Read, Scope};

/// The security-group rules of one VPC, for the interfaces of the instances the driver runs.
pub(crate) fn firewall<V: Read>(
    k: &Kumo,
    cm: &Compute,
    v: &V,
    s: Scope,
    vpc_id: &str,
) -> Result<kumo_compute::firewall::Firewall, Fail> {
    use crate::records::net::{EniRecord, SecurityGroupRecord};
    use kumo_compute::firewall::{Firewall, Interface, Rule};
    let vpcs = [vpc_id];
    let q = kumo_store::Query {
        vpcs: Some(&vpcs),
        ..kumo_store::Query::default()
    };
    let enis: Vec<EniRecord> = v.list(s, &q)?;
    let groups: Vec<SecurityGroupRecord> = v.list(s, &q)?;
    // An interface's addresses, IPv6 ones included: a group's members are reached by both.
    let addrs_of = |e: &EniRecord| -> Vec<String> {
        e.addresses
            .iter()
            .map(|a| a.addr.clone())
            .chain(e.ipv6.iter().cloned())
            .collect()
    };
    // A group's members: the private addresses of every interface in it.
    let members = |g: &str| -> Vec<String> {
        enis.iter()
            .filter(|e| e.groups.iter().any(|x| x == g))
            .flat_map(addrs_of)
            .collect()
    };
    // The entries of the prefix lists the groups reference, of both families.
    let mut lists: std::collections::HashMap<String, Vec<String>> = Default::default();
    for id in groups
        .iter()
        .flat_map(|g| g.ingress.iter().chain(g.egress.iter()))
        .filter_map(|r| r.prefix_list_id.as_deref())
    {
        if !lists.contains_key(id) {
            let pl = crate::repo::prefix_list::get_any(v, s, id).ok();
            let entries = pl
                .map(|p| p.entries().iter().map(|e| e.cidr.clone()).collect())
                .unwrap_or_default();
            lists.insert(id.to_string(), entries);
        }
    }
    // The VPC's active peering connections, read once for the routes through them, the
    // groups they admit and the names they resolve.
    let linked: Vec<crate::records::net::VpcPeeringRecord> = v
        .list::<crate::records::net::VpcPeeringRecord>(s, &kumo_store::Query::default())?
        .into_iter()
        .filter(|p| p.status == "active" && p.joins(s.account, s.region, vpc_id))
        .collect();
    // Groups of peered VPCs that rules reference, while their peering is active: their
    // members' addresses, read in the group's own account.
    let mut remote: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in groups
        .iter()
        .flat_map(|g| g.ingress.iter().chain(g.egress.iter()))
        .filter(|r| r.group_peering.is_some())
    {
        let Some(g) = &r.group_id else { continue };
        if remote.contains_key(g) {
            continue;
        }
        let owner = r
            .group_owner
            .clone()
            .unwrap_or_else(|| s.account.to_string());
        let there = Scope {
            account: &owner,
            region: s.region,
        };
        let mut addrs = Vec::new();
        if let Some(group) = v.get::<SecurityGroupRecord>(there, g)? {
            // The rule names the group, not the connection: any active connection between
            // the two VPCs carries it (a rule outlives a peering deleted and made again).
            let active = linked
                .iter()
                .any(|p| p.joins(&owner, s.region, &group.vpc_id));
            if active {
                let vpcs = [group.vpc_id.as_str()];
                let q = kumo_store::Query {
                    vpcs: Some(&vpcs),
                    ..kumo_store::Query::default()
                };
                let far: Vec<EniRecord> = v.list(there, &q)?;
                addrs = far
                    .iter()
                    .filter(|e| e.groups.iter().any(|x| x == g))
                    .flat_map(addrs_of)
                    .collect();
            }
        }
        remote.insert(g.clone(), addrs);
    }
    let rules = |rs: &[crate::records::net::SgRule]| -> Vec<Rule> {
        rs.iter()
            .map(|r| Rule {
                protocol: r.protocol.clone(),
                from_port: r.from_port,
                to_port: r.to_port,
                peers: match (&r.cidr, &r.group_id, &r.prefix_list_id) {
                    (Some(c), _, _) => vec![c.clone()],
                    (None, None, None) if r.cidr_ipv6.is_some() => {
                        r.cidr_ipv6.iter().cloned().collect()
                    }
                    (None, Some(g), _) if r.group_peering.is_some() => {
                        remote.get(g).cloned().unwrap_or_default()
                    }
                    (None, Some(g), _) => members(g),
                    (None, None, Some(l)) => lists.get(l).cloned().unwrap_or_default(),
                    (None, None, None) => Vec::new(),
                },
            })
            .collect()
    };
    let _ = k;
    let mut fw = Firewall {
        acls: acls(v, s, vpc_id)?,
        peerings: peerings(v, s, vpc_id, &linked)?,
        mirrors: mirrors(cm, v, s, vpc_id)?,
        ..Firewall::default()
    };
    fw.public = public_pairs(cm, v, s, &enis)?;
    fw.peer_public = peer_public(cm, v, s, vpc_id, &linked)?;
    fw.endpoints = endpoints(v, s, vpc_id)?;
    for e in &enis {
        if e.interface_type == "vpc_endpoint" {
            // An interface endpoint's interface: its address is served in the namespace, and
            // its groups guard it as an instance's do.
            let mut iface = Interface {
                addrs: addrs_of(e),
                ..Interface::default()
            };
            for g in groups.iter().filter(|g| e.groups.contains(&g.id)) {
                iface.ingress.extend(rules(&g.ingress));
                iface.egress.extend(rules(&g.egress));
            }
            fw.interfaces.push(iface);
            continue;
        }
        let Some(a) = &e.attachment else { continue };
        if !cm.driver.is_running(&a.instance_id) {
            continue;
        }
        let mut iface = Interface {
            addrs: addrs_of(e)
                .into_iter()
                .chain(e.prefixes.iter().cloned())
                .chain(e.ipv6_prefixes.iter().cloned())
                .collect(),
            ..Interface::default()
        };
        for g in groups.iter().filter(|g| e.groups.contains(&g.id)) {
            iface.ingress.extend(rules(&g.ingress));
            iface.egress.extend(rules(&g.egress));
        }
        fw.interfaces.push(iface);
        let primary = e
            .addresses
            .iter()
            .find(|x| x.primary)
            .map(|x| x.addr.clone());
        let instance = v.get::<InstanceRecord>(s, &a.instance_id)?;
        if let (Some(r), Some(priv_ip), 0) = (&instance, &primary, a.device_index) {
            // The resolver answers the resource name only when the instance asks for its A
            // record (the IP name always resolves).
            if r.dns_names.a_record {
                fw.names.push((r.id.clone(), priv_ip.clone()));
            }
            if let (true, Some(v6)) = (r.dns_names.aaaa_record, e.ipv6.first()) {
                fw.names6.push((r.id.clone(), v6.clone()));
            }
        }
    }
    Ok(fw)
}

/// The public addresses of these interfaces, with the private ones they stand for: Elastic
/// IPs, and the launch public IPs of running instances (an Elastic IP on the primary address
/// replaces the launch one).
fn public_pairs<V: Read>(
    cm: &Compute,
    v: &V,
    s: Scope,
    enis: &[crate::records::net::EniRecord],
) -> Result<Vec<(String, String)>, Fail> {
    let mut out = Vec::new();
    for a in crate::repo::address::by_interface(v, s)? {
        if let Some(x) = &a.association {
            if enis.iter().any(|e| e.id == x.eni_id) {
                out.push((a.public_ip.clone(), x.private_ip.clone()));
            }
        }
    }
    for e in enis {
        let Some(a) = &e.attachment else { continue };
        if a.device_index != 0 || !cm.driver.is_running(&a.instance_id) {
            continue;
        }
        let primary = e
            .addresses
            .iter()
            .find(|x| x.primary)
            .map(|x| x.addr.clone());
        let launch_ip = v
            .get::<InstanceRecord>(s, &a.instance_id)?
            .and_then(|r| r.public_ip);
        if let (Some(p), Some(priv_ip)) = (launch_ip, primary) {
            if !out.iter().any(|(_, x)| *x == priv_ip) {
                out.push((p, priv_ip));
            }
        }
    }
    Ok(out)
}

/// The public names the VPC's resolver answers for peered VPCs: those of each active
/// connection's far side whose owner turned on `AllowDnsResolutionFromRemoteVpc` (AWS: "enables
/// a local VPC to resolve public DNS hostnames to private IP addresses when queried from
/// instances in the peer VPC"), read in the far side's account and region.
fn peer_public<V: Read>(
    cm: &Compute,
    v: &V,
    s: Scope,
    vpc_id: &str,
    linked: &[crate::records::net::VpcPeeringRecord],
) -> Result<Vec<(String, String)>, Fail> {
    let mut out = Vec::new();
    for p in linked {
        let far = p.far_side(s.account, s.region, vpc_id);
        if !far.allow_dns {
            continue;
        }
        let there = Scope {
            account: &far.account,
            region: &far.region,
        };
        let vpcs = [far.vpc_id.as_str()];
        let enis: Vec<crate::records::net::EniRecord> = v.list(
            there,
            &kumo_store::Query {
                vpcs: Some(&vpcs),
                ..kumo_store::Query::default()
            },
        )?;
        out.extend(public_pairs(cm, v, there, &enis)?);
    }
    Ok(out)
}

/// The VPC's traffic mirror sources that run here: each source interface's addresses and its
/// sessions in session-number order, with their filters' rules in rule-number order and the
/// target interface's primary address. A session whose target or filter is gone is left out.
fn mirrors<V: Read>(
    cm: &Compute,
    v: &V,
    s: Scope,
    vpc_id: &str,
) -> Result<Vec<kumo_compute::firewall::MirrorSource>, Fail> {
    use crate::records::net::{
        EniRecord, MirrorFilterRecord, MirrorFilterRule, MirrorSessionRecord, MirrorTargetRecord,
    };
    use kumo_compute::firewall::{MirrorRule, MirrorSession, MirrorSource};
    let vpcs = [vpc_id];
    let q = kumo_store::Query {
        vpcs: Some(&vpcs),
        ..kumo_store::Query::default()
    };
    let mut sessions: Vec<MirrorSessionRecord> = v.list(s, &q)?;
    if sessions.is_empty() {
        return Ok(Vec::new());
    }
    sessions.sort_by_key(|x| (x.eni_id.clone(), x.session_number, x.id.clone()));
    let primary = |e: &EniRecord| {
        e.addresses
            .iter()
            .find(|a| a.primary)
            .map(|a| a.addr.clone())
    };
    let rules = |f: &MirrorFilterRecord, dir: &str| -> Vec<MirrorRule> {
        let mut rs: Vec<&MirrorFilterRule> =
            f.rules.iter().filter(|r| r.direction == dir).collect();
        rs.sort_by_key(|r| r.rule_number);
        let port = |p: Option<(i32, i32)>| {
            p.map(|(a, b)| (a.clamp(0, 65535) as u16, b.clamp(0, 65535) as u16))
        };
        rs.into_iter()
            .map(|r| MirrorRule {
                protocol: r.protocol.and_then(|p| u8::try_from(p).ok()),
                src: r.source_cidr.clone(),
                dst: r.destination_cidr.clone(),
                src_ports: port(r.source_ports),
                dst_ports: port(r.destination_ports),
                accept: r.action == "accept",
            })
            .collect()
    };
    let mut out: Vec<MirrorSource> = Vec::new();
    for x in &sessions {
        let Some(eni) = v.get::<EniRecord>(s, &x.eni_id)? else {
            continue;
        };
        let running = eni
            .attachment
            .as_ref()
            .is_some_and(|a| cm.driver.is_running(&a.instance_id));
        let target = v
            .get::<MirrorTargetRecord>(s, &x.target_id)?
            .map(|t| v.get::<EniRecord>(s, &t.eni_id))
            .transpose()?
            .flatten()
            .and_then(|e| primary(&e));
        let filter = v.get::<MirrorFilterRecord>(s, &x.filter_id)?;
        let (true, Some(target), Some(filter), Some(source)) =
            (running, target, filter, primary(&eni))
        else {
            continue;
        };
        let session = MirrorSession {
            id: x.id.clone(),
            vni: x.vni as u32,
            target,
            source,
            ingress: rules(&filter, "ingress"),
            egress: rules(&filter, "egress"),
            dev: String::new(),
            port: 0,
        };
        let addrs: Vec<String> = eni.addresses.iter().map(|a| a.addr.clone()).collect();
        match out.iter_mut().find(|m| m.addrs == addrs) {
            Some(m) => m.sessions.push(session),
            None => out.push(MirrorSource {
                addrs,
                sessions: vec![session],
            }),
        }
    }
    Ok(out)
}

/// The VPC's active peering connections, each with the routes of the VPC's subnets that bear
/// on the far side's CIDRs: a route through the connection lets a subnet's traffic into it,
/// a more specific route elsewhere (or a wider one) keeps it out; longest prefix first, as
/// the VPC router picks.
fn peerings<V: Read>(
    v: &V,
    s: Scope,
    vpc_id: &str,
    active: &[crate::records::net::VpcPeeringRecord],
) -> Result<Vec<kumo_compute::firewall::Peering>, Fail> {
    use crate::records::net::{RouteTableRecord, SubnetRecord};
    use kumo_compute::firewall::{PeerRoute, Peering};
    if active.is_empty() {
        return Ok(Vec::new());
    }
    let vpcs = [vpc_id];
    let q = kumo_store::Query {
        vpcs: Some(&vpcs),
        ..kumo_store::Query::default()
    };
    let subnets: Vec<SubnetRecord> = v.list(s, &q)?;
    let tables: Vec<RouteTableRecord> = v.list(s, &q)?;
    let table_of = |sn: &str| {
        tables
            .iter()
            .find(|t| {
                t.associations
                    .iter()
                    .any(|a| a.subnet_id.as_deref() == Some(sn))
            })
            .or_else(|| tables.iter().find(|t| t.main))
    };
    let parse = |c: &str| kumo_model::cidr::Cidr::parse(c).ok();
    Ok(active
        .iter()
        .map(|p| {
            let far: Vec<_> = p
                .far_side(s.account, s.region, vpc_id)
                .cidrs
                .iter()
                .filter_map(|c| parse(c))
                .collect();
            let mut routes = Vec::new();
            for sn in &subnets {
                let Some(t) = table_of(&sn.id) else { continue };
                let mut bearing: Vec<_> = t
                    .routes
                    .iter()
                    .filter_map(|r| parse(&r.destination).map(|c| (c, r)))
                    .filter(|(c, _)| far.iter().any(|f| f.overlaps(*c)))
                    .collect();
                bearing.sort_by_key(|(c, _)| std::cmp::Reverse(c.prefix_len()));
                routes.extend(bearing.into_iter().map(|(c, r)| PeerRoute {
                    subnet: sn.cidr.clone(),
                    dst: c.to_string(),
                    via: r.gateway_id == p.id,
                }));
            }
            Peering {
                id: p.id.clone(),
                dev: String::new(),
                routes,
            }
        })
        .collect())
}

/// The VPC's network ACLs with the subnets they filter (their IPv4 and IPv6 blocks), and their
/// entries of both families.
fn acls<V: Read>(v: &V, s: Scope, vpc_id: &str) -> Result<Vec<kumo_compute::firewall::Acl>, Fail> {
    use crate::records::net::{NetworkAclRecord, SubnetRecord};
    use kumo_compute::firewall::{Acl, AclRule};
    let vpcs = [vpc_id];
    let q = kumo_store::Query {
        vpcs: Some(&vpcs),
        ..kumo_store::Query::default()
    };
    let subnets: Vec<SubnetRecord> = v.list(s, &q)?;
    let acls: Vec<NetworkAclRecord> = v.list(s, &q)?;
    Ok(acls
        .iter()
        .map(|a| {
            let mut entries: Vec<_> = a
                .entries
                .iter()
                .filter(|e| e.cidr.is_some() || e.ipv6_cidr.is_some())
                .collect();
            entries.sort_by_key(|e| e.rule_number);
            let rules = |egress: bool| -> Vec<AclRule> {
                entries
                    .iter()
                    .filter(|e| e.egress == egress)
                    .map(|e| AclRule {
                        protocol: e.protocol.clone(),
                        ports: e.ports,
                        icmp: e.icmp,
                        cidr: e.cidr.clone().or(e.ipv6_cidr.clone()).unwrap_or_default(),
                        allow: e.action == "allow",
                    })
                    .collect()
            };
            Acl {
                subnets: subnets
                    .iter()
                    .filter(|sn| sn.uses_acl(a))
                    .flat_map(|sn| {
                        std::iter::once(sn.cidr.clone())
                            .chain(sn.ipv6.iter().map(|b| b.cidr.clone()))
                    })
                    .collect(),
                ingress: rules(false),
                egress: rules(true),
            }
        })
        .filter(|a| !a.subnets.is_empty())
        .collect())
}

/// Re-renders the security groups of the scope's VPCs (`only` these, when given) and follows
/// them in the metadata of their running instances. Called by the firewall worker, or inline
/// when none runs ([`Kumo::sync_firewall`]).
/// What the driver serves for a VPC's interface endpoints: per interface, its address, the
/// endpoint's names that lead to it (the regional one and its subnet's zonal one), and the
/// service's name, answered when private DNS is on.
fn endpoints<V: Read>(
    v: &V,
    s: Scope,
    vpc_id: &str,
) -> Result<Vec<kumo_compute::firewall::Endpoint>, Fail> {
    use crate::records::net::{EniRecord, VpcEndpointRecord};
    let vpcs = [vpc_id];
    let q = kumo_store::Query {
        vpcs: Some(&vpcs),
        ..kumo_store::Query::default()
    };
    let mut out = Vec::new();
    for e in v
        .list::<VpcEndpointRecord>(s, &q)?
        .into_iter()
        .filter(|e| e.deleted_ms.is_none() && e.endpoint_type == "Interface")
    {
        let names = e.own_names(s.region);
        for sub in &e.subnets {
            let Some(eni) = v.get::<EniRecord>(s, &sub.eni_id)? else {
                continue;
            };
            let Some(addr) = eni.addresses.first() else {
                continue;
            };
            out.push(kumo_compute::firewall::Endpoint {
                addr: addr.addr.clone(),
                names: names
                    .iter()
                    .filter(|(_, zonal)| zonal.as_ref().is_none_or(|z| *z == sub.subnet_id))
                    .map(|(n, _)| n.clone())
                    .collect(),
                private_name: VpcEndpointRecord::private_name(s.region, e.short()),
                private_dns: e.private_dns,
            });
        }
    }
    Ok(out)
}

pub fn refresh(k: &Kumo, ctx: &RequestContext, only: Option<&[String]>) {
    let cm = &k.compute;
    let s = crate::scope(ctx);
    let touched = |vpc: &str| only.is_none_or(|o| o.iter().any(|v| v == vpc));
    let built = k.store.read(|v| {
        let vpcs: Vec<VpcRecord> = v.list(s, &kumo_store::Query::default())?;
        let mut out = Vec::new();
        for vpc in vpcs.into_iter().filter(|x| touched(&x.id)) {
            out.push((vpc.id.clone(), firewall(k, cm, v, s, &vpc.id)?));
        }
        Ok::<_, Fail>(out)
    });
    match built {
        Ok(all) => {
            for (vpc, fw) in all {
                if let Err(e) = cm.driver.set_firewall(&vpc, &fw) {
                    tracing::error!(vpc = %vpc, error = %crate::core::error::chain(&e), "cannot apply the security groups");
                }
            }
        }
        Err(f) => tracing::error!(error = %f.0, "cannot read the security groups"),
    }
    // The metadata follows too (public-ipv4 after an Elastic IP moved, security groups,
    // local-ipv4s), and the VPC routes the primary interface's addresses as they are now.
    let running: Vec<String> = cm
        .owners
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, (a, r))| *a == ctx.account_id && *r == ctx.region)
        .map(|(id, _)| id.clone())
        .filter(|id| cm.driver.is_running(id))
        .collect();
    for id in running {
        let md = k.store.read(|v| {
            let r: InstanceRecord = v.get(s, &id)?.ok_or_else(|| Fail(Ec2Error::internal()))?;
            if !touched(&r.vpc_id) {
                return Ok(None);
            }
            let c = crate::repo::instance::context(v, s, &[&r])?;
            Ok::<_, Fail>(Some(metadata(v, s, ctx, &r, &c)?))
        });
        if let Ok(Some((md, net, nics))) = md {
            if let Some(g) = cm.driver.guest(&id) {
                g.set_metadata(md);
                if let Err(e) = g.set_addresses(net.secondary_ips, net.prefixes) {
                    tracing::error!(instance = %id, error = %crate::core::error::chain(&e), "cannot route the instance's addresses");
                }
                if let Err(e) = g.set_interfaces(nics) {
                    tracing::error!(instance = %id, error = %crate::core::error::chain(&e), "cannot plug or unplug the instance's interfaces");
                }
            }
        }
    }
}
