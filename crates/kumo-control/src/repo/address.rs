//! Elastic IP lookups.

use crate::core::error::Fail;
use crate::records::net::AddressRecord;
use kumo_store::{Query, Read, Scope};

/// Associations by (interface, private IP), for DescribeNetworkInterfaces.
pub fn by_interface<V: Read>(v: &V, s: Scope) -> Result<Vec<AddressRecord>, Fail> {
    let all: Vec<AddressRecord> = v.list(s, &Query::default())?;
    Ok(all
        .into_iter()
        .filter(|a| a.association.is_some())
        .collect())
}
