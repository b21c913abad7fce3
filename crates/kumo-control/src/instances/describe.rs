//! DescribeInstances: its filters and paging.

use super::wire::{association, reservation};
use crate::core::checks::{self, Checks};
use crate::core::describe::{self, Push};
use crate::core::error::Fail;
use crate::core::filters;
use crate::network;
use crate::records::instance::*;
use crate::records::net::*;
use crate::repo::address::eip_on;
use crate::repo::instance::{load, not_found, public_dns, visible};
use crate::tags::Tagged;
use crate::{scope, Kumo};
use kumo_ec2_wire::filters::DescribeInstances as F;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::lifecycle::State;
use kumo_store::{Query, Read, Scope};
use std::collections::HashMap;

struct InstanceView<'a, V: Read> {
    t: &'a Tagged<InstanceRecord>,
    v: &'a V,
    s: Scope<'a>,
    ctx: &'a RequestContext,
    names: &'a HashMap<String, String>,
    eips: &'a [AddressRecord],
}

impl<V: Read> InstanceView<'_, V> {
    /// The records of one kind with these ids (a filter reads nothing it cannot show: a
    /// failed read matches no value).
    fn by_ids<R: kumo_store::Record>(&self, ids: &[String]) -> Vec<R> {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.v
            .list(
                self.s,
                &Query {
                    ids: Some(&ids),
                    ..Query::default()
                },
            )
            .unwrap_or_default()
    }

    fn enis(&self) -> Vec<EniRecord> {
        self.by_ids::<EniRecord>(&self.t.item.enis)
            .into_iter()
            .filter(|e| {
                e.attachment
                    .as_ref()
                    .is_some_and(|a| a.instance_id == self.t.item.id)
            })
            .collect()
    }

    /// The instance's block devices as DescribeInstances shows them.
    fn mappings(&self) -> Vec<InstanceBlockDeviceMapping> {
        let vols: Vec<crate::records::volume::VolumeRecord> = self.by_ids(&self.t.item.volumes);
        crate::volumes::mappings(&vols, &self.t.item.id)
    }
}

fn tf(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The names the reference lists that Kumo answers AWS's invalid-filter error for: Kumo has
/// nothing behind them (Outposts operators, capacity reservation targets, bandwidth weighting).
const REFUSED: &[F] = &[
    F::CapacityReservationSpecificationCapacityReservationTargetCapacityReservationId,
    F::CapacityReservationSpecificationCapacityReservationTargetCapacityReservationResourceGroupArn,
    F::NetworkInterfaceOperatorManaged,
    F::NetworkInterfaceOperatorPrincipal,
    F::NetworkPerformanceOptionsBandwidthWeighting,
    F::OperatorManaged,
    F::OperatorPrincipal,
];

impl<V: Read> Filterable<F> for InstanceView<'_, V> {
    fn field(&self, f: F, out: &mut dyn FnMut(&str)) {
        let name = f.name();
        let n = name;
        let r = &self.t.item;
        let st = r.state();
        match f {
            F::InstanceId => out(&r.id),
            F::InstanceType => out(&r.instance_type),
            F::ImageId => out(&r.image_id),
            F::KeyName => r.key_name.iter().for_each(|k| out(k)),
            F::InstanceStateName => out(st.name()),
            F::InstanceStateCode => out(&st.code().to_string()),
            F::AvailabilityZone => out(&r.zone),
            F::AvailabilityZoneId => out(&r.zone_id),
            F::EnclaveOptionsEnabled => out("false"),
            // A terminated instance has left its subnet.
            F::VpcId | F::SubnetId if st == State::Terminated => {}
            F::VpcId => out(&r.vpc_id),
            F::SubnetId => out(&r.subnet_id),
            F::ReservationId => out(&r.reservation_id),
            F::Architecture => out(&r.architecture),
            F::RootDeviceType => out(&r.root_device_type),
            F::RootDeviceName => out(&r.root_device_name),
            F::Tenancy => out(&r.tenancy),
            F::MonitoringState => out(r.monitoring_state()),
            F::OwnerId => out(&self.ctx.account_id),
            F::ClientToken => r.client_token.iter().for_each(|c| out(c)),
            F::Hypervisor => out("xen"),
            F::VirtualizationType => out(super::virtualization_type(r)),
            F::CurrentInstanceBootMode => out(super::current_boot_mode(r)),
            F::LaunchIndex => out(&r.launch_index.to_string()),
            F::UsageOperation => out(super::platform_details(r).1),
            F::UsageOperationUpdateTime => out(&DateTime(r.launch_ms).to_iso8601()),
            F::MetadataOptionsHttpProtocolIpv4 => out(&r.http_endpoint),
            F::MetadataOptionsHttpProtocolIpv6 => out(&r.http_protocol_ipv6),
            F::PlatformDetails => out(super::platform_details(r).0),
            // AWS leaves `platform` out for Linux.
            F::Platform => {
                if r.windows {
                    out("windows")
                }
            }
            F::LaunchTime => out(&DateTime(r.launch_ms).to_iso8601()),
            F::EbsOptimized => out(tf(r.ebs_optimized)),
            F::EnaSupport => out(tf(r.ena_support)),
            F::BootMode => out(&r.boot_mode),
            F::MetadataOptionsHttpTokens => out(&r.http_tokens),
            F::MetadataOptionsHttpEndpoint => out(&r.http_endpoint),
            F::MetadataOptionsHttpPutResponseHopLimit => out(&r.http_hop_limit.to_string()),
            F::MetadataOptionsInstanceMetadataTags => out(&r.instance_metadata_tags),
            F::HibernationOptionsConfigured => out(tf(r.hibernation)),
            F::IamInstanceProfileArn => r.iam_instance_profile.iter().for_each(|p| out(p)),
            F::StateReasonCode => r.state_reason.iter().for_each(|(c, _)| out(c)),
            F::StateReasonMessage => r.state_reason.iter().for_each(|(_, m)| out(m)),
            F::Reason => out(&r.transition_reason),
            F::CapacityReservationSpecificationCapacityReservationPreference => {
                out(&r.capacity_reservation_preference)
            }
            F::PrivateIpAddress
            | F::PrivateDnsName
            | F::IpAddress
            | F::DnsName
            | F::InstanceGroupId
            | F::InstanceGroupName
            | F::SourceDestCheck => {
                if st == State::Terminated {
                    return;
                }
                let enis = self.enis();
                let Some(p) = enis
                    .iter()
                    .find(|e| e.attachment.as_ref().is_some_and(|a| a.device_index == 0))
                else {
                    return;
                };
                let primary = p
                    .addresses
                    .iter()
                    .find(|a| a.primary)
                    .map(|a| a.addr.clone())
                    .unwrap_or_default();
                match f {
                    F::PrivateIpAddress => out(&primary),
                    F::PrivateDnsName => out(&crate::repo::instance::instance_dns_name(
                        &self.ctx.region,
                        r,
                        &primary,
                    )),
                    F::IpAddress | F::DnsName => {
                        let eip = self
                            .eips
                            .iter()
                            .find(|a| {
                                a.association
                                    .as_ref()
                                    .is_some_and(|x| x.eni_id == p.id && x.private_ip == primary)
                            })
                            .map(|a| a.public_ip.clone());
                        if let Some(ip) = eip
                            .or_else(|| r.public_ip.clone())
                            .filter(|_| st == State::Running || st == State::Pending)
                        {
                            out(&if name == "ip-address" {
                                ip.clone()
                            } else {
                                public_dns(&self.ctx.region, &ip)
                            });
                        }
                    }
                    F::SourceDestCheck => out(tf(p.source_dest_check)),
                    F::InstanceGroupName => p
                        .groups
                        .iter()
                        .filter_map(|g| self.names.get(g))
                        .for_each(|n| out(n)),
                    _ => p.groups.iter().for_each(|g| out(g)),
                }
            }
            F::BlockDeviceMappingAttachTime | F::BlockDeviceMappingDeleteOnTermination | F::BlockDeviceMappingDeviceName | F::BlockDeviceMappingStatus | F::BlockDeviceMappingVolumeId => {
                for m in self.mappings() {
                    let ebs = m.ebs.unwrap_or_default();
                    match &n["block-device-mapping.".len()..] {
                        "device-name" => m.device_name.iter().for_each(|d| out(d)),
                        "volume-id" => ebs.volume_id.iter().for_each(|d| out(d)),
                        "status" => ebs.status.iter().for_each(|d| out(d)),
                        "delete-on-termination" => {
                            ebs.delete_on_termination.iter().for_each(|d| out(tf(*d)))
                        }
                        "attach-time" => ebs.attach_time.iter().for_each(|t| out(&t.to_iso8601())),
                        _ => {}
                    }
                }
            }
            F::MetadataOptionsState => out("applied"),
            F::PrivateDnsNameOptionsHostnameType => out(r.dns_names.hostname_type()),
            F::PrivateDnsNameOptionsEnableResourceNameDnsARecord => {
                out(tf(r.dns_names.a_record))
            }
            F::PrivateDnsNameOptionsEnableResourceNameDnsAaaaRecord => {
                out(tf(r.dns_names.aaaa_record))
            }
            F::MaintenanceOptionsAutoRecovery => out("default"),
            F::NetworkInterfaceAddressesAssociationAllocationId | F::NetworkInterfaceAddressesAssociationAssociationId | F::NetworkInterfaceAddressesAssociationCarrierIp | F::NetworkInterfaceAddressesAssociationCustomerOwnedIp | F::NetworkInterfaceAddressesAssociationIpOwnerId | F::NetworkInterfaceAddressesAssociationPublicDnsName | F::NetworkInterfaceAddressesAssociationPublicIp | F::NetworkInterfaceAssociationAllocationId | F::NetworkInterfaceAssociationAssociationId | F::NetworkInterfaceAssociationCarrierIp | F::NetworkInterfaceAssociationCustomerOwnedIp | F::NetworkInterfaceAssociationIpOwnerId | F::NetworkInterfaceAssociationPublicDnsName | F::NetworkInterfaceAssociationPublicIp | F::NetworkInterfacePublicDnsName =>
            {
                // Of each interface's primary address, or of every address, as the answer's
                // `association` shows it; an Elastic IP's allocation and association ids too.
                let every = name.contains(".addresses.");
                let field = n.rsplit('.').next().unwrap_or_default();
                for e in self.enis() {
                    for a in e.addresses.iter().take(if every { usize::MAX } else { 1 }) {
                        let eip = eip_on(self.eips, &e, &a.addr);
                        let shown = association(self.ctx, r, &e, self.eips, &a.addr);
                        let value = match field {
                            "public-ip" => shown.and_then(|x| x.public_ip),
                            "public-dns-name" => shown.and_then(|x| x.public_dns_name),
                            "ip-owner-id" => shown.and_then(|x| x.ip_owner_id),
                            "allocation-id" => eip.map(|x| x.id.clone()),
                            "association-id" => eip
                                .and_then(|x| x.association.as_ref())
                                .map(|y| y.id.clone()),
                            _ => None,
                        };
                        value.iter().for_each(|v| out(v));
                    }
                }
            }
            F::NetworkInterfaceAttachmentInstanceId => {
                self.enis().iter().for_each(|_| out(&r.id))
            }
            F::NetworkInterfaceAddressesPrimary | F::NetworkInterfaceAddressesPrivateDnsName | F::NetworkInterfaceAddressesPrivateIpAddress | F::NetworkInterfaceAttachmentAttachTime | F::NetworkInterfaceAttachmentAttachmentId | F::NetworkInterfaceAttachmentDeleteOnTermination | F::NetworkInterfaceAttachmentDeviceIndex | F::NetworkInterfaceAttachmentInstanceOwnerId | F::NetworkInterfaceAttachmentNetworkCardIndex | F::NetworkInterfaceAttachmentStatus | F::NetworkInterfaceAvailabilityZone | F::NetworkInterfaceDenyAllIgwTraffic | F::NetworkInterfaceDescription | F::NetworkInterfaceGroupId | F::NetworkInterfaceGroupName | F::NetworkInterfaceIpv4PrefixesIpv4Prefix | F::NetworkInterfaceIpv6Address | F::NetworkInterfaceIpv6AddressesIpv6Address | F::NetworkInterfaceIpv6AddressesIsPrimaryIpv6 | F::NetworkInterfaceIpv6Native | F::NetworkInterfaceIpv6PrefixesIpv6Prefix | F::NetworkInterfaceMacAddress | F::NetworkInterfaceNetworkInterfaceId | F::NetworkInterfaceOutpostArn | F::NetworkInterfaceOwnerId | F::NetworkInterfacePrivateDnsName | F::NetworkInterfacePrivateIpAddress | F::NetworkInterfaceRequesterId | F::NetworkInterfaceRequesterManaged | F::NetworkInterfaceSourceDestCheck | F::NetworkInterfaceStatus | F::NetworkInterfaceSubnetId | F::NetworkInterfaceTagKey | F::NetworkInterfaceTagValue | F::NetworkInterfaceVpcId => {
                let field = &n["network-interface.".len()..];
                for e in self.enis() {
                    let a = e.attachment.as_ref();
                    match field {
                        "network-interface-id" => out(&e.id),
                        "subnet-id" => out(&e.subnet_id),
                        "vpc-id" => out(&e.vpc_id),
                        "availability-zone" => out(&e.zone),
                        "description" => out(&e.description),
                        "mac-address" => out(&e.mac),
                        "owner-id" => out(&self.ctx.account_id),
                        "status" => out("in-use"),
                        "source-dest-check" => out(tf(e.source_dest_check)),
                        "interface-type" => out(&e.interface_type),
                        "requester-managed" => out(tf(e.requester_managed)),
                        "group-id" => e.groups.iter().for_each(|g| out(g)),
                        "group-name" => e
                            .groups
                            .iter()
                            .filter_map(|g| self.names.get(g))
                            .for_each(|g| out(g)),
                        "addresses.private-ip-address" | "private-ip-address" => {
                            e.addresses.iter().for_each(|x| out(&x.addr))
                        }
                        "addresses.primary" => e.addresses.iter().for_each(|x| out(tf(x.primary))),
                        "ipv6-addresses.ipv6-address" => e.ipv6.iter().for_each(|x| out(x)),
                        "ipv6-addresses.is-primary-ipv6" => e
                            .ipv6
                            .iter()
                            .enumerate()
                            .for_each(|(i, _)| out(tf(e.primary_ipv6 && i == 0))),
                        "private-dns-name" => e.addresses.first().iter().for_each(|x| {
                            out(&network::private_dns_name(&self.ctx.region, &x.addr))
                        }),
                        "addresses.private-dns-name" => e.addresses.iter().for_each(|x| {
                            out(&network::private_dns_name(&self.ctx.region, &x.addr))
                        }),
                        "tag-key" | "tag-value" => {
                            let tags = self.v.tags_of(self.s, &e.id).unwrap_or_default();
                            for (k, v) in &tags {
                                out(if field == "tag-key" { k } else { v });
                            }
                        }
                        "attachment.attachment-id" => a.iter().for_each(|a| out(&a.id)),
                        "attachment.device-index" => {
                            a.iter().for_each(|a| out(&a.device_index.to_string()))
                        }
                        "attachment.status" => a.iter().for_each(|a| out(&a.status)),
                        "attachment.delete-on-termination" => {
                            a.iter().for_each(|a| out(tf(a.delete_on_termination)))
                        }
                        "attachment.attach-time" => a
                            .iter()
                            .for_each(|a| out(&DateTime(a.attach_time_ms).to_iso8601())),
                        "attachment.instance-owner-id" => out(&self.ctx.account_id),
                        "ipv4-prefixes.ipv4-prefix" => e.prefixes.iter().for_each(|p| out(p)),
                        _ => {}
                    }
                }
            }
            // Refused when compiling: see `REFUSED`.
            F::CapacityReservationSpecificationCapacityReservationTargetCapacityReservationId
            | F::CapacityReservationSpecificationCapacityReservationTargetCapacityReservationResourceGroupArn
            | F::NetworkInterfaceOperatorManaged
            | F::NetworkInterfaceOperatorPrincipal
            | F::NetworkPerformanceOptionsBandwidthWeighting
            | F::OperatorManaged
            | F::OperatorPrincipal => {}
            F::CapacityReservationId => {
                if let Some(id) = &r.capacity_reservation_id {
                    out(id)
                }
            }
            F::PlacementGroupName => {
                if let Some((_, name)) = &r.placement_group {
                    out(name)
                }
            }
            F::PlacementPartitionNumber => {
                if let Some(n) = r.partition_number {
                    out(&n.to_string())
                }
            }
            // Never set on a Kumo instance, as on an AWS instance without them: dedicated
            // hosts, instance profiles' ids, Spot,
            // IPv6, paravirtual kernels, product codes, Outposts, NitroTPM, requester-managed.
            F::Ipv6Address => {
                if let Some(a) = self.enis().first().and_then(|e| e.ipv6.first()) {
                    out(a);
                }
            }
            F::Affinity
            | F::HostId
            | F::IamInstanceProfileId
            | F::InstanceLifecycle
            | F::KernelId
            | F::OutpostArn
            | F::ProductCode
            | F::ProductCodeType
            | F::RamdiskId
            | F::RequesterId
            | F::SpotInstanceRequestId
            | F::TpmSupport => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

/// DescribeInstances, before any lookup: ids or a page size, not both; no id sent empty (AWS
/// answers `InstanceId.1=` as a missing id); the page. The filters are compiled first in the
/// operation, then the instances are looked up.
impl Checks for DescribeInstancesRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        checks::ids_or_page(self.instance_ids.as_ref(), self.max_results, "instancesSet")?;
        if self.instance_ids.iter().flatten().any(String::is_empty) {
            return Err(Ec2Error::missing_parameter("InstanceId"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        checks::page(
            "DescribeInstances",
            self.max_results,
            self.next_token.as_deref(),
            (5, 1000),
        )
    }
}

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeInstancesRequest,
) -> Result<DescribeInstancesResult, Ec2Error> {
    let fs = filters::compile::<F>(input.filters, REFUSED)?;
    let ids = input.instance_ids.unwrap_or_default();
    let s = scope(ctx);
    let now = k.now_ms();
    let delay = k.options.transition_ms;
    let not_found_one = |id: &str| not_found(&[id]);
    k.store
        .read(|v| {
            if !ids.is_empty() {
                load(k, v, s, &ids)?;
            }
            let names = crate::repo::eni::group_names(v, s)?;
            let eips = crate::repo::address::by_interface(v, s)?;
            let req = describe::Request {
                op: "DescribeInstances",
                ids: &[],
                not_found: &not_found_one,
                push: Push {
                    ids: describe::both(
                        (!ids.is_empty()).then(|| ids.iter().map(String::as_str).collect()),
                        fs.exact(F::InstanceId),
                    ),
                    vpcs: fs.exact(F::VpcId),
                    subnets: fs.exact(F::SubnetId),
                    tag: fs.exact_tag(),
                },
                max_results: input.max_results,
                bounds: (5, 1000),
                next_token: input.next_token.as_deref(),
            };
            let (page, next) = describe::run(v, s, &req, |t: &Tagged<InstanceRecord>| {
                if !visible(&t.item, now, delay) {
                    return false;
                }
                let mut settled = Tagged {
                    item: t.item.clone(),
                    tags: t.tags.clone(),
                };
                settled.item.settle(now, delay);
                fs.matches(&InstanceView {
                    t: &settled,
                    v,
                    s,
                    ctx,
                    names: &names,
                    eips: &eips,
                })
            })?;
            let page: Vec<Tagged<InstanceRecord>> = page
                .into_iter()
                .map(|mut t| {
                    t.item.settle(now, delay);
                    t
                })
                .collect();
            Ok(DescribeInstancesResult {
                reservations: Some(reservation(k, v, ctx, &page, false)?),
                next_token: next,
            })
        })
        .map_err(|f: Fail| f.0)
}
