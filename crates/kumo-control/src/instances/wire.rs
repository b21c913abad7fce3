//! An instance and its reservation as DescribeInstances and RunInstances answer them.

use super::metadata_options;
use crate::core::error::Fail;
use crate::network;
use crate::records::instance::*;
use crate::records::net::*;
use crate::repo::address::eip_on;
use crate::repo::instance::public_dns;
use crate::repo::instance::{context, Context};
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, RequestContext};
use kumo_model::lifecycle::State;
use kumo_store::Read;

/// The state reason of instances that the null driver "runs": the API holds them, no host does.
pub const NULL_DRIVER: &str = "Kumo.NullDriver";

pub fn wire(
    ctx: &RequestContext,
    t: &Tagged<InstanceRecord>,
    c: &Context,
    launching: bool,
) -> Instance {
    let r = &t.item;
    let state = if launching { State::Pending } else { r.state() };
    let enis: Vec<&EniRecord> = c.enis_of(r).collect();
    let primary = enis.first();
    let private_ip = primary
        .and_then(|e| e.addresses.iter().find(|a| a.primary))
        .map(|a| a.addr.clone());
    let public_ip = if state == State::Running || state == State::Pending {
        c.public_ip(r)
    } else {
        None
    };
    let groups = primary.map(|e| group_ids(&e.groups, c)).unwrap_or_default();
    let live = state != State::Terminated;
    Instance {
        instance_id: Some(r.id.clone()),
        image_id: Some(r.image_id.clone()),
        instance_type: Some(r.instance_type.clone()),
        architecture: Some(r.architecture.clone()),
        state: Some(InstanceState {
            code: Some(state.code()),
            name: Some(state.name().into()),
        }),
        state_transition_reason: Some(r.transition_reason.clone()),
        state_reason: state_reason(r, state, c),
        key_name: r.key_name.clone(),
        launch_time: Some(DateTime(r.launch_ms)),
        ami_launch_index: Some(r.launch_index),
        placement: Some(Placement {
            availability_zone: Some(r.zone.clone()),
            availability_zone_id: Some(r.zone_id.clone()),
            tenancy: Some(r.tenancy.clone()),
            group_name: Some(
                r.placement_group
                    .as_ref()
                    .map(|(_, name)| name.clone())
                    .unwrap_or_default(),
            ),
            group_id: r.placement_group.as_ref().map(|(id, _)| id.clone()),
            partition_number: r.partition_number,
            ..Placement::default()
        }),
        subnet_id: live.then(|| r.subnet_id.clone()),
        vpc_id: live.then(|| r.vpc_id.clone()),
        private_ip_address: if live { private_ip.clone() } else { None },
        private_dns_name: Some(if live {
            private_ip
                .as_deref()
                .map(|p| crate::repo::instance::instance_dns_name(&ctx.region, r, p))
                .unwrap_or_default()
        } else {
            String::new()
        }),
        public_ip_address: public_ip.clone(),
        public_dns_name: Some(
            public_ip
                .as_deref()
                .map(|p| public_dns(&ctx.region, p))
                .unwrap_or_default(),
        ),
        security_groups: Some(groups),
        source_dest_check: primary.map(|e| e.source_dest_check),
        monitoring: Some(Monitoring {
            state: Some(r.monitoring_state().into()),
        }),
        ebs_optimized: Some(r.ebs_optimized),
        ena_support: Some(r.ena_support),
        hypervisor: Some("xen".into()),
        virtualization_type: Some(super::virtualization_type(r).into()),
        root_device_name: Some(r.root_device_name.clone()),
        root_device_type: Some(r.root_device_type.clone()),
        boot_mode: Some(r.boot_mode.clone()),
        current_instance_boot_mode: Some(super::current_boot_mode(r).into()),
        platform: r.windows.then(|| "windows".into()),
        platform_details: Some(super::platform_details(r).0.into()),
        usage_operation: Some(super::platform_details(r).1.into()),
        usage_operation_update_time: Some(DateTime(r.launch_ms)),
        client_token: r.client_token.clone().or(Some(String::new())),
        product_codes: Some(Vec::new()),
        block_device_mappings: Some(crate::volumes::mappings(&c.volumes, &r.id)),
        iam_instance_profile: r.iam_instance_profile.as_ref().map(|p| IamInstanceProfile {
            arn: Some(p.clone()),
            id: Some(String::new()),
        }),
        capacity_reservation_id: r.capacity_reservation_id.clone(),
        capacity_reservation_specification: Some(if r.capacity_reservation_targeted {
            // A targeted instance shows its target, and no preference beside it.
            CapacityReservationSpecificationResponse {
                capacity_reservation_preference: None,
                capacity_reservation_target: Some(CapacityReservationTargetResponse {
                    capacity_reservation_id: r.capacity_reservation_id.clone(),
                    capacity_reservation_resource_group_arn: None,
                }),
            }
        } else {
            CapacityReservationSpecificationResponse {
                capacity_reservation_preference: Some(r.capacity_reservation_preference.clone()),
                capacity_reservation_target: None,
            }
        }),
        hibernation_options: Some(HibernationOptions {
            configured: Some(r.hibernation),
        }),
        metadata_options: Some(metadata_options(r, "applied")),
        private_dns_name_options: Some(PrivateDnsNameOptionsResponse {
            hostname_type: Some(r.dns_names.hostname_type().into()),
            enable_resource_name_dns_a_record: Some(r.dns_names.a_record),
            enable_resource_name_dns_aaaa_record: Some(r.dns_names.aaaa_record),
        }),
        enclave_options: Some(EnclaveOptions {
            enabled: Some(false),
        }),
        maintenance_options: Some(InstanceMaintenanceOptions {
            auto_recovery: Some("default".into()),
            ..InstanceMaintenanceOptions::default()
        }),
        cpu_options: crate::instance_types::find(&r.instance_type)
            .and_then(|i| i.v_cpu_info.as_ref())
            .map(|v| CpuOptions {
                core_count: r.cpu.map(|c| c.0).or(v.default_cores),
                threads_per_core: r.cpu.map(|c| c.1).or(v.default_threads_per_core),
                ..CpuOptions::default()
            }),
        network_interfaces: Some(enis.iter().map(|e| interface(ctx, r, e, c)).collect()),
        // The primary interface's first IPv6 address, while the instance has its interfaces.
        ipv6_address: primary.and_then(|e| e.ipv6.first().cloned()),
        tags: Some(tags::wire(&t.tags)),
        ..Instance::default()
    }
}

/// Groups instances into their reservations, in order of first appearance.
pub fn reservation<V: Read>(
    k: &Kumo,
    v: &V,
    ctx: &RequestContext,
    items: &[Tagged<InstanceRecord>],
    launching: bool,
) -> Result<Vec<Reservation>, Fail> {
    let recs: Vec<&InstanceRecord> = items.iter().map(|t| &t.item).collect();
    let c = context(v, scope(ctx), &recs)?;
    reservation_with(k, ctx, items, c, launching)
}

/// Reservations of instances whose interfaces, volumes and addresses are in `c`.
pub fn reservation_with(
    k: &Kumo,
    ctx: &RequestContext,
    items: &[Tagged<InstanceRecord>],
    mut c: Context,
    launching: bool,
) -> Result<Vec<Reservation>, Fail> {
    c.null_driver = (!k.compute.driver.runs_guests())
        .then(|| k.options.null_reason.clone().unwrap_or_default());
    c.degraded = k.compute.driver.degraded();
    let mut out: Vec<Reservation> = Vec::new();
    for t in items {
        let inst = wire(ctx, t, &c, launching);
        let groups = inst.security_groups.clone().unwrap_or_default();
        match out
            .iter_mut()
            .find(|r| r.reservation_id.as_deref() == Some(t.item.reservation_id.as_str()))
        {
            Some(r) => r.instances.get_or_insert_with(Vec::new).push(inst),
            None => out.push(Reservation {
                reservation_id: Some(t.item.reservation_id.clone()),
                owner_id: Some(ctx.account_id.clone()),
                groups: Some(if launching { groups } else { Vec::new() }),
                instances: Some(vec![inst]),
                requester_id: None,
            }),
        }
    }
    Ok(out)
}

/// Why the instance is in its state: its own reason, else (running) what Kumo runs it on
/// when that falls short of a real host.
pub(super) fn state_reason(r: &InstanceRecord, state: State, c: &Context) -> Option<StateReason> {
    match (&r.state_reason, state) {
        (Some((code, message)), _) => Some(StateReason {
            code: Some(code.clone()),
            message: Some(message.clone()),
        }),
        // Kumo runs no guest yet: say so where AWS would say nothing.
        (None, State::Running) if c.null_driver.is_some() => Some(StateReason {
            code: Some(NULL_DRIVER.into()),
            message: Some(format!(
                "{NULL_DRIVER}: the null compute driver runs this instance nowhere; no guest is booted{}",
                c.null_driver
                    .as_deref()
                    .filter(|w| !w.is_empty())
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            )),
        }),
        (None, State::Running) => c.degraded.as_ref().map(|(code, message)| StateReason {
            code: Some(code.clone()),
            message: Some(message.clone()),
        }),
        (None, _) => None,
    }
}

pub(super) fn group_ids(groups: &[String], c: &Context) -> Vec<GroupIdentifier> {
    groups
        .iter()
        .map(|g| GroupIdentifier {
            group_id: Some(g.clone()),
            group_name: c.names.get(g).cloned(),
        })
        .collect()
}

/// The public address of one of an interface's private addresses: its Elastic IP's, else the
/// launch's public IP for the primary interface's primary address.
pub(super) fn association(
    ctx: &RequestContext,
    r: &InstanceRecord,
    e: &EniRecord,
    eips: &[AddressRecord],
    ip: &str,
) -> Option<InstanceNetworkInterfaceAssociation> {
    let a = e.attachment.as_ref();
    eip_on(eips, e, ip)
        .map(|x| InstanceNetworkInterfaceAssociation {
            public_ip: Some(x.public_ip.clone()),
            public_dns_name: Some(public_dns(&ctx.region, &x.public_ip)),
            ip_owner_id: Some(ctx.account_id.clone()),
            ..InstanceNetworkInterfaceAssociation::default()
        })
        .or_else(|| {
            (a.is_some_and(|a| a.device_index == 0)
                && e.addresses.first().is_some_and(|p| p.addr == ip))
            .then(|| r.public_ip.clone())
            .flatten()
            .map(|p| InstanceNetworkInterfaceAssociation {
                public_dns_name: Some(public_dns(&ctx.region, &p)),
                public_ip: Some(p),
                ip_owner_id: Some("amazon".into()),
                ..InstanceNetworkInterfaceAssociation::default()
            })
        })
}

/// One of the instance's interfaces.
pub(super) fn interface(
    ctx: &RequestContext,
    r: &InstanceRecord,
    e: &EniRecord,
    c: &Context,
) -> InstanceNetworkInterface {
    let assoc = |ip: &str| association(ctx, r, e, &c.eips, ip);
    InstanceNetworkInterface {
        network_interface_id: Some(e.id.clone()),
        subnet_id: Some(e.subnet_id.clone()),
        vpc_id: Some(e.vpc_id.clone()),
        description: Some(e.description.clone()),
        owner_id: Some(ctx.account_id.clone()),
        status: Some("in-use".into()),
        mac_address: Some(e.mac.clone()),
        private_ip_address: e.addresses.first().map(|p| p.addr.clone()),
        private_dns_name: e
            .addresses
            .first()
            .map(|p| network::private_dns_name(&ctx.region, &p.addr)),
        source_dest_check: Some(e.source_dest_check),
        interface_type: Some(e.interface_type.clone()),
        groups: Some(group_ids(&e.groups, c)),
        association: e.addresses.first().and_then(|p| assoc(&p.addr)),
        attachment: e
            .attachment
            .as_ref()
            .map(|a| InstanceNetworkInterfaceAttachment {
                attachment_id: Some(a.id.clone()),
                device_index: Some(a.device_index),
                network_card_index: Some(0),
                status: Some(a.status.clone()),
                attach_time: Some(DateTime(a.attach_time_ms)),
                delete_on_termination: Some(a.delete_on_termination),
                ..InstanceNetworkInterfaceAttachment::default()
            }),
        private_ip_addresses: Some(
            e.addresses
                .iter()
                .map(|p| InstancePrivateIpAddress {
                    primary: Some(p.primary),
                    private_ip_address: Some(p.addr.clone()),
                    private_dns_name: Some(network::private_dns_name(&ctx.region, &p.addr)),
                    association: assoc(&p.addr),
                })
                .collect(),
        ),
        ipv4_prefixes: (!e.prefixes.is_empty()).then(|| {
            e.prefixes
                .iter()
                .map(|p| InstanceIpv4Prefix {
                    ipv4_prefix: Some(p.clone()),
                })
                .collect()
        }),
        ipv6_prefixes: (!e.ipv6_prefixes.is_empty()).then(|| {
            e.ipv6_prefixes
                .iter()
                .map(|p| InstanceIpv6Prefix {
                    ipv6_prefix: Some(p.clone()),
                })
                .collect()
        }),
        ipv6_addresses: Some(
            e.ipv6
                .iter()
                .enumerate()
                .map(|(i, a)| InstanceIpv6Address {
                    ipv6_address: Some(a.clone()),
                    is_primary_ipv6: Some(e.primary_ipv6 && i == 0),
                })
                .collect(),
        ),
        ..InstanceNetworkInterface::default()
    }
}
