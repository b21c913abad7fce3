//! The parts of each launched instance: its zone, key pair, capacity, interfaces and record.

use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::enis::Want;
use crate::enis::{self, NewEni};
use crate::records::image::ImageTraits;
use crate::records::instance::*;
use crate::records::net::*;
use crate::repo::instance::{address_limit, slots};
use crate::tags;
use crate::Kumo;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::parse_addr;
use kumo_model::ipam::SubnetIps;
use kumo_model::lifecycle::State;
use kumo_store::{Read, Scope, Tx};
use std::collections::HashMap;

/// Checks that the launch's zone is its subnet's, and that the type is offered there.
pub(super) fn check_zone(s: Scope, l: &Launch, subnet: &SubnetRecord) -> Result<(), Fail> {
    let input = l.input;
    if let Some(z) = input
        .placement
        .as_ref()
        .and_then(|p| p.availability_zone.as_deref())
    {
        if z != subnet.zone {
            return Err(Fail(Ec2Error::invalid_value(format!(
                "Value ({z}) for parameter availabilityZone is invalid. Subnet '{}' is in the availability zone {}",
                subnet.id, subnet.zone
            ))));
        }
    }
    if let Some(offers) = kumo_model::catalog::offerings(s.region) {
        let here = offers
            .iter()
            .find(|(z, _)| *z == subnet.zone)
            .map(|(_, t)| t.contains(&l.instance_type.as_str()));
        if here == Some(false) {
            let elsewhere: Vec<&str> = offers
                .iter()
                .filter(|(_, t)| t.contains(&l.instance_type.as_str()))
                .map(|(z, _)| *z)
                .collect();
            return Err(Fail(Ec2Error::new(
                "Unsupported",
                format!(
                    "Your requested instance type ({}) is not supported in your requested Availability Zone ({}). Please retry your request by not specifying an Availability Zone or choosing {}.",
                    l.instance_type,
                    subnet.zone,
                    elsewhere.join(", ")
                ),
            )));
        }
    }
    Ok(())
}

/// The launch's key pair exists.
pub(super) fn check_key(tx: &Tx, s: Scope, input: &RunInstancesRequest) -> Result<(), Fail> {
    if let Some(key) = &input.key_name {
        if tx
            .get_by_name::<crate::records::key_pair::KeyPairRecord>(s, key)?
            .is_none()
        {
            return Err(Fail(Ec2Error::new(
                "InvalidKeyPair.NotFound",
                format!("The key pair '{key}' does not exist"),
            )));
        }
    }
    Ok(())
}

/// Where a launch's instances go: its subnet and VPC, the address allocators it uses, and
/// the per-interface address limit of its type.
pub(super) struct Site<'a> {
    pub(super) subnet: &'a SubnetRecord,
    pub(super) vpc: &'a VpcRecord,
    pub(super) max_ips: usize,
    /// The type's IPv6 addresses per interface.
    pub(super) max_ipv6: usize,
    pub(super) allocators: HashMap<String, SubnetIps>,
}

/// One network interface of instance `id`, as committed: made (or an existing one attached)
/// per `spec`; `public` is set for the primary interface when it gets a public address.
#[allow(clippy::too_many_arguments)]
pub(super) fn interface(
    k: &Kumo,
    tx: &Tx,
    s: Scope,
    l: &Launch,
    site: &mut Site,
    spec: &InstanceNetworkInterfaceSpecification,
    id: &str,
    now: i64,
    tag_list: &tags::LaunchTags,
    public: &mut bool,
) -> Result<EniRecord, Fail> {
    let (subnet, vpc, max_ips, max_ipv6) = (site.subnet, site.vpc, site.max_ips, site.max_ipv6);
    let allocators = &mut site.allocators;
    let device = spec.device_index.unwrap_or(0);
    let mut eni = if let Some(existing) = &spec.network_interface_id {
        let e = crate::repo::eni::get_eni(tx, s, existing)?;
        if e.attachment.is_some() {
            return Err(Fail(Ec2Error::new(
                "InvalidNetworkInterface.InUse",
                format!("Interface: [{}] in use.", e.id),
            )));
        }
        crate::repo::eni::check_not_managed(&e)?;
        if e.zone != subnet.zone {
            return Err(Fail(Ec2Error::invalid_value(format!(
                "The network interface '{}' is not in availability zone {}.",
                e.id, subnet.zone
            ))));
        }
        e
    } else {
        let sn = match &spec.subnet_id {
            Some(sid) if device != 0 => crate::subnets::get_subnet(tx, s, sid)?,
            _ => subnet.clone(),
        };
        if sn.zone != subnet.zone {
            return Err(Fail(Ec2Error::invalid_value(format!(
                "The subnet '{}' is not in availability zone {}.",
                sn.id, subnet.zone
            ))));
        }
        let groups = if device == 0 {
            launch_groups(tx, s, l, vpc, spec)?
        } else {
            enis::resolve_groups(tx, s, vpc, spec.groups.as_ref())?
        };
        let want = want_of(spec).map_err(Fail)?;
        if 1 + want.secondary.len()
            + want.secondary_count as usize
            + want.prefixes.len()
            + want.prefix_count as usize
            > max_ips
        {
            return Err(Fail(address_limit()));
        }
        let attachment = EniAttachment {
            id: new_id("eni-attach"),
            instance_id: id.to_string(),
            device_index: device,
            status: "attached".into(),
            delete_on_termination: spec.delete_on_termination.unwrap_or(true),
            attach_time_ms: now,
        };
        let a_spec = NewEni {
            description: spec.description.clone().unwrap_or_default(),
            interface_type: spec
                .interface_type
                .clone()
                .unwrap_or_else(|| "interface".into()),
            groups,
            requester_id: None,
            attachment: Some(attachment),
        };
        let ips = match allocators.entry(sn.id.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(k.net.allocator(tx, s, &sn)?),
        };
        let e = enis::new_eni_with(tx, s, &sn, &want, a_spec, ips)?;
        tags::put_all(
            tx,
            s,
            &e.id,
            "network-interface",
            &tag_list.network_interface,
        )?;
        if device == 0 {
            *public = spec
                .associate_public_ip_address
                .unwrap_or(sn.map_public_ip_on_launch);
        }
        e
    };
    if slots(&eni) > max_ips || crate::ipv6_addresses::slots6(&eni) > max_ipv6 {
        return Err(Fail(address_limit()));
    }
    if eni.attachment.is_none() {
        // An existing interface given to the launch.
        eni.attachment = Some(EniAttachment {
            id: new_id("eni-attach"),
            instance_id: id.to_string(),
            device_index: device,
            status: "attached".into(),
            delete_on_termination: spec.delete_on_termination.unwrap_or(false),
            attach_time_ms: now,
        });
        tx.update(s, &eni)?;
    }
    Ok(eni)
}

/// What a launched instance's record is made of besides the launch itself.
pub(super) struct Parts {
    pub(super) id: String,
    pub(super) reservation_id: String,
    pub(super) index: usize,
    pub(super) eni_ids: Vec<String>,
    pub(super) volumes: Vec<String>,
    pub(super) public_ip: Option<String>,
    pub(super) public: bool,
    pub(super) credit: Option<(String, f64)>,
}

/// The launch's host name options: each member given, else the subnet's on-launch setting.
/// They apply only to an interface the launch makes; with an existing one attached, the
/// subnet's settings hold (AWS: "Applies only if creating a network interface").
fn dns_names(l: &Launch, subnet: &SubnetRecord) -> DnsNames {
    let given = l
        .input
        .private_dns_name_options
        .as_ref()
        .filter(|_| l.specs[0].network_interface_id.is_none());
    let get = |f: fn(&PrivateDnsNameOptionsRequest) -> Option<bool>| given.and_then(f);
    DnsNames {
        resource_name: given
            .and_then(|o| o.hostname_type.as_deref())
            .unwrap_or(&subnet.hostname_type)
            == "resource-name",
        a_record: get(|o| o.enable_resource_name_dns_a_record)
            .unwrap_or(subnet.resource_name_dns_a_record),
        aaaa_record: get(|o| o.enable_resource_name_dns_aaaa_record)
            .unwrap_or(subnet.resource_name_dns_aaaa_record),
    }
}

/// A launched instance's record, `pending`.
pub(super) fn new_record(
    k: &Kumo,
    ctx: &RequestContext,
    l: &Launch,
    site: &Site,
    p: Parts,
    now: i64,
) -> InstanceRecord {
    let (input, subnet, vpc) = (l.input, site.subnet, site.vpc);
    let md = input.metadata_options.clone().unwrap_or_default();
    let Parts {
        id,
        reservation_id,
        index,
        eni_ids,
        volumes,
        public_ip,
        public,
        credit,
    } = p;
    InstanceRecord {
        volumes,
        id,
        reservation_id,
        image_id: l.image_id.clone(),
        instance_type: l.instance_type.clone(),
        architecture: l.image.architecture.clone(),
        key_name: input.key_name.clone(),
        launch_ms: now,
        launch_index: index as i32,
        state: State::Pending,
        since_ms: now,
        transition_reason: String::new(),
        state_reason: Some(("pending".into(), "pending".into())),
        zone: subnet.zone.clone(),
        zone_id: subnet.zone_id.clone(),
        subnet_id: subnet.id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        enis: eni_ids,
        public_ip,
        auto_public_ip: public,
        user_data: l.user_data.clone(),
        disable_api_termination: input.disable_api_termination.unwrap_or(false),
        disable_api_stop: input.disable_api_stop.unwrap_or(false),
        shutdown_behavior: input
            .instance_initiated_shutdown_behavior
            .clone()
            .unwrap_or_else(|| "stop".into()),
        monitoring: input.monitoring.as_ref().is_some_and(|m| m.enabled),
        ebs_optimized: input.ebs_optimized.unwrap_or(false),
        tenancy: input
            .placement
            .as_ref()
            .and_then(|p| p.tenancy.clone())
            .unwrap_or_else(|| vpc.instance_tenancy.clone()),
        root_device_name: l.image.root_device_name.clone(),
        root_device_type: l.image.root_device_type.clone(),
        ena_support: l.image.ena_support,
        boot_mode: l.image.boot_mode.clone(),
        credit_specification: credit.as_ref().map(|(m, _)| m.clone()),
        http_tokens: md.http_tokens.unwrap_or_else(|| "optional".into()),
        http_endpoint: md.http_endpoint.unwrap_or_else(|| "enabled".into()),
        http_hop_limit: md.http_put_response_hop_limit.unwrap_or(1),
        http_protocol_ipv6: md.http_protocol_ipv6.unwrap_or_else(|| "disabled".into()),
        instance_metadata_tags: md
            .instance_metadata_tags
            .unwrap_or_else(|| "disabled".into()),
        hibernation: input
            .hibernation_options
            .as_ref()
            .and_then(|h| h.configured)
            .unwrap_or(false),
        iam_instance_profile: input
            .iam_instance_profile
            .as_ref()
            .and_then(|p| p.arn.clone().or_else(|| p.name.clone())),
        capacity_reservation_preference: input
            .capacity_reservation_specification
            .as_ref()
            .and_then(|c| c.capacity_reservation_preference.clone())
            .unwrap_or_else(|| "open".into()),
        client_token: input.client_token.clone(),
        credit_balance: credit.as_ref().map(|(_, c)| *c).unwrap_or(0.0),
        credit_surplus: 0.0,
        credits_at_ms: now,
        cpu_usage_pct: 0.0,
        awaiting_boot: k.compute.driver.runs_guests() && !ctx.dry_run,
        events: Vec::new(),
        cpu: l.cpu,
        dns_names: dns_names(l, subnet),
        paravirtual: l.image.virtualization_type == "paravirtual",
        windows: l.image.platform == "windows",
        placement_group: None,
        partition_number: None,
        capacity_reservation_id: None,
        capacity_reservation_targeted: false,
        monitoring_since_ms: 0,
    }
}

/// What RunInstances was asked, resolved.
pub(super) struct Launch<'a> {
    pub(super) input: &'a RunInstancesRequest,
    pub(super) image: ImageTraits,
    pub(super) image_id: String,
    pub(super) info: &'static InstanceTypeInfo,
    pub(super) instance_type: String,
    pub(super) user_data: Option<String>,
    pub(super) specs: Vec<InstanceNetworkInterfaceSpecification>,
    pub(super) volumes: Vec<crate::launch_volumes::Planned>,
    /// (cores, threads per core) when `CpuOptions` chose them.
    pub(super) cpu: Option<(i32, i32)>,
}

pub(super) fn want_of(spec: &InstanceNetworkInterfaceSpecification) -> Result<Want, Ec2Error> {
    let mut want = Want {
        secondary_count: spec.secondary_private_ip_address_count.unwrap_or(0).max(0) as u32,
        prefix_count: spec.ipv4_prefix_count.unwrap_or(0).max(0) as u32,
        ..Want::default()
    };
    let bad_ip = |a: &str| {
        Ec2Error::invalid_value(format!(
            "Invalid value '{a}' for IP address. The address is not a valid IPv4 address."
        ))
    };
    if let Some(p) = &spec.private_ip_address {
        want.primary = Some(parse_addr(p).ok_or_else(|| bad_ip(p))?);
    }
    for a in spec.private_ip_addresses.iter().flatten() {
        let Some(text) = &a.private_ip_address else {
            continue;
        };
        let x = parse_addr(text).ok_or_else(|| bad_ip(text))?;
        if a.primary == Some(true) {
            want.primary = Some(x);
        } else if want.primary != Some(x) {
            want.secondary.push(x);
        }
    }
    for p in spec.ipv4_prefixes.iter().flatten() {
        let text = p.ipv4_prefix.clone().unwrap_or_default();
        want.prefixes.push(
            kumo_model::cidr::Cidr::parse(&text)
                .map_err(|_| Ec2Error::invalid_value(format!("Invalid IPv4 prefix {text}.")))?,
        );
    }
    let addrs = crate::enis::v6_list(spec.ipv6_addresses.as_deref());
    let prefixes = crate::enis::v6_prefix_list(spec.ipv6_prefixes.as_deref());
    if (spec.ipv6_address_count.is_some_and(|n| n > 0) || !addrs.is_empty())
        && (spec.ipv6_prefix_count.is_some_and(|n| n > 0) || !prefixes.is_empty())
    {
        // AWS's answer, double space and all (quoted in aws/karpenter-provider-aws#2187).
        return Err(Ec2Error::invalid_value(
            "You can and can only specify one of ipv6-addresses or ipv6-addresses-count  ipv6-prefix and ipv6-prefix-count.",
        ));
    }
    want.ipv6 = crate::ipv6_addresses::Want6::of(spec.ipv6_address_count, &addrs)?
        .with_prefixes(spec.ipv6_prefix_count, &prefixes)?;
    want.primary_ipv6 = spec.primary_ipv6 == Some(true);
    Ok(want)
}

/// Security groups for the primary interface: ids in the subnet's VPC, or names (which only
/// work in a default VPC).
pub(super) fn launch_groups(
    tx: &Tx,
    s: Scope,
    l: &Launch,
    vpc: &VpcRecord,
    spec: &InstanceNetworkInterfaceSpecification,
) -> Result<Vec<String>, Fail> {
    if let Some(names) = &l.input.security_groups {
        if !vpc.is_default {
            return Err(Fail(Ec2Error::new(
                "InvalidParameterCombination",
                "The parameter groupName cannot be used with the parameter subnet",
            )));
        }
        let mut ids = Vec::new();
        for n in names {
            let g = tx
                .get_by_name::<SecurityGroupRecord>(s, &format!("{}/{}", vpc.id, n.to_lowercase()))?
                .ok_or_else(|| {
                    Fail(Ec2Error::new(
                        "InvalidGroup.NotFound",
                        format!(
                            "The security group '{n}' does not exist in VPC '{}'",
                            vpc.id
                        ),
                    ))
                })?;
            ids.push(g.id);
        }
        return Ok(ids);
    }
    let groups = spec.groups.clone().unwrap_or_default();
    if groups.is_empty() {
        return Ok(vec![vpc.default_security_group_id.clone()]);
    }
    for g in &groups {
        match tx.get::<SecurityGroupRecord>(s, g)? {
            Some(sg) if sg.vpc_id == vpc.id => {}
            Some(_) => {
                let subnet = spec.subnet_id.clone().unwrap_or_default();
                return Err(Fail(Ec2Error::new(
                    "InvalidParameter",
                    format!("Security group {g} and subnet {subnet} belong to different networks."),
                )));
            }
            None => {
                return Err(Fail(Ec2Error::new(
                    "InvalidGroup.NotFound",
                    format!(
                        "The security group '{g}' does not exist in VPC '{}'",
                        vpc.id
                    ),
                )))
            }
        }
    }
    Ok(groups)
}
