//! The public base images every region has: realistic names, owners and aliases, so the
//! common look-ups (`DescribeImages --owners amazon --filters Name=name,…`, SSM's
//! `/aws/service/…` parameters) work. Their ids are stable: derived from region and name.
//!
//! Under `kumo serve --moto-compat` moto's public catalog is there too
//! ([`moto_catalog`]): moto's 44 images with moto's own ids, the same in every region, as
//! suites written against moto's server mode name them.

use std::sync::LazyLock;

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
    /// The image's id in every region, where the catalog fixes it (moto's); otherwise the id
    /// is derived from the region and the name ([`image_id`]).
    pub fixed_id: Option<&'static str>,
    /// `windows` for a Windows image, empty otherwise.
    pub platform: &'static str,
    /// `hvm` or `paravirtual`.
    pub virtualization_type: &'static str,
    /// The manifest location, where the catalog gives one; otherwise `<owner>/<name>`.
    pub location: Option<&'static str>,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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
        fixed_id: None,
        platform: "",
        virtualization_type: "hvm",
        location: None,
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

/// What AWS bills a platform under, as images and instances show it: (platform details,
/// usage operation). `windows`, or empty for Linux.
pub fn billing(platform: &str) -> (&'static str, &'static str) {
    if platform == "windows" {
        ("Windows", "RunInstances:0002")
    } else {
        ("Linux/UNIX", "RunInstances")
    }
}

/// The id of a public image in a region.
pub fn id_of(region: &str, i: &PublicImage) -> String {
    match i.fixed_id {
        Some(id) => id.to_string(),
        None => image_id(region, i.name),
    }
}

/// The public images: Kumo's catalog, and moto's too when `moto` is set.
pub fn catalog(moto: bool) -> impl Iterator<Item = &'static PublicImage> {
    let extra: &'static [PublicImage] = if moto { moto_catalog() } else { &[] };
    CATALOG.iter().chain(extra)
}

/// The public image with this id in this region (moto's catalog included when `moto` is
/// set).
pub fn by_id(region: &str, id: &str, moto: bool) -> Option<&'static PublicImage> {
    catalog(moto).find(|i| match i.fixed_id {
        Some(fixed) => fixed == id,
        None => image_id(region, i.name) == id,
    })
}

/// moto's public AMI catalog (`data/moto_amis.json`, moto's `amis.json` as moto ships it):
/// its ids, names, descriptions, owners, architectures, platforms, virtualization and root
/// device types. moto says nothing of a few things AWS always answers; Kumo gives them as
/// AWS has them for images of that kind: owner alias `amazon` (as moto does), ENA on HVM
/// images only, legacy BIOS for x86_64 and UEFI for arm64, and the date in the image's name
/// as its creation date (2017-10-13, the date most of the catalog carries, where the name
/// has none).
pub fn moto_catalog() -> &'static [PublicImage] {
    static MOTO: LazyLock<Vec<PublicImage>> = LazyLock::new(|| {
        let all: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../data/moto_amis.json")).unwrap_or_default();
        all.iter().filter_map(moto_image).collect()
    });
    &MOTO
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn moto_image(v: &serde_json::Value) -> Option<PublicImage> {
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("");
    let id = text("ami_id");
    if id.is_empty() {
        return None;
    }
    let virtualization = if text("virtualization_type") == "paravirtual" {
        "paravirtual"
    } else {
        "hvm"
    };
    let architecture = leak(text("architecture"));
    Some(PublicImage {
        name: leak(text("name")),
        description: leak(text("description")),
        owner_id: leak(text("owner_id")),
        owner_alias: "amazon",
        architecture,
        root_device_name: leak(text("root_device_name")),
        root_device_type: if text("root_device_type") == "instance-store" {
            "instance-store"
        } else {
            "ebs"
        },
        ena_support: virtualization == "hvm",
        boot_mode: if architecture == "arm64" {
            "uefi"
        } else {
            "legacy-bios"
        },
        creation_date: leak(&date_in_name(text("name"))),
        ssm_parameters: &[],
        fixed_id: Some(leak(id)),
        platform: if text("platform") == "windows" {
            "windows"
        } else {
            ""
        },
        virtualization_type: virtualization,
        location: Some(leak(text("image_location"))).filter(|l| !l.is_empty()),
    })
}

/// The date an image's name carries (`…-2017.10.13`, `…-20170727`), as an AWS timestamp.
fn date_in_name(name: &str) -> String {
    let b = name.as_bytes();
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    for i in 0..b.len() {
        if !(b[i] == b'2' && b.get(i + 1) == Some(&b'0')) {
            continue;
        }
        let (y, m, d) = if digits(i, 4)
            && b.get(i + 4) == Some(&b'.')
            && digits(i + 5, 2)
            && b.get(i + 7) == Some(&b'.')
            && digits(i + 8, 2)
        {
            (&name[i..i + 4], &name[i + 5..i + 7], &name[i + 8..i + 10])
        } else if digits(i, 8) {
            (&name[i..i + 4], &name[i + 4..i + 6], &name[i + 6..i + 8])
        } else {
            continue;
        };
        if ("01".."13").contains(&m) && ("01".."32").contains(&d) {
            return format!("{y}-{m}-{d}T00:00:00.000Z");
        }
    }
    "2017-10-13T00:00:00.000Z".to_string()
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
        assert_eq!(by_id("eu-west-1", &a, false).unwrap().name, CATALOG[0].name);
        assert!(by_parameter(
            "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
        )
        .is_some());
    }

    #[test]
    fn moto_catalog_has_motos_ids_in_every_region() {
        let moto = moto_catalog();
        assert_eq!(moto.len(), 44);
        for region in ["us-east-1", "eu-west-1", "ap-south-2"] {
            let i = by_id(region, "ami-12c6146b", true).unwrap();
            assert_eq!(id_of(region, i), "ami-12c6146b");
            assert!(by_id(region, "ami-ekswin", true).is_some());
            // Only with the flag.
            assert!(by_id(region, "ami-12c6146b", false).is_none());
        }
        let nano = by_id("eu-west-1", "ami-03cf127a", true).unwrap();
        assert_eq!(
            nano.name,
            "Windows_Server-2016-English-Nano-Base-2017.10.13"
        );
        assert_eq!(nano.owner_id, "801119661308");
        assert_eq!(nano.platform, "windows");
        assert_eq!(nano.creation_date, "2017-10-13T00:00:00.000Z");
        assert_eq!(nano.location, Some("amazon/getting-started"));
        let pv = by_id("eu-west-1", "ami-8104a4f8", true).unwrap();
        assert_eq!(
            (pv.virtualization_type, pv.ena_support),
            ("paravirtual", false)
        );
        let arm = by_id("eu-west-1", "ami-0e9271c829888680e", true).unwrap();
        assert_eq!((arm.architecture, arm.boot_mode), ("arm64", "uefi"));
        let store = by_id("eu-west-1", "ami-04681a1dbd79675b6", true).unwrap();
        assert_eq!(store.root_device_type, "instance-store");
        let xenial = moto.iter().find(|i| i.name.contains("xenial")).unwrap();
        assert_eq!(xenial.creation_date, "2017-07-21T00:00:00.000Z");
        // Kumo's own catalog is still there, and its ids still derive from the region.
        assert_eq!(catalog(true).count(), CATALOG.len() + 44);
        let own = id_of("eu-west-1", &CATALOG[0]);
        assert_eq!(
            by_id("eu-west-1", &own, true).unwrap().name,
            CATALOG[0].name
        );
    }
}
