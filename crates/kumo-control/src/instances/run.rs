//! RunInstances: its checks in AWS's order, and the launch's transaction.

use super::parts::{check_key, check_zone, interface, new_record, Launch, Parts, Site};
use super::wire::{reservation, reservation_with};
use super::{check_hop_limit, check_type_for_image, find_image, runnable_here};
use crate::addresses;
use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::idempotency;
use crate::core::ids::new_id;
use crate::core::tagged::Tagged;
use crate::network;
use crate::records::image::ImageTraits;
use crate::records::instance::*;
use crate::records::net::*;
use crate::records::volume::VolumeRecord;
use crate::repo::instance::limits;
use crate::tags;
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::ipam::SubnetIps;
use kumo_store::{Query, Read, Scope, Tx};
use std::collections::HashMap;

pub(super) fn network_specs(
    input: &RunInstancesRequest,
) -> Result<Vec<InstanceNetworkInterfaceSpecification>, Ec2Error> {
    let given = input.network_interfaces.clone().unwrap_or_default();
    if given.is_empty() {
        return Ok(vec![InstanceNetworkInterfaceSpecification {
            device_index: Some(0),
            subnet_id: input.subnet_id.clone(),
            private_ip_address: input.private_ip_address.clone(),
            groups: input.security_group_ids.clone(),
            ipv6_address_count: input.ipv6_address_count,
            ipv6_addresses: input.ipv6_addresses.clone(),
            ..InstanceNetworkInterfaceSpecification::default()
        }]);
    }
    if input.subnet_id.is_some() {
        return Err(Ec2Error::new("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request"));
    }
    if input.private_ip_address.is_some() {
        return Err(Ec2Error::new("InvalidParameterCombination", "Network interfaces and an instance-level private IP address may not be specified on the same request"));
    }
    if input.ipv6_address_count.is_some()
        || input.ipv6_addresses.as_ref().is_some_and(|a| !a.is_empty())
    {
        return Err(Ec2Error::new("InvalidParameterCombination", "Network interfaces and instance-level IPv6 addresses may not be specified on the same request"));
    }
    if input.security_group_ids.is_some() || input.security_groups.is_some() {
        return Err(Ec2Error::new("InvalidParameterCombination", "Network interfaces and an instance-level security groups may not be specified on the same request"));
    }
    let mut specs = given;
    specs.sort_by_key(|s| s.device_index.unwrap_or(0));
    if specs.first().and_then(|s| s.device_index).unwrap_or(0) != 0 {
        return Err(Ec2Error::invalid_value(
            "The network interface at device index 0 must be specified.",
        ));
    }
    for w in specs.windows(2) {
        if w[0].device_index == w[1].device_index {
            return Err(Ec2Error::invalid_value(format!("Each network interface requires a unique device index. Device index {} is used twice.", w[0].device_index.unwrap_or(0))));
        }
    }
    if specs
        .iter()
        .skip(1)
        .any(|s| s.associate_public_ip_address == Some(true))
    {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The associatePublicIPAddress parameter can only be specified for the network interface with DeviceIndex 0.",
        ));
    }
    if specs.len() > 1 && specs[0].associate_public_ip_address == Some(true) {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The associatePublicIPAddress parameter cannot be specified when launching with multiple network interfaces.",
        ));
    }
    if specs[0].network_interface_id.is_some() && specs[0].associate_public_ip_address.is_some() {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The associatePublicIPAddress parameter cannot be specified for a network interface with an ID.",
        ));
    }
    Ok(specs)
}

/// The subnet a launch goes to: the one named, an existing interface's, or the default subnet
/// of the requested (or first) zone.
pub(super) fn launch_subnet(tx: &Tx, s: Scope, l: &Launch) -> Result<SubnetRecord, Fail> {
    let primary = &l.specs[0];
    if let Some(id) = &primary.network_interface_id {
        let eni = crate::repo::eni::get_eni(tx, s, id)?;
        return crate::subnets::get_subnet(tx, s, &eni.subnet_id);
    }
    if let Some(id) = &primary.subnet_id {
        return crate::subnets::get_subnet(tx, s, id);
    }
    let Some(vpc) = network::default_vpc(tx, s)? else {
        return Err(Fail(Ec2Error::new("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")));
    };
    let subnets: Vec<SubnetRecord> = tx.list(
        s,
        &Query {
            vpcs: Some(&[vpc.as_str()]),
            ..Query::default()
        },
    )?;
    let zone = l
        .input
        .placement
        .as_ref()
        .and_then(|p| p.availability_zone.clone());
    let mut defaults: Vec<SubnetRecord> =
        subnets.into_iter().filter(|sn| sn.default_for_az).collect();
    defaults.sort_by(|a, b| a.zone.cmp(&b.zone));
    match zone {
        Some(z) => defaults.into_iter().find(|sn| sn.zone == z).ok_or_else(|| {
            Fail(Ec2Error::invalid_value(format!(
                "Invalid availability zone: [{z}]"
            )))
        }),
        None => defaults.into_iter().next().ok_or_else(|| {
            Fail(Ec2Error::new(
                "MissingInput",
                "No subnets found for the default VPC. Please specify a subnet.",
            ))
        }),
    }
}

/// Launch settings Kumo cannot honour yet. Ignoring them would launch something other than
/// what was asked, so they are refused by name.
pub(super) fn unsupported_launch_settings(input: &RunInstancesRequest) -> Result<(), Ec2Error> {
    let refused: &[(&str, bool)] = &[
        (
            "InstanceMarketOptions (spot)",
            input.instance_market_options.is_some(),
        ),
        ("KernelId", input.kernel_id.is_some()),
        (
            "Dedicated Hosts (Placement Tenancy host, HostId, Affinity, HostResourceGroupArn)",
            input.placement.as_ref().is_some_and(|p| {
                p.tenancy.as_deref() == Some("host")
                    || p.host_id.as_deref().is_some_and(|h| !h.is_empty())
                    || p.affinity.as_deref().is_some_and(|a| !a.is_empty())
                    || p.host_resource_group_arn
                        .as_deref()
                        .is_some_and(|a| !a.is_empty())
            }),
        ),
        ("RamdiskId", input.ramdisk_id.is_some()),
        (
            "ElasticGpuSpecification",
            input.elastic_gpu_specification.is_some(),
        ),
        (
            "ElasticInferenceAccelerators",
            input.elastic_inference_accelerators.is_some(),
        ),
        (
            "LicenseSpecifications",
            input.license_specifications.is_some(),
        ),
        (
            "CpuOptions.AmdSevSnp",
            input
                .cpu_options
                .as_ref()
                .is_some_and(|c| c.amd_sev_snp.as_deref() == Some("enabled")),
        ),
        (
            "CpuOptions.NestedVirtualization",
            input
                .cpu_options
                .as_ref()
                .is_some_and(|c| c.nested_virtualization.as_deref() == Some("enabled")),
        ),
        (
            "EnclaveOptions",
            input
                .enclave_options
                .as_ref()
                .is_some_and(|e| e.enabled == Some(true)),
        ),
    ];
    crate::core::error::refuse_settings("RunInstances", refused)?;
    for ni in input.network_interfaces.iter().flatten() {
        crate::core::error::refuse_settings(
            "RunInstances",
            &[
                (
                    "NetworkInterfaces ConnectionTrackingSpecification",
                    ni.connection_tracking_specification.is_some(),
                ),
                (
                    "NetworkInterfaces InterfaceType (EFA)",
                    ni.interface_type
                        .as_deref()
                        .is_some_and(|t| t != "interface"),
                ),
                (
                    "NetworkInterfaces EnaSrdSpecification",
                    ni.ena_srd_specification.is_some(),
                ),
                (
                    "NetworkInterfaces EnaQueueCount",
                    ni.ena_queue_count.is_some(),
                ),
                (
                    "NetworkInterfaces NetworkCardIndex",
                    ni.network_card_index.is_some_and(|n| n != 0),
                ),
                (
                    "NetworkInterfaces AssociateCarrierIpAddress",
                    ni.associate_carrier_ip_address == Some(true),
                ),
            ],
        )?;
    }
    Ok(())
}

/// RunInstances, before any lookup: the settings Kumo does not take, an image, a security
/// group id sent empty (AWS's answer to `SecurityGroupId.1=`); then the counts, the key name
/// sent empty, the type, the CPU options against the type, the user data, the interfaces'
/// combinations, the tags and the token. The image and what it allows, the subnet, the
/// groups, the key and the volumes' snapshots follow in the operation; the zone's capacity
/// last.
impl Checks for RunInstancesRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        // What Kumo does not take is refused first: a launch template without an image
        // would otherwise hear that its image is missing.
        unsupported_launch_settings(self)?;
        // From a launch template, the image may be the template's: the merged request is
        // checked again in the operation, once the template is read.
        if self.image_id.is_none() && self.launch_template.is_none() {
            return Err(Ec2Error::missing_parameter("ImageId"));
        }
        let in_interfaces = self
            .network_interfaces
            .iter()
            .flatten()
            .flat_map(|n| n.groups.iter().flatten());
        if self
            .security_group_ids
            .iter()
            .flatten()
            .chain(in_interfaces)
            .any(String::is_empty)
        {
            return Err(Ec2Error::invalid_value(
                "Value () for parameter groupId is invalid. The value cannot be empty",
            ));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        check_counts(self)?;
        if self.key_name.as_deref() == Some("") {
            return Err(Ec2Error::invalid_value(
                "Invalid value '' for keyPairNames. It should not be blank",
            ));
        }
        let instance_type = self.instance_type.as_deref().unwrap_or("m1.small");
        let info = crate::instance_types::find(instance_type).ok_or_else(|| {
            Ec2Error::invalid_value(format!("Invalid value '{instance_type}' for InstanceType."))
        })?;
        cpu_options(self, info, instance_type)?;
        user_data(self)?;
        network_specs(self)?;
        crate::capacity_reservations::check_spec(self.capacity_reservation_specification.as_ref())?;
        tags::from_launch_specifications(self.tag_specifications.clone())?;
        idempotency::check_token(self.client_token.as_deref())
    }
}

/// What RunInstances was asked, checked in AWS's order and resolved: the image, the type,
/// the user data, the interfaces, the tags, the idempotency token and the volumes.
fn resolve<'a>(
    k: &Kumo,
    ctx: &RequestContext,
    input: &'a RunInstancesRequest,
) -> Result<(Launch<'a>, crate::tags::LaunchTags, String), Ec2Error> {
    check_counts(input)?;
    let image_id = input
        .image_id
        .clone()
        .ok_or_else(|| Ec2Error::missing_parameter("ImageId"))?;
    let image = find_image(k, ctx, &image_id)?;
    let instance_type = input
        .instance_type
        .clone()
        .unwrap_or_else(|| "m1.small".into());
    let info = check_type_for_image(&instance_type, &image)?;
    runnable_here(k, &instance_type, &image.architecture)?;
    let cpu = cpu_options(input, info, &instance_type)?;
    let user_data = user_data(input)?;
    let specs = network_specs(input)?;
    check_interfaces(input, &image, info, &instance_type, &specs)?;
    for n in &specs {
        super::pluggable(k, n.device_index.unwrap_or(0))?;
    }
    let tag_list = tags::from_launch_specifications(input.tag_specifications.clone())?;
    idempotency::check_token(input.client_token.as_deref())?;
    let digest = idempotency::digest(input);
    let s = scope(ctx);
    let volumes = k
        .store
        .read(|v| {
            crate::launch_volumes::plan(
                v,
                s,
                &image,
                input.block_device_mappings.as_deref().unwrap_or(&[]),
            )
        })
        .map_err(|f| f.0)?;
    let l = Launch {
        input,
        image,
        image_id,
        info,
        instance_type,
        user_data,
        specs,
        volumes,
        cpu,
    };
    Ok((l, tag_list, digest))
}

/// Placement members sent empty, as Terraform's aws_instance sends `Placement.AvailabilityZone=`
/// when no zone is configured: AWS takes an empty placement name as not given.
fn placement_blanks_unset(mut input: RunInstancesRequest) -> RunInstancesRequest {
    if let Some(p) = input.placement.as_mut() {
        for f in [
            &mut p.availability_zone,
            &mut p.availability_zone_id,
            &mut p.group_name,
            &mut p.group_id,
            &mut p.host_id,
            &mut p.host_resource_group_arn,
            &mut p.affinity,
            &mut p.spread_domain,
        ] {
            if f.as_deref() == Some("") {
                *f = None;
            }
        }
    }
    input
}

pub fn run(
    k: &Kumo,
    ctx: &RequestContext,
    input: RunInstancesRequest,
) -> Result<Reservation, Ec2Error> {
    // From a launch template: its data beneath the call's members, checked as a request.
    let (input, template_tags) = crate::launch_templates::merge(k, ctx, input)?;
    let input = placement_blanks_unset(input);
    if input.launch_template.is_some() {
        crate::core::checks::all(&input)?;
    }
    let (l, mut tag_list, digest) = resolve(k, ctx, &input)?;
    // The template and version an instance was launched from, as AWS tags it.
    tag_list.instance.extend(template_tags);
    let s = scope(ctx);
    let now = k.now_ms();
    let mut made: Vec<String> = Vec::new();
    // The files of the launch's blank volumes are made on a thread of their own while the
    // transaction runs (making a file costs the kernel an inode; a 100-instance launch makes
    // 100), and the transaction waits for them before it commits. Made for MaxCount
    // instances; those a smaller launch does not use are removed after.
    let blanks: Vec<(String, u64)> = if ctx.dry_run {
        Vec::new()
    } else {
        (0..input.max_count)
            .flat_map(|_| {
                l.volumes
                    .iter()
                    .filter(|p| p.snapshot.is_none())
                    .map(|p| (new_id("vol"), p.size as u64))
            })
            .collect()
    };
    let mut used: Vec<String> = Vec::new();
    let launched = std::thread::scope(|sc| {
        let maker = (!blanks.is_empty()).then(|| {
            sc.spawn(|| {
                blanks
                    .iter()
                    .try_for_each(|(id, size)| k.blocks.create_blank(id, *size))
            })
        });
        k.store
            .write_then(
                !ctx.dry_run,
                |tx| {
                    let files = |m: Option<
                        std::thread::ScopedJoinHandle<'_, Result<(), kumo_blockstore::BlockError>>,
                    >| match m.map(|h| h.join()) {
                        None | Some(Ok(Ok(()))) => Ok(()),
                        Some(Ok(Err(e))) => {
                            tracing::error!(error = %crate::core::error::chain(&e), "cannot create launch volume files");
                            Err(Fail(Ec2Error::internal()))
                        }
                        Some(Err(_)) => Err(Fail(Ec2Error::internal())),
                    };
                    if let Some(rid) = idempotency::earlier(
                        tx,
                        s,
                        "RunInstances",
                        input.client_token.as_deref(),
                        &digest,
                    )? {
                        files(maker)?;
                        let all: Vec<InstanceRecord> = tx.list(s, &Query::default())?;
                        let mine: Vec<InstanceRecord> = all
                            .into_iter()
                            .filter(|r| r.reservation_id == rid)
                            .collect();
                        return Ok(Launched {
                            instances: mine,
                            enis: Vec::new(),
                            volumes: Vec::new(),
                            allocators: Vec::new(),
                            complete: false,
                        });
                    }
                    let mut pre = blanks.iter().map(|(id, _)| id.clone());
                    let out = launch(
                        k, tx, s, ctx, &l, &tag_list, now, &digest, &mut made, &mut pre,
                    );
                    // The files are there before anything names them.
                    files(maker)?;
                    let out = out?;
                    used = out
                        .instances
                        .iter()
                        .flat_map(|r| r.volumes.iter().cloned())
                        .collect();
                    Ok(out)
                },
                |out| {
                    for (subnet, a) in &out.allocators {
                        k.net.commit(s, subnet, a);
                    }
                },
            )
            .map_err(|f: Fail| f.0)
    });
    // Blank files nobody uses: all of them if the launch failed, else the extras.
    let spare: Vec<String> = blanks
        .iter()
        .map(|(id, _)| id.clone())
        .filter(|id| launched.is_err() || !used.contains(id))
        .collect();
    crate::host::delete_files(k, &spare);
    let launched = match launched {
        Ok(x) => x,
        Err(e) => {
            // Nothing of a failed launch stays: its volume files go too.
            crate::host::delete_files(k, &made);
            return Err(e);
        }
    };
    if !ctx.dry_run {
        // The guests boot after the answer, as on AWS: the instances are `pending` until
        // theirs has started.
        let ids: Vec<String> = launched.instances.iter().map(|r| r.id.clone()).collect();
        crate::flows::boot::queue_boot(k, ctx, ids);
    }
    k.store
        .read(|v| {
            if !launched.complete {
                let tagged = tags::attach(v, s, launched.instances)?;
                return reservation(k, v, ctx, &tagged, true);
            }
            // The answer is made from what the launch committed: no need to read it back.
            let tags = tags::as_stored(&tag_list.instance);
            let tagged: Vec<Tagged<InstanceRecord>> = launched
                .instances
                .into_iter()
                .map(|item| Tagged {
                    item,
                    tags: tags.clone(),
                })
                .collect();
            let c = crate::repo::instance::context_of(v, s, launched.enis, launched.volumes)?;
            reservation_with(k, ctx, &tagged, c, true)
        })
        .map_err(|f| f.0)
        .map(|mut r| r.pop().unwrap_or_default())
}

/// MinCount and MaxCount, the settings Kumo does not take, and the metadata hop limit.
pub(super) fn check_counts(input: &RunInstancesRequest) -> Result<(), Ec2Error> {
    if input.max_count < 1 {
        return Err(Ec2Error::invalid_value(
            "Maximum instance count must be greater than zero",
        ));
    }
    if input.min_count < 1 {
        return Err(Ec2Error::invalid_value(
            "Minimum instance count must be greater than zero",
        ));
    }
    if input.max_count < input.min_count {
        return Err(Ec2Error::invalid_value(
            "Minimum instance count cannot be greater than maximum instance count",
        ));
    }
    unsupported_launch_settings(input)?;
    if let Some(md) = &input.metadata_options {
        check_hop_limit(md.http_put_response_hop_limit)?;
    }
    Ok(())
}

/// The launch's `CpuOptions`, checked against the type's valid cores and threads per core
/// (DescribeInstanceTypes lists them): both members or neither, as AWS requires.
pub(super) fn cpu_options(
    input: &RunInstancesRequest,
    info: &InstanceTypeInfo,
    instance_type: &str,
) -> Result<Option<(i32, i32)>, Ec2Error> {
    let Some(c) = &input.cpu_options else {
        return Ok(None);
    };
    let (cores, threads) =
        match (c.core_count, c.threads_per_core) {
            (None, None) => return Ok(None),
            (Some(cores), Some(threads)) => (cores, threads),
            _ => return Err(Ec2Error::new(
                "MissingParameter",
                "When specifying CpuOptions you must specify both CoreCount and ThreadsPerCore.",
            )),
        };
    let v = info.v_cpu_info.as_ref();
    let valid_cores = v.and_then(|v| v.valid_cores.as_deref()).unwrap_or(&[]);
    let valid_threads = v
        .and_then(|v| v.valid_threads_per_core.as_deref())
        .unwrap_or(&[]);
    if valid_cores.is_empty() || valid_threads.is_empty() {
        return Err(Ec2Error::invalid_value(format!(
            "The instance type {instance_type} does not support specifying CPU options."
        )));
    }
    let list = |xs: &[i32]| xs.iter().map(i32::to_string).collect::<Vec<_>>().join(", ");
    if !valid_cores.contains(&cores) {
        return Err(Ec2Error::invalid_value(format!(
            "Invalid value '{cores}' for CoreCount. The valid core counts for {instance_type} are {}.",
            list(valid_cores)
        )));
    }
    if !valid_threads.contains(&threads) {
        return Err(Ec2Error::invalid_value(format!(
            "Invalid value '{threads}' for ThreadsPerCore. The valid threads per core for {instance_type} are {}.",
            list(valid_threads)
        )));
    }
    Ok(Some((cores, threads)))
}

/// The user data, checked: base64, at most 16 KB decoded.
pub(super) fn user_data(input: &RunInstancesRequest) -> Result<Option<String>, Ec2Error> {
    Ok(match &input.user_data {
        // Sent empty (Terraform's launch templates send `UserData=`): none, which
        // DescribeInstanceAttribute shows without a value.
        None => None,
        Some(u) if u.trim().is_empty() => None,
        Some(u) => {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .map_err(|_| Ec2Error::invalid_value("Invalid BASE64 encoding of user data."))?;
            if raw.len() > 16 * 1024 {
                return Err(Ec2Error::invalid_value(
                    "User data is limited to 16384 bytes",
                ));
            }
            Some(u.trim().to_string())
        }
    })
}

/// What the image and the type allow of the launch's interfaces and shutdown behaviour.
pub(super) fn check_interfaces(
    input: &RunInstancesRequest,
    image: &ImageTraits,
    info: &InstanceTypeInfo,
    instance_type: &str,
    specs: &[InstanceNetworkInterfaceSpecification],
) -> Result<(), Ec2Error> {
    if image.root_device_type == "instance-store"
        && input.instance_initiated_shutdown_behavior.is_some()
    {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The attribute instanceInitiatedShutdownBehavior can only be used for elastic images.",
        ));
    }
    if input.max_count > 1
        && specs.iter().any(|sp| {
            sp.network_interface_id.is_some()
                || sp.private_ip_address.is_some()
                || sp.private_ip_addresses.is_some()
        })
    {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "Network interfaces or private IP addresses can be specified only when launching one instance.",
        ));
    }
    let (max_enis, _) = limits(info);
    if specs.len() > max_enis {
        return Err(Ec2Error::new(
            "AttachmentLimitExceeded",
            format!(
                "Interface count {} exceeds the limit for {instance_type}",
                specs.len()
            ),
        ));
    }
    Ok(())
}

/// What a launch committed: its instances with the interfaces and volumes made or attached
/// for them, and the address allocators it used.
pub(super) struct Launched {
    pub(super) instances: Vec<InstanceRecord>,
    pub(super) enis: Vec<EniRecord>,
    pub(super) volumes: Vec<VolumeRecord>,
    pub(super) allocators: Vec<(String, SubnetIps)>,
    /// Whether the answer can be made from the records above: false for a replay of an
    /// earlier launch (its token seen before), and when the launch attached an interface
    /// that existed before it (which may hold an Elastic IP).
    pub(super) complete: bool,
}

/// Creates the instances of one launch inside a transaction.
#[allow(clippy::too_many_arguments)]
pub(super) fn launch(
    k: &Kumo,
    tx: &Tx,
    s: Scope,
    ctx: &RequestContext,
    l: &Launch,
    tag_list: &tags::LaunchTags,
    now: i64,
    digest: &str,
    made: &mut Vec<String>,
    pre: &mut dyn Iterator<Item = String>,
) -> Result<Launched, Fail> {
    let input = l.input;
    let subnet = launch_subnet(tx, s, l)?;
    check_zone(s, l, &subnet)?;
    check_key(tx, s, input)?;
    let vpc = crate::vpcs::get_vpc(tx, s, &subnet.vpc_id)?;
    // Each instance's slot: a capacity reservation's, or the zone's unreserved capacity.
    let tenancy = input
        .placement
        .as_ref()
        .and_then(|p| p.tenancy.clone())
        .unwrap_or_else(|| vpc.instance_tenancy.clone());
    crate::instance_types::check_tenancy(&l.instance_type, &tenancy)?;
    let slots = crate::capacity_reservations::place(
        k,
        tx,
        s,
        &crate::capacity_reservations::Ask {
            spec: input.capacity_reservation_specification.as_ref(),
            instance_type: &l.instance_type,
            platform: if l.image.platform == "windows" {
                "Windows"
            } else {
                "Linux/UNIX"
            },
            tenancy: &tenancy,
            zone: &subnet.zone,
            min: input.min_count.max(0) as usize,
            max: input.max_count.max(0) as usize,
        },
    )?;
    let count = slots.len();
    let placed = crate::placement_groups::for_launch(
        k,
        tx,
        s,
        input.placement.as_ref(),
        l.info,
        &subnet.zone,
        count,
    )?;
    let mut site = Site {
        subnet: &subnet,
        vpc: &vpc,
        max_ips: limits(l.info).1,
        max_ipv6: crate::ipv6_addresses::ipv6_per_interface(l.info),
        allocators: HashMap::new(),
    };
    let reservation_id = new_id("r");
    // The same for every instance of the launch: read once.
    let credit = crate::credits::for_launch(
        tx,
        s,
        &l.instance_type,
        input
            .credit_specification
            .as_ref()
            .map(|c| c.cpu_credits.as_str()),
    )?;
    let by_default = crate::repo::volume::settings(tx, s)?.encryption_by_default;
    let mut out = Vec::with_capacity(count);
    let (mut enis, mut volumes) = (Vec::new(), Vec::new());
    for (index, slot) in slots.into_iter().enumerate() {
        let id = new_id("i");
        let mut public = false;
        let mut eni_ids = Vec::new();
        for spec in &l.specs {
            let eni = interface(
                k,
                tx,
                s,
                l,
                &mut site,
                spec,
                &id,
                now,
                tag_list,
                &mut public,
            )?;
            eni_ids.push(eni.id.clone());
            enis.push(eni);
        }
        let public_ip = if public {
            Some(addresses::take_public_ip(tx, s, &id)?)
        } else {
            None
        };
        let vols = crate::launch_volumes::create(
            k,
            tx,
            s,
            &id,
            (&subnet.zone, &subnet.zone_id),
            &l.volumes,
            now,
            by_default,
            !ctx.dry_run,
            made,
            pre,
        )?;
        let parts = Parts {
            id,
            reservation_id: reservation_id.clone(),
            index,
            eni_ids,
            volumes: vols.iter().map(|v| v.id.clone()).collect(),
            public_ip,
            public,
            credit: credit.clone(),
        };
        let mut rec = new_record(k, ctx, l, &site, parts, now);
        if let Some(p) = &placed {
            rec.placement_group = Some(p.group.clone());
            rec.partition_number = p.partitions[index];
        }
        rec.capacity_reservation_targeted = slot.is_some()
            && input
                .capacity_reservation_specification
                .as_ref()
                .is_some_and(|c| c.capacity_reservation_target.is_some());
        rec.capacity_reservation_id = slot;
        tx.insert(s, &rec)?;
        tags::put_all(tx, s, &rec.id, "instance", &tag_list.instance)?;
        for vol in &rec.volumes {
            tags::put_all(tx, s, vol, "volume", &tag_list.volume)?;
        }
        out.push(rec);
        volumes.extend(vols);
    }
    // The groups and reservations keep the ids of the instances they took.
    if let Some(p) = &placed {
        let ids: Vec<String> = out.iter().map(|r: &InstanceRecord| r.id.clone()).collect();
        crate::placement_groups::joined(k, tx, s, &p.group.0, &ids)?;
    }
    let mut by_reservation: Vec<(String, Vec<String>)> = Vec::new();
    for r in &out {
        if let Some(id) = &r.capacity_reservation_id {
            match by_reservation.iter_mut().find(|(x, _)| x == id) {
                Some((_, ids)) => ids.push(r.id.clone()),
                None => by_reservation.push((id.clone(), vec![r.id.clone()])),
            }
        }
    }
    for (id, ids) in &by_reservation {
        crate::capacity_reservations::took(k, tx, s, id, ids)?;
    }
    idempotency::remember(
        tx,
        s,
        "RunInstances",
        input.client_token.as_deref(),
        digest,
        &reservation_id,
    )?;
    Ok(Launched {
        instances: out,
        enis,
        volumes,
        allocators: site.allocators.into_iter().collect(),
        complete: l.specs.iter().all(|x| x.network_interface_id.is_none()),
    })
}
