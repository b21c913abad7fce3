//! DescribeInstanceTypes and DescribeInstanceTypeOfferings, answered from the catalog in
//! `kumo-model`.

use crate::core::filters;
use crate::core::paging;
use kumo_ec2_wire::filters::{
    DescribeInstanceTypeOfferings as OfferF, DescribeInstanceTypes as TypeF,
};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::catalog;
use kumo_model::filter::Filterable;
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

/// Whether a type can run as a Dedicated Instance. AWS's burstable-instance guide lists
/// Dedicated Instances for T3 only, so T2, T3a and T4g cannot; AWS answers such a launch
/// with its generic `Unsupported`.
pub fn check_tenancy(instance_type: &str, tenancy: &str) -> Result<(), Ec2Error> {
    let family = instance_type.split('.').next().unwrap_or_default();
    if tenancy == "dedicated" && matches!(family, "t2" | "t3a" | "t4g") {
        return Err(Ec2Error::new(
            "Unsupported",
            "The requested configuration is currently not supported. Please check the documentation for supported configurations.",
        ));
    }
    Ok(())
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

impl Filterable<TypeF> for TypeView<'_> {
    fn field(&self, f: TypeF, out: &mut dyn FnMut(&str)) {
        let t = self.0;
        match f {
            TypeF::EbsInfoAttachmentLimitType
            | TypeF::EbsInfoEbsOptimizedInfoBaselineBandwidthInMbps
            | TypeF::EbsInfoEbsOptimizedInfoBaselineIops
            | TypeF::EbsInfoEbsOptimizedInfoBaselineThroughputInMbps
            | TypeF::EbsInfoEbsOptimizedInfoMaximumBandwidthInMbps
            | TypeF::EbsInfoEbsOptimizedInfoMaximumIops
            | TypeF::EbsInfoEbsOptimizedInfoMaximumThroughputInMbps
            | TypeF::EbsInfoEbsOptimizedSupport
            | TypeF::EbsInfoEncryptionSupport
            | TypeF::EbsInfoMaximumEbsAttachments
            | TypeF::EbsInfoNvmeSupport => ebs_field(t, f, out),
            TypeF::NetworkInfoBandwidthWeightings
            | TypeF::NetworkInfoEfaInfoMaximumEfaInterfaces
            | TypeF::NetworkInfoEfaSupported
            | TypeF::NetworkInfoEnaSupport
            | TypeF::NetworkInfoEncryptionInTransitSupported
            | TypeF::NetworkInfoFlexibleEnaQueuesSupport
            | TypeF::NetworkInfoIpv4AddressesPerInterface
            | TypeF::NetworkInfoIpv6AddressesPerInterface
            | TypeF::NetworkInfoIpv6Supported
            | TypeF::NetworkInfoMaximumNetworkCards
            | TypeF::NetworkInfoMaximumNetworkInterfaces
            | TypeF::NetworkInfoNetworkPerformance => network_field(t, f, out),
            TypeF::InstanceStorageInfoDiskCount
            | TypeF::InstanceStorageInfoDiskSizeInGb
            | TypeF::InstanceStorageInfoDiskType
            | TypeF::InstanceStorageInfoEncryptionSupport
            | TypeF::InstanceStorageInfoNvmeSupport
            | TypeF::InstanceStorageInfoTotalSizeInGb => storage_field(t, f, out),
            TypeF::MemoryInfoSizeInMib
            | TypeF::ProcessorInfoSupportedArchitecture
            | TypeF::ProcessorInfoSupportedFeatures
            | TypeF::ProcessorInfoSustainedClockSpeedInGhz
            | TypeF::VcpuInfoDefaultCores
            | TypeF::VcpuInfoDefaultThreadsPerCore
            | TypeF::VcpuInfoDefaultVcpus
            | TypeF::VcpuInfoValidCores
            | TypeF::VcpuInfoValidThreadsPerCore => cpu_field(t, f, out),
            TypeF::AutoRecoverySupported
            | TypeF::BareMetal
            | TypeF::BurstablePerformanceSupported
            | TypeF::CurrentGeneration
            | TypeF::DedicatedHostsSupported
            | TypeF::FreeTierEligible
            | TypeF::HibernationSupported
            | TypeF::Hypervisor
            | TypeF::InstanceStorageSupported
            | TypeF::InstanceType
            | TypeF::NitroEnclavesSupport
            | TypeF::NitroTpmInfoSupportedVersions
            | TypeF::NitroTpmSupport
            | TypeF::RebootMigrationSupport
            | TypeF::SupportedBootMode
            | TypeF::SupportedRootDeviceType
            | TypeF::SupportedUsageClass
            | TypeF::SupportedVirtualizationType => type_field(t, f, out),
        }
    }
}

/// The type's own filters.
fn type_field(t: &InstanceTypeInfo, f: TypeF, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    match f {
        TypeF::AutoRecoverySupported => o.s(b(t.auto_recovery_supported)),
        TypeF::BareMetal => o.s(b(t.bare_metal)),
        TypeF::BurstablePerformanceSupported => o.s(b(t.burstable_performance_supported)),
        TypeF::CurrentGeneration => o.s(b(t.current_generation)),
        TypeF::DedicatedHostsSupported => o.s(b(t.dedicated_hosts_supported)),
        TypeF::FreeTierEligible => o.s(b(t.free_tier_eligible)),
        TypeF::HibernationSupported => o.s(b(t.hibernation_supported)),
        TypeF::InstanceStorageSupported => o.s(b(t.instance_storage_supported)),
        TypeF::Hypervisor => o.s(t.hypervisor.as_deref()),
        TypeF::InstanceType => o.s(t.instance_type.as_deref()),
        TypeF::NitroEnclavesSupport => o.s(t.nitro_enclaves_support.as_deref()),
        TypeF::NitroTpmSupport => o.s(t.nitro_tpm_support.as_deref()),
        TypeF::RebootMigrationSupport => o.s(t.reboot_migration_support.as_deref()),
        TypeF::NitroTpmInfoSupportedVersions => o.list(
            t.nitro_tpm_info
                .as_ref()
                .and_then(|n| n.supported_versions.as_ref()),
        ),
        TypeF::SupportedBootMode => o.list(t.supported_boot_modes.as_ref()),
        TypeF::SupportedRootDeviceType => o.list(t.supported_root_device_types.as_ref()),
        TypeF::SupportedUsageClass => o.list(t.supported_usage_classes.as_ref()),
        TypeF::SupportedVirtualizationType => o.list(t.supported_virtualization_types.as_ref()),
        _ => {}
    }
}

/// `vcpu-info.*`, `processor-info.*` and `memory-info.*`.
fn cpu_field(t: &InstanceTypeInfo, f: TypeF, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let vcpu = t.v_cpu_info.as_ref();
    let cpu = t.processor_info.as_ref();
    match f {
        TypeF::MemoryInfoSizeInMib => o.s((t
            .memory_info
            .as_ref()
            .and_then(|m| m.size_in_mi_b)
            .map(|v| v.to_string()))
        .as_deref()),
        TypeF::ProcessorInfoSupportedArchitecture => {
            o.list(cpu.and_then(|c| c.supported_architectures.as_ref()))
        }
        TypeF::ProcessorInfoSupportedFeatures => {
            o.list(cpu.and_then(|c| c.supported_features.as_ref()))
        }
        TypeF::ProcessorInfoSustainedClockSpeedInGhz => o.s(cpu
            .and_then(|c| c.sustained_clock_speed_in_ghz)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::VcpuInfoDefaultVcpus => o.s(vcpu
            .and_then(|v| v.default_v_cpus)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::VcpuInfoDefaultCores => o.s(vcpu
            .and_then(|v| v.default_cores)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::VcpuInfoDefaultThreadsPerCore => o.s(vcpu
            .and_then(|v| v.default_threads_per_core)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::VcpuInfoValidCores => {
            for c in vcpu
                .and_then(|v| v.valid_cores.as_ref())
                .into_iter()
                .flatten()
            {
                o.s(Some(&c.to_string()));
            }
        }
        TypeF::VcpuInfoValidThreadsPerCore => {
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
fn ebs_field(t: &InstanceTypeInfo, f: TypeF, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let ebs = t.ebs_info.as_ref();
    let opt = ebs.and_then(|e| e.ebs_optimized_info.as_ref());
    match f {
        TypeF::EbsInfoAttachmentLimitType => {
            o.s(ebs.and_then(|e| e.attachment_limit_type.as_deref()))
        }
        TypeF::EbsInfoMaximumEbsAttachments => o.s(ebs
            .and_then(|e| e.maximum_ebs_attachments)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::EbsInfoEbsOptimizedSupport => {
            o.s(ebs.and_then(|e| e.ebs_optimized_support.as_deref()))
        }
        TypeF::EbsInfoEncryptionSupport => o.s(ebs.and_then(|e| e.encryption_support.as_deref())),
        TypeF::EbsInfoNvmeSupport => o.s(ebs.and_then(|e| e.nvme_support.as_deref())),
        TypeF::EbsInfoEbsOptimizedInfoBaselineBandwidthInMbps => o.s(opt
            .and_then(|o| o.baseline_bandwidth_in_mbps)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::EbsInfoEbsOptimizedInfoBaselineIops => o.s(opt
            .and_then(|o| o.baseline_iops)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::EbsInfoEbsOptimizedInfoBaselineThroughputInMbps => o.s(opt
            .and_then(|o| o.baseline_throughput_in_m_bps)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::EbsInfoEbsOptimizedInfoMaximumBandwidthInMbps => o.s(opt
            .and_then(|o| o.maximum_bandwidth_in_mbps)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::EbsInfoEbsOptimizedInfoMaximumIops => o.s(opt
            .and_then(|o| o.maximum_iops)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::EbsInfoEbsOptimizedInfoMaximumThroughputInMbps => o.s(opt
            .and_then(|o| o.maximum_throughput_in_m_bps)
            .map(|v| v.to_string())
            .as_deref()),
        _ => {}
    }
}

/// `instance-storage-info.*`.
fn storage_field(t: &InstanceTypeInfo, f: TypeF, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let store = t.instance_storage_info.as_ref();
    match f {
        TypeF::InstanceStorageInfoTotalSizeInGb => o.s(store
            .and_then(|i| i.total_size_in_gb)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::InstanceStorageInfoNvmeSupport => o.s(store.and_then(|i| i.nvme_support.as_deref())),
        TypeF::InstanceStorageInfoEncryptionSupport => {
            o.s(store.and_then(|i| i.encryption_support.as_deref()))
        }
        TypeF::InstanceStorageInfoDiskCount
        | TypeF::InstanceStorageInfoDiskSizeInGb
        | TypeF::InstanceStorageInfoDiskType => {
            for d in store.and_then(|i| i.disks.as_ref()).into_iter().flatten() {
                let v = match f {
                    TypeF::InstanceStorageInfoDiskCount => d.count.map(|v| v.to_string()),
                    TypeF::InstanceStorageInfoDiskSizeInGb => d.size_in_gb.map(|v| v.to_string()),
                    _ => d.r#type.clone(),
                };
                o.s(v.as_deref());
            }
        }
        _ => {}
    }
}

/// `network-info.*`.
fn network_field(t: &InstanceTypeInfo, f: TypeF, out: &mut dyn FnMut(&str)) {
    let mut o = Out(out);
    let net = t.network_info.as_ref();
    match f {
        TypeF::NetworkInfoEfaSupported => o.s(b(net.and_then(|n| n.efa_supported))),
        TypeF::NetworkInfoEnaSupport => o.s(net.and_then(|n| n.ena_support.as_deref())),
        TypeF::NetworkInfoEncryptionInTransitSupported => {
            o.s(b(net.and_then(|n| n.encryption_in_transit_supported)))
        }
        TypeF::NetworkInfoIpv6Supported => o.s(b(net.and_then(|n| n.ipv6_supported))),
        TypeF::NetworkInfoFlexibleEnaQueuesSupport => {
            o.s(net.and_then(|n| n.flexible_ena_queues_support.as_deref()))
        }
        TypeF::NetworkInfoIpv4AddressesPerInterface => o.s(net
            .and_then(|n| n.ipv4_addresses_per_interface)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::NetworkInfoIpv6AddressesPerInterface => o.s(net
            .and_then(|n| n.ipv6_addresses_per_interface)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::NetworkInfoMaximumNetworkCards => o.s(net
            .and_then(|n| n.maximum_network_cards)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::NetworkInfoMaximumNetworkInterfaces => o.s(net
            .and_then(|n| n.maximum_network_interfaces)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::NetworkInfoNetworkPerformance => {
            o.s(net.and_then(|n| n.network_performance.as_deref()))
        }
        TypeF::NetworkInfoEfaInfoMaximumEfaInterfaces => o.s(net
            .and_then(|n| n.efa_info.as_ref())
            .and_then(|e| e.maximum_efa_interfaces)
            .map(|v| v.to_string())
            .as_deref()),
        TypeF::NetworkInfoBandwidthWeightings => {
            o.list(net.and_then(|n| n.bandwidth_weightings.as_ref()))
        }
        _ => {}
    }
}

const TYPES_OP: &str = "DescribeInstanceTypes";

pub fn describe_instance_types(
    ctx: &RequestContext,
    input: DescribeInstanceTypesRequest,
) -> Result<DescribeInstanceTypesResult, Ec2Error> {
    let fs = filters::compile::<TypeF>(input.filters, &[])?;
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
    let (page, next) = paging::page(items, Some(limit), TYPES_OP, |t| {
        t.instance_type.clone().unwrap_or_default()
    });
    Ok(DescribeInstanceTypesResult {
        instance_types: Some(page),
        next_token: next,
    })
}

struct OfferingView<'a>(&'a InstanceTypeOffering);

impl Filterable<OfferF> for OfferingView<'_> {
    fn field(&self, f: OfferF, out: &mut dyn FnMut(&str)) {
        let v = match f {
            OfferF::InstanceType => self.0.instance_type.as_deref(),
            OfferF::Location => self.0.location.as_deref(),
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
    let fs = filters::compile::<OfferF>(input.filters, &[])?;
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
    let (page, next) = paging::page(items, Some(limit), OFFERINGS_OP, |o| {
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
