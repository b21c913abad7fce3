//! RunInstances and DescribeInstances: the images an instance may launch from and its
//! metadata options here; the launch in [`run`] (its checks and its transaction) and
//! [`parts`] (each instance's zone, key, capacity, interfaces and record); the wire form in
//! [`wire`]; the filters in [`describe`].

mod describe;
mod parts;
mod run;
mod wire;

pub use describe::describe;
pub use run::run;

/// Whether the driver plugs an interface at `device_index` (every driver plugs them, up to
/// its highest index), else `Unsupported` with the range it takes.
pub fn pluggable(k: &Kumo, device_index: i32) -> Result<(), Ec2Error> {
    let max = k.compute.driver.max_device_index();
    if device_index.max(0) as u32 > max {
        return Err(Ec2Error::new(
            "Unsupported",
            format!(
                "Kumo's {} driver plugs interfaces at device indexes 1 to {max}.",
                k.compute.driver.name()
            ),
        ));
    }
    Ok(())
}

/// One instance as DescribeInstances shows it.
pub fn wire_one<V: kumo_store::Read>(
    k: &crate::Kumo,
    v: &V,
    ctx: &kumo_ec2_wire::RequestContext,
    t: &crate::core::tagged::Tagged<crate::records::instance::InstanceRecord>,
) -> Result<kumo_ec2_wire::shapes::Instance, crate::core::error::Fail> {
    wire::reservation(k, v, ctx, std::slice::from_ref(t), false)?
        .into_iter()
        .flat_map(|r| r.instances.unwrap_or_default())
        .next()
        .ok_or_else(|| crate::core::error::Fail(kumo_ec2_wire::Ec2Error::internal()))
}

use crate::records::image::ImageTraits;
use crate::records::instance::*;
use crate::Kumo;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::images::{self, PublicImage};

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
            platform: i.platform.into(),
            virtualization_type: i.virtualization_type.into(),
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
            platform: platform(r).into(),
            virtualization_type: virtualization_type(r).into(),
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
    if let Some(p) = crate::repo::image::catalog_image(&ctx.region, id, k.options.moto_compat)? {
        return Ok(ImageTraits::public(p));
    }
    let (owner, image) = crate::repo::image::usable(k, ctx, id)?;
    let mut traits = image.traits();
    traits.owner = (owner != ctx.account_id).then_some(owner);
    Ok(traits)
}

/// Whether the driver can run a guest of the image's architecture here; else AWS's answer when
/// a type cannot be placed, `InsufficientInstanceCapacity`, with the reason. Never is an
/// arm64 instance given an x86_64 guest.
pub fn runnable_here(k: &Kumo, instance_type: &str, arch: &str) -> Result<(), Ec2Error> {
    let driver = &k.compute.driver;
    if driver.runs_architecture(arch) {
        return Ok(());
    }
    Err(Ec2Error::new(
        "InsufficientInstanceCapacity",
        format!(
            "We currently do not have sufficient {instance_type} capacity. Kumo's {} driver runs only {} guests on this host, and {instance_type} runs {arch} ones.",
            driver.name(),
            std::env::consts::ARCH.replace("aarch64", "arm64"),
        ),
    ))
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
    // A paravirtual image runs only on the old types that list it.
    let virtualization = info
        .supported_virtualization_types
        .as_deref()
        .unwrap_or_default();
    if !virtualization.is_empty() && !virtualization.contains(&img.virtualization_type) {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            format!(
                "Virtualization type 'hvm' is required for instances of type '{t}'. Ensure that you are using an AMI with virtualization type 'hvm'. For more information, see http://docs.aws.amazon.com/AWSEC2/latest/UserGuide/virtualization_types.html"
            ),
        ));
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

/// An instance's metadata options as the API shows them, in `state` (`applied`, or `pending`
/// in ModifyInstanceMetadataOptions' answer).
pub fn metadata_options(r: &InstanceRecord, state: &str) -> InstanceMetadataOptionsResponse {
    InstanceMetadataOptionsResponse {
        state: Some(state.into()),
        http_tokens: Some(r.http_tokens.clone()),
        http_put_response_hop_limit: Some(r.http_hop_limit),
        http_endpoint: Some(r.http_endpoint.clone()),
        http_protocol_ipv6: Some(r.http_protocol_ipv6.clone()),
        instance_metadata_tags: Some(r.instance_metadata_tags.clone()),
    }
}

/// `windows` for an instance launched from a Windows image, empty otherwise.
pub fn platform(r: &InstanceRecord) -> &'static str {
    if r.windows {
        "windows"
    } else {
        ""
    }
}

/// The platform details and usage operation AWS bills an instance under.
pub fn platform_details(r: &InstanceRecord) -> (&'static str, &'static str) {
    images::billing(platform(r))
}

/// `hvm`, or `paravirtual` for an instance launched from a paravirtual image.
pub fn virtualization_type(r: &InstanceRecord) -> &'static str {
    if r.paravirtual {
        "paravirtual"
    } else {
        "hvm"
    }
}

/// The boot mode the instance boots with: the image's, where it names one, and for a
/// `uefi-preferred` image UEFI where the type supports it, else legacy BIOS.
pub fn current_boot_mode(r: &InstanceRecord) -> &str {
    if r.boot_mode != "uefi-preferred" {
        return &r.boot_mode;
    }
    let uefi = crate::instance_types::find(&r.instance_type)
        .and_then(|t| t.supported_boot_modes.as_ref())
        .is_some_and(|m| m.iter().any(|b| b == "uefi"));
    if uefi {
        "uefi"
    } else {
        "legacy-bios"
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
