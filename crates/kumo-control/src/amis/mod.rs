//! The caller's own AMIs: RegisterImage from EBS snapshots, DeregisterImage (optionally with
//! the snapshots no other image uses), and the records DescribeImages lists beside the public
//! catalog. An image holds its snapshots: DeleteSnapshot refuses one that an image uses.

mod copy;

pub use copy::copy;

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::image::ImageTraits;
use crate::records::image::{EbsRecord, ImageRecord, MappingRecord};
use crate::records::snapshot::SnapshotRecord;
use crate::repo::image::user_of;
use crate::repo::snapshot::bad_mapping;
use crate::repo::snapshot::mapped_snapshot;
use crate::repo::snapshot::new_volume_size;
use crate::tags::{self, Tagged};
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::ebs;
use kumo_store::{Query, Read, Scope};

impl ImageRecord {
    pub fn traits(&self) -> ImageTraits {
        ImageTraits {
            mappings: self.mappings.clone(),
            architecture: self.architecture.clone(),
            platform: String::new(),
            virtualization_type: self.virtualization_type.clone(),
            root_device_name: self.root_device_name.clone(),
            root_device_type: "ebs".into(),
            ena_support: self.ena_support,
            owner: None,
            boot_mode: self.boot_mode.clone().unwrap_or_else(|| {
                if self.architecture == "arm64" {
                    "uefi".into()
                } else {
                    "legacy-bios".into()
                }
            }),
        }
    }
}

/// The tags of a request that makes an image and its snapshots (`image` and `snapshot` tag
/// specifications; any other resource type is refused).
fn image_and_snapshot_tags(
    specs: Option<&[TagSpecification]>,
) -> Result<(Vec<Tag>, Vec<Tag>), Ec2Error> {
    if let Some(bad) = specs
        .into_iter()
        .flatten()
        .find(|t| !matches!(t.resource_type.as_deref(), Some("image") | Some("snapshot")))
    {
        return Err(Ec2Error::invalid_value(format!(
            "'{}' is not a valid taggable resource type for this operation.",
            bad.resource_type.clone().unwrap_or_default()
        )));
    }
    let split = |rt: &str| {
        let of: Vec<TagSpecification> = specs
            .into_iter()
            .flatten()
            .filter(|t| t.resource_type.as_deref() == Some(rt))
            .cloned()
            .collect();
        tags::from_specifications(Some(of), rt)
    };
    Ok((split("image")?, split("snapshot")?))
}

/// AMI names: 3 to 128 of letters, digits and `()[] ./-'@_`.
fn check_name(n: &str) -> Result<(), Ec2Error> {
    let ok = (3..=128).contains(&n.chars().count())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Ec2Error::new(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '[', ']', ' ', '.', '/', '-', ''', '@' and '_'",
        ))
    }
}

/// An account's AMI names are unique within a region.
fn check_unique<V: Read>(v: &V, s: Scope, name: &str) -> Result<(), Fail> {
    let all: Vec<ImageRecord> = v.list(s, &Query::default())?;
    match all.iter().find(|i| i.name == name) {
        Some(dup) => Err(Fail(Ec2Error::new(
            "InvalidAMIName.Duplicate",
            format!("AMI name {name} is already in use by AMI {}", dup.id),
        ))),
        None => Ok(()),
    }
}

fn one_of(what: &str, v: &str, allowed: &[&str]) -> Result<(), Ec2Error> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(Ec2Error::invalid_value(format!(
            "Value ({v}) for parameter {what} is invalid. Valid values: {}",
            allowed.join(", ")
        )))
    }
}

/// Checks a request's block device mappings against the snapshots they name.
fn mappings<V: Read>(
    v: &V,
    s: Scope,
    given: Vec<BlockDeviceMapping>,
) -> Result<Vec<MappingRecord>, Fail> {
    let mut out: Vec<MappingRecord> = Vec::new();
    for m in given {
        let Some(device) = m.device_name.clone().filter(|d| !d.is_empty()) else {
            return Err(Fail(bad_mapping("Missing device name")));
        };
        if !ebs::valid_device(&device) && !device.starts_with("/dev/sd") {
            return Err(Fail(bad_mapping(format!("Invalid device name {device}"))));
        }
        if out.iter().any(|o| o.device_name == device) {
            return Err(Fail(bad_mapping(format!(
                "The device '{device}' is used in more than one block-device mapping"
            ))));
        }
        let ebs_rec = match m.ebs {
            None => None,
            Some(e) => {
                let snap: Option<SnapshotRecord> = e
                    .snapshot_id
                    .as_deref()
                    .map(|id| mapped_snapshot(v, s, id))
                    .transpose()?;
                if snap.is_some() && e.encrypted.is_some() {
                    return Err(Fail(Ec2Error::new(
                        "InvalidParameterCombination",
                        "The parameter Encrypted cannot be specified with a SnapshotId: the volume takes the snapshot's encryption.",
                    )));
                }
                let size = new_volume_size(&device, snap.as_ref(), e.volume_size)?;
                let vt = e.volume_type.clone().unwrap_or_else(|| "gp2".into());
                let (iops, throughput) = ebs::configure(&vt, size, e.iops, e.throughput)
                    .map_err(|(code, msg)| Fail(Ec2Error::new(code, msg)))?;
                Some(EbsRecord {
                    snapshot_id: snap.as_ref().map(|x| x.id.clone()),
                    volume_size: size,
                    volume_type: vt,
                    iops,
                    throughput,
                    delete_on_termination: e.delete_on_termination.unwrap_or(true),
                    encrypted: snap
                        .map(|x| x.encrypted)
                        .unwrap_or(e.encrypted == Some(true)),
                })
            }
        };
        out.push(MappingRecord {
            device_name: device,
            virtual_name: m.virtual_name,
            no_device: m.no_device.is_some(),
            ebs: ebs_rec,
        });
    }
    Ok(out)
}

/// RegisterImage, before any lookup. Phase 1: no S3 image and no billing products, a root
/// device name, a device name on every mapping, no `Encrypted` beside a snapshot, enhanced
/// networking only on HVM, and the root device mapped to a snapshot. Phase 2: the name, the
/// enums the model leaves open, each device name once and of its form, the sizes, IOPS and
/// throughput given, and the tags. The snapshots (the caller may use them, and they set the
/// volumes' sizes) and the name's uniqueness follow.
impl Checks for RegisterImageRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        // What Kumo does not take (S3 images), and product codes no account may set, are
        // refused first: the mappings such a request lacks are not its problem.
        // Terraform's aws_ami always sends `ImageLocation=`: empty is not given.
        if self
            .image_location
            .as_deref()
            .is_some_and(|l| !l.is_empty())
        {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo has no S3: instance-store-backed AMIs (ImageLocation) cannot be registered. Register an EBS-backed AMI from a snapshot.",
            ));
        }
        if self.billing_products.is_some() {
            return Err(Ec2Error::new(
                "AuthFailure",
                "This account is not authorized to specify billing product codes.",
            ));
        }
        let Some(root) = &self.root_device_name else {
            return Err(Ec2Error::missing_parameter("RootDeviceName"));
        };
        let given = self.block_device_mappings.as_deref().unwrap_or_default();
        for m in given {
            if m.device_name.as_deref().is_none_or(str::is_empty) {
                return Err(bad_mapping("Missing device name"));
            }
            if m.ebs
                .as_ref()
                .is_some_and(|e| e.snapshot_id.is_some() && e.encrypted.is_some())
            {
                return Err(Ec2Error::new(
                    "InvalidParameterCombination",
                    "The parameter Encrypted cannot be specified with a SnapshotId: the volume takes the snapshot's encryption.",
                ));
            }
        }
        let virtualization = self.virtualization_type.as_deref().unwrap_or("paravirtual");
        if virtualization == "paravirtual"
            && (self.ena_support == Some(true) || self.sriov_net_support.is_some())
        {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "Enhanced networking (EnaSupport, SriovNetSupport) is supported only for HVM AMIs.",
            ));
        }
        if !given.iter().any(|m| {
            m.device_name.as_ref() == Some(root)
                && m.ebs.as_ref().is_some_and(|e| e.snapshot_id.is_some())
        }) {
            return Err(bad_mapping(format!(
                "The root device {root} must have a block device mapping with an EBS snapshot."
            )));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        check_name(&self.name)?;
        if let Some(a) = &self.architecture {
            one_of(
                "architecture",
                a,
                &["i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"],
            )?;
        }
        if let Some(v) = &self.virtualization_type {
            one_of("virtualizationType", v, &["hvm", "paravirtual"])?;
        }
        if let Some(b) = &self.boot_mode {
            one_of("bootMode", b, &["legacy-bios", "uefi", "uefi-preferred"])?;
        }
        if let Some(m) = &self.imds_support {
            one_of("imdsSupport", m, &["v2.0"])?;
        }
        if let Some(t) = &self.tpm_support {
            one_of("tpmSupport", t, &["v2.0"])?;
        }
        if let Some(sr) = &self.sriov_net_support {
            one_of("sriovNetSupport", sr, &["simple"])?;
        }
        let mut seen: Vec<&str> = Vec::new();
        for m in self.block_device_mappings.iter().flatten() {
            let device = m.device_name.as_deref().unwrap_or_default();
            if !ebs::valid_device(device) && !device.starts_with("/dev/sd") {
                return Err(bad_mapping(format!("Invalid device name {device}")));
            }
            if seen.contains(&device) {
                return Err(bad_mapping(format!(
                    "The device '{device}' is used in more than one block-device mapping"
                )));
            }
            seen.push(device);
            if let Some(e) = &m.ebs {
                if let Some(size) = e.volume_size {
                    let vt = e.volume_type.as_deref().unwrap_or("gp2");
                    ebs::configure(vt, size, e.iops, e.throughput)
                        .map_err(crate::core::error::rule)?;
                }
            }
        }
        tags::from_specifications(self.tag_specifications.clone(), "image").map(drop)
    }
}

pub fn register(
    k: &Kumo,
    ctx: &RequestContext,
    input: RegisterImageRequest,
) -> Result<RegisterImageResult, Ec2Error> {
    let architecture = input.architecture.clone().unwrap_or_else(|| "i386".into());
    let virtualization = input
        .virtualization_type
        .clone()
        .unwrap_or_else(|| "paravirtual".into());
    let root = input.root_device_name.clone().unwrap_or_default();
    let tag_list = tags::from_specifications(input.tag_specifications.clone(), "image")?;
    let s = scope(ctx);
    let id = new_id("ami");
    let now = k.now_ms();
    k.store
        .write(!ctx.dry_run, |tx| {
            let maps = mappings(
                tx,
                s,
                input.block_device_mappings.clone().unwrap_or_default(),
            )?;
            if !maps.iter().any(|m| {
                m.device_name == root && m.ebs.as_ref().is_some_and(|e| e.snapshot_id.is_some())
            }) {
                return Err(Fail(bad_mapping(format!(
                    "The root device {root} must have a block device mapping with an EBS snapshot."
                ))));
            }
            check_unique(tx, s, &input.name)?;
            let rec = ImageRecord {
                id: id.clone(),
                name: input.name.clone(),
                description: input.description.clone(),
                architecture: architecture.clone(),
                root_device_name: root.clone(),
                virtualization_type: virtualization.clone(),
                ena_support: input.ena_support == Some(true),
                sriov_net_support: input.sriov_net_support.clone(),
                boot_mode: input.boot_mode.clone(),
                imds_support: input.imds_support.clone(),
                tpm_support: input.tpm_support.clone(),
                create_ms: now,
                mappings: maps,
                launch: Default::default(),
                source_instance_id: None,
                source_image: None,
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "image", &tag_list)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    Ok(RegisterImageResult { image_id: Some(id) })
}

pub fn deregister(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeregisterImageRequest,
) -> Result<DeregisterImageResult, Ec2Error> {
    let id = &input.image_id;
    let s = scope(ctx);
    let drop_snaps = input.delete_associated_snapshots == Some(true);
    let (results, gone) = k
        .store
        .write(!ctx.dry_run, |tx| {
            let img = crate::ami_sharing::owned(tx, s, id, k.options.moto_compat)?;
            tx.delete::<ImageRecord>(s, id)?;
            tx.insert(
                s,
                &crate::records::image::DeregisteredImage {
                    id: id.clone(),
                    at_ms: k.now_ms(),
                },
            )?;
            crate::sharing::regrant(tx, s, id, &img.launch, &Default::default())?;
            let mut results = Vec::new();
            let mut gone = Vec::new();
            if drop_snaps {
                for snap in img.snapshots() {
                    let code = if user_of(tx, s, snap)?.is_some() {
                        "skipped"
                    } else if crate::snapshots::remove(k, tx, s, snap, !ctx.dry_run)? {
                        gone.push(snap.to_string());
                        "success"
                    } else {
                        "client-error"
                    };
                    results.push(DeleteSnapshotReturnCode {
                        snapshot_id: Some(snap.to_string()),
                        return_code: Some(code.into()),
                    });
                }
            }
            Ok((results, gone))
        })
        .map_err(|f: Fail| f.0)?;
    if !ctx.dry_run {
        for snap in &gone {
            crate::host::delete_file(k, snap);
        }
    }
    Ok(DeregisterImageResult {
        r#return: Some(true),
        delete_snapshot_results: drop_snaps.then_some(results),
    })
}

/// Images the caller may see: its own, with their tags; and other accounts' images shared
/// with it or public, with their owners (and no tags: tags stay with their account).
#[allow(clippy::type_complexity)]
pub fn listed(
    k: &Kumo,
    ctx: &RequestContext,
) -> Result<(Vec<Tagged<ImageRecord>>, Vec<(String, Tagged<ImageRecord>)>), Ec2Error> {
    k.store
        .read(|v| {
            let s = scope(ctx);
            let all: Vec<ImageRecord> = v.list(s, &Query::default())?;
            let own = tags::attach(v, s, all)?;
            let shared = crate::sharing::shared_with::<ImageRecord, _>(v, s, "ami", true, true)?
                .into_iter()
                .map(|(owner, item)| {
                    (
                        owner,
                        Tagged {
                            item,
                            tags: Vec::new(),
                        },
                    )
                })
                .collect();
            Ok((own, shared))
        })
        .map_err(|f: Fail| f.0)
}

/// An image is `pending` for the transition delay after it is registered, then `available`.
pub fn wire(k: &Kumo, owner: &str, t: &Tagged<ImageRecord>) -> Image {
    let i = &t.item;
    let state = if k.now_ms() < i.create_ms + k.options.transition_ms {
        "pending"
    } else {
        "available"
    };
    Image {
        image_id: Some(i.id.clone()),
        name: Some(i.name.clone()),
        description: i.description.clone(),
        owner_id: Some(owner.to_string()),
        architecture: Some(i.architecture.clone()),
        image_location: Some(format!("{owner}/{}", i.name)),
        state: Some(state.into()),
        public: Some(i.launch.public),
        image_type: Some("machine".into()),
        root_device_name: Some(i.root_device_name.clone()),
        root_device_type: Some("ebs".into()),
        virtualization_type: Some(i.virtualization_type.clone()),
        hypervisor: Some("xen".into()),
        ena_support: Some(i.ena_support),
        sriov_net_support: i.sriov_net_support.clone(),
        boot_mode: i.boot_mode.clone(),
        imds_support: i.imds_support.clone(),
        tpm_support: i.tpm_support.clone(),
        creation_date: Some(DateTime(i.create_ms).to_iso8601()),
        source_instance_id: i.source_instance_id.clone(),
        source_image_id: i.source_image.as_ref().map(|(id, _)| id.clone()),
        source_image_region: i.source_image.as_ref().map(|(_, r)| r.clone()),
        platform_details: Some("Linux/UNIX".into()),
        usage_operation: Some("RunInstances".into()),
        block_device_mappings: Some(
            i.mappings
                .iter()
                .map(|m| BlockDeviceMapping {
                    device_name: Some(m.device_name.clone()),
                    virtual_name: m.virtual_name.clone(),
                    no_device: m.no_device.then(String::new),
                    ebs: m.ebs.as_ref().map(|e| EbsBlockDevice {
                        snapshot_id: e.snapshot_id.clone(),
                        volume_size: Some(e.volume_size),
                        volume_type: Some(e.volume_type.clone()),
                        iops: e.iops,
                        throughput: e.throughput,
                        delete_on_termination: Some(e.delete_on_termination),
                        encrypted: Some(e.encrypted),
                        ..EbsBlockDevice::default()
                    }),
                })
                .collect(),
        ),
        product_codes: Some(Vec::new()),
        tags: Some(tags::wire(&t.tags)),
        ..Image::default()
    }
}

/// The devices a CreateImage leaves out of the image: Kumo takes only NoDevice mappings.
fn left_out(input: &CreateImageRequest) -> Result<Vec<String>, Ec2Error> {
    let mut skip: Vec<String> = Vec::new();
    for m in input.block_device_mappings.iter().flatten() {
        match (&m.device_name, m.no_device.is_some()) {
            (Some(d), true) => skip.push(d.trim_start_matches("/dev/").to_string()),
            _ => {
                return Err(Ec2Error::new(
                    "Unsupported",
                    "Kumo's CreateImage takes NoDevice mappings only (to leave a volume out of the image).",
                ))
            }
        }
    }
    Ok(skip)
}

/// CreateImage, before any lookup: the name, regional snapshots, the tags and the mappings.
/// The instance (the caller's, running or stopped, EBS-backed) and the name's uniqueness
/// follow, and only then is its guest halted.
impl Checks for CreateImageRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        check_name(&self.name)?;
        if self
            .snapshot_location
            .as_deref()
            .is_some_and(|l| l != "regional")
        {
            return Err(Ec2Error::new(
                "Unsupported",
                "Kumo has no Outposts or Local Zones: image snapshots are regional.",
            ));
        }
        image_and_snapshot_tags(self.tag_specifications.as_deref())?;
        left_out(self).map(drop)
    }
}

/// The caller's instance that CreateImage images: running or stopped, and EBS-backed.
fn imageable<V: kumo_store::Read>(
    k: &Kumo,
    v: &V,
    s: kumo_store::Scope,
    id: &str,
) -> Result<crate::records::instance::InstanceRecord, Fail> {
    let r = crate::repo::instance::load(k, v, s, &[id.to_string()])?.remove(0);
    use kumo_model::lifecycle::State;
    if !matches!(r.state(), State::Running | State::Stopped) {
        return Err(Fail(Ec2Error::new(
            "IncorrectInstanceState",
            format!(
                "Instance '{}' is not in a state from which it can be imaged.",
                r.id
            ),
        )));
    }
    if r.root_device_type != "ebs" {
        return Err(Fail(Ec2Error::new(
            "InvalidParameterValue",
            format!(
                "Instance '{}' is instance-store backed: CreateImage needs an EBS-backed instance.",
                r.id
            ),
        )));
    }
    Ok(r)
}

/// CreateImage: snapshots every EBS volume attached to an instance (less the request's
/// `NoDevice` mappings) in one transaction, and registers an image of them. Under a real
/// driver the guest is shut down for it and booted again unless `NoReboot`; under the null
/// driver no guest writes to the volumes, so the snapshots are consistent either way.
pub fn create_from_instance(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateImageRequest,
) -> Result<CreateImageResult, Ec2Error> {
    let (image_tags, snap_tags) = image_and_snapshot_tags(input.tag_specifications.as_deref())?;
    let skip = left_out(&input)?;
    let s = scope(ctx);
    let now = k.now_ms();
    let delay = k.options.transition_ms;
    let id = new_id("ami");
    // The instance is the caller's and can be imaged, and the name is free, before its guest
    // is touched: a guest is found by its id alone, and a refused call must not reboot it.
    k.store
        .read(|v| {
            imageable(k, v, s, &input.instance_id)?;
            check_unique(v, s, &input.name)
        })
        .map_err(|f| f.0)?;
    // Without NoReboot the guest is shut down cleanly first, so its file systems are
    // consistent in the image, and boots again after (AWS's reboot).
    let reboot = input.no_reboot != Some(true)
        && !ctx.dry_run
        && crate::host::halt_for_image(k, &input.instance_id);
    let frozen = k
        .store
        .write(!ctx.dry_run, |tx| {
            let r = imageable(k, tx, s, &input.instance_id)?;
            check_unique(tx, s, &input.name)?;
            let mut maps = Vec::new();
            let mut frozen = Vec::new();
            for mut v in crate::repo::volume::attached_to(tx, s, &r.id, (now, delay))? {
                let Some(a) = v
                    .attachments
                    .iter()
                    .find(|a| a.instance_id == r.id)
                    .cloned()
                else {
                    continue;
                };
                if skip.contains(&a.device.trim_start_matches("/dev/").to_string()) {
                    continue;
                }
                let description = format!("Created by CreateImage({}) for {id}", r.id);
                let snap =
                    crate::snapshots::record(tx, s, &mut v, new_id("snap"), description, now)?;
                tags::put_all(tx, s, &snap.id, "snapshot", &snap_tags)?;
                maps.push(MappingRecord {
                    device_name: a.device.clone(),
                    virtual_name: None,
                    no_device: false,
                    ebs: Some(EbsRecord {
                        snapshot_id: Some(snap.id.clone()),
                        volume_size: v.size,
                        volume_type: v.volume_type.clone(),
                        iops: v.iops,
                        throughput: v.throughput,
                        delete_on_termination: a.delete_on_termination,
                        encrypted: v.encrypted,
                    }),
                });
                frozen.push(snap);
            }
            if !maps.iter().any(|m| m.device_name == r.root_device_name) {
                return Err(Fail(bad_mapping(format!(
                    "The instance '{}' has no volume at its root device {}: an image needs one.",
                    r.id, r.root_device_name
                ))));
            }
            maps.sort_by(|a, b| {
                (a.device_name != r.root_device_name, &a.device_name)
                    .cmp(&(b.device_name != r.root_device_name, &b.device_name))
            });
            let rec = ImageRecord {
                id: id.clone(),
                name: input.name.clone(),
                description: input.description.clone(),
                architecture: r.architecture.clone(),
                root_device_name: r.root_device_name.clone(),
                virtualization_type: crate::instances::virtualization_type(&r).into(),
                ena_support: r.ena_support,
                sriov_net_support: Some("simple".into()),
                boot_mode: Some(r.boot_mode.clone()),
                imds_support: (r.http_tokens == "required").then(|| "v2.0".into()),
                tpm_support: None,
                create_ms: now,
                mappings: maps,
                launch: Default::default(),
                source_instance_id: Some(r.id.clone()),
                source_image: None,
            };
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "image", &image_tags)?;
            crate::host::freeze_files(k, !ctx.dry_run, &frozen)?;
            Ok(frozen.len())
        })
        .map_err(|f: Fail| f.0);
    if reboot {
        crate::flows::boot::boot(k, ctx, std::slice::from_ref(&input.instance_id));
    }
    let frozen = frozen?;
    tracing::info!(image = %id, snapshots = frozen, "image created from instance");
    Ok(CreateImageResult { image_id: Some(id) })
}

/// `1566308778174` as AWS writes it in copied snapshots' descriptions: `1,566,308,778,174`.
fn with_commas(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
