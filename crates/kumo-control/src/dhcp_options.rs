//! DHCP options sets: CreateDhcpOptions, AssociateDhcpOptions (a set, or `default` for
//! none), DeleteDhcpOptions (refused while a VPC uses the set). DescribeDhcpOptions is with
//! the other read-only network calls (`gateways.rs`).
//!
//! A VPC's set reaches its guests when they next take a lease, as on AWS: a `vm` guest's
//! DHCP client at its renewal (the lease is an hour, renewed at half of it) or its next
//! boot, an `ns` guest at its next boot (it has no DHCP client). The guest's resolver takes
//! `domain-name-servers` (`AmazonProvidedDNS` is the VPC's resolver, its base + 2) and
//! `domain-name` as its search domain; `ntp-servers` go in the lease (option 42).

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::instance::InstanceRecord;
use crate::records::net::{DhcpOptionsRecord, VpcRecord};
use crate::tags;
use crate::vpcs::get_vpc;
use crate::{scope, Kumo};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_store::{Query, Read, Scope};

const KEYS: &[&str] = &[
    "domain-name",
    "domain-name-servers",
    "ntp-servers",
    "netbios-name-servers",
    "netbios-node-type",
    "ipv6-address-preferred-lease-time",
];

/// AWS's answer to a value it does not take (the values joined by commas).
fn bad_values(values: &[String]) -> Ec2Error {
    Ec2Error::invalid_value(format!(
        "Value ({}) for parameter value is invalid. Invalid DHCP option value.",
        values.join(",")
    ))
}

/// Whether a set's values for `key` are ones AWS takes: name servers as up to four IPv4
/// addresses (`AmazonProvidedDNS` counting as one) and four IPv6 ones; NTP servers the
/// same (without `AmazonProvidedDNS`); up to four NetBIOS name servers; a NetBIOS node type
/// of 1, 2, 4 or 8; a preferred IPv6 lease time of 140 to 2,147,483,647 seconds. Several
/// space-separated domain names are taken, as AWS takes them in every region.
fn values_ok(key: &str, values: &[String]) -> bool {
    use std::net::IpAddr;
    if values.is_empty() || values.iter().any(|v| v.trim().is_empty()) {
        return false;
    }
    let servers = |amazon: bool| {
        let (mut v4, mut v6) = (0, 0);
        for v in values {
            match v.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => v4 += 1,
                Ok(IpAddr::V6(_)) => v6 += 1,
                Err(_) if amazon && v == "AmazonProvidedDNS" => v4 += 1,
                Err(_) => return false,
            }
        }
        v4 <= 4 && v6 <= 4
    };
    match key {
        "domain-name-servers" => servers(true),
        "ntp-servers" => servers(false),
        "netbios-name-servers" => {
            values.len() <= 4 && values.iter().all(|v| v.parse::<IpAddr>().is_ok())
        }
        "netbios-node-type" => {
            values.len() == 1 && matches!(values[0].as_str(), "1" | "2" | "4" | "8")
        }
        "ipv6-address-preferred-lease-time" => {
            values.len() == 1
                && values[0]
                    .parse::<u64>()
                    .is_ok_and(|s| (140..=2_147_483_647).contains(&s))
        }
        _ => values
            .iter()
            .all(|v| v.len() <= 255 && !v.contains(|c: char| c.is_control())),
    }
}

/// A new set: its keys known and each once, its values as [`values_ok`] takes them.
impl Checks for CreateDhcpOptionsRequest {
    fn required(&self) -> Result<(), Ec2Error> {
        if self.dhcp_configurations.is_empty() {
            return Err(Ec2Error::missing_parameter("DhcpConfiguration"));
        }
        Ok(())
    }

    fn formats(&self) -> Result<(), Ec2Error> {
        let mut seen = std::collections::HashSet::new();
        for c in &self.dhcp_configurations {
            let key = c.key.as_deref().unwrap_or_default();
            if !KEYS.contains(&key) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({key}) for parameter name is invalid. Unknown DHCP option"
                )));
            }
            if !seen.insert(key) {
                return Err(Ec2Error::invalid_value(format!(
                    "Value ({key}) for parameter name is invalid. Duplicate DHCP option"
                )));
            }
            let values = c.values.as_deref().unwrap_or_default();
            if !values_ok(key, values) {
                return Err(bad_values(values));
            }
        }
        Ok(())
    }
}

impl Checks for AssociateDhcpOptionsRequest {}
impl Checks for DeleteDhcpOptionsRequest {}

pub(crate) fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidDhcpOptionID.NotFound",
        format!("The dhcpOption ID '{id}' does not exist"),
    )
}

/// The set as the wire shows it.
pub(crate) fn wire(
    ctx: &RequestContext,
    d: &DhcpOptionsRecord,
    t: &[(String, String)],
) -> DhcpOptions {
    DhcpOptions {
        dhcp_options_id: Some(d.id.clone()),
        owner_id: Some(ctx.account_id.clone()),
        dhcp_configurations: Some(
            d.options
                .iter()
                .map(|(k, vs)| DhcpConfiguration {
                    key: Some(k.clone()),
                    values: Some(
                        vs.iter()
                            .map(|v| AttributeValue {
                                value: Some(v.clone()),
                            })
                            .collect(),
                    ),
                })
                .collect(),
        ),
        tags: Some(tags::wire(t)),
    }
}

pub fn create(
    k: &Kumo,
    ctx: &RequestContext,
    input: CreateDhcpOptionsRequest,
) -> Result<CreateDhcpOptionsResult, Ec2Error> {
    let tag_list = tags::from_specifications(input.tag_specifications, "dhcp-options")?;
    let s = scope(ctx);
    let rec = DhcpOptionsRecord {
        id: new_id("dopt"),
        options: input
            .dhcp_configurations
            .into_iter()
            .map(|c| (c.key.unwrap_or_default(), c.values.unwrap_or_default()))
            .collect(),
    };
    k.store
        .write(!ctx.dry_run, |tx| {
            tx.insert(s, &rec)?;
            tags::put_all(tx, s, &rec.id, "dhcp-options", &tag_list)?;
            Ok::<_, Fail>(())
        })
        .map_err(|f| f.0)?;
    Ok(CreateDhcpOptionsResult {
        dhcp_options: Some(wire(ctx, &rec, &tags::wire_pairs(&tag_list))),
    })
}

/// The VPCs that use a set.
fn users<V: Read>(v: &V, s: Scope, id: &str) -> Result<Vec<VpcRecord>, Fail> {
    Ok(v.list::<VpcRecord>(s, &Query::default())?
        .into_iter()
        .filter(|vpc| vpc.dhcp_options_id == id)
        .collect())
}

pub fn associate(
    k: &Kumo,
    ctx: &RequestContext,
    input: AssociateDhcpOptionsRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            if input.dhcp_options_id != "default"
                && tx
                    .get::<DhcpOptionsRecord>(s, &input.dhcp_options_id)?
                    .is_none()
            {
                return Err(Fail(not_found(&input.dhcp_options_id)));
            }
            let mut vpc = get_vpc(tx, s, &input.vpc_id)?;
            vpc.dhcp_options_id = input.dhcp_options_id.clone();
            tx.update(s, &vpc)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)?;
    if ctx.dry_run {
        return Ok(());
    }
    // The running guests take the set at their next lease. The association is committed:
    // a failure from here on is logged, not answered.
    let read = k.store.read(|v| {
        let dhcp = crate::host::spec::dhcp_settings(v, s, &input.vpc_id)?;
        let ids: Vec<String> = v
            .list::<InstanceRecord>(
                s,
                &Query {
                    vpcs: Some(&[input.vpc_id.as_str()]),
                    ..Query::default()
                },
            )?
            .into_iter()
            .map(|r| r.id)
            .collect();
        Ok::<_, Fail>((dhcp, ids))
    });
    let (dhcp, running) = match read {
        Ok(r) => r,
        Err(f) => {
            tracing::warn!(vpc = %input.vpc_id, error = %f.0, "cannot read the DHCP options for the running guests");
            return Ok(());
        }
    };
    for id in running {
        if let Some(g) = k.compute.driver.guest(&id) {
            if let Err(e) = g.set_dhcp(dhcp.clone()) {
                tracing::warn!(instance = %id, error = %e, "cannot give the guest its DHCP options");
            }
        }
    }
    Ok(())
}

pub fn delete(
    k: &Kumo,
    ctx: &RequestContext,
    input: DeleteDhcpOptionsRequest,
) -> Result<(), Ec2Error> {
    let s = scope(ctx);
    k.store
        .write(!ctx.dry_run, |tx| {
            let id = &input.dhcp_options_id;
            if tx.get::<DhcpOptionsRecord>(s, id)?.is_none() {
                return Err(Fail(not_found(id)));
            }
            if !users(tx, s, id)?.is_empty() {
                return Err(Fail(Ec2Error::new(
                    "DependencyViolation",
                    format!("The dhcpOptions '{id}' has dependencies and cannot be deleted."),
                )));
            }
            tx.delete::<DhcpOptionsRecord>(s, id)?;
            Ok(())
        })
        .map_err(|f: Fail| f.0)
}
