//! IPv6 addresses on network interfaces, from the subnet's IPv6 block.
//!
//! AWS's rules (the API reference and AWS's answers quoted in public reports):
//! - an interface takes IPv6 addresses only in a subnet with an IPv6 block; a count picks
//!   random addresses of the block (AWS's are random, not sequential), a list takes exactly
//!   those, never both in one request (`InvalidParameterCombination`);
//! - the first four addresses of the block and its last are reserved, as for IPv4;
//! - an address held by another interface is `InvalidIPAddress.InUse`;
//! - an attached interface holds at most its type's IPv6 addresses per interface
//!   (`PrivateIpAddressLimitExceeded`);
//! - a subnet with `AssignIpv6AddressOnCreation` gives each interface created in it one
//!   address unless the request says otherwise (an explicit count of 0).
//!
//! Addresses are kept in RFC 5952's text (what `ip -6 addr` prints), so the guest's agent
//! compares them as text.

use crate::core::checks::Checks;
use crate::core::error::Fail;
use crate::core::ids::new_id;
use crate::records::net::{EniRecord, SubnetRecord};
use crate::repo::eni::get_eni;
use crate::scope;
use crate::subnets::get_subnet;
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::cidr::Cidr6;
use kumo_store::{Query, Read, Scope, Store, Tx};
use std::net::Ipv6Addr;

/// What a request asks of IPv6 addresses: these, or this many (None: not said).
#[derive(Debug, Default, Clone)]
pub struct Want6 {
    pub addrs: Vec<Ipv6Addr>,
    pub count: Option<u32>,
}

impl Want6 {
    /// From a request's count and addresses; both at once is AWS's combination error.
    pub fn of(count: Option<i32>, addrs: &[String]) -> Result<Want6, Ec2Error> {
        if count.is_some_and(|n| n > 0) && !addrs.is_empty() {
            return Err(Ec2Error::new(
                "InvalidParameterCombination",
                "IPv6 addresses and IPv6 address count may not be specified on the same request",
            ));
        }
        if let Some(n) = count.filter(|n| *n < 0) {
            return Err(Ec2Error::invalid_value(format!(
                "Value ({n}) for parameter ipv6AddressCount is invalid. Expecting a value greater than or equal to 0."
            )));
        }
        Ok(Want6 {
            addrs: addrs.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
            count: count.map(|n| n as u32),
        })
    }

    /// How many addresses this asks for.
    pub fn len(&self) -> usize {
        self.addrs.len() + self.count.unwrap_or(0) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn parse(s: &str) -> Result<Ipv6Addr, Ec2Error> {
    s.parse().map_err(|_| {
        Ec2Error::invalid_value(format!(
            "Invalid value '{s}' for IPv6 address. The address is not a valid IPv6 address."
        ))
    })
}

fn no_block(subnet: &str) -> Ec2Error {
    Ec2Error::invalid_value(format!(
        "The subnet {subnet} has no IPv6 CIDR block: an interface in it cannot take IPv6 addresses."
    ))
}

/// The subnet's IPv6 block.
fn block(subnet: &SubnetRecord) -> Result<Cidr6, Ec2Error> {
    subnet
        .ipv6
        .as_ref()
        .and_then(|c| Cidr6::parse(&c.cidr).ok())
        .ok_or_else(|| no_block(&subnet.id))
}

/// Whether `a` is one of the block's reserved addresses: its first four and its last.
fn reserved(b: Cidr6, a: u128) -> bool {
    let base = b.base();
    let last = base | (u128::MAX >> b.prefix_len());
    a < base + 4 || a == last
}

/// A random address of the block (64 random bits, fewer for a smaller block).
fn random_in(b: Cidr6) -> u128 {
    let id = new_id("x");
    let h = id
        .bytes()
        .chain(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
                .to_le_bytes(),
        )
        .fold(0xcbf2_9ce4_8422_2325u64, |h, x| {
            (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
        });
    let host_bits = 128 - u32::from(b.prefix_len());
    let mask = if host_bits >= 64 {
        u128::from(u64::MAX)
    } else {
        (1u128 << host_bits) - 1
    };
    b.base() | (u128::from(h) & mask)
}

/// Takes IPv6 addresses of the subnet for an interface (`eni`, which may hold some already):
/// the ones asked for, each free and in the block, then `count` random free ones.
pub fn take(
    tx: &Tx,
    s: Scope,
    subnet: &SubnetRecord,
    eni: &str,
    want: &Want6,
) -> Result<Vec<String>, Fail> {
    if want.is_empty() {
        return Ok(Vec::new());
    }
    let b = block(subnet).map_err(Fail)?;
    let q = Query {
        subnets: Some(&[subnet.id.as_str()]),
        ..Query::default()
    };
    let held: std::collections::HashMap<u128, String> = tx
        .list::<EniRecord>(s, &q)?
        .into_iter()
        .flat_map(|e| {
            let id = e.id.clone();
            e.ipv6.into_iter().filter_map(move |a| {
                a.parse::<Ipv6Addr>()
                    .ok()
                    .map(|a| (u128::from(a), id.clone()))
            })
        })
        .collect();
    let mut out: Vec<u128> = Vec::new();
    for a in &want.addrs {
        let x = u128::from(*a);
        if !b.contains_addr(x) {
            return Err(Fail(Ec2Error::invalid_value(format!(
                "Address {a} does not fall within the subnet's IPv6 address range {b}"
            ))));
        }
        if reserved(b, x) {
            return Err(Fail(Ec2Error::invalid_value(format!(
                "Address {a} is reserved by AWS and cannot be assigned."
            ))));
        }
        if held.get(&x).is_some_and(|owner| owner != eni) || out.contains(&x) {
            return Err(Fail(Ec2Error::new(
                "InvalidIPAddress.InUse",
                format!("Address {a} is in use."),
            )));
        }
        if !held.contains_key(&x) {
            out.push(x);
        }
    }
    for _ in 0..want.count.unwrap_or(0) {
        // 2^64 addresses: a collision is all but impossible, and a few tries settle it.
        let pick = (0..64)
            .map(|_| random_in(b))
            .find(|x| !reserved(b, *x) && !held.contains_key(x) && !out.contains(x))
            .ok_or_else(|| {
                Fail(Ec2Error::new(
                    "InsufficientFreeAddressesInSubnet",
                    "The specified subnet does not have enough free addresses to satisfy the request.",
                ))
            })?;
        out.push(pick);
    }
    Ok(out
        .into_iter()
        .map(|x| Ipv6Addr::from(x).to_string())
        .collect())
}

/// The IPv6 limit of an attached interface's instance type, if it is attached.
fn limit<V: Read>(v: &V, s: Scope, eni: &EniRecord) -> Result<Option<usize>, Fail> {
    let Some(a) = &eni.attachment else {
        return Ok(None);
    };
    let Some(r) = v.get::<crate::records::instance::InstanceRecord>(s, &a.instance_id)? else {
        return Ok(None);
    };
    Ok(crate::instance_types::find(&r.instance_type).map(ipv6_per_interface))
}

/// The type's IPv6 addresses per interface (0 for a type without IPv6).
pub fn ipv6_per_interface(info: &InstanceTypeInfo) -> usize {
    info.network_info
        .as_ref()
        .and_then(|n| {
            (n.ipv6_supported == Some(true))
                .then_some(n.ipv6_addresses_per_interface)
                .flatten()
        })
        .unwrap_or(0)
        .max(0) as usize
}

/// AssignIpv6Addresses, before any lookup: addresses or a count, never both; each address's
/// form; the IPv6 prefixes, which Kumo does not delegate. The interface, its subnet's block,
/// the addresses' availability and the type's limit follow.
impl Checks for AssignIpv6AddressesRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::error::refuse_settings(
            "AssignIpv6Addresses",
            &[(
                "IPv6 prefixes (Ipv6PrefixCount, Ipv6Prefixes)",
                self.ipv6_prefix_count.is_some_and(|n| n > 0)
                    || self.ipv6_prefixes.as_ref().is_some_and(|p| !p.is_empty()),
            )],
        )?;
        Want6::of(
            self.ipv6_address_count,
            self.ipv6_addresses.as_deref().unwrap_or_default(),
        )
        .map(drop)
    }
}

pub fn assign(
    store: &Store,
    ctx: &RequestContext,
    input: AssignIpv6AddressesRequest,
) -> Result<AssignIpv6AddressesResult, Ec2Error> {
    let want = Want6::of(
        input.ipv6_address_count,
        input.ipv6_addresses.as_deref().unwrap_or_default(),
    )?;
    let s = scope(ctx);
    let added = store
        .write(!ctx.dry_run, |tx| {
            let mut eni = get_eni(tx, s, &input.network_interface_id)?;
            crate::repo::eni::check_not_managed(&eni)?;
            let subnet = get_subnet(tx, s, &eni.subnet_id)?;
            let added = take(tx, s, &subnet, &eni.id, &want)?;
            if let Some(max) = limit(tx, s, &eni)? {
                if eni.ipv6.len() + added.len() > max {
                    return Err(Fail(crate::repo::instance::address_limit()));
                }
            }
            eni.ipv6.extend(added.iter().cloned());
            tx.update(s, &eni)?;
            Ok::<_, Fail>(added)
        })
        .map_err(|f| f.0)?;
    Ok(AssignIpv6AddressesResult {
        network_interface_id: Some(input.network_interface_id),
        assigned_ipv6_addresses: Some(added),
        assigned_ipv6_prefixes: Some(Vec::new()),
    })
}

/// UnassignIpv6Addresses, before any lookup: the IPv6 prefixes, which Kumo does not delegate.
impl Checks for UnassignIpv6AddressesRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        crate::core::error::refuse_settings(
            "UnassignIpv6Addresses",
            &[(
                "IPv6 prefixes (Ipv6Prefixes)",
                self.ipv6_prefixes.as_ref().is_some_and(|p| !p.is_empty()),
            )],
        )
    }
}

pub fn unassign(
    store: &Store,
    ctx: &RequestContext,
    input: UnassignIpv6AddressesRequest,
) -> Result<UnassignIpv6AddressesResult, Ec2Error> {
    let s = scope(ctx);
    let given = input.ipv6_addresses.clone().unwrap_or_default();
    let removed = store
        .write(!ctx.dry_run, |tx| {
            let mut eni = get_eni(tx, s, &input.network_interface_id)?;
            let mut removed = Vec::new();
            for a in &given {
                // The address as given or in its canonical form.
                let canon = a
                    .parse::<Ipv6Addr>()
                    .map(|x| x.to_string())
                    .unwrap_or_default();
                match eni.ipv6.iter().position(|x| *x == canon) {
                    Some(i) => removed.push(eni.ipv6.remove(i)),
                    None => {
                        return Err(Fail(Ec2Error::invalid_value(format!(
                            "Some of the specified addresses are not assigned to interface {}",
                            eni.id
                        ))))
                    }
                }
            }
            tx.update(s, &eni)?;
            Ok::<_, Fail>(removed)
        })
        .map_err(|f| f.0)?;
    Ok(UnassignIpv6AddressesResult {
        network_interface_id: Some(input.network_interface_id),
        unassigned_ipv6_addresses: Some(removed),
        unassigned_ipv6_prefixes: Some(Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_addresses_and_random_picks_stay_in_the_block() {
        let b = Cidr6::parse("2001:db8:0:1::/64").unwrap();
        let base = b.base();
        for i in 0..4 {
            assert!(reserved(b, base + i));
        }
        assert!(!reserved(b, base + 4));
        assert!(reserved(b, base | u128::from(u64::MAX)));
        let picks: std::collections::HashSet<u128> = (0..200).map(|_| random_in(b)).collect();
        assert!(picks.len() > 190, "picks repeat: {}", picks.len());
        assert!(picks.iter().all(|p| b.contains_addr(*p)));
        // A smaller block keeps its picks inside.
        let small = Cidr6::parse("2001:db8:0:1::/120").unwrap();
        assert!((0..50).all(|_| small.contains_addr(random_in(small))));
    }

    #[test]
    fn a_request_asks_for_addresses_or_a_count() {
        assert_eq!(
            Want6::of(Some(1), &["2001:db8::5".into()])
                .unwrap_err()
                .code(),
            "InvalidParameterCombination"
        );
        assert_eq!(Want6::of(Some(2), &[]).unwrap().len(), 2);
        assert!(Want6::of(Some(0), &[]).unwrap().is_empty());
        assert_eq!(
            Want6::of(None, &["10.0.0.1".into()]).unwrap_err().code(),
            "InvalidParameterValue"
        );
    }
}
