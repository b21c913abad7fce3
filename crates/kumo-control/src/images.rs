//! DescribeImages over the built-in public catalog, and the SSM public parameters that name
//! its images.

use crate::error::rule;
use crate::paging;
use crate::regions::filters;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::{Filterable, Filters};
use kumo_model::images::{self, PublicImage};

struct ImageView<'a>(&'a PublicImage, &'a str);

impl Filterable for ImageView<'_> {
    fn field(&self, name: &str, out: &mut dyn FnMut(&str)) {
        let i = self.0;
        match name {
            "architecture" => out(i.architecture),
            "name" => out(i.name),
            "description" => out(i.description),
            "image-id" => out(self.1),
            "owner-id" => out(i.owner_id),
            "owner-alias" if !i.owner_alias.is_empty() => out(i.owner_alias),
            "state" => out("available"),
            "is-public" => out("true"),
            "image-type" => out("machine"),
            "root-device-type" => out(i.root_device_type),
            "root-device-name" => out(i.root_device_name),
            "virtualization-type" => out("hvm"),
            "hypervisor" => out("xen"),
            "ena-support" => out(if i.ena_support { "true" } else { "false" }),
            "platform-details" => out("Linux/UNIX"),
            "usage-operation" => out("RunInstances"),
            "creation-date" => out(i.creation_date),
            "boot-mode" => out(i.boot_mode),
            _ => {}
        }
    }
}

const IMAGE_FILTERS: &[&str] = &[
    "architecture",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.snapshot-id",
    "block-device-mapping.volume-size",
    "block-device-mapping.volume-type",
    "block-device-mapping.encrypted",
    "creation-date",
    "description",
    "ena-support",
    "free-tier-eligible",
    "hypervisor",
    "image-allowed",
    "image-id",
    "image-type",
    "is-public",
    "kernel-id",
    "manifest-location",
    "name",
    "owner-alias",
    "owner-id",
    "platform",
    "platform-details",
    "product-code",
    "product-code.type",
    "ramdisk-id",
    "root-device-name",
    "root-device-type",
    "source-image-id",
    "source-image-region",
    "source-instance-id",
    "state",
    "state-reason-code",
    "state-reason-message",
    "sriov-net-support",
    "usage-operation",
    "virtualization-type",
    "boot-mode",
];

fn wire(region: &str, i: &PublicImage) -> Image {
    Image {
        image_id: Some(images::image_id(region, i.name)),
        name: Some(i.name.into()),
        description: Some(i.description.into()),
        owner_id: Some(i.owner_id.into()),
        image_owner_alias: (!i.owner_alias.is_empty()).then(|| i.owner_alias.into()),
        architecture: Some(i.architecture.into()),
        image_location: Some(format!(
            "{}/{}",
            if i.owner_alias.is_empty() {
                i.owner_id
            } else {
                i.owner_alias
            },
            i.name
        )),
        state: Some("available".into()),
        public: Some(true),
        image_type: Some("machine".into()),
        root_device_name: Some(i.root_device_name.into()),
        root_device_type: Some(i.root_device_type.into()),
        virtualization_type: Some("hvm".into()),
        hypervisor: Some("xen".into()),
        ena_support: Some(i.ena_support),
        sriov_net_support: Some("simple".into()),
        boot_mode: Some(i.boot_mode.into()),
        creation_date: Some(i.creation_date.into()),
        platform_details: Some("Linux/UNIX".into()),
        usage_operation: Some("RunInstances".into()),
        block_device_mappings: Some(Vec::new()),
        product_codes: Some(Vec::new()),
        tags: Some(Vec::new()),
        ..Image::default()
    }
}

pub fn describe(
    ctx: &RequestContext,
    input: DescribeImagesRequest,
) -> Result<DescribeImagesResult, Ec2Error> {
    let fs = Filters::compile(&filters(input.filters), IMAGE_FILTERS, true).map_err(rule)?;
    let limit = paging::max_results(input.max_results, 5, 1000)?;
    let after = paging::cursor("DescribeImages", input.next_token.as_deref())?;
    let ids = input.image_ids.unwrap_or_default();
    for id in &ids {
        crate::instances::find_image(&ctx.region, id)?;
    }
    let owners = input.owners.unwrap_or_default();
    let owned_by = |i: &PublicImage| {
        owners.is_empty()
            || owners
                .iter()
                .any(|o| o == i.owner_id || (!i.owner_alias.is_empty() && o == i.owner_alias))
    };
    let mut out: Vec<Image> = images::CATALOG
        .iter()
        .filter(|i| owned_by(i))
        .filter(|i| ids.is_empty() || ids.contains(&images::image_id(&ctx.region, i.name)))
        .filter(|i| fs.matches(&ImageView(i, &images::image_id(&ctx.region, i.name))))
        .map(|i| wire(&ctx.region, i))
        .filter(|i| {
            after
                .as_deref()
                .is_none_or(|a| i.image_id.as_deref().unwrap_or("") > a)
        })
        .collect();
    out.sort_by(|a, b| a.image_id.cmp(&b.image_id));
    let (page, next) = match limit {
        Some(l) => paging::page(out, l, "DescribeImages", |i| {
            i.image_id.clone().unwrap_or_default()
        }),
        None => (out, None),
    };
    Ok(DescribeImagesResult {
        images: Some(page),
        next_token: next,
    })
}

/// An SSM public parameter naming a catalog image: (name, value = image id).
pub fn ssm_parameter(region: &str, name: &str) -> Option<(String, String)> {
    images::by_parameter(name).map(|i| (name.to_string(), images::image_id(region, i.name)))
}
