//! Instance lookups: ids checked, records loaded as the caller may see them, the errors
//! AWS answers for them, and the per-type interface and address limits.

use crate::core::error::Fail;
use crate::records::instance::{InstanceRecord, TERMINATED_VISIBLE_MS};
use crate::records::net::{AddressRecord, EniRecord};
use crate::Kumo;
use kumo_ec2_wire::shapes::InstanceTypeInfo;
use kumo_ec2_wire::Ec2Error;
use kumo_model::lifecycle::State;
use kumo_store::{Query, Read, Scope};
use std::collections::HashMap;

pub fn not_found(ids: &[&str]) -> Ec2Error {
    if ids.len() == 1 {
        Ec2Error::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{}' does not exist", ids[0]),
        )
    } else {
        Ec2Error::new(
            "InvalidInstanceID.NotFound",
            format!("The instance IDs '{}' do not exist", ids.join(", ")),
        )
    }
}

/// AWS's answer to a change that needs the instance stopped.
pub fn not_stopped(id: &str) -> Fail {
    Fail(Ec2Error::new(
        "IncorrectInstanceState",
        format!("The instance '{id}' is not in the 'stopped' state."),
    ))
}

pub fn check_id(id: &str) -> Result<(), Ec2Error> {
    if kumo_model::ids::resource_type(id) != Some("instance") {
        return Err(Ec2Error::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
        ));
    }
    Ok(())
}

/// Loads instances by id (all must exist), settled to `now`.
pub fn load<V: Read>(
    k: &Kumo,
    v: &V,
    s: Scope,
    ids: &[String],
) -> Result<Vec<InstanceRecord>, Fail> {
    for id in ids {
        check_id(id)?;
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let found: Vec<InstanceRecord> = v.list(
        s,
        &Query {
            ids: Some(&refs),
            ..Query::default()
        },
    )?;
    let now = k.now_ms();
    let missing: Vec<&str> = refs
        .iter()
        .copied()
        .filter(|i| {
            !found
                .iter()
                .any(|r| r.id == *i && visible(r, now, k.options.transition_ms))
        })
        .collect();
    if !missing.is_empty() {
        return Err(Fail(not_found(&missing)));
    }
    // In request order, duplicates folded.
    let mut out: Vec<InstanceRecord> = Vec::new();
    for id in ids {
        if out.iter().any(|r| &r.id == id) {
            continue;
        }
        if let Some(mut r) = found.iter().find(|r| &r.id == id).cloned() {
            r.settle(now, k.options.transition_ms);
            out.push(r);
        }
    }
    Ok(out)
}

/// The instances of these ids that still exist, settled to now; an id that names none (a
/// terminated instance long gone) is skipped.
pub fn existing<V: Read>(
    k: &Kumo,
    v: &V,
    s: Scope,
    ids: &[String],
) -> Result<Vec<InstanceRecord>, Fail> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let now = k.now_ms();
    let found: Vec<InstanceRecord> = v.list(
        s,
        &Query {
            ids: Some(&refs),
            ..Query::default()
        },
    )?;
    Ok(found
        .into_iter()
        .map(|mut r| {
            r.settle(now, k.options.transition_ms);
            r
        })
        .collect())
}

/// Terminated instances vanish an hour after they terminate (a shutting-down instance
/// terminates `delay_ms` after it began).
pub fn visible(r: &InstanceRecord, now_ms: i64, delay_ms: i64) -> bool {
    let terminated_at = match r.state {
        State::Terminated => r.since_ms,
        State::ShuttingDown => r.since_ms + delay_ms,
        State::Pending | State::Running | State::Stopping | State::Stopped => return true,
    };
    now_ms <= terminated_at + TERMINATED_VISIBLE_MS
}

pub fn image_malformed(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidAMIID.Malformed",
        format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
    )
}

pub fn image_not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidAMIID.NotFound",
        format!("The image id '[{id}]' does not exist"),
    )
}

/// The per-type limits: (interfaces per instance, IPv4 addresses per interface).
pub fn limits(info: &InstanceTypeInfo) -> (usize, usize) {
    let n = info.network_info.as_ref();
    (
        n.and_then(|n| n.maximum_network_interfaces)
            .unwrap_or(1)
            .max(1) as usize,
        n.and_then(|n| n.ipv4_addresses_per_interface)
            .unwrap_or(1)
            .max(1) as usize,
    )
}

/// Addresses counted against the per-interface limit: each IP, and each /28 prefix as one.
pub fn slots(e: &EniRecord) -> usize {
    e.addresses.len() + e.prefixes.len()
}

pub fn address_limit() -> Ec2Error {
    Ec2Error::new(
        "PrivateIpAddressLimitExceeded",
        "Number of private addresses will exceed limit.",
    )
}

/// `ip-10-0-1-5.eu-west-1.compute.internal` (`ec2.internal` in us-east-1).
pub fn private_dns_name(region: &str, addr: &str) -> String {
    internal_name(region, &format!("ip-{}", addr.replace('.', "-")))
}

/// The resource name of an instance: `i-0123456789abcdef0.eu-west-1.compute.internal`
/// (`ec2.internal` in us-east-1).
pub fn resource_dns_name(region: &str, instance_id: &str) -> String {
    internal_name(region, instance_id)
}

/// An instance's private DNS name (and its guest's host name): its resource name under the
/// resource-name host name type, else the IP name of its primary address.
pub fn instance_dns_name(region: &str, r: &InstanceRecord, primary: &str) -> String {
    if r.dns_names.resource_name {
        resource_dns_name(region, &r.id)
    } else {
        private_dns_name(region, primary)
    }
}

fn internal_name(region: &str, host: &str) -> String {
    if region == "us-east-1" {
        format!("{host}.ec2.internal")
    } else {
        format!("{host}.{region}.compute.internal")
    }
}

pub fn public_dns(region: &str, ip: &str) -> String {
    let d = ip.replace('.', "-");
    if region == "us-east-1" {
        format!("ec2-{d}.compute-1.amazonaws.com")
    } else {
        format!("ec2-{d}.{region}.compute.amazonaws.com")
    }
}

/// Everything an instance's output needs besides its record.
pub struct Context {
    pub enis: HashMap<String, EniRecord>,
    pub volumes: Vec<crate::records::volume::VolumeRecord>,
    pub names: HashMap<String, String>,
    /// Why no compute driver runs instances, when none does (their state reason then says so).
    pub null_driver: Option<String>,
    /// How the compute driver falls short on this host (state reason code and message).
    pub degraded: Option<(String, String)>,
    pub eips: Vec<AddressRecord>,
}

pub fn context<V: Read>(v: &V, s: Scope, recs: &[&InstanceRecord]) -> Result<Context, Fail> {
    let ids: Vec<&str> = recs
        .iter()
        .flat_map(|r| r.enis.iter().map(String::as_str))
        .collect();
    let mut enis = HashMap::new();
    for chunk in ids.chunks(500) {
        let found: Vec<EniRecord> = v.list(
            s,
            &Query {
                ids: Some(chunk),
                ..Query::default()
            },
        )?;
        for e in found {
            enis.insert(e.id.clone(), e);
        }
    }
    // Through each instance's list of volumes: no scan of the region's volumes.
    let vol_ids: Vec<&str> = recs
        .iter()
        .flat_map(|r| r.volumes.iter().map(String::as_str))
        .collect();
    let mut volumes: Vec<crate::records::volume::VolumeRecord> = Vec::new();
    for chunk in vol_ids.chunks(500) {
        let found: Vec<crate::records::volume::VolumeRecord> = v.list(
            s,
            &Query {
                ids: Some(chunk),
                ..Query::default()
            },
        )?;
        volumes.extend(found.into_iter().filter(|x| !x.attachments.is_empty()));
    }
    let eips = crate::repo::address::by_interface(v, s)?;
    with_names(v, s, enis, volumes, eips)
}

/// The context of instances that have just launched, from the interfaces and volumes the
/// launch made: only their security groups' names are read. None of the interfaces can
/// hold an Elastic IP yet (the launch made them all).
pub fn context_of<V: Read>(
    v: &V,
    s: Scope,
    enis: Vec<EniRecord>,
    volumes: Vec<crate::records::volume::VolumeRecord>,
) -> Result<Context, Fail> {
    let enis = enis.into_iter().map(|e| (e.id.clone(), e)).collect();
    with_names(v, s, enis, volumes, Vec::new())
}

fn with_names<V: Read>(
    v: &V,
    s: Scope,
    enis: HashMap<String, EniRecord>,
    volumes: Vec<crate::records::volume::VolumeRecord>,
    eips: Vec<AddressRecord>,
) -> Result<Context, Fail> {
    let names = crate::repo::eni::names_of(
        v,
        s,
        enis.values()
            .flat_map(|e| e.groups.iter().map(String::as_str)),
    )?;
    Ok(Context {
        enis,
        volumes,
        names,
        eips,
        null_driver: Some(String::new()),
        degraded: None,
    })
}

impl Context {
    /// The interfaces of an instance still attached to it, primary first.
    pub fn enis_of<'a>(
        &'a self,
        r: &'a InstanceRecord,
    ) -> impl Iterator<Item = &'a EniRecord> + 'a {
        r.enis
            .iter()
            .filter_map(|id| self.enis.get(id))
            .filter(move |e| e.attachment.as_ref().is_some_and(|a| a.instance_id == r.id))
    }

    /// The public address: an Elastic IP on the primary address, else the launch one.
    pub fn public_ip(&self, r: &InstanceRecord) -> Option<String> {
        let primary = self.enis_of(r).next()?;
        let addr = primary.addresses.iter().find(|a| a.primary)?;
        crate::repo::address::eip_on(&self.eips, primary, &addr.addr)
            .map(|a| a.public_ip.clone())
            .or_else(|| r.public_ip.clone())
    }
}
