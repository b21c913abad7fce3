//! CopyImage: a new image of the caller's in this region, with a new snapshot for each of
//! the source's.

use super::{check_name, check_unique, image_and_snapshot_tags, with_commas};
use crate::core::checks::{self, Checks};
use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::image::ImageRecord;
use crate::records::snapshot::SnapshotRecord;
use crate::repo::instance::image_not_found;
use crate::tags;
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Read, Scope};

/// The source image, its owner, its snapshots as (mapping index, snapshot, size), and its
/// tags (when the caller owns it).
struct Source {
    image: ImageRecord,
    owner: String,
    snaps: Vec<(usize, Option<SnapshotRecord>, i32)>,
    tags: Vec<(String, String)>,
}

/// The source is the caller's own image, a catalog image, or an image shared with the caller
/// whose snapshots the caller may read, in any region. A copy within the caller's own region
/// and account stacks each new snapshot on its source layer (free); anything else is a
/// standalone copy of the bytes.
pub fn copy(
    k: &Kumo,
    ctx: &RequestContext,
    input: CopyImageRequest,
) -> Result<CopyImageResult, Ec2Error> {
    let (mut image_tags, snap_tags) = image_and_snapshot_tags(input.tag_specifications.as_deref())?;
    let digest = crate::core::idempotency::digest(&input);
    let src_id = input.source_image_id.clone();
    let src_region = input.source_region.as_str();
    let catalog = crate::repo::image::catalog_image(src_region, &src_id, k.options.moto_compat)?;
    let now = k.now_ms();
    let id = new_id("ami");
    let src = Scope {
        account: &ctx.account_id,
        region: src_region,
    };
    let source = k
        .store
        .read(|v| read_source(v, ctx, src, &src_id, now, catalog))
        .map_err(|f: Fail| f.0)?;
    if input.copy_image_tags == Some(true) {
        image_tags = with_source_tags(&source.tags, image_tags);
    }
    let stacked = src_region == ctx.region && source.owner == ctx.account_id;
    // The new snapshots' files first, so a record never names a layer that does not exist.
    let new_snaps: Vec<String> = source.snaps.iter().map(|_| new_id("snap")).collect();
    if !ctx.dry_run {
        copy_files(k, &source, &new_snaps, stacked, &src_id)?;
    }
    let dst = scope(ctx);
    let written = k.store.write(!ctx.dry_run, |tx| {
        let token = input.client_token.as_deref();
        if let Some(earlier) =
            crate::core::idempotency::earlier(tx, dst, "CopyImage", token, &digest)?
        {
            return Ok(Some(earlier));
        }
        check_unique(tx, dst, &input.name)?;
        let by_default = crate::repo::volume::settings(tx, dst)?.encryption_by_default;
        let at = Scope {
            account: &source.owner,
            region: src_region,
        };
        let mut mappings = source.image.mappings.clone();
        for ((i, snap, size), new) in source.snaps.iter().zip(&new_snaps) {
            if let Some(x) = snap {
                // The source may have gone while its layer was copied.
                if tx.get::<SnapshotRecord>(at, &x.id)?.is_none() {
                    return Err(Fail(crate::repo::snapshot::not_found(&x.id)));
                }
            }
            let copied = Copied {
                id: new,
                image: &id,
                source_image: &src_id,
                size: *size,
                now,
                stacked,
                by_default,
            };
            let rec = copied.record(&input, dst, snap.as_ref());
            tx.insert(dst, &rec)?;
            tags::put_all(tx, dst, &rec.id, "snapshot", &snap_tags)?;
            if let Some(e) = mappings[*i].ebs.as_mut() {
                e.snapshot_id = Some(new.clone());
                e.encrypted = rec.encrypted;
            }
        }
        let rec = ImageRecord {
            id: id.clone(),
            name: input.name.clone(),
            description: input.description.clone(),
            create_ms: now,
            mappings,
            launch: Default::default(),
            source_instance_id: None,
            source_image: Some((src_id.clone(), src_region.to_string())),
            ..source.image.clone()
        };
        tx.insert(dst, &rec)?;
        tags::put_all(tx, dst, &rec.id, "image", &image_tags)?;
        crate::core::idempotency::remember(tx, dst, "CopyImage", token, &digest, &id)?;
        Ok(None)
    });
    let undo = || {
        if !ctx.dry_run {
            for s in &new_snaps {
                let _ = k.blocks.delete(s);
            }
        }
    };
    match written {
        Ok(Some(earlier)) => {
            undo();
            Ok(CopyImageResult {
                image_id: Some(earlier),
            })
        }
        Ok(None) => Ok(CopyImageResult { image_id: Some(id) }),
        Err(Fail(e)) => {
            undo();
            Err(e)
        }
    }
}

/// CopyImage, before any lookup: a key only with encryption; then the name, the source
/// region, the settings Kumo does not take, the copy's duration, the tags and the token. The
/// source image (the caller's, shared with it, or the catalog's) follows.
impl Checks for CopyImageRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::key_needs_encryption(&self.kms_key_id, self.encrypted)
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        check_request(self)?;
        image_and_snapshot_tags(self.tag_specifications.as_deref())?;
        crate::core::idempotency::check_token(self.client_token.as_deref())
    }
}

/// The request's own formats: the name, the source region, the settings Kumo does not take,
/// the copy's duration.
fn check_request(input: &CopyImageRequest) -> Result<(), Ec2Error> {
    check_name(&input.name)?;
    let src_region = &input.source_region;
    if kumo_model::regions::get(src_region).is_none() {
        return Err(Ec2Error::invalid_value(format!(
            "Value ({src_region}) for parameter sourceRegion is invalid."
        )));
    }
    if input.destination_outpost_arn.is_some()
        || input.destination_availability_zone.is_some()
        || input.destination_availability_zone_id.is_some()
    {
        return Err(Ec2Error::new(
            "Unsupported",
            "Kumo has no Outposts or Local Zones to copy an image to.",
        ));
    }
    if let Some(m) = input.snapshot_copy_completion_duration_minutes {
        if !(15..=2880).contains(&m) || m % 15 != 0 {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({m}) for parameter snapshotCopyCompletionDurationMinutes is invalid. It must be a multiple of 15 between 15 and 2880."
            )));
        }
    }
    Ok(())
}

/// The image to copy: a catalog image (its root volume is blank, copied as a blank
/// snapshot), or a stored one the caller may copy, with its snapshots.
fn read_source<V: Read>(
    v: &V,
    ctx: &RequestContext,
    src: Scope,
    src_id: &str,
    now: i64,
    catalog: Option<&kumo_model::images::PublicImage>,
) -> Result<Source, Fail> {
    if let Some(p) = catalog {
        let t = crate::records::image::ImageTraits::public(p);
        let image = ImageRecord {
            id: src_id.to_string(),
            name: p.name.into(),
            description: Some(p.description.into()),
            architecture: t.architecture.clone(),
            root_device_name: t.root_device_name.clone(),
            virtualization_type: t.virtualization_type.clone(),
            ena_support: t.ena_support,
            sriov_net_support: Some("simple".into()),
            boot_mode: Some(t.boot_mode.clone()),
            imds_support: None,
            tpm_support: None,
            create_ms: now,
            mappings: t.mappings.clone(),
            launch: Default::default(),
            source_instance_id: None,
            source_image: None,
        };
        let snaps = image
            .mappings
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, None, m.ebs.as_ref()?.volume_size)))
            .collect();
        return Ok(Source {
            image,
            owner: p.owner_id.into(),
            snaps,
            tags: Vec::new(),
        });
    }
    let (owner, image) = crate::sharing::owner_of::<ImageRecord, _>(v, src, src_id)?
        .ok_or_else(|| Fail(image_not_found(src_id)))?;
    let at = Scope {
        account: &owner,
        region: src.region,
    };
    let mut snaps = Vec::new();
    for (i, m) in image.mappings.iter().enumerate() {
        let Some(e) = &m.ebs else { continue };
        let Some(sid) = &e.snapshot_id else { continue };
        let snap: SnapshotRecord = v
            .get(at, sid)?
            .ok_or_else(|| Fail(crate::repo::snapshot::not_found(sid)))?;
        // Another account's image copies only with read access to its storage.
        if owner != ctx.account_id && !snap.create_volume.allows(&ctx.account_id) {
            return Err(Fail(Ec2Error::new(
                "InvalidRequest",
                "You do not have permission to access the storage of this ami",
            )));
        }
        let size = snap.volume_size;
        snaps.push((i, Some(snap), size));
    }
    let tags = if owner == ctx.account_id {
        v.tags_of(at, &image.id)?
    } else {
        Vec::new()
    };
    Ok(Source {
        image,
        owner,
        snaps,
        tags,
    })
}

/// The source's tags (`CopyImageTags`), under the request's own, which win on a key.
fn with_source_tags(source: &[(String, String)], mut own: Vec<Tag>) -> Vec<Tag> {
    let mut copied: Vec<Tag> = source
        .iter()
        .filter(|(key, _)| !own.iter().any(|t| t.key.as_deref() == Some(key)))
        .map(|(key, value)| Tag {
            key: Some(key.clone()),
            value: Some(value.clone()),
        })
        .collect();
    copied.append(&mut own);
    copied
}

/// Makes the new snapshots' files: blank for a catalog image's, stacked on the source layer
/// or a standalone copy of it. On a failure none is left.
fn copy_files(
    k: &Kumo,
    source: &Source,
    new_snaps: &[String],
    stacked: bool,
    src_id: &str,
) -> Result<(), Ec2Error> {
    let mut made: Vec<&str> = Vec::new();
    for ((_, snap, size), new) in source.snaps.iter().zip(new_snaps) {
        let r = match snap {
            None => k.blocks.create_blank(new, *size as u64),
            Some(x) => k.blocks.restore(new, &x.id, *size as u64).and_then(|()| {
                if stacked {
                    Ok(())
                } else {
                    k.blocks.rebase(new, None)
                }
            }),
        };
        if let Err(e) = r {
            tracing::error!(error = %e, image = %src_id, "cannot copy an image's snapshot");
            let _ = k.blocks.delete(new);
            for m in &made {
                let _ = k.blocks.delete(m);
            }
            return Err(Ec2Error::internal());
        }
        made.push(new);
    }
    Ok(())
}

/// One snapshot the copy makes.
struct Copied<'a> {
    id: &'a str,
    image: &'a str,
    source_image: &'a str,
    size: i32,
    now: i64,
    stacked: bool,
    /// The account encrypts new volumes and snapshots by default.
    by_default: bool,
}

impl Copied<'_> {
    /// Its record: encrypted when its source was, when asked, or by default; with the key
    /// asked for, its stacked source's, or the account's default.
    fn record(
        &self,
        input: &CopyImageRequest,
        dst: Scope,
        snap: Option<&SnapshotRecord>,
    ) -> SnapshotRecord {
        let was_encrypted = snap.is_some_and(|x| x.encrypted);
        let encrypted = was_encrypted || input.encrypted == Some(true) || self.by_default;
        let kms_key_id = match (&input.kms_key_id, snap.and_then(|x| x.kms_key_id.clone())) {
            _ if !encrypted => None,
            (Some(key), _) => Some(key.clone()),
            (None, Some(key)) if self.stacked => Some(key),
            _ => Some(crate::repo::volume::default_kms_arn(dst)),
        };
        SnapshotRecord {
            id: self.id.to_string(),
            volume_id: "vol-ffffffff".into(),
            volume_size: self.size,
            description: format!(
                "Copied for DestinationAmi {} from SourceAmi {} for SourceSnapshot {}. Task created on {}.",
                self.image,
                self.source_image,
                snap.map(|x| x.id.as_str()).unwrap_or("snap-ffffffff"),
                with_commas(self.now)
            ),
            start_ms: self.now,
            encrypted,
            kms_key_id,
            parent: if self.stacked { snap.map(|x| x.id.clone()) } else { None },
            create_volume: Default::default(),
        }
    }
}
