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
//!   address unless the request says otherwise (an explicit count of 0);
//! - an interface may hold delegated /80 prefixes of the block (a count, random, or a list),
//!   each counting as one address against the type's limit; a prefix overlaps no other
//!   interface's prefix or address.
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

/// What a request asks of IPv6 addresses: these, or this many (None: not said); and of /80
/// prefixes: these, or this many.
#[derive(Debug, Default, Clone)]
pub struct Want6 {
    pub addrs: Vec<Ipv6Addr>,
    pub count: Option<u32>,
    pub prefixes: Vec<Cidr6>,
    pub prefix_count: u32,
}

impl Want6 {
    /// From a request's count and addresses; both at once is AWS's combination error.
    pub fn of(count: Option<i32>, addrs: &[String]) -> Result<Want6, Ec2Error> {
        let count = count_or_list(
            count,
            !addrs.is_empty(),
            "IPv6 addresses and IPv6 address count",
            "ipv6AddressCount",
        )?;
        Ok(Want6 {
            addrs: addrs.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
            count,
            ..Want6::default()
        })
    }

    /// Adds a request's /80 prefixes (a count or a list, never both).
    pub fn with_prefixes(
        mut self,
        count: Option<i32>,
        given: &[String],
    ) -> Result<Want6, Ec2Error> {
        let count = count_or_list(
            count,
            !given.is_empty(),
            "IPv6 prefixes and IPv6 prefix count",
            "ipv6PrefixCount",
        )?;
        self.prefixes = given
            .iter()
            .map(|p| parse_prefix(p))
            .collect::<Result<_, _>>()?;
        self.prefix_count = count.unwrap_or(0);
        Ok(self)
    }

    /// How many /80 prefixes this asks for.
    pub fn prefix_len(&self) -> usize {
        self.prefixes.len() + self.prefix_count as usize
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

/// A count or a list, never both (`what`: AWS's words for the pair), and no count below 0.
fn count_or_list(
    count: Option<i32>,
    listed: bool,
    what: &str,
    param: &str,
) -> Result<Option<u32>, Ec2Error> {
    if count.is_some_and(|n| n > 0) && listed {
        return Err(Ec2Error::new(
            "InvalidParameterCombination",
            format!("{what} may not be specified on the same request"),
        ));
    }
    if let Some(n) = count.filter(|n| *n < 0) {
        return Err(Ec2Error::invalid_value(format!(
            "Value ({n}) for parameter {param} is invalid. Expecting a value greater than or equal to 0."
        )));
    }
    Ok(count.map(|n| n as u32))
}

/// A delegated IPv6 prefix: an aligned /80.
pub fn parse_prefix(s: &str) -> Result<Cidr6, Ec2Error> {
    Cidr6::parse(s)
        .ok()
        .filter(|c| c.prefix_len() == 80)
        .ok_or_else(|| {
            Ec2Error::invalid_value(format!(
                "Invalid IPv6 prefix {s}: a prefix must be an aligned /80 inside the subnet."
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

/// What [`take`] took: addresses and /80 prefixes, in their text.
#[derive(Debug, Default)]
pub struct Taken6 {
    pub addrs: Vec<String>,
    pub prefixes: Vec<String>,
}

/// Takes IPv6 addresses and /80 prefixes of the subnet for an interface (`eni`, which may
/// hold some already): the ones asked for, each free and in the block, then random free ones
/// for the counts. A prefix is free where no interface's address or prefix falls in it.
pub fn take(
    tx: &Tx,
    s: Scope,
    subnet: &SubnetRecord,
    eni: &str,
    want: &Want6,
) -> Result<Taken6, Fail> {
    if want.is_empty() && want.prefix_len() == 0 {
        return Ok(Taken6::default());
    }
    let b = block(subnet).map_err(Fail)?;
    let q = Query {
        subnets: Some(&[subnet.id.as_str()]),
        ..Query::default()
    };
    let enis: Vec<EniRecord> = tx.list::<EniRecord>(s, &q)?;
    let mut held: std::collections::HashMap<u128, String> = Default::default();
    let mut held_prefixes: Vec<(Cidr6, String)> = Vec::new();
    for e in &enis {
        for a in &e.ipv6 {
            if let Ok(a) = a.parse::<Ipv6Addr>() {
                held.insert(u128::from(a), e.id.clone());
            }
        }
        for p in &e.ipv6_prefixes {
            if let Ok(p) = Cidr6::parse(p) {
                held_prefixes.push((p, e.id.clone()));
            }
        }
    }
    let in_use = |x: u128, out: &[u128], outp: &[Cidr6]| {
        held.get(&x).is_some_and(|o| o != eni)
            || out.contains(&x)
            || held_prefixes.iter().any(|(p, _)| p.contains_addr(x))
            || outp.iter().any(|p| p.contains_addr(x))
    };
    let mut out: Vec<u128> = Vec::new();
    let mut outp: Vec<Cidr6> = Vec::new();
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
        if in_use(x, &out, &outp) {
            return Err(Fail(Ec2Error::new(
                "InvalidIPAddress.InUse",
                format!("Address {a} is in use."),
            )));
        }
        if !held.contains_key(&x) {
            out.push(x);
        }
    }
    let full = || {
        Fail(Ec2Error::new(
            "InsufficientFreeAddressesInSubnet",
            "The specified subnet does not have enough free addresses to satisfy the request.",
        ))
    };
    for _ in 0..want.count.unwrap_or(0) {
        // 2^64 addresses: a collision is all but impossible, and a few tries settle it.
        let pick = (0..64)
            .map(|_| random_in(b))
            .find(|x| !reserved(b, *x) && !in_use(*x, &out, &outp))
            .ok_or_else(full)?;
        out.push(pick);
    }
    let overlaps = |p: Cidr6, outp: &[Cidr6]| {
        held_prefixes.iter().any(|(h, _)| h.overlaps(p))
            || outp.iter().any(|h| h.overlaps(p))
            || held.keys().chain(out.iter()).any(|a| p.contains_addr(*a))
            || reserved(b, p.base())
            || reserved(b, p.base() | (u128::MAX >> 80))
    };
    for p in &want.prefixes {
        if !b.contains(*p) {
            return Err(Fail(Ec2Error::invalid_value(format!(
                "The IPv6 prefix {p} does not fall within the subnet's IPv6 address range {b}"
            ))));
        }
        if overlaps(*p, &outp) {
            return Err(Fail(Ec2Error::new(
                "InvalidIPAddress.InUse",
                format!("The IPv6 prefix {p} is in use."),
            )));
        }
        outp.push(*p);
    }
    for _ in 0..want.prefix_count {
        let pick = (0..64)
            .filter_map(|_| Cidr6::new(random_in(b) & !(u128::MAX >> 80), 80))
            .find(|p| b.contains(*p) && !overlaps(*p, &outp))
            .ok_or_else(full)?;
        outp.push(pick);
    }
    Ok(Taken6 {
        addrs: out
            .into_iter()
            .map(|x| Ipv6Addr::from(x).to_string())
            .collect(),
        prefixes: outp.into_iter().map(|p| p.to_string()).collect(),
    })
}

/// What an interface holds against its type's IPv6 limit: each address, and each /80 as one.
pub fn slots6(e: &EniRecord) -> usize {
    e.ipv6.len() + e.ipv6_prefixes.len()
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

/// AssignIpv6Addresses, before any lookup: addresses or a count, never both, and prefixes or
/// a prefix count, never both; each address's and prefix's form. The interface, its subnet's
/// block, the addresses' availability and the type's limit follow.
impl Checks for AssignIpv6AddressesRequest {
    fn formats(&self) -> Result<(), Ec2Error> {
        want_of_assign(self).map(drop)
    }
}

fn want_of_assign(r: &AssignIpv6AddressesRequest) -> Result<Want6, Ec2Error> {
    Want6::of(
        r.ipv6_address_count,
        r.ipv6_addresses.as_deref().unwrap_or_default(),
    )?
    .with_prefixes(
        r.ipv6_prefix_count,
        r.ipv6_prefixes.as_deref().unwrap_or_default(),
    )
}

pub fn assign(
    store: &Store,
    ctx: &RequestContext,
    input: AssignIpv6AddressesRequest,
) -> Result<AssignIpv6AddressesResult, Ec2Error> {
    let want = want_of_assign(&input)?;
    let s = scope(ctx);
    let added = store
        .write(!ctx.dry_run, |tx| {
            let mut eni = get_eni(tx, s, &input.network_interface_id)?;
            crate::repo::eni::check_not_managed(&eni)?;
            let subnet = get_subnet(tx, s, &eni.subnet_id)?;
            let added = take(tx, s, &subnet, &eni.id, &want)?;
            if let Some(max) = limit(tx, s, &eni)? {
                if slots6(&eni) + added.addrs.len() + added.prefixes.len() > max {
                    return Err(Fail(crate::repo::instance::address_limit()));
                }
            }
            eni.ipv6.extend(added.addrs.iter().cloned());
            eni.ipv6_prefixes.extend(added.prefixes.iter().cloned());
            tx.update(s, &eni)?;
            Ok::<_, Fail>(added)
        })
        .map_err(|f| f.0)?;
    Ok(AssignIpv6AddressesResult {
        network_interface_id: Some(input.network_interface_id),
        assigned_ipv6_addresses: Some(added.addrs),
        assigned_ipv6_prefixes: Some(added.prefixes),
    })
}

impl Checks for UnassignIpv6AddressesRequest {}

pub fn unassign(
    store: &Store,
    ctx: &RequestContext,
    input: UnassignIpv6AddressesRequest,
) -> Result<UnassignIpv6AddressesResult, Ec2Error> {
    let s = scope(ctx);
    let given = input.ipv6_addresses.clone().unwrap_or_default();
    let given_prefixes = input.ipv6_prefixes.clone().unwrap_or_default();
    let (removed, removed_prefixes) = store
        .write(!ctx.dry_run, |tx| {
            let mut eni = get_eni(tx, s, &input.network_interface_id)?;
            let mut removed = Vec::new();
            for a in &given {
                // The address as given or in its canonical form.
                let canon = a
                    .parse::<Ipv6Addr>()
                    .map(|x| x.to_string())
                    .unwrap_or_default();
                if eni.primary_ipv6 && eni.ipv6.first() == Some(&canon) {
                    return Err(Fail(Ec2Error::invalid_value(format!(
                        "The primary IPv6 address {canon} of interface {} cannot be unassigned.",
                        eni.id
                    ))));
                }
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
            let mut removed_prefixes = Vec::new();
            for p in &given_prefixes {
                let canon = Cidr6::parse(p).map(|c| c.to_string()).unwrap_or_default();
                match eni.ipv6_prefixes.iter().position(|x| *x == canon) {
                    Some(i) => removed_prefixes.push(eni.ipv6_prefixes.remove(i)),
                    None => {
                        return Err(Fail(Ec2Error::invalid_value(format!(
                            "Some of the specified prefixes are not assigned to interface {}",
                            eni.id
                        ))))
                    }
                }
            }
            tx.update(s, &eni)?;
            Ok::<_, Fail>((removed, removed_prefixes))
        })
        .map_err(|f| f.0)?;
    Ok(UnassignIpv6AddressesResult {
        network_interface_id: Some(input.network_interface_id),
        unassigned_ipv6_addresses: Some(removed),
        unassigned_ipv6_prefixes: Some(removed_prefixes),
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
