//! Image attributes and sharing: ModifyImageAttribute (launch permissions, description, IMDS
//! support), DescribeImageAttribute, ResetImageAttribute, and block public access for AMIs.

use crate::core::checks::{self, Checks};
use crate::core::error::Fail;
use crate::records::image::ImageRecord;
use crate::records::snapshot::SnapshotRecord;
use crate::repo::instance::image_not_found;
use crate::sharing::{self, Change, Permissions};
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Read, Record, Scope, Tx};
use serde::{Deserialize, Serialize};

pub fn not_authorized(id: &str) -> Ec2Error {
    Ec2Error::new("AuthFailure", format!("Not authorized for image:{id}"))
}

/// The caller's own image, to read or change its attributes. A catalog image or another
/// account's image answers `AuthFailure`; an image the caller cannot see, `NotFound`.
pub fn owned<V: Read>(v: &V, s: Scope, id: &str, moto: bool) -> Result<ImageRecord, Fail> {
    if crate::repo::image::catalog_image(s.region, id, moto)
        .map_err(Fail)?
        .is_some()
    {
        return Err(Fail(not_authorized(id)));
    }
    match sharing::owner_of::<ImageRecord, _>(v, s, id)? {
        Some((owner, image)) if owner == s.account => Ok(image),
        Some(_) => Err(Fail(not_authorized(id))),
        None => Err(Fail(image_not_found(id))),
    }
}

/// Account-wide AMI settings of a region: block public access.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImageSettings {
    pub id: String,
    pub block_public: bool,
}

impl Record for ImageSettings {
    const KIND: &'static str = "image-settings";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
}

const SETTINGS: &str = "settings";

fn settings<V: Read>(v: &V, s: Scope) -> Result<ImageSettings, Fail> {
    Ok(v.get(s, SETTINGS)?.unwrap_or(ImageSettings {
        id: SETTINGS.into(),
        block_public: false,
    }))
}

fn state_name(blocked: bool) -> String {
    if blocked {
        "block-new-sharing".into()
    } else {
        "unblocked".into()
    }
}

fn set_block_public(k: &Kumo, ctx: &RequestContext, blocked: bool) -> Result<String, Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut st = settings(tx, s)?;
            st.block_public = blocked;
            if !tx.update(s, &st)? {
                tx.insert(s, &st)?;
            }
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(state_name(blocked))
}

pub fn enable_block_public(
    k: &Kumo,
    ctx: &RequestContext,
    _input: EnableImageBlockPublicAccessRequest,
) -> Result<EnableImageBlockPublicAccessResult, Ec2Error> {
    // The decoder admits only `block-new-sharing`, the one state this call sets.
    Ok(EnableImageBlockPublicAccessResult {
        image_block_public_access_state: Some(set_block_public(k, ctx, true)?),
    })
}

pub fn disable_block_public(
    k: &Kumo,
    ctx: &RequestContext,
) -> Result<DisableImageBlockPublicAccessResult, Ec2Error> {
    Ok(DisableImageBlockPublicAccessResult {
        image_block_public_access_state: Some(set_block_public(k, ctx, false)?),
    })
}

pub fn get_block_public(
    k: &Kumo,
    ctx: &RequestContext,
) -> Result<GetImageBlockPublicAccessStateResult, Ec2Error> {
    let st = k.store.read(|v| settings(v, scope(ctx))).map_err(|f| f.0)?;
    Ok(GetImageBlockPublicAccessStateResult {
        image_block_public_access_state: Some(state_name(st.block_public)),
        managed_by: Some("account".into()),
    })
}

/// The launch-permission changes a ModifyImageAttribute asks for, in either of its forms:
/// `LaunchPermission.Add/Remove`, or `Attribute=launchPermission` with `OperationType`,
/// `UserId` and `UserGroup`.
fn launch_changes(input: &ModifyImageAttributeRequest) -> Result<Vec<Change>, Ec2Error> {
    let mut out = Vec::new();
    if let Some(lp) = &input.launch_permission {
        for (add, list) in [(true, &lp.add), (false, &lp.remove)] {
            for p in list.iter().flatten() {
                if p.organization_arn.is_some() || p.organizational_unit_arn.is_some() {
                    return Err(no_organizations());
                }
                out.push(Change {
                    add,
                    user: p.user_id.clone(),
                    group: p.group.clone(),
                });
            }
        }
    }
    if input.organization_arns.is_some() || input.organizational_unit_arns.is_some() {
        return Err(no_organizations());
    }
    out.extend(sharing::listed(
        input.operation_type.as_deref(),
        input.user_ids.as_deref(),
        input.user_groups.as_deref(),
    )?);
    Ok(out)
}

fn no_organizations() -> Ec2Error {
    Ec2Error::new(
        "UnsupportedOperation",
        "Kumo has no AWS Organizations: share an image with account ids or the group all.",
    )
}

/// The snapshots of an image, as their owner holds them.
fn snapshots_of<V: Read>(
    v: &V,
    s: Scope,
    image: &ImageRecord,
) -> Result<Vec<SnapshotRecord>, Fail> {
    let mut out = Vec::new();
    for id in image.snapshots() {
        if let Some(snap) = v.get::<SnapshotRecord>(s, id)? {
            out.push(snap);
        }
    }
    Ok(out)
}

/// Checks a move of an image's launch permissions from `before` to `after`, as AWS does:
/// public sharing needs block public access off and no encrypted snapshot; sharing with an
/// account needs no snapshot under the default EBS key (which other accounts cannot use).
fn check_sharing(
    tx: &Tx,
    s: Scope,
    image: &ImageRecord,
    before: &Permissions,
    after: &Permissions,
) -> Result<(), Fail> {
    let snaps = snapshots_of(tx, s, image)?;
    if after.public && !before.public {
        if settings(tx, s)?.block_public {
            return Err(Fail(Ec2Error::new(
                "OperationNotPermitted",
                "You can't publicly share this image because block public access for AMIs is enabled for this account. To publicly share the image, you must call the DisableImageBlockPublicAccess API.",
            )));
        }
        if snaps.iter().any(|x| x.encrypted) {
            return Err(Fail(Ec2Error::new(
                "UnsupportedOperation",
                "Encrypted snapshots can't be shared publicly. Specify another snapshot.",
            )));
        }
    }
    let added = after.users.iter().any(|u| !before.users.contains(u));
    let default_key = crate::repo::volume::default_kms_arn(s);
    if added
        && snaps
            .iter()
            .any(|x| x.encrypted && x.kms_key_id.as_deref() == Some(default_key.as_str()))
    {
        return Err(Fail(Ec2Error::new(
            "InvalidParameter",
            "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot.",
        )));
    }
    Ok(())
}

/// What a ModifyImageAttribute asks: the permission changes, a description, an IMDS setting.
struct ImageChanges {
    changes: Vec<Change>,
    description: Option<String>,
    imds: Option<String>,
}

/// Reads a ModifyImageAttribute, with its pure checks in order: the attribute, product
/// codes, the permission changes, the IMDS value, something to change, each change's item.
fn image_changes(input: &ModifyImageAttributeRequest) -> Result<ImageChanges, Ec2Error> {
    let attribute = input.attribute.as_deref();
    if let Some(a) = attribute {
        if !matches!(a, "description" | "launchPermission" | "imdsSupport") {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({a}) for parameter attribute is invalid. Valid attributes are description, imdsSupport and launchPermission."
            )));
        }
    }
    if input.product_codes.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(Ec2Error::new(
            "UnsupportedOperation",
            "Product codes cannot be added to an image through ModifyImageAttribute.",
        ));
    }
    let changes = launch_changes(input)?;
    let value_for = |name: &str| {
        (attribute == Some(name))
            .then(|| input.value.clone())
            .flatten()
    };
    let description = input
        .description
        .as_ref()
        .map(|d| d.value.clone().unwrap_or_default())
        .or_else(|| value_for("description"));
    let imds = input
        .imds_support
        .as_ref()
        .and_then(|d| d.value.clone())
        .or_else(|| value_for("imdsSupport"));
    if let Some(m) = &imds {
        if m != "v2.0" {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({m}) for parameter imdsSupport is invalid. The only valid value is v2.0."
            )));
        }
    }
    if changes.is_empty() && description.is_none() && imds.is_none() {
        return Err(match attribute {
            Some("launchPermission") => Ec2Error::missing_parameter("launchPermission"),
            Some(_) => Ec2Error::missing_parameter("value"),
            None => Ec2Error::missing_parameter("attribute"),
        });
    }
    sharing::apply(&Permissions::default(), &changes)?;
    Ok(ImageChanges {
        changes,
        description,
        imds,
    })
}

/// ModifyImageAttribute, before any lookup: [`image_changes`]. The image (the caller's own)
/// and what sharing it allows follow.
impl Checks for ModifyImageAttributeRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::phase_one(image_changes(self).map(drop))
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        image_changes(self).map(drop)
    }
}

pub fn modify(
    k: &Kumo,
    ctx: &RequestContext,
    input: ModifyImageAttributeRequest,
) -> Result<(), Ec2Error> {
    let ImageChanges {
        changes,
        description,
        imds,
    } = image_changes(&input)?;
    let s = scope(ctx);
    let id = &input.image_id;
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut image = owned(tx, s, id, k.options.moto_compat)?;
            let before = image.launch.clone();
            let after = sharing::apply(&before, &changes)?;
            check_sharing(tx, s, &image, &before, &after)?;
            sharing::regrant(tx, s, id, &before, &after)?;
            image.launch = after;
            if let Some(d) = &description {
                image.description = Some(d.clone());
            }
            if imds.is_some() {
                image.imds_support = imds.clone();
            }
            tx.update(s, &image)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}

pub fn launch_permissions(p: &Permissions) -> Vec<LaunchPermission> {
    let mut out: Vec<LaunchPermission> = p
        .users
        .iter()
        .map(|u| LaunchPermission {
            user_id: Some(u.clone()),
            ..LaunchPermission::default()
        })
        .collect();
    if p.public {
        out.push(LaunchPermission {
            group: Some("all".into()),
            ..LaunchPermission::default()
        });
    }
    out
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeImageAttributeRequest,
) -> Result<ImageAttribute, Ec2Error> {
    let s = scope(ctx);
    let image = k
        .store
        .read(|v| owned(v, s, &input.image_id, k.options.moto_compat))
        .map_err(|f| f.0)?;
    let value = |v: Option<String>| Some(AttributeValue { value: v });
    let mut out = ImageAttribute {
        image_id: Some(image.id.clone()),
        ..ImageAttribute::default()
    };
    match input.attribute.as_str() {
        "description" => out.description = value(image.description.clone()),
        "kernel" => out.kernel_id = value(None),
        "ramdisk" => out.ramdisk_id = value(None),
        "launchPermission" => out.launch_permissions = Some(launch_permissions(&image.launch)),
        "productCodes" => out.product_codes = Some(Vec::new()),
        "blockDeviceMapping" => {
            // AWS answers this attribute with an authorization failure; DescribeImages has
            // the mappings.
            return Err(Ec2Error::new(
                "AuthFailure",
                "Unauthorized attempt to access restricted resource",
            ));
        }
        "sriovNetSupport" => out.sriov_net_support = value(image.sriov_net_support.clone()),
        "bootMode" => out.boot_mode = value(image.boot_mode.clone()),
        "tpmSupport" => out.tpm_support = value(image.tpm_support.clone()),
        "uefiData" => out.uefi_data = value(None),
        "lastLaunchedTime" => out.last_launched_time = value(None),
        "imdsSupport" => out.imds_support = value(image.imds_support.clone()),
        "deregistrationProtection" => {
            out.deregistration_protection = value(Some("disabled".into()))
        }
        other => {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({other}) for parameter attribute is invalid."
            )))
        }
    }
    Ok(out)
}

pub fn reset(
    k: &Kumo,
    ctx: &RequestContext,
    input: ResetImageAttributeRequest,
) -> Result<(), Ec2Error> {
    // The decoder admits only `launchPermission`, the one attribute AWS resets.
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let mut image = owned(tx, s, &input.image_id, k.options.moto_compat)?;
            sharing::regrant(tx, s, &image.id, &image.launch, &Permissions::default())?;
            image.launch = Permissions::default();
            tx.update(s, &image)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}
