//! DescribeInstanceTypes and DescribeInstanceTypeOfferings, answered from the catalog in
//! `kumo-model`.

use crate::core::error::rule;
use crate::core::filters::filters;
use crate::core::paging;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::catalog;
use kumo_model::filter::{Filterable, Filters};
use std::sync::OnceLock;

/// The catalog, parsed once into the wire's own `InstanceTypeInfo`, sorted by name.
pub fn catalog() -> &'static [InstanceTypeInfo] {
    static CATALOG: OnceLock<Vec<InstanceTypeInfo>> = OnceLock::new();
    CATALOG.get_or_init(
        || match serde_json::from_str(catalog::INSTANCE_TYPES_JSON) {
            Ok(v) => v,
            Err(e) => {
                // The catalog is compiled in; a unit test proves it parses.
                tracing::error!(error = %e, "the instance-type catalog does not parse");
                Vec::new()
            }
        },
    )
}

pub fn find(name: &str) -> Option<&'static InstanceTypeInfo> {
    let c = catalog();
    c.binary_search_by(|t| t.instance_type.as_deref().unwrap_or("").cmp(name))
        .ok()
        .map(|i| &c[i])
}

/// The names of the types offered anywhere in `region` (all types when the catalog has no
/// offering data for it).
fn offered_in_region(region: &str) -> Option<std::collections::BTreeSet<&'static str>> {
    catalog::offerings(region)
        .map(|zones| zones.iter().flat_map(|(_, t)| t.iter().copied()).collect())
}

fn b(v: Option<bool>) -> Option<&'static str> {
    v.map(|v| if v { "true" } else { "false" })
}

struct TypeView<'a>(&'a InstanceTypeInfo);

/// Where a filter's values go: one, if there is one, or each of a list.
struct Out<'a>(&'a mut dyn FnMut(&str));

impl Out<'_> {
    fn s(&mut self, v: Option<&str>) {
        if let Some(v) = v {
            (self.0)(v)
        }
    }

    fn list(&mut self, v: Option<&Vec<String>>) {
        for x in v.into_iter().flatten() {
            (self.0)(x)
        }
    }
}

impl Filterable for TypeView<'_> {
    fn field(&self, name: &str, out: &mut dyn FnMut(&str)) {
        let t = self.0;
        if name.starts_with("ebs-info.") {
            ebs_field(t, name, out)
        } else if name.starts_with("network-info.") {
            network_field(t, name, out)
        } else if name.starts_with("instance-storage-info.") {
            storage_field(t, name, out)
        } else if name.starts_with("vcpu-info.")
            || name.starts_with("processor-info.")
            || name.starts_with("memory-info.")
        {
            cpu_field(t, name, out)
        } else {
            type_field(t, name, out)
        }
    }
}

/// The type's own filters.
fn type_field(t: &InstanceTypeInfo, name: &str, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    match name {
        "auto-recovery-supported" => o.s(b(t.auto_recovery_supported)),
        "bare-metal" => o.s(b(t.bare_metal)),
        "burstable-performance-supported" => o.s(b(t.burstable_performance_supported)),
        "current-generation" => o.s(b(t.current_generation)),
        "dedicated-hosts-supported" => o.s(b(t.dedicated_hosts_supported)),
        "free-tier-eligible" => o.s(b(t.free_tier_eligible)),
        "hibernation-supported" => o.s(b(t.hibernation_supported)),
        "instance-storage-supported" => o.s(b(t.instance_storage_supported)),
        "hypervisor" => o.s(t.hypervisor.as_deref()),
        "instance-type" => o.s(t.instance_type.as_deref()),
        "nitro-enclaves-support" => o.s(t.nitro_enclaves_support.as_deref()),
        "nitro-tpm-support" => o.s(t.nitro_tpm_support.as_deref()),
        "reboot-migration-support" => o.s(t.reboot_migration_support.as_deref()),
        "nitro-tpm-info.supported-versions" => o.list(
            t.nitro_tpm_info
                .as_ref()
                .and_then(|n| n.supported_versions.as_ref()),
        ),
        "supported-boot-mode" => o.list(t.supported_boot_modes.as_ref()),
        "supported-root-device-type" => o.list(t.supported_root_device_types.as_ref()),
        "supported-usage-class" => o.list(t.supported_usage_classes.as_ref()),
        "supported-virtualization-type" => o.list(t.supported_virtualization_types.as_ref()),
        _ => {}
    }
}

/// `vcpu-info.*`, `processor-info.*` and `memory-info.*`.
fn cpu_field(t: &InstanceTypeInfo, name: &str, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let vcpu = t.v_cpu_info.as_ref();
    let cpu = t.processor_info.as_ref();
    match name {
        "memory-info.size-in-mib" => o.s((t
            .memory_info
            .as_ref()
            .and_then(|m| m.size_in_mi_b)
            .map(|v| v.to_string()))
        .as_deref()),
        "processor-info.supported-architecture" => {
            o.list(cpu.and_then(|c| c.supported_architectures.as_ref()))
        }
        "processor-info.supported-features" => {
            o.list(cpu.and_then(|c| c.supported_features.as_ref()))
        }
        "processor-info.sustained-clock-speed-in-ghz" => o.s(cpu
            .and_then(|c| c.sustained_clock_speed_in_ghz)
            .map(|v| v.to_string())
            .as_deref()),
        "vcpu-info.default-vcpus" => o.s(vcpu
            .and_then(|v| v.default_v_cpus)
            .map(|v| v.to_string())
            .as_deref()),
        "vcpu-info.default-cores" => o.s(vcpu
            .and_then(|v| v.default_cores)
            .map(|v| v.to_string())
            .as_deref()),
        "vcpu-info.default-threads-per-core" => o.s(vcpu
            .and_then(|v| v.default_threads_per_core)
            .map(|v| v.to_string())
            .as_deref()),
        "vcpu-info.valid-cores" => {
            for c in vcpu
                .and_then(|v| v.valid_cores.as_ref())
                .into_iter()
                .flatten()
            {
                o.s(Some(&c.to_string()));
            }
        }
        "vcpu-info.valid-threads-per-core" => {
            for c in vcpu
                .and_then(|v| v.valid_threads_per_core.as_ref())
                .into_iter()
                .flatten()
            {
                o.s(Some(&c.to_string()));
            }
        }
        _ => {}
    }
}

/// `ebs-info.*`.
fn ebs_field(t: &InstanceTypeInfo, name: &str, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let ebs = t.ebs_info.as_ref();
    let opt = ebs.and_then(|e| e.ebs_optimized_info.as_ref());
    match name {
        "ebs-info.attachment-limit-type" => {
            o.s(ebs.and_then(|e| e.attachment_limit_type.as_deref()))
        }
        "ebs-info.maximum-ebs-attachments" => o.s(ebs
            .and_then(|e| e.maximum_ebs_attachments)
            .map(|v| v.to_string())
            .as_deref()),
        "ebs-info.ebs-optimized-support" => {
            o.s(ebs.and_then(|e| e.ebs_optimized_support.as_deref()))
        }
        "ebs-info.encryption-support" => o.s(ebs.and_then(|e| e.encryption_support.as_deref())),
        "ebs-info.nvme-support" => o.s(ebs.and_then(|e| e.nvme_support.as_deref())),
        "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps" => o.s(opt
            .and_then(|o| o.baseline_bandwidth_in_mbps)
            .map(|v| v.to_string())
            .as_deref()),
        "ebs-info.ebs-optimized-info.baseline-iops" => o.s(opt
            .and_then(|o| o.baseline_iops)
            .map(|v| v.to_string())
            .as_deref()),
        "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps" => o.s(opt
            .and_then(|o| o.baseline_throughput_in_m_bps)
            .map(|v| v.to_string())
            .as_deref()),
        "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps" => o.s(opt
            .and_then(|o| o.maximum_bandwidth_in_mbps)
            .map(|v| v.to_string())
            .as_deref()),
        "ebs-info.ebs-optimized-info.maximum-iops" => o.s(opt
            .and_then(|o| o.maximum_iops)
            .map(|v| v.to_string())
            .as_deref()),
        "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps" => o.s(opt
            .and_then(|o| o.maximum_throughput_in_m_bps)
            .map(|v| v.to_string())
            .as_deref()),
        _ => {}
    }
}

/// `instance-storage-info.*`.
fn storage_field(t: &InstanceTypeInfo, name: &str, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let store = t.instance_storage_info.as_ref();
    match name {
        "instance-storage-info.total-size-in-gb" => o.s(store
            .and_then(|i| i.total_size_in_gb)
            .map(|v| v.to_string())
            .as_deref()),
        "instance-storage-info.nvme-support" => o.s(store.and_then(|i| i.nvme_support.as_deref())),
        "instance-storage-info.encryption-support" => {
            o.s(store.and_then(|i| i.encryption_support.as_deref()))
        }
        "instance-storage-info.disk.count"
        | "instance-storage-info.disk.size-in-gb"
        | "instance-storage-info.disk.type" => {
            for d in store.and_then(|i| i.disks.as_ref()).into_iter().flatten() {
                let v = match name {
                    "instance-storage-info.disk.count" => d.count.map(|v| v.to_string()),
                    "instance-storage-info.disk.size-in-gb" => d.size_in_gb.map(|v| v.to_string()),
                    _ => d.r#type.clone(),
                };
                o.s(v.as_deref());
            }
        }
        _ => {}
    }
}

/// `network-info.*`.
fn network_field(t: &InstanceTypeInfo, name: &str, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let net = t.network_info.as_ref();
    match name {
        "network-info.efa-supported" => o.s(b(net.and_then(|n| n.efa_supported))),
        "network-info.ena-support" => o.s(net.and_then(|n| n.ena_support.as_deref())),
        "network-info.encryption-in-transit-supported" => {
            o.s(b(net.and_then(|n| n.encryption_in_transit_supported)))
        }
        "network-info.ipv6-supported" => o.s(b(net.and_then(|n| n.ipv6_supported))),
        "network-info.flexible-ena-queues-support" => {
            o.s(net.and_then(|n| n.flexible_ena_queues_support.as_deref()))
        }
        "network-info.ipv4-addresses-per-interface" => o.s(net
            .and_then(|n| n.ipv4_addresses_per_interface)
            .map(|v| v.to_string())
            .as_deref()),
        "network-info.ipv6-addresses-per-interface" => o.s(net
            .and_then(|n| n.ipv6_addresses_per_interface)
            .map(|v| v.to_string())
            .as_deref()),
        "network-info.maximum-network-cards" => o.s(net
            .and_then(|n| n.maximum_network_cards)
            .map(|v| v.to_string())
            .as_deref()),
        "network-info.maximum-network-interfaces" => o.s(net
            .and_then(|n| n.maximum_network_interfaces)
            .map(|v| v.to_string())
            .as_deref()),
        "network-info.network-performance" => {
            o.s(net.and_then(|n| n.network_performance.as_deref()))
        }
        "network-info.efa-info.maximum-efa-interfaces" => o.s(net
            .and_then(|n| n.efa_info.as_ref())
            .and_then(|e| e.maximum_efa_interfaces)
            .map(|v| v.to_string())
            .as_deref()),
        "network-info.bandwidth-weightings" => {
            o.list(net.and_then(|n| n.bandwidth_weightings.as_ref()))
        }
        _ => {}
    }
}

const TYPE_FILTERS: &[&str] = &[
    "auto-recovery-supported",
    "bare-metal",
    "burstable-performance-supported",
    "current-generation",
    "dedicated-hosts-supported",
    "ebs-info.attachment-limit-type",
    "ebs-info.maximum-ebs-attachments",
    "ebs-info.ebs-optimized-info.baseline-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.baseline-iops",
    "ebs-info.ebs-optimized-info.baseline-throughput-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-bandwidth-in-mbps",
    "ebs-info.ebs-optimized-info.maximum-iops",
    "ebs-info.ebs-optimized-info.maximum-throughput-in-mbps",
    "ebs-info.ebs-optimized-support",
    "ebs-info.encryption-support",
    "ebs-info.nvme-support",
    "free-tier-eligible",
    "hibernation-supported",
    "hypervisor",
    "instance-storage-info.disk.count",
    "instance-storage-info.disk.size-in-gb",
    "instance-storage-info.disk.type",
    "instance-storage-info.encryption-support",
    "instance-storage-info.nvme-support",
    "instance-storage-info.total-size-in-gb",
    "instance-storage-supported",
    "instance-type",
    "memory-info.size-in-mib",
    "network-info.bandwidth-weightings",
    "network-info.efa-info.maximum-efa-interfaces",
    "network-info.efa-supported",
    "network-info.ena-support",
    "network-info.flexible-ena-queues-support",
    "network-info.encryption-in-transit-supported",
    "network-info.ipv4-addresses-per-interface",
    "network-info.ipv6-addresses-per-interface",
    "network-info.ipv6-supported",
    "network-info.maximum-network-cards",
    "network-info.maximum-network-interfaces",
    "network-info.network-performance",
    "nitro-enclaves-support",
    "nitro-tpm-support",
    "nitro-tpm-info.supported-versions",
    "processor-info.supported-architecture",
    "processor-info.sustained-clock-speed-in-ghz",
    "processor-info.supported-features",
    "reboot-migration-support",
    "supported-boot-mode",
    "supported-root-device-type",
    "supported-usage-class",
    "supported-virtualization-type",
    "vcpu-info.default-cores",
    "vcpu-info.default-threads-per-core",
    "vcpu-info.default-vcpus",
    "vcpu-info.valid-cores",
    "vcpu-info.valid-threads-per-core",
];

const TYPES_OP: &str = "DescribeInstanceTypes";

pub fn describe_instance_types(
    ctx: &RequestContext,
    input: DescribeInstanceTypesRequest,
) -> Result<DescribeInstanceTypesResult, Ec2Error> {
    let fs = Filters::compile(&filters(input.filters), TYPE_FILTERS, false).map_err(rule)?;
    let limit = paging::max_results(input.max_results, 5, 100)?.unwrap_or(100);
    let after = paging::cursor(TYPES_OP, input.next_token.as_deref())?;
    let names = input.instance_types.unwrap_or_default();
    if names.len() > 100 {
        return Err(Ec2Error::invalid_value(
            "The maximum number of instance types is 100.",
        ));
    }
    let missing: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| find(n).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Ec2Error::new(
            "InvalidInstanceType",
            format!(
                "The following supplied instance types do not exist: [{}]",
                missing.join(", ")
            ),
        ));
    }
    let offered = offered_in_region(&ctx.region);
    let items: Vec<InstanceTypeInfo> = catalog()
        .iter()
        .filter(|t| {
            let n = t.instance_type.as_deref().unwrap_or("");
            (names.is_empty() || names.iter().any(|x| x == n))
                && after.as_deref().is_none_or(|a| n > a)
                && offered.as_ref().is_none_or(|o| o.contains(n))
                && fs.matches(&TypeView(t))
        })
        .take(limit + 1)
        .cloned()
        .collect();
    let (page, next) = paging::page(items, limit, TYPES_OP, |t| {
        t.instance_type.clone().unwrap_or_default()
    });
    Ok(DescribeInstanceTypesResult {
        instance_types: Some(page),
        next_token: next,
    })
}

struct OfferingView<'a>(&'a InstanceTypeOffering);

impl Filterable for OfferingView<'_> {
    fn field(&self, name: &str, out: &mut dyn FnMut(&str)) {
        let v = match name {
            "instance-type" => self.0.instance_type.as_deref(),
            "location" => self.0.location.as_deref(),
            _ => None,
        };
        if let Some(v) = v {
            out(v)
        }
    }
}

const OFFERINGS_OP: &str = "DescribeInstanceTypeOfferings";

pub fn describe_offerings(
    ctx: &RequestContext,
    input: DescribeInstanceTypeOfferingsRequest,
) -> Result<DescribeInstanceTypeOfferingsResult, Ec2Error> {
    let fs = Filters::compile(
        &filters(input.filters),
        &["instance-type", "location"],
        false,
    )
    .map_err(rule)?;
    let limit = paging::max_results(input.max_results, 5, 1000)?.unwrap_or(1000);
    let after = paging::cursor(OFFERINGS_OP, input.next_token.as_deref())?;
    let location_type = input.location_type.unwrap_or_else(|| "region".into());
    let zones = kumo_model::regions::get(&ctx.region)
        .map(|r| r.zones.as_slice())
        .unwrap_or(&[]);
    let offerings = catalog::offerings(&ctx.region)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    // (location, type) pairs in cursor order.
    let mut pairs: Vec<(String, &str)> = match location_type.as_str() {
        "region" => offered_in_region(&ctx.region)
            .unwrap_or_default()
            .into_iter()
            .map(|t| (ctx.region.clone(), t))
            .collect(),
        "availability-zone" | "availability-zone-id" => offerings
            .iter()
            .flat_map(|(zone, types)| {
                let loc = if location_type == "availability-zone" {
                    zone.to_string()
                } else {
                    zones
                        .iter()
                        .find(|z| z.name == *zone)
                        .map(|z| z.id.to_string())
                        .unwrap_or_default()
                };
                types.iter().map(move |t| (loc.clone(), *t))
            })
            .collect(),
        // Outposts are not part of Kumo's regions: none are offered there.
        _ => Vec::new(),
    };
    pairs.sort();
    let cursor_key = |loc: &str, t: &str| format!("{loc} {t}");
    let items: Vec<InstanceTypeOffering> = pairs
        .into_iter()
        .filter(|(loc, t)| {
            after
                .as_deref()
                .is_none_or(|a| cursor_key(loc, t).as_str() > a)
        })
        .map(|(loc, t)| InstanceTypeOffering {
            instance_type: Some(t.to_string()),
            location_type: Some(location_type.clone()),
            location: Some(loc),
        })
        .filter(|o| fs.matches(&OfferingView(o)))
        .take(limit + 1)
        .collect();
    let (page, next) = paging::page(items, limit, OFFERINGS_OP, |o| {
        cursor_key(
            o.location.as_deref().unwrap_or(""),
            o.instance_type.as_deref().unwrap_or(""),
        )
    });
    Ok(DescribeInstanceTypeOfferingsResult {
        instance_type_offerings: Some(page),
        next_token: next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_into_wire_types() {
        let c: Vec<InstanceTypeInfo> = serde_json::from_str(catalog::INSTANCE_TYPES_JSON).unwrap();
        assert!(c.len() > 1000);
        assert!(
            c.windows(2)
                .all(|w| w[0].instance_type < w[1].instance_type),
            "sorted"
        );
        let t = find("t3.micro").unwrap();
        assert_eq!(t.v_cpu_info.as_ref().unwrap().default_v_cpus, Some(2));
        assert_eq!(t.memory_info.as_ref().unwrap().size_in_mi_b, Some(1024));
    }
}
