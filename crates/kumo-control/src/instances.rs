//! RunInstances and DescribeInstances.

use crate::addresses;
use crate::describe::{self, Push};
use crate::enis::{self, NewEni, Want};
use crate::error::{rule, Fail};
use crate::idempotency;
use crate::network;
use crate::records::image::ImageTraits;
use crate::records::instance::*;
use crate::records::net::*;
use crate::regions::filters;
use crate::repo::instance::{
    address_limit, check_id, image_malformed, limits, load, not_found, public_dns, slots, visible,
};
use crate::repo::instance::{context, Context};
use crate::tags::{self, new_id, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::cidr::parse_addr;
use kumo_model::filter::{Filterable, Filters};
use kumo_model::images::{self, PublicImage};
use kumo_model::ipam::SubnetIps;
use kumo_model::lifecycle::State;
use kumo_store::{Query, Read, Scope, Tx};
use std::collections::HashMap;

impl ImageTraits {
    pub fn public(i: &PublicImage) -> Self {
        let root = images::root_volume(i).map(|(size, vt)| crate::records::image::MappingRecord {
            device_name: i.root_device_name.into(),
            virtual_name: None,
            no_device: false,
            ebs: Some(crate::records::image::EbsRecord {
                snapshot_id: None,
                volume_size: size,
                volume_type: vt.into(),
                iops: None,
                throughput: None,
                delete_on_termination: true,
                encrypted: false,
            }),
        });
        ImageTraits {
            mappings: root.into_iter().collect(),
            architecture: i.architecture.into(),
            root_device_name: i.root_device_name.into(),
            root_device_type: i.root_device_type.into(),
            ena_support: i.ena_support,
            boot_mode: i.boot_mode.into(),
            owner: None,
        }
    }

    /// An instance keeps what it was launched with, even after its image is deregistered.
    pub fn of_instance(r: &InstanceRecord) -> Self {
        ImageTraits {
            mappings: Vec::new(),
            architecture: r.architecture.clone(),
            root_device_name: r.root_device_name.clone(),
            root_device_type: r.root_device_type.clone(),
            ena_support: r.ena_support,
            boot_mode: r.boot_mode.clone(),
            owner: None,
        }
    }
}

/// The image an id names that the caller may launch: a public one of the catalog, one the
/// caller registered, or one another account shared with the caller or made public.
pub fn find_image(k: &Kumo, ctx: &RequestContext, id: &str) -> Result<ImageTraits, Ec2Error> {
    if kumo_model::ids::resource_type(id) != Some("image") {
        return Err(image_malformed(id));
    }
    if let Some(p) = images::by_id(&ctx.region, id) {
        return Ok(ImageTraits::public(p));
    }
    let (owner, image) = crate::repo::image::usable(k, ctx, id)?;
    let mut traits = image.traits();
    traits.owner = (owner != ctx.account_id).then_some(owner);
    Ok(traits)
}

/// Checks that an instance type exists and suits an image.
pub fn check_type_for_image(
    t: &str,
    img: &ImageTraits,
) -> Result<&'static InstanceTypeInfo, Ec2Error> {
    let info = crate::instance_types::find(t)
        .ok_or_else(|| Ec2Error::invalid_value(format!("Invalid value '{t}' for InstanceType.")))?;
    let archs = info
        .processor_info
        .as_ref()
        .and_then(|p| p.supported_architectures.clone())
        .unwrap_or_default();
    if !archs.contains(&img.architecture) {
        return Err(Ec2Error::invalid_value(format!(
            "The architecture '{}' of the specified instance type does not match the architecture '{}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.",
            archs.join(", "),
            img.architecture
        )));
    }
    let ena_required = info
        .network_info
        .as_ref()
        .and_then(|n| n.ena_support.as_deref())
        == Some("required");
    if ena_required && !img.ena_support {
        return Err(Ec2Error::invalid_value(format!(
            "Enhanced networking with the Elastic Network Adapter (ENA) is required for the '{t}' instance type. Ensure that you are using an AMI that is enabled for ENA."
        )));
    }
    if img.root_device_type == "instance-store" && info.instance_storage_supported != Some(true) {
        return Err(Ec2Error::invalid_value(format!(
            "The instance type '{t}' does not support instance store. An instance-store-backed AMI needs an instance type with instance store volumes."
        )));
    }
    Ok(info)
}

/// What RunInstances was asked, resolved.
struct Launch<'a> {
    input: &'a RunInstancesRequest,
    image: ImageTraits,
    image_id: String,
    info: &'static InstanceTypeInfo,
    instance_type: String,
    user_data: Option<String>,
    specs: Vec<InstanceNetworkInterfaceSpecification>,
    volumes: Vec<crate::launch_volumes::Planned>,
}

fn network_specs(
    input: &RunInstancesRequest,
) -> Result<Vec<InstanceNetworkInterfaceSpecification>, Ec2Error> {
    let given = input.network_interfaces.clone().unwrap_or_default();
    if given.is_empty() {
        return Ok(vec![InstanceNetworkInterfaceSpecification {
            device_index: Some(0),
            subnet_id: input.subnet_id.clone(),
            private_ip_address: input.private_ip_address.clone(),
            groups: input.security_group_ids.clone(),
            ..InstanceNetworkInterfaceSpecification::default()
        }]);
    }
    if input.subnet_id.is_some() {
        return Err(Ec2Error::new("InvalidParameterCombination", "Network interfaces and an instance-level subnet ID may not be specified on the same request"));
    }
    if input.private_ip_address.is_some() {
        return Err(Ec2Error::new("InvalidParameterCombination", "Network interfaces and an instance-level private IP address may not be specified on the same request"));
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

fn want_of(spec: &InstanceNetworkInterfaceSpecification) -> Result<Want, Ec2Error> {
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
    Ok(want)
}

/// The subnet a launch goes to: the one named, an existing interface's, or the default subnet
/// of the requested (or first) zone.
fn launch_subnet(tx: &Tx, s: Scope, l: &Launch) -> Result<SubnetRecord, Fail> {
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

/// Security groups for the primary interface: ids in the subnet's VPC, or names (which only
/// work in a default VPC).
fn launch_groups(
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

/// Launch settings Kumo cannot honour yet. Ignoring them would launch something other than
/// what was asked, so they are refused by name.
fn unsupported_launch_settings(input: &RunInstancesRequest) -> Result<(), Ec2Error> {
    let refused: &[(&str, bool)] = &[
        ("LaunchTemplate", input.launch_template.is_some()),
        (
            "InstanceMarketOptions (spot)",
            input.instance_market_options.is_some(),
        ),
        ("KernelId", input.kernel_id.is_some()),
        ("RamdiskId", input.ramdisk_id.is_some()),
        (
            "Ipv6AddressCount and Ipv6Addresses (IPv6)",
            input.ipv6_address_count.is_some_and(|n| n > 0)
                || input.ipv6_addresses.as_ref().is_some_and(|a| !a.is_empty()),
        ),
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
        ("CpuOptions", input.cpu_options.is_some()),
        (
            "EnclaveOptions",
            input
                .enclave_options
                .as_ref()
                .is_some_and(|e| e.enabled == Some(true)),
        ),
    ];
    match refused.iter().find(|(_, given)| *given) {
        Some((name, _)) => Err(Ec2Error::new(
            "Unsupported",
            format!("Kumo does not support the RunInstances setting {name} yet."),
        )),
        None => Ok(()),
    }
}

pub fn run(
    k: &Kumo,
    ctx: &RequestContext,
    input: RunInstancesRequest,
) -> Result<Reservation, Ec2Error> {
    check_counts(&input)?;
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
    let user_data = user_data(&input)?;
    let specs = network_specs(&input)?;
    check_interfaces(&input, &image, info, &instance_type, &specs)?;
    let tag_list = tags::from_launch_specifications(input.tag_specifications.clone())?;
    idempotency::check_token(input.client_token.as_deref())?;
    let digest = idempotency::digest(&input);
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
        input: &input,
        image,
        image_id,
        info,
        instance_type,
        user_data,
        specs,
        volumes,
    };
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
                    .map_err(|e| e.to_string())
            })
        });
        k.store
            .write_then(
                !ctx.dry_run,
                |tx| {
                    let files = |m: Option<
                        std::thread::ScopedJoinHandle<'_, Result<(), String>>,
                    >| match m.map(|h| h.join()) {
                        None | Some(Ok(Ok(()))) => Ok(()),
                        Some(Ok(Err(e))) => {
                            tracing::error!(error = %e, "cannot create launch volume files");
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
                        return Ok((mine, Vec::new()));
                    }
                    let mut pre = blanks.iter().map(|(id, _)| id.clone());
                    let out = launch(
                        k, tx, s, ctx, &l, &tag_list, now, &digest, &mut made, &mut pre,
                    );
                    // The files are there before anything names them.
                    files(maker)?;
                    let out = out?;
                    used = out
                        .0
                        .iter()
                        .flat_map(|r| r.volumes.iter().cloned())
                        .collect();
                    Ok(out)
                },
                |(_, allocators)| {
                    for (subnet, a) in allocators {
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
    let (recs, _) = match launched {
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
        let ids: Vec<String> = recs.iter().map(|r| r.id.clone()).collect();
        crate::compute::queue_boot(k, ctx, ids);
    }
    k.store
        .read(|v| {
            let tagged = tags::attach(v, s, recs)?;
            reservation(k, v, ctx, &tagged, true)
        })
        .map_err(|f| f.0)
        .map(|mut r| r.pop().unwrap_or_default())
}

/// MinCount and MaxCount, the settings Kumo does not take, and the metadata hop limit.
fn check_counts(input: &RunInstancesRequest) -> Result<(), Ec2Error> {
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

/// The user data, checked: base64, at most 16 KB decoded.
fn user_data(input: &RunInstancesRequest) -> Result<Option<String>, Ec2Error> {
    Ok(match &input.user_data {
        None => None,
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
fn check_interfaces(
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

/// A launch's instances, and the subnet allocators to commit with them.
type Launched = (Vec<InstanceRecord>, Vec<(String, SubnetIps)>);

/// Creates the instances of one launch inside a transaction.
#[allow(clippy::too_many_arguments)]
fn launch(
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
    let count = capacity(k, tx, s, l, &subnet)?;
    let vpc = crate::vpcs::get_vpc(tx, s, &subnet.vpc_id)?;
    let mut site = Site {
        subnet: &subnet,
        vpc: &vpc,
        max_ips: limits(l.info).1,
        allocators: HashMap::new(),
    };
    let reservation_id = new_id("r");
    let mut out = Vec::with_capacity(count);
    for index in 0..count {
        let id = new_id("i");
        let mut public = false;
        let mut eni_ids = Vec::new();
        for spec in &l.specs {
            eni_ids.push(interface(
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
            )?);
        }
        let public_ip = if public {
            Some(addresses::take_public_ip(tx, s, &id)?)
        } else {
            None
        };
        let credit = crate::credits::for_launch(
            tx,
            s,
            &l.instance_type,
            input
                .credit_specification
                .as_ref()
                .map(|c| c.cpu_credits.as_str()),
        )?;
        let volumes = crate::launch_volumes::create(
            k,
            tx,
            s,
            &id,
            (&subnet.zone, &subnet.zone_id),
            &l.volumes,
            now,
            !ctx.dry_run,
            made,
            pre,
        )?;
        let parts = Parts {
            id,
            reservation_id: reservation_id.clone(),
            index,
            eni_ids,
            volumes,
            public_ip,
            public,
            credit,
        };
        let rec = new_record(k, ctx, l, &site, parts, now);
        tx.insert(s, &rec)?;
        tags::put_all(tx, s, &rec.id, "instance", &tag_list.instance)?;
        for vol in &rec.volumes {
            tags::put_all(tx, s, vol, "volume", &tag_list.volume)?;
        }
        out.push(rec);
    }
    idempotency::remember(
        tx,
        s,
        "RunInstances",
        input.client_token.as_deref(),
        digest,
        &reservation_id,
    )?;
    Ok((out, site.allocators.into_iter().collect()))
}

/// Checks that the launch's zone is its subnet's, and that the type is offered there.
fn check_zone(s: Scope, l: &Launch, subnet: &SubnetRecord) -> Result<(), Fail> {
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
fn check_key(tx: &Tx, s: Scope, input: &RunInstancesRequest) -> Result<(), Fail> {
    if let Some(key) = &input.key_name {
        if tx
            .get_by_name::<crate::key_pairs::KeyPairRecord>(s, key)?
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

/// How many instances the zone takes of the launch: MaxCount, or as many as it has room for
/// if that is at least MinCount.
fn capacity(k: &Kumo, tx: &Tx, s: Scope, l: &Launch, subnet: &SubnetRecord) -> Result<usize, Fail> {
    let input = l.input;
    // Capacity: instances that hold a slot in the zone (anything not terminated).
    let used = tx.count_in_zone(
        s,
        "instance",
        &subnet.zone,
        &["terminated", "shutting-down"],
    )? as usize;
    let free = k.options.zone_capacity.saturating_sub(used);
    let count = (input.max_count as usize).min(free);
    if count < input.min_count as usize {
        return Err(Fail(Ec2Error::new(
            "InsufficientInstanceCapacity",
            format!(
                "We currently do not have sufficient {} capacity in the Availability Zone you requested ({}). Our system will be working on provisioning additional capacity. You can currently get {} capacity by not specifying an Availability Zone in your request or choosing another Availability Zone.",
                l.instance_type, subnet.zone, l.instance_type
            ),
        )));
    }
    Ok(count)
}

/// Where a launch's instances go: its subnet and VPC, the address allocators it uses, and
/// the per-interface address limit of its type.
struct Site<'a> {
    subnet: &'a SubnetRecord,
    vpc: &'a VpcRecord,
    max_ips: usize,
    allocators: HashMap<String, SubnetIps>,
}

/// One network interface of instance `id`: made (or an existing one attached) per `spec`;
/// `public` is set for the primary interface when it gets a public address.
#[allow(clippy::too_many_arguments)]
fn interface(
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
) -> Result<String, Fail> {
    let (subnet, vpc, max_ips) = (site.subnet, site.vpc, site.max_ips);
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
    if slots(&eni) > max_ips {
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
    Ok(eni.id)
}

/// What a launched instance's record is made of besides the launch itself.
struct Parts {
    id: String,
    reservation_id: String,
    index: usize,
    eni_ids: Vec<String>,
    volumes: Vec<String>,
    public_ip: Option<String>,
    public: bool,
    credit: Option<(String, f64)>,
}

/// A launched instance's record, `pending`.
fn new_record(
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
    }
}

/// An instance's metadata options as the API shows them, in `state` (`applied`, or `pending`
/// in ModifyInstanceMetadataOptions' answer).
pub fn metadata_options(r: &InstanceRecord, state: &str) -> InstanceMetadataOptionsResponse {
    InstanceMetadataOptionsResponse {
        state: Some(state.into()),
        http_tokens: Some(r.http_tokens.clone()),
        http_put_response_hop_limit: Some(r.http_hop_limit),
        http_endpoint: Some(r.http_endpoint.clone()),
        http_protocol_ipv6: Some("disabled".into()),
        instance_metadata_tags: Some(r.instance_metadata_tags.clone()),
    }
}

/// The metadata's PUT response hop limit: 1 to 64, as the API documents it.
pub fn check_hop_limit(limit: Option<i32>) -> Result<(), Ec2Error> {
    match limit {
        Some(n) if !(1..=64).contains(&n) => Err(Ec2Error::invalid_value(format!(
            "Value ({n}) for parameter HttpPutResponseHopLimit is invalid. Valid values are integers from 1 to 64."
        ))),
        _ => Ok(()),
    }
}

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
    let groups: Vec<GroupIdentifier> = primary
        .map(|e| {
            e.groups
                .iter()
                .map(|g| GroupIdentifier {
                    group_id: Some(g.clone()),
                    group_name: c.names.get(g).cloned(),
                })
                .collect()
        })
        .unwrap_or_default();
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
        state_reason: match (&r.state_reason, state) {
            (Some((code, message)), _) => Some(StateReason { code: Some(code.clone()), message: Some(message.clone()) }),
            // Kumo runs no guest yet: say so where AWS would say nothing.
            (None, State::Running) if c.null_driver.is_some() => Some(StateReason {
                code: Some(NULL_DRIVER.into()),
                message: Some(format!(
                    "{NULL_DRIVER}: the null compute driver runs this instance nowhere; no guest is booted{}",
                    c.null_driver.as_deref().filter(|w| !w.is_empty()).map(|w| format!(" ({w})")).unwrap_or_default()
                )),
            }),
            (None, State::Running) => c.degraded.as_ref().map(|(code, message)| StateReason {
                code: Some(code.clone()),
                message: Some(message.clone()),
            }),
            (None, _) => None,
        },
        key_name: r.key_name.clone(),
        launch_time: Some(DateTime(r.launch_ms)),
        ami_launch_index: Some(r.launch_index),
        placement: Some(Placement {
            availability_zone: Some(r.zone.clone()),
            availability_zone_id: Some(r.zone_id.clone()),
            tenancy: Some(r.tenancy.clone()),
            group_name: Some(String::new()),
            ..Placement::default()
        }),
        subnet_id: live.then(|| r.subnet_id.clone()),
        vpc_id: live.then(|| r.vpc_id.clone()),
        private_ip_address: if live { private_ip.clone() } else { None },
        private_dns_name: Some(if live {
            private_ip
                .as_deref()
                .map(|p| network::private_dns_name(&ctx.region, p))
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
            state: Some(if r.monitoring { "enabled" } else { "disabled" }.into()),
        }),
        ebs_optimized: Some(r.ebs_optimized),
        ena_support: Some(r.ena_support),
        hypervisor: Some("xen".into()),
        virtualization_type: Some("hvm".into()),
        root_device_name: Some(r.root_device_name.clone()),
        root_device_type: Some(r.root_device_type.clone()),
        boot_mode: Some(r.boot_mode.clone()),
        platform_details: Some("Linux/UNIX".into()),
        usage_operation: Some("RunInstances".into()),
        client_token: r.client_token.clone().or(Some(String::new())),
        product_codes: Some(Vec::new()),
        block_device_mappings: Some(crate::volumes::mappings(&c.volumes, &r.id)),
        iam_instance_profile: r.iam_instance_profile.as_ref().map(|p| IamInstanceProfile {
            arn: Some(p.clone()),
            id: Some(String::new()),
        }),
        capacity_reservation_specification: Some(CapacityReservationSpecificationResponse {
            capacity_reservation_preference: Some(r.capacity_reservation_preference.clone()),
            capacity_reservation_target: None,
        }),
        hibernation_options: Some(HibernationOptions {
            configured: Some(r.hibernation),
        }),
        metadata_options: Some(metadata_options(r, "applied")),
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
                core_count: v.default_cores,
                threads_per_core: v.default_threads_per_core,
                ..CpuOptions::default()
            }),
        network_interfaces: Some(
            enis.iter()
                .map(|e| {
                    let a = e.attachment.as_ref();
                    let assoc = |ip: &str| {
                        c.eips
                            .iter()
                            .find(|x| {
                                x.association
                                    .as_ref()
                                    .is_some_and(|y| y.eni_id == e.id && y.private_ip == ip)
                            })
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
                    };
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
                        groups: Some(
                            e.groups
                                .iter()
                                .map(|g| GroupIdentifier {
                                    group_id: Some(g.clone()),
                                    group_name: c.names.get(g).cloned(),
                                })
                                .collect(),
                        ),
                        association: e.addresses.first().and_then(|p| assoc(&p.addr)),
                        attachment: a.map(|a| InstanceNetworkInterfaceAttachment {
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
                                    private_dns_name: Some(network::private_dns_name(
                                        &ctx.region,
                                        &p.addr,
                                    )),
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
                        ipv6_addresses: Some(Vec::new()),
                        ..InstanceNetworkInterface::default()
                    }
                })
                .collect(),
        ),
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
    let mut c = context(v, scope(ctx), &recs)?;
    c.null_driver = (!k.compute.driver.runs_guests()).then(|| k.options.null_reason.clone().unwrap_or_default());
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

struct InstanceView<'a, V: Read> {
    t: &'a Tagged<InstanceRecord>,
    v: &'a V,
    s: Scope<'a>,
    ctx: &'a RequestContext,
    names: &'a HashMap<String, String>,
    eips: &'a [AddressRecord],
}

impl<V: Read> InstanceView<'_, V> {
    fn enis(&self) -> Vec<EniRecord> {
        let ids: Vec<&str> = self.t.item.enis.iter().map(String::as_str).collect();
        let found: Vec<EniRecord> = self
            .v
            .list(
                self.s,
                &Query {
                    ids: Some(&ids),
                    ..Query::default()
                },
            )
            .unwrap_or_default();
        found
            .into_iter()
            .filter(|e| {
                e.attachment
                    .as_ref()
                    .is_some_and(|a| a.instance_id == self.t.item.id)
            })
            .collect()
    }
}

fn tf(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl<V: Read> Filterable for InstanceView<'_, V> {
    fn field(&self, name: &str, out: &mut dyn FnMut(&str)) {
        let r = &self.t.item;
        let st = r.state();
        match name {
            "instance-id" => out(&r.id),
            "instance-type" => out(&r.instance_type),
            "image-id" => out(&r.image_id),
            "key-name" => r.key_name.iter().for_each(|k| out(k)),
            "instance-state-name" => out(st.name()),
            "instance-state-code" => out(&st.code().to_string()),
            "availability-zone" => out(&r.zone),
            "vpc-id" if st != State::Terminated => out(&r.vpc_id),
            "subnet-id" if st != State::Terminated => out(&r.subnet_id),
            "reservation-id" => out(&r.reservation_id),
            "architecture" => out(&r.architecture),
            "root-device-type" => out(&r.root_device_type),
            "root-device-name" => out(&r.root_device_name),
            "tenancy" => out(&r.tenancy),
            "monitoring-state" => out(if r.monitoring { "enabled" } else { "disabled" }),
            "owner-id" => out(&self.ctx.account_id),
            "client-token" => r.client_token.iter().for_each(|c| out(c)),
            "hypervisor" => out("xen"),
            "virtualization-type" => out("hvm"),
            "platform-details" => out("Linux/UNIX"),
            "ami-launch-index" => out(&r.launch_index.to_string()),
            "launch-time" => out(&DateTime(r.launch_ms).to_iso8601()),
            "ebs-optimized" => out(tf(r.ebs_optimized)),
            "ena-support" => out(tf(r.ena_support)),
            "boot-mode" => out(&r.boot_mode),
            "metadata-options.http-tokens" => out(&r.http_tokens),
            "metadata-options.http-endpoint" => out(&r.http_endpoint),
            "metadata-options.http-put-response-hop-limit" => out(&r.http_hop_limit.to_string()),
            "metadata-options.instance-metadata-tags" => out(&r.instance_metadata_tags),
            "hibernation-options.configured" => out(tf(r.hibernation)),
            "iam-instance-profile.arn" => r.iam_instance_profile.iter().for_each(|p| out(p)),
            "state-reason-code" => r.state_reason.iter().for_each(|(c, _)| out(c)),
            "state-reason-message" => r.state_reason.iter().for_each(|(_, m)| out(m)),
            "reason" => out(&r.transition_reason),
            "capacity-reservation-specification.capacity-reservation-preference" => {
                out(&r.capacity_reservation_preference)
            }
            "private-ip-address"
            | "private-dns-name"
            | "ip-address"
            | "dns-name"
            | "instance.group-id"
            | "instance.group-name"
            | "group-id"
            | "group-name"
            | "source-dest-check" => {
                if st == State::Terminated {
                    return;
                }
                let enis = self.enis();
                let Some(p) = enis
                    .iter()
                    .find(|e| e.attachment.as_ref().is_some_and(|a| a.device_index == 0))
                else {
                    return;
                };
                let primary = p
                    .addresses
                    .iter()
                    .find(|a| a.primary)
                    .map(|a| a.addr.clone())
                    .unwrap_or_default();
                match name {
                    "private-ip-address" => out(&primary),
                    "private-dns-name" => {
                        out(&network::private_dns_name(&self.ctx.region, &primary))
                    }
                    "ip-address" | "dns-name" => {
                        let eip = self
                            .eips
                            .iter()
                            .find(|a| {
                                a.association
                                    .as_ref()
                                    .is_some_and(|x| x.eni_id == p.id && x.private_ip == primary)
                            })
                            .map(|a| a.public_ip.clone());
                        if let Some(ip) = eip
                            .or_else(|| r.public_ip.clone())
                            .filter(|_| st == State::Running || st == State::Pending)
                        {
                            out(&if name == "ip-address" {
                                ip.clone()
                            } else {
                                public_dns(&self.ctx.region, &ip)
                            });
                        }
                    }
                    "source-dest-check" => out(tf(p.source_dest_check)),
                    "instance.group-name" | "group-name" => p
                        .groups
                        .iter()
                        .filter_map(|g| self.names.get(g))
                        .for_each(|n| out(n)),
                    _ => p.groups.iter().for_each(|g| out(g)),
                }
            }
            n if n.starts_with("network-interface.") => {
                let field = &n["network-interface.".len()..];
                for e in self.enis() {
                    let a = e.attachment.as_ref();
                    match field {
                        "network-interface-id" => out(&e.id),
                        "subnet-id" => out(&e.subnet_id),
                        "vpc-id" => out(&e.vpc_id),
                        "availability-zone" => out(&e.zone),
                        "description" => out(&e.description),
                        "mac-address" => out(&e.mac),
                        "owner-id" => out(&self.ctx.account_id),
                        "status" => out("in-use"),
                        "source-dest-check" => out(tf(e.source_dest_check)),
                        "interface-type" => out(&e.interface_type),
                        "requester-managed" => out(tf(e.requester_managed)),
                        "group-id" => e.groups.iter().for_each(|g| out(g)),
                        "group-name" => e
                            .groups
                            .iter()
                            .filter_map(|g| self.names.get(g))
                            .for_each(|g| out(g)),
                        "addresses.private-ip-address" | "private-ip-address" => {
                            e.addresses.iter().for_each(|x| out(&x.addr))
                        }
                        "addresses.primary" => e.addresses.iter().for_each(|x| out(tf(x.primary))),
                        "private-dns-name" => e.addresses.first().iter().for_each(|x| {
                            out(&network::private_dns_name(&self.ctx.region, &x.addr))
                        }),
                        "attachment.attachment-id" => a.iter().for_each(|a| out(&a.id)),
                        "attachment.device-index" => {
                            a.iter().for_each(|a| out(&a.device_index.to_string()))
                        }
                        "attachment.status" => a.iter().for_each(|a| out(&a.status)),
                        "attachment.delete-on-termination" => {
                            a.iter().for_each(|a| out(tf(a.delete_on_termination)))
                        }
                        "attachment.attach-time" => a
                            .iter()
                            .for_each(|a| out(&DateTime(a.attach_time_ms).to_iso8601())),
                        "attachment.instance-owner-id" => out(&self.ctx.account_id),
                        "ipv4-prefixes.ipv4-prefix" => e.prefixes.iter().for_each(|p| out(p)),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

const INSTANCE_FILTERS: &[&str] = &[
    "affinity",
    "ami-launch-index",
    "architecture",
    "availability-zone",
    "block-device-mapping.attach-time",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.status",
    "block-device-mapping.volume-id",
    "boot-mode",
    "capacity-reservation-id",
    "capacity-reservation-specification.capacity-reservation-preference",
    "client-token",
    "current-instance-boot-mode",
    "dns-name",
    "ebs-optimized",
    "ena-support",
    "group-id",
    "group-name",
    "hibernation-options.configured",
    "host-id",
    "hypervisor",
    "iam-instance-profile.arn",
    "iam-instance-profile.id",
    "image-id",
    "instance-id",
    "instance-lifecycle",
    "instance-state-code",
    "instance-state-name",
    "instance-type",
    "instance.group-id",
    "instance.group-name",
    "ip-address",
    "ipv6-address",
    "kernel-id",
    "key-name",
    "launch-index",
    "launch-time",
    "maintenance-options.auto-recovery",
    "metadata-options.http-endpoint",
    "metadata-options.http-protocol-ipv4",
    "metadata-options.http-protocol-ipv6",
    "metadata-options.http-put-response-hop-limit",
    "metadata-options.http-tokens",
    "metadata-options.instance-metadata-tags",
    "metadata-options.state",
    "monitoring-state",
    "network-interface.addresses.association.allocation-id",
    "network-interface.addresses.association.association-id",
    "network-interface.addresses.association.carrier-ip",
    "network-interface.addresses.association.customer-owned-ip",
    "network-interface.addresses.association.ip-owner-id",
    "network-interface.addresses.association.public-dns-name",
    "network-interface.addresses.association.public-ip",
    "network-interface.addresses.primary",
    "network-interface.addresses.private-dns-name",
    "network-interface.addresses.private-ip-address",
    "network-interface.association.allocation-id",
    "network-interface.association.association-id",
    "network-interface.association.carrier-ip",
    "network-interface.association.customer-owned-ip",
    "network-interface.association.ip-owner-id",
    "network-interface.association.public-dns-name",
    "network-interface.association.public-ip",
    "network-interface.attachment.attach-time",
    "network-interface.attachment.attachment-id",
    "network-interface.attachment.delete-on-termination",
    "network-interface.attachment.device-index",
    "network-interface.attachment.instance-id",
    "network-interface.attachment.instance-owner-id",
    "network-interface.attachment.network-card-index",
    "network-interface.attachment.status",
    "network-interface.availability-zone",
    "network-interface.deny-all-igw-traffic",
    "network-interface.description",
    "network-interface.group-id",
    "network-interface.group-name",
    "network-interface.ipv4-prefixes.ipv4-prefix",
    "network-interface.ipv6-address",
    "network-interface.ipv6-addresses.ipv6-address",
    "network-interface.ipv6-addresses.is-primary-ipv6",
    "network-interface.ipv6-native",
    "network-interface.ipv6-prefixes.ipv6-prefix",
    "network-interface.mac-address",
    "network-interface.network-interface-id",
    "network-interface.outpost-arn",
    "network-interface.owner-id",
    "network-interface.private-dns-name",
    "network-interface.private-ip-address",
    "network-interface.public-dns-name",
    "network-interface.requester-id",
    "network-interface.requester-managed",
    "network-interface.status",
    "network-interface.source-dest-check",
    "network-interface.subnet-id",
    "network-interface.tag-key",
    "network-interface.tag-value",
    "network-interface.vpc-id",
    "outpost-arn",
    "owner-id",
    "placement-group-name",
    "placement-partition-number",
    "platform",
    "platform-details",
    "private-dns-name",
    "private-dns-name-options.enable-resource-name-dns-a-record",
    "private-dns-name-options.enable-resource-name-dns-aaaa-record",
    "private-dns-name-options.hostname-type",
    "private-ip-address",
    "product-code",
    "product-code.type",
    "ramdisk-id",
    "reason",
    "requester-id",
    "reservation-id",
    "root-device-name",
    "root-device-type",
    "source-dest-check",
    "spot-instance-request-id",
    "state-reason-code",
    "state-reason-message",
    "subnet-id",
    "tenancy",
    "tpm-support",
    "usage-operation",
    "usage-operation-update-time",
    "virtualization-type",
    "vpc-id",
];

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeInstancesRequest,
) -> Result<DescribeInstancesResult, Ec2Error> {
    let fs = Filters::compile(&filters(input.filters), INSTANCE_FILTERS, true).map_err(rule)?;
    let ids = input.instance_ids.unwrap_or_default();
    if !ids.is_empty() && input.max_results.is_some() {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    for id in &ids {
        check_id(id)?;
    }
    let s = scope(ctx);
    let now = k.now_ms();
    let delay = k.options.transition_ms;
    let not_found_one = |id: &str| not_found(&[id]);
    k.store
        .read(|v| {
            if !ids.is_empty() {
                load(k, v, s, &ids)?;
            }
            let names = crate::repo::eni::group_names(v, s)?;
            let eips = crate::repo::address::by_interface(v, s)?;
            let req = describe::Request {
                op: "DescribeInstances",
                ids: &[],
                not_found: &not_found_one,
                push: Push {
                    ids: describe::both(
                        (!ids.is_empty()).then(|| ids.iter().map(String::as_str).collect()),
                        fs.exact("instance-id"),
                    ),
                    vpcs: fs.exact("vpc-id"),
                    subnets: fs.exact("subnet-id"),
                    tag: fs.exact_tag(),
                },
                max_results: input.max_results,
                bounds: (5, 1000),
                next_token: input.next_token.as_deref(),
            };
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<InstanceRecord>| {
                if !visible(&t.item, now, delay) {
                    return false;
                }
                let mut settled = Tagged {
                    item: t.item.clone(),
                    tags: t.tags.clone(),
                };
                settled.item.settle(now, delay);
                fs.matches(&InstanceView {
                    t: &settled,
                    v,
                    s,
                    ctx,
                    names: &names,
                    eips: &eips,
                })
            })?;
            let page: Vec<Tagged<InstanceRecord>> = page
                .into_iter()
                .map(|mut t| {
                    t.item.settle(now, delay);
                    t
                })
                .collect();
            Ok(DescribeInstancesResult {
                reservations: Some(reservation(k, v, ctx, &page, false)?),
                next_token: next,
            })
        })
        .map_err(|f: Fail| f.0)
}
