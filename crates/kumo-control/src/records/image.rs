//! An own image's stored document: its traits, its block-device mappings, who may launch it.

use super::permissions::Permissions;
use kumo_store::{Index, Record};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub architecture: String,
    pub root_device_name: String,
    pub virtualization_type: String,
    pub ena_support: bool,
    pub sriov_net_support: Option<String>,
    pub boot_mode: Option<String>,
    pub imds_support: Option<String>,
    pub tpm_support: Option<String>,
    pub create_ms: i64,
    pub mappings: Vec<MappingRecord>,
    /// Who else may launch it.
    #[serde(default)]
    pub launch: Permissions,
    /// The instance CreateImage made it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_instance_id: Option<String>,
    /// The image and region CopyImage copied it from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_image: Option<(String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRecord {
    pub device_name: String,
    /// `ephemeralN` for an instance-store mapping.
    pub virtual_name: Option<String>,
    pub no_device: bool,
    pub ebs: Option<EbsRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EbsRecord {
    pub snapshot_id: Option<String>,
    pub volume_size: i32,
    pub volume_type: String,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub delete_on_termination: bool,
    pub encrypted: bool,
}

/// An image the account deregistered. AWS: "Recently deregistered images appear in the
/// returned results for a short interval and then return empty results. After all instances
/// that reference a deregistered AMI are terminated, specifying the ID of the image will
/// eventually return an error": DescribeImages by its id answers no image, not
/// `InvalidAMIID.NotFound`, while an instance launched from it lives and for an hour after.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeregisteredImage {
    pub id: String,
    pub at_ms: i64,
}

impl Record for DeregisteredImage {
    const KIND: &'static str = "deregistered-image";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Record for ImageRecord {
    const KIND: &'static str = "image";
    const VERSION: u32 = 1;
    fn id(&self) -> &str {
        &self.id
    }
    fn index(&self) -> Index {
        Index::default()
    }
}

impl ImageRecord {
    pub fn snapshots(&self) -> impl Iterator<Item = &str> {
        self.mappings
            .iter()
            .filter_map(|m| m.ebs.as_ref()?.snapshot_id.as_deref())
    }
}

/// What launching needs to know of an image, whichever kind it is.
#[derive(Debug, Clone)]
pub struct ImageTraits {
    pub architecture: String,
    /// `windows` for a Windows image (moto's catalog has them), empty otherwise.
    pub platform: String,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: String,
    pub root_device_name: String,
    pub root_device_type: String,
    pub ena_support: bool,
    pub boot_mode: String,
    /// The volumes the image launches with.
    pub mappings: Vec<crate::records::image::MappingRecord>,
    /// The account holding the mappings' snapshots, when not the caller's (a shared image).
    pub owner: Option<String>,
}
