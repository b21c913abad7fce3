//! DescribeInstances: its filters and paging.

use super::wire::{association, eip_on, reservation};
use crate::core::describe::{self, Push};
use crate::core::error::{rule, Fail};
use crate::core::filters::filters;
use crate::network;
use crate::records::instance::*;
use crate::records::net::*;
use crate::repo::instance::{check_id, load, not_found, public_dns, visible};
use crate::tags::Tagged;
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{DateTime, Ec2Error, RequestContext};
use kumo_model::filter::{Filterable, Filters};
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

impl<V: Read> Filterable for InstanceView<'_, V> {
    fn field(&self, name: &str, out: &mut dyn FnMut(&str)) {
        let r = &self.t.item;
        let st = r.state();
        match name {
            "instance-id" => out(&r.id),
            "instance-type" => out(&r.instance_type),
            "image-id" => out(&r.image_id),
            "key-name" => r.key_name.iter().for_each(|k| out(k)),
            "instance-state-name" => out(st.name()),
            "instance-state-code" => out(&st.code().to_string()),
            "availability-zone" => out(&r.zone),
            "availability-zone-id" => out(&r.zone_id),
            "enclave-options.enabled" => out("false"),
            "vpc-id" if st != State::Terminated => out(&r.vpc_id),
            "subnet-id" if st != State::Terminated => out(&r.subnet_id),
            "reservation-id" => out(&r.reservation_id),
            "architecture" => out(&r.architecture),
            "root-device-type" => out(&r.root_device_type),
            "root-device-name" => out(&r.root_device_name),
            "tenancy" => out(&r.tenancy),
            "monitoring-state" => out(if r.monitoring { "enabled" } else { "disabled" }),
            "owner-id" => out(&self.ctx.account_id),
            "client-token" => r.client_token.iter().for_each(|c| out(c)),
            "hypervisor" => out("xen"),
            "virtualization-type" => out(super::virtualization_type(r)),
            "current-instance-boot-mode" => out(super::current_boot_mode(r)),
            "launch-index" => out(&r.launch_index.to_string()),
            "usage-operation" => out(super::platform_details(r).1),
            "usage-operation-update-time" => out(&DateTime(r.launch_ms).to_iso8601()),
            "metadata-options.http-protocol-ipv4" => out(&r.http_endpoint),
            "metadata-options.http-protocol-ipv6" => out("disabled"),
            "platform-details" => out(super::platform_details(r).0),
            "platform" if r.windows => out("windows"),
            "ami-launch-index" => out(&r.launch_index.to_string()),
            "launch-time" => out(&DateTime(r.launch_ms).to_iso8601()),
            "ebs-optimized" => out(tf(r.ebs_optimized)),
            "ena-support" => out(tf(r.ena_support)),
            "boot-mode" => out(&r.boot_mode),
            "metadata-options.http-tokens" => out(&r.http_tokens),
            "metadata-options.http-endpoint" => out(&r.http_endpoint),
            "metadata-options.http-put-response-hop-limit" => out(&r.http_hop_limit.to_string()),
            "metadata-options.instance-metadata-tags" => out(&r.instance_metadata_tags),
            "hibernation-options.configured" => out(tf(r.hibernation)),
            "iam-instance-profile.arn" => r.iam_instance_profile.iter().for_each(|p| out(p)),
            "state-reason-code" => r.state_reason.iter().for_each(|(c, _)| out(c)),
            "state-reason-message" => r.state_reason.iter().for_each(|(_, m)| out(m)),
            "reason" => out(&r.transition_reason),
            "capacity-reservation-specification.capacity-reservation-preference" => {
                out(&r.capacity_reservation_preference)
            }
            "private-ip-address"
            | "private-dns-name"
            | "ip-address"
            | "dns-name"
            | "instance.group-id"
            | "instance.group-name"
            | "group-id"
            | "group-name"
            | "source-dest-check" => {
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
                match name {
                    "private-ip-address" => out(&primary),
                    "private-dns-name" => out(&crate::repo::instance::instance_dns_name(
                        &self.ctx.region,
                        r,
                        &primary,
                    )),
                    "ip-address" | "dns-name" => {
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
                    "source-dest-check" => out(tf(p.source_dest_check)),
                    "instance.group-name" | "group-name" => p
                        .groups
                        .iter()
                        .filter_map(|g| self.names.get(g))
                        .for_each(|n| out(n)),
                    _ => p.groups.iter().for_each(|g| out(g)),
                }
            }
            n if n.starts_with("block-device-mapping.") => {
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
            "metadata-options.state" => out("applied"),
            "private-dns-name-options.hostname-type" => out(r.dns_names.hostname_type()),
            "private-dns-name-options.enable-resource-name-dns-a-record" => {
                out(tf(r.dns_names.a_record))
            }
            "private-dns-name-options.enable-resource-name-dns-aaaa-record" => {
                out(tf(r.dns_names.aaaa_record))
            }
            "maintenance-options.auto-recovery" => out("default"),
            n if n.starts_with("network-interface.association.")
                || n.starts_with("network-interface.addresses.association.")
                || n == "network-interface.public-dns-name" =>
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
            "network-interface.attachment.instance-id" => {
                self.enis().iter().for_each(|_| out(&r.id))
            }
            n if n.starts_with("network-interface.") => {
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
            _ => {}
        }
    }
    fn tags(&self) -> &[(String, String)] {
        &self.t.tags
    }
}

const INSTANCE_FILTERS: &[&str] = &[
    "affinity",
    "availability-zone-id",
    "enclave-options.enabled",
    "ami-launch-index",
    "architecture",
    "availability-zone",
    "block-device-mapping.attach-time",
    "block-device-mapping.delete-on-termination",
    "block-device-mapping.device-name",
    "block-device-mapping.status",
    "block-device-mapping.volume-id",
    "boot-mode",
    "capacity-reservation-id",
    "capacity-reservation-specification.capacity-reservation-preference",
    "client-token",
    "current-instance-boot-mode",
    "dns-name",
    "ebs-optimized",
    "ena-support",
    "group-id",
    "group-name",
    "hibernation-options.configured",
    "host-id",
    "hypervisor",
    "iam-instance-profile.arn",
    "iam-instance-profile.id",
    "image-id",
    "instance-id",
    "instance-lifecycle",
    "instance-state-code",
    "instance-state-name",
    "instance-type",
    "instance.group-id",
    "instance.group-name",
    "ip-address",
    "ipv6-address",
    "kernel-id",
    "key-name",
    "launch-index",
    "launch-time",
    "maintenance-options.auto-recovery",
    "metadata-options.http-endpoint",
    "metadata-options.http-protocol-ipv4",
    "metadata-options.http-protocol-ipv6",
    "metadata-options.http-put-response-hop-limit",
    "metadata-options.http-tokens",
    "metadata-options.instance-metadata-tags",
    "metadata-options.state",
    "monitoring-state",
    "network-interface.addresses.association.allocation-id",
    "network-interface.addresses.association.association-id",
    "network-interface.addresses.association.carrier-ip",
    "network-interface.addresses.association.customer-owned-ip",
    "network-interface.addresses.association.ip-owner-id",
    "network-interface.addresses.association.public-dns-name",
    "network-interface.addresses.association.public-ip",
    "network-interface.addresses.primary",
    "network-interface.addresses.private-dns-name",
    "network-interface.addresses.private-ip-address",
    "network-interface.association.allocation-id",
    "network-interface.association.association-id",
    "network-interface.association.carrier-ip",
    "network-interface.association.customer-owned-ip",
    "network-interface.association.ip-owner-id",
    "network-interface.association.public-dns-name",
    "network-interface.association.public-ip",
    "network-interface.attachment.attach-time",
    "network-interface.attachment.attachment-id",
    "network-interface.attachment.delete-on-termination",
    "network-interface.attachment.device-index",
    "network-interface.attachment.instance-id",
    "network-interface.attachment.instance-owner-id",
    "network-interface.attachment.network-card-index",
    "network-interface.attachment.status",
    "network-interface.availability-zone",
    "network-interface.deny-all-igw-traffic",
    "network-interface.description",
    "network-interface.group-id",
    "network-interface.group-name",
    "network-interface.ipv4-prefixes.ipv4-prefix",
    "network-interface.ipv6-address",
    "network-interface.ipv6-addresses.ipv6-address",
    "network-interface.ipv6-addresses.is-primary-ipv6",
    "network-interface.ipv6-native",
    "network-interface.ipv6-prefixes.ipv6-prefix",
    "network-interface.mac-address",
    "network-interface.network-interface-id",
    "network-interface.outpost-arn",
    "network-interface.owner-id",
    "network-interface.private-dns-name",
    "network-interface.private-ip-address",
    "network-interface.public-dns-name",
    "network-interface.requester-id",
    "network-interface.requester-managed",
    "network-interface.status",
    "network-interface.source-dest-check",
    "network-interface.subnet-id",
    "network-interface.tag-key",
    "network-interface.tag-value",
    "network-interface.vpc-id",
    "outpost-arn",
    "owner-id",
    "placement-group-name",
    "placement-partition-number",
    "platform",
    "platform-details",
    "private-dns-name",
    "private-dns-name-options.enable-resource-name-dns-a-record",
    "private-dns-name-options.enable-resource-name-dns-aaaa-record",
    "private-dns-name-options.hostname-type",
    "private-ip-address",
    "product-code",
    "product-code.type",
    "ramdisk-id",
    "reason",
    "requester-id",
    "reservation-id",
    "root-device-name",
    "root-device-type",
    "source-dest-check",
    "spot-instance-request-id",
    "state-reason-code",
    "state-reason-message",
    "subnet-id",
    "tenancy",
    "tpm-support",
    "usage-operation",
    "usage-operation-update-time",
    "virtualization-type",
    "vpc-id",
];

pub fn describe(
    k: &Kumo,
    ctx: &RequestContext,
    input: DescribeInstancesRequest,
) -> Result<DescribeInstancesResult, Ec2Error> {
    let fs = Filters::compile(&filters(input.filters), INSTANCE_FILTERS, true).map_err(rule)?;
    let ids = input.instance_ids.unwrap_or_default();
    if !ids.is_empty() && input.max_results.is_some() {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        ));
    }
    for id in &ids {
        check_id(id)?;
    }
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
                        fs.exact("instance-id"),
                    ),
                    vpcs: fs.exact("vpc-id"),
                    subnets: fs.exact("subnet-id"),
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
