//! What a guest is to run: its [`InstanceSpec`] (image root, root volume data, type limits,
//! interface, volumes) and its metadata tree, as the instance metadata service serves it.

use crate::core::error::Fail;
use crate::host::{volume_spec, Compute};
use crate::records::instance::InstanceRecord;
use crate::records::key_pair::KeyPairRecord;
use crate::records::net::{EniRecord, SubnetRecord, VpcRecord};
use crate::records::volume::VolumeRecord;
use crate::repo::instance::Context;
use crate::Kumo;
use kumo_compute::{InstanceSpec, Metadata, NetSpec, Nic};
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Read, Scope};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The login user of an image, as its distribution names it.
pub(crate) fn default_user(image_name: &str) -> &'static str {
    let n = image_name.to_ascii_lowercase();
    if n.contains("ubuntu") {
        "ubuntu"
    } else if n.contains("debian") {
        "admin"
    } else {
        "ec2-user"
    }
}

pub(crate) fn image_name<V: Read>(v: &V, s: Scope, image_id: &str) -> Result<String, Fail> {
    // Any catalog: the instance launched, and moto's ids never look like Kumo's.
    if let Some(p) = kumo_model::images::by_id(s.region, image_id, true) {
        return Ok(p.name.to_string());
    }
    Ok(
        crate::sharing::owner_of::<crate::records::image::ImageRecord, _>(v, s, image_id)?
            .map(|(_, i)| i.name)
            .unwrap_or_default(),
    )
}

/// The IMDS tree of an instance.
pub(crate) fn metadata<V: Read>(
    v: &V,
    s: Scope,
    ctx: &RequestContext,
    r: &InstanceRecord,
    c: &Context,
) -> Result<(Metadata, NetSpec, Vec<Nic>), Fail> {
    let i = primary_interface(v, s, r, c)?;
    let others = other_interfaces(v, s, r, c)?;
    let mut m = BTreeMap::new();
    instance_meta(v, s, r, c, &i, &mut m)?;
    interface_meta(ctx, c, &i, 0, &mut m);
    for (index, o) in &others {
        interface_meta(ctx, c, o, *index, &mut m);
    }
    let user_data = r.user_data.as_ref().and_then(|u| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(u).ok()
    });
    let md = Metadata {
        meta: m,
        dynamic: identity(ctx, s, r, &i.primary),
        user_data,
        http_tokens: r.http_tokens.clone(),
        http_endpoint: r.http_endpoint.clone(),
        hop_limit: r.http_hop_limit.max(1) as u32,
        http_protocol_ipv6: r.http_protocol_ipv6 == "enabled",
        guest: Default::default(),
    };
    let nics = others
        .iter()
        .map(|(index, o)| Nic {
            device_index: *index,
            net: o.net_spec(),
        })
        .collect();
    Ok((md, i.net_spec(), nics))
}

/// The instance's primary interface, with its subnet, VPC, addresses and names.
struct Iface<'a> {
    eni: &'a EniRecord,
    subnet: SubnetRecord,
    vpc: VpcRecord,
    primary: String,
    secondary: Vec<String>,
    host: String,
    public: Option<String>,
}

impl Iface<'_> {
    /// What the VPC routes to the interface.
    fn net_spec(&self) -> NetSpec {
        NetSpec {
            vpc_id: self.vpc.id.clone(),
            vpc_cidr: self.vpc_cidr(),
            subnet_id: self.subnet.id.clone(),
            subnet_cidr: self.subnet.cidr.clone(),
            mac: self.eni.mac.clone(),
            private_ip: self.primary.clone(),
            secondary_ips: self.secondary.clone(),
            // IPv6 addresses are routed to the interface as /128 prefixes.
            prefixes: self
                .eni
                .prefixes
                .iter()
                .cloned()
                .chain(self.eni.ipv6.iter().map(|a| format!("{a}/128")))
                .chain(self.eni.ipv6_prefixes.iter().cloned())
                .collect(),
        }
    }

    fn vpc_cidr(&self) -> String {
        self.vpc
            .cidrs
            .first()
            .map(|c| c.cidr.clone())
            .unwrap_or_default()
    }
}

fn primary_interface<'a, V: Read>(
    v: &V,
    s: Scope,
    r: &'a InstanceRecord,
    c: &'a Context,
) -> Result<Iface<'a>, Fail> {
    let eni = c
        .enis_of(r)
        .find(|e| e.attachment.as_ref().is_some_and(|a| a.device_index == 0))
        .ok_or_else(|| Fail(Ec2Error::internal()))?;
    interface(v, s, r, c, eni)
}

/// The instance's interfaces attached besides the primary, by device index.
fn other_interfaces<'a, V: Read>(
    v: &V,
    s: Scope,
    r: &'a InstanceRecord,
    c: &'a Context,
) -> Result<Vec<(u32, Iface<'a>)>, Fail> {
    let mut out = Vec::new();
    for eni in c.enis_of(r) {
        let Some(a) = eni.attachment.as_ref().filter(|a| a.device_index > 0) else {
            continue;
        };
        out.push((a.device_index.max(0) as u32, interface(v, s, r, c, eni)?));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out)
}

fn interface<'a, V: Read>(
    v: &V,
    s: Scope,
    r: &'a InstanceRecord,
    c: &'a Context,
    eni: &'a EniRecord,
) -> Result<Iface<'a>, Fail> {
    let subnet: SubnetRecord = v
        .get(s, &eni.subnet_id)?
        .ok_or_else(|| Fail(Ec2Error::internal()))?;
    let vpc: VpcRecord = v
        .get(s, &eni.vpc_id)?
        .ok_or_else(|| Fail(Ec2Error::internal()))?;
    let primary = eni
        .addresses
        .iter()
        .find(|a| a.primary)
        .map(|a| a.addr.clone())
        .unwrap_or_default();
    let secondary: Vec<String> = eni
        .addresses
        .iter()
        .filter(|a| !a.primary)
        .map(|a| a.addr.clone())
        .collect();
    let is_primary = eni.attachment.as_ref().is_some_and(|a| a.device_index == 0);
    Ok(Iface {
        // The guest's host name and IMDS `hostname`/`local-hostname`: the resource name under
        // the resource-name host name type. Another interface has its own address's IP name.
        host: if is_primary {
            crate::repo::instance::instance_dns_name(s.region, r, &primary)
        } else {
            crate::repo::instance::private_dns_name(s.region, &primary)
        },
        // The instance's public address is its primary interface's; another interface has one
        // only through an Elastic IP on its primary address.
        public: if is_primary {
            c.public_ip(r)
        } else {
            crate::repo::address::eip_on(&c.eips, eni, &primary).map(|a| a.public_ip.clone())
        },
        eni,
        subnet,
        vpc,
        primary,
        secondary,
    })
}

/// `meta-data/…` of the instance itself: its image, type, names, placement, groups, public
/// address and launch key.
fn instance_meta<V: Read>(
    v: &V,
    s: Scope,
    r: &InstanceRecord,
    c: &Context,
    i: &Iface,
    m: &mut BTreeMap<String, String>,
) -> Result<(), Fail> {
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("ami-id", r.image_id.clone());
    put("ami-launch-index", r.launch_index.to_string());
    put("ami-manifest-path", "(unknown)".into());
    put(
        "block-device-mapping/ami",
        r.root_device_name.trim_start_matches("/dev/").into(),
    );
    put("block-device-mapping/root", r.root_device_name.clone());
    put("hostname", i.host.clone());
    put("local-hostname", i.host.clone());
    put("instance-action", "none".into());
    put("instance-id", r.id.clone());
    put("instance-life-cycle", "on-demand".into());
    put("instance-type", r.instance_type.clone());
    put("local-ipv4", i.primary.clone());
    // The primary interface's first IPv6 address; none, no path (AWS answers 404).
    if let Some(a) = i.eni.ipv6.first() {
        put("ipv6", a.clone());
    }
    put("mac", i.eni.mac.clone());
    put("placement/availability-zone", r.zone.clone());
    put("placement/availability-zone-id", r.zone_id.clone());
    put("placement/region", s.region.into());
    put("reservation-id", r.reservation_id.clone());
    put(
        "security-groups",
        c_group_names(c, &i.eni.groups).join("\n"),
    );
    put("services/domain", "amazonaws.com".into());
    put("services/partition", "aws".into());
    put("events/maintenance/scheduled", "[]".into());
    if let Some(p) = &i.public {
        put("public-ipv4", p.clone());
        put(
            "public-hostname",
            crate::repo::instance::public_dns(s.region, p),
        );
    }
    if let Some(name) = &r.key_name {
        if let Some(key) = v.get_by_name::<KeyPairRecord>(s, name)? {
            put("public-keys/", format!("0={name}"));
            put(
                "public-keys/0/openssh-key",
                key.public_key.trim().to_string(),
            );
        }
    }
    Ok(())
}

/// `meta-data/network/interfaces/macs/<mac>/…` of one of the instance's interfaces, at its
/// device index.
fn interface_meta(
    ctx: &RequestContext,
    c: &Context,
    i: &Iface,
    device: u32,
    m: &mut BTreeMap<String, String>,
) {
    let mac = format!("network/interfaces/macs/{}", i.eni.mac);
    let mut put = |k: &str, v: String| {
        m.insert(format!("{mac}/{k}"), v);
    };
    put("device-number", device.to_string());
    put("interface-id", i.eni.id.clone());
    put("local-hostname", i.host.clone());
    put(
        "local-ipv4s",
        std::iter::once(i.primary.clone())
            .chain(i.secondary.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    put("mac", i.eni.mac.clone());
    put("owner-id", ctx.account_id.clone());
    put("security-group-ids", i.eni.groups.join("\n"));
    put(
        "security-groups",
        c_group_names(c, &i.eni.groups).join("\n"),
    );
    put("subnet-id", i.subnet.id.clone());
    put("subnet-ipv4-cidr-block", i.subnet.cidr.clone());
    put("vpc-id", i.vpc.id.clone());
    put("vpc-ipv4-cidr-block", i.vpc_cidr());
    put(
        "vpc-ipv4-cidr-blocks",
        i.vpc
            .cidrs
            .iter()
            .map(|c| c.cidr.clone())
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if !i.eni.prefixes.is_empty() {
        put("ipv4-prefix", i.eni.prefixes.join("\n"));
    }
    if !i.eni.ipv6.is_empty() {
        put("ipv6s", i.eni.ipv6.join("\n"));
    }
    if !i.eni.ipv6_prefixes.is_empty() {
        put("ipv6-prefix", i.eni.ipv6_prefixes.join("\n"));
    }
    if let Some(b) = &i.subnet.ipv6 {
        put("subnet-ipv6-cidr-blocks", b.cidr.clone());
    }
    if !i.vpc.ipv6.is_empty() {
        put(
            "vpc-ipv6-cidr-blocks",
            i.vpc
                .ipv6
                .iter()
                .map(|c| c.cidr.clone())
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    if let Some(p) = &i.public {
        put("public-ipv4s", p.clone());
    }
}

/// `dynamic/instance-identity/document`.
fn identity(
    ctx: &RequestContext,
    s: Scope,
    r: &InstanceRecord,
    primary: &str,
) -> BTreeMap<String, String> {
    let identity = serde_json::json!({
        "accountId": ctx.account_id,
        "architecture": r.architecture,
        "availabilityZone": r.zone,
        "billingProducts": null,
        "devpayProductCodes": null,
        "marketplaceProductCodes": null,
        "imageId": r.image_id,
        "instanceId": r.id,
        "instanceType": r.instance_type,
        "kernelId": null,
        "pendingTime": kumo_ec2_wire::DateTime(r.launch_ms).to_iso8601(),
        "privateIp": primary,
        "ramdiskId": null,
        "region": s.region,
        "version": "2017-09-30",
    });
    let mut dynamic = BTreeMap::new();
    dynamic.insert(
        "instance-identity/document".to_string(),
        serde_json::to_string_pretty(&identity).unwrap_or_default(),
    );
    dynamic
}

pub(crate) fn c_group_names(c: &Context, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|g| c.names.get(g).cloned().unwrap_or_else(|| g.clone()))
        .collect()
}

/// An instance's root volume, if it has one attached.
pub(crate) fn root_volume<'a>(r: &InstanceRecord, c: &'a Context) -> Option<&'a VolumeRecord> {
    c.volumes.iter().find(|v| {
        v.attachments
            .iter()
            .any(|a| a.instance_id == r.id && a.device == r.root_device_name)
    })
}

/// Where an instance's root volume keeps its data under `ns` (the overlay's upper layer) and
/// `vm` (its disk): beside the volume's file.
pub(crate) fn root_data(k: &Kumo, r: &InstanceRecord, c: &Context) -> PathBuf {
    let root = root_volume(r, c)
        .map(|v| v.id.clone())
        .unwrap_or_else(|| r.id.clone());
    k.blocks.root_data(&root)
}

/// The spec of an instance, read in one snapshot.
pub(crate) fn spec(
    k: &Kumo,
    cm: &Compute,
    ctx: &RequestContext,
    id: &str,
) -> Result<InstanceSpec, Fail> {
    let s = crate::scope(ctx);
    k.store.read(|v| {
        let r: InstanceRecord = v.get(s, id)?.ok_or_else(|| Fail(Ec2Error::internal()))?;
        let name = image_name(v, s, &r.image_id)?;
        let c = crate::repo::instance::context(v, s, &[&r])?;
        let (md, net, interfaces) = metadata(v, s, ctx, &r, &c)?;
        let info = crate::instance_types::find(&r.instance_type);
        let vcpus = vcpus(&r);
        let memory = info
            .and_then(|i| i.memory_info.as_ref()?.size_in_mi_b)
            .unwrap_or(512)
            .max(64) as u64;
        let volumes = c
            .volumes
            .iter()
            .filter_map(|vol| {
                let a = vol.attachments.iter().find(|a| {
                    a.instance_id == r.id
                        && a.device != r.root_device_name
                        && a.state != crate::records::volume::AttachState::Detaching
                })?;
                Some(volume_spec(k, &r, vol, &a.device))
            })
            .collect();
        let root_vol = root_volume(&r, &c);
        // Nitro types show their instance store as NVMe disks (Xen types need ephemeral
        // mappings, which Kumo refuses at launch).
        let instance_store = info
            .filter(|i| i.hypervisor.as_deref().is_none_or(|h| h == "nitro"))
            .and_then(|i| i.instance_storage_info.as_ref()?.disks.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|d| {
                std::iter::repeat_n(
                    d.size_in_gb.unwrap_or(0).max(1) as u64,
                    d.count.unwrap_or(0).max(0) as usize,
                )
            })
            .collect();
        let root = root_vol.map(|v| {
            let mut spec = volume_spec(k, &r, v, &r.root_device_name);
            if spec.device.is_empty() {
                spec.device = "/dev/nvme0n1".into();
            }
            spec
        });
        Ok(InstanceSpec {
            instance_store,
            root,
            root_size_gib: root_vol.map(|v| v.size as u64).unwrap_or(0),
            volumes,
            id: r.id.clone(),
            image_root: cm.image_root.clone(),
            root_data: root_data(k, &r, &c),
            hostname: md.meta.get("local-hostname").cloned().unwrap_or_default(),
            default_user: default_user(&name).into(),
            vcpus,
            memory_mib: memory,
            net,
            metadata: md,
            interfaces,
            dhcp: dhcp_settings(v, s, &r.vpc_id)?,
        })
    })
}

/// What a VPC's DHCP options set gives its guests: the name servers (`AmazonProvidedDNS` as
/// given, for the driver to place), the search domains and the NTP servers. A VPC with no set
/// (`default`) gives none.
pub(crate) fn dhcp_settings<V: kumo_store::Read>(
    v: &V,
    s: kumo_store::Scope,
    vpc_id: &str,
) -> Result<kumo_compute::DhcpSettings, Fail> {
    let id = v
        .get::<VpcRecord>(s, vpc_id)?
        .map(|vpc| vpc.dhcp_options_id)
        .unwrap_or_default();
    let Some(d) = v.get::<crate::records::net::DhcpOptionsRecord>(s, &id)? else {
        return Ok(kumo_compute::DhcpSettings {
            explicit: true,
            ..Default::default()
        });
    };
    let get = |key: &str| -> Vec<String> {
        d.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok(kumo_compute::DhcpSettings {
        explicit: true,
        name_servers: get("domain-name-servers"),
        // Several names (us-east-1 takes a space-separated list) are several search domains.
        search: get("domain-name")
            .iter()
            .flat_map(|v| v.split_whitespace().map(str::to_string))
            .collect(),
        ntp_servers: get("ntp-servers"),
    })
}

/// An instance's vCPUs: its launch's CpuOptions, else its type's default.
pub(crate) fn vcpus(r: &InstanceRecord) -> u32 {
    r.cpu
        .map(|(cores, threads)| cores * threads)
        .or_else(|| {
            crate::instance_types::find(&r.instance_type)
                .and_then(|i| i.v_cpu_info.as_ref()?.default_v_cpus)
        })
        .unwrap_or(1)
        .max(1) as u32
}
