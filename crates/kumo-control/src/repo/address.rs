//! Elastic IP lookups.

use crate::core::error::Fail;
use crate::records::net::{AddressRecord, EniRecord};
use kumo_store::{Query, Read, Scope};

/// Associations by (interface, private IP), for DescribeNetworkInterfaces.
pub fn by_interface<V: Read>(v: &V, s: Scope) -> Result<Vec<AddressRecord>, Fail> {
    let all: Vec<AddressRecord> = v.list(s, &Query::default())?;
    Ok(all
        .into_iter()
        .filter(|a| a.association.is_some())
        .collect())
}

/// The Elastic IP on one of an interface's private addresses, among `eips`.
pub fn eip_on<'a>(eips: &'a [AddressRecord], e: &EniRecord, ip: &str) -> Option<&'a AddressRecord> {
    eips.iter().find(|x| {
        x.association
            .as_ref()
            .is_some_and(|y| y.eni_id == e.id && y.private_ip == ip)
    })
}
