//! The public base images every region has: realistic names, owners and aliases, so the
//! common look-ups (`DescribeImages --owners amazon --filters Name=name,…`, SSM's
//! `/aws/service/…` parameters) work. Their ids are stable: derived from region and name.

/// A public image of the built-in catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicImage {
    pub name: &'static str,
    pub description: &'static str,
    pub owner_id: &'static str,
    pub owner_alias: &'static str,
    /// `x86_64` or `arm64`.
    pub architecture: &'static str,
    pub root_device_name: &'static str,
    /// `ebs` or `instance-store`.
    pub root_device_type: &'static str,
    pub ena_support: bool,
    pub boot_mode: &'static str,
    pub creation_date: &'static str,
    /// SSM public parameters that name this image.
    pub ssm_parameters: &'static [&'static str],
}

const AMAZON: &str = "137112412989";
const CANONICAL: &str = "099720109477";
const DEBIAN: &str = "136693071363";

pub const CATALOG: &[PublicImage] = &[
    PublicImage {
        name: "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64",
        description: "Amazon Linux 2023 AMI 2023.6.20241212.0 x86_64 HVM kernel-6.1",
        owner_id: AMAZON,
        owner_alias: "amazon",
        architecture: "x86_64",
        root_device_name: "/dev/xvda",
        root_device_type: "ebs",
        ena_support: true,
        boot_mode: "uefi-preferred",
        creation_date: "2024-12-12T19:51:36.000Z",
        ssm_parameters: &[
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-x86_64",
        ],
    },
    PublicImage {
        name: "al2023-ami-2023.6.20241212.0-kernel-6.1-arm64",
        description: "Amazon Linux 2023 AMI 2023.6.20241212.0 arm64 HVM kernel-6.1",
        owner_id: AMAZON,
        owner_alias: "amazon",
        architecture: "arm64",
        root_device_name: "/dev/xvda",
        root_device_type: "ebs",
        ena_support: true,
        boot_mode: "uefi",
        creation_date: "2024-12-12T19:51:36.000Z",
        ssm_parameters: &[
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-6.1-arm64",
        ],
    },
    PublicImage {
        name: "amzn2-ami-hvm-2.0.20241217.0-x86_64-gp2",
        description: "Amazon Linux 2 AMI 2.0.20241217.0 x86_64 HVM gp2",
        owner_id: AMAZON,
        owner_alias: "amazon",
        architecture: "x86_64",
        root_device_name: "/dev/xvda",
        root_device_type: "ebs",
        ena_support: true,
        boot_mode: "legacy-bios",
        creation_date: "2024-12-17T22:34:11.000Z",
        ssm_parameters: &["/aws/service/ami-amazon-linux-latest/amzn2-ami-hvm-x86_64-gp2"],
    },
    PublicImage {
        name: "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20241206",
        description: "Canonical, Ubuntu, 24.04, amd64 noble image",
        owner_id: CANONICAL,
        owner_alias: "",
        architecture: "x86_64",
        root_device_name: "/dev/sda1",
        root_device_type: "ebs",
        ena_support: true,
        boot_mode: "uefi-preferred",
        creation_date: "2024-12-06T05:08:19.000Z",
        ssm_parameters: &[
            "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id",
        ],
    },
    PublicImage {
        name: "debian-12-amd64-20241201-1949",
        description: "Debian 12 (20241201-1949)",
        owner_id: DEBIAN,
        owner_alias: "",
        architecture: "x86_64",
        root_device_name: "/dev/xvda",
        root_device_type: "ebs",
        ena_support: true,
        boot_mode: "uefi-preferred",
        creation_date: "2024-12-01T20:13:04.000Z",
        ssm_parameters: &["/aws/service/debian/release/12/latest/amd64"],
    },
    // An old image without ENA: it cannot run on types that require ENA (Nitro types).
    PublicImage {
        name: "ubuntu/images/hvm-ssd/ubuntu-trusty-14.04-amd64-server-20150325",
        description: "Canonical, Ubuntu, 14.04 LTS, amd64 trusty image build on 2015-03-25",
        owner_id: CANONICAL,
        owner_alias: "",
        architecture: "x86_64",
        root_device_name: "/dev/sda1",
        root_device_type: "ebs",
        ena_support: false,
        boot_mode: "legacy-bios",
        creation_date: "2015-03-25T21:37:34.000Z",
        ssm_parameters: &[],
    },
    // An instance-store-backed image: its instances can reboot or terminate, never stop.
    PublicImage {
        name: "amzn-ami-minimal-hvm-2018.03.0.20231218.0-x86_64-s3",
        description: "Amazon Linux AMI 2018.03.0.20231218.0 x86_64 Minimal HVM s3",
        owner_id: AMAZON,
        owner_alias: "amazon",
        architecture: "x86_64",
        root_device_name: "/dev/sda1",
        root_device_type: "instance-store",
        ena_support: true,
        boot_mode: "legacy-bios",
        creation_date: "2023-12-18T20:03:41.000Z",
        ssm_parameters: &[],
    },
];

/// FNV-1a: a stable hash for stable ids (not for security).
fn fnv(seed: u64, data: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for b in data.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The image's id in a region: the same on every Kumo, every start.
pub fn image_id(region: &str, name: &str) -> String {
    let key = format!("{region}/{name}");
    let hex = format!("{:016x}{:016x}", fnv(1, &key), fnv(2, &key));
    format!("ami-{}", &hex[..17])
}

/// The public image with this id in this region.
pub fn by_id(region: &str, id: &str) -> Option<&'static PublicImage> {
    CATALOG.iter().find(|i| image_id(region, i.name) == id)
}

/// The image an SSM public parameter names.
pub fn by_parameter(name: &str) -> Option<&'static PublicImage> {
    CATALOG.iter().find(|i| i.ssm_parameters.contains(&name))
}

/// The root volume an EBS-backed catalog image launches with: (size in GiB, volume type).
/// Sizes are the images' published 8 GiB; the type is the one the image's name declares
/// (`gp3` for Amazon Linux 2023 and `hvm-ssd-gp3` Ubuntu images), gp2 otherwise.
pub fn root_volume(i: &PublicImage) -> Option<(i32, &'static str)> {
    if i.root_device_type != "ebs" {
        return None;
    }
    let gp3 = i.name.starts_with("al2023") || i.name.contains("gp3");
    Some((8, if gp3 { "gp3" } else { "gp2" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_volumes_follow_the_image() {
        let by = |n: &str| CATALOG.iter().find(|i| i.name.starts_with(n)).unwrap();
        assert_eq!(root_volume(by("al2023")), Some((8, "gp3")));
        assert_eq!(root_volume(by("amzn2-ami-hvm")), Some((8, "gp2")));
        assert_eq!(
            root_volume(by("ubuntu/images/hvm-ssd-gp3")),
            Some((8, "gp3"))
        );
        assert_eq!(root_volume(by("amzn-ami-minimal")), None);
    }

    #[test]
    fn ids_are_stable_and_regional() {
        let a = image_id("eu-west-1", CATALOG[0].name);
        assert_eq!(a, image_id("eu-west-1", CATALOG[0].name));
        assert_ne!(a, image_id("us-east-1", CATALOG[0].name));
        assert_eq!(a.len(), 4 + 17);
        assert_eq!(crate::ids::resource_type(&a), Some("image"));
        assert_eq!(by_id("eu-west-1", &a).unwrap().name, CATALOG[0].name);
        assert!(by_parameter(
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
        )
        .is_some());
    }
}
