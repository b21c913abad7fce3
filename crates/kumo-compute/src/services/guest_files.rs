//! Kumo's files for a guest's init, served beside its metadata (see
//! [`crate::Metadata::guest`]).

use crate::storage::qmp::serial;
use crate::{InstanceSpec, VolumeSpec};
use std::collections::BTreeMap;

/// Kumo's files for the guest (see [`crate::Metadata::guest`]), made once per boot: the
/// init's settings (the default user and the VPC's resolver), the script for `#cloud-config`
/// user data, each disk's EC2 names by serial, and the local certificate authority the guest
/// trusts (`ca.pem`, which signs the VPC interface endpoints' certificates).
pub(crate) fn guest_files(
    spec: &InstanceSpec,
    disks: &[VolumeSpec],
    ca: Option<&str>,
) -> BTreeMap<String, String> {
    // The VPC's DHCP options: its name servers and search domains, quoted for the shell.
    let dns: Vec<String> = spec
        .dhcp
        .resolvers(crate::host::net::vpc_dns(&spec.net.vpc_cidr))
        .iter()
        .map(|a| a.to_string())
        .collect();
    let search: String = spec
        .dhcp
        .search
        .join(" ")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ' '))
        .collect();
    let mut files = BTreeMap::new();
    if let Some(pem) = ca {
        files.insert("ca.pem".to_string(), pem.to_string());
    }
    let mut env = format!(
        "DEFAULT_USER={}\nDNS='{}'\nSEARCH='{search}'\n",
        spec.default_user,
        dns.join(" ")
    );
    // What the guest would read from the metadata at boot, when it can read it at all: the
    // init then asks the metadata service nothing it already has here.
    if spec.metadata.http_endpoint != "disabled" {
        let m = &spec.metadata.meta;
        let get = |k: &str| m.get(k).map(String::as_str).unwrap_or("");
        let mac = get("mac");
        let nic = |k: &str| get(&format!("network/interfaces/macs/{mac}/{k}")).to_string();
        let len = nic("subnet-ipv4-cidr-block")
            .split('/')
            .nth(1)
            .unwrap_or("")
            .to_string();
        let secondary: Vec<String> = nic("local-ipv4s")
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect();
        // Kumo's own values (ids, addresses), quoted for the shell all the same.
        let q = |v: &str| format!("'{}'", v.replace('\'', ""));
        env.push_str(&format!(
            "HOST_MD=1\nIID={}\nLOCAL_IP={}\nMAC={}\nCIDR_LEN={}\nSECONDARY={}\nUSER_DATA={}\n",
            q(get("instance-id")),
            q(get("local-ipv4")),
            q(mac),
            q(&len),
            q(&secondary.join(" ")),
            u8::from(
                spec.metadata
                    .user_data
                    .as_ref()
                    .is_some_and(|u| !u.is_empty())
            )
        ));
        if let Some(key) = m.get("public-keys/0/openssh-key") {
            files.insert("launch-key".to_string(), key.clone());
        }
    }
    files.insert("instance.env".to_string(), env);
    if let Some(ud) = spec.metadata.user_data.as_deref() {
        if ud.starts_with(b"#cloud-config") {
            let script = crate::services::cloudconfig::to_script(&String::from_utf8_lossy(ud))
                .unwrap_or_else(|e| {
                    format!(
                        "#!/bin/sh\necho '[kumo-init] {}'\n",
                        e.to_string().replace('\'', "")
                    )
                });
            files.insert("cloud-config.sh".to_string(), script);
        }
    }
    files.extend(spec.root.iter().chain(disks).map(dev_entry));
    files
}

/// A disk's entry among the guest files: `dev/<serial>` → its names (`nvme1n1 sdf`).
pub(crate) fn dev_entry(v: &VolumeSpec) -> (String, String) {
    let names: Vec<&str> = std::iter::once(&v.device)
        .chain(v.alias.as_ref())
        .map(|d| d.trim_start_matches("/dev/"))
        .collect();
    (format!("dev/{}", serial(&v.volume_id)), names.join(" "))
}
