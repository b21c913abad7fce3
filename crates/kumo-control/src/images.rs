//! DescribeImages over the built-in public catalog, and the SSM public parameters that name
//! its images.

use crate::amis;
use crate::core::filters;
use crate::core::paging;
use crate::repo::instance::image_not_found;
use crate::Kumo;
use kumo_ec2_wire::filters::DescribeImages as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::images::{self, PublicImage};

/// A wire image seen by the filter engine, catalog or own alike.
struct ImageView<'a>(&'a Image, &'a [(String, String)]);

fn flag(b: Option<bool>) -> &'static str {
    if b == Some(true) {
        "true"
    } else {
        "false"
    }
}

impl Filterable<F> for ImageView<'_> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let name = f.name();
        let i = self.0;
        let mut opt = |v: &Option<String>| {
            if let Some(v) = v {
                out(v)
            }
        };
        match f {
            F::Architecture => opt(&i.architecture),
            F::Platform => opt(&i.platform),
            F::Name => opt(&i.name),
            F::Description => opt(&i.description),
            F::ImageId => opt(&i.image_id),
            F::OwnerId => opt(&i.owner_id),
            F::OwnerAlias => opt(&i.image_owner_alias),
            F::State => opt(&i.state),
            F::ImageType => opt(&i.image_type),
            F::RootDeviceType => opt(&i.root_device_type),
            F::RootDeviceName => opt(&i.root_device_name),
            F::VirtualizationType => opt(&i.virtualization_type),
            F::Hypervisor => opt(&i.hypervisor),
            F::CreationDate => opt(&i.creation_date),
            F::SriovNetSupport => opt(&i.sriov_net_support),
            F::ManifestLocation => opt(&i.image_location),
            F::SourceInstanceId => opt(&i.source_instance_id),
            F::SourceImageId => opt(&i.source_image_id),
            F::SourceImageRegion => opt(&i.source_image_region),
            F::IsPublic => out(flag(i.public)),
            F::EnaSupport => out(flag(i.ena_support)),
            F::BlockDeviceMappingDeleteOnTermination
            | F::BlockDeviceMappingDeviceName
            | F::BlockDeviceMappingEncrypted
            | F::BlockDeviceMappingSnapshotId
            | F::BlockDeviceMappingVolumeSize
            | F::BlockDeviceMappingVolumeType => {
                let field = &name["block-device-mapping.".len()..];
                for m in i.block_device_mappings.iter().flatten() {
                    let e = m.ebs.as_ref();
                    match field {
                        "device-name" => opt(&m.device_name),
                        "snapshot-id" => opt(&e.and_then(|e| e.snapshot_id.clone())),
                        "volume-type" => opt(&e.and_then(|e| e.volume_type.clone())),
                        "volume-size" => opt(&e.and_then(|e| e.volume_size).map(|n| n.to_string())),
                        "delete-on-termination" => {
                            opt(&e.map(|e| flag(e.delete_on_termination).to_string()))
                        }
                        "encrypted" => opt(&e.map(|e| flag(e.encrypted).to_string())),
                        _ => {}
                    }
                }
            }
            // The answer has none of these: no kernel or ramdisk images, no product codes, and
            // a state reason only for a failed image.
            F::KernelId
            | F::ProductCode
            | F::ProductCodeType
            | F::RamdiskId
            | F::StateReasonCode
            | F::StateReasonMessage => {}
            // Refused when compiling: no free tier, no allowed-images settings.
            F::FreeTierEligible | F::ImageAllowed => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        self.1
    }
}

fn wire(region: &str, i: &PublicImage) -> Image {
    let windows = i.platform == "windows";
    let (details, usage) = images::billing(i.platform);
    Image {
        image_id: Some(images::id_of(region, i)),
        name: Some(i.name.into()),
        description: Some(i.description.into()),
        owner_id: Some(i.owner_id.into()),
        image_owner_alias: (!i.owner_alias.is_empty()).then(|| i.owner_alias.into()),
        architecture: Some(i.architecture.into()),
        image_location: Some(i.location.map(str::to_string).unwrap_or_else(|| {
            format!(
                "{}/{}",
                if i.owner_alias.is_empty() {
                    i.owner_id
                } else {
                    i.owner_alias
                },
                i.name
            )
        })),
        platform: windows.then(|| "windows".into()),
        state: Some("available".into()),
        public: Some(true),
        image_type: Some("machine".into()),
        root_device_name: Some(i.root_device_name.into()),
        root_device_type: Some(i.root_device_type.into()),
        virtualization_type: Some(i.virtualization_type.into()),
        hypervisor: Some("xen".into()),
        ena_support: Some(i.ena_support),
        sriov_net_support: Some("simple".into()),
        boot_mode: Some(i.boot_mode.into()),
        creation_date: Some(i.creation_date.into()),
        platform_details: Some(details.into()),
        usage_operation: Some(usage.into()),
        block_device_mappings: Some(Vec::new()),
        product_codes: Some(Vec::new()),
        tags: Some(Vec::new()),
        ..Image::default()
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeImagesRequest,
) -> Result<DescribeImagesResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, &[F::FreeTierEligible, F::ImageAllowed])?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let after = paging::cursor("DescribeImages", input.next_token.as_deref())?;
    let ids = input.image_ids.unwrap_or_default();
    let moto = k.options.moto_compat;
    for id in &ids {
        crate::repo::image::catalog_image(&ctx.region, id, moto)?;
    }
    let owners = input.owners.unwrap_or_default();
    let users = input.executable_users.unwrap_or_default();
    for o in &owners {
        let known = matches!(
            o.as_str(),
            "self" | "amazon" | "aws-marketplace" | "aws-backup-vault"
        ) || crate::sharing::is_account_id(o);
        if !known {
            return Err(Ec2Error::new(
                "InvalidUserID.Malformed",
                format!("User ID '{o}' is invalid"),
            ));
        }
    }
    let me = ctx.account_id.as_str();
    // Owners: any of them (self, an alias, an account id) owns the image.
    let owned_by = |owner: &str, alias: &str| {
        owners.is_empty()
            || owners.iter().any(|o| {
                o == owner || (o == "self" && owner == me) || (!alias.is_empty() && o == alias)
            })
    };
    // ExecutableUsers: `all` is public images; `self` (or the caller's id) images shared
    // with the caller; another account's id, the caller's images shared with that account.
    let runnable_by = |owner: &str, p: &crate::sharing::Permissions| {
        users.is_empty()
            || users.iter().any(|u| match u.as_str() {
                "all" => p.public,
                "self" => owner != me && p.users.iter().any(|x| x == me),
                x if x == me => owner != me && p.users.iter().any(|y| y == me),
                x => owner == me && p.users.iter().any(|y| y == x),
            })
    };
    let (own, shared) = amis::listed(k, ctx)?;
    let mut all: Vec<(Image, Vec<(String, String)>)> = Vec::new();
    let everyone = crate::sharing::Permissions {
        users: Vec::new(),
        public: true,
    };
    for i in images::catalog(moto) {
        if owned_by(i.owner_id, i.owner_alias) && runnable_by(i.owner_id, &everyone) {
            all.push((wire(&ctx.region, i), Vec::new()));
        }
    }
    for (owner, t) in own
        .iter()
        .map(|t| (me, t))
        .chain(shared.iter().map(|(o, t)| (o.as_str(), t)))
    {
        if owned_by(owner, "") && runnable_by(owner, &t.item.launch) {
            all.push((amis::wire(k, owner, t), t.tags.clone()));
        }
    }
    let unknown = ids.iter().filter(|id| {
        images::by_id(&ctx.region, id, moto).is_none()
            && !own.iter().any(|t| t.item.id == **id)
            && !shared.iter().any(|(_, t)| t.item.id == **id)
    });
    for missing in unknown {
        if !recently_deregistered(k, ctx, missing)? {
            return Err(image_not_found(missing));
        }
    }
    let mut out: Vec<Image> = all
        .into_iter()
        .filter(|(i, _)| ids.is_empty() || ids.iter().any(|x| i.image_id.as_ref() == Some(x)))
        .filter(|(i, t)| fs.matches(&ImageView(i, t)))
        .filter(|(i, _)| {
            after
                .as_deref()
                .is_none_or(|a| i.image_id.as_deref().unwrap_or("") > a)
        })
        .map(|(i, _)| i)
        .collect();
    out.sort_by(|a, b| a.image_id.cmp(&b.image_id));
    let (page, next) = paging::page(out, limit, "DescribeImages", |i| {
        i.image_id.clone().unwrap_or_default()
    });
    Ok(DescribeImagesResult {
        images: Some(page),
        next_token: next,
    })
}

/// Whether the caller deregistered this image lately: an instance launched from it still
/// lives, or it went less than an hour ago (see `records::image::DeregisteredImage`).
fn recently_deregistered(k: &Kumo, ctx: &RequestContext, id: &str) -> Result<bool, Ec2Error> {
    use crate::records::image::DeregisteredImage;
    use crate::records::instance::{InstanceRecord, TERMINATED_VISIBLE_MS};
    use kumo_store::Read;
    let s = crate::scope(ctx);
    let now = k.now_ms();
    k.store
        .read(|v| {
            let Some(gone) = v.get::<DeregisteredImage>(s, id)? else {
                return Ok(false);
            };
            if now - gone.at_ms < TERMINATED_VISIBLE_MS {
                return Ok(true);
            }
            let instances: Vec<InstanceRecord> = v.list(s, &kumo_store::Query::default())?;
            Ok(instances
                .iter()
                .any(|r| r.image_id == id && r.state() != kumo_model::lifecycle::State::Terminated))
        })
        .map_err(|f: crate::core::error::Fail| f.0)
}

/// An SSM public parameter naming a catalog image: (name, value = image id).
pub fn ssm_parameter(region: &str, name: &str) -> Option<(String, String)> {
    images::by_parameter(name).map(|i| (name.to_string(), images::id_of(region, i)))
}
